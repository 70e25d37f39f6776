"""Training and evaluating the classifiers of Chapter 3.

The public reproduction of the 2018 paper validated on its training data and
tracked binary accuracy; here the validation set is a seeded random share of
the training structures that the optimiser never sees, the metric is
categorical accuracy, and test sets come from held-out parents
(:mod:`crystal_course.dataset`).

Command line (the shipped model was made with it)::

    python -m crystal_course.training DATASET_DIR --out DIR [--epochs 5] [--seed 0]

Introduced in Chapter 3.
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
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    from crystal_course.dataset import sweep_item
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
        delayed(sweep_item)(structures[i], defect, levels[j], (seed, i, j), symprecs)
        for i, j in tasks
    )
    results = Parallel(n_jobs=n_jobs or os.cpu_count() or 1, return_as="generator")(jobs)
    results = list(tqdm(results, total=len(tasks), disable=not progress, desc=f"{defect} sweep"))
    images = np.stack([image for image, _ in results]).astype(np.float32)
    found = np.array([hit for _, hit in results], dtype=float)  # (tasks, symprecs)
    shape = (len(levels), len(structures))
    spglib = found.T.reshape(len(symprecs), *shape).mean(axis=2)
    accuracy = {}
    for name, model in models.items():
        predicted = model.predict(images, batch_size=256, verbose=0).argmax(axis=1)
        accuracy[name] = (predicted.reshape(shape) == labels).mean(axis=1)
    return SweepResult(defect, tuple(levels), tuple(symprecs), spglib, accuracy, len(structures))


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

    Notes
    -----
    Introduced in Chapter 3.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.2))
    x = 100 * np.asarray(result.levels)
    for name, accuracy in result.models.items():
        ax.plot(x, 100 * accuracy, "o-", label=name)
    for symprec, rate in zip(result.symprecs, result.spglib, strict=True):
        ax.plot(x, 100 * rate, "s--", label=f"spglib, symprec {symprec:g} Å")
    ax.set_xlabel(
        "vacancies (% of atoms)" if result.defect == "vacancies" else "displacement σ (% of NN)"
    )
    ax.set_ylabel("correctly classified (%)")
    ax.set_ylim(-3, 103)
    return ax


def save_model(model: keras.Model, path: str | os.PathLike, card: dict) -> Path:
    """Save ``model`` (``.keras``) and its JSON card beside it, both atomically.

    Notes
    -----
    Introduced in Chapter 3.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".keras")
    os.close(fd)
    # An uncompiled copy: the optimiser's state would triple the file and is not needed.
    bare = keras.Model.from_config(model.get_config())
    bare.set_weights(model.get_weights())
    try:
        bare.save(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    card_path = path.with_suffix(".json")
    text = json.dumps(card, indent=2, sort_keys=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{card_path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, card_path)
    return path


def main(argv: list[str] | None = None) -> int:
    """Train the 2018 CNN on a dataset directory and save it with its card."""
    from crystal_course import dataset
    from crystal_course.models import ziletti_cnn

    parser = argparse.ArgumentParser(
        prog="python -m crystal_course.training", description=main.__doc__
    )
    parser.add_argument("dataset", help="directory made by crystal_course.dataset")
    parser.add_argument("--out", required=True, help="directory for ziletti_cnn.keras/.json")
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
    path = save_model(model, Path(args.out) / "ziletti_cnn.keras", card)
    print(f"saved {path} and {path.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
