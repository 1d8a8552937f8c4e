"""Pharmacokinetics: superposition against closed forms and a tight-tolerance ODE solver."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from chemomet.model.pk import concentration, emax_effect, unit_dose_response
from chemomet.regimens import load_drugs

DRUGS = load_drugs()


@pytest.mark.parametrize("name", ["doxorubicin", "paclitaxel", "carboplatin"])
def test_single_iv_bolus_matches_closed_form(name):
    d = DRUGS[name]
    t = np.linspace(0, 10, 101)
    # C(t) = D/V exp(-ln2 t / t_half), written independently from the label half-life (hours)
    expected = 100.0 / d.volume_l * 0.5 ** (t * 24.0 / d.half_life_h)
    np.testing.assert_allclose(concentration(t, [0.0], [100.0], d), expected, rtol=1e-12)


@pytest.mark.parametrize("name", ["rebastinib", "pexidartinib", "plerixafor"])
def test_single_oral_dose_matches_bateman(name):
    d = DRUGS[name]
    t = np.linspace(0, 5, 201)
    ka, ke = d.ka_per_h * 24, np.log(2) / d.half_life_h * 24
    bateman = 50.0 * ka / (d.volume_l * (ka - ke)) * (np.exp(-ke * t) - np.exp(-ka * t))
    np.testing.assert_allclose(concentration(t, [0.0], [50.0], d), bateman, rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("name", ["paclitaxel", "pexidartinib"])
def test_repeated_doses_match_compartment_ode(name):
    """Superposition of many doses equals integrating the compartment ODEs dose by dose."""
    d = DRUGS[name]
    dose_days = np.array([0.0, 0.5, 1.0, 3.0, 7.25, 7.5])
    doses = np.array([80.0, 40.0, 40.0, 100.0, 10.0, 60.0])
    ke = np.log(2) / d.half_life_h * 24
    ka = None if d.route == "iv" else d.ka_per_h * 24
    gut, central = 0.0, 0.0
    checks = []
    bounds = list(dose_days) + [12.0]
    for i, t0 in enumerate(dose_days):
        if ka is None:
            central += doses[i] / d.volume_l
        else:
            gut += doses[i]

        def rhs(t, y):
            g, c = y
            absorbed = 0.0 if ka is None else ka * g
            return [-absorbed, absorbed / d.volume_l - ke * c]

        t1 = bounds[i + 1]
        ts = np.linspace(t0, t1, 7)[1:]
        sol = solve_ivp(rhs, (t0, t1), [gut, central], t_eval=ts, rtol=1e-12, atol=1e-15, method="DOP853")
        gut, central = sol.y[:, -1]
        checks.append((ts[:-1], sol.y[1][:-1]))  # at t1 the next bolus is already in (right-limit)
    for ts, ode in checks:
        np.testing.assert_allclose(concentration(ts, dose_days, doses, d), ode, rtol=1e-8, atol=1e-14)


def test_effect_acts_on_summed_concentration():
    """Emax of the summed concentration, never the sum of per-dose effects."""
    d = DRUGS["paclitaxel"]
    t = np.array([0.5])
    c1 = concentration(t, [0.0], [144.0], d)
    both = concentration(t, [0.0, 0.0], [144.0, 144.0], d)
    assert both == pytest.approx(2 * c1)
    e_sum = emax_effect(both, d)
    x = 2 * c1 / d.ec50_mg_per_l
    assert e_sum == pytest.approx(x / (1 + x))
    assert e_sum < 2 * emax_effect(c1, d)


def test_no_concentration_before_dose_and_cutoff_excludes_late_bolus():
    d = DRUGS["doxorubicin"]
    assert unit_dose_response(np.array([-1.0]), d)[0] == 0.0
    c = concentration(np.array([1.0]), [1.0], [100.0], d, cutoff_days=np.array([0.999]))
    assert c[0] == 0.0
