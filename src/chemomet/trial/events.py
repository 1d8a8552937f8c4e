"""Event times and censoring: from each patient's S(t | M0) curve to observed times and event flags.

Distant-metastasis times are sampled by inverse transform, ``T = inf{t : S(t) <= U}``, with a per-patient
uniform ``U``; between grid points the cumulative hazard ``-ln S`` is interpolated linearly (a piecewise-
constant hazard), or ``S`` itself where it reaches 0 inside an interval. Where ``S`` stays above ``U`` up to
the horizon there is no event (a cured patient, or a relapse after the trial's follow-up): the time is ``inf``.
Times are days from enrolment (= diagnosis).
"""

from __future__ import annotations

import numpy as np

from chemomet.units import DAYS_PER_YEAR


def event_grid(horizon_days: float, step_days: float) -> np.ndarray:
    """Times (days) at which S(t) is simulated: every ``step_days`` from 0, and the horizon itself."""
    return np.unique(np.append(np.arange(0.0, horizon_days, step_days), horizon_days))


def sample_event_times(grid: np.ndarray, surv: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-transform event times (days) from survival curves.

    grid: times (days), shape ``(G,)``, ``grid[0] = 0``; surv: ``S(grid)``, shape ``(n, G)``, ``S(0) = 1``;
    u: uniforms on [0, 1), shape ``(n,)``. Returns ``(n,)`` times, ``inf`` where ``S(grid[-1]) > u``.
    """
    surv = np.minimum.accumulate(np.clip(surv, 0.0, 1.0), axis=1)  # guard monotonicity against round-off
    u = np.clip(u, 1e-300, None)
    j = np.sum(surv > u[:, None], axis=1)  # grid points before the crossing (>= 1 since S(0) = 1 > u)
    t = np.full(u.shape, np.inf)
    hit = np.flatnonzero(j < grid.size)
    if hit.size:
        jj = j[hit]
        s_lo, s_hi = surv[hit, jj - 1], surv[hit, jj]
        with np.errstate(divide="ignore", invalid="ignore"):
            lam_lo, lam_hi = -np.log(s_lo), -np.log(s_hi)
            w_log = (-np.log(u[hit]) - lam_lo) / (lam_hi - lam_lo)  # linear in the cumulative hazard
            w_lin = (s_lo - u[hit]) / (s_lo - s_hi)  # linear in S: where S reaches 0 inside the interval
        w = np.where(s_hi > 0, w_log, w_lin)
        w = np.clip(np.nan_to_num(w, nan=1.0), 0.0, 1.0)
        t[hit] = grid[jj - 1] + w * (grid[jj] - grid[jj - 1])
    return t


def exponential_times(u: np.ndarray, rate_per_year: float) -> np.ndarray:
    """Exponential times (days) from uniforms, for a rate per year; ``inf`` when the rate is 0."""
    if rate_per_year <= 0:
        return np.full(np.shape(u), np.inf)
    return -np.log1p(-np.asarray(u)) / (rate_per_year / DAYS_PER_YEAR)


def endpoints(
    dm_days: np.ndarray, death_days: np.ndarray, loss_days: np.ndarray, admin_days: np.ndarray
) -> dict[str, np.ndarray]:
    """Observed times (days) and event flags of the time-to-event endpoints.

    DMFS: distant metastasis or death from any cause; DRFI: distant metastasis, deaths without it censored.
    Censoring at the earlier of loss to follow-up and the analysis date (``admin_days`` after enrolment).
    """
    censor = np.minimum(loss_days, admin_days)
    fail = np.minimum(dm_days, death_days)
    time = np.minimum(fail, censor)
    return {
        "censor_days": censor,
        "dmfs_time_days": time,
        "dmfs_event": fail <= censor,
        "drfi_time_days": time,
        "drfi_event": dm_days <= np.minimum(death_days, censor),
    }
