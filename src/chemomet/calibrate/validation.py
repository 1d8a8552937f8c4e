"""Validation of the natural-history fit: cross-validated c-index against a Cox model on the same folds,
calibration by risk tertile (predicted vs Kaplan–Meier DMFS), and transport to another cohort.

Survival statistics come from lifelines (``CoxPHFitter``, ``KaplanMeierFitter``, ``concordance_index``).
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.utils import concordance_index

from chemomet.calibrate import natural_history as nh
from chemomet.units import DAYS_PER_YEAR

COX_COLUMNS = ("size_cm", "grade", "er", "age")
"""Covariates of the Cox comparator: the ones the mechanistic model uses (size, grade, ER, age)."""


def cox_frame(cov: pd.DataFrame, time=None, event=None) -> pd.DataFrame:
    """The Cox design: size (cm), grade (1-3), ER (0/1), age (years), plus ``time``/``event`` when given.

    Examples
    --------
    >>> cov = pd.DataFrame({"diameter_mm": [20.0], "grade": [2], "er": [True], "age": [50.0]})
    >>> cox_frame(cov).iloc[0].tolist()
    [2.0, 2.0, 1.0, 50.0]
    """
    df = pd.DataFrame(
        {
            "size_cm": cov["diameter_mm"].to_numpy(float) / 10.0,
            "grade": cov["grade"].to_numpy(float),
            "er": cov["er"].to_numpy(float),
            "age": cov["age"].to_numpy(float),
        }
    )
    if time is not None:
        df["time"] = np.asarray(time, float)
        df["event"] = np.asarray(event, bool).astype(int)
    return df


def fit_cox(cov, time, event) -> CoxPHFitter:
    """lifelines Cox model on :data:`COX_COLUMNS` (``time`` in days, ``event`` booleans).

    Examples
    --------
    >>> cph = fit_cox(cohort.covariates, cohort.time_days, cohort.event)  # doctest: +SKIP
    """
    return CoxPHFitter().fit(cox_frame(cov, time, event), duration_col="time", event_col="event")


def cox_risk(cph: CoxPHFitter, cov, years: float = 10.0) -> np.ndarray:
    """Cox-predicted probability of the event by ``years`` after diagnosis.

    Examples
    --------
    >>> cox_risk(fit_cox(cov, time, event), cov, years=10.0)  # doctest: +SKIP
    """
    surv = cph.predict_survival_function(cox_frame(cov), times=[years * DAYS_PER_YEAR])
    return 1.0 - surv.to_numpy()[0]


def folds(n: int, k: int, seed: int) -> np.ndarray:
    """Fold label (0..k-1) of each of ``n`` patients, a seeded random balanced assignment.

    Examples
    --------
    >>> np.bincount(folds(10, 5, seed=7)).tolist()
    [2, 2, 2, 2, 2]
    """
    rng = np.random.default_rng(seed)
    return rng.permutation(np.arange(n) % k)


def _fold_job(args):
    cov, time, event, train, test, n_nodes, seed, years, measurements, nodes, reference = args
    theta, _, _, _ = nh.maximise(
        nh.MarginalModel.of_rows(cov, time, event, train, n_nodes, seed, measurements, nodes, reference)
    )
    m_test = nh.MarginalModel.of_rows(cov, time, event, test, n_nodes, seed, nodes=nodes, reference=reference)
    risk_model = m_test.risk(theta, years)
    cph = fit_cox(cov.iloc[train], time[train], event[train])
    risk_cox = cox_risk(cph, cov.iloc[test], years)
    return test, risk_model, risk_cox, theta


def cross_validate(
    cov: pd.DataFrame,
    time,
    event,
    repeats: int = 5,
    k: int = 5,
    seed: int = 7,
    n_nodes: int = 256,
    years: float = 10.0,
    workers: int = 2,
    n_boot: int = 1000,
    progress=None,
    measurements: tuple = (),
    nodes: dict | None = None,
    reference: dict | None = None,
) -> dict:
    """Repeated k-fold cross-validated c-index of the predicted ``years``-year DM risk, model vs Cox.

    Both models are fitted on the same training folds (the mechanistic model from the priors, by maximum
    marginal likelihood, with the published ``measurements`` in every training fit and, with ``nodes``, every
    patient conditioned on her node count: :class:`~chemomet.calibrate.natural_history.MarginalModel`; the other
    values from ``reference``, default the priors) and scored
    on the held-out
    patients (Harrell's c, lifelines ``concordance_index``). The c-index of each repeat is computed on its pooled
    out-of-fold predictions; the point estimate is the mean over repeats, and the 95% interval is a patient
    bootstrap (``n_boot`` resamples) of the c-index of the repeat-averaged out-of-fold risks; the
    paired difference model − Cox gets the same bootstrap.

    Examples
    --------
    >>> from chemomet.datasets import load_transbig
    >>> c = load_transbig()  # doctest: +SKIP
    >>> cv = cross_validate(c.covariates, c.time_days, c.event, workers=2)  # doctest: +SKIP
    >>> cv["c_index_model"], cv["c_index_cox"]  # doctest: +SKIP
    """
    time = np.asarray(time, float)
    event = np.asarray(event, bool)
    n = len(cov)
    jobs = []
    for r in range(repeats):
        lab = folds(n, k, seed + r)
        for f in range(k):
            train, test = np.flatnonzero(lab != f), np.flatnonzero(lab == f)
            jobs.append((cov, time, event, train, test, n_nodes, seed, years, tuple(measurements), nodes, reference))
    oof_model = np.zeros((repeats, n))
    oof_cox = np.zeros((repeats, n))
    thetas = []
    done = 0
    pool = ProcessPoolExecutor(max_workers=workers) if workers > 1 else None
    try:
        results = pool.map(_fold_job, jobs) if pool else map(_fold_job, jobs)
        for j, (test, rm, rc, th) in enumerate(results):
            oof_model[j // k, test] = rm
            oof_cox[j // k, test] = rc
            thetas.append(th)
            done += 1
            if progress:
                progress(done, len(jobs))
    finally:
        if pool:
            pool.shutdown()
    c_model = [concordance_index(time, -oof_model[r], event) for r in range(repeats)]
    c_cox = [concordance_index(time, -oof_cox[r], event) for r in range(repeats)]
    mean_model, mean_cox = oof_model.mean(axis=0), oof_cox.mean(axis=0)
    rng = np.random.default_rng(seed)
    boot = np.empty((n_boot, 2))
    for b in range(n_boot):
        idx = rng.integers(0, n, n)
        boot[b] = (
            concordance_index(time[idx], -mean_model[idx], event[idx]),
            concordance_index(time[idx], -mean_cox[idx], event[idx]),
        )
    diff = boot[:, 0] - boot[:, 1]
    return {
        "repeats": repeats,
        "folds": k,
        "seed": seed,
        "horizon_years": years,
        "quadrature_nodes": n_nodes,
        "c_index_model": float(np.mean(c_model)),
        "c_index_model_ci95": [float(x) for x in np.percentile(boot[:, 0], [2.5, 97.5])],
        "c_index_model_by_repeat": [float(x) for x in c_model],
        "c_index_cox": float(np.mean(c_cox)),
        "c_index_cox_ci95": [float(x) for x in np.percentile(boot[:, 1], [2.5, 97.5])],
        "c_index_cox_by_repeat": [float(x) for x in c_cox],
        "difference_model_minus_cox": float(np.mean(c_model) - np.mean(c_cox)),
        "difference_ci95": [float(x) for x in np.percentile(diff, [2.5, 97.5])],
        "fold_theta_sd": [float(x) for x in np.std(np.array(thetas), axis=0)],
        "oof_risk_model": mean_model.tolist(),
        "oof_risk_cox": mean_cox.tolist(),
    }


def km_at(time, event, years) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kaplan–Meier survival at ``years`` with its 95% pointwise interval (lifelines, exponential Greenwood).

    ``time`` in days; ``years`` one horizon or several; returns ``(survival, low, high)``, one value per horizon.

    Examples
    --------
    >>> s, lo, hi = km_at([400.0, 800.0, 3000.0, 4000.0], [True, False, True, False], [1.0, 5.0])
    >>> s.round(3).tolist()
    [1.0, 0.75]
    """
    kmf = KaplanMeierFitter().fit(time, event)
    t = np.atleast_1d(np.asarray(years, float)) * DAYS_PER_YEAR
    s = kmf.survival_function_at_times(t).to_numpy(float)
    ci = kmf.confidence_interval_
    row = np.maximum(np.searchsorted(ci.index.to_numpy(float), t, side="right") - 1, 0)
    return s, ci.iloc[:, 0].to_numpy(float)[row], ci.iloc[:, 1].to_numpy(float)[row]


def calibration_by_tertile(pred_dmfs: np.ndarray, risk: np.ndarray, time, event, years=(5.0, 10.0)) -> pd.DataFrame:
    """Predicted (mean of patients) vs Kaplan–Meier DMFS at ``years`` in tertiles of predicted ``risk``.

    pred_dmfs: ``(n, len(years))`` predicted DMFS per patient. Returns one row per tertile and horizon with
    ``predicted``, ``km``, ``km_low``, ``km_high``, ``within_ci`` and the tertile's size and events.

    Examples
    --------
    >>> table = calibration_by_tertile(pred, risk10, cohort.time_days, cohort.event)  # doctest: +SKIP
    """
    time = np.asarray(time, float)
    event = np.asarray(event, bool)
    cuts = np.quantile(risk, [1 / 3, 2 / 3])
    tert = np.digitize(risk, cuts)
    rows = []
    for g, name in enumerate(("low", "middle", "high")):
        sel = tert == g
        s, lo, hi = km_at(time[sel], event[sel], years)
        for j, y in enumerate(years):
            pred = float(pred_dmfs[sel, j].mean())
            rows.append(
                {
                    "tertile": name,
                    "years": y,
                    "n": int(sel.sum()),
                    "events": int(event[sel].sum()),
                    "predicted": pred,
                    "km": float(s[j]),
                    "km_low": float(lo[j]),
                    "km_high": float(hi[j]),
                    "within_ci": bool(lo[j] <= pred <= hi[j]),
                }
            )
    return pd.DataFrame(rows)


def plot_calibration(path, model: nh.MarginalModel, theta, risk, time, event, title: str, max_years: float = 15.0):
    """Kaplan–Meier DMFS by predicted-risk tertile with the model's mean predicted curves (PNG).

    Examples
    --------
    >>> plot_calibration("tertiles.png", model, theta, risk10, time, event, "TRANSBIG")  # doctest: +SKIP
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    time = np.asarray(time, float)
    event = np.asarray(event, bool)
    years = np.linspace(0.0, max_years, 61)
    pred = model.dmfs(theta, years * DAYS_PER_YEAR)
    tert = np.digitize(risk, np.quantile(risk, [1 / 3, 2 / 3]))
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for g, (name, col) in enumerate(
        zip(("low", "middle", "high"), ("tab:green", "tab:orange", "tab:red"), strict=True)
    ):
        sel = tert == g
        kmf = KaplanMeierFitter().fit(time[sel] / DAYS_PER_YEAR, event[sel], label=f"{name} tertile (KM)")
        kmf.plot_survival_function(ax=ax, color=col, ci_alpha=0.15)
        ax.plot(years, pred[sel].mean(axis=0), "--", color=col, lw=2, label=f"{name} tertile (model)")
    ax.set_xlabel("years from diagnosis")
    ax.set_ylabel("probability free of the event")
    ax.set_xlim(0, max_years)
    ax.set_ylim(0.3, 1.01)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def transport(
    theta, cohort, train_cov, train_time, train_event, years=(3.0, 5.0), n_nodes: int = 256, nodes: dict | None = None,
    reference: dict | None = None,
) -> dict:
    """Carry the fitted natural history (untreated, surgery-only timing of the fit) to another cohort (its
    patients conditioned on their node counts under ``nodes`` if given; the other values from ``reference``, as the
    fit kept them, default the priors).

    Reports the c-index of the predicted 5-year risk against the cohort's own endpoint, the same for a Cox
    model fitted on the training cohort, and predicted vs Kaplan–Meier by tertile at ``years``.

    Examples
    --------
    >>> from chemomet.datasets import load_gbsg2, load_transbig
    >>> tb = load_transbig()  # doctest: +SKIP
    >>> out = transport(theta, load_gbsg2(), tb.covariates, tb.time_days, tb.event)  # doctest: +SKIP
    """
    m = nh.MarginalModel(cohort.covariates, cohort.time_days, cohort.event, n_nodes=n_nodes, nodes=nodes,
                         reference=reference)
    pred = m.dmfs(theta, np.asarray(years) * DAYS_PER_YEAR)
    risk = 1.0 - pred[:, -1]
    cph = fit_cox(train_cov, train_time, train_event)
    risk_cox = cox_risk(cph, cohort.covariates, years[-1])
    table = calibration_by_tertile(pred, risk, cohort.time_days, cohort.event, years)
    s, lo, hi = km_at(cohort.time_days, cohort.event, years)
    return {
        "cohort": cohort.name,
        "endpoint": cohort.endpoint,
        "n": cohort.n,
        "events": int(cohort.event.sum()),
        "c_index_model": float(concordance_index(cohort.time_days, -risk, cohort.event)),
        "c_index_cox_trained_on_transbig": float(concordance_index(cohort.time_days, -risk_cox, cohort.event)),
        "overall": [
            {
                "years": y,
                "predicted": float(pred[:, j].mean()),
                "km": float(s[j]),
                "km_low": float(lo[j]),
                "km_high": float(hi[j]),
            }
            for j, y in enumerate(years)
        ],
        "by_tertile": table.to_dict(orient="records"),
        "risk": risk,
    }


def _boot_job(args):
    cov, time, event, idx, n_nodes, seed, start, measurements, nodes, reference = args
    m = nh.MarginalModel.of_rows(cov, time, event, idx, n_nodes, seed, measurements, nodes, reference)
    theta, _, _, _ = nh.maximise(m, start=start, initial_step=0.15)
    return theta


def bootstrap(
    cov, time, event, start, n_boot: int = 40, seed: int = 17, n_nodes: int = 256, workers: int = 2, progress=None,
    measurements: tuple = (), nodes: dict | None = None, reference: dict | None = None,
) -> dict:
    """Nonparametric bootstrap of the natural-history MLE (patients resampled, fits warm-started at ``start``;
    the published ``measurements`` enter every refit whole; ``nodes``: condition on node counts, and
    ``reference``: the other values, as the fit).

    A check on the Laplace standard errors: returns the bootstrap SD and 95% percentile interval per parameter
    (unconstrained scale, by name).

    Examples
    --------
    >>> out = bootstrap(cov, time, event, theta, n_boot=30)  # doctest: +SKIP
    >>> out["sd"]["log10_mu"]  # doctest: +SKIP
    """
    time = np.asarray(time, float)
    event = np.asarray(event, bool)
    rng = np.random.default_rng(seed)
    jobs = [
        (cov, time, event, rng.integers(0, len(cov), len(cov)), n_nodes, seed, np.asarray(start), tuple(measurements),
         nodes, reference)
        for _ in range(n_boot)
    ]
    thetas = []
    pool = ProcessPoolExecutor(max_workers=workers) if workers > 1 else None
    try:
        for i, th in enumerate(pool.map(_boot_job, jobs) if pool else map(_boot_job, jobs)):
            thetas.append(th)
            if progress:
                progress(i + 1, n_boot)
    finally:
        if pool:
            pool.shutdown()
    th = np.array(thetas)
    return {
        "n_boot": n_boot,
        "quadrature_nodes": n_nodes,
        "sd": dict(zip(nh.PARAM_NAMES, th.std(axis=0, ddof=1).tolist(), strict=True)),
        "ci95": {k: np.percentile(th[:, i], [2.5, 97.5]).tolist() for i, k in enumerate(nh.PARAM_NAMES)},
    }
