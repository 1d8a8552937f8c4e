"""Event times and censoring: from each patient's S(t | M0) curve to observed times and event flags.

Distant-metastasis times are sampled by inverse transform, ``T = inf{t : S(t) <= U}``, with a per-patient
uniform ``U``; between grid points the cumulative hazard ``-ln S`` is interpolated linearly (a piecewise-
constant hazard), or ``S`` itself where it reaches 0 inside an interval. Where ``S`` stays above ``U`` up to
the horizon there is no event (a cured patient, or a relapse after the trial's follow-up): the time is ``inf``.
Death from other causes is drawn from the patient's age with the Gompertz–Makeham hazard of
:mod:`chemomet.mortality` (or at a constant rate), death from breast cancer a Weibull time after distant
metastasis. Times are days from enrolment (= diagnosis).
"""

from __future__ import annotations

import numpy as np

from chemomet.mortality import GompertzMakeham, other_cause_mortality
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


def other_cause_death_times(
    age_years, u, hazard_ratio: float = 1.0, model: GompertzMakeham | None = None
) -> np.ndarray:
    """Times (days) of death from other causes, by inverse transform of the age-based survival.

    The hazard at age ``x`` is ``hazard_ratio * (A + B e^{c x})`` per year (:func:`chemomet.mortality.
    other_cause_mortality`, a Gompertz–Makeham fit to the shipped female life table), so the cumulative hazard
    ``t`` years after diagnosis at age ``a`` is ``H(t) = hazard_ratio * (A t + (B / c) e^{c a} (e^{c t} - 1))``
    and the time is the root of ``H(t) = -ln(1 - u)``: then ``P(T > t) = S(t | a) ** hazard_ratio`` with ``S``
    :func:`chemomet.mortality.other_cause_survival`. Newton's method from an upper bound of the root (``H`` is
    increasing and convex, so the iterates fall monotonically onto it).

    Parameters
    ----------
    age_years : array_like
        Age at diagnosis (years).
    u : array_like
        Uniforms on [0, 1), same shape (the patient's own stream).
    hazard_ratio : float, default 1
        Multiplier of the life-table hazard (dimensionless; 0: nobody dies of other causes).
    model : GompertzMakeham, optional
        The hazard (default: :func:`chemomet.mortality.other_cause_mortality`).

    Returns
    -------
    numpy.ndarray
        Days from diagnosis; ``inf`` when ``hazard_ratio`` is 0.

    Examples
    --------
    >>> from chemomet.mortality import other_cause_survival
    >>> t = other_cause_death_times([50.0, 80.0], [0.5, 0.5])  # median times (days)
    >>> [round(float(x) / 365.25, 1) for x in t]  # years
    [34.5, 9.4]
    >>> float(other_cause_survival(80.0, t[1] / 365.25)).__round__(6)  # the median: S = 1/2
    0.5
    """
    gm = other_cause_mortality() if model is None else model
    age = np.asarray(age_years, dtype=float)
    e = -np.log1p(-np.asarray(u, dtype=float))
    age, e = np.broadcast_arrays(age, e)
    if hazard_ratio <= 0:
        return np.full(e.shape, np.inf)
    e = e / hazard_ratio
    a, c = gm.A, gm.c
    k = gm.B / c * np.exp(c * age)  # H(t) = A t + k (e^{ct} - 1) (years)
    with np.errstate(divide="ignore", over="ignore"):
        t = np.log1p(e / k) / c  # the root without the constant term: an upper bound
        if a > 0:
            t = np.minimum(t, e / a)
    for _ in range(200):
        ect = np.exp(c * t)
        step = (a * t + k * (ect - 1.0) - e) / (a + k * c * ect)
        t = np.maximum(t - step, 0.0)
        if np.all(np.abs(step) <= 1e-13 * np.maximum(t, 1.0)):
            break
    return t * DAYS_PER_YEAR


def metastatic_death_times(dm_days, u, median_months: float, shape: float) -> np.ndarray:
    """Times (days from diagnosis) of death from breast cancer: a Weibull time after distant metastasis.

    ``T = dm + m (ln(1 / (1 - u)) / ln 2) ** (1 / shape)`` with ``m`` the median survival after distant
    metastasis; ``inf`` where there is no metastasis (``dm`` infinite). Shape < 1: a hazard that falls with
    time since metastasis; shape 1: exponential.

    Parameters
    ----------
    dm_days : array_like
        Distant-metastasis times (days from diagnosis; ``inf``: none).
    u : array_like
        Uniforms on [0, 1), same shape (the patient's own stream).
    median_months : float
        Median survival after distant metastasis (months of 365.25 / 12 days).
    shape : float
        Weibull shape (dimensionless, > 0).

    Returns
    -------
    numpy.ndarray
        Days from diagnosis.

    Examples
    --------
    >>> t = metastatic_death_times([100.0, np.inf], [0.5, 0.5], 28.0, 0.7)
    >>> round(float(t[0] - 100.0) / (365.25 / 12), 6), bool(np.isinf(t[1]))  # the median (months)
    (28.0, True)
    """
    dm = np.asarray(dm_days, dtype=float)
    e = -np.log1p(-np.asarray(u, dtype=float))
    gap = median_months * DAYS_PER_YEAR / 12.0 * (e / np.log(2.0)) ** (1.0 / shape)
    return np.where(np.isfinite(dm), dm + gap, np.inf)


def endpoints(
    dm_days: np.ndarray,
    death_days: np.ndarray,
    loss_days: np.ndarray,
    admin_days: np.ndarray,
    cancer_death_days: np.ndarray | None = None,
    local_days: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Observed times (days) and event flags of the time-to-event endpoints.

    DMFS: distant metastasis or death from any cause, whichever first. DFS: loco-regional recurrence
    (``local_days``; None: none), distant metastasis or death from any cause, whichever first. DRFI: distant
    metastasis; death from other causes first is a competing event, censored at its date (cause-specific
    analysis; the cumulative incidence is estimated with it as a competing risk,
    :func:`chemomet.trial.analysis.cumulative_incidence`).
    OS: death from any cause, other causes (``death_days``) or breast cancer (``cancer_death_days``, after the
    metastasis; None: no breast-cancer deaths). Censoring at the earlier of loss to follow-up and the analysis
    date (``admin_days`` after enrolment). ``death_cause`` of the observed death: 1 other causes, 2 breast
    cancer, 0 none observed.

    Parameters
    ----------
    dm_days, death_days, loss_days, admin_days : numpy.ndarray
        Distant metastasis, death from other causes, loss to follow-up, analysis date (days from enrolment;
        ``inf``: never).
    cancer_death_days : numpy.ndarray, optional
        Death from breast cancer (days from enrolment; ``inf`` without metastasis).
    local_days : numpy.ndarray, optional
        Loco-regional recurrence (days from enrolment; ``inf``: never).

    Returns
    -------
    dict
        ``censor_days``, ``<endpoint>_time_days`` (days) and ``<endpoint>_event`` (bool) for ``dmfs``, ``drfi``,
        ``os`` and ``dfs``, and ``death_cause`` (int).

    Examples
    --------
    >>> e = endpoints(np.array([100.0, np.inf]), np.array([np.inf, 200.0]), np.array([np.inf, np.inf]),
    ...               np.array([1000.0, 1000.0]), np.array([400.0, np.inf]))
    >>> e["os_time_days"].tolist(), e["os_event"].tolist(), e["death_cause"].tolist()
    ([400.0, 200.0], [True, True], [2, 1])
    >>> e["drfi_event"].tolist(), e["dmfs_event"].tolist()  # the second woman died without metastasis
    ([True, False], [True, True])
    >>> endpoints(np.array([900.0]), np.array([np.inf]), np.array([np.inf]), np.array([1000.0]),
    ...           local_days=np.array([300.0]))["dfs_time_days"].tolist()  # a local recurrence first
    [300.0]
    """
    censor = np.minimum(loss_days, admin_days)
    fail = np.minimum(dm_days, death_days)
    time = np.minimum(fail, censor)
    cancer = np.full(np.shape(dm_days), np.inf) if cancer_death_days is None else np.asarray(cancer_death_days)
    death_any = np.minimum(death_days, cancer)
    os_event = death_any <= censor
    cause = np.where(os_event, np.where(cancer < death_days, 2, 1), 0).astype(np.int8)
    local = np.full(np.shape(dm_days), np.inf) if local_days is None else np.asarray(local_days, dtype=float)
    dfs_fail = np.minimum(np.minimum(fail, local), cancer)
    return {
        "censor_days": censor,
        "dfs_time_days": np.minimum(dfs_fail, censor),
        "dfs_event": dfs_fail <= censor,
        "dmfs_time_days": time,
        "dmfs_event": fail <= censor,
        "drfi_time_days": time,
        "drfi_event": dm_days <= np.minimum(death_days, censor),
        "os_time_days": np.minimum(death_any, censor),
        "os_event": os_event,
        "death_cause": cause,
    }
