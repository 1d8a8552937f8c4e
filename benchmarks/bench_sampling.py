"""Benchmark (issue 13): sampling virtual patients scales linearly — 10⁶ against 10⁷ patients.

    python benchmarks/bench_sampling.py [--small 1000000] [--large 10000000] [--repeats 3]

Both sizes are drawn from the calibrated population (:meth:`chemomet.Population.sample`, covariates and
parameters) in this process, alternating small and large in every repeat so a change of load hits both alike.
Reported: CPU seconds (this process, all threads) and wall seconds of each draw, the medians over ``--repeats``,
the ratio large/small of the CPU medians against the linear ratio (target: within 1.2 × linear, i.e. 12× for
10⁶ → 10⁷), the peak RSS of the process, the machine and its load before and after.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_assess import machine  # noqa: E402

from chemomet.population import Population  # noqa: E402


def load() -> str:
    """The 1-, 5- and 15-minute load averages, one line."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def timed_sample(pop: Population, n: int, seed: int) -> tuple[float, float]:
    """CPU and wall seconds of one draw of ``n`` patients."""
    c0, w0 = time.process_time(), time.perf_counter()
    cov, params = pop.sample(n, rng=seed)
    c1, w1 = time.process_time(), time.perf_counter()
    assert params.n == n and len(cov) == n
    return c1 - c0, w1 - w0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=1_000_000)
    parser.add_argument("--large", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print("machine:", machine())
    print("before:", load())
    pop = Population()
    timed_sample(pop, 10_000, seed=0)  # imports and first-call costs out of the timings
    small, large = [], []
    for r in range(args.repeats):
        small.append(timed_sample(pop, args.small, seed=r + 1))
        large.append(timed_sample(pop, args.large, seed=r + 1))
        print(f"  repeat {r + 1}: {args.small:,} in {small[-1][0]:.2f} CPU-s ({small[-1][1]:.2f} s wall); "
              f"{args.large:,} in {large[-1][0]:.2f} CPU-s ({large[-1][1]:.2f} s wall)", flush=True)
    print("after:", load())
    cpu_s, cpu_l = statistics.median(c for c, _ in small), statistics.median(c for c, _ in large)
    wall_s, wall_l = statistics.median(w for _, w in small), statistics.median(w for _, w in large)
    linear = args.large / args.small
    print(f"medians: {args.small:,} {cpu_s:.2f} CPU-s / {wall_s:.2f} s; "
          f"{args.large:,} {cpu_l:.2f} CPU-s / {wall_l:.2f} s")
    print(f"ratio (CPU) {cpu_l / cpu_s:.2f}x for {linear:g}x the patients (target <= {1.2 * linear:g}x); "
          f"wall {wall_l / wall_s:.2f}x")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")


if __name__ == "__main__":
    main()
