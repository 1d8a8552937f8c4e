"""Tissue and tumour area from the cells themselves.

Two estimates, both invariant to row order and (up to the raster's resolution) to rotation and translation:

``"raster"`` (default; cheap and bounded)
    The cells' centroids are marked on a square raster of ``raster_um`` (10 µm) and the occupied pixels closed
    (``scipy.ndimage`` binary closing: a dilation then an erosion) with a disk of radius ``max_edge_um / 2``, so
    gaps between cells up to ``max_edge_um`` wide are tissue and wider gaps, lumina and the outside are not —
    the same cut-off as the triangulation below. The area is the closed pixels' count times the pixel area; it
    runs a quarter to half a cell radius beyond the outermost centroids (cells have an extent), so it is a few
    per cent larger than the triangulation's on small sections. Each tissue pixel is attributed to the cell types
    of the nearest occupied pixel (in proportion to its cells), which gives the tumour area. The section is
    processed in tiles of 1024 pixels (memory bounded whatever the slide size); if the cells are scattered
    over so many tiles that this would be slow, the raster is coarsened (and :attr:`Areas.raster_um` says so).
``"delaunay"``
    The Delaunay triangulation of all centroids, keeping only triangles whose three edges are all
    ≤ ``max_edge_um`` (an alpha-shape-like hull); each kept triangle's area is split equally between its three
    vertices, so the tumour area is the area attributed to tumour cells. Exact for the centroids' hull but
    costly on whole slides (most of the scoring time at 10⁶ cells).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import Delaunay, QhullError

from chemomet.errors import field_error

AREA_METHODS = ("raster", "delaunay")
"""Ways to measure the tissue area: see the module docstring."""
TILE_BITS = 10
TILE_PX = 1 << TILE_BITS
"""Side of a raster tile, pixels (1024)."""
MAX_TILES = 400
"""More occupied tiles than this coarsens the raster (factor 2 at a time)."""
MAX_CLOSING_RADIUS_PX = 16
"""A closing disk wider than this (radius, pixels) coarsens the raster (factor 2 at a time): a 10,000 µm
``max_edge`` on a 0.5 µm raster would otherwise need a 20,001-pixel disk and exhaust memory."""


@dataclass(frozen=True)
class Areas:
    """Areas in mm²: ``tissue_mm2`` and ``by_type_mm2[code]`` (attributed to the cell types).

    Attributes
    ----------
    tissue_mm2 : tissue area, mm².
    by_type_mm2 : area attributed to each cell-type code 0..3, mm² (sums to ``tissue_mm2``).
    method : ``"raster"`` or ``"delaunay"``.
    raster_um : pixel size of the raster actually used, µm (``None`` for the triangulation); larger than asked
        when the cells are scattered over a very large extent.

    Examples
    --------
    >>> a = tissue_areas([0.0, 10.0, 0.0, 10.0], [0.0, 0.0, 10.0, 10.0], [1, 1, 2, 3], method="delaunay")
    >>> a.method, round(a.tissue_mm2, 10)
    ('delaunay', 0.0001)
    """

    tissue_mm2: float
    by_type_mm2: np.ndarray
    method: str = "delaunay"
    raster_um: float | None = None


def tissue_areas(
    x_um, y_um, cell_type, max_edge_um: float = 50.0, method: str = "raster", raster_um: float = 10.0
) -> Areas:
    """Tissue area and area per cell type, mm².

    Parameters
    ----------
    x_um, y_um : centroids, µm.
    cell_type : integer codes 0..3.
    max_edge_um : widest gap between cells still counted as tissue, µm (> 0): the closing diameter of the
        raster, the longest kept edge of the triangulation.
    method : ``"raster"`` (default) or ``"delaunay"``; see the module docstring.
    raster_um : pixel size of the raster, µm (> 0; 10 by default).

    Returns
    -------
    Areas
        ``tissue_mm2`` and ``by_type_mm2`` (indexed by type code), mm².

    Examples
    --------
    A 100 × 50 grid of cells 10 µm apart, the left half tumour: the triangulation measures the centroids' hull
    (990 × 490 µm), the raster the cells' pixels (1000 × 500 µm):

    >>> import numpy as np
    >>> gx, gy = np.meshgrid(np.arange(100) * 10.0 + 5.0, np.arange(50) * 10.0 + 5.0)
    >>> x, y = gx.ravel(), gy.ravel()
    >>> ct = np.where(x < 500, 1, 0)
    >>> round(tissue_areas(x, y, ct, method="delaunay").tissue_mm2, 4), round(tissue_areas(x, y, ct).tissue_mm2, 4)
    (0.4851, 0.5)
    >>> round(float(tissue_areas(x, y, ct).by_type_mm2[1]), 4)  # the tumour half, mm²
    0.25
    """
    if not (np.isfinite(max_edge_um) and max_edge_um > 0):
        raise field_error("max_edge", max_edge_um, "a number > 0", "µm")
    if method not in AREA_METHODS:
        raise field_error("area_method", method, " | ".join(AREA_METHODS))
    if not (np.isfinite(raster_um) and raster_um > 0):
        raise field_error("area_raster", raster_um, "a number > 0", "µm")
    x = np.asarray(x_um, dtype=np.float64)
    y = np.asarray(y_um, dtype=np.float64)
    ct = np.asarray(cell_type)
    if method == "delaunay":
        return _delaunay_areas(x, y, ct, float(max_edge_um))
    return _raster_areas(x, y, ct, float(max_edge_um), float(raster_um))


def _delaunay_areas(x: np.ndarray, y: np.ndarray, ct: np.ndarray, max_edge_um: float) -> Areas:
    zero = Areas(0.0, np.zeros(4), "delaunay")
    if x.shape[0] < 3:
        return zero
    # Centre the coordinates first: Qhull is translation-sensitive in the last bits otherwise.
    xy = np.column_stack([x - x.mean(), y - y.mean()])
    try:
        tri = Delaunay(xy).simplices
    except QhullError:  # all points collinear or coincident: no area
        return zero
    a, b, c = xy[tri[:, 0]], xy[tri[:, 1]], xy[tri[:, 2]]
    e2 = max_edge_um**2
    keep = (((a - b) ** 2).sum(1) <= e2) & (((b - c) ** 2).sum(1) <= e2) & (((c - a) ** 2).sum(1) <= e2)
    tri, a, b, c = tri[keep], a[keep], b[keep], c[keep]
    area = 0.5 * np.abs((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1]))
    per_type = np.bincount(ct[tri].ravel(), np.repeat(area / 3.0, 3), minlength=4)[:4]
    return Areas(float(area.sum()) * 1e-6, per_type * 1e-6, "delaunay")


def _disk(radius_px: float) -> np.ndarray:
    g = np.arange(-int(np.floor(radius_px)), int(np.floor(radius_px)) + 1)
    return (g[:, None] ** 2 + g[None, :] ** 2) <= radius_px**2 + 1e-9


def _shift_into(out: np.ndarray, src: np.ndarray, d: int, axis: int, union: bool) -> None:
    """``out[i] |= src[i + d]`` (``union``) or ``out[i] &= src[i + d]`` along ``axis``, for every ``i`` with ``i + d``
    inside; where it is outside, ``src`` counts as empty (the union is unchanged, the intersection becomes empty)."""
    n = out.shape[axis]
    a = min(abs(d), n)

    def part(lo, hi):
        return (slice(lo, hi), slice(None)) if axis == 0 else (slice(None), slice(lo, hi))

    if d > 0:  # out[i] with src[i + a], for i < n − a; the last a rows have no partner inside
        dst, got, outside = part(0, n - a), part(a, n), part(n - a, n)
    else:  # out[i] with src[i − a], for i ≥ a; the first a rows have no partner inside
        dst, got, outside = part(a, n), part(0, n - a), part(0, a)
    if union:
        out[dst] |= src[got]
    else:
        out[dst] &= src[got]
        out[outside] = False


def _disk_morphology(img: np.ndarray, disk: np.ndarray, union: bool) -> np.ndarray:
    """Binary dilation (``union``) or erosion of ``img`` by the symmetric ``disk``, the outside of the image empty:
    ``scipy.ndimage.binary_dilation(img, disk)`` / ``binary_erosion(img, disk)`` bit for bit (their default border
    value 0), in a few whole-array passes (``tests/tme/test_tme_speed_paths.py``). Each row of the disk is a run
    of ``2w + 1`` pixels: the image is first combined with its shifts by up to ``±w`` along axis 1, once per run
    width, and the rows of the disk are then combined along axis 0."""
    k = disk.shape[0] // 2
    half = [int(disk[k + dy].sum()) // 2 for dy in range(-k, k + 1)]  # the run's half-width w of each row dy
    runs = {0: img}
    run = img.copy()
    for w in range(1, max(half) + 1):
        _shift_into(run, img, w, 1, union)
        _shift_into(run, img, -w, 1, union)
        if w in half:
            runs[w] = run.copy()
    out = runs[half[k]].copy()
    for dy in range(-k, k + 1):
        if dy:
            _shift_into(out, runs[half[k + dy]], dy, 0, union)
    return out


def _tile_key(tx: np.ndarray, ty: np.ndarray) -> np.ndarray:
    return tx * (1 << 32) + ty + (1 << 31)


DENSE_TILE_IDS = 1 << 16
"""Most tiles (with a ring of neighbours) numbered densely by :func:`_window_members`: their ids then fit 16 bits,
which NumPy's stable argsort sorts by radix in linear time."""


def _window_members(ix: np.ndarray, iy: np.ndarray, margin: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Every (tile, cell) pair such that the cell lies in the tile's window (the tile and ``margin`` <
    :data:`TILE_PX` pixels around it): each cell in its own tile, and the cells within ``margin`` pixels of a
    tile's edge also in the neighbouring tile(s).

    Returns ``(tile ids, cell indices, stride)``. The pixel indices ``ix``, ``iy`` are ≥ 0, so tiles run from −1
    (a neighbour) on; a tile's id is ``(tx + 1)·stride + ty + 1`` when fewer than :data:`DENSE_TILE_IDS` tiles
    cover the extent (``stride`` = tiles along y plus the two neighbours), else its :func:`_tile_key` (``stride``
    0). Either id sorts the tiles in the order of (tx, ty)."""
    tx, ty = ix >> TILE_BITS, iy >> TILE_BITS  # ix // TILE_PX and ix % TILE_PX below, for indices ≥ 0
    rx, ry = ix & (TILE_PX - 1), iy & (TILE_PX - 1)
    stride = int(ty.max()) + 3  # tiles along y, and a neighbour on each side
    dense = (int(tx.max()) + 3) * stride <= DENSE_TILE_IDS

    def ids(a: np.ndarray, b: np.ndarray, dx: int, dy: int) -> np.ndarray:
        return (a + (dx + 1)) * stride + (b + (dy + 1)) if dense else _tile_key(a + dx, b + dy)

    keys, cells = [ids(tx, ty, 0, 0)], [np.arange(ix.shape[0])]
    # the cells near an edge of their tile, in their order: only they belong to other windows too
    edge = np.flatnonzero((rx < margin) | (rx >= TILE_PX - margin) | (ry < margin) | (ry >= TILE_PX - margin))
    tx, ty, rx, ry = tx[edge], ty[edge], rx[edge], ry[edge]
    steps_x = [(0, None), (-1, rx < margin), (1, rx >= TILE_PX - margin)]
    steps_y = [(0, None), (-1, ry < margin), (1, ry >= TILE_PX - margin)]
    for dx, mx in steps_x:
        for dy, my in steps_y:
            if mx is None and my is None:
                continue
            sel = mx if my is None else my if mx is None else mx & my
            idx = np.flatnonzero(sel)
            if idx.size:
                keys.append(ids(tx[idx], ty[idx], dx, dy))
                cells.append(edge[idx])
    return np.concatenate(keys), np.concatenate(cells), (stride if dense else 0)


def _raster_areas(x: np.ndarray, y: np.ndarray, ct: np.ndarray, max_edge_um: float, h: float) -> Areas:
    """The raster estimate (module docstring), tile by tile.

    Each tissue pixel goes to the cells of its nearest occupied pixel in equal shares, so a cell's share of the
    area is (tissue pixels attributed to its pixel) / (cells in its pixel): the area per type is one weighted
    count over the cells, with no per-pixel table of types. The tissue area is an integer count of pixels, the
    same whatever the order of the cells; the areas per type are sums of fractions, equal to those of the former
    per-pixel formulation up to rounding (relative 1e-12; ``tests/tme/test_tme_areas_fast.py``)."""
    if x.shape[0] == 0:
        return Areas(0.0, np.zeros(4), "raster", h)
    x0, y0 = float(x.min()), float(y.min())
    while 0.5 * max_edge_um / h > MAX_CLOSING_RADIUS_PX:
        h *= 2.0
    while True:
        ix = np.floor((x - x0) / h).astype(np.int64)
        iy = np.floor((y - y0) / h).astype(np.int64)
        rc = 0.5 * max_edge_um / h  # closing radius, pixels
        margin = int(np.ceil(2 * rc)) + 2  # < TILE_PX, as rc ≤ MAX_CLOSING_RADIUS_PX
        tile_of, cell_of, stride = _window_members(ix, iy, margin)
        if stride:  # dense ids: the tiles counted, and sorted by radix (16-bit ids), in linear time
            n_tiles = int(np.count_nonzero(np.bincount(tile_of)))
        else:
            n_tiles = int(np.unique(tile_of).size)
        if n_tiles <= MAX_TILES:
            break
        h *= 2.0  # scattered over a huge extent: a coarser raster keeps the work bounded
    disk = _disk(rc) if rc >= 1 else None
    # the window members grouped by tile, in the order of (tx, ty), each tile's cells in their order above
    order = np.argsort(tile_of.astype(np.uint16) if stride else tile_of, kind="stable")
    tile_of, cell_of = tile_of[order], cell_of[order]
    bounds = np.flatnonzero(np.r_[True, tile_of[1:] != tile_of[:-1], True])
    per_type = np.zeros(4)
    total = 0
    for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        key = int(tile_of[a])
        if stride:
            kx, ky = key // stride - 1, key % stride - 1
        else:
            kx, ky = key >> 32, (key & ((1 << 32) - 1)) - (1 << 31)
        sel = cell_of[a:b]  # the cells in this tile's window
        px, py, t = ix[sel] - kx * TILE_PX, iy[sel] - ky * TILE_PX, ct[sel]
        # a window cropped to these cells (a sparse tile costs little)
        wx0, wy0 = int(px.min()) - margin, int(py.min()) - margin
        wx1, wy1 = int(px.max()) + margin + 1, int(py.max()) + margin + 1
        w, hgt = wx1 - wx0, wy1 - wy0
        flat = (px - wx0) * hgt + (py - wy0)
        n_in = np.bincount(flat, minlength=w * hgt)  # cells per pixel
        occ = (n_in > 0).reshape(w, hgt)
        if disk is not None:  # the closing: a dilation then an erosion by the disk (scipy.ndimage's, bit for bit)
            closed = _disk_morphology(_disk_morphology(occ, disk, True), disk, False) | occ
        else:
            closed = occ
        # count only the pixels of this tile
        cx0, cy0 = max(0, -wx0), max(0, -wy0)
        cx1, cy1 = min(w, TILE_PX - wx0), min(hgt, TILE_PX - wy0)
        if cx1 <= cx0 or cy1 <= cy0:
            continue
        tissue = np.zeros_like(closed)
        tissue[cx0:cx1, cy0:cy1] = closed[cx0:cx1, cy0:cy1]
        n_px = int(np.count_nonzero(tissue))
        if n_px == 0:
            continue
        total += n_px
        # tissue pixels attributed to the occupied pixel of each cell: itself (when it is tissue of this tile), and
        # the gap pixels it is nearest to; integers, divided by the cells sharing the pixel
        share = tissue.ravel()[flat].astype(np.int64)
        gap = tissue & ~occ
        if gap.any():
            nx, ny = ndimage.distance_transform_edt(~occ, return_distances=False, return_indices=True)
            g = np.flatnonzero(gap)
            share += np.bincount(nx.ravel()[g] * hgt + ny.ravel()[g], minlength=w * hgt)[flat]
        per_type += np.bincount(t, weights=share / n_in[flat], minlength=4)[:4]
    px_mm2 = h * h * 1e-6
    return Areas(total * px_mm2, per_type * px_mm2, "raster", h)
