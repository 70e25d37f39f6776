"""Benchmark: fingerprints per second, against a naive reference measured in the same run.

Run with ``make bench`` or ``python bench/bench_diffraction.py [--structures N]``.

Baseline: the textbook float64 sum ``Omega |sum_j f_j exp(-i q.x_j)|**2`` with
numpy's complex exponential, over every pixel of the six patterns of one
fingerprint (what a first implementation of Eq. (1) looks like). Both are run
single-threaded for the speed-up; the package is then run on all cores with
``fingerprints`` for the throughput. Targets: >= 40x the naive
reference and >= 200 fingerprints/s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from ase.build import bulk
from threadpoolctl import threadpool_limits

from crystal_course import diffraction
from crystal_course.diffraction import Detector, fingerprint, fingerprints, form_factor

SPEEDUP_TARGET = 40.0
THROUGHPUT_TARGET = 200.0


def clusters() -> list:
    """One ~250-atom cluster per prototype lattice of the course (standard orientation)."""
    cells = [
        bulk("In", "bct", a=3.25, c=4.95),
        bulk("Sn", "bct", a=5.83, c=3.18),
        bulk("Bi", "rhombohedral", a=4.75, alpha=57.2),
        bulk("Mg", "hcp", a=3.21, c=5.21),
        bulk("Po", "sc", a=3.35),
        bulk("Al", "fcc", a=4.05, cubic=True),
        bulk("Si", "diamond", a=5.43, cubic=True),
        bulk("Fe", "bcc", a=2.87, cubic=True),
    ]
    out = []
    for cell in cells:
        n = max(1, round((250 / len(cell)) ** (1 / 3)))
        out.append(cell.repeat((n, n, n)))
    return out


def naive_fingerprint(atoms, detector: Detector, angle: float = 45.0) -> np.ndarray:
    """Unnormalised fingerprint by the textbook float64 complex-exponential sum."""
    positions = atoms.get_positions()
    nn = diffraction.nearest_neighbour_distance(atoms)
    q, omega = diffraction.scattering_vectors(detector)
    q = q.reshape(-1, 3)
    f = form_factor(atoms.numbers, np.linalg.norm(q, axis=-1))  # (N, P)
    image = np.zeros((detector.n_pixels**2, 3))
    for channel, axis in enumerate("xyz"):
        for sign in (1, -1):
            x = positions / nn @ diffraction.rotation_matrix(axis, sign * angle).T
            amplitude = (f.T * np.exp(-1j * (q @ x.T))).sum(axis=1)
            image[:, channel] += omega.ravel() * np.abs(amplitude) ** 2
    image = image.reshape(detector.n_pixels, detector.n_pixels, 3)
    return image * diffraction.ring_mask(detector.n_pixels)[..., None]


def per_structure_seconds(function, structures, repeats: int) -> float:
    """Best (lowest) mean time per structure over ``repeats`` passes: robust to VM jitter."""
    function(structures[0])  # warm caches
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for atoms in structures:
            function(atoms)
        best = min(best, (time.perf_counter() - start) / len(structures))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--structures", type=int, default=800, help="batch size for throughput")
    args = parser.parse_args()
    detector = Detector()
    structures = clusters()
    cores = os.cpu_count() or 1
    print(f"clusters: {[len(a) for a in structures]} atoms; detector {detector.n_pixels}^2 px")

    # Agreement first: the fast engine must compute the same fingerprint.
    for atoms in structures:
        fast = fingerprint(atoms, detector, normalize=False)
        slow = naive_fingerprint(atoms, detector)
        error = np.abs(fast - slow).max() / slow.max()
        assert error < 1e-4, f"{atoms.get_chemical_formula()}: relative error {error:.2e}"
    print("agreement with the float64 reference: max relative error < 1e-4 on every cluster")

    with threadpool_limits(1):
        naive = per_structure_seconds(lambda a: naive_fingerprint(a, detector), structures, 2)
        fast = per_structure_seconds(lambda a: fingerprint(a, detector), structures, 5)
        rattled = [a.copy() for a in structures]
        for i, atoms in enumerate(rattled):
            atoms.rattle(0.01, seed=i)
        direct = per_structure_seconds(lambda a: fingerprint(a, detector), rattled, 2)
    speedup = naive / fast
    print(f"naive float64 reference, 1 thread : {1 / naive:8.2f} fingerprints/s")
    print(f"crystal_course, 1 thread           : {1 / fast:8.2f} fingerprints/s")
    print(f"  displaced atoms (direct sum)     : {1 / direct:8.2f} fingerprints/s")
    print(f"speed-up over the naive reference  : {speedup:8.1f}x (target >= {SPEEDUP_TARGET:.0f}x)")

    batch = (structures * (args.structures // len(structures) + 1))[: args.structures]
    fingerprints(batch[: 4 * cores], n_jobs=cores, progress=False)  # start the worker pool
    throughput = 0.0
    for _ in range(3):
        start = time.perf_counter()
        fingerprints(batch, n_jobs=cores, progress=False)
        throughput = max(throughput, len(batch) / (time.perf_counter() - start))
    print(
        f"crystal_course.fingerprints, {cores} processes: {throughput:8.1f} fingerprints/s "
        f"(target >= {THROUGHPUT_TARGET:.0f}); {throughput * naive:.0f}x the naive reference"
    )
    paper = 2 * 10_517
    print(f"projected time for the paper-scale 2 x 10,517 set: {paper / throughput / 60:.1f} min")
    print(
        f"targets: speed-up {'met' if speedup >= SPEEDUP_TARGET else 'NOT met'}, "
        f"throughput {'met' if throughput >= THROUGHPUT_TARGET else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
