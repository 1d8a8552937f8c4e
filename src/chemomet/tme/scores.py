"""Scores from one tissue: the TMEM score under a named convention, densities, and pre/post comparison.

:func:`score_tissue` is the one entry point: cell table in, :class:`TmemResult` out. Everything it reports:

- ``tmem_score``: doorways in the k densest high-power fields (``"10HPF"``: k = 10, Rohan 2014; ``"20HPF"``:
  k = 20, Robinson 2009), fields of ``hpf_area_mm2`` centred on the hot spots as described in
  :mod:`chemomet.tme.fields` (``n_hpf_found`` of the ``n_hpf_requested`` fields hold doorways);
- ``doorways_per_mm2_tumour``: all doorways in the section over the tumour area (:mod:`chemomet.tme.areas`);
- ``macrophage_density_per_mm2``: macrophages over tissue area; ``tie2_fraction`` and ``cd163_fraction``:
  fraction of macrophages positive, when measured;
- ``microvessel_density_per_mm2``: vessels (connected groups of endothelial cells in contact) over tissue
  area.

Warnings (``warnings``, one line each) flag what a pathologist should look at before trusting the numbers: a
default radius used for every cell, fewer fields found than asked for, a section smaller than k fields, a cell
type missing, and implausible contact statistics (almost no cell touching another, or almost every cell touching
ten or more, the usual sign of a radius or area read in the wrong unit; cells sharing their position).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from chemomet.errors import InputError, field_error
from chemomet.tme.areas import AREA_METHODS, Areas, tissue_areas
from chemomet.tme.doorways import COUNTING_RULES, Doorways, find_doorways
from chemomet.tme.fields import FIELD_METHODS, FieldSelection, select_fields
from chemomet.tme.table import ENDOTHELIAL, MACROPHAGE, TUMOUR, CellTable

CONVENTIONS = {"10HPF": 10, "20HPF": 20}
"""TMEM conventions (the Patient field ``tmem_convention``) and their number of high-power fields."""


@dataclass(frozen=True)
class TmemParams:
    """Settings of a TMEM analysis.

    Attributes
    ----------
    tolerance_um : contact tolerance between cell boundaries, µm (≥ 0).
    convention : ``"10HPF"`` or ``"20HPF"``.
    hpf_area_mm2 : area of one high-power field, mm² (0.2 by default; 0.2–0.24 at 400× depending on the
        microscope's field number).
    counting : doorway counting rule, see :mod:`chemomet.tme.doorways`.
    max_edge_um : widest gap between cells still counted as tissue when measuring areas, µm.
    field_centres : ``"hotspot"`` (default: fields centred where the count is highest), ``"doorway"`` (the former
        rule, centres on doorways only) or ``"grid"`` (a 10 µm grid search, for comparison); see
        :mod:`chemomet.tme.fields`.
    area_method : ``"raster"`` (default: occupancy raster with binary closing) or ``"delaunay"`` (triangulation,
        slower); see :mod:`chemomet.tme.areas`.
    area_raster_um : pixel size of the area raster, µm.

    Raises
    ------
    InputError : an unknown convention or counting rule, a non-finite or out-of-range number.

    Examples
    --------
    >>> p = TmemParams(convention="20HPF", hpf_area_mm2=0.24)
    >>> p.k, p.tolerance_um, p.field_centres, p.area_method  # fields, µm
    (20, 1.0, 'hotspot', 'raster')
    """

    tolerance_um: float = 1.0
    convention: str = "10HPF"
    hpf_area_mm2: float = 0.2
    counting: str = "macrophage"
    max_edge_um: float = 50.0
    field_centres: str = "hotspot"
    area_method: str = "raster"
    area_raster_um: float = 10.0

    def __post_init__(self):
        if self.convention not in CONVENTIONS:
            raise field_error("convention", self.convention, " | ".join(CONVENTIONS))
        if self.counting not in COUNTING_RULES:
            raise field_error("counting", self.counting, " | ".join(COUNTING_RULES))
        if self.field_centres not in FIELD_METHODS:
            raise field_error("field_centres", self.field_centres, " | ".join(FIELD_METHODS))
        if self.area_method not in AREA_METHODS:
            raise field_error("area_method", self.area_method, " | ".join(AREA_METHODS))
        for name, unit, lo_ok in (
            ("tolerance_um", "µm", 0.0),
            ("hpf_area_mm2", "mm²", None),
            ("max_edge_um", "µm", None),
            ("area_raster_um", "µm", None),
        ):
            v = getattr(self, name)
            try:
                v = float(v)
            except (TypeError, ValueError):
                raise field_error(name.rsplit("_", 1)[0], v, "a number", unit) from None
            ok = np.isfinite(v) and (v >= lo_ok if lo_ok is not None else v > 0)
            if not ok:
                raise field_error(
                    name.rsplit("_", 1)[0], v, "a number ≥ 0" if lo_ok is not None else "a number > 0", unit
                )
        if self.tolerance_um > 20:
            raise field_error("tolerance", self.tolerance_um, "0–20 µm (a gap between cell boundaries)", "µm")
        if self.hpf_area_mm2 > 100:
            raise field_error("hpf_area", self.hpf_area_mm2, "a number in (0, 100] (a microscope field)", "mm²")
        if not 0.5 <= self.area_raster_um <= 1000:
            raise field_error("area_raster", self.area_raster_um, "0.5–1000 µm", "µm")
        if self.max_edge_um > 10_000:
            raise field_error("max_edge", self.max_edge_um, "a number in (0, 10000]", "µm")

    @property
    def k(self) -> int:
        """Number of high-power fields of the convention."""
        return CONVENTIONS[self.convention]


@dataclass(frozen=True)
class TmemResult:
    """Everything measured on one tissue (see the module docstring for the definitions).

    Attributes
    ----------
    params : the settings used.
    table : the cells (µm).
    doorways : the doorways found (:class:`~chemomet.tme.doorways.Doorways`, positions in µm).
    fields : the chosen high-power fields (:class:`~chemomet.tme.fields.FieldSelection`, µm and mm²); fewer than
        k when no further non-overlapping field holds a doorway.
    areas : tissue and per-type areas, mm².
    vessel_of_cell : int64 per cell: vessel id of an endothelial cell, else −1.
    n_vessels : number of vessels (connected groups of endothelial cells in contact).
    warnings : one line per caveat (default radius, fewer fields than asked for, small section, a cell type
        missing, implausible contacts), also in the summary.
    contact_stats : the plausibility statistics of the contacts (see :func:`contact_plausibility`).

    Examples
    --------
    >>> from chemomet.tme import make_table, score_tissue
    >>> t = make_table([0.0, 10.0, 5.0, 30.0], [0.0, 0.0, 8.0, 0.0], [1, 2, 3, 0], [5.0, 5.0, 5.0, 5.0])
    >>> r = score_tissue(t)
    >>> r.tmem_score, r.n_vessels, r.vessel_of_cell.tolist()
    (1, 1, [-1, -1, 0, -1])
    >>> s = r.summary()
    >>> s["n_doorways"], s["hpf_area_mm2"], s["n_hpf_found"], s["n_hpf_requested"]  # doorways, mm², fields
    (1, 0.2, 1, 10)
    >>> round(s["tissue_area_mm2"], 8), s["area_method"]  # four 10 µm raster pixels, mm²
    (0.0004, 'raster')
    """

    params: TmemParams
    table: CellTable
    doorways: Doorways
    fields: FieldSelection
    areas: Areas
    vessel_of_cell: np.ndarray
    n_vessels: int
    warnings: list = field(default_factory=list)
    contact_stats: dict = field(default_factory=dict)

    @property
    def tmem_score(self) -> int:
        """Doorways in the k densest fields."""
        return self.fields.total

    def summary(self) -> dict:
        """JSON-ready summary: plain numbers, strings, lists and ``None`` (not measured / undefined).

        Keys carry their units: ``*_um`` µm, ``*_mm2`` mm², ``*_per_mm2`` per mm²; ``tmem_score`` and
        ``hpf_counts`` are doorways (in the fields found, per field); ``tie2_fraction``/``cd163_fraction`` are of
        the macrophages; ``fraction_cells_touching``/``fraction_cells_crowded`` of a sample of cells (see
        :func:`contact_plausibility`); ``column_units`` gives each input column's unit and ``units_note`` says
        where it came from.
        """
        t, p = self.table, self.params
        counts = t.counts()
        tumour_mm2 = float(self.areas.by_type_mm2[TUMOUR])
        tissue_mm2 = float(self.areas.tissue_mm2)
        mac = t.cell_type == MACROPHAGE
        n_mac = int(mac.sum())

        def frac(flags):
            if flags is None or n_mac == 0:
                return None
            return float(flags[mac].mean())

        def per(num, area):
            return float(num / area) if area > 0 else None

        return {
            "tmem_score": self.tmem_score,
            "tmem_convention": p.convention,
            "hpf_area_mm2": p.hpf_area_mm2,
            "hpf_shape": "circle",
            "hpf_radius_um": self.fields.radius_um,
            "hpf_centres_method": self.fields.method,
            "n_hpf_requested": p.k,
            "n_hpf_found": self.fields.n_found,
            "hpf_counts": [int(c) for c in self.fields.counts],
            "hpf_centres_um": [[float(a), float(b)] for a, b in self.fields.centres_um],
            "n_doorways": self.doorways.n,
            "n_contact_triangles": self.doorways.n_triangles,
            "doorway_counting": p.counting,
            "contact_tolerance_um": p.tolerance_um,
            "contact_geometry": "polygon" if t.polygons is not None else "circle",
            "doorways_per_mm2_tumour": per(self.doorways.n, tumour_mm2),
            "tumour_area_mm2": tumour_mm2,
            "tissue_area_mm2": tissue_mm2,
            "area_max_edge_um": p.max_edge_um,
            "area_method": self.areas.method,
            "area_raster_um": self.areas.raster_um,
            "macrophage_density_per_mm2": per(n_mac, tissue_mm2),
            "tie2_fraction": frac(t.tie2),
            "cd163_fraction": frac(t.cd163),
            "n_vessels": self.n_vessels,
            "microvessel_density_per_mm2": per(self.n_vessels, tissue_mm2),
            "n_cells": t.n,
            "n_tumour": counts["tumour"],
            "n_macrophage": counts["macrophage"],
            "n_endothelial": counts["endothelial"],
            "n_other": counts["other"],
            "n_ambiguous": t.n_ambiguous,
            "radius_source": t.radius_source,
            "default_radius_um": float(t.radius_um[0]) if t.radius_source == "default" else None,
            "column_units": dict(t.meta.get("column_units", {})),
            "units_note": t.meta.get("units_note"),
            "pixel_size_um": t.meta.get("pixel_size_um"),
            "fraction_cells_touching": self.contact_stats.get("fraction_touching"),
            "fraction_cells_crowded": self.contact_stats.get("fraction_crowded"),
            "source": t.source,
            "warnings": list(self.warnings),
        }


def _vessels(table: CellTable, pairs: np.ndarray) -> tuple[np.ndarray, int]:
    """Label endothelial cells by vessel: connected components of endothelial–endothelial contacts."""
    ct = table.cell_type
    endo = np.flatnonzero(ct == ENDOTHELIAL)
    vessel = np.full(table.n, -1, dtype=np.int64)
    if endo.size == 0:
        return vessel, 0
    local = np.full(table.n, -1, dtype=np.int64)
    local[endo] = np.arange(endo.size)
    ee = pairs[(ct[pairs[:, 0]] == ENDOTHELIAL) & (ct[pairs[:, 1]] == ENDOTHELIAL)] if pairs.size else pairs
    g = coo_matrix(
        (np.ones(ee.shape[0], dtype=np.int8), (local[ee[:, 0]], local[ee[:, 1]])),
        shape=(endo.size, endo.size),
    )
    n_comp, lab = connected_components(g, directed=False)
    vessel[endo] = lab
    return vessel, int(n_comp)


TOUCH_FEW = 0.05
"""Below this fraction of sampled cells touching any other, contacts are implausibly rare (warning)."""
CROWDED_MANY = 0.5
"""Above this fraction of sampled cells touching ten or more others, contacts are implausibly many (warning)."""
SAMPLE_CELLS = 4000


def contact_plausibility(table: CellTable, tolerance_um: float = 1.0, sample: int = SAMPLE_CELLS) -> dict:
    """Contact statistics that reveal a wrong radius (area or radius in the wrong unit, a poor default radius).

    In a section, most cells touch a neighbour (boundaries within the tolerance), and none touches ten or more:
    a disk has room for about six neighbours of its size. On an evenly spread sample of at most ``sample`` cells
    (all cells, not only the TMEM types) the nearest ten neighbours are looked up once.

    Parameters
    ----------
    table : the cells (µm).
    tolerance_um : contact tolerance between cell boundaries, µm.
    sample : most cells examined (evenly spread over the table's rows).

    Returns
    -------
    dict
        ``fraction_touching`` (cells touching at least one other), ``fraction_crowded`` (touching ten or
        more), ``fraction_stacked`` (sharing their exact position with another cell), ``n_sampled``; the
        fractions are ``None`` with fewer than 11 cells.

    Examples
    --------
    A 20 × 20 grid 10 µm apart: radius 5 µm touches the four nearest, 0.5 µm (an area of µm² scaled as if in
    pixels) touches nothing, 25 µm touches dozens:

    >>> import numpy as np
    >>> from chemomet.tme import make_table
    >>> gx, gy = np.meshgrid(np.arange(20) * 10.0, np.arange(20) * 10.0)
    >>> def stats(r):
    ...     t = make_table(gx.ravel(), gy.ravel(), np.ones(400, int), np.full(400, r), check_units=False)
    ...     s = contact_plausibility(t)
    ...     return s["fraction_touching"], s["fraction_crowded"]
    >>> stats(5.0), stats(0.5), stats(25.0)
    ((1.0, 0.0), (0.0, 0.0), (1.0, 1.0))
    """
    n = table.n
    if n < 11:
        return {"fraction_touching": None, "fraction_crowded": None, "fraction_stacked": None, "n_sampled": 0}
    m = min(n, int(sample))
    idx = np.unique(np.linspace(0, n - 1, m).astype(np.int64))
    r = table.radius_um
    # the nearest cells of the sample (CellTable.sample_neighbours: a search near the sample on large tables)
    d, nb = table.sample_neighbours(idx, k=11)
    # the query may return the cell itself anywhere among equal distances (stacked cells): drop it
    not_self = nb != idx[:, None]
    touch = (d <= r[idx][:, None] + r[nb] + tolerance_um) & not_self
    n_touch = touch.sum(axis=1)
    stacked = ((d == 0) & not_self).any(axis=1)
    return {
        "fraction_touching": float((n_touch >= 1).mean()),
        "fraction_crowded": float((n_touch >= 10).mean()),
        "fraction_stacked": float(stacked.mean()),
        "n_sampled": int(idx.size),
    }


def _plausibility_warnings(stats: dict, table: CellTable) -> list[str]:
    out = []
    ft, fc, fs = stats.get("fraction_touching"), stats.get("fraction_crowded"), stats.get("fraction_stacked")
    how = {
        "area": "radii from the area column: check its unit (--area-units) and the pixel size",
        "column": "check the radius column's unit (--radius-units) and the pixel size",
        "polygon": "check the outlines' unit",
        "default": "the default radius does not fit these cells: give a radius or area column",
    }[table.radius_source]
    if ft is not None and ft < TOUCH_FEW:
        out.append(
            f"implausible contacts: only {100 * ft:.1f}% of cells touch any other (expected most): the radii look "
            f"too small or the coordinates too large ({how}); doorways and the score are probably too low"
        )
    if fc is not None and fc > CROWDED_MANY:
        out.append(
            f"implausible contacts: {100 * fc:.0f}% of cells touch ten or more others (a cell has room for about "
            f"six): the radii look too large or the coordinates too small ({how}); doorways are probably too many"
        )
    if fs is not None and fs > 0.01:
        out.append(
            f"{100 * fs:.1f}% of sampled cells share their exact position with another cell (duplicated rows?)"
        )
    return out


def score_tissue(table: CellTable, params: TmemParams | None = None) -> TmemResult:
    """Find doorways, choose the densest fields and compute every score for one tissue.

    Parameters
    ----------
    table : validated cells (µm).
    params : analysis settings; defaults of :class:`TmemParams` when ``None``.

    Returns
    -------
    TmemResult
        the TMEM score (doorways in the k densest fields), densities per mm², the per-cell results and the
        warnings (see the module docstring).

    Raises
    ------
    InputError : a degenerate table (cells stacked on one point) whose contact search would exceed the pair
        budget, refused before any pair is built (see :mod:`chemomet.tme.contacts`).

    Examples
    --------
    One doorway (a tumour cell, a macrophage and an endothelial cell in contact, radius 5 µm) and a stromal cell:

    >>> from chemomet.tme import make_table
    >>> t = make_table([0.0, 10.0, 5.0, 30.0], [0.0, 0.0, 8.0, 0.0], [1, 2, 3, 0], [5.0, 5.0, 5.0, 5.0])
    >>> r = score_tissue(t, TmemParams(convention="10HPF", hpf_area_mm2=0.2, tolerance_um=1.0))
    >>> r.tmem_score, r.fields.counts.tolist()  # doorways in the 10 densest fields, per field
    (1, [1])
    >>> r.warnings[0]
    '1 of the 10 fields asked for holds doorways (the score counts every doorway of the section)'
    """
    p = params or TmemParams()
    stats = contact_plausibility(table, p.tolerance_um)
    table.release_tree()  # the grid and trees of the unit check and the plausibility sample: not needed any more
    doors = find_doorways(table, p.tolerance_um, p.counting)
    fields = select_fields(doors.xy_um, p.k, p.hpf_area_mm2, method=p.field_centres)
    areas = tissue_areas(
        table.x_um, table.y_um, table.cell_type, p.max_edge_um, method=p.area_method, raster_um=p.area_raster_um
    )
    vessel_of_cell, n_vessels = _vessels(table, doors.pairs)
    warnings = []
    if table.radius_source == "default":
        lookalikes = table.meta.get("size_lookalikes")
        unused = (
            f" (the table has {', '.join(repr(c) for c in lookalikes)}, named like a size column but not read as "
            "one: --radius-col or --area-col reads it)"
            if lookalikes
            else ""
        )
        warnings.append(
            f"no radius, area or outline column{unused}: every cell was given the default radius of "
            f"{float(table.radius_um[0]):g} µm (--default-radius); contacts, doorways and the score depend on "
            "this choice"
        )
    if doors.n == 0:
        warnings.append(f"no doorway in the section: the score is 0 (none of the {p.k} fields asked for is found)")
    elif fields.n_found < p.k:
        left = doors.n - fields.total
        tail = (
            "the score counts every doorway of the section"
            if left == 0
            else f"{left} doorways lie where no further non-overlapping field fits"
        )
        verb = "holds" if fields.n_found == 1 else "hold"
        warnings.append(f"{fields.n_found} of the {p.k} fields asked for {verb} doorways ({tail})")
    if areas.tissue_mm2 < p.k * p.hpf_area_mm2:
        warnings.append(
            f"tissue area {areas.tissue_mm2:.3g} mm² is smaller than {p.k} fields of {p.hpf_area_mm2} mm²: the "
            f"{p.convention} convention assumes a larger section"
        )
    if areas.method == "raster" and areas.raster_um is not None and areas.raster_um > p.area_raster_um:
        warnings.append(
            f"areas were measured on a coarser {areas.raster_um:g} µm raster than the {p.area_raster_um:g} µm asked "
            "(the cells span a very large extent, or --max-edge is wide for the raster): densities are approximate"
        )
    counts = table.counts()
    for name in ("tumour", "macrophage", "endothelial"):
        if counts[name] == 0:
            warnings.append(f"no {name} cells in the table: check the class names or gating thresholds")
    warnings += _plausibility_warnings(stats, table)
    return TmemResult(p, table, doors, fields, areas, vessel_of_cell, n_vessels, warnings, stats)


def poisson_ratio_ci(
    pre_count: int,
    post_count: int,
    pre_exposure: float = 1.0,
    post_exposure: float = 1.0,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """Rate ratio ``(post/post_exposure) / (pre/pre_exposure)`` with an exact Poisson interval.

    Conditional on the total ``n = pre + post``, ``post ~ Binomial(n, π)`` with
    ``π = R·E_post / (R·E_post + E_pre)``; the Clopper–Pearson interval on ``π`` maps to the ratio ``R``.

    Parameters
    ----------
    pre_count, post_count : event counts (doorways), integers ≥ 0.
    pre_exposure, post_exposure : the exposures the counts were made over (e.g. tumour area, mm², or number of
        fields), > 0; only their ratio matters.
    level : confidence level, in (0, 1).

    Returns
    -------
    ``(ratio, low, high)``; ``nan`` for an undefined ratio (both counts 0), ``inf`` for an unbounded one.

    Examples
    --------
    10 doorways before and 25 after treatment, in the same number of fields:

    >>> ratio, lo, hi = poisson_ratio_ci(10, 25)
    >>> ratio, round(float(lo), 3), round(float(hi), 3)
    (2.5, 1.16, 5.833)
    >>> poisson_ratio_ci(0, 3)[0]  # no baseline doorway: unbounded
    inf
    """
    a, b = int(pre_count), int(post_count)
    if a < 0 or b < 0:
        raise field_error("count", min(a, b), "an integer ≥ 0")
    if not (0 < level < 1):
        raise field_error("level", level, "a number in (0, 1)")
    if not (pre_exposure > 0 and post_exposure > 0):
        raise field_error("exposure", min(pre_exposure, post_exposure), "a number > 0", "mm²")
    from scipy import stats  # here, not at import: scipy.stats takes half a second to import

    scale = pre_exposure / post_exposure
    alpha = 1 - level
    n = a + b
    if n == 0:
        return float("nan"), 0.0, float("inf")
    lo_p = stats.beta.ppf(alpha / 2, b, a + 1) if b > 0 else 0.0
    hi_p = stats.beta.ppf(1 - alpha / 2, b + 1, a) if a > 0 else 1.0

    def odds(q):
        return float("inf") if q >= 1 else q / (1 - q) * scale

    ratio = float("inf") if a == 0 else (b / post_exposure) / (a / pre_exposure)
    return ratio, odds(lo_p), odds(hi_p)


def _json_num(v: float):
    return None if not np.isfinite(v) else float(v)


def compare_paired(pre: dict, post: dict, level: float = 0.95) -> dict:
    """Compare paired pre- and post-treatment samples of the same patient.

    Parameters
    ----------
    pre, post : summaries from :meth:`TmemResult.summary` (same convention and field area).
    level : confidence level of the intervals.

    Returns
    -------
    dict with the fold change of the TMEM score (same number of fields, so the exposure cancels) and of the
    doorways per mm² of tumour (exposure: tumour areas), each with its exact Poisson interval. ``None`` marks
    an unbounded or undefined value (a zero baseline).

    Raises
    ------
    InputError : the samples were scored under different conventions or field areas (mm²).

    Examples
    --------
    >>> from chemomet.tme import make_table
    >>> t = make_table([0.0, 10.0, 5.0, 30.0], [0.0, 0.0, 8.0, 0.0], [1, 2, 3, 0], [5.0, 5.0, 5.0, 5.0])
    >>> s = score_tissue(t).summary()
    >>> c = compare_paired(s, s)
    >>> c["tmem_fold_change"], c["tmem_score_pre"], c["tmem_score_post"]
    (1.0, 1, 1)
    """
    if pre["tmem_convention"] != post["tmem_convention"] or pre["hpf_area_mm2"] != post["hpf_area_mm2"]:
        raise InputError(
            f"paired samples use different conventions ({pre['tmem_convention']}, {pre['hpf_area_mm2']} mm² "
            f"vs {post['tmem_convention']}, {post['hpf_area_mm2']} mm²); allowed: the same convention and "
            "field area"
        )
    r, lo, hi = poisson_ratio_ci(pre["tmem_score"], post["tmem_score"], level=level)
    out = {
        "tmem_convention": pre["tmem_convention"],
        "tmem_score_pre": pre["tmem_score"],
        "tmem_score_post": post["tmem_score"],
        "tmem_fold_change": _json_num(r),
        "tmem_fold_change_ci": [_json_num(lo), _json_num(hi)],
        "level": level,
        "method": "exact conditional binomial (Clopper-Pearson) interval for a Poisson rate ratio",
    }
    ta, tb = pre["tumour_area_mm2"], post["tumour_area_mm2"]
    if ta > 0 and tb > 0:
        r, lo, hi = poisson_ratio_ci(pre["n_doorways"], post["n_doorways"], ta, tb, level)
        out["density_fold_change"] = _json_num(r)
        out["density_fold_change_ci"] = [_json_num(lo), _json_num(hi)]
    else:
        out["density_fold_change"] = None
        out["density_fold_change_ci"] = [None, None]
    return out
