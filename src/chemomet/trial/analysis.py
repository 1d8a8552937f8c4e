"""Statistics of a trial's patient-level table: Kaplan–Meier, log-rank, Cox hazard ratio with a
proportional-hazards test and hazard ratios by year, RMST difference and ratio, milestone survival differences;
pCR (two proportions) and TMEM change (log ratio, Welch t test); subgroups with interaction tests; multiplicity
across arms and endpoints; power over replicates.

Arm 0 is the control; each other arm is compared with it. Times are days; hazard ratios are experimental vs
control (< 1: fewer events on the experimental arm). Every comparison carries the p-value of its pre-specified
test (``p``), adjusted across arms (``p_adjusted_arms``) and across arms and the hierarchy of endpoints
(``p_adjusted``). A quantity that does not apply is None, with the reason in ``not_applicable``.
"""

from __future__ import annotations

import math
import warnings
import weakref

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.utils import restricted_mean_survival_time
from scipy import stats

from chemomet.trial.spec import TIME_TO_EVENT, TrialSpec
from chemomet.units import DAYS_PER_YEAR

MIN_SUBGROUP_PATIENTS = 20
TEST_NAMES = {
    "logrank": "log-rank",
    "cox": "Cox Wald",
    "rmst": "RMST difference (z test)",
    "pcr": "chi-square (Fisher's exact when an expected count < 5)",
    "tmem_change": "Welch t test",
}
"""The name of each pre-specified test, as the summary reports it."""


def _num(x) -> float | None:
    """A JSON-safe float (None for NaN or infinity)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def time_event(df: pd.DataFrame, endpoint: str) -> tuple[np.ndarray, np.ndarray]:
    """(times in days, event flags) of a time-to-event endpoint."""
    return df[f"{endpoint}_time_days"].to_numpy(float), df[f"{endpoint}_event"].to_numpy(bool)


def kaplan_meier(time: np.ndarray, event: np.ndarray, alpha: float = 0.05) -> KaplanMeierFitter:
    """A fitted lifelines Kaplan–Meier estimator."""
    return KaplanMeierFitter(alpha=alpha).fit(time, event)


def km_curve(kmf: KaplanMeierFitter, max_points: int = 4000) -> dict[str, np.ndarray]:
    """The KM step curve and its confidence band, thinned to at most ``max_points`` steps (for figures):
    ``days``, ``survival``, ``lower``, ``upper``, ``n`` (patients)."""
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
    """KM estimate with its confidence interval at each landmark (days), median (days) and RMST to ``tau``."""
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
    Moeschberger 2003, §4.5; as in survRM2)."""
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


# ---------------------------------------------------------------------------------------------- Cox, one binary
def _risk_sets(time, event, treated) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For each event (in time order): its time, its covariate, and the control and treated patients at risk
    (time >= the event's time; tied events share their risk set: Breslow)."""
    t = np.asarray(time, float)
    x = np.asarray(treated, float)
    e = np.asarray(event, bool)
    order = np.argsort(t, kind="stable")
    ts, xs = t[order], x[order]
    te, xe = ts[e[order]], xs[e[order]]
    first = np.searchsorted(ts, te, side="left")  # rows before the first patient still at risk
    n1 = x.sum() - np.concatenate([[0.0], np.cumsum(xs)])[first]
    n0 = (ts.size - first) - n1
    return te, xe, n0, n1


def _newton(n0: np.ndarray, n1: np.ndarray, xe: np.ndarray, tol: float = 1e-12) -> tuple[float, float]:
    """Maximum partial-likelihood log hazard ratio and its standard error from the risk sets of each event; NaN
    when the estimate runs off to infinity (every event of one arm happens while the other arm has nobody at
    risk: no finite maximum)."""
    beta = 0.0
    with np.errstate(all="ignore"):
        for _ in range(100):
            r = np.exp(beta)
            p = n1 * r / (n0 + n1 * r)
            step = float(np.clip(np.sum(xe - p) / np.sum(p * (1 - p)), -5.0, 5.0))
            beta += step
            if not abs(step) >= tol or abs(beta) > 30:  # converged, or NaN, or diverging
                break
        r = np.exp(beta)
        p = n1 * r / (n0 + n1 * r)
        se = float(1.0 / np.sqrt(np.sum(p * (1 - p))))
    if not (math.isfinite(beta) and math.isfinite(se)) or abs(beta) > 30:
        return math.nan, math.nan
    return float(beta), se


def _loglik(n0: np.ndarray, n1: np.ndarray, xe: np.ndarray, beta: float) -> float:
    """Cox partial log-likelihood (Breslow) of one binary covariate at ``beta``."""
    return float(np.sum(xe * beta - np.log(n0 + n1 * np.exp(beta))))


def cox_hazard_ratio(time: np.ndarray, event: np.ndarray, treated: np.ndarray, alpha: float = 0.05) -> dict:
    """Cox proportional-hazards hazard ratio of ``treated`` (1) vs control (0), its CI and Wald p-value.

    Without tied event times (the rule here: times are continuous) the partial likelihood of one binary
    covariate is maximised by a vectorised Newton–Raphson (:func:`cox_binary`, O(n log n)); with ties,
    lifelines' ``CoxPHFitter`` (Efron) is used. Both give lifelines' numbers (tested). Returns None values
    when an arm has no event (the HR is not estimable).
    """
    treated = np.asarray(treated, int)
    event = np.asarray(event, bool)
    none = {"hazard_ratio": None, "ci_lower": None, "ci_upper": None, "cox_p": None}
    if event[treated == 1].sum() == 0 or event[treated == 0].sum() == 0:
        return none
    t_ev = np.asarray(time, float)[event]
    if np.unique(t_ev).size == t_ev.size:
        beta, se = cox_binary(time, event, treated)
    else:
        df = pd.DataFrame({"T": time, "E": event.astype(int), "treated": treated})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cph = CoxPHFitter(alpha=alpha).fit(df, duration_col="T", event_col="E")
        beta, se = float(cph.params_["treated"]), float(cph.standard_errors_["treated"])
    if not (math.isfinite(beta) and math.isfinite(se) and se > 0):
        return none
    z = float(stats.norm.ppf(1 - alpha / 2))
    return {
        "hazard_ratio": math.exp(beta),
        "ci_lower": math.exp(beta - z * se),
        "ci_upper": math.exp(beta + z * se),
        "cox_p": float(stats.chi2.sf((beta / se) ** 2, 1)),
    }


def cox_binary(time: np.ndarray, event: np.ndarray, treated: np.ndarray, tol: float = 1e-12) -> tuple[float, float]:
    """Maximum partial-likelihood log hazard ratio of a binary covariate and its standard error.

    Assumes no tied event times (then Breslow = Efron = exact). With ``n1(t), n0(t)`` treated and control
    patients at risk at an event time and ``p = n1 e^b / (n0 + n1 e^b)``: score ``U = sum(x_i - p)``,
    information ``I = sum p (1 - p)``; Newton steps ``b += U / I`` to ``|step| < tol``; ``se = I^-1/2``.
    """
    _, xe, n0, n1 = _risk_sets(time, event, treated)
    return _newton(n0, n1, xe, tol)


def observed_minus_expected(time: np.ndarray, event: np.ndarray, treated: np.ndarray) -> float:
    """Log-rank O − E of the treated group (< 0: fewer events than expected under no difference)."""
    order = np.argsort(time, kind="stable")
    e = np.asarray(event, float)[order]
    g = np.asarray(treated, float)[order]
    at_risk = np.arange(g.size, 0, -1, dtype=float)
    treated_at_risk = np.cumsum(g[::-1])[::-1]
    return float(np.sum(e * (g - treated_at_risk / at_risk)))


def logrank(time: np.ndarray, event: np.ndarray, treated: np.ndarray) -> dict:
    """Two-sample log-rank test of ``treated`` vs control, vectorised (O(n log n)).

    At each distinct event time with ``d`` events (``d1`` treated) among ``n`` patients at risk (``n1``
    treated): ``O − E = sum(d1 − d n1 / n)``, ``V = sum d (n1/n)(1 − n1/n)(n − d)/(n − 1)`` (hypergeometric,
    exact for ties); statistic ``(O − E)² / V``, chi-square with 1 degree of freedom. Equals lifelines'
    ``logrank_test`` (tested), without its per-call overhead, so that power over thousands of trials is cheap.

    Parameters
    ----------
    time : array of float
        Event or censoring times (days).
    event : array of bool
        True where the time is an event.
    treated : array of bool or int
        1 for the experimental arm, 0 for the control.

    Returns
    -------
    dict
        ``statistic``, ``p`` and ``observed_minus_expected`` (of the treated arm; < 0: fewer events than
        expected under no difference); None values (with ``not_applicable``) when there is no event.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> x = np.repeat([0, 1], 500)
    >>> t = rng.exponential(np.where(x == 1, 2000.0, 1000.0))  # hazard ratio 0.5
    >>> res = logrank(np.minimum(t, 1500.0), t <= 1500.0, x)
    >>> res["p"] < 1e-6, res["observed_minus_expected"] < 0
    (True, True)
    """
    t = np.asarray(time, float)
    e = np.asarray(event, bool)
    x = np.asarray(treated, bool)
    if not e.any():
        return {"statistic": None, "p": None, "observed_minus_expected": None, "not_applicable": "no events"}
    ts = np.sort(t, kind="stable")
    ut, d = np.unique(t[e], return_counts=True)
    d1 = np.bincount(np.searchsorted(ut, t[e & x]), minlength=ut.size)
    first = np.searchsorted(ts, ut, side="left")
    n = (ts.size - first).astype(float)
    xs = x[np.argsort(t, kind="stable")].astype(float)
    n1 = xs.sum() - np.concatenate([[0.0], np.cumsum(xs)])[first]
    share = n1 / n
    o_e = float(np.sum(d1 - d * share))
    var = float(np.sum(np.where(n > 1, d * share * (1 - share) * (n - d) / np.maximum(n - 1, 1), 0.0)))
    if var <= 0:
        return {"statistic": None, "p": None, "observed_minus_expected": o_e, "not_applicable": "no variance"}
    chi2 = o_e * o_e / var
    return {"statistic": chi2, "p": float(stats.chi2.sf(chi2, 1)), "observed_minus_expected": o_e}


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


# ------------------------------------------------------------------------------- non-proportional hazards
def proportional_hazards_test(time: np.ndarray, event: np.ndarray, treated: np.ndarray) -> dict:
    """Schoenfeld-residual test of proportional hazards for the treatment effect (Grambsch & Therneau 1994).

    The scaled Schoenfeld residuals of the Cox model are regressed on the rank of the event times (lifelines'
    ``proportional_hazard_test`` with ``time_transform="rank"``, its default): with residuals ``r_i = x_i −
    p_i`` at the ``D`` event times and ranks ``g_i``, ``T = D se² (Σ (g_i − ḡ) r_i)² / Σ (g_i − ḡ)²``,
    chi-square with 1 degree of freedom. Computed in O(n log n) from the risk sets; equals lifelines on the
    same data (tested). A small p says the hazard ratio changes with time: read the single Cox HR as an average
    and look at the hazard ratios by interval and the RMST.

    Parameters
    ----------
    time : array of float
        Event or censoring times (days).
    event : array of bool
        True where the time is an event.
    treated : array of bool or int
        1 for the experimental arm, 0 for the control.

    Returns
    -------
    dict
        ``statistic``, ``p``, ``time_transform`` (``"rank"``), ``events``.

    Examples
    --------
    >>> rng = np.random.default_rng(4)
    >>> x = np.repeat([0, 1], 3000)
    >>> early = rng.exponential(np.where(x == 1, 1000.0, 250.0))  # treated: 4x lower hazard in year 1 only
    >>> t = np.where(early < 365.25, early, 365.25 + rng.exponential(250.0, x.size))
    >>> proportional_hazards_test(np.minimum(t, 1500.0), t <= 1500.0, x)["p"] < 1e-6
    True
    >>> t = rng.exponential(np.where(x == 1, 500.0, 250.0))  # proportional hazards
    >>> proportional_hazards_test(np.minimum(t, 1500.0), t <= 1500.0, x)["p"] > 0.001
    True
    """
    x = np.asarray(treated, bool)
    e = np.asarray(event, bool)
    out = {"statistic": None, "p": None, "time_transform": "rank", "events": int(e.sum())}
    if not (e & x).any() or not (e & ~x).any():
        return {**out, "not_applicable": "no events in an arm"}
    _, xe, n0, n1 = _risk_sets(time, e, x)
    beta, se = _newton(n0, n1, xe)
    if not math.isfinite(beta):
        return {**out, "not_applicable": "no finite hazard ratio"}
    r = np.exp(beta)
    resid = xe - n1 * r / (n0 + n1 * r)
    g = np.arange(1.0, xe.size + 1)
    g -= g.mean()
    stat = float(xe.size * se * se * np.dot(g, resid) ** 2 / np.dot(g, g)) if xe.size > 1 else 0.0
    return {**out, "statistic": stat, "p": float(stats.chi2.sf(stat, 1))}


def hazard_ratio_by_interval(
    time: np.ndarray,
    event: np.ndarray,
    treated: np.ndarray,
    alpha: float = 0.05,
    width_days: float = DAYS_PER_YEAR,
    until_days: float | None = None,
) -> list[dict]:
    """Piecewise hazard ratios: a Cox model whose treatment effect is constant within each interval.

    Intervals ``(k w, (k + 1) w]`` of width ``w`` (days; default one year) to ``until_days`` (default: the last
    time observed). The effect of interval ``k`` is estimated from the patients still at risk at its start,
    censored at its end: the partial likelihood of a Cox model with one treatment coefficient per interval
    factorises over the intervals, so this is that model's estimate (tested against lifelines'
    ``CoxTimeVaryingFitter``). With proportional hazards every interval estimates the same HR.

    Parameters
    ----------
    time : array of float
        Event or censoring times (days).
    event : array of bool
        True where the time is an event.
    treated : array of bool or int
        1 for the experimental arm, 0 for the control.
    alpha : float, default 0.05
        Two-sided level of the confidence intervals.
    width_days : float, default 365.25
        Width of the intervals (days).
    until_days : float, optional
        End of the last interval (days); default: the last time observed.

    Returns
    -------
    list of dict
        Per interval: ``from_days``, ``to_days``, ``from_years``, ``to_years``, ``at_risk_control``,
        ``at_risk_experimental``, ``events_control``, ``events_experimental``, ``hazard_ratio``, ``ci_lower``,
        ``ci_upper``, ``cox_p`` (None, with ``not_applicable``, where the interval's HR is not estimable).

    Examples
    --------
    >>> rng = np.random.default_rng(5)
    >>> x = np.repeat([0, 1], 4000)
    >>> early = rng.exponential(np.where(x == 1, 1000.0, 500.0))  # HR 0.5 in year 1, then 1
    >>> t = np.where(early < 365.25, early, 365.25 + rng.exponential(500.0, x.size))
    >>> rows = hazard_ratio_by_interval(np.minimum(t, 730.5), t <= 730.5, x)  # two years of follow-up
    >>> [r["to_years"] for r in rows]
    [1.0, 2.0]
    >>> round(rows[0]["hazard_ratio"], 1), round(rows[1]["hazard_ratio"], 1)
    (0.5, 1.0)
    """
    t = np.asarray(time, float)
    e = np.asarray(event, bool)
    x = np.asarray(treated, bool)
    end = float(t.max()) if until_days is None else float(until_days)
    rows = []
    for k in range(max(1, math.ceil(end / width_days - 1e-9))):
        lo, hi = k * width_days, min((k + 1) * width_days, end)
        if hi <= lo:
            break
        m = t > lo
        tt, ee, xx = np.minimum(t[m], hi), e[m] & (t[m] <= hi), x[m]
        row = {
            "from_days": lo,
            "to_days": hi,
            "from_years": lo / DAYS_PER_YEAR,
            "to_years": hi / DAYS_PER_YEAR,
            "at_risk_control": int((~xx).sum()),
            "at_risk_experimental": int(xx.sum()),
            "events_control": int((ee & ~xx).sum()),
            "events_experimental": int((ee & xx).sum()),
        }
        res = cox_hazard_ratio(tt, ee, xx.astype(int), alpha)
        if res["hazard_ratio"] is None:
            res["not_applicable"] = "not estimable in this interval: no events in an arm, or no finite maximum"
        rows.append({**row, **res})
    return rows


# -------------------------------------------------------------------------------------------------- subgroups
def interaction_test(
    time: np.ndarray,
    event: np.ndarray,
    treated: np.ndarray,
    levels: list[tuple[str, np.ndarray]],
    min_patients: int = MIN_SUBGROUP_PATIENTS,
) -> dict:
    """Test of heterogeneity of the treatment effect across the levels of a subgroup variable.

    Likelihood-ratio test in a Cox model stratified by level: the model with a treatment × level interaction
    (one log hazard ratio per level) against the model with one common log hazard ratio; each level keeps its
    own baseline hazard. ``LR = 2 (Σ_l ℓ_l(b_l) − Σ_l ℓ_l(b))``, chi-square with (levels − 1) degrees of
    freedom. The interaction model's per-level estimates are the subgroup hazard ratios of the forest plot;
    levels left out of it (fewer than ``min_patients`` patients or no event in an arm) are left out here too.
    Equals lifelines' stratified ``CoxPHFitter`` fits (Breslow ties; tested). A small p is evidence that the
    effect differs between levels; the per-level p-values are not.

    Parameters
    ----------
    time : array of float
        Event or censoring times (days).
    event : array of bool
        True where the time is an event.
    treated : array of bool or int
        1 for the experimental arm, 0 for the control.
    levels : list of (str, array of bool)
        Each level's label and mask (as :func:`subgroup_levels` gives them).
    min_patients : int, default 20
        Smallest level tested.

    Returns
    -------
    dict
        ``interaction_statistic``, ``interaction_df``, ``interaction_p``, ``interaction_levels`` (labels used),
        ``interaction_test`` (the method); None values with ``not_applicable`` with fewer than two levels.

    Examples
    --------
    >>> rng = np.random.default_rng(6)
    >>> n = 4000
    >>> x, level = rng.random(n) < 0.5, rng.random(n) < 0.5
    >>> hr = np.where(level & x, 0.5, 1.0)  # the treatment acts in one level only
    >>> t = rng.exponential(1000.0 / hr)
    >>> res = interaction_test(np.minimum(t, 1500.0), t <= 1500.0, x, [("A", level), ("B", ~level)])
    >>> res["interaction_df"], res["interaction_p"] < 1e-4
    (1, True)
    """
    t = np.asarray(time, float)
    e = np.asarray(event, bool)
    x = np.asarray(treated, bool)
    out = {
        "interaction_statistic": None,
        "interaction_df": None,
        "interaction_p": None,
        "interaction_levels": [],
        "interaction_test": "likelihood ratio, Cox stratified by level, treatment x level",
    }
    terms, own, used = [], 0.0, []
    for label, mask in levels:
        m = np.asarray(mask, bool)
        xm, em = x[m], e[m]
        if m.sum() < min_patients or not (em & xm).any() or not (em & ~xm).any():
            continue
        _, xe, n0, n1 = _risk_sets(t[m], em, xm)
        beta, _ = _newton(n0, n1, xe)
        if not math.isfinite(beta):
            continue
        own += _loglik(n0, n1, xe, beta)
        terms.append((n0, n1, xe))
        used.append(label)
    if len(used) < 2:
        return {**out, "interaction_levels": used, "not_applicable": "fewer than two levels with events in both arms"}
    n0, n1, xe = (np.concatenate(z) for z in zip(*terms, strict=True))
    common = _loglik(n0, n1, xe, _newton(n0, n1, xe)[0])
    if not math.isfinite(common):  # pragma: no cover - every level has a finite estimate, so has the common one
        return {**out, "interaction_levels": used, "not_applicable": "no finite common hazard ratio"}
    lr = max(0.0, 2.0 * (own - common))
    return {
        **out,
        "interaction_statistic": lr,
        "interaction_df": len(used) - 1,
        "interaction_p": float(stats.chi2.sf(lr, len(used) - 1)),
        "interaction_levels": used,
    }


# ----------------------------------------------------------------------------------------------- multiplicity
def adjust_p(p, method: str = "holm") -> list[float | None]:
    """Adjusted p-values of a family of hypotheses (the experimental arms vs the control): Holm or Bonferroni.

    Bonferroni: ``min(1, m p)``. Holm (step-down): the ``k``-th smallest p-value times ``m − k + 1``, made
    non-decreasing, capped at 1. Rejecting where the adjusted p-value is ≤ alpha controls the family-wise error
    rate at alpha. A None (or NaN) entry — a comparison that does not apply — counts in ``m`` as p = 1 and stays
    None.

    Parameters
    ----------
    p : sequence of float or None
        Unadjusted p-values.
    method : {"holm", "bonferroni"}, default "holm"
        The adjustment.

    Returns
    -------
    list of float or None
        Adjusted p-values, in the order given.

    Examples
    --------
    >>> [round(q, 6) for q in adjust_p([0.01, 0.04, 0.03])]
    [0.03, 0.06, 0.06]
    >>> [None if q is None else round(q, 6) for q in adjust_p([0.01, 0.04, None], "bonferroni")]
    [0.03, 0.12, None]
    """
    raw = np.array([np.nan if v is None else float(v) for v in p], float)
    q = np.where(np.isfinite(raw), raw, 1.0)
    m = q.size
    if method == "bonferroni":
        adj = np.minimum(1.0, m * q)
    elif method == "holm":
        order = np.argsort(q, kind="stable")
        steps = np.maximum.accumulate((m - np.arange(m)) * q[order])
        adj = np.empty(m)
        adj[order] = np.minimum(1.0, steps)
    else:
        raise ValueError(f"method = {method!r}; allowed: 'holm' or 'bonferroni'")
    return [None if not np.isfinite(r) else float(a) for r, a in zip(raw, adj, strict=True)]


def gatekeeping_p(p, method: str = "holm") -> np.ndarray:
    """Adjusted p-values over experimental arms × a fixed sequence (hierarchy) of endpoints.

    ``p[a, k]``: the unadjusted p-value of arm ``a`` (vs the control) on the ``k``-th endpoint of the
    hierarchy (NaN: not applicable, never rejected). A graphical procedure (Bretz et al. 2009) of weighted
    Bonferroni tests: each arm's first endpoint starts with weight 1/A; when arm ``a``'s ``k``-th hypothesis is
    rejected its weight passes to its ``k+1``-th (fixed sequence: an endpoint is tested only after the one
    before it was rejected); with ``holm`` an arm's last endpoint passes its weight on to the other arms
    (shared equally), with ``bonferroni`` it is not passed on. With one endpoint this is Holm (or Bonferroni)
    across the arms; with one arm, the fixed-sequence procedure. The family-wise error rate over all arms and
    endpoints is at most alpha (strong control: closed testing). Adjusted p-values by the sequentially
    rejective algorithm: reject ``(a, k)`` at level alpha iff its adjusted p-value is ≤ alpha.

    Parameters
    ----------
    p : array of float, shape (arms, endpoints)
        Unadjusted p-values; NaN where a comparison does not apply.
    method : {"holm", "bonferroni"}, default "holm"
        What happens to the weight of an arm whose every endpoint was rejected.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values, same shape (NaN where ``p`` is NaN).

    Examples
    --------
    Two arms, two endpoints (primary, then secondary):

    >>> p = np.array([[0.001, 0.04],
    ...               [0.02, 0.01]])
    >>> gatekeeping_p(p).round(3).tolist()
    [[0.002, 0.04], [0.04, 0.04]]
    >>> np.allclose(gatekeeping_p(p[:, :1]).ravel(), adjust_p(p[:, 0]))  # one endpoint: Holm across arms
    True
    >>> gatekeeping_p(np.array([[0.01, 0.2, 0.001]])).tolist()  # one arm: fixed sequence
    [[0.01, 0.2, 0.2]]
    """
    p = np.atleast_2d(np.asarray(p, float))
    n_arms, n_ep = p.shape
    m = n_arms * n_ep
    w = np.zeros(m)
    w[0::n_ep] = 1.0 / n_arms  # hypothesis (a, k) is a * n_ep + k
    g = np.zeros((m, m))
    for a in range(n_arms):
        for k in range(n_ep - 1):
            g[a * n_ep + k, a * n_ep + k + 1] = 1.0
        if method == "holm" and n_arms > 1:
            for b in range(n_arms):
                if b != a:
                    g[a * n_ep + n_ep - 1, b * n_ep] = 1.0 / (n_arms - 1)
        elif method not in ("holm", "bonferroni"):
            raise ValueError(f"method = {method!r}; allowed: 'holm' or 'bonferroni'")
    pv = np.where(np.isfinite(p.ravel()), p.ravel(), 1.0)
    active = np.ones(m, bool)
    adj = np.ones(m)
    worst = 0.0
    while active.any():
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(active & (w > 0), pv / w, np.inf)
        j = int(np.argmin(ratio))
        if not np.isfinite(ratio[j]):
            break  # the rest carry no weight: never rejected (adjusted p = 1)
        worst = max(worst, float(ratio[j]))
        adj[j] = min(1.0, worst)
        active[j] = False
        # remove j from the graph (Bretz et al. 2009, Algorithm 1)
        w = np.where(active, w + w[j] * g[j], 0.0)
        gl, gj = g[:, j].copy(), g[j].copy()
        den = 1.0 - gl * gj
        with np.errstate(divide="ignore", invalid="ignore"):
            g = np.where(den[:, None] > 0, (g + np.outer(gl, gj)) / den[:, None], 0.0)
        np.fill_diagonal(g, 0.0)
        g[~active] = 0.0
        g[:, ~active] = 0.0
    adj = adj.reshape(n_arms, n_ep)
    return np.where(np.isfinite(p), adj, np.nan)


def _strategy_kinds(spec: TrialSpec) -> list[str]:
    try:
        return [s.kind for s in spec.strategies()]
    except Exception:  # pragma: no cover - a validated spec parses
        return [a.strategy.split("+")[0].strip() for a in spec.arms]


def _no_tmem_change(spec: TrialSpec, kinds: list[str], a: int) -> str | None:
    """Why the TMEM change of arm ``a`` is not applicable (None if it is)."""
    if kinds[a] != "nact":
        return f"no chemotherapy before surgery in arm {spec.arms[a].name!r}: TMEM at surgery is the baseline"
    return None


def _compare(ep: str, spec: TrialSpec, cols: dict, treated: np.ndarray) -> dict:
    """The pre-specified test of endpoint ``ep``, experimental (``treated``) vs control, on the columns given:
    ``p``, ``favourable`` (the estimate favours the experimental arm) and, where it does not apply, the reason."""
    x = np.asarray(treated, bool)
    if ep in TIME_TO_EVENT:
        t, e = cols[f"{ep}_time_days"], cols[f"{ep}_event"]
        how = spec.analysis.primary_analysis
        if how == "logrank":
            res = logrank(t, e, x)
            return {
                "p": res["p"],
                "favourable": None if res["p"] is None else bool(res["observed_minus_expected"] < 0),
                **({"not_applicable": res["not_applicable"]} if "not_applicable" in res else {}),
            }
        if how == "cox":
            res = cox_hazard_ratio(t, e, x.astype(int), spec.analysis.alpha)
            if res["hazard_ratio"] is None:
                return {"p": None, "favourable": None, "not_applicable": "no events in an arm"}
            return {"p": res["cox_p"], "favourable": bool(res["hazard_ratio"] < 1)}
        res = rmst_comparison(t, e, x, spec.rmst_days, spec.analysis.alpha)
        if res["rmst_difference_p"] is None:
            return {"p": None, "favourable": None, "not_applicable": res["not_applicable"]}
        return {"p": res["rmst_difference_p"], "favourable": bool(res["rmst_difference_days"] > 0)}
    if ep == "pcr":
        v = cols["pcr"]
        v1, v0 = v[x], v[~x]
        if np.isnan(v1).all() or np.isnan(v0).all():
            return {"p": None, "favourable": None, "not_applicable": "no pCR without neoadjuvant therapy"}
        v1, v0 = v1[np.isfinite(v1)], v0[np.isfinite(v0)]
        res = _two_proportions(int(v1.sum()), v1.size, int(v0.sum()), v0.size, spec.analysis.alpha)
        return {"p": res["p"], "favourable": bool(res["difference"] > 0)}
    v = cols["tmem_log_ratio"]
    v1, v0 = v[x], v[~x]
    v1, v0 = v1[np.isfinite(v1)], v0[np.isfinite(v0)]
    if v1.size < 2 or v0.size < 2:
        return {"p": None, "favourable": None, "not_applicable": "fewer than 2 patients in an arm"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = _num(stats.ttest_ind(v1, v0, equal_var=False).pvalue)
    if p is None:
        return {"p": None, "favourable": None, "not_applicable": "no variation"}
    return {"p": p, "favourable": bool(v1.mean() < v0.mean())}


def _columns(ep: str) -> list[str]:
    if ep in TIME_TO_EVENT:
        return [f"{ep}_time_days", f"{ep}_event"]
    return ["pcr" if ep == "pcr" else "tmem_log_ratio"]


def _arrays(df: pd.DataFrame, ep: str) -> dict:
    return {c: df[c].to_numpy(bool if c.endswith("_event") else float) for c in _columns(ep)}


_MEMO: dict = {}


def multiplicity(df: pd.DataFrame, spec: TrialSpec) -> dict:
    """The pre-specified test of every included endpoint for every experimental arm, with adjusted p-values.

    For each endpoint and arm: ``p``, the unadjusted two-sided p-value of the pre-specified test (time-to-event:
    ``analysis.primary_analysis``, log-rank by default; pCR: chi-square or Fisher's exact; TMEM change: Welch);
    ``p_adjusted_arms``, adjusted across the arms alone (``analysis.multiplicity``: Holm or Bonferroni);
    ``p_adjusted``, adjusted across arms and the hierarchy of endpoints (:func:`gatekeeping_p`; None for an
    endpoint outside the hierarchy: exploratory); ``significant`` (``p_adjusted`` ≤ alpha); ``favourable``.
    A comparison that does not apply (pCR or TMEM change of an arm without chemotherapy before surgery) has
    None and ``not_applicable``. The result for a table and spec is kept while the table lives (the endpoint
    analyses each read it).

    Parameters
    ----------
    df : pandas.DataFrame
        The patient-level table (``arm`` and the endpoints' columns; see :func:`survival_endpoint`).
    spec : TrialSpec
        The trial (arms, endpoints, ``analysis``).

    Returns
    -------
    dict
        ``alpha``, ``across_arms``, ``hierarchy``, ``procedure`` (in words) and ``tests``: endpoint -> one dict
        per experimental arm.

    Examples
    --------
    >>> spec = TrialSpec(name="demo", patients_per_arm=400,
    ...                  arms=[{"name": "control", "strategy": "nact"}, {"name": "A", "strategy": "nact+rebastinib"},
    ...                        {"name": "B", "strategy": "nact+plerixafor"}],
    ...                  endpoints={"primary": "dmfs", "include": ["dmfs", "pcr"]})
    >>> rng = np.random.default_rng(7)
    >>> arm = np.repeat([0, 1, 2], 400)
    >>> t = rng.exponential(np.where(arm == 1, 2000.0, 1000.0))  # arm A halves the hazard
    >>> df = pd.DataFrame({"arm": arm, "dmfs_time_days": np.minimum(t, 1500.0), "dmfs_event": t <= 1500.0,
    ...                    "pcr": (rng.random(arm.size) < 0.2).astype(float)})
    >>> res = multiplicity(df, spec)
    >>> res["hierarchy"], res["across_arms"]
    (['dmfs', 'pcr'], 'holm')
    >>> [c["significant"] for c in res["tests"]["dmfs"]]  # A (HR 0.5) yes, B (no effect) no
    [True, False]
    >>> all(c["p_adjusted"] >= c["p_adjusted_arms"] >= c["p"] for c in res["tests"]["dmfs"])
    True
    """
    key = (id(df), spec.spec_hash())
    hit = _MEMO.get(key)
    if hit is not None and hit[0]() is df:
        return hit[1]
    arm = df["arm"].to_numpy()
    kinds = _strategy_kinds(spec)
    alpha, how = spec.analysis.alpha, spec.analysis.multiplicity
    tests: dict[str, list[dict]] = {}
    for ep in spec.endpoints.include:
        rows = []
        missing = [c for c in _columns(ep) if c not in df.columns]
        for a in range(1, spec.n_arms):
            m = np.isin(arm, [0, a])
            reason = f"columns {missing} are not in the table" if missing else None
            if ep == "tmem_change":
                reason = reason or _no_tmem_change(spec, kinds, 0) or _no_tmem_change(spec, kinds, a)
            if reason is not None:
                res = {"p": None, "favourable": None, "not_applicable": reason}
            else:
                res = _compare(ep, spec, _arrays(df[m], ep), arm[m] == a)
            rows.append({"arm": spec.arms[a].name, "versus": spec.arms[0].name, **res})
        adj = adjust_p([r["p"] for r in rows], how)
        for r, q in zip(rows, adj, strict=True):
            r["p_adjusted_arms"] = q
            r["p_adjusted"] = None
            r["significant"] = None
        tests[ep] = rows
    hierarchy = list(spec.hierarchy)
    p = np.array(
        [
            [np.nan if tests[ep][i]["p"] is None else tests[ep][i]["p"] for ep in hierarchy]
            for i in range(spec.n_arms - 1)
        ],
        float,
    )
    gk = gatekeeping_p(p, how)
    for k, ep in enumerate(hierarchy):
        for i, r in enumerate(tests[ep]):
            q = _num(gk[i, k])
            r["p_adjusted"] = q
            r["significant"] = None if q is None else bool(q <= alpha)
    result = {
        "alpha": alpha,
        "across_arms": how,
        "hierarchy": hierarchy,
        "procedure": (
            f"{'Holm' if how == 'holm' else 'Bonferroni'} across the {spec.n_arms - 1} experimental arm(s); "
            f"endpoints tested in the fixed sequence {' > '.join(hierarchy)} within each arm (graphical "
            "gatekeeping, Bretz et al. 2009); family-wise error rate <= alpha over arms and endpoints"
        ),
        "tests": tests,
    }
    _MEMO.clear()  # one table at a time: the entry is dropped with it
    _MEMO[key] = (weakref.ref(df, lambda _, k=key: _MEMO.pop(k, None)), result)
    return result


def _role(ep: str, spec: TrialSpec) -> dict:
    """Role of an endpoint in the design: primary, secondary (in the hierarchy) or exploratory."""
    h = list(spec.hierarchy)
    role = "primary" if ep == spec.endpoints.primary else "secondary" if ep in h else "exploratory"
    test = TEST_NAMES[spec.analysis.primary_analysis] if ep in TIME_TO_EVENT else TEST_NAMES[ep]
    if ep in TIME_TO_EVENT and spec.analysis.primary_analysis == "rmst":
        test = f"RMST difference to {spec.rmst_days:g} days (z test)"
    return {
        "role": role,
        "hierarchy_position": h.index(ep) + 1 if ep in h else None,
        "prespecified_test": test,
    }


def _with_tests(comparisons: list[dict], df: pd.DataFrame, ep: str, spec: TrialSpec) -> list[dict]:
    tests = multiplicity(df, spec)["tests"][ep]
    keys = ("p", "favourable", "p_adjusted_arms", "p_adjusted", "significant")
    out = []
    for c, t in zip(comparisons, tests, strict=True):
        row = {**c, **{k: t[k] for k in keys}}
        if "not_applicable" in t and "not_applicable" not in row:
            row["not_applicable"] = t["not_applicable"]
        out.append(row)
    return out


# --------------------------------------------------------------------------------------------------- endpoints
def survival_endpoint(df: pd.DataFrame, endpoint: str, spec: TrialSpec) -> dict:
    """Per-arm KM summaries and, for each experimental arm: log-rank, Cox HR with a proportional-hazards test and
    hazard ratios by year, RMST difference and ratio, milestone differences at the landmarks, and the
    pre-specified test's p-value, unadjusted and adjusted (:func:`multiplicity`)."""
    alpha, tau = spec.analysis.alpha, spec.rmst_days
    landmarks = [y * DAYS_PER_YEAR for y in spec.analysis.landmarks_years if y * DAYS_PER_YEAR <= spec.horizon_days]
    arms, curves = {}, {}
    for a, arm in enumerate(spec.arms):
        t, e = time_event(df[df["arm"] == a], endpoint)
        kmf = kaplan_meier(t, e, alpha)
        arms[arm.name] = km_summary(kmf, landmarks, tau)
        curves[a] = km_curve(kmf)
        del kmf  # the fitter holds O(n) tables; keep only the thinned curve
    comparisons = []
    for a in range(1, spec.n_arms):
        sub = df[df["arm"].isin([0, a])]
        t, e = time_event(sub, endpoint)
        treated = (sub["arm"] == a).to_numpy(int)
        lr = logrank(t, e, treated)
        rm = rmst_comparison(t, e, treated, tau, alpha)
        rm.pop("not_applicable", None)
        ph = proportional_hazards_test(t, e, treated)
        ph["rejected"] = None if ph["p"] is None else bool(ph["p"] < alpha)
        comparisons.append(
            {
                "arm": spec.arms[a].name,
                "versus": spec.arms[0].name,
                **cox_hazard_ratio(t, e, treated, alpha),
                "logrank_statistic": lr["statistic"],
                "logrank_p": lr["p"],
                "observed_minus_expected": lr["observed_minus_expected"],
                **{k: v for k, v in rm.items() if k.startswith("rmst_difference") or k.startswith("rmst_ratio")},
                "milestones": {
                    f"{d / DAYS_PER_YEAR:g}y": milestone_difference(t, e, treated, d, alpha) for d in landmarks
                },
                "proportional_hazards": ph,
                "hazard_ratio_by_year": hazard_ratio_by_interval(t, e, treated, alpha),
            }
        )
    return {
        "kind": "time-to-event",
        "unit": "days",
        "rmst_tau_days": tau,
        **_role(endpoint, spec),
        "arms": arms,
        "comparisons": _with_tests(comparisons, df, endpoint, spec),
        "_curves": curves,
    }


def _two_proportions(x1: int, n1: int, x0: int, n0: int, alpha: float) -> dict:
    p1, p0 = x1 / n1, x0 / n0
    z = float(stats.norm.ppf(1 - alpha / 2))
    se = math.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
    table = np.array([[x1, n1 - x1], [x0, n0 - x0]])
    if table.sum(axis=0).min() == 0:
        p = 1.0
    else:
        expected = np.outer(table.sum(1), table.sum(0)) / table.sum()
        p = (
            float(stats.fisher_exact(table)[1])
            if expected.min() < 5
            else float(stats.chi2_contingency(table, correction=False)[1])
        )
    return {"difference": p1 - p0, "lower": p1 - p0 - z * se, "upper": p1 - p0 + z * se, "p": p}


def pcr_endpoint(df: pd.DataFrame, spec: TrialSpec) -> dict:
    """pCR rate per arm and the difference (experimental − control) with a Wald CI; chi-square p-value
    (Fisher's exact test when an expected count is below 5). Arms without neoadjuvant therapy have no pCR: their
    rate and every comparison with them are None, with the reason in ``not_applicable``."""
    arms = {}
    counts = {}
    reason = "no pCR without neoadjuvant therapy"
    for a, arm in enumerate(spec.arms):
        x = df.loc[df["arm"] == a, "pcr"].to_numpy(float)
        if np.isnan(x).all():
            arms[arm.name] = {"n": int(x.size), "pcr": None, "rate": None, "not_applicable": reason}
            continue
        counts[a] = (int(np.nansum(x)), int(np.isfinite(x).sum()))
        arms[arm.name] = {"n": counts[a][1], "pcr": counts[a][0], "rate": counts[a][0] / counts[a][1]}
    comparisons = []
    for a in range(1, spec.n_arms):
        if a in counts and 0 in counts:
            res = _two_proportions(*counts[a], *counts[0], spec.analysis.alpha)
        else:
            res = {"difference": None, "lower": None, "upper": None, "p": None, "not_applicable": reason}
        comparisons.append({"arm": spec.arms[a].name, "versus": spec.arms[0].name, **res})
    return {
        "kind": "binary",
        "unit": "proportion",
        **_role("pcr", spec),
        "arms": arms,
        "comparisons": _with_tests(comparisons, df, "pcr", spec),
    }


def tmem_endpoint(df: pd.DataFrame, spec: TrialSpec) -> dict:
    """TMEM change: mean log(TMEM at surgery / baseline) per arm; difference (experimental − control) with a
    Welch CI and t-test p-value; ``ratio`` = exp(difference), the ratio of geometric-mean changes. An arm without
    chemotherapy before surgery has no TMEM change to compare (its TMEM at surgery is the baseline): its values
    and every comparison with it are None, with the reason in ``not_applicable``."""
    kinds = _strategy_kinds(spec)
    arms, values = {}, {}
    for a, arm in enumerate(spec.arms):
        x = df.loc[df["arm"] == a, "tmem_log_ratio"].to_numpy(float)
        x = x[np.isfinite(x)]
        values[a] = x
        reason = _no_tmem_change(spec, kinds, a)
        if reason is not None:
            arms[arm.name] = {"n": int(x.size), "mean_log_ratio": None, "geometric_mean_ratio": None}
            arms[arm.name]["not_applicable"] = reason
            continue
        arms[arm.name] = {
            "n": int(x.size),
            "mean_log_ratio": _num(x.mean()) if x.size else None,
            "geometric_mean_ratio": _num(np.exp(x.mean())) if x.size else None,
        }
    comparisons = []
    for a in range(1, spec.n_arms):
        x1, x0 = values[a], values[0]
        res = {"difference": None, "lower": None, "upper": None, "ratio": None, "p": None}
        reason = _no_tmem_change(spec, kinds, 0) or _no_tmem_change(spec, kinds, a)
        if reason is not None:
            res["not_applicable"] = reason
        elif x1.size >= 2 and x0.size >= 2:
            t = stats.ttest_ind(x1, x0, equal_var=False)
            ci = t.confidence_interval(1 - spec.analysis.alpha)
            d = float(x1.mean() - x0.mean())
            res = {
                "difference": d,
                "lower": _num(ci.low),
                "upper": _num(ci.high),
                "ratio": math.exp(d),
                "p": _num(t.pvalue),
            }
        else:
            res["not_applicable"] = "fewer than 2 patients in an arm"
        comparisons.append({"arm": spec.arms[a].name, "versus": spec.arms[0].name, **res})
    return {
        "kind": "continuous",
        "unit": "log ratio",
        **_role("tmem_change", spec),
        "arms": arms,
        "comparisons": _with_tests(comparisons, df, "tmem_change", spec),
    }


def subgroup_levels(df: pd.DataFrame, name: str) -> list[tuple[str, np.ndarray]]:
    """(label, mask) of each level of a subgroup variable."""
    if name == "subtype":
        return [(s, (df["subtype"] == s).to_numpy()) for s in ("HR+/HER2-", "HR+/HER2+", "HR-/HER2+", "TNBC")]
    if name == "tmem_high":
        m = df["tmem_high"].to_numpy(bool)
        return [("TMEM-high", m), ("TMEM-low", ~m)]
    if name == "ctc_positive":
        m = df["ctc_positive"].to_numpy(bool)
        return [("CTC >= 1", m), ("CTC 0", ~m)]
    if name == "grade":
        return [(f"grade {g}", (df["grade"] == g).to_numpy()) for g in (1, 2, 3)]
    if name == "size":
        d = df["diameter_mm"].to_numpy(float)
        return [("<= 20 mm", d <= 20), ("20-50 mm", (d > 20) & (d <= 50)), ("> 50 mm", d > 50)]
    if name == "age":
        a = df["age"].to_numpy(float)
        return [("age < 50", a < 50), ("age >= 50", a >= 50)]
    if name == "morphology":
        m = df["alveolar_or_trabecular"].to_numpy(bool)
        return [("alveolar/trabecular", m), ("other structures", ~m)]
    raise ValueError(name)


def subgroups(df: pd.DataFrame, endpoint: str, spec: TrialSpec) -> list[dict]:
    """Cox hazard ratios (experimental vs control) within each subgroup level, for the forest plot, and per
    subgroup variable the treatment × subgroup interaction test (:func:`interaction_test`; the same
    ``interaction_*`` values on every level of the variable, None on the ``all`` row). Exploratory: the
    per-level p-values (``cox_p``) are not adjusted and are not evidence that the effect differs between
    levels; the interaction p-value is the test of that."""
    rows = [{"subgroup": "all", "level": "all patients", "mask": np.ones(len(df), bool)}]
    levels = {name: subgroup_levels(df, name) for name in spec.analysis.subgroups}
    for name, lv in levels.items():
        rows += [{"subgroup": name, "level": lab, "mask": m} for lab, m in lv]
    out = []
    arm = df["arm"].to_numpy()
    t_all, e_all = time_event(df, endpoint)
    for a in range(1, spec.n_arms):
        pair = np.isin(arm, [0, a])
        inter = {"all": {"interaction_statistic": None, "interaction_df": None, "interaction_p": None}}
        for name, lv in levels.items():
            res = interaction_test(t_all[pair], e_all[pair], arm[pair] == a, [(lab, m[pair]) for lab, m in lv])
            inter[name] = {k: res[k] for k in ("interaction_statistic", "interaction_df", "interaction_p")}
        for r in rows:
            m = r["mask"] & pair
            t, e, treated = t_all[m], e_all[m], (arm[m] == a).astype(int)
            res = {"hazard_ratio": None, "ci_lower": None, "ci_upper": None, "cox_p": None}
            if m.sum() >= MIN_SUBGROUP_PATIENTS and 0 < treated.sum() < treated.size:
                res = cox_hazard_ratio(t, e, treated, spec.analysis.alpha)
            out.append(
                {
                    "endpoint": endpoint,
                    "arm": spec.arms[a].name,
                    "versus": spec.arms[0].name,
                    "subgroup": r["subgroup"],
                    "level": r["level"],
                    "n": int(m.sum()),
                    "events": int(e.sum()),
                    **res,
                    **inter[r["subgroup"]],
                }
            )
    return out


# ------------------------------------------------------------------------------------------------------- power
def power_analysis(df: pd.DataFrame, spec: TrialSpec, max_trials: int = 1000) -> dict:
    """Power of the primary endpoint's pre-specified test at each size in ``spec.power.patients_per_arm``.

    ``df`` holds every replicate (columns replicate, arm, rank and the primary endpoint's columns). Each
    replicate holds ``m`` patients per arm; at size ``n`` it yields ``m // n`` independent trials (disjoint
    rank blocks), so smaller sizes get more trials (at most ``max_trials``). Two definitions, both reported:
    ``power_favourable``, the share of trials whose two-sided test has p < alpha with the effect favouring the
    experimental arm (fewer events, longer RMST, more pCR, lower TMEM change; under no effect about alpha / 2),
    and ``power_two_sided``, p < alpha in either direction. ``power`` (with ``power_lower``/``power_upper``) is
    the one ``spec.power.definition`` names, also given as ``definition``. With more than one experimental arm,
    ``power_adjusted`` is the same share with the p-values adjusted across the arms (``analysis.multiplicity``).
    95% Wilson intervals.
    """
    ep, alpha = spec.endpoints.primary, spec.analysis.alpha
    sizes = list(spec.power.patients_per_arm) or [spec.patients_per_arm]
    m = spec.patients_per_replicate_arm
    reps = sorted(df["replicate"].unique())
    shown = spec.power.definition
    n_exp = spec.n_arms - 1
    result = {
        "endpoint": ep,
        "test": _role(ep, spec)["prespecified_test"],
        "alpha": alpha,
        "definition": shown,
        "replicates": len(reps),
        "patients_per_arm": sizes,
        "trials": [],
        "arms": {},
    }
    kinds = _strategy_kinds(spec)
    reasons = [None] * spec.n_arms
    if ep == "tmem_change":
        reasons = [_no_tmem_change(spec, kinds, 0) or _no_tmem_change(spec, kinds, a) for a in range(spec.n_arms)]
    groups = {}
    for r, g in df.groupby("replicate", sort=True):
        g = g.sort_values("rank", kind="stable")
        groups[r] = (g["arm"].to_numpy(), g["rank"].to_numpy(), _arrays(g, ep))
    keys = ("favourable", "two_sided", "adjusted_favourable", "adjusted_two_sided")
    counts = {k: np.zeros((len(sizes), n_exp)) for k in keys}
    for i, n in enumerate(sizes):
        per_rep = max(1, min(m // n, -(-max_trials // len(reps))))
        trials = 0
        for r in reps:
            arm, rank, cols = groups[r]
            edges = np.searchsorted(rank, np.arange(per_rep + 1) * n, side="left")
            for b in range(per_rep):
                lo, hi = edges[b], edges[b + 1]
                a_blk = arm[lo:hi]
                p, fav = [], []
                for a in range(1, spec.n_arms):
                    if reasons[a] is not None:
                        p.append(None)
                        fav.append(False)
                        continue
                    sel = (a_blk == 0) | (a_blk == a)
                    res = _compare(ep, spec, {k: v[lo:hi][sel] for k, v in cols.items()}, a_blk[sel] == a)
                    p.append(res["p"])
                    fav.append(bool(res["favourable"]))
                sig = np.array([q is not None and q < alpha for q in p])
                adj = np.array([q is not None and q <= alpha for q in adjust_p(p, spec.analysis.multiplicity)])
                counts["two_sided"][i] += sig
                counts["favourable"][i] += sig & np.array(fav)
                counts["adjusted_two_sided"][i] += adj
                counts["adjusted_favourable"][i] += adj & np.array(fav)
                trials += 1
        result["trials"].append(trials)
    tr = np.asarray(result["trials"], float)
    for j, a in enumerate(range(1, spec.n_arms)):
        if reasons[a] is not None:
            result["arms"][spec.arms[a].name] = {"power": None, "not_applicable": reasons[a]}
            continue
        res = {}
        for label, k in (("power_favourable", "favourable"), ("power_two_sided", "two_sided")):
            lo, hi = _wilson(counts[k][:, j], tr)
            res[label] = (counts[k][:, j] / tr).tolist()
            res[f"{label}_lower"], res[f"{label}_upper"] = lo.tolist(), hi.tolist()
        key = "power_favourable" if shown == "favourable" else "power_two_sided"
        res = {"power": res[key], "power_lower": res[f"{key}_lower"], "power_upper": res[f"{key}_upper"], **res}
        if n_exp > 1:
            k = "adjusted_favourable" if shown == "favourable" else "adjusted_two_sided"
            lo, hi = _wilson(counts[k][:, j], tr)
            res["power_adjusted"] = (counts[k][:, j] / tr).tolist()
            res["power_adjusted_lower"], res["power_adjusted_upper"] = lo.tolist(), hi.tolist()
        result["arms"][spec.arms[a].name] = res
    return result


def _wilson(k: np.ndarray, n, z: float = 1.959963984540054) -> tuple[np.ndarray, np.ndarray]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)
