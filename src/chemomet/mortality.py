"""Death from other causes: a Gompertz–Makeham hazard fitted to a female life table (docs/science.md §2.12).

The hazard at age ``x`` (years) is ``h(x) = A + B e^{c x}`` (per year). It is fitted once, by least squares on
the log hazard, to the life table shipped in ``data/life_table.toml``, whose annual death probabilities ``q(x)``
give the mid-year hazard ``-ln(1 - q(x))`` at age ``x + 1/2``. The probability of surviving other causes for
``t`` years from age ``a`` is then closed form:

    S(t | a) = exp(-A t - (B / c) e^{c a} (e^{c t} - 1)).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
from scipy import optimize


@dataclass(frozen=True)
class GompertzMakeham:
    """A Gompertz–Makeham hazard ``A + B e^{c x}`` (per year, ``x``: age in years).

    Attributes
    ----------
    A : float
        Age-independent hazard (per year).
    B : float
        Gompertz level at age 0 (per year).
    c : float
        Gompertz slope (per year of age).
    source : str
        Where the fitted table comes from.

    Examples
    --------
    >>> gm = GompertzMakeham(5e-4, 1.4e-5, 0.1, "example")
    >>> round(float(gm.hazard(70.0)), 4)  # per year
    0.0159
    >>> round(float(gm.survival(70.0, 10.0)), 3)  # alive after 10 years from 70, other causes only
    0.764
    """

    A: float
    B: float
    c: float
    source: str

    def hazard(self, age_years) -> np.ndarray:
        """The hazard at ``age_years`` (per year)."""
        return self.A + self.B * np.exp(self.c * np.asarray(age_years, dtype=float))

    def survival(self, age_years, t_years) -> np.ndarray:
        """Probability of surviving other causes for ``t_years`` from age ``age_years`` (broadcast)."""
        a = np.asarray(age_years, dtype=float)
        t = np.maximum(np.asarray(t_years, dtype=float), 0.0)
        return np.exp(-self.A * t - self.B / self.c * np.exp(self.c * a) * np.expm1(self.c * t))


def life_table() -> dict:
    """The shipped life table: ``ages`` (years), ``qx`` (probability of dying within a year) and ``source``.

    Examples
    --------
    >>> table = life_table()
    >>> table["ages"][:2], table["qx"][0]
    ([30, 40], 0.00074)
    """
    text = resources.files("chemomet.data").joinpath("life_table.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


@lru_cache(maxsize=1)
def other_cause_mortality() -> GompertzMakeham:
    """The Gompertz–Makeham hazard fitted to :func:`life_table` (least squares on the log hazard).

    Examples
    --------
    >>> gm = other_cause_mortality()
    >>> 0.09 < gm.c < 0.11  # mortality doubles about every 7 years of age
    True
    """
    table = life_table()
    age = np.asarray(table["ages"], dtype=float) + 0.5
    log_h = np.log(-np.log1p(-np.asarray(table["qx"], dtype=float)))

    def residuals(x):
        a, b, c = np.exp(x)
        return np.log(a + b * np.exp(c * age)) - log_h

    fit = optimize.least_squares(residuals, np.log([5e-4, 1.5e-5, 0.1]), xtol=1e-12, ftol=1e-12)
    a, b, c = (float(v) for v in np.exp(fit.x))
    return GompertzMakeham(a, b, c, table["source"])


def other_cause_survival(age_years, t_years) -> np.ndarray:
    """Probability of no death from other causes within ``t_years`` of diagnosis at ``age_years`` (broadcast).

    Parameters
    ----------
    age_years : float or array_like
        Age at diagnosis (years).
    t_years : float or array_like
        Time since diagnosis (years).

    Returns
    -------
    numpy.ndarray
        Probability.

    Examples
    --------
    >>> s = other_cause_survival([50.0, 80.0], 10.0)
    >>> bool(s[0] > 0.9 > 0.6 > s[1])
    True
    """
    return other_cause_mortality().survival(age_years, t_years)
