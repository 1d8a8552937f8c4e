"""Forecast the twins under each strategy and summarise weighted outcomes.

The conditioning runs on all twins (cheap baseline quantities); the forward simulations run on a resample of
them. The resample is drawn from a *mixture* of the posteriors in use — the patient's own and the counterfactual
ones of the drivers analysis — so that one set of simulated twins serves every posterior: each is estimated with
importance weights ``count_i · w_target(i) / q(i)`` (self-normalised).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from chemomet.assess.twins import Twins
from chemomet.excess_risk import nact_excess_risk
from chemomet.model import dissemination as dis
from chemomet.model.engine import (
    SUMMARY_YEARS,
    courses_after_window,
    outputs_on_grid,
    therapy_rates,
)
from chemomet.model.fused import fused_window, fused_windows, same_window
from chemomet.model.primary import untreated_log_cells
from chemomet.model.timeline import build_timeline
from chemomet.population import Population
from chemomet.regimens import Strategy, load_drugs
from chemomet.simulation import simulate
from chemomet.streams import BLOCK
from chemomet.toxicity import toxicity_schedule
from chemomet.units import DAYS_PER_YEAR

OUTCOMES = (
    "dmfs_5y", "dmfs_10y", "p_pcr", "surgery_day", "tmem_at_surgery_10hpf", "ctc_expected_surgery",
    "colonies_founded_during_chemo",
)


def systematic_resample(prob: np.ndarray, m: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``m`` systematic draws from the distribution ``prob``: the distinct indices drawn and their counts."""
    cdf = np.cumsum(prob)
    cdf /= cdf[-1]
    points = (rng.random() + np.arange(m)) / m
    drawn = np.minimum(np.searchsorted(cdf, points, side="right"), prob.size - 1)
    return np.unique(drawn, return_counts=True)


def nested_resample_stages(
    prob: np.ndarray, m: int, m_min: int, rng: np.random.Generator
) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """Nested systematic resamples of ``prob``: the largest has ``m`` draws, each smaller one every other draw
    of the next (``m / 2``, ``m / 4``, ... down to no fewer than ``m_min`` draws).

    The largest stage is exactly :func:`systematic_resample` ``(prob, m, rng)`` (same first uniform of ``rng``);
    each smaller stage is itself a systematic resample with an offset uniform on [0, 1) (a second uniform picks
    which draws it keeps), so every stage is a valid proposal sample, and a twin drawn in a stage is drawn in
    every larger one: an adaptive assessment that grows the resample only simulates the twins new to it.

    Parameters
    ----------
    prob : numpy.ndarray
        Proposal probabilities over all twins (any positive scale).
    m : int
        Draws of the largest stage.
    m_min : int
        Fewest draws of the smallest stage.
    rng : numpy.random.Generator
        Source of the two uniforms.

    Returns
    -------
    list of (index, count, draws)
        Smallest stage first: distinct twin indices, their counts and the stage's number of draws.

    Examples
    --------
    >>> import numpy as np
    >>> p = np.full(1000, 1e-3)
    >>> stages = nested_resample_stages(p, 400, 100, np.random.default_rng(1))
    >>> [s[2] for s in stages]
    [100, 200, 400]
    >>> bool(np.isin(stages[0][0], stages[1][0]).all() and np.isin(stages[1][0], stages[2][0]).all())
    True
    """
    cdf = np.cumsum(prob)
    cdf /= cdf[-1]
    points = (rng.random() + np.arange(m)) / m
    drawn = np.minimum(np.searchsorted(cdf, points, side="right"), prob.size - 1)
    levels = 0
    while m_min * 2 ** (levels + 1) <= m:
        levels += 1
    pick = int(rng.integers(2**levels)) if levels else 0
    out = []
    for r in range(levels, -1, -1):
        step = 2**r
        sub = drawn[pick % step :: step]
        index, count = np.unique(sub, return_counts=True)
        out.append((index, count, int(sub.size)))
    return out


def resample_se(
    index: np.ndarray, count: np.ndarray, draws: int, q: np.ndarray, target: np.ndarray, values: np.ndarray
) -> float:
    """Monte Carlo standard error of the resample estimate of a posterior mean against the estimate from all
    twins (the direct estimator).

    The resample estimate is ``Σ c_j w_j f_j / q_j`` over ``Σ c_j w_j / q_j``; a systematic resample's count
    of twin ``j`` varies only by its fractional part ``φ_j`` of ``draws · q_j`` (variance ``φ_j (1 − φ_j)``),
    so, linearised, its variance is ``Σ_j φ_j (1 − φ_j) (w_j e_j / q_j)² / draws²`` over all twins
    (``e_j = f_j −`` the estimate); over the resampled twins each term is divided by its inclusion probability
    ``min(1, draws · q_j)`` (Horvitz-Thompson). Twins drawn for sure contribute little, so the error vanishes as
    the resample covers the posterior (it is not ``sd / √draws``). Checked against the spread over seeds (tests):
    within a factor of 2, on the conservative side at the default sizes.

    Parameters
    ----------
    index, count : numpy.ndarray
        The resampled twins (indices into all twins) and how often each was drawn.
    draws : int
        Draws of the resample (``count.sum()``).
    q : numpy.ndarray
        Proposal probabilities over all twins (normalised).
    target : numpy.ndarray
        The target posterior over all twins (normalised).
    values : numpy.ndarray
        Per resampled twin, the quantity (e.g. DMFS10, a probability); non-finite values are left out.

    Returns
    -------
    float
        The standard error, in the unit of ``values``.
    """
    ok = np.isfinite(values)
    if not ok.any():
        return float("nan")
    idx, c, f = index[ok], count[ok], values[ok]
    ratio = target[idx] / q[idx]
    a = c * ratio
    est = float(np.sum(a * f) / np.sum(a))
    mq = draws * q[idx]
    frac = mq - np.floor(mq)
    e = ratio * (f - est) * np.sum(c) / np.sum(a)  # scaled so the estimator's weights sum to 1
    return float(np.sqrt(np.sum(frac * (1.0 - frac) * e * e / np.minimum(1.0, mq))) / draws)


def weighted_quantiles(values: np.ndarray, weights: np.ndarray, qs) -> np.ndarray:
    """Quantiles ``qs`` of ``values`` under ``weights`` (inverse of the weighted empirical CDF, interpolated)."""
    order = np.argsort(values, kind="stable")
    v, w = values[order], weights[order]
    cum = np.cumsum(w) - 0.5 * w
    cum /= w.sum()
    return np.interp(qs, cum, v)


def summarise(values: np.ndarray, weights: np.ndarray, level: float, positive: bool = False) -> dict:
    """Posterior mean and central credible interval (``level``) of per-twin ``values``; with ``positive``, also
    the posterior probability that the value is > 0."""
    ok = np.isfinite(values)
    if not ok.any():
        return {"mean": None, "lo": None, "hi": None}
    v, w = values[ok], weights[ok]
    lo, hi = weighted_quantiles(v, w, [(1 - level) / 2, (1 + level) / 2])
    out = {"mean": float(np.sum(v * w) / w.sum()), "lo": float(lo), "hi": float(hi)}
    if positive:
        out["p_positive"] = float(np.sum(w[v > 0]) / w.sum())
    return out


@dataclass
class SimulatedTwins:
    """The resampled twins: ``index`` into the full twin set, ``count`` (times drawn), ``q`` (the proposal
    probability of every twin) and the 10-year excess-risk parts of the resampled ones."""

    index: np.ndarray
    count: np.ndarray
    q: np.ndarray
    parts: dict[str, np.ndarray]

    def weights(self, target: np.ndarray) -> np.ndarray:
        """Importance weights of the simulated twins for a normalised target posterior over all twins."""
        w = self.count * target[self.index] / self.q[self.index]
        return w / w.sum()


OUTCOME_YEARS = tuple(y for y in SUMMARY_YEARS if f"dmfs_{y}y" in OUTCOMES)
"""The years of the DMFS among :data:`OUTCOMES` (the only ones :func:`simulate_variants` evaluates)."""

CALM = "|calm"
"""Suffix of the key under which :func:`simulate_twins` returns a strategy's outcomes without the stress response."""


def simulate_twins(
    twins: Twins,
    index: np.ndarray,
    strategies: list[Strategy],
    reference: Population,
    horizon_years: float,
    calm: str | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """Per strategy name, per outcome (:data:`OUTCOMES`), the values of the twins at ``index``.

    Strategies that differ only in an accompanying drug acting on the microenvironment (NACT and NACT + each
    doorway, macrophage or mobilisation drug: the same grid, kill and surgery day) are simulated together
    (:func:`simulate_variants`: the primary and the colonies' window curves once per twin, the founding once per
    strategy); a strategy alone likewise where the fused kernel takes it as it is (not response-adapted, no drug
    toxicity, a treatment window: :func:`_fused_alone`), the others with :func:`chemomet.simulate`. Either way
    the numbers are exactly the engine's (a test ties them).

    ``calm``: the name of a strategy of such a group whose outcomes are also wanted with the microenvironment's
    stress response switched off (every twin's ε = 0, as :func:`chemomet.nact_excess_risk` switches it off), under
    the key ``calm + CALM``; one more variant of the group (:func:`simulate_variants`). Ignored where the strategy
    is simulated alone.
    """
    params = twins.params.take(index)
    scale = twins.ctc_scale[index]
    horizon = horizon_years * DAYS_PER_YEAR
    out = {}
    for group in variant_groups(strategies, reference):
        names = [st.name for st in group]
        if len(group) > 1 or _fused_alone(group[0], reference):
            with_calm = calm if calm in names and len(group) > 1 else None
            results = simulate_variants(params, group, reference, horizon, with_calm)
            if with_calm is not None:
                names.append(with_calm + CALM)
        else:
            s = simulate(params, group[0], horizon, population=reference).summary
            results = [{k: s[k].to_numpy(float) for k in OUTCOMES}]
        for name, values in zip(names, results, strict=True):
            values["ctc_expected_surgery"] = values["ctc_expected_surgery"] * scale
            out[name] = values
    keys = [st.name for st in strategies] + ([calm + CALM] if calm and calm + CALM in out else [])
    return {k: out[k] for k in keys}


def _timeline(strategy: Strategy, reference: Population, drugs):
    s = reference.settings
    return build_timeline(strategy.schedule(), drugs, s.k_macrophage_per_day, s.k_mena_per_day, s.mechanisms)


def _fused_alone(strategy: Strategy, reference: Population) -> bool:
    """Whether :func:`simulate_variants` can simulate ``strategy`` on its own: not response-adapted, no drug
    toxicity, and a treatment window (neoadjuvant, or adjuvant chemotherapy after surgery first)."""
    drugs = load_drugs()
    mech = reference.settings.mechanisms
    if strategy.interim_day is not None or (mech.drug_toxicity and toxicity_schedule(strategy, drugs) is not None):
        return False
    sch = strategy.schedule()
    return sch.surgery_day is not None and _timeline(strategy, reference, drugs) is not None


def variant_groups(strategies: list[Strategy], reference: Population) -> list[list[Strategy]]:
    """The strategies in groups that :func:`simulate_variants` can simulate together (in their order; a group of
    one goes through :func:`simulate_variants` alone where :func:`_fused_alone` allows, else through
    :func:`chemomet.simulate`): neoadjuvant, not response-adapted, no drug toxicity, and the same
    schedule but for the accompanying drug's doses, whose timelines differ only in the microenvironment
    (:func:`chemomet.model.fused.same_window`)."""
    drugs = load_drugs()
    mech = reference.settings.mechanisms
    groups: list[list[Strategy]] = []
    leaders: list[tuple] = []
    for st in strategies:
        sch = st.schedule()
        eligible = (
            sch.neoadjuvant and st.interim_day is None
            and not (mech.drug_toxicity and toxicity_schedule(st, drugs) is not None)
        )
        key = (sch.surgery_day, sch.chemo_days, sch.endocrine, sch.anti_her2, tuple(therapy_rates(sch, drugs).items()))
        tl = _timeline(st, reference, drugs) if eligible else None
        for k, (lead_key, lead_tl) in enumerate(leaders):
            if eligible and lead_tl is not None and lead_key == key and same_window(lead_tl, tl):
                groups[k].append(st)
                break
        else:
            groups.append([st])
            leaders.append((key, tl))
    return groups


def simulate_variants(
    params, strategies: list[Strategy], reference: Population, horizon_days: float, calm: str | None = None
) -> list[dict]:
    """The :data:`OUTCOMES` of ``params`` under each of ``strategies``, one group of :func:`variant_groups`
    (CTCs at the reference population's colonisation efficiency): one pass of the fused kernel per twin for all of
    them (:func:`chemomet.model.fused.fused_windows`), then each strategy's summaries as
    :func:`chemomet.model.engine.simulate_schedule` forms them. Chunks of ``2 × BLOCK`` twins run on threads (the
    kernel releases the GIL); nothing depends on the chunking. Only the years the outcomes hold (5 and 10) are
    evaluated (each time's value is the same whatever other times are asked for), except where a twin has
    dormancy (the engine's years then, as :func:`chemomet.model.engine.dmfs_at` explains).

    A group of one may also be a strategy with surgery first and adjuvant chemotherapy (:func:`_fused_alone`):
    its outcomes are then those :func:`chemomet.model.engine.simulate_schedule` forms for a schedule that is not
    neoadjuvant (the primary untreated until surgery).

    ``calm``: the name of one of ``strategies``; its outcomes with ε = 0 for every twin are appended to the list
    (one more variant: its timeline with the stress terms of the microenvironment, ``m``, ``f`` and the moments
    ``env1``, ``env2`` they weigh, set to 0, which is what ε = 0 leaves of them, bit for bit; ε enters the kernel
    nowhere else)."""
    drugs = load_drugs()
    settings = reference.settings
    schedule = strategies[0].schedule()
    tls = [_timeline(st, reference, drugs) for st in strategies]
    if calm is not None:
        base = tls[[st.name for st in strategies].index(calm)]
        zero_nodes, zero_intervals = np.zeros(base.nodes.size), np.zeros(base.nodes.size - 1)
        tls.append(replace(base, m=zero_nodes, f=zero_nodes, env1=zero_intervals, env2=zero_intervals))
    tl = tls[0]
    rates = therapy_rates(schedule, drugs)
    if not settings.mechanisms.doorway:  # as the engine: chemotherapy stress no longer raises doorways
        params = replace(params, epsilon=np.zeros(params.n))
    log_vis = float(np.log(settings.visible_cells))
    surgery = schedule.surgery_day
    # with dormancy, the engine's own summary years: the dormant pool's quadrature is a matrix product whose
    # rounding may depend on how many times are asked for
    out_years = SUMMARY_YEARS if np.any(params.dormant_fraction > 0) else OUTCOME_YEARS
    years = np.array(out_years, float) * DAYS_PER_YEAR
    eval_times = np.concatenate([[0.0], np.minimum(years, horizon_days)])
    j_s = tl.n_founding
    j_mid = int(np.searchsorted(tl.nodes, 0.5 * sum(tl.chemo_days) - 1e-9))
    adjuvant = not schedule.neoadjuvant
    if adjuvant and len(tls) > 1:
        raise ValueError("only neoadjuvant strategies are simulated as variants of one another")

    # ln cells of the primary at surgery: wanted under NACT only (after surgery first the window has no primary)
    wanted = np.array([], np.int64) if adjuvant else np.array([j_s, j_mid])

    def run(bound):
        p = params.take(slice(*bound))
        courses = courses_after_window(p, schedule, tl, rates)
        lams, log_n, founded, _ = fused_windows(
            p, schedule, tls, rates, courses, log_vis, surgery, eval_times, wanted, shedding=False
        )
        if not adjuvant:
            log_n_s = {j_s: log_n[:, 0], j_mid: log_n[:, 1]}[j_s]  # as the engine picks it (j_s may equal j_mid)
            residual = np.exp(log_n_s)
        out = []
        for v, tl_v in enumerate(tls):
            dmfs = np.exp(-(lams[v] - lams[v][:, :1]))
            values = {
                f"dmfs_{y}y": np.where(years[i] <= horizon_days, dmfs[:, 1 + i], np.nan)
                for i, y in enumerate(out_years)
                if f"dmfs_{y}y" in OUTCOMES
            }
            if adjuvant:  # the primary untreated until surgery, as the engine's summary of such a schedule
                at_surgery = np.exp(untreated_log_cells(p, [surgery])[:, 0])
                values.update(
                    p_pcr=np.zeros(p.n),
                    surgery_day=np.full(p.n, surgery),
                    tmem_at_surgery_10hpf=p.T0.copy(),
                    ctc_expected_surgery=dis.expected_ctc(p.mu * np.exp(p.gamma * np.log(at_surgery)), settings),
                    colonies_founded_during_chemo=founded[v],
                )
                out.append({k: values[k] for k in OUTCOMES})
                continue
            env = dis.environment_factor(p, tl_v.m[j_s : j_s + 1], tl_v.f[j_s : j_s + 1], tl_v.activity[j_s : j_s + 1])
            if tl_v.mobilisation is not None:
                env = env * tl_v.mobilisation[None, j_s : j_s + 1]
            values.update(
                p_pcr=(residual < settings.pcr_threshold_cells).astype(float),
                surgery_day=np.full(p.n, surgery),
                tmem_at_surgery_10hpf=p.T0 * ((1 + p.epsilon * tl_v.m[j_s]) * (1 + p.epsilon * tl_v.f[j_s])),
                ctc_expected_surgery=dis.expected_ctc(dis.founding_rate(p, log_n_s[:, None], env)[:, 0], settings),
                colonies_founded_during_chemo=founded[v],
            )
            out.append({k: values[k] for k in OUTCOMES})
        return out

    chunk = 2 * BLOCK
    bounds = [(lo, min(lo + chunk, params.n)) for lo in range(0, params.n, chunk)]
    with ThreadPoolExecutor(max_workers=max(1, min(os.cpu_count() or 1, len(bounds)))) as pool:
        parts = list(pool.map(run, bounds))
    return [{k: np.concatenate([part[v][k] for part in parts]) for k in OUTCOMES} for v in range(len(tls))]


def calm_shortcut(reference: Population, horizon_years: float) -> bool:
    """Whether :func:`excess_parts` can take the NACT risk without the stress response from the forecast
    (``simulate_twins(..., calm="nact")``): the shipped mechanisms (with priming or mobilisation on,
    :func:`chemomet.nact_excess_risk` switches them off first) and a horizon of at least 10 years."""
    mech = reference.settings.mechanisms
    return not (mech.priming or mech.mobilisation) and horizon_years * DAYS_PER_YEAR >= 10.0 * DAYS_PER_YEAR


def excess_parts(
    twins: Twins, index: np.ndarray, outcomes: dict, nact: Strategy, reference: Population
) -> dict[str, np.ndarray]:
    """The NACT-attributable excess 10-year risk of the twins at ``index`` and its three parts
    (:func:`chemomet.nact_excess_risk`), and a fourth, ``mechanisms``, when priming or mobilisation is on.

    Where ``outcomes`` hold ``nact`` without the stress response (``"nact" + CALM``, from
    :func:`simulate_twins`; only under :func:`calm_shortcut`), that risk is passed on rather than simulated again."""
    params = twins.params.take(index)
    dm_nact, dm_first = 1.0 - outcomes["nact"]["dmfs_10y"], 1.0 - outcomes["surgery-first"]["dmfs_10y"]
    dm_calm = None
    if "nact" + CALM in outcomes and calm_shortcut(reference, 10.0):
        dm_calm = 1.0 - outcomes["nact" + CALM]["dmfs_10y"]
    table = nact_excess_risk(
        params, nact, nact.regimen.name, years=10.0, population=reference, dm_nact=dm_nact, dm_first=dm_first,
        dm_calm=dm_calm,
    )
    out = {
        "excess": table["excess"].to_numpy(),
        "microenvironment": table["part_microenvironment"].to_numpy(),
        "delay": table["part_delay"].to_numpy(),
        "kill_timing": table["part_kill_timing"].to_numpy(),
    }
    if "part_mechanisms" in table:  # priming or mobilisation on: their share, switched off first
        out["mechanisms"] = table["part_mechanisms"].to_numpy()
    return out


def primary_trajectories(
    params, strategy: Strategy, reference: Population, grid: np.ndarray, log_n: np.ndarray | None = None
) -> dict:
    """Tumour diameter (mm), TMEM (per 10 HPF) and expected CTCs (per 7.5 mL, the reference population's
    colonisation efficiency) of ``params`` under ``strategy`` on ``grid`` (days from diagnosis), ``(n, len(grid))``
    arrays: the primary tumour and its microenvironment only, without the metastasis model.

    These are exactly the trajectories :func:`chemomet.simulate` returns with ``grid`` (the same engine
    functions; a test ties them), at a fraction of the cost, since the distant colonies (what DMFS needs) are not
    followed. Response-adapted strategies and drug toxicity (a schedule per twin) go through
    :func:`chemomet.simulate`.

    Parameters
    ----------
    params : PatientParameters
        The twins' parameters.
    strategy : Strategy
        The strategy.
    reference : Population
        Its settings are used (microenvironment rates, mechanisms, cells per mm³).
    grid : numpy.ndarray
        Output times (days from diagnosis, sorted).
    log_n : numpy.ndarray, optional
        ``(n, window nodes)`` ln cells of the primary at the strategy's window nodes, when already known
        (:func:`primary_log_cells` of a strategy of the same :func:`variant_groups` group: the microenvironment
        does not move the primary); default: computed here.

    Returns
    -------
    dict
        ``diameter_mm``, ``tmem_10hpf``, ``ctc_expected`` (and ``founding_rate``, colonies per day).
    """
    settings = reference.settings
    mech = settings.mechanisms
    if strategy.interim_day is not None or mech.drug_toxicity:
        out = simulate(params, strategy, float(grid[-1]) + 1.0, population=reference, grid=grid)
        return out.trajectories
    if not mech.doorway:  # as the engine: chemotherapy stress no longer raises doorways
        params = replace(params, epsilon=np.zeros(params.n))
    drugs = load_drugs()
    schedule = strategy.schedule()
    tl = build_timeline(schedule, drugs, settings.k_macrophage_per_day, settings.k_mena_per_day, mech)
    if tl is not None and log_n is None:
        log_n = primary_log_cells(params, strategy, reference)
    out = outputs_on_grid(params, tl, schedule, settings, grid, None, None, None, None if tl is None else log_n)
    out.pop("dmfs", None)
    return out


def primary_log_cells(params, strategy: Strategy, reference: Population) -> np.ndarray | None:
    """ln cells of the primary of ``params`` at every node of ``strategy``'s treatment window, ``(n, nodes)``
    (None without a window): the engine's own kernel, primary only (what :func:`primary_trajectories` needs)."""
    drugs = load_drugs()
    settings = reference.settings
    schedule = strategy.schedule()
    tl = build_timeline(schedule, drugs, settings.k_macrophage_per_day, settings.k_mena_per_day, settings.mechanisms)
    if tl is None:
        return None
    _, log_n, _, _ = fused_window(
        params, schedule, tl, therapy_rates(schedule, drugs), [], 0.0, np.inf, np.empty(0),
        np.arange(tl.nodes.size), primary_only=True,
    )
    return log_n


def trajectories(
    twins: Twins, target: np.ndarray, strategies: list[Strategy], reference: Population, n: int, seed: int
) -> dict:
    """Median and 90% band of TMEM (per 10 HPF), expected CTCs (per 7.5 mL) and tumour diameter (mm) over time,
    per strategy, from ``n`` twins resampled from the posterior ``target``, every 3 days from diagnosis to 63
    days after the latest surgery (:func:`primary_trajectories`: the primary only, which is all they show)."""
    rng = np.random.default_rng([seed, 2])
    index, count = systematic_resample(target, n, rng)
    index = np.repeat(index, count)
    last = max(st.schedule().surgery_day or 0.0 for st in strategies)
    times = np.arange(0.0, last + 63.0, 3.0)
    params = twins.params.take(index)
    shared = {}  # the primary of a group of variants (they differ only in the microenvironment): computed once
    # (with drug toxicity on, primary_trajectories goes through chemomet.simulate)
    for group in [] if reference.settings.mechanisms.drug_toxicity else variant_groups(strategies, reference):
        if len(group) > 1:
            log_n = primary_log_cells(params, group[0], reference)
            shared.update({st.name: log_n for st in group})
    by = {}
    for st in strategies:
        tr = primary_trajectories(params, st, reference, times, shared.get(st.name))
        series = {
            "tmem_10hpf": tr["tmem_10hpf"],
            "ctc_expected": tr["ctc_expected"] * twins.ctc_scale[index][:, None],
            "diameter_mm": tr["diameter_mm"],
        }
        by[st.name] = {k: _bands(v) for k, v in series.items()}
    return {"times_days": times.tolist(), "by_strategy": by}


def _bands(values: np.ndarray) -> dict:
    with np.errstate(all="ignore"):
        ok = np.isfinite(values).any(axis=0)
        safe = np.where(ok[None, :], values, 0.0)
        # nanpercentile works column by column; without NaN left, percentile gives the same numbers at once
        pct = np.nanpercentile if np.isnan(safe).any() else np.percentile
        lo, med, hi = pct(safe, [5, 50, 95], axis=0)
    return {
        k: [None if not ok[i] else float(x[i]) for i in range(x.size)]
        for k, x in (("median", med), ("lo", lo), ("hi", hi))
    }
