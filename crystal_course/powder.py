"""Powder patterns: the kinematic intensity of Chapter 1 averaged over every orientation.

A powder, or a crystallite seen in every orientation at once, scatters the orientation
average of ``|F(q)|^2``. For a finite cluster of atoms this average is Debye's
scattering equation,

    I(q) = sum_i sum_j f_i(q) f_j(q) sin(q r_ij) / (q r_ij),

with ``r_ij`` the distance between atoms i and j (the i = j terms give ``f_i^2``) and
the X-ray form factors of :func:`crystal_course.diffraction.form_factor`. It depends
on distances only, so it does not change when the cluster is turned: no
standardisation of the cell is needed. :func:`debye_intensity` sums it without a
Python loop over pairs: the distances of each pair of species are counted in a
histogram of fine bins (:func:`pair_histograms`), and the sinc transform runs over the
bins, not over the pairs. :func:`naive_debye_intensity` is the double sum itself, the
reference for tests and for ``bench/bench_powder.py``.

Introduced in Chapter 8.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

CU_K_ALPHA = 1.5406
"""Wavelength of Cu K-alpha-1 radiation, in Å (the usual laboratory powder source)."""

BIN_WIDTH = 0.005
"""Default width of the distance bins of :func:`pair_histograms`, in Å. Each distance is
shared between its two nearest bin centres in proportion to its distance from them,
so the error of the sinc transform is of second order in ``q x`` the bin width."""


def q_from_two_theta(two_theta, wavelength: float = CU_K_ALPHA) -> np.ndarray:
    """Scattering-vector magnitude ``q = 4 pi sin(theta) / lambda``, in 1/Å.

    Parameters
    ----------
    two_theta : array_like
        Scattering angle 2θ, in degrees, in [0, 180].
    wavelength : float
        In Å.

    Notes
    -----
    Introduced in Chapter 8.
    """
    two_theta = np.asarray(two_theta, dtype=float)
    if not wavelength > 0 or not np.all((two_theta >= 0) & (two_theta <= 180)):
        raise ValueError("expected 2θ in [0, 180] degrees and a positive wavelength in Å")
    return 4 * np.pi * np.sin(np.radians(two_theta) / 2) / wavelength


def two_theta_from_q(q, wavelength: float = CU_K_ALPHA) -> np.ndarray:
    """Scattering angle 2θ, in degrees, of ``q`` in 1/Å (NaN beyond ``4 pi / lambda``).

    Notes
    -----
    Introduced in Chapter 8.
    """
    q = np.asarray(q, dtype=float)
    if not wavelength > 0 or np.any(q < 0):
        raise ValueError("expected q >= 0 in 1/Å and a positive wavelength in Å")
    s = q * wavelength / (4 * np.pi)
    with np.errstate(invalid="ignore"):
        inside = s <= 1 + 1e-12  # back-scattering, to rounding
        return np.where(inside, 2 * np.degrees(np.arcsin(np.minimum(s, 1))), np.nan)


@dataclass(frozen=True)
class PairHistograms:
    """Distances between the atoms of a cluster, counted per pair of species.

    Attributes
    ----------
    numbers : tuple of int
        Atomic numbers of the species, ascending.
    counts_per_species : tuple of int
        Atoms of each species (the i = j terms of the double sum).
    pairs : tuple of (int, int)
        ``(a, b)`` indices into ``numbers`` with ``a <= b``, one per histogram row.
    distances : numpy.ndarray
        ``(n_bins,)`` bin centres, in Å.
    counts : numpy.ndarray
        ``(n_pairs, n_bins)``: ordered pairs (i, j), i != j, of those species at
        that distance (each distance shared linearly between its two nearest bins),
        so ``counts.sum()`` is ``N (N - 1)``.
    """

    numbers: tuple[int, ...]
    counts_per_species: tuple[int, ...]
    pairs: tuple[tuple[int, int], ...]
    distances: np.ndarray
    counts: np.ndarray


def _check_cluster(atoms) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(atoms, Atoms):
        raise TypeError(f"expected an ase.Atoms cluster, got {type(atoms).__name__}")
    if len(atoms) == 0:
        raise ValueError("the cluster has no atoms")
    positions = np.asarray(atoms.positions, dtype=float)
    if not np.isfinite(positions).all():
        raise ValueError("the cluster has non-finite positions")
    numbers = np.asarray(atoms.numbers)
    if numbers.min() < 1 or numbers.max() > 98:
        raise ValueError(
            f"atomic numbers must be in 1..98 (form factors), got {sorted(set(numbers))}"
        )
    return positions, numbers


def pair_histograms(atoms: Atoms, bin_width: float = BIN_WIDTH) -> PairHistograms:
    """Count the interatomic distances of a cluster per pair of species, in fine bins.

    Parameters
    ----------
    atoms : ase.Atoms
        A finite cluster (its cell and periodicity are ignored: a periodic
        crystal must be cut to a cluster first).
    bin_width : float
        Bin width, in Å (:data:`BIN_WIDTH`).

    Returns
    -------
    PairHistograms

    Notes
    -----
    Introduced in Chapter 8.
    """
    from scipy.spatial.distance import cdist, pdist

    positions, numbers = _check_cluster(atoms)
    if not bin_width > 0:
        raise ValueError(f"bin_width must be > 0 Å, got {bin_width!r}")
    species = np.unique(numbers)
    groups = [positions[numbers == z] for z in species]
    pairs, rows = [], []
    for a in range(len(species)):
        for b in range(a, len(species)):
            d = pdist(groups[a]) if a == b else cdist(groups[a], groups[b]).ravel()
            pairs.append((a, b))
            rows.append(d / bin_width)
    n_bins = 2 + max((int(r.max()) for r in rows if r.size), default=0)
    counts = np.zeros((len(pairs), n_bins))
    for k, t in enumerate(rows):  # each distance shared by its two nearest bin centres
        low = np.floor(t).astype(np.int64)
        upper = t - low
        counts[k] = 2 * (np.bincount(low, 1 - upper, n_bins)  # ordered pairs: (i, j), (j, i)
                         + np.bincount(low + 1, upper, n_bins))  # fmt: skip
    keep = counts.any(axis=0)
    return PairHistograms(tuple(int(z) for z in species), tuple(len(g) for g in groups),
                          tuple(pairs), np.flatnonzero(keep) * bin_width,
                          counts[:, keep])  # fmt: skip


def _check_q(q) -> np.ndarray:
    q = np.asarray(q, dtype=float)
    if q.ndim != 1 or q.size == 0 or not np.isfinite(q).all() or np.any(q < 0):
        raise ValueError(f"expected a 1-D array of q >= 0 in 1/Å, got shape {q.shape}")
    return q


def debye_intensity(atoms: Atoms, q, bin_width: float = BIN_WIDTH,
                    chunk: int = 2_000_000) -> np.ndarray:  # fmt: skip
    """Orientation-averaged kinematic intensity of a cluster (Debye's equation).

    ``I(q) = sum_a N_a f_a^2 + sum_(a<=b) f_a f_b sum_k n_ab(r_k) sinc(q r_k)``:
    the self terms, then the histogram of distances of each pair of species
    (:func:`pair_histograms`) transformed with ``sin(q r) / (q r)``. The cost
    grows with the number of bins, not of pairs.

    Parameters
    ----------
    atoms : ase.Atoms
        A finite cluster, in Å.
    q : array_like
        ``(n_q,)`` scattering-vector magnitudes, in 1/Å.
    bin_width : float
        Distance bins, in Å.
    chunk : int
        Largest ``n_q x n_bins`` block evaluated at once (memory).

    Returns
    -------
    numpy.ndarray
        ``(n_q,)`` intensity in electrons² (no polarisation or Lorentz factor).

    Notes
    -----
    Introduced in Chapter 8.
    """
    from crystal_course.diffraction import form_factor

    q = _check_q(q)
    hist = pair_histograms(atoms, bin_width)
    f = form_factor(np.array(hist.numbers), q)  # (n_species, n_q)
    intensity = np.asarray(hist.counts_per_species, dtype=float) @ f**2
    weights = np.array([f[a] * f[b] for a, b in hist.pairs])  # (n_pairs, n_q)
    step = max(1, chunk // max(1, len(hist.distances)))
    for start in range(0, len(q), step):
        block = slice(start, start + step)
        sinc = np.sinc(np.outer(q[block], hist.distances) / np.pi)  # sin(qr)/(qr)
        intensity[block] += np.einsum("pq,qk,pk->q", weights[:, block], sinc, hist.counts)
    return intensity


def naive_debye_intensity(atoms: Atoms, q) -> np.ndarray:
    """Debye's double sum over every pair of atoms and every q, as written.

    The reference of :func:`debye_intensity`: NumPy's ``sinc`` over the full
    ``(n_q, N, N)`` array of ``q r_ij`` (float64). Memory grows as ``n_q N^2``:
    use it for small clusters only.

    Notes
    -----
    Introduced in Chapter 8.
    """
    from crystal_course.diffraction import form_factor

    positions, numbers = _check_cluster(atoms)
    q = _check_q(q)
    r = np.linalg.norm(positions[:, None] - positions[None, :], axis=-1)  # (N, N)
    f = form_factor(numbers, q)  # (N, n_q)
    out = np.empty(len(q))
    for k, qk in enumerate(q):  # one q at a time keeps memory at N^2
        out[k] = f[:, k] @ np.sinc(qk * r / np.pi) @ f[:, k]
    return out


def powder_pattern(atoms: Atoms, q, bin_width: float = BIN_WIDTH) -> np.ndarray:
    """:func:`debye_intensity` scaled to a maximum of 1 over ``q`` (the classifiers' input).

    Notes
    -----
    Introduced in Chapter 8.
    """
    intensity = debye_intensity(atoms, q, bin_width)
    return intensity / intensity.max()


def debye_peaks(atoms: Atoms, two_theta, wavelength: float = CU_K_ALPHA,
                prominence: float = 0.02) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """A cluster's powder pattern over ``two_theta`` (degrees) and the angles of its peaks.

    Peaks are the local maxima that stand at least ``prominence`` (of the maximum)
    above their surroundings (:func:`scipy.signal.find_peaks`).

    Returns
    -------
    pattern : numpy.ndarray
        :func:`powder_pattern` at each angle.
    peaks : numpy.ndarray
        2θ of each peak, degrees.

    Notes
    -----
    Introduced in Chapter 8.
    """
    from scipy.signal import find_peaks

    two_theta = np.asarray(two_theta, dtype=float)
    pattern = powder_pattern(atoms, q_from_two_theta(two_theta, wavelength))
    found, _ = find_peaks(pattern, prominence=prominence)
    return pattern, two_theta[found]


def bragg_peaks(cell: Atoms, two_theta_range=(30.0, 100.0), radiation: str = "CuKa1"):
    """The Bragg peaks of a periodic crystal by pymatgen's ``XRDCalculator``, the field's
    standard.

    Returns
    -------
    pymatgen.analysis.diffraction.core.DiffractionPattern
        ``.x`` the 2θ of each peak (degrees), ``.y`` its intensity (maximum 100),
        ``.hkls`` its reflections.

    Notes
    -----
    Introduced in Chapter 8.
    """
    from pymatgen.analysis.diffraction.xrd import XRDCalculator
    from pymatgen.io.ase import AseAtomsAdaptor

    from crystal_course.structures import check_atoms

    check_atoms(cell)
    return XRDCalculator(radiation).get_pattern(AseAtomsAdaptor.get_structure(cell),
                                                two_theta_range=tuple(two_theta_range))  # fmt: skip
