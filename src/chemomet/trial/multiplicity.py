"""The pre-specified test of each endpoint and multiplicity: Holm or Bonferroni across the experimental
arms, graphical gatekeeping over the hierarchy of endpoints; adjusted and unadjusted p side by side. Part of
:mod:`chemomet.trial.analysis`.
"""

from __future__ import annotations

import math
import warnings
import weakref

import numpy as np
import pandas as pd
from scipy import stats

from chemomet.trial.hazards import cox_hazard_ratio, logrank
from chemomet.trial.spec import TIME_TO_EVENT, TrialSpec
from chemomet.trial.survival import _num, rmst_comparison

TEST_NAMES = {
    "logrank": "log-rank",
    "cox": "Cox Wald",
    "rmst": "RMST difference (z test)",
    "pcr": "chi-square (Fisher's exact when an expected count < 5)",
    "tmem_change": "Welch t test",
}
"""The name of each pre-specified test, as the summary reports it."""


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
