"""Units of the columns of a cell table: read from the column header, or stated explicitly.

Every length column (centroid or bounding box, radius, outline) is in ``um``, ``mm`` or ``px`` (pixels of the
image) and every area column in ``um2``, ``mm2`` or ``px2``. A column's unit is decided in this order:

1. its **header**, when it names a unit (``Centroid X µm``, ``Cell: Area px^2``, ``Cell Area (µm²)``,
   ``radius_um``; see :func:`header_unit`);
2. an **explicit statement** (``--units`` for the coordinates, ``--radius-units``, ``--area-units``);
   a statement that contradicts the header is refused;
3. the **preset** (``units``, ``radius_units``, ``area_units`` in ``tme_presets.toml``; HALO's bounding boxes
   are pixels);
4. the unit of the coordinates (squared for an area); the coordinates themselves default to µm. An area whose
   header names no unit is not given one this way where it is ambiguous — coordinates in pixels, or a preset whose
   own area header names a unit —: the reader refuses it, naming the column (``--area-units`` decides).

A column in pixels needs the pixel size (``--pixel-size``, µm per pixel); an area whose header says µm² is
therefore never rescaled by the pixel size, whatever the coordinates are in.
"""

from __future__ import annotations

import re

from chemomet.errors import field_error

LENGTH_UNITS = ("um", "mm", "px")
"""Canonical units of length columns."""
AREA_UNITS = ("um2", "mm2", "px2")
"""Canonical units of area columns."""
UNIT_LABELS = {"um": "µm", "mm": "mm", "px": "px", "um2": "µm²", "mm2": "mm²", "px2": "px²"}
"""How each canonical unit is written in messages and in the summary."""

_ALIASES = {
    "um": "um",
    "µm": "um",
    "micron": "um",
    "microns": "um",
    "micrometer": "um",
    "micrometers": "um",
    "micrometre": "um",
    "micrometres": "um",
    "mm": "mm",
    "px": "px",
    "pixel": "px",
    "pixels": "px",
}
_TOKEN = re.compile(
    r"(?<![a-z0-9])(sq\.?\s*|square\s+)?"
    r"(µm|um|microns?|micromet(?:er|re)s?|mm|px|pixels?)"
    r"\s*(\^\s*2|²|2)?(?![a-z0-9])"
)


def _canon_text(text: str) -> str:
    return str(text).replace("\u03bc", "\u00b5").replace("\u00b2", "²").strip().lower()


def header_unit(name: str) -> str | None:
    """The unit a column header names, as a canonical unit (``"um"``, ``"px2"``, ...), or ``None``.

    Unit words are matched as whole tokens, case-insensitively, with µ (micro sign) or μ (Greek mu): ``µm``,
    ``um``, ``micron(s)``, ``micrometre(s)``, ``mm``, ``px``, ``pixel(s)``; a following ``^2``, ``²`` or ``2``
    or a leading ``sq``/``square`` makes it an area unit. ``"Summary"`` or ``"minimum"`` name no unit.

    Parameters
    ----------
    name : the column header.

    Returns
    -------
    str or None
        the canonical unit, or ``None`` when the header names no unit or several different ones (the reader
        then asks for an explicit unit).

    Examples
    --------
    >>> header_unit("Centroid X µm"), header_unit("Cell: Area px^2"), header_unit("Cell Area (μm²)")
    ('um', 'px2', 'um2')
    >>> header_unit("radius_um"), header_unit("XMin"), header_unit("Summary")
    ('um', None, None)
    """
    units = header_units_all(name)
    return units.pop() if len(units) == 1 else None


def header_units_all(name: str) -> set[str]:
    """Every canonical unit a header names (more than one means the header is ambiguous).

    Parameters
    ----------
    name : the column header.

    Returns
    -------
    set of str
        canonical units (see :func:`header_unit`); empty when the header names none.

    Examples
    --------
    >>> sorted(header_units_all("Distance px to µm")), header_units_all("XMin")
    (['px', 'um'], set())
    """
    out = set()
    for m in _TOKEN.finditer(_canon_text(name)):
        out.add(_ALIASES[m.group(2)] + ("2" if (m.group(1) or m.group(3)) else ""))
    return out


def header_stem(name: str) -> str:
    """A column header without its unit words and punctuation, lower case: the name an export gives a measurement
    whatever unit it writes (or none).

    Parameters
    ----------
    name : the column header.

    Returns
    -------
    str
        the header with every unit token (see :func:`header_unit`) and every character other than a letter or a
        digit removed, lower case.

    Examples
    --------
    >>> header_stem("Cell Area (µm²)"), header_stem("Cell Area (px²)"), header_stem("Cell Area")
    ('cellarea', 'cellarea', 'cellarea')
    >>> header_stem("Cell.Area..µm.."), header_stem("Cell: Area µm^2"), header_stem("Nucleus Area (µm²)")
    ('cellarea', 'cellarea', 'nucleusarea')
    """
    return re.sub(r"[^a-z0-9]+", "", _TOKEN.sub(" ", _canon_text(name)))


def parse_unit(value: str, kind: str, option: str, where: str | None = None) -> str:
    """A unit given as text (an option or a preset key) as a canonical unit of ``kind``.

    Parameters
    ----------
    value : the text, e.g. ``"µm"``, ``"px"``, ``"um^2"``, ``"µm²"``, ``"px2"``.
    kind : ``"length"`` or ``"area"``.
    option : the option's name, for the message (e.g. ``"units"``, ``"area_units"``).
    where : the file the option came from, for the message.

    Returns
    -------
    str
        a member of :data:`LENGTH_UNITS` or :data:`AREA_UNITS`.

    Raises
    ------
    InputError : text that is no unit of that kind.

    Examples
    --------
    >>> parse_unit("µm²", "area", "area_units"), parse_unit("pixels", "length", "units")
    ('um2', 'px')
    >>> parse_unit("px", "area", "area_units")  # an area stated by its length unit is in that unit squared
    'px2'
    """
    allowed = LENGTH_UNITS if kind == "length" else AREA_UNITS
    shown = " | ".join(allowed if kind == "length" else ("um2 (µm²)", "mm2", "px2"))
    text = _canon_text(value)
    m = _TOKEN.fullmatch(text)
    if m is None:
        raise field_error(option, value, shown, where=where)
    base = _ALIASES[m.group(2)]
    squared = bool(m.group(1) or m.group(3))
    if kind == "length":
        if squared:
            raise field_error(option, value, f"a length unit: {shown}", where=where)
        return base
    return base + "2"


def unit_scale(unit: str, pixel_size_um: float | None) -> float:
    """µm (or µm² for an area unit) per unit.

    Parameters
    ----------
    unit : a canonical unit (:data:`LENGTH_UNITS` or :data:`AREA_UNITS`).
    pixel_size_um : µm per pixel; required for ``"px"`` and ``"px2"``.

    Returns
    -------
    float
        the factor that converts values in ``unit`` to µm (µm² for an area unit).

    Examples
    --------
    >>> unit_scale("mm", None), unit_scale("px", 0.5), unit_scale("px2", 0.5), unit_scale("um2", 0.5)
    (1000.0, 0.5, 0.25, 1.0)
    """
    base = unit.removesuffix("2")
    s = {"um": 1.0, "mm": 1000.0}.get(base)
    if s is None:
        if pixel_size_um is None:
            raise ValueError("pixel size required")
        s = float(pixel_size_um)
    return s * s if unit.endswith("2") else s
