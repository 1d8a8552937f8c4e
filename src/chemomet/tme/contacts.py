"""The cell contact graph.

Two cells are in contact when their boundaries touch (docs/science.md §6.2). With outlines (polygons) this is decided
exactly on the outlines by :func:`chemomet.tme.polygons.polygon_contact_pairs`; :func:`table_contact_pairs`
picks it when the table has polygons. Otherwise cells are circles of their equivalent radii:
``|c_i − c_j| ≤ r_i + r_j + tolerance``. :func:`contact_pairs` finds every such pair with k-d trees: the cells
are split into radius classes (each class spans a factor 2 of radii), and each pair of classes is searched at its
own largest contact distance ``max(r_a) + max(r_b) + tolerance``, then an exact per-pair filter keeps the pairs
in contact — so one large cell does not widen the search for all the others. Before any pair is built the
candidates are bounded by counting cells per grid square of the search distance; a table whose bound exceeds
:func:`~chemomet.tme._checks.pair_budget` (stacked or duplicated cells) is refused with one line instead of
exhausting memory. :func:`contact_pairs_bruteforce` is the O(n²) reference used by tests and the benchmark.
"""

from __future__ import annotations

import numpy as np

from chemomet.tme._checks import check_tolerance, radius_class_pairs
from chemomet.tme.polygons import polygon_contact_pairs


def contact_pairs(
    x_um, y_um, radius_um, tolerance_um: float = 1.0, *, where: str = "cells", skip=None
) -> np.ndarray:
    """All pairs of cells in contact.

    Parameters
    ----------
    x_um, y_um : centroids, µm, shape ``(n,)``.
    radius_um : equivalent radii, µm, shape ``(n,)``.
    tolerance_um : extra gap allowed between two cell boundaries, µm (≥ 0).
    where : name of the input, for the message of a refused (degenerate) table.
    skip : optional bool per cell: pairs of two such cells are left out (not searched); ``None``: every pair.

    Returns
    -------
    ``(m, 2)`` int64 array of index pairs ``(i, j)`` with ``i < j``, sorted lexicographically, such that
    ``hypot(x_i − x_j, y_i − y_j) ≤ r_i + r_j + tolerance_um`` (and not both skipped).

    Raises
    ------
    InputError : the candidate pairs would exceed :func:`~chemomet.tme._checks.pair_budget` (cells stacked on
        one point); checked before any pair is built.

    Examples
    --------
    Three cells of radius 5 µm whose centroids are 10, 9.4 and 9.4 µm apart touch pairwise; the fourth, 20 µm
    from its nearest neighbour, touches none:

    >>> contact_pairs([0.0, 10.0, 5.0, 30.0], [0.0, 0.0, 8.0, 0.0], [5.0, 5.0, 5.0, 5.0], tolerance_um=1.0)
    array([[0, 1],
           [0, 2],
           [1, 2]])
    >>> contact_pairs([0.0, 11.5], [0.0, 0.0], [5.0, 5.0], tolerance_um=1.0).shape  # a 1.5 µm gap
    (0, 2)
    >>> contact_pairs([0.0, 10.0, 5.0], [0.0, 0.0, 8.0], [5.0] * 3, skip=[True, True, False]).tolist()  # not 0–1
    [[0, 2], [1, 2]]
    """
    tol = check_tolerance(tolerance_um)
    x = np.asarray(x_um, dtype=np.float64)
    y = np.asarray(y_um, dtype=np.float64)
    r = np.asarray(radius_um, dtype=np.float64)
    if x.shape[0] < 2:
        return np.empty((0, 2), dtype=np.int64)
    pairs = radius_class_pairs(x, y, r, tol, where, None if skip is None else np.asarray(skip, dtype=bool))
    if pairs.shape[0] == 0:
        return np.empty((0, 2), dtype=np.int64)
    i, j = pairs[:, 0], pairs[:, 1]
    keep = np.flatnonzero(_within(x, y, r, i, j, tol))
    # sorted lexicographically by (lo, hi): one int64 key per pair (lo·n + hi), sorted, then split again
    n = np.int64(x.shape[0])
    i, j = i[keep], j[keep]
    del pairs, keep
    key = np.minimum(i, j)
    key *= n
    np.maximum(i, j, out=i)
    key += i
    del i, j
    key.sort()
    out = np.empty((key.shape[0], 2), dtype=np.int64)
    np.floor_divide(key, n, out=out[:, 0])
    np.multiply(out[:, 0], n, out=out[:, 1])
    np.subtract(key, out[:, 1], out=out[:, 1])
    return out


WITHIN_CHUNK = 1 << 20
"""Candidate pairs tested at once by the exact contact filter (its temporaries: a few × 8 MiB)."""


def _within(x, y, r, i, j, tol) -> np.ndarray:
    """The exact contact test ``hypot(dx, dy) ≤ r_i + r_j + tol`` for index arrays ``i``, ``j``, in chunks of
    :data:`WITHIN_CHUNK` pairs (the same result; the temporaries stay small however many pairs there are)."""
    keep = np.empty(i.shape[0], dtype=bool)
    for s in range(0, i.shape[0], WITHIN_CHUNK):
        a, b = i[s : s + WITHIN_CHUNK], j[s : s + WITHIN_CHUNK]
        keep[s : s + WITHIN_CHUNK] = np.hypot(x[a] - x[b], y[a] - y[b]) <= r[a] + r[b] + tol
    return keep


def contact_pairs_bruteforce(
    x_um, y_um, radius_um, tolerance_um: float = 1.0, block: int = 2048
) -> np.ndarray:
    """Reference O(n²) contact graph: every pair is tested, in blocks to bound memory.

    Same contract and output as :func:`contact_pairs`; used only to check it and as the benchmark baseline.

    Parameters
    ----------
    x_um, y_um : centroids, µm, shape ``(n,)``.
    radius_um : equivalent radii, µm, shape ``(n,)``.
    tolerance_um : extra gap allowed between two cell boundaries, µm (≥ 0).
    block : rows of the distance matrix computed at once (memory ``block × n`` floats).

    Returns
    -------
    ``(m, 2)`` int64 index pairs ``(i, j)``, ``i < j``, sorted lexicographically (as :func:`contact_pairs`).

    Examples
    --------
    >>> import numpy as np
    >>> x, y, r = [0.0, 10.0, 5.0, 30.0], [0.0, 0.0, 8.0, 0.0], [5.0, 5.0, 5.0, 5.0]
    >>> np.array_equal(contact_pairs_bruteforce(x, y, r, 1.0, block=2), contact_pairs(x, y, r, 1.0))
    True
    """
    tol = check_tolerance(tolerance_um)
    x = np.asarray(x_um, dtype=np.float64)
    y = np.asarray(y_um, dtype=np.float64)
    r = np.asarray(radius_um, dtype=np.float64)
    n = x.shape[0]
    out = []
    for s in range(0, n, block):
        e = min(n, s + block)
        d = np.hypot(x[s:e, None] - x[None, :], y[s:e, None] - y[None, :])
        hit = d <= r[s:e, None] + r[None, :] + tol
        ii, jj = np.nonzero(hit)
        ii = ii + s
        keep = ii < jj
        out.append(np.column_stack([ii[keep], jj[keep]]))
    if not out:
        return np.empty((0, 2), dtype=np.int64)
    pairs = np.concatenate(out).astype(np.int64)
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))
    return pairs[order]


def table_contact_pairs(table, tolerance_um: float = 1.0, cells=None, *, skip_type: int | None = None) -> np.ndarray:
    """Contact pairs of a :class:`~chemomet.tme.table.CellTable`: on the outlines when it has polygons,
    else on the circles.

    Parameters
    ----------
    table : the cells (µm).
    tolerance_um : contact tolerance between cell boundaries, µm.
    cells : restrict to these cell indices (``None``: all cells).
    skip_type : a cell-type code whose pairs with each other are left out (never searched; the doorways leave out
        tumour–tumour pairs, most pairs of a tumour); ``None``: every pair.

    Returns
    -------
    ``(m, 2)`` int64 pairs of *table* indices, sorted by the position of the cells in ``cells``.

    Examples
    --------
    >>> from chemomet.tme import make_table
    >>> t = make_table([0.0, 10.0, 5.0, 30.0], [0.0, 0.0, 8.0, 0.0], [1, 2, 3, 0], [5.0, 5.0, 5.0, 5.0])
    >>> table_contact_pairs(t, tolerance_um=1.0, cells=[1, 2]).tolist()  # among cells 1 and 2 only
    [[1, 2]]
    >>> t2 = make_table([0.0, 10.0, 5.0], [0.0, 0.0, 8.0], [1, 1, 3], [5.0, 5.0, 5.0])
    >>> table_contact_pairs(t2).tolist(), table_contact_pairs(t2, skip_type=1).tolist()  # 1: tumour
    ([[0, 1], [0, 2], [1, 2]], [[0, 2], [1, 2]])
    """
    sub = np.arange(table.n) if cells is None else np.asarray(cells, dtype=np.int64)
    skip = None if skip_type is None else table.cell_type[sub] == skip_type
    if table.polygons is not None:
        p = polygon_contact_pairs(
            table.x_um[sub], table.y_um[sub], table.polygons.take(sub), tolerance_um, where=table.source, skip=skip
        )
    else:
        p = contact_pairs(
            table.x_um[sub], table.y_um[sub], table.radius_um[sub], tolerance_um, where=table.source, skip=skip
        )
    return sub[p] if p.size else np.empty((0, 2), dtype=np.int64)
