"""Mechanisms reach the user (issue 12): the --mechanisms option, a trial spec's [mechanisms] table and the decision
text under each setting; subgroup harm with intervals that can cross zero; the value of measuring a biomarker; Sobol
indices over the mechanism parameters."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from chemomet.assess import AssessmentSettings
from chemomet.assess.decision import NO_HARM_NOTE, recommend
from chemomet.cli import main
from chemomet.errors import InputError
from chemomet.mechanisms import (
    STANDARD_SETTINGS,
    Mechanisms,
    describe_mechanisms,
    harm_routes,
    mechanism_settings,
    mechanisms_from_option,
)
from chemomet.patient import example_patient
from chemomet.population import Population
from chemomet.subgroups import (
    DIMENSIONS,
    epsilon_posterior,
    members_with_epsilon,
    plot_subgroups,
    subgroup_effects,
    subgroup_text,
    value_of_information,
    with_epsilon_range,
)
from chemomet.trial.spec import parse_trial_spec

POP = Population()
TWO = (POP, POP)  # a two-member "ensemble": fast, and the bootstrap still has members to resample


def run(argv, capsys, code=0):
    with pytest.raises(SystemExit) as info:
        main(argv)
    out = capsys.readouterr()
    assert (info.value.code or 0) == code, out.err
    return out


# --------------------------------------------------------------------------------------------- the option
def test_the_option_takes_names_all_off_or_a_file(tmp_path):
    assert mechanisms_from_option("priming, mobilisation") == {"priming": True, "mobilisation": True}
    assert mechanisms_from_option(None) == mechanisms_from_option("off") == {}
    assert mechanisms_from_option("all") == STANDARD_SETTINGS["all"]
    path = tmp_path / "m.toml"
    path.write_text("[mechanisms.mobilisation]\nCXCR4 = 3.0\n[mechanisms.priming]\ntake_increase = 2.0\n")
    table = mechanisms_from_option(str(path))
    m = mechanism_settings(table)
    assert m.release_per_inhibition("CXCR4") == 3.0 and m.priming_take_increase == 2.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("priming,inflammation", "'inflammation' is not a known mechanism"),
        ("FILE", "mechanisms: mobilisation.CXCR4 = 1000.0 is invalid; allowed: a number from 0 to 50"),
        ("MISSING", "file not found"),
    ],
)
def test_a_bad_option_is_one_line(text, message, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[mobilisation]\nCXCR4 = 1000.0\n")
    text = {"FILE": str(path), "MISSING": str(tmp_path / "none.toml")}.get(text, text)
    with pytest.raises(InputError) as err:
        mechanisms_from_option(text)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_harm_routes_follow_the_mechanisms_switched_on():
    assert all(not r for r in harm_routes(Mechanisms()).values())  # the shipped model: no drug can harm
    routes = harm_routes(mechanism_settings(STANDARD_SETTINGS["all"]))
    assert routes == {"rebastinib": [], "pexidartinib": ["drug_toxicity"], "plerixafor": ["mobilisation"]}
    off = harm_routes(mechanism_settings({"mobilisation": {"CXCR4": 0.0}}))
    assert off["plerixafor"] == []  # mobilisation by chemotherapy only: plerixafor releases nothing


# --------------------------------------------------------------------------------------------- command line
def test_cli_records_the_mechanisms_and_refuses_a_bad_one(capsys):
    out = run(["excess-risk", "--n", "100", "--seed", "2", "--json", "--mechanisms", "priming"], capsys).out
    data = json.loads(out)
    assert data["mechanisms"]["on"] == ["doorway", "priming"]
    assert data["mechanisms"]["strengths"]["priming_take_increase"] == 1.0
    assert "part_mechanisms" in data["mean"]  # the further mechanisms are their own part of the excess
    shipped = json.loads(run(["excess-risk", "--n", "100", "--seed", "2", "--json"], capsys).out)
    assert "part_mechanisms" not in shipped["mean"] and shipped["mechanisms"]["on"] == ["doorway"]
    err = run(["cohort", "--n", "10", "--mechanisms", "priming,foo"], capsys, code=2).err
    assert err.count("\n") == 1 and "'foo' is not a known mechanism" in err
    cohort = json.loads(run(["cohort", "--n", "20", "--json", "--mechanisms", "mobilisation"], capsys).out)
    assert cohort["mechanisms"]["harm_routes"]["plerixafor"] == ["mobilisation"]


def test_toxicity_is_not_decomposed_one_line(capsys):
    err = run(["excess-risk", "--n", "100", "-s", "nact+pexidartinib", "--mechanisms", "drug_toxicity"], capsys,
              code=2).err
    assert err.count("\n") == 1 and "does not decompose drug toxicity" in err


def test_excess_risk_subgroups_table_and_figure(tmp_path, capsys):
    fig = tmp_path / "forest.png"
    data = json.loads(run(["excess-risk", "--n", "100", "--seed", "1", "--json", "--mechanisms", "mobilisation",
                           "--subgroups-plot", str(fig)], capsys).out)
    rows = data["subgroups"]
    assert {r["setting"] for r in rows} == {"given"}
    assert {r["dimension"] for r in rows} == set(DIMENSIONS)
    assert fig.read_bytes()[:4] == b"\x89PNG"


# --------------------------------------------------------------------------------------------- trial spec
SPEC = {"name": "m", "patients_per_arm": 10, "arms": [{"name": "NACT", "strategy": "nact"},
                                                         {"name": "NACT + plerixafor", "strategy": "nact+plerixafor"}]}


def test_a_trial_spec_carries_validated_mechanisms():
    plain = parse_trial_spec(dict(SPEC))
    spec = parse_trial_spec({**SPEC, "mechanisms": {"mobilisation": {"CXCR4": 2.0}}})
    assert plain.make_population().settings.mechanisms.is_default
    assert spec.make_population().settings.mechanisms.release_per_inhibition("CXCR4") == 2.0
    assert spec.spec_hash() != plain.spec_hash()
    legacy = plain.model_dump(mode="json", exclude={"execution", "published", "mechanisms"})
    assert plain.spec_hash() == hashlib.sha256(json.dumps(legacy, sort_keys=True).encode()).hexdigest()
    for bad, message in [
        ({"priming": {"take_increase": -1}}, "trial spec: mechanisms: priming.take_increase = -1 is invalid"),
        ({"inflammation": True}, "inflammation is not a known mechanism"),
        (3, "mechanisms = 3 is an integer; allowed: a table [mechanisms]"),
    ]:
        with pytest.raises(InputError) as err:
            parse_trial_spec({**SPEC, "mechanisms": bad})
        assert message in str(err.value) and "\n" not in str(err.value)


def test_a_trial_simulates_with_the_spec_mechanisms():
    from chemomet.trial.chunk import simulate_patients

    spec = parse_trial_spec({**SPEC, "mechanisms": {"mobilisation": {"CXCR4": 20.0, "per_unit_stress": 0.0}}})
    plain = parse_trial_spec(dict(SPEC))
    pos = idx = np.arange(20)
    a, b = simulate_patients(spec, pos, idx), simulate_patients(plain, pos, idx)
    arm = a["arm"].to_numpy()
    assert (arm == 0).any() and (arm == 1).any()
    # CXCR4 release acts only in the plerixafor arm: more founding there, the NACT arm unchanged
    assert np.array_equal(a["model_dmfs_5y"][arm == 0], b["model_dmfs_5y"][arm == 0])
    assert (a["colonies_founded_during_chemo"][arm == 1] > b["colonies_founded_during_chemo"][arm == 1]).all()


# --------------------------------------------------------------------------------------------- the decision text
def _decide(mechanisms):
    s = {"mean": 0.007, "lo": -0.07, "hi": 0.14, "p_positive": 0.2}
    drugs = {"nact+rebastinib": {"mean": 0.003, "lo": 0.0, "hi": 0.01, "p_positive": 0.99},
             "nact+plerixafor": {"mean": -0.001, "lo": -0.004, "hi": 0.002, "p_positive": 0.4},
             "nact+pexidartinib": {"mean": 0.001, "lo": -0.001, "hi": 0.003, "p_positive": 0.7}}
    labels = {k: k for k in ("surgery-first", "nact", *drugs)}
    risks = {"surgery-first": 0.25, "nact": 0.26, **{k: 0.26 for k in drugs}}
    return recommend(risks, "nact", "surgery-first", s, drugs, {}, [], labels,
                     AssessmentSettings.default().decision, mechanisms=mechanisms)


def test_the_decision_says_whether_a_drug_can_harm_and_what_its_benefit_rests_on():
    shipped = _decide(None)
    text = " ".join(shipped["reasons"])
    assert NO_HARM_NOTE in text and "can raise risk" not in text
    both = _decide(mechanism_settings({"mobilisation": True, "drug_toxicity": True, "priming": True}))
    text = " ".join(both["reasons"])
    assert NO_HARM_NOTE not in text
    assert "plerixafor can raise risk through mobilisation" in text
    assert "pexidartinib can raise risk through its treatment-changing toxicity" in text
    assert "amplified by chemotherapy-primed colonisation" in text
    verdicts = {v["drug"]: v["mechanism"] for v in both["drugs"]}
    assert "rests on the doorway (TMEM) mechanism" in verdicts["rebastinib"]
    assert "can also raise risk" in verdicts["plerixafor"] and "can also raise risk" not in verdicts["rebastinib"]
    assert both["strategy"] == "nact" and both["summary"].startswith("Undecided")


def test_describe_mechanisms_is_what_results_record():
    d = describe_mechanisms(mechanism_settings({"mobilisation": {"CXCR4": 2.0}}), {"mobilisation": {"CXCR4": 2.0}})
    assert d["on"] == ["doorway", "mobilisation"]
    assert d["strengths"]["mobilisation_per_inhibition"] == {"CXCR4": 2.0}
    assert d["table"] == {"mobilisation": {"CXCR4": 2.0}}


# --------------------------------------------------------------------------------------------- subgroup harm
@pytest.fixture(scope="module")
def table():
    settings = {"off": {}, "mobilisation": {"mobilisation": {"CXCR4": 5.0}}}
    return subgroup_effects(120, seed=3, settings=settings, drugs=("rebastinib", "plerixafor"), members=TWO,
                            n_boot=200)


def test_every_subgroup_and_contrast_is_reported_with_an_interval(table):
    assert set(table["dimension"]) == set(DIMENSIONS)
    assert set(table["contrast"]) == {"nact_vs_surgery_first", "rebastinib_vs_nact", "plerixafor_vs_nact",
                                      "hazard_ratio"}
    groups = table.query("setting == 'off' and contrast == 'nact_vs_surgery_first'")
    assert set(groups.query("dimension == 'tmem_tertile'")["group"]) == {"bottom", "middle", "top"}
    assert set(groups.query("dimension == 'ctc_status'")["group"]) <= {"CTC 0", "CTC >= 1"}
    assert groups.query("dimension != 'all'").groupby("dimension")["patients"].sum().eq(120).all()
    diff = table[table["contrast"] != "hazard_ratio"]
    assert (diff["lo"] <= diff["mean"] + 1e-12).all() and (diff["mean"] <= diff["hi"] + 1e-12).all()
    hr = table.query("contrast == 'hazard_ratio' and dimension == 'tmem_tertile'")
    assert np.isfinite(hr[["mean", "lo", "hi"]].to_numpy()).all() and (hr["mean"] > 0).all()
    # the NACT excess is not settled in every subgroup: its interval crosses zero somewhere
    ex = table.query("contrast == 'nact_vs_surgery_first'")
    assert ((ex["lo"] < 0) & (ex["hi"] > 0)).any()


def test_a_mobilising_drug_harms_some_patients_only_when_mobilisation_is_on(table):
    off = table.query("setting == 'off' and contrast == 'plerixafor_vs_nact' and dimension == 'all'").iloc[0]
    on = table.query("setting == 'mobilisation' and contrast == 'plerixafor_vs_nact' and dimension == 'all'").iloc[0]
    assert off["patients_lo"] >= -1e-12  # no route to harm: no patient is harmed
    assert on["patients_lo"] < 0 and on["lo"] < 0  # harm: individual and subgroup intervals reach below zero
    reb = table.query("contrast == 'rebastinib_vs_nact' and dimension == 'all'")
    assert (reb["patients_lo"] >= -1e-12).all()  # rebastinib has no route to harm in either setting


def test_text_and_forest_plot(table, tmp_path):
    text = subgroup_text(table)
    assert "mechanism setting: mobilisation (on: doorway,mobilisation)" in text
    assert "distant-recurrence hazard ratio" in text and "TMEM top" in text
    assert plot_subgroups(table, tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"


def test_value_of_information_per_biomarker():
    voi = value_of_information(example_patient(), n_twins=400, n_draws=30, members=(POP,))
    assert voi["biomarker"].tolist() == ["TMEM score", "CTC count", "morphology"]
    widths = voi[["width_unmeasured", "expected_width_measured", "width_at_observed"]].to_numpy(float)
    assert np.isfinite(widths).all() and (widths > 0).all() and (widths < 1).all()
    assert np.allclose(voi["narrowing"], voi["width_unmeasured"] - voi["expected_width_measured"])
    assert 0 < voi["probability_measured_value"].iloc[2] < 1


# --------------------------------------------------------------------------------------------- Sobol
def test_sobol_indices_are_finite_bounded_and_zero_for_a_parameter_without_effect():
    from chemomet.mechanism_sensitivity import inputs, mechanism_outputs, mechanism_sobol

    # the stacked evaluation equals one row at a time, and surgery first does not move with any input
    x = np.random.default_rng(0).random((3, len(inputs())))
    together = mechanism_outputs(x, n_patients=6, drugs=("rebastinib",), regimen="tc")
    alone = [mechanism_outputs(x[i : i + 1], n_patients=6, drugs=("rebastinib",), regimen="tc") for i in range(3)]
    assert np.allclose(together.to_numpy(), np.vstack([a.to_numpy() for a in alone]), rtol=0, atol=1e-15)

    # a short regimen (TC, 4 cycles) and one drug keep the 288 model runs fast
    table = mechanism_sobol(n_base=32, n_patients=12, seed=1, drugs=("rebastinib",), regimen="tc")
    assert set(table["input"]) == set(inputs()) and set(table["output"]) == {"excess", "benefit_rebastinib"}
    values = table[["S1", "ST"]].to_numpy(float)
    assert np.isfinite(values).all() and (values >= -0.1).all() and (values <= 1.1).all()
    # pexidartinib's toxicity probability cannot move the NACT excess nor rebastinib's benefit
    tox = table[table["input"] == "toxicity_probability"]
    assert (tox["ST"].abs() < 1e-9).all()


# --------------------------------------------------------------------------------------------- end to end
def test_an_assessment_with_harm_mechanisms_records_them_and_lets_a_drug_harm():
    from chemomet.assess import assess

    settings = AssessmentSettings.default().with_overrides({"sampling.n_twins": 4000, "sampling.n_simulated": 1024})
    result = assess(example_patient(), settings=settings, drivers=False, trajectories=False,
                    mechanisms={"mobilisation": {"CXCR4": 5.0}, "drug_toxicity": True, "priming": True})
    rec = result.settings.mechanisms
    assert rec["on"] == ["doorway", "priming", "mobilisation", "drug_toxicity"]
    assert rec["harm_routes"]["plerixafor"] == ["mobilisation"]
    assert result.excess_parts_10y.mechanisms is not None  # priming and mobilisation: their own part
    assert result.drug_risk_reduction_10y["nact+plerixafor"].lo < 0  # the benefit interval includes harm
    reasons = " ".join(result.recommendation.reasons)
    assert "plerixafor can raise risk through mobilisation" in reasons and NO_HARM_NOTE not in reasons
    assert "Undecided" in result.recommendation.summary or "Decision" in result.recommendation.summary
    assert result.recommendation.strategy in ("nact", "surgery-first")  # never an investigational drug


def test_a_trial_summary_records_the_mechanisms(tmp_path):
    from chemomet.trial import run_trial

    spec = parse_trial_spec({**SPEC, "mechanisms": {"priming": True}, "follow_up": {"duration_days": 365}})
    summary = run_trial(spec, out=tmp_path / "run", figures=False).summary
    assert summary["mechanisms"]["on"] == ["doorway", "priming"]
    assert summary["mechanisms"]["table"] == {"priming": True}


# --------------------------------------------------------------------------------------------- fitted stress response
MECHANISM_FIT = Path(__file__).resolve().parents[1] / "docs/figures/calibration/mechanism_inference_point.json"


def test_epsilon_posterior_is_the_doorway_fit_with_all_data_as_a_log_normal():
    eps = json.loads(MECHANISM_FIT.read_text(encoding="utf-8"))["fits"]["doorway"]["posterior"]["all data"]
    eps = eps["strengths"]["epsilon_median"]
    median, sdlog = epsilon_posterior(MECHANISM_FIT)
    assert median == eps["median"]
    # a log-normal through the 90% interval: its log width is 2 × 1.645 SDs (scipy's normal quantile)
    assert np.log(eps["q95"] / eps["q05"]) == pytest.approx(2 * stats.norm.ppf(0.95) * sdlog, rel=1e-12)
    with pytest.raises(InputError, match="allowed: the JSON of chemomet calibrate mechanisms"):
        epsilon_posterior(Path(__file__))


def test_members_with_epsilon_draw_the_log_normal_reproducibly():
    pops = members_with_epsilon(3.0, 0.4, seed=5, members=(POP,) * 400)
    logs = np.log([p.config["microenvironment"]["epsilon_median"] for p in pops])
    assert abs(logs.mean() - np.log(3.0)) < 4 * 0.4 / np.sqrt(400) and abs(logs.std() - 0.4) < 0.05
    again = members_with_epsilon(3.0, 0.4, seed=5, members=(POP,) * 400)
    assert [p.config for p in again] == [p.config for p in pops]
    assert POP.config["microenvironment"]["epsilon_median"] != pops[0].config["microenvironment"]["epsilon_median"]


def test_cli_subgroups_under_the_fitted_stress_response(capsys):
    argv = ["excess-risk", "--n", "100", "--seed", "1", "--json", "--mechanisms", "priming", "--subgroups"]
    data = json.loads(run([*argv, "--epsilon-posterior", str(MECHANISM_FIT)], capsys).out)
    assert data["subgroups_epsilon"]["posterior_median"] == pytest.approx(epsilon_posterior(MECHANISM_FIT)[0])
    prior = json.loads(run(argv, capsys).out)
    assert prior["subgroups_epsilon"].startswith("prior")
    assert data["subgroups"] != prior["subgroups"]  # the stress response moved the effects
    err = run(["excess-risk", "--n", "100", "--epsilon-posterior", str(MECHANISM_FIT)], capsys, code=2).err
    assert err.count("\n") == 1 and "without --subgroups" in err
    # each effect also at the posterior's 5th and 95th percentiles of epsilon: the hazard ratio of NACT grows
    # with the stress response, so the two ends order (the drawn-per-member mean need not lie between them
    # at n = 100, so that is not asserted)
    hr = [r for r in data["subgroups"] if r["contrast"] == "hazard_ratio" and r["dimension"] == "all"]
    assert hr and all(r["mean_epsilon_q05"] < r["mean_epsilon_q95"] for r in hr)


def test_epsilon_range_is_the_table_at_the_posterior_percentiles():
    """``with_epsilon_range`` adds, row by row, the means of ``subgroup_effects`` run with every member at the
    log-normal's 5th and 95th percentiles (median × e^(∓1.645 sdlog); scipy's normal quantile as reference)."""
    kw = dict(settings={"off": {}}, drugs=("rebastinib",), n_boot=20)
    base = subgroup_effects(80, 2, members=members_with_epsilon(3.0, 0.5, seed=2, members=(POP, POP)), **kw)
    out = with_epsilon_range(base, 3.0, 0.5, 80, seed=2, members=(POP, POP), **kw)
    lo = subgroup_effects(80, 2, members=members_with_epsilon(3.0 * np.exp(stats.norm.ppf(0.05) * 0.5), 0.0,
                                                              members=(POP, POP)), **kw)
    # equal up to the last digit of the quantile (the module's constant vs scipy's ppf)
    np.testing.assert_allclose(out["mean_epsilon_q05"].to_numpy(), lo["mean"].to_numpy(), rtol=1e-12)
    pd.testing.assert_frame_equal(out.drop(columns=["mean_epsilon_q05", "mean_epsilon_q95"]), base)
    assert "posterior (epsilon median at its 5th to 95th percentile)" in subgroup_text(out)


def test_cli_assessment_under_the_fitted_stress_response(capsys, tmp_path):
    """``chemomet assess --epsilon-posterior``: the twins' stress response from the inference's posterior, recorded
    in the JSON; a file that is not such a result is a one-line error before any work."""
    patient = tmp_path / "p.toml"
    patient.write_text('age = 50\ndiameter_mm = 25.0\ngrade = 2\ner = "positive"\npr = "positive"\n'
                       'her2 = "negative"\n', encoding="utf-8")
    sizes = ["--set", "sampling.n_twins=4000", "--set", "sampling.n_simulated=512", "--no-drivers"]
    out = run(["assess", str(patient), "--json", *sizes, "--epsilon-posterior", str(MECHANISM_FIT)], capsys).out
    median, sdlog = epsilon_posterior(MECHANISM_FIT)
    assert json.loads(out)["settings"]["epsilon_posterior"] == {"median": median, "sdlog": sdlog}
    err = run(["assess", str(patient), *sizes, "--epsilon-posterior", str(patient)], capsys, code=2).err
    assert err.count("\n") == 1 and "allowed: the JSON of chemomet calibrate mechanisms" in err
