"""Kinematic diffraction on a flat detector: the input of every later chapter.

Conventions (Chapter 1 derives them):

* The beam travels along +z; the detector is a flat square of ``n_pixels`` x
  ``n_pixels`` pixels at ``distance`` metres, centred on the beam. Pixel
  ``(row, col)`` has its centre at ``x = (col - c) * pixel_size``,
  ``y = (row - c) * pixel_size`` with ``c = (n_pixels - 1) / 2``; images are
  indexed ``[row, col]``.
* Scattering vectors use the physicist's convention ``q = k1 - k0`` with
  ``|k0| = |k1| = 2 pi / lambda``, in inverse angstrom (1/Å). Every pixel's
  ``q`` lies exactly on the Ewald sphere (no small-angle approximation).
* Structures are rescaled so that their average nearest-neighbour distance is
  1 Å before the sum (Ziletti et al. 2018), so spot positions depend only on the
  geometry of the lattice, not on the element.

Introduced in Chapter 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from numbers import Integral, Real

import numpy as np
from ase import Atoms

from crystal_course.structures import MAX_Z, check_atoms, nearest_neighbour_distance

ANGSTROM = 1e-10
"""One angstrom in metres."""


@dataclass(frozen=True)
class Detector:
    """A flat square detector centred on a beam along +z.

    Defaults are those of Ziletti et al. (2018).

    Parameters
    ----------
    n_pixels : int, default 64
        Pixels along each side.
    pixel_size : float, default 4e-4
        Side of one square pixel, in m.
    distance : float, default 0.1
        Sample-to-detector distance, in m.
    wavelength : float, default 5.0e-12
        Wavelength of the incident plane wave, in m (5 pm: electron
        diffraction scale).

    Raises
    ------
    TypeError
        If ``n_pixels`` is not an integer or a length is not a real number.
    ValueError
        If any field is not positive and finite, or ``n_pixels`` < 2.

    Notes
    -----
    Introduced in Chapter 1.
    """

    n_pixels: int = 64
    pixel_size: float = 4e-4
    distance: float = 0.1
    wavelength: float = 5.0e-12

    def __post_init__(self) -> None:
        if isinstance(self.n_pixels, bool) or not isinstance(self.n_pixels, Integral):
            raise TypeError(
                f"Detector.n_pixels must be an integer number of pixels, "
                f"got {self.n_pixels!r} ({type(self.n_pixels).__name__})"
            )
        if self.n_pixels < 2:
            raise ValueError(f"Detector.n_pixels must be at least 2, got {self.n_pixels}")
        for name, unit in (("pixel_size", "m"), ("distance", "m"), ("wavelength", "m")):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Real):
                raise TypeError(
                    f"Detector.{name} must be a real number in {unit}, "
                    f"got {value!r} ({type(value).__name__})"
                )
            if not (math.isfinite(value) and value > 0):
                raise ValueError(
                    f"Detector.{name} must be positive and finite (in {unit}), got {value!r}"
                )

    @property
    def center(self) -> float:
        """Index of the beam centre along each axis, in pixels (31.5 for 64)."""
        return (self.n_pixels - 1) / 2

    @property
    def ewald_radius(self) -> float:
        """Radius ``2 pi / lambda`` of the Ewald sphere, in 1/Å."""
        return 2 * math.pi / (self.wavelength / ANGSTROM)


def pixel_positions(detector: Detector = Detector()) -> np.ndarray:
    """Centres of all pixels in the laboratory frame.

    Parameters
    ----------
    detector : Detector
        The detector geometry.

    Returns
    -------
    numpy.ndarray
        ``(n, n, 3)`` float64 positions ``(x, y, z)`` in m; ``z`` is the
        detector distance for every pixel.

    Notes
    -----
    Introduced in Chapter 1.
    """
    offsets = (np.arange(detector.n_pixels) - detector.center) * detector.pixel_size
    y, x = np.meshgrid(offsets, offsets, indexing="ij")
    z = np.full_like(x, detector.distance)
    return np.stack([x, y, z], axis=-1)


def scattering_vectors(detector: Detector = Detector()) -> tuple[np.ndarray, np.ndarray]:
    """Scattering vector and solid angle of every pixel.

    Each pixel sees the outgoing wave vector ``k1 = (2 pi / lambda) r / |r|``
    pointing from the sample to the pixel centre ``r``; with the incoming
    ``k0 = (2 pi / lambda) z_hat`` the scattering vector ``q = k1 - k0`` lies
    exactly on the Ewald sphere. The solid angle of a small flat pixel of side
    ``p`` at ``r`` is ``p**2 * distance / |r|**3``.

    Parameters
    ----------
    detector : Detector
        The detector geometry.

    Returns
    -------
    q : numpy.ndarray
        ``(n, n, 3)`` float64 scattering vectors in 1/Å.
    solid_angle : numpy.ndarray
        ``(n, n)`` float64 solid angle of each pixel, in sr.

    Notes
    -----
    Introduced in Chapter 1.
    """
    r = pixel_positions(detector)
    norm = np.linalg.norm(r, axis=-1)
    k = detector.ewald_radius
    q = k * r / norm[..., None]
    q[..., 2] -= k
    solid_angle = detector.pixel_size**2 * detector.distance / norm**3
    return q, solid_angle


def scattering_angle(detector: Detector = Detector()) -> np.ndarray:
    """Scattering angle ``2 theta`` of every pixel, in degrees.

    Returns
    -------
    numpy.ndarray
        ``(n, n)`` float64, angle between the beam and the pixel direction.

    Notes
    -----
    Introduced in Chapter 1.
    """
    r = pixel_positions(detector)
    radial = np.hypot(r[..., 0], r[..., 1])
    return np.degrees(np.arctan2(radial, r[..., 2]))


def bragg_pixel_radius(d_spacing: float, detector: Detector = Detector()) -> float:
    """Distance from the beam centre, in pixels, where a Bragg spot lands.

    A reflection from planes of spacing ``d`` satisfies Bragg's law
    ``lambda = 2 d sin(theta)``; it is scattered by ``2 theta`` and meets the flat
    detector at radius ``distance * tan(2 theta)``.

    Parameters
    ----------
    d_spacing : float
        Interplanar spacing in Å, in the structure's own units. After the
        nearest-neighbour rescaling of :mod:`crystal_course.diffraction` the
        spacing is measured in units of the nearest-neighbour distance
        (e.g. ``1`` for the (100) planes of simple cubic).
    detector : Detector
        The detector geometry.

    Returns
    -------
    float
        Radius in pixels; ``inf`` if the reflection scatters by 90 degrees or
        more and never reaches the detector plane.

    Raises
    ------
    ValueError
        If ``d_spacing`` is not positive and finite, or so small that
        ``lambda / 2d > 1`` (no Bragg reflection exists).

    Notes
    -----
    Introduced in Chapter 1.
    """
    if not (isinstance(d_spacing, Real) and math.isfinite(d_spacing) and d_spacing > 0):
        raise ValueError(f"d_spacing must be a positive length in Å, got {d_spacing!r}")
    sin_theta = (detector.wavelength / ANGSTROM) / (2 * d_spacing)
    if sin_theta > 1:
        raise ValueError(
            f"no Bragg reflection for d_spacing={d_spacing} Å at wavelength "
            f"{detector.wavelength / ANGSTROM} Å: need d >= lambda / 2"
        )
    two_theta = 2 * math.asin(sin_theta)
    if two_theta >= math.pi / 2:
        return math.inf
    return detector.distance * math.tan(two_theta) / detector.pixel_size


def ring_mask(n_pixels: int = 64) -> np.ndarray:
    """Boolean mask of the ring kept in a fingerprint.

    The central beam and its neighbourhood carry no symmetry information and
    would dominate the contrast, and the corners are only partly covered; the
    fingerprint keeps ``5/32 n < r < n/2 - n/32`` pixels from the centre
    (``10 < r < 30`` for 64 pixels).

    Parameters
    ----------
    n_pixels : int, default 64
        Detector side in pixels.

    Returns
    -------
    numpy.ndarray
        ``(n, n)`` bool, True where a pixel is kept.

    Notes
    -----
    Introduced in Chapter 1.
    """
    if isinstance(n_pixels, bool) or not isinstance(n_pixels, Integral) or n_pixels < 2:
        raise ValueError(f"n_pixels must be an integer >= 2, got {n_pixels!r}")
    c = (n_pixels - 1) / 2
    idx = np.arange(n_pixels) - c
    r = np.hypot(idx[:, None], idx[None, :])
    return (r > 5 * n_pixels / 32) & (r < n_pixels / 2 - n_pixels / 32)


# ---------------------------------------------------------------------------
# Form factors
# ---------------------------------------------------------------------------

FORM_FACTOR_TABLE = "waasmaier_kirfel_1995.csv"
"""Shipped coefficient table (``crystal_course/data``)."""


@lru_cache(maxsize=1)
def _form_factor_coefficients() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(a, b, c)`` arrays indexed by Z (row 0 unused), shapes (99, 5), (99, 5), (99,)."""
    text = resources.files("crystal_course").joinpath("data", FORM_FACTOR_TABLE).read_text()
    rows = [line.split(",") for line in text.splitlines() if line and not line.startswith("#")]
    header, body = rows[0], rows[1:]
    if header[:2] != ["symbol", "Z"] or len(header) != 13:
        raise RuntimeError(f"unexpected header in {FORM_FACTOR_TABLE}: {header}")
    a = np.full((MAX_Z + 1, 5), np.nan)
    b = np.full((MAX_Z + 1, 5), np.nan)
    c = np.full(MAX_Z + 1, np.nan)
    for row in body:
        z = int(row[1])
        values = np.array(row[2:], dtype=float)
        a[z], c[z], b[z] = values[0:5], values[5], values[6:11]
    return a, b, c


def form_factor(Z: int | Sequence[int] | np.ndarray, q: float | np.ndarray) -> np.ndarray:
    """X-ray atomic form factor of neutral atoms, in electrons.

    Waasmaier-Kirfel form, five Gaussians and a constant,
    ``f(s) = c + sum_i a_i exp(-b_i s**2)`` with ``s = sin(theta) / lambda = |q| / (4 pi)``,
    using the coefficients of Waasmaier & Kirfel, Acta Cryst. A51, 416 (1995),
    shipped in ``crystal_course/data/waasmaier_kirfel_1995.csv``. Valid for
    ``s`` up to 6 1/Å (``|q|`` up to 75 1/Å); ``f(0)`` equals ``Z`` to 0.04.

    Parameters
    ----------
    Z : int or array_like of int
        Atomic number(s), 1 to 98.
    q : float or array_like
        Magnitude of the scattering vector ``|q| = 4 pi sin(theta) / lambda``, in 1/Å.

    Returns
    -------
    numpy.ndarray
        float64 of shape ``np.shape(Z) + np.shape(q)`` (every Z at every q).

    Raises
    ------
    ValueError
        For an atomic number outside 1..98, or negative or non-finite ``q``.

    Notes
    -----
    Introduced in Chapter 1. The original fingerprint used the four-Gaussian
    Cromer-Mann table of the same functional form; the envelope is smooth and
    element-specific either way.
    """
    z = np.asarray(Z)
    if z.dtype.kind not in "iu" or ((z < 1) | (z > MAX_Z)).any():
        raise ValueError(f"Z must be integer atomic numbers from 1 to {MAX_Z}, got {Z!r}")
    q = np.asarray(q, dtype=float)
    if not np.isfinite(q).all() or (q < 0).any():
        raise ValueError("q must be finite, non-negative scattering-vector magnitudes in 1/Å")
    a, b, c = _form_factor_coefficients()
    s2 = (q / (4 * np.pi)) ** 2
    zz = z.reshape(z.shape + (1,) * q.ndim)
    result = c[zz].astype(float)
    for i in range(5):
        result = result + a[zz, i] * np.exp(-b[zz, i] * s2)
    return result


# ---------------------------------------------------------------------------
# Rotations
# ---------------------------------------------------------------------------

_AXES = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0), "z": (0.0, 0.0, 1.0)}


def rotation_matrix(axis: str | Sequence[float], angle: float) -> np.ndarray:
    """Matrix of a right-handed rotation by ``angle`` degrees about ``axis``.

    Parameters
    ----------
    axis : {"x", "y", "z"} or array_like of 3 floats
        Rotation axis (need not be normalised).
    angle : float
        Angle in degrees, counter-clockwise looking down the axis.

    Returns
    -------
    numpy.ndarray
        ``(3, 3)`` float64 orthogonal matrix ``R``; a point ``x`` goes to ``R @ x``.

    Notes
    -----
    Introduced in Chapter 1.
    """
    if isinstance(axis, str):
        if axis not in _AXES:
            raise ValueError(f"axis must be 'x', 'y', 'z' or a 3-vector, got {axis!r}")
        axis = _AXES[axis]
    u = np.asarray(axis, dtype=float)
    if u.shape != (3,) or not np.isfinite(u).all() or np.linalg.norm(u) == 0:
        raise ValueError(f"axis must be a non-zero 3-vector, got {axis!r}")
    if not isinstance(angle, Real) or not math.isfinite(angle):
        raise ValueError(f"angle must be a finite number of degrees, got {angle!r}")
    u = u / np.linalg.norm(u)
    t = math.radians(angle)
    k = np.array([[0, -u[2], u[1]], [u[2], 0, -u[0]], [-u[1], u[0], 0]])
    return np.eye(3) + math.sin(t) * k + (1 - math.cos(t)) * (k @ k)


def _as_rotation(rotation) -> np.ndarray:
    """Normalise ``None`` / 3x3 matrix / ``(axis, degrees)`` into a rotation matrix."""
    if rotation is None:
        return np.eye(3)
    if isinstance(rotation, tuple) and len(rotation) == 2 and not np.ndim(rotation[1]):
        return rotation_matrix(*rotation)
    matrix = np.asarray(rotation, dtype=float)
    if matrix.shape != (3, 3):
        raise ValueError(
            f"rotation must be a 3x3 matrix or an (axis, degrees) pair, got shape {matrix.shape}"
        )
    if not np.allclose(matrix @ matrix.T, np.eye(3), atol=1e-6) or np.linalg.det(matrix) < 0:
        raise ValueError("rotation must be a proper rotation matrix (orthogonal, det = +1)")
    return matrix


def beam_direction(cell, rotation) -> np.ndarray:
    """The beam's direction in the crystal, as lattice indices [uvw].

    The beam travels along z; :func:`diffraction_pattern` rotates the structure by
    ``R`` first, so in the crystal's own frame the beam runs along ``R^T z``. Written
    in the basis of the cell's vectors, that is ``[uvw]``, scaled so that the largest
    index is 1: a zone axis has rational indices, and an irrational beam direction
    cuts the reciprocal lattice in no single layer.

    Parameters
    ----------
    cell : array_like
        ``(3, 3)`` rows a, b, c of the (conventional) cell, Å.
    rotation : None, (3, 3) array_like, or (axis, degrees)
        As for :func:`diffraction_pattern`.

    Returns
    -------
    numpy.ndarray
        ``(3,)`` float indices ``[u, v, w]`` with ``max |.| = 1``.

    Notes
    -----
    Introduced in Chapter 1.
    """
    cell = np.asarray(cell, dtype=float)
    if cell.shape != (3, 3) or abs(np.linalg.det(cell)) < 1e-12:
        raise ValueError(f"cell must be a non-degenerate (3, 3) array of rows a, b, c, got {cell}")
    beam = _as_rotation(rotation).T @ np.array([0.0, 0.0, 1.0])
    indices = np.linalg.solve(cell.T, beam)
    return indices / np.abs(indices).max()


# ---------------------------------------------------------------------------
# The scattering sum
# ---------------------------------------------------------------------------

_GEMM_PER_SINCOS = 20.0
"""A complex multiply-add in a GEMM costs about 1/20 of a sin/cos pair here."""

_CHUNK_ELEMENTS = 1 << 16
"""Largest intermediate array (elements) built at once: ~0.5 MB stays in a core's L2 cache."""

_TWO_PI = 2 * np.pi


def _scaled_cluster(
    atoms: Atoms, rescale: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Positions and cell in nearest-neighbour units (or in Å), species and their numbers."""
    check_atoms(atoms, min_atoms=2)
    nn = nearest_neighbour_distance(atoms) if rescale else 1.0
    positions = atoms.get_positions() / nn
    positions -= positions.mean(axis=0)  # a rigid translation only changes a global phase
    cell = np.asarray(atoms.cell) / nn
    species, index = np.unique(atoms.get_atomic_numbers(), return_inverse=True)
    return positions, cell, species, index


_MAX_REPEATS = 24
"""Largest number of repeats per cell axis the factorised sum looks for."""

_RESIDUE_TOL = 1e-6
"""Fractional coordinates closer than this (x n) count as the same basis position."""


def _distinct_counts(values: np.ndarray) -> np.ndarray:
    """Number of distinct entries (within ``_RESIDUE_TOL``) in each row of ``values``."""
    ordered = np.sort(values, axis=-1)
    return 1 + (np.diff(ordered, axis=-1) > _RESIDUE_TOL).sum(axis=-1)


def _group(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group equal (within ``_RESIDUE_TOL``) values: group means and each value's group."""
    order = np.argsort(values, kind="stable")
    new = np.concatenate([[True], np.diff(values[order]) > _RESIDUE_TOL])
    groups = np.empty(len(values), dtype=np.intp)
    groups[order] = np.cumsum(new) - 1
    means = np.bincount(groups, weights=values) / np.bincount(groups)
    return means, groups


def _axis_options(frac: np.ndarray, keep: int = 3):
    """Candidate repeat counts ``n`` along one axis, each splitting the coordinates.

    Writes ``frac * n = origin + residue + cell`` (origin: the lowest atom, so
    every basis class starts in cell 0) for ``n = 1 .. _MAX_REPEATS`` and keeps
    the few with the least work (distinct residues x cells) plus ``n = 1``.

    Returns
    -------
    list of tuple
        ``(n, residue_values, residue_group_per_atom, cell_per_atom, origin)``.
    """
    n = np.arange(1, _MAX_REPEATS + 1)
    low = frac.min()
    shifted = (frac[None, :] - low) * n[:, None]
    cell = np.floor(shifted + _RESIDUE_TOL)
    residue = shifted - cell
    work = _distinct_counts(residue) * (cell.max(axis=1) + 1)
    chosen = sorted({0, *np.argsort(work + 1e-3 * n, kind="stable")[:keep].tolist()})
    options = []
    for i in chosen:
        values, groups = _group(residue[i])
        options.append((int(n[i]), values, groups, cell[i].astype(np.intp), float(low * n[i])))
    return options


def _lattice_grid(positions: np.ndarray, cell: np.ndarray, species_index: np.ndarray):
    """Factorise a crystal as class offsets plus a dense grid of cell translations.

    With fractional coordinates ``F`` along the cell vectors ``A_k``, a crystal
    that repeats ``n_k`` times along each axis -- with or without vacancies --
    has ``F_jk = (r_ck + m_jk) / n_k``: a few classes ``c`` (residue offsets and
    species, i.e. the basis) and integer cell indices ``m``. Then
    ``q . x_j = sum_k (r_ck + m_jk) (q . A_k) / n_k`` and the sum over atoms
    becomes a sum over classes of a separable sum over cells.

    Returns
    -------
    tuple or None
        ``(axes, offsets (C, 3), class_species_index (C,), steps (3,), occupancy
        (C, m1, m2, m3))`` with ``offsets`` and ``steps`` in fractional units;
        ``None`` for a structure without a 3D cell.
    """
    if abs(np.linalg.det(cell)) < 1e-8:
        return None
    frac = np.linalg.solve(cell.T, positions.T).T
    options = [_axis_options(frac[:, k]) for k in range(3)]
    choice = np.array(np.meshgrid(*(np.arange(len(o)) for o in options), indexing="ij"))
    choice = choice.reshape(3, -1)  # option index per axis, for every combination
    # Score every combination at once: classes from sorted keys, cells from the extents.
    n_atoms, n_species = len(frac), int(species_index.max()) + 1
    keys = np.zeros((choice.shape[1], n_atoms), dtype=np.int64)
    cells = np.ones(choice.shape[1])
    for k in range(3):
        groups = np.stack([o[2] for o in options[k]])  # (options, N)
        keys = keys * n_atoms + groups[choice[k]]
        cells *= np.array([o[3].max() + 1 for o in options[k]])[choice[k]]
    keys = keys * n_species + species_index[None, :]
    classes = 1 + (np.diff(np.sort(keys, axis=1), axis=1) != 0).sum(axis=1)
    best = int(np.argmin(classes + classes * cells / _GEMM_PER_SINCOS))
    parts = [options[k][choice[k, best]] for k in range(3)]
    codes, class_of_atom = np.unique(keys[best], return_inverse=True)
    first = np.zeros(len(codes), dtype=np.intp)
    first[class_of_atom[::-1]] = np.arange(n_atoms)[::-1]  # one atom of each class
    offsets = np.column_stack([parts[k][1][parts[k][2][first]] for k in range(3)])
    sizes = tuple(int(p[3].max()) + 1 for p in parts)
    occupancy = np.zeros((len(codes),) + sizes, dtype=np.float32)
    np.add.at(occupancy, (class_of_atom, *(p[3] for p in parts)), 1.0)
    n = np.array([p[0] for p in parts], dtype=float)
    origin = np.array([p[4] for p in parts])  # fractional offset of class c: (origin + r_c) / n
    return cell, (offsets + origin) / n, species_index[first], 1.0 / n, occupancy


def _unit_phasors(phase: np.ndarray) -> np.ndarray:
    """``exp(-i phase)`` as complex64.

    The float64 phase is reduced to [-pi, pi] first, then float32 cos/sin
    (SIMD, ~10x faster here than float64 with large arguments and ~30x faster
    than numpy's complex exp) keep the error near 1e-7 rad.
    """
    reduced = (phase - _TWO_PI * np.rint(phase * (1 / _TWO_PI))).astype(np.float32)
    out = np.empty(phase.shape, dtype=np.complex64)
    out.real = np.cos(reduced)
    out.imag = -np.sin(reduced)
    return out


def _grid_phasors(proj: np.ndarray, step: float, size: int) -> np.ndarray:
    """``exp(-i proj * n * step)`` for ``n < size``, shape ``(P, size)``.

    One phasor per pixel and a recurrence over the cells (each a vectorised
    product over all pixels), instead of ``size`` sin/cos pairs.
    """
    rows = np.empty((size, len(proj)), dtype=np.complex64)
    rows[0] = 1.0
    if size > 1:
        ratio = _unit_phasors(proj * step)
        for i in range(1, size):
            np.multiply(rows[i - 1], ratio, out=rows[i])
    return rows.T


def _amplitude_factorised(
    q: np.ndarray, axes, offsets, class_species, steps, occupancy, form_factors
) -> np.ndarray:
    """``sum_j f_j exp(-i q.x_j)`` for a factorised crystal, ``(P,)`` complex64.

    ``sum_c f_c B_c sum_abc occ_c[a, b, c] U1[a] U2[b] U3[c]``: class phasors
    ``B_c``, a GEMM of the outer product ``U2 U3`` with the occupancy (second
    and third cell axes at once), then a batched product over the first.
    """
    n_classes, m1, m2, m3 = occupancy.shape
    proj = q @ axes.T  # (P, 3): q . A_k, float64
    # (m2 m3, C m1): the GEMM contracts the second and third cell axes at once.
    occ = occupancy.transpose(2, 3, 0, 1).reshape(m2 * m3, n_classes * m1).astype(np.complex64)
    out = np.empty(len(q), dtype=np.complex64)
    chunk = max(1, _CHUNK_ELEMENTS // max(1, m2 * m3 + n_classes * m1))
    n_f = len(form_factors)
    for start in range(0, len(q), chunk):
        sl = slice(start, start + chunk)
        u1, u2, u3 = (_grid_phasors(proj[sl, k], steps[k], n) for k, n in enumerate((m1, m2, m3)))
        u23 = (u2[:, :, None] * u3[:, None, :]).reshape(-1, m2 * m3)
        t = (u23 @ occ).reshape(-1, n_classes, m1)  # sum over the second and third axes
        per_class = np.matmul(t, u1[:, :, None])[..., 0]  # first axis: (p, C)
        weight = _unit_phasors(proj[sl] @ offsets.T)  # class offsets, (p, C)
        rows = np.arange(start, min(start + chunk, len(q))) % n_f
        weight *= form_factors[rows][:, class_species]
        out[sl] = (per_class * weight).sum(axis=1)
    return out


def _amplitude_direct(q: np.ndarray, positions, index, form_factors) -> np.ndarray:
    """``sum_j f_j exp(-i q.x_j)`` by the direct float32 sum over atoms, ``(P,)`` complex64."""
    n_species = form_factors.shape[1]
    onehot = np.zeros((len(positions), n_species), dtype=np.float32)
    onehot[np.arange(len(positions)), index] = 1.0
    x = positions.astype(np.float32).T
    out = np.empty(len(q), dtype=np.complex64)
    chunk = max(1, _CHUNK_ELEMENTS // len(positions))
    n_f = len(form_factors)
    for start in range(0, len(q), chunk):
        sl = slice(start, start + chunk)
        phase = q[sl].astype(np.float32) @ x
        f = form_factors[np.arange(start, min(start + chunk, len(q))) % n_f]
        out[sl].real = ((np.cos(phase) @ onehot) * f).sum(axis=1)
        out[sl].imag = -((np.sin(phase) @ onehot) * f).sum(axis=1)
    return out


def _intensities(
    atoms: Atoms,
    q: np.ndarray,
    q_norm: np.ndarray | None = None,
    method: str = "auto",
    rescale: bool = True,
) -> np.ndarray:
    """``|sum_j f_j exp(-i q.x_j)|**2`` for scattering vectors ``q`` (P, 3), float32.

    ``q`` is in 1/Å for the physical detector; the structure is scaled to unit
    nearest-neighbour distance, so the phases use ``q`` against scaled
    positions while the form factors use the physical ``|q|`` (``q_norm``,
    which may be a shorter array that ``q`` repeats, as for six rotations of
    the same pixels). ``rescale=False`` keeps the positions in Å.
    """
    if method not in ("auto", "factorised", "direct"):
        raise ValueError(f"method must be 'auto', 'factorised' or 'direct', got {method!r}")
    positions, cell, species, index = _scaled_cluster(atoms, rescale)
    if q_norm is None:
        q_norm = np.linalg.norm(q, axis=-1)
    form_factors = form_factor(species, q_norm).T.astype(np.float32)  # (P', S)
    grid = None
    if method != "direct":
        grid = _lattice_grid(positions, cell, index)
        if grid is None and method == "factorised":
            raise ValueError(
                "method='factorised' needs a structure with a 3D cell (atoms.cell); "
                "use 'auto' or 'direct'"
            )
    if grid is not None and method == "auto":
        occupancy = grid[-1]
        cost = 3 + len(occupancy) + occupancy.size / _GEMM_PER_SINCOS  # sin/cos pairs per pixel
        if cost >= len(positions):
            grid = None
    if grid is not None:
        amplitude = _amplitude_factorised(q, *grid, form_factors)
    else:
        amplitude = _amplitude_direct(q, positions, index, form_factors)
    return (amplitude.real**2 + amplitude.imag**2).astype(np.float32)


def intensity(atoms: Atoms, q: np.ndarray, method: str = "auto") -> np.ndarray:
    """Kinematic intensity ``|sum_j f_j(|q|) exp(-i q . x_j)|**2`` at arbitrary ``q``.

    The scattering sum of Eq. (1) of Chapter 1 without a detector: useful for
    line scans through reciprocal space. Positions are scaled to unit average
    nearest-neighbour distance, as everywhere in the fingerprint.

    Parameters
    ----------
    atoms : ase.Atoms
        The cluster; at least two atoms, elements 1 to 98.
    q : array_like, shape (..., 3)
        Scattering vectors in 1/Å (physicist's convention, ``|q| = 4 pi sin(theta) / lambda``).
    method : {"auto", "factorised", "direct"}
        See :func:`diffraction_pattern`.

    Returns
    -------
    numpy.ndarray
        float32 of shape ``q.shape[:-1]``, in electrons².

    Raises
    ------
    ValueError
        If ``q`` is not a finite array of 3-vectors, or as :func:`diffraction_pattern`.

    Notes
    -----
    Introduced in Chapter 1.
    """
    q = np.asarray(q, dtype=float)
    if q.ndim == 0 or q.shape[-1] != 3 or not np.isfinite(q).all():
        raise ValueError(
            f"q must be a finite array of 3-vectors (..., 3) in 1/Å, got shape {q.shape}"
        )
    flat = q.reshape(-1, 3)
    return _intensities(atoms, flat, method=method).reshape(q.shape[:-1])


def diffraction_pattern(
    atoms: Atoms,
    detector: Detector = Detector(),
    rotation=None,
    method: str = "auto",
    rescale: bool = True,
) -> np.ndarray:
    """Kinematic diffraction pattern of a finite cluster on a flat detector.

    ``I(q) = Omega(q) |sum_j f_j(|q|) exp(-i q . x_j)|**2`` at every pixel, for the
    atoms as given (no periodic images), after scaling positions so that their
    average nearest-neighbour distance is 1 Å (Ziletti et al. 2018), unless
    ``rescale`` is false.

    Parameters
    ----------
    atoms : ase.Atoms
        The cluster; at least two atoms, elements 1 to 98.
    detector : Detector
        Detector geometry and wavelength.
    rotation : None, (3, 3) array_like, or (axis, degrees)
        Rotation applied to the structure before scattering, e.g. ``("x", 45)``
        or a matrix ``R`` (a position ``x`` goes to ``R @ x``).
    method : {"auto", "factorised", "direct"}
        How to evaluate the sum. ``"factorised"`` writes every position as
        basis offset + cell translation along the cell vectors and needs
        transcendental functions only per basis class and axis (fast for
        crystals, with or without vacancies; needs a 3D cell); ``"direct"``
        sums over atoms (best for displaced atoms); ``"auto"`` picks the
        cheaper. All agree to float32 precision.
    rescale : bool, default True
        Scale the structure to unit nearest-neighbour distance (the 2018
        fingerprint). ``False`` keeps its physical size, as in the zone-axis
        patterns of Chapter 6.

    Returns
    -------
    numpy.ndarray
        ``(n, n)`` float32 intensity in electrons² x sr, indexed ``[row, col]``.

    Raises
    ------
    TypeError
        If ``atoms`` is not an ``ase.Atoms``.
    ValueError
        For an empty or single-atom structure, non-finite positions, unknown
        elements, or a rotation that is not 3x3 and proper.

    Notes
    -----
    Introduced in Chapter 1.
    """
    matrix = _as_rotation(rotation)
    q, solid_angle = scattering_vectors(detector)
    q_structure = q.reshape(-1, 3) @ matrix  # q . (R x) = (R^T q) . x
    intensity = _intensities(atoms, q_structure, method=method, rescale=rescale)
    intensity = intensity.reshape(solid_angle.shape)
    return (intensity * solid_angle).astype(np.float32)


FINGERPRINT_AXES = ("x", "y", "z")
"""Rotation axes of the R, G and B channels of a fingerprint."""


@lru_cache(maxsize=16)
def _fingerprint_geometry(detector: Detector, angle: float):
    """Ring mask, the six rotated pixel q-sets, their |q| and solid angles (read-only)."""
    if not math.isfinite(angle):
        raise ValueError(f"angle must be a finite number of degrees, got {angle!r}")
    q, solid_angle = scattering_vectors(detector)
    mask = ring_mask(detector.n_pixels)
    q_kept = q[mask]
    rotations = [rotation_matrix(ax, sign * angle) for ax in FINGERPRINT_AXES for sign in (1, -1)]
    q_all = np.concatenate([q_kept @ r for r in rotations])  # six patterns in one sum
    arrays = (mask, q_all, np.linalg.norm(q_kept, axis=-1), solid_angle[mask])
    for array in arrays:
        array.flags.writeable = False
    return arrays


def fingerprint(
    atoms: Atoms,
    detector: Detector = Detector(),
    angle: float = 45.0,
    normalize: bool = True,
    method: str = "auto",
) -> np.ndarray:
    """Two-dimensional diffraction fingerprint (Ziletti et al. 2018), channels last.

    Channel R is the sum of the patterns of the structure rotated by
    ``+angle`` and ``-angle`` about x, G the same about y, B about z. The central
    beam and the corners are removed with :func:`ring_mask`, and one linear
    min-max scaling over all three channels maps the image to [0, 1].

    Parameters
    ----------
    atoms : ase.Atoms
        The cluster (normally a ~250-atom supercell in the standard orientation).
    detector : Detector
        Detector geometry and wavelength.
    angle : float, default 45.0
        Rotation angle in degrees.
    normalize : bool, default True
        Apply the min-max scaling; ``False`` returns the masked intensities.
    method : {"auto", "factorised", "direct"}
        See :func:`diffraction_pattern`.

    Returns
    -------
    numpy.ndarray
        ``(n, n, 3)`` float32, ``[row, col, channel]``, in [0, 1] if normalised.

    Raises
    ------
    ValueError
        As :func:`diffraction_pattern`; also if every kept pixel is dark.

    Notes
    -----
    Introduced in Chapter 1.
    """
    mask, q_all, q_norm, omega_kept = _fingerprint_geometry(detector, float(angle))
    intensity = _intensities(atoms, q_all, q_norm, method).reshape(3, 2, -1).sum(axis=1)
    image = np.zeros((detector.n_pixels, detector.n_pixels, 3), dtype=np.float32)
    image[mask] = (intensity * omega_kept).T
    if not normalize:
        return image
    low, high = float(image.min()), float(image.max())
    if not high > low:
        raise ValueError("the fingerprint is flat: no intensity inside the ring mask")
    return (image - low) / (high - low)


def zone_axis_spots(
    cell: np.ndarray, detector: Detector = Detector(), max_index: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Reflections of a lattice in the zone of the beam, and the pixels they land on.

    For a beam along z, the reciprocal-lattice vectors ``G = 2 pi (h, k, l) B``
    with ``G_z = 0`` form the zero-order Laue zone. On the nearly flat Ewald
    sphere each lands where the outgoing wave vector has transverse part
    ``G_perp``: ``k1 = (G_x, G_y, sqrt(k**2 - |G_perp|**2))``.

    Parameters
    ----------
    cell : array_like, shape (3, 3)
        Lattice vectors as rows, in Å in the scaled units of the pattern
        (divide by the nearest-neighbour distance, as the fingerprint does).
    detector : Detector
        The detector geometry.
    max_index : int, default 4
        Largest ``|h|, |k|, |l|`` considered.

    Returns
    -------
    hkl : numpy.ndarray
        ``(M, 3)`` int Miller indices of in-zone reflections on the detector
        (the origin excluded).
    pixels : numpy.ndarray
        ``(M, 2)`` float ``(row, col)`` positions.

    Notes
    -----
    Introduced in Chapter 1.
    """
    cell = np.asarray(cell, dtype=float)
    if cell.shape != (3, 3) or abs(np.linalg.det(cell)) < 1e-12:
        raise ValueError(f"cell must be a non-singular 3x3 matrix of lattice vectors, got {cell!r}")
    r = np.arange(-max_index, max_index + 1)
    hkl = np.array(np.meshgrid(r, r, r, indexing="ij")).reshape(3, -1).T
    hkl = hkl[np.abs(hkl).sum(axis=1) > 0]
    g = 2 * np.pi * hkl @ np.linalg.inv(cell).T
    k = detector.ewald_radius
    in_zone = (np.abs(g[:, 2]) < 1e-9 * k) & (np.hypot(g[:, 0], g[:, 1]) < k)
    hkl, g = hkl[in_zone], g[in_zone]
    kz = np.sqrt(k**2 - g[:, 0] ** 2 - g[:, 1] ** 2)
    cols = detector.center + detector.distance * g[:, 0] / kz / detector.pixel_size
    rows = detector.center + detector.distance * g[:, 1] / kz / detector.pixel_size
    on = (cols > -0.5) & (cols < detector.n_pixels - 0.5) & (rows > -0.5)
    on &= rows < detector.n_pixels - 0.5
    return hkl[on], np.column_stack([rows[on], cols[on]])


def zone_axis_reflections(
    atoms: Atoms, detector: Detector = Detector(), max_index: int = 4
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """In-zone reflections of a crystal's conventional cell, where they land, how strong.

    The conventional cell comes from spglib
    (:func:`crystal_course.structures.standard_conventional_cell`; same
    orientation as a structure already in standard orientation); lengths are
    scaled to unit nearest-neighbour distance like the pattern.

    Parameters
    ----------
    atoms : ase.Atoms
        A periodic cluster in standard orientation (beam along its z axis).
    detector : Detector
        The detector geometry.
    max_index : int, default 4
        Largest Miller index considered.

    Returns
    -------
    hkl : numpy.ndarray
        ``(M, 3)`` Miller indices (conventional cell).
    pixels : numpy.ndarray
        ``(M, 2)`` ``(row, col)`` positions, see :func:`zone_axis_spots`.
    strength : numpy.ndarray
        ``(M,)`` kinematic intensity of the cluster exactly at each ``G``
        (zero for systematically absent reflections).

    Notes
    -----
    Introduced in Chapter 1.
    """
    from crystal_course.structures import standard_conventional_cell

    cell = np.array(standard_conventional_cell(atoms).cell) / nearest_neighbour_distance(atoms)
    hkl, pixels = zone_axis_spots(cell, detector, max_index)
    g = 2 * np.pi * hkl @ np.linalg.inv(cell).T
    return hkl, pixels, intensity(atoms, g)


def plot_pattern(pattern: np.ndarray, ax=None, log: bool = True, title: str | None = None):
    """Show one diffraction pattern (intensity on a log scale by default).

    Parameters
    ----------
    pattern : numpy.ndarray
        ``(n, n)`` intensities, e.g. from :func:`diffraction_pattern`.
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure is made if omitted.
    log : bool, default True
        Show ``log10`` of the intensity (floored 6 decades below the maximum).
    title : str, optional
        Axes title.

    Returns
    -------
    matplotlib.axes.Axes

    Notes
    -----
    Introduced in Chapter 1.
    """
    import matplotlib.pyplot as plt

    pattern = np.asarray(pattern, dtype=float)
    if pattern.ndim != 2:
        raise ValueError(f"pattern must be a 2D (n, n) image, got shape {pattern.shape}")
    ax = _axes(ax, (4, 3.4))
    if log:
        top = pattern.max() if pattern.max() > 0 else 1.0
        shown = np.log10(np.maximum(pattern, top * 1e-6))
        label = r"$\log_{10}$ intensity (e$^2$ sr)"
    else:
        shown, label = pattern, r"intensity (e$^2$ sr)"
    image = ax.imshow(shown, origin="lower", cmap="magma")
    plt.colorbar(image, ax=ax, label=label, fraction=0.046, pad=0.04)
    ax.set_xlabel("column (pixels)")
    ax.set_ylabel("row (pixels)")
    if title:
        ax.set_title(title)
    return ax


def plot_fingerprint(image: np.ndarray, ax=None, title: str | None = None):
    """Show an RGB fingerprint ``(n, n, 3)`` with values in [0, 1].

    Notes
    -----
    Introduced in Chapter 1. R, G and B are the rotation pairs about x, y, z.
    """

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"image must be channels-last (n, n, 3), got shape {image.shape}")
    ax = _axes(ax, (3, 3))
    ax.imshow(np.clip(image, 0, 1), origin="lower")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize="small")
    return ax


def plot_form_factors(elements: Sequence[str], detector: Detector = Detector(), ax=None):
    """Form factors against ``|q|``, with the range one detector covers shaded.

    Parameters
    ----------
    elements : sequence of str
        Chemical symbols, e.g. ``["Al", "Fe", "Au"]``.
    detector : Detector
        Its largest ``|q|`` is shaded.
    ax : matplotlib.axes.Axes, optional
        Where to draw.

    Returns
    -------
    matplotlib.axes.Axes

    Notes
    -----
    Introduced in Chapter 1.
    """
    from ase.data import atomic_numbers

    ax = _axes(ax, (5, 3.4))
    q = np.linspace(0, 40, 400)
    for symbol in elements:
        ax.plot(q, form_factor(atomic_numbers[symbol], q), label=symbol)
    q_max = float(np.linalg.norm(scattering_vectors(detector)[0], axis=-1).max())
    ax.axvspan(0, q_max, color="0.85", label="detector range")
    ax.set_xlabel(r"$|q|$ (1/Å)")
    ax.set_ylabel(r"form factor $f(|q|)$ (electrons)")
    ax.set_xlim(0, q[-1])
    ax.set_ylim(0, None)
    ax.legend(fontsize="small")
    return ax


def _fingerprint_batch(structures: list[Atoms], detector: Detector, angle: float) -> np.ndarray:
    return np.stack([fingerprint(atoms, detector, angle) for atoms in structures])


def fingerprints(
    structures: Sequence[Atoms],
    detector: Detector = Detector(),
    angle: float = 45.0,
    n_jobs: int | None = None,
    progress: bool = True,
    batch_size: int = 16,
) -> np.ndarray:
    """Fingerprints of many structures, in parallel processes, with a progress bar.

    Parameters
    ----------
    structures : sequence of ase.Atoms
        The clusters.
    detector : Detector
        Detector geometry and wavelength.
    angle : float, default 45.0
        Rotation angle of the fingerprint, in degrees.
    n_jobs : int, optional
        Worker processes; default: all cores (``os.cpu_count()``). ``1`` runs in
        this process.
    progress : bool, default True
        Show a tqdm progress bar.
    batch_size : int, default 16
        Structures sent to a worker at once.

    Returns
    -------
    numpy.ndarray
        ``(N, n, n, 3)`` float32 fingerprints, in the order of ``structures``.

    Raises
    ------
    TypeError
        If ``structures`` is not a sequence of ``ase.Atoms``.
    ValueError
        As :func:`fingerprint`, naming the index of the offending structure.

    Notes
    -----
    Introduced in Chapter 1. Workers are joblib's loky processes; each computes
    whole fingerprints, and BLAS inside a worker is limited to one thread.
    """

    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    from crystal_course.cluster import local_processes

    if isinstance(structures, Atoms) or not isinstance(structures, Sequence):
        raise TypeError("structures must be a sequence (e.g. a list) of ase.Atoms")
    for i, atoms in enumerate(structures):
        try:
            check_atoms(atoms, name=f"structures[{i}]", min_atoms=2)
        except (TypeError, ValueError) as error:
            raise type(error)(str(error)) from None
    n = detector.n_pixels
    if len(structures) == 0:
        return np.zeros((0, n, n, 3), dtype=np.float32)
    n_jobs = local_processes(n_jobs)
    batches = [list(structures[i : i + batch_size]) for i in range(0, len(structures), batch_size)]
    bar = tqdm(total=len(structures), desc="fingerprints", unit="structure", disable=not progress)
    out = np.empty((len(structures), n, n, 3), dtype=np.float32)
    with bar:
        if n_jobs == 1:
            results = (_fingerprint_batch(b, detector, angle) for b in batches)
        else:
            results = Parallel(n_jobs=n_jobs, return_as="generator")(
                delayed(_fingerprint_batch)(b, detector, angle) for b in batches
            )
        start = 0
        for block in results:
            out[start : start + len(block)] = block
            start += len(block)
            bar.update(len(block))
    return out


def _axes(ax, figsize: tuple[float, float]):
    """``ax``, or the axes of a new figure of ``figsize`` inches."""
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=figsize)[1] if ax is None else ax


def plot_detector_angles(
    detector: Detector = Detector(),
    d_spacings: dict[str, float] | None = None,
    ax=None,
):
    """Map of the scattering angle over the detector, with predicted Bragg rings.

    Parameters
    ----------
    detector : Detector
        The detector geometry.
    d_spacings : dict of str to float, optional
        Label -> interplanar spacing in Å (nearest-neighbour units); a dashed
        circle is drawn where each reflection lands (:func:`bragg_pixel_radius`).
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure is made if omitted.

    Returns
    -------
    matplotlib.axes.Axes

    Notes
    -----
    Introduced in Chapter 1. The ring kept by :func:`ring_mask` is outlined in
    white.
    """
    import matplotlib.pyplot as plt

    ax = _axes(ax, (5, 4.2))
    n = detector.n_pixels
    image = ax.imshow(scattering_angle(detector), origin="lower", cmap="viridis")
    plt.colorbar(image, ax=ax, label=r"scattering angle $2\theta$ (degrees)")
    c = detector.center
    inner, outer = 5 * n / 32, n / 2 - n / 32
    for radius in (inner, outer):
        ax.add_patch(plt.Circle((c, c), radius, fill=False, color="white", lw=1))
    colors = plt.cm.autumn(np.linspace(0, 0.8, max(1, len(d_spacings or {}))))
    for color, (label, d) in zip(colors, (d_spacings or {}).items(), strict=False):
        radius = bragg_pixel_radius(d, detector)
        ax.add_patch(
            plt.Circle((c, c), radius, fill=False, ls="--", lw=1.5, color=color, label=label)
        )
    if d_spacings:
        ax.legend(loc="upper right", fontsize="small", framealpha=0.8)
    ax.set_xlabel("detector column (pixels)")
    ax.set_ylabel("detector row (pixels)")
    ax.set_xlim(-0.5, n - 0.5)
    ax.set_ylim(-0.5, n - 0.5)
    return ax


def plot_ewald_section(
    detector: Detector = Detector(),
    lattice_constant: float = 1.0,
    ax=None,
):
    """The Ewald sphere cut by the ``q_x``-``q_z`` plane, with a cubic reciprocal lattice.

    Draws the reciprocal-lattice points ``2 pi (h, l) / a`` of a simple-cubic
    crystal, the part of the Ewald sphere the detector sees (thick) and the
    rest of the circle through the origin (thin), in 1/Å.

    Parameters
    ----------
    detector : Detector
        The detector geometry (its wavelength sets the sphere's radius).
    lattice_constant : float, default 1.0
        Cubic lattice constant in Å (nearest-neighbour units).
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure is made if omitted.

    Returns
    -------
    matplotlib.axes.Axes

    Notes
    -----
    Introduced in Chapter 1.
    """

    ax = _axes(ax, (5, 4.2))
    k = detector.ewald_radius
    q, _ = scattering_vectors(detector)
    q_max = float(np.abs(q[..., 0]).max())
    span = 1.3 * q_max
    b = 2 * np.pi / lattice_constant
    n = int(span // b) + 1
    h, l_idx = np.meshgrid(np.arange(-n, n + 1), np.arange(-n, n + 1))
    ax.plot(b * h.ravel(), b * l_idx.ravel(), "o", ms=3, color="0.4", label="reciprocal lattice")
    angle = np.linspace(-np.pi, np.pi, 2000)
    ax.plot(k * np.sin(angle), k * np.cos(angle) - k, color="C0", lw=1, label="Ewald sphere")
    seen = np.abs(k * np.sin(angle)) <= q_max
    seen &= np.cos(angle) > 0
    ax.plot(
        k * np.sin(angle[seen]),
        k * np.cos(angle[seen]) - k,
        color="C3",
        lw=3,
        label="seen by the detector",
    )
    ax.set_xlim(-span, span)
    ax.set_ylim(-span, span)
    ax.set_aspect("equal")
    ax.set_xlabel(r"$q_x$ (1/Å)")
    ax.set_ylabel(r"$q_z$ (1/Å)")
    ax.legend(loc="lower right", fontsize="small", framealpha=0.8)
    return ax
