import json
import subprocess
import sys

from PIL import Image

from tests.conftest import PROJECT_DIR


def run_cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=PROJECT_DIR, capture_output=True, text=True,
                          timeout=timeout)


def test_imagenet_command(tmp_path, skimage_images):
    paths = []
    for name in ("chelsea", "coffee"):
        path = tmp_path / f"{name}.png"
        Image.fromarray(skimage_images[name]).save(path)
        paths.append(str(path))
    result = run_cli("imagenet", *paths, "--top", "3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    chelsea_first = lines[lines.index(f"{paths[0]}:") + 1].split()
    coffee_first = lines[lines.index(f"{paths[1]}:") + 1].split()
    assert 281 <= int(chelsea_first[1]) <= 285
    assert coffee_first[1] == "967" and float(coffee_first[0]) > 0.9 and coffee_first[2] == "espresso"


def test_imagenet_command_reports_a_bad_file(tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a picture")
    result = run_cli("imagenet", str(bad))
    assert result.returncode == 2
    assert f"{bad}: not a recognised image file" in result.stderr
    assert "Traceback" not in result.stderr


def test_models_command():
    result = run_cli("models")
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[2:]}
    assert rows["efficientnet_lite0"][1:] == ["bundled", "224x224", "18", "3,413,024", "yes"]
    assert rows["mobilenet_v2_hub"][-2:] == ["needs", "download"]
    assert rows["inception_v3"][2] == "299x299"


def test_prepare_command_reports_ready():
    result = run_cli("prepare")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"keras": "ready", "hub": "ready", "tflite": "ready"}
