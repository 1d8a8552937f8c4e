"""Densest high-power fields: planted hot spots, an independent loop reference, non-overlap."""

from __future__ import annotations

import numpy as np
import pytest

from chemomet.errors import InputError
from chemomet.tme.fields import hpf_radius_um, select_fields


def _reference_greedy(pts, k, area_mm2):
    """Plain-Python greedy over doorway-centred circles (same rule as documented, written independently)."""
    R = np.sqrt(area_mm2 * 1e6 / np.pi)
    cands = []
    for i, c in enumerate(pts):
        d = [float(np.hypot(*(c - p))) for p in pts]
        inside = [v for v in d if v <= R]
        order_key = sorted(range(len(pts)), key=lambda j: (pts[j][0], pts[j][1])).index(i)
        cands.append((-len(inside), sum(inside), order_key, i))
    cands.sort()
    chosen = []
    for _, _, _, i in cands:
        if len(chosen) == k:
            break
        if all(np.hypot(*(pts[i] - pts[j])) > 2 * R for j in chosen):
            chosen.append(i)
    counts = [sum(np.hypot(*(pts[i] - p)) <= R for p in pts) for i in chosen]
    return chosen, counts


def test_radius_of_default_field():
    assert hpf_radius_um(0.2) == pytest.approx(252.313, abs=1e-3)
    assert np.pi * hpf_radius_um(0.24) ** 2 == pytest.approx(0.24e6)


def test_planted_hot_spots_are_found():
    """12 hot spots of 30..19 doorways, 2 mm apart, plus sparse singles: 10HPF = sum of the 10 largest."""
    rng = np.random.default_rng(0)
    sizes = np.arange(30, 18, -1)
    centres = np.column_stack([np.arange(12) * 2000.0, np.zeros(12)])
    pts = [c + rng.uniform(-80, 80, (s, 2)) for c, s in zip(centres, sizes, strict=True)]
    singles = np.column_stack(
        [np.arange(40) * 600.0 + 300.0, np.full(40, 5000.0)]
    )  # 600 µm apart: 1 per field
    allp = np.concatenate([*pts, singles])
    perm = rng.permutation(len(allp))
    f10 = select_fields(allp[perm], 10)
    assert f10.total == sizes[:10].sum()
    assert list(f10.counts) == list(sizes[:10])
    f20 = select_fields(allp[perm], 20, 0.2)
    assert f20.total == sizes.sum() + 8  # 12 hot spots then 8 single-doorway fields


@pytest.mark.parametrize("seed", range(5))
def test_matches_reference_on_random_clustered_points(seed):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 3000, (8, 2))
    pts = np.concatenate(
        [centres[rng.integers(0, 8, 150)] + rng.normal(0, 150, (150, 2)), rng.uniform(0, 3000, (30, 2))]
    )
    for k, area in ((10, 0.2), (20, 0.24), (3, 0.05)):
        got = select_fields(pts, k, area)
        ref_idx, ref_counts = _reference_greedy(pts, k, area)
        np.testing.assert_allclose(got.centres_um, pts[ref_idx])
        assert list(got.counts) == ref_counts
        # fields never overlap: no doorway is counted twice
        c = got.centres_um
        dd = np.hypot(c[:, None, 0] - c[None, :, 0], c[:, None, 1] - c[None, :, 1])
        assert (dd[np.triu_indices(len(c), 1)] > 2 * got.radius_um).all()


def test_edge_cases():
    assert select_fields(np.empty((0, 2)), 10).total == 0
    one = select_fields(np.array([[5.0, 5.0]]), 10)
    assert one.total == 1 and len(one.counts) == 1
    with pytest.raises(InputError):
        select_fields(np.zeros((3, 2)), 10, 0.0)
    with pytest.raises(InputError):
        select_fields(np.zeros((3, 2)), 0)
