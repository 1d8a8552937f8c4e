"""Loco-regional recurrence and disease-free survival: the calibration to EBCTCG 2018 checked with an independent
estimator (lifelines), and DFS in a trial combining it with distant metastasis and death."""

from __future__ import annotations

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter, KaplanMeierFitter

from chemomet.local_recurrence import ADJUVANT_15Y_RISK, NACT_RATE_RATIO, local_recurrence_days
from chemomet.trial import run_trial
from tests.trial.conftest import make_spec

YEAR = 365.25


def test_local_recurrence_meets_ebctcg_2018_by_an_independent_estimator():
    """EBCTCG 2018 (Lancet Oncol 19:27): 15-year local recurrence 15.9% after adjuvant chemotherapy and a rate ratio
    of 1.37 for NACT. Kaplan-Meier at 15 years (adjuvant) and the Cox hazard ratio (NACT vs adjuvant) of simulated
    times, from lifelines, must return them within Monte Carlo error."""
    rng = np.random.default_rng(2018)
    n = 40_000
    neo = np.repeat([False, True], n)
    surgery = np.where(neo, 203.0, 21.0)
    days = local_recurrence_days(surgery, neo, rng.random(2 * n))
    since = (days - surgery) / YEAR
    t, e = np.minimum(since, 20.0), since <= 20.0
    km = KaplanMeierFitter().fit(t[~neo], e[~neo])
    assert abs((1 - km.survival_function_at_times(15.0).iloc[0]) - ADJUVANT_15Y_RISK) < 0.005
    cox = CoxPHFitter().fit(pd.DataFrame({"t": t, "e": e, "nact": neo.astype(float)}), "t", "e")
    assert abs(cox.hazard_ratios_["nact"] - NACT_RATE_RATIO) < 0.04
    assert np.all(days[~neo] >= 21.0) and np.all(days[neo] >= 203.0)  # never before surgery


def test_dfs_counts_local_recurrence_distant_metastasis_and_death(tmp_path):
    spec = make_spec(
        patients_per_arm=300,
        arms=[{"name": "surgery first", "strategy": "surgery-first"}, {"name": "NACT", "strategy": "nact"}],
        endpoints={"include": ["dfs", "dmfs"], "primary": "dfs"},
        analysis={"subgroups": []},
    )
    res = run_trial(spec, out=tmp_path / "run", figures=False)
    df = res.patients
    assert (df["dfs_time_days"] <= df["dmfs_time_days"] + 1e-9).all()
    assert (df["dfs_event"] | ~df["dmfs_event"]).all()  # every DMFS event is a DFS event
    local_first = df["local_days"] < np.minimum(df["dm_days"], df["death_days"])
    observed = local_first & (df["local_days"] <= df["censor_days"])
    assert observed.any() and (df.loc[observed, "dfs_event"]).all()
    np.testing.assert_allclose(df.loc[observed, "dfs_time_days"], df.loc[observed, "local_days"])
    assert "dfs" in res.summary["endpoints"]
