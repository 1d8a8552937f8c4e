"""Colonies: growth under treatment, eradication, visibility and the distant-metastasis hazard (docs/science.md §2.6).

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

Inside the window the kill a clone's colonies meet is a :class:`WindowKill`: chemotherapy (``κ k(t)``) plus, in
HER2-positive disease, a constant anti-HER2 kill while the antibodies are given.

Courses after the window — adjuvant endocrine therapy, the rest of a year of anti-HER2 therapy — each remove a
constant ``k`` (ln-cells/day) from the growth drive from day ``e_0`` to ``e_1``: ``Ĥ`` loses
``k (E(min(t, e_1)) - E(e_0)) / β`` (:func:`course_shift`). Between consecutive course days the total ``k`` is
constant, so ``Ĥ`` and ``V̂`` are monotone on each piece and the running ``sup_r min(V̂(r), min Ĥ)`` that decides
visibility is taken at the piece ends (:func:`reach_after_window`): colonies shrink and the smallest die while
``k > α``, and the survivors regrow once therapy stops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chemomet.model.dissemination import untreated_cumulative_founding
from chemomet.model.parameters import PatientParameters
from chemomet.model.timeline import Timeline


def _hermite_coefficients(y0, y1, d0, d1, h):
    """``p(s) = y0 + h d0 s + a2 s² + a3 s³`` on ``s ∈ [0, 1]`` through values ``y`` and slopes ``d`` (per day)."""
    a2 = -3.0 * y0 - 2.0 * h * d0 + 3.0 * y1 - h * d1
    a3 = 2.0 * y0 + h * d0 - 2.0 * y1 + h * d1
    return a2, a3


def hermite_extreme(y0, y1, d0, d1, h, take_max: bool):
    """Extremum over each interval of the cubic Hermite interpolant of values ``y`` and slopes ``d``.

    Sampling a function only at nodes misses minima between them (error ``O(h²)``); the Hermite cubic through
    the exact values and derivatives at both ends brings that to ``O(h⁴)``. Arrays broadcast; ``h`` in days.
    Returns ``(value, s)`` with ``s ∈ [0, 1]`` the extremum's position.
    """
    a2, a3 = _hermite_coefficients(y0, y1, d0, d1, h)
    pick_end = (y1 > y0) if take_max else (y1 < y0)
    best = np.where(pick_end, y1, y0)
    where = np.where(pick_end, 1.0, 0.0)
    # roots of p'(s) = h d0 + 2 a2 s + 3 a3 s^2 on (0, 1)
    qa, qb, qc = 3.0 * a3, 2.0 * a2, h * d0
    disc = qb * qb - 4.0 * qa * qc
    sq = np.sqrt(np.maximum(disc, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        linear = np.abs(qa) < 1e-14 * (np.abs(qb) + np.abs(qc) + 1e-300)
        roots = [
            np.where(linear, -qc / qb, (-qb - sq) / (2.0 * qa)),
            np.where(linear, np.nan, (-qb + sq) / (2.0 * qa)),
        ]
    for s in roots:
        val = y0 + s * (h * d0 + s * (a2 + s * a3))
        better = (val > best) if take_max else (val < best)
        ok = (disc >= 0) & (s > 0) & (s < 1) & better
        best = np.where(ok, val, best)
        where = np.where(ok, s, where)
    return best, where


def hermite_crossing(y0, y1, d0, d1, h, target, s0):
    """Solve ``p(s) = target`` on [0, 1] for the Hermite cubic ``p`` (Newton from ``s0``, kept in [0, 1])."""
    a2, a3 = _hermite_coefficients(y0, y1, d0, d1, h)
    s = s0
    for _ in range(5):  # Newton iterations on every interval at once
        val = y0 + s * (h * d0 + s * (a2 + s * a3)) - target
        der = h * d0 + s * (2.0 * a2 + 3.0 * a3 * s)
        with np.errstate(divide="ignore", invalid="ignore"):
            s = np.clip(np.where(der > 0, s - val / der, s), 0.0, 1.0)
    return s


@dataclass(frozen=True)
class WindowKill:
    """The kill one clone's colonies meet inside the window, per patient.

    ``weighted``: ``∫_c^t e^{β(r-c)} k(r) dr`` at the window nodes, ``(n, nodes)`` (ln-cells × ``E``), with ``k``
    the clone's total kill rate; ``rate_start`` / ``rate_end``: ``k`` at each interval's start (after any bolus)
    and end (before any bolus), ``(n, intervals)`` (ln-cells/day).

    Examples
    --------
    >>> import numpy as np
    >>> kill = WindowKill(np.zeros((2, 3)), np.ones((2, 2)), np.ones((2, 2)))
    >>> kill.take([1]).weighted.shape
    (1, 3)
    """

    weighted: np.ndarray
    rate_start: np.ndarray
    rate_end: np.ndarray

    def take(self, rows) -> WindowKill:
        """The patients ``rows`` (any NumPy index; None: all)."""
        if rows is None:
            return self
        return WindowKill(self.weighted[rows], self.rate_start[rows], self.rate_end[rows])


def _window_curves(params, tl, growth, kill: WindowKill, L):
    """Ĥ and V̂ at the nodes and their exact extrema over each interval (Hermite), per patient."""
    a = params.log_plateau[:, None]
    b = params.beta_per_day[:, None]
    h = a * growth - kill.weighted
    v = h - L * growth
    step = np.diff(tl.nodes)
    g0, g1 = growth[:, :-1], growth[:, 1:]
    dh0 = g0 * (a * b - kill.rate_start)
    dh1 = g1 * (a * b - kill.rate_end)
    dv0, dv1 = dh0 - L * b * g0, dh1 - L * b * g1
    h_low, s_low = _interior_extreme(h, dh0, dh1, step, take_max=False)
    v_high, _ = _interior_extreme(v, dv0, dv1, step, take_max=True)
    return h, v, h_low, v_high, (dh0, dh1, step, s_low)


def _interior_extreme(y, d0, d1, step, take_max: bool):
    """Per-interval extremum of node values ``y`` (n, nodes) with end slopes ``d0``/``d1`` (n, intervals).

    Between boluses the kill rate only decays, so ``Ĥ'`` and ``V̂'`` change sign at most once per interval,
    from - to + (a minimum). An interior minimum needs ``d0 < 0 < d1`` and an interior maximum ``d0 > 0 > d1``;
    the cubic is solved on those intervals only, the rest take the better end point.
    """
    y0, y1 = y[:, :-1], y[:, 1:]
    best = np.maximum(y0, y1) if take_max else np.minimum(y0, y1)
    where = np.where((y1 > y0) if take_max else (y1 < y0), 1.0, 0.0)
    inside = (d0 > 0) & (d1 < 0) if take_max else (d0 < 0) & (d1 > 0)
    if np.any(inside):
        rows, cols = np.nonzero(inside)
        val, pos = hermite_extreme(
            y0[rows, cols], y1[rows, cols], d0[rows, cols], d1[rows, cols], step[cols], take_max
        )
        best[rows, cols], where[rows, cols] = val, pos
    return best, where


def course_shift(b, c, t, course) -> np.ndarray:
    """``k ∫_{e_0}^{min(t, e_1)} e^{β(r - c)} dr`` (ln-cells × ``E``), 0 before ``e_0``, shape ``(n, len(t))``.

    ``b``: ``β`` per patient ``(n, 1)`` (1/day); ``c``: the window start (days); ``t``: ``(1, m)`` times (days);
    ``course``: ``(k (n,), e_0, e_1)`` with ``k`` in ln-cells/day and ``e_0``, ``e_1`` in days.

    Examples
    --------
    >>> import numpy as np
    >>> b = np.array([[1e-3]])
    >>> shift = course_shift(b, 0.0, np.array([[0.0, 100.0, 300.0]]), (np.array([0.01]), 50.0, 200.0))
    >>> bool(np.allclose(shift, 0.01 / 1e-3 * (np.exp(1e-3 * np.array([50.0, 100.0, 200.0])) - np.exp(0.05))))
    True
    """
    k, e0, e1 = course
    clipped = np.clip(t, e0, e1)
    return np.asarray(k, float)[:, None] * (np.exp(b * (clipped - c)) - np.exp(b * (e0 - c))) / b


def reach_after_window(a, b, L, c, g_shift, h_min, t, courses=()) -> np.ndarray:
    """``Q(t) = sup_{end ≤ r ≤ t} min(V̂(r), h_min, min_{[end, r]} Ĥ)``: a colony still alive after the window
    with ``Ĥ(σ) = x`` is visible by ``t`` iff ``x ≤ Q(t)``. Shape ``(n, len(t))``; valid for ``t`` after the window.

    ``a``, ``b``: ``ln K`` and ``β`` per patient ``(n, 1)``; ``L``: ln of the visible size; ``c``: window start
    (days); ``g_shift``: the kill ``∫ e^{β(r-c)} k dr`` over the whole window ``(n, 1)`` (0 without a window);
    ``h_min``: the running minimum of ``Ĥ`` over the window ``(n, 1)`` (``+inf`` where only later deaths count);
    ``t``: ``(1, m)`` days; ``courses``: constant-rate courses ``(k, e_0, e_1)`` after the window (see
    :func:`course_shift`), each with ``e_0`` at or after the window's end.

    Without courses ``V̂`` rises after the window and ``Q = min(V̂(t), h_min)``. With them, the total rate is
    constant between consecutive course days ``d_j``, where ``Ĥ`` and ``V̂`` are monotone and never rise and
    fall against each other (``V̂`` rising forces ``Ĥ`` to rise), so the supremum over a piece sits at one of its
    ends: ``Q(t) = max(max_{d_j ≤ t} min(V̂(d_j), m_j), min(V̂(t), m(t)))`` with ``m`` the running minimum of ``Ĥ``
    (from ``h_min``) over the course days passed.

    Examples
    --------
    >>> import numpy as np
    >>> a, b = np.array([[30.0]]), np.array([[1e-3]])
    >>> t = np.array([[100.0, 2000.0]])
    >>> plain = reach_after_window(a, b, 18.4, 0.0, np.zeros((1, 1)), np.full((1, 1), np.inf), t)
    >>> bool(np.allclose(plain, (30.0 - 18.4) * np.exp(1e-3 * t)))
    True
    >>> treated = reach_after_window(a, b, 18.4, 0.0, np.zeros((1, 1)), np.full((1, 1), np.inf), t,
    ...                              [(np.array([0.02]), 50.0, 1876.0)])
    >>> bool(treated[0, 0] < plain[0, 0] and treated[0, 1] < plain[0, 1])
    True
    """

    def v_at(day):
        shift = sum((course_shift(b, c, day, course) for course in courses), np.zeros(1))
        return (a - L) * np.exp(b * (day - c)) - g_shift - shift

    v_t = v_at(t)
    q = np.minimum(v_t, h_min)
    if not courses:
        return q
    m = h_min + np.zeros_like(a)  # running minimum of Ĥ, per patient (n, 1)
    best = np.full_like(m, -np.inf)
    for day in sorted({d for _, e0, e1 in courses for d in (e0, e1)}):  # a loop over the few course days
        d = np.full((1, 1), day)
        v_d = v_at(d)
        m = np.minimum(m, v_d + L * np.exp(b * (day - c)))
        best = np.maximum(best, np.minimum(v_d, m))
        q = np.where(t >= day, np.maximum(best, np.minimum(v_t, m)), q)
    return q


def visible_by(
    params: PatientParameters,
    tl: Timeline | None,
    growth: np.ndarray | None,
    kill: WindowKill | None,
    share_pre: np.ndarray,
    window_mass: np.ndarray | None,
    log_visible: float,
    founding_end: float,
    times: np.ndarray,
    starts_before=None,
    courses=(),
) -> np.ndarray:
    """Expected colonies of one clone visible by each of ``times``: ``Λ(t)``, shape ``(n, len(times))``.

    kill: the :class:`WindowKill` this clone's colonies meet in the window (None without one); share_pre: the
    clone's share of founding before the window; window_mass: expected colonies starting to grow in each window
    interval ``(n, intervals)``; founding_end: last day on which colonies start growing before the window.
    starts_before: optional ``f(upper)`` giving the expected colonies that started growing before ``upper``
    (default: this clone's share of the untreated founding; dormancy passes its wake-up count instead).
    courses: constant-rate courses ``(k (n,), e_0, e_1)`` after the window, e.g. endocrine therapy (ln-cells/day,
    days; see :func:`reach_after_window`).
    """
    a = params.log_plateau[:, None]
    b = params.beta_per_day[:, None]
    L = log_visible
    t = np.asarray(times, dtype=float)[None, :]
    c = tl.start if tl is not None else 0.0
    e_t = np.exp(b * (t - c))
    if tl is None:
        psi = reach_after_window(a, b, L, c, 0.0, np.inf, t, courses)
        founding_limit = founding_end
    else:
        curves = _window_curves(params, tl, growth, kill, L)
        h, v, h_low, v_high, _ = curves
        # running minimum of Ĥ through the end of each interval, counting its dips between nodes
        h_run = np.minimum.accumulate(np.minimum(h[:, 1:], h_low), axis=1)
        h_run = np.concatenate([h[:, :1], h_run], axis=1)
        phi_nodes = np.minimum(v, h_run)
        phi_nodes[:, 1:] = np.maximum(phi_nodes[:, 1:], np.minimum(v_high, h_run[:, 1:]))
        psi_nodes = np.maximum.accumulate(phi_nodes, axis=1)
        h_min = h_run[:, -1:]
        g_end = kill.weighted[:, -1:]
        before = t < tl.start
        after = t >= tl.end
        idx = np.clip(np.searchsorted(tl.nodes, t[0], side="right") - 1, 0, tl.nodes.size - 1)
        psi_in = psi_nodes[:, idx]
        psi_after = np.maximum(psi_nodes[:, -1:], reach_after_window(a, b, L, c, g_end, h_min, t, courses))
        psi = np.where(before, (a - L) * e_t, np.where(after, psi_after, psi_in))
        founding_limit = min(founding_end, tl.start)
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma_star = c + np.log(np.maximum(psi, 0.0) / a) / b
    sigma_star = np.where(psi > 0, sigma_star, -np.inf)
    upper = np.minimum(sigma_star, founding_limit)
    if starts_before is None:
        lam = share_pre[:, None] * untreated_cumulative_founding(params, upper)
    else:
        lam = starts_before(np.where(np.isfinite(upper), upper, -1e7))
    lam = np.where(np.isfinite(upper), lam, 0.0)
    if tl is not None and window_mass is not None and window_mass.shape[1] > 0:
        lam = lam + _window_founded_visible(params, tl, kill, window_mass, L, t[0], curves, courses)
    return lam


def _window_founded_visible(params, tl, kill, mass, L, times, curves, courses=()):
    """Λ contribution of colonies founded inside the window (see module docstring).

    On a rising interval the surviving founders form a prefix whose ``Ĥ(σ)`` spans ``[Ĥ_i, Ĥ_i + f ΔĤ]``,
    with the interval's founding mass spread evenly over it. After the window such a colony is visible by
    ``t`` iff ``Ĥ(σ) ≤ X(t) = V̂(t)``, so ``Λ`` is a sum of linear ramps in ``X`` (a piecewise-linear CDF).
    """
    a = params.log_plateau[:, None]
    b = params.beta_per_day[:, None]
    nf = mass.shape[1]
    h, v, h_low, v_high, (dh0, dh1, step, s_low) = curves
    g_end = kill.weighted[:, -1:]
    # suffix minimum of Ĥ over everything after node i + 1 (nodes and dips between them)
    tail_low = np.minimum(h[:, 1:], h_low)
    suffix_min = np.minimum.accumulate(tail_low[:, ::-1], axis=1)[:, ::-1]  # column j: from interval j on
    suffix_min = np.concatenate([suffix_min, h[:, -1:]], axis=1)
    h0, h1 = h[:, :nf], h[:, 1 : nf + 1]
    # Within interval i, colonies founded before its lowest point die there; after it, Ĥ rises and the
    # founders survive while Ĥ(σ) stays below every later value (the threshold), up to the crossing s_cross.
    threshold = suffix_min[:, 1 : nf + 1]
    p_low, s_start = h_low[:, :nf], s_low[:, :nf]
    alive = p_low < threshold
    whole = alive & (h1 <= threshold)
    cut = alive & ~whole
    s_cross = np.where(whole, 1.0, 0.0)
    if np.any(cut):
        rows, cols = np.nonzero(cut)
        lo_s, lo_p = s_start[rows, cols], p_low[rows, cols]
        guess = lo_s + (1.0 - lo_s) * (threshold[rows, cols] - lo_p) / (h1[rows, cols] - lo_p)
        s_cross[rows, cols] = hermite_crossing(
            h0[rows, cols],
            h1[rows, cols],
            dh0[rows, cols],
            dh1[rows, cols],
            step[cols],
            threshold[rows, cols],
            np.clip(guess, lo_s, 1.0),
        )
    frac = np.where(alive, np.maximum(s_cross - s_start, 0.0), 0.0)
    alive_mass = mass * frac
    h_bottom = np.where(alive, p_low, h0)
    h_top = np.where(cut, threshold, np.where(alive, h1, h0))
    t = np.asarray(times, dtype=float)[None, :]
    reach = reach_after_window(a, b, L, tl.start, g_end, np.inf, t, courses)
    x_query = np.where(t >= tl.end, reach, -np.inf)
    lam = _ramp_cdf(h_bottom, h_top, alive_mass, x_query)

    # Could any window-founded colony become visible inside the window?  (V̂ reaching Ĥ(σ) for r > σ)
    suffix_max_v = np.maximum.accumulate(np.maximum(v[:, 1:], v_high)[:, ::-1], axis=1)[:, ::-1]
    fast = np.any(h[:, :nf] <= suffix_max_v[:, :nf], axis=1)
    if np.any(fast):
        idx = np.flatnonzero(fast)
        t_vis, mass_f = _exact_window_visibility(
            tl, h[idx], v[idx], mass[idx], a[idx], b[idx], g_end[idx], L
        )
        if courses:
            # colonies not yet visible at the window's end meet the courses: compare with Q(t) directly
            in_window = t_vis <= tl.end
            h_mid = 0.5 * (h[idx, :nf] + h[idx, 1 : nf + 1])
            alive_post = np.isfinite(t_vis) & ~in_window
            reached = h_mid[:, :, None] <= x_query[idx][:, None, :]
            post = np.einsum("rk,rkm->rm", np.where(alive_post, mass_f, 0.0), reached)
            t_vis = np.where(in_window, t_vis, np.inf)
            mass_f = np.where(in_window, mass_f, 0.0)
        else:
            post = 0.0
        order = np.argsort(t_vis, axis=1)
        cum = np.cumsum(np.take_along_axis(mass_f, order, axis=1), axis=1)
        query = np.broadcast_to(t, (idx.size, t.shape[1]))
        lam[idx] = _rowwise_cum_leq(np.take_along_axis(t_vis, order, axis=1), cum, query) + post
    return lam


DIRECT_RAMP_QUERIES = 8


def _rowwise_positions(sorted_vals: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Row-wise ``searchsorted(sorted_vals[r], query[r], side="right")``, vectorised over rows.

    A binary search by descending powers of two: exact, and each row's answer depends on that row only.
    """
    n, p = sorted_vals.shape
    rows = np.arange(n)[:, None]
    pos = np.zeros(query.shape, dtype=np.int64)
    step = 1 << max(p.bit_length() - 1, 0)
    while step:  # log2(p) passes over all queries at once
        cand = pos + step
        ok = cand <= p
        below = sorted_vals[rows, np.minimum(cand, p) - 1] <= query
        pos = np.where(ok & below, cand, pos)
        step >>= 1
    return pos


def _rowwise_cum_leq(sorted_vals: np.ndarray, cum_mass: np.ndarray, query: np.ndarray) -> np.ndarray:
    """For each row, the cumulative mass of entries ``<= query`` (rows of ``sorted_vals`` ascending)."""
    if sorted_vals.shape[1] == 0:
        return np.zeros(query.shape)
    pos = _rowwise_positions(sorted_vals, query)
    padded = np.concatenate([np.zeros((sorted_vals.shape[0], 1)), cum_mass], axis=1)
    return np.take_along_axis(padded, pos, axis=1)


def _ramp_cdf(lo: np.ndarray, hi: np.ndarray, mass: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Row-wise ``Σ_k mass_k · clip((x - lo_k)/(hi_k - lo_k), 0, 1)`` at each query ``x``.

    Built as a piecewise-linear CDF: each ramp adds slope ``+m/w`` at ``lo`` and ``-m/w`` at ``hi``; breakpoints
    are sorted once per row and queries located by a vectorised row-wise search.
    """
    n = lo.shape[0]
    width = np.maximum(hi - lo, 1e-12 * np.maximum(np.abs(lo), 1.0))
    if query.shape[1] <= DIRECT_RAMP_QUERIES:
        # few queries (summaries): sum the ramps directly, cheaper than sorting the breakpoints
        out = np.empty(query.shape)
        for j in range(query.shape[1]):  # a loop over the few output times, not over integration steps
            x = query[:, j : j + 1]
            out[:, j] = np.sum(mass * np.clip((x - lo) / width, 0.0, 1.0), axis=1)
        return np.where(np.isfinite(query), out, 0.0)
    slope = np.where(mass > 0, mass / width, 0.0)
    lo_eff = np.where(mass > 0, lo, np.inf)
    x = np.concatenate([lo_eff, np.where(mass > 0, lo + width, np.inf)], axis=1)
    ds = np.concatenate([slope, -slope], axis=1)
    order = np.argsort(x, axis=1)
    xs = np.take_along_axis(x, order, axis=1)
    ds = np.take_along_axis(ds, order, axis=1)
    slope_after = np.maximum(np.cumsum(ds, axis=1), 0.0)  # exactly flat past the last ramp, never negative
    slope_after[:, -1] = 0.0
    gaps = np.diff(np.where(np.isfinite(xs), xs, 0.0), axis=1)
    value_at = np.concatenate(
        [
            np.zeros((n, 1)),
            np.cumsum(slope_after[:, :-1] * np.where(np.isfinite(xs[:, 1:]), gaps, 0.0), axis=1),
        ],
        axis=1,
    )
    pos = _rowwise_positions(xs, query) - 1  # last breakpoint <= query
    valid = pos >= 0
    j = np.clip(pos, 0, xs.shape[1] - 1)
    x_j = np.take_along_axis(xs, j, axis=1)
    out = np.take_along_axis(value_at, j, axis=1) + np.take_along_axis(slope_after, j, axis=1) * (
        np.where(np.isfinite(query), query, 0.0) - np.where(np.isfinite(x_j), x_j, 0.0)
    )
    total = mass.sum(axis=1, keepdims=True)
    return np.where(valid & np.isfinite(query), np.clip(out, 0.0, total), 0.0)


def _sparse_table(x: np.ndarray, op) -> list[np.ndarray]:
    """Levels ``T[k][:, j] = op(x[:, j : j + 2^k])`` (padded with the identity) for range queries."""
    levels = [x]
    width = 1
    while 2 * width <= x.shape[1]:
        prev = levels[-1]
        nxt = prev.copy()
        nxt[:, :-width] = op(prev[:, :-width], prev[:, width:])
        levels.append(nxt)
        width *= 2
    return levels


def _first_index(levels: list[np.ndarray], rows: np.ndarray, start: np.ndarray, hit) -> np.ndarray:
    """Per query, the first column ``j >= start`` whose value satisfies ``hit(value)``; ``n`` if none.

    ``levels`` is a sparse table built with the operation under which ``hit`` is monotone (max for ``>=``,
    min for ``<``): we jump over blocks of ``2^k`` columns that contain no hit, from the largest block down.
    """
    n = levels[0].shape[1]
    pos = start.copy()
    for k in range(len(levels) - 1, -1, -1):  # a loop over log2(n) levels, not over time steps
        width = 1 << k
        ok = pos + width <= n
        block = levels[k][rows, np.minimum(pos, n - 1)]
        jump = ok & ~hit(block)
        pos = np.where(jump, pos + width, pos)
    last = levels[0][rows, np.minimum(pos, n - 1)]
    return np.where((pos < n) & hit(last), pos, n)


def _exact_window_visibility(tl, h, v, mass, a, b, g_end, L):
    """Exact visibility times for patients whose window-founded colonies may become visible in the window.

    The colony of interval ``i`` (value ``Ĥ`` at its midpoint) becomes visible at the first node ``j > i`` with
    ``V̂_j ≥ Ĥ`` unless ``Ĥ`` fell below its value at an earlier node (eradication); if neither happens in the
    window it becomes visible after it (closed form), and if it is eradicated first, never.
    """
    n, nodes = h.shape
    nf = mass.shape[1]
    h_mid = 0.5 * (h[:, :nf] + h[:, 1 : nf + 1])
    rows, intervals = np.nonzero(np.ones((n, nf), bool))
    hq = h_mid[rows, intervals]
    start = intervals + 1
    first_vis = _first_index(_sparse_table(v, np.maximum), rows, start, lambda x: x >= hq)
    first_dead = _first_index(_sparse_table(h, np.minimum), rows, start, lambda x: x < hq)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_post = tl.start + np.log((hq + g_end[rows, 0]) / (a[rows, 0] - L)) / b[rows, 0]
    t_in = tl.nodes[np.minimum(first_vis, nodes - 1)]
    t_vis = np.where(first_vis < first_dead, t_in, np.where(first_dead >= nodes, t_post, np.inf))
    t_vis = t_vis.reshape(n, nf)
    return t_vis, np.where(np.isfinite(t_vis), mass, 0.0)
