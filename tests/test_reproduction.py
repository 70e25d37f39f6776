"""Training the zone-axis classifiers alike, the results card and the verdicts drawn from it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from crystal_course import dataset, models, reproduction, structures, zone_axis
from crystal_course.uncertainty import wilson

TINY_MSDN = {"blocks": (1,), "growth": 4, "stem_filters": 4}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Three cubic groups, 4 training and 2 test crystals each, 32x32."""
    config = zone_axis.Config((221, 225, 229), 4, 2, vacancies=(0.2,), n_pixels=32, n_atoms=150)
    path = tmp_path_factory.mktemp("za") / "tiny"
    return zone_axis.generate(path, config, n_jobs=1, progress=False)


@pytest.mark.parametrize("inputs", sorted(zone_axis.INPUTS))
@pytest.mark.parametrize("model", sorted(zone_axis.MODELS))
def test_experiment_trains_transfers_and_scores_every_split(tiny, inputs, model):
    recipe = reproduction.Recipe(epochs=2, batch_size=4)
    small, first = reproduction.experiment(tiny, inputs, model, (221, 229), recipe, 0,
                                        msdn_size=TINY_MSDN)  # fmt: skip
    network, result = reproduction.experiment(tiny, inputs, model, None, recipe, 0,
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
    recipe = reproduction.Recipe(epochs=1, batch_size=4)
    small, _ = reproduction.experiment(tiny, "shaped", "msdn", (221, 229), recipe,
                                    msdn_size=TINY_MSDN)  # fmt: skip
    zero = reproduction.Recipe(epochs=1, batch_size=4, learning_rate=1e-12, weight_decay=0)
    big, _ = reproduction.experiment(tiny, "shaped", "msdn", None, zero, msdn_size=TINY_MSDN,
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
        reproduction.experiment(tiny, "svm", "cnn")
    with pytest.raises(ValueError, match=r"space groups \[194\] are not in the dataset"):
        reproduction.experiment(tiny, "spots", "cnn", (221, 194))
    other = dataset.generate(tmp_path / "fp", 1, 1, vacancies=(), displacements=(),
                             n_atoms=40, n_jobs=1, progress=False)  # fmt: skip
    with pytest.raises(ValueError, match="not a zone-axis dataset"):
        reproduction.experiment(other, "spots", "cnn")
    with pytest.raises(ValueError, match="epochs"):
        reproduction.Recipe(epochs=0)
    variant = reproduction.Recipe(batch_norm=False, learning_rate=1e-5).variant
    assert variant == "no batch norm, lr 1e-05"
    with pytest.raises(ValueError, match="train_per_group"):
        reproduction.Recipe(train_per_group=0)
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
    recipe = reproduction.Recipe(epochs=1, batch_size=4, train_per_group=2)
    assert recipe.variant == "2 train/group"
    _, result = reproduction.experiment(tiny, "spots", "cnn", recipe=recipe)
    assert result.n_train == 6 and result.summary()["variant"] == "2 train/group"
    assert len(result.y["test_pristine"]) == 6  # the test crystals stay the same


def test_conditional_vacancy_accuracy_counts_only_pristine_hits():
    y = {"test_pristine": [0, 1, 2, 3], "test_vacancies_0.1": [0, 1, 2, 3]}
    predicted = {"test_pristine": [0, 1, 2, 0], "test_vacancies_0.1": [0, 1, 0, 3]}
    result = reproduction.conditional_vacancy_accuracy(predicted, y)
    # Three crystals right when pristine; two of them still right with vacancies.
    # The fourth, wrong when pristine and right with vacancies, does not count.
    assert result == {0.1: wilson(2, 3)}
    with pytest.raises(ValueError, match="in order"):
        reproduction.conditional_vacancy_accuracy(
            predicted, {**y, "test_vacancies_0.1": [3, 2, 1, 0]})  # fmt: skip


def test_command_line_writes_a_card_and_resumes(tiny, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(structures.SPACE_GROUP_SETS, 2, (221, 229))
    monkeypatch.setitem(structures.SPACE_GROUP_SETS, 3, (221, 225, 229))
    monkeypatch.setitem(reproduction.MSDN_SIZES, "quick", TINY_MSDN)
    monkeypatch.setenv("CRYSTAL_COURSE_MODE", "quick")
    card = tmp_path / "card.json"
    argv = ["train", str(tiny), "--card", str(card), "--groups", "3", "--transfer-from", "2",
            "--epochs", "1", "--methods", "spots+cnn", "shaped+msdn"]  # fmt: skip
    assert reproduction.main(argv) == 0
    content = json.loads(card.read_text())
    assert [(r["n_groups"], r["inputs"], r["model"]) for r in content["runs"]] == [
        (2, "spots", "cnn"),
        (3, "spots", "cnn"),
        (2, "shaped", "msdn"),
        (3, "shaped", "msdn"),
    ]
    assert content["runs"][1]["transferred_from"] == 2
    assert content["commands"][0].startswith("python -m crystal_course.reproduction train")
    assert content["paper_top1"]["72"] == 0.8012
    runs = reproduction.card_runs(content, n_groups=3)
    assert len(runs) == 2 and ((runs["low"] <= runs["top1"]) & (runs["top1"] <= runs["high"])).all()
    # every run is in the card: no per-epoch backups are left behind
    assert not any((tmp_path / "card.runs").rglob("*.csv"))
    assert reproduction.run_folder(card, (20, "grey", "msdn", 1, "lr 1e-05")).name == (
        "20-grey-msdn-seed1-lr_1e_05"
    )
    before = card.read_text()
    assert reproduction.main(argv) == 0  # everything in the card: nothing retrained
    assert card.read_text() == before
    other = dict(content, dataset={**content["dataset"], "seed": 99})
    card.write_text(json.dumps(other))
    with pytest.raises(SystemExit) as stop:  # runs of another dataset are never mixed in
        reproduction.main(argv)
    assert stop.value.code == 2 and "another dataset" in capsys.readouterr().err
    card.write_text(before)
    for bad in (["--epochs", "-3"], ["--methods", "pixels+svm"]):
        with pytest.raises(SystemExit) as stop:
            reproduction.main(argv + bad)
        assert stop.value.code == 2
    assert "INPUT+MODEL" in capsys.readouterr().err
    alone = tmp_path / "alone.json"  # one stage, from scratch
    argv = ["train", str(tiny), "--card", str(alone), "--groups", "2", "--no-transfer",
            "--epochs", "1", "--methods", "spots+cnn"]  # fmt: skip
    assert reproduction.main(argv) == 0
    runs = json.loads(alone.read_text())["runs"]
    assert [(r["n_groups"], r["transferred_from"]) for r in runs] == [(2, None)]
    with pytest.raises(SystemExit) as stop:  # two stages need a smaller first set
        reproduction.main(["train", str(tiny), "--card", str(alone), "--groups", "2"])
    assert stop.value.code == 2 and "smaller" in capsys.readouterr().err


def test_chapter_6_plots(tiny):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _, result = reproduction.experiment(tiny, "spots", "cnn", recipe=reproduction.Recipe(epochs=1))
    ax = reproduction.plot_top_k({"spots": result})
    assert ax.get_xlabel().startswith("k") and len(ax.lines) == 1
    kept = reproduction.conditional_vacancy_accuracy(
        {"test_pristine": [0, 1, 1], "test_vacancies_0.2": [0, 1, 0]},
        {"test_pristine": [0, 1, 1], "test_vacancies_0.2": [0, 1, 1]})  # fmt: skip
    ax = reproduction.plot_vacancy_robustness({"spots": kept})
    np.testing.assert_allclose(np.asarray(ax.lines[0].get_xdata(), float), [0, 20])
    np.testing.assert_allclose(np.asarray(ax.lines[0].get_ydata(), float), [100, 200 / 3])
    ax = reproduction.plot_training_size(
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
    axes = reproduction.plot_mc_dropout(mean, np.zeros_like(mean), result.space_groups, [0, 1])
    assert len(axes) == 2 and "probability" in axes[0].get_ylabel()
    with pytest.raises(ValueError, match="mean and std"):
        reproduction.plot_mc_dropout(mean, mean[:1, :2], result.space_groups)
    axes = reproduction.plot_learning_curves({"spots": result.history})
    assert "epoch" in axes[0].get_xlabel() and len(axes[1].lines) == 2
    plt.close("all")


def test_shipped_card_holds_the_comparison():
    card = reproduction.card()
    assert card["mode"] == "full" and card["commands"]
    assert card["dataset"]["n_pixels"] == 64 and card["dataset"]["q_max"] == zone_axis.Q_MAX
    assert card["msdn_size"]["blocks"] == [3, 6, 12, 8]  # four dense blocks, full size
    # made on the cell axes with grey lines (dataset format 2), as Chapter 6 says
    assert (card["dataset"]["format"], card["dataset"]["zone_axes"]) == (2, "cell")
    assert not reproduction.card_correct(card, "shaped", "msdn").size  # not today's shaped input
    for inputs, model in [("spots", "cnn"), ("grey", "msdn")]:
        correct = reproduction.card_correct(card, inputs, model)
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


# Verdicts on synthetic results: what the chapters may say about a card.


def test_learning_trend_measures_the_last_half():
    epochs = np.arange(1, 21)
    rising = reproduction.learning_trend(0.5 + 0.01 * epochs)
    assert rising.epochs == tuple(range(11, 21))
    assert rising.slope == pytest.approx(0.01) and rising.direction == "rising"
    assert rising.low == pytest.approx(0.01) == rising.high  # an exact line: no spread
    noise = np.random.default_rng(0).normal(0, 0.02, 20)
    flat = reproduction.learning_trend(0.8 + noise)
    assert flat.low < 0 < flat.high and flat.direction == "flat"
    # a rise early in training does not count once the curve has levelled off
    levelled = np.minimum(0.1 * epochs, 0.9) + noise / 10
    assert reproduction.learning_trend(levelled).direction == "flat"
    assert reproduction.learning_trend(levelled, fraction=1).direction == "rising"
    assert reproduction.learning_trend(1 - 0.01 * epochs).direction == "falling"
    assert reproduction.learning_trend([0.5, 0.5, 0.5]).slope == 0
    for bad in ([0.1, 0.2], [0.1, np.nan, 0.3], np.ones((3, 3))):
        with pytest.raises(ValueError, match=">= 3 finite values"):
            reproduction.learning_trend(bad)
    with pytest.raises(ValueError, match="fraction"):
        reproduction.learning_trend(epochs, fraction=0)


def synthetic_history(val_loss, val_accuracy, accuracy=None):
    accuracy = accuracy if accuracy is not None else np.full(len(val_loss), 0.99)
    return {"loss": list(np.linspace(2, 0.1, len(val_loss))), "val_loss": list(val_loss),
            "accuracy": list(accuracy), "val_accuracy": list(val_accuracy)}  # fmt: skip


def test_fit_state_names_overfitting_improvement_and_convergence():
    e = np.arange(1, 21)
    wobble = np.random.default_rng(1).normal(0, 0.01, 20)
    overfitted = synthetic_history(1 + 0.05 * e, 0.5 + wobble)  # validation loss climbs
    improving = synthetic_history(2 - 0.05 * e, 0.3 + 0.02 * e)
    converged = synthetic_history(0.4 + wobble, 0.9 + wobble)
    assert reproduction.fit_state(overfitted) == "overfitted"
    assert reproduction.fit_state(improving) == "still improving"
    assert reproduction.fit_state(converged) == "converged"
    assert set(reproduction.FIT_STATES) == {"overfitted", "still improving", "converged"}
    assert reproduction.generalisation_gap(overfitted) == pytest.approx(0.99 - overfitted[
        "val_accuracy"][-1])  # fmt: skip
    with pytest.raises(ValueError, match="val_loss"):
        reproduction.fit_state({"loss": [1, 2, 3]})


def synthetic_card(rates: dict, n: int = 400, seed: int = 0) -> dict:
    """A card whose cells get each test crystal right with the given rate, per seed."""
    rng = np.random.default_rng(seed)
    y = list(rng.integers(0, 20, n))
    runs = []
    for (inputs, model), (rate, seeds) in rates.items():
        for s in range(seeds):
            right = rng.random(n) < rate
            predicted = [t if ok else (t + 1) % 20 for t, ok in zip(y, right, strict=True)]
            runs.append({"n_groups": 20, "inputs": inputs, "model": model, "seed": s,
                         "variant": "", "y": {"test_pristine": y},
                         "predicted": {"test_pristine": predicted}})  # fmt: skip
    return {"runs": runs}


def test_compare_cells_ranks_only_with_three_seeds_and_a_real_gap():
    apart = synthetic_card({("spots", "cnn"): (0.9, 3), ("rgb", "msdn"): (0.6, 3)})
    result = reproduction.compare_cells(apart, ("spots", "cnn"), ("rgb", "msdn"))
    assert result.seeds_a == result.seeds_b == 3 and result.enough_seeds
    assert result.difference == pytest.approx(0.3, abs=0.05) and result.low > 0
    assert result.seed_low > 0 and len(result.p_values) == 3 and result.apart
    assert "spots + CNN is ahead" in result.sentence("spots + CNN", "RGB + MSDN")
    # the same gap with one seed of a cell: shown, but no verdict
    one = synthetic_card({("spots", "cnn"): (0.9, 3), ("rgb", "msdn"): (0.6, 1)})
    single = reproduction.compare_cells(one, ("spots", "cnn"), ("rgb", "msdn"))
    assert single.low > 0 and not single.enough_seeds and not single.apart
    assert "no verdict" in single.sentence("a", "b") and "1 seed)" in single.sentence("a", "b")
    # equal rates: enough seeds, but nothing to rank
    tied = synthetic_card({("spots", "cnn"): (0.7, 3), ("grey", "msdn"): (0.7, 3)})
    same = reproduction.compare_cells(tied, ("spots", "cnn"), ("grey", "msdn"))
    assert same.enough_seeds and not same.apart
    assert "cannot be told apart" in same.sentence("a", "b")
    with pytest.raises(ValueError, match="no run of lines"):
        reproduction.compare_cells(tied, ("spots", "cnn"), ("lines", "cnn"))


def test_compare_cells_refuses_different_test_crystals():
    card = synthetic_card({("spots", "cnn"): (0.9, 1), ("grey", "msdn"): (0.6, 1)})
    card["runs"][1] = {**card["runs"][1], "y": {"test_pristine": card["runs"][1]["y"][
        "test_pristine"][::-1]}}  # fmt: skip
    with pytest.raises(ValueError, match="same crystals"):
        reproduction.compare_cells(card, ("spots", "cnn"), ("grey", "msdn"))


def test_compare_cells_across_two_cards_of_the_same_crystals():
    # one method on two datasets of the same test crystals (e.g. two choices of beams)
    both = synthetic_card({("spots", "cnn"): (0.9, 3), ("grey", "cnn"): (0.6, 3)})
    first = {"runs": [r for r in both["runs"] if r["inputs"] == "spots"]}
    second = {"runs": [dict(r, inputs="spots") for r in both["runs"] if r["inputs"] == "grey"]}
    across = reproduction.compare_cells(first, ("spots", "cnn"), ("spots", "cnn"), other=second)
    within = reproduction.compare_cells(both, ("spots", "cnn"), ("grey", "cnn"))
    assert across == within and across.apart
    assert reproduction.compare_cells(first, ("spots", "cnn"), ("spots", "cnn")).difference == 0
    for run in second["runs"]:
        run["y"] = {"test_pristine": run["y"]["test_pristine"][::-1]}
    with pytest.raises(ValueError, match="same crystals"):
        reproduction.compare_cells(first, ("spots", "cnn"), ("spots", "cnn"), other=second)


def test_learning_table_and_plan_progress_read_a_card():
    e = np.arange(1, 21)
    card = synthetic_card({("spots", "cnn"): (0.9, 3), ("rgb", "msdn"): (0.6, 1)})
    for i, run in enumerate(card["runs"]):  # the first run overfits, the others improve
        run["history"] = (synthetic_history(1 + 0.05 * e, np.full(20, 0.5)) if i == 0 else
                          synthetic_history(2 - 0.05 * e, 0.3 + 0.02 * e))  # fmt: skip
    table = reproduction.learning_table(card, model="cnn")
    assert list(table["seed"]) == [0, 1, 2]
    assert list(table["state"]) == ["overfitted", "still improving", "still improving"]
    assert table["gap (points)"].iloc[0] == pytest.approx(49.0)
    assert table["slope (points/epoch)"].iloc[1] == pytest.approx(2.0)
    progress = reproduction.plan_progress(card).set_index(["inputs", "model"])
    assert progress.loc[("spots", "cnn"), "20 groups"] == 3
    assert progress.loc[("rgb", "msdn"), "20 groups"] == 1
    assert progress.loc[("grey", "msdn"), "8 groups"] == 0


def test_the_slower_rate_is_called_for_only_by_a_run_still_improving():
    e = np.arange(1, 21)
    wobble = np.random.default_rng(1).normal(0, 0.01, 20)
    card = synthetic_card({("spots", "cnn"): (0.9, 1), ("rgb", "msdn"): (0.6, 2)})
    settled = [synthetic_history(1 + 0.05 * e, 0.5 + wobble),  # overfitted
               synthetic_history(0.4 + wobble, 0.9 + wobble)]  # converged  # fmt: skip
    improving = synthetic_history(2 - 0.05 * e, 0.3 + 0.02 * e)
    card["runs"][0]["history"] = improving  # the CNN's runs do not decide for the MSDN
    card["runs"][1]["history"], card["runs"][2]["history"] = settled
    sentence, run_it = reproduction.slower_rate_sentence(card)
    assert not run_it and "1 converged, 1 overfitted, 0 still improving" in sentence
    assert "not made" in sentence
    card["runs"][2]["history"] = improving
    sentence, run_it = reproduction.slower_rate_sentence(card)
    assert run_it and "1 still improving" in sentence and "called for" in sentence
    card["runs"][2]["variant"] = card["runs"][1]["variant"] = "lr 1e-05"  # not at its own rate
    sentence, run_it = reproduction.slower_rate_sentence(card)
    assert not run_it and "no MSDN run" in sentence


def test_shipped_cards_are_named():
    assert reproduction.card()["dataset"]["zone_axes"] == "cell"
    axes, study = (
        reproduction.card(reproduction.AXES_CARD),
        reproduction.card(reproduction.STUDY_CARD),
    )
    assert axes["dataset"]["zone_axes"] == "cell" and study["dataset"]["zone_axes"] == "distinct"
    # the axes card pairs with the study card's 8-group runs: the same test crystals
    runs = [r for r in study["runs"] if (r["n_groups"], r["inputs"]) == (8, "spots")]
    assert all(r["y"] == runs[0]["y"] for r in axes["runs"])
    with pytest.raises(ValueError, match="shipped cards"):
        reproduction.card("elsewhere.json")


def test_paper_training_per_group_follows_its_text():
    assert reproduction.paper_training_per_group() == pytest.approx(108_658 / 72 * 0.8 * 0.9)
    assert 1080 < reproduction.paper_training_per_group() < 1090
