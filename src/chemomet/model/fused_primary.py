"""Fused per-patient kernels, part 1: the primary tumour in the treatment window and the colonies it founds there.

Scalar (numba) counterparts of :func:`chemomet.model.primary.treated_log_cells` and
:func:`chemomet.model.dissemination.window_founding_mass` for one patient at a time, so that the engine never holds
a ``(patients × nodes)`` array (:mod:`chemomet.model.fused`). Every formula follows its NumPy reference operation by
operation; what differs is how the exponentials are obtained: ``E(t_i) = e^{β(t_i - c)}`` comes from the recurrence
``E(t_{i+1}) = E(t_i) e^{β h_i}`` with ``e^{β h}`` computed once per distinct step ``h`` of the shared grid (a
schedule's grid has a few dozen distinct steps for ~370 nodes), which moves ``E`` by a few ulp per node (relative
error below 1e-13 over the window). Units: days, 1/day, ln-cells; colonies for the founding masses.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

LN2 = math.log(2.0)


@njit(cache=True, nogil=True, error_model="numpy")
def softplus(x):
    """``ln(1 + e^x)`` as NumPy's ``logaddexp(0, x)`` computes it (dimensionless)."""
    if x == 0.0:
        return LN2
    if x < 0.0:
        return math.log1p(math.exp(x))
    return x + math.log1p(math.exp(-x))


@njit(cache=True, nogil=True, error_model="numpy")
def log_mean_exp(x0, x1):
    """Mean of ``e^x`` over an interval on which ``x`` is linear (as
    :func:`~chemomet.model.dissemination.log_mean_exp`)."""
    if x0 == -np.inf or x1 == -np.inf:
        return 0.5 * (math.exp(x0) + math.exp(x1))
    dx = x1 - x0
    if abs(dx) < 1e-6:
        return math.exp(0.5 * (x0 + x1)) * (1.0 + dx * dx / 24.0)
    return math.exp(x0) * math.expm1(dx) / dx


@njit(cache=True, nogil=True, error_model="numpy")
def growth_factors(b, nodes, step_id, n_steps, g, g_half):
    """``g[i] = e^{β(t_i - c)}`` at the nodes and ``g_half[i] = e^{β h_i / 2}`` per interval, by recurrence.

    ``step_id[i]`` indexes the distinct steps ``h`` (days) of the grid; ``e^{β h}`` and ``e^{β h / 2}`` are computed
    once per distinct step (``2 n_steps`` exponentials instead of ``2 × nodes``).
    """
    full = np.empty(n_steps)
    half = np.empty(n_steps)
    done = np.zeros(n_steps, np.bool_)
    g[0] = 1.0
    for i in range(nodes.size - 1):
        u = step_id[i]
        if not done[u]:
            h = nodes[i + 1] - nodes[i]
            full[u] = math.exp(b * h)
            half[u] = math.exp(b * h / 2.0)
            done[u] = True
        g[i + 1] = g[i] * full[u]
        g_half[i] = half[u]


@njit(cache=True, nogil=True, error_model="numpy")
def primary(a, b, lc0, s, fr, rr, kh, her2_lo, her2_hi, nodes, kcum, kcum_mid, km0, km1, km2,
            g, g_half, gk, hw, logn, spn, zn, ezn, n_cells=-1):
    """One patient's primary through the window: fills ``gk`` (the weighted kill ``Ĝ`` at unit chemosensitivity),
    ``hw`` (the anti-HER2 weighted kill ``k_H ∫ e^{β(r-c)} 1_on dr``, ln-cells × E; returns whether it is nonzero),
    ``logn`` (ln cells) at the nodes, and with them ``zn`` = ``z`` =
    ``ln(R/S)``, ``spn`` = ``ln(1 + e^z)`` = ``-ln(S/N)`` and ``ezn`` = ``e^z`` (-inf, 0, 0 without a resistant
    clone); ``g``,
    ``g_half`` from :func:`growth_factors`. ``a`` = ln K, ``b`` = β (1/day), ``lc0`` = ln cells at diagnosis, ``s``
    the chemosensitivity, ``fr`` / ``rr`` the resistant fraction and kill ratio, ``kh`` the anti-HER2 kill
    (ln-cells/day) over ``[her2_lo, her2_hi]`` (days, clipped to the window; ``her2_hi <= her2_lo``: none).

    One exponential serves ``ln(1 + e^z)`` and ``e^z`` at a node: ``e = e^{-|z|}``, and the softplus as NumPy's
    ``logaddexp(0, z)`` computes it. ``n_cells``: the cells only at the first ``n_cells`` nodes (all with -1;
    what the founding and the ln cells asked for reach: the recurrence makes them exactly those of all nodes), none
    with 0: only ``gk`` and ``hw``, what the colonies' kill needs (a window the primary does not live through,
    adjuvant chemotherapy); ``logn``, ``spn``, ``zn``, ``ezn`` past them are left untouched.
    """
    n = nodes.size
    c = nodes[0]
    acc = 0.0
    gk[0] = 0.0
    half_b2 = 0.5 * b * b
    for i in range(n - 1):
        acc += g[i] * (km0[i] + b * km1[i] + half_b2 * km2[i])
        gk[i + 1] = acc
    her2 = kh != 0.0 and her2_hi > her2_lo
    if her2:
        e_lo = math.exp(b * (her2_lo - c))
        e_hi = math.exp(b * (her2_hi - c))
        for j in range(n):
            t = nodes[j]
            e = e_lo if t <= her2_lo else (e_hi if t >= her2_hi else g[j])
            hw[j] = kh * ((e - e_lo) / b)
    last = n if n_cells < 0 else min(n_cells, n)
    if last == 0:
        return her2
    u_c = a + (lc0 - a) * math.exp(-b * c)
    has_r = fr > 0.0
    z0 = math.log(fr) - math.log1p(-fr) if has_r else -np.inf
    w_c = u_c + math.log1p(-fr)
    slope = (1.0 - rr) * s
    integral = 0.0
    for j in range(last):
        sp = 0.0
        if has_r:
            z = z0 + slope * kcum[j]
            e = math.exp(-abs(z))
            sp = max(z, 0.0) + math.log1p(e)
            zn[j] = z
            ezn[j] = 1.0 / e if z >= 0.0 else e
            if j > 0:
                i = j - 1
                h = nodes[j] - nodes[i]
                g_mid = g[i] * g_half[i]
                sp_mid = softplus(z0 + slope * kcum_mid[i])
                integral += h / 6.0 * (g[i] * spn[i] + 4.0 * g_mid * sp_mid + g[j] * sp)
        else:
            zn[j] = -np.inf
            ezn[j] = 0.0
        spn[j] = sp
        w = w_c + a * (g[j] - 1.0) - s * gk[j] - b * integral
        if her2:
            w = w - hw[j]
        logn[j] = w / g[j] + sp
    return her2


@njit(cache=True, nogil=True, error_model="numpy")
def founding_sizes(mu, gam, nf, logn, spn, zn, ezn, size_s, size_r):
    """The part of :func:`founding_masses` that the microenvironment does not touch, per interval of the first
    ``nf``: ``size_s`` = ``μ`` times the logarithmic mean of ``N^γ S/N = e^{x}`` with ``x = γ ln N - ln(1 + e^z)``,
    and ``size_r`` = ``μ`` times that of ``N^γ R/N = e^{x + z}`` (colonies per unit of ``∫ env``; ``spn``, ``zn``,
    ``ezn`` from :func:`primary`; ``size_r`` untouched without a resistant clone). ``e^x`` is taken once per node and
    serves both clones (``e^{x + z} = e^x e^z``). Returns whether the patient has a resistant clone."""
    has_r = ezn[0] > 0.0
    x0 = gam * logn[0] - spn[0]
    e0 = math.exp(x0)
    for i in range(nf):
        x1 = gam * logn[i + 1] - spn[i + 1]
        e1 = math.exp(x1)
        size_s[i] = mu * _mean_exp(x0, x1, e0)
        if has_r:
            r0 = e0 * ezn[i]
            if math.isfinite(zn[i]) and math.isfinite(zn[i + 1]):
                size = _mean_exp(x0 + zn[i], x1 + zn[i + 1], r0)
            else:
                size = 0.5 * (r0 + e1 * ezn[i + 1])
            size_r[i] = mu * size
        x0 = x1
        e0 = e1
    return has_r


@njit(cache=True, nogil=True, error_model="numpy")
def founding_masses(phi, eps, nf, other, env0, env1, env2, take, size_s, size_r, has_r, mass_s, mass_r):
    """Expected colonies founded by each clone in each of the first ``nf`` window intervals (colonies), as
    :func:`~chemomet.model.dissemination.window_founding_mass`: ``μ ∫ env`` (and the primed take) times the
    logarithmic mean of ``N^γ S/N`` and of ``N^γ R/N`` (``size_s``, ``size_r`` from :func:`founding_sizes`, the same
    for every microenvironment; ``mass_r`` is zero without a resistant clone, ``has_r``). The products are formed
    in the order ``μ × mean × ∫ env × take``, as one expression would. Returns the total (colonies)."""
    total = 0.0
    for i in range(nf):
        env_int = (1.0 - phi) * other[i] + phi * (env0[i] + eps * env1[i] + eps * eps * env2[i])
        m = size_s[i] * env_int * take[i]
        mass_s[i] = m
        total += m
        if has_r:
            m = size_r[i] * env_int * take[i]
            mass_r[i] = m
            total += m
        else:
            mass_r[i] = 0.0
    return total


@njit(cache=True, nogil=True, error_model="numpy")
def _mean_exp(x0, x1, e0):
    """:func:`log_mean_exp` of finite ``x0``, ``x1`` given ``e0 = e^{x0}``."""
    dx = x1 - x0
    if abs(dx) < 1e-6:
        return math.exp(0.5 * (x0 + x1)) * (1.0 + dx * dx / 24.0)
    return e0 * math.expm1(dx) / dx


@njit(cache=True, nogil=True, error_model="numpy")
def shedding_mean(mu, phi, eps, nf, nodes, m, f, act, mob):
    """Mean founding rate per cell^γ over the first ``nf`` intervals (colonies per cell^γ per day): the trapezoid
    mean of ``μ [(1 - φ) + φ (1 + ε m)(1 + ε f) A] X`` over the nodes, as the NumPy engine's summary."""
    acc = 0.0
    span = 0.0
    prev = mu * (((1.0 - phi) + phi * ((1.0 + eps * m[0]) * (1.0 + eps * f[0])) * act[0]) * mob[0])
    for i in range(nf):
        nxt = mu * (((1.0 - phi) + phi * ((1.0 + eps * m[i + 1]) * (1.0 + eps * f[i + 1])) * act[i + 1]) * mob[i + 1])
        h = nodes[i + 1] - nodes[i]
        acc += 0.5 * (nxt + prev) * h
        span += h
        prev = nxt
    return acc / span
