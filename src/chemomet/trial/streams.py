"""Per-patient random numbers of a trial, keyed by patient (screening) index, never by chunk or worker.

The population model draws a patient's covariates and parameters from ``SeedSequence(seed)`` in blocks of
:data:`chemomet.streams.BLOCK` patients; the trial's own uniforms (event time, death, loss to follow-up,
accrual date, baseline CTC draw) come from an independent root ``SeedSequence([seed, TRIAL_STREAM_TAG])`` with
the same block layout, so a patient's numbers depend only on the seed and its index.
"""

from __future__ import annotations

import numpy as np

from chemomet.streams import draws_at

TRIAL_STREAM_TAG = 0x7472_6961  # "tria": separates the trial's stream from the population's
UNIFORMS = ("event", "death", "loss", "accrual", "ctc")
"""Columns of :func:`patient_uniforms`, in order."""


def trial_root(seed: int) -> np.random.SeedSequence:
    """The root of the trial's per-patient streams for ``seed``."""
    return np.random.SeedSequence([int(seed), TRIAL_STREAM_TAG])


def patient_uniforms(seed: int, index: np.ndarray) -> np.ndarray:
    """Uniforms on [0, 1), shape ``(len(index), len(UNIFORMS))``, for the patients with these indices.

    ``index`` may be any integer array (unsorted, with gaps); row ``i`` depends only on ``(seed, index[i])``.
    """
    _, u = draws_at(trial_root(seed), index, 0, len(UNIFORMS))
    return u
