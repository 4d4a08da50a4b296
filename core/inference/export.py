"""Export a run's classifier: SavedModel, .keras model, TFLite or ONNX, each with labels, metadata and usage
notes. The metadata carries the run's temperature (already inside the model's probabilities) and its
"none of these" rule. The rule reads the backbone's feature vector: a SavedModel serves it as a second
signature, `features`, and the ONNX model as a second output; the .keras and TFLite files output probabilities
only. ONNX is converted by tf2onnx from the same traced function the SavedModel serves, and checked in ONNX
Runtime.

Every export takes float32 images in [0, 1] (N, S, S, 3) and returns class probabilities.
After writing, the export is loaded back and must agree with the run's own model on the
run's validation images (same top-1 for every image), or the export is removed and an
error raised.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.data.arrays import item_arrays
from core.data.decode import REDUCING_GAP
from core.errors import StudioError
from core.inference.formats import EXPORTS, FORMATS, Exported
from core.inference.predict import run_model
from core.runs.store import RunStore
from core.tf import tf_keras


@dataclass(frozen=True, kw_only=True)
class ExportResult:
    path: Path
    format: str
    checked_images: int
    top1_agreement: float
    max_abs_diff: float


def _float_models(rm) -> tuple[tf_keras.Model, tf_keras.Model]:
    """The run's classifier on [0, 1] float images, and the same images to feature vectors."""
    inputs = tf_keras.Input(rm.backbone.image_shape, name="image")
    vectors = rm.backbone.feature_model(inputs)
    return (tf_keras.Model(inputs, rm.head_probs(vectors), name="classifier"),
            tf_keras.Model(inputs, vectors, name="features"))


PREPROCESSING = (
    "Preprocessing, as the studio does it: decode the file, convert it to RGB (a grey or palette image too), then "
    "resize the whole image to {size}x{size} with Pillow's bicubic filter and reducing_gap={gap} "
    "(`image.convert('RGB').resize(({size}, {size}), Image.Resampling.BICUBIC, reducing_gap={gap})`). "
    "The image is squashed to a square, not cropped: a 4:3 photo keeps all its content, narrower. "
    "Then divide the uint8 values by 255.")
RULE_SNIPPET = ("```python\nimport json, numpy as np\nrule = json.load(open('metadata.json'))['none_of_these']\n"
                "means = np.array(rule['class_means'])\n"
                "unit = features / np.linalg.norm(features, axis=1, keepdims=True)\n"
                "none_of_these = 1 - (unit @ means.T).max(axis=1) > rule['threshold']\n```")


def _usage(fmt: str, rm, size: int) -> str:
    form = EXPORTS[fmt]
    return (f"# {rm.run.id}: {rm.run.config.backbone}, {len(rm.classes)} classes\n\n"
            f"Input: float32 RGB images in [0, 1], shape (N, {size}, {size}, 3).\n"
            f"{PREPROCESSING.format(size=size, gap=REDUCING_GAP)}\n"
            f"Output: (N, {len(rm.classes)}) class probabilities in the order of labels.txt.\n\n"
            f"```python\n{form.load}\nlabels = open('labels.txt').read().splitlines()\n"
            f"print(labels[probs[0].argmax()])\n```\n\n"
            f"metadata.json holds the temperature the probabilities are already scaled by, and the run's \"none of "
            f"these\" rule: class mean directions and a cosine-distance threshold on the backbone's feature vector"
            + (f" ({form.features}):\n\n" + RULE_SNIPPET if form.features else
               "; this format outputs probabilities only, so apply the rule with the SavedModel or ONNX export.")
            + "\n")


def _metadata(rm) -> dict:
    """What a user of the export needs beside the model: classes, calibration, the rejection rule."""
    return {"run": rm.run.id, "backbone": rm.run.config.backbone, "classes": list(rm.classes),
            "input": {"shape": [None, rm.size, rm.size, 3], "dtype": "float32", "range": [0, 1]},
            "temperature": {"value": rm.head.temperature, "note": "already applied inside the model's probabilities"},
            "none_of_these": (rm.rule.to_json() if rm.rule else None),
            "none_of_these_note": "apply to the backbone's feature vector (the pooled output before the head): "
                                  "1 - max over classes of cosine(vector, class_means[c]) > threshold means none of "
                                  "the classes"}


def export_run(store: RunStore, run_id: str, fmt: str, out: str | Path) -> ExportResult:
    """Export a finished run's classifier, loaded back and checked before it is kept.

    Args:
        store: the run store that holds it; run_id: a completed run.
        fmt: one of core.inference.formats.FORMATS (its entry in EXPORTS writes and checks it).
        out: a folder that must not exist yet.

    Returns:
        ExportResult: the folder (model, labels.txt, metadata.json, USAGE.md), its format, how many validation
        images were checked and the top-1 agreement and largest probability difference with the run.

    Raises:
        StudioError: an unknown format, an existing folder, a head the format cannot hold, or an export that
        disagrees with the run on any validation image (nothing is left behind then).
    """
    if fmt not in FORMATS:
        raise StudioError(f"Unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    out = Path(out)
    if out.exists():
        raise StudioError(f"{out} already exists; choose a new folder for the export.")
    rm = run_model(store, run_id)
    form = EXPORTS[fmt]
    if rm.run.config.head in form.refused_heads:
        raise StudioError(form.refused_heads[rm.run.config.head])
    model, features = _float_models(rm)
    size = rm.backbone.input_size
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}-"))
    try:
        form.write(tmp, Exported(model=model, features=features, size=size))
        (tmp / "labels.txt").write_text("\n".join(rm.classes) + "\n", encoding="utf-8")
        (tmp / "metadata.json").write_text(json.dumps(_metadata(rm), indent=1), encoding="utf-8")
        (tmp / "USAGE.md").write_text(_usage(fmt, rm, size), encoding="utf-8")

        val = rm.run.split().val
        images = item_arrays(val, size).astype(np.float32) / 255.0
        expected = rm.predict_arrays((images * 255.0).round().astype(np.uint8))
        got = form.predict(tmp, images)
        agreement = float((got.argmax(1) == expected.argmax(1)).mean()) if len(images) else 1.0
        diff = float(np.abs(got - expected).max()) if len(images) else 0.0
        if agreement < 1.0:
            raise StudioError(f"The {fmt} export disagrees with the run on {1 - agreement:.0%} of the validation "
                              f"images (max probability difference {diff:.3g}); it was not saved.")
        if form.finish:
            form.finish(tmp, rm, size)
        tmp.rename(out)
        return ExportResult(
            path=out, format=fmt, checked_images=len(images), top1_agreement=agreement, max_abs_diff=diff
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def export_zip(store: RunStore, run_id: str, fmt: str) -> bytes:
    """The export as a zip archive in memory (for a download button)."""
    work = Path(tempfile.mkdtemp(prefix="export-"))
    try:
        result = export_run(store, run_id, fmt, work / f"{run_id}-{fmt}")
        archive = shutil.make_archive(str(work / "bundle"), "zip", root_dir=result.path)
        return Path(archive).read_bytes()
    finally:
        shutil.rmtree(work, ignore_errors=True)
