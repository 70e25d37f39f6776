"""Zone-axis patterns, their datasets, the Chapter 6 experiment and its results card."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase.build import bulk

from crystal_course import dataset, diffraction, models, shaping, structures, zone_axis
from crystal_course.uncertainty import wilson

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
    rotations = spglib.get_symmetry(
        (cell.cell[:], cell.get_scaled_positions(), cell.numbers), symprec=1e-3
    )["rotations"]

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
    with pytest.raises(ValueError, match="distinct"):
        zone_axis.Config((221, 221), 2, 1)
    with pytest.raises(ValueError, match="q_max"):
        zone_axis.Config((221, 229), 2, 1, q_max=0.0)
    with pytest.raises(ValueError, match="zone_axes must be"):
        zone_axis.Config((221, 229), 2, 1, zone_axes="xyz")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Three cubic groups, 4 training and 2 test crystals each, 32x32."""
    config = zone_axis.Config((221, 225, 229), 4, 2, vacancies=(0.2,), n_pixels=32, n_atoms=150)
    path = tmp_path_factory.mktemp("za") / "tiny"
    return zone_axis.generate(path, config, n_jobs=1, progress=False)


@pytest.mark.parametrize("inputs", sorted(zone_axis.INPUTS))
@pytest.mark.parametrize("model", sorted(zone_axis.MODELS))
def test_experiment_trains_transfers_and_scores_every_split(tiny, inputs, model):
    recipe = zone_axis.Recipe(epochs=2, batch_size=4)
    small, first = zone_axis.experiment(tiny, inputs, model, (221, 229), recipe, 0,
                                        msdn_size=TINY_MSDN)  # fmt: skip
    network, result = zone_axis.experiment(tiny, inputs, model, None, recipe, 0,
                                           msdn_size=TINY_MSDN, pretrained=small)  # fmt: skip
    assert first.transferred_from is None and result.transferred_from == 2
    assert result.space_groups == (221, 225, 229) and result.n_train == 12
    assert set(result.probabilities) == {"test_pristine", "test_vacancies_0.2"}
    for p in result.probabilities.values():
        assert p.shape == (6, 3)
        np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-5)
    assert set(first.y["test_pristine"]) == {0, 1}  # labels remapped to the subset
    assert result.top_k(3) == 1.0
    assert result.n_parameters == network.count_params()
    per_pattern = {"shaped": 2, "rgb": 3}.get(inputs, 1)  # R and S; the paper's RGB
    shape = network.input_shape[0] if model == "msdn" else network.input_shape
    assert shape[-1] == per_pattern * (1 if model == "msdn" else 3)
    assert set(result.history) == {"loss", "val_loss", "accuracy", "val_accuracy"}
    assert all(len(v) == 2 for v in result.history.values())
    assert result.accuracy().n == 6
    assert set(result.retained()) == {0.2}
    table = result.system_confusion()
    assert list(table.index) == ["cubic"] and int(table.to_numpy().sum()) == 6
    summary = result.summary()
    assert (summary["n_groups"], summary["inputs"], summary["model"]) == (3, inputs, model)
    assert summary["variant"] == "" and len(summary["predicted"]["test_pristine"]) == 6
    if inputs == "faint":  # made from the raw patterns on loading: between R and S
        arrays, _ = zone_axis.load_split(tiny, "train", needed=("faint",))
        assert (arrays["spots"] <= arrays["faint"]).all()
        assert (arrays["faint"].astype(int) <= arrays["grey"].astype(int) + 1).all()
    if inputs == "lines":  # what shaping adds: R + lines = S, pixel by pixel
        arrays, _ = zone_axis.load_split(tiny, "train", needed=("lines",))
        total = arrays["spots"].astype(int) + arrays["lines"]
        np.testing.assert_array_equal(total, arrays["grey"])
        assert arrays["lines"].any()
    json.dumps(summary)  # JSON-ready


def test_transfer_copies_the_trunk(tiny):
    recipe = zone_axis.Recipe(epochs=1, batch_size=4)
    small, _ = zone_axis.experiment(tiny, "shaped", "msdn", (221, 229), recipe,
                                    msdn_size=TINY_MSDN)  # fmt: skip
    zero = zone_axis.Recipe(epochs=1, batch_size=4, learning_rate=1e-12, weight_decay=0)
    big, _ = zone_axis.experiment(tiny, "shaped", "msdn", None, zero, msdn_size=TINY_MSDN,
                                  pretrained=small)  # fmt: skip
    # A learning rate of 1e-12 leaves the learned weights where the transfer put them
    # (batch normalisation's running statistics do move: they are not learned).
    for a, b in zip(small.get_layer("densenet_trunk").trainable_weights,
                    big.get_layer("densenet_trunk").trainable_weights, strict=True):  # fmt: skip
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)
    fresh = models.msdn((32, 32, 1), 3, seed=0, **TINY_MSDN)
    first = fresh.get_layer("densenet_trunk").trainable_weights[0]
    assert not np.allclose(np.asarray(first), np.asarray(
        small.get_layer("densenet_trunk").trainable_weights[0]))  # fmt: skip


def test_experiment_rejects_bad_input(tiny, tmp_path):
    with pytest.raises(ValueError, match="inputs must be one of"):
        zone_axis.experiment(tiny, "svm", "cnn")
    with pytest.raises(ValueError, match=r"space groups \[194\] are not in the dataset"):
        zone_axis.experiment(tiny, "spots", "cnn", (221, 194))
    other = dataset.generate(tmp_path / "fp", 1, 1, vacancies=(), displacements=(),
                             n_atoms=40, n_jobs=1, progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="not a zone-axis dataset"):
        zone_axis.experiment(other, "spots", "cnn")
    with pytest.raises(ValueError, match="epochs"):
        zone_axis.Recipe(epochs=0)
    variant = zone_axis.Recipe(batch_norm=False, learning_rate=1e-5).variant
    assert variant == "no batch norm, lr 1e-05"
    with pytest.raises(ValueError, match="train_per_group"):
        zone_axis.Recipe(train_per_group=0)
    with pytest.raises(ValueError, match="fewer than the 5 asked for"):
        zone_axis.load_split(tiny, "train", per_group=5)


def test_train_per_group_keeps_the_first_crystals_of_each_group(tiny):
    every, y_every = zone_axis.load_split(tiny, "train")
    assert "rgb" not in every  # nine channels per crystal, made only when asked for
    assert zone_axis.load_split(tiny, "train", needed=("rgb",))[0]["rgb"].shape[-1] == 9
    first, y_first = zone_axis.load_split(tiny, "train", per_group=2)
    assert np.bincount(y_first).tolist() == [2, 2, 2]  # every group shrinks alike
    chosen = [i for g in range(3) for i in np.flatnonzero(y_every == g)[:2]]
    np.testing.assert_array_equal(first["spots"], every["spots"][chosen])
    recipe = zone_axis.Recipe(epochs=1, batch_size=4, train_per_group=2)
    assert recipe.variant == "2 train/group"
    _, result = zone_axis.experiment(tiny, "spots", "cnn", recipe=recipe)
    assert result.n_train == 6 and result.summary()["variant"] == "2 train/group"
    assert len(result.y["test_pristine"]) == 6  # the test crystals stay the same


def test_conditional_vacancy_accuracy_counts_only_pristine_hits():
    y = {"test_pristine": [0, 1, 2, 3], "test_vacancies_0.1": [0, 1, 2, 3]}
    predicted = {"test_pristine": [0, 1, 2, 0], "test_vacancies_0.1": [0, 1, 0, 3]}
    result = zone_axis.conditional_vacancy_accuracy(predicted, y)
    # Three crystals right when pristine; two of them still right with vacancies.
    # The fourth, wrong when pristine and right with vacancies, does not count.
    assert result == {0.1: wilson(2, 3)}
    with pytest.raises(ValueError, match="in order"):
        zone_axis.conditional_vacancy_accuracy(
            predicted, {**y, "test_vacancies_0.1": [3, 2, 1, 0]})  # fmt: skip


def test_command_line_writes_a_card_and_resumes(tiny, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(structures.SPACE_GROUP_SETS, 2, (221, 229))
    monkeypatch.setitem(structures.SPACE_GROUP_SETS, 3, (221, 225, 229))
    monkeypatch.setitem(zone_axis.MSDN_SIZES, "quick", TINY_MSDN)
    monkeypatch.setenv("CRYSTAL_COURSE_MODE", "quick")
    card = tmp_path / "card.json"
    argv = ["train", str(tiny), "--card", str(card), "--groups", "3", "--transfer-from", "2",
            "--epochs", "1", "--methods", "spots+cnn", "shaped+msdn"]  # fmt: skip
    assert zone_axis.main(argv) == 0
    content = json.loads(card.read_text())
    assert [(r["n_groups"], r["inputs"], r["model"]) for r in content["runs"]] == [
        (2, "spots", "cnn"),
        (3, "spots", "cnn"),
        (2, "shaped", "msdn"),
        (3, "shaped", "msdn"),
    ]
    assert content["runs"][1]["transferred_from"] == 2
    assert content["commands"][0].startswith("python -m crystal_course.zone_axis train")
    assert content["paper_top1"]["72"] == 0.8012
    runs = zone_axis.card_runs(content, n_groups=3)
    assert len(runs) == 2 and ((runs["low"] <= runs["top1"]) & (runs["top1"] <= runs["high"])).all()
    # every run is in the card: no per-epoch backups are left behind
    assert not any((tmp_path / "card.runs").rglob("*.csv"))
    assert zone_axis.run_folder(card, (20, "grey", "msdn", 1, "lr 1e-05")).name == (
        "20-grey-msdn-seed1-lr_1e_05"
    )
    before = card.read_text()
    assert zone_axis.main(argv) == 0  # everything in the card: nothing retrained
    assert card.read_text() == before
    other = dict(content, dataset={**content["dataset"], "seed": 99})
    card.write_text(json.dumps(other))
    with pytest.raises(SystemExit) as stop:  # runs of another dataset are never mixed in
        zone_axis.main(argv)
    assert stop.value.code == 2 and "another dataset" in capsys.readouterr().err
    card.write_text(before)
    for bad in (["--epochs", "-3"], ["--methods", "pixels+svm"]):
        with pytest.raises(SystemExit) as stop:
            zone_axis.main(argv + bad)
        assert stop.value.code == 2
    assert "INPUT+MODEL" in capsys.readouterr().err


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


def test_chapter_6_plots(tiny):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _, result = zone_axis.experiment(tiny, "spots", "cnn", recipe=zone_axis.Recipe(epochs=1))
    ax = zone_axis.plot_top_k({"spots": result})
    assert ax.get_xlabel().startswith("k") and len(ax.lines) == 1
    kept = zone_axis.conditional_vacancy_accuracy(
        {"test_pristine": [0, 1, 1], "test_vacancies_0.2": [0, 1, 0]},
        {"test_pristine": [0, 1, 1], "test_vacancies_0.2": [0, 1, 1]})  # fmt: skip
    ax = zone_axis.plot_vacancy_robustness({"spots": kept})
    np.testing.assert_allclose(np.asarray(ax.lines[0].get_xdata(), float), [0, 20])
    np.testing.assert_allclose(np.asarray(ax.lines[0].get_ydata(), float), [100, 200 / 3])
    ax = zone_axis.plot_training_size(
        {
            "R + CNN": {20: wilson(5, 10), 80: wilson(8, 10)},
            "S + MSDN": {20: wilson(2, 10), 80: wilson(6, 10)},
        }
    )
    assert ax.get_xscale() == "log"
    np.testing.assert_allclose(np.asarray(ax.lines[0].get_xdata(), float), [20, 80])
    np.testing.assert_allclose(np.asarray(ax.lines[0].get_ydata(), float), [50, 80])
    assert "per space group" in ax.get_xlabel() and "%" in ax.get_ylabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["R + CNN", "S + MSDN"]
    mean = result.probabilities["test_pristine"][:2]
    axes = zone_axis.plot_mc_dropout(mean, np.zeros_like(mean), result.space_groups, [0, 1])
    assert len(axes) == 2 and "probability" in axes[0].get_ylabel()
    with pytest.raises(ValueError, match="mean and std"):
        zone_axis.plot_mc_dropout(mean, mean[:1, :2], result.space_groups)
    axes = zone_axis.plot_learning_curves({"spots": result.history})
    assert "epoch" in axes[0].get_xlabel() and len(axes[1].lines) == 2
    plt.close("all")


def test_zone_axis_settings_per_mode(monkeypatch):
    from crystal_course import config

    monkeypatch.setenv("CRYSTAL_COURSE_MODE", "quick")
    quick = config.zone_axis_settings()
    monkeypatch.setenv("CRYSTAL_COURSE_MODE", "full")
    full = config.zone_axis_settings()
    assert set(quick.sets) <= set(full.sets) <= set(structures.SPACE_GROUP_SETS)
    assert quick.n_pixels >= 64  # a lattice, not a handful of spots
    assert full.mc_passes == 500


def test_shipped_card_holds_the_comparison():
    card = zone_axis.card()
    assert card["mode"] == "full" and card["commands"]
    assert card["dataset"]["n_pixels"] == 64 and card["dataset"]["q_max"] == zone_axis.Q_MAX
    assert card["msdn_size"]["blocks"] == [3, 6, 12, 8]  # four dense blocks, full size
    # made on the cell axes with grey lines (dataset format 2), as Chapter 6 says
    assert (card["dataset"]["format"], card["dataset"]["zone_axes"]) == (2, "cell")
    assert not zone_axis.card_correct(card, "shaped", "msdn").size  # not today's shaped input
    for inputs, model in [("spots", "cnn"), ("grey", "msdn")]:
        correct = zone_axis.card_correct(card, inputs, model)
        assert (
            correct.shape[0] >= 1 and correct.shape[1] == 20 * card["dataset"]["n_test_per_group"]
        )
    for run in card["runs"]:
        assert 0 <= run["top_k"]["1"] <= run["top_k"]["5"] <= 1
        assert len(run["history"]["val_accuracy"]) == run["recipe"]["epochs"]
        if run["n_groups"] == 20:
            assert run["transferred_from"] == 8  # trained from the 8-group weights
        top1 = np.mean(np.equal(run["predicted"]["test_pristine"], run["y"]["test_pristine"]))
        assert top1 == pytest.approx(run["top_k"]["1"], abs=1e-4)


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
