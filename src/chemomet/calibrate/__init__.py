"""Calibration of the population model to real cohorts and published targets (issue 3).

Modules, each with one job; imports point down this list, never up:

* :mod:`chemomet.calibrate.cli`: the ``chemomet calibrate`` commands;
* :mod:`chemomet.calibrate.pipeline`: the runs behind them (fit, validate, calibrate, write a folder);
* :mod:`chemomet.calibrate.sensitivity`: Sobol sensitivity of the NACT-attributable excess risk (SALib);
* :mod:`chemomet.calibrate.validation`: cross-validated c-index against a Cox model, calibration by risk
  tertile, transport to GBSG2;
* :mod:`chemomet.calibrate.targets`: simulation-based calibration to the published targets of docs/science.md §3;
* :mod:`chemomet.calibrate.natural_history`: maximum marginal likelihood fit of growth and dissemination to
  an untreated cohort (TRANSBIG), with Laplace uncertainty;
* :mod:`chemomet.calibrate.shipped`: the shipped calibration (``data/calibration``):
  :func:`calibrated_population`, :func:`load_report`, :func:`load_ensemble`;
* :mod:`chemomet.calibrate.published`: the published targets (``data/calibration/targets.toml``), validated;
* :mod:`chemomet.calibrate.cohort`: fixed virtual cohorts (common random numbers) and their simulated arms;
* :mod:`chemomet.calibrate.ensemble`: the ensemble of parameter sets (drawing, combining, applying a member);
* :mod:`chemomet.calibrate.storage`: reading and writing a calibration folder;
* :mod:`chemomet.calibrate.vector`: the calibrated parameters by name and their mapping onto a configuration.
"""

from chemomet.calibrate.shipped import calibrated_population, load_ensemble, load_report

__all__ = ["calibrated_population", "load_ensemble", "load_report"]
