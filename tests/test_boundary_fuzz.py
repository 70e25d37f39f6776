"""The public boundary, fuzzed (hypothesis): whatever a user passes as a tolerance, a size, a
defect level or a manifest field, only ValueError, TypeError or OSError escapes, with a
message that names the argument or the file. Calls that reach spglib run in a child process,
so that a crash fails the test instead of killing pytest."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crystal_course import dataset, structures, zone_axis

FEW = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
CLEAR = (ValueError, TypeError, OSError)

# Anything a user might type or compute: numbers of every kind, special floats, text, None.
ANYTHING = st.one_of(
    st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -0.0, 5e-324, 1e308, True, False, None, "0.1", "", [], (), {}]),
    st.text(max_size=4),
)  # fmt: skip


@FEW
@given(value=ANYTHING)
def test_a_tolerance_is_a_finite_positive_number_or_refused_by_name(value):
    try:
        accepted = structures.check_symprec(value)
    except CLEAR as error:
        assert "symprec" in str(error)
        return
    assert math.isfinite(accepted) and accepted > 0


_SPGLIB_FUZZ = """
import math
from hypothesis import given, settings, strategies as st, HealthCheck
from crystal_course import structures
atoms = structures.reference_structure(229, n_atoms=16)
values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5),
                   st.sampled_from([0, -0.0, 5e-324, 1e-300, 1e300, None, "1e-3"]))

@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(value=values)
def probe(value):
    for call in (lambda: structures.space_group(atoms, symprec=value),
                 lambda: structures.standard_conventional_cell(atoms, symprec=value),
                 lambda: structures.spglib_class(atoms, value)):
        try:
            call()
        except (ValueError, TypeError) as error:
            assert "symprec" in str(error) or "spglib" in str(error), str(error)

probe()
print("no crash")
"""


def test_tolerances_that_reach_spglib_never_crash_it():
    result = subprocess.run([sys.executable, "-c", _SPGLIB_FUZZ], capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-2000:]}"
    assert "no crash" in result.stdout


_SIZES = ("n_per_class", "n_test_per_class", "n_atoms", "chunk_size", "seed")


@FEW
@given(field=st.sampled_from(_SIZES), value=ANYTHING)
def test_a_size_of_a_dataset_is_checked_by_name(field, value):
    try:
        config = dataset.DatasetConfig(**{"n_per_class": 2, "n_test_per_class": 1, field: value})
    except CLEAR as error:
        assert field in str(error) or "n_atoms" in str(error), str(error)
        return
    assert isinstance(getattr(config, field), int) and not isinstance(getattr(config, field), bool)


_LEVELS = st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                             st.sampled_from([0.25, 0.2500001, 0.0, 1.0, -0.1])),
                   max_size=4)  # fmt: skip


@FEW
@given(vacancies=_LEVELS, displacements=_LEVELS)
def test_defect_levels_are_checked_by_name(vacancies, displacements):
    try:
        config = dataset.DatasetConfig(2, 1, tuple(vacancies), tuple(displacements))
    except CLEAR as error:
        assert any(w in str(error) for w in ("vacanc", "displacement", "same test set")), error
        return
    assert len(set(config.splits)) == len(config.splits)
    assert all(0 < v < 1 for v in config.vacancies)
    assert all(0 < d <= 1 for d in config.displacements)


@FEW
@given(vacancies=_LEVELS, n_atoms=ANYTHING)
def test_a_zone_axis_configuration_is_checked_by_name(vacancies, n_atoms):
    try:
        zone_axis.Config((221, 229), 2, 1, tuple(vacancies), n_atoms=n_atoms)
    except CLEAR as error:
        assert any(w in str(error) for w in ("vacanc", "n_atoms", "same test set")), error


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return dataset.generate(tmp_path_factory.mktemp("fuzz") / "tiny", 1, 1, n_atoms=40,
                            chunk_size=4, n_jobs=1, progress=False)  # fmt: skip


JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 10**6), st.floats(allow_nan=False),
              st.text(max_size=6)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=6,
)  # fmt: skip


@FEW
@given(data=st.data())
def test_a_manifest_with_any_field_changed_is_refused_with_its_file_named(tiny, tmp_path_factory,
                                                                          data):  # fmt: skip
    copy = tmp_path_factory.mktemp("m") / "copy"
    shutil.copytree(tiny, copy)
    manifest = json.loads((copy / dataset.MANIFEST).read_text())
    chunk = sorted(manifest["chunks"])[0]
    where = data.draw(st.sampled_from(["top", "parameters", "chunk"]))
    if where == "top":
        target, keys = manifest, ["format", "parameters", "splits", "class_names", "chunks"]
    elif where == "parameters":
        target, keys = manifest["parameters"], sorted(manifest["parameters"])
    else:
        target, keys = manifest["chunks"][chunk], ["split", "n", "sha256"]
    key = data.draw(st.sampled_from(keys))
    if data.draw(st.booleans()):
        target.pop(key)
    else:
        target[key] = data.draw(JSON)
    (copy / dataset.MANIFEST).write_text(json.dumps(manifest))
    for call in (lambda: dataset.read_manifest(copy), lambda: dataset.info(copy),
                 lambda: dataset.load(copy, "train"), lambda: dataset.verify(copy)):  # fmt: skip
        try:
            call()
        except CLEAR as error:
            assert str(copy) in str(error) or "split" in str(error), str(error)
