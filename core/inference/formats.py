"""The export formats, named without loading TensorFlow (the command line lists them)."""

FORMATS = ("savedmodel", "keras", "tflite", "onnx", "web")
