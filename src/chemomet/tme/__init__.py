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

from chemomet.tme.areas import tissue_areas
from chemomet.tme.contacts import contact_pairs, contact_pairs_bruteforce, table_contact_pairs
from chemomet.tme.doorways import Doorways, contact_triangles, find_doorways
from chemomet.tme.fields import FieldSelection, select_fields
from chemomet.tme.geojson import GeoJsonCells, read_geojson_cells, to_geojson, write_geojson
from chemomet.tme.polygons import (
    Polygons,
    make_polygons,
    parse_polygons,
    polygon_contact_pairs,
    polygon_distances,
)
from chemomet.tme.presets import PRESETS, ColumnMap, read_presets
from chemomet.tme.readers import ReadOptions, read_cells
from chemomet.tme.scores import (
    CONVENTIONS,
    TmemParams,
    TmemResult,
    compare_paired,
    contact_plausibility,
    poisson_ratio_ci,
    score_tissue,
)
from chemomet.tme.table import CellTable, make_table
from chemomet.tme.units import header_unit

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


def __getattr__(name):  # heavy optional parts (pandas generator, matplotlib, anndata) load on first use
    if name == "generate_tissue":
        from chemomet.tme.synthetic import generate_tissue

        return generate_tissue
    if name == "plot_map":
        from chemomet.tme.plot import plot_map

        return plot_map
    if name in ("to_anndata", "write_anndata"):
        from chemomet.tme import outputs

        return getattr(outputs, name)
    raise AttributeError(name)
