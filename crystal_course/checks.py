"""Checkers for the exercises: each solution in the book ends by calling one.

A checker recomputes the expected answer with the package, compares, and either
prints a short confirmation or raises ``AssertionError`` with a hint. CI runs
every solution, so a checker that stops agreeing with its solution fails the
build. Students call them on their own answers.

Introduced in Chapter 1; every chapter adds its own.
"""

from __future__ import annotations

import math
from numbers import Real

from crystal_course.diffraction import ANGSTROM, Detector, bragg_pixel_radius


def _as_number(answer: object, name: str) -> float:
    if answer is Ellipsis:
        raise TypeError(f"{name}: replace the `...` placeholder with your answer (a number)")
    if isinstance(answer, bool) or not isinstance(answer, Real):
        raise TypeError(f"{name}: expected a real number, got {type(answer).__name__}")
    value = float(answer)
    if not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value}")
    return value


def _check_close(answer: object, expected: float, name: str, rtol: float, hint: str) -> float:
    value = _as_number(answer, name)
    if not math.isclose(value, expected, rel_tol=rtol):
        raise AssertionError(f"{name}: {value:.6g} is not right. Hint: {hint}")
    print(f"Correct: {name} = {value:.6g}")
    return value


def check_ewald_ratio(answer: float, detector: Detector = Detector()) -> float:
    """Exercise 1.1: Ewald radius over the shortest reciprocal-lattice vector.

    For simple cubic with nearest-neighbour distance 1 Å (lattice constant
    ``a = 1`` Å) the shortest reciprocal-lattice vector has length ``2 pi / a``;
    the Ewald sphere has radius ``2 pi / lambda``. Their ratio is ``a / lambda``.

    Parameters
    ----------
    answer : float
        The student's ratio (dimensionless).
    detector : Detector
        Geometry whose wavelength is used (default: the course's 5 pm).

    Returns
    -------
    float
        The accepted answer.

    Raises
    ------
    AssertionError
        If the answer is off by more than 0.1 %.
    """
    expected = 1.0 / (detector.wavelength / ANGSTROM)
    return _check_close(
        answer,
        expected,
        "Ewald radius / |b|",
        rtol=1e-3,
        hint="both lengths carry the same factor 2*pi; convert the wavelength to Å.",
    )


def check_spot_radius(answer: float, d_spacing: float, detector: Detector = Detector()) -> float:
    """Exercise 1.2: pixel distance of a Bragg spot from the beam centre.

    Parameters
    ----------
    answer : float
        The student's radius, in pixels.
    d_spacing : float
        Interplanar spacing in Å (nearest-neighbour units).
    detector : Detector
        The detector geometry.

    Returns
    -------
    float
        The accepted answer (within 0.5 %).
    """
    expected = bragg_pixel_radius(d_spacing, detector)
    return _check_close(
        answer,
        expected,
        f"spot radius for d = {d_spacing:g} Å",
        rtol=5e-3,
        hint="sin(theta) = lambda / (2 d); the spot is at distance * tan(2 theta) "
        "on the detector; divide by the pixel size.",
    )
