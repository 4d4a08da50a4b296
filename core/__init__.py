"""Transfer Learning Studio core: data, backbones, training, evaluation, views, export.

This is the one place that selects Keras 2 (tf-keras) for TensorFlow: tensorflow_hub's
KerasLayer does not work with Keras 3, and the variable must be set before TensorFlow loads.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
