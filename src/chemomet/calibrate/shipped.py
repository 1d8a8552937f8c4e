"""The shipped calibration (``chemomet/data/calibration``): population, ensemble and report.

Files: ``population.toml`` (the calibrated point estimate, layout of ``data/population.toml`` plus a
``[provenance]`` table), ``ensemble.npz`` (parameter sets carrying the uncertainty) and ``report.json`` (fit
summaries, c-indices, calibration tables and the target table).
"""

from __future__ import annotations

import json
import tomllib
from importlib import resources

import numpy as np

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
    """The calibrated population configuration (``population.toml`` layout, with ``provenance``)."""
    return tomllib.loads(_file("population.toml").read_text(encoding="utf-8"))


def calibrated_population() -> Population:
    """The calibrated :class:`~chemomet.population.Population` (point estimate)."""
    return Population(calibrated_config())


def load_report() -> dict:
    """The shipped calibration report (``report.json``)."""
    return json.loads(_file("report.json").read_text(encoding="utf-8"))


def load_ensemble() -> dict[str, np.ndarray]:
    """The ensemble of calibrated parameter sets: ``names`` (parameter names), ``values`` (sets × parameters)."""
    with _file("ensemble.npz").open("rb") as fh:
        data = np.load(fh, allow_pickle=False)
        return {k: data[k] for k in data.files}


def ensemble_populations(limit: int | None = None) -> list[Population]:
    """One :class:`Population` per ensemble member (the point estimate's other values kept)."""
    from chemomet.calibrate.ensemble import config_from_vector

    ens = load_ensemble()
    base = calibrated_config()
    rows = ens["values"][:limit]
    return [Population(config_from_vector(base, list(ens["names"]), row)) for row in rows]
