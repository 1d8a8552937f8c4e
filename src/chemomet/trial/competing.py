"""Competing risks: the cumulative incidence of distant metastasis when death from other causes comes first.

The DRFI endpoint censors a woman who dies of other causes before a distant metastasis at her death: its
Kaplan–Meier curve estimates the cause-specific survival, and ``1 − KM`` overstates the probability of a
metastasis by a given time, because a woman who has died can no longer have one. The Aalen–Johansen estimator
of the cumulative incidence counts her correctly:

    F₁(t) = Σ_{t_j ≤ t} S(t_j−) d₁ⱼ / n_j,

with ``S`` the Kaplan–Meier survival from either event, ``d₁ⱼ`` the metastases at ``t_j`` and ``n_j`` the
women at risk. Times are days.
"""

from __future__ import annotations

import numpy as np

from chemomet.units import DAYS_PER_YEAR

CAUSES = {0: "censored", 1: "distant metastasis", 2: "death from other causes without distant metastasis"}
"""Codes of :func:`drfi_causes`."""


def drfi_causes(dmfs_event: np.ndarray, drfi_event: np.ndarray) -> np.ndarray:
    """The cause of each patient's DMFS event: 1 distant metastasis, 2 death first (the competing event), 0
    censored (codes of :data:`CAUSES`). The time is the DMFS (= DRFI) time, days.

    Parameters
    ----------
    dmfs_event, drfi_event : array_like of bool
        The endpoints' event flags (:func:`chemomet.trial.events.endpoints`).

    Returns
    -------
    numpy.ndarray
        Integer codes (dimensionless).

    Examples
    --------
    >>> drfi_causes([True, True, False], [True, False, False]).tolist()
    [1, 2, 0]
    """
    dmfs = np.asarray(dmfs_event, bool)
    drfi = np.asarray(drfi_event, bool)
    return np.where(drfi, 1, np.where(dmfs, 2, 0))


def cumulative_incidence(time, cause, days, of: int = 1) -> np.ndarray:
    """Aalen–Johansen cumulative incidence of cause ``of`` at each of ``days``, other causes competing.

    Parameters
    ----------
    time : array_like
        Observed times (days).
    cause : array_like of int
        0 censored, 1, 2, ...: the event observed at ``time``.
    days : array_like
        Times (days) at which the incidence is wanted.
    of : int, default 1
        The cause of interest.

    Returns
    -------
    numpy.ndarray
        Probabilities, one per entry of ``days`` (0 before the first event).

    Examples
    --------
    Without a competing event it is ``1 - KM``; with one it is smaller:

    >>> t = np.array([1.0, 2.0, 3.0, 4.0])
    >>> cumulative_incidence(t, [1, 0, 1, 0], [3.0]).round(4).tolist()  # KM: 1 - (3/4)(1/2)
    [0.625]
    >>> cumulative_incidence(t, [1, 2, 1, 0], [3.0]).round(4).tolist()  # 1/4 + (3/4)(2/3)(1/2)
    [0.5]
    """
    t = np.asarray(time, float)
    c = np.asarray(cause, int)
    days = np.atleast_1d(np.asarray(days, float))
    if t.size == 0:
        return np.zeros(days.shape)
    ut, inv, counts = np.unique(t, return_inverse=True, return_counts=True)
    d_any = np.bincount(inv, weights=(c > 0).astype(float), minlength=ut.size)
    d_of = np.bincount(inv, weights=(c == of).astype(float), minlength=ut.size)
    at_risk = t.size - np.concatenate([[0], np.cumsum(counts)[:-1]])
    surv_after = np.cumprod(1.0 - d_any / at_risk)
    surv_before = np.concatenate([[1.0], surv_after[:-1]])
    cif = np.cumsum(surv_before * d_of / at_risk)
    k = np.searchsorted(ut, days, side="right") - 1
    return np.where(k >= 0, cif[np.maximum(k, 0)], 0.0)


def drfi_cumulative_incidence(time, dmfs_event, drfi_event, landmarks_days) -> dict:
    """Cumulative incidence of distant metastasis at each landmark, death from other causes competing.

    Parameters
    ----------
    time : array_like
        The DRFI (= DMFS) times of one arm (days).
    dmfs_event, drfi_event : array_like of bool
        The endpoints' event flags.
    landmarks_days : list of float
        Landmarks (days).

    Returns
    -------
    dict
        ``"<years>y"`` -> ``{"day", "estimate", "one_minus_km"}``: the Aalen–Johansen estimate and, beside it,
        ``1 - KM`` of DRFI (competing deaths censored), which is at least as large (probabilities).

    Examples
    --------
    >>> years = np.array([1.0, 2.0, 3.0, 4.0])  # metastasis, death first, metastasis, censored
    >>> res = drfi_cumulative_incidence(years * 365.25, [True, True, True, False], [True, False, True, False],
    ...                                 [3 * 365.25])
    >>> res["3y"]["estimate"], res["3y"]["one_minus_km"]
    (0.5, 0.625)
    """
    cause = drfi_causes(dmfs_event, drfi_event)
    days = list(landmarks_days)
    cif = cumulative_incidence(time, cause, days, of=1)
    km = cumulative_incidence(time, np.where(cause == 2, 0, cause), days, of=1)
    return {
        f"{d / DAYS_PER_YEAR:g}y": {"day": d, "estimate": float(f), "one_minus_km": float(k)}
        for d, f, k in zip(days, cif, km, strict=True)
    }
