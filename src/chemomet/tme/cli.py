"""``chemomet tmem``: a cell table in, a reproducible TMEM score out.

This module defines the command function only; :mod:`chemomet.cli` registers it and turns every
:class:`~chemomet.errors.InputError` into one line on standard error and exit code 2.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from chemomet.errors import InputError, field_error
from chemomet.tme.outputs import check_output_path, summary_json, write_anndata, write_json
from chemomet.tme.readers import DEFAULT_OTHER_CLASSES, ReadOptions, read_cells_and_source
from chemomet.tme.scores import TmemParams, compare_paired, score_tissue


def _pairs(items: list[str], what: str, numeric: bool) -> dict:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise field_error(what, item, "MARKER=VALUE, e.g. CD68=0.5")
        k, v = item.split("=", 1)
        k = k.strip().upper()
        if numeric:
            try:
                v = float(v)
            except ValueError:
                raise field_error(f"{what} {k}", v, "a number (intensity threshold)") from None
        out[k] = v.strip() if isinstance(v, str) else v
    return out


def _no_hugepage_advice() -> None:
    """Turn off NumPy's transparent-huge-page advice for this process (as ``NUMPY_MADVISE_HUGEPAGE=0`` would),
    unless that variable is set.

    NumPy asks the kernel for huge pages on every large array. Where the kernel's THP ``defrag`` setting is
    ``madvise`` (a common default), each first touch of such an array may then compact memory synchronously: on
    the 2-core development machine a 10⁶-cell command spent about 0.9 s in the kernel with the advice and 0.3–0.45
    s without (the arrays of a scoring run are many and short-lived). The results do not depend on it; a
    long-lived process importing :mod:`chemomet.tme` keeps NumPy's setting."""
    if "NUMPY_MADVISE_HUGEPAGE" in os.environ:
        return
    try:
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:  # another NumPy layout: keep its default
        return
    _set_madvise_hugepage(False)


MALLOC_TOP_PAD = 256 << 20
"""Freed memory glibc's malloc keeps at the top of its heap for the command (:func:`_keep_freed_memory`), bytes."""
MALLOC_MMAP_THRESHOLD = 32 << 20
"""Blocks up to this size come from malloc's heap rather than their own mapping (glibc's largest allowed value)."""


def _keep_freed_memory() -> None:
    """Let glibc's malloc reuse freed memory instead of returning it to the kernel at once, for this process (as
    ``MALLOC_TOP_PAD_=268435456 MALLOC_MMAP_THRESHOLD_=33554432`` would), unless either variable is set.

    A scoring run makes and drops many arrays of a few MB. By default malloc maps the first ones afresh and trims
    the top of its heap on every free, so their pages are faulted in and zeroed by the kernel again and again: on
    the 2-core development machine a 10⁶-cell command spent a median 0.29 s in the kernel by default and 0.16–0.23
    s with these settings (6 runs each), its peak memory unchanged (352 vs 356 MiB). Nothing is done off glibc
    (no ``mallopt``); the results do not depend on it."""
    if sys.platform != "linux" or {"MALLOC_TOP_PAD_", "MALLOC_MMAP_THRESHOLD_"} & set(os.environ):
        return
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt(-2, MALLOC_TOP_PAD)  # M_TOP_PAD
    mallopt(-3, MALLOC_MMAP_THRESHOLD)  # M_MMAP_THRESHOLD


def _human(summary: dict) -> str:
    s = summary

    def fmt(v, unit=""):
        return "not measured" if v is None else f"{v:.4g}{unit}"

    size = {"column": "the radius column", "area": "the area column", "polygon": "the outlines"}.get(
        s["radius_source"], f"the default of {s['default_radius_um'] or 0:g} µm for every cell (no size column)"
    )
    lines = [
        f"TMEM score: {s['tmem_score']} ({s['tmem_convention']}, circular fields of {s['hpf_area_mm2']} mm², "
        f"{s['hpf_centres_method']}-centred; {s['n_hpf_found']} of {s['n_hpf_requested']} fields found; counts "
        f"per field {s['hpf_counts']})",
        f"doorways: {s['n_doorways']} in total ({s['n_contact_triangles']} contact triangles, counted per "
        f"{s['doorway_counting']}); {fmt(s['doorways_per_mm2_tumour'], ' /mm² of tumour')}",
        f"cells: {s['n_cells']} (tumour {s['n_tumour']}, macrophage {s['n_macrophage']}, endothelial "
        f"{s['n_endothelial']}, other {s['n_other']}); tissue {s['tissue_area_mm2']:.4g} mm², tumour "
        f"{s['tumour_area_mm2']:.4g} mm²",
        f"macrophage density: {fmt(s['macrophage_density_per_mm2'], ' /mm²')}; TIE2+ fraction: "
        f"{fmt(s['tie2_fraction'])}; CD163+ fraction: {fmt(s['cd163_fraction'])}",
        f"microvessel density: {fmt(s['microvessel_density_per_mm2'], ' /mm²')} ({s['n_vessels']} vessels)",
        f"units: {s['units_note'] or 'µm'}; cell radius from {size}",
    ]
    if "comparison" in s:
        c = s["comparison"]
        lo, hi = c["tmem_fold_change_ci"]
        lines.append(
            f"post/pre TMEM fold change: {fmt(c['tmem_fold_change'])} ({int(c['level'] * 100)}% CI "
            f"{fmt(lo)} to {'unbounded' if hi is None else fmt(hi)}); baseline score "
            f"{c['tmem_score_pre']}"
        )
    lines += [f"warning: {w}" for w in s["warnings"]]
    return "\n".join(lines)


def tmem(
    cells: Path = typer.Argument(
        ..., help="Cell table: .csv/.tsv/.txt, .parquet, .h5ad (AnnData) or .geojson/.json (QuPath detections)."
    ),
    json_: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    toml_: bool = typer.Option(
        False, "--toml", help="Print tmem_score/tmem_convention lines for a patient file."
    ),
    out: Path | None = typer.Option(None, "--out", help="Also write the JSON summary to this file."),
    map_: Path | None = typer.Option(
        None, "--map", help="Write a PNG map of cells, doorways and fields, with a zoomed panel per chosen field."
    ),
    geojson_out: Path | None = typer.Option(
        None,
        "--geojson-out",
        help="Write the doorways (points) and chosen fields (circles) as QuPath-importable GeoJSON annotations, "
        "in the input's pixel coordinates.",
    ),
    geojson_cells: bool = typer.Option(
        False, "--geojson-cells", help="With --geojson-out, also write every cell as a detection with TMEM flags."
    ),
    geojson_pixel_size: float | None = typer.Option(
        None,
        "--geojson-pixel-size",
        help="µm per image pixel for --geojson-out when the cells were read in µm (QuPath objects are in pixels).",
    ),
    geometry: str = typer.Option(
        "cell", "--geometry", help="GeoJSON input: outline read, cell (the cell boundary) | nucleus."
    ),
    anndata_out: Path | None = typer.Option(
        None,
        "--anndata-out",
        help="Write an .h5ad with per-cell flags (obs) and the scores (uns['chemomet_tmem']).",
    ),
    preset: str = typer.Option(
        "generic", "--preset", help="Column preset: generic | qupath | halo, or a name from --presets."
    ),
    presets_file: Path | None = typer.Option(
        None,
        "--presets",
        help="TOML file of further column presets (the layout of chemomet/data/tme_presets.toml); "
        "their names are accepted by --preset.",
    ),
    convention: str = typer.Option("10HPF", "--convention", help="TMEM convention: 10HPF | 20HPF."),
    hpf_area: float = typer.Option(0.2, "--hpf-area", help="Area of one high-power field, mm²."),
    tolerance: float = typer.Option(
        1.0, "--tolerance", help="Contact tolerance between cell boundaries, µm."
    ),
    counting: str = typer.Option(
        "macrophage", "--counting", help="Doorway counting: macrophage | triangle | cluster."
    ),
    max_edge: float = typer.Option(
        50.0, "--max-edge", help="Widest gap between cells still counted as tissue (areas), µm."
    ),
    field_centres: str = typer.Option(
        "hotspot",
        "--field-centres",
        help="Where fields may be centred: hotspot (anywhere, where the count is highest; exact) | doorway "
        "(on doorways only, the former rule) | grid (a 10 µm grid search, for comparison).",
    ),
    area_method: str = typer.Option(
        "raster", "--area-method", help="Tissue area: raster (occupancy raster, closed; fast) | delaunay."
    ),
    area_raster: float = typer.Option(10.0, "--area-raster", help="Pixel size of the area raster, µm."),
    units: str | None = typer.Option(
        None,
        "--units",
        help="Unit of the x/y columns when their headers name none: um | mm | px (default: the preset's, else um).",
    ),
    radius_units: str | None = typer.Option(
        None, "--radius-units", help="Unit of the radius column when its header names none: um | mm | px."
    ),
    area_units: str | None = typer.Option(
        None, "--area-units", help="Unit of the area column when its header names none: um2 | mm2 | px2."
    ),
    pixel_size: float | None = typer.Option(
        None, "--pixel-size", help="µm per image pixel; required when a column is in px (implies --units px)."
    ),
    x_col: str | None = typer.Option(None, "--x-col", help="Column of centroid x."),
    y_col: str | None = typer.Option(None, "--y-col", help="Column of centroid y."),
    label_col: str | None = typer.Option(None, "--label-col", help="Column of cell-type labels."),
    radius_col: str | None = typer.Option(None, "--radius-col", help="Column of cell radius."),
    area_col: str | None = typer.Option(None, "--area-col", help="Column of cell area."),
    polygon_col: str | None = typer.Option(
        None,
        "--polygon-col",
        help="Column of cell outlines: WKT 'POLYGON ((x y, ...))' or JSON [[x, y], ...], centroid units; "
        "contact is then decided on the outlines.",
    ),
    default_radius: float | None = typer.Option(
        None,
        "--default-radius",
        help="Give every cell this radius (µm) when the table has no radius, area or outline column "
        "(otherwise refused); the summary says so.",
    ),
    tumour_class: str = typer.Option("Tumor", "--tumour-class", help="Label of tumour (MENA-high) cells."),
    macrophage_class: str = typer.Option("Macrophage", "--macrophage-class", help="Label of macrophages."),
    endothelial_class: str = typer.Option(
        "Endothelial", "--endothelial-class", help="Label of endothelial cells."
    ),
    other_class: list[str] = typer.Option(
        [], "--other-class", help="Extra label counted as other (repeatable)."
    ),
    ignore_unknown_labels: bool = typer.Option(
        False, "--ignore-unknown-labels", help="Count unknown labels as other."
    ),
    gate: list[str] = typer.Option(
        [], "--gate", help="MARKER=THRESHOLD (MENA, CD68, CD31 together; TIE2, CD163 optional). Repeatable."
    ),
    marker_col: list[str] = typer.Option([], "--marker-col", help="MARKER=COLUMN override (repeatable)."),
    spatial_key: str = typer.Option("spatial", "--spatial-key", help="obsm key of the coordinates (.h5ad)."),
    baseline: Path | None = typer.Option(
        None, "--baseline", help="Paired pre-treatment sample (same options); adds the post/pre fold change."
    ),
    no_unit_check: bool = typer.Option(
        False, "--no-unit-check", help="Skip the plausibility check of units."
    ),
) -> None:
    """Find TMEM doorways in a cell table and report the TMEM score.

    A doorway is a tumour cell, a macrophage and an endothelial cell pairwise in contact (centroid distance
    ≤ r_i + r_j + tolerance, µm; with --polygon-col, outlines within the tolerance or overlapping); one
    doorway is counted per macrophage by default. The TMEM score is the number of doorways in the k densest
    non-overlapping circular high-power fields (k = 10 or 20), each centred where it holds the most doorways.
    Every column's unit comes from its header, an option or the preset (pixels need --pixel-size). Bad input
    gives one line on standard error and exit code 2; output files are written atomically.
    """
    _no_hugepage_advice()
    _keep_freed_memory()
    opts = ReadOptions(
        preset=preset.strip().lower(),
        x_col=x_col,
        y_col=y_col,
        label_col=label_col,
        radius_col=radius_col,
        area_col=area_col,
        polygon_col=polygon_col,
        units=units,
        radius_units=radius_units,
        area_units=area_units,
        pixel_size_um=pixel_size,
        tumour_class=tumour_class,
        macrophage_class=macrophage_class,
        endothelial_class=endothelial_class,
        other_classes=tuple(DEFAULT_OTHER_CLASSES) + tuple(other_class),
        ignore_unknown_labels=ignore_unknown_labels,
        gates=_pairs(gate, "gate", True),
        marker_columns=_pairs(marker_col, "marker-col", False),
        default_radius_um=default_radius,
        spatial_key=spatial_key,
        geometry=geometry.strip().lower(),
        check_units=not no_unit_check,
        presets_file=presets_file,
    )
    params = TmemParams(
        tolerance_um=tolerance,
        convention=convention.strip().upper(),
        hpf_area_mm2=hpf_area,
        counting=counting.strip().lower(),
        max_edge_um=max_edge,
        field_centres=field_centres.strip().lower(),
        area_method=area_method.strip().lower(),
        area_raster_um=area_raster,
    )
    outputs = []
    if map_ is not None:
        outputs.append(check_output_path(map_, (".png",), "--map"))
    if anndata_out is not None:
        outputs.append(check_output_path(anndata_out, (".h5ad",), "--anndata-out"))
    if out is not None:
        outputs.append(check_output_path(out, (".json",), "--out"))
    if geojson_out is not None:
        outputs.append(check_output_path(geojson_out, (".geojson", ".json"), "--geojson-out"))
    elif geojson_cells or geojson_pixel_size is not None:
        raise InputError("--geojson-cells and --geojson-pixel-size need --geojson-out PATH; allowed: add it")
    if len({p.resolve() for p in outputs}) < len(outputs):
        raise InputError("two outputs have the same path; allowed: a different file name for each")
    resolved = {Path(cells).resolve(), *([Path(baseline).resolve()] if baseline else [])}
    if any(p.resolve() in resolved for p in outputs):
        raise InputError("an output path is the same as an input file; allowed: a different file name")

    table, adata = read_cells_and_source(cells, opts)
    result = score_tissue(table, params)
    summary = result.summary()
    geojson_doc = None
    if geojson_out is not None:  # built before any file is written: a unit problem leaves nothing behind
        from chemomet.tme.geojson import to_geojson

        geojson_doc = to_geojson(result, pixel_size_um=geojson_pixel_size, include_cells=geojson_cells)
    if baseline is not None:
        pre_table, _ = read_cells_and_source(baseline, opts)
        pre = score_tissue(pre_table, params).summary()
        summary["comparison"] = compare_paired(pre, summary)

    written: list[Path] = []
    try:
        if map_ is not None:
            from chemomet.tme.plot import plot_map

            existed = map_.exists()
            plot_map(result, map_)
            if not existed:
                written.append(map_)
        if anndata_out is not None:
            existed = anndata_out.exists()
            write_anndata(result, anndata_out, adata)
            if not existed:
                written.append(anndata_out)
        if geojson_doc is not None:
            from chemomet.tme.geojson import write_geojson_doc

            existed = geojson_out.exists()
            write_geojson_doc(geojson_doc, geojson_out)
            if not existed:
                written.append(geojson_out)
        if out is not None:
            write_json(summary, out)
    except OSError as err:
        for p in written:
            p.unlink(missing_ok=True)
        raise InputError(f"cannot write output: {' '.join(str(err).split())}") from None

    if json_:
        sys.stdout.write(summary_json(summary))
    elif toml_:
        sys.stdout.write(
            f'tmem_score = {summary["tmem_score"]}\ntmem_convention = "{summary["tmem_convention"]}"\n'
        )
    else:
        typer.echo(_human(summary))
