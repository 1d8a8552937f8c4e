"""Competing prometastatic mechanisms and drug toxicity (docs/science.md §2.16): each off by default and then
bit-identical, each on matching the solve_ivp reference and moving risk in its stated direction; a mobilising drug
can harm; a toxicity changes the schedule and the outcome."""

import numpy as np
import pandas as pd
import pytest

import chemomet as cm
from chemomet.assess.forecast import summarise
from chemomet.errors import InputError
from chemomet.excess_risk import nact_excess_risk
from chemomet.mechanisms import (
    KNOWN,
    Mechanisms,
    _data_text,
    drug_mechanism_table,
    load_mechanisms,
    mechanism_settings,
    parse_mechanisms,
)
from chemomet.model.parameters import ModelSettings, PatientParameters
from chemomet.model.reference import reference_dmfs
from chemomet.population import Population
from chemomet.regimens import Strategy, load_drugs, parse_drugs
from chemomet.toxicity import toxicity_schedule, toxicity_uniforms

DRUGS = load_drugs()
TEN_YEARS = 10 * 365.25
STRATEGIES = ("surgery-first", "nact", "nact+rebastinib", "nact+pexidartinib", "nact+plerixafor", "nact-adaptive")


def one_patient(**over) -> PatientParameters:
    base = dict(
        alpha_per_day=0.03, beta_per_day=0.03 / np.log(10**12.5), log_cells0=np.log(4e9), mu=1e-12, gamma=1.0,
        chemosensitivity=0.4, resistant_fraction=0.0, resistant_kill_ratio=0.3, s_met=0.3, epsilon=2.0, T0=15.0,
        phi=0.5,
    )
    base.update(over)
    return PatientParameters(**{k: np.array([v], float) for k, v in base.items()})


@pytest.fixture(scope="module")
def small(cohort):
    return cohort[1].take(slice(0, 200))


def risk10(params, strategy, population, **kw):
    return 1.0 - cm.simulate(params, strategy, population=population, **kw).summary["dmfs_10y"].to_numpy()


# --------------------------------------------------------------------------------------------- data and switches
def test_the_data_file_describes_every_mechanism_with_sourced_priors():
    specs = load_mechanisms()
    assert list(specs) == list(KNOWN)
    assert [n for n, s in specs.items() if s.default] == ["doorway"]  # the shipped model: doorway only
    for spec in specs.values():
        assert spec.source and spec.off_state
        for prior in [*spec.parameters.values(), *spec.targets.values()]:
            assert prior.source and prior.lower <= prior.median <= prior.upper
    assert ModelSettings().mechanisms.is_default and Population().settings.mechanisms.is_default


def test_which_drug_acts_on_which_mechanism():
    rows = {(r["drug"], r["mechanism"]): r for r in drug_mechanism_table()}
    assert rows[("plerixafor", "mobilisation")]["effect"] == "raises"
    assert rows[("plerixafor", "mobilisation")]["evidence"] == "clinical"
    assert rows[("rebastinib", "doorway")]["effect"] == "lowers"
    assert ("rebastinib", "mobilisation") not in rows
    assert rows[("pexidartinib", "drug_toxicity")]["evidence"] == "clinical"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.pop("priming"), "mechanisms: mechanisms ['doorway', 'drug_toxicity', 'mobilisation'] are invalid"),
        (lambda t: t["priming"].update(direction="up"), "priming: direction = 'up' is invalid"),
        (lambda t: t["mobilisation"]["targets"].update(FOO=dict(t["mobilisation"]["targets"]["CXCR4"])),
         "mobilisation.targets.FOO is invalid; allowed: one of"),
        (lambda t: t["priming"]["parameters"]["take_increase"].update(sdlog=9.0),
         "priming: parameters.take_increase.sdlog = 9.0 is invalid"),
    ],
)
def test_a_bad_mechanisms_file_is_one_line(change, message):
    import tomllib

    table = tomllib.loads(_data_text("mechanisms.toml"))
    change(table)
    with pytest.raises(InputError) as err:
        parse_mechanisms(table)
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"inflammation": True}, "inflammation is not a known mechanism"),
        ({"priming": {"take": 1.0}}, "priming.take is not a parameter of priming"),
        ({"mobilisation": {"CXCR4": 1e9}}, "mobilisation.CXCR4 = 1000000000.0 is invalid; allowed: a number from 0"),
        ({"priming": "yes"}, "priming = 'yes' is invalid; allowed: true, false or a table"),
    ],
)
def test_bad_mechanism_switches_are_one_line(table, message):
    with pytest.raises(InputError) as err:
        mechanism_settings(table)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_bad_toxicity_entry_is_one_line_with_its_unit():
    spec = DRUGS["pexidartinib"].model_dump(exclude={"name", "acts_on"})
    spec["toxicity"] = {**spec["toxicity"], "probability": 1.5}
    with pytest.raises(InputError) as err:
        parse_drugs({"pexi2": spec})
    message = "toxicity.probability = 1.5 is invalid; allowed: a number from 0 to 1 (unit: probability per patient)"
    assert message in str(err.value)


# --------------------------------------------------------------------------------------------- (iii) off = identical
@pytest.mark.parametrize(
    "off",
    [
        {"priming": False, "mobilisation": False, "drug_toxicity": False},
        {"priming": {"take_increase": 0.0}},
        {"mobilisation": {"per_unit_stress": 0.0, "CXCR4": 0.0}},
    ],
)
def test_each_mechanism_off_is_bit_identical(small, off):
    pop, switched = Population(), Population().with_mechanisms(off)
    grid = np.array([0.0, 150.0, 365.0, 3652.5])
    for st in STRATEGIES:
        a = cm.simulate(small, st, population=pop, grid=grid, seed=4)
        b = cm.simulate(small, st, population=switched, grid=grid, seed=4)
        pd.testing.assert_frame_equal(a.summary, b.summary, check_exact=True)
        for k in a.trajectories:
            np.testing.assert_array_equal(a.trajectories[k], b.trajectories[k])


def test_toxicity_off_or_with_probability_zero_is_bit_identical(small):
    safe = {**DRUGS, "pexidartinib": DRUGS["pexidartinib"].model_copy(
        update={"toxicity": DRUGS["pexidartinib"].toxicity.model_copy(update={"probability": 0.0})})}
    on = Population().with_mechanisms({"drug_toxicity": True})
    a = cm.simulate(small, "nact+pexidartinib", seed=4).summary
    b = cm.simulate(small, "nact+pexidartinib", population=on, drugs=safe, seed=4).summary
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_doorway_off_is_epsilon_zero_exactly(small):
    calm = cm.simulate(PatientParameters(**{**small.to_frame().to_dict("list"), "epsilon": np.zeros(small.n)}),
                       "nact+plerixafor", seed=2).summary
    off = cm.simulate(small, "nact+plerixafor", seed=2,
                      population=Population().with_mechanisms({"doorway": False})).summary
    pd.testing.assert_frame_equal(calm, off, check_exact=True)


# --------------------------------------------------------------------------------------------- parity with solve_ivp
@pytest.mark.parametrize(
    ("mechanisms", "strategy"),
    [
        ({"priming": {"take_increase": 5.0}}, "nact"),
        ({"mobilisation": {"CXCR4": 10.0, "per_unit_stress": 2.0}}, "nact+plerixafor"),
        ({"doorway": False}, "nact"),
    ],
)
def test_each_mechanism_on_matches_the_solve_ivp_reference(mechanisms, strategy):
    """|ΔDMFS| <= 1e-3 against the cohort reference, for a mechanism that moves DMFS well beyond that."""
    p = one_patient()
    pop = Population().with_mechanisms(mechanisms)
    st = Strategy.parse(strategy)
    times = np.array([0.0, 1, 3, 5, 10]) * 365.25
    fast = cm.simulate(p, st, TEN_YEARS, grid=times, population=pop).trajectories["dmfs"][0]
    plain = cm.simulate(p, st, TEN_YEARS, grid=times).trajectories["dmfs"][0]
    ref = reference_dmfs(p, st.schedule(), DRUGS, pop.settings, times, n_pre_cohorts=2000, window_cohort_days=0.25)
    assert np.max(np.abs(fast - ref)) <= 1e-3
    if "doorway" not in mechanisms:
        assert abs(fast[-1] - plain[-1]) > 5e-3  # the mechanism matters here: the parity is not trivial


# --------------------------------------------------------------------------------------------- (iv) directions
def test_priming_raises_nact_risk_and_leaves_surgery_first_unchanged(small):
    on = Population().with_mechanisms({"priming": True})
    nact_off, nact_on = risk10(small, "nact", Population()), risk10(small, "nact", on)
    assert np.all(nact_on >= nact_off - 1e-12) and nact_on.mean() > nact_off.mean() + 1e-4
    np.testing.assert_array_equal(risk10(small, "surgery-first", on), risk10(small, "surgery-first", Population()))
    table = nact_excess_risk(small, "nact", population=on)
    parts = table[["part_mechanisms", "part_microenvironment", "part_delay", "part_kill_timing"]].sum(axis=1)
    np.testing.assert_allclose(parts, table["excess"], atol=1e-12)
    assert np.all(table["part_mechanisms"] >= -1e-12) and table["part_mechanisms"].mean() > 0


def test_mobilisation_raises_risk_and_doorway_off_lowers_it(small):
    mob = Population().with_mechanisms({"mobilisation": True})
    base = risk10(small, "nact+plerixafor", Population())
    assert np.all(risk10(small, "nact+plerixafor", mob) >= base - 1e-12)
    assert risk10(small, "nact+plerixafor", mob).mean() > base.mean()
    calm = Population().with_mechanisms({"doorway": False})
    assert np.all(risk10(small, "nact", calm) <= risk10(small, "nact", Population()) + 1e-12)
    assert nact_excess_risk(small.take(slice(0, 20)), "nact").columns.tolist()[-1] == "part_kill_timing"  # unchanged


def test_mobilisation_raises_ctcs_during_the_drug_but_priming_does_not(small):
    p = small.take(slice(0, 20))
    plain = cm.simulate(p, "nact+plerixafor").summary["ctc_expected_surgery"]
    mob = cm.simulate(p, "nact+plerixafor", population=Population().with_mechanisms({"mobilisation": True}))
    primed = cm.simulate(p, "nact+plerixafor", population=Population().with_mechanisms({"priming": True}))
    assert np.all(mob.summary["ctc_expected_surgery"] >= plain)
    np.testing.assert_allclose(primed.summary["ctc_expected_surgery"], plain, rtol=1e-6)  # grid node added only


# --------------------------------------------------------------------------------------------- (i) a drug can harm
def test_a_mobilising_drug_harms_some_patients_and_its_benefit_interval_goes_negative(cohort):
    _, params = cohort
    weights = np.full(params.n, 1.0 / params.n)
    intervals = {}
    mobilising = Population().with_mechanisms({"mobilisation": True})
    for name, pop in [("shipped", Population()), ("mobilisation", mobilising)]:
        benefit = risk10(params, "nact", pop) - risk10(params, "nact+plerixafor", pop)
        intervals[name] = (summarise(benefit, weights, 0.9, positive=True), benefit)
    shipped, benefit0 = intervals["shipped"]
    mobilised, benefit = intervals["mobilisation"]
    assert benefit0.min() >= -1e-12 and shipped["lo"] >= 0.0  # today: no drug can harm
    assert (benefit < 0).mean() > 0.1  # some virtual patients are harmed
    assert mobilised["lo"] < 0.0  # the 90% benefit interval includes negative values


def test_the_assessment_reports_a_negative_benefit_bound_for_a_mobilising_drug():
    from chemomet.assess.settings import AssessmentSettings

    fast = AssessmentSettings.default().with_overrides(
        {"sampling.n_twins": 4000, "sampling.n_simulated": 512, "sampling.n_drivers": 256,
         "sampling.n_trajectories": 64}
    )
    pop = Population().with_mechanisms({"mobilisation": True})
    result = cm.assess(cm.example_patient(), settings=fast, population=pop, drivers=False, trajectories=False)
    assert result.drug_risk_reduction_10y["nact+plerixafor"].lo < 0.0
    shipped = cm.assess(cm.example_patient(), settings=fast, population=Population(), drivers=False,
                        trajectories=False)
    assert shipped.drug_risk_reduction_10y["nact+plerixafor"].lo >= 0.0


# --------------------------------------------------------------------------------------------- (ii) toxicity
def test_toxicity_delays_the_remaining_chemotherapy_and_stops_the_drug():
    st = Strategy.parse("nact+pexidartinib")
    planned = st.schedule()
    changed, probability = toxicity_schedule(st)
    event = 14.0 + DRUGS["pexidartinib"].toxicity.onset_days
    assert probability == DRUGS["pexidartinib"].toxicity.probability
    assert max(t for t, d, _ in changed.dose_events if d == "pexidartinib") < event
    before = [e for e in planned.dose_events if DRUGS[e[1]].role == "cytotoxic" and e[0] < event]
    after = [(t + 28.0, d, x) for t, d, x in planned.dose_events if DRUGS[d].role == "cytotoxic" and t >= event]
    assert [e for e in changed.dose_events if DRUGS[e[1]].role == "cytotoxic"] == before + after
    assert changed.surgery_day == planned.surgery_day + 28.0 and changed.chemo_days == (14.0, 175.0 + 28.0)


def test_toxicity_that_stops_chemotherapy_shortens_it():
    tox = DRUGS["pexidartinib"].toxicity.model_copy(update={"action": "stop", "probability": 0.5})
    drugs = {**DRUGS, "pexidartinib": DRUGS["pexidartinib"].model_copy(update={"toxicity": tox})}
    st = Strategy.parse("nact+pexidartinib", drugs=drugs)
    changed, _ = toxicity_schedule(st, drugs)
    event = 14.0 + tox.onset_days
    assert all(t < event for t, _, _ in changed.dose_events)
    assert changed.surgery_day == event + st.surgery_delay_days < st.schedule().surgery_day


@pytest.mark.parametrize("action", ["delay", "stop"])
def test_toxicity_changes_the_outcome_of_the_patients_who_have_it(small, action):
    tox = DRUGS["pexidartinib"].toxicity.model_copy(update={"action": action, "probability": 0.3})
    drugs = {**DRUGS, "pexidartinib": DRUGS["pexidartinib"].model_copy(update={"toxicity": tox})}
    on = Population().with_mechanisms({"drug_toxicity": True})
    plain = cm.simulate(small, "nact+pexidartinib", drugs=drugs, seed=5).summary
    out = cm.simulate(small, "nact+pexidartinib", population=on, drugs=drugs, seed=5).summary
    hit = toxicity_uniforms(5, np.arange(small.n)) < 0.3
    assert 0.15 < hit.mean() < 0.45
    changed, _ = toxicity_schedule(Strategy.parse("nact+pexidartinib", drugs=drugs), drugs)
    np.testing.assert_array_equal(out["surgery_day"].to_numpy()[hit], changed.surgery_day)
    pd.testing.assert_frame_equal(out[~hit], plain[~hit], check_exact=True)  # the others are untouched
    if action == "stop":  # less chemotherapy: fewer pCRs, bigger residual tumours (on average: a non-responder
        # operated on earlier has had less time to grow through chemotherapy)
        log_res = np.log(out["residual_cells_at_surgery"][hit]), np.log(plain["residual_cells_at_surgery"][hit])
        assert log_res[0].mean() > log_res[1].mean()
        assert out["p_pcr"][hit].sum() < plain["p_pcr"][hit].sum()
    else:  # held chemotherapy: the primary stays in place four weeks longer
        assert np.all(out["surgery_day"][hit] > plain["surgery_day"][hit])
    assert np.any(np.abs(out["dmfs_10y"][hit] - plain["dmfs_10y"][hit]) > 1e-6)


def test_toxicity_draws_do_not_depend_on_chunking(small):
    on = Population().with_mechanisms({"drug_toxicity": True})
    tox = DRUGS["pexidartinib"].toxicity.model_copy(update={"probability": 0.4})
    drugs = {**DRUGS, "pexidartinib": DRUGS["pexidartinib"].model_copy(update={"toxicity": tox})}
    whole = cm.simulate(small, "nact+pexidartinib", population=on, drugs=drugs, seed=9, chunk_size=2048).summary
    chunked = cm.simulate(small, "nact+pexidartinib", population=on, drugs=drugs, seed=9, chunk_size=37,
                          workers=2).summary
    pd.testing.assert_frame_equal(whole, chunked, check_exact=True)
    tail = cm.simulate(small.take(slice(120, 200)), "nact+pexidartinib", population=on, drugs=drugs, seed=9,
                       start_index=120).summary
    pd.testing.assert_frame_equal(whole.iloc[120:].drop(columns="patient").reset_index(drop=True),
                                  tail.drop(columns="patient"), check_exact=True)


def test_toxicity_is_refused_with_response_adapted_nact_and_in_the_decomposition(small):
    on = Population().with_mechanisms({"drug_toxicity": True})
    with pytest.raises(InputError, match="not modelled with response-adapted NACT"):
        cm.simulate(small.take([0]), "nact-adaptive+pexidartinib", population=on)
    with pytest.raises(ValueError, match="does not decompose drug toxicity"):
        nact_excess_risk(small.take([0]), "nact+pexidartinib", population=on)
    assert Mechanisms(drug_toxicity=True).without_new().drug_toxicity
