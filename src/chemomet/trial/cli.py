"""``chemomet trial SPEC``: run a virtual trial from a TOML spec (registered by :mod:`chemomet.cli`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from chemomet.errors import InputError, printable, shown_value


def _line(summary: dict) -> list[str]:
    lines = [f"trial: {printable(summary['name'])}"]  # user text: escaped and capped for the terminal
    for arm in summary["arms"]:
        regimen = printable(arm["regimen"])
        lines.append(f"  arm {shown_value(arm['name'])}: {arm['strategy']} ({regimen}), n = {arm['n']:,}")
    for ep, res in summary["endpoints"].items():
        if "role" in res:
            where = f", hierarchy position {res['hierarchy_position']}" if res.get("hierarchy_position") else ""
            lines.append(f"  {ep} ({res['role']}{where}; pre-specified test: {res['prespecified_test']})")
        for c in res["comparisons"]:
            who = f"{ep}, {printable(c['arm'])}"
            if res["kind"] == "time-to-event" and c["hazard_ratio"] is not None:
                lines.append(
                    f"  {who}: HR {c['hazard_ratio']:.3f} ({c['ci_lower']:.3f}-{c['ci_upper']:.3f}), "
                    f"log-rank p = {c['logrank_p']:.3g}, RMST difference {c['rmst_difference_days']:.1f} days"
                )
                ph = c.get("proportional_hazards") or {}
                if ph.get("rejected"):
                    lines.append(
                        f"    non-proportional hazards (PH test p = {ph['p']:.2g}): the HR averages a changing effect; "
                        "read the hazard ratio by year, the RMST and the milestones"
                    )
            elif res["kind"] == "binary" and c["difference"] is not None:
                lines.append(
                    f"  {who}: difference {c['difference']:+.3f} ({c['lower']:+.3f} to {c['upper']:+.3f}), "
                    f"p = {c['p']:.3g}"
                )
            elif res["kind"] == "continuous" and c["difference"] is not None:
                lines.append(f"  {who}: geometric-mean ratio {c['ratio']:.3f}, p = {c['p']:.3g}")
            lines += _tests(ep, c)
    lines += _subgroup_lines(summary.get("subgroups") or [])
    lines += _published_lines(summary.get("published") or [])
    if "power" in summary:
        p = summary["power"]
        for arm, res in p["arms"].items():
            if res.get("power") is None:
                lines.append(
                    f"  power ({p['endpoint']}, {printable(arm)}): not applicable ({res.get('not_applicable')})"
                )
                continue
            pts = ", ".join(f"{n}: {x:.2f}" for n, x in zip(p["patients_per_arm"], res["power"], strict=True))
            how = p.get("definition", "favourable")
            lines.append(f"  power ({p['endpoint']}, {how}, {printable(arm)}) by patients per arm: {pts}")
    for k, v in summary.get("files", {}).items():
        lines.append(f"  {k}: {v}")
    return lines


def _tests(ep: str, c: dict) -> list[str]:
    """The comparison's pre-specified p-value, unadjusted and adjusted, or why it does not apply."""
    arm = printable(c["arm"])
    if c.get("p") is None:
        return [f"  {ep}, {arm}: not applicable ({c['not_applicable']})"] if c.get("not_applicable") else []
    adj = c.get("p_adjusted")
    hier = "exploratory (outside the hierarchy)" if adj is None else f"{adj:.3g} over arms and the hierarchy"
    verdict = "" if c.get("significant") is None else (" - significant" if c["significant"] else " - not significant")
    return [f"    pre-specified test p = {c['p']:.3g}; adjusted {c['p_adjusted_arms']:.3g} over arms, {hier}{verdict}"]


def _published_lines(rows: list[dict]) -> list[str]:
    """Model vs published, one line per published result of a replication spec."""
    from chemomet.trial.replication import markdown_table

    if not rows:
        return []
    out = ["  model vs published (95% intervals):"]
    for line in markdown_table([("", rows)]).splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")][1:]
        out.append(f"    {printable(cells[0])} [{cells[1]}]: published {cells[2]}, model {cells[3]}; {cells[4]}")
    return out


def _subgroup_lines(rows: list[dict]) -> list[str]:
    """One line per experimental arm: the heterogeneity p-value of each subgroup variable (exploratory)."""
    out = []
    for arm in dict.fromkeys(r["arm"] for r in rows):
        seen = {r["subgroup"]: r.get("interaction_p") for r in rows if r["arm"] == arm and r["subgroup"] != "all"}
        if seen:
            het = ", ".join(f"{k} {'n/a' if v is None else f'{v:.2g}'}" for k, v in seen.items())
            out.append(f"  subgroups of {printable(arm)} (exploratory; treatment x subgroup interaction p): {het}")
    return out


def trial(
    spec: Path = typer.Argument(..., help="Trial spec (.toml); see docs/trials.md."),
    workers: int | None = typer.Option(
        None, "--workers", help="K >= 2: a Dask LocalCluster of K worker processes; 1 or omitted: this process."
    ),
    scheduler: str | None = typer.Option(None, "--scheduler", help="Address of a running Dask scheduler."),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Run directory (default: ./trial-<name>): new, empty, or an earlier chemomet run; a folder holding "
        "other files is refused, never cleared.",
    ),
    resume: bool = typer.Option(True, "--resume/--fresh", help="Resume a run in --out, or start over."),
    chunk_size: int | None = typer.Option(None, "--chunk-size", help="Patients per chunk (default: the spec's)."),
    json_: bool = typer.Option(False, "--json", help="Print the summary as one JSON object."),
    progress: bool | None = typer.Option(
        None, "--progress/--no-progress", help="Progress bar on standard error (default: when it is a terminal)."
    ),
) -> None:
    """Run a virtual clinical trial: arms, eligibility, accrual and follow-up, survival statistics, power."""
    from chemomet.trial.rundir import check_run_folder
    from chemomet.trial.runner import run_trial
    from chemomet.trial.spec import read_trial_spec

    if workers is not None and scheduler is not None:
        raise InputError("--workers and --scheduler were both given; allowed: one of them")
    if out is not None:
        check_run_folder(out, "--out")  # before any work: a folder of other files is never touched
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
