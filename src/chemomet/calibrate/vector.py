"""The calibrated parameters as named vectors, and their mapping onto a population configuration.

Two blocks of parameters, each on an unconstrained scale and each a :class:`Layout` (the names in order, every
parameter addressed by its name, so a new parameter shifts no other):

* :data:`NATURAL_HISTORY`, fitted to an untreated cohort by :mod:`chemomet.calibrate.natural_history`:

  | parameter | config value |
  |---|---|
  | ``log10_mu`` | ``dissemination.mu_median_per_cell_day = 10^θ`` (colonies per cell per day) |
  | ``log_mu_sdlog`` | ``dissemination.mu_sdlog = e^θ`` |
  | ``log_dt_scale`` | every ``growth.doubling_time_median_days`` = the prior's × ``e^θ`` (prior ratios kept) |
  | ``log_dt_sdlog`` | ``growth.doubling_time_sdlog = e^θ`` |
  | ``grade_log_dt_slope`` | ``growth.grade_doubling_factor = [e^{-θ}, 1, e^{θ}]`` for grades 1, 2, 3 |

  :data:`NATURAL_HISTORY_DORMANT` adds the dormancy of docs/science.md §2.7 (a vector of that length is read
  with it):

  | parameter | config value |
  |---|---|
  | ``logit_dormant_fraction`` | ``dormancy.dormant_fraction = 1/(1 + e^{-θ})`` |
  | ``log_mean_dormancy_days`` | ``dormancy.mean_dormancy_days = e^θ`` |

* :data:`TREATMENT`, matched to the published targets by :mod:`chemomet.calibrate.targets`:

  | parameter | config value |
  |---|---|
  | ``log_s_hr_pos_her2_neg`` | ``treatment.chemosensitivity_median["HR+/HER2-"] = e^θ`` |
  | ``log_s_hr_pos_her2_pos`` | ``treatment.chemosensitivity_median["HR+/HER2+"] = e^θ`` |
  | ``log_s_hr_neg_her2_pos`` | ``treatment.chemosensitivity_median["HR-/HER2+"] = e^θ`` |
  | ``log_s_tnbc`` | ``treatment.chemosensitivity_median["TNBC"] = e^θ`` |
  | ``log_grade3_s_factor`` | ``treatment.grade3_chemosensitivity_factor = e^θ`` |
  | ``log_theta`` | ``dissemination.theta = e^θ`` |
  | ``log10_colonisation_efficiency`` | ``dissemination.colonisation_efficiency = 10^θ`` |
  | ``log_epsilon_median`` | ``microenvironment.epsilon_median = e^θ`` |
  | ``log_s_met`` | ``treatment.metastasis_kill_ratio = e^θ`` |
  | ``log_ctc_count_dispersion`` | ``dissemination.ctc_count_dispersion = e^θ`` (size of the CTC count) |
  | ``log_ctc_background`` | ``dissemination.ctc_background_per_sample = e^θ`` (assay background, per draw) |

An ensemble member (a row of ``ensemble.npz``) holds named values of either block or both
(:func:`chemomet.calibrate.ensemble.config_from_vector`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from chemomet.population import Population


@dataclass(frozen=True)
class Layout:
    """The names of a parameter vector, in order; each parameter is addressed by its name.

    Examples
    --------
    >>> lay = Layout(("a", "b"))
    >>> lay.index("b"), len(lay)
    (1, 2)
    >>> lay.values([1.0, 2.0])["b"]
    np.float64(2.0)
    >>> lay.vector({"b": 2.0, "a": 1.0}).tolist()
    [1.0, 2.0]
    """

    names: tuple[str, ...]

    def __post_init__(self):
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"parameter names repeat: {self.names}")

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def index(self, name: str) -> int:
        """Position of parameter ``name`` in the vector; ``KeyError`` naming the known parameters if unknown."""
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"{name!r} is not a parameter of this vector; known: {list(self.names)}") from None

    def values(self, vector) -> dict[str, np.float64]:
        """The named values of ``vector`` (one per name, in order)."""
        return dict(zip(self.names, np.asarray(vector, float), strict=True))

    def vector(self, values: Mapping[str, float]) -> np.ndarray:
        """The vector of the named ``values`` (every name of the layout must be given; others are ignored)."""
        return np.array([values[k] for k in self.names])


NATURAL_HISTORY = Layout(("log10_mu", "log_mu_sdlog", "log_dt_scale", "log_dt_sdlog", "grade_log_dt_slope"))
"""Natural-history parameters fitted to an untreated cohort (unconstrained scale), see the module table."""

NATURAL_HISTORY_DORMANT = Layout(NATURAL_HISTORY.names + ("logit_dormant_fraction", "log_mean_dormancy_days"))
""":data:`NATURAL_HISTORY` with the dormant fraction and mean dormancy free (unconstrained scale)."""

DORMANCY_START = {"dormant_fraction": 0.5, "mean_dormancy_days": 1500.0}
"""Where a dormant fit starts when the configuration has no dormancy (fraction; days)."""


def natural_history_layout(theta) -> Layout:
    """The natural-history layout a vector of this length belongs to (with or without dormancy).

    Examples
    --------
    >>> natural_history_layout(np.zeros(7)) is NATURAL_HISTORY_DORMANT
    True
    """
    n = len(np.atleast_1d(theta))
    for layout in (NATURAL_HISTORY, NATURAL_HISTORY_DORMANT):
        if n == len(layout):
            return layout
    sizes = f"{len(NATURAL_HISTORY)} or {len(NATURAL_HISTORY_DORMANT)}"
    raise ValueError(f"a natural-history vector has {sizes} values, not {n}")

TREATMENT = Layout(
    (
        "log_s_hr_pos_her2_neg",
        "log_s_hr_pos_her2_pos",
        "log_s_hr_neg_her2_pos",
        "log_s_tnbc",
        "log_grade3_s_factor",
        "log_theta",
        "log10_colonisation_efficiency",
        "log_epsilon_median",
        "log_s_met",
        "log_ctc_count_dispersion",
        "log_ctc_background",
    )
)
"""Treatment and microenvironment parameters calibrated to published targets (unconstrained scale)."""

SUBTYPE_PARAM = {
    "HR+/HER2-": "log_s_hr_pos_her2_neg",
    "HR+/HER2+": "log_s_hr_pos_her2_pos",
    "HR-/HER2+": "log_s_hr_neg_her2_pos",
    "TNBC": "log_s_tnbc",
}
"""Subtype -> its chemosensitivity-median parameter in :data:`TREATMENT`."""


# ---------------------------------------------------------------------------------------------- the priors
@lru_cache(maxsize=1)
def _priors() -> dict:
    """The priors (``data/population.toml``), shared and read-only: callers copy before changing anything."""
    return Population.priors().config


def prior_config() -> dict:
    """The prior population configuration (``data/population.toml``), a fresh copy.

    Read from the file, not from ``Population()``'s default, so it stays the prior whatever the default
    population (the shipped calibration) is.

    Returns
    -------
    dict
        The configuration in the ``population.toml`` layout (tables ``growth``, ``dissemination``, ...).

    Examples
    --------
    >>> prior_config()["growth"]["doubling_time_median_days"]["TNBC"] > 0
    True
    """
    return copy.deepcopy(_priors())


# ---------------------------------------------------------------------------------------------- natural history
def natural_history_theta(config: dict, dormancy: bool = False) -> np.ndarray:
    """The natural-history vector ``θ`` (:data:`NATURAL_HISTORY`) of a configuration.

    Doubling times are taken relative to the priors' (``log_dt_scale``), so the priors give ``log_dt_scale = 0``.

    Parameters
    ----------
    config : dict
        A population configuration (``population.toml`` layout).
    dormancy : bool
        Return the :data:`NATURAL_HISTORY_DORMANT` vector; a configuration without dormancy (fraction 0) gives
        :data:`DORMANCY_START`.

    Returns
    -------
    numpy.ndarray
        ``θ`` on the unconstrained scale, in the order of :data:`NATURAL_HISTORY`.

    Examples
    --------
    >>> natural_history_theta(prior_config())[NATURAL_HISTORY.index("log_dt_scale")]
    np.float64(0.0)
    """
    g, d = config["growth"], config["dissemination"]
    ref_dt = _priors()["growth"]["doubling_time_median_days"]["HR+/HER2-"]
    gf = g["grade_doubling_factor"]  # grades 1, 2, 3
    values = {
        "log10_mu": np.log10(d["mu_median_per_cell_day"]),
        "log_mu_sdlog": np.log(d["mu_sdlog"]),
        "log_dt_scale": np.log(g["doubling_time_median_days"]["HR+/HER2-"] / ref_dt),
        "log_dt_sdlog": np.log(g["doubling_time_sdlog"]),
        "grade_log_dt_slope": 0.5 * (np.log(gf[2]) - np.log(gf[0])),
    }
    if not dormancy:
        return NATURAL_HISTORY.vector(values)
    dorm = config.get("dormancy", {})
    q = float(dorm.get("dormant_fraction", 0.0))
    if q <= 0.0:
        dorm = DORMANCY_START
        q = dorm["dormant_fraction"]
    values["logit_dormant_fraction"] = np.log(q / (1.0 - q)) if q < 1.0 else np.inf
    values["log_mean_dormancy_days"] = np.log(dorm["mean_dormancy_days"])
    return NATURAL_HISTORY_DORMANT.vector(values)


def with_natural_history(theta, reference: dict | None = None) -> dict:
    """A configuration with the natural-history parameters set from ``θ`` (see the module table).

    Parameters
    ----------
    theta : array_like
        Natural-history vector, order of :data:`NATURAL_HISTORY` or :data:`NATURAL_HISTORY_DORMANT`
        (unconstrained scale).
    reference : dict, optional
        Configuration whose other values are kept (default: the priors). It is not changed.

    Returns
    -------
    dict
        A new configuration; doubling times are the priors' times ``× e^{θ[log_dt_scale]}``.

    Examples
    --------
    >>> cfg = with_natural_history([-12.7, 0.5, 0.7, 0.0, -0.9])
    >>> cfg["dissemination"]["mu_median_per_cell_day"] == 10.0**-12.7
    True
    """
    prior_dt = _priors()["growth"]["doubling_time_median_days"]
    cfg = copy.deepcopy(reference or _priors())
    th = natural_history_layout(theta).values(theta)
    g, d = cfg["growth"], cfg["dissemination"]
    d["mu_median_per_cell_day"] = float(10.0 ** th["log10_mu"])
    d["mu_sdlog"] = float(np.exp(th["log_mu_sdlog"]))
    g["doubling_time_median_days"] = {k: float(v * np.exp(th["log_dt_scale"])) for k, v in prior_dt.items()}
    g["doubling_time_sdlog"] = float(np.exp(th["log_dt_sdlog"]))
    slope = th["grade_log_dt_slope"]
    g["grade_doubling_factor"] = [float(np.exp(-slope)), 1.0, float(np.exp(slope))]
    if "log_mean_dormancy_days" in th:
        cfg["dormancy"] = {
            **cfg.get("dormancy", {}),
            "dormant_fraction": float(1.0 / (1.0 + np.exp(-th["logit_dormant_fraction"]))),
            "mean_dormancy_days": float(np.exp(th["log_mean_dormancy_days"])),
        }
    return cfg


def natural_history_quantities(theta) -> dict[str, float]:
    """The natural-history parameters on their natural scales (units in the names).

    Parameters
    ----------
    theta : array_like
        Natural-history vector, order of :data:`NATURAL_HISTORY` or :data:`NATURAL_HISTORY_DORMANT`.

    Returns
    -------
    dict
        ``mu_median_per_cell_day`` (colonies per cell^γ per day), ``mu_sdlog``, the median doubling times of
        HR+ and triple-negative tumours (days), ``doubling_time_sdlog`` and the grade 3 vs grade 2 doubling
        factor (dimensionless); with dormancy also ``dormant_fraction`` (fraction) and ``mean_dormancy_days``.

    Examples
    --------
    >>> q = natural_history_quantities([-12.7, 0.5, 0.0, 0.0, 0.0])
    >>> q["grade3_vs_grade2_doubling_factor"]
    1.0
    """
    th = natural_history_layout(theta).values(theta)
    ref = _priors()["growth"]["doubling_time_median_days"]
    dormancy = {}
    if "log_mean_dormancy_days" in th:
        dormancy = {
            "dormant_fraction": float(1.0 / (1.0 + np.exp(-th["logit_dormant_fraction"]))),
            "mean_dormancy_days": float(np.exp(th["log_mean_dormancy_days"])),
        }
    return {
        "mu_median_per_cell_day": float(10 ** th["log10_mu"]),
        "mu_sdlog": float(np.exp(th["log_mu_sdlog"])),
        "doubling_time_median_days_hr_pos": float(ref["HR+/HER2-"] * np.exp(th["log_dt_scale"])),
        "doubling_time_median_days_tnbc": float(ref["TNBC"] * np.exp(th["log_dt_scale"])),
        "doubling_time_sdlog": float(np.exp(th["log_dt_sdlog"])),
        "grade3_vs_grade2_doubling_factor": float(np.exp(th["grade_log_dt_slope"])),
        **dormancy,
    }


# ---------------------------------------------------------------------------------------------- treatment
def treatment_theta(config: dict) -> np.ndarray:
    """The treatment/microenvironment vector (:data:`TREATMENT`) of a configuration.

    Parameters
    ----------
    config : dict
        A population configuration (``population.toml`` layout).

    Returns
    -------
    numpy.ndarray
        The vector on the unconstrained scale, in the order of :data:`TREATMENT`.

    Examples
    --------
    >>> th = treatment_theta(prior_config())
    >>> bool(th[TREATMENT.index("log_theta")] == np.log(prior_config()["dissemination"]["theta"]))
    True
    """
    t, d, m = config["treatment"], config["dissemination"], config["microenvironment"]
    s = t["chemosensitivity_median"]
    return TREATMENT.vector(
        {
            **{param: np.log(s[subtype]) for subtype, param in SUBTYPE_PARAM.items()},
            "log_grade3_s_factor": np.log(t["grade3_chemosensitivity_factor"]),
            "log_theta": np.log(d["theta"]),
            "log10_colonisation_efficiency": np.log10(d["colonisation_efficiency"]),
            "log_epsilon_median": np.log(m["epsilon_median"]),
            "log_s_met": np.log(t["metastasis_kill_ratio"]),
            "log_ctc_count_dispersion": np.log(d["ctc_count_dispersion"]),
            # no background (an older configuration) is -inf, which maps back to 0
            "log_ctc_background": _log_or_minus_inf(d.get("ctc_background_per_sample", 0.0)),
        }
    )


def with_treatment(theta, base: dict) -> dict:
    """``base`` with the treatment/microenvironment parameters set from ``θ`` (see the module table).

    Parameters
    ----------
    theta : array_like
        Vector in the order of :data:`TREATMENT` (unconstrained scale).
    base : dict
        Configuration whose other values are kept; it is not changed.

    Returns
    -------
    dict
        A new configuration.

    Examples
    --------
    >>> cfg = with_treatment(np.zeros(len(TREATMENT)), prior_config())
    >>> cfg["treatment"]["chemosensitivity_median"]["TNBC"], cfg["dissemination"]["colonisation_efficiency"]
    (1.0, 1.0)
    """
    cfg = copy.deepcopy(base)
    th = TREATMENT.values(theta)
    t, d, m = cfg["treatment"], cfg["dissemination"], cfg["microenvironment"]
    t["chemosensitivity_median"] = {subtype: float(np.exp(th[param])) for subtype, param in SUBTYPE_PARAM.items()}
    t["grade3_chemosensitivity_factor"] = float(np.exp(th["log_grade3_s_factor"]))
    d["theta"] = float(np.exp(th["log_theta"]))
    d["colonisation_efficiency"] = float(10.0 ** th["log10_colonisation_efficiency"])
    m["epsilon_median"] = float(np.exp(th["log_epsilon_median"]))
    t["metastasis_kill_ratio"] = float(np.exp(th["log_s_met"]))
    d["ctc_count_dispersion"] = float(np.exp(th["log_ctc_count_dispersion"]))
    d["ctc_background_per_sample"] = float(np.exp(th["log_ctc_background"]))
    return cfg


def _log_or_minus_inf(x: float) -> float:
    """``ln x``, and ``-inf`` for 0 without a warning."""
    return float(np.log(x)) if x > 0 else -np.inf


def treatment_natural_scale(theta) -> dict[str, float]:
    """The treatment/microenvironment parameters on their natural scales.

    Parameters
    ----------
    theta : array_like
        Vector in the order of :data:`TREATMENT`.

    Returns
    -------
    dict
        ``chemosensitivity_median <subtype>`` and ``grade3_chemosensitivity_factor`` (dimensionless),
        ``theta`` (TMEM exponent of μ), ``colonisation_efficiency`` (colonies per cell shed) and
        ``epsilon_median`` (microenvironment response, dimensionless), ``metastasis_kill_ratio`` (kill on
        colonies relative to the primary, dimensionless), ``ctc_count_dispersion`` (size of the negative
        binomial CTC count, dimensionless) and ``ctc_background_per_sample`` (the assay's false-positive events
        per 7.5 mL draw).

    Examples
    --------
    >>> treatment_natural_scale(np.zeros(len(TREATMENT)))["epsilon_median"]
    1.0
    """
    cfg = with_treatment(theta, {"treatment": {}, "dissemination": {}, "microenvironment": {}})
    t, d, m = cfg["treatment"], cfg["dissemination"], cfg["microenvironment"]
    return {
        **{f"chemosensitivity_median {k}": v for k, v in t["chemosensitivity_median"].items()},
        "grade3_chemosensitivity_factor": t["grade3_chemosensitivity_factor"],
        "theta": d["theta"],
        "colonisation_efficiency": d["colonisation_efficiency"],
        "epsilon_median": m["epsilon_median"],
        "metastasis_kill_ratio": t["metastasis_kill_ratio"],
        "ctc_count_dispersion": d["ctc_count_dispersion"],
        "ctc_background_per_sample": d["ctc_background_per_sample"],
    }
