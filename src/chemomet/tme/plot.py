"""A PNG map of the tissue: the slide view (cells by type, doorways ringed, the chosen high-power fields outlined,
ranked) and a zoomed panel per chosen field, where single cells (at their true size or outline), contacts and
doorways can be seen."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from chemomet.tme.outputs import atomic_write
from chemomet.tme.scores import TmemResult
from chemomet.tme.table import ENDOTHELIAL, MACROPHAGE, OTHER, TUMOUR

COLOURS = {OTHER: "#c8c8c8", TUMOUR: "#d9a441", MACROPHAGE: "#2e9e44", ENDOTHELIAL: "#d62728"}
FIELD_COLOUR = "#1f4e9e"
NAMES = {OTHER: "other", TUMOUR: "tumour", MACROPHAGE: "macrophage", ENDOTHELIAL: "endothelial"}


PANEL_MARGIN = 1.15
"""Half-width of a zoomed panel, in field radii."""
PANEL_COLUMNS = 4
"""Zoomed panels per row."""
SCALE_BAR_UM = 50.0
"""Length of the scale bar of the zoomed panels, µm."""


def plot_map(
    result: TmemResult,
    path: str | Path | None = None,
    *,
    dpi: int = 150,
    size_in: float = 9.0,
    panels: bool | int = True,
):
    """Draw the tissue map and a zoomed panel per chosen field; write it to ``path`` (PNG, atomically) when given.

    Coordinates are in µm with y pointing down (image convention). The slide view (top) draws cells as dots
    coloured by type, rings each counted doorway in black and outlines each chosen field (its area in mm²) as a
    blue circle labelled with its rank and count (doorways per field). Below it, one zoomed panel per chosen
    field, best first (``PANEL_MARGIN`` field radii on each side of the centre, 4 panels a row): every cell at its
    true size (its circle of ``radius_um``, or its outline when contact was decided on outlines), the contacts of
    each contact triangle as black lines, the counted doorways ringed, the field's circle, a 50 µm scale bar and
    the title "field RANK: N doorways".

    Parameters
    ----------
    result : the analysis (:func:`~chemomet.tme.scores.score_tissue`).
    path : PNG file to write; ``None``: only return the figure.
    dpi : resolution of the PNG, dots per inch.
    size_in : width of the figure, inches; the slide view's height follows the section's shape (0.35 to 1 times
        the width) and the panels, 4 a row, add rows below.
    panels : ``True``: a zoomed panel for every field found; an integer: at most that many (best first);
        ``False`` or 0: the slide view only.

    Returns
    -------
    matplotlib.figure.Figure
        the map (closed after writing when ``path`` is given); ``fig.axes[0]`` is the slide view, then one axes per
        panel, titled ``"field RANK: N doorways"``.

    Examples
    --------
    >>> from chemomet.tme import make_table, score_tissue
    >>> t = make_table([0.0, 10.0, 5.0, 900.0], [0.0, 0.0, 8.0, 0.0], [1, 2, 3, 0], [5.0, 5.0, 5.0, 5.0])
    >>> fig = plot_map(score_tissue(t))
    >>> len(fig.axes), fig.axes[1].get_title()  # the slide view and one zoomed panel
    (2, 'field 1: 1 doorway')
    >>> [round(float(v), 1) for v in fig.axes[1].get_xlim()]  # centred on the field, ±1.15 radii (µm)
    [-280.2, 300.2]
    >>> plot_map(score_tissue(t), "map.png")  # doctest: +SKIP
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    f = result.fields
    n_panels = f.n_found if panels is True else max(0, min(int(panels), f.n_found))
    ncols = min(PANEL_COLUMNS, n_panels) if n_panels else 1
    nrows = -(-n_panels // ncols) if n_panels else 0
    cell_in = size_in / PANEL_COLUMNS
    slide_in = size_in * float(np.clip(_aspect(result), 0.35, 1.0)) + 0.8  # the slide's shape, room for labels
    fig = plt.figure(figsize=(size_in, slide_in + nrows * cell_in * 1.12))
    heights = [slide_in] + [cell_in * 1.12] * nrows
    grid = fig.add_gridspec(1 + nrows, ncols, height_ratios=heights)
    ax = fig.add_subplot(grid[0, :])
    _slide(ax, result)
    for k in range(n_panels):
        _panel(fig.add_subplot(grid[1 + k // ncols, k % ncols]), result, k)
    fig.tight_layout()
    if path is not None:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"))
        plt.close(fig)
    return fig


def _aspect(result: TmemResult) -> float:
    """Height over width of what the slide view shows (cells and fields), µm/µm."""
    t, f = result.table, result.fields
    lo = np.array([t.x_um.min(), t.y_um.min()]) if t.n else np.zeros(2)
    hi = np.array([t.x_um.max(), t.y_um.max()]) if t.n else np.ones(2)
    if f.n_found:
        lo = np.minimum(lo, f.centres_um.min(axis=0) - f.radius_um)
        hi = np.maximum(hi, f.centres_um.max(axis=0) + f.radius_um)
    w, h = np.maximum(hi - lo, 1e-9)
    return float(h / w)


def _slide(ax, result: TmemResult) -> None:
    from matplotlib.patches import Circle

    t = result.table
    dot = float(np.clip(3e4 / max(t.n, 1), 0.02, 6.0))
    for code in (OTHER, TUMOUR, ENDOTHELIAL, MACROPHAGE):
        m = t.cell_type == code
        if m.any():
            ax.scatter(
                t.x_um[m],
                t.y_um[m],
                s=dot * (3 if code == MACROPHAGE else 1),
                c=COLOURS[code],
                linewidths=0,
                rasterized=True,
                label=f"{NAMES[code]} ({int(m.sum())})",
            )
    d = result.doorways
    if d.n:
        ax.scatter(
            d.xy_um[:, 0],
            d.xy_um[:, 1],
            s=max(12.0, dot * 25),
            facecolors="none",
            edgecolors="black",
            linewidths=0.8,
            label=f"doorways ({d.n})",
        )
    f = result.fields
    for rank, (c, n) in enumerate(zip(f.centres_um, f.counts, strict=True), start=1):
        ax.add_patch(Circle(c, f.radius_um, fill=False, edgecolor=FIELD_COLOUR, linewidth=1.2))
        ax.annotate(
            f"{rank}: {int(n)}",
            c + np.array([0, -f.radius_um]),
            color=FIELD_COLOUR,
            fontsize=8,
            ha="center",
            va="bottom",
        )
    ax.set_aspect("equal")
    ax.invert_yaxis()
    ax.set_xlabel("x (µm)")
    ax.set_ylabel("y (µm)")
    p = result.params
    ax.set_title(
        f"TMEM score {result.tmem_score} ({p.convention}, fields of {p.hpf_area_mm2} mm²); "
        f"{d.n} doorways in total",
        fontsize=10,
    )
    ax.legend(loc="upper right", fontsize=7, markerscale=3, framealpha=0.8)


def _panel(ax, result: TmemResult, k: int) -> None:
    """Zoomed view of field ``k`` (0-based rank): cells at true size, contact-triangle edges, doorways, field."""
    from matplotlib.collections import EllipseCollection, LineCollection, PolyCollection
    from matplotlib.patches import Circle

    t, d, f = result.table, result.doorways, result.fields
    c = f.centres_um[k]
    h = PANEL_MARGIN * f.radius_um
    pad = float(t.radius_um.max()) if t.n else 0.0
    inside = np.flatnonzero((np.abs(t.x_um - c[0]) <= h + pad) & (np.abs(t.y_um - c[1]) <= h + pad))
    colours = np.array([COLOURS[int(code)] for code in range(4)], dtype=object)[t.cell_type[inside]]
    if t.polygons is not None and inside.size:
        poly = t.polygons
        verts = [poly.xy[poly.offsets[i] : poly.offsets[i + 1]] for i in inside]
        ax.add_collection(PolyCollection(verts, facecolors=list(colours), edgecolors="none", alpha=0.85))
    elif inside.size:
        diam = 2 * t.radius_um[inside]
        ax.add_collection(
            EllipseCollection(
                diam, diam, np.zeros(inside.size), units="xy", offsets=t.xy_um[inside],
                offset_transform=ax.transData, facecolors=list(colours), edgecolors="none", alpha=0.85,
            )
        )
    tri = d.triangles
    if tri.size:
        near = np.isin(tri[:, 1], inside)
        edges = np.concatenate([tri[near][:, [0, 1]], tri[near][:, [1, 2]], tri[near][:, [0, 2]]])
        if edges.size:
            ax.add_collection(LineCollection(t.xy_um[edges], colors="black", linewidths=0.6))
    if d.n:
        here = (np.abs(d.xy_um[:, 0] - c[0]) <= h) & (np.abs(d.xy_um[:, 1] - c[1]) <= h)
        ax.scatter(d.xy_um[here, 0], d.xy_um[here, 1], s=60, facecolors="none", edgecolors="black", linewidths=1.0)
    ax.add_patch(Circle(c, f.radius_um, fill=False, edgecolor=FIELD_COLOUR, linewidth=1.2))
    bar = min(SCALE_BAR_UM, h)
    x0, y0 = c[0] - 0.92 * h, c[1] + 0.9 * h
    ax.plot([x0, x0 + bar], [y0, y0], color="black", linewidth=2)
    ax.text(x0 + bar / 2, y0 - 0.03 * h, f"{bar:g} µm", ha="center", va="bottom", fontsize=7)
    ax.set_xlim(c[0] - h, c[0] + h)
    ax.set_ylim(c[1] + h, c[1] - h)  # y down, as the slide view
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    n = int(f.counts[k])
    ax.set_title(f"field {k + 1}: {n} doorway{'s' if n != 1 else ''}", fontsize=9, color=FIELD_COLOUR)
