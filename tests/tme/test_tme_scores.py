"""Scores: areas, densities, vessels, the Poisson fold change, and the convention bookkeeping."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from tme_helpers import table_of, tissue

from chemomet.errors import InputError
from chemomet.tme.areas import tissue_areas
from chemomet.tme.scores import TmemParams, compare_paired, poisson_ratio_ci, score_tissue
from chemomet.tme.table import make_table


def _grid(nx, ny, step=10.0, x0=0.0):
    gx, gy = np.meshgrid(np.arange(nx) * step + x0, np.arange(ny) * step)
    return gx.ravel(), gy.ravel()


def test_area_of_a_rectangle_and_a_gap():
    x, y = _grid(100, 50)
    ct = np.where(x < 495, 1, 0)
    a = tissue_areas(x, y, ct, method="delaunay")
    assert a.tissue_mm2 == pytest.approx(990 * 490 * 1e-6, rel=1e-12)
    assert a.by_type_mm2.sum() == pytest.approx(a.tissue_mm2, rel=1e-12)
    assert a.by_type_mm2[1] == pytest.approx(a.tissue_mm2 / 2, rel=0.02)
    # two blocks 300 µm apart: the gap is not tissue
    x2, y2 = _grid(20, 20, x0=990.0 + 300.0)
    b = tissue_areas(np.r_[x, x2], np.r_[y, y2], np.r_[ct, np.zeros(x2.size, int)], method="delaunay")
    assert b.tissue_mm2 == pytest.approx((990 * 490 + 190 * 190) * 1e-6, rel=1e-12)
    assert tissue_areas([0.0, 1.0], [0.0, 1.0], [1, 1], method="delaunay").tissue_mm2 == 0.0
    assert tissue_areas([0.0, 1.0, 2.0], [0.0, 1.0, 2.0], [1, 1, 1], method="delaunay").tissue_mm2 == 0.0


def test_raster_area_of_a_rectangle_a_gap_and_a_lumen():
    """The raster counts the cells' pixels (10 µm): a 100 × 50 grid of cells 10 µm apart is 1000 × 500 µm."""
    x, y = _grid(100, 50)
    ct = np.where(x < 495, 1, 0)
    a = tissue_areas(x, y, ct)
    assert a.method == "raster" and a.raster_um == 10.0
    assert a.tissue_mm2 == pytest.approx(1000 * 500 * 1e-6, rel=1e-9)
    assert a.by_type_mm2[1] == pytest.approx(a.tissue_mm2 / 2, rel=1e-9)
    assert a.by_type_mm2.sum() == pytest.approx(a.tissue_mm2, rel=1e-9)
    # a block 300 µm away is separate tissue; a gap of 40 µm is closed (≤ max_edge 50 µm)
    x2, y2 = _grid(20, 20, x0=990.0 + 300.0)
    b = tissue_areas(np.r_[x, x2], np.r_[y, y2], np.r_[ct, np.zeros(x2.size, int)])
    assert b.tissue_mm2 == pytest.approx((1000 * 500 + 200 * 200) * 1e-6, rel=1e-9)
    x3, y3 = _grid(20, 20, x0=990.0 + 50.0)
    c = tissue_areas(np.r_[x, x3], np.r_[y, y3], np.r_[ct, np.zeros(x3.size, int)])
    # the closing rounds the gap's corners: a few pixels short of the full 40 × 200 µm strip
    gap = c.tissue_mm2 - (1000 * 500 + 200 * 200) * 1e-6
    assert 40 * 200 * 1e-6 - 12 * 1e-4 <= gap <= 40 * 200 * 1e-6
    # a lumen 120 µm wide inside is not tissue
    hole = (np.hypot(x - 500, y - 250) < 60)
    d = tissue_areas(x[~hole], y[~hole], ct[~hole])
    assert a.tissue_mm2 - 0.0125 < d.tissue_mm2 < a.tissue_mm2 - 0.008
    assert tissue_areas([0.0], [0.0], [1]).tissue_mm2 == pytest.approx(1e-4)  # one pixel


def test_raster_areas_are_bounded_on_scattered_cells():
    """Cells scattered over 10 m × 10 m: the raster is coarsened instead of allocating terapixels."""
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-5e6, 5e6, (2, 3000))
    a = tissue_areas(x, y, np.ones(3000, int))
    assert a.raster_um > 10.0 and np.isfinite(a.tissue_mm2)


def test_raster_area_matches_the_triangulation_on_synthetic_tissue():
    st = tissue(20_000, 5)
    t = table_of(st.cells)
    a = tissue_areas(t.x_um, t.y_um, t.cell_type)
    b = tissue_areas(t.x_um, t.y_um, t.cell_type, method="delaunay")
    assert a.tissue_mm2 == pytest.approx(b.tissue_mm2, rel=0.02)
    np.testing.assert_allclose(a.by_type_mm2, b.by_type_mm2, rtol=0.03)


def _ring(cx, cy, radius, n):
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return cx + radius * np.cos(a), cy + radius * np.sin(a)


def test_vessels_macrophages_and_marker_fractions():
    x1, y1 = _ring(0, 0, 16, 10)  # neighbours 9.9 µm apart: one connected vessel
    x2, y2 = _ring(200, 0, 20, 12)
    xs = np.r_[x1, x2, 400.0, 600.0, 620.0, 640.0, 660.0]
    ys = np.r_[y1, y2, 0.0, 0.0, 0.0, 0.0, 0.0]
    ct = np.r_[np.full(22, 3), 3, 2, 2, 2, 2].astype(np.int8)  # one lone endothelial cell, four macrophages
    tie2 = np.r_[np.zeros(23, bool), True, False, False, True]
    cd163 = np.r_[np.zeros(23, bool), True, True, True, False]
    tab = make_table(xs, ys, ct, np.full(xs.size, 5.0), tie2=tie2, cd163=cd163, check_units=False)
    res = score_tissue(tab)
    s = res.summary()
    assert s["n_vessels"] == 3
    assert s["tie2_fraction"] == 0.5 and s["cd163_fraction"] == 0.75
    assert s["macrophage_density_per_mm2"] == pytest.approx(4 / res.areas.tissue_mm2)
    assert s["microvessel_density_per_mm2"] == pytest.approx(3 / res.areas.tissue_mm2)
    assert s["tmem_score"] == 0 and s["doorways_per_mm2_tumour"] is None  # no tumour
    assert any("no tumour cells" in w for w in s["warnings"])


def test_synthetic_densities_are_plausible():
    st = tissue(20_000, 5)
    res = score_tissue(table_of(st.cells))
    s = res.summary()
    assert s["tissue_area_mm2"] == pytest.approx(st.area_mm2, rel=0.05)
    assert s["doorways_per_mm2_tumour"] == pytest.approx(s["n_doorways"] / s["tumour_area_mm2"])
    assert 0 < s["tumour_area_mm2"] < s["tissue_area_mm2"]
    assert s["tmem_convention"] == "10HPF" and s["hpf_area_mm2"] == 0.2
    s20 = score_tissue(table_of(st.cells), TmemParams(convention="20HPF")).summary()
    assert s20["tmem_score"] >= s["tmem_score"] and s20["tmem_convention"] == "20HPF"


@pytest.mark.parametrize(
    "a,b,ea,eb", [(10, 20, 1, 1), (3, 0, 1, 1), (0, 4, 1, 1), (7, 9, 2.5, 1.2), (50, 31, 1, 3)]
)
def test_poisson_ratio_matches_exact_binomial_interval(a, b, ea, eb):
    ratio, lo, hi = poisson_ratio_ci(a, b, ea, eb)
    ci = stats.binomtest(b, a + b).proportion_ci(0.95, method="exact")

    def to_ratio(p):
        return np.inf if p >= 1 else p / (1 - p) * ea / eb

    assert lo == pytest.approx(to_ratio(ci.low), rel=1e-8)
    assert hi == pytest.approx(to_ratio(ci.high), rel=1e-8)
    if a:
        assert ratio == pytest.approx((b / eb) / (a / ea))
        assert lo <= ratio <= hi


def test_poisson_ratio_coverage():
    rng = np.random.default_rng(0)
    true = 2.0
    a = rng.poisson(8.0, 400)
    b = rng.poisson(16.0, 400)
    cover = [lo <= true <= hi for lo, hi in (poisson_ratio_ci(i, j)[1:] for i, j in zip(a, b, strict=True))]
    assert np.mean(cover) >= 0.93  # exact intervals are conservative (≥ 95% up to sampling noise)


def test_compare_paired():
    pre = {
        "tmem_convention": "10HPF",
        "hpf_area_mm2": 0.2,
        "tmem_score": 10,
        "n_doorways": 40,
        "tumour_area_mm2": 4.0,
    }
    post = dict(pre, tmem_score=25, n_doorways=90, tumour_area_mm2=3.0)
    c = compare_paired(pre, post)
    assert c["tmem_fold_change"] == 2.5
    lo, hi = c["tmem_fold_change_ci"]
    assert 1.1 < lo < 2.5 < hi < 6
    assert c["density_fold_change"] == pytest.approx((90 / 3) / (40 / 4))
    zero = compare_paired(dict(pre, tmem_score=0), post)
    assert zero["tmem_fold_change"] is None and zero["tmem_fold_change_ci"][1] is None
    with pytest.raises(InputError, match="conventions"):
        compare_paired(pre, dict(post, tmem_convention="20HPF"))


@pytest.mark.parametrize(
    "kw",
    [
        {"convention": "15HPF"},
        {"tolerance_um": -1},
        {"hpf_area_mm2": 0},
        {"counting": "vessel"},
        {"max_edge_um": float("nan")},
        {"tolerance_um": 50},
        {"field_centres": "anywhere"},
        {"area_method": "hull"},
        {"area_raster_um": 0.0},
    ],
)
def test_params_are_validated(kw):
    with pytest.raises(InputError):
        TmemParams(**kw)


def test_fields_found_versus_requested_in_the_summary():
    """Two doorways 2 mm apart: 2 of the 10 fields asked for are found, and the summary says so."""
    x = np.array([0.0, 10.0, 5.0, 2000.0, 2010.0, 2005.0])
    y = np.array([0.0, 0.0, 8.0, 0.0, 0.0, 8.0])
    t = make_table(x, y, np.array([1, 2, 3, 1, 2, 3]), np.full(6, 5.0), check_units=False)
    s = score_tissue(t).summary()
    assert (s["n_hpf_requested"], s["n_hpf_found"], s["tmem_score"]) == (10, 2, 2)
    assert s["hpf_centres_method"] == "hotspot"
    assert "2 of the 10 fields asked for hold doorways (the score counts every doorway of the section)" in s["warnings"]
    none = make_table(x, y, np.array([1, 2, 0, 1, 2, 0]), np.full(6, 5.0), check_units=False)
    w = score_tissue(none).summary()["warnings"]
    assert w[0] == "no doorway in the section: the score is 0 (none of the 10 fields asked for is found)"
    old = score_tissue(t, TmemParams(field_centres="doorway")).summary()
    assert old["hpf_centres_method"] == "doorway" and old["tmem_score"] == 2
