"""Choosing the k densest high-power fields (HPF): hot-spot fields centred where the count is highest.

A field is a **circle** of the given area (a microscope's field of view is round; 0.2 mm² ⇒ radius 252.3 µm).
A doorway counts in a field when its distance to the centre is ≤ the radius (plus 10⁻⁹ of it, for rounding).

``"hotspot"`` (default) — the pathologist's rule, centre the field on the hot spot, made exact:

1. The first field is centred where it holds the most doorways, over **every point of the plane**. The search is
   exact: an optimal centre can always be found among (a) the doorways themselves and (b) the pairwise
   intersection points of the circles of radius r around the doorways. Proof: take an optimal disk; translate
   it (keeping its doorways inside) until one doorway lies on its boundary, then rotate its centre about that
   doorway until a second one does — the centre is then on both circles; if no second doorway can reach the
   boundary, the disk holds one doorway and can be centred on it. For each doorway p the best centre on the
   circle around p is found by an angular sweep over the arcs where each neighbour is covered (O(m log m) for
   m neighbours within 2r; vectorised over many doorways at once), so all pairwise intersections are examined
   without listing them. The count is piecewise constant along the circle and is evaluated in the middle of each
   piece, with arcs widened by half the rounding slack, so the centre found passes the final count.
2. Each further field is the best one that does not overlap the fields already chosen (centres ≥ 2r apart)
   and counts only doorways not yet counted. With the constraint the optimum may sit on the boundary of the
   allowed region, so the candidates also include the intersections of the doorway circles with the circles of
   radius 2r around the chosen centres (the same translate-and-rotate argument, with those circles as walls);
   the search at each step is again exact. Doorways whose upper bound (remaining neighbours within 2r) cannot
   reach the best count are not swept, and sweeps are redone only near a new field.
3. Ties: several doorway sets, or several centres for one set, may reach the best count, and where a field is
   placed matters for the fields still to come. Candidate centres of a set are its smallest-enclosing-circle
   centre, 12 points at the largest offset from it and the sweep's points; the centre chosen leaves the fewest
   nearby doorways impossible to count by a later field, then forbids the least of the centres that could still
   hold them (on a fixed pattern of 97 points per doorway); then the smaller enclosing circle of the set (the
   more compact hot spot), the smaller sum of distances, the canonical order of the coordinates. With more than
   64 tied doorways or 32 tied sets, the first (canonical order) and most compact ones are compared.
4. Fields are added until k are chosen or no allowed field holds a doorway not yet counted;
   :attr:`FieldSelection.n_found` says how many were found. The TMEM score is the sum of their counts.

Greedy field-by-field choice is what a pathologist does (best field first); the best *set* of k disjoint
fields is NP-hard in general and is not claimed. The result is deterministic and, away from exactly tied
layouts, invariant to rotation, translation and row order.

``"doorway"`` — the former rule, kept for comparison: candidate centres only on the doorways, ranked by count
(ties: smaller sum of distances, then coordinates), taken greedily when more than 2r from every chosen centre.

``"grid"`` — a reference search over centres on a square grid of ``grid_um`` (10 µm by default), greedy with the
same non-overlap rule; slow on large sections, meant for checking the other two.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from chemomet.errors import field_error

FIELD_METHODS = ("hotspot", "doorway", "grid")
"""Ways to place the high-power fields: see the module docstring."""
REL_EPS = 1e-9
"""Rounding slack, as a fraction of the field radius: a doorway within ``r·(1 + REL_EPS)`` counts, and field
centres ``2r·(1 − REL_EPS)`` apart do not overlap."""
MAX_GRID_NODES = 20_000_000
MAX_PLACEMENTS = 24
"""Most candidate centres kept per tied doorway set when choosing where to place a field."""
MAX_TIED_DOORWAYS = 64
"""When more doorways than this reach the best count, the sets of the first ones (canonical order) are compared."""
MAX_TIED_SETS = 32
"""When more doorway sets than this reach the best count, the most compact ones are compared for placement."""
PAIRS_PER_BATCH = 2_000_000
"""Doorway pairs handled at once by the vectorised sweep (memory bound)."""


@dataclass(frozen=True)
class FieldSelection:
    """The chosen high-power fields.

    Attributes
    ----------
    centres_um : ``(n_found, 2)`` field centres, µm, best first.
    counts : doorways in each chosen field (every field holds at least one).
    radius_um : field radius, µm.
    area_mm2 : field area, mm².
    k : number of fields asked for.
    method : ``"hotspot"``, ``"doorway"`` or ``"grid"`` (see the module docstring).
    field_of_point : int64 per input point: the 0-based rank of the field that counts it, or −1.

    Examples
    --------
    >>> f = select_fields([[0.0, 0.0], [100.0, 0.0], [2000.0, 0.0]], k=10, area_mm2=0.2)
    >>> f.total, f.counts.tolist(), round(f.radius_um, 1)  # doorways per field; radius in µm
    (3, [2, 1], 252.3)
    >>> f.n_found, f.k, f.field_of_point.tolist()  # fields found / asked for; field of each doorway
    (2, 10, [0, 0, 1])
    """

    centres_um: np.ndarray
    counts: np.ndarray
    radius_um: float
    area_mm2: float
    k: int
    method: str = "hotspot"
    field_of_point: np.ndarray | None = None

    @property
    def total(self) -> int:
        """Doorways in all chosen fields: the TMEM score."""
        return int(self.counts.sum())

    @property
    def n_found(self) -> int:
        """Number of fields found (each holds at least one doorway); at most :attr:`k`."""
        return int(self.counts.size)


def hpf_radius_um(area_mm2: float) -> float:
    """Radius (µm) of a circular field of the given area (mm²)."""
    return float(np.sqrt(area_mm2 * 1e6 / np.pi))


def select_fields(
    points_um, k: int, area_mm2: float = 0.2, method: str = "hotspot", grid_um: float = 10.0
) -> FieldSelection:
    """Choose up to ``k`` non-overlapping circular fields of ``area_mm2`` holding the most doorways.

    Parameters
    ----------
    points_um : ``(n, 2)`` doorway positions, µm.
    k : number of fields (10 or 20 under the clinical conventions).
    area_mm2 : area of one field, mm² (0.2 by default; depends on the microscope's field number).
    method : ``"hotspot"`` (default: exact best centre anywhere, field by field), ``"doorway"`` (the former
        rule: centres on doorways only) or ``"grid"`` (centres on a ``grid_um`` grid; a reference).
    grid_um : grid spacing of ``method="grid"``, µm.

    Returns
    -------
    :class:`FieldSelection`
        centres (µm) and doorway counts of the fields found, best first; fewer than ``k`` when no further
        non-overlapping field holds a doorway (see the module docstring for the method).

    Examples
    --------
    Two groups of five doorways whose centres are 1.9 field radii apart: a field centred between them holds all
    ten; centred on a doorway it holds five.

    >>> import numpy as np
    >>> r = hpf_radius_um(0.2)
    >>> ring = 5.0 * np.column_stack([np.cos(np.arange(5)), np.sin(np.arange(5))])  # within 5 µm
    >>> pts = np.concatenate([ring + [-0.95 * r, 0.0], ring + [0.95 * r, 0.0]])
    >>> select_fields(pts, k=1).counts.tolist(), select_fields(pts, k=1, method="doorway").counts.tolist()
    ([10], [5])
    >>> select_fields(pts, k=10).n_found  # one field holds every doorway: one field found of the 10 asked for
    1
    """
    if not (np.isfinite(area_mm2) and area_mm2 > 0):
        raise field_error("hpf_area", area_mm2, "a number > 0", "mm²")
    if int(k) < 1:
        raise field_error("k", k, "an integer ≥ 1")
    if method not in FIELD_METHODS:
        raise field_error("field_centres", method, " | ".join(FIELD_METHODS))
    k = int(k)
    radius = hpf_radius_um(area_mm2)
    pts = np.asarray(points_um, dtype=np.float64).reshape(-1, 2)
    n = pts.shape[0]
    if n == 0:
        return FieldSelection(
            np.empty((0, 2)), np.empty(0, dtype=np.int64), radius, float(area_mm2), k, method, np.empty(0, np.int64)
        )
    if method == "doorway":
        centres, counts, member = _doorway_fields(pts, k, radius)
    elif method == "grid":
        if not (np.isfinite(grid_um) and grid_um > 0):
            raise field_error("grid", grid_um, "a number > 0", "µm")
        centres, counts, member = _grid_fields(pts, k, radius, float(grid_um))
    else:
        centres, counts, member = _hotspot_fields(pts, k, radius)
    return FieldSelection(centres, counts, radius, float(area_mm2), k, method, member)


# ---------------------------------------------------------------------------------------------------------------
# the former rule: centres on doorways


def _doorway_fields(pts: np.ndarray, k: int, radius: float):
    n = pts.shape[0]
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
        blocked[tree.query_ball_point(pts[c], 2 * radius)] = True
        # A candidate at exactly 2 radii would share a boundary point; it stays blocked (≥ is "overlap").
    sel = np.asarray(chosen, dtype=np.int64)
    member = np.full(n, -1, dtype=np.int64)
    for rank, c in enumerate(sel):
        member[tree.query_ball_point(pts[c], radius)] = rank
    return pts[sel], counts[sel].astype(np.int64), member


# ---------------------------------------------------------------------------------------------------------------
# the reference: centres on a grid


def _grid_fields(pts: np.ndarray, k: int, radius: float, g: float):
    n = pts.shape[0]
    eps = REL_EPS * radius
    lo = np.floor((pts.min(axis=0) - radius) / g)
    hi = np.ceil((pts.max(axis=0) + radius) / g)
    nx, ny = int(hi[0] - lo[0]) + 1, int(hi[1] - lo[1]) + 1
    if nx * ny > MAX_GRID_NODES:
        raise field_error("grid", g, f"a spacing giving at most {MAX_GRID_NODES} grid nodes over the doorways", "µm")
    gx = (lo[0] + np.arange(nx)) * g
    gy = (lo[1] + np.arange(ny)) * g
    tree = cKDTree(pts)
    nodes_list, counts_list = [], []
    for j0 in range(0, ny, max(1, 2_000_000 // nx)):  # bounded memory: a band of rows at a time
        yy = gy[j0 : j0 + max(1, 2_000_000 // nx)]
        nodes = np.column_stack([np.tile(gx, yy.size), np.repeat(yy, nx)])
        c = tree.query_ball_point(nodes, radius + eps, return_length=True)
        keep = c > 0
        nodes_list.append(nodes[keep])
        counts_list.append(c[keep])
    nodes = np.concatenate(nodes_list)
    counts = np.concatenate(counts_list).astype(np.int64)
    heap = [(-int(c), i) for i, c in enumerate(counts)]
    heapq.heapify(heap)
    remaining = np.ones(n, dtype=bool)
    member = np.full(n, -1, dtype=np.int64)
    centres: list[np.ndarray] = []
    out_counts: list[int] = []
    while heap and len(centres) < k:
        negc, i = heapq.heappop(heap)
        c = nodes[i]
        if centres and np.min(np.hypot(*(np.asarray(centres) - c).T)) < 2 * radius - eps:
            continue
        hit = np.asarray(tree.query_ball_point(c, radius + eps), dtype=np.int64)
        hit = hit[remaining[hit]]
        if hit.size < -negc:  # fewer than when ranked (a doorway on a chosen field's edge): rank again
            if hit.size:
                heapq.heappush(heap, (-int(hit.size), i))
            continue
        if hit.size == 0:
            break
        member[hit] = len(centres)
        remaining[hit] = False
        centres.append(c)
        out_counts.append(int(hit.size))
    return np.asarray(centres).reshape(-1, 2), np.asarray(out_counts, dtype=np.int64), member


# ---------------------------------------------------------------------------------------------------------------
# hot-spot fields: exact best centre, field by field


def _arcs(theta_mid: np.ndarray, half: np.ndarray):
    """Split arcs ``[mid − half, mid + half]`` (angles mod 2π) into pieces ``[a, b]`` within ``[-1, 2π]``; a piece
    that wraps past 2π restarts at −1 so that angle 0 lies inside it."""
    two_pi = 2 * np.pi
    full = half >= np.pi
    s = np.mod(theta_mid - half, two_pi)
    e = s + 2 * half
    wrap = (e > two_pi) & ~full
    a = np.concatenate([np.where(full, -1.0, s), np.full(int(wrap.sum()), -1.0)])
    b = np.concatenate([np.where(full, 7.0, np.minimum(e, two_pi)), e[wrap] - two_pi])
    return a, b


def _arcs_ids(theta_mid: np.ndarray, half: np.ndarray, ids: np.ndarray):
    """:func:`_arcs` carrying the id of each arc's anchor along to its pieces."""
    a, b = _arcs(theta_mid, half)
    two_pi = 2 * np.pi
    s = np.mod(theta_mid - half, two_pi)
    wrap = (s + 2 * half > two_pi) & (half < np.pi)
    return a, b, np.concatenate([ids, ids[wrap]]).astype(np.int64)


class _HotSpots:
    """Greedy exact hot-spot search over doorway positions in canonical order (see the module docstring)."""

    def __init__(self, pts: np.ndarray, radius: float):
        self.p = pts
        self.n = pts.shape[0]
        self.r = radius
        self.eps = REL_EPS * radius
        self.tree = cKDTree(pts)
        self.remaining = np.ones(self.n, dtype=bool)
        self.centres: list[np.ndarray] = []
        self.cache: dict[int, tuple[int, list]] = {}
        self.reach = 2 * radius + 2 * self.eps
        self.ub = np.asarray(self.tree.query_ball_point(pts, self.reach, return_length=True), dtype=np.int64)
        self.value = np.zeros(self.n, dtype=np.int64)  # best count of a centre on or at each doorway's circle
        self.dirty = np.ones(self.n, dtype=bool)

    def _blocked(self, c: np.ndarray) -> bool:
        if not self.centres:
            return False
        cc = np.asarray(self.centres)
        return bool(np.min(np.hypot(cc[:, 0] - c[0], cc[:, 1] - c[1])) < 2 * self.r - self.eps)

    def _values(self, anchors: np.ndarray) -> np.ndarray:
        """The best count of a centre on the circle of radius r around each anchor doorway, or on the doorway
        itself (the value :meth:`_sweep` finds, vectorised over many anchors: the arcs of all anchors are keyed
        by ``16·anchor + angle`` so that one sort and one search serve them all)."""
        r, eps = self.r, self.eps
        e2 = 0.5 * eps
        two_pi = 2 * np.pi
        out = np.zeros(anchors.size, dtype=np.int64)
        cc = np.asarray(self.centres).reshape(-1, 2)
        work = np.cumsum(self.ub[anchors])
        lo = 0
        while lo < anchors.size:  # batches of about PAIRS_PER_BATCH doorway pairs
            done = work[lo - 1] if lo else 0
            hi = max(lo + 1, int(np.searchsorted(work, done + PAIRS_PER_BATCH, side="right")))
            a_idx = anchors[lo:hi]
            nb = a_idx.size
            pa = self.p[a_idx]
            m = cKDTree(pa).sparse_distance_matrix(self.tree, self.reach, output_type="ndarray")
            ai, qj, d = m["i"].astype(np.int64), m["j"].astype(np.int64), m["v"]
            keep = self.remaining[qj] & (qj != a_idx[ai])
            ai, qj, d = ai[keep], qj[keep], d[keep]
            # the doorway itself as the centre
            own = 1 + np.bincount(ai[d <= r + eps], minlength=nb)
            if cc.shape[0]:
                dd = np.hypot(pa[:, None, 0] - cc[None, :, 0], pa[:, None, 1] - cc[None, :, 1])
                own = np.where(dd.min(axis=1) < 2 * r - eps, 0, own)
            # arcs of the circle where each neighbour is covered
            dxy = self.p[qj] - pa[ai]
            with np.errstate(divide="ignore", invalid="ignore"):
                kq = (d * d - 2 * r * e2 - e2 * e2) / (2 * r * d)
            kq = np.where(d > 0, kq, -2.0)
            ok = kq <= 1.0
            sa, sb, sid = _arcs_ids(np.arctan2(dxy[ok, 1], dxy[ok, 0]), np.arccos(np.clip(kq[ok], -1, 1)), ai[ok])
            fa, fb, fid = np.empty(0), np.empty(0), np.empty(0, np.int64)
            all_blocked = np.zeros(nb, dtype=bool)
            if cc.shape[0]:
                cd_x = cc[None, :, 0] - pa[:, None, 0]
                cd_y = cc[None, :, 1] - pa[:, None, 1]
                with np.errstate(divide="ignore", invalid="ignore"):
                    kf = (r * r + dd * dd - (2 * r - e2) ** 2) / (2 * r * dd)
                kf = np.where(dd > 0, kf, -2.0)
                close = dd < 3 * r + 2 * eps
                all_blocked = (close & (kf <= -1.0)).any(axis=1)
                part = close & (kf > -1.0) & (kf < 1.0)
                pi_, pj = np.nonzero(part)
                fa, fb, fid = _arcs_ids(np.arctan2(cd_y[pi_, pj], cd_x[pi_, pj]), np.arccos(kf[pi_, pj]), pi_)
            off_s, off_f = 16.0 * sid + 1.0, 16.0 * fid + 1.0
            starts, ends = np.sort(sa + off_s), np.sort(sb + off_s)
            fstarts, fends = np.sort(fa + off_f), np.sort(fb + off_f)
            ev = np.unique(
                np.concatenate(
                    [(sa + off_s)[sa >= 0], (sb + off_s)[sb < two_pi], (fa + off_f)[fa >= 0], (fb + off_f)[fb < two_pi]]
                )
            )
            circ = np.where(all_blocked, 0, 1)  # no event on the circle: any centre on it holds the anchor alone
            if ev.size:
                ev_id = np.floor(ev / 16.0).astype(np.int64)
                first = np.flatnonzero(np.r_[True, ev_id[1:] != ev_id[:-1]])
                last = np.r_[first[1:], ev.size] - 1
                nxt = np.r_[ev[1:], 0.0]
                nxt[last] = ev[first] + two_pi  # the piece that wraps round
                mid = 0.5 * (ev + nxt)
                mid = np.where(mid - (16.0 * ev_id + 1.0) >= two_pi, mid - two_pi, mid)
                value = 1 + np.searchsorted(starts, mid, side="right") - np.searchsorted(ends, mid, side="left")
                if fstarts.size:
                    blocked = np.searchsorted(fstarts, mid, side="right") - np.searchsorted(fends, mid, side="left")
                    value = np.where(blocked > 0, 0, value)
                value = np.where(all_blocked[ev_id], 0, value)
                circ[ev_id[first]] = np.maximum.reduceat(value, first)
            out[lo:hi] = np.maximum(own, circ)
            lo = hi
        return out

    def _sweep(self, i: int) -> tuple[int, list]:
        """Best count of a centre on the circle of radius r around doorway i, or on i itself; returns the count
        and the doorway sets (canonical indices) of the centres reaching it, with one centre each.

        The count along the circle is piecewise constant between the endpoints of the arcs where a neighbour is
        covered (and of the arcs that would overlap a chosen field), so it is evaluated once per piece, at the
        piece's middle. The arcs use half the rounding slack of the final count and of the overlap test, so the
        point found always passes both.
        """
        r, eps = self.r, self.eps
        e2 = 0.5 * eps
        pi = self.p[i]
        near = np.asarray(self.tree.query_ball_point(pi, self.reach), dtype=np.int64)
        near = near[self.remaining[near]]
        others = near[near != i]
        dxy = self.p[others] - pi
        d = np.hypot(dxy[:, 0], dxy[:, 1])
        with np.errstate(divide="ignore", invalid="ignore"):
            kq = (d * d - 2 * r * e2 - e2 * e2) / (2 * r * d)
        kq = np.where(d > 0, kq, -2.0)
        keep = kq <= 1.0
        half = np.arccos(np.clip(kq[keep], -1.0, 1.0))  # π: the neighbour is covered all around
        a, b = _arcs(np.arctan2(dxy[keep, 1], dxy[keep, 0]), half)
        fa, fb = np.empty(0), np.empty(0)
        all_blocked = False
        if self.centres:
            cc = np.asarray(self.centres)
            cd = cc - pi
            dd = np.hypot(cd[:, 0], cd[:, 1])
            close = dd < 3 * r + 2 * eps
            if close.any():
                cd, dd = cd[close], dd[close]
                with np.errstate(divide="ignore", invalid="ignore"):
                    kf = (r * r + dd * dd - (2 * r - e2) ** 2) / (2 * r * dd)
                kf = np.where(dd > 0, kf, -2.0)
                all_blocked = bool((kf <= -1.0).any())
                part = kf < 1.0
                if part.any() and not all_blocked:
                    fa, fb = _arcs(np.arctan2(cd[part, 1], cd[part, 0]), np.arccos(kf[part]))
        best, cands = 0, []
        if not self._blocked(pi):  # the doorway itself as the centre
            own = near[np.hypot(*(self.p[near] - pi).T) <= r + eps]
            best, cands = int(own.size), [pi.copy()]
        ev = np.unique(np.concatenate([a[a >= 0], b[b < 2 * np.pi], fa[fa >= 0], fb[fb < 2 * np.pi]]))
        if not all_blocked and ev.size:
            mid = 0.5 * (ev + np.append(ev[1:], ev[0] + 2 * np.pi))
            mid = np.where(mid >= 2 * np.pi, mid - 2 * np.pi, mid)
            value = 1 + np.searchsorted(np.sort(a), mid, side="right") - np.searchsorted(np.sort(b), mid, side="left")
            if fa.size:
                blocked = np.searchsorted(np.sort(fa), mid, side="right") - np.searchsorted(
                    np.sort(fb), mid, side="left"
                )
                value = np.where(blocked > 0, -1, value)
            vmax = int(value.max())
            if vmax > best:
                best, cands = vmax, []
            if vmax == best and vmax > 0:
                th = mid[value == vmax]
                cands += list(pi + r * np.column_stack([np.cos(th), np.sin(th)]))
        return _distinct_sets(np.asarray(cands).reshape(-1, 2), np.sort(near), self.p, r + eps)

    def _best(self) -> tuple[int, list]:
        """The best count over all allowed centres, and the doorway sets reaching it (with their centres)."""
        dirty = np.flatnonzero(self.remaining & self.dirty)
        if dirty.size:
            # largest bound first, in batches; anchors whose bound cannot reach the best stay dirty (their value
            # is at most their bound, so they cannot matter until the best falls below it)
            dirty = dirty[np.lexsort((dirty, -self.ub[dirty]))]
            n_left = int(self.remaining.sum())
            clean = ~(self.remaining & self.dirty)
            best = int(self.value[self.remaining & clean].max()) if (self.remaining & clean).any() else 0
            lo = 0
            while lo < dirty.size and best < n_left and self.ub[dirty[lo]] >= max(best, 1):
                done = np.cumsum(self.ub[dirty[lo:]])
                hi = lo + max(1, int(np.searchsorted(done, PAIRS_PER_BATCH, side="right")))
                batch = dirty[lo:hi]
                self.value[batch] = self._values(batch)
                self.dirty[batch] = False
                best = max(best, int(self.value[batch].max()))
                lo = hi
        while True:
            rem = np.flatnonzero(self.remaining)
            if rem.size == 0:
                return 0, []
            known = rem[~self.dirty[rem]]
            best = int(self.value[known].max()) if known.size else 0
            pending = rem[self.dirty[rem] & (self.ub[rem] >= max(best, 1))]
            if pending.size and best < rem.size:  # a value fell (rounding): compute the bounds that now matter
                self.value[pending] = self._values(pending)
                self.dirty[pending] = False
                continue
            if best <= 0:
                return 0, []
            tied = known[self.value[known] == best]  # canonical order
            if best == rem.size:  # one field holds every doorway left: a single set
                tied = tied[:1]
            ties: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}
            for i in tied[:MAX_TIED_DOORWAYS].tolist():
                if i not in self.cache:
                    self.cache[i] = self._sweep(i)
                v, sets = self.cache[i]
                self.value[i] = v  # the sweep's recount decides (rounding)
                if v != best:
                    continue
                for st, c in sets:
                    key = st.tobytes()
                    ties[key] = (st, np.concatenate([ties[key][1], c])) if key in ties else (st, c)
            if ties:
                return best, list(ties.values())

    def _shadows(self, cands: np.ndarray, s: np.ndarray, mc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """What a field centred at each candidate would cost the fields still to come, over the remaining
        doorways outside its set ``s``: how many would become impossible to count (every centre that could hold
        them forbidden), and the summed fraction of their still-allowed centres it forbids (on a fixed pattern of
        points). The candidates lie within r of ``mc``."""
        near = np.asarray(self.tree.query_ball_point(mc, 4 * self.r), dtype=np.int64)
        near = np.setdiff1d(near[self.remaining[near]], s)
        k = cands.shape[0]
        if near.size == 0:
            return np.zeros(k, dtype=np.int64), np.zeros(k)
        samples = self.p[near][:, None, :] + self.r * _UNIT_DISK[None, :, :]  # centres that could hold them
        free = np.ones(samples.shape[:2], dtype=bool)
        wall = 2 * self.r - self.eps
        if self.centres:
            cc = np.asarray(self.centres)
            for cj in cc[np.hypot(*(cc - mc).T) < 7 * self.r]:
                free &= (samples[..., 0] - cj[0]) ** 2 + (samples[..., 1] - cj[1]) ** 2 >= wall * wall
        sx, sy = samples[..., 0][free], samples[..., 1][free]  # the allowed sample centres, flattened
        owner = np.nonzero(free)[0]
        before = np.bincount(owner, minlength=near.size)
        trapped = np.zeros(k, dtype=np.int64)
        lost = np.zeros(k)
        for j in range(k):
            hit = (sx - cands[j, 0]) ** 2 + (sy - cands[j, 1]) ** 2 < wall * wall
            after = before - np.bincount(owner[hit], minlength=near.size)
            trapped[j] = int(((before > 0) & (after == 0)).sum())
            lost[j] = float(hit.sum()) / _UNIT_DISK.shape[0]
        return trapped, lost

    def _room(self, mc: np.ndarray, mr: float, s: np.ndarray) -> list:
        """Other centres holding the set ``s``: 12 points at the largest offset ``r − mr`` from its enclosing-circle
        centre, the first towards the nearest remaining doorway outside the set."""
        slack = (self.r - mr) * (1 - 1e-9)
        if slack <= self.eps:
            return []
        near = np.asarray(self.tree.query_ball_point(mc, 3 * self.r), dtype=np.int64)
        near = np.setdiff1d(near[self.remaining[near]], s)
        theta0 = 0.0
        if near.size:
            d = self.p[near] - mc
            j = int(np.argmin(np.hypot(d[:, 0], d[:, 1])))
            theta0 = float(np.arctan2(d[j, 1], d[j, 0]))
        th = theta0 + 2 * np.pi * np.arange(12) / 12
        return list(mc + slack * np.column_stack([np.cos(th), np.sin(th)]))

    def choose(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The next field: its centre and its doorways (canonical indices), or ``None`` when none is left."""
        best, ties = self._best()
        if best == 0:
            return None
        if len(ties) > MAX_TIED_SETS:  # keep the most compact sets (about their mean), then canonical order
            spread = [float(np.hypot(*(self.p[st] - self.p[st].mean(axis=0)).T).sum()) for st, _ in ties]
            keep = sorted(range(len(ties)), key=lambda i: (round(spread[i], 9), ties[i][0].tolist()))
            ties = [ties[i] for i in keep[:MAX_TIED_SETS]]
        ranked = []
        for s, cands in ties:
            mc, mr = _enclosing_circle(self.p[s])
            if cands.shape[0] > MAX_PLACEMENTS:
                cands = cands[np.linspace(0, cands.shape[0] - 1, MAX_PLACEMENTS).astype(np.int64)]
            extra = [mc] + self._room(mc, mr, s)
            extra = [c for c in extra if not self._blocked(c)]
            if extra:
                cands = np.vstack([np.asarray(extra), cands])
            trapped, lost = self._shadows(cands, s, mc)
            j = int(np.lexsort((np.arange(cands.shape[0]), np.round(lost, 9), trapped))[0])
            spread = float(np.hypot(*(self.p[s] - cands[j]).T).sum())
            ranked.append((int(trapped[j]), round(float(lost[j]), 9), mr, spread, s.tolist(), cands[j]))
        ranked.sort(key=lambda t: t[:5])
        centre = ranked[0][5]
        near = np.asarray(self.tree.query_ball_point(centre, self.r + self.eps), dtype=np.int64)
        hit = np.sort(near[self.remaining[near]])
        self.remaining[hit] = False
        self.centres.append(np.asarray(centre, dtype=np.float64))
        # sweeps and bounds change only near the new field (its doorways and its wall)
        touched = np.asarray(self.tree.query_ball_point(centre, 3 * self.r + 4 * self.eps), dtype=np.int64)
        for t in touched.tolist():
            self.cache.pop(t, None)
        self.dirty[touched] = True
        if touched.size:
            lengths = self.tree.query_ball_point(self.p[touched], self.reach)
            self.ub[touched] = [int(self.remaining[np.asarray(q, dtype=np.int64)].sum()) for q in lengths]
        self.ub[hit] = 0
        self.value[hit] = 0
        return self.centres[-1], hit


def _unit_disk() -> np.ndarray:
    """A fixed pattern of 97 points filling the unit disk evenly (sunflower spiral, the boundary included)."""
    k = np.arange(96)
    rad = np.sqrt((k + 0.5) / 96)
    rad[-24:] = 1.0  # the last ring on the boundary: a centre at exactly r still holds the doorway
    th = k * np.pi * (3 - np.sqrt(5))
    return np.vstack([[0.0, 0.0], np.column_stack([rad * np.cos(th), rad * np.sin(th)])])


_UNIT_DISK = _unit_disk()


def _distinct_sets(cands: np.ndarray, near: np.ndarray, pts: np.ndarray, reach: float) -> tuple[int, list]:
    """The largest doorway sets covered by the candidate centres (within ``reach``), each once, with the centres
    that cover it (at most :data:`MAX_PLACEMENTS`)."""
    q = pts[near]
    best, rows, where = 0, [], []
    step = max(1, 4_000_000 // max(1, near.size))
    for s0 in range(0, cands.shape[0], step):
        c = cands[s0 : s0 + step]
        m = (c[:, None, 0] - q[None, :, 0]) ** 2 + (c[:, None, 1] - q[None, :, 1]) ** 2 <= reach * reach
        size = m.sum(axis=1)
        top = int(size.max()) if size.size else 0
        if top > best:
            best, rows, where = top, [], []
        if top == best and top > 0:
            sel = np.flatnonzero(size == top)
            rows.append(m[sel])
            where.append(s0 + sel)
    if best == 0:
        return 0, []
    masks = np.concatenate(rows)
    idx = np.concatenate(where)
    packed = np.packbits(masks, axis=1)
    groups: dict[bytes, list[int]] = {}
    for row in range(packed.shape[0]):  # rows reaching the best count: usually a handful
        groups.setdefault(packed[row].tobytes(), []).append(row)
    out = []
    for rows_of_set in groups.values():
        members = idx[rows_of_set]
        if members.size > MAX_PLACEMENTS:
            members = members[np.linspace(0, members.size - 1, MAX_PLACEMENTS).astype(np.int64)]
        out.append((near[masks[rows_of_set[0]]], cands[members]))
    return best, out


def _blocked_fraction(d: np.ndarray, r: float) -> np.ndarray:
    """Fraction of the disk of radius r around a doorway at distance d from a field centre that lies within 2r
    of that centre (where no further field may be centred): the lens area over πr²."""
    r1, r2 = r, 2 * r
    d = np.asarray(d, dtype=np.float64)
    out = np.zeros_like(d)
    inside = d <= r2 - r1
    out[inside] = 1.0
    mid = (d > r2 - r1) & (d < r1 + r2)
    dm = d[mid]
    a1 = r1 * r1 * np.arccos(np.clip((dm * dm + r1 * r1 - r2 * r2) / (2 * dm * r1), -1, 1))
    a2 = r2 * r2 * np.arccos(np.clip((dm * dm + r2 * r2 - r1 * r1) / (2 * dm * r2), -1, 1))
    k = np.sqrt(np.clip((-dm + r1 + r2) * (dm + r1 - r2) * (dm - r1 + r2) * (dm + r1 + r2), 0, None))
    out[mid] = (a1 + a2 - 0.5 * k) / (np.pi * r1 * r1)
    return out


def _hotspot_fields(pts: np.ndarray, k: int, radius: float):
    n = pts.shape[0]
    canon = np.lexsort((pts[:, 1], pts[:, 0]))
    hs = _HotSpots(pts[canon], radius)
    centres, counts = [], []
    member = np.full(n, -1, dtype=np.int64)
    while len(centres) < k:
        got = hs.choose()
        if got is None:
            break
        c, hit = got
        member[canon[hit]] = len(centres)
        centres.append(c)
        counts.append(int(hit.size))
    return np.asarray(centres).reshape(-1, 2), np.asarray(counts, dtype=np.int64), member


def _enclosing_circle(pts: np.ndarray) -> tuple[np.ndarray, float]:
    """Smallest enclosing circle (Welzl, iterative, on a fixed shuffle); returns ``(centre, radius)``."""
    p = np.asarray(pts, dtype=np.float64)
    if p.shape[0] == 1:
        return p[0].copy(), 0.0
    mean = p.mean(axis=0)
    q = p - mean  # centred, for accuracy
    q = q[np.random.default_rng(0).permutation(q.shape[0])]
    pts_l = [tuple(v) for v in q.tolist()]

    def inside(c, r2, v):
        return (v[0] - c[0]) ** 2 + (v[1] - c[1]) ** 2 <= r2 * (1 + 1e-12) + 1e-18

    def two(a, b):
        c = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
        return c, (a[0] - c[0]) ** 2 + (a[1] - c[1]) ** 2

    def three(a, b, c):
        ax, ay = a
        bx, by = b[0] - ax, b[1] - ay
        cx, cy = c[0] - ax, c[1] - ay
        det = 2 * (bx * cy - by * cx)
        if abs(det) < 1e-300:
            cands = [two(a, b), two(a, c), two(b, c)]
            return max(cands, key=lambda t: t[1])
        b2, c2 = bx * bx + by * by, cx * cx + cy * cy
        ux = (cy * b2 - by * c2) / det
        uy = (bx * c2 - cx * b2) / det
        return (ax + ux, ay + uy), ux * ux + uy * uy

    c, r2 = pts_l[0], 0.0
    for i in range(1, len(pts_l)):
        if inside(c, r2, pts_l[i]):
            continue
        c, r2 = pts_l[i], 0.0
        for j in range(i):
            if inside(c, r2, pts_l[j]):
                continue
            c, r2 = two(pts_l[i], pts_l[j])
            for m in range(j):
                if not inside(c, r2, pts_l[m]):
                    c, r2 = three(pts_l[i], pts_l[j], pts_l[m])
    centre = np.asarray(c) + mean
    return centre, float(np.sqrt(np.max(((p - centre) ** 2).sum(axis=1))))
