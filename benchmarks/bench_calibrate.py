"""Wall time of the calibration steps (needs the data extra: pip install chemomet[data]).

    python benchmarks/bench_calibrate.py [--cv]
    python benchmarks/bench_calibrate.py --joint [--repeats 3]

Times the natural-history fit on TRANSBIG (198 patients x 512 quadrature nodes, Nelder-Mead + Laplace), the
targets calibration (4,000 virtual patients, common random numbers) and, with ``--cv``, the 5x5-fold
cross-validation (2 processes). Prints one line per step.

With ``--joint``, only the fit ``chemomet calibrate natural-history`` runs (without bootstrap or cross-validation):
the natural history on TRANSBIG conditioned on its node status, fitted jointly with the nodal spread (GBSG2's
node counts and the SEER size series; :func:`chemomet.calibrate.nodes.fit_jointly`, observed information
included), from two starts run interleaved in one process: the shipped estimate (what the command does on the
shipped folder) and the priors (a cold start). Reports CPU and wall seconds per repeat and their medians, the
evaluations, the machine and its load. Target (issue 11): <= 10 minutes for the fit.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
from bench_assess import machine  # the same one-line machine description


def joint_fit_benchmark(repeats: int) -> None:
    """Time the joint natural-history and nodal fit from the shipped estimate and from the priors, interleaved."""
    from chemomet.calibrate import natural_history as nh
    from chemomet.calibrate.nodes import NodeCountLikelihood, fit_jointly
    from chemomet.calibrate.vector import natural_history_theta, prior_config
    from chemomet.datasets import load_gbsg2, load_transbig
    from chemomet.population import Population

    shipped = Population().config
    prior_nodes = prior_config()["nodes"]
    cohort, counts = load_transbig(), NodeCountLikelihood(load_gbsg2())
    # the same model (the shipped folder's fixed values) from two starts: its estimate, and the priors' vector
    # with the nodal values of the priors
    cold_nodes = {**shipped["nodes"], **{k: prior_nodes[k] for k in ("seeding_ratio", "count_dispersion")}}
    starts = {"shipped estimate": (natural_history_theta(shipped), dict(shipped["nodes"])),
              "priors": (nh.prior_theta(), cold_nodes)}
    print(f"# {machine()}; load average at start {os.getloadavg()}")
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in starts}
    for r in range(repeats):
        for name, (theta, nodes) in starts.items():
            model = nh.MarginalModel(cohort.covariates, cohort.time_days, cohort.event, n_nodes=512,
                                     measurements=nh.published_doubling_times(), nodes=nodes, reference=shipped)
            w0, c0 = time.perf_counter(), time.process_time()
            fit = fit_jointly(model, counts, theta, nodes)
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
            times[name].append((wall, cpu))
            print(f"  repeat {r + 1}, from the {name}: {wall:.1f} s wall, {cpu:.1f} CPU-s, {fit.n_evaluations} "
                  f"evaluations, converged {fit.converged}, log-likelihood {fit.loglik_node_negative:.2f} + "
                  f"{fit.loglik_counts:.2f} (counts); load now {os.getloadavg()}", flush=True)
    for name, t in times.items():
        print(f"joint fit from the {name}: median {statistics.median(w for w, _ in t):.1f} s wall, "
              f"{statistics.median(c for _, c in t):.1f} CPU-s over {repeats} repeats; target <= 600 s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cv", action="store_true", help="also time the 5x5-fold cross-validation")
    ap.add_argument("--patients", type=int, default=4000)
    ap.add_argument("--joint", action="store_true", help="time only the joint natural-history and nodal fit")
    ap.add_argument("--repeats", type=int, default=3, help="repeats of --joint (median reported)")
    args = ap.parse_args()
    if args.joint:
        joint_fit_benchmark(args.repeats)
        return

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
