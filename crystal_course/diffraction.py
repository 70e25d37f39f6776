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
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

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

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4.2))
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
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4.2))
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
