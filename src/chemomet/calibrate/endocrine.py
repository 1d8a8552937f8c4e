"""Adjuvant endocrine therapy calibrated to the EBCTCG 2011 tamoxifen overview (docs/science.md §2.13).

Two population settings decide what about 5 years of tamoxifen does to ER-positive disease in the model: the share
of ER-positive tumours that do not respond (``endocrine_resistance_probability``) and the median endocrine
sensitivity of the rest (``endocrine_sensitivity_median``; the spread is an assumption). During therapy the
responders' colonies barely progress, so the recurrence rate ratio of years 0–4 is set mostly by the
non-responders; the ratio of years 5–9 by how many colonies therapy eradicated rather than only held back. The
ratio of years 10–14 is left free, as a check of the mechanism.

An aromatase inhibitor differs from tamoxifen by reaching part of the tumours tamoxifen does not
(``nonresponder_reach`` in ``data/drugs.toml``); that share is set by EBCTCG 2015's early advantage of 5 years of
an aromatase inhibitor over 5 years of tamoxifen (:func:`fit_aromatase_inhibitor`).

Rate ratios are computed as the published ones are read: events per person-year at risk in each period, treated
over control, here from the cohort-mean distant-metastasis-free survival of the ER-positive patients.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq

from chemomet.calibrate.cohort import VirtualCohort, simulate_arm, with_sensitivity
from chemomet.units import DAYS_PER_YEAR

EBCTCG_2011_TAMOXIFEN = {
    "years_0_4": (0.53, 0.03),
    "years_5_9": (0.68, 0.06),
    "years_10_14": (0.97, 0.10),
}
"""About 5 years of tamoxifen vs none in ER-positive disease, recurrence rate ratio (SE) by period since
randomisation: EBCTCG 2011 (Lancet 378:771), 10,645 women in 20 trials."""

PERIODS = {"years_0_4": (0, 5), "years_5_9": (5, 10), "years_10_14": (10, 15)}
"""Period name -> (first year, end year) since diagnosis."""


EBCTCG_2015_AROMATASE = {
    "years_0_1": (0.64, (0.52, 0.78)),
    "years_2_4": (0.80, (0.68, 0.93)),
}
"""5 years of an aromatase inhibitor vs 5 years of tamoxifen in postmenopausal ER-positive disease, recurrence rate
ratio (95% CI) by period: EBCTCG 2015 (Lancet 386:1341), 31,920 women; non-significant after year 4."""

AI_PERIODS = {"years_0_1": (0, 2), "years_2_4": (2, 5), "years_5_9": (5, 10)}
"""Period name -> (first year, end year) of the aromatase-inhibitor comparison."""


def period_rate_ratios(
    config: dict,
    cohort: VirtualCohort,
    treated: str = "surgery-only:tamoxifen",
    control: str = "surgery-only",
    periods: dict | None = None,
    drugs: dict | None = None,
) -> dict[str, float]:
    """Rate ratios of distant metastasis, ``treated`` over ``control``, in each of ``periods`` (default
    :data:`PERIODS`; name -> (first year, end year)) among the cohort's ER-positive patients (dimensionless);
    ``drugs``: the drug table (default: the shipped one).

    A period's rate is ``(S(a) - S(b)) / ∫_a^b S dt`` (events per person-year at risk) of the cohort-mean DMFS ``S``
    on a monthly grid.

    Examples
    --------
    >>> from chemomet.calibrate.vector import prior_config
    >>> cfg = prior_config()
    >>> rr = period_rate_ratios(cfg, VirtualCohort.draw(cfg, 400, seed=2))
    >>> sorted(rr), bool(rr["years_0_4"] < 1.0)
    (['years_0_4', 'years_10_14', 'years_5_9'], True)
    """
    periods = PERIODS if periods is None else periods
    er = cohort.covariates["er"].to_numpy(bool)
    sub = VirtualCohort(cohort.covariates[er].reset_index(drop=True), cohort.z[er], cohort.u[er])
    horizon = float(max(b for _, b in periods.values()))
    grid = np.arange(0.0, horizon * 12 + 1) / 12.0 * DAYS_PER_YEAR
    means = {}
    for arm, strategy in (("treated", treated), ("control", control)):
        out = simulate_arm(config, sub, strategy, horizon_years=horizon, grid=grid, drugs=drugs)
        means[arm] = out.trajectories["dmfs"].mean(axis=0)
    years = grid / DAYS_PER_YEAR
    ratios = {}
    for name, (a, b) in periods.items():
        rows = (years >= a - 1e-9) & (years <= b + 1e-9)
        rate = {}
        for arm, s in means.items():
            rate[arm] = (s[rows][0] - s[rows][-1]) / np.trapezoid(s[rows], years[rows])
        ratios[name] = float(rate["treated"] / rate["control"])
    return ratios


def fit_endocrine(config: dict, cohort: VirtualCohort, targets=EBCTCG_2011_TAMOXIFEN) -> dict:
    """Solve the two endocrine settings so that years 0–4 and 5–9 meet their targets (nested root finding on
    common random numbers: the same patients at every value).

    Returns ``{"endocrine_resistance_probability", "endocrine_sensitivity_median", "rate_ratios"}``; the rate
    ratios are those reached, the 10–14 ratio included as a check.

    Examples
    --------
    >>> fit_endocrine(cfg, VirtualCohort.draw(cfg, 4000, seed=21))  # doctest: +SKIP
    """
    early, late = targets["years_0_4"][0], targets["years_5_9"][0]

    def resistance_for(median: float) -> float:
        def gap(r):
            return period_rate_ratios(with_sensitivity(config, "endocrine", r, median), cohort)["years_0_4"] - early

        return brentq(gap, 0.0, 0.95, xtol=1e-3)

    def late_gap(log_median: float) -> float:
        median = float(np.exp(log_median))
        r = resistance_for(median)
        return period_rate_ratios(with_sensitivity(config, "endocrine", r, median), cohort)["years_5_9"] - late

    log_median = brentq(late_gap, np.log(0.3), np.log(5.0), xtol=1e-3)
    median = float(np.exp(log_median))
    r = resistance_for(median)
    return {
        "endocrine_resistance_probability": r,
        "endocrine_sensitivity_median": median,
        "rate_ratios": period_rate_ratios(with_sensitivity(config, "endocrine", r, median), cohort),
    }


def fit_aromatase_inhibitor(config: dict, cohort: VirtualCohort, drug: str = "anastrozole") -> dict:
    """Solve ``drug``'s ``nonresponder_reach`` and ``nonresponder_block`` so that 5 years of it against 5 years of
    tamoxifen meets EBCTCG 2015's recurrence rate ratios in years 0–1 (0.64) and 2–4 (0.80); years 5–9 are a check.

    Nested root finding on common random numbers: for each block, the reach that meets years 0–1; then the block
    that meets years 2–4. Where no reach meets years 0–1 even at 1, the reach is 1 and the ratio is reported.

    Returns ``{"nonresponder_reach", "nonresponder_block", "rate_ratios", "targets"}``.

    Examples
    --------
    >>> fit_aromatase_inhibitor(cfg, VirtualCohort.draw(cfg, 4000, seed=21))  # doctest: +SKIP
    """
    from chemomet.regimens import load_drugs

    table = load_drugs()

    def ratios(reach: float, block: float) -> dict[str, float]:
        update = {"nonresponder_reach": float(reach), "nonresponder_block": float(block)}
        drugs = {**table, drug: table[drug].model_copy(update=update)}
        return period_rate_ratios(
            config, cohort, f"surgery-only:{drug}", "surgery-only:tamoxifen", periods=AI_PERIODS, drugs=drugs
        )

    early, middle = EBCTCG_2015_AROMATASE["years_0_1"][0], EBCTCG_2015_AROMATASE["years_2_4"][0]

    def reach_for(block: float) -> float:
        if ratios(1.0, block)["years_0_1"] > early:
            return 1.0
        return brentq(lambda x: ratios(x, block)["years_0_1"] - early, 1e-3, 1.0, xtol=2e-3)

    log_block = brentq(
        lambda lb: ratios(reach_for(np.exp(lb)), np.exp(lb))["years_2_4"] - middle, np.log(0.05), np.log(3.0),
        xtol=5e-3,
    )
    block = float(np.exp(log_block))
    reach = reach_for(block)
    return {
        "nonresponder_reach": float(reach),
        "nonresponder_block": block,
        "rate_ratios": ratios(reach, block),
        "targets": EBCTCG_2015_AROMATASE,
    }
