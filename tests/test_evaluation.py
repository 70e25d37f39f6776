"""The evaluation of Chapter 3: baselines, contests against spglib, test sets inside
and outside the training distribution."""

from __future__ import annotations

import numpy as np
import pytest

from crystal_course import evaluation, models
from crystal_course.models import ziletti_cnn


def test_pixel_baselines_score_every_split():
    rng = np.random.default_rng(0)
    centres = rng.random((3, 8, 8, 3)).astype(np.float32)
    y = np.repeat(np.arange(3), 10)
    x = centres[y] + 0.05 * rng.standard_normal((30, 8, 8, 3)).astype(np.float32)
    noise = rng.random((30, 8, 8, 3)).astype(np.float32)
    results = evaluation.pixel_baselines(x, y, {"same": (x, y), "noise": (noise, y)}, seed=0)
    assert set(results) == set(evaluation.PIXEL_BASELINES)
    for method in results.values():
        assert method["same"].value == 1.0  # well-separated classes: trivially right
        assert method["noise"].n == 30 and method["noise"].value < 0.7
    with pytest.raises(ValueError, match="x_train"):
        evaluation.pixel_baselines(x.reshape(30, -1), y, {})


def test_defect_sweep_damages_the_same_structures_as_identification_rates():
    from crystal_course.structures import identification_rates, sample_classes

    fresh, labels = sample_classes(1, seed=4, n_atoms=60)
    assert len(fresh) == 7 and labels.tolist() == list(range(7))
    model = models.load_pretrained()
    levels = [0.0, 0.3]
    sweep = evaluation.defect_sweep(
        fresh, "vacancies", levels, {"shipped": model}, seed=3, n_jobs=2, progress=False
    )
    rates = identification_rates(fresh, "vacancies", levels, seed=3, n_jobs=1, progress=False)
    np.testing.assert_array_equal(sweep.spglib, rates)  # same damage, same verdicts
    np.testing.assert_array_equal(sweep.spglib[:, 0], 1.0)
    assert sweep.models["shipped"].shape == (2,) and sweep.models["shipped"][0] == 1.0
    assert sweep.n_structures == 7 and sweep.levels == (0.0, 0.3)
    # Crystal by crystal, for paired tests: the per-level means are their averages.
    assert sweep.spglib_right.shape == (2, 2, 7) and sweep.spglib_right.dtype == bool
    np.testing.assert_array_equal(sweep.spglib_right.mean(axis=2), sweep.spglib)
    assert sweep.models_right["shipped"].shape == (2, 7)
    np.testing.assert_array_equal(sweep.models_right["shipped"].mean(axis=1),
                                  sweep.models["shipped"])  # fmt: skip
    with pytest.raises(ValueError, match="defect"):
        evaluation.defect_sweep(fresh, "strain", levels, {"m": model}, progress=False)
    with pytest.raises(TypeError, match="dict"):
        evaluation.defect_sweep(fresh, "vacancies", levels, model, progress=False)
    with pytest.raises(ValueError, match="outputs"):
        evaluation.defect_sweep(fresh, "vacancies", levels, {"m": ziletti_cnn(n_classes=2)})


def test_practical_sweep_scores_cnn_and_spglib_on_the_same_labels():
    from ase.build import bulk

    from crystal_course.structures import (
        class_index,
        damage,
        practitioner_view,
        sample_classes,
        spglib_class,
    )

    assert spglib_class(bulk("Mg")) == class_index(194)
    assert spglib_class(bulk("Bi")) == class_index(166) == class_index(194)  # merged class
    fresh, _ = sample_classes(1, seed=4, n_atoms=60, skew=True)
    holed = damage(fresh[0], "vacancies", 0.3, 0)
    assert spglib_class(holed) == -1  # no group of the eight: wrong for every label
    view = practitioner_view(holed, 1)  # no symmetry left: the damaged crystal, reoriented
    assert len(view) == len(holed) and view.info["space_group"] == fresh[0].info["space_group"]
    pristine = practitioner_view(fresh[0], 1, n_atoms=60)  # symmetry found: rebuilt
    assert 40 <= len(pristine) <= 120
    model = models.load_pretrained()
    sweep = evaluation.practical_sweep(
        fresh, "vacancies", [0.0, 0.3], {"shipped": model}, seed=3, n_jobs=2, progress=False
    )
    assert sweep.symprecs == (0.1,) and sweep.spglib.shape == (1, 2)
    assert sweep.spglib[0, 0] == 1.0 and sweep.spglib[0, 1] == 0.0
    assert sweep.models["shipped"][0] >= 6 / 7  # pristine, re-standardised: as in training
    assert sweep.spglib_right.shape == (1, 2, 7)
    np.testing.assert_array_equal(sweep.spglib_right.mean(axis=2), sweep.spglib)
    np.testing.assert_array_equal(sweep.models_right["shipped"].mean(axis=1),
                                  sweep.models["shipped"])  # fmt: skip
    # Neither the skewed box nor the cell spglib returns where it fails lies along a
    # low-index direction of the lattice.
    assert sweep.edge_angles.shape == (2, 7) and (sweep.edge_angles > 10).all()
    # Pristine, spglib finds the lattice of every crystal; 30 % vacancies lose it.
    assert sweep.lattice_found[0].all() and not sweep.lattice_found[1].any()
    with pytest.raises(ValueError, match="defect"):
        evaluation.practical_sweep(fresh, "strain", [0.1], {"m": model}, progress=False)


def test_practical_item_measures_no_angle_for_a_box_it_cannot_relate_to_the_lattice():
    from crystal_course.structures import sample_classes

    aligned, _ = sample_classes(1, seed=4, n_atoms=60)
    image, (found, lattice, angle) = evaluation.practical_item(
        aligned[0], "vacancies", 0.0, (0, 0, 0), 0.1
    )
    assert image.shape == (64, 64, 3) and found == 0 and lattice and np.isnan(angle)


def test_out_of_distribution_cases_have_the_group_crystallography_gives_them():
    from crystal_course.structures import nearest_neighbour_distance, supercell

    for case in evaluation.OUT_OF_DISTRIBUTION:
        cell = evaluation.case_cell(case)  # spglib confirms the space group
        assert cell.info["space_group"] == case.space_group and case.family in evaluation.FAMILIES
        assert nearest_neighbour_distance(supercell(cell, 64)) > 1.0  # no overlapping atoms
    names = {case.name for case in evaluation.OUT_OF_DISTRIBUTION}
    assert {"rocksalt NaCl", "B2 CsCl", "L1_2 Cu3Au", "alpha-U (Cmcm)"} <= names
    # One species on the B2 sites is bcc: spglib finds 229, and the case is refused.
    same = evaluation.Case("wrong", evaluation.FAMILIES[0], 221, 229, ("Fe", "Fe"),
                           ((0, 0, 0), (0.5, 0.5, 0.5)), (2.87,) * 3 + (90, 90, 90))  # fmt: skip
    with pytest.raises(RuntimeError, match="spglib finds 229"):
        evaluation.case_cell(same)


def test_out_of_distribution_test_reports_every_case():
    table = evaluation.out_of_distribution_test(models.load_pretrained(), per_case=1,
                                                progress=False)  # fmt: skip
    assert len(table) == len(evaluation.OUT_OF_DISTRIBUTION)
    n = len(evaluation.REAL_ELEMENT_CONDITIONS)
    assert (table["n"] == n).all()
    assert all(sum(a.values()) == n for a in table["answers"])
    unknown = table[table["family"] == evaluation.FAMILIES[2]]
    assert unknown["accuracy"].isna().all()  # no class is right for a group the CNN lacks
    known = table[table["family"] != evaluation.FAMILIES[2]]
    assert all(a.n == n for a in known["accuracy"])
    assert evaluation.what_it_keys_on(table) in evaluation.KEYS
    with pytest.raises(ValueError, match="per_case"):
        evaluation.out_of_distribution_test(models.load_pretrained(), per_case=0)


def test_what_it_keys_on_follows_the_majority_of_compounds():
    import pandas as pd

    compound = evaluation.FAMILIES[0]
    rows = [("rocksalt", 225, "sc (221)"), ("B2", 221, "bcc (229)"), ("L1_2", 221, "fcc (225)")]

    def table(answers):
        columns = ["case", "space group", "looks like", "most common"]
        found = [(*row, a) for row, a in zip(rows, answers, strict=True)]
        frame = pd.DataFrame(found, columns=columns)
        return frame.assign(family=compound)

    assert evaluation.what_it_keys_on(table(["sc (221)", "bcc (229)", "fcc (225)"])) == (
        "the lattice look"
    )
    assert evaluation.what_it_keys_on(table(["fcc (225)", "sc (221)", "sc (221)"])) == (
        "the space group"
    )
    assert evaluation.what_it_keys_on(table(["fcc (225)", "bcc (229)", "bct (139)"])) == "neither"
    assert evaluation.keys_sentence(table(["sc (221)", "sc (221)", "fcc (225)"])) == (
        "the lattice look: for 2 of the 3 compounds the most common answer is the class of "
        "the lattice their atoms form, for 1 the class of their space group"
    )
    strained = table(["sc (221)", "bcc (229)", "fcc (225)"]).assign(family=evaluation.FAMILIES[1])
    with pytest.raises(ValueError, match="no 'compound"):
        evaluation.what_it_keys_on(strained)


def test_real_element_test_reports_every_class_and_condition():
    from crystal_course.structures import CLASSES

    table = evaluation.real_element_test(models.load_pretrained(), per_element=1, progress=False)
    assert len(table) == len(CLASSES) * len(evaluation.REAL_ELEMENT_CONDITIONS)
    assert set(table["class"]) == set(CLASSES)
    pristine = table[table.condition == "pristine"].set_index("class")
    for cubic in ("fcc (225)", "bcc (229)"):  # one geometry each: the shipped model is sure
        assert pristine.loc[cubic, "accuracy"].value == 1.0
    assert (
        pristine.loc["fcc (225)", "accuracy"].n
        == pristine.loc["fcc (225)", "elements"].count(",") + 1
    )
    with pytest.raises(ValueError, match="per_element"):
        evaluation.real_element_test(models.load_pretrained(), per_element=0)


def test_plot_sweep_labels_its_axes_and_bands_every_curve():
    import matplotlib

    matplotlib.use("Agg")
    sweep = evaluation.SweepResult(
        "displacements",
        (0.0, 0.01),
        (1e-3, 0.1),
        np.array([[1, 0], [1, 0.5]]),
        {"cnn": np.array([1.0, 1.0])},
        4,
    )
    ax = evaluation.plot_sweep(sweep)
    assert "NN" in ax.get_xlabel() and len(ax.get_lines()) == 3
    assert len(ax.collections) == 3  # a Wilson band per curve


def test_contest_table_gives_each_level_a_paired_difference():
    right = {"cnn": np.array([[1, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 0, 1]], bool)}
    spglib = np.array([[[1, 1, 1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0, 0, 0]]], bool)
    means = {"cnn": right["cnn"].mean(axis=1)}
    sweep = evaluation.SweepResult(
        "vacancies", (0.0, 0.2), (0.1,), spglib.mean(axis=2), means, 8, right, spglib
    )
    table = evaluation.contest_table(sweep, "cnn")
    assert table["level (%)"].tolist() == [0.0, 20.0]
    assert table["difference"].tolist() == [0.0, 87.5]
    assert table["apart"].tolist() == [False, True]  # 7 discordant crystals, all for the CNN
    assert table.loc[1, "cnn"].correct == 7 and table.loc[1, "spglib, 0.1 Å"].correct == 0
    assert table.loc[1, "low"] <= 87.5 <= table.loc[1, "high"]
    with pytest.raises(ValueError, match="one of"):
        evaluation.contest_table(sweep, "other")
    with pytest.raises(TypeError, match="per-crystal"):
        evaluation.contest_table(
            evaluation.SweepResult("vacancies", (0.0,), (0.1,), spglib[:, :1].mean(axis=2), {}, 8),
            "cnn",
        )


def test_invariant_contest_scores_every_classifier_on_the_same_crystals(tmp_path):
    import json

    from crystal_course import invariant

    config = invariant.Config(1, 2, n_atoms=120, train_damage=(0, 0))
    path = invariant.generate(tmp_path / "d", config, n_jobs=1, progress=False)
    card = evaluation.contest_card(path, passes=3, per_case=1)
    contest = evaluation.contest_from_card(json.loads(json.dumps(card)))  # as read back
    assert card["thresholds"]["soap_network"] > 0
    for key in ("unknown_entropy", "unknown_information"):
        unknown = card[key]
        assert set(unknown["soap_network"]) == set(evaluation.UNKNOWN_CASES)
        # no cell, no answer from the 2018 pipeline
        assert set(unknown["ziletti_cnn"]) == set(evaluation.UNKNOWN_CASES[:2])
    assert contest.splits == ("test_pristine", "test_standard", "test_vacancies_0.25",
                              "test_displacements_0.02")  # fmt: skip
    for (name, split), right in contest.correct.items():
        assert right.shape == (14,) and right.dtype == bool
        h = contest.entropy[name, split]
        assert h.shape == (14,) and (h >= 0).all() and (h <= np.log(7) + 1e-6).all()
        information = contest.information[name, split]  # a part of the entropy
        assert information.shape == (14,) and (information >= -1e-6).all()
        assert (information <= h + 1e-3).all()
    # the orientation-free classifiers see the same pattern in both orientations
    for name in ("powder_cnn", "soap_network"):
        np.testing.assert_allclose(
            contest.entropy[name, "test_standard"],
            contest.entropy[name, "test_pristine"],
            atol=0.05,
        )
        test = contest.orientation_test(name)
        assert test.n == 14 and not test.apart()
    # the 2018 pipeline standardises first; without it the fingerprint is of a rotated crystal
    assert contest.accuracy("ziletti_cnn", "test_standard").value >= 12 / 14
    table = contest.table()
    assert list(table.index) == list(evaluation.CONTEST_CLASSIFIERS)
    assert list(table.columns) == list(contest.splits)
    assert table.loc["soap_network", "test_standard"].count("[") == 1
    versus = contest.versus("soap_network", "ziletti_cnn", "test_pristine")
    assert versus.n == 14
    with pytest.raises(ValueError, match="among powder_cnn"):
        evaluation.invariant_contest(path, classifiers={"mlp": None})


def test_unknown_crystals_are_outside_every_class():
    from crystal_course import structures

    found = evaluation.unknown_crystals(2, seed=0, n_atoms=120)
    assert [name for name, _ in found] == [n for n in evaluation.UNKNOWN_CASES for _ in "ab"]
    for name, atoms in found:
        if name.startswith("liquid"):
            assert not atoms.pbc.any() and len(atoms) == 120
            distances = atoms.get_all_distances()[np.triu_indices(120, 1)]
            assert distances.min() >= 0.75 * 2.55 - 1e-9
        else:  # a rotated periodic cell: spglib still finds the group
            assert atoms.pbc.all() and 60 <= len(atoms) <= 240
            group = structures.space_group(atoms)
            assert group == {"alpha-U (Cmcm)": 63, "A15 Cr3Si (Pm-3n)": 223}[name]
    first, again = evaluation.unknown_crystals(1, seed=3), evaluation.unknown_crystals(1, seed=3)
    np.testing.assert_array_equal(first[2][1].positions, again[2][1].positions)
    with pytest.raises(ValueError, match="per_case"):
        evaluation.unknown_crystals(0)


def test_the_contest_command_answers_bad_input_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        evaluation.main(["invariant-contest", str(tmp_path / "none"), "--card",
                         str(tmp_path / "card.json")])  # fmt: skip
    assert stop.value.code == 2
    assert "none" in capsys.readouterr().err.strip().splitlines()[-1]
    assert not (tmp_path / "card.json").exists()


def test_the_unknown_table_reads_the_shipped_card():
    from crystal_course import uncertainty

    card = evaluation.read_contest_card()
    assert evaluation.in_class_splits(card, "ziletti_cnn") == ("test_standard",)
    assert "test_standard" not in evaluation.in_class_splits(card, "powder_cnn")
    table = evaluation.unknown_table(card)
    assert list(table.index) == list(evaluation.CONTEST_CLASSIFIERS)
    row = table.attrs["rows"]["soap_network"]
    inside = np.concatenate(
        [
            card["entropy"]["soap_network"][s]
            for s in evaluation.in_class_splits(card, "soap_network")
        ]
    )
    alpha_u = card["unknown_entropy"]["soap_network"]["alpha-U (Cmcm)"]
    assert row["alpha-U (Cmcm)"] == uncertainty.auroc(inside, alpha_u)
    flagged = int((inside > card["thresholds"]["soap_network"]).sum())
    assert row["false unknown"].correct == flagged and row["false unknown"].n == len(inside)
    assert table.loc["powder_cnn", "AUROC all"].count("[") == 1
    # the liquid-like cluster has no cell: the 2018 pipeline gives it no score
    assert "liquid-like Cu" not in table.attrs["rows"]["ziletti_cnn"]
    rates = evaluation.flag_rates(card, "powder_cnn")
    assert list(rates.index) == list(evaluation.in_class_splits(card, "powder_cnn"))
    flagged_all = table.attrs["rows"]["powder_cnn"]["false unknown"]
    assert sum(r.correct for r in rates) == flagged_all.correct
    with pytest.raises(ValueError, match="score must be one of"):
        evaluation.unknown_table(card, "variance")
    with pytest.raises(ValueError, match="classifier must be one of"):
        evaluation.in_class_splits(card, "mlp")
    with pytest.raises(ValueError, match="expected one of the shipped cards"):
        evaluation.read_contest_card("other.json")
    old = {k: v for k, v in card.items() if k not in ("information", "unknown_information")}
    with pytest.raises(ValueError, match="rerun"):
        evaluation.unknown_table(old, "information")
