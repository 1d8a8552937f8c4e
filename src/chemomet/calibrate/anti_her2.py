"""Anti-HER2 therapy calibrated to pCR with and without trastuzumab and to the EBCTCG 2021 trastuzumab overview
(docs/science.md §2.14).

Three numbers decide what trastuzumab does to HER2-positive disease in the model: the share of HER2-positive
tumours that do not respond (``anti_her2_resistance_probability``), the median anti-HER2 sensitivity of the rest
(``anti_her2_sensitivity_median``, scaling the drug's ``kill_per_day``; the spread is an assumption) and, for
pertuzumab, its own ``kill_per_day``. Chemosensitivity of HER2-positive disease is calibrated first, to pCR after
chemotherapy without trastuzumab (``chemomet calibrate targets``), so what trastuzumab adds is its own:

* the pooled pCR of HER2-positive disease after AC → weekly paclitaxel with trastuzumab (Cortazar 2014: 30.9% in
  HR+/HER2+ and 50.3% in HR−/HER2+, pooled with the population's subtype shares) sets the kill in the window;
* the recurrence rate ratio of a year of adjuvant trastuzumab with chemotherapy vs chemotherapy alone (EBCTCG 2021:
  0.66) sets how much of that kill is spread over many patients rather than concentrated in fewer;
* NeoSphere's pCR with docetaxel + trastuzumab + pertuzumab vs docetaxel + trastuzumab (45.8% vs 29.0%) sets
  pertuzumab's kill, matched as an odds ratio (2.07) on the AC → weekly paclitaxel backbone;
* NeoSphere's docetaxel + trastuzumab arm (29.0%) sets docetaxel's maximal kill rate (``kmax_per_day``), given
  trastuzumab's calibrated effect (:func:`fit_docetaxel`); NeoSphere's arm with pertuzumab added is then a check
  of pertuzumab on its own trial's backbone.

The split of the pooled pCR by hormone receptors and NOAH (pCR 38% vs 19% with vs without trastuzumab) are checks.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq

from chemomet.calibrate.cohort import VirtualCohort, simulate_arm, with_sensitivity
from chemomet.regimens import DEFAULT_REGIMEN, load_drugs
from chemomet.units import DAYS_PER_YEAR

HER2_GROUPS = {"HR+/HER2+": (True, True), "HR-/HER2+": (False, True)}
"""Subtype -> (hormone receptor positive, HER2 positive) of the two HER2-positive subgroups."""

CORTAZAR_2014_PCR = {
    "HR+/HER2+": {"without": 0.183, "with": 0.309},
    "HR-/HER2+": {"without": 0.302, "with": 0.503},
}
"""pCR (ypT0/is ypN0) after neoadjuvant anthracycline/taxane chemotherapy without vs with trastuzumab, by hormone
receptor status: Cortazar P et al. Lancet 2014;384:164 (CTNeoBC pooled analysis), values approximate."""

EBCTCG_2021_TRASTUZUMAB = (0.66, 0.035)
"""Recurrence rate ratio (SE of its log) of chemotherapy plus about a year of trastuzumab vs the same chemotherapy
alone: 0.66 (95% CI 0.62–0.71), 13,864 women in seven trials, median follow-up 10.7 years: EBCTCG, Lancet Oncol
2021;22:1139. Matched here as distant recurrence over years 0–10."""

NEOSPHERE_PCR = {"docetaxel-trastuzumab": 0.290, "docetaxel-trastuzumab-pertuzumab": 0.458}
"""Breast pCR (ypT0/is) after four cycles of docetaxel with trastuzumab, or with trastuzumab and pertuzumab:
Gianni L et al. Lancet Oncol 2012;13:25 (NeoSphere arms A and B, 107 women each)."""

NOAH_PCR = {"without": 0.19, "with": 0.38}
"""Total pCR in HER2-positive locally advanced disease after anthracycline/taxane chemotherapy without vs with a year
of trastuzumab: Gianni L et al. Lancet 2010;375:377 (NOAH). A check (the regimen differs from the model's)."""

TRASTUZUMAB_REGIMEN = "ac-paclitaxel-weekly-trastuzumab"


def her2_groups(config: dict, cohort: VirtualCohort) -> dict[str, tuple[VirtualCohort, float]]:
    """The cohort's draws as HR+/HER2+ and as HR−/HER2+ patients, each with its weight among HER2-positive
    disease (the configuration's subtype shares)."""
    shares = config["cohort"]["subtype_probabilities"]
    total = sum(shares[k] for k in HER2_GROUPS)
    out = {}
    for name, (hr, her2) in HER2_GROUPS.items():
        out[name] = (cohort.with_covariates(er=hr, pr=hr, her2=her2), shares[name] / total)
    return out


def pcr_by_group(config: dict, cohort: VirtualCohort, regimen: str, drugs=None) -> dict[str, float]:
    """pCR after NACT with ``regimen`` in each HER2-positive subgroup and pooled (``"pooled"``), probabilities."""
    out, pooled = {}, 0.0
    for name, (group, weight) in her2_groups(config, cohort).items():
        out[name] = float(simulate_arm(config, group, "nact", regimen, 1.0, drugs=drugs).summary["p_pcr"].mean())
        pooled += weight * out[name]
    out["pooled"] = pooled
    return out


def adjuvant_rate_ratio(
    config: dict,
    cohort: VirtualCohort,
    years: float = 10.0,
    treated: str = TRASTUZUMAB_REGIMEN,
    control: str = DEFAULT_REGIMEN,
) -> float:
    """Distant-recurrence rate ratio over years 0–``years`` of adjuvant ``treated`` vs ``control`` regimens (default:
    AC → weekly paclitaxel with vs without a year of trastuzumab) in HER2-positive disease, surgery first: the
    log-rank estimate (:func:`logrank_rate_ratio`) from the pooled cohort-mean DMFS on a monthly grid, the way the
    overviews estimate it."""
    grid = np.arange(0.0, years * 12 + 1) / 12.0 * DAYS_PER_YEAR
    curves = {}
    for arm, regimen in (("treated", treated), ("control", control)):
        mean = 0.0
        for group, weight in her2_groups(config, cohort).values():
            out = simulate_arm(config, group, "surgery-first", regimen, years, grid=grid)
            mean = mean + weight * out.trajectories["dmfs"].mean(axis=0)
        curves[arm] = mean
    return logrank_rate_ratio(curves["treated"], curves["control"])


def logrank_rate_ratio(treated: np.ndarray, control: np.ndarray) -> float:
    """The log-rank (one-step) rate ratio ``exp((O − E) / V)`` of two equal arms whose event-free fractions on a
    common grid are ``treated`` and ``control`` (each starting at 1): at every step the arms' numbers at risk are
    the fractions, their events the drops (no censoring inside the grid). This is how the EBCTCG overviews report
    a rate ratio over follow-up, and it differs from the ratio of the two cumulative rates when the effect
    changes with time.

    Examples
    --------
    >>> t = np.linspace(0, 10, 121)
    >>> round(logrank_rate_ratio(np.exp(-0.05 * t), np.exp(-0.1 * t)), 3)  # hazard ratio 0.5; one-step bias
    0.502
    """
    n1, n0 = treated[:-1], control[:-1]
    d1, d0 = -np.diff(treated), -np.diff(control)
    at_risk = n1 + n0
    expected = n1 * (d1 + d0) / at_risk
    variance = n1 * n0 * (d1 + d0) / at_risk**2
    return float(np.exp(np.sum(d1 - expected) / np.sum(variance)))


def pooled_target(config: dict, key: str = "with") -> float:
    """Cortazar 2014's pCR pooled over the HER2-positive subgroups with the configuration's subtype shares."""
    shares = config["cohort"]["subtype_probabilities"]
    total = sum(shares[k] for k in HER2_GROUPS)
    return sum(shares[k] / total * CORTAZAR_2014_PCR[k][key] for k in HER2_GROUPS)


def fit_anti_her2(config: dict, cohort: VirtualCohort, progress=None) -> dict:
    """Solve the resistance share and the median sensitivity so that the pooled pCR with trastuzumab and the
    EBCTCG 2021 rate ratio are met (nested root finding on common random numbers: for each share, the median
    that meets the pCR), then pertuzumab's kill so that NeoSphere's odds ratio is met. Where no share reaches
    the rate ratio (the smallest reachable is that without resistance), the share is 0 and the reached ratio is
    reported.

    Returns the three values, what they reach (pCR by subgroup, rate ratio, NeoSphere arms) and the checks.

    Examples
    --------
    >>> fit_anti_her2(cfg, VirtualCohort.draw(cfg, 2000, seed=31))  # doctest: +SKIP
    """
    say = progress or (lambda msg: None)
    pcr_target, rr_target = pooled_target(config), EBCTCG_2021_TRASTUZUMAB[0]

    def median_for(r: float) -> float:
        def gap(log_median):
            cfg = with_sensitivity(config, "anti_her2", r, float(np.exp(log_median)))
            return pcr_by_group(cfg, cohort, TRASTUZUMAB_REGIMEN)["pooled"] - pcr_target

        return float(np.exp(brentq(gap, np.log(0.05), np.log(50.0), xtol=2e-3)))

    def rr_at(r: float) -> tuple[float, float]:
        median = median_for(r)
        rr = adjuvant_rate_ratio(with_sensitivity(config, "anti_her2", r, median), cohort)
        say(f"anti-HER2: resistance {r:.3f}, median {median:.3f} -> rate ratio {rr:.3f}")
        return rr, median

    # Along the pCR constraint the rate ratio rises with the non-responding share: more benefit concentrated in
    # fewer patients. If even no resistance leaves it above the target, the boundary r = 0 is the estimate.
    rr0, _ = rr_at(0.0)
    if rr0 >= rr_target:
        r = 0.0
    else:
        r = brentq(lambda x: rr_at(x)[0] - rr_target, 0.0, 0.5, xtol=2e-3)
    median = median_for(r)
    cfg = with_sensitivity(config, "anti_her2", r, median)

    pertuzumab = fit_pertuzumab(cfg, cohort)
    return {
        "anti_her2_resistance_probability": r,
        "anti_her2_sensitivity_median": median,
        "pcr_with_trastuzumab": pcr_by_group(cfg, cohort, TRASTUZUMAB_REGIMEN),
        "pcr_without_trastuzumab": pcr_by_group(cfg, cohort, DEFAULT_REGIMEN),
        "pcr_target_pooled": pcr_target,
        "rate_ratio": adjuvant_rate_ratio(cfg, cohort),
        **pertuzumab,
    }


def fit_docetaxel(config: dict, cohort: VirtualCohort, drugs: dict | None = None) -> dict:
    """Docetaxel's ``kmax_per_day`` (ln-cells per day at saturating exposure, at chemosensitivity 1) such that four
    cycles of docetaxel with trastuzumab reach NeoSphere's pooled HER2-positive pCR (29.0%, arm A), the
    anti-HER2 settings of ``config`` given; the arm with pertuzumab added (45.8%, arm B) is reported as a check.

    Parameters
    ----------
    config : dict
        Calibrated population configuration (anti-HER2 settings included).
    cohort : VirtualCohort
        Virtual patients (common random numbers); only the HER2-positive subgroups are used.
    drugs : dict, optional
        Drug table (default: the shipped one, :func:`chemomet.regimens.load_drugs`).

    Returns
    -------
    dict
        ``docetaxel_kmax_per_day`` (1/day), ``pcr`` of both NeoSphere arms by subgroup at that value, the targets.

    Examples
    --------
    >>> fit_docetaxel(cfg, VirtualCohort.draw(cfg, 12000, seed=31))  # doctest: +SKIP
    """
    drugs = drugs or load_drugs()

    def with_kmax(kmax: float) -> dict:
        return {**drugs, "docetaxel": drugs["docetaxel"].model_copy(update={"kmax_per_day": float(kmax)})}

    target = NEOSPHERE_PCR["docetaxel-trastuzumab"]
    log_k = brentq(
        lambda x: pcr_by_group(config, cohort, "docetaxel-trastuzumab", with_kmax(np.exp(x)))["pooled"] - target,
        np.log(0.3), np.log(30.0), xtol=1e-3,
    )
    kmax = float(np.exp(log_k))
    fitted = with_kmax(kmax)
    return {
        "docetaxel_kmax_per_day": kmax,
        "pcr": {arm: pcr_by_group(config, cohort, arm, fitted) for arm in NEOSPHERE_PCR},
        "targets": dict(NEOSPHERE_PCR),
    }


def fit_pertuzumab(config: dict, cohort: VirtualCohort) -> dict:
    """Pertuzumab's ``kill_per_day`` (ln-cells/day) such that adding it to trastuzumab with AC → weekly paclitaxel
    raises the pooled HER2-positive pCR by NeoSphere's odds ratio (about 2.07; docetaxel backbone there).

    The odds ratio is carried over from NeoSphere's docetaxel backbone, so that pertuzumab's kill does not
    depend on docetaxel's; NeoSphere's own arms, with docetaxel's kill calibrated to arm A
    (:func:`fit_docetaxel`), are reported as ``docetaxel_backbone``: arm B is then a check of pertuzumab.
    """
    drugs = load_drugs()
    target_or = _odds(NEOSPHERE_PCR["docetaxel-trastuzumab-pertuzumab"]) / _odds(NEOSPHERE_PCR["docetaxel-trastuzumab"])
    control = pcr_by_group(config, cohort, TRASTUZUMAB_REGIMEN)["pooled"]

    def with_pertuzumab(kill: float) -> dict:
        return {**drugs, "pertuzumab": drugs["pertuzumab"].model_copy(update={"kill_per_day": float(kill)})}

    def arm(kill: float, regimen: str = TRASTUZUMAB_REGIMEN + "-pertuzumab") -> float:
        return pcr_by_group(config, cohort, regimen, with_pertuzumab(kill))["pooled"]

    kill = brentq(lambda k: _odds(arm(k)) / _odds(control) - target_or, 0.0, 0.2, xtol=1e-5)
    return {
        "pertuzumab_kill_per_day": float(kill),
        "pcr_trastuzumab_pertuzumab": arm(kill),
        "odds_ratio_target": target_or,
        "docetaxel_backbone": {
            "docetaxel-trastuzumab": pcr_by_group(config, cohort, "docetaxel-trastuzumab")["pooled"],
            "docetaxel-trastuzumab-pertuzumab": arm(kill, "docetaxel-trastuzumab-pertuzumab"),
        },
    }


def _odds(p: float) -> float:
    return p / (1.0 - p)
