"""Benchmark: shaped patterns per second (crystal_course.shaping) against a loop baseline.

Run with ``make bench`` or ``python bench/bench_shaping.py [--n-pixels 128]``.

The baseline, measured in the same run on the same patterns, is the algorithm
written the way the public code of Tiong et al. works: Python loops over node
pairs and over the pixels of each line's bounding box. ``shape_patterns`` draws
the lines of many patterns in one pass, and is timed beside one pattern at a time. Target: at
least 200 shaped patterns/s at 128 x 128 on 2 cores.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from joblib import Parallel, delayed

from crystal_course import shaping, structures, zone_axis


def loop_shape(pattern, threshold=50, factor=1.7, min_separation=4.0, width=1.0):
    """The same shaped pattern S = R + lines, with Python loops (the baseline)."""
    n = pattern.shape[0]
    centres, sizes = shaping.find_nodes(pattern, threshold)
    lines = np.zeros(pattern.shape, dtype=np.float32)
    pairs = []
    shortest = math.inf
    for i in range(len(centres)):
        for j in range(i + 1, len(centres)):
            d = math.dist(centres[i], centres[j])
            if d >= min_separation:
                pairs.append((i, j, d))
                shortest = min(shortest, d)
    for i, j, d in pairs:
        if d > factor * shortest * (1 + 1e-9):
            continue
        w = (sizes[i] + sizes[j]) / (2.0 * sizes.max())
        half = width * (0.5 + w)
        (r0, c0), (r1, c1) = centres[i], centres[j]
        for r in range(max(0, int(min(r0, r1) - half - 1)), min(n, int(max(r0, r1) + half + 2))):
            for c in range(
                max(0, int(min(c0, c1) - half - 1)), min(n, int(max(c0, c1) + half + 2))
            ):
                dr, dc = r1 - r0, c1 - c0
                t = min(
                    1.0, max(0.0, ((r - r0) * dr + (c - c0) * dc) / max(dr * dr + dc * dc, 1e-12))
                )
                dist = math.hypot(r - (r0 + t * dr), c - (c0 + t * dc))
                level = min(1.0, max(0.0, half + 0.5 - dist)) * 255 * w
                lines[r, c] = max(lines[r, c], level)
    return np.minimum(pattern.astype(np.float32) + lines, 255)


def shape_all(patterns):
    return [shaping.shape_pattern(p) for p in patterns]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-pixels", type=int, default=128)
    parser.add_argument("--crystals", type=int, default=40)
    args = parser.parse_args()
    detector = zone_axis.detector(args.n_pixels)
    groups = structures.SPACE_GROUP_SETS[72]
    patterns = []
    for i in range(args.crystals):
        crystal = structures.random_crystal(groups[i % len(groups)], i)
        image = zone_axis.patterns(crystal, detector, n_atoms=400)
        patterns += [image[..., k] for k in range(3)]
    n = len(patterns)
    separation = 2.0 * args.n_pixels / 64

    best_loop = math.inf
    sample = patterns[:6]
    for _ in range(2):
        start = time.perf_counter()
        for p in sample:
            loop_shape(p, min_separation=separation)
        best_loop = min(best_loop, (time.perf_counter() - start) / len(sample))
    for p in sample:  # same result
        np.testing.assert_allclose(loop_shape(p, min_separation=separation),
                                   shaping.shape_pattern(p), atol=1e-3)  # fmt: skip

    best_one = math.inf
    for _ in range(3):
        start = time.perf_counter()
        shape_all(patterns)
        best_one = min(best_one, (time.perf_counter() - start) / n)
    chunks = [patterns[i::8] for i in range(8)]
    with Parallel(n_jobs=2) as parallel:
        parallel(delayed(shape_all)(c) for c in chunks)  # warm up the workers
        best_two = math.inf
        for _ in range(3):
            start = time.perf_counter()
            parallel(delayed(shape_all)(c) for c in chunks)
            best_two = min(best_two, (time.perf_counter() - start) / n)
    stack = np.stack(patterns, axis=-1)[None]  # one crystal with every pattern as a channel
    best_batch = math.inf
    for _ in range(3):
        start = time.perf_counter()
        shaping.shape_patterns(stack)
        best_batch = min(best_batch, (time.perf_counter() - start) / n)
    nodes = np.mean([len(shaping.find_nodes(p)[0]) for p in patterns])
    print(f"{n} patterns of {args.n_pixels}x{args.n_pixels}, {nodes:.1f} nodes on average")
    print(f"loop baseline        : {1 / best_loop:8.1f} shaped patterns/s")
    print(f"vectorised, 1 process: {1 / best_one:8.1f} shaped patterns/s "
          f"({best_loop / best_one:.0f}x the baseline)")  # fmt: skip
    print(f"batched, 1 process   : {1 / best_batch:8.1f} shaped patterns/s "
          f"({best_loop / best_batch:.0f}x the baseline, {best_one / best_batch:.1f}x one "
          "pattern at a time)")  # fmt: skip
    print(f"vectorised, 2 processes: {1 / best_two:6.1f} shaped patterns/s "
          f"(target >= 200: {'met' if 1 / best_two >= 200 else 'NOT met'})")  # fmt: skip


if __name__ == "__main__":
    main()
