"""Dormancy in the natural-history fit: TRANSBIG with and without the measured doubling times, and what the
fitted dormancy does to the treatment targets (docs/calibration.md, "Dormancy in the likelihood").

For each dormant fraction ``q`` given (or ``free``), fits the natural history on TRANSBIG (maximum marginal
likelihood, :mod:`chemomet.calibrate.natural_history`) with the mean dormancy free, optionally adding Ryu 2014's
median doubling times as likelihood terms, then puts the fit into the shipped calibration and reports, on 2,000
virtual patients (seed 11): adjuvant AC x4 vs none (EBCTCG 2012 rate ratio 0.78, 0.60-0.96) at three kill ratios
``s_met`` on colonies, distant recurrence over years 5-20 in ER+ T1N0 with 5 years of tamoxifen (Pan 2017: 0.13)
and without, and tamoxifen vs none by period (EBCTCG 2011: 0.53, 0.68, 0.97). One JSON line per fit.

Needs scikit-survival for TRANSBIG (``pip install chemomet[data]``). About 10-15 minutes per fit on one core at
128 quadrature nodes.

Usage::

    python examples/calibration/fit_dormancy.py --q free,0.9,0.6,0.3 --nodes 128 [--no-doubling-times]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from scipy import optimize

from chemomet.calibrate import natural_history as nh
from chemomet.calibrate.cohort import VirtualCohort
from chemomet.calibrate.endocrine import period_rate_ratios
from chemomet.calibrate.shipped import calibrated_config
from chemomet.calibrate.targets import adjuvant_benefit, pan_late_recurrence
from chemomet.calibrate.vector import natural_history_quantities, natural_history_theta, with_natural_history
from chemomet.datasets import load_transbig

KILL_RATIOS = (0.696, 2.0, 20.0)
"""Kill ratios on colonies tried for adjuvant AC x4 (the shipped 0.696, then stronger)."""


def fit_at(model: nh.MarginalModel, q: float | None, start: np.ndarray, max_evaluations: int) -> np.ndarray:
    """Nelder-Mead on the dormant natural-history vector with the dormant fraction fixed at ``q`` (None: free)."""
    free = np.ones(start.size, bool)
    if q is not None:
        free[5] = False
        start = start.copy()
        start[5] = np.log(q / (1.0 - q))

    def full(x):
        th = start.copy()
        th[free] = x
        return th

    def nll(x):
        val = -model.loglik(full(x))
        return val if np.isfinite(val) else 1e12

    x0 = start[free]
    simplex = np.vstack([x0, x0 + np.diag(np.full(x0.size, 0.3))])
    res = optimize.minimize(
        nll, x0, method="Nelder-Mead",
        options={"maxfev": max_evaluations, "xatol": 2e-3, "fatol": 2e-3, "adaptive": True, "initial_simplex": simplex},
    )
    return full(res.x)


def consequences(theta: np.ndarray, n: int = 2000, seed: int = 11) -> dict:
    """Treatment targets of the shipped calibration with the natural history (and dormancy) of ``theta``."""
    cfg = with_natural_history(theta, calibrated_config())
    cohort = VirtualCohort.draw(cfg, n, seed)
    out = {}
    for s_met in KILL_RATIOS:
        c = {**cfg, "treatment": {**cfg["treatment"], "metastasis_kill_ratio": s_met}}
        out[f"adjuvant_rate_ratio_s_met_{s_met}"] = adjuvant_benefit(c, cohort)["rate_ratio"]
    yes, no = np.ones(n, bool), np.zeros(n, bool)
    t1n0 = cohort.with_covariates(
        er=yes, pr=yes, her2=no, diameter_mm=np.minimum(cohort.covariates["diameter_mm"].to_numpy(), 20.0)
    )
    out["pan_5_20_tamoxifen"] = pan_late_recurrence(cfg, t1n0)["dr_5_20"]
    out["pan_5_20_untreated"] = pan_late_recurrence(cfg, t1n0, "surgery-only")["dr_5_20"]
    out["tamoxifen_rate_ratios"] = period_rate_ratios(cfg, cohort)
    return out


def main() -> None:
    """Run the fits named on the command line and print one JSON line each."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--q", default="free", help="comma-separated dormant fractions, or 'free'")
    ap.add_argument("--nodes", type=int, default=128, help="quadrature nodes per patient")
    ap.add_argument("--max-evaluations", type=int, default=1500)
    ap.add_argument("--no-doubling-times", action="store_true", help="TRANSBIG alone, without Ryu 2014")
    args = ap.parse_args()
    cohort = load_transbig()
    measurements = () if args.no_doubling_times else nh.published_doubling_times()
    model = nh.MarginalModel(
        cohort.covariates, cohort.time_days, cohort.event, n_nodes=args.nodes, measurements=measurements
    )
    start = natural_history_theta(calibrated_config(), dormancy=True)
    for item in args.q.split(","):
        q = None if item == "free" else float(item)
        t0 = time.perf_counter()
        theta = fit_at(model, q, start, args.max_evaluations)
        cfg = with_natural_history(theta)
        record = {
            "dormant_fraction": "free" if q is None else q,
            "doubling_time_measurements": bool(measurements),
            "loglik_total": model.loglik(theta),
            "loglik_measurements": sum(m.loglik(cfg) for m in measurements),
            "theta": theta.tolist(),
            "quantities": natural_history_quantities(theta),
            "fit_s": round(time.perf_counter() - t0, 1),
            **consequences(theta),
        }
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
