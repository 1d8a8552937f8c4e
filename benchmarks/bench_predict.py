"""Benchmark: batch prediction (`chemomet predict`) on a 10,000-patient cohort table.

    python benchmarks/bench_predict.py                    # 10,000 patients, surgery first and NACT, 5 and 10 years
    python benchmarks/bench_predict.py --n 2000 --repeats 3 --baseline 2

The cohort is drawn from the population model (covariates, Ki67, nodes; TMEM and CTC counts drawn around the
virtual patients' own parameters), with realistic gaps: Ki67 missing in 20%, HER2 in 10%, grade in 5%, nodes in
10%, TMEM measured in 30%, CTCs in 30%, and 5 bad rows. It is written as CSV and read back as `chemomet predict`
reads it. Reported per repeat: CPU seconds (this process, all threads) and wall seconds, the machine and the load
average before and after; the median over repeats. Target (issue 13): <= 60 CPU-seconds for 10,000 patients.

With ``--baseline K``, K patients of the cohort are also assessed one by one (:func:`chemomet.assess.assess` at
its default sizes, strategies surgery first and NACT, no drivers or trajectories) in the same run, for the
per-patient CPU cost of the single-patient path and the agreement of the two on those patients.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from bench_assess import machine  # the same one-line machine description


def load() -> str:
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def cohort_table(n: int, seed: int) -> pd.DataFrame:
    """A realistic cohort table with gaps and a few bad rows (see the module docstring)."""
    from chemomet.model import dissemination as dis
    from chemomet.population import Population

    pop = Population()
    cov, params = pop.sample(n, seed)
    rng = np.random.default_rng(seed)
    k = 10.0
    tmem = rng.negative_binomial(k, k / (k + params.T0))
    lam = dis.expected_ctc(params.mu * np.exp(params.gamma * params.log_cells0), pop.settings)
    kc = pop.settings.ctc_count_dispersion
    ctc = rng.negative_binomial(kc, kc / (kc + np.maximum(lam, 1e-12)))

    def pos(b):
        return np.where(b, "positive", "negative").astype(object)

    frame = pd.DataFrame(
        {
            "id": [f"p{i:05d}" for i in range(n)],
            "age": cov["age"].round(0),
            "diameter_mm": cov["diameter_mm"].round(0).clip(lower=1),
            "grade": cov["grade"].astype(float),
            "er": pos(cov["er"]),
            "pr": pos(cov["pr"]),
            "her2": pos(cov["her2"]),
            "ki67_percent": cov["ki67_percent"].round(0),
            "nodes_positive": cov["nodes_positive"].astype(float),
            "tmem_score": tmem.astype(float),
            "tmem_convention": "10HPF",
            "ctc_count": ctc.astype(float),
            "morphology": np.where(cov["alveolar_or_trabecular"], "alveolar", ""),
        }
    )
    for col, share in (("ki67_percent", 0.2), ("her2", 0.1), ("grade", 0.05), ("nodes_positive", 0.1)):
        frame.loc[rng.random(n) < share, col] = np.nan
    no_tmem = rng.random(n) >= 0.3
    frame.loc[no_tmem, ["tmem_score", "tmem_convention"]] = np.nan
    frame.loc[rng.random(n) >= 0.3, "ctc_count"] = np.nan
    bad = rng.choice(n, size=min(5, n), replace=False)
    frame.loc[bad, "age"] = 300.0  # bad rows: reported by number, the rest scored
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--strategy", action="append", default=None)
    parser.add_argument("--baseline", type=int, default=0, help="patients also assessed one by one")
    args = parser.parse_args()

    from chemomet.assess.predict import predict, read_cohort

    strategies = args.strategy or ["surgery-first", "nact"]
    print(f"machine: {machine()}")
    print(f"load average (1, 5, 15 min) at start: {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cohort.csv"
        cohort_table(args.n, args.seed).to_csv(path, index=False)
        predict(read_cohort(path).head(3), strategies, [10], min_twins_per_cell=256)  # warm imports and caches
        cpu, wall, risks = [], [], None
        for r in range(args.repeats):
            c0, t0 = time.process_time(), time.perf_counter()
            risks = predict(read_cohort(path), strategies, [5, 10])
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - t0)
            print(f"  repeat {r + 1}: {cpu[-1]:.1f} CPU-s, {wall[-1]:.1f} s wall (load now {load()})")
    s = risks.attrs["settings"]
    ok = risks["status"] == "ok"
    print(
        f"predict, {args.n:,} patients x {len(strategies)} strategies x 2 horizons: "
        f"median {statistics.median(cpu):.1f} CPU-s, {statistics.median(wall):.1f} s wall over {args.repeats} "
        "run(s); target <= 60 CPU-s for 10,000"
    )
    print(
        f"  {s['cells']} cells, {s['twins']:,} twins ({s['twins'] / args.n:.1f} per patient); scored {int(ok.sum()):,},"
        f" bad rows {int((~ok).sum())}; effective sample size per patient: median {risks['ess'].median():.0f}, "
        f"5th percentile {risks['ess'].quantile(0.05):.0f}, min {risks['ess'].min():.0f}"
    )
    m = risks.loc[ok, f"{strategies[-1]}_dmfs_10y"]
    print(f"  {strategies[-1]} DMFS10: mean {m.mean():.4f}, "
          f"5-95% of patients {m.quantile(0.05):.3f}-{m.quantile(0.95):.3f}")
    print(f"load average (1, 5, 15 min) at end: {load()}")

    if args.baseline:
        from chemomet.assess.assessment import assess
        from chemomet.assess.predict import _patients

        patients = [p for p in _patients(cohort_table(args.n, args.seed), "error") if not isinstance(p, Exception)]
        c0 = time.process_time()
        for p in patients[: args.baseline]:
            a = assess(p, [], drivers=False, trajectories=False)
            row = risks[risks["id"] == p.id].iloc[0]
            got = {x.name: x.dmfs_10y.mean for x in a.strategies}
            print(
                f"  {p.id}: assess nact DMFS10 {got['nact']:.4f} vs predict {row['nact_dmfs_10y']:.4f} "
                f"(ESS {row['ess']:.0f})"
            )
        per = (time.process_time() - c0) / args.baseline
        print(f"baseline: single-patient assess {per:.1f} CPU-s per patient -> {per * args.n / 3600:.1f} CPU-hours "
              f"for {args.n:,}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
