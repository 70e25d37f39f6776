"""Chapter 6's package parts: random crystals, zone-axis patterns, shaping, the MSDN."""

from __future__ import annotations

import numpy as np
import pytest

from crystal_course import dataset, diffraction, models, shaping, structures, training


def test_space_group_sets_are_nested_and_span_the_crystal_systems():
    sets = structures.SPACE_GROUP_SETS
    assert {k: len(v) for k, v in sets.items()} == {8: 8, 20: 20, 49: 49, 72: 72}
    assert sets[8] == (139, 141, 166, 194, 221, 225, 227, 229)  # the 2018 set
    for small, big in [(8, 20), (20, 49), (49, 72)]:
        assert set(sets[small]) <= set(sets[big])
    systems = [structures.crystal_system(g) for g in sets[72]]
    counts = {name: systems.count(name) for name, _, _ in structures.CRYSTAL_SYSTEMS}
    assert counts == {"triclinic": 2, "monoclinic": 12, "orthorhombic": 22, "tetragonal": 13,
                      "trigonal": 6, "hexagonal": 8, "cubic": 9}  # fmt: skip
    assert len(set(systems[:0] + [structures.crystal_system(g) for g in sets[20]])) == 7
    with pytest.raises(ValueError, match="1..230"):
        structures.crystal_system(231)


@pytest.mark.parametrize("group", [2, 14, 62, 139, 148, 194, 225])
def test_random_crystals_are_relabelled_by_spglib(group):
    atoms = structures.random_crystal(group, 3)
    assert atoms.info["space_group"] == group == structures.space_group(atoms)
    assert len(atoms) <= 24
    again = structures.random_crystal(group, 3)
    np.testing.assert_allclose(atoms.positions, again.positions)  # seeded
    # Returned in spglib's standard orientation (a along x).
    np.testing.assert_allclose(atoms.cell[0, 1:], 0, atol=1e-8)


def test_zone_axis_patterns_follow_the_crystal_axes():
    detector = diffraction.zone_axis_detector(64)
    assert detector.wavelength == 3.5e-12
    cubic = structures.build_prototype(225, "Cu")
    patterns = diffraction.zone_axis_patterns(cubic, detector, n_atoms=300)
    assert patterns.shape == (64, 64, 3) and patterns.dtype == np.float32
    assert patterns.max() == 255 and patterns.min() == 0
    np.testing.assert_array_equal(patterns, np.rint(patterns))  # 8-bit style
    # fcc: x, y and z are equivalent directions; the three patterns agree up to rotation.
    spots = [set(map(tuple, np.argwhere(patterns[..., k] >= 128))) for k in range(3)]
    assert len(spots[0]) == len(spots[1]) == len(spots[2]) > 0
    tetragonal = structures.build_prototype(139, "In", c_over_a=1.7)
    p = diffraction.zone_axis_patterns(tetragonal, detector, n_atoms=300)
    assert (p[..., 0] >= 128).sum() == (p[..., 1] >= 128).sum()  # a = b
    assert not np.array_equal(p[..., 0] >= 128, p[..., 2] >= 128)  # c differs
    cluster = diffraction.spherical_cluster(cubic, 300)
    assert 250 < len(cluster) < 350
    with pytest.raises(ValueError, match="q_max"):
        diffraction.zone_axis_detector(64, q_max=-1)


def _four_fold(n=64):
    image = np.zeros((n, n), np.float32)
    c = (n - 1) / 2
    rows, cols = np.mgrid[0:n, 0:n]
    for r, angle0, size in [(10, 0.3, 1.2), (17, 0.1, 1.0)]:
        for k in range(4):
            angle = angle0 + k * np.pi / 2
            y, x = c + r * np.sin(angle), c + r * np.cos(angle)
            image = np.maximum(image, 255 * np.exp(-((rows - y) ** 2 + (cols - x) ** 2) / size))
    return image


def test_nodes_and_the_distance_rule():
    grid = np.array([[r, c] for r in (10.0, 20.0, 30.0) for c in (10.0, 20.0, 30.0)])
    pairs = shaping.node_pairs(grid, factor=1.7)
    lengths = np.linalg.norm(grid[pairs[:, 0]] - grid[pairs[:, 1]], axis=1)
    # Edges (10) and diagonals (14.1 < 17) are joined; second neighbours (20) are not.
    assert np.allclose(np.unique(np.round(lengths, 3)), [10.0, 14.142])
    assert len(pairs) == 12 + 8
    assert len(shaping.node_pairs(grid, factor=1.3)) == 12
    # A near-duplicate of spot (10, 10) is not joined to it (0.7 px < min_separation);
    # it joins the three spots within 1.7 x the new shortest distance (9.5 px).
    close = np.vstack([grid, grid[:1] + 0.5])
    pairs = shaping.node_pairs(close, 1.7, min_separation=2.0)
    assert [0, 9] not in pairs.tolist() and len(pairs) == 20 + 3
    centres, sizes = shaping.find_nodes(_four_fold())
    assert len(centres) == 8 and (sizes > 0).all()
    assert len(shaping.node_pairs(centres[:1])) == 0


def test_shaping_keeps_a_four_fold_axis():
    image = _four_fold()
    shaped = shaping.shape_pattern(image)
    assert shaped.shape == image.shape and shaped.max() <= 255
    assert (shaped > 0).sum() > (image >= 50).sum()  # lines were drawn
    np.testing.assert_allclose(np.rot90(shaped), shaped, atol=1e-3)
    np.testing.assert_allclose(np.rot90(shaped, 2), shaped, atol=1e-3)


def test_empty_flat_and_bad_patterns():
    np.testing.assert_array_equal(shaping.shape_pattern(np.zeros((32, 32))), 0)
    flat = np.full((32, 32), 200.0)
    np.testing.assert_array_equal(shaping.shape_pattern(flat), flat)  # one node, no lines
    for bad, fragment in [
        (np.zeros((4, 8)), "square"),
        (np.full((8, 8), 300.0), r"\[0, 255\]"),
        (np.full((8, 8), np.nan), "finite"),
        (np.zeros((8, 8, 3)), "2-D"),
    ]:
        with pytest.raises(ValueError, match=fragment):
            shaping.shape_pattern(bad)


def test_shaped_fingerprint_of_a_crystal():
    shaped, spots = shaping.shaped_fingerprint(structures.random_crystal(62, 0), n_atoms=250)
    assert shaped.shape == spots.shape == (64, 64, 3)
    assert (shaped >= spots * (spots >= 50) - 1e-3).all()  # spots kept, lines added
    assert (shaped > 0).sum() > (spots >= 50).sum()


def test_msdn_shares_one_trunk_and_sums_the_losses():
    model = models.msdn((32, 32, 1), 4, blocks=(2, 2), growth=4, stem_filters=8, seed=0)
    trunk = model.get_layer("densenet_trunk")
    heads = [model.get_layer(f"logits_{a}") for a in "xyz"]
    assert len(model.trainable_weights) == len(trunk.trainable_weights) + 3 * 2
    trunk_ids = {id(v) for v in trunk.trainable_weights}
    assert len(trunk_ids) == len(trunk.trainable_weights)
    assert model.count_params() == trunk.count_params() + sum(h.count_params() for h in heads)
    rng = np.random.default_rng(0)
    shaped = rng.integers(0, 256, (12, 32, 32, 3)).astype(np.uint8)
    y = np.arange(12) % 4
    history = training.train_msdn(model, shaped, y, epochs=1, batch_size=4, seed=0)
    assert "loss" in history.history
    inputs = models.msdn_inputs(shaped)
    one_hot = np.eye(4, dtype=np.float32)[y]
    result = model.evaluate(inputs, [one_hot] * 3, verbose=0, return_dict=True)
    per_stream = [result[k] for k in sorted(result) if k.endswith("_loss") and k != "loss"]
    assert len(per_stream) == 3
    assert result["loss"] == pytest.approx(sum(per_stream), rel=1e-4)
    probabilities = models.msdn_probabilities(model, inputs)
    logits = model.predict(inputs, verbose=0)
    np.testing.assert_array_equal(probabilities.argmax(1), sum(logits).argmax(1))
    with pytest.raises(ValueError, match="R, G, B"):
        models.msdn_inputs(shaped[..., :2])


def test_mc_dropout_spreads_only_with_dropout():
    x = models.msdn_inputs(np.random.default_rng(1).integers(0, 256, (3, 32, 32, 3)))
    with_dropout = models.msdn((32, 32, 1), 4, blocks=(2,), growth=4, stem_filters=8,
                               dropout=0.5, seed=0)  # fmt: skip
    mean, std = models.mc_dropout_predict(with_dropout, x, passes=8)
    assert mean.shape == std.shape == (3, 4) and std.max() > 1e-4
    np.testing.assert_allclose(mean.sum(axis=1), 1, rtol=1e-5)
    again, _ = models.mc_dropout_predict(with_dropout, x, passes=8)
    np.testing.assert_allclose(again, mean, rtol=1e-5)  # seeded
    # Dropout is back off afterwards: plain predictions are deterministic.
    first = models.msdn_probabilities(with_dropout, x)
    np.testing.assert_allclose(models.msdn_probabilities(with_dropout, x), first)
    without = models.msdn((32, 32, 1), 4, blocks=(2,), growth=4, stem_filters=8, dropout=0.0)
    _, std0 = models.mc_dropout_predict(without, x, passes=4)
    np.testing.assert_allclose(std0, 0, atol=1e-7)


def test_top_k_accuracy():
    p = np.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7], [0.3, 0.4, 0.3]])
    y = np.array([1, 2, 2])
    assert training.top_k_accuracy(p, y, 1) == pytest.approx(1 / 3)
    assert training.top_k_accuracy(p, y, 2) == pytest.approx(2 / 3)
    assert training.top_k_accuracy(p, y, 3) == 1.0
    with pytest.raises(ValueError, match="k must"):
        training.top_k_accuracy(p, y, 4)


def test_zone_axis_dataset_round_trip_and_resume(tmp_path):
    config = dataset.ZoneAxisConfig((221, 229), 2, 1, vacancies=(0.1,), n_atoms=120,
                                    chunk_size=2)  # fmt: skip
    path = dataset.generate_zone_axis(tmp_path / "za", config, n_jobs=1, progress=False)
    train = dataset.load(path, "train")
    assert train.x.shape == (4, 64, 64, 3) and train.x.dtype == np.uint8
    assert train.meta["spots"].shape == (4, 64, 64, 3)
    assert train.class_names == ("221 (cubic)", "229 (cubic)")
    holes = dataset.load(path, "test_vacancies_0.1")
    assert (holes.meta["n_atoms"] < dataset.load(path, "test_pristine").meta["n_atoms"]).all()
    # Resume: remove a chunk, generate again, get the same bytes back.
    manifest = train.manifest
    name = sorted(manifest["chunks"])[0]
    before = (path / name).read_bytes()
    (path / name).unlink()
    dataset.generate_zone_axis(path, config, n_jobs=1, progress=False)
    assert (path / name).read_bytes() == before
    assert "split_sizes" in dataset.load(path, "train").manifest
    with pytest.raises(ValueError, match="distinct"):
        dataset.ZoneAxisConfig((221, 221), 2, 1)


@pytest.fixture(scope="module")
def tiny_zone_axis(tmp_path_factory):
    """Three cubic groups, 4 training and 2 test crystals each, 32x32."""
    config = dataset.ZoneAxisConfig((221, 225, 229), 4, 2, vacancies=(0.2,), n_pixels=32,
                                    n_atoms=150)  # fmt: skip
    path = tmp_path_factory.mktemp("za") / "tiny"
    return dataset.generate_zone_axis(path, config, n_jobs=1, progress=False)


@pytest.mark.parametrize("method", sorted(training.ZONE_AXIS_METHODS))
def test_zone_axis_experiment_trains_and_scores_every_split(tiny_zone_axis, method):
    size = {"blocks": (1,), "growth": 4, "stem_filters": 4}
    model, result = training.zone_axis_experiment(
        tiny_zone_axis, method, (221, 229), epochs=1, seed=0, msdn_size=size
    )
    assert result.space_groups == (221, 229) and result.n_train == 8
    assert set(result.probabilities) == {"test_pristine", "test_vacancies_0.2"}
    for split, p in result.probabilities.items():
        assert p.shape == (4, 2)
        np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-5)
        assert set(result.y[split]) == {0, 1}  # labels remapped to the subset
    assert result.top_k(2) == 1.0  # two classes: the true one is always in the top 2
    assert result.n_parameters == model.count_params()
    true, predicted = result.systems()
    assert set(true) == {"cubic"} and set(predicted) == {"cubic"}
    table = result.system_confusion()
    assert list(table.index) == ["cubic"] and int(table.to_numpy().sum()) == 4
    assert result.accuracy_by_system() == {"cubic": pytest.approx(result.top_k(1))}
    summary = result.summary()
    assert summary["n_groups"] == 2 and set(summary["top_k"]) == {1, 2}


def test_zone_axis_experiment_rejects_bad_input(tiny_zone_axis, tmp_path):
    with pytest.raises(ValueError, match="method must be one of"):
        training.zone_axis_experiment(tiny_zone_axis, "svm")
    with pytest.raises(ValueError, match=r"space groups \[194\] are not in the dataset"):
        training.zone_axis_experiment(tiny_zone_axis, "spots_cnn", (221, 194), epochs=1)
    other = dataset.generate(tmp_path / "fp", 1, 1, vacancies=(), displacements=(),
                             n_atoms=40, n_jobs=1, progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="not a zone-axis dataset"):
        training.zone_axis_experiment(other, "spots_cnn")


def test_zone_axis_command_line_writes_a_card_and_resumes(tiny_zone_axis, tmp_path, monkeypatch):
    import json

    monkeypatch.setitem(structures.SPACE_GROUP_SETS, 3, (221, 225, 229))
    monkeypatch.setitem(training.MSDN_SIZES, "quick",
                        {"blocks": (1,), "growth": 4, "stem_filters": 4})  # fmt: skip
    monkeypatch.setenv("CRYSTAL_COURSE_MODE", "quick")
    card = tmp_path / "card.json"
    argv = ["zone-axis", str(tiny_zone_axis), "--card", str(card), "--sets", "3", "--epochs", "1",
            "--methods", "spots_cnn", "shaped_msdn"]  # fmt: skip
    assert training.main(argv) == 0
    content = json.loads(card.read_text())
    assert [(r["n_groups"], r["method"]) for r in content["runs"]] == [
        (3, "spots_cnn"), (3, "shaped_msdn")]  # fmt: skip
    assert content["commands"][0].startswith("python -m crystal_course.training zone-axis")
    assert content["paper_top1"]["72"] == 0.8012
    assert "cubic" in content["runs"][0]["system_confusion"]["index"]
    before = card.read_text()
    assert training.main(argv) == 0  # everything in the card: nothing retrained
    assert card.read_text() == before


def test_chapter_6_plots(tiny_zone_axis):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _, result = training.zone_axis_experiment(tiny_zone_axis, "spots_cnn", epochs=1)
    ax = training.plot_top_k({"spots": result})
    assert ax.get_xlabel().startswith("k") and len(ax.lines) == 1
    ax = training.plot_vacancy_robustness({"spots": result})
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [0, 20])
    mean = result.probabilities["test_pristine"][:2]
    axes = training.plot_mc_dropout(mean, np.zeros_like(mean), result.space_groups, [0, 1])
    assert len(axes) == 2 and "probability" in axes[0].get_ylabel()
    with pytest.raises(ValueError, match="mean and std"):
        training.plot_mc_dropout(mean, mean[:1, :2], result.space_groups)
    plt.close("all")


def test_zone_axis_settings_per_mode(monkeypatch):
    from crystal_course import config

    monkeypatch.setenv("CRYSTAL_COURSE_MODE", "quick")
    quick = config.zone_axis_settings()
    monkeypatch.setenv("CRYSTAL_COURSE_MODE", "full")
    full = config.zone_axis_settings()
    assert set(quick.sets) < set(full.sets) == set(structures.SPACE_GROUP_SETS)
    assert quick.n_pixels < full.n_pixels and full.mc_passes == 500
    assert all(n in structures.SPACE_GROUP_SETS for n in quick.sets)


def test_shipped_zone_axis_card():
    card = training.zone_axis_card()
    assert card["commands"] and card["mode"] == "full"
    runs = {(r["n_groups"], r["method"]) for r in card["runs"]}
    assert {(20, "spots_cnn"), (20, "shaped_msdn"), (20, "shaped_cnn")} <= runs
    assert {(8, "spots_cnn"), (8, "shaped_msdn")} <= runs
    for run in card["runs"]:
        assert 0 <= run["top_k"]["1"] <= run["top_k"]["5"] <= 1


def test_msdn_table_accounts_for_every_parameter():
    model = models.msdn((32, 32, 1), 5, blocks=(2, 3), growth=8, stem_filters=8)
    table = models.msdn_table(model)
    assert int(table["parameters"].sum()) == model.count_params()
    assert list(table.index) == ["stem", "dense block 1 (2 layers)", "transition 1",
                                 "dense block 2 (3 layers)", "global average pooling",
                                 "3 linear heads"]  # fmt: skip
    assert table.loc["dense block 1 (2 layers)", "output (h, w, channels)"] == (8, 8, 8 + 2 * 8)
    with pytest.raises(ValueError, match="expected an msdn"):
        models.msdn_table(models.ziletti_cnn((32, 32, 3), 5))


def test_zone_axis_dataset_command_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(structures.SPACE_GROUP_SETS, 2, (221, 229))
    path = tmp_path / "cli"
    argv = ["zone-axis", str(path), "--groups", "2", "--n-per-group", "1", "--n-test-per-group",
            "1", "--n-pixels", "32", "--n-jobs", "1", "--no-progress"]  # fmt: skip
    assert dataset.main(argv) == 0
    assert "test_vacancies_0.2" in capsys.readouterr().out
    train = dataset.load(path, "train")
    assert train.x.shape == (2, 32, 32, 3)
    assert train.manifest["parameters"]["space_groups"] == [221, 229]
