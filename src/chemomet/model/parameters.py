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

from chemomet.units import BLOOD_VOLUME_ML, CTC_SAMPLE_ML

LN2 = float(np.log(2.0))


@dataclass(frozen=True)
class PatientParameters:
    """Per-patient model parameters, each an array whose first axis is the patient: shape ``(n,)``, or
    ``(n, k, ...)`` for a parameter that varies along a second axis (organ sites, clones).

    alpha_per_day, beta_per_day: Gompertz ``du/dt = alpha - beta u`` for ``u = ln(cells)`` (1/day).
    log_cells0: ln(primary cells at diagnosis). mu: founding rate per cell^gamma (colonies/day).
    gamma: dissemination exponent. chemosensitivity: ``s`` (dimensionless). resistant_fraction: ``f_R`` at
    diagnosis. resistant_kill_ratio: ``r_R``. s_met: kill multiplier on colonies. epsilon: prometastatic
    sensitivity. T0: baseline TMEM doorway density (doorways per 10 HPF). phi: share of spread via doorways.
    dormant_fraction: share of founded colonies that first stay dormant (optional, default 0);
    wake_rate_per_day: exit rate from dormancy (1/mean dormancy in days; exponential dormancy).
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

    def __post_init__(self):
        n = None
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:  # optional dormancy parameters: off unless given
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

    k_macrophage_per_day, k_mena_per_day: microenvironment relaxation rates (1/day); colonisation_efficiency:
    colonies founded per cell shed; ctc_clearance_per_day: 1/day; ctc_detection_efficiency: fraction;
    visible_cells: metastasis visibility (cells); pcr_threshold_cells: residual cells for pCR;
    cells_per_mm3: tumour cell density.
    """

    k_macrophage_per_day: float = 0.03
    k_mena_per_day: float = 0.02
    colonisation_efficiency: float = 5e-7
    ctc_clearance_per_day: float = LN2 / 1.5 * 24.0
    ctc_detection_efficiency: float = 0.8
    visible_cells: float = 1e8
    pcr_threshold_cells: float = 1e5
    cells_per_mm3: float = 1e6

    @property
    def ctc_per_sample_per_founding(self) -> float:
        """Expected CTCs in one 7.5 mL draw per unit founding rate (colonies/day)."""
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
    """
    w = phi_ref * (np.asarray(t0, dtype=float) / t_ref) ** exponent
    return w / ((1.0 - phi_ref) + w)
