"""Zone-axis patterns and their datasets (Tiong et al. 2020).

Tiong, Kim, Han & Kim (npj Comput. Mater. 6, 196 (2020)) record three
diffraction patterns of a crystal at a wavelength of 3.5 pm (in Condor, an X-ray
imaging code), with the beam along the Cartesian x, y and z axes of its Materials
Project conventional cell, at its physical size (no nearest-neighbour rescaling,
unlike the 2018 fingerprint). The course puts the beam along three zone axes of
spglib's standard conventional cell instead, by default three that no symmetry of
the crystal system relates (:data:`DISTINCT_ZONE_AXES`). This module makes
those patterns (:func:`patterns`) and stores them with their shaped versions in
checksummed, resumable datasets (:func:`generate`, :func:`load_split`; on the
command line, :func:`main`). Training and scoring the classifiers on them, and the
study of the results card, are :mod:`crystal_course.reproduction`. Shaping itself
is :mod:`crystal_course.shaping`, the multi-stream DenseNet
:func:`crystal_course.models.msdn`.

Introduced in Chapter 6.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import asdict, dataclass, field
from functools import lru_cache, partial
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from ase import Atoms

from crystal_course.dataset import check_distinct_splits
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


def view_similarity(patterns: np.ndarray) -> float:
    """How alike the most alike two of a crystal's views are, up to a turn or flip of the image.

    The cosine similarity of two patterns (their pixels as vectors), maximised over the
    eight symmetries of the square detector (turns by 90 degrees, mirror images), then
    over the three pairs of views. Views of equivalent zones differ only by such a
    turn or flip of the detector frame, so they score 1 (to rounding); views of
    distinct zones score clearly less.

    Parameters
    ----------
    patterns : numpy.ndarray
        ``(n, n, 3)``: the three views of one crystal (:func:`patterns`).

    Returns
    -------
    float
        In [0, 1] for non-negative patterns.

    Notes
    -----
    Introduced in Chapter 6, to measure what the choice of zone axes changes.
    """
    patterns = np.asarray(patterns, dtype=float)
    if patterns.ndim != 3 or patterns.shape[0] != patterns.shape[1] or patterns.shape[2] != 3:
        raise ValueError(f"expected the (n, n, 3) views of one crystal, got {patterns.shape}")
    views = [patterns[..., k] for k in range(3)]
    norms = [np.linalg.norm(v) for v in views]
    if min(norms) == 0:
        raise ValueError("a view is all zero: no pattern to compare")
    best = 0.0
    for i, j in ((0, 1), (0, 2), (1, 2)):
        images = [np.rot90(views[j], k) for k in range(4)]
        images += [np.fliplr(image) for image in images]
        dots = max(float(np.sum(views[i] * image)) for image in images)
        best = max(best, dots / (norms[i] * norms[j]))
    return best


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
    train_groups : tuple of int, optional
        Make training crystals for these of ``space_groups`` only (default: all);
        the test splits keep every group. Chapter 6's quick mode trains on 8 of its
        20 groups and tests the crystal systems on all 20.
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
    train_groups: tuple[int, ...] | None = None
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
        if self.train_groups is not None:
            train = tuple(int(g) for g in self.train_groups)
            if len(train) < 2 or len(set(train)) != len(train) or not set(train) <= set(groups):
                raise ValueError(f"train_groups must be >= 2 distinct groups of space_groups "
                                 f"{groups}, got {self.train_groups!r}")  # fmt: skip
            object.__setattr__(self, "train_groups", train)
        object.__setattr__(self, "space_groups", groups)
        object.__setattr__(self, "vacancies", tuple(float(v) for v in self.vacancies))
        object.__setattr__(self, "q_max", float(self.q_max))
        splits = ["train", "test_pristine"] + [f"test_vacancies_{v:g}" for v in self.vacancies]
        object.__setattr__(self, "splits", check_distinct_splits(splits))

    def parents(self, split: str) -> list[tuple[int, int]]:
        """``(class, parent index)`` of every crystal of a split."""
        classes = range(len(self.space_groups))
        if split == "train":
            indices = range(self.n_per_group)
            if self.train_groups is not None:
                classes = [c for c in classes if self.space_groups[c] in self.train_groups]
        else:
            indices = range(self.n_per_group, self.n_per_group + self.n_test_per_group)
        return [(c, i) for c in classes for i in indices]


CRYSTAL_TABLE = "zone_axis_crystals.npz"
"""The crystals of Chapter 6's quick dataset as pyxtal drew them (in
``crystal_course/data``; :func:`write_crystal_table`): drawing one takes pyxtal about a
tenth of a second, most of the quick dataset's time, and the table makes every stack
build the same quick dataset whatever its pyxtal version."""


@lru_cache(maxsize=1)
def _crystal_table() -> dict:
    from importlib import resources

    source = resources.files("crystal_course").joinpath("data", CRYSTAL_TABLE)
    if not source.is_file():
        return {}
    with source.open("rb") as handle, np.load(handle) as table:
        keys, offsets = table["keys"], table["offsets"]
        numbers, positions, cells = table["numbers"], table["positions"], table["cells"]
        return {tuple(int(k) for k in key): (numbers[a:b], positions[a:b], cells[i])
                for i, (key, a, b) in enumerate(zip(keys, offsets[:-1], offsets[1:],
                                                    strict=True))}  # fmt: skip


@lru_cache(maxsize=4096)
def _crystal(seed: int, group: int, parent: int, max_atoms: int):
    """The random crystal of one parent; cached because every test split reuses it.

    Read from :data:`CRYSTAL_TABLE` when the table holds it, else drawn by pyxtal
    (:func:`crystal_course.structures.random_crystal`).
    """
    stored = _crystal_table().get((seed, group, parent, max_atoms))
    if stored is not None:
        numbers, positions, cell = stored
        return Atoms(numbers=numbers, positions=positions, cell=cell, pbc=True)
    return draw_crystal(seed, group, parent, max_atoms)


def crystal(seed: int, group: int, parent: int, max_atoms: int = 24) -> Atoms:
    """The random crystal of one parent of a zone-axis dataset (a copy, free to change).

    Read from :data:`CRYSTAL_TABLE` when the table holds it (the parents of the quick
    dataset, instantly), else drawn by pyxtal (:func:`draw_crystal`, about a tenth of a
    second); the same crystal either way.

    Parameters
    ----------
    seed : int
        The dataset's seed (:attr:`Config.seed`).
    group : int
        Space group number.
    parent : int
        Index of the crystal within its group (training parents first, then test).
    max_atoms : int, default 24
        Largest conventional cell (:attr:`Config.max_atoms`).

    Returns
    -------
    ase.Atoms
        The crystal as pyxtal drew it (Å, periodic).

    Notes
    -----
    Introduced in Chapter 6.
    """
    return _crystal(int(seed), int(group), int(parent), int(max_atoms)).copy()


def draw_crystal(seed: int, group: int, parent: int, max_atoms: int = 24) -> Atoms:
    """The random crystal of one parent of a zone-axis dataset, drawn by pyxtal now.

    Notes
    -----
    Introduced in Chapter 6; :func:`write_crystal_table` stores such draws.
    """
    from crystal_course.structures import random_crystal

    rng = np.random.default_rng(np.random.SeedSequence([seed, 6, group, parent]))
    return random_crystal(group, rng, max_atoms=max_atoms)


def write_crystal_table(path, config: Config, n_jobs: int = 1) -> Path:
    """Draw every crystal of a zone-axis dataset and store them as :data:`CRYSTAL_TABLE` is.

    Parameters
    ----------
    path : path-like
        The ``.npz`` file to write (atomically).
    config : Config
        The dataset whose crystals (every parent of every split) to draw.
    n_jobs : int, default 1
        Worker processes.

    Notes
    -----
    Introduced in Chapter 6.
    """
    from concurrent.futures import ProcessPoolExecutor

    from crystal_course.dataset import _write_atomic

    keys = sorted({(config.seed, config.space_groups[c], p, config.max_atoms)
                   for split in config.splits for c, p in config.parents(split)})  # fmt: skip
    with ProcessPoolExecutor(n_jobs) as pool:
        crystals = list(pool.map(draw_crystal, *zip(*keys, strict=True)))
    sizes = [len(c) for c in crystals]
    arrays = {
        "keys": np.array(keys, dtype=np.int64),
        "offsets": np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
        "numbers": np.concatenate([c.numbers for c in crystals]).astype(np.int64),
        "positions": np.concatenate([c.positions for c in crystals]),
        "cells": np.stack([np.array(c.cell) for c in crystals]),
    }
    path = Path(path)
    _write_atomic(path, lambda handle: np.savez_compressed(handle, **arrays))
    return path


def crystallite(config: Config, split: str, cls: int, parent: int) -> Atoms:
    """The crystallite of one crystal of a zone-axis dataset, as its patterns see it.

    The random crystal of ``parent`` in space group ``config.space_groups[cls]``, in
    its standard conventional cell (lengths in Å), cut to a sphere of about
    ``config.n_atoms`` atoms (:func:`spherical_cluster`); a ``test_vacancies_*``
    split removes its share of atoms with the dataset's seeds. Chapter 8 computes
    the powder patterns of the same crystallites.

    Notes
    -----
    Introduced in Chapter 6.
    """
    from crystal_course.structures import add_vacancies, standard_conventional_cell

    if split not in config.splits:
        raise ValueError(f"split must be one of {', '.join(config.splits)}; got {split!r}")
    group = config.space_groups[cls]
    cell = _crystal(config.seed, group, parent, config.max_atoms)
    cluster = spherical_cluster(standard_conventional_cell(cell), config.n_atoms)
    if split.startswith("test_vacancies_"):
        fraction = float(split.rsplit("_", 1)[1])
        defect_rng = np.random.default_rng(
            np.random.SeedSequence([config.seed, 7, config.splits.index(split), group, parent])
        )
        cluster = add_vacancies(cluster, fraction, defect_rng)
    return cluster


def _chunk(config: Config, split: str, keys: list[tuple[int, int]]) -> dict:
    from crystal_course.shaping import count_nodes
    from crystal_course.structures import crystal_system

    geometry = detector(config.n_pixels, config.q_max)
    raw, n_atoms = [], []
    for cls, parent in keys:
        group = config.space_groups[cls]
        cluster = crystallite(config, split, cls, parent)
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
    from crystal_course import dataset
    from crystal_course.structures import crystal_system

    params = asdict(config)
    params.pop("splits")
    if config.train_groups is None:  # every group trains: the manifest of such a data set as
        params.pop("train_groups")  # it was before the option existed, so it stays valid
    names = [f"{g} ({crystal_system(g)})" for g in config.space_groups]
    return dataset.generate_kind(path, "zone_axis", FORMAT_VERSION, config, params, names,
                                 ("numpy", "ase", "spglib", "pyxtal"), partial(_chunk, config),
                                 n_jobs, progress, client, allow_other_files)  # fmt: skip


def _is_group_count(value) -> bool:
    """An integer (not a bool) of at least 2: a number of space groups to tell apart."""
    return isinstance(value, Integral) and not isinstance(value, bool) and value >= 2


def default_path(settings, n_groups: int, n_train_groups: int | None = None) -> Path:
    """Where Chapter 6 keeps its dataset: mode, number of groups (and of groups with
    training crystals, :attr:`Config.train_groups`), seed and format in the folder name,
    so that datasets of other sizes never meet in one folder.

    Notes
    -----
    Introduced in Chapter 6.
    """
    if not _is_group_count(n_groups):
        raise ValueError(f"n_groups must be an integer >= 2, got {n_groups!r}")
    if n_train_groups is not None and not _is_group_count(n_train_groups):
        raise ValueError(f"n_train_groups must be an integer >= 2 or None, got {n_train_groups!r}")
    train = "" if n_train_groups is None else f"-train{n_train_groups}"
    return Path(settings.data_dir) / (f"zone-axis-{settings.mode}-{n_groups}groups{train}"
                                      f"-seed{settings.seed}-format{FORMAT_VERSION}")  # fmt: skip


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


def main(argv: list[str] | None = None) -> int:
    """Generate (or resume) a zone-axis dataset (``generate PATH``).

    Training on it is ``python -m crystal_course.reproduction train``.
    """
    from crystal_course.dataset import (
        add_cluster_arguments,
        non_negative_int,
        positive_int,
        run_generator,
    )
    from crystal_course.structures import SPACE_GROUP_SETS

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
    args = parser.parse_args(argv)

    def generate_with(client):
        settings = Config(SPACE_GROUP_SETS[args.groups], args.n_per_group,
                          args.n_test_per_group, seed=args.seed,
                          n_pixels=args.n_pixels, zone_axes=args.zone_axes)  # fmt: skip
        generate(args.path, settings, args.n_jobs, not args.no_progress, client,
                 allow_other_files=args.allow_other_files)  # fmt: skip

    return run_generator(gen, args, generate_with)


if __name__ == "__main__":
    # Run the importable module's main, so worker processes can unpickle its functions.
    from crystal_course import zone_axis

    sys.exit(zone_axis.main())
