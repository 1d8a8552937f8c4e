"""Each endpoint's analysis for the summary: time-to-event endpoints (KM, log-rank, Cox, PH test, HR by
year, RMST, milestones, competing-risk incidence), pCR (two proportions) and TMEM change (Welch); each with its
pre-specified test's p-values. Times are days. Part of :mod:`chemomet.trial.analysis`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from chemomet.trial.competing import drfi_cumulative_incidence
from chemomet.trial.hazards import cox_hazard_ratio, hazard_ratio_by_interval, logrank, proportional_hazards_test
from chemomet.trial.multiplicity import _no_tmem_change, _role, _strategy_kinds, _two_proportions, _with_tests
from chemomet.trial.spec import TrialSpec
from chemomet.trial.survival import (
    _num,
    kaplan_meier,
    km_curve,
    km_summary,
    milestone_difference,
    rmst_comparison,
    time_event,
)
from chemomet.units import DAYS_PER_YEAR


# --------------------------------------------------------------------------------------------------- endpoints
def survival_endpoint(df: pd.DataFrame, endpoint: str, spec: TrialSpec) -> dict:
    """Per-arm KM summaries and, for each experimental arm: log-rank, Cox HR with a proportional-hazards test and
    hazard ratios by year, RMST difference and ratio, milestone differences at the landmarks, and the
    pre-specified test's p-value, unadjusted and adjusted (:func:`multiplicity`). For DRFI each arm also has
    ``cumulative_incidence``: the Aalen–Johansen probability of distant metastasis by each landmark with death
    from other causes as a competing event (:func:`chemomet.trial.competing.drfi_cumulative_incidence`; needs the
    DMFS columns).

    Parameters
    ----------
    df : pandas.DataFrame
        The patient table (``arm``, ``<endpoint>_time_days`` in days, ``<endpoint>_event``; for DRFI also the
        DMFS columns).
    endpoint : str
        ``dmfs``, ``drfi`` or ``os``.
    spec : TrialSpec
        The trial (arms, landmarks in years, RMST horizon in days, alpha, the pre-specified analysis).

    Returns
    -------
    dict
        ``kind``, ``unit`` (days), ``rmst_tau_days``, the role in the design, ``arms`` (per-arm KM summaries),
        ``comparisons`` (one per experimental arm) and ``_curves`` (for the figure).

    Examples
    --------
    >>> spec = TrialSpec(name="demo", patients_per_arm=300, endpoints={"include": ["dmfs", "pcr", "tmem_change"]},
    ...                  arms=[{"name": "NACT", "strategy": "nact"}, {"name": "+ drug", "strategy": "nact+rebastinib"}])
    >>> rng = np.random.default_rng(3)
    >>> arm = np.repeat([0, 1], 300)
    >>> t = rng.exponential(np.where(arm == 1, 3000.0, 2000.0))  # days
    >>> df = pd.DataFrame({"arm": arm, "dmfs_time_days": np.minimum(t, 2500.0), "dmfs_event": t <= 2500.0,
    ...                    "pcr": (rng.random(600) < np.where(arm == 1, 0.3, 0.15)).astype(float),
    ...                    "tmem_log_ratio": rng.normal(np.where(arm == 1, 0.2, 0.7), 0.5)})
    >>> res = survival_endpoint(df, "dmfs", spec)
    >>> res["role"], sorted(res["arms"]), res["comparisons"][0]["hazard_ratio"] < 1
    ('primary', ['+ drug', 'NACT'], True)
    """
    alpha, tau = spec.analysis.alpha, spec.rmst_days
    landmarks = [y * DAYS_PER_YEAR for y in spec.analysis.landmarks_years if y * DAYS_PER_YEAR <= spec.horizon_days]
    arms, curves = {}, {}
    competing = endpoint == "drfi" and "dmfs_event" in df.columns
    for a, arm in enumerate(spec.arms):
        sub = df[df["arm"] == a]
        t, e = time_event(sub, endpoint)
        kmf = kaplan_meier(t, e, alpha)
        arms[arm.name] = km_summary(kmf, landmarks, tau)
        if competing:
            arms[arm.name]["cumulative_incidence"] = drfi_cumulative_incidence(
                t, sub["dmfs_event"].to_numpy(bool), e, landmarks
            )
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


def pcr_endpoint(df: pd.DataFrame, spec: TrialSpec) -> dict:
    """pCR rate per arm and the difference (experimental − control) with a Wald CI; chi-square p-value
    (Fisher's exact test when an expected count is below 5). Arms without neoadjuvant therapy have no pCR: their
    rate and every comparison with them are None, with the reason in ``not_applicable``.

    Parameters
    ----------
    df : pandas.DataFrame
        The patient table (``arm``, ``pcr``: 1, 0 or NaN where not applicable).
    spec : TrialSpec
        The trial (arms, alpha).

    Returns
    -------
    dict
        ``kind`` (binary), the role in the design, ``arms`` (``n``, ``pcr``, ``rate``) and ``comparisons``.

    Examples
    --------
    >>> spec = TrialSpec(name="demo", patients_per_arm=300, endpoints={"include": ["dmfs", "pcr", "tmem_change"]},
    ...                  arms=[{"name": "NACT", "strategy": "nact"}, {"name": "+ drug", "strategy": "nact+rebastinib"}])
    >>> rng = np.random.default_rng(3)
    >>> arm = np.repeat([0, 1], 300)
    >>> t = rng.exponential(np.where(arm == 1, 3000.0, 2000.0))  # days
    >>> df = pd.DataFrame({"arm": arm, "dmfs_time_days": np.minimum(t, 2500.0), "dmfs_event": t <= 2500.0,
    ...                    "pcr": (rng.random(600) < np.where(arm == 1, 0.3, 0.15)).astype(float),
    ...                    "tmem_log_ratio": rng.normal(np.where(arm == 1, 0.2, 0.7), 0.5)})
    >>> res = pcr_endpoint(df, spec)
    >>> res["kind"], res["comparisons"][0]["difference"] > 0
    ('binary', True)
    """
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
    and every comparison with it are None, with the reason in ``not_applicable``.

    Parameters
    ----------
    df : pandas.DataFrame
        The patient table (``arm``, ``tmem_log_ratio``: ln of TMEM at surgery / baseline, dimensionless).
    spec : TrialSpec
        The trial (arms, alpha).

    Returns
    -------
    dict
        ``kind`` (continuous), ``unit`` (log ratio), the role in the design, ``arms`` and ``comparisons``
        (``difference`` with CI and p, ``ratio`` of geometric means).

    Examples
    --------
    >>> spec = TrialSpec(name="demo", patients_per_arm=300, endpoints={"include": ["dmfs", "pcr", "tmem_change"]},
    ...                  arms=[{"name": "NACT", "strategy": "nact"}, {"name": "+ drug", "strategy": "nact+rebastinib"}])
    >>> rng = np.random.default_rng(3)
    >>> arm = np.repeat([0, 1], 300)
    >>> t = rng.exponential(np.where(arm == 1, 3000.0, 2000.0))  # days
    >>> df = pd.DataFrame({"arm": arm, "dmfs_time_days": np.minimum(t, 2500.0), "dmfs_event": t <= 2500.0,
    ...                    "pcr": (rng.random(600) < np.where(arm == 1, 0.3, 0.15)).astype(float),
    ...                    "tmem_log_ratio": rng.normal(np.where(arm == 1, 0.2, 0.7), 0.5)})
    >>> res = tmem_endpoint(df, spec)
    >>> res["unit"], round(res["comparisons"][0]["ratio"], 1)  # geometric-mean change, + drug / NACT
    ('log ratio', 0.6)
    """
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
