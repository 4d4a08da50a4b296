"""EfficientNet-Lite0's shape, for code that must not load TensorFlow to know it (core.backbones.tflite_run)."""

INPUT_SIZE = 224
FEATURE_DIM = 1280
NUM_BLOCKS = 18  # stem + 16 MBConv blocks + head
