"""Colonies, founding and the distant-metastasis hazard against independent references."""

import numpy as np
import pytest
from scipy.integrate import quad, solve_ivp
from scipy.special import exp1

import chemomet as cm
from chemomet.model.dissemination import untreated_cumulative_founding
from chemomet.model.parameters import PatientParameters
from chemomet.model.primary import age_days, growth_factor, weighted_kill
from chemomet.model.reference import ScheduleFunctions, reference_dmfs
from chemomet.model.timeline import build_timeline
from chemomet.regimens import Schedule, Strategy, load_drugs

DRUGS = load_drugs()


def one_patient(**over) -> PatientParameters:
    base = dict(
        alpha_per_day=0.03,
        beta_per_day=0.03 / np.log(10**12.5),
        log_cells0=np.log(4e9),
        mu=1e-13,
        gamma=1.0,
        chemosensitivity=0.4,
        resistant_fraction=0.0,
        resistant_kill_ratio=0.3,
        s_met=0.3,
        epsilon=1.0,
        T0=15.0,
        phi=0.5,
    )
    base.update(over)
    return PatientParameters(**{k: np.array([v], float) for k, v in base.items()})


def random_schedule(rng) -> Schedule:
    """An arbitrary kill profile: random bolus days and doses of several cytotoxics, plus an oral drug."""
    events = []
    for name in ("doxorubicin", "paclitaxel", "carboplatin", "cyclophosphamide"):
        for day in np.sort(rng.uniform(10, 120, rng.integers(1, 5))):
            events.append((float(np.round(day, 2)), name, float(rng.uniform(50, 900))))
    events += [(10.0 + 0.5 * i, "rebastinib", 100.0) for i in range(100)]
    days = [t for t, n, _ in events if n != "rebastinib"]
    return Schedule(tuple(sorted(events)), 150.0, (min(days), max(days)), neoadjuvant=True)


def _ode_colony(p, sf, kappa, sigma, u0, t_nodes, breaks):
    """ln(cells) of one colony by solve_ivp (rtol 1e-11), integrated piecewise between boluses."""
    a, b = p.alpha_per_day[0], p.beta_per_day[0]
    rhs = lambda t, u: [a - b * u[0] - kappa * sf.kill_stress_activity_forcing(t)[0]]  # noqa: E731
    out = np.empty(t_nodes.size)
    u, t0 = u0, sigma
    pts = sorted({x for x in breaks if x > sigma} | {t_nodes[-1]})
    for t1 in pts:
        sel = (t_nodes > t0) & (t_nodes < t1)
        sol = solve_ivp(
            rhs, (t0, t1), [u], t_eval=np.append(t_nodes[sel], t1), rtol=1e-11, atol=1e-12, method="DOP853"
        )
        out[sel] = sol.y[0, :-1]
        u, t0 = sol.y[0, -1], t1
        out[t_nodes == t1] = u  # ln N is continuous across a bolus
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_colony_size_matches_solve_ivp_under_arbitrary_kill(seed):
    rng = np.random.default_rng(seed)
    schedule = random_schedule(rng)
    p = one_patient(chemosensitivity=rng.uniform(0.2, 2.0))
    tl = build_timeline(schedule, DRUGS, 0.03, 0.02)
    growth = growth_factor(p, tl)
    gkill = weighted_kill(p, tl, growth)
    kappa = 0.3 * p.chemosensitivity[0]
    a = p.log_plateau[0]
    h = a * growth[0] - kappa * gkill[0]
    sf = ScheduleFunctions(schedule, DRUGS)
    breaks = [t for t, n, _ in schedule.dose_events if DRUGS[n].role == "cytotoxic"]
    # a colony founded inside the window, at a node
    i = int(rng.integers(5, tl.nodes.size // 2))
    sigma = tl.nodes[i]
    fast = (h[i + 1 :] - h[i]) / growth[0, i + 1 :]
    ode = _ode_colony(p, sf, kappa, sigma, 0.0, tl.nodes[i + 1 :], breaks)
    np.testing.assert_allclose(fast, ode, rtol=0, atol=1e-6)  # |Δ ln N| <= 1e-6: relative size error
    # a colony founded before the window, 300 days before it starts
    sigma = tl.start - 300.0
    u_start = a * (1 - np.exp(-p.beta_per_day[0] * 300.0))
    h_sigma = a * np.exp(-p.beta_per_day[0] * 300.0)
    fast = (h - h_sigma) / growth[0]
    ode = _ode_colony(p, sf, kappa, tl.start, u_start, tl.nodes[1:], breaks)
    np.testing.assert_allclose(fast[1:], ode, rtol=0, atol=1e-6)


@pytest.mark.parametrize("t_days", [500.0, 2000.0, 4000.0])
def test_colonies_founded_without_treatment_matches_exp1_closed_form(t_days):
    """γ = 1: expected colonies founded by time t after the first cell = μ e^{α/β}/β [E1((α/β)e^{-βt}) - E1(α/β)]."""
    p = one_patient()
    alpha, beta, mu = p.alpha_per_day[0], p.beta_per_day[0], p.mu[0]
    expected = (
        mu * np.exp(alpha / beta) / beta * (exp1(alpha / beta * np.exp(-beta * t_days)) - exp1(alpha / beta))
    )
    sigma = t_days - age_days(p)[0]
    got = untreated_cumulative_founding(p, np.array([sigma]))[0, 0]
    assert got == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("gamma", [0.663, 0.8, 1.2])
def test_colonies_founded_with_gamma_matches_quadrature(gamma):
    p = one_patient(gamma=gamma, mu=1e-10)
    alpha, beta, mu = p.alpha_per_day[0], p.beta_per_day[0], p.mu[0]
    t_end = 3000.0
    integrand = lambda tau: mu * np.exp(gamma * alpha / beta * (1 - np.exp(-beta * tau)))  # noqa: E731
    expected, _ = quad(integrand, 0.0, t_end, epsabs=0, epsrel=1e-12, limit=500)
    got = untreated_cumulative_founding(p, np.array([t_end - age_days(p)[0]]))[0, 0]
    assert got == pytest.approx(expected, rel=1e-6)


def test_natural_history_dmfs_is_the_closed_form():
    """Untreated: S(t|M0) = exp(-[F(t - τ_vis) - F(-τ_vis)]) with F the cumulative founding (E1 form)."""
    p = one_patient(mu=2e-14)
    out = cm.simulate(p, "natural-history", 15 * 365.25)
    alpha, beta, mu = p.alpha_per_day[0], p.beta_per_day[0], p.mu[0]
    a = alpha / beta
    tau_vis = -np.log(1 - np.log(1e8) / a) / beta
    t_age = -np.log(1 - p.log_cells0[0] / a) / beta

    def founded(sigma):
        tau = sigma + t_age
        return mu * np.exp(a) / beta * (exp1(a * np.exp(-beta * tau)) - exp1(a))

    for years, col in [(3, "dmfs_3y"), (5, "dmfs_5y")]:
        t = years * 365.25
        expected = np.exp(-(founded(t - tau_vis) - founded(-tau_vis)))
        assert out.summary[col].iloc[0] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    "over",
    [
        {},  # typical
        {"resistant_fraction": 3e-3, "chemosensitivity": 0.8},  # two clones
        {
            "alpha_per_day": 0.12,
            "beta_per_day": 0.12 / np.log(10**12.5),
            "chemosensitivity": 0.3,
        },  # fast growth
    ],
)
def test_simulate_matches_solve_ivp_reference(over, population):
    """The fast engine against the plain solve_ivp cohort implementation: |ΔDMFS| <= 1e-3."""
    p = one_patient(mu=3e-13, epsilon=2.0, **over)
    strategy = Strategy.parse("nact+rebastinib")
    times = np.array([0.0, 1, 3, 5, 10]) * 365.25
    fast = cm.simulate(p, strategy, 10 * 365.25, grid=times).trajectories["dmfs"][0]
    ref = reference_dmfs(p, strategy.schedule(), DRUGS, population.settings, times, n_pre_cohorts=2000)
    assert np.max(np.abs(fast - ref)) <= 1e-3
    assert ref[-1] < 0.999  # the comparison is not trivial
