"""Benchmark: one full patient assessment (100,000 twins, all strategies, drivers, trajectories, HTML report).

    python benchmarks/bench_assess.py                 # timing + accuracy against full simulation of all twins
    python benchmarks/bench_assess.py --coverage 200  # also the coverage validation at the default sizes (slow)

Baseline, measured in the same run: the direct estimator — every one of the 100,000 weighted twins simulated
under every strategy (no resampling). Reported: wall times, the speed ratio, and how far the assessment's
posterior means lie from the direct estimator's (the price of simulating a resample only).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def machine() -> str:
    """CPU model, cores and library versions, one line."""
    cpu = "unknown"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, NumPy {np.__version__}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--coverage", type=int, default=0, help="synthetic patients for the coverage validation")
    args = parser.parse_args()

    from chemomet.assess import AssessmentSettings, assess, evidence, forecast
    from chemomet.assess.report import write_report
    from chemomet.assess.twins import draw_twins, shipped_ensemble
    from chemomet.patient import example_patient
    from chemomet.population import Population

    patient = example_patient()
    settings = AssessmentSettings.default()
    assess(patient, settings=settings.with_overrides({"sampling.n_twins": 2000}))  # warm caches and imports
    times, result = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            result = assess(patient, settings=settings).to_dict()
            write_report(result, Path(tmp) / "report.html")
            times.append(time.perf_counter() - t0)
    t_assess = statistics.median(times)

    # baseline: all twins simulated, exact self-normalised weights
    t0 = time.perf_counter()
    ref = Population()
    sm = settings.sampling
    twins = draw_twins(patient, sm.n_twins, sm.seed, ref, shipped_ensemble())
    terms = evidence.terms(patient, twins, ref, settings.observation, result["settings"]["regimen"])
    w = evidence.normalised(sum(t.loglik for t in terms))
    from chemomet.assess.assessment import default_strategies

    plan = default_strategies(patient, result["settings"]["regimen"])
    outcomes = forecast.simulate_twins(twins, np.arange(twins.n), plan, ref, sm.horizon_years)
    t_direct = time.perf_counter() - t0

    print(f"machine: {machine()}")
    print(f"full assessment (n_twins={sm.n_twins:,}, n_simulated={sm.n_simulated:,}, {len(plan)} strategies, "
          f"drivers, trajectories, report): median {t_assess:.2f} s over {args.repeats} runs "
          f"({', '.join(f'{t:.2f}' for t in times)}); target <= 10 s")
    print(f"baseline, direct estimator (all {sm.n_twins:,} twins x {len(plan)} strategies, no drivers, no report): "
          f"{t_direct:.2f} s")
    print(f"speed ratio baseline / assessment: {t_direct / t_assess:.2f}x")
    worst = 0.0
    for row in result["strategies"]:
        direct = float(np.sum(w * outcomes[row["name"]]["dmfs_10y"]))
        diff = row["dmfs_10y"]["mean"] - direct
        worst = max(worst, abs(diff))
        print(f"  DMFS10 {row['name']:<20} assessment {row['dmfs_10y']['mean']:.4f}  direct {direct:.4f}  "
              f"diff {diff:+.4f}")
    excess = float(np.sum(w * (outcomes["surgery-first"]["dmfs_10y"] - outcomes["nact"]["dmfs_10y"])))
    print(f"  excess risk 10y: assessment {result['nact_excess_risk_10y']['mean']:+.4f}  direct {excess:+.4f}")
    print(f"max |diff| DMFS10 means: {worst:.4f} (ESS {result['evidence']['ess']:.0f})")

    if args.coverage:
        from chemomet import simulate
        from chemomet.assess.synthetic import synthetic_patients

        t0 = time.perf_counter()
        patients, truth = synthetic_patients(args.coverage, 5, ref, shipped_ensemble(), settings.observation)
        true10 = simulate(truth, "nact", 3652.5, population=ref).summary["dmfs_10y"].to_numpy()
        hits = []
        for p, tv in zip(patients, true10, strict=True):
            r = assess(p, strategies=[], settings=settings, drivers=False, trajectories=False).to_dict()
            ci = next(x for x in r["strategies"] if x["name"] == "nact")["dmfs_10y"]
            hits.append(ci["lo"] <= tv <= ci["hi"])
        print(f"coverage of 90% intervals (default sizes, {args.coverage} synthetic patients): "
              f"{np.mean(hits):.3f} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
