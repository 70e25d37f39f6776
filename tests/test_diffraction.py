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


# ---------------------------------------------------------------------------
# Form factors
# ---------------------------------------------------------------------------

from ase import Atoms  # noqa: E402
from ase.build import bulk  # noqa: E402
from scipy.spatial.distance import pdist, squareform  # noqa: E402

from crystal_course import diffraction  # noqa: E402
from crystal_course.diffraction import (  # noqa: E402
    diffraction_pattern,
    fingerprint,
    fingerprints,
    form_factor,
    intensity,
    rotation_matrix,
)


def test_form_factor_at_zero_angle_counts_the_electrons():
    z = np.arange(1, 99)
    f0 = form_factor(z, 0.0)
    assert f0.shape == (98,)
    np.testing.assert_allclose(f0, z, atol=0.05)


def test_form_factor_agrees_with_ase_copy_of_the_same_table():
    """ASE ships Waasmaier-Kirfel coefficients for a few elements (a, b pairs, then c)."""
    from ase.data import atomic_numbers
    from ase.utils.xrdebye import waasmaier

    s = np.linspace(0, 2, 41)  # sin(theta) / lambda in 1/Å
    # ASE's Cu (sums to 28.47 electrons at s = 0) and O (a1 has a stray digit) are typos there.
    for symbol in ("C", "N", "P", "S", "Cl", "Ni", "Pd", "Ag", "Pt", "Au"):
        v = waasmaier[symbol]
        expected = v[10] + sum(v[2 * i] * np.exp(-v[2 * i + 1] * s**2) for i in range(5))
        ours = form_factor(atomic_numbers[symbol], 4 * np.pi * s)
        np.testing.assert_allclose(ours, expected, atol=1e-5, err_msg=symbol)


def test_form_factor_is_vectorised_over_z_and_q_and_decreases():
    q = np.linspace(0, 25, 11)
    f = form_factor([13, 29, 79], q)
    assert f.shape == (3, 11)
    assert (np.diff(f, axis=1) < 0).all()
    assert (f[0] < f[1]).all() and (f[1] < f[2]).all()
    assert form_factor(np.array([[26]]), q).shape == (1, 1, 11)


@pytest.mark.parametrize("z", [0, 99, -1, 2.5])
def test_form_factor_rejects_unknown_elements(z):
    with pytest.raises(ValueError, match="atomic numbers"):
        form_factor(z, 1.0)


def test_form_factor_rejects_negative_q():
    with pytest.raises(ValueError, match="q must be"):
        form_factor(6, -1.0)


# ---------------------------------------------------------------------------
# Geometry of the pattern
# ---------------------------------------------------------------------------


def _spot_centroid(pattern, row, col, half=2):
    """Intensity-weighted centroid of the window around the brightest pixel near (row, col)."""
    r0, c0 = int(round(row)), int(round(col))
    win = pattern[r0 - half : r0 + half + 1, c0 - half : c0 + half + 1]
    rr, cc = np.mgrid[r0 - half : r0 + half + 1, c0 - half : c0 + half + 1]
    return (rr * win).sum() / win.sum(), (cc * win).sum() / win.sum()


def test_simple_cubic_spots_land_where_bragg_and_the_detector_put_them():
    """Beam along [001]: the four brightest spots are the {100} reflections."""
    det = Detector()
    pattern = diffraction_pattern(bulk("Po", "sc", a=3.35).repeat((7, 7, 7)), det)
    c = det.center
    # Expected radius from lambda, distance and pixel size alone (NN = a = 1 Å after scaling).
    two_theta = 2 * math.asin(det.wavelength / 1e-10 / (2 * 1.0))
    radius = det.distance * math.tan(two_theta) / det.pixel_size
    rows, cols = np.indices(pattern.shape)
    outside = np.hypot(rows - c, cols - c) > 8
    found = []
    masked = np.where(outside, pattern, 0)
    for _ in range(4):
        r, k = np.unravel_index(np.argmax(masked), masked.shape)
        found.append(_spot_centroid(pattern, r, k))
        masked[max(r - 3, 0) : r + 4, max(k - 3, 0) : k + 4] = 0
    expected = [(c, c + radius), (c, c - radius), (c + radius, c), (c - radius, c)]
    for e in expected:
        distance = min(math.dist(e, f) for f in found)
        assert distance < 1.0, (e, found)


def _cubic(kind):
    """Conventional cubic cell and its lattice constant in nearest-neighbour units."""
    return {
        "sc": (bulk("Po", "sc", a=3.35), 1.0),
        "bcc": (bulk("Fe", "bcc", cubic=True), 2 / math.sqrt(3)),
        "fcc": (bulk("Cu", "fcc", cubic=True), math.sqrt(2)),
        "diamond": (bulk("Si", "diamond", cubic=True), 4 / math.sqrt(3)),
    }[kind]


@pytest.mark.parametrize(
    "kind, absent, allowed",
    [
        ("bcc", [(1, 0, 0), (1, 1, 1), (2, 1, 0)], [(1, 1, 0), (2, 0, 0)]),
        ("fcc", [(1, 0, 0), (1, 1, 0), (2, 1, 0)], [(1, 1, 1), (2, 0, 0)]),
        ("diamond", [(2, 0, 0), (2, 2, 2), (1, 0, 0)], [(1, 1, 1), (2, 2, 0)]),
    ],
)
def test_structure_factor_absences_at_reciprocal_lattice_points(kind, absent, allowed):
    cell, a = _cubic(kind)
    atoms = cell.repeat(4)
    g = 2 * np.pi * np.array(absent + allowed, dtype=float) / a  # 1/Å, NN units
    values = intensity(atoms, g)
    weakest_allowed = values[len(absent) :].min()
    assert (values[: len(absent)] < 1e-9 * weakest_allowed).all(), values


def _spot_on_detector(pattern, hk, a, det):
    """Brightest pixel in a 3x3 window at the predicted position of the (h k 0) spot."""
    h, k = hk
    radius = bragg_pixel_radius(a / math.hypot(h, k), det)
    row = det.center + radius * k / math.hypot(h, k)
    col = det.center + radius * h / math.hypot(h, k)
    r, c = int(round(row)), int(round(col))
    return pattern[r - 1 : r + 2, c - 1 : c + 2].max()


@pytest.mark.parametrize(
    "kind, absent, allowed",
    [("bcc", [(1, 0)], [(1, 1)]), ("fcc", [(1, 1)], [(2, 0)]), ("diamond", [(2, 0)], [(2, 2)])],
)
def test_absent_spots_are_dark_on_the_detector(kind, absent, allowed):
    """Beam along [001]; only the central beam's finite-size tail remains at absent spots."""
    det = Detector()
    cell, a = _cubic(kind)
    pattern = diffraction_pattern(cell.repeat(6 if kind == "bcc" else 4), det)
    bright = min(_spot_on_detector(pattern, hk, a, det) for hk in allowed)
    dark = max(_spot_on_detector(pattern, hk, a, det) for hk in absent)
    assert dark < 0.1 * bright, (dark, bright)
    # And the allowed spot stands far above the ring's median background.
    ring = pattern[ring_mask(det.n_pixels)]
    assert bright > 100 * np.median(ring)


def test_friedel_law_on_the_intensity_function():
    rng = np.random.default_rng(1)
    atoms = bulk("Sn", "fcc", a=6.49, cubic=True).repeat(2)
    atoms.rattle(0.05, seed=2)  # no symmetry left: Friedel's law must still hold
    q = rng.normal(scale=8.0, size=(500, 3))
    plus, minus = intensity(atoms, q), intensity(atoms, -q)
    np.testing.assert_allclose(plus, minus, rtol=2e-4, atol=1e-6 * plus.max())


def _point_symmetric_cluster(kind, radius):
    """All sites of a cubic crystal within ``radius`` (NN units) of one atom: full m-3m symmetry."""
    cell, a = _cubic(kind)
    big = cell.repeat(2 * math.ceil(radius / a) + 3)  # the sphere fits with room to spare
    nn = diffraction.nearest_neighbour_distance(big)
    centre = big.positions[np.argmin(np.linalg.norm(big.positions - big.positions.mean(0), axis=1))]
    keep = np.linalg.norm(big.positions - centre, axis=1) <= radius * nn + 1e-6
    return big[keep]


@pytest.mark.parametrize("kind", ["sc", "bcc", "fcc", "diamond"])
def test_cubic_patterns_in_standard_orientation_are_centrosymmetric(kind):
    """Mirrored pixels see (-qx, -qy, +qz): equal intensity needs a 2-fold axis along the beam."""
    atoms = _point_symmetric_cluster(kind, radius=4.0)
    pattern = diffraction_pattern(atoms)
    np.testing.assert_allclose(pattern, pattern[::-1, ::-1], rtol=0, atol=2e-5 * pattern.max())


def test_pattern_is_invariant_to_atom_order_translation_and_scale():
    rng = np.random.default_rng(3)
    atoms = bulk("Mg", "hcp").repeat((5, 5, 5))
    reference = diffraction_pattern(atoms, rotation=("y", 20))
    shuffled = atoms[rng.permutation(len(atoms))]
    moved = atoms.copy()
    moved.translate([3.7, -12.0, 0.4])
    scaled = atoms.copy()
    scaled.set_cell(atoms.cell * 1.37, scale_atoms=True)
    for other in (shuffled, moved, scaled):
        pattern = diffraction_pattern(other, rotation=("y", 20))
        np.testing.assert_allclose(pattern, reference, rtol=0, atol=1e-5 * reference.max())


def _reference_pattern_float64(atoms, det, rotation):
    """Independent float64 reference: the textbook sum, computed naively."""
    positions = atoms.get_positions()
    nn = np.sort(squareform(pdist(positions)), axis=1)[:, 1].mean()
    x = positions / nn @ rotation.T
    offsets = (np.arange(det.n_pixels) - (det.n_pixels - 1) / 2) * det.pixel_size
    yy, xx = np.meshgrid(offsets, offsets, indexing="ij")
    r = np.stack([xx, yy, np.full_like(xx, det.distance)], axis=-1)
    norm = np.linalg.norm(r, axis=-1)
    k = 2 * np.pi / (det.wavelength * 1e10)
    q = k * (r / norm[..., None] - np.array([0, 0, 1.0]))
    f = form_factor(atoms.numbers, np.linalg.norm(q, axis=-1))  # (N, n, n)
    amplitude = np.einsum("jab,abj->ab", f, np.exp(-1j * q @ x.T))
    omega = det.pixel_size**2 * det.distance / norm**3
    return omega * np.abs(amplitude) ** 2


@pytest.mark.parametrize("method", ["factorised", "direct"])
def test_float32_engine_matches_a_float64_reference(method):
    det = Detector(n_pixels=48)
    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True).repeat(3)  # two species
    del atoms[np.random.default_rng(4).choice(len(atoms), 20, replace=False)]
    rotation = rotation_matrix([1, 2, 3], 37.0)
    result = diffraction_pattern(atoms, det, rotation=rotation, method=method)
    assert result.dtype == np.float32 and result.shape == (48, 48)
    reference = _reference_pattern_float64(atoms, det, rotation)
    assert np.abs(result - reference).max() <= 1e-4 * reference.max()


def test_methods_agree_on_displaced_atoms_and_cell_less_clusters_need_direct():
    atoms = bulk("Fe", "bcc", cubic=True).repeat(4)
    atoms.rattle(0.02, seed=5)
    direct = diffraction_pattern(atoms, method="direct")
    for method in ("auto", "factorised"):
        pattern = diffraction_pattern(atoms, method=method)
        np.testing.assert_allclose(pattern, direct, rtol=0, atol=1e-5 * direct.max())
    cluster = Atoms(atoms.numbers, positions=atoms.positions)  # no cell
    np.testing.assert_allclose(
        diffraction_pattern(cluster), direct, rtol=0, atol=1e-5 * direct.max()
    )
    with pytest.raises(ValueError, match="3D cell"):
        diffraction_pattern(cluster, method="factorised")
    with pytest.raises(ValueError, match="method must be"):
        diffraction_pattern(atoms, method="fast")


def test_factorisation_finds_the_basis_of_common_crystals():
    """Classes = basis atoms, cells = repeats, for cubic and non-cubic cells alike."""
    cases = [
        (bulk("Cu", "fcc", cubic=True).repeat(4), 4, (4, 4, 4)),
        (bulk("Bi", "rhombohedral", a=4.75, alpha=57.2).repeat(5), 2, (5, 5, 5)),
        (bulk("Mg", "hcp").repeat((5, 5, 5)), 2, (5, 5, 5)),
        (bulk("Si", "diamond", cubic=True).repeat(3), 8, (3, 3, 3)),
    ]
    for atoms, n_classes, cells in cases:
        positions, cell, _, index = diffraction._scaled_cluster(atoms)
        occupancy = diffraction._lattice_grid(positions, cell, index)[-1]
        assert occupancy.shape[0] <= n_classes and occupancy.shape[1:] >= cells, atoms
        assert occupancy.sum() == len(atoms)


# ---------------------------------------------------------------------------
# The fingerprint
# ---------------------------------------------------------------------------


def _rx(t):
    c, s = math.cos(math.radians(t)), math.sin(math.radians(t))
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _ry(t):
    c, s = math.cos(math.radians(t)), math.sin(math.radians(t))
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rz(t):
    c, s = math.cos(math.radians(t)), math.sin(math.radians(t))
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def test_rotation_matrix_matches_explicit_matrices():
    for axis, explicit in (("x", _rx), ("y", _ry), ("z", _rz)):
        np.testing.assert_allclose(rotation_matrix(axis, 45.0), explicit(45.0), atol=1e-15)
    np.testing.assert_allclose(rotation_matrix([0, 0, 2], 30), _rz(30), atol=1e-15)


def test_fingerprint_channels_are_x_y_z_rotation_pairs_channels_last():
    det = Detector()
    atoms = bulk("In", "bct", a=3.25, c=4.95).repeat((6, 6, 6))
    raw = fingerprint(atoms, det, angle=45.0, normalize=False)
    assert raw.shape == (64, 64, 3) and raw.dtype == np.float32
    mask = ring_mask(64)
    for channel, explicit in enumerate((_rx, _ry, _rz)):
        expected = sum(diffraction_pattern(atoms, det, rotation=explicit(s)) for s in (45, -45))
        np.testing.assert_allclose(raw[..., channel], expected * mask, rtol=1e-5, atol=1e-7)
    # The three channels differ for a tetragonal crystal (c along z).
    assert not np.allclose(raw[..., 0], raw[..., 2])


def test_fingerprint_is_normalised_once_over_all_channels_and_masked():
    atoms = bulk("Fe", "bcc", cubic=True).repeat(5)
    raw = fingerprint(atoms, normalize=False)
    image = fingerprint(atoms)
    assert image.min() == 0.0 and image.max() == pytest.approx(1.0)
    np.testing.assert_allclose(image, raw / raw.max(), rtol=1e-6)  # one linear map
    mask = ring_mask(64)
    assert (image[~mask] == 0).all()
    assert image[31:33, 31:33].sum() == 0 and image[0, 0].sum() == 0 and image[63, 63].sum() == 0
    assert (image[mask].max(axis=0) > 0.1).all()  # every channel carries spots


def test_fingerprint_does_not_depend_on_the_element_size():
    """Scaling to NN = 1: Cu and Au (both fcc) differ only by the form-factor envelope."""
    cu = fingerprint(bulk("Cu", "fcc", cubic=True).repeat(4))
    au = fingerprint(bulk("Au", "fcc", cubic=True).repeat(4))
    fe = fingerprint(bulk("Fe", "bcc", cubic=True).repeat(5))
    same = np.corrcoef(cu.ravel(), au.ravel())[0, 1]
    other = np.corrcoef(cu.ravel(), fe.ravel())[0, 1]
    assert same > 0.99 and other < 0.5, (same, other)
    assert ((cu > 0.2) == (au > 0.2)).all()  # identical spot positions
    assert np.abs(cu - au).max() < 0.15  # only relative spot heights change


def test_fingerprints_batch_matches_single_and_keeps_order():
    structures = [
        bulk("Cu", "fcc", cubic=True).repeat(3),
        bulk("Fe", "bcc", cubic=True).repeat(4),
        bulk("Mg", "hcp").repeat(4),
    ] * 2
    batch = fingerprints(structures, n_jobs=2, progress=False, batch_size=2)
    assert batch.shape == (6, 64, 64, 3) and batch.dtype == np.float32
    for atoms, image in zip(structures, batch, strict=True):
        np.testing.assert_array_equal(image, fingerprint(atoms))
    serial = fingerprints(structures, n_jobs=1, progress=False)
    np.testing.assert_array_equal(serial, batch)
    assert fingerprints([], progress=False).shape == (0, 64, 64, 3)


# ---------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "atoms, error, fragment",
    [
        (Atoms(), ValueError, "empty"),
        (Atoms("Cu", positions=[[0, 0, 0]]), ValueError, "at least 2"),
        (Atoms("Cu2", positions=[[0, 0, 0], [np.nan, 0, 0]]), ValueError, "non-finite"),
        (Atoms("Cu2", positions=[[0, 0, 0], [0, 0, np.inf]]), ValueError, "non-finite"),
        (Atoms("X2", positions=[[0, 0, 0], [1, 0, 0]]), ValueError, "atomic number"),
        (Atoms("Cu2", positions=[[0, 0, 0], [0, 0, 0]]), ValueError, "coincident"),
        (np.zeros((4, 3)), TypeError, "ase.Atoms"),
    ],
)
def test_bad_structures_get_clear_errors(atoms, error, fragment):
    with pytest.raises(error, match=fragment):
        diffraction_pattern(atoms)
    with pytest.raises(error, match=fragment):
        fingerprint(atoms)


@pytest.mark.parametrize(
    "rotation, fragment",
    [
        (np.eye(2), "3x3"),
        (np.ones((3, 3)), "proper rotation"),
        (np.diag([1.0, 1.0, -1.0]), "proper rotation"),
        (("w", 10.0), "axis"),
        (("x", math.nan), "angle"),
    ],
)
def test_bad_rotations_get_clear_errors(rotation, fragment):
    atoms = bulk("Cu", "fcc", cubic=True)
    with pytest.raises(ValueError, match=fragment):
        diffraction_pattern(atoms, rotation=rotation)


def test_batch_errors_name_the_structure():
    good = bulk("Cu", "fcc", cubic=True)
    with pytest.raises(ValueError, match=r"structures\[1\]"):
        fingerprints([good, Atoms()], progress=False)
    with pytest.raises(TypeError, match="sequence"):
        fingerprints(good, progress=False)
    with pytest.raises(ValueError, match="q must be"):
        intensity(good, np.zeros((4, 2)))


# ---------------------------------------------------------------------------
# Zone-axis predictions and figures
# ---------------------------------------------------------------------------


def test_zone_axis_spots_of_simple_cubic():
    det = Detector()
    hkl, pixels = diffraction.zone_axis_spots(np.eye(3), det, max_index=2)
    assert (hkl[:, 2] == 0).all() and len(hkl) == 24  # (hk0), |h|,|k| <= 2, no origin
    (row, col) = pixels[np.flatnonzero((hkl == [1, 0, 0]).all(axis=1))[0]]
    assert row == pytest.approx(det.center)
    assert col - det.center == pytest.approx(bragg_pixel_radius(1.0, det), abs=0.01)
    with pytest.raises(ValueError, match="non-singular"):
        diffraction.zone_axis_spots(np.zeros((3, 3)), det)


def test_zone_axis_reflections_mark_bcc_absences_and_sit_on_bright_spots():
    det = Detector()
    atoms = bulk("Fe", "bcc", cubic=True).repeat(5)
    hkl, pixels, strength = diffraction.zone_axis_reflections(atoms, det, max_index=2)
    absent = {tuple(h) for h, s in zip(hkl, strength, strict=True) if s < 1e-9 * strength.max()}
    assert (1, 0, 0) in absent and (1, 1, 0) not in absent and (2, 0, 0) not in absent
    pattern = diffraction_pattern(atoms, det)
    (row, col) = pixels[np.flatnonzero((hkl == [1, 1, 0]).all(axis=1))[0]]
    window = pattern[int(row) - 2 : int(row) + 3, int(col) - 2 : int(col) + 3]
    assert window.max() > 100 * np.median(pattern)


def test_plots_have_labelled_axes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    det = Detector(n_pixels=32)
    atoms = bulk("Cu", "fcc", cubic=True).repeat(3)
    axes = [
        diffraction.plot_pattern(diffraction_pattern(atoms, det)),
        diffraction.plot_detector_angles(det, {"sc (100)": 1.0}),
        diffraction.plot_ewald_section(det),
        diffraction.plot_form_factors(["Al", "Au"], det),
    ]
    for ax in axes:
        assert ax.get_xlabel() and ax.get_ylabel()
    assert "(1/Å)" in axes[2].get_xlabel() and "electrons" in axes[3].get_ylabel()
    diffraction.plot_fingerprint(fingerprint(atoms, det))
    with pytest.raises(ValueError, match="channels-last"):
        diffraction.plot_fingerprint(np.zeros((3, 32, 32)))
    with pytest.raises(ValueError, match="2D"):
        diffraction.plot_pattern(np.zeros((4, 4, 3)))
    plt.close("all")


def test_fingerprints_honours_n_jobs(monkeypatch):
    import joblib

    structures = [bulk("Cu", "fcc", cubic=True).repeat(2)] * 3

    def refuse(*args, **kwargs):
        raise AssertionError("n_jobs=1 must not start worker processes")

    monkeypatch.setattr(joblib, "Parallel", refuse)
    assert fingerprints(structures, n_jobs=1, progress=False).shape == (3, 64, 64, 3)
    with pytest.raises(AssertionError, match="worker"):
        fingerprints(structures, n_jobs=2, progress=False)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="n_jobs"):
            fingerprints(structures, n_jobs=bad, progress=False)


def test_beam_direction_names_the_zone_axis_of_a_view():
    from crystal_course.diffraction import beam_direction

    cubic = np.eye(3) * 3.0
    np.testing.assert_allclose(beam_direction(cubic, None), [0, 0, 1], atol=1e-12)
    # +45 degrees about x: the beam runs along [011] of a cubic cell (up to sign).
    np.testing.assert_allclose(np.abs(beam_direction(cubic, ("x", 45))), [0, 1, 1], atol=1e-12)
    # In a tetragonal cell with c/a = 1.6 the same view is irrational, [0, 1.6, 1]...
    tetragonal = np.diag([3.0, 3.0, 4.8])
    np.testing.assert_allclose(np.abs(beam_direction(tetragonal, ("x", 45))), [0, 1, 0.625])
    # ... and the tilt that puts [011] on the beam is atan(a / c) about x.
    tilt = np.degrees(np.arctan(3.0 / 4.8))
    np.testing.assert_allclose(np.abs(beam_direction(tetragonal, ("x", tilt))), [0, 1, 1])
    with pytest.raises(ValueError, match="non-degenerate"):
        beam_direction(np.zeros((3, 3)), None)
