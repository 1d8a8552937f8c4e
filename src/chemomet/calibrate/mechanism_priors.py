"""Priors of the mechanism strengths fitted by :mod:`chemomet.calibrate.mechanism_inference` (issue 12, item 2).

:class:`StrengthPrior` is a log-normal prior truncated to its bounds, worked on the standardised log scale
``z = ln(value / median) / sdlog``; :func:`strength_priors` builds the five priors from ``data/mechanisms.toml``
and the calibrated population: the doorway response ``ε_med`` (dimensionless), the priming take increase ``π``
(dimensionless) and window ``W`` (days), the release per unit chemotherapy stress ``ν_D`` and per unit CXCR4
inhibition ``ν_CXCR4`` (both dimensionless).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from chemomet.calibrate.targets import EPSILON_PRIOR_FACTOR

__all__ = ["EPSILON_BOUNDS", "StrengthPrior", "Z90", "strength_priors"]

Z90 = float(norm.ppf(0.95))
"""Standard-normal quantile of a central 90% interval."""

EPSILON_BOUNDS = (0.01, 50.0)
"""Bounds of ``ε_med`` (dimensionless): the range the calibration searched (docs/science.md §4.3)."""


@dataclass(frozen=True)
class StrengthPrior:
    """Prior of one mechanism strength: log-normal with ``median`` and ``sdlog``, truncated to ``[lower, upper]``.

    Sampling and densities work on the standardised log ``z = ln(value / median) / sdlog`` (a standard normal
    truncated to ``[z(lower), z(upper)]``).

    Attributes
    ----------
    name : str
        Key of the strength (e.g. ``"priming_take_increase"``).
    mechanism : str
        The mechanism of ``data/mechanisms.toml`` it belongs to.
    symbol : str
        Its symbol in docs/science.md (``"π"``).
    median, sdlog : float
        Prior median (in ``unit``) and SD of the natural log.
    lower, upper : float
        Bounds (in ``unit``; ``lower`` may be 0).
    unit : str
        Unit of the value.
    source : str
        Where the prior comes from.

    Examples
    --------
    >>> p = strength_priors()["priming_take_increase"]
    >>> float(p.value(0.0)), [round(v, 2) for v in p.interval()]
    (1.0, [0.32, 3.16])
    """

    name: str
    mechanism: str
    symbol: str
    median: float
    sdlog: float
    lower: float
    upper: float
    unit: str
    source: str

    @property
    def z_bounds(self) -> tuple[float, float]:
        """The bounds on the standardised log scale (``-inf`` for a lower bound of 0)."""
        lo = -np.inf if self.lower <= 0 else math.log(self.lower / self.median) / self.sdlog
        hi = np.inf if not np.isfinite(self.upper) else math.log(self.upper / self.median) / self.sdlog
        return lo, hi

    @property
    def log_mass(self) -> float:
        """Natural log of the standard-normal mass inside the bounds (the truncation's normalisation)."""
        lo, hi = self.z_bounds
        return float(np.log(norm.cdf(hi) - norm.cdf(lo)))

    def value(self, z):
        """The value(s) at standardised log ``z`` (in ``unit``)."""
        return self.median * np.exp(self.sdlog * np.asarray(z, float))

    def z_of(self, value):
        """The standardised log of ``value`` (in ``unit``, > 0)."""
        return np.log(np.asarray(value, float) / self.median) / self.sdlog

    def logpdf_z(self, z) -> np.ndarray:
        """Log density of the truncated prior on the standardised log scale (``-inf`` outside the bounds)."""
        z = np.asarray(z, float)
        lo, hi = self.z_bounds
        inside = (z >= lo) & (z <= hi)
        return np.where(inside, norm.logpdf(z) - self.log_mass, -np.inf)

    def sample_z(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` draws of the standardised log from the truncated prior (inverse CDF)."""
        lo, hi = self.z_bounds
        u = rng.random(n)
        return norm.ppf(norm.cdf(lo) + u * (norm.cdf(hi) - norm.cdf(lo)))

    def interval(self, level: float = 0.90) -> tuple[float, float]:
        """Central ``level`` interval of the prior (in ``unit``), truncation included."""
        lo, hi = self.z_bounds
        a, b = norm.cdf(lo), norm.cdf(hi)
        q = np.array([(1 - level) / 2, (1 + level) / 2])
        z = norm.ppf(a + q * (b - a))
        return float(self.value(z[0])), float(self.value(z[1]))


def strength_priors() -> dict[str, StrengthPrior]:
    """The priors of the mechanism strengths fitted here, from ``data/mechanisms.toml`` and the calibrated
    population (``ε_med``: its calibrated value, ×/÷ :data:`~chemomet.calibrate.targets.EPSILON_PRIOR_FACTOR` at
    95%, within :data:`EPSILON_BOUNDS`).

    Returns
    -------
    dict[str, StrengthPrior]
        ``epsilon_median``, ``priming_take_increase``, ``priming_days`` (days), ``release_per_stress``,
        ``release_per_cxcr4``.

    Examples
    --------
    >>> p = strength_priors()
    >>> list(p)
    ['epsilon_median', 'priming_take_increase', 'priming_days', 'release_per_stress', 'release_per_cxcr4']
    >>> round(p["epsilon_median"].sdlog, 3), p["priming_days"].unit
    (0.707, 'days')
    """
    from chemomet.calibrate.shipped import calibrated_config
    from chemomet.mechanisms import load_mechanisms

    specs = load_mechanisms()
    eps = float(calibrated_config()["microenvironment"]["epsilon_median"])

    def of(name, mechanism, symbol, prior, unit):
        return StrengthPrior(name, mechanism, symbol, prior.median, prior.sdlog, prior.lower, prior.upper, unit,
                             prior.source)

    out = {
        "epsilon_median": StrengthPrior(
            "epsilon_median", "doorway", "ε_med", eps, math.log(EPSILON_PRIOR_FACTOR) / 1.96, EPSILON_BOUNDS[0],
            EPSILON_BOUNDS[1], "dimensionless",
            "calibrated epsilon_median (not identified by the targets) x/÷ 4 at 95%, the calibration ensemble's "
            "range; bounds: the calibration's search range",
        ),
        "priming_take_increase": of("priming_take_increase", "priming", "π",
                                    specs["priming"].parameters["take_increase"], "dimensionless"),
        "priming_days": of("priming_days", "priming", "W", specs["priming"].parameters["days_after_last_dose"],
                           "days"),
        "release_per_stress": of("release_per_stress", "mobilisation", "ν_D",
                                 specs["mobilisation"].parameters["per_unit_stress"], "dimensionless"),
        "release_per_cxcr4": of("release_per_cxcr4", "mobilisation", "ν_CXCR4", specs["mobilisation"].targets["CXCR4"],
                                "dimensionless"),
    }
    return out

