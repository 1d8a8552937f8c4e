"""QuPath GeoJSON round trip: detections in, doorways and fields out, read back with the same ids and coordinates.

The fixture ``corpus/qupath_cells.geojson`` is a QuPath 0.4-style export (image pixels, 0.5 µm/px): one tissue
annotation (skipped) and 14 cells with 12-gon outlines (circumradius 10 px), nuclei, UUIDs, classes (one derived,
``Macrophage: TIE2+``, one unclassified) and ``Cell: Area µm^2`` = 75 µm² (3·10² px² · 0.25 µm²/px²). Two
doorways are planted (one with two tumour cells, so 3 contact triangles) and a decoy (tumour–macrophage with the
endothelial cell 60 px away).
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from tme_helpers import CORPUS, run_cli

from chemomet.errors import InputError
from chemomet.tme import (
    ReadOptions,
    make_table,
    read_cells,
    read_geojson_cells,
    score_tissue,
    to_anndata,
    to_geojson,
    write_geojson,
)

FIXTURE = CORPUS / "qupath_cells.geojson"
PS = 0.5  # µm per pixel of the fixture
RAW = json.loads(FIXTURE.read_text(encoding="utf-8"))
CELLS = [f for f in RAW["features"] if f["properties"]["objectType"] == "cell"]
CENTRES_PX = np.array(
    [
        (1000, 1000),
        (1020, 1000),
        (1010, 1017),
        (1030, 1017),
        (1000, 1034),
        (3000, 1200),
        (3020, 1200),
        (3010, 1183),
        (2000, 2000),
        (2020, 2000),
        (2080, 2000),
        (1500, 1500),
        (1520, 1500),
        (2500, 400),
    ],
    dtype=float,
)


def _write(tmp_path, doc, name="cells.geojson"):
    path = tmp_path / name
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def scored():
    table = read_cells(FIXTURE, ReadOptions(pixel_size_um=PS))
    return table, score_tissue(table)


def test_fixture_is_read_as_qupath_means_it(scored):
    table, result = scored
    assert table.n == 14 and table.radius_source == "polygon" and table.polygons is not None
    # the centroid of each 12-gon outline is its centre (pixels → µm with the stated pixel size)
    np.testing.assert_allclose(table.xy_um, CENTRES_PX * PS, rtol=0, atol=1e-9)
    assert table.meta["cell_ids"].tolist() == [f["id"] for f in CELLS]
    assert table.cell_type.tolist() == [1, 2, 3, 1, 3, 1, 2, 3, 1, 2, 3, 0, 0, 0]
    assert table.tie2.tolist()[1] and not table.tie2[6]  # 'Macrophage: TIE2+' is a TIE2+ macrophage
    assert table.meta["coordinate_unit"] == "px" and table.meta["skipped_features"] == {"annotation": 1}
    assert "1 annotation" in table.meta["units_note"]
    s = result.summary()
    assert (s["n_doorways"], s["n_contact_triangles"], s["tmem_score"]) == (2, 3, 2)


def test_pixels_without_a_pixel_size_or_a_wrong_one_are_refused():
    with pytest.raises(InputError, match=r"no pixel size.*imply 0\.5 µm/px") as err:
        read_cells(FIXTURE)
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match=r"contradict.*'Cell: Area µm\^2'.*implies 0\.5"):
        read_cells(FIXTURE, ReadOptions(pixel_size_um=0.25))
    with pytest.raises(InputError, match=r"contradict"):  # pixels read as µm: the file's areas say otherwise
        read_cells(FIXTURE, ReadOptions(units="um"))


def test_round_trip_same_ids_coordinates_counts_and_score(scored, tmp_path):
    table, result = scored
    out = tmp_path / "tmem.geojson"
    write_geojson(result, out, include_cells=True)
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["type"] == "FeatureCollection" and doc["chemomet"]["coordinate_unit"] == "px"
    assert doc["chemomet"]["pixel_size_um"] == PS
    by_class: dict[str, list] = {}
    for f in doc["features"]:
        by_class.setdefault(f["properties"].get("classification", {}).get("name"), []).append(f)
    doors, fields = by_class["TMEM doorway"], by_class["TMEM hot-spot field"]
    assert len(doors) == result.doorways.n == 2 and len(fields) == result.fields.n_found == 2
    assert all(f["properties"]["objectType"] == "annotation" for f in doors + fields)
    # doorways at the macrophages, in the input's pixels, to float precision
    got = np.array([f["geometry"]["coordinates"] for f in doors])
    np.testing.assert_allclose(got, CENTRES_PX[[1, 6]], rtol=1e-12, atol=0)
    ids = [f["id"] for f in CELLS]
    meta = doors[0]["properties"]["metadata"]
    assert meta["macrophage_ids"] == ids[1]
    assert meta["tumour_ids"].split(";") == [ids[0], ids[3]]  # in input order
    assert meta["endothelial_ids"] == ids[2]
    assert doors[0]["properties"]["measurements"]["TMEM: contact triangles"] == 2
    assert sorted(f["properties"]["measurements"]["TMEM: doorways in field"] for f in fields) == [1, 1]
    for f in fields:  # the field circle, in pixels: radius 252.3 µm / 0.5
        ring = np.array(f["geometry"]["coordinates"][0])
        assert ring.shape == (73, 2) and (ring[0] == ring[-1]).all()
        centre = ring[:-1].mean(axis=0)
        np.testing.assert_allclose(np.hypot(*(ring - centre).T), result.fields.radius_um / PS, rtol=1e-9)
    # read back: the same cells, ids, classes and coordinates, and the same score
    back = read_cells(out, ReadOptions(pixel_size_um=PS))
    assert back.meta["cell_ids"].tolist() == ids
    assert back.meta["skipped_features"] == {"annotation": 4}
    np.testing.assert_allclose(back.xy_um, table.xy_um, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(back.polygons.xy, table.polygons.xy, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(back.cell_type, table.cell_type)
    np.testing.assert_array_equal(back.tie2, table.tie2)
    again = score_tissue(back).summary()
    s = result.summary()
    for key in ("tmem_score", "n_doorways", "n_contact_triangles", "hpf_counts", "n_vessels"):
        assert again[key] == s[key], key
    flags = {f["id"]: f["properties"]["measurements"] for f in doc["features"] if f["id"] in ids}
    assert flags[ids[1]]["TMEM: in contact triangle"] == 1 and flags[ids[9]]["TMEM: in contact triangle"] == 0
    assert flags[ids[1]]["TMEM: HPF rank"] >= 1 and flags[ids[9]]["TMEM: doorway id"] == -1


def test_points_and_qupath_03_layout_give_the_same_doorways(tmp_path):
    """Centroid-only export (Point geometry, size from 'Cell: Area µm^2'); QuPath 0.3 keys; no ids."""
    doc = copy.deepcopy(RAW)
    for f, (x, y) in zip(
        CELLS and [f for f in doc["features"] if f["properties"]["objectType"] == "cell"], CENTRES_PX, strict=True
    ):
        f["geometry"] = {"type": "Point", "coordinates": [x, y]}
        del f["id"], f["nucleusGeometry"]
        p = f["properties"]
        p["object_type"] = p.pop("objectType")
        p["measurements"] = [{"name": k, "value": v} for k, v in p["measurements"].items()]
    t = read_cells(_write(tmp_path, doc), ReadOptions(pixel_size_um=PS))
    assert t.radius_source == "area" and t.polygons is None
    np.testing.assert_allclose(t.radius_um, np.sqrt(75.0 / np.pi))  # µm² never rescaled by the pixel size
    np.testing.assert_allclose(t.xy_um, CENTRES_PX * PS)
    assert t.meta["cell_ids"].tolist()[:2] == ["#1", "#2"]  # feature index (the annotation is #0)
    s = score_tissue(t).summary()
    assert (s["n_doorways"], s["tmem_score"]) == (2, 2)
    # nuclei instead of cell boundaries: 4 px nuclei do not touch, so no doorway (and no silent fallback)
    t_nuc = read_cells(FIXTURE, ReadOptions(pixel_size_um=PS, geometry="nucleus"))
    assert t_nuc.radius_source == "polygon" and score_tissue(t_nuc).doorways.n == 0


def test_multipolygon_centroid_is_area_weighted_and_outline_the_largest_part(tmp_path):
    big = [[0, 0], [4, 0], [4, 4], [0, 4], [0, 0]]  # 16 px², centroid (2, 2)
    small = [[10, 0], [12, 0], [12, 2], [10, 2], [10, 0]]  # 4 px², centroid (11, 1)
    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": "m",
                "geometry": {"type": "MultiPolygon", "coordinates": [[small], [big]]},
                "properties": {"classification": {"name": "Tumor"}},
            },
            {
                "type": "Feature",
                "id": "p",
                "geometry": {"type": "Polygon", "coordinates": [[[20, 20, 1.5], [24, 20, 1.5], [22, 23, 1.5]]]},
                "properties": {"classification": {"name": "Stroma"}},
            },
        ],
    }
    cells = read_geojson_cells(_write(tmp_path, doc))
    np.testing.assert_allclose([cells.x[0], cells.y[0]], [(16 * 2 + 4 * 11) / 20, (16 * 2 + 4 * 1) / 20])
    np.testing.assert_allclose([cells.x[1], cells.y[1]], [22.0, 21.0])  # z coordinates ignored
    assert cells.outlines.sizes.tolist() == [4, 3] and cells.outlines.area().tolist() == [16.0, 6.0]


def _mutate(edit):
    doc = copy.deepcopy(RAW)
    edit(doc["features"])
    return doc


MALFORMED = {
    "line": (lambda fs: fs[3]["geometry"].update(type="LineString"), r"features\[3\]\.geometry\.type"),
    "text coordinate": (
        lambda fs: fs[5]["geometry"]["coordinates"][0][2].__setitem__(0, "12.5"),
        r"features\[5\]\.geometry\.coordinates\[0\]",
    ),
    "NaN vertex": (
        lambda fs: fs[2]["geometry"]["coordinates"][0][1].__setitem__(1, float("nan")),
        r"features\[2\]\.geometry\.coordinates\[0\]",
    ),
    "two vertices": (
        lambda fs: fs[4]["geometry"].update(coordinates=[[[0, 0], [1, 1], [0, 0]]]),
        r"features\[4\]\.geometry\.coordinates\[0\]",
    ),
    "no geometry": (lambda fs: fs[7].pop("geometry"), r"features\[7\]\.geometry = 'missing'"),
    "classification number": (
        lambda fs: fs[6]["properties"].update(classification=3),
        r"features\[6\]\.properties\.classification",
    ),
    "measurements text": (
        lambda fs: fs[8]["properties"].update(measurements="area=5"),
        r"features\[8\]\.properties\.measurements",
    ),
    "feature not an object": (lambda fs: fs.__setitem__(9, [1, 2]), r"features\[9\]\.type"),
    "duplicate id": (lambda fs: fs[10].update(id=fs[1]["id"]), r"features\[10\]\.id.*features\[1\]"),
    "no cells": (lambda fs: [f["properties"].update(objectType="annotation") for f in fs], r"no cell detections"),
    "no classification": (
        lambda fs: [f["properties"].pop("classification", None) for f in fs[1:]],
        r"none of the 14 detections",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_geojson_is_one_clear_line(case, tmp_path):
    edit, pattern = MALFORMED[case]
    path = _write(tmp_path, _mutate(edit))
    with pytest.raises(InputError, match=pattern) as err:
        read_cells(path, ReadOptions(pixel_size_um=PS))
    assert "\n" not in str(err.value) and str(err.value).startswith("cells.geojson: ")


def test_not_geojson_and_bad_measurement_named(tmp_path):
    bad = tmp_path / "bad.geojson"
    bad.write_text('{"type": "FeatureCollection", "features": [', encoding="utf-8")
    with pytest.raises(InputError, match=r"not valid JSON \(line 1"):
        read_geojson_cells(bad)
    with pytest.raises(InputError, match=r"not a GeoJSON FeatureCollection"):
        read_geojson_cells(_write(tmp_path, {"type": "Topology"}))
    doc = copy.deepcopy(RAW)
    for f in doc["features"][1:]:
        f["geometry"] = {"type": "Point", "coordinates": [1.0 * len(f["id"]), 2.0]}
    doc["features"][6]["properties"]["measurements"]["Cell: Area µm^2"] = None  # NaN written by QuPath
    with pytest.raises(InputError, match=r"features\[6\]\.properties\.measurements\['Cell: Area µm\^2'\]"):
        read_cells(_write(tmp_path, doc), ReadOptions(pixel_size_um=PS))


def test_output_units_are_never_changed_silently():
    t = make_table([0.0, 10.0, 5.0, 30.0], [0.0, 0.0, 8.0, 0.0], [1, 2, 3, 0], [5.0] * 4)
    r = score_tissue(t)
    with pytest.raises(InputError, match=r"read in µm.*--geojson-pixel-size"):
        to_geojson(r)
    fc = to_geojson(r, pixel_size_um=0.25)  # µm → pixels only when a pixel size is stated
    assert fc["features"][1]["geometry"]["coordinates"] == [40.0, 0.0]
    px = score_tissue(read_cells(FIXTURE, ReadOptions(pixel_size_um=PS)))
    with pytest.raises(InputError, match=r"read with \(0\.5 µm/px\)"):
        to_geojson(px, pixel_size_um=0.25)
    assert to_geojson(px, pixel_size_um=PS)["chemomet"]["pixel_size_um"] == PS


def test_anndata_keeps_object_ids_and_original_classes(scored):
    _, result = scored
    ad = to_anndata(result)
    assert ad.obs_names.tolist() == [f["id"] for f in CELLS]
    assert ad.obs["source_class"].tolist()[:3] == ["Tumor", "Macrophage: TIE2+", "Endothelial"]
    assert ad.obs["source_class"].tolist()[-1] == ""  # unclassified


def test_cli_geojson_in_and_out(tmp_path, capsys):
    out = tmp_path / "doorways.geojson"
    code, stdout, err = run_cli(
        [FIXTURE, "--pixel-size", "0.5", "--geojson-out", out, "--geojson-cells", "--json"], capsys
    )
    assert code == 0, err
    s = json.loads(stdout)
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["chemomet"]["tmem_score"] == s["tmem_score"] == 2
    assert sum(f["properties"]["objectType"] == "detection" for f in doc["features"]) == 14
    code, _, err = run_cli([FIXTURE, "--geojson-out", tmp_path / "x.geojson"], capsys)  # no pixel size
    assert code == 2 and len(err.strip().splitlines()) == 1 and not (tmp_path / "x.geojson").exists()
    code, _, err = run_cli([FIXTURE, "--pixel-size", "0.5", "--geojson-cells"], capsys)
    assert code == 2 and "--geojson-out" in err
