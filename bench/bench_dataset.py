"""Benchmark: structures + fingerprints per second through the whole dataset pipeline.

Run with ``make bench`` or ``python bench/bench_dataset.py [--n-per-class N]``.

Each item is one crystal sampled, rotated, standardised by spglib, repeated to
~250 atoms, damaged (for the test sets) and turned into a fingerprint, then
stored in a checksummed chunk. Baseline: the same generation in one process
(``n_jobs=1``), measured in the same run; the ratio shows what the worker
processes bring on this machine.

The same generation then runs on a Dask ``LocalCluster`` with one single-threaded
worker per core (needs the cluster extra), against local processes in the same run.
On one machine the cluster cannot be faster: the ratio is its overhead (task
scheduling, results sent back to the writing process). Its start-up time is
reported apart. Zone-axis crystals (Chapter 6: pyxtal, three patterns each, the
costly items of a 72-group set) are measured the same way with ``--zone-axis``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from crystal_course import dataset, zone_axis


def rate(n_per_class: int, n_jobs: int | None = None, client=None) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        path = dataset.generate(Path(tmp) / "bench", n_per_class, seed=1, n_jobs=n_jobs,
                                progress=False, client=client)  # fmt: skip
        elapsed = time.perf_counter() - start
        total = sum(
            len(dataset.load(path, s).y)
            for s in dataset.DatasetConfig(n_per_class, max(1, n_per_class // 4)).splits
        )
    return total / elapsed, total


def zone_axis_rate(n_per_group: int, n_jobs: int | None = None, client=None) -> tuple[float, int]:
    from crystal_course.structures import SPACE_GROUP_SETS

    config = zone_axis.Config(SPACE_GROUP_SETS[8], n_per_group, 1, vacancies=(), seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        zone_axis.generate(Path(tmp) / "bench", config, n_jobs, False, client)
        elapsed = time.perf_counter() - start
    total = len(config.space_groups) * (n_per_group + len(config.splits) - 1)
    return total / elapsed, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-per-class", type=int, default=40)
    parser.add_argument("--zone-axis", type=int, default=12, metavar="N",
                        help="zone-axis crystals per group (8 groups); 0 skips them")  # fmt: skip
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
    on_cluster(args, cores, parallel)


def on_cluster(args, cores: int, local: float) -> None:
    from distributed import Client, LocalCluster

    start = time.perf_counter()
    with (
        LocalCluster(n_workers=cores, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        started = time.perf_counter() - start
        rate(2, client=client)  # the workers import the course once, before timing
        remote, _ = rate(args.n_per_class, client=client)
        print(f"Dask LocalCluster, {cores} workers (start-up {started:.1f} s, not counted): "
              f"{remote:7.1f} structures+fingerprints/s ({remote / local:.2f}x the "
              f"{cores} local processes, {remote / cores:.1f}/s per worker)")  # fmt: skip
        if args.zone_axis:
            zone_axis_rate(1, client=client)  # the workers import pyxtal once, before timing
            za_local, total = zone_axis_rate(args.zone_axis, n_jobs=cores)
            za_remote, _ = zone_axis_rate(args.zone_axis, client=client)
            print(f"zone-axis crystals ({total} per run, 8 groups, 3 patterns each): "
                  f"{za_local:.1f}/s in {cores} local processes, {za_remote:.1f}/s on the "
                  f"LocalCluster ({za_remote / za_local:.2f}x; {za_remote / cores:.2f}/s "
                  "per worker)")  # fmt: skip


if __name__ == "__main__":
    main()
