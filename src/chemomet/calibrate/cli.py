"""``chemomet calibrate natural-history | targets | report | validate``: reproduce, inspect and validate the shipped
calibration."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from chemomet.calibrate.pipeline import run_natural_history, run_targets
from chemomet.calibrate.shipped import load_report
from chemomet.errors import InputError
from chemomet.inputs import is_regular_file, read_data

app = typer.Typer(help="Calibrate the population model on real cohorts and published targets.", no_args_is_help=True)


def _say(msg: str) -> None:
    print(f"[calibrate] {msg}", file=sys.stderr, flush=True)


def _out_dir(out: Path) -> Path:
    from chemomet.fileio import check_output_dir

    check_output_dir(out, "--out", parents=False)  # created and proven writable before any work (output layer)
    return out


def _positive(name: str, value: int, low: int = 1) -> None:
    if value < low:
        raise InputError(f"{name} = {value!r} is invalid; allowed: an integer >= {low}")


@app.command("natural-history")
def natural_history(
    out: Path = typer.Option(Path("chemomet-calibration"), help="Folder for population.toml, ensemble, report."),
    nodes: int = typer.Option(512, help="Quadrature nodes per patient (common random numbers)."),
    repeats: int = typer.Option(5, help="Repeats of k-fold cross-validation."),
    folds: int = typer.Option(5, help="Folds of cross-validation."),
    ensemble: int = typer.Option(200, help="Parameter sets in the ensemble."),
    workers: int = typer.Option(2, help="Processes for cross-validation."),
    bootstrap: int = typer.Option(
        30, help="Bootstrap refits: check the Laplace errors, widen the ensemble where larger (0: skip)."
    ),
    doubling_times: bool = typer.Option(
        True, help="Add the published median doubling times (Ryu 2014) to the likelihood (off: TRANSBIG alone)."
    ),
    condition_on_nodes: bool = typer.Option(
        True, help="Condition TRANSBIG's patients on their node count (0) under the folder's [nodes] values."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Fit growth and dissemination to TRANSBIG; CV c-index vs Cox; tertile calibration; GBSG2 transport."""
    for name, v, lo in (
        ("--nodes", nodes, 16),
        ("--repeats", repeats, 1),
        ("--folds", folds, 2),
        ("--ensemble", ensemble, 100),
        ("--workers", workers, 1),
        ("--bootstrap", bootstrap, 0),
    ):
        _positive(name, v, lo)
    summary = run_natural_history(
        _out_dir(out), nodes, repeats, folds, ensemble, workers, progress=_say, n_boot=bootstrap,
        doubling_times=doubling_times, condition_on_nodes=condition_on_nodes,
    )
    if as_json:
        typer.echo(json.dumps(summary, indent=1))
    else:
        _print_nh(summary)


@app.command("targets")
def targets(
    out: Path = typer.Option(Path("chemomet-calibration"), help="Folder with the natural-history calibration."),
    patients: int = typer.Option(4000, help="Virtual patients per simulated arm (common random numbers)."),
    ensemble: int = typer.Option(200, help="Parameter sets in the ensemble."),
    sobol: int = typer.Option(128, help="Sobol base sample size N for the sensitivity analysis (0: skip)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Calibrate chemosensitivity, resistance, microenvironment, TMEM and CTC links to the published targets."""
    _positive("--patients", patients, 200)
    _positive("--ensemble", ensemble, 100)
    _positive("--sobol", sobol, 0)
    summary = run_targets(_out_dir(out), patients, ensemble, sobol, progress=_say)
    if as_json:
        typer.echo(json.dumps(summary, indent=1))
    else:
        _print_targets(summary.get("table", []))


@app.command("treatment")
def treatment(
    out: Path = typer.Option(Path("chemomet-calibration"), help="Folder with the natural-history calibration."),
    patients: int = typer.Option(4000, help="Virtual patients of the endocrine, target and aromatase fits."),
    her2_patients: int = typer.Option(12000, help="Virtual patients of the anti-HER2 and docetaxel fits."),
    sobol: int = typer.Option(0, help="Sobol base sample size N of the targets step (0: skip)."),
    step: list[str] = typer.Option(
        [], "--step", help="Run only this step (repeat for several): nodes, endocrine, targets, anti-her2, "
        "docetaxel, aromatase-inhibitor. Default: all, in that order."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Every calibration after the natural history: nodes, endocrine, targets, anti-HER2, docetaxel, aromatase."""
    from chemomet.calibrate.chain import STEPS, run_treatment

    _positive("--patients", patients, 200)
    _positive("--her2-patients", her2_patients, 200)
    _positive("--sobol", sobol, 0)
    bad = sorted(set(step) - set(STEPS))
    if bad:
        raise InputError(f"--step = {bad[0]!r} is invalid; allowed: one of {list(STEPS)}")
    summary = run_treatment(
        _out_dir(out), patients, her2_patients, sobol, tuple(step) or STEPS, progress=_say
    )
    if as_json:
        typer.echo(json.dumps(summary, indent=1, default=str))
    else:
        for key, v in summary["drugs"].items():
            typer.echo(f"{key}: {v['fitted']:.4g} (shipped {v['shipped']:.4g})")
        typer.echo(f"wall time (s): {summary['wall_time_s']}")


@app.command("validate")
def validate(
    out: Path = typer.Option(..., help="Folder for validation.json and figures/validation_calibration.png."),
    folds: int = typer.Option(5, help="Folds of cross-validation (the same for every model)."),
    repeats: int = typer.Option(5, help="Repeats of k-fold cross-validation."),
    seed: int = typer.Option(7, help="Seed of the folds (repeat r uses seed + r), quadrature nodes and bootstrap."),
    bootstrap: int = typer.Option(1000, help="Bootstrap resamples for the intervals of C, differences and Brier."),
    nodes: int = typer.Option(256, help="Quadrature nodes per patient of the TRANSBIG refits."),
    workers: int = typer.Option(2, help="Processes for the fold fits."),
    cohort: list[str] = typer.Option(["transbig", "gbsg2"], "--cohort", help="Cohort to run; repeat for several."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Cross-validated C (vs Cox and nodes alone) and calibration on TRANSBIG and GBSG2 (issue 11)."""
    from chemomet.calibrate.crossval import run_validation

    for name, v, lo in (
        ("--folds", folds, 2),
        ("--repeats", repeats, 1),
        ("--bootstrap", bootstrap, 10),
        ("--nodes", nodes, 16),
        ("--workers", workers, 1),
    ):
        _positive(name, v, lo)
    bad = sorted(set(cohort) - {"transbig", "gbsg2"})
    if bad or not cohort:
        raise InputError(f"--cohort = {bad[0] if bad else ''!r} is invalid; allowed: transbig or gbsg2")
    summary = run_validation(
        _out_dir(out), tuple(dict.fromkeys(cohort)), k=folds, repeats=repeats, seed=seed, n_boot=bootstrap,
        n_nodes=nodes, workers=workers, progress=_say,
    )
    if as_json:
        from chemomet.fileio import json_safe

        compact = {
            name: {k: v for k, v in res.items() if k not in ("predictions_oof_repeat_mean", "calibration")}
            for name, res in summary["cohorts"].items()
        }
        typer.echo(json.dumps(json_safe(compact), indent=1))
    else:
        _print_validation(summary)


@app.command("mechanisms")
def mechanisms(
    out: Path = typer.Option(..., help="Folder for mechanism_inference.json and mechanism_inference.png."),
    patients: int = typer.Option(1000, help="Virtual patients of the fixed cohort (common random numbers)."),
    draws: int = typer.Option(240, help="Simulated draws per mechanism set (adaptive importance sampling)."),
    seed: int = typer.Option(11, help="Seed of the cohort and of the draws."),
    population: str = typer.Option(
        "ensemble", help="ensemble: each draw takes a random calibration-ensemble member; point: the point estimate."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the table as JSON."),
) -> None:
    """Fit the mechanism strengths to human data; compare mechanism sets by posterior model probability (issue 12)."""
    from chemomet.calibrate.mechanism_inference import format_table, run_inference, write_results

    _positive("--patients", patients, 20)
    _positive("--draws", draws, 4)
    if population not in ("ensemble", "point"):
        raise InputError(f"--population = {population!r} is invalid; allowed: ensemble or point")
    folder = _out_dir(out)
    result = run_inference(patients=patients, draws=draws, seed=seed, population=population, progress=_say)
    paths = write_results(result, folder)
    _say(f"wrote {paths['json']} and {paths['figure']}")
    if as_json:
        from chemomet.fileio import json_safe

        typer.echo(json.dumps(json_safe(result["table"]), indent=1))
    else:
        typer.echo(format_table(result))
        for combo, p in result["model_probabilities"].items():
            probs = ", ".join(f"{k} {v:.2f}" for k, v in p["probability"].items())
            typer.echo(f"posterior model probabilities, {combo}: {probs}")
        ess = ", ".join(f"{k} {v['posterior']['all data']['ess']:.0f}" for k, v in result["fits"].items())
        typer.echo(f"effective sample sizes (all data): {ess}; run time {result['seconds']:.0f} s")


def _print_validation(summary: dict) -> None:
    for res in summary["cohorts"].values():
        typer.echo(f"{res['cohort']} ({res['n']} patients, {res['events']} events; {res['endpoint']})")
        for m, c in res["c_index"].items():
            lo, hi = c["ci95"]
            typer.echo(f"  C {m:<26} {c['estimate']:.3f} ({lo:.3f}-{hi:.3f})")
        for k, d in res["c_index_differences"].items():
            lo, hi = d["ci95"]
            typer.echo(f"  {k:<28} {d['estimate']:+.3f} ({lo:+.3f} to {hi:+.3f})")
        cal = res["calibration"].get("mechanistic", {})
        typer.echo(
            f"  mechanistic calibration: {cal.get('cells_inside')} of {cal.get('cells_estimable')} estimable cells "
            "inside the KM 95% interval"
        )


@app.command("report")
def report(
    calibration: Path = typer.Option(None, help="A calibration folder (default: the shipped calibration)."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """The shipped calibration's target table and c-indices (no refitting)."""
    if calibration is None:
        rep = load_report()
    else:
        p = calibration / "report.json"
        if not is_regular_file(p):
            raise InputError(f"--calibration = {str(calibration)!r} is invalid; allowed: a folder with report.json")
        rep = read_data(p, "report")
    summary = report_summary(rep)
    if as_json:
        typer.echo(json.dumps(summary, indent=1))
    else:
        _print_targets(summary["targets"])
        c = summary["c_index"]
        if c:
            (lo, hi), (clo, chi) = c["model_ci95"], c["cox_ci95"]
            typer.echo(
                f"\nc-index (CV, {c['repeats']}x{c['folds']}-fold): model {c['model']:.3f} ({lo:.3f}-{hi:.3f}), "
                f"Cox {c['cox']:.3f} ({clo:.3f}-{chi:.3f})"
            )


def report_summary(rep: dict) -> dict:
    """The compact report that ``chemomet calibrate report`` prints: target table, c-indices, estimates and
    provenance.

    Parameters
    ----------
    rep : dict
        A calibration report (``report.json`` layout, e.g. :func:`chemomet.calibrate.shipped.load_report`);
        missing sections give empty entries.

    Returns
    -------
    dict
        ``targets`` (rows: ``name``, ``value``, ``target``, ``interval``, ``pass``, ``kind``, ``source``,
        ``note``), ``c_index`` (cross-validated c-indices of the model and of Cox, with 95% intervals),
        ``natural_history_estimates`` and ``natural_history_ci95`` (natural scales: days, colonies per cell per
        day), ``targets_estimates``, ``gbsg2_c_index`` and ``provenance``.

    Examples
    --------
    >>> s = report_summary(load_report())
    >>> s["targets"][0]["name"], 0.5 < s["c_index"]["model"] < 1
    ('pCR HR+/HER2- grade 1-2', True)
    >>> report_summary({})["targets"]
    []
    """
    nh = rep.get("natural_history", {})
    cv = nh.get("cross_validation", {})
    c = {}
    if cv:
        c = {
            "model": cv["c_index_model"],
            "model_ci95": cv["c_index_model_ci95"],
            "cox": cv["c_index_cox"],
            "cox_ci95": cv["c_index_cox_ci95"],
            "difference": cv["difference_model_minus_cox"],
            "difference_ci95": cv["difference_ci95"],
            "repeats": cv["repeats"],
            "folds": cv["folds"],
        }
    tg = rep.get("targets", {})
    return {
        "targets": tg.get("table", []),
        "c_index": c,
        "natural_history_estimates": nh.get("natural_scale", {}),
        "natural_history_ci95": nh.get("natural_scale_ci95", {}),
        "targets_estimates": tg.get("natural_scale", {}),
        "gbsg2_c_index": nh.get("gbsg2_transport", {}).get("c_index_model"),
        "provenance": rep.get("provenance", {}),
    }


def _print_nh(s: dict) -> None:
    typer.echo(f"log-likelihood {s['loglik']:.2f} ({s['n_evaluations']} evaluations)")
    for k, v in s["natural_scale"].items():
        lo, hi = s["natural_scale_ci95"][k]
        typer.echo(f"  {k:<40} {v:.4g}  (95% {lo:.4g} – {hi:.4g})")
    cv = s["cross_validation"]
    typer.echo(
        f"c-index model {cv['c_index_model']:.3f} {cv['c_index_model_ci95']}, Cox {cv['c_index_cox']:.3f} "
        f"{cv['c_index_cox_ci95']}"
    )


def _print_targets(rows: list[dict]) -> None:
    if not rows:
        typer.echo("no target table (run: chemomet calibrate targets)")
        return
    typer.echo(f"{'target':<52} {'reached':>9} {'target':>9} {'interval':>17}  pass")
    for r in rows:
        iv = r.get("interval")
        ivs = "—" if iv is None else f"[{_fmt(iv[0])}, {_fmt(iv[1]) if iv[1] is not None else 'inf'}]"
        typer.echo(
            f"{r['name']:<52} {_fmt(r['value']):>9} {_fmt(r['target']):>9} {ivs:>17}  {'yes' if r['pass'] else 'NO'}"
        )


def _fmt(v) -> str:
    return v if isinstance(v, str) else ("—" if v is None else f"{v:.3g}")
