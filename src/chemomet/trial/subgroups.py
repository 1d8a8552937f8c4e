"""Subgroups: hazard ratios within the levels of each subgroup variable and the treatment × subgroup
interaction (heterogeneity) test; exploratory. Times are days. Part of :mod:`chemomet.trial.analysis`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from chemomet.trial.hazards import _loglik, _newton, _risk_sets, cox_hazard_ratio
from chemomet.trial.spec import TrialSpec
from chemomet.trial.survival import time_event

MIN_SUBGROUP_PATIENTS = 20


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


def subgroup_levels(df: pd.DataFrame, name: str) -> list[tuple[str, np.ndarray]]:
    """(label, mask) of each level of a subgroup variable.

    Parameters
    ----------
    df : pandas.DataFrame
        The patient table (the variable's columns: ``subtype``, ``tmem_high``, ``ctc_positive``, ``grade``,
        ``diameter_mm`` (mm), ``age`` (years) or ``alveolar_or_trabecular``).
    name : str
        A subgroup variable (:data:`chemomet.trial.spec.SUBGROUPS`).

    Returns
    -------
    list of (str, numpy.ndarray)
        Each level's label and boolean mask.

    Examples
    --------
    >>> df = pd.DataFrame({"age": [42.0, 67.0, 50.0]})  # years
    >>> [(label, m.tolist()) for label, m in subgroup_levels(df, "age")]
    [('age < 50', [True, False, False]), ('age >= 50', [False, True, True])]
    """
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
    levels; the interaction p-value is the test of that.

    Parameters
    ----------
    df : pandas.DataFrame
        The patient table (``arm``, the endpoint's columns and the subgroup variables' columns).
    endpoint : str
        The time-to-event endpoint (``dmfs``, ``drfi`` or ``os``).
    spec : TrialSpec
        The trial (arms, ``analysis.subgroups``, ``analysis.alpha``).

    Returns
    -------
    list of dict
        One row per arm and level: ``arm``, ``subgroup``, ``level``, ``n``, ``events``, ``hazard_ratio`` with
        its CI and ``cox_p``, and the ``interaction_*`` values of the level's variable.

    Examples
    --------
    >>> spec = TrialSpec(name="demo", patients_per_arm=500, analysis={"subgroups": ["age"]},
    ...                  arms=[{"name": "NACT", "strategy": "nact"}, {"name": "+ drug", "strategy": "nact+rebastinib"}])
    >>> rng = np.random.default_rng(2)
    >>> df = pd.DataFrame({"arm": np.repeat([0, 1], 500), "age": rng.uniform(30, 80, 1000)})  # years
    >>> t = rng.exponential(np.where(df["arm"] == 1, 1500.0, 1000.0))  # days
    >>> df["dmfs_time_days"], df["dmfs_event"] = np.minimum(t, 2000.0), t <= 2000.0
    >>> rows = subgroups(df, "dmfs", spec)
    >>> [r["level"] for r in rows], rows[1]["interaction_df"]
    (['all patients', 'age < 50', 'age >= 50'], 1)
    """
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
