"""Kaplan–Meier survival of one arm and its summaries: landmark estimates, median, RMST with its standard
error (lifelines and a NumPy product-limit), RMST difference and ratio between arms, milestone survival
differences. Times are days. Part of :mod:`chemomet.trial.analysis`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from lifelines import KaplanMeierFitter
from lifelines.utils import restricted_mean_survival_time
from scipy import stats

from chemomet.units import DAYS_PER_YEAR


def _num(x) -> float | None:
    """A JSON-safe float (None for NaN or infinity)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def time_event(df: pd.DataFrame, endpoint: str) -> tuple[np.ndarray, np.ndarray]:
    """(times in days, event flags) of a time-to-event endpoint.

    Parameters
    ----------
    df : pandas.DataFrame
        The patient table, with ``<endpoint>_time_days`` (days) and ``<endpoint>_event`` (bool).
    endpoint : str
        ``dmfs``, ``drfi`` or ``os``.

    Returns
    -------
    tuple of numpy.ndarray
        Times (days) and event flags.

    Examples
    --------
    >>> df = pd.DataFrame({"os_time_days": [100.0, 250.0], "os_event": [True, False]})
    >>> t, e = time_event(df, "os")
    >>> t.tolist(), e.tolist()
    ([100.0, 250.0], [True, False])
    """
    return df[f"{endpoint}_time_days"].to_numpy(float), df[f"{endpoint}_event"].to_numpy(bool)


def kaplan_meier(time: np.ndarray, event: np.ndarray, alpha: float = 0.05) -> KaplanMeierFitter:
    """A fitted lifelines Kaplan–Meier estimator.

    Parameters
    ----------
    time : numpy.ndarray
        Observed times (days).
    event : numpy.ndarray
        Event flags (bool).
    alpha : float, default 0.05
        1 − confidence level of the pointwise bands.

    Returns
    -------
    lifelines.KaplanMeierFitter

    Examples
    --------
    >>> kmf = kaplan_meier(np.array([1.0, 2.0, 3.0, 4.0]), np.array([True, False, True, True]))
    >>> round(float(kmf.predict(3.0)), 4)  # (3/4)(1/2): survival after day 3
    0.375
    """
    return KaplanMeierFitter(alpha=alpha).fit(time, event)


def km_curve(kmf: KaplanMeierFitter, max_points: int = 4000) -> dict[str, np.ndarray]:
    """The KM step curve and its confidence band, thinned to at most ``max_points`` steps (for figures):
    ``days``, ``survival``, ``lower``, ``upper``, ``n`` (patients).

    Examples
    --------
    >>> kmf = kaplan_meier(np.arange(1.0, 101.0), np.ones(100, bool))
    >>> c = km_curve(kmf, max_points=11)
    >>> c["n"], len(c["days"]), float(c["survival"][-1])
    (100, 11, 0.0)
    """
    sf = kmf.survival_function_.iloc[:, 0]
    ci = kmf.confidence_interval_survival_function_
    keep = np.unique(np.linspace(0, sf.size - 1, min(max_points, sf.size)).astype(int))
    return {
        "days": sf.index.to_numpy(float)[keep],
        "survival": sf.to_numpy(float)[keep],
        "lower": ci.iloc[:, 0].to_numpy(float)[keep],
        "upper": ci.iloc[:, 1].to_numpy(float)[keep],
        "n": int(kmf.event_observed.size),
    }


def km_summary(kmf: KaplanMeierFitter, landmarks_days: list[float], tau_days: float) -> dict:
    """KM estimate with its confidence interval at each landmark (days), median (days) and RMST to ``tau``.

    Parameters
    ----------
    kmf : lifelines.KaplanMeierFitter
        A fitted estimator (:func:`kaplan_meier`).
    landmarks_days : list of float
        Landmarks (days).
    tau_days : float
        RMST horizon (days).

    Returns
    -------
    dict
        ``n``, ``events``, ``median_days``, ``km`` (``"<years>y"`` -> ``day``, ``estimate``, ``lower``,
        ``upper``), ``rmst_days`` and ``rmst_se_days`` (days).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> kmf = kaplan_meier(rng.exponential(1000.0, 2000), np.ones(2000, bool))
    >>> s = km_summary(kmf, [365.25], 1000.0)
    >>> round(s["km"]["1y"]["estimate"], 2), round(s["median_days"], -2), round(s["rmst_days"], -1)
    (0.69, 700.0, 640.0)
    """
    ci = kmf.confidence_interval_survival_function_
    at = {}
    for t in landmarks_days:
        est = float(kmf.survival_function_at_times(t).iloc[0])
        row = ci.loc[:t].iloc[-1]
        at[f"{t / DAYS_PER_YEAR:g}y"] = {
            "day": t,
            "estimate": est,
            "lower": _num(row.iloc[0]),
            "upper": _num(row.iloc[1]),
        }
    rmst = restricted_mean_survival_time(kmf, t=tau_days)
    return {
        "n": int(kmf.event_observed.size),
        "events": int(kmf.event_observed.sum()),
        "median_days": _num(kmf.median_survival_time_),
        "km": at,
        "rmst_days": float(rmst),
        "rmst_se_days": rmst_standard_error(kmf, tau_days),
    }


def rmst_standard_error(kmf: KaplanMeierFitter, tau_days: float) -> float:
    """Standard error (days) of the KM-based RMST to ``tau``: ``Var = sum_j A_j^2 d_j / (n_j (n_j - d_j))`` over
    event times ``t_j <= tau``, with ``A_j`` the area under the KM curve from ``t_j`` to ``tau`` (Klein &
    Moeschberger 2003, §4.5; as in survRM2).

    Examples
    --------
    >>> kmf = kaplan_meier(np.arange(1.0, 101.0), np.ones(100, bool))
    >>> round(rmst_standard_error(kmf, 100.0), 2)  # days; close to sd / sqrt(n) = 2.9 for uniform times
    2.89
    """
    sf = kmf.survival_function_
    tl = sf.index.to_numpy(float)
    s = sf.iloc[:, 0].to_numpy(float)
    area = np.concatenate([[0.0], np.cumsum(s[:-1] * np.diff(tl))])  # integral of S from 0 to tl[k]

    def area_to(t):
        k = np.searchsorted(tl, t, side="right") - 1
        return area[k] + s[k] * (t - tl[k])

    et = kmf.event_table
    t = et.index.to_numpy(float)
    d = et["observed"].to_numpy(float)
    n = et["at_risk"].to_numpy(float)
    keep = (d > 0) & (t <= tau_days) & (n > d)
    a = area_to(tau_days) - area_to(t[keep])
    return float(np.sqrt(np.sum(a * a * d[keep] / (n[keep] * (n[keep] - d[keep])))))


# ------------------------------------------------------------------------------------- KM in NumPy, RMST, milestones
def _km_table(time, event) -> dict:
    """Product-limit estimate at the distinct event times: ``t``, ``d``, ``n``, ``s`` (S just after ``t``),
    ``gw`` (Greenwood sum to ``t``), ``last`` (the last time observed)."""
    t = np.asarray(time, float)
    e = np.asarray(event, bool)
    ts = np.sort(t)
    ut, d = np.unique(t[e], return_counts=True)
    n = (ts.size - np.searchsorted(ts, ut, side="left")).astype(float)
    s = np.cumprod(1.0 - d / n)
    with np.errstate(divide="ignore"):
        gw = np.cumsum(np.where(n > d, d / (n * (n - d)), np.inf))
    return {"t": ut, "d": d.astype(float), "n": n, "s": s, "gw": gw, "last": float(ts[-1]) if ts.size else 0.0}


def _km_at(km: dict, day: float) -> tuple[float, float]:
    """KM estimate at ``day`` and its Greenwood variance."""
    k = int(np.searchsorted(km["t"], day, side="right")) - 1
    if k < 0:
        return 1.0, 0.0
    s = float(km["s"][k])
    return s, (0.0 if s == 0.0 else s * s * float(km["gw"][k]))


def _rmst(km: dict, tau: float) -> tuple[float, float]:
    """RMST to ``tau`` (area under the KM curve) and its standard error (as :func:`rmst_standard_error`)."""
    inside = km["t"] <= tau
    t, s, d, n = km["t"][inside], km["s"][inside], km["d"][inside], km["n"][inside]
    knots = np.concatenate([[0.0], t, [tau]])
    pieces = np.concatenate([[1.0], s]) * np.diff(knots)
    after = np.cumsum(pieces[::-1])[::-1][1:]  # area from each event time to tau
    keep = n > d
    var = np.sum(after[keep] ** 2 * d[keep] / (n[keep] * (n[keep] - d[keep])))
    return float(pieces.sum()), float(np.sqrt(var))


def rmst_comparison(
    time: np.ndarray, event: np.ndarray, treated: np.ndarray, tau_days: float, alpha: float = 0.05
) -> dict:
    """Restricted mean survival time to ``tau``: difference and ratio (experimental vs control) with CIs.

    The RMST of each arm is the area under its Kaplan–Meier curve to ``tau`` (days), with the standard error of
    :func:`rmst_standard_error`. Difference: Wald CI and two-sided z-test p-value (the ``rmst`` primary
    analysis). Ratio: CI on the log scale, ``se(log R) = sqrt((se1/r1)² + (se0/r0)²)`` (delta method). A
    difference > 0 (ratio > 1) favours the experimental arm. ``tau`` should not exceed the minimum follow-up
    (the spec refuses a longer horizon).

    Parameters
    ----------
    time : array of float
        Event or censoring times (days).
    event : array of bool
        True where the time is an event.
    treated : array of bool or int
        1 for the experimental arm, 0 for the control.
    tau_days : float
        The horizon (days).
    alpha : float, default 0.05
        Two-sided level of the confidence intervals.

    Returns
    -------
    dict
        ``rmst_difference_days`` with ``_lower_days``/``_upper_days`` and ``rmst_difference_p``; ``rmst_ratio``
        with ``_lower``/``_upper``; ``rmst_control_days``, ``rmst_experimental_days``.

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> x = np.repeat([0, 1], 2000)
    >>> t = rng.exponential(np.where(x == 1, 2000.0, 1000.0))
    >>> res = rmst_comparison(np.minimum(t, 1500.0), t <= 1500.0, x, tau_days=1000.0)
    >>> bool(abs(res["rmst_control_days"] - 632) < 25), bool(abs(res["rmst_experimental_days"] - 787) < 25)
    (True, True)
    >>> res["rmst_difference_lower_days"] > 0, res["rmst_ratio"] > 1, res["rmst_difference_p"] < 1e-6
    (True, True, True)
    """
    x = np.asarray(treated, bool)
    t = np.asarray(time, float)
    e = np.asarray(event, bool)
    r0, se0 = _rmst(_km_table(t[~x], e[~x]), tau_days)
    r1, se1 = _rmst(_km_table(t[x], e[x]), tau_days)
    z = float(stats.norm.ppf(1 - alpha / 2))
    diff, se = r1 - r0, math.hypot(se1, se0)
    out = {
        "rmst_control_days": r0,
        "rmst_experimental_days": r1,
        "rmst_difference_days": diff,
        "rmst_difference_lower_days": diff - z * se,
        "rmst_difference_upper_days": diff + z * se,
        "rmst_difference_p": float(2 * stats.norm.sf(abs(diff) / se)) if se > 0 else None,
        "rmst_ratio": None,
        "rmst_ratio_lower": None,
        "rmst_ratio_upper": None,
    }
    if r0 > 0 and r1 > 0:
        se_log = math.hypot(se1 / r1, se0 / r0)
        out.update(
            rmst_ratio=r1 / r0,
            rmst_ratio_lower=math.exp(math.log(r1 / r0) - z * se_log),
            rmst_ratio_upper=math.exp(math.log(r1 / r0) + z * se_log),
        )
    if se == 0:
        out["not_applicable"] = "no events before the RMST horizon: no variance"
    return out


def milestone_difference(
    time: np.ndarray, event: np.ndarray, treated: np.ndarray, day: float, alpha: float = 0.05
) -> dict:
    """Difference of Kaplan–Meier survival at a fixed time (experimental − control), with CI and p-value.

    ``S1(day) − S0(day)`` with the Greenwood variances of both arms (Wald CI, two-sided z test; Klein et al.
    2007). Not applicable (None, with the reason) beyond the last follow-up time of an arm.

    Parameters
    ----------
    time : array of float
        Event or censoring times (days).
    event : array of bool
        True where the time is an event.
    treated : array of bool or int
        1 for the experimental arm, 0 for the control.
    day : float
        The milestone (days).
    alpha : float, default 0.05
        Two-sided level of the confidence interval.

    Returns
    -------
    dict
        ``day``, ``control``, ``experimental`` (KM estimates), ``difference``, ``lower``, ``upper``, ``p``.

    Examples
    --------
    >>> rng = np.random.default_rng(3)
    >>> x = np.repeat([0, 1], 3000)
    >>> t = rng.exponential(np.where(x == 1, 2000.0, 1000.0))
    >>> res = milestone_difference(np.minimum(t, 1500.0), t <= 1500.0, x, day=1000.0)
    >>> bool(abs(res["control"] - np.exp(-1)) < 0.02), bool(abs(res["experimental"] - np.exp(-0.5)) < 0.02)
    (True, True)
    >>> res["lower"] < 0.2387 < res["upper"]  # exp(-0.5) - exp(-1)
    True
    >>> milestone_difference(np.minimum(t, 1500.0), t <= 1500.0, x, day=2000.0)["not_applicable"]
    'beyond the last follow-up of an arm'
    """
    x = np.asarray(treated, bool)
    t = np.asarray(time, float)
    e = np.asarray(event, bool)
    k0, k1 = _km_table(t[~x], e[~x]), _km_table(t[x], e[x])
    out = {"day": float(day), "control": None, "experimental": None, "difference": None}
    out.update(lower=None, upper=None, p=None)
    if day > min(k0["last"], k1["last"]):
        return {**out, "not_applicable": "beyond the last follow-up of an arm"}
    (s0, v0), (s1, v1) = _km_at(k0, day), _km_at(k1, day)
    z = float(stats.norm.ppf(1 - alpha / 2))
    se = math.sqrt(v0 + v1)
    diff = s1 - s0
    out.update(control=s0, experimental=s1, difference=diff, lower=diff - z * se, upper=diff + z * se)
    out["p"] = float(2 * stats.norm.sf(abs(diff) / se)) if se > 0 else None
    return out
