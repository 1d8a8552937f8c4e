"""The tissue page: upload a cell table, get its TMEM score and map, and use the score in a patient.

The upload is size-limited (the :class:`~chemomet.web.security.Guard` answers 413 before or while it streams in,
and nothing is left on disk), type-checked (suffix and content), streamed to a file whose name is random (the
user's file name is never part of a path; it is only shown, neutralised by :func:`safe_filename`), scored, and
deleted. The score is recorded in the study store with the file's SHA-256.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import secrets
import threading
from pathlib import Path

from chemomet.errors import InputError, field_error

MAX_UPLOAD_BYTES = 64 * 1024 * 1024
"""Largest cell table accepted by default (bytes)."""

CHUNK = 1024 * 1024
"""Bytes copied at a time."""

AREA_UNIT_CHOICES = (("", "from the header"), ("um2", "µm²"), ("px2", "px²"), ("mm2", "mm²"))
"""The area-unit menu of the form: the value sent (as ``--area-units``; empty: the header decides) and its label."""

PLOT_LOCK = threading.Lock()
"""Held while drawing with pyplot, which is not thread-safe (the tissue map, a trial's figures)."""


def safe_filename(name: str | None, limit: int = 100) -> str:
    """A user's file name made harmless to show or store: the last path part only (``/`` and ``\\`` both split),
    characters other than letters, digits, ``.``, ``-`` and ``_`` replaced by ``_``, no leading dot, at most
    ``limit`` characters; ``"upload"`` when nothing is left.

    Examples
    --------
    >>> safe_filename("../../etc/passwd"), safe_filename("..\\\\..\\\\win.ini"), safe_filename("cells 1.csv")
    ('passwd', 'win.ini', 'cells_1.csv')
    >>> safe_filename(".."), safe_filename("<script>.csv")
    ('upload', '_script_.csv')
    """
    base = re.split(r"[/\\]", str(name or ""))[-1].strip()
    base = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")
    base = base[-limit:]
    return base if base.strip("._") else "upload"


def _suffixes() -> tuple[str, ...]:
    from chemomet.tme.readers import TABLE_SUFFIXES

    return tuple(s for s in TABLE_SUFFIXES if s != ".h5ad")


def _check_type(head: bytes, suffix: str) -> None:
    """The content must match the suffix: Parquet starts with ``PAR1``; text formats must be UTF-8 text."""
    if suffix in (".parquet", ".pq"):
        if not head.startswith(b"PAR1"):
            raise InputError(f"cell table: content is not Parquet; allowed: a {suffix} file that starts with PAR1")
        return
    if b"\x00" in head:
        raise InputError(f"cell table: content is binary; allowed: a {suffix} text file (UTF-8)")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start < len(head) - 4:  # a character cut at the end of the first chunk is fine
            raise InputError(f"cell table: content is not UTF-8 text; allowed: a {suffix} text file") from None


def context(**outcome) -> dict:
    """The tissue template's context: the presets and conventions offered, and an upload's outcome.

    Examples
    --------
    >>> ctx = context(error="cell table: the file is empty")
    >>> ctx["conventions"], ctx["error"], "generic" in ctx["presets"]
    (('10HPF', '20HPF'), 'cell table: the file is empty', True)
    """
    from chemomet.tme.presets import available_presets

    base = {"presets": sorted(available_presets()), "conventions": ("10HPF", "20HPF"), "suffixes": _suffixes(),
            "area_unit_choices": AREA_UNIT_CHOICES, "summary": None, "map_png": None, "error": None,
            "filename": None, "record_id": None, "preset": "generic", "convention": "10HPF", "default_radius": "",
            "pixel_size": "", "area_units": ""}
    base.update(outcome)
    return base


def parse_pixel_size(text: str) -> float | None:
    """The pixel-size field of the form: µm per image pixel, or ``None`` when left empty.

    The rules are those of ``chemomet tmem --pixel-size``: a number in (0, 100] µm/px, needed when a column is in
    pixels (HALO's bounding boxes, QuPath's ``px`` columns and GeoJSON, or a generic table's ``x``, ``y`` in
    pixels) and refused when none is; the reader checks the range and the columns
    (:func:`chemomet.tme.readers.resolve_units`).

    Parameters
    ----------
    text : the field as typed (surrounding spaces ignored).

    Returns
    -------
    float or None
        µm per pixel, or ``None`` for an empty field.

    Raises
    ------
    chemomet.errors.InputError
        Text that is not a number.

    Examples
    --------
    >>> parse_pixel_size(" 0.4965 "), parse_pixel_size("")
    (0.4965, None)
    >>> try:
    ...     parse_pixel_size("0,5")
    ... except InputError as err:
    ...     print(err)
    pixel size = '0,5' is invalid; allowed: a number in (0, 100], with a decimal point (unit: µm/px)
    """
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise field_error("pixel size", text, "a number in (0, 100], with a decimal point", "µm/px") from None


def score_file(path: Path, preset: str, convention: str, default_radius_um: float | None,
               pixel_size_um: float | None = None, area_units: str | None = None) -> tuple[dict, str]:
    """Score a cell table: its summary (:meth:`chemomet.tme.scores.TmemResult.summary`) and a PNG map as a
    ``data:`` URI.

    Parameters
    ----------
    path : the cell table.
    preset : a column preset (``generic``, ``qupath``, ``halo``).
    convention : ``10HPF`` or ``20HPF``.
    default_radius_um : the radius given to every cell of a table without a size column, µm, or ``None``.
    pixel_size_um : µm per image pixel, for tables in pixels (as ``--pixel-size``), or ``None``.
    area_units : the unit of an area column whose header names none, ``um2``, ``mm2`` or ``px2`` (as
        ``--area-units``), or ``None``.

    Returns
    -------
    tuple
        the summary and the map (a ``data:image/png;base64,...`` URI).

    Raises
    ------
    chemomet.errors.InputError
        For anything wrong with the table or the options.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     p = pathlib.Path(tmp) / "cells.csv"
    ...     _ = p.write_text("x,y,radius,cell_type\\n0,0,5,Tumor\\n10,0,5,Macrophage\\n5,8,5,Endothelial\\n")
    ...     summary, png = score_file(p, "generic", "10HPF", None)
    >>> summary["tmem_score"], png.startswith("data:image/png;base64,")
    (1, True)
    """
    from chemomet.tme.plot import plot_map
    from chemomet.tme.readers import ReadOptions, read_cells_and_source
    from chemomet.tme.scores import TmemParams, score_tissue

    if convention not in ("10HPF", "20HPF"):
        raise InputError(f"convention = {convention[:20]!r} is invalid; allowed: 10HPF or 20HPF")
    opts = ReadOptions(preset=preset, default_radius_um=default_radius_um, pixel_size_um=pixel_size_um,
                       area_units=area_units or None)
    table, _ = read_cells_and_source(path, opts)
    result = score_tissue(table, TmemParams(convention=convention))
    summary = result.summary()
    with PLOT_LOCK:
        import matplotlib.pyplot as plt

        fig = plot_map(result, None, dpi=80, size_in=6.0)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80)
        plt.close(fig)
    return summary, "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


async def handle_upload(request, upload_dir: Path, limit: int, store=None) -> dict:
    """Read the tissue form of ``request``, stream the file to ``upload_dir`` under a random name, score it,
    delete it and record the score in ``store`` (when given); returns the template's outcome (``error`` set
    when something was wrong).

    Examples
    --------
    >>> import asyncio, inspect
    >>> inspect.iscoroutinefunction(handle_upload)
    True
    """
    from starlette.concurrency import run_in_threadpool

    from chemomet.tme.outputs import summary_json

    form = await request.form(max_files=1, max_fields=20, max_part_size=64 * 1024)
    upload = form.get("cells")
    preset = str(form.get("preset") or "generic")[:40]
    convention = str(form.get("convention") or "10HPF")[:10]
    radius_text = str(form.get("default_radius") or "").strip()[:40]
    pixel_text = str(form.get("pixel_size") or "").strip()[:40]
    area_units = str(form.get("area_units") or "")[:10]
    study_id = str(form.get("study_id") or "")
    out = {"preset": preset, "convention": convention, "default_radius": radius_text, "pixel_size": pixel_text,
           "area_units": area_units}
    target: Path | None = None
    try:
        if upload is None or isinstance(upload, str) or not upload.filename:
            raise InputError("cell table: no file given; allowed: a cell table (" + ", ".join(_suffixes()) + ")")
        shown = safe_filename(upload.filename)
        out["filename"] = shown
        suffix = Path(shown).suffix.lower()
        if suffix not in _suffixes():
            raise InputError(f"cell table: file type {suffix or shown!r} is invalid; allowed: "
                             + ", ".join(_suffixes()))
        if area_units not in dict(AREA_UNIT_CHOICES):
            raise InputError(f"area unit = {area_units!r} is invalid; allowed: "
                             + ", ".join(k for k, _ in AREA_UNIT_CHOICES if k) + " or empty (from the header)")
        pixel_size = parse_pixel_size(pixel_text)
        radius = None
        if radius_text:
            try:
                radius = float(radius_text)
            except ValueError:
                raise InputError(f"default radius = {radius_text!r} is invalid; allowed: a number > 0 "
                                 "(unit: µm)") from None
        upload_dir.mkdir(parents=True, exist_ok=True)
        target = upload_dir / f"{secrets.token_hex(12)}{suffix}"
        digest, size, first = hashlib.sha256(), 0, True
        with open(target, "xb") as fh:
            while chunk := await upload.read(CHUNK):
                if first:
                    _check_type(chunk[:4096], suffix)
                    first = False
                size += len(chunk)
                if size > limit:
                    raise InputError(f"cell table: larger than {limit} bytes")
                digest.update(chunk)
                fh.write(chunk)
        if size == 0:
            raise InputError("cell table: the file is empty; allowed: a cell table with a header and rows")
        summary, png = await run_in_threadpool(score_file, target, preset, convention, radius, pixel_size,
                                               area_units or None)
        out.update(summary=summary, map_png=png)
        if store is not None:
            rec = await run_in_threadpool(
                lambda: store.append("tissue", {"file": shown, "sha256": digest.hexdigest(), "bytes": size,
                                                "preset": preset, "convention": convention,
                                                "default_radius_um": radius, "pixel_size_um": pixel_size,
                                                "area_units": area_units or None},
                                     None, outputs_json=summary_json(summary), study_id=study_id, subject=shown,
                                     summary=f"TMEM {summary.get('tmem_score')} ({convention})"))
            out["record_id"] = rec.id
    except (InputError, ValueError) as err:
        out["error"] = str(err)
    finally:
        if upload is not None and not isinstance(upload, str):
            await upload.close()
        if target is not None:
            target.unlink(missing_ok=True)
    return out
