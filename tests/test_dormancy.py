"""Dormancy: colonies that wait before growing, against quadrature and the solve_ivp cohort reference."""

import numpy as np
import pytest
from scipy.integrate import quad

import chemomet as cm
from chemomet.model.dormancy import untreated_pool
from chemomet.model.primary import age_days
from chemomet.model.reference import reference_dmfs
from chemomet.regimens import Strategy, load_drugs
from tests.test_metastases import one_patient

DRUGS = load_drugs()


def _founding_rate(p):
    """d(σ) of the untreated primary, written from the Gompertz closed form (days from diagnosis)."""
    a, b, mu, g = p.log_plateau[0], p.beta_per_day[0], p.mu[0], p.gamma[0]
    t_age = age_days(p)[0]
    return lambda s: mu * np.exp(g * a * (1 - np.exp(-b * (s + t_age))))


@pytest.mark.parametrize("sigma", [-400.0, 0.0, 21.0])
@pytest.mark.parametrize("mean_dormancy_days", [5.0, 100.0, 900.0, 20000.0])
def test_dormant_pool_matches_quadrature(sigma, mean_dormancy_days):
    p = one_patient(wake_rate_per_day=1 / mean_dormancy_days, dormant_fraction=0.5)
    d = _founding_rate(p)
    lam = p.wake_rate_per_day[0]
    expected, _ = quad(lambda s: d(s) * np.exp(-lam * (sigma - s)), -age_days(p)[0], sigma, epsrel=1e-12, limit=400)
    got = untreated_pool(p, np.array([[sigma]]))[0, 0]
    assert got == pytest.approx(expected, rel=1e-9)


def test_surgery_only_dormancy_matches_quadrature():
    """Λ(t) = (1-q) F(min(t - τ_vis, t_s)) + q ∫ d(σ) (1 - e^{-λ(t - τ_vis - σ)})_+ dσ over founding before surgery."""
    q, lam = 0.6, 1 / 1500
    p = one_patient(mu=3e-13, dormant_fraction=q, wake_rate_per_day=lam)
    times = np.array([0.0, 3, 5, 10, 15]) * 365.25
    out = cm.simulate(p, "surgery-only", times[-1], grid=times).trajectories["dmfs"][0]
    a, b = p.log_plateau[0], p.beta_per_day[0]
    tau_vis = -np.log(1 - np.log(1e8) / a) / b
    d = _founding_rate(p)
    birth, surgery = -age_days(p)[0], 21.0

    def big_lambda(t):
        immediate, _ = quad(d, birth, min(t - tau_vis, surgery), epsrel=1e-12, limit=400)
        woken, _ = quad(lambda s: d(s) * -np.expm1(-lam * max(t - tau_vis - s, 0.0)), birth, surgery,
                        epsrel=1e-12, limit=400, points=[t - tau_vis] if birth < t - tau_vis < surgery else None)
        return (1 - q) * immediate + q * woken

    expected = np.exp(-(np.array([big_lambda(t) for t in times]) - big_lambda(0.0)))
    np.testing.assert_allclose(out, expected, rtol=0, atol=2e-4)
    assert out[-1] < out[2] < out[1]  # events keep coming after year 5


@pytest.mark.parametrize(
    "strategy, over",
    [
        ("surgery-first", {}),
        pytest.param(  # two clones under NACT with an oral drug: 15 s, run with -m slow
            "nact+rebastinib", {"resistant_fraction": 3e-3, "chemosensitivity": 0.8}, marks=pytest.mark.slow
        ),
    ],
)
def test_treated_dormancy_matches_solve_ivp_reference(strategy, over, population):
    p = one_patient(mu=3e-13, epsilon=2.0, dormant_fraction=0.6, wake_rate_per_day=1 / 1200, **over)
    st = Strategy.parse(strategy)
    times = np.array([0.0, 2, 4, 6, 10, 15]) * 365.25
    fast = cm.simulate(p, st, times[-1], grid=times).trajectories["dmfs"][0]
    ref = reference_dmfs(p, st.schedule(), DRUGS, population.settings, times, n_pre_cohorts=400, n_wake=40)
    assert np.max(np.abs(fast - ref)) <= 1e-3
    assert ref[-1] < ref[3] - 0.01  # dormancy makes late events, so the comparison covers them


def test_dormancy_parameters_from_a_patient_file(population):
    p = cm.example_patient().model_copy(update={"parameters": {"dormant_fraction": 0.4, "dormancy_mean_days": 2000}})
    params = population.typical(p)
    assert params.dormant_fraction[0] == 0.4 and params.wake_rate_per_day[0] == pytest.approx(1 / 2000)
