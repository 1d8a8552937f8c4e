"""QuPath GeoJSON in and out: cell detections read as a cell table, doorways and fields written back.

**Reading** (:func:`read_geojson_cells`; :func:`~chemomet.tme.readers.read_cells` on a ``.geojson``/``.json``
file). QuPath's *Export objects as GeoJSON* writes a ``FeatureCollection`` (or, before 0.4, a JSON list of
features). Every feature whose ``properties.objectType`` (0.4 and later; ``object_type`` before) is ``"cell"`` or
``"detection"``, or names no type, is a cell; annotations, tiles, TMA cores and the root are skipped (and counted).

- centroid: a ``Point`` geometry's coordinates, or the area centroid of a ``Polygon`` / ``MultiPolygon`` (outer
  rings, area-weighted over the parts; QuPath's ROI centroid), in the file's units — QuPath writes **image pixels**
  (origin at the top-left corner of the full-resolution image), so a pixel size must be given, and the
  coordinates written back are in the same pixels, never silently converted;
- outline: with ``Polygon`` geometries on every cell, the outer ring (of the largest part of a ``MultiPolygon``)
  is the cell's outline and contact is decided on the outlines; ``geometry="nucleus"`` takes QuPath's
  ``nucleusGeometry`` instead of the cell boundary;
- class: ``properties.classification.name`` (or ``names`` joined with ``": "``, QuPath 0.4's derived classes);
  a detection without one is unclassified (counted as other);
- id: the feature's ``id`` (QuPath 0.4's object UUID), else ``properties.id`` / ``properties["Object ID"]``, else
  ``#<feature index>``;
- measurements: ``properties.measurements`` as a mapping (0.4 and later) or a list of ``{"name", "value"}``
  (before); they become columns (e.g. ``Cell: Area µm^2``, ``Cell: CD68: Mean``) for the size and the gates.

A malformed file gives one :class:`~chemomet.errors.InputError` naming the feature (``features[12]``), the field
and what is allowed.

**Writing** (:func:`to_geojson`, :func:`write_geojson`): a ``FeatureCollection`` QuPath imports with *File ›
Import objects from file* (0.4 and later; older versions read the geometries and classes):

- each chosen high-power field as an annotation classified ``"TMEM hot-spot field"``: the circle of the field as a
  72-vertex polygon (vertices on the circle), with measurements ``TMEM: HPF rank`` and ``TMEM: doorways in field``
  and the field's radius (µm) and area (mm²);
- each doorway as a point annotation classified ``"TMEM doorway"`` at the doorway's position, with measurements
  ``TMEM: doorway id``, ``TMEM: contact triangles``, ``TMEM: HPF rank`` (0: in no chosen field) and the ids of its
  tumour cells, macrophages and endothelial cells in ``metadata`` (``;``-separated, in input order);
- optionally (``include_cells``) every cell as a detection with its id, original class, the outline or centroid
  used for scoring and measurements ``TMEM: in contact triangle`` (0/1), ``TMEM: doorway id`` (−1: none),
  ``TMEM: HPF rank`` and ``TMEM: vessel id`` (−1: not endothelial). Reading that file back gives the same cells,
  ids and classes (coordinates to float precision) and the same score.

Coordinates are written in the unit the cells were read in when that is pixels (with the same pixel size), or
converted to pixels with an explicitly given pixel size when the cells were read in µm (QuPath objects live in
pixels). The file's top-level ``"chemomet"`` member records the unit, the pixel size and the score.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from chemomet.errors import InputError, field_error, shown_value
from chemomet.fileio import atomic_write
from chemomet.inputs import read_capped_bytes
from chemomet.tme.polygons import Polygons, make_polygons  # noqa: F401 (make_polygons: doctests)
from chemomet.tme.table import TYPE_NAMES

GEOJSON_SUFFIXES = (".geojson", ".json")
"""File suffixes read as GeoJSON."""
CELL_OBJECT_TYPES = ("cell", "detection")
"""QuPath object types read as cells (a feature naming no type is read as a cell too)."""
SKIPPED_OBJECT_TYPES = ("annotation", "tile", "tma_core", "root")
"""QuPath object types skipped when reading cells."""
X_COLUMN, Y_COLUMN = "Centroid X", "Centroid Y"
LABEL_COLUMN = "Classification"
ID_COLUMN = "Object ID"
OUTLINE_COLUMN = "Outline"
AREA_MEASUREMENTS = {
    "cell": (
        "Cell: Area µm^2",
        "Cell: Area px^2",
        "Area µm^2",
        "Area px^2",
        "Nucleus: Area µm^2",
        "Nucleus: Area px^2",
    ),
    "nucleus": ("Nucleus: Area µm^2", "Nucleus: Area px^2", "Area µm^2", "Area px^2"),
}
"""Area measurements looked for (in this order) when the cells have no outlines, by ``geometry``."""
DOORWAY_CLASS = "TMEM doorway"
FIELD_CLASS = "TMEM hot-spot field"
FIELD_VERTICES = 72
"""Vertices of the polygon written for a circular field (on the circle)."""
_NAMESPACE = uuid.UUID("6f1c3a52-8d0e-4c59-9a57-7d1b2f0e4a11")
_COLOURS = {DOORWAY_CLASS: [0, 0, 0], FIELD_CLASS: [31, 78, 158]}


@dataclass(frozen=True)
class GeoJsonCells:
    """Cells read from a GeoJSON file, in the file's coordinate units (QuPath: image pixels).

    Attributes
    ----------
    x, y : centroids, file units (px for QuPath), shape ``(n,)``.
    ids : object ids (str), shape ``(n,)``.
    classes : class names (str; ``""`` when unclassified), shape ``(n,)``.
    outlines : the cells' outlines (:class:`~chemomet.tme.polygons.Polygons`, file units) when every cell has a
        polygon geometry, else ``None``.
    feature_index : index of each cell's feature in the file (annotations skipped), shape ``(n,)``.
    measurements : per cell, the ``properties.measurements`` mapping (name → value as written).
    geometry : ``"cell"`` (the feature's ``geometry``) or ``"nucleus"`` (``nucleusGeometry``).
    skipped : object type → number of features skipped (annotations, tiles, ...).
    n_points : cells whose geometry is a ``Point``.
    classified : cells with a classification.

    Examples
    --------
    >>> import json, pathlib, tempfile
    >>> fc = {"type": "FeatureCollection", "features": [
    ...     {"type": "Feature", "id": "a", "geometry": {"type": "Point", "coordinates": [10.0, 20.0]},
    ...      "properties": {"objectType": "detection", "classification": {"name": "Tumor"}}},
    ...     {"type": "Feature", "properties": {"objectType": "annotation"},
    ...      "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [4, 0], [4, 2], [0, 2], [0, 0]]]}}]}
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = pathlib.Path(tmp) / "cells.geojson"
    ...     _ = path.write_text(json.dumps(fc))
    ...     cells = read_geojson_cells(path)
    >>> cells.n, cells.x.tolist(), cells.ids.tolist(), cells.skipped  # px
    (1, [10.0], ['a'], {'annotation': 1})
    """

    x: np.ndarray
    y: np.ndarray
    ids: np.ndarray
    classes: np.ndarray
    outlines: Polygons | None
    feature_index: np.ndarray
    measurements: list
    geometry: str = "cell"
    skipped: dict = field(default_factory=dict)
    n_points: int = 0
    classified: int = 0

    @property
    def n(self) -> int:
        """Number of cells."""
        return int(self.x.shape[0])

    def measurement_names(self) -> list[str]:
        """Names of the measurements present on any cell, in first-seen order."""
        seen: dict[str, None] = {}
        for m in self.measurements:
            for k in m:
                seen.setdefault(k, None)
        return list(seen)

    def measurement(self, name: str, where: str) -> np.ndarray:
        """One measurement for every cell, float64; a cell without it, or with a non-number, is refused.

        Parameters
        ----------
        name : the measurement (e.g. ``"Cell: Area µm^2"``; its unit is the one its name states).
        where : the file, for messages.

        Returns
        -------
        numpy.ndarray
            the values, in the measurement's own unit.

        Examples
        --------
        >>> c = GeoJsonCells(np.zeros(1), np.zeros(1), np.array(["a"]), np.array([""]), None, np.array([3]),
        ...                  [{"Cell: Area µm^2": 50.5}])
        >>> c.measurement("Cell: Area µm^2", "x.geojson").tolist()  # µm²
        [50.5]
        """
        out = np.empty(self.n, dtype=np.float64)
        for k, m in enumerate(self.measurements):
            v = m.get(name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise field_error(
                    f"features[{int(self.feature_index[k])}].properties.measurements[{name!r}]",
                    v if name in m else "missing",
                    "a finite number on every cell",
                    where=where,
                )
            out[k] = v
        return out


def _fail(where: str, i: int | None, what: str, value, allowed: str) -> InputError:
    name = f"features[{i}].{what}" if i is not None else what
    return field_error(name, value if isinstance(value, str) else _brief(value), allowed, where=where)


def _brief(value) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return shown_value(text, 60)


def _positions(coords, where: str, i: int, what: str, min_n: int) -> np.ndarray:
    """``(m, 2)`` float64 positions of a ring (the z coordinate, if any, dropped)."""
    allowed = f"a list of at least {min_n} [x, y] positions of finite numbers"
    if not isinstance(coords, list) or len(coords) < min_n:
        raise _fail(where, i, what, coords, allowed)
    try:
        arr = np.asarray(coords)
    except (TypeError, ValueError):  # ragged
        raise _fail(where, i, what, coords, allowed) from None
    if arr.dtype.kind not in "fi" or arr.ndim != 2 or arr.shape[1] < 2:  # strings, null, booleans, nesting
        raise _fail(where, i, what, coords, allowed)
    arr = arr[:, :2].astype(np.float64)
    if not np.isfinite(arr).all():
        raise _fail(where, i, what, coords, allowed)
    return arr


def _geometry(geom, where: str, i: int, key: str):
    """A Point's ``(x, y)`` (checked), or the raw outer rings of a Polygon / MultiPolygon (checked in bulk later)."""
    allowed = "a GeoJSON Point, Polygon or MultiPolygon"
    if not isinstance(geom, dict):
        raise _fail(where, i, key, "missing" if geom is None else geom, allowed)
    kind = geom.get("type")
    coords = geom.get("coordinates")
    if kind == "Point":
        p = _positions([coords], where, i, f"{key}.coordinates", 1)
        return float(p[0, 0]), float(p[0, 1])
    if kind == "Polygon":
        polys = [coords]
    elif kind == "MultiPolygon":
        if not isinstance(coords, list) or not coords:
            raise _fail(where, i, f"{key}.coordinates", coords, "a non-empty list of polygons")
        polys = coords
    else:
        raise _fail(where, i, f"{key}.type", kind, allowed)
    rings = []
    for j, poly in enumerate(polys):
        if not isinstance(poly, list) or not poly:
            what = f"{key}.coordinates" + (f"[{j}]" if kind == "MultiPolygon" else "")
            raise _fail(where, i, what, poly, "a list of rings, the first the outer one")
        ring = poly[0]
        if not isinstance(ring, list) or len(ring) < 3:
            raise _fail(where, i, _ring_path(key, kind, j), ring, "a ring of at least 3 [x, y] positions")
        rings.append(ring)
    return rings


def _ring_path(key: str, kind: str, j: int) -> str:
    return f"{key}.coordinates" + (f"[{j}]" if kind == "MultiPolygon" else "") + "[0]"


def _rings_to_polygons(rings: list, owner: np.ndarray, paths: list, where: str, index: list) -> Polygons:
    """All outer rings as :class:`Polygons` (closing vertices dropped), converted in bulk; a bad ring is named by
    its feature (``owner``: the cell of each ring, ``index``: the feature of each cell)."""
    ALLOWED = "a ring of at least 3 distinct [x, y] positions of finite numbers, enclosing a non-zero area"

    def fail(k: int, value=None):
        raise _fail(where, index[owner[k]], paths[k], rings[k] if value is None else value, ALLOWED)

    sizes = np.fromiter((len(r) for r in rings), dtype=np.int64, count=len(rings))
    try:
        flat = np.array([p for r in rings for p in r])
        ok = flat.ndim == 2 and flat.shape[1] == 2 and flat.dtype.kind in "fi"
    except (TypeError, ValueError):  # ragged: a z coordinate somewhere, or a malformed position
        ok = False
    if not ok:  # ring by ring: names the first bad one, or accepts [x, y, z] positions
        arrs = []
        for k, r in enumerate(rings):
            try:
                arrs.append(_positions(r, where, index[owner[k]], paths[k], 3))
            except InputError:
                fail(k)
        flat = np.concatenate(arrs)
    xy = flat.astype(np.float64, copy=False)
    bad = ~np.isfinite(xy).all(axis=1)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    if bad.any():
        fail(int(np.searchsorted(offsets, np.flatnonzero(bad)[0], side="right") - 1))
    closing = (xy[offsets[1:] - 1] == xy[offsets[:-1]]).all(axis=1)
    if closing.any():
        keep = np.ones(xy.shape[0], dtype=bool)
        keep[offsets[1:][closing] - 1] = False
        xy = xy[keep]
        sizes = sizes - closing
        offsets = np.concatenate([[0], np.cumsum(sizes)])
    if (sizes < 3).any():
        fail(int(np.flatnonzero(sizes < 3)[0]))
    poly = Polygons(np.ascontiguousarray(xy), offsets.astype(np.int64))
    area = poly.area()
    extent = np.maximum.reduceat(np.abs(xy - xy[np.repeat(offsets[:-1], sizes)]).max(axis=1), offsets[:-1])
    flat_ring = ~(area > 1e-12 * np.maximum(extent, 1e-300) ** 2)
    if flat_ring.any():
        fail(int(np.flatnonzero(flat_ring)[0]))
    return poly


def _class_name(props: dict, where: str, i: int) -> str | None:
    c = props.get("classification")
    if c is None:
        return None
    if isinstance(c, str):
        return c
    if isinstance(c, dict):
        if isinstance(c.get("name"), str):
            return c["name"]
        names = c.get("names")
        if isinstance(names, list) and names and all(isinstance(s, str) for s in names):
            return ": ".join(names)
    raise _fail(where, i, "properties.classification", c, '{"name": "CLASS"} (or "names": [...])')


def _measurements(props: dict, where: str, i: int) -> dict:
    m = props.get("measurements")
    if m is None:
        return {}
    if isinstance(m, dict):
        return m
    if isinstance(m, list):
        out = {}
        for e in m:
            if not (isinstance(e, dict) and isinstance(e.get("name"), str)):
                raise _fail(where, i, "properties.measurements", e, 'a list of {"name": ..., "value": ...}')
            out[e["name"]] = e.get("value")
        return out
    raise _fail(where, i, "properties.measurements", m, 'a mapping {"NAME": value} or a list of {"name", "value"}')


def _features(data, where: str) -> list:
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        kind = data.get("type")
        if kind == "FeatureCollection":
            feats = data.get("features")
            if not isinstance(feats, list):
                raise _fail(where, None, "features", "missing" if feats is None else feats, "a list of features")
            return feats
        if kind == "Feature":
            return [data]
    raise InputError(
        f"{where}: not a GeoJSON FeatureCollection (top level is {_brief(data)}); allowed: "
        '{"type": "FeatureCollection", "features": [...]} or a list of features (QuPath: Export objects as GeoJSON)'
    )


MAX_GEOJSON_BYTES = 512 * 1024 * 1024
"""Largest GeoJSON file read (bytes; 512 MiB). Parsing JSON holds about 7 times the file in memory (Python objects),
so this keeps reading a file within about 4 GiB: some 500,000 cells with outlines, several million without. A larger
slide is read as a table (CSV/Parquet measurements export) or in regions."""


def _human(n: int) -> str:
    return f"{n / 2**20:.3g} MiB" if n >= 2**20 else f"{n} bytes"


def read_geojson_bytes(path: str | Path) -> bytes:
    """The bytes of a GeoJSON file, after the checks of the input layer (:mod:`chemomet.inputs`).

    The file must be a regular file (a link to one is followed; a folder, a device, a pipe or a link loop is
    refused before anything is opened) of at most :data:`MAX_GEOJSON_BYTES`; never more than that is read, whatever
    size the file reports.

    Parameters
    ----------
    path : the file.

    Returns
    -------
    bytes
        its content.

    Raises
    ------
    InputError : one line naming the path and what is allowed.

    Examples
    --------
    >>> import tempfile
    >>> read_geojson_bytes(tempfile.mkdtemp())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    chemomet.errors.InputError: ...: is a folder; allowed: a GeoJSON file (QuPath: Export objects as GeoJSON)
    """
    cap = int(MAX_GEOJSON_BYTES)
    too_big = (
        f"allowed: a GeoJSON file of at most {_human(cap)} (about 7 times as much memory to parse); export the "
        "measurements as a table (CSV/Parquet) or the slide in regions"
    )
    return read_capped_bytes(path, cap, "a GeoJSON file (QuPath: Export objects as GeoJSON)", too_big)


def read_geojson_cells(path: str | Path, geometry: str = "cell") -> GeoJsonCells:
    """Read the cell detections of a (QuPath) GeoJSON file.

    Parameters
    ----------
    path : a ``.geojson`` or ``.json`` file: a ``FeatureCollection``, a list of features or one feature.
    geometry : ``"cell"`` (the feature's ``geometry``: the cell boundary of a QuPath cell) or ``"nucleus"``
        (QuPath's ``nucleusGeometry``).

    Returns
    -------
    GeoJsonCells
        centroids and outlines in the file's units (QuPath: image pixels), ids, classes and measurements.

    Raises
    ------
    InputError : not a regular file, larger than :data:`MAX_GEOJSON_BYTES`, invalid JSON, not GeoJSON, or a
        malformed feature (named by its index: ``features[12]``), no cell detections at all.

    Examples
    --------
    >>> read_geojson_cells("detections.geojson").n  # doctest: +SKIP
    """
    path = Path(path)
    where = path.name
    if geometry not in ("cell", "nucleus"):
        raise field_error("geometry", geometry, "cell | nucleus", where=where)
    key = "geometry" if geometry == "cell" else "nucleusGeometry"
    raw = read_geojson_bytes(path)
    try:
        text = raw.decode("utf-8-sig")  # a leading byte-order mark, as some editors write, is accepted
        del raw
        data = json.loads(text)
    except UnicodeDecodeError:
        raise InputError(
            f"{where}: not UTF-8 text; allowed: a GeoJSON file (QuPath: Export objects as GeoJSON)"
        ) from None
    except json.JSONDecodeError as err:
        raise InputError(
            f"{where}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}); allowed: a GeoJSON file"
        ) from None
    except RecursionError:
        raise InputError(f"{where}: JSON nested too deeply; allowed: a GeoJSON file") from None
    except ValueError as err:  # e.g. an integer beyond Python's conversion limit (thousands of digits)
        msg = " ".join(str(err).split())[:120]
        raise InputError(f"{where}: not a usable JSON number ({msg}); allowed: a GeoJSON file") from None
    feats = _features(data, where)
    ids, classes, index, meas = [], [], [], []
    points, rings, owner, paths = [], [], [], []  # Point cells; outer rings, the cell of each and its path
    skipped: dict[str, int] = {}
    n_points = 0
    for i, f in enumerate(feats):
        if not isinstance(f, dict):
            raise _fail(
                where, i, "type", f, 'a GeoJSON Feature {"type": "Feature", "geometry": ..., "properties": ...}'
            )
        if f.get("type", "Feature") != "Feature":
            raise _fail(where, i, "type", f.get("type"), '"Feature"')
        props = f.get("properties")
        if props is None:
            props = {}
        if not isinstance(props, dict):
            raise _fail(where, i, "properties", props, "a JSON object")
        otype = props.get("objectType", props.get("object_type", props.get("type")))
        if otype is not None and not isinstance(otype, str):
            raise _fail(where, i, "properties.objectType", otype, " | ".join(CELL_OBJECT_TYPES + SKIPPED_OBJECT_TYPES))
        otype = (otype or "").lower()
        if otype in SKIPPED_OBJECT_TYPES or (otype and otype not in CELL_OBJECT_TYPES):
            skipped[otype] = skipped.get(otype, 0) + 1
            continue
        if key not in f and geometry == "nucleus":
            raise _fail(
                where,
                i,
                key,
                "missing",
                "a nucleus outline on every cell (QuPath cell objects), or read the cell geometry (--geometry cell)",
            )
        geom = _geometry(f.get(key), where, i, key)
        cell = len(index)
        if isinstance(geom, tuple):
            n_points += 1
            points.append((cell, *geom))
        else:
            kind = f[key]["type"]
            for j, ring in enumerate(geom):
                rings.append(ring)
                owner.append(cell)
                paths.append(_ring_path(key, kind, j))
        fid = f.get("id", props.get("id", props.get("Object ID")))
        if fid is not None and not isinstance(fid, str | int) or isinstance(fid, bool):
            raise _fail(where, i, "id", fid, "a string or an integer (the object id)")
        ids.append(f"#{i}" if fid is None else str(fid))
        classes.append(_class_name(props, where, i))
        index.append(i)
        meas.append(_measurements(props, where, i))
    if not index:
        what = ", ".join(f"{n} {t or 'untyped'}" for t, n in skipped.items()) or "none"
        raise InputError(
            f"{where}: no cell detections among {len(feats)} features (skipped: {what}); allowed: features with "
            'properties.objectType "cell" or "detection" (QuPath: select the detections, Export objects as GeoJSON)'
        )
    if len(set(ids)) != len(ids):
        seen: dict[str, int] = {}
        for k, s in enumerate(ids):
            if s in seen:
                raise _fail(where, index[k], "id", s, f"a unique object id (features[{index[seen[s]]}] has it too)")
            seen[s] = k
    n = len(index)
    x, y = np.empty(n), np.empty(n)
    if points:
        pts = np.array(points, dtype=np.float64)
        cells = pts[:, 0].astype(np.int64)
        x[cells], y[cells] = pts[:, 1], pts[:, 2]
    outlines = None
    if rings:
        owner_arr = np.asarray(owner, dtype=np.int64)
        parts = _rings_to_polygons(rings, owner_arr, paths, where, index)
        area, cen = parts.area(), parts.centroid()
        with_rings = np.unique(owner_arr)
        total = np.bincount(owner_arr, area, n)[with_rings]
        x[with_rings] = np.bincount(owner_arr, area * cen[:, 0], n)[with_rings] / total  # area-weighted over parts
        y[with_rings] = np.bincount(owner_arr, area * cen[:, 1], n)[with_rings] / total
        single = owner_arr.size == n and bool((owner_arr == np.arange(n)).all())
        if single:  # one part per cell: its centroid exactly
            x[owner_arr], y[owner_arr] = cen[:, 0], cen[:, 1]
        if n_points == 0:  # every cell has an outline: the largest part of each
            order = np.lexsort((-area, owner_arr))
            first = np.concatenate([[True], owner_arr[order][1:] != owner_arr[order][:-1]])
            outlines = parts if single else parts.take(order[first])
    classified = sum(c is not None for c in classes)
    return GeoJsonCells(
        x=x,
        y=y,
        ids=np.asarray(ids, dtype=object),
        classes=np.asarray(["" if c is None else c for c in classes], dtype=object),
        outlines=outlines,
        feature_index=np.asarray(index, dtype=np.int64),
        measurements=meas,
        geometry=geometry,
        skipped=skipped,
        n_points=n_points,
        classified=classified,
    )


def area_measurement(cells: GeoJsonCells) -> str | None:
    """The area measurement present on every cell that matches the geometry read (see :data:`AREA_MEASUREMENTS`).

    Parameters
    ----------
    cells : the cells read.

    Returns
    -------
    str or None
        e.g. ``"Cell: Area µm^2"`` (the unit is the one its name states), or ``None``.

    Examples
    --------
    >>> c = GeoJsonCells(np.zeros(1), np.zeros(1), np.array(["a"]), np.array([""]), None, np.array([0]),
    ...                  [{"Nucleus: Area µm^2": 20.0, "Cell: Area µm^2": 50.0}])
    >>> area_measurement(c)
    'Cell: Area µm^2'
    """
    names = set(cells.measurement_names())
    for name in AREA_MEASUREMENTS[cells.geometry]:
        if name in names and all(name in m for m in cells.measurements):
            return name
    return None


def column_map(cells: GeoJsonCells):
    """The columns of a GeoJSON file as a :class:`~chemomet.tme.presets.ColumnMap` (centroids in pixels).

    Centroids ``Centroid X``/``Centroid Y`` (file units, pixels unless ``--units`` says otherwise), labels
    ``Classification``, outlines ``Outline`` when every cell has a polygon, else the area measurement of
    :func:`area_measurement`; marker intensities ``Cell: <marker>: Mean`` (``Nucleus: ...`` with
    ``geometry="nucleus"``).

    Parameters
    ----------
    cells : the cells read.

    Returns
    -------
    ColumnMap
        the column names, ``units="px"``.

    Examples
    --------
    >>> c = GeoJsonCells(np.zeros(1), np.zeros(1), np.array(["a"]), np.array([""]), None, np.array([0]),
    ...                  [{"Cell: Area µm^2": 50.0}])
    >>> cm = column_map(c)
    >>> cm.x, cm.area, cm.polygon, cm.units
    ('Centroid X', 'Cell: Area µm^2', None, 'px')
    """
    from chemomet.tme.presets import ColumnMap

    prefix = "Nucleus" if cells.geometry == "nucleus" else "Cell"
    return ColumnMap(
        X_COLUMN,
        Y_COLUMN,
        label=LABEL_COLUMN,
        radius=None,
        area=area_measurement(cells),
        marker_template=prefix + ": {marker}: Mean",
        polygon=OUTLINE_COLUMN if cells.outlines is not None else None,
        units="px",
    )


def outline_scale_check(cells: GeoJsonCells, um_per_unit: float | None, where: str) -> float | None:
    """Check the pixel size against the file's own area measurements; return the pixel size they imply.

    QuPath writes ``Cell: Area µm^2`` (or ``Nucleus: Area µm^2``) with each calibrated cell; its ratio to the
    outline's area in file units is the square of the µm per file unit. A stated scale more than 10% off that is
    refused (a wrong pixel size would move and resize every cell).

    Parameters
    ----------
    cells : the cells read (outlines in file units).
    um_per_unit : µm per file unit as stated (the pixel size for px files, 1 for µm), or ``None`` when unknown.
    where : the file, for messages.

    Returns
    -------
    float or None
        the µm per file unit implied by the measurements (median over cells), or ``None`` when the file has no
        outlines or no area measurement in µm².

    Raises
    ------
    InputError : ``um_per_unit`` is more than 10% off the implied value.

    Examples
    --------
    >>> sq = [(0, 0), (10, 0), (10, 10), (0, 10)]  # 100 px²
    >>> c = GeoJsonCells(np.array([5.0]), np.array([5.0]), np.array(["a"]), np.array(["Tumor"]),
    ...                  make_polygons([sq]), np.array([0]), [{"Cell: Area µm^2": 25.0}])
    >>> outline_scale_check(c, 0.5, "cells.geojson")  # 25 µm² over 100 px²: 0.5 µm per pixel
    0.5
    """
    if cells.outlines is None:
        return None
    prefix = "Nucleus" if cells.geometry == "nucleus" else "Cell"
    name = next(
        (
            n
            for n in (f"{prefix}: Area µm^2", "Area µm^2")
            if all(isinstance(m.get(n), int | float) for m in cells.measurements)
        ),
        None,
    )
    if name is None:
        return None
    area = np.array([float(m[name]) for m in cells.measurements])
    geom = cells.outlines.area()
    ok = np.isfinite(area) & (area > 0) & (geom > 0)
    if not ok.any():
        return None
    implied = float(np.sqrt(np.median(area[ok] / geom[ok])))
    if um_per_unit is not None and abs(um_per_unit / implied - 1) > 0.1:
        raise InputError(
            f"{where}: the coordinates at {um_per_unit:g} µm per file unit contradict the file's own {name!r}: "
            f"its ratio to the outlines' area implies {implied:.4g} µm per unit; allowed: --pixel-size "
            f"{implied:.4g} (the scan's µm per pixel), or check --units"
        )
    return implied


# ---------------------------------------------------------------------------------------------------------------
# writing


def _uid(*parts) -> str:
    return str(uuid.uuid5(_NAMESPACE, "/".join(map(str, parts))))


def _coords(xy_units: np.ndarray) -> list:
    return [float(xy_units[0]), float(xy_units[1])]


def _ring(xy: np.ndarray) -> list:
    pts = [[float(a), float(b)] for a, b in xy]
    return pts + [pts[0]]


def output_scale(result, pixel_size_um: float | None = None) -> tuple[float, str, float]:
    """µm per output unit, the output unit and the pixel size of a GeoJSON written for ``result``.

    Parameters
    ----------
    result : the analysis (:class:`~chemomet.tme.scores.TmemResult`).
    pixel_size_um : µm per image pixel; required when the cells were not read in pixels (QuPath objects are in
        pixels), refused when it differs from the pixel size the cells were read with.

    Returns
    -------
    tuple
        ``(um_per_unit, "px", pixel_size_um)``.

    Raises
    ------
    InputError : no pixel size for cells read in µm, or a pixel size other than the input's.

    Examples
    --------
    >>> from chemomet.tme import make_table, score_tissue
    >>> r = score_tissue(make_table([0.0, 10.0, 5.0], [0.0, 0.0, 8.0], [1, 2, 3], [5.0, 5.0, 5.0]))
    >>> output_scale(r, pixel_size_um=0.5)  # cells in µm, written as pixels of 0.5 µm
    (0.5, 'px', 0.5)
    """
    meta = result.table.meta
    unit = meta.get("coordinate_unit", "um")
    read_ps = meta.get("pixel_size_um")
    where = result.table.source
    if pixel_size_um is not None:
        try:
            ps = float(pixel_size_um)
        except (TypeError, ValueError):
            raise field_error("geojson pixel_size", pixel_size_um, "a number in (0, 100]", "µm/px", where) from None
        if not (math.isfinite(ps) and 0 < ps <= 100):
            raise field_error("geojson pixel_size", pixel_size_um, "a number in (0, 100]", "µm/px", where)
    else:
        ps = None
    if unit == "px":
        if ps is not None and abs(ps / read_ps - 1) > 1e-12:
            raise field_error(
                "geojson pixel_size",
                ps,
                f"the pixel size the cells were read with ({read_ps:g} µm/px) or none: the output is in the input's "
                "pixels",
                "µm/px",
                where,
            )
        return float(read_ps), "px", float(read_ps)
    if ps is None:
        raise InputError(
            f"{where}: the cells were read in {'µm' if unit == 'um' else unit}, but QuPath GeoJSON is in image pixels; "
            "allowed: --geojson-pixel-size UM_PER_PX (the scan's µm per pixel) to write pixel coordinates"
        )
    return ps, "px", ps


def _cell_ids(table) -> np.ndarray:
    ids = table.meta.get("cell_ids")
    if ids is None:
        return np.array([f"#{i}" for i in range(table.n)], dtype=object)
    return np.asarray(ids, dtype=object)


def cell_classes(table) -> np.ndarray:
    """The original class name of every cell (as read), or the chemomet type name when no labels were read.

    Parameters
    ----------
    table : a :class:`~chemomet.tme.table.CellTable`.

    Returns
    -------
    numpy.ndarray
        one string per cell.

    Examples
    --------
    >>> from chemomet.tme import make_table
    >>> cell_classes(make_table([0.0, 10.0], [0.0, 0.0], [1, 2], [5.0, 5.0])).tolist()
    ['tumour', 'macrophage']
    """
    names = table.meta.get("class_names")
    index = table.meta.get("class_index")
    if names is None or index is None:
        return np.asarray(TYPE_NAMES, dtype=object)[table.cell_type]
    return np.asarray(names, dtype=object)[index]


def to_geojson(result, *, pixel_size_um: float | None = None, include_cells: bool = False) -> dict:
    """The doorways and chosen fields (and optionally the cells) as a QuPath-importable GeoJSON FeatureCollection.

    Parameters
    ----------
    result : the analysis (:class:`~chemomet.tme.scores.TmemResult`; positions in µm).
    pixel_size_um : µm per image pixel, needed only when the cells were read in µm (see :func:`output_scale`).
    include_cells : also write every cell as a detection (id, original class, outline or centroid, TMEM flags).

    Returns
    -------
    dict
        ``{"type": "FeatureCollection", "features": [...], "chemomet": {...}}``; coordinates in image pixels
        (the input's, for pixel inputs).

    Examples
    --------
    >>> from chemomet.tme import make_table, score_tissue
    >>> r = score_tissue(make_table([0.0, 10.0, 5.0, 30.0], [0.0, 0.0, 8.0, 0.0], [1, 2, 3, 0], [5.0] * 4))
    >>> fc = to_geojson(r, pixel_size_um=0.5)
    >>> [f["properties"]["classification"]["name"] for f in fc["features"]]
    ['TMEM hot-spot field', 'TMEM doorway']
    >>> door = fc["features"][1]
    >>> door["geometry"], door["properties"]["metadata"]["macrophage_ids"]  # px (0.5 µm each); ids
    ({'type': 'Point', 'coordinates': [20.0, 0.0]}, '#1')
    >>> fc["features"][0]["properties"]["measurements"]["TMEM: doorways in field"]
    1
    """
    t = result.table
    um_per, unit, ps = output_scale(result, pixel_size_um)
    ids = _cell_ids(t)
    d, f = result.doorways, result.fields
    src = t.source
    feats = []
    theta = np.linspace(0.0, 2 * np.pi, FIELD_VERTICES, endpoint=False)
    circle = np.column_stack([np.cos(theta), np.sin(theta)])
    for rank, (c, n) in enumerate(zip(f.centres_um, f.counts, strict=True), start=1):
        ring = (c + f.radius_um * circle) / um_per
        feats.append(
            {
                "type": "Feature",
                "id": _uid(src, "field", rank, *c),
                "geometry": {"type": "Polygon", "coordinates": [_ring(ring)]},
                "properties": {
                    "objectType": "annotation",
                    "name": f"TMEM field {rank}: {int(n)} doorways",
                    "classification": {"name": FIELD_CLASS, "color": _COLOURS[FIELD_CLASS]},
                    "isLocked": False,
                    "measurements": {
                        "TMEM: HPF rank": rank,
                        "TMEM: doorways in field": int(n),
                        "TMEM: field radius µm": float(f.radius_um),
                        "TMEM: field area mm^2": float(f.area_mm2),
                    },
                },
            }
        )
    tri = d.triangles
    # the doorway of each triangle: its own under "triangle" counting, else its macrophage's (one doorway each)
    did = np.arange(tri.shape[0]) if d.counting == "triangle" else d.doorway_of_cell[tri[:, 1]]
    order = np.argsort(did, kind="stable")
    tri, did = tri[order], did[order]
    bounds = np.searchsorted(did, np.arange(d.n + 1))
    hpf = f.field_of_point if f.field_of_point is not None else np.full(d.n, -1)
    for k in range(d.n):
        members = tri[bounds[k] : bounds[k + 1]]
        meta = {
            role: ";".join(str(ids[j]) for j in np.unique(members[:, col]))
            for col, role in ((0, "tumour_ids"), (1, "macrophage_ids"), (2, "endothelial_ids"))
        }
        feats.append(
            {
                "type": "Feature",
                "id": _uid(src, "doorway", k, *d.xy_um[k]),
                "geometry": {"type": "Point", "coordinates": _coords(d.xy_um[k] / um_per)},
                "properties": {
                    "objectType": "annotation",
                    "name": f"TMEM doorway {k}",
                    "classification": {"name": DOORWAY_CLASS, "color": _COLOURS[DOORWAY_CLASS]},
                    "isLocked": False,
                    "measurements": {
                        "TMEM: doorway id": k,
                        "TMEM: contact triangles": int(members.shape[0]),
                        "TMEM: HPF rank": int(hpf[k]) + 1,
                    },
                    "metadata": meta,
                },
            }
        )
    if include_cells:
        feats.extend(_cell_features(result, ids, um_per))
    return {
        "type": "FeatureCollection",
        "features": feats,
        "chemomet": {
            "coordinate_unit": unit,
            "pixel_size_um": ps,
            "source": src,
            "tmem_score": result.tmem_score,
            "tmem_convention": result.params.convention,
            "n_doorways": d.n,
            "n_hpf_found": f.n_found,
            "doorway_counting": d.counting,
        },
    }


def _cell_features(result, ids: np.ndarray, um_per: float) -> list:
    from chemomet.tme.outputs import cell_flags

    t = result.table
    flags = cell_flags(result)
    member = flags["tmem_member"].to_numpy().astype(int).tolist()
    door = flags["tmem_doorway_id"].to_numpy().tolist()
    hpf = flags["tmem_hpf"].to_numpy().tolist()
    vessel = flags["vessel_id"].to_numpy().tolist()
    classes = cell_classes(t).tolist()
    poly = t.polygons
    if poly is not None:  # converted once, sliced per cell (Python floats, exact JSON round trip)
        xy = (poly.xy / um_per).tolist()
        bounds = poly.offsets.tolist()
    else:
        xy = (t.xy_um / um_per).tolist()
    out = []
    for i in range(t.n):
        if poly is not None:
            ring = xy[bounds[i] : bounds[i + 1]]
            geom = {"type": "Polygon", "coordinates": [ring + ring[:1]]}
        else:
            geom = {"type": "Point", "coordinates": xy[i]}
        props = {"objectType": "detection", "isLocked": False}
        if classes[i]:
            props["classification"] = {"name": str(classes[i])}
        props["measurements"] = {
            "TMEM: in contact triangle": member[i],
            "TMEM: doorway id": door[i],
            "TMEM: HPF rank": hpf[i],
            "TMEM: vessel id": vessel[i],
        }
        out.append({"type": "Feature", "id": str(ids[i]), "geometry": geom, "properties": props})
    return out


def write_geojson(result, path: str | Path, *, pixel_size_um: float | None = None, include_cells: bool = False) -> None:
    """Write :func:`to_geojson` to a file, atomically (QuPath: *File › Import objects from file*).

    Parameters
    ----------
    result : the analysis.
    path : the ``.geojson`` (or ``.json``) file; written to a temporary name in its folder, then renamed.
    pixel_size_um : µm per image pixel, needed only when the cells were read in µm.
    include_cells : also write every cell as a detection.

    Examples
    --------
    >>> from chemomet.tme import read_cells, score_tissue, ReadOptions
    >>> r = score_tissue(read_cells("cells.geojson", ReadOptions(pixel_size_um=0.5)))  # doctest: +SKIP
    >>> write_geojson(r, "tmem.geojson")  # doctest: +SKIP
    """
    write_geojson_doc(to_geojson(result, pixel_size_um=pixel_size_um, include_cells=include_cells), path)


def write_geojson_doc(doc: dict, path: str | Path) -> None:
    """Write a GeoJSON document (from :func:`to_geojson`) as compact UTF-8 JSON, atomically.

    Parameters
    ----------
    doc : the FeatureCollection (coordinates in pixels; no NaN or infinity).
    path : the file; written to a temporary name in its folder, then renamed into place.

    Examples
    --------
    >>> import json, pathlib, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = pathlib.Path(tmp) / "empty.geojson"
    ...     write_geojson_doc({"type": "FeatureCollection", "features": []}, path)
    ...     json.loads(path.read_text())["features"]
    []
    """
    text = json.dumps(doc, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
