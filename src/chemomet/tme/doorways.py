"""TMEM doorway detection on the contact graph.

A *contact triangle* is a tumour cell ``t``, a macrophage ``m`` and an endothelial cell ``e`` that are
pairwise in contact (t–m, m–e and t–e; Robinson 2009). One macrophage often touches several tumour cells and
several endothelial cells of the same vessel, giving several triangles for what a pathologist sees as one
doorway, so the count depends on a *counting rule*:

``"macrophage"`` (default)
    one doorway per macrophage that belongs to at least one contact triangle, located at that macrophage's
    centroid. The macrophage is the cell that defines a doorway (its VEGF-A opens the vessel) and is the
    scarce partner, so this matches counting of triple-stained clusters on IHC slides.
``"triangle"``
    every contact triangle counts, located at the triangle's centroid (an upper bound).
``"cluster"``
    triangles that share any cell are merged (connected components of the union of their cells) and each
    component counts once, located at the mean centroid of its macrophages (a lower bound).

Everything is vectorised: triangles are enumerated by joining the macrophage–tumour and macrophage–endothelial
edge lists on the macrophage, then keeping candidate pairs whose tumour–endothelial edge exists.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from chemomet.errors import field_error
from chemomet.tme.contacts import table_contact_pairs
from chemomet.tme.table import ENDOTHELIAL, MACROPHAGE, TUMOUR, CellTable

COUNTING_RULES = ("macrophage", "triangle", "cluster")


@dataclass(frozen=True)
class Doorways:
    """Doorways found in one tissue.

    Attributes
    ----------
    triangles : ``(n_triangles, 3)`` int64 cell indices ``(tumour, macrophage, endothelial)``, sorted.
    counting : the counting rule used (see module docstring).
    xy_um : ``(n_doorways, 2)`` location of each counted doorway, µm.
    doorway_of_cell : int64 per cell: the doorway id (0-based) a cell belongs to, or −1. A cell shared by two
        doorways gets the smaller id.
    member : bool per cell: the cell is in at least one contact triangle.
    pairs : ``(m, 2)`` contact pairs among tumour, macrophage and endothelial cells (global indices), sorted;
        when :func:`find_doorways` searched them itself, without the tumour–tumour pairs (no doorway or vessel is
        made of one; they are most pairs of a tumour).

    Examples
    --------
    >>> from chemomet.tme import find_doorways, make_table
    >>> t = make_table([0.0, 10.0, 5.0, 30.0], [0.0, 0.0, 8.0, 0.0], [1, 2, 3, 0], [5.0, 5.0, 5.0, 5.0])
    >>> d = find_doorways(t)
    >>> d.n, d.n_triangles, d.xy_um.tolist()  # located at the macrophage, µm
    (1, 1, [[10.0, 0.0]])
    >>> d.doorway_of_cell.tolist(), d.member.tolist()
    ([0, 0, 0, -1], [True, True, True, False])
    """

    triangles: np.ndarray
    counting: str
    xy_um: np.ndarray
    doorway_of_cell: np.ndarray
    member: np.ndarray
    pairs: np.ndarray

    @property
    def n(self) -> int:
        """Number of doorways under the counting rule."""
        return int(self.xy_um.shape[0])

    @property
    def n_triangles(self) -> int:
        """Number of contact triangles (before the counting rule)."""
        return int(self.triangles.shape[0])


def _group_starts(keys: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    counts = np.bincount(keys, minlength=n)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return counts, starts


def contact_triangles(cell_type: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Tumour–macrophage–endothelial triangles in a contact graph.

    Parameters
    ----------
    cell_type : int codes per cell (see :mod:`chemomet.tme.table`).
    pairs : ``(m, 2)`` contact pairs (any order within a pair, no duplicates).

    Returns
    -------
    ``(k, 3)`` int64 array of ``(tumour, macrophage, endothelial)`` indices, sorted lexicographically.

    Examples
    --------
    Cell indices, no units: tumour 0 and 3, macrophage 1, endothelial 2; tumour 3 does not touch cell 2.

    >>> import numpy as np
    >>> cell_type = np.array([1, 2, 3, 1])
    >>> contact_triangles(cell_type, np.array([[0, 1], [1, 2], [0, 2], [1, 3]]))
    array([[0, 1, 2]])
    """
    n = cell_type.shape[0]
    empty = np.empty((0, 3), dtype=np.int64)
    if pairs.shape[0] == 0:
        return empty
    a, b = pairs[:, 0], pairs[:, 1]
    ta, tb = cell_type[a], cell_type[b]

    def edges(t1: int, t2: int) -> tuple[np.ndarray, np.ndarray]:
        fwd = (ta == t1) & (tb == t2)
        rev = (ta == t2) & (tb == t1)
        return np.concatenate([a[fwd], b[rev]]), np.concatenate([b[fwd], a[rev]])

    m_t, t_of = edges(MACROPHAGE, TUMOUR)
    m_e, e_of = edges(MACROPHAGE, ENDOTHELIAL)
    t_te, e_te = edges(TUMOUR, ENDOTHELIAL)
    if m_t.size == 0 or m_e.size == 0 or t_te.size == 0:
        return empty
    # Sort macrophage–endothelial edges by macrophage, then for every macrophage–tumour edge enumerate the
    # endothelial partners of the same macrophage.
    order = np.argsort(m_e, kind="stable")
    m_e, e_of = m_e[order], e_of[order]
    counts_e, starts_e = _group_starts(m_e, n)
    rep = counts_e[m_t]
    total = int(rep.sum())
    if total == 0:
        return empty
    cand_m = np.repeat(m_t, rep)
    cand_t = np.repeat(t_of, rep)
    offs = np.arange(total) - np.repeat(np.cumsum(rep) - rep, rep)
    cand_e = e_of[np.repeat(starts_e[m_t], rep) + offs]
    te_keys = np.unique(t_te.astype(np.int64) * n + e_te)
    cand_keys = cand_t.astype(np.int64) * n + cand_e
    pos = np.searchsorted(te_keys, cand_keys)
    pos[pos == te_keys.size] = 0
    hit = te_keys[pos] == cand_keys
    tri = np.column_stack([cand_t[hit], cand_m[hit], cand_e[hit]]).astype(np.int64)
    order = np.lexsort((tri[:, 2], tri[:, 1], tri[:, 0]))
    return tri[order]


def find_doorways(
    table: CellTable, tolerance_um: float = 1.0, counting: str = "macrophage", pairs: np.ndarray | None = None
) -> Doorways:
    """Find TMEM doorways in a cell table.

    Parameters
    ----------
    table : the cells (µm).
    tolerance_um : contact tolerance between cell boundaries, µm.
    counting : ``"macrophage"`` (default), ``"triangle"`` or ``"cluster"`` — see the module docstring.
    pairs : precomputed contact pairs among the tumour, macrophage and endothelial cells (global indices);
        computed with :func:`chemomet.tme.contacts.table_contact_pairs` when ``None`` (on the outlines when
        the table has polygons, else on the circles), leaving out the tumour–tumour pairs, which no doorway is
        made of.

    Returns
    -------
    :class:`Doorways`
        the contact triangles and the doorways counted under ``counting``, located in µm.

    Examples
    --------
    Two tumour cells touch the same macrophage and endothelial cell (radius 5 µm): two contact triangles, one
    doorway per macrophage, two per triangle.

    >>> from chemomet.tme import make_table
    >>> t = make_table([0.0, 10.0, 5.0, 15.0], [0.0, 0.0, 8.0, 8.0], [1, 2, 3, 1], [5.0, 5.0, 5.0, 5.0])
    >>> find_doorways(t, tolerance_um=1.0).n, find_doorways(t, counting="triangle").n
    (1, 2)
    """
    if counting not in COUNTING_RULES:
        raise field_error("counting", counting, " | ".join(COUNTING_RULES))
    n = table.n
    ct = table.cell_type
    if pairs is None:
        pairs = table_contact_pairs(table, tolerance_um, np.flatnonzero(ct != 0), skip_type=TUMOUR)
    tri = contact_triangles(ct, pairs)
    member = np.zeros(n, dtype=bool)
    member[tri.ravel()] = True
    doorway_of_cell = np.full(n, -1, dtype=np.int64)
    x, y = table.x_um, table.y_um
    if tri.shape[0] == 0:
        xy = np.empty((0, 2))
    elif counting == "macrophage":
        macs = np.unique(tri[:, 1])
        xy = np.column_stack([x[macs], y[macs]])
        did = np.searchsorted(macs, tri[:, 1])
        _assign(doorway_of_cell, tri, did)
    elif counting == "triangle":
        xy = np.column_stack([x[tri].mean(axis=1), y[tri].mean(axis=1)])
        _assign(doorway_of_cell, tri, np.arange(tri.shape[0]))
    else:
        rows = np.concatenate([tri[:, 1], tri[:, 1]])
        cols = np.concatenate([tri[:, 0], tri[:, 2]])
        g = coo_matrix((np.ones(rows.size, dtype=np.int8), (rows, cols)), shape=(n, n))
        _, lab = connected_components(g, directed=False)
        comp_of_tri = lab[tri[:, 1]]
        comps, did = np.unique(comp_of_tri, return_inverse=True)
        macs, first = np.unique(tri[:, 1], return_index=True)
        mac_comp = did[first]
        cnt = np.bincount(mac_comp, minlength=comps.size)
        xy = np.column_stack(
            [
                np.bincount(mac_comp, x[macs], comps.size) / cnt,
                np.bincount(mac_comp, y[macs], comps.size) / cnt,
            ]
        )
        _assign(doorway_of_cell, tri, did)
    return Doorways(tri, counting, xy, doorway_of_cell, member, pairs)


def _assign(doorway_of_cell: np.ndarray, tri: np.ndarray, did: np.ndarray) -> None:
    """Give each member cell the smallest doorway id it belongs to."""
    cells = tri.ravel()
    ids = np.repeat(did, 3)
    order = np.lexsort((ids, cells))
    cells, ids = cells[order], ids[order]
    first = np.concatenate([[True], cells[1:] != cells[:-1]])
    doorway_of_cell[cells[first]] = ids[first]
