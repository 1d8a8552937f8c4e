"""Cross-validated discrimination and calibration of the mechanistic model against Cox and nodes alone
(issue 11; docs/calibration.md, "Cross-validated validation on TRANSBIG and GBSG2").

One fixed set of folds (k-fold, repeated, seeded: :func:`fold_matrix`) is used for every model of a cohort. Each
model is a *fold model*: a callable ``model(train, test)`` that returns, for the held-out patients, the predicted
probability of being free of the cohort's event at each horizon. Pooled over the folds of a repeat these are
out-of-fold predictions (:func:`out_of_fold`), scored by :func:`evaluate`:

* **discrimination**: Harrell's C (lifelines ``concordance_index``) of the predicted risk at the C horizon
  (10 years) per model, mean over repeats; 95% intervals of each C and of the differences to the comparators from
  a patient bootstrap of the repeat-averaged predictions, *paired* (every model is scored on the same resamples);
* **calibration**: predicted (mean of patients) vs Kaplan–Meier event-free probability, with the KM 95% interval,
  at each horizon in tertiles of predicted risk and in node groups (0, 1–3, 4–9, >= 10 positive nodes), and the
  share of estimable cells whose prediction lies inside the KM interval;
* **calibration slope**: the coefficient of a Cox model of the outcome (follow-up censored at the horizon) on the
  linear predictor ``ln(-ln S(h))`` (1: calibrated spread; below 1: predictions too extreme);
* **Brier score** at each horizon with inverse probability of censoring weights (censoring distribution: the
  cohort's Kaplan–Meier of censoring, :func:`ipcw_brier`), against the Kaplan–Meier null model fitted on the
  training folds, and the index of prediction accuracy ``1 - Brier/Brier_null``.

Two cohort set-ups (:func:`validate_untreated`, :func:`validate_treated`):

* **TRANSBIG** (untreated, node-negative; distant metastasis): the mechanistic model is the natural history
  refitted on every training fold from the priors (:class:`NaturalHistoryRefit`, as
  :func:`chemomet.calibrate.validation.cross_validate` does); Cox on size, grade, ER and age.
* **GBSG2** (node-positive; recurrence-free survival = any recurrence or death): the mechanistic model is the
  shipped calibration (:func:`mechanistic_rfs`): each patient's virtual twins weighted by her positive-node count
  (:func:`chemomet.assess.predict.predict`), treated after surgery with a CMF proxy (:data:`CMF_PROXY_REGIMEN`)
  and, where recorded, tamoxifen for 2 years; distant-metastasis-free survival times the loco-regional
  recurrence-free probability (:mod:`chemomet.local_recurrence`) times survival from other causes
  (:mod:`chemomet.mortality`). It uses no GBSG2 outcome, so nothing is refitted per fold (the nodal seeding
  ratio and count dispersion were fitted to GBSG2's node *counts*, docs/science.md §2.11); Cox on size, grade,
  ER, PR, age, ``ln(1 + nodes)`` and tamoxifen, and nodes alone (Cox on ``ln(1 + nodes)``), both refitted per fold.

:func:`run_validation` runs both on the real cohorts (scikit-survival needed to load them), writes
``validation.json`` and a calibration figure; ``chemomet calibrate validate`` is its command line. Times are days,
horizons years.
"""

from __future__ import annotations

import math
import tempfile
import time as _time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from chemomet.calibrate import natural_history as nh
from chemomet.calibrate.folds import (
    CoxFold,
    FixedPredictions,
    KaplanMeierFold,
    NaturalHistoryRefit,
    fold_matrix,
    out_of_fold,
)
from chemomet.calibrate.gbsg2_treatment import CMF_PROXY_REGIMEN, CMF_PROXY_TOML, GBSG2_TAMOXIFEN_YEARS
from chemomet.calibrate.survival_metrics import (
    brier_terms,
    calibration_slope,
    calibration_table,
    censoring_km,
    harrell_c,
    node_groups,
    percentile_ci,
    risk_tertiles,
)
from chemomet.calibrate.treated_likelihood import OUTCOME_TWINS, outcome_score
from chemomet.calibrate.validation import cox_frame
from chemomet.datasets import Cohort
from chemomet.local_recurrence import HAZARD_PER_DAY as LOCAL_RECURRENCE_HAZARD_PER_DAY
from chemomet.mortality import other_cause_survival
from chemomet.population import Population
from chemomet.regimens import Strategy
from chemomet.units import DAYS_PER_YEAR

__all__ = [
    "CMF_PROXY_REGIMEN",
    "evaluate",
    "mechanistic_rfs",
    "plot_validation",
    "run_validation",
    "validate_treated",
    "validate_untreated",
]

HORIZONS_YEARS = (5.0, 10.0)
"""Horizons of the calibration tables, slopes and Brier scores (years from diagnosis)."""

C_HORIZON_YEARS = 10.0
"""Horizon of the risk whose Harrell C is reported (years from diagnosis)."""

TARGETS = {"c_index_min": 0.68, "share_inside_min": 0.90, "slope_range": (0.8, 1.2)}
"""Issue 11's bars for the mechanistic model: Harrell C of the 10-year risk, share of calibration cells whose
prediction lies inside the KM 95% interval, calibration slope."""

# ---------------------------------------------------------------------------------------------- folds and models
# ---------------------------------------------------------------------------------------------- metrics
def evaluate(
    time_days,
    event,
    predictions: Mapping[str, np.ndarray],
    horizons_years: Sequence[float] = HORIZONS_YEARS,
    *,
    c_horizon_years: float = C_HORIZON_YEARS,
    primary: str = "mechanistic",
    comparators: Sequence[str] = ("cox", "nodes"),
    null: str = "km",
    node_counts=None,
    n_boot: int = 1000,
    seed: int = 7,
) -> dict:
    """Discrimination and calibration of out-of-fold predictions (see the module docstring).

    Parameters
    ----------
    time_days : array_like
        Follow-up (days).
    event : array_like of bool
        Event observed.
    predictions : mapping of str to numpy.ndarray
        Name -> out-of-fold event-free probabilities, shape ``(repeats, n, H)`` (:func:`out_of_fold`), one column
        per horizon of ``horizons_years``. The ``null`` model (Kaplan–Meier of the training folds) is used for the
        Brier reference only.
    horizons_years : sequence of float
        The ``H`` horizons (years); must include ``c_horizon_years``.
    c_horizon_years : float, default 10
        Horizon of the risk whose Harrell C is reported (years).
    primary : str, default "mechanistic"
        The model compared with the ``comparators`` (paired bootstrap differences) and with :data:`TARGETS`.
    comparators : sequence of str
        Models the primary is compared with (those present in ``predictions``).
    null : str, default "km"
        Name of the null model.
    node_counts : array_like, optional
        Positive nodes per patient: adds the calibration by node group (:data:`NODE_GROUPS`).
    n_boot : int, default 1000
        Bootstrap resamples of patients (the same for every model).
    seed : int, default 7
        Seed of the bootstrap.

    Returns
    -------
    dict
        ``c_index`` (per model: ``estimate``, the mean over repeats of the C of the pooled out-of-fold risk;
        ``by_repeat``; ``averaged_predictions``, the C of the repeat-averaged risk; ``ci95``, percentile bootstrap
        of the latter), ``c_index_differences`` (``"<primary> - <comparator>"``: ``estimate`` (mean over repeats),
        ``ci95``, ``share_of_resamples_at_or_below_0``), ``calibration`` (per model: ``rows``, ``cells_estimable``,
        ``cells_inside``, ``share_inside``, overall predicted vs KM per horizon), ``calibration_slope`` and
        ``brier`` (per model and horizon; Brier with bootstrap ``ci95``, ``null_brier``, ``ipa``), ``targets``
        (the primary model against :data:`TARGETS`; the slope must lie in range at every horizon).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=300)
    >>> t = rng.exponential(3000.0 * np.exp(-x))
    >>> time, ev = np.minimum(t, 3000.0), t < 3000.0              # follow-up ends at 8.2 years
    >>> s = np.exp(-np.exp(x)[:, None] * np.array([5.0, 10.0]) * 365.25 / 3000.0)[None]
    >>> km = KaplanMeierFold(time, ev, (5.0, 10.0))(np.arange(300), np.arange(300))[None]
    >>> res = evaluate(time, ev, {"mechanistic": s, "cox": s, "km": km}, n_boot=50)
    >>> res["c_index_differences"]["mechanistic - cox"]["ci95"]
    [0.0, 0.0]
    >>> bool(res["c_index"]["mechanistic"]["estimate"] > 0.65), res["brier"]["mechanistic"]["10"]["estimable"]
    (True, False)
    """
    time = np.asarray(time_days, float)
    event = np.asarray(event, bool)
    horizons = [float(h) for h in horizons_years]
    if float(c_horizon_years) not in horizons:
        raise ValueError(f"c_horizon_years = {c_horizon_years} must be one of horizons_years {horizons}")
    jc = horizons.index(float(c_horizon_years))
    names = [m for m in predictions if m != null]
    comparators = [c for c in comparators if c in predictions and c != primary]
    n = time.size
    avg = {m: np.asarray(predictions[m], float).mean(axis=0) for m in predictions}

    # discrimination, paired bootstrap
    c_rep = {
        m: [harrell_c(time, event, 1.0 - predictions[m][r, :, jc]) for r in range(predictions[m].shape[0])]
        for m in names
    }
    rng = np.random.default_rng(seed)
    idx_all = [rng.integers(0, n, n) for _ in range(n_boot)]
    boot_c = {m: np.empty(n_boot) for m in names}
    for b, idx in enumerate(idx_all):
        for m in names:
            boot_c[m][b] = harrell_c(time[idx], event[idx], 1.0 - avg[m][idx, jc])
    c_index = {
        m: {
            "estimate": float(np.mean(c_rep[m])),
            "by_repeat": [float(x) for x in c_rep[m]],
            "averaged_predictions": harrell_c(time, event, 1.0 - avg[m][:, jc]),
            "ci95": percentile_ci(boot_c[m]),
        }
        for m in names
    }
    diffs = {}
    if primary in names:
        for c in comparators:
            d = boot_c[primary] - boot_c[c]
            diffs[f"{primary} - {c}"] = {
                "estimate": float(np.mean(c_rep[primary]) - np.mean(c_rep[c])),
                "ci95": percentile_ci(d),
                "share_of_resamples_at_or_below_0": float(np.mean(d <= 0.0)),
            }

    # calibration tables
    groupings = {}
    if node_counts is not None:
        groupings["node group"] = node_groups(node_counts)
    calibration = {}
    for m in names:
        rows = calibration_table(time, event, avg[m], risk_tertiles(1.0 - avg[m][:, jc]), horizons, "tertile")
        for label, g in groupings.items():
            rows += calibration_table(time, event, avg[m], g, horizons, label)
        est = [r for r in rows if r["estimable"]]
        inside = sum(bool(r["inside"]) for r in est)
        overall = calibration_table(time, event, avg[m], np.full(n, "all", dtype=object), horizons, "all")
        calibration[m] = {
            "rows": rows,
            "cells": len(rows),
            "cells_estimable": len(est),
            "cells_inside": inside,
            "share_inside": inside / len(est) if est else None,
            "overall": overall,
        }

    # slope and Brier
    km_c = censoring_km(time, event)
    slopes, brier = {}, {}
    null_terms = {}
    for j, h in enumerate(horizons):
        null_terms[h] = (
            brier_terms(time, event, avg[null][:, j], h * DAYS_PER_YEAR, km_c) if null in avg else None
        )
    for m in names:
        slopes[m], brier[m] = {}, {}
        for j, h in enumerate(horizons):
            key = f"{h:g}"
            slopes[m][key] = calibration_slope(time, event, avg[m][:, j], h)
            terms = brier_terms(time, event, avg[m][:, j], h * DAYS_PER_YEAR, km_c)
            if terms is None:
                brier[m][key] = {"estimable": False, "brier": None, "ci95": None, "null_brier": None, "ipa": None}
                continue
            nt = null_terms[h]
            bs = float(terms.mean())
            bs_null = float(nt.mean()) if nt is not None else None
            boot_bs = np.array([terms[idx].mean() for idx in idx_all])
            boot_ipa = (
                np.array([1.0 - terms[idx].mean() / nt[idx].mean() for idx in idx_all]) if nt is not None else None
            )
            brier[m][key] = {
                "estimable": True,
                "brier": bs,
                "ci95": percentile_ci(boot_bs),
                "null_brier": bs_null,
                "ipa": None if bs_null is None else 1.0 - bs / bs_null,
                "ipa_ci95": None if boot_ipa is None else percentile_ci(boot_ipa),
            }

    targets = {}
    if primary in names:
        lo_s, hi_s = TARGETS["slope_range"]
        cal = calibration[primary]
        sl = {h: v["slope"] for h, v in slopes[primary].items()}
        given = [v for v in sl.values() if v is not None]
        targets = {
            "c_index": c_index[primary]["estimate"],
            "c_index_at_least": TARGETS["c_index_min"],
            "c_index_met": c_index[primary]["estimate"] >= TARGETS["c_index_min"],
            **{
                f"above_{k.split(' - ')[1]}": {
                    "point": v["estimate"] > 0,
                    "ci_excludes_0": v["ci95"][0] is not None and v["ci95"][0] > 0,
                }
                for k, v in diffs.items()
            },
            "share_inside": cal["share_inside"],
            "share_inside_at_least": TARGETS["share_inside_min"],
            "share_inside_met": cal["share_inside"] is not None and cal["share_inside"] >= TARGETS["share_inside_min"],
            "slope_by_horizon": sl,
            "slope_range": list(TARGETS["slope_range"]),
            "slope_met": bool(given) and all(lo_s <= v <= hi_s for v in given),
        }
    return {
        "horizons_years": horizons,
        "c_horizon_years": float(c_horizon_years),
        "n_boot": n_boot,
        "c_index": c_index,
        "c_index_differences": diffs,
        "calibration": calibration,
        "calibration_slope": slopes,
        "brier": brier,
        "targets": targets,
    }


# -------------------------------------------------------------------------------- the mechanistic model, treated cohort
def mechanistic_rfs(
    covariates: pd.DataFrame,
    horizons_years: Sequence[float] = HORIZONS_YEARS,
    *,
    tamoxifen_years: float = GBSG2_TAMOXIFEN_YEARS,
    her2_known: bool = False,
    twins_per_patient: int = 200,
    min_twins_per_cell: int = 16384,
    seed: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Recurrence-free survival of treated node-positive patients predicted by the shipped model.

    Distant-metastasis-free survival comes from :func:`chemomet.assess.predict.predict` (the shipped calibration
    and its ensemble; each patient's twins weighted by the likelihood of her positive-node count), under surgery
    first with the CMF proxy (:data:`CMF_PROXY_REGIMEN`, from 28 days after surgery on day 21) and, for patients
    with ``hormone_therapy``, tamoxifen for ``tamoxifen_years`` after it (it acts in ER-positive disease only).
    Recurrence-free survival, the endpoint of GBSG2 (any recurrence or death), is its product with the
    loco-regional-recurrence-free probability (:mod:`chemomet.local_recurrence`, constant hazard from surgery) and
    survival from other causes at the patient's age (:mod:`chemomet.mortality`), the three taken as independent.

    Parameters
    ----------
    covariates : pandas.DataFrame
        ``age`` (years), ``diameter_mm`` (mm), ``grade``, ``er``, ``pr`` (bool), ``nodes_positive`` (count),
        ``hormone_therapy`` (bool); ``her2`` used only with ``her2_known``.
    horizons_years : sequence of float
        Horizons (years from diagnosis).
    tamoxifen_years : float, default 2
        Length of tamoxifen for patients with ``hormone_therapy`` (years).
    her2_known : bool, default False
        Use the ``her2`` column; by default HER2 is treated as not measured (GBSG2 did not record it) and
        integrated over the population, as ``predict`` does for a missing field.
    twins_per_patient, min_twins_per_cell : int
        Pool sizes of ``predict`` (twins).
    seed : int, optional
        Seed of the twins (default: ``data/assessment.toml``).
    progress : callable, optional
        ``progress(line)`` at each step.

    Returns
    -------
    pandas.DataFrame
        One row per patient: ``dmfs_<h>y``, ``lrfs_<h>y``, ``other_cause_<h>y`` and ``rfs_<h>y``
        (probabilities) per horizon, and ``ess`` (effective twins behind the patient's prediction).

    Examples
    --------
    >>> cov = pd.DataFrame({"age": [45.0, 45.0], "diameter_mm": [25.0, 25.0], "grade": [2, 2], "er": [True, True],
    ...                     "pr": [True, True], "nodes_positive": [2, 12], "hormone_therapy": [False, False]})
    >>> out = mechanistic_rfs(cov, (5.0,), min_twins_per_cell=256, twins_per_patient=10)
    >>> bool(out.loc[0, "rfs_5y"] > out.loc[1, "rfs_5y"]), bool(out.loc[0, "rfs_5y"] < out.loc[0, "dmfs_5y"])
    (True, True)
    """
    from chemomet.assess.predict import predict
    from chemomet.assess.settings import AssessmentSettings

    say = progress or (lambda line: None)
    cov = covariates.reset_index(drop=True)
    horizons = [float(h) for h in horizons_years]
    frame = pd.DataFrame(
        {
            "id": [str(i) for i in range(len(cov))],
            "age": cov["age"].to_numpy(float),
            "diameter_mm": cov["diameter_mm"].to_numpy(float),
            "grade": cov["grade"].to_numpy(int),
            "er": np.where(cov["er"].to_numpy(bool), "positive", "negative"),
            "pr": np.where(cov["pr"].to_numpy(bool), "positive", "negative"),
            "nodes_positive": cov["nodes_positive"].to_numpy(int),
        }
    )
    if her2_known:
        frame["her2"] = np.where(cov["her2"].to_numpy(bool), "positive", "negative")
    horth = cov["hormone_therapy"].to_numpy(bool) if "hormone_therapy" in cov else np.zeros(len(cov), bool)
    dmfs = np.full((len(cov), len(horizons)), np.nan)
    ess = np.full(len(cov), np.nan)
    base = AssessmentSettings.default()
    with tempfile.TemporaryDirectory() as tmp:
        regimen_file = Path(tmp) / "cmf-proxy-ac4.toml"
        regimen_file.write_text(CMF_PROXY_TOML, encoding="utf-8")
        for tam in (False, True):
            sel = horth == tam
            if not sel.any():
                continue
            over = {
                "treatment.endocrine_years": float(tamoxifen_years) if tam else 0.0,
                "treatment.aromatase_inhibitor_from_age": 120.0,  # tamoxifen, whatever the age
            }
            if seed is not None:
                over["sampling.seed"] = seed
            settings = base.with_overrides(over)
            say(f"predicting {int(sel.sum())} patients {'with' if tam else 'without'} tamoxifen")
            r = predict(
                frame[sel].reset_index(drop=True), ["surgery-first"], horizons, regimen=str(regimen_file),
                settings=settings, twins_per_patient=twins_per_patient, min_twins_per_cell=min_twins_per_cell,
            )
            bad = r[r["status"] != "ok"]
            if len(bad):
                raise ValueError(f"predict could not score {len(bad)} patients: {bad['error'].iloc[0]}")
            for j, h in enumerate(horizons):
                dmfs[sel, j] = r[f"surgery-first_dmfs_{h:g}y"].to_numpy(float)
            ess[sel] = r["ess"].to_numpy(float)
    surgery = Strategy.parse("surgery-first").schedule().surgery_day
    out = {}
    for j, h in enumerate(horizons):
        t = h * DAYS_PER_YEAR
        lr = math.exp(-LOCAL_RECURRENCE_HAZARD_PER_DAY * max(t - surgery, 0.0))
        oc = other_cause_survival(cov["age"].to_numpy(float), h)
        out[f"dmfs_{h:g}y"] = dmfs[:, j]
        out[f"lrfs_{h:g}y"] = np.full(len(cov), lr)
        out[f"other_cause_{h:g}y"] = oc
        out[f"rfs_{h:g}y"] = dmfs[:, j] * lr * oc
    out["ess"] = ess
    return pd.DataFrame(out)


# ---------------------------------------------------------------------------------------------- cohorts
def _horizons(horizons_years, c_horizon_years) -> list[float]:
    return sorted({float(h) for h in horizons_years} | {float(c_horizon_years)})


def _cohort_header(cohort: Cohort, f: np.ndarray, seed: int) -> dict:
    return {
        "cohort": cohort.name,
        "endpoint": cohort.endpoint,
        "n": cohort.n,
        "events": int(np.sum(cohort.event)),
        "max_follow_up_years": float(np.max(cohort.time_days) / DAYS_PER_YEAR),
        "folds": int(f.max() + 1),
        "repeats": int(f.shape[0]),
        "fold_seed": seed,
        "notes": cohort.notes,
    }


def _predictions_block(avg: dict, horizons) -> dict:
    return {m: {f"{h:g}": a[:, j].round(5).tolist() for j, h in enumerate(horizons)} for m, a in avg.items()}


def validate_untreated(
    cohort: Cohort,
    *,
    k: int = 5,
    repeats: int = 5,
    seed: int = 7,
    n_nodes: int = 256,
    max_evaluations: int = 2000,
    horizons_years: Sequence[float] = HORIZONS_YEARS,
    c_horizon_years: float = C_HORIZON_YEARS,
    n_boot: int = 1000,
    workers: int = 1,
    progress: Callable[[str], None] | None = None,
    doubling_times: bool = True,
    nodes: dict | None | str = "shipped",
    reference: dict | None = None,
) -> dict:
    """Cross-validate the natural history on an untreated node-negative cohort (TRANSBIG), against Cox on the
    same covariates (size, grade, ER, age), on the same folds.

    The mechanistic model is refitted on every training fold (:class:`NaturalHistoryRefit`); Cox
    (:class:`CoxFold` on :func:`~chemomet.calibrate.validation.cox_frame`) and the Kaplan–Meier null model too.
    Every patient is node-negative, so the node-group table has the one group ``"0"`` (the whole cohort).

    Parameters
    ----------
    cohort : chemomet.datasets.Cohort
        The cohort (e.g. :func:`chemomet.datasets.load_transbig`).
    k, repeats, seed : int
        Folds, repeats and seed of :func:`fold_matrix` (also the seed of the quadrature nodes and bootstrap).
    n_nodes : int, default 256
        Quadrature nodes per patient of the refits.
    max_evaluations : int, default 2000
        Most likelihood evaluations per refit.
    horizons_years : sequence of float
        Calibration horizons (years); the C horizon is added.
    c_horizon_years : float, default 10
        Horizon of the risk scored by Harrell's C (years).
    n_boot : int, default 1000
        Bootstrap resamples.
    workers : int, default 1
        Processes for the fold fits.
    progress : callable, optional
        ``progress(line)``.
    doubling_times : bool, default True
        Add the published median doubling times to every refit, as the shipped fit does
        (:func:`~chemomet.calibrate.natural_history.published_doubling_times`).
    nodes : dict, None or "shipped", default "shipped"
        The ``[nodes]`` table under which every patient is conditioned on her node count in the refits and
        predictions, as the shipped fit does ("shipped": the shipped calibration's, whose other values the refits
        then keep, as the shipped fit kept its folder's; None: not conditioned, the priors' other values).
    reference : dict, optional
        The calibration whose other values the refits keep (with ``nodes="shipped"`` also its ``[nodes]`` table),
        e.g. a profile row's fitted configuration (:func:`chemomet.calibrate.nodes.profile_held_value`); default:
        the shipped calibration with ``nodes="shipped"``, else the priors.

    Returns
    -------
    dict
        :func:`evaluate`'s result plus the cohort's description, the models, what is refitted per fold,
        the fold fits (``fold_theta``, times) and the repeat-averaged out-of-fold predictions.

    Examples
    --------
    >>> from chemomet.datasets import load_transbig
    >>> res = validate_untreated(load_transbig(), workers=2)  # doctest: +SKIP
    >>> res["c_index"]["mechanistic"]["estimate"]  # doctest: +SKIP
    """
    t0 = _time.perf_counter()
    say = progress or (lambda line: None)
    horizons = _horizons(horizons_years, c_horizon_years)
    cov = cohort.covariates.reset_index(drop=True)
    time, event = np.asarray(cohort.time_days, float), np.asarray(cohort.event, bool)
    f = fold_matrix(cohort.n, k, repeats, seed)
    if isinstance(nodes, str):
        reference = reference or Population().config
        nodes = reference["nodes"]
    models = {
        "mechanistic": NaturalHistoryRefit(
            cov, time, event, tuple(horizons), n_nodes, seed, max_evaluations,
            measurements=nh.published_doubling_times() if doubling_times else (), nodes=nodes, reference=reference,
        ),
        "cox": CoxFold(cox_frame(cov), time, event, tuple(horizons)),
        "km": KaplanMeierFold(time, event, tuple(horizons)),
    }
    say(f"{cohort.name}: {repeats} x {k}-fold cross-validation, natural history refitted per fold")
    preds, info = out_of_fold(models, f, workers, progress=lambda line: say(f"{cohort.name}: {line}"))
    nodes = cov["nodes_positive"].to_numpy(int) if "nodes_positive" in cov else np.zeros(cohort.n, int)
    say(f"{cohort.name}: scoring ({n_boot} bootstrap resamples)")
    res = evaluate(time, event, preds, horizons, c_horizon_years=c_horizon_years, comparators=("cox",),
                   node_counts=nodes, n_boot=n_boot, seed=seed)
    theta = np.array(info["mechanistic"].get("fold_theta", []))
    return {
        **_cohort_header(cohort, f, seed),
        "models": {
            "mechanistic": "natural history (chemomet.calibrate.natural_history), untreated, surgery on day 21; "
            f"{n_nodes} quadrature nodes per patient"
            + ("; conditioned on each patient's node count" if nodes is not None else ""),
            "cox": "lifelines Cox on size (cm), grade, ER, age",
            "km": "Kaplan-Meier of the training folds (null model of the Brier score)",
        },
        "refit_per_fold": {
            "mechanistic": "yes: the natural-history parameters "
            f"{list(nh.PARAM_NAMES)} by maximum marginal likelihood from the priors on each training fold; the "
            + ("rest of the population (the shipped calibration's, nodal values included; treatment irrelevant) "
               "is fixed" if reference is not None
               else "rest of the population (priors; treatment irrelevant) is fixed"),
            "cox": "yes",
            "km": "yes",
        },
        **res,
        "fold_fits": {
            "fold_theta_sd": theta.std(axis=0).round(4).tolist() if theta.size else None,
            "fit_seconds": {m: round(v["fit_seconds"], 2) for m, v in info.items()},
        },
        "predictions_oof_repeat_mean": _predictions_block(
            {m: a.mean(axis=0) for m, a in preds.items() if m != "km"}, horizons
        ),
        "elapsed_s": round(_time.perf_counter() - t0, 1),
    }


def validate_treated(
    cohort: Cohort,
    *,
    k: int = 5,
    repeats: int = 5,
    seed: int = 7,
    horizons_years: Sequence[float] = HORIZONS_YEARS,
    c_horizon_years: float = C_HORIZON_YEARS,
    n_boot: int = 1000,
    tamoxifen_years: float = GBSG2_TAMOXIFEN_YEARS,
    twins_per_patient: int = 200,
    min_twins_per_cell: int = 16384,
    workers: int = 1,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Cross-validate the model on a treated node-positive cohort (GBSG2; recurrence-free survival) against Cox on
    the same covariates with nodes, and nodes alone, on the same folds.

    The mechanistic predictions (:func:`mechanistic_rfs`: shipped calibration, node-count weighting, CMF proxy,
    tamoxifen where recorded, local recurrence and death from other causes) use no outcome of the cohort, so they
    are computed once and not refitted per fold (:class:`FixedPredictions`). Cox on size (cm), grade, ER, PR, age,
    ``ln(1 + nodes)`` and tamoxifen, nodes alone (Cox on ``ln(1 + nodes)``: within a fold it ranks patients by their
    node count; pooled over folds its C is close to the raw count's) and the
    Kaplan–Meier null model are refitted per fold. A diagnostic model, ``mechanistic-distant-only``, scores the
    model's distant-metastasis-free survival alone against the same endpoint.

    Parameters
    ----------
    cohort : chemomet.datasets.Cohort
        The cohort (e.g. :func:`chemomet.datasets.load_gbsg2`), with ``nodes_positive`` and ``hormone_therapy``.
    k, repeats, seed : int
        Folds, repeats and seed of :func:`fold_matrix` (also the bootstrap's seed).
    horizons_years : sequence of float
        Calibration horizons (years); the C horizon is added.
    c_horizon_years : float, default 10
        Horizon of the risk scored by Harrell's C (years).
    n_boot : int, default 1000
        Bootstrap resamples.
    tamoxifen_years : float, default 2
        Tamoxifen given to patients with ``hormone_therapy`` (years).
    twins_per_patient, min_twins_per_cell : int
        Pool sizes of the mechanistic prediction (twins).
    workers : int, default 1
        Processes for the fold fits.
    progress : callable, optional
        ``progress(line)``.

    Returns
    -------
    dict
        As :func:`validate_untreated`, plus ``mechanistic_details`` (the regimen, tamoxifen, the components of
        the predicted RFS and the effective twins per patient).

    Examples
    --------
    >>> from chemomet.datasets import load_gbsg2
    >>> res = validate_treated(load_gbsg2())  # doctest: +SKIP
    >>> res["c_index_differences"]["mechanistic - nodes"]  # doctest: +SKIP
    """
    t0 = _time.perf_counter()
    say = progress or (lambda line: None)
    horizons = _horizons(horizons_years, c_horizon_years)
    cov = cohort.covariates.reset_index(drop=True)
    time, event = np.asarray(cohort.time_days, float), np.asarray(cohort.event, bool)
    f = fold_matrix(cohort.n, k, repeats, seed)
    say(f"{cohort.name}: mechanistic predictions (shipped calibration, node-weighted twins)")
    t_mech = _time.perf_counter()
    mech = mechanistic_rfs(cov, horizons, tamoxifen_years=tamoxifen_years, twins_per_patient=twins_per_patient,
                           min_twins_per_cell=min_twins_per_cell, progress=lambda line: say(f"{cohort.name}: {line}"))
    t_mech = _time.perf_counter() - t_mech
    rfs = np.column_stack([mech[f"rfs_{h:g}y"] for h in horizons])
    dmfs = np.column_stack([mech[f"dmfs_{h:g}y"] for h in horizons])
    log_nodes = np.log1p(cov["nodes_positive"].to_numpy(float))
    design = cox_frame(cov)
    design["pr"] = cov["pr"].to_numpy(float)
    design["log1p_nodes"] = log_nodes
    design["tamoxifen"] = cov["hormone_therapy"].to_numpy(float)
    models = {
        "mechanistic": FixedPredictions(rfs),
        "mechanistic-distant-only": FixedPredictions(dmfs),
        "cox": CoxFold(design, time, event, tuple(horizons)),
        "nodes": CoxFold(pd.DataFrame({"log1p_nodes": log_nodes}), time, event, tuple(horizons)),
        "km": KaplanMeierFold(time, event, tuple(horizons)),
    }
    say(f"{cohort.name}: {repeats} x {k}-fold cross-validation of the comparators")
    preds, info = out_of_fold(models, f, workers, progress=lambda line: say(f"{cohort.name}: {line}"))
    say(f"{cohort.name}: scoring ({n_boot} bootstrap resamples)")
    res = evaluate(time, event, preds, horizons, c_horizon_years=c_horizon_years, comparators=("cox", "nodes"),
                   node_counts=cov["nodes_positive"].to_numpy(int), n_boot=n_boot, seed=seed)
    ess = mech["ess"].to_numpy(float)
    say(f"{cohort.name}: outcome log-likelihood of the point calibration ({OUTCOME_TWINS} twins per patient)")
    outcome = outcome_score(cohort, tamoxifen_years=tamoxifen_years)
    return {
        **_cohort_header(cohort, f, seed),
        "models": {
            "mechanistic": "shipped calibration (ensemble), twins weighted by the positive-node count "
            "(chemomet.assess.predict); surgery day 21, CMF proxy (AC x4 q3w) from day 49, tamoxifen "
            f"{tamoxifen_years:g} years where recorded (ER+ only acts); RFS = DMFS x local-recurrence-free x "
            "other-cause survival",
            "mechanistic-distant-only": "diagnostic: the mechanistic DMFS alone scored against RFS",
            "cox": "lifelines Cox on size (cm), grade, ER, PR, age, ln(1 + nodes), tamoxifen",
            "nodes": "lifelines Cox on ln(1 + nodes) (within a fold, the ranking of the node count)",
            "km": "Kaplan-Meier of the training folds (null model of the Brier score)",
        },
        "refit_per_fold": {
            "mechanistic": "no: no GBSG2 outcome enters it (natural history from TRANSBIG, treatment effects from "
            "published targets, local recurrence from EBCTCG 2018, other-cause mortality from a life table); the "
            "nodal seeding ratio and count dispersion were fitted once to all 686 GBSG2 node counts (a covariate, "
            "not an outcome) with the SEER size series",
            "mechanistic-distant-only": "no (as mechanistic)",
            "cox": "yes",
            "nodes": "yes",
            "km": "yes",
        },
        **res,
        "mechanistic_details": {
            "regimen": CMF_PROXY_REGIMEN.name,
            "regimen_note": CMF_PROXY_REGIMEN.source,
            "tamoxifen_years": tamoxifen_years,
            "her2": "not recorded: integrated over the population (predict's treatment of a missing field)",
            "mean_components": {
                f"{h:g}": {c: float(mech[f"{c}_{h:g}y"].mean()) for c in ("dmfs", "lrfs", "other_cause", "rfs")}
                for h in horizons
            },
            "ess_median": float(np.median(ess)),
            "ess_min": float(np.min(ess)),
            "ess_share_below_50": float(np.mean(ess < 50)),
            "prediction_seconds": round(t_mech, 1),
        },
        "outcome_loglik": outcome,
        "fold_fits": {"fit_seconds": {m: round(v["fit_seconds"], 2) for m, v in info.items()}},
        "predictions_oof_repeat_mean": _predictions_block(
            {m: a.mean(axis=0) for m, a in preds.items() if m != "km"}, horizons
        ),
        "elapsed_s": round(_time.perf_counter() - t0, 1),
    }


# ---------------------------------------------------------------------------------------------- figure and run
_COLOURS = {"mechanistic": "tab:blue", "cox": "tab:orange", "nodes": "tab:green"}


def plot_validation(path, results: Sequence[dict], models: Sequence[str] = ("mechanistic", "cox", "nodes")) -> None:
    """Calibration figure (PNG): per cohort, predicted vs Kaplan–Meier event-free probability (with the KM 95%
    interval) in tertiles of predicted risk and in node groups, at each horizon, for ``models``.

    Parameters
    ----------
    path : str or pathlib.Path
        The PNG to write (written as given; :func:`run_validation` writes it atomically).
    results : sequence of dict
        Results of :func:`validate_untreated` / :func:`validate_treated`.
    models : sequence of str
        Models to draw (those present).

    Examples
    --------
    >>> plot_validation("validation.png", [res_transbig, res_gbsg2])  # doctest: +SKIP
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    markers = {5.0: "o", 10.0: "s"}
    fig, axes = plt.subplots(len(results), 2, figsize=(10, 4.6 * len(results)), squeeze=False)
    for i, res in enumerate(results):
        for ax, grouping in zip(axes[i], ("tertile", "node group"), strict=True):
            ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls=":")
            for mi, m in enumerate(mm for mm in models if mm in res["calibration"]):
                rows = [r for r in res["calibration"][m]["rows"] if r["grouping"] == grouping and r["estimable"]]
                for r in rows:
                    dx = 0.004 * (mi - 1)
                    ax.errorbar(
                        r["predicted"] + dx, r["km"], yerr=[[r["km"] - r["km_low"]], [r["km_high"] - r["km"]]],
                        fmt=markers.get(r["years"], "^"), color=_COLOURS.get(m, "0.3"),
                        mfc=_COLOURS.get(m, "0.3") if m == "mechanistic" else "white", ms=6, capsize=2, lw=1,
                    )
                c = res["c_index"][m]
                ax.plot([], [], "o", color=_COLOURS.get(m, "0.3"),
                        label=f"{m}: C {c['estimate']:.3f} ({c['ci95'][0]:.3f}-{c['ci95'][1]:.3f})")
            for y, mk in markers.items():
                ax.plot([], [], mk, color="0.3", mfc="white", label=f"{y:g} years")
            vals = [
                v for m in models if m in res["calibration"]
                for r in res["calibration"][m]["rows"] if r["grouping"] == grouping and r["estimable"]
                for v in (r["predicted"], r["km_low"], r["km_high"])
            ]
            lo = max(0.0, min(vals) - 0.05) if vals else 0.0
            ax.set_xlim(lo, 1.0)
            ax.set_ylim(lo, 1.0)
            ax.set_xlabel("predicted event-free probability (out of fold)")
            ax.set_ylabel("Kaplan-Meier (95% CI)")
            cal = res["calibration"].get("mechanistic", {})
            extra = (
                f" (mechanistic, all groupings: {cal['cells_inside']} of {cal['cells_estimable']} cells inside)"
                if cal.get("cells_estimable") else ""
            )
            ax.set_title(f"{res['cohort'].split(' (')[0]} by {grouping}{extra}", fontsize=8.5)
            ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_validation(
    out_dir,
    cohorts: Sequence[str] = ("transbig", "gbsg2"),
    *,
    k: int = 5,
    repeats: int = 5,
    seed: int = 7,
    n_boot: int = 1000,
    n_nodes: int = 256,
    workers: int = 2,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Run the validation on the real cohorts and write ``validation.json`` and
    ``figures/validation_calibration.png`` (atomic writes) to ``out_dir``.

    Parameters
    ----------
    out_dir : str or pathlib.Path
        An existing, writable folder.
    cohorts : sequence of {"transbig", "gbsg2"}
        Cohorts to run (loaded with scikit-survival, :mod:`chemomet.datasets`).
    k, repeats, seed : int
        Folds, repeats and seed (:func:`fold_matrix`).
    n_boot : int, default 1000
        Bootstrap resamples.
    n_nodes : int, default 256
        Quadrature nodes per patient of the TRANSBIG refits.
    workers : int, default 2
        Processes for the fold fits.
    progress : callable, optional
        ``progress(line)``.

    Returns
    -------
    dict
        ``{"cohorts": {name: result}, "settings": ..., "software": ..., "elapsed_s": ...}``, as written.

    Examples
    --------
    >>> summary = run_validation("cal-validation", workers=2)  # doctest: +SKIP
    >>> summary["cohorts"]["gbsg2"]["targets"]  # doctest: +SKIP
    """
    import json

    from chemomet.calibrate.pipeline import software
    from chemomet.datasets import load_gbsg2, load_transbig
    from chemomet.fileio import atomic_write, json_safe

    t0 = _time.perf_counter()
    say = progress or (lambda line: None)
    out_dir = Path(out_dir)
    unknown = sorted(set(cohorts) - {"transbig", "gbsg2"})
    if unknown:
        raise ValueError(f"cohorts {unknown} unknown; allowed: transbig, gbsg2")
    results = {}
    for name in cohorts:
        if name == "transbig":
            results[name] = validate_untreated(load_transbig(), k=k, repeats=repeats, seed=seed, n_nodes=n_nodes,
                                               n_boot=n_boot, workers=workers, progress=say)
        else:
            results[name] = validate_treated(load_gbsg2(), k=k, repeats=repeats, seed=seed, n_boot=n_boot,
                                             workers=workers, progress=say)
        say(f"{name}: done in {results[name]['elapsed_s']:.0f} s")
    summary = {
        "cohorts": results,
        "settings": {"folds": k, "repeats": repeats, "seed": seed, "n_boot": n_boot, "quadrature_nodes": n_nodes,
                     "targets": {k2: list(v) if isinstance(v, tuple) else v for k2, v in TARGETS.items()}},
        "software": software(),
        "elapsed_s": round(_time.perf_counter() - t0, 1),
    }
    text = json.dumps(json_safe(summary), indent=1, allow_nan=False)
    atomic_write(out_dir / "validation.json", lambda tmp: tmp.write_text(text, encoding="utf-8"))
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(exist_ok=True)
    atomic_write(fig_dir / "validation_calibration.png", lambda tmp: plot_validation(tmp, list(results.values())))
    say(f"wrote {out_dir / 'validation.json'} and {fig_dir / 'validation_calibration.png'}")
    return summary
