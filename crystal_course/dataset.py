"""The dataset of Chapter 2: fingerprints of sampled crystals, stored in checksummed chunks.

Layout of a dataset directory::

    manifest.json            parameters, seed, versions, class names, one entry per chunk
    train-00000.npz          x (n, 64, 64, 3) float32, y (n,) int16, and per-structure metadata
    ...
    test_pristine-00000.npz
    test_vacancies_0.25-00000.npz
    test_displacements_0.02-00000.npz

Parents and splits: every structure descends from a *parent* (prototype,
element, c/a, rotation), drawn from the seed alone. The first ``n_per_class``
parents of each class form the pristine training set; the next
``n_test_per_class`` are held out, and every test set (pristine and defective)
is made from those held-out parents only, so no parent is in both.

Chunks are written to a temporary name and renamed, and the manifest is
rewritten (atomically) after each chunk: an interrupted :func:`generate` resumes
where it stopped, and :func:`load` verifies every chunk's SHA-256 checksum.
Every random number comes from ``numpy.random.SeedSequence([seed, ...])`` keyed
by the structure's parent and split, so the same seed gives byte-identical
arrays whatever the chunk size, the number of processes, or the Dask cluster that
computed them (:mod:`crystal_course.cluster`); chunk files carry no time stamp, so
equal arrays give equal checksums.

Command line::

    python -m crystal_course.dataset generate PATH --n-per-class 40 --seed 0
    python -m crystal_course.dataset generate PATH --n-per-class 1503 --scheduler tcp://host:8786
    python -m crystal_course.dataset info PATH

Introduced in Chapter 2.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import zipfile
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from crystal_course import cluster
from crystal_course.diffraction import fingerprint
from crystal_course.structures import (
    CLASSES,
    PROTOTYPES,
    add_displacements,
    add_vacancies,
    check_n_atoms,
    class_index,
    sample_structure,
)

MANIFEST = "manifest.json"
FORMAT_VERSION = 2
"""Format of fingerprint datasets, bumped whenever the same parameters would give
different structures (2: space group 166 holds A7 and A10 crystals, wider bct and hcp
c/a ranges). :func:`default_path` names the folder after it, so an older dataset is
left alone rather than reused."""


_GROUPS_OF_CLASS: list[list[int]] = [[] for _ in CLASSES]
for _p in PROTOTYPES:
    _GROUPS_OF_CLASS[class_index(_p.space_group)].append(_p.space_group)


@dataclass(frozen=True)
class DatasetConfig:
    """Parameters of a generated dataset (all of them go into the manifest).

    Attributes
    ----------
    n_per_class : int
        Training (pristine) parents per class.
    n_test_per_class : int
        Held-out parents per class; every test set has this many per class.
    vacancies : tuple of float
        Vacancy fractions of the defective test sets.
    displacements : tuple of float
        Displacement standard deviations (fraction of NN) of the defective test sets.
    seed : int
        Seed of every random step.
    n_atoms : int
        Target cluster size.
    chunk_size : int
        Structures per stored chunk.
    """

    n_per_class: int
    n_test_per_class: int
    vacancies: tuple[float, ...] = (0.25,)
    displacements: tuple[float, ...] = (0.02,)
    seed: int = 0
    n_atoms: int = 250
    chunk_size: int = 256
    splits: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        for name in ("n_per_class", "n_test_per_class", "n_atoms", "chunk_size", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if self.n_per_class < 1 or self.chunk_size < 1 or self.n_atoms < 2:
            raise ValueError("n_per_class and chunk_size must be >= 1 and n_atoms >= 2")
        check_n_atoms(self.n_atoms)
        for v in self.vacancies:
            if not 0 < v < 1:
                raise ValueError(f"vacancy fractions must be in (0, 1), got {v!r}")
        for d in self.displacements:
            if not 0 < d <= 1:
                raise ValueError(
                    f"displacements must be finite fractions of NN in (0, 1], got {d!r}"
                )
        object.__setattr__(self, "vacancies", tuple(float(v) for v in self.vacancies))
        object.__setattr__(self, "displacements", tuple(float(d) for d in self.displacements))
        splits = ["train"]
        if self.n_test_per_class:
            splits.append("test_pristine")
            splits += [f"test_vacancies_{v:g}" for v in self.vacancies]
            splits += [f"test_displacements_{d:g}" for d in self.displacements]
        object.__setattr__(self, "splits", check_distinct_splits(splits))

    def defects(self, split: str) -> tuple[float, float]:
        """``(vacancy fraction, displacement sigma)`` of a split."""
        if split.startswith("test_vacancies_"):
            return float(split.rsplit("_", 1)[1]), 0.0
        if split.startswith("test_displacements_"):
            return 0.0, float(split.rsplit("_", 1)[1])
        return 0.0, 0.0

    def parents(self, split: str) -> list[tuple[int, int]]:
        """``(class, parent index)`` of every structure of a split, class by class."""
        if split == "train":
            indices = range(self.n_per_class)
        else:
            indices = range(self.n_per_class, self.n_per_class + self.n_test_per_class)
        return [(c, i) for c in range(len(CLASSES)) for i in indices]


def check_distinct_splits(splits) -> tuple[str, ...]:
    """The split names of a dataset, refused when two defect levels name the same one.

    A level is named with six significant digits (``0.25`` and ``0.2500001`` are
    both ``test_vacancies_0.25``): two such levels would write one test set twice.

    Notes
    -----
    Introduced in Chapter 2.
    """
    splits = tuple(splits)
    twice = sorted({s for s in splits if splits.count(s) > 1})
    if twice:
        raise ValueError(
            f"two defect levels name the same test set {', '.join(twice)} (levels are named "
            "with 6 significant digits): give each level once"
        )
    return splits


def _item(config: DatasetConfig, split: str, cls: int, parent: int):
    """Build one structure and its fingerprint; deterministic in its keys alone."""
    groups = _GROUPS_OF_CLASS[cls]
    group = groups[parent % len(groups)]  # merged classes alternate their space groups
    parent_rng = np.random.default_rng(np.random.SeedSequence([config.seed, 0, cls, parent]))
    atoms = sample_structure(group, parent_rng, n_atoms=config.n_atoms)
    vacancies, displacements = config.defects(split)
    if vacancies or displacements:
        split_key = config.splits.index(split)
        defect_rng = np.random.default_rng(
            np.random.SeedSequence([config.seed, 1, split_key, cls, parent])
        )
        atoms = add_displacements(
            add_vacancies(atoms, vacancies, defect_rng), displacements, defect_rng
        )
    meta = (group, atoms.get_atomic_numbers()[0], atoms.info["c_over_a"], len(atoms))
    return fingerprint(atoms), meta


def _chunk(config: DatasetConfig, split: str, keys: list[tuple[int, int]]) -> dict:
    results = [_item(config, split, cls, parent) for cls, parent in keys]
    meta = np.array([m for _, m in results], dtype=float)
    return {
        "x": np.stack([x for x, _ in results]).astype(np.float32),
        "y": np.array([cls for cls, _ in keys], dtype=np.int16),
        "parent": np.array([parent for _, parent in keys], dtype=np.int32),
        "space_group": meta[:, 0].astype(np.int16),
        "atomic_number": meta[:, 1].astype(np.int16),
        "c_over_a": meta[:, 2],
        "n_atoms": meta[:, 3].astype(np.int32),
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_card(name: str, shipped: tuple[str, ...]) -> dict:
    """A results card shipped in ``crystal_course/data``, by file name.

    Parameters
    ----------
    name : str
        The card's file name.
    shipped : tuple of str
        The names the caller accepts; another name is refused with a message naming them.

    Notes
    -----
    Introduced in Chapter 6; the reader of every shipped card.
    """
    from importlib import resources

    if name not in shipped:
        raise ValueError(f"expected one of the shipped cards {', '.join(map(repr, shipped))}, "
                         f"got {name!r}")  # fmt: skip
    return json.loads(resources.files("crystal_course").joinpath("data", name).read_text())


def _write_atomic(path: Path, write) -> None:
    """Write through ``write(handle)`` into a temporary file, then rename onto ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _savez(handle, arrays: dict) -> None:
    """``numpy.savez_compressed``, but the same arrays always give the same bytes.

    numpy stamps every member of the archive with the current time, so two runs that
    make identical arrays would write files with different checksums. Here every
    member carries a fixed date, so a chunk's SHA-256 identifies its content.
    """
    with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key, value in arrays.items():
            member = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(member, "w", force_zip64=True) as out:
                np.lib.format.write_array(out, np.asanyarray(value), allow_pickle=False)


def _new_manifest(config: DatasetConfig) -> dict:
    params = asdict(config)
    params.pop("splits")
    return {
        "format": FORMAT_VERSION,
        "parameters": params,
        "splits": list(config.splits),
        "class_names": list(CLASSES),
        "versions": cluster.versions(),
        "fingerprint": {"n_pixels": 64, "angle_degrees": 45.0, "wavelength_m": 5e-12},
        "chunks": {},
    }


def _save_manifest(path: Path, manifest: dict) -> None:
    text = json.dumps(manifest, indent=2, sort_keys=True).encode()
    _write_atomic(path / MANIFEST, lambda handle: handle.write(text))


def default_path(settings) -> Path:
    """Where the chapters keep the fingerprint dataset of a run's mode and seed.

    ``settings.data_dir / "dataset-<mode>-seed<seed>-format<N>"``: the format in the
    name means a course update that changes the structures generates a new dataset
    beside the old one instead of tripping over it.

    Parameters
    ----------
    settings : crystal_course.config.Settings

    Notes
    -----
    Introduced in Chapter 2.
    """
    return Path(settings.data_dir) / (
        f"dataset-{settings.mode}-seed{settings.seed}-format{FORMAT_VERSION}"
    )


def generate(
    path: str | os.PathLike,
    n_per_class: int,
    n_test_per_class: int | None = None,
    *,
    vacancies: tuple[float, ...] = (0.25,),
    displacements: tuple[float, ...] = (0.02,),
    seed: int = 0,
    n_atoms: int = 250,
    chunk_size: int = 256,
    n_jobs: int | None = None,
    progress: bool = True,
    client=None,
    allow_other_files: bool = False,
) -> Path:
    """Generate (or finish generating) a dataset directory.

    Parameters
    ----------
    path : path-like
        Dataset directory; created if missing.
    n_per_class : int
        Training parents per class (pristine structures).
    n_test_per_class : int, optional
        Held-out parents per class for the test sets; default
        ``max(1, n_per_class // 4)``.
    vacancies, displacements : tuple of float
        Defect levels of the defective test sets (vacancy fraction; sigma as a
        fraction of the nearest-neighbour distance).
    seed : int
        Seed of every random step.
    n_atoms : int
        Target cluster size.
    chunk_size : int
        Structures per chunk file.
    n_jobs : int, optional
        Local worker processes (default: all cores); ignored with ``client``.
    progress : bool
        Show a tqdm progress bar.
    client : distributed.Client, optional
        Compute on this Dask cluster instead of local processes (see
        :mod:`crystal_course.cluster`). This process still writes every file, and the
        result is byte-identical to a local run with the same parameters.
    allow_other_files : bool, default False
        Generate into a directory that holds other files but no dataset (by default
        such a directory is refused, so that a typo cannot mix a dataset into other work).

    Returns
    -------
    pathlib.Path
        The dataset directory.

    Raises
    ------
    ValueError
        If a parameter is out of range (before anything is written), the directory
        holds a dataset made with other parameters, its manifest is not a valid one,
        or it holds other files and no dataset.
    RuntimeError
        If a Dask worker runs other versions of the course or its libraries.

    Notes
    -----
    Introduced in Chapter 2. Chunks already present and intact are kept, so
    calling it again after an interruption (of this process or of a worker)
    finishes the job; a complete dataset is left untouched.
    """
    if n_test_per_class is None:
        n_test_per_class = max(1, n_per_class // 4)
    config = DatasetConfig(
        n_per_class,
        n_test_per_class,
        tuple(vacancies),
        tuple(displacements),
        seed,
        n_atoms,
        chunk_size,
    )
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    manifest = _new_manifest(config)
    todo = _resume(path, manifest, {split: config.parents(split) for split in config.splits},
                   chunk_size, allow_other_files)  # fmt: skip
    _fill(path, manifest, todo, partial(_chunk, config), n_jobs, progress, client)
    return path


def generate_kind(path, kind: str, format_version: int, config, parameters: dict,
                  class_names, packages, chunk, n_jobs=None, progress: bool = True,
                  client=None, allow_other_files: bool = False) -> Path:  # fmt: skip
    """Generate (or finish) a dataset of another kind than the fingerprints' with the same
    machinery: manifest with ``kind`` and ``split_sizes``, atomic chunks, resume.

    ``config`` gives ``splits``, ``parents(split)`` and ``chunk_size``; ``chunk(split,
    keys)`` computes one chunk's arrays; ``packages`` are the versions recorded.

    Notes
    -----
    Introduced in Chapter 6 (zone-axis datasets); used again in Chapter 8.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    splits = list(config.splits)
    manifest = {
        "format": format_version,
        "kind": kind,
        "parameters": parameters,
        "splits": splits,
        "split_sizes": {split: len(config.parents(split)) for split in splits},
        "class_names": list(class_names),
        "versions": cluster.versions(tuple(packages)),
        "chunks": {},
    }
    keys = {split: config.parents(split) for split in splits}
    todo = _resume(path, manifest, keys, config.chunk_size, allow_other_files)
    _fill(path, manifest, todo, chunk, n_jobs, progress, client)
    return path


def read_manifest(path: str | os.PathLike) -> dict:
    """The manifest of a dataset directory, checked to be one.

    Parameters
    ----------
    path : path-like
        Dataset directory.

    Raises
    ------
    FileNotFoundError
        If the directory has no manifest.
    ValueError
        If ``manifest.json`` is not a dataset manifest (not JSON, truncated, or
        missing its entries); the message names the file.

    Notes
    -----
    Introduced in Chapter 2.
    """
    file = Path(path) / MANIFEST
    if not file.exists():
        raise FileNotFoundError(f"{file} not found: is {path} a dataset directory?")
    try:
        manifest = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(
            f"{file} is not a valid dataset manifest ({error}); delete the directory and "
            "generate it again, or restore the file"
        ) from None
    missing = [k for k in ("format", "parameters", "splits", "class_names", "chunks")
               if not isinstance(manifest, dict) or k not in manifest]  # fmt: skip
    if missing:
        raise ValueError(f"{file} is not a valid dataset manifest: it lacks {missing}")
    problem = _manifest_problem(manifest)
    if problem:
        raise ValueError(
            f"{file} is not a valid dataset manifest: {problem}; delete the directory and "
            "generate it again, or restore the file"
        )
    return manifest


def _is_count(value, minimum: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _manifest_problem(manifest: dict) -> str | None:
    """What is wrong with a parsed manifest's fields, in a few words (``None``: nothing)."""
    if not _is_count(manifest["format"], 1):
        return f"'format' must be a positive integer, got {manifest['format']!r}"
    splits = manifest["splits"]
    if not (isinstance(splits, list) and splits and all(isinstance(x, str) for x in splits)):
        return f"'splits' must be a non-empty list of names, got {splits!r}"
    if len(set(splits)) != len(splits):
        return f"'splits' names a split twice: {splits}"
    names = manifest["class_names"]
    if not (isinstance(names, list) and len(names) >= 2 and all(isinstance(x, str) for x in names)):
        return f"'class_names' must be a list of at least two names, got {names!r}"
    parameters = manifest["parameters"]
    if not isinstance(parameters, dict) or not _is_count(parameters.get("chunk_size"), 1):
        return f"'parameters' must hold a positive 'chunk_size', got {parameters!r}"
    if "split_sizes" in manifest:  # zone-axis datasets (Chapter 6)
        sizes = manifest["split_sizes"]
        if not (isinstance(sizes, dict) and set(sizes) == set(splits)
                and all(_is_count(n) for n in sizes.values())):  # fmt: skip
            return f"'split_sizes' must give a size to every split of {splits}, got {sizes!r}"
    else:
        try:
            config = DatasetConfig(**parameters)
        except (TypeError, ValueError) as error:
            return f"'parameters' are not those of a fingerprint dataset ({error})"
        if list(config.splits) != splits:
            return f"'splits' {splits} are not those of its parameters {list(config.splits)}"
    chunks = manifest["chunks"]
    if not isinstance(chunks, dict):
        return f"'chunks' must map chunk files to their entries, got {chunks!r}"
    for name, entry in chunks.items():
        if not (isinstance(entry, dict) and entry.get("split") in splits):
            return f"chunk {name!r} must name one of the splits {splits}, got {entry!r}"
        if not _is_count(entry.get("n"), 1):
            return f"chunk {name!r} must hold a positive count 'n', got {entry.get('n')!r}"
        digest = entry.get("sha256")
        if not (isinstance(digest, str) and len(digest) == 64
                and all(c in "0123456789abcdef" for c in digest)):  # fmt: skip
            return f"chunk {name!r} must carry a 64-digit hex 'sha256', got {digest!r}"
        if Path(name).name != name or not name.endswith(".npz"):
            return f"chunk {name!r} must be a .npz file name inside the dataset directory"
    return None


def _chunk_names(keys: dict, chunk_size: int) -> list[tuple[str, str, list]]:
    """``(file name, split, keys)`` of every chunk of a dataset, in order."""
    return [
        (f"{split}-{start // chunk_size:05d}.npz", split, split_keys[start : start + chunk_size])
        for split, split_keys in keys.items()
        for start in range(0, len(split_keys), chunk_size)
    ]


def _own_temporary(name: str, files: set[str]) -> bool:
    """Whether ``name`` is a temporary file :func:`_write_atomic` made for one of ``files``."""
    return name.endswith(".tmp") and any(name.startswith(f".{f}.") for f in files)


def _resume(
    path: Path, manifest: dict, keys: dict, chunk_size: int, allow_other_files: bool = False
) -> list:
    """Keep the intact chunks of an earlier run; list the ``(name, split, keys)`` still to do.

    Only the temporary files of this dataset's own chunks and manifest (of a run that
    was killed) are removed. A directory without a manifest must be empty (but for
    those) unless ``allow_other_files``.
    """
    plan = _chunk_names(keys, chunk_size)
    own = {MANIFEST} | {name for name, _, _ in plan}
    present = [p for p in path.iterdir()] if path.is_dir() else []
    stale = [p for p in present if _own_temporary(p.name, own)]
    if not (path / MANIFEST).exists() and not allow_other_files:
        others = sorted(p.name for p in present if p not in stale)
        if others:
            raise ValueError(
                f"{path} holds no dataset manifest but other files ({', '.join(others[:3])}"
                f"{', ...' if len(others) > 3 else ''}): generate into a new or empty "
                "directory, or allow other files there (allow_other_files=True, "
                "--allow-other-files)"
            )
    for file in stale:  # half-written files of a run that was killed
        file.unlink(missing_ok=True)
    if (path / MANIFEST).exists():
        old = read_manifest(path)
        if old.get("format") != manifest["format"]:
            raise ValueError(
                f"{path} holds a dataset of format {old.get('format')}, made by an older version "
                f"of the course whose structures differ (this version writes format "
                f"{manifest['format']}); delete it or use another directory"
            )
        if old.get("parameters") != json.loads(json.dumps(manifest["parameters"])):
            raise ValueError(
                f"{path} holds a dataset made with other parameters {old.get('parameters')}; "
                "use another directory or delete it"
            )
        for name, entry in old.get("chunks", {}).items():  # keep the intact chunks
            chunk = path / name
            if chunk.exists() and _sha256(chunk) == entry["sha256"]:
                manifest["chunks"][name] = entry
    return [item for item in plan if item[0] not in manifest["chunks"]]


TASK_SIZE = 8
"""Structures per task handed to a worker: small enough to balance the load over
many workers and to move the progress bar, large enough to hide the per-task
overhead (milliseconds, against about 0.1-1 s per structure)."""


def _fill(path: Path, manifest: dict, todo: list, chunk, n_jobs, progress: bool, client) -> None:
    """Build the listed chunks (``chunk(split, keys) -> arrays``), each written atomically.

    The chunks are cut into tasks of :data:`TASK_SIZE` structures, run by
    :func:`crystal_course.cluster.map_unordered` in any order; this process puts each
    chunk together in key order once its tasks are back, writes it and records it.
    """
    from tqdm.auto import tqdm

    if client is None:
        cluster.local_processes(n_jobs)  # a bad n_jobs fails before any work
    else:
        cluster.check_workers(client, [k for k in manifest["versions"] if k != "crystal_course"])
    if not todo:  # a complete dataset is not touched (it may sit on a read-only disk)
        return
    tasks, owner, pending, parts = [], [], [], []
    for c, (_, split, keys) in enumerate(todo):
        starts = range(0, len(keys), TASK_SIZE)
        for start in starts:
            tasks.append((split, keys[start : start + TASK_SIZE]))
            owner.append(c)
        pending.append(len(starts))
        parts.append({})
    _save_manifest(path, manifest)
    total = sum(len(keys) for _, _, keys in todo)
    with tqdm(
        total=total, desc=f"dataset {path.name}", unit="structure", disable=not progress
    ) as bar:
        for t, arrays in cluster.map_unordered(chunk, tasks, client=client, n_jobs=n_jobs):
            c = owner[t]
            parts[c][t] = arrays
            bar.update(len(tasks[t][1]))
            if len(parts[c]) < pending[c]:
                continue
            name, split, keys = todo[c]
            ordered = [parts[c][i] for i in sorted(parts[c])]
            parts[c] = None
            arrays = {k: np.concatenate([p[k] for p in ordered]) for k in ordered[0]}
            _write_atomic(path / name, lambda handle, a=arrays: _savez(handle, a))
            manifest["chunks"][name] = {"split": split, "n": len(keys),
                                        "sha256": _sha256(path / name)}  # fmt: skip
            _save_manifest(path, manifest)


@dataclass(frozen=True)
class Dataset:
    """A loaded split: arrays, class names and the manifest.

    Attributes
    ----------
    x : numpy.ndarray
        ``(N, 64, 64, 3)`` float32 fingerprints, channels last.
    y : numpy.ndarray
        ``(N,)`` int class labels, indices into ``class_names``.
    class_names : tuple of str
    meta : dict of str to numpy.ndarray
        Per-structure ``parent``, ``space_group``, ``atomic_number``,
        ``c_over_a`` and ``n_atoms``.
    manifest : dict
        Parameters, seed, versions and checksums.
    """

    x: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...]
    meta: dict
    manifest: dict


def _split_size(manifest: dict, split: str) -> int:
    if "split_sizes" in manifest:  # zone-axis datasets (Chapter 6)
        return int(manifest["split_sizes"][split])
    return len(DatasetConfig(**manifest["parameters"]).parents(split))


def load(path: str | os.PathLike, split: str = "train") -> Dataset:
    """Load one split of a dataset, verifying every chunk's checksum.

    Parameters
    ----------
    path : path-like
        Dataset directory made by :func:`generate`.
    split : str, default "train"
        One of the manifest's splits (e.g. ``"test_vacancies_0.25"``).

    Raises
    ------
    FileNotFoundError
        If the manifest or a chunk is missing (naming the file).
    ValueError
        If a chunk is truncated or altered (checksum mismatch, naming the
        file), the split is unknown, or the dataset is incomplete.

    Notes
    -----
    Introduced in Chapter 2.
    """
    path = Path(path)
    manifest = read_manifest(path)
    if split not in manifest["splits"]:
        raise ValueError(f"split must be one of {manifest['splits']}, got {split!r}")
    expected = -(-_split_size(manifest, split) // manifest["parameters"]["chunk_size"])
    names = sorted(n for n, e in manifest["chunks"].items() if e["split"] == split)
    if len(names) != expected:
        raise ValueError(
            f"{path}: split {split!r} has {len(names)} of {expected} chunks; "
            "run generate() again to finish it"
        )
    parts = []
    for name in names:
        chunk = path / name
        if not chunk.exists():
            raise FileNotFoundError(f"{chunk} is listed in the manifest but missing")
        if _sha256(chunk) != manifest["chunks"][name]["sha256"]:
            raise ValueError(f"{chunk} is corrupt: its SHA-256 differs from the manifest")
        with np.load(chunk) as data:
            parts.append({k: data[k] for k in data.files})
    arrays = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    x, y = arrays.pop("x"), arrays.pop("y").astype(np.int64)
    return Dataset(x, y, tuple(manifest["class_names"]), arrays, manifest)


def _verified(chunk: Path, entry: dict) -> str | None:
    """What is wrong with one listed chunk on disk (``None``: present, intact, of its size)."""
    if not chunk.exists():
        return "missing"
    if _sha256(chunk) != entry["sha256"]:
        return "corrupt (SHA-256 differs from the manifest)"
    try:
        with np.load(chunk) as data:
            n = len(data["y"])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return "unreadable"
    return None if n == entry["n"] else f"holds {n} structures, the manifest says {entry['n']}"


def verify(path: str | os.PathLike, kind: str | None = None) -> dict:
    """Check a whole dataset before work starts on it: complete, every chunk intact.

    Parameters
    ----------
    path : path-like
        Dataset directory.
    kind : {"fingerprint", "zone_axis", "invariant"}, optional
        The kind of dataset the caller needs (Chapter 2's fingerprints or
        Chapter 6's zone-axis patterns).

    Returns
    -------
    dict
        The manifest.

    Raises
    ------
    ValueError
        Naming the first incomplete split, or missing, corrupt or mis-sized
        chunk, or the dataset's kind when it is not ``kind``.

    Notes
    -----
    Introduced in Chapter 3 (the training command line).
    """
    manifest = read_manifest(path)
    found = manifest.get("kind", "fingerprint")
    if kind is not None and found != kind:
        raise ValueError(f"{path} is a {found} dataset, not a {kind} dataset")
    for split in manifest["splits"]:
        entries = {n: e for n, e in manifest["chunks"].items() if e["split"] == split}
        done = sum(e["n"] for e in entries.values())
        if done != _split_size(manifest, split):
            raise ValueError(
                f"{path}: split {split!r} has {done} of {_split_size(manifest, split)} "
                "structures; run generate() again to finish it"
            )
        for name, entry in sorted(entries.items()):
            problem = _verified(Path(path) / name, entry)
            if problem:
                raise ValueError(f"{Path(path) / name} is {problem}")
    return manifest


def info(path: str | os.PathLike, verify: bool = True) -> str:
    """A short text summary of a dataset directory (splits, sizes, parameters, versions).

    Parameters
    ----------
    path : path-like
        Dataset directory.
    verify : bool, default True
        Count only the chunks that are present, intact (SHA-256) and of the size the
        manifest gives, and name the others. Without it, the counts are the manifest's
        and the summary says they are not verified.

    Notes
    -----
    Introduced in Chapter 2.
    """
    manifest = read_manifest(path)
    lines = [f"dataset {path}", f"parameters: {manifest['parameters']}"]
    problems = []
    for split in manifest["splits"]:
        done = 0
        for name, entry in sorted(manifest["chunks"].items()):
            if entry["split"] != split:
                continue
            problem = _verified(Path(path) / name, entry) if verify else None
            if problem:
                problems.append(f"  {name}: {problem}")
            else:
                done += entry["n"]
        lines.append(f"  {split:28s} {done:6d} / {_split_size(manifest, split):6d} structures")
    lines.append(
        "chunks: every listed chunk present, intact and of its size" if verify and not problems
        else "chunks: not verified (counts from the manifest)" if not verify
        else "chunks not counted above:"
    )  # fmt: skip
    lines += problems
    lines.append(f"classes: {', '.join(manifest['class_names'])}")
    lines.append(f"versions: {manifest['versions']}")
    return "\n".join(lines)


def integer_type(minimum: int, what: str):
    """An argparse ``type``: an integer >= ``minimum``, or a one-line error naming the value.

    Parameters
    ----------
    minimum : int
        Smallest accepted value.
    what : str
        How the error names what was expected, e.g. ``"a positive integer"``.

    Notes
    -----
    Introduced in Chapter 2.
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text}")
        return value

    parse.__name__ = what  # argparse names the type by it in some messages
    return parse


positive_int = integer_type(1, "a positive integer")
non_negative_int = integer_type(0, "an integer >= 0")


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    """``--n-jobs``, ``--scheduler``, ``--no-progress`` and ``--allow-other-files``, shared
    by the generators' CLIs.

    Notes
    -----
    Introduced in the appendix "Running at scale".
    """
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--n-jobs", type=positive_int, default=None,
                       help="local worker processes (default: all cores)")  # fmt: skip
    parser.add_argument("--allow-other-files", action="store_true",
                        help="generate into a directory that holds other files")  # fmt: skip
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        help="run on the Dask cluster of this scheduler, e.g. tcp://10.0.0.5:8786 "
        "(needs the cluster extra)",
    )
    parser.add_argument("--no-progress", action="store_true")


def run_generator(parser: argparse.ArgumentParser, args, generate_with) -> int:
    """Run ``generate_with(client)`` for a generator CLI; bad input ends as ``parser.error``.

    Connects to ``args.scheduler`` if given (and closes the connection after), then
    prints :func:`info`. Errors a user can fix (bad values, an unreachable
    scheduler, a corrupt manifest, a worker with other versions) become one line
    and exit code 2, as argparse's own.

    Notes
    -----
    Introduced in the appendix "Running at scale".
    """
    client = None
    try:
        if args.scheduler is not None:
            client = cluster.connect(args.scheduler)
        generate_with(client)
        print(info(args.path))
    except (ValueError, OSError, RuntimeError, ImportError) as error:
        parser.error(str(error))
    finally:
        if client is not None:
            client.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Generate or inspect a crystal-course fingerprint dataset (Chapter 2)."""
    parser = argparse.ArgumentParser(
        prog="python -m crystal_course.dataset",
        description="Generate or inspect a crystal-course fingerprint dataset.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="generate (or resume) a dataset")
    gen.add_argument("path")
    gen.add_argument("--n-per-class", type=positive_int, required=True)
    gen.add_argument("--n-test-per-class", type=non_negative_int, default=None)
    gen.add_argument("--vacancies", type=float, nargs="*", default=[0.25])
    gen.add_argument("--displacements", type=float, nargs="*", default=[0.02])
    gen.add_argument("--seed", type=non_negative_int, default=0)
    gen.add_argument("--n-atoms", type=positive_int, default=250)
    gen.add_argument("--chunk-size", type=positive_int, default=256)
    add_cluster_arguments(gen)
    show = sub.add_parser("info", help="summarise a dataset")
    show.add_argument("path")
    args = parser.parse_args(argv)
    if args.command == "info":
        try:
            print(info(args.path))
        except (ValueError, OSError) as error:
            show.error(str(error))
        return 0

    def generate_with(client):
        generate(
            args.path,
            args.n_per_class,
            args.n_test_per_class,
            vacancies=tuple(args.vacancies),
            displacements=tuple(args.displacements),
            seed=args.seed,
            n_atoms=args.n_atoms,
            chunk_size=args.chunk_size,
            n_jobs=args.n_jobs,
            progress=not args.no_progress,
            client=client,
            allow_other_files=args.allow_other_files,
        )

    return run_generator(gen, args, generate_with)


if __name__ == "__main__":
    # Run the importable module's main, so that workers can unpickle its functions.
    from crystal_course import dataset

    sys.exit(dataset.main())
