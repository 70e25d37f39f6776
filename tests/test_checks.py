"""Exercise checkers accept right answers, reject wrong ones with a hint."""

from __future__ import annotations

import math

import numpy as np
import pytest

from crystal_course import checks
from crystal_course.diffraction import Detector


def test_ewald_ratio():
    assert checks.check_ewald_ratio(20.0) == 20.0
    with pytest.raises(AssertionError, match="Hint"):
        checks.check_ewald_ratio(2 * math.pi * 20.0)  # forgot that 2*pi cancels
    # The answer follows the detector's wavelength.
    assert checks.check_ewald_ratio(10.0, Detector(wavelength=1e-11)) == 10.0


def test_spot_radius_accepts_an_independent_derivation():
    d = 1.0
    det = Detector()
    # Small-angle estimate L * lambda / d, corrected below 0.5 % by tan/sin terms.
    theta = math.asin(0.05 / (2 * d))
    radius = det.distance * math.tan(2 * theta) / det.pixel_size
    checks.check_spot_radius(radius, d)
    with pytest.raises(AssertionError):
        checks.check_spot_radius(radius * 1.05, d)


@pytest.mark.parametrize(
    "bad, error", [(..., TypeError), ("20", TypeError), (True, TypeError), (math.nan, ValueError)]
)
def test_placeholder_and_bad_types_get_a_clear_error(bad, error):
    with pytest.raises(error):
        checks.check_ewald_ratio(bad)


@pytest.mark.parametrize(
    "lattice, absent",
    [
        ("sc", set()),
        ("bcc", {(1, 0, 0), (1, 1, 1), (2, 1, 0)}),
        ("fcc", {(1, 0, 0), (1, 1, 0), (2, 1, 0), (2, 1, 1)}),
        ("diamond", {(1, 0, 0), (1, 1, 0), (2, 0, 0), (2, 1, 0), (2, 1, 1), (2, 2, 2)}),
    ],
)
def test_absent_reflections_follow_the_textbook_rules(lattice, absent):
    """bcc: h+k+l odd; fcc: mixed parity; diamond: fcc plus h+k+l = 4n+2 with all even."""
    assert checks.absent_reflections(lattice) == absent
    assert checks.check_absent_reflections(sorted(absent), lattice) == absent
    with pytest.raises(AssertionError, match="Hint"):
        checks.check_absent_reflections(absent ^ {(2, 2, 0)}, lattice)


def test_absent_reflections_rejects_bad_input():
    with pytest.raises(ValueError, match="lattice"):
        checks.absent_reflections("hcp")
    with pytest.raises(TypeError, match="placeholder"):
        checks.check_absent_reflections(..., "bcc")
    with pytest.raises(TypeError, match="triples"):
        checks.check_absent_reflections([1, 2], "bcc")


def test_ring_fraction():
    import numpy as np

    rows, cols = np.indices((64, 64))
    r = np.hypot(rows - 31.5, cols - 31.5)
    assert checks.check_ring_fraction(((r > 10) & (r < 30)).mean()) == pytest.approx(0.6133, 1e-3)
    with pytest.raises(AssertionError):
        checks.check_ring_fraction(0.5)


def test_chapter_2_checkers(tmp_path):
    threshold = checks.loose_bcc_threshold()
    assert 1.0 < threshold < 1.1
    assert checks.check_loose_threshold(threshold) == threshold
    with pytest.raises(AssertionError):
        checks.check_loose_threshold(1.2)
    assert checks.check_single_vacancy_group(221) == 221
    with pytest.raises(AssertionError, match="translations"):
        checks.check_single_vacancy_group(225)
    with pytest.raises(TypeError):
        checks.check_single_vacancy_group(...)
    import hashlib

    from crystal_course import dataset

    path = dataset.generate(tmp_path / "ds", 1, 0, n_atoms=40, n_jobs=1, progress=False)
    digest = hashlib.sha256((path / "train-00000.npz").read_bytes()).hexdigest()
    assert checks.check_chunk_sha256(digest.upper(), path, "train-00000.npz") == digest
    with pytest.raises(AssertionError, match="bytes"):
        checks.check_chunk_sha256("0" * 64, path, "train-00000.npz")
    with pytest.raises(ValueError, match=r"one of the dataset's chunks \['train-00000.npz'\]"):
        checks.check_chunk_sha256(digest, path, "train-00009.npz")
    with pytest.raises(FileNotFoundError, match="a dataset directory"):
        checks.check_chunk_sha256(digest, tmp_path / "nope", "train-00000.npz")


def test_chapter_3_checkers():
    from crystal_course.evaluation import SweepResult
    from crystal_course.models import ziletti_cnn

    assert checks.check_conv_parameters(7 * 7 * 32 * 16 + 16, "conv3") == 25_104
    assert checks.check_conv_parameters(7 * 7 * 3 * 32 + 32, "conv1") == 4_736
    with pytest.raises(AssertionError, match="bias"):
        checks.check_conv_parameters(7 * 7 * 32 * 16, "conv3")
    # Receptive fields by the textbook recursion: 7, 13, 14 (pool), ..., 88.
    model = ziletti_cnn()
    assert [checks.receptive_field(model, f"conv{i}") for i in range(1, 7)] == [
        7,
        13,
        26,
        38,
        64,
        88,
    ]
    assert checks.receptive_field(model, "pool1") == 14
    assert checks.check_receptive_field(88) == 88
    with pytest.raises(ValueError, match="unknown layer"):
        checks.receptive_field(model, "conv9")
    # 3x3 kernels: every conv weight count scales by 9/49, the dense layers do not.
    conv_weights = sum(
        7 * 7 * a * b for a, b in [(3, 32), (32, 32), (32, 16), (16, 16), (16, 8), (8, 8)]
    )
    expected = model.count_params() - conv_weights + conv_weights * 9 // 49
    assert checks.check_kernel_parameters(expected, 3) == expected
    sweep = SweepResult(
        "displacements",
        (0.0, 0.005, 0.01),
        (1e-3, 0.1),
        np.array([[1, 0, 0], [1, 0.8, 0.2]]),
        {},
        10,
    )
    assert checks.breaking_level(sweep.levels, sweep.spglib[1]) == 0.01
    assert checks.breaking_level([0, 1], [1, 1]) == float("inf")
    assert checks.check_breaking_level(0.01, sweep, 0.1) == 0.01
    with pytest.raises(AssertionError):
        checks.check_breaking_level(0.005, sweep, 0.1)
    with pytest.raises(ValueError, match="symprec"):
        checks.check_breaking_level(0.01, sweep, 0.2)


def test_chapter_4_checkers():
    from crystal_course.diffraction import fingerprint, ring_mask
    from crystal_course.explain import peak_mask
    from crystal_course.structures import reference_structure

    image = fingerprint(reference_structure(225))
    share = float(peak_mask(image)[ring_mask(64)].mean())
    assert checks.check_peak_share(share) == pytest.approx(share)
    with pytest.raises(AssertionError, match="fraction"):
        checks.check_peak_share(float(peak_mask(image).sum()))
    with pytest.raises(AssertionError, match="ring"):  # the share of the whole image
        checks.check_peak_share(float(peak_mask(image).mean()))
    erased = checks.erased_peak_probability()
    assert 0 <= erased < 0.5  # without its peaks the fcc fingerprint is no longer fcc
    assert checks.check_erased_probability(erased) == pytest.approx(erased)
    with pytest.raises(AssertionError):
        checks.check_erased_probability(1.0)
    from crystal_course.explain import activations
    from crystal_course.models import load_pretrained

    means = activations(load_pretrained(), image, ["conv1"])["conv1"][0].mean(axis=(0, 1))
    assert checks.check_dominant_filter(int(means.argmax())) == int(means.argmax())
    with pytest.raises(AssertionError, match="argmax"):
        checks.check_dominant_filter(int(means.argmin()))


def test_chapter_5_checkers():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([1, 1, 0, 2, 2, 2])
    assert checks.check_matching(5 / 6, y_true, y_pred) == pytest.approx(5 / 6)
    with pytest.raises(AssertionError, match="permutation"):
        checks.check_matching(0.5, y_true, y_pred)
    ratio = np.array([0.7, 0.15, 0.1, 0.05])
    assert checks.check_components(3, ratio, 0.9) == 3
    with pytest.raises(AssertionError):
        checks.check_components(2, ratio, 0.9)
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 20)
    points = np.array([[0, 0], [9, 9]])[y] + rng.normal(size=(40, 2))
    assert checks.check_k_accuracy(1.0, points, y, k=2) == 1.0
    with pytest.raises(AssertionError, match="unmatched"):
        checks.check_k_accuracy(1.0, points, y, k=3)


def test_chapter_6_checkers():
    square = np.array([[0, 0], [0, 10], [10, 0], [10, 10], [5, 5]], dtype=float)
    assert checks.check_line_count(8, square, factor=1.7) == 8  # 4 spokes + 4 edges
    assert checks.check_line_count(4, square, factor=1.3) == 4  # spokes only
    with pytest.raises(AssertionError, match="min_separation"):
        checks.check_line_count(10, square, factor=1.7)
    p = np.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7], [0.2, 0.5, 0.3]])
    y = np.array([1, 2, 0])
    assert checks.check_top_k(2 / 3, p, y, k=2) == pytest.approx(2 / 3)
    with pytest.raises(AssertionError, match="top-1"):
        checks.check_top_k(1.0, p, y, k=1)
    assert checks.dense_block_channels(16, 8, 3) == 16 + 3 * 8
    assert checks.check_block_channels(64 + 6 * 32, 64, 32, 6) == 256
    with pytest.raises(AssertionError, match="concatenates"):
        checks.check_block_channels(32 * 6, 64, 32, 6)


def test_a7_a10_correlation_matches_an_independent_build():
    from ase.build import bulk

    from crystal_course.diffraction import fingerprint
    from crystal_course.structures import (
        reference_structure,
        space_group,
        standard_conventional_cell,
        supercell,
    )

    mercury = supercell(standard_conventional_cell(bulk("Hg")), 250)
    assert space_group(mercury) == 166  # A10 is rhombohedral, like A7
    a, b = fingerprint(mercury).ravel(), fingerprint(reference_structure(166)).ravel()
    expected = float(((a - a.mean()) @ (b - b.mean())) / (len(a) * a.std() * b.std()))
    assert checks.check_a7_a10(expected) == pytest.approx(expected)
    with pytest.raises(AssertionError, match="Hint"):
        checks.check_a7_a10(expected + 0.05)
    with pytest.raises(TypeError, match="placeholder"):
        checks.check_a7_a10(...)


def test_model_accuracy_is_read_off_the_model():
    from crystal_course.models import ziletti_cnn
    from crystal_course.training import evaluate

    model = ziletti_cnn(seed=0)
    rng = np.random.default_rng(0)
    x, y = rng.random((12, 64, 64, 3), dtype=np.float32), rng.integers(0, 7, 12)
    accuracy = evaluate(model, x, y)[0]
    assert checks.check_model_accuracy(accuracy, model, x, y) == pytest.approx(accuracy)
    with pytest.raises(AssertionError, match="accuracy of your model"):
        checks.check_model_accuracy(accuracy + 0.25, model, x, y)
    with pytest.raises(TypeError, match="trained keras model"):
        checks.check_model_accuracy(0.5, ..., x, y)


def test_shaping_sweep_finds_the_setting_that_keeps_groups_together():
    from crystal_course.shaping import shape_patterns
    from crystal_course.zone_axis import nearest_other

    # Two groups of spot nets (rows 10 or 15 px apart, columns 10 px), each crystal shifted
    # by a pixel: the raw spots of two crystals never overlap, the drawn lines do.
    patterns = np.zeros((6, 48, 48, 3), dtype=np.uint8)
    for k in range(6):
        row_step, shift = (10, 15)[k % 2], k // 2
        for i in range(4, 44, row_step):
            for j in range(4, 44, 10):
                patterns[k, i + shift, j + shift, :] = 200
    labels = np.array([k % 2 for k in range(6)])
    grid = {"thresholds": (50, 250), "factors": (1.0, 1.7)}
    rates = checks.shaping_sweep(patterns, labels, **grid)
    for (threshold, factor), rate in rates.items():
        shaped = shape_patterns(patterns, threshold=threshold, factor=factor)
        assert rate == np.mean(labels[nearest_other(shaped)] == labels)
    assert rates[50, 1.0] > rates[250, 1.0]  # no node passes 250: no lines, no help
    best = max(rates, key=rates.get)
    assert checks.check_shaping_sweep(best, patterns, labels, **grid) == best
    worse = [key for key, rate in rates.items() if rate < rates[best]]
    assert worse
    for key in worse:
        with pytest.raises(AssertionError, match="not the best"):
            checks.check_shaping_sweep(key, patterns, labels, **grid)
    with pytest.raises(AssertionError, match="not on the grid"):
        checks.check_shaping_sweep((40, 1.7), patterns, labels, **grid)
    with pytest.raises(TypeError, match="placeholder"):
        checks.check_shaping_sweep(..., patterns, labels)
    with pytest.raises(TypeError, match="tuple"):
        checks.check_shaping_sweep([50, 1.0], patterns, labels, **grid)


def test_zone_axis_view_accepts_any_new_zone_axis_on_the_beam(capsys):
    cell = checks._bct_indium_cell()
    a, c = np.linalg.norm(cell[0]), np.linalg.norm(cell[2])
    tilt = float(np.degrees(np.arctan(a / (3 * c))))
    assert checks.check_zone_axis_view(("x", tilt), [0, 1, 3]) == (0, 1, 3)
    assert checks.check_zone_axis_view(("x", tilt), np.array([0, -1, -3])) == (0, -1, -3)
    assert "Correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="degrees from"):
        checks.check_zone_axis_view(("x", tilt + 2), [0, 1, 3])
    with pytest.raises(AssertionError, match="showed already"):
        checks.check_zone_axis_view(("x", 33.3), [0, 1, 1])
    with pytest.raises(AssertionError, match="showed already"):
        checks.check_zone_axis_view(None, [0, 0, 1])
    with pytest.raises(TypeError, match="placeholder"):
        checks.check_zone_axis_view(..., [0, 1, 3])
    with pytest.raises(ValueError, match="integers"):
        checks.check_zone_axis_view(("x", tilt), [0, 1.5, 3])
    with pytest.raises(ValueError, match="-3 to 3"):
        checks.check_zone_axis_view(("x", tilt), [0, 1, 4])
    with pytest.raises(TypeError, match="rotation"):
        checks.check_zone_axis_view("x", [0, 1, 3])


def test_tolerance_window_needs_the_tight_tolerance_blind_and_the_loose_one_seeing():
    tight, loose = checks.tolerance_window_rates(0.005)
    assert tight == 0 and loose >= 0.5  # inside the window
    assert checks.check_tolerance_window(0.005) == 0.005
    with pytest.raises(AssertionError, match="window needs"):
        checks.check_tolerance_window(0.05)  # both blind
    with pytest.raises(ValueError, match="fraction of NN"):
        checks.check_tolerance_window(0.0)
    with pytest.raises(TypeError, match="placeholder"):
        checks.check_tolerance_window(...)


def test_spglib_ahead_follows_the_paired_tests():
    from crystal_course.uncertainty import paired_test

    cnn = np.ones(20, bool)
    even = {lv: paired_test(cnn, cnn) for lv in (0.0, 0.005, 0.01, 0.03, 0.05)}
    assert checks.check_spglib_ahead(None, even) is None
    spglib = np.ones(20, bool)
    worse = cnn.copy()
    worse[:12] = False
    ahead = {**even, 0.01: paired_test(spglib, worse)}  # spglib right on 12 more crystals
    assert checks.check_spglib_ahead(0.01, ahead) == 0.01
    with pytest.raises(AssertionError, match="spglib ahead at"):
        checks.check_spglib_ahead(None, ahead)
    with pytest.raises(AssertionError, match="does not put spglib ahead"):
        checks.check_spglib_ahead(0.03, ahead)
    with pytest.raises(AssertionError, match="at least five levels"):
        checks.check_spglib_ahead(None, {0.0: even[0.0], 0.05: even[0.05]})
    with pytest.raises(TypeError, match="paired_test"):
        checks.check_spglib_ahead(None, {**even, 0.02: 0.5})
    with pytest.raises(TypeError, match="placeholder"):
        checks.check_spglib_ahead(None, ...)


def test_blind_map_must_ignore_the_peaks_but_live_in_the_ring():
    from crystal_course.diffraction import ring_mask
    from crystal_course.explain import peak_mask

    ring = ring_mask(64).astype(float)
    assert checks.check_blind_map(ring) >= 1.5
    with pytest.raises(AssertionError, match="not blind"):
        checks.check_blind_map(peak_mask(checks._fcc_fingerprint()).astype(float))
    with pytest.raises(AssertionError, match="whole image"):
        checks.check_blind_map(np.ones((64, 64)))  # blind, but scores 1 everywhere
    with pytest.raises(TypeError, match="64, 64"):
        checks.check_blind_map(np.ones((32, 32)))
    with pytest.raises(ValueError, match="zero everywhere"):
        checks.check_blind_map(np.zeros((64, 64)))


def test_embedding_clusters_scores_the_students_embedding():
    y = np.repeat([0, 1, 2], 10)
    centres = np.array([[0, 0], [10, 0], [0, 10]], float)
    points = centres[y] + np.random.default_rng(0).normal(0, 0.5, (30, 2))
    assert checks.check_embedding_clusters(points, y) == 1.0
    with pytest.raises(AssertionError, match="below 85 %"):
        checks.check_embedding_clusters(np.random.default_rng(1).normal(size=(30, 2)), y)
    with pytest.raises(TypeError, match=r"\(30, 2\)"):
        checks.check_embedding_clusters(points[:, :1], y)
    with pytest.raises(ValueError, match="NaN"):
        checks.check_embedding_clusters(np.full((30, 2), np.nan), y)


def test_tied_methods_recomputes_the_test_from_the_card():
    from conftest import zone_card

    from crystal_course.uncertainty import paired_test

    def card(a, b):
        return zone_card({("spots", "cnn"): [a], ("shaped", "msdn"): [b]})

    a = np.array([True] * 15 + [False] * 5)
    b = np.array([True] * 14 + [False] * 6)
    pair = (("spots", "cnn"), ("shaped", "msdn"))
    tied = card(a, b)
    assert checks.check_tied_methods(pair, "", paired_test(a, b), card=tied).n == 20
    with pytest.raises(AssertionError, match="not the paired test"):
        checks.check_tied_methods(pair, "", paired_test(b, a), card=tied)
    far = card(np.ones(20, bool), np.zeros(20, bool))
    with pytest.raises(AssertionError, match="separates them"):
        checks.check_tied_methods(pair, "", paired_test(np.ones(20, bool), np.zeros(20, bool)),
                                  card=far)  # fmt: skip
    with pytest.raises(ValueError, match="no 20-group runs"):
        checks.check_tied_methods(pair, "40 train/group", paired_test(a, b), card=tied)
    with pytest.raises(TypeError, match="two \\(inputs, model\\)"):
        checks.check_tied_methods("spots", "", paired_test(a, b), card=tied)


def test_check_seed_interval_reads_the_first_card():
    from crystal_course import reproduction

    card = reproduction.card()
    c = reproduction.compare_cells(card, ("grey", "msdn"), ("spots", "cnn"))
    right = (100 * c.seed_low, 100 * c.seed_high)
    assert checks.check_seed_interval(right) == pytest.approx(right)
    with pytest.raises(AssertionError, match="points"):
        checks.check_seed_interval((c.seed_low, c.seed_high))  # fractions, not points
    with pytest.raises(AssertionError, match="standard error"):
        checks.check_seed_interval((right[0] - 1, right[1] + 1))
    for bad in (..., "ab", (1, 2, 3), 5.0):
        with pytest.raises(TypeError, match="seed_interval"):
            checks.check_seed_interval(bad)


def test_check_learning_slope_fits_the_last_half():
    curve = np.r_[np.linspace(0.1, 0.6, 10), 0.6 + 0.005 * np.arange(1, 11)]
    assert checks.check_learning_slope(0.005, curve) == pytest.approx(0.005)
    whole = float(np.polyfit(np.arange(1, 21), curve, 1)[0])
    with pytest.raises(AssertionError, match="last half"):
        checks.check_learning_slope(whole, curve)
    with pytest.raises(TypeError, match="placeholder"):
        checks.check_learning_slope(..., curve)


def test_chapter_8_checkers(capsys):
    from crystal_course import evaluation, uncertainty

    two_theta = math.degrees(2 * math.asin(1.5406 / (2 * 3.615 / 2)))
    assert checks.check_bragg_two_theta(two_theta) == pytest.approx(50.45, abs=0.05)
    with pytest.raises(AssertionError, match="degrees"):
        checks.check_bragg_two_theta(math.radians(two_theta))
    card = evaluation.read_contest_card()
    inside = np.concatenate(
        [
            card["entropy"]["soap_network"][s]
            for s in evaluation.in_class_splits(card, "soap_network")
        ]
    )
    out = np.asarray(card["unknown_entropy"]["soap_network"]["alpha-U (Cmcm)"])
    pairs = ((out[:, None] > inside).sum() + 0.5 * (out[:, None] == inside).sum()) / (
        out.size * inside.size)  # fmt: skip
    assert checks.check_unknown_auroc(pairs) == pytest.approx(uncertainty.auroc(inside, out)[0])
    with pytest.raises(AssertionError, match="tie as 1/2"):
        checks.check_unknown_auroc(1 - pairs + 0.01)
    levels = (0.1, 0.5, 0.9)
    first, answers = checks.first_unknown_level(levels)
    assert len(answers) == 3 and all(a.name is not None for a in answers)
    if first is not None:  # the first flagged level, and none before it
        assert answers[levels.index(first)].unknown
        assert not any(a.unknown for a in answers[: levels.index(first)])
    assert checks.check_first_unknown(first, levels) == first
    wrong = 0.9 if first != 0.9 else 0.1
    with pytest.raises(AssertionError, match="first_unknown"):
        checks.check_first_unknown(wrong, levels)
    with pytest.raises(TypeError, match="placeholder"):
        checks.check_first_unknown(..., levels)
