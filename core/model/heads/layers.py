"""Keras layers for heads that no built-in layer computes (the heads import them only when a Keras
layer is asked for, so a head used in numpy never loads TensorFlow)."""

from __future__ import annotations

import numpy as np

from core.tf import tf, tf_keras


class NeighbourVote(tf_keras.layers.Layer):
    """NeighbourHead.probs as TensorFlow ops (top-k has no built-in Keras layer)."""

    def __init__(self, train: np.ndarray, labels: np.ndarray, num_classes: int, k: int, temperature: float,
                 calibration: float = 1.0, **kw):
        super().__init__(name="classifier", **kw)
        self.train_t = np.ascontiguousarray(train.T, np.float32)
        self.onehot = np.eye(num_classes, dtype=np.float32)[labels]
        self.k, self.temperature, self.calibration = k, temperature, calibration

    def call(self, vectors, training=None):
        # Constants made here, not in __init__: a traced function then holds them as graph constants (an ONNX
        # export embeds them) rather than capturing eager tensors as extra inputs.
        sims = tf.matmul(tf.math.l2_normalize(vectors, axis=1), tf.constant(self.train_t))
        top, index = tf.math.top_k(sims, self.k)
        weight = tf.nn.softmax(top / self.temperature, axis=1)
        votes = tf.einsum("nk,nkc->nc", weight, tf.gather(tf.constant(self.onehot), index))
        if self.calibration == 1.0:
            return votes
        return tf.nn.softmax(tf.math.log(tf.maximum(votes, 1e-12)) / self.calibration, axis=1)
