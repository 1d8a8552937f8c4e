"""Ensemble members as parameter vectors, and their mapping onto a population configuration.

An ensemble row holds the natural-history vector (:data:`chemomet.calibrate.natural_history.PARAM_NAMES`)
followed by the treatment/microenvironment vector (:data:`chemomet.calibrate.targets.PARAM_NAMES`), each on
its unconstrained scale.
"""

from __future__ import annotations

import numpy as np

from chemomet.calibrate import natural_history as nh


def config_from_vector(base: dict, names: list[str], row) -> dict:
    """The configuration ``base`` with the named parameters of ``row`` applied."""
    from chemomet.calibrate import targets as tg

    values = dict(zip([str(x) for x in names], np.asarray(row, float), strict=True))
    cfg = base
    if all(k in values for k in nh.PARAM_NAMES):
        cfg = nh.config_from_theta([values[k] for k in nh.PARAM_NAMES], cfg)
    if all(k in values for k in tg.PARAM_NAMES):
        cfg = tg.config_from_theta([values[k] for k in tg.PARAM_NAMES], cfg)
    return cfg
