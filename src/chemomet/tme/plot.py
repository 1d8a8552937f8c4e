"""A PNG map of the tissue: cells by type, doorways ringed, the chosen high-power fields outlined, ranked."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from chemomet.tme.outputs import atomic_write
from chemomet.tme.scores import TmemResult
from chemomet.tme.table import ENDOTHELIAL, MACROPHAGE, OTHER, TUMOUR

COLOURS = {OTHER: "#c8c8c8", TUMOUR: "#d9a441", MACROPHAGE: "#2e9e44", ENDOTHELIAL: "#d62728"}
NAMES = {OTHER: "other", TUMOUR: "tumour", MACROPHAGE: "macrophage", ENDOTHELIAL: "endothelial"}


def plot_map(result: TmemResult, path: str | Path | None = None, *, dpi: int = 150, size_in: float = 9.0):
    """Draw the tissue map; write it to ``path`` (PNG, atomically) when given. Returns the matplotlib figure.

    Coordinates are in µm with y pointing down (image convention). Cells are drawn as dots coloured by type;
    each counted doorway is ringed in black; each chosen field (its area in mm²) is a blue circle labelled with
    its rank and count (doorways per field).

    Parameters
    ----------
    result : the analysis (:func:`~chemomet.tme.scores.score_tissue`).
    path : PNG file to write; ``None``: only return the figure.
    dpi : resolution of the PNG, dots per inch.
    size_in : width and height of the figure, inches.

    Returns
    -------
    matplotlib.figure.Figure
        the map (closed after writing when ``path`` is given).

    Examples
    --------
    >>> from chemomet.tme import generate_tissue, read_cells, score_tissue
    >>> generate_tissue(5000, seed=1).cells.to_csv("cells.csv", index=False)  # doctest: +SKIP
    >>> plot_map(score_tissue(read_cells("cells.csv")), "map.png")  # doctest: +SKIP
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle

    t = result.table
    fig, ax = plt.subplots(figsize=(size_in, size_in))
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
        ax.add_patch(Circle(c, f.radius_um, fill=False, edgecolor="#1f4e9e", linewidth=1.2))
        ax.annotate(
            f"{rank}: {int(n)}",
            c + np.array([0, -f.radius_um]),
            color="#1f4e9e",
            fontsize=7,
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
    fig.tight_layout()
    if path is not None:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"))
        plt.close(fig)
    return fig
