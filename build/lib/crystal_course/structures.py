"""Crystal structures as ``ase.Atoms``: validation, symmetry and supercells.

Symmetry comes from spglib, always given a ``(cell, scaled_positions, numbers)``
tuple (spglib 2.x returns ``None`` for an ``ase.Atoms``). Introduced in
Chapter 1 (nearest-neighbour distance, the eight prototypes in standard
orientation); Chapter 2 adds sampled prototypes and defects.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

import numpy as np
import spglib
from ase import Atoms
from ase.build import bulk
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


# ---------------------------------------------------------------------------
# Symmetry (spglib)
# ---------------------------------------------------------------------------


def spglib_cell(atoms: Atoms) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``(cell, scaled_positions, numbers)`` tuple spglib expects.

    Raises
    ------
    ValueError
        If the structure has no 3D cell (spglib needs a periodic crystal).

    Notes
    -----
    Introduced in Chapter 1.
    """
    check_atoms(atoms)
    cell = np.array(atoms.cell)
    if abs(np.linalg.det(cell)) < 1e-8:
        raise ValueError("atoms must have a 3D cell for a symmetry analysis, got a degenerate cell")
    return cell, atoms.get_scaled_positions(wrap=True), atoms.get_atomic_numbers()


def _spglib(function, *args, **kwargs):
    """Call spglib with exceptions instead of ``None`` returns and deprecation noise.

    spglib 2.7+ raises ``SpglibError`` only when ``OLD_ERROR_HANDLING`` is off
    (the old mode returns ``None`` and warns on every call). The flag is
    switched off for this call only and restored afterwards.
    """
    error_module = getattr(spglib, "error", None)
    spglib_error = getattr(error_module, "SpglibError", RuntimeError)
    old = getattr(error_module, "OLD_ERROR_HANDLING", None)
    if old is not None:
        error_module.OLD_ERROR_HANDLING = False
    try:
        result = function(*args, **kwargs)
    except spglib_error as error:
        raise ValueError(f"spglib failed: {error}") from error
    finally:
        if old is not None:
            error_module.OLD_ERROR_HANDLING = old
    if result is None:
        raise ValueError(f"spglib found no symmetry at symprec={kwargs.get('symprec')} Å")
    return result


def space_group(atoms: Atoms, symprec: float = 1e-3) -> int:
    """International space-group number (1-230) found by spglib.

    Parameters
    ----------
    atoms : ase.Atoms
        A periodic structure.
    symprec : float, default 1e-3
        spglib's distance tolerance, in Å.

    Returns
    -------
    int
        The space-group number.

    Raises
    ------
    ValueError
        If spglib finds no symmetry (e.g. overlapping atoms).

    Notes
    -----
    Introduced in Chapter 1; Chapter 2 studies how ``symprec`` decides the answer
    for defective crystals.
    """
    dataset = _spglib(spglib.get_symmetry_dataset, spglib_cell(atoms), symprec=symprec)
    return int(dataset.number)


def standard_conventional_cell(atoms: Atoms, symprec: float = 1e-3) -> Atoms:
    """The standard conventional cell in spglib's standard orientation.

    Every structure of a space group then has the same orientation: for
    cubic and tetragonal lattices the cell axes lie along x, y, z; for
    hexagonal and rhombohedral (hexagonal setting) lattices ``a`` lies along x
    and ``c`` along z.

    Parameters
    ----------
    atoms : ase.Atoms
        A periodic structure.
    symprec : float, default 1e-3
        spglib's distance tolerance, in Å.

    Returns
    -------
    ase.Atoms
        A new periodic structure with the standardised cell and positions.

    Notes
    -----
    Introduced in Chapter 1.
    """
    cell, scaled, numbers = _spglib(
        spglib.standardize_cell, spglib_cell(atoms), to_primitive=False, symprec=symprec
    )
    return Atoms(numbers=numbers, cell=cell, scaled_positions=scaled, pbc=True)


def supercell(atoms: Atoms, n_atoms: int = 250) -> Atoms:
    """Repeat a cell along its three axes into a compact cluster of about ``n_atoms``.

    Each axis gets ``n_k = round(L / h_k)`` repeats, where ``h_k`` is the cell's
    thickness along the axis (volume over the area of the opposite face) and
    ``L`` the side of a cube holding ``n_atoms`` at the crystal's density, so the
    cluster is roughly equally thick in all directions.

    Parameters
    ----------
    atoms : ase.Atoms
        A periodic cell (normally the standard conventional cell).
    n_atoms : int, default 250
        Target number of atoms.

    Returns
    -------
    ase.Atoms
        The repeated structure (its cell is the supercell).

    Notes
    -----
    Introduced in Chapter 1.
    """
    check_atoms(atoms)
    if isinstance(n_atoms, bool) or not isinstance(n_atoms, Integral) or n_atoms < 1:
        raise ValueError(f"n_atoms must be a positive integer, got {n_atoms!r}")
    cell = np.array(atoms.cell)
    volume = abs(np.linalg.det(cell))
    if volume < 1e-8:
        raise ValueError("atoms must have a 3D cell to be repeated")
    side = (n_atoms * volume / len(atoms)) ** (1 / 3)
    faces = [np.linalg.norm(np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3])) for k in range(3)]
    repeats = tuple(max(1, round(side / (volume / face))) for face in faces)
    return atoms.repeat(repeats)


# ---------------------------------------------------------------------------
# The eight prototypes of Ziletti et al. (2018)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Prototype:
    """One of the eight elemental structure types of the course.

    Attributes
    ----------
    space_group : int
        International space-group number.
    name : str
        Common name of the lattice.
    example : str
        An element whose experimental structure (``ase.build.bulk``) has it.
    """

    space_group: int
    name: str
    example: str


PROTOTYPES: tuple[Prototype, ...] = (
    Prototype(139, "body-centred tetragonal", "In"),
    Prototype(141, "beta-Sn", "Sn"),
    Prototype(166, "rhombohedral", "Bi"),
    Prototype(194, "hexagonal close-packed", "Mg"),
    Prototype(221, "simple cubic", "Po"),
    Prototype(225, "face-centred cubic", "Al"),
    Prototype(227, "diamond", "Si"),
    Prototype(229, "body-centred cubic", "Fe"),
)
"""The eight space groups of the 2018 dataset, with an ASE example for each."""


def reference_structure(space_group_number: int, n_atoms: int = 250) -> Atoms:
    """The example crystal of a prototype: standard conventional cell, about ``n_atoms``.

    Parameters
    ----------
    space_group_number : int
        One of the eight ``PROTOTYPES`` space groups.
    n_atoms : int, default 250
        Target cluster size.

    Returns
    -------
    ase.Atoms
        Experimental structure of the example element (``ase.build.bulk``),
        standardised by spglib and repeated by :func:`supercell`.

    Raises
    ------
    ValueError
        For a space group that is not one of the eight prototypes.

    Notes
    -----
    Introduced in Chapter 1.
    """
    known = {p.space_group: p for p in PROTOTYPES}
    if space_group_number not in known:
        raise ValueError(
            f"space_group_number must be one of {sorted(known)}, got {space_group_number!r}"
        )
    cell = standard_conventional_cell(bulk(known[space_group_number].example))
    return supercell(cell, n_atoms)
