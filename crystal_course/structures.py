"""Crystal structures as ``ase.Atoms``: validation and geometry shared by all chapters.

Introduced in Chapter 1 (nearest-neighbour distance); Chapter 2 builds the
prototypes, supercells and defects on top of it.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from scipy.spatial import cKDTree

MAX_Z = 98
"""Heaviest element with tabulated form factors (californium)."""


def check_atoms(atoms: object, name: str = "atoms", min_atoms: int = 1) -> Atoms:
    """Validate a structure at a public boundary.

    Parameters
    ----------
    atoms : ase.Atoms
        The structure.
    name : str
        Argument name used in error messages.
    min_atoms : int
        Smallest acceptable number of atoms.

    Returns
    -------
    ase.Atoms
        The same object.

    Raises
    ------
    TypeError
        If ``atoms`` is not an ``ase.Atoms``.
    ValueError
        If it has fewer than ``min_atoms`` atoms, non-finite positions, or an
        element without form factors (Z outside 1..98).

    Notes
    -----
    Introduced in Chapter 1.
    """
    if not isinstance(atoms, Atoms):
        raise TypeError(f"{name} must be an ase.Atoms, got {type(atoms).__name__}")
    if len(atoms) < min_atoms:
        what = "an empty Atoms" if len(atoms) == 0 else f"{len(atoms)} atom(s)"
        raise ValueError(f"{name} must have at least {min_atoms} atom(s), got {what}")
    positions = atoms.get_positions()
    if not np.isfinite(positions).all():
        bad = np.flatnonzero(~np.isfinite(positions).all(axis=1))
        raise ValueError(f"{name} has non-finite (NaN/inf) positions at atom indices {bad[:5]}")
    numbers = atoms.get_atomic_numbers()
    unknown = numbers[(numbers < 1) | (numbers > MAX_Z)]
    if unknown.size:
        raise ValueError(
            f"{name} contains element(s) with atomic number {sorted(set(unknown.tolist()))}; "
            f"expected real elements with 1 <= Z <= {MAX_Z}"
        )
    return atoms


def nearest_neighbour_distances(atoms: Atoms) -> np.ndarray:
    """Distance from each atom to its nearest other atom, in Å.

    The structure is treated as a finite cluster: periodic images are ignored,
    as in the fingerprint's scattering sum.

    Parameters
    ----------
    atoms : ase.Atoms
        At least two atoms.

    Returns
    -------
    numpy.ndarray
        ``(N,)`` float64 distances in Å.

    Raises
    ------
    ValueError
        For fewer than two atoms (no nearest neighbour) or coincident atoms.

    Notes
    -----
    Introduced in Chapter 1.
    """
    check_atoms(atoms, min_atoms=2)
    distances, _ = cKDTree(atoms.get_positions()).query(atoms.get_positions(), k=2)
    nn = distances[:, 1]
    if not (nn > 0).all():
        raise ValueError("atoms has coincident atoms (nearest-neighbour distance 0)")
    return nn


def nearest_neighbour_distance(atoms: Atoms) -> float:
    """Average nearest-neighbour distance of a finite cluster, in Å.

    Ziletti et al. (2018) divide all positions by this length before computing
    the diffraction fingerprint.

    Parameters
    ----------
    atoms : ase.Atoms
        At least two atoms.

    Returns
    -------
    float
        Mean of :func:`nearest_neighbour_distances`, in Å.

    Notes
    -----
    Introduced in Chapter 1.
    """
    return float(nearest_neighbour_distances(atoms).mean())
