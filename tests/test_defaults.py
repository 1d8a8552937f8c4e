"""Directions the default (uncalibrated) priors must show (docs/science.md §1, Karagiannis 2017)."""

import numpy as np
import pytest

import chemomet as cm


@pytest.fixture(scope="module")
def results(cohort):
    _, params = cohort
    return {s: cm.simulate(params, s).summary for s in ("surgery-first", "nact", "nact+rebastinib")}


def test_nact_raises_doorways_at_surgery_above_baseline(results):
    nact = results["nact"]
    assert np.all(nact["tmem_at_surgery_10hpf"] >= nact["tmem_baseline_10hpf"])
    assert nact["tmem_ratio_surgery_baseline"].median() > 1.2


def test_nact_raises_ctc_shedding_per_tumour_cell(results):
    nact = results["nact"]
    assert np.all(nact["shedding_per_cell_mean_nact"] >= nact["shedding_per_cell_baseline"])
    assert (nact["shedding_per_cell_mean_nact"] / nact["shedding_per_cell_baseline"]).median() > 1.1


def test_rebastinib_lowers_colonies_founded_during_nact(results):
    plain, tie2 = results["nact"], results["nact+rebastinib"]
    assert np.all(tie2["colonies_founded_during_chemo"] <= plain["colonies_founded_during_chemo"])
    assert tie2["colonies_founded_during_chemo"].mean() < 0.8 * plain["colonies_founded_during_chemo"].mean()


def test_pcr_only_under_nact_and_rates_are_plausible(results):
    assert results["surgery-first"]["p_pcr"].eq(0).all()
    assert 0.05 < results["nact"]["p_pcr"].mean() < 0.5  # Cortazar 2014 overall pCR ~22% (approx.)


def test_nact_is_not_worse_on_average(results):
    """EBCTCG 2018: averaged over patients, NACT and adjuvant chemotherapy give the same distant recurrence."""
    diff = results["nact"]["dmfs_10y"].mean() - results["surgery-first"]["dmfs_10y"].mean()
    assert abs(diff) < 0.03
