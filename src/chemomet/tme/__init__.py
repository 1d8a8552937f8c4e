"""Spatial analysis of cell-level tissue data: TMEM doorways, densities and the TMEM score.

Pipeline: :func:`read_cells` (CSV/Parquet/AnnData/QuPath GeoJSON → :class:`CellTable`, µm; columns through a preset of
:data:`PRESETS`, ``chemomet/data/tme_presets.toml``, or of a user file, :func:`read_presets`; every column's unit
from its header or stated, :func:`header_unit`) → :func:`score_tissue` (bounded contact graph on circles or cell
outlines → doorways → hot-spot high-power fields → raster areas → scores, with plausibility warnings,
:func:`contact_plausibility`) →
:meth:`TmemResult.summary` (JSON-ready), :func:`to_anndata` / :func:`write_anndata` (cells indexed by their object
ids), :func:`to_geojson` / :func:`write_geojson` (doorways and fields back to QuPath, in the input's pixels; GeoJSON
detections read by :func:`read_geojson_cells`), :func:`plot_map` (slide view and a zoomed panel per field).
:func:`generate_tissue` makes synthetic tissue with planted doorways and decoys. See ``docs/tme.md``.
"""

import importlib

_WHERE = {
    "tissue_areas": "areas",
    "contact_pairs": "contacts",
    "contact_pairs_bruteforce": "contacts",
    "table_contact_pairs": "contacts",
    "Doorways": "doorways",
    "contact_triangles": "doorways",
    "find_doorways": "doorways",
    "FieldSelection": "fields",
    "select_fields": "fields",
    "GeoJsonCells": "geojson",
    "read_geojson_cells": "geojson",
    "to_geojson": "geojson",
    "write_geojson": "geojson",
    "Polygons": "polygons",
    "make_polygons": "polygons",
    "parse_polygons": "polygons",
    "polygon_contact_pairs": "polygons",
    "polygon_distances": "polygons",
    "PRESETS": "presets",
    "ColumnMap": "presets",
    "read_presets": "presets",
    "ReadOptions": "readers",
    "read_cells": "readers",
    "CONVENTIONS": "scores",
    "TmemParams": "scores",
    "TmemResult": "scores",
    "compare_paired": "scores",
    "contact_plausibility": "scores",
    "poisson_ratio_ci": "scores",
    "score_tissue": "scores",
    "CellTable": "table",
    "make_table": "table",
    "header_unit": "units",
    "generate_tissue": "synthetic",
    "plot_map": "plot",
    "to_anndata": "outputs",
    "write_anndata": "outputs",
}
"""Where each public name lives (module of :mod:`chemomet.tme`). The package imports a module when one of its
names is first asked for: ``chemomet tmem`` then loads only what its options need (no GeoJSON module for a table,
no matplotlib without ``--map``, no anndata without ``--anndata-out``)."""

__all__ = [
    "CONVENTIONS",
    "PRESETS",
    "CellTable",
    "ColumnMap",
    "Doorways",
    "FieldSelection",
    "GeoJsonCells",
    "Polygons",
    "ReadOptions",
    "TmemParams",
    "TmemResult",
    "compare_paired",
    "contact_pairs",
    "contact_plausibility",
    "contact_pairs_bruteforce",
    "contact_triangles",
    "find_doorways",
    "generate_tissue",
    "header_unit",
    "make_polygons",
    "make_table",
    "parse_polygons",
    "plot_map",
    "poisson_ratio_ci",
    "polygon_contact_pairs",
    "polygon_distances",
    "read_cells",
    "read_geojson_cells",
    "read_presets",
    "score_tissue",
    "select_fields",
    "table_contact_pairs",
    "tissue_areas",
    "to_geojson",
    "to_anndata",
    "write_anndata",
    "write_geojson",
]


def __getattr__(name):
    if name in _WHERE:
        value = getattr(importlib.import_module(f"chemomet.tme.{_WHERE[name]}"), name)
        globals()[name] = value  # later look-ups do not come back here
        return value
    raise AttributeError(f"module 'chemomet.tme' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *__all__})
