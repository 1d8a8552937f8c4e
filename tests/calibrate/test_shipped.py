"""The shipped calibration: files, provenance, the calibrated Population, and `chemomet calibrate report`."""

import json

import numpy as np
import pandas as pd
import pytest

from chemomet.calibrate import calibrated_population, load_ensemble, load_report
from chemomet.calibrate.ensemble import config_from_vector
from chemomet.calibrate.shipped import calibrated_config
from chemomet.cli import main


def test_files_and_provenance():
    cfg = calibrated_config()
    for part in ("natural_history", "targets"):
        prov = cfg["provenance"][part]
        assert {"data", "method", "software", "date"} <= set(prov)
    ens = load_ensemble()
    assert ens["values"].shape[0] >= 100
    assert ens["values"].shape[1] == len(ens["names"])
    assert np.all(np.isfinite(ens["values"]))


def test_calibrated_population_builds_parameters():
    pop = calibrated_population()
    cov, params = pop.sample(200, rng=1)
    assert params.n == 200 and np.all(params.mu > 0)
    cfg = calibrated_config()
    ens = load_ensemble()
    for row in ens["values"][:3]:
        c = config_from_vector(cfg, list(ens["names"]), row)
        assert c["dissemination"]["mu_median_per_cell_day"] > 0


def test_report_has_targets_and_c_indices():
    rep = load_report()
    cv = rep["natural_history"]["cross_validation"]
    assert 0.5 < cv["c_index_model"] < 1 and 0.5 < cv["c_index_cox"] < 1
    table = rep["targets"]["table"]
    names = [r["name"] for r in table]
    assert any("pCR" in n for n in names) and any("Rohan" in r["source"] for r in table)
    for r in table:
        lo, hi = r["interval"]
        inside = (lo is None or lo <= r["value"]) and (hi is None or r["value"] <= hi)
        assert r["pass"] == (r["value"] is not None and inside)


def test_report_cli_json(capsys):
    with pytest.raises(SystemExit) as ex:
        main(["calibrate", "report", "--json"])
    assert ex.value.code in (0, None)
    text = capsys.readouterr().out
    out = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert out["targets"] and out["c_index"]["model"] > 0.5
    assert {"target", "value", "interval", "pass"} <= set(out["targets"][0])


def test_bad_input_exit_code(tmp_path, capsys):
    with pytest.raises(SystemExit) as ex:
        main(["calibrate", "report", "--calibration", str(tmp_path)])
    assert ex.value.code == 2
    assert "report.json" in capsys.readouterr().err


def test_calibration_table_against_lifelines():
    """Tertile table: KM values equal lifelines' own estimate on each tertile."""
    from lifelines import KaplanMeierFitter

    from chemomet.calibrate.validation import calibration_by_tertile

    rng = np.random.default_rng(0)
    n = 300
    risk = rng.random(n)
    time = rng.exponential(3000 / (0.5 + risk))
    event = rng.random(n) < 0.7
    pred = np.column_stack([1 - 0.3 * risk, 1 - 0.5 * risk])
    tab = calibration_by_tertile(pred, risk, time, event)
    sel = risk >= np.quantile(risk, 2 / 3)
    km = KaplanMeierFitter().fit(time[sel], event[sel]).predict(5 * 365.25)
    row = tab[(tab.tertile == "high") & (tab.years == 5.0)].iloc[0]
    assert row["km"] == pytest.approx(km)
    assert row["predicted"] == pytest.approx(pred[sel, 0].mean())
    assert isinstance(tab, pd.DataFrame) and len(tab) == 6
