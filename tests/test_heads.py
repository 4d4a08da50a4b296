"""Every head: numpy probabilities equal its Keras layer's; weights go out and come back under its own names."""

import numpy as np
import pytest

from core.heads import DenseHead, LinearHead, load_head, new_head


def data(classes: int, n: int = 40, dim: int = 6):
    rng = np.random.default_rng(classes)
    labels = np.arange(n) % classes
    vectors = rng.normal(0, 1, (n, dim)) + labels[:, None] * 2.0
    return vectors.astype(np.float32), labels


@pytest.mark.parametrize("kind, classes", [("dense", 3), ("logreg", 3), ("logreg", 2), ("svm", 3), ("svm", 2)])
def test_numpy_and_keras_probabilities_agree_and_survive_saving(kind, classes):
    vectors, labels = data(classes)
    head = new_head(kind, classes)
    if kind == "dense":
        head.build(vectors.shape[1])
        kernel, bias = head.layer.get_weights()
        head.layer.set_weights([np.random.default_rng(0).normal(0, 1, kernel.shape), bias + 0.1])
    else:
        head.fit(vectors, labels, classes, seed=0)
    probs = head.probs(vectors)
    assert probs.shape == (len(vectors), classes) and np.allclose(probs.sum(axis=1), 1.0)
    keras = head.keras_layer()(vectors, training=False).numpy()
    assert np.abs(keras - probs).max() < 1e-5
    weights = head.weights()
    assert all(k.startswith("classifier/") for k in weights)
    again = load_head(kind, weights, classes)
    assert np.abs(again.probs(vectors) - probs).max() < 1e-6
    if kind != "dense":
        assert (probs.argmax(1) == labels).mean() >= 0.9  # separable clusters


def test_logistic_regression_probabilities_are_scikit_learns():
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    vectors, labels = data(2)
    head = LinearHead("logreg").fit(vectors, labels, 2, seed=0)
    scaler = StandardScaler().fit(vectors)
    reference = LogisticRegression(max_iter=2000, random_state=0).fit(scaler.transform(vectors), labels)
    assert np.abs(head.probs(vectors) - reference.predict_proba(scaler.transform(vectors))).max() < 1e-6
    assert isinstance(new_head("dense", 2), DenseHead)
