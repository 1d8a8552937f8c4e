"""A first look, without refitting: would distant colonies that reflect recent shedding rank GBSG2 better?

Given a patient's node count, the model's distant risk still rises steeply with tumour size (calibration.md §6):
the counts measure the recent shedding rate (nodal deposits are cleared fast), the distant colonies the tumour's
whole history. If colonies founded long before diagnosis were lost at a rate ``δ_d`` (attrition of disseminated
cells before they grow out), the burden at diagnosis would be ``∫ μ N(s)^γ e^{-δ_d (t_0 - s)} ds ≈
μ N_0^γ / (δ_d + γ g)`` instead of ``μ N_0^γ / (γ g)`` (``g`` the primary's specific growth rate at diagnosis), so
this prototype multiplies each GBSG2 twin's distant founding by ``γ g / (δ_d + γ g)`` (normalised to mean 1 over
the cohort's twins, so the level stays), leaves her node count's likelihood as it is (the nodes keep the shipped
``μ``), and prints the outcome log-likelihood given the counts and Harrell's C of the 10-year recurrence-free
prediction. It ignores that attrition also delays the colonies that remain (the oldest go first), and nothing is
refitted (TRANSBIG, targets, ``p_col``): a gain says the structure is worth building into the engine.

Run: ``python examples/calibration/colony_attrition_prototype.py`` (about 1 minute; needs the ``data`` extra).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from chemomet.calibrate import treated_likelihood as tl
from chemomet.datasets import load_gbsg2
from chemomet.population import Population

ATTRITION_PER_DAY = (0.0, 0.001, 0.003, 0.01, 0.03, 0.1, 1.0)
"""``δ_d`` (1/day; 0: the shipped model)."""
N_TWINS = 128


def attrition_factor(params, attrition: float) -> np.ndarray:
    """``γ g / (δ_d + γ g)`` per twin, normalised to mean 1 (dimensionless)."""
    g = params.beta_per_day * (params.log_plateau - params.log_cells0)
    f = params.gamma * g / (attrition + params.gamma * g)
    return f / f.mean()


def main() -> None:
    cohort = load_gbsg2()
    pop = Population()
    shipped = tl.twin_curves(pop, cohort, n_twins=N_TWINS)  # the node counts' likelihood under the shipped μ
    for attrition in ATTRITION_PER_DAY:
        def thinned(params, a=attrition):
            return replace(params, mu=params.mu * attrition_factor(params, a))

        changed = tl.twin_curves(pop, cohort, n_twins=N_TWINS, transform=thinned)
        curves = tl.TwinCurves(shipped.grid_days, changed.log_survival, shipped.log_count_probability)
        ll, c = tl.outcome_fit(curves, cohort)
        print(f"attrition {attrition:.3f}/day: outcomes given the counts {ll:9.2f} nats, C {c:.4f}", flush=True)


if __name__ == "__main__":
    main()
