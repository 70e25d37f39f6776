"""Descriptors of a crystal that do not depend on its orientation: SOAP and the powder pattern.

The 2018 fingerprint and the 2020 zone-axis patterns both need the crystal in a
standard orientation first. Two descriptors need none. The powder pattern
(:mod:`crystal_course.powder`) is the orientation average of the diffraction
intensity, so physics makes it invariant. SOAP, the smooth overlap of atomic
positions (Bartók, Kondor & Csányi, Phys. Rev. B 87, 184115 (2013)), expands each
atom's neighbour density in radial functions and spherical harmonics and keeps the
rotation-invariant power spectrum; averaged over the atoms, it is what ARISE
(Leitherer et al., Nat. Commun. 12, 6234 (2021)) classifies. Here it is computed by
``dscribe``, the field's implementation.

For the seven classes of Chapter 2, whose prototypes differ in structure, not in
chemistry, both descriptors see every atom as one species and lengths in units of the
nearest-neighbour distance, as the 2018 fingerprint does: the class, not the element
or the lattice constant, is what they must tell.

Introduced in Chapter 8.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms


def rescaled(atoms: Atoms, one_species: bool = True) -> Atoms:
    """The cluster with lengths in nearest-neighbour units and, by default, one species.

    The 2018 fingerprint's convention (Chapter 1): the mean nearest-neighbour
    distance (:func:`crystal_course.structures.nearest_neighbour_distance`) becomes 1
    and every atom the same element (hydrogen stands for "an atom"), so a
    descriptor sees the structure only. The cell is dropped: the result is a finite
    cluster.

    Notes
    -----
    Introduced in Chapter 8.
    """
    from crystal_course.structures import check_atoms, nearest_neighbour_distance

    check_atoms(atoms, min_atoms=2)
    scale = nearest_neighbour_distance(atoms)
    numbers = np.ones(len(atoms), dtype=int) if one_species else atoms.numbers
    return Atoms(numbers=numbers, positions=atoms.positions / scale)


def cluster_of(atoms: Atoms, n_atoms: int = 250) -> Atoms:
    """The finite cluster the orientation-free classifiers see, in the input's own frame.

    A periodic structure becomes a sphere of about ``n_atoms`` atoms
    (:func:`crystal_course.zone_axis.spherical_cluster`), whatever cell describes it:
    a primitive cell and a conventional one give the same kind of object, where
    repeating each along its own axes would give a sheared block and a cube, and
    SOAP averaged over a cluster of this size, about a third of it surface, would
    see the difference. A finite cluster with more than ``2 * n_atoms`` atoms keeps
    the ``n_atoms`` nearest its centroid; a smaller one is kept whole. The cell is
    dropped. The training crystals are cut the same way.

    Notes
    -----
    Introduced in Chapter 8.
    """
    from crystal_course.structures import check_atoms, check_n_atoms
    from crystal_course.zone_axis import spherical_cluster

    check_atoms(atoms)
    n_atoms = check_n_atoms(n_atoms)
    periodic = bool(atoms.pbc.all()) and atoms.cell.rank == 3
    if periodic:
        # spherical_cluster repeats a cell to about 2.5 n_atoms; a cell that is already
        # large (a supercell) is first repeated 3 x 3 x 3, so the sphere fits inside it
        atoms = spherical_cluster(atoms.repeat(3) if len(atoms) >= n_atoms // 4 else atoms,
                                  n_atoms)  # fmt: skip
    else:
        check_atoms(atoms, min_atoms=2)  # a finite cluster of one atom has no structure
    if len(atoms) > 2 * n_atoms:
        centre = atoms.positions.mean(axis=0)
        nearest = np.argsort(np.linalg.norm(atoms.positions - centre, axis=1), kind="stable")
        atoms = atoms[np.sort(nearest[:n_atoms])]
    return Atoms(numbers=atoms.numbers, positions=atoms.positions)


@dataclass(frozen=True)
class SoapSettings:
    """SOAP parameters, in nearest-neighbour units (:func:`rescaled`).

    Attributes
    ----------
    r_cut : float
        Neighbour sphere radius: 2.5 nearest-neighbour distances reach the third
        shell of every prototype of Chapter 2.
    n_max, l_max : int
        Radial functions and the largest angular momentum.
    sigma : float
        Width of the Gaussian put on each neighbour.

    Notes
    -----
    Introduced in Chapter 8. Our choices; ARISE's differ, since its crystals are
    not rescaled.
    """

    r_cut: float = 2.5
    n_max: int = 6
    l_max: int = 6
    sigma: float = 0.15

    def __post_init__(self) -> None:
        if not (self.r_cut > 1 and self.sigma > 0):
            raise ValueError("r_cut must exceed 1 nearest-neighbour distance and sigma be > 0")
        for name in ("n_max", "l_max"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")


def soap(clusters, settings: SoapSettings = SoapSettings(), n_jobs: int = 1) -> np.ndarray:
    """Atom-averaged SOAP power spectra of clusters, rescaled and of one species.

    Parameters
    ----------
    clusters : ase.Atoms or sequence of ase.Atoms
        Finite clusters, in Å; each is :func:`rescaled` first.
    settings : SoapSettings
    n_jobs : int
        Processes for ``dscribe``.

    Returns
    -------
    numpy.ndarray
        ``(n_clusters, n_features)`` float64 (``dscribe``'s ``average="inner"``:
        the power spectrum of the atoms' mean expansion coefficients).

    Notes
    -----
    Introduced in Chapter 8.
    """
    from dscribe.descriptors import SOAP

    single = isinstance(clusters, Atoms)
    clusters = [clusters] if single else list(clusters)
    if not clusters:
        raise ValueError("expected at least one cluster")
    systems = [rescaled(c) for c in clusters]
    descriptor = SOAP(species=["H"], r_cut=settings.r_cut, n_max=settings.n_max,
                      l_max=settings.l_max, sigma=settings.sigma, average="inner",
                      periodic=False)  # fmt: skip
    features = np.asarray(descriptor.create(systems, n_jobs=n_jobs), dtype=float)
    return features.reshape(len(systems), -1)


# ---------------------------------------------------------------------------
# Datasets: the seven classes in any orientation, three descriptors per crystal
# ---------------------------------------------------------------------------

FORMAT_VERSION = 3
"""Format of orientation-free datasets (``kind`` ``"invariant"``)."""

Q_RANGE = (1.0, 20.0)
"""Powder patterns' q range, in 1/(mean nearest-neighbour distance), the 2018
fingerprint's unit: each pattern is computed at ``q / d_nn`` in 1/Å, so the seven classes'
peaks sit at the same q whatever the element and lattice constant (fcc's first, (111), at
2 pi sqrt(3/2) = 7.7), while the form factors stay the element's."""


@dataclass(frozen=True)
class Config:
    """Parameters of an orientation-free dataset of the seven classes (Chapter 2's crystals).

    The crystals are those of :func:`crystal_course.dataset.generate` with the same
    parameters (the same seeds), but kept in the random orientation they were drawn
    in (``structures.sample_structure(standardise=False)``); ``test_standard``
    holds the test crystals in spglib's standard orientation, the 2018 pipeline's.
    Each crystal is stored as its powder pattern (``x``) and its atom-averaged SOAP
    (``soap``), both of a sphere of about ``n_atoms`` cut from it (:func:`cluster_of`),
    and its 2018 fingerprint (``fingerprint``) of the box the 2018 pipeline makes
    (``structures.sample_structure``); a defective split damages each to the same
    levels.

    Attributes
    ----------
    n_per_class, n_test_per_class : int
    vacancies, displacements : tuple of float
        Defect levels of the test sets (in the random orientation).
    seed : int
    n_atoms : int
        Cluster size.
    n_q : int
        Points of the powder pattern, evenly over :data:`Q_RANGE`.
    train_damage : tuple of float
        ``(largest vacancy fraction, largest displacement sigma)`` of the
        ``train_damaged`` split: every training crystal once more, with vacancies and
        displacements drawn uniformly up to these (our augmentation; ``(0, 0)`` leaves
        the split out).
    chunk_size : int

    Notes
    -----
    Introduced in Chapter 8.
    """

    n_per_class: int
    n_test_per_class: int
    vacancies: tuple[float, ...] = (0.25,)
    displacements: tuple[float, ...] = (0.02,)
    seed: int = 0
    n_atoms: int = 250
    n_q: int = 512
    train_damage: tuple[float, float] = (0.3, 0.03)
    chunk_size: int = 256

    def __post_init__(self) -> None:
        from crystal_course.dataset import DatasetConfig

        self.base()  # validates the shared fields
        if isinstance(self.n_q, bool) or not isinstance(self.n_q, int) or self.n_q < 8:
            raise ValueError(f"n_q must be an integer >= 8, got {self.n_q!r}")
        if self.n_test_per_class < 1:
            raise ValueError("n_test_per_class must be >= 1: the test sets are the point")
        object.__setattr__(self, "vacancies", DatasetConfig(1, 1, self.vacancies).vacancies)
        damage = tuple(float(v) for v in self.train_damage)
        if len(damage) != 2 or not (0 <= damage[0] < 1 and 0 <= damage[1] <= 1):
            raise ValueError("train_damage must be (vacancies in [0, 1), displacements in "
                             f"[0, 1]), got {self.train_damage!r}")  # fmt: skip
        object.__setattr__(self, "train_damage", damage)

    def base(self):
        """The fingerprint dataset's config with the same crystals."""
        from crystal_course.dataset import DatasetConfig

        return DatasetConfig(self.n_per_class, self.n_test_per_class, tuple(self.vacancies),
                             tuple(self.displacements), self.seed, self.n_atoms,
                             self.chunk_size)  # fmt: skip

    @property
    def splits(self) -> tuple[str, ...]:
        base = self.base().splits
        damaged = ("train_damaged",) if any(self.train_damage) else ()
        return (base[0], *damaged, base[1], "test_standard") + base[2:]

    def parents(self, split: str) -> list[tuple[int, int]]:
        """``(class, parent index)`` of every crystal of a split."""
        renamed = {"test_standard": "test_pristine", "train_damaged": "train"}
        return self.base().parents(renamed.get(split, split))

    def q(self) -> np.ndarray:
        """The powder pattern's q points, in 1/(nearest-neighbour distance)."""
        return q_points(self.n_q)


def q_points(n_q: int = 512) -> np.ndarray:
    """``n_q`` q points evenly over :data:`Q_RANGE`, in 1/(nearest-neighbour distance).

    Notes
    -----
    Introduced in Chapter 8.
    """
    return np.linspace(*Q_RANGE, n_q)


def pattern(atoms: Atoms, n_q: int = 512) -> np.ndarray:
    """The classifiers' powder pattern of a cluster: :data:`Q_RANGE` in nearest-neighbour units.

    Computed at ``q / d_nn`` in 1/Å with the element's form factors and scaled to a
    maximum of 1 (:func:`crystal_course.powder.powder_pattern`).

    Returns
    -------
    numpy.ndarray
        ``(n_q,)`` float64.

    Notes
    -----
    Introduced in Chapter 8.
    """
    from crystal_course.powder import powder_pattern
    from crystal_course.structures import nearest_neighbour_distance

    return powder_pattern(atoms, q_points(n_q) / nearest_neighbour_distance(atoms))


def crystal(config: Config, cls: int, parent: int, standardise: bool = False):
    """The pristine crystal of one parent as the dataset draws it, and its space group.

    ``standardise`` gives the same crystal in spglib's standard orientation (the
    2018 pipeline's view; ``test_standard``).

    Notes
    -----
    Introduced in Chapter 8.
    """
    from crystal_course.dataset import _GROUPS_OF_CLASS
    from crystal_course.structures import sample_structure

    groups = _GROUPS_OF_CLASS[cls]
    group = groups[parent % len(groups)]
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 0, cls, parent]))
    return sample_structure(group, rng, n_atoms=config.n_atoms, standardise=standardise), group


def _item(config: Config, split: str, cls: int, parent: int):
    from crystal_course.diffraction import fingerprint
    from crystal_course.structures import add_displacements, add_vacancies

    base = config.base()
    box, group = crystal(config, cls, parent, standardise=split == "test_standard")
    if split == "train_damaged":
        defect_seed = [config.seed, 8, cls, parent]
        draw = np.random.default_rng(np.random.SeedSequence(defect_seed))
        vacancies, displacements = draw.uniform(0, 1, 2) * config.train_damage
    else:
        defect_seed = [config.seed, 1, base.splits.index(split) if split in base.splits else 0,
                       cls, parent]  # fmt: skip
        vacancies, displacements = base.defects(split)
    # The 2018 pipeline's cluster is the box of its training; the orientation-free
    # classifiers' is a sphere of the same crystal. Each gets the same defect levels.
    sphere = cluster_of(box, config.n_atoms)
    if vacancies or displacements:
        rngs = [np.random.default_rng(s) for s in np.random.SeedSequence(defect_seed).spawn(2)]
        box, sphere = (add_displacements(add_vacancies(a, vacancies, r), displacements, r)
                       for a, r in zip((box, sphere), rngs, strict=True))  # fmt: skip
    return sphere, pattern(sphere, config.n_q), fingerprint(box), group


def _chunk(config: Config, split: str, keys: list[tuple[int, int]]) -> dict:
    items = [_item(config, split, cls, parent) for cls, parent in keys]
    return {
        "x": np.stack([p for _, p, _, _ in items]).astype(np.float32),
        "soap": soap([a for a, _, _, _ in items]).astype(np.float32),
        "fingerprint": np.stack([f for _, _, f, _ in items]).astype(np.float32),
        "y": np.array([cls for cls, _ in keys], dtype=np.int16),
        "parent": np.array([parent for _, parent in keys], dtype=np.int32),
        "space_group": np.array([g for _, _, _, g in items], dtype=np.int16),
        "n_atoms": np.array([len(a) for a, _, _, _ in items], dtype=np.int32),
    }


def generate(path, config: Config, n_jobs: int | None = None, progress: bool = True,
             client=None, allow_other_files: bool = False):  # fmt: skip
    """Generate (or finish) an orientation-free dataset of the seven classes.

    The machinery of :func:`crystal_course.dataset.generate`: chunks written
    atomically, a manifest with parameters, versions and SHA-256 per chunk, resumable;
    read a split with :func:`crystal_course.dataset.load` (``x`` the powder patterns,
    ``meta["soap"]``, ``meta["fingerprint"]``).

    Notes
    -----
    Introduced in Chapter 8.
    """
    from dataclasses import asdict
    from functools import partial

    from crystal_course import dataset
    from crystal_course.structures import CLASSES

    return dataset.generate_kind(path, "invariant", FORMAT_VERSION, config, asdict(config),
                                 CLASSES, ("numpy", "ase", "spglib", "dscribe"),
                                 partial(_chunk, config), n_jobs, progress, client,
                                 allow_other_files)  # fmt: skip


# ---------------------------------------------------------------------------
# The orientation-free classifiers: training, the unknown threshold, the command line
# ---------------------------------------------------------------------------

CLASSIFIERS = ("powder_cnn", "soap_network")
"""The orientation-free classifiers (builders in :mod:`crystal_course.models`)."""

VALIDATION_FRACTION = 0.1
"""Share of the training parents held out (with their damaged copies) for validation."""

MC_PASSES = 30
"""Monte Carlo dropout passes behind each predictive entropy (ours)."""

FALSE_UNKNOWN = 0.05
"""Share of in-class validation crystals the unknown threshold calls unknown (ours)."""


def _check_classifier(name: str) -> None:
    if name not in CLASSIFIERS:
        raise ValueError(f"classifier must be one of {', '.join(CLASSIFIERS)}; got {name!r}")


def classifier_input(name: str, patterns: np.ndarray, soaps: np.ndarray) -> np.ndarray:
    """What classifier ``name`` reads: ``(N, n_q, 1)`` powder patterns or ``(N, n_features)``
    SOAP vectors, float32.

    Notes
    -----
    Introduced in Chapter 8.
    """
    _check_classifier(name)
    chosen = patterns[..., None] if name == "powder_cnn" else soaps
    return np.ascontiguousarray(chosen, dtype=np.float32)


def split_input(name: str, data) -> np.ndarray:
    """:func:`classifier_input` of a loaded split (:func:`crystal_course.dataset.load`)."""
    return classifier_input(name, data.x, data.meta["soap"])


def build_classifier(name: str, n_inputs: int, n_classes: int, seed: int = 0):
    """An untrained orientation-free classifier and the card's ``architecture`` entry.

    Notes
    -----
    Introduced in Chapter 8.
    """
    from crystal_course import models

    _check_classifier(name)
    size = "n_q" if name == "powder_cnn" else "n_features"
    architecture = {"builder": name, size: int(n_inputs), "n_classes": int(n_classes)}
    return models.build({**architecture, "seed": seed}), architecture


def validation_parents(n_parents: int, seed: int) -> np.ndarray:
    """Seeded choice of training parents (per class) held out for validation.

    A held-out parent takes its damaged copy with it, so no crystal is validated on
    a copy of itself it trained on.

    Notes
    -----
    Introduced in Chapter 8.
    """
    from crystal_course.training import split_indices

    return np.sort(split_indices(n_parents, VALIDATION_FRACTION, seed)[1])


def entropies(model, x: np.ndarray, passes: int = MC_PASSES, seed: int = 0) -> np.ndarray:
    """Predictive entropy (nats) of each crystal under Monte Carlo dropout.

    Notes
    -----
    Introduced in Chapter 8.
    """
    from crystal_course.models import mc_dropout_samples
    from crystal_course.uncertainty import predictive_entropy

    return predictive_entropy(mc_dropout_samples(model, x, passes=passes, seed=seed))


def train_classifier(path, name: str, epochs: int, seed: int = 0, batch_size: int = 64,
                     learning_rate: float = 1e-3, verbose: int | str = 0):  # fmt: skip
    """Train an orientation-free classifier on a dataset of :func:`generate`.

    It fits on the ``train`` split and its damaged copies (``train_damaged``), less
    the :func:`validation_parents`; on the held-out crystals, pristine and damaged
    (in-class crystals as a user has them), it chooses the "unknown" threshold on the
    predictive entropy
    (:func:`crystal_course.uncertainty.unknown_rule`, :data:`FALSE_UNKNOWN`), before
    any test set is read; then it scores every test split.

    Parameters
    ----------
    path : path-like
        A dataset of :func:`generate`.
    name : {"powder_cnn", "soap_network"}
    epochs : int
    seed : int, default 0
        Seeds the validation choice, the initialisers, shuffling and dropout.
    batch_size : int, default 64
    learning_rate : float, default 1e-3
        Adam's.

    Returns
    -------
    model : keras.Model
    card : dict
        For :func:`crystal_course.training.save_model`: architecture, dataset,
        history, validation accuracy, the unknown threshold, test accuracies.

    Notes
    -----
    Introduced in Chapter 8.
    """
    import time

    from crystal_course import dataset, training

    _check_classifier(name)
    dataset.verify(path, kind="invariant")
    train = dataset.load(path, "train")
    splits = train.manifest["splits"]
    parts = [train] + ([dataset.load(path, "train_damaged")] if "train_damaged" in splits else [])
    n_parents = int(train.meta["parent"].max()) + 1
    held = validation_parents(n_parents, seed)
    if len(held) == 0:
        raise ValueError(f"{path} has {n_parents} training parents per class; at least "
                         f"{int(np.ceil(0.5 / VALIDATION_FRACTION)) + 1} are needed to hold "
                         "some out for validation")  # fmt: skip
    x = np.concatenate([split_input(name, p) for p in parts])
    y = np.concatenate([p.y for p in parts])
    out = np.concatenate([np.isin(p.meta["parent"], held) for p in parts])
    model, architecture = build_classifier(name, x.shape[1], len(train.class_names), seed)
    if name == "soap_network":
        model.get_layer("standardise").adapt(x[~out])
    start = time.perf_counter()
    history = training.train(model, x[~out], y[~out], epochs, batch_size,
                             validation_fraction=0.0, seed=seed, learning_rate=learning_rate,
                             verbose=verbose, strategy=None)  # fmt: skip
    seconds = time.perf_counter() - start
    x_val, y_val = x[out], y[out]  # the held-out parents, pristine and damaged
    from crystal_course.uncertainty import unknown_rule

    validation_accuracy, _ = training.evaluate(model, x_val, y_val)
    rule = unknown_rule(entropies(model, x_val, seed=seed), FALSE_UNKNOWN)
    tests = {}
    for split in splits:
        if split.startswith("test"):
            test = dataset.load(path, split)
            tests[split], _ = training.evaluate(model, split_input(name, test), test.y)
    card = {
        "model": name,
        "architecture": architecture,
        "dataset": {"format": train.manifest["format"], "kind": "invariant",
                    "parameters": train.manifest["parameters"], "n_fit": int((~out).sum()),
                    "n_validation": int(out.sum()),
                    "class_names": list(train.class_names)},  # fmt: skip
        "epochs": epochs, "seed": seed, "batch_size": batch_size,
        "learning_rate": learning_rate, "training_seconds": round(seconds, 1),
        "history": {k: [round(float(v), 5) for v in vals]
                    for k, vals in history.history.items()},  # fmt: skip
        "validation_accuracy": round(float(validation_accuracy), 5),
        "unknown": {"score": "predictive_entropy", "passes": MC_PASSES,
                    "threshold": rule.threshold, "false_unknown": rule.false_unknown},
        "test_accuracy": {k: round(float(v), 5) for k, v in tests.items()},
    }  # fmt: skip
    return model, card


def fingerprint_threshold(path, seed: int = 0, model=None) -> dict:
    """The 2018 CNN's "unknown" threshold, chosen on the same validation crystals.

    The validation parents of :func:`train_classifier` (same ``seed``) go through
    the 2018 pipeline, spglib's standard orientation then the fingerprint, and
    :func:`crystal_course.uncertainty.unknown_rule` picks the entropy that calls
    :data:`FALSE_UNKNOWN` of them unknown. Use a dataset whose crystals the 2018 CNN
    never saw (another seed than its training set's).

    Returns
    -------
    dict
        The card's ``unknown`` entry: score, passes, threshold, false_unknown,
        the dataset and the number of validation crystals.

    Notes
    -----
    Introduced in Chapter 8.
    """
    from crystal_course import dataset, models
    from crystal_course.diffraction import fingerprints
    from crystal_course.structures import CLASSES
    from crystal_course.uncertainty import unknown_rule

    manifest = dataset.verify(path, kind="invariant")
    config = Config(**manifest["parameters"])
    held = validation_parents(config.n_per_class, seed)
    crystals = [crystal(config, cls, int(p), standardise=True)[0]
                for cls in range(len(CLASSES)) for p in held]  # fmt: skip
    model = model or models.load_pretrained("ziletti_cnn")
    rule = unknown_rule(entropies(model, fingerprints(crystals, progress=False, n_jobs=1),
                                  seed=seed), FALSE_UNKNOWN)  # fmt: skip
    from pathlib import Path

    return {"score": "predictive_entropy", "passes": MC_PASSES, "threshold": rule.threshold,
            "false_unknown": rule.false_unknown, "dataset": Path(path).name,
            "n_validation": len(crystals), "seed": seed}  # fmt: skip


# ---------------------------------------------------------------------------
# The 20 space groups of Chapter 6's crystals, by powder pattern
# ---------------------------------------------------------------------------

GROUP_FORMAT_VERSION = 1
"""Format of the powder datasets of zone-axis crystallites (``kind`` ``"powder_groups"``)."""

GROUP_Q_RANGE = (1.0, 6.0)
"""q range of the space groups' powder patterns, in 1/Å (ours). Physical units: the 20
groups differ in their lattices' shapes and sizes, which a rescaling to one length
would blur, and Chapter 6's detector sees the same crystallites up to 6 1/Å. It starts
at 1/Å, past the small-angle lobe of a 500-atom crystallite's own shape (about
2 pi / its 25 Å diameter wide), which would otherwise set every pattern's maximum."""

UNKNOWN_GROUPS = (216, 217, 223)
"""Space groups outside the 20 for Chapter 8's unknowns: F-43m, I-43m (alpha-Mn's) and
Pm-3n (A15's), random crystals from the generator of the 20 (ours)."""


@dataclass(frozen=True)
class GroupConfig:
    """Powder patterns of the crystallites of a zone-axis dataset (Chapter 6's crystals).

    The same parameters as :class:`crystal_course.zone_axis.Config` for the same
    crystals, in the same rows (:func:`crystal_course.zone_axis.crystallite`: the
    same seeds, sizes and vacancies), plus the pattern's ``n_q`` points over
    :data:`GROUP_Q_RANGE`. A classifier trained on them is scored on the very test
    crystals of Chapter 7's runs.

    Notes
    -----
    Introduced in Chapter 8.
    """

    space_groups: tuple[int, ...]
    n_per_group: int
    n_test_per_group: int
    vacancies: tuple[float, ...] = (0.05, 0.1, 0.2)
    seed: int = 0
    n_atoms: int = 500
    max_atoms: int = 24
    n_q: int = 512
    chunk_size: int = 256

    def __post_init__(self) -> None:
        if isinstance(self.n_q, bool) or not isinstance(self.n_q, int) or self.n_q < 8:
            raise ValueError(f"n_q must be an integer >= 8, got {self.n_q!r}")
        object.__setattr__(self, "space_groups", tuple(int(g) for g in self.space_groups))
        object.__setattr__(self, "vacancies", tuple(float(v) for v in self.vacancies))
        self.zone_axis()  # validates the shared fields

    @classmethod
    def like(cls, parameters: dict, n_q: int = 512) -> GroupConfig:
        """The config of the crystals of a zone-axis dataset's ``parameters`` (its manifest's
        or a results card's ``dataset``)."""
        names = ("space_groups", "n_per_group", "n_test_per_group", "vacancies", "seed",
                 "n_atoms", "max_atoms", "chunk_size")  # fmt: skip
        missing = [n for n in names if n not in parameters]
        if missing:
            raise ValueError(f"zone-axis parameters lack {', '.join(missing)}")
        return cls(**{n: parameters[n] for n in names}, n_q=n_q)

    def zone_axis(self):
        """The :class:`crystal_course.zone_axis.Config` of the same crystals."""
        from crystal_course.zone_axis import Config as ZoneAxisConfig

        return ZoneAxisConfig(self.space_groups, self.n_per_group, self.n_test_per_group,
                              self.vacancies, self.seed, n_atoms=self.n_atoms,
                              max_atoms=self.max_atoms, chunk_size=self.chunk_size)  # fmt: skip

    @property
    def splits(self) -> tuple[str, ...]:
        return self.zone_axis().splits

    def parents(self, split: str) -> list[tuple[int, int]]:
        """``(class, parent index)`` of every crystal of a split, in the zone-axis rows."""
        return self.zone_axis().parents(split)

    def q(self) -> np.ndarray:
        """The pattern's q points, in 1/Å."""
        return np.linspace(*GROUP_Q_RANGE, self.n_q)


def group_pattern(atoms: Atoms, n_q: int = 512) -> np.ndarray:
    """The powder pattern of a crystallite over :data:`GROUP_Q_RANGE` (1/Å), maximum 1.

    Notes
    -----
    Introduced in Chapter 8.
    """
    from crystal_course.powder import powder_pattern

    return powder_pattern(atoms, np.linspace(*GROUP_Q_RANGE, n_q))


def _group_chunk(config: GroupConfig, split: str, keys: list[tuple[int, int]]) -> dict:
    from crystal_course.zone_axis import crystallite

    geometry = config.zone_axis()
    clusters = [crystallite(geometry, split, cls, parent) for cls, parent in keys]
    return {
        "x": np.stack([group_pattern(c, config.n_q) for c in clusters]).astype(np.float32),
        "y": np.array([cls for cls, _ in keys], dtype=np.int16),
        "parent": np.array([parent for _, parent in keys], dtype=np.int32),
        "space_group": np.array([config.space_groups[c] for c, _ in keys], dtype=np.int16),
        "n_atoms": np.array([len(c) for c in clusters], dtype=np.int32),
    }


def generate_groups(path, config: GroupConfig, n_jobs: int | None = None, progress: bool = True,
                    client=None, allow_other_files: bool = False):  # fmt: skip
    """Generate (or finish) the powder patterns of a zone-axis dataset's crystallites.

    The machinery of :func:`crystal_course.dataset.generate` (atomic chunks, a
    manifest, resume); ``x`` holds the patterns (:func:`group_pattern`), rows as in
    the zone-axis dataset of the same parameters.

    Notes
    -----
    Introduced in Chapter 8.
    """
    from dataclasses import asdict
    from functools import partial

    from crystal_course import dataset
    from crystal_course.structures import crystal_system

    names = [f"{g} ({crystal_system(g)})" for g in config.space_groups]
    return dataset.generate_kind(path, "powder_groups", GROUP_FORMAT_VERSION, config,
                                 asdict(config), names, ("numpy", "ase", "spglib", "pyxtal"),
                                 partial(_group_chunk, config), n_jobs, progress, client,
                                 allow_other_files)  # fmt: skip


def unknown_group_patterns(config: GroupConfig, per_group: int, seed: int = 0) -> dict:
    """Powder patterns of random crystals of :data:`UNKNOWN_GROUPS`, cut as the 20's are.

    Returns
    -------
    dict
        ``{space group: (per_group, n_q) float32}``.

    Notes
    -----
    Introduced in Chapter 8.
    """
    from crystal_course.structures import random_crystal, standard_conventional_cell
    from crystal_course.zone_axis import spherical_cluster

    out = {}
    for group in UNKNOWN_GROUPS:
        rows = []
        for k in range(per_group):
            rng = np.random.default_rng(np.random.SeedSequence([seed, 12, group, k]))
            drawn = random_crystal(group, rng, max_atoms=config.max_atoms)
            cell = standard_conventional_cell(drawn)
            rows.append(group_pattern(spherical_cluster(cell, config.n_atoms), config.n_q))
        out[group] = np.stack(rows).astype(np.float32)
    return out


def train_group_classifier(path, seed: int = 0, epochs: int = 20, batch_size: int = 32,
                           learning_rate: float = 1e-3, unknown_per_group: int = 20,
                           passes: int = MC_PASSES) -> dict:  # fmt: skip
    """Train the powder CNN on the 20 groups' patterns; one run in Chapter 7's card layout.

    The recipe of Chapter 7's spots + CNN (Adam, lr, batch size, epochs, the same seeded
    tenth of the training crystals validating), on the powder patterns of the same
    crystals; trained from scratch. The run records, as Chapter 7's runs do, the
    predicted and true group of every test crystal per split, so
    :func:`crystal_course.reproduction.compare_cells` pairs it with any of them, and
    also the predictive entropies (Monte Carlo dropout, ``passes``) of the validation
    and pristine test crystals and of :func:`unknown_group_patterns`, with the
    "unknown" threshold chosen on the validation crystals.

    Returns
    -------
    dict
        A run: ``inputs`` ``"powder"``, ``model`` ``"powder_cnn"``, ``n_groups``,
        ``seed``, ``predicted``, ``y``, ``top1_by_split``, ``history``,
        ``training_seconds``, ``unknown``, ...

    Notes
    -----
    Introduced in Chapter 8.
    """
    import time

    from crystal_course import dataset, training
    from crystal_course.uncertainty import unknown_rule

    manifest = dataset.verify(path, kind="powder_groups")
    config = GroupConfig(**manifest["parameters"])
    train = dataset.load(path, "train")
    x, y = train.x[..., None], train.y.astype(np.int64)
    n_groups = len(config.space_groups)
    model, architecture = build_classifier("powder_cnn", config.n_q, n_groups, seed)
    start = time.perf_counter()
    history = training.train(model, x, y, epochs, batch_size, validation_fraction=0.1,
                             seed=seed, learning_rate=learning_rate, verbose=0,
                             strategy=None)  # fmt: skip
    seconds = time.perf_counter() - start
    _, held = training.split_indices(len(x), 0.1, seed)
    validation_entropy = entropies(model, x[held], passes, seed)
    rule = unknown_rule(validation_entropy, FALSE_UNKNOWN)
    predicted, truth = {}, {}
    for split in manifest["splits"][1:]:
        test = dataset.load(path, split)
        p = model.predict(test.x[..., None], batch_size=256, verbose=0)
        predicted[split], truth[split] = p.argmax(axis=1).tolist(), test.y.astype(int).tolist()
    pristine = dataset.load(path, "test_pristine").x[..., None]
    unknowns = unknown_group_patterns(config, unknown_per_group, seed)

    def rounded(h):
        return np.round(h, 4).tolist()

    return {
        "inputs": "powder", "model": "powder_cnn", "n_groups": n_groups, "seed": seed,
        "variant": "", "transferred_from": None, "architecture": architecture,
        "recipe": {"epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
                   "validation_fraction": 0.1},
        "n_train": len(x), "n_test": len(truth["test_pristine"]),
        "n_parameters": int(model.count_params()), "training_seconds": round(seconds, 1),
        "history": {k: [round(float(v), 5) for v in vals]
                    for k, vals in history.history.items()},
        "predicted": predicted, "y": truth,
        "top1_by_split": {s: float(np.mean(np.equal(predicted[s], truth[s]))) for s in truth},
        "unknown": {"score": "predictive_entropy", "passes": passes,
                    "threshold": rule.threshold, "false_unknown": rule.false_unknown,
                    "validation": rounded(validation_entropy),
                    "test_pristine": rounded(entropies(model, pristine, passes, seed)),
                    "groups": {str(g): rounded(entropies(model, u[..., None], passes, seed))
                               for g, u in unknowns.items()}},
    }  # fmt: skip


GROUP_CARD = "group_powder.json"
"""Chapter 8's card of the powder CNN on the 20 groups (in ``crystal_course/data``)."""


def group_card(path, card_path, seeds=(0, 1, 2), epochs: int = 20, progress: bool = True,
               unknown_per_group: int = 20, passes: int = MC_PASSES) -> dict:  # fmt: skip
    """Train :func:`train_group_classifier` for each seed not yet in the card; resumable.

    The card (JSON) is rewritten atomically after every seed, so an interrupted run
    loses at most the seed in progress.

    Notes
    -----
    Introduced in Chapter 8.
    """
    import json
    from pathlib import Path

    from crystal_course import __version__, dataset

    manifest = dataset.verify(path, kind="powder_groups")
    card_path = Path(card_path)
    card = (json.loads(card_path.read_text(encoding="utf-8")) if card_path.exists()
            else {"dataset": {"name": Path(path).name, "format": manifest["format"],
                              **manifest["parameters"]}, "q_range": list(GROUP_Q_RANGE),
                  "runs": []})  # fmt: skip
    if card["dataset"]["format"] != manifest["format"] or any(
        card["dataset"][k] != v for k, v in manifest["parameters"].items()
    ):
        raise ValueError(f"{card_path} holds runs of another dataset than {path}")
    done = {r["seed"] for r in card["runs"]}
    for seed in seeds:
        if seed in done:
            continue
        if progress:
            print(f"training the powder CNN on {path}, seed {seed}", flush=True)
        run = train_group_classifier(path, seed, epochs, unknown_per_group=unknown_per_group,
                                     passes=passes)  # fmt: skip
        card["runs"] = sorted([*card["runs"], run], key=lambda r: r["seed"])
        card["versions"] = {"crystal_course": __version__}
        text = (json.dumps(card, indent=1, sort_keys=True) + "\n").encode()
        dataset._write_atomic(card_path, lambda handle, text=text: handle.write(text))
    return card


def read_group_card(name: str = GROUP_CARD) -> dict:
    """The shipped card of :func:`group_card` (``crystal_course/data/NAME``).

    Notes
    -----
    Introduced in Chapter 8.
    """
    from crystal_course.dataset import read_card

    return read_card(name, (GROUP_CARD,))


def main(argv: list[str] | None = None) -> int:
    """Generate an orientation-free dataset (``generate PATH``), train a classifier on it
    (``train PATH --classifier NAME --out DIR``), choose the 2018 CNN's unknown threshold
    (``threshold``), or run the powder CNN on the 20 groups of Chapter 7's study
    (``groups PATH --card FILE``)."""
    import argparse
    import shlex
    import sys
    from pathlib import Path

    from crystal_course.dataset import (
        add_cluster_arguments,
        non_negative_int,
        positive_int,
        run_generator,
    )

    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m crystal_course.invariant",
                                     description=main.__doc__)  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="generate (or resume) an orientation-free dataset")
    gen.add_argument("path")
    gen.add_argument("--n-per-class", type=positive_int, required=True)
    gen.add_argument("--n-test-per-class", type=positive_int, required=True)
    gen.add_argument("--seed", type=non_negative_int, default=0)
    add_cluster_arguments(gen)
    fit = sub.add_parser("train", help="train a classifier and save it with its card")
    fit.add_argument("path")
    fit.add_argument("--classifier", choices=CLASSIFIERS, required=True)
    fit.add_argument("--out", required=True, help="directory for NAME.weights.h5 and NAME.json")
    fit.add_argument("--epochs", type=positive_int, default=30)
    fit.add_argument("--seed", type=non_negative_int, default=0)
    fit.add_argument("--overwrite", action="store_true",
                     help="replace a model already saved in --out")  # fmt: skip
    limit = sub.add_parser("threshold", help="choose the 2018 CNN's unknown threshold on the "
                           "validation crystals and write it into its card")  # fmt: skip
    limit.add_argument("path")
    limit.add_argument("--card", required=True, help="the 2018 CNN's card (NAME.json)")
    limit.add_argument("--seed", type=non_negative_int, default=0)
    groups = sub.add_parser("groups", help="powder patterns of a zone-axis results card's "
                            "crystals (generate or resume), then the powder CNN on the 20 "
                            "groups for every seed not yet in --card")  # fmt: skip
    groups.add_argument("path", help="folder of the powder patterns")
    groups.add_argument("--card", required=True, help="the card to write or extend (JSON)")
    groups.add_argument("--seeds", type=non_negative_int, nargs="+", default=[0, 1, 2])
    groups.add_argument("--epochs", type=positive_int, default=20)
    add_cluster_arguments(groups)
    args = parser.parse_args(argv)
    if args.command == "groups":
        from crystal_course.reproduction import STUDY_CARD, card

        def generate_groups_with(client):
            generate_groups(args.path, GroupConfig.like(card(STUDY_CARD)["dataset"]),
                            args.n_jobs, not args.no_progress, client,
                            allow_other_files=args.allow_other_files)  # fmt: skip

        run_generator(groups, args, generate_groups_with)
        try:
            written = group_card(args.path, args.card, tuple(args.seeds), args.epochs,
                                 not args.no_progress)  # fmt: skip
        except (ValueError, OSError) as error:
            groups.error(str(error))
        for run in written["runs"]:
            print(f"seed {run['seed']}: top-1 {run['top1_by_split']['test_pristine']:.3f}")
        return 0
    if args.command == "generate":

        def generate_with(client):
            config = Config(args.n_per_class, args.n_test_per_class, seed=args.seed)
            generate(args.path, config, args.n_jobs, not args.no_progress, client,
                     allow_other_files=args.allow_other_files)  # fmt: skip

        return run_generator(gen, args, generate_with)
    from crystal_course import __version__, training

    if args.command == "threshold":
        import json

        try:
            card = json.loads(Path(args.card).read_text(encoding="utf-8"))
            weights = Path(args.card).with_suffix(".weights.h5")
            from crystal_course import models

            entry = fingerprint_threshold(args.path, args.seed, models.load(weights))
        except (ValueError, OSError) as error:
            limit.error(str(error))
        entry["command"] = "python -m crystal_course.invariant " + shlex.join(argv)
        training._write_json(Path(args.card), {**card, "unknown": entry})
        print(f"{args.card}: unknown above entropy {entry['threshold']:.4f} nats")
        return 0
    weights = Path(args.out) / f"{args.classifier}.weights.h5"
    if weights.exists() and not args.overwrite:
        fit.error(f"{weights} exists: choose another --out, or pass --overwrite to replace it")
    try:
        model, card = train_classifier(args.path, args.classifier, args.epochs, args.seed,
                                       verbose=2)  # fmt: skip
    except (ValueError, OSError) as error:
        fit.error(str(error))
    import keras
    import tensorflow as tf

    card["command"] = "python -m crystal_course.invariant " + shlex.join(argv)
    card["versions"] = {"crystal_course": __version__, "keras": keras.__version__,
                        "tensorflow": tf.__version__, "numpy": np.__version__}  # fmt: skip
    training.save_model(model, weights, card)
    print(f"saved {weights} and its card; test accuracy {card['test_accuracy']}")
    return 0


if __name__ == "__main__":
    import sys

    from crystal_course import invariant

    sys.exit(invariant.main())
