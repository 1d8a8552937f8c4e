"""The engine: simulate per-patient parameter sets under one explicit schedule, vectorised over patients.

:func:`simulate_schedule` takes what the model needs and nothing more — :class:`PatientParameters`, a
:class:`~chemomet.regimens.Schedule`, :class:`ModelSettings` and the drug table — and returns per-patient
summaries and trajectories. Reading patient files and resolving the population happen above it, in
:func:`chemomet.simulation.simulate`, which wraps the result in an :class:`Outcome`.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from chemomet.model import dissemination as dis
from chemomet.model.dormancy import dormant_visible_by
from chemomet.model.metastases import WindowKill, visible_by
from chemomet.model.parameters import (
    ModelSettings,
    PatientParameters,
    endocrine_sensitivity_for,
    reached_sensitivity,
)
from chemomet.model.primary import (
    course_in_window,
    growth_factor,
    treated_log_cells,
    untreated_log_cells,
    weighted_kill,
)
from chemomet.model.timeline import Timeline, build_timeline
from chemomet.regimens import Drug, Schedule
from chemomet.streams import BLOCK, child, draws_at, root_seed
from chemomet.toxicity import toxicity_uniforms
from chemomet.units import DAYS_PER_YEAR, cells_to_diameter_mm

SUMMARY_YEARS = (3, 5, 10, 15)

ENGINES = ("fused", "numpy")
"""How :func:`simulate_schedule` computes the treatment window: ``fused`` (compiled per-patient kernels,
:mod:`chemomet.model.fused`) or ``numpy`` (the reference, vectorised over patients × window nodes)."""

DEFAULT_ENGINE = "fused"
"""The engine of record."""

SUMMARY_UNITS = {
    "dmfs_3y": "probability",
    "dmfs_5y": "probability",
    "dmfs_10y": "probability",
    "dmfs_15y": "probability",
    "p_pcr": "probability (0 or 1 for one parameter set: residual < pCR threshold)",
    "residual_cells_at_surgery": "cells",
    "residual_diameter_mm_at_surgery": "mm",
    "surgery_day": "days from diagnosis",
    "tmem_baseline_10hpf": "doorways per 10 HPF",
    "tmem_at_surgery_10hpf": "doorways per 10 HPF",
    "tmem_ratio_surgery_baseline": "dimensionless",
    "ctc_expected_baseline": "cells per 7.5 mL",
    "ctc_expected_mid_nact": "cells per 7.5 mL",
    "ctc_expected_surgery": "cells per 7.5 mL",
    "ctc_count_baseline": "cells per 7.5 mL (negative-binomial draw plus the assay background)",
    "ctc_count_mid_nact": "cells per 7.5 mL (negative-binomial draw plus the assay background)",
    "ctc_count_surgery": "cells per 7.5 mL (negative-binomial draw plus the assay background)",
    "colonies_founded_total": "expected colonies",
    "colonies_founded_after_diagnosis": "expected colonies",
    "colonies_founded_during_chemo": "expected colonies",
    "shedding_per_cell_baseline": "colonies per cell^gamma per day",
    "shedding_per_cell_mean_nact": "colonies per cell^gamma per day",
    "early_surgery": "1 if a response-adapted strategy sent the patient to early surgery, 0 if not, NaN otherwise",
}

TRAJECTORY_UNITS = {
    "diameter_mm": "mm (0 after surgery)",
    "tmem_10hpf": "doorways per 10 HPF (NaN after surgery)",
    "ctc_expected": "cells per 7.5 mL",
    "founding_rate": "colonies per day",
    "dmfs": "probability of no visible distant metastasis (given none at diagnosis)",
}


@dataclass
class Outcome:
    """Result of :func:`chemomet.simulation.simulate`: per-patient summaries and, optionally, trajectories.

    Attributes
    ----------
    strategy : str
        The strategy's name, e.g. ``nact+rebastinib``.
    summary : pandas.DataFrame
        One row per patient: ``patient`` plus the columns of :data:`SUMMARY_UNITS` (DMFS probabilities at
        3/5/10/15 years, pCR, residual cells and diameter at surgery (cells, mm), surgery day (days from
        diagnosis), TMEM (doorways per 10 HPF), expected and drawn CTCs (cells per 7.5 mL), colonies founded).
    times_days : numpy.ndarray or None
        The output grid (days from diagnosis), or None without trajectories.
    trajectories : dict[str, numpy.ndarray]
        Name -> ``(n, len(times_days))`` array; units in :data:`TRAJECTORY_UNITS` (empty without a grid).
    units : dict[str, str]
        Class attribute: summary column -> unit (:data:`SUMMARY_UNITS`).

    Examples
    --------
    >>> import numpy as np
    >>> from chemomet.simulation import simulate
    >>> from chemomet.patient import example_patient
    >>> out = simulate(example_patient(), "nact", grid=np.array([0.0, 100.0, 365.0]))
    >>> out.strategy, out.summary.shape
    ('nact', (1, 24))
    >>> float(out.summary["surgery_day"].iloc[0]), out.units["surgery_day"]
    (203.0, 'days from diagnosis')
    >>> out.trajectories["diameter_mm"].shape  # 1 patient x 3 grid times (mm)
    (1, 3)
    >>> sorted(out.to_dict())
    ['patients', 'strategy', 'times_days', 'trajectories', 'units']
    """

    strategy: str
    summary: pd.DataFrame
    times_days: np.ndarray | None = None
    trajectories: dict[str, np.ndarray] = field(default_factory=dict)

    units = SUMMARY_UNITS

    def to_dict(self) -> dict:
        """A JSON-ready dict: strategy, units, per-patient summaries and (if any) trajectories.

        Missing values (NaN) become None, so the dict passes strict JSON.

        Examples
        --------
        >>> import pandas as pd
        >>> out = Outcome("natural-history", pd.DataFrame({"patient": ["p1"], "p_pcr": [float("nan")]}))
        >>> out.to_dict()["patients"]
        [{'patient': 'p1', 'p_pcr': None}]
        """
        out = {
            "strategy": self.strategy,
            "units": {**SUMMARY_UNITS, **({"trajectories": TRAJECTORY_UNITS} if self.trajectories else {})},
            "patients": _records(self.summary),
        }
        if self.times_days is not None:
            out["times_days"] = self.times_days.tolist()
            out["trajectories"] = {
                k: np.where(np.isfinite(v), v, None).tolist() for k, v in self.trajectories.items()
            }
        return out


def _records(df: pd.DataFrame) -> list[dict]:
    clean = df.astype(object).where(pd.notna(df), None)
    return clean.to_dict(orient="records")


def simulate_schedule(
    params: PatientParameters,
    schedule: Schedule,
    settings: ModelSettings,
    horizon_days: float,
    *,
    drugs: dict[str, Drug],
    grid=None,
    early=None,
    toxicity=None,
    seed: int = 0,
    start_index: int = 0,
    chunk_size: int = 2 * BLOCK,
    workers: int | None = None,
    progress=None,
    engine: str | None = None,
):
    """Simulate parameter sets under an explicit schedule (the engine behind :func:`chemomet.simulation.simulate`;
    counterfactual schedules use it directly).

    Parameters
    ----------
    params : PatientParameters
        Per-patient parameters (``n`` patients).
    schedule : Schedule
        Dose events, surgery day and chemotherapy window (days from diagnosis).
    settings : ModelSettings
        Population-level settings.
    horizon_days : float
        Follow-up horizon (days); DMFS beyond it is NaN.
    drugs : dict[str, Drug]
        The drug table, name -> :class:`~chemomet.regimens.Drug`, holding every drug of ``schedule``.
    grid : numpy.ndarray, optional
        Output times (days from diagnosis) for trajectories.
    early : tuple, optional
        Response-adapted routing ``(early-surgery schedule, interim day, response threshold)`` (days from
        diagnosis, fractional decrease of the diameter).
    toxicity : tuple, optional
        Drug toxicity ``(schedule of a patient with the event, probability per patient)``
        (:func:`chemomet.toxicity.toxicity_schedule`): patient ``i`` follows that schedule when her uniform of
        the toxicity stream (:func:`chemomet.toxicity.toxicity_uniforms`, keyed by ``start_index + i``) is below
        the probability. Not combined with ``early``.
    seed, start_index : int
        CTC and toxicity draws use per-patient streams keyed by ``start_index + i``.
    chunk_size, workers, progress
        See :func:`chemomet.simulation.simulate`.
    engine : {"fused", "numpy"}, optional
        How the treatment window is computed: ``"fused"`` (the engine of record, the default: compiled per-patient
        kernels, :mod:`chemomet.model.fused`) or ``"numpy"`` (the readable reference, vectorised over patients ×
        window nodes; ``tests/test_fused_engine.py`` ties the two). Default :data:`DEFAULT_ENGINE`.

    Returns
    -------
    summary : pandas.DataFrame
        The columns of :data:`SUMMARY_UNITS`, one row per patient.
    trajectories : dict[str, numpy.ndarray]
        ``(n, len(grid))`` arrays (units in :data:`TRAJECTORY_UNITS`; empty without ``grid``).

    Raises
    ------
    ValueError
        If ``params`` holds no patients, ``toxicity`` is given with ``early``, or ``engine`` is unknown.

    Examples
    --------
    >>> from chemomet.population import Population
    >>> from chemomet.regimens import Strategy, load_drugs
    >>> _, params = Population().sample(3, 0)
    >>> summary, _ = simulate_schedule(params, Strategy.parse("nact").schedule(), Population().settings,
    ...                                3652.5, drugs=load_drugs())
    >>> bool(summary["dmfs_10y"].between(0, 1).all())
    True
    """
    if params.n == 0:
        raise ValueError("no patients to simulate")
    if toxicity is not None and early is not None:
        raise ValueError("drug toxicity is not modelled with response-adapted NACT; allowed: one of the two")
    engine = DEFAULT_ENGINE if engine is None else engine
    if engine not in ENGINES:
        raise ValueError(f"engine = {engine!r}; allowed: {', '.join(ENGINES)}")
    mech = settings.mechanisms
    if not mech.doorway:  # the doorway mechanism off: chemotherapy stress no longer raises doorways
        params = replace(params, epsilon=np.zeros(params.n))

    def timeline(sch):
        return build_timeline(sch, drugs, settings.k_macrophage_per_day, settings.k_mena_per_day, mech)

    tl = timeline(schedule)
    if early is not None:
        early_schedule, interim, threshold = early
        early = (early_schedule, timeline(early_schedule), interim, threshold)
    if toxicity is not None:
        toxicity = (toxicity[0], timeline(toxicity[0]), toxicity[1])
    root = root_seed(seed)
    bounds = [(lo, min(lo + chunk_size, params.n)) for lo in range(0, params.n, chunk_size)]
    rates = therapy_rates(schedule, drugs)

    def run(bound):
        lo, hi = bound
        chunk = params.take(slice(lo, hi))
        indices = np.arange(start_index + lo, start_index + hi)
        if toxicity is not None:
            tox_schedule, tox_tl, probability = toxicity
            event = toxicity_uniforms(root, indices) < probability
            groups = [(~event, schedule, tl), (event, tox_schedule, tox_tl)]
            return _grouped_chunk(chunk, groups, settings, horizon_days, grid, root, indices, rates, engine)
        if early is None:
            return _simulate_chunk(chunk, schedule, tl, settings, horizon_days, grid, root, indices, rates, engine)
        return _adaptive_chunk(chunk, schedule, tl, early, settings, horizon_days, grid, root, indices, rates, engine)

    workers = max(1, min(workers or os.cpu_count() or 1, len(bounds)))
    results = []
    # NumPy's array kernels and the fused kernels release the GIL, so chunks run in parallel on threads; order is
    # kept, and no chunk's result depends on another's.
    if workers == 1:  # one chunk (every single-patient call) or one thread: no pool to start and join
        mapped = map(run, bounds)
        pool = None
    else:
        pool = ThreadPoolExecutor(max_workers=workers)
        mapped = pool.map(run, bounds)
    try:
        for (_, hi), res in zip(bounds, mapped, strict=True):
            results.append(res)
            if progress is not None:
                progress(hi, params.n)
    finally:
        if pool is not None:
            pool.shutdown()
    parts = [r[0] for r in results]
    trajs = [r[1] for r in results]
    summary = pd.concat(parts, ignore_index=True)
    trajectories = {k: np.concatenate([t[k] for t in trajs]) for k in trajs[0]} if grid is not None else {}
    return summary, trajectories


def dmfs_at(
    params: PatientParameters,
    schedule: Schedule,
    settings: ModelSettings,
    times_days,
    *,
    drugs: dict[str, Drug],
    chunk_size: int = 2 * BLOCK,
    workers: int | None = None,
) -> np.ndarray:
    """DMFS (probability) of each parameter set at a few ``times_days`` (days from diagnosis) under ``schedule``:
    exactly :func:`simulate_schedule`'s DMFS at those times (fused engine, no response-adapted routing, no drug
    toxicity), without the summaries, CTC draws and trajectories it also forms.

    The compiled kernel takes each output time on its own, so asking for only the times wanted changes no value;
    where a patient has dormancy the times are laid out as :func:`simulate_schedule` lays them out with
    ``horizon_days = max(times_days)`` and ``grid = [0, *times_days]`` (the dormant pool's quadrature is a
    matrix product whose rounding may depend on that layout). A schedule without a treatment window (or more
    than 8 times) goes through :func:`simulate_schedule` itself.

    Parameters
    ----------
    params : PatientParameters
        Per-patient parameters (``n`` patients).
    schedule : Schedule
        Dose events, surgery day and chemotherapy window (days from diagnosis).
    settings : ModelSettings
        Population-level settings.
    times_days : array_like
        Output times (days from diagnosis, > 0).
    drugs : dict[str, Drug]
        The drug table.
    chunk_size, workers
        As :func:`simulate_schedule` (results do not depend on them).

    Returns
    -------
    numpy.ndarray
        ``(n, len(times_days))`` probabilities of no visible distant metastasis.

    Examples
    --------
    >>> from chemomet.population import Population
    >>> from chemomet.regimens import Strategy, load_drugs
    >>> _, params = Population().sample(3, 0)
    >>> sch, s = Strategy.parse("nact").schedule(), Population().settings
    >>> _, traj = simulate_schedule(params, sch, s, 3652.5, drugs=load_drugs(), grid=np.array([0.0, 3652.5]))
    >>> bool(np.array_equal(dmfs_at(params, sch, s, [3652.5], drugs=load_drugs())[:, 0], traj["dmfs"][:, 1]))
    True
    """
    if params.n == 0:
        raise ValueError("no patients to simulate")
    times = np.asarray(times_days, dtype=float)
    mech = settings.mechanisms
    tl = build_timeline(schedule, drugs, settings.k_macrophage_per_day, settings.k_mena_per_day, mech)
    if tl is None or times.size > 8:
        horizon = float(times.max())
        grid = np.concatenate([[0.0], times])
        _, traj = simulate_schedule(params, schedule, settings, horizon, drugs=drugs, grid=grid,
                                    chunk_size=chunk_size, workers=workers)
        return traj["dmfs"][:, 1:]
    from chemomet.model.fused import fused_window

    if not mech.doorway:  # as simulate_schedule: chemotherapy stress no longer raises doorways
        params = replace(params, epsilon=np.zeros(params.n))
    rates = therapy_rates(schedule, drugs)
    log_vis = float(np.log(settings.visible_cells))
    founding_end = np.inf if schedule.surgery_day is None else schedule.surgery_day
    eval_times = np.concatenate([[0.0], times])
    if np.any(params.dormant_fraction > 0):  # simulate_schedule's layout: its summary years, then the grid
        years = np.array(SUMMARY_YEARS, float) * DAYS_PER_YEAR
        eval_times = np.concatenate([[0.0], np.minimum(years, times.max()), eval_times])

    def run(bound):
        p = params.take(slice(*bound))
        courses = courses_after_window(p, schedule, tl, rates)
        lam, *_ = fused_window(  # no ln cells wanted: the kernel skips the primary where nothing else needs it
            p, schedule, tl, rates, courses, log_vis, founding_end, eval_times, np.array([], np.int64), shedding=False
        )
        return np.exp(-(lam - lam[:, :1]))[:, eval_times.size - times.size :]

    bounds = [(lo, min(lo + chunk_size, params.n)) for lo in range(0, params.n, chunk_size)]
    workers = max(1, min(workers or os.cpu_count() or 1, len(bounds)))
    if workers == 1:
        parts = [run(b) for b in bounds]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(run, bounds))
    return np.concatenate(parts) if parts else np.empty((0, times.size))


def therapy_rates(schedule, drugs: dict[str, Drug]) -> dict[str, float | None]:
    """The schedule's constant-rate therapies at median sensitivity: ``growth_block`` of its endocrine drug
    (dimensionless share of the growth drive) and the summed ``kill_per_day`` of its anti-HER2 drugs
    (ln-cells/day); None where the schedule has none.

    Examples
    --------
    >>> from chemomet.regimens import Strategy, load_drugs
    >>> sch = Strategy.parse("nact:tamoxifen", "ac-paclitaxel-weekly-trastuzumab-pertuzumab").schedule()
    >>> rates = therapy_rates(sch, load_drugs())
    >>> rates["endocrine_block"] == load_drugs()["tamoxifen"].growth_block
    True
    """
    her2 = schedule.anti_her2
    endo = None if schedule.endocrine is None else drugs[schedule.endocrine.drug]
    return {
        "endocrine_block": None if endo is None else endo.growth_block,
        "endocrine_reach": None if endo is None else float(endo.nonresponder_reach or 0.0),
        "endocrine_reached": None if endo is None else reached_sensitivity(endo),
        "anti_her2_kill": None if her2 is None else float(sum(drugs[a].kill_per_day for a in her2.agents)),
    }


def primary_in_window(p: PatientParameters, schedule, tl: Timeline, rates):
    """The primary through the treatment window, at the window nodes.

    ``rates``: :func:`therapy_rates` of ``schedule``. Returns the growth factors ``e^{β(t_i - c)}``, the
    chemotherapy kill ``Ĝ`` at unit chemosensitivity, the anti-HER2 kill (``∫ e^{β(r-c)} k_H dr`` at the nodes and
    ``k_H`` per interval, ln-cells/day; None without anti-HER2 therapy), ln(cells) and the resistant share, each
    ``(n, nodes)`` or ``(n, intervals)``.

    Examples
    --------
    >>> from chemomet.population import Population
    >>> from chemomet.regimens import Strategy, load_drugs
    >>> cov, p = Population().sample(1, 0)
    >>> sch = Strategy.parse("nact", "ac-paclitaxel-weekly-trastuzumab").schedule()
    >>> tl = build_timeline(sch, load_drugs(), 0.1, 0.1)
    >>> growth, gkill, her2, log_n, share = primary_in_window(p, sch, tl, therapy_rates(sch, load_drugs()))
    >>> log_n.shape == growth.shape == (1, tl.nodes.size), her2[1].shape == (1, tl.nodes.size - 1)
    (True, True)
    """
    growth = growth_factor(p, tl)
    gkill = weighted_kill(p, tl, growth)
    her2 = None
    if rates["anti_her2_kill"] is not None:
        k = (rates["anti_her2_kill"] * p.her2_sensitivity)[:, None]  # ln-cells/day
        unit, on = course_in_window(p, tl, schedule.anti_her2.start_day, schedule.anti_her2.end_day)
        her2 = (k * unit, k * on)
    log_n, share = treated_log_cells(p, tl, growth, gkill, None if her2 is None else her2[0])
    return growth, gkill, her2, log_n, share


def _adaptive_chunk(
    p: PatientParameters, schedule, tl: Timeline, early, settings, horizon, grid, root, indices, rates,
    engine=DEFAULT_ENGINE,
):
    """Response-adapted NACT: measure at the interim day, send non-responders to early surgery."""
    early_schedule, early_tl, interim_day, threshold = early
    j = int(np.searchsorted(tl.nodes, interim_day - 1e-9))
    if engine == "fused":
        from chemomet.model.fused import fused_window

        log_n_j = fused_window(p, schedule, tl, rates, [], 0.0, np.inf, np.empty(0), [j], primary_only=True)[1][:, 0]
    else:
        log_n_j = primary_in_window(p, schedule, tl, rates)[3][:, j]
    shrinkage = 1.0 - np.exp((log_n_j - p.log_cells0) / 3.0)  # fractional decrease of the diameter
    groups = [(shrinkage >= threshold, schedule, tl), (shrinkage < threshold, early_schedule, early_tl)]
    summary, traj = _grouped_chunk(p, groups, settings, horizon, grid, root, indices, rates, engine)
    summary["early_surgery"] = np.where(shrinkage < threshold, 1.0, 0.0)
    return summary, traj


def _grouped_chunk(p: PatientParameters, groups, settings, horizon, grid, root, indices, rates,
                   engine=DEFAULT_ENGINE):
    """Patients routed to different schedules: ``groups`` of ``(mask, schedule, timeline)``, results in patient
    order."""
    parts, trajs, order = [], [], []
    for mask, sch, timeline in groups:
        rows = np.flatnonzero(mask)
        if rows.size:
            summary, traj = _simulate_chunk(
                p.take(rows), sch, timeline, settings, horizon, grid, root, indices[rows], rates, engine
            )
            parts.append(summary)
            trajs.append(traj)
            order.append(rows)
    inverse = np.argsort(np.concatenate(order))
    summary = pd.concat(parts, ignore_index=True).iloc[inverse].reset_index(drop=True)
    traj = {k: np.concatenate([t[k] for t in trajs])[inverse] for k in trajs[0]}
    return summary, traj


def endocrine_window(schedule, tl: Timeline | None) -> tuple[float, float] | None:
    """First and last day of endocrine therapy as the engine applies it (days from diagnosis), or None.

    Therapy starts on the course's start day, but not before the treatment window has closed (the engine's
    closed forms take endocrine therapy after the cytotoxic effect has faded, a few weeks at most), and lasts the
    course's length.

    Examples
    --------
    >>> from chemomet.regimens import Strategy
    >>> endocrine_window(Strategy.parse("surgery-only:tamoxifen").schedule(), None)  # 21 + 28 days, + 5 years
    (49.0, 1875.25)
    """
    course = schedule.endocrine
    if course is None:
        return None
    start = course.start_day if tl is None else max(course.start_day, tl.end)
    return start, start + (course.end_day - course.start_day)


def _simulate_chunk(
    p: PatientParameters, schedule, tl: Timeline | None, settings: ModelSettings, horizon, grid, root, indices,
    rates, engine=DEFAULT_ENGINE,
):
    n = p.n
    log_vis = float(np.log(settings.visible_cells))
    surgery = schedule.surgery_day
    founding_end = np.inf if surgery is None else surgery
    kappa_s = p.s_met * p.chemosensitivity
    kappa_r = kappa_s * p.resistant_kill_ratio

    years = np.array(SUMMARY_YEARS, float) * DAYS_PER_YEAR
    eval_times = np.concatenate([[0.0], np.minimum(years, horizon)])
    if grid is not None:
        eval_times = np.concatenate([eval_times, grid])

    courses = courses_after_window(p, schedule, tl, rates)
    log_n = None  # ln cells of the primary at the window nodes (all of them, or those of `wanted`)
    if tl is not None and engine == "fused":
        from chemomet.model.fused import fused_window

        j_s = tl.n_founding
        j_mid = int(np.searchsorted(tl.nodes, 0.5 * sum(tl.chemo_days) - 1e-9))
        wanted = np.arange(tl.nodes.size) if grid is not None else np.array([j_s, j_mid])
        lam, log_n, founded_window, shedding_nact = fused_window(
            p, schedule, tl, rates, courses, log_vis, founding_end, eval_times, wanted
        )
        at_node = (lambda j: log_n[:, j]) if grid is not None else {j_s: log_n[:, 0], j_mid: log_n[:, 1]}.get
    else:
        lam, log_n, founded_window, shedding_nact = _numpy_window(
            p, schedule, tl, settings, rates, courses, kappa_s, kappa_r, log_vis, founding_end, eval_times
        )
        at_node = None if log_n is None else (lambda j: log_n[:, j])
    dmfs = np.exp(-(lam - lam[:, :1]))
    out = {
        f"dmfs_{y}y": np.where(years[i] <= horizon, dmfs[:, 1 + i], np.nan)
        for i, y in enumerate(SUMMARY_YEARS)
    }

    # primary, microenvironment and CTCs at the clinical time points
    base_founding = p.mu * np.exp(p.gamma * p.log_cells0)  # baseline microenvironment: env factor 1
    ctc_base = dis.expected_ctc(base_founding, settings)
    nan = np.full(n, np.nan)
    # untreated founding until the window starts or surgery; without surgery (natural history) to the horizon
    pre_end = horizon if surgery is None else min(founding_end, tl.start if tl else np.inf)
    founded_pre, founded_before_dx = dis.untreated_cumulative_founding(p, np.array([pre_end, 0.0])).T
    out.update(
        colonies_founded_total=founded_pre + founded_window,
        colonies_founded_after_diagnosis=founded_pre + founded_window - founded_before_dx,
        colonies_founded_during_chemo=founded_window,
        shedding_per_cell_baseline=p.mu.copy(),
        tmem_baseline_10hpf=p.T0.copy(),
        ctc_expected_baseline=ctc_base,
        surgery_day=np.full(n, np.nan if surgery is None else surgery),
    )
    if schedule.neoadjuvant:
        j_s = tl.n_founding
        j_mid = int(np.searchsorted(tl.nodes, 0.5 * sum(tl.chemo_days) - 1e-9))

        def founding_at(j):  # colonies/day at node j (mobilisation raises release, and with it CTCs; priming not)
            env = dis.environment_factor(p, tl.m[j : j + 1], tl.f[j : j + 1], tl.activity[j : j + 1])
            if tl.mobilisation is not None:
                env = env * tl.mobilisation[None, j : j + 1]
            return dis.founding_rate(p, at_node(j)[:, None], env)[:, 0]

        residual = np.exp(at_node(j_s))
        ratio = (1 + p.epsilon * tl.m[j_s]) * (1 + p.epsilon * tl.f[j_s])
        out.update(
            residual_cells_at_surgery=residual,
            p_pcr=(residual < settings.pcr_threshold_cells).astype(float),
            tmem_at_surgery_10hpf=p.T0 * ratio,
            tmem_ratio_surgery_baseline=ratio,
            ctc_expected_mid_nact=dis.expected_ctc(founding_at(j_mid), settings),
            ctc_expected_surgery=dis.expected_ctc(founding_at(j_s), settings),
            shedding_per_cell_mean_nact=shedding_nact,
        )
    else:
        residual = nan if surgery is None else np.exp(untreated_log_cells(p, [surgery])[:, 0])
        out.update(
            residual_cells_at_surgery=residual,
            p_pcr=nan if surgery is None else np.zeros(n),
            tmem_at_surgery_10hpf=nan if surgery is None else p.T0.copy(),
            tmem_ratio_surgery_baseline=nan if surgery is None else np.ones(n),
            ctc_expected_mid_nact=nan,
            ctc_expected_surgery=nan
            if surgery is None
            else dis.expected_ctc(p.mu * np.exp(p.gamma * np.log(residual)), settings),
            shedding_per_cell_mean_nact=nan,
        )
    out["residual_diameter_mm_at_surgery"] = cells_to_diameter_mm(
        out["residual_cells_at_surgery"], settings.cells_per_mm3
    )
    _, u = draws_at(child(root, 1), indices, 0, 3)
    b = settings.ctc_background_per_sample
    u_b = draws_at(child(root, dis.CTC_BACKGROUND_STREAM), indices, 0, 3)[1] if b > 0 else np.zeros_like(u)
    for k, key in enumerate(("baseline", "mid_nact", "surgery")):
        out[f"ctc_count_{key}"] = dis.ctc_counts(
            out[f"ctc_expected_{key}"], settings.ctc_count_dispersion, u[:, k], b, u_b[:, k]
        )
    out["early_surgery"] = np.full(n, np.nan)
    summary = pd.DataFrame({k: out[k] for k in SUMMARY_UNITS})

    traj = {}
    if grid is not None:
        traj = outputs_on_grid(p, tl, schedule, settings, grid, dmfs[:, 1 + len(SUMMARY_YEARS) :], None, None, log_n)
    return summary, traj


def _numpy_window(p, schedule, tl, settings, rates, courses, kappa_s, kappa_r, log_vis, founding_end, eval_times):
    """The reference engine's window, vectorised over patients × window nodes: ``Λ`` at ``eval_times`` (expected
    visible colonies), ln cells at every node (None without a window), colonies founded in the window and the mean
    founding rate per cell^γ there (NaN without founding in the window)."""
    n = p.n
    growth = gkill = log_n = share_nodes = her2 = None
    mass_s = mass_r = None
    founded_window = np.zeros(n)
    shedding = np.full(n, np.nan)
    if tl is not None:
        growth, gkill, her2, log_n, share_nodes = primary_in_window(p, schedule, tl, rates)
        if tl.n_founding > 0:
            mass_s = dis.window_founding_mass(p, tl, log_n, 1.0 - share_nodes)
            mass_r = dis.window_founding_mass(p, tl, log_n, share_nodes)
            founded_window = mass_s.sum(axis=1) + mass_r.sum(axis=1)
            j_s = tl.n_founding
            env = dis.environment_factor(p, tl.m[: j_s + 1], tl.f[: j_s + 1], tl.activity[: j_s + 1])
            if tl.mobilisation is not None:
                env = env * tl.mobilisation[None, : j_s + 1]
            h = np.diff(tl.nodes)[:j_s]
            per_cell = p.mu[:, None] * env  # founding rate per cell^gamma
            shedding = np.sum(0.5 * (per_cell[:, 1:] + per_cell[:, :-1]) * h, axis=1) / h.sum()
    clones = (tl, growth, gkill, her2, kappa_s, kappa_r, mass_s, mass_r, log_vis, founding_end, eval_times)
    lam = _over_clones(visible_by, p, None, *clones, courses=courses)
    dormant = np.flatnonzero(p.dormant_fraction > 0)
    if dormant.size:
        q = p.dormant_fraction[dormant][:, None]
        woken = _over_clones(dormant_visible_by, p, dormant, *clones, courses=courses)
        lam[dormant] = (1.0 - q) * lam[dormant] + q * woken
    return lam, log_n, founded_window, shedding


def courses_after_window(p: PatientParameters, schedule, tl: Timeline | None, rates) -> list[tuple]:
    """Constant-rate courses after the window, ``(k (n,), first day, last day)`` with ``k`` in ln-cells/day:
    endocrine therapy (it removes ``growth_block × e`` of each colony's growth drive ``α``) and the rest of the
    anti-HER2 therapy (``kill_per_day × h``), each acting on both clones alike.

    Examples
    --------
    >>> from chemomet.population import Population
    >>> from chemomet.regimens import Strategy, load_drugs
    >>> _, p = Population().sample(2, 0)
    >>> sch = Strategy.parse("nact:tamoxifen", "ac-paclitaxel-weekly-trastuzumab").schedule()
    >>> tl = build_timeline(sch, load_drugs(), 0.1, 0.1)
    >>> [(round(e0), round(e1)) for _, e0, e1 in courses_after_window(p, sch, tl, therapy_rates(sch, load_drugs()))]
    [(231, 2057), (215, 462)]
    """
    courses = []
    days = endocrine_window(schedule, tl)
    if days is not None:
        e = endocrine_sensitivity_for(p, rates["endocrine_reach"], rates["endocrine_reached"])
        courses.append((rates["endocrine_block"] * e * p.alpha_per_day, *days))
    her2 = schedule.anti_her2
    if her2 is not None and tl is not None and her2.end_day > tl.end:
        k = rates["anti_her2_kill"] * p.her2_sensitivity
        courses.append((k, max(her2.start_day, tl.end), her2.end_day))
    return courses


def _over_clones(
    visible, p, rows, tl, growth, gkill, her2, kappa_s, kappa_r, mass_s, mass_r, log_vis, founding_end, times,
    courses=(),
):
    """``Λ`` summed over sensitive- and resistant-founded colonies of the patients ``rows`` (None: all).

    ``visible`` is :func:`~chemomet.model.metastases.visible_by` or its dormant counterpart; the resistant
    clone's colonies are computed only for patients that carry one. Chemotherapy kills a clone's colonies at
    ``κ k(t)`` (``kappa_s``, ``kappa_r``); anti-HER2 therapy (``her2``: weighted kill and rate per interval)
    and the ``courses`` after the window act on both clones alike.
    """
    def pick(x, idx):
        return x if x is None or idx is None else x[idx]

    def kill(kappa, idx):
        if tl is None:
            return None
        k = kappa[:, None]
        weighted, start, end = k * pick(gkill, idx), k * tl.kill_start, k * tl.kill_end
        if her2 is not None:
            weighted = weighted + pick(her2[0], idx)
            on = pick(her2[1], idx)
            start, end = start + on, end + on
        return WindowKill(weighted, start, end)

    def after(idx):
        return [(pick(k, idx), e0, e1) for k, e0, e1 in courses]

    sub = p if rows is None else p.take(rows)
    share_r = sub.resistant_fraction
    lam = visible(
        sub, tl, pick(growth, rows), kill(pick(kappa_s, rows), rows), 1.0 - share_r, pick(mass_s, rows),
        log_vis, founding_end, times, courses=after(rows),
    )
    has_r = np.flatnonzero(share_r > 0)
    if has_r.size:
        both = has_r if rows is None else rows[has_r]
        lam[has_r] += visible(
            p.take(both), tl, pick(growth, both), kill(kappa_r[both], both), share_r[has_r],
            pick(mass_r, both), log_vis, founding_end, times, courses=after(both),
        )
    return lam


def outputs_on_grid(p, tl, schedule, settings, grid, dmfs, growth, gkill, log_n):
    """Tumour size, TMEM, expected CTCs, founding rate and DMFS on the output grid (the trajectories of
    :class:`Outcome`).

    ``p``: the patients; ``tl``: the schedule's timeline (None without a treatment window); ``settings``: the
    model settings; ``grid``: output days; ``dmfs``: DMFS on the grid, or None where only the primary is wanted;
    ``growth``, ``gkill``, ``log_n``: the primary in the window (:func:`primary_in_window`). Returns a dict of
    ``(patients, len(grid))`` arrays: ``diameter_mm`` (mm), ``tmem_10hpf`` (doorways per 10 HPF), ``ctc_expected``
    (per 7.5 mL), ``founding_per_day`` (colonies/day) and ``dmfs`` when given.

    Examples
    --------
    >>> from chemomet.population import Population
    >>> from chemomet.regimens import Strategy, load_drugs
    >>> from chemomet.model.timeline import build_timeline
    >>> pop = Population()
    >>> _, p = pop.sample(2, 0)
    >>> sch = Strategy.parse("nact").schedule()
    >>> tl = build_timeline(sch, load_drugs(), pop.settings.k_macrophage_per_day, pop.settings.k_mena_per_day)
    >>> growth, gkill, _, log_n, _ = primary_in_window(p, sch, tl, therapy_rates(sch, load_drugs()))
    >>> out = outputs_on_grid(p, tl, sch, pop.settings, np.array([0.0, 100.0]), None, growth, gkill, log_n)
    >>> out["diameter_mm"].shape
    (2, 2)
    """
    surgery = schedule.surgery_day
    log_cells = untreated_log_cells(p, grid)
    m = np.zeros(grid.size)
    f = np.zeros(grid.size)
    act = np.ones(grid.size)
    release = np.ones(grid.size)
    take = np.ones(grid.size)
    if tl is not None and schedule.neoadjuvant:
        inside = (grid >= tl.start) & (grid <= tl.end)
        mi, fi, ai = tl.shared_at(grid[inside])
        m[inside], f[inside], act[inside] = mi, fi, ai
        release[inside], take[inside] = tl.release_at(grid[inside]), tl.take_at(grid[inside])
        tq = grid[inside]
        j = np.clip(np.searchsorted(tl.nodes, tq, side="right"), 1, tl.nodes.size - 1)
        w = (tq - tl.nodes[j - 1]) / (tl.nodes[j] - tl.nodes[j - 1])
        log_cells[:, inside] = log_n[:, j - 1] * (1.0 - w) + log_n[:, j] * w
    present = np.ones(grid.size, bool) if surgery is None else grid < surgery
    env = dis.environment_factor(p, m, f, act) * release  # cells released per day (x p_col)
    shed = np.where(present, dis.founding_rate(p, log_cells, env), 0.0)
    founding = shed * take  # priming raises the take of released cells, not their number
    ratio = dis.doorway_ratio(p.epsilon, m, f)
    return {
        "diameter_mm": np.where(
            present, cells_to_diameter_mm(np.exp(log_cells), settings.cells_per_mm3), 0.0
        ),
        "tmem_10hpf": np.where(present, p.T0[:, None] * ratio, np.nan),
        "ctc_expected": dis.expected_ctc(shed, settings),
        "founding_rate": founding,
        "dmfs": dmfs,
    }
