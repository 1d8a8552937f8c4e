"""Dormancy: colonies that wait before growing (docs/science.md §2.7, optional).

A share ``q`` of founded colonies first stays dormant for an exponential time (rate ``λ`` per day); dormant
cells neither grow nor respond to chemotherapy. When one wakes at ``σ'`` it grows exactly like a colony founded
at ``σ'``, so every visibility rule of :mod:`chemomet.model.metastases` applies to the wake-up process. The dormant
pool ``P`` obeys ``dP/dt = d(t) - λ P``; wake-ups up to ``σ'`` are ``W(σ') = F(σ') - P(σ')`` (``F``: colonies founded).

* before the treatment window ``P`` is an integral of the untreated founding rate, computed on a per-patient
  grid with the log-integrand linear between points (exact for exponential pieces);
* in the window the pool follows the interval founding masses (founding spread evenly in each interval);
* after the window the pool only empties: a colony waking at ``σ'`` is visible at ``σ' + τ_vis``.
"""

from __future__ import annotations

import numpy as np

from chemomet.model.dissemination import log_mean_exp, untreated_cumulative_founding
from chemomet.model.metastases import visible_by
from chemomet.model.parameters import PatientParameters
from chemomet.model.primary import age_days
from chemomet.model.timeline import Timeline

POOL_POINTS = 1024


class UntreatedPool:
    """Dormant colonies ``P(σ) = ∫ d(s) e^{-λ(σ-s)} ds`` of the untreated primary, for ``σ ≤ s_end`` (days).

    Built once per batch on ``POOL_POINTS`` grid points per patient from the first tumour cell to ``s_end``
    (shape ``(n,)``), integrating ``exp`` of the piecewise-linear log-integrand exactly; :meth:`at` evaluates it.
    """

    def __init__(self, params: PatientParameters, s_end: np.ndarray):
        self.lam = params.wake_rate_per_day[:, None]
        self.a, self.b, self.g = params.log_plateau[:, None], params.beta_per_day[:, None], params.gamma[:, None]
        with np.errstate(divide="ignore"):
            self.log_mu = np.log(params.mu)[:, None]
        self.t_age = age_days(params)[:, None]
        self.tau_end = np.maximum(np.asarray(s_end, dtype=float)[:, None] + self.t_age, 1e-9)
        self.step = self.tau_end / POOL_POINTS
        self.tau = self.step * np.arange(POOL_POINTS + 1)[None, :]
        self.ell = self._log_integrand(self.tau)
        pieces = self.step * log_mean_exp(self.ell[:, :-1], self.ell[:, 1:])
        self.cum = np.concatenate([np.zeros((self.tau.shape[0], 1)), np.cumsum(pieces, axis=1)], axis=1)

    def _log_integrand(self, tau):
        return self.log_mu + self.g * self.a * (1.0 - np.exp(-self.b * tau)) + self.lam * (tau - self.tau_end)

    def at(self, sigma: np.ndarray) -> np.ndarray:
        """``P(σ)`` for ``sigma`` of shape ``(n, q)`` (clipped to the grid's range)."""
        tq = np.clip(np.asarray(sigma, dtype=float) + self.t_age, 0.0, self.tau_end)
        j = np.clip(np.floor(tq / self.step).astype(np.int64), 0, POOL_POINTS - 1)
        tau_j = np.take_along_axis(self.tau, j, axis=1)
        ell_j = np.take_along_axis(self.ell, j, axis=1)
        partial = (tq - tau_j) * log_mean_exp(ell_j, self._log_integrand(tq))
        return np.exp(-self.lam * (tq - self.tau_end)) * (np.take_along_axis(self.cum, j, axis=1) + partial)


def untreated_pool(params: PatientParameters, sigma: np.ndarray, s_end: np.ndarray) -> np.ndarray:
    """``P(σ)`` at ``sigma`` ``(n, q)``, each ``≤ s_end`` ``(n,)``; see :class:`UntreatedPool`."""
    return UntreatedPool(params, s_end).at(sigma)


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

    pool_before = UntreatedPool(params, np.full(params.n, pre_end)) if np.isfinite(pre_end) else None

    def starts_before(upper):
        # founding stops at pre_end; afterwards (before the window) the pool only empties
        u = np.minimum(upper, pre_end)
        integral = pool_before or UntreatedPool(params, np.max(u, axis=1))
        pool = integral.at(u) * np.exp(-lam[:, None] * (upper - u))
        return share_pre[:, None] * (untreated_cumulative_founding(params, u) - pool)

    wakes = None
    if tl is not None:
        nodes = tl.nodes
        n_int = nodes.size - 1
        founded = np.zeros((params.n, n_int))
        if founded_mass is not None:
            founded[:, : founded_mass.shape[1]] = founded_mass
        start = np.full((params.n, 1), min(tl.start, pre_end))
        starts_pool = share_pre * pool_before.at(start)[:, 0] * np.exp(-lam * (tl.start - min(tl.start, pre_end)))
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
