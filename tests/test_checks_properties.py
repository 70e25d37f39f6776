"""Exercise checkers, property by property (hypothesis): a right answer passes in any numeric
type a student may hold it in (Python or NumPy scalar, 0-d array), a wrong one fails with a
message, and nothing but a checker's own verdict or a clear error escapes."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crystal_course import checks
from crystal_course.evaluation import SweepResult

# Small and quick: the checkers themselves are what is tested, not hypothesis' search.
FEW = settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))

_SWEEP = SweepResult("vacancies", (0.0, 0.1, 0.2), (1e-3, 0.1),
                     np.array([[1, 0.2, 0], [1, 0.9, 0.3]]), {}, 4)  # fmt: skip
_Y_TRUE, _Y_PRED = np.array([0, 0, 1, 1, 2, 2]), np.array([1, 1, 0, 2, 2, 2])
_RATIO = np.array([0.7, 0.15, 0.1, 0.05])
_CENTRES = np.array([[0, 0], [0, 10], [10, 0], [10, 10], [5, 5]], dtype=float)
_CURVE = 0.5 + 0.01 * np.arange(1, 21) + np.r_[np.zeros(10), 0.02 * np.ones(10)]
_P, _Y = np.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7], [0.2, 0.5, 0.3]]), np.array([1, 2, 0])

# name -> (checker of one answer, right answer, relative tolerance the checker allows)
CHECKERS = {
    "ewald_ratio": (checks.check_ewald_ratio, 20.0, 1e-3),
    "spot_radius": (lambda a: checks.check_spot_radius(a, 1.0), None, 5e-3),
    "ring_fraction": (checks.check_ring_fraction, None, 2e-3),
    "single_vacancy_group": (checks.check_single_vacancy_group, 221, 0),
    "conv_parameters": (checks.check_conv_parameters, 25_104, 0),
    "receptive_field": (checks.check_receptive_field, 88, 0),
    "breaking_level": (lambda a: checks.check_breaking_level(a, _SWEEP, 0.1), 0.2, 1e-9),
    "matching": (lambda a: checks.check_matching(a, _Y_TRUE, _Y_PRED), 5 / 6, 1e-9),
    "components": (lambda a: checks.check_components(a, _RATIO, 0.9), 3, 0),
    "line_count": (lambda a: checks.check_line_count(a, _CENTRES, 1.7), 8, 0),
    "top_k": (lambda a: checks.check_top_k(a, _P, _Y, 2), 2 / 3, 1e-9),
    "block_channels": (lambda a: checks.check_block_channels(a, 64, 32, 6), 256, 0),
    "kernel_parameters": (lambda a: checks.check_kernel_parameters(a, 3), None, 0),
    "k_accuracy": (lambda a: checks.check_k_accuracy(a, _POINTS, _LABELS, k=2), 1.0, 1e-9),
    "loose_threshold": (checks.check_loose_threshold, None, 0.006),
    "peak_share": (checks.check_peak_share, None, 1e-6),
    "erased_probability": (checks.check_erased_probability, None, 1e-3),
    "dominant_filter": (checks.check_dominant_filter, None, 0),
    "a7_a10": (checks.check_a7_a10, None, 1e-3),  # an absolute tolerance: a correlation near 0
    "model_accuracy": (lambda a: checks.check_model_accuracy(a, *_scored()), None, 1e-6),
    "learning_slope": (lambda a: checks.check_learning_slope(a, _CURVE), 0.01, 1e-6),
}


@functools.cache
def _scored():
    """An untrained 2018 CNN and a labelled batch: its accuracy is whatever it is."""
    from crystal_course.models import ziletti_cnn

    rng = np.random.default_rng(0)
    return (
        ziletti_cnn(n_classes=3, seed=0),
        rng.random((12, 64, 64, 3), np.float32),
        np.arange(12) % 3,
    )


# Smallest change of a right answer that the checker must refuse, where not 2 x rtol x value.
_STEP = {"a7_a10": 2e-3}
_LABELS = np.repeat([0, 1], 10)
_POINTS = np.array([[0, 0], [9, 9]])[_LABELS] + np.random.default_rng(0).normal(size=(20, 2))
_RIGHT = {
    "loose_threshold": checks.loose_bcc_threshold,
    "peak_share": lambda: float(
        __import__("crystal_course.explain")
        .explain.peak_mask(checks._fcc_fingerprint())[
            __import__("crystal_course.diffraction").diffraction.ring_mask(64)
        ]
        .mean()
    ),
    "erased_probability": checks.erased_peak_probability,
    "dominant_filter": lambda: checks._dominant_filter("conv1"),
    "a7_a10": checks.a7_a10_correlation,
    "model_accuracy": lambda: __import__("crystal_course.training").training.evaluate(*_scored())[
        0
    ],
    "kernel_parameters": lambda: (
        __import__("crystal_course.models").models.ziletti_cnn(kernel_size=3).count_params()
    ),
    "spot_radius": lambda: checks.bragg_pixel_radius(1.0, checks.Detector()),
    "ring_fraction": lambda: float(
        __import__("crystal_course.diffraction").diffraction.ring_mask(64).mean()
    ),  # fmt: skip
}


def _right(name: str) -> float:
    value = CHECKERS[name][1]
    return _RIGHT[name]() if value is None else value


def _numeric_types(value: float, rtol: float):
    """The value in every numeric type that holds it within the checker's tolerance."""
    kinds = [float, np.float64, lambda v: np.array(v, dtype=np.float64)]
    if float(value).is_integer():
        kinds += [int, np.int64, np.int32, np.int16, lambda v: np.array(v, dtype=np.int64)]
    if math.isclose(float(np.float32(value)), value, rel_tol=rtol) or rtol >= 1e-6:
        kinds.append(np.float32)
    out = []
    for kind in kinds:
        try:
            converted = kind(int(value) if kind in (int, np.int64, np.int32, np.int16) else value)
        except OverflowError:  # e.g. 100,000 parameters do not fit an int16
            continue
        if math.isclose(float(converted), value, rel_tol=max(rtol, 1e-15)):
            out.append(converted)
    return out


@pytest.mark.parametrize("name", sorted(CHECKERS))
def test_a_right_answer_passes_in_any_numeric_type(name, capsys):
    check, _, rtol = CHECKERS[name]
    right = _right(name)
    for answer in _numeric_types(right, rtol):
        check(answer)
    assert capsys.readouterr().out.count("Correct") >= 3


@pytest.mark.parametrize("name", sorted(CHECKERS))
@FEW
@given(offset=st.floats(0.02, 10.0), sign=st.sampled_from([-1, 1]), as_int=st.booleans())
def test_a_wrong_answer_fails_with_a_message(name, offset, sign, as_int):
    check, _, rtol = CHECKERS[name]
    right = _right(name)
    step = _STEP.get(name, 1.0 if rtol == 0 else 2 * rtol * abs(right))
    wrong = right + sign * (step + offset * max(abs(right), step))
    if as_int and rtol == 0:
        wrong = np.int64(round(wrong)) if round(wrong) != right else np.int64(right + 1)
    with pytest.raises((AssertionError, ValueError)) as failure:
        check(wrong)
    assert len(str(failure.value)) > 20  # a sentence, not a bare value


_ODD = st.one_of(
    st.none(), st.booleans(), st.text(max_size=5), st.binary(max_size=3),
    st.lists(st.integers(), max_size=3), st.just(...), st.just(math.nan), st.just(math.inf),
    st.just(-math.inf), st.just(np.array([1.0, 2.0])), st.just(np.bool_(True)),
    st.just(np.array(np.nan)), st.complex_numbers(max_magnitude=10),
)  # fmt: skip


@pytest.mark.parametrize("name", sorted(CHECKERS))
@FEW
@given(answer=_ODD)
def test_an_answer_of_the_wrong_kind_gets_one_clear_error(name, answer):
    check = CHECKERS[name][0]
    with pytest.raises((TypeError, ValueError, AssertionError)) as failure:
        check(answer)
    assert str(failure.value)


@FEW
@given(
    triples=st.lists(st.tuples(*[st.integers(-3, 3)] * 3), max_size=6),
    kind=st.sampled_from([int, np.int64, float, np.float64]),
)
def test_absent_reflections_any_integer_type_and_never_truncated(triples, kind):
    expected = checks.absent_reflections("bcc")
    right = [tuple(kind(i) for i in h) for h in sorted(expected)]
    assert checks.check_absent_reflections(right, "bcc") == expected
    assert checks.check_absent_reflections(np.array(sorted(expected)), "bcc") == expected
    if {tuple(h) for h in triples} != expected:
        with pytest.raises(AssertionError, match="not right"):
            checks.check_absent_reflections(triples, "bcc")
    # (1.9, 0, 0) is not (1, 0, 0): a non-integer index is refused, not truncated.
    with pytest.raises(ValueError, match="Miller indices are integers"):
        checks.check_absent_reflections([(1.9, 0, 0)] + right, "bcc")


@FEW
@given(sweep=st.one_of(st.none(), st.integers(), st.text(max_size=3), st.just({})))
def test_a_sweep_of_the_wrong_kind_is_named(sweep):
    with pytest.raises(TypeError, match="sweep: expected the chapter's sweep result"):
        checks.check_breaking_level(0.2, sweep)


@FEW
@given(answer=st.tuples(st.sampled_from([30, 50, 100, np.int64(50), 50.0]),
                        st.sampled_from([1.3, 1.7, np.float64(1.9), "1.7", None])))  # fmt: skip
def test_the_shaping_setting_checker_names_a_bad_setting(answer):
    spots = np.zeros((2, 32, 32, 3), dtype=np.uint8)
    spots[:, 8:24:8, 8:24:8] = 200
    with pytest.raises((TypeError, AssertionError, ValueError)) as failure:
        checks.check_shaping_sweep(answer + (0,), spots, [0, 1])  # three entries: refused
    assert "best setting" in str(failure.value)
    try:
        checks.check_shaping_sweep(answer, spots, [0, 1])
    except (TypeError, AssertionError, ValueError) as error:
        assert "best setting" in str(error)


@FEW
@given(answer=_ODD)
def test_a_checksum_is_a_hex_string_in_either_case(tmp_path_factory, answer):
    import hashlib

    from crystal_course import dataset

    path = tmp_path_factory.getbasetemp() / "sha-ds"
    dataset.generate(path, 1, 0, n_atoms=40, n_jobs=1, progress=False)  # made once, then kept
    digest = hashlib.sha256((path / "train-00000.npz").read_bytes()).hexdigest()
    for right in (digest, digest.upper(), np.str_(digest)):
        assert checks.check_chunk_sha256(right, path, "train-00000.npz") == digest
    with pytest.raises((TypeError, AssertionError)) as failure:
        checks.check_chunk_sha256(answer, path, "train-00000.npz")
    assert "sha256" in str(failure.value)
