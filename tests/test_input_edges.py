"""The number and format edges of every input kind (issue 15): tiny and huge numbers refused with one line naming
the field, the value, the range and the unit; long ids capped; trial spec sections of the wrong TOML type named
as such; a UTF-8 byte-order mark accepted in every file type chemomet reads."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from chemomet.cli import main
from chemomet.errors import InputError

ROOT = Path(__file__).parents[1]
SPEC_FILE = ROOT / "examples" / "trials" / "nact_vs_rebastinib_allcomers.toml"
CELLS = Path(__file__).parent / "tme" / "corpus" / "good.csv"
BOM = b"\xef\xbb\xbf"

PATIENT = {"age": 50, "diameter_mm": 20, "grade": 2, "er": "positive", "pr": "positive", "her2": "negative"}
REGIMEN = """name = "paclitaxel weekly x12"
source = "example"
[[phases]]
drugs = [{drug = "paclitaxel", dose_mg_m2 = 80}]
cycles = 12
interval_days = 7
"""
SPEC = {
    "name": "edges",
    "patients_per_arm": 40,
    "arms": [{"name": "NACT", "strategy": "nact"}, {"name": "NACT + rebastinib", "strategy": "nact+rebastinib"}],
}


def _one_line(capsys, argv) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    captured = capsys.readouterr()
    lines = [ln for ln in captured.err.splitlines() if ln.strip()]
    assert info.value.code == 2 and len(lines) == 1 and captured.out == "", captured.err
    assert lines[0].startswith("error: ") and "Traceback" not in captured.err
    return lines[0]


def _refused(call, *expected: str) -> str:
    with pytest.raises(InputError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and "Input should be" not in message, message
    for part in expected:
        assert part in message, (part, message)
    return message


# ---------------------------------------------------------------------------------- 1. degenerate tiny and huge numbers


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"diameter_mm": 5e-324}, ["diameter_mm = 5e-324", "from 0.1 to 200", "(unit: mm)"]),
        ({"diameter_mm": 1e-300}, ["diameter_mm = 1e-300", "from 0.1 to 200", "(unit: mm)"]),
        ({"diameter_mm": 0.05}, ["diameter_mm = 0.05", "from 0.1 to 200"]),
        ({"nact_diameters": [{"day": 21, "diameter_mm": 1e-300}]},
         ["nact_diameters[0].diameter_mm = 1e-300", "0 (not measurable) or 0.1-200", "days, mm"]),
        ({"parameters": {"chemosensitivity": 5e-324}}, ["parameters.chemosensitivity = 5e-324", "> 0.0001"]),
        ({"parameters": {"T0": 1e-300}}, ["parameters.T0 = 1e-300", "> 0.01 and <= 1000", "doorways per 10 HPF"]),
        ({"parameters": {"alpha_per_day": 5e-324, "beta_per_day": 1e-9}},
         ["parameters.alpha_per_day = 5e-324", "> 1e-06 and <= 1", "(unit: 1/day)"]),
        ({"parameters": {"alpha_per_day": 0.5, "beta_per_day": 2e-8}},  # ln(plateau) = 2.5e7: a plateau of e^(2.5e7)
         ["parameters.alpha_per_day = 0.5", "at most ln(1e15)", "(unit: 1/day)"]),
    ],
)
def test_degenerate_patient_numbers_are_refused(tmp_path, capsys, changes, expected):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({**PATIENT, **changes}), encoding="utf-8")
    line = _one_line(capsys, ["simulate", str(path), "--json"])
    for part in ["p.json", *expected]:
        assert part in line, (part, line)


def test_the_smallest_physical_values_are_still_accepted():
    from chemomet.patient import patient_from_dict

    p = patient_from_dict({**PATIENT, "diameter_mm": 0.1, "nact_diameters": [{"day": 21, "diameter_mm": 0},
                                                                            {"day": 42, "diameter_mm": 0.1}],
                           "parameters": {"T0": 0.011, "chemosensitivity": 0.001}})
    assert p.diameter_mm == 0.1 and p.nact_diameters[0].diameter_mm == 0.0


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("interval_days", 1e-300, "phases.0.interval_days = 1e-300 is invalid; allowed: a number from 0.1 to 90"),
        ("dose_mg_m2", 5e-324, "dose_mg_m2 = 5e-324 is invalid; allowed: a number from 0.001 to 5000 (unit: mg/m2)"),
    ],
)
def test_degenerate_regimen_numbers_are_refused(tmp_path, field, value, expected):
    from chemomet.regimens import read_regimen_file

    path = tmp_path / "pac.toml"
    text = REGIMEN.replace("interval_days = 7", f"interval_days = {value!r}") if field == "interval_days" else (
        REGIMEN.replace("dose_mg_m2 = 80", f"dose_mg_m2 = {value!r}"))
    path.write_text(text, encoding="utf-8")
    _refused(lambda: read_regimen_file(path), "pac.toml", expected)


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("half_life_h", 1e-300, "from 0.01 to 720 (unit: h)"),
        ("volume_l", 1e308, "from 0.1 to 100000 (unit: L)"),
        ("volume_l", 5e-324, "from 0.1 to 100000 (unit: L)"),
        ("ka_per_h", 1e-300, "from 0.001 to 100"),
        ("ic50_mg_per_l", 5e-324, "from 1e-06 to 10000 (unit: mg/L)"),
        ("default_interval_h", 1e-9, "from 1 to 672 (unit: h)"),
        ("default_dose_mg", 1e300, "from 0.001 to 10000 (unit: mg)"),
    ],
)
def test_degenerate_drug_numbers_are_refused(field, value, expected):
    from chemomet.regimens import parse_drugs

    drug = {"role": "accompanying", "route": "oral", "half_life_h": 12.0, "volume_l": 300.0, "ka_per_h": 1.0,
            "target": "TIE2", "ic50_mg_per_l": 0.002, "imax": 0.9}
    _refused(lambda: parse_drugs({"mytki": {**drug, field: value}}), f"{field} = {value!r}", expected)


@pytest.mark.parametrize(
    "section, values, expected",
    [
        ("analysis", {"alpha": 5e-324}, "analysis.alpha = 5e-324 is invalid; allowed: a number >= 1e-06 and < 0.5"),
        ("analysis", {"rmst_days": 1e-300}, "analysis.rmst_days = 1e-300 is invalid; allowed: a number from 1 to"),
        ("analysis", {"landmarks_years": [math.inf]}, "a list of numbers from 0.01 to 40 (unit: years)"),
        ("analysis", {"landmarks_years": [1e-300]}, "a list of numbers from 0.01 to 40 (unit: years)"),
        ("follow_up", {"duration_days": 1e-9}, "follow_up.duration_days = 1e-09 is invalid; allowed: 0, or a number "
                                                "from 1 to 10957.5"),
        ("accrual", {"duration_days": 1e9}, "accrual.duration_days = 1000000000.0 is invalid; allowed: a number from "
                                             "0 to 7305"),
        ("eligibility", {"diameter_max_mm": 1e-300}, "eligibility.diameter_max_mm = 1e-300 is invalid; allowed: a "
                                                      "number from 0.1 to 200"),
        ("biomarkers", {"tmem_high_min_10hpf": 5e-324}, "from 0.1 to 1000 (unit: doorways per 10 HPF)"),
    ],
)
def test_degenerate_spec_numbers_are_refused(section, values, expected):
    from chemomet.trial.spec import parse_trial_spec

    _refused(lambda: parse_trial_spec({**SPEC, section: values}), expected)


def test_a_degenerate_accompanying_dose_and_horizon_are_refused():
    from chemomet.trial.spec import parse_trial_spec

    arms = [SPEC["arms"][0], {**SPEC["arms"][1], "accompanying_dose_mg": 5e-324}]
    _refused(lambda: parse_trial_spec({**SPEC, "arms": arms}),
             "arms.1.accompanying_dose_mg = 5e-324", "from 0.001 to 10000 (unit: mg)")
    _refused(lambda: parse_trial_spec({**SPEC, "accrual": {"duration_days": 0.5}, "follow_up": {"duration_days": 0}}),
             "accrual.duration_days + follow_up.duration_days = 0.5", ">= 1 for time-to-event endpoints")


# ----------------------------------------------------------------------------------------------- 2. long patient ids


def test_a_long_patient_id_is_capped_in_the_message(tmp_path, capsys):
    path = tmp_path / "p.json"
    pid = "\x1b[31m" + "p" * 20_000
    path.write_text(json.dumps({**PATIENT, "id": pid, "nact_diameters": [{"day": 300, "diameter_mm": 12}]}),
                    encoding="utf-8")
    line = _one_line(capsys, ["simulate", str(path), "--json"])
    assert "nact_diameters day = 300 is invalid" in line and "(unit: days)" in line
    assert len(line) < 400 and "…" in line and "\\x1b[31m" in line and "\x1b" not in line, len(line)


# ---------------------------------------------------------------------- 3. trial spec sections of the wrong TOML type


@pytest.mark.parametrize(
    "toml, expected",
    [
        ("eligibility = 3\n", "eligibility = 3 is an integer; allowed: a table [eligibility] of its fields"),
        ('analysis = "logrank"\n', "analysis = 'logrank' is a text; allowed: a table [analysis]"),
        ("follow_up = [1826]\n", "follow_up = [1826] is a list; allowed: a table [follow_up]"),
        ("power = true\n", "power = True is a boolean (true or false); allowed: a table [power]"),
        ("[[eligibility]]\ngrades = [3]\n", "eligibility = [{'grades': [3]}] is a list; allowed: a table [eligibility"),
    ],
)
def test_a_section_of_the_wrong_type_is_named(tmp_path, capsys, toml, expected):
    path = tmp_path / "spec.toml"
    path.write_text(f'name = "s"\npatients_per_arm = 40\n{toml}'
                    '[[arms]]\nname = "A"\nstrategy = "nact"\n[[arms]]\nname = "B"\nstrategy = "nact+rebastinib"\n',
                    encoding="utf-8")
    line = _one_line(capsys, ["trial", str(path), "--out", str(tmp_path / "run")])
    assert f"spec.toml: {expected}" in line, line
    assert not (tmp_path / "run").exists()


def test_arms_written_as_one_table_is_named(tmp_path, capsys):
    path = tmp_path / "spec.toml"
    path.write_text('name = "s"\npatients_per_arm = 40\n[arms]\nname = "A"\nstrategy = "nact"\n', encoding="utf-8")
    line = _one_line(capsys, ["trial", str(path), "--out", str(tmp_path / "run")])
    assert "spec.toml: arms is a single table [arms]; allowed: a list of at least 2 [[arms]] tables" in line
    assert "double brackets" in line


# ------------------------------------------------------------------------------------------- 4. a byte-order mark


def test_a_bom_is_accepted_in_patient_files(tmp_path):
    from chemomet.patient import read_patient

    for suffix, text in ((".json", json.dumps(PATIENT)), (".toml", "\n".join(
            f"{k} = {json.dumps(v)}" for k, v in PATIENT.items()))):
        plain, marked = tmp_path / f"plain{suffix}", tmp_path / f"marked{suffix}"
        plain.write_text(text, encoding="utf-8")
        marked.write_bytes(BOM + text.encode("utf-8"))
        assert read_patient(marked).model_copy(update={"id": "x"}) == read_patient(plain).model_copy(update={"id": "x"})


def test_a_bom_is_accepted_in_regimen_drug_and_spec_files(tmp_path):
    from chemomet.regimens import read_drug_file, read_regimen_file
    from chemomet.trial.spec import read_trial_spec

    (tmp_path / "pac.toml").write_bytes(BOM + REGIMEN.encode())
    assert read_regimen_file(tmp_path / "pac.toml").last_dose_day == 77.0
    (tmp_path / "drugs.toml").write_bytes(BOM + b'[drugs.mytki]\nrole = "accompanying"\nroute = "iv"\nhalf_life_h = 8.0'
                                          b'\nvolume_l = 50.0\ntarget = "TIE2"\nic50_mg_per_l = 0.01\nimax = 0.5\n')
    assert read_drug_file(tmp_path / "drugs.toml")["mytki"].acts_on == "doorway_activity"
    spec = tmp_path / "spec.toml"
    spec.write_bytes(BOM + SPEC_FILE.read_bytes())
    assert read_trial_spec(spec).spec_hash() == read_trial_spec(SPEC_FILE).spec_hash()


def test_a_bom_in_a_patient_file_on_the_command_line(tmp_path, capsys):
    path = tmp_path / "p.json"
    path.write_bytes(BOM + json.dumps({**PATIENT, "age": 12}).encode())
    line = _one_line(capsys, ["simulate", str(path)])  # the BOM is gone: the error is about the field, not syntax
    assert "age = 12 is invalid" in line and "BOM" not in line


def test_a_bom_is_accepted_in_a_cell_table(tmp_path, capsys):
    marked = tmp_path / "cells.csv"
    marked.write_bytes(BOM + CELLS.read_bytes())
    results = []
    for path in (CELLS, marked):
        with pytest.raises(SystemExit) as info:
            main(["tmem", str(path), "--json"])
        captured = capsys.readouterr()
        assert info.value.code in (0, None), captured.err
        results.append(json.loads(captured.out))
    for r in results:
        r.pop("source")
    assert results[0] == results[1]
