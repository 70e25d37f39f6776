"""Evaluating the classifiers of Chapter 3: baselines, contests against spglib, and
test sets inside and outside the training distribution.

Which question each test answers:

- :func:`pixel_baselines`: are the test sets hard at all? (classifiers that know
  nothing about images, on raw pixels)
- :func:`defect_sweep`: the 2018 protocol. Can the fingerprint of a damaged crystal,
  put in the standard orientation *before* the damage, still be classified?
- :func:`practical_sweep`: the practitioner's contest. Given a damaged crystal as
  found (a box whose edges say nothing about the lattice, in an arbitrary
  orientation), which tool names its class, spglib alone or spglib then the CNN?
- :func:`real_element_test`: are the prototypes the real structures? In distribution
  by construction: after the nearest-neighbour rescaling, a cubic element *is* the
  training geometry.
- :func:`out_of_distribution_test`: what does the CNN key on? Compounds whose group
  is one of the classes, elements strained beyond the sampled c/a, and groups the
  CNN does not know.

The workers (:func:`sweep_item`, :func:`practical_item`) run in child processes;
this module does not import Keras, so they do not import TensorFlow.

Introduced in Chapter 3.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from ase import Atoms

from crystal_course.diffraction import fingerprint

if TYPE_CHECKING:  # annotations only: importing Keras here would load TensorFlow in workers
    import keras

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
    models_right : dict of str to numpy.ndarray, optional
        Classifier name -> ``(len(levels), n_structures)`` bool: structure by
        structure, whether it was classified right (for paired comparisons,
        :func:`crystal_course.uncertainty.compare_correct`).
    spglib_right : numpy.ndarray, optional
        ``(len(symprecs), len(levels), n_structures)`` bool: spglib's verdict
        structure by structure (``spglib`` is its mean over the last axis).
    edge_angles : numpy.ndarray, optional
        Practitioner's contest only (:func:`practical_sweep`): ``(len(levels),
        n_structures)`` smallest angle (degrees) from an edge of the damaged box, or
        of the cell spglib returned where it did not find the lattice, to a
        low-index lattice direction.
    lattice_found : numpy.ndarray, optional
        Practitioner's contest only: ``(len(levels), n_structures)`` bool, whether
        spglib found the lattice (translations shorter than the box) and so handed
        the CNN the lattice's orientation, even where the group it found is wrong.
    """

    defect: str
    levels: tuple[float, ...]
    symprecs: tuple[float, ...]
    spglib: np.ndarray
    models: dict
    n_structures: int
    models_right: dict | None = field(default=None, compare=False, repr=False)
    spglib_right: np.ndarray | None = field(default=None, compare=False, repr=False)
    edge_angles: np.ndarray | None = field(default=None, compare=False, repr=False)
    lattice_found: np.ndarray | None = field(default=None, compare=False, repr=False)


def _run_sweep(worker, structures, defect, levels, models, option, seed, n_jobs, progress, what):
    """Damage structure ``i`` at level ``j`` with ``worker`` (seed ``(seed, i, j)``) in
    parallel; score every model on the fingerprints. Returns the labels, the workers'
    second outputs in task order (level-major) and each model's per-structure correctness,
    ``(levels, structures)`` bool."""
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
    right = {}
    for name, model in models.items():
        predicted = model.predict(images, batch_size=256, verbose=0).argmax(axis=1)
        right[name] = predicted.reshape(shape) == labels
    return labels, [second for _, second in results], right


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
    from crystal_course.structures import check_symprecs

    symprecs = check_symprecs(symprecs)
    labels, found, right = _run_sweep(
        sweep_item, structures, defect, levels, models, symprecs, seed, n_jobs, progress, "sweep"
    )
    found = np.array(found, dtype=bool).T.reshape(len(symprecs), len(levels), len(structures))
    return SweepResult(defect, tuple(levels), tuple(symprecs), found.mean(axis=2),
                       {name: r.mean(axis=1) for name, r in right.items()}, len(structures),
                       right, found)  # fmt: skip


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

    Give it crystals whose box says nothing about the lattice
    (:func:`crystal_course.structures.sample_classes` with ``skew=True``), as a
    user's crystal: structure ``i`` at level ``j`` is damaged as in
    :func:`defect_sweep` (same seed, same damage), then turned to an arbitrary
    orientation and standardised by spglib at ``symprec``
    (:func:`crystal_course.structures.practitioner_view`) before its fingerprint goes
    to the classifiers. spglib alone classifies the same damaged crystal at the same
    tolerance, its group mapped to the seven merged classes: both answer the same
    question on the same labels.

    Returns
    -------
    SweepResult
        ``symprecs`` is ``(symprec,)``, ``spglib`` holds spglib's class accuracy
        (not "exact group found", as in :func:`defect_sweep`) and ``edge_angles``
        how far the boxes the CNN could see lie from the lattice's low-index
        directions (:func:`practical_item`).

    Notes
    -----
    Introduced in Chapter 3.
    """
    from crystal_course.structures import check_symprec

    symprec = check_symprec(symprec)
    labels, verdicts, right = _run_sweep(
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
    columns = zip(*verdicts, strict=True)
    classes, lattice_found, angles = (np.array(column).reshape(shape) for column in columns)
    spglib = (classes == labels)[None]
    return SweepResult(defect, tuple(levels), (symprec,), spglib.mean(axis=2),
                       {name: r.mean(axis=1) for name, r in right.items()}, len(structures),
                       right, spglib, angles.astype(float), lattice_found.astype(bool))  # fmt: skip


def contest_table(sweep: SweepResult, model: str, seed: int = 0):
    """Level by level, a classifier against spglib on the same damaged crystals.

    Parameters
    ----------
    sweep : SweepResult
        With per-crystal verdicts (from :func:`defect_sweep` or :func:`practical_sweep`).
    model : str
        The classifier's name in ``sweep.models``.
    seed : int, default 0
        Seed of the paired bootstrap.

    Returns
    -------
    pandas.DataFrame
        One row per level: ``level (%)``, the classifier's and spglib's accuracy
        (:class:`crystal_course.uncertainty.Accuracy`, spglib at its first tolerance),
        ``difference`` (points, classifier minus spglib), its paired bootstrap
        interval ``low``/``high`` (points), McNemar's ``p`` and ``apart``
        (:meth:`crystal_course.uncertainty.PairedTest.apart`).

    Notes
    -----
    Introduced in Chapter 3.
    """
    import pandas as pd

    from crystal_course.uncertainty import paired_test, wilson

    if not isinstance(sweep, SweepResult) or sweep.models_right is None:
        raise TypeError("sweep must be a SweepResult with per-crystal verdicts (models_right)")
    if model not in sweep.models_right:
        raise ValueError(f"model must be one of {sorted(sweep.models_right)}, got {model!r}")
    rows = []
    for j, level in enumerate(sweep.levels):
        ours, theirs = sweep.models_right[model][j], sweep.spglib_right[0, j]
        test = paired_test(ours, theirs, seed)
        rows.append({
            "level (%)": 100 * level,
            model: wilson(int(ours.sum()), len(ours)),
            f"spglib, {sweep.symprecs[0]:g} Å": wilson(int(theirs.sum()), len(theirs)),
            "difference": 100 * test.difference,
            "low": 100 * test.low,
            "high": 100 * test.high,
            "p": test.p_value,
            "apart": test.apart(),
        })  # fmt: skip
    return pd.DataFrame(rows)


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


@dataclass(frozen=True)
class Case:
    """A crystal outside the training distribution, with the label crystallography gives it.

    Attributes
    ----------
    name : str
        E.g. ``"rocksalt NaCl"``.
    family : str
        One of :data:`FAMILIES`.
    space_group : int
        Its space group (spglib checks it when the crystal is built).
    looks_like : int or None
        The space group of the lattice its atoms form with the species ignored, when
        that is one of the eight prototypes' (rocksalt: simple cubic at a/2); None if
        it is none of them.
    symbols : tuple of str
        One symbol per Wyckoff site of ``basis`` (compounds and other groups), or the
        element (strained elements).
    basis : tuple of (x, y, z)
        Wyckoff positions (fractional, conventional cell); empty for a strained
        element, built by :func:`crystal_course.structures.build_prototype`.
    cellpar : tuple of float
        ``a, b, c`` (Å) and ``alpha, beta, gamma`` (degrees); empty for a strained
        element.
    c_over_a : float or None
        A strained element's axial ratio, outside the range the training data sample.
    """

    name: str
    family: str
    space_group: int
    looks_like: int | None
    symbols: tuple[str, ...]
    basis: tuple[tuple[float, float, float], ...] = ()
    cellpar: tuple[float, ...] = ()
    c_over_a: float | None = None


FAMILIES = ("compound of a known group", "strained element", "group the CNN does not know")
"""The kinds of :data:`OUT_OF_DISTRIBUTION`."""

_CUBIC = (90.0, 90.0, 90.0)
OUT_OF_DISTRIBUTION: tuple[Case, ...] = (
    # Binary compounds whose space group is one of the classes. Room-temperature lattice
    # constants (the fingerprint rescales by the nearest-neighbour distance, so only
    # the ratios matter).
    Case("rocksalt NaCl", FAMILIES[0], 225, 221, ("Na", "Cl"),
         ((0, 0, 0), (0.5, 0.5, 0.5)), (5.640,) * 3 + _CUBIC),
    Case("rocksalt MgO", FAMILIES[0], 225, 221, ("Mg", "O"),
         ((0, 0, 0), (0.5, 0.5, 0.5)), (4.212,) * 3 + _CUBIC),
    Case("B2 CsCl", FAMILIES[0], 221, 229, ("Cs", "Cl"),
         ((0, 0, 0), (0.5, 0.5, 0.5)), (4.123,) * 3 + _CUBIC),
    Case("B2 CuZn", FAMILIES[0], 221, 229, ("Cu", "Zn"),
         ((0, 0, 0), (0.5, 0.5, 0.5)), (2.945,) * 3 + _CUBIC),
    Case("L1_2 Cu3Au", FAMILIES[0], 221, 225, ("Au", "Cu"),
         ((0, 0, 0), (0, 0.5, 0.5)), (3.749,) * 3 + _CUBIC),
    Case("L1_2 Ni3Al", FAMILIES[0], 221, 225, ("Al", "Ni"),
         ((0, 0, 0), (0, 0.5, 0.5)), (3.572,) * 3 + _CUBIC),
    # Elements of the non-cubic classes at c/a outside the sampled ranges
    # (structures.PROTOTYPES): the same group, a geometry the network never saw.
    Case("In, bct at c/a 1.25", FAMILIES[1], 139, 139, ("In",), c_over_a=1.25),
    Case("In, bct at c/a 2.20", FAMILIES[1], 139, 139, ("In",), c_over_a=2.20),
    Case("Sn, beta-Sn at c/a 0.42", FAMILIES[1], 141, 141, ("Sn",), c_over_a=0.42),
    Case("Sn, beta-Sn at c/a 0.70", FAMILIES[1], 141, 141, ("Sn",), c_over_a=0.70),
    Case("Mg, hcp at c/a 1.35", FAMILIES[1], 194, 194, ("Mg",), c_over_a=1.35),
    Case("Mg, hcp at c/a 2.15", FAMILIES[1], 194, 194, ("Mg",), c_over_a=2.15),
    # Structures of groups that are not classes.
    Case("alpha-U (Cmcm)", FAMILIES[2], 63, None, ("U",),
         ((0, 0.1025, 0.25),), (2.854, 5.869, 4.955) + _CUBIC),
    Case("A15 Cr3Si (Pm-3n)", FAMILIES[2], 223, None, ("Si", "Cr"),
         ((0, 0, 0), (0.25, 0, 0.5)), (4.555,) * 3 + _CUBIC),
)  # fmt: skip
"""Crystals outside the training distribution (:func:`out_of_distribution_test`)."""


def case_cell(case: Case) -> Atoms:
    """The conventional cell of a :class:`Case`, its space group checked by spglib.

    Returns
    -------
    ase.Atoms
        With ``info["space_group"]`` and ``info["case"]``.

    Raises
    ------
    RuntimeError
        If spglib (10⁻³ Å) does not find ``case.space_group``.

    Notes
    -----
    Introduced in Chapter 3.
    """
    from ase.spacegroup import crystal

    from crystal_course.structures import build_prototype, space_group

    if case.c_over_a is not None:
        cell = build_prototype(case.space_group, case.symbols[0], c_over_a=case.c_over_a)
    else:
        cell = crystal(list(case.symbols), list(case.basis), spacegroup=case.space_group,
                       cellpar=list(case.cellpar))  # fmt: skip
    found = space_group(cell)
    if found != case.space_group:
        raise RuntimeError(f"{case.name}: spglib finds {found}, not {case.space_group}")
    cell.info.update(space_group=case.space_group, case=case.name)
    return cell


def out_of_distribution_test(
    model: keras.Model,
    per_case: int = 1,
    seed: int = 0,
    n_jobs: int | None = None,
    progress: bool = True,
):
    """What the CNN answers for crystals outside its training distribution.

    Every case of :data:`OUT_OF_DISTRIBUTION` goes ``per_case`` times through the
    2018 pipeline (:func:`crystal_course.structures.pipeline`: a different random
    rotation, then the standard cell, so the copies differ only in their defects)
    under each of :data:`REAL_ELEMENT_CONDITIONS`.

    Returns
    -------
    pandas.DataFrame
        One row per case: ``case``, ``family``, ``space group``, ``looks like``
        (class name or ``"none"``), ``n``, ``accuracy`` (answers naming the class of
        its space group, :class:`crystal_course.uncertainty.Accuracy`; None for a
        group that is no class), ``most common`` (class name) and ``share`` (its
        fraction of the answers), ``answers`` (class name -> count).

    Notes
    -----
    Introduced in Chapter 3.
    """
    import pandas as pd

    from crystal_course.diffraction import fingerprints
    from crystal_course.structures import CLASSES, pipeline, spglib_group_class
    from crystal_course.uncertainty import from_predictions

    if model.output_shape[-1] != len(CLASSES):
        raise ValueError(f"model has {model.output_shape[-1]} outputs, expected {len(CLASSES)}")
    if isinstance(per_case, bool) or not isinstance(per_case, int) or per_case < 1:
        raise ValueError(f"per_case must be a positive integer, got {per_case!r}")
    crystals, owners = [], []
    for i, case in enumerate(OUT_OF_DISTRIBUTION):
        cell = case_cell(case)
        for c, damage in enumerate(REAL_ELEMENT_CONDITIONS.values()):
            for k in range(per_case):
                rng = np.random.default_rng(np.random.SeedSequence([seed, 3, i, c, k]))
                crystals.append(pipeline(cell, rng, **damage))
                owners.append(i)
    images = fingerprints(crystals, n_jobs=n_jobs, progress=progress)
    predicted = model.predict(images, batch_size=256, verbose=0).argmax(axis=1)
    owners = np.array(owners)
    rows = []
    for i, case in enumerate(OUT_OF_DISTRIBUTION):
        answers = predicted[owners == i]
        label = spglib_group_class(case.space_group)
        counts = Counter(CLASSES[a] for a in answers)
        common, count = counts.most_common(1)[0]
        look = "none" if case.looks_like is None else CLASSES[spglib_group_class(case.looks_like)]
        rows.append({
            "case": case.name,
            "family": case.family,
            "space group": case.space_group,
            "looks like": look,
            "n": len(answers),
            "accuracy": from_predictions(answers, np.full(len(answers), label)) if label >= 0
            else None,
            "most common": common,
            "share": count / len(answers),
            "answers": dict(counts),
        })  # fmt: skip
    return pd.DataFrame(rows)


KEYS = ("the lattice look", "the space group", "neither")
"""The verdicts of :func:`what_it_keys_on`."""


def _compound_counts(table) -> tuple[int, int, int]:
    from crystal_course.structures import CLASSES, spglib_group_class

    compounds = table[table["family"] == FAMILIES[0]]
    if compounds.empty:
        raise ValueError(f"table holds no {FAMILIES[0]!r}: give out_of_distribution_test's table")
    group = compounds["space group"].map(lambda g: CLASSES[spglib_group_class(g)])
    look = int((compounds["most common"] == compounds["looks like"]).sum())
    return look, int((compounds["most common"] == group).sum()), len(compounds)


def what_it_keys_on(table) -> str:
    """What a classifier keys on, from the compounds of :func:`out_of_distribution_test`.

    A compound of :data:`FAMILIES` ``[0]`` has a space group whose class differs from
    the class of the lattice its atoms form (rocksalt is fcc by its group, simple cubic
    by its atoms). If the most common answer names the look for more than half of
    these compounds, the classifier keys on "the lattice look"; if it names the group
    for more than half, "the space group"; otherwise "neither".

    Parameters
    ----------
    table : pandas.DataFrame
        As returned by :func:`out_of_distribution_test`.

    Returns
    -------
    str
        One of :data:`KEYS`.

    Notes
    -----
    Introduced in Chapter 3.
    """
    look, group, n = _compound_counts(table)
    if look > n / 2:
        return KEYS[0]
    if group > n / 2:
        return KEYS[1]
    return KEYS[2]


def keys_sentence(table) -> str:
    """:func:`what_it_keys_on` with its evidence, as a sentence for the chapter.

    Notes
    -----
    Introduced in Chapter 3.
    """
    look, group, n = _compound_counts(table)
    return (
        f"{what_it_keys_on(table)}: for {look} of the {n} compounds the most common answer "
        f"is the class of the lattice their atoms form, for {group} the class of their "
        "space group"
    )


def sweep_item(atoms, defect: str, level: float, seed: tuple, symprecs):
    """Damage one structure; return its fingerprint and spglib's verdicts.

    The worker of :func:`defect_sweep`. It lives here,
    away from Keras, so worker processes do not import TensorFlow.

    Returns
    -------
    fingerprint : numpy.ndarray
        ``(64, 64, 3)``.
    found : list of bool
        Whether spglib still finds ``atoms.info["space_group"]`` at each tolerance.

    Notes
    -----
    Introduced in Chapter 3.
    """
    from crystal_course.structures import damage, damage_seed, identified

    damaged = damage(atoms, defect, level, damage_seed(*seed))
    return fingerprint(damaged), identified(damaged, atoms.info["space_group"], symprecs)


def practical_item(atoms, defect: str, level: float, seed: tuple, symprec: float):
    """Damage one structure, then view it as a user would; fingerprint, spglib's class and
    how far the boxes lie from the lattice's low-index directions.

    The worker of :func:`practical_sweep` (away from Keras, like :func:`sweep_item`).
    The damage is the same as in :func:`sweep_item` for the same seed; the arbitrary
    orientation comes from the same stream afterwards.

    Returns
    -------
    fingerprint : numpy.ndarray
        ``(64, 64, 3)`` of :func:`crystal_course.structures.practitioner_view`.
    verdict : tuple of (int, bool, float)
        The class of :data:`crystal_course.structures.CLASSES` of the group spglib
        finds in the damaged crystal (-1 for none of them); whether spglib found
        the lattice (a standard cell smaller than the damaged box, from which the
        view is rebuilt); and the smallest angle (degrees,
        :func:`crystal_course.structures.misalignment`) from an edge of the damaged
        crystal's box, or of the cell spglib returns when it did not find the
        lattice, to a low-index direction of the lattice. NaN for a structure
        without ``info["conventional_cell"]`` (one not built by
        :func:`crystal_course.structures.skewed_supercell`).

    Notes
    -----
    Introduced in Chapter 3.
    """
    from crystal_course.structures import (
        damage,
        damage_seed,
        misalignment,
        practitioner_view,
        spglib_group_class,
    )

    rng = damage_seed(*seed)
    damaged = damage(atoms, defect, level, rng)
    view, group, edges = practitioner_view(damaged, rng, symprec, details=True)
    box = np.array(damaged.cell)
    lattice_found = bool(abs(np.linalg.det(edges)) < 0.99 * abs(np.linalg.det(box)))
    angle = float("nan")
    if "conventional_cell" in atoms.info:
        conventional = np.asarray(atoms.info["conventional_cell"])
        cells = [box] if lattice_found else [box, edges]
        angle = float(min(misalignment(cell, conventional).min() for cell in cells))
    return fingerprint(view), (spglib_group_class(group), lattice_found, angle)


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


# ---------------------------------------------------------------------------
# Chapter 8: the same crystals in any orientation, and crystals of no known class
# ---------------------------------------------------------------------------

CONTEST_CLASSIFIERS = ("powder_cnn", "soap_network", "ziletti_cnn")
"""The shipped classifiers Chapter 8 scores on the same test crystals."""


@dataclass(frozen=True)
class InvariantContest:
    """Every classifier on every test split of an orientation-free dataset.

    ``test_pristine``, ``test_vacancies_*`` and ``test_displacements_*`` hold the
    crystals in the random orientation they were drawn in; ``test_standard`` the
    pristine ones in spglib's standard orientation, row for row the same crystals as
    ``test_pristine``. The 2018 CNN reads each crystal's fingerprint as it is
    oriented: on ``test_standard`` that is the 2018 pipeline (spglib first), on the
    others the fingerprint without standardisation.

    Attributes
    ----------
    correct : dict
        ``(classifier, split) -> (N,)`` bool, per crystal.
    entropy : dict
        ``(classifier, split) -> (N,)`` predictive entropy, nats.
    splits : tuple of str
    information : dict
        ``(classifier, split) -> (N,)`` mutual information, nats (empty for a card
        written before it was recorded).

    Notes
    -----
    Introduced in Chapter 8.
    """

    correct: dict
    entropy: dict
    splits: tuple[str, ...]
    information: dict = field(default_factory=dict)

    def accuracy(self, classifier: str, split: str):
        """Accuracy with its Wilson interval (:class:`crystal_course.uncertainty.Accuracy`)."""
        from crystal_course.uncertainty import wilson

        right = self.correct[classifier, split]
        return wilson(int(right.sum()), len(right))

    def table(self):
        """Accuracy (%) with its interval, one row per classifier, one column per split."""
        import pandas as pd

        classifiers = sorted({c for c, _ in self.correct}, key=CONTEST_CLASSIFIERS.index)
        rows = {}
        for c in classifiers:
            cells = {}
            for s in self.splits:
                a = self.accuracy(c, s)
                cells[s] = f"{100 * a.value:.1f} [{100 * a.low:.1f}, {100 * a.high:.1f}]"
            rows[c] = cells
        return pd.DataFrame.from_dict(rows, orient="index")[list(self.splits)]

    def orientation_test(self, classifier: str):
        """Standard orientation minus the random one, paired over the same crystals."""
        from crystal_course.uncertainty import paired_test

        return paired_test(self.correct[classifier, "test_standard"],
                           self.correct[classifier, "test_pristine"])  # fmt: skip

    def versus(self, a: str, b: str, split: str):
        """Classifier ``a`` minus ``b`` on the same crystals of ``split`` (paired)."""
        from crystal_course.uncertainty import paired_test

        return paired_test(self.correct[a, split], self.correct[b, split])


def _mc_answers(model, x, passes: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from crystal_course.models import mc_dropout_samples
    from crystal_course.uncertainty import mutual_information, predictive_entropy

    samples = mc_dropout_samples(model, x, passes=passes, seed=seed)
    return (samples.mean(axis=0).argmax(axis=1), predictive_entropy(samples),
            mutual_information(samples))  # fmt: skip


def invariant_contest(path, passes: int = 30, seed: int = 0, classifiers=None) -> InvariantContest:
    """Score the shipped classifiers on every test split of an orientation-free dataset.

    Parameters
    ----------
    path : path-like
        A dataset of :func:`crystal_course.invariant.generate`, made with another seed
        than the 2018 CNN's training set (its card's ``dataset``).
    passes : int, default 30
        Monte Carlo dropout passes; the answer is the class of the mean probability.
    seed : int, default 0
        Seeds the dropout masks.
    classifiers : dict, optional
        ``{name: keras.Model}`` among :data:`CONTEST_CLASSIFIERS`; default the shipped
        models.

    Notes
    -----
    Introduced in Chapter 8.
    """
    from crystal_course import dataset, invariant, models

    manifest = dataset.verify(path, kind="invariant")
    classifiers = classifiers or {n: models.load_pretrained(n) for n in CONTEST_CLASSIFIERS}
    unknown = set(classifiers) - set(CONTEST_CLASSIFIERS)
    if unknown:
        raise ValueError(f"classifiers must be among {', '.join(CONTEST_CLASSIFIERS)}; "
                         f"got {', '.join(sorted(unknown))}")  # fmt: skip
    splits = tuple(s for s in manifest["splits"] if s.startswith("test"))
    correct, entropy, information = {}, {}, {}
    for split in splits:
        data = dataset.load(path, split)
        for name, model in classifiers.items():
            x = (data.meta["fingerprint"] if name == "ziletti_cnn"
                 else invariant.split_input(name, data))  # fmt: skip
            predicted, h, i = _mc_answers(model, x, passes, seed)
            correct[name, split], entropy[name, split] = predicted == data.y, h
            information[name, split] = i
    return InvariantContest(correct, entropy, splits, information)


UNKNOWN_CASES = ("alpha-U (Cmcm)", "A15 Cr3Si (Pm-3n)", "liquid-like Cu")
"""Crystals of no known class for Chapter 8: two groups outside the classes
(:data:`OUT_OF_DISTRIBUTION`) and a cluster without long-range order."""


def liquid_like_cluster(n_atoms: int, rng, nearest: float = 2.55, min_distance: float = 0.75,
                        symbol: str = "Cu") -> Atoms:  # fmt: skip
    """A cluster without long-range order: random sequential addition in a sphere.

    Points drawn uniformly in a sphere at 0.9 x the fcc number density of nearest
    neighbour distance ``nearest`` (Å), each kept only if it is at least
    ``min_distance x nearest`` from every atom kept before (a hard-sphere-like gas,
    below the jamming density of random sequential addition).

    Notes
    -----
    Introduced in Chapter 8.
    """
    from crystal_course.structures import check_n_atoms

    n_atoms = check_n_atoms(n_atoms)
    rng = np.random.default_rng(rng)
    density = 0.9 * np.sqrt(2) / nearest**3
    radius = (3 * n_atoms / (4 * np.pi * density)) ** (1 / 3)
    kept = np.empty((0, 3))
    for _ in range(200 * n_atoms):
        if len(kept) == n_atoms:
            break
        point = rng.normal(size=3)
        point *= radius * rng.random() ** (1 / 3) / np.linalg.norm(point)
        if not len(kept) or np.linalg.norm(kept - point, axis=1).min() >= min_distance * nearest:
            kept = np.vstack([kept, point])
    else:
        raise RuntimeError(f"could not place {n_atoms} atoms at min_distance {min_distance}")
    return Atoms(symbols=[symbol] * n_atoms, positions=kept)


def unknown_crystals(per_case: int, seed: int = 0, n_atoms: int = 250) -> list[tuple[str, Atoms]]:
    """``per_case`` structures of each of :data:`UNKNOWN_CASES`, in random orientations.

    The periodic cases are rotated by a random rotation and repeated to about
    ``n_atoms`` (their cell kept, so the 2018 pipeline can standardise them); the
    liquid-like cluster has no cell.

    Returns
    -------
    list of (case name, ase.Atoms)

    Notes
    -----
    Introduced in Chapter 8.
    """
    from crystal_course.structures import random_rotation, supercell

    if isinstance(per_case, bool) or not isinstance(per_case, int) or per_case < 1:
        raise ValueError(f"per_case must be a positive integer, got {per_case!r}")
    cases = {c.name: c for c in OUT_OF_DISTRIBUTION}
    out = []
    for i, name in enumerate(UNKNOWN_CASES):
        for k in range(per_case):
            rng = np.random.default_rng(np.random.SeedSequence([seed, 11, i, k]))
            if name in cases:
                out.append((name, supercell(random_rotation(case_cell(cases[name]), rng), n_atoms)))
            else:
                out.append((name, liquid_like_cluster(n_atoms, rng)))
    return out


SCORES = ("entropy", "information")
"""The uncertainty scores Chapter 8 ranks crystals by: predictive entropy and mutual
information (:mod:`crystal_course.uncertainty`), nats."""


def unknown_scores(per_case: int = 20, passes: int = 30, seed: int = 0,
                   n_atoms: int = 250) -> dict:  # fmt: skip
    """Predictive entropy and mutual information of each shipped classifier on
    :func:`unknown_crystals`.

    Each crystal goes through :func:`crystal_course.classify.classify`, the path a
    user's file takes: the orientation-free classifiers read its sphere, the 2018 CNN
    its pipeline (spglib's standard cell, then the fingerprint), answering only for
    the periodic cases.

    Returns
    -------
    dict
        ``{score: {classifier: {case: (per_case,) values, nats}}}``, ``score`` in
        :data:`SCORES`, to four decimals.

    Notes
    -----
    Introduced in Chapter 8.
    """
    from crystal_course.classify import SHIPPED, classify

    found = unknown_crystals(per_case, seed, n_atoms)
    results = classify([atoms for _, atoms in found], passes, n_atoms, seed)
    out = {score: {} for score in SCORES}
    for name in SHIPPED:
        cases = {score: {} for score in SCORES}
        for (case, _), result in zip(found, results, strict=True):
            answer = result[name]
            if answer.error is None:
                cases["entropy"].setdefault(case, []).append(answer.uncertainty)
                cases["information"].setdefault(case, []).append(answer.information)
        for score in SCORES:
            out[score][name] = {case: np.asarray(v) for case, v in cases[score].items()}
    return out


def _bits(right: np.ndarray) -> str:
    return "".join("1" if r else "0" for r in right)


def contest_card(path, passes: int = 30, seed: int = 0, per_case: int = 20) -> dict:
    """Chapter 8's results card: :func:`invariant_contest` and :func:`unknown_scores`.

    Per-crystal correctness is kept (as strings of 0 and 1, crystal by crystal) so
    that a chapter can pair any two cells; entropies to four decimals.

    Notes
    -----
    Introduced in Chapter 8.
    """
    from pathlib import Path

    from crystal_course import __version__, dataset, models

    manifest = dataset.verify(path, kind="invariant")
    contest = invariant_contest(path, passes, seed)
    unknown = unknown_scores(per_case, passes, seed)
    return {
        "dataset": {"name": Path(path).name, "parameters": manifest["parameters"],
                    "format": manifest["format"]},
        "passes": passes, "seed": seed, "per_case": per_case,
        "splits": list(contest.splits),
        "correct": {c: {s: _bits(contest.correct[c, s]) for s in contest.splits}
                    for c in CONTEST_CLASSIFIERS},
        "entropy": {c: {s: np.round(contest.entropy[c, s], 4).tolist() for s in contest.splits}
                    for c in CONTEST_CLASSIFIERS},
        "information": {c: {s: np.round(contest.information[c, s], 4).tolist()
                            for s in contest.splits} for c in CONTEST_CLASSIFIERS},
        "unknown_entropy": {c: {case: np.round(h, 4).tolist() for case, h in cases.items()}
                            for c, cases in unknown["entropy"].items()},
        "unknown_information": {c: {case: np.round(v, 4).tolist() for case, v in cases.items()}
                                for c, cases in unknown["information"].items()},
        "thresholds": {c: models.model_card(c)["unknown"]["threshold"]
                       for c in CONTEST_CLASSIFIERS},
        "versions": {"crystal_course": __version__},
    }  # fmt: skip


def contest_from_card(card: dict) -> InvariantContest:
    """The :class:`InvariantContest` a :func:`contest_card` recorded.

    Notes
    -----
    Introduced in Chapter 8.
    """
    correct, entropy, information = {}, {}, {}
    for c, splits in card["correct"].items():
        for s, bits in splits.items():
            correct[c, s] = np.frombuffer(bits.encode(), dtype=np.uint8) == ord("1")
            entropy[c, s] = np.asarray(card["entropy"][c][s], dtype=float)
            if "information" in card:
                information[c, s] = np.asarray(card["information"][c][s], dtype=float)
    return InvariantContest(correct, entropy, tuple(card["splits"]), information)


CONTEST_CARD = "invariant_contest.json"
"""Chapter 8's results card (in ``crystal_course/data``), written by :func:`main`."""


def read_contest_card(name: str = CONTEST_CARD) -> dict:
    """The shipped results card of Chapter 8 (:func:`contest_card`).

    Notes
    -----
    Introduced in Chapter 8.
    """
    from crystal_course.dataset import read_card

    return read_card(name, (CONTEST_CARD,))


def in_class_splits(card: dict, classifier: str) -> tuple[str, ...]:
    """The test splits that hold in-class crystals as each classifier meets them.

    The orientation-free classifiers: every split in random orientation, pristine
    and damaged (``test_standard`` repeats the pristine crystals). The 2018 CNN:
    ``test_standard`` only, the crystals after its pipeline's spglib step, since a
    user's file takes that path (:func:`crystal_course.classify.classify`).

    Notes
    -----
    Introduced in Chapter 8.
    """
    if classifier not in CONTEST_CLASSIFIERS:
        raise ValueError(f"classifier must be one of {', '.join(CONTEST_CLASSIFIERS)}; "
                         f"got {classifier!r}")  # fmt: skip
    if classifier == "ziletti_cnn":
        return ("test_standard",)
    return tuple(s for s in card["splits"] if s != "test_standard")


def _card_scores(card: dict, score: str) -> tuple[dict, dict]:
    if score not in SCORES:
        raise ValueError(f"score must be one of {', '.join(SCORES)}; got {score!r}")
    if score not in card:  # the card's keys are the scores' names
        raise ValueError(f"the card holds no {score!r}: rerun `python -m "
                         "crystal_course.evaluation invariant-contest`")  # fmt: skip
    return card[score], card[f"unknown_{score}"]


def unknown_table(card: dict, score: str = "entropy", seed: int = 0):
    """AUROC of crystals of no known class against in-class ones, and the threshold's errors.

    One row per classifier: the AUROC with its bootstrap interval pooled over
    :data:`UNKNOWN_CASES` and per case, against the in-class test crystals of
    :func:`in_class_splits`; for ``score="entropy"`` also the rates of the card's
    "unknown" threshold (chosen on validation crystals): in-class crystals flagged
    and unknowns missed, in %, with Wilson intervals
    (:func:`crystal_course.uncertainty.unknown_summary`).

    Returns
    -------
    pandas.DataFrame
        Cells as text, ``"0.996 [0.992, 0.998]"``; the numbers are in ``.attrs["rows"]``.

    Notes
    -----
    Introduced in Chapter 8.
    """
    import pandas as pd

    from crystal_course.uncertainty import unknown_summary

    inside, outside = _card_scores(card, score)
    rows, text = {}, {}
    for name in CONTEST_CLASSIFIERS:
        scores_in = np.concatenate([inside[name][s] for s in in_class_splits(card, name)])
        threshold = card["thresholds"][name] if score == "entropy" else None
        row = unknown_summary(scores_in, outside[name], threshold, seed)
        rows[name] = row
        cells = {}
        for key, value in row.items():
            if isinstance(value, tuple):
                cells[f"AUROC {key}"] = f"{value[0]:.3f} [{value[1]:.3f}, {value[2]:.3f}]"
            else:
                cells[f"{key} (%)"] = (
                    f"{100 * value.value:.1f} [{100 * value.low:.1f}, "
                    f"{100 * value.high:.1f}] ({value.correct}/{value.n})"
                )
        text[name] = cells
    table = pd.DataFrame.from_dict(text, orient="index")
    table.attrs["rows"] = rows
    return table


def flag_rates(card: dict, classifier: str):
    """Share of each in-class split's crystals the card's threshold calls unknown (%).

    Returns
    -------
    pandas.Series
        One :class:`crystal_course.uncertainty.Accuracy` per split (its value the share).

    Notes
    -----
    Introduced in Chapter 8.
    """
    import pandas as pd

    from crystal_course.uncertainty import wilson

    threshold = card["thresholds"][classifier]
    flagged = {s: np.asarray(card["entropy"][classifier][s]) > threshold
               for s in in_class_splits(card, classifier)}  # fmt: skip
    return pd.Series({s: wilson(int(f.sum()), len(f)) for s, f in flagged.items()},
                     name=classifier)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Write Chapter 8's results card (``invariant-contest PATH --card FILE``)."""
    import argparse
    import json
    from pathlib import Path

    from crystal_course.dataset import _write_atomic, positive_int

    parser = argparse.ArgumentParser(prog="python -m crystal_course.evaluation",
                                     description=main.__doc__)  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("invariant-contest", help="score the shipped classifiers on a "
                         "dataset of crystals in any orientation and on unknowns")  # fmt: skip
    run.add_argument("path")
    run.add_argument("--card", required=True)
    run.add_argument("--passes", type=positive_int, default=30)
    run.add_argument("--per-case", type=positive_int, default=20)
    args = parser.parse_args(argv)
    try:
        card = contest_card(args.path, args.passes, 0, args.per_case)
    except (ValueError, OSError) as error:
        run.error(str(error))
    text = (json.dumps(card, indent=1, sort_keys=True) + "\n").encode()
    _write_atomic(Path(args.card), lambda handle: handle.write(text))
    print(f"wrote {args.card}")
    return 0


if __name__ == "__main__":
    import sys

    from crystal_course import evaluation

    sys.exit(evaluation.main())
