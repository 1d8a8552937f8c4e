"""Rotation, translation, row order and unit conversion do not change the result."""

from __future__ import annotations

import numpy as np
import pytest
from tme_helpers import CODES, tissue

from chemomet.tme.readers import ReadOptions, read_cells
from chemomet.tme.scores import TmemParams, score_tissue
from chemomet.tme.table import make_table

EXACT = (
    "tmem_score",
    "n_doorways",
    "n_contact_triangles",
    "hpf_counts",
    "n_vessels",
    "n_hpf_found",
    "n_tumour",
    "n_macrophage",
    "n_endothelial",
    "n_other",
)
CLOSE = (
    "tumour_area_mm2",
    "tissue_area_mm2",
    "doorways_per_mm2_tumour",
    "macrophage_density_per_mm2",
    "microvessel_density_per_mm2",
)


def _result(df, params, perm=None):
    x, y, r = df["x"].to_numpy(), df["y"].to_numpy(), df["radius"].to_numpy()
    ct = df["cell_type"].map(CODES).to_numpy()
    return score_tissue(make_table(x, y, ct, r), params)


def _same(a, b, perm=None):
    sa, sb = a.summary(), b.summary()
    for k in EXACT:
        assert sa[k] == sb[k], k
    for k in CLOSE:
        assert sb[k] == pytest.approx(sa[k], rel=1e-9), k
    ma = np.unique(a.doorways.triangles[:, 1])
    mb = np.unique(b.doorways.triangles[:, 1])
    if perm is not None:  # b's row i is a's row perm[i]
        mb = np.sort(perm[mb])
    np.testing.assert_array_equal(ma, mb)


@pytest.fixture(scope="module")
def base():
    st = tissue(30_000, 31, doorway_density_per_mm2=60.0)
    params = TmemParams(area_method="delaunay")  # exact areas; the raster is checked to its resolution below
    return st.cells, params, _result(st.cells, params)


def test_base_tissue_is_not_trivial(base):
    _, _, res = base
    s = res.summary()
    assert s["tmem_score"] > 30 and s["n_hpf_found"] == 10 and s["n_vessels"] > 100


@pytest.mark.parametrize("angle_deg", [17.0, 90.0, 133.7, 241.0])
def test_rotation_and_translation(base, angle_deg):
    df, params, ref = base
    th = np.deg2rad(angle_deg)
    c, s = np.cos(th), np.sin(th)
    x, y = df["x"].to_numpy() - 700.0, df["y"].to_numpy() - 300.0
    moved = df.copy()
    moved["x"] = c * x - s * y + 12_345.6
    moved["y"] = s * x + c * y - 9_876.5
    _same(ref, _result(moved, params))


def test_translation_only(base):
    df, params, ref = base
    moved = df.copy()
    moved["x"] += 50_000.25
    moved["y"] -= 3_000.5
    _same(ref, _result(moved, params))


def test_row_order(base):
    df, params, ref = base
    perm = np.random.default_rng(3).permutation(len(df))
    shuffled = df.iloc[perm].reset_index(drop=True)
    _same(ref, _result(shuffled, params), perm)


@pytest.mark.parametrize("pixel_um", [0.5, 0.325, 0.2201])
def test_pixels_with_pixel_size_equal_micrometres(base, tmp_path, pixel_um):
    df, params, ref = base
    um_file = tmp_path / "um.parquet"
    px_file = tmp_path / "px.parquet"
    df.to_parquet(um_file)
    px = df.copy()
    px["x"] /= pixel_um
    px["y"] /= pixel_um
    px["radius"] /= pixel_um
    px.to_parquet(px_file)
    a = score_tissue(read_cells(um_file), params)
    b = score_tissue(read_cells(px_file, ReadOptions(units="px", pixel_size_um=pixel_um)), params)
    _same(a, b)
    _same(ref, a)


@pytest.mark.parametrize("angle_deg", [17.0, 133.7])
def test_raster_areas_rotate_to_their_resolution(base, angle_deg):
    df, _, _ = base
    params = TmemParams()  # raster areas
    ref = _result(df, params)
    th = np.deg2rad(angle_deg)
    c, s = np.cos(th), np.sin(th)
    moved = df.copy()
    moved["x"] = c * df["x"] - s * df["y"] + 777.7
    moved["y"] = s * df["x"] + c * df["y"] - 55.5
    got = _result(moved, params)
    a, b = ref.summary(), got.summary()
    for k in ("tmem_score", "n_doorways", "hpf_counts", "n_vessels"):
        assert a[k] == b[k], k
    for k in ("tissue_area_mm2", "tumour_area_mm2"):
        assert b[k] == pytest.approx(a[k], rel=0.01), k
