"""Powder patterns: Debye's equation against its double sum, rotations, and pymatgen's peaks."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from scipy.spatial.transform import Rotation

from crystal_course import powder, zone_axis

Q = np.linspace(0.3, 8.0, 300)


@pytest.fixture(scope="module")
def rocksalt():
    """A two-species cluster: the pair histograms have three rows (Na-Na, Na-Cl, Cl-Cl)."""
    return zone_axis.spherical_cluster(bulk("NaCl", "rocksalt", a=5.64, cubic=True), 120)


def test_histograms_count_every_ordered_pair(rocksalt):
    hist = powder.pair_histograms(rocksalt)
    n = len(rocksalt)
    assert hist.numbers == (11, 17) and hist.pairs == ((0, 0), (0, 1), (1, 1))
    assert sum(hist.counts_per_species) == n
    assert hist.counts.sum() == pytest.approx(n * (n - 1))
    nearest = hist.distances[hist.counts[1] > 0].min()
    assert nearest == pytest.approx(5.64 / 2, abs=powder.BIN_WIDTH)  # Na-Cl at a / 2


def test_debye_intensity_equals_the_double_sum(rocksalt):
    fast = powder.debye_intensity(rocksalt, Q)
    exact = powder.naive_debye_intensity(rocksalt, Q)
    np.testing.assert_allclose(fast, exact, rtol=0, atol=1e-4 * exact.max())
    # at q -> 0 every pair scatters in phase: (sum of f)^2
    from crystal_course.diffraction import form_factor

    f0 = form_factor(rocksalt.numbers, 0.0).sum()
    assert powder.debye_intensity(rocksalt, [0.0])[0] == pytest.approx(f0**2, rel=1e-9)


def test_a_turned_cluster_has_the_same_powder_pattern(rocksalt):
    base = powder.debye_intensity(rocksalt, Q)
    for seed in range(3):
        turned = rocksalt.copy()
        turned.positions = Rotation.random(random_state=seed).apply(rocksalt.positions) + 7.0
        np.testing.assert_allclose(powder.debye_intensity(turned, Q), base, rtol=1e-9)


def test_peaks_of_a_large_cluster_sit_at_pymatgens_bragg_angles():
    cu = bulk("Cu", "fcc", a=3.615, cubic=True)
    two_theta = np.linspace(30, 100, 1400)
    pattern, peaks = powder.debye_peaks(zone_axis.spherical_cluster(cu, 3000), two_theta)
    bragg = powder.bragg_peaks(cu, (30, 100))
    assert len(peaks) == len(bragg.x) == 5  # (111), (200), (220), (311), (222)
    np.testing.assert_allclose(peaks, bragg.x, atol=0.2)  # degrees
    assert pattern.max() == 1
    with pytest.raises(TypeError):
        powder.bragg_peaks("Cu")


def test_two_theta_and_q_convert_both_ways():
    two_theta = np.array([0.0, 43.3, 90.0, 180.0])
    q = powder.q_from_two_theta(two_theta)
    assert q[-1] == pytest.approx(4 * np.pi / powder.CU_K_ALPHA)
    np.testing.assert_allclose(powder.two_theta_from_q(q), two_theta, atol=1e-9)
    assert np.isnan(powder.two_theta_from_q(9.0))  # beyond 4 pi / lambda: no angle
    with pytest.raises(ValueError, match="2θ"):
        powder.q_from_two_theta(-1)


def test_bad_input_is_named(rocksalt):
    with pytest.raises(TypeError, match="ase.Atoms"):
        powder.debye_intensity(rocksalt.positions, Q)
    with pytest.raises(ValueError, match="no atoms"):
        powder.debye_intensity(Atoms(), Q)
    with pytest.raises(ValueError, match="1..98"):
        powder.debye_intensity(Atoms("X2", positions=[[0, 0, 0], [1, 0, 0]]), Q)
    broken = rocksalt.copy()
    broken.positions[0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        powder.debye_intensity(broken, Q)
    for q in ([-1.0, 2.0], [[1.0]], [np.inf]):
        with pytest.raises(ValueError, match="q >= 0"):
            powder.debye_intensity(rocksalt, q)
    with pytest.raises(ValueError, match="bin_width"):
        powder.pair_histograms(rocksalt, 0)
