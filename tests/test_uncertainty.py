"""Wilson intervals and the sentences that compare accuracies (crystal_course.uncertainty)."""

from __future__ import annotations

import numpy as np
import pytest

from crystal_course import uncertainty


def test_wilson_interval_matches_the_closed_form():
    # Wilson score interval, written out: centre and half-width for z = 1.96.
    k, n, z = 66, 70, 1.959963984540054
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    acc = uncertainty.wilson(k, n)
    assert acc.value == pytest.approx(p)
    assert (acc.low, acc.high) == pytest.approx((centre - half, centre + half), rel=1e-9)
    perfect = uncertainty.wilson(70, 70)
    assert perfect.high == 1.0 and 0.94 < perfect.low < 0.95  # 100 % on 70 is not certainty
    assert "94.3 %" in str(acc) and "(66/70)" in str(acc)


@pytest.mark.parametrize(
    "args, fragment",
    [
        ((3, 2), "0 <= correct <= n"),
        ((0, 0), "n >= 1"),
        ((1.5, 2), "integer"),
        ((1, 2, 1.2), "confidence"),
    ],
)
def test_wilson_refuses_bad_counts(args, fragment):
    with pytest.raises(ValueError, match=fragment):
        uncertainty.wilson(*args)


def test_compare_ranks_only_separated_intervals():
    a, b = uncertainty.wilson(70, 70), uncertainty.wilson(66, 70)
    assert a.overlaps(b)
    text = uncertainty.compare("CNN", a, "centroid", b)
    assert "cannot be told apart" in text and "ahead" not in text
    c = uncertainty.wilson(20, 70)
    text = uncertainty.compare("centroid", c, "CNN", a)
    assert text.startswith("CNN (100.0 %) is ahead of centroid (28.6 %)")
    with pytest.raises(ValueError, match="1-D label arrays"):
        uncertainty.from_predictions([1, 2], [1])


def test_paired_difference_and_its_sentence():
    rng = np.random.default_rng(0)
    base = rng.random(30)
    mean, low, high = uncertainty.paired_difference(base + 1 + 0.1 * rng.standard_normal(30), base)
    assert low < mean < high and low > 0.9 and high < 1.1
    text = uncertainty.compare_paired("trained", base + 1, "untrained", base + rng.random(30) * 0.1)
    assert text.startswith("trained scores higher than untrained")
    noise = base + 0.05 * rng.standard_normal(30)
    assert "cannot be told apart" in uncertainty.compare_paired("a", base, "b", noise)
    assert uncertainty.paired_difference(base + 2, base) == pytest.approx((2, 2, 2))
    with pytest.raises(ValueError, match="paired samples"):
        uncertainty.paired_difference([1.0], [2.0])


def test_compare_names_what_was_counted():
    a, b = uncertainty.wilson(280, 280), uncertainty.wilson(279, 280)
    assert "on 280 and 280 clustered crystals" in uncertainty.compare(
        "x", a, "y", b, unit="clustered crystals"
    )


def test_mcnemar_is_the_exact_binomial_test_on_the_discordant_crystals():
    # 8 crystals only A gets right, 1 only B, 11 both: p = 2 (C(9,8) + C(9,9)) / 2^9.
    a = np.array([True] * 8 + [False] * 1 + [True] * 11)
    b = np.array([False] * 8 + [True] * 1 + [True] * 11)
    test = uncertainty.paired_test(a, b)
    assert (test.n, test.only_a, test.only_b) == (20, 8, 1)
    assert test.p_value == pytest.approx(2 * (9 + 1) / 2**9)
    assert test.difference == pytest.approx(7 / 20) and test.low <= 7 / 20 <= test.high
    assert test.apart()  # p = 0.039 and the interval excludes 0
    sentence = uncertainty.compare_correct("A", a, "B", b)
    assert sentence.startswith("A (95.0 %) is ahead of B (60.0 %) on the same 20 test crystals")
    assert "A minus B is +35.0 points" in sentence and "p = 0.039" in sentence
    # The same classifier twice, or one discordant pair: nothing to tell apart.
    same = uncertainty.paired_test(a, a)
    assert same.p_value == 1.0 and not same.apart()
    one = uncertainty.compare_correct("A", np.array([True, True]), "B", np.array([True, False]))
    assert "cannot be told apart" in one
    with pytest.raises(ValueError, match="boolean arrays"):
        uncertainty.paired_test([1, 0, 1], [0, 1, 1])


def test_mean_interval_brackets_the_mean_and_narrows_with_more_crystals():
    rng = np.random.default_rng(0)
    few = rng.normal(2.0, 1.0, 20)
    many = rng.normal(2.0, 1.0, 2000)
    mean, low, high = uncertainty.mean_interval(few)
    assert low < mean < high and mean == pytest.approx(few.mean())
    _, low_many, high_many = uncertainty.mean_interval(many)
    assert high_many - low_many < (high - low) / 5 and low_many < 2.0 < high_many
    assert uncertainty.mean_interval([3.0, 3.0, 3.0]) == (3.0, 3.0, 3.0)
    with pytest.raises(ValueError, match="finite"):
        uncertainty.mean_interval([1.0, np.nan])


def test_entropy_and_mutual_information_split_the_doubt():
    certain = np.array([[[1.0, 0.0, 0.0]]] * 4)  # four passes, one crystal, all sure
    torn = np.array([[[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]]] * 2)  # passes disagree, each sure
    unsure = np.full((4, 1, 3), 1 / 3)  # every pass uniform
    assert uncertainty.predictive_entropy(certain)[0] == pytest.approx(0)
    assert uncertainty.mutual_information(certain)[0] == pytest.approx(0)
    assert uncertainty.predictive_entropy(torn)[0] == pytest.approx(np.log(2))
    assert uncertainty.mutual_information(torn)[0] == pytest.approx(np.log(2))
    assert uncertainty.predictive_entropy(unsure)[0] == pytest.approx(np.log(3))
    assert uncertainty.mutual_information(unsure)[0] == pytest.approx(0, abs=1e-12)
    assert uncertainty.predictive_entropy(unsure[0]).shape == (1,)  # (N, n_classes) too
    for bad in (np.ones((2, 3)), np.full((2, 1), 1.0), -np.eye(3)):
        with pytest.raises(ValueError):
            uncertainty.predictive_entropy(bad)


def test_auroc_and_its_interval():
    rng = np.random.default_rng(0)
    inside, outside = rng.normal(0, 1, 200), rng.normal(2, 1, 100)
    auc, low, high = uncertainty.auroc(inside, outside)
    from scipy.stats import norm

    assert low < auc < high and low < norm.cdf(2 / np.sqrt(2)) < high  # the true AUC, 0.92
    assert uncertainty.auroc([0, 1, 2], [5, 6]) == (1.0, 1.0, 1.0)
    assert uncertainty.auroc([5, 6], [0, 1, 2])[0] == 0.0
    same, lo, hi = uncertainty.auroc(rng.normal(0, 1, 300), rng.normal(0, 1, 300))
    assert lo < 0.5 < hi
    with pytest.raises(ValueError, match=">= 2 scores"):
        uncertainty.auroc([1.0], [2.0, 3.0])


def test_the_spread_verdict_follows_the_auroc_interval():
    # Mistakes with clearly wider spreads, clearly narrower ones, the same spreads, and
    # too few mistakes to say: four different sentences, each only when its test agrees.
    rng = np.random.default_rng(2)
    right = rng.normal(0.05, 0.01, 60)
    wider, auc = uncertainty.spread_verdict(right, rng.normal(0.09, 0.01, 20))
    assert "wider" in wider and auc[1] > 0.5
    narrower, auc = uncertainty.spread_verdict(right, rng.normal(0.01, 0.01, 20))
    assert "narrower" in narrower and auc[2] < 0.5
    same, auc = uncertainty.spread_verdict(right, rng.normal(0.05, 0.01, 20))
    assert "does not tell" in same and auc[1] < 0.5 < auc[2]
    assert f"{auc[0]:.2f}" in same  # the sentence carries its number
    few, auc = uncertainty.spread_verdict(right, [0.2])
    assert "cannot say" in few and auc is None
    assert len({wider, narrower, same, few}) == 4


def test_unknown_rule_is_chosen_on_validation_and_scored_on_test():
    rng = np.random.default_rng(1)
    rule = uncertainty.unknown_rule(rng.normal(0, 1, 1000), false_unknown=0.1)
    assert rule.threshold == pytest.approx(1.2816, abs=0.15)
    wrongly_flagged, missed = rule.error_rates(rng.normal(0, 1, 500), rng.normal(3, 1, 200))
    assert abs(wrongly_flagged.value - 0.1) < 0.05  # the target, up to sampling
    assert missed.value < 0.1
    assert list(rule.flags([rule.threshold - 1, rule.threshold + 1])) == [False, True]
    with pytest.raises(ValueError, match="false_unknown"):
        uncertainty.unknown_rule([0.1, 0.2, 0.3], false_unknown=1.5)


def test_unknown_summary_scores_each_case_and_the_threshold():
    inside = np.linspace(0, 1, 50)
    outside = {"far": np.linspace(2, 3, 10), "mixed": np.linspace(0.5, 1.5, 10)}
    row = uncertainty.unknown_summary(inside, outside, threshold=1.0)
    assert row["far"] == (1.0, 1.0, 1.0)  # separated perfectly
    assert 0.5 < row["mixed"][0] < 1 and row["mixed"][1] <= row["mixed"][0] <= row["mixed"][2]
    assert row["far"][0] > row["all"][0] > row["mixed"][0]
    assert row["false unknown"].correct == 0 and row["false unknown"].n == 50
    assert row["missed"].correct == 5 and row["missed"].n == 20  # 0.5..1.0 are not above 1
    assert "false unknown" not in uncertainty.unknown_summary(inside, outside)
    with pytest.raises(ValueError, match="at least one case"):
        uncertainty.unknown_summary(inside, {})
