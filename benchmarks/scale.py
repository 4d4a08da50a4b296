"""The studio at the sizes people bring (issue 44): whole processes at 2,000 and 20,000 photo-like JPEGs.

    python -m benchmarks.scale make --images 20000 --to /tmp/scale     # the set (and a 10,000-image pool)
    python -m benchmarks.scale time --data /tmp/scale/photos-2000 [--pool /tmp/scale/pool] [--steps train health]

The set is made here: 320x240 JPEGs in 10 classes, each a different random scene (a sky-to-ground gradient, a
class's shape in a class's colour family at a random place, size and tilt, and sensor noise), so that no two
files are alike and the classes are learnable but not trivial. Each command runs as a whole process from a cold
studio home (the converted models shared), then again warm (the same home). Wall time and the peak RSS of the
process tree (sampled every 0.2 s) are printed as JSON lines."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from core import paths
from core.backbones import bundled

CLASSES = 10
SIZE = (320, 240)


def scene(rng: np.random.Generator, label: int):
    from PIL import Image, ImageDraw

    top, bottom = rng.integers(60, 255, 3), rng.integers(0, 200, 3)
    ramp = np.linspace(0, 1, SIZE[1])[:, None, None]
    pixels = (top * (1 - ramp) + bottom * ramp).repeat(SIZE[0], axis=1)
    image = Image.fromarray(pixels.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    hue = np.array([(label * 97) % 256, (label * 53 + 80) % 256, (label * 31 + 160) % 256])
    colour = tuple(int(c) for c in np.clip(hue + rng.integers(-40, 40, 3), 0, 255))
    x, y, r = rng.integers(60, 260), rng.integers(50, 190), rng.integers(25, 60)
    sides = 3 + label % 5
    angles = rng.uniform(0, 2 * np.pi) + np.arange(sides) * 2 * np.pi / sides
    outline = [(x + r * np.cos(a), y + r * np.sin(a) * (1 + label // 5)) for a in angles]
    draw.polygon(outline, fill=colour)
    noisy = np.asarray(image, np.float32) + rng.normal(0, 6, (SIZE[1], SIZE[0], 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def make(folder: Path, images: int, *, seed: int, classed: bool = True) -> Path:
    """`images` JPEGs in CLASSES class folders (or one flat folder for a pool), numbered, each different."""
    rng = np.random.default_rng(seed)
    for i in range(images):
        label = i % CLASSES
        target = folder / f"class_{label}" if classed else folder
        target.mkdir(parents=True, exist_ok=True)
        scene(rng, label).save(target / f"img_{i:06d}.jpg", quality=90)
    return folder


def peak_rss_mb(proc: subprocess.Popen) -> tuple[int, float]:
    """Waits for the process; (return code, its tree's peak RSS in MB, sampled every 0.2 s)."""
    import psutil

    top, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            tree = [top, *top.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree))
        except psutil.Error:
            pass
        time.sleep(0.2)
    return proc.returncode, peak / 2**20


def timed(name: str, command: list[str], env: dict) -> dict:
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen([sys.executable, "-m", "core", *command], env=env, stdout=out,
                                stderr=subprocess.STDOUT)
        code, peak = peak_rss_mb(proc)
        out.seek(0)
        tail = out.read().decode(errors="replace").strip().splitlines()[-1:]
    return {"step": name, "seconds": round(time.perf_counter() - start, 1), "peak_rss_mb": round(peak),
            "exit": code, "last_line": tail[0] if tail else ""}


def steps(data: Path, pool: Path | None) -> dict[str, list[str]]:
    found = {
        "features": ["features", "--data", str(data)],
        "train": ["train", "--data", str(data), "--fraction", "1", "--frozen-blocks", "all", "--epochs", "5"],
        "train-fine-tune": ["train", "--data", str(data), "--fraction", "1", "--frozen-blocks", "15", "--epochs", "2"],
        "health": ["health", "--data", str(data)],
        "analyze": ["analyze", "--data", str(data)],
        "analyze-all": ["analyze", "--data", str(data), "--fraction", "1"],
        "analyze-models": ["analyze", "--data", str(data), "--models",
                           "efficientnet_lite0,efficientnet_lite1,efficientnet_lite2"],
    }
    if pool:
        found["suggest"] = ["suggest", "--data", str(data), "--pool", str(pool)]
    return found


def zipped(folder: Path, images: int, target: Path) -> Path:
    """The first `images` JPEGs of a folder in one zip (what a user uploads to Predict)."""
    import zipfile

    if not target.exists():
        with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as z:
            for path in sorted(folder.rglob("*.jpg"))[:images]:
                z.write(path, path.name)
    return target


def baseline(data: Path, env: dict) -> dict:
    """The plain Keras baseline (make_image_classifier's recipe) on the same folder, 5 epochs, as a process."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen([sys.executable, "-m", "benchmarks.mic_baseline", str(data), str(bundled.hub_path()),
                                 "--epochs", "5"], env=env, stdout=out, stderr=subprocess.STDOUT)
        code, peak = peak_rss_mb(proc)
    return {"step": "keras baseline (frozen, 5 epochs)", "seconds": round(time.perf_counter() - start, 1),
            "peak_rss_mb": round(peak), "exit": code}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["make", "time"])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--to", type=Path, default=Path("/tmp/scale"))
    parser.add_argument("--data", type=Path)
    parser.add_argument("--pool", type=Path)
    parser.add_argument("--steps", nargs="*", default=["train", "health", "suggest"])
    args = parser.parse_args()
    if args.what == "make":
        for n in (2_000, args.images):
            make(args.to / f"photos-{n}", n, seed=n)
        make(args.to / "pool", args.images // 2, seed=1, classed=False)
        return
    bundled.prepare()
    home = Path(tempfile.mkdtemp(prefix="scale-home-"))
    env = {**os.environ, "STUDIO_MODELS_DIR": str(paths.models_dir()), "STUDIO_HOME": str(home)}
    images = sum(1 for p in args.data.rglob("*.jpg"))
    run_id = None
    for name, command in steps(args.data, args.pool).items():
        if name in args.steps:
            for warmth in ("cold", "warm"):
                result = timed(name, command, env)
                if name == "train" and result["exit"] == 0:
                    run_id = json.loads(result["last_line"])["run_id"]
                print(json.dumps({"images": images, "warmth": warmth, **result,
                                  "last_line": result["last_line"][:200]}), flush=True)
    if "predict" in args.steps and run_id:
        upload = zipped(args.pool or args.data, 5_000, home / "upload.zip")
        for warmth in ("cold", "warm"):
            result = timed("predict a 5,000-image zip", ["predict", run_id, str(upload), "--csv", str(home / "p.csv")],
                           env)
            print(json.dumps({"images": images, "warmth": warmth, **result}), flush=True)
    if "baseline" in args.steps:
        print(json.dumps({"images": images, **baseline(args.data, env)}), flush=True)


if __name__ == "__main__":
    main()
