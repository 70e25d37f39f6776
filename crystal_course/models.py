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
    dense ``n_classes`` softmax. About 366k parameters for 64x64x3 inputs and
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
    x = layers.Dropout(0.25, seed=seed, dtype=policy, name="dropout")(x)
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


PRETRAINED = ("ziletti_cnn",)
"""Models shipped with the package (``crystal_course/data/models``)."""


def _pretrained_path(name: str):
    from importlib import resources

    if name not in PRETRAINED:
        raise ValueError(f"unknown pretrained model {name!r}; available: {', '.join(PRETRAINED)}")
    return resources.files("crystal_course").joinpath("data", "models", f"{name}.keras")


def model_card(name: str = "ziletti_cnn") -> dict:
    """The JSON card of a shipped model: command, dataset, epochs, test accuracies, versions.

    Notes
    -----
    Introduced in Chapter 3.
    """
    import json

    card = _pretrained_path(name).with_suffix(".json")
    return json.loads(card.read_text())


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

    Notes
    -----
    Introduced in Chapter 3; :func:`model_card` says how it was made.
    """
    path = _pretrained_path(name)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; retrain it with the command in its card")
    return keras.saving.load_model(str(path))


def predict_structures(
    atoms_list, model: keras.Model | None = None, n_atoms: int = 250, symprec: float = 1e-3
):
    """Classify arbitrary crystal structures with the full pipeline.

    Each structure goes through spglib's standard conventional cell (its
    canonical orientation), is repeated to about ``n_atoms`` unless it is
    already that large, and becomes a fingerprint; the model does the rest.

    Parameters
    ----------
    atoms_list : sequence of ase.Atoms
        Periodic structures (any orientation).
    model : keras.Model, optional
        Default: :func:`load_pretrained`.
    n_atoms : int, default 250
        Cluster size of the fingerprints.
    symprec : float, default 1e-3
        spglib tolerance (Å) used to standardise the cell.

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
    from crystal_course.diffraction import fingerprints
    from crystal_course.structures import CLASSES, standard_conventional_cell, supercell

    model = model or load_pretrained()
    if model.output_shape[-1] != len(CLASSES):
        raise ValueError(f"model has {model.output_shape[-1]} outputs, expected {len(CLASSES)}")
    clusters = []
    for atoms in atoms_list:
        cell = standard_conventional_cell(atoms, symprec=symprec)
        clusters.append(cell if len(cell) >= n_atoms // 2 else supercell(cell, n_atoms))
    images = fingerprints(clusters, progress=False, n_jobs=1)
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
