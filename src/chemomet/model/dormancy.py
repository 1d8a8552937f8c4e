"""Dormancy: colonies that wait before growing (docs/science.md §2.7, optional).

A share ``q`` of founded colonies first stays dormant for an exponential time (rate ``λ`` per day); dormant
cells neither grow nor respond to chemotherapy. When one wakes at ``σ'`` it grows exactly like a colony founded
at ``σ'``, so every visibility rule of :mod:`chemomet.model.metastases` applies to the wake-up process. The dormant
pool ``P`` obeys ``dP/dt = d(t) - λ P``; wake-ups up to ``σ'`` are ``W(σ') = F(σ') - P(σ')`` (``F``: colonies founded).

* before the treatment window ``P`` is an integral of the untreated founding rate, reduced to a smooth
  one-dimensional integral and computed by Gauss–Legendre quadrature (:func:`untreated_pool`);
* in the window the pool follows the interval founding masses (founding spread evenly in each interval);
* after the window the pool only empties: a colony waking at ``σ'`` is visible at ``σ' + τ_vis``.
"""

from __future__ import annotations

import numpy as np

from chemomet.model.dissemination import untreated_cumulative_founding
from chemomet.model.metastases import visible_by
from chemomet.model.parameters import PatientParameters
from chemomet.model.primary import age_days
from chemomet.model.timeline import Timeline

POOL_NODES = 20
"""Gauss–Legendre nodes of :func:`untreated_pool` (relative error below 1e-12 for mean dormancy 30–20,000 days)."""

_POOL_SPAN = 36.0
"""Decay of the pool integrand (in e-folds) after which it is cut off; the rest is below e^{-36} of it."""

_GL_X, _GL_W = np.polynomial.legendre.leggauss(POOL_NODES)


def untreated_pool(params: PatientParameters, sigma: np.ndarray) -> np.ndarray:
    """Dormant colonies of the untreated primary, ``P(σ) = ∫ μ N(s)^γ e^{-λ(σ-s)} ds`` from its first cell to ``σ``.

    With ``τ`` the time since the first cell, ``w = γ a e^{-βτ}`` and ``v = ln w``, the Gompertz founding rate
    turns the integral into ``μ/β ∫ exp(γa - e^v + s (v_σ - v)) dv`` over ``[v_σ, ln γa]`` with ``s = λ/β``.
    The log-integrand is concave and falls at least at rate ``s + w_σ`` from ``v_σ``, so the range is cut after
    36 e-folds and integrated by Gauss–Legendre (:data:`POOL_NODES` nodes): relative error below 1e-12 against
    64 nodes for mean dormancies from 30 to 20,000 days (tests/test_dormancy.py checks it against
    ``scipy.integrate.quad`` from 5 to 20,000 days).

    Parameters
    ----------
    params : PatientParameters
        The patients (rows); uses ``mu``, ``gamma``, ``log_plateau``, ``beta_per_day``, ``wake_rate_per_day``.
    sigma : numpy.ndarray
        Times ``(n, q)`` in days from diagnosis; founding is counted up to each (no surgery).

    Returns
    -------
    numpy.ndarray
        ``(n, q)`` expected dormant colonies at ``σ`` (0 before the first tumour cell).

    Examples
    --------
    >>> import dataclasses, chemomet as cm
    >>> _, p = cm.Population().sample(2, rng=1)
    >>> p = dataclasses.replace(p, wake_rate_per_day=np.full(2, 1 / 1500))
    >>> pool = untreated_pool(p, np.array([[0.0, 21.0], [0.0, 21.0]]))
    >>> bool(np.all(pool[:, 1] > pool[:, 0]))
    True
    """
    sigma = np.asarray(sigma, dtype=float)
    a, b = params.log_plateau[:, None], params.beta_per_day[:, None]
    ga = params.gamma[:, None] * a
    s = params.wake_rate_per_day[:, None] / b
    tau = np.maximum(sigma + age_days(params)[:, None], 0.0)
    v_top = np.log(ga)
    v_low = v_top - b * tau
    v_high = np.minimum(v_top, v_low + _POOL_SPAN / (s + np.exp(v_low)))
    half = 0.5 * (v_high - v_low)
    v = (v_low + half)[..., None] + half[..., None] * _GL_X
    log_f = ga[..., None] - np.exp(v) + s[..., None] * (v_low[..., None] - v)
    return params.mu[:, None] / b * half * (np.exp(log_f) @ _GL_W)


def dormant_visible_by(
    params: PatientParameters,
    tl: Timeline | None,
    growth,
    kill,
    share_pre: np.ndarray,
    founded_mass: np.ndarray | None,
    log_visible: float,
    founding_end: float,
    times: np.ndarray,
    courses=(),
) -> np.ndarray:
    """``Λ(t)`` of one clone's colonies that went through dormancy, shape ``(n, len(times))``.

    Arguments as :func:`chemomet.model.metastases.visible_by`; ``founded_mass`` are the colonies founded per
    window interval (through surgery), ``founding_end`` the last founding day (surgery, or inf). Courses after the
    window (endocrine, anti-HER2) reach the colonies that woke before the window closed; cells still dormant then
    wake and grow untreated (a limitation: docs/science.md §2.13).
    """
    lam = params.wake_rate_per_day
    times = np.asarray(times, dtype=float)
    pre_end = founding_end if tl is None else min(founding_end, tl.start)


    def starts_before(upper):
        # founding stops at pre_end; afterwards (before the window) the pool only empties
        u = np.minimum(upper, pre_end)
        pool = untreated_pool(params, u) * np.exp(-lam[:, None] * (upper - u))
        return share_pre[:, None] * (untreated_cumulative_founding(params, u) - pool)

    wakes = None
    if tl is not None:
        nodes = tl.nodes
        n_int = nodes.size - 1
        founded = np.zeros((params.n, n_int))
        if founded_mass is not None:
            founded[:, : founded_mass.shape[1]] = founded_mass
        last_founding = min(tl.start, pre_end)
        start_pool = untreated_pool(params, np.full((params.n, 1), last_founding))[:, 0]
        starts_pool = share_pre * start_pool * np.exp(-lam * (tl.start - last_founding))
        x = lam[:, None] * np.diff(nodes)[None, :]
        spread = np.where(x > 1e-9, -np.expm1(-x) / np.where(x > 1e-9, x, 1.0), 1.0 - x / 2.0)
        scale = np.exp(lam[:, None] * (nodes - tl.start)[None, :])  # e^{λ(t_i - c)}, at most e^{λ · window}
        inflow = np.cumsum(founded * spread * scale[:, 1:], axis=1)
        pool = np.concatenate([starts_pool[:, None], starts_pool[:, None] + inflow], axis=1) / scale
        wakes = founded - np.diff(pool, axis=1)
        pool_end = pool[:, -1]
    out = visible_by(
        params, tl, growth, kill, share_pre, wakes, log_visible, np.inf, times, starts_before=starts_before,
        courses=courses,
    )
    if tl is not None:
        tau_vis = -np.log1p(-log_visible / params.log_plateau) / params.beta_per_day
        waited = np.maximum(times[None, :] - tau_vis[:, None] - tl.end, 0.0)
        out = out + pool_end[:, None] * -np.expm1(-lam[:, None] * waited)
    return out
