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
