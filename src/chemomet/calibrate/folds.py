"""Fold models for cross-validation: one fixed set of folds (:func:`fold_matrix`) and callables
``model(train, test)`` that fit on the training patients and predict the held-out ones' event-free probability
at each horizon (natural history refitted, Cox, Kaplan–Meier, fixed predictions), pooled out of fold by
:func:`out_of_fold`; used by :mod:`chemomet.calibrate.crossval`. Times are days, horizons years.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter

from chemomet.calibrate import natural_history as nh
from chemomet.calibrate.validation import folds, km_at
from chemomet.units import DAYS_PER_YEAR


def fold_matrix(n: int, k: int = 5, repeats: int = 5, seed: int = 7) -> np.ndarray:
    """Fold labels of repeated k-fold cross-validation, one row per repeat.

    Repeat ``r`` is :func:`chemomet.calibrate.validation.folds` with seed ``seed + r``, the folds of
    :func:`~chemomet.calibrate.validation.cross_validate`, so its numbers can be compared.

    Parameters
    ----------
    n : int
        Patients.
    k : int, default 5
        Folds per repeat (>= 2).
    repeats : int, default 5
        Repeats (>= 1).
    seed : int, default 7
        Seed of the first repeat.

    Returns
    -------
    numpy.ndarray
        Integer labels 0..k-1, shape ``(repeats, n)``.

    Examples
    --------
    >>> f = fold_matrix(10, k=5, repeats=2, seed=7)
    >>> f.shape, np.bincount(f[0]).tolist()
    ((2, 10), [2, 2, 2, 2, 2])
    """
    if k < 2 or repeats < 1 or n < k:
        raise ValueError(f"need k >= 2, repeats >= 1 and n >= k (got n={n}, k={k}, repeats={repeats})")
    return np.vstack([folds(n, k, seed + r) for r in range(repeats)])


@dataclass
class NaturalHistoryRefit:
    """Fold model: the natural history refitted on the training patients (maximum marginal likelihood from the
    priors, :func:`chemomet.calibrate.natural_history.maximise`), predicting distant-metastasis-free survival of
    the held-out patients (untreated, surgery on day 21).

    Attributes
    ----------
    covariates : pandas.DataFrame
        Covariates (layout of :meth:`chemomet.population.Population.parameters`).
    time_days : numpy.ndarray
        Follow-up (days).
    event : numpy.ndarray
        Distant metastasis observed (bool).
    horizons_years : tuple of float
        Horizons of the predictions (years).
    n_nodes : int, default 256
        Quadrature nodes per patient.
    seed : int, default 7
        Seed of the quadrature nodes (that of :func:`~chemomet.calibrate.validation.cross_validate`).
    max_evaluations : int, default 2000
        Most likelihood evaluations per fit.
    measurements : tuple, default ()
        Published measurements added to every training fit
        (:func:`~chemomet.calibrate.natural_history.published_doubling_times`).
    nodes : dict, optional
        The ``[nodes]`` table under which fits and predictions condition every patient on her node count
        (:class:`~chemomet.calibrate.natural_history.MarginalModel`); default: not conditioned.
    reference : dict, optional
        The configuration whose other values the fits keep (default: the priors).

    Examples
    --------
    >>> from chemomet.calibrate.cohort import VirtualCohort
    >>> from chemomet.calibrate.vector import prior_config
    >>> cov = VirtualCohort.draw(prior_config(), 30, seed=1).covariates
    >>> model = NaturalHistoryRefit(cov, np.full(30, 3000.0), np.arange(30) % 5 == 0, (5.0, 10.0), n_nodes=16,
    ...                             max_evaluations=20)
    >>> s = model(np.arange(20), np.arange(20, 30))
    >>> s.shape, bool(np.all(s[:, 1] <= s[:, 0]) and np.all(s > 0))
    ((10, 2), True)
    """

    covariates: pd.DataFrame
    time_days: np.ndarray
    event: np.ndarray
    horizons_years: tuple
    n_nodes: int = 256
    seed: int = 7
    max_evaluations: int = 2000
    measurements: tuple = ()
    nodes: dict | None = None
    reference: dict | None = None
    thetas: list = field(default_factory=list, repr=False)

    def __call__(self, train: np.ndarray, test: np.ndarray) -> np.ndarray:
        """Fit on ``train``, predict DMFS (probability) of ``test`` at the horizons, shape ``(len(test), H)``."""
        data = (self.covariates.reset_index(drop=True), self.time_days, self.event)
        m_train = nh.MarginalModel.of_rows(*data, train, self.n_nodes, self.seed, self.measurements, self.nodes,
                                           self.reference)
        theta, _, _, _ = nh.maximise(m_train, max_evaluations=self.max_evaluations)
        self.thetas.append(np.asarray(theta))
        m_test = nh.MarginalModel.of_rows(*data, test, self.n_nodes, self.seed, nodes=self.nodes,
                                          reference=self.reference)
        return m_test.dmfs(theta, np.asarray(self.horizons_years, float) * DAYS_PER_YEAR)


@dataclass
class CoxFold:
    """Fold model: a lifelines Cox model on the columns of ``design``, fitted on the training patients; predicts
    the held-out patients' event-free probability at the horizons.

    Attributes
    ----------
    design : pandas.DataFrame
        One row per patient, numeric covariates only (e.g. :func:`chemomet.calibrate.validation.cox_frame`).
    time_days : numpy.ndarray
        Follow-up (days).
    event : numpy.ndarray
        Event observed (bool).
    horizons_years : tuple of float
        Horizons (years).
    penalizer : float, default 0.0
        lifelines' ridge penalty (0: plain partial likelihood).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> x = rng.normal(size=200)
    >>> t = rng.exponential(3000.0 * np.exp(-x))
    >>> m = CoxFold(pd.DataFrame({"x": x}), np.minimum(t, 4000.0), t < 4000.0, (5.0, 10.0))
    >>> s = m(np.arange(150), np.arange(150, 200))
    >>> s.shape, bool(np.corrcoef(s[:, 0], x[150:])[0, 1] < -0.9)
    ((50, 2), True)
    """

    design: pd.DataFrame
    time_days: np.ndarray
    event: np.ndarray
    horizons_years: tuple
    penalizer: float = 0.0

    def __call__(self, train: np.ndarray, test: np.ndarray) -> np.ndarray:
        """Fit on ``train``; event-free probability of ``test`` at the horizons, shape ``(len(test), H)``."""
        d = self.design.reset_index(drop=True)
        df = d.iloc[train].copy()
        df["_time"] = np.asarray(self.time_days, float)[train]
        df["_event"] = np.asarray(self.event, bool)[train].astype(int)
        cph = CoxPHFitter(penalizer=self.penalizer).fit(df, duration_col="_time", event_col="_event")
        t = np.asarray(self.horizons_years, float) * DAYS_PER_YEAR
        return cph.predict_survival_function(d.iloc[test], times=t).to_numpy().T


@dataclass
class KaplanMeierFold:
    """Fold model: the Kaplan–Meier estimate of the training patients, the same for every held-out patient (the
    null model of the Brier score).

    Attributes
    ----------
    time_days : numpy.ndarray
        Follow-up (days).
    event : numpy.ndarray
        Event observed (bool).
    horizons_years : tuple of float
        Horizons (years).

    Examples
    --------
    >>> m = KaplanMeierFold(np.array([100.0, 2000.0, 3000.0, 5000.0]), np.array([True, True, False, False]), (5.0,))
    >>> m(np.arange(4), np.arange(2)).round(2).tolist()  # one event of four by 5 years (1,826 days)
    [[0.75], [0.75]]
    """

    time_days: np.ndarray
    event: np.ndarray
    horizons_years: tuple

    def __call__(self, train: np.ndarray, test: np.ndarray) -> np.ndarray:
        """KM of ``train`` at the horizons, repeated for each patient of ``test``, shape ``(len(test), H)``."""
        s, _, _ = km_at(np.asarray(self.time_days, float)[train], np.asarray(self.event, bool)[train],
                      self.horizons_years)
        return np.tile(s, (len(test), 1))


@dataclass
class FixedPredictions:
    """Fold model for predictions that use no outcome of the cohort (nothing to refit): the held-out rows of a
    precomputed table.

    Attributes
    ----------
    survival : numpy.ndarray
        Event-free probability per patient and horizon, shape ``(n, H)``.

    Examples
    --------
    >>> FixedPredictions(np.array([[0.9], [0.8], [0.7]]))(np.array([0, 1]), np.array([2])).tolist()
    [[0.7]]
    """

    survival: np.ndarray

    def __call__(self, train: np.ndarray, test: np.ndarray) -> np.ndarray:
        """The rows ``test`` of :attr:`survival` (``train`` is not used)."""
        return np.asarray(self.survival, float)[test]


def _fold_job(args):
    name, model, r, train, test = args
    t0 = _time.perf_counter()
    s = model(train, test)
    extra = list(model.thetas[-1]) if isinstance(model, NaturalHistoryRefit) and model.thetas else None
    return name, r, test, np.asarray(s, float), _time.perf_counter() - t0, extra


def out_of_fold(
    models: Mapping[str, Callable],
    fold_labels: np.ndarray,
    workers: int = 1,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[str, np.ndarray], dict]:
    """Out-of-fold predictions of every model on the same folds.

    Parameters
    ----------
    models : mapping of str to callable
        Name -> fold model ``model(train, test) -> (len(test), H)`` event-free probabilities.
    fold_labels : numpy.ndarray
        Fold labels, shape ``(repeats, n)`` (:func:`fold_matrix`).
    workers : int, default 1
        Processes (1: in this process).
    progress : callable, optional
        ``progress(line)``, called after each fold.

    Returns
    -------
    tuple
        ``(predictions, info)``: name -> array ``(repeats, n, H)``; ``info`` holds per model the fold fit times
        (``fit_seconds``, s) and, for :class:`NaturalHistoryRefit`, the fitted ``θ`` per fold (``fold_theta``).

    Examples
    --------
    >>> f = fold_matrix(6, k=3, repeats=2)
    >>> pred, info = out_of_fold({"fixed": FixedPredictions(np.linspace(0.5, 1.0, 6)[:, None])}, f)
    >>> pred["fixed"].shape, bool(np.all(pred["fixed"][0] == pred["fixed"][1]))
    ((2, 6, 1), True)
    """
    repeats, n = fold_labels.shape
    jobs = []
    for r in range(repeats):
        for f in np.unique(fold_labels[r]):
            train, test = np.flatnonzero(fold_labels[r] != f), np.flatnonzero(fold_labels[r] == f)
            for name, model in models.items():
                jobs.append((name, model, r, train, test))
    out: dict[str, np.ndarray] = {}
    info: dict = {name: {"fit_seconds": 0.0} for name in models}
    pool = ProcessPoolExecutor(max_workers=workers) if workers > 1 else None
    try:
        results = pool.map(_fold_job, jobs) if pool else map(_fold_job, jobs)
        for j, (name, r, test, s, secs, extra) in enumerate(results):
            if name not in out:
                out[name] = np.full((repeats, n, s.shape[1]), np.nan)
            out[name][r, test] = s
            info[name]["fit_seconds"] += secs
            if extra is not None:
                info[name].setdefault("fold_theta", []).append(extra)
            if progress and (isinstance(models[name], NaturalHistoryRefit) or j + 1 == len(jobs)):
                progress(f"fold fit {j + 1}/{len(jobs)} ({name}, repeat {r + 1})")
    finally:
        if pool:
            pool.shutdown()
    for name, a in out.items():
        if not np.all(np.isfinite(a)):
            raise RuntimeError(f"model {name!r}: some out-of-fold predictions are missing or not finite")
    return out, info
