"""The Chapter 6 classifiers, trained alike, and the study of Tiong et al. (2020) in Chapter 7.

One :class:`Recipe` trains every input x network pair on a zone-axis dataset
(:func:`experiment`, giving a :class:`Result`); the long runs go into a results
card (``python -m crystal_course.reproduction train``, :func:`main`), read with
:func:`card`, :func:`card_runs` and :func:`card_correct`. The verdicts the chapters
draw from the card are functions here with their own tests: a learning curve's
slope over the last half of training with its interval (:func:`learning_trend`),
whether a run converged, is still improving or overfitted (:func:`fit_state`),
and two cells of the grid compared over seeds on the same test crystals
(:func:`compare_cells`), which ranks them only when each has at least
:data:`MIN_SEEDS` seeds. Patterns and datasets are :mod:`crystal_course.zone_axis`.

Introduced in Chapter 6 (the method) and Chapter 7 (the study).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from numbers import Integral
from pathlib import Path

import numpy as np

from crystal_course.dataset import read_manifest
from crystal_course.zone_axis import INPUTS, MODELS, load_split

MAIN_METHODS: tuple[tuple[str, str], ...] = (("spots", "cnn"), ("shaped", "msdn"))
"""The baseline and the shaped method of Chapter 6's quick run, ``(input, model)``."""

# ---------------------------------------------------------------------------
# The experiment: inputs x networks, trained alike
# ---------------------------------------------------------------------------

MSDN_SIZES: dict[str, dict] = {
    "quick": {"blocks": (2, 2), "growth": 12, "stem_filters": 16},
    "full": {"blocks": (3, 6, 12, 8), "growth": 32, "stem_filters": 32},
}
"""Trunk of :func:`crystal_course.models.msdn` per mode: a small one for CPU
minutes, and four dense blocks (the paper's number) of 3, 6, 12 and 8 layers with
growth 32 (our sizes: the paper's text does not state them)."""

PAPER_TOP1: dict[int, float] = {8: 0.9904, 20: 0.9501, 49: 0.8316, 72: 0.8012}
"""Top-1 accuracy of shaped patterns + MSDN in Tiong et al. (2020) per number of
space groups (their Materials Project data, not ours)."""


PAPER_DATA: dict[str, float] = {
    "crystals": 108_658,
    "groups": 72,
    "learning_share": 0.8,
    "folds": 10,
}
"""The size of Tiong et al.'s data as its text gives it: crystals, space groups, the share
for learning (training and validation; the rest tests), and the cross-validation folds
(one validates)."""


def paper_training_per_group(data: dict = PAPER_DATA) -> float:
    """Training crystals per space group in the paper, on average: crystals / groups x
    learning share x (1 - 1/folds). About 1,087; its groups are imbalanced (295 to 8,700).

    Notes
    -----
    Introduced in Chapter 7.
    """
    return data["crystals"] / data["groups"] * data["learning_share"] * (1 - 1 / data["folds"])


@dataclass(frozen=True)
class Recipe:
    """How every classifier of Chapter 6 is trained (the same for all inputs and networks).

    Attributes
    ----------
    epochs : int
        Passes over the training share (after the transfer stage, if any).
    batch_size : int
        Samples per batch on each device (on a multi-GPU node the global batch is
        this times the GPUs; see :func:`crystal_course.training.train`).
    learning_rate : float
        Adam's learning rate (the paper: 1e-5 for the MSDN, 1e-4 for the
        baselines, for long training; the course's default 1e-3 suits short runs).
    weight_decay : float
        Adam's weight decay for the MSDN (the paper's 1e-7); the 2018 CNN keeps
        its own recipe, Adam without decay.
    batch_norm : bool
        Batch normalisation in the MSDN's trunk, the course's choice (as in the
        original DenseNet). The paper's dense layers are conv, ReLU and dropout;
        Chapter 6 measures both.
    validation_fraction : float
        Share of the training crystals kept for validation (the paper's 1/10).
    train_per_group : int, optional
        Train on the first this many training crystals of each group (default:
        all of them); the test crystals stay the same, so runs that differ only
        here measure how accuracy grows with the size of the training set.

    Notes
    -----
    Introduced in Chapter 6.
    """

    epochs: int = 20
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 1e-7
    batch_norm: bool = True
    validation_fraction: float = 0.1
    train_per_group: int | None = None

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "train_per_group"):
            value = getattr(self, name)
            if name == "train_per_group" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not self.learning_rate > 0 or self.weight_decay < 0:
            raise ValueError("learning_rate must be > 0 and weight_decay >= 0")
        if not 0 <= self.validation_fraction < 1:
            raise ValueError(
                f"validation_fraction must be in [0, 1), got {self.validation_fraction}"
            )

    @property
    def variant(self) -> str:
        """What differs from the default recipe, e.g. ``"no batch norm, lr 1e-05"`` (or ``""``)."""
        default, parts = Recipe(), []
        if self.batch_norm != default.batch_norm:
            parts.append("batch norm" if self.batch_norm else "no batch norm")
        if self.learning_rate != default.learning_rate:
            parts.append(f"lr {self.learning_rate:g}")
        if self.weight_decay != default.weight_decay:
            parts.append(f"weight decay {self.weight_decay:g}")
        if self.train_per_group is not None:
            parts.append(f"{self.train_per_group} train/group")
        return ", ".join(parts)


@dataclass(frozen=True)
class Result:
    """Predictions of one trained Chapter 6 classifier on every test split.

    Attributes
    ----------
    inputs, model : str
        Keys of :data:`crystal_course.zone_axis.INPUTS` and :data:`crystal_course.zone_axis.MODELS`.
    seed : int
    space_groups : tuple of int
        The classes, in label order.
    y : dict of str to numpy.ndarray
        True labels per test split (the same crystals, in the same order, in every split).
    probabilities : dict of str to numpy.ndarray
        ``(N, n_classes)`` predicted probabilities per test split.
    n_train : int
        Training crystals (a share of them validate rather than fit).
    seconds : float
        Training wall time, transfer stage excluded.
    n_parameters : int
    history : dict of str to list
        Per epoch: ``loss``, ``val_loss``, ``accuracy``, ``val_accuracy``.
    recipe : Recipe
    transferred_from : int or None
        Number of space groups of the model whose weights started this one.

    Notes
    -----
    Introduced in Chapter 6.
    """

    inputs: str
    model: str
    seed: int
    space_groups: tuple[int, ...]
    y: dict
    probabilities: dict
    n_train: int
    seconds: float
    n_parameters: int
    history: dict
    recipe: Recipe
    transferred_from: int | None = None

    @property
    def label(self) -> str:
        """``"<input> + <network>"`` for tables and legends."""
        return f"{INPUTS[self.inputs]} + {MODELS[self.model]}"

    def predicted(self, split: str = "test_pristine") -> np.ndarray:
        """Predicted labels on one split."""
        return self.probabilities[split].argmax(axis=1)

    def top_k(self, k: int = 1, split: str = "test_pristine") -> float:
        """Top-``k`` accuracy on one split (:func:`crystal_course.training.top_k_accuracy`)."""
        from crystal_course.training import top_k_accuracy

        return top_k_accuracy(self.probabilities[split], self.y[split], k)

    def accuracy(self, split: str = "test_pristine"):
        """Top-1 accuracy and its Wilson interval (``uncertainty.Accuracy``)."""
        from crystal_course.uncertainty import from_predictions

        return from_predictions(self.predicted(split), self.y[split])

    def retained(self) -> dict:
        """:func:`conditional_vacancy_accuracy` of this run (the paper's Fig. 9 measure)."""
        predicted = {split: self.predicted(split) for split in self.probabilities}
        return conditional_vacancy_accuracy(predicted, self.y)

    def systems(self, split: str = "test_pristine") -> tuple[np.ndarray, np.ndarray]:
        """True and predicted crystal systems (names) of every test crystal."""
        from crystal_course.structures import crystal_system

        groups = np.asarray(self.space_groups)
        return (
            np.array([crystal_system(int(g)) for g in groups[self.y[split]]]),
            np.array([crystal_system(int(g)) for g in groups[self.predicted(split)]]),
        )

    def system_confusion(self, split: str = "test_pristine"):
        """Crystal-system confusion table: rows true, columns predicted (``pandas.DataFrame``)."""
        import pandas as pd

        from crystal_course.structures import CRYSTAL_SYSTEMS, crystal_system

        present = {crystal_system(int(g)) for g in self.space_groups}
        names = [name for name, _, _ in CRYSTAL_SYSTEMS if name in present]
        true, predicted = self.systems(split)
        table = pd.crosstab(
            pd.Categorical(true, names), pd.Categorical(predicted, names), dropna=False
        )
        table.index.name, table.columns.name = "true system", "predicted system"
        return table

    def accuracy_by_system(self, split: str = "test_pristine") -> dict[str, float]:
        """Top-1 space-group accuracy of the test crystals of each crystal system."""
        true, _ = self.systems(split)
        hit = self.predicted(split) == self.y[split]
        order = list(dict.fromkeys(self.system_confusion(split).index))
        return {name: float(hit[true == name].mean()) for name in order if (true == name).any()}

    def summary(self) -> dict:
        """JSON-ready record: recipe, numbers, learning curves and every prediction."""
        k_max = min(5, len(self.space_groups))
        return {
            "n_groups": len(self.space_groups),
            "inputs": self.inputs,
            "model": self.model,
            "seed": self.seed,
            "variant": self.recipe.variant,
            "recipe": asdict(self.recipe),
            "transferred_from": self.transferred_from,
            "n_train": self.n_train,
            "n_test": int(len(self.y["test_pristine"])),
            "n_parameters": self.n_parameters,
            "training_seconds": round(self.seconds, 1),
            "top_k": {str(k): round(self.top_k(k), 4) for k in range(1, k_max + 1)},
            "top1_by_split": {s: round(self.top_k(1, s), 4) for s in self.probabilities},
            "history": {k: [round(float(v), 5) for v in vs] for k, vs in self.history.items()},
            "y": {s: self.y[s].tolist() for s in self.y},
            "predicted": {s: self.predicted(s).tolist() for s in self.probabilities},
        }


def _transfer(source, target, model: str) -> None:
    """Copy every weight but the classifier's from ``source`` into ``target``."""
    if model == "msdn":
        target.get_layer("densenet_trunk").set_weights(
            source.get_layer("densenet_trunk").get_weights()
        )
        return
    for a, b in zip(source.layers[:-1], target.layers[:-1], strict=True):
        b.set_weights(a.get_weights())


def _history(history, scale_loss: float = 1.0) -> dict:
    keys = ("loss", "val_loss", "accuracy", "val_accuracy")
    return {k: [float(v) * (scale_loss if "loss" in k else 1) for v in history.history[k]]
            for k in keys if k in history.history}  # fmt: skip


def experiment(
    path: str | os.PathLike,
    inputs: str,
    model: str,
    space_groups=None,
    recipe: Recipe = Recipe(),
    seed: int = 0,
    msdn_size: dict | None = None,
    pretrained=None,
    resume_dir: str | os.PathLike | None = None,
):
    """Train one Chapter 6 classifier on a zone-axis dataset and predict every test split.

    Parameters
    ----------
    path : path-like
        Directory made by :func:`crystal_course.zone_axis.generate`.
    inputs : str
        A key of :data:`crystal_course.zone_axis.INPUTS`: the three patterns of a crystal as
        ``spots`` (raw), ``shaped`` (R and S = R + lines as two channels per
        pattern), ``rgb`` (the paper's: each pattern an RGB image with its lines in
        its axis's colour), ``grey`` (the same lines in grey),
        ``thresholded`` (grey lines over the nodes only), ``faint`` (R + thinner,
        fainter grey lines) or ``lines`` (the grey lines alone, S - R).
    model : str
        ``"cnn"``: the three patterns' channels stacked into one image (3, 6 for
        ``shaped``, 9 for ``rgb``) for :func:`crystal_course.models.ziletti_cnn`;
        ``"msdn"``: one pattern per stream of :func:`crystal_course.models.msdn`.
    space_groups : sequence of int, optional
        Train and test on these groups only; default all of the dataset's groups.
    recipe : Recipe
        Training; the same for every input and network.
    seed : int, default 0
        Seeds the weights, the validation split and the shuffling.
    msdn_size : dict, optional
        ``blocks``, ``growth``, ``stem_filters``; default :data:`MSDN_SIZES` of
        the current mode.
    pretrained : keras.Model, optional
        A model of the same network and input size trained on fewer groups
        (e.g. the 8-group subset): its weights, all but the classifier's, start
        this one (the paper's transfer from 8 to 20 groups).
    resume_dir : path-like, optional
        Train resumably per epoch in this folder
        (:func:`crystal_course.training.train`'s ``resume_dir``): a run that was
        stopped goes on after its last finished epoch.

    Returns
    -------
    model : keras.Model
    result : Result

    Notes
    -----
    Introduced in Chapter 6.
    """
    from crystal_course import config
    from crystal_course.models import msdn, msdn_inputs, msdn_probabilities, ziletti_cnn
    from crystal_course.training import train, train_msdn

    if inputs not in INPUTS or model not in MODELS:
        raise ValueError(
            f"inputs must be one of {sorted(INPUTS)} and model one of {sorted(MODELS)}, "
            f"got {inputs!r}, {model!r}"
        )
    train_arrays, y = load_split(path, "train", space_groups, needed=(inputs,),
                                 per_group=recipe.train_per_group)  # fmt: skip
    groups = space_groups or read_manifest(path)["parameters"]["space_groups"]
    groups = tuple(int(g) for g in groups)
    x = train_arrays[inputs]
    n, channels = x.shape[1], x.shape[-1] // 3
    if model == "msdn":
        size = dict(msdn_size or MSDN_SIZES[config.mode()])
        network = msdn((n, n, channels), len(groups), seed=seed, batch_norm=recipe.batch_norm,
                       **size)  # fmt: skip
    else:
        network = ziletti_cnn((n, n, 3 * channels), len(groups), seed=seed)
    transferred = None
    if pretrained is not None:
        _transfer(pretrained, network, model)
        transferred = int(pretrained.output_shape[0][-1] if model == "msdn"
                          else pretrained.output_shape[-1])  # fmt: skip
    start = time.perf_counter()
    common = {"validation_fraction": recipe.validation_fraction, "seed": seed,
              "learning_rate": recipe.learning_rate, "verbose": 0,
              "resume_dir": resume_dir}  # fmt: skip
    if model == "msdn":
        fit = train_msdn(network, x, y, recipe.epochs, recipe.batch_size,
                         weight_decay=recipe.weight_decay, **common)  # fmt: skip
        history = _history(fit, 1 / 3)  # per stream, comparable with the CNN
    else:
        fit = train(network, x.astype(np.float32) / 255, y, recipe.epochs, recipe.batch_size,
                    **common)  # fmt: skip
        history = _history(fit)
    seconds = time.perf_counter() - start
    if resume_dir is not None:  # every restart's epochs, not only this call's
        from crystal_course.training import resumed_seconds

        seconds = resumed_seconds(resume_dir) or seconds
    labels, probabilities = {}, {}
    for split in read_manifest(path)["splits"][1:]:
        arrays, labels[split] = load_split(path, split, groups, needed=(inputs,))
        if model == "msdn":
            probabilities[split] = msdn_probabilities(network, msdn_inputs(arrays[inputs]))
        else:
            probabilities[split] = network.predict(
                arrays[inputs].astype(np.float32) / 255, batch_size=256, verbose=0
            )
    result = Result(inputs, model, seed, groups, labels, probabilities, len(y), seconds,
                    network.count_params(), history, recipe, transferred)  # fmt: skip
    return network, result


def conditional_vacancy_accuracy(predicted: dict, y: dict) -> dict:
    """Accuracy under vacancies among the crystals classified correctly when pristine.

    The measure of Tiong et al.'s Fig. 9: only test crystals whose pristine
    pattern is classified correctly count, so the pristine level is 100 % by
    construction and the curve shows what vacancies alone cost.

    Parameters
    ----------
    predicted, y : dict of str to array
        Predicted and true labels per split (``"test_pristine"`` and
        ``"test_vacancies_<f>"``, the same crystals in the same order), e.g.
        a card run's ``predicted`` and ``y``.

    Returns
    -------
    dict
        Vacancy fraction (float) to :class:`crystal_course.uncertainty.Accuracy`.

    Notes
    -----
    Introduced in Chapter 6.
    """
    from crystal_course.uncertainty import wilson

    pristine = np.asarray(predicted["test_pristine"]) == np.asarray(y["test_pristine"])
    if not pristine.any():
        raise ValueError("no test crystal is classified correctly when pristine")
    out = {}
    for split in sorted(s for s in predicted if s.startswith("test_vacancies_")):
        if not np.array_equal(y[split], y["test_pristine"]):
            raise ValueError(f"split {split} does not hold the pristine test crystals in order")
        hit = np.asarray(predicted[split])[pristine] == np.asarray(y[split])[pristine]
        out[float(split.rsplit("_", 1)[1])] = wilson(int(hit.sum()), int(pristine.sum()))
    return out


# ---------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------


def plot_top_k(results: dict, ax=None, split: str = "test_pristine"):
    """Top-k accuracy (%) against k = 1..5 for several :class:`Result`.

    ``results`` maps a legend label to a result.

    Notes
    -----
    Introduced in Chapter 6.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.2))
    for label, result in results.items():
        ks = np.arange(1, min(5, len(result.space_groups)) + 1)
        ax.plot(ks, [100 * result.top_k(int(k), split) for k in ks], "o-", label=label)
    ax.set_xlabel("k (true group among the k most probable)")
    ax.set_ylabel("top-k accuracy (%)")
    ax.set_xticks(range(1, 6))
    ax.set_ylim(0, 103)
    ax.legend(fontsize=8)
    return ax


def _accuracy_errorbar(ax, x, accuracies, label: str) -> None:
    """One method's accuracies (%) with their 95 % intervals as error bars."""
    values = np.array([a.value for a in accuracies])
    errors = np.array(
        [[a.value - a.low for a in accuracies], [a.high - a.value for a in accuracies]]
    )
    ax.errorbar(x, 100 * values, yerr=100 * errors, fmt="o-", capsize=3, label=label)


def plot_training_size(accuracies: dict, ax=None):
    """Top-1 accuracy (%) against training crystals per group, with 95 % Wilson intervals.

    ``accuracies`` maps a legend label to ``{crystals per group: Accuracy}``, all
    on the same test crystals.

    Notes
    -----
    Introduced in Chapter 6.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.2))
    for label, by_size in accuracies.items():
        sizes = sorted(by_size)
        _accuracy_errorbar(ax, sizes, [by_size[n] for n in sizes], label)
        ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.set_xscale("log", base=2)
    ax.minorticks_off()
    ax.set_xlabel("training crystals per space group")
    ax.set_ylabel("top-1 accuracy on the test crystals (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    return ax


def plot_vacancy_robustness(accuracies: dict, ax=None):
    """Accuracy (%) against the vacancy fraction, with 95 % Wilson intervals, per method.

    ``accuracies`` maps a legend label to ``{vacancy fraction: Accuracy}``, e.g.
    :func:`conditional_vacancy_accuracy` (then the pristine point is 100 % by
    construction and is drawn at 0 %).

    Notes
    -----
    Introduced in Chapter 6.
    """
    import matplotlib.pyplot as plt

    from crystal_course.uncertainty import Accuracy

    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.2))
    for label, by_level in accuracies.items():
        levels = sorted(by_level)
        certain = Accuracy(1, 1, 1.0, 1.0)  # pristine-correct by construction: no interval
        _accuracy_errorbar(ax, [0.0] + [100 * v for v in levels],
                           [certain] + [by_level[v] for v in levels], label)  # fmt: skip
    ax.set_xlabel("vacancies (% of atoms removed)")
    ax.set_ylabel("still correct (% of pristine-correct)")
    ax.set_ylim(0, 103)
    ax.legend(fontsize=8)
    return ax


def plot_learning_curves(histories: dict, axes=None):
    """Loss and accuracy per epoch, training (solid) and validation (dashed).

    ``histories`` maps a legend label to a history dict (``Result.history``, or
    a card run's ``history``). Losses are per stream for the MSDN (its summed
    loss / 3), so both networks share one scale.

    Notes
    -----
    Introduced in Chapter 6.
    """
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.4), layout="constrained")
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, history) in enumerate(histories.items()):
        colour = colours[i % len(colours)]
        for ax, key, scale in ((axes[0], "loss", 1), (axes[1], "accuracy", 100)):
            for prefix, style, kind in (("", "-", "training"), ("val_", "--", "validation")):
                values = history.get(prefix + key)
                if values:
                    epochs = np.arange(1, len(values) + 1)
                    ax.plot(epochs, scale * np.asarray(values), style, color=colour,
                            label=f"{label}, {kind}")  # fmt: skip
    axes[0].set_ylabel("cross-entropy per stream")
    axes[1].set_ylabel("accuracy (%)")
    axes[1].set_ylim(0, 103)
    for ax in axes:
        ax.set_xlabel("epoch")
    axes[1].legend(fontsize=7)
    return axes


def plot_mc_dropout(mean: np.ndarray, std: np.ndarray, class_names, true=None, top: int = 5,
                    axes=None):  # fmt: skip
    """Bar charts of Monte Carlo dropout probabilities (mean and 1 std), one panel per sample.

    Shows each sample's ``top`` most probable classes, the true one in orange
    (Tiong et al. 2020, Fig. 4).

    Notes
    -----
    Introduced in Chapter 6.
    """
    import matplotlib.pyplot as plt

    mean, std = np.atleast_2d(mean), np.atleast_2d(std)
    if mean.shape != std.shape or mean.shape[1] != len(class_names):
        raise ValueError(
            f"mean and std must both be (N, {len(class_names)}), got {mean.shape}, {std.shape}"
        )
    if axes is None:
        _, axes = plt.subplots(1, len(mean), figsize=(3.2 * len(mean), 3), layout="constrained",
                               squeeze=False)  # fmt: skip
        axes = axes[0]
    for i, ax in enumerate(np.atleast_1d(axes)):
        order = np.argsort(-mean[i])[:top]
        colours = ["tab:orange" if true is not None and k == true[i] else "tab:blue"
                   for k in order]  # fmt: skip
        ax.bar(range(len(order)), mean[i, order], yerr=std[i, order], color=colours, capsize=3)
        ax.set_xticks(range(len(order)), [str(class_names[k]) for k in order], rotation=45,
                      fontsize=8)  # fmt: skip
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("probability (mean ± 1 std)")
        ax.set_xlabel("space group")
    return axes


# ---------------------------------------------------------------------------
# The results card of the long runs
# ---------------------------------------------------------------------------

CARD = "zone_axis_full.json"
"""The first results card, in ``crystal_course/data``: cell axes [100], [010], [001],
grey lines (dataset format 2), 80 crystals per group."""

STUDY_CARD = "zone_axis_400.json"
"""The study's results card, in ``crystal_course/data``: three symmetry-distinct zone
axes, the paper's coloured lines among the inputs (dataset format 3), 450 crystals per
group (405 train, 45 validate)."""

AXES_CARD = "zone_axis_400_cell.json"
"""What the beams change, trained: spots + CNN with the study card's recipe on its 8-group
set, the same crystals viewed along the cell axes [100], [010], [001] (dataset format 3,
450 crystals per group, ``--zone-axes cell``). Its runs pair with the study card's 8-group
runs crystal by crystal (:func:`compare_cells` with ``other``)."""

STUDY_PLAN: tuple[tuple[str, str, int], ...] = (
    ("spots", "cnn", 3),
    ("rgb", "msdn", 3),
    ("grey", "msdn", 3),
    ("shaped", "msdn", 1),
)
"""The runs the study card is to hold: ``(inputs, model, seeds)``, each on the 8-group
stage and then on 20 groups; the cells with one seed are shown, never ranked."""


def card(name: str = CARD) -> dict:
    """A results card shipped in ``crystal_course/data`` (commands, data, runs).

    Parameters
    ----------
    name : str, default :data:`CARD`
        :data:`CARD` (the first card), :data:`STUDY_CARD` or :data:`AXES_CARD`.

    Made by :func:`main`; the README's section on the results cards gives the commands.

    Notes
    -----
    Introduced in Chapter 6.
    """
    from crystal_course.dataset import read_card

    return read_card(name, (CARD, STUDY_CARD, AXES_CARD))


def plan_progress(card: dict, plan=STUDY_PLAN, groups: tuple[int, ...] = (8, 20)):
    """How far a card is through a plan of runs: seeds done per cell and stage.

    Returns a ``pandas.DataFrame`` with one row per ``(inputs, model)`` of ``plan``:
    the seeds planned and, per number of groups, the seeds in the card.

    Notes
    -----
    Introduced in Chapter 7.
    """
    import pandas as pd

    rows = []
    for inputs, model, seeds in plan:
        row = {"inputs": inputs, "model": model, "seeds planned": seeds}
        for n in groups:
            row[f"{n} groups"] = len({r["seed"] for r in card["runs"]
                                      if (r["n_groups"], r["inputs"], r["model"], r["variant"])
                                      == (n, inputs, model, "")})  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows)


def learning_table(card: dict, **match):
    """Every matching run's learning curves in numbers: gap, slope, and what they say.

    For each run of ``card`` whose fields equal ``match``: the last epoch's
    training and validation accuracy, their gap (:func:`generalisation_gap`), the
    slope of the validation accuracy over the last half of training with its
    95 % interval (:func:`learning_trend`, in points per epoch), and
    :func:`fit_state`.

    Returns
    -------
    pandas.DataFrame

    Notes
    -----
    Introduced in Chapter 7.
    """
    import pandas as pd

    rows = []
    for run in card["runs"]:
        if any(run.get(k) != v for k, v in match.items()):
            continue
        history = run["history"]
        trend = learning_trend(history["val_accuracy"])
        rows.append({"n_groups": run["n_groups"], "inputs": run["inputs"], "model": run["model"],
                     "seed": run["seed"], "variant": run["variant"],
                     "epochs": len(history["val_accuracy"]),
                     "train (%)": 100 * history["accuracy"][-1],
                     "validation (%)": 100 * history["val_accuracy"][-1],
                     "gap (points)": 100 * generalisation_gap(history),
                     "slope (points/epoch)": 100 * trend.slope,
                     "slope low": 100 * trend.low, "slope high": 100 * trend.high,
                     "state": fit_state(history)})  # fmt: skip
    columns = ["n_groups", "inputs", "model", "seed", "variant", "epochs", "train (%)",
               "validation (%)", "gap (points)", "slope (points/epoch)", "slope low",
               "slope high", "state"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def card_runs(card: dict, **match):
    """The card's runs whose fields equal ``match`` (e.g. ``n_groups=20, variant=""``).

    Returns a ``pandas.DataFrame`` with one row per run: the identifying fields,
    top-1 accuracy with its 95 % Wilson interval (``low``, ``high``) on the
    pristine test set, and the training time.

    Notes
    -----
    Introduced in Chapter 6.
    """
    import pandas as pd

    from crystal_course.uncertainty import from_predictions

    rows = []
    for run in card["runs"]:
        if any(run.get(k) != v for k, v in match.items()):
            continue
        acc = from_predictions(run["predicted"]["test_pristine"], run["y"]["test_pristine"])
        rows.append({"n_groups": run["n_groups"], "inputs": run["inputs"], "model": run["model"],
                     "seed": run["seed"], "variant": run["variant"], "top1": acc.value,
                     "low": acc.low, "high": acc.high, "n_test": acc.n,
                     "minutes": run["training_seconds"] / 60})  # fmt: skip
    columns = ["n_groups", "inputs", "model", "seed", "variant", "top1", "low", "high",
               "n_test", "minutes"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def card_correct(card: dict, inputs: str, model: str, n_groups: int = 20, variant: str = "",
                 split: str = "test_pristine") -> np.ndarray:  # fmt: skip
    """Which test crystals each seed's run classified correctly.

    Returns
    -------
    numpy.ndarray
        ``(n_seeds, n_test)`` bool, rows in seed order; ``(0, 0)`` if the card
        has no such run.

    Notes
    -----
    Introduced in Chapter 6.
    """
    rows = sorted(
        (r for r in card["runs"]
         if (r["n_groups"], r["inputs"], r["model"], r["variant"]) == (n_groups, inputs, model,
                                                                       variant)),
        key=lambda r: r["seed"],
    )  # fmt: skip
    if not rows:
        return np.zeros((0, 0), dtype=bool)
    return np.array([np.equal(r["predicted"][split], r["y"][split]) for r in rows])


def _run_key(run: dict) -> tuple:
    return (run["n_groups"], run["inputs"], run["model"], run["seed"], run["variant"])


def run_folder(card_path: str | os.PathLike, key: tuple) -> Path:
    """Where a card's run in progress keeps its per-epoch history and backup.

    ``<card>.runs/<groups>-<inputs>-<model>-seed<seed>[-<variant>]`` beside the card;
    removed when the run's result is in the card.

    Notes
    -----
    Introduced in Chapter 6.
    """
    n_groups, inputs, model, seed, variant = key
    name = f"{n_groups}-{inputs}-{model}-seed{seed}"
    if variant:
        name += "-" + "".join(c if c.isalnum() else "_" for c in variant)
    card_path = Path(card_path)
    return card_path.parent / f"{card_path.stem}.runs" / name


# ---------------------------------------------------------------------------
# Verdicts: learning curves and cells of the grid over seeds
# ---------------------------------------------------------------------------

MIN_SEEDS = 3
"""Seeds a cell of the grid needs before a sentence may rank it against another."""


@dataclass(frozen=True)
class Trend:
    """A least-squares slope per epoch with its interval (:func:`learning_trend`).

    Attributes
    ----------
    slope, low, high : float
        Change per epoch and its two-sided interval (Student's t on the fit's
        standard error), in the unit of the curve (e.g. accuracy as a fraction).
    epochs : tuple of int
        The epochs fitted (1-based).
    """

    slope: float
    low: float
    high: float
    epochs: tuple[int, ...]

    @property
    def direction(self) -> str:
        """``"rising"`` or ``"falling"`` when the interval excludes 0, else ``"flat"``."""
        if self.low > 0:
            return "rising"
        if self.high < 0:
            return "falling"
        return "flat"


def learning_trend(values, fraction: float = 0.5, confidence: float = 0.95) -> Trend:
    """Slope of a learning curve over the last ``fraction`` of its epochs, with an interval.

    SciPy's ``linregress`` on (epoch, value); the interval is the slope's
    ``confidence`` t-interval with n - 2 degrees of freedom. It replaces "still
    rising" by a number: a curve rises only if the whole interval is above 0.

    Parameters
    ----------
    values : array_like
        One value per epoch (e.g. a history's ``val_accuracy``, fractions).
    fraction : float, default 0.5
        Share of the last epochs fitted; at least 3 epochs are used.
    confidence : float, default 0.95

    Returns
    -------
    Trend

    Notes
    -----
    Introduced in Chapter 7.
    """
    from scipy import stats

    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or len(values) < 3 or not np.isfinite(values).all():
        raise ValueError(f"expected >= 3 finite values, one per epoch, got shape {values.shape}")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    n = max(3, int(np.ceil(fraction * len(values))))
    epochs = np.arange(len(values) - n + 1, len(values) + 1)
    tail = values[-n:]
    if np.ptp(tail) == 0:
        return Trend(0.0, 0.0, 0.0, tuple(int(e) for e in epochs))
    fit = stats.linregress(epochs, tail)
    half = stats.t.ppf(0.5 + confidence / 2, n - 2) * fit.stderr
    return Trend(float(fit.slope), float(fit.slope - half), float(fit.slope + half),
                 tuple(int(e) for e in epochs))  # fmt: skip


FIT_STATES = ("overfitted", "still improving", "converged")
"""What :func:`fit_state` can say of a run."""


def fit_state(history: dict, fraction: float = 0.5) -> str:
    """Whether a run overfitted, is still improving, or converged, from its learning curves.

    ``"overfitted"``: the validation loss rises over the last ``fraction`` of
    training (its slope's 95 % interval is above 0). ``"still improving"``: it
    does not, and the validation accuracy rises (interval above 0). Otherwise
    ``"converged"``: neither curve moves beyond its noise.

    Parameters
    ----------
    history : dict
        ``val_loss`` and ``val_accuracy`` per epoch (``Result.history``, a card
        run's ``history``).

    Notes
    -----
    Introduced in Chapter 7.
    """
    for key in ("val_loss", "val_accuracy"):
        if key not in history:
            raise ValueError(f"history has no {key!r} (validation curves); got {sorted(history)}")
    if learning_trend(history["val_loss"], fraction).direction == "rising":
        return "overfitted"
    if learning_trend(history["val_accuracy"], fraction).direction == "rising":
        return "still improving"
    return "converged"


def slower_rate_sentence(card: dict, model: str = "msdn") -> tuple[str, bool]:
    """Do a card's curves at its own learning rate call for the paper's slower, longer run?

    The rule of Chapter 7: the paper's 10⁻⁵ matters only where a run of ``model`` at the
    card's rate (the default recipe) was **still improving** when it stopped
    (:func:`fit_state`): there, training held the run back. Runs that converged or
    overfitted reached what this rate and data give, so the slower run is not made.

    Parameters
    ----------
    card : dict
        A results card (:func:`card`).
    model : str, default "msdn"
        The network whose runs decide (the paper's 10⁻⁵ is the MSDN's).

    Returns
    -------
    sentence : str
    run_it : bool
        Whether the slower run is called for.

    Notes
    -----
    Introduced in Chapter 7.
    """
    states = [fit_state(r["history"]) for r in card["runs"]
              if r["model"] == model and r["variant"] == ""]  # fmt: skip
    if not states:
        return (f"The card has no {MODELS[model]} run at its own rate yet, so its curves "
                "cannot say whether the slower rate matters."), False  # fmt: skip
    counts = {state: states.count(state) for state in FIT_STATES}
    tally = (
        f"{counts['converged']} converged, {counts['overfitted']} overfitted, "
        f"{counts['still improving']} still improving"
    )
    if counts["still improving"]:
        return (f"Of the card's {len(states)} {MODELS[model]} runs at its own rate, {tally}: "
                "training held some back, so the paper's slower, longer run is called for."
                ), True  # fmt: skip
    return (f"None of the card's {len(states)} {MODELS[model]} runs at its own rate was still "
            f"improving when it stopped ({tally}), so by this rule the curves do not call "
            "for the paper's slower, longer run, and it is not made."), False  # fmt: skip


def generalisation_gap(history: dict) -> float:
    """Training minus validation accuracy at the last epoch (fraction).

    Notes
    -----
    Introduced in Chapter 7.
    """
    return float(history["accuracy"][-1] - history["val_accuracy"][-1])


@dataclass(frozen=True)
class CellComparison:
    """Two cells of the grid on the same test crystals, over their seeds.

    Attributes
    ----------
    seeds_a, seeds_b : int
        Runs (seeds) of each cell.
    accuracy_a, accuracy_b : float
        Mean top-1 accuracy over the seeds (fractions).
    difference, low, high : float
        ``a - b`` averaged over seeds, and its 95 % paired bootstrap interval over
        the test crystals (each crystal's share of right answers over the seeds).
    seed_differences : tuple of float
        ``a - b`` for each seed both cells have (seed ``i`` against seed ``i``).
    seed_low, seed_high : float
        95 % t-interval of the mean of ``seed_differences``: the spread of the
        difference itself over seeds (NaN with fewer than 2 common seeds).
    p_values : tuple of float
        McNemar's exact test of each common seed's pair of runs.
    min_seeds : int
        Seeds each cell needs for a verdict.
    """

    seeds_a: int
    seeds_b: int
    accuracy_a: float
    accuracy_b: float
    difference: float
    low: float
    high: float
    seed_differences: tuple[float, ...]
    seed_low: float
    seed_high: float
    p_values: tuple[float, ...]
    min_seeds: int = MIN_SEEDS

    @property
    def enough_seeds(self) -> bool:
        """Both cells have at least ``min_seeds`` seeds, so a verdict may be drawn."""
        return min(self.seeds_a, self.seeds_b) >= self.min_seeds

    @property
    def apart(self) -> bool:
        """A verdict: enough seeds, the crystals' interval and the seeds' interval of the
        difference exclude 0 on the same side, and every seed pair's McNemar p < 0.05."""
        if not self.enough_seeds:
            return False
        same_side = (self.low > 0 and self.seed_low > 0) or (self.high < 0 and self.seed_high < 0)
        return bool(same_side and max(self.p_values) < 0.05)

    def sentence(self, name_a: str, name_b: str) -> str:
        """The comparison in words; it ranks the cells only if :attr:`apart`."""
        numbers = (f"{name_a} {100 * self.accuracy_a:.1f} % ({self.seeds_a} "
                   f"seed{'s' * (self.seeds_a != 1)}), {name_b} {100 * self.accuracy_b:.1f} % "
                   f"({self.seeds_b} seed{'s' * (self.seeds_b != 1)})")  # fmt: skip
        if not self.enough_seeds:
            return (f"{numbers}: fewer than {self.min_seeds} seeds in a cell, so no verdict is "
                    "drawn")  # fmt: skip
        evidence = (f"the difference is {100 * self.difference:+.1f} points, 95 % interval "
                    f"[{100 * self.low:+.1f}, {100 * self.high:+.1f}] over the test crystals and "
                    f"[{100 * self.seed_low:+.1f}, {100 * self.seed_high:+.1f}] over the seeds; "
                    f"McNemar's p per seed at most {max(self.p_values):.2g}")  # fmt: skip
        if not self.apart:
            return f"{numbers}: they cannot be told apart ({evidence})"
        ahead = name_a if self.difference > 0 else name_b
        return f"{numbers}: {ahead} is ahead ({evidence})"


def compare_cells(card: dict, a: tuple[str, str], b: tuple[str, str], n_groups: int = 20,
                  variant_a: str = "", variant_b: str = "", split: str = "test_pristine",
                  min_seeds: int = MIN_SEEDS, seed: int = 0,
                  other: dict | None = None) -> CellComparison:  # fmt: skip
    """Compare two cells ``(inputs, model)`` of a card on the same test crystals, over seeds.

    Parameters
    ----------
    card : dict
        A results card (:func:`card`).
    a, b : tuple of str
        ``(inputs, model)`` of each cell, e.g. ``("spots", "cnn")``.
    n_groups : int, default 20
    variant_a, variant_b : str
        Recipe variants (``Recipe.variant``) of each cell; ``""`` is the default recipe.
    split : str, default "test_pristine"
    min_seeds : int
        Seeds each cell needs before :attr:`CellComparison.apart` can be true.
    seed : int, default 0
        Seed of the bootstrap.
    other : dict, optional
        The card of cell ``b`` (default: ``card``), for one method on two datasets of
        the same test crystals in the same order (e.g. :data:`AXES_CARD` against the
        study card); their test labels must agree.

    Returns
    -------
    CellComparison

    Notes
    -----
    Introduced in Chapter 7.
    """
    from crystal_course.uncertainty import paired_difference, paired_test

    rows = {}
    cards = {"a": card, "b": card if other is None else other}
    for name, (inputs, model), variant in (("a", a, variant_a), ("b", b, variant_b)):
        runs = sorted((r for r in cards[name]["runs"]
                       if (r["n_groups"], r["inputs"], r["model"], r["variant"])
                       == (n_groups, inputs, model, variant)), key=lambda r: r["seed"])  # fmt: skip
        if not runs:
            raise ValueError(f"the card has no run of {inputs}+{model} on {n_groups} groups "
                             f"(variant {variant!r})")  # fmt: skip
        truth = [r["y"][split] for r in runs]
        if any(t != truth[0] for t in truth):
            raise ValueError(f"the runs of {inputs}+{model} hold different test crystals")
        rows[name] = (runs, truth[0])
    if rows["a"][1] != rows["b"][1]:
        raise ValueError(f"{a} and {b} were not tested on the same crystals")
    correct = {name: {r["seed"]: np.equal(r["predicted"][split], truth) for r in runs}
               for name, (runs, truth) in rows.items()}  # fmt: skip
    mean_a = np.mean(list(correct["a"].values()), axis=0)
    mean_b = np.mean(list(correct["b"].values()), axis=0)
    difference, low, high = paired_difference(mean_a, mean_b, seed)
    common = sorted(set(correct["a"]) & set(correct["b"]))
    per_seed = [float(correct["a"][s].mean() - correct["b"][s].mean()) for s in common]
    p_values = tuple(paired_test(correct["a"][s], correct["b"][s], seed).p_value for s in common)
    if len(per_seed) >= 2:
        from scipy import stats

        spread = stats.sem(per_seed) * stats.t.ppf(0.975, len(per_seed) - 1)
        seed_low, seed_high = np.mean(per_seed) - spread, np.mean(per_seed) + spread
    else:
        seed_low = seed_high = float("nan")
    return CellComparison(len(correct["a"]), len(correct["b"]), float(mean_a.mean()),
                          float(mean_b.mean()), difference, low, high, tuple(per_seed),
                          float(seed_low), float(seed_high), p_values, min_seeds)  # fmt: skip


def _method(text: str) -> tuple[str, str]:
    inputs, _, model = text.partition("+")
    if inputs not in INPUTS or model not in MODELS:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected INPUT+MODEL with INPUT in {sorted(INPUTS)} and MODEL in "
            f"{sorted(MODELS)}, e.g. shaped+msdn"
        )
    return inputs, model


def main(argv: list[str] | None = None) -> int:
    """Train Chapter 6 classifiers into a results card (Chapter 7's study).

    ``train DATASET --card CARD`` (a dataset of ``python -m crystal_course.zone_axis
    generate``) trains every method x seed: first on the smaller set (``--transfer-from``,
    recorded too), then on ``--groups`` starting from those weights (``--no-transfer``:
    on ``--groups`` alone, from scratch). The card
    is rewritten atomically after every model and a rerun skips the runs it
    holds; a run in progress keeps its per-epoch history and a backup of its
    weights in :func:`run_folder` (both stages, until the second is in the card),
    so an interrupted job resumes after its last finished epoch.
    """
    from crystal_course import config
    from crystal_course.dataset import non_negative_int, positive_int
    from crystal_course.structures import SPACE_GROUP_SETS
    from crystal_course.training import _write_json

    parser = argparse.ArgumentParser(prog="python -m crystal_course.reproduction",
                                     description=main.__doc__)  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("train", help="train classifiers into a results card")
    run.add_argument(
        "dataset", help="directory made by 'python -m crystal_course.zone_axis generate'"
    )
    run.add_argument("--card", required=True, help="JSON results card to write")
    run.add_argument("--groups", type=int, choices=sorted(SPACE_GROUP_SETS), default=20)
    run.add_argument("--transfer-from", type=int, choices=sorted(SPACE_GROUP_SETS), default=8,
                     help="train on this smaller set first and start from its weights")  # fmt: skip
    run.add_argument("--no-transfer", action="store_true",
                     help="train on --groups alone, from scratch")  # fmt: skip
    run.add_argument("--methods", type=_method, nargs="+", default=list(MAIN_METHODS),
                     help="INPUT+MODEL, e.g. spots+cnn shaped+msdn")  # fmt: skip
    run.add_argument("--seeds", type=non_negative_int, nargs="+", default=[0])
    run.add_argument("--epochs", type=positive_int, default=Recipe.epochs)
    run.add_argument("--batch-size", type=positive_int, default=Recipe.batch_size)
    run.add_argument("--learning-rate", type=float, default=Recipe.learning_rate)
    run.add_argument(
        "--train-per-group",
        type=positive_int,
        default=None,
        help="train on the first N training crystals of each group",
    )
    run.add_argument("--no-batch-norm", action="store_true",
                     help="the paper's dense layers (conv, ReLU, dropout) in the MSDN")  # fmt: skip
    args = parser.parse_args(argv)
    if not args.no_transfer and not args.transfer_from < args.groups:
        parser.error(f"--transfer-from {args.transfer_from} must be smaller than --groups")
    try:
        recipe = Recipe(args.epochs, args.batch_size, args.learning_rate,
                        batch_norm=not args.no_batch_norm,
                        train_per_group=args.train_per_group)  # fmt: skip
        manifest = read_manifest(args.dataset)
    except (ValueError, OSError) as error:
        parser.error(str(error))
    card_path = Path(args.card)
    content = json.loads(card_path.read_text()) if card_path.exists() else {"runs": []}
    data = {**manifest["parameters"], "format": manifest.get("format")}
    if content["runs"] and content.get("dataset") != data:
        parser.error(f"{card_path} holds runs on another dataset than {args.dataset}; "
                     "give a new --card")  # fmt: skip
    size = MSDN_SIZES[config.mode()]
    content.update(
        commands=content.get("commands", []),
        dataset=data,
        device=config.device(),
        mode=config.mode(),
        msdn_size={k: list(v) if isinstance(v, tuple) else v for k, v in size.items()},
        paper_top1={str(k): v for k, v in PAPER_TOP1.items()},
    )
    command = "python -m crystal_course.reproduction " + shlex.join(sys.argv[1:] if argv is None
                                                                  else argv)  # fmt: skip
    if command not in content["commands"]:
        content["commands"].append(command)
    done = {_run_key(r) for r in content["runs"]}
    for seed in args.seeds:
        for inputs, model in args.methods:
            if (args.groups, inputs, model, seed, recipe.variant) in done:
                print(f"{args.groups} groups, {inputs}+{model}, seed {seed}: in the card already")
                continue
            source, folders = None, []  # the smaller set first (recorded too), then transfer
            stages = (args.groups,) if args.no_transfer else (args.transfer_from, args.groups)
            for n_groups in stages:
                folder = run_folder(card_path, (n_groups, inputs, model, seed, recipe.variant))
                folders.append(folder)
                source, result = experiment(args.dataset, inputs, model,
                                            SPACE_GROUP_SETS[n_groups], recipe, seed,
                                            pretrained=source, resume_dir=folder)  # fmt: skip
                summary = result.summary()
                key = _run_key(summary)
                if key in done:  # a stage recorded when it finished, rebuilt to transfer from
                    continue
                content["runs"] = [r for r in content["runs"] if _run_key(r) != key] + [summary]
                done.add(key)
                _write_json(card_path, content)  # atomic
                print(f"{n_groups} groups, {inputs}+{model}, seed {seed}: top-1 "
                      f"{summary['top_k']['1']:.4f} ({summary['training_seconds']:.0f} s)",
                      flush=True)  # fmt: skip
            for folder in folders:  # both stages are in the card: their backups can go
                shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    # Run the importable module's main, so the classes it pickles resolve to this module.
    from crystal_course import reproduction

    sys.exit(reproduction.main())
