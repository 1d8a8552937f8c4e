"""Two-clone primary and microenvironment against tight-tolerance ODE solutions."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from chemomet.model.microenv import relax
from chemomet.model.primary import growth_factor, treated_log_cells, untreated_log_cells, weighted_kill
from chemomet.model.reference import ScheduleFunctions
from chemomet.model.timeline import build_timeline
from chemomet.regimens import Strategy, load_drugs
from tests.test_metastases import one_patient

DRUGS = load_drugs()


def _solve_window(p, schedule, tl, rhs, y0):
    """Integrate ``rhs`` from the window start over the nodes, restarting at every bolus."""
    breaks = sorted({t for t, n, _ in schedule.dose_events if DRUGS[n].role == "cytotoxic"} | {tl.end})
    out = np.empty((len(y0), tl.nodes.size))
    out[:, 0] = y0
    y, t0 = np.array(y0, float), tl.start
    for t1 in breaks:
        if t1 <= t0:
            continue
        sel = (tl.nodes > t0) & (tl.nodes < t1)
        sol = solve_ivp(
            rhs, (t0, t1), y, t_eval=np.append(tl.nodes[sel], t1), rtol=1e-11, atol=1e-12, method="DOP853"
        )
        out[:, sel] = sol.y[:, :-1]
        y, t0 = sol.y[:, -1], t1
        out[:, tl.nodes == t1] = y[:, None]
    return out


@pytest.mark.parametrize("regimen", ["ac-paclitaxel-weekly", "tc", "paclitaxel-carboplatin-ac"])
@pytest.mark.parametrize("f_r", [0.0, 1e-3, 0.05])
def test_two_clone_primary_matches_solve_ivp(regimen, f_r):
    p = one_patient(chemosensitivity=0.6, resistant_fraction=f_r, resistant_kill_ratio=0.3)
    schedule = Strategy.parse("nact", regimen).schedule()
    tl = build_timeline(schedule, DRUGS, 0.03, 0.02)
    growth = growth_factor(p, tl)
    log_n, share_r = treated_log_cells(p, tl, growth, weighted_kill(p, tl, growth))
    sf = ScheduleFunctions(schedule, DRUGS)
    alpha, beta, s = p.alpha_per_day[0], p.beta_per_day[0], p.chemosensitivity[0]

    def rhs(t, y):
        k = sf.kill_stress_activity_forcing(t)[0]
        ln_n = np.logaddexp(y[0], y[1])
        return [alpha - beta * ln_n - s * k, alpha - beta * ln_n - 0.3 * s * k]

    u_c = untreated_log_cells(p, [tl.start])[0, 0]
    y0 = [u_c + np.log1p(-f_r), u_c + np.log(f_r) if f_r > 0 else -700.0]
    ode = _solve_window(p, schedule, tl, rhs, y0)
    np.testing.assert_allclose(log_n[0], np.logaddexp(ode[0], ode[1]), rtol=0, atol=1e-6)
    if f_r > 0:
        np.testing.assert_allclose(
            share_r[0], np.exp(ode[1] - np.logaddexp(ode[0], ode[1])), rtol=1e-5, atol=1e-9
        )


def test_untreated_primary_is_gompertz():
    p = one_patient()
    t = np.array([-300.0, 0.0, 500.0])
    a, b = p.log_plateau[0], p.beta_per_day[0]
    sol = solve_ivp(
        lambda _, u: [p.alpha_per_day[0] - b * u[0]],
        (0, 500),
        [p.log_cells0[0]],
        t_eval=[500],
        rtol=1e-12,
        atol=1e-12,
    )
    assert untreated_log_cells(p, t)[0, 2] == pytest.approx(sol.y[0, -1], abs=1e-9)
    assert untreated_log_cells(p, t)[0, 1] == pytest.approx(p.log_cells0[0])
    assert untreated_log_cells(p, t)[0, 0] == pytest.approx(a + (p.log_cells0[0] - a) * np.exp(300 * b))


@pytest.mark.parametrize("strategy", ["nact", "nact+pexidartinib", "nact+plerixafor"])
def test_shared_microenvironment_matches_solve_ivp(strategy):
    """m, f (so M = 1 + εm, F = 1 + εf) against the model's M, F equations solved directly."""
    schedule = Strategy.parse(strategy).schedule()
    tl = build_timeline(schedule, DRUGS, 0.03, 0.02)
    sf = ScheduleFunctions(schedule, DRUGS)
    eps = 1.7

    def rhs(t, y):
        g = sf.kill_stress_activity_forcing(t)[3]
        return [0.03 * (1 + eps * g) - 0.03 * y[0], 0.02 * (y[0] - y[1])]

    ode = _solve_window(None, schedule, tl, rhs, [1.0, 1.0])
    np.testing.assert_allclose(1 + eps * tl.m, ode[0], rtol=2e-4)
    np.testing.assert_allclose(1 + eps * tl.f, ode[1], rtol=2e-4)


def test_relax_exact_for_linear_forcing():
    t = np.linspace(0, 10, 6)
    g = 2.0 + 0.5 * t
    y = relax(1.0, 0.3, t, g[:-1], g[1:])
    # closed form of dy/dt = k(g0 + s t - y): y = g0 + s t - s/k + (y0 - g0 + s/k) e^{-kt}
    exact = 2.0 + 0.5 * t - 0.5 / 0.3 + (1.0 - 2.0 + 0.5 / 0.3) * np.exp(-0.3 * t)
    np.testing.assert_allclose(y, exact, rtol=1e-12)
