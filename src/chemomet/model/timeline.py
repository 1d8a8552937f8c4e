"""The treatment window on a shared time grid: everything that depends on the schedule, not the patient.

Outside the window ``[start, end]`` (first chemotherapy dose to the later of surgery and the end of the
drugs' effect) the model has closed forms. Inside it, quantities are evaluated once per schedule on a grid of
*nodes* (every bolus is a node; steps grow geometrically after each dose and are capped) and integrated
over each node interval with composite Simpson sub-points. Patients then only need per-interval moments:

* kill moments ``K_p = ∫ (r - t_i)^p k(r) dr`` (p = 0, 1, 2) of the kill rate at unit chemosensitivity,
  so that ``∫ e^{β r} k dr ≈ e^{β t_i} (K_0 + β K_1 + β² K_2 / 2)`` for any patient's ``β``;
* microenvironment moments ``∫ A``, ``∫ A (m + f)``, ``∫ A m f`` for the dissemination integral.

Optional mechanisms (:class:`~chemomet.mechanisms.Mechanisms`, off by default and then without any trace here):
mobilisation multiplies release by ``X(t) = 1 + ν_D D(t) + Σ ν_x I_x(t)``, so the moments become ``∫ X``,
``∫ X A``, ``∫ X A (m + f)``, ``∫ X A m f``; chemotherapy-primed colonisation multiplies the founding of each
interval before ``last dose + W`` by ``1 + π`` (that day is a node, so the split is exact).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chemomet.mechanisms import Mechanisms
from chemomet.model.microenv import relax
from chemomet.model.pk import concentration_sorted, emax_effect, inhibition
from chemomet.regimens import Drug, Schedule

FIRST_STEP_DAYS = 0.01
STEP_GROWTH = 1.3
MAX_STEP_DAYS = 2.0
SIMPSON_PANELS = 16
TAIL_LOG_EFFECT = 30.0  # the window lasts until every cytotoxic effect is below e^-30 of its EC50 scale


@dataclass(frozen=True)
class Timeline:
    """Shared schedule quantities on the window grid (all times in days from diagnosis).

    nodes: ``(n,)`` grid from ``start`` to ``end``; surgery_day: None without surgery; n_founding: number of
    intervals during which the primary is still in place (founding colonies); kill_cum: ``∫ k`` from the
    start to each node at unit chemosensitivity (ln-cells); kill_cum_mid: the same at interval midpoints;
    kill_start/kill_end: kill rate at the start (after any bolus) and end (before any bolus) of each interval;
    kill_m0/m1/m2: kill moments per interval; m, f: shared microenvironment responses at nodes;
    activity: doorway activity ``A`` at nodes; env0/env1/env2: microenvironment moments per interval (days);
    chemo_days: first and last chemotherapy dose; sub_times/sub_m/sub_f/sub_activity: the fine sub-grid.
    With mobilisation on: other0 (``∫ X`` per interval, days), mobilisation (``X`` at nodes) and
    sub_mobilisation (on the sub-grid), and env0/env1/env2 weighted by ``X``; with priming on: take (``1 + π`` or 1
    per interval). None when the mechanism is off.
    """

    nodes: np.ndarray
    surgery_day: float | None
    n_founding: int
    kill_cum: np.ndarray
    kill_cum_mid: np.ndarray
    kill_start: np.ndarray
    kill_end: np.ndarray
    kill_m0: np.ndarray
    kill_m1: np.ndarray
    kill_m2: np.ndarray
    m: np.ndarray
    f: np.ndarray
    activity: np.ndarray
    env0: np.ndarray
    env1: np.ndarray
    env2: np.ndarray
    chemo_days: tuple[float, float]
    sub_times: np.ndarray
    sub_m: np.ndarray
    sub_f: np.ndarray
    sub_activity: np.ndarray
    other0: np.ndarray | None = None
    mobilisation: np.ndarray | None = None
    sub_mobilisation: np.ndarray | None = None
    take: np.ndarray | None = None

    @property
    def start(self) -> float:
        """First day of the window (first chemotherapy dose)."""
        return float(self.nodes[0])

    @property
    def end(self) -> float:
        """Last day of the window."""
        return float(self.nodes[-1])

    def shared_at(self, times: np.ndarray):
        """``m``, ``f`` and ``A`` at arbitrary times inside the window (linear interpolation on the sub-grid)."""
        return (
            np.interp(times, self.sub_times, self.sub_m),
            np.interp(times, self.sub_times, self.sub_f),
            np.interp(times, self.sub_times, self.sub_activity),
        )

    def release_at(self, times: np.ndarray) -> np.ndarray:
        """Mobilisation's release factor ``X`` at times inside the window (1 when mobilisation is off)."""
        if self.sub_mobilisation is None:
            return np.ones(np.shape(times))
        return np.interp(times, self.sub_times, self.sub_mobilisation)

    def take_at(self, times: np.ndarray) -> np.ndarray:
        """Priming's take factor ``1 + π`` (or 1) at times inside the window (1 when priming is off)."""
        if self.take is None:
            return np.ones(np.shape(times))
        j = np.clip(np.searchsorted(self.nodes, times, side="right") - 1, 0, self.take.size - 1)
        return self.take[j]


def _window_end(events, drugs: dict[str, Drug], surgery_day: float | None) -> float:
    end = max(t for t, _, _ in events)
    for t, name, dose in events:
        d = drugs[name]
        if d.role == "cytotoxic":
            peak = dose / d.volume_l / d.ec50_mg_per_l
            tail = (np.log(max(peak, 1.0)) + TAIL_LOG_EFFECT / d.hill) / d.k_el_per_day
            end = max(end, t + tail)
    if surgery_day is not None:
        end = max(end, surgery_day)
    return end


def build_nodes(start: float, end: float, bolus_days, extra_days=()) -> np.ndarray:
    """Window grid: every bolus and extra day is a node; after a bolus, steps grow geometrically
    (``FIRST_STEP_DAYS`` × ``STEP_GROWTH``^k) up to ``MAX_STEP_DAYS``."""
    marks = np.unique(
        np.concatenate([[start, end], np.asarray(bolus_days, float), np.asarray(extra_days, float)])
    )
    marks = marks[(marks >= start) & (marks <= end)]
    bolus = set(np.round(np.asarray(bolus_days, float), 9))
    pieces = []
    for a, b in zip(marks[:-1], marks[1:], strict=True):
        step = FIRST_STEP_DAYS if round(a, 9) in bolus else MAX_STEP_DAYS
        t = a
        seg = [a]
        while b - t > 1.5 * step:  # a loop over grid nodes of one schedule, once per simulation
            t += step
            seg.append(t)
            step = min(step * STEP_GROWTH, MAX_STEP_DAYS)
        pieces.append(np.asarray(seg))
    pieces.append(np.asarray([end]))
    return np.unique(np.concatenate(pieces))


def _simpson_weights(panels: int) -> np.ndarray:
    w = np.ones(panels + 1)
    w[1:-1:2], w[2:-1:2] = 4.0, 2.0
    return w / (3.0 * panels)


def build_timeline(
    schedule: Schedule, drugs: dict[str, Drug], k_macrophage: float, k_mena: float,
    mechanisms: Mechanisms | None = None,
) -> Timeline | None:
    """The shared window quantities of a schedule, or None when there is no treatment.

    ``k_macrophage``, ``k_mena``: relaxation rates (1/day); ``mechanisms``: optional mechanisms (default: the
    shipped model) whose schedule-level parts — mobilisation's release factor, priming's window — are built here.
    """
    mech = mechanisms or Mechanisms()
    if not schedule.dose_events:
        return None
    events = schedule.dose_events
    chemo = [(t, n, d) for t, n, d in events if drugs[n].role == "cytotoxic"]
    start = min(t for t, _, _ in chemo)
    end = _window_end(chemo, drugs, schedule.surgery_day if schedule.neoadjuvant else None)
    first, last = schedule.chemo_days
    extra = [start, (first + last) / 2.0, *[m for m in schedule.marks if start < m < end]]
    if schedule.anti_her2 is not None:  # the anti-HER2 kill switches on and off at nodes
        extra += [d for d in (schedule.anti_her2.start_day, schedule.anti_her2.end_day) if start < d < end]
    if schedule.neoadjuvant:
        extra.append(schedule.surgery_day)
    prime_end = None
    if mech.priming and schedule.neoadjuvant:  # only colonies founded by the primary are primed
        prime_end = last + mech.priming_days_after_last_dose
        if start < prime_end < min(end, schedule.surgery_day):
            extra.append(prime_end)
    nodes = build_nodes(start, end, [t for t, _, _ in chemo], extra)

    # Sub-points of every interval, shape (n_intervals, panels + 1): enough panels for Simpson's rule on the
    # kill rate and to resolve the fastest absorption or elimination of any drug given (sub-step <= 0.1/rate).
    h = np.diff(nodes)
    fastest = max(max(filter(None, (drugs[n].k_el_per_day, drugs[n].ka_per_day))) for _, n, _ in events)
    panels = SIMPSON_PANELS * max(1, int(np.ceil(h.max() * fastest / 0.1 / SIMPSON_PANELS)))
    frac = np.linspace(0.0, 1.0, panels + 1)
    sub = nodes[:-1, None] + h[:, None] * frac
    flat = sub.ravel()  # sorted; interval ends repeat as the next interval's start

    kill = np.zeros(flat.shape)
    stress = np.zeros(flat.shape)
    # the share of each quantity an accompanying drug's target acts on that is left free (data/targets.toml)
    free = {"doorway_activity": np.ones(flat.shape), "macrophage_recruitment": np.ones(flat.shape)}
    release = np.ones(flat.shape) if mech.mobilisation else None  # mobilisation's X(t)
    by_drug: dict[str, list[tuple[float, float]]] = {}
    for t, name, dose in events:
        by_drug.setdefault(name, []).append((t, dose))
    for name, doses in by_drug.items():
        d = drugs[name]
        td, dm = np.array(doses).T
        if d.role == "cytotoxic":
            # a bolus at node t_d enters from the first sub-point of the interval starting at t_d (right-limit)
            begin = np.searchsorted(nodes[:-1], td - 1e-9) * (panels + 1)
            effect = emax_effect(concentration_sorted(flat, begin, dm, td, d), d)
            kill += d.kmax_per_day * effect
            stress += d.stress_weight * effect
        else:
            begin = np.searchsorted(flat, td - 1e-12)
            inhibited = inhibition(concentration_sorted(flat, begin, dm, td, d), d)
            free[d.acts_on] *= 1.0 - inhibited
            if release is not None and mech.release_per_inhibition(d.target) > 0:
                release += mech.release_per_inhibition(d.target) * inhibited
    if release is not None:
        release = (release + mech.mobilisation_per_stress * stress).reshape(sub.shape)
    shape = sub.shape
    kill, stress = kill.reshape(shape), stress.reshape(shape)
    activity = free["doorway_activity"].reshape(shape)
    forcing = stress * free["macrophage_recruitment"].reshape(shape)

    w = _simpson_weights(panels) * h[:, None]
    dt = sub - nodes[:-1, None]
    kill_m0 = np.sum(w * kill, axis=1)
    kill_m1 = np.sum(w * kill * dt, axis=1)
    kill_m2 = np.sum(w * kill * dt**2, axis=1)
    kill_cum = np.concatenate([[0.0], np.cumsum(kill_m0)])
    half = panels // 2
    w_half = _simpson_weights(half) * (h[:, None] / 2.0)
    kill_cum_mid = kill_cum[:-1] + np.sum(w_half * kill[:, : half + 1], axis=1)

    # Microenvironment: exact relaxation over the sub-grid, forcing linear on each sub-step.
    flat_t = sub[:, :-1].ravel()
    flat_t = np.append(flat_t, nodes[-1])
    g_start = forcing[:, :-1].ravel()
    g_end = forcing[:, 1:].ravel()
    m_sub = relax(0.0, k_macrophage, flat_t, g_start, g_end)
    m_start = m_sub[:-1]
    m_end = m_sub[1:]
    f_sub = relax(0.0, k_mena, flat_t, m_start, m_end)
    n_int, n_sub = sub.shape[0], panels + 1
    m_grid = np.concatenate(
        [m_sub[:-1].reshape(n_int, n_sub - 1), m_sub[n_sub - 1 :: n_sub - 1][:, None]], axis=1
    )
    f_grid = np.concatenate(
        [f_sub[:-1].reshape(n_int, n_sub - 1), f_sub[n_sub - 1 :: n_sub - 1][:, None]], axis=1
    )
    weight = activity if release is None else activity * release
    env0 = np.sum(w * weight, axis=1)
    env1 = np.sum(w * weight * (m_grid + f_grid), axis=1)
    env2 = np.sum(w * weight * m_grid * f_grid, axis=1)
    optional = {}
    if release is not None:
        optional.update(
            other0=np.sum(w * release, axis=1),
            mobilisation=np.append(release[:, 0], release[-1, -1]),
            sub_mobilisation=np.append(release[:, :-1].ravel(), release[-1, -1]),
        )
    if prime_end is not None:
        mid = 0.5 * (nodes[:-1] + nodes[1:])
        optional["take"] = np.where(mid < prime_end, 1.0 + mech.priming_take_increase, 1.0)

    surgery = schedule.surgery_day
    if schedule.neoadjuvant:
        n_founding = int(np.searchsorted(nodes, surgery - 1e-9))  # intervals ending at or before surgery
    else:
        n_founding = 0
    node_activity = np.append(activity[:, 0], activity[-1, -1])
    return Timeline(
        nodes=nodes,
        surgery_day=surgery,
        n_founding=n_founding,
        kill_cum=kill_cum,
        kill_cum_mid=kill_cum_mid,
        kill_start=kill[:, 0].copy(),
        kill_end=kill[:, -1].copy(),
        kill_m0=kill_m0,
        kill_m1=kill_m1,
        kill_m2=kill_m2,
        m=np.append(m_grid[:, 0], m_grid[-1, -1]),
        f=np.append(f_grid[:, 0], f_grid[-1, -1]),
        activity=node_activity,
        env0=env0,
        env1=env1,
        env2=env2,
        chemo_days=(first, last),
        sub_times=flat_t,
        sub_m=m_sub,
        sub_f=f_sub,
        sub_activity=np.append(activity[:, :-1].ravel(), activity[-1, -1]),
        **optional,
    )
