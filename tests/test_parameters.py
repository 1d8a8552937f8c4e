"""Per-patient parameter sets: one row per patient, a second axis allowed, slicing and stacking keep every axis."""

import numpy as np
import pytest

from chemomet.model.parameters import PatientParameters


def _params(n: int, sites: int | None = None) -> PatientParameters:
    rng = np.random.default_rng(n)
    values = {
        name: rng.uniform(0.1, 1.0, n)
        for name in ("alpha_per_day", "beta_per_day", "log_cells0", "mu", "gamma", "chemosensitivity",
                     "resistant_fraction", "resistant_kill_ratio", "s_met", "epsilon", "T0", "phi")
    }
    if sites is not None:  # e.g. a colonisation kill ratio per organ site
        values["s_met"] = rng.uniform(0.1, 1.0, (n, sites))
    return PatientParameters(**values)


def test_a_parameter_may_carry_a_second_axis():
    p = _params(5, sites=3)
    assert p.n == 5 and p.s_met.shape == (5, 3) and p.mu.shape == (5,)
    sub = p.take(np.array([4, 0]))
    assert sub.s_met.shape == (2, 3)
    np.testing.assert_array_equal(sub.s_met, p.s_met[[4, 0]])
    both = PatientParameters.concat([p, sub])
    assert both.n == 7 and both.s_met.shape == (7, 3)
    np.testing.assert_array_equal(both.s_met[5:], p.s_met[[4, 0]])


def test_optional_parameters_default_to_zero_and_rows_must_agree():
    p = _params(4)
    assert np.array_equal(p.dormant_fraction, np.zeros(4)) and np.array_equal(p.wake_rate_per_day, np.zeros(4))
    with pytest.raises(ValueError, match="one row per patient"):
        PatientParameters(**{**{f: getattr(p, f) for f in p.__dataclass_fields__}, "mu": np.ones(3)})
