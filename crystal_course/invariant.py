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

FORMAT_VERSION = 1
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
    Each crystal is stored as its powder pattern (``x``), its atom-averaged SOAP
    (``soap``) and its 2018 fingerprint (``fingerprint``).

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
        return np.linspace(*Q_RANGE, self.n_q)


def _item(config: Config, split: str, cls: int, parent: int):
    from crystal_course.dataset import _GROUPS_OF_CLASS
    from crystal_course.diffraction import fingerprint
    from crystal_course.powder import powder_pattern
    from crystal_course.structures import (
        add_displacements,
        add_vacancies,
        nearest_neighbour_distance,
        sample_structure,
    )

    base = config.base()
    groups = _GROUPS_OF_CLASS[cls]
    group = groups[parent % len(groups)]
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 0, cls, parent]))
    atoms = sample_structure(group, rng, n_atoms=config.n_atoms,
                             standardise=split == "test_standard")  # fmt: skip
    if split == "train_damaged":
        defect_rng = np.random.default_rng(np.random.SeedSequence([config.seed, 8, cls, parent]))
        vacancies, displacements = defect_rng.uniform(0, 1, 2) * config.train_damage
    else:
        vacancies, displacements = base.defects(split)
    if split.startswith(("test_vacancies_", "test_displacements_")):
        defect_rng = np.random.default_rng(
            np.random.SeedSequence([config.seed, 1, base.splits.index(split), cls, parent])
        )
    if vacancies or displacements:
        atoms = add_displacements(add_vacancies(atoms, vacancies, defect_rng), displacements,
                                  defect_rng)  # fmt: skip
    # q in 1/(nearest-neighbour distance): the pattern at q / d_nn in 1/Å, so the peaks of a
    # class sit at the same q for every element while the form factors stay the element's
    pattern = powder_pattern(atoms, config.q() / nearest_neighbour_distance(atoms))
    return atoms, pattern, fingerprint(atoms), group


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
