"""Benchmark: chemomet.simulate against a plain per-patient solve_ivp implementation of the same equations.

Run:  python benchmarks/bench_simulate.py [--n-ref 100] [--n-fast 1000000] [--strategy nact+rebastinib]
      python benchmarks/bench_simulate.py --skip-baseline   # the engine only (the baseline takes ~260 CPU-s)

Prints the machine, then (1) the baseline (``chemomet.model.reference``: solve_ivp for the primary clones and
microenvironment, colony cohorts grown as ODEs) on ``--n-ref`` virtual patients, both implementations using
the same 2 cores (baseline: one process per core; engine: threads), the speed ratio per patient and the
largest |Δ DMFS at 10 years|; (2) ``--n-fast`` patients over 15 years in a fresh process: wall time,
patients/s and peak memory (max RSS of that process). Engine times are given in CPU seconds (this process, all
threads) beside wall seconds, and the load average is printed before and after: on a shared machine the wall
times mostly reflect the load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

HORIZON = 15 * 365.25
TIMES = np.array([0.0, 10 * 365.25, HORIZON])


def machine() -> str:
    """One line describing this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    python = platform.python_version()
    return f"{platform.node()} | {cpu} | {os.cpu_count()} CPUs | Python {python} | NumPy {np.__version__}"


def _reference_one(args):
    index, strategy, seed = args
    import chemomet as cm
    from chemomet.model.reference import reference_dmfs
    from chemomet.regimens import Strategy, load_drugs

    pop = cm.Population()
    _, params = pop.sample(1, seed, start=index)
    st = Strategy.parse(strategy)
    t0 = time.process_time()
    dmfs = reference_dmfs(params, st.schedule(), load_drugs(), pop.settings, TIMES, n_pre_cohorts=2000)
    return index, dmfs[1], time.process_time() - t0


def load() -> str:
    """The load average (1, 5, 15 min), one line."""
    return "load average " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def compare(n_ref: int, strategy: str, seed: int, baseline: bool = True) -> dict:
    """Baseline vs engine on the same ``n_ref`` patients, both on all cores (``baseline=False``: the engine only)."""
    import chemomet as cm

    ref_wall = ref_dmfs10 = None
    if baseline:
        t0 = time.perf_counter()
        with ProcessPoolExecutor(max_workers=os.cpu_count()) as pool:
            ref = sorted(pool.map(_reference_one, [(i, strategy, seed) for i in range(n_ref)]))
        ref_wall = time.perf_counter() - t0
        ref_dmfs10 = np.array([r[1] for r in ref])

    _, params = cm.Population().sample(n_ref, seed)
    cm.simulate(params.take([0]), strategy, HORIZON)  # warm-up (imports, caches)
    repeats = max(1, int(20000 / n_ref))
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(repeats):
        fast = cm.simulate(params, strategy, HORIZON)
    fast_cpu = (time.process_time() - c0) / repeats
    fast_wall = (time.perf_counter() - t0) / repeats
    out = {
        "n_patients": n_ref,
        "repeats": repeats,
        "engine_cpu_s": fast_cpu,
        "engine_wall_s": fast_wall,
        "engine_patients_per_cpu_s": n_ref / fast_cpu,
        "engine_patients_per_s": n_ref / fast_wall,
    }
    if baseline:
        diff = np.abs(fast.summary["dmfs_10y"].to_numpy() - ref_dmfs10)
        out.update(
            baseline_wall_s=ref_wall,
            baseline_patients_per_s=n_ref / ref_wall,
            speed_ratio_per_patient=ref_wall / fast_wall,
            max_abs_diff_dmfs10=float(diff.max()),
            mean_abs_diff_dmfs10=float(diff.mean()),
            mean_dmfs10=float(ref_dmfs10.mean()),
        )
    return out


def scale_run(n: int, strategy: str, seed: int) -> dict:
    """Simulate ``n`` patients in this process and report time and peak memory (call in a fresh process)."""
    import resource

    import chemomet as cm

    cm.simulate(cm.Population().sample(10, 0)[1], strategy, HORIZON)  # warm-up
    c0, t0 = time.process_time(), time.perf_counter()
    _, params = cm.Population().sample(n, seed)
    c1, t1 = time.process_time(), time.perf_counter()
    out = cm.simulate(params, strategy, HORIZON)
    c2, t2 = time.process_time(), time.perf_counter()
    return {
        "n_patients": n,
        "sample_s": t1 - t0,
        "sample_cpu_s": c1 - c0,
        "simulate_s": t2 - t1,
        "simulate_cpu_s": c2 - c1,
        "total_s": t2 - t0,
        "patients_per_s": n / (t2 - t1),
        "patients_per_cpu_s": n / (c2 - c1),
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "mean_dmfs10": float(out.summary["dmfs_10y"].mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n-ref", type=int, default=100, help="patients for the solve_ivp baseline (>= 100)")
    parser.add_argument("--n-fast", type=int, default=1_000_000, help="patients for the scale run")
    parser.add_argument("--strategy", default="nact+rebastinib")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--skip-baseline", action="store_true", help="time the engine only (no solve_ivp run)")
    parser.add_argument("--scale-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scale_only:
        print(json.dumps(scale_run(args.n_fast, args.strategy, args.seed)))
        return

    print(f"machine: {machine()}")
    print(f"before: {load()}")
    print(f"strategy: {args.strategy}, horizon {HORIZON:.0f} days\n")
    baseline = not args.skip_baseline
    cmp = compare(args.n_ref, args.strategy, args.seed, baseline)
    if baseline:
        print(
            f"[1] baseline (solve_ivp, {cmp['n_patients']} patients): {cmp['baseline_wall_s']:.1f} s, "
            f"{cmp['baseline_patients_per_s']:.2f} patients/s"
        )
    else:
        print(f"[1] baseline skipped (--skip-baseline); engine on {cmp['n_patients']} patients")
    print(
        f"    engine  (same patients, mean of {cmp['repeats']} calls): {cmp['engine_cpu_s'] * 1e3:.1f} CPU-ms "
        f"({cmp['engine_patients_per_cpu_s']:.0f} patients/CPU-s), {cmp['engine_wall_s'] * 1e3:.1f} ms wall "
        f"({cmp['engine_patients_per_s']:.0f} patients/s)"
    )
    if baseline:
        print(f"    speed ratio per patient: {cmp['speed_ratio_per_patient']:.0f}x (target >= 1000x)")
        print(
            f"    max |DMFS10 engine - baseline| = {cmp['max_abs_diff_dmfs10']:.2e} "
            f"(mean {cmp['mean_abs_diff_dmfs10']:.1e}; target <= 1e-3; mean DMFS10 {cmp['mean_dmfs10']:.3f})"
        )

    res = subprocess.run(
        [
            sys.executable,
            __file__,
            "--scale-only",
            "--n-fast",
            str(args.n_fast),
            "--strategy",
            args.strategy,
            "--seed",
            str(args.seed),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    sc = json.loads(res.stdout.strip().splitlines()[-1])
    print(
        f"\n[2] scale run, fresh process: {sc['n_patients']:,} patients: simulate {sc['simulate_cpu_s']:.1f} CPU-s / "
        f"{sc['simulate_s']:.1f} s wall (+ sampling {sc['sample_cpu_s']:.1f} CPU-s / {sc['sample_s']:.1f} s), "
        f"{sc['patients_per_cpu_s']:.0f} patients/CPU-s, {sc['patients_per_s']:.0f} patients/s, "
        f"peak memory {sc['peak_rss_gib']:.2f} GiB (targets: <= 60 s, <= 4 GiB)"
    )
    if baseline:
        print(
            f"    speed ratio per patient at scale: {sc['patients_per_s'] / cmp['baseline_patients_per_s']:.0f}x "
            "(engine throughput at scale / baseline throughput, both on all cores)"
        )
    print(f"after: {load()}")


if __name__ == "__main__":
    main()
