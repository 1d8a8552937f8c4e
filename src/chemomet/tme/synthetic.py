"""Synthetic tissue with planted TMEM doorways and decoys, with exact ground truth.

Layout. Cells sit on a jittered hexagonal lattice of spacing ``a`` (10 µm); radii are drawn so that lattice
neighbours always touch and nothing else does: with jitter ≤ ``j`` = 0.3 µm, neighbours are ≤ ``a + 2j`` apart
and every radius is ≥ ``r_lo = (a + 2j − tol)/2 + 0.2``, so ``r_i + r_j + tol ≥ a + 2j + 0.4``; the next
lattice shell is ≥ ``√3·a − 2j`` (16.7 µm) away while ``r_i + r_j + tol ≤ a + 2j + 2.4`` (13 µm). Contact is
therefore lattice adjacency, and the ground truth is computed on the lattice (integer neighbour tables, no
distances) — independently of the k-d tree code it is used to test.

Content. Tumour nests come from a thresholded smooth random field; vessels are rings of endothelial cells
around a lumen, one per cell of a coarse grid at most (so rings never touch); stroma holds other cells and
macrophages with gaps. Then motifs are planted, each kept one lattice shell away from every other motif:

- ``doorway``: a macrophage and a tumour cell next to an endothelial cell, all three mutually adjacent;
- ``near_miss_mt``, ``near_miss_me``, ``near_miss_te``: the same triangle with one cell moved off the lattice
  so that one pair is ``gap`` µm beyond contact (``r_i + r_j + tol + gap``) while the others still touch;
- ``open_v``: a macrophage touching a tumour cell and an endothelial cell that do not touch each other;
- ``pair_mt``, ``pair_me``, ``pair_te``: an isolated pair, the third partner absent.

Finally every background macrophage that happens to complete a triangle is turned into an "other" cell, so the
doorways of the tissue are exactly the planted ones (checked on the lattice before returning).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter, map_coordinates

VACANT = -1
LUMEN = -2
OTHER, TUMOUR, MACROPHAGE, ENDOTHELIAL = 0, 1, 2, 3
LABELS = {OTHER: "Stroma", TUMOUR: "Tumor", MACROPHAGE: "Macrophage", ENDOTHELIAL: "Endothelial"}
DECOY_KINDS = ("near_miss_mt", "near_miss_me", "near_miss_te", "open_v", "pair_mt", "pair_me", "pair_te")
JITTER_UM = 0.3


@dataclass(frozen=True)
class SyntheticTissue:
    """A generated tissue and its ground truth.

    Attributes
    ----------
    cells : one row per cell: ``x``, ``y``, ``radius`` (µm), ``cell_type`` (label ``Tumor``, ``Macrophage``,
        ``Endothelial``, ``Stroma``) and marker intensities ``MENA``, ``CD68``, ``CD31``, ``TIE2``, ``CD163``
        (positive ≈ 1, negative ≈ 0.15; gate at 0.5).
    doorway_macrophages : sorted row indices of the planted doorways' macrophages (one doorway each).
    doorways : ``(n, 3)`` row indices ``(tumour, macrophage, endothelial)`` of each planted triangle.
    decoys : kind → ``(n, 2 or 3)`` row indices of each planted decoy's cells.
    tolerance_um : contact tolerance the tissue was built for, µm.
    gap_um : how far beyond contact the near misses are, µm.
    area_mm2 : area of the generated rectangle, mm².
    """

    cells: pd.DataFrame
    doorway_macrophages: np.ndarray
    doorways: np.ndarray
    decoys: dict
    tolerance_um: float
    gap_um: float
    area_mm2: float


class _Lattice:
    """Offset-row hexagonal lattice with a cyclic (counter-clockwise) neighbour table."""

    def __init__(self, rows: int, cols: int, a: float):
        self.rows, self.cols, self.a = rows, cols, a
        j, i = np.divmod(np.arange(rows * cols, dtype=np.int64), cols)
        self.j, self.i = j, i
        odd = j & 1
        self.x = a * (i + 0.5 * odd)
        self.y = a * np.sqrt(3) / 2 * j
        # direction d at 60°·d: (di, dj) depends on row parity
        steps = [(1, 0), (odd, 1), (odd - 1, 1), (-1, 0), (odd - 1, -1), (odd, -1)]
        nb = np.empty((rows * cols, 6), dtype=np.int64)
        for d, (di, dj) in enumerate(steps):
            ii, jj = i + di, j + dj
            ok = (ii >= 0) & (ii < cols) & (jj >= 0) & (jj < rows)
            nb[:, d] = np.where(ok, jj * cols + ii, -1)
        self.nb = nb

    def step(self, s: int, d: int) -> int:
        return int(self.nb[s, d % 6]) if s >= 0 else -1


def _smooth_field(rng, width_um, height_um, x, y, scale_um=60.0, sigma=1.6):
    gx = int(np.ceil(width_um / scale_um)) + 4
    gy = int(np.ceil(height_um / scale_um)) + 4
    g = gaussian_filter(rng.standard_normal((gy, gx)), sigma, mode="wrap")
    return map_coordinates(g, [y / scale_um + 1.5, x / scale_um + 1.5], order=1), g


def generate_tissue(
    n_cells: int = 10_000,
    *,
    doorway_density_per_mm2: float = 20.0,
    decoy_density_per_mm2: float | None = None,
    tolerance_um: float = 1.0,
    gap_um: float = 0.05,
    tumour_fraction: float = 0.45,
    seed: int | np.random.Generator = 0,
    spacing_um: float = 10.0,
) -> SyntheticTissue:
    """Generate a tissue of ``n_cells`` cells (exactly, when trimming stroma allows) with planted motifs.

    Parameters
    ----------
    n_cells : number of cells wanted (≥ 500).
    doorway_density_per_mm2 : planted doorways per mm² of section.
    decoy_density_per_mm2 : planted decoys per mm², split evenly over the seven kinds (default: as doorways).
    tolerance_um : contact tolerance the tissue is built for, µm (0–5).
    gap_um : distance beyond contact of the near misses, µm (> 0).
    tumour_fraction : fraction of the section covered by tumour nests.
    seed : seed or ``numpy.random.Generator``.
    spacing_um : lattice spacing (typical cell diameter), µm.

    Returns
    -------
    SyntheticTissue
        the cells (generic-preset columns, µm) and the ground truth (row indices, section area in mm²).

    Raises
    ------
    ValueError : ``n_cells`` < 500 or ``tolerance_um`` outside 0–5 µm.

    Examples
    --------
    >>> st = generate_tissue(2000, doorway_density_per_mm2=50.0, seed=1)
    >>> len(st.cells), len(st.doorway_macrophages), round(st.area_mm2, 2)  # cells, doorways, mm²
    (2000, 13, 0.25)
    >>> from chemomet.tme import find_doorways, make_table
    >>> codes = st.cells["cell_type"].map({"Stroma": 0, "Tumor": 1, "Macrophage": 2, "Endothelial": 3})
    >>> t = make_table(st.cells["x"], st.cells["y"], codes.to_numpy(), st.cells["radius"])
    >>> find_doorways(t, tolerance_um=st.tolerance_um).n  # exactly the planted doorways, no decoy
    13
    """
    rng = np.random.default_rng(seed)
    if n_cells < 500:
        raise ValueError("n_cells must be ≥ 500")
    if not 0 <= tolerance_um <= 5:
        raise ValueError("tolerance_um must be in [0, 5]")
    a = float(spacing_um)
    r_lo = (a + 2 * JITTER_UM - tolerance_um) / 2 + 0.2
    decoy_density = doorway_density_per_mm2 if decoy_density_per_mm2 is None else decoy_density_per_mm2

    n_sites = int(n_cells / 0.70)
    h = a * np.sqrt(3) / 2
    cols = max(20, int(np.sqrt(n_sites * h / a)))
    rows = max(20, int(np.ceil(n_sites / cols)))
    lat = _Lattice(rows, cols, a)
    width, height = cols * a, rows * h
    area_mm2 = width * height * 1e-6

    # tumour nests: thresholded smooth random field
    f, g = _smooth_field(rng, width, height, lat.x, lat.y)
    thr = np.quantile(g, 1 - tumour_fraction)
    typ = np.where(f > thr, TUMOUR, OTHER).astype(np.int8)
    # stroma: gaps and macrophages; a few macrophages infiltrate the nests
    u = rng.random(typ.size)
    stroma = typ == OTHER
    typ[stroma & (u < 0.30)] = VACANT
    typ[stroma & (u >= 0.30) & (u < 0.38)] = MACROPHAGE
    typ[(typ == TUMOUR) & (u < 0.02)] = MACROPHAGE
    # vessels: at most one ring per 70 µm block, rings entirely inside their block
    block, r_max = 70.0, 18.0
    margin = r_max + a
    bx = int(np.ceil(width / block))
    by = int(np.ceil(height / block))
    has = rng.random((by, bx)) < 0.35
    cx = np.arange(bx)[None, :] * block + rng.uniform(margin, block - margin, (by, bx))
    cy = np.arange(by)[:, None] * block + rng.uniform(margin, block - margin, (by, bx))
    rv = rng.uniform(8.0, r_max, (by, bx))
    kb = (
        np.minimum((lat.y // block).astype(np.int64), by - 1),
        np.minimum((lat.x // block).astype(np.int64), bx - 1),
    )
    dist = np.hypot(lat.x - cx[kb], lat.y - cy[kb])
    ring = has[kb] & (np.abs(dist - rv[kb]) <= 0.6 * a)
    lumen = has[kb] & (dist < rv[kb] - 0.6 * a)
    typ[ring] = ENDOTHELIAL
    typ[lumen] = LUMEN

    # plant motifs
    radius_fix: dict[int, float] = {}
    moves: list[tuple[int, int, int]] = []  # (mover, keep, miss) sites of near misses
    broken: list[tuple[int, int]] = []
    halo = np.zeros(typ.size, dtype=bool)
    n_door = int(round(doorway_density_per_mm2 * area_mm2))
    per_kind = int(round(decoy_density * area_mm2 / len(DECOY_KINDS)))
    if decoy_density > 0:
        per_kind = max(per_kind, 1)
    plan = ["doorway"] * n_door + [k for k in DECOY_KINDS for _ in range(per_kind)]
    plan = [plan[i] for i in rng.permutation(len(plan))]
    endo_anchor = np.flatnonzero(typ == ENDOTHELIAL)
    stroma_anchor = np.flatnonzero((typ == OTHER) | (typ == VACANT))
    pools = {"e": rng.permutation(endo_anchor), "s": rng.permutation(stroma_anchor)}
    ptr = {"e": 0, "s": 0}
    planted: dict[str, list] = {k: [] for k in ("doorway", *DECOY_KINDS)}

    def free(s: int) -> bool:
        return s >= 0 and not halo[s] and typ[s] not in (ENDOTHELIAL, LUMEN)

    def claim(cells: list[int]) -> None:
        for s in cells:
            halo[s] = True
            halo[lat.nb[s][lat.nb[s] >= 0]] = True

    def vacate_around(s: int, keep: set) -> None:
        for t in lat.nb[s]:
            if t >= 0 and int(t) not in keep:
                typ[t] = VACANT

    for kind in plan:
        pool_key = "s" if kind == "pair_mt" else "e"
        pool = pools[pool_key]
        done = False
        while not done and ptr[pool_key] < pool.size:
            anchor = int(pool[ptr[pool_key]])
            ptr[pool_key] += 1
            if halo[anchor]:
                continue
            d0 = int(rng.integers(6))
            for dd in range(6):
                d = d0 + dd
                p, q = lat.step(anchor, d), lat.step(anchor, d + 1)
                if kind == "pair_mt":
                    if not (free(anchor) and free(p)):
                        continue
                    typ[anchor], typ[p] = MACROPHAGE, TUMOUR
                    vacate_around(anchor, {p})
                    cells = [p, anchor, -1]
                    claim([anchor, p])
                elif kind in ("doorway", "near_miss_mt", "near_miss_me", "near_miss_te"):
                    if not (free(p) and free(q)):
                        continue
                    typ[p], typ[q] = MACROPHAGE, TUMOUR
                    if kind != "doorway":
                        vacate_around(p, {anchor, p, q})
                        vacate_around(q, {anchor, p, q})
                        mover, keep, miss = {
                            "near_miss_mt": (p, anchor, q),
                            "near_miss_me": (p, q, anchor),
                            "near_miss_te": (q, p, anchor),
                        }[kind]
                        moves.append((mover, keep, miss))
                        broken.append((min(mover, miss), max(mover, miss)))
                        radius_fix[mover] = r_lo
                        radius_fix[miss] = r_lo
                    cells = [q, p, anchor]
                    claim(cells)
                elif kind == "open_v":
                    o = lat.step(p, d)
                    if not (free(p) and free(o)):
                        continue
                    typ[p], typ[o] = MACROPHAGE, TUMOUR
                    vacate_around(p, {anchor, o})
                    cells = [o, p, anchor]
                    claim(cells)
                elif kind == "pair_me":
                    if not free(p):
                        continue
                    typ[p] = MACROPHAGE
                    vacate_around(p, {anchor})
                    cells = [-1, p, anchor]
                    claim([p, anchor])
                else:  # pair_te
                    if not free(p):
                        continue
                    typ[p] = TUMOUR
                    vacate_around(p, {anchor})
                    cells = [p, -1, anchor]
                    claim([p, anchor])
                planted[kind].append(cells)
                done = True
                break

    # ground truth on the lattice; demote background macrophages that complete a triangle
    broken_keys = np.array([m * typ.size + z for m, z in broken], dtype=np.int64)
    door_sites = np.array(sorted(c[1] for c in planted["doorway"]), dtype=np.int64)
    acc = _lattice_doorway_macrophages(lat, typ, broken_keys)
    stray = np.setdiff1d(acc, door_sites)
    decoy_macs = [c[1] for k in DECOY_KINDS for c in planted[k] if c[1] >= 0]
    if np.isin(decoy_macs, stray).any():  # pragma: no cover - a generator bug
        raise AssertionError("synthetic tissue: a decoy macrophage completes a triangle")
    typ[stray] = OTHER
    acc = _lattice_doorway_macrophages(lat, typ, broken_keys)
    if not np.array_equal(acc, door_sites):  # pragma: no cover - a generator bug, not a user error
        raise AssertionError("synthetic tissue: lattice doorways differ from the planted ones")

    # trim stroma cells to the requested size
    occ = np.flatnonzero(typ >= 0)
    motif_sites = {s for cells in planted.values() for c in cells for s in c if s >= 0}
    excess = occ.size - n_cells
    if excess > 0:
        cand = occ[(typ[occ] == OTHER) & ~halo[occ]]
        drop = rng.choice(cand, size=min(excess, cand.size), replace=False)
        typ[drop] = VACANT
        occ = np.flatnonzero(typ >= 0)
    assert not motif_sites - set(occ.tolist())

    # positions and radii
    n = occ.size
    ang = rng.uniform(0, 2 * np.pi, n)
    rad = JITTER_UM * np.sqrt(rng.random(n))
    px = lat.x.copy()
    py = lat.y.copy()
    px[occ] += rad * np.cos(ang)
    py[occ] += rad * np.sin(ang)
    radius = np.zeros(typ.size)
    radius[occ] = rng.uniform(r_lo, r_lo + 1.0, n)
    for s, r in radius_fix.items():
        radius[s] = r
    if moves:
        mv = np.array(moves, dtype=np.int64)
        x_new, y_new = _place_near_miss(px, py, radius, mv, tolerance_um, gap_um)
        px[mv[:, 0]], py[mv[:, 0]] = x_new, y_new

    # markers
    t = typ[occ]
    row_of_site = np.full(typ.size, -1, dtype=np.int64)
    row_of_site[occ] = np.arange(n)

    def marker(pos_mask, p_pos=1.0):
        pos = pos_mask & (rng.random(n) < p_pos)
        return np.where(pos, rng.normal(1.0, 0.1, n), rng.normal(0.15, 0.05, n)).clip(0, None)

    door_rows = row_of_site[door_sites]
    is_door_mac = np.zeros(n, dtype=bool)
    is_door_mac[door_rows] = True
    tie2_p = np.where(is_door_mac, 0.8, 0.3)
    cells = pd.DataFrame(
        {
            "x": px[occ],
            "y": py[occ],
            "radius": radius[occ],
            "cell_type": pd.Categorical.from_codes(t, [LABELS[k] for k in range(4)]),
            "MENA": marker(t == TUMOUR),
            "CD68": marker(t == MACROPHAGE),
            "CD31": marker(t == ENDOTHELIAL),
            "TIE2": marker((t == MACROPHAGE) & (rng.random(n) < tie2_p)),
            "CD163": marker(t == MACROPHAGE, 0.5),
        }
    )
    cells["cell_type"] = cells["cell_type"].astype(str)

    def rows_of(lst):
        arr = np.array(lst, dtype=np.int64).reshape(-1, 3)
        out = np.where(arr >= 0, row_of_site[np.maximum(arr, 0)], -1)
        keep_cols = [c for c in range(3) if (arr[:, c] >= 0).all()] if arr.size else [0, 1, 2]
        return out[:, keep_cols]

    decoys = {k: rows_of(planted[k]) for k in DECOY_KINDS}
    doorways = rows_of(planted["doorway"])
    return SyntheticTissue(
        cells, np.sort(door_rows), doorways, decoys, float(tolerance_um), float(gap_um), float(area_mm2)
    )


def _lattice_doorway_macrophages(lat: _Lattice, typ: np.ndarray, broken_keys: np.ndarray) -> np.ndarray:
    """Macrophage sites in a tumour–macrophage–endothelial lattice triangle with no broken edge."""
    s = np.arange(typ.size, dtype=np.int64)
    found = []
    for d in range(6):
        b, c = lat.nb[:, d], lat.nb[:, (d + 1) % 6]
        ok = (b >= 0) & (c >= 0)
        tri = np.column_stack([s[ok], b[ok], c[ok]])
        types = typ[tri]
        is_door = (np.sort(types, axis=1) == np.array([TUMOUR, MACROPHAGE, ENDOTHELIAL])).all(axis=1)
        tri, types = tri[is_door], types[is_door]
        if broken_keys.size:
            bad = np.zeros(tri.shape[0], dtype=bool)
            for u, v in ((0, 1), (1, 2), (0, 2)):
                lo = np.minimum(tri[:, u], tri[:, v])
                hi = np.maximum(tri[:, u], tri[:, v])
                bad |= np.isin(lo * typ.size + hi, broken_keys)
            tri, types = tri[~bad], types[~bad]
        found.append(tri[types == MACROPHAGE])
    return np.unique(np.concatenate(found))


def _place_near_miss(px, py, radius, mv, tol, gap):
    """Move each mover along its circle around ``keep`` to ``gap`` beyond contact with ``miss``."""
    mover, keep, miss = mv[:, 0], mv[:, 1], mv[:, 2]
    kx, ky, zx, zy = px[keep], py[keep], px[miss], py[miss]
    x0, y0 = px[mover], py[mover]
    dk = np.hypot(x0 - kx, y0 - ky)
    dz = radius[mover] + radius[miss] + tol + gap
    L = np.hypot(zx - kx, zy - ky)
    ux, uy = (zx - kx) / L, (zy - ky) / L
    along = (dk**2 - dz**2 + L**2) / (2 * L)
    perp = np.sqrt(np.maximum(dk**2 - along**2, 0.0))
    best = None
    for sign in (1.0, -1.0):
        cx = kx + along * ux - sign * perp * uy
        cy = ky + along * uy + sign * perp * ux
        dist = np.hypot(cx - x0, cy - y0)
        if best is None:
            best = (cx, cy, dist)
        else:
            take = dist < best[2]
            best = (np.where(take, cx, best[0]), np.where(take, cy, best[1]), np.where(take, dist, best[2]))
    return best[0], best[1]
