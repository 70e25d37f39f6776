"""Checkers for the exercises: each solution in the book ends by calling one.

A checker recomputes the expected answer with the package, compares, and either
prints a short confirmation or raises ``AssertionError`` with a hint. CI runs
every solution, so a checker that stops agreeing with its solution fails the
build. Students call them on their own answers.

Introduced in Chapter 1; every chapter adds its own.
"""

from __future__ import annotations

import functools
import math
from numbers import Integral, Real

import numpy as np

from crystal_course.diffraction import ANGSTROM, Detector, bragg_pixel_radius


def _scalar(answer: object) -> object:
    """A 0-d NumPy array as its scalar (``np.float64(x)``, ``array(x)`` and ``x`` alike)."""
    if isinstance(answer, np.ndarray) and answer.ndim == 0:
        return answer[()]
    return answer


def _as_number(answer: object, name: str) -> float:
    if answer is Ellipsis:
        raise TypeError(f"{name}: replace the `...` placeholder with your answer (a number)")
    answer = _scalar(answer)
    if isinstance(answer, (bool, np.bool_)) or not isinstance(answer, Real):
        raise TypeError(f"{name}: expected a real number, got {type(answer).__name__}")
    value = float(answer)
    if not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value}")
    return value


def _check_close(answer: object, expected: float, name: str, rtol: float, hint: str) -> float:
    value = _as_number(answer, name)
    if not math.isclose(value, expected, rel_tol=rtol):
        raise AssertionError(f"{name}: {value:.6g} is not right. Hint: {hint}")
    print(f"Correct: {name} = {value:.6g}")
    return value


def check_ewald_ratio(answer: float, detector: Detector = Detector()) -> float:
    """Exercise 1.1: Ewald radius over the shortest reciprocal-lattice vector.

    For simple cubic with nearest-neighbour distance 1 Å (lattice constant
    ``a = 1`` Å) the shortest reciprocal-lattice vector has length ``2 pi / a``;
    the Ewald sphere has radius ``2 pi / lambda``. Their ratio is ``a / lambda``.

    Parameters
    ----------
    answer : float
        The student's ratio (dimensionless).
    detector : Detector
        Geometry whose wavelength is used (default: the course's 5 pm).

    Returns
    -------
    float
        The accepted answer.

    Raises
    ------
    AssertionError
        If the answer is off by more than 0.1 %.
    """
    expected = 1.0 / (detector.wavelength / ANGSTROM)
    return _check_close(
        answer,
        expected,
        "Ewald radius / |b|",
        rtol=1e-3,
        hint="both lengths carry the same factor 2*pi; convert the wavelength to Å.",
    )


def check_spot_radius(answer: float, d_spacing: float, detector: Detector = Detector()) -> float:
    """Exercise 1.2: pixel distance of a Bragg spot from the beam centre.

    Parameters
    ----------
    answer : float
        The student's radius, in pixels.
    d_spacing : float
        Interplanar spacing in Å (nearest-neighbour units).
    detector : Detector
        The detector geometry.

    Returns
    -------
    float
        The accepted answer (within 0.5 %).
    """
    expected = bragg_pixel_radius(d_spacing, detector)
    return _check_close(
        answer,
        expected,
        f"spot radius for d = {d_spacing:g} Å",
        rtol=5e-3,
        hint="sin(theta) = lambda / (2 d); the spot is at distance * tan(2 theta) "
        "on the detector; divide by the pixel size.",
    )


REFLECTIONS: tuple[tuple[int, int, int], ...] = (
    (1, 0, 0),
    (1, 1, 0),
    (1, 1, 1),
    (2, 0, 0),
    (2, 1, 0),
    (2, 1, 1),
    (2, 2, 0),
    (2, 2, 2),
)
"""The reflections Exercise 1.3 asks about."""

_CUBIC_EXAMPLES = {"sc": "Po", "bcc": "Fe", "fcc": "Al", "diamond": "Si"}


def absent_reflections(lattice: str) -> set[tuple[int, int, int]]:
    """Reflections of :data:`REFLECTIONS` whose structure factor vanishes.

    ``F(hkl) = sum_b exp(2 pi i (h x_b + k y_b + l z_b))`` over the basis of
    the standard conventional cubic cell (spglib), absent when ``|F| < 1e-6``.

    Parameters
    ----------
    lattice : {"sc", "bcc", "fcc", "diamond"}
        The cubic lattice.

    Notes
    -----
    Introduced in Chapter 1.
    """
    from ase.build import bulk

    from crystal_course.structures import standard_conventional_cell

    if lattice not in _CUBIC_EXAMPLES:
        raise ValueError(f"lattice must be one of {sorted(_CUBIC_EXAMPLES)}, got {lattice!r}")
    basis = standard_conventional_cell(bulk(_CUBIC_EXAMPLES[lattice])).get_scaled_positions()
    hkl = np.array(REFLECTIONS)
    factor = np.exp(2j * np.pi * hkl @ basis.T).sum(axis=1)
    return {tuple(int(i) for i in h) for h, f in zip(hkl, factor, strict=True) if abs(f) < 1e-6}


def check_absent_reflections(answer, lattice: str) -> set[tuple[int, int, int]]:
    """Exercise 1.3: which of :data:`REFLECTIONS` are systematically absent?

    Parameters
    ----------
    answer : iterable of (h, k, l)
        The reflections the student predicts to be absent.
    lattice : {"sc", "bcc", "fcc", "diamond"}
        The cubic lattice.

    Returns
    -------
    set of tuple
        The accepted answer.
    """
    if answer is Ellipsis:
        raise TypeError("absent reflections: replace the `...` placeholder with a set of (h, k, l)")
    if lattice not in _CUBIC_EXAMPLES:
        raise ValueError(f"lattice must be one of {sorted(_CUBIC_EXAMPLES)}, got {lattice!r}")
    if isinstance(answer, (str, bytes)) or not hasattr(answer, "__iter__"):
        raise TypeError("absent reflections: expected a set of (h, k, l) triples of integers")
    given = set()
    for h in answer:
        h = np.asarray(h)
        if h.shape != (3,) or h.dtype.kind not in "iuf" or not np.all(np.isfinite(h)):
            raise TypeError(
                f"absent reflections: {h.tolist()!r} is not one of the (h, k, l) triples"
            )
        if not np.all(h == np.round(h)):
            raise ValueError(f"absent reflections: Miller indices are integers, got {h.tolist()}")
        given.add(tuple(int(i) for i in h))
    expected = absent_reflections(lattice)
    if given != expected:
        missing, extra = sorted(expected - given), sorted(given - expected)
        raise AssertionError(
            f"absent reflections of {lattice}: not right (missing {len(missing)}, "
            f"{len(extra)} wrongly listed). Hint: write F(hkl) as a sum over the basis of "
            "the conventional cubic cell and find when the phases cancel."
        )
    print(f"Correct: {lattice} absent reflections = {sorted(expected)}")
    return expected


def check_ring_fraction(answer: float, n_pixels: int = 64) -> float:
    """Exercise 1.4: fraction of the detector's pixels the ring mask keeps."""
    from crystal_course.diffraction import ring_mask

    return _check_close(
        answer,
        float(ring_mask(n_pixels).mean()),
        "kept fraction",
        rtol=2e-3,
        hint="count the pixels with 5n/32 < r < n/2 - n/32, r measured from (n-1)/2.",
    )


@functools.cache
def loose_bcc_threshold(step: float = 0.005) -> float:
    """Smallest c/a (on a grid from 1 + step) at which spglib, symprec 0.1 Å, sees bct 139.

    For a bct iron-sized cell (nearest-neighbour distance 2.64 Å); below it the
    loose tolerance reports bcc (229). Introduced in Chapter 2.
    """
    from crystal_course.structures import build_prototype, space_group

    ratio = 1.0
    while ratio < 1.3:
        ratio = round(ratio + step, 10)
        if space_group(build_prototype(139, "Fe", c_over_a=ratio), symprec=0.1) == 139:
            return ratio
    raise RuntimeError("no threshold below c/a = 1.3")


def check_loose_threshold(answer: float) -> float:
    """Exercise 2.1: the c/a where a loose spglib tolerance stops calling bct 'bcc'."""
    return _check_close(
        answer,
        loose_bcc_threshold(),
        "threshold c/a",
        rtol=0.006,
        hint="scan c/a upwards from 1.005 in steps of 0.005 with build_prototype(139, 'Fe', "
        "c_over_a=...) and space_group(..., symprec=0.1).",
    )


@functools.cache
def _single_vacancy_group() -> int:
    from crystal_course.structures import build_prototype, space_group, supercell

    return space_group(supercell(build_prototype(225, "Al"), 256)[1:], symprec=1e-3)


def check_single_vacancy_group(answer: int) -> int:
    """Exercise 2.2: space group of the 256-atom fcc cluster after removing one atom."""
    if answer is Ellipsis:
        raise TypeError("space group: replace the `...` placeholder with your answer (an int)")
    answer = _scalar(answer)
    if isinstance(answer, (bool, np.bool_)) or not isinstance(answer, Real):
        raise TypeError(
            f"space group: expected an int from 1 to 230, got {type(answer).__name__} {answer!r}"
        )
    if not (isinstance(answer, Integral) or float(answer).is_integer()):
        raise ValueError(f"space group: expected a whole number from 1 to 230, got {answer!r}")
    answer = int(answer)
    if not 1 <= answer <= 230:
        raise ValueError(f"space group: expected an int from 1 to 230, got {answer}")
    expected = _single_vacancy_group()
    if answer != expected:
        raise AssertionError(
            f"space group {answer} is not right. Hint: which translations survive when one "
            "atom of the cluster is missing? Ask spglib (symprec=1e-3)."
        )
    print(f"Correct: one vacancy leaves space group {expected}")
    return expected


def check_chunk_sha256(answer: str, path, chunk: str) -> str:
    """Exercise 2.3: the SHA-256 of a dataset chunk, computed by hand, against the manifest."""
    from pathlib import Path

    if answer is Ellipsis:
        raise TypeError("sha256: replace the `...` placeholder with your answer (a string)")
    if not isinstance(answer, str):
        raise TypeError(
            f"sha256: expected a hexadecimal string (hashlib's hexdigest()), got "
            f"{type(answer).__name__}"
        )
    from crystal_course.dataset import read_manifest

    chunks = read_manifest(Path(path))["chunks"]
    if chunk not in chunks:
        raise ValueError(
            f"chunk must be one of the dataset's chunks {sorted(chunks)}, got {chunk!r}"
        )
    expected = chunks[chunk]["sha256"]
    if answer.lower() != expected:
        raise AssertionError(
            "sha256 differs from the manifest. Hint: hash the file's bytes "
            "(open(..., 'rb')), not the loaded arrays."
        )
    print(f"Correct: {chunk} matches the manifest ({expected[:12]}...)")
    return expected


def check_conv_parameters(answer: int, layer: str = "conv3") -> int:
    """Exercise 3.1: trainable parameters of one convolution of the 2018 CNN, by hand.

    A ``k x k`` convolution from ``c_in`` to ``c_out`` channels has
    ``k * k * c_in * c_out`` weights and ``c_out`` biases.
    """
    from crystal_course.models import ziletti_cnn

    value = _as_number(answer, f"parameters of {layer}")
    expected = ziletti_cnn().get_layer(layer).count_params()
    if value != expected:
        raise AssertionError(
            f"parameters of {layer}: {value:g} is not right. Hint: kernel height x width x "
            "input channels x filters, plus one bias per filter."
        )
    print(f"Correct: {layer} has {expected:,} parameters")
    return expected


def receptive_field(model, layer: str) -> int:
    """Side (pixels of the input) of the region one unit of ``layer`` depends on.

    Walks the layers up to ``layer``: a convolution of kernel ``k`` adds
    ``(k - 1) x jump`` pixels, a pooling of size ``p`` adds ``(p - 1) x jump``
    and multiplies the jump (the input-pixel stride between neighbouring units)
    by its stride. Introduced in Chapter 3.
    """
    import keras

    names = [item.name for item in model.layers]
    if layer not in names:
        raise ValueError(f"unknown layer {layer!r}; the model has {', '.join(names)}")
    field, jump = 1, 1
    for item in model.layers[: names.index(layer) + 1]:
        if isinstance(item, keras.layers.Conv2D):
            field += (item.kernel_size[0] - 1) * item.dilation_rate[0] * jump
            jump *= item.strides[0]
        elif isinstance(item, keras.layers.MaxPooling2D | keras.layers.AveragePooling2D):
            field += (item.pool_size[0] - 1) * jump
            jump *= item.strides[0]
    return field


def check_receptive_field(answer: int, layer: str = "conv6") -> int:
    """Exercise 3.2: receptive field of one unit of a conv layer of the 2018 CNN (pixels)."""
    from crystal_course.models import ziletti_cnn

    expected = receptive_field(ziletti_cnn(), layer)
    return _check_close(
        answer,
        expected,
        f"receptive field of {layer} (pixels)",
        rtol=0,
        hint="each 7x7 convolution adds 6 x (current jump) pixels; each 2x2 pooling adds "
        "1 x (current jump) and doubles the jump.",
    )


def check_kernel_parameters(answer: int, kernel_size: int = 3) -> int:
    """Exercise 3.3: total parameters of the 2018 CNN with ``kernel_size`` convolutions."""
    from crystal_course.models import ziletti_cnn

    expected = ziletti_cnn(kernel_size=kernel_size).count_params()
    return _check_close(
        answer,
        expected,
        f"parameters with {kernel_size}x{kernel_size} kernels",
        rtol=0,
        hint="build ziletti_cnn(kernel_size=...) and call count_params(); the dense layers "
        "do not change.",
    )


def breaking_level(levels, rates, below: float = 0.5) -> float:
    """First defect level at which a success rate falls below ``below``.

    Returns ``inf`` if it never does. Introduced in Chapter 3.
    """
    levels = np.asarray(levels, dtype=float)
    rates = np.asarray(rates, dtype=float)
    if levels.shape != rates.shape or levels.ndim != 1:
        raise ValueError(
            f"levels and rates must be 1-D and alike, got {levels.shape}, {rates.shape}"
        )
    broken = np.flatnonzero(rates < below)
    return float(levels[broken[0]]) if broken.size else math.inf


def check_breaking_level(answer: float, sweep, symprec: float = 0.1) -> float:
    """Exercise 3.4: smallest swept level at which spglib (``symprec``) fails on most structures.

    Parameters
    ----------
    answer : float
        The student's level (fraction, as in ``sweep.levels``).
    sweep : crystal_course.evaluation.SweepResult
        The chapter's sweep.
    symprec : float
        Which spglib tolerance of the sweep.
    """
    from crystal_course.evaluation import SweepResult

    if not isinstance(sweep, SweepResult):
        raise TypeError(
            f"sweep: expected the chapter's sweep result (e.g. sweeps['vacancies']), got "
            f"{type(sweep).__name__}"
        )
    if symprec not in sweep.symprecs:
        raise ValueError(f"symprec must be one of {sweep.symprecs}, got {symprec!r}")
    expected = breaking_level(sweep.levels, sweep.spglib[sweep.symprecs.index(symprec)])
    return _check_close(
        answer,
        expected,
        f"level where spglib (symprec {symprec:g} Å) breaks",
        rtol=1e-9,
        hint="take the first entry of sweep.levels whose spglib rate is below 0.5.",
    )


@functools.cache
def _fcc_fingerprint() -> np.ndarray:
    """The fcc reference fingerprint, computed once and read-only (the checkers share it)."""
    from crystal_course.diffraction import fingerprint
    from crystal_course.structures import reference_structure

    image = fingerprint(reference_structure(225))
    image.setflags(write=False)
    return image


def check_peak_share(answer: float) -> float:
    """Exercise 4.1: share of the fcc reference fingerprint's ring pixels that are peaks."""
    from crystal_course.diffraction import ring_mask
    from crystal_course.explain import peak_mask

    image = _fcc_fingerprint()
    return _check_close(
        answer,
        float(peak_mask(image)[ring_mask(image.shape[0])].mean()),
        "peak share",
        rtol=1e-6,
        hint="max over the colour channels, compare with 0.1 x the brightest pixel, keep the "
        "ring's pixels (diffraction.ring_mask) and take the mean (a fraction, not a count).",
    )


@functools.cache
def erased_peak_probability() -> float:
    """Shipped model's fcc probability for the fcc reference fingerprint with its peaks set to 0.

    Introduced in Chapter 4.
    """
    from crystal_course.explain import peak_mask
    from crystal_course.models import load_pretrained
    from crystal_course.structures import class_index

    image = _fcc_fingerprint().copy()
    image[peak_mask(image)] = 0.0
    return float(load_pretrained().predict(image[None], verbose=0)[0, class_index(225)])


def check_erased_probability(answer: float) -> float:
    """Exercise 4.2: fcc probability after erasing the fingerprint's peak pixels."""
    return _check_close(
        answer,
        erased_peak_probability(),
        "fcc probability without the peaks",
        rtol=1e-3,
        hint="set image[explain.peak_mask(image)] = 0 (all three channels) and read column "
        "structures.class_index(225) of model.predict(image[None]).",
    )


@functools.cache
def _dominant_filter(layer: str) -> int:
    from crystal_course.explain import activations
    from crystal_course.models import load_pretrained

    acts = activations(load_pretrained(), _fcc_fingerprint(), [layer])[layer][0]
    return int(acts.mean(axis=(0, 1)).argmax())


def check_dominant_filter(answer: int, layer: str = "conv1") -> int:
    """Exercise 4.3: index of the filter of ``layer`` with the largest mean activation (fcc)."""

    expected = _dominant_filter(layer)
    return int(
        _check_close(
            answer,
            expected,
            f"dominant filter of {layer}",
            rtol=0,
            hint="average the activations over the two pixel axes, then take argmax over filters.",
        )
    )


def check_matching(answer: float, y_true, y_pred) -> float:
    """Exercise 5.1: best one-to-one matching accuracy, found by trying every permutation."""
    from crystal_course.clustering import cluster_accuracy

    expected, _ = cluster_accuracy(y_true, y_pred)
    return _check_close(
        answer,
        expected,
        "matched accuracy",
        rtol=1e-9,
        hint="for each permutation p of the cluster labels, count samples with "
        "p[cluster] == class; keep the best count and divide by the number of samples.",
    )


def check_components(answer: int, explained_variance_ratio, fraction: float = 0.9) -> int:
    """Exercise 5.2: principal components needed for ``fraction`` of the variance."""
    from crystal_course.clustering import n_components_for

    expected = n_components_for(explained_variance_ratio, fraction)
    return int(
        _check_close(
            answer,
            expected,
            f"components for {100 * fraction:.0f} % of the variance",
            rtol=0,
            hint="the first index where np.cumsum(ratio) reaches the fraction, plus one.",
        )
    )


def check_k_accuracy(answer: float, embedding, y, k: int, seed: int = 0) -> float:
    """Exercise 5.3: one-to-one accuracy of K-Means with ``k`` clusters on an embedding."""
    from crystal_course.clustering import evaluate_clustering

    expected = evaluate_clustering(embedding, y, k=k, seed=seed).accuracy
    return _check_close(
        answer,
        expected,
        f"accuracy with k = {k}",
        rtol=1e-9,
        hint="clustering.evaluate_clustering(embedding, y, k=...) with the chapter's seed; "
        "unmatched clusters count as wrong.",
    )


def check_line_count(answer: int, centres, factor: float = 1.7, min_separation: float = 2.0) -> int:
    """Exercise 6.1: lines the shaping rule draws between the given node centres (pixels)."""
    from crystal_course.shaping import node_pairs

    expected = len(node_pairs(np.asarray(centres, dtype=float), factor, min_separation))
    return int(
        _check_close(
            answer,
            expected,
            f"lines with factor {factor:g}",
            rtol=0,
            hint="compute every pair distance, drop pairs closer than min_separation, then "
            "count the pairs no longer than factor x the shortest remaining distance.",
        )
    )


def check_top_k(answer: float, probabilities, y, k: int) -> float:
    """Exercise 6.2: top-``k`` accuracy of predicted probabilities."""
    from crystal_course.training import top_k_accuracy

    expected = top_k_accuracy(np.asarray(probabilities), np.asarray(y), k)
    return _check_close(
        answer,
        expected,
        f"top-{k} accuracy",
        rtol=1e-9,
        hint=f"a sample counts if its true class is among the {k} largest probabilities "
        "(np.argsort(-p, axis=1)[:, :k]); divide the count by the number of samples.",
    )


@functools.cache
def dense_block_channels(stem_filters: int, growth: int, n_layers: int) -> int:
    """Channels leaving the first dense block of a built :func:`~crystal_course.models.msdn`."""
    from crystal_course.models import msdn

    model = msdn((32, 32, 1), 2, blocks=(n_layers,), growth=growth, stem_filters=stem_filters)
    trunk = model.get_layer("densenet_trunk")
    return int(trunk.get_layer(f"block1_layer{n_layers}_concat").output.shape[-1])


def check_block_channels(answer: int, stem_filters: int, growth: int, n_layers: int) -> int:
    """Exercise 6.3: channels after a dense block, read off a real model."""
    expected = dense_block_channels(stem_filters, growth, n_layers)
    return int(
        _check_close(
            answer,
            expected,
            f"channels after {n_layers} dense layers",
            rtol=0,
            hint="every dense layer concatenates `growth` new channels to everything before it.",
        )
    )


@functools.cache
def a7_a10_correlation(detector: Detector = Detector()) -> float:
    """Pixel correlation of the A10 (alpha-Hg) and A7 (bismuth) fingerprints, both R-3m.

    Mercury is built as the chapter builds every example: ``ase.build.bulk("Hg")``,
    spglib's standard conventional cell, about 250 atoms. Introduced in Chapter 1.
    """
    from ase.build import bulk

    from crystal_course.diffraction import fingerprint
    from crystal_course.structures import reference_structure, standard_conventional_cell, supercell

    mercury = fingerprint(supercell(standard_conventional_cell(bulk("Hg")), 250), detector)
    bismuth = fingerprint(reference_structure(166), detector)
    return float(np.corrcoef(mercury.ravel(), bismuth.ravel())[0, 1])


def check_a7_a10(answer: float, detector: Detector = Detector()) -> float:
    """Exercise 1.5: correlation of the two structure types of space group 166."""
    value = _as_number(answer, "A7-A10 correlation")
    expected = a7_a10_correlation(detector)
    if abs(value - expected) > 1e-3:  # a correlation near 0: an absolute tolerance
        raise AssertionError(
            f"A7-A10 correlation: {value:.4g} is not right. Hint: build mercury as Section 1.8 "
            "built the examples (bulk, standard_conventional_cell, supercell to 250 atoms), "
            "then np.corrcoef of the two flattened fingerprints."
        )
    print(f"Correct: A7-A10 correlation = {value:.3f}")
    return value


def check_model_accuracy(answer: float, model, x, y) -> float:
    """Exercise 3.5: a reported accuracy is the given model's, on the given test set."""
    from crystal_course.training import evaluate

    _as_number(answer, "accuracy of your model")
    if model is Ellipsis or not hasattr(model, "predict"):
        raise TypeError("your model: replace the `...` placeholder with the trained keras model")
    return _check_close(
        answer,
        evaluate(model, x, y)[0],
        "accuracy of your model",
        rtol=1e-6,
        hint="training.evaluate(model, x, y)[0] on the randomly oriented test crystals, as a "
        "fraction between 0 and 1.",
    )


def shaping_sweep(spots, labels, thresholds, factors) -> dict:
    """Nearest-neighbour same-label rate of shaped patterns for every (threshold, factor).

    For each setting the patterns are shaped (:func:`crystal_course.shaping.shape_patterns`)
    and each crystal's most similar other crystal (cosine similarity,
    :func:`crystal_course.zone_axis.nearest_other`) is compared with it. Introduced in
    Chapter 6.

    Returns
    -------
    dict
        ``{(threshold, factor): rate}``, rates as fractions.
    """
    from crystal_course.shaping import shape_patterns
    from crystal_course.zone_axis import nearest_other

    labels = np.asarray(labels)
    rates = {}
    for threshold in thresholds:
        for factor in factors:
            shaped = shape_patterns(np.asarray(spots), threshold=threshold, factor=factor)
            rates[threshold, factor] = float(np.mean(labels[nearest_other(shaped)] == labels))
    return rates


def check_shaping_sweep(answer, spots, labels, thresholds=(30, 50, 100),
                        factors=(1.3, 1.7, 1.9)) -> tuple[float, float]:  # fmt: skip
    """Exercise 6.4: the shaping setting whose nearest neighbours share the space group most."""
    if answer is Ellipsis:
        raise TypeError("best setting: replace the `...` placeholder with (threshold, factor)")
    if not (isinstance(answer, tuple) and len(answer) == 2):
        raise TypeError(f"best setting: expected a tuple (threshold, factor), got {answer!r}")
    answer = tuple(_as_number(a, "best setting") for a in answer)
    rates = shaping_sweep(spots, labels, thresholds, factors)
    best = max(rates.values())
    chosen = next((key for key in rates if np.allclose(key, answer)), None)
    if chosen is None:
        raise AssertionError(
            f"best setting: {answer} is not on the grid thresholds {tuple(thresholds)} x "
            f"factors {tuple(factors)}"
        )
    if rates[chosen] < best - 1e-12:
        raise AssertionError(
            f"best setting: {answer} is not the best. Hint: shape with every pair, then count "
            "how often zone_axis.nearest_other(shaped) has the same space group."
        )
    print(f"Correct: {chosen} gives the highest same-group rate, {100 * best:.1f} %")
    return chosen


# ---------------------------------------------------------------------------
# Mini-projects: open questions with a checkable outcome. The checkers verify that an
# answer has the property asked for; many answers can pass.
# ---------------------------------------------------------------------------


def _placeholder(answer: object, name: str, what: str) -> None:
    if answer is Ellipsis:
        raise TypeError(f"{name}: replace the `...` placeholder with your answer ({what})")


def _indices(answer: object, name: str, largest: int) -> tuple[int, int, int]:
    _placeholder(answer, name, "three integers [u, v, w]")
    values = np.asarray(answer)
    if values.shape != (3,) or not np.all(np.isfinite(values.astype(float))):
        raise TypeError(f"{name}: expected three integers [u, v, w], got {answer!r}")
    if not np.all(values.astype(float) == np.round(values.astype(float))):
        raise ValueError(f"{name}: lattice indices are integers, got {answer!r}")
    indices = tuple(int(v) for v in values)
    if not any(indices) or max(abs(v) for v in indices) > largest:
        raise ValueError(f"{name}: expected a direction with indices from -{largest} to "
                         f"{largest}, not all zero, got {indices}")  # fmt: skip
    return indices


@functools.cache
def _bct_indium_cell() -> np.ndarray:
    from crystal_course.structures import reference_structure, standard_conventional_cell

    return np.array(standard_conventional_cell(reference_structure(139)).cell)


def check_zone_axis_view(view_rotation, view_uvw, tolerance: float = 0.5) -> tuple[int, int, int]:
    """Mini-project 1: a rotation that puts a new zone axis of bct indium on the beam.

    Passes when the beam, after the rotation ``view_rotation`` (as for
    :func:`crystal_course.diffraction.diffraction_pattern`), runs within ``tolerance``
    degrees of ``view_uvw`` = ``[uvw]`` of the indium cell, and ``view_uvw`` is neither
    [001] nor one of the <011> directions the chapter already showed.

    Parameters
    ----------
    view_rotation : (axis, degrees) or (3, 3) array_like
        The rotation.
    view_uvw : sequence of 3 int
        The zone axis, indices from -3 to 3.
    tolerance : float, default 0.5
        Largest angle between the beam and ``view_uvw``, degrees.

    Notes
    -----
    Introduced in Chapter 1.
    """
    from crystal_course.diffraction import beam_direction

    _placeholder(view_rotation, "view_rotation", "an (axis, degrees) pair or a rotation matrix")
    indices = _indices(view_uvw, "view_uvw", 3)
    u, v, w = (abs(i) for i in indices)
    if (u, v) == (0, 0) or (w == 1 and sorted((u, v)) == [0, 1]):
        raise AssertionError(f"view_uvw: {list(indices)} is a zone axis the chapter showed already "
                             "([001] or <011>); find another one")  # fmt: skip
    cell = _bct_indium_cell()
    try:
        beam = beam_direction(cell, view_rotation)
    except (TypeError, ValueError) as error:
        raise TypeError(f"view_rotation: {error}") from None
    beam_cartesian, axis = beam @ cell, np.array(indices) @ cell
    cosine = abs(beam_cartesian @ axis) / np.linalg.norm(beam_cartesian) / np.linalg.norm(axis)
    angle = math.degrees(math.acos(min(1.0, cosine)))
    if angle > tolerance:
        raise AssertionError(f"the beam runs {angle:.2f} degrees from {list(indices)}, not within "
                             f"{tolerance}. Hint: diffraction.beam_direction(cell, view_rotation) "
                             "gives the beam's indices; tilt until they are proportional to "
                             "[uvw].")  # fmt: skip
    print(f"Correct: the beam runs along [{' '.join(map(str, indices))}] "
          f"(within {angle:.2f} degrees)")  # fmt: skip
    return indices


def tolerance_window_rates(level: float, n_crystals: int = 8) -> tuple[float, float]:
    """spglib's identification rate of bcc at 10⁻³ and 0.1 Å under displacements.

    ``n_crystals`` bcc crystals of :func:`crystal_course.structures.sample_structure`
    (seeds 0, 1, ...; 128 atoms), displaced by ``level`` x NN with the streams of
    :func:`crystal_course.structures.identification_rates` (seed 0).

    Notes
    -----
    Introduced in Chapter 2.
    """
    from crystal_course.structures import identification_rates, sample_structure

    crystals = [sample_structure(229, seed, n_atoms=128) for seed in range(n_crystals)]
    rates = identification_rates(crystals, "displacements", [level], symprecs=(1e-3, 0.1),
                                 seed=0, n_jobs=1, progress=False)  # fmt: skip
    return float(rates[0, 0]), float(rates[1, 0])


def check_tolerance_window(answer: float) -> float:
    """Mini-project 2: a displacement level where only the loose tolerance sees bcc.

    Passes when, at ``answer`` (sigma as a fraction of NN), spglib at 10⁻³ Å identifies
    none of the crystals of :func:`tolerance_window_rates` and spglib at 0.1 Å at least
    half of them.

    Notes
    -----
    Introduced in Chapter 2.
    """
    level = _as_number(answer, "level")
    if not 0 < level <= 0.2:
        raise ValueError(f"level: expected a displacement sigma as a fraction of NN in (0, 0.2], "
                         f"got {level}")  # fmt: skip
    tight, loose = tolerance_window_rates(level)
    if tight > 0 or loose < 0.5:
        raise AssertionError(f"level: at {level:g} x NN the tight tolerance finds bcc in "
                             f"{100 * tight:.0f} % of the crystals and the loose one in "
                             f"{100 * loose:.0f} %; the window needs 0 % and at least 50 %. "
                             "Hint: scan levels between 0.1 % and 5 % of NN.")  # fmt: skip
    print(f"Correct: at {level:g} x NN, 10^-3 A finds bcc in 0 % and 0.1 A in "
          f"{100 * loose:.0f} % of the crystals")  # fmt: skip
    return level


def check_spglib_ahead(ahead_level, ahead_tests: dict) -> float | None:
    """Mini-project 3: a displacement level where spglib at 0.1 Å beats the CNN, or none.

    ``ahead_tests`` maps each displacement level searched (at least five, from at most 0.5 %
    to at least 5 % of NN) to the :class:`crystal_course.uncertainty.PairedTest` of
    spglib (0.1 Å, exact group found) minus the CNN, on the same crystals. ``ahead_level`` is
    a level where that test separates them in spglib's favour, or ``None`` if no
    searched level does. The checker verifies ``ahead_level`` against ``ahead_tests``.

    Notes
    -----
    Introduced in Chapter 3.
    """
    from crystal_course.uncertainty import PairedTest

    _placeholder(ahead_tests, "ahead_tests", "a dict of level -> PairedTest")
    _placeholder(ahead_level, "ahead_level", "a level, or None")
    tests, level = ahead_tests, ahead_level
    if not isinstance(tests, dict) or not tests:
        raise TypeError(
            f"ahead_tests: expected a dict of level -> PairedTest, got {type(tests).__name__}"
        )
    for key, test in tests.items():
        _as_number(key, "a level of ahead_tests")
        if not isinstance(test, PairedTest):
            raise TypeError(f"ahead_tests[{key!r}]: expected uncertainty.paired_test(...)'s "
                            f"result, got {type(test).__name__}")  # fmt: skip
    levels = sorted(float(k) for k in tests)
    if len(levels) < 5 or levels[0] > 0.005 or levels[-1] < 0.05:
        raise AssertionError(f"ahead_tests: search at least five levels from 0.5 % of NN or less "
                             f"to 5 % or more; got {levels}")  # fmt: skip
    ahead = sorted(float(k) for k, t in tests.items() if t.apart() and t.difference > 0)
    if level is None:
        if ahead:
            raise AssertionError(f"ahead_level: the paired test puts spglib ahead at {ahead}; "
                                 "answer one of those levels")  # fmt: skip
        print(f"Correct: at none of the {len(levels)} levels does spglib beat the CNN")
        return None
    value = _as_number(level, "ahead_level")
    if value not in ahead:
        raise AssertionError(f"ahead_level: at {value:g} the paired test does not put spglib ahead "
                             f"(levels where it does: {ahead or 'none'}); answer None if there "
                             "is no such level")  # fmt: skip
    print(f"Correct: at {value:g} x NN spglib at 0.1 A is ahead of the CNN")
    return value


def check_blind_map(response) -> float:
    """Mini-project 4: a map blind to the peaks that still scores above 1.5 over the image.

    Passes when ``response`` (64 x 64, non-negative) scores between 0.8 and 1.2 against
    the peaks of the fcc reference fingerprint inside the ring (blind to where the
    peaks are), but at least 1.5 when every pixel of the image counts
    (``region`` = the whole image): why :func:`crystal_course.explain.peak_overlap`
    counts inside the ring.

    Notes
    -----
    Introduced in Chapter 4.
    """
    from crystal_course.explain import peak_overlap

    _placeholder(response, "response", "a 64 x 64 map")
    values = np.asarray(response, dtype=float)
    if values.shape != (64, 64) or not np.isfinite(values).all() or (values < 0).any():
        raise TypeError(f"response: expected a (64, 64) map of finite values >= 0, got shape "
                        f"{values.shape}")  # fmt: skip
    if not values.any():
        raise ValueError("response: the map is zero everywhere")
    fcc = _fcc_fingerprint()
    ring_score = peak_overlap(values, fcc)
    image_score = peak_overlap(values, fcc, region=np.ones((64, 64), dtype=bool))
    if not 0.8 <= ring_score <= 1.2:
        raise AssertionError(f"response: inside the ring it scores {ring_score:.2f}, so it is not "
                             "blind to the peaks (a blind map scores about 1 there)")  # fmt: skip
    if image_score < 1.5:
        raise AssertionError(f"response: over the whole image it scores {image_score:.2f}, not "
                             "at least 1.5. Hint: where are the peaks never found?")  # fmt: skip
    print(f"Correct: {ring_score:.2f} inside the ring, {image_score:.2f} over the whole image")
    return image_score


def check_embedding_clusters(embedding, y, minimum: float = 0.85, seed: int = 0) -> float:
    """Mini-project 5: a 2-D embedding on which K-Means finds the classes.

    Passes when K-Means on ``embedding`` (``(N, 2)``, one row per fingerprint of ``y``)
    reaches a matched accuracy of at least ``minimum``
    (:func:`crystal_course.clustering.evaluate_clustering`).

    Notes
    -----
    Introduced in Chapter 5.
    """
    from crystal_course.clustering import evaluate_clustering

    _placeholder(embedding, "embedding", "an (N, 2) array")
    points = np.asarray(embedding, dtype=float)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) != len(np.asarray(y)):
        raise TypeError(f"embedding: expected ({len(np.asarray(y))}, 2), one row per fingerprint, "
                        f"got {points.shape}")  # fmt: skip
    if not np.isfinite(points).all():
        raise ValueError("embedding: holds NaN or infinite values")
    accuracy = evaluate_clustering(points, y, seed=seed).accuracy
    if accuracy < minimum:
        raise AssertionError(f"embedding: K-Means reaches {100 * accuracy:.1f} %, below "
                             f"{100 * minimum:.0f} %. Hint: which representation of Section 5.3 "
                             "forgets what differs within a class?")  # fmt: skip
    print(f"Correct: K-Means on this 2-D embedding reaches {100 * accuracy:.1f} %")
    return accuracy


def check_tied_methods(tied_pair, tied_variant: str, tie, card=None) -> object:
    """Mini-project 6: two methods the card's data cannot rank, at one training size.

    ``tied_pair`` is two ``(inputs, model)`` methods of the Chapter 6 card, ``tied_variant`` a
    training-set variant of the card (``""`` for the main runs), and ``tie`` the
    :class:`crystal_course.uncertainty.PairedTest` of the first minus the second on
    seed 0, 20 groups. Passes when ``tie`` is that test and it does not separate them.

    Notes
    -----
    Introduced in Chapter 6.
    """
    from crystal_course import reproduction
    from crystal_course.uncertainty import PairedTest, paired_test

    _placeholder(tied_pair, "tied_pair", "two (inputs, model) methods")
    _placeholder(tied_variant, "tied_variant", "a variant of the card, '' for the main runs")
    _placeholder(tie, "tie", "uncertainty.paired_test(...)")
    pair, variant, test = tied_pair, tied_variant, tie
    card = reproduction.card() if card is None else card
    try:
        (a_inputs, a_model), (b_inputs, b_model) = pair
    except (TypeError, ValueError):
        raise TypeError(f"tied_pair: expected two (inputs, model) pairs, got {pair!r}") from None
    if not isinstance(test, PairedTest):
        raise TypeError(f"tie: expected uncertainty.paired_test(...)'s result, got "
                        f"{type(test).__name__}")  # fmt: skip
    a = reproduction.card_correct(card, a_inputs, a_model, variant=variant)
    b = reproduction.card_correct(card, b_inputs, b_model, variant=variant)
    if a.size == 0 or b.size == 0:
        raise ValueError(f"tied_pair: the card has no 20-group runs of {pair!r} with variant "
                         f"{variant!r}")  # fmt: skip
    if (a_inputs, a_model) == (b_inputs, b_model):
        raise AssertionError("tied_pair: compare two different methods")
    expected = paired_test(a[0], b[0])
    if (test.n, test.only_a, test.only_b) != (expected.n, expected.only_a, expected.only_b):
        raise AssertionError("tie: not the paired test of these two methods on seed 0 "
                             f"(expected {expected.only_a} and {expected.only_b} crystals only "
                             "one of them gets right)")  # fmt: skip
    if expected.apart():
        raise AssertionError(f"tied_pair: at this size the paired test separates them (difference "
                             f"{100 * expected.difference:+.1f} points, p = "
                             f"{expected.p_value:.2g}); find a pair it cannot rank")  # fmt: skip
    print(f"Correct: {pair[0]} and {pair[1]} cannot be told apart ({variant or 'main runs'}: "
          f"{100 * expected.difference:+.1f} points, p = {expected.p_value:.2g})")  # fmt: skip
    return expected


def check_learning_slope(slope, values) -> float:
    """Exercise 7.1: a validation curve's slope over its last half, by hand.

    ``slope`` is the least-squares slope of ``values`` (one per epoch) over the
    last half of the epochs, per epoch, in the unit of ``values``; the reference
    is :func:`crystal_course.reproduction.learning_trend`.

    Notes
    -----
    Introduced in Chapter 7.
    """
    from crystal_course.reproduction import learning_trend

    _placeholder(slope, "slope", "the fitted change per epoch, a float")
    trend = learning_trend(values)
    return _check_close(
        slope,
        trend.slope,
        "slope",
        rtol=1e-6,
        hint=f"fit a straight line (np.polyfit(epochs, values, 1)) to epochs {trend.epochs[0]}-"
        f"{trend.epochs[-1]} only, the last half, with epochs counted from 1; the slope is "
        "the first coefficient.",
    )


def check_seed_interval(seed_interval, card=None) -> tuple[float, float]:
    """Exercise 7.2: the 95 % t-interval over seeds of a difference of two methods.

    ``seed_interval`` is ``(low, high)``, in points, of grey-shaped + MSDN minus
    spots + CNN on the first card's 20-group runs, seed against seed; the reference is
    :func:`crystal_course.reproduction.compare_cells`.

    Notes
    -----
    Introduced in Chapter 7.
    """
    from crystal_course import reproduction

    _placeholder(seed_interval, "seed_interval", "(low, high) in points")
    card = reproduction.card() if card is None else card
    if isinstance(seed_interval, (str, bytes)) or np.ndim(seed_interval) != 1 or len(
            seed_interval) != 2:  # fmt: skip
        raise TypeError(f"seed_interval: expected (low, high) in points, got {seed_interval!r}")
    low, high = (_as_number(v, "seed_interval") for v in seed_interval)
    expected = reproduction.compare_cells(card, ("grey", "msdn"), ("spots", "cnn"))
    want = (100 * expected.seed_low, 100 * expected.seed_high)
    if not (math.isclose(low, want[0], rel_tol=1e-6, abs_tol=1e-9)
            and math.isclose(high, want[1], rel_tol=1e-6, abs_tol=1e-9)):  # fmt: skip
        hint = "in points (x 100)" if abs(low) < 1 and abs(want[0]) >= 1 else (
            "the mean of the per-seed differences +- t(0.975, n - 1) x their standard error "
            "(scipy.stats.sem, ddof = 1)")  # fmt: skip
        raise AssertionError(f"seed_interval: [{low:.4g}, {high:.4g}] is not right. Hint: {hint}")
    print(f"Correct: seed_interval = [{low:+.2f}, {high:+.2f}] points")
    return low, high


def check_bragg_two_theta(two_theta_200, a: float = 3.615, hkl=(2, 0, 0),
                          wavelength: float = 1.5406) -> float:  # fmt: skip
    """Exercise 8.1: the Bragg angle 2θ (degrees) of a cubic crystal's reflection.

    Bragg's law with d = a / sqrt(h² + k² + l²): fcc Cu (a = 3.615 Å) and its (200)
    reflection under Cu Kα₁ (1.5406 Å) by default.

    Notes
    -----
    Introduced in Chapter 8.
    """
    d = a / math.sqrt(sum(h * h for h in hkl))
    expected = math.degrees(2 * math.asin(wavelength / (2 * d)))
    hint = ("2θ = 2 arcsin(λ / 2d) with d = a / sqrt(h² + k² + l²), in degrees "
            "(np.degrees), not radians, and 2θ, not θ")  # fmt: skip
    return _check_close(two_theta_200, expected, "two_theta_200", 1e-3, hint)


def check_unknown_auroc(auroc_pairs, classifier: str = "soap_network",
                        case: str = "alpha-U (Cmcm)", card=None) -> float:  # fmt: skip
    """Exercise 8.2: an AUROC counted pair by pair from Chapter 8's card.

    The share of (in-class, unknown) pairs in which the unknown crystal has the
    larger predictive entropy, ties counting one half; in-class crystals those of
    :func:`crystal_course.evaluation.in_class_splits`. The reference is
    :func:`crystal_course.uncertainty.auroc`.

    Notes
    -----
    Introduced in Chapter 8.
    """
    from crystal_course import evaluation
    from crystal_course.uncertainty import auroc

    card = evaluation.read_contest_card() if card is None else card
    inside = np.concatenate([card["entropy"][classifier][s]
                             for s in evaluation.in_class_splits(card, classifier)])  # fmt: skip
    expected = auroc(inside, card["unknown_entropy"][classifier][case])[0]
    value = _as_number(auroc_pairs, "auroc_pairs")
    if not math.isclose(value, expected, rel_tol=1e-9, abs_tol=1e-12):
        hint = ("compare every unknown with every in-class crystal (broadcast one array "
                "against the other), count a tie as 1/2, divide by the number of pairs; the "
                "in-class crystals are every split of evaluation.in_class_splits")  # fmt: skip
        raise AssertionError(f"auroc_pairs: {value:.6g} is not right. Hint: {hint}")
    print(f"Correct: auroc_pairs = {value:.6g}")
    return value


def first_unknown_level(levels, classifier: str = "powder_cnn", seed: int = 0):
    """The first vacancy fraction at which a classifier calls a Cu sphere unknown.

    A 250-atom sphere of fcc Cu (:func:`crystal_course.invariant.cluster_of`) loses
    each fraction of ``levels`` (:func:`crystal_course.structures.add_vacancies`, a
    generator seeded with ``seed`` per level) and goes through
    :func:`crystal_course.classify.classify`.

    Returns
    -------
    (level, answers)
        The first level flagged unknown (``None`` if none), and every level's answer.

    Notes
    -----
    Introduced in Chapter 8.
    """
    from ase.build import bulk

    from crystal_course import classify, invariant
    from crystal_course.structures import add_vacancies

    sphere = invariant.cluster_of(bulk("Cu", "fcc", a=3.615, cubic=True), 250)
    damaged = [add_vacancies(sphere, float(level), np.random.default_rng(seed)) for level in levels]
    answers = [r[classifier] for r in classify.classify(damaged, seed=seed)]
    first = next((float(v) for v, a in zip(levels, answers, strict=True) if a.unknown), None)
    return first, answers


def check_first_unknown(first_unknown, levels=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6)):
    """Exercise 8.3: how many vacancies before the powder CNN says "unknown".

    ``first_unknown`` is the smallest fraction of ``levels`` at which the powder CNN
    flags the damaged Cu sphere of :func:`first_unknown_level` unknown, or ``None``.

    Notes
    -----
    Introduced in Chapter 8.
    """
    if first_unknown is Ellipsis:
        raise TypeError("first_unknown: replace the `...` placeholder with a level or None")
    value = None if first_unknown is None else _as_number(first_unknown, "first_unknown")
    expected, _ = first_unknown_level(levels)
    same = (
        value is None if expected is None else (value is not None and math.isclose(value, expected))
    )
    if not same:
        hint = ("damage the same sphere at each level with np.random.default_rng(0), classify "
                "all levels in one classify.classify call and read answer.unknown of "
                "'powder_cnn'; None if no level is flagged")  # fmt: skip
        raise AssertionError(f"first_unknown: {value!r} is not right. Hint: {hint}")
    print(f"Correct: first_unknown = {value!r}")
    return value
