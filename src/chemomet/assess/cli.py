"""``chemomet assess PATIENT`` (and the demo): the assessment as a text summary, a JSON and an HTML report."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from pathlib import Path

import typer

from chemomet.assess.result import Assessment, Interval, as_assessment
from chemomet.errors import InputError, printable
from chemomet.mechanisms import OPTION_HELP as MECHANISMS_HELP
from chemomet.regimens import DEFAULT_REGIMEN

SET_HELP = "Override a setting of data/assessment.toml, e.g. --set decision.excess_risk=0.03 (repeatable)."


def parse_overrides(items: list[str]) -> dict[str, float]:
    """``["section.key=value", ...]`` -> ``{"section.key": value}`` (numbers only)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            out[key.strip()] = float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            raise InputError(
                f"--set {item!r} is invalid; allowed: SECTION.KEY=NUMBER, e.g. decision.excess_risk=0.03"
            ) from None
    return out


def _ci(s: Interval | None, scale: float = 100.0, signed: bool = False) -> str:
    if s is None or s.mean is None:
        return "—"
    f = "{:+.1f}" if signed else "{:.1f}"
    return f"{f.format(scale * s.mean)} ({f.format(scale * s.lo)} to {f.format(scale * s.hi)})"


def summary_text(result: Assessment | Mapping) -> str:
    """The assessment as a short plain-text summary (what the terminal shows); percentages and points.

    The first line is the decision under uncertainty in plain words (``recommendation.summary``): what the model
    decides, or that it cannot decide, and any investigational drug only as a candidate for a clinical trial.
    """
    a = as_assessment(result, "summary_text")
    p, s, ev = a.patient, a.settings, a.evidence
    rec = a.recommendation
    unknown = "not measured"
    subtype = p.subtype or f"ER {p.er}, PR {p.pr or unknown}, HER2 {p.her2 or unknown}"
    lines = [
        rec.summary if rec is not None and rec.summary else "Decision: — (the result carries no recommendation)",
        "",
        f"chemomet assess — patient {printable(p.id)}: {p.age:g} y, {subtype}, {p.diameter_mm:g} mm, "
        f"grade {p.grade or 'not reported'}; regimen {s.regimen}",
        f"{s.n_twins:,} virtual twins (effective sample size {ev.ess:,.0f}), {s.n_simulated:,} simulated, "
        f"seed {s.seed}. Research use only — not a medical device.",
    ]
    if s.endocrine:
        lines.append(f"Every strategy includes {s.endocrine} for {s.endocrine_years:g} years after surgery (ER+).")
    if s.epsilon_posterior:
        from chemomet.assess.report import epsilon_line

        lines.append(epsilon_line(s.epsilon_posterior))
    lines.append("")
    width = min(max(len(r.label) for r in a.strategies) + 2, 90)
    lines.append(f"{'strategy':<{width}}{'DMFS 5 y, % (90% CI)':>24}{'DMFS 10 y, % (90% CI)':>24}{'P(pCR)':>9}")
    for r in a.strategies:
        pcr = "—" if r.p_pcr is None else f"{100 * r.p_pcr:.0f}%"
        label = r.label[: width - 2]
        lines.append(f"{label:<{width}}{_ci(r.dmfs_5y):>24}{_ci(r.dmfs_10y):>24}{pcr:>9}")
    ex = a.nact_excess_risk_10y
    lines += [
        "",
        f"NACT-attributable excess 10-year DM risk: {_ci(ex, signed=True)} points, "
        f"P(excess > 0) = {100 * ex.p_positive:.0f}%",
    ]
    if a.drug_risk_reduction_10y:
        lines.append("Accompanying drugs, 10-year DM risk reduction, points (90% CI):")
    for name, r in a.drug_risk_reduction_10y.items():
        v = rec.verdict_for(name) if rec is not None else None
        status = ""
        if v is not None:
            approved = "approved" if v.approved_for_this_use else "investigational"
            status = f" [{approved}; evidence: {v.evidence or '—'}] {v.verdict or ''}".rstrip()
        lines.append(f"  {name}: {_ci(r, signed=True)}{status}")
    record = (s.mechanisms if s is not None else None) or {}
    routes = {d: r for d, r in (record.get("harm_routes") or {}).items() if r}
    if [m for m in record.get("on", []) if m != "doorway"]:
        lines.append(f"  Mechanisms on: {', '.join(record['on'])} (strengths not identified by data).")
    if routes:
        shown = "; ".join(f"{d} through {', '.join(r)}" for d, r in routes.items())
        lines.append(f"  Drugs that can harm here: {shown}.")
    elif any(r.lo is not None and r.lo > -0.0005 for r in a.drug_risk_reduction_10y.values()):
        lines.append(
            "  The model has no mechanism by which these drugs can harm: a lower bound at 0 reflects the model, "
            "not evidence."
        )
    if rec is not None:
        lines += ["", f"Recommendation: {rec.label or rec.strategy or '—'}"]
        for name in rec.trial_candidates:
            v = rec.verdict_for(name)
            drug = v.drug if v is not None else name
            evidence = v.evidence if v is not None else "unknown"
            lines.append(f"Candidate for a clinical trial of {drug} (investigational; evidence: {evidence}), "
                         "not a recommendation.")
        lines += [f"  - {x}" for x in rec.reasons]
    for w in ev.warnings or []:
        lines.append(f"WARNING: {w}")
    return "\n".join(lines)


def run_assessment(patient, regimen: str | None, strategies: list[str] | None, overrides: dict, report: Path | None,
                   json_out: bool, drivers: bool = True, mechanisms: dict | None = None,
                   epsilon: tuple[float, float] | None = None) -> Assessment:
    """Assess, write the report (if asked) and print the summary or the JSON; returns the assessment.
    ``mechanisms``: a ``[mechanisms]`` table (:func:`chemomet.mechanisms.mechanisms_from_option`); ``epsilon``:
    the stress response's fitted posterior ``(median, sdlog)`` (:func:`chemomet.subgroups.epsilon_posterior`)."""
    from chemomet.assess.assessment import assess
    from chemomet.assess.report import write_report
    from chemomet.assess.settings import AssessmentSettings
    from chemomet.fileio import check_output_path

    if report is not None:
        check_output_path(report, (".html", ".htm"), "--report")
    settings = AssessmentSettings.default().with_overrides(overrides)
    t0 = time.perf_counter()

    show = sys.stderr.isatty()

    def progress(step: str) -> None:
        if show:  # a terminal sees the steps; logs and pipes get only the result (and errors)
            typer.echo(f"[assess {time.perf_counter() - t0:5.1f} s] {step}", err=True)

    result = assess(patient, strategies or None, regimen=regimen, settings=settings, drivers=drivers,
                    mechanisms=mechanisms or None, epsilon=epsilon, progress=progress)
    if report is not None:
        write_report(result, report)
    if json_out:
        typer.echo(result.to_json())
    else:
        typer.echo(summary_text(result))
        if report is not None:
            typer.echo(f"\nreport written to {report}")
    return result


def assess_command(
    patient: Path = typer.Argument(..., help="Patient file (.toml or .json)."),
    report: Path | None = typer.Option(None, "--report", help="Write the HTML report here (.html)."),
    json_: bool = typer.Option(False, "--json", help="Print the full result as JSON."),
    regimen: str | None = typer.Option(
        None, "--regimen", "-r",
        help=f"Regimen key (default: {DEFAULT_REGIMEN}; for HER2-positive disease with trastuzumab and pertuzumab).",
    ),
    strategy: list[str] = typer.Option(
        [], "--strategy", "-s", help="Extra strategy to compare (repeatable; default: NACT + each drug)."
    ),
    settings: list[str] = typer.Option([], "--set", help=SET_HELP),
    no_drivers: bool = typer.Option(False, "--no-drivers", help="Skip the drivers analysis (faster)."),
    mechanisms: str | None = typer.Option(None, "--mechanisms", help=MECHANISMS_HELP),
    epsilon_posterior: Path | None = typer.Option(
        None, "--epsilon-posterior",
        help="The JSON of `chemomet calibrate mechanisms`: draw each ensemble member's stress response (epsilon "
        "median) from its fitted posterior (doorway set, all data) instead of the calibration's prior.",
    ),
) -> None:
    """Assess one patient before (or during) NACT: risk per strategy, NACT-attributable excess risk,
    accompanying drugs, the drivers and a recommendation."""
    from chemomet.mechanisms import mechanisms_from_option
    from chemomet.subgroups import epsilon_posterior as read_posterior

    table = mechanisms_from_option(mechanisms)  # validated before any work
    epsilon = None if epsilon_posterior is None else read_posterior(epsilon_posterior)
    run_assessment(patient, regimen, strategy, parse_overrides(settings), report, json_, drivers=not no_drivers,
                   mechanisms=table, epsilon=epsilon)


def demo_command(
    report: Path = typer.Option(Path("chemomet-demo-report.html"), "--report", help="Where to write the report."),
    json_: bool = typer.Option(False, "--json", help="Print the full result as JSON."),
) -> None:
    """The assessment of the built-in example patient: a summary and an HTML report."""
    from chemomet.patient import example_patient

    run_assessment(example_patient(), DEFAULT_REGIMEN, None, {}, report, json_)
    if not json_:
        print("Open the report in a browser; `chemomet assess PATIENT.toml` assesses your own patient.",
              file=sys.stderr)
