"""Unit conversions, in one place (docs/science.md §2.1).

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
    """Cells in a spherical tumour of the given diameter (mm).

    ``cells = π d³ / 6 × cells_per_mm3``: the volume of a sphere of diameter ``d`` (mm³) times the cell density.

    Parameters
    ----------
    diameter_mm : float or array_like
        Tumour diameter (mm).
    cells_per_mm3 : float, default CELLS_PER_MM3 (1e6)
        Tumour cell density (cells per mm³); Del Monte 2009 argues ~1e5 is more realistic.

    Returns
    -------
    numpy.ndarray
        Number of cells (cells), same shape as ``diameter_mm`` (0-d for a scalar).

    Examples
    --------
    >>> f"{float(diameter_mm_to_cells(10)):.3e}"  # a 10 mm tumour
    '5.236e+08'
    >>> f"{float(diameter_mm_to_cells(10, cells_per_mm3=1e5)):.3e}"
    '5.236e+07'
    >>> diameter_mm_to_cells([10, 20])  # doubling the diameter: 8 times the cells
    array([5.23598776e+08, 4.18879020e+09])
    """
    d = np.asarray(diameter_mm, dtype=float)
    return np.pi * d**3 / 6.0 * cells_per_mm3


def cells_to_diameter_mm(cells, cells_per_mm3: float = CELLS_PER_MM3):
    """Diameter (mm) of a spherical tumour holding the given number of cells.

    The inverse of :func:`diameter_mm_to_cells`: ``d = (6 cells / (π cells_per_mm3))^(1/3)``.

    Parameters
    ----------
    cells : float or array_like
        Number of tumour cells (cells).
    cells_per_mm3 : float, default CELLS_PER_MM3 (1e6)
        Tumour cell density (cells per mm³).

    Returns
    -------
    numpy.ndarray
        Diameter (mm), same shape as ``cells`` (0-d for a scalar).

    Examples
    --------
    >>> round(float(cells_to_diameter_mm(VISIBLE_METASTASIS_CELLS)), 2)  # 1e8 cells: a visible metastasis
    5.76
    >>> round(float(cells_to_diameter_mm(1e9)), 2)
    12.41
    >>> round(float(cells_to_diameter_mm(diameter_mm_to_cells(10))), 9)  # round trip
    10.0
    """
    n = np.asarray(cells, dtype=float)
    return np.cbrt(6.0 * n / (np.pi * cells_per_mm3))


def years_to_days(years):
    """Years to days (365.25 days a year).

    Parameters
    ----------
    years : float or array_like
        Duration (years).

    Returns
    -------
    numpy.ndarray
        Duration (days), same shape as ``years`` (0-d for a scalar).

    Examples
    --------
    >>> float(years_to_days(5))
    1826.25
    >>> years_to_days([3, 5, 10])
    array([1095.75, 1826.25, 3652.5 ])
    """
    return np.asarray(years, dtype=float) * DAYS_PER_YEAR


def days_to_years(days):
    """Days to years (365.25 days a year).

    Parameters
    ----------
    days : float or array_like
        Duration (days).

    Returns
    -------
    numpy.ndarray
        Duration (years), same shape as ``days`` (0-d for a scalar).

    Examples
    --------
    >>> float(days_to_years(3652.5))
    10.0
    >>> float(days_to_years(years_to_days(2.5)))  # round trip
    2.5
    """
    return np.asarray(days, dtype=float) / DAYS_PER_YEAR


def calvert_carboplatin_dose_mg(auc_mg_min_per_ml: float, gfr_ml_per_min: float) -> float:
    """Carboplatin dose (mg) from the target AUC (mg·min/mL) by the Calvert formula ``AUC × (GFR + 25)``.

    Parameters
    ----------
    auc_mg_min_per_ml : float
        Target area under the plasma concentration-time curve (mg·min/mL), e.g. 6 for "AUC 6".
    gfr_ml_per_min : float
        Glomerular filtration rate (mL/min).

    Returns
    -------
    float
        Carboplatin dose (mg).

    Examples
    --------
    >>> calvert_carboplatin_dose_mg(6, 100)  # AUC 6 at a GFR of 100 mL/min
    750.0
    >>> calvert_carboplatin_dose_mg(5, 60)
    425.0
    """
    return float(auc_mg_min_per_ml) * (float(gfr_ml_per_min) + 25.0)
