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

Two sub-grids. The kill quantities always come from the *uniform* sub-grid: every interval split into the same
number of Simpson panels, enough to resolve the fastest cytotoxic rate on the longest interval (sub-step
``<= SUB_STEP / rate``), so an accompanying drug never changes them (NACT with and without it kill alike, to the
bit). A schedule without an accompanying drug takes its microenvironment from the same grid. With an accompanying
drug, the microenvironment quantities come from a *segmented* sub-grid refined only where the drugs need it: every
in-window dose of an accompanying drug is a breakpoint (the concentration has a kink or a jump there, which a
Simpson panel must not straddle), so is ``t_d + g / k_a`` for ``g = 1, 2, 4, …`` while the absorption transient
lasts, and each segment between breakpoints has an even number of panels with sub-step ``<= SUB_STEP / r``, ``r``
the largest rate active there: the cytotoxic rate, ``k_el`` of an accompanying drug within ``NEGLIGIBLE / k_el``
of a dose, and ``k_a e^{-k_a τ / 4}`` ``τ`` days after its latest dose. The ``/ 4`` keeps the Simpson error of the
absorption term, ``∝ (h k_a)^4 e^{-k_a τ}``, at or below that of a uniform ``SUB_STEP / k_a`` grid. Accompanying
drugs' concentrations are summed by recurrence (:func:`~chemomet.model.pk.concentration_recurrent`), in time
linear in doses plus sub-points.

Timelines are cached per everything they depend on (:func:`build_timeline`, :func:`timeline_key`): a schedule is
built once per process, and every array of a :class:`Timeline` is read-only so no caller can change a shared one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, fields

import numpy as np

from chemomet.mechanisms import Mechanisms
from chemomet.model.microenv import relax
from chemomet.model.pk import concentration_recurrent, concentration_sorted, emax_effect, inhibition
from chemomet.regimens import Drug, Schedule

FIRST_STEP_DAYS = 0.01
STEP_GROWTH = 1.3
MAX_STEP_DAYS = 2.0
SIMPSON_PANELS = 16
SUB_STEP = 0.1  # a sub-step times the fastest rate it must resolve (dimensionless)
NEGLIGIBLE = 40.0  # a dose's exponential mode is negligible e^-40 after it (days x rate)
ONSET_RATE = 2.0  # an onset's rate is taken as ONSET_RATE / (τ0 + τ), τ0 from _onset_days (dimensionless)
SAME_DAY = 1e-9  # two breakpoints closer than this (days) are one
CACHE_SIZE = 32  # timelines kept per process (a least-recently-used cache)
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
    per interval). None when the mechanism is off. The sub-grid is the microenvironment's (refined for an
    accompanying drug's PK, see the module docstring). Every array is read-only (timelines are shared through
    the cache of :func:`build_timeline`).
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


@dataclass(frozen=True)
class _SubGrid:
    """Sub-points of every node interval, flat and sorted; each segment's end repeats as the next one's start.

    times: ``(P,)`` days; weight: Simpson weights (days), ``(n_int, panels + 1)`` on the uniform grid and ``(P,)``
    on the segmented one; dt: ``times`` minus the start of their interval (days, flat); first/last: index of
    each interval's first and last point; is_end: True at the last point of a segment (a left-limit there);
    shape: ``(n_int, panels + 1)`` for the uniform grid, None for the segmented one; segmented grid only:
    segment (each point's segment), local (its position in the segment) and step (each segment's sub-step, days).
    """

    times: np.ndarray
    weight: np.ndarray
    dt: np.ndarray
    first: np.ndarray
    last: np.ndarray
    is_end: np.ndarray
    shape: tuple[int, int] | None
    segment: np.ndarray | None = None
    local: np.ndarray | None = None
    step: np.ndarray | None = None

    def per_interval(self, *factors: np.ndarray) -> np.ndarray:
        """``∫`` over each interval of the product of ``factors`` (flat, one value per point), by Simpson."""
        prod = self.weight
        for f in factors:  # the uniform grid multiplies in the same order as a 2-D sum would: bit-identical
            prod = prod * (f if self.shape is None else f.reshape(self.shape))
        if self.shape is None:
            return np.add.reduceat(prod, self.first)
        return np.sum(prod, axis=1)


def _uniform_grid(nodes: np.ndarray, panels: int) -> _SubGrid:
    h = np.diff(nodes)
    frac = np.linspace(0.0, 1.0, panels + 1)
    sub = nodes[:-1, None] + h[:, None] * frac
    is_end = np.zeros(sub.shape, bool)
    is_end[:, -1] = True
    first = np.arange(h.size) * (panels + 1)
    return _SubGrid(
        times=sub.ravel(), weight=_simpson_weights(panels) * h[:, None], dt=(sub - nodes[:-1, None]).ravel(),
        first=first, last=first + panels, is_end=is_end.ravel(), shape=sub.shape,
    )


def _onset_days(d: Drug, td: np.ndarray, dm: np.ndarray) -> np.ndarray | None:
    """``τ0`` of each dose of an oral or s.c. drug: the time its absorption ramp takes to move the inhibition.

    Just after a dose the concentration rises as ``C_pre + c τ`` (``c = D k_a / V``, ``C_pre`` the level before
    the dose), so the inhibition ``I = I_max C / (IC50 + C)`` changes on the time scale ``τ0 + τ`` with
    ``τ0 = (IC50 + C_pre) / c`` (days): far faster than ``k_a`` after a first dose, when ``C_pre = 0`` and the
    IC50 is small. None for an i.v. drug (its concentration jumps at the dose, a breakpoint).
    """
    if not d.ka_per_day or d.ic50_mg_per_l is None:
        return None
    before = concentration_recurrent(td, td, dm, d, left_limit=np.ones(td.size, bool))
    with np.errstate(divide="ignore"):  # a dose of 0 mg has no onset (τ0 = inf)
        return (d.ic50_mg_per_l + before) / (dm * d.ka_per_day / d.volume_l)


def _breakpoints(nodes: np.ndarray, base_rate: float, accompanying) -> np.ndarray:
    """Nodes plus the in-window doses of the accompanying drugs, their absorption marks ``t_d + g / k_a`` and
    their onset marks ``t_d + τ0 (2^g - 1)``."""
    start, end = nodes[0], nodes[-1]
    marks = [np.empty(0)]
    for d, td, onset in accompanying:
        marks.append(td)
        if d.ka_per_day:  # the transient sets the step until k_a e^{-g/4} no longer beats the other rates
            ka, floor = d.ka_per_day, max(d.k_el_per_day, base_rate)
            after = np.append(td[1:], np.inf)  # the next dose starts a new transient
            g = 1.0
            while g < NEGLIGIBLE and ka * np.exp(-g / 4.0) > floor:
                m = td + g / ka
                marks.append(m[m < after])
                g *= 2.0
            scale = None if onset is None else onset.copy()  # the onset: while 2 / (τ0 2^g) beats the rest
            while scale is not None:
                keep = ONSET_RATE / (2.0 * scale) > max(ka, floor)
                if not keep.any():
                    break
                m = td + 2.0 * scale - onset
                marks.append(m[keep & (m < after)])
                scale = 2.0 * scale
    m = np.unique(np.concatenate(marks))
    m = m[(m > start + SAME_DAY) & (m < end - SAME_DAY)]
    m = m[np.diff(m, prepend=-np.inf) > SAME_DAY]
    i = np.searchsorted(nodes, m)
    near = np.minimum(np.abs(m - nodes[np.maximum(i - 1, 0)]), np.abs(nodes[np.minimum(i, nodes.size - 1)] - m))
    return np.union1d(nodes, m[near > SAME_DAY])


def _segmented_grid(nodes: np.ndarray, base_rate: float, accompanying) -> _SubGrid:
    """Segments between breakpoints (:func:`_breakpoints`), each with an even number of Simpson panels, sub-step
    ``<= SUB_STEP / r`` for the fastest rate ``r`` active at the segment's start."""
    b = _breakpoints(nodes, base_rate, accompanying)
    a, z = b[:-1], b[1:]
    length = z - a
    rate = np.full(a.size, base_rate)
    for d, td, onset in accompanying:
        j = np.searchsorted(td, a + SAME_DAY, side="right") - 1  # latest dose at or before the segment
        tau = np.where(j >= 0, np.maximum(a - td[np.maximum(j, 0)], 0.0), np.inf)
        ke = d.k_el_per_day
        rate = np.where(tau < NEGLIGIBLE / ke, np.maximum(rate, ke), rate)
        if d.ka_per_day:
            ka = d.ka_per_day
            during = tau < NEGLIGIBLE / ka
            tau_in = np.where(during, tau, 0.0)
            absorb = ka * np.exp(-ka * tau_in / 4.0)
            if onset is not None:
                absorb = np.maximum(absorb, ONSET_RATE / (onset[np.maximum(j, 0)] + tau_in))
            rate = np.where(during, np.maximum(rate, absorb), rate)
    panels = np.maximum(2, 2 * np.ceil(length * rate / (2.0 * SUB_STEP)).astype(np.int64))
    counts = panels + 1
    offset = np.concatenate([[0], np.cumsum(counts)])
    seg = np.repeat(np.arange(a.size), counts)
    k = np.arange(offset[-1]) - offset[seg]
    is_end = k == panels[seg]
    times = a[seg] + length[seg] * (k / panels[seg])
    times[is_end] = z  # breakpoints exactly
    coef = np.where((k == 0) | is_end, 1.0, np.where(k % 2 == 1, 4.0, 2.0))
    weight = coef * (length / (3.0 * panels))[seg]
    first = offset[np.searchsorted(a, nodes[:-1])]
    interval = np.searchsorted(first, np.arange(offset[-1]), side="right") - 1
    return _SubGrid(
        times=times, weight=weight, dt=times - nodes[interval], first=first,
        last=np.append(first[1:] - 1, offset[-1] - 1), is_end=is_end, shape=None, segment=seg, local=k,
        step=length / panels,
    )


def _exp_moments(x: np.ndarray):
    """``E_n(x) = x ∫_0^1 e^{-x v} v^n dv`` for n = 0, 1, 2 (dimensionless), by series where ``x`` is small."""
    x = np.asarray(x, dtype=float)
    small = x < 0.5
    xs = np.where(small, x, 0.0)
    series = [np.zeros(x.shape) for _ in range(3)]
    term = xs.copy()  # x (-x)^m / m!
    for m in range(20):  # |x| < 0.5: the terms fall below 1e-19 of the first well before m = 20
        for n in range(3):
            series[n] += term / (n + m + 1)
        term = term * (-xs) / (m + 1)
    xl = np.where(small, 1.0, x)
    e = np.exp(-xl)
    closed = (-np.expm1(-xl), (1.0 - e * (1.0 + xl)) / xl, (2.0 - e * (xl * xl + 2.0 * xl + 2.0)) / (xl * xl))
    return tuple(np.where(small, s_, c_) for s_, c_ in zip(series, closed, strict=True))


def _relax_quadratic(k_per_day: float, grid: _SubGrid, forcing: np.ndarray) -> np.ndarray:
    """``dy/dt = k (g - y)``, ``y = 0`` at the window start, exactly for ``g`` quadratic on each pair of panels.

    The segmented grid's counterpart of :func:`~chemomet.model.microenv.relax` (exact for piecewise-linear
    ``g``): interpolating the forcing by the same parabolas as Simpson's rule makes ``y`` accurate to the same
    (fourth) order, so a coarse sub-step after an onset costs no accuracy. ``forcing`` holds ``g`` at every
    sub-point (left-limits at segment ends); returns ``y`` at the de-duplicated sub-points (the relaxation grid,
    times ``grid.times[~grid.is_end]`` plus the window end).
    """
    steps = np.flatnonzero(~grid.is_end)
    t = grid.times
    odd = grid.local[steps] % 2 == 1  # the second panel of its pair
    p0 = np.where(odd, steps - 1, steps)  # the pair's first point
    g0, g1, g2 = forcing[p0], forcing[p0 + 1], forcing[p0 + 2]
    e0, e1, e2 = (e[grid.segment[steps]] for e in _exp_moments(k_per_day * grid.step))  # one sub-step a segment
    first = g0 * (e1 + e2) / 2.0 + g1 * (e0 - e2) + g2 * (e2 - e1) / 2.0
    second = g0 * (e2 - e1) / 2.0 + g1 * (2.0 * e1 - e2) + g2 * (2.0 * e0 - 3.0 * e1 + e2) / 2.0
    inc = np.where(odd, second, first)
    times = np.append(t[steps], t[-1])
    y = np.empty(times.shape)
    y[0] = 0.0
    decay = k_per_day * (times - times[0])
    start = 0
    while start < inc.size:  # y_{i+1} = e_i y_i + inc_i in closed form, in blocks (as in relax)
        stop = int(np.searchsorted(decay, decay[start] + 300.0, side="right")) - 1
        stop = max(min(stop, inc.size), start + 1)
        log_p = -(decay[start + 1 : stop + 1] - decay[start])
        y[start + 1 : stop + 1] = np.exp(log_p) * (y[start] + np.cumsum(inc[start:stop] * np.exp(-log_p)))
        start = stop
    return y


def _cytotoxic(grid: _SubGrid, nodes: np.ndarray, doses: dict, drugs: dict[str, Drug]):
    """Kill rate at unit chemosensitivity and chemotherapy stress at the sub-points (flat)."""
    kill = np.zeros(grid.times.shape)
    stress = np.zeros(grid.times.shape)
    first = np.append(grid.first, grid.times.size)
    for name, (td, dm) in doses.items():
        d = drugs[name]
        # a bolus at node t_d enters from the first sub-point of the interval starting at t_d (right-limit)
        begin = first[np.searchsorted(nodes[:-1], td - 1e-9)]
        effect = emax_effect(concentration_sorted(grid.times, begin, dm, td, d), d)
        kill += d.kmax_per_day * effect
        stress += d.stress_weight * effect
    return kill, stress


def _read_only(tl: Timeline) -> Timeline:
    for f in fields(tl):
        value = getattr(tl, f.name)
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
    return tl


def _freeze(value):
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def timeline_key(
    schedule: Schedule, drugs: dict[str, Drug], k_macrophage: float, k_mena: float,
    mechanisms: Mechanisms | None = None,
) -> tuple:
    """Everything a timeline depends on, as a hashable key (the cache key of :func:`build_timeline`).

    Parameters
    ----------
    schedule : Schedule
        The schedule, with every dose (day, drug, mg), the surgery day, marks and courses (days).
    drugs : dict[str, Drug]
        The drug table; every field of each drug the schedule gives enters the key (a changed half-life,
        volume, EC50, … gives a new key), other drugs do not.
    k_macrophage, k_mena : float
        Microenvironment relaxation rates (1/day).
    mechanisms : Mechanisms, optional
        The mechanisms (default: the shipped model).

    Returns
    -------
    tuple
        The key; it also holds the grid constants of this module (so changing one misses the cache).

    Examples
    --------
    >>> from chemomet.regimens import Strategy, load_drugs
    >>> sch = Strategy.parse("nact+rebastinib").schedule()
    >>> timeline_key(sch, load_drugs(), 0.03, 0.02) == timeline_key(sch, load_drugs(), 0.03, 0.02)
    True
    >>> timeline_key(sch, load_drugs(), 0.03, 0.02) == timeline_key(sch, load_drugs(), 0.04, 0.02)
    False
    """
    names = sorted({n for _, n, _ in schedule.dose_events})
    table = tuple(
        (n, _freeze(drugs[n].model_dump() if hasattr(drugs[n], "model_dump") else vars(drugs[n]))) for n in names
    )
    grid = (FIRST_STEP_DAYS, STEP_GROWTH, MAX_STEP_DAYS, SIMPSON_PANELS, SUB_STEP, NEGLIGIBLE, SAME_DAY,
            TAIL_LOG_EFFECT)
    return (schedule, table, float(k_macrophage), float(k_mena), mechanisms or Mechanisms(), grid)


_CACHE: OrderedDict = OrderedDict()
_LOCK = threading.Lock()
_COUNTS = {"hits": 0, "misses": 0}


def timeline_cache_info() -> dict[str, int]:
    """The timeline cache of this process: ``hits``, ``misses``, ``size`` (timelines held) and ``maxsize``.

    Returns
    -------
    dict[str, int]
        Lookups answered from the cache and built afresh since the last :func:`clear_timeline_cache`, the
        timelines held now and the most it holds (``CACHE_SIZE``).

    Examples
    --------
    >>> sorted(timeline_cache_info())
    ['hits', 'maxsize', 'misses', 'size']
    """
    with _LOCK:
        return {**_COUNTS, "size": len(_CACHE), "maxsize": CACHE_SIZE}


def clear_timeline_cache() -> None:
    """Empty the timeline cache of this process and reset its counts.

    Examples
    --------
    >>> clear_timeline_cache(); timeline_cache_info()["size"]
    0
    """
    with _LOCK:
        _CACHE.clear()
        _COUNTS.update(hits=0, misses=0)


def build_timeline(
    schedule: Schedule, drugs: dict[str, Drug], k_macrophage: float, k_mena: float,
    mechanisms: Mechanisms | None = None, *, cache: bool = True,
) -> Timeline | None:
    """The shared window quantities of a schedule, or None when there is no treatment.

    Built once per process for each :func:`timeline_key` and then taken from a least-recently-used cache of
    ``CACHE_SIZE`` timelines (thread-safe); a cached timeline is the very same object, bit for bit what a fresh
    build gives. Every array of the result is read-only, cached or not.

    Parameters
    ----------
    schedule : Schedule
        Dose events, surgery day and chemotherapy window (days from diagnosis).
    drugs : dict[str, Drug]
        The drug table, holding every drug of ``schedule``.
    k_macrophage, k_mena : float
        Relaxation rates of macrophage recruitment and MENA expression (1/day).
    mechanisms : Mechanisms, optional
        Optional mechanisms (default: the shipped model) whose schedule-level parts — mobilisation's release
        factor, priming's window — are built here.
    cache : bool, default True
        False builds afresh and leaves the cache alone.

    Returns
    -------
    Timeline or None

    Examples
    --------
    >>> from chemomet.regimens import Strategy, load_drugs
    >>> sch = Strategy.parse("nact+rebastinib").schedule()
    >>> tl = build_timeline(sch, load_drugs(), 0.03, 0.02)
    >>> tl is build_timeline(sch, load_drugs(), 0.03, 0.02), tl.env0.flags.writeable
    (True, False)
    >>> bool(np.array_equal(tl.env1, build_timeline(sch, load_drugs(), 0.03, 0.02, cache=False).env1))
    True
    """
    if not schedule.dose_events:
        return None
    if not cache:
        return _build_timeline(schedule, drugs, k_macrophage, k_mena, mechanisms)
    try:
        key = timeline_key(schedule, drugs, k_macrophage, k_mena, mechanisms)
        hash(key)
    except TypeError:  # something unhashable in a user's object: build without the cache
        return _build_timeline(schedule, drugs, k_macrophage, k_mena, mechanisms)
    with _LOCK:
        tl = _CACHE.get(key)
        if tl is not None:
            _CACHE.move_to_end(key)
            _COUNTS["hits"] += 1
            return tl
    tl = _build_timeline(schedule, drugs, k_macrophage, k_mena, mechanisms)
    with _LOCK:
        _COUNTS["misses"] += 1
        _CACHE[key] = tl
        _CACHE.move_to_end(key)
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return tl


def _build_timeline(
    schedule: Schedule, drugs: dict[str, Drug], k_macrophage: float, k_mena: float,
    mechanisms: Mechanisms | None = None,
) -> Timeline:
    mech = mechanisms or Mechanisms()
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

    by_drug: dict[str, list[tuple[float, float]]] = {}
    for t, name, dose in events:
        by_drug.setdefault(name, []).append((t, dose))
    doses = {name: tuple(np.array(d).T) for name, d in by_drug.items()}
    cytotoxic = {n: v for n, v in doses.items() if drugs[n].role == "cytotoxic"}
    accompanying = {n: v for n, v in doses.items() if drugs[n].role != "cytotoxic"}

    # The uniform sub-grid, shape (n_intervals, panels + 1): enough panels for Simpson's rule on the kill rate and
    # to resolve the fastest absorption or elimination of any cytotoxic drug (sub-step <= SUB_STEP/rate).
    h = np.diff(nodes)
    fastest = max(max(filter(None, (drugs[n].k_el_per_day, drugs[n].ka_per_day))) for _, n, _ in chemo)
    panels = SIMPSON_PANELS * max(1, int(np.ceil(h.max() * fastest / SUB_STEP / SIMPSON_PANELS)))
    base = _uniform_grid(nodes, panels)
    kill_flat, stress = _cytotoxic(base, nodes, cytotoxic, drugs)
    kill = kill_flat.reshape(base.shape)
    w = base.weight
    dt = base.dt.reshape(base.shape)
    kill_m0 = np.sum(w * kill, axis=1)
    kill_m1 = np.sum(w * kill * dt, axis=1)
    kill_m2 = np.sum(w * kill * dt**2, axis=1)
    kill_cum = np.concatenate([[0.0], np.cumsum(kill_m0)])
    half = panels // 2
    w_half = _simpson_weights(half) * (h[:, None] / 2.0)
    kill_cum_mid = kill_cum[:-1] + np.sum(w_half * kill[:, : half + 1], axis=1)

    # The microenvironment: on the same grid without an accompanying drug, else on a grid refined for its PK.
    grid = base
    if accompanying:
        pk = [(drugs[n], td, _onset_days(drugs[n], td, dm)) for n, (td, dm) in accompanying.items()]
        grid = _segmented_grid(nodes, fastest, pk)
        _, stress = _cytotoxic(grid, nodes, cytotoxic, drugs)
    # the share of each quantity an accompanying drug's target acts on that is left free (data/targets.toml)
    free = {"doorway_activity": np.ones(grid.times.shape), "macrophage_recruitment": np.ones(grid.times.shape)}
    release = np.ones(grid.times.shape) if mech.mobilisation else None  # mobilisation's X(t)
    for name, (td, dm) in accompanying.items():
        d = drugs[name]
        inhibited = inhibition(concentration_recurrent(grid.times, td, dm, d, left_limit=grid.is_end), d)
        free[d.acts_on] *= 1.0 - inhibited
        if release is not None and mech.release_per_inhibition(d.target) > 0:
            release += mech.release_per_inhibition(d.target) * inhibited
    if release is not None:
        release = release + mech.mobilisation_per_stress * stress
    activity = free["doorway_activity"]
    forcing = stress * free["macrophage_recruitment"]

    # Microenvironment: exact relaxation over the sub-grid, forcing linear on each sub-step.
    steps = np.flatnonzero(~grid.is_end)
    flat_t = np.append(grid.times[steps], nodes[-1])
    at = np.cumsum(~grid.is_end) - (~grid.is_end)  # each sub-point's index in the relaxation grid
    if grid.shape is not None:  # forcing linear on each sub-step (exact relaxation of that)
        m_sub = relax(0.0, k_macrophage, flat_t, forcing[steps], forcing[steps + 1])
        f_sub = relax(0.0, k_mena, flat_t, m_sub[:-1], m_sub[1:])
    else:  # forcing quadratic on each pair of panels
        m_sub = _relax_quadratic(k_macrophage, grid, forcing)
        f_sub = _relax_quadratic(k_mena, grid, m_sub[at])
    m_pts, f_pts = m_sub[at], f_sub[at]
    weight = activity if release is None else activity * release
    env0 = grid.per_interval(weight)
    env1 = grid.per_interval(weight, m_pts + f_pts)
    env2 = grid.per_interval(weight, m_pts, f_pts)
    optional = {}
    if release is not None:
        optional.update(
            other0=grid.per_interval(release),
            mobilisation=np.append(release[grid.first], release[-1]),
            sub_mobilisation=np.append(release[steps], release[-1]),
        )
    if prime_end is not None:
        mid = 0.5 * (nodes[:-1] + nodes[1:])
        optional["take"] = np.where(mid < prime_end, 1.0 + mech.priming_take_increase, 1.0)

    surgery = schedule.surgery_day
    if schedule.neoadjuvant:
        n_founding = int(np.searchsorted(nodes, surgery - 1e-9))  # intervals ending at or before surgery
    else:
        n_founding = 0
    return _read_only(Timeline(
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
        m=np.append(m_pts[grid.first], m_pts[-1]),
        f=np.append(f_pts[grid.first], f_pts[-1]),
        activity=np.append(activity[grid.first], activity[-1]),
        env0=env0,
        env1=env1,
        env2=env2,
        chemo_days=(first, last),
        sub_times=flat_t,
        sub_m=m_sub,
        sub_f=f_sub,
        sub_activity=np.append(activity[steps], activity[-1]),
        **optional,
    ))
