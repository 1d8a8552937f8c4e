"""The faster paths of the 10⁶-cell command give the results of the code they replace, bit for bit (issue 14, speed).

- raster areas: the closing by the disk in whole-array passes (:func:`chemomet.tme.areas._disk_morphology`) against
  ``scipy.ndimage``; the tiles numbered densely and sorted by radix, the edge cells found among the cells near an
  edge, the shares summed as integers: :func:`previous_raster_areas` is the implementation before the change;
- the unit check and the contact plausibility sample: :meth:`CellTable.sample_neighbours` (a search near the
  sample) against a k-d tree over every cell;
- the doorways' contact search without the tumour–tumour pairs (``skip``) against the full search;
- Parquet read without pandas (codes of the label column, numbers through DLPack) against pandas' conversion, and
  the command on a Parquet table importing neither pandas nor pyarrow's dataset module;
- the coordinate and radius checks of :func:`make_table` (two reductions first) giving the same messages.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import ndimage
from scipy.spatial import cKDTree
from tme_helpers import table_of, tissue

from chemomet.errors import InputError
from chemomet.tme import areas, readers
from chemomet.tme.areas import MAX_CLOSING_RADIUS_PX, MAX_TILES, TILE_PX, _disk, _disk_morphology, _tile_key
from chemomet.tme.contacts import contact_pairs, table_contact_pairs
from chemomet.tme.doorways import find_doorways
from chemomet.tme.polygons import make_polygons, polygon_contact_pairs
from chemomet.tme.readers import read_cells
from chemomet.tme.table import LOCAL_SEARCH_MIN_CELLS, TUMOUR, make_table

# ---------------------------------------------------------------------------------------------------------------
# raster areas


def _previous_window_members(ix, iy, margin):
    tx, ty = ix // TILE_PX, iy // TILE_PX
    rx, ry = ix - tx * TILE_PX, iy - ty * TILE_PX
    keys, cells = [_tile_key(tx, ty)], [np.arange(ix.shape[0])]
    steps_x = [(0, None), (-1, rx < margin), (1, rx >= TILE_PX - margin)]
    steps_y = [(0, None), (-1, ry < margin), (1, ry >= TILE_PX - margin)]
    for dx, mx in steps_x:
        for dy, my in steps_y:
            if mx is None and my is None:
                continue
            sel = mx if my is None else my if mx is None else mx & my
            idx = np.flatnonzero(sel)
            if idx.size:
                keys.append(_tile_key(tx[idx] + dx, ty[idx] + dy))
                cells.append(idx)
    return np.concatenate(keys), np.concatenate(cells)


def previous_raster_areas(x, y, ct, max_edge_um=50.0, h=10.0):
    """The raster areas before the change (chemomet 3a4650c), as ``(tissue_mm2, by_type_mm2, raster_um)``."""
    x, y, ct = np.asarray(x, float), np.asarray(y, float), np.asarray(ct)
    x0, y0 = float(x.min()), float(y.min())
    while 0.5 * max_edge_um / h > MAX_CLOSING_RADIUS_PX:
        h *= 2.0
    while True:
        ix = np.floor((x - x0) / h).astype(np.int64)
        iy = np.floor((y - y0) / h).astype(np.int64)
        rc = 0.5 * max_edge_um / h
        margin = int(np.ceil(2 * rc)) + 2
        tile_of, cell_of = _previous_window_members(ix, iy, margin)
        if np.unique(tile_of).size <= MAX_TILES:
            break
        h *= 2.0
    disk = _disk(rc) if rc >= 1 else None
    order = np.argsort(tile_of, kind="stable")
    tile_of, cell_of = tile_of[order], cell_of[order]
    bounds = np.flatnonzero(np.r_[True, tile_of[1:] != tile_of[:-1], True])
    per_type = np.zeros(4)
    total = 0
    for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        key = int(tile_of[a])
        kx, ky = key >> 32, (key & ((1 << 32) - 1)) - (1 << 31)
        sel = cell_of[a:b]
        px, py, t = ix[sel] - kx * TILE_PX, iy[sel] - ky * TILE_PX, ct[sel]
        wx0, wy0 = int(px.min()) - margin, int(py.min()) - margin
        wx1, wy1 = int(px.max()) + margin + 1, int(py.max()) + margin + 1
        w, hgt = wx1 - wx0, wy1 - wy0
        flat = (px - wx0) * hgt + (py - wy0)
        n_in = np.bincount(flat, minlength=w * hgt)
        occ = (n_in > 0).reshape(w, hgt)
        closed = ndimage.binary_erosion(ndimage.binary_dilation(occ, disk), disk) | occ if disk is not None else occ
        cx0, cy0 = max(0, -wx0), max(0, -wy0)
        cx1, cy1 = min(w, TILE_PX - wx0), min(hgt, TILE_PX - wy0)
        if cx1 <= cx0 or cy1 <= cy0:
            continue
        inner = np.zeros_like(closed)
        inner[cx0:cx1, cy0:cy1] = True
        tissue_px = closed & inner
        n_px = int(np.count_nonzero(tissue_px))
        if n_px == 0:
            continue
        total += n_px
        share = (tissue_px & occ).ravel().astype(np.float64)
        gap = tissue_px & ~occ
        if gap.any():
            nx, ny = ndimage.distance_transform_edt(~occ, return_distances=False, return_indices=True)
            share += np.bincount(nx[gap] * hgt + ny[gap], minlength=w * hgt)
        per_type += np.bincount(t, weights=share[flat] / n_in[flat], minlength=4)[:4]
    px_mm2 = h * h * 1e-6
    return total * px_mm2, per_type * px_mm2, h


@pytest.mark.parametrize("radius", [0.5, 1.0, 1.5, 2.0, 2.5, 3.3, 5.0, 7.25, 16.0])
def test_the_disk_closing_equals_scipy(radius):
    rng = np.random.default_rng(int(radius * 100))
    disk = _disk(radius)
    for _ in range(40):
        w, h = (int(v) for v in rng.integers(1, 70, 2))
        img = rng.random((w, h)) < rng.uniform(0.01, 0.7)
        dil = _disk_morphology(img, disk, True)
        np.testing.assert_array_equal(dil, ndimage.binary_dilation(img, disk))
        np.testing.assert_array_equal(_disk_morphology(dil, disk, False), ndimage.binary_erosion(dil, disk))
        np.testing.assert_array_equal(_disk_morphology(img, disk, False), ndimage.binary_erosion(img, disk))


def _section(rng, kind, n):
    if kind == 0:  # uniform, a few mm, over several tiles
        return rng.uniform(0, 25_000, n), rng.uniform(0, 12_000, n)
    if kind == 1:  # clusters with holes
        c = rng.uniform(0, 20_000, (6, 2))
        j = rng.integers(0, 6, n)
        return c[j, 0] + rng.normal(0, 400, n), c[j, 1] + rng.normal(0, 400, n)
    if kind == 2:  # scattered over 60 cm: more tiles than 16-bit ids, keyed the former way, coarsened
        return rng.uniform(-3e5, 3e5, n), rng.uniform(-3e5, 3e5, n)
    if kind == 3:  # a strip along x, many tiles in a row
        return rng.uniform(0, 60_000, n), rng.uniform(0, 40, n)
    # several cells per pixel
    return np.round(rng.uniform(0, 4000, n) / 7) * 7, np.round(rng.uniform(0, 4000, n) / 7) * 7


@pytest.mark.parametrize("kind", range(5))
def test_raster_areas_equal_the_previous_code_bit_for_bit(kind):
    rng = np.random.default_rng(10 + kind)
    x, y = _section(rng, kind, int(rng.integers(2_000, 12_000)))
    ct = rng.integers(0, 4, x.size)
    for max_edge, h in ((50.0, 10.0), (20.0, 2.5), (float(rng.uniform(5, 300)), float(rng.uniform(1, 30)))):
        tissue_mm2, by_type, h_used = previous_raster_areas(x, y, ct, max_edge, h)
        got = areas.tissue_areas(x, y, ct, max_edge, raster_um=h)
        assert got.tissue_mm2 == tissue_mm2 and got.raster_um == h_used
        assert got.by_type_mm2.tobytes() == by_type.tobytes()


def test_raster_areas_of_a_synthetic_tissue_equal_the_previous_code():
    cells = tissue(30_000, seed=5).cells
    t = table_of(cells)
    tissue_mm2, by_type, _ = previous_raster_areas(t.x_um, t.y_um, t.cell_type)
    got = areas.tissue_areas(t.x_um, t.y_um, t.cell_type)
    assert got.tissue_mm2 == tissue_mm2 and got.by_type_mm2.tobytes() == by_type.tobytes()


# ---------------------------------------------------------------------------------------------------------------
# neighbours of the sampled cells


def _layout(rng, kind, n):
    if kind == 0:
        return rng.uniform(0, 5000, n), rng.uniform(0, 5000, n)
    if kind == 1:  # blobs and empty space between them
        c = rng.uniform(0, 30_000, (25, 2))
        j = rng.integers(0, 25, n)
        return c[j, 0] + rng.normal(0, 250, n), c[j, 1] + rng.normal(0, 250, n)
    if kind == 2:  # a thin strip: a flat bounding box
        return rng.uniform(0, 1e5, n), rng.uniform(0, 30, n)
    x, y = rng.uniform(0, 4000, n), rng.uniform(0, 4000, n)  # and isolated cells far away
    x[:6], y[:6] = 2e6 + np.array([0.0, 1.0, 2.3, 3.7, 5.2, 6.9]) * 3e5, -1e6  # (unequal gaps: no ties)
    return x, y


@pytest.mark.parametrize("kind", range(4))
def test_sample_neighbours_equal_a_tree_over_every_cell(kind):
    rng = np.random.default_rng(kind)
    n = LOCAL_SEARCH_MIN_CELLS + int(rng.integers(0, 30_000))
    x, y = _layout(rng, kind, n)
    t = make_table(x, y, rng.integers(0, 4, n), np.full(n, 5.0), check_units=False)
    full = cKDTree(np.column_stack([x, y]))
    for k, m in ((2, 2000), (11, 4000)):
        idx = np.unique(np.r_[np.linspace(0, n - 1, m).astype(np.int64), np.arange(6)])
        d, nb = t.sample_neighbours(idx, k)
        d_ref, nb_ref = full.query(np.column_stack([x[idx], y[idx]]), k=k)
        assert d.tobytes() == d_ref.tobytes()  # the distances, bit for bit
        np.testing.assert_array_equal(nb, nb_ref)  # continuous coordinates: no ties
        t.release_tree()


def test_sample_neighbours_on_a_small_table_use_the_full_tree():
    t = make_table([0.0, 10.0, 5.0, 30.0], [0.0, 0.0, 8.0, 0.0], [1, 2, 3, 0], [5.0] * 4)
    d, nb = t.sample_neighbours(np.array([3]), k=2)
    assert d.tolist() == [[0.0, 20.0]] and nb.tolist() == [[3, 1]]  # µm
    assert "all" in t._trees


# ---------------------------------------------------------------------------------------------------------------
# contact search without the tumour–tumour pairs


def _without_both(pairs, skip):
    return pairs[~(skip[pairs[:, 0]] & skip[pairs[:, 1]])]


@pytest.mark.parametrize("seed", range(4))
def test_contact_pairs_skip_leave_out_exactly_the_skipped_pairs(seed):
    rng = np.random.default_rng(seed)
    n = 3000
    x, y = rng.uniform(0, 600, n), rng.uniform(0, 600, n)
    # radii over several classes (a factor 2 each) in two of the seeds
    r = rng.uniform(2, 9, n) if seed % 2 else rng.choice([1.0, 3.0, 7.0, 20.0], n)
    skip = rng.random(n) < 0.6
    full = contact_pairs(x, y, r, 1.0)
    got = contact_pairs(x, y, r, 1.0, skip=skip)
    np.testing.assert_array_equal(got, _without_both(full, skip))
    np.testing.assert_array_equal(contact_pairs(x, y, r, 1.0, skip=np.zeros(n, bool)), full)


def test_polygon_contact_pairs_skip():
    rng = np.random.default_rng(7)
    n = 400
    cx, cy = rng.uniform(0, 200, n), rng.uniform(0, 200, n)
    rad = rng.uniform(3, 7, n)
    th = np.linspace(0, 2 * np.pi, 7)[:-1]
    outlines = [np.column_stack([a + s * np.cos(th), b + s * np.sin(th)]) for a, b, s in zip(cx, cy, rad, strict=True)]
    poly = make_polygons(outlines)
    c = poly.centroid()
    skip = rng.random(n) < 0.5
    full = polygon_contact_pairs(c[:, 0], c[:, 1], poly, 1.0)
    got = polygon_contact_pairs(c[:, 0], c[:, 1], poly, 1.0, skip=skip)
    np.testing.assert_array_equal(got, _without_both(full, skip))


def test_doorways_from_the_pairs_without_tumour_pairs_equal_those_from_all_pairs():
    t = table_of(tissue(20_000, seed=11).cells)
    sub = np.flatnonzero(t.cell_type != 0)
    every = table_contact_pairs(t, 1.0, sub)
    d = find_doorways(t)
    tumour = t.cell_type == TUMOUR
    np.testing.assert_array_equal(d.pairs, _without_both(every, tumour))
    ref = find_doorways(t, pairs=every)
    for counting in ("macrophage", "triangle", "cluster"):
        a, b = find_doorways(t, counting=counting), find_doorways(t, counting=counting, pairs=every)
        assert a.n == b.n and a.xy_um.tobytes() == b.xy_um.tobytes()
    np.testing.assert_array_equal(d.triangles, ref.triangles)
    np.testing.assert_array_equal(d.doorway_of_cell, ref.doorway_of_cell)


# ---------------------------------------------------------------------------------------------------------------
# Parquet without pandas


def _pandas_values(col, keep):
    return readers._categorical_or_array(col.to_pandas(), keep)


def test_parquet_columns_equal_pandas_conversion(tmp_path):
    rng = np.random.default_rng(3)
    n = 5000
    names = np.array(["Tumor", "Macrophage", "Endothelial", "Stroma", " Tumor "], dtype=object)
    labels = names[rng.integers(0, 5, n)]
    labels[::97] = None
    df = pd.DataFrame(
        {
            "x": rng.uniform(0, 900, n),
            "y32": rng.uniform(0, 900, n).astype(np.float32),
            "xnan": np.where(rng.random(n) < 0.01, np.nan, 1.0),
            "i": rng.integers(-5, 5, n),
            "i16": rng.integers(0, 9, n).astype(np.int16),
            "inull": pd.array(np.where(rng.random(n) < 0.05, None, 3), dtype="Int64"),
            "b": rng.random(n) < 0.5,
            "s": [f"id{k}" for k in range(n)],
            "lab": labels,
            "labfull": np.array(["Tumor", "Macrophage"], dtype=object)[rng.integers(0, 2, n)],
        }
    )
    path = tmp_path / "cols.parquet"
    df.to_parquet(path, row_group_size=700)  # several row groups: dictionaries to unify
    with pq.ParquetFile(path, read_dictionary=["lab", "labfull"]) as f:
        t = f.read()
    assert t.column("lab").num_chunks > 1
    for name in df.columns:
        for keep in (False, True):
            got, ref = readers._arrow_values(t.column(name), keep), _pandas_values(t.column(name), keep)
            if isinstance(ref, pd.Categorical):  # codes (or, with missing labels, pandas' own Categorical)
                assert isinstance(got, (readers._Coded, pd.Categorical)), name
                assert isinstance(got, readers._Coded) == (name == "labfull")
                np.testing.assert_array_equal(got.codes, ref.codes)
                assert list(got.categories) == ref.categories.tolist()
            else:
                assert got.dtype == ref.dtype, name
                assert pd.Series(got).equals(pd.Series(ref)), name  # (missing values equal too)


def test_read_cells_from_parquet_equals_the_pandas_path(tmp_path, monkeypatch):
    cells = tissue(6000, seed=4).cells.copy()
    cells["Object ID"] = [f"c{k}" for k in range(len(cells))]
    cells.loc[cells.index[::50], "cell_type"] = "Other"
    path = tmp_path / "cells.parquet"
    cells.to_parquet(path, row_group_size=1000)
    fast = read_cells(path)
    monkeypatch.setattr(readers, "_plain_numpy", lambda chunks: None)  # every column through pandas
    slow = read_cells(path)
    for name in ("x_um", "y_um", "radius_um", "cell_type"):
        assert getattr(fast, name).tobytes() == getattr(slow, name).tobytes()
    assert fast.meta["class_names"].tolist() == slow.meta["class_names"].tolist()
    np.testing.assert_array_equal(fast.meta["class_index"], slow.meta["class_index"])
    assert fast.meta["cell_ids"].tolist() == slow.meta["cell_ids"].tolist()


SCRIPT = """
import json, sys
from chemomet.cli import main
try:
    main(["tmem", sys.argv[1], "--out", sys.argv[2]])
except SystemExit as err:
    assert err.code in (0, None), err.code
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("pandas", "pyarrow"))))
"""


def test_the_command_reads_parquet_without_pandas(tmp_path):
    path = tmp_path / "cells.parquet"
    tissue(3000, seed=2).cells.to_parquet(path)
    out = tmp_path / "summary.json"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(path), str(out)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert "pandas" not in loaded and "pyarrow.dataset" not in loaded and "pyarrow.compute" not in loaded
    assert json.loads(out.read_text())["n_cells"] == 3000


# ---------------------------------------------------------------------------------------------------------------
# the checks of make_table


def test_make_table_checks_keep_their_order_and_messages():
    x = np.array([0.0, 20.0, 2e7, 30.0])
    y = np.array([0.0, np.nan, 5.0, 10.0])
    with pytest.raises(InputError, match=r"y\[row 1\]"):  # the finite checks come before the extent checks
        make_table(x, y, [1, 2, 3, 0], [5.0] * 4)
    with pytest.raises(InputError, match=r"x\[row 2\]"):
        make_table(x, np.zeros(4), [1, 2, 3, 0], [5.0] * 4)
    with pytest.raises(InputError, match=r"radius\[row 3\].*finite"):
        make_table(np.arange(4.0) * 10, np.zeros(4), [1, 2, 3, 0], [5.0, 0.0, 2e3, np.inf])
    with pytest.raises(InputError, match=r"radius\[row 1\].*> 0"):
        make_table(np.arange(4.0) * 10, np.zeros(4), [1, 2, 3, 0], [5.0, 0.0, 2e3, 4.0])
    with pytest.raises(InputError, match=r"radius\[row 2\].*at most"):
        make_table(np.arange(4.0) * 10, np.zeros(4), [1, 2, 3, 0], [5.0, 1.0, 2e3, 4.0])


def test_a_dictionary_label_column_becomes_codes():
    t = pa.table({"cell_type": pa.array(["Tumor", "Macrophage"]).dictionary_encode()})
    got = readers._arrow_values(t.column("cell_type"), True)
    assert got.codes.tolist() == [0, 1] and got.categories.tolist() == ["Tumor", "Macrophage"] and len(got) == 2
