"""Primary tumour: Gompertz growth in log-cells and the two-clone response to chemotherapy (docs/science.md §2.3).

Untreated, ``u = ln N`` obeys ``du/dt = α - β u``, so ``u(t) = a + (u0 - a) e^{-β t}`` with ``a = α/β = ln K``.
Under treatment the sensitive (``S``) and resistant (``R``) clones share crowding through ``N = S + R``:

    d ln S/dt = α - β ln N - s k(t),     d ln R/dt = α - β ln N - r_R s k(t).

With ``w = ln S`` and ``z = ln R - ln S``: ``z = z0 + (1 - r_R) s ∫k`` exactly, and ``w`` is linear with known
forcing, ``e^{β(t-c)} w(t) = w(c) + ∫_c^t e^{β(r-c)} (α - β softplus(z) - s k) dr``; the softplus integral
is taken with Simpson's rule on each node interval.
"""

from __future__ import annotations

import numpy as np

from chemomet.model.parameters import PatientParameters
from chemomet.model.timeline import Timeline


def untreated_log_cells(params: PatientParameters, t_days) -> np.ndarray:
    """ln(cells) of the untreated primary at times ``t_days`` (rows: patients), Gompertz closed form."""
    a = params.log_plateau[:, None]
    t = np.asarray(t_days, dtype=float)
    t = t[None, :] if t.ndim == 1 else t
    return a + (params.log_cells0[:, None] - a) * np.exp(-params.beta_per_day[:, None] * t)


def age_days(params: PatientParameters) -> np.ndarray:
    """Time from the first tumour cell to diagnosis, ``T_age = -ln(1 - u0/a)/β`` (days)."""
    return -np.log1p(-params.log_cells0 / params.log_plateau) / params.beta_per_day


def growth_factor(params: PatientParameters, tl: Timeline) -> np.ndarray:
    """``e^{β (t_i - c)}`` at the window nodes, shape ``(n_patients, n_nodes)``."""
    return np.exp(params.beta_per_day[:, None] * (tl.nodes - tl.start)[None, :])


def weighted_kill(params: PatientParameters, tl: Timeline, growth: np.ndarray) -> np.ndarray:
    """``Ĝ(t_i) = ∫_c^{t_i} e^{β (r - c)} k_unit(r) dr`` at the nodes (unit chemosensitivity), ``(n, n_nodes)``.

    Uses the second-order expansion of ``e^{β(r - t_i)}`` on each interval against exact kill moments; the
    neglected term is ``≤ (β h)^3/6`` relative (below 1e-8 for β h ≤ 4e-3).
    """
    b = params.beta_per_day[:, None]
    per_interval = growth[:, :-1] * (tl.kill_m0 + b * tl.kill_m1 + 0.5 * b * b * tl.kill_m2)
    out = np.zeros(growth.shape)
    np.cumsum(per_interval, axis=1, out=out[:, 1:])
    return out


def course_in_window(params: PatientParameters, tl: Timeline, first: float, last: float):
    """A constant-rate course from day ``first`` to ``last`` inside the window, at unit rate.

    Returns ``(weighted, on)``: ``∫_c^{t_i} e^{β(r-c)} 1_{[first, last]}(r) dr`` at the nodes ``(n, n_nodes)``
    (exact), and whether each node interval lies in the course ``(n_intervals,)`` (its ends are nodes).

    Examples
    --------
    >>> from chemomet.population import Population
    >>> from chemomet.model.timeline import build_timeline
    >>> from chemomet.regimens import Strategy, load_drugs
    >>> _, p = Population().sample(1, 0)
    >>> sch = Strategy.parse("nact", "ac-paclitaxel-weekly-trastuzumab").schedule()
    >>> tl = build_timeline(sch, load_drugs(), 0.1, 0.1)
    >>> weighted, on = course_in_window(p, tl, sch.anti_her2.start_day, sch.anti_her2.end_day)
    >>> float(tl.nodes[:-1][on].min()), bool(weighted[0, 0] == 0.0)  # from day 14 + 84
    (98.0, True)
    """
    b = params.beta_per_day[:, None]
    lo, hi = max(first, tl.start), min(last, tl.end)
    if hi <= lo:
        return np.zeros((params.n, tl.nodes.size)), np.zeros(tl.nodes.size - 1, bool)
    clipped = np.clip(tl.nodes, lo, hi)[None, :]
    weighted = (np.exp(b * (clipped - tl.start)) - np.exp(b * (lo - tl.start))) / b
    mid = 0.5 * (tl.nodes[:-1] + tl.nodes[1:])
    return weighted, (mid > lo) & (mid < hi)


def _softplus(x):
    return np.logaddexp(0.0, x)


def treated_log_cells(
    params: PatientParameters, tl: Timeline, growth: np.ndarray, gkill: np.ndarray, extra_kill=None
):
    """ln(total cells) and the resistant share ``R/N`` of the primary at the window nodes, ``(n, n_nodes)``.

    ``extra_kill``: optional ``∫_c^t e^{β(r-c)} k_x(r) dr`` at the nodes ``(n, n_nodes)`` of a kill that acts on
    both clones alike (anti-HER2 therapy), so it moves ``ln S`` and ``ln R`` together and leaves ``z`` alone."""
    a = params.log_plateau[:, None]
    b = params.beta_per_day[:, None]
    s = params.chemosensitivity[:, None]
    u_c = untreated_log_cells(params, [tl.start])  # (n, 1)
    f_r = params.resistant_fraction[:, None]
    with np.errstate(divide="ignore"):
        z0 = np.log(f_r) - np.log1p(-f_r)  # -inf without a resistant clone
    w_c = u_c + np.log1p(-f_r)
    slope = (1.0 - params.resistant_kill_ratio[:, None]) * s
    z = z0 + slope * tl.kill_cum
    has_r = params.resistant_fraction > 0
    integral = np.zeros(growth.shape)
    if np.any(has_r):
        idx = np.flatnonzero(has_r)
        g = growth[idx]
        bb = b[idx]
        h = np.diff(tl.nodes)
        z_mid = z0[idx] + slope[idx] * tl.kill_cum_mid
        g_mid = g[:, :-1] * np.exp(bb * h / 2.0)
        sp = _softplus(z[idx])
        simpson = h / 6.0 * (g[:, :-1] * sp[:, :-1] + 4.0 * g_mid * _softplus(z_mid) + g[:, 1:] * sp[:, 1:])
        integral[idx, 1:] = np.cumsum(simpson, axis=1)
    w = w_c + a * (growth - 1.0) - s * gkill - b * integral
    if extra_kill is not None:
        w = w - extra_kill
    w = w / growth
    log_n = w + np.where(np.isfinite(z), _softplus(z), 0.0)
    resistant_share = np.where(np.isfinite(z), 1.0 / (1.0 + np.exp(-z)), 0.0)
    return log_n, resistant_share
