"""Fused per-patient kernels, part 2: one clone's colonies — window curves, visibility and the window-founded ``Λ``.

Scalar (numba) counterparts of :func:`chemomet.model.metastases.visible_by` (its window part) and
:func:`~chemomet.model.metastases._window_founded_visible` for one patient and one clone, operation by operation
(see :mod:`chemomet.model.metastases` for the mathematics). ``Ĥ = a E - W`` and ``V̂ = Ĥ - L E`` (ln-cells × E,
with ``E = e^{β(t-c)}``) are formed node by node, their dips between nodes found on the cubic Hermite
interpolant, and the running extrema that decide each colony's fate taken in two sweeps (forward, backward).
Times in days, rates in 1/day or ln-cells/day, ``Λ`` in expected colonies.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, error_model="numpy")
def hermite_extreme(y0, y1, d0, d1, h, take_max):
    """Extremum of the cubic Hermite interpolant on one interval, ``(value, s)`` (see
    :func:`chemomet.model.metastases.hermite_extreme`)."""
    a2 = -3.0 * y0 - 2.0 * h * d0 + 3.0 * y1 - h * d1
    a3 = 2.0 * y0 + h * d0 - 2.0 * y1 + h * d1
    pick_end = (y1 > y0) if take_max else (y1 < y0)
    best = y1 if pick_end else y0
    where = 1.0 if pick_end else 0.0
    qa, qb, qc = 3.0 * a3, 2.0 * a2, h * d0
    disc = qb * qb - 4.0 * qa * qc
    sq = math.sqrt(max(disc, 0.0))
    linear = abs(qa) < 1e-14 * (abs(qb) + abs(qc) + 1e-300)
    for k in range(2):
        if linear:
            if k == 1:
                continue
            s = -qc / qb if qb != 0.0 else np.nan
        else:
            s = ((-qb - sq) if k == 0 else (-qb + sq)) / (2.0 * qa)
        val = y0 + s * (h * d0 + s * (a2 + s * a3))
        better = (val > best) if take_max else (val < best)
        if disc >= 0 and s > 0 and s < 1 and better:
            best = val
            where = s
    return best, where


@njit(cache=True, nogil=True, error_model="numpy")
def hermite_crossing(y0, y1, d0, d1, h, target, s0):
    """``p(s) = target`` on [0, 1] for the Hermite cubic (five Newton steps from ``s0``, kept in [0, 1])."""
    a2 = -3.0 * y0 - 2.0 * h * d0 + 3.0 * y1 - h * d1
    a3 = 2.0 * y0 + h * d0 - 2.0 * y1 + h * d1
    s = s0
    for _ in range(5):
        val = y0 + s * (h * d0 + s * (a2 + s * a3)) - target
        der = h * d0 + s * (2.0 * a2 + 3.0 * a3 * s)
        if der > 0:
            s = s - val / der
        s = min(max(s, 0.0), 1.0)
    return s


@njit(cache=True, nogil=True, error_model="numpy")
def clone_curves(a, b, L, g, W, rs, re, nodes, hv, vv, dh0, dh1, hlow, slow, psi, tmin, fastv):
    """``Ĥ``, ``V̂`` at the nodes (``hv``, ``vv``), end slopes of ``Ĥ`` per interval (``dh0``, ``dh1``), the dip of
    ``Ĥ`` in each interval (``hlow`` at ``slow`` ∈ [0, 1]), the running ``ψ`` at the nodes (``psi``), the suffix
    minimum of ``Ĥ`` from each node on (``tmin``) and whether ``V̂`` reaches above ``Ĥ`` later (``fastv[i]``: the
    largest ``V̂`` after node ``i``). ``W`` is the clone's weighted kill at the nodes and ``rs``/``re`` its kill rate
    at each interval's start and end (ln-cells/day). Returns ``h_min``, the lowest ``Ĥ`` over the window."""
    n = nodes.size
    ab = a * b
    lb = L * b
    for j in range(n):
        hv[j] = a * g[j] - W[j]
        vv[j] = hv[j] - L * g[j]
    run = hv[0]
    best = min(vv[0], run)
    psi[0] = best
    for i in range(n - 1):
        step = nodes[i + 1] - nodes[i]
        g0 = g[i]
        g1 = g[i + 1]
        d0 = g0 * (ab - rs[i])
        d1 = g1 * (ab - re[i])
        dh0[i] = d0
        dh1[i] = d1
        y0 = hv[i]
        y1 = hv[i + 1]
        low = min(y0, y1)
        where = 1.0 if y1 < y0 else 0.0
        if d0 < 0 and d1 > 0:
            low, where = hermite_extreme(y0, y1, d0, d1, step, False)
        hlow[i] = low
        slow[i] = where
        e0 = d0 - lb * g0
        e1 = d1 - lb * g1
        v0 = vv[i]
        v1 = vv[i + 1]
        high = max(v0, v1)
        if e0 > 0 and e1 < 0:
            high, _ = hermite_extreme(v0, v1, e0, e1, step, True)
        fastv[i] = max(v1, high)
        tail = min(y1, low)
        run = tail if i == 0 else min(run, tail)
        phi = max(min(v1, run), min(high, run))
        best = max(best, phi)
        psi[i + 1] = best
    tmin[n - 1] = hv[n - 1]
    acc = np.inf
    vmax = -np.inf
    for i in range(n - 2, -1, -1):
        acc = min(acc, min(hv[i + 1], hlow[i]))
        tmin[i] = acc
        vmax = max(vmax, fastv[i])
        fastv[i] = vmax
    return run


@njit(cache=True, nogil=True, error_model="numpy")
def founder_ramps(nf, hv, dh0, dh1, hlow, slow, tmin, nodes, lo, width, frac):
    """For each of the first ``nf`` intervals, the colonies founded there that survive the window: their share of the
    interval's founding (``frac``) and the ramp ``[lo, lo + width]`` their ``Ĥ(σ)`` spans (ln-cells × E)."""
    for i in range(nf):
        thr = tmin[i + 1]
        p_low = hlow[i]
        s_start = slow[i]
        h0 = hv[i]
        h1 = hv[i + 1]
        alive = p_low < thr
        whole = alive and h1 <= thr
        cut = alive and not whole
        s_cross = 1.0 if whole else 0.0
        if cut:
            guess = s_start + (1.0 - s_start) * (thr - p_low) / (h1 - p_low)
            guess = min(max(guess, s_start), 1.0)
            s_cross = hermite_crossing(h0, h1, dh0[i], dh1[i], nodes[i + 1] - nodes[i], thr, guess)
        frac[i] = max(s_cross - s_start, 0.0) if alive else 0.0
        bottom = p_low if alive else h0
        top = thr if cut else (h1 if alive else h0)
        lo[i] = bottom
        width[i] = max(top - bottom, 1e-12 * max(abs(bottom), 1.0))


@njit(cache=True, nogil=True, error_model="numpy")
def ramps_direct(nf, mass, frac, lo, width, xq, out):
    """``Σ_i mass_i frac_i clip((x - lo_i)/width_i, 0, 1)`` at each query ``x`` of ``xq`` (colonies; 0 where ``x``
    is not finite), in one pass over the intervals; writes ``out``."""
    nq = xq.size
    for q in range(nq):
        out[q] = 0.0
    for i in range(nf):
        am = mass[i] * frac[i]
        if am == 0.0:
            continue
        for q in range(nq):
            x = xq[q]
            if math.isfinite(x):
                out[q] += am * min(max((x - lo[i]) / width[i], 0.0), 1.0)


@njit(cache=True, nogil=True, error_model="numpy")
def ramp_sorted(nf, mass, frac, lo, width, xq, out):
    """The same sum at many queries ``xq`` as a piecewise-linear CDF over sorted breakpoints (as
    :func:`chemomet.model.metastases._ramp_cdf` does for more than a few queries); writes ``out``."""
    m2 = 2 * nf
    x = np.empty(m2)
    ds = np.empty(m2)
    total = 0.0
    for i in range(nf):
        am = mass[i] * frac[i]
        total += am
        slope = am / width[i] if am > 0 else 0.0
        x[i] = lo[i] if am > 0 else np.inf
        x[nf + i] = lo[i] + width[i] if am > 0 else np.inf
        ds[i] = slope
        ds[nf + i] = -slope
    order = np.argsort(x)
    xs = x[order]
    sl = np.empty(m2)
    acc = 0.0
    for k in range(m2):
        acc += ds[order[k]]
        sl[k] = max(acc, 0.0)
    if m2:
        sl[m2 - 1] = 0.0
    val = np.empty(m2)
    v = 0.0
    for k in range(m2):
        val[k] = v
        if k + 1 < m2:
            gap = (xs[k + 1] if math.isfinite(xs[k + 1]) else 0.0) - (xs[k] if math.isfinite(xs[k]) else 0.0)
            v += sl[k] * (gap if math.isfinite(xs[k + 1]) else 0.0)
    for q in range(xq.size):
        xv = xq[q]
        if m2 == 0 or not math.isfinite(xv):
            out[q] = 0.0
            continue
        pos = np.searchsorted(xs, xv, side="right") - 1
        if pos < 0:
            out[q] = 0.0
            continue
        xj = xs[pos] if math.isfinite(xs[pos]) else 0.0
        out[q] = min(max(val[pos] + sl[pos] * (xv - xj), 0.0), total)


@njit(cache=True, nogil=True, error_model="numpy")
def exact_visibility(nf, a, b, L, g_end, hv, vv, nodes, tvis, hmid):
    """Visibility time of the colonies founded in each of the first ``nf`` intervals (days; inf: eradicated), for a
    patient whose window-founded colonies may become visible inside the window: the first later node where ``V̂``
    reaches the colony's ``Ĥ`` (its interval midpoint value) unless ``Ĥ`` fell below it first; after the window,
    the closed form (:func:`chemomet.model.metastases._exact_window_visibility`)."""
    n = nodes.size
    c = nodes[0]
    for i in range(nf):
        hq = 0.5 * (hv[i] + hv[i + 1])
        hmid[i] = hq
        t = np.inf
        found = False
        for j in range(i + 1, n):
            if hv[j] < hq:
                found = True
                break
            if vv[j] >= hq:
                t = nodes[j]
                found = True
                break
        if not found:
            t = c + math.log((hq + g_end) / (a - L)) / b
        tvis[i] = t


@njit(cache=True, nogil=True, error_model="numpy")
def window_lambda(nf, mass, frac, lo, width, fast, courses, end, times, xq, a, b, L, g_end, hv, vv, nodes,
                  tvis, hmid, buf, out, vis_ready):
    """``Λ`` at ``times`` of the colonies founded (or woken) in the first ``nf`` window intervals with ``mass``
    colonies each (expected colonies): a sum of ramps in ``X(t)`` (``xq``: ``Q(t)`` after the window, ``-inf``
    before its end), or, for a ``fast`` patient, the exact visibility times (``courses``: whether constant-rate
    courses follow the window; ``vis_ready``: ``tvis`` and ``hmid`` already hold :func:`exact_visibility` of at
    least ``nf`` intervals of this clone, so several masses of one clone share them). Writes ``out``."""
    nt = times.size
    if not fast:
        if nt <= 8:
            ramps_direct(nf, mass, frac, lo, width, xq, out)
        else:
            ramp_sorted(nf, mass, frac, lo, width, xq, out)
        return
    if not vis_ready:
        exact_visibility(nf, a, b, L, g_end, hv, vv, nodes, tvis, hmid)
    for q in range(nt):
        t = times[q]
        acc = 0.0
        post = 0.0
        for i in range(nf):
            tv = tvis[i]
            if not math.isfinite(tv):
                continue
            if courses and tv > end:
                if hmid[i] <= xq[q]:
                    post += mass[i]
            elif tv <= t:
                acc += mass[i]
        out[q] = acc + post
