"""The validated cell table every analysis step works on.

A :class:`CellTable` holds one row per segmented cell: centroid ``x_um``, ``y_um`` and equivalent radius
``radius_um`` (all µm, float64), an integer cell-type code (:data:`OTHER`, :data:`TUMOUR`,
:data:`MACROPHAGE`, :data:`ENDOTHELIAL`) and optional TIE2 / CD163 flags for macrophages. It is built once by
the readers (or :func:`make_table`), checked there, and never re-checked by the numerical code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from chemomet.errors import InputError, field_error
from chemomet.tme.polygons import Polygons

OTHER = 0
TUMOUR = 1
MACROPHAGE = 2
ENDOTHELIAL = 3
TYPE_NAMES = ("other", "tumour", "macrophage", "endothelial")
"""Names of the cell-type codes, indexed by code."""

MAX_ABS_COORDINATE_UM = 1e7
"""Coordinates beyond ±10⁷ µm (10 m) are refused whatever the unit check says: no section is that large, and
such numbers (1e308, an unconverted nm value) overflow the geometry."""
MAX_RADIUS_UM = 1000.0
"""A radius above 1 mm is refused for every cell, whatever the unit check says."""
MIN_PLAUSIBLE_NN_UM = 1.0
MAX_PLAUSIBLE_NN_UM = 500.0
MIN_PLAUSIBLE_RADIUS_UM = 0.5
MAX_PLAUSIBLE_RADIUS_UM = 60.0


@dataclass(frozen=True)
class CellTable:
    """Cells of one tissue section, in µm.

    Attributes
    ----------
    x_um, y_um : centroid coordinates, µm, shape ``(n,)``.
    radius_um : equivalent-circle radius of each cell, µm, shape ``(n,)``.
    cell_type : int8 codes ``OTHER=0, TUMOUR=1, MACROPHAGE=2, ENDOTHELIAL=3``.
    tie2, cd163 : boolean marker status per cell (meaningful on macrophages), or ``None`` when not measured.
    source : where the table came from (file name), for messages and the summary.
    radius_source : ``"column"``, ``"area"``, ``"polygon"`` or ``"default"`` — how ``radius_um`` was obtained.
    n_ambiguous : cells positive for several lineage markers when gating (counted as other).
    meta : notes of the reader: ``column_units`` (column → unit), ``units_note`` (a sentence: each column's unit
        and where it came from), ``pixel_size_um``.
    polygons : cell outlines (:class:`chemomet.tme.polygons.Polygons`, µm) or ``None``; when present, contact
        is decided on the outlines instead of the circles.

    Examples
    --------
    >>> t = make_table([0.0, 10.0, 5.0, 30.0], [0.0, 0.0, 8.0, 0.0], [1, 2, 3, 0], [5.0, 5.0, 5.0, 5.0])
    >>> t.n, t.counts()
    (4, {'other': 1, 'tumour': 1, 'macrophage': 1, 'endothelial': 1})
    >>> t.xy_um[2].tolist()  # µm
    [5.0, 8.0]
    """

    x_um: np.ndarray
    y_um: np.ndarray
    radius_um: np.ndarray
    cell_type: np.ndarray
    tie2: np.ndarray | None = None
    cd163: np.ndarray | None = None
    source: str = "<memory>"
    radius_source: str = "column"
    n_ambiguous: int = 0
    meta: dict = field(default_factory=dict)
    polygons: Polygons | None = None
    _trees: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def n(self) -> int:
        """Number of cells."""
        return int(self.x_um.shape[0])

    @property
    def xy_um(self) -> np.ndarray:
        """Centroids as an ``(n, 2)`` array, µm."""
        return np.column_stack([self.x_um, self.y_um])

    def counts(self) -> dict[str, int]:
        """Number of cells of each type, keyed by :data:`TYPE_NAMES`."""
        c = np.bincount(self.cell_type, minlength=4)
        return {name: int(c[i]) for i, name in enumerate(TYPE_NAMES)}

    def neighbour_tree(self) -> cKDTree:
        """A k-d tree over every centroid (µm), built on first use and kept until :meth:`release_tree`.

        It is unbalanced and not compacted (it builds in half the time of a balanced one and finds the same
        neighbours, up to the order of cells at exactly equal distances). The unit check of :func:`make_table`
        and the contact plausibility sample (:func:`chemomet.tme.scores.contact_plausibility`) look their
        neighbours up with :meth:`sample_neighbours`, which uses this tree on small tables only.

        Returns
        -------
        scipy.spatial.cKDTree
            the tree over :attr:`xy_um`, µm; about 3 times the memory of the coordinates.

        Examples
        --------
        >>> t = make_table([0.0, 10.0, 5.0, 30.0], [0.0, 0.0, 8.0, 0.0], [1, 2, 3, 0], [5.0, 5.0, 5.0, 5.0])
        >>> d, i = t.neighbour_tree().query([[29.0, 0.0]], k=1)
        >>> float(d[0]), int(i[0]), t.neighbour_tree() is t.neighbour_tree()
        (1.0, 3, True)
        >>> t.release_tree()
        """
        tree = self._trees.get("all")
        if tree is None:
            tree = cKDTree(self.xy_um, balanced_tree=False, compact_nodes=False)
            self._trees["all"] = tree
        return tree

    def sample_neighbours(self, idx, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest cells to each cell of ``idx`` (itself among them), as a k-d tree over every cell
        finds them (:meth:`neighbour_tree`), with far less work on large tables.

        On a table of at least :data:`LOCAL_SEARCH_MIN_CELLS` cells only the cells near the sample are searched:
        the cells are binned on a grid of about :data:`CELLS_PER_SQUARE` cells per square (over the bounding
        box), and a tree is built over the cells in the block of squares around each sampled cell. A result is
        exact when its ``k``-th distance is less than the block's half-width (every cell outside the block lies
        farther); the few others (sparse places) are looked up again in blocks 4 times wider, up to
        :data:`LOCAL_SEARCH_MAX_HALF_WIDTH` squares, then in the tree over every cell. The distances are
        those of the full tree bit for bit; the cells returned are the same up to the order among cells at
        exactly equal distances, as for any two k-d trees.

        Parameters
        ----------
        idx : cell indices (rows) to look up, int.
        k : neighbours per cell, the cell itself included (≥ 1).

        Returns
        -------
        ``(d, nb)``: distances (µm), shape ``(len(idx), k)``, ascending, and the cells' indices (int64).

        Examples
        --------
        >>> import numpy as np
        >>> g = np.arange(400) * 10.0
        >>> t = make_table(np.repeat(g, 400), np.tile(g, 400), np.ones(160_000, int), np.full(160_000, 5.0))
        >>> d, nb = t.sample_neighbours(np.array([0, 80_200]), k=2)
        >>> d.tolist()  # each cell, then its nearest neighbour 10 µm away (µm)
        [[0.0, 10.0], [0.0, 10.0]]
        >>> nb[:, 0].tolist()
        [0, 80200]
        """
        idx = np.asarray(idx, dtype=np.int64)
        k = int(k)
        pts = np.column_stack([self.x_um[idx], self.y_um[idx]])
        grid = self._local_grid() if self.n >= LOCAL_SEARCH_MIN_CELLS else None
        d = np.full((idx.size, k), np.inf)
        nb = np.zeros((idx.size, k), dtype=np.int64)
        rows = np.arange(idx.size)
        w = 1 if k <= 2 else 2  # the block: (2w + 1)² squares around the sampled cell's
        while grid is not None and rows.size and w <= LOCAL_SEARCH_MAX_HALF_WIDTH:
            key, nx, ny, side = grid
            gx, gy = np.divmod(key[idx[rows]], ny)
            mark = np.zeros((nx + 2 * w, ny + 2 * w), dtype=bool)  # the squares, and a border of w around
            for dx in range(2 * w + 1):
                for dy in range(2 * w + 1):
                    mark[gx + dx, gy + dy] = True
            local = np.flatnonzero(mark[w:-w, w:-w].ravel()[key])  # the cells in the blocks (sampled ones too)
            tree = cKDTree(
                np.column_stack([self.x_um[local], self.y_um[local]]), balanced_tree=False, compact_nodes=False
            )
            dl, jl = tree.query(pts[rows], k=k)
            dl, jl = dl.reshape(rows.size, k), np.asarray(jl, dtype=np.int64).reshape(rows.size, k)
            # exact where the k-th distance is below the block's half-width: every cell outside lies farther
            # (a block holding fewer than k cells gives an infinite distance: not exact)
            exact = dl[:, -1] < w * side * (1 - 1e-6)
            d[rows[exact]], nb[rows[exact]] = dl[exact], local[jl[exact]]
            rows, w = rows[~exact], 4 * w
        if rows.size:  # small tables, and sampled cells far from any other: the tree over every cell
            df, jf = self.neighbour_tree().query(pts[rows], k=k)
            d[rows], nb[rows] = df.reshape(rows.size, k), np.asarray(jf, dtype=np.int64).reshape(rows.size, k)
        return d, nb

    def _local_grid(self):
        """The grid of :meth:`sample_neighbours`, kept with the trees: each cell's square as one key
        (``gx·ny + gy``), the grid's shape ``nx``, ``ny`` and the squares' side (µm); ``None`` when the bounding box
        is flat or the grid would be too large (the tree over every cell is then used)."""
        if "grid" in self._trees:
            return self._trees["grid"]
        x, y = self.x_um, self.y_um
        x0, y0 = float(x.min()), float(y.min())
        wx, wy = float(x.max()) - x0, float(y.max()) - y0
        side = float(np.sqrt(wx * wy * CELLS_PER_SQUARE / self.n))
        grid = None
        if np.isfinite(side) and side > 0 and (wx / side + 1) * (wy / side + 1) <= 4 * self.n:
            nx, ny = int(wx / side) + 1, int(wy / side) + 1
            key = np.minimum(np.floor((x - x0) / side), nx - 1).astype(np.int64)
            key *= ny
            key += np.minimum(np.floor((y - y0) / side), ny - 1).astype(np.int64)
            grid = (key, nx, ny, side)
        self._trees["grid"] = grid
        return grid

    def release_tree(self) -> None:
        """Drop the tree kept by :meth:`neighbour_tree` and the grid of :meth:`sample_neighbours` (their memory is
        freed; a later call builds them again)."""
        self._trees.clear()


LOCAL_SEARCH_MIN_CELLS = 50_000
"""From this many cells on, :meth:`CellTable.sample_neighbours` searches the cells near the sample only."""
LOCAL_SEARCH_MAX_HALF_WIDTH = 32
"""Widest block (half-width, in squares) :meth:`CellTable.sample_neighbours` searches before the tree over every
cell: blocks 4 times wider each round, for the sampled cells whose neighbours lie beyond the block."""
CELLS_PER_SQUARE = 2.0
"""Cells per grid square (over the bounding box) of :meth:`CellTable.sample_neighbours`."""


def _float_array(values, name: str, where: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise field_error(name, f"array of shape {arr.shape}", "a one-dimensional column", where=where)
    try:
        out = arr.astype(np.float64)
    except (TypeError, ValueError):
        bad = next((v for v in arr if not _is_number(v)), arr[0])
        raise field_error(name, bad, "a number for every cell", "µm", where) from None
    return out


def _is_number(v) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


def _check_finite(arr: np.ndarray, name: str, where: str, unit: str = "µm") -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise field_error(
            f"{name}[row {i}]",
            float(arr[i]),
            f"a finite number for every cell ({int(bad.sum())} rows are NaN or infinite)",
            unit,
            where,
        )


def make_table(
    x_um,
    y_um,
    cell_type,
    radius_um=None,
    *,
    default_radius_um: float | None = None,
    tie2=None,
    cd163=None,
    source: str = "<memory>",
    radius_source: str | None = None,
    n_ambiguous: int = 0,
    check_units: bool = True,
    polygons: Polygons | None = None,
    polygon_column: str = "polygon",
    meta: dict | None = None,
) -> CellTable:
    """Validate arrays and build a :class:`CellTable`.

    Parameters
    ----------
    x_um, y_um : centroid coordinates, µm.
    cell_type : integer codes (0 other, 1 tumour, 2 macrophage, 3 endothelial).
    radius_um : per-cell radius, µm; ``None``: the equivalent radius ``sqrt(area/π)`` of the outlines when
        ``polygons`` are given, else ``default_radius_um`` for every cell.
    default_radius_um : radius given to every cell when neither radii nor outlines are given, µm (> 0);
        ``None``: such a table is refused (a silent default radius changes every contact).
    tie2, cd163 : optional boolean marker flags.
    source : name of the input, used in error messages.
    radius_source : how the radii were obtained (``"column"``, ``"area"``, ``"polygon"``, ``"default"``);
        ``None``: inferred from the arguments.
    n_ambiguous : number of ambiguous cells (gating), reported in the summary.
    check_units : reject coordinates whose median nearest-neighbour distance is implausible for cells
        (outside 1–500 µm), and radii outside 0.5–60 µm — the usual sign of pixels or mm read as µm; with
        polygons, also outlines that do not surround their centroids (median centroid offset > 1 radius).
    polygons : cell outlines in µm, one per cell (see :mod:`chemomet.tme.polygons`).
    polygon_column : name of the outlines in messages.
    meta : notes of the reader (units of the columns, pixel size), kept in :attr:`CellTable.meta`.

    Returns
    -------
    CellTable
        float64 coordinates and radii (µm), int8 type codes.

    Raises
    ------
    InputError : empty table, non-numeric or non-finite values, coordinates beyond ±10⁷ µm (10 m), radii ≤ 0 or
        > 1000 µm, no radius and no default radius, implausible units.

    Examples
    --------
    A tumour cell, a macrophage and an endothelial cell in mutual contact, and one stromal cell, radius 5 µm:

    >>> t = make_table([0.0, 10.0, 5.0, 30.0], [0.0, 0.0, 8.0, 0.0], [1, 2, 3, 0], [5.0, 5.0, 5.0, 5.0])
    >>> t.radius_source, t.radius_um.tolist()
    ('column', [5.0, 5.0, 5.0, 5.0])
    >>> make_table([0.0, 10.0], [0.0, 0.0], [1, 2], default_radius_um=6.0).radius_source
    'default'
    """
    where = source
    x = _float_array(x_um, "x", where)
    y = _float_array(y_um, "y", where)
    n = x.shape[0]
    if n == 0:
        raise InputError(f"{where}: the cell table is empty (0 cells); allowed: at least one cell")
    if y.shape[0] != n:
        raise field_error("y", f"{y.shape[0]} values", f"one per cell ({n})", where=where)
    if not (_within_limits(x, MAX_ABS_COORDINATE_UM) and _within_limits(y, MAX_ABS_COORDINATE_UM)):
        _check_finite(x, "x", where)
        _check_finite(y, "y", where)
        _check_extent(x, "x", where)
        _check_extent(y, "y", where)
    if polygons is not None and polygons.n != n:
        raise field_error(polygon_column, f"{polygons.n} outlines", f"one per cell ({n})", where=where)
    if polygons is not None:
        _check_extent(polygons.xy[:, 0], f"{polygon_column} (vertex x)", where)
        _check_extent(polygons.xy[:, 1], f"{polygon_column} (vertex y)", where)
    if radius_um is None and polygons is not None:
        radius_um = np.sqrt(polygons.area() / np.pi)
        radius_source = radius_source or "polygon"
    if radius_um is None:
        if default_radius_um is None:
            raise InputError(
                f"{where}: no cell size (no radii and no outlines); allowed: radius_um, polygons, or "
                "default_radius_um to give every cell the same radius"
            )
        if not (np.isfinite(default_radius_um) and 0 < default_radius_um <= MAX_RADIUS_UM):
            raise field_error("default_radius", default_radius_um, f"a number in (0, {MAX_RADIUS_UM:g}]", "µm", where)
        r = np.full(n, float(default_radius_um))
        rsrc = radius_source or "default"
    else:
        r = _float_array(radius_um, "radius", where)
        lo, hi = (float(r.min()), float(r.max())) if r.size else (1.0, 1.0)
        if not (lo > 0 and hi <= MAX_RADIUS_UM):  # (a NaN fails too) the checks below say which row
            _check_finite(r, "radius", where)
            if (r <= 0).any():
                i = int(np.flatnonzero(r <= 0)[0])
                raise field_error(f"radius[row {i}]", float(r[i]), "a number > 0 for every cell", "µm", where)
            if (r > MAX_RADIUS_UM).any():
                i = int(np.flatnonzero(r > MAX_RADIUS_UM)[0])
                raise field_error(
                    f"radius[row {i}]", float(r[i]), f"at most {MAX_RADIUS_UM:g} µm for every cell (a cell is "
                    "never 2 mm across; check the radius/area units)", "µm", where,
                )
        rsrc = radius_source or "column"
    ct = np.asarray(cell_type)
    if ct.shape != (n,) or not np.issubdtype(ct.dtype, np.integer) or ct.min() < 0 or ct.max() > 3:
        raise field_error("cell_type", "codes", "integers 0..3, one per cell", where=where)
    flags = {}
    for name, v in (("tie2", tie2), ("cd163", cd163)):
        if v is not None:
            v = np.asarray(v, dtype=bool)
            if v.shape != (n,):
                raise field_error(name, f"{v.shape[0]} values", f"one per cell ({n})", where=where)
        flags[name] = v
    table = CellTable(
        x,
        y,
        r,
        ct.astype(np.int8),
        flags["tie2"],
        flags["cd163"],
        source,
        rsrc,
        int(n_ambiguous),
        meta=dict(meta or {}),
        polygons=polygons,
    )
    if check_units:
        _check_units(table, where, rsrc)
        if polygons is not None:
            _check_outlines(x, y, polygons, where, polygon_column)
    return table


def _within_limits(arr: np.ndarray, limit: float) -> bool:
    """Every value finite and within ±``limit``: two reductions (a NaN propagates through them), no temporary; the
    checks that name the offending row run only when this fails."""
    if arr.size == 0:
        return True
    lo, hi = float(arr.min()), float(arr.max())
    return bool(np.isfinite(lo) and np.isfinite(hi) and max(-lo, hi) <= limit)


def _check_extent(arr: np.ndarray, name: str, where: str) -> None:
    bad = np.abs(arr) > MAX_ABS_COORDINATE_UM
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise field_error(
            f"{name}[row {i}]" if "vertex" not in name else name,
            float(arr[i]),
            f"|value| ≤ {MAX_ABS_COORDINATE_UM:.0e} µm (10 m) for every cell ({int(bad.sum())} "
            f"value{'s' if int(bad.sum()) != 1 else ''} beyond); "
            "check the units (--units, --pixel-size) and the column",
            "µm",
            where,
        )


def _check_outlines(x: np.ndarray, y: np.ndarray, polygons: Polygons, where: str, column: str) -> None:
    """Outlines must surround their centroids: a unit mix-up (outlines in px, centroids in µm) fails."""
    c = polygons.centroid()
    r = np.sqrt(polygons.area() / np.pi)
    off = float(np.median(np.hypot(c[:, 0] - x, c[:, 1] - y) / r))
    if not off <= 1.0:
        raise field_error(
            f"{column} (median offset of the outline centroid from x/y, in radii)",
            round(off, 4),
            "≤ 1: the outlines must surround their centroids; check that outlines and centroids are in the same "
            "units and rows",
            where=where,
        )


def _check_units(table: CellTable, where: str, radius_source: str) -> None:
    x, r = table.x_um, table.radius_um
    if radius_source != "default":
        med_r = float(np.median(r))
        if not MIN_PLAUSIBLE_RADIUS_UM <= med_r <= MAX_PLAUSIBLE_RADIUS_UM:
            raise field_error(
                "radius (median)",
                round(med_r, 4),
                f"{MIN_PLAUSIBLE_RADIUS_UM}–{MAX_PLAUSIBLE_RADIUS_UM} µm for cells; check --units and "
                "--pixel-size",
                "µm",
                where,
            )
    if x.shape[0] < 10:
        return
    m = min(x.shape[0], 2000)
    idx = np.linspace(0, x.shape[0] - 1, m).astype(np.int64)
    d, _ = table.sample_neighbours(idx, k=2)
    nn = d[:, 1]
    nn = nn[nn > 0]
    med = float(np.median(nn)) if nn.size else 0.0
    if not MIN_PLAUSIBLE_NN_UM <= med <= MAX_PLAUSIBLE_NN_UM:
        raise field_error(
            "x/y (median nearest-neighbour distance)",
            round(med, 6),
            f"{MIN_PLAUSIBLE_NN_UM}–{MAX_PLAUSIBLE_NN_UM} µm for cells; the coordinates look like the "
            "wrong unit — check --units and --pixel-size",
            "µm",
            where,
        )
