"""Checks of analysis settings shared by the circle and the outline contact graphs (no tissue-analysis imports, so
both :mod:`chemomet.tme.contacts` and :mod:`chemomet.tme.polygons` can use them)."""

from __future__ import annotations

import numpy as np

from chemomet.errors import field_error


def check_tolerance(tolerance_um: float) -> float:
    """The contact tolerance between cell boundaries as a float, µm; refused unless a finite number ≥ 0."""
    t = float(tolerance_um)
    if not (np.isfinite(t) and t >= 0):
        raise field_error("tolerance", tolerance_um, "a number ≥ 0", "µm")
    return t
