"""Per-patient random numbers of a trial, keyed by patient (screening) index, never by chunk or worker.

The population model draws a patient's covariates and parameters from ``SeedSequence(seed)`` in blocks of
:data:`chemomet.streams.BLOCK` patients; the trial's own uniforms (event time, death, loss to follow-up,
accrual date, baseline CTC draw) come from an independent root ``SeedSequence([seed, TRIAL_STREAM_TAG])`` with
the same block layout, so a patient's numbers depend only on the seed and its index. Uniforms added later (the time
from distant metastasis to breast-cancer death) come from a second root, ``SeedSequence([seed, MORTALITY_STREAM_TAG])``,
so that adding them shifted none of the first stream's numbers; loco-regional recurrence and the CTC assay's
background count have roots of their own in the same way.
"""

from __future__ import annotations

import numpy as np

from chemomet.streams import draws_at

TRIAL_STREAM_TAG = 0x7472_6961  # "tria": separates the trial's stream from the population's
UNIFORMS = ("event", "death", "loss", "accrual", "ctc")
"""Columns of :func:`patient_uniforms`, in order (``death``: death from other causes)."""
MORTALITY_STREAM_TAG = 0x6D6F_7274  # "mort": the second per-patient stream
MORTALITY_UNIFORMS = ("metastatic_death",)
LOCAL_STREAM_TAG = 0x6C6F_6361  # "loca": the third per-patient stream (loco-regional recurrence)
BACKGROUND_STREAM_TAG = 0x6374_6267  # "ctbg": the fourth per-patient stream (the CTC assay's background count)
"""Columns of :func:`mortality_uniforms`, in order (``metastatic_death``: time from distant metastasis to
breast-cancer death)."""


def trial_root(seed: int) -> np.random.SeedSequence:
    """The root of the trial's per-patient streams for ``seed``."""
    return np.random.SeedSequence([int(seed), TRIAL_STREAM_TAG])


def patient_uniforms(seed: int, index: np.ndarray) -> np.ndarray:
    """Uniforms on [0, 1), shape ``(len(index), len(UNIFORMS))``, for the patients with these indices.

    ``index`` may be any integer array (unsorted, with gaps); row ``i`` depends only on ``(seed, index[i])``.
    """
    _, u = draws_at(trial_root(seed), index, 0, len(UNIFORMS))
    return u


def mortality_uniforms(seed: int, index: np.ndarray) -> np.ndarray:
    """Uniforms on [0, 1), shape ``(len(index), len(MORTALITY_UNIFORMS))``, from the trial's second stream.

    Keyed like :func:`patient_uniforms` (row ``i`` depends only on ``(seed, index[i])``) but from the root
    ``SeedSequence([seed, MORTALITY_STREAM_TAG])``, independent of the first stream.

    Parameters
    ----------
    seed : int
        The trial's seed.
    index : array_like of int
        Screening indices of the patients (any order, gaps and repeats allowed).

    Returns
    -------
    numpy.ndarray
        Uniforms (dimensionless), one row per patient.

    Examples
    --------
    >>> u = mortality_uniforms(3, np.array([7, 2000]))
    >>> u.shape, bool(np.array_equal(u[1], mortality_uniforms(3, np.array([2000]))[0]))
    ((2, 1), True)
    """
    _, u = draws_at(np.random.SeedSequence([int(seed), MORTALITY_STREAM_TAG]), index, 0, len(MORTALITY_UNIFORMS))
    return u


def local_uniforms(seed: int, index: np.ndarray) -> np.ndarray:
    """One uniform on [0, 1) per patient for loco-regional recurrence, from the root
    ``SeedSequence([seed, LOCAL_STREAM_TAG])``: keyed like :func:`patient_uniforms`, independent of the other
    streams (adding it moved none of their draws).

    Examples
    --------
    >>> u = local_uniforms(3, np.array([7, 2000]))
    >>> u.shape, bool(u[1] == local_uniforms(3, np.array([2000]))[0])
    ((2,), True)
    """
    return _one_uniform(seed, LOCAL_STREAM_TAG, index)


def background_uniforms(seed: int, index: np.ndarray) -> np.ndarray:
    """One uniform on [0, 1) per patient for the CTC assay's background count, from the root
    ``SeedSequence([seed, BACKGROUND_STREAM_TAG])``, keyed and independent as :func:`local_uniforms`.

    Examples
    --------
    >>> bool(background_uniforms(3, np.array([7]))[0] != local_uniforms(3, np.array([7]))[0])
    True
    """
    return _one_uniform(seed, BACKGROUND_STREAM_TAG, index)


def _one_uniform(seed: int, tag: int, index: np.ndarray) -> np.ndarray:
    """One uniform per patient from the root ``SeedSequence([seed, tag])`` (the layout of :func:`patient_uniforms`)."""
    _, u = draws_at(np.random.SeedSequence([int(seed), tag]), index, 0, 1)
    return u[:, 0]
