"""Readers: cell tables (CSV/TSV, Parquet) and AnnData ``.h5ad`` into a validated :class:`CellTable`.

Columns are found through a :class:`~chemomet.tme.presets.ColumnMap`; presets cover common exports (data:
``chemomet/data/tme_presets.toml``, user files through ``presets_file``; see :mod:`chemomet.tme.presets`) and every
name can be overridden:

``generic``  ``x``, ``y`` (µm), ``cell_type`` labels, optional ``radius`` (µm) or ``area`` (µm²),
             markers by name.
``qupath``   QuPath detection measurements: ``Centroid X µm``, ``Centroid Y µm``, ``Class``, optional
             ``Cell: Area µm^2``; markers ``Cell: <marker>: Mean``. With ``units="px"`` (or a pixel size) the
             ``px`` columns are used.
``halo``     HALO object data: centroid = midpoint of ``XMin``/``XMax``, ``YMin``/``YMax`` (image pixels: a
             pixel size is required); ``Phenotype`` labels; optional ``Cell Area (µm²)``; markers
             ``<marker> Positive Classification`` (0/1; gate at 0.5).

Units: every column's unit is decided from its header when the header names one (``Centroid X px``,
``Cell Area (µm²)``), else from an explicit option, else from the preset, else from the coordinates (µm by
default); see :mod:`chemomet.tme.units`. A column in pixels without a pixel size is refused, and an area in µm²
is never rescaled.

Cell types come either from labels (class names, case-insensitive; QuPath derived classes such as
``Macrophage: TIE2+`` give the base class and the TIE2/CD163 status) or, when gates are given, from marker
intensities: a cell is of a lineage when exactly one of MENA (tumour), CD68 (macrophage), CD31
(endothelium) is ≥ its threshold; a cell positive for several lineage markers is ambiguous and counted as
"other". TIE2 and CD163 gates set the macrophage flags in either mode. Radius: a radius column, else the
equivalent radius of the outline (polygon column), else ``sqrt(area/π)``, else — only when asked for with
``default_radius_um`` — one radius for every cell; a table with no size at all is refused.

Outlines: an optional polygon column (``polygon_col``; no preset has one) holds one outline per cell as WKT
``POLYGON ((x y, ...))`` or a JSON list ``[[x, y], ...]``, in the units of the centroids (converted with them);
contact is then decided on the outlines (:mod:`chemomet.tme.polygons`).
"""

from __future__ import annotations

import difflib
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from chemomet.errors import InputError, field_error
from chemomet.inputs import is_regular_file
from chemomet.tme import geojson as gj
from chemomet.tme.geojson import GEOJSON_SUFFIXES
from chemomet.tme.polygons import Polygons, parse_polygons
from chemomet.tme.presets import PRESETS, ColumnMap, available_presets
from chemomet.tme.table import (
    ENDOTHELIAL,
    MACROPHAGE,
    MAX_ABS_COORDINATE_UM,
    OTHER,
    TUMOUR,
    CellTable,
    make_table,
)
from chemomet.tme.units import UNIT_LABELS, header_stem, header_units_all, parse_unit, unit_scale

if TYPE_CHECKING:
    import pandas as pd

# pandas is imported where a path needs it (text tables, AnnData, columns of other types): a Parquet table of
# numbers and labels is read with pyarrow alone, which spares the command about 0.3 s of imports.

LINEAGE_MARKERS = {"MENA": TUMOUR, "CD68": MACROPHAGE, "CD31": ENDOTHELIAL}
FLAG_MARKERS = ("TIE2", "CD163")
MARKERS = (*LINEAGE_MARKERS, *FLAG_MARKERS)
DEFAULT_OTHER_CLASSES = (
    "Other",
    "Stroma",
    "Immune cells",
    "Immune",
    "Lymphocyte",
    "Fibroblast",
    "Necrosis",
    "Negative",
    "Unclassified",
    "Ignore",
)
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq", ".h5ad", *GEOJSON_SUFFIXES)
LABEL_COLUMN_NAMES = ("Classification", "Class", "Phenotype", "cell_type", "Cell Type", "CellType", "celltype")
"""Columns that usually hold cell-type labels, suggested when the preset's label column is missing."""


@dataclass(frozen=True)
class ReadOptions:
    """How to read a cell table.

    Attributes
    ----------
    preset : the name of a column preset, ``"generic"``, ``"qupath"``, ``"halo"`` (:data:`PRESETS`) or one of
        ``presets_file``; or a :class:`~chemomet.tme.presets.ColumnMap`. Not used for ``.h5ad`` files.
    x_col, y_col, label_col, radius_col, area_col : column overrides (``None``: the preset's). Units: see
        ``units``.
    polygon_col : column of cell outlines (WKT ``POLYGON ((x y, ...))`` or JSON ``[[x, y], ...]``, centroid
        units); when given, contact is decided on the outlines and, without a radius column, the radius is
        the outline's equivalent radius ``sqrt(area/π)``.
    units : unit of the x/y columns, ``"um"``, ``"mm"`` or ``"px"``; ``None``: the unit the headers name, else
        ``"px"`` when ``pixel_size_um`` is given, else the preset's (HALO: ``"px"``), else ``"um"``. A statement
        that contradicts a column header is refused.
    radius_units, area_units : unit of the radius (``"um"``, ``"mm"``, ``"px"``) and area (``"um2"``, ``"mm2"``,
        ``"px2"``; ``"µm²"``, ``"um^2"`` accepted) columns when their headers name none; ``None``: the preset's,
        else the coordinates' unit (squared for the area) — but an area whose header names no unit is refused
        when the coordinates are in pixels or the preset's area header names a unit (µm² or px² cannot be told
        apart: HALO's 'Cell Area' beside pixel boxes). See :mod:`chemomet.tme.units`.
    pixel_size_um : µm per pixel, required when any column is in pixels, refused when none is.
    tumour_class, macrophage_class, endothelial_class : class names in the label column.
    other_classes : further labels accepted as "other" cells.
    ignore_unknown_labels : count unknown labels as "other" instead of refusing them.
    gates : marker → threshold (``MENA``, ``CD68``, ``CD31``, ``TIE2``, ``CD163``), in the units of the
        intensity columns; a cell is positive when its intensity is ≥ the threshold.
    marker_columns : marker → column override.
    default_radius_um : radius given to every cell when the table has no radius, area or outline column, µm;
        ``None`` (default): such a table is refused. The summary then says that a default radius was used.
    spatial_key : ``obsm`` key holding the coordinates in AnnData files.
    geometry : GeoJSON files only: the outline read, ``"cell"`` (the feature's geometry, the cell boundary of a
        QuPath cell) or ``"nucleus"`` (QuPath's ``nucleusGeometry``); see :mod:`chemomet.tme.geojson`.
    check_units : refuse implausible coordinate/radius scales (see :func:`chemomet.tme.table.make_table`).
    presets_file : a TOML file of further column presets (the layout of ``chemomet/data/tme_presets.toml``),
        whose names ``preset`` may then take (see :func:`~chemomet.tme.presets.read_presets`).

    Examples
    --------
    >>> from chemomet.tme.readers import resolve_units
    >>> opts = ReadOptions(preset="qupath", pixel_size_um=0.325)  # uncalibrated QuPath export, 0.325 µm/px
    >>> resolve_units(opts, "export.tsv")  # the coordinate unit asked for, µm per pixel
    ('px', 0.325)
    >>> resolve_units(ReadOptions(preset="halo"), "halo.csv")  # nothing stated: headers, then the preset decide
    (None, None)
    >>> gated = ReadOptions(gates={"MENA": 0.4, "CD68": 0.3, "CD31": 0.5})  # cell types from intensities
    >>> lab = ReadOptions(preset="inform", presets_file="lab_presets.toml")  # a preset of the user's file
    """

    preset: str | ColumnMap = "generic"
    x_col: str | None = None
    y_col: str | None = None
    label_col: str | None = None
    radius_col: str | None = None
    area_col: str | None = None
    polygon_col: str | None = None
    units: str | None = None
    radius_units: str | None = None
    area_units: str | None = None
    pixel_size_um: float | None = None
    tumour_class: str = "Tumor"
    macrophage_class: str = "Macrophage"
    endothelial_class: str = "Endothelial"
    other_classes: tuple[str, ...] = DEFAULT_OTHER_CLASSES
    ignore_unknown_labels: bool = False
    gates: dict = field(default_factory=dict)
    marker_columns: dict = field(default_factory=dict)
    default_radius_um: float | None = None
    spatial_key: str = "spatial"
    geometry: str = "cell"
    check_units: bool = True
    presets_file: str | Path | None = None


def _norm(name: str) -> str:
    return " ".join(str(name).replace("\u03bc", "\u00b5").replace("²", "^2").split())


class _Columns:
    """Case- and µ/μ-tolerant column lookup with "did you mean" messages."""

    def __init__(self, names, where: str):
        self.names = [str(c) for c in names]
        self.where = where
        self.exact = {_norm(c): c for c in self.names}
        self.lower: dict[str, list[str]] = {}
        for c in self.names:
            self.lower.setdefault(_norm(c).lower(), []).append(c)

    def find(self, name: str) -> str | None:
        n = _norm(name)
        if n in self.exact:
            return self.exact[n]
        hits = self.lower.get(n.lower(), [])
        return hits[0] if len(hits) == 1 else None

    def need(self, name: str, what: str, hint: str = "") -> str:
        got = self.find(name)
        if got is None:
            close = difflib.get_close_matches(name, self.names, n=3, cutoff=0.6)
            sugg = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
            shown = ", ".join(repr(c) for c in self.names[:8]) + (" ..." if len(self.names) > 8 else "")
            raise InputError(
                f"{self.where}: column {name!r} ({what}) is missing{sugg}; columns present: "
                f"{shown or 'none'}.{(' ' + hint) if hint else ''}"
            )
        return got


def resolve_units(opts: ReadOptions, where: str) -> tuple[str | None, float | None]:
    """The coordinate unit the options state and the pixel size, both checked.

    Parameters
    ----------
    opts : the reading options (``units``, ``pixel_size_um``).
    where : the file, for messages.

    Returns
    -------
    tuple
        ``(units, pixel_size_um)``: ``units`` is ``opts.units`` as a canonical unit (``"um"``, ``"mm"``,
        ``"px"``), or ``"px"`` when only a pixel size is given, or ``None`` when nothing is stated (the headers
        and the preset then decide); ``pixel_size_um`` is ``None`` when not given.

    Raises
    ------
    InputError : an unknown unit, a pixel size outside (0, 100] µm, or a pixel size with ``units`` other than px.

    Examples
    --------
    >>> resolve_units(ReadOptions(units="µm"), "cells.csv"), resolve_units(ReadOptions(), "cells.csv")
    (('um', None), (None, None))
    """
    ps = opts.pixel_size_um
    if ps is not None:
        try:
            ps = float(ps)
        except (TypeError, ValueError):
            raise field_error("pixel_size", opts.pixel_size_um, "a number in (0, 100]", "µm/px", where) from None
        if not (np.isfinite(ps) and 0 < ps <= 100):
            raise field_error("pixel_size", opts.pixel_size_um, "a number in (0, 100]", "µm/px", where)
    if opts.units is None:
        return ("px" if ps is not None else None), ps
    units = parse_unit(opts.units, "length", "units", where)
    if units != "px" and ps is not None:
        raise field_error(
            "pixel_size", ps, f"no pixel size when units are {UNIT_LABELS[units]} (use --units px)", "µm/px", where
        )
    return units, ps


@dataclass
class _Unit:
    """The unit decided for one column, and where it came from (for messages and the summary)."""

    unit: str
    source: str


def _decide(
    columns: list[str],
    what: str,
    kind: str,
    stated: str | None,
    stated_by: str,
    preset_unit: str | None,
    preset_name: str,
    fallback: _Unit,
    where: str,
) -> _Unit:
    """The unit of ``columns`` (one role: coordinates, radius or area): header, else stated, else preset, else
    ``fallback``; a unit stated explicitly that contradicts a header is refused. A pixel size alone implies pixels
    only for the columns whose headers and preset name no unit."""
    found: dict[str, str] = {}
    for c in columns:
        hs = header_units_all(c)
        if kind == "length" and any(h.endswith("2") for h in hs):
            raise InputError(
                f"{where}: column {c!r} ({what}) names an area unit in its header; allowed: a length column "
                "(µm, mm or px) — check the column options"
            )
        for u in sorted(hs):
            found.setdefault(u if kind == "length" or u.endswith("2") else u + "2", c)
    if len(found) > 1:
        shown = ", ".join(f"{c!r} ({UNIT_LABELS[u]})" for u, c in found.items())
        raise InputError(
            f"{where}: the {what} columns name different units in their headers: {shown}; allowed: one unit "
            "(choose the columns with --x-col/--y-col/--radius-col/--area-col)"
        )
    if found:
        (u, c), = found.items()
        if stated is not None and stated != u and not stated_by.startswith("--pixel-size"):
            raise InputError(
                f"{where}: column {c!r} ({what}) is in {UNIT_LABELS[u]} according to its header, but {stated_by} "
                f"says {UNIT_LABELS[stated]}; allowed: the header's unit (drop {stated_by.split()[0]}, or choose "
                "another column)"
            )
        return _Unit(u, "header")
    implied = stated_by.startswith("--pixel-size")
    if stated is not None and not implied:
        return _Unit(stated, stated_by)
    if preset_unit is not None:
        return _Unit(preset_unit, f"preset {preset_name!r}")
    if stated is not None:
        return _Unit(stated, "--pixel-size")
    return fallback


def _preset(opts: ReadOptions, presets: dict[str, ColumnMap]) -> ColumnMap:
    """The preset's columns (before unit variant and overrides)."""
    if isinstance(opts.preset, ColumnMap):
        return opts.preset
    if opts.preset not in presets:
        raise field_error("preset", opts.preset, " | ".join(presets))
    return presets[opts.preset]


def _column_map(opts: ReadOptions, preset: ColumnMap, units: str) -> ColumnMap:
    """The columns to read: the preset's for ``units``, with the options' overrides."""
    cm = preset.for_units(units)
    return replace(
        cm,
        x=opts.x_col or cm.x,
        y=opts.y_col or cm.y,
        label=opts.label_col or cm.label,
        radius=opts.radius_col or cm.radius,
        area=opts.area_col or cm.area,
        polygon=opts.polygon_col or cm.polygon,
    )


def _check_gates(opts: ReadOptions, where: str) -> dict[str, float]:
    gates = {}
    for m, v in opts.gates.items():
        mu = str(m).upper()
        if mu not in MARKERS:
            raise field_error("gate", m, " | ".join(MARKERS), where=where)
        try:
            t = float(v)
        except (TypeError, ValueError):
            raise field_error(f"gate {mu}", v, "a number (intensity threshold)", where=where) from None
        if not np.isfinite(t):
            raise field_error(f"gate {mu}", v, "a finite number (intensity threshold)", where=where)
        gates[mu] = t
    lineage = [m for m in LINEAGE_MARKERS if m in gates]
    if lineage and len(lineage) < 3:
        missing = [m for m in LINEAGE_MARKERS if m not in gates]
        raise field_error(
            "gate",
            ", ".join(lineage),
            f"thresholds for all of MENA, CD68, CD31 when gating (missing: {', '.join(missing)})",
            where=where,
        )
    return gates


class _Source:
    """Uniform access to the columns of a CSV/Parquet table or an AnnData object."""

    def __init__(self, path: Path, geometry: str = "cell"):
        self.path = path
        self.geometry = geometry
        self.where = path.name
        self.adata = None
        suffix = path.suffix.lower()
        if suffix not in TABLE_SUFFIXES:
            raise field_error(
                "file type", path.suffix or path.name, ", ".join(TABLE_SUFFIXES), where=self.where
            )
        if not path.exists():
            raise InputError(f"{path}: file not found")
        if path.is_dir():
            raise InputError(f"{path}: is a directory; allowed: a cell table file")
        if not is_regular_file(path):  # a pipe or a device would block or never end
            raise InputError(f"{path}: is not a regular file (a device, pipe or socket); allowed: a cell table file")
        kinds = {"h5ad": "h5ad", "parquet": "parquet", "pq": "parquet", "geojson": "geojson", "json": "geojson"}
        self.kind = kinds.get(suffix[1:], "text")
        if self.kind == "geojson":
            self._open_geojson()
        elif self.kind == "text":
            self._open_text()
        elif self.kind == "parquet":
            self._open_parquet()
        else:
            self._open_h5ad()

    def _open_text(self) -> None:
        try:
            with open(self.path, encoding="utf-8-sig") as fh:
                first = fh.readline()
        except UnicodeDecodeError:
            raise InputError(
                f"{self.where}: not a UTF-8 text table; allowed: CSV/TSV text, Parquet or .h5ad"
            ) from None
        if not first.strip():
            raise InputError(
                f"{self.where}: the file is empty (no header, no cells); allowed: a header line and "
                "at least one cell"
            )
        self.sep = "\t" if "\t" in first else ("," if "," in first else (";" if ";" in first else ","))
        header = self._read_text(nrows=0)
        self.columns = _Columns(header.columns, self.where)
        self._frame = None

    def _read_text(self, **kw) -> pd.DataFrame:
        import pandas as pd

        try:
            return pd.read_csv(self.path, sep=self.sep, encoding="utf-8-sig", **kw)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as err:
            msg = " ".join(str(err).split())[:160]
            raise InputError(f"{self.where}: cannot parse the table ({msg})") from None

    def _load_text(self, cols: list[str]) -> dict[str, np.ndarray]:
        try:
            t = pcsv.read_csv(
                self.path,
                parse_options=pcsv.ParseOptions(delimiter=self.sep),
                convert_options=pcsv.ConvertOptions(include_columns=cols),
            )
        except (pa.ArrowInvalid, pa.ArrowKeyError, UnicodeDecodeError) as err:  # KeyError: a header with a NUL
            msg = " ".join(str(err).replace("\x00", "\\x00").split())[:160]
            raise InputError(f"{self.where}: cannot parse the table ({msg})") from None
        return {c: t.column(c).to_numpy(zero_copy_only=False) for c in cols}

    def _open_parquet(self) -> None:
        try:
            schema = pq.read_schema(self.path)
        except Exception as err:  # pyarrow raises several unrelated types for corrupt files
            msg = " ".join(str(err).split())[:160]
            raise InputError(f"{self.where}: not a readable Parquet file ({msg})") from None
        self.columns = _Columns(schema.names, self.where)

    def _open_h5ad(self) -> None:
        import anndata

        try:
            self.adata = anndata.read_h5ad(self.path)
        except Exception as err:  # h5py/anndata raise many types for a bad file
            msg = " ".join(str(err).split())[:160]
            raise InputError(f"{self.where}: not a readable .h5ad file ({msg})") from None
        self.columns = _Columns(
            list(self.adata.obs.columns) + list(map(str, self.adata.var_names)), self.where
        )

    def _open_geojson(self) -> None:
        self.cells = gj.read_geojson_cells(self.path, self.geometry)
        names = [gj.ID_COLUMN, gj.LABEL_COLUMN, gj.X_COLUMN, gj.Y_COLUMN]
        if self.cells.outlines is not None:
            names.append(gj.OUTLINE_COLUMN)
        self.columns = _Columns(names + [m for m in self.cells.measurement_names() if m not in names], self.where)

    def load(self, cols: list[str], label: str | None = None) -> dict[str, np.ndarray]:
        """Values of the given (resolved) columns; the ``label`` column of a Parquet or AnnData table comes as a
        :class:`pandas.Categorical` (one code per cell, not one text object per cell)."""
        cols = list(dict.fromkeys(cols))
        if self.kind == "geojson":
            c = self.cells
            fixed = {
                gj.ID_COLUMN: c.ids,
                gj.LABEL_COLUMN: c.classes,
                gj.X_COLUMN: c.x,
                gj.Y_COLUMN: c.y,
                gj.OUTLINE_COLUMN: c.outlines,
            }
            return {k: fixed[k] if k in fixed else c.measurement(k, self.where) for k in cols}
        if self.kind == "text":
            return self._load_text(cols)
        if self.kind == "parquet":
            # pyarrow's table, converted column by column: numbers straight to NumPy, the labels as their codes
            # and distinct values (:class:`_Coded`); columns of other types through pandas' conversion
            # (pq.ParquetFile, not pq.read_table: the latter goes through pyarrow.dataset, which imports pandas)
            try:
                with pq.ParquetFile(self.path, read_dictionary=[label] if label else None) as f:
                    t = f.read(columns=cols)
                return {c: _arrow_values(t.column(c), c == label) for c in cols}
            except Exception as err:
                msg = " ".join(str(err).split())[:160]
                raise InputError(f"{self.where}: cannot read the Parquet columns ({msg})") from None
        out = {}
        ad = self.adata
        for c in cols:
            if c in ad.obs.columns:
                out[c] = _categorical_or_array(ad.obs[c], c == label)
            else:
                j = list(map(str, ad.var_names)).index(c)
                col = ad.X[:, j]
                out[c] = np.asarray(col.toarray() if hasattr(col, "toarray") else col).ravel()
        return out


@dataclass(frozen=True)
class _Coded:
    """A label column as a code per cell (−1: missing) into its distinct values (``categories``, objects): what
    a dictionary-encoded Parquet column holds, read without pandas."""

    codes: np.ndarray
    categories: np.ndarray

    def __len__(self) -> int:
        return int(self.codes.shape[0])


def _arrow_values(col: pa.ChunkedArray, keep_categorical: bool):
    """A Parquet column's values, as :func:`_categorical_or_array` gives them from pandas' conversion: a
    dictionary-encoded label column as :class:`_Coded` (the codes and distinct values pandas' Categorical would
    hold), a numeric column as its NumPy array; through pandas when the column has missing values or another
    type."""
    if keep_categorical and pa.types.is_dictionary(col.type):
        col = col.unify_dictionaries()  # one dictionary for every chunk (row group)
        codes = _plain_numpy([ch.indices for ch in col.chunks])
        if codes is not None:
            cats = col.chunk(0).dictionary.to_pylist()
            return _Coded(codes.astype(np.int64), np.asarray(cats + [None], dtype=object)[:-1])
    elif pa.types.is_floating(col.type) or pa.types.is_integer(col.type):
        values = _plain_numpy(col.chunks)
        if values is not None:
            return values
    return _categorical_or_array(col.to_pandas(), keep_categorical)


def _plain_numpy(chunks: list) -> np.ndarray | None:
    """The values of Arrow arrays of one numeric type without missing values as one NumPy array (read-only when
    one chunk), taken through DLPack; ``None`` for any other column. (pyarrow's own ``to_numpy`` imports pandas.)"""
    if not chunks or any(ch.null_count for ch in chunks):
        return None
    try:
        parts = [np.from_dlpack(ch) for ch in chunks]
    except (TypeError, ValueError, BufferError, RuntimeError, NotImplementedError):
        return None
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _categorical_or_array(v: pd.Series, keep_categorical: bool):
    """A column's values: its :class:`pandas.Categorical` when asked for and it is one, else a NumPy array (a
    categorical column as objects)."""
    import pandas as pd

    if isinstance(v.dtype, pd.CategoricalDtype):
        return v.array if keep_categorical else v.astype(object).to_numpy()
    return v.to_numpy()


def _numeric(values: np.ndarray, name: str, where: str, unit: str | None = None) -> np.ndarray:
    if values.dtype.kind in "fiub":
        out = np.asarray(values, dtype=np.float64)  # no copy of a float column: the callers make new arrays
    else:
        import pandas as pd

        conv = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=np.float64)
        bad = np.isnan(conv) & ~pd.isna(pd.Series(values)).to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            allowed = "a number"
            if re.fullmatch(r"\s*[-+]?\d+,\d+\s*", str(values[i])):
                allowed = (
                    "a number with a decimal point (this looks like a decimal comma: export the table with '.' as "
                    "the decimal separator, e.g. an English locale in the export settings)"
                )
            raise field_error(f"{name}[row {i}]", values[i], allowed, unit, where)
        out = conv
    if out.size and np.isfinite(out.min()) and np.isfinite(out.max()):  # (a NaN propagates through min and max)
        return out
    nonfinite = ~np.isfinite(out)
    if nonfinite.any():
        i = int(np.flatnonzero(nonfinite)[0])
        raise field_error(
            f"{name}[row {i}]",
            float(out[i]),
            f"a finite number for every cell ({int(nonfinite.sum())} rows are NaN, empty or infinite)",
            unit,
            where,
        )
    return out


def _label_types(labels: np.ndarray, opts: ReadOptions, where: str, col: str):
    """Map labels to type codes (vectorised over unique labels); also return TIE2/CD163 flags if encoded."""
    # distinct labels first (a hash table, or the categories of a dictionary-encoded column), then the text of
    # each distinct label: a missing label is "", the others as text, stripped
    pd = sys.modules.get("pandas")  # a pandas Categorical can only come from an imported pandas
    if isinstance(labels, _Coded):
        raw_codes, raw = labels.codes, labels.categories
    elif pd is not None and isinstance(labels, pd.Categorical):
        raw_codes, raw = labels.codes, labels.categories.to_numpy(dtype=object)
    else:
        import pandas as pd

        raw_codes, raw = pd.factorize(np.asarray(labels, dtype=object), use_na_sentinel=True)
    text_of_raw = np.array([str(v).strip() for v in raw] + [""], dtype=str)  # index −1 (missing): ""
    uniq, raw_to_uniq = np.unique(text_of_raw, return_inverse=True)
    inv = raw_to_uniq.ravel()[raw_codes]
    n_of = np.bincount(inv, minlength=uniq.size)  # cells per distinct label
    used = (n_of > 0) | (uniq == "")
    if not used.all():  # categories no cell has (kept by AnnData subsets, Parquet dictionaries) are not labels
        inv = (np.cumsum(used) - 1)[inv]
        uniq, n_of = uniq[used], n_of[used]
    classes = {
        opts.tumour_class.strip().lower(): TUMOUR,
        opts.macrophage_class.strip().lower(): MACROPHAGE,
        opts.endothelial_class.strip().lower(): ENDOTHELIAL,
    }
    if len(classes) < 3:
        raise field_error(
            "class names",
            f"{opts.tumour_class}/{opts.macrophage_class}/{opts.endothelial_class}",
            "three different names",
            where=where,
        )
    others = {o.strip().lower() for o in opts.other_classes} | {""}
    codes = np.zeros(uniq.size, dtype=np.int8)
    flag = {m: np.zeros(uniq.size, dtype=bool) for m in FLAG_MARKERS}
    seen = {m: False for m in FLAG_MARKERS}
    unknown = []
    for k, lab in enumerate(uniq):  # loop over distinct labels, not cells
        low = lab.lower()
        parts = [p.strip() for p in low.split(":")]
        base = low if low in classes or low in others else parts[0]
        for m in FLAG_MARKERS:
            ml = m.lower()
            for p in parts[1:]:
                if p.replace(" ", "").startswith(ml):
                    seen[m] = True
                    flag[m][k] = p.replace(" ", "") in (f"{ml}+", f"{ml}positive", f"{ml}pos", f"{ml}high")
        if base in classes:
            codes[k] = classes[base]
        elif base in others:
            codes[k] = OTHER
        else:
            unknown.append((lab, int(n_of[k])))
    if unknown and not opts.ignore_unknown_labels:
        shown = ", ".join(f"{str(lab)!r} ({n} cells)" for lab, n in unknown[:3])
        more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
        raise InputError(
            f"{where}: column {col!r} has unknown cell labels {shown}{more}; allowed: "
            f"{opts.tumour_class!r}, {opts.macrophage_class!r}, {opts.endothelial_class!r} or an other-"
            "class (set the class names, --other-class NAME, or --ignore-unknown-labels)"
        )
    flags = {m: (flag[m][inv] if seen[m] else None) for m in FLAG_MARKERS}
    index = inv.astype(np.int32 if uniq.size < 2**31 else np.int64)
    return codes[inv], flags, uniq.astype(object), index


def read_cells(path: str | Path, options: ReadOptions | None = None) -> CellTable:
    """Read a cell table (CSV/TSV, Parquet or ``.h5ad``) into a validated :class:`CellTable` in µm.

    Parameters
    ----------
    path : the file; the format follows the suffix (``.csv``, ``.tsv``, ``.txt``, ``.parquet``, ``.pq``,
        ``.h5ad``).
    options : column mapping, units, class names and gates (see :class:`ReadOptions`); ``None``: the defaults
        (``generic`` preset, µm).

    Returns
    -------
    CellTable
        centroids and radii converted to µm, cell-type codes and the TIE2/CD163 flags when measured.

    Raises
    ------
    InputError : any problem with the file, with a one-line message naming the column, the value and the fix.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = pathlib.Path(tmp) / "cells.csv"
    ...     _ = path.write_text("x,y,radius,cell_type\\n0,0,5,Tumor\\n10,0,5,Macrophage\\n5,8,5,Endothelial\\n")
    ...     table = read_cells(path)
    ...     px = read_cells(path, ReadOptions(pixel_size_um=0.5))  # the same numbers read as pixels of 0.5 µm
    >>> table.n, table.cell_type.tolist(), table.radius_source
    (3, [1, 2, 3], 'column')
    >>> px.x_um.tolist(), px.radius_um.tolist()  # µm
    ([0.0, 5.0, 2.5], [2.5, 2.5, 2.5])
    """
    table, _ = read_cells_and_source(path, options)
    return table


def read_cells_and_source(path: str | Path, options: ReadOptions | None = None):
    """Like :func:`read_cells`, also returning the AnnData object of an ``.h5ad`` input (else ``None``)."""
    opts = options or ReadOptions()
    path = Path(path)
    where = path.name
    stated, ps = resolve_units(opts, where)
    stated_by = "--units" if opts.units is not None else "--pixel-size (which implies --units px)"
    radius_stated = parse_unit(opts.radius_units, "length", "radius_units", where) if opts.radius_units else None
    area_stated = parse_unit(opts.area_units, "area", "area_units", where) if opts.area_units else None
    gates = _check_gates(opts, where)
    presets = available_presets(opts.presets_file)
    src = _Source(path, opts.geometry)
    cols = src.columns
    px_hint = ""
    preset_name = "generic"
    other_sizes: list[tuple[str, str]] = []  # (role, column): the size columns of the preset's other unit variant
    if src.kind == "h5ad":
        xy = _anndata_xy(src.adata, opts.spatial_key, where)
        base = replace(
            PRESETS["generic"],
            label=opts.label_col or "cell_type",
            radius=opts.radius_col or "radius",
            area=opts.area_col or "area",
            polygon=opts.polygon_col,
        )
    elif src.kind == "geojson":
        xy = None
        preset_name = "QuPath GeoJSON"
        base = _column_map(opts, gj.column_map(src.cells), stated or "px")
    else:
        xy = None
        preset = _preset(opts, presets)
        preset_name = opts.preset if isinstance(opts.preset, str) else "custom"
        select = stated if stated is not None else (preset.units or "um")
        base = _column_map(opts, preset, select)
        # an export may mix the variants (QuPath: pixel centroids, an area in µm²): the other variant's size
        # column is used when this one's is absent; its header names its unit
        other = preset if select == "px" else preset.px
        if other is not None and other is not preset.for_units(select):
            for role in ("radius", "area"):
                col = getattr(other, role)
                if col and col != getattr(base, role) and getattr(opts, role + "_col") is None:
                    other_sizes.append((role, col))
        if select != "px" and preset.px is not None:
            px_x = preset.px.x if isinstance(preset.px.x, str) else preset.px.x[0]
            if cols.find(px_x) is not None:
                px_hint = "The table is in pixels (uncalibrated image): pass --units px --pixel-size UM_PER_PX."
    need: dict[str, str] = {}
    if xy is None:
        for axis, spec in (("x", base.x), ("y", base.y)):
            if isinstance(spec, tuple):
                need[axis + "_lo"] = cols.need(spec[0], f"{axis} minimum", px_hint)
                need[axis + "_hi"] = cols.need(spec[1], f"{axis} maximum", px_hint)
            else:
                need[axis] = cols.need(spec, f"centroid {axis}", px_hint)
    explicit_radius = opts.radius_col is not None
    explicit_area = opts.area_col is not None
    # a size column of the preset whose header names a unit (QuPath's 'Cell: Area µm^2', HALO's 'Cell Area (µm²)')
    # is also found under the same name with another unit or none ('Cell Area (px²)', 'Cell Area', R's
    # 'Cell.Area..µm..'): its own header then decides its unit, or, naming none, makes it ambiguous (below)
    radius_name = base.radius if explicit_radius else _size_column(cols, base.radius, "radius", where)
    area_name = base.area if explicit_area else _size_column(cols, base.area, "area", where)
    if base.polygon:
        need["polygon"] = cols.need(base.polygon, "cell outlines")
    if radius_name and (explicit_radius or cols.find(radius_name)):
        need["radius"] = cols.need(radius_name, "cell radius")
    elif "polygon" in need:
        pass  # the radius is the outline's equivalent radius
    elif area_name and (explicit_area or cols.find(area_name)):
        need["area"] = cols.need(area_name, "cell area")
    elif any(cols.find(c) for _, c in other_sizes):
        role, col = next((role, c) for role, c in other_sizes if cols.find(c))
        need[role] = cols.need(col, f"cell {role}")
    size_lookalikes = []  # columns named like the size columns looked for, when none was found
    if not any(k in need for k in ("radius", "area", "polygon")):
        wanted = [c for c in (base.radius, base.area) if c]
        close = [m for c in wanted for m in difflib.get_close_matches(c, cols.names, n=2, cutoff=0.6)]
        size_lookalikes = list(dict.fromkeys(close))
    if not any(k in need for k in ("radius", "area", "polygon")) and opts.default_radius_um is None:
        looked = " or ".join(repr(c) for c in (base.radius, base.area, *(c for _, c in other_sizes)) if c)
        looked = looked or "none in the preset"
        if size_lookalikes:
            looked += f"; did you mean {', '.join(repr(c) for c in size_lookalikes)}?"
        raise InputError(
            f"{where}: no cell size: no radius or area column ({looked}) and no outlines; allowed: "
            "--radius-col NAME, --area-col NAME, --polygon-col NAME, or --default-radius UM to give every cell "
            "the same radius (contacts and doorways then depend on that choice)"
        )
    lineage_gating = any(m in gates for m in LINEAGE_MARKERS)
    if src.kind == "geojson" and not lineage_gating and src.cells.classified == 0:
        raise InputError(
            f"{where}: none of the {src.cells.n} detections has a classification (properties.classification); "
            "allowed: classified detections (QuPath: run an object classifier before exporting) or gates on the "
            "measurements: --gate MENA=.. --gate CD68=.. --gate CD31=.. (columns 'Cell: <marker>: Mean')"
        )
    if not lineage_gating:
        if not base.label:
            raise InputError(
                f"{where}: no label column and no gates; allowed: --label-col NAME or --gate MENA=.. "
                "--gate CD68=.. --gate CD31=.."
            )
        need["label"] = cols.need(base.label, "cell type labels", _label_hint(cols, base.label))
    for m in gates:
        name = opts.marker_columns.get(m) or base.marker_template.format(marker=m)
        need["marker:" + m] = cols.need(name, f"{m} intensity")

    # units of every column: header, else stated, else preset, else the coordinates'
    coord_cols = [need[k] for k in ("x", "x_lo", "x_hi", "y", "y_lo", "y_hi") if k in need]
    cu = _decide(
        coord_cols, "coordinate", "length", stated, stated_by, base.units, preset_name, _Unit("um", "default"), where
    )
    units: dict[str, _Unit] = {c: cu for c in coord_cols}
    if "radius" in need:
        units[need["radius"]] = _decide(
            [need["radius"]], "radius", "length", radius_stated, "--radius-units", base.radius_units, preset_name,
            _Unit(cu.unit, "as the coordinates"), where,
        )
    if "area" in need:
        au = _decide(
            [need["area"]], "area", "area", area_stated, "--area-units", base.area_units, preset_name,
            _Unit(cu.unit + "2", "as the coordinates"), where,
        )
        if au.source == "as the coordinates":
            _refuse_ambiguous_area(need["area"], cu, base.area, preset_name, where)
        units[need["area"]] = au
    if "polygon" in need:
        units[need["polygon"]] = _Unit(cu.unit, "as the coordinates")
    in_px = [c for c, u in units.items() if u.unit.startswith("px")]
    if in_px and ps is None:
        u = units[in_px[0]]
        alt = " (or --units um if this export is calibrated)" if u.source.startswith("preset") else ""
        if src.kind == "geojson":
            implied = gj.outline_scale_check(src.cells, None, where)
            alt = (
                " (QuPath GeoJSON is in image pixels"
                + (f"; the file's area measurements imply {implied:.4g} µm/px" if implied else "")
                + ")"
            )
        raise InputError(
            f"{where}: column {in_px[0]!r} is in pixels ({_said(u)}) and no pixel size is given; allowed: "
            f"--pixel-size UM_PER_PX, the µm per image pixel of the scan{alt}"
        )
    if ps is not None and not in_px:
        shown = ", ".join(f"{c!r} in {UNIT_LABELS[u.unit]} ({_said(u)})" for c, u in units.items())
        raise field_error("pixel_size", ps, f"no pixel size: no column is in px ({shown})", "µm/px", where)

    id_col = cols.find(gj.ID_COLUMN)
    values = src.load(list(need.values()) + ([id_col] if id_col else []), need.get("label"))
    n = xy.shape[0] if xy is not None else len(next(iter(values.values())))
    if n == 0:
        raise InputError(
            f"{where}: the cell table is empty (a header but 0 cells); allowed: at least one cell"
        )
    unit_name = UNIT_LABELS[cu.unit]
    scale = unit_scale(cu.unit, ps)
    if xy is None:
        coords = {}
        for axis in ("x", "y"):
            if axis in need:
                coords[axis] = _numeric(values[need[axis]], need[axis], where, unit_name)
                _check_raw_extent(coords[axis], need[axis], scale, unit_name, where)
            else:
                lo = _numeric(values[need[axis + "_lo"]], need[axis + "_lo"], where, unit_name)
                hi = _numeric(values[need[axis + "_hi"]], need[axis + "_hi"], where, unit_name)
                _check_raw_extent(lo, need[axis + "_lo"], scale, unit_name, where)
                _check_raw_extent(hi, need[axis + "_hi"], scale, unit_name, where)
                coords[axis] = 0.5 * lo + 0.5 * hi
        x, y = coords["x"], coords["y"]
    else:
        x, y = xy[:, 0].astype(np.float64), xy[:, 1].astype(np.float64)
        for name, arr in ((f"obsm[{opts.spatial_key!r}] x", x), (f"obsm[{opts.spatial_key!r}] y", y)):
            bad = ~np.isfinite(arr)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise field_error(
                    f"{name}[row {i}]", float(arr[i]), "a finite number for every cell", unit_name, where
                )
            _check_raw_extent(arr, name, scale, unit_name, where)
    radius, rsrc = None, None
    if "radius" in need:
        ru = units[need["radius"]].unit
        radius = _numeric(values[need["radius"]], need["radius"], where, UNIT_LABELS[ru])
        if (radius <= 0).any():
            i = int(np.flatnonzero(radius <= 0)[0])
            raise field_error(
                f"{need['radius']}[row {i}]", float(radius[i]), "a number > 0", UNIT_LABELS[ru], where
            )
        with np.errstate(over="ignore"):  # an overflow becomes inf, refused by make_table
            radius = radius * unit_scale(ru, ps)
        rsrc = "column"
    elif "area" in need:
        au = units[need["area"]].unit
        area = _numeric(values[need["area"]], need["area"], where, UNIT_LABELS[au])
        if (area <= 0).any():
            i = int(np.flatnonzero(area <= 0)[0])
            raise field_error(f"{need['area']}[row {i}]", float(area[i]), "a number > 0", UNIT_LABELS[au], where)
        with np.errstate(over="ignore"):  # the area in µm², then its equivalent radius
            radius = np.sqrt(area * unit_scale(au, ps) / np.pi)
        rsrc = "area"
    polygons = None
    if "polygon" in need:
        raw = values[need["polygon"]]
        polygons = raw if isinstance(raw, Polygons) else parse_polygons(raw, need["polygon"], where)
        if src.kind == "geojson" and raw is src.cells.outlines and opts.check_units:
            gj.outline_scale_check(src.cells, scale, where)
        if scale != 1.0:
            with np.errstate(over="ignore", invalid="ignore"):
                polygons = polygons.transformed(scale)
        if radius is None:
            radius, rsrc = np.sqrt(polygons.area() / np.pi), "polygon"
    if scale != 1.0:  # (make_table copies the coordinates)
        x, y = x * scale, y * scale
    marker_vals = {m: _numeric(values[need["marker:" + m]], need["marker:" + m], where) for m in gates}
    n_amb = 0
    class_names, class_index = None, None
    if lineage_gating:
        pos = np.column_stack([marker_vals[m] >= gates[m] for m in LINEAGE_MARKERS])
        npos = pos.sum(axis=1)
        codes = np.where(
            npos == 1, np.array(list(LINEAGE_MARKERS.values()), dtype=np.int8)[pos.argmax(axis=1)], OTHER
        ).astype(np.int8)
        n_amb = int((npos > 1).sum())
        flags = {m: None for m in FLAG_MARKERS}
    else:
        codes, flags, class_names, class_index = _label_types(values[need["label"]], opts, where, need["label"])
    for m in FLAG_MARKERS:
        if m in gates:
            flags[m] = marker_vals[m] >= gates[m]
    meta = {
        "column_units": {c: UNIT_LABELS[u.unit] for c, u in units.items()},
        "units_note": _units_note(units, ps, xy is not None, opts.spatial_key, cu),
        "pixel_size_um": ps,
        "coordinate_unit": cu.unit,
        "um_per_coordinate_unit": scale,
        "class_names": class_names,
        "class_index": class_index,
    }
    if size_lookalikes:
        meta["size_lookalikes"] = size_lookalikes
    if id_col:
        meta["cell_ids"] = np.asarray(values[id_col]).astype(str).astype(object)
    if src.kind == "geojson":
        meta["skipped_features"] = dict(src.cells.skipped)
        if src.cells.skipped:
            shown = ", ".join(f"{n} {t or 'untyped'}" for t, n in src.cells.skipped.items())
            meta["units_note"] += f"; GeoJSON features skipped (not cells): {shown}"
    table = make_table(
        x,
        y,
        codes,
        radius,
        default_radius_um=opts.default_radius_um,
        tie2=flags["TIE2"],
        cd163=flags["CD163"],
        source=where,
        radius_source=rsrc,
        n_ambiguous=n_amb,
        check_units=opts.check_units,
        polygons=polygons,
        polygon_column=need.get("polygon", "polygon"),
        meta=meta,
    )
    return table, src.adata


def _size_column(cols: _Columns, name: str | None, role: str, where: str) -> str | None:
    """The table's column for the preset's size column ``name``: ``name`` itself when present; else, when
    ``name``'s header names a unit (the export writes units into its headers), the one column of the same name
    with another unit or none; else ``name`` (absent)."""
    if not name or cols.find(name) is not None or not header_units_all(name):
        return name
    stem = header_stem(name)
    same = [c for c in cols.names if header_stem(c) == stem]
    if len(same) > 1:
        shown = ", ".join(repr(c) for c in same)
        raise InputError(
            f"{where}: several columns could be the cell {role} ({shown}); allowed: one, chosen with "
            f"--{role}-col NAME"
        )
    return same[0] if same else name


def _refuse_ambiguous_area(column: str, cu: _Unit, preset_area: str | None, preset_name: str, where: str) -> None:
    """An area column whose header names no unit, with nothing stated, is refused where its unit is ambiguous:
    the coordinates are in pixels (exports with pixel coordinates often carry calibrated areas: HALO's µm² beside
    its pixel bounding boxes, QuPath's mixed exports), or the preset's own area column names a unit (a header
    stripped of it, e.g. HALO's 'Cell Area (µm²)' read back as 'Cell Area')."""
    if cu.unit == "px":
        why = (
            "and the coordinates are in pixels: it could be in µm² (HALO and QuPath write calibrated areas beside "
            "pixel coordinates) or in px²"
        )
    elif preset_area and header_units_all(preset_area) and column != preset_area:
        why = (
            f"where the {preset_name} export names one ({preset_area!r}): the header lost its unit, which could be "
            "µm² or px²"
        )
    else:
        return
    raise InputError(
        f"{where}: column {column!r} (cell area) names no unit in its header {why}; allowed: --area-units um2 or "
        "--area-units px2 (px² also needs --pixel-size), or a header naming the unit, e.g. 'Cell Area (µm²)'"
    )


def _check_raw_extent(arr: np.ndarray, name: str, scale: float, unit: str, where: str) -> None:
    """Coordinates beyond ±10⁷ µm (10 m) once converted are refused before any arithmetic can overflow."""
    limit = MAX_ABS_COORDINATE_UM / scale
    if arr.size == 0 or max(-float(arr.min()), float(arr.max())) <= limit:  # two reductions, no temporary
        return
    bad = np.abs(arr) > limit
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        k = int(bad.sum())
        raise field_error(
            f"{name}[row {i}]",
            float(arr[i]),
            f"|value| ≤ {limit:.6g} {unit} (10 m) for every cell ({k} value{'s' if k != 1 else ''} beyond); check "
            "the units (--units, --pixel-size) and the column",
            unit,
            where,
        )


def _said(u: _Unit) -> str:
    return {"header": "its header", "default": "the default"}.get(u.source, u.source)


def _units_note(units: dict[str, _Unit], ps: float | None, anndata: bool, key: str, cu: _Unit) -> str:
    """One sentence: each column's unit and where it came from, and the pixel size."""
    groups: dict[tuple[str, str], list[str]] = {}
    if anndata:
        groups.setdefault((cu.unit, _said(cu)), []).append(f"obsm[{key!r}]")
    for c, u in units.items():
        groups.setdefault((u.unit, _said(u)), []).append(c)
    parts = [f"{', '.join(cs)} in {UNIT_LABELS[u]} ({said})" for (u, said), cs in groups.items()]
    if ps is not None:
        parts.append(f"pixel size {ps:g} µm")
    return "; ".join(parts)


def _label_hint(cols: _Columns, wanted: str) -> str:
    present = [c for name in LABEL_COLUMN_NAMES if name.lower() != wanted.lower() and (c := cols.find(name))]
    if present:
        extra = " (QuPath 0.4 and later write the class to 'Classification')" if present[0].lower() == (
            "classification"
        ) else ""
        return (
            f"The table has a {present[0]!r} column{extra}: pass --label-col {present[0]!r}, or gate marker "
            "intensities with --gate MENA=.. --gate CD68=.. --gate CD31=.."
        )
    return "Or gate marker intensities with --gate MENA=.. --gate CD68=.. --gate CD31=.."


def _anndata_xy(adata, key: str, where: str) -> np.ndarray:
    if key not in adata.obsm:
        have = ", ".join(repr(k) for k in adata.obsm.keys()) or "none"
        raise InputError(f"{where}: obsm[{key!r}] (cell coordinates) is missing; obsm keys present: {have}")
    xy = np.asarray(adata.obsm[key])
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise field_error(
            f"obsm[{key!r}]", f"array of shape {xy.shape}", "an (n_cells, 2) array of x, y", "µm", where
        )
    if xy.shape[0] == 0:
        raise InputError(f"{where}: the AnnData object has 0 cells; allowed: at least one cell")
    if not np.issubdtype(xy.dtype, np.number):
        raise field_error(f"obsm[{key!r}]", str(xy.dtype), "numbers", "µm", where)
    return xy
