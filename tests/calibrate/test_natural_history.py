"""Natural-history likelihood: closed form vs the engine, the truncated-node estimator vs brute force, and
identifiability on a simulated cohort from known parameters (no scikit-survival needed)."""

import numpy as np
import pandas as pd
import pytest
from scipy.special import logsumexp

import chemomet as cm
from chemomet.calibrate import natural_history as nh
from chemomet.calibrate.vector import NATURAL_HISTORY, natural_history_theta, with_natural_history

TRUTH = NATURAL_HISTORY.vector(
    {"log10_mu": -12.7, "log_mu_sdlog": 0.5, "log_dt_scale": 0.7, "log_dt_sdlog": 0.0, "grade_log_dt_slope": -0.9}
)


def transbig_like(n: int, seed: int) -> pd.DataFrame:
    """Covariates resembling TRANSBIG (node-negative, age <= 60, ~20 mm, 2/3 ER+)."""
    r = np.random.default_rng(seed)
    er = r.random(n) < 0.68
    return pd.DataFrame(
        {
            "age": np.clip(r.normal(46, 7, n), 24, 60),
            "diameter_mm": np.clip(20 * np.exp(0.35 * r.standard_normal(n)), 6, 50),
            "grade": r.choice([1, 2, 3], n, p=[0.15, 0.42, 0.43]),
            "er": er,
            "pr": er,
            "her2": np.zeros(n, bool),
            "alveolar_or_trabecular": np.zeros(n, bool),
            "tmem_10hpf": np.full(n, np.nan),
        }
    )


def test_closed_form_matches_engine():
    pop = cm.Population()
    _, params = pop.sample(300, rng=3)
    grid = np.array([0.0, 100.0, 400.0, 1000.0, 2000.0, 3000.0, 5000.0])
    engine = cm.simulate(params, nh.UNTREATED_STRATEGY, horizon_days=5000, grid=grid, population=pop)
    engine = engine.trajectories["dmfs"]
    surgery_day = nh.untreated_surgery_day()  # the strategy's, as the engine used it
    mine = []
    for t in grid:
        _, lam_t, lam_0 = nh.log_hazard_and_cumulative(params, np.full(params.n, t), pop.settings, surgery_day)
        mine.append(np.exp(-(lam_t - lam_0)))
    np.testing.assert_allclose(np.column_stack(mine), engine, atol=1e-10)
    # the hazard is the derivative of the cumulative hazard
    t = np.full(params.n, 800.0)
    log_h, lam, _ = nh.log_hazard_and_cumulative(params, t, pop.settings, surgery_day)
    _, lam2, _ = nh.log_hazard_and_cumulative(params, t + 1e-3, pop.settings, surgery_day)
    ok = np.isfinite(log_h)
    np.testing.assert_allclose((lam2 - lam)[ok] / 1e-3, np.exp(log_h[ok]), rtol=1e-4)


def test_truncated_event_estimator_is_unbiased():
    cov = transbig_like(12, 0)
    time = np.linspace(300.0, 4000.0, 12)
    event = np.ones(12, bool)
    small = nh.MarginalModel(cov, time, event, n_nodes=512, seed=1)._event_terms(TRUTH)
    big = nh.MarginalModel(cov, time, event, n_nodes=16384, seed=2)
    log_h, lam_t, _, _ = big._node_terms(TRUTH, time)
    brute = logsumexp(-lam_t + log_h, axis=1) - np.log(big.n_nodes)
    assert abs(np.mean(small - brute)) < 0.05
    np.testing.assert_allclose(small, brute, atol=0.25)


def test_config_roundtrip():
    cfg = with_natural_history(TRUTH)
    np.testing.assert_allclose(natural_history_theta(cfg), TRUTH, atol=1e-12)
    assert cfg["growth"]["grade_doubling_factor"][1] == 1.0


@pytest.mark.slow  # about 25 s: a full natural-history fit
def test_identifiability_simulated_cohort():
    """A TRANSBIG-sized cohort simulated by the engine from known parameters is fitted back within 3 SE."""
    cov = transbig_like(198, 5)
    censor = np.random.default_rng(6).uniform(5, 15, 198) * 365.25
    time, event = nh.simulate_cohort(with_natural_history(TRUTH), cov, censor, seed=5)
    assert 25 <= event.sum() <= 80
    res = nh.fit(nh.MarginalModel(cov, time, event, n_nodes=256, seed=11))
    z = (res.theta - TRUTH) / res.se
    assert np.all(res.se < 1.0), res.se
    assert np.all(np.abs(z) < 3.0), z
    # and a clearly wrong parameter set is rejected by the likelihood
    wrong = TRUTH.copy()
    wrong[NATURAL_HISTORY.index("log10_mu")] += 1.0
    m = nh.MarginalModel(cov, time, event, n_nodes=256, seed=11)
    assert m.loglik(wrong) < res.loglik - 10.0


@pytest.mark.parametrize("years", [5.0, 10.0])
def test_risk_increases_with_size(years):
    cov = transbig_like(2, 0)
    cov["diameter_mm"] = [10.0, 40.0]
    cov["grade"] = 2
    cov["er"] = cov["pr"] = True
    m = nh.MarginalModel(cov, np.array([1000.0, 1000.0]), np.zeros(2, bool), n_nodes=256)
    r = m.risk(TRUTH, years)
    assert 0 < r[0] < r[1] < 1


def test_bootstrap_returns_finite_spreads():
    from chemomet.calibrate.validation import bootstrap

    cov = transbig_like(80, 8)
    censor = np.full(80, 12 * 365.25)
    time, event = nh.simulate_cohort(with_natural_history(TRUTH), cov, censor, seed=8)
    out = bootstrap(cov, time, event, TRUTH, n_boot=3, n_nodes=32, workers=1)
    assert set(out["sd"]) == set(nh.PARAM_NAMES)
    assert all(np.isfinite(v) and v >= 0 for v in out["sd"].values())


# ---------------------------------------------------------------------------------------------- dormancy
DORMANT_TRUTH = np.r_[TRUTH, np.log(0.7 / 0.3), np.log(2500.0)]  # q = 0.7, mean dormancy 2,500 days


def test_dormant_closed_form_matches_engine():
    """With dormancy the likelihood's Λ(t) is the engine's (docs/science.md §2.7) and h is its derivative."""
    pop = cm.Population(with_natural_history(DORMANT_TRUTH, cm.Population().config))
    _, params = pop.sample(200, rng=4)
    assert np.all(params.dormant_fraction == pytest.approx(0.7))
    grid = np.array([0.0, 100.0, 400.0, 1000.0, 3000.0, 6000.0])
    engine = cm.simulate(params, nh.UNTREATED_STRATEGY, horizon_days=6000, grid=grid, population=pop)
    surgery_day = nh.untreated_surgery_day()
    mine = []
    for t in grid:
        _, lam_t, lam_0 = nh.log_hazard_and_cumulative(params, np.full(params.n, t), pop.settings, surgery_day)
        mine.append(np.exp(-(lam_t - lam_0)))
    np.testing.assert_allclose(np.column_stack(mine), engine.trajectories["dmfs"], atol=1e-9)
    t = np.full(params.n, 2000.0)  # after surgery: only woken colonies can appear
    log_h, lam, _ = nh.log_hazard_and_cumulative(params, t, pop.settings, surgery_day)
    _, lam2, _ = nh.log_hazard_and_cumulative(params, t + 1e-3, pop.settings, surgery_day)
    ok = np.isfinite(log_h)
    assert ok.mean() > 0.9
    np.testing.assert_allclose((lam2 - lam)[ok] / 1e-3, np.exp(log_h[ok]), rtol=1e-4)


def test_no_dormancy_leaves_the_likelihood_unchanged():
    cov = transbig_like(20, 1)
    time = np.linspace(300.0, 5000.0, 20)
    event = np.arange(20) % 3 == 0
    m = nh.MarginalModel(cov, time, event, n_nodes=64)
    almost_none = np.r_[TRUTH, -40.0, np.log(2500.0)]  # q = 4e-18
    assert m.loglik(almost_none) == pytest.approx(m.loglik(TRUTH), abs=1e-9)


def test_mean_dormancy_is_identified_on_a_simulated_cohort():
    """Identifiability of the new parameter: on a cohort simulated with dormancy, the profile likelihood of the
    mean dormancy (the other parameters at their true values) peaks within x2 of the truth, and its 95% profile
    interval (a drop of 1.92 nats) excludes 4x off on both sides. The cohort is three times TRANSBIG's size: on
    198 patients the same drop is about 2 nats, i.e. TRANSBIG alone pins the mean dormancy only to about x4."""
    cov = transbig_like(600, 5)
    censor = np.random.default_rng(6).uniform(5, 15, 600) * 365.25
    time, event = nh.simulate_cohort(with_natural_history(DORMANT_TRUTH), cov, censor, seed=5)
    assert 60 <= event.sum() <= 270
    m = nh.MarginalModel(cov, time, event, n_nodes=256, seed=11)
    means = np.exp(np.linspace(np.log(2500 / 4), np.log(2500 * 4), 9))
    ll = np.array([m.loglik(np.r_[TRUTH, DORMANT_TRUTH[5], np.log(x)]) for x in means])
    best = means[np.argmax(ll)]
    assert 2500 / 2 <= best <= 2500 * 2, (means, ll)
    assert ll[0] < ll.max() - 1.92 and ll[-1] < ll.max() - 1.92, ll


def test_doubling_time_measurements_enter_the_likelihood():
    cov = transbig_like(10, 2)
    m0 = nh.MarginalModel(cov, np.full(10, 3000.0), np.zeros(10, bool), n_nodes=32)
    meas = nh.published_doubling_times()
    m1 = nh.MarginalModel(cov, np.full(10, 3000.0), np.zeros(10, bool), n_nodes=32, measurements=meas)
    # TRUTH doubles the prior doubling times (log_dt_scale 0.7): both Ryu terms pull back
    cfg = with_natural_history(TRUTH)
    dts = cfg["growth"]["doubling_time_median_days"]
    expected = sum(-0.5 * (np.log(dts[x.subtype] / x.median_days) / x.se_log) ** 2 for x in meas)
    assert expected < -1.0
    assert m1.loglik(TRUTH) - m0.loglik(TRUTH) == pytest.approx(expected)
    assert meas[0].se_log == pytest.approx(np.log(1.5) / 1.96)


def test_fold_and_bootstrap_models_carry_the_measurements_whole():
    """A training fold or bootstrap resample keeps the published doubling times at full weight: they come from
    other patients, so resampling the cohort must not resample (or drop) them."""
    cov = transbig_like(12, 3)
    time, event = np.full(12, 3000.0), np.arange(12) % 4 == 0
    meas = nh.published_doubling_times()
    rows = [0, 2, 2, 5, 7]
    plain = nh.MarginalModel.of_rows(cov, time, event, rows, n_nodes=16)
    with_meas = nh.MarginalModel.of_rows(cov, time, event, rows, n_nodes=16, measurements=meas)
    cfg = with_natural_history(TRUTH)
    terms = sum(m.loglik(cfg) for m in meas)
    assert terms < -1.0
    assert with_meas.loglik(TRUTH) - plain.loglik(TRUTH) == pytest.approx(terms)
    assert np.array_equal(with_meas.loglik_terms(TRUTH), plain.loglik_terms(TRUTH))
