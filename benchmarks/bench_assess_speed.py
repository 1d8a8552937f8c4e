"""Benchmark (issue 13 item 3): the default assessment of the example patient (all strategies, drivers,
trajectories, HTML report), today's code against the committed one, interleaved, CPU and wall time.

    python benchmarks/bench_assess_speed.py [--repeats 3] [--baseline REV] [--accuracy]

Baseline: the assessment as committed at ``--baseline`` (default ``HEAD``; its ``src/`` extracted with the
read-only ``git archive``), run in a child process (its own warm-up first, then one timed assessment and
report: its CPU seconds are measured inside the child), alternating with the working tree's, run in this
process. Medians of ``--repeats`` runs each. ``--accuracy`` also simulates every one of the 100,000 weighted twins
under every strategy (the direct estimator, about 100 CPU-s) and prints |ΔDMFS10| of the new path against it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_assess import machine  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, tempfile, time
from pathlib import Path
from chemomet.assess import AssessmentSettings, assess
from chemomet.assess.report import write_report
from chemomet.patient import example_patient
p, s = example_patient(), AssessmentSettings.default()
r = assess(p, settings=s.with_overrides({"sampling.n_twins": 2000})).to_dict()
with tempfile.TemporaryDirectory() as tmp:
    write_report(r, Path(tmp) / "warm.html")
    c0, w0 = time.process_time(), time.perf_counter()
    r = assess(p, settings=s).to_dict()
    write_report(r, Path(tmp) / "report.html")
    c1, w1 = time.process_time(), time.perf_counter()
print(json.dumps({"cpu": c1 - c0, "wall": w1 - w0,
                  "dmfs10": {x["name"]: x["dmfs_10y"]["mean"] for x in r["strategies"]}}))
"""


def load() -> str:
    """The 1-, 5- and 15-minute load averages and the CPU count, one line."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "load unknown"
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def baseline_tree(rev: str, into: Path) -> Path:
    """Extract ``src/`` of ``rev`` into ``into`` (``git archive``, read-only) and return the ``src`` path."""
    data = subprocess.run(["git", "archive", rev, "src"], cwd=ROOT, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def run_baseline(src: Path) -> dict:
    """One timed assessment + report of the committed code in a child process: CPU-s, wall-s, DMFS10 means."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_new(settings, patient) -> dict:
    """One timed assessment + report of the working tree, in this process: CPU-s, wall-s and the result."""
    from chemomet.assess import assess
    from chemomet.assess.report import write_report

    with tempfile.TemporaryDirectory() as tmp:
        c0, w0 = time.process_time(), time.perf_counter()
        r = assess(patient, settings=settings).to_dict()
        write_report(r, Path(tmp) / "report.html")
        c1, w1 = time.process_time(), time.perf_counter()
    return {"cpu": c1 - c0, "wall": w1 - w0, "result": r}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", default="HEAD", help="git revision of the baseline (default HEAD)")
    parser.add_argument("--accuracy", action="store_true", help="also compare with the direct estimator")
    args = parser.parse_args()

    from chemomet.assess import AssessmentSettings, assess
    from chemomet.assess.report import write_report
    from chemomet.patient import example_patient

    patient, settings = example_patient(), AssessmentSettings.default()
    warm = assess(patient, settings=settings.with_overrides({"sampling.n_twins": 2000})).to_dict()
    with tempfile.TemporaryDirectory() as tmp:
        write_report(warm, Path(tmp) / "warm.html")
    print(f"machine: {machine()}")
    print(f"before: {load()}")
    old, new = [], []
    with tempfile.TemporaryDirectory() as tmp:
        src = baseline_tree(args.baseline, Path(tmp))
        for _ in range(args.repeats):
            old.append(run_baseline(src))
            new.append(run_new(settings, patient))
            print(f"  baseline {old[-1]['cpu']:.2f} CPU-s {old[-1]['wall']:.2f} s | "
                  f"new {new[-1]['cpu']:.2f} CPU-s {new[-1]['wall']:.2f} s", flush=True)
    print(f"after: {load()}")
    med = {k: (statistics.median(r[k] for r in old), statistics.median(r[k] for r in new)) for k in ("cpu", "wall")}
    print(f"default assessment + report, median of {args.repeats}: baseline ({args.baseline}) {med['cpu'][0]:.2f} "
          f"CPU-s / {med['wall'][0]:.2f} s wall; new {med['cpu'][1]:.2f} CPU-s / {med['wall'][1]:.2f} s wall")
    print(f"speed-up (CPU): {med['cpu'][0] / med['cpu'][1]:.2f}x (target >= 10x, new <= 2 CPU-s)")
    acc = new[-1]["result"]["accuracy"]
    print(f"accuracy reached: target SE {acc['target_se']}, met: {acc['target_met']}; stages "
          + ", ".join(f"{s['draws']} draws/{s['distinct']} twins (max SE {s['max_se_dmfs_10y']:.4f})"
                      for s in acc["stages"]))
    for name, se in acc["se_resample_dmfs_10y"].items():
        base = old[-1]["dmfs10"][name]
        mean = next(x for x in new[-1]["result"]["strategies"] if x["name"] == name)["dmfs_10y"]["mean"]
        print(f"  {name:<20} DMFS10 new {mean:.4f} baseline {base:.4f}  SE vs direct {se:.4f}  "
              f"SE vs exact posterior {acc['se_total_dmfs_10y'][name]:.4f}")

    if args.accuracy:
        from chemomet.assess import evidence, forecast
        from chemomet.assess.assessment import default_strategies
        from chemomet.assess.twins import draw_twins, shipped_ensemble
        from chemomet.population import Population

        r = new[-1]["result"]
        ref, sm = Population(), settings.sampling
        twins = draw_twins(patient, sm.n_twins, sm.seed, ref, shipped_ensemble())
        terms = evidence.terms(patient, twins, ref, settings.observation, r["settings"]["regimen"])
        w = evidence.normalised(sum(t.loglik for t in terms))
        plan = default_strategies(patient, r["settings"]["regimen"])
        outcomes = forecast.simulate_twins(twins, np.arange(twins.n), plan, ref, sm.horizon_years)
        worst = 0.0
        for row in r["strategies"]:
            direct = float(np.sum(w * outcomes[row["name"]]["dmfs_10y"]))
            worst = max(worst, abs(row["dmfs_10y"]["mean"] - direct))
            print(f"  direct {row['name']:<20} {direct:.4f}  new - direct {row['dmfs_10y']['mean'] - direct:+.4f}")
        print(f"max |ΔDMFS10| against the direct estimator: {worst:.4f} (tolerance 0.0025)")


if __name__ == "__main__":
    main()
