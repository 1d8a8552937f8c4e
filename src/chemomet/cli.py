"""The ``chemomet`` command line: thin sub-commands over the public API.

Bad input never produces a traceback: :class:`chemomet.errors.InputError` becomes one line on standard error
and exit code 2, and no output file is left behind.
"""

from __future__ import annotations

import functools
import importlib
import json
import sys
from pathlib import Path

import numpy as np
import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

from chemomet.errors import InputError, printable
from chemomet.fileio import json_safe

LAZY_COMMANDS: dict[str, tuple[str, str, str]] = {
    "assess": ("chemomet.assess.cli", "assess_command", "Assess one patient before (or during) NACT."),
    "calibrate": ("chemomet.calibrate.cli", "app", "Calibrate the population model on real cohorts and targets."),
    "demo": ("chemomet.assess.cli", "demo_command", "The assessment of the built-in example patient."),
    "predict": ("chemomet.assess.predict", "_command", "Posterior DMFS for every patient of a cohort table."),
    "serve": ("chemomet.web.server", "serve_command", "Start the local web app (needs the web extra)."),
    "tmem": ("chemomet.tme.cli", "tmem", "Score TMEM doorways in a cell table."),
    "trial": ("chemomet.trial.cli", "trial", "Run a virtual randomised trial from a TOML spec."),
}
"""Sub-commands that live in their own packages: name -> (module, attribute, one-line help). They are imported only
when used, so ``chemomet --help`` does not load every package."""

BUILTIN_COMMANDS = ("cohort", "excess-risk", "simulate")
"""Sub-commands defined in this module (:func:`_builtin_app`); they too are made on first use, so that the other
commands (``chemomet tmem`` above all) do not import :mod:`chemomet.regimens` and :mod:`chemomet.mechanisms`."""


def _quiet_flags(command, ctx):
    """Show no type for on/off flags (``--json``, not ``--json <bool>``), in this command and its sub-commands."""
    help_option = command.get_help_option(ctx)
    for param in [*command.params, *([help_option] if help_option else [])]:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        _quiet_flags(sub, ctx)
    return command


def _load(name: str, ctx):
    module, attr, _ = LAZY_COMMANDS[name]
    obj = getattr(importlib.import_module(module), attr)
    if isinstance(obj, typer.Typer):
        command = typer.main.get_group(obj)
    else:
        single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
        single.command(name)(obj)
        command = typer.main.get_command(single)
    command.name = name
    return _quiet_flags(command, ctx)


class _LazyGroup(TyperGroup):
    """The top-level group: :data:`BUILTIN_COMMANDS` and :data:`LAZY_COMMANDS`, loaded on first use. While the
    group's help is written, a sub-command of another package that is not loaded yet is listed by its one-line help
    alone (the built-in ones are loaded: their help is their docstring's)."""

    listing = False

    def list_commands(self, ctx) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS, *BUILTIN_COMMANDS})

    def get_command(self, ctx, cmd_name: str):
        if cmd_name in BUILTIN_COMMANDS and cmd_name not in self.commands:
            self.add_command(typer.main.get_group(_builtin_app()).commands[cmd_name], cmd_name)
        if cmd_name in LAZY_COMMANDS and cmd_name not in self.commands:
            if self.listing:
                return TyperCommand(cmd_name, help=LAZY_COMMANDS[cmd_name][2])
            self.add_command(_load(cmd_name, ctx), cmd_name)
        return _quiet_flags(super().get_command(ctx, cmd_name), ctx) if cmd_name in self.commands else None

    def format_help(self, ctx, formatter) -> None:
        _quiet_flags(self, ctx)
        self.listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self.listing = False


app = typer.Typer(
    cls=_LazyGroup,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="chemomet: neoadjuvant chemotherapy, the prometastatic microenvironment and distant metastasis.",
)

TABLE_COLUMNS = (
    ("dmfs_5y", "DMFS 5y", "{:.3f}"),
    ("dmfs_10y", "DMFS 10y", "{:.3f}"),
    ("p_pcr", "pCR", "{:.0f}"),
    ("residual_diameter_mm_at_surgery", "resid. mm", "{:.2f}"),
    ("tmem_ratio_surgery_baseline", "TMEM surg/base", "{:.2f}"),
    ("ctc_expected_surgery", "CTC@surgery", "{:.3g}"),
    ("colonies_founded_after_diagnosis", "colonies post-dx", "{:.3g}"),
    ("colonies_founded_during_chemo", "during NACT", "{:.3g}"),
)


@app.callback()
def _root() -> None:
    """chemomet: simulate, assess and trial accompanying therapies for neoadjuvant chemotherapy."""


def _print_json(obj) -> None:
    typer.echo(json.dumps(json_safe(obj), indent=2, allow_nan=False))


def _check_horizon(horizon_days: float) -> None:
    # any follow-up from one day to 40 years; DMFS columns beyond the horizon are NaN (events at surgery, such as pCR,
    # are reported whatever the horizon)
    if not 1.0 <= horizon_days <= 40 * 365.25:
        raise InputError(f"--horizon-days = {horizon_days!r} is invalid; allowed: 1 to 14610 (unit: days)")


def _grid(horizon_days: float) -> np.ndarray:
    first_year = np.arange(0.0, min(365.0, horizon_days), 1.0)
    later = np.arange(365.0, horizon_days, 14.0)
    return np.unique(np.concatenate([first_year, later, [horizon_days]]))


def _table(rows: list[tuple[str, dict]]) -> str:
    head = f"{'strategy':<20}" + "".join(f"{label:>17}" for _, label, _ in TABLE_COLUMNS)
    lines = [head, "-" * len(head)]
    for name, rec in rows:
        cells = []
        for key, _, fmt in TABLE_COLUMNS:
            v = rec.get(key)
            cells.append(f"{'—' if v is None or not np.isfinite(v) else fmt.format(v):>17}")
        lines.append(f"{name:<20}" + "".join(cells))
    return "\n".join(lines)


TIMING_HELP = (
    "Strategy timing as KEY=VALUE, repeatable: chemo_start_day, surgery_day, adjuvant_delay_days, "
    "surgery_delay_days, interim_day, early_surgery_delay_days (days), accompanying_dose_mg (mg), "
    "accompanying_interval_h (h), accompanying_start_offset_days (days), response_threshold (fraction)."
)


def _population(table: dict):
    """The shipped population with the ``--mechanisms`` table applied, and the record of what was on."""
    from chemomet.mechanisms import describe_mechanisms
    from chemomet.population import Population

    pop = Population().with_mechanisms(table) if table else Population()
    return pop, describe_mechanisms(pop.settings.mechanisms, table)


def _mechanisms_line(record: dict) -> str:
    s = record["strengths"]
    parts = list(record["on"])
    if "priming" in parts:
        parts[parts.index("priming")] = (
            f"priming (π {s['priming_take_increase']:g}, W {s['priming_days_after_last_dose']:g} days)"
        )
    if "mobilisation" in parts:
        nu = ", ".join(f"ν_{t} {v:g}" for t, v in s["mobilisation_per_inhibition"].items())
        nu = f"ν_D {s['mobilisation_per_stress']:g}" + (f", {nu}" if nu else "")
        parts[parts.index("mobilisation")] = f"mobilisation ({nu})"
    return "mechanisms on: " + (", ".join(parts) or "none")


def _simulate_strategies(patient, strategies, regimen, horizon_days, timing, population=None):
    from chemomet.regimens import Strategy
    from chemomet.simulation import simulate

    parsed = [Strategy.parse(s, regimen, timing=timing) for s in strategies]  # validate all before any work
    return [simulate(patient, s, horizon_days, grid=_grid(horizon_days), population=population) for s in parsed]


@functools.cache
def _builtin_app() -> typer.Typer:
    """The commands defined in this module (:data:`BUILTIN_COMMANDS`), on a Typer app of their own, made on first use.

    Their options' defaults and help come from :mod:`chemomet.regimens` and :mod:`chemomet.mechanisms` (pydantic
    models, data files), which are therefore imported only when one of these commands, or the full help, is asked
    for: ``chemomet tmem`` and the other packages' commands do not load them."""
    from chemomet.mechanisms import OPTION_HELP as MECHANISMS_HELP
    from chemomet.regimens import DEFAULT_REGIMEN, Timing

    builtin = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @builtin.command()
    def simulate(
        patient: Path = typer.Argument(..., help="Patient file (.toml or .json)."),
        strategy: list[str] = typer.Option(["nact"], "--strategy", "-s", help="Strategy; repeat to compare."),
        regimen: str = typer.Option(DEFAULT_REGIMEN, "--regimen", "-r", help="Regimen key or .toml file."),
        horizon_days: float = typer.Option(15 * 365.25, "--horizon-days", help="Follow-up horizon (days, 1 to 14610)."),
        json_: bool = typer.Option(False, "--json", help="Print one JSON object."),
        plot: Path | None = typer.Option(None, "--plot", help="Write a PNG comparing the strategies."),
        timing: list[str] = typer.Option([], "--timing", help=TIMING_HELP),
        mechanisms: str | None = typer.Option(None, "--mechanisms", help=MECHANISMS_HELP),
    ) -> None:
        """Simulate one patient (typical-value parameters) under one or more strategies."""
        from chemomet.fileio import check_output_path
        from chemomet.mechanisms import mechanisms_from_option
        from chemomet.patient import read_patient
        from chemomet.plots import plot_strategies

        _check_horizon(horizon_days)
        population, record = _population(mechanisms_from_option(mechanisms))
        if plot is not None:
            check_output_path(plot, (".png",), "--plot")
        p = read_patient(patient)
        outcomes = _simulate_strategies(p, strategy, regimen, horizon_days, Timing.from_text(timing), population)
        if plot is not None:
            shown = printable(p.id).replace("$", r"\$")  # user text: no terminal escapes, no '$...$' mathtext
            plot_strategies(
                outcomes, plot, title=f"patient {shown} ({p.subtype_label}, {p.diameter_mm:g} mm, grade {p.grade})"
            )
        if json_:
            _print_json(
                {
                    "patient": p.model_dump(),
                    "regimen": regimen,
                    "horizon_days": horizon_days,
                    "units": outcomes[0].units,
                    "strategies": {o.strategy: o.to_dict()["patients"][0] for o in outcomes},
                    "mechanisms": record,
                    "plot": None if plot is None else str(plot),
                }
            )
        else:
            typer.echo(_table([(o.strategy, o.to_dict()["patients"][0]) for o in outcomes]))
            if not population.settings.mechanisms.is_default:
                typer.echo(_mechanisms_line(record))
            if plot is not None:
                typer.echo(f"figure written to {plot}")

    @builtin.command()
    def cohort(
        n: int = typer.Option(1000, "--n", help="Number of virtual patients."),
        strategy: str = typer.Option("nact", "--strategy", "-s", help="Strategy."),
        seed: int = typer.Option(0, "--seed", help="Random seed (per-patient streams)."),
        regimen: str = typer.Option(DEFAULT_REGIMEN, "--regimen", "-r", help="Regimen key or .toml file."),
        horizon_days: float = typer.Option(15 * 365.25, "--horizon-days", help="Follow-up horizon (days, 1 to 14610)."),
        out: Path | None = typer.Option(None, "--out", help="Write patient-level results (.parquet or .csv)."),
        json_: bool = typer.Option(False, "--json", help="Print one JSON object."),
        timing: list[str] = typer.Option([], "--timing", help=TIMING_HELP),
        mechanisms: str | None = typer.Option(None, "--mechanisms", help=MECHANISMS_HELP),
    ) -> None:
        """Simulate a virtual cohort drawn from the population model (the shipped calibration) and summarise it."""
        from chemomet.fileio import atomic_write, check_output_path
        from chemomet.mechanisms import mechanisms_from_option
        from chemomet.regimens import Strategy
        from chemomet.simulation import simulate as run

        if not 1 <= n <= 10**8:
            raise InputError(f"--n = {n!r} is invalid; allowed: an integer from 1 to 100000000 (unit: patients)")
        _check_horizon(horizon_days)
        population, record = _population(mechanisms_from_option(mechanisms))
        if out is not None:
            check_output_path(out, (".parquet", ".csv"), "--out")
        st = Strategy.parse(strategy, regimen, timing=Timing.from_text(timing))
        cov, params = population.sample(n, seed)
        show = n >= 50_000 and sys.stderr.isatty()

        def progress(done, total):
            if show:
                typer.echo(f"\r  simulated {done:,}/{total:,} patients", err=True, nl=done == total)

        result = run(params, st, horizon_days, seed=seed, progress=progress, population=population)
        table = result.summary.drop(columns=["patient"])
        if out is not None:
            full = cov.reset_index(drop=True).join(table)
            atomic_write(
                out,
                lambda tmp: full.to_parquet(tmp) if out.suffix == ".parquet" else full.to_csv(tmp, index=False),
            )
        keys = [
            "dmfs_3y",
            "dmfs_5y",
            "dmfs_10y",
            "dmfs_15y",
            "p_pcr",
            "tmem_ratio_surgery_baseline",
            "ctc_expected_baseline",
            "colonies_founded_during_chemo",
        ]
        summary = {
            "strategy": st.name,
            "regimen": None if st.regimen is None else st.regimen.key,
            "n": n,
            "seed": seed,
            "horizon_days": horizon_days,
            "mean": {k: float(np.nanmean(table[k])) if table[k].notna().any() else None for k in keys},
            "ctc_positive_fraction_baseline": float(np.mean(table["ctc_count_baseline"] >= 1)),
            "units": {k: result.units[k] for k in keys},
            "mechanisms": record,
            "out": None if out is None else str(out),
        }
        if json_:
            _print_json(summary)
        else:
            for k, v in summary["mean"].items():
                typer.echo(f"{k:<32} {'—' if v is None else f'{v:.4f}'}")
            typer.echo(f"{'ctc_positive_fraction_baseline':<32} {summary['ctc_positive_fraction_baseline']:.4f}")
            if not population.settings.mechanisms.is_default:
                typer.echo(_mechanisms_line(record))

    @builtin.command("excess-risk")
    def excess_risk(
        n: int = typer.Option(20000, "--n", help="Number of virtual patients."),
        strategy: str = typer.Option("nact", "--strategy", "-s", help="NACT strategy, e.g. nact+rebastinib."),
        regimen: str = typer.Option(DEFAULT_REGIMEN, "--regimen", "-r", help="Regimen key or .toml file."),
        seed: int = typer.Option(0, "--seed", help="Random seed."),
        harm: float = typer.Option(0.02, "--harm", help="Excess risk that counts as harm (probability)."),
        plot: Path | None = typer.Option(None, "--plot", help="Write a PNG of the distribution and its parts."),
        json_: bool = typer.Option(False, "--json", help="Print one JSON object."),
        mechanisms: str | None = typer.Option(None, "--mechanisms", help=MECHANISMS_HELP),
        subgroups: bool = typer.Option(
            False, "--subgroups",
            help="Also NACT vs surgery first and each drug vs NACT by TMEM tertile, morphology, CTC status and subtype "
            "with 90% intervals over the calibration ensemble, under each mechanism setting (off, each on, all; only "
            "the --mechanisms one when given). --n patients per setting: about 10 s per 1,000.",
        ),
        subgroups_plot: Path | None = typer.Option(
            None, "--subgroups-plot", help="Write the subgroup forest plot (PNG)."
        ),
        epsilon_posterior: Path | None = typer.Option(
            None, "--epsilon-posterior",
            help="The JSON of `chemomet calibrate mechanisms`: the subgroups under its fitted stress response (each "
            "ensemble member's epsilon median drawn from the doorway set's posterior with all data) instead of the "
            "prior, and each effect at the posterior's 5th and 95th percentiles (three runs). Needs --subgroups or "
            "--subgroups-plot.",
        ),
    ) -> None:
        """Who is harmed by NACT? The NACT-attributable excess 10-year DM risk in a virtual cohort, split into
        microenvironment, delay and kill-timing parts, and the profile of the harmed subgroup."""
        from chemomet.excess_risk import nact_excess_risk
        from chemomet.fileio import check_output_path
        from chemomet.mechanisms import STANDARD_SETTINGS, mechanisms_from_option
        from chemomet.plots import plot_excess_risk
        from chemomet.regimens import Strategy

        if not 100 <= n <= 10**7:
            raise InputError(f"--n = {n!r} is invalid; allowed: an integer from 100 to 10000000 (unit: patients)")
        if not 0 < harm < 1:
            raise InputError(f"--harm = {harm!r} is invalid; allowed: a number between 0 and 1 (unit: probability)")
        mech_table = mechanisms_from_option(mechanisms)
        population, record = _population(mech_table)
        members, eps_fit = None, None
        if epsilon_posterior is not None:
            from chemomet.subgroups import epsilon_posterior as read_posterior
            from chemomet.subgroups import members_with_epsilon

            if not (subgroups or subgroups_plot is not None):
                raise InputError("--epsilon-posterior is given without --subgroups; allowed: with --subgroups")
            eps_fit = read_posterior(epsilon_posterior)
            members = members_with_epsilon(*eps_fit, seed=seed)
        for path in (plot, subgroups_plot):
            if path is not None:
                check_output_path(path, (".png",), "--plot" if path is plot else "--subgroups-plot")
        st = Strategy.parse(strategy, regimen)
        if st.kind != "nact" or st.interim_day is not None:
            raise InputError(f"--strategy = {strategy!r} is invalid; allowed: nact or nact+<drug>")
        cov, params = population.sample(n, seed)
        try:
            table = nact_excess_risk(params, st, population=population)
        except ValueError as err:  # drug toxicity is not decomposed
            raise InputError(f"--strategy = {strategy!r} with --mechanisms = {mechanisms!r}: {err}") from None
        harmed = table["excess"].to_numpy() > harm
        parts = ["excess", *[c for c in table.columns if c.startswith("part_")]]
        frame = cov.assign(T0=params.T0, epsilon=params.epsilon, chemosensitivity=params.chemosensitivity)

        def profile(mask):
            sub = frame[mask]
            return {
                "patients": int(mask.sum()),
                "mean_diameter_mm": float(sub["diameter_mm"].mean()) if len(sub) else None,
                "mean_tmem_10hpf": float(sub["T0"].mean()) if len(sub) else None,
                "mean_epsilon": float(sub["epsilon"].mean()) if len(sub) else None,
                "mean_chemosensitivity": float(sub["chemosensitivity"].mean()) if len(sub) else None,
                "hr_positive_share": float((sub["er"] | sub["pr"]).mean()) if len(sub) else None,
            }

        summary = {
            "strategy": st.name, "regimen": st.regimen.key, "n": n, "seed": seed, "harm_threshold": harm,
            "mean": {k: float(table[k].mean()) for k in ["dm_surgery_first", "dm_nact", *parts]},
            "harmed_share": float(harmed.mean()),
            "harmed_mean": {k: float(table[k][harmed].mean()) if harmed.any() else None for k in parts},
            "profile_harmed": profile(harmed),
            "profile_others": profile(~harmed),
            "units": "probabilities (10-year distant-metastasis risk)",
            "mechanisms": record,
            "plot": None if plot is None else str(plot),
        }
        sub = None
        if subgroups or subgroups_plot is not None:
            from chemomet.subgroups import plot_subgroups, subgroup_effects

            settings = {"given": mech_table} if mechanisms is not None else dict(STANDARD_SETTINGS)
            show = sys.stderr.isatty() and not json_
            say = (lambda t: typer.echo(f"  subgroups: {t}", err=True)) if show else None
            sub = subgroup_effects(n, seed, settings=settings, regimen=st.regimen.key, members=members, progress=say)
            if eps_fit is not None:  # how far the effects move across the posterior of epsilon
                from chemomet.subgroups import with_epsilon_range

                sub = with_epsilon_range(sub, *eps_fit, n, seed, settings=settings, regimen=st.regimen.key,
                                         progress=say)
            summary["subgroups"] = sub.to_dict(orient="records")
            summary["subgroups_epsilon"] = (
                "prior (the calibration ensemble)" if eps_fit is None
                else {"posterior_median": eps_fit[0], "posterior_sdlog": eps_fit[1], "from": str(epsilon_posterior)}
            )
            summary["subgroups_plot"] = None if subgroups_plot is None else str(subgroups_plot)
            if subgroups_plot is not None:
                plot_subgroups(sub, subgroups_plot, title=f"{st.regimen.name}: {n:,} virtual patients per setting")
        if plot is not None:
            plot_excess_risk(table, plot, title=f"{st.name}, {st.regimen.name}: {n:,} virtual patients")
        if json_:
            _print_json(summary)
            return
        typer.echo(f"{st.name} vs surgery first, {st.regimen.name}; {n:,} virtual patients (calibrated population)")
        typer.echo(f"  {_mechanisms_line(record)}")
        for k, v in summary["mean"].items():
            typer.echo(f"  mean {k:<24} {100 * v:+.2f} percentage points" if k in parts else f"  mean {k:<24} {v:.4f}")
        typer.echo(f"  harmed (excess > {harm:g}): {100 * summary['harmed_share']:.1f}% of patients")
        for k, v in summary["harmed_mean"].items():
            typer.echo(f"    their mean {k:<22} {'—' if v is None else f'{100 * v:+.2f}'} percentage points")
        for label in ("profile_harmed", "profile_others"):
            prof = ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v:.3g}" for k, v in summary[label].items()
                             if v is not None)
            typer.echo(f"  {label.replace('_', ' ')}: {prof}")
        if plot is not None:
            typer.echo(f"figure written to {plot}")
        if sub is not None:
            from chemomet.subgroups import subgroup_text

            typer.echo("")
            if eps_fit is not None:
                typer.echo(f"stress response: epsilon median drawn per ensemble member from the fitted posterior "
                           f"(median {eps_fit[0]:.3g}, SD of log {eps_fit[1]:.3g}; {epsilon_posterior})")
            typer.echo(subgroup_text(sub))
            if subgroups_plot is not None:
                typer.echo(f"subgroup figure written to {subgroups_plot}")

    return builtin


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``chemomet`` console script."""
    try:  # typer >= 0.2x carries its own copy of click
        from typer._click import exceptions as cx
    except ImportError:  # pragma: no cover - older typer uses click itself
        from click import exceptions as cx

    try:
        rv = app(args=argv, standalone_mode=False)
    except InputError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)
    except cx.ClickException as err:
        if not isinstance(err, getattr(cx, "NoArgsIsHelpError", ())):  # (no arguments: the help is shown already)
            ctx = getattr(err, "ctx", None)  # a bad option or argument: one line too, not a usage box
            hint = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
            typer.echo(f"error: {InputError(err.format_message())}{hint}", err=True)
        sys.exit(err.exit_code)
    except typer.Abort:
        typer.echo("Aborted!", err=True)
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) and not isinstance(rv, bool) else 0)


if __name__ == "__main__":
    main()
