"""The command line, called in process (core.cli.main); tests/test_training.py starts it once as a real
process, as users do."""

import json
import os
from pathlib import Path

from PIL import Image

from tests.helpers import cli, make_color_folders


def test_imagenet_command(tmp_path, skimage_images):
    paths = []
    for name in ("chelsea", "coffee"):
        path = tmp_path / f"{name}.png"
        Image.fromarray(skimage_images[name]).save(path)
        paths.append(str(path))
    result = cli("imagenet", *paths, "--top", "3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    chelsea_first = lines[lines.index(f"{paths[0]}:") + 1].split()
    coffee_first = lines[lines.index(f"{paths[1]}:") + 1].split()
    assert 281 <= int(chelsea_first[1]) <= 285
    assert coffee_first[1] == "967" and float(coffee_first[0]) > 0.9 and coffee_first[2] == "espresso"


def test_imagenet_command_reports_a_bad_file(tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a picture")
    result = cli("imagenet", str(bad))
    assert result.returncode == 2
    assert f"{bad}: not a recognised image file" in result.stderr
    assert "Traceback" not in result.stderr


def test_models_command():
    result = cli("models")
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[2:]}
    assert rows["efficientnet_lite0"][1:] == ["bundled", "224x224", "18", "3,413,024", "yes"]
    assert rows["efficientnet_lite1"][1:] == ["bundled", "240x240", "23", "4,189,344", "yes"]
    assert rows["efficientnet_lite2"][1:] == ["bundled", "260x260", "23", "4,869,168", "yes"]
    assert rows["mobilenet_v2_hub"][-2:] == ["needs", "download"]
    assert rows["inception_v3"][2] == "299x299"


def test_prepare_command_reports_ready():
    result = cli("prepare")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"keras": "ready", "hub": "ready", "tflite": "ready",
                                                                  "blocks_tflite": "ready"}


def test_train_prints_what_was_skipped_and_a_linear_head_works_without_the_cache(tmp_path, workers_in_process):
    """The zip's unsafe and broken members are named before training; --head logreg --no-cache gets its
    vectors once (it used to fail with 'Found array with dim 4')."""
    import zipfile

    folder = make_color_folders(tmp_path / "colours", per_class=5)
    archive = tmp_path / "colours.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*.png")):
            zf.write(path, f"colours/{path.relative_to(folder)}")
        zf.writestr("../evil.png", (folder / "red" / "red_00.png").read_bytes())
        zf.writestr("colours/red/broken.png", b"not a picture")
    before = os.environ.get("STUDIO_RUNS_DIR")
    result = cli("train", "--data", str(archive), "--per-class", "5", "--head", "logreg", "--no-cache",
                 "--runs-dir", str(tmp_path / "runs"))
    assert os.environ.get("STUDIO_RUNS_DIR") == before  # the store is passed along, the environment untouched
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    out = result.stdout
    assert "15 usable images in 3 classes (blue 5, green 5, red 5)" in out
    assert "2 file(s) skipped:" in out and "../evil.png: unsafe path" in out
    assert "red/broken.png: " in out
    assert out.index("usable images") < out.index("fit epoch 1/")  # before training
    final = json.loads(out.strip().splitlines()[-1])
    assert final["state"] == "completed" and final["val_accuracy"] == 1.0
    assert Path(final["dir"]).parent == tmp_path / "runs"  # trained by a worker told --runs-dir
