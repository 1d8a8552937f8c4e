"""Column presets as data: the shipped file, a user's preset file (API and ``--presets``), and its errors."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from tme_helpers import run_cli, tissue

from chemomet.errors import InputError
from chemomet.tme import PRESETS, ColumnMap, ReadOptions, read_cells, read_presets, score_tissue
from chemomet.tme.presets import parse_presets

GATES = {"MENA": 0.5, "CD68": 0.5, "CD31": 0.5}

# A lab's export of the same cells under other column names: what a user preset file describes.
RENAMED = {
    "x": "Pos X (um)",
    "y": "Pos Y (um)",
    "radius": "Nucleus+Cell Radius",
    "cell_type": "Cell Class",
    **{m: f"Mean {m} Intensity" for m in ("MENA", "CD68", "CD31", "TIE2", "CD163")},
}
LAB_PRESET = """\
# a user's preset file, same layout as chemomet/data/tme_presets.toml
[lab-export]
description = "the lab's segmentation export"
x = "Pos X (um)"
y = "Pos Y (um)"
label = "Cell Class"
radius = "Nucleus+Cell Radius"
marker_template = "Mean {marker} Intensity"

[lab-export.px]
x = "Pos X (px)"
y = "Pos Y (px)"
radius = "Radius (px)"
"""


@pytest.fixture(scope="module")
def st():
    return tissue(6000, 41, doorway_density_per_mm2=40.0)


@pytest.fixture(scope="module")
def exports(st, tmp_path_factory):
    """The synthetic tissue as a generic table, the lab's renamed copy, and the lab's preset file."""
    d = tmp_path_factory.mktemp("presets")
    generic, lab, presets = d / "generic.csv", d / "lab.csv", d / "lab_presets.toml"
    st.cells.to_csv(generic, index=False)
    st.cells.rename(columns=RENAMED).to_csv(lab, index=False)
    presets.write_text(LAB_PRESET, encoding="utf-8")
    return generic, lab, presets


def _scores(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in ("source", "column_units", "units_note")}


def test_shipped_presets_are_the_former_constants():
    """The data file holds the former constants (the QuPath pixel columns included), plus the units of HALO."""
    qupath = ColumnMap("Centroid X µm", "Centroid Y µm", "Class", None, "Cell: Area µm^2", "Cell: {marker}: Mean")
    assert list(PRESETS) == ["generic", "qupath", "halo"]
    assert PRESETS["generic"] == ColumnMap("x", "y", "cell_type", "radius", "area", "{marker}")
    assert PRESETS["qupath"].px == ColumnMap(
        "Centroid X px", "Centroid Y px", "Class", None, "Cell: Area px^2", "Cell: {marker}: Mean", units="px"
    )
    assert replace(PRESETS["qupath"], px=None) == qupath
    assert PRESETS["qupath"].for_units("um") is PRESETS["qupath"]
    assert PRESETS["qupath"].for_units("px") is PRESETS["qupath"].px
    assert PRESETS["halo"] == ColumnMap(
        ("XMin", "XMax"),
        ("YMin", "YMax"),
        "Phenotype",
        None,
        "Cell Area (µm²)",
        "{marker} Positive Classification",
        units="px",  # HALO's bounding boxes are image pixels; an area's unit comes from its header (or is stated)
    )


def test_shipped_presets_pass_the_full_validation():
    """The shipped file is read without the pydantic model (the command does not import pydantic); the validated
    path, :func:`parse_presets`, gives the same presets from it, with the same types (tuples for box pairs)."""
    import tomllib
    from importlib import resources

    text = resources.files("chemomet.data").joinpath("tme_presets.toml").read_text(encoding="utf-8")
    validated = parse_presets(tomllib.loads(text), "tme_presets.toml")
    assert validated == PRESETS and list(validated) == list(PRESETS)
    assert {k: repr(v) for k, v in validated.items()} == {k: repr(v) for k, v in PRESETS.items()}


def test_user_preset_scores_like_generic(st, exports):
    generic, lab, presets = exports
    assert set(read_presets(presets)) == {"lab-export"}
    want = score_tissue(read_cells(generic)).summary()
    assert want["tmem_score"] > 0 and want["n_doorways"] == len(st.doorway_macrophages)
    got = score_tissue(read_cells(lab, ReadOptions(preset="lab-export", presets_file=presets))).summary()
    assert _scores(got) == _scores(want)
    # the marker template of the preset: cell types by gating, the same as the generic table's
    gated = read_cells(lab, ReadOptions(preset="lab-export", presets_file=presets, gates=GATES))
    generic_gated = read_cells(generic, ReadOptions(gates=GATES))
    assert _scores(score_tissue(gated).summary()) == _scores(score_tissue(generic_gated).summary())
    # a ColumnMap in place of a name does the same
    direct = read_cells(lab, ReadOptions(preset=read_presets(presets)["lab-export"]))
    assert _scores(score_tissue(direct).summary()) == _scores(want)


def test_user_preset_on_the_command_line(exports, capsys):
    generic, lab, presets = exports
    code, want, err = run_cli([generic, "--json"], capsys)
    assert code == 0, err
    code, got, err = run_cli([lab, "--presets", presets, "--preset", "Lab-Export", "--json"], capsys)
    assert code == 0, err
    assert _scores(json.loads(got)) == _scores(json.loads(want))
    code, out, err = run_cli([lab, "--preset", "lab-export"], capsys)  # without the file: an unknown preset
    assert code == 2 and "preset = 'lab-export'" in err and "generic | qupath | halo" in err


def test_user_preset_pixel_columns(st, exports, tmp_path):
    """``[NAME.px]`` names the columns of an uncalibrated export; omitted keys (label, markers) are kept."""
    generic, _, presets = exports
    px = 0.5
    df = st.cells.rename(columns=RENAMED).rename(
        columns={"Pos X (um)": "Pos X (px)", "Pos Y (um)": "Pos Y (px)", "Nucleus+Cell Radius": "Radius (px)"}
    )
    df[["Pos X (px)", "Pos Y (px)", "Radius (px)"]] /= px
    path = tmp_path / "lab_px.csv"
    df.to_csv(path, index=False)
    with pytest.raises(InputError, match="--units px"):  # read as µm: the pixel columns give the hint
        read_cells(path, ReadOptions(preset="lab-export", presets_file=presets))
    table = read_cells(path, ReadOptions(preset="lab-export", presets_file=presets, pixel_size_um=px))
    ref = read_cells(generic)
    np.testing.assert_allclose(table.x_um, ref.x_um, rtol=1e-12)
    np.testing.assert_allclose(table.radius_um, ref.radius_um, rtol=1e-12)
    assert score_tissue(table).tmem_score == score_tissue(ref).tmem_score


BAD_PRESET_FILES = [
    ("[qupath]\nx = 'X'\ny = 'Y'\n", "preset name = 'qupath'"),
    ("[Lab]\nx = 'X'\ny = 'Y'\n", "preset name = 'Lab'"),
    ("[lab]\ny = 'Y'\n", "lab.x is missing"),
    ("[lab]\nx = 'X'\ny = 'Y'\ncolour = 'red'\n", "lab.colour = 'red' is not a known field"),
    ("[lab]\nx = ['X0', 'X1', 'X2']\ny = 'Y'\n", "lab.x = ['X0', 'X1', 'X2'] is invalid"),
    ("[lab]\nx = 'X'\ny = 'Y'\nmarker_template = 'Mean'\n", "lab.marker_template = 'Mean'"),
    ("[lab]\nx = 'X'\ny = 'Y'\n[lab.px]\nx = 3\n", "lab.px.x = 3 is invalid"),
    ("lab = 3\n", "lab = 3 is invalid"),
    ("# nothing\n", "no presets"),
    ("[lab\nx = 'X'\n", "not valid TOML"),
]


@pytest.mark.parametrize("text,expect", BAD_PRESET_FILES, ids=[e for _, e in BAD_PRESET_FILES])
def test_bad_preset_files(text, expect, tmp_path, capsys):
    path = tmp_path / "presets.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match="^presets.toml: ") as err:
        read_presets(path)
    assert expect in str(err.value)
    code, out, err = run_cli([tmp_path / "cells.csv", "--presets", path], capsys)  # before the cell table
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and expect in err


def test_missing_preset_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_presets(tmp_path / "nope.toml")
    with pytest.raises(InputError, match="is a directory"):
        read_presets(tmp_path)


def test_parse_presets_defaults():
    maps = parse_presets({"min": {"x": ["L", "R"], "y": ["T", "B"]}})
    assert maps["min"] == ColumnMap(("L", "R"), ("T", "B"), None, None, None, "{marker}", None)
    assert maps["min"].for_units("px") is maps["min"]
