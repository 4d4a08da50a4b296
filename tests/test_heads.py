"""Every head: numpy probabilities equal its Keras layer's; weights go out and come back under its own names."""

import numpy as np
import pytest

from core.model.heads import DenseHead, LinearHead, load_head, new_head


def data(classes: int, n: int = 40, dim: int = 6):
    rng = np.random.default_rng(classes)
    labels = np.arange(n) % classes
    vectors = rng.normal(0, 1, (n, dim)) + np.eye(dim)[labels] * 4.0  # apart in direction too, for cosine heads
    return vectors.astype(np.float32), labels


@pytest.mark.parametrize("kind, classes", [("dense", 3), ("logreg", 3), ("logreg", 2), ("svm", 3), ("svm", 2),
                                           ("knn", 3), ("knn", 2), ("nearest-mean", 3), ("nearest-mean", 2)])
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


def test_knn_chooses_k_by_leaving_each_image_out_and_names_the_nearest_training_images():
    rng = np.random.default_rng(0)
    # Two tight clusters with one mislabelled point in each: k = 1 votes for the wrong label at its twin,
    # a larger k outvotes it.
    centres = np.eye(8)[:2] * 10
    labels = np.repeat([0, 1], 30)
    vectors = centres[labels] + rng.normal(0, 1, (60, 8))
    noisy = labels.copy()
    noisy[[0, 30]] = [1, 0]
    head = new_head("knn", 2).fit(vectors, noisy, 2)
    assert head.k > 1
    index, sims = head.nearest(vectors[:1] * 3.0, n=4)  # length does not matter to cosine
    assert index.shape == (1, 4) and np.all(np.diff(sims[0]) <= 1e-7)
    assert index[0, 0] == 0 and abs(sims[0, 0] - 1.0) < 1e-5  # itself, first


def test_nearest_mean_is_the_class_whose_mean_direction_is_closest():
    vectors = np.array([[1, 0.1], [1, -0.1], [0.1, 1], [-0.1, 1]], np.float32)
    head = new_head("nearest-mean", 2).fit(vectors, np.array([0, 0, 1, 1]), 2)
    assert list(head.probs(np.array([[5.0, 1.0], [0.0, 2.0]])).argmax(1)) == [0, 1]


def test_a_loaded_dense_head_shared_by_threads_builds_one_layer():
    """Results crashed once (issue 43): two reruns asked the run's cached head for its Keras layer at once, and one
    called set_weights with the weights the other had just cleared. Eight threads ask at the same moment."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    vectors, labels = data(3)
    weights = new_head("dense", 3).fit(vectors, labels, 3, seed=0).weights()
    for _ in range(3):
        head = load_head("dense", weights, 3)
        expected = head.probs(vectors)
        start = threading.Barrier(8)

        def ask(_, head=head, start=start):
            start.wait()
            return head.layer, head.probs(vectors)

        with ThreadPoolExecutor(8) as pool:
            found = list(pool.map(ask, range(8)))
        assert len({id(layer) for layer, _ in found}) == 1
        assert all(np.abs(probs - expected).max() < 1e-6 for _, probs in found)
