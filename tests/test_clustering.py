"""Unsupervised classification: matching, reducers, autoencoders (crystal_course.clustering)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from crystal_course import clustering
from crystal_course.models import conv_autoencoder, dense_autoencoder


def brute_force_accuracy(y_true, y_pred):
    """Best one-to-one matching by trying every injective cluster -> class assignment."""
    classes = range(y_true.max() + 1)
    clusters = range(y_pred.max() + 1)
    best = 0
    if len(clusters) <= len(classes):
        for image in itertools.permutations(classes, len(clusters)):
            best = max(best, sum(image[c] == t for t, c in zip(y_true, y_pred, strict=True)))
    else:  # more clusters than classes: choose which clusters get the classes
        for chosen in itertools.permutations(clusters, len(classes)):
            mapping = dict(zip(chosen, classes, strict=True))
            best = max(
                best, sum(mapping.get(c, -1) == t for t, c in zip(y_true, y_pred, strict=True))
            )
    return best / len(y_true)


@pytest.mark.parametrize("n_classes, n_clusters", [(3, 3), (4, 4), (3, 5), (5, 3), (2, 2)])
def test_cluster_accuracy_agrees_with_brute_force(n_classes, n_clusters):
    rng = np.random.default_rng(n_classes * 10 + n_clusters)
    for _ in range(15):
        y_true = rng.integers(0, n_classes, 25)
        y_pred = rng.integers(0, n_clusters, 25)
        y_true[:n_classes] = np.arange(n_classes)  # every label present
        y_pred[:n_clusters] = np.arange(n_clusters)
        accuracy, mapping = clustering.cluster_accuracy(y_true, y_pred)
        assert accuracy == pytest.approx(brute_force_accuracy(y_true, y_pred))
        assert len(mapping) == min(n_classes, n_clusters)
        assert len(set(mapping.values())) == len(mapping)  # one-to-one


def test_cluster_accuracy_is_label_permutation_invariant_and_rejects_bad_input():
    y = np.array([0, 0, 1, 1, 2, 2])
    accuracy, mapping = clustering.cluster_accuracy(y, np.array([2, 2, 0, 0, 1, 1]))
    assert accuracy == 1.0 and mapping == {2: 0, 0: 1, 1: 2}
    # One cluster per sample would be 100 % under a many-to-one rule; not here.
    assert clustering.cluster_accuracy(y, np.arange(6))[0] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="same non-zero length"):
        clustering.cluster_accuracy(y, y[:3])
    with pytest.raises(ValueError, match="integer labels"):
        clustering.cluster_accuracy(y.astype(float), y)


def test_evaluate_clustering_and_predict():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [0, 10]])
    y = np.repeat([0, 1, 2], 30)
    points = centres[y] + rng.normal(size=(90, 2))
    score = clustering.evaluate_clustering(points, y, seed=0)
    assert score.accuracy == 1.0 and score.ari == pytest.approx(1) and score.nmi == pytest.approx(1)
    np.testing.assert_array_equal(score.predict(centres + 0.5), [0, 1, 2])
    again = clustering.evaluate_clustering(points, y, seed=0)
    np.testing.assert_array_equal(score.clusters, again.clusters)
    four = clustering.evaluate_clustering(points, y, k=4, seed=0)
    assert four.accuracy < 1.0 and len(four.mapping) == 3
    with pytest.raises(ValueError, match="embedding"):
        clustering.evaluate_clustering(points[:10], y)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        score.predict(np.zeros((2, 3)))


def test_n_components_for():
    ratio = np.array([0.5, 0.3, 0.15, 0.05])
    assert clustering.n_components_for(ratio, 0.5) == 1
    assert clustering.n_components_for(ratio, 0.8) == 2
    assert clustering.n_components_for(ratio, 0.95) == 3
    assert clustering.n_components_for(ratio, 1.0) == 4
    with pytest.raises(ValueError, match="explain only"):
        clustering.n_components_for(ratio[:2], 0.95)
    with pytest.raises(ValueError, match="fraction"):
        clustering.n_components_for(ratio, 0)


@pytest.fixture(scope="module")
def images():
    from crystal_course.diffraction import fingerprints
    from crystal_course.structures import sample_classes

    atoms, y = sample_classes(3, seed=0, n_atoms=100)
    return fingerprints(atoms, progress=False), y


@pytest.mark.parametrize(
    "make", [clustering.pca, clustering.kernel_pca, clustering.fourier_mellin_pca]
)
def test_linear_reducers_have_the_right_shape_and_are_deterministic(images, make):
    x, _ = images
    first = make(5, seed=0).fit_transform(x)
    second = make(5, seed=0).fit_transform(x)
    assert first.shape == (len(x), 5)
    np.testing.assert_allclose(first, second, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="fingerprints"):
        make(5).fit(x[0])


def test_kernel_pca_runs_on_the_fingerprints_not_on_pca_features(images):
    x, _ = images
    steps = [name for name, _ in clustering.kernel_pca(5).steps]
    assert steps == ["flatten", "kernel_pca"]
    assert clustering.kernel_pca(5).fit(x)["kernel_pca"].kernel == "poly"


def test_fourier_mellin_forgets_radial_scale():
    """A ring pattern scaled radially keeps its Fourier-Mellin magnitude (up to sampling)."""
    n = 64
    rows, cols = np.mgrid[0:n, 0:n] - (n - 1) / 2
    radius, angle = np.hypot(rows, cols), np.arctan2(rows, cols)

    def pattern(scale):
        spots = np.exp(-((radius - 8 * scale) ** 2) / 2) * (1 + np.cos(6 * angle)) ** 2
        spots += np.exp(-((radius - 14 * scale) ** 2) / 2) * (1 + np.cos(6 * angle + 0.5)) ** 2
        return np.repeat(spots[None, :, :, None], 3, axis=3).astype(np.float32)

    fm = clustering.FourierMellin().fit(pattern(1.0))
    base, stretched = fm.transform(pattern(1.0)), fm.transform(pattern(1.3))
    other = fm.transform(np.transpose(pattern(1.0), (0, 2, 1, 3)) ** 0.3)  # a different image
    assert base.shape == (1, (32 // 2 + 1) * 64 * 3)
    close = np.linalg.norm(base - stretched) / np.linalg.norm(base)
    far = np.linalg.norm(base - other) / np.linalg.norm(base)
    assert close < 0.25 and close < far / 2
    raw = np.linalg.norm(pattern(1.0) - pattern(1.3)) / np.linalg.norm(pattern(1.0))
    assert raw > 1.0  # in pixels the two are nearly disjoint
    polar = fm.log_polar(pattern(1.0))
    assert polar.shape == (1, 32, 64, 3)
    with pytest.raises(ValueError, match="fitted on"):
        fm.transform(np.zeros((1, 32, 32, 3), np.float32))


def test_autoencoders_learn_and_embed(images):
    x, _ = images
    dense = clustering.DenseAutoencoder(bottleneck=2, epochs=6, batch_size=4, seed=0).fit(x)
    loss = dense.history_["loss"]
    assert loss[-1] < loss[0] and "val_loss" in dense.history_
    assert dense.transform(x).shape == (len(x), 2)
    assert dense.reconstruct(x[:2]).shape == (2, 64, 64, 3)
    again = clustering.DenseAutoencoder(bottleneck=2, epochs=6, batch_size=4, seed=0).fit(x)
    np.testing.assert_allclose(again.transform(x), dense.transform(x), rtol=1e-4, atol=1e-5)
    conv = clustering.ConvAutoencoder(bottleneck=4, epochs=4, batch_size=4, seed=0).fit(x)
    assert conv.history_["loss"][-1] < conv.history_["loss"][0]
    assert conv.transform(x).shape == (len(x), 4)


def test_autoencoder_architectures():
    auto, encoder = dense_autoencoder(seed=0)
    widths = [layer.units for layer in auto.layers if hasattr(layer, "units")]
    assert widths == [128, 64, 2, 64, 128, 64 * 64 * 3]  # Table 2, 12288 not 12280
    assert auto.get_layer("output").activation.__name__ == "tanh"
    assert encoder.output_shape == (None, 2) and auto.output_shape == (None, 64, 64, 3)
    conv, code = conv_autoencoder(bottleneck=16)
    assert conv.output_shape == (None, 64, 64, 3) and code.output_shape == (None, 16)
    with pytest.raises(ValueError, match="divisible"):
        conv_autoencoder((60, 60, 3))
    with pytest.raises(ValueError, match="bottleneck"):
        dense_autoencoder(bottleneck=0)


def test_plots(images):
    import matplotlib

    matplotlib.use("Agg")
    x, y = images
    ax = clustering.plot_scree(np.array([0.6, 0.3, 0.08, 0.02]))
    assert "variance" in ax.get_ylabel()
    axes, palette = clustering.plot_embedding(
        np.random.default_rng(0).random((len(y), 2)), y, y, [f"c{i}" for i in range(7)], title="t"
    )
    assert axes[0].get_title() == "t: true class" and len(palette) == 7
    with pytest.raises(ValueError, match="embedding"):
        clustering.plot_embedding(np.zeros((3, 1)), y[:3], y[:3], ["a"])


def test_per_crystal_correctness_averages_to_the_matched_accuracy():
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1, 2], 15)
    points = np.array([[0, 0], [6, 0], [0, 6]])[y] + rng.normal(scale=2.0, size=(45, 2))
    score = clustering.evaluate_clustering(points, y, seed=0)
    right = score.right(y)
    assert right.dtype == bool and right.shape == (45,)
    assert right.mean() == pytest.approx(score.accuracy)
    with pytest.raises(ValueError, match="classes"):
        score.right(y[:3])
