"""Cell outlines (polygons): parsing, geometry and the exact polygon contact graph.

Outlines are stored ragged in a :class:`Polygons`: all vertices concatenated (``xy``, µm) and ``offsets`` so
that cell ``k`` owns ``xy[offsets[k]:offsets[k + 1]]``; a ring is not closed (the first vertex is not
repeated). Text columns hold one outline per cell, either WKT ``POLYGON ((x y, x y, ...))`` (outer ring only;
holes are ignored) or a JSON list of vertices ``[[x, y], [x, y], ...]`` (a GeoJSON polygon ``[[[x, y], ...]]``
with a single ring is accepted too); they are parsed in bulk with pyarrow compute, no Python loop over cells.

Contact (docs/science.md §6.2): two cells touch when the minimum distance between their outlines is ≤ the tolerance;
overlapping outlines (crossing boundaries, one inside the other) have distance 0, so shared edges count.
:func:`polygon_contact_pairs` finds the pairs in three vectorised steps:

1. candidates: k-d tree searches on the centroids (per class of circumradius, as for circles, and bounded before
   any pair is built, see :func:`chemomet.tme._checks.radius_class_pairs`), kept when
   ``|c_i − c_j| ≤ R_i + R_j + tol``, where ``R`` is each outline's circumradius about its centroid;
2. pruning (exact): only segments of cell ``i`` within ``R_j + tol`` of ``c_j`` can come within ``tol`` of cell
   ``j`` (or cross it), so each pair keeps those segments only (typically a fifth of the outline);
3. the minimum segment–segment distance over the kept segments, padded to the largest count in a chunk of
   pairs (crossing segments count as 0), plus a point-in-polygon test for an outline inside the other.

Work is done in chunks of candidate pairs (bounded memory); Python loops run over chunks only.
:func:`polygon_distances` is the same kernel without pruning (the exact distance of any pairs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chemomet.errors import InputError, field_error
from chemomet.tme._checks import check_tolerance, radius_class_pairs

POLYGON_ALLOWED = (
    "an outline as WKT 'POLYGON ((x y, x y, ...))' or JSON '[[x, y], [x, y], ...]', at least 3 distinct "
    "vertices, finite numbers, in the centroid units"
)

_KERNEL_ELEMS = 1 << 18  # segment pairs per kernel call (each temporary array is 2 MiB)
_GATHER_ELEMS = 1 << 20  # padded vertices per gather chunk


@dataclass(frozen=True)
class Polygons:
    """Ragged cell outlines.

    Attributes
    ----------
    xy : ``(m, 2)`` float64 vertices of all outlines, µm, concatenated in cell order (rings not closed).
    offsets : ``(n + 1,)`` int64; cell ``k`` owns ``xy[offsets[k]:offsets[k + 1]]`` (≥ 3 vertices each).

    Examples
    --------
    >>> p = make_polygons([[(0, 0), (10, 0), (10, 10), (0, 10)], [(20, 0), (30, 0), (25, 8)]])
    >>> p.n, p.sizes.tolist(), p.offsets.tolist()
    (2, [4, 3], [0, 4, 7])
    >>> p.area().tolist(), p.centroid()[0].tolist()  # µm², µm
    ([100.0, 40.0], [5.0, 5.0])
    """

    xy: np.ndarray
    offsets: np.ndarray

    @property
    def n(self) -> int:
        """Number of outlines."""
        return int(self.offsets.shape[0] - 1)

    @property
    def sizes(self) -> np.ndarray:
        """Vertex count of each outline."""
        return np.diff(self.offsets)

    def take(self, idx) -> Polygons:
        """The outlines of cells ``idx`` (in that order)."""
        idx = np.asarray(idx, dtype=np.int64)
        sizes = self.sizes[idx]
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        src = np.repeat(self.offsets[idx] - offsets[:-1], sizes) + np.arange(offsets[-1])
        return Polygons(self.xy[src], offsets)

    def transformed(self, scale: float = 1.0, rotation=None, shift=(0.0, 0.0)) -> Polygons:
        """``xy @ rotation.T * scale + shift`` (used for unit conversion and in tests)."""
        xy = self.xy if rotation is None else self.xy @ np.asarray(rotation, dtype=np.float64).T
        return Polygons(xy * float(scale) + np.asarray(shift, dtype=np.float64), self.offsets)

    def _next(self) -> np.ndarray:
        nxt = np.arange(1, self.xy.shape[0] + 1)
        nxt[self.offsets[1:] - 1] = self.offsets[:-1]
        return nxt

    def area(self) -> np.ndarray:
        """Area of each outline (shoelace formula, absolute value), µm²."""
        x, y = self.xy[:, 0], self.xy[:, 1]
        nxt = self._next()
        # about each outline's first vertex, for precision far from the origin
        first = np.repeat(self.offsets[:-1], self.sizes)
        xr, yr = x - x[first], y - y[first]
        cross = xr * yr[nxt] - xr[nxt] * yr
        return 0.5 * np.abs(np.add.reduceat(cross, self.offsets[:-1]))

    def centroid(self) -> np.ndarray:
        """Area centroid of each outline, ``(n, 2)`` µm."""
        x, y = self.xy[:, 0], self.xy[:, 1]
        nxt = self._next()
        first = np.repeat(self.offsets[:-1], self.sizes)
        x0, y0 = x[self.offsets[:-1]], y[self.offsets[:-1]]
        xr, yr = x - x[first], y - y[first]
        cross = xr * yr[nxt] - xr[nxt] * yr
        a = np.add.reduceat(cross, self.offsets[:-1])
        cx = np.add.reduceat((xr + xr[nxt]) * cross, self.offsets[:-1]) / (3 * a)
        cy = np.add.reduceat((yr + yr[nxt]) * cross, self.offsets[:-1]) / (3 * a)
        return np.column_stack([cx + x0, cy + y0])

    def circumradius(self, cx, cy) -> np.ndarray:
        """Largest distance from each centre ``(cx[k], cy[k])`` to a vertex of outline ``k``."""
        rep = np.repeat(np.arange(self.n), self.sizes)
        d = np.hypot(self.xy[:, 0] - np.asarray(cx)[rep], self.xy[:, 1] - np.asarray(cy)[rep])
        return np.maximum.reduceat(d, self.offsets[:-1])


def make_polygons(outlines, where: str = "<memory>", column: str = "polygon") -> Polygons:
    """Build validated :class:`Polygons` from a sequence of ``(k, 2)`` vertex arrays (a closing vertex equal
    to the first one is dropped). Convenience for code and tests; readers parse text in bulk instead.

    Parameters
    ----------
    outlines : one ``(k, 2)`` array of vertices per cell, µm (k ≥ 3 distinct vertices, non-zero area).
    where : the input's name, for messages.
    column : the outlines' name, for messages.

    Returns
    -------
    Polygons
        the outlines, µm, rings not closed.

    Raises
    ------
    InputError : fewer than 3 vertices, NaN/infinite coordinates or zero area (the row is named).

    Examples
    --------
    >>> p = make_polygons([[(0, 0), (10, 0), (10, 10), (0, 10), (0, 0)]])  # closed ring: last vertex dropped
    >>> p.sizes.tolist(), p.area().tolist()  # vertices, µm²
    ([4], [100.0])
    """
    arrs = [np.asarray(o, dtype=np.float64).reshape(-1, 2) for o in outlines]
    sizes = np.array([a.shape[0] for a in arrs], dtype=np.int64)
    xy = np.concatenate(arrs) if arrs else np.empty((0, 2))
    return _finish(xy, sizes, where, column, None)


def _finish(xy: np.ndarray, sizes: np.ndarray, where: str, column: str, raw) -> Polygons:
    """Drop closing vertices, check vertex counts, finiteness and area; return :class:`Polygons`."""

    def fail(i: int, why: str):
        shown = raw[i] if raw is not None else f"{int(sizes[i])} vertices"
        if isinstance(shown, str) and len(shown) > 60:
            shown = shown[:57] + "..."
        raise field_error(f"{column}[row {i}]", shown, f"{POLYGON_ALLOWED} ({why})", where=where)

    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    n = sizes.shape[0]
    bad = ~np.isfinite(xy).all(axis=1)
    if bad.any():
        fail(int(np.searchsorted(offsets, np.flatnonzero(bad)[0], side="right") - 1), "NaN or infinite vertex")
    has = sizes > 0
    last = offsets[1:] - 1
    closing = np.zeros(n, dtype=bool)
    closing[has] = (sizes[has] > 1) & (xy[last[has]] == xy[offsets[:-1][has]]).all(axis=1)
    if closing.any():
        keep = np.ones(xy.shape[0], dtype=bool)
        keep[last[closing]] = False
        xy = xy[keep]
        sizes = sizes - closing
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    few = sizes < 3
    if few.any():
        i = int(np.flatnonzero(few)[0])
        fail(i, f"{int(sizes[i])} vertices")
    poly = Polygons(np.ascontiguousarray(xy, dtype=np.float64), offsets)
    area = poly.area()
    scale = np.maximum.reduceat(np.abs(xy - xy[np.repeat(offsets[:-1], sizes)]).max(axis=1), offsets[:-1])
    flat = ~(area > 1e-12 * np.maximum(scale, 1e-300) ** 2)
    if flat.any():
        fail(int(np.flatnonzero(flat)[0]), "zero area: the vertices are collinear or repeated")
    return poly


def parse_polygons(values, column: str, where: str) -> Polygons:
    """Parse a text column of outlines (WKT or JSON vertex lists) into :class:`Polygons`.

    Parameters
    ----------
    values : one string per cell: WKT ``POLYGON ((x y, ...))`` (outer ring) or JSON ``[[x, y], ...]`` (or a
        GeoJSON ring ``[[[x, y], ...]]``), in the units of the centroids (µm, or px before conversion).
    column : the column's name, for messages.
    where : the file's name, for messages.

    Returns
    -------
    Polygons
        the outlines, in the units of the text.

    Raises
    ------
    InputError : one line naming the column and the first bad row (missing, unparsable, fewer than 3
        vertices, NaN/infinite or zero area).

    Examples
    --------
    >>> p = parse_polygons(
    ...     ["POLYGON ((0 0, 10 0, 10 10, 0 10, 0 0))", "[[20, 0], [30, 0], [25, 8]]"], "outline", "cells.csv"
    ... )
    >>> p.sizes.tolist(), p.area().tolist()  # vertices, µm²
    ([4, 3], [100.0, 40.0])
    """
    import pandas as pd  # here, not at import: only outlines in text need pandas and pyarrow's compute functions
    import pyarrow as pa
    import pyarrow.compute as pc

    s = pd.Series(values, dtype=object)
    n = len(s)
    missing = s.isna().to_numpy()
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise field_error(f"{column}[row {i}]", None, f"{POLYGON_ALLOWED} (the cell has no outline)", where=where)
    is_str = s.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
    if not is_str.all():
        i = int(np.flatnonzero(~is_str)[0])
        raise field_error(f"{column}[row {i}]", s.iloc[i], POLYGON_ALLOWED, where=where)
    raw = s.to_numpy()
    text = pc.utf8_trim_whitespace(pa.array(raw, type=pa.string()))
    blank = pc.equal(pc.utf8_length(text), 0).to_numpy(zero_copy_only=False)
    if blank.any():
        i = int(np.flatnonzero(blank)[0])
        raise field_error(f"{column}[row {i}]", raw[i], f"{POLYGON_ALLOWED} (the cell has no outline)", where=where)
    is_wkt = pc.starts_with(text, "POLYGON", ignore_case=True).to_numpy(zero_copy_only=False)
    is_json = pc.starts_with(text, "[").to_numpy(zero_copy_only=False)

    def fail(mask, why):
        if mask.any():
            i = int(np.flatnonzero(mask)[0])
            shown = raw[i] if len(raw[i]) <= 60 else raw[i][:57] + "..."
            raise field_error(f"{column}[row {i}]", shown, f"{POLYGON_ALLOWED} ({why})", where=where)

    fail(~(is_wkt | is_json), "neither WKT POLYGON nor a JSON list")
    # WKT: the outer ring, 'x y' pairs separated by commas (holes after it are ignored)
    ring = pc.extract_regex(text, rf"(?i)^POLYGON\s*\(\s*\(\s*(?P<ring>{_PAIR_WKT}(?:\s*,\s*{_PAIR_WKT})*)\s*\)")
    ring_ok = ring.is_valid().to_numpy(zero_copy_only=False)
    fail(is_wkt & ~ring_ok, "unparsable WKT: expected 'x y' pairs separated by commas")
    # JSON: one ring of [x, y] lists, optionally nested once more (GeoJSON polygon with one ring)
    json_ok = pc.match_substring_regex(text, rf"(?i)^(?:{_RING_JSON}|\[\s*{_RING_JSON}\s*\])$")
    fail(is_json & ~json_ok.to_numpy(zero_copy_only=False), "not one JSON ring of [x, y] vertices")
    ring_text = pc.fill_null(pc.if_else(pa.array(is_wkt), pc.struct_field(ring, "ring"), text), "")
    geo = pc.match_substring_regex(text, r"^\[\s*\[\s*\[").to_numpy(zero_copy_only=False)
    n_brackets = pc.count_substring(text, "[").to_numpy(zero_copy_only=False)
    n_commas = pc.count_substring(ring_text, ",").to_numpy(zero_copy_only=False)
    tokens = pc.split_pattern_regex(ring_text, r"[\s,\[\]()]+")
    flat = pc.list_flatten(tokens)
    parent = pc.list_parent_indices(tokens).to_numpy()
    nonempty = pc.greater(pc.utf8_length(flat), 0).to_numpy(zero_copy_only=False)
    flat = flat.filter(pa.array(nonempty))
    parent = parent[nonempty]
    counts = np.bincount(parent, minlength=n)
    try:
        nums = pc.cast(flat, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        ok = np.array([_is_float(t) for t in flat.to_pylist()], dtype=bool)  # error path only
        bad_rows = np.zeros(n, dtype=bool)
        bad_rows[parent[~ok]] = True
        fail(bad_rows, "a coordinate is not a number")
        raise InputError(f"{where}: column {column!r}: cannot parse the outlines; allowed: {POLYGON_ALLOWED}") from None
    n_vert = np.where(is_wkt, n_commas + 1, n_brackets - 1 - geo)
    fail(counts != 2 * n_vert, "each vertex must be two numbers x y")
    xy = nums.reshape(-1, 2)
    return _finish(xy, n_vert.astype(np.int64), where, column, raw)


_NUM = r"[-+.0-9a-zA-Z]+"  # a token; the float conversion checks it
_PAIR_WKT = rf"{_NUM}\s+{_NUM}"
_VERTEX_JSON = rf"\[\s*{_NUM}\s*,\s*{_NUM}\s*\]"
_RING_JSON = rf"\[\s*{_VERTEX_JSON}(?:\s*,\s*{_VERTEX_JSON})*\s*\]"


def _is_float(t: str) -> bool:
    try:
        float(t)
    except ValueError:
        return False
    return True


# ----------------------------------------------------------------------------------------------------------
# geometry kernels


def _pseg(px, py, qx, qy, ex, ey, inv):
    """Squared distance from points ``p`` to segments ``q → q + e`` and the orientation ``e × (p − q)``.

    ``inv`` is ``1 / |e|²`` (0 for a degenerate segment); arguments broadcast.
    """
    wx = px - qx
    wy = py - qy
    t = (wx * ex + wy * ey) * inv
    np.clip(t, 0.0, 1.0, out=t)
    dx = wx - t * ex
    dy = wy - t * ey
    return dx * dx + dy * dy, ex * wy - ey * wx


def _segments_min_d2(ax, ay, aex, aey, ainv, bx, by, bex, bey, binv):
    """Minimum squared distance between segment sets ``a`` ``(P, Ka)`` and ``b`` ``(P, Kb)``, per row.

    Segments are given by start point and direction; crossing segments have distance 0.
    """
    ax, ay, aex, aey, ainv = (v[:, :, None] for v in (ax, ay, aex, aey, ainv))
    bx, by, bex, bey, binv = (v[:, None, :] for v in (bx, by, bex, bey, binv))
    d2, c1 = _pseg(ax, ay, bx, by, bex, bey, binv)  # a's start vs b
    e2, c2 = _pseg(ax + aex, ay + aey, bx, by, bex, bey, binv)  # a's end vs b
    np.minimum(d2, e2, out=d2)
    e2, c3 = _pseg(bx, by, ax, ay, aex, aey, ainv)  # b's start vs a
    np.minimum(d2, e2, out=d2)
    e2, c4 = _pseg(bx + bex, by + bey, ax, ay, aex, aey, ainv)  # b's end vs a
    np.minimum(d2, e2, out=d2)
    cross = ((c1 * c2) < 0) & ((c3 * c4) < 0)
    d2[cross] = 0.0
    return d2.reshape(d2.shape[0], -1).min(axis=1)


def _padded(poly: Polygons, cells: np.ndarray, ox: np.ndarray, oy: np.ndarray):
    """Segments of outlines ``cells`` padded to the longest: start ``(x, y)``, direction, ``1/|e|²``, valid.

    Coordinates are relative to ``(ox, oy)`` per row. Padding segments are the degenerate point at the first
    vertex (harmless for distances and for point-in-polygon tests).
    """
    off = poly.offsets[cells]
    size = poly.offsets[cells + 1] - off
    ar = np.arange(int(size.max()))
    valid = ar < size[:, None]
    s = off[:, None] + np.where(valid, ar, 0)
    x0 = poly.xy[s, 0] - ox[:, None]
    y0 = poly.xy[s, 1] - oy[:, None]
    # the end of segment k is vertex k + 1; the padding (first vertex) closes the ring
    ex = np.concatenate([x0[:, 1:], x0[:, :1]], axis=1) - x0
    ey = np.concatenate([y0[:, 1:], y0[:, :1]], axis=1) - y0
    ee = ex * ex + ey * ey
    inv = np.divide(1.0, ee, out=np.zeros_like(ee), where=ee > 0)
    return x0, y0, ex, ey, inv, valid


def _inside(px, py, x0, y0, ex, ey) -> np.ndarray:
    """Point ``(px[k], py[k])`` inside the ring of row ``k`` (crossing number; padding segments never cross)."""
    px, py = px[:, None], py[:, None]
    y1 = y0 + ey
    cond = (y0 > py) != (y1 > py)
    with np.errstate(divide="ignore", invalid="ignore"):
        xint = x0 + (py - y0) * ex / ey
    return ((cond & (px < xint)).sum(axis=1) % 2) == 1


def _compact(mask: np.ndarray, *arrays):
    """Keep the ``True`` columns of each row, left-aligned and padded with the row's first kept column."""
    k = mask.sum(axis=1)
    kmax = max(int(k.max()), 1)
    rows, cols = np.nonzero(mask)
    slot = (np.cumsum(mask, axis=1) - 1)[rows, cols]
    idx = np.repeat(np.argmax(mask, axis=1)[:, None], kmax, axis=1)
    idx[rows, slot] = cols
    return [np.take_along_axis(a, idx, axis=1) for a in arrays]


def _pair_min_d2(pa_, pb_, prune_a=None, prune_b=None) -> np.ndarray:
    """Minimum squared segment distance per row for padded segment sets, optionally pruned by masks."""
    if prune_a is not None:
        pa_ = _compact(prune_a, *pa_)
        pb_ = _compact(prune_b, *pb_)
    p, ka, kb = pa_[0].shape[0], pa_[0].shape[1], pb_[0].shape[1]
    out = np.empty(p)
    step = max(1, _KERNEL_ELEMS // (ka * kb))
    for s in range(0, p, step):  # chunks of pairs, bounded memory
        sl = slice(s, s + step)
        out[sl] = _segments_min_d2(*(v[sl] for v in pa_), *(v[sl] for v in pb_))
    return out


def _chunks(polygons: Polygons, i: np.ndarray, j: np.ndarray):
    """Index arrays of pair chunks, pairs ordered by their larger vertex count so that a chunk pads little
    and holds at most about ``_GATHER_ELEMS`` padded vertices per outline array."""
    sizes = polygons.sizes
    w = np.maximum(sizes[i], sizes[j])
    order = np.argsort(w, kind="stable")
    w = w[order]
    s, n = 0, order.size
    while s < n:
        e = min(n, s + max(1, _GATHER_ELEMS // int(w[s])))
        e = min(e, s + max(1, _GATHER_ELEMS // int(w[e - 1])))
        yield order[s:e]
        s = e


def polygon_distances(polygons: Polygons, i, j) -> np.ndarray:
    """Exact minimum distance between outlines ``i[k]`` and ``j[k]`` (0 when they cross, touch or one lies
    inside the other), µm. Vectorised over pairs (all segments of both outlines, no pruning).

    Parameters
    ----------
    polygons : the outlines, µm.
    i, j : outline indices, the same length.

    Returns
    -------
    numpy.ndarray
        float64 distances, µm, one per pair.

    Examples
    --------
    Three 10 µm squares, the second 1 µm right of the first, the third 30 µm right of it:

    >>> p = make_polygons([[(0, 0), (10, 0), (10, 10), (0, 10)], [(11, 0), (21, 0), (21, 10), (11, 10)],
    ...                    [(40, 0), (50, 0), (50, 10), (40, 10)]])
    >>> polygon_distances(p, [0, 0], [1, 2]).tolist()
    [1.0, 30.0]
    """
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    out = np.empty(i.shape[0])
    if i.size == 0:
        return out
    xy = polygons.xy
    for sl in _chunks(polygons, i, j):
        a, b = i[sl], j[sl]
        ox, oy = xy[polygons.offsets[a], 0], xy[polygons.offsets[a], 1]
        pa_ = _padded(polygons, a, ox, oy)
        pb_ = _padded(polygons, b, ox, oy)
        d2 = _pair_min_d2(pa_[:5], pb_[:5])
        inside = _inside(pa_[0][:, 0], pa_[1][:, 0], *pb_[:4]) | _inside(pb_[0][:, 0], pb_[1][:, 0], *pa_[:4])
        d2[inside] = 0.0
        out[sl] = np.sqrt(d2)
    return out


def polygon_contact_pairs(
    x_um, y_um, polygons: Polygons, tolerance_um: float = 1.0, *, where: str = "cells", skip=None
) -> np.ndarray:
    """All pairs of cells whose outlines are within ``tolerance_um`` (touching or overlapping outlines count).

    Parameters
    ----------
    x_um, y_um : centroids, µm, shape ``(n,)`` (the candidate search is about them).
    polygons : the outlines, µm (:class:`Polygons` with ``n`` outlines).
    tolerance_um : largest gap between two outlines still counted as contact, µm (≥ 0).
    where : name of the input, for the message of a refused (degenerate) table.
    skip : optional bool per cell: pairs of two such cells are left out (not searched); ``None``: every pair.

    Returns
    -------
    ``(m, 2)`` int64 index pairs ``(i, j)``, ``i < j``, sorted lexicographically, such that
    ``polygon_distances(polygons, i, j) ≤ tolerance_um`` (and not both skipped).

    Examples
    --------
    The squares of :func:`polygon_distances` (gaps of 1 µm and 30 µm), with a tolerance of 1 µm:

    >>> p = make_polygons([[(0, 0), (10, 0), (10, 10), (0, 10)], [(11, 0), (21, 0), (21, 10), (11, 10)],
    ...                    [(40, 0), (50, 0), (50, 10), (40, 10)]])
    >>> c = p.centroid()
    >>> polygon_contact_pairs(c[:, 0], c[:, 1], p, tolerance_um=1.0).tolist()
    [[0, 1]]
    """
    tol = check_tolerance(tolerance_um)
    x = np.asarray(x_um, dtype=np.float64)
    y = np.asarray(y_um, dtype=np.float64)
    empty = np.empty((0, 2), dtype=np.int64)
    if x.shape[0] != polygons.n:
        raise field_error("polygons", f"{polygons.n} outlines", f"one per cell ({x.shape[0]})")
    if x.shape[0] < 2:
        return empty
    R = polygons.circumradius(x, y)
    skip = None if skip is None else np.asarray(skip, dtype=bool)
    pairs = radius_class_pairs(x, y, R, tol, where, skip)  # bounded before any pair is built
    if pairs.size == 0:
        return empty
    i, j = pairs[:, 0], pairs[:, 1]
    d = np.hypot(x[i] - x[j], y[i] - y[j])
    near = d <= (R[i] + R[j] + tol) * (1 + 1e-9)
    i, j = i[near], j[near]
    keep = np.zeros(i.shape[0], dtype=bool)
    tol2 = tol * tol
    for sl in _chunks(polygons, i, j):
        keep[sl] = _contact_chunk(polygons, x, y, R, i[sl], j[sl], tol, tol2)
    lo, hi = np.minimum(i[keep], j[keep]), np.maximum(i[keep], j[keep])
    order = np.lexsort((hi, lo))
    return np.column_stack([lo[order], hi[order]])


def _contact_chunk(poly, x, y, R, a, b, tol, tol2) -> np.ndarray:
    ox, oy = x[a], y[a]  # pair-local origin: centroid of a
    pa_ = _padded(poly, a, ox, oy)
    pb_ = _padded(poly, b, ox, oy)
    bx, by = x[b] - ox, y[b] - oy
    slack = 1 + 1e-9
    # exact pruning: a segment of a within tol of b (or crossing b) is within R_b + tol of b's centre
    d2a, _ = _pseg(bx[:, None], by[:, None], *pa_[:2], *pa_[2:5])
    d2b, _ = _pseg(0.0, 0.0, *pb_[:2], *pb_[2:5])
    ra = ((R[b] + tol) * slack) ** 2
    rb = ((R[a] + tol) * slack) ** 2
    mask_a = pa_[5] & (d2a <= ra[:, None])
    mask_b = pb_[5] & (d2b <= rb[:, None])
    both = mask_a.any(axis=1) & mask_b.any(axis=1)
    hit = np.zeros(a.shape[0], dtype=bool)
    if both.any():
        # order by kept-segment count so that chunks pad little
        ka, kb = mask_a.sum(axis=1), mask_b.sum(axis=1)
        rows = np.flatnonzero(both)
        rows = rows[np.argsort(np.maximum(ka[rows], kb[rows]), kind="stable")]
        kk = np.maximum(ka[rows], kb[rows])
        s = 0
        while s < rows.size:
            e = min(rows.size, s + max(1, 4 * _KERNEL_ELEMS // int(kk[s]) ** 2))
            e = min(e, s + max(1, 4 * _KERNEL_ELEMS // int(kk[e - 1]) ** 2))
            r = rows[s:e]
            d2 = _pair_min_d2([v[r] for v in pa_[:5]], [v[r] for v in pb_[:5]], mask_a[r], mask_b[r])
            hit[r] = d2 <= tol2
            s = e
    rest = ~hit
    if rest.any():
        pa_r = [v[rest] for v in pa_[:4]]
        pb_r = [v[rest] for v in pb_[:4]]
        inside = _inside(pa_r[0][:, 0], pa_r[1][:, 0], *pb_r) | _inside(pb_r[0][:, 0], pb_r[1][:, 0], *pa_r)
        hit[rest] = inside
    return hit
