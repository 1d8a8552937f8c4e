"""The fused engine: each patient's window computed in one pass by a compiled (numba) kernel.

The NumPy engine evaluates the treatment window as a few hundred passes over ``(patients × nodes)`` arrays, so it is
bound by memory traffic. Here one kernel call (:func:`window_kernel`) walks the patients of a chunk one by one and,
for each, the window nodes once: the primary and its resistant share (:mod:`chemomet.model.fused_primary`), the
colonies it founds, and for each clone the window curves, visibility and the window-founded ``Λ``
(:mod:`chemomet.model.fused_colonies`), with dormant wake-ups where the patient has dormancy. Per-node state lives
in a few node-length buffers reused from patient to patient; what leaves the kernel is ``(patients × output times)``.
Exponentials ``e^{β(t_i - c)}`` are taken by recurrence on the schedule's shared grid (one ``e^{βh}`` per distinct
step), the resistant clone is skipped where a patient has none, the anti-HER2 terms where she is HER2-negative.
Schedules that differ only in the microenvironment (NACT with and without an accompanying drug acting on doorways,
macrophages or mobilisation) share one pass (:func:`fused_windows`): the primary and the colonies' window curves are
computed once per patient, the founding and what depends on it once per schedule, each bit for bit as alone.

The closed forms around the window — founding before it (with the exponential integral), dormant pools before it —
are ``(patients × output times)`` and stay in NumPy (:func:`fused_window`), as do random draws: the kernel draws
nothing, so results do not depend on chunking or threads. The kernel releases the GIL; the engine runs chunks on
threads (:func:`chemomet.model.engine.simulate_schedule`), so there is no nested parallelism and no OpenMP runtime
to clash with forked worker processes.

:func:`chemomet.model.engine.simulate_schedule` uses this engine unless told ``engine="numpy"`` (the readable
reference, tied to it by ``tests/test_fused_engine.py``). Units: days, 1/day, ln-cells, expected colonies.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from chemomet.model import dissemination as dis
from chemomet.model.dormancy import untreated_pool
from chemomet.model.fused_colonies import clone_curves, exact_visibility, founder_ramps, window_lambda
from chemomet.model.fused_primary import founding_masses, founding_sizes, growth_factors, primary, shedding_mean
from chemomet.model.parameters import PatientParameters
from chemomet.model.timeline import Timeline


@njit(cache=True, nogil=True, error_model="numpy")
def _course_shift(b, c, t, ck, ce0, ce1, e_start):
    """``Σ_k k (E(clip(t, e_0, e_1)) - E(e_0)) / β`` over the courses (ln-cells × E)."""
    shift = 0.0
    for k in range(ce0.size):
        clipped = min(max(t, ce0[k]), ce1[k])
        shift += ck[k] * (np.exp(b * (clipped - c)) - e_start[k]) / b
    return shift


@njit(cache=True, nogil=True, error_model="numpy")
def _reach(v_t, t, h_min, L, vd, ed, cdays):
    """``Q(t)`` of :func:`chemomet.model.metastases.reach_after_window` from ``V̂(t)`` and ``V̂``, ``E`` at the course
    days (none: ``min(V̂(t), h_min)``)."""
    q = min(v_t, h_min)
    m = h_min
    best = -np.inf
    for d in range(cdays.size):
        m = min(m, vd[d] + L * ed[d])
        best = max(best, min(vd[d], m))
        if t >= cdays[d]:
            q = max(best, min(v_t, m))
    return q


@njit(cache=True, nogil=True, error_model="numpy")
def window_kernel(a, b, lc0, mu, gam, s, fr, rr, kap, eps, phi, kh, wake, start_pool, dormant, ck,
                  nodes, step_id, n_steps, kcum, kcum_mid, kst, ken, km0, km1, km2, her2_lo, her2_hi, her2_on,
                  m, f, act, mob, env0, env1, env2, other, take, nf, L, times, t_idx, ce0, ce1, cdays, node_idx,
                  last_founding, primary_only, want_shed, out_sigma, out_win, out_dwin, out_pool, out_logn, out_founded,
                  out_shed):
    """Every patient's window in one pass each, under ``S`` schedule variants at once.

    Per patient (arrays of length ``n``): ``a`` = ln K, ``b`` = β (1/day), ``lc0`` ln cells at diagnosis, ``mu``,
    ``gam`` the founding rate and exponent, ``s`` chemosensitivity, ``fr``/``rr`` resistant fraction and kill ratio,
    ``kap`` = s_met × s, ``eps``, ``phi`` the prometastatic sensitivity and doorway share, ``kh`` the anti-HER2 kill
    (ln-cells/day), ``wake`` (1/day), ``start_pool`` (dormant colonies at ``last_founding``), ``dormant`` (bool),
    ``ck`` ``(n, courses)`` the course rates after the window (ln-cells/day). Shared: the timeline's arrays (see
    :class:`~chemomet.model.timeline.Timeline`), ``step_id`` (each interval's distinct step), the anti-HER2 span,
    ``nf`` founding intervals, ``L`` = ln visible cells, output ``times`` (days) with their node index ``t_idx``,
    course days ``ce0``/``ce1`` and their sorted set ``cdays``, and ``node_idx``, the nodes whose ln cells are wanted
    (``primary_only``: only those, and no founding either; the primary's cells are computed only up to the last
    node the founding or ``node_idx`` reaches, none without either), and ``want_shed``: whether ``out_shed`` is
    wanted.

    Schedule variants: the microenvironment arrays ``m``, ``f``, ``act``, ``mob`` ``(S, nodes)`` and ``env0``,
    ``env1``, ``env2``, ``other``, ``take`` ``(S, intervals)`` may differ from variant to variant (an accompanying
    drug acting on the microenvironment only); everything else is one schedule's. The primary, the colonies'
    window curves and their visibility are computed once per patient, and so is the founding's dependence on the
    primary (:func:`~chemomet.model.fused_primary.founding_sizes`); the founding masses and what depends on them
    (``Λ`` of the window-founded colonies, dormant wake-ups) once per variant. Each variant's numbers are
    exactly those of a call with that variant alone (the same operations in the same order).

    Writes, per patient and clone (0 sensitive, 1 resistant): ``out_sigma`` the latest founding day of a pre-window
    colony visible by each time (days, -inf: none; shared by the variants); per variant, patient and clone
    ``out_win`` / ``out_dwin`` ``Λ`` of the colonies founded / woken in the window, ``out_pool`` the dormant pool
    left at the window's end; per patient ``out_logn`` (ln cells at ``node_idx``) and per variant and patient
    ``out_founded`` (colonies founded in the window) and ``out_shed`` (mean founding per cell^γ).
    """
    n_pat = a.size
    n_var = env0.shape[0]
    N = nodes.size
    ni = N - 1
    nt = times.size
    nd = cdays.size
    c = nodes[0]
    end = nodes[N - 1]
    courses = ce0.size > 0
    g = np.empty(N)
    g_half = np.empty(ni)
    gk = np.empty(N)
    hw = np.zeros(N)
    logn = np.empty(N)
    spn = np.empty(N)
    zn = np.empty(N)
    ezn = np.empty(N)
    mass = np.zeros((n_var, 2, ni))
    size_s = np.empty(ni)
    size_r = np.empty(ni)
    W = np.empty(N)
    rs = np.empty(ni)
    re = np.empty(ni)
    hv = np.empty(N)
    vv = np.empty(N)
    dh0 = np.empty(ni)
    dh1 = np.empty(ni)
    hlow = np.empty(ni)
    slow = np.empty(ni)
    psi = np.empty(N)
    tmin = np.empty(N)
    fastv = np.empty(ni)
    lo = np.empty(ni)
    width = np.empty(ni)
    frac = np.empty(ni)
    wakes = np.empty(ni)
    tvis = np.empty(ni)
    hmid = np.empty(ni)
    buf = np.empty(nt)
    et = np.empty(nt)
    sh = np.empty(nt)
    xq = np.empty(nt)
    ed = np.empty(nd)
    shd = np.empty(nd)
    vd = np.empty(nd)
    e_start = np.empty(ce0.size)
    # the primary's cells only as far as something uses them: the founding intervals, the ln cells asked for
    n_cells = nf + 1 if nf > 0 else 0
    for k in range(node_idx.size):
        n_cells = max(n_cells, node_idx[k] + 1)
    for p in range(n_pat):
        bp = b[p]
        ap = a[p]
        growth_factors(bp, nodes, step_id, n_steps, g, g_half)
        her2 = primary(ap, bp, lc0[p], s[p], fr[p], rr[p], kh[p], her2_lo, her2_hi, nodes, kcum, kcum_mid, km0, km1,
                       km2, g, g_half, gk, hw, logn, spn, zn, ezn, n_cells)
        if nf > 0 and not primary_only:
            # the founding's dependence on the primary once per patient, its microenvironment once per variant
            has_rp = founding_sizes(mu[p], gam[p], nf, logn, spn, zn, ezn, size_s, size_r)
            for v in range(n_var):
                out_founded[v, p] = founding_masses(phi[p], eps[p], nf, other[v], env0[v], env1[v], env2[v], take[v],
                                                    size_s, size_r, has_rp, mass[v, 0], mass[v, 1])
                if want_shed:
                    out_shed[v, p] = shedding_mean(mu[p], phi[p], eps[p], nf, nodes, m[v], f[v], act[v], mob[v])
        for k in range(node_idx.size):
            out_logn[p, k] = logn[node_idx[k]]
        if primary_only:
            continue
        ckp = ck[p]
        for k in range(ce0.size):
            e_start[k] = np.exp(bp * (ce0[k] - c))
        for q in range(nt):
            et[q] = np.exp(bp * (times[q] - c))
            sh[q] = _course_shift(bp, c, times[q], ckp, ce0, ce1, e_start)
        for d in range(nd):
            ed[d] = np.exp(bp * (cdays[d] - c))
            shd[d] = _course_shift(bp, c, cdays[d], ckp, ce0, ce1, e_start)
        dorm = dormant[p]
        n_ramps = ni if dorm else nf
        for clone in range(2):
            if clone == 1 and not fr[p] > 0.0:
                for q in range(nt):
                    out_sigma[p, 1, q] = -np.inf
                for v in range(n_var):
                    for q in range(nt):
                        out_win[v, p, 1, q] = 0.0
                        out_dwin[v, p, 1, q] = 0.0
                    out_pool[v, p, 1] = 0.0
                continue
            kappa = kap[p] if clone == 0 else kap[p] * rr[p]
            for j in range(N):
                W[j] = kappa * gk[j] + hw[j] if her2 else kappa * gk[j]
            for i in range(ni):
                on = kh[p] * her2_on[i] if her2 else 0.0
                rs[i] = kappa * kst[i] + on if her2 else kappa * kst[i]
                re[i] = kappa * ken[i] + on if her2 else kappa * ken[i]
            h_min = clone_curves(ap, bp, L, g, W, rs, re, nodes, hv, vv, dh0, dh1, hlow, slow, psi, tmin, fastv)
            g_end = W[N - 1]
            for d in range(nd):
                vd[d] = (ap - L) * ed[d] - g_end - shd[d]
            for q in range(nt):
                t = times[q]
                v_t = (ap - L) * et[q] - g_end - sh[q]
                if t < c:
                    ps = (ap - L) * et[q]
                elif t >= end:
                    ps = max(psi[N - 1], _reach(v_t, t, h_min, L, vd, ed, cdays))
                else:
                    ps = psi[t_idx[q]]
                out_sigma[p, clone, q] = c + np.log(max(ps, 0.0) / ap) / bp if ps > 0 else -np.inf
                xq[q] = _reach(v_t, t, np.inf, L, vd, ed, cdays) if t >= end else -np.inf
            if n_ramps > 0:
                founder_ramps(n_ramps, hv, dh0, dh1, hlow, slow, tmin, nodes, lo, width, frac)
            fast_f = False
            for i in range(nf):
                if hv[i] <= fastv[i]:
                    fast_f = True
                    break
            fast_d = False
            if dorm:
                for i in range(ni):
                    if hv[i] <= fastv[i]:
                        fast_d = True
                        break
            # the visibility times depend on the clone only: once for every variant (and the dormant wake-ups)
            vis_ready = (fast_f and nf > 0) or fast_d
            if vis_ready:
                exact_visibility(ni if fast_d else nf, ap, bp, L, g_end, hv, vv, nodes, tvis, hmid)
            lam = wake[p]
            share_pre = 1.0 - fr[p] if clone == 0 else fr[p]
            for v in range(n_var):
                g_mass = mass[v, clone]
                if nf > 0:
                    window_lambda(nf, g_mass, frac, lo, width, fast_f, courses, end, times, xq, ap, bp, L, g_end,
                                  hv, vv, nodes, tvis, hmid, buf, out_win[v, p, clone], vis_ready)
                else:
                    for q in range(nt):
                        out_win[v, p, clone, q] = 0.0
                if not dorm:
                    continue
                start = share_pre * start_pool[p] * np.exp(-lam * (c - last_founding))
                pool_prev = start
                inflow = 0.0
                for i in range(ni):
                    x = lam * (nodes[i + 1] - nodes[i])
                    spread = -np.expm1(-x) / x if x > 1e-9 else 1.0 - x / 2.0
                    scale = np.exp(lam * (nodes[i + 1] - c))
                    founded = g_mass[i] if i < nf else 0.0
                    inflow += founded * spread * scale
                    pool_next = (start + inflow) / scale
                    wakes[i] = founded - (pool_next - pool_prev)
                    pool_prev = pool_next
                out_pool[v, p, clone] = pool_prev
                window_lambda(ni, wakes, frac, lo, width, fast_d, courses, end, times, xq, ap, bp, L, g_end, hv,
                              vv, nodes, tvis, hmid, buf, out_dwin[v, p, clone], vis_ready)


def _writable(x, dtype=float) -> np.ndarray:
    """``x`` as a writable C-contiguous array (a read-only array would compile the kernel once more)."""
    x = np.ascontiguousarray(x, dtype=dtype)
    return x if x.flags.writeable else x.copy()


VARIANT_KEYS = ("m", "f", "act", "mob", "env0", "env1", "env2", "other", "take")
"""The kernel's timeline arrays that may differ between schedule variants (:func:`fused_windows`)."""

WINDOW_KEYS = ("nodes", "kill_cum", "kill_cum_mid", "kill_start", "kill_end", "kill_m0", "kill_m1", "kill_m2")
"""The timeline arrays that schedule variants must share (the grid and the chemotherapy kill)."""


def same_window(tl: Timeline, other: Timeline) -> bool:
    """Whether two timelines differ at most in their microenvironment (:data:`VARIANT_KEYS`): the same grid, kill,
    window and founding intervals, so that :func:`fused_windows` can take them as variants of one schedule."""
    if tl is other:
        return True
    if (tl.start, tl.end, tl.n_founding) != (other.start, other.end, other.n_founding):
        return False
    return all(np.array_equal(getattr(tl, k), getattr(other, k)) for k in WINDOW_KEYS)


def _arrays(tl: Timeline) -> dict:
    """The timeline's arrays as the kernel takes them (optional ones filled with their neutral values)."""
    h = np.diff(tl.nodes)
    steps, step_id = np.unique(h, return_inverse=True)
    ones = np.ones(tl.nodes.size)
    return {k: _writable(v, v.dtype) if isinstance(v, np.ndarray) else v for k, v in {
        "nodes": tl.nodes, "step_id": step_id.astype(np.int64), "n_steps": int(steps.size), "kcum": tl.kill_cum,
        "kcum_mid": tl.kill_cum_mid, "kst": tl.kill_start, "ken": tl.kill_end, "km0": tl.kill_m0, "km1": tl.kill_m1,
        "km2": tl.kill_m2, "m": tl.m, "f": tl.f, "act": tl.activity,
        "mob": ones if tl.mobilisation is None else tl.mobilisation, "env0": tl.env0, "env1": tl.env1,
        "env2": tl.env2, "other": h if tl.other0 is None else tl.other0,
        "take": ones[:-1] if tl.take is None else tl.take,
    }.items()}


def _shared(tls: list[Timeline]) -> dict:
    """The first timeline's arrays, with those of :data:`VARIANT_KEYS` stacked over all of them ``(S, ...)``."""
    out = _arrays(tls[0])
    rest = [_arrays(tl) for tl in tls[1:]]
    for k in VARIANT_KEYS:
        out[k] = np.ascontiguousarray(np.stack([out[k], *(r[k] for r in rest)]), dtype=float)
    return out


def fused_window(
    p: PatientParameters, schedule, tl: Timeline, rates, courses, log_visible: float, founding_end: float,
    times: np.ndarray, node_idx: np.ndarray, primary_only: bool = False, shedding: bool = True,
):
    """``Λ(t)`` (expected visible colonies, both clones, dormancy mixed in) and the primary's window summaries.

    Arguments as :func:`chemomet.model.engine._simulate_chunk` builds them: ``rates`` from
    :func:`~chemomet.model.engine.therapy_rates`, ``courses`` from :func:`~chemomet.model.engine.courses_after_window`,
    ``log_visible`` = ln visible cells, ``founding_end`` the last founding day (surgery, or inf), ``times`` the output
    days, ``node_idx`` the window nodes at which ln cells are returned (``primary_only``: nothing else is computed:
    no ``Λ``, colonies founded 0, shedding NaN); ``shedding=False`` leaves the mean founding rate uncomputed (NaN),
    for callers that do not report it (nothing else changes).

    Returns
    -------
    lam : numpy.ndarray
        ``(n, len(times))`` expected colonies visible by each time (None with ``primary_only``).
    log_n : numpy.ndarray
        ``(n, len(node_idx))`` ln cells of the primary at those nodes.
    founded : numpy.ndarray
        ``(n,)`` colonies founded in the window (both clones; 0 without founding in it).
    shedding : numpy.ndarray
        ``(n,)`` mean founding rate per cell^γ while the primary is in place in the window (NaN without, or when
        not asked for).
    """
    lams, log_n, founded, shed = fused_windows(
        p, schedule, [tl], rates, courses, log_visible, founding_end, times, node_idx, primary_only, shedding
    )
    return None if lams is None else lams[0], log_n, founded[0], shed[0]


def fused_windows(
    p: PatientParameters, schedule, tls: list[Timeline], rates, courses, log_visible: float, founding_end: float,
    times: np.ndarray, node_idx: np.ndarray, primary_only: bool = False, shedding: bool = True,
):
    """:func:`fused_window` for several variants of one schedule at once: ``tls`` are the variants' timelines, which
    may differ only in the microenvironment (:func:`same_window`; e.g. NACT with and without an accompanying drug
    acting on doorways, macrophages or mobilisation); ``schedule``, ``rates`` and ``courses`` are the first one's and
    must hold for all. The primary, the colonies' window curves and the founding before the window are computed once;
    each variant's results are exactly those of :func:`fused_window` with its own timeline.

    Returns
    -------
    lams : list of numpy.ndarray
        Per variant, ``(n, len(times))`` expected colonies visible by each time (None with ``primary_only``).
    log_n : numpy.ndarray
        ``(n, len(node_idx))`` ln cells of the primary at those nodes (shared).
    founded, shedding : numpy.ndarray
        ``(S, n)``: per variant, as :func:`fused_window`'s.
    """
    tl = tls[0]
    if not all(same_window(tl, other) for other in tls[1:]):
        raise ValueError("schedule variants must share the grid, the window and the chemotherapy kill")
    n, n_var = p.n, len(tls)
    times = np.asarray(times, dtype=float)
    node_idx = np.asarray(node_idx, dtype=np.int64)
    nodes = tl.nodes
    N, nt = nodes.size, times.size
    kh, her2_lo, her2_hi = np.zeros(n), 0.0, 0.0
    her2_on = np.zeros(N - 1)
    if rates["anti_her2_kill"] is not None:
        kh = rates["anti_her2_kill"] * p.her2_sensitivity
        her2_lo, her2_hi = max(schedule.anti_her2.start_day, tl.start), min(schedule.anti_her2.end_day, tl.end)
        mid = 0.5 * (nodes[:-1] + nodes[1:])
        her2_on = ((mid > her2_lo) & (mid < her2_hi)).astype(float)
        her2_lo, her2_hi = float(her2_lo), float(her2_hi)
    ck = np.zeros((n, len(courses)))
    for k, (rate, _, _) in enumerate(courses):
        ck[:, k] = rate
    ce0 = np.array([e0 for _, e0, _ in courses], float)
    ce1 = np.array([e1 for _, _, e1 in courses], float)
    cdays = np.array(sorted({d for _, e0, e1 in courses for d in (e0, e1)}), float)
    t_idx = np.clip(np.searchsorted(nodes, times, side="right") - 1, 0, N - 1).astype(np.int64)
    q = p.dormant_fraction
    dormant = q > 0
    last_founding = min(tl.start, founding_end)
    start_pool = np.zeros(n)
    d = np.flatnonzero(dormant)
    if d.size and not primary_only:
        start_pool[d] = untreated_pool(p.take(d), np.full((d.size, 1), last_founding))[:, 0]
    sigma = np.empty((n, 2, nt))
    win = np.empty((n_var, n, 2, nt))
    dwin = np.zeros((n_var, n, 2, nt))
    pool_end = np.zeros((n_var, n, 2))
    log_n = np.empty((n, node_idx.size))
    founded = np.zeros((n_var, n))
    shed = np.full((n_var, n), np.nan)
    per_patient = [
        p.log_plateau, p.beta_per_day, p.log_cells0, p.mu, p.gamma, p.chemosensitivity, p.resistant_fraction,
        p.resistant_kill_ratio, p.s_met * p.chemosensitivity, p.epsilon, p.phi, kh, p.wake_rate_per_day, start_pool,
    ]
    window_kernel(
        *[_writable(x) for x in per_patient], dormant, ck, her2_lo=her2_lo, her2_hi=her2_hi, her2_on=her2_on,
        nf=int(tl.n_founding), L=float(log_visible), times=times, t_idx=t_idx, ce0=ce0, ce1=ce1, cdays=cdays,
        node_idx=node_idx, last_founding=float(last_founding), primary_only=bool(primary_only),
        want_shed=bool(shedding), out_sigma=sigma, out_win=win, out_dwin=dwin, out_pool=pool_end, out_logn=log_n,
        out_founded=founded, out_shed=shed, **_shared(tls),
    )
    if primary_only:
        return None, log_n, founded, shed
    limit = min(founding_end, tl.start)
    fr = p.resistant_fraction
    has_r = np.flatnonzero(fr > 0)
    before_s = _before_window(p, sigma[:, 0], limit, 1.0 - fr)  # founded before the window: the same in every variant
    before_r = _before_window(p.take(has_r), sigma[has_r, 1], limit, fr[has_r]) if has_r.size else None
    lams = []
    for v in range(n_var):
        lam = before_s + win[v, :, 0]
        if has_r.size:
            lam[has_r] += before_r + win[v, has_r, 1]
        if d.size:
            sub = p.take(d)
            woken = _woken(sub, tl, sigma[d, 0], dwin[v, d, 0], pool_end[v, d, 0], 1.0 - sub.resistant_fraction,
                           founding_end, log_visible, times)
            r = np.flatnonzero(sub.resistant_fraction > 0)
            if r.size:
                woken[r] += _woken(sub.take(r), tl, sigma[d[r], 1], dwin[v, d[r], 1], pool_end[v, d[r], 1],
                                   sub.resistant_fraction[r], founding_end, log_visible, times)
            qd = q[d][:, None]
            lam[d] = (1.0 - qd) * lam[d] + qd * woken
        lams.append(lam)
    return lams, log_n, founded, shed


def _before_window(p: PatientParameters, sigma, limit, share_pre):
    """``Λ`` of one clone's colonies founded before the window: its share of the untreated founding up to
    ``min(σ*, limit)`` (expected colonies)."""
    upper = np.minimum(sigma, limit)
    lam = share_pre[:, None] * dis.untreated_cumulative_founding(p, upper)
    return np.where(np.isfinite(upper), lam, 0.0)


def _woken(p: PatientParameters, tl, sigma, window, pool_end, share_pre, founding_end, log_visible, times):
    """``Λ`` of one clone's colonies that went through dormancy (as
    :func:`chemomet.model.dormancy.dormant_visible_by`): wake-ups before the window, in it (``window``, from the
    kernel) and of the pool left at its end (``pool_end``)."""
    lam = p.wake_rate_per_day
    pre_end = min(founding_end, tl.start)
    upper = np.minimum(sigma, tl.start)
    up = np.where(np.isfinite(upper), upper, -1e7)
    u = np.minimum(up, pre_end)
    pool = untreated_pool(p, u) * np.exp(-lam[:, None] * (up - u))
    out = share_pre[:, None] * (dis.untreated_cumulative_founding(p, u) - pool)
    out = np.where(np.isfinite(upper), out, 0.0) + window
    tau_vis = -np.log1p(-log_visible / p.log_plateau) / p.beta_per_day
    waited = np.maximum(times[None, :] - tau_vis[:, None] - tl.end, 0.0)
    return out + pool_end[:, None] * -np.expm1(-lam[:, None] * waited)
