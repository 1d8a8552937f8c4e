"""High-power fields: hot-spot fields against brute-force optima and a grid search, the former doorway-centred rule
against an independent loop reference, planted hot spots, non-overlap, determinism."""

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
    for method in ("hotspot", "doorway"):
        f10 = select_fields(allp[perm], 10, method=method)
        assert f10.total == sizes[:10].sum()
        assert list(f10.counts) == list(sizes[:10])
        f20 = select_fields(allp[perm], 20, 0.2, method=method)
        assert f20.total == sizes.sum() + 8  # 12 hot spots then 8 single-doorway fields


@pytest.mark.parametrize("seed", range(5))
def test_matches_reference_on_random_clustered_points(seed):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 3000, (8, 2))
    pts = np.concatenate(
        [centres[rng.integers(0, 8, 150)] + rng.normal(0, 150, (150, 2)), rng.uniform(0, 3000, (30, 2))]
    )
    for k, area in ((10, 0.2), (20, 0.24), (3, 0.05)):
        got = select_fields(pts, k, area, method="doorway")
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
    assert one.total == 1 and len(one.counts) == 1 and one.n_found == 1 and one.k == 10
    np.testing.assert_allclose(one.centres_um, [[5.0, 5.0]])  # a lone doorway: the field is centred on it
    same = select_fields(np.zeros((7, 2)), 10)  # doorways at one point
    assert same.counts.tolist() == [7]
    with pytest.raises(InputError, match="field_centres"):
        select_fields(np.zeros((3, 2)), 10, method="best")
    with pytest.raises(InputError):
        select_fields(np.zeros((3, 2)), 10, 0.0)
    with pytest.raises(InputError):
        select_fields(np.zeros((3, 2)), 0)


# ---------------------------------------------------------------------------------------------------------------
# hot-spot fields


def _brute_best(pts, R, tol=1e-9):
    """Most points one disk of radius R can hold: the smallest enclosing circle of an optimal set is defined by one
    point, two points (diameter) or three (circumcircle), so those centres suffice (independent of the method)."""
    pts = np.asarray(pts, dtype=float)
    n = len(pts)
    cands = list(pts)
    for i in range(n):
        for j in range(i + 1, n):
            if np.hypot(*(pts[i] - pts[j])) <= 2 * R:
                cands.append((pts[i] + pts[j]) / 2)
            for m in range(j + 1, n):
                a = pts[i]
                bx, by = pts[j] - a
                cx, cy = pts[m] - a
                det = 2 * (bx * cy - by * cx)
                if abs(det) < 1e-12:
                    continue
                b2, c2 = bx * bx + by * by, cx * cx + cy * cy
                u = np.array([(cy * b2 - by * c2) / det, (bx * c2 - cx * b2) / det])
                if np.hypot(*u) <= R:
                    cands.append(a + u)
    return max(int((np.hypot(*(pts - c).T) <= R * (1 + tol)).sum()) for c in cands)


def _grid_reference(pts, k, area_mm2, step):
    """Greedy over centres on a square grid (plain loops): best grid node not overlapping the chosen fields."""
    R = hpf_radius_um(area_mm2)
    lo = np.floor((pts.min(axis=0) - R) / step) * step  # nodes on multiples of the step
    hi = np.ceil((pts.max(axis=0) + R) / step) * step
    gx, gy = np.meshgrid(np.arange(lo[0], hi[0] + step / 2, step), np.arange(lo[1], hi[1] + step / 2, step))
    nodes = np.column_stack([gx.ravel(), gy.ravel()])
    left = np.ones(len(pts), bool)
    total, chosen = 0, []
    for _ in range(k):
        ok = np.ones(len(nodes), bool)
        for c in chosen:
            ok &= np.hypot(*(nodes - c).T) >= 2 * R
        if not ok.any():
            break
        cover = np.hypot(nodes[ok, None, 0] - pts[None, left, 0], nodes[ok, None, 1] - pts[None, left, 1]) <= R
        cnt = cover.sum(axis=1)
        if cnt.size == 0 or cnt.max() == 0:
            break
        b = int(np.argmax(cnt))
        c = nodes[ok][b]
        chosen.append(c)
        idx = np.flatnonzero(left)[cover[b]]
        left[idx] = False
        total += int(cnt[b])
    return total


def test_two_groups_one_field_between():
    """Two groups of five doorways 1.9 radii apart: one field between them holds all ten (doorway-centred: 5)."""
    R = hpf_radius_um(0.2)
    ring = 4.0 * np.column_stack([np.cos(np.arange(5) * 1.3), np.sin(np.arange(5) * 1.3)])
    pts = np.concatenate([ring + [-0.95 * R, 0.0], ring + [0.95 * R, 0.0]])
    hot = select_fields(pts, 10)
    assert hot.counts.tolist() == [10] and hot.n_found == 1
    assert abs(hot.centres_um[0, 0]) < 5.0  # centred between the groups
    # doorway-centred: one field of five, the other group is closer than two radii to it
    assert select_fields(pts, 10, method="doorway").counts.tolist() == [5]


@pytest.mark.parametrize("seed", range(6))
def test_one_field_equals_the_brute_force_optimum(seed):
    rng = np.random.default_rng(100 + seed)
    R = hpf_radius_um(0.2)
    for _ in range(60):
        n = int(rng.integers(1, 13))
        spread = rng.uniform(0.5, 4.0) * R
        pts = rng.uniform(0, spread, (n, 2))
        if rng.random() < 0.3:  # clustered
            pts = rng.normal(0, 0.4 * R, (n, 2))
        assert select_fields(pts, 1).counts.tolist() == [_brute_best(pts, R)]


def test_separated_clusters_sum_of_brute_force_optima():
    """Clusters more than 4 radii apart do not interact: k fields = the k best per-cluster optima."""
    rng = np.random.default_rng(7)
    R = hpf_radius_um(0.2)
    clusters = [rng.normal(0, 0.6 * R, (int(rng.integers(3, 11)), 2)) + [6 * R * i, 0] for i in range(5)]
    best = sorted((_brute_best(c, R) for c in clusters), reverse=True)
    f = select_fields(np.concatenate(clusters), 5)
    assert f.counts.tolist()[:5] == best


@pytest.mark.parametrize("seed", range(4))
def test_each_field_beats_every_allowed_grid_centre(seed):
    """Step optimality: given the fields already chosen, no allowed centre on a fine grid holds more of the doorways
    not yet counted than the field chosen."""
    rng = np.random.default_rng(seed)
    R = hpf_radius_um(0.05)
    pts = np.concatenate([rng.normal(c, 0.5 * R, (12, 2)) for c in rng.uniform(0, 4 * R, (4, 2))])
    f = select_fields(pts, 4, 0.05)
    lo, hi = pts.min(axis=0) - R, pts.max(axis=0) + R
    step = R / 60
    gx, gy = np.meshgrid(np.arange(lo[0], hi[0], step), np.arange(lo[1], hi[1], step))
    nodes = np.column_stack([gx.ravel(), gy.ravel()])
    left = np.ones(len(pts), bool)
    for rank, n in enumerate(f.counts):
        ok = np.ones(len(nodes), bool)
        for prev in f.centres_um[:rank]:
            ok &= np.hypot(*(nodes - prev).T) >= 2 * R
        q = pts[left]
        cnt = np.zeros(len(nodes), int)
        for p in q:
            cnt += np.hypot(*(nodes - p).T) <= R
        assert n >= cnt[ok].max()
        got = np.flatnonzero(f.field_of_point == rank)
        assert got.size == n and left[got].all()
        left[got] = False


@pytest.fixture(scope="module")
def doorway_sets():
    from tme_helpers import table_of, tissue

    from chemomet.tme.doorways import find_doorways

    out = {}
    for n, seed, dens in ((30_000, 31, 60.0), (12_000, 51, 50.0), (20_000, 5, 20.0)):
        out[(n, seed)] = find_doorways(table_of(tissue(n, seed, doorway_density_per_mm2=dens).cells)).xy_um
    return out


@pytest.mark.parametrize("k", [10, 20])
def test_hotspot_beats_a_10um_grid_search_and_the_doorway_rule(doorway_sets, k):
    for pts in doorway_sets.values():
        hot = select_fields(pts, k).total
        grid = select_fields(pts, k, method="grid", grid_um=10.0).total
        door = select_fields(pts, k, method="doorway").total
        assert hot >= grid >= door > 0, (hot, grid, door)


def test_grid_method_matches_a_plain_reference():
    rng = np.random.default_rng(3)
    pts = np.concatenate([rng.normal(c, 60, (15, 2)) for c in rng.uniform(0, 1500, (5, 2))])
    assert select_fields(pts, 3, method="grid", grid_um=25.0).total == _grid_reference(pts, 3, 0.2, 25.0)


@pytest.mark.parametrize("seed", range(3))
def test_hotspot_fields_are_disjoint_deterministic_and_invariant(seed):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 3000, (8, 2))
    pts = np.concatenate(
        [centres[rng.integers(0, 8, 150)] + rng.normal(0, 150, (150, 2)), rng.uniform(0, 3000, (30, 2))]
    )
    f = select_fields(pts, 10)
    c = f.centres_um
    dd = np.hypot(c[:, None, 0] - c[None, :, 0], c[:, None, 1] - c[None, :, 1])
    assert (dd[np.triu_indices(len(c), 1)] >= 2 * f.radius_um * (1 - 1e-9)).all()
    counted = f.field_of_point[f.field_of_point >= 0]
    assert np.bincount(counted).tolist() == f.counts.tolist()  # each doorway in one field at most
    for rank in range(f.n_found):
        inside = np.hypot(*(pts[f.field_of_point == rank] - c[rank]).T)
        assert (inside <= f.radius_um * (1 + 1e-9)).all()
    again = select_fields(pts, 10)
    np.testing.assert_array_equal(again.centres_um, f.centres_um)
    perm = rng.permutation(len(pts))
    assert select_fields(pts[perm], 10).counts.tolist() == f.counts.tolist()
    th = 0.7
    rot = pts @ np.array([[np.cos(th), np.sin(th)], [-np.sin(th), np.cos(th)]]) + [1234.5, -987.0]
    assert select_fields(rot, 10).counts.tolist() == f.counts.tolist()


def test_fewer_fields_found_than_asked():
    pts = np.array([[0.0, 0.0], [10.0, 0.0], [3000.0, 0.0]])
    f = select_fields(pts, 10)
    assert (f.n_found, f.k, f.total) == (2, 10, 3)
