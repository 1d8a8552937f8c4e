"""The model's side of the mechanism inference (issue 12, item 2): the mechanism sets compared, the population
configuration of a draw of strengths, and the simulated values of the published summaries on a fixed virtual
cohort (common random numbers), with their sampling error from the cohort's finite size.

Summaries are dimensionless ratios or probabilities; strengths are in the units of
:func:`chemomet.calibrate.mechanism_priors.strength_priors` (``W`` in days, the rest dimensionless).
"""

from __future__ import annotations

import copy
import math

import numpy as np

from chemomet.calibrate.cohort import VirtualCohort, simulate_arm
from chemomet.calibrate.targets import EBCTCG_REGIMEN, PCR_REGIMEN
from chemomet.model.dissemination import probability_of_no_ctc

__all__ = ["MECHANISM_OF", "MECHANISM_SETS", "draw_config", "mechanisms_table", "simulate_summaries", "simulation_se"]

MECHANISM_SETS: dict[str, tuple[str, ...]] = {
    "doorway": ("epsilon_median",),
    "doorway+priming": ("epsilon_median", "priming_take_increase", "priming_days"),
    "doorway+mobilisation": ("epsilon_median", "release_per_stress", "release_per_cxcr4"),
    "all": ("epsilon_median", "priming_take_increase", "priming_days", "release_per_stress", "release_per_cxcr4"),
}
"""The mechanism sets compared, each with the strengths it carries (``all`` also switches drug toxicity on; no
arm of the data has an accompanying drug, so it changes nothing here)."""

MECHANISM_OF = {
    "epsilon_median": "doorway",
    "priming_take_increase": "priming",
    "priming_days": "priming",
    "release_per_stress": "mobilisation",
    "release_per_cxcr4": "mobilisation",
}
"""Strength -> the mechanism it belongs to."""


def mechanisms_table(values: dict[str, float], mechanism_set: str) -> dict:
    """The population's ``[mechanisms]`` table for strengths ``values`` under a set of :data:`MECHANISM_SETS`.

    Parameters
    ----------
    values : dict[str, float]
        Strengths by name (units of :func:`strength_priors`); those the set does not carry are ignored.
    mechanism_set : str
        A key of :data:`MECHANISM_SETS`.

    Returns
    -------
    dict
        The table for :func:`chemomet.mechanisms.mechanism_settings` (``ε_med`` is not in it: it is a
        population value, set by :func:`draw_config`).

    Examples
    --------
    >>> mechanisms_table({"priming_take_increase": 2.0, "priming_days": 10.0}, "doorway+priming")
    {'priming': {'take_increase': 2.0, 'days_after_last_dose': 10.0}}
    >>> mechanisms_table({}, "doorway")
    {}
    """
    names = MECHANISM_SETS[mechanism_set]
    table: dict = {}
    if "priming_take_increase" in names:
        table["priming"] = {"take_increase": float(values["priming_take_increase"]),
                            "days_after_last_dose": float(values["priming_days"])}
    if "release_per_stress" in names:
        table["mobilisation"] = {"per_unit_stress": float(values["release_per_stress"]),
                                 "CXCR4": float(values["release_per_cxcr4"])}
    if mechanism_set == "all":
        table["drug_toxicity"] = True
    return table


def draw_config(base: dict, values: dict[str, float], mechanism_set: str) -> dict:
    """A copy of the population configuration ``base`` with the strengths ``values`` of ``mechanism_set``.

    Parameters
    ----------
    base : dict
        Population configuration (``population.toml`` layout); not changed.
    values : dict[str, float]
        Strengths by name (``epsilon_median`` dimensionless; see :func:`strength_priors`).
    mechanism_set : str
        A key of :data:`MECHANISM_SETS`.

    Returns
    -------
    dict

    Examples
    --------
    >>> from chemomet.calibrate.shipped import calibrated_config
    >>> cfg = draw_config(calibrated_config(), {"epsilon_median": 3.0}, "doorway")
    >>> cfg["microenvironment"]["epsilon_median"], cfg["mechanisms"]
    (3.0, {})
    """
    cfg = copy.deepcopy(base)
    if "epsilon_median" in values:
        cfg["microenvironment"]["epsilon_median"] = float(values["epsilon_median"])
    cfg["mechanisms"] = mechanisms_table(values, mechanism_set)
    return cfg


def simulate_summaries(config: dict, cohort: VirtualCohort, detail: bool = False) -> dict:
    """The model's values of the published summaries on a fixed cohort (common random numbers).

    Three arms: NACT and adjuvant with :data:`~chemomet.calibrate.targets.EBCTCG_REGIMEN` (AC ×4, 15 years), and
    NACT with :data:`~chemomet.calibrate.targets.PCR_REGIMEN` over one year for the CTCs.

    Parameters
    ----------
    config : dict
        Population configuration, with its ``mechanisms`` table.
    cohort : VirtualCohort
        The patients.
    detail : bool, default False
        Also return the per-patient arrays the summaries are means of (for :func:`simulation_se`).

    Returns
    -------
    dict
        ``ebctcg_rate_ratio`` (``ln S_NACT(15) / ln S_adj(15)``), ``ctc_ratio_surgery_baseline`` (share with
        ≥ 1 CTC at surgery over at diagnosis), ``ctc_prevalence_baseline``, ``ctc_prevalence_surgery``,
        ``dr15_nact``, ``dr15_adjuvant`` (probabilities), ``tmem_ratio_surgery_baseline`` (mean ratio; no datum)
        and, with ``detail``, ``per_patient`` (arrays ``s_nact``, ``s_adjuvant``, ``ctc0``, ``ctc1``).

    Examples
    --------
    >>> from chemomet.calibrate.shipped import calibrated_config
    >>> cfg = calibrated_config()
    >>> s = simulate_summaries(cfg, VirtualCohort.draw(cfg, 30, seed=1))
    >>> 0 < s["ctc_ratio_surgery_baseline"] < 1, 0.5 < s["ebctcg_rate_ratio"] < 1.5
    (True, True)
    """
    from chemomet.population import Population

    s_n = simulate_arm(config, cohort, "nact", EBCTCG_REGIMEN).summary["dmfs_15y"].to_numpy()
    s_a = simulate_arm(config, cohort, "surgery-first", EBCTCG_REGIMEN).summary["dmfs_15y"].to_numpy()
    nact = simulate_arm(config, cohort, "nact", PCR_REGIMEN, horizon_years=1.0).summary
    s = Population(config).settings
    k, b = s.ctc_count_dispersion, s.ctc_background_per_sample
    c0 = 1.0 - probability_of_no_ctc(nact["ctc_expected_baseline"].to_numpy(), k, b)
    c1 = 1.0 - probability_of_no_ctc(nact["ctc_expected_surgery"].to_numpy(), k, b)
    out = _summaries_of(s_n, s_a, c0, c1)
    out["tmem_ratio_surgery_baseline"] = float(nact["tmem_ratio_surgery_baseline"].mean())
    if detail:
        out["per_patient"] = {"s_nact": s_n, "s_adjuvant": s_a, "ctc0": c0, "ctc1": c1}
    return out


def _summaries_of(s_n, s_a, c0, c1) -> dict:
    mn, ma, p0, p1 = float(np.mean(s_n)), float(np.mean(s_a)), float(np.mean(c0)), float(np.mean(c1))
    return {
        "ebctcg_rate_ratio": float(np.log(mn) / np.log(ma)),
        "ctc_ratio_surgery_baseline": p1 / p0 if p0 > 0 else float("nan"),
        "ctc_prevalence_baseline": p0,
        "ctc_prevalence_surgery": p1,
        "dr15_nact": 1 - mn,
        "dr15_adjuvant": 1 - ma,
    }


def simulation_se(config: dict, cohort: VirtualCohort, n_boot: int = 200, seed: int = 0) -> dict[str, float]:
    """Sampling SE of each summary's log that comes from the finite virtual cohort (bootstrap over its patients).

    Parameters
    ----------
    config : dict
        Population configuration at which it is measured (the prior medians in :func:`run_inference`).
    cohort : VirtualCohort
        The patients.
    n_boot : int, default 200
        Bootstrap resamples.
    seed : int, default 0
        Seed of the resampling.

    Returns
    -------
    dict[str, float]
        Summary key (of :func:`mechanism_data`) -> SE of its natural log.

    Examples
    --------
    >>> from chemomet.calibrate.shipped import calibrated_config
    >>> cfg = calibrated_config()
    >>> se = simulation_se(cfg, VirtualCohort.draw(cfg, 30, seed=1), n_boot=20)
    >>> sorted(se), all(v > 0 for v in se.values())
    (['ctc_ratio_surgery_baseline', 'ebctcg_rate_ratio'], True)
    """
    pp = simulate_summaries(config, cohort, detail=True)["per_patient"]
    rng = np.random.default_rng(seed)
    n = len(pp["s_nact"])
    logs = {"ebctcg_rate_ratio": [], "ctc_ratio_surgery_baseline": []}
    for _ in range(n_boot):
        i = rng.integers(0, n, n)
        s = _summaries_of(pp["s_nact"][i], pp["s_adjuvant"][i], pp["ctc0"][i], pp["ctc1"][i])
        for key in logs:
            if s[key] > 0 and np.isfinite(s[key]):
                logs[key].append(math.log(s[key]))
    return {k: float(np.std(v, ddof=1)) for k, v in logs.items()}

