"""Tissue and tumour area from the cells themselves.

The section's area is the area of the Delaunay triangulation of all cell centroids, keeping only
triangles whose
three edges are all ≤ ``max_edge_um`` (an alpha-shape-like hull that drops gaps, lumina wider than the cut-off
and the concave outline). Each kept triangle's area is split equally between its three vertices, so the tumour
area is the area attributed to tumour cells. Both are invariant to rotation, translation and row order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import Delaunay, QhullError

from chemomet.errors import field_error


@dataclass(frozen=True)
class Areas:
    """Areas in mm²: ``tissue_mm2`` (all kept triangles) and ``by_type_mm2[code]`` (attributed by vertex)."""

    tissue_mm2: float
    by_type_mm2: np.ndarray


def tissue_areas(x_um, y_um, cell_type, max_edge_um: float = 50.0) -> Areas:
    """Tissue area and area per cell type, mm².

    Parameters
    ----------
    x_um, y_um : centroids, µm.
    cell_type : integer codes 0..3.
    max_edge_um : longest Delaunay edge kept, µm (> 0). Gaps wider than this are not tissue.

    Returns
    -------
    Areas
        ``tissue_mm2`` and ``by_type_mm2`` (indexed by type code), mm².

    Examples
    --------
    Four cells at the corners of a 10 µm square (100 µm² = 1e-4 mm²), two of them tumour:

    >>> a = tissue_areas([0.0, 10.0, 0.0, 10.0], [0.0, 0.0, 10.0, 10.0], [1, 1, 2, 3], max_edge_um=50.0)
    >>> round(a.tissue_mm2, 10), round(float(a.by_type_mm2[1]), 10)
    (0.0001, 5e-05)
    """
    if not (np.isfinite(max_edge_um) and max_edge_um > 0):
        raise field_error("max_edge", max_edge_um, "a number > 0", "µm")
    x = np.asarray(x_um, dtype=np.float64)
    y = np.asarray(y_um, dtype=np.float64)
    ct = np.asarray(cell_type)
    zero = Areas(0.0, np.zeros(4))
    if x.shape[0] < 3:
        return zero
    # Centre the coordinates first: Qhull is translation-sensitive in the last bits otherwise.
    xy = np.column_stack([x - x.mean(), y - y.mean()])
    try:
        tri = Delaunay(xy).simplices
    except QhullError:  # all points collinear or coincident: no area
        return zero
    a, b, c = xy[tri[:, 0]], xy[tri[:, 1]], xy[tri[:, 2]]
    e2 = max_edge_um**2
    keep = (((a - b) ** 2).sum(1) <= e2) & (((b - c) ** 2).sum(1) <= e2) & (((c - a) ** 2).sum(1) <= e2)
    tri, a, b, c = tri[keep], a[keep], b[keep], c[keep]
    area = 0.5 * np.abs((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1]))
    per_type = np.bincount(ct[tri].ravel(), np.repeat(area / 3.0, 3), minlength=4)[:4]
    return Areas(float(area.sum()) * 1e-6, per_type * 1e-6)
