"""Forecast the twins under each strategy and summarise weighted outcomes.

The conditioning runs on all twins (cheap baseline quantities); the forward simulations run on a resample of
them. The resample is drawn from a *mixture* of the posteriors in use — the patient's own and the counterfactual
ones of the drivers analysis — so that one set of simulated twins serves every posterior: each is estimated with
importance weights ``count_i · w_target(i) / q(i)`` (self-normalised).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chemomet.assess.twins import Twins
from chemomet.excess_risk import nact_excess_risk
from chemomet.population import Population
from chemomet.regimens import Strategy
from chemomet.simulation import simulate
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


def simulate_twins(
    twins: Twins,
    index: np.ndarray,
    strategies: list[Strategy],
    reference: Population,
    horizon_years: float,
) -> dict[str, dict[str, np.ndarray]]:
    """Per strategy name, per outcome (:data:`OUTCOMES`), the values of the twins at ``index``."""
    params = twins.params.take(index)
    scale = twins.ctc_scale[index]
    out = {}
    for st in strategies:
        s = simulate(params, st, horizon_years * DAYS_PER_YEAR, population=reference).summary
        values = {k: s[k].to_numpy(float) for k in OUTCOMES}
        values["ctc_expected_surgery"] = values["ctc_expected_surgery"] * scale
        out[st.name] = values
    return out


def excess_parts(
    twins: Twins, index: np.ndarray, outcomes: dict, nact: Strategy, reference: Population
) -> dict[str, np.ndarray]:
    """The NACT-attributable excess 10-year risk of the twins at ``index`` and its three parts
    (:func:`chemomet.nact_excess_risk`), and a fourth, ``mechanisms``, when priming or mobilisation is on."""
    table = nact_excess_risk(
        twins.params.take(index), nact, nact.regimen.name, years=10.0, population=reference,
        dm_nact=1.0 - outcomes["nact"]["dmfs_10y"], dm_first=1.0 - outcomes["surgery-first"]["dmfs_10y"],
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


def trajectories(
    twins: Twins, target: np.ndarray, strategies: list[Strategy], reference: Population, n: int, seed: int
) -> dict:
    """Median and 90% band of TMEM (per 10 HPF), expected CTCs (per 7.5 mL) and tumour diameter (mm) over time,
    per strategy, from ``n`` twins resampled from the posterior ``target``."""
    rng = np.random.default_rng([seed, 2])
    index, count = systematic_resample(target, n, rng)
    index = np.repeat(index, count)
    last = max(st.schedule().surgery_day or 0.0 for st in strategies)
    times = np.arange(0.0, last + 63.0, 3.0)
    params = twins.params.take(index)
    by = {}
    for st in strategies:
        out = simulate(params, st, times[-1] + 1.0, population=reference, grid=times)
        tr = out.trajectories
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
        lo, med, hi = np.nanpercentile(safe, [5, 50, 95], axis=0)
    return {
        k: [None if not ok[i] else float(x[i]) for i in range(x.size)]
        for k, x in (("median", med), ("lo", lo), ("hi", hi))
    }
