"""Benchmark: training throughput of the package's tf.data pipeline against plain model.fit.

Run with ``make bench`` or ``python bench/bench_training.py [--images N]``.

Same model (the 2018 CNN), same batch size, same images, same process: one epoch
through ``crystal_course.training.batches`` (shuffle, batch, one-hot, prefetch)
against ``model.fit`` on in-memory NumPy arrays with one-hot labels. Target:
the pipeline keeps >= 95 % of the plain throughput on a CPU. Also
projects the full-mode training time (10,521 images x 5 epochs).
"""

from __future__ import annotations

import argparse
import time

import keras
import numpy as np

from crystal_course.models import ziletti_cnn
from crystal_course.training import batches


def images_per_second(fit, n_images: int, repeats: int = 2) -> float:
    fit()  # warm up: graph tracing, first allocations
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fit()
        best = min(best, time.perf_counter() - start)
    return n_images / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.random((args.images, 64, 64, 3), dtype=np.float32)
    y = rng.integers(0, 7, args.images)
    one_hot = np.eye(7, dtype=np.float32)[y]
    model = ziletti_cnn(seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy")
    plain = images_per_second(
        lambda: model.fit(x, one_hot, batch_size=args.batch_size, epochs=1, verbose=0), args.images
    )
    data = batches(x, y, 7, args.batch_size, shuffle_seed=0)
    pipeline = images_per_second(
        lambda: model.fit(data, epochs=1, shuffle=False, verbose=0), args.images
    )
    ratio = pipeline / plain
    print(f"plain model.fit on NumPy arrays : {plain:7.1f} images/s")
    print(
        f"crystal_course tf.data pipeline : {pipeline:7.1f} images/s "
        f"({100 * ratio:.1f} % of plain; target >= 95 %: {'met' if ratio >= 0.95 else 'NOT met'})"
    )
    print(f"projected full mode (10,521 images x 5 epochs): {10_521 * 5 / pipeline / 60:.1f} min")


if __name__ == "__main__":
    main()
