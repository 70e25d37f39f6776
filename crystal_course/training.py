"""Training and evaluating the classifiers of Chapters 3 and 6.

The public reproduction of the 2018 paper validated on its training data and
tracked binary accuracy; here the validation set is a seeded random share of
the training structures that the optimiser never sees, the metric is
categorical accuracy, and test sets come from held-out parents
(:mod:`crystal_course.dataset`).

Command line (the shipped model was made with it)::

    python -m crystal_course.training DATASET_DIR --out DIR [--epochs 5] [--seed 0]
    python -m crystal_course.training zone-axis DATASET_DIR --card FILE.json [--sets 20 8]

Introduced in Chapter 3; Chapter 6 adds the zone-axis comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from crystal_course import __version__  # noqa: E402


def _check_arrays(model: keras.Model, x: np.ndarray, y: np.ndarray | None = None) -> None:
    expected = tuple(model.input_shape[1:])
    if not isinstance(x, np.ndarray) or x.ndim != 4 or tuple(x.shape[1:]) != expected:
        got = getattr(x, "shape", type(x).__name__)
        hint = ""
        if isinstance(x, np.ndarray) and x.ndim == 4 and x.shape[1] == expected[-1]:
            hint = " (channels first? fingerprints are channels-last (N, 64, 64, 3))"
        raise ValueError(f"x must have shape (N, {', '.join(map(str, expected))}), got {got}{hint}")
    if y is not None:
        n_classes = model.output_shape[-1]
        y = np.asarray(y)
        if y.shape != (len(x),) or y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= n_classes:
            raise ValueError(
                f"y must be ({len(x)},) integer labels in [0, {n_classes}), got shape {y.shape}, "
                f"dtype {y.dtype}"
            )


def batches(
    x: np.ndarray, y: np.ndarray, n_classes: int, batch_size: int, shuffle_seed: int | None = None
):
    """A ``tf.data`` pipeline of ``(x, one-hot y)`` batches: shuffle, batch, prefetch.

    Parameters
    ----------
    x, y : numpy.ndarray
        Fingerprints ``(N, 64, 64, 3)`` and integer labels ``(N,)``.
    n_classes : int
        Width of the one-hot labels.
    batch_size : int
        Samples per batch.
    shuffle_seed : int, optional
        Shuffle every epoch with this seed; ``None`` keeps the order.

    Notes
    -----
    Introduced in Chapter 3.
    """
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices((x, y.astype(np.int32)))
    if shuffle_seed is not None:
        data = data.shuffle(len(x), seed=shuffle_seed, reshuffle_each_iteration=True)
    data = data.batch(batch_size).map(
        lambda xb, yb: (xb, tf.one_hot(yb, n_classes)), num_parallel_calls=tf.data.AUTOTUNE
    )
    return data.prefetch(tf.data.AUTOTUNE)


def default_batch_size() -> int:
    """32 (the paper's) on a CPU; 128 when TensorFlow sees a GPU."""
    from crystal_course.config import gpu_names

    return 128 if gpu_names() else 32


def split_indices(n: int, validation_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random ``(fit, validation)`` indices of ``n`` samples; disjoint, covering all.

    Notes
    -----
    Introduced in Chapter 3. Keras' ``validation_split`` takes the *last* rows,
    which in a class-ordered dataset is a single class; this does not.
    """
    if not 0 <= validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction!r}")
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * validation_fraction))
    return order[n_val:], order[:n_val]


def train(
    model: keras.Model,
    x: np.ndarray,
    y: np.ndarray,
    epochs: int,
    batch_size: int | None = None,
    validation_fraction: float = 0.05,
    seed: int = 0,
    learning_rate: float = 1e-3,
    verbose: int | str = "auto",
) -> keras.callbacks.History:
    """Compile and fit a classifier on fingerprints, validating on a held-out share.

    Adam, categorical cross-entropy and categorical accuracy, as in the paper.

    Parameters
    ----------
    model : keras.Model
        E.g. :func:`crystal_course.models.ziletti_cnn`.
    x : numpy.ndarray
        ``(N, 64, 64, 3)`` float32 fingerprints (channels last).
    y : numpy.ndarray
        ``(N,)`` integer class labels.
    epochs : int
        Passes over the training share.
    batch_size : int, optional
        Default :func:`default_batch_size`.
    validation_fraction : float, default 0.05
        Share of the structures kept out of the optimisation for validation
        (a seeded random choice, not the last rows).
    seed : int, default 0
        Seeds the split, the shuffling and Keras' random state.
    learning_rate : float, default 1e-3
        Adam's learning rate.
    verbose : int or "auto"
        Keras' verbosity.

    Returns
    -------
    keras.callbacks.History
        Loss and accuracy per epoch, for training and validation.

    Raises
    ------
    ValueError
        For arrays of the wrong shape (e.g. channels first) or labels out of range.

    Notes
    -----
    Introduced in Chapter 3.
    """
    _check_arrays(model, x, y)
    fit, val = split_indices(len(x), validation_fraction, seed)
    keras.utils.set_random_seed(seed)
    n_classes = model.output_shape[-1]
    batch_size = batch_size or default_batch_size()
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.CategoricalCrossentropy(),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )
    validation = batches(x[val], y[val], n_classes, 256) if len(val) else None
    return model.fit(
        batches(x[fit], y[fit], n_classes, batch_size, shuffle_seed=seed),
        epochs=epochs,
        validation_data=validation,
        shuffle=False,  # the pipeline shuffles (Keras would only warn that it cannot)
        verbose=verbose,
    )


def evaluate(
    model: keras.Model, x: np.ndarray, y: np.ndarray, batch_size: int = 256
) -> tuple[float, np.ndarray]:
    """Accuracy and confusion matrix on a labelled set.

    Returns
    -------
    accuracy : float
        Fraction of correct predictions.
    confusion : numpy.ndarray
        ``(n_classes, n_classes)`` counts, rows true class, columns predicted.

    Notes
    -----
    Introduced in Chapter 3.
    """
    _check_arrays(model, x, y)
    predicted = model.predict(x, batch_size=batch_size, verbose=0).argmax(axis=1)
    n_classes = model.output_shape[-1]
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (np.asarray(y), predicted), 1)
    return float(np.trace(confusion) / len(y)), confusion


PIXEL_BASELINES = ("nearest centroid", "logistic regression")
"""The trivial classifiers :func:`pixel_baselines` fits on raw fingerprint pixels."""


def pixel_baselines(
    x_train: np.ndarray, y_train, tests: dict, seed: int = 0
) -> dict[str, dict[str, object]]:
    """Two classifiers that know nothing about images, fitted on the raw pixels.

    A fingerprint is flattened to one vector of ``height x width x 3`` pixels.
    *Nearest centroid* (scikit-learn's ``NearestCentroid``) assigns the class whose
    mean training fingerprint is closest; *logistic regression* is a linear model
    of the standardised pixels. If they do as well as the CNN, the test sets are
    too easy to say anything about the CNN.

    Parameters
    ----------
    x_train : numpy.ndarray
        ``(N, height, width, 3)`` training fingerprints.
    y_train : array_like of int
        ``(N,)`` class labels.
    tests : dict of str to (x, y)
        Test split name -> fingerprints and labels.
    seed : int, default 0
        Seed of the logistic regression's solver.

    Returns
    -------
    dict
        Method (one of :data:`PIXEL_BASELINES`) -> split -> accuracy with its Wilson
        interval (:class:`crystal_course.uncertainty.Accuracy`).

    Notes
    -----
    Introduced in Chapter 3.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import NearestCentroid
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from crystal_course.uncertainty import from_predictions

    x_train = np.asarray(x_train, dtype=np.float32)
    if x_train.ndim != 4:
        raise ValueError(f"x_train must be (N, height, width, channels), got {x_train.shape}")
    flat = x_train.reshape(len(x_train), -1)
    classifiers = {
        "nearest centroid": NearestCentroid(),
        "logistic regression": make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed)
        ),
    }
    results = {}
    for name, classifier in classifiers.items():
        classifier.fit(flat, np.asarray(y_train))
        results[name] = {
            split: from_predictions(
                classifier.predict(np.asarray(x, dtype=np.float32).reshape(len(x), -1)), y
            )
            for split, (x, y) in tests.items()
        }
    return results


def top_k_accuracy(probabilities: np.ndarray, y, k: int = 1) -> float:
    """Share of samples whose true class is among the ``k`` most probable.

    Notes
    -----
    Introduced in Chapter 6.
    """
    probabilities = np.asarray(probabilities)
    y = np.asarray(y)
    if probabilities.ndim != 2 or y.shape != (len(probabilities),):
        raise ValueError(
            f"probabilities must be (N, n_classes) and y (N,), got {probabilities.shape}, {y.shape}"
        )
    if not 1 <= k <= probabilities.shape[1]:
        raise ValueError(f"k must be in [1, {probabilities.shape[1]}], got {k!r}")
    top = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return float((top == y[:, None]).any(axis=1).mean())


def train_msdn(
    model: keras.Model,
    shaped: np.ndarray,
    y: np.ndarray,
    epochs: int,
    batch_size: int = 32,
    validation_fraction: float = 0.05,
    seed: int = 0,
    learning_rate: float = 1e-3,
    verbose: int | str = 0,
) -> keras.callbacks.History:
    """Train a multi-stream model: the loss is the sum of the three streams' cross-entropies.

    Parameters
    ----------
    model : keras.Model
        :func:`crystal_course.models.msdn`.
    shaped : numpy.ndarray
        ``(N, n, n, 3)`` shaped patterns, 0-255 (R, G, B = beam along x, y, z).
    y : numpy.ndarray
        ``(N,)`` class indices.
    epochs, batch_size, validation_fraction, seed, learning_rate, verbose
        As :func:`train` (the paper used Adam at 1e-5 for many epochs; the
        course's short runs use 1e-3).

    Notes
    -----
    Introduced in Chapter 6.
    """
    import tensorflow as tf

    from crystal_course.models import msdn_inputs

    inputs = msdn_inputs(shaped)
    y = np.asarray(y)
    n_classes = model.output_shape[0][-1]
    if y.shape != (len(shaped),) or y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"y must be ({len(shaped)},) integer labels in [0, {n_classes})")
    fit, val = split_indices(len(y), validation_fraction, seed)
    keras.utils.set_random_seed(seed)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=[keras.losses.CategoricalCrossentropy(from_logits=True)] * 3,
    )

    def pipeline(index, shuffle):
        data = tf.data.Dataset.from_tensor_slices(
            (tuple(a[index] for a in inputs), y[index].astype(np.int32))
        )
        if shuffle:
            data = data.shuffle(len(index), seed=seed, reshuffle_each_iteration=True)
        one_hot = lambda xb, yb: (xb, (tf.one_hot(yb, n_classes),) * 3)  # noqa: E731
        return data.batch(batch_size).map(one_hot).prefetch(tf.data.AUTOTUNE)

    return model.fit(
        pipeline(fit, True),
        validation_data=pipeline(val, False) if len(val) else None,
        epochs=epochs,
        shuffle=False,
        verbose=verbose,
    )


MSDN_SIZES: dict[str, dict] = {
    "quick": {"blocks": (2, 2), "growth": 12, "stem_filters": 16},
    "full": {"blocks": (3, 6, 12, 8), "growth": 32, "stem_filters": 32},
}
"""Trunk of :func:`crystal_course.models.msdn` per mode: a small one for CPU
minutes and the paper-like 3-6-12-8 DenseNet with growth 32."""

ZONE_AXIS_METHODS: dict[str, str] = {
    "spots_cnn": "spot patterns + 2018 CNN",
    "shaped_msdn": "shaped patterns + MSDN",
    "shaped_cnn": "shaped patterns + 2018 CNN",
}
"""The Chapter 6 comparisons: the baseline, the paper's method, and the ablation
that feeds shaped patterns to the baseline's network."""


@dataclass(frozen=True)
class ZoneAxisResult:
    """Predictions of one trained Chapter 6 classifier on every test split.

    Attributes
    ----------
    method : str
        A key of :data:`ZONE_AXIS_METHODS`.
    space_groups : tuple of int
        The classes, in label order.
    y : dict of str to numpy.ndarray
        True labels per test split.
    probabilities : dict of str to numpy.ndarray
        ``(N, n_classes)`` predicted probabilities per test split.
    n_train : int
        Training crystals (5 % of them validate rather than fit).
    epochs : int
    seconds : float
        Training wall time.
    n_parameters : int

    Notes
    -----
    Introduced in Chapter 6.
    """

    method: str
    space_groups: tuple[int, ...]
    y: dict
    probabilities: dict
    n_train: int
    epochs: int
    seconds: float
    n_parameters: int

    def top_k(self, k: int = 1, split: str = "test_pristine") -> float:
        """Top-``k`` accuracy on one split (see :func:`top_k_accuracy`)."""
        return top_k_accuracy(self.probabilities[split], self.y[split], k)

    def systems(self, split: str = "test_pristine") -> tuple[np.ndarray, np.ndarray]:
        """True and predicted crystal systems (names) of every test crystal."""
        from crystal_course.structures import crystal_system

        groups = np.asarray(self.space_groups)
        predicted = groups[self.probabilities[split].argmax(axis=1)]
        true = groups[self.y[split]]
        return (
            np.array([crystal_system(int(g)) for g in true]),
            np.array([crystal_system(int(g)) for g in predicted]),
        )

    def system_confusion(self, split: str = "test_pristine"):
        """Crystal-system confusion table: rows true, columns predicted (``pandas.DataFrame``).

        Only the systems present among the classes appear, in the order of
        :data:`crystal_course.structures.CRYSTAL_SYSTEMS`.
        """
        import pandas as pd

        from crystal_course.structures import CRYSTAL_SYSTEMS, crystal_system

        present = {crystal_system(int(g)) for g in self.space_groups}
        names = [name for name, _, _ in CRYSTAL_SYSTEMS if name in present]
        true, predicted = self.systems(split)
        table = pd.crosstab(
            pd.Categorical(true, names), pd.Categorical(predicted, names), dropna=False
        )
        table.index.name, table.columns.name = "true system", "predicted system"
        return table

    def accuracy_by_system(self, split: str = "test_pristine") -> dict[str, float]:
        """Top-1 space-group accuracy of the test crystals of each crystal system."""
        true, _ = self.systems(split)
        hit = self.probabilities[split].argmax(axis=1) == self.y[split]
        order = list(dict.fromkeys(self.system_confusion(split).index))
        return {name: float(hit[true == name].mean()) for name in order if (true == name).any()}

    def summary(self) -> dict:
        """JSON-ready numbers: top-1..5, vacancy accuracies, per-system accuracy, time."""
        k_max = min(5, len(self.space_groups))
        return {
            "method": self.method,
            "n_groups": len(self.space_groups),
            "n_train": self.n_train,
            "n_test": int(len(self.y["test_pristine"])),
            "epochs": self.epochs,
            "n_parameters": self.n_parameters,
            "training_seconds": round(self.seconds, 1),
            "top_k": {k: round(self.top_k(k), 4) for k in range(1, k_max + 1)},
            "top1_by_split": {s: round(self.top_k(1, s), 4) for s in self.probabilities},
            "top1_by_system": {s: round(v, 4) for s, v in self.accuracy_by_system().items()},
        }


def _zone_axis_split(path, split: str, space_groups) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from crystal_course import dataset

    data = dataset.load(path, split)
    groups = np.asarray(space_groups)
    keep = np.isin(data.meta["space_group"], groups)
    if not np.isin(groups, data.meta["space_group"]).all():
        missing = sorted(set(groups.tolist()) - set(data.meta["space_group"].tolist()))
        raise ValueError(f"space groups {missing} are not in the dataset {path}")
    label = {int(g): i for i, g in enumerate(groups)}
    y = np.array([label[int(g)] for g in data.meta["space_group"][keep]], dtype=np.int64)
    return data.x[keep], data.meta["spots"][keep], y


def zone_axis_experiment(
    path: str | os.PathLike,
    method: str,
    space_groups=None,
    epochs: int = 10,
    batch_size: int = 32,
    seed: int = 0,
    msdn_size: dict | None = None,
    learning_rate: float = 1e-3,
) -> tuple[keras.Model, ZoneAxisResult]:
    """Train one Chapter 6 classifier on a zone-axis dataset and predict every test split.

    Parameters
    ----------
    path : path-like
        Directory made by :func:`crystal_course.dataset.generate_zone_axis`.
    method : str
        ``"spots_cnn"`` (the three raw patterns as RGB into
        :func:`~crystal_course.models.ziletti_cnn`), ``"shaped_msdn"`` (the
        shaped patterns into :func:`~crystal_course.models.msdn`) or
        ``"shaped_cnn"`` (shaped RGB into the 2018 CNN).
    space_groups : sequence of int, optional
        Train and test on these groups only (e.g. the 8-group subset of a
        20-group dataset); default all of the dataset's groups.
    epochs, batch_size, seed, learning_rate
        Training (Adam; the same for every method).
    msdn_size : dict, optional
        ``blocks``, ``growth``, ``stem_filters`` of the MSDN trunk; default
        :data:`MSDN_SIZES` of the current mode.

    Returns
    -------
    model : keras.Model
    result : ZoneAxisResult

    Notes
    -----
    Introduced in Chapter 6.
    """
    import json

    from crystal_course import config, dataset
    from crystal_course.models import msdn, msdn_inputs, msdn_probabilities, ziletti_cnn

    if method not in ZONE_AXIS_METHODS:
        raise ValueError(f"method must be one of {sorted(ZONE_AXIS_METHODS)}, got {method!r}")
    manifest = json.loads((Path(path) / dataset.MANIFEST).read_text())
    if manifest.get("kind") != "zone_axis":
        raise ValueError(f"{path} is not a zone-axis dataset (see generate_zone_axis)")
    groups = tuple(int(g) for g in (space_groups or manifest["parameters"]["space_groups"]))
    shaped, spots, y = _zone_axis_split(path, "train", groups)
    n = shaped.shape[1]
    start = time.perf_counter()
    if method == "shaped_msdn":
        size = msdn_size or MSDN_SIZES[config.mode()]
        model = msdn((n, n, 1), len(groups), seed=seed, **size)
        train_msdn(model, shaped, y, epochs, batch_size, seed=seed, learning_rate=learning_rate)
    else:
        model = ziletti_cnn((n, n, 3), len(groups), seed=seed)
        x = (spots if method == "spots_cnn" else shaped).astype(np.float32) / 255
        train(model, x, y, epochs, batch_size, seed=seed, learning_rate=learning_rate, verbose=0)
    seconds = time.perf_counter() - start
    labels, probabilities = {}, {}
    for split in manifest["splits"][1:]:
        shaped_t, spots_t, labels[split] = _zone_axis_split(path, split, groups)
        if method == "shaped_msdn":
            probabilities[split] = msdn_probabilities(model, msdn_inputs(shaped_t))
        else:
            x = (spots_t if method == "spots_cnn" else shaped_t).astype(np.float32) / 255
            probabilities[split] = model.predict(x, batch_size=256, verbose=0)
    result = ZoneAxisResult(
        method, groups, labels, probabilities, len(y), epochs, seconds, model.count_params()
    )
    return model, result


@dataclass(frozen=True)
class SweepResult:
    """Accuracy against defect level for spglib and for classifiers, on the same structures.

    Attributes
    ----------
    defect : str
        ``"vacancies"`` or ``"displacements"``.
    levels : tuple of float
        Vacancy fractions, or displacement sigmas as fractions of the NN distance.
    symprecs : tuple of float
        spglib tolerances (Å).
    spglib : numpy.ndarray
        ``(len(symprecs), len(levels))`` share of structures whose space group
        spglib still finds.
    models : dict of str to numpy.ndarray
        Classifier name -> ``(len(levels),)`` accuracy.
    n_structures : int
        Pristine structures damaged at every level.
    """

    defect: str
    levels: tuple[float, ...]
    symprecs: tuple[float, ...]
    spglib: np.ndarray
    models: dict
    n_structures: int


def _run_sweep(worker, structures, defect, levels, models, option, seed, n_jobs, progress, what):
    """Damage structure ``i`` at level ``j`` with ``worker`` (seed ``(seed, i, j)``) in
    parallel; score every model on the fingerprints. Returns the labels, the workers'
    second outputs in task order (level-major) and each model's accuracy per level."""
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    from crystal_course.structures import CLASSES, check_atoms, class_index

    if defect not in ("vacancies", "displacements"):
        raise ValueError(f"defect must be 'vacancies' or 'displacements', got {defect!r}")
    if not isinstance(models, dict) or not models:
        raise TypeError("models must be a non-empty dict of name -> keras.Model")
    for name, model in models.items():
        if model.output_shape[-1] != len(CLASSES):
            raise ValueError(
                f"model {name!r} has {model.output_shape[-1]} outputs, expected {len(CLASSES)}"
            )
    for atoms in structures:
        if "space_group" not in check_atoms(atoms).info:
            raise ValueError("every structure needs info['space_group'] (use sample_classes)")
    labels = np.array([class_index(a.info["space_group"]) for a in structures])
    tasks = [(i, j) for j in range(len(levels)) for i in range(len(structures))]
    jobs = (
        delayed(worker)(structures[i], defect, levels[j], (seed, i, j), option) for i, j in tasks
    )
    results = Parallel(n_jobs=n_jobs or os.cpu_count() or 1, return_as="generator")(jobs)
    results = list(tqdm(results, total=len(tasks), disable=not progress, desc=f"{defect} {what}"))
    images = np.stack([image for image, _ in results]).astype(np.float32)
    shape = (len(levels), len(structures))
    accuracy = {}
    for name, model in models.items():
        predicted = model.predict(images, batch_size=256, verbose=0).argmax(axis=1)
        accuracy[name] = (predicted.reshape(shape) == labels).mean(axis=1)
    return labels, [second for _, second in results], accuracy


def defect_sweep(
    structures: list,
    defect: str,
    levels: list[float],
    models: dict[str, keras.Model],
    symprecs: tuple[float, ...] = (1e-3, 0.1),
    seed: int = 0,
    n_jobs: int | None = None,
    progress: bool = True,
) -> SweepResult:
    """Damage the same structures at increasing levels; score spglib and classifiers.

    Structure ``i`` at level ``j`` is damaged with
    :func:`crystal_course.structures.damage_seed` ``(seed, i, j)``, exactly as
    in :func:`crystal_course.structures.identification_rates`, and the same
    damaged structure is given to spglib (space group still found?) and, as a
    fingerprint, to every model (class still right?).

    Parameters
    ----------
    structures : list of ase.Atoms
        Pristine structures with ``info["space_group"]`` (e.g. from
        :func:`crystal_course.structures.sample_classes`).
    defect : {"vacancies", "displacements"}
        Vacancy fraction or Gaussian displacements (sigma in units of NN).
    levels : list of float
        Defect levels.
    models : dict of str to keras.Model
        Classifiers over :data:`crystal_course.structures.CLASSES`, by display name.
    symprecs : tuple of float, default (1e-3, 0.1)
        spglib tolerances (Å).
    seed : int, default 0
        Seed of the damage.
    n_jobs : int, optional
        Worker processes (default: all cores).
    progress : bool, default True
        Show a tqdm progress bar.

    Returns
    -------
    SweepResult

    Notes
    -----
    Introduced in Chapter 3.
    """
    from crystal_course.dataset import sweep_item

    labels, found, accuracy = _run_sweep(
        sweep_item, structures, defect, levels, models, symprecs, seed, n_jobs, progress, "sweep"
    )
    found = np.array(found, dtype=float)  # (tasks, symprecs)
    shape = (len(levels), len(structures))
    spglib = found.T.reshape(len(symprecs), *shape).mean(axis=2)
    return SweepResult(defect, tuple(levels), tuple(symprecs), spglib, accuracy, len(structures))


def practical_sweep(
    structures: list,
    defect: str,
    levels: list[float],
    models: dict[str, keras.Model],
    symprec: float = 0.1,
    seed: int = 0,
    n_jobs: int | None = None,
    progress: bool = True,
) -> SweepResult:
    """The practitioner's contest: damaged crystals as found, CNN against spglib.

    Structure ``i`` at level ``j`` is damaged as in :func:`defect_sweep` (same
    seed, same damage), then turned to an arbitrary orientation and standardised
    by spglib at ``symprec`` (:func:`crystal_course.structures.practitioner_view`)
    before its fingerprint goes to the classifiers. spglib alone classifies the
    same damaged crystal at the same tolerance, its group mapped to the seven
    merged classes (:func:`crystal_course.structures.spglib_class`): both answer
    the same question on the same labels.

    Returns
    -------
    SweepResult
        ``symprecs`` is ``(symprec,)`` and ``spglib`` holds spglib's class accuracy
        (not "exact group found", as in :func:`defect_sweep`).

    Notes
    -----
    Introduced in Chapter 3.
    """
    from crystal_course.dataset import practical_item

    labels, classes, accuracy = _run_sweep(
        practical_item,
        structures,
        defect,
        levels,
        models,
        symprec,
        seed,
        n_jobs,
        progress,
        "(as found)",
    )
    shape = (len(levels), len(structures))
    spglib = (np.array(classes).reshape(shape) == labels).mean(axis=1)[None]
    return SweepResult(defect, tuple(levels), (symprec,), spglib, accuracy, len(structures))


REAL_ELEMENT_CONDITIONS: dict[str, dict[str, float]] = {
    "pristine": {},
    "25 % vacancies": {"vacancies": 0.25},
    "2 % displacements": {"displacements": 0.02},
}
"""The conditions of :func:`real_element_test`: those of the course's test sets."""


def real_element_test(
    model: keras.Model,
    per_element: int = 1,
    seed: int = 0,
    n_jobs: int | None = None,
    progress: bool = True,
):
    """Accuracy per class on the measured crystals of real elements, pristine and damaged.

    Every element of :func:`crystal_course.structures.real_elements` goes
    ``per_element`` times through the 2018 pipeline
    (:func:`crystal_course.structures.real_element_crystal`, a different random
    orientation and damage each time) under each of :data:`REAL_ELEMENT_CONDITIONS`.

    Returns
    -------
    pandas.DataFrame
        One row per class and condition: ``class``, ``condition``, ``elements``
        (comma-separated), ``accuracy`` (:class:`crystal_course.uncertainty.Accuracy`)
        and ``wrong`` (element -> predicted class, for the crystals it got wrong).

    Notes
    -----
    Introduced in Chapter 3.
    """
    import pandas as pd

    from crystal_course.diffraction import fingerprints
    from crystal_course.structures import CLASSES, class_index, real_element_crystal, real_elements
    from crystal_course.uncertainty import from_predictions

    if model.output_shape[-1] != len(CLASSES):
        raise ValueError(f"model has {model.output_shape[-1]} outputs, expected {len(CLASSES)}")
    if isinstance(per_element, bool) or not isinstance(per_element, int) or per_element < 1:
        raise ValueError(f"per_element must be a positive integer, got {per_element!r}")
    elements = real_elements()
    crystals, rows = [], []
    for c, (condition, damage) in enumerate(REAL_ELEMENT_CONDITIONS.items()):
        for e, (element, group) in enumerate(elements.items()):
            for k in range(per_element):
                rng = np.random.default_rng(np.random.SeedSequence([seed, c, e, k]))
                crystals.append(real_element_crystal(element, rng, **damage))
                rows.append((condition, element, class_index(group)))
    images = fingerprints(crystals, n_jobs=n_jobs, progress=progress)
    predicted = model.predict(images, batch_size=256, verbose=0).argmax(axis=1)
    frame = pd.DataFrame(rows, columns=["condition", "element", "label"]).assign(
        predicted=predicted
    )
    out = []
    for (condition, label), group in frame.groupby(["condition", "label"], sort=False):
        wrong = group[group.predicted != group.label]
        out.append(
            {
                "class": CLASSES[label],
                "condition": condition,
                "elements": ", ".join(dict.fromkeys(group.element)),
                "accuracy": from_predictions(group.predicted.to_numpy(), group.label.to_numpy()),
                "wrong": {
                    e: CLASSES[p] for e, p in zip(wrong.element, wrong.predicted, strict=True)
                },
            }
        )
    return pd.DataFrame(out)


def plot_history(history, axes=None):
    """Loss and accuracy per epoch, training and validation, side by side.

    Parameters
    ----------
    history : keras.callbacks.History or dict
        From :func:`train` (or its ``.history`` dict).
    axes : pair of matplotlib.axes.Axes, optional

    Notes
    -----
    Introduced in Chapter 3.
    """
    import matplotlib.pyplot as plt

    values = getattr(history, "history", history)
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(9, 3.2), layout="constrained")
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        epochs = np.arange(1, len(values[metric]) + 1)
        ax.plot(epochs, values[metric], "o-", label="training")
        if f"val_{metric}" in values:
            ax.plot(epochs, values[f"val_{metric}"], "s--", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel("cross-entropy loss" if metric == "loss" else "accuracy")
        ax.legend()
    axes[0].set_yscale("log")
    return axes


def plot_confusion(confusion: np.ndarray, class_names, ax=None, title: str = ""):
    """A seaborn heatmap of a confusion matrix (rows true, columns predicted), in percent.

    Notes
    -----
    Introduced in Chapter 3.
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    confusion = np.asarray(confusion)
    if confusion.ndim != 2 or confusion.shape != (len(class_names), len(class_names)):
        raise ValueError(
            f"confusion must be ({len(class_names)}, {len(class_names)}), got {confusion.shape}"
        )
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4))
    percent = 100 * confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    sns.heatmap(
        percent,
        annot=True,
        fmt=".0f",
        cmap="Blues",
        vmin=0,
        vmax=100,
        cbar=False,
        ax=ax,
        xticklabels=class_names,
        yticklabels=class_names,
        annot_kws={"size": 8},
    )
    accuracy = np.trace(confusion) / max(confusion.sum(), 1)
    ax.set_title(f"{title}\naccuracy {100 * accuracy:.1f} %")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class (% of row)")
    return ax


def plot_sweep(result: SweepResult, ax=None):
    """Accuracy (%) against defect level: spglib at each tolerance and every classifier.

    Each curve carries a shaded 95 % Wilson band over the ``n_structures`` crystals
    (:func:`crystal_course.uncertainty.wilson`).

    Notes
    -----
    Introduced in Chapter 3.
    """
    import matplotlib.pyplot as plt

    from crystal_course.uncertainty import wilson

    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.2))
    x = 100 * np.asarray(result.levels)
    n = result.n_structures

    def band(rate, line):
        bounds = [wilson(int(round(r * n)), n) for r in rate]
        ax.fill_between(x, [100 * b.low for b in bounds], [100 * b.high for b in bounds],
                        color=line.get_color(), alpha=0.15, linewidth=0)  # fmt: skip

    for name, accuracy in result.models.items():
        band(accuracy, ax.plot(x, 100 * accuracy, "o-", label=name)[0])
    for symprec, rate in zip(result.symprecs, result.spglib, strict=True):
        band(rate, ax.plot(x, 100 * rate, "s--", label=f"spglib, symprec {symprec:g} Å")[0])
    ax.set_xlabel(
        "vacancies (% of atoms)" if result.defect == "vacancies" else "displacement σ (% of NN)"
    )
    ax.set_ylabel("correctly classified (%)")
    ax.set_ylim(-3, 103)
    return ax


def plot_top_k(results: dict, ax=None, split: str = "test_pristine"):
    """Top-k accuracy (%) against k = 1..5 for several :class:`ZoneAxisResult`.

    ``results`` maps a legend label to a result.

    Notes
    -----
    Introduced in Chapter 6.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.2))
    for label, result in results.items():
        ks = np.arange(1, min(5, len(result.space_groups)) + 1)
        ax.plot(ks, [100 * result.top_k(int(k), split) for k in ks], "o-", label=label)
    ax.set_xlabel("k (true group among the k most probable)")
    ax.set_ylabel("top-k accuracy (%)")
    ax.set_xticks(range(1, 6))
    ax.set_ylim(0, 103)
    ax.legend(fontsize=8)
    return ax


def plot_vacancy_robustness(results: dict, ax=None):
    """Top-1 accuracy (%) against the vacancy fraction (0 = pristine) per result.

    Notes
    -----
    Introduced in Chapter 6.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.2))
    for label, result in results.items():
        levels = {
            split: float(split.rsplit("_", 1)[1]) if split.startswith("test_vacancies_") else 0.0
            for split in result.probabilities
        }
        splits = sorted(levels, key=levels.get)
        ax.plot([100 * levels[s] for s in splits], [100 * result.top_k(1, s) for s in splits],
                "o-", label=label)  # fmt: skip
    ax.set_xlabel("vacancies (% of atoms removed)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_ylim(0, 103)
    ax.legend(fontsize=8)
    return ax


def plot_mc_dropout(mean: np.ndarray, std: np.ndarray, class_names, true=None, top: int = 5,
                    axes=None):  # fmt: skip
    """Bar charts of Monte Carlo dropout probabilities (mean and 1 std), one panel per sample.

    Shows each sample's ``top`` most probable classes, the true one in orange
    (Tiong et al. 2020, Fig. 4).

    Notes
    -----
    Introduced in Chapter 6.
    """
    import matplotlib.pyplot as plt

    mean, std = np.atleast_2d(mean), np.atleast_2d(std)
    if mean.shape != std.shape or mean.shape[1] != len(class_names):
        raise ValueError(
            f"mean and std must both be (N, {len(class_names)}), got {mean.shape}, {std.shape}"
        )
    if axes is None:
        _, axes = plt.subplots(1, len(mean), figsize=(3.2 * len(mean), 3), layout="constrained",
                               squeeze=False)  # fmt: skip
        axes = axes[0]
    for i, ax in enumerate(np.atleast_1d(axes)):
        order = np.argsort(-mean[i])[:top]
        colours = ["tab:orange" if true is not None and k == true[i] else "tab:blue"
                   for k in order]  # fmt: skip
        ax.bar(range(len(order)), mean[i, order], yerr=std[i, order], color=colours, capsize=3)
        ax.set_xticks(range(len(order)), [str(class_names[k]) for k in order], rotation=45,
                      fontsize=8)  # fmt: skip
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("probability (mean ± 1 std)")
        ax.set_xlabel("space group")
    return axes


def save_model(model: keras.Model, path: str | os.PathLike, card: dict) -> Path:
    """Save ``model``'s weights (``name.weights.h5``) and its JSON card, both atomically.

    Weights only, not a ``.keras`` archive: an archive stores every layer's full
    configuration as the saving Keras writes it, and an older Keras refuses
    arguments it does not know. :func:`crystal_course.models.load` rebuilds the
    architecture from the card's ``architecture`` entry instead, and checks the
    outputs the card records on a seeded random batch (``self_check``).

    Parameters
    ----------
    model : keras.Model
        A model built by one of :func:`crystal_course.models.architectures`.
    path : path-like
        Where the weights go; must end in ``.weights.h5``. The card goes beside
        it as ``name.json``.
    card : dict
        What to record (command, data, history, ...); must hold
        ``architecture``: ``{"builder": name, **keyword arguments}``.

    Returns
    -------
    pathlib.Path
        The weights file.

    Raises
    ------
    ValueError
        For a path without the ``.weights.h5`` ending, a card without an
        architecture, or an architecture whose weights do not fit ``model``.

    Notes
    -----
    Introduced in Chapter 3.
    """
    from crystal_course import models

    path = Path(path)
    card_file = models.card_path(path)
    if "architecture" not in card:
        raise ValueError("card must hold an 'architecture' entry: {'builder': name, ...}")
    # A float32, uncompiled rebuild: no optimiser state, no mixed-precision casts.
    bare = models.build({**card["architecture"], "mixed_precision": False})
    try:
        bare.set_weights(model.get_weights())
    except ValueError as err:
        raise ValueError(f"the card's architecture does not fit the model: {err}") from err
    check = bare.predict(models.self_check_input(bare), verbose=0)
    card = {**card, "self_check": check.astype(float).tolist()}  # full precision
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = models.WEIGHTS_SUFFIX  # Keras insists on the ending
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        bare.save_weights(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    _write_json(card_file, card)
    return path


PAPER_TOP1: dict[int, float] = {8: 0.9904, 20: 0.9501, 49: 0.8316, 72: 0.8012}
"""Top-1 accuracy of shaped patterns + MSDN in Tiong et al. (2020) per number of
space groups (their Materials Project data, not ours)."""


def _write_json(path: Path, content: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps(content, indent=2, sort_keys=True) + "\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def zone_axis_card() -> dict:
    """The shipped results card of the Chapter 6 comparison (command, data, numbers).

    Made by :func:`zone_axis_main`; see ``data/README.md``.

    Notes
    -----
    Introduced in Chapter 6.
    """
    from importlib import resources

    card = resources.files("crystal_course").joinpath("data", "zone_axis_full.json")
    return json.loads(card.read_text())


def zone_axis_main(argv: list[str]) -> int:
    """Run the Chapter 6 comparison on a zone-axis dataset; write a results card.

    The card is rewritten (atomically) after every trained model and a rerun
    skips the runs it already holds, so an interrupted job resumes.
    """
    from crystal_course import config, dataset
    from crystal_course.structures import SPACE_GROUP_SETS

    parser = argparse.ArgumentParser(
        prog="python -m crystal_course.training zone-axis", description=zone_axis_main.__doc__
    )
    parser.add_argument("dataset", help="directory made by generate_zone_axis")
    parser.add_argument("--card", required=True, help="JSON results card to write")
    parser.add_argument(
        "--sets", type=int, nargs="+", default=[20], help="SPACE_GROUP_SETS sizes to train on"
    )
    parser.add_argument("--methods", nargs="+", default=list(ZONE_AXIS_METHODS))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    card_path = Path(args.card)
    card = json.loads(card_path.read_text()) if card_path.exists() else {"runs": []}
    manifest = json.loads((Path(args.dataset) / dataset.MANIFEST).read_text())
    card.update(
        commands=card.get("commands", []),
        dataset=manifest["parameters"],
        device=config.device(),
        mode=config.mode(),
        msdn_size={
            k: list(v) if isinstance(v, tuple) else v for k, v in MSDN_SIZES[config.mode()].items()
        },  # fmt: skip
        paper_top1={str(k): v for k, v in PAPER_TOP1.items()},
    )
    command = "python -m crystal_course.training zone-axis " + shlex.join(argv)
    if command not in card["commands"]:
        card["commands"].append(command)
    for n_groups in args.sets:
        for method in args.methods:
            done = [r for r in card["runs"] if (r["n_groups"], r["method"]) == (n_groups, method)]
            if done and done[0]["epochs"] == args.epochs:
                print(f"{n_groups} groups, {method}: in the card already")
                continue
            _, result = zone_axis_experiment(
                args.dataset, method, SPACE_GROUP_SETS[n_groups], args.epochs,
                args.batch_size, args.seed,
            )  # fmt: skip
            summary = result.summary()
            summary["system_confusion"] = result.system_confusion().to_dict(orient="split")
            card["runs"] = [r for r in card["runs"] if r not in done] + [summary]
            _write_json(card_path, card)
            print(f"{n_groups} groups, {method}: top-1 {summary['top_k'][1]:.4f} "
                  f"({summary['training_seconds']:.0f} s)", flush=True)  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    """Train the 2018 CNN on a dataset directory and save it with its card."""
    from crystal_course import dataset
    from crystal_course.models import ziletti_cnn

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["zone-axis"]:
        return zone_axis_main(argv[1:])

    parser = argparse.ArgumentParser(
        prog="python -m crystal_course.training", description=main.__doc__
    )
    parser.add_argument("dataset", help="directory made by crystal_course.dataset")
    parser.add_argument(
        "--out", required=True, help="directory for ziletti_cnn.weights.h5 and its .json card"
    )
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    train_set = dataset.load(args.dataset, "train")
    model = ziletti_cnn(n_classes=len(train_set.class_names), seed=args.seed)
    start = time.perf_counter()
    history = train(
        model, train_set.x, train_set.y, args.epochs, args.batch_size, seed=args.seed, verbose=2
    )
    seconds = time.perf_counter() - start
    accuracies = {}
    for split in train_set.manifest["splits"][1:]:
        test = dataset.load(args.dataset, split)
        accuracies[split], _ = evaluate(model, test.x, test.y)
        print(f"{split}: accuracy {accuracies[split]:.4f}")
    import tensorflow as tf

    card = {
        "model": "ziletti_cnn",
        "architecture": {
            "builder": "ziletti_cnn",
            "input_shape": list(train_set.x.shape[1:]),
            "n_classes": len(train_set.class_names),
        },
        "command": "python -m crystal_course.training " + shlex.join(argv or sys.argv[1:]),
        "dataset": {
            "parameters": train_set.manifest["parameters"],
            "n_train": int(len(train_set.y)),
            "class_names": list(train_set.class_names),
        },
        "epochs": args.epochs,
        "seed": args.seed,
        "batch_size": args.batch_size or default_batch_size(),
        "training_seconds": round(seconds, 1),
        "history": {
            k: [round(float(v), 5) for v in values] for k, values in history.history.items()
        },
        "test_accuracy": accuracies,
        "versions": {
            "crystal_course": __version__,
            "keras": keras.__version__,
            "tensorflow": tf.__version__,
            "numpy": np.__version__,
        },
    }
    path = save_model(model, Path(args.out) / "ziletti_cnn.weights.h5", card)
    print(f"saved {path} and its card")
    return 0


if __name__ == "__main__":
    sys.exit(main())
