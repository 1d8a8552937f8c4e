"""Choosing the k densest high-power fields (HPF).

Method (deterministic, and invariant to rotation, translation and row order):

1. A field is a **circle** of the given area (a microscope's field of view is round; 0.2 mm² ⇒ radius
   252.3 µm).
2. Candidate fields are centred on each doorway (as a pathologist centres the field on a hot spot). A doorway
   counts in a field when its distance to the centre is ≤ the field radius.
3. Candidates are ranked by doorway count (descending), ties broken by the sum of distances from the centre
   to the doorways it holds (ascending: the more compact hot spot first), then by the doorway's position in
   the canonical order of its coordinates (only reached for exactly symmetric configurations).
4. Fields are taken greedily down the ranking, skipping any candidate whose centre is within 2 radii of a
   field already chosen, until k fields are chosen or candidates run out. Chosen fields therefore never
   overlap and no doorway is counted twice; the TMEM score is the sum of their counts.

Greedy selection is not guaranteed to maximise the sum over all sets of k disjoint discs (that problem is
NP-hard), but it is what a pathologist does (best field first) and its result is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from chemomet.errors import field_error


@dataclass(frozen=True)
class FieldSelection:
    """The chosen high-power fields.

    Attributes
    ----------
    centres_um : ``(n_fields, 2)`` field centres, µm, best first.
    counts : doorways in each chosen field.
    radius_um : field radius, µm.
    area_mm2 : field area, mm².
    k : number of fields asked for (may exceed ``len(counts)`` when there are too few doorways).

    Examples
    --------
    >>> f = select_fields([[0.0, 0.0], [100.0, 0.0], [2000.0, 0.0]], k=10, area_mm2=0.2)
    >>> f.total, f.counts.tolist(), round(f.radius_um, 1)  # doorways per field; radius in µm
    (3, [2, 1], 252.3)
    """

    centres_um: np.ndarray
    counts: np.ndarray
    radius_um: float
    area_mm2: float
    k: int

    @property
    def total(self) -> int:
        """Doorways in all chosen fields: the TMEM score."""
        return int(self.counts.sum())


def hpf_radius_um(area_mm2: float) -> float:
    """Radius (µm) of a circular field of the given area (mm²)."""
    return float(np.sqrt(area_mm2 * 1e6 / np.pi))


def select_fields(points_um: np.ndarray, k: int, area_mm2: float = 0.2) -> FieldSelection:
    """Choose the ``k`` densest non-overlapping circular fields of ``area_mm2`` over doorway positions.

    Parameters
    ----------
    points_um : ``(n, 2)`` doorway positions, µm.
    k : number of fields (10 or 20 under the clinical conventions).
    area_mm2 : area of one field, mm² (0.2 by default; depends on the microscope's field number).

    Returns
    -------
    :class:`FieldSelection`
        centres (µm) and doorway counts of the chosen fields, best first (see the module docstring for the
        method).

    Examples
    --------
    Two doorways 100 µm apart share a field of 0.2 mm² (radius 252 µm); the one 2 mm away gets its own:

    >>> f = select_fields([[0.0, 0.0], [100.0, 0.0], [2000.0, 0.0]], k=10, area_mm2=0.2)
    >>> f.centres_um.tolist(), f.counts.tolist()
    ([[0.0, 0.0], [2000.0, 0.0]], [2, 1])
    """
    if not (np.isfinite(area_mm2) and area_mm2 > 0):
        raise field_error("hpf_area", area_mm2, "a number > 0", "mm²")
    if int(k) < 1:
        raise field_error("k", k, "an integer ≥ 1")
    k = int(k)
    radius = hpf_radius_um(area_mm2)
    pts = np.asarray(points_um, dtype=np.float64).reshape(-1, 2)
    n = pts.shape[0]
    if n == 0:
        return FieldSelection(np.empty((0, 2)), np.empty(0, dtype=np.int64), radius, float(area_mm2), k)
    tree = cKDTree(pts)
    pairs = tree.query_pairs(radius, output_type="ndarray")
    d = np.hypot(*(pts[pairs[:, 0]] - pts[pairs[:, 1]]).T) if pairs.size else np.empty(0)
    idx = pairs.ravel()
    counts = 1 + np.bincount(idx, minlength=n)
    sumdist = np.bincount(idx, np.repeat(d, 2), minlength=n)
    canon = np.lexsort((pts[:, 1], pts[:, 0]))
    canon_rank = np.empty(n, dtype=np.int64)
    canon_rank[canon] = np.arange(n)
    order = np.lexsort((canon_rank, sumdist, -counts))
    blocked = np.zeros(n, dtype=bool)
    chosen: list[int] = []
    pos = 0
    while len(chosen) < k:
        free = np.flatnonzero(~blocked[order[pos:]])
        if free.size == 0:
            break
        pos += int(free[0])
        c = int(order[pos])
        chosen.append(c)
        near = tree.query_ball_point(pts[c], 2 * radius)
        blocked[near] = True
        # A candidate at exactly 2 radii would share a boundary point; it stays blocked (≥ is "overlap").
    sel = np.asarray(chosen, dtype=np.int64)
    return FieldSelection(pts[sel], counts[sel].astype(np.int64), radius, float(area_mm2), k)
