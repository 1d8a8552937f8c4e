"""Column presets of the cell-table readers, as validated data.

A preset says where the fields of a cell export live: the centroid columns (or a bounding-box pair whose midpoint is
the centroid), the label column, the radius or area column, the column of each marker's intensity and, for exports
that also come uncalibrated, the pixel columns. The shipped presets (``generic``, ``qupath``, ``halo``) live in
``chemomet/data/tme_presets.toml``, which documents the layout; they are read and validated once, into
:data:`PRESETS`. A user adds a preset without touching the installed package: a TOML file of the same layout,
passed as ``chemomet tmem --presets FILE`` or ``ReadOptions(presets_file=FILE)``, or read with :func:`read_presets`.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

from chemomet.errors import InputError, field_error, validation_error
from chemomet.inputs import parse_text, read_text
from chemomet.tme.units import AREA_UNITS, LENGTH_UNITS, parse_unit

SHIPPED_FILE = "tme_presets.toml"
"""The shipped presets, in the package data of :mod:`chemomet.data`."""

NAME_PATTERN = r"[a-z0-9][a-z0-9_-]*"
"""Preset names: lower case (``--preset`` is lower-cased), letters, digits, ``-`` and ``_``."""


@dataclass(frozen=True)
class ColumnMap:
    """Where the fields of a cell table live (column names; a table's units are set by the reader).

    Attributes
    ----------
    x, y : centroid column (µm, or px with ``units="px"``), or a ``(min, max)`` pair of bounding-box columns
        whose midpoint is the centroid.
    label : column of cell-type labels, or ``None``.
    radius : column of the cell radius (µm), used when present, or ``None``.
    area : column of the cell area (µm²), used when present and no radius column is, or ``None``.
    marker_template : column of a marker's intensity, ``{marker}`` standing for ``MENA``, ``CD68``, ``CD31``,
        ``TIE2`` or ``CD163``.
    polygon : column of cell outlines (WKT or JSON, centroid units), or ``None``.
    px : the columns of the same export when uncalibrated (pixels), read with ``units="px"``; ``None``: the same
        columns in either unit.
    units : unit of the centroid/bounding-box columns when their headers name none (``"um"``, ``"mm"``,
        ``"px"``), or ``None`` (µm); ``"px"`` means a pixel size must be given.
    radius_units, area_units : unit of the radius (``"um"``, ...) and area (``"um2"``, ``"px2"``, ...) columns
        when their headers name none, or ``None`` (the coordinates' unit, squared for the area). See
        :mod:`chemomet.tme.units` for the order in which a column's unit is decided.

    Examples
    --------
    >>> from chemomet.tme import PRESETS
    >>> PRESETS["halo"].x, PRESETS["halo"].units  # HALO's bounding boxes are in pixels
    (('XMin', 'XMax'), 'px')
    >>> PRESETS["qupath"].for_units("px").x
    'Centroid X px'
    >>> ColumnMap("X", "Y", label="Type").marker_template.format(marker="CD68")
    'CD68'
    """

    x: str | tuple[str, str]
    y: str | tuple[str, str]
    label: str | None = "cell_type"
    radius: str | None = "radius"
    area: str | None = "area"
    marker_template: str = "{marker}"
    polygon: str | None = None
    px: ColumnMap | None = None
    units: str | None = None
    radius_units: str | None = None
    area_units: str | None = None

    def for_units(self, units: str) -> ColumnMap:
        """The columns to read for coordinates in ``units`` (``"um"`` or ``"px"``): :attr:`px` for pixels when
        the preset has pixel columns, else these."""
        return self.px if units == "px" and self.px is not None else self


# ---------------------------------------------------------------------------------------------------------------
# the file layout (pydantic, imported on first use: the command reads only the shipped presets, which need none)


def _column(v: str) -> str:
    if not v.strip():
        raise ValueError("a column name")
    return v


def _centroid(v):
    if isinstance(v, str):
        return _column(v)
    if isinstance(v, list | tuple) and len(v) == 2 and all(isinstance(c, str) for c in v):
        return (_column(v[0]), _column(v[1]))
    raise ValueError("a column name or a [min, max] pair of column names")


def _template(v: str) -> str:
    try:
        v.format(marker="CD68")
    except (KeyError, IndexError, ValueError):
        raise ValueError("a column name with {marker} and no other {...} field") from None
    if "{marker}" not in v:
        raise ValueError("a column name with {marker} in it")
    return v


def _length_unit(v: str) -> str:
    try:
        return parse_unit(v, "length", "units")
    except InputError:
        raise ValueError(" | ".join(LENGTH_UNITS)) from None


def _area_unit(v: str) -> str:
    try:
        return parse_unit(v, "area", "area_units")
    except InputError:
        raise ValueError(" | ".join(AREA_UNITS)) from None


def _column_map(spec: dict) -> ColumnMap:
    """The :class:`ColumnMap` of one preset's table once validated (column names, ``(min, max)`` pairs as tuples,
    canonical units); a ``px`` sub-table becomes :attr:`ColumnMap.px`, the preset with those keys replaced."""
    cm = ColumnMap(
        spec["x"],
        spec["y"],
        spec.get("label"),
        spec.get("radius"),
        spec.get("area"),
        spec.get("marker_template") or "{marker}",
        spec.get("polygon"),
        units=spec.get("units"),
        radius_units=spec.get("radius_units"),
        area_units=spec.get("area_units"),
    )
    px = spec.get("px")
    if px is not None:
        # the pixel columns are in pixels unless the sub-table says otherwise
        cm = replace(cm, px=replace(cm, **{"units": "px", **{k: v for k, v in px.items() if v is not None}}))
    return cm


@functools.cache
def _preset_file_model():
    """The pydantic model of a preset file (``name -> [NAME]`` table), made on first use (pydantic and its schema
    take a tenth of a second to import and build, which the command does not need for the shipped presets)."""
    from typing import Annotated

    from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, TypeAdapter

    column = Annotated[str, AfterValidator(_column)]
    length_unit = Annotated[str, AfterValidator(_length_unit)]
    area_unit = Annotated[str, AfterValidator(_area_unit)]
    centroid = Annotated[str | tuple[str, str], BeforeValidator(_centroid)]
    template = Annotated[str, AfterValidator(_template)]

    class _Strict(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

    class _PixelColumns(_Strict):
        """``[NAME.px]``: the columns that differ in an uncalibrated export; omitted keys keep the preset's."""

        x: centroid | None = None
        y: centroid | None = None
        label: column | None = None
        radius: column | None = None
        area: column | None = None
        marker_template: template | None = None
        polygon: column | None = None
        units: length_unit | None = None
        radius_units: length_unit | None = None
        area_units: area_unit | None = None

    class _Preset(_Strict):
        """``[NAME]``: one preset; omitted optional columns are absent from the export."""

        description: str = ""
        x: centroid
        y: centroid
        label: column | None = None
        radius: column | None = None
        area: column | None = None
        marker_template: template = "{marker}"
        polygon: column | None = None
        px: _PixelColumns | None = None
        units: length_unit | None = None
        radius_units: length_unit | None = None
        area_units: area_unit | None = None

    return TypeAdapter(dict[str, _Preset])


_CENTROID_RULE = ("a column name or a [min, max] pair of column names", None)
_RULES = {
    "description": ("text", None),
    "x": _CENTROID_RULE,
    "y": _CENTROID_RULE,
    "label": ("a column name", None),
    "radius": ("a column name", "µm"),
    "area": ("a column name", "µm²"),
    "marker_template": ('a column name with {marker} in it, e.g. "Cell: {marker}: Mean"', None),
    "polygon": ("a column name", None),
    "px": ("a table of the pixel columns (x, y, area, ...)", None),
    "units": ("the unit of the x/y columns: " + " | ".join(LENGTH_UNITS), None),
    "radius_units": ("the unit of the radius column: " + " | ".join(LENGTH_UNITS), None),
    "area_units": ("the unit of the area column: " + " | ".join(AREA_UNITS), None),
}


def parse_presets(table: dict, where: str = "presets") -> dict[str, ColumnMap]:
    """Validate presets given as a mapping ``name -> {x, y, label, ...}`` (the parsed TOML file).

    Parameters
    ----------
    table : the presets, in the layout of ``chemomet/data/tme_presets.toml``.
    where : the file or object they came from, for messages.

    Returns
    -------
    dict
        name -> :class:`ColumnMap`, in the order given.

    Raises
    ------
    InputError : an empty table, a bad name, an unknown key, a missing ``x``/``y``, a malformed column or marker
        template; one line naming the preset and the key.

    Examples
    --------
    >>> maps = parse_presets({"inform": {"x": "Cell X Position", "y": "Cell Y Position", "label": "Phenotype"}})
    >>> maps["inform"].label, maps["inform"].radius, maps["inform"].marker_template
    ('Phenotype', None, '{marker}')
    """
    if not table:
        raise InputError(f"{where}: no presets; allowed: one or more [NAME] tables with x = ..., y = ...")
    for name, spec in table.items():
        if not re.fullmatch(NAME_PATTERN, name):
            raise field_error("preset name", name, "lower-case letters, digits, '-' and '_'", where=where)
        if not isinstance(spec, dict):
            raise field_error(name, spec, f"a table [{name}] of columns (x = ..., y = ..., label = ...)", where=where)
    from pydantic import ValidationError

    try:
        presets = _preset_file_model().validate_python(table)
    except ValidationError as err:
        raise validation_error(err, where, _RULES, unknown=f"allowed: {', '.join(_RULES)}") from None
    return {name: _column_map(p.model_dump()) for name, p in presets.items()}


def _load_toml(text: str, where: str) -> dict:
    return parse_text(text, ".toml", where)


_CONVERT = {
    "x": _centroid,
    "y": _centroid,
    "label": _column,
    "radius": _column,
    "area": _column,
    "marker_template": _template,
    "polygon": _column,
    "units": _length_unit,
    "radius_units": _length_unit,
    "area_units": _area_unit,
}
"""The per-key checks and conversions of the file layout (the same functions the pydantic model applies)."""


def _load_shipped() -> dict[str, ColumnMap]:
    """The shipped presets, converted key by key with the layout's own checks but without the pydantic model (not
    imported by the command); ``tests/tme/test_tme_presets.py`` checks that :func:`parse_presets` gives the same."""
    text = resources.files("chemomet.data").joinpath(SHIPPED_FILE).read_text(encoding="utf-8")
    table = _load_toml(text, SHIPPED_FILE)

    def checked(spec: dict) -> dict:
        return {k: v if k == "description" else checked(v) if k == "px" else _CONVERT[k](v) for k, v in spec.items()}

    return {name: _column_map(checked(spec)) for name, spec in table.items()}


PRESETS: dict[str, ColumnMap] = _load_shipped()
"""The shipped presets by name (``generic``, ``qupath``, ``halo``), read from ``chemomet/data/tme_presets.toml``."""


def read_presets(path: str | Path) -> dict[str, ColumnMap]:
    """Read a user's preset file (TOML, the layout of ``chemomet/data/tme_presets.toml``).

    Parameters
    ----------
    path : the file; its presets may not reuse the name of a shipped one (:data:`PRESETS`).

    Returns
    -------
    dict
        name -> :class:`ColumnMap`, the file's presets only (the readers look names up in both).

    Raises
    ------
    InputError : a missing or unreadable file, invalid TOML, a shipped name, or an invalid preset.

    Examples
    --------
    A preset for inForm cell-segmentation tables (centroids in µm, labels in ``Phenotype``):

    >>> import pathlib, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = pathlib.Path(tmp) / "lab.toml"
    ...     _ = path.write_text('[inform]\\nx = "Cell X Position"\\ny = "Cell Y Position"\\nlabel = "Phenotype"\\n')
    ...     presets = read_presets(path)
    >>> presets["inform"].x, presets["inform"].label, presets["inform"].area
    ('Cell X Position', 'Phenotype', None)
    """
    path = Path(path)
    where = path.name
    if path.is_dir():
        raise InputError(f"{path}: is a directory; allowed: a TOML file of column presets")
    text = read_text(path, "presets").removeprefix("\ufeff")  # a byte-order mark, as some editors write
    presets = parse_presets(_load_toml(text, where), where)
    clash = [name for name in presets if name in PRESETS]
    if clash:
        raise field_error(
            "preset name", clash[0], f"a name other than those of the shipped presets ({', '.join(PRESETS)})",
            where=where,
        )
    return presets


def available_presets(presets_file: str | Path | None = None) -> dict[str, ColumnMap]:
    """The shipped presets, plus those of ``presets_file`` when given (see :func:`read_presets`)."""
    return PRESETS if presets_file is None else {**PRESETS, **read_presets(presets_file)}
