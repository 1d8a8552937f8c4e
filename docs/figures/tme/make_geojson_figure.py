"""The GeoJSON round trip of ``chemomet tmem``, rendered by geopandas: ``docs/figures/tme/geojson_round_trip.png``.

**Needs geopandas** (with shapely and pyogrio), which is *not* a dependency of chemomet — install it for this
script only: ``pip install geopandas``. Run from the repository root::

    python docs/figures/tme/make_geojson_figure.py [--out docs/figures/tme/geojson_round_trip.png]

What it does, in a temporary folder:

1. makes a synthetic tissue (:func:`chemomet.tme.synthetic.generate_tissue`, 20,000 cells, seed 7) and writes its
   cells as a QuPath-style detection file (*Export objects as GeoJSON*, QuPath ≥ 0.4 layout): one ``Polygon`` per
   cell (a 16-vertex outline), in image pixels of 0.5 µm, with a UUID ``id``, ``objectType: "cell"``, the
   ``classification`` name and the measurement ``Cell: Area µm^2``;
2. runs the command on it in a fresh process, ``chemomet tmem detections.geojson --pixel-size 0.5 --geojson-out
   doorways.geojson`` (exit code 0 required);
3. reads **both** files back with ``geopandas.read_file`` (GDAL's GeoJSON driver through pyogrio — a reader
   independent of chemomet's), joins each doorway's member ids (``metadata.tumour_ids`` / ``macrophage_ids`` /
   ``endothelial_ids``) to the detections' ids — every id must be found — and draws the section (cells coloured
   by class, the chosen high-power fields outlined, doorways marked) with a zoomed panel in the best field, where
   the member cells of each doorway, found through the ids, are outlined in black.

The figure is deterministic up to the renderer; the printed line gives the counts and the geopandas version.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

PIXEL_SIZE_UM = 0.5
"""µm per image pixel of the synthetic detection file (QuPath writes GeoJSON in pixels)."""
VERTICES = 16
"""Vertices of each cell outline."""
ZOOM_PX = 360
"""Side of the zoomed window, image pixels."""
COLOURS = {"Tumor": "#e8a2a2", "Macrophage": "#7fb3e0", "Endothelial": "#f2c45a", "Stroma": "#dddddd"}
"""Fill colour per class (the cells of the zoomed panel)."""
NAMESPACE = uuid.UUID("4f1c1c4e-7d3a-4c55-9a47-2f6b8e0c1d11")
"""Namespace of the cells' deterministic UUIDs."""


def write_detections(path: Path, n_cells: int = 20_000, seed: int = 7) -> int:
    """Write a synthetic tissue as a QuPath-style GeoJSON detection file (pixels of :data:`PIXEL_SIZE_UM` µm).

    Parameters
    ----------
    path : the ``.geojson`` file to write.
    n_cells : number of cells.
    seed : seed of :func:`chemomet.tme.synthetic.generate_tissue`.

    Returns
    -------
    int
        the number of cells written.
    """
    from chemomet.tme.synthetic import generate_tissue

    cells = generate_tissue(n_cells, doorway_density_per_mm2=40.0, seed=seed).cells
    angles = [2 * math.pi * k / VERTICES for k in range(VERTICES)]
    features = []
    for i, (x, y, r, label) in enumerate(
        zip(cells["x"], cells["y"], cells["radius"], cells["cell_type"], strict=True)
    ):
        cx, cy, rp = x / PIXEL_SIZE_UM, y / PIXEL_SIZE_UM, r / PIXEL_SIZE_UM  # µm -> px
        ring = [[round(cx + rp * math.cos(a), 3), round(cy + rp * math.sin(a), 3)] for a in angles]
        features.append(
            {
                "type": "Feature",
                "id": str(uuid.uuid5(NAMESPACE, str(i))),
                "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
                "properties": {
                    "objectType": "cell",
                    "classification": {"name": label},
                    "measurements": {"Cell: Area µm^2": round(math.pi * r * r, 4)},
                },
            }
        )
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    return len(features)


def _decoded(value):
    """A nested GeoJSON member as geopandas gives it: GDAL turns objects into JSON text (or keeps a dict)."""
    if isinstance(value, str):
        return json.loads(value)
    return value if isinstance(value, dict) else {}


def make_figure(out: Path) -> str:
    """Run the round trip in a temporary folder and save the figure to ``out`` (PNG); return a one-line summary.

    Parameters
    ----------
    out : the PNG to write.

    Returns
    -------
    str
        counts of cells, doorways and fields, and the geopandas version.
    """
    try:
        import geopandas as gpd
    except ImportError:  # not a dependency of chemomet
        sys.exit("this script needs geopandas (not a chemomet dependency): pip install geopandas")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch, Rectangle

    with tempfile.TemporaryDirectory() as tmp:
        detections, doorways_file = Path(tmp) / "detections.geojson", Path(tmp) / "doorways.geojson"
        n_written = write_detections(detections)
        cmd = [sys.executable, "-m", "chemomet.cli", "tmem", str(detections), "--pixel-size", str(PIXEL_SIZE_UM)]
        cmd += ["--geojson-out", str(doorways_file), "--json"]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.exit(f"chemomet tmem failed ({done.returncode}): {done.stderr.strip()}")
        summary = json.loads(done.stdout)
        # GDAL gives every GeoJSON file the WGS 84 CRS; these are image pixels, so the CRS is dropped
        cells = gpd.read_file(detections).set_crs(None, allow_override=True)
        marks = gpd.read_file(doorways_file).set_crs(None, allow_override=True)

    cells["class"] = [_decoded(c).get("name") for c in cells["classification"]]
    marks["class"] = [_decoded(c).get("name") for c in marks["classification"]]
    doors = marks[marks["class"] == "TMEM doorway"].copy()
    fields = marks[marks["class"] == "TMEM hot-spot field"].copy()
    ranks = [_decoded(m).get("TMEM: HPF rank") for m in fields["measurements"]]
    fields["rank"] = ranks
    fields = fields.sort_values("rank")
    assert len(cells) == n_written == summary["n_cells"] and len(doors) == summary["n_doorways"]

    # the ids round trip: each doorway's member ids are ids of the detection file
    by_id = cells.set_index("id")
    members: list[str] = []
    for meta in doors["metadata"]:
        meta = _decoded(meta)
        for key in ("tumour_ids", "macrophage_ids", "endothelial_ids"):
            members += [m for m in str(meta.get(key, "")).split(";") if m]
    missing = [m for m in members if m not in by_id.index]
    assert not missing, f"doorway member ids not in the detections: {missing[:3]}"
    member_cells = by_id.loc[sorted(set(members))]

    fig, (ax, zx) = plt.subplots(1, 2, figsize=(13, 6.4), gridspec_kw={"width_ratios": [1.15, 1]})
    colours = [COLOURS.get(c, "#dddddd") for c in cells["class"]]
    cells.plot(ax=ax, color=colours, lw=0)
    fields.boundary.plot(ax=ax, color="#2a7a2a", lw=1.4)
    doors.plot(ax=ax, marker="*", color="black", markersize=22, zorder=3)
    for _, f in fields.iterrows():
        c = f.geometry.centroid
        ax.annotate(str(int(f["rank"])), (c.x, c.y), color="#1d5c1d", fontsize=9, ha="center", va="center",
                    weight="bold")
    # the zoomed window: ZOOM_PX wide, on the doorway of field 1 with the most doorways within a third of it
    in_best = doors[doors.within(fields.iloc[0].geometry.buffer(1.0))]
    xy = [(p.x, p.y) for p in in_best.geometry]
    near = [sum(math.dist(a, b) < ZOOM_PX / 3 for b in xy) for a in xy]
    cx, cy = xy[max(range(len(xy)), key=near.__getitem__)]
    x0, y0, x1, y1 = cx - ZOOM_PX / 2, cy - ZOOM_PX / 2, cx + ZOOM_PX / 2, cy + ZOOM_PX / 2
    ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="#b03030", lw=1.5, zorder=4))
    ax.set_aspect("equal")
    ax.invert_yaxis()  # image coordinates: y down, as QuPath shows them
    ax.set_title(
        f"section: {len(cells):,} detections, {len(doors)} doorways, the {len(fields)} hot-spot fields (rank)",
        fontsize=11,
    )
    ax.set_xlabel(f"x, image pixels ({PIXEL_SIZE_UM} µm)")
    ax.set_ylabel("y, image pixels")

    window = cells.cx[x0:x1, y0:y1]
    window.plot(ax=zx, color=[COLOURS.get(c, "#dddddd") for c in window["class"]], edgecolor="#808080", lw=0.3)
    inside = member_cells.cx[x0:x1, y0:y1]
    gpd.GeoSeries(inside.geometry).boundary.plot(ax=zx, color="black", lw=1.3)
    fields.iloc[[0]].boundary.plot(ax=zx, color="#2a7a2a", lw=1.8)
    doors.cx[x0:x1, y0:y1].plot(
        ax=zx, marker="*", color="black", edgecolor="white", lw=0.6, markersize=110, zorder=3
    )
    zx.set_xlim(x0, x1)
    zx.set_ylim(y1, y0)  # y down
    zx.set_aspect("equal")
    n_best = int(_decoded(fields.iloc[0]["measurements"]).get("TMEM: doorways in field"))
    zx.set_title(
        f"zoom (red square, {ZOOM_PX * PIXEL_SIZE_UM:g} µm) around a doorway of field 1 "
        f"(green arc, {n_best} doorways):\n"
        "each doorway's member cells, found by their ids in the detection file, outlined in black",
        fontsize=10,
    )
    zx.set_xlabel("x, image pixels")
    handles = [Patch(fc=c, ec="#808080", label=n) for n, c in COLOURS.items()]
    handles += [
        Line2D([], [], marker="*", ls="", color="black", ms=10, label="TMEM doorway (point)"),
        Line2D([], [], color="#2a7a2a", lw=1.8, label="hot-spot field (polygon)"),
        Patch(fc="none", ec="black", lw=1.3, label="doorway member cell"),
    ]
    zx.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    fig.suptitle(
        f"chemomet tmem: QuPath-style detections in, doorways and fields out, both read back by geopandas "
        f"{gpd.__version__}; TMEM score {summary['tmem_score']}",
        fontsize=12,
    )
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return (
        f"{out}: {len(cells)} detections, {len(doors)} doorways ({len(set(members))} member ids, all found), "
        f"{len(fields)} fields, score {summary['tmem_score']}; geopandas {gpd.__version__}"
    )


def main() -> None:
    """Command line: ``--out PATH`` (default ``docs/figures/tme/geojson_round_trip.png``)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("geojson_round_trip.png"))
    print(make_figure(ap.parse_args().out))


if __name__ == "__main__":
    main()
