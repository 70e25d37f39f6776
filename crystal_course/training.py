"""Training the classifiers of Chapters 3 and 6.

The public reproduction of the 2018 paper validated on its training data and
tracked binary accuracy; here the validation set is a seeded random share of
the training structures that the optimiser never sees, the metric is
categorical accuracy, and test sets come from held-out parents
(:mod:`crystal_course.dataset`).

Command line (the shipped model was made with it)::

    python -m crystal_course.training DATASET_DIR --out DIR [--epochs 5] [--seed 0]

Introduced in Chapter 3; Chapter 6 adds :func:`train_msdn`.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from crystal_course import __version__  # noqa: E402


def _check_arrays(model: keras.Model, x: np.ndarray, y: np.ndarray | None = None) -> None:
    from crystal_course.models import check_images

    check_images(model, x)
    if y is not None:
        n_classes = model.output_shape[-1]
        y = np.asarray(y)
        if y.shape != (len(x),) or y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= n_classes:
            raise ValueError(
                f"y must be ({len(x)},) integer labels in [0, {n_classes}), got shape {y.shape}, "
                f"dtype {y.dtype}"
            )


HISTORY_FILE = "history.csv"
"""The per-epoch log of a resumable fit, in its folder (:func:`resumed_history`)."""


SECONDS_FILE = "epoch_seconds.json"
"""Wall time of every finished epoch of a resumable fit, in its folder (:func:`resumed_seconds`)."""


class _EpochSeconds(keras.callbacks.Callback):
    """Record each finished epoch's wall time in :data:`SECONDS_FILE`, atomically."""

    def __init__(self, folder: Path):
        super().__init__()
        self.path = folder / SECONDS_FILE

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        recorded = json.loads(self.path.read_text()) if self.path.is_file() else {}
        recorded[str(epoch)] = round(time.perf_counter() - self.start, 2)
        _write_json(self.path, recorded)


def resumed_seconds(folder) -> float | None:
    """Training time of a resumable fit over all its restarts: the sum of its finished
    epochs' wall times, in s; ``None`` if none was recorded.

    Notes
    -----
    Introduced in Chapter 6.
    """
    path = Path(folder) / SECONDS_FILE
    if not path.is_file():
        return None
    return float(sum(json.loads(path.read_text()).values()))


def _resume_callbacks(folder) -> list:
    """Callbacks that make a fit resumable per epoch in ``folder``.

    Keras' ``CSVLogger`` appends every finished epoch's logs to :data:`HISTORY_FILE`,
    then ``BackupAndRestore`` saves the weights, the optimizer's state and the epoch
    (in ``backup/``); a fit started again with the same folder restores them and goes
    on from the next epoch. An epoch interrupted between the two is run again, and its
    second row wins (:func:`resumed_history`).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return [
        _EpochSeconds(folder),
        keras.callbacks.CSVLogger(str(folder / HISTORY_FILE), append=True),
        keras.callbacks.BackupAndRestore(str(folder / "backup"), delete_checkpoint=False),
    ]


def resumed_history(folder) -> dict[str, list[float]]:
    """Every finished epoch's logs of a resumable fit (``resume_dir`` of :func:`train`).

    Parameters
    ----------
    folder : path-like
        The fit's ``resume_dir``.

    Returns
    -------
    dict
        Metric name -> one value per epoch, in epoch order, over all the fit's
        restarts (an epoch logged twice keeps its last row).

    Notes
    -----
    Introduced in Chapter 6.
    """
    import csv

    path = Path(folder) / HISTORY_FILE
    if not path.is_file():
        return {}
    with path.open(newline="") as handle:
        rows = {int(row["epoch"]): row for row in csv.DictReader(handle)}
    if not rows:
        return {}
    if sorted(rows) != list(range(len(rows))):
        raise ValueError(f"{path}: epochs {sorted(rows)} are not 0, 1, 2, ... (a damaged log)")
    keys = [k for k in rows[0] if k != "epoch"]
    return {k: [float(rows[e][k]) for e in range(len(rows))] for k in keys}


def _fit_resumable(net, resume_dir, extra, data, callbacks, **kwargs):
    """``net.fit`` with the course's ``callbacks``, then :func:`_resume_callbacks` when
    ``resume_dir`` is given (the history then covers every restart), then ``extra``."""
    if resume_dir is not None:
        callbacks = callbacks + _resume_callbacks(resume_dir)
    _build_training_state(net, data)
    history = net.fit(data, callbacks=callbacks + list(extra), **kwargs)
    if resume_dir is not None:
        history.history = resumed_history(resume_dir)
    return history


def _build_training_state(net, data) -> None:
    """Create the optimizer's slots and the loss trackers of a compiled ``net`` eagerly.

    Without a distribution strategy Keras creates them inside the first traced training
    step, and TensorFlow then traces that step a second time (for the multi-stream
    DenseNet, seconds). The trackers are fed labels shaped like ``data``'s (zeros, as
    labels and as predictions), so nothing is drawn from the data or any random state:
    the training that follows is the same to the bit. ``fit`` resets the trackers.
    """
    import tensorflow as tf

    if not net.optimizer.built:
        net.optimizer.build(net.trainable_variables)
    labels = tf.nest.map_structure(lambda s: tf.zeros([1, *s.shape[1:]], s.dtype),
                                   data.element_spec[1])  # fmt: skip
    net.compute_loss(y=labels, y_pred=labels)


def _check_converged(history) -> None:
    """After fitting: a non-finite loss stopped the run (TerminateOnNaN); say so."""
    losses = history.history.get("loss", [])
    if losses and not np.isfinite(losses[-1]):
        raise FloatingPointError(
            f"training stopped in epoch {len(losses)}: the loss became {losses[-1]} (the "
            "optimisation diverged; try a smaller learning rate). The model's weights are "
            "not usable."
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


def default_strategy():
    """``tf.distribute.MirroredStrategy`` over every GPU when more than one is visible, else None.

    With one device (a laptop, Colab) training runs as plain Keras; on a multi-GPU
    node each batch is split over the GPUs and their gradients are summed.

    Notes
    -----
    Introduced in the appendix "Running at scale".
    """
    import tensorflow as tf

    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return None


def _strategy(strategy):
    """The strategy to train under: ``"auto"`` means :func:`default_strategy`."""
    if isinstance(strategy, str):
        if strategy != "auto":
            raise ValueError(f"strategy must be 'auto', None or a tf.distribute.Strategy, "
                             f"got {strategy!r}")  # fmt: skip
        return default_strategy()
    if strategy is not None and not hasattr(strategy, "num_replicas_in_sync"):
        raise TypeError(f"strategy must be a tf.distribute.Strategy, got {type(strategy).__name__}")
    return strategy


def _fit(model: keras.Model, strategy, compile_and_fit):
    """Run ``compile_and_fit(net, replicas)`` on ``model``, or on a copy under ``strategy``.

    A distribution strategy must own the variables it trains, so the model is
    cloned inside ``strategy.scope()``, trained there, and its trained weights are
    copied back: the caller's ``model`` ends up trained either way.
    """
    if strategy is None:
        history = compile_and_fit(model, 1)
    else:
        with strategy.scope():
            net = keras.models.clone_model(model)
            net.set_weights(model.get_weights())
            history = compile_and_fit(net, strategy.num_replicas_in_sync)
        model.set_weights(net.get_weights())
    _check_converged(history)
    return history


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
    strategy="auto",
    resume_dir: str | os.PathLike | None = None,
    callbacks=(),
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
        Samples per batch **on each device**; default :func:`default_batch_size`.
        Under a strategy with several replicas the global batch is
        ``batch_size * strategy.num_replicas_in_sync`` (the learning rate is not
        changed: scale it yourself if you want the linear-scaling rule).
    validation_fraction : float, default 0.05
        Share of the structures kept out of the optimisation for validation
        (a seeded random choice, not the last rows).
    seed : int, default 0
        Seeds the split, the shuffling and Keras' random state.
    learning_rate : float, default 1e-3
        Adam's learning rate.
    verbose : int or "auto"
        Keras' verbosity.
    strategy : tf.distribute.Strategy, "auto" or None, default "auto"
        Where to train. ``"auto"``: :func:`default_strategy` (all GPUs when there
        are several, else one device). ``None``: one device. A strategy trains a
        copy of ``model`` in its scope and copies the weights back.
    resume_dir : path-like, optional
        Make the fit resumable per epoch: every finished epoch's logs and a backup
        of the weights and optimizer state go into this folder, and a fit started
        again with it (after an interruption) goes on after the last finished
        epoch. The returned history then holds every epoch (:func:`resumed_history`).
    callbacks : sequence of keras.callbacks.Callback
        More callbacks, run after the course's.

    Returns
    -------
    keras.callbacks.History
        Loss and accuracy per epoch, for training and validation.

    Raises
    ------
    ValueError
        For arrays of the wrong shape (e.g. channels first), NaN or infinite
        values, or labels out of range.
    FloatingPointError
        When the loss becomes NaN or infinite: training stops at that batch.

    Notes
    -----
    Introduced in Chapter 3.
    """
    _check_arrays(model, x, y)
    strategy = _strategy(strategy)
    fit, val = split_indices(len(x), validation_fraction, seed)
    keras.utils.set_random_seed(seed)
    n_classes = model.output_shape[-1]
    batch_size = batch_size or default_batch_size()

    def compile_and_fit(net, replicas):
        net.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss=keras.losses.CategoricalCrossentropy(),
            metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        )
        validation = batches(x[val], y[val], n_classes, 256) if len(val) else None
        return _fit_resumable(net, resume_dir, callbacks,
            batches(x[fit], y[fit], n_classes, batch_size * replicas, shuffle_seed=seed),
            epochs=epochs,
            validation_data=validation,
            shuffle=False,  # the pipeline shuffles (Keras would only warn that it cannot)
            verbose=verbose,
            callbacks=[keras.callbacks.TerminateOnNaN()],
        )  # fmt: skip

    return _fit(model, strategy, compile_and_fit)


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
    from crystal_course.models import check_finite

    _check_arrays(model, x, y)
    probabilities = model.predict(x, batch_size=batch_size, verbose=0)
    check_finite(probabilities, "the model's outputs")
    predicted = probabilities.argmax(axis=1)
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
    from crystal_course.models import check_finite

    probabilities = np.asarray(probabilities)
    y = np.asarray(y)
    if probabilities.ndim != 2 or y.shape != (len(probabilities),):
        raise ValueError(
            f"probabilities must be (N, n_classes) and y (N,), got {probabilities.shape}, {y.shape}"
        )
    if not 1 <= k <= probabilities.shape[1]:
        raise ValueError(f"k must be in [1, {probabilities.shape[1]}], got {k!r}")
    check_finite(probabilities, "probabilities")
    if (
        y.dtype.kind not in "iu"
        or y.min(initial=0) < 0
        or y.max(initial=0) >= probabilities.shape[1]
    ):
        raise ValueError(f"y must hold integer labels in [0, {probabilities.shape[1]}), got {y!r}")
    top = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return float((top == y[:, None]).any(axis=1).mean())


class _VoteAccuracy(keras.callbacks.Callback):
    """Per epoch: ``accuracy`` (mean of the streams' running training accuracies) and
    ``val_accuracy`` (accuracy of the summed logits on the validation share)."""

    def __init__(self, validation, y_val):
        super().__init__()
        self.validation, self.y_val = validation, y_val

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        streams = [v for k, v in logs.items() if k.startswith("logits_") and k.endswith("accuracy")]
        if streams:
            logs["accuracy"] = float(np.mean(streams))
        if self.validation is not None:
            from crystal_course.models import msdn_probabilities

            probabilities = msdn_probabilities(self.model, self.validation)
            logs["val_accuracy"] = float(np.mean(probabilities.argmax(axis=1) == self.y_val))


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
    weight_decay: float = 1e-7,
    strategy="auto",
    resume_dir: str | os.PathLike | None = None,
    callbacks=(),
) -> keras.callbacks.History:
    """Train a multi-stream model: the loss is the sum of the three streams' cross-entropies.

    Parameters
    ----------
    model : keras.Model
        :func:`crystal_course.models.msdn`.
    shaped : numpy.ndarray
        ``(N, n, n, 3)`` patterns, 0-255 (R, G, B = beam along a, b, c).
    y : numpy.ndarray
        ``(N,)`` class indices.
    epochs, batch_size, validation_fraction, seed, learning_rate, verbose, strategy
        As :func:`train` (the paper used Adam at 1e-5 for many epochs; the
        course's short runs use 1e-3). ``batch_size`` is per device.
    resume_dir, callbacks
        As :func:`train`: a fit resumable per epoch, more callbacks.
    weight_decay : float, default 1e-7
        Adam's (decoupled) weight decay, the paper's value.

    Returns
    -------
    keras.callbacks.History
        Per epoch: ``loss`` and ``val_loss`` (sums over the three streams),
        ``accuracy`` (mean of the streams' running training accuracies) and
        ``val_accuracy`` (the vote of the summed logits on the validation share).

    Notes
    -----
    Introduced in Chapter 6.
    """
    import tensorflow as tf

    from crystal_course.models import check_finite, msdn_inputs

    check_finite(np.asarray(shaped), "shaped")
    inputs = msdn_inputs(shaped)
    y = np.asarray(y)
    n_classes = model.output_shape[0][-1]
    if y.shape != (len(shaped),) or y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"y must be ({len(shaped)},) integer labels in [0, {n_classes})")
    strategy = _strategy(strategy)
    fit, val = split_indices(len(y), validation_fraction, seed)
    keras.utils.set_random_seed(seed)

    def pipeline(index, shuffle, size):
        data = tf.data.Dataset.from_tensor_slices(
            (tuple(a[index] for a in inputs), y[index].astype(np.int32))
        )
        if shuffle:
            data = data.shuffle(len(index), seed=seed, reshuffle_each_iteration=True)
        one_hot = lambda xb, yb: (xb, (tf.one_hot(yb, n_classes),) * 3)  # noqa: E731
        return data.batch(size).map(one_hot).prefetch(tf.data.AUTOTUNE)

    def compile_and_fit(net, replicas):
        net.compile(
            optimizer=keras.optimizers.Adam(learning_rate, weight_decay=weight_decay or None),
            loss=[keras.losses.CategoricalCrossentropy(from_logits=True)] * 3,
            metrics=[[keras.metrics.CategoricalAccuracy(name="accuracy")] for _ in range(3)],
        )
        validation = [a[val] for a in inputs] if len(val) else None
        return _fit_resumable(net, resume_dir, callbacks,
            pipeline(fit, True, batch_size * replicas),
            validation_data=pipeline(val, False, batch_size * replicas) if len(val) else None,
            epochs=epochs,
            shuffle=False,
            verbose=verbose,
            callbacks=[_VoteAccuracy(validation, y[val]), keras.callbacks.TerminateOnNaN()],
        )  # fmt: skip

    return _fit(model, strategy, compile_and_fit)


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
    # The policy that trained the model goes in a field of its own: `architecture`
    # is what load() rebuilds from, and it always rebuilds in the self-check's policy.
    bare = models.build(card["architecture"], precision=models.SELF_CHECK_PRECISION)
    try:
        bare.set_weights(model.get_weights())
    except ValueError as err:
        raise ValueError(f"the card's architecture does not fit the model: {err}") from err
    for layer in bare.layers:  # set_weights leaves a Normalization's adapted statistics unused
        if isinstance(layer, keras.layers.Normalization):
            layer.finalize_state()
    check = bare.predict(models.self_check_input(bare), verbose=0)
    trained_in = next(layer.dtype_policy.name for layer in model.layers if layer.weights)
    precision = {"training": trained_in, "self_check": models.SELF_CHECK_PRECISION}
    card = {**card, "precision": precision, "self_check": check.astype(float).tolist()}
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


def _write_json(path: Path, content: dict) -> None:
    """Write a results card as sorted, indented JSON, atomically (the datasets' writer)."""
    from crystal_course.dataset import _write_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    text = (json.dumps(content, indent=2, sort_keys=True) + "\n").encode()
    _write_atomic(path, lambda handle: handle.write(text))


def main(argv: list[str] | None = None) -> int:
    """Train the 2018 CNN on a dataset directory and save it with its card."""
    from crystal_course import dataset
    from crystal_course.dataset import non_negative_int, positive_int
    from crystal_course.models import ziletti_cnn

    argv = sys.argv[1:] if argv is None else list(argv)

    parser = argparse.ArgumentParser(
        prog="python -m crystal_course.training", description=main.__doc__
    )
    parser.add_argument("dataset", help="directory made by crystal_course.dataset")
    parser.add_argument(
        "--out", required=True, help="directory for ziletti_cnn.weights.h5 and its .json card"
    )
    parser.add_argument("--epochs", type=positive_int, default=5)
    parser.add_argument("--batch-size", type=positive_int, default=None,
                        help="per device; the global batch is this times the devices")  # fmt: skip
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a model already saved in --out")  # fmt: skip
    args = parser.parse_args(argv)
    # Everything that could fail after training is checked before the first epoch.
    out = Path(args.out)
    weights = out / "ziletti_cnn.weights.h5"
    if out.exists() and not out.is_dir():
        parser.error(f"--out {out} is a file: give a directory for the weights and the card")
    if weights.exists() and not args.overwrite:
        parser.error(f"{weights} exists: choose another --out, or pass --overwrite to replace it")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as error:
        parser.error(f"--out {out} is not writable ({error.strerror})")
    try:
        dataset.verify(args.dataset, kind="fingerprint")
        train_set = dataset.load(args.dataset, "train")
    except (ValueError, OSError) as error:
        parser.error(str(error))
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
            "format": train_set.manifest["format"],
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
