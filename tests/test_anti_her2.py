"""Anti-HER2 therapy: the engine's closed forms against the solve_ivp reference and a brute-force supremum, the
regimen data, and the calibration to pCR with and without trastuzumab and to the EBCTCG 2021 overview."""

import numpy as np
import pytest
from scipy.integrate import quad

import chemomet as cm
from chemomet.calibrate.anti_her2 import (
    EBCTCG_2021_TRASTUZUMAB,
    NEOSPHERE_PCR,
    adjuvant_rate_ratio,
    pcr_by_group,
    pooled_target,
)
from chemomet.calibrate.cohort import VirtualCohort
from chemomet.errors import InputError
from chemomet.model.engine import endocrine_window
from chemomet.model.metastases import reach_after_window
from chemomet.model.primary import course_in_window
from chemomet.model.reference import reference_dmfs
from chemomet.model.timeline import build_timeline
from chemomet.population import Population
from chemomet.regimens import Strategy, load_drugs, parse_regimens
from tests.test_metastases import one_patient

DRUGS = load_drugs()
TIMES = np.array([0.0, 2, 5, 8, 12, 15]) * 365.25


@pytest.mark.parametrize(
    "strategy, regimen, her2, endocrine",
    [
        ("nact", "ac-paclitaxel-weekly-trastuzumab", 0.8, 0.0),  # course starts mid-window, runs past surgery
        ("surgery-first", "docetaxel-trastuzumab-pertuzumab", 0.8, 0.0),  # adjuvant, from the first dose
        pytest.param(  # overlapping with tamoxifen after NACT (12 s)
            "nact:tamoxifen", "ac-paclitaxel-weekly-trastuzumab-pertuzumab", 0.6, 0.7, marks=pytest.mark.slow
        ),
    ],
)
def test_anti_her2_therapy_matches_the_solve_ivp_reference(strategy, regimen, her2, endocrine, population):
    """|ΔDMFS| <= 1e-3 against cohorts grown one by one with solve_ivp (rtol 1e-10), the antibodies' kill a
    segment of the primary's and every colony's ODE."""
    p = one_patient(mu=3e-13, alpha_per_day=0.02, beta_per_day=0.02 / np.log(10**12.5),
                    her2_sensitivity=her2, endocrine_sensitivity=endocrine)
    st = Strategy.parse(strategy, regimen)
    schedule = st.schedule()
    fast = cm.simulate(p, st, 15 * 365.25, grid=TIMES, population=population).trajectories["dmfs"][0]
    s = population.settings
    days = endocrine_window(schedule, build_timeline(schedule, DRUGS, s.k_macrophage_per_day, s.k_mena_per_day))
    ref = reference_dmfs(p, schedule, DRUGS, s, TIMES, n_pre_cohorts=2000, endocrine_days=days)
    alone = Strategy.parse(strategy, st.regimen.model_copy(update={"anti_her2": None}))  # the same chemotherapy
    chemo_alone = cm.simulate(p, alone, 15 * 365.25, grid=TIMES, population=population).trajectories["dmfs"][0]
    assert np.max(np.abs(fast - ref)) <= 1e-3
    assert fast[-1] - chemo_alone[-1] > 0.01  # the antibodies changed the outcome ...
    assert fast[-1] < 0.999  # ... without eradicating everything (the comparison is not trivial)


def test_the_course_inside_the_window_is_the_exact_integral():
    """``∫_c^t e^{β(r-c)} 1_course(r) dr`` at every node against adaptive quadrature."""
    _, p = Population().sample(2, 3)
    sch = Strategy.parse("nact", "ac-paclitaxel-weekly-trastuzumab").schedule()
    tl = build_timeline(sch, DRUGS, 0.1, 0.1)
    weighted, on = course_in_window(p, tl, sch.anti_her2.start_day, sch.anti_her2.end_day)
    b = p.beta_per_day[1]
    for j in (0, 40, tl.nodes.size // 2, tl.nodes.size - 1):
        t = tl.nodes[j]
        lo, hi = sch.anti_her2.start_day, min(t, sch.anti_her2.end_day)
        ref = quad(lambda r: np.exp(b * (r - tl.start)), lo, hi)[0] if hi > lo else 0.0
        assert weighted[1, j] == pytest.approx(ref, rel=1e-12, abs=1e-12)
    assert tl.nodes[:-1][on].min() == sch.anti_her2.start_day  # the switch-on day is a node


def test_reach_after_window_with_overlapping_courses_equals_the_brute_force_supremum():
    """``Q(t) = sup_r min(V̂(r), running min Ĥ)`` on a 0.05-day grid, for two overlapping courses whose total rate
    makes ``Ĥ`` fall, then only ``V̂`` fall, then both rise again."""
    a, b, L, c = np.array([[28.0]]), np.array([[0.02 / 28.0]]), 18.42, 0.0
    g_shift, h_min = np.array([[3.0]]), np.array([[20.0]])
    courses = [(np.array([0.03]), 100.0, 465.0), (np.array([0.012]), 130.0, 1950.0)]
    fine = np.arange(100.0, 2600.0, 0.05)[None, :]

    def shift(t):
        return sum(k[:, None] * (np.exp(b * (np.clip(t, e0, e1) - c)) - np.exp(b * (e0 - c))) / b
                   for k, e0, e1 in courses)

    e_t = np.exp(b * (fine - c))
    v = (a - L) * e_t - g_shift - shift(fine)
    h = v + L * e_t
    brute = np.maximum.accumulate(np.minimum(v, np.minimum(h_min, np.minimum.accumulate(h, axis=1))), axis=1)
    query = np.array([[150.0, 400.0, 465.0, 900.0, 1950.0, 2500.0]])
    closed = reach_after_window(a, b, L, c, g_shift, h_min, query, courses)
    expect = brute[0, np.searchsorted(fine[0], query[0] - 1e-9)]
    np.testing.assert_allclose(closed[0], expect, atol=2e-3)


def test_her2_negative_patients_gain_nothing_from_the_antibodies():
    cov, params = Population().sample(400, 4)
    neg = np.flatnonzero(~cov["her2"].to_numpy(bool))
    assert neg.size and np.all(params.her2_sensitivity[neg] == 0.0)
    plain = cm.simulate(params.take(neg), "nact").summary
    treated = cm.simulate(params.take(neg), Strategy.parse("nact", "ac-paclitaxel-weekly-trastuzumab")).summary
    # equal to rounding: the antibody course adds terms of exactly zero that change the order of floating-point
    # sums (measured: 1.5e-24 at most); any real effect of the antibodies would be of order 1e-3
    np.testing.assert_allclose(plain["dmfs_10y"].to_numpy(), treated["dmfs_10y"].to_numpy(), rtol=1e-12, atol=1e-15)
    assert np.array_equal(plain["p_pcr"].to_numpy(), treated["p_pcr"].to_numpy())


def test_anti_her2_sensitivity_comes_from_its_own_stream():
    """Adding the anti-HER2 draw moved no other draw: each patient's value does not depend on where the sample
    starts, HER2-positive patients follow the configured log-normal (median, SD of log) and the configured
    non-responding share."""
    population = Population()
    cov, params = population.sample(4000, 9)
    _, later = population.sample(100, 9, start=200)
    np.testing.assert_array_equal(params.her2_sensitivity[200:300], later.her2_sensitivity)
    t = population.config["treatment"]
    h = params.her2_sensitivity[cov["her2"].to_numpy(bool)]
    responders = h[h > 0]
    assert abs((h == 0).mean() - t["anti_her2_resistance_probability"]) < 0.05
    assert np.median(responders) == pytest.approx(t["anti_her2_sensitivity_median"], rel=0.1)
    assert np.std(np.log(responders)) == pytest.approx(t["anti_her2_sensitivity_sdlog"], rel=0.15)
    _, resist = Population(dict(population.config, treatment={**t, "anti_her2_resistance_probability": 0.4})).sample(
        4000, 9
    )
    assert abs((resist.her2_sensitivity[cov["her2"].to_numpy(bool)] == 0).mean() - 0.4) < 0.05


def test_regimen_files_check_the_anti_her2_table():
    phase = {"drugs": [{"drug": "docetaxel", "dose_mg_m2": 75}], "cycles": 4, "interval_days": 21}

    def regimen(**anti):
        return {"x": {"name": "x", "source": "test", "phases": [phase], "anti_her2": anti}}

    assert parse_regimens(regimen(agents=["trastuzumab"]))["x"].anti_her2.weeks == 52.0
    with pytest.raises(InputError, match=r"anti_her2.agents = 'paclitaxel' is invalid; allowed: one of \["):
        parse_regimens(regimen(agents=["paclitaxel"]))
    with pytest.raises(InputError, match="lists a drug twice"):
        parse_regimens(regimen(agents=["trastuzumab", "trastuzumab"]))
    with pytest.raises(InputError, match="weeks"):
        parse_regimens(regimen(agents=["trastuzumab"], weeks=0))


def test_shipped_calibration_meets_its_targets_on_a_fresh_cohort():
    """The calibration (chemomet.calibrate.anti_her2, its own cohort) must carry over to a fresh cohort: the pooled
    pCR with trastuzumab within 0.03 of Cortazar 2014's, the EBCTCG 2021 rate ratio inside its 95% interval, and
    pertuzumab raising the pCR odds by NeoSphere's odds ratio within a factor 1.3 (on AC -> weekly paclitaxel).
    6,000 patients: the calibrated rate ratio (0.697, the smallest the model reaches) sits near the interval's upper
    end, and at 1,500 patients the cohort's own noise (about ±0.015) decided the test (0.714 at 1,500, 0.698 and
    0.703 on two cohorts of 6,000)."""
    cfg = Population().config
    cohort = VirtualCohort.draw(cfg, 6000, seed=78)
    with_h = pcr_by_group(cfg, cohort, "ac-paclitaxel-weekly-trastuzumab")
    without = pcr_by_group(cfg, cohort, "ac-paclitaxel-weekly")
    assert abs(with_h["pooled"] - pooled_target(cfg)) <= 0.03
    assert with_h["pooled"] > without["pooled"] + 0.08
    rr, se = EBCTCG_2021_TRASTUZUMAB
    assert abs(np.log(adjuvant_rate_ratio(cfg, cohort)) - np.log(rr)) <= 1.96 * se
    with_hp = pcr_by_group(cfg, cohort, "ac-paclitaxel-weekly-trastuzumab-pertuzumab")["pooled"]

    def odds(x):
        return x / (1 - x)

    published = odds(NEOSPHERE_PCR["docetaxel-trastuzumab-pertuzumab"]) / odds(NEOSPHERE_PCR["docetaxel-trastuzumab"])
    assert published / 1.3 <= odds(with_hp) / odds(with_h["pooled"]) <= published * 1.3


def test_docetaxel_calibration_carries_to_neosphere_on_a_fresh_cohort():
    """Docetaxel's kill was fitted to NeoSphere arm A (docetaxel x4 + trastuzumab, pooled HER2+ pCR 29.0%; Gianni L
    et al. Lancet Oncol 2012;13:25) on 12,000 virtual patients; on a fresh cohort arm A stays within 0.06 of it
    (about 2.5 Monte Carlo SE here), and arm B (pertuzumab added, 45.8%), which was not fitted, within 0.08.
    Before the calibration the two arms came out near 0.4% and 4%."""
    cfg = Population().config
    cohort = VirtualCohort.draw(cfg, 3000, seed=80)
    arm_a = pcr_by_group(cfg, cohort, "docetaxel-trastuzumab")["pooled"]
    arm_b = pcr_by_group(cfg, cohort, "docetaxel-trastuzumab-pertuzumab")["pooled"]
    assert abs(arm_a - NEOSPHERE_PCR["docetaxel-trastuzumab"]) <= 0.06, arm_a
    assert abs(arm_b - NEOSPHERE_PCR["docetaxel-trastuzumab-pertuzumab"]) <= 0.08, arm_b


def test_fit_docetaxel_recovers_a_known_kill():
    """The fitting function itself: on a small cohort, it finds the kmax at which arm A's pCR equals the target."""
    from chemomet.calibrate import anti_her2
    from chemomet.regimens import load_drugs

    cfg = Population().config
    cohort = VirtualCohort.draw(cfg, 600, seed=81)
    drugs = load_drugs()
    slow = {**drugs, "docetaxel": drugs["docetaxel"].model_copy(update={"kmax_per_day": 2.5})}
    reached = pcr_by_group(cfg, cohort, "docetaxel-trastuzumab", slow)["pooled"]
    target = dict(anti_her2.NEOSPHERE_PCR)
    try:
        anti_her2.NEOSPHERE_PCR["docetaxel-trastuzumab"] = reached
        fit = anti_her2.fit_docetaxel(cfg, cohort)
    finally:
        anti_her2.NEOSPHERE_PCR.update(target)
    assert fit["docetaxel_kmax_per_day"] == pytest.approx(2.5, rel=0.01)


def test_adjuvant_pertuzumab_adds_benefit_but_not_less_than_aphinity_allows():
    """A check, not fitted: adding a year of pertuzumab to adjuvant chemotherapy + trastuzumab. APHINITY's 6-year
    invasive-disease-free survival hazard ratio is 0.76 (0.64-0.91) (Piccart M et al. J Clin Oncol 2021;39:1448).
    The model's distant-recurrence rate ratio over years 0-6 is about 0.645 on large cohorts: at the interval's
    lower edge, i.e. the pCR-calibrated pertuzumab kill overstates the adjuvant benefit (docs/science.md §2.14).
    Asserted: a benefit, and one no smaller than the interval's upper end allows."""
    cfg = Population().config
    cohort = VirtualCohort.draw(cfg, 1500, seed=79)
    ratio = adjuvant_rate_ratio(cfg, cohort, years=6.0, treated="ac-paclitaxel-weekly-trastuzumab-pertuzumab",
                                control="ac-paclitaxel-weekly-trastuzumab")
    assert ratio <= 0.91
