"""`chemomet calibrate treatment`: the steps after the natural history, their order and bad input."""

import pytest

from chemomet.calibrate.chain import STEPS, run_treatment
from chemomet.cli import main


def test_steps_run_in_dependency_order():
    # endocrine before targets (Pan 2017 is simulated with tamoxifen); nodes and anti-HER2 after the targets;
    # docetaxel after trastuzumab; the aromatase inhibitor after the endocrine settings
    order = {s: i for i, s in enumerate(STEPS)}
    assert order["endocrine"] < order["targets"] < order["anti-her2"] < order["docetaxel"]
    assert order["endocrine"] < order["aromatase-inhibitor"]
    assert order["targets"] < order["nodes"]  # the TMEM link theta scales the shedding the node counts measure


def test_unknown_step_is_refused(tmp_path, capsys):
    with pytest.raises(ValueError, match="allowed"):
        run_treatment(tmp_path, steps=("nodes", "chemo"))
    with pytest.raises(SystemExit) as ex:
        main(["calibrate", "treatment", "--out", str(tmp_path), "--step", "chemo"])
    assert ex.value.code == 2
    assert "--step" in capsys.readouterr().err


def test_endocrine_step_writes_its_settings(tmp_path):
    """One cheap step on a small cohort: the folder's population.toml gets the fitted endocrine settings, which
    meet EBCTCG 2011's years 0-4 ratio on that cohort, and report.json records the step."""
    import tomllib

    from chemomet.calibrate import storage
    from chemomet.calibrate.endocrine import EBCTCG_2011_TAMOXIFEN

    out = run_treatment(tmp_path, n=400, steps=("endocrine",))
    endo = out["steps"]["endocrine"]
    cfg = tomllib.loads((tmp_path / "population.toml").read_text())
    fitted = endo["endocrine_resistance_probability"]
    assert cfg["treatment"]["endocrine_resistance_probability"] == pytest.approx(fitted)
    assert endo["rate_ratios"]["years_0_4"] == pytest.approx(EBCTCG_2011_TAMOXIFEN["years_0_4"][0], abs=0.01)
    assert storage.read_json(tmp_path / "report.json")["treatment"]["steps"].keys() == {"endocrine"}
    # a later partial run keeps the earlier step's record
    report = storage.read_json(tmp_path / "report.json")
    report["treatment"]["steps"]["nodes"] = {"marker": 1}
    storage.write_json(tmp_path / "report.json", report)
    run_treatment(tmp_path, n=400, steps=("endocrine",))
    steps = storage.read_json(tmp_path / "report.json")["treatment"]["steps"]
    assert steps["nodes"] == {"marker": 1} and "endocrine" in steps
