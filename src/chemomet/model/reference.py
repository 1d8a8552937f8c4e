"""A slow, plain reference implementation of the same equations, one patient at a time with ``solve_ivp``.

Used by the tests and the benchmark as an independent check of :func:`chemomet.simulate`: it integrates the
primary clones and the microenvironment as ODEs with a tight-tolerance general solver (drug effects taken
straight from the concentration-time curves, no moment expansion), founds colonies in discrete cohorts,
grows every cohort as an ODE and detects eradication (``u < 0``) and visibility (``u ≥ ln N_vis``) on the
solver's dense output. Nothing here is vectorised over patients on purpose.
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

from chemomet.model.dissemination import untreated_cumulative_founding
from chemomet.model.parameters import (
    ModelSettings,
    PatientParameters,
    endocrine_sensitivity_for,
    reached_sensitivity,
)
from chemomet.model.pk import emax_effect, inhibition, unit_dose_response
from chemomet.model.primary import age_days
from chemomet.regimens import Drug, Schedule

RTOL, ATOL = 1e-10, 1e-12


class ScheduleFunctions:
    """Kill rate (unit chemosensitivity), stress and inhibitions as functions of time, from PK directly."""

    def __init__(self, schedule: Schedule, drugs: dict[str, Drug]):
        self.by_drug: dict[str, tuple[Drug, np.ndarray, np.ndarray]] = {}
        for t, name, dose in schedule.dose_events:
            d, td, dm = self.by_drug.get(name, (drugs[name], np.empty(0), np.empty(0)))
            self.by_drug[name] = (d, np.append(td, t), np.append(dm, dose))

    def concentrations(self, t: float):
        """``(drug, concentration in mg/L)`` at time ``t`` (days) of every drug given by then."""
        for d, td, dm in self.by_drug.values():
            given = td <= t
            if given.any():
                yield d, float(np.dot(dm[given], unit_dose_response(t - td[given], d)))

    def kill_stress_activity_forcing(self, t: float):
        """(k_unit, D, A, g) at time ``t`` (days)."""
        kill = stress = 0.0
        free = {"doorway_activity": 1.0, "macrophage_recruitment": 1.0}
        for d, c in self.concentrations(t):
            if d.role == "cytotoxic":
                e = float(emax_effect(c, d))
                kill += d.kmax_per_day * e
                stress += d.stress_weight * e
            else:
                free[d.acts_on] *= 1.0 - float(inhibition(c, d))
        return kill, stress, free["doorway_activity"], stress * free["macrophage_recruitment"]

    def release(self, t: float, mechanisms) -> float:
        """Mobilisation's release factor ``X(t) = 1 + ν_D D(t) + Σ ν_x I_x(t)`` at time ``t`` (days)."""
        x = 1.0
        for d, c in self.concentrations(t):
            if d.role == "cytotoxic":
                x += mechanisms.mobilisation_per_stress * d.stress_weight * float(emax_effect(c, d))
            elif d.role == "accompanying":
                x += mechanisms.release_per_inhibition(d.target) * float(inhibition(c, d))
        return x


def _segments(points: list[float]) -> list[tuple[float, float]]:
    pts = sorted(set(points))
    return list(zip(pts[:-1], pts[1:], strict=True))


def reference_dmfs(
    p: PatientParameters,
    schedule: Schedule,
    drugs: dict[str, Drug],
    settings: ModelSettings,
    times: np.ndarray,
    n_pre_cohorts: int = 4000,
    window_cohort_days: float = 0.5,
    n_wake: int = 40,
    endocrine_days: tuple[float, float] | None = None,
) -> np.ndarray:
    """DMFS ``S(t | M0)`` of ONE patient (``p.n == 1``) at ``times`` (days), by cohorts and ``solve_ivp``.

    ``endocrine_days``: first and last day of the schedule's endocrine course (required when it has one; the
    engine's :func:`~chemomet.model.engine.endocrine_window` defines them); the course removes
    ``growth_block × e × α`` from every colony's growth rate on those days. Anti-HER2 therapy kills the primary's
    cells and every colony's at ``h × Σ kill_per_day`` from its first to its last day. The mechanisms of
    ``settings.mechanisms`` act on founding in the window: mobilisation multiplies it by ``X(t)``
    (:meth:`ScheduleFunctions.release`), priming by ``1 + π`` up to ``W`` days after the last chemotherapy dose,
    and the doorway mechanism off sets ``ε = 0``.
    """
    assert p.n == 1
    courses = []
    if schedule.endocrine is not None:
        assert endocrine_days is not None, "endocrine_days required for a schedule with endocrine therapy"
        endo = drugs[schedule.endocrine.drug]
        e = endocrine_sensitivity_for(p, float(endo.nonresponder_reach or 0.0), reached_sensitivity(endo))
        k_e = endo.growth_block * float(e[0]) * float(p.alpha_per_day[0])
        courses.append((k_e, *endocrine_days))
    her2 = schedule.anti_her2
    k_h, h0, h1 = 0.0, np.inf, np.inf
    if her2 is not None:
        k_h = float(p.her2_sensitivity[0]) * sum(drugs[x].kill_per_day for x in her2.agents)
        h0, h1 = her2.start_day, her2.end_day
        courses.append((k_h, h0, h1))
    a, b = float(p.log_plateau[0]), float(p.beta_per_day[0])
    alpha, mu, gam = float(p.alpha_per_day[0]), float(p.mu[0]), float(p.gamma[0])
    s, f_r, r_r = (
        float(p.chemosensitivity[0]),
        float(p.resistant_fraction[0]),
        float(p.resistant_kill_ratio[0]),
    )
    eps, phi, s_met = float(p.epsilon[0]), float(p.phi[0]), float(p.s_met[0])
    mech = settings.mechanisms
    eps = eps if mech.doorway else 0.0
    L = float(np.log(settings.visible_cells))
    sf = ScheduleFunctions(schedule, drugs)
    chemo_times = [t for t, n, _ in schedule.dose_events if drugs[n].role == "cytotoxic"]
    c = min(chemo_times) if chemo_times else np.inf
    surgery = np.inf if schedule.surgery_day is None else schedule.surgery_day
    horizon = float(np.max(times))
    birth = -float(age_days(p)[0])
    # colonies founded later than (horizon - untreated time to visibility) cannot be visible by the horizon
    tau_vis = -np.log1p(-np.log(settings.visible_cells) / a) / b
    pre_end = min(c, surgery, horizon - tau_vis + 1.0)

    # --- primary and microenvironment in the window (ODEs) ---------------------------------------------
    window_founding = []  # (sigma_mid, mass, resistant share)
    if c < surgery:
        u_c = a + (float(p.log_cells0[0]) - a) * np.exp(-b * c)
        y = [u_c + np.log1p(-f_r), (u_c + np.log(f_r)) if f_r > 0 else -np.inf, 1.0, 1.0]

        def rhs(t, y):
            k, _, _, g = sf.kill_stress_activity_forcing(t)
            ln_n = np.logaddexp(y[0], y[1])
            on = k_h if h0 <= t < h1 else 0.0
            return [
                alpha - b * ln_n - s * k - on,
                alpha - b * ln_n - r_r * s * k - on,
                settings.k_macrophage_per_day * (1 + eps * g - y[2]),
                settings.k_mena_per_day * (y[2] - y[3]),
            ]

        prime_end = max(chemo_times) + mech.priming_days_after_last_dose if mech.priming else -np.inf
        edges = np.arange(c, surgery + 1e-9, window_cohort_days)
        if edges[-1] < surgery:
            edges = np.append(edges, surgery)
        if c < prime_end < surgery:
            edges = np.unique(np.append(edges, prime_end))
        pieces = []
        for t0, t1 in _segments(chemo_times + [c, surgery] + [d for d in (h0, h1) if c < d < surgery]):
            if not (c <= t0 < surgery):
                continue
            y0 = [y[0], y[1] if np.isfinite(y[1]) else -700.0, y[2], y[3]]
            sol = solve_ivp(rhs, (t0, t1), y0, method="DOP853", rtol=RTOL, atol=ATOL, dense_output=True)
            pieces.append((t0, t1, sol.sol))
            y = sol.y[:, -1]
            if f_r == 0:
                y[1] = -np.inf

        def state(t):
            for t0, t1, f in pieces:
                if t0 <= t <= t1:
                    return f(t)
            raise ValueError(t)

        def founding(t):
            st = state(t)
            ln_n = np.logaddexp(st[0], st[1]) if f_r > 0 else st[0]
            _, _, act, _ = sf.kill_stress_activity_forcing(t)
            env = (1 - phi) + phi * st[2] * st[3] * act
            if mech.mobilisation:
                env *= sf.release(t, mech)
            if t < prime_end:
                env *= 1.0 + mech.priming_take_increase
            share_r = np.exp(st[1] - ln_n) if f_r > 0 else 0.0
            return mu * np.exp(gam * ln_n) * env, share_r

        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            xs = np.linspace(lo, hi - 1e-9, 5)
            vals = [founding(x) for x in xs]
            d = np.array([v[0] for v in vals])
            sr = np.array([v[1] for v in vals])
            w = (hi - lo) / 12.0 * np.array([1, 4, 2, 4, 1])
            window_founding.append(
                ((lo + hi) / 2.0, float(w @ d), float(w @ (d * sr)) / max(float(w @ d), 1e-300))
            )

    # --- cohorts -------------------------------------------------------------------------------------
    total_pre = float(untreated_cumulative_founding(p, np.array([pre_end]))[0, 0])
    # equal-mass bins of pre-window founding, placed by inverting the cumulative founding numerically
    grid = np.linspace(birth, pre_end, 20001)
    cum = untreated_cumulative_founding(p, grid)[0]
    targets = (np.arange(n_pre_cohorts) + 0.5) / n_pre_cohorts * total_pre
    sig_pre = np.interp(targets, cum, grid)
    mass_pre = np.full(n_pre_cohorts, total_pre / n_pre_cohorts)
    lam = np.zeros(len(times))
    q, wake = float(p.dormant_fraction[0]), float(p.wake_rate_per_day[0])
    for clone_r in [False, True] if f_r > 0 else [False]:
        kappa = s_met * s * (r_r if clone_r else 1.0)
        share_pre = f_r if clone_r else 1.0 - f_r
        sig = list(sig_pre)
        mass = list(mass_pre * share_pre)
        for sm, m, sr in window_founding:
            sig.append(sm)
            mass.append(m * (sr if clone_r else 1.0 - sr))
        sig, mass = np.array(sig), np.array(mass)
        if q > 0:
            # dormancy: each cohort also starts growing after exponential delays, at equal-probability quantiles
            delays = -np.log1p(-(np.arange(n_wake) + 0.5) / n_wake) / wake
            woken = (sig[:, None] + delays[None, :]).ravel()
            in_window = (woken >= c) & (woken < max(chemo_times, default=c) + 60.0)
            woken = np.where(in_window, np.round(woken * 4.0) / 4.0, woken)  # fewer distinct births to step over
            sig = np.concatenate([sig, woken])
            mass = np.concatenate([(1 - q) * mass, np.repeat(q * mass / n_wake, n_wake)])
        t_vis = _cohort_visibility(sig, a, b, alpha, kappa, L, sf, chemo_times, c, horizon, courses)
        lam += np.array([mass[t_vis <= t].sum() for t in times])
    lam0 = lam[np.argmin(np.abs(np.asarray(times)))] if 0.0 in times else None
    if lam0 is None:
        raise ValueError("times must include 0")
    return np.exp(-(lam - lam0))


def _cohort_visibility(sig, a, b, alpha, kappa, L, sf, chemo_times, c, horizon, courses=()):
    """First time each cohort (founded by one cell at ``sig``) reaches ``L``; inf if eradicated or never.

    ``courses``: ``(k, e_0, e_1)`` each, a constant loss of growth rate (ln-cells/day) from day ``e_0`` to ``e_1``;
    treated like the drugs (ODE segments), with ``e_0`` and ``e_1`` as segment ends."""
    if courses:
        c = min(c, min(e0 for _, e0, _ in courses))  # untreated closed form only up to the first treatment
    n = sig.size
    t_vis = np.full(n, np.inf)
    alive = np.ones(n, bool)
    # untreated closed form up to the window start (exact solution of du/dt = alpha - b u)
    tau_vis = -np.log1p(-L / a) / b
    pre = sig < c
    t_vis[pre & (sig + tau_vis <= c)] = (sig + tau_vis)[pre & (sig + tau_vis <= c)]
    if not np.isfinite(c):
        return np.where(sig + tau_vis <= horizon + 1e-9, sig + tau_vis, np.inf)
    u = np.where(pre, a * (1 - np.exp(-b * (c - sig))), 0.0)
    born = pre.copy()

    def rhs(t, u):
        k = sf.kill_stress_activity_forcing(t)[0]
        on = sum(k_c for k_c, e0, e1 in courses if e0 <= t < e1)
        return alpha - b * u - kappa * k - on

    births = sorted(set(sig[~pre].tolist()))
    tail = max(chemo_times, default=c) + 60.0
    extra = [x for _, e0, e1 in courses for x in (e0, e1) if np.isfinite(x) and c < x < horizon]
    if courses:
        tail = max(tail, max(e1 for _, _, e1 in courses))
    ends = sorted(set([t for t in chemo_times if t > c] + births + extra + [min(tail, horizon), horizon]))
    t0 = c
    for t1 in ends:
        if t1 <= t0:
            continue
        idx = np.flatnonzero(born & alive & ~np.isfinite(t_vis))
        if idx.size:
            if t0 >= tail:  # no drug left: closed form (exact) for the remaining growth
                with np.errstate(invalid="ignore", divide="ignore"):
                    reach = t0 - np.log((a - L) / (a - u[idx])) / b
                reach = np.where(u[idx] >= L, t0, reach)
                t_vis[idx] = np.where(reach <= horizon, reach, np.inf)
                break
            sol = solve_ivp(rhs, (t0, t1), u[idx], method="DOP853", rtol=RTOL, atol=ATOL, dense_output=True)
            ts = np.linspace(t0, t1, 33)
            us = sol.sol(ts)  # (k, 33)
            below, above = us < 0, us >= L
            big = ts.size + 1
            first_below = np.where(below.any(axis=1), np.argmax(below, axis=1), big)
            first_above = np.where(above.any(axis=1), np.argmax(above, axis=1), big)
            vis = first_above < first_below
            i = np.clip(first_above, 1, ts.size - 1)
            rows = np.arange(idx.size)
            u_lo, u_hi = us[rows, i - 1], us[rows, i]
            with np.errstate(invalid="ignore", divide="ignore"):
                t_cross = ts[i - 1] + (L - u_lo) / (u_hi - u_lo) * (ts[i] - ts[i - 1])
            t_cross = np.where(first_above == 0, ts[0], t_cross)
            t_vis[idx[vis]] = t_cross[vis]
            alive[idx[~vis & (first_below < big)]] = False
            u[idx] = sol.y[:, -1]
        newborn = (~born) & (sig <= t1 + 1e-12)
        u[newborn] = 0.0
        born |= newborn
        t0 = t1
    late = ~born  # born after the drugs are gone: untreated growth from one cell
    t_vis[late] = np.where(sig[late] + tau_vis <= horizon, sig[late] + tau_vis, np.inf)
    return t_vis
