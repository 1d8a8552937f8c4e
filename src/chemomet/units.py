"""Unit conversions, in one place (SCIENCE.md §2.1).

Conventions: tumour volume from diameter ``V = π d³ / 6``; ``CELLS_PER_MM3 = 1e6`` cells per mm³ (the
metastasis-modelling convention; Del Monte 2009 argues ~1e5 is more realistic, so it is a parameter of every
conversion); blood volume 5 L; a CTC draw is 7.5 mL.
"""

from __future__ import annotations

import numpy as np

CELLS_PER_MM3 = 1e6
"""Tumour cells per mm³ of tumour (convention of the metastasis-modelling literature)."""

VISIBLE_METASTASIS_CELLS = 1e8
"""Cells at which a distant metastasis is clinically visible (about 5.8 mm at 1e6 cells/mm³)."""

BLOOD_VOLUME_ML = 5000.0
"""Adult blood volume, mL."""

CTC_SAMPLE_ML = 7.5
"""Volume of one CellSearch CTC draw, mL."""

DAYS_PER_YEAR = 365.25


def diameter_mm_to_cells(diameter_mm, cells_per_mm3: float = CELLS_PER_MM3):
    """Cells in a spherical tumour of the given diameter (mm)."""
    d = np.asarray(diameter_mm, dtype=float)
    return np.pi * d**3 / 6.0 * cells_per_mm3


def cells_to_diameter_mm(cells, cells_per_mm3: float = CELLS_PER_MM3):
    """Diameter (mm) of a spherical tumour holding the given number of cells."""
    n = np.asarray(cells, dtype=float)
    return np.cbrt(6.0 * n / (np.pi * cells_per_mm3))


def years_to_days(years):
    """Years to days (365.25 days a year)."""
    return np.asarray(years, dtype=float) * DAYS_PER_YEAR


def days_to_years(days):
    """Days to years (365.25 days a year)."""
    return np.asarray(days, dtype=float) / DAYS_PER_YEAR


def calvert_carboplatin_dose_mg(auc_mg_min_per_ml: float, gfr_ml_per_min: float) -> float:
    """Carboplatin dose (mg) from the target AUC (mg·min/mL) by the Calvert formula ``AUC × (GFR + 25)``."""
    return float(auc_mg_min_per_ml) * (float(gfr_ml_per_min) + 25.0)
