"""Response-adapted NACT: the interim assessment routes exactly the non-responders to early surgery."""

import numpy as np
import pytest

import chemomet as cm
from chemomet.errors import InputError
from chemomet.regimens import Strategy


@pytest.fixture(scope="module")
def runs(population):
    _, params = population.sample(3000, 4)
    adaptive = Strategy.parse("nact-adaptive+rebastinib", response_threshold=0.5)
    interim = adaptive.chemo_start_day + adaptive.interim_day
    full = cm.simulate(params, "nact+rebastinib", grid=np.array([0.0, interim]))
    return params, adaptive, interim, full, cm.simulate(params, adaptive, chunk_size=1024)


def test_non_responders_are_exactly_those_below_the_threshold(runs):
    _, adaptive, _, full, out = runs
    d0, d_interim = full.trajectories["diameter_mm"].T
    expected_early = 1.0 - d_interim / d0 < adaptive.response_threshold
    assert 0 < expected_early.sum() < len(expected_early)  # both groups exist
    np.testing.assert_array_equal(out.summary["early_surgery"].to_numpy() == 1.0, expected_early)


def test_responders_continue_exactly_as_plain_nact_and_others_go_early(runs):
    _, adaptive, interim, full, out = runs
    early = out.summary["early_surgery"].to_numpy() == 1.0
    cols = [c for c in out.summary.columns if c not in ("patient", "early_surgery")]
    responders = out.summary.loc[~early, cols].to_numpy(float)
    np.testing.assert_array_equal(responders, full.summary.loc[~early, cols].to_numpy(float))
    assert np.all(out.summary.loc[early, "surgery_day"] == interim + adaptive.early_surgery_delay_days)
    assert np.all(out.summary.loc[early, "residual_cells_at_surgery"] > 0)


def test_adaptive_results_do_not_depend_on_chunking(runs):
    params, adaptive, _, _, out = runs
    again = cm.simulate(params, adaptive, chunk_size=700, workers=1)
    np.testing.assert_array_equal(out.summary.drop(columns="patient").to_numpy(float),
                                  again.summary.drop(columns="patient").to_numpy(float))


def test_interim_after_the_last_dose_is_refused():
    with pytest.raises(InputError, match="interim_day"):
        Strategy.parse("nact-adaptive", interim_day=400)
