"""``chemomet trial SPEC``: run a virtual trial from a TOML spec (registered by :mod:`chemomet.cli`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from chemomet.errors import InputError


def _line(summary: dict) -> list[str]:
    lines = [f"trial: {summary['name']}"]
    for arm in summary["arms"]:
        lines.append(f"  arm {arm['name']!r}: {arm['strategy']} ({arm['regimen']}), n = {arm['n']:,}")
    for ep, res in summary["endpoints"].items():
        for c in res["comparisons"]:
            if res["kind"] == "time-to-event" and c["hazard_ratio"] is not None:
                lines.append(
                    f"  {ep}: HR {c['hazard_ratio']:.3f} ({c['ci_lower']:.3f}-{c['ci_upper']:.3f}), "
                    f"log-rank p = {c['logrank_p']:.3g}, RMST difference {c['rmst_difference_days']:.1f} days"
                )
            elif res["kind"] == "binary" and c["difference"] is not None:
                lines.append(
                    f"  {ep}: difference {c['difference']:+.3f} ({c['lower']:+.3f} to {c['upper']:+.3f}), "
                    f"p = {c['p']:.3g}"
                )
            elif res["kind"] == "continuous" and c["difference"] is not None:
                lines.append(f"  {ep}: geometric-mean ratio {c['ratio']:.3f}, p = {c['p']:.3g}")
    if "power" in summary:
        p = summary["power"]
        for arm, res in p["arms"].items():
            pts = ", ".join(f"{n}: {x:.2f}" for n, x in zip(p["patients_per_arm"], res["power"], strict=True))
            lines.append(f"  power ({p['endpoint']}, {arm}) by patients per arm: {pts}")
    for k, v in summary.get("files", {}).items():
        lines.append(f"  {k}: {v}")
    return lines


def trial(
    spec: Path = typer.Argument(..., help="Trial spec (.toml); see docs/trials.md."),
    workers: int | None = typer.Option(
        None, "--workers", help="K >= 2: a Dask LocalCluster of K worker processes; 1 or omitted: this process."
    ),
    scheduler: str | None = typer.Option(None, "--scheduler", help="Address of a running Dask scheduler."),
    out: Path | None = typer.Option(None, "--out", help="Run directory (default: ./trial-<name>)."),
    resume: bool = typer.Option(True, "--resume/--fresh", help="Resume a run in --out, or start over."),
    chunk_size: int | None = typer.Option(None, "--chunk-size", help="Patients per chunk (default: the spec's)."),
    json_: bool = typer.Option(False, "--json", help="Print the summary as one JSON object."),
    progress: bool | None = typer.Option(
        None, "--progress/--no-progress", help="Progress bar on standard error (default: when it is a terminal)."
    ),
) -> None:
    """Run a virtual clinical trial: arms, eligibility, accrual and follow-up, survival statistics, power."""
    from chemomet.trial.runner import run_trial
    from chemomet.trial.spec import read_trial_spec

    if workers is not None and scheduler is not None:
        raise InputError("--workers and --scheduler were both given; allowed: one of them")
    parsed = read_trial_spec(spec)
    show = sys.stderr.isatty() if progress is None else progress
    result = run_trial(
        parsed, out=out, workers=workers, scheduler=scheduler, resume=resume, chunk_size=chunk_size, progress=show
    )
    if json_:
        typer.echo(json.dumps(result.summary, indent=2, allow_nan=False))
        return
    if "designs" in result.summary:
        for d in result.summary["designs"]:
            typer.echo("\n".join(_line(d)))
        typer.echo(f"power comparison: {result.files.get('power')}")
        return
    typer.echo("\n".join(_line(result.summary)))
