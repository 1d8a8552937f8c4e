"""Fixed virtual cohorts (common random numbers) and their simulated arms, for simulation-based calibration.

A :class:`VirtualCohort` holds the draws of its patients (covariates, random effects, uniforms), so every
quantity computed on it is a deterministic function of the population configuration: the same patients under
every parameter value, and the same patients in every arm of a comparison.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pandas as pd

from chemomet.population import ANTI_HER2_STREAM, Population
from chemomet.regimens import DEFAULT_REGIMEN, Strategy, parse_regimens
from chemomet.simulation import simulate
from chemomet.units import DAYS_PER_YEAR


@dataclass
class VirtualCohort:
    """Fixed draws for common random numbers.

    covariates: covariate table (layout of :meth:`Population.parameters`); z: standard-normal random effects,
    shape ``(n, Population.N_EFFECTS)``; u: uniforms for the resistant clone, shape ``(n, 2)``; z_her2: standard
    normals for the anti-HER2 sensitivity, shape ``(n,)`` (None: 0, the median responder).

    Examples
    --------
    >>> from chemomet.calibrate.vector import prior_config
    >>> cohort = VirtualCohort.draw(prior_config(), 50, seed=1)
    >>> cohort.z.shape, len(cohort.with_covariates(grade=3).covariates)
    ((50, 7), 50)
    """

    covariates: pd.DataFrame
    z: np.ndarray
    u: np.ndarray
    z_her2: np.ndarray | None = None

    @staticmethod
    def draw(config: dict, n: int, seed: int) -> VirtualCohort:
        """``n`` virtual patients from the configuration's covariate model, seeded (``seed``: an integer)."""
        rng = np.random.default_rng(seed)
        pop = Population(config)
        zc, uc = rng.standard_normal((n, 4)), rng.random((n, 4))
        cov = pop.sample_covariates(zc, uc)
        z, u = rng.standard_normal((n, Population.N_EFFECTS)), rng.random((n, 2))
        # drawn from a generator of its own, so that the draws above are those of earlier versions
        z_her2 = np.random.default_rng([seed, ANTI_HER2_STREAM]).standard_normal(n)
        return VirtualCohort(cov, z, u, z_her2)

    def with_covariates(self, **values) -> VirtualCohort:
        """The same draws with some covariates overridden (scalars or arrays, one value per patient)."""
        cov = self.covariates.copy()
        for k, v in values.items():
            cov[k] = v
        return VirtualCohort(cov, self.z, self.u, self.z_her2)

    def parameters(self, config: dict):
        """``(population, parameters)`` of the cohort under ``config``."""
        pop = Population(config)
        return pop, pop.parameters(self.covariates, self.z, self.u, self.z_her2)


def with_sensitivity(config: dict, therapy: str, resistance_probability: float, median: float) -> dict:
    """A copy of ``config`` with a receptor-targeted therapy's two population settings replaced:
    ``<therapy>_resistance_probability`` (probability) and ``<therapy>_sensitivity_median`` (dimensionless), for
    ``therapy`` ``"endocrine"`` or ``"anti_her2"`` (see :func:`chemomet.population.receptor_sensitivity`).

    Examples
    --------
    >>> from chemomet.calibrate.vector import prior_config
    >>> with_sensitivity(prior_config(), "anti_her2", 0.2, 1.5)["treatment"]["anti_her2_sensitivity_median"]
    1.5
    """
    cfg = copy.deepcopy(config)
    cfg["treatment"][f"{therapy}_resistance_probability"] = float(resistance_probability)
    cfg["treatment"][f"{therapy}_sensitivity_median"] = float(median)
    return cfg


def simulate_arm(
    config: dict,
    cohort: VirtualCohort,
    strategy: str,
    regimen: str | dict = DEFAULT_REGIMEN,
    horizon_years: float = 15.0,
    grid=None,
    drugs=None,
):
    """One arm: the cohort under ``config`` treated with ``strategy`` (one process).

    Parameters
    ----------
    config : dict
        Population configuration (``population.toml`` layout).
    cohort : VirtualCohort
        The patients (fixed draws).
    strategy : str
        Strategy name (:meth:`chemomet.regimens.Strategy.parse`), default timing.
    regimen : str or dict
        Regimen key, or a regimen table in the ``regimens.toml`` layout (its first regimen is used).
    horizon_years : float
        Follow-up (years).
    grid : array_like, optional
        Times (days) for the trajectories.
    drugs : dict, optional
        The drug table (default: the shipped one), e.g. with a drug's effect changed during a calibration.

    Returns
    -------
    chemomet.model.engine.Outcome
        ``summary`` (one row per patient) and ``trajectories``, as :func:`chemomet.simulate` returns.

    Examples
    --------
    >>> from chemomet.calibrate.vector import prior_config
    >>> cfg = prior_config()
    >>> out = simulate_arm(cfg, VirtualCohort.draw(cfg, 20, seed=1), "nact", horizon_years=1.0)
    >>> len(out.summary)
    20
    """
    pop, p = cohort.parameters(config)
    if isinstance(regimen, dict):
        regimen = next(iter(parse_regimens(regimen).values()))
    strat = Strategy.parse(strategy, regimen, drugs=drugs)
    return simulate(
        p, strat, horizon_days=horizon_years * DAYS_PER_YEAR, population=pop, grid=grid, workers=1, drugs=drugs
    )
