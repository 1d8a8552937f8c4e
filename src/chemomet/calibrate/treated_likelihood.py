"""The log-likelihood of a treated node-positive cohort's outcomes (GBSG2) under a calibrated population.

A score for comparing calibrations on data none of them was fitted to: each patient's virtual twins (her
covariates, random effects on fixed quasi-Monte Carlo nodes) are simulated under the treatment she had (surgery on
day 21, the CMF proxy from day 49, tamoxifen where recorded), and her likelihood given her positive-node count is

``L_i = Σ_j P(c_i | j) S_j(t_i) h_j(t_i)^{δ_i} / Σ_j P(c_i | j)``,

with ``S_j`` the twin's recurrence-free survival (distant-metastasis-free × free of loco-regional recurrence ×
alive from other causes, taken as independent), ``h_j = −d ln S_j / dt`` and ``P(c | j)`` the node-count
probability (:func:`chemomet.model.nodes.node_count_logpmf`). ``S_j`` is computed on a grid of ``step_days``;
``ln S_j`` is interpolated linearly between grid times, so the hazard is constant within a step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from chemomet.calibrate.gbsg2_treatment import CMF_PROXY_REGIMEN, GBSG2_TAMOXIFEN_YEARS
from chemomet.calibrate.nodes import cohort_twins
from chemomet.datasets import Cohort
from chemomet.local_recurrence import HAZARD_PER_DAY as LOCAL_RECURRENCE_HAZARD_PER_DAY
from chemomet.model.engine import simulate_schedule
from chemomet.model.nodes import expected_positive_nodes, node_count_logpmf
from chemomet.mortality import other_cause_survival
from chemomet.population import Population
from chemomet.regimens import Strategy, load_drugs
from chemomet.units import DAYS_PER_YEAR

__all__ = [
    "OUTCOME_TWINS", "TwinCurves", "outcome_fit", "outcome_loglik", "outcome_score", "twin_curves", "weighted_survival",
]

OUTCOME_TWINS = 128
"""Twins per patient of :func:`outcome_score`."""


@dataclass(frozen=True)
class TwinCurves:
    """Recurrence-free survival of every patient's twins on a time grid.

    Attributes
    ----------
    grid_days : numpy.ndarray
        Times (days from diagnosis), ``(G,)``, from 0.
    log_survival : numpy.ndarray
        ``ln S`` of each twin, ``(patients, twins, G)``.
    log_count_probability : numpy.ndarray
        ``ln P(c_i | j)`` of each patient's node count under each twin, ``(patients, twins)``.

    Examples
    --------
    >>> grid = np.array([0.0, 30.0, 60.0])
    >>> curves = TwinCurves(grid, np.zeros((1, 2, 3)), np.log(np.full((1, 2), 0.5)))
    >>> curves.log_survival.shape
    (1, 2, 3)
    """

    grid_days: np.ndarray
    log_survival: np.ndarray
    log_count_probability: np.ndarray


def twin_curves(
    population: Population, cohort: Cohort, n_twins: int = 128, seed: int = 3, step_days: float = 15.0,
    tamoxifen_years: float = GBSG2_TAMOXIFEN_YEARS, transform=None,
) -> TwinCurves:
    """Simulate every patient's twins under her recorded treatment (module docstring).

    Parameters
    ----------
    population : Population
        The calibrated population (point estimate).
    cohort : chemomet.datasets.Cohort
        A node-positive cohort with ``nodes_positive`` and ``hormone_therapy`` (GBSG2; HER2 as recorded there).
    n_twins : int
        Twins per patient (quasi-Monte Carlo nodes of the random effects).
    seed : int
        Seed of the nodes.
    step_days : float
        Grid step (days); the grid runs to the last follow-up.
    tamoxifen_years : float
        Tamoxifen after the CMF proxy for patients with ``hormone_therapy`` (years).
    transform : callable, optional
        ``transform(params) -> params``: changes the twins' parameters (patient-major, ``n_twins`` per patient)
        before they are simulated and their node counts scored; for prototypes of a mechanism without refitting.

    Returns
    -------
    TwinCurves

    Examples
    --------
    >>> from chemomet.datasets import load_gbsg2
    >>> curves = twin_curves(Population(), load_gbsg2(), n_twins=32)  # doctest: +SKIP
    >>> curves.log_survival.shape  # doctest: +SKIP
    (686, 32, 195)
    """
    cov = cohort.covariates
    params = cohort_twins(population, cohort, n_twins, seed)
    if transform is not None:
        params = transform(params)
    settings = population.settings
    end = float(np.max(cohort.time_days)) + step_days
    grid = np.arange(0.0, end + step_days, step_days)
    drugs = load_drugs()
    treated = cov["hormone_therapy"].to_numpy(bool)
    dmfs = np.empty((cohort.n, n_twins, grid.size))
    for tamoxifen in (False, True):
        rows = np.flatnonzero(treated == tamoxifen)
        if rows.size == 0:
            continue
        strategy = Strategy.parse(
            "surgery-first:tamoxifen" if tamoxifen else "surgery-first", CMF_PROXY_REGIMEN,
            endocrine_years=tamoxifen_years,
        )
        index = (rows[:, None] * n_twins + np.arange(n_twins)).ravel()
        _, traj = simulate_schedule(
            params.take(index), strategy.schedule(), settings, grid[-1] + 1.0, drugs=drugs, grid=grid
        )
        dmfs[rows] = np.asarray(traj["dmfs"]).reshape(rows.size, n_twins, grid.size)
    surgery = Strategy.parse("surgery-first").schedule().surgery_day
    log_local = -LOCAL_RECURRENCE_HAZARD_PER_DAY * np.maximum(grid - surgery, 0.0)
    age = cov["age"].to_numpy(float)
    log_other = np.log(other_cause_survival(age[:, None], grid[None, :] / DAYS_PER_YEAR))
    with np.errstate(divide="ignore"):
        log_s = np.log(dmfs) + log_local[None, None, :] + log_other[:, None, :]
    counts = cov["nodes_positive"].to_numpy(float)[:, None]
    mean_nodes = expected_positive_nodes(params, settings).reshape(cohort.n, n_twins)
    log_pc = node_count_logpmf(counts, mean_nodes, settings.node_count_dispersion)
    return TwinCurves(grid, log_s, log_pc)


def outcome_loglik(curves: TwinCurves, time_days, event) -> np.ndarray:
    """Per-patient ``ln L_i`` (nats) of the outcomes ``(time_days, event)`` given the node counts (module docstring).

    Examples
    --------
    One patient, two identical twins with a constant hazard of 1e-3 per day: ``ln L = −1e-3 t + ln 1e-3``.

    >>> grid = np.arange(0.0, 400.0, 15.0)
    >>> curves = TwinCurves(grid, np.tile(-1e-3 * grid, (1, 2, 1)), np.log(np.array([[0.3, 0.3]])))
    >>> bool(np.isclose(outcome_loglik(curves, [100.0], [True])[0], -0.1 + np.log(1e-3), rtol=1e-12))
    True
    """
    t = np.asarray(time_days, float)
    event = np.asarray(event, bool)
    grid, log_s = curves.grid_days, curves.log_survival
    i = np.clip(np.searchsorted(grid, t, side="right") - 1, 0, grid.size - 2)
    step = grid[i + 1] - grid[i]
    frac = (t - grid[i]) / step
    rows = np.arange(t.size)
    lo, hi = log_s[rows, :, i], log_s[rows, :, i + 1]
    finite = np.isfinite(lo) & np.isfinite(hi)
    with np.errstate(invalid="ignore", divide="ignore"):  # a twin dead by the grid time: -inf - -inf
        log_s_t = np.where(finite, lo + frac[:, None] * (hi - lo), -np.inf)
        hazard = np.where(finite, (lo - hi) / step[:, None], 0.0)
        log_h = np.where(event[:, None], np.log(np.maximum(hazard, 0.0)), 0.0)
    terms = log_s_t + log_h
    pc = curves.log_count_probability
    return logsumexp(pc + terms, axis=1) - logsumexp(pc, axis=1)


def weighted_survival(curves: TwinCurves, years: float) -> np.ndarray:
    """Each patient's recurrence-free probability at ``years`` after diagnosis (at the first grid time at or after
    it; at the grid's last time where the follow-up is shorter), her twins weighted by the likelihood of her node
    count: the prediction the outcome likelihood scores.

    Examples
    --------
    One patient, two twins surviving 0.9 and 0.5, the count three times as likely under the first:

    >>> grid = np.array([0.0, 3652.5])
    >>> log_s = np.log(np.array([[[1.0, 0.9], [1.0, 0.5]]]))
    >>> curves = TwinCurves(grid, log_s, np.log(np.array([[0.3, 0.1]])))
    >>> round(float(weighted_survival(curves, 10.0)[0]), 12)  # (3 × 0.9 + 0.5) / 4
    0.8
    """
    log_w = curves.log_count_probability - logsumexp(curves.log_count_probability, axis=1, keepdims=True)
    j = min(np.searchsorted(curves.grid_days, years * DAYS_PER_YEAR), curves.grid_days.size - 1)
    return np.exp(logsumexp(log_w + curves.log_survival[:, :, j], axis=1))


def outcome_fit(curves: TwinCurves, cohort: Cohort, years: float = 10.0) -> tuple[float, float]:
    """How well a calibration's twin curves fit a treated cohort: the total log-likelihood of its outcomes given the
    node counts (:func:`outcome_loglik`, nats) and Harrell's C of the count-weighted recurrence-free probability at
    ``years`` (:func:`weighted_survival`), as the calibration prototypes in ``examples/calibration/`` report them.

    Examples
    --------
    >>> ll, c = outcome_fit(twin_curves(Population(), load_gbsg2(), n_twins=32), load_gbsg2())  # doctest: +SKIP
    """
    from chemomet.calibrate.survival_metrics import harrell_c

    loglik = float(outcome_loglik(curves, cohort.time_days, cohort.event).sum())
    return loglik, harrell_c(cohort.time_days, cohort.event, 1.0 - weighted_survival(curves, years))


def outcome_score(
    cohort: Cohort, *, tamoxifen_years: float = GBSG2_TAMOXIFEN_YEARS, population=None, n_twins: int = OUTCOME_TWINS
) -> dict:
    """Log-likelihood of a treated cohort's outcomes given its node counts under a calibrated point estimate: a
    proper score that compares calibrations on data none was fitted to (higher is better; nats).

    Parameters
    ----------
    cohort : chemomet.datasets.Cohort
        As :func:`twin_curves`.
    tamoxifen_years : float
        Tamoxifen for patients with ``hormone_therapy`` (years).
    population : Population, optional
        The population scored (default: the shipped calibration's point estimate).
    n_twins : int
        Twins per patient (default :data:`OUTCOME_TWINS`; fewer for a fit's objective).

    Returns
    -------
    dict
        ``total`` and ``mean`` (nats), ``twins_per_patient``, ``population`` (what was scored).

    Examples
    --------
    >>> from chemomet.datasets import load_gbsg2
    >>> round(outcome_score(load_gbsg2())["total"])  # doctest: +SKIP
    -2645
    """
    pop = population or Population()
    curves = twin_curves(pop, cohort, n_twins=n_twins, tamoxifen_years=tamoxifen_years)
    ll = outcome_loglik(curves, cohort.time_days, cohort.event)
    return {
        "total": float(ll.sum()),
        "mean": float(ll.mean()),
        "twins_per_patient": n_twins,
        "population": "point estimate of the calibration in use",
    }
