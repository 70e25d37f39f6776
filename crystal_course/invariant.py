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
