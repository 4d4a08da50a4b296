"""The export formats: one entry each, holding its title, how it writes the model, how the written file is
loaded back to be checked, and the code USAGE.md shows. Adding a format is one entry in EXPORTS.

TensorFlow and the runtimes are imported inside the functions, so the command line and the pages can list the
formats without loading them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

CHECK_BATCH = 32


@dataclass(frozen=True, kw_only=True)
class Exported:
    """What a writer gets: the classifier and the feature model (Keras, on [0, 1] float images), the input size."""
    model: Any
    features: Any
    size: int


@dataclass(frozen=True, kw_only=True)
class ExportFormat:
    """One way out of the studio. `write` fills an empty folder; `predict` loads what it wrote, as USAGE.md says,
    and returns probabilities for float images; `load` is USAGE.md's code; `features` says where the feature
    vector for the "none of these" rule comes from, or None when the format outputs probabilities only;
    `refused_heads` names the heads it cannot hold, with why; `finish` turns the checked files into the export's
    final form."""
    title: str
    write: Callable[[Path, Exported], None]
    predict: Callable[[Path, np.ndarray], np.ndarray]
    load: str
    features: str | None = None
    refused_heads: dict[str, str] = field(default_factory=dict)  # head kind -> why this format cannot hold it
    finish: Callable[[Path, Any, int], None] | None = None  # after the check: (folder, the run's model, size)


def _image_spec(size: int):
    from core.tf import tf

    return [tf.TensorSpec([None, size, size, 3], tf.float32, "image")]


def _write_savedmodel(folder: Path, exported: Exported) -> None:
    from core.backbones.tflite_convert import variables_only
    from core.tf import tf

    model, features, spec = exported.model, exported.features, _image_spec(exported.size)
    module = variables_only(model, features)
    module.serve = tf.function(lambda image: model(image, training=False), input_signature=spec)
    module.features = tf.function(lambda image: features(image, training=False), input_signature=spec)
    tf.saved_model.save(module, str(folder / "model"),
                        signatures={"serving_default": module.serve, "features": module.features})


def _predict_savedmodel(folder: Path, images: np.ndarray) -> np.ndarray:
    from core.tf import tf

    loaded = tf.saved_model.load(str(folder / "model"))
    return np.concatenate([loaded.serve(tf.constant(images[i:i + CHECK_BATCH])).numpy()
                           for i in range(0, len(images), CHECK_BATCH)])


def _write_keras(folder: Path, exported: Exported) -> None:
    exported.model.save(str(folder / "model.keras"))


def _predict_keras(folder: Path, images: np.ndarray) -> np.ndarray:
    from core.tf import tf_keras

    return tf_keras.models.load_model(str(folder / "model.keras")).predict(images, verbose=0)


def _write_tflite(folder: Path, exported: Exported) -> None:
    from core.backbones.tflite_convert import tflite_bytes

    (folder / "model.tflite").write_bytes(tflite_bytes(exported.model))


def _predict_tflite(folder: Path, images: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(folder / "model.tflite"))
    inp = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(inp, images.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp, images)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


ONNX_OPSET = 17


def _write_onnx(folder: Path, exported: Exported) -> None:
    """tf2onnx on the traced function: outputs `probs` and `features` for an input `image`."""
    import tf2onnx

    from core.errors import StudioError
    from core.tf import tf

    model, features, spec = exported.model, exported.features, _image_spec(exported.size)
    both = tf.function(lambda image: {"probs": model(image, training=False),
                                      "features": features(image, training=False)}, input_signature=spec)
    try:
        tf2onnx.convert.from_function(both, input_signature=spec, opset=ONNX_OPSET,
                                      output_path=str(folder / "model.onnx"))
    except Exception as exc:  # tf2onnx raises its own and TensorFlow's errors for an op it cannot map
        raise StudioError(f"This run's model has no ONNX form tf2onnx can write ({type(exc).__name__}: {exc}); "
                          f"export it as a SavedModel or TFLite instead.") from exc


def _predict_onnx(folder: Path, images: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    return session.run(["probs"], {"image": images})[0]


def _finish_web(folder: Path, rm: Any, size: int) -> None:
    """classifier.html in place of the checked model.onnx: the model, ONNX Runtime Web and the run's rule in one
    file, which is then the whole export."""
    import datetime

    from core.inference.web_page import page_html
    from core.inference.web_runtime import ensure_runtime
    from core.model.metrics import accuracy_text

    runtime = ensure_runtime()
    model = (folder / "model.onnx").read_bytes()
    metrics, today = rm.run.metrics(), datetime.date.today().isoformat()
    finished = datetime.date.fromtimestamp(rm.run.status.get("finished") or 0).isoformat()
    numbers = [f"{part} accuracy {accuracy_text(metrics[f'{key}_accuracy'], metrics.get(f'{key}_accuracy_interval'))}"
               for part, key in (("validation", "val"), ("test", "test")) if metrics.get(f"{key}_accuracy") is not None]
    summary = (f"Run {rm.run.id} · {rm.run.config.backbone} · classes: {', '.join(rm.classes)} · "
               + " · ".join(numbers) + f" · trained {finished}, exported {today}. Everything runs in this browser.")
    meta = {"classes": list(rm.classes), "input_size": size,
            "rule": rm.rule.to_json() if rm.rule else None}  # the page reads class_means and threshold
    (folder / "classifier.html").write_text(page_html(
        title=f"{', '.join(rm.classes[:4])}{'...' if len(rm.classes) > 4 else ''} classifier", summary=summary,
        meta=meta, model=model, ort_module=(runtime / "ort.wasm.bundle.min.mjs").read_bytes(),
        wasm=(runtime / "ort-wasm-simd-threaded.wasm").read_bytes()), encoding="utf-8")
    (folder / "model.onnx").unlink()


EXPORTS: dict[str, ExportFormat] = {
    "savedmodel": ExportFormat(
        title="TensorFlow SavedModel", write=_write_savedmodel, predict=_predict_savedmodel,
        load="import tensorflow as tf\nmodel = tf.saved_model.load('model')\n"
             "probs = model.serve(images)  # or model.signatures['serving_default'](image=images)",
        features="`model.features(images)` gives that vector"),
    "keras": ExportFormat(
        title="Keras model (.keras)", write=_write_keras, predict=_predict_keras,
        refused_heads={"knn": "The k-NN head votes with a TensorFlow top-k that no built-in Keras layer has, so a "
                              ".keras file could not be loaded without the studio's code; export it as a SavedModel "
                              "or TFLite."},
        load="import os; os.environ['TF_USE_LEGACY_KERAS'] = '1'\nimport tf_keras\n"
             "model = tf_keras.models.load_model('model.keras')\nprobs = model.predict(images)"),
    "tflite": ExportFormat(
        title="TensorFlow Lite (LiteRT)", write=_write_tflite, predict=_predict_tflite,
        load="# pip install ai-edge-litert\nfrom ai_edge_litert.interpreter import Interpreter\n"
             "interpreter = Interpreter(model_path='model.tflite')\n"
             "inp = interpreter.get_input_details()[0]['index']\n"
             "interpreter.resize_tensor_input(inp, images.shape); interpreter.allocate_tensors()\n"
             "interpreter.set_tensor(inp, images)\ninterpreter.invoke()\n"
             "probs = interpreter.get_tensor(interpreter.get_output_details()[0]['index'])"),
    "onnx": ExportFormat(
        title="ONNX (ONNX Runtime)", write=_write_onnx, predict=_predict_onnx,
        load="import onnxruntime as ort\nsession = ort.InferenceSession('model.onnx')\n"
             "probs, features = session.run(['probs', 'features'], {'image': images})",
        features="the `features` output"),
    "web": ExportFormat(
        title="Web page (classifies in the browser, no server)", write=_write_onnx, predict=_predict_onnx,
        finish=_finish_web,
        load="# Open classifier.html in a browser (double-click it; no server, no network). Drop or pick images,\n"
             "# or use the camera. The page holds the same ONNX model as the ONNX export."),
}
FORMATS = tuple(EXPORTS)
