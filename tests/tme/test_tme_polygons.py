"""Cell outlines: reading (WKT / JSON, units), exact polygon contact, and bad outlines.

The polygon contact graph is checked against (a) circles approximated by 64-gons, (b) an independent O(n²)
per-pair loop over segments, (c) squares at known gaps, (d) unit, rotation and translation invariance; (e) bad
outlines give exit code 2 and one line.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.spatial import cKDTree
from tme_helpers import CODES, CORPUS, run_cli, tissue

from chemomet.errors import InputError
from chemomet.tme.contacts import contact_pairs
from chemomet.tme.doorways import find_doorways
from chemomet.tme.polygons import Polygons, make_polygons, parse_polygons, polygon_contact_pairs, polygon_distances
from chemomet.tme.readers import ReadOptions, read_cells
from chemomet.tme.scores import TmemParams, score_tissue
from chemomet.tme.table import make_table


def ngons(x, y, r, k, phase=None) -> Polygons:
    """Regular k-gons inscribed in the circles (x, y, r), rotated by ``phase``."""
    n = len(x)
    th = np.arange(k) * 2 * np.pi / k + (0.0 if phase is None else np.asarray(phase)[:, None])
    th = np.broadcast_to(th, (n, k))
    xy = np.stack([x[:, None] + r[:, None] * np.cos(th), y[:, None] + r[:, None] * np.sin(th)], -1)
    return Polygons(xy.reshape(-1, 2), np.arange(n + 1, dtype=np.int64) * k)


def stars(n, rng, lo=4, hi=12, rmin=1.5, rmax=6.0, box=150.0):
    """Irregular (non-convex, star-shaped) polygons with random centres, sizes and vertex counts."""
    c = rng.uniform(0, box, (n, 2))
    outlines = []
    for k in range(n):
        m = int(rng.integers(lo, hi + 1))
        th = np.sort(rng.uniform(0, 2 * np.pi, m))
        rad = rng.uniform(0.4, 1.0, m) * rng.uniform(rmin, rmax)
        outlines.append(np.column_stack([c[k, 0] + rad * np.cos(th), c[k, 1] + rad * np.sin(th)]))
    return c, outlines


def wkt(poly: Polygons, k: int, scale: float = 1.0) -> str:
    v = poly.xy[poly.offsets[k] : poly.offsets[k + 1]] * scale
    v = np.vstack([v, v[:1]])
    return "POLYGON ((" + ", ".join(f"{float(a)!r} {float(b)!r}" for a, b in v) + "))"


# ---------------------------------------------------------------------------------------------------------
# (a) regular 64-gons = circles away from the threshold


def test_64gons_equal_circles_away_from_threshold():
    rng = np.random.default_rng(7)
    n, k, tol = 4000, 64, 1.0
    centres = rng.uniform(0, 400, (40, 2))
    xy = centres[rng.integers(0, 40, n)] + rng.normal(0, 30, (n, 2))
    r = rng.uniform(2.0, 9.0, n)
    err = r * (1 - math.cos(math.pi / k))  # inscribed k-gon lies within err of its circle
    # drop every cell of a pair whose circle gap is within the approximation error of the threshold
    pairs = cKDTree(xy).query_pairs(2 * r.max() + tol + 1, output_type="ndarray")
    i, j = pairs[:, 0], pairs[:, 1]
    gap = np.hypot(*(xy[i] - xy[j]).T) - r[i] - r[j] - tol
    close = (gap > -(err[i] + err[j]) - 1e-6) & (gap <= 1e-6)
    keep = np.ones(n, dtype=bool)
    keep[i[close]] = keep[j[close]] = False
    xy, r = xy[keep], r[keep]
    assert keep.sum() > 3000 and close.sum() > 0
    x, y = xy[:, 0], xy[:, 1]
    poly = ngons(x, y, r, k, rng.uniform(0, 2 * np.pi, x.size))
    circ = contact_pairs(x, y, r, tol)
    got = polygon_contact_pairs(x, y, poly, tol)
    assert circ.shape[0] > 2000
    np.testing.assert_array_equal(got, circ)


def test_polygon_tissue_recovers_planted_doorways():
    """Synthetic tissue with 16-gon outlines (lattice margins ≥ 0.4 µm absorb the approximation)."""
    st = tissue(8000, 17, doorway_density_per_mm2=60.0)
    c = st.cells
    x, y, r = c["x"].to_numpy(), c["y"].to_numpy(), c["radius"].to_numpy()
    poly = ngons(x, y, r, 16)
    table = make_table(x, y, c["cell_type"].map(CODES).to_numpy(), polygons=poly)
    assert table.radius_source == "polygon"
    np.testing.assert_allclose(table.radius_um, r * np.sqrt(16 * np.sin(2 * np.pi / 16) / (2 * np.pi)))
    d = find_doorways(table)
    np.testing.assert_array_equal(np.unique(d.triangles[:, 1]), st.doorway_macrophages)
    circ = make_table(x, y, c["cell_type"].map(CODES).to_numpy(), r)
    np.testing.assert_array_equal(d.pairs, find_doorways(circ).pairs)


# ---------------------------------------------------------------------------------------------------------
# (b) independent brute force


def _pt_seg(p, a, b):
    ex, ey = b[0] - a[0], b[1] - a[1]
    wx, wy = p[0] - a[0], p[1] - a[1]
    ee = ex * ex + ey * ey
    t = 0.0 if ee == 0 else min(1.0, max(0.0, (wx * ex + wy * ey) / ee))
    return math.hypot(wx - t * ex, wy - t * ey)


def _orient(a, b, c):
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def _seg_seg(a, b, c, d):
    o1, o2, o3, o4 = _orient(a, b, c), _orient(a, b, d), _orient(c, d, a), _orient(c, d, b)
    if ((o1 > 0 and o2 < 0) or (o1 < 0 and o2 > 0)) and ((o3 > 0 and o4 < 0) or (o3 < 0 and o4 > 0)):
        return 0.0
    return min(_pt_seg(a, c, d), _pt_seg(b, c, d), _pt_seg(c, a, b), _pt_seg(d, a, b))


def _point_in(p, ring):
    inside = False
    m = len(ring)
    for k in range(m):
        (x1, y1), (x2, y2) = ring[k], ring[(k + 1) % m]
        if (y1 > p[1]) != (y2 > p[1]) and p[0] < x1 + (p[1] - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def _brute_distance(A, B):
    if _point_in(A[0], B) or _point_in(B[0], A):
        return 0.0
    best = math.inf
    for s in range(len(A)):
        a, b = A[s], A[(s + 1) % len(A)]
        for t in range(len(B)):
            best = min(best, _seg_seg(a, b, B[t], B[(t + 1) % len(B)]))
    return best


def test_against_bruteforce_on_irregular_polygons():
    rng = np.random.default_rng(3)
    c, outlines = stars(260, rng)
    # a few cells inside bigger ones (no boundary contact: containment only) and exact shared edges
    big = np.array([[0, 0], [14, 0], [14, 14], [0, 14]], float) + [200, 200]
    small = np.array([[4, 4], [7, 4], [7, 7], [4, 7]], float) + [200, 200]
    twin = np.array([[14, 2], [20, 2], [20, 9], [14, 9]], float) + [200, 200]
    outlines += [big, small, twin]
    c = np.vstack([c, big.mean(0), small.mean(0), twin.mean(0)])
    rings = [[tuple(v) for v in o] for o in outlines]
    poly = make_polygons(outlines)
    n = len(outlines)
    lo = np.array([o.min(0) for o in outlines])
    hi = np.array([o.max(0) for o in outlines])
    tols = (0.0, 0.5, 2.0)
    dist = {}
    for i in range(n):  # O(n²) pairs; bounding boxes more than max(tol) apart cannot be in contact
        for j in range(i + 1, n):
            gap = max(lo[j, 0] - hi[i, 0], lo[i, 0] - hi[j, 0], lo[j, 1] - hi[i, 1], lo[i, 1] - hi[j, 1])
            if gap <= max(tols):
                dist[i, j] = _brute_distance(rings[i], rings[j])
    keys = np.array(list(dist), dtype=np.int64)
    vals = np.array(list(dist.values()))
    np.testing.assert_allclose(polygon_distances(poly, keys[:, 0], keys[:, 1]), vals, rtol=1e-9, atol=1e-9)
    assert dist[n - 3, n - 2] == 0 and dist[n - 3, n - 1] == 0
    for tol in tols:
        want = keys[vals <= tol]
        got = polygon_contact_pairs(c[:, 0], c[:, 1], poly, tol)
        assert want.shape[0] > 20
        np.testing.assert_array_equal(got, want[np.lexsort((want[:, 1], want[:, 0]))])


# ---------------------------------------------------------------------------------------------------------
# (c) squares at known gaps, crossing outlines, containment, elongated cells


def square(x0, y0, s=10.0):
    return np.array([[x0, y0], [x0 + s, y0], [x0 + s, y0 + s], [x0, y0 + s]])


def _touch(outlines, tol):
    poly = make_polygons(outlines)
    c = poly.centroid()
    return polygon_contact_pairs(c[:, 0], c[:, 1], poly, tol).tolist()


@pytest.mark.parametrize("tol", [0.0, 1.0, 2.5])
def test_squares_at_known_gaps(tol):
    assert _touch([square(0, 0), square(10, 0)], tol) == [[0, 1]]  # shared edge
    assert _touch([square(0, 0), square(10, 4)], tol) == [[0, 1]]  # partly shared edge
    assert _touch([square(0, 0), square(10, 10)], tol) == [[0, 1]]  # shared corner
    assert _touch([square(0, 0), square(5, 5)], tol) == [[0, 1]]  # overlap
    assert _touch([square(0, 0, 20), square(5, 5, 4)], tol) == [[0, 1]]  # one inside the other
    plus = [np.array([[0, 4], [20, 4], [20, 6], [0, 6]]), np.array([[9, -5], [11, -5], [11, 15], [9, 15]])]
    assert _touch(plus, tol) == [[0, 1]]  # outlines cross, no vertex inside the other
    if tol > 0:
        assert _touch([square(0, 0), square(10 + 0.5 * tol, 3)], tol) == [[0, 1]]
        assert _touch([square(0, 0), square(10 + 1.5 * tol, 3)], tol) == []
        d = 10 + tol / math.sqrt(2) * 0.99  # diagonal gap just inside the tolerance
        assert _touch([square(0, 0), square(d, d)], tol) == [[0, 1]]
        d = 10 + tol / math.sqrt(2) * 1.01
        assert _touch([square(0, 0), square(d, d)], tol) == []
    else:
        assert _touch([square(0, 0), square(10.001, 0)], tol) == []


def test_elongated_cells_touch_where_circles_do_not():
    """An elongated endothelial cell touching a macrophage at its tip: a doorway only with outlines."""
    tum = square(0, 0)
    mac = square(10, 0)
    endo = np.array([[0, 10], [60, 10], [60, 13], [0, 13]], float)  # 60 × 3 µm, along the top of both
    poly = make_polygons([tum, mac, endo])
    c = poly.centroid()
    ct = np.array([1, 2, 3])
    with_outlines = make_table(c[:, 0], c[:, 1], ct, polygons=poly, check_units=False)
    circles = make_table(c[:, 0], c[:, 1], ct, with_outlines.radius_um, check_units=False)
    assert find_doorways(with_outlines).n == 1
    assert find_doorways(circles).n == 0


# ---------------------------------------------------------------------------------------------------------
# (d) reading: WKT/JSON, CSV/Parquet, units, rotation and translation


@pytest.fixture(scope="module")
def poly_tissue(tmp_path_factory):
    st = tissue(6000, 23, doorway_density_per_mm2=60.0)
    c = st.cells
    x, y, r = c["x"].to_numpy(), c["y"].to_numpy(), c["radius"].to_numpy()
    rng = np.random.default_rng(5)
    poly = ngons(x, y, r, 20, rng.uniform(0, 2 * np.pi, x.size))
    df = c[["x", "y", "cell_type"]].copy()
    df["outline"] = [wkt(poly, k) for k in range(poly.n)]
    path = tmp_path_factory.mktemp("poly") / "cells.csv"
    df.to_csv(path, index=False)
    return st, poly, df, path


def test_read_wkt_json_parquet_pixels(poly_tissue, tmp_path):
    st, poly, df, path = poly_tissue
    opts = ReadOptions(polygon_col="outline")
    t = read_cells(path, opts)
    assert t.radius_source == "polygon" and t.polygons.n == len(df)
    np.testing.assert_allclose(t.polygons.xy, poly.xy, rtol=0, atol=1e-12)
    ref = score_tissue(t, TmemParams())
    np.testing.assert_array_equal(np.unique(ref.doorways.triangles[:, 1]), st.doorway_macrophages)
    # JSON vertex lists in a Parquet file
    dj = df.copy()
    dj["outline"] = [json.dumps(poly.xy[poly.offsets[k] : poly.offsets[k + 1]].tolist()) for k in range(poly.n)]
    pq = tmp_path / "cells.parquet"
    dj.to_parquet(pq)
    tj = read_cells(pq, opts)
    np.testing.assert_array_equal(tj.polygons.xy, poly.xy)
    np.testing.assert_array_equal(find_doorways(tj).pairs, ref.doorways.pairs)
    # pixels: centroids and outlines both converted with --pixel-size
    s = 0.4
    dp = df.copy()
    dp["x"], dp["y"] = dp["x"] / s, dp["y"] / s
    dp["outline"] = [wkt(poly, k, 1 / s) for k in range(poly.n)]
    px = tmp_path / "px.csv"
    dp.to_csv(px, index=False)
    tp = read_cells(px, ReadOptions(polygon_col="outline", pixel_size_um=s))
    np.testing.assert_allclose(tp.polygons.xy, poly.xy, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(tp.radius_um, t.radius_um, rtol=1e-9)
    rp = score_tissue(tp, TmemParams())
    assert rp.summary()["tmem_score"] == ref.summary()["tmem_score"]
    np.testing.assert_array_equal(rp.doorways.pairs, ref.doorways.pairs)
    # a radius column wins for the radius; contact still uses the outlines
    dr = df.copy()
    dr["radius"] = 1.0
    rad = tmp_path / "rad.csv"
    dr.to_csv(rad, index=False)
    tr = read_cells(rad, opts)
    assert tr.radius_source == "column"
    np.testing.assert_array_equal(find_doorways(tr).pairs, ref.doorways.pairs)


@pytest.mark.parametrize("angle", [0.3, 2.0])
def test_rotation_translation_invariance(poly_tissue, angle):
    st, poly, df, _ = poly_tissue
    x, y = df["x"].to_numpy(), df["y"].to_numpy()
    base = polygon_contact_pairs(x, y, poly, 1.0)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    shift = np.array([1234.5, -987.25])
    xy = np.column_stack([x, y]) @ rot.T + shift
    moved = poly.transformed(rotation=rot, shift=shift)
    np.testing.assert_array_equal(polygon_contact_pairs(xy[:, 0], xy[:, 1], moved, 1.0), base)
    perm = np.random.default_rng(1).permutation(x.size)
    got = polygon_contact_pairs(xy[perm, 0], xy[perm, 1], moved.take(perm), 1.0)
    got = np.sort(perm[got], axis=1)
    np.testing.assert_array_equal(got[np.lexsort((got[:, 1], got[:, 0]))], base)


def test_parse_formats_and_closing_vertex():
    p = parse_polygons(
        [
            "POLYGON ((0 0, 2 0, 2 2, 0 2, 0 0))",
            " polygon((0 0,2 0,0 2), (0.1 0.1, 0.2 0.1, 0.1 0.2))",  # the hole is ignored
            "[[0, 0], [2, 0], [2, 2]]",
            "[[[0,0],[3,0],[0,3],[0,0]]]",  # GeoJSON polygon, one ring
            "[[1e0, 0], [2E0, 0], [2, 1.5e+0]]",
        ],
        "outline",
        "t.csv",
    )
    np.testing.assert_array_equal(p.sizes, [4, 3, 3, 3, 3])
    np.testing.assert_allclose(p.area(), [4, 2, 2, 4.5, 0.75])


# ---------------------------------------------------------------------------------------------------------
# (e) bad outlines: exit code 2, one line naming the column and row


BAD_POLYGON_FILES = [
    ("poly_two_vertices.csv", "outline[row 3]"),
    ("poly_unparsable.csv", "outline[row 5]"),
    ("poly_nan.csv", "outline[row 7]"),
    ("poly_missing.csv", "outline[row 2]"),
    ("poly_3d.csv", "outline[row 4]"),
    ("poly_text.csv", "outline[row 1]"),
    ("poly_px_outlines.csv", "same units"),
]


@pytest.mark.parametrize("name,expect", BAD_POLYGON_FILES, ids=[b[0] for b in BAD_POLYGON_FILES])
def test_bad_polygon_files(name, expect, tmp_path, capsys):
    out_json = tmp_path / "s.json"
    code, out, err = run_cli([CORPUS / name, "--polygon-col", "outline", "--out", out_json], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith("error: ") and expect in lines[0] and "allowed" in lines[0], lines[0]
    assert out == "" and not out_json.exists()


def test_polygon_cli_option(tmp_path, capsys):
    code, _, err = run_cli([CORPUS / "good.csv", "--polygon-col", "outline"], capsys)
    assert code == 2 and "column 'outline'" in err and len(err.strip().splitlines()) == 1
    # the corpus base: squares of the circles' area, JSON summary
    df = pd.read_csv(CORPUS / "poly_px_outlines.csv")
    p = parse_polygons(df["outline"], "outline", "x")
    df["outline"] = [wkt(p, k, 0.25) for k in range(p.n)]
    good = tmp_path / "good_poly.csv"
    df.to_csv(good, index=False)
    code, out, err = run_cli([good, "--polygon-col", "outline", "--json"], capsys)
    assert code == 0, err
    s = json.loads(out)
    assert s["radius_source"] == "polygon"


@pytest.mark.parametrize(
    "values,expect",
    [
        (["POLYGON ((0 0, 1 0, 0 0))"], "2 vertices"),
        (["[[0, 0], [1, 1], [2, 2]]"], "zero area"),
        (["[[0, 0], [1, 0], [inf, 1]]"], "NaN or infinite"),
        (["MULTIPOLYGON (((0 0, 1 0, 0 1)))"], "neither"),
        (["[[0, 0], [1, 0], [0, 1]], [[5, 5], [6, 5], [5, 6]]"], "one JSON ring"),
        ([1.5], "outline[row 0]"),
    ],
)
def test_parse_errors(values, expect):
    with pytest.raises(InputError, match="outline\\[row 0\\]") as e:
        parse_polygons(values, "outline", "t.csv")
    assert expect in str(e.value) and "\n" not in str(e.value)
