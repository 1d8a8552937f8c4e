"""Statistics of a trial's patient-level table, with lifelines: Kaplan–Meier, log-rank, Cox hazard ratio,
RMST; pCR (two proportions) and TMEM change (log ratio, Welch t test); subgroups; power over replicates.

Arm 0 is the control; each other arm is compared with it. Times are days; hazard ratios are experimental vs
control (< 1: fewer events on the experimental arm).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.statistics import logrank_test
from lifelines.utils import restricted_mean_survival_time
from scipy import stats

from chemomet.trial.spec import TIME_TO_EVENT, TrialSpec
from chemomet.units import DAYS_PER_YEAR

MIN_SUBGROUP_PATIENTS = 20


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
    z = stats.norm.ppf(1 - alpha / 2)
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
    t = np.asarray(time, float)
    x = np.asarray(treated, float)
    e = np.asarray(event, bool)
    order = np.argsort(t, kind="stable")
    ts, xs = t[order], x[order]
    first = np.searchsorted(ts, t[e], side="left")  # rows before the first patient still at risk
    at_risk = ts.size - first
    treated_before = np.concatenate([[0.0], np.cumsum(xs)])[first]
    n1 = x.sum() - treated_before
    n0 = at_risk - n1
    xe = x[e]
    beta = 0.0
    for _ in range(100):
        r = np.exp(beta)
        p = n1 * r / (n0 + n1 * r)
        info = np.sum(p * (1 - p))
        step = np.sum(xe - p) / info
        step = float(np.clip(step, -5.0, 5.0))
        beta += step
        if abs(step) < tol:
            break
    r = np.exp(beta)
    p = n1 * r / (n0 + n1 * r)
    return float(beta), float(1.0 / np.sqrt(np.sum(p * (1 - p))))


def observed_minus_expected(time: np.ndarray, event: np.ndarray, treated: np.ndarray) -> float:
    """Log-rank O − E of the treated group (< 0: fewer events than expected under no difference)."""
    order = np.argsort(time, kind="stable")
    e = np.asarray(event, float)[order]
    g = np.asarray(treated, float)[order]
    at_risk = np.arange(g.size, 0, -1, dtype=float)
    treated_at_risk = np.cumsum(g[::-1])[::-1]
    return float(np.sum(e * (g - treated_at_risk / at_risk)))


def survival_endpoint(df: pd.DataFrame, endpoint: str, spec: TrialSpec) -> dict:
    """Per-arm KM summaries and, for each experimental arm, log-rank, Cox HR and RMST difference."""
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
        lr = logrank_test(t[treated == 0], t[treated == 1], e[treated == 0], e[treated == 1])
        ctrl, exp = arms[spec.arms[0].name], arms[spec.arms[a].name]
        diff = exp["rmst_days"] - ctrl["rmst_days"]
        se = math.hypot(exp["rmst_se_days"], ctrl["rmst_se_days"])
        z = stats.norm.ppf(1 - alpha / 2)
        comparisons.append(
            {
                "arm": spec.arms[a].name,
                "versus": spec.arms[0].name,
                **cox_hazard_ratio(t, e, treated, alpha),
                "logrank_statistic": float(lr.test_statistic),
                "logrank_p": float(lr.p_value),
                "observed_minus_expected": observed_minus_expected(t, e, treated),
                "rmst_difference_days": diff,
                "rmst_difference_lower_days": diff - z * se,
                "rmst_difference_upper_days": diff + z * se,
            }
        )
    return {
        "kind": "time-to-event",
        "unit": "days",
        "rmst_tau_days": tau,
        "arms": arms,
        "comparisons": comparisons,
        "_curves": curves,
    }


def _two_proportions(x1: int, n1: int, x0: int, n0: int, alpha: float) -> dict:
    p1, p0 = x1 / n1, x0 / n0
    z = stats.norm.ppf(1 - alpha / 2)
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
    (Fisher's exact test when an expected count is below 5). Arms without neoadjuvant therapy have no pCR."""
    arms = {}
    counts = {}
    for a, arm in enumerate(spec.arms):
        x = df.loc[df["arm"] == a, "pcr"].to_numpy(float)
        if np.isnan(x).all():
            arms[arm.name] = {"n": int(x.size), "pcr": None, "rate": None}
            continue
        counts[a] = (int(np.nansum(x)), int(np.isfinite(x).sum()))
        arms[arm.name] = {"n": counts[a][1], "pcr": counts[a][0], "rate": counts[a][0] / counts[a][1]}
    comparisons = []
    for a in range(1, spec.n_arms):
        if a in counts and 0 in counts:
            res = _two_proportions(*counts[a], *counts[0], spec.analysis.alpha)
        else:
            res = {"difference": None, "lower": None, "upper": None, "p": None}
        comparisons.append({"arm": spec.arms[a].name, "versus": spec.arms[0].name, **res})
    return {"kind": "binary", "unit": "proportion", "arms": arms, "comparisons": comparisons}


def tmem_endpoint(df: pd.DataFrame, spec: TrialSpec) -> dict:
    """TMEM change: mean log(TMEM at surgery / baseline) per arm; difference (experimental − control) with a
    Welch CI and t-test p-value; ``ratio`` = exp(difference), the ratio of geometric-mean changes."""
    arms, values = {}, {}
    for a, arm in enumerate(spec.arms):
        x = df.loc[df["arm"] == a, "tmem_log_ratio"].to_numpy(float)
        x = x[np.isfinite(x)]
        values[a] = x
        arms[arm.name] = {
            "n": int(x.size),
            "mean_log_ratio": _num(x.mean()) if x.size else None,
            "geometric_mean_ratio": _num(np.exp(x.mean())) if x.size else None,
        }
    comparisons = []
    for a in range(1, spec.n_arms):
        x1, x0 = values[a], values[0]
        res = {"difference": None, "lower": None, "upper": None, "ratio": None, "p": None}
        if x1.size >= 2 and x0.size >= 2:
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
        comparisons.append({"arm": spec.arms[a].name, "versus": spec.arms[0].name, **res})
    return {"kind": "continuous", "unit": "log ratio", "arms": arms, "comparisons": comparisons}


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
    """Cox hazard ratios (experimental vs control) within each subgroup level, for the forest plot."""
    rows = [{"subgroup": "all", "level": "all patients", "mask": np.ones(len(df), bool)}]
    for name in spec.analysis.subgroups:
        rows += [{"subgroup": name, "level": lab, "mask": m} for lab, m in subgroup_levels(df, name)]
    out = []
    arm = df["arm"].to_numpy()
    t_all, e_all = time_event(df, endpoint)
    for a in range(1, spec.n_arms):
        for r in rows:
            m = r["mask"] & np.isin(arm, [0, a])
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
                }
            )
    return out


def power_analysis(df: pd.DataFrame, spec: TrialSpec, max_trials: int = 1000) -> dict:
    """Power of the primary endpoint's test at each size in ``spec.power.patients_per_arm``.

    ``df`` holds every replicate (columns replicate, arm, rank and the primary endpoint's columns). Each
    replicate holds ``m`` patients per arm; at size ``n`` it yields ``m // n`` independent trials (disjoint
    rank blocks), so smaller sizes get more trials (at most ``max_trials``). Power = share of trials whose
    two-sided test has p < alpha with the effect favouring the experimental arm (fewer events, more pCR,
    lower TMEM change); ``power_two_sided`` counts p < alpha in either direction. 95% Wilson intervals.
    """
    ep, alpha = spec.endpoints.primary, spec.analysis.alpha
    sizes = list(spec.power.patients_per_arm) or [spec.patients_per_arm]
    m = spec.patients_per_replicate_arm
    reps = sorted(df["replicate"].unique())
    result = {
        "endpoint": ep,
        "alpha": alpha,
        "replicates": len(reps),
        "patients_per_arm": sizes,
        "trials": [],
        "arms": {},
    }
    groups = {r: g for r, g in df.groupby("replicate", sort=True)}
    for a in range(1, spec.n_arms):
        res = {"power": [], "power_lower": [], "power_upper": [], "power_two_sided": []}
        for n in sizes:
            per_rep = max(1, min(m // n, -(-max_trials // len(reps))))
            win = sig = trials = 0
            for r in reps:
                g = groups[r]
                g = g[g["arm"].isin([0, a])]
                block = g["rank"].to_numpy() // n
                for b in range(per_rep):
                    p, favourable = _test(g[block == b], ep, a)
                    sig += p < alpha
                    win += (p < alpha) and favourable
                    trials += 1
            lo, hi = _wilson(np.array([win]), trials)
            res["power"].append(win / trials)
            res["power_lower"].append(float(lo[0]))
            res["power_upper"].append(float(hi[0]))
            res["power_two_sided"].append(sig / trials)
            if a == 1:
                result["trials"].append(trials)
        result["arms"][spec.arms[a].name] = res
    return result


def _test(s: pd.DataFrame, ep: str, a: int) -> tuple[float, bool]:
    treated = (s["arm"] == a).to_numpy()
    if ep in TIME_TO_EVENT:
        t, e = time_event(s, ep)
        if e.sum() == 0:
            return 1.0, False
        lr = logrank_test(t[~treated], t[treated], e[~treated], e[treated])
        return float(lr.p_value), observed_minus_expected(t, e, treated) < 0
    if ep == "pcr":
        x = s["pcr"].to_numpy(float)
        x1, x0 = x[treated], x[~treated]
        if np.isnan(x1).all() or np.isnan(x0).all():
            return 1.0, False
        res = _two_proportions(int(np.nansum(x1)), x1.size, int(np.nansum(x0)), x0.size, 0.05)
        return res["p"], res["difference"] > 0
    x = s["tmem_log_ratio"].to_numpy(float)
    x1, x0 = x[treated], x[~treated]
    x1, x0 = x1[np.isfinite(x1)], x0[np.isfinite(x0)]
    if x1.size < 2 or x0.size < 2:
        return 1.0, False
    t = stats.ttest_ind(x1, x0, equal_var=False)
    p = float(t.pvalue) if np.isfinite(t.pvalue) else 1.0
    return p, x1.mean() < x0.mean()


def _wilson(k: np.ndarray, n: int, z: float = 1.959963984540054) -> tuple[np.ndarray, np.ndarray]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)
