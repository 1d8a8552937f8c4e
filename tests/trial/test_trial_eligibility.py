"""Eligibility selects exactly the patients a direct filter of the population selects, in screening order."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import nbinom, poisson

from chemomet.population import Population
from chemomet.simulation import simulate
from chemomet.trial import run_trial
from chemomet.trial.streams import UNIFORMS, background_uniforms, patient_uniforms
from tests.trial.conftest import make_spec

CRITERIA = {
    "subtypes": ["HR+/HER2-", "TNBC"],
    "grades": [2, 3],
    "age_min_years": 35,
    "age_max_years": 75,
    "diameter_min_mm": 15,
    "diameter_max_mm": 60,
    "nodes_positive_min": 1,
    "nodes_positive_max": 3,
    "tmem_high": True,
    "ctc_positive": True,
}


def direct_filter(seed: int, n_screen: int, tmem_cut: float) -> np.ndarray:
    """Indices of eligible patients among the first n_screen, computed from scratch (the engine's CTC
    expectation, a negative-binomial draw of size ``ctc_count_dispersion`` with the patient's trial uniform, plus
    the Poisson background with the patient's background uniform)."""
    population = Population()
    cov, params = population.sample(n_screen, seed)
    lam = simulate(params, "surgery-only", 365.0, seed=seed).summary["ctc_expected_baseline"].to_numpy()
    u = patient_uniforms(seed, np.arange(n_screen))[:, UNIFORMS.index("ctc")]
    k, b = population.settings.ctc_count_dispersion, population.settings.ctc_background_per_sample
    ctc = nbinom.ppf(u, k, k / (k + lam)) + poisson.ppf(background_uniforms(seed, np.arange(n_screen)), b)
    hr = cov["er"] | cov["pr"]
    subtype = np.where(hr & ~cov["her2"], "HR+/HER2-", np.where(~hr & ~cov["her2"], "TNBC", "other"))
    keep = (
        pd.Series(subtype).isin(["HR+/HER2-", "TNBC"]).to_numpy()
        & cov["grade"].isin([2, 3]).to_numpy()
        & (cov["age"] >= 35).to_numpy()
        & (cov["age"] <= 75).to_numpy()
        & (cov["diameter_mm"] >= 15).to_numpy()
        & (cov["diameter_mm"] <= 60).to_numpy()
        & cov["nodes_positive"].between(1, 3).to_numpy()
        & (params.T0 >= tmem_cut)
        & (ctc >= 1)
    )
    return np.flatnonzero(keep)


def test_eligibility_matches_direct_filter(tmp_path):
    spec = make_spec(
        patients_per_arm=60,
        eligibility=CRITERIA,
        endpoints={"include": ["pcr"], "primary": "pcr"},
        analysis={"subgroups": []},
    )
    res = run_trial(spec, out=tmp_path / "run", figures=False)
    table = res.patients
    assert len(table) == 120
    expected = direct_filter(spec.seed, 70_000, spec.biomarkers.tmem_high_min_10hpf)
    assert expected.size > 120
    # the first 120 eligible patients enrol, alternately to the two arms
    assert sorted(table["patient_index"]) == expected[:120].tolist()
    by_pos = table.sort_values("position")
    assert by_pos["patient_index"].tolist() == expected[:120].tolist()
    assert by_pos["arm"].tolist() == [0, 1] * 60
    assert res.summary["screening"]["screened"] == expected[119] + 1
    # every enrolled row meets every criterion
    assert table["subtype"].isin(CRITERIA["subtypes"]).all()
    assert table["tmem_high"].all() and table["ctc_positive"].all()
    assert (table["ctc_count_baseline"] >= 1).all()
    assert (table["tmem_baseline_10hpf"] >= spec.biomarkers.tmem_high_min_10hpf).all()
    assert table["diameter_mm"].between(15, 60).all() and table["nodes_positive"].between(1, 3).all()


def test_a_node_range_that_admits_nobody_is_refused():
    import pytest

    from chemomet.errors import InputError

    with pytest.raises(InputError, match="nodes_positive_min = 5 is above eligibility.nodes_positive_max = 2"):
        make_spec(eligibility={"nodes_positive_min": 5, "nodes_positive_max": 2})
