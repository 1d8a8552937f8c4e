"""The patient form: every field with its unit and range, the same rules as patient files, errors inline."""

from __future__ import annotations

import json
import re

import pytest
from markupsafe import escape

from chemomet.errors import InputError
from chemomet.patient import FIELD_RULES, PARAMETER_RULES, Patient, example_patient, patient_from_dict
from chemomet.web.app import create_app
from chemomet.web.forms import PATIENT_FIELDS, data_to_form, form_to_data, validate_patient
from tests.web.helpers import PATIENT, client


def _error_in_row(html: str, row: str, error_id: str) -> str:
    """The inline message of ``error_id``, which must sit in the table row ``row`` (beside its input)."""
    m = re.search(rf'<tr[^>]*id="{row}".*?</tr>', html, re.S)
    assert m, f"no row {row}"
    e = re.search(rf'id="{error_id}"[^>]*>([^<]*)<', m.group(0))
    assert e, f"no inline error {error_id} in row {row}"
    return e.group(1)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return create_app(tmp_path_factory.mktemp("forms") / "s.sqlite")


def test_every_patient_field_is_on_the_form_with_its_unit_and_range(app):
    with client(app) as c:
        page = c.get("/patient").text
    shown = {f.name for f in PATIENT_FIELDS} | {"nact_diameters", "parameters"}
    assert shown == set(Patient.model_fields) == set(FIELD_RULES)
    for f in PATIENT_FIELDS:
        assert f'name="{f.name}"' in page
        row = re.search(rf'<tr[^>]*id="row-{f.name}".*?</tr>', page, re.S).group(0)
        assert str(escape(f.allowed)) in row
        if f.unit:
            assert f.unit in row
    for name, (_, _, unit) in PARAMETER_RULES.items():
        assert f'name="param_{name}"' in page and unit in page
    assert 'name="nact_day_0"' in page and 'name="nact_diameter_mm_0"' in page


def test_a_valid_form_gives_the_same_patient_as_a_file():
    data = data_to_form(example_patient().model_dump(mode="json", exclude={"subtype"}))
    lists = {k: (v if isinstance(v, list) else [v]) for k, v in data.items()}
    patient, errors = validate_patient(form_to_data(lists))
    assert errors == {}
    assert patient == example_patient()


@pytest.mark.parametrize("data", [
    {"age": 12, "diameter_mm": 20, "er": "positive"},
    {"age": 50, "diameter_mm": 20, "er": "positive", "grade": 4},
    {"age": 50, "diameter_mm": 20, "er": "positive", "tmem_score": 10},
    {"age": 50, "diameter_mm": 20, "er": "positive", "parameters": {"mu": 5}},
    {"age": 50, "diameter_mm": 20, "er": "positive", "nact_diameters": [{"day": 0, "diameter_mm": 10}]},
    {"age": 50, "diameter_mm": 20, "er": "positive", "ki67_percent": "abc"},
    {"age": 50, "er": "positive"},
])
def test_the_form_reports_what_a_patient_file_would(data):
    """The first message of the form is the message of the file (same model, same rule text)."""
    with pytest.raises(InputError) as err:
        patient_from_dict(data)
    _, errors = validate_patient(data)
    assert str(err.value).removeprefix("patient: ") in errors.values()


def test_bad_values_show_inline_errors_beside_their_fields_and_no_assessment(app):
    bad = {**PATIENT, "age": "12", "diameter_mm": "250", "ctc_count": "2.5", "param_mu": "5",
           "nact_day_0": "0", "nact_diameter_mm_0": "10"}
    with client(app) as c:
        r = c.post("/assess", data=bad, follow_redirects=False)
        assert r.status_code == 422 and "location" not in r.headers
        html = r.text
        age_rule = FIELD_RULES["age"][0]
        assert _error_in_row(html, "row-age", "error-age") == f"age = 12 is invalid; allowed: {age_rule} (unit: years)"
        allowed = f"allowed: {FIELD_RULES['diameter_mm'][0]} (unit: mm)"
        assert str(escape(allowed)) in _error_in_row(html, "row-diameter_mm", "error-diameter_mm")
        assert "ctc_count = 2.5 is invalid" in _error_in_row(html, "row-ctc_count", "error-ctc_count")
        assert 'id="error-parameters-mu"' in html and 'id="error-nact_diameters-0-day"' in html
        assert 'aria-invalid="true" aria-describedby="error-age"' in html
        assert 'value="12"' in html and 'value="250"' in html  # what was typed stays in the form
        assert 'id="error-summary"' in html
        # a consistency rule: a TMEM score needs its convention
        r = c.post("/assess", data={**PATIENT, "tmem_convention": ""})
        assert r.status_code == 422
        assert "given together with tmem_score" in _error_in_row(r.text, "row-tmem_convention",
                                                                 "error-tmem_convention")
        assert c.get("/studies/export.json").json() == []  # nothing was assessed or recorded


def test_a_patient_file_can_be_uploaded_or_pasted_into_the_form(app):
    toml = 'id = "from-file"\nage = 61\ndiameter_mm = 31.5\ngrade = 2\ner = "negative"\npr = "negative"\n' \
           'her2 = "positive"\nmorphology = ["solid"]\nnact_diameters = [{day = 21, diameter_mm = 25}]\n'
    with client(app) as c:
        r = c.post("/patient/load", files={"patient_file": ("p.toml", toml.encode(), "application/toml")})
        assert r.status_code == 200, r.text
        assert 'value="from-file"' in r.text and 'value="31.5"' in r.text and 'value="21"' in r.text
        assert re.search(r'value="solid" checked', r.text)
        pasted = json.dumps({"age": 55, "diameter_mm": 18, "er": "positive", "tmem_score": 12,
                             "tmem_convention": "20HPF"})
        r = c.post("/patient/load", data={"patient_text": pasted})
        assert r.status_code == 200 and 'value="55"' in r.text
        assert re.search(r'<option value="20HPF" selected', r.text)
        # a file with a bad value is loaded with the error beside its field; an unknown field is named
        r = c.post("/patient/load", data={"patient_text": "age = 150\ndiameter_mm = 20\ner = 'positive'\n"})
        assert r.status_code == 422 and "age = 150 is invalid" in _error_in_row(r.text, "row-age", "error-age")
        r = c.post("/patient/load", data={"patient_text": "age = 50\nweight = 3\n"})
        assert r.status_code == 422 and "weight" in r.text
        r = c.post("/patient/load", files={"patient_file": ("p.exe", b"MZ", "application/octet-stream")})
        assert r.status_code == 422 and "allowed: .toml or .json" in r.text
        r = c.post("/patient/load", data={"patient_text": "age = = 50"})
        assert r.status_code == 422 and 'id="error-_form"' in r.text


def test_the_default_regimen_is_the_standard_for_the_subtype(tmp_path):
    """The form's default regimen choice follows the subtype: a HER2-positive patient is assessed (and recorded)
    with trastuzumab and pertuzumab, as `chemomet assess` does without --regimen."""
    from chemomet.web.app import create_app
    from chemomet.web.store import StudyStore
    from tests.web.helpers import FAST, PATIENT, client, wait_job

    app = create_app(tmp_path / "s.sqlite", settings_overrides=FAST, workers=1)
    with client(app) as c:
        assert 'value="standard" selected' in c.get("/patient").text
        r = c.post("/assess", data={**PATIENT, "her2": "positive"}, follow_redirects=False)
        assert r.status_code == 303, r.text
        assert wait_job(c, r.headers["location"])["state"] == "done"
    rec = StudyStore(tmp_path / "s.sqlite").records()[0]
    assert rec.inputs["regimen"] == "ac-paclitaxel-weekly-trastuzumab-pertuzumab"
    assert rec.outputs["settings"]["regimen"] == rec.inputs["regimen"]
