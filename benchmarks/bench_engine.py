"""Benchmark: the fused engine (compiled per-patient kernels) against the NumPy reference engine, and at scale.

    python benchmarks/bench_engine.py                       # 100,000 patients interleaved, then the scale run
    python benchmarks/bench_engine.py --n 20000 --repeats 5 --scale 0
    python benchmarks/bench_engine.py --n 0 --scale 1000000 # the scale run only

[1] Interleaved: both engines on the same ``--n`` calibrated patients (``nact+rebastinib``, 15 years,
:func:`chemomet.model.engine.simulate_schedule` with every core), NumPy then fused in every repeat, so a change of
load hits both alike; each figure is the median over ``--repeats`` (≥ 3), in CPU seconds of this process (all
threads) and wall seconds, with patients per CPU-second. Then one more call of each under ``tracemalloc`` gives
its peak of NumPy-allocated memory (the kernel's own node-length buffers are not counted; they are a few KiB).
The largest difference between the engines in every summary column is printed too.

[2] Scale, in a fresh process (so its peak RSS is its own): ``--scale`` calibrated patients sampled once, then
``nact``, ``nact+rebastinib`` and ``surgery-first`` each simulated with ``cm.simulate`` (fused engine) and
summarised (mean of every summary column); wall and CPU seconds of each step, the engine's patients per
CPU-second on ``nact+rebastinib``, and the peak RSS of the process (targets: ≥ 25,000 patients per CPU-second,
everything ≤ 60 s on 2 idle cores, ≤ 2 GiB).

The machine and its load average are printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
from bench_assess import machine  # the same one-line machine description

HORIZON = 15 * 365.25
STRATEGY = "nact+rebastinib"
SCALE_STRATEGIES = ("nact", "nact+rebastinib", "surgery-first")


def load() -> str:
    """The load average (1, 5, 15 min), one line."""
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def timed(fn) -> tuple[float, float]:
    """CPU seconds (this process, all threads) and wall seconds of one call of ``fn``."""
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    return time.process_time() - c0, time.perf_counter() - t0


def peak_rss_gib() -> float:
    """Peak resident memory of this process so far (GiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def interleaved(n: int, repeats: int, seed: int) -> None:
    """NumPy and fused engine on the same patients, interleaved, medians over ``repeats``."""
    import chemomet as cm
    from chemomet.model.engine import simulate_schedule
    from chemomet.regimens import Strategy, load_drugs

    pop = cm.Population()
    drugs = load_drugs()
    schedule = Strategy.parse(STRATEGY).schedule()
    _, params = pop.sample(n, seed)

    def run(engine):
        return simulate_schedule(params, schedule, pop.settings, HORIZON, drugs=drugs, engine=engine)[0]

    for engine in ("numpy", "fused"):  # warm-up: imports, timeline cache, the kernels' compiled code
        simulate_schedule(params.take(slice(0, 64)), schedule, pop.settings, HORIZON, drugs=drugs, engine=engine)
    times = {"numpy": [], "fused": []}
    for r in range(repeats):
        for engine in times:
            times[engine].append(timed(lambda engine=engine: run(engine)))
        print(f"  repeat {r + 1} done (load now {load()})", flush=True)
    peaks = {}
    results = {}
    for engine in times:
        tracemalloc.start()
        results[engine] = run(engine)
        peaks[engine] = tracemalloc.get_traced_memory()[1] / 2**30
        tracemalloc.stop()

    print(f"\n[1] {n:,} patients, {STRATEGY}, 15 years, {os.cpu_count()} threads (median of {repeats})")
    print(f"    {'engine':8s} {'CPU-s':>9s} {'wall-s':>9s} {'patients/CPU-s':>15s} {'patients/s':>11s} "
          f"{'peak NumPy memory':>18s}")
    cpu = {}
    for engine, runs in times.items():
        cpu[engine] = statistics.median(c for c, _ in runs)
        wall = statistics.median(w for _, w in runs)
        print(f"    {engine:8s} {cpu[engine]:9.2f} {wall:9.2f} {n / cpu[engine]:15,.0f} {n / wall:11,.0f} "
              f"{peaks[engine]:14.3f} GiB")
    print(f"    fused / numpy: {cpu['numpy'] / cpu['fused']:.1f}x less CPU (target >= 5x); "
          f"process peak RSS so far {peak_rss_gib():.2f} GiB")
    a, b = results["numpy"], results["fused"]
    def rel(c):
        x, y = a[c].to_numpy(), b[c].to_numpy()
        return float(np.nanmax(np.abs(x - y) / np.maximum(np.abs(x), 1e-300), initial=0.0))

    worst = max((rel(c), c) for c in a.columns if a[c].notna().any())
    dmfs = float(np.max(np.abs(a["dmfs_10y"].to_numpy() - b["dmfs_10y"].to_numpy())))
    print(f"    largest |fused - numpy|: DMFS10 {dmfs:.1e} absolute; any column {worst[0]:.1e} relative ({worst[1]})")


def scale_run(n: int, seed: int) -> dict:
    """``n`` patients × the scale strategies with ``cm.simulate`` (fused engine), in this process."""
    import chemomet as cm

    c0, t0 = time.process_time(), time.perf_counter()
    cm.simulate(cm.Population().sample(16, 0)[1], STRATEGY, HORIZON)  # imports, kernels from numba's cache
    out = {"n": n, "warm_up": (time.process_time() - c0, time.perf_counter() - t0)}
    c1, t1 = time.process_time(), time.perf_counter()
    _, params = cm.Population().sample(n, seed)
    out["sample"] = (time.process_time() - c1, time.perf_counter() - t1)
    out["strategies"] = {}
    for strategy in SCALE_STRATEGIES:
        c2, t2 = time.process_time(), time.perf_counter()
        summary = cm.simulate(params, strategy, HORIZON).summary
        c3, t3 = time.process_time(), time.perf_counter()
        means = summary.drop(columns="patient").mean()
        c4, t4 = time.process_time(), time.perf_counter()
        out["strategies"][strategy] = {
            "simulate": (c3 - c2, t3 - t2), "summarise": (c4 - c3, t4 - t3),
            "mean_dmfs_10y": float(means["dmfs_10y"]), "mean_p_pcr": float(means["p_pcr"]),
        }
    out["total"] = (time.process_time() - c1, time.perf_counter() - t1)
    out["peak_rss_gib"] = peak_rss_gib()
    return out


def report_scale(sc: dict) -> None:
    n = sc["n"]
    print(f"\n[2] scale run, fresh process, {n:,} patients x {len(sc['strategies'])} strategies (fused engine, "
          f"{os.cpu_count()} threads)")
    print(f"    warm-up (imports, cached kernels): {sc['warm_up'][1]:.1f} s wall")
    print(f"    sample the population: {sc['sample'][0]:.1f} CPU-s, {sc['sample'][1]:.1f} s wall")
    for strategy, r in sc["strategies"].items():
        (cs, ws), (_, wm) = r["simulate"], r["summarise"]
        print(f"    {strategy:16s} simulate {cs:6.1f} CPU-s {ws:6.1f} s wall ({n / cs:,.0f} patients/CPU-s); "
              f"summarise {wm:.2f} s; mean DMFS10 {r['mean_dmfs_10y']:.4f}, pCR {r['mean_p_pcr']:.3f}")
    print(f"    total (sample + simulate + summarise): {sc['total'][0]:.1f} CPU-s, {sc['total'][1]:.1f} s wall "
          "(target <= 60 s on 2 idle cores)")
    print(f"    peak RSS {sc['peak_rss_gib']:.2f} GiB (target <= 2 GiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="patients for the interleaved comparison (0: skip)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scale", type=int, default=1_000_000, help="patients for the scale run (0: skip)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--scale-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scale_only:
        print(json.dumps(scale_run(args.scale, args.seed)))
        return
    if args.repeats < 3:
        parser.error("--repeats must be at least 3 (medians of fewer mean little on a shared machine)")

    print(f"machine: {machine()}")
    print(f"load average (1, 5, 15 min) at start: {load()}")
    if args.n:
        interleaved(args.n, args.repeats, args.seed)
    if args.scale:
        res = subprocess.run(
            [sys.executable, __file__, "--scale-only", "--scale", str(args.scale), "--seed", str(args.seed)],
            capture_output=True, text=True, check=True,
        )
        report_scale(json.loads(res.stdout.strip().splitlines()[-1]))
    print(f"\nload average (1, 5, 15 min) at end: {load()}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
