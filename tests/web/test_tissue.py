"""The tissue page's pixel size and area unit: a pixel-coordinate export is scored from the browser, under the
rules of ``chemomet tmem --pixel-size`` and ``--area-units``."""

from __future__ import annotations

import math
import re

import pytest

from chemomet.web.app import create_app
from chemomet.web.store import StudyStore
from tests.web.helpers import CELLS, client

PX = 0.5
CELLS_UM = [(0.0, 0.0, 5.0, "Tumor"), (10.0, 0.0, 5.0, "Macrophage"), (5.0, 8.0, 5.0, "Endothelial"),
            (40.0, 40.0, 5.0, "Tumor")]
"""The cells of :data:`tests.web.helpers.CELLS` (µm): one doorway."""


def halo(area_header: str = "Cell Area (µm²)") -> bytes:
    """The same cells as a HALO export: bounding boxes in pixels of PX µm, the area in µm²."""
    rows = ["XMin,XMax,YMin,YMax,Phenotype," + area_header]
    for x, y, r, kind in CELLS_UM:
        box = ",".join(f"{v / PX:g}" for v in (x - r, x + r, y - r, y + r))
        rows.append(f"{box},{kind},{math.pi * r * r!r}")
    return ("\n".join(rows) + "\n").encode()


def post(c, content: bytes, **fields):
    return c.post("/tissue", files={"cells": ("cells.csv", content, "text/csv")},
                  data={"preset": "generic", "convention": "10HPF", **fields})


def error_of(r) -> str:
    m = re.search(r'id="tissue-error" role="alert">([^<]*)<', r.text)
    return m.group(1) if m else ""


@pytest.fixture
def app_store(tmp_path):
    store = tmp_path / "s.sqlite"
    return create_app(store), store


def test_a_pixel_export_is_scored_with_the_pixel_size(app_store):
    app, store = app_store
    with client(app) as c:
        um = post(c, CELLS.encode())
        assert um.status_code == 200 and 'id="tissue-score">1<' in um.text
        page = c.get("/tissue").text
        assert 'id="t-pixel-size" name="pixel_size"' in page and 'id="t-area-units" name="area_units"' in page
        # HALO's pixel boxes without a pixel size: refused in one line, as by the command
        r = post(c, halo(), preset="halo")
        assert r.status_code == 422
        assert "column &#39;XMin&#39; is in pixels (preset &#39;halo&#39;) and no pixel size is given" in error_of(r)
        # with it: the same cells, the same score, the units said; the field keeps its value
        r = post(c, halo(), preset="halo", pixel_size=" 0.5 ")
        assert r.status_code == 200, error_of(r)
        assert 'id="tissue-score">1<' in r.text and 'name="pixel_size" value="0.5"' in r.text
    rec = StudyStore(store).records()[-1]
    assert rec.inputs["pixel_size_um"] == PX and rec.inputs["preset"] == "halo"
    assert rec.outputs["pixel_size_um"] == PX and rec.outputs["column_units"]["XMin"] == "px"


@pytest.mark.parametrize("text,said", [
    ("abc", "pixel size = &#39;abc&#39; is invalid; allowed: a number in (0, 100], with a decimal point"),
    ("0,5", "pixel size = &#39;0,5&#39; is invalid"),
    ("0", "pixel_size = 0.0 is invalid; allowed: a number in (0, 100]"),
    ("-1", "pixel_size = -1.0 is invalid"),
    ("250", "pixel_size = 250.0 is invalid"),
    ("nan", "pixel_size = nan is invalid"),
])
def test_a_bad_pixel_size_is_refused(app_store, text, said):
    app, _ = app_store
    with client(app) as c:
        r = post(c, halo(), preset="halo", pixel_size=text)
    assert r.status_code == 422 and said in error_of(r), error_of(r)
    assert 'id="tissue-result"' not in r.text


def test_the_pixel_size_follows_the_commands_rules(app_store, tmp_path):
    """As ``chemomet tmem cells.csv --pixel-size 0.5``: header-less x, y and radius are then pixels."""
    from chemomet.tme import ReadOptions, read_cells, score_tissue

    app, store = app_store
    path = tmp_path / "cells.csv"
    path.write_text(CELLS)
    want = score_tissue(read_cells(path, ReadOptions(pixel_size_um=PX))).summary()
    with client(app) as c:
        r = post(c, CELLS.encode(), pixel_size="0.5")
    assert r.status_code == 200, error_of(r)
    got = StudyStore(store).records()[-1].outputs
    assert got["column_units"] == want["column_units"] == {"x": "px", "y": "px", "radius": "px"}
    assert got["units_note"] == want["units_note"] and got["tmem_score"] == want["tmem_score"]


def test_an_area_without_unit_needs_the_area_unit(app_store):
    app, _ = app_store
    bare = halo("Cell Area")
    with client(app) as c:
        r = post(c, bare, preset="halo", pixel_size="0.5")
        assert r.status_code == 422
        assert "column &#39;Cell Area&#39; (cell area) names no unit in its header" in error_of(r)
        r = post(c, bare, preset="halo", pixel_size="0.5", area_units="um2")
        assert r.status_code == 200 and 'id="tissue-score">1<' in r.text, error_of(r)
        assert '<option value="um2" selected>' in r.text
        r = post(c, bare, preset="halo", pixel_size="0.5", area_units="furlong2")
        assert r.status_code == 422 and "area unit = &#39;furlong2&#39; is invalid" in error_of(r)
