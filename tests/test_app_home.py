from streamlit.testing.v1 import AppTest

from tests.conftest import PROJECT_DIR


def test_home_page_shows_environment():
    at = AppTest.from_file(str(PROJECT_DIR / "streamlit_app.py"), default_timeout=120).run()
    assert not at.exception
    assert at.title[0].value == "Transfer Learning Studio"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Device"] == "CPU"
    assert metrics["TensorFlow"] == "2.21.0"
    assert metrics["Model status"] in ("ready", "not prepared")
