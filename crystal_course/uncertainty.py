"""How sure an accuracy is: Wilson intervals, and sentences that respect them.

An accuracy measured on ``n`` test crystals is a binomial proportion; its 95 %
Wilson score interval (computed by SciPy, ``scipy.stats.binomtest``) says which
other values the same classifier could have shown on another test set of the same
size. Two accuracies whose intervals overlap are not ranked in the course's prose:
:func:`compare` writes the sentence accordingly. When both classifiers answered the
same crystals the comparison is paired (:func:`paired_test`, :func:`compare_correct`):
the difference with a paired bootstrap interval, and McNemar's exact test on the
crystals only one of the two gets right.

Introduced in Chapter 3.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from numbers import Integral


@dataclass(frozen=True)
class Accuracy:
    """An accuracy with its Wilson score interval.

    Attributes
    ----------
    correct, n : int
        Correctly classified test crystals, and test crystals.
    low, high : float
        Bounds of the interval, as fractions.
    confidence : float
        Confidence level of the interval (0.95: 95 %).
    right : numpy.ndarray or None
        Per-crystal correctness (``(n,)`` bool) when the accuracy was measured from
        predictions (:func:`from_predictions`), for paired comparisons.
    """

    correct: int
    n: int
    low: float
    high: float
    confidence: float = 0.95
    right: object = field(default=None, compare=False, repr=False)

    @property
    def value(self) -> float:
        """The measured accuracy, a fraction."""
        return self.correct / self.n

    def overlaps(self, other: Accuracy) -> bool:
        """Whether the two intervals share any value."""
        return self.low <= other.high and other.low <= self.high

    def __str__(self) -> str:
        return (
            f"{100 * self.value:.1f} % [{100 * self.low:.1f}, {100 * self.high:.1f}] "
            f"({self.correct}/{self.n})"
        )


def wilson(correct: int, n: int, confidence: float = 0.95) -> Accuracy:
    """The accuracy ``correct / n`` with its Wilson score interval.

    Parameters
    ----------
    correct : int
        Correct predictions, ``0 <= correct <= n``.
    n : int
        Test crystals, at least 1.
    confidence : float, default 0.95
        Confidence level.

    Returns
    -------
    Accuracy

    Raises
    ------
    ValueError
        For counts that are not integers with ``0 <= correct <= n``, ``n >= 1``, or a
        confidence outside (0, 1).

    Notes
    -----
    Introduced in Chapter 3.
    """
    from scipy.stats import binomtest

    for name, value in (("correct", correct), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, Integral):
            raise ValueError(f"{name} must be an integer count, got {value!r}")
    if n < 1 or not 0 <= correct <= n:
        raise ValueError(f"expected 0 <= correct <= n and n >= 1, got correct={correct}, n={n}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    interval = binomtest(int(correct), int(n)).proportion_ci(
        confidence_level=confidence, method="wilson"
    )
    return Accuracy(int(correct), int(n), float(interval.low), float(interval.high), confidence)


def from_predictions(predicted, truth, confidence: float = 0.95) -> Accuracy:
    """:func:`wilson` of the predictions that equal the truth (equal-length sequences)."""
    import numpy as np

    predicted, truth = np.asarray(predicted), np.asarray(truth)
    if predicted.shape != truth.shape or predicted.ndim != 1 or not len(truth):
        raise ValueError(
            f"expected two non-empty 1-D label arrays of one length, got {predicted.shape} "
            f"and {truth.shape}"
        )
    right = predicted == truth
    return replace(wilson(int(right.sum()), len(truth), confidence), right=right)


def compare(name_a: str, a: Accuracy, name_b: str, b: Accuracy, unit: str = "test crystals") -> str:
    """A sentence comparing two accuracies that ranks them only if their intervals are apart.

    ``unit`` names what was counted (default ``"test crystals"``).

    Notes
    -----
    Introduced in Chapter 3.
    """
    level = f"{100 * a.confidence:.0f} %"
    if a.overlaps(b):
        return (
            f"{name_a} ({100 * a.value:.1f} %) and {name_b} ({100 * b.value:.1f} %) cannot be "
            f"told apart on {a.n} and {b.n} {unit}: their {level} intervals overlap"
        )
    (hi_name, hi), (lo_name, lo) = sorted(
        [(name_a, a), (name_b, b)], key=lambda item: item[1].value, reverse=True
    )
    return (
        f"{hi_name} ({100 * hi.value:.1f} %) is ahead of {lo_name} ({100 * lo.value:.1f} %): "
        f"their {level} intervals do not overlap"
    )


def paired_difference(a, b, seed: int = 0, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean of ``a - b`` over paired samples, with a bootstrap interval (SciPy's BCa).

    For scores that are not accuracies -- e.g. two networks' peak overlaps on the
    same crystals -- resampling the crystals gives the interval of the mean
    difference.

    Returns
    -------
    (mean, low, high) : tuple of float

    Notes
    -----
    Introduced in Chapter 4.
    """
    import numpy as np
    from scipy.stats import bootstrap

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(
            f"expected two 1-D arrays of one length >= 2 (paired samples), got {a.shape}, {b.shape}"
        )
    differences = a - b
    mean = float(np.mean(differences))
    if np.ptp(differences) <= 1e-9 * max(1.0, abs(mean)):  # no spread to resample
        return mean, mean, mean
    result = bootstrap(
        (a, b),
        lambda x, y, axis=-1: np.mean(x - y, axis=axis),
        paired=True,
        confidence_level=confidence,
        n_resamples=2000,
        random_state=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return mean, float(interval.low), float(interval.high)


def mean_interval(values, seed: int = 0, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean of per-crystal scores with a bootstrap interval over crystals (SciPy's BCa).

    Returns
    -------
    (mean, low, high) : tuple of float

    Notes
    -----
    Introduced in Chapter 4.
    """
    import numpy as np
    from scipy.stats import bootstrap

    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or len(values) < 2 or not np.isfinite(values).all():
        raise ValueError(f"expected a 1-D array of >= 2 finite scores, got shape {values.shape}")
    mean = float(values.mean())
    if np.ptp(values) <= 1e-9 * max(1.0, abs(mean)):  # no spread to resample
        return mean, mean, mean
    result = bootstrap((values,), np.mean, confidence_level=confidence, n_resamples=2000,
                       random_state=np.random.default_rng(seed))  # fmt: skip
    return mean, float(result.confidence_interval.low), float(result.confidence_interval.high)


def compare_paired(name_a: str, a, name_b: str, b, seed: int = 0) -> str:
    """A sentence comparing paired scores that ranks them only if the interval excludes 0.

    Notes
    -----
    Introduced in Chapter 4.
    """
    import numpy as np

    mean, low, high = paired_difference(a, b, seed)
    interval = (
        f"{name_a} minus {name_b}: {mean:+.2f} on average, 95 % interval "
        f"[{low:+.2f}, {high:+.2f}] over {len(np.asarray(a))} crystals"
    )
    if low <= 0 <= high:
        return f"{name_a} and {name_b} cannot be told apart on these crystals ({interval})"
    ahead, behind = (name_a, name_b) if mean > 0 else (name_b, name_a)
    return f"{ahead} scores higher than {behind} ({interval})"


@dataclass(frozen=True)
class PairedTest:
    """Two classifiers on the same crystals: the difference and McNemar's exact test.

    Attributes
    ----------
    n : int
        Crystals both answered.
    accuracy_a, accuracy_b : float
        Their accuracies, fractions.
    difference, low, high : float
        ``accuracy_a - accuracy_b`` with its paired bootstrap interval (fractions).
    only_a, only_b : int
        Crystals only ``a`` gets right, and only ``b``: the discordant pairs.
    p_value : float
        Two-sided exact McNemar test: the binomial test of ``only_a`` out of
        ``only_a + only_b`` against one half (1 when there is no discordant pair).
    """

    n: int
    accuracy_a: float
    accuracy_b: float
    difference: float
    low: float
    high: float
    only_a: int
    only_b: int
    p_value: float

    def apart(self, alpha: float = 0.05) -> bool:
        """Whether the two differ: McNemar's p below ``alpha`` and the interval excludes 0."""
        return self.p_value < alpha and not (self.low <= 0 <= self.high)


def paired_test(right_a, right_b, seed: int = 0, confidence: float = 0.95) -> PairedTest:
    """Compare two classifiers on the same crystals from their per-crystal correctness.

    Parameters
    ----------
    right_a, right_b : array_like of bool
        ``(N,)``: whether each classifier got crystal ``i`` right (the same crystals,
        in the same order).
    seed : int, default 0
        Seed of the bootstrap.
    confidence : float, default 0.95

    Returns
    -------
    PairedTest

    Notes
    -----
    Introduced in Chapter 3.
    """
    import numpy as np
    from scipy.stats import binomtest

    a, b = np.asarray(right_a), np.asarray(right_b)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2 or a.dtype != bool or b.dtype != bool:
        raise ValueError(
            "expected two boolean arrays of one length >= 2 (per-crystal correctness of the "
            f"same crystals), got {a.dtype} {a.shape} and {b.dtype} {b.shape}"
        )
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    p = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    difference, low, high = paired_difference(a, b, seed, confidence)
    return PairedTest(len(a), float(a.mean()), float(b.mean()), difference, low, high,
                      only_a, only_b, float(p))  # fmt: skip


def compare_correct(name_a: str, right_a, name_b: str, right_b, unit: str = "test crystals",
                    seed: int = 0) -> str:  # fmt: skip
    """A sentence comparing two classifiers on the same crystals, ranking them only if
    :meth:`PairedTest.apart`, with the difference, its interval and McNemar's p.

    Notes
    -----
    Introduced in Chapter 3.
    """
    test = paired_test(right_a, right_b, seed)
    evidence = (
        f"{name_a} minus {name_b} is {100 * test.difference:+.1f} points, 95 % interval "
        f"[{100 * test.low:+.1f}, {100 * test.high:+.1f}], and McNemar's exact test on the "
        f"{test.only_a + test.only_b} {unit} only one of them gets right gives "
        f"p = {test.p_value:.2g}"
    )
    a = f"{name_a} ({100 * test.accuracy_a:.1f} %)"
    b = f"{name_b} ({100 * test.accuracy_b:.1f} %)"
    if not test.apart():
        return f"{a} and {b} cannot be told apart on the same {test.n} {unit}: {evidence}"
    ahead, behind = (a, b) if test.difference > 0 else (b, a)
    return f"{ahead} is ahead of {behind} on the same {test.n} {unit}: {evidence}"


# ---------------------------------------------------------------------------
# How sure a classifier is of one answer: Monte Carlo samples of its probabilities
# ---------------------------------------------------------------------------


def _samples(probabilities):
    import numpy as np

    p = np.asarray(probabilities, dtype=float)
    if p.ndim == 2:
        p = p[None]
    if p.ndim != 3 or p.shape[-1] < 2 or not np.isfinite(p).all() or (p < 0).any():
        raise ValueError("expected probabilities of shape (passes, N, n_classes) or "
                         f"(N, n_classes), non-negative and finite, got {p.shape}")  # fmt: skip
    if not np.allclose(p.sum(axis=-1), 1, atol=1e-4):
        raise ValueError("probabilities must sum to 1 over the classes")
    return p


def _entropy(p):
    import numpy as np

    return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0), axis=-1)


def predictive_entropy(probabilities):
    """Entropy of the mean predicted distribution of each crystal, in nats.

    Parameters
    ----------
    probabilities : array_like
        ``(passes, N, n_classes)`` Monte Carlo samples (e.g.
        :func:`crystal_course.models.mc_dropout_samples`) or ``(N, n_classes)``.

    Returns
    -------
    numpy.ndarray
        ``(N,)``, from 0 (certain) to ``log(n_classes)`` (uniform).

    Notes
    -----
    Introduced in Chapter 8.
    """
    return _entropy(_samples(probabilities).mean(axis=0))


def mutual_information(probabilities):
    """Mutual information between the answer and the network's weights, in nats.

    The predictive entropy minus the mean entropy of the single passes: the part of
    the uncertainty that comes from the passes disagreeing (the model's doubt), not
    from each pass being unsure. Zero with one pass or when every pass agrees.

    Notes
    -----
    Introduced in Chapter 8.
    """
    p = _samples(probabilities)
    return _entropy(p.mean(axis=0)) - _entropy(p).mean(axis=0)


def auroc(scores_in, scores_out, seed: int = 0, confidence: float = 0.95):
    """Area under the ROC curve for telling out-of-class from in-class crystals, with a
    bootstrap interval (SciPy's BCa, each group resampled on its own).

    A higher score must mean "more likely out of class" (e.g. the predictive
    entropy). 1 separates perfectly, 0.5 is chance.

    Returns
    -------
    (auc, low, high) : tuple of float

    Notes
    -----
    Introduced in Chapter 8.
    """
    import numpy as np
    from scipy.stats import bootstrap, mannwhitneyu

    a, b = np.asarray(scores_in, dtype=float), np.asarray(scores_out, dtype=float)
    if a.ndim != 1 or b.ndim != 1 or len(a) < 2 or len(b) < 2:
        raise ValueError(f"expected two 1-D arrays of >= 2 scores, got {a.shape}, {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("scores must be finite")

    def area(inside, outside, axis=-1):
        return mannwhitneyu(outside, inside, axis=axis).statistic / (
            inside.shape[axis] * outside.shape[axis])  # fmt: skip

    value = float(area(a, b))
    if np.ptp(np.r_[a, b]) == 0 or value in (0.0, 1.0):
        return value, value, value  # no spread, or a perfect separation: no resampling
    result = bootstrap((a, b), area, confidence_level=confidence, n_resamples=2000,
                       random_state=np.random.default_rng(seed))  # fmt: skip
    return value, float(result.confidence_interval.low), float(result.confidence_interval.high)


def spread_verdict(spread_right, spread_wrong, seed: int = 0) -> tuple[str, tuple]:
    """Does a wider Monte Carlo spread single out the mistakes? A sentence and its AUROC.

    The score of a crystal is its spread (e.g. the largest standard deviation of its
    class probabilities over the dropout passes). :func:`auroc` of the misclassified
    against the correctly classified crystals, with its 95 % bootstrap interval, decides:
    "wider" only when the whole interval is above 0.5, "narrower" only when it is below,
    otherwise the spread does not tell them apart on this test set.

    Parameters
    ----------
    spread_right, spread_wrong : array_like
        Spreads of the correctly and wrongly classified crystals.
    seed : int, default 0
        Seeds the bootstrap.

    Returns
    -------
    sentence : str
    auc : tuple of float or None
        ``(auc, low, high)``; ``None`` with fewer than two crystals on a side.

    Notes
    -----
    Introduced in Chapter 6.
    """
    import numpy as np

    right, wrong = np.ravel(spread_right), np.ravel(spread_wrong)
    if min(len(right), len(wrong)) < 2:
        return ("With fewer than two crystals on one side (right or wrong), this run cannot "
                "say whether the spread singles out the mistakes."), None  # fmt: skip
    auc = auroc(right, wrong, seed=seed)
    share = f"(AUROC {auc[0]:.2f}, 95 % interval [{auc[1]:.2f}, {auc[2]:.2f}])"
    if auc[1] > 0.5:
        return (f"Here the mistakes carry wider bars {share}, so a wide bar is a reason to "
                "check a crystal by other means."), auc  # fmt: skip
    if auc[2] < 0.5:
        return (f"Here the mistakes carry narrower bars {share}: the network is surest "
                "where it is wrong, so a narrow bar is no guarantee."), auc  # fmt: skip
    return (f"Here the spread does not tell the mistakes from the right answers {share}: a "
            "small, briefly trained network is not calibrated, so a narrow bar is no "
            "guarantee of a right answer."), auc  # fmt: skip


@dataclass(frozen=True)
class UnknownRule:
    """Call an answer "unknown" when its score exceeds a threshold chosen on validation data.

    Attributes
    ----------
    threshold : float
        Scores above it are "unknown".
    false_unknown : float
        Share of in-class validation crystals the rule flags (its target).

    Notes
    -----
    Introduced in Chapter 8.
    """

    threshold: float
    false_unknown: float

    def flags(self, scores):
        """Which crystals the rule calls unknown (bool array)."""
        import numpy as np

        return np.asarray(scores, dtype=float) > self.threshold

    def error_rates(self, scores_in, scores_out) -> tuple[Accuracy, Accuracy]:
        """On test data: in-class crystals wrongly called unknown, and out-of-class
        crystals missed, each with its Wilson interval (as :class:`Accuracy`)."""
        flagged_in, flagged_out = self.flags(scores_in), self.flags(scores_out)
        return (wilson(int(flagged_in.sum()), len(flagged_in)),
                wilson(int((~flagged_out).sum()), len(flagged_out)))  # fmt: skip


def unknown_rule(validation_scores_in, false_unknown: float = 0.05) -> UnknownRule:
    """The threshold that calls ``false_unknown`` of the in-class validation crystals unknown.

    Chosen on validation data only, so that its error rates on test data are honest.

    Notes
    -----
    Introduced in Chapter 8.
    """
    import numpy as np

    scores = np.asarray(validation_scores_in, dtype=float)
    if scores.ndim != 1 or len(scores) < 2 or not np.isfinite(scores).all():
        raise ValueError(f"expected >= 2 finite validation scores, got shape {scores.shape}")
    if not 0 < false_unknown < 1:
        raise ValueError(f"false_unknown must be in (0, 1), got {false_unknown!r}")
    return UnknownRule(float(np.quantile(scores, 1 - false_unknown)), float(false_unknown))


def unknown_summary(scores_in, scores_out: dict, threshold: float | None = None,
                    seed: int = 0) -> dict:  # fmt: skip
    """How well a score tells crystals of no known class from in-class ones.

    Parameters
    ----------
    scores_in : array-like
        Scores (e.g. predictive entropy, nats) of in-class test crystals.
    scores_out : dict
        ``{case: scores}`` of crystals of no known class, case by case.
    threshold : float, optional
        An "unknown" threshold chosen on validation data (:func:`unknown_rule`).
    seed : int, default 0
        Seeds the bootstrap of every :func:`auroc`.

    Returns
    -------
    dict
        ``"all"`` and each case: ``(auc, low, high)`` of :func:`auroc` against the
        in-class scores (``"all"`` pools the cases); with a threshold also
        ``"false unknown"`` (in-class crystals flagged) and ``"missed"`` (unknowns
        not flagged), each an :class:`Accuracy` whose value is the rate.

    Notes
    -----
    Introduced in Chapter 8.
    """
    import numpy as np

    if not scores_out:
        raise ValueError("scores_out must hold at least one case of crystals of no known class")
    pooled = np.concatenate([np.asarray(v, dtype=float) for v in scores_out.values()])
    row = {"all": auroc(scores_in, pooled, seed)}
    row.update({case: auroc(scores_in, v, seed) for case, v in scores_out.items()})
    if threshold is not None:
        rule = UnknownRule(float(threshold), float("nan"))
        row["false unknown"], row["missed"] = rule.error_rates(scores_in, pooled)
    return row
