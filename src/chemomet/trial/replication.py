"""Replications of published trials: the model's estimates beside the published ones, with intervals.

A spec that replicates a real trial carries its published results as ``[[published]]`` tables
(:class:`~chemomet.trial.spec.Published`): hazard ratios, survival or event probabilities at a number of years,
pCR rates, each with its 95% interval and source. :func:`compare_published` computes the model's counterpart of
each from the simulated trial (same arms, same endpoint, same size) with its 95% interval, and says whether the
intervals agree. :func:`chemomet.trial.runner.run_replications` runs several such specs and
:func:`markdown_table` writes the table that docs/trials.md shows (``examples/trials/replicate.py``). Times are
days unless a name says otherwise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from lifelines import KaplanMeierFitter

from chemomet.trial.hazards import cox_hazard_ratio
from chemomet.trial.spec import Published, TrialSpec
from chemomet.units import DAYS_PER_YEAR

Z95 = 1.959963984540054


def _wilson(k: int, n: int) -> tuple[float, float]:
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    den = 1 + Z95**2 / n
    mid = (p + Z95**2 / (2 * n)) / den
    half = Z95 * np.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / den
    return float(mid - half), float(mid + half)


def period_data(time_days, event, group, start_years: float, end_years: float):
    """Time-to-event data restricted to a period ``[start, end)`` since entry (years): those still at risk at
    ``start``, with time counted from it and events after ``end`` censored there (days; bool; group labels).

    Examples
    --------
    >>> t, e, g = period_data(np.array([100.0, 2000.0, 4000.0]), np.array([True, True, True]), np.array([0, 1, 1]),
    ...                       5, 10)
    >>> t.round(1).tolist(), e.tolist(), g.tolist()  # the first left before year 5, the third is censored at 10
    ([173.8, 1826.2], [True, False], [1, 1])
    """
    a, b = start_years * DAYS_PER_YEAR, end_years * DAYS_PER_YEAR
    keep = time_days > a
    t = np.minimum(time_days[keep], b) - a
    e = event[keep] & (time_days[keep] <= b)
    return t, e, group[keep]


def _model_estimate(df: pd.DataFrame, pub: Published, spec: TrialSpec) -> dict:
    """The model's value and 95% interval for one published result (or None with the reason)."""
    names = [a.name for a in spec.arms]
    if pub.measure == "hazard_ratio":
        a = names.index(pub.arm) if pub.arm is not None else 1
        sub = df[df["arm"].isin([0, a])]
        t, e = sub[f"{pub.endpoint}_time_days"].to_numpy(float), sub[f"{pub.endpoint}_event"].to_numpy(bool)
        treated = (sub["arm"] == a).to_numpy(int)
        if pub.period_years is not None:
            t, e, treated = period_data(t, e, treated, *pub.period_years)
        res = cox_hazard_ratio(t, e, treated)
        if res["hazard_ratio"] is None:
            return {"value": None, "lower": None, "upper": None, "not_applicable": "no events in an arm"}
        return {"value": res["hazard_ratio"], "lower": res["ci_lower"], "upper": res["ci_upper"]}
    sub = df[df["arm"] == names.index(pub.arm)]
    if pub.measure == "pcr_rate":
        v = sub["pcr"].to_numpy(float)
        v = v[np.isfinite(v)]
        if v.size == 0:
            return {"value": None, "lower": None, "upper": None, "not_applicable": "no pCR in this arm (no NACT)"}
        lo, hi = _wilson(int(v.sum()), v.size)
        return {"value": float(v.mean()), "lower": lo, "upper": hi}
    t, e = sub[f"{pub.endpoint}_time_days"].to_numpy(float), sub[f"{pub.endpoint}_event"].to_numpy(bool)
    day = pub.years * DAYS_PER_YEAR
    if t.size == 0 or day > t.max():
        return {"value": None, "lower": None, "upper": None, "not_applicable": "beyond the arm's follow-up"}
    kmf = KaplanMeierFitter().fit(t, e)
    s = float(kmf.survival_function_at_times(day).iloc[0])
    ci = kmf.confidence_interval_survival_function_.loc[:day].iloc[-1]
    lo, hi = float(ci.iloc[0]), float(ci.iloc[1])
    if pub.measure == "survival":
        return {"value": s, "lower": lo, "upper": hi}
    return {"value": 1 - s, "lower": 1 - hi, "upper": 1 - lo}


def compare_published(df: pd.DataFrame, spec: TrialSpec) -> list[dict]:
    """The model's estimate of each published result of the spec, side by side with it.

    Parameters
    ----------
    df : pandas.DataFrame
        The trial's patient-level table (``arm``, ``<endpoint>_time_days``, ``<endpoint>_event``, ``pcr``).
    spec : TrialSpec
        The trial, with its ``published`` results.

    Returns
    -------
    list of dict
        One row per published result: ``label``, ``endpoint``, ``measure``, ``arm``, ``years``, ``published``
        and ``model`` (each ``{"value", "lower", "upper"}``: hazard ratios, or probabilities as fractions; the
        model's interval is the 95% CI of the simulated trial, Cox or Greenwood or Wilson), ``model_in_published_ci``,
        ``published_in_model_ci`` and ``intervals_overlap`` (None where an interval is missing), ``source`` and
        ``note``.

    Examples
    --------
    >>> spec = TrialSpec(name="demo", patients_per_arm=400,
    ...                  arms=[{"name": "adjuvant", "strategy": "surgery-first"}, {"name": "NACT", "strategy": "nact"}],
    ...                  published=[{"label": "DR rate ratio", "endpoint": "drfi", "measure": "hazard_ratio",
    ...                              "arm": "NACT", "value": 1.02, "lower": 0.92, "upper": 1.14,
    ...                              "source": "EBCTCG 2018"}])
    >>> rng = np.random.default_rng(1)
    >>> t = rng.exponential(3000.0, 800)
    >>> df = pd.DataFrame({"arm": np.repeat([0, 1], 400), "drfi_time_days": np.minimum(t, 3000.0),
    ...                    "drfi_event": t <= 3000.0})
    >>> row = compare_published(df, spec)[0]
    >>> row["published"]["value"], row["model"]["lower"] < 1.0 < row["model"]["upper"], row["intervals_overlap"]
    (1.02, True, True)
    """
    rows = []
    for pub in spec.published:
        model = _model_estimate(df, pub, spec)
        published = {"value": pub.value, "lower": pub.lower, "upper": pub.upper}
        v, lo, hi = model["value"], model["lower"], model["upper"]
        has_pub_ci = pub.lower is not None and pub.upper is not None
        rows.append(
            {
                "label": pub.label,
                "endpoint": pub.endpoint,
                "measure": pub.measure,
                "arm": pub.arm if pub.arm is not None else spec.arms[1].name,
                "versus": spec.arms[0].name if pub.measure == "hazard_ratio" else None,
                "years": pub.years,
                "published": published,
                "model": model,
                "model_in_published_ci": None if v is None or not has_pub_ci else bool(pub.lower <= v <= pub.upper),
                "published_in_model_ci": None if v is None else bool(lo <= pub.value <= hi),
                "intervals_overlap": None
                if v is None or not has_pub_ci
                else bool(max(lo, pub.lower) <= min(hi, pub.upper)),
                "source": pub.source,
                "note": pub.note,
            }
        )
    return rows


def _fmt(x: float | None, measure: str) -> str:
    if x is None:
        return "–"
    return f"{x:.2f}" if measure == "hazard_ratio" else f"{100 * x:.1f}%"


def _interval(d: dict, measure: str) -> str:
    if d.get("value") is None:
        return "not applicable" + (f" ({d['not_applicable']})" if d.get("not_applicable") else "")
    s = _fmt(d["value"], measure)
    if d.get("lower") is not None and d.get("upper") is not None:
        s += f" ({_fmt(d['lower'], measure)}–{_fmt(d['upper'], measure)})"
    return s


def _what(row: dict) -> str:
    if row["measure"] == "hazard_ratio":
        return f"{row['label']}, {row['arm']} vs {row['versus']}"
    return f"{row['label']}, {row['arm']}"


def markdown_table(results: list[tuple[str, list[dict]]]) -> str:
    """The replication table (Markdown): one row per published result of each trial.

    Parameters
    ----------
    results : list of (str, list of dict)
        Trial name and its :func:`compare_published` rows.

    Returns
    -------
    str
        A Markdown table: trial, what, model endpoint, published (95% CI), model (95% CI), agreement, source.

    Examples
    --------
    >>> row = {"label": "pCR", "endpoint": "pcr", "measure": "pcr_rate", "arm": "NACT", "versus": None,
    ...        "years": None, "published": {"value": 0.13, "lower": None, "upper": None},
    ...        "model": {"value": 0.2, "lower": 0.17, "upper": 0.23}, "model_in_published_ci": None,
    ...        "published_in_model_ci": False, "intervals_overlap": None, "source": "Rastogi 2008", "note": None}
    >>> print(markdown_table([("B-18", [row])]).splitlines()[2])
    | B-18 | pCR, NACT | pcr | 13.0% | 20.0% (17.0%–23.0%) | outside the model's CI | Rastogi 2008 |
    """
    lines = [
        "| trial | published result | model endpoint | published (95% CI) | model (95% CI) | agreement | source |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, rows in results:
        for r in rows:
            m = r["measure"]
            what = _what(r) + (f" at {r['years']:g} years" if r["years"] is not None else "")
            if r["model"]["value"] is None:
                verdict = "not applicable"
            elif r["intervals_overlap"] is not None:
                inside = "model inside the published CI" if r["model_in_published_ci"] else "model outside it"
                verdict = f"intervals overlap; {inside}" if r["intervals_overlap"] else "intervals do not overlap"
            else:
                verdict = "inside the model's CI" if r["published_in_model_ci"] else "outside the model's CI"
            lines.append(
                f"| {name} | {what} | {r['endpoint']} | {_interval(r['published'], m)} | {_interval(r['model'], m)} "
                f"| {verdict} | {r['source']} |"
            )
    return "\n".join(lines)
