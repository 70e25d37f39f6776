"""Exercise checkers accept right answers, reject wrong ones with a hint."""

from __future__ import annotations

import math

import pytest

from crystal_course import checks
from crystal_course.diffraction import Detector


def test_ewald_ratio():
    assert checks.check_ewald_ratio(20.0) == 20.0
    with pytest.raises(AssertionError, match="Hint"):
        checks.check_ewald_ratio(2 * math.pi * 20.0)  # forgot that 2*pi cancels
    # The answer follows the detector's wavelength.
    assert checks.check_ewald_ratio(10.0, Detector(wavelength=1e-11)) == 10.0


def test_spot_radius_accepts_an_independent_derivation():
    d = 1.0
    det = Detector()
    # Small-angle estimate L * lambda / d, corrected below 0.5 % by tan/sin terms.
    theta = math.asin(0.05 / (2 * d))
    radius = det.distance * math.tan(2 * theta) / det.pixel_size
    checks.check_spot_radius(radius, d)
    with pytest.raises(AssertionError):
        checks.check_spot_radius(radius * 1.05, d)


@pytest.mark.parametrize(
    "bad, error", [(..., TypeError), ("20", TypeError), (True, TypeError), (math.nan, ValueError)]
)
def test_placeholder_and_bad_types_get_a_clear_error(bad, error):
    with pytest.raises(error):
        checks.check_ewald_ratio(bad)
