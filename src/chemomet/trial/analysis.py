"""Statistics of a trial's patient-level table: Kaplan–Meier, log-rank, Cox hazard ratio with a
proportional-hazards test and hazard ratios by year, RMST difference and ratio, milestone survival differences;
pCR (two proportions) and TMEM change (log ratio, Welch t test); subgroups with interaction tests; multiplicity
across arms and endpoints; power over replicates.

Arm 0 is the control; each other arm is compared with it. Times are days; hazard ratios are experimental vs
control (< 1: fewer events on the experimental arm). Every comparison carries the p-value of its pre-specified
test (``p``), adjusted across arms (``p_adjusted_arms``) and across arms and the hierarchy of endpoints
(``p_adjusted``). A quantity that does not apply is None, with the reason in ``not_applicable``.

The statistics live in modules with one job each, and every public name stays importable from here:
:mod:`~chemomet.trial.survival` (Kaplan–Meier, RMST, milestones), :mod:`~chemomet.trial.hazards` (log-rank,
Cox, proportional-hazards test, hazard ratios by interval), :mod:`~chemomet.trial.multiplicity` (the
pre-specified tests, adjustment across arms, gatekeeping), :mod:`~chemomet.trial.endpoints` (each endpoint's
summary), :mod:`~chemomet.trial.subgroups` (subgroups and interaction tests), :mod:`~chemomet.trial.power`
(power over replicates) and :mod:`~chemomet.trial.competing` (cumulative incidence with competing deaths).
"""

from __future__ import annotations

# ruff: noqa: F401  (re-exports)
import numpy as np
import pandas as pd

from chemomet.trial.competing import cumulative_incidence, drfi_cumulative_incidence
from chemomet.trial.endpoints import (
    pcr_endpoint,
    survival_endpoint,
    tmem_endpoint,
)
from chemomet.trial.hazards import (
    cox_binary,
    cox_hazard_ratio,
    hazard_ratio_by_interval,
    logrank,
    observed_minus_expected,
    proportional_hazards_test,
)
from chemomet.trial.multiplicity import (
    TEST_NAMES,
    adjust_p,
    gatekeeping_p,
    multiplicity,
)
from chemomet.trial.power import (
    power_analysis,
)
from chemomet.trial.spec import TIME_TO_EVENT, TrialSpec
from chemomet.trial.subgroups import (
    MIN_SUBGROUP_PATIENTS,
    interaction_test,
    subgroup_levels,
    subgroups,
)
from chemomet.trial.survival import (
    kaplan_meier,
    km_curve,
    km_summary,
    milestone_difference,
    rmst_comparison,
    rmst_standard_error,
    time_event,
)
from chemomet.units import DAYS_PER_YEAR

__all__ = [
    "MIN_SUBGROUP_PATIENTS",
    "TEST_NAMES",
    "adjust_p",
    "cox_binary",
    "cox_hazard_ratio",
    "cumulative_incidence",
    "drfi_cumulative_incidence",
    "gatekeeping_p",
    "hazard_ratio_by_interval",
    "interaction_test",
    "kaplan_meier",
    "km_curve",
    "km_summary",
    "logrank",
    "milestone_difference",
    "multiplicity",
    "observed_minus_expected",
    "pcr_endpoint",
    "power_analysis",
    "proportional_hazards_test",
    "rmst_comparison",
    "rmst_standard_error",
    "subgroup_levels",
    "subgroups",
    "survival_endpoint",
    "time_event",
    "tmem_endpoint",
]
