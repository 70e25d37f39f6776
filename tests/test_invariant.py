"""Orientation-free descriptors: SOAP from dscribe on rescaled, one-species clusters."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from scipy.spatial.transform import Rotation

from crystal_course import invariant, structures, zone_axis


@pytest.fixture(scope="module")
def clusters():
    crystals = {"fcc": bulk("Cu", "fcc", a=3.6, cubic=True),
                "bcc": bulk("Fe", "bcc", a=2.87, cubic=True),
                "big fcc": bulk("Pb", "fcc", a=4.95, cubic=True)}  # fmt: skip
    return {name: zone_axis.spherical_cluster(c, 150) for name, c in crystals.items()}


def test_rescaled_clusters_have_unit_nearest_neighbours(clusters):
    fcc = clusters["fcc"]
    unit = invariant.rescaled(fcc)
    assert structures.nearest_neighbour_distance(unit) == pytest.approx(1.0)
    np.testing.assert_allclose(unit.positions * 3.6 / np.sqrt(2), fcc.positions)
    assert set(unit.numbers) == {1} and not unit.pbc.any()
    assert set(invariant.rescaled(fcc, one_species=False).numbers) == {29}


def test_soap_sees_structure_not_orientation_element_or_size(clusters):
    features = invariant.soap(list(clusters.values()))
    assert features.shape[0] == 3 and np.isfinite(features).all()
    turned = clusters["fcc"].copy()
    turned.positions = Rotation.random(random_state=1).apply(turned.positions) - 3.0
    np.testing.assert_allclose(invariant.soap(turned)[0], features[0], rtol=1e-9, atol=1e-12)
    # Cu and Pb are both fcc: after rescaling, the same descriptor; bcc differs
    np.testing.assert_allclose(features[2], features[0], rtol=1e-9, atol=1e-12)
    assert np.abs(features[1] - features[0]).max() > 1e-3 * np.abs(features[0]).max()


def test_bad_input_is_named(clusters):
    with pytest.raises(TypeError, match="ase.Atoms"):
        invariant.rescaled(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="at least 2"):
        invariant.soap(Atoms("Cu"))
    with pytest.raises(ValueError, match="coincident"):
        invariant.rescaled(Atoms("Cu2", positions=np.zeros((2, 3))))
    with pytest.raises(ValueError, match="at least one"):
        invariant.soap([])
    with pytest.raises(ValueError, match="n_max"):
        invariant.SoapSettings(n_max=0)
    with pytest.raises(ValueError, match="r_cut"):
        invariant.SoapSettings(r_cut=0.5)


def test_dataset_holds_three_descriptors_of_the_same_crystals(tmp_path):
    from crystal_course import dataset

    config = invariant.Config(2, 1, n_q=64, n_atoms=120)
    assert config.splits == ("train", "train_damaged", "test_pristine", "test_standard",
                             "test_vacancies_0.25", "test_displacements_0.02")  # fmt: skip
    assert "train_damaged" not in invariant.Config(2, 1, train_damage=(0, 0)).splits
    path = invariant.generate(tmp_path / "inv", config, n_jobs=1, progress=False)
    train = dataset.load(path, "train")
    assert train.x.shape == (14, 64) and train.meta["soap"].shape[0] == 14
    assert train.meta["fingerprint"].shape == (14, 64, 64, 3)
    assert np.isclose(train.x.max(axis=1), 1).all()  # each pattern scaled to its maximum
    rotated, standard = dataset.load(path, "test_pristine"), dataset.load(path, "test_standard")
    assert np.array_equal(rotated.meta["parent"], standard.meta["parent"])
    assert np.array_equal(rotated.y, standard.y)
    damaged = dataset.load(path, "train_damaged")
    assert np.array_equal(damaged.meta["parent"], train.meta["parent"])
    assert (damaged.meta["n_atoms"] <= train.meta["n_atoms"]).all()  # vacancies only remove
    assert train.manifest["kind"] == "invariant"
    before = sorted((p.name, p.stat().st_mtime_ns) for p in path.iterdir())
    invariant.generate(path, config, n_jobs=1, progress=False)  # complete: left untouched
    assert sorted((p.name, p.stat().st_mtime_ns) for p in path.iterdir()) == before
    with pytest.raises(ValueError, match="n_q"):
        invariant.Config(2, 1, n_q=4)
    with pytest.raises(ValueError, match="n_test_per_class"):
        invariant.Config(2, 0)
    with pytest.raises(ValueError, match="train_damage"):
        invariant.Config(2, 1, train_damage=(1.5, 0))


def test_cluster_of_cuts_what_the_classifiers_were_trained_on():
    cell = bulk("Cu", "fcc", a=3.6, cubic=True)
    small = invariant.cluster_of(cell, 250)
    assert 150 <= len(small) <= 400 and not small.pbc.any() and small.cell.rank == 0
    block = cell.repeat((10, 10, 10))
    big = Atoms(numbers=block.numbers, positions=block.positions)  # finite: 4,000 atoms
    cut = invariant.cluster_of(big, 250)
    assert len(cut) == 250
    centre = big.positions.mean(axis=0)
    kept = np.linalg.norm(cut.positions - centre, axis=1)
    distance = np.linalg.norm(big.positions - centre, axis=1)
    left_out = ~(np.abs(big.positions[:, None] - cut.positions[None]).max(axis=2) < 1e-9).any(1)
    assert distance[left_out].min() >= kept.max() - 1e-9  # nothing nearer was left out
    cut_out = zone_axis.spherical_cluster(cell, 150)
    particle = Atoms(numbers=cut_out.numbers, positions=cut_out.positions)  # no cell
    whole = invariant.cluster_of(particle, 250)  # a finite cluster of this size stays whole
    np.testing.assert_array_equal(whole.positions, particle.positions)


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    config = invariant.Config(6, 1, n_q=64, n_atoms=120)
    return invariant.generate(tmp_path_factory.mktemp("inv") / "d", config, n_jobs=1,
                              progress=False)  # fmt: skip


@pytest.mark.parametrize("name", invariant.CLASSIFIERS)
def test_training_validates_on_held_out_parents_and_records_the_unknown_threshold(
    small_dataset, name, tmp_path
):
    from crystal_course import dataset, models, training

    model, card = invariant.train_classifier(small_dataset, name, epochs=2, seed=0)
    held = invariant.validation_parents(6, 0)
    assert len(held) == 1
    # one held-out parent per class with its damaged copy validates: 2 x 7; 2 x 7 x 5 fitted
    assert card["dataset"]["n_validation"] == 14 and card["dataset"]["n_fit"] == 70
    threshold = card["unknown"]["threshold"]
    assert 0 <= threshold <= np.log(7) + 1e-6
    assert set(card["test_accuracy"]) == {
        "test_pristine",
        "test_standard",
        "test_vacancies_0.25",
        "test_displacements_0.02",
    }
    assert len(card["history"]["loss"]) == 2
    path = training.save_model(model, tmp_path / f"{name}.weights.h5", card)
    again = models.load(path)  # rebuilt from the card, self-check passed
    x = invariant.split_input(name, dataset.load(small_dataset, "test_pristine"))
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-4, atol=1e-6)  # fmt: skip


def test_training_refuses_too_few_parents_and_unknown_classifiers(tmp_path):
    path = invariant.generate(tmp_path / "d", invariant.Config(2, 1, n_q=64, n_atoms=60),
                              n_jobs=1, progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="at least 6 are needed"):
        invariant.train_classifier(path, "soap_network", epochs=1)
    with pytest.raises(ValueError, match="powder_cnn, soap_network"):
        invariant.train_classifier(path, "mlp", epochs=1)


def test_pattern_is_the_datasets_input():
    cell = bulk("Cu", "fcc", a=3.6, cubic=True)
    cluster = invariant.cluster_of(cell, 120)
    q = invariant.q_points(64)
    assert q[0] == invariant.Q_RANGE[0] and q[-1] == invariant.Q_RANGE[1]
    first = invariant.pattern(cluster, 64)
    assert first.shape == (64,) and first.max() == pytest.approx(1.0)
    # in nearest-neighbour units the fcc (111) peak sits at 2 pi sqrt(3/2) = 7.70 whatever a
    peak = q[np.argmax(first[q > 5]) + np.argmax(q > 5)]
    assert abs(peak - 2 * np.pi * np.sqrt(1.5)) < 0.5
    bigger = cell.copy()
    bigger.set_cell(cell.cell * 1.2, scale_atoms=True)
    np.testing.assert_allclose(invariant.pattern(invariant.cluster_of(bigger, 120), 64), first,
                               atol=0.05)  # fmt: skip


def test_the_2018_threshold_is_chosen_on_the_same_validation_crystals(small_dataset, tmp_path):
    import json

    from crystal_course import models

    entry = invariant.fingerprint_threshold(small_dataset, seed=0)
    assert entry["n_validation"] == 7 and entry["passes"] == invariant.MC_PASSES
    assert 0 <= entry["threshold"] <= np.log(7) + 1e-6
    # the crystals are those of the dataset, in the 2018 pipeline's standard orientation
    config = invariant.Config(6, 1, n_q=64, n_atoms=120)
    held = int(invariant.validation_parents(6, 0)[0])
    atoms, group = invariant.crystal(config, 0, held, standardise=True)
    turned, same = invariant.crystal(config, 0, held)
    assert same == group == 139 and len(turned) == len(atoms)  # class 0 is bct (139)
    # the command line writes the entry into a copy of the card, the rest left as it was
    folder = tmp_path / "models"
    folder.mkdir()
    source = models.card_path(models._pretrained_path("ziletti_cnn"))
    (folder / "ziletti_cnn.json").write_text(source.read_text())
    (folder / "ziletti_cnn.weights.h5").write_bytes(
        source.with_name("ziletti_cnn.weights.h5").read_bytes()
    )
    assert invariant.main(["threshold", str(small_dataset), "--card",
                           str(folder / "ziletti_cnn.json")]) == 0  # fmt: skip
    card = json.loads((folder / "ziletti_cnn.json").read_text())
    assert card["unknown"]["threshold"] == pytest.approx(entry["threshold"], rel=1e-6)
    assert card["self_check"] == json.loads(source.read_text())["self_check"]


def test_the_command_line_answers_bad_input_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        invariant.main(["train", str(tmp_path / "none"), "--classifier", "soap_network",
                        "--out", str(tmp_path / "models")])  # fmt: skip
    assert stop.value.code == 2
    assert "none" in capsys.readouterr().err.strip().splitlines()[-1]


def test_a_primitive_cell_and_a_conventional_one_give_the_same_kind_of_cluster():
    primitive = invariant.cluster_of(bulk("Fe", "bcc", a=2.87), 250)  # one atom per cell
    conventional = invariant.cluster_of(bulk("Fe", "bcc", a=2.87, cubic=True), 250)
    fcc = invariant.cluster_of(bulk("Cu", "fcc", a=3.61), 250)
    assert 150 <= len(primitive) <= 400
    box = bulk("Fe", "bcc", a=2.87, cubic=True).repeat(5)  # 250 atoms, as a dataset draws
    from_box = invariant.cluster_of(box, 250)  # a whole sphere, not one clipped by the box
    assert abs(len(from_box) - len(conventional)) <= 0.1 * len(conventional)
    radius = [np.linalg.norm(c.positions - c.positions.mean(axis=0), axis=1).max()
              for c in (from_box, conventional)]  # fmt: skip
    assert radius[0] == pytest.approx(radius[1], rel=0.1)
    a, b, c = invariant.soap([primitive, conventional, fcc])
    assert np.abs(a - b).max() < 0.2 * np.abs(a - c).max()
    with pytest.raises(ValueError, match="at least 2"):
        invariant.cluster_of(Atoms("Fe", positions=[[0, 0, 0]]), 250)


def test_a_saved_model_is_replaced_only_when_asked(tmp_path, capsys):
    (tmp_path / "soap_network.weights.h5").write_bytes(b"trained before")
    with pytest.raises(SystemExit) as stop:
        invariant.main(["train", str(tmp_path / "none"), "--classifier", "soap_network",
                        "--out", str(tmp_path)])  # fmt: skip
    assert stop.value.code == 2 and "--overwrite" in capsys.readouterr().err
    assert (tmp_path / "soap_network.weights.h5").read_bytes() == b"trained before"


@pytest.fixture(scope="module")
def group_dataset(tmp_path_factory):
    config = invariant.GroupConfig((221, 194, 12), 12, 2, vacancies=(0.2,), n_atoms=150, n_q=64)
    return invariant.generate_groups(tmp_path_factory.mktemp("groups") / "g", config, n_jobs=1,
                                     progress=False)  # fmt: skip


def test_group_patterns_are_of_the_zone_axis_datasets_crystallites(group_dataset):
    from crystal_course import dataset, powder, zone_axis

    manifest = dataset.verify(group_dataset, kind="powder_groups")
    config = invariant.GroupConfig(**manifest["parameters"])
    assert config.splits == ("train", "test_pristine", "test_vacancies_0.2")
    test = dataset.load(group_dataset, "test_pristine")
    assert test.x.shape == (6, 64) and test.y.tolist() == [0, 0, 1, 1, 2, 2]
    assert test.class_names == ("221 (cubic)", "194 (hexagonal)", "12 (monoclinic)")
    crystal = zone_axis.crystallite(config.zone_axis(), "test_pristine", 1, 13)
    np.testing.assert_allclose(test.x[3], powder.powder_pattern(crystal, config.q()), rtol=1e-5)
    assert invariant.GroupConfig.like({**manifest["parameters"], "zone_axes": "distinct"},
                                      n_q=64) == config  # fmt: skip
    with pytest.raises(ValueError, match="lack space_groups"):
        invariant.GroupConfig.like({"n_per_group": 3})
    with pytest.raises(ValueError, match="n_q must be"):
        invariant.GroupConfig((221, 194), 2, 1, n_q=4)


def test_group_card_pairs_with_chapter_7_and_resumes(group_dataset, tmp_path):
    import json

    from crystal_course import reproduction, uncertainty

    card_path = tmp_path / "card.json"
    card = invariant.group_card(
        group_dataset,
        card_path,
        seeds=(0,),
        epochs=1,
        progress=False,
        unknown_per_group=2,
        passes=3,
    )
    (run,) = card["runs"]
    assert (run["inputs"], run["model"], run["n_groups"], run["seed"]) == (
        "powder",
        "powder_cnn",
        3,
        0,
    )
    assert run["y"]["test_pristine"] == [0, 0, 1, 1, 2, 2] and run["n_train"] == 36
    assert set(run["predicted"]) == {"test_pristine", "test_vacancies_0.2"}
    unknown = run["unknown"]
    assert set(unknown["groups"]) == {str(g) for g in invariant.UNKNOWN_GROUPS}
    assert len(unknown["validation"]) == 4 and len(unknown["test_pristine"]) == 6
    summary = uncertainty.unknown_summary(unknown["test_pristine"], unknown["groups"],
                                          unknown["threshold"])  # fmt: skip
    assert 0 <= summary["all"][0] <= 1 and summary["missed"].n == 3 * 2
    correct = reproduction.card_correct(card, "powder", "powder_cnn", n_groups=3)
    assert correct.shape == (1, 6)
    before = card_path.read_bytes()
    invariant.group_card(group_dataset, card_path, seeds=(0,), epochs=1, progress=False)
    assert card_path.read_bytes() == before  # the seed is in the card: nothing retrained
    other = json.loads(before)
    other["dataset"]["seed"] = 5
    card_path.write_text(json.dumps(other))
    with pytest.raises(ValueError, match="another dataset"):
        invariant.group_card(group_dataset, card_path, seeds=(1,), epochs=1, progress=False)


def test_the_shipped_group_card_holds_chapter_7s_test_crystals():
    from crystal_course import reproduction

    card = invariant.read_group_card()
    study = reproduction.card(reproduction.STUDY_CARD)
    spots = [r for r in study["runs"] if (r["n_groups"], r["inputs"]) == (20, "spots")]
    assert sorted(r["seed"] for r in card["runs"]) == [0, 1, 2]
    for run in card["runs"]:
        assert run["y"] == spots[0]["y"]  # the same crystals, row for row, split by split
    parameters = {k: v for k, v in card["dataset"].items() if k not in ("name", "format", "n_q")}
    assert all(study["dataset"][k] == v for k, v in parameters.items())
    with pytest.raises(ValueError, match="expected one of the shipped cards"):
        invariant.read_group_card("zone_axis_400.json")
