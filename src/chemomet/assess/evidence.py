"""What the patient's measurements say about her twins: the log-likelihood of each measured biomarker.

Observation models (parameters in ``data/assessment.toml``):

- TMEM score: negative binomial around ``T0`` (per 10 HPF, times the 20-HPF factor for that convention);
- CTC count before treatment: negative binomial around the expected count of the twin's baseline dissemination
  plus the assay's Poisson background (§2.5; the engine's own count model, size
  ``ModelSettings.ctc_count_dispersion``, background ``ModelSettings.ctc_background_per_sample``, each twin
  under its ensemble member's fitted values);
- Ki67: log-normal; faster-growing twins (lower doubling-time random effect) have higher Ki67;
- tumour diameters during NACT: log-normal imaging error around the model's primary under the planned NACT,
  left-censored at the detection limit (a diameter of 0 means "not measurable");
- TMEM score after NACT (surgical specimen): negative binomial around ``T0 · M F`` at surgery under NACT;
- positive axillary nodes: negative binomial around the nodes the twin's own history seeded by diagnosis
  (:mod:`chemomet.model.nodes`), so a node count moves the twins' tumour age and shedding.

A biomarker that was not measured has no term: the twins keep its prior, so it is integrated over, never imputed.
Each term also has a *reference* value (the population median, or no measurement) for the drivers analysis.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr
from scipy.stats import nbinom, norm

from chemomet.assess.settings import Observation
from chemomet.assess.twins import Twins
from chemomet.errors import InputError
from chemomet.model import dissemination as dis
from chemomet.model.engine import therapy_rates
from chemomet.model.fused import fused_window
from chemomet.model.microenv import doorway_ratio
from chemomet.model.nodes import expected_positive_nodes, node_count_logpmf
from chemomet.model.nodes import node_count_logpmf as nb_logpmf  # the same negative binomial for every count
from chemomet.model.timeline import build_timeline
from chemomet.patient import Patient, check_diameters_during_chemotherapy
from chemomet.population import Population
from chemomet.regimens import Strategy, load_drugs
from chemomet.units import cells_to_diameter_mm

CHUNK = 8192  # twins per chunk (and thread) for the primary under NACT


@dataclass(frozen=True)
class Term:
    """One measured biomarker's contribution to the twins' weights.

    name: label; observed / reference: human-readable values (reference: what the drivers analysis moves it to);
    loglik: per-twin log-likelihood at the observed value; loglik_reference: at the reference (None: the
    reference is "not measured", i.e. no term); tail_p: prior-predictive probability of a value at least as
    extreme (the smaller tail; NaN where not computed).
    """

    name: str
    observed: str
    reference: str
    loglik: np.ndarray
    loglik_reference: np.ndarray | None
    tail_p: float


def _nb_tail(x: float, mean: np.ndarray, k: float) -> float:
    p = k / (k + np.maximum(mean, 1e-12))
    below = float(np.mean(nbinom.cdf(np.floor(x), k, p)))
    above = float(np.mean(nbinom.sf(np.ceil(x) - 1, k, p)))
    return min(below, above)


def _ctc_tail(x: int, expected: np.ndarray, k, background) -> float:
    """As :func:`_nb_tail` for a CTC count with the assay background (the smaller prior-predictive tail); ``k``
    and ``background`` one value or one per twin."""
    if not np.any(np.asarray(background) > 0):
        return _nb_tail(x, expected, k)
    below = float(np.mean(dis.ctc_count_cdf(x, expected, k, background)))
    above = 1.0 - float(np.mean(dis.ctc_count_cdf(x - 1, expected, k, background)))
    return min(below, above)


def nact_strategy(regimen: str) -> Strategy:
    """The planned NACT whose course the diameters and the post-NACT score were measured under."""
    return Strategy.parse("nact", regimen)


def tmem_factor(patient: Patient, reference: Population) -> float:
    """Doorways in the patient's convention per doorway on the 10-HPF scale."""
    if patient.tmem_convention == "20HPF":
        return float(reference.config["microenvironment"]["tmem_20hpf_per_10hpf"])
    return 1.0


def primary_diameters(twins: Twins, strategy: Strategy, days_after_first_dose, reference: Population) -> np.ndarray:
    """Model diameters (mm) of the twins' primary under ``strategy`` at days after its first dose, ``(n, k)``."""
    schedule = strategy.schedule()
    s = reference.settings
    tl = build_timeline(schedule, load_drugs(), s.k_macrophage_per_day, s.k_mena_per_day)
    rates = therapy_rates(schedule, load_drugs())
    t = strategy.chemo_start_day + np.asarray(days_after_first_dose, dtype=float)
    j = np.clip(np.searchsorted(tl.nodes, t, side="right"), 1, tl.nodes.size - 1)
    w = (t - tl.nodes[j - 1]) / (tl.nodes[j] - tl.nodes[j - 1])
    k = t.size

    def run(lo):  # the engine's fused kernel, primary only: ln cells at the nodes either side of each day
        p = twins.params.take(slice(lo, lo + CHUNK))
        _, log_n, _, _ = fused_window(p, schedule, tl, rates, [], 0.0, np.inf, np.empty(0), np.concatenate([j - 1, j]),
                                      primary_only=True)
        return cells_to_diameter_mm(np.exp(log_n[:, :k] * (1.0 - w) + log_n[:, k:] * w), s.cells_per_mm3)

    starts = range(0, twins.n, CHUNK)
    with ThreadPoolExecutor(max_workers=max(1, min(os.cpu_count() or 1, len(starts)))) as pool:
        return np.concatenate(list(pool.map(run, starts)))


def tmem_ratio_at_surgery(twins: Twins, strategy: Strategy, reference: Population) -> np.ndarray:
    """``T/T0`` at surgery under ``strategy`` for each twin."""
    s = reference.settings
    tl = build_timeline(strategy.schedule(), load_drugs(), s.k_macrophage_per_day, s.k_mena_per_day)
    j = tl.n_founding
    return doorway_ratio(twins.params.epsilon, tl.m[j : j + 1], tl.f[j : j + 1])[:, 0]


def diameter_loglik(diameters_mm: np.ndarray, model_mm: np.ndarray, obs: Observation) -> np.ndarray:
    """Summed log-likelihood of measured diameters (row-wise over twins), censored below the detection limit."""
    sd = obs.diameter_sdlog
    log_model = np.log(np.maximum(model_mm, 1e-6))
    limit = obs.diameter_detection_limit_mm
    measured = diameters_mm >= limit
    out = np.zeros(model_mm.shape[0])
    for k, d in enumerate(diameters_mm):
        if measured[k]:
            out += norm.logpdf(np.log(d), log_model[:, k], sd) - np.log(d)
        else:
            out += log_ndtr((np.log(limit) - log_model[:, k]) / sd)
    return out


def check_measurements(patient: Patient, regimen: str) -> None:
    """Refuse diameters measured after the last chemotherapy dose of ``regimen`` (the re-assessment compares
    continuing with stopping now, so it is made during chemotherapy); the rule :func:`chemomet.simulate` applies
    too (:func:`chemomet.patient.check_diameters_during_chemotherapy`)."""
    check_diameters_during_chemotherapy(patient, nact_strategy(regimen).regimen.last_dose_day, regimen)


def terms(
    patient: Patient, twins: Twins, reference: Population, obs: Observation, regimen: str, tails: bool = True
) -> list[Term]:
    """The likelihood terms of every biomarker the patient has measured (empty list: nothing measured).

    ``tails=False`` leaves the prior-predictive tail probabilities out (``tail_p`` NaN), for callers that only
    weigh twins by the log-likelihoods (the covariate drivers); nothing else changes."""
    out: list[Term] = []

    def tail(x, mean, k):  # the prior-predictive tail, or NaN when not wanted
        return _nb_tail(x, mean, k) if tails else float("nan")

    p = twins.params
    med = reference.config["microenvironment"]["tmem_median_10hpf"]
    conv = patient.tmem_convention
    if patient.tmem_score is not None:
        f = tmem_factor(patient, reference)
        k, x = obs.tmem_dispersion, float(patient.tmem_score)
        ref = round(med * f)
        out.append(
            Term(
                "TMEM score", f"{x:g} per {conv}", f"{ref:g} per {conv} (population median)",
                nb_logpmf(x, p.T0 * f, k), nb_logpmf(ref, p.T0 * f, k), tail(x, p.T0 * f, k),
            )
        )
    if patient.ctc_count is not None:
        lam = dis.expected_ctc(p.mu * np.exp(p.gamma * p.log_cells0), reference.settings) * twins.ctc_scale
        x, k, b = patient.ctc_count, twins.ctc_dispersion, twins.ctc_background  # each member's count model
        out.append(
            Term(
                "CTC count", f"{x} per 7.5 mL", "0 per 7.5 mL (population median)",
                dis.ctc_count_logpmf(x, lam, k, b), dis.ctc_count_logpmf(0, lam, k, b),
                _ctc_tail(x, lam, k, b) if tails else float("nan"),
            )
        )
    if patient.nodes_positive is not None:
        mean = expected_positive_nodes(p, reference.settings)
        k, x = reference.settings.node_count_dispersion, patient.nodes_positive
        out.append(
            Term(
                "Positive nodes", f"{x}", "0 (node-negative)",
                node_count_logpmf(x, mean, k), node_count_logpmf(0, mean, k), tail(x, mean, k),
            )
        )
    if patient.ki67_percent is not None:
        x = max(patient.ki67_percent, 0.5)
        centre = np.log(obs.ki67_median_percent) - obs.ki67_growth_slope * twins.z_doubling
        sd = obs.ki67_residual_sdlog
        tail_sd = np.hypot(obs.ki67_growth_slope, sd)
        z = (np.log(x) - np.log(obs.ki67_median_percent)) / tail_sd
        out.append(
            Term(
                "Ki67", f"{patient.ki67_percent:g}%", f"{obs.ki67_median_percent:g}% (population median)",
                norm.logpdf(np.log(x), centre, sd), norm.logpdf(np.log(obs.ki67_median_percent), centre, sd),
                float(min(norm.cdf(z), norm.sf(z))) if tails else float("nan"),
            )
        )
    if patient.nact_diameters:
        days = np.array([m.day for m in patient.nact_diameters])
        d = np.array([m.diameter_mm for m in patient.nact_diameters])
        model = primary_diameters(twins, nact_strategy(regimen), days, reference)
        shown = ", ".join(f"{m.diameter_mm:g} mm (day {m.day:g})" for m in patient.nact_diameters)
        out.append(Term("Diameters during NACT", shown, "not measured", diameter_loglik(d, model, obs), None, np.nan))
    if patient.tmem_score_after_nact is not None:
        f = tmem_factor(patient, reference)
        mean = p.T0 * f * tmem_ratio_at_surgery(twins, nact_strategy(regimen), reference)
        k, x = obs.tmem_dispersion, float(patient.tmem_score_after_nact)
        out.append(
            Term(
                "TMEM score after NACT", f"{x:g} per {conv}", "not measured",
                nb_logpmf(x, mean, k), None, tail(x, mean, k),
            )
        )
    return out


def normalised(log_w: np.ndarray) -> np.ndarray:
    """Weights summing to 1 from log-weights (max-shifted for stability); refuses measurements that no twin
    can produce (every likelihood zero, e.g. CTCs with a fixed ``mu = 0``)."""
    top = np.max(log_w)
    if not np.isfinite(top):
        raise InputError(
            "measurements are impossible under the model: every virtual twin gives them probability 0; "
            "allowed: measurements consistent with the fixed [parameters] (check mu, T0 and the CTC count)"
        )
    w = np.exp(log_w - top)
    return w / w.sum()


def effective_sample_size(w: np.ndarray) -> float:
    """Kish's effective sample size ``(Σw)² / Σw²``."""
    return float(w.sum() ** 2 / np.sum(w * w))
