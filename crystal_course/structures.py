"""Crystal structures as ``ase.Atoms``: prototypes, symmetry, supercells and defects.

Symmetry comes from spglib, always given a ``(cell, scaled_positions, numbers)``
tuple (spglib 2.x gives no dataset for an ``ase.Atoms``). The dataset pipeline
of Ziletti et al. (2018) is, in this order: random rotation -> standard
conventional cell (spglib) -> supercell of about 250 atoms -> defects
(:func:`sample_structure`). Introduced in Chapter 1 (nearest-neighbour
distance, the eight prototypes in standard orientation); Chapter 2 adds
sampled prototypes, rotations and defects.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import spglib
from ase import Atoms
from ase.build import bulk
from ase.data import atomic_numbers, covalent_radii
from ase.spacegroup import crystal
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

# spglib's C library prints warnings such as "Primitive lattice cleaning is
# incomplete" straight to the terminal for heavily damaged cells; the course
# measures and reports those failures itself. Set SPGLIB_WARNING=ON to see them.
os.environ.setdefault("SPGLIB_WARNING", "OFF")

MAX_Z = 98
"""Heaviest element with tabulated form factors (californium)."""

MAX_ATOMS = 50_000
"""Largest structure the course accepts, in atoms, wherever a structure or a size enters.

A hundred times the course's clusters (250-500 atoms): a fingerprint of 55,000 atoms took
0.7 s on the course's 2-core machine, and the cost grows faster than the number of atoms,
so far larger inputs would run for minutes without a word. Cut a cluster first
(:func:`supercell`, :func:`crystal_course.zone_axis.spherical_cluster`)."""


def check_n_atoms(n_atoms, name: str = "n_atoms") -> int:
    """A structure size: a whole number of atoms from 1 to :data:`MAX_ATOMS`.

    Notes
    -----
    Introduced in Chapter 1.
    """
    if isinstance(n_atoms, bool) or not isinstance(n_atoms, Integral) or n_atoms < 1:
        raise ValueError(f"{name} must be a positive integer, got {n_atoms!r}")
    if n_atoms > MAX_ATOMS:
        raise ValueError(
            f"{name}={n_atoms} is more than the {MAX_ATOMS} atoms the course handles "
            "(structures.MAX_ATOMS)"
        )
    return int(n_atoms)


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
        If it has fewer than ``min_atoms`` or more than :data:`MAX_ATOMS` atoms,
        non-finite positions, or an element without form factors (Z outside 1..98).

    Notes
    -----
    Introduced in Chapter 1.
    """
    if not isinstance(atoms, Atoms):
        raise TypeError(f"{name} must be an ase.Atoms, got {type(atoms).__name__}")
    if len(atoms) < min_atoms:
        what = "an empty Atoms" if len(atoms) == 0 else f"{len(atoms)} atom(s)"
        raise ValueError(f"{name} must have at least {min_atoms} atom(s), got {what}")
    if len(atoms) > MAX_ATOMS:
        raise ValueError(
            f"{name} has {len(atoms)} atoms, more than the {MAX_ATOMS} the course handles "
            "(structures.MAX_ATOMS): cut a cluster of it first (structures.supercell, "
            "zone_axis.spherical_cluster)"
        )
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


def check_symprec(symprec, name: str = "symprec") -> float:
    """A spglib tolerance, checked before spglib sees it: a finite number of Å, > 0.

    spglib crashes the process on a negative or NaN tolerance and does not return
    on 0, so every tolerance of the package passes through this check first.

    Parameters
    ----------
    symprec : float
        The tolerance, in Å (any real number type, NumPy's included).
    name : str, default "symprec"
        The argument's name, for the message.

    Returns
    -------
    float

    Raises
    ------
    TypeError
        If it is not a real number.
    ValueError
        If it is not finite or not positive.

    Notes
    -----
    Introduced in Chapter 2, where the tolerance is varied.
    """
    if isinstance(symprec, bool) or not isinstance(symprec, Real):
        raise TypeError(f"{name} must be a number of Å (e.g. 1e-3), got {symprec!r}")
    value = float(symprec)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite tolerance > 0 in Å (e.g. 1e-3), got {symprec!r}")
    return value


def check_symprecs(symprecs, name: str = "symprecs") -> tuple[float, ...]:
    """A non-empty sequence of tolerances, each checked by :func:`check_symprec`.

    Notes
    -----
    Introduced in Chapter 3.
    """
    if isinstance(symprecs, (str, bytes)) or not hasattr(symprecs, "__iter__"):
        raise TypeError(f"{name} must be a sequence of tolerances in Å, got {symprecs!r}")
    values = tuple(check_symprec(s, f"{name}[{i}]") for i, s in enumerate(symprecs))
    if not values:
        raise ValueError(f"{name} must hold at least one tolerance")
    return values


def _spglib(function, *args, **kwargs):
    """Call spglib with exceptions instead of ``None`` returns and deprecation noise.

    spglib 2.7+ raises ``SpglibError`` only when ``OLD_ERROR_HANDLING`` is off
    (the old mode returns ``None`` and warns on every call). The flag is
    switched off for this call only and restored afterwards.
    """
    if "symprec" in kwargs:
        kwargs["symprec"] = check_symprec(kwargs["symprec"])
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


def primitive_cell(atoms: Atoms, symprec: float = 1e-3) -> Atoms:
    """spglib's primitive cell of a crystal, in the crystal's own frame (not rotated).

    Parameters
    ----------
    atoms : ase.Atoms
        A periodic structure.
    symprec : float, default 1e-3
        spglib's distance tolerance, in Å.

    Returns
    -------
    ase.Atoms
        One lattice point per cell: for fcc one atom, spanned by a/2 <110>.

    Notes
    -----
    Introduced in Chapter 1.
    """
    lattice, scaled, numbers = _spglib(
        spglib.standardize_cell, spglib_cell(atoms), to_primitive=True, no_idealize=True,
        symprec=symprec,
    )  # fmt: skip
    return Atoms(numbers=numbers, cell=lattice, scaled_positions=scaled, pbc=True)


def plot_cells(cells: dict, atoms: Atoms | None = None, ax=None):
    """Draw unit cells as parallelepipeds in 3D, with the atoms of one structure.

    Parameters
    ----------
    cells : dict of str to array_like
        Label -> ``(3, 3)`` rows a, b, c (Å), each drawn from the origin.
    atoms : ase.Atoms, optional
        Atoms to draw as points (e.g. those of the conventional cell).
    ax : mpl_toolkits.mplot3d.Axes3D, optional
        Axes to draw on (default: a new 3D figure).

    Returns
    -------
    mpl_toolkits.mplot3d.Axes3D

    Notes
    -----
    Introduced in Chapter 1.
    """
    import itertools

    import matplotlib.pyplot as plt

    if ax is None:
        ax = plt.figure(figsize=(4.5, 4.5)).add_subplot(projection="3d")
    colours = itertools.cycle(("k", "C1", "C0", "C2"))
    for (label, cell), colour in zip(cells.items(), colours, strict=False):
        cell = np.asarray(cell, dtype=float)
        if cell.shape != (3, 3):
            raise ValueError(f"cell {label!r} must be (3, 3) rows a, b, c, got {cell.shape}")
        corners = np.array(list(itertools.product((0, 1), repeat=3)), dtype=float)
        for i, j in itertools.combinations(range(8), 2):
            if np.abs(corners[i] - corners[j]).sum() == 1:  # an edge of the parallelepiped
                ends = corners[[i, j]] @ cell
                ax.plot(*ends.T, color=colour, lw=1.5,
                        label=label if (i, j) == (0, 1) else None)  # fmt: skip
    if atoms is not None:
        ax.scatter(*atoms.positions.T, s=60, color="C3", depthshade=True, label="atoms")
    ax.set_xlabel("x (Å)")
    ax.set_ylabel("y (Å)")
    ax.set_zlabel("z (Å)")
    ax.legend(fontsize=8, loc="upper left")
    return ax


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
    n_atoms = check_n_atoms(n_atoms)
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
class Variant:
    """One structure type of a prototype's space group (e.g. A7 and A10 for R-3m).

    Attributes
    ----------
    name : str
        Strukturbericht name and prototype element, e.g. ``"A7 (alpha-As)"``.
    example : str
        An element whose experimental structure (``ase.build.bulk``) has it.
    basis : tuple of (x, y, z)
        Wyckoff positions (fractional, conventional cell).
    c_over_a : (float, float)
        Range of c/a sampled (hexagonal setting for R-3m).
    u : (float, float), optional
        Range sampled for the free coordinate ``z`` of a basis site ``(0, 0, z)``;
        the ``z`` written in ``basis`` is replaced by the drawn value.
    collapse : tuple of float
        c/a values at which the lattice gains symmetry (refused when built).
    """

    name: str
    example: str
    basis: tuple[tuple[float, float, float], ...]
    c_over_a: tuple[float, float]
    u: tuple[float, float] | None = None
    collapse: tuple[float, ...] = ()


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
    basis, c_over_a, collapse
        Wyckoff positions, sampled c/a range and collapse values, for prototypes
        of one structure type.
    variants : tuple of Variant
        For a space group whose elements come in several structure types: each
        sampled crystal is one of them, drawn with equal probability (then
        ``basis``, ``c_over_a`` and ``collapse`` are unused).
    """

    space_group: int
    name: str
    example: str
    basis: tuple[tuple[float, float, float], ...] = ((0.0, 0.0, 0.0),)
    lattice: str = "cubic"
    c_over_a: tuple[float, float] | None = None
    collapse: tuple[float, ...] = ()
    variants: tuple[Variant, ...] = ()


PROTOTYPES: tuple[Prototype, ...] = (
    Prototype(
        139,
        "body-centred tetragonal",
        "In",
        lattice="tetragonal",
        c_over_a=(1.50, 1.90),
        collapse=(1.0, math.sqrt(2)),
    ),
    Prototype(
        141, "beta-Sn", "Sn", lattice="tetragonal", c_over_a=(0.50, 0.60), collapse=(math.sqrt(2),)
    ),
    Prototype(
        166,
        "rhombohedral",
        "Bi",
        lattice="hexagonal",
        variants=(
            # As, Sb, Bi: two atoms at +-(u, u, u) of the rhombohedral cell, a distorted
            # simple cubic (u = 1/4 and c/a = sqrt 6 would be sc itself).
            Variant("A7 (alpha-As)", "Bi", ((0.0, 0.0, 0.0),), (2.55, 2.85), u=(0.224, 0.240)),
            # Hg: one atom per rhombohedral cell.
            Variant(
                "A10 (alpha-Hg)",
                "Hg",
                ((0.0, 0.0, 0.0),),
                (1.75, 2.25),
                collapse=(math.sqrt(3 / 8), math.sqrt(3 / 2), math.sqrt(6)),
            ),
        ),
    ),
    Prototype(
        194,
        "hexagonal close-packed",
        "Mg",
        basis=((1 / 3, 2 / 3, 1 / 4),),
        lattice="hexagonal",
        c_over_a=(1.55, 1.90),  # Be 1.57 ... Mg 1.62 ... Zn 1.86, Cd 1.89
    ),
    Prototype(221, "simple cubic", "Po"),
    Prototype(225, "face-centred cubic", "Al"),
    Prototype(227, "diamond", "Si"),
    Prototype(229, "body-centred cubic", "Fe"),
)
"""The eight space groups of the 2018 dataset.

Each has an ASE example element (its experimental structure), the Wyckoff basis
used by :func:`build_prototype`, and for the non-cubic ones the range of c/a
sampled (hexagonal setting for 166) and the c/a values at which the lattice
collapses to a cubic one (bct: 1 -> bcc, sqrt 2 -> fcc; beta-Sn: sqrt 2 ->
diamond; A10 rhombohedral: sqrt(3/8) -> bcc, sqrt(3/2) -> sc, sqrt 6 -> fcc).
Space group 166 holds the two elemental structure types of R-3m with one or two
atoms per cell: A7 (As, Sb, Bi) and A10 (Hg). Every range contains its examples'
experimental values (``tests/test_structures.py``).
"""


def variants(proto: Prototype) -> tuple[Variant, ...]:
    """The structure types a prototype samples (one, built from its own fields, if it
    has no explicit variants).

    Notes
    -----
    Introduced in Chapter 2.
    """
    if proto.variants:
        return proto.variants
    if proto.c_over_a is None:
        return (Variant(proto.name, proto.example, proto.basis, (1.0, 1.0)),)
    return (Variant(proto.name, proto.example, proto.basis, proto.c_over_a, None, proto.collapse),)


CLASSES: tuple[str, ...] = (
    "bct (139)",
    "beta-Sn (141)",
    "rh/hcp (166+194)",
    "sc (221)",
    "fcc (225)",
    "diamond (227)",
    "bcc (229)",
)
"""The seven classes of Ziletti et al. (2018): 166 and 194 merged."""

CLASSES_8: tuple[str, ...] = tuple(f"{p.name} ({p.space_group})" for p in PROTOTYPES)
"""One class per space group, for an 8-class labelling."""

_CLASS_OF_GROUP = {139: 0, 141: 1, 166: 2, 194: 2, 221: 3, 225: 4, 227: 5, 229: 6}

ELEMENTS: tuple[str, ...] = (
    "Li",
    "Na",
    "K",
    "Rb",
    "Cs",
    "Be",
    "Mg",
    "Ca",
    "Sr",
    "Ba",
    "Sc",
    "Y",
    "Ti",
    "Zr",
    "Hf",
    "V",
    "Nb",
    "Ta",
    "Cr",
    "Mo",
    "W",
    "Mn",
    "Re",
    "Fe",
    "Ru",
    "Os",
    "Co",
    "Rh",
    "Ir",
    "Ni",
    "Pd",
    "Pt",
    "Cu",
    "Ag",
    "Au",
    "Zn",
    "Cd",
    "Hg",
    "Al",
    "Ga",
    "In",
    "Tl",
    "Si",
    "Ge",
    "Sn",
    "Pb",
    "As",
    "Sb",
    "Bi",
    "Po",
)
"""Elements the dataset draws from (any element in any prototype, as in AFLOWLIB)."""


def class_index(space_group_number: int, merged: bool = True) -> int:
    """Class label of a prototype space group.

    Parameters
    ----------
    space_group_number : int
        One of the eight prototype space groups.
    merged : bool, default True
        Seven classes (:data:`CLASSES`, 166 and 194 together) or eight
        (:data:`CLASSES_8`).

    Notes
    -----
    Introduced in Chapter 2.
    """
    if space_group_number not in _CLASS_OF_GROUP:
        raise ValueError(
            f"space_group_number must be one of {sorted(_CLASS_OF_GROUP)}, "
            f"got {space_group_number!r}"
        )
    if merged:
        return _CLASS_OF_GROUP[space_group_number]
    return [p.space_group for p in PROTOTYPES].index(space_group_number)


def prototype(key: int | str | Prototype) -> Prototype:
    """Look a prototype up by space-group number, name, or pass one through.

    Notes
    -----
    Introduced in Chapter 2.
    """
    if isinstance(key, Prototype):
        return key
    for proto in PROTOTYPES:
        if key in (proto.space_group, proto.name):
            return proto
    known = ", ".join(f"{p.space_group} ({p.name})" for p in PROTOTYPES)
    raise ValueError(f"unknown prototype {key!r}; expected one of: {known}")


def _as_rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, Integral) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy Generator, an int seed or None, got {type(rng).__name__}")


def _periodic_nn(atoms: Atoms) -> float:
    """Nearest-neighbour distance of the infinite crystal (interior of a 3x3x3 block)."""
    return float(nearest_neighbour_distances(atoms.repeat(3)).min())


def build_prototype(
    proto: int | str | Prototype,
    element: str = "Cu",
    rng: np.random.Generator | int | None = None,
    *,
    c_over_a: float | None = None,
    nn_distance: float | None = None,
    variant: str | None = None,
) -> Atoms:
    """Conventional cell of a prototype, checked by spglib.

    Parameters
    ----------
    proto : int, str or Prototype
        Space-group number (139, 141, 166, 194, 221, 225, 227, 229) or name.
    element : str, default "Cu"
        Chemical symbol of every atom.
    rng : numpy.random.Generator, int or None
        Draws c/a uniformly from the prototype's range when ``c_over_a`` is not
        given; ``None`` with no ``c_over_a`` uses the middle of the range.
    c_over_a : float, optional
        Axial ratio of the tetragonal or hexagonal cell (ignored for cubic).
        May be chosen near a collapse value (to study thresholds) but not at one.
    nn_distance : float, optional
        Nearest-neighbour distance in Å; default twice the element's covalent
        radius.
    variant : str, optional
        Structure type of a prototype with several (:func:`variants`), by name
        or Strukturbericht symbol (``"A7"``); default: drawn with equal
        probability from ``rng`` (the first one without ``rng``).

    Returns
    -------
    ase.Atoms
        The periodic conventional cell, with ``info["space_group"]``,
        ``info["c_over_a"]``, ``info["variant"]`` and, for a structure type with a
        free coordinate, ``info["u"]``.

    Raises
    ------
    ValueError
        For an unknown prototype or element, a non-positive length, or a
        c/a within 1e-3 of a collapse value.
    RuntimeError
        If spglib (symprec 1e-3 Å) does not find the intended space group.

    Notes
    -----
    Introduced in Chapter 2.
    """
    proto = prototype(proto)
    if element not in atomic_numbers or atomic_numbers[element] < 1:
        raise ValueError(f"element must be a chemical symbol, got {element!r}")
    if nn_distance is None:
        nn_distance = 2 * float(covalent_radii[atomic_numbers[element]])
    if not (isinstance(nn_distance, Real) and math.isfinite(nn_distance) and nn_distance > 0):
        raise ValueError(f"nn_distance must be a positive length in Å, got {nn_distance!r}")
    rng_ = _as_rng(rng) if rng is not None else None
    kinds = variants(proto)
    if variant is None:
        many = rng_ is not None and len(kinds) > 1  # one type: no draw, streams unchanged
        kind = kinds[int(rng_.integers(len(kinds)))] if many else kinds[0]
    else:
        matches = [k for k in kinds if variant in (k.name, k.name.split()[0])]
        if not matches:
            names = ", ".join(k.name for k in kinds)
            raise ValueError(
                f"variant of {proto.space_group} must be one of {names}; got {variant!r}"
            )
        kind = matches[0]
    ratio = 1.0
    if proto.c_over_a is not None or proto.variants:
        low, high = kind.c_over_a
        if c_over_a is None:
            c_over_a = rng_.uniform(low, high) if rng_ is not None else (low + high) / 2
        if not (isinstance(c_over_a, Real) and math.isfinite(c_over_a) and c_over_a > 0):
            raise ValueError(f"c_over_a must be a positive number, got {c_over_a!r}")
        for value in kind.collapse:
            if abs(c_over_a - value) < 1e-3:
                raise ValueError(
                    f"c_over_a={c_over_a:.4f} is where {proto.space_group} collapses to a "
                    f"higher symmetry ({value:.4f}); choose another value"
                )
        ratio = float(c_over_a)
    basis = list(kind.basis)
    z = None
    if kind.u is not None:
        low, high = kind.u
        z = float(rng_.uniform(low, high)) if rng_ is not None else (low + high) / 2
        basis = [(0.0, 0.0, z)]
    gamma = 120 if proto.lattice == "hexagonal" else 90
    atoms = crystal(
        element,
        basis,
        spacegroup=proto.space_group,
        cellpar=[1.0, 1.0, ratio, 90, 90, gamma],
    )
    atoms.set_cell(atoms.cell * (nn_distance / _periodic_nn(atoms)), scale_atoms=True)
    found = space_group(atoms, symprec=1e-3)
    if found != proto.space_group:
        raise RuntimeError(
            f"built {proto.name} (c/a={ratio:.4f}) but spglib finds space group {found}, "
            f"not {proto.space_group}"
        )
    atoms.info.update(space_group=proto.space_group, c_over_a=ratio, variant=kind.name)
    if z is not None:
        atoms.info["u"] = z
    return atoms


def random_rotation(atoms: Atoms, rng: np.random.Generator | int | None = None) -> Atoms:
    """The structure (positions and cell) rotated by a uniformly random rotation.

    A finite cluster (a cell of rank below 3) has its positions rotated directly.

    Notes
    -----
    Introduced in Chapter 2.
    """
    check_atoms(atoms)
    matrix = Rotation.random(random_state=_as_rng(rng)).as_matrix()
    rotated = atoms.copy()
    if atoms.cell.rank < 3:  # no cell to carry the atoms along
        rotated.positions = atoms.positions @ matrix.T
        rotated.set_cell(np.array(atoms.cell) @ matrix.T)
        return rotated
    rotated.set_cell(np.array(atoms.cell) @ matrix.T, scale_atoms=True)
    return rotated


def add_vacancies(atoms: Atoms, fraction: float, rng: np.random.Generator | int | None) -> Atoms:
    """Remove ``int(N * fraction)`` atoms chosen at random.

    Parameters
    ----------
    atoms : ase.Atoms
        The structure (normally the ~250-atom supercell).
    fraction : float
        Vacancy concentration, ``0 <= fraction < 1``.
    rng : numpy.random.Generator, int or None
        Source of randomness.

    Notes
    -----
    Introduced in Chapter 2.
    """
    check_atoms(atoms)
    if not (isinstance(fraction, Real) and 0 <= fraction < 1):
        raise ValueError(f"fraction must be in [0, 1), got {fraction!r}")
    remove = _as_rng(rng).choice(len(atoms), int(len(atoms) * fraction), replace=False)
    keep = np.setdiff1d(np.arange(len(atoms)), remove)
    return atoms[keep]


def add_displacements(atoms: Atoms, sigma: float, rng: np.random.Generator | int | None) -> Atoms:
    """Displace every atom by a Gaussian vector of standard deviation ``sigma x NN`` per axis.

    Parameters
    ----------
    atoms : ase.Atoms
        The structure.
    sigma : float
        Standard deviation as a fraction of the nearest-neighbour distance
        (e.g. 0.02 = 2 % of NN), ``>= 0``.
    rng : numpy.random.Generator, int or None
        Source of randomness.

    Notes
    -----
    Introduced in Chapter 2.
    """
    check_atoms(atoms)
    if not (isinstance(sigma, Real) and math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"sigma must be a non-negative fraction of the NN distance, got {sigma!r}")
    displaced = atoms.copy()
    if sigma > 0:
        scale = sigma * nearest_neighbour_distance(atoms)
        displaced.positions += _as_rng(rng).normal(scale=scale, size=(len(atoms), 3))
    return displaced


def sample_structure(
    proto: int | str | Prototype,
    rng: np.random.Generator | int | None = None,
    *,
    element: str | None = None,
    c_over_a: float | None = None,
    vacancies: float = 0.0,
    displacements: float = 0.0,
    n_atoms: int = 250,
    standardise: bool = True,
    skew: bool = False,
) -> Atoms:
    """One structure through the whole 2018 pipeline.

    Random element (unless given) and c/a -> conventional cell -> random
    rotation -> standard conventional cell (spglib) -> supercell of about
    ``n_atoms`` -> vacancies -> displacements. Defects come last, so every
    structure is in the canonical orientation.

    Parameters
    ----------
    proto : int, str or Prototype
        Space group number or name of one of :data:`PROTOTYPES`.
    rng : numpy.random.Generator, int or None
        Source of randomness.
    element : str, optional
        Chemical symbol (default: drawn from :data:`ELEMENTS`).
    c_over_a : float, optional
        Axial ratio of a non-cubic prototype (default: drawn from its range).
    vacancies : float, default 0
        Vacancy fraction.
    displacements : float, default 0
        Displacement sigma as a fraction of the nearest-neighbour distance.
    n_atoms : int, default 250
        Target cluster size.
    standardise : bool, default True
        ``False`` skips spglib's standard conventional cell: the supercell is
        built from the randomly rotated cell, so the crystal keeps a random
        orientation (Chapter 3's look beyond the paper).
    skew : bool, default False
        Build the supercell of the standard cell with :func:`skewed_supercell`
        instead of :func:`supercell`: a box whose edges lie along no low-index
        direction (Chapter 3's practitioner's contest).

    Returns
    -------
    ase.Atoms
        With ``info`` keys ``space_group``, ``element``, ``c_over_a``,
        ``vacancies``, ``displacements``.

    Notes
    -----
    Introduced in Chapter 2.
    """
    rng = _as_rng(rng)
    if element is None:
        element = str(rng.choice(ELEMENTS))
    cell = build_prototype(proto, element, rng, c_over_a=c_over_a)
    return _pipeline(cell, rng, element, vacancies, displacements, n_atoms, standardise, skew)


def _pipeline(
    cell, rng, element, vacancies, displacements, n_atoms, standardise=True, skew=False
) -> Atoms:
    """Rotate -> standard conventional cell -> supercell -> vacancies -> displacements."""
    info = dict(cell.info)
    rotated = random_rotation(cell, rng)
    base = standard_conventional_cell(rotated) if standardise else rotated
    atoms = skewed_supercell(base, n_atoms, rng) if skew else supercell(base, n_atoms)
    atoms = add_displacements(add_vacancies(atoms, vacancies, rng), displacements, rng)
    atoms.info.update(info, element=element, vacancies=vacancies, displacements=displacements)
    return atoms


def pipeline(
    cell: Atoms,
    rng: np.random.Generator | int | None = None,
    *,
    vacancies: float = 0.0,
    displacements: float = 0.0,
    n_atoms: int = 250,
) -> Atoms:
    """Any periodic crystal through the 2018 pipeline, as :func:`sample_structure` does.

    Random rotation -> spglib's standard conventional cell -> supercell of about
    ``n_atoms`` -> vacancies -> displacements. For crystals that are not one of the
    course's prototypes: compounds, strained elements, other space groups.

    Parameters
    ----------
    cell : ase.Atoms
        A periodic crystal (any cell of it); its ``info`` is kept.
    rng : numpy.random.Generator, int or None
        Source of the rotation and the defects.
    vacancies : float, default 0
        Vacancy fraction.
    displacements : float, default 0
        Displacement sigma as a fraction of the nearest-neighbour distance.
    n_atoms : int, default 250
        Target cluster size.

    Returns
    -------
    ase.Atoms
        With ``info["element"]`` the chemical formula of ``cell``.

    Notes
    -----
    Introduced in Chapter 3 (crystals outside the training distribution).
    """
    check_atoms(cell)
    return _pipeline(cell, _as_rng(rng), cell.get_chemical_formula(), vacancies,
                     displacements, n_atoms)  # fmt: skip


@functools.cache
def real_elements() -> dict[str, int]:
    """Elements whose experimental structure has one of the eight prototypes' space groups.

    Every element with a crystal structure in ``ase.data.reference_states`` is
    built with ``ase.build.bulk`` and kept if spglib (10⁻³ Å) finds one of the
    eight groups. These crystals are measured, not sampled from the course's
    prototype ranges: an out-of-sample test of a model trained on prototypes.

    Returns
    -------
    dict of str to int
        Chemical symbol -> space-group number, in order of atomic number.

    Notes
    -----
    Introduced in Chapter 3.
    """
    from ase.data import chemical_symbols, reference_states

    found = {}
    for z, state in enumerate(reference_states):
        if not state or "symmetry" not in state:
            continue
        try:
            group = space_group(bulk(chemical_symbols[z]))
        except (ValueError, RuntimeError, KeyError, NotImplementedError):
            continue  # ASE cannot build it as a bulk crystal, or spglib finds nothing
        if group in _CLASS_OF_GROUP:
            found[chemical_symbols[z]] = group
    return found


def real_element_crystal(
    element: str,
    rng: np.random.Generator | int | None = None,
    *,
    vacancies: float = 0.0,
    displacements: float = 0.0,
    n_atoms: int = 250,
) -> Atoms:
    """The experimental crystal of an element through the 2018 pipeline.

    ``ase.build.bulk(element)`` (its structure in ``ase.data.reference_states``)
    -> random rotation -> spglib's standard conventional cell -> supercell of
    about ``n_atoms`` -> vacancies -> displacements: the same steps as
    :func:`sample_structure`, from a measured structure instead of a sampled one.

    Raises
    ------
    ValueError
        For an element that is not in :func:`real_elements`.

    Notes
    -----
    Introduced in Chapter 3.
    """
    known = real_elements()
    if element not in known:
        raise ValueError(
            f"element must be one of the {len(known)} whose experimental structure has one of "
            f"the eight space groups ({', '.join(known)}), got {element!r}"
        )
    cell = bulk(element)
    cell.info.update(space_group=known[element])
    return _pipeline(cell, _as_rng(rng), element, vacancies, displacements, n_atoms)


def sample_classes(
    n_per_class: int, seed: int = 0, merged: bool = True, **kwargs
) -> tuple[list[Atoms], np.ndarray]:
    """``n_per_class`` structures of every class, through :func:`sample_structure`.

    A merged class (166+194) alternates its space groups. Structure ``i`` of
    class ``c`` has its own random stream ``SeedSequence([seed, 2, c, i])``,
    distinct from the streams of :mod:`crystal_course.dataset`.

    Parameters
    ----------
    n_per_class : int
        Structures per class.
    seed : int, default 0
        Seed of every random step.
    merged : bool, default True
        Seven classes (:data:`CLASSES`) or eight (:data:`CLASSES_8`).
    **kwargs
        Passed to :func:`sample_structure` (e.g. ``standardise=False``).

    Returns
    -------
    structures : list of ase.Atoms
        Class by class, with ``info["space_group"]``.
    labels : numpy.ndarray
        ``(len(structures),)`` integer class labels.

    Notes
    -----
    Introduced in Chapter 3.
    """
    if isinstance(n_per_class, bool) or not isinstance(n_per_class, Integral) or n_per_class < 1:
        raise ValueError(f"n_per_class must be a positive integer, got {n_per_class!r}")
    n_classes = len(CLASSES if merged else CLASSES_8)
    groups: list[list[int]] = [[] for _ in range(n_classes)]
    for p in PROTOTYPES:
        groups[class_index(p.space_group, merged)].append(p.space_group)
    out, labels = [], []
    for c, members in enumerate(groups):
        for i in range(n_per_class):
            rng = np.random.default_rng(np.random.SeedSequence([seed, 2, c, i]))
            out.append(sample_structure(members[i % len(members)], rng, **kwargs))
            labels.append(c)
    return out, np.array(labels)


def damage(atoms: Atoms, defect: str, level: float, rng: np.random.Generator | int | None) -> Atoms:
    """A copy of ``atoms`` with vacancies or displacements at ``level``.

    Parameters
    ----------
    atoms : ase.Atoms
        The pristine structure.
    defect : {"vacancies", "displacements"}
        Vacancy fraction, or Gaussian displacements with sigma as a fraction of
        the nearest-neighbour distance.
    level : float
        The fraction.
    rng : numpy.random.Generator, int or None
        Source of randomness.

    Notes
    -----
    Introduced in Chapter 3 (defect sweeps).
    """
    if defect == "vacancies":
        damaged = add_vacancies(atoms, level, rng)
    elif defect == "displacements":
        damaged = add_displacements(atoms, level, rng)
    else:
        raise ValueError(f"defect must be 'vacancies' or 'displacements', got {defect!r}")
    damaged.info = dict(atoms.info)
    return damaged


def damage_seed(seed: int, structure: int, level: int) -> np.random.Generator:
    """The random stream of structure ``structure`` at level index ``level`` of a sweep.

    :func:`identification_rates` and :func:`crystal_course.evaluation.defect_sweep`
    both use it, so they damage the very same structures in the very same way.

    Notes
    -----
    Introduced in Chapter 3.
    """
    return np.random.default_rng(np.random.SeedSequence([seed, structure, level]))


PRACTICAL_SYMPREC = 0.1
"""spglib tolerance (Å) of the practitioner's pipeline: loose, as a user must choose it."""


def practitioner_view(
    damaged: Atoms,
    rng: np.random.Generator | int | None,
    symprec: float = PRACTICAL_SYMPREC,
    n_atoms: int = 250,
    details: bool = False,
):
    """What a user can feed the CNN: a damaged crystal as found, standardised by spglib.

    The 2018 protocol standardises a crystal *before* damaging it, which only a
    simulation can do. A user holds a damaged crystal in an arbitrary orientation
    and must standardise it as it is: random rotation -> spglib's standard
    conventional cell at a loose tolerance -> supercell of about ``n_atoms``.
    When spglib no longer recognises the symmetry, the "standard" cell is that of
    a lower-symmetry group, in that group's orientation.

    Parameters
    ----------
    damaged : ase.Atoms
        A damaged crystal (e.g. from :func:`damage`).
    rng : numpy.random.Generator, int or None
        Source of the arbitrary orientation.
    symprec : float, default 0.1
        spglib's tolerance, in Å.
    n_atoms : int, default 250
        Target cluster size when spglib finds a smaller cell than ``damaged``.
    details : bool, default False
        Also return the group spglib found and the edges of its standard cell.

    Returns
    -------
    view : ase.Atoms
        With ``damaged``'s ``info``.
    group : int
        Only with ``details``: the space-group number spglib found.
    edges : numpy.ndarray
        Only with ``details``: ``(3, 3)``, rows the edges of spglib's standard cell in
        ``damaged``'s frame (Å), before any rotation: spglib's basis is
        ``(a, b, c) P^-1``, P its transformation matrix.

    Notes
    -----
    Introduced in Chapter 3.
    """
    symprec = check_symprec(symprec)
    rotated = random_rotation(damaged, rng)
    dataset = _spglib(spglib.get_symmetry_dataset, spglib_cell(rotated), symprec=symprec)
    found = Atoms(numbers=dataset.std_types, cell=dataset.std_lattice,
                  scaled_positions=dataset.std_positions, pbc=True)  # fmt: skip
    # A smaller cell means spglib found translations: rebuild the cluster from it.
    # Otherwise the damaged crystal itself is the cell, now in its group's orientation.
    atoms = supercell(found, n_atoms) if len(found) < len(damaged) else found
    atoms.info = dict(damaged.info)
    if not details:
        return atoms
    edges = np.linalg.inv(dataset.transformation_matrix).T @ np.array(damaged.cell)
    return atoms, int(dataset.number), edges


LOW_INDEX = 2
"""Largest |u|, |v|, |w| of the lattice directions [uvw] :func:`misalignment` avoids."""


@functools.cache
def _low_index_directions(max_index: int) -> np.ndarray:
    steps = range(-max_index, max_index + 1)
    grid = np.array(np.meshgrid(steps, steps, steps, indexing="ij")).reshape(3, -1).T
    return grid[np.any(grid != 0, axis=1)].astype(float)


def misalignment(vectors, lattice, max_index: int = LOW_INDEX) -> np.ndarray:
    """Angle from each vector to the nearest low-index direction of a lattice.

    Parameters
    ----------
    vectors : array_like
        ``(k, 3)`` Cartesian vectors (Å), e.g. the edges of a box.
    lattice : array_like
        ``(3, 3)`` rows a, b, c of the crystal's conventional cell, in the frame of
        ``vectors`` (Å).
    max_index : int, default 2
        Directions ``[uvw] = u a + v b + w c`` with ``|u|, |v|, |w| <= max_index``.

    Returns
    -------
    numpy.ndarray
        ``(k,)`` angles in degrees, 0 to 90: 0 means the vector lies along one of
        those directions, so a fingerprint taken in a box with that edge sees a
        low-index zone of the crystal.

    Notes
    -----
    Introduced in Chapter 3 (the practitioner's contest).
    """
    vectors = np.atleast_2d(np.asarray(vectors, dtype=float))
    lattice = np.asarray(lattice, dtype=float)
    if vectors.shape[-1] != 3 or lattice.shape != (3, 3):
        raise ValueError(
            f"vectors must be (k, 3) and lattice (3, 3), got {vectors.shape} and {lattice.shape}"
        )
    directions = _low_index_directions(int(max_index)) @ lattice
    directions /= np.linalg.norm(directions, axis=1)[:, None]
    units = vectors / np.linalg.norm(vectors, axis=1)[:, None]
    cosine = np.abs(units @ directions.T).max(axis=1)
    return np.degrees(np.arccos(np.clip(cosine, 0.0, 1.0)))


SKEW_MARGIN = 11.0
"""Smallest angle (degrees) from an edge of a :func:`skewed_supercell` to a low-index
lattice direction: a degree above the 10 degrees the course checks, for spglib's own
reductions of the box."""


def skewed_supercell(
    cell: Atoms,
    n_atoms: int = 250,
    rng: np.random.Generator | int | None = None,
    margin: float = SKEW_MARGIN,
    max_tries: int = 20_000,
) -> Atoms:
    """A supercell whose box says nothing about the lattice.

    The box is spanned by three integer combinations of the primitive cell's
    vectors, drawn at random until every edge lies more than ``margin`` degrees
    from every lattice direction [uvw] with ``|u|, |v|, |w| <= 2``
    (:func:`misalignment`), the edges are nearly orthogonal (|cos| <= 0.45) and
    the box holds 0.8 to 1.25 x ``n_atoms``. The same holds for the Niggli- and
    Delaunay-reduced cells of the box (spglib's reductions), which is what spglib
    returns as the "standard" cell of a crystal it finds no symmetry in. A diagonal
    supercell, of the conventional or of the primitive cell, keeps low-index edges
    (a primitive fcc cell has <110> edges).

    Parameters
    ----------
    cell : ase.Atoms
        The crystal's standard conventional cell (e.g. from
        :func:`standard_conventional_cell`).
    n_atoms : int, default 250
        Target number of atoms.
    rng : numpy.random.Generator, int or None
        Source of the integer combinations.
    margin : float, default 11
        Smallest angle (degrees) from an edge to a low-index direction.
    max_tries : int, default 20000
        Random draws before giving up.

    Returns
    -------
    ase.Atoms
        The supercell, with ``cell``'s ``info`` and ``info["conventional_cell"]``
        (the rows a, b, c of ``cell``, Å, in the frame of the supercell).

    Raises
    ------
    RuntimeError
        If no box is found within ``max_tries`` draws.

    Notes
    -----
    Introduced in Chapter 3 (the practitioner's contest).
    """
    from ase.build import make_supercell

    check_atoms(cell)
    n_atoms = check_n_atoms(n_atoms)
    rng = _as_rng(rng)
    conventional = np.array(cell.cell)
    primitive = primitive_cell(cell)
    lattice = np.array(primitive.cell)
    n_cells = n_atoms / len(primitive)
    steps = np.arange(-8, 9)
    grid = np.array(np.meshgrid(steps, steps, steps, indexing="ij")).reshape(3, -1).T
    grid = grid[np.any(grid != 0, axis=1)]
    vectors = grid @ lattice
    lengths = np.linalg.norm(vectors, axis=1)
    side = (n_cells * abs(np.linalg.det(lattice))) ** (1 / 3)
    keep = (misalignment(vectors, conventional) > margin) & (lengths > 0.7 * side)
    keep &= lengths < 1.4 * side
    candidates = grid[keep]
    if len(candidates) < 3:
        raise RuntimeError(f"no lattice vector of length about {side:.1f} Å avoids the "
                           f"low-index directions by {margin} degrees")  # fmt: skip
    for _ in range(max_tries):
        matrix = candidates[rng.choice(len(candidates), 3, replace=False)]
        det = np.linalg.det(matrix)
        if not 0.8 * n_cells <= abs(det) <= 1.25 * n_cells:
            continue
        box = matrix @ lattice
        units = box / np.linalg.norm(box, axis=1)[:, None]
        if np.abs(units @ units.T)[np.triu_indices(3, 1)].max() > 0.45:
            continue
        try:
            reduced = [_spglib(spglib.niggli_reduce, box), _spglib(spglib.delaunay_reduce, box)]
        except ValueError:  # spglib could not reduce it: draw another
            continue
        if any(misalignment(r, conventional).min() <= margin for r in reduced):
            continue
        if det < 0:
            matrix = -matrix
        atoms = make_supercell(primitive, matrix)
        atoms.info = dict(cell.info, conventional_cell=conventional.tolist())
        return atoms
    raise RuntimeError(f"no skewed supercell of about {n_atoms} atoms in {max_tries} draws")


def spglib_group_class(group: int) -> int:
    """The class of :data:`CLASSES` of a space-group number, or -1 for any other group.

    Notes
    -----
    Introduced in Chapter 3.
    """
    return class_index(group) if group in _CLASS_OF_GROUP else -1


def spglib_class(atoms: Atoms, symprec: float = PRACTICAL_SYMPREC) -> int:
    """spglib as a classifier: the class of :data:`CLASSES` of the group it finds, or -1.

    -1 when spglib finds no symmetry or a group outside the eight prototypes, so
    spglib and the CNN are scored on the same seven labels.

    Notes
    -----
    Introduced in Chapter 3.
    """
    symprec = check_symprec(symprec)
    try:
        group = space_group(atoms, symprec=symprec)
    except ValueError:  # spglib found nothing at all
        return -1
    return spglib_group_class(group)


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


def identified(atoms: Atoms, space_group_number: int, symprecs=(1e-3, 0.1)) -> list[bool]:
    """Whether spglib still finds ``space_group_number`` at each tolerance.

    "Found nothing at all" counts as not identified.

    Notes
    -----
    Introduced in Chapter 3.
    """
    out = []
    for symprec in check_symprecs(symprecs):
        try:
            out.append(space_group(atoms, symprec=symprec) == space_group_number)
        except ValueError:  # spglib found nothing at all
            out.append(False)
    return out


def _identified(atoms: Atoms, defect: str, level: float, seed: tuple, symprecs) -> list[bool]:
    damaged = damage(atoms, defect, level, damage_seed(*seed))
    return identified(damaged, atoms.info["space_group"], symprecs)


def identification_rates(
    structures: list[Atoms],
    defect: str,
    levels: list[float],
    symprecs: tuple[float, ...] = (1e-3, 0.1),
    seed: int = 0,
    n_jobs: int | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Fraction of damaged structures whose spglib space group is still the intended one.

    Parameters
    ----------
    structures : list of ase.Atoms
        Pristine structures with ``info["space_group"]`` (e.g. from
        :func:`sample_structure`).
    defect : {"vacancies", "displacements"}
        Which damage to apply: vacancy fraction, or Gaussian displacements with
        sigma as a fraction of the nearest-neighbour distance.
    levels : list of float
        Defect levels.
    symprecs : tuple of float
        spglib tolerances in Å.
    seed : int
        Seed of the damage (each structure and level has its own stream).
    n_jobs : int, optional
        Worker processes (default: all cores).
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    numpy.ndarray
        ``(len(symprecs), len(levels))`` fractions in [0, 1].

    Notes
    -----
    Introduced in Chapter 2.
    """
    import os

    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    if defect not in ("vacancies", "displacements"):
        raise ValueError(f"defect must be 'vacancies' or 'displacements', got {defect!r}")
    symprecs = check_symprecs(symprecs)
    for atoms in structures:
        if "space_group" not in check_atoms(atoms).info:
            raise ValueError("every structure needs info['space_group'] (use sample_structure)")
    tasks = [(i, j) for j in range(len(levels)) for i in range(len(structures))]
    jobs = (
        delayed(_identified)(structures[i], defect, levels[j], (seed, i, j), symprecs)
        for i, j in tasks
    )
    results = Parallel(n_jobs=n_jobs or os.cpu_count() or 1, return_as="generator")(jobs)
    hits = np.zeros((len(symprecs), len(levels)))
    for (_, j), found in tqdm(
        zip(tasks, results, strict=True),
        total=len(tasks),
        disable=not progress,
        desc=f"spglib on {defect}",
    ):
        hits[:, j] += found
    return hits / len(structures)


# ---------------------------------------------------------------------------
# Many space groups (Chapter 6): random crystals with pyxtal
# ---------------------------------------------------------------------------

CRYSTAL_SYSTEMS: tuple[tuple[str, int, int], ...] = (
    ("triclinic", 1, 2),
    ("monoclinic", 3, 15),
    ("orthorhombic", 16, 74),
    ("tetragonal", 75, 142),
    ("trigonal", 143, 167),
    ("hexagonal", 168, 194),
    ("cubic", 195, 230),
)
"""The seven crystal systems and their space-group number ranges."""

SPACE_GROUP_SETS: dict[int, tuple[int, ...]] = {
    8: (139, 141, 166, 194, 221, 225, 227, 229),
    20: (2, 11, 12, 14, 61, 62, 63, 71, 123, 139, 140, 141, 164, 166, 191, 194,
         221, 225, 227, 229),
    49: (2, 4, 5, 7, 9, 11, 12, 14, 15,
         19, 29, 31, 33, 36, 38, 43, 51, 58, 60, 61, 62, 63, 64, 71,
         88, 113, 121, 122, 123, 129, 139, 140, 141,
         148, 160, 164, 166, 176, 186, 187, 191, 194,
         205, 216, 221, 223, 225, 227, 229),
    72: (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 15,
         19, 20, 29, 31, 33, 36, 38, 43, 51, 55, 57, 58, 59, 60, 61, 62, 63, 64, 65, 71, 72, 74,
         88, 99, 107, 113, 121, 122, 123, 127, 129, 136, 139, 140, 141,
         146, 148, 160, 164, 166, 167, 173, 176, 186, 187, 189, 191, 193, 194,
         198, 205, 216, 217, 221, 223, 225, 227, 229),
}  # fmt: skip
"""Named sets of space groups for Chapter 6, nested (8 in 20 in 49 in 72).

The course's own choice: Tiong et al. (2020) do not list the groups of their 20-,
49- and 72-group sets. The 8-group set is the 2018 one. The larger sets span the seven
crystal systems in roughly the paper's proportions; 72 = 2 triclinic, 12 monoclinic,
22 orthorhombic, 13 tetragonal, 6 trigonal, 8 hexagonal and 9 cubic groups, chosen
among the groups common in inorganic crystal databases.
"""

CHAPTER6_ELEMENTS: tuple[str, ...] = (
    "Li", "Be", "B", "C", "N", "O", "F", "Na", "Mg", "Al", "Si", "P", "S", "Cl", "K", "Ca",
    "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As", "Se", "Sr", "Y",
    "Zr", "Nb", "Mo", "Ag", "Cd", "In", "Sn", "Sb", "Te", "Ba", "La", "W", "Pt", "Au", "Pb",
    "Bi",
)  # fmt: skip
"""Elements the random crystals of Chapter 6 draw from."""


def crystal_system(space_group_number: int) -> str:
    """Name of the crystal system of a space group (1-230).

    Notes
    -----
    Introduced in Chapter 6.
    """
    if isinstance(space_group_number, bool) or not isinstance(space_group_number, Integral):
        raise TypeError(f"space_group_number must be an int, got {space_group_number!r}")
    for name, low, high in CRYSTAL_SYSTEMS:
        if low <= space_group_number <= high:
            return name
    raise ValueError(f"space_group_number must be in 1..230, got {space_group_number!r}")


@functools.cache
def _wyckoff_multiplicities(space_group_number: int) -> tuple[int, ...]:
    from pyxtal.symmetry import Group

    return tuple(sorted({w.multiplicity for w in Group(space_group_number)}))


def random_crystal(
    space_group_number: int,
    rng: np.random.Generator | int | None = None,
    max_species: int = 3,
    max_atoms: int = 24,
    elements: tuple[str, ...] = CHAPTER6_ELEMENTS,
    symprec: float = 1e-3,
    max_attempts: int = 30,
) -> Atoms:
    """A random crystal of a given space group, confirmed by spglib.

    pyxtal places 1 to ``max_species`` elements on Wyckoff positions of the
    group (each element on sites of one multiplicity, at most ``max_atoms``
    atoms in the conventional cell). spglib then relabels the structure; if it
    finds a different group (special positions can make a supergroup) the
    structure is dropped and another is drawn. The result is spglib's standard
    conventional cell, whose cell vectors set the zone axes of Chapter 6.

    Parameters
    ----------
    space_group_number : int
        1 to 230.
    rng : numpy.random.Generator, int or None
        Source of randomness (also seeds pyxtal).
    max_species : int, default 3
        Largest number of elements.
    max_atoms : int, default 24
        Largest number of atoms in the conventional cell.
    elements : tuple of str
        Elements to draw from.
    symprec : float, default 1e-3
        spglib tolerance (Å).
    max_attempts : int, default 30
        Structures drawn before giving up.

    Returns
    -------
    ase.Atoms
        Standard conventional cell with ``info["space_group"]`` (spglib's).

    Raises
    ------
    RuntimeError
        If no structure of the group is confirmed within ``max_attempts``.

    Notes
    -----
    Introduced in Chapter 6.
    """
    from pyxtal import pyxtal

    crystal_system(space_group_number)  # validates the number
    rng = _as_rng(rng)
    multiplicities = [m for m in _wyckoff_multiplicities(space_group_number) if m <= max_atoms]
    for _ in range(max_attempts):
        n_species = int(rng.integers(1, max_species + 1))
        species = [str(s) for s in rng.choice(elements, n_species, replace=False)]
        counts = [int(rng.choice(multiplicities)) for _ in species]
        while sum(counts) > max_atoms and len(counts) > 1:
            species.pop()
            counts.pop()
        seed = int(rng.integers(2**31 - 1))
        crystal = pyxtal()
        try:
            crystal.from_random(3, space_group_number, species, counts, random_state=seed)
        except Exception:  # pyxtal: composition incompatible or no valid placement
            continue
        if not crystal.valid:
            continue
        atoms = crystal.to_ase()
        try:
            found = space_group(atoms, symprec=symprec)
        except ValueError:
            continue
        if found != space_group_number:
            continue
        cell = standard_conventional_cell(atoms, symprec=symprec)
        cell.info.update(space_group=found, species=tuple(species), counts=tuple(counts))
        return cell
    raise RuntimeError(
        f"no random crystal of space group {space_group_number} confirmed by spglib in "
        f"{max_attempts} attempts"
    )
