"""Doorway detection: exact recovery of planted doorways, rejection of every decoy, counting rules."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from tme_helpers import table_of, tissue

from chemomet.tme.contacts import contact_pairs_bruteforce
from chemomet.tme.doorways import contact_triangles, find_doorways
from chemomet.tme.synthetic import DECOY_KINDS, generate_tissue
from chemomet.tme.table import make_table


@pytest.mark.parametrize(
    "n,seed,door_density,decoy_density",
    [(8_000, 11, 5.0, 40.0), (20_000, 12, 20.0, 20.0), (20_000, 13, 80.0, 80.0), (60_000, 14, 40.0, 10.0)],
)
def test_exact_recovery_and_decoy_rejection(n, seed, door_density, decoy_density):
    st = tissue(n, seed, doorway_density_per_mm2=door_density, decoy_density_per_mm2=decoy_density)
    expected = round(door_density * st.area_mm2)
    assert len(st.doorway_macrophages) >= 0.9 * expected  # the generator planted what was asked
    assert all(len(v) >= 1 for v in st.decoys.values())
    d = find_doorways(table_of(st.cells), st.tolerance_um)
    found = np.unique(d.triangles[:, 1])
    np.testing.assert_array_equal(found, st.doorway_macrophages)  # exact recovery, no false positive
    assert d.n == len(st.doorway_macrophages)
    # every planted triangle is among the contact triangles
    tri = {tuple(t) for t in d.triangles.tolist()}
    assert all(tuple(t) in tri for t in st.doorways.tolist())
    # every decoy is rejected: none of its cells is in a triangle with the decoy partners
    for kind in DECOY_KINDS:
        cells = st.decoys[kind]
        assert cells.shape[0] >= 1
        assert not d.member[cells].all(axis=1).any(), kind


def test_near_miss_becomes_a_doorway_when_pushed_inside_tolerance():
    """The same layout with the near misses just inside tolerance: every near miss is now found (can fail)."""
    st = generate_tissue(6000, seed=21, doorway_density_per_mm2=10, decoy_density_per_mm2=70, gap_um=0.05)
    near = np.concatenate([st.decoys[k] for k in ("near_miss_mt", "near_miss_me", "near_miss_te")])
    t_out = find_doorways(table_of(st.cells), st.tolerance_um)
    t_in = find_doorways(table_of(st.cells), st.tolerance_um + 0.06)  # gap 0.05 now inside tolerance
    assert not np.isin(near[:, 1], t_out.triangles[:, 1]).any()
    assert np.isin(near[:, 1], t_in.triangles[:, 1]).all()
    # ...and a tissue built with a negative gap (just inside) has them as doorways at the nominal tolerance
    st2 = generate_tissue(6000, seed=21, doorway_density_per_mm2=10, decoy_density_per_mm2=70, gap_um=-0.05)
    near2 = np.concatenate([st2.decoys[k] for k in ("near_miss_mt", "near_miss_me", "near_miss_te")])
    d2 = find_doorways(table_of(st2.cells), st2.tolerance_um)
    assert np.isin(near2[:, 1], d2.triangles[:, 1]).all()


def _brute_triangles(cell_type, pairs):
    adj = {tuple(sorted(p)) for p in pairs.tolist()}
    n = len(cell_type)
    out = []
    t = np.flatnonzero(cell_type == 1)
    m = np.flatnonzero(cell_type == 2)
    e = np.flatnonzero(cell_type == 3)
    for a, b, c in itertools.product(t, m, e):
        if {(min(a, b), max(a, b)), (min(b, c), max(b, c)), (min(a, c), max(a, c))} <= adj:
            out.append((a, b, c))
    assert n == len(cell_type)
    return sorted(out)


@pytest.mark.parametrize("seed", range(4))
def test_triangles_equal_bruteforce_enumeration(seed):
    """Dense random cells of random types: the vectorised join finds exactly the brute-force triangles."""
    rng = np.random.default_rng(seed)
    n = 250
    x, y = rng.uniform(0, 120, (2, n))
    r = rng.uniform(3, 7, n)
    ct = rng.integers(0, 4, n).astype(np.int8)
    pairs = contact_pairs_bruteforce(x, y, r, 1.0)
    got = contact_triangles(ct, pairs)
    want = _brute_triangles(ct, pairs)
    assert len(want) > 10
    assert [tuple(t) for t in got.tolist()] == want
    # the pair order inside the graph does not matter
    got2 = contact_triangles(ct, pairs[rng.permutation(len(pairs))][:, ::-1])
    np.testing.assert_array_equal(got, got2)


def _cluster_table():
    """Hexagonal neighbourhood of macrophage m1: tumour cells at 0° and 240°, endothelial cells at 300° and
    180° (three triangles for one macrophage); m2 at 60° shares t1 and has its own endothelial partner e3;
    a simple doorway far away. All contact distances are 10 µm (radius 5), all non-contacts ≥ 17.3 µm."""
    h = 5 * np.sqrt(3)
    pts = {
        "m1": (0, 0, 2),
        "t1": (10, 0, 1),
        "e1": (5, -h, 3),
        "t2": (-5, -h, 1),
        "e2": (-10, 0, 3),
        "m2": (5, h, 2),
        "e3": (15, h, 3),
        "t9": (1000, 0, 1),
        "m9": (1010, 0, 2),
        "e9": (1005, h, 3),
    }
    names = list(pts)
    arr = np.array([pts[k] for k in names], dtype=float)
    return names, make_table(
        arr[:, 0], arr[:, 1], arr[:, 2].astype(np.int8), np.full(len(names), 5.0), check_units=False
    )


def test_one_doorway_per_macrophage_with_several_partners():
    names, tab = _cluster_table()
    idx = {k: i for i, k in enumerate(names)}
    d = find_doorways(tab, 1.0, "macrophage")
    tri = {(names[a], names[b], names[c]) for a, b, c in d.triangles.tolist()}
    assert tri == {
        ("t1", "m1", "e1"),
        ("t2", "m1", "e1"),
        ("t2", "m1", "e2"),
        ("t1", "m2", "e3"),
        ("t9", "m9", "e9"),
    }
    assert d.n == 3  # m1, m2, m9: one doorway per macrophage however many partners
    np.testing.assert_allclose(d.xy_um, [[0, 0], [5, 5 * np.sqrt(3)], [1010, 0]])
    assert d.doorway_of_cell[idx["t1"]] == 0 and d.doorway_of_cell[idx["m2"]] == 1
    assert d.doorway_of_cell[idx["e3"]] == 1 and d.doorway_of_cell[idx["e9"]] == 2
    assert find_doorways(tab, 1.0, "triangle").n == 5
    cl = find_doorways(tab, 1.0, "cluster")
    assert cl.n == 2  # m1 and m2 share t1
    np.testing.assert_allclose(cl.xy_um, [[2.5, 2.5 * np.sqrt(3)], [1010, 0]])


def test_no_doorway_without_all_three_contacts():
    names, tab = _cluster_table()
    assert find_doorways(tab, 0.0).n == 3  # touching at exactly 10 µm = r + r
    # push the tolerance negative-equivalent by shrinking radii: nothing touches
    small = make_table(tab.x_um, tab.y_um, tab.cell_type, np.full(tab.n, 4.0), check_units=False)
    assert find_doorways(small, 1.0).n == 0
