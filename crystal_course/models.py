"""Neural networks of the course, as Keras 3 functional models.

Introduced in Chapter 3 (the 2018 CNN of Ziletti et al., Table 1).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ log quiet

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

ZILETTI_CONV = ((32, 32), (16, 16), (8, 8))
"""Filters of the three pairs of 7x7 convolutions (max-pooling between pairs)."""


def ziletti_cnn(
    input_shape: tuple[int, int, int] = (64, 64, 3),
    n_classes: int = 7,
    kernel_size: int = 7,
    seed: int | None = None,
    mixed_precision: bool | None = None,
) -> keras.Model:
    """The convolutional network of Ziletti et al. (2018), Table 1.

    conv 7x7x32, conv 7x7x32 -> max-pool 2 -> conv 7x7x16, conv 7x7x16 ->
    max-pool 2 -> conv 7x7x8, conv 7x7x8 (all 'same' padding, ReLU) ->
    dropout 0.25 -> flatten -> dense 128 ReLU -> batch normalisation ->
    dense ``n_classes`` softmax (the dropout an :class:`MCDropout`, which Chapter 8
    samples). About 366k parameters for 64x64x3 inputs and
    7 classes. (The public reproduction left out the activations, which makes
    the network linear; here every conv and dense layer has its ReLU.)

    Parameters
    ----------
    input_shape : tuple of int, default (64, 64, 3)
        Fingerprint shape, channels last ``(height, width, channels)``.
    n_classes : int, default 7
        Number of classes.
    kernel_size : int, default 7
        Side of the convolution kernels (Table 1: 7; Exercise 3.2 varies it).
    seed : int, optional
        Seed of the weight initialisers (``None``: Keras' global state).
    mixed_precision : bool, optional
        Compute in float16 with float32 weights (Keras' ``mixed_float16``
        policy), which roughly doubles GPU throughput. Default: only when
        TensorFlow sees a GPU. The softmax output stays float32 either way.

    Returns
    -------
    keras.Model
        Uncompiled; layers are named ``conv1`` ... ``conv6``, ``pool1``,
        ``pool2``, ``dropout``, ``flatten``, ``dense``, ``batchnorm``, ``softmax``.

    Raises
    ------
    ValueError
        For a shape that is not ``(height, width, channels)`` with spatial
        sides divisible by 4, or fewer than two classes.

    Notes
    -----
    Introduced in Chapter 3.
    """
    shape = tuple(input_shape)
    if len(shape) != 3 or min(shape) < 1 or shape[0] % 4 or shape[1] % 4:
        raise ValueError(
            f"input_shape must be (height, width, channels) with height and width divisible "
            f"by 4 (two 2x2 poolings), got {input_shape!r}"
        )
    if n_classes < 2:
        raise ValueError(f"n_classes must be at least 2, got {n_classes!r}")
    if kernel_size < 1:
        raise ValueError(f"kernel_size must be a positive odd or even integer, got {kernel_size!r}")

    if mixed_precision is None:
        from crystal_course.config import gpu_names

        mixed_precision = bool(gpu_names())
    policy = "mixed_float16" if mixed_precision else "float32"

    def init(offset: int):
        return keras.initializers.GlorotUniform(seed=None if seed is None else seed + offset)

    inputs = keras.Input(shape=shape, name="fingerprint")
    x = inputs
    index = 0
    for block, filters in enumerate(ZILETTI_CONV):
        if block:
            x = layers.MaxPooling2D(2, dtype=policy, name=f"pool{block}")(x)
        for f in filters:
            index += 1
            x = layers.Conv2D(
                f,
                kernel_size,
                padding="same",
                activation="relu",
                kernel_initializer=init(index),
                dtype=policy,
                name=f"conv{index}",
            )(x)
    x = MCDropout(0.25, seed=seed, dtype=policy, name="dropout")(x)
    x = layers.Flatten(dtype=policy, name="flatten")(x)
    x = layers.Dense(
        128, activation="relu", kernel_initializer=init(10), dtype=policy, name="dense"
    )(x)
    x = layers.BatchNormalization(dtype=policy, name="batchnorm")(x)
    outputs = layers.Dense(
        n_classes,
        activation="softmax",
        kernel_initializer=init(11),
        dtype="float32",
        name="softmax",
    )(x)
    return keras.Model(inputs, outputs, name="ziletti_cnn")


PRETRAINED = ("ziletti_cnn", "powder_cnn", "soap_network")
"""Models shipped with the package (``crystal_course/data/models``)."""

WEIGHTS_SUFFIX = ".weights.h5"
"""How shipped models are stored: Keras weights only, the architecture is rebuilt."""

SELF_CHECK_SEED = 0
"""Seed of the random input whose outputs a card records (see :func:`load`)."""

SELF_CHECK_PRECISION = "float32"
"""The Keras dtype policy a card's ``self_check`` outputs are computed in.

:func:`crystal_course.training.save_model` records them from a float32 rebuild,
whatever policy trained the model (a card's ``precision`` field names both), and
:func:`load` rebuilds in the same policy, so a GPU (where the builders would
otherwise choose ``mixed_float16``) reproduces them too."""

SELF_CHECK_TOLERANCE = {"rtol": 1e-3, "atol": 1e-7}
"""How close a loaded model's outputs must be to the recorded ones (float32 policy)."""


def architectures() -> dict:
    """The model builders a card's ``architecture`` entry may name.

    Notes
    -----
    Introduced in Chapter 3.
    """
    return {"ziletti_cnn": ziletti_cnn, "powder_cnn": powder_cnn, "soap_network": soap_network}


def build(architecture: dict, precision: str | None = None) -> keras.Model:
    """Rebuild an uncompiled model from a card's ``architecture`` entry.

    Parameters
    ----------
    architecture : dict
        ``{"builder": name, **keyword arguments}``, ``name`` one of
        :func:`architectures`, e.g. ``{"builder": "ziletti_cnn", "n_classes": 7}``.
    precision : {"float32", "mixed_float16"}, optional
        Dtype policy of the rebuilt model; default: the builder's own (mixed
        precision when TensorFlow sees a GPU).

    Raises
    ------
    ValueError
        For a missing or unknown builder.

    Notes
    -----
    Introduced in Chapter 3.
    """
    kwargs = dict(architecture)
    name = kwargs.pop("builder", None)
    builders = architectures()
    if name not in builders:
        raise ValueError(
            f"architecture must name a builder, one of {', '.join(builders)}; got {name!r}"
        )
    if "input_shape" in kwargs:
        kwargs["input_shape"] = tuple(kwargs["input_shape"])
    if precision is not None:
        policies = {"float32": False, "mixed_float16": True}
        if precision not in policies:
            raise ValueError(f"precision must be one of {', '.join(policies)}; got {precision!r}")
        kwargs["mixed_precision"] = policies[precision]
    return builders[name](**kwargs)


def self_check_input(model: keras.Model, n: int = 2) -> np.ndarray:
    """The seeded random batch whose outputs a card records (float32, model's input shape)."""
    shape = tuple(model.inputs[0].shape[1:])
    return np.random.default_rng(SELF_CHECK_SEED).random((n, *shape), dtype=np.float32)


def card_path(weights_path: str | os.PathLike):
    """The JSON card beside a weights file: ``name.weights.h5`` -> ``name.json``."""
    from pathlib import Path

    path = Path(weights_path)
    if not path.name.endswith(WEIGHTS_SUFFIX):
        raise ValueError(f"expected a Keras weights file ending in {WEIGHTS_SUFFIX}, got {path}")
    return path.with_name(path.name[: -len(WEIGHTS_SUFFIX)] + ".json")


def _pretrained_path(name: str):
    from importlib import resources

    if name not in PRETRAINED:
        raise ValueError(f"unknown pretrained model {name!r}; available: {', '.join(PRETRAINED)}")
    return resources.files("crystal_course").joinpath("data", "models", name + WEIGHTS_SUFFIX)


def check_finite(array: np.ndarray, name: str) -> None:
    """Refuse NaN or infinite values, naming the first row (image) that holds one.

    Notes
    -----
    Introduced in Chapter 3.
    """
    finite = np.isfinite(array)
    if not finite.all():
        bad = np.flatnonzero(~finite.reshape(len(array), -1).all(axis=1))
        raise ValueError(
            f"{name} holds {int((~finite).sum())} non-finite values (NaN or inf) in "
            f"{len(bad)} of its {len(array)} rows, first in row {int(bad[0])}: a network cannot "
            "learn from or be scored on them"
        )


def check_images(model: keras.Model, x) -> None:
    """Refuse a batch of images the model cannot take, naming the shape it expects.

    A channels-first batch gets a hint; NaN or infinite pixels are refused
    (:func:`check_finite`).

    Notes
    -----
    Introduced in Chapter 3.
    """
    expected = tuple(model.input_shape[1:])
    if not isinstance(x, np.ndarray) or x.ndim != len(expected) + 1 or x.shape[1:] != expected:
        got = getattr(x, "shape", type(x).__name__)
        hint = ""
        if isinstance(x, np.ndarray) and x.ndim == len(expected) + 1 and x.shape[1] == expected[-1]:
            hint = " (channels first? images are channels-last, e.g. (N, 64, 64, 3))"
        elif isinstance(x, np.ndarray) and x.shape == expected:
            hint = " (one image? add the batch axis: x[None])"
        raise ValueError(f"x must have shape (N, {', '.join(map(str, expected))}), got {got}{hint}")
    check_finite(x, "x")


def predict(model: keras.Model, images, batch_size: int = 256) -> np.ndarray:
    """Class probabilities of one image or a batch, checked against the model's input.

    Parameters
    ----------
    model : keras.Model
        A classifier of the course (e.g. :func:`load_pretrained`).
    images : array-like
        One image ``(64, 64, 3)`` or a batch ``(N, 64, 64, 3)``, channels last.
    batch_size : int, default 256

    Returns
    -------
    numpy.ndarray
        ``(n_classes,)`` for one image, ``(N, n_classes)`` for a batch.

    Raises
    ------
    ValueError
        Naming the expected shape (with a hint for channels-first input), or
        for NaN or infinite pixels.

    Notes
    -----
    Introduced in Chapter 3.
    """
    x = np.asarray(images, dtype=np.float32)
    single = x.shape == tuple(model.input_shape[1:])
    batch = x[None] if single else x
    check_images(model, batch)
    probabilities = model.predict(batch, batch_size=batch_size, verbose=0)
    return probabilities[0] if single else probabilities


def _read_card(card_file) -> dict:
    """A model card, parsed, or a ValueError naming the file."""
    import json

    try:
        card = json.loads(card_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{card_file} is not a valid model card (not JSON: {error})") from None
    if not isinstance(card, dict):
        raise ValueError(f"{card_file} is not a valid model card (expected a JSON object)")
    return card


def model_card(name: str = "ziletti_cnn") -> dict:
    """The JSON card of a shipped model: command, dataset, epochs, test accuracies, versions.

    Notes
    -----
    Introduced in Chapter 3.
    """
    return _read_card(card_path(_pretrained_path(name)))


def load(weights_path: str | os.PathLike, verify: bool = True) -> keras.Model:
    """Load a model saved by :func:`crystal_course.training.save_model`.

    The file holds weights only; the architecture is rebuilt from the card beside
    it (``architecture`` entry) with this package's own builders, so the file
    loads on every Keras 3 release the package supports, not only the one that
    saved it. The loaded model must reproduce the outputs the card recorded on a
    seeded random batch (``self_check``), so a silent mismatch cannot pass. It
    is rebuilt in the policy those outputs were computed in
    (:data:`SELF_CHECK_PRECISION`, float32), also on a GPU, and compared within
    :data:`SELF_CHECK_TOLERANCE`; the policy that trained it (the card's
    ``precision["training"]``) does not matter for inference.

    Parameters
    ----------
    weights_path : path-like
        ``name.weights.h5``, with ``name.json`` beside it.
    verify : bool, default True
        Require the card's ``self_check`` and check it. ``False`` loads a card
        without one (an unverified model: use it knowing that nothing checked the
        weights); shipped models are always verified.

    Returns
    -------
    keras.Model
        Uncompiled.

    Raises
    ------
    FileNotFoundError
        If the weights or the card are missing.
    ValueError
        If the card is not valid JSON, has no architecture, or (with ``verify``)
        no ``self_check``; the message names the file.
    RuntimeError
        If this Keras cannot load the weights, or the loaded model does not
        reproduce the recorded outputs; the message names the file and both
        Keras versions.

    Notes
    -----
    Introduced in Chapter 3.
    """
    from pathlib import Path

    path = Path(weights_path)
    card_file = card_path(path)
    for needed in (path, card_file):
        if not needed.is_file():
            raise FileNotFoundError(f"{needed} is missing; retrain with the command in its card")
    card = _read_card(card_file)
    if "architecture" not in card:
        raise ValueError(f"{card_file}: expected an 'architecture' entry, found none")
    check = card.get("self_check")
    if verify and not (isinstance(check, list) and check):
        raise ValueError(
            f"{card_file} has no self_check: nothing can tell whether the weights are the ones "
            "it describes (save with training.save_model, or load(..., verify=False))"
        )
    saved_by = card.get("versions", {}).get("keras", "an unknown version")
    where = f"{path} (saved by Keras {saved_by}) with Keras {keras.__version__}"
    precision = card.get("precision", {}).get("self_check", SELF_CHECK_PRECISION)
    model = build(card["architecture"], precision=precision)
    try:
        model.load_weights(str(path))
    except Exception as err:
        raise RuntimeError(f"cannot load {where}: {err}") from err
    if check:
        # a call, not model.predict: each predict of a new model traces a new function,
        # and TensorFlow warns about retracing after a few loads
        got = np.asarray(model(self_check_input(model, len(check)), training=False))
        if not np.allclose(got, np.asarray(check), **SELF_CHECK_TOLERANCE):
            raise RuntimeError(
                f"loaded {where}, but it does not reproduce the outputs recorded in "
                f"{card_file.name} (largest difference {np.abs(got - check).max():.2g})"
            )
    return model


def load_pretrained(name: str = "ziletti_cnn") -> keras.Model:
    """A model trained by the package in full mode and shipped with it.

    Parameters
    ----------
    name : str, default "ziletti_cnn"
        One of :data:`PRETRAINED`.

    Raises
    ------
    ValueError
        For an unknown name.
    FileNotFoundError
        If the weights are missing from this installation.
    RuntimeError
        If this Keras cannot load them (see :func:`load`).

    Notes
    -----
    Introduced in Chapter 3; :func:`model_card` says how it was made.
    """
    return load(_pretrained_path(name))


def structure_fingerprints(atoms_list, n_atoms: int = 250, symprec: float = 1e-3) -> np.ndarray:
    """The 2018 pipeline's input for arbitrary periodic structures.

    Each structure goes through spglib's standard conventional cell (its
    canonical orientation), is repeated to about ``n_atoms`` unless it is
    already that large, and becomes a fingerprint.

    Parameters
    ----------
    atoms_list : sequence of ase.Atoms
        Periodic structures (any orientation).
    n_atoms : int, default 250
        Cluster size of the fingerprints.
    symprec : float, default 1e-3
        spglib tolerance (Å) used to standardise the cell.

    Returns
    -------
    numpy.ndarray
        ``(N, 64, 64, 3)`` float32 fingerprints.

    Notes
    -----
    Introduced in Chapter 3.
    """
    from crystal_course.diffraction import fingerprints
    from crystal_course.structures import (
        check_n_atoms,
        check_symprec,
        standard_conventional_cell,
        supercell,
    )

    symprec = check_symprec(symprec)
    n_atoms = check_n_atoms(n_atoms)
    clusters = []
    for atoms in atoms_list:
        cell = standard_conventional_cell(atoms, symprec=symprec)
        clusters.append(cell if len(cell) >= n_atoms // 2 else supercell(cell, n_atoms))
    return fingerprints(clusters, progress=False, n_jobs=1)


def predict_structures(
    atoms_list, model: keras.Model | None = None, n_atoms: int = 250, symprec: float = 1e-3
):
    """Classify arbitrary crystal structures with the full pipeline.

    :func:`structure_fingerprints` (spglib's standard cell, a cluster of about
    ``n_atoms``, its fingerprint); the model does the rest.

    Parameters
    ----------
    atoms_list, n_atoms, symprec
        As for :func:`structure_fingerprints`.
    model : keras.Model, optional
        Default: :func:`load_pretrained`.

    Returns
    -------
    names : list of str
        Predicted class names (:data:`crystal_course.structures.CLASSES`).
    probabilities : numpy.ndarray
        ``(N, n_classes)`` softmax outputs.

    Notes
    -----
    Introduced in Chapter 3.
    """
    from crystal_course.structures import CLASSES

    model = model or load_pretrained()
    if model.output_shape[-1] != len(CLASSES):
        raise ValueError(f"model has {model.output_shape[-1]} outputs, expected {len(CLASSES)}")
    images = structure_fingerprints(atoms_list, n_atoms, symprec)
    probabilities = model.predict(images, verbose=0)
    return [CLASSES[i] for i in probabilities.argmax(axis=1)], probabilities


def dense_autoencoder(
    input_shape: tuple[int, int, int] = (64, 64, 3),
    hidden: tuple[int, ...] = (128, 64),
    bottleneck: int = 2,
    seed: int | None = None,
) -> tuple[keras.Model, keras.Model]:
    """The fully connected autoencoder of the 2021 term report (its Table 2).

    Flattened image (64 x 64 x 3 = 12,288 inputs; the report's "12280" is a typo)
    -> 128 -> 64 -> ``bottleneck`` (ReLU) -> 64 -> 128 (ReLU) -> 12,288 (tanh),
    reshaped back to the image.

    Parameters
    ----------
    input_shape : tuple of int, default (64, 64, 3)
        Image shape, channels last.
    hidden : tuple of int, default (128, 64)
        Widths of the encoder's hidden layers (mirrored in the decoder).
    bottleneck : int, default 2
        Size of the code.
    seed : int, optional
        Seed of the weight initialisers.

    Returns
    -------
    autoencoder : keras.Model
        Image -> reconstruction (uncompiled).
    encoder : keras.Model
        Image -> code, sharing the autoencoder's layers.

    Notes
    -----
    Introduced in Chapter 5.
    """
    shape = tuple(input_shape)
    if len(shape) != 3 or min(shape) < 1 or bottleneck < 1 or not hidden:
        raise ValueError(
            f"need input_shape (height, width, channels), hidden widths and bottleneck >= 1; "
            f"got {input_shape!r}, {hidden!r}, {bottleneck!r}"
        )

    def init(offset: int):
        return keras.initializers.GlorotUniform(seed=None if seed is None else seed + offset)

    size = shape[0] * shape[1] * shape[2]
    inputs = keras.Input(shape=shape, name="image")
    x = layers.Flatten(name="flatten")(inputs)
    for i, width in enumerate(hidden, start=1):
        x = layers.Dense(width, "relu", kernel_initializer=init(i), name=f"encode{i}")(x)
    code = layers.Dense(bottleneck, "relu", kernel_initializer=init(0), name="bottleneck")(x)
    x = code
    for i, width in enumerate(reversed(hidden), start=1):
        x = layers.Dense(width, "relu", kernel_initializer=init(10 + i), name=f"decode{i}")(x)
    x = layers.Dense(size, "tanh", kernel_initializer=init(20), name="output")(x)
    outputs = layers.Reshape(shape, name="image_out")(x)
    return (
        keras.Model(inputs, outputs, name="dense_autoencoder"),
        keras.Model(inputs, code, name="dense_encoder"),
    )


def conv_autoencoder(
    input_shape: tuple[int, int, int] = (64, 64, 3),
    filters: tuple[int, ...] = (32, 16, 8),
    bottleneck: int = 16,
    seed: int | None = None,
) -> tuple[keras.Model, keras.Model]:
    """A convolutional autoencoder (the term report's suggested next step).

    Encoder: per entry of ``filters`` a 3x3 'same' ReLU convolution and a 2x2
    max pooling, then a dense ``bottleneck`` code. Decoder: dense back to the
    last feature-map size, then per level a 2x2 upsampling and a 3x3 ReLU
    convolution, and a 3x3 sigmoid convolution to the image channels
    (fingerprints lie in [0, 1]).

    Returns
    -------
    autoencoder, encoder : keras.Model
        As :func:`dense_autoencoder`.

    Raises
    ------
    ValueError
        If the image sides are not divisible by ``2 ** len(filters)``.

    Notes
    -----
    Introduced in Chapter 5.
    """
    shape = tuple(input_shape)
    factor = 2 ** len(filters)
    if len(shape) != 3 or shape[0] % factor or shape[1] % factor or bottleneck < 1:
        raise ValueError(
            f"input_shape must be (height, width, channels) with sides divisible by {factor}, "
            f"and bottleneck >= 1; got {input_shape!r}, {bottleneck!r}"
        )

    def init(offset: int):
        return keras.initializers.GlorotUniform(seed=None if seed is None else seed + offset)

    inputs = keras.Input(shape=shape, name="image")
    x = inputs
    for i, f in enumerate(filters, start=1):
        x = layers.Conv2D(
            f, 3, padding="same", activation="relu", kernel_initializer=init(i), name=f"encode{i}"
        )(x)
        x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    small = tuple(x.shape[1:])
    x = layers.Flatten(name="flatten")(x)
    code = layers.Dense(bottleneck, kernel_initializer=init(0), name="bottleneck")(x)
    x = layers.Dense(int(np.prod(small)), "relu", kernel_initializer=init(9), name="expand")(code)
    x = layers.Reshape(small, name="unflatten")(x)
    for i, f in enumerate(reversed(filters), start=1):
        x = layers.UpSampling2D(2, name=f"up{i}")(x)
        x = layers.Conv2D(
            f,
            3,
            padding="same",
            activation="relu",
            kernel_initializer=init(10 + i),
            name=f"decode{i}",
        )(x)
    outputs = layers.Conv2D(
        shape[2],
        3,
        padding="same",
        activation="sigmoid",
        kernel_initializer=init(20),
        name="image_out",
    )(x)
    return (
        keras.Model(inputs, outputs, name="conv_autoencoder"),
        keras.Model(inputs, code, name="conv_encoder"),
    )


@keras.saving.register_keras_serializable(package="crystal_course")
class MCDropout(layers.Dropout):
    """Dropout that :func:`mc_dropout_predict` can keep switched on at inference.

    Behaves exactly like ``keras.layers.Dropout`` unless ``always_on`` is set.

    Notes
    -----
    Introduced in Chapter 6.
    """

    def __init__(self, rate, **kwargs):
        super().__init__(rate, **kwargs)
        self.always_on = False

    def call(self, inputs, training=None):
        return super().call(inputs, training=True if self.always_on else training)


def _check_classes(n_classes: int) -> None:
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
        raise ValueError(f"n_classes must be an integer >= 2, got {n_classes!r}")


def powder_cnn(n_q: int = 512, n_classes: int = 7, dropout: float = 0.25,
               seed: int | None = None, mixed_precision: bool | None = None
               ) -> keras.Model:  # fmt: skip
    """A small 1D CNN on a powder pattern (Chapter 8's orientation-free classifier).

    conv 9x32, max-pool 2, conv 9x32, max-pool 2, conv 9x16, max-pool 2 (all ReLU,
    'same' padding) -> flatten -> :class:`MCDropout` -> dense 64 ReLU -> batch
    normalisation -> dense ``n_classes`` softmax: the layout of the 2018 CNN in one
    dimension, sized for a pattern of ``n_q`` points (ours).

    Parameters
    ----------
    n_q : int
        Points of the pattern, divisible by 8; input shape ``(n_q, 1)``.
    n_classes : int
    dropout : float
        Rate of the :class:`MCDropout` layer (on at prediction under
        :func:`mc_dropout_samples`, while batch normalisation keeps its learned
        statistics).
    seed : int, optional
        Seeds the initialisers and the dropout.
    mixed_precision : bool, optional
        Accepted for :func:`build`; this small network always computes in float32.

    Notes
    -----
    Introduced in Chapter 8.
    """
    _check_classes(n_classes)
    if isinstance(n_q, bool) or not isinstance(n_q, int) or n_q < 8 or n_q % 8:
        raise ValueError(f"n_q must be a positive multiple of 8 (three poolings), got {n_q!r}")

    def init(offset: int):
        return keras.initializers.GlorotUniform(seed=None if seed is None else seed + offset)

    inputs = keras.Input(shape=(n_q, 1), name="powder_pattern")
    x = inputs
    for i, filters in enumerate((32, 32, 16), start=1):
        x = layers.Conv1D(filters, 9, padding="same", activation="relu",
                          kernel_initializer=init(i), name=f"conv{i}")(x)  # fmt: skip
        x = layers.MaxPooling1D(2, name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = MCDropout(dropout, seed=seed, name="dropout")(x)
    x = layers.Dense(64, activation="relu", kernel_initializer=init(10), name="dense")(x)
    x = layers.BatchNormalization(name="batchnorm")(x)
    outputs = layers.Dense(n_classes, activation="softmax", kernel_initializer=init(11),
                           name="softmax")(x)  # fmt: skip
    return keras.Model(inputs, outputs, name="powder_cnn")


def soap_network(n_features: int, n_classes: int = 7, dropout: float = 0.25,
                 seed: int | None = None, mixed_precision: bool | None = None
                 ) -> keras.Model:  # fmt: skip
    """A small dense network on an atom-averaged SOAP vector (Chapter 8).

    Keras' ``Normalization`` (fitted with ``adapt`` on the training features
    before training; its mean and variance are saved with the weights) -> dense
    128 ReLU -> :class:`MCDropout` -> dense 64 ReLU -> :class:`MCDropout` -> dense
    ``n_classes`` softmax (our sizes). ``mixed_precision`` is accepted for
    :func:`build`; this small network always computes in float32.

    Notes
    -----
    Introduced in Chapter 8.
    """
    _check_classes(n_classes)
    if isinstance(n_features, bool) or not isinstance(n_features, int) or n_features < 1:
        raise ValueError(f"n_features must be a positive integer, got {n_features!r}")
    init = [keras.initializers.GlorotUniform(seed=None if seed is None else seed + k)
            for k in range(3)]  # fmt: skip
    inputs = keras.Input(shape=(n_features,), name="soap")
    x = layers.Normalization(name="standardise")(inputs)
    for i, width in enumerate((128, 64)):
        x = layers.Dense(width, activation="relu", kernel_initializer=init[i],
                         name=f"dense{i + 1}")(x)  # fmt: skip
        x = MCDropout(dropout, seed=None if seed is None else seed + i,
                      name=f"dropout{i + 1}")(x)  # fmt: skip
    outputs = layers.Dense(n_classes, activation="softmax", kernel_initializer=init[2],
                           name="softmax")(x)  # fmt: skip
    return keras.Model(inputs, outputs, name="soap_network")


MSDN_INPUTS = ("beam_a", "beam_b", "beam_c")
"""Input names of :func:`msdn`: one pattern per zone axis, in the order of the channels."""


def _densenet_trunk(shape, blocks, growth, stem_filters, dropout, compression, init, batch_norm):
    def norm_relu(x, name):  # BN-ReLU, or ReLU alone (the paper's dense layers)
        if batch_norm:
            x = layers.BatchNormalization(name=f"{name}_bn")(x)
        return layers.Activation("relu", name=f"{name}_relu")(x)

    def conv(x, filters, size, name, **kwargs):
        return layers.Conv2D(filters, size, use_bias=not batch_norm, kernel_initializer=init(),
                             name=name, **kwargs)(x)  # fmt: skip

    inputs = keras.Input(shape=shape, name="pattern")
    x = conv(inputs, stem_filters, 7, "stem_conv", strides=2, padding="same")
    x = norm_relu(x, "stem")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    for b, n_layers in enumerate(blocks, start=1):
        for i in range(1, n_layers + 1):
            name = f"block{b}_layer{i}"
            y = norm_relu(x, f"{name}_1")
            y = conv(y, 4 * growth, 1, f"{name}_conv1")
            y = norm_relu(y, f"{name}_2")
            y = conv(y, growth, 3, f"{name}_conv2", padding="same")
            y = MCDropout(dropout, name=f"{name}_dropout")(y)
            x = layers.Concatenate(name=f"{name}_concat")([x, y])
        if b < len(blocks):
            channels = max(1, int(x.shape[-1] * compression))
            x = norm_relu(x, f"transition{b}")
            x = conv(x, channels, 1, f"transition{b}_conv")
            x = layers.AveragePooling2D(2, name=f"transition{b}_pool")(x)
    x = norm_relu(x, "final")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = MCDropout(dropout, name="features_dropout")(x)
    return keras.Model(inputs, x, name="densenet_trunk")


def msdn(
    input_shape: tuple[int, int, int] = (64, 64, 1),
    n_classes: int = 20,
    blocks: tuple[int, ...] = (3, 6, 12, 8),
    growth: int = 32,
    stem_filters: int = 32,
    dropout: float = 0.2,
    compression: float = 0.5,
    seed: int | None = None,
    batch_norm: bool = True,
) -> keras.Model:
    """The multi-stream DenseNet (MSDN) of Tiong et al. (2020).

    Three inputs -- the patterns with the beam along three zone axes -- go
    through **one** DenseNet trunk (shared weights: one set of variables, used
    three times): a 7x7 stride-2 stem convolution and max pooling, dense blocks
    of ``blocks`` layers (ReLU-1x1 conv to ``4 x growth``, ReLU-3x3 conv to
    ``growth``, dropout, concatenation: the paper's "conv, ReLU and dropout"),
    1x1 transitions with average pooling between blocks, global average
    pooling and dropout. ``batch_norm=True`` (the default) puts batch
    normalisation before every ReLU, as in the original DenseNet: the course's
    choice (Chapter 6 compares both). Each stream has its own
    linear head. The model outputs the three streams' logits; the training loss
    is the sum of the three softmax cross-entropies (Keras adds the outputs'
    losses) and the prediction comes from the summed logits
    (:func:`msdn_probabilities`).

    Parameters
    ----------
    input_shape : tuple of int, default (64, 64, 1)
        One stream's input.
    n_classes : int, default 20
        Number of space groups.
    blocks : tuple of int, default (3, 6, 12, 8)
        Layers per dense block (the paper's; quick mode uses a smaller trunk).
    growth : int, default 32
        Channels each dense layer adds.
    stem_filters : int, default 32
        Filters of the stem convolution.
    dropout : float, default 0.2
        Rate of the trunk's :class:`MCDropout` layers (0 disables them).
    compression : float, default 0.5
        Channel factor of the transitions.
    seed : int, optional
        Seeds the weight initialisers.
    batch_norm : bool, default True
        Batch normalisation before every ReLU (convolutions then have no bias);
        ``False`` gives the paper's dense layers.

    Returns
    -------
    keras.Model
        Inputs ``beam_a``, ``beam_b``, ``beam_c``; outputs ``logits_a``,
        ``logits_b``, ``logits_c``. The trunk is the layer ``densenet_trunk``.

    Notes
    -----
    Introduced in Chapter 6.
    """
    shape = tuple(input_shape)
    if len(shape) != 3 or min(shape[:2]) < 8 or n_classes < 2 or not blocks or growth < 1:
        raise ValueError(
            f"need input_shape (h, w, c) with sides >= 8, n_classes >= 2, blocks and growth; "
            f"got {input_shape!r}, {n_classes!r}, {blocks!r}, {growth!r}"
        )
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    counter = iter(range(10_000))

    def init():
        offset = next(counter)
        return keras.initializers.HeNormal(seed=None if seed is None else seed + offset)

    trunk = _densenet_trunk(
        shape, tuple(blocks), growth, stem_filters, dropout, compression, init, batch_norm
    )
    inputs = [keras.Input(shape=shape, name=name) for name in MSDN_INPUTS]
    outputs = [
        layers.Dense(n_classes, kernel_initializer=init(), name=f"logits_{name[-1]}")(trunk(x))
        for x, name in zip(inputs, MSDN_INPUTS, strict=True)
    ]
    return keras.Model(inputs, outputs, name="msdn")


def msdn_table(model: keras.Model):
    """The stages of an MSDN's shared trunk: output shape and parameters (``pandas.DataFrame``).

    Rows: the stem, each dense block, each transition, the global pooling and
    the three heads together.

    Notes
    -----
    Introduced in Chapter 6.
    """
    import pandas as pd

    try:
        trunk = model.get_layer("densenet_trunk")
    except ValueError:
        raise ValueError("model has no 'densenet_trunk' layer: expected an msdn()") from None
    stages = {"stem": ("stem_", "stem_pool")}
    names = [layer.name for layer in trunk.layers]
    n_blocks = max(int(n[5:].split("_")[0]) for n in names if n.startswith("block"))
    for b in range(1, n_blocks + 1):
        last = max(int(n.split("_")[1][5:]) for n in names if n.startswith(f"block{b}_"))
        stages[f"dense block {b} ({last} layers)"] = (f"block{b}_", f"block{b}_layer{last}_concat")
        if b < n_blocks:
            stages[f"transition {b}"] = (f"transition{b}_", f"transition{b}_pool")
    stages["global average pooling"] = ("final_", "pool")
    rows = []
    for name, (prefix, last) in stages.items():
        params = sum(x.count_params() for x in trunk.layers if x.name.startswith(prefix))
        shape = tuple(trunk.get_layer(last).output.shape[1:])
        rows.append({"stage": name, "output (h, w, channels)": shape, "parameters": params})
    heads = [layer for layer in model.layers if layer.name.startswith("logits_")]
    rows.append({"stage": "3 linear heads", "output (h, w, channels)": (heads[0].units,),
                 "parameters": sum(h.count_params() for h in heads)})  # fmt: skip
    return pd.DataFrame(rows).set_index("stage")


def msdn_inputs(shaped: np.ndarray) -> list[np.ndarray]:
    """Split ``(N, n, n, 3 C)`` patterns (0-255) into the MSDN's three float inputs in [0, 1].

    Pattern ``k`` (the beam along the ``k``-th zone axis) is channels ``k C`` to
    ``(k + 1) C - 1``: one channel each for grey patterns (``C = 1``), two for raw and
    shaped pairs (:func:`crystal_course.shaping.paired_shapes`), three for the paper's
    coloured patterns (:func:`crystal_course.shaping.coloured_shapes`).

    Notes
    -----
    Introduced in Chapter 6.
    """
    shaped = np.asarray(shaped)
    if shaped.ndim != 4 or shaped.shape[-1] not in (3, 6, 9):
        raise ValueError(
            f"shaped must be (N, n, n, 3), (N, n, n, 6) or (N, n, n, 9): three patterns of 1, "
            f"2 or 3 channels each, got {shaped.shape}"
        )
    c = shaped.shape[-1] // 3
    return [shaped[..., k * c : (k + 1) * c].astype(np.float32) / 255 for k in range(3)]


def _walk(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _walk(layer)


def msdn_probabilities(model: keras.Model, inputs, batch_size: int = 256) -> np.ndarray:
    """Class probabilities of an MSDN: softmax of the three streams' summed logits.

    Notes
    -----
    Introduced in Chapter 6.
    """
    logits = model.predict(inputs, batch_size=batch_size, verbose=0)
    return np.asarray(keras.ops.softmax(sum(logits), axis=-1))


def mc_dropout_samples(
    model: keras.Model, inputs, passes: int = 100, batch_size: int = 256, seed: int = 0
) -> np.ndarray:
    """Monte Carlo dropout: the predicted probabilities of every pass.

    Every :class:`MCDropout` layer stays on while batch normalisation uses its
    learned statistics; each pass is a different random sub-network. The
    spread says how sure the network is (Tiong et al. use 500 passes).

    Parameters
    ----------
    model : keras.Model
        An :func:`msdn` (three logit outputs, summed) or any single-output
        softmax classifier.
    inputs : array or list of arrays
        As for ``model.predict``.
    passes : int, default 100
        Forward passes.
    batch_size : int, default 256
    seed : int, default 0
        Seeds the dropout masks: the same seed gives the same passes (each
        layer's random state is restored afterwards).

    Returns
    -------
    numpy.ndarray
        ``(passes, N, n_classes)``; every pass alike when the model has no active
        dropout. :func:`crystal_course.uncertainty.predictive_entropy` and
        :func:`~crystal_course.uncertainty.mutual_information` read it.

    Notes
    -----
    Introduced in Chapter 6 (:func:`mc_dropout_predict`); the samples in Chapter 8.
    """
    if isinstance(passes, bool) or not isinstance(passes, int) or passes < 1:
        raise ValueError(f"passes must be a positive integer, got {passes!r}")
    dropouts = [
        layer
        for layer in _walk(model)
        if isinstance(layer, MCDropout) and getattr(layer, "seed_generator", None) is not None
    ]  # a rate of 0 has no random state and nothing to switch on
    arrays = inputs if isinstance(inputs, list | tuple) else [inputs]
    n = len(arrays[0])
    samples = []
    saved = [np.array(layer.seed_generator.state.numpy()) for layer in dropouts]
    for i, layer in enumerate(dropouts):
        layer.always_on = True
        layer.seed_generator.state.assign(np.array([seed, i], dtype=saved[i].dtype))
    try:
        for _ in range(passes):
            chunks = []
            for start in range(0, n, batch_size):
                batch = [a[start : start + batch_size] for a in arrays]
                out = model(batch if len(batch) > 1 else batch[0], training=False)
                if isinstance(out, list | tuple):
                    out = keras.ops.softmax(sum(out), axis=-1)
                chunks.append(np.asarray(out))
            samples.append(np.concatenate(chunks))
    finally:
        for layer, state in zip(dropouts, saved, strict=True):
            layer.always_on = False
            layer.seed_generator.state.assign(state)
    return np.stack(samples)


def mc_dropout_predict(
    model: keras.Model, inputs, passes: int = 100, batch_size: int = 256, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Monte Carlo dropout: mean and standard deviation of the probabilities over passes.

    :func:`mc_dropout_samples` (every :class:`MCDropout` on, batch normalisation
    on its learned statistics; Tiong et al. use 500 passes), summarised.

    Returns
    -------
    mean, std : numpy.ndarray
        ``(N, n_classes)`` each. ``std`` is zero when the model has no active
        dropout.

    Notes
    -----
    Introduced in Chapter 6.
    """
    stacked = mc_dropout_samples(model, inputs, passes, batch_size, seed)
    return stacked.mean(axis=0), stacked.std(axis=0)
