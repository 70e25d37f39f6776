"""Dataset generation and storage (crystal_course.dataset)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from crystal_course import dataset
from crystal_course.structures import CLASSES

SMALL = dict(
    n_per_class=2, n_test_per_class=1, n_atoms=40, vacancies=(0.25,), displacements=(0.02,), seed=3
)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return dataset.generate(
        tmp_path_factory.mktemp("ds") / "small", chunk_size=5, n_jobs=2, progress=False, **SMALL
    )


def test_splits_shapes_and_labels(small):
    manifest = json.loads((small / dataset.MANIFEST).read_text())
    assert manifest["splits"] == [
        "train",
        "test_pristine",
        "test_vacancies_0.25",
        "test_displacements_0.02",
    ]
    train = dataset.load(small, "train")
    assert train.x.shape == (14, 64, 64, 3) and train.x.dtype == np.float32
    assert train.class_names == CLASSES and len(CLASSES) == 7
    assert np.bincount(train.y).tolist() == [2] * 7  # balanced by construction
    assert 0 <= train.x.min() and train.x.max() <= 1
    # Merged class 166+194 alternates its space groups.
    assert set(train.meta["space_group"][train.y == 2]) == {166, 194}
    vacancies = dataset.load(small, "test_vacancies_0.25")
    pristine = dataset.load(small, "test_pristine")
    assert (vacancies.meta["n_atoms"] < pristine.meta["n_atoms"]).all()


def test_test_sets_come_from_held_out_parents_only(small):
    train = dataset.load(small, "train")
    for split in ("test_pristine", "test_vacancies_0.25", "test_displacements_0.02"):
        test = dataset.load(small, split)
        train_parents = set(zip(train.y, train.meta["parent"], strict=True))
        test_parents = set(zip(test.y, test.meta["parent"], strict=True))
        assert not train_parents & test_parents
    # Defective test structures are defective copies of the pristine test parents.
    pristine = dataset.load(small, "test_pristine")
    displaced = dataset.load(small, "test_displacements_0.02")
    np.testing.assert_array_equal(pristine.meta["parent"], displaced.meta["parent"])
    np.testing.assert_array_equal(pristine.meta["c_over_a"], displaced.meta["c_over_a"])
    assert not np.array_equal(pristine.x, displaced.x)


def test_same_seed_gives_identical_arrays_whatever_the_chunking(small, tmp_path):
    again = dataset.generate(tmp_path / "again", chunk_size=3, n_jobs=1, progress=False, **SMALL)
    for split in ("train", "test_vacancies_0.25"):
        a, b = dataset.load(small, split), dataset.load(again, split)
        assert a.x.tobytes() == b.x.tobytes() and a.y.tobytes() == b.y.tobytes()
    other = dataset.generate(
        tmp_path / "other", chunk_size=5, progress=False, **{**SMALL, "seed": 4}
    )
    assert not np.array_equal(dataset.load(other).x, dataset.load(small).x)


def test_altered_truncated_or_missing_chunks_are_named(small, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(small, copy)
    chunk = copy / "train-00001.npz"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="train-00001.npz is corrupt"):
        dataset.load(copy, "train")
    chunk.write_bytes(bytes(data[:100]))  # truncated
    with pytest.raises(ValueError, match="train-00001.npz is corrupt"):
        dataset.load(copy, "train")
    chunk.unlink()
    with pytest.raises(FileNotFoundError, match="train-00001.npz"):
        dataset.load(copy, "train")
    dataset.load(copy, "test_pristine")  # other splits are unaffected
    with pytest.raises(ValueError, match="split must be one of"):
        dataset.load(copy, "validation")
    with pytest.raises(FileNotFoundError, match="manifest"):
        dataset.load(tmp_path)


def test_generate_repairs_damaged_chunks_and_refuses_other_parameters(small, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(small, copy)
    (copy / "train-00000.npz").write_bytes(b"garbage")
    dataset.generate(copy, chunk_size=5, progress=False, **SMALL)
    np.testing.assert_array_equal(dataset.load(copy).x, dataset.load(small).x)
    with pytest.raises(ValueError, match="other parameters"):
        dataset.generate(copy, chunk_size=5, progress=False, **{**SMALL, "seed": 9})
    # A dataset written by an older version of the structures is not silently reused.
    import json

    manifest = json.loads((copy / dataset.MANIFEST).read_text())
    (copy / dataset.MANIFEST).write_text(json.dumps({**manifest, "format": 1}))
    with pytest.raises(ValueError, match="format 1, made by an older version"):
        dataset.generate(copy, chunk_size=5, progress=False, **SMALL)


def test_interrupted_generation_resumes(small, tmp_path):
    """Kill a generating process after its first chunk, then finish the job."""
    target = tmp_path / "killed"
    args = [
        sys.executable,
        "-m",
        "crystal_course.dataset",
        "generate",
        str(target),
        "--n-per-class",
        "2",
        "--n-test-per-class",
        "1",
        "--n-atoms",
        "40",
        "--seed",
        "3",
        "--chunk-size",
        "5",
        "--n-jobs",
        "1",
        "--no-progress",
    ]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = target / dataset.MANIFEST
    deadline = time.time() + 120
    while time.time() < deadline:
        if manifest.exists() and json.loads(manifest.read_text())["chunks"]:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = json.loads(manifest.read_text())["chunks"]
    assert 1 <= len(done) < 6, "the process was not interrupted midway"
    with pytest.raises(ValueError, match="run generate"):
        dataset.load(target, "test_displacements_0.02")
    kept = {name: os.path.getmtime(target / name) for name in done}
    dataset.generate(target, chunk_size=5, n_jobs=1, progress=False, **SMALL)
    for name, mtime in kept.items():
        assert os.path.getmtime(target / name) == mtime  # finished chunks are not redone
    for split in json.loads(manifest.read_text())["splits"]:
        np.testing.assert_array_equal(dataset.load(target, split).x, dataset.load(small, split).x)
    assert not list(target.glob("*.tmp"))


def test_command_line_help_and_info(small):
    out = subprocess.run(
        [sys.executable, "-m", "crystal_course.dataset", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "generate" in out and "info" in out
    out = subprocess.run(
        [sys.executable, "-m", "crystal_course.dataset", "info", str(small)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "train" in out and "14 /     14" in out


def test_a_corrupt_manifest_is_named_not_a_json_traceback(small, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(small, copy)
    text = (copy / dataset.MANIFEST).read_text()
    for broken in (text[: len(text) // 2], "[]", '{"format": 2}'):
        (copy / dataset.MANIFEST).write_text(broken)
        for call in (
            lambda: dataset.load(copy),
            lambda: dataset.info(copy),
            lambda: dataset.generate(copy, chunk_size=5, progress=False, **SMALL),
        ):
            with pytest.raises(ValueError, match=r"manifest.json is not a valid dataset manifest"):
                call()
    code, last = _command_line_error("info", str(copy))
    assert code == 2
    assert last.endswith(
        "manifest.json is not a valid dataset manifest: it lacks "
        "['parameters', 'splits', 'class_names', 'chunks']"
    )


def _command_line_error(*argv) -> tuple[int, str]:
    """Exit code and last line of stderr of the command line, run in this process."""
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as stop:
        dataset.main(list(argv))
    return stop.value.code, err.getvalue().strip().splitlines()[-1]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--n-per-class", "-3"], "--n-per-class: expected a positive integer, got -3"),
        (["--n-per-class", "two"], "--n-per-class: expected a positive integer, got 'two'"),
        (["--n-per-class", "2", "--seed", "-1"], "--seed: expected an integer >= 0, got -1"),
        (["--n-per-class", "2", "--vacancies", "1.5"], "vacancy fractions must be in (0, 1)"),
        (["--n-per-class", "2", "--n-jobs", "0"], "--n-jobs: expected a positive integer"),
        (["--n-per-class", "2", "--n-jobs", "2", "--scheduler", "tcp://127.0.0.1:1"],
         "argument --scheduler: not allowed with argument --n-jobs"),
    ],
)  # fmt: skip
def test_command_line_errors_are_one_line_and_exit_2(argv, message, tmp_path):
    code, last = _command_line_error("generate", str(tmp_path / "ds"), "--no-progress", *argv)
    assert code == 2
    assert last.startswith("python -m crystal_course.dataset generate: error: ")
    assert message in last


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"n_per_class": 0}, "n_per_class"),
        ({"vacancies": (1.2,)}, "vacancy"),
        ({"displacements": (-0.1,)}, "displacements"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"n_jobs": 0}, "n_jobs"),
    ],
)
def test_bad_parameters(kwargs, fragment, tmp_path):
    with pytest.raises(ValueError, match=fragment):
        dataset.generate(tmp_path, progress=False, **{**SMALL, **kwargs})


def test_default_path_names_mode_seed_and_format():
    from crystal_course import config

    settings = config.settings(seed=3)
    path = dataset.default_path(settings)
    assert path.parent == settings.data_dir
    assert path.name == f"dataset-{settings.mode}-seed3-format{dataset.FORMAT_VERSION}"


def _copy(small, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(small, copy)
    return copy


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (lambda m: m.update(chunks=[]), "'chunks' must map chunk files"),
        (lambda m: m.update(parameters={}), "positive 'chunk_size'"),
        (lambda m: m["parameters"].pop("n_per_class"), "not those of a fingerprint dataset"),
        (lambda m: m.update(splits="train"), "'splits' must be a non-empty list"),
        (lambda m: m.update(format="2"), "'format' must be a positive integer"),
        (lambda m: next(iter(m["chunks"].values())).pop("sha256"), "64-digit hex 'sha256'"),
        (lambda m: next(iter(m["chunks"].values())).update(n="5"), "positive count 'n'"),
        (lambda m: next(iter(m["chunks"].values())).update(split="nope"), "one of the splits"),
        (lambda m: m["chunks"].update({"../x.npz": next(iter(m["chunks"].values()))}),
         "inside the dataset directory"),
    ],
)  # fmt: skip
def test_a_damaged_but_valid_json_manifest_is_named_with_its_field(small, tmp_path, edit, fragment):
    copy = _copy(small, tmp_path)
    manifest = json.loads((copy / dataset.MANIFEST).read_text())
    edit(manifest)
    (copy / dataset.MANIFEST).write_text(json.dumps(manifest))
    for call in (
        lambda: dataset.load(copy),
        lambda: dataset.info(copy),
        lambda: dataset.generate(copy, chunk_size=5, progress=False, **SMALL),
    ):
        with pytest.raises(ValueError, match="manifest.json is not a valid dataset manifest: "):
            call()
    code, last = _command_line_error("info", str(copy))
    assert code == 2 and fragment in last and str(copy) in last


def test_info_counts_only_the_chunks_it_verified(small, tmp_path):
    copy = _copy(small, tmp_path)
    assert "every listed chunk present, intact and of its size" in dataset.info(copy)
    names = sorted(p.name for p in copy.glob("train-*.npz"))
    (copy / names[0]).unlink()
    corrupt = copy / names[1]
    data = bytearray(corrupt.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    corrupt.write_bytes(bytes(data))
    text = dataset.info(copy)
    assert "train" in text and " 4 /     14 structures" in text  # 14 less two chunks of 5
    assert f"{names[0]}: missing" in text and f"{names[1]}: corrupt" in text
    assert "not verified" in dataset.info(copy, verify=False)
    # An entry's count edited by hand no longer adds up to more than the split holds.
    copy = _copy(small, tmp_path / "again")
    manifest = json.loads((copy / dataset.MANIFEST).read_text())
    manifest["chunks"][names[0]]["n"] = 100
    (copy / dataset.MANIFEST).write_text(json.dumps(manifest))
    text = dataset.info(copy)
    assert f"{names[0]}: holds 5 structures, the manifest says 100" in text
    assert " 9 /     14 structures" in text


@pytest.mark.parametrize("levels", [(0.25, 0.25), (0.25, 0.2500001)])
def test_two_levels_that_name_one_test_set_are_refused(levels, tmp_path):
    with pytest.raises(ValueError, match="name the same test set test_vacancies_0.25"):
        dataset.generate(tmp_path / "ds", progress=False, **{**SMALL, "vacancies": levels})
    assert not (tmp_path / "ds").exists()  # refused before anything is written
    from crystal_course import zone_axis

    with pytest.raises(ValueError, match="name the same test set"):
        zone_axis.Config((221, 229), 2, 1, vacancies=levels)


def test_resume_removes_only_its_own_temporary_files(small, tmp_path):
    copy = _copy(small, tmp_path)
    name = sorted(p.name for p in copy.glob("train-*.npz"))[0]
    (copy / name).unlink()
    mine = copy / f".{name}.abc123.tmp"  # what a killed run leaves
    mine.write_bytes(b"half")
    users = [copy / ".draft.tmp", copy / "notes.txt"]
    for file in users:
        file.write_text("the user's")
    dataset.generate(copy, chunk_size=5, progress=False, **SMALL)
    assert not mine.exists() and (copy / name).exists()
    assert all(file.read_text() == "the user's" for file in users)


def test_a_folder_with_other_files_and_no_dataset_is_refused_unless_allowed(tmp_path):
    (tmp_path / "thesis.tex").write_text("\\documentclass{article}")
    with pytest.raises(ValueError, match="holds no dataset manifest but other files"):
        dataset.generate(tmp_path, progress=False, **SMALL)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["thesis.tex"]
    code, last = _command_line_error("generate", str(tmp_path), "--n-per-class", "2")
    assert code == 2 and "--allow-other-files" in last
    dataset.generate(tmp_path, progress=False, allow_other_files=True, chunk_size=5, **SMALL)
    assert (tmp_path / "thesis.tex").exists() and (tmp_path / dataset.MANIFEST).exists()


@pytest.mark.parametrize("bad", ["inf", "nan", "1.5"])
def test_a_bad_level_is_refused_before_anything_is_written(bad, tmp_path):
    target = tmp_path / "ds"
    code, last = _command_line_error("generate", str(target), "--n-per-class", "2",
                                     "--displacements", bad)  # fmt: skip
    assert code == 2 and "displacements must be finite fractions of NN in (0, 1]" in last
    assert not target.exists()


def test_a_complete_dataset_is_left_untouched_even_read_only(small, tmp_path):
    copy = _copy(small, tmp_path)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in copy.iterdir()}
    for file in copy.iterdir():
        file.chmod(0o444)
    copy.chmod(0o555)
    try:
        dataset.generate(copy, chunk_size=5, progress=False, **SMALL)  # nothing left to do
    finally:
        copy.chmod(0o755)
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in copy.iterdir()}
    assert after == before
