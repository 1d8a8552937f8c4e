"""Why is node-positive late recurrence too high? Two candidate mechanisms tried in the untreated closed form,
without refitting (docs/science.md §4.1 and §7.4).

For ER+ T1 virtual patients of the shipped calibration (8,000, seed 11; surgery on day 21, no systemic therapy),
weighted by node group (N0, N1-3, N4-9; the count's negative binomial), prints the 5-year DMFS and the distant
recurrence over years 5-20 among those free at 5 years:

* colony-to-colony growth heterogeneity: each colony's time to visibility log-normal around the patient's
  (SD of the log ``s_c``), so ``Lambda(t) = sum_j dC_j Phi((ln(t - sigma_j) - ln tau_v) / s_c)`` over the founding
  history (``s_c = 0`` is the engine's closed form ``C(min(t - tau_v, t_s))``; the grid is checked against it);
* a nodal seeding ratio that varies between patients, ``rho_i = rho exp(s_rho z_i)`` (nodes become a noisier marker
  of distant shedding).

Pan 2017's late recurrence is about 1.5 times higher with 1-3 nodes than with none; the model gives about 2.8.
Neither mechanism, at fixed other values, moves that ratio much (it falls with ``s_rho`` only as fast as the early
gradient does): a refit, or another mechanism, is needed. About 20 s.

Usage::

    python examples/calibration/late_hazard_prototype.py
"""

from __future__ import annotations

import numpy as np
from scipy.stats import nbinom, norm

from chemomet.calibrate.cohort import VirtualCohort
from chemomet.calibrate.natural_history import log_hazard_and_cumulative, visibility_lag_days
from chemomet.calibrate.shipped import calibrated_config
from chemomet.model.dissemination import untreated_cumulative_founding
from chemomet.model.nodes import expected_positive_nodes
from chemomet.model.primary import age_days
from chemomet.units import DAYS_PER_YEAR

SURGERY_DAY = 21.0
YEARS = (5.0, 20.0)


def founding_slices(p, n_grid: int = 400):
    """Colonies founded in each slice of the primary's history (``dC``, patients x slices) and the slices' midpoints
    (days from diagnosis), on a grid dense near surgery."""
    u = np.concatenate([[0.0], np.geomspace(0.05, 1.0, n_grid)])
    sigma = SURGERY_DAY - u[None, :] * (age_days(p) + SURGERY_DAY)[:, None]
    cum = untreated_cumulative_founding(p, sigma)
    return cum[:, :-1] - cum[:, 1:], 0.5 * (sigma[:, :-1] + sigma[:, 1:])


def cumulative_hazard(t_days: float, d_c, mid, lag, s_c: float) -> np.ndarray:
    """Expected visible colonies by ``t_days`` with colony lags log-normal around ``lag`` (SD of log ``s_c``)."""
    delay = np.maximum(t_days - mid, 1e-9)
    if s_c == 0:
        visible = (delay >= lag[:, None]).astype(float)
    else:
        visible = norm.cdf((np.log(delay) - np.log(lag)[:, None]) / s_c)
    return (d_c * visible).sum(axis=1)


def group_weights(mean_nodes, k: float) -> dict[str, np.ndarray]:
    """Probability of each node group given the expected count."""
    cdf = lambda x: nbinom.cdf(x, k, k / (k + mean_nodes))  # noqa: E731
    return {"N0": cdf(0), "N1-3": cdf(3) - cdf(0), "N4-9": cdf(9) - cdf(3)}


def summarise(weights, lam0, lam5, lam20) -> dict[str, tuple[float, float]]:
    """Per group: DMFS at 5 years and distant recurrence over years 5-20 (given free at 5), among M0 patients."""
    s5, s20, m0 = np.exp(-(lam5 - lam0)), np.exp(-(lam20 - lam0)), np.exp(-lam0)
    out = {}
    for group, w in weights.items():
        a5, a20 = np.average(s5, weights=w * m0), np.average(s20, weights=w * m0)
        out[group] = (a5, 1.0 - a20 / a5)
    return out


def main() -> None:
    cfg = calibrated_config()
    base = VirtualCohort.draw(cfg, 8000, 11)
    cohort = base.with_covariates(er=True, pr=True, her2=False,
                                  diameter_mm=np.minimum(base.covariates["diameter_mm"].to_numpy(), 20.0))
    pop, p = cohort.parameters(cfg)
    lag = visibility_lag_days(p, pop.settings)
    d_c, mid = founding_slices(p)
    t5, t20 = (y * DAYS_PER_YEAR for y in YEARS)
    _, closed, _ = log_hazard_and_cumulative(p, np.full(p.n, t5), pop.settings, SURGERY_DAY)
    grid = cumulative_hazard(t5, d_c, mid, lag, 0.0)
    print(f"grid vs closed form at 5 years: median relative error {np.median(np.abs(grid - closed) / closed):.4f}")
    mean_nodes, k = expected_positive_nodes(p, pop.settings), pop.settings.node_count_dispersion
    weights = group_weights(mean_nodes, k)
    for s_c in (0.0, 0.3, 0.6, 1.0):
        lam = [cumulative_hazard(t, d_c, mid, lag, s_c) for t in (0.0, t5, t20)]
        res = summarise(weights, *lam)
        print(f"colony growth SD of log {s_c}: " + "; ".join(
            f"{g} DMFS5 {a:.3f} DR5-20 {b:.3f}" for g, (a, b) in res.items())
            + f"; late ratio N1-3/N0 {res['N1-3'][1] / res['N0'][1]:.2f}")
    lam = [cumulative_hazard(t, d_c, mid, lag, 0.0) for t in (0.0, t5, t20)]
    z = np.random.default_rng(5).standard_normal(p.n)
    m_nodes = pop.settings.axillary_nodes
    deposits = -m_nodes * np.log1p(-np.minimum(mean_nodes / m_nodes, 1 - 1e-12))
    for s_rho in (0.0, 1.0, 2.0):
        mean_r = m_nodes * -np.expm1(-deposits * np.exp(s_rho * z) / m_nodes)
        res = summarise(group_weights(mean_r, k), *lam)
        early = np.log(res["N1-3"][0]) / np.log(res["N0"][0])
        print(f"nodal seeding SD of log {s_rho}: 5-year cumulative-hazard ratio N1-3/N0 {early:.2f}; "
              f"late ratio {res['N1-3'][1] / res['N0'][1]:.2f}")


if __name__ == "__main__":
    main()
