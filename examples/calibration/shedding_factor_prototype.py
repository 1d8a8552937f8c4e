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

from chemomet.calibrate import treated_likelihood as tl
from chemomet.datasets import load_gbsg2
from chemomet.population import Population

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
    shipped = tl.twin_curves(pop, cohort, n_twins=N_TWINS)
    for name, members in groups(cohort).items():
        scaled = np.repeat(members, N_TWINS)  # twins are patient-major
        for channel in ("shedding", "take"):
            for factor in FACTORS[name]:
                def transform(params, f=factor, sel=scaled):
                    return replace(params, mu=params.mu * np.where(sel, f, 1.0))

                curves = tl.twin_curves(pop, cohort, n_twins=N_TWINS, transform=transform)
                if channel == "take":  # the counts as under the shipped shedding
                    curves = tl.TwinCurves(curves.grid_days, curves.log_survival, shipped.log_count_probability)
                ll, c = tl.outcome_fit(curves, cohort)
                print(f"{name} ({members.sum()} patients), {channel} x {factor:g}: outcomes given the counts "
                      f"{ll:9.2f} nats, C {c:.4f}", flush=True)


if __name__ == "__main__":
    main()
