"""Calibration of the population model to real cohorts and published targets (issue 3).

* :mod:`chemomet.calibrate.natural_history`: maximum marginal likelihood fit of growth and dissemination to
  an untreated cohort (TRANSBIG), with Laplace uncertainty and an ensemble of parameter sets;
* :mod:`chemomet.calibrate.validation`: cross-validated c-index against a Cox model, calibration by risk
  tertile, transport to GBSG2;
* :mod:`chemomet.calibrate.targets`: simulation-based calibration to the published targets of SCIENCE.md §3;
* :mod:`chemomet.calibrate.shipped`: the shipped calibration (``data/calibration``):
  :func:`calibrated_population`, :func:`load_report`, :func:`load_ensemble`.
"""

from chemomet.calibrate.shipped import calibrated_population, load_ensemble, load_report

__all__ = ["calibrated_population", "load_ensemble", "load_report"]
