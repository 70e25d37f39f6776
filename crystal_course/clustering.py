"""Classes without labels: dimension reduction, K-Means, and honest scoring.

Every reducer follows scikit-learn's conventions (``fit`` / ``transform`` on a
batch of fingerprints ``(N, 64, 64, 3)``): linear PCA, kernel PCA with a
polynomial kernel (on the fingerprints themselves -- the term report ran it on
PCA features), the dense autoencoder of the report's Table 2, a convolutional
autoencoder, and a scale-invariant Fourier-Mellin representation. Clusters are
matched to classes by an assignment problem on the contingency matrix
(:func:`cluster_accuracy`), not by a search over permutations.

Introduced in Chapter 5.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA, KernelPCA
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.pipeline import Pipeline

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _labels(values, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or array.dtype.kind not in "iu" or (array.size and array.min() < 0):
        raise ValueError(f"{name} must be a 1-D array of non-negative integer labels")
    return array


def contingency(y_true, y_pred) -> np.ndarray:
    """Counts ``C[class, cluster]`` of samples of each class in each cluster.

    Notes
    -----
    Introduced in Chapter 5.
    """
    y_true = _labels(y_true, "y_true")
    y_pred = _labels(y_pred, "y_pred")
    if y_true.shape != y_pred.shape or not y_true.size:
        raise ValueError(
            f"y_true and y_pred must have the same non-zero length, got {y_true.shape} and "
            f"{y_pred.shape}"
        )
    table = np.zeros((y_true.max() + 1, y_pred.max() + 1), dtype=np.int64)
    np.add.at(table, (y_true, y_pred), 1)
    return table


def cluster_accuracy(y_true, y_pred) -> tuple[float, dict[int, int]]:
    """Accuracy of a clustering under the best one-to-one cluster -> class matching.

    The matching maximises the number of samples whose cluster is mapped to
    their class: an assignment problem on the contingency matrix, solved
    exactly by ``scipy.optimize.linear_sum_assignment`` (Hungarian method).

    Rule for ``k`` clusters and ``c`` classes: each cluster gets at most one
    class and each class at most one cluster. If ``k > c`` the ``k - c`` least
    useful clusters stay unmatched and their samples count as wrong; if
    ``k < c`` some classes get no cluster. (Mapping every cluster to its
    majority class instead would reward ``k = N`` with 100 %.)

    Parameters
    ----------
    y_true : array of int
        ``(N,)`` true classes.
    y_pred : array of int
        ``(N,)`` cluster labels.

    Returns
    -------
    accuracy : float
        Share of samples in a cluster matched to their class.
    mapping : dict of int to int
        Cluster -> class for the matched clusters.

    Notes
    -----
    Introduced in Chapter 5.
    """
    table = contingency(y_true, y_pred)
    classes, clusters = linear_sum_assignment(table, maximize=True)
    mapping = {int(k): int(c) for c, k in zip(classes, clusters, strict=True)}
    return float(table[classes, clusters].sum() / table.sum()), mapping


@dataclass(frozen=True)
class ClusteringScore:
    """K-Means on an embedding, scored against the true classes.

    Attributes
    ----------
    accuracy : float
        :func:`cluster_accuracy`.
    ari : float
        Adjusted Rand index (0 for chance, 1 for identical partitions).
    nmi : float
        Normalised mutual information (0 to 1).
    clusters : numpy.ndarray
        ``(N,)`` cluster labels.
    mapping : dict
        Cluster -> class.
    kmeans : sklearn.cluster.KMeans
        The fitted model (its centres classify new samples).
    """

    accuracy: float
    ari: float
    nmi: float
    clusters: np.ndarray
    mapping: dict
    kmeans: KMeans

    def right(self, y) -> np.ndarray:
        """Per-crystal correctness under the matching: ``(N,)`` bool, its mean the accuracy.

        A crystal counts as right when its cluster is matched to its class; for paired
        comparisons of two embeddings on the same crystals
        (:func:`crystal_course.uncertainty.compare_correct`).
        """
        y = np.asarray(y)
        if y.shape != self.clusters.shape:
            raise ValueError(f"y must be ({len(self.clusters)},) classes, got shape {y.shape}")
        matched = np.array([self.mapping.get(int(c), -1) for c in self.clusters])
        return matched == y

    def predict(self, embedding: np.ndarray) -> np.ndarray:
        """Classes of new samples: nearest cluster centre, then its matched class.

        Samples whose nearest centre has no class (more clusters than classes)
        get ``-1``.
        """
        embedding = np.asarray(embedding, dtype=np.float64)
        if embedding.ndim != 2 or embedding.shape[1] != self.kmeans.cluster_centers_.shape[1]:
            raise ValueError(
                f"embedding must be (N, {self.kmeans.cluster_centers_.shape[1]}), "
                f"got {embedding.shape}"
            )
        clusters = self.kmeans.predict(embedding)
        return np.array([self.mapping.get(int(c), -1) for c in clusters], dtype=int)


def evaluate_clustering(
    embedding: np.ndarray, y, k: int | None = None, seed: int = 0, n_init: int = 10
) -> ClusteringScore:
    """Cluster an embedding with K-Means and score it: accuracy, ARI, NMI.

    Parameters
    ----------
    embedding : numpy.ndarray
        ``(N, d)`` reduced representation.
    y : array of int
        ``(N,)`` true classes (used only for scoring).
    k : int, optional
        Number of clusters (default: number of classes in ``y``).
    seed : int, default 0
        K-Means' random state.
    n_init : int, default 10
        K-Means restarts.

    Notes
    -----
    Introduced in Chapter 5.
    """
    embedding = np.asarray(embedding, dtype=np.float64)
    y = _labels(y, "y")
    if embedding.ndim != 2 or len(embedding) != len(y):
        raise ValueError(f"embedding must be (N, d) with N = {len(y)}, got {embedding.shape}")
    k = k or len(np.unique(y))
    kmeans = KMeans(k, n_init=n_init, random_state=seed).fit(embedding)
    clusters = kmeans.labels_
    accuracy, mapping = cluster_accuracy(y, clusters)
    return ClusteringScore(
        accuracy,
        float(adjusted_rand_score(y, clusters)),
        float(normalized_mutual_info_score(y, clusters)),
        clusters,
        mapping,
        kmeans,
    )


def n_components_for(explained_variance_ratio, fraction: float = 0.95) -> int:
    """Smallest number of principal components explaining ``fraction`` of the variance.

    Notes
    -----
    Introduced in Chapter 5 (scree plot).
    """
    ratio = np.asarray(explained_variance_ratio, dtype=float)
    if ratio.ndim != 1 or not ratio.size or (ratio < 0).any():
        raise ValueError("explained_variance_ratio must be a 1-D array of non-negative shares")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    cumulative = np.cumsum(ratio)
    if cumulative[-1] < fraction - 1e-9:
        raise ValueError(
            f"the components given explain only {cumulative[-1]:.3f} < {fraction} of the variance"
        )
    return int(np.searchsorted(cumulative, fraction - 1e-12) + 1)


def _images(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 4:
        raise ValueError(f"expected fingerprints (N, height, width, channels), got shape {x.shape}")
    return x


class Flatten(TransformerMixin, BaseEstimator):
    """``(N, height, width, channels)`` images -> ``(N, height * width * channels)`` rows."""

    def fit(self, x, y=None):
        self.shape_ = _images(x).shape[1:]
        return self

    def transform(self, x):
        x = _images(x)
        if x.shape[1:] != self.shape_:
            raise ValueError(f"fitted on images {self.shape_}, got {x.shape[1:]}")
        return x.reshape(len(x), -1)


class FourierMellin(TransformerMixin, BaseEstimator):
    """Scale-invariant features: log-polar resampling, then ``|FFT|`` along log-radius.

    An isotropic stretch of a pattern (every spot's radius times the same factor)
    is, in log-polar coordinates ``(log r, theta)``, a shift along ``log r``, and
    the magnitude of a Fourier transform along that axis does not see shifts. The
    angles between spots -- what the lattice type fixes -- survive. Only isotropic
    stretches are forgotten: a change of c/a moves spots anisotropically and is
    only partly removed. (The element does not move spots at all: fingerprints are
    computed after rescaling to a nearest-neighbour distance of 1 Å.) Intensities
    are square-rooted first to tame the brightest spots. The resampling is one
    sparse matrix product for the whole batch (bilinear weights computed once).

    Parameters
    ----------
    n_radii : int, default 32
        Samples along log-radius, from ``r_min`` to ``r_max`` pixels.
    n_angles : int, default 64
        Samples along the angle.
    r_min, r_max : float
        Radial range in pixels (default 2 and just inside the image).

    Notes
    -----
    Introduced in Chapter 5.
    """

    def __init__(
        self, n_radii: int = 32, n_angles: int = 64, r_min: float = 2.0, r_max: float | None = None
    ):
        self.n_radii = n_radii
        self.n_angles = n_angles
        self.r_min = r_min
        self.r_max = r_max

    def fit(self, x, y=None):
        from scipy.sparse import csr_matrix

        x = _images(x)
        height, width = x.shape[1:3]
        r_max = self.r_max or (min(height, width) - 1) / 2 - 1
        if not 0 < self.r_min < r_max or self.n_radii < 2 or self.n_angles < 2:
            raise ValueError("need 0 < r_min < r_max and at least 2 radii and angles")
        radii = np.exp(np.linspace(np.log(self.r_min), np.log(r_max), self.n_radii))
        angles = np.linspace(0, 2 * np.pi, self.n_angles, endpoint=False)
        r, t = np.meshgrid(radii, angles, indexing="ij")
        rows = (height - 1) / 2 + r * np.sin(t)
        cols = (width - 1) / 2 + r * np.cos(t)
        r0, c0 = np.floor(rows).astype(int), np.floor(cols).astype(int)
        fr, fc = rows - r0, cols - c0
        targets, sources, weights = [], [], []
        for dr, dc, w in ((0, 0, (1 - fr) * (1 - fc)), (1, 0, fr * (1 - fc)),
                          (0, 1, (1 - fr) * fc), (1, 1, fr * fc)):  # fmt: skip
            targets.append(np.arange(r.size))
            sources.append(((r0 + dr) * width + (c0 + dc)).ravel())
            weights.append(w.ravel())
        self.matrix_ = csr_matrix(
            (np.concatenate(weights), (np.concatenate(targets), np.concatenate(sources))),
            shape=(r.size, height * width),
        )
        self.shape_ = x.shape[1:]
        return self

    def log_polar(self, x) -> np.ndarray:
        """``(N, n_radii, n_angles, channels)`` log-polar resampling of the images."""
        x = _images(x)
        if x.shape[1:] != self.shape_:
            raise ValueError(f"fitted on images {self.shape_}, got {x.shape[1:]}")
        n, h, w, c = x.shape
        flat = x.transpose(1, 2, 0, 3).reshape(h * w, n * c)
        polar = np.asarray(self.matrix_ @ flat, dtype=np.float32)
        return polar.reshape(self.n_radii, self.n_angles, n, c).transpose(2, 0, 1, 3)

    def transform(self, x):
        polar = np.sqrt(np.clip(self.log_polar(x), 0, None))
        spectrum = np.abs(np.fft.rfft(polar, axis=1))
        return spectrum.reshape(len(spectrum), -1).astype(np.float32)


def pca(n_components: int = 50, seed: int = 0) -> Pipeline:
    """Linear PCA of the flattened fingerprints (``whiten=False``).

    Notes
    -----
    Introduced in Chapter 5.
    """
    return Pipeline([("flatten", Flatten()), ("pca", PCA(n_components, random_state=seed))])


def kernel_pca(n_components: int = 50, degree: int = 3, seed: int = 0) -> Pipeline:
    """Kernel PCA with a polynomial kernel, on the flattened fingerprints themselves.

    ``gamma`` is ``1 / n_features`` (scikit-learn's default), so the kernel is
    ``(x . x' / 12288 + 1) ** degree``.

    Notes
    -----
    Introduced in Chapter 5. The term report ran kernel PCA on linear-PCA
    features by mistake.
    """
    return Pipeline(
        [
            ("flatten", Flatten()),
            (
                "kernel_pca",
                KernelPCA(
                    n_components,
                    kernel="poly",
                    degree=degree,
                    coef0=1,
                    random_state=seed,
                    eigen_solver="randomized",
                ),
            ),
        ]
    )


def fourier_mellin_pca(n_components: int = 50, seed: int = 0) -> Pipeline:
    """:class:`FourierMellin` features, then linear PCA.

    Notes
    -----
    Introduced in Chapter 5.
    """
    return Pipeline(
        [
            ("fourier_mellin", FourierMellin()),
            ("pca", PCA(n_components, random_state=seed)),
        ]
    )


class _KerasAutoencoder(TransformerMixin, BaseEstimator):
    """Shared fit/transform of the autoencoders: Adam, MSE, a seeded 5 % validation share."""

    def _build(self, shape):  # pragma: no cover - overridden
        raise NotImplementedError

    def fit(self, x, y=None):
        import keras

        from crystal_course.training import split_indices

        x = _images(x)
        keras.utils.set_random_seed(self.seed)
        self.autoencoder_, self.encoder_ = self._build(x.shape[1:])
        self.autoencoder_.compile(optimizer=keras.optimizers.Adam(self.learning_rate), loss="mse")
        fit, val = split_indices(len(x), self.validation_fraction, self.seed)
        history = self.autoencoder_.fit(
            x[fit],
            x[fit],
            epochs=self.epochs,
            batch_size=self.batch_size,
            validation_data=(x[val], x[val]) if len(val) else None,
            shuffle=True,
            verbose=0,
        )
        self.history_ = {k: [float(v) for v in values] for k, values in history.history.items()}
        return self

    def transform(self, x):
        return self.encoder_.predict(_images(x), batch_size=256, verbose=0)

    def reconstruct(self, x) -> np.ndarray:
        """The autoencoder's reconstruction of ``x``."""
        return self.autoencoder_.predict(_images(x), batch_size=256, verbose=0)


class DenseAutoencoder(_KerasAutoencoder):
    """The report's Table 2 autoencoder as a transformer: the code is the embedding.

    Trained with Adam and mean squared error for ``epochs`` (10 in the report)
    on 95 % of the data, validated on a seeded 5 %.

    Parameters
    ----------
    bottleneck : int, default 2
    hidden : tuple of int, default (128, 64)
    epochs : int, default 10
    batch_size : int, default 32
    learning_rate : float, default 1e-3
    validation_fraction : float, default 0.05
    seed : int, default 0

    Attributes
    ----------
    history_ : dict
        Loss (and validation loss) per epoch.
    autoencoder_, encoder_ : keras.Model

    Notes
    -----
    Introduced in Chapter 5; the model is :func:`crystal_course.models.dense_autoencoder`.
    """

    def __init__(
        self,
        bottleneck: int = 2,
        hidden: tuple[int, ...] = (128, 64),
        epochs: int = 10,
        batch_size: int = 32,
        learning_rate: float = 1e-3,
        validation_fraction: float = 0.05,
        seed: int = 0,
    ):
        self.bottleneck = bottleneck
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.seed = seed

    def _build(self, shape):
        from crystal_course.models import dense_autoencoder

        return dense_autoencoder(shape, tuple(self.hidden), self.bottleneck, seed=self.seed)


class ConvAutoencoder(_KerasAutoencoder):
    """A convolutional autoencoder as a transformer.

    The model is :func:`crystal_course.models.conv_autoencoder`.

    Parameters as :class:`DenseAutoencoder`, with ``filters`` (default
    ``(32, 16, 8)``) instead of ``hidden`` and a default code of 16.

    Notes
    -----
    Introduced in Chapter 5.
    """

    def __init__(
        self,
        bottleneck: int = 16,
        filters: tuple[int, ...] = (32, 16, 8),
        epochs: int = 10,
        batch_size: int = 32,
        learning_rate: float = 1e-3,
        validation_fraction: float = 0.05,
        seed: int = 0,
    ):
        self.bottleneck = bottleneck
        self.filters = filters
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.seed = seed

    def _build(self, shape):
        from crystal_course.models import conv_autoencoder

        return conv_autoencoder(shape, tuple(self.filters), self.bottleneck, seed=self.seed)


def plot_scree(explained_variance_ratio, fraction: float = 0.95, ax=None):
    """Explained variance per component and cumulative, with the ``fraction`` line.

    Notes
    -----
    Introduced in Chapter 5.
    """
    import matplotlib.pyplot as plt

    ratio = np.asarray(explained_variance_ratio)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.4))
    components = np.arange(1, len(ratio) + 1)
    ax.bar(components, 100 * ratio, color="tab:blue", label="per component")
    ax.set_xlabel("principal component")
    ax.set_ylabel("explained variance (%)")
    twin = ax.twinx()
    twin.plot(components, 100 * np.cumsum(ratio), "k.-", label="cumulative")
    n = n_components_for(ratio, fraction) if np.sum(ratio) >= fraction else None
    twin.axhline(100 * fraction, color="tab:red", ls="--", lw=1)
    if n:
        twin.axvline(n, color="tab:red", ls=":", lw=1)
        twin.annotate(
            f"{n} components: {100 * fraction:.0f} %",
            (n, 100 * fraction),
            textcoords="offset points",
            xytext=(6, -14),
            color="tab:red",
        )
    twin.set_ylabel("cumulative (%)")
    twin.set_ylim(0, 101)
    return ax


def plot_embedding(embedding, y, clusters, class_names, axes=None, title: str = ""):
    """Two panels of a 2-D embedding: coloured by true class and by K-Means cluster.

    Parameters
    ----------
    embedding : numpy.ndarray
        ``(N, >= 2)``; the first two columns are drawn.
    y, clusters : array of int
        True classes and cluster labels.
    class_names : list of str
    axes : pair of matplotlib.axes.Axes, optional
    title : str
        Method name, put above both panels.

    Notes
    -----
    Introduced in Chapter 5 (the report's Figure 8, with a legend).
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    embedding = np.asarray(embedding)
    if embedding.ndim != 2 or embedding.shape[1] < 2 or len(embedding) != len(y):
        raise ValueError(f"embedding must be (N, >= 2) with N = {len(y)}, got {embedding.shape}")
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(8, 3.4), layout="constrained")
    names = np.asarray(class_names)[np.asarray(y)]
    palette = dict(zip(class_names, sns.color_palette("tab10", len(class_names)), strict=True))
    sns.scatterplot(
        x=embedding[:, 0],
        y=embedding[:, 1],
        hue=names,
        hue_order=list(class_names),
        palette=palette,
        s=10,
        linewidth=0,
        ax=axes[0],
        legend=False,
    )
    sns.scatterplot(
        x=embedding[:, 0],
        y=embedding[:, 1],
        hue=np.asarray(clusters),
        s=10,
        linewidth=0,
        palette="tab10",
        ax=axes[1],
        legend=False,
    )
    axes[0].set_title(f"{title}: true class", fontsize=10)
    axes[1].set_title(f"{title}: K-Means cluster", fontsize=10)
    for ax in axes:
        ax.set_xlabel("component 1 (a.u.)")
        ax.set_ylabel("component 2 (a.u.)")
    return axes, palette
