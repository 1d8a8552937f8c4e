"""The shipped calibration (``chemomet/data/calibration``): population, ensemble and report.

Files: ``population.toml`` (the calibrated point estimate, layout of ``data/population.toml`` plus a
``[provenance]`` table), ``ensemble.npz`` (parameter sets carrying the uncertainty) and ``report.json`` (fit
summaries, c-indices, calibration tables and the target table). Reading only: the runs that write a
calibration folder are :mod:`chemomet.calibrate.pipeline`.
"""

from __future__ import annotations

import json
import tomllib
from importlib import resources

import numpy as np

from chemomet.calibrate.ensemble import config_from_vector
from chemomet.errors import InputError
from chemomet.population import Population

PACKAGE = "chemomet.data.calibration"


def _file(name: str):
    try:
        f = resources.files(PACKAGE).joinpath(name)
    except ModuleNotFoundError as err:  # pragma: no cover
        raise InputError(f"no shipped calibration found ({PACKAGE}); run: chemomet calibrate natural-history") from err
    if not f.is_file():
        raise InputError(f"shipped calibration file {name} is missing; run: chemomet calibrate natural-history")
    return f


def calibrated_config() -> dict:
    """The calibrated population configuration (``population.toml`` layout, with ``provenance``), a fresh dict.

    Examples
    --------
    >>> sorted(calibrated_config()["provenance"])
    ['natural_history', 'targets']
    """
    return tomllib.loads(_file("population.toml").read_text(encoding="utf-8"))


def calibrated_population() -> Population:
    """The calibrated :class:`~chemomet.population.Population` (point estimate); ``Population()`` uses it.

    Returns
    -------
    chemomet.population.Population
        Covariate and random-effect model with the calibrated values.

    Raises
    ------
    chemomet.errors.InputError
        When the shipped calibration files are missing.

    Examples
    --------
    >>> pop = calibrated_population()
    >>> cov, params = pop.sample(100, rng=1)
    >>> params.n
    100
    """
    return Population(calibrated_config())


def load_report() -> dict:
    """The shipped calibration report (``report.json``).

    Returns
    -------
    dict
        ``natural_history`` (fit, estimates, cross-validated c-indices, tertile tables, GBSG2 transport),
        ``targets`` (the target table: one row per published target with the value reached, its interval and
        whether it passes; estimates; Sobol indices) and ``provenance``. Times are in days or years as the
        keys say; probabilities are fractions.

    Raises
    ------
    chemomet.errors.InputError
        When the shipped calibration files are missing.

    Examples
    --------
    >>> rep = load_report()
    >>> rep["targets"]["table"][0]["name"]
    'pCR HR+/HER2- grade 1-2'
    >>> 0.5 < rep["natural_history"]["cross_validation"]["c_index_model"] < 1
    True
    """
    return json.loads(_file("report.json").read_text(encoding="utf-8"))


def load_ensemble() -> dict[str, np.ndarray]:
    """The ensemble of calibrated parameter sets.

    Returns
    -------
    dict
        ``names`` (parameter names, see :mod:`chemomet.calibrate.vector`) and ``values`` (sets × parameters,
        unconstrained scale).

    Raises
    ------
    chemomet.errors.InputError
        When the shipped calibration files are missing.

    Examples
    --------
    >>> ens = load_ensemble()
    >>> ens["values"].shape[1] == len(ens["names"])
    True
    """
    with _file("ensemble.npz").open("rb") as fh:
        data = np.load(fh, allow_pickle=False)
        return {k: data[k] for k in data.files}


def ensemble_populations(limit: int | None = None) -> list[Population]:
    """One :class:`Population` per ensemble member (the point estimate's other values kept).

    Parameters
    ----------
    limit : int, optional
        Only the first ``limit`` members.

    Examples
    --------
    >>> len(ensemble_populations(2))
    2
    """
    ens = load_ensemble()
    base = calibrated_config()
    rows = ens["values"][:limit]
    return [Population(config_from_vector(base, list(ens["names"]), row)) for row in rows]
