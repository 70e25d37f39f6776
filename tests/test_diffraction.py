"""Detector geometry and the Ewald construction (crystal_course.diffraction)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from crystal_course.diffraction import (
    Detector,
    bragg_pixel_radius,
    pixel_positions,
    ring_mask,
    scattering_angle,
    scattering_vectors,
)


@pytest.mark.parametrize(
    "kwargs, error, fragment",
    [
        ({"n_pixels": 64.0}, TypeError, "n_pixels"),
        ({"n_pixels": 1}, ValueError, "at least 2"),
        ({"pixel_size": -1e-4}, ValueError, "pixel_size"),
        ({"distance": 0.0}, ValueError, "distance"),
        ({"wavelength": math.inf}, ValueError, "wavelength"),
        ({"wavelength": "5 pm"}, TypeError, "wavelength"),
    ],
)
def test_detector_validates_fields(kwargs, error, fragment):
    with pytest.raises(error, match=fragment):
        Detector(**kwargs)


def test_pixel_grid_is_centred_on_the_beam():
    det = Detector()
    r = pixel_positions(det)
    assert r.shape == (64, 64, 3)
    assert det.center == 31.5
    np.testing.assert_allclose(r[..., :2].mean(axis=(0, 1)), 0.0, atol=1e-15)
    # Row index runs along y, column index along x.
    assert r[0, 1, 0] - r[0, 0, 0] == pytest.approx(det.pixel_size)
    assert r[1, 0, 1] - r[0, 0, 1] == pytest.approx(det.pixel_size)
    assert np.all(r[..., 2] == det.distance)


def test_every_q_lies_on_the_ewald_sphere():
    det = Detector()
    q, omega = scattering_vectors(det)
    k = 2 * np.pi / 0.05  # 1/Å for lambda = 5 pm
    assert det.ewald_radius == pytest.approx(k)
    k0 = np.array([0, 0, k])
    np.testing.assert_allclose(np.linalg.norm(q + k0, axis=-1), k, rtol=1e-12)
    # |q| = 2 k sin(theta), with 2 theta the pixel's scattering angle.
    two_theta = np.radians(scattering_angle(det))
    np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 2 * k * np.sin(two_theta / 2))


def test_solid_angle_matches_the_flat_pixel_formula_and_sums_to_the_detector():
    det = Detector()
    _, omega = scattering_vectors(det)
    centre = (det.pixel_size / det.distance) ** 2
    assert omega.max() <= centre and omega.max() == pytest.approx(centre, rel=1e-3)
    # The whole detector subtends 4 arcsin(a^2 / (a^2 + 4 L^2)) for a square of side a.
    side = det.n_pixels * det.pixel_size
    exact = 4 * math.asin(side**2 / (side**2 + 4 * det.distance**2))
    assert omega.sum() == pytest.approx(exact, rel=1e-4)


def test_simple_cubic_100_spot_lands_at_12_5_pixels():
    # sin(theta) = 0.05 / 2; r = 0.1 m * tan(2 theta) / 0.4 mm.
    assert bragg_pixel_radius(1.0) == pytest.approx(12.51, abs=0.01)
    # Smaller spacing, larger radius; fcc (111) with NN = 1 lies further out than sc (100).
    assert bragg_pixel_radius(math.sqrt(2 / 3)) > bragg_pixel_radius(1.0)


def test_bragg_radius_rejects_impossible_spacings():
    with pytest.raises(ValueError, match="d_spacing"):
        bragg_pixel_radius(-1.0)
    with pytest.raises(ValueError, match="no Bragg reflection"):
        bragg_pixel_radius(0.01)  # lambda / 2d > 1
    assert bragg_pixel_radius(0.05 / 2 / math.sin(math.radians(46))) == math.inf


def test_ring_mask_keeps_10_to_30_pixels_for_64():
    mask = ring_mask(64)
    idx = np.arange(64) - 31.5
    r = np.hypot(idx[:, None], idx[None, :])
    assert mask.dtype == bool and mask.shape == (64, 64)
    assert not mask[r <= 10].any() and not mask[r >= 30].any()
    assert mask[(r > 10.5) & (r < 29.5)].all()
    assert not mask[31, 31] and not mask[0, 0]
    # Scales with the detector: the same fraction of pixels is kept at 128.
    assert abs(ring_mask(128).mean() - mask.mean()) < 0.01
    with pytest.raises(ValueError, match="n_pixels"):
        ring_mask(1)
