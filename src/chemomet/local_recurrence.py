"""Loco-regional recurrence after surgery: a simple calibrated event process, so that trials can report
disease-free survival (docs/science.md §2.15).

The model's mechanism covers distant spread only; local and regional recurrence is added as an event of its own,
with a constant hazard from the day of surgery, calibrated to the EBCTCG 2018 overview of NACT vs the same
chemotherapy after surgery: 15-year local recurrence 15.9% with adjuvant chemotherapy and 21.4% with NACT, rate
ratio 1.37 (95% CI 1.17–1.61), the excess going with the more frequent breast-conserving surgery after NACT (65% vs
49% of women). It is independent of distant metastasis given the strategy (an assumption: in the data both go
with tumour burden), and does not depend on the patient's covariates or response (pCR lowers it in cohorts).
Times are days.
"""

from __future__ import annotations

import math

import numpy as np

from chemomet.units import DAYS_PER_YEAR

ADJUVANT_15Y_RISK = 0.159
"""15-year local recurrence after surgery and adjuvant chemotherapy (probability): EBCTCG, Lancet Oncol
2018;19:27-39 (4,756 women in ten trials of NACT vs the same chemotherapy after surgery, 1983-2002)."""

NACT_RATE_RATIO = 1.37
"""Local-recurrence rate ratio of NACT vs adjuvant chemotherapy (95% CI 1.17-1.61): EBCTCG 2018 (as above)."""

HAZARD_PER_DAY = -math.log1p(-ADJUVANT_15Y_RISK) / (15.0 * DAYS_PER_YEAR)
"""Constant local-recurrence hazard after surgery first (1/day): 15.9% by 15 years, as a net risk (an assumption:
the shape over time is not modelled, and competing events are treated as censoring)."""


def local_recurrence_days(surgery_day, neoadjuvant, u) -> np.ndarray:
    """Day of loco-regional recurrence (days from diagnosis), one per patient: surgery day plus an exponential time
    with :data:`HAZARD_PER_DAY`, times :data:`NACT_RATE_RATIO` after NACT; ``inf`` without surgery (NaN day).

    Parameters
    ----------
    surgery_day : array_like
        Day of surgery (days from diagnosis; NaN: none).
    neoadjuvant : array_like of bool
        Whether chemotherapy came before surgery.
    u : array_like
        Uniforms on [0, 1), one per patient.

    Examples
    --------
    >>> days = local_recurrence_days(np.array([21.0, 203.0, np.nan]), np.array([False, True, False]),
    ...                              np.array([0.5, 0.5, 0.5]))
    >>> round((days[0] - 21) / 365.25, 1), round((days[1] - 203) / 365.25, 1), days[2]  # median 60 and 44 years
    (60.0, 43.8, inf)
    """
    rate = HAZARD_PER_DAY * np.where(np.asarray(neoadjuvant, bool), NACT_RATE_RATIO, 1.0)
    surgery = np.asarray(surgery_day, dtype=float)
    wait = -np.log1p(-np.asarray(u, dtype=float)) / rate
    return np.where(np.isfinite(surgery), surgery + wait, np.inf)
