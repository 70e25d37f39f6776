"""Zone-axis patterns, their datasets and the Chapter 6 experiment (Tiong et al. 2020).

Tiong, Kim, Han & Kim (npj Comput. Mater. 6, 196 (2020)) record three
diffraction patterns of a crystal at a wavelength of 3.5 pm (in Condor, an X-ray
imaging code), with the beam along the Cartesian x, y and z axes of its Materials
Project conventional cell, at its physical size (no nearest-neighbour rescaling,
unlike the 2018 fingerprint). The course puts the beam along three zone axes of
spglib's standard conventional cell instead, by default three that no symmetry of
the crystal system relates (:data:`DISTINCT_ZONE_AXES`). This module makes
those patterns (:func:`patterns`), stores them with their shaped versions in
checksummed, resumable datasets (:func:`generate`), and trains and scores the
classifiers of Chapter 6 on them (:func:`experiment`), with a results card for
the long runs (:func:`main`). Shaping itself is :mod:`crystal_course.shaping`,
the multi-stream DenseNet :func:`crystal_course.models.msdn`.

Introduced in Chapter 6.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache, partial
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from ase import Atoms

from crystal_course.dataset import check_distinct_splits, read_manifest
from crystal_course.diffraction import ANGSTROM, Detector, diffraction_pattern
from crystal_course.structures import check_n_atoms

WAVELENGTH = 3.5e-12
"""Wavelength of the zone-axis patterns of Tiong et al. (2020), in m (computed with
the X-ray form factors of Chapter 1)."""

ZONE_AXES = ("[100]", "[010]", "[001]")
"""The beams of ``zone_axes="cell"``: the conventional cell's a, b and c axes, in the
order of the pattern channels."""

DISTINCT_ZONE_AXES: dict[str, tuple[tuple[int, int, int], ...]] = {
    "triclinic": ((1, 0, 0), (0, 1, 0), (0, 0, 1)),
    "monoclinic": ((1, 0, 0), (0, 1, 0), (0, 0, 1)),
    "orthorhombic": ((1, 0, 0), (0, 1, 0), (0, 0, 1)),
    "tetragonal": ((0, 0, 1), (1, 0, 0), (1, 1, 0)),
    "trigonal": ((0, 0, 1), (1, 0, 0), (1, 2, 0)),
    "hexagonal": ((0, 0, 1), (1, 0, 0), (1, 2, 0)),
    "cubic": ((0, 0, 1), (0, 1, 1), (1, 1, 1)),
}
"""Three zone axes [uvw] per crystal system that no symmetry of the system maps onto
each other (the course's choice, the default ``zone_axes="distinct"``). In the
tetragonal, trigonal, hexagonal and cubic systems [100] and [010] are equivalent, so
the cell axes show only two distinct zones there (one for cubic). Trigonal and
hexagonal cells are in hexagonal axes (spglib's standard cell), where [120] is
perpendicular to [100]: with a along x, the three are the Cartesian z, x and y axes,
the paper's."""

ZONE_AXIS_CHOICES = ("distinct", "cell")
"""``"distinct"``: :data:`DISTINCT_ZONE_AXES` of the crystal's system; ``"cell"``: the
cell axes [100], [010], [001] (:data:`ZONE_AXES`), the course's earlier choice."""


def zone_axes(system: str, choice: str = "distinct") -> tuple[tuple[int, int, int], ...]:
    """The three beam directions [uvw] of a crystal system's patterns.

    Parameters
    ----------
    system : str
        A crystal system (:func:`crystal_course.structures.crystal_system`).
    choice : {"distinct", "cell"}, default "distinct"
        See :data:`ZONE_AXIS_CHOICES`.

    Returns
    -------
    tuple of (u, v, w)
        In the order of the pattern channels.

    Notes
    -----
    Introduced in Chapter 6.
    """
    if choice not in ZONE_AXIS_CHOICES:
        raise ValueError(f"zone_axes must be one of {ZONE_AXIS_CHOICES}, got {choice!r}")
    if system not in DISTINCT_ZONE_AXES:
        raise ValueError(f"system must be one of {sorted(DISTINCT_ZONE_AXES)}, got {system!r}")
    return DISTINCT_ZONE_AXES[system] if choice == "distinct" else DISTINCT_ZONE_AXES["triclinic"]


def axis_label(uvw) -> str:
    """``[uvw]`` as text, e.g. ``"[120]"`` (``"[1-10]"`` for a negative index)."""
    return "[" + "".join(str(int(i)) for i in uvw) + "]"


Q_MAX = 6.0
"""Default field of view: the scattering vector at the middle of a detector
edge, in 1/Å of the physical crystal (spacings down to 2 pi / 6 = 1.05 Å)."""


def detector(n_pixels: int = 64, q_max: float = Q_MAX, distance: float = 0.1) -> Detector:
    """A detector for zone-axis patterns: λ = 3.5 pm and the edge at ``q_max``.

    Parameters
    ----------
    n_pixels : int, default 64
        Pixels per side.
    q_max : float, default :data:`Q_MAX`
        Scattering vector at the middle of an edge, in 1/Å of the physical
        crystal.
    distance : float, default 0.1
        Sample-to-detector distance, in m.

    Notes
    -----
    Introduced in Chapter 6. The pixel size follows from the rest, so changing
    ``n_pixels`` changes the resolution, not the field of view.
    """
    k = 2 * math.pi / (WAVELENGTH / ANGSTROM)
    if not (isinstance(q_max, Real) and 0 < q_max < k):
        raise ValueError(f"q_max must be in (0, {k:.0f}) 1/Å, got {q_max!r}")
    if isinstance(n_pixels, bool) or not isinstance(n_pixels, Integral) or n_pixels < 8:
        raise ValueError(f"n_pixels must be an integer >= 8, got {n_pixels!r}")
    pixel_size = math.tan(2 * math.asin(q_max / (2 * k))) * distance / (n_pixels / 2)
    return Detector(int(n_pixels), pixel_size, distance, WAVELENGTH)


_detector = detector  # patterns() has a parameter of the same name


def spherical_cluster(atoms: Atoms, n_atoms: int = 500) -> Atoms:
    """A roughly spherical crystallite of about ``n_atoms`` atoms cut from a periodic cell.

    The cell is repeated to about 2.5 times ``n_atoms``
    (:func:`crystal_course.structures.supercell`) and the atoms within the
    radius that holds ``n_atoms`` at the crystal's density, around the centre
    of the block, are kept. Its cell stays the supercell, whose axes are
    parallel to those of ``atoms``.

    Notes
    -----
    Introduced in Chapter 6. A sphere keeps the spots round; a box adds
    streaks along its edges.
    """
    from crystal_course.structures import check_atoms, supercell

    check_atoms(atoms)
    if check_n_atoms(n_atoms) < 2:
        raise ValueError(f"n_atoms must be an integer >= 2, got {n_atoms!r}")
    volume = abs(np.linalg.det(np.asarray(atoms.cell)))
    if volume < 1e-8:
        raise ValueError("atoms must have a 3D cell")
    radius = (3 * n_atoms * volume / len(atoms) / (4 * math.pi)) ** (1 / 3)
    block = supercell(atoms, int(2.5 * n_atoms))
    centre = np.asarray(block.cell).sum(axis=0) / 2
    keep = np.linalg.norm(block.positions - centre, axis=1) <= radius
    return block[keep]


def beam_rotation(cell, axis) -> np.ndarray:
    """The rotation that puts the lattice direction ``axis`` of ``cell`` along the beam.

    The detector's beam runs along +z. The rotation ``R`` (a position ``x``
    goes to ``R @ x``) takes the lattice vector ``t = u a + v b + w c`` to +z.
    For ``axis`` = 0, 1 or 2 (the cell vector ``a_k``: [100], [010], [001]) the
    part of the next vector ``a_(k+1)`` perpendicular to it goes to +x; for a
    direction ``[u, v, w]`` whose largest index is the ``k``-th, the part of the
    first of ``a_(k+1)``, ``a_(k+2)``, ``a_k`` that is not parallel to it (so
    [100], [010] and [001] give the rotations of 0, 1 and 2). Every pattern so has
    a defined in-plane orientation. For any cell, monoclinic and triclinic
    included, this is an exact zone axis: the spots are the reciprocal-lattice
    points ``g`` with ``g . t = 0``.

    Parameters
    ----------
    cell : (3, 3) array_like
        Lattice vectors as rows, in Å.
    axis : int or sequence of 3 int
        0, 1 or 2 (a cell vector), or a direction [uvw].

    Returns
    -------
    numpy.ndarray
        ``(3, 3)`` proper rotation matrix.

    Notes
    -----
    Introduced in Chapter 6.
    """
    cell = np.asarray(cell, dtype=float)
    if cell.shape != (3, 3) or abs(np.linalg.det(cell)) < 1e-8:
        raise ValueError(f"cell must be a (3, 3) array of non-coplanar rows, got {cell.shape}")
    if isinstance(axis, Integral) and not isinstance(axis, bool):
        if axis not in (0, 1, 2):
            raise ValueError(f"axis must be 0, 1 or 2, got {axis!r}")
        beam = cell[axis] / np.linalg.norm(cell[axis])
        candidates = [cell[(axis + 1) % 3]]
    else:
        uvw = np.asarray(axis)
        if uvw.shape != (3,) or not np.issubdtype(uvw.dtype, np.integer) or not uvw.any():
            raise ValueError(f"axis must be 0, 1, 2 or three integers [u, v, w], not all 0; "
                             f"got {axis!r}")  # fmt: skip
        beam = uvw @ cell
        beam = beam / np.linalg.norm(beam)
        start = int(np.argmax(np.abs(uvw))) + 1  # [100], [010], [001] as for 0, 1, 2
        candidates = [cell[(start + i) % 3] for i in range(3)]
    for vector in candidates:
        up = vector - (vector @ beam) * beam
        if np.linalg.norm(up) > 1e-6 * np.linalg.norm(vector):
            break
    up /= np.linalg.norm(up)
    return np.array([up, np.cross(beam, up), beam])


def patterns(
    atoms: Atoms,
    detector: Detector | None = None,
    n_atoms: int = 500,
    beam_stop: float = 3.0,
    as_cluster: bool = False,
    method: str = "direct",
    rescale: bool = False,
    axes=None,
) -> np.ndarray:
    """Three zone-axis patterns of a crystal, scaled to 0-255.

    The crystal's standard conventional cell (spglib) is cut into a sphere of
    about ``n_atoms`` atoms (:func:`spherical_cluster`) and its kinematic
    pattern computed at its physical size
    (:func:`crystal_course.diffraction.diffraction_pattern` with
    ``rescale=False``), with the beam along each of three zone axes
    (:func:`beam_rotation`): by default the three symmetry-distinct ones of the
    crystal's system (:func:`zone_axes`). The direct beam is blocked (a disc of
    ``beam_stop`` pixels per 64 pixels of detector), then each pattern is
    scaled linearly so that its brightest pixel is 255 and rounded, like an
    8-bit image.

    Parameters
    ----------
    atoms : ase.Atoms
        A periodic crystal (any cell; it is standardised first).
    detector : Detector, optional
        Default :func:`detector` ``(64)``.
    n_atoms : int, default 500
        Cluster size (bigger: sharper spots).
    beam_stop : float, default 3.0
        Radius of the blocked centre, in pixels of a 64-pixel detector.
    as_cluster : bool, default False
        ``atoms`` is already the crystallite, its cell the standard conventional
        cell's axes (e.g. a :func:`spherical_cluster` with vacancies): use it as
        it is.
    method : str, default "direct"
        See :func:`crystal_course.diffraction.diffraction_pattern`. A sphere
        fills only half of its lattice block, so the direct sum is the faster
        one here.
    rescale : bool, default False
        Scale the crystal to unit nearest-neighbour distance first, as the 2018
        fingerprint does (and an earlier version of this course did here);
        ``q_max`` is then in units of the scaled crystal.
    axes : sequence of 3, optional
        The beams: cell-vector indices (0, 1, 2) or directions [uvw] of the
        standard conventional cell. Default: ``zone_axes(system)`` of the crystal's
        space group (spglib); required with ``as_cluster``.

    Returns
    -------
    numpy.ndarray
        ``(n, n, 3)`` float32 in [0, 255]; channel k has the beam along
        ``axes[k]``.

    Raises
    ------
    ValueError
        If a pattern is dark outside the beam stop, or ``as_cluster`` is given
        without ``axes``.

    Notes
    -----
    Introduced in Chapter 6.
    """
    from crystal_course.structures import crystal_system, space_group, standard_conventional_cell

    detector = detector or _detector()
    if axes is None:
        if as_cluster:
            raise ValueError("a cluster (as_cluster=True) needs its axes: e.g. "
                             "axes=zone_axis.zone_axes(system)")  # fmt: skip
        axes = zone_axes(crystal_system(space_group(atoms)))
    if len(axes) != 3:
        raise ValueError(f"axes must hold three beam directions, got {axes!r}")
    cluster = atoms if as_cluster else spherical_cluster(standard_conventional_cell(atoms), n_atoms)
    n = detector.n_pixels
    rows, cols = np.mgrid[0:n, 0:n] - detector.center
    open_ = np.hypot(rows, cols) > beam_stop * n / 64
    out = np.empty((n, n, 3), dtype=np.float32)
    for k, axis in enumerate(axes):
        rotation = beam_rotation(cluster.cell, axis)
        pattern = diffraction_pattern(cluster, detector, rotation, method, rescale=rescale)
        pattern *= open_
        peak = float(pattern.max())
        if not peak > 0:
            name = ZONE_AXES[axis] if isinstance(axis, Integral) else axis_label(axis)
            raise ValueError(f"the pattern with the beam along {name} is dark")
        out[..., k] = np.rint(255 * pattern / peak)
    return out


def node_counts(
    crystals,
    detector: Detector | None = None,
    threshold: float = 50,
    rescale: bool = False,
    n_atoms: int = 500,
) -> np.ndarray:
    """Nodes (spots at or above ``threshold``) of the three patterns of each crystal.

    Parameters
    ----------
    crystals : sequence of ase.Atoms
    detector : Detector, optional
        Default :func:`detector` ``(64)``.
    threshold : float, default 50
        Node threshold on the 0-255 scale (:func:`crystal_course.shaping.find_nodes`).
    rescale, n_atoms
        As in :func:`patterns`.

    Returns
    -------
    numpy.ndarray
        ``(len(crystals), 3)`` ints, one column per zone axis.

    Notes
    -----
    Introduced in Chapter 6, to choose the geometry: a shaped pattern needs
    enough nodes to draw a shape.
    """
    from crystal_course.shaping import count_nodes

    images = [patterns(c, detector, n_atoms, rescale=rescale) for c in crystals]
    return count_nodes(np.stack(images), threshold)


INPUTS: dict[str, str] = {
    "spots": "spot patterns R",
    "shaped": "R and S = R + lines, two channels per pattern",
    "rgb": "R + lines in the axis's colour (the paper's RGB)",
    "grey": "R + grey lines",
    "thresholded": "nodes only + grey lines",
    "faint": "R + thin, faint grey lines",
    "lines": "grey lines only, S - R",
}
"""The inputs of the Chapter 6 grid: the raw patterns; the shaped patterns with lines and
spots in separate channels, each pattern as its raw and its shaped image
(:func:`crystal_course.shaping.paired_shapes`, the course's form of the paper's idea);
the paper's own form, each pattern an RGB image with its lines in its axis's colour
(:func:`crystal_course.shaping.coloured_shapes`); the same lines in grey, added into the
spots' channel (the course's earlier input); grey lines over the thresholded pattern
(weak pixels deleted); the raw patterns with thinner, fainter grey lines
(:data:`FAINT_LINES`); and the grey lines alone (S - R): what the drawing adds to R.
All but the raw, grey and thresholded patterns are made from the stored ones when
loaded (:func:`load_split`)."""

FAINT_LINES: dict[str, float] = {"width": 0.5, "brightness": 0.5}
"""Line settings of the ``"faint"`` input (:func:`crystal_course.shaping.shape_pattern`):
half-width ``0.5 x (0.5 + w)`` pixels and half the brightness of the shaped input's."""

MODELS: dict[str, str] = {"cnn": "2018 CNN", "msdn": "MSDN"}
"""The two networks of the Chapter 6 grid."""

MAIN_METHODS: tuple[tuple[str, str], ...] = (("spots", "cnn"), ("shaped", "msdn"))
"""The baseline and the paper's method, ``(input, model)``."""


def cosine_similarity(images: np.ndarray) -> np.ndarray:
    """Cosine similarity of every pair of images (their pixels as vectors).

    Parameters
    ----------
    images : numpy.ndarray
        ``(N, ...)`` images, N >= 2.

    Returns
    -------
    numpy.ndarray
        ``(N, N)`` float32, with ``-inf`` on the diagonal so that an image is
        never its own nearest neighbour.

    Notes
    -----
    Introduced in Chapter 6 (Section 6.4).
    """
    flat = np.asarray(images).reshape(len(images), -1).astype(np.float32)
    if len(flat) < 2:
        raise ValueError(f"need at least 2 images, got {len(flat)}")
    flat /= np.linalg.norm(flat, axis=1, keepdims=True) + 1e-9
    similarity = flat @ flat.T
    np.fill_diagonal(similarity, -np.inf)
    return similarity


def nearest_other(images: np.ndarray) -> np.ndarray:
    """Index of each image's most similar other image (:func:`cosine_similarity`).

    Notes
    -----
    Introduced in Chapter 6 (Section 6.4).
    """
    return cosine_similarity(images).argmax(axis=1)


def shaped_inputs(spots: np.ndarray, threshold: float = 50, factor: float = 1.7) -> dict:
    """The grid's stored inputs from raw zone-axis patterns.

    Parameters
    ----------
    spots : numpy.ndarray
        ``(..., n, n, 3)`` patterns on the 0-255 scale (:func:`patterns`).
    threshold, factor : float
        As in :func:`crystal_course.shaping.shape_pattern`.

    Returns
    -------
    dict
        ``{"spots", "grey", "shaped", "rgb", "thresholded"}`` (:data:`INPUTS`) to
        float32 arrays: ``"shaped"`` ``(..., n, n, 6)``
        (:func:`crystal_course.shaping.paired_shapes`), ``"rgb"`` ``(..., n, n, 9)``
        (the paper's coloured lines, :func:`crystal_course.shaping.coloured_shapes`),
        the others of the shape of ``spots``.

    Notes
    -----
    Introduced in Chapter 6.
    """
    from crystal_course.shaping import coloured_shapes, paired_shapes, shape_patterns

    spots = np.asarray(spots, dtype=np.float32)
    kwargs = {"threshold": threshold, "factor": factor}
    grey = shape_patterns(spots, "raw", **kwargs)
    return {
        "spots": spots,
        "grey": grey,
        "shaped": paired_shapes(spots, grey),
        "rgb": coloured_shapes(spots, grey),
        "thresholded": shape_patterns(spots, "nodes", **kwargs),
    }


# ---------------------------------------------------------------------------
# Datasets
# ---------------------------------------------------------------------------

FORMAT_VERSION = 3
"""Version of the zone-axis dataset layout. 3: the beams of ``Config.zone_axes``
(default: three symmetry-distinct zone axes per crystal system). 2 (the results card's
data): physical-size crystals, beams along [100], [010], [001], shaped = raw + grey
lines, the thresholded input and node counts stored too."""


@dataclass(frozen=True)
class Config:
    """Parameters of a zone-axis dataset; all go into the manifest.

    Attributes
    ----------
    space_groups : tuple of int
        The classes, e.g. ``structures.SPACE_GROUP_SETS[20]``.
    n_per_group : int
        Training crystals per space group.
    n_test_per_group : int
        Held-out crystals per space group; each test set has this many.
    vacancies : tuple of float
        Vacancy fractions of the defective test sets.
    seed : int
        Seed of every random step.
    n_pixels : int
        Detector side (:func:`detector`).
    q_max : float
        Field of view, in 1/Å (:func:`detector`).
    n_atoms : int
        Crystallite size.
    max_atoms : int
        Largest conventional cell of the random crystals.
    threshold, factor : float
        Shaping parameters (:func:`crystal_course.shaping.shape_pattern`).
    zone_axes : {"distinct", "cell"}
        The beams (:func:`zone_axes`).
    chunk_size : int
        Structures per stored chunk.
    """

    space_groups: tuple[int, ...]
    n_per_group: int
    n_test_per_group: int
    vacancies: tuple[float, ...] = (0.05, 0.1, 0.2)
    seed: int = 0
    n_pixels: int = 64
    q_max: float = Q_MAX
    n_atoms: int = 500
    max_atoms: int = 24
    threshold: float = 50.0
    factor: float = 1.7
    zone_axes: str = "distinct"
    chunk_size: int = 256
    splits: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        groups = tuple(int(g) for g in self.space_groups)
        if (
            len(groups) < 2
            or len(set(groups)) != len(groups)
            or not all(1 <= g <= 230 for g in groups)
        ):
            raise ValueError(f"space_groups must be >= 2 distinct numbers in 1..230, got {groups}")
        for name in ("n_per_group", "n_test_per_group", "n_pixels", "n_atoms", "chunk_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for v in self.vacancies:
            if not 0 < v < 1:
                raise ValueError(f"vacancy fractions must be in (0, 1), got {v!r}")
        detector(self.n_pixels, self.q_max)  # validates both
        if self.zone_axes not in ZONE_AXIS_CHOICES:
            raise ValueError(f"zone_axes must be one of {ZONE_AXIS_CHOICES}, got "
                             f"{self.zone_axes!r}")  # fmt: skip
        check_n_atoms(self.n_atoms)
        object.__setattr__(self, "space_groups", groups)
        object.__setattr__(self, "vacancies", tuple(float(v) for v in self.vacancies))
        object.__setattr__(self, "q_max", float(self.q_max))
        splits = ["train", "test_pristine"] + [f"test_vacancies_{v:g}" for v in self.vacancies]
        object.__setattr__(self, "splits", check_distinct_splits(splits))

    def parents(self, split: str) -> list[tuple[int, int]]:
        """``(class, parent index)`` of every crystal of a split."""
        if split == "train":
            indices = range(self.n_per_group)
        else:
            indices = range(self.n_per_group, self.n_per_group + self.n_test_per_group)
        return [(c, i) for c in range(len(self.space_groups)) for i in indices]


@lru_cache(maxsize=4096)
def _crystal(seed: int, group: int, parent: int, max_atoms: int):
    """The random crystal of one parent; cached because every test split reuses it."""
    from crystal_course.structures import random_crystal

    rng = np.random.default_rng(np.random.SeedSequence([seed, 6, group, parent]))
    return random_crystal(group, rng, max_atoms=max_atoms)


def _chunk(config: Config, split: str, keys: list[tuple[int, int]]) -> dict:
    from crystal_course.shaping import count_nodes
    from crystal_course.structures import add_vacancies, crystal_system, standard_conventional_cell

    geometry = detector(config.n_pixels, config.q_max)
    raw, n_atoms = [], []
    for cls, parent in keys:
        group = config.space_groups[cls]
        cell = _crystal(config.seed, group, parent, config.max_atoms)
        cluster = spherical_cluster(standard_conventional_cell(cell), config.n_atoms)
        if split.startswith("test_vacancies_"):
            fraction = float(split.rsplit("_", 1)[1])
            defect_rng = np.random.default_rng(
                np.random.SeedSequence([config.seed, 7, config.splits.index(split), group, parent])
            )
            cluster = add_vacancies(cluster, fraction, defect_rng)
        axes = zone_axes(crystal_system(group), config.zone_axes)
        raw.append(patterns(cluster, geometry, as_cluster=True, axes=axes))
        n_atoms.append(len(cluster))
    arrays = shaped_inputs(np.stack(raw), config.threshold, config.factor)
    return {
        "x": arrays["grey"].astype(np.uint8),
        "spots": arrays["spots"].astype(np.uint8),
        "thresholded": arrays["thresholded"].astype(np.uint8),
        "n_nodes": count_nodes(arrays["spots"], config.threshold).astype(np.int16),
        "y": np.array([cls for cls, _ in keys], dtype=np.int16),
        "parent": np.array([parent for _, parent in keys], dtype=np.int32),
        "space_group": np.array([config.space_groups[c] for c, _ in keys], dtype=np.int16),
        "n_atoms": np.array(n_atoms, dtype=np.int32),
    }


def generate(
    path: str | os.PathLike,
    config: Config,
    n_jobs: int | None = None,
    progress: bool = True,
    client=None,
    allow_other_files: bool = False,
) -> Path:
    """Generate (or finish) a zone-axis dataset: raw, shaped and thresholded patterns.

    The machinery of :func:`crystal_course.dataset.generate`: chunks written
    atomically, a manifest with parameters, versions and SHA-256 per chunk,
    resumable. Each chunk holds ``x`` (the patterns shaped with grey lines,
    S = min(R + lines, 255), ``(n, n, 3)`` uint8 0-255; the two-channel and
    the paper's coloured inputs are made from them when loaded, :func:`load_split`), ``spots`` (the
    raw patterns R, along the beams of ``config.zone_axes``), ``thresholded``
    (grey lines over the thresholded pattern), ``n_nodes`` (nodes per pattern),
    ``y`` (index into ``config.space_groups``) and per-crystal metadata. Test
    crystals are held-out parents; the vacancy test sets remove atoms from the
    test crystals' crystallites. Read a split with
    :func:`crystal_course.dataset.load`.

    ``n_jobs`` local processes, or a Dask ``client`` (a :class:`distributed.Client`),
    do the work, as in :func:`crystal_course.dataset.generate`: the same
    parameters give byte-identical chunks either way. As there, a directory with
    other files and no dataset is refused unless ``allow_other_files``, and a
    complete dataset is left untouched.

    Notes
    -----
    Introduced in Chapter 6.
    """
    from crystal_course import cluster, dataset
    from crystal_course.structures import crystal_system

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    params = asdict(config)
    params.pop("splits")
    versions = cluster.versions(("numpy", "ase", "spglib", "pyxtal"))
    manifest = {
        "format": FORMAT_VERSION,
        "kind": "zone_axis",
        "parameters": params,
        "splits": list(config.splits),
        "split_sizes": {split: len(config.parents(split)) for split in config.splits},
        "class_names": [f"{g} ({crystal_system(g)})" for g in config.space_groups],
        "versions": versions,
        "chunks": {},
    }
    keys = {split: config.parents(split) for split in config.splits}
    todo = dataset._resume(path, manifest, keys, config.chunk_size, allow_other_files)
    dataset._fill(path, manifest, todo, partial(_chunk, config), n_jobs, progress, client)
    return path


def default_path(settings) -> Path:
    """Where Chapter 6 keeps its dataset: mode, seed and format in the folder name.

    Notes
    -----
    Introduced in Chapter 6.
    """
    return Path(settings.data_dir) / (
        f"zone-axis-{settings.mode}-seed{settings.seed}-format{FORMAT_VERSION}"
    )


# ---------------------------------------------------------------------------
# The experiment: inputs x networks, trained alike
# ---------------------------------------------------------------------------

MSDN_SIZES: dict[str, dict] = {
    "quick": {"blocks": (2, 2), "growth": 12, "stem_filters": 16},
    "full": {"blocks": (3, 6, 12, 8), "growth": 32, "stem_filters": 32},
}
"""Trunk of :func:`crystal_course.models.msdn` per mode: a small one for CPU
minutes, and four dense blocks (the paper's number) of 3, 6, 12 and 8 layers with
growth 32 (our sizes: the paper's text does not state them)."""

PAPER_TOP1: dict[int, float] = {8: 0.9904, 20: 0.9501, 49: 0.8316, 72: 0.8012}
"""Top-1 accuracy of shaped patterns + MSDN in Tiong et al. (2020) per number of
space groups (their Materials Project data, not ours)."""


@dataclass(frozen=True)
class Recipe:
    """How every classifier of Chapter 6 is trained (the same for all inputs and networks).

    Attributes
    ----------
    epochs : int
        Passes over the training share (after the transfer stage, if any).
    batch_size : int
        Samples per batch on each device (on a multi-GPU node the global batch is
        this times the GPUs; see :func:`crystal_course.training.train`).
    learning_rate : float
        Adam's learning rate (the paper: 1e-5 for the MSDN, 1e-4 for the
        baselines, for long training; the course's default 1e-3 suits short runs).
    weight_decay : float
        Adam's weight decay for the MSDN (the paper's 1e-7); the 2018 CNN keeps
        its own recipe, Adam without decay.
    batch_norm : bool
        Batch normalisation in the MSDN's trunk, the course's choice (as in the
        original DenseNet). The paper's dense layers are conv, ReLU and dropout;
        Chapter 6 measures both.
    validation_fraction : float
        Share of the training crystals kept for validation (the paper's 1/10).
    train_per_group : int, optional
        Train on the first this many training crystals of each group (default:
        all of them); the test crystals stay the same, so runs that differ only
        here measure how accuracy grows with the size of the training set.

    Notes
    -----
    Introduced in Chapter 6.
    """

    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 1e-7
    batch_norm: bool = True
    validation_fraction: float = 0.1
    train_per_group: int | None = None

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "train_per_group"):
            value = getattr(self, name)
            if name == "train_per_group" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not self.learning_rate > 0 or self.weight_decay < 0:
            raise ValueError("learning_rate must be > 0 and weight_decay >= 0")
        if not 0 <= self.validation_fraction < 1:
            raise ValueError(
                f"validation_fraction must be in [0, 1), got {self.validation_fraction}"
            )

    @property
    def variant(self) -> str:
        """What differs from the default recipe, e.g. ``"no batch norm, lr 1e-05"`` (or ``""``)."""
        default, parts = Recipe(), []
        if self.batch_norm != default.batch_norm:
            parts.append("batch norm" if self.batch_norm else "no batch norm")
        if self.learning_rate != default.learning_rate:
            parts.append(f"lr {self.learning_rate:g}")
        if self.weight_decay != default.weight_decay:
            parts.append(f"weight decay {self.weight_decay:g}")
        if self.train_per_group is not None:
            parts.append(f"{self.train_per_group} train/group")
        return ", ".join(parts)


@dataclass(frozen=True)
class Result:
    """Predictions of one trained Chapter 6 classifier on every test split.

    Attributes
    ----------
    inputs, model : str
        Keys of :data:`INPUTS` and :data:`MODELS`.
    seed : int
    space_groups : tuple of int
        The classes, in label order.
    y : dict of str to numpy.ndarray
        True labels per test split (the same crystals, in the same order, in every split).
    probabilities : dict of str to numpy.ndarray
        ``(N, n_classes)`` predicted probabilities per test split.
    n_train : int
        Training crystals (a share of them validate rather than fit).
    seconds : float
        Training wall time, transfer stage excluded.
    n_parameters : int
    history : dict of str to list
        Per epoch: ``loss``, ``val_loss``, ``accuracy``, ``val_accuracy``.
    recipe : Recipe
    transferred_from : int or None
        Number of space groups of the model whose weights started this one.

    Notes
    -----
    Introduced in Chapter 6.
    """

    inputs: str
    model: str
    seed: int
    space_groups: tuple[int, ...]
    y: dict
    probabilities: dict
    n_train: int
    seconds: float
    n_parameters: int
    history: dict
    recipe: Recipe
    transferred_from: int | None = None

    @property
    def label(self) -> str:
        """``"<input> + <network>"`` for tables and legends."""
        return f"{INPUTS[self.inputs]} + {MODELS[self.model]}"

    def predicted(self, split: str = "test_pristine") -> np.ndarray:
        """Predicted labels on one split."""
        return self.probabilities[split].argmax(axis=1)

    def top_k(self, k: int = 1, split: str = "test_pristine") -> float:
        """Top-``k`` accuracy on one split (:func:`crystal_course.training.top_k_accuracy`)."""
        from crystal_course.training import top_k_accuracy

        return top_k_accuracy(self.probabilities[split], self.y[split], k)

    def accuracy(self, split: str = "test_pristine"):
        """Top-1 accuracy and its Wilson interval (``uncertainty.Accuracy``)."""
        from crystal_course.uncertainty import from_predictions

        return from_predictions(self.predicted(split), self.y[split])

    def retained(self) -> dict:
        """:func:`conditional_vacancy_accuracy` of this run (the paper's Fig. 9 measure)."""
        predicted = {split: self.predicted(split) for split in self.probabilities}
        return conditional_vacancy_accuracy(predicted, self.y)

    def systems(self, split: str = "test_pristine") -> tuple[np.ndarray, np.ndarray]:
        """True and predicted crystal systems (names) of every test crystal."""
        from crystal_course.structures import crystal_system

        groups = np.asarray(self.space_groups)
        return (
            np.array([crystal_system(int(g)) for g in groups[self.y[split]]]),
            np.array([crystal_system(int(g)) for g in groups[self.predicted(split)]]),
        )

    def system_confusion(self, split: str = "test_pristine"):
        """Crystal-system confusion table: rows true, columns predicted (``pandas.DataFrame``)."""
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
        hit = self.predicted(split) == self.y[split]
        order = list(dict.fromkeys(self.system_confusion(split).index))
        return {name: float(hit[true == name].mean()) for name in order if (true == name).any()}

    def summary(self) -> dict:
        """JSON-ready record: recipe, numbers, learning curves and every prediction."""
        k_max = min(5, len(self.space_groups))
        return {
            "n_groups": len(self.space_groups),
            "inputs": self.inputs,
            "model": self.model,
            "seed": self.seed,
            "variant": self.recipe.variant,
            "recipe": asdict(self.recipe),
            "transferred_from": self.transferred_from,
            "n_train": self.n_train,
            "n_test": int(len(self.y["test_pristine"])),
            "n_parameters": self.n_parameters,
            "training_seconds": round(self.seconds, 1),
            "top_k": {str(k): round(self.top_k(k), 4) for k in range(1, k_max + 1)},
            "top1_by_split": {s: round(self.top_k(1, s), 4) for s in self.probabilities},
            "history": {k: [round(float(v), 5) for v in vs] for k, vs in self.history.items()},
            "y": {s: self.y[s].tolist() for s in self.y},
            "predicted": {s: self.predicted(s).tolist() for s in self.probabilities},
        }


def load_split(path, split: str, space_groups=None, needed=(), per_group: int | None = None
               ) -> tuple[dict, np.ndarray]:  # fmt: skip
    """The inputs and the labels of one split, restricted to ``space_groups``.

    Returns ``({"spots", "shaped", "grey", "thresholded"}: uint8 arrays, labels)``,
    ``"shaped"`` with 6 channels (three raw and shaped pairs), plus ``"rgb"`` (9
    channels: three RGB patterns), ``"faint"`` (shaped now, from the raw patterns)
    and ``"lines"`` (S - R) only when ``needed`` names them;
    labels index ``space_groups`` (default: all of the dataset's groups).
    ``per_group`` keeps the first that many crystals (parents) of each group.

    Notes
    -----
    Introduced in Chapter 6.
    """
    from crystal_course import dataset

    data = dataset.load(path, split)
    if data.manifest.get("kind") != "zone_axis" or data.manifest.get("format") != FORMAT_VERSION:
        raise ValueError(
            f"{path} is not a zone-axis dataset of format {FORMAT_VERSION} (see zone_axis.generate)"
        )
    groups = np.asarray(space_groups or data.manifest["parameters"]["space_groups"])
    if not np.isin(groups, data.meta["space_group"]).all():
        missing = sorted(set(groups.tolist()) - set(data.meta["space_group"].tolist()))
        raise ValueError(f"space groups {missing} are not in the dataset {path}")
    keep = np.isin(data.meta["space_group"], groups)
    if per_group is not None:
        first = data.meta["parent"] - data.meta["parent"].min()
        if per_group > first.max() + 1:
            raise ValueError(f"{path} has {first.max() + 1} crystals per group in {split!r}, "
                             f"fewer than the {per_group} asked for")  # fmt: skip
        keep &= first < per_group
    label = {int(g): i for i, g in enumerate(groups)}
    y = np.array([label[int(g)] for g in data.meta["space_group"][keep]], dtype=np.int64)
    from crystal_course.shaping import coloured_shapes, paired_shapes

    arrays = {"grey": data.x[keep], "spots": data.meta["spots"][keep],
              "thresholded": data.meta["thresholded"][keep]}  # fmt: skip
    arrays["shaped"] = paired_shapes(arrays["spots"], arrays["grey"])
    if "rgb" in needed:
        arrays["rgb"] = coloured_shapes(arrays["spots"], arrays["grey"])
    if "faint" in needed:
        from crystal_course.shaping import shape_patterns

        params = data.manifest["parameters"]
        faint = shape_patterns(arrays["spots"], threshold=params["threshold"],
                               factor=params["factor"], **FAINT_LINES)  # fmt: skip
        arrays["faint"] = np.rint(faint).astype(np.uint8)
    if "lines" in needed:
        added = arrays["grey"].astype(np.int16) - arrays["spots"]
        arrays["lines"] = np.clip(added, 0, 255).astype(np.uint8)  # S >= R: exact
    return arrays, y


def _transfer(source, target, model: str) -> None:
    """Copy every weight but the classifier's from ``source`` into ``target``."""
    if model == "msdn":
        target.get_layer("densenet_trunk").set_weights(
            source.get_layer("densenet_trunk").get_weights()
        )
        return
    for a, b in zip(source.layers[:-1], target.layers[:-1], strict=True):
        b.set_weights(a.get_weights())


def _history(history, scale_loss: float = 1.0) -> dict:
    keys = ("loss", "val_loss", "accuracy", "val_accuracy")
    return {k: [float(v) * (scale_loss if "loss" in k else 1) for v in history.history[k]]
            for k in keys if k in history.history}  # fmt: skip


def experiment(
    path: str | os.PathLike,
    inputs: str,
    model: str,
    space_groups=None,
    recipe: Recipe = Recipe(),
    seed: int = 0,
    msdn_size: dict | None = None,
    pretrained=None,
    resume_dir: str | os.PathLike | None = None,
):
    """Train one Chapter 6 classifier on a zone-axis dataset and predict every test split.

    Parameters
    ----------
    path : path-like
        Directory made by :func:`generate`.
    inputs : str
        A key of :data:`INPUTS`: the three patterns of a crystal as
        ``spots`` (raw), ``shaped`` (R and S = R + lines as two channels per
        pattern), ``rgb`` (the paper's: each pattern an RGB image with its lines in
        its axis's colour), ``grey`` (the same lines in grey),
        ``thresholded`` (grey lines over the nodes only), ``faint`` (R + thinner,
        fainter grey lines) or ``lines`` (the grey lines alone, S - R).
    model : str
        ``"cnn"``: the three patterns' channels stacked into one image (3, 6 for
        ``shaped``, 9 for ``rgb``) for :func:`crystal_course.models.ziletti_cnn`;
        ``"msdn"``: one pattern per stream of :func:`crystal_course.models.msdn`.
    space_groups : sequence of int, optional
        Train and test on these groups only; default all of the dataset's groups.
    recipe : Recipe
        Training; the same for every input and network.
    seed : int, default 0
        Seeds the weights, the validation split and the shuffling.
    msdn_size : dict, optional
        ``blocks``, ``growth``, ``stem_filters``; default :data:`MSDN_SIZES` of
        the current mode.
    pretrained : keras.Model, optional
        A model of the same network and input size trained on fewer groups
        (e.g. the 8-group subset): its weights, all but the classifier's, start
        this one (the paper's transfer from 8 to 20 groups).
    resume_dir : path-like, optional
        Train resumably per epoch in this folder
        (:func:`crystal_course.training.train`'s ``resume_dir``): a run that was
        stopped goes on after its last finished epoch.

    Returns
    -------
    model : keras.Model
    result : Result

    Notes
    -----
    Introduced in Chapter 6.
    """
    from crystal_course import config
    from crystal_course.models import msdn, msdn_inputs, msdn_probabilities, ziletti_cnn
    from crystal_course.training import train, train_msdn

    if inputs not in INPUTS or model not in MODELS:
        raise ValueError(
            f"inputs must be one of {sorted(INPUTS)} and model one of {sorted(MODELS)}, "
            f"got {inputs!r}, {model!r}"
        )
    train_arrays, y = load_split(path, "train", space_groups, needed=(inputs,),
                                 per_group=recipe.train_per_group)  # fmt: skip
    groups = space_groups or read_manifest(path)["parameters"]["space_groups"]
    groups = tuple(int(g) for g in groups)
    x = train_arrays[inputs]
    n, channels = x.shape[1], x.shape[-1] // 3
    if model == "msdn":
        size = dict(msdn_size or MSDN_SIZES[config.mode()])
        network = msdn((n, n, channels), len(groups), seed=seed, batch_norm=recipe.batch_norm,
                       **size)  # fmt: skip
    else:
        network = ziletti_cnn((n, n, 3 * channels), len(groups), seed=seed)
    transferred = None
    if pretrained is not None:
        _transfer(pretrained, network, model)
        transferred = int(pretrained.output_shape[0][-1] if model == "msdn"
                          else pretrained.output_shape[-1])  # fmt: skip
    start = time.perf_counter()
    common = {"validation_fraction": recipe.validation_fraction, "seed": seed,
              "learning_rate": recipe.learning_rate, "verbose": 0,
              "resume_dir": resume_dir}  # fmt: skip
    if model == "msdn":
        fit = train_msdn(network, x, y, recipe.epochs, recipe.batch_size,
                         weight_decay=recipe.weight_decay, **common)  # fmt: skip
        history = _history(fit, 1 / 3)  # per stream, comparable with the CNN
    else:
        fit = train(network, x.astype(np.float32) / 255, y, recipe.epochs, recipe.batch_size,
                    **common)  # fmt: skip
        history = _history(fit)
    seconds = time.perf_counter() - start
    labels, probabilities = {}, {}
    for split in read_manifest(path)["splits"][1:]:
        arrays, labels[split] = load_split(path, split, groups, needed=(inputs,))
        if model == "msdn":
            probabilities[split] = msdn_probabilities(network, msdn_inputs(arrays[inputs]))
        else:
            probabilities[split] = network.predict(
                arrays[inputs].astype(np.float32) / 255, batch_size=256, verbose=0
            )
    result = Result(inputs, model, seed, groups, labels, probabilities, len(y), seconds,
                    network.count_params(), history, recipe, transferred)  # fmt: skip
    return network, result


def conditional_vacancy_accuracy(predicted: dict, y: dict) -> dict:
    """Accuracy under vacancies among the crystals classified correctly when pristine.

    The measure of Tiong et al.'s Fig. 9: only test crystals whose pristine
    pattern is classified correctly count, so the pristine level is 100 % by
    construction and the curve shows what vacancies alone cost.

    Parameters
    ----------
    predicted, y : dict of str to array
        Predicted and true labels per split (``"test_pristine"`` and
        ``"test_vacancies_<f>"``, the same crystals in the same order), e.g.
        a card run's ``predicted`` and ``y``.

    Returns
    -------
    dict
        Vacancy fraction (float) to :class:`crystal_course.uncertainty.Accuracy`.

    Notes
    -----
    Introduced in Chapter 6.
    """
    from crystal_course.uncertainty import wilson

    pristine = np.asarray(predicted["test_pristine"]) == np.asarray(y["test_pristine"])
    if not pristine.any():
        raise ValueError("no test crystal is classified correctly when pristine")
    out = {}
    for split in sorted(s for s in predicted if s.startswith("test_vacancies_")):
        if not np.array_equal(y[split], y["test_pristine"]):
            raise ValueError(f"split {split} does not hold the pristine test crystals in order")
        hit = np.asarray(predicted[split])[pristine] == np.asarray(y[split])[pristine]
        out[float(split.rsplit("_", 1)[1])] = wilson(int(hit.sum()), int(pristine.sum()))
    return out


# ---------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------


def plot_top_k(results: dict, ax=None, split: str = "test_pristine"):
    """Top-k accuracy (%) against k = 1..5 for several :class:`Result`.

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


def _accuracy_errorbar(ax, x, accuracies, label: str) -> None:
    """One method's accuracies (%) with their 95 % intervals as error bars."""
    values = np.array([a.value for a in accuracies])
    errors = np.array(
        [[a.value - a.low for a in accuracies], [a.high - a.value for a in accuracies]]
    )
    ax.errorbar(x, 100 * values, yerr=100 * errors, fmt="o-", capsize=3, label=label)


def plot_training_size(accuracies: dict, ax=None):
    """Top-1 accuracy (%) against training crystals per group, with 95 % Wilson intervals.

    ``accuracies`` maps a legend label to ``{crystals per group: Accuracy}``, all
    on the same test crystals.

    Notes
    -----
    Introduced in Chapter 6.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.2))
    for label, by_size in accuracies.items():
        sizes = sorted(by_size)
        _accuracy_errorbar(ax, sizes, [by_size[n] for n in sizes], label)
        ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.set_xscale("log", base=2)
    ax.minorticks_off()
    ax.set_xlabel("training crystals per space group")
    ax.set_ylabel("top-1 accuracy on the test crystals (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    return ax


def plot_vacancy_robustness(accuracies: dict, ax=None):
    """Accuracy (%) against the vacancy fraction, with 95 % Wilson intervals, per method.

    ``accuracies`` maps a legend label to ``{vacancy fraction: Accuracy}``, e.g.
    :func:`conditional_vacancy_accuracy` (then the pristine point is 100 % by
    construction and is drawn at 0 %).

    Notes
    -----
    Introduced in Chapter 6.
    """
    import matplotlib.pyplot as plt

    from crystal_course.uncertainty import Accuracy

    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.2))
    for label, by_level in accuracies.items():
        levels = sorted(by_level)
        certain = Accuracy(1, 1, 1.0, 1.0)  # pristine-correct by construction: no interval
        _accuracy_errorbar(ax, [0.0] + [100 * v for v in levels],
                           [certain] + [by_level[v] for v in levels], label)  # fmt: skip
    ax.set_xlabel("vacancies (% of atoms removed)")
    ax.set_ylabel("still correct (% of pristine-correct)")
    ax.set_ylim(0, 103)
    ax.legend(fontsize=8)
    return ax


def plot_learning_curves(histories: dict, axes=None):
    """Loss and accuracy per epoch, training (solid) and validation (dashed).

    ``histories`` maps a legend label to a history dict (``Result.history``, or
    a card run's ``history``). Losses are per stream for the MSDN (its summed
    loss / 3), so both networks share one scale.

    Notes
    -----
    Introduced in Chapter 6.
    """
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.4), layout="constrained")
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, history) in enumerate(histories.items()):
        colour = colours[i % len(colours)]
        for ax, key, scale in ((axes[0], "loss", 1), (axes[1], "accuracy", 100)):
            for prefix, style, kind in (("", "-", "training"), ("val_", "--", "validation")):
                values = history.get(prefix + key)
                if values:
                    epochs = np.arange(1, len(values) + 1)
                    ax.plot(epochs, scale * np.asarray(values), style, color=colour,
                            label=f"{label}, {kind}")  # fmt: skip
    axes[0].set_ylabel("cross-entropy per stream")
    axes[1].set_ylabel("accuracy (%)")
    axes[1].set_ylim(0, 103)
    for ax in axes:
        ax.set_xlabel("epoch")
    axes[1].legend(fontsize=7)
    return axes


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


# ---------------------------------------------------------------------------
# The results card of the long runs
# ---------------------------------------------------------------------------

CARD = "zone_axis_full.json"
"""The shipped results card, in ``crystal_course/data``."""


def card() -> dict:
    """The shipped results card of the Chapter 6 comparison (commands, data, runs).

    Made by :func:`main`; see ``data/README.md``.

    Notes
    -----
    Introduced in Chapter 6.
    """
    from importlib import resources

    return json.loads(resources.files("crystal_course").joinpath("data", CARD).read_text())


def card_runs(card: dict, **match):
    """The card's runs whose fields equal ``match`` (e.g. ``n_groups=20, variant=""``).

    Returns a ``pandas.DataFrame`` with one row per run: the identifying fields,
    top-1 accuracy with its 95 % Wilson interval (``low``, ``high``) on the
    pristine test set, and the training time.

    Notes
    -----
    Introduced in Chapter 6.
    """
    import pandas as pd

    from crystal_course.uncertainty import from_predictions

    rows = []
    for run in card["runs"]:
        if any(run.get(k) != v for k, v in match.items()):
            continue
        acc = from_predictions(run["predicted"]["test_pristine"], run["y"]["test_pristine"])
        rows.append({"n_groups": run["n_groups"], "inputs": run["inputs"], "model": run["model"],
                     "seed": run["seed"], "variant": run["variant"], "top1": acc.value,
                     "low": acc.low, "high": acc.high, "n_test": acc.n,
                     "minutes": run["training_seconds"] / 60})  # fmt: skip
    columns = ["n_groups", "inputs", "model", "seed", "variant", "top1", "low", "high",
               "n_test", "minutes"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def card_correct(card: dict, inputs: str, model: str, n_groups: int = 20, variant: str = "",
                 split: str = "test_pristine") -> np.ndarray:  # fmt: skip
    """Which test crystals each seed's run classified correctly.

    Returns
    -------
    numpy.ndarray
        ``(n_seeds, n_test)`` bool, rows in seed order; ``(0, 0)`` if the card
        has no such run.

    Notes
    -----
    Introduced in Chapter 6.
    """
    rows = sorted(
        (r for r in card["runs"]
         if (r["n_groups"], r["inputs"], r["model"], r["variant"]) == (n_groups, inputs, model,
                                                                       variant)),
        key=lambda r: r["seed"],
    )  # fmt: skip
    if not rows:
        return np.zeros((0, 0), dtype=bool)
    return np.array([np.equal(r["predicted"][split], r["y"][split]) for r in rows])


def _run_key(run: dict) -> tuple:
    return (run["n_groups"], run["inputs"], run["model"], run["seed"], run["variant"])


def run_folder(card_path: str | os.PathLike, key: tuple) -> Path:
    """Where a card's run in progress keeps its per-epoch history and backup.

    ``<card>.runs/<groups>-<inputs>-<model>-seed<seed>[-<variant>]`` beside the card;
    removed when the run's result is in the card.

    Notes
    -----
    Introduced in Chapter 6.
    """
    n_groups, inputs, model, seed, variant = key
    name = f"{n_groups}-{inputs}-{model}-seed{seed}"
    if variant:
        name += "-" + "".join(c if c.isalnum() else "_" for c in variant)
    card_path = Path(card_path)
    return card_path.parent / f"{card_path.stem}.runs" / name


def _method(text: str) -> tuple[str, str]:
    inputs, _, model = text.partition("+")
    if inputs not in INPUTS or model not in MODELS:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected INPUT+MODEL with INPUT in {sorted(INPUTS)} and MODEL in "
            f"{sorted(MODELS)}, e.g. shaped+msdn"
        )
    return inputs, model


def main(argv: list[str] | None = None) -> int:
    """Generate a zone-axis dataset, or train Chapter 6 classifiers into a results card.

    ``generate PATH`` makes (or resumes) a dataset. ``train DATASET --card CARD``
    trains every method x seed: first on the smaller set (``--transfer-from``,
    recorded too), then on ``--groups`` starting from those weights. The card
    is rewritten atomically after every model and a rerun skips the runs it
    holds; a run in progress keeps its per-epoch history and a backup of its
    weights in :func:`run_folder` (both stages, until the second is in the card),
    so an interrupted job resumes after its last finished epoch.
    """
    from crystal_course import config
    from crystal_course.dataset import (
        add_cluster_arguments,
        non_negative_int,
        positive_int,
        run_generator,
    )
    from crystal_course.structures import SPACE_GROUP_SETS
    from crystal_course.training import _write_json

    parser = argparse.ArgumentParser(prog="python -m crystal_course.zone_axis",
                                     description=main.__doc__)  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="generate (or resume) a zone-axis dataset")
    gen.add_argument("path")
    gen.add_argument("--groups", type=int, choices=sorted(SPACE_GROUP_SETS), default=20,
                     help="size of structures.SPACE_GROUP_SETS")  # fmt: skip
    gen.add_argument("--n-per-group", type=positive_int, required=True)
    gen.add_argument("--n-test-per-group", type=positive_int, required=True)
    gen.add_argument("--n-pixels", type=positive_int, default=64)
    gen.add_argument("--seed", type=non_negative_int, default=0)
    gen.add_argument("--zone-axes", choices=ZONE_AXIS_CHOICES, default="distinct",
                     help="the beams: three symmetry-distinct zone axes per crystal system, "
                          "or the cell axes [100], [010], [001]")  # fmt: skip
    add_cluster_arguments(gen)
    run = sub.add_parser("train", help="train classifiers into a results card")
    run.add_argument("dataset", help="directory made by 'generate'")
    run.add_argument("--card", required=True, help="JSON results card to write")
    run.add_argument("--groups", type=int, choices=sorted(SPACE_GROUP_SETS), default=20)
    run.add_argument("--transfer-from", type=int, choices=sorted(SPACE_GROUP_SETS), default=8,
                     help="train on this smaller set first and start from its weights")  # fmt: skip
    run.add_argument("--methods", type=_method, nargs="+", default=list(MAIN_METHODS),
                     help="INPUT+MODEL, e.g. spots+cnn shaped+msdn")  # fmt: skip
    run.add_argument("--seeds", type=non_negative_int, nargs="+", default=[0])
    run.add_argument("--epochs", type=positive_int, default=Recipe.epochs)
    run.add_argument("--batch-size", type=positive_int, default=Recipe.batch_size)
    run.add_argument("--learning-rate", type=float, default=Recipe.learning_rate)
    run.add_argument(
        "--train-per-group",
        type=positive_int,
        default=None,
        help="train on the first N training crystals of each group",
    )
    run.add_argument("--no-batch-norm", action="store_true",
                     help="the paper's dense layers (conv, ReLU, dropout) in the MSDN")  # fmt: skip
    args = parser.parse_args(argv)
    if args.command == "generate":

        def generate_with(client):
            settings = Config(SPACE_GROUP_SETS[args.groups], args.n_per_group,
                              args.n_test_per_group, seed=args.seed,
                              n_pixels=args.n_pixels, zone_axes=args.zone_axes)  # fmt: skip
            generate(args.path, settings, args.n_jobs, not args.no_progress, client,
                     allow_other_files=args.allow_other_files)  # fmt: skip

        return run_generator(gen, args, generate_with)
    if not args.transfer_from < args.groups:
        parser.error(f"--transfer-from {args.transfer_from} must be smaller than --groups")
    try:
        recipe = Recipe(args.epochs, args.batch_size, args.learning_rate,
                        batch_norm=not args.no_batch_norm,
                        train_per_group=args.train_per_group)  # fmt: skip
        manifest = read_manifest(args.dataset)
    except (ValueError, OSError) as error:
        parser.error(str(error))
    card_path = Path(args.card)
    content = json.loads(card_path.read_text()) if card_path.exists() else {"runs": []}
    data = {**manifest["parameters"], "format": manifest.get("format")}
    if content["runs"] and content.get("dataset") != data:
        parser.error(f"{card_path} holds runs on another dataset than {args.dataset}; "
                     "give a new --card")  # fmt: skip
    size = MSDN_SIZES[config.mode()]
    content.update(
        commands=content.get("commands", []),
        dataset=data,
        device=config.device(),
        mode=config.mode(),
        msdn_size={k: list(v) if isinstance(v, tuple) else v for k, v in size.items()},
        paper_top1={str(k): v for k, v in PAPER_TOP1.items()},
    )
    command = "python -m crystal_course.zone_axis " + shlex.join(sys.argv[1:] if argv is None
                                                                  else argv)  # fmt: skip
    if command not in content["commands"]:
        content["commands"].append(command)
    done = {_run_key(r) for r in content["runs"]}
    for seed in args.seeds:
        for inputs, model in args.methods:
            if (args.groups, inputs, model, seed, recipe.variant) in done:
                print(f"{args.groups} groups, {inputs}+{model}, seed {seed}: in the card already")
                continue
            source, folders = None, []  # the smaller set first (recorded too), then transfer
            for n_groups in (args.transfer_from, args.groups):
                folder = run_folder(card_path, (n_groups, inputs, model, seed, recipe.variant))
                folders.append(folder)
                source, result = experiment(args.dataset, inputs, model,
                                            SPACE_GROUP_SETS[n_groups], recipe, seed,
                                            pretrained=source, resume_dir=folder)  # fmt: skip
                summary = result.summary()
                key = _run_key(summary)
                content["runs"] = [r for r in content["runs"] if _run_key(r) != key] + [summary]
                done.add(key)
                _write_json(card_path, content)  # atomic
                print(f"{n_groups} groups, {inputs}+{model}, seed {seed}: top-1 "
                      f"{summary['top_k']['1']:.4f} ({summary['training_seconds']:.0f} s)",
                      flush=True)  # fmt: skip
            for folder in folders:  # both stages are in the card: their backups can go
                shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    # Run the importable module's main, so worker processes can unpickle its functions.
    from crystal_course import zone_axis

    sys.exit(zone_axis.main())
