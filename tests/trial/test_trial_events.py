"""Event-time sampling from S(t) and the censoring rules."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from chemomet.population import Population
from chemomet.simulation import simulate
from chemomet.trial.events import endpoints, event_grid, exponential_times, sample_event_times
from chemomet.trial.screening import baseline_ctc_expected


def test_exponential_curve_is_inverted_exactly():
    grid = event_grid(3000.0, 14.0)
    lam = np.array([1e-4, 1e-3, 5e-3])
    u = np.array([0.9, 0.5, 0.2])
    surv = np.exp(-lam[:, None] * grid[None, :])
    t = sample_event_times(grid, surv, u)
    expect = -np.log(u) / lam
    expect[expect > 3000] = np.inf
    np.testing.assert_allclose(t, expect, rtol=1e-12)


def test_plateau_means_no_event_and_distribution_matches():
    rng = np.random.default_rng(1)
    grid = event_grid(5000.0, 7.0)
    # a cure model: S(t) = 0.4 + 0.6 exp(-t/800); 40% never relapse
    s = 0.4 + 0.6 * np.exp(-grid / 800.0)
    n = 20000
    u = rng.random(n)
    t = sample_event_times(grid, np.tile(s, (n, 1)), u)
    assert np.mean(np.isinf(t)) == pytest.approx(0.4 + 0.6 * np.exp(-5000 / 800), abs=0.015)
    assert np.all(np.isinf(t) == (u < s[-1]))
    finite = t[np.isfinite(t)]

    def cdf(x):
        return (1 - np.exp(-x / 800.0)) / (1 - np.exp(-5000 / 800.0))

    assert stats.kstest(finite, cdf).pvalue > 1e-3


def test_curve_reaching_zero_gives_distinct_times():
    grid = event_grid(100.0, 10.0)
    s = np.where(grid < 10, 1.0, 0.0)  # certain event within the first interval
    u = np.linspace(0.05, 0.95, 19)
    t = sample_event_times(grid, np.tile(s, (u.size, 1)), u)
    np.testing.assert_allclose(t, 10.0 * (1 - u))  # linear in S: no ties at the grid point


def test_monotone_and_patient_wise():
    grid = event_grid(1000.0, 10.0)
    s = np.exp(-grid / 300.0)
    u = np.linspace(0.05, 0.99, 50)
    t = sample_event_times(grid, np.tile(s, (50, 1)), u)
    assert np.all(np.diff(t) < 0)  # larger uniforms give earlier events
    one = sample_event_times(grid, s[None, :], u[7:8])
    assert one[0] == t[7]


def test_censoring_rules():
    dm = np.array([100.0, np.inf, 500.0, 300.0, np.inf])
    death = np.array([np.inf, 200.0, 400.0, np.inf, np.inf])
    loss = np.array([np.inf, np.inf, np.inf, 250.0, np.inf])
    admin = np.array([1000.0, 1000.0, 1000.0, 1000.0, 800.0])
    e = endpoints(dm, death, loss, admin)
    np.testing.assert_array_equal(e["dmfs_time_days"], [100, 200, 400, 250, 800])
    np.testing.assert_array_equal(e["dmfs_event"], [True, True, True, False, False])
    np.testing.assert_array_equal(e["drfi_event"], [True, False, False, False, False])


def test_exponential_times():
    assert np.all(np.isinf(exponential_times(np.array([0.1, 0.9]), 0.0)))
    u = np.random.default_rng(2).random(50000)
    assert np.mean(exponential_times(u, 0.5)) == pytest.approx(365.25 / 0.5, rel=0.02)


def test_baseline_ctc_matches_the_engine():
    pop = Population()
    _, params = pop.sample(300, 5)
    out = simulate(params, "surgery-only", 365.0, seed=5)
    np.testing.assert_allclose(baseline_ctc_expected(params, pop), out.summary["ctc_expected_baseline"], rtol=1e-12)
