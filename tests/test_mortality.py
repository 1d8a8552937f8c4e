"""Death from other causes: the Gompertz–Makeham fit against the life table it comes from, and its closed-form
survival against numerical integration of the hazard."""

import numpy as np
import pytest
from scipy import integrate

from chemomet.mortality import life_table, other_cause_mortality, other_cause_survival


def test_the_fit_reproduces_the_life_table():
    """One-year death probabilities at ages 30-90 (SSA 2015 female table) within 15% of the table."""
    table = life_table()
    ages, qx = np.asarray(table["ages"], float), np.asarray(table["qx"], float)
    fitted = 1 - other_cause_survival(ages, 1.0)
    np.testing.assert_allclose(fitted, qx, rtol=0.15)
    # an independent least-squares fit of the same points (5-yearly, by hand) gave c = 0.101 per year of age
    assert other_cause_mortality().c == pytest.approx(0.101, abs=0.005)


def test_survival_is_the_exponential_of_the_integrated_hazard():
    gm = other_cause_mortality()
    for age, t in [(40.0, 5.0), (65.0, 15.0), (85.0, 10.0)]:
        cumulative, _ = integrate.quad(lambda s, a=age: gm.hazard(a + s), 0.0, t, epsabs=0, epsrel=1e-12)
        assert gm.survival(age, t) == pytest.approx(np.exp(-cumulative), rel=1e-10)


def test_older_women_die_sooner_and_survival_starts_at_one():
    s = other_cause_survival(np.array([45.0, 60.0, 75.0, 90.0]), 10.0)
    assert np.all(np.diff(s) < 0)
    assert float(other_cause_survival(70.0, 0.0)) == 1.0
