"""Run settings: the quick/full switch, seeds, sizes and the chapter banner.

One environment variable, ``CRYSTAL_COURSE_MODE``, chooses between

``quick``
    every chapter runs within its time budget (:data:`QUICK_BUDGET_SECONDS`) on
    2 CPU cores (small datasets, few epochs); the default everywhere, with or
    without a GPU;
``full``
    paper-scale datasets and training, only when asked for with
    ``CRYSTAL_COURSE_MODE=full`` (meant for a GPU; its cost is not measured).

Chapters read every size, epoch count and seed from :func:`settings`, never
from literals of their own, so the switch acts in one place. Introduced in the
introduction and used by every chapter.
"""

from __future__ import annotations

import functools
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

MODES: tuple[str, ...] = ("quick", "full")
"""The allowed values of ``CRYSTAL_COURSE_MODE``."""

MODE_VARIABLE = "CRYSTAL_COURSE_MODE"

QUICK_BUDGET_SECONDS: dict[str, int] = {
    "01_diffraction": 12,
    "02_dataset": 35,
    "03_cnn": 60,
    "04_response_maps": 25,
    "05_unsupervised": 20,
    "06_shaped_msdn": 55,
    "07_tiong_study": 8,
    "08_any_orientation": 25,
}
"""Quick-mode running time of each chapter, in seconds, with its data generated.

On the course's 2-core CPU machine (no GPU), whose ``bench/bench_training.py`` baseline
is the figure the instructors' page gives beside these. Each ``make test`` runs every
chapter twice (with solutions on the pinned stack; as the student edition, then its
solutions on the same kernel, on Colab's), one run in each of its two lanes, so the
sum, about four minutes for the eight chapters, sets most of CI's 15-minute budget."""
DATA_VARIABLE = "CRYSTAL_COURSE_DATA"


@dataclass(frozen=True)
class Settings:
    """Everything a chapter needs to know about the current run.

    Attributes
    ----------
    mode : str
        ``"quick"`` or ``"full"``.
    seed : int
        Base seed of every random step (structures, splits, weights).
    n_per_class : int
        Pristine training structures per class.
    n_test_per_class : int
        Held-out structures per class in each test set (pristine and defective).
    epochs : int
        Training epochs of the classifiers.
    batch_size : int
        Mini-batch size for training.
    n_pixels : int
        Detector side in pixels (images are ``n_pixels`` x ``n_pixels``).
    n_jobs : int
        Worker processes for parallel work (fingerprints, datasets).
    data_dir : pathlib.Path
        Where generated data is written (git-ignored in a checkout).
    """

    mode: str
    seed: int
    n_per_class: int
    n_test_per_class: int
    epochs: int
    batch_size: int
    n_pixels: int
    n_jobs: int
    data_dir: Path


# The sizes of each mode. Quick mode: 280 training images x 6 epochs, about 10 s of
# training on 2 CPU cores, enough for >= 95 % on the pristine test set; 30 test parents per class
# (210 crystals per test set) so that a perfect score's 95 % Wilson interval starts
# above 98 %, for a few seconds of generation. Full mode is paper
# scale: 7 classes x 1503 = 10,521 pristine structures, at least the 10,517 of
# Ziletti et al. (2018), and as many defective copies in each test set.
_MODE_SIZES: dict[str, dict[str, int]] = {
    "quick": {"n_per_class": 40, "n_test_per_class": 30, "epochs": 6, "batch_size": 32},
    "full": {"n_per_class": 1503, "n_test_per_class": 1503, "epochs": 5, "batch_size": 32},
}


@dataclass(frozen=True)
class ZoneAxisSettings:
    """Sizes of Chapter 6 (shaped patterns and the multi-stream DenseNet).

    Attributes
    ----------
    sets : tuple of int
        Sizes of :data:`crystal_course.structures.SPACE_GROUP_SETS` to train on, each
        a subset of the dataset's.
    dataset_groups : int
        Size of the set the dataset holds (the crystal-system study uses all of it).
    n_per_group, n_test_per_group : int
        Training and held-out crystals per space group.
    n_pixels : int
        Detector side of the zone-axis patterns.
    epochs : int
        Training epochs of every classifier.
    batch_size : int
        Mini-batch size of every classifier (small data needs the extra steps).
    mc_passes : int
        Forward passes of Monte Carlo dropout.
    node_sample : int
        Crystals per space group in the node-count study (the data set's first ones).
    vacancies : tuple of float
        Vacancy fractions of the defective test sets.
    """

    sets: tuple[int, ...]
    dataset_groups: int
    n_per_group: int
    n_test_per_group: int
    n_pixels: int
    epochs: int
    batch_size: int
    mc_passes: int
    node_sample: int
    vacancies: tuple[float, ...]


# Quick: a dataset of the 20 groups (the crystal-system study needs their seven systems),
# both methods trained on its 8-group subset at 64x64, 32 crystals per group and 8 epochs
# (well under a minute of training on 2 CPU cores), both clearly above chance (Chapter 6
# asserts p < 1e-3; at 24 per group the MSDN was not), and one vacancy test set; the
# transfer to 20 groups is in Chapter 7's cards. Full: all four sets of Tiong et al. (2020)
# at 128x128 (a GPU job).
_ZONE_AXIS_SIZES: dict[str, dict] = {
    "quick": {"sets": (8,), "dataset_groups": 20, "n_per_group": 32, "n_test_per_group": 8,
              "n_pixels": 64, "epochs": 8, "batch_size": 16, "mc_passes": 10, "node_sample": 1,
              "vacancies": (0.2,)},
    "full": {"sets": (8, 20, 49, 72), "dataset_groups": 72, "n_per_group": 150,
             "n_test_per_group": 30, "n_pixels": 128, "epochs": 30, "batch_size": 32,
             "mc_passes": 500, "node_sample": 5, "vacancies": (0.05, 0.1, 0.2)},
}  # fmt: skip


def zone_axis_settings() -> ZoneAxisSettings:
    """Chapter 6 sizes of the current mode (see :class:`ZoneAxisSettings`).

    Notes
    -----
    Introduced in Chapter 6.
    """
    return ZoneAxisSettings(**_ZONE_AXIS_SIZES[mode()])


@functools.lru_cache(maxsize=1)
def gpu_names() -> tuple[str, ...]:
    """Names of the GPUs TensorFlow can see; empty without TensorFlow or GPU.

    Imports TensorFlow (a few seconds) the first time it is called; the answer
    is cached for the life of the process.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's C++ log quiet
    try:
        import tensorflow as tf
    except ImportError:
        return ()
    return tuple(d.name for d in tf.config.list_physical_devices("GPU"))


def mode() -> str:
    """The current mode, ``"quick"`` or ``"full"``.

    Read from ``CRYSTAL_COURSE_MODE`` (case and surrounding blanks ignored).
    Unset or empty, it is ``"quick"``, also on a GPU: full mode is opt-in.

    Raises
    ------
    ValueError
        If the variable holds anything other than the allowed values.
    """
    raw = os.environ.get(MODE_VARIABLE, "")
    value = raw.strip().lower()
    if not value:
        return "quick"
    if value not in MODES:
        allowed = ", ".join(repr(m) for m in MODES)
        raise ValueError(
            f"{MODE_VARIABLE}={raw!r} is not a mode: expected one of {allowed} "
            f"(or unset, for 'quick')"
        )
    return value


def repository_root() -> Path | None:
    """The root of the course checkout this package runs from, if any.

    ``None`` when the package is installed from a wheel (e.g. on Colab).
    """
    root = Path(__file__).resolve().parent.parent
    return root if (root / "_toc.yml").is_file() else None


def data_dir() -> Path:
    """Directory for generated data.

    ``CRYSTAL_COURSE_DATA`` if set; otherwise ``data/generated`` in a course
    checkout, or ``~/.cache/crystal_course`` for an installed package.
    """
    if os.environ.get(DATA_VARIABLE):
        return Path(os.environ[DATA_VARIABLE]).expanduser()
    root = repository_root()
    if root is not None:
        return root / "data" / "generated"
    return Path.home() / ".cache" / "crystal_course"


def settings(seed: int = 0) -> Settings:
    """The settings of the current mode.

    Parameters
    ----------
    seed : int, default 0
        Base seed of the run.

    Returns
    -------
    Settings
        Frozen settings; see :class:`Settings`.

    Raises
    ------
    ValueError
        If ``CRYSTAL_COURSE_MODE`` is not an allowed mode.
    TypeError
        If ``seed`` is not an integer.

    Examples
    --------
    With ``CRYSTAL_COURSE_MODE=quick`` in the environment::

        >>> settings().epochs  # doctest: +SKIP
        8
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    current = mode()
    return Settings(
        mode=current,
        seed=seed,
        n_pixels=64,
        n_jobs=max(1, os.cpu_count() or 1),
        data_dir=data_dir(),
        **_MODE_SIZES[current],
    )


def _version(module_name: str) -> str:
    """The installed version of a module, read without importing it when not yet imported."""
    module = sys.modules.get(module_name)
    if module is not None:
        return str(getattr(module, "__version__", "unknown"))
    from importlib import metadata

    for distribution in metadata.packages_distributions().get(module_name, ()):
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:  # pragma: no cover - a broken install
            continue
    return "not installed"


def device() -> str:
    """The device this run computes on, e.g. ``"CPU (2 cores)"`` or ``"GPU (...)"``.

    Notes
    -----
    Introduced in Chapter 1 (in the banner); Chapter 3 prints it with timings.
    """
    gpus = gpu_names()
    return f"GPU ({', '.join(gpus)})" if gpus else f"CPU ({settings().n_jobs} cores)"


def banner(file=None) -> str:
    """Print (and return) the mode, versions and device of this run.

    Every chapter calls this first, so a reader can tell how a page was made.
    The device is named when TensorFlow is already imported (the chapters that
    train networks import it first); otherwise the banner says it was not
    checked, rather than spend seconds importing TensorFlow for one line.

    Parameters
    ----------
    file : file-like, optional
        Where to print; default ``sys.stdout``.

    Returns
    -------
    str
        The printed text.
    """
    from crystal_course import __version__

    s = settings()
    lines = [
        f"crystal_course {__version__} | mode: {s.mode} "
        f"(set {MODE_VARIABLE}=full before the first import for paper scale)"
        if s.mode == "quick"
        else f"crystal_course {__version__} | mode: {s.mode} ({MODE_VARIABLE}=quick|full)",
        f"python {platform.python_version()} | numpy {_version('numpy')} | "
        f"ase {_version('ase')} | spglib {_version('spglib')}",
        f"tensorflow {_version('tensorflow')} | keras {_version('keras')} | device: "
        + (device() if "tensorflow" in sys.modules else "not checked (no network in this chapter)"),
    ]
    text = "\n".join(lines)
    print(text, file=file or sys.stdout)
    return text
