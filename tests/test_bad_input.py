"""Bad input: every malformed patient or regimen file gives exit code 2 and one clear line, and no output."""

from pathlib import Path

import pytest

from chemomet.cli import main

CORPUS = Path(__file__).parent / "corpus"
EXAMPLE = Path(__file__).parents[1] / "src" / "chemomet" / "data" / "examples" / "patient.toml"

# file -> (the field the message must name, its unit or None)
PATIENTS = {
    "missing_age.toml": ("age", "years"),
    "negative_diameter.toml": ("diameter_mm", "mm"),
    "diameter_with_unit_text.toml": ("diameter_mm", "mm"),
    "diameter_in_micrometres.toml": ("diameter_mm", "mm"),
    "grade_4.toml": ("grade", None),
    "grade_fraction.toml": ("grade", None),
    "er_yes.toml": ("er", None),
    "ki67_over_100.toml": ("ki67_percent", "%"),
    "nodes_negative.toml": ("nodes_positive", "lymph nodes"),
    "tmem_without_convention.toml": ("tmem_convention", None),
    "tmem_bad_convention.toml": ("tmem_convention", None),
    "tmem_negative.toml": ("tmem_score", "doorways per 10 or 20 HPF"),
    "morphology_unknown.toml": ("morphology", None),
    "unknown_field.toml": ("weight_kg", None),
    "parameter_unknown.toml": ("parameters.growth_speed", None),
    "parameter_negative_mu.toml": ("parameters.mu", "colonies per cell^gamma per day"),
    "parameter_mixed_growth.toml": ("parameters.alpha_per_day", None),
    "parameter_plateau_below_tumour.toml": ("parameters.plateau_cells", "cells"),
    "parameter_alpha_without_beta.toml": ("parameters.beta_per_day", "1/day"),
    "broken_syntax.toml": ("broken_syntax.toml", None),
    "bsa_in_cm2.toml": ("bsa_m2", "m2"),
    "ctc_negative.json": ("ctc_count", "cells per 7.5 mL"),
    "ctc_fraction.json": ("ctc_count", "cells per 7.5 mL"),
    "age_as_words.json": ("age", "years"),
    "empty.json": ("age", "years"),
    "list_not_table.json": ("list_not_table.json", None),
    "wrong_suffix.txt": ("wrong_suffix.txt", None),
    "diameters_after_last_dose.toml": ("nact_diameters", "days"),  # simulate refuses them as assess does
}

REGIMENS = {
    "unknown_drug.toml": ("drug", None),
    "zero_cycles.toml": ("cycles", "cycles"),
    "negative_interval.toml": ("interval_days", "days"),
    "auc_for_paclitaxel.toml": ("dose_auc", "mg*min/mL"),
    "no_phases.toml": ("phases", None),
    "two_dose_units.toml": ("dose_mg_m2, dose_auc, dose_mg", None),
    "dose_as_text.toml": ("dose_mg_m2", "mg/m2"),
    "dose_in_grams.toml": ("dose_mg_m2", "mg/m2"),
    "missing_source.toml": ("source", None),
    "interval_in_hours.toml": ("interval_days", "days"),
    "accompanying_as_cytotoxic.toml": ("drug", None),
    "too_long.toml": ("phases", "days"),
}


def run_cli(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


def assert_one_clear_line(code, out, err, field, unit, value_hint=True):
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    line = lines[0]
    assert "Traceback" not in err and out == ""
    assert field in line
    assert ("allowed" in line) or ("required" in line)
    if unit is not None:
        assert f"unit: {unit}" in line


def test_corpus_is_large_enough():
    assert len(PATIENTS) + len(REGIMENS) >= 20
    assert sorted(PATIENTS) == sorted(p.name for p in (CORPUS / "patients").iterdir())
    assert sorted(REGIMENS) == sorted(p.name for p in (CORPUS / "regimens").iterdir())


@pytest.mark.parametrize("name", sorted(PATIENTS))
def test_bad_patient_file(name, tmp_path, capsys):
    plot = tmp_path / "out.png"
    code, out, err = run_cli(
        ["simulate", str(CORPUS / "patients" / name), "--json", "--plot", str(plot)], capsys
    )
    field, unit = PATIENTS[name]
    assert_one_clear_line(code, out, err, field, unit)
    assert not plot.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", sorted(REGIMENS))
def test_bad_regimen_file(name, tmp_path, capsys):
    plot = tmp_path / "out.png"
    argv = ["simulate", str(EXAMPLE), "--regimen", str(CORPUS / "regimens" / name), "--plot", str(plot)]
    code, out, err = run_cli(argv, capsys)
    field, unit = REGIMENS[name]
    assert_one_clear_line(code, out, err, field, unit)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "argv, field",
    [
        (["simulate", str(EXAMPLE), "--strategy", "nact+aspirin"], "aspirin"),
        (["simulate", str(EXAMPLE), "--strategy", "chemo-only"], "strategy"),
        (["simulate", str(EXAMPLE), "--regimen", "folfox"], "regimen"),
        (["simulate", str(EXAMPLE), "--horizon-days", "-5"], "--horizon-days"),
        (["simulate", "does-not-exist.toml"], "does-not-exist.toml"),
        (["cohort", "--n", "0"], "--n"),
        (["simulate", str(EXAMPLE), "--plot", "/no/such/folder/x.png"], "--plot"),
        (["simulate", str(EXAMPLE), "--plot", "figure.jpg"], "--plot"),
        (["excess-risk", "--n", "5"], "--n"),
        (["excess-risk", "--strategy", "surgery-first"], "--strategy"),
        (["excess-risk", "--harm", "2"], "--harm"),
        (["excess-risk", "--plot", "x.svg"], "--plot"),
    ],
)
def test_bad_options(argv, field, capsys):
    code, out, err = run_cli(argv, capsys)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and field in lines[0] and "Traceback" not in err


def test_one_subprocess_run_has_no_traceback(tmp_path):
    """The installed console script itself: exit code 2, one line, nothing written."""
    import subprocess
    import sys

    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "chemomet.cli",
            "simulate",
            str(CORPUS / "patients" / "negative_diameter.toml"),
            "--plot",
            str(tmp_path / "x.png"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1 and "diameter_mm" in res.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "timing, field",
    [
        ("surgery_delay=4", "--timing"),
        ("surgery_delay_days=-4", "surgery_delay_days"),
        ("accompanying_start_offset_days=-7", "accompanying_start_offset_days"),
        ("chemo_start_day=abc", "chemo_start_day"),
        ("accompanying_interval_h=0.1", "interval"),
    ],
)
def test_bad_timing(timing, field, capsys):
    argv = ["simulate", str(EXAMPLE), "-s", "nact+rebastinib", "--timing", timing]
    code, out, err = run_cli(argv, capsys)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and field in lines[0] and "allowed" in lines[0]
