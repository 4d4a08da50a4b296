"""Batch prediction: files, folders and zips through `core predict --csv`, and the Predict page's zip."""

import csv
import io
import json
import zipfile
from collections import Counter

import numpy as np
from PIL import Image

from core.cli import main
from core.inference.predict import predict_sources, predictions_csv
from core.runs.store import RunStore
from tests.helpers import COLORS, metrics, open_page


def _png(color, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(color) + rng.integers(-12, 13, (24, 24, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def _hostile_zip(path):
    """Two images in a folder, one at the top, plus members the safe import refuses or cannot read."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("shots/red_a.png", _png(COLORS["red"], 1))
        archive.writestr("shots/deep/blue_a.png", _png(COLORS["blue"], 2))
        archive.writestr("green_a.png", _png(COLORS["green"], 3))
        archive.writestr("../escape.png", _png(COLORS["red"], 4))
        archive.writestr("notes.txt", "not an image")
        archive.writestr("shots/broken.png", b"\x89PNG\r\n\x1a\n broken")
        archive.writestr("__MACOSX/._red_a.png", b"junk")
    return path


def test_cli_predicts_files_folders_and_zips_into_one_csv(trained_run, tmp_path, capsys):
    folder = tmp_path / "folder" / "inner"
    folder.mkdir(parents=True)
    (folder / "green_b.png").write_bytes(_png(COLORS["green"], 5))
    (folder.parent / "readme.md").write_text("notes")
    single = tmp_path / "blue_b.png"
    single.write_bytes(_png(COLORS["blue"], 6))
    archive = _hostile_zip(tmp_path / "batch.zip")
    out = tmp_path / "out.csv"

    assert main(["predict", trained_run, str(archive), str(folder.parent), str(single), str(tmp_path / "gone.png"),
                 "--csv", str(out)]) == 0
    printed = capsys.readouterr()
    summary = json.loads(printed.out.strip().splitlines()[-1])
    assert "predicted 6/" in printed.err  # the progress line
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["image", "label", "probability", "top_k", "unknown", "error"]
    by_name = {r["image"]: r for r in rows}
    zip_name = f"{archive}:"
    good = {f"{zip_name}shots/red_a.png": "red", f"{zip_name}shots/deep/blue_a.png": "blue",
            f"{zip_name}green_a.png": "green", str(folder / "green_b.png"): "green", str(single): "blue"}
    for name, colour in good.items():
        row = by_name[name]
        assert row["label"] == colour and row["unknown"] in ("True", "False") and not row["error"]
        assert 0.3 < float(row["probability"]) <= 1 and row["top_k"].startswith(f"{colour} ")
        assert len(row["top_k"].split("; ")) == 3
    assert "not a recognised image file" in by_name[f"{zip_name}shots/broken.png"]["error"]
    assert by_name["../escape.png"]["error"].startswith("skipped: unsafe path")
    assert "not an image" in by_name["notes.txt"]["error"]
    assert "not an image" in by_name[str(folder.parent / "readme.md")]["error"]
    assert "not found" in by_name[str(tmp_path / "gone.png")]["error"]
    assert not any("MACOSX" in name for name in by_name)  # junk is passed over silently
    assert summary["images"] == 6 and summary["predicted"] == 5 and summary["unreadable"] == 1
    assert summary["skipped"] == 4 and summary["engine"] == "tflite"
    expected = Counter("none of these" if by_name[n]["unknown"] == "True" else c for n, c in good.items())
    assert summary["counts"] == dict(expected)

    # The same answers as one-by-one prediction, and without --csv one JSON line per image.
    for name in good:
        member = name.removeprefix(zip_name)
        source = zipfile.ZipFile(archive).read(member) if member != name else name
        (one,) = predict_sources(RunStore.default(), trained_run, [(name, source)])
        row = by_name[name]
        assert float(row["probability"]) == round(one["top"][0]["probability"], 6)
        assert row["unknown"] == str(one["unknown"])
    assert main(["predict", trained_run, str(single)]) == 0
    assert json.loads(capsys.readouterr().out)["top"][0]["label"] == "blue"


def test_a_damaged_zip_is_named_and_the_other_paths_still_predicted(trained_run, tmp_path, capsys):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip")
    single = tmp_path / "red_c.png"
    single.write_bytes(_png(COLORS["red"], 7))
    assert main(["predict", trained_run, str(bad), str(single), "--csv", str(tmp_path / "out.csv")]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rows = {r["image"]: r for r in csv.DictReader((tmp_path / "out.csv").open())}
    assert summary["predicted"] == 1 and rows[str(single)]["label"] == "red"
    assert "not a readable zip archive" in rows[str(bad)]["error"]


def test_predict_page_takes_a_zip_and_lists_lowest_confidence_first(trained_run, tmp_path):
    at = open_page("predict", run_id=trained_run)
    at.radio[0].set_value("A zip of images").run()
    assert "Upload a zip of images" in at.info[0].value
    at.file_uploader[0].upload("shots.zip", _hostile_zip(tmp_path / "shots.zip").read_bytes(),
                               "application/zip").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.file_uploader[0].value  # released from Streamlit's memory; the zip is on disk
    assert metrics(at)["Images predicted"] == "3" and metrics(at)["Unreadable or skipped"] == "3"
    table = at.dataframe[0].value
    assert sorted(table["file"]) == ["green_a.png", "shots/deep/blue_a.png", "shots/red_a.png"]
    confidence = [None if c != c or c is None else c for c in table["confidence"]]  # NaN: set apart as unknown
    apart = [c is None for c in confidence]
    assert apart == sorted(apart, reverse=True)  # the images that fit no class first, as one group
    known = [c for c in confidence if c is not None]
    assert known == sorted(known) and all(0 < c <= 100 for c in known)  # then lowest confidence first
    assert all(uri.startswith("data:image/png;base64,") for uri in table["image"])
    problems = at.dataframe[1].value
    assert set(problems["file"]) == {"shots/broken.png", "../escape.png", "notes.txt"}
    assert any("shots.zip: predicted class of the 3 images" in chart.proto.spec for chart in at.get("plotly_chart"))
    assert at.get("download_button")[0].proto.label == "All predictions (CSV)"
    csv_rows = list(csv.DictReader(io.StringIO(predictions_csv(at.session_state.predict_batch.as_results()))))
    assert {r["image"] for r in csv_rows if r["label"]} == {f"shots.zip:{f}" for f in table["file"]}  # as uploaded
