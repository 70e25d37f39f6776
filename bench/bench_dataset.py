"""Benchmark: structures + fingerprints per second through the whole dataset pipeline.

Run with ``make bench`` or ``python bench/bench_dataset.py [--n-per-class N]``.

Each item is one crystal sampled, rotated, standardised by spglib, repeated to
~250 atoms, damaged (for the test sets) and turned into a fingerprint, then
stored in a checksummed chunk. Baseline: the same generation in one process
(``n_jobs=1``), measured in the same run; the ratio shows what the worker
processes bring on this machine.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from crystal_course import dataset


def rate(n_per_class: int, n_jobs: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        path = dataset.generate(
            Path(tmp) / "bench", n_per_class, seed=1, n_jobs=n_jobs, progress=False
        )
        elapsed = time.perf_counter() - start
        total = sum(
            len(dataset.load(path, s).y)
            for s in dataset.DatasetConfig(n_per_class, max(1, n_per_class // 4)).splits
        )
    return total / elapsed, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-per-class", type=int, default=40)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    serial, total = rate(args.n_per_class, 1)
    parallel, _ = rate(args.n_per_class, cores)
    print(f"{total} structures per run (train + 4 test sets), ~250 atoms each")
    print(f"one process        : {serial:7.1f} structures+fingerprints/s")
    print(
        f"{cores} processes        : {parallel:7.1f} structures+fingerprints/s "
        f"({parallel / serial:.2f}x the single process)"
    )
    sizes = dict(n_per_class=1503, n_test_per_class=1503)  # config's full mode
    splits = dataset.DatasetConfig(**sizes).splits
    full = 7 * 1503 * len(splits)
    print(
        f"projected full mode ({len(splits)} sets x 7 x 1503 = {full} structures): "
        f"{full / parallel / 60:.1f} min"
    )


if __name__ == "__main__":
    main()
