"""Deaths in trials: other causes by age (the life table of chemomet.mortality), breast cancer after distant
metastasis (Weibull), overall survival, and distant metastasis with death as a competing event."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from chemomet.errors import InputError
from chemomet.mortality import other_cause_survival
from chemomet.trial import parse_trial_spec
from chemomet.trial.chunk import simulate_patients
from chemomet.trial.competing import cumulative_incidence, drfi_causes
from chemomet.trial.events import (
    endpoints,
    exponential_times,
    metastatic_death_times,
    other_cause_death_times,
)
from chemomet.trial.spec import METASTATIC_MEDIAN_SURVIVAL_MONTHS, METASTATIC_SURVIVAL_SHAPE
from chemomet.trial.streams import MORTALITY_UNIFORMS, UNIFORMS, mortality_uniforms, patient_uniforms
from chemomet.units import DAYS_PER_YEAR
from tests.trial.conftest import BASE, make_spec


@pytest.fixture(scope="module")
def table(local_run):
    return pd.read_parquet(local_run.files["patients"])


# ----------------------------------------------------------------------------------------- other causes, by age
@pytest.mark.parametrize(("age", "years", "hazard_ratio"), [(40.0, 5.0, 1.0), (65.0, 10.0, 1.0), (80.0, 5.0, 0.6)])
def test_other_cause_deaths_match_the_closed_form_survival(age, years, hazard_ratio):
    """The fraction dying of other causes within ``years`` equals 1 - S(years | age) ** hazard_ratio (S: the
    Gompertz–Makeham fit's closed form, chemomet.mortality) within 4 binomial standard errors."""
    n = 100_000
    u = patient_uniforms(5, np.arange(n))[:, UNIFORMS.index("death")]
    t = other_cause_death_times(np.full(n, age), u, hazard_ratio)
    expected = 1.0 - float(other_cause_survival(age, years)) ** hazard_ratio
    observed = np.mean(t <= years * DAYS_PER_YEAR)
    assert abs(observed - expected) < 4 * np.sqrt(expected * (1 - expected) / n), (observed, expected)
    # and the inverse transform is exact: S(T(u)) = 1 - u, patient by patient
    s = other_cause_survival(age, t[:1000] / DAYS_PER_YEAR) ** hazard_ratio
    np.testing.assert_allclose(s, 1.0 - u[:1000], rtol=1e-9, atol=1e-12)


def test_other_cause_deaths_rise_with_age_and_vanish_at_hazard_ratio_zero():
    u = np.linspace(0.01, 0.99, 99)
    young, old = other_cause_death_times(np.full(99, 45.0), u), other_cause_death_times(np.full(99, 75.0), u)
    assert np.all(old < young) and np.all(np.diff(young) > 0)  # older women die sooner; larger u, later death
    assert np.all(np.isinf(other_cause_death_times(np.full(99, 45.0), u, 0.0)))


def test_metastatic_death_is_weibull_after_the_metastasis():
    """Median 28 months and shape 0.65 (Lord et al., Med J Aust 2022; see spec.py), checked by a KS test."""
    n = 20_000
    u = mortality_uniforms(3, np.arange(n))[:, MORTALITY_UNIFORMS.index("metastatic_death")]
    dm = np.full(n, 500.0)
    gap = metastatic_death_times(dm, u, METASTATIC_MEDIAN_SURVIVAL_MONTHS, METASTATIC_SURVIVAL_SHAPE) - dm
    months = gap / (DAYS_PER_YEAR / 12)
    assert np.all(gap > 0)
    assert np.median(months) == pytest.approx(28.0, rel=0.03)
    scale = 28.0 / np.log(2.0) ** (1 / 0.65)
    assert stats.kstest(months, stats.weibull_min(0.65, scale=scale).cdf).pvalue > 1e-3
    assert np.all(np.isinf(metastatic_death_times(np.full(3, np.inf), u[:3], 28.0, 0.65)))


def test_mortality_stream_is_keyed_by_index_and_independent_of_the_first():
    idx = np.array([5, 1023, 1024, 70000, 3])
    full = mortality_uniforms(3, np.arange(70001))
    np.testing.assert_array_equal(mortality_uniforms(3, idx), full[idx])
    first = patient_uniforms(3, np.arange(5000))
    assert abs(np.corrcoef(full[:5000, 0], first[:, UNIFORMS.index("event")])[0, 1]) < 0.05


# ------------------------------------------------------------------------------------------ endpoint logic
def test_endpoint_logic_by_hand():
    """DM at 100 then cancer death at 400; other-cause death at 200 without DM; DM at 300 then other-cause death
    at 350 before the cancer death; censored (loss at 250) before a DM; cancer death after the analysis date."""
    dm = np.array([100.0, np.inf, 300.0, 500.0, 600.0])
    other = np.array([np.inf, 200.0, 350.0, np.inf, np.inf])
    cancer = np.array([400.0, np.inf, 900.0, 700.0, 1200.0])
    loss = np.array([np.inf, np.inf, np.inf, 250.0, np.inf])
    admin = np.full(5, 1000.0)
    e = endpoints(dm, other, loss, admin, cancer)
    np.testing.assert_array_equal(e["os_time_days"], [400, 200, 350, 250, 1000])
    np.testing.assert_array_equal(e["os_event"], [True, True, True, False, False])
    np.testing.assert_array_equal(e["death_cause"], [2, 1, 1, 0, 0])
    np.testing.assert_array_equal(e["dmfs_time_days"], [100, 200, 300, 250, 600])
    np.testing.assert_array_equal(e["drfi_event"], [True, False, True, False, True])
    # without breast-cancer deaths OS is death from other causes alone
    np.testing.assert_array_equal(endpoints(dm, other, loss, admin)["os_event"], [False, True, True, False, False])


def test_os_and_dmfs_agree_on_the_run(table):
    """OS <= DMFS-event-free: every death is a DMFS event or comes after one; every woman who dies free of
    distant metastasis is an OS event at her DMFS time; breast-cancer deaths follow a metastasis."""
    assert (table["os_time_days"] >= table["dmfs_time_days"] - 1e-9).all()
    assert (~table["os_event"] | table["dmfs_event"]).all()
    dm_free_death = table["dmfs_event"] & ~table["drfi_event"]
    assert dm_free_death.sum() > 10  # the life table kills some of the 1,400 women in 7 years
    assert table.loc[dm_free_death, "os_event"].all()
    np.testing.assert_array_equal(
        table.loc[dm_free_death, "os_time_days"].to_numpy(), table.loc[dm_free_death, "dmfs_time_days"].to_numpy()
    )
    assert (table.loc[dm_free_death, "death_cause"] == 1).all()
    cancer = table["death_cause"] == 2
    assert cancer.sum() > 10 and table.loc[cancer, "drfi_event"].all()
    assert (table.loc[cancer, "os_time_days"] > table.loc[cancer, "dmfs_time_days"]).all()


def test_summary_has_os_and_it_is_above_dmfs(local_run):
    eps = local_run.summary["endpoints"]
    assert eps["os"]["role"] == "secondary" and eps["os"]["hierarchy_position"] == 5
    for arm in ("NACT", "NACT + rebastinib"):
        for label, est in eps["os"]["arms"][arm]["km"].items():
            assert est["estimate"] >= eps["dmfs"]["arms"][arm]["km"][label]["estimate"]
        assert eps["os"]["arms"][arm]["events"] <= eps["dmfs"]["arms"][arm]["events"]


def test_trial_deaths_come_from_the_patients_own_ages_and_streams(table):
    """The run's other-cause and breast-cancer death times are the functions of each woman's age, metastasis
    time and uniforms (keyed by her screening index); and the share dying of other causes before the analysis
    date equals the closed form averaged over the women, within 4 standard errors."""
    idx = table["patient_index"].to_numpy(np.int64)
    age = table["age"].to_numpy(float)
    u = patient_uniforms(BASE["seed"], idx)[:, UNIFORMS.index("death")]
    np.testing.assert_array_equal(table["death_days"].to_numpy(), other_cause_death_times(age, u))
    um = mortality_uniforms(BASE["seed"], idx)[:, 0]
    np.testing.assert_array_equal(
        table["cancer_death_days"].to_numpy(),
        metastatic_death_times(table["dm_days"].to_numpy(), um, METASTATIC_MEDIAN_SURVIVAL_MONTHS, 0.65),
    )
    horizon = table["admin_censor_days"].to_numpy() / DAYS_PER_YEAR
    p = 1.0 - other_cause_survival(age, horizon)
    dead = (table["death_days"] <= table["admin_censor_days"]).to_numpy()
    assert abs(dead.sum() - p.sum()) < 4 * np.sqrt(np.sum(p * (1 - p))), (dead.sum(), p.sum())


def test_constant_rate_is_kept_for_older_specs():
    """A spec that gives follow_up.other_cause_death_rate_per_year keeps exponential deaths at that rate (the
    model before the life table), drawn from the same uniform."""
    spec = make_spec(patients_per_arm=20, follow_up={"other_cause_death_rate_per_year": 0.02})
    assert make_spec().follow_up.other_cause_death_rate_per_year is None
    idx = np.arange(100, 140, dtype=np.int64)
    rows = simulate_patients(spec, np.arange(40), idx)
    u = patient_uniforms(spec.seed, idx)[:, UNIFORMS.index("death")]
    np.testing.assert_array_equal(rows["death_days"].to_numpy(), exponential_times(u, 0.02))
    spec0 = make_spec(patients_per_arm=20, mortality={"breast_cancer_deaths": False})
    rows0 = simulate_patients(spec0, np.arange(40), idx)
    assert np.isinf(rows0["cancer_death_days"]).all() and (rows0["death_cause"] != 2).all()


@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"mortality": {"metastatic_median_survival_months": 0}}, "mortality.metastatic_median_survival_months"),
        ({"mortality": {"metastatic_survival_shape": 9}}, "mortality.metastatic_survival_shape"),
        ({"mortality": {"other_cause_hazard_ratio": -1}}, "mortality.other_cause_hazard_ratio"),
        ({"mortality": {"life_table": "uk"}}, "life_table"),
        ({"follow_up": {"other_cause_death_rate_per_year": 5}}, "follow_up.other_cause_death_rate_per_year"),
    ],
)
def test_bad_mortality_fields_are_refused(change, text):
    table = {**BASE, **change}
    with pytest.raises(InputError) as err:
        parse_trial_spec(table)
    assert text in str(err.value)


# ------------------------------------------------------------------------------------------ competing risks
def test_cumulative_incidence_equals_lifelines_aalen_johansen():
    from lifelines import AalenJohansenFitter

    rng = np.random.default_rng(4)
    n = 3000
    t_dm, t_death, c = rng.exponential(2000.0, n), rng.exponential(4000.0, n), rng.uniform(500, 4000, n)
    time = np.minimum.reduce([t_dm, t_death, c])
    cause = np.where(time == t_dm, 1, np.where(time == t_death, 2, 0))
    days = np.array([365.25, 1095.75, 1826.25, 3000.0])
    ajf = AalenJohansenFitter(calculate_variance=False).fit(time, cause, event_of_interest=1)
    ref = ajf.cumulative_density_.iloc[:, 0]
    expect = [float(ref.loc[:d].iloc[-1]) for d in days]
    np.testing.assert_allclose(cumulative_incidence(time, cause, days), expect, rtol=1e-10, atol=1e-12)
    # closed form of competing exponentials: F1(t) = l1 / (l1 + l2) (1 - exp(-(l1 + l2) t)), within sampling error
    l1, l2 = 1 / 2000.0, 1 / 4000.0
    closed = l1 / (l1 + l2) * (1 - np.exp(-(l1 + l2) * days[:2]))
    np.testing.assert_allclose(cumulative_incidence(time, cause, days[:2]), closed, atol=0.03)


def test_drfi_cumulative_incidence_on_the_run(local_run, table):
    """The summary's DRFI cumulative incidence is the Aalen–Johansen estimate, below 1 - KM of DRFI."""
    res = local_run.summary["endpoints"]["drfi"]["arms"]
    for a, name in enumerate(["NACT", "NACT + rebastinib"]):
        sub = table[table["arm"] == a]
        cause = drfi_causes(sub["dmfs_event"], sub["drfi_event"])
        for label, est in res[name]["cumulative_incidence"].items():
            f = cumulative_incidence(sub["drfi_time_days"], cause, [est["day"]])[0]
            assert est["estimate"] == pytest.approx(f, abs=1e-12)
            assert est["one_minus_km"] == pytest.approx(1 - res[name]["km"][label]["estimate"], abs=1e-12)
            assert est["estimate"] <= est["one_minus_km"] + 1e-12
