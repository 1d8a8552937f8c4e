"""Wall time of the calibration steps (needs the data extra: pip install chemomet[data]).

    python benchmarks/bench_calibrate.py [--cv]

Times the natural-history fit on TRANSBIG (198 patients x 512 quadrature nodes, Nelder-Mead + Laplace), the
targets calibration (4,000 virtual patients, common random numbers) and, with ``--cv``, the 5x5-fold
cross-validation (2 processes). Prints one line per step.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cv", action="store_true", help="also time the 5x5-fold cross-validation")
    ap.add_argument("--patients", type=int, default=4000)
    args = ap.parse_args()

    from chemomet.calibrate import natural_history as nh
    from chemomet.calibrate import targets as tg
    from chemomet.calibrate.vector import with_natural_history
    from chemomet.datasets import load_transbig

    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}")
    c = load_transbig()
    t0 = time.perf_counter()
    model = nh.MarginalModel(c.covariates, c.time_days, c.event, n_nodes=512)
    res = nh.fit(model)
    t_fit = time.perf_counter() - t0
    print(
        f"natural-history fit (MLE + Laplace): {t_fit:.1f} s, {res.n_evaluations} evaluations, "
        f"loglik {res.loglik:.2f}, theta {np.round(res.theta, 3).tolist()}"
    )
    t0 = time.perf_counter()
    ll = model.loglik(res.theta)
    print(f"one log-likelihood evaluation (198 x 512): {1e3 * (time.perf_counter() - t0):.0f} ms ({ll:.2f})")
    if args.cv:
        from chemomet.calibrate.validation import cross_validate

        t0 = time.perf_counter()
        cv = cross_validate(c.covariates, c.time_days, c.event, workers=2)
        print(
            f"cross-validation 5x5 (2 processes): {time.perf_counter() - t0:.1f} s, "
            f"c model {cv['c_index_model']:.3f}, Cox {cv['c_index_cox']:.3f}"
        )
    cfg = with_natural_history(res.theta)
    t0 = time.perf_counter()
    out = tg.calibrate(cfg, n=args.patients)
    print(
        f"targets calibration ({args.patients} virtual patients): {out['timings']['calibration_s']:.1f} s "
        f"(with checks {out['timings']['total_s']:.1f} s), {sum(r['pass'] for r in out['table'])}/"
        f"{len(out['table'])} targets pass"
    )


if __name__ == "__main__":
    main()
