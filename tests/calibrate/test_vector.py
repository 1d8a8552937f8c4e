"""Parameters by name: the layouts, the configuration mappings of both blocks, and how an ensemble's blocks are
replaced and applied."""

import numpy as np
import pytest

from chemomet.calibrate.ensemble import config_from_vector, replace_block
from chemomet.calibrate.vector import (
    NATURAL_HISTORY,
    TREATMENT,
    Layout,
    natural_history_theta,
    prior_config,
    treatment_theta,
    with_natural_history,
    with_treatment,
)


def test_layouts_address_parameters_by_name():
    assert set(NATURAL_HISTORY).isdisjoint(TREATMENT)
    assert NATURAL_HISTORY.names[NATURAL_HISTORY.index("log_dt_scale")] == "log_dt_scale"
    with pytest.raises(KeyError, match="log_nothing"):
        TREATMENT.index("log_nothing")
    with pytest.raises(ValueError, match="repeat"):
        Layout(("a", "a"))
    th = treatment_theta(prior_config())
    assert TREATMENT.vector(TREATMENT.values(th)).tolist() == th.tolist()


def test_blocks_change_only_their_own_values():
    base = prior_config()
    nh = with_natural_history(natural_history_theta(base) + 0.1, base)
    assert np.array_equal(treatment_theta(nh), treatment_theta(base))
    tg = with_treatment(treatment_theta(base) + 0.1, base)
    assert np.array_equal(natural_history_theta(tg), natural_history_theta(base))
    np.testing.assert_allclose(treatment_theta(tg), treatment_theta(base) + 0.1, atol=1e-12)


def test_a_member_is_applied_by_name_in_any_column_order():
    base = prior_config()
    names = [*TREATMENT, *NATURAL_HISTORY]
    row = np.concatenate([treatment_theta(base) + 0.2, natural_history_theta(base) - 0.1])
    order = np.random.default_rng(0).permutation(len(names))
    a = config_from_vector(base, names, row)
    b = config_from_vector(base, [names[i] for i in order], row[order])
    assert a == b
    np.testing.assert_allclose(natural_history_theta(a), natural_history_theta(base) - 0.1, atol=1e-12)


@pytest.mark.parametrize("block_first", [True, False])
def test_replacing_a_block_keeps_the_other_columns(block_first):
    old = {"names": np.array(["x", "b", "y"]), "values": np.arange(6.0).reshape(2, 3)}
    names, values = replace_block(old, ["b"], np.full((2, 1), -1.0), block_first=block_first)
    expected = ["b", "x", "y"] if block_first else ["x", "y", "b"]
    assert names == expected
    assert values[:, names.index("b")].tolist() == [-1.0, -1.0]
    assert values[:, names.index("y")].tolist() == [2.0, 5.0]
    # an ensemble of another size is not merged
    names, values = replace_block(old, ["b"], np.zeros((3, 1)), block_first=block_first)
    assert names == ["b"] and values.shape == (3, 1)
