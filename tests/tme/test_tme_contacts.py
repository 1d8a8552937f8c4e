"""The k-d tree contact graph equals the O(n²) brute force (up to 5,000 cells) and respects its boundary."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tme_helpers import tissue

from chemomet.errors import InputError
from chemomet.tme.contacts import contact_pairs, contact_pairs_bruteforce


@pytest.mark.parametrize("n,seed,tol", [(600, 1, 0.0), (2000, 2, 1.0), (5000, 3, 1.0), (5000, 4, 3.0)])
def test_synthetic_tissue_matches_bruteforce(n, seed, tol):
    c = tissue(n, seed, tolerance_um=min(tol, 3.0)).cells
    fast = contact_pairs(c.x, c.y, c.radius, tol)
    slow = contact_pairs_bruteforce(c.x, c.y, c.radius, tol)
    assert fast.shape[0] > n  # a real graph, not an empty one
    np.testing.assert_array_equal(fast, slow)


@pytest.mark.parametrize("seed", range(3))
def test_random_clustered_cells_with_heterogeneous_radii(seed):
    """Poisson clusters with radii spanning 1–25 µm: the max-radius query plus per-pair filter is exact."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 800, (40, 2))
    pts = centres[rng.integers(0, 40, 5000)] + rng.normal(0, 25, (5000, 2))
    r = rng.lognormal(np.log(5), 0.5, 5000).clip(1, 25)
    for tol in (0.0, 0.7, 4.0):
        np.testing.assert_array_equal(
            contact_pairs(pts[:, 0], pts[:, 1], r, tol),
            contact_pairs_bruteforce(pts[:, 0], pts[:, 1], r, tol),
        )


def test_boundary_is_inclusive_and_exclusive_just_beyond():
    # two cells of radius 5 at distance exactly 11 touch with tol 1; at 11 + 1e-9 they do not
    x = np.array([0.0, 11.0, 100.0, 111.0 + 1e-9])
    y = np.zeros(4)
    r = np.full(4, 5.0)
    np.testing.assert_array_equal(contact_pairs(x, y, r, 1.0), [[0, 1]])
    np.testing.assert_array_equal(contact_pairs_bruteforce(x, y, r, 1.0), [[0, 1]])


def test_degenerate_inputs():
    assert contact_pairs([1.0], [2.0], [5.0]).shape == (0, 2)
    assert contact_pairs([0.0, 100.0], [0.0, 0.0], [5.0, 5.0]).shape == (0, 2)
    # coincident cells are in contact
    np.testing.assert_array_equal(contact_pairs([3.0, 3.0], [4.0, 4.0], [5.0, 5.0]), [[0, 1]])
    with pytest.raises(InputError):
        contact_pairs([0.0, 1.0], [0.0, 0.0], [5.0, 5.0], -1.0)


coords = st.floats(min_value=0, max_value=200, allow_nan=False, width=32)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(coords, coords, st.floats(0.5, 15, width=32)), min_size=0, max_size=80),
    st.floats(0, 5, width=32),
)
def test_property_equals_bruteforce(cells, tol):
    a = np.array(cells, dtype=np.float64).reshape(-1, 3)
    np.testing.assert_array_equal(
        contact_pairs(a[:, 0], a[:, 1], a[:, 2], tol),
        contact_pairs_bruteforce(a[:, 0], a[:, 1], a[:, 2], tol),
    )
