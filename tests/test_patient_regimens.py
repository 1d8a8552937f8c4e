"""Patients, drugs, regimens and strategies load and validate as documented."""

import json

import numpy as np
import pytest

import chemomet as cm
from chemomet.errors import InputError
from chemomet.regimens import Strategy, load_drugs, load_regimens


def test_every_shipped_number_has_a_source():
    for name, drug in load_drugs().items():
        given = {k for k in drug.model_fields_set if isinstance(getattr(drug, k), int | float)}
        assert given, name
        for key in given:
            assert key in drug.sources, f"{name}.{key} has no source"
    for regimen in load_regimens().values():
        assert regimen.source


def test_required_regimens_and_drugs_are_shipped():
    regimens = load_regimens()
    for key in (
        "ac-paclitaxel-weekly",
        "ac-paclitaxel-q3w",
        "ddac-paclitaxel-q2w",
        "tc",
        "paclitaxel-carboplatin-ac",
    ):
        assert key in regimens
    drugs = load_drugs()
    assert {drugs[d].target for d in ("rebastinib", "pexidartinib", "plerixafor")} == {
        "TIE2",
        "CSF1R",
        "CXCR4",
    }


def test_weekly_regimen_schedule():
    events = load_regimens()["ac-paclitaxel-weekly"].dose_events(14.0)
    dox = [t for t, n, _ in events if n == "doxorubicin"]
    pac = [t for t, n, _ in events if n == "paclitaxel"]
    assert dox == [14, 35, 56, 77] and pac == [98 + 7 * i for i in range(12)]
    assert dict((n, d) for _, n, d in events)["paclitaxel"] == pytest.approx(80 * 1.8)


def test_carboplatin_dose_by_calvert():
    events = load_regimens()["paclitaxel-carboplatin-ac"].dose_events(0.0)
    carbo = [(t, d) for t, n, d in events if n == "carboplatin"]
    assert [t for t, _ in carbo] == [0, 21, 42, 63]
    assert carbo[0][1] == pytest.approx(6 * (100 + 25))


def test_strategies_and_timing():
    nact = Strategy.parse("nact+rebastinib").schedule()
    assert nact.neoadjuvant and nact.surgery_day == pytest.approx(14 + 161 + 28)
    reb = [t for t, n, _ in nact.dose_events if n == "rebastinib"]
    assert reb[0] == 14 and reb[-1] < nact.surgery_day and np.allclose(np.diff(reb), 0.5)
    sf = Strategy.parse("surgery-first", surgery_day=28, adjuvant_delay_days=35).schedule()
    assert sf.surgery_day == 28 and sf.chemo_days[0] == 63
    assert Strategy.parse("natural-history").schedule().dose_events == ()
    with pytest.raises(InputError):
        Strategy.parse("nact", surgery_delay_days=0)


def test_patient_from_json_and_toml_agree(tmp_path):
    p = cm.example_patient()
    path = tmp_path / "p.json"
    path.write_text(json.dumps(p.model_dump(mode="json")))
    assert cm.read_patient(path) == p
    assert p.subtype == "HR+/HER2-"
