"""Checks and the bounded candidate search shared by the circle and the outline contact graphs (no tissue-analysis
imports, so both :mod:`chemomet.tme.contacts` and :mod:`chemomet.tme.polygons` can use them)."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from chemomet.errors import InputError, field_error


def check_tolerance(tolerance_um: float) -> float:
    """The contact tolerance between cell boundaries as a float, µm; refused unless a finite number ≥ 0."""
    t = float(tolerance_um)
    if not (np.isfinite(t) and t >= 0):
        raise field_error("tolerance", tolerance_um, "a number ≥ 0", "µm")
    return t


PAIR_BUDGET_PER_CELL = 50
"""Candidate contact pairs allowed per cell (plus :data:`PAIR_BUDGET_BASE`), counted before any pair is built. A
real tissue needs 10–20 (an upper bound from a grid count); stacked or duplicated cells need thousands."""
PAIR_BUDGET_BASE = 1_000_000


def pair_budget(n_cells: int) -> int:
    """Most candidate pairs a contact search may build for ``n_cells`` cells.

    Parameters
    ----------
    n_cells : number of cells searched.

    Returns
    -------
    int
        :data:`PAIR_BUDGET_PER_CELL` per cell plus :data:`PAIR_BUDGET_BASE`.

    Examples
    --------
    >>> pair_budget(1_000_000)  # 51 million candidate pairs, about 0.8 GB of index pairs at most
    51000000
    """
    return int(PAIR_BUDGET_PER_CELL * n_cells + PAIR_BUDGET_BASE)


def _grid_keys(x: np.ndarray, y: np.ndarray, cell: float, x0: float, y0: float) -> np.ndarray:
    gx = np.floor((x - x0) / cell).astype(np.int64)
    gy = np.floor((y - y0) / cell).astype(np.int64)
    return gx * (1 << 31) + gy


def candidate_pair_bound(xa, ya, xb, yb, reach: float, same: bool) -> tuple[int, int, tuple[float, float]]:
    """An upper bound on the pairs within ``reach``, from counts of cells per grid square.

    A pair within ``reach`` lies in the same or adjacent squares of side ``reach``, so the sum over squares of
    (cells in the square × cells in it and its 8 neighbours) bounds the pairs; O(n log n), nothing quadratic is
    built.

    Parameters
    ----------
    xa, ya, xb, yb : positions of the two sets, µm (the same arrays twice when ``same``).
    reach : the search distance, µm.
    same : pairs within set a (each counted once) instead of between a and b.

    Returns
    -------
    tuple
        ``(bound, most cells in one square, that square's centre (x, y) in µm)``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.r_[np.zeros(1000), np.arange(10) * 100.0]  # 1000 cells stacked on one point
    >>> bound, densest, at = candidate_pair_bound(x, 0 * x, x, 0 * x, 11.0, True)
    >>> bound >= 1000 * 999 // 2, densest, at
    (True, 1001, (5.5, 5.5))
    """
    xa, ya, xb, yb = (np.asarray(v, dtype=np.float64) for v in (xa, ya, xb, yb))
    if xa.size == 0 or xb.size == 0:
        return 0, 0, (0.0, 0.0)
    x0 = float(min(xa.min(), xb.min()))
    y0 = float(min(ya.min(), yb.min()))
    span = max(float(max(xa.max(), xb.max())) - x0, float(max(ya.max(), yb.max())) - y0, 0.0)
    cell = max(float(reach), span / float(1 << 28), 1e-300)  # a coarser square keeps the keys in range
    dense = _dense_bound(xa, ya, xb, yb, cell, x0, y0, same)
    if dense is not None:
        return dense
    ka, ca = np.unique(_grid_keys(xa, ya, cell, x0, y0), return_counts=True)
    kb, cb = (ka, ca) if same else np.unique(_grid_keys(xb, yb, cell, x0, y0), return_counts=True)
    total = 0
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            nk = ka + dx * (1 << 31) + dy
            pos = np.minimum(np.searchsorted(kb, nk), kb.size - 1)
            hit = kb[pos] == nk
            total += int((ca[hit].astype(np.float64) * cb[pos[hit]]).sum())
    if same:
        total = (total - int(ca.sum())) // 2
    j = int(np.argmax(ca))
    gx, gy = int(ka[j] // (1 << 31)), int(ka[j] % (1 << 31))
    return total, int(ca[j]), (x0 + (gx + 0.5) * cell, y0 + (gy + 0.5) * cell)


DENSE_GRID_SQUARES = 1 << 23
"""Most grid squares counted in a dense array by :func:`candidate_pair_bound` (64 MiB of int64 counts); larger
or sparser extents count the occupied squares only (sorted keys)."""


def _dense_bound(xa, ya, xb, yb, cell: float, x0: float, y0: float, same: bool):
    """:func:`candidate_pair_bound` on a dense array of squares when the extent is small enough, else ``None``.

    The same integers as the sorted-keys count (cells per square times cells in it and its 8 neighbours), and the
    same densest square: the first in (x, y) order among the fullest."""
    def squares(v, v0):
        return np.floor((v - v0) / cell).astype(np.int64)

    gxa, gya = squares(xa, x0), squares(ya, y0)
    gxb, gyb = (gxa, gya) if same else (squares(xb, x0), squares(yb, y0))
    nx = int(max(gxa.max(), gxb.max())) + 1
    ny = int(max(gya.max(), gyb.max())) + 1
    if nx * ny > min(DENSE_GRID_SQUARES, 4 * (xa.size + xb.size) + 1024):
        return None
    ca = np.bincount(gxa * ny + gya, minlength=nx * ny).reshape(nx, ny)
    cb = ca if same else np.bincount(gxb * ny + gyb, minlength=nx * ny).reshape(nx, ny)
    padded = np.zeros((nx + 2, ny + 2), dtype=np.int64)
    padded[1:-1, 1:-1] = cb
    around = np.zeros((nx, ny), dtype=np.int64)  # cells of b in each square and its 8 neighbours
    for dx in (0, 1, 2):
        for dy in (0, 1, 2):
            around += padded[dx : dx + nx, dy : dy + ny]
    total = int(np.dot(ca.ravel(), around.ravel()))
    if same:
        total = (total - int(xa.size)) // 2
    j = int(np.argmax(ca))
    gx, gy = divmod(j, ny)
    return total, int(ca.ravel()[j]), (x0 + (gx + 0.5) * cell, y0 + (gy + 0.5) * cell)


def check_pair_budget(bound: int, n_cells: int, densest: int, where_xy, reach: float, where: str) -> None:
    """Refuse (one line) a contact search whose candidate pairs would exceed :func:`pair_budget`.

    Parameters
    ----------
    bound : the candidate bound (:func:`candidate_pair_bound`).
    n_cells : the cells searched.
    densest, where_xy, reach : the most cells in one square, its centre (µm) and side (µm), for the message.
    where : the input's name, the message's prefix.

    Raises
    ------
    InputError : ``bound`` exceeds ``pair_budget(n_cells)``.

    Examples
    --------
    >>> check_pair_budget(10_000, 1000, 7, (0.0, 0.0), 11.0, "cells.csv")  # within budget: nothing happens
    >>> try:
    ...     check_pair_budget(5 * 10**9, 120_000, 80_000, (500.0, 500.0), 11.0, "cells.csv")
    ... except InputError as err:
    ...     print(str(err)[:72])
    cells.csv: 80000 cells lie within one 11 µm square around (x, y) = (500,
    """
    budget = pair_budget(n_cells)
    if bound > budget:
        raise InputError(
            f"{where}: {densest} cells lie within one {reach:.3g} µm square around (x, y) = "
            f"({where_xy[0]:.6g}, {where_xy[1]:.6g}) µm, which would make about {bound:.2g} candidate contact pairs "
            f"(limit {budget:.2g} for {n_cells} cells); allowed: distinct cell positions — the table looks "
            "degenerate (stacked or duplicated cells, or a coordinate column repeated)"
        )


def radius_class_pairs(
    x: np.ndarray, y: np.ndarray, r: np.ndarray, tol: float, where: str, skip: np.ndarray | None = None
) -> np.ndarray:
    """Candidate pairs containing every pair with ``|c_i − c_j| ≤ r_i + r_j + tol``, found with bounded work.

    The cells are split into radius classes (a factor 2 of radii each); each pair of classes is searched with
    k-d trees at its own reach ``max(r_a) + max(r_b) + tol``, so one large cell does not widen every search. The
    candidate bound of all searches is checked against :func:`pair_budget` (:func:`check_pair_budget`) before any
    tree or pair is built.

    Parameters
    ----------
    x, y : centroids, µm.
    r : radii, µm (> 0).
    tol : contact tolerance, µm.
    where : the input's name, for the message of a refusal.
    skip : optional bool per cell: pairs of two such cells are not searched (the doorways skip tumour–tumour
        pairs, which no doorway or vessel is made of: most pairs of a tumour). The bound and the refusal do not
        depend on it: they count every pair.

    Returns
    -------
    ``(m, 2)`` int64 index pairs, unordered and unfiltered (the caller applies the exact test).

    Raises
    ------
    InputError : the candidate bound exceeds the budget (stacked or duplicated cells).

    Examples
    --------
    >>> import numpy as np
    >>> p = radius_class_pairs(np.array([0.0, 10.0, 500.0]), np.zeros(3), np.array([5.0, 5.0, 5.0]), 1.0, "t")
    >>> p.tolist()
    [[0, 1]]
    >>> radius_class_pairs(np.array([0.0, 10.0]), np.zeros(2), np.array([5.0, 5.0]), 1.0, "t", np.ones(2, bool))
    array([], shape=(0, 2), dtype=int64)
    """
    n = x.shape[0]
    # radius classes: class c holds radii in [r_min·2^c, r_min·2^(c+1)); all radii within a factor 2 (the usual
    # case) make one class, searched on the arrays as given (no copies)
    r_min = float(r.min())
    if r_min > 0 and float(r.max()) < 2.0 * r_min:
        members = [None]
        rmax = [float(r.max())]
    else:
        cls = np.floor(np.log2(r / r_min)).astype(np.int64) if r_min > 0 else np.zeros(n, np.int64)
        cls = np.minimum(cls, 30)
        members = [np.flatnonzero(cls == c) for c in np.unique(cls)]
        rmax = [float(r[m].max()) for m in members]

    def take(v: np.ndarray, c: int) -> np.ndarray:
        return v if members[c] is None else v[members[c]]

    plan = []
    bound, worst = 0, (0, (0.0, 0.0), 0.0)
    for a in range(len(members)):
        for b in range(a, len(members)):
            reach = (rmax[a] + rmax[b] + tol) * (1 + 1e-9)  # a relative slack; the exact filter decides
            nb, dens, at = candidate_pair_bound(take(x, a), take(y, a), take(x, b), take(y, b), reach, a == b)
            bound += nb
            if dens > worst[0]:
                worst = (dens, at, reach)
            plan.append((a, b, reach))
    check_pair_budget(bound, n, worst[0], worst[1], worst[2], where)

    # each class in two parts: the cells whose pairs with each other are searched ("b"), and the skipped ones
    # ("a": only their pairs with part b are searched); without ``skip`` every cell is in part b
    parts: dict[tuple[int, str], np.ndarray | None] = {}
    for c, m in enumerate(members):
        if skip is None:
            parts[c, "b"], parts[c, "a"] = m, np.empty(0, np.int64)
        else:
            s = skip if m is None else skip[m]
            ids = np.arange(n) if m is None else m
            parts[c, "b"], parts[c, "a"] = ids[~s], ids[s]
    trees: dict[tuple[int, str], cKDTree] = {}

    def size(key) -> int:
        return n if parts[key] is None else parts[key].size

    def tree(key) -> cKDTree:
        if key not in trees:
            ids = parts[key]
            xy = np.column_stack([x, y] if ids is None else [x[ids], y[ids]])
            trees[key] = cKDTree(xy, balanced_tree=False, compact_nodes=False)
        return trees[key]

    def glob(key, local: np.ndarray) -> np.ndarray:
        return local if parts[key] is None else parts[key][local]

    found = []
    for a, b, reach in plan:
        searches = [((a, "b"), (b, "b")), ((a, "a"), (b, "b"))] + ([((a, "b"), (b, "a"))] if a != b else [])
        for ka, kb in searches:
            if size(ka) == 0 or size(kb) == 0:
                continue
            if ka == kb:
                p = tree(ka).query_pairs(reach, output_type="ndarray")
                if p.size:
                    found.append(glob(ka, p))  # one class holding every cell: indices already global
            else:
                m = tree(ka).sparse_distance_matrix(tree(kb), reach, output_type="ndarray")
                if m.size:
                    found.append(np.column_stack([glob(ka, m["i"]), glob(kb, m["j"])]))
    if not found:
        return np.empty((0, 2), dtype=np.int64)
    out = found[0] if len(found) == 1 else np.concatenate(found)
    return out.astype(np.int64, copy=False)
