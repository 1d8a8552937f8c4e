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


def test_steps_execute_in_the_declared_order(tmp_path, monkeypatch):
    """The blocks of run_treatment run in the order of STEPS (each step's fit replaced by a recorder)."""
    import types

    import pandas as pd

    from chemomet.calibrate import chain

    calls = []
    rr = {"years_0_4": 0.53, "years_5_9": 0.68, "years_10_14": 0.8}

    def nodes(pop, cohort, node_negative=None, theta=None):
        calls.append("nodes")
        return types.SimpleNamespace(seeding_ratio=1.0, count_dispersion=2.0, clearance_per_day=0.05, loglik=-1.0,
                                     node_positive_by_size=pd.DataFrame(), profile=pd.DataFrame(
                                         [{"clearance_per_day": 0.05, "loglik": -1.0}]))

    def endocrine(cfg, cohort):
        calls.append("endocrine")
        return {"endocrine_resistance_probability": 0.5, "endocrine_sensitivity_median": 1.5, "rate_ratios": rr}

    def targets(out_dir, n, sobol_n, progress):
        calls.append("targets")
        return {"passed": 0, "total": 0}

    def anti_her2(cfg, cohort, progress):
        calls.append("anti-her2")
        pcr = {"HR+/HER2+": 0.3, "HR-/HER2+": 0.5}
        return {"anti_her2_resistance_probability": 0.0, "anti_her2_sensitivity_median": 1.0,
                "pcr_with_trastuzumab": pcr, "pcr_target_pooled": 0.36, "rate_ratio": 0.7,
                "pertuzumab_kill_per_day": 0.02}

    def docetaxel(cfg, cohort):
        calls.append("docetaxel")
        return {"docetaxel_kmax_per_day": 3.0}

    def aromatase(cfg, cohort):
        calls.append("aromatase-inhibitor")
        return {"nonresponder_reach": 1.0, "nonresponder_block": 0.2}

    for name, fake in (("fit_nodal_spread", nodes), ("fit_endocrine", endocrine), ("run_targets", targets),
                       ("fit_anti_her2", anti_her2), ("fit_docetaxel", docetaxel),
                       ("fit_aromatase_inhibitor", aromatase)):
        monkeypatch.setattr(chain, name, fake)
    monkeypatch.setattr(chain.VirtualCohort, "draw", staticmethod(lambda cfg, n, seed: None))
    monkeypatch.setattr("chemomet.datasets.load_gbsg2", lambda: None)
    monkeypatch.setattr(chain, "_node_negative_term", lambda out_dir, cfg: (None, None))
    run_treatment(tmp_path, n=200, n_her2=200)
    assert calls == list(STEPS)


def test_nodes_step_leaves_out_transbig_when_the_natural_history_was_not_conditioned(tmp_path):
    """A natural history fitted without conditioning on node counts (``conditioned_on_nodes`` recorded as None)
    gets the nodal fit on counts alone; one fitted with it gets TRANSBIG's conditioned likelihood beside them."""
    import json

    from chemomet.calibrate import chain

    (tmp_path / "report.json").write_text(json.dumps({"natural_history": {"conditioned_on_nodes": None}}))
    assert chain._node_negative_term(tmp_path, {}) == (None, None)
