"""Cross-validated discrimination and calibration (chemomet.calibrate.crossval, issue 11).

The default tests run on synthetic cohorts (no scikit-survival); the slow test runs the validation on the real
TRANSBIG and GBSG2 cohorts.
"""

import doctest
import inspect
import json

import numpy as np
import pandas as pd
import pytest

from chemomet.calibrate import crossval as cv
from chemomet.calibrate import folds as fm
from chemomet.calibrate import natural_history as nh
from chemomet.calibrate import survival_metrics as sm
from chemomet.calibrate.cohort import VirtualCohort
from chemomet.calibrate.validation import folds
from chemomet.calibrate.vector import prior_config
from chemomet.cli import main
from chemomet.datasets import Cohort
from chemomet.errors import InputError
from chemomet.local_recurrence import HAZARD_PER_DAY
from chemomet.mortality import other_cause_survival
from chemomet.units import DAYS_PER_YEAR


def _exponential(n=400, seed=0, follow_up=5000.0, scale=3000.0):
    """Exponential times with log-rate ``x`` (per patient), administrative censoring at ``follow_up`` days."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    t = rng.exponential(scale * np.exp(-x))
    return x, np.minimum(t, follow_up), t < follow_up


def _true_survival(x, years, scale=3000.0):
    return np.exp(-np.exp(x)[:, None] * np.asarray(years)[None, :] * DAYS_PER_YEAR / scale)


# ------------------------------------------------------------------------------------------------ metrics
def test_fold_matrix_is_the_folds_of_cross_validate():
    f = fm.fold_matrix(50, k=5, repeats=3, seed=7)
    for r in range(3):
        assert np.array_equal(f[r], folds(50, 5, 7 + r))
        assert np.bincount(f[r]).tolist() == [10] * 5
    with pytest.raises(ValueError):
        fm.fold_matrix(3, k=5)


def test_ipcw_brier_is_the_mean_squared_error_without_censoring():
    x, time, event = _exponential(follow_up=1e9)  # nobody censored
    s = _true_survival(x, [5.0])[:, 0]
    y = (time > 5 * DAYS_PER_YEAR).astype(float)
    assert sm.ipcw_brier(time, event, s, 5.0) == pytest.approx(np.mean((y - s) ** 2), rel=1e-12)


def test_ipcw_brier_matches_scikit_survival():
    sksurv_metrics = pytest.importorskip("sksurv.metrics")
    from sksurv.util import Surv

    rng = np.random.default_rng(4)
    x, t, _ = _exponential(n=500, seed=4, follow_up=1e9)
    c = rng.uniform(0, 6000, 500)  # random censoring
    time, event = np.minimum(t, c), t < c
    s = _true_survival(x, [5.0])[:, 0]
    y = Surv.from_arrays(event, time)
    _, ref = sksurv_metrics.brier_score(y, y, s[:, None], [5 * DAYS_PER_YEAR])
    assert sm.ipcw_brier(time, event, s, 5.0) == pytest.approx(float(ref[0]), rel=1e-6)


def test_calibration_slope_one_for_the_true_model_and_half_for_doubled_log_hazards():
    x, time, event = _exponential(n=3000, seed=1)
    s = _true_survival(x, [5.0])[:, 0]
    good = sm.calibration_slope(time, event, s, 5.0)
    assert 0.9 < good["slope"] < 1.1 and good["ci95"][0] < 1 < good["ci95"][1]
    lp = np.log(-np.log(s))
    too_extreme = np.exp(-np.exp(2 * lp - lp.mean()))  # ln(-ln S) spread twice as wide: the slope halves
    assert 0.4 < sm.calibration_slope(time, event, too_extreme, 5.0)["slope"] < 0.6
    assert sm.calibration_slope(time, event, np.full(x.size, 0.7), 5.0)["slope"] is None


def test_calibration_table_cells_and_estimability():
    x, time, event = _exponential(n=300, seed=2, follow_up=3000.0)  # 8.2 years of follow-up
    s = _true_survival(x, [5.0, 10.0])
    rows = sm.calibration_table(time, event, s, sm.node_groups(np.arange(300) % 12), [5.0, 10.0], "node group")
    assert [r["group"] for r in rows] == ["0", "0", "1-3", "1-3", "10+", "10+", "4-9", "4-9"]
    five = [r for r in rows if r["years"] == 5.0]
    assert all(r["estimable"] and r["km_low"] <= r["km"] <= r["km_high"] for r in five)
    assert sum(r["inside"] for r in five) >= 3  # the true model: inside the 95% intervals, bar chance
    ten = [r for r in rows if r["years"] == 10.0]
    assert all(not r["estimable"] and r["inside"] is None and r["km"] is None for r in ten)


def test_evaluate_pairs_the_bootstrap_and_scores_the_null_model_separately():
    x, time, event = _exponential(n=400, seed=3)
    years = (5.0, 10.0)
    true = _true_survival(x, years)[None]
    weak = _true_survival(0.3 * x + np.random.default_rng(9).normal(size=x.size), years)[None]
    km = fm.KaplanMeierFold(time, event, years)(np.arange(400), np.arange(400))[None]
    res = cv.evaluate(time, event, {"mechanistic": true, "cox": true, "nodes": weak, "km": km}, years,
                      node_counts=np.arange(400) % 12, n_boot=40)
    d = res["c_index_differences"]
    assert d["mechanistic - cox"]["estimate"] == 0 and d["mechanistic - cox"]["ci95"] == [0.0, 0.0]
    assert d["mechanistic - nodes"]["ci95"][0] > 0  # paired: a clearly better model wins on every resample
    assert "km" not in res["c_index"] and set(res["brier"]) == {"mechanistic", "cox", "nodes"}
    b = res["brier"]["mechanistic"]["5"]
    assert b["brier"] < b["null_brier"] and b["ipa"] > 0 and b["ci95"][0] < b["brier"] < b["ci95"][1]
    cal = res["calibration"]["mechanistic"]
    assert cal["cells"] == 2 * (3 + 4) and cal["share_inside"] >= 0.7
    t = res["targets"]
    assert t["c_index_met"] == (t["c_index"] >= 0.68) and t["above_nodes"]["ci_excludes_0"]
    assert set(t["slope_by_horizon"]) == {"5", "10"}
    with pytest.raises(ValueError):
        cv.evaluate(time, event, {"mechanistic": true[:, :, :1]}, (5.0,), c_horizon_years=10.0)


# ------------------------------------------------------------------------------------------------ cohorts
def _untreated_cohort(n=80, seed=5):
    cfg = prior_config()
    cov = VirtualCohort.draw(cfg, n, seed=seed).covariates.drop(columns=["nodes_positive", "ki67_percent"])
    censor = np.random.default_rng(seed).uniform(5, 15, n) * DAYS_PER_YEAR
    time, event = nh.simulate_cohort(cfg, cov, censor, seed)
    return Cohort("synthetic untreated", cov.assign(nodes_positive=0), time, event, "distant metastasis")


def _treated_cohort(n=120, seed=6):
    from chemomet.population import Population

    cov, _ = Population().sample(3 * n, seed)
    cov = cov[cov["nodes_positive"] >= 1].head(n).reset_index(drop=True)
    rng = np.random.default_rng(seed)
    cov["hormone_therapy"] = rng.random(len(cov)) < 0.4
    cov["age"] = cov["age"].clip(25, 80)
    rate = 1.5e-4 * (1 + cov["nodes_positive"].to_numpy()) ** 0.8  # synthetic: risk rises with the node count
    t = rng.exponential(1.0 / rate)
    c = rng.uniform(2, 7, len(cov)) * DAYS_PER_YEAR
    return Cohort("synthetic treated", cov, np.minimum(t, c), t < c, "recurrence or death")


def test_validate_untreated_on_a_synthetic_cohort():
    cohort = _untreated_cohort()
    res = cv.validate_untreated(cohort, k=2, repeats=1, n_nodes=16, max_evaluations=30, n_boot=30)
    assert res["n"] == 80 and res["folds"] == 2 and res["repeats"] == 1
    assert set(res["c_index"]) == {"mechanistic", "cox"}
    assert list(res["c_index_differences"]) == ["mechanistic - cox"]
    for c in res["c_index"].values():
        assert 0 <= c["estimate"] <= 1 and c["ci95"][0] <= c["averaged_predictions"] <= c["ci95"][1]
    groups = {r["group"] for r in res["calibration"]["mechanistic"]["rows"] if r["grouping"] == "node group"}
    assert groups == {"0"}  # node-negative: one group, the whole cohort
    assert len(res["fold_fits"]["fold_theta_sd"]) == len(nh.PARAM_NAMES)
    assert len(res["predictions_oof_repeat_mean"]["mechanistic"]["10"]) == 80
    assert res["refit_per_fold"]["mechanistic"].startswith("yes")
    assert "conditioned on each patient's node count" in res["models"]["mechanistic"]
    cov = cohort.covariates.drop(columns="nodes_positive")
    with pytest.raises(ValueError, match="nodes_positive"):  # conditioning needs the counts: no silent zero
        cv.validate_untreated(Cohort("no counts", cov, cohort.time_days, cohort.event, "distant metastasis"), k=2,
                              repeats=1, n_nodes=16, max_evaluations=5, n_boot=5)


def test_out_of_fold_in_processes_matches_in_process():
    cohort = _untreated_cohort(n=40, seed=8)
    model = fm.NaturalHistoryRefit(cohort.covariates, cohort.time_days, cohort.event, (5.0, 10.0), n_nodes=16,
                                   max_evaluations=15)
    f = fm.fold_matrix(40, k=2, repeats=1)
    one, info1 = fm.out_of_fold({"m": model}, f, workers=1)
    two, info2 = fm.out_of_fold({"m": model}, f, workers=2)
    assert np.allclose(one["m"], two["m"]) and len(info2["m"]["fold_theta"]) == 2


def test_mechanistic_rfs_is_the_product_of_its_parts_and_tamoxifen_helps():
    row = {"age": 60.0, "diameter_mm": 25.0, "grade": 2, "er": True, "pr": True, "nodes_positive": 4}
    kw = {"twins_per_patient": 10, "min_twins_per_cell": 256}
    without = cv.mechanistic_rfs(pd.DataFrame([{**row, "hormone_therapy": False}]), (5.0, 15.0), **kw)
    with_tam = cv.mechanistic_rfs(pd.DataFrame([{**row, "hormone_therapy": True}]), (5.0, 15.0), **kw)
    for out in (without, with_tam):
        for h in ("5", "15"):
            assert out[f"rfs_{h}y"][0] == pytest.approx(
                out[f"dmfs_{h}y"][0] * out[f"lrfs_{h}y"][0] * out[f"other_cause_{h}y"][0])
    assert without["lrfs_15y"][0] == pytest.approx(np.exp(-HAZARD_PER_DAY * (15 * DAYS_PER_YEAR - 21.0)))
    assert 1 - np.exp(-HAZARD_PER_DAY * 15 * DAYS_PER_YEAR) == pytest.approx(0.159, abs=1e-9)
    assert without["other_cause_5y"][0] == pytest.approx(float(other_cause_survival(60.0, 5.0)))
    assert with_tam["dmfs_5y"][0] > without["dmfs_5y"][0]  # same twins (one cell, same seed), tamoxifen added


@pytest.fixture(scope="module")
def treated():
    cohort = _treated_cohort()
    res = cv.validate_treated(cohort, k=3, repeats=2, n_boot=30, twins_per_patient=10, min_twins_per_cell=256)
    return cohort, res


def test_validate_treated_on_a_synthetic_cohort(treated):
    cohort, res = treated
    assert set(res["c_index"]) == {"mechanistic", "mechanistic-distant-only", "cox", "nodes"}
    assert set(res["c_index_differences"]) == {"mechanistic - cox", "mechanistic - nodes"}
    counts = cohort.covariates["nodes_positive"].to_numpy()
    raw = sm.harrell_c(cohort.time_days, cohort.event, counts)  # pooled over folds, nearly the count's ranking
    assert res["c_index"]["nodes"]["estimate"] == pytest.approx(raw, abs=0.05)
    mech = res["c_index"]["mechanistic"]
    assert mech["by_repeat"][0] == mech["by_repeat"][1]  # not refitted: the same predictions in every repeat
    assert mech["estimate"] > 0.55  # the synthetic risk follows the node count, which weighs the twins
    assert res["refit_per_fold"]["mechanistic"].startswith("no")
    groups = {r["group"] for r in res["calibration"]["mechanistic"]["rows"] if r["grouping"] == "node group"}
    assert groups <= {"1-3", "4-9", "10+"} and "1-3" in groups
    assert not res["brier"]["mechanistic"]["10"]["estimable"]  # follow-up ends before 10 years
    assert res["mechanistic_details"]["ess_median"] > 1
    comp = res["mechanistic_details"]["mean_components"]["5"]
    assert comp["rfs"] < comp["dmfs"] and 0.9 < comp["lrfs"] < 1
    score = res["outcome_loglik"]
    assert np.isfinite(score["total"]) and score["total"] == pytest.approx(score["mean"] * cohort.n)


def test_plot_validation_and_json(tmp_path, treated):
    _, res = treated
    path = tmp_path / "v.png"
    cv.plot_validation(path, [res])
    assert path.stat().st_size > 10_000
    from chemomet.fileio import json_safe

    json.dumps(json_safe(res), allow_nan=False)  # strict JSON


def test_cli_rejects_an_unknown_cohort_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as ex:
        main(["calibrate", "validate", "--out", str(tmp_path / "v"), "--cohort", "metabric"])
    assert ex.value.code == 2 and "metabric" in capsys.readouterr().err
    with pytest.raises(SystemExit) as ex:  # the output folder is proven writable before any work
        main(["calibrate", "validate", "--out", "/proc/chemomet-x"])
    assert ex.value.code == 2 and "/proc/chemomet-x" in capsys.readouterr().err
    with pytest.raises(ValueError):
        cv.run_validation(tmp_path, ("metabric",))
    with pytest.raises(InputError):
        from chemomet.calibrate.cli import validate

        validate(out=tmp_path, folds=1, repeats=1, seed=7, bootstrap=10, nodes=16, workers=1, cohort=["gbsg2"],
                 as_json=False)


# ------------------------------------------------------------------------------------------------ docstrings
@pytest.mark.parametrize("name", cv.__all__)
def test_public_names_have_numpydoc_docstrings_whose_examples_run(name):
    obj = getattr(cv, name)
    if not (inspect.isfunction(obj) or inspect.isclass(obj)):
        return
    doc = inspect.getdoc(obj) or ""
    assert "Examples\n--------" in doc, name
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in doctest.DocTestFinder(recurse=False).find(obj, name, module=cv, globs={**vars(cv)}):
        runner.run(test)
    assert runner.failures == 0, name


# ------------------------------------------------------------------------------------------------ real cohorts
@pytest.mark.slow
def test_validation_on_transbig_and_gbsg2(tmp_path):
    pytest.importorskip("sksurv")
    out = cv.run_validation(tmp_path, k=5, repeats=1, n_boot=200, workers=2)
    saved = json.loads((tmp_path / "validation.json").read_text())
    assert (tmp_path / "figures" / "validation_calibration.png").stat().st_size > 20_000
    tb, gb = saved["cohorts"]["transbig"], saved["cohorts"]["gbsg2"]
    assert tb["n"] == 198 and tb["events"] == 51 and gb["n"] == 686 and gb["events"] == 299
    assert 0.55 < tb["c_index"]["mechanistic"]["estimate"] < 0.75
    assert 0.6 < gb["c_index"]["mechanistic"]["estimate"] < 0.72
    g = _gbsg2()
    assert gb["c_index"]["nodes"]["estimate"] == pytest.approx(
        sm.harrell_c(g.time_days, g.event, g.covariates["nodes_positive"]), abs=0.01)
    assert set(gb["targets"]) >= {"c_index_met", "above_cox", "above_nodes", "share_inside_met", "slope_met"}
    assert out["settings"]["repeats"] == 1


def _gbsg2():
    from chemomet.datasets import load_gbsg2

    return load_gbsg2()
