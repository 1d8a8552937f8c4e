"""The calibration runs behind ``chemomet calibrate natural-history | targets``: fit, validate, write the files.

A calibration folder holds ``population.toml`` (point estimate, ``population.toml`` layout + ``[provenance]``),
``ensemble.npz`` (parameter sets carrying the uncertainty), ``report.json`` and ``figures/``. The shipped one is
``chemomet/data/calibration``; the commands write to any folder, and compare their estimates with the shipped ones.
The computations live below (:mod:`~chemomet.calibrate.natural_history`, :mod:`~chemomet.calibrate.validation`,
:mod:`~chemomet.calibrate.targets`, :mod:`~chemomet.calibrate.sensitivity`); reading and writing the files is
:mod:`~chemomet.calibrate.storage`.
"""

from __future__ import annotations

import datetime as _dt
import platform
import time as _time
from importlib.metadata import version
from pathlib import Path

import numpy as np

from chemomet.calibrate import natural_history as nh
from chemomet.calibrate import storage
from chemomet.calibrate import validation as val
from chemomet.calibrate.ensemble import ENSEMBLE_SEED, draw_natural_history, draw_treatment, replace_block
from chemomet.calibrate.nodes import NodeCountLikelihood, fit_jointly
from chemomet.calibrate.sensitivity import run_sobol
from chemomet.calibrate.shipped import load_report
from chemomet.calibrate.targets import calibrate
from chemomet.calibrate.vector import (
    NATURAL_HISTORY,
    TREATMENT,
    natural_history_quantities,
    natural_history_theta,
    prior_config,
    treatment_natural_scale,
    with_natural_history,
)
from chemomet.datasets import load_gbsg2, load_transbig
from chemomet.units import DAYS_PER_YEAR

__all__ = ["ENSEMBLE_SEED", "read_config", "reproduces", "run_natural_history", "run_targets", "software"]

POPULATION_HEADER = "Calibrated population (chemomet calibrate). Layout of data/population.toml; see [provenance]."


def _version() -> str:
    try:
        return version("chemomet")
    except Exception:  # pragma: no cover
        return "unknown"


def software() -> dict:
    """Versions of the software that produced a calibration (package -> version).

    Examples
    --------
    >>> sorted(software())[:3]
    ['chemomet', 'lifelines', 'numpy']
    """
    import lifelines
    import scipy

    out = {
        "chemomet": _version(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "lifelines": lifelines.__version__,
    }
    try:
        import sksurv

        out["scikit-survival"] = sksurv.__version__
    except ImportError:  # pragma: no cover
        pass
    return out


def read_config(out_dir: Path) -> dict:
    """The configuration in ``out_dir/population.toml``, or the priors if there is none yet.

    Examples
    --------
    >>> "growth" in read_config(Path("no-such-folder"))
    True
    """
    cfg = storage.read_config(out_dir)
    return prior_config() if cfg is None else cfg


def _shipped_report() -> dict:
    try:
        return load_report()
    except Exception:
        return {}


def reproduces(new_theta, shipped: dict, names) -> dict:
    """Compare re-estimated parameters with shipped ones: ``|Δ| / SE_shipped`` per parameter (≤ 2 passes).

    Parameters
    ----------
    new_theta : array_like
        The re-estimated values, in the order of ``names`` (unconstrained scale).
    shipped : dict
        A report section with ``estimates`` (``{name: {"theta", "se"}}``); empty: nothing to compare.
    names : sequence of str
        Parameter names.

    Examples
    --------
    >>> reproduces([0.1], {"estimates": {"a": {"theta": 0.0, "se": 0.1}}}, ["a"])["within_2se"]
    True
    """
    if not shipped:
        return {"compared": False}
    old = np.array([shipped["estimates"][k]["theta"] for k in names])
    se = np.array([shipped["estimates"][k]["se"] for k in names])
    z = np.abs(np.asarray(new_theta) - old) / se
    return {
        "compared": True,
        "z": dict(zip(names, z.round(3).tolist(), strict=True)),
        "within_2se": bool(np.all(z <= 2.0)),
    }


def run_natural_history(
    out_dir: Path,
    n_nodes: int = 512,
    repeats: int = 5,
    k: int = 5,
    n_ensemble: int = 200,
    workers: int = 2,
    cv_nodes: int = 256,
    progress=None,
    n_boot: int = 0,
    doubling_times: bool = True,
    condition_on_nodes: bool = True,
) -> dict:
    """``chemomet calibrate natural-history``: fit the natural history on TRANSBIG, validate it (CV c-index vs
    Cox, tertiles, GBSG2), write the files.

    Writes ``population.toml`` (natural-history values and provenance), ``ensemble.npz`` (the natural-history
    columns; treatment columns of an earlier targets run are kept), ``report.json`` (``natural_history``) and
    figures under ``figures/``. Needs scikit-survival for the cohorts (``pip install chemomet[data]``).

    Parameters
    ----------
    out_dir : pathlib.Path
        The calibration folder (created if missing; an existing ``population.toml`` is the starting point).
    n_nodes : int
        Quadrature nodes per patient of the fit.
    repeats, k : int
        Repeats and folds of the cross-validation.
    n_ensemble : int
        Ensemble members.
    workers : int
        Processes for cross-validation and bootstrap.
    cv_nodes : int
        Quadrature nodes per patient in the cross-validation fits.
    progress : callable, optional
        Called with one line of text per step.
    n_boot : int
        Bootstrap refits (0: none); where their SD exceeds the Laplace SE, the ensemble is widened to it.
    doubling_times : bool
        Add the published median doubling times (:func:`~chemomet.calibrate.natural_history.published_doubling_times`)
        to the likelihood of the fit, the bootstrap and the cross-validation (False: TRANSBIG alone).
    condition_on_nodes : bool
        Condition every TRANSBIG patient on her node count (0: the cohort is node-negative by selection) under the
        folder's ``[nodes]`` values, in the fit, the bootstrap, the cross-validation and the predictions (GBSG2's
        transport too, on its counts); False: the cohort is taken as a sample of all patients.

    Returns
    -------
    dict
        The JSON summary (also stored under ``natural_history`` in ``report.json``): log-likelihood (nats),
        estimates (unconstrained scale) and natural-scale values (days, colonies per cell per day), c-indices,
        tertile tables, GBSG2 transport, wall times (seconds).

    Examples
    --------
    >>> summary = run_natural_history(Path("cal"), n_boot=30)  # doctest: +SKIP
    >>> summary["cross_validation"]["c_index_model"]  # doctest: +SKIP
    """
    out_dir = Path(out_dir)
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    say = progress or (lambda msg: None)
    cohort = load_transbig()
    t0 = _time.perf_counter()
    say(
        f"fitting the natural history on {cohort.name}: {cohort.n} patients, {int(cohort.event.sum())} events, "
        f"{n_nodes} quadrature nodes each"
    )
    measurements = nh.published_doubling_times() if doubling_times else ()
    start_cfg = read_config(out_dir)
    nodes = start_cfg["nodes"] if condition_on_nodes else None
    joint = None
    if nodes is None:
        model = nh.MarginalModel(
            cohort.covariates, cohort.time_days, cohort.event, n_nodes=n_nodes, measurements=measurements,
            reference=start_cfg,
        )
        res = nh.fit(model)
    else:
        say(
            "fitting jointly with the nodal spread (GBSG2 node counts, SEER node-positive share by size): "
            f"clearance held at {nodes['clearance_per_day']:.3g}/day"
        )
        model = nh.MarginalModel(
            cohort.covariates, cohort.time_days, cohort.event, n_nodes=n_nodes, measurements=measurements,
            nodes=nodes, reference=start_cfg,
        )
        joint = fit_jointly(model, NodeCountLikelihood(load_gbsg2()), natural_history_theta(start_cfg), nodes)
        nodes = {**nodes, "seeding_ratio": joint.seeding_ratio, "count_dispersion": joint.count_dispersion}
        model = model.with_nodes(nodes)
        k_nh = len(joint.theta)
        res = nh.FitResult(joint.theta, joint.cov[:k_nh, :k_nh], joint.loglik_node_negative, joint.n_evaluations,
                           joint.converged, NATURAL_HISTORY.names)
        say(f"nodes: seeding ratio {joint.seeding_ratio:.3g}, dispersion {joint.count_dispersion:.3g} "
            f"(node-count log-likelihood {joint.loglik_counts:.2f})")
    fit_s = _time.perf_counter() - t0
    say(f"fit done in {fit_s:.1f} s ({res.n_evaluations} likelihood evaluations), log-likelihood {res.loglik:.2f}")

    boot = None
    if n_boot > 0:
        t2 = _time.perf_counter()
        boot = val.bootstrap(
            cohort.covariates,
            cohort.time_days,
            cohort.event,
            res.theta,
            n_boot,
            workers=workers,
            progress=lambda d, n: say(f"bootstrap: fit {d}/{n}"),
            measurements=measurements,
            nodes=nodes,
            reference=model.reference,
        )
        boot["wall_time_s"] = round(_time.perf_counter() - t2, 1)
        say(f"bootstrap SDs {[round(v, 3) for v in boot['sd'].values()]} vs Laplace SEs {np.round(res.se, 3).tolist()}")

    # the ensemble carries the Laplace covariance, widened per parameter to the bootstrap SD where that is larger
    inflate = np.ones(len(res.theta))
    if boot is not None:
        inflate = np.maximum(1.0, NATURAL_HISTORY.vector(boot["sd"]) / res.se)
    cov_ens = res.cov * np.outer(inflate, inflate)
    ens = draw_natural_history(res.theta, cov_ens, n_ensemble)

    t1 = _time.perf_counter()
    cv = val.cross_validate(
        cohort.covariates,
        cohort.time_days,
        cohort.event,
        repeats=repeats,
        k=k,
        n_nodes=cv_nodes,
        workers=workers,
        progress=lambda d, n: say(f"cross-validation: fold {d}/{n}"),
        measurements=measurements,
        nodes=nodes,
        reference=model.reference,
    )
    cv_s = _time.perf_counter() - t1
    say(f"cross-validated c-index: model {cv['c_index_model']:.3f}, Cox {cv['c_index_cox']:.3f} ({cv_s:.0f} s)")

    years = (5.0, 10.0)
    pred = model.dmfs(res.theta, np.array(years) * DAYS_PER_YEAR)
    risk10 = 1.0 - pred[:, 1]
    table = val.calibration_by_tertile(pred, risk10, cohort.time_days, cohort.event, years)
    table_oof = val.calibration_by_tertile(
        pred, np.asarray(cv["oof_risk_model"]), cohort.time_days, cohort.event, years
    )
    val.plot_calibration(
        out_dir / "figures" / "transbig_tertiles.png",
        model,
        res.theta,
        risk10,
        cohort.time_days,
        cohort.event,
        "TRANSBIG: DMFS by predicted 10-year risk tertile",
    )
    km, km_lo, km_hi = val.km_at(cohort.time_days, cohort.event, [3.0, 5.0, 10.0, 15.0])
    pred_all = model.dmfs(res.theta, np.array([3.0, 5.0, 10.0, 15.0]) * DAYS_PER_YEAR).mean(axis=0)

    say("transport to GBSG2")
    gb = load_gbsg2()
    tr = val.transport(res.theta, gb, cohort.covariates, cohort.time_days, cohort.event, nodes=nodes,
                       reference=model.reference)
    gm = nh.MarginalModel(gb.covariates, gb.time_days, gb.event, n_nodes=256, nodes=nodes, reference=model.reference)
    val.plot_calibration(
        out_dir / "figures" / "gbsg2_transport.png",
        gm,
        res.theta,
        tr.pop("risk"),
        gb.time_days,
        gb.event,
        "GBSG2 (treated, RFS): fitted untreated natural history by tertile",
        7.5,
    )

    cfg = with_natural_history(res.theta, start_cfg)  # a deep copy: start_cfg is not changed
    if joint is not None:
        cfg["nodes"]["seeding_ratio"] = joint.seeding_ratio
        cfg["nodes"]["count_dispersion"] = joint.count_dispersion
        cfg["nodes"].setdefault("sources", {}).update(
            seeding_ratio="chemomet calibrate natural-history: fitted jointly with the natural history (TRANSBIG "
            "given its node counts, all 0) on GBSG2 positive-node counts (686 node-positive patients, truncated at "
            "1) and the node-positive share by diameter (Carter 1989 Cancer 63:181, SEER); clearance held; see "
            "provenance",
            count_dispersion="chemomet calibrate natural-history (joint with the natural history), see seeding_ratio",
        )
    q = natural_history_quantities(res.theta)
    cfg["growth"].setdefault("sources", {})
    src = "chemomet calibrate natural-history: max. marginal likelihood on TRANSBIG (GSE7390)" + (
        " and the median doubling times of Ryu 2014" if measurements else ""
    ) + ", see provenance"
    for key in ("doubling_time_median_days", "doubling_time_sdlog", "grade_doubling_factor"):
        cfg["growth"]["sources"][key] = src
    for key in ("mu_median_per_cell_day", "mu_sdlog"):
        cfg["dissemination"]["sources"][key] = src
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    prov = cfg.setdefault("provenance", {})
    prov["natural_history"] = {
        "data": "TRANSBIG / GSE7390 (Desmedt 2007), 198 untreated node-negative patients, time to distant "
        "metastasis; loaded with scikit-survival sksurv.datasets.load_breast_cancer()"
        + (
            "; with the median doubling times of Ryu 2014 (HR+ 241 days, triple-negative 103 days, x/1.5 assumed) "
            "as log-normal likelihood terms"
            if measurements
            else ""
        ),
        "method": "maximum marginal likelihood conditional on M0 at diagnosis"
        + (" and on each patient's node count (0), with the [nodes] values of this folder" if nodes else "")
        + f"; random effects (doubling time, "
        f"plateau, mu, TMEM) integrated with {n_nodes} scrambled-Sobol nodes (common random numbers); "
        "Nelder-Mead; uncertainty: inverse observed information (Laplace), ensemble widened per parameter to "
        f"the SD of {n_boot} bootstrap refits where larger",
        "software": " ".join(f"{a}={b}" for a, b in software().items()),
        "date": now,
    }
    storage.write_toml(out_dir / "population.toml", cfg, POPULATION_HEADER)

    # keep the treatment columns of an earlier targets calibration
    names, values = replace_block(storage.read_ensemble(out_dir), NATURAL_HISTORY.names, ens, block_first=True)
    storage.write_ensemble(out_dir / "ensemble.npz", names, values)

    shipped = _shipped_report().get("natural_history", {})
    summary = {
        "cohort": {"name": cohort.name, "n": cohort.n, "events": int(cohort.event.sum()), "notes": cohort.notes},
        "loglik": res.loglik,
        "loglik_cohort": float(np.sum(model.loglik_terms(res.theta))),
        "doubling_time_measurements": [
            {"subtype": m.subtype, "median_days": m.median_days, "se_log": m.se_log, "source": m.source,
             "loglik": m.loglik(with_natural_history(res.theta, start_cfg))}
            for m in measurements
        ],
        "converged": res.converged,
        "n_evaluations": res.n_evaluations,
        "quadrature_nodes": n_nodes,
        "conditioned_on_nodes": (
            {key: nodes[key] for key in ("seeding_ratio", "count_dispersion", "clearance_per_day", "axillary_nodes")}
            if nodes else None
        ),
        "joint_with_nodes": (
            {"loglik_total": joint.loglik, "loglik_node_counts": joint.loglik_counts,
             "se_log_seeding_ratio": float(np.sqrt(joint.cov[-2, -2])),
             "se_log_count_dispersion": float(np.sqrt(joint.cov[-1, -1]))}
            if joint is not None else None
        ),
        "estimates": {
            nm: {"theta": float(th), "se": float(se), "ci95": [float(th - 1.96 * se), float(th + 1.96 * se)]}
            for nm, th, se in zip(NATURAL_HISTORY.names, res.theta, res.se, strict=True)
        },
        "natural_scale": q,
        "natural_scale_ci95": _natural_ci(ens),
        "correlation": np.round(res.cov / np.outer(res.se, res.se), 3).tolist(),
        "dmfs_overall": [
            {"years": y, "predicted": float(p), "km": float(a), "km_low": float(lo), "km_high": float(hi)}
            for y, p, a, lo, hi in zip((3, 5, 10, 15), pred_all, km, km_lo, km_hi, strict=True)
        ],
        "cross_validation": {k2: v for k2, v in cv.items() if not k2.startswith("oof_")},
        "calibration_by_tertile_in_sample": table.to_dict(orient="records"),
        "calibration_by_tertile_oof_risk": table_oof.to_dict(orient="records"),
        "gbsg2_transport": tr,
        "ensemble_size": int(n_ensemble),
        "bootstrap": boot,
        "ensemble_sd_inflation": dict(zip(NATURAL_HISTORY.names, inflate.round(3).tolist(), strict=True)),
        "reproduces_shipped": reproduces(res.theta, shipped, NATURAL_HISTORY.names),
        "wall_time_s": {
            "fit": round(fit_s, 1),
            "cross_validation": round(cv_s, 1),
            "total": round(_time.perf_counter() - t0, 1),
        },
        "date": now,
    }
    report = storage.read_json(out_dir / "report.json")
    report["natural_history"] = summary
    report["provenance"] = cfg["provenance"]
    storage.write_json(out_dir / "report.json", report)
    return summary


def _natural_ci(ens: np.ndarray) -> dict:
    qs = [natural_history_quantities(row) for row in ens]
    return {
        k: [float(np.percentile([q[k] for q in qs], 2.5)), float(np.percentile([q[k] for q in qs], 97.5))]
        for k in qs[0]
    }


def run_targets(out_dir: Path, n: int = 4000, n_ensemble: int = 200, sobol_n: int = 64, progress=None) -> dict:
    """``chemomet calibrate targets``: calibrate to the published targets, write population/ensemble/report,
    and run the Sobol analysis.

    Starts from the folder's ``population.toml`` (the natural-history calibration; the priors if there is
    none). Writes ``population.toml`` (treatment values and provenance), ``ensemble.npz`` (the treatment
    columns; natural-history columns kept), ``report.json`` (``targets``) and ``figures/sobol_nact_excess.png``.

    Parameters
    ----------
    out_dir : pathlib.Path
        The calibration folder (created if missing).
    n : int
        Virtual patients per simulated arm (common random numbers).
    n_ensemble : int
        Ensemble members.
    sobol_n : int
        Sobol base sample size ``N`` (0: no sensitivity analysis).
    progress : callable, optional
        Called with one line of text per step.

    Returns
    -------
    dict
        The JSON summary (also stored under ``targets`` in ``report.json``): ``table`` (one row per published
        target: value reached, target, interval, pass), estimates (unconstrained scale), natural-scale values,
        checks, ``passed``/``total`` and wall times (seconds).

    Examples
    --------
    >>> summary = run_targets(Path("cal"), n=4000, sobol_n=128)  # doctest: +SKIP
    >>> summary["passed"], summary["total"]  # doctest: +SKIP
    """
    say = progress or (lambda msg: None)
    out_dir = Path(out_dir)
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    base = read_config(out_dir)
    if "provenance" not in base or "natural_history" not in base.get("provenance", {}):
        say("no natural-history calibration in this folder: starting from the priors")
    res = calibrate(base, n=n, progress=say)
    cfg = res["config"]
    src = (
        "chemomet calibrate targets: bisection to the published targets (docs/science.md §4) with common random "
        "numbers, see provenance"
    )
    for k in ("chemosensitivity_median", "grade3_chemosensitivity_factor", "metastasis_kill_ratio"):
        cfg["treatment"]["sources"][k] = src
    for k in ("theta", "colonisation_efficiency"):
        cfg["dissemination"]["sources"][k] = src
    for k in ("ctc_count_dispersion", "ctc_background_per_sample"):
        cfg["dissemination"]["sources"][k] = (
            "chemomet calibrate targets: with the assay background, minimum misfit to Bidard 2018's four CTC hazard "
            "ratios (1, 2, 3-4, >=5 vs 0; log scale, weighted by their intervals) and Allard 2004's 1 of 344 people "
            "without cancer with >=2 CTCs, colonisation_efficiency re-solved for every value (docs/science.md §3.1)"
        )
    cfg["microenvironment"]["sources"]["epsilon_median"] = src
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    cfg.setdefault("provenance", {})["targets"] = {
        "data": "published targets of docs/science.md §4 (Cortazar 2014, Rohan 2014, Bidard 2018, EBCTCG 2012 "
        "and 2018)",
        "method": f"sequential bisection on {n} virtual patients with common random numbers (seed {res['seed']}); "
        "SE by the delta method from each target's interval; the CTC count dispersion and assay background by "
        f"minimum misfit to the four CTC hazard ratios ({5 * n} virtual patients) and Allard 2004's background, "
        "covariance from the misfit's Hessian",
        "software": " ".join(f"{a}={b}" for a, b in software().items()),
        "date": now,
    }
    storage.write_toml(out_dir / "population.toml", cfg, POPULATION_HEADER)
    draws = draw_treatment(res["theta"], res["se"], n_ensemble, res["links"])
    # keep the natural-history columns
    names, values = replace_block(storage.read_ensemble(out_dir), TREATMENT.names, draws, block_first=False)
    storage.write_ensemble(out_dir / "ensemble.npz", names, values)

    summary = {
        "table": res["table"],
        "estimates": {
            k: {"theta": float(a), "se": float(b)}
            for k, a, b in zip(TREATMENT.names, res["theta"], res["se"], strict=True)
        },
        "links": res["links"],
        "natural_scale": treatment_natural_scale(res["theta"]),
        "checks": res["checks"],
        "virtual_patients": n,
        "wall_time_s": res["timings"],
        "passed": int(sum(r["pass"] for r in res["table"])),
        "total": len(res["table"]),
        "date": now,
    }
    if sobol_n > 0:
        say(f"Sobol sensitivity analysis (N = {sobol_n})")
        summary["sobol"] = run_sobol(cfg, out_dir / "figures" / "sobol_nact_excess.png", n_base=sobol_n, progress=say)
    report = storage.read_json(out_dir / "report.json")
    report["targets"] = summary
    report["provenance"] = cfg["provenance"]
    storage.write_json(out_dir / "report.json", report)
    return summary
