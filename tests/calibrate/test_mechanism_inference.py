"""Mechanism strengths from human data (issue 12, item 2): the data and priors, the summaries against the target
functions, the importance-sampling machinery, and a simulated-data test: an identifiable strength is recovered
within its 90% interval, and a strength with no effect on the summaries keeps its prior."""

import json
import math

import numpy as np
import pytest

from chemomet.calibrate import mechanism_inference as mi
from chemomet.calibrate.cohort import VirtualCohort
from chemomet.calibrate.shipped import calibrated_config
from chemomet.calibrate.targets import ctc_prevalence, ebctcg
from chemomet.evidence import load_evidence


@pytest.fixture(scope="module")
def base():
    return calibrated_config()


@pytest.fixture(scope="module")
def cohort(base):
    return VirtualCohort.draw(base, 120, seed=5)


def test_data_are_read_from_the_evidence_file_with_their_uncertainty():
    data = mi.mechanism_data()
    eb, ctc = data["ebctcg_rate_ratio"], data["ctc_ratio_surgery_baseline"]
    assert eb.value == 1.02 and eb.evidence == ("ebctcg2018_distant_recurrence",)
    assert eb.se_log == pytest.approx((math.log(1.14) - math.log(0.92)) / (2 * 1.959964), rel=1e-4)
    assert ctc.value == pytest.approx(0.17 / 0.252)
    assert ctc.se_log == pytest.approx(math.sqrt(0.748 / (1574 * 0.252) + 0.83 / (1200 * 0.17)))
    # the second, independent CTC source (AdnaTest, not among Bidard's CellSearch studies) measures the same model
    # summary, with the SE of two binomials of 135
    kb = data["ctc_ratio_kasimirbauer"]
    assert kb.value == pytest.approx(0.08 / 0.24) and kb.model_key == "ctc_ratio_surgery_baseline"
    assert kb.se_log == pytest.approx(math.sqrt(0.76 / (135 * 0.24) + 0.92 / (135 * 0.08)))
    assert kb.evidence == ("kasimirbauer2016_ctc_before_nact", "kasimirbauer2016_ctc_after_nact")
    assert all(set(keys) <= set(data) for keys in mi.DATA_COMBINATIONS.values())
    # every skipped record exists; the TMEM paired ratio really has no value, so it cannot be used
    by_id = {e.id: e for e in load_evidence()}
    assert set(mi.SKIPPED_EVIDENCE) <= set(by_id)
    assert not by_id["karagiannis2017_tmem_paired_human"].has_value
    assert all(by_id[i].has_value for i in mi.SKIPPED_EVIDENCE if i != "karagiannis2017_tmem_paired_human")


def test_priors_follow_the_mechanism_file_and_are_truncated_to_their_bounds():
    p = mi.strength_priors()
    assert (p["priming_take_increase"].median, p["priming_take_increase"].sdlog) == (1.0, 0.7)
    assert (p["release_per_cxcr4"].median, p["release_per_cxcr4"].sdlog, p["release_per_cxcr4"].upper) == (1, 1, 50)
    eps = p["epsilon_median"]
    lo, hi = eps.interval(0.95)
    assert hi / eps.median == pytest.approx(4.0, rel=1e-3) and eps.median / lo == pytest.approx(4.0, rel=1e-3)
    rng = np.random.default_rng(0)
    for prior in p.values():
        z = prior.sample_z(rng, 4000)
        v = prior.value(z)
        assert v.min() >= prior.lower and v.max() <= prior.upper
        assert np.all(np.isfinite(prior.logpdf_z(z)))
        assert np.quantile(v, 0.05) == pytest.approx(prior.interval()[0], rel=0.1)
    # outside the bounds the density is 0
    assert prior.logpdf_z(np.array([prior.z_of(prior.upper * 1.01)]))[0] == -np.inf


def test_summaries_agree_with_the_calibration_target_functions(base, cohort):
    cfg = mi.draw_config(base, {"epsilon_median": 2.0}, "doorway")
    s = mi.simulate_summaries(cfg, cohort, detail=True)
    assert s["ebctcg_rate_ratio"] == pytest.approx(ebctcg(cfg, cohort)["rate_ratio"], rel=1e-12)
    assert s["ctc_prevalence_baseline"] == pytest.approx(ctc_prevalence(cfg, cohort), rel=1e-9)
    assert len(s["per_patient"]["ctc1"]) == 120
    # priming acts on the take of arriving cells: CTCs unchanged, NACT-vs-adjuvant ratio raised
    cfg_p = mi.draw_config(base, {"epsilon_median": 2.0, "priming_take_increase": 5.0, "priming_days": 14.0},
                           "doorway+priming")
    sp = mi.simulate_summaries(cfg_p, cohort)
    assert sp["ctc_ratio_surgery_baseline"] == pytest.approx(s["ctc_ratio_surgery_baseline"], rel=1e-8)
    assert sp["ebctcg_rate_ratio"] > s["ebctcg_rate_ratio"]


def test_mechanism_tables_switch_the_right_mechanisms():
    v = {k: p.median for k, p in mi.strength_priors().items()}
    assert mi.mechanisms_table(v, "doorway") == {}
    assert set(mi.mechanisms_table(v, "doorway+mobilisation")) == {"mobilisation"}
    assert set(mi.mechanisms_table(v, "all")) == {"priming", "mobilisation", "drug_toxicity"}
    from chemomet.mechanisms import mechanism_settings

    m = mechanism_settings(mi.mechanisms_table(v, "all"))
    assert m.priming and m.mobilisation and m.drug_toxicity and m.release_per_inhibition("CXCR4") == 1.0


def test_two_data_on_one_model_summary_share_its_values_and_its_simulation_se():
    data = mi.mechanism_data()
    kb, bid = data["ctc_ratio_kasimirbauer"], data["ctc_ratio_surgery_baseline"]
    summaries = {"ctc_ratio_surgery_baseline": np.array([kb.value, bid.value, np.nan])}
    extra = {"ctc_ratio_surgery_baseline": 0.1}
    ll = mi.log_likelihood(summaries, {"kb": kb}, extra, 3)
    se = math.sqrt(kb.se_log**2 + 0.1**2)
    norm_const = -math.log(se * math.sqrt(2 * math.pi))
    assert ll[0] == pytest.approx(norm_const)
    assert ll[1] == pytest.approx(-0.5 * (math.log(kb.value / bid.value) / se) ** 2 + norm_const)
    assert ll[2] == -np.inf
    both = mi.log_likelihood(summaries, {"a": kb, "b": bid}, extra, 3)
    assert both[:2] == pytest.approx(ll[:2] + mi.log_likelihood(summaries, {"b": bid}, extra, 3)[:2])
    # pseudo-data for the second source take the value of the shared summary
    pseudo = mi.synthetic_data({"ctc_ratio_surgery_baseline": 0.3}, {"ctc_ratio_kasimirbauer": 0.2})
    assert pseudo["ctc_ratio_kasimirbauer"].value == 0.3
    assert pseudo["ctc_ratio_kasimirbauer"].model_key == "ctc_ratio_surgery_baseline"


def test_model_probabilities_are_normalised_bayes_factors():
    p = mi.model_probabilities({"a": -3.0, "b": -3.0 + math.log(4.0), "c": -math.inf})
    assert p == pytest.approx({"a": 0.2, "b": 0.8, "c": 0.0})
    p = mi.model_probabilities({"a": 0.0, "b": 0.0}, prior={"a": 3.0, "b": 1.0})
    assert p["a"] == pytest.approx(0.75)


def test_without_informative_data_the_posterior_is_the_prior_and_the_evidence_the_density(base, cohort):
    # a datum with an SE of 50 on the log scale: the likelihood is flat over the prior-predictive range, so the
    # evidence is the Gaussian density at ~0 and the posterior the prior
    vague = mi.synthetic_data({"ebctcg_rate_ratio": 1.0}, {"ebctcg_rate_ratio": 50.0})
    fit = mi.fit_mechanism_set("doorway", base, cohort, vague, draws=40, rounds=2, seed=3)
    post = mi.posterior_summary(fit, vague)
    # (within the Monte Carlo error of 40 draws: the mean of prior / proposal is 1 only in expectation)
    assert post["log_evidence"] == pytest.approx(-math.log(50.0 * math.sqrt(2 * math.pi)), abs=3 * post[
        "log_evidence_se"] + 1e-3)
    s = post["strengths"]["epsilon_median"]
    assert 0.6 < s["width_ratio"] < 1.4 and abs(s["shift_prior_sd"]) < 0.5 and not s["identified"]
    assert post["ess"] > 20


def test_simulated_data_recover_an_identifiable_strength_and_leave_a_non_identifiable_one_at_its_prior(base, cohort):
    """Pseudo-data from the model at ε_med = 4 (twice the prior's SD of the log above its median), ν_D = 0.2 and
    ν_CXCR4 = 1, with tight SEs (0.05 and 0.02 on the log scale, about a third of the real ones): ε_med moves the
    CTC fall strongly, so its 90% interval must cover 4 and be far narrower than the prior's (width ratio 0.38 since
    the CTC count carries the assay's fitted background, which puts a floor of 1 - e^-b ≈ 9% under the prevalence
    after NACT and so damps the fall's dependence on ε; below 0.35 before); ν_CXCR4 acts only with a CXCR4 drug,
    absent from both arms, so its posterior must stay the prior (not identified)."""
    truth = {"epsilon_median": 4.0, "release_per_stress": 0.2, "release_per_cxcr4": 1.0}
    summ = mi.simulate_summaries(mi.draw_config(base, truth, "doorway+mobilisation"), cohort)
    pseudo = mi.synthetic_data(summ, {"ebctcg_rate_ratio": 0.02, "ctc_ratio_surgery_baseline": 0.05})
    fit = mi.fit_mechanism_set("doorway+mobilisation", base, cohort, pseudo, draws=90, rounds=4, seed=1)
    post = mi.posterior_summary(fit, pseudo)
    eps, cxcr4 = post["strengths"]["epsilon_median"], post["strengths"]["release_per_cxcr4"]
    assert post["ess"] >= 5
    assert eps["q05"] <= truth["epsilon_median"] <= eps["q95"]
    assert eps["identified"] and eps["width_ratio"] < 0.5
    assert not cxcr4["identified"] and cxcr4["width_ratio"] > 0.6 and abs(cxcr4["shift_prior_sd"]) < 0.6
    # the recovery the whole run reports uses the same machinery
    rows = mi.mechanism_table_rows({
        "priors": {k: {"symbol": p.symbol, "mechanism": p.mechanism, "unit": p.unit, "median": p.median,
                       "q05": p.interval()[0], "q95": p.interval()[1]} for k, p in mi.strength_priors().items()},
        "fits": {"all": {"posterior": {c: post for c in mi.DATA_COMBINATIONS}}},
        "model_probabilities": {c: {"probability": {"all": 1.0}} for c in mi.DATA_COMBINATIONS},
    })
    row = {r["strength"]: r for r in rows}["release_per_cxcr4"]
    assert row["identified"] is (False if post["ess"] >= mi.MIN_ESS else None)


def test_a_small_run_writes_its_json_and_figure_atomically(tmp_path, base):
    res = mi.run_inference(base, patients=30, draws=8, rounds=2, population="ensemble", sets=("doorway", "all"),
                           recovery=False)
    paths = mi.write_results(res, tmp_path)
    data = json.loads((tmp_path / "mechanism_inference.json").read_text())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mechanism_inference.json", "mechanism_inference.png"]
    assert paths["json"].endswith("mechanism_inference.json")
    probs = data["model_probabilities"]["all data"]["probability"]
    assert sum(probs.values()) == pytest.approx(1.0)
    assert [r["strength"] for r in data["table"]] == list(mi.strength_priors())
    assert "| doorway | ε_med" in mi.format_table(res)


@pytest.mark.slow
def test_the_real_inference_on_a_modest_cohort():
    """The analysis of docs/calibration.md at a smaller size: every set fitted, the recovery check covers the
    doorway response, and ν_CXCR4 (no CXCR4 drug in the data) is not identified."""
    res = mi.run_inference(patients=600, draws=200, seed=11)
    assert set(res["fits"]) == set(mi.MECHANISM_SETS)
    rows = {r["strength"]: r for r in res["table"]}
    assert not rows["release_per_cxcr4"]["identified"]
    assert res["recovery"]["covered"]["epsilon_median"]
    for fit in res["fits"].values():
        assert fit["posterior"]["EBCTCG only"]["ess"] > 20
