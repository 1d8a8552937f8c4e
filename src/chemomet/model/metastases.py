"""Colonies: growth under treatment, eradication, visibility and the distant-metastasis hazard (SCIENCE.md §2.6).

A colony founded by one cell at ``σ`` obeys ``du/dt = α - β u - κ k(t)`` (``κ = s_met · s``, times ``r_R`` for
resistant-founded colonies). With ``E(t) = e^{β(t-c)}`` and ``Ĝ(t) = ∫_c^t e^{β(r-c)} k(r) dr``:

    u(t; σ) = [Ĥ(t) - Ĥ(σ)] / E(t),     Ĥ(t) = a E(t) - κ Ĝ(t),   a = α/β.

So the colony is alive at ``t`` iff ``Ĥ(t) ≥ Ĥ(σ)`` and visible (``u ≥ L = ln N_vis``) iff
``V̂(t) = Ĥ(t) - L E(t) ≥ Ĥ(σ)``. Every colony's fate reduces to comparing ``Ĥ(σ)`` with running extrema of
two functions of one variable, computed once per patient:

* colonies founded before the window have ``Ĥ(σ) = a e^{β(σ-c)}`` (increasing in ``σ``); those visible by
  ``t`` are exactly ``Ĥ(σ) ≤ ψ(t) = sup_{r ≤ t} min(V̂(r), min_{[c, r]} Ĥ)``, i.e. ``σ ≤ σ*(t)``, and their
  expected number follows from the closed-form cumulative founding;
* colonies founded inside the window are alive after it iff ``Ĥ(σ)`` is below every later ``Ĥ``; once the
  drugs are gone they become visible at the closed-form time ``V̂(t) = Ĥ(σ)``. Should a window-founded colony
  be able to reach visibility inside the window (only for very fast growth), an exact per-node search is used.

``Λ(t)`` is the expected number of colonies visible by ``t``; ``S(t | M0) = exp(-[Λ(t) - Λ(0)])``.
"""

from __future__ import annotations

import numpy as np

from chemomet.model.dissemination import untreated_cumulative_founding
from chemomet.model.primary import age_days
from chemomet.model.timeline import Timeline
from chemomet.population import PatientParameters


def colony_log_size(params: PatientParameters, sigma: float, t: np.ndarray, kill_weighted, kappa: np.ndarray, c: float):
    """ln(cells) of a colony founded at ``sigma`` (one cell), at times ``t`` ≥ sigma, ignoring eradication.

    ``kill_weighted(t)`` must return ``Ĝ(t) = ∫_c^t e^{β(r-c)} k(r) dr`` at unit kill, shape ``(n, len(t))``.
    """
    a = params.log_plateau[:, None]
    b = params.beta_per_day[:, None]
    e_t = np.exp(b * (np.asarray(t)[None, :] - c))
    e_s = np.exp(b * (sigma - c))
    h_t = a * e_t - kappa[:, None] * kill_weighted(np.asarray(t))
    h_s = a * e_s - kappa[:, None] * kill_weighted(np.asarray([sigma]))
    return (h_t - h_s) / e_t


def _rowwise_count_leq(sorted_vals: np.ndarray, cum_mass: np.ndarray, query: np.ndarray) -> np.ndarray:
    """For each row, the cumulative mass of entries ``<= query`` (rows of ``sorted_vals`` ascending)."""
    n, p = sorted_vals.shape
    if p == 0:
        return np.zeros(query.shape)
    big = 4.0e7
    vals = np.clip(sorted_vals, -1.0e7, 1.0e7) + big * np.arange(n)[:, None]
    q = np.clip(query, -1.0e7, 1.0e7) + big * np.arange(n)[:, None]
    pos = np.searchsorted(vals.ravel(), q.ravel(), side="right").reshape(query.shape) - p * np.arange(n)[:, None]
    padded = np.concatenate([np.zeros((n, 1)), cum_mass], axis=1)
    return np.take_along_axis(padded, pos, axis=1)


def visible_by(
    params: PatientParameters,
    tl: Timeline | None,
    growth: np.ndarray | None,
    gkill: np.ndarray | None,
    kappa: np.ndarray,
    share_pre: np.ndarray,
    window_mass: np.ndarray | None,
    log_visible: float,
    founding_end: float,
    times: np.ndarray,
) -> np.ndarray:
    """Expected colonies of one clone visible by each of ``times``: ``Λ(t)``, shape ``(n, len(times))``.

    kappa: kill multiplier on this clone's colonies (``s_met s`` or ``s_met s r_R``); share_pre: the clone's
    share of founding before the window; window_mass: expected colonies founded per window interval
    ``(n, n_founding)``; founding_end: last day of founding before the window (surgery or window start).
    """
    a = params.log_plateau[:, None]
    b = params.beta_per_day[:, None]
    L = log_visible
    t = np.asarray(times, dtype=float)[None, :]
    c = tl.start if tl is not None else 0.0
    e_t = np.exp(b * (t - c))
    if tl is None:
        psi = (a - L) * e_t
        founding_limit = founding_end
    else:
        k = kappa[:, None]
        h = a * growth - k * gkill
        v = h - L * growth
        phi_nodes = np.minimum(v, np.minimum.accumulate(h, axis=1))
        psi_nodes = np.maximum.accumulate(phi_nodes, axis=1)
        h_min = np.min(h, axis=1, keepdims=True)
        g_end = gkill[:, -1:]
        before = t < tl.start
        after = t >= tl.end
        idx = np.clip(np.searchsorted(tl.nodes, t[0], side="right") - 1, 0, tl.nodes.size - 1)
        psi_in = psi_nodes[:, idx]
        psi_after = np.maximum(psi_nodes[:, -1:], np.minimum((a - L) * e_t - k * g_end, h_min))
        psi = np.where(before, (a - L) * e_t, np.where(after, psi_after, psi_in))
        founding_limit = min(founding_end, tl.start)
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma_star = c + np.log(np.maximum(psi, 0.0) / a) / b
    sigma_star = np.where(psi > 0, sigma_star, -np.inf)
    upper = np.minimum(sigma_star, founding_limit)
    lam = share_pre[:, None] * untreated_cumulative_founding(params, upper)
    lam = np.where(np.isfinite(upper), lam, 0.0)
    if tl is not None and window_mass is not None and window_mass.shape[1] > 0:
        lam = lam + _window_founded_visible(params, tl, growth, gkill, kappa, window_mass, L, t[0])
    return lam


def _window_founded_visible(params, tl, growth, gkill, kappa, mass, L, times):
    """Λ contribution of colonies founded inside the window (see module docstring)."""
    a = params.log_plateau[:, None]
    b = params.beta_per_day[:, None]
    k = kappa[:, None]
    nf = mass.shape[1]
    h = a * growth - k * gkill
    v = h - L * growth
    g_end = gkill[:, -1:]
    # suffix minimum of Ĥ over nodes j >= i + 1 (to the end of the window)
    suffix_min = np.minimum.accumulate(h[:, ::-1], axis=1)[:, ::-1]
    h0, h1 = h[:, :nf], h[:, 1 : nf + 1]
    rising = h1 > h0
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(rising, np.clip((suffix_min[:, 1 : nf + 1] - h0) / (h1 - h0), 0.0, 1.0), 0.0)
    alive_mass = mass * frac
    h_mid = h0 + 0.5 * frac * (h1 - h0)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_vis = tl.start + np.log((h_mid + k * g_end) / ((a - L))) / b
    t_vis = np.where(alive_mass > 0, t_vis, np.inf)

    # Could any window-founded colony become visible inside the window?  (V̂ reaching Ĥ(σ) for r > σ)
    suffix_max_v = np.maximum.accumulate(v[:, ::-1], axis=1)[:, ::-1]
    fast = np.any(h0 <= suffix_max_v[:, 1 : nf + 1], axis=1)
    if np.any(fast):
        idx = np.flatnonzero(fast)
        t_vis_f, mass_f = _exact_window_visibility(tl, h[idx], v[idx], mass[idx], a[idx], b[idx], k[idx], g_end[idx], L)
        t_vis = t_vis.copy()
        alive_mass = alive_mass.copy()
        t_vis[idx], alive_mass[idx] = t_vis_f, mass_f

    order = np.argsort(t_vis, axis=1)
    t_sorted = np.take_along_axis(t_vis, order, axis=1)
    cum = np.cumsum(np.take_along_axis(alive_mass, order, axis=1), axis=1)
    query = np.broadcast_to(times[None, :], (mass.shape[0], times.size))
    return _rowwise_count_leq(t_sorted, cum, query)


def _exact_window_visibility(tl, h, v, mass, a, b, k, g_end, L):
    """Per-node visibility times for patients whose window-founded colonies may become visible in the window.

    Node-based: the colony of interval ``i`` (value ``Ĥ`` at its midpoint) becomes visible at the first node
    ``j > i`` with ``V̂_j ≥ Ĥ`` before ``Ĥ`` falls below it; otherwise after the window, or never.
    """
    n, nodes = h.shape
    nf = mass.shape[1]
    h_mid = 0.5 * (h[:, :nf] + h[:, 1 : nf + 1])  # (n, nf)
    later = np.arange(nodes)[None, None, :] > np.arange(nf)[None, :, None]  # node j after interval i
    below = later & (h[:, None, :] < h_mid[:, :, None])
    dead_before = np.cumsum(below, axis=2) > 0
    vis = later & (v[:, None, :] >= h_mid[:, :, None]) & ~dead_before
    any_vis = vis.any(axis=2)
    first = np.argmax(vis, axis=2)
    t_in = tl.nodes[first]
    alive_after = ~dead_before[:, :, -1]
    with np.errstate(divide="ignore", invalid="ignore"):
        t_post = tl.start + np.log((h_mid + k * g_end) / (a - L)) / b
    t_vis = np.where(any_vis, t_in, np.where(alive_after, t_post, np.inf))
    return t_vis, np.where(np.isfinite(t_vis), mass, 0.0)
