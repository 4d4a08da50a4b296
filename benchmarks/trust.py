"""Trust: whether the health checks and the "none of these" rule find what is planted, and how fast.

    .venv/bin/python -m benchmarks.trust            # about 4 minutes on a 2-core CPU

1. Label issues: 50 digits per class (500 images) with 5% of the labels flipped to another class, seeds
   0-2; precision of the top-k label issues (k = the number flipped) and of everything flagged.
2. Near duplicates: the faces demo (200 LFW crops) plus one planted copy of 30 of them, in turn resized
   3x, upscaled 4x and re-encoded as JPEG quality 70, or upscaled 8x and cropped by 3-4% on each side;
   recall of the planted pairs and reported pairs per planted pair. Also the whole digits set, which
   must come out "crowded" (no pairs claimed).
3. Unknown: a digits run (20 per class, the defaults) predicts scikit-image's sample photographs and
   every digit outside its sample; the share flagged "none of these" in each.
4. Speed: `core health` on 500 digits (with 5% flipped) as its own process in a fresh studio home (the
   converted models copied, no stored vectors): wall time, and peak memory of the process.

One JSON line per measurement; BENCHMARKS.md holds a measured run.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.photos import emit, fresh_home
from core import paths
from core.runs.store import RunStore

PHOTOS = ("astronaut", "camera", "coffee", "chelsea", "rocket", "coins", "moon", "page", "horse",
          "hubble_deep_field", "immunohistochemistry", "retina", "logo", "text", "grass", "gravel", "brick",
          "colorwheel", "cell", "clock", "microaneurysms")


def flipped_digits(root: Path, per_class: int, seed: int) -> tuple[Path, set[str]]:
    """per_class digits per class copied into class folders, 5% moved to a wrong class; the moved names."""
    from core.data.sampling import sample
    from core.data.sources import load_dataset

    items = sample(load_dataset("digits"), per_class=per_class, seed=seed).items
    rng = np.random.default_rng(seed)
    flip = set(rng.choice(len(items), int(round(0.05 * len(items))), replace=False).tolist())
    moved = set()
    for n, item in enumerate(items):
        label = str((int(item.label) + int(rng.integers(1, 10))) % 10) if n in flip else item.label
        (root / label).mkdir(parents=True, exist_ok=True)
        shutil.copy(item.path, root / label / Path(item.path).name)
        if n in flip:
            moved.add(f"{label}/{Path(item.path).name}")
    return root, moved


def label_issues(work: Path) -> None:
    from core.data.sources import load_dataset
    from core.health import check_health

    for seed in range(3):
        root, moved = flipped_digits(work / f"flipped-{seed}", 50, seed)
        health = check_health(load_dataset(str(root)), "efficientnet_lite0", seed=seed)
        ranked = [x.file for x in health.label_issues]
        k = len(moved)
        emit({"measure": "label issues, digits 50/class, 5% flipped", "seed": seed, "flipped": k,
              "flagged": len(ranked), "precision_at_k": round(len(set(ranked[:k]) & moved) / k, 3),
              "recall_at_k": round(len(set(ranked[:k]) & moved) / k, 3),
              "precision_all_flagged": round(len(set(ranked) & moved) / max(len(ranked), 1), 3)})


def _copy(img: Image.Image, kind: str) -> Image.Image:
    w, h = img.size
    if kind == "resized":
        return img.resize((w * 3, h * 3), Image.BILINEAR)
    if kind == "jpeg":
        buf = io.BytesIO()
        img.convert("RGB").resize((w * 4, h * 4), Image.BICUBIC).save(buf, "JPEG", quality=70)
        return Image.open(io.BytesIO(buf.getvalue()))
    big = img.resize((w * 8, h * 8), Image.BICUBIC)
    return big.crop((int(w * 8 * 0.04), int(h * 8 * 0.04), w * 8, int(h * 8 * 0.97)))


def near_duplicates(work: Path) -> None:
    from core.data.sources import demo_folder, load_dataset
    from core.health import check_health

    root = work / "faces-planted"
    shutil.copytree(demo_folder("faces"), root, ignore=shutil.ignore_patterns(".*"))
    originals = sorted(p for p in root.rglob("*.png"))
    rng = np.random.default_rng(0)
    planted = set()
    for n, index in enumerate(rng.choice(len(originals), 30, replace=False)):
        kind = ("resized", "jpeg", "crop")[n % 3]
        source = originals[index]
        copy = source.with_name(f"copy-{kind}-{source.name}")
        _copy(Image.open(source), kind).convert("RGB").save(copy)
        planted.add(frozenset((f"{source.parent.name}/{source.name}", f"{copy.parent.name}/{copy.name}")))
    health = check_health(load_dataset(str(root)), "efficientnet_lite0")
    pairs = {frozenset((a, b)) for g in health.near_duplicates for i, a in enumerate(g) for b in g[i + 1:]}
    emit({"measure": "near duplicates, faces + 30 planted copies", "planted": len(planted),
          "recall": round(len(pairs & planted) / len(planted), 3), "reported_pairs": len(pairs),
          "reported_per_planted": round(len(pairs) / len(planted), 2), "groups": len(health.near_duplicates)})
    digits = check_health(load_dataset("digits"), "efficientnet_lite0")
    emit({"measure": "near duplicates, whole digits set", "groups": len(digits.near_duplicates),
          "check": digits.duplicate_check[:60]})


def photos(folder: Path) -> list[Path]:
    import skimage.data

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name in PHOTOS:
        array = np.asarray(getattr(skimage.data, name)())
        if array.dtype == bool:
            array = array.astype(np.uint8) * 255
        elif array.dtype != np.uint8:
            array = (255 * (array - array.min()) / (np.ptp(array) or 1)).astype(np.uint8)
        Image.fromarray(array[..., :3] if array.ndim == 3 else array).save(folder / f"{name}.png")
        out.append(folder / f"{name}.png")
    return out


def unknown(work: Path) -> None:
    from core.inference.predict import predict_sources
    from core.runs import jobs
    from core.training.config import TrainConfig

    for seed in range(3):
        run_id = jobs.submit(RunStore.default(), TrainConfig(seed=seed))
        jobs.wait(RunStore.default(), run_id)
        run = RunStore.default().load(run_id)
        taken = {i.relpath for part in ("train", "val", "test") for i in getattr(run.split(), part)}
        from core.data.sources import load_dataset

        rest = [i for i in load_dataset("digits").items if i.relpath not in taken]
        own = predict_sources(RunStore.default(), run_id, [(i.relpath, i.path) for i in rest])
        shots = predict_sources(RunStore.default(), run_id, [(p.name, p) for p in photos(work / "photos")])
        emit({"measure": "none of these, digits run 20/class", "seed": seed, "run": run_id,
              "photos_flagged": round(np.mean([r["unknown"] for r in shots]), 3), "photos": len(shots),
              "own_digits_flagged": round(np.mean([r["unknown"] for r in own]), 3), "own_digits": len(own)})


def speed(work: Path) -> None:
    root, _ = flipped_digits(work / "speed-data", 50, 0)
    env = fresh_home(work / "speed")
    start = time.perf_counter()
    out = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-m", "core", "health", "--data", str(root)],
                         cwd=paths.PROJECT_DIR, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"core health failed: {out.stderr[-2000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    peak = next((int(line.split(":")[1]) for line in out.stderr.splitlines() if "Maximum resident" in line), 0)
    emit({"measure": "core health, 500 digits, fresh home", "process_s": round(seconds, 1),
          "inside_s": result["seconds"], "engine": result["engine"], "peak_rss_mb": round(peak / 1024)})


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="trust-"))
    shutil.copytree(paths.models_dir(), work / "home" / "models")
    os.environ["STUDIO_HOME"] = str(work / "home")  # this process's runs and stores, apart from the user's
    os.environ.pop("STUDIO_RUNS_DIR", None)
    try:
        speed(work)
        label_issues(work)
        near_duplicates(work)
        unknown(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
