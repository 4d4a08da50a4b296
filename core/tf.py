"""Imports TensorFlow and Keras 2 (tf_keras) after core/__init__ has set TF_USE_LEGACY_KERAS."""

# isort: off
import core  # noqa: F401  (sets the environment before TensorFlow loads)
import tensorflow as tf
import tf_keras
# isort: on

__all__ = ["tf", "tf_keras"]
