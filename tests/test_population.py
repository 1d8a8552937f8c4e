"""Population model: reproducible, chunk-independent virtual patients with documented priors."""

import numpy as np
import pytest

import chemomet as cm
from chemomet.patient import SUBTYPES
from chemomet.population import _subtype_index
from chemomet.streams import BLOCK


def test_sampling_does_not_depend_on_chunking(population):
    cov_all, p_all = population.sample(2500, 7)
    parts = [population.sample(n, 7, start=s) for s, n in [(0, 1000), (1000, 37), (1037, 1463)]]
    for field in ("alpha_per_day", "mu", "chemosensitivity", "resistant_fraction", "epsilon", "T0"):
        np.testing.assert_array_equal(
            getattr(p_all, field), np.concatenate([getattr(p, field) for _, p in parts])
        )
    np.testing.assert_array_equal(cov_all["patient_index"], np.arange(2500))


def test_seed_changes_draws_and_generator_is_accepted(population):
    _, a = population.sample(100, 1)
    _, b = population.sample(100, 2)
    _, c = population.sample(100, np.random.default_rng(3))
    assert not np.array_equal(a.mu, b.mu) and c.n == 100


def test_subtype_frequencies_follow_the_priors(population):
    cov, _ = population.sample(20 * BLOCK, 11)
    sub = _subtype_index(cov["er"], cov["pr"], cov["her2"])
    probs = population.config["cohort"]["subtype_probabilities"]
    for i, name in enumerate(SUBTYPES):
        freq = np.mean(sub == i)
        se = np.sqrt(probs[name] * (1 - probs[name]) / len(cov))
        assert abs(freq - probs[name]) < 5 * se


@pytest.mark.parametrize("which", ["calibrated", "priors"])
def test_parameters_are_valid(which):
    population = cm.Population() if which == "calibrated" else cm.Population.priors()
    _, p = population.sample(5000, 5)
    assert np.all(p.log_plateau > p.log_cells0) and np.all(p.log_plateau > np.log(1e8))
    assert np.all(p.beta_per_day > 0) and np.all(p.mu > 0) and np.all(p.chemosensitivity > 0)


def test_priors_encode_the_published_doubling_times():
    _, p = cm.Population.priors().sample(5000, 5)
    dt = np.log(2) / (p.alpha_per_day - p.beta_per_day * p.log_cells0)
    assert 60 < np.median(dt) < 300  # Peer 1993, Ryu 2014: median doubling times ~100-250 days


def test_default_population_is_the_shipped_calibration():
    config = cm.Population().config
    assert "provenance" in config and "TRANSBIG" in config["provenance"]["natural_history"]["data"]
    assert cm.Population.priors().config["growth"]["doubling_time_median_days"]["TNBC"] == 103.0


def test_typical_patient_uses_measured_tmem_and_fixed_parameters(population):
    p = cm.example_patient()
    base = population.typical(p)
    assert base.T0[0] == pytest.approx(32.0)
    fixed = p.model_copy(
        update={"parameters": {"epsilon": 0.0, "doubling_time_days": 100.0, "plateau_cells": 1e12}}
    )
    q = population.typical(fixed)
    assert q.epsilon[0] == 0.0
    dt = np.log(2) / (q.alpha_per_day[0] - q.beta_per_day[0] * q.log_cells0[0])
    assert dt == pytest.approx(100.0) and np.exp(q.log_plateau[0]) == pytest.approx(1e12)


def test_20hpf_scores_are_converted(population):
    p = cm.example_patient().model_copy(update={"tmem_score": 32.0, "tmem_convention": "20HPF"})
    factor = population.config["microenvironment"]["tmem_20hpf_per_10hpf"]
    assert population.typical(p).T0[0] == pytest.approx(32.0 / factor)


def test_fixed_t0_moves_mu_through_the_tmem_link(population):
    p = cm.example_patient()
    theta = population.config["dissemination"]["theta"]
    base = population.typical(p)
    moved = population.typical(p.model_copy(update={"parameters": {"T0": 64.0}}))
    assert moved.T0[0] == 64.0
    assert moved.mu[0] == pytest.approx(base.mu[0] * (64.0 / 32.0) ** theta)
    pinned = population.typical(p.model_copy(update={"parameters": {"T0": 64.0, "mu": 1e-13}}))
    assert pinned.mu[0] == 1e-13


def _with_growth_exponent(population, beta):
    d = {**population.config["dissemination"], "mu_growth_exponent": beta}
    return cm.Population({**population.config, "dissemination": d})


def test_growth_shedding_link_scales_mu_by_the_doubling_time_ratio(population):
    # mu ∝ (DT_ref / DT)^β (docs/science.md §2.5): between two draws the ratio of mu, divided by the ratio without
    # the link, is (DT_b / DT_a)^β exactly, with DT read back from the Gompertz rates at diagnosis
    cov, base = population.sample(4, rng=3)
    cov = cov.drop(columns=["patient_index", "nodes_positive"])
    z = np.random.default_rng(3).standard_normal((4, population.N_EFFECTS))
    u = np.ones((4, 2))
    off = _with_growth_exponent(population, 0.0).parameters(cov, z, u)
    on = _with_growth_exponent(population, 0.8).parameters(cov, z, u)
    dt = np.log(2) / (on.alpha_per_day - on.beta_per_day * on.log_cells0)
    ref = population.config["dissemination"].get("mu_growth_reference_days", 250.0)
    np.testing.assert_allclose(on.mu / off.mu, (ref / dt) ** 0.8, rtol=1e-12)
    without_key = {k: v for k, v in population.config["dissemination"].items() if k != "mu_growth_exponent"}
    unset = cm.Population({**population.config, "dissemination": without_key})
    assert np.array_equal(unset.parameters(cov, z, u).mu, off.mu)  # no key: off, bit for bit


def test_fixed_doubling_time_moves_mu_through_the_growth_link(population):
    pop = _with_growth_exponent(population, 0.5)
    p = cm.example_patient()
    base = pop.typical(p)
    dt0 = np.log(2) / (base.alpha_per_day[0] - base.beta_per_day[0] * base.log_cells0[0])
    moved = pop.typical(p.model_copy(update={"parameters": {"doubling_time_days": dt0 / 4}}))
    assert moved.mu[0] == pytest.approx(base.mu[0] * 4 ** 0.5, rel=1e-12)  # four times faster: twice the shedding
    pinned = pop.typical(p.model_copy(update={"parameters": {"doubling_time_days": dt0 / 4, "mu": 1e-13}}))
    assert pinned.mu[0] == 1e-13


def test_pr_loss_speeds_the_growth_of_er_positive_tumours_only(population):
    """``growth.pr_negative_doubling_factor`` multiplies the doubling time of ER+/PR− tumours (docs/science.md
    §2.1) and of no other: the same draws with the factor 0.5 halve the doubling time at diagnosis of the ER+/PR−
    rows (read back from the Gompertz rates), leave ER+/PR+ and ER−/PR− rows bit for bit, and move μ through the
    growth link by 2^β; without the key the model is the one with factor 1, bit for bit."""
    cov, _ = population.sample(6, rng=5)
    cov = cov.drop(columns=["patient_index", "nodes_positive"])
    cov["er"] = [True, True, False, True, True, False]
    cov["pr"] = [False, True, False, False, True, False]
    z = np.random.default_rng(5).standard_normal((6, population.N_EFFECTS))
    u = np.ones((6, 2))

    def with_factor(f):
        g = {**population.config["growth"], "pr_negative_doubling_factor": f}
        return cm.Population({**population.config, "growth": g}).parameters(cov, z, u)

    one, half = with_factor(1.0), with_factor(0.5)

    def dt(p):
        return np.log(2) / (p.alpha_per_day - p.beta_per_day * p.log_cells0)

    er_pr_neg = cov["er"].to_numpy() & ~cov["pr"].to_numpy()
    np.testing.assert_allclose(dt(half)[er_pr_neg] / dt(one)[er_pr_neg], 0.5, rtol=1e-10)
    assert np.array_equal(half.mu[~er_pr_neg], one.mu[~er_pr_neg])
    assert np.array_equal(half.beta_per_day[~er_pr_neg], one.beta_per_day[~er_pr_neg])
    beta = population.config["dissemination"].get("mu_growth_exponent", 0.0)
    np.testing.assert_allclose(half.mu[er_pr_neg] / one.mu[er_pr_neg], 2.0**beta, rtol=1e-12)
    without_key = {k: v for k, v in population.config["growth"].items() if k != "pr_negative_doubling_factor"}
    unset = cm.Population({**population.config, "growth": without_key}).parameters(cov, z, u)
    assert np.array_equal(unset.beta_per_day, one.beta_per_day) and np.array_equal(unset.mu, one.mu)
