"""Benchmark: the per-schedule timeline — cold build, cached, and what it costs a simulation and a trial chunk.

    python benchmarks/bench_timeline.py                        # baseline: the timeline of commit 94b24d8
    python benchmarks/bench_timeline.py --repeats 5 --baseline-rev HEAD~1
    python benchmarks/bench_timeline.py --no-baseline          # the current code only

Baseline and contender run interleaved in this one process (baseline, contender, baseline, … in every repeat),
so a change of load hits both alike; each figure is the median over ``--repeats`` (≥ 3), in CPU seconds of this
process (all threads) and wall seconds, with the machine and the load average printed before and after.

* baseline: ``build_timeline`` of ``--baseline-rev`` (read with ``git show``; uniform Simpson grid, sub-step set
  by the fastest rate of any drug, every dose superposed one by one, rebuilt on every call);
* contender cold: this code with the cache emptied before every call (refined sub-grid, recurrent superposition);
* contender cached: this code as it runs, the timeline taken from the per-process cache.

Measured: the timeline of ``nact``, ``nact+rebastinib`` and ``nact+plerixafor`` (15 years); a 100-patient
``cm.simulate`` call (nact+rebastinib, 15 years); a trial chunk of 2,000 patients × 2 arms
(``examples/trials/nact_vs_rebastinib_allcomers.toml``, :func:`chemomet.trial.chunk.simulate_patients`). The
largest difference between baseline and contender in 10-year DMFS is printed as well (0 for nact: the same code
path to the bit; the rest within the refined grid's documented accuracy).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from bench_assess import machine  # the same one-line machine description

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "examples" / "trials" / "nact_vs_rebastinib_allcomers.toml"


def load() -> str:
    """The load average (1, 5, 15 min), one line."""
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def baseline_module(rev: str):
    """``chemomet.model.timeline`` as of git revision ``rev``, imported under another name (None if unreadable)."""
    try:
        text = subprocess.run(["git", "show", f"{rev}:src/chemomet/model/timeline.py"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path(tempfile.mkdtemp()) / "timeline_baseline.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("timeline_baseline", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@contextmanager
def engine_timeline(build):
    """Let the engine build its timelines with ``build`` for a while."""
    from chemomet.model import engine

    saved = engine.build_timeline
    engine.build_timeline = build
    try:
        yield
    finally:
        engine.build_timeline = saved


def timed(fn, loops: int = 1) -> tuple[float, float]:
    """CPU seconds and wall seconds of one call of ``fn`` (the mean over ``loops`` calls)."""
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(loops):
        fn()
    return (time.process_time() - c0) / loops, (time.perf_counter() - t0) / loops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline-rev", default="94b24d8", help="git revision of the baseline timeline")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--chunk", type=int, default=2000, help="patients per arm in the trial chunk")
    args = parser.parse_args()
    if args.repeats < 3:
        parser.error("--repeats must be at least 3 (medians of fewer mean little on a shared machine)")

    import chemomet as cm
    from chemomet.model import timeline as T
    from chemomet.regimens import Strategy, load_drugs
    from chemomet.trial.chunk import simulate_patients
    from chemomet.trial.screening import screen
    from chemomet.trial.spec import read_trial_spec

    old = None if args.no_baseline else baseline_module(args.baseline_rev)
    print(f"machine: {machine()}")
    print(f"load average (1, 5, 15 min) at start: {load()}")
    print(f"baseline: {'none' if old is None else 'timeline.py of ' + args.baseline_rev}; repeats: {args.repeats}")
    drugs = load_drugs()
    settings = cm.Population().settings
    rates = (settings.k_macrophage_per_day, settings.k_mena_per_day, settings.mechanisms)

    def cold_build(schedule, dr, k_m, k_f, mech=None):
        T.clear_timeline_cache()
        return T.build_timeline(schedule, dr, k_m, k_f, mech)

    variants = {"contender cold": cold_build, "contender cached": T.build_timeline}
    if old is not None:
        variants = {"baseline": old.build_timeline, **variants}

    # the cases: timelines, a 100-patient call, a trial chunk
    schedules = {s: Strategy.parse(s).schedule() for s in ("nact", "nact+rebastinib", "nact+plerixafor")}
    _, cohort = cm.Population().sample(100, 1)
    spec = read_trial_spec(SPEC)
    index, _ = screen(spec, spec.make_population(), 2 * args.chunk)
    positions = np.arange(2 * args.chunk, dtype=np.int64)

    cases = {}
    for name, sch in schedules.items():
        loops = {"baseline": 3, "contender cold": 10, "contender cached": 1000}
        cases[f"timeline {name}"] = (lambda b, sch=sch: b(sch, drugs, *rates), loops)
    cases["cm.simulate 100 patients nact+rebastinib"] = (
        lambda b: cm.simulate(cohort, "nact+rebastinib"), {"baseline": 1, "contender cold": 1, "contender cached": 1})
    cases[f"trial chunk {args.chunk} x 2 arms"] = (
        lambda b: simulate_patients(spec, positions, index[: positions.size]), {k: 1 for k in variants})

    for build in variants.values():  # warm imports, the population and (for the cached contender) the cache
        with engine_timeline(build):
            cm.simulate(cohort.take(slice(0, 4)), "nact+rebastinib")
            for sch in schedules.values():
                build(sch, drugs, *rates)

    results = {case: {v: [] for v in variants} for case in cases}
    for r in range(args.repeats):
        for case, (fn, loops) in cases.items():
            for v, build in variants.items():  # interleaved: every variant once per repeat, in turn
                with engine_timeline(build):
                    results[case][v].append(timed(lambda fn=fn, build=build: fn(build), loops[v]))
        print(f"  repeat {r + 1} done (load now {load()})")

    print(f"\n{'case':44s} {'variant':17s} {'CPU-s':>10s} {'wall-s':>10s}  (median of {args.repeats})")
    for case, by in results.items():
        base = statistics.median(c for c, _ in by["baseline"]) if "baseline" in by else None
        for v, runs in by.items():
            cpu = statistics.median(c for c, _ in runs)
            wall = statistics.median(w for _, w in runs)
            ratio = f"  {base / cpu:7.1f}x less CPU" if base and v != "baseline" and cpu > 0 else ""
            print(f"{case:44s} {v:17s} {cpu:10.5f} {wall:10.5f}{ratio}")

    if old is not None:  # what the refined grid changes in the results
        print("\nlargest |Δ DMFS at 10 years|, baseline vs contender (100 patients):")
        for s in ("nact", "nact+rebastinib", "nact+plerixafor", "nact+pexidartinib"):
            with engine_timeline(old.build_timeline):
                a = cm.simulate(cohort, s).summary["dmfs_10y"].to_numpy()
            b = cm.simulate(cohort, s).summary["dmfs_10y"].to_numpy()
            print(f"  {s:20s} {np.max(np.abs(a - b)):.2e}")
    print(f"\nload average (1, 5, 15 min) at end: {load()}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
