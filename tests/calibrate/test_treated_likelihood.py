"""The treated-cohort outcome likelihood (GBSG2 score): closed forms and a brute-force mixture."""

import numpy as np
import pytest

from chemomet.calibrate.treated_likelihood import TwinCurves, outcome_loglik


def test_constant_hazard_twins_give_the_exponential_density():
    """Twins with constant hazards λ_j: ln L = ln Σ_j w_j e^{-λ_j t} λ_j^δ (closed form of an exponential
    mixture), for censored and event patients, at grid times and between them."""
    grid = np.arange(0.0, 3000.0, 15.0)
    lam = np.array([2e-4, 1e-3, 4e-3])
    w = np.array([0.5, 0.3, 0.2])
    n = 4
    log_s = np.broadcast_to(-lam[None, :, None] * grid[None, None, :], (n, 3, grid.size)).copy()
    curves = TwinCurves(grid, log_s, np.log(np.tile(w, (n, 1))))
    t = np.array([150.0, 777.7, 1234.5, 2900.0])
    ev = np.array([True, False, True, False])
    expected = np.log((w * np.exp(-np.outer(t, lam)) * np.where(ev[:, None], lam, 1.0)).sum(axis=1))
    assert outcome_loglik(curves, t, ev) == pytest.approx(expected, rel=1e-10)


def test_node_count_weights_select_the_matching_twin():
    """A count that only one twin can explain makes the likelihood that twin's; equal weights give the mean."""
    grid = np.arange(0.0, 1000.0, 10.0)
    log_s = np.stack([-1e-4 * grid, -5e-3 * grid])[None]
    t, ev = np.array([300.0]), np.array([True])
    only_second = TwinCurves(grid, log_s, np.array([[-700.0, np.log(0.2)]]))
    assert outcome_loglik(only_second, t, ev)[0] == pytest.approx(-5e-3 * 300 + np.log(5e-3), rel=1e-9)
    equal = TwinCurves(grid, log_s, np.log(np.array([[0.2, 0.2]])))
    mean = 0.5 * (np.exp(-0.03) * 1e-4 + np.exp(-1.5) * 5e-3)
    assert outcome_loglik(equal, t, ev)[0] == pytest.approx(np.log(mean), rel=1e-9)


def test_a_twin_that_cannot_survive_contributes_nothing():
    grid = np.arange(0.0, 100.0, 10.0)
    dead = np.full(grid.size, -np.inf)
    dead[0] = 0.0
    log_s = np.stack([dead, -1e-3 * grid])[None]
    curves = TwinCurves(grid, log_s, np.log(np.array([[0.5, 0.5]])))
    assert outcome_loglik(curves, [50.0], [False])[0] == pytest.approx(np.log(0.5 * np.exp(-0.05)), rel=1e-12)


def _small_cohort():
    """Three node-positive patients, hand-made (no data extra needed)."""
    import pandas as pd

    from chemomet.datasets import Cohort

    cov = pd.DataFrame({"age": [45.0, 60.0, 52.0], "diameter_mm": [18.0, 35.0, 25.0], "grade": [2, 3, 1],
                        "er": [True, False, True], "pr": [True, False, False], "her2": [False, False, False],
                        "alveolar_or_trabecular": [False] * 3, "tmem_10hpf": [np.nan] * 3,
                        "nodes_positive": [1, 8, 3], "hormone_therapy": [True, False, False]})
    return Cohort("small", cov, np.array([900.0, 400.0, 2000.0]), np.array([False, True, False]), "RFS")


def test_a_transform_of_the_twins_is_what_gets_simulated_and_scored():
    """``twin_curves(transform=...)``: the identity gives the same curves bit for bit; more shedding gives more
    expected nodes (a different count likelihood) and lower survival; ``weighted_survival`` is the count-weighted
    mean of the twins' survival (reference: the weights by hand) and ``outcome_fit`` sums ``outcome_loglik``."""
    from dataclasses import replace

    from chemomet.calibrate.treated_likelihood import outcome_fit, twin_curves, weighted_survival
    from chemomet.population import Population

    pop, cohort = Population(), _small_cohort()
    plain = twin_curves(pop, cohort, n_twins=16, step_days=60.0)
    same = twin_curves(pop, cohort, n_twins=16, step_days=60.0, transform=lambda p: p)
    np.testing.assert_array_equal(plain.log_survival, same.log_survival)
    np.testing.assert_array_equal(plain.log_count_probability, same.log_count_probability)
    more = twin_curves(pop, cohort, n_twins=16, step_days=60.0, transform=lambda p: replace(p, mu=p.mu * 5.0))
    assert np.all(more.log_survival[:, :, -1] <= plain.log_survival[:, :, -1] + 1e-12)
    assert not np.allclose(more.log_count_probability, plain.log_count_probability)
    w = np.exp(plain.log_count_probability)
    w /= w.sum(axis=1, keepdims=True)
    j = plain.grid_days.size - 1  # the grid ends before 10 years here
    np.testing.assert_allclose(weighted_survival(plain, 10.0), (w * np.exp(plain.log_survival[:, :, j])).sum(axis=1),
                               rtol=1e-12)
    ll, c = outcome_fit(plain, cohort)
    assert ll == pytest.approx(outcome_loglik(plain, cohort.time_days, cohort.event).sum(), rel=1e-12)
    assert 0.0 <= c <= 1.0
