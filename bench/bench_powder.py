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


def debyecalculator_check(cluster, q, ours_seconds: float, repeats: int) -> str:
    """Time debyecalculator on the CPU, one thread, on the same cluster and q points, and
    compare its pattern with ours; or say why it was not timed."""
    if importlib.util.find_spec("debyecalculator") is None:
        return ("debyecalculator: not installed (pip install debyecalculator torch), "
                "not timed")  # fmt: skip
    from importlib.metadata import version

    from debyecalculator import DebyeCalculator

    step = float(q[1] - q[0])
    # No Debye-Waller factor and no damping: the same Debye equation as ours
    calculator = DebyeCalculator(qmin=float(q[0]), qmax=float(q[-1]) + step / 2, qstep=step,
                                 qdamp=0.0, biso=0.0, device="cpu", num_threads=1,
                                 radiation_type="xray")  # fmt: skip
    theirs_q, theirs = calculator.iq(cluster)
    n = min(len(theirs_q), len(q))
    if not np.allclose(theirs_q[:n], q[:n], atol=1e-6 * q[-1]):
        return "debyecalculator: its q grid differs from the bench's, not compared"
    their_seconds = seconds(lambda: calculator.iq(cluster), repeats)
    ours = powder.debye_intensity(cluster, q[:n])
    a, b = ours / ours.max(), np.asarray(theirs[:n], dtype=float) / np.max(theirs[:n])
    return (
        f"debyecalculator {version('debyecalculator')}, one CPU thread, same run: "
        f"{1 / their_seconds:.1f} patterns/s; ours {their_seconds / ours_seconds:.2f}x its "
        f"speed; largest difference of the patterns scaled to their maxima "
        f"{np.abs(a - b).max():.1e}"
    )


def main() -> None:
    from threadpoolctl import threadpool_limits

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--atoms", type=int, default=250)
    parser.add_argument("--q", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    q = 0.5 + 0.0075 * np.arange(args.q) * 1000 / args.q  # 0.5 to 8 1/Å, an even step
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
            print("  " + debyecalculator_check(cluster, q, ours, args.repeats))


if __name__ == "__main__":
    main()
