"""Units of every column from its header or stated, never a silent wrong score (issue 14, item 1)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from tme_helpers import CORPUS, run_cli, table_of, tissue

from chemomet.errors import InputError
from chemomet.tme import header_unit
from chemomet.tme.doorways import find_doorways
from chemomet.tme.readers import ReadOptions, read_cells
from chemomet.tme.scores import score_tissue
from chemomet.tme.table import make_table
from chemomet.tme.units import parse_unit

PX = 0.5


@pytest.fixture(scope="module")
def st():
    return tissue(12_000, 51, doorway_density_per_mm2=50.0)


@pytest.fixture(scope="module")
def truth(st):
    return find_doorways(table_of(st.cells)).n


def _halo(df: pd.DataFrame, area_header: str = "Cell Area (µm²)") -> pd.DataFrame:
    """A HALO export: bounding box in pixels of PX µm, area in µm², phenotype labels."""
    r = df["radius"]
    return pd.DataFrame(
        {
            "XMin": (df["x"] - r) / PX,
            "XMax": (df["x"] + r) / PX,
            "YMin": (df["y"] - r) / PX,
            "YMax": (df["y"] + r) / PX,
            "Phenotype": df["cell_type"],
            area_header: np.pi * r**2,
        }
    )


@pytest.mark.parametrize(
    "name,unit",
    [
        ("Centroid X µm", "um"),
        ("Centroid X μm", "um"),
        ("Centroid Y px", "px"),
        ("Cell: Area µm^2", "um2"),
        ("Cell: Area px^2", "px2"),
        ("Cell Area (µm²)", "um2"),
        ("Cell Area (μm²)", "um2"),
        ("area_um2", "um2"),
        ("radius_um", "um"),
        ("Area (sq. microns)", "um2"),
        ("x (pixels)", "px"),
        ("Length mm", "mm"),
        ("XMin", None),
        ("x", None),
        ("Summary", None),
        ("minimum", None),
        ("Cell: CD68: Mean", None),
        ("Distance px to µm", None),  # two different units: ambiguous
    ],
)
def test_header_units(name, unit):
    assert header_unit(name) == unit


def test_parse_unit():
    assert parse_unit("µm²", "area", "area_units") == "um2"
    assert parse_unit("px", "area", "area_units") == "px2"
    assert parse_unit("Pixels", "length", "units") == "px"
    with pytest.raises(InputError, match="units"):
        parse_unit("inch", "length", "units")
    with pytest.raises(InputError, match="a length unit"):
        parse_unit("um^2", "length", "radius_units")


def test_halo_pixels_with_um2_area_score_like_micrometres(st, truth, tmp_path):
    """The measured silent failure: pixel bounding boxes + an area in µm² gave 0 doorways with or without a pixel
    size. Now: refused without a pixel size; with it, the area is not rescaled and every doorway is found."""
    path = tmp_path / "halo.csv"
    _halo(st.cells).to_csv(path, index=False)
    with pytest.raises(InputError, match="is in pixels.*--pixel-size"):
        read_cells(path, ReadOptions(preset="halo", other_classes=("Stroma",)))
    tab = read_cells(path, ReadOptions(preset="halo", other_classes=("Stroma",), pixel_size_um=PX))
    np.testing.assert_allclose(tab.radius_um, st.cells["radius"], rtol=1e-9)
    res = score_tissue(tab)
    assert res.doorways.n == truth > 0
    s = res.summary()
    assert s["column_units"]["XMin"] == "px" and s["column_units"]["Cell Area (µm²)"] == "µm²"
    assert s["pixel_size_um"] == PX
    assert "XMin, XMax, YMin, YMax in px (preset 'halo')" in s["units_note"]
    assert "Cell Area (µm²) in µm² (its header)" in s["units_note"]
    assert not [w for w in s["warnings"] if "implausible" in w]
    # stating the area as pixels contradicts its header: refused
    with pytest.raises(InputError, match="according to its header"):
        read_cells(path, ReadOptions(preset="halo", other_classes=("Stroma",), pixel_size_um=PX, area_units="px2"))


@pytest.mark.parametrize("fmt", [".csv", ".parquet"])
def test_halo_area_unit_from_its_header_or_stated(st, truth, tmp_path, fmt):
    """HALO names the unit of an area in its header ('Cell Area (µm²)'). The same column with px² in its header is
    found and scaled by the pixel size; with no unit in its header (renamed, or R's 'Cell.Area..µm..' read back
    without it) the unit is ambiguous beside pixel boxes: refused, naming the column, unless --area-units says."""
    def read(frame, **kw):
        path = tmp_path / f"halo{fmt}"
        frame.to_parquet(path) if fmt == ".parquet" else frame.to_csv(path, index=False)
        return read_cells(path, ReadOptions(preset="halo", other_classes=("Stroma",), **kw))

    um2 = _halo(st.cells)
    px2 = _halo(st.cells, "Cell Area (px²)").assign(**{"Cell Area (px²)": lambda f: f["Cell Area (px²)"] / PX**2})
    bare_um2 = um2.rename(columns={"Cell Area (µm²)": "Cell Area"})
    bare_px2 = px2.rename(columns={"Cell Area (px²)": "Cell Area"})
    # the header names the unit: read in it (px² scaled by the pixel size, µm² never)
    for frame, col, unit in ((um2, "Cell Area (µm²)", "µm²"), (px2, "Cell Area (px²)", "px²")):
        tab = read(frame, pixel_size_um=PX)
        np.testing.assert_allclose(tab.radius_um, st.cells["radius"], rtol=1e-9)
        assert tab.meta["column_units"][col] == unit and find_doorways(tab).n == truth
    # no unit in the header: refused in one line naming the column, whatever the pixel size
    for frame in (bare_um2, bare_px2):
        with pytest.raises(InputError, match="column 'Cell Area' \\(cell area\\) names no unit in its header") as err:
            read(frame, pixel_size_um=PX)
        assert "\n" not in str(err.value) and "--area-units um2" in str(err.value)
    # stated: read as stated, the right areas either way
    for frame, unit in ((bare_um2, "um2"), (bare_px2, "px2")):
        tab = read(frame, pixel_size_um=PX, area_units=unit)
        np.testing.assert_allclose(tab.radius_um, st.cells["radius"], rtol=1e-9)
        assert find_doorways(tab).n == truth
        assert "Cell Area in " + {"um2": "µm²", "px2": "px²"}[unit] + " (--area-units)" in tab.meta["units_note"]
    # px² stated without a pixel size: refused (the boxes need one anyway)
    with pytest.raises(InputError, match="is in pixels.*--pixel-size"):
        read(bare_px2, area_units="px2")
    # two columns that could both be the area: refused, the choice left to --area-col
    both = um2.assign(**{"Cell Area": um2["Cell Area (µm²)"]}).drop(columns=["Cell Area (µm²)"])
    both["Cell Area (px²)"] = px2["Cell Area (px²)"]
    with pytest.raises(InputError, match="several columns could be the cell area.*--area-col"):
        read(both, pixel_size_um=PX)


def test_area_without_unit_beside_pixel_coordinates_is_refused(st, truth, tmp_path):
    """A generic table in pixels with a header-less area: µm² or px²? Refused; --area-units decides."""
    df = st.cells
    path = tmp_path / "px.csv"
    pd.DataFrame(
        {"x": df["x"] / PX, "y": df["y"] / PX, "area": np.pi * (df["radius"] / PX) ** 2, "cell_type": df["cell_type"]}
    ).to_csv(path, index=False)
    with pytest.raises(InputError, match="column 'area' \\(cell area\\) names no unit.*coordinates are in pixels"):
        read_cells(path, ReadOptions(pixel_size_um=PX, other_classes=("Stroma",)))
    tab = read_cells(path, ReadOptions(pixel_size_um=PX, area_units="px2", other_classes=("Stroma",)))
    np.testing.assert_allclose(tab.radius_um, df["radius"], rtol=1e-9)
    assert find_doorways(tab).n == truth
    # in µm (the generic preset's unit), a header-less area is the coordinates' unit squared, as before
    pd.DataFrame(
        {"x": df["x"], "y": df["y"], "area": np.pi * df["radius"] ** 2, "cell_type": df["cell_type"]}
    ).to_csv(path, index=False)
    assert find_doorways(read_cells(path, ReadOptions(other_classes=("Stroma",)))).n == truth


def test_area_header_in_pixels_is_scaled(st, truth, tmp_path):
    """QuPath uncalibrated: centroid and area columns in px, both scaled by the pixel size."""
    df = st.cells
    q = pd.DataFrame(
        {
            "Class": df["cell_type"].where(df["cell_type"] != "Stroma", ""),
            "Centroid X px": df["x"] / PX,
            "Centroid Y px": df["y"] / PX,
            "Cell: Area px^2": np.pi * (df["radius"] / PX) ** 2,
        }
    )
    path = tmp_path / "q.tsv"
    q.to_csv(path, sep="\t", index=False)
    tab = read_cells(path, ReadOptions(preset="qupath", pixel_size_um=PX))
    np.testing.assert_allclose(tab.radius_um, df["radius"], rtol=1e-9)
    assert find_doorways(tab).n == truth
    assert tab.meta["column_units"] == {"Centroid X px": "px", "Centroid Y px": "px", "Cell: Area px^2": "px²"}
    # µm coordinates with a px² area column (a mixed export) need the pixel size for the area only
    mixed = q.assign(**{"Centroid X µm": df["x"], "Centroid Y µm": df["y"]}).drop(
        columns=["Centroid X px", "Centroid Y px"]
    )
    mixed.to_csv(path, sep="\t", index=False)
    opts = ReadOptions(preset="qupath", area_col="Cell: Area px^2")
    with pytest.raises(InputError, match="'Cell: Area px\\^2' is in pixels \\(its header\\)"):
        read_cells(path, opts)
    opts = ReadOptions(
        preset="qupath", area_col="Cell: Area px^2", x_col="Centroid X µm", y_col="Centroid Y µm", pixel_size_um=PX
    )
    tab = read_cells(path, opts)  # the headers say µm for x/y: the pixel size applies to the area only
    np.testing.assert_allclose(tab.x_um, df["x"], rtol=1e-12)
    np.testing.assert_allclose(tab.radius_um, df["radius"], rtol=1e-9)


def test_explicit_units_for_header_less_columns(st, truth, tmp_path):
    df = st.cells
    path = tmp_path / "generic.csv"
    # coordinates in px, radius in µm (a header without unit, stated explicitly)
    df.assign(x=df["x"] / PX, y=df["y"] / PX).to_csv(path, index=False)
    tab = read_cells(path, ReadOptions(pixel_size_um=PX, radius_units="um"))
    np.testing.assert_allclose(tab.radius_um, df["radius"], rtol=1e-12)
    assert find_doorways(tab).n == truth
    # coordinates in mm (a header-less column, stated)
    df.assign(x=df["x"] / 1000, y=df["y"] / 1000).to_csv(path, index=False)
    tab = read_cells(path, ReadOptions(units="mm", radius_units="um"))
    np.testing.assert_allclose(tab.x_um, df["x"], rtol=1e-12)
    # an area column without a unit: stated as µm² while the coordinates are px
    area = df.assign(x=df["x"] / PX, y=df["y"] / PX, area=np.pi * df["radius"] ** 2).drop(columns="radius")
    area.to_csv(path, index=False)
    tab = read_cells(path, ReadOptions(pixel_size_um=PX, area_units="µm²"))
    np.testing.assert_allclose(tab.radius_um, df["radius"], rtol=1e-9)
    # --units contradicting a header is refused; a pixel size with nothing in pixels is refused
    df.rename(columns={"x": "x_um", "y": "y_um", "radius": "radius_um"}).to_csv(path, index=False)
    named = {"x_col": "x_um", "y_col": "y_um", "radius_col": "radius_um"}
    with pytest.raises(InputError, match="according to its header"):
        read_cells(path, ReadOptions(**named, units="px", pixel_size_um=PX))
    with pytest.raises(InputError, match="pixel_size = 0.5 is invalid; allowed: no pixel size: no column is in px"):
        read_cells(path, ReadOptions(**named, pixel_size_um=PX))
    with pytest.raises(InputError, match="pixel_size"):
        read_cells(path, ReadOptions(**named, units="um", pixel_size_um=PX))


def test_missing_size_is_refused_and_the_default_is_said_in_words(st, tmp_path, capsys):
    path = tmp_path / "nosize.csv"
    st.cells.drop(columns="radius").to_csv(path, index=False)
    with pytest.raises(InputError, match="no cell size"):
        read_cells(path)
    code, out, err = run_cli([path], capsys)
    assert code == 2 and "--default-radius" in err and len(err.strip().splitlines()) == 1
    code, out, err = run_cli([path, "--default-radius", "5.5", "--json"], capsys)
    assert code == 0, err
    s = json.loads(out)
    assert s["radius_source"] == "default" and s["default_radius_um"] == 5.5
    assert any("default radius of 5.5 µm" in w for w in s["warnings"])
    code, out, err = run_cli([path, "--default-radius", "5.5"], capsys)
    assert "cell radius from the default of 5.5 µm for every cell" in out
    assert "warning: no radius, area or outline column: every cell was given the default radius" in out
    with pytest.raises(InputError, match="no cell size"):
        make_table([0.0, 10.0], [0.0, 0.0], [1, 2])


def test_plausibility_warnings(st):
    t = table_of(st.cells)
    assert not [w for w in score_tissue(t).warnings if "implausible" in w]
    small = make_table(t.x_um, t.y_um, t.cell_type, t.radius_um * PX, radius_source="area")
    w = score_tissue(small).warnings
    assert any("only 0.0% of cells touch any other" in x and "--area-units" in x for x in w), w
    big = make_table(t.x_um, t.y_um, t.cell_type, t.radius_um * 2.5, radius_source="column")
    w = score_tissue(big).warnings
    assert any("touch ten or more others" in x for x in w), w
    dup = make_table(np.r_[t.x_um, t.x_um[:500]], np.r_[t.y_um, t.y_um[:500]], np.r_[t.cell_type, t.cell_type[:500]],
                     np.r_[t.radius_um, t.radius_um[:500]])
    assert any("share their exact position" in x for x in score_tissue(dup).warnings)


def test_decimal_comma_and_classification_hints(tmp_path):
    with pytest.raises(InputError, match="decimal comma"):
        read_cells(CORPUS / "decimal_comma.csv")
    with pytest.raises(InputError, match="has a 'Classification' column.*--label-col 'Classification'"):
        read_cells(CORPUS / "qupath_classification.tsv", ReadOptions(preset="qupath"))
    tab = read_cells(CORPUS / "qupath_classification.tsv", ReadOptions(preset="qupath", label_col="Classification"))
    assert tab.counts()["macrophage"] == 9


def test_unit_keys_in_a_user_preset(st, truth, tmp_path):
    presets = tmp_path / "lab.toml"
    presets.write_text('[lab]\nx = "X"\ny = "Y"\nlabel = "Type"\narea = "Size"\nunits = "px"\narea_units = "um2"\n')
    df = st.cells
    path = tmp_path / "lab.csv"
    pd.DataFrame(
        {"X": df["x"] / PX, "Y": df["y"] / PX, "Type": df["cell_type"], "Size": np.pi * df["radius"] ** 2}
    ).to_csv(path, index=False)
    with pytest.raises(InputError, match="preset 'lab'"):
        read_cells(path, ReadOptions(preset="lab", presets_file=presets))
    tab = read_cells(path, ReadOptions(preset="lab", presets_file=presets, pixel_size_um=PX))
    assert find_doorways(tab).n == truth
    presets.write_text('[lab]\nx = "X"\ny = "Y"\nunits = "inch"\n')
    with pytest.raises(InputError, match="units"):
        read_cells(path, ReadOptions(preset="lab", presets_file=presets))


def test_units_in_the_anndata_output(st, tmp_path, capsys):
    """Column names holding "/" (not allowed as HDF5 keys) reach uns as JSON text."""
    import anndata

    path = tmp_path / "slash.csv"
    st.cells.rename(columns={"x": "x/um", "y": "y/um", "radius": "r/um"}).to_csv(path, index=False)
    h5 = tmp_path / "out.h5ad"
    code, out, err = run_cli([path, "--x-col", "x/um", "--y-col", "y/um", "--radius-col", "r/um", "--anndata-out", h5],
                             capsys)
    assert code == 0, err
    uns = anndata.read_h5ad(h5).uns["chemomet_tmem"]
    assert json.loads(uns["column_units"]) == {"x/um": "µm", "y/um": "µm", "r/um": "µm"}


def test_cli_refuses_an_ambiguous_halo_area_in_one_line(st, tmp_path, capsys):
    """Through the command: exit code 2 and one line naming the column; --area-units um2 scores it."""
    path = tmp_path / "halo.csv"
    _halo(st.cells.head(3000)).rename(columns={"Cell Area (µm²)": "Cell Area"}).to_csv(path, index=False)
    base = [str(path), "--preset", "halo", "--pixel-size", str(PX), "--other-class", "Stroma"]
    code, out, err = run_cli(base, capsys)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "column 'Cell Area' (cell area) names no unit in its header" in err and "--area-units" in err
    code, out, err = run_cli([*base, "--area-units", "um2", "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["column_units"]["Cell Area"] == "µm²"
