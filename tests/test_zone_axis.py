"""Zone-axis patterns, their datasets, the Chapter 6 experiment and its results card."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

from crystal_course import dataset, diffraction, shaping, structures, zone_axis

TINY_MSDN = {"blocks": (1,), "growth": 4, "stem_filters": 4}


def test_patterns_follow_the_crystal_axes():
    detector = zone_axis.detector(64)
    assert detector.wavelength == 3.5e-12
    cubic = structures.build_prototype(225, "Cu")
    patterns = zone_axis.patterns(cubic, detector, n_atoms=300)
    assert patterns.shape == (64, 64, 3) and patterns.dtype == np.float32
    assert patterns.max() == 255 and patterns.min() == 0
    np.testing.assert_array_equal(patterns, np.rint(patterns))  # 8-bit style
    # fcc along the cell axes: [100], [010] and [001] are equivalent; with the in-plane
    # axes fixed by the next cell vector, the three patterns are the same image.
    cell_axes = zone_axis.patterns(cubic, detector, n_atoms=300, axes=(0, 1, 2))
    np.testing.assert_allclose(cell_axes[..., 0], cell_axes[..., 2], atol=1)
    np.testing.assert_array_equal(patterns[..., 0], cell_axes[..., 2])  # [001] both ways
    for i, j in ((0, 1), (0, 2), (1, 2)):  # [001], [011], [111]: three different zones
        assert np.abs(patterns[..., i] - patterns[..., j]).mean() > 1
    tetragonal = structures.build_prototype(139, "In", c_over_a=1.7)
    p = zone_axis.patterns(tetragonal, detector, n_atoms=300, axes=(0, 1, 2))
    assert (p[..., 0] >= 128).sum() == (p[..., 1] >= 128).sum()  # a = b
    assert not np.array_equal(p[..., 0] >= 128, p[..., 2] >= 128)  # c differs
    with pytest.raises(ValueError, match="needs its axes"):
        zone_axis.patterns(cluster_of(cubic), detector, as_cluster=True)
    cluster = zone_axis.spherical_cluster(cubic, 300)
    assert 250 < len(cluster) < 350
    with pytest.raises(ValueError, match="q_max"):
        zone_axis.detector(64, q_max=-1)
    with pytest.raises(ValueError, match="n_pixels"):
        zone_axis.detector(4)


def cluster_of(atoms):
    return zone_axis.spherical_cluster(structures.standard_conventional_cell(atoms), 200)


# One group of each crystal system, hexagonal and trigonal in hexagonal axes.
SYSTEM_GROUPS = {"triclinic": 2, "monoclinic": 14, "orthorhombic": 62, "tetragonal": 139,
                 "trigonal": 166, "hexagonal": 194, "cubic": 225}  # fmt: skip


@pytest.mark.parametrize("system", sorted(SYSTEM_GROUPS))
def test_distinct_zone_axes_are_not_related_by_symmetry(system):
    """No rotation of the crystal maps one of the three beams onto another (or its
    opposite); along the cell axes, [100] and [010] are related in the higher systems."""
    import spglib

    crystal = structures.random_crystal(SYSTEM_GROUPS[system], 3)
    cell = structures.standard_conventional_cell(crystal)
    assert structures.crystal_system(structures.space_group(cell)) == system
    dataset = structures._spglib(
        spglib.get_symmetry_dataset, structures.spglib_cell(cell), symprec=1e-3
    )
    rotations = dataset.rotations

    def related(u, v):
        return any(np.array_equal(r @ u, v) or np.array_equal(r @ u, -np.asarray(v))
                   for r in rotations)  # fmt: skip

    axes = zone_axis.zone_axes(system)
    assert len(set(axes)) == 3
    assert not any(related(axes[i], axes[j]) for i in range(3) for j in range(i + 1, 3))
    cell_axes = zone_axis.zone_axes(system, "cell")
    assert related(cell_axes[0], cell_axes[1]) == (
        system in ("tetragonal", "trigonal", "hexagonal", "cubic")
    )
    with pytest.raises(ValueError, match="zone_axes must be"):
        zone_axis.zone_axes(system, "cartesian")


@pytest.mark.parametrize(("group", "uvw"), [(194, (1, 2, 0)), (225, (1, 1, 1)), (14, (1, 0, 1))])
def test_a_beam_along_any_lattice_direction_is_a_zone_axis(group, uvw):
    """Every bright spot is a reciprocal-lattice point g with g . t = 0, t = [uvw]."""
    crystal = structures.random_crystal(group, 2)
    cell = np.asarray(structures.standard_conventional_cell(crystal).cell)
    rotation = zone_axis.beam_rotation(cell, uvw)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(rotation) == pytest.approx(1)
    beam = rotation @ (np.asarray(uvw) @ cell)
    np.testing.assert_allclose(beam[:2], 0, atol=1e-9)
    assert beam[2] > 0
    detector = zone_axis.detector(128)
    pattern = zone_axis.patterns(crystal, detector, axes=(uvw, 0, 1))[..., 0]
    q, _ = diffraction.scattering_vectors(detector)
    hkl = (q[pattern >= 128] @ rotation) @ cell.T / (2 * np.pi)
    assert len(hkl) > 3
    assert np.abs(hkl @ np.asarray(uvw)).max() < 0.2  # the zone law h u + k v + l w = 0
    for k, unit in enumerate(np.eye(3, dtype=int)):  # an index or its [uvw]: one rotation
        np.testing.assert_allclose(zone_axis.beam_rotation(cell, k),
                                   zone_axis.beam_rotation(cell, unit))  # fmt: skip
    for bad in [(0, 0, 0), (1.5, 0, 0), (1, 2)]:
        with pytest.raises(ValueError, match="axis must be"):
            zone_axis.beam_rotation(cell, np.array(bad))


def test_physical_size_sets_the_spot_spacing():
    # Not rescaled: the fcc (200) spots of Cu (a = 3.61 Å) and Al (a = 4.05 Å) sit at
    # |q| = 4 pi / a, so the bigger cell's spots are closer to the centre.
    detector = zone_axis.detector(64)
    q, _ = diffraction.scattering_vectors(detector)
    radius = {}
    for element in ("Cu", "Al"):
        crystal = bulk(element, cubic=True)
        pattern = zone_axis.patterns(crystal, detector)[..., 0]  # cubic: [001] first
        brightest = np.unravel_index(pattern.argmax(), pattern.shape)
        radius[element] = np.linalg.norm(q[brightest][:2])
        assert radius[element] == pytest.approx(4 * np.pi / crystal.cell[0, 0], rel=0.06)
    assert radius["Cu"] > radius["Al"]


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_monoclinic_patterns_are_exact_zone_axes(axis):
    """Every bright spot is a reciprocal-lattice point g with g . a_axis = 0."""
    crystal = structures.random_crystal(14, 5)  # monoclinic, beta != 90
    cell = structures.standard_conventional_cell(crystal).cell
    assert abs(cell.angles()[1] - 90) > 1
    rotation = zone_axis.beam_rotation(cell, axis)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(rotation) == pytest.approx(1)
    beam = rotation @ cell[axis]
    np.testing.assert_allclose(beam[:2], 0, atol=1e-9)  # the cell vector runs along the beam
    assert beam[2] > 0
    detector = zone_axis.detector(128)
    pattern = zone_axis.patterns(crystal, detector)[..., axis]
    q, _ = diffraction.scattering_vectors(detector)
    bright = pattern >= 128
    hkl = (q[bright] @ rotation) @ np.asarray(cell).T / (2 * np.pi)  # q in the crystal frame
    assert len(hkl) > 3
    assert np.abs(hkl[:, axis]).max() < 0.15  # the zone law h u + k v + l w = 0
    assert np.abs(hkl - np.rint(hkl)).max() < 0.3  # near lattice points (spot width)
    with pytest.raises(ValueError, match="axis must be"):
        zone_axis.beam_rotation(cell, 3)


def test_shaped_inputs_keep_the_raw_pattern():
    spots = zone_axis.patterns(structures.random_crystal(62, 0), n_atoms=250)
    arrays = zone_axis.shaped_inputs(spots)
    assert (
        set(arrays)
        == {"spots", "grey", "shaped", "rgb", "thresholded"}
        == set(zone_axis.INPUTS) - {"faint", "lines"}
    )
    assert (arrays["grey"] >= arrays["spots"]).all()  # S >= R pixelwise
    assert (arrays["grey"] > arrays["spots"]).sum() > 0  # lines were added
    weak = (arrays["spots"] > 0) & (arrays["spots"] < 50)
    assert weak.any() and (arrays["grey"][weak] >= arrays["spots"][weak]).all()
    assert arrays["rgb"].shape == spots.shape[:-1] + (9,)
    np.testing.assert_array_equal(arrays["rgb"][..., [0, 4, 8]], arrays["grey"])
    assert arrays["shaped"].shape == spots.shape[:-1] + (6,)
    np.testing.assert_array_equal(arrays["shaped"][..., 1::2], arrays["grey"])
    np.testing.assert_array_equal(arrays["shaped"][..., 0::2], arrays["spots"])
    assert (arrays["thresholded"][weak] < arrays["spots"][weak]).any()  # the ablation deletes
    assert (shaping.count_nodes(spots) >= 1).all()


def test_dataset_round_trip_and_resume(tmp_path):
    config = zone_axis.Config((221, 229), 2, 1, vacancies=(0.1,), n_atoms=120, chunk_size=2)
    path = zone_axis.generate(tmp_path / "za", config, n_jobs=1, progress=False)
    train = dataset.load(path, "train")
    assert train.x.shape == (4, 64, 64, 3) and train.x.dtype == np.uint8
    for key in ("spots", "thresholded"):
        assert train.meta[key].shape == (4, 64, 64, 3)
    assert (train.x >= train.meta["spots"]).all()
    assert train.manifest["parameters"]["zone_axes"] == "distinct"
    assert train.meta["n_nodes"].shape == (4, 3)
    assert train.class_names == ("221 (cubic)", "229 (cubic)")
    assert train.manifest["format"] == zone_axis.FORMAT_VERSION
    holes = dataset.load(path, "test_vacancies_0.1")
    assert (holes.meta["n_atoms"] < dataset.load(path, "test_pristine").meta["n_atoms"]).all()
    name = sorted(train.manifest["chunks"])[0]
    before = (path / name).read_bytes()
    (path / name).unlink()
    zone_axis.generate(path, config, n_jobs=1, progress=False)
    assert (path / name).read_bytes() == before  # resumed to the same bytes
    # the stored crystals are the crystallites a powder pattern can be taken of
    for split, data in (("train", train), ("test_vacancies_0.1", holes)):
        sizes = [len(zone_axis.crystallite(config, split, c, p))
                 for c, p in config.parents(split)]  # fmt: skip
        assert sizes == data.meta["n_atoms"].tolist()
    with pytest.raises(ValueError, match="split must be one of train"):
        zone_axis.crystallite(config, "validation", 0, 0)
    with pytest.raises(ValueError, match="distinct"):
        zone_axis.Config((221, 221), 2, 1)
    with pytest.raises(ValueError, match="q_max"):
        zone_axis.Config((221, 229), 2, 1, q_max=0.0)
    with pytest.raises(ValueError, match="zone_axes must be"):
        zone_axis.Config((221, 229), 2, 1, zone_axes="xyz")
    # made before train_groups existed: the manifest of an all-groups set does not name it
    assert "train_groups" not in train.manifest["parameters"]


def test_training_crystals_for_fewer_groups_leave_the_test_splits_whole(tmp_path):
    # The same crystals as the all-groups set, minus the other groups' training rows.
    groups = (221, 225, 229)
    every = zone_axis.Config(groups, 2, 1, vacancies=(0.1,), n_atoms=120, n_pixels=32)
    fewer = zone_axis.Config(groups, 2, 1, vacancies=(0.1,), n_atoms=120, n_pixels=32,
                             train_groups=[229, 221])  # fmt: skip
    assert fewer.parents("train") == [(0, 0), (0, 1), (2, 0), (2, 1)]
    assert fewer.parents("test_pristine") == every.parents("test_pristine")
    a = zone_axis.generate(tmp_path / "every", every, n_jobs=1, progress=False)
    b = zone_axis.generate(tmp_path / "fewer", fewer, n_jobs=1, progress=False)
    train_a, train_b = dataset.load(a, "train"), dataset.load(b, "train")
    keep = np.isin(train_a.meta["space_group"], (221, 229))
    np.testing.assert_array_equal(train_b.x, train_a.x[keep])
    np.testing.assert_array_equal(train_b.y, train_a.y[keep])  # labels still index all groups
    for split in fewer.splits[1:]:
        np.testing.assert_array_equal(dataset.load(b, split).x, dataset.load(a, split).x)
    assert dataset.load(b, "train").manifest["parameters"]["train_groups"] == [229, 221]
    for bad in ((221,), (221, 221), (221, 230)):
        with pytest.raises(ValueError, match="train_groups must be"):
            zone_axis.Config(groups, 2, 1, train_groups=bad)


def test_dataset_command_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(structures.SPACE_GROUP_SETS, 2, (221, 229))
    path = tmp_path / "cli"
    argv = ["generate", str(path), "--groups", "2", "--n-per-group", "1", "--n-test-per-group",
            "1", "--n-pixels", "32", "--n-jobs", "1", "--no-progress"]  # fmt: skip
    assert zone_axis.main(argv) == 0
    assert "test_vacancies_0.2" in capsys.readouterr().out
    train = dataset.load(path, "train")
    assert train.x.shape == (2, 32, 32, 3)
    assert train.manifest["parameters"]["space_groups"] == [221, 229]


def test_zone_axis_settings_per_mode(monkeypatch):
    from crystal_course import config

    monkeypatch.setenv("CRYSTAL_COURSE_MODE", "quick")
    quick = config.zone_axis_settings()
    monkeypatch.setenv("CRYSTAL_COURSE_MODE", "full")
    full = config.zone_axis_settings()
    assert set(quick.sets) <= set(full.sets) <= set(structures.SPACE_GROUP_SETS)
    for zone in (quick, full):  # every training set is a subset of the dataset's
        assert max(zone.sets) <= zone.dataset_groups in structures.SPACE_GROUP_SETS
    assert quick.n_pixels >= 64  # a lattice, not a handful of spots
    assert full.mc_passes == 500
    # a dataset of another size never lands in the folder of this one
    settings = config.settings()
    assert zone_axis.default_path(settings, 8) != zone_axis.default_path(settings, 20)
    assert "-8groups-" in zone_axis.default_path(settings, 8).name
    with pytest.raises(ValueError, match="n_groups must be"):
        zone_axis.default_path(settings, 1)
    # nor one with training crystals for fewer groups
    fewer = zone_axis.default_path(settings, 20, 8)
    assert "-20groups-train8-" in fewer.name and fewer != zone_axis.default_path(settings, 20)
    for bad in (1, True, 8.0):  # a bool is not a count of groups
        with pytest.raises(ValueError, match="n_train_groups must be"):
            zone_axis.default_path(settings, 20, bad)
        with pytest.raises(ValueError, match="n_groups must be"):
            zone_axis.default_path(settings, bad)


def test_nearest_other_is_never_the_image_itself():
    images = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 1.0]])
    similarity = zone_axis.cosine_similarity(images)
    assert np.isneginf(np.diag(similarity)).all()
    np.testing.assert_allclose(similarity[0, 2], 0.0, atol=1e-6)
    assert zone_axis.nearest_other(images).tolist() == [1, 0, 3, 2]
    assert zone_axis.nearest_other(np.stack([images[0]] * 3)).tolist() == [1, 0, 0]  # ties: first
    with pytest.raises(ValueError, match="at least 2 images"):
        zone_axis.nearest_other(images[:1])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--n-per-group", "-3", "--n-test-per-group", "1"],
         "argument --n-per-group: expected a positive integer, got -3"),
        (["--n-per-group", "2", "--n-test-per-group", "1", "--n-pixels", "1"],
         "n_pixels"),
        (["--n-per-group", "2", "--n-test-per-group", "1", "--scheduler", "nonsense"],
         "'nonsense' is not a Dask scheduler address"),
    ],
)  # fmt: skip
def test_dataset_command_line_errors_are_one_line(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        zone_axis.main(["generate", str(tmp_path / "za"), "--no-progress", *argv])
    assert stop.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("python -m crystal_course.zone_axis generate: error: ")
    assert message in last


def test_view_similarity_finds_equivalent_zones():
    # a cubic crystal: along the cell axes the three views are one zone, along the
    # distinct axes they are three
    cluster = zone_axis.spherical_cluster(bulk("Cu", "fcc", a=3.6, cubic=True), 300)
    geometry = zone_axis.detector(48)
    cell = zone_axis.patterns(cluster, geometry, as_cluster=True, axes=zone_axis.zone_axes(
        "cubic", "cell"))  # fmt: skip
    distinct = zone_axis.patterns(cluster, geometry, as_cluster=True,
                                  axes=zone_axis.zone_axes("cubic"))  # fmt: skip
    assert zone_axis.view_similarity(cell) > 0.999
    assert zone_axis.view_similarity(distinct) < 0.9
    # a turned and mirrored copy of a view is the same zone
    turned = np.stack([distinct[..., 0], np.rot90(distinct[..., 0]),
                       np.fliplr(distinct[..., 2])], axis=-1)  # fmt: skip
    assert zone_axis.view_similarity(turned) == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"\(n, n, 3\)"):
        zone_axis.view_similarity(distinct[..., :2])
    with pytest.raises(ValueError, match="all zero"):
        zone_axis.view_similarity(np.zeros((8, 8, 3)))


def test_the_shipped_crystal_table_holds_pyxtals_own_draws():
    table = zone_axis._crystal_table()
    keys = sorted(table)
    assert len(keys) == 20 * 40  # Chapter 6's quick dataset: 20 groups, 32 + 8 parents
    for key in (keys[0], keys[len(keys) // 2], keys[-1]):
        stored, drawn = zone_axis.crystal(*key), zone_axis.draw_crystal(*key)
        assert stored.get_chemical_formula() == drawn.get_chemical_formula()
        np.testing.assert_array_equal(stored.positions, drawn.positions)
        np.testing.assert_array_equal(np.array(stored.cell), np.array(drawn.cell))
        assert stored.pbc.all()
    # each call is a copy: changing one leaves the dataset's crystal as it was
    changed = zone_axis.crystal(*keys[0])
    changed.positions += 1.0
    np.testing.assert_array_equal(zone_axis.crystal(*keys[0]).positions,
                                  zone_axis.draw_crystal(*keys[0]).positions)  # fmt: skip


def test_a_crystal_table_round_trips(tmp_path):
    config = zone_axis.Config((221, 229), 1, 1, vacancies=(0.1,))
    path = zone_axis.write_crystal_table(tmp_path / "t.npz", config)
    with np.load(path) as table:
        assert table["keys"].tolist() == [[0, 221, 0, 24], [0, 221, 1, 24], [0, 229, 0, 24],
                                          [0, 229, 1, 24]]  # fmt: skip
        assert table["offsets"][-1] == len(table["numbers"]) == len(table["positions"])
