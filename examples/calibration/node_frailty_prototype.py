"""A first look, without refitting: would a node count that says more about distant spread rank GBSG2 better?

GBSG2's residual effects (``gbsg2_residuals.py``) say the model weighs the node count too lightly and size too
heavily. One structural reading: part of what makes a count high is the patient's *metastatic competence*, shared
by nodal and distant seeding, rather than count noise. This prototype gives every GBSG2 twin a log-normal factor
``F = exp(s z - s^2 / 2)`` (``z`` standard normal, fixed draws; mean 1) on her shedding ``μ``, which drives both her
nodal deposits and her distant colonies, and refits the node count's negative-binomial size ``k`` to GBSG2's counts
(zero-truncated: the trial took node-positive patients) at each ``s``, so the counts' own fit decides how much of
their spread the factor may explain. It then prints the counts' log-likelihood, the outcome log-likelihood given
the counts (:func:`chemomet.calibrate.treated_likelihood.outcome_loglik`, 128 twins) and Harrell's C of the
10-year recurrence-free prediction.

Not a calibration: TRANSBIG (conditioned on its zero counts), the targets and ``p_col`` are not re-solved, and on
GBSG2 a factor on ``μ`` is the same as a frailty shared by the two outlets (no CTC is measured there). A gain here
says the structure is worth fitting; no gain says it is not.

Run: ``python examples/calibration/node_frailty_prototype.py`` (about 2 minutes; needs the ``data`` extra).
"""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp

from chemomet.calibrate import treated_likelihood as tl
from chemomet.calibrate.nodes import cohort_twins
from chemomet.datasets import load_gbsg2
from chemomet.model.nodes import expected_positive_nodes, node_count_logpmf
from chemomet.population import Population

SPREADS = (0.0, 0.5, 1.0, 1.5)
"""SD of ln F (0: the shipped model)."""
N_TWINS = 128


def with_frailty(spread: float):
    """A ``transform`` of :func:`~chemomet.calibrate.treated_likelihood.twin_curves`: every twin's ``μ`` times
    ``F`` (fixed standard normals, seed 17)."""
    def transform(params):
        z = np.random.default_rng(17).standard_normal(params.n)
        return replace(params, mu=params.mu * np.exp(spread * z - 0.5 * spread**2))
    return transform


def truncated_count_loglik(counts: np.ndarray, means: np.ndarray, k: float) -> float:
    """``Σ_i ln [mean_j NB(c_i; m_ij, k) / mean_j (1 - NB(0; m_ij, k))]`` (nats): the zero-truncated counts."""
    log_p = node_count_logpmf(counts[:, None], means, k)
    log_pos = np.log1p(-np.exp(node_count_logpmf(0.0, means, k)))
    return float(np.sum(logsumexp(log_p, axis=1) - logsumexp(log_pos, axis=1)))


def main() -> None:
    cohort = load_gbsg2()
    base = Population()
    counts = cohort.covariates["nodes_positive"].to_numpy(float)
    print(f"GBSG2: {cohort.n} patients, {N_TWINS} twins each; shipped count size k = "
          f"{base.settings.node_count_dispersion:.3g}")
    for s in SPREADS:
        params = with_frailty(s)(cohort_twins(base, cohort, N_TWINS, 3))
        means = expected_positive_nodes(params, base.settings).reshape(cohort.n, N_TWINS)
        fit = minimize_scalar(lambda lk, m=means: -truncated_count_loglik(counts, m, float(np.exp(lk))),
                              bounds=(np.log(0.05), np.log(500.0)), method="bounded")
        k = float(np.exp(fit.x))
        cfg = copy.deepcopy(base.config)
        cfg["nodes"]["count_dispersion"] = k
        curves = tl.twin_curves(Population(cfg), cohort, n_twins=N_TWINS, transform=with_frailty(s))
        ll, c = tl.outcome_fit(curves, cohort)
        print(f"SD of ln F {s:.1f}: count size k {k:7.3g}, counts {-fit.fun:9.2f}, outcomes given the counts "
              f"{ll:9.2f} nats, C {c:.4f}", flush=True)


if __name__ == "__main__":
    main()
