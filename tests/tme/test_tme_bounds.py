"""Bounded work on hostile or degenerate tables: stacked cells, absurd coordinates, huge radii (issue 14, item 3)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from tme_helpers import CORPUS, run_cli_subprocess

import chemomet.tme._checks as checks
from chemomet.errors import InputError
from chemomet.tme.contacts import contact_pairs, contact_pairs_bruteforce
from chemomet.tme.polygons import make_polygons, polygon_contact_pairs
from chemomet.tme.scores import TmemParams, score_tissue
from chemomet.tme.table import make_table

LABELS = np.array(["Tumor", "Macrophage", "Endothelial", "Stroma"])


def _squares(x, y, h):
    corners = np.array([[-h, -h], [h, -h], [h, h], [-h, h]])
    return make_polygons([corners + [a, b] for a, b in zip(x, y, strict=True)])


@pytest.fixture(scope="module")
def stacked_csv(tmp_path_factory):
    """120,000 cells, 80,000 of them on one point: 3.2e9 candidate pairs if nothing stopped it."""
    rng = np.random.default_rng(0)
    n = 120_000
    x, y = rng.uniform(0, 4000, n), rng.uniform(0, 3000, n)
    x[:80_000], y[:80_000] = 500.0, 500.0
    path = tmp_path_factory.mktemp("bounds") / "stacked.csv"
    pd.DataFrame({"x": x, "y": y, "cell_type": LABELS[rng.integers(0, 4, n)], "radius": 5.0}).to_csv(
        path, index=False
    )
    return path


@pytest.mark.parametrize("extra", [[], ["--no-unit-check"]])
def test_stacked_cells_exit_2_one_line_in_seconds(stacked_csv, tmp_path, extra):
    out = tmp_path / "s.json"
    t0 = time.perf_counter()
    p = run_cli_subprocess([stacked_csv, "--out", out, *extra], timeout=120)
    elapsed = time.perf_counter() - t0
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    assert "cells lie within one" in lines[0] and "degenerate" in lines[0] and "(x, y) = (500" in lines[0]
    assert not out.exists() and p.stdout == ""
    assert elapsed < 60, elapsed  # seconds (a few on an idle machine), not a MemoryError after minutes


@pytest.mark.parametrize(
    "rows,args,expect",
    [
        ("5,5,Tumor,5\n1e308,5,Macrophage,5\n", [], "x[row 1] = 1e+308 is invalid; allowed: |value| ≤ 1e+07 µm"),
        ("5,5,Tumor,5\n5,-1e308,Macrophage,5\n", ["--no-unit-check"], "y[row 1] = -1e+308"),
        ("5,5,Tumor,5\n1e306,5,Macrophage,5\n", ["--pixel-size", "100"], "|value| ≤ 100000 px"),
        ("5,5,Tumor,5\n2e7,5,Macrophage,5\n", [], "x[row 1] = 20000000.0"),
        ("5,5,Tumor,5\n15,5,Macrophage,1e300\n", ["--no-unit-check"], "radius[row 1]"),
    ],
)
def test_absurd_values_exit_2_one_line(tmp_path, rows, args, expect):
    path = tmp_path / "absurd.csv"
    path.write_text("x,y,cell_type,radius\n" + rows)
    t0 = time.perf_counter()
    p = run_cli_subprocess([path, *args])
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and expect in lines[0], p.stderr
    assert "Traceback" not in p.stderr and "Warning" not in p.stderr
    assert time.perf_counter() - t0 < 60


def test_the_corpus_holds_the_absurd_coordinate():
    assert "1e+308" in (CORPUS / "huge_coord.csv").read_text()


def test_the_pair_bound_is_checked_before_any_tree(monkeypatch):
    """Refused from counts alone: no k-d tree is built, no pair allocated."""

    def no_tree(*a, **k):
        raise AssertionError("a k-d tree was built before the bound was checked")

    monkeypatch.setattr(checks, "cKDTree", no_tree)
    x = np.r_[np.zeros(20_000), np.arange(1000) * 10.0]
    y = np.zeros_like(x)
    with pytest.raises(InputError, match="t.csv: 2000[0-9] cells lie within one 11 µm square around"):
        contact_pairs(x, y, np.full(x.size, 5.0), 1.0, where="t.csv")
    poly = _squares(x, y, 5.0)
    with pytest.raises(InputError, match="degenerate"):
        polygon_contact_pairs(x, y, poly, 1.0, where="t.csv")


def test_pair_bound_is_an_upper_bound():
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0, 500, (2, 3000))
    for reach in (3.0, 11.0, 40.0):
        bound, _, _ = checks.candidate_pair_bound(x, y, x, y, reach, True)
        d = np.hypot(x[:, None] - x[None], y[:, None] - y[None])
        assert bound >= int((d[np.triu_indices(3000, 1)] <= reach).sum())
    xb, yb = rng.uniform(0, 500, (2, 700))
    bound, _, _ = checks.candidate_pair_bound(x, y, xb, yb, 11.0, False)
    assert bound >= int((np.hypot(x[:, None] - xb[None], y[:, None] - yb[None]) <= 11.0).sum())


def test_radius_classes_equal_brute_force_with_a_giant_cell():
    """Radii from 0.6 to 300 µm (one giant): the per-class search finds exactly the brute-force pairs."""
    rng = np.random.default_rng(5)
    n = 3000
    x, y = rng.uniform(0, 1500, (2, n))
    r = np.exp(rng.uniform(np.log(0.6), np.log(25.0), n))
    r[17] = 300.0
    for tol in (0.0, 1.0, 3.0):
        np.testing.assert_array_equal(contact_pairs(x, y, r, tol), contact_pairs_bruteforce(x, y, r, tol))


def test_one_giant_cell_does_not_widen_every_search():
    """200,000 cells of 5 µm and one of 500 µm: the search stays near-linear (the former single reach of
    2·max(r) + tol would have tested every pair within 1 mm)."""
    rng = np.random.default_rng(2)
    side = 4500.0
    x, y = rng.uniform(0, side, (2, 200_000))
    r = np.full(x.size, 4.0)
    r[0] = 500.0
    t0 = time.perf_counter()
    p = contact_pairs(x, y, r, 1.0)
    assert time.perf_counter() - t0 < 30
    assert (p[:, 0] == 0).sum() > 1000  # the giant touches its many neighbours


def test_huge_radius_refused_and_table_extent():
    with pytest.raises(InputError, match="radius\\[row 1\\]"):
        make_table([0.0, 10.0], [0.0, 0.0], [1, 2], [5.0, 5000.0], check_units=False)
    with pytest.raises(InputError, match="10 m"):
        make_table([0.0, 1e8], [0.0, 0.0], [1, 2], [5.0, 5.0], check_units=False)
    poly = _squares(np.array([0.0, 1e8]), np.array([0.0, 0.0]), 5.0)
    with pytest.raises(InputError, match="vertex"):
        make_table([0.0, 10.0], [0.0, 0.0], [1, 2], polygons=poly, check_units=False)


def test_scoring_time_is_not_dominated_by_the_area():
    from tme_helpers import table_of, tissue

    t = table_of(tissue(30_000, 31, doorway_density_per_mm2=60.0).cells)
    t0 = time.perf_counter()
    fast = score_tissue(t)
    t_fast = time.perf_counter() - t0
    slow = score_tissue(t, TmemParams(area_method="delaunay"))
    assert fast.areas.method == "raster" and slow.areas.method == "delaunay"
    assert fast.areas.tissue_mm2 == pytest.approx(slow.areas.tissue_mm2, rel=0.02)
    assert fast.tmem_score == slow.tmem_score
    assert t_fast < 30


def test_a_huge_closing_gap_on_a_fine_raster_coarsens_instead_of_exhausting_memory():
    """max_edge 10,000 µm on a 0.5 µm raster would need a 20,001-pixel closing disk: the raster coarsens until the
    disk radius is at most MAX_CLOSING_RADIUS_PX, and the tissue area still comes out (a 5 mm square, filled)."""
    from chemomet.tme.areas import MAX_CLOSING_RADIUS_PX, tissue_areas

    g = np.arange(0.0, 5000.0, 50.0)
    x, y = np.meshgrid(g, g)
    ct = np.ones(x.size, dtype=np.int64)
    areas = tissue_areas(x.ravel(), y.ravel(), ct, max_edge_um=10_000.0, raster_um=0.5)
    assert 0.5 * 10_000.0 / areas.raster_um <= MAX_CLOSING_RADIUS_PX
    assert 20.0 <= areas.tissue_mm2 <= 40.0
