"""Survival metrics of out-of-fold predictions: Harrell's C, the IPCW Brier score, the calibration slope and the
calibration table (predicted vs Kaplan–Meier by group), used by :mod:`chemomet.calibrate.crossval`.

Survival statistics come from lifelines (``concordance_index``, ``KaplanMeierFitter``, ``CoxPHFitter``). Times
are days, horizons years, predictions event-free probabilities.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.utils import concordance_index

from chemomet.calibrate.validation import km_at
from chemomet.units import DAYS_PER_YEAR

NODE_GROUPS = (("0", 0, 0), ("1-3", 1, 3), ("4-9", 4, 9), ("10+", 10, 10**6))
"""Node groups of the calibration table: (label, fewest, most positive nodes)."""


def harrell_c(time_days, event, risk) -> float:
    """Harrell's C of a risk score (higher: earlier event), lifelines ``concordance_index``.

    Parameters
    ----------
    time_days : array_like
        Follow-up (days).
    event : array_like of bool
        Event observed.
    risk : array_like
        Predicted risk (any monotone score; ties count one half).

    Returns
    -------
    float
        Share of comparable pairs ordered correctly (0.5: no discrimination).

    Examples
    --------
    >>> harrell_c([1.0, 2.0, 3.0], [True, True, False], [0.9, 0.5, 0.1])
    1.0
    """
    return float(concordance_index(np.asarray(time_days, float), -np.asarray(risk, float), np.asarray(event, bool)))


def node_groups(counts) -> np.ndarray:
    """Node group label (:data:`NODE_GROUPS`: ``"0"``, ``"1-3"``, ``"4-9"``, ``"10+"``) of positive-node counts.

    Examples
    --------
    >>> node_groups([0, 2, 4, 9, 10, 30]).tolist()
    ['0', '1-3', '4-9', '4-9', '10+', '10+']
    """
    c = np.asarray(counts, float)
    out = np.empty(c.shape, dtype=object)
    for label, lo, hi in NODE_GROUPS:
        out[(c >= lo) & (c <= hi)] = label
    return out


def censoring_km(time, event) -> KaplanMeierFitter:
    """Kaplan–Meier of the censoring times (``event`` negated): the weights of the IPCW Brier score.

    Examples
    --------
    >>> km = censoring_km(np.array([100.0, 200.0, 300.0]), np.array([True, False, True]))
    >>> float(km.predict(250.0))
    0.5
    """
    return KaplanMeierFitter().fit(time, ~np.asarray(event, bool))


def brier_terms(time, event, survival, t_days, km_censoring) -> np.ndarray | None:
    """Per-patient IPCW Brier contributions at ``t_days`` (days; their mean is the Brier score), ``survival`` the
    predicted event-free probabilities, ``km_censoring`` :func:`censoring_km`; None when ``t_days`` is beyond the
    last follow-up (not estimable).

    Examples
    --------
    >>> t, e = np.array([100.0, 400.0, 500.0]), np.array([True, False, False])
    >>> brier_terms(t, e, np.array([0.2, 0.9, 0.9]), 300.0, censoring_km(t, e)).round(2).tolist()
    [0.04, 0.01, 0.01]
    """
    if t_days > time.max():
        return None
    g_t = float(km_censoring.predict(t_days))
    if not g_t > 0:
        return None
    case = (time <= t_days) & event
    control = time > t_days
    eps = 1e-7 * max(1.0, float(time.max()))
    g_before = np.asarray(km_censoring.predict(np.maximum(time[case] - eps, 0.0)), float)
    terms = np.zeros(time.size)
    terms[case] = survival[case] ** 2 / np.maximum(g_before, 1e-12)
    terms[control] = (1.0 - survival[control]) ** 2 / g_t
    return terms


def ipcw_brier(time_days, event, survival, years: float) -> float | None:
    """Brier score of predicted event-free probabilities at ``years``, with inverse probability of censoring
    weights (Graf 1999): ``mean_i [ S_i² 1(T_i ≤ t, δ_i) / G(T_i−) + (1 − S_i)² 1(T_i > t) / G(t) ]``, ``G`` the
    Kaplan–Meier estimate of the censoring distribution (lifelines) on the same patients.

    Parameters
    ----------
    time_days : array_like
        Follow-up (days).
    event : array_like of bool
        Event observed.
    survival : array_like
        Predicted probability of being free of the event at ``years``, one per patient.
    years : float
        Horizon (years from diagnosis).

    Returns
    -------
    float or None
        The Brier score (squared probability, 0 is perfect), None when not estimable (horizon beyond the last
        follow-up, or no censoring-free probability left).

    Examples
    --------
    Without censoring before the horizon it is the plain mean squared error:

    >>> t = np.array([400.0, 800.0, 3000.0, 4000.0])
    >>> round(ipcw_brier(t, [True, True, False, False], [0.5, 0.5, 0.5, 0.5], 5.0), 3)
    0.25
    >>> ipcw_brier(t, [True, True, False, False], [0.5] * 4, 20.0) is None
    True
    """
    time = np.asarray(time_days, float)
    event = np.asarray(event, bool)
    terms = brier_terms(time, event, np.asarray(survival, float), years * DAYS_PER_YEAR, censoring_km(time, event))
    return None if terms is None else float(terms.mean())


def calibration_slope(time_days, event, survival, years: float) -> dict:
    """Calibration slope at ``years``: the coefficient of a Cox model (lifelines) of the outcome, follow-up
    censored at ``years``, on the linear predictor ``ln(-ln S)`` of the predicted event-free probability ``S``.

    A slope of 1 means the spread of the predictions matches the data; below 1, predictions are too extreme
    (high risks too high, low risks too low); above 1, too timid.

    Parameters
    ----------
    time_days : array_like
        Follow-up (days).
    event : array_like of bool
        Event observed.
    survival : array_like
        Predicted event-free probability at ``years``, one per patient.
    years : float
        Horizon (years from diagnosis).

    Returns
    -------
    dict
        ``slope`` and ``ci95`` (dimensionless; None when the predictions do not vary or the fit fails).

    Examples
    --------
    >>> rng = np.random.default_rng(3)
    >>> rate = np.exp(rng.normal(size=3000)) / 3000.0          # exponential model, per day
    >>> t = rng.exponential(1.0 / rate)
    >>> s5 = np.exp(-rate * 5 * 365.25)                          # the true 5-year probabilities
    >>> out = calibration_slope(np.minimum(t, 4000), t < 4000, s5, 5.0)
    >>> bool(0.9 < out["slope"] < 1.1)
    True
    """
    time = np.asarray(time_days, float)
    event = np.asarray(event, bool)
    s = np.clip(np.asarray(survival, float), 1e-12, 1.0 - 1e-12)
    lp = np.log(-np.log(s))
    if np.ptp(lp) < 1e-9:
        return {"slope": None, "ci95": None}
    t_days = years * DAYS_PER_YEAR
    df = pd.DataFrame({"lp": lp, "t": np.minimum(time, t_days), "e": (event & (time <= t_days)).astype(int)})
    try:
        cph = CoxPHFitter().fit(df, duration_col="t", event_col="e")
    except Exception:  # lifelines convergence failures: report no slope rather than stop the run
        return {"slope": None, "ci95": None}
    ci = cph.confidence_intervals_.loc["lp"].to_numpy()
    return {"slope": float(cph.params_["lp"]), "ci95": [float(ci[0]), float(ci[1])]}


def calibration_table(
    time_days, event, survival, groups, horizons_years, grouping: str
) -> list[dict]:
    """Predicted vs Kaplan–Meier event-free probability per group and horizon.

    Parameters
    ----------
    time_days : array_like
        Follow-up (days).
    event : array_like of bool
        Event observed.
    survival : numpy.ndarray
        Predicted event-free probability, shape ``(n, H)``.
    groups : array_like
        Group label per patient (cells in the order of first appearance of sorted labels).
    horizons_years : sequence of float
        The ``H`` horizons (years).
    grouping : str
        Name of the grouping, copied into every row (e.g. ``"tertile"``).

    Returns
    -------
    list of dict
        One row per group and horizon: ``grouping``, ``group``, ``years``, ``n``, ``events``, ``predicted``
        (mean predicted probability), ``km``, ``km_low``, ``km_high`` (Kaplan–Meier and its 95% interval,
        probabilities), ``estimable`` (the horizon is within the group's follow-up) and ``inside`` (prediction
        within the interval; None when not estimable).

    Examples
    --------
    >>> t = np.array([400.0, 800.0, 3000.0, 4000.0, 500.0, 4500.0])
    >>> e = np.array([True, True, False, False, True, False])
    >>> rows = calibration_table(t, e, np.full((6, 1), 0.6), ["a"] * 6, [5.0], "all")
    >>> round(rows[0]["km"], 3), rows[0]["inside"]
    (0.5, True)
    """
    time = np.asarray(time_days, float)
    event = np.asarray(event, bool)
    groups = np.asarray(groups, dtype=object)
    rows = []
    for g in sorted(set(groups.tolist()), key=str):
        sel = groups == g
        s, lo, hi = km_at(time[sel], event[sel], horizons_years)
        for j, y in enumerate(horizons_years):
            pred = float(np.mean(survival[sel, j]))
            ok = bool(y * DAYS_PER_YEAR <= time[sel].max() and np.isfinite(lo[j]) and np.isfinite(hi[j]))
            rows.append(
                {
                    "grouping": grouping,
                    "group": str(g),
                    "years": float(y),
                    "n": int(sel.sum()),
                    "events": int(event[sel].sum()),
                    "predicted": pred,
                    "km": float(s[j]) if ok else None,
                    "km_low": float(lo[j]) if ok else None,
                    "km_high": float(hi[j]) if ok else None,
                    "estimable": ok,
                    "inside": bool(lo[j] <= pred <= hi[j]) if ok else None,
                }
            )
    return rows


def risk_tertiles(risk: np.ndarray) -> np.ndarray:
    """Tertile labels (``"1 low"``, ``"2 middle"``, ``"3 high"``) of the predicted ``risk`` (probability).

    Examples
    --------
    >>> risk_tertiles(np.array([0.1, 0.5, 0.9])).tolist()
    ['1 low', '2 middle', '3 high']
    """
    cuts = np.quantile(risk, [1 / 3, 2 / 3])
    return np.array(["1 low", "2 middle", "3 high"], dtype=object)[np.digitize(risk, cuts)]


def percentile_ci(values) -> list[float]:
    """95% percentile interval ``[2.5%, 97.5%]`` of bootstrap ``values`` (non-finite dropped; ``[None, None]`` if
    none is left).

    Examples
    --------
    >>> percentile_ci(np.arange(101.0))
    [2.5, 97.5]
    """
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    return [float(x) for x in np.percentile(v, [2.5, 97.5])] if v.size else [None, None]
