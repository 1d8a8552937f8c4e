"""A first look, without refitting: would PR loss or grade act on GBSG2's outcomes through shedding or take?

Beside the model's score, GBSG2's outcomes still say that PR loss harms more (residual log hazard ratio −0.39 for
PR-positive, SE 0.13) and grade 1 protects more (−0.46, SE 0.25) than the model gives (``gbsg2_residuals.py``,
calibration.md §6). Both act in the model through growth only (the PR-loss factor on the doubling time, profiled on
these outcomes at 0.665; grade's growth slope). This prototype multiplies one group's twins' distant founding by a
factor (ER+/PR− twins; grade-1 twins), the rest of the shipped calibration held, through two channels: *shedding*
(``μ``, which seeds the nodes too, so the counts weigh the twins under the changed ``μ``) and *take* (the distant
colonies only, the counts' likelihood kept under the shipped ``μ``: a colonisation efficiency). It prints the
outcome log-likelihood given the node counts (:func:`chemomet.calibrate.treated_likelihood.outcome_loglik`, 128
twins) and Harrell's C of the 10-year recurrence-free prediction. In sample and without refitting TRANSBIG or the
targets: a gain says a channel is worth fitting, not that it is right.

Run: ``python examples/calibration/shedding_factor_prototype.py`` (about 3 minutes; needs the ``data`` extra).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from lifelines.utils import concordance_index
from scipy.special import logsumexp

from chemomet.calibrate import treated_likelihood as tl
from chemomet.calibrate.nodes import cohort_twins
from chemomet.datasets import load_gbsg2
from chemomet.population import Population
from chemomet.units import DAYS_PER_YEAR

FACTORS = {"ER+/PR-": (1.0, 1.5, 2.0, 3.0), "grade 1": (1.0, 0.7, 0.5, 0.3)}
"""Factors tried per group, in the direction GBSG2's residuals point (1: the shipped model)."""
N_TWINS = 128


def groups(cohort) -> dict[str, np.ndarray]:
    """Each group's patients (booleans): ER-positive PR-negative; grade 1."""
    cov = cohort.covariates
    return {"ER+/PR-": (cov["er"] & ~cov["pr"]).to_numpy(bool), "grade 1": (cov["grade"] == 1).to_numpy(bool)}


def main() -> None:
    cohort = load_gbsg2()
    pop = Population()
    original = tl.cohort_twins
    shipped = tl.twin_curves(pop, cohort, n_twins=N_TWINS)
    try:
        for name, members in groups(cohort).items():
            for channel in ("shedding", "take"):
                for factor in FACTORS[name]:
                    def twins(population, c, n_twins, seed, f=factor, sel=members):
                        params = cohort_twins(population, c, n_twins, seed)
                        scale = np.where(np.repeat(sel, n_twins), f, 1.0)  # twins are patient-major
                        return replace(params, mu=params.mu * scale)

                    tl.cohort_twins = twins
                    curves = tl.twin_curves(pop, cohort, n_twins=N_TWINS)
                    if channel == "take":  # the counts as under the shipped shedding
                        curves = tl.TwinCurves(curves.grid_days, curves.log_survival, shipped.log_count_probability)
                    ll = tl.outcome_loglik(curves, cohort.time_days, cohort.event).sum()
                    log_w = curves.log_count_probability - logsumexp(curves.log_count_probability, axis=1,
                                                                     keepdims=True)
                    j = min(np.searchsorted(curves.grid_days, 10 * DAYS_PER_YEAR), curves.grid_days.size - 1)
                    rfs10 = np.exp(logsumexp(log_w + curves.log_survival[:, :, j], axis=1))
                    c = concordance_index(cohort.time_days, rfs10, cohort.event)
                    print(f"{name} ({members.sum()} patients), {channel} x {factor:g}: outcomes given the counts "
                          f"{ll:9.2f} nats, C {c:.4f}", flush=True)
    finally:
        tl.cohort_twins = original


if __name__ == "__main__":
    main()
