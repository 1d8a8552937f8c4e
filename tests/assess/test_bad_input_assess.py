"""Bad and partial input to `chemomet assess`: exit code 2, one clear line, no output file."""

from pathlib import Path

import pytest

from chemomet.cli import main

CORPUS = Path(__file__).parents[1] / "corpus"
EXAMPLE = Path(__file__).parents[2] / "src" / "chemomet" / "data" / "examples" / "patient.toml"

# file -> the field the one-line message must name
ASSESS_CORPUS = {
    "tmem_40hpf.toml": "tmem_convention",
    "tmem_convention_lowercase.toml": "tmem_convention",
    "tmem_convention_without_score.toml": "tmem_convention",
    "tmem_as_text.toml": "tmem_score",
    "tmem_over_1000.toml": "tmem_score",
    "tmem_nan.json": "tmem_score",
    "tmem_after_nact_negative.toml": "tmem_score_after_nact",
    "tmem_after_nact_without_convention.toml": "tmem_convention",
    "ctc_per_ml_fraction.toml": "ctc_count",
    "ctc_too_many.toml": "ctc_count",
    "ki67_negative.toml": "ki67_percent",
    "ki67_as_fraction_text.toml": "ki67_percent",
    "subtype_contradicts_receptors.toml": "subtype",
    "subtype_unknown.toml": "subtype",
    "her2_equivocal.toml": "her2",
    "diameters_day_zero.toml": "nact_diameters[0].day",
    "diameters_not_increasing.toml": "nact_diameters",
    "diameters_negative.toml": "nact_diameters[0].diameter_mm",
    "diameters_missing_day.toml": "nact_diameters[0].day is missing",
    "diameters_in_cm_text.toml": "nact_diameters[0].diameter_mm",
    "diameters_extra_key.toml": "nact_diameters[0].modality",
    "diameters_after_surgery.toml": "nact_diameters day",
    "diameters_not_a_list.toml": "nact_diameters",
    "morphology_number.toml": "morphology",
    "nodes_impossible_with_fixed_mu_zero.toml": "measurements are impossible",  # a CTC count is not: background
    "diameters_after_last_dose.toml": "nact_diameters day",
}

OPTIONS = {
    ("--set", "decision.excess_risk=2"): "decision.excess_risk",
    ("--set", "decision.unknown=1"): "decision.unknown",
    ("--set", "sampling.n_twins"): "--set",
    ("--set", "sampling.n_twins=10"): "sampling.n_twins",
    ("--regimen", "folfox"): "folfox",
    ("--strategy", "chemo-only"): "chemo-only",
    ("--strategy", "nact+aspirin"): "aspirin",
}


def run_cli(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


def assert_one_line(code, out, err, must_name):
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and out == ""
    assert must_name in lines[0] and ("allowed" in lines[0] or "required" in lines[0]), lines[0]


def test_corpus_has_at_least_20_files_and_all_are_listed():
    files = sorted(p.name for p in (CORPUS / "assess").iterdir())
    assert len(files) >= 20 and files == sorted(ASSESS_CORPUS)


@pytest.mark.parametrize("name", sorted(ASSESS_CORPUS))
def test_bad_patient_file_gives_exit_2_one_line_and_no_report(name, tmp_path, capsys):
    report = tmp_path / "r.html"
    code, out, err = run_cli(["assess", str(CORPUS / "assess" / name), "--report", str(report)], capsys)
    assert_one_line(code, out, err, ASSESS_CORPUS[name])
    assert not report.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", sorted(p.name for p in (CORPUS / "patients").iterdir()))
def test_the_patient_corpus_is_refused_by_assess_too(name, capsys):
    code, out, err = run_cli(["assess", str(CORPUS / "patients" / name)], capsys)
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_bad_options_give_exit_2_and_one_line(option, tmp_path, capsys):
    report = tmp_path / "r.html"
    code, out, err = run_cli(["assess", str(EXAMPLE), *option, "--report", str(report)], capsys)
    assert_one_line(code, out, err, OPTIONS[option])
    assert not report.exists()


def test_report_with_a_wrong_suffix_is_refused(tmp_path, capsys):
    code, out, err = run_cli(["assess", str(EXAMPLE), "--report", str(tmp_path / "r.pdf")], capsys)
    assert_one_line(code, out, err, "--report")
