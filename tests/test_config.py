"""The quick/full switch and the banner (crystal_course.config)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest

from crystal_course import __version__, config


@pytest.mark.parametrize(
    "raw, expected",
    [("quick", "quick"), ("full", "full"), (" FULL ", "full"), ("Quick\n", "quick")],
)
def test_mode_reads_the_variable(monkeypatch, raw, expected):
    monkeypatch.setenv("CRYSTAL_COURSE_MODE", raw)
    assert config.mode() == expected


@pytest.mark.parametrize("raw", ["bogus", "fast", "0", "quick,full"])
def test_unknown_mode_names_the_allowed_values(monkeypatch, raw):
    monkeypatch.setenv("CRYSTAL_COURSE_MODE", raw)
    with pytest.raises(ValueError) as info:
        config.settings()
    message = str(info.value)
    assert "CRYSTAL_COURSE_MODE" in message and repr(raw) in message
    assert "'quick'" in message and "'full'" in message


@pytest.mark.parametrize("gpus", [(), ("/physical_device:GPU:0",)])
def test_default_mode_is_quick_with_or_without_a_gpu(monkeypatch, gpus):
    """Full mode is opt-in: a GPU runtime alone must not start paper-scale runs."""
    monkeypatch.delenv("CRYSTAL_COURSE_MODE", raising=False)
    monkeypatch.setattr(config, "gpu_names", lambda: gpus)
    assert config.mode() == "quick"
    monkeypatch.setenv("CRYSTAL_COURSE_MODE", "")  # empty counts as unset
    assert config.mode() == "quick"
    monkeypatch.setenv("CRYSTAL_COURSE_MODE", "full")
    assert config.mode() == "full"


def test_banner_says_how_to_select_full_mode(monkeypatch):
    import io

    monkeypatch.delenv("CRYSTAL_COURSE_MODE", raising=False)
    text = config.banner(file=io.StringIO())
    assert "mode: quick" in text and "CRYSTAL_COURSE_MODE=full" in text


def test_gpu_detection_on_this_machine_matches_tensorflow():
    import tensorflow as tf

    expected = tuple(d.name for d in tf.config.list_physical_devices("GPU"))
    assert config.gpu_names() == expected


def test_modes_differ_in_scale_and_full_is_paper_scale(monkeypatch):
    monkeypatch.setenv("CRYSTAL_COURSE_MODE", "quick")
    quick = config.settings()
    monkeypatch.setenv("CRYSTAL_COURSE_MODE", "full")
    full = config.settings(seed=7)
    assert (quick.mode, full.mode) == ("quick", "full")
    assert full.seed == 7 and quick.seed == 0
    assert quick.n_per_class < full.n_per_class
    # Quick mode makes up for a small set with more epochs, yet trains on far fewer images.
    assert quick.n_per_class * quick.epochs < full.n_per_class * full.epochs / 10
    # Ziletti et al. (2018) used 10,517 pristine structures in 7 classes.
    assert 7 * full.n_per_class >= 10_517 and 7 * full.n_test_per_class >= 10_517
    assert quick.n_test_per_class < full.n_test_per_class
    assert full.epochs == 5 and full.batch_size == 32


def test_settings_are_frozen(monkeypatch):
    monkeypatch.setenv("CRYSTAL_COURSE_MODE", "quick")
    s = config.settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.epochs = 100


@pytest.mark.parametrize("seed", [1.5, "0", True, None])
def test_seed_must_be_an_int(seed):
    with pytest.raises(TypeError, match="seed"):
        config.settings(seed=seed)


def test_data_dir(monkeypatch, tmp_path, root):
    monkeypatch.delenv("CRYSTAL_COURSE_DATA", raising=False)
    assert config.repository_root() == root
    assert config.data_dir() == root / "data" / "generated"
    monkeypatch.setenv("CRYSTAL_COURSE_DATA", str(tmp_path))
    assert config.data_dir() == tmp_path


def test_banner_names_mode_versions_and_device(monkeypatch, capsys):
    monkeypatch.setenv("CRYSTAL_COURSE_MODE", "quick")
    text = config.banner()
    assert capsys.readouterr().out.strip() == text
    assert "mode: quick" in text
    assert f"crystal_course {__version__}" in text
    import keras
    import numpy

    assert f"numpy {numpy.__version__}" in text
    assert f"keras {keras.__version__}" in text
    assert "device: CPU" in text or "device: GPU" in text


def test_banner_of_a_chapter_without_networks_does_not_import_tensorflow():
    """Chapters 1 and 2 train nothing: their banner reads versions from the metadata."""
    script = """
import sys
from importlib import metadata

import numpy

from crystal_course import config

text = config.banner()
assert "tensorflow" not in sys.modules, "the banner imported TensorFlow"
names = {d.metadata["Name"] for d in metadata.distributions()}
tf = "tensorflow" if "tensorflow" in names else "tensorflow-cpu"
for name, version in (("tensorflow", metadata.version(tf)), ("keras", metadata.version("keras")),
                      ("numpy", numpy.__version__)):
    assert f"{name} {version} " in text, text
assert "device: not checked" in text, text
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_bogus_mode_fails_from_the_command_line():
    """A bad mode fails loudly from the command line, as a user would run it."""
    env = dict(os.environ, CRYSTAL_COURSE_MODE="bogus")
    result = subprocess.run(
        [sys.executable, "-c", "import crystal_course.config as c; c.settings()"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "ValueError" in result.stderr
    assert "expected one of 'quick', 'full'" in result.stderr


def test_importing_the_package_does_not_import_tensorflow():
    code = "import sys, crystal_course, crystal_course.config; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_chapter_has_a_quick_budget_and_all_fit_four_minutes(root):
    """CI runs every chapter twice: together they keep to about four minutes a pass."""
    from crystal_course.notebooks import chapter_sources

    chapters = [p.stem for p in chapter_sources(root / "book")]
    assert set(chapters) == set(config.QUICK_BUDGET_SECONDS)
    assert sum(config.QUICK_BUDGET_SECONDS.values()) <= 4 * 60
