"""Target calibration pieces on small cohorts: monotone root finding, target functions against independent
computations (lifelines, direct Poisson expectations), and the parameter/config mapping."""

import numpy as np
import pytest

from chemomet.calibrate import targets as tg
from chemomet.calibrate.cohort import simulate_arm
from chemomet.calibrate.vector import TREATMENT, prior_config, treatment_theta, with_treatment


@pytest.fixture(scope="module")
def base():
    return prior_config()


@pytest.fixture(scope="module")
def cohort(base):
    return tg.VirtualCohort.draw(base, 400, seed=1)


def test_bisect_finds_roots_either_direction():
    x, val, ok = tg.bisect(lambda x: x**3, -2, 3, 1.0)
    assert ok and abs(x - 1.0) < 1e-5
    x, val, ok = tg.bisect(lambda x: -x, -2, 3, -1.0)
    assert ok and abs(x - 1.0) < 1e-5
    x, val, ok = tg.bisect(lambda x: x, 0, 1, 5.0)
    assert not ok and x == 1


def test_theta_config_roundtrip(base):
    th = treatment_theta(base)
    np.testing.assert_allclose(treatment_theta(with_treatment(th + 0.1, base)), th + 0.1, atol=1e-12)


def test_pcr_increases_with_chemosensitivity(base, cohort):
    grp = tg.pcr_groups(cohort)["TNBC"]
    th = treatment_theta(base)
    rates = []
    for d in (-0.3, 0.0, 0.3):
        v = th.copy()
        v[TREATMENT.index("log_s_tnbc")] += d
        rates.append(tg.pcr_rate(with_treatment(v, base), grp))
    assert rates[0] <= rates[1] <= rates[2] and rates[2] > rates[0]


def test_ctc_prevalence_matches_poisson_draws(base, cohort):
    """The expected prevalence equals the share of engine Poisson draws with >= 1 CTC (independent path)."""
    expected = tg.ctc_prevalence(base, cohort)
    big = tg.VirtualCohort.draw(base, 20000, seed=2)
    counts = simulate_arm(base, big, "surgery-only", horizon_years=1.0).summary["ctc_count_baseline"]
    assert abs(tg.ctc_prevalence(base, big) - (counts >= 1).mean()) < 0.015
    assert 0 < expected < 1


def test_tmem_odds_ratio_grows_with_theta(base, cohort):
    th = treatment_theta(base)
    ors = []
    for d in (-1.0, 1.0):
        v = th.copy()
        v[TREATMENT.index("log_theta")] += d
        ors.append(tg.tmem_odds_ratio(with_treatment(v, base), cohort))
    assert 1.0 < ors[0] < ors[1]


def test_ebctcg_arms_share_the_cohort(base, cohort):
    out = tg.ebctcg(base, cohort)
    assert 0 < out["dr15_adjuvant"] < 1 and 0 < out["dr15_nact"] < 1
    np.testing.assert_allclose(out["rate_ratio"], np.log1p(-out["dr15_nact"]) / np.log1p(-out["dr15_adjuvant"]))


def test_pan_check_is_the_population_given_no_positive_nodes():
    """Pan 2017's cohort is T1N0: weighted by the probability of a count of 0 its late recurrence falls below
    that of the same T1 patients taken whatever their nodes, and without nodal seeding (every count 0) the weights
    change nothing."""
    import copy

    from chemomet.calibrate.cohort import VirtualCohort
    from chemomet.calibrate.shipped import calibrated_config
    from chemomet.calibrate.targets import pan_late_recurrence

    cfg = calibrated_config()
    cohort = VirtualCohort.draw(cfg, 400, seed=5)
    t1 = cohort.with_covariates(er=True, pr=True, her2=False,
                                diameter_mm=np.minimum(cohort.covariates["diameter_mm"].to_numpy(), 20.0))
    given_n0 = pan_late_recurrence(cfg, t1)["dr_5_20"]
    any_nodes = pan_late_recurrence(cfg, t1, nodes=None)["dr_5_20"]
    one_to_three = pan_late_recurrence(cfg, t1, nodes=(1, 3))["dr_5_20"]
    assert given_n0 < any_nodes and given_n0 < one_to_three
    no_seeding = copy.deepcopy(cfg)
    no_seeding["nodes"]["seeding_ratio"] = 0.0
    assert pan_late_recurrence(no_seeding, t1)["dr_5_20"] == pytest.approx(
        pan_late_recurrence(no_seeding, t1, nodes=None)["dr_5_20"], rel=1e-12)


def test_ctc_count_model_fit_improves_the_misfit_and_keeps_the_prevalence(base):
    """The (k, b) fit on a small cohort: its misfit is at most the start's, the re-solved p_col keeps the CTC
    prevalence at its target (checked by the independent closed form of ctc_prevalence), and the Allard term keeps
    the background where 1 of 344 people without cancer count >= 2 is plausible (share < 0.0161, its upper bound)."""
    cohort, big = tg.VirtualCohort.draw(base, 1500, seed=1), tg.VirtualCohort.draw(base, 6000, seed=2)
    th = treatment_theta(base)
    p = TREATMENT.index("log10_colonisation_efficiency")
    th[p] = tg.bisect(lambda x: tg.ctc_prevalence(with_treatment(np.r_[th[:p], x, th[p + 1 :]], base), cohort),
                      th[p] - 3, th[p] + 3, 0.252)[0]
    start_cfg = with_treatment(th, base)
    fit = tg.fit_ctc_count_model(start_cfg, cohort, big)
    k, b = np.exp(fit["theta"])
    lo, hi = tg.COUNT_MODEL_BOUNDS["log_ctc_count_dispersion"]
    assert lo <= k <= hi
    fitted = th.copy()
    fitted[TREATMENT.index("log_ctc_count_dispersion")], fitted[TREATMENT.index("log_ctc_background")] = fit["theta"]
    fitted[p] = fit["log10_p_col"]
    assert tg.ctc_prevalence(with_treatment(fitted, base), cohort) == pytest.approx(0.252, abs=1e-6)
    assert tg.background_share_two_or_more(b) < 0.0161
    assert fit["misfit"] <= fit["misfit_at_start"]  # the start: the configuration's k (prior 0.5) and b = 0.05
    assert np.all(np.linalg.eigvalsh(fit["cov"]) > 0)


def test_ctc_count_model_recovers_known_dispersion_and_background(base):
    """Identifiability of the two count parameters: data simulated from the model at k = 0.35, b = 0.06 (the four
    ratios the model gives there, with Bidard's standard errors; a background count at the model's share on 3,440
    people, ten times Allard's) are fitted back within 3 standard errors, with a finite covariance."""
    cohort, big = tg.VirtualCohort.draw(base, 1500, seed=1), tg.VirtualCohort.draw(base, 6000, seed=2)
    truth = np.log([0.35, 0.06])
    published = tg.ctc_count_data()
    at_truth = tg.count_model_objective(base, cohort, big)(truth)["ratios"]
    n_people = 3440
    pseudo = {
        "ratios": {c: (at_truth[c], sd) for c, (_, sd) in published["ratios"].items()},
        "background": (round(tg.background_share_two_or_more(0.06) * n_people), n_people),
    }
    fit = tg.fit_ctc_count_model(base, cohort, big, data=pseudo)
    se = np.sqrt(np.diag(fit["cov"]))
    assert np.all(np.isfinite(se)) and np.all(se < 1.0), se
    assert np.all(np.abs(fit["theta"] - truth) < 3 * se), (np.exp(fit["theta"]), se)
    assert fit["misfit"] < 1.0
