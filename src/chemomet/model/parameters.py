"""The engine's inputs: per-patient parameter arrays and the population-level settings of a simulation.

:class:`PatientParameters` holds one array per parameter whose first axis is the patient; a parameter may carry
further axes (organ sites, clones) without changing how sets are sliced (:meth:`PatientParameters.take`) or stacked
(:meth:`PatientParameters.concat`). :class:`ModelSettings` holds what all patients of a simulation share. How
parameters are drawn from covariates lives above the engine, in :mod:`chemomet.population`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from chemomet.mechanisms import Mechanisms
from chemomet.units import BLOOD_VOLUME_ML, CTC_SAMPLE_ML

LN2 = float(np.log(2.0))


@dataclass(frozen=True)
class PatientParameters:
    """Per-patient model parameters, each an array whose first axis is the patient: shape ``(n,)``, or
    ``(n, k, ...)`` for a parameter that varies along a second axis (organ sites, clones).

    Values are converted to float arrays (a scalar becomes shape ``(1,)``); every parameter must have the same
    number of patients ``n``. Usually built by :meth:`chemomet.population.Population.sample` (virtual patients)
    or :meth:`chemomet.population.Population.typical` (real patients) rather than by hand. Frozen.

    Attributes
    ----------
    alpha_per_day, beta_per_day : numpy.ndarray
        Gompertz growth ``du/dt = alpha - beta u`` for ``u = ln(cells)`` (1/day); the plateau is
        ``ln K = alpha / beta`` (:attr:`log_plateau`).
    log_cells0 : numpy.ndarray
        ln(primary tumour cells at diagnosis) (ln cells).
    mu : numpy.ndarray
        Founding rate per cell^gamma (colonies per cell^gamma per day).
    gamma : numpy.ndarray
        Dissemination exponent (dimensionless).
    chemosensitivity : numpy.ndarray
        Chemosensitivity ``s`` of the primary tumour (dimensionless).
    resistant_fraction : numpy.ndarray
        ``f_R``: fraction of tumour cells in the resistant clone at diagnosis (fraction; 0: no resistant clone).
    resistant_kill_ratio : numpy.ndarray
        ``r_R``: kill of the resistant clone relative to the sensitive cells (dimensionless).
    s_met : numpy.ndarray
        Kill multiplier on metastatic colonies relative to the primary (dimensionless).
    epsilon : numpy.ndarray
        Prometastatic sensitivity: how strongly chemotherapy stress raises macrophage recruitment and MENA, and
        with them the doorway density ``T = T0 (1 + ε m)(1 + ε f)`` (dimensionless).
    T0 : numpy.ndarray
        Baseline TMEM doorway density (doorways per 10 HPF).
    phi : numpy.ndarray
        Share of spread via doorways (fraction; see :func:`doorway_share`).
    dormant_fraction : numpy.ndarray, optional
        Share of founded colonies that first stay dormant (fraction; default 0: no dormancy).
    wake_rate_per_day : numpy.ndarray, optional
        Exit rate from dormancy (1/day; 1 / mean dormancy in days, exponential dormancy; default 0).
    endocrine_sensitivity : numpy.ndarray, optional
        ``e``: how strongly endocrine therapy blocks the growth drive of the patient's colonies, relative to the
        population median (dimensionless; 0 in ER-negative disease; default 0: no response).
    her2_sensitivity : numpy.ndarray, optional
        ``h``: how strongly anti-HER2 antibodies kill the patient's cells, relative to the population median
        (dimensionless; 0 in HER2-negative disease; default 0: no response).
    endocrine_rescue_rank : numpy.ndarray, optional
        For an ER-positive tumour that does not respond to tamoxifen (``e = 0``), its rank among such tumours
        (uniform in (0, 1)); 0 for every other patient (default). A drug reaching the share ``ρ`` of them
        (``nonresponder_reach``) acts on ranks ``≥ 1 - ρ`` (see :func:`endocrine_sensitivity_for`).

    Raises
    ------
    ValueError
        If a parameter's first axis does not have ``n`` entries.

    Examples
    --------
    Two patients, given by hand:

    >>> import numpy as np
    >>> params = PatientParameters(
    ...     alpha_per_day=[0.02, 0.01], beta_per_day=[7e-4, 4e-4], log_cells0=np.log([5.2e8, 4.2e9]),
    ...     mu=[3e-13, 3e-13], gamma=[1.0, 1.0], chemosensitivity=[0.25, 1.0], resistant_fraction=[1e-3, 0.0],
    ...     resistant_kill_ratio=[0.3, 0.3], s_met=[0.3, 0.3], epsilon=[1.5, 1.0], T0=[32.0, 15.0], phi=[0.68, 0.5])
    >>> params.n
    2
    >>> params.log_plateau.round(2)  # ln K = alpha / beta (ln cells)
    array([28.57, 25.  ])
    >>> params.dormant_fraction  # not given: no dormancy
    array([0., 0.])
    >>> params.take([1]).T0  # the second patient only
    array([15.])
    >>> PatientParameters.concat([params, params.take([0])]).n
    3
    >>> params.to_frame().shape  # one row per patient, one column per parameter
    (2, 17)
    """

    alpha_per_day: np.ndarray
    beta_per_day: np.ndarray
    log_cells0: np.ndarray
    mu: np.ndarray
    gamma: np.ndarray
    chemosensitivity: np.ndarray
    resistant_fraction: np.ndarray
    resistant_kill_ratio: np.ndarray
    s_met: np.ndarray
    epsilon: np.ndarray
    T0: np.ndarray
    phi: np.ndarray
    dormant_fraction: np.ndarray | None = None
    wake_rate_per_day: np.ndarray | None = None
    endocrine_sensitivity: np.ndarray | None = None
    her2_sensitivity: np.ndarray | None = None
    endocrine_rescue_rank: np.ndarray | None = None

    def __post_init__(self):
        n = None
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:  # optional dormancy, endocrine and anti-HER2 parameters: off unless given
                value = np.zeros(n)
            arr = np.atleast_1d(np.asarray(value, dtype=float))
            object.__setattr__(self, f.name, arr)
            if n is None:
                n = arr.shape[0]
            if arr.shape[0] != n:
                raise ValueError(f"parameter {f.name} has shape {arr.shape}; expected ({n}, ...): one row per patient")

    @property
    def n(self) -> int:
        """Number of patients."""
        return self.alpha_per_day.shape[0]

    @property
    def log_plateau(self) -> np.ndarray:
        """ln K = alpha / beta (ln cells)."""
        return self.alpha_per_day / self.beta_per_day

    def take(self, index) -> PatientParameters:
        """The patients at ``index`` (any NumPy index)."""
        return PatientParameters(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @staticmethod
    def concat(parts: list[PatientParameters]) -> PatientParameters:
        """Stack several parameter sets into one."""
        return PatientParameters(
            **{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(PatientParameters)}
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per patient, one column per parameter."""
        return pd.DataFrame({f.name: getattr(self, f.name) for f in fields(self)})


@dataclass(frozen=True)
class ModelSettings:
    """Population-level settings shared by all patients of a simulation.

    The defaults are the model's priors; :attr:`chemomet.population.Population.settings` builds the settings of a
    population configuration (shipped calibration or priors). Frozen.

    Attributes
    ----------
    k_macrophage_per_day, k_mena_per_day : float
        Microenvironment relaxation rates of macrophage recruitment and MENA expression (1/day).
    colonisation_efficiency : float
        Colonies founded per cell shed into the blood (colonies per cell).
    ctc_clearance_per_day : float
        Clearance rate of circulating tumour cells (1/day; default: half-life 1.5 h).
    ctc_detection_efficiency : float
        Fraction of CTCs in a draw that the assay detects (fraction).
    ctc_count_dispersion : float
        Negative-binomial size ``k`` of a CTC count around its expectation (dimensionless; variance
        ``λ + λ²/k``).
    ctc_background_per_sample : float
        ``b``: false-positive events a 7.5 mL draw counts on average whatever the tumour (cells per 7.5 mL; a
        Poisson count added to the tumour's, 0: none).
    visible_cells : float
        Size at which a metastasis is clinically visible (cells).
    pcr_threshold_cells : float
        Residual primary tumour below which the response counts as pCR (cells).
    cells_per_mm3 : float
        Tumour cell density (cells per mm³).
    nodal_seeding_ratio : float
        ``ρ``: axillary-node seedings per distant colony founded (node seedings per colony; see
        :mod:`chemomet.model.nodes`).
    node_count_dispersion : float
        Negative-binomial size ``k`` of a reported positive-node count (dimensionless).
    axillary_nodes : float
        ``M``: axillary nodes open to involvement (lymph nodes).
    nodal_clearance_per_day : float
        ``δ``: rate at which nodal deposits are cleared (1/day; 0: every deposit persists).
    nodal_detection_cells : float
        ``N_det``: size a nodal deposit must reach to be seen by the pathologist (cells; 1: seen from its first
        cell).
    nodal_small_clearance_per_day : float
        ``δ_s``: rate at which nodal deposits smaller than ``N_det`` are cleared (1/day).
    nodal_growth_exponent_offset : float
        ``β − β_n``: how much less the nodal seeding follows the growth rate than the distant founding does
        (dimensionless; the founding rate ``μ`` carries ``(DT_ref / DT)^β``, the nodal seeding
        ``(DT_ref / DT)^β_n``; 0: both the same, see :mod:`chemomet.model.nodes`).
    mu_growth_reference_days : float
        ``DT_ref`` of that link (days).
    mechanisms : Mechanisms
        The prometastatic mechanisms carried and their strengths (default: the shipped model, doorway mechanism
        only; see :mod:`chemomet.mechanisms`).

    Examples
    --------
    >>> settings = ModelSettings()
    >>> settings.visible_cells, settings.pcr_threshold_cells
    (100000000.0, 100000.0)
    >>> round(settings.ctc_clearance_per_day, 2)  # half-life 1.5 h
    11.09
    >>> ModelSettings(cells_per_mm3=1e5).cells_per_mm3  # the lower density of Del Monte 2009
    100000.0
    """

    k_macrophage_per_day: float = 0.03
    k_mena_per_day: float = 0.02
    colonisation_efficiency: float = 5e-7
    ctc_clearance_per_day: float = LN2 / 1.5 * 24.0
    ctc_detection_efficiency: float = 0.8
    ctc_count_dispersion: float = 0.5
    ctc_background_per_sample: float = 0.0
    visible_cells: float = 1e8
    pcr_threshold_cells: float = 1e5
    cells_per_mm3: float = 1e6
    nodal_seeding_ratio: float = 1.0
    node_count_dispersion: float = 1.0
    axillary_nodes: float = 30.0
    nodal_clearance_per_day: float = 0.0
    nodal_detection_cells: float = 1.0
    nodal_small_clearance_per_day: float = 0.0
    nodal_growth_exponent_offset: float = 0.0
    mu_growth_reference_days: float = 250.0
    mechanisms: Mechanisms = Mechanisms()

    @property
    def ctc_per_sample_per_founding(self) -> float:
        """Expected CTCs in one 7.5 mL draw per unit founding rate (cells per 7.5 mL per colony/day).

        Examples
        --------
        >>> round(ModelSettings().ctc_per_sample_per_founding, 1)
        216.4
        """
        return (
            CTC_SAMPLE_ML
            / BLOOD_VOLUME_ML
            * self.ctc_detection_efficiency
            / (self.colonisation_efficiency * self.ctc_clearance_per_day)
        )


def doorway_share(t0, phi_ref: float, t_ref: float, exponent: float) -> np.ndarray:
    """The share ``φ`` of dissemination that goes through doorways, for baseline TMEM ``t0`` (per 10 HPF).

    Intravasation happens at doorways (Harney 2015), so the doorway route grows with their number while the other
    routes do not: with doorway and other routes in proportion ``φ_ref : (1 - φ_ref)`` at ``T_ref``,
    ``φ(T0) = φ_ref r^κ / (1 - φ_ref + φ_ref r^κ)``, ``r = T0 / T_ref``. ``κ = 0`` gives a constant share.

    Parameters
    ----------
    t0 : float or array_like
        Baseline TMEM doorway density ``T0`` (doorways per 10 HPF).
    phi_ref : float
        Doorway share ``φ_ref`` at the reference density (fraction, 0 to 1).
    t_ref : float
        Reference density ``T_ref`` (doorways per 10 HPF).
    exponent : float
        ``κ``: how steeply the doorway route grows with ``T0`` (dimensionless; 0: constant share).

    Returns
    -------
    numpy.ndarray
        The doorway share ``φ`` (fraction), same shape as ``t0``.

    Examples
    --------
    >>> doorway_share([7.5, 15.0, 30.0, 60.0], phi_ref=0.5, t_ref=15.0, exponent=1.0)
    array([0.33333333, 0.5       , 0.66666667, 0.8       ])
    >>> doorway_share([7.5, 60.0], phi_ref=0.5, t_ref=15.0, exponent=0.0)  # kappa = 0: constant
    array([0.5, 0.5])
    """
    w = phi_ref * (np.asarray(t0, dtype=float) / t_ref) ** exponent
    return w / ((1.0 - phi_ref) + w)


def endocrine_sensitivity_for(params: PatientParameters, reach: float, reached_sensitivity: float) -> np.ndarray:
    """Endocrine sensitivity under a drug that also reaches the share ``reach`` of tamoxifen non-responders.

    ``e`` (:attr:`PatientParameters.endocrine_sensitivity`) is the sensitivity to tamoxifen, the calibration's
    reference drug. An aromatase inhibitor acts through estrogen deprivation, which also reaches part of the
    tumours tamoxifen does not (``reach``, the drug's ``nonresponder_reach``): those ranked ``≥ 1 - reach`` among
    the non-responders (:attr:`PatientParameters.endocrine_rescue_rank`) get ``reached_sensitivity``; everyone
    else keeps ``e``.

    Parameters
    ----------
    params : PatientParameters
        The patients.
    reach : float
        Share of tamoxifen non-responders the drug reaches (fraction, 0 to 1).
    reached_sensitivity : float
        Their sensitivity (dimensionless, relative to the drug's ``growth_block``).

    Returns
    -------
    numpy.ndarray
        Sensitivity per patient (dimensionless).

    Examples
    --------
    >>> p = PatientParameters(alpha_per_day=[0.01] * 3, beta_per_day=[1e-3] * 3, log_cells0=[20.0] * 3, mu=[1e-13] * 3,
    ...     gamma=[1.0] * 3, chemosensitivity=[0.2] * 3, resistant_fraction=[0.0] * 3, resistant_kill_ratio=[0.3] * 3,
    ...     s_met=[0.7] * 3, epsilon=[1.0] * 3, T0=[15.0] * 3, phi=[0.5] * 3, endocrine_sensitivity=[1.3, 0.0, 0.0],
    ...     endocrine_rescue_rank=[0.0, 0.2, 0.9])
    >>> endocrine_sensitivity_for(p, 0.25, 0.5).tolist()
    [1.3, 0.0, 0.5]
    """
    if reach <= 0.0:
        return params.endocrine_sensitivity
    rank = params.endocrine_rescue_rank
    reached = (rank > 0.0) & (rank >= 1.0 - reach)
    return np.where(reached, reached_sensitivity, params.endocrine_sensitivity)


def reached_sensitivity(drug) -> float:
    """Sensitivity, relative to the drug's ``growth_block``, of the tamoxifen non-responders an endocrine drug
    reaches: ``nonresponder_block / growth_block`` (dimensionless; 0 for a drug without them).

    ``drug``: a :class:`chemomet.regimens.Drug` (anything with ``growth_block`` and ``nonresponder_block``).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> reached_sensitivity(SimpleNamespace(growth_block=1.2, nonresponder_block=0.3))
    0.25
    """
    return float(drug.nonresponder_block or 0.0) / max(float(drug.growth_block or 0.0), 1e-12)
