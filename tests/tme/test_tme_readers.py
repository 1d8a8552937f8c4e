"""Readers: presets (generic, QuPath, HALO), gating, AnnData, class names, radius sources."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tme_helpers import CODES, table_of, tissue

from chemomet.errors import InputError
from chemomet.tme.doorways import find_doorways
from chemomet.tme.readers import ReadOptions, read_cells
from chemomet.tme.table import TUMOUR

GATES = {"MENA": 0.5, "CD68": 0.5, "CD31": 0.5}


@pytest.fixture(scope="module")
def st():
    return tissue(6000, 41, doorway_density_per_mm2=40.0)


@pytest.fixture(scope="module")
def truth(st):
    return np.unique(find_doorways(table_of(st.cells)).triangles[:, 1])


def _doormacs(table):
    return np.unique(find_doorways(table).triangles[:, 1])


def _qupath(df, mu="µ", derived=True):
    cls = df["cell_type"].where(df["cell_type"] != "Stroma", "")
    if derived:
        tie2 = (df["TIE2"] >= 0.5) & (df["cell_type"] == "Macrophage")
        cls = cls.where(~tie2, "Macrophage: TIE2+")
    return pd.DataFrame(
        {
            "Image": "slide.svs",
            "Name": "Cell",
            "Class": cls,
            "Parent": "Annotation",
            "ROI": "Polygon",
            f"Centroid X {mu}m": df["x"],
            f"Centroid Y {mu}m": df["y"],
            f"Cell: Area {mu}m^2": np.pi * df["radius"] ** 2,
            "Cell: CD68: Mean": df["CD68"],
            "Cell: MENA: Mean": df["MENA"],
            "Cell: CD31: Mean": df["CD31"],
        }
    )


@pytest.mark.parametrize("mu", ["µ", "μ"])  # micro sign and Greek mu
def test_qupath_preset_tsv(st, truth, tmp_path, mu):
    path = tmp_path / "qupath.tsv"
    _qupath(st.cells, mu).to_csv(path, sep="\t", index=False)
    tab = read_cells(path, ReadOptions(preset="qupath"))
    assert tab.radius_source == "area"
    np.testing.assert_allclose(tab.radius_um, st.cells["radius"], rtol=1e-9)
    np.testing.assert_array_equal(_doormacs(tab), truth)
    mac = tab.cell_type == 2
    want = ((st.cells["TIE2"] >= 0.5) & (st.cells["cell_type"] == "Macrophage")).to_numpy()
    np.testing.assert_array_equal(tab.tie2[mac], want[mac])


def test_qupath_pixels_and_gating(st, truth, tmp_path):
    q = _qupath(st.cells, derived=False)
    px = 0.25
    q = q.rename(
        columns={
            "Centroid X µm": "Centroid X px",
            "Centroid Y µm": "Centroid Y px",
            "Cell: Area µm^2": "Cell: Area px^2",
        }
    )
    q["Centroid X px"] /= px
    q["Centroid Y px"] /= px
    q["Cell: Area px^2"] /= px**2
    path = tmp_path / "q.csv"
    q.to_csv(path, index=False)
    with pytest.raises(InputError, match="--units px"):
        read_cells(path, ReadOptions(preset="qupath"))
    tab = read_cells(path, ReadOptions(preset="qupath", pixel_size_um=px, gates=GATES))
    np.testing.assert_array_equal(_doormacs(tab), truth)


def test_custom_class_names_and_unknown_labels(st, truth, tmp_path):
    df = st.cells.copy()
    df["cell_type"] = df["cell_type"].map(
        {"Tumor": "TC", "Macrophage": "MAC", "Endothelial": "EC", "Stroma": "FB"}
    )
    path = tmp_path / "c.csv"
    df.to_csv(path, index=False)
    with pytest.raises(InputError, match="unknown cell labels"):
        read_cells(path)
    opts = ReadOptions(
        tumour_class="tc", macrophage_class="MAC", endothelial_class="EC", other_classes=("FB",)
    )
    np.testing.assert_array_equal(_doormacs(read_cells(path, opts)), truth)
    loose = ReadOptions(
        tumour_class="TC", macrophage_class="MAC", endothelial_class="EC", ignore_unknown_labels=True
    )
    np.testing.assert_array_equal(_doormacs(read_cells(path, loose)), truth)


def test_gating_equals_labels_and_flags(st, truth, tmp_path):
    path = tmp_path / "g.parquet"
    st.cells.drop(columns="cell_type").to_parquet(path)
    tab = read_cells(path, ReadOptions(gates={**GATES, "TIE2": 0.5, "cd163": 0.5}))
    np.testing.assert_array_equal(tab.cell_type, st.cells["cell_type"].map(CODES).to_numpy())
    np.testing.assert_array_equal(_doormacs(tab), truth)
    np.testing.assert_array_equal(tab.tie2, st.cells["TIE2"].to_numpy() >= 0.5)
    assert tab.cd163.sum() > 0


def test_ambiguous_cells_are_other(tmp_path):
    df = pd.DataFrame(
        {"x": np.arange(12) * 10.0, "y": 0.0, "MENA": [0.9] * 12, "CD68": [0.9] + [0.1] * 11, "CD31": 0.1}
    )
    path = tmp_path / "amb.csv"
    df.to_csv(path, index=False)
    with pytest.raises(InputError, match="no cell size"):
        read_cells(path, ReadOptions(gates=GATES))
    tab = read_cells(path, ReadOptions(gates=GATES, default_radius_um=5.0))
    assert tab.n_ambiguous == 1 and tab.cell_type[0] == 0 and (tab.cell_type[1:] == TUMOUR).all()
    assert tab.radius_source == "default" and (tab.radius_um == 5.0).all()


def test_halo_preset(st, truth, tmp_path):
    """HALO writes the bounding box in image pixels and the area in µm²: the pixel size scales the box only."""
    df = st.cells
    r = df["radius"]
    px = 0.4965
    halo = pd.DataFrame(
        {
            "Object Id": np.arange(len(df)),
            "XMin": (df["x"] - r) / px,
            "XMax": (df["x"] + r) / px,
            "YMin": (df["y"] - r) / px,
            "YMax": (df["y"] + r) / px,
            "Cell Area (µm²)": np.pi * r**2,
            **{f"{m} Positive Classification": (df[m] >= 0.5).astype(int) for m in ("MENA", "CD68", "CD31")},
        }
    )
    path = tmp_path / "halo.csv"
    halo.to_csv(path, index=False)
    with pytest.raises(InputError, match="'XMin' is in pixels \\(preset 'halo'\\).*--pixel-size"):
        read_cells(path, ReadOptions(preset="halo", gates=GATES))
    tab = read_cells(path, ReadOptions(preset="halo", gates=GATES, pixel_size_um=px))
    np.testing.assert_allclose(tab.x_um, df["x"], atol=1e-9)
    np.testing.assert_allclose(tab.radius_um, r, rtol=1e-9)  # the µm² area is not rescaled
    np.testing.assert_array_equal(_doormacs(tab), truth)
    assert tab.meta["column_units"] == {
        "XMin": "px", "XMax": "px", "YMin": "px", "YMax": "px", "Cell Area (µm²)": "µm²"
    }
    # a calibrated HALO export (bounding box in µm): say so
    cal = halo.assign(**{c: halo[c] * px for c in ("XMin", "XMax", "YMin", "YMax")})
    cal.to_csv(path, index=False)
    tab = read_cells(path, ReadOptions(preset="halo", gates=GATES, units="um"))
    np.testing.assert_array_equal(_doormacs(tab), truth)
    # an area column without a unit in its header, beside pixel boxes, is ambiguous: refused unless stated
    halo.rename(columns={"Cell Area (µm²)": "Cell Area"}).to_csv(path, index=False)
    with pytest.raises(InputError, match="column 'Cell Area' \\(cell area\\) names no unit.*--area-units um2"):
        read_cells(path, ReadOptions(preset="halo", gates=GATES, pixel_size_um=px, area_col="Cell Area"))
    tab = read_cells(path, ReadOptions(preset="halo", gates=GATES, pixel_size_um=px, area_units="um2"))
    np.testing.assert_allclose(tab.radius_um, r, rtol=1e-9)


def test_anndata_labels_and_gating(st, truth, tmp_path):
    import anndata

    df = st.cells
    markers = ["MENA", "CD68", "CD31", "TIE2"]
    ad = anndata.AnnData(
        X=df[markers].to_numpy(np.float32),
        obs=pd.DataFrame(
            {"cell_type": pd.Categorical(df["cell_type"]), "radius": df["radius"].values},
            index=[f"c{i}" for i in range(len(df))],
        ),
        var=pd.DataFrame(index=markers),
    )
    ad.obsm["spatial"] = df[["x", "y"]].to_numpy()
    path = tmp_path / "cells.h5ad"
    ad.write_h5ad(path)
    tab = read_cells(path)
    np.testing.assert_array_equal(_doormacs(tab), truth)
    gated = read_cells(path, ReadOptions(gates={**GATES, "TIE2": 0.5}))
    np.testing.assert_array_equal(_doormacs(gated), truth)
    assert gated.tie2 is not None and gated.tie2.sum() > 0


def test_default_radius_and_units_check(tmp_path):
    df = pd.DataFrame({"x": np.arange(20) * 10.0, "y": 0.0, "cell_type": "Tumor"})
    path = tmp_path / "r.csv"
    df.to_csv(path, index=False)
    with pytest.raises(InputError, match="no cell size.*--default-radius"):
        read_cells(path)
    tab = read_cells(path, ReadOptions(default_radius_um=6.5))
    assert tab.radius_um[0] == 6.5 and tab.radius_source == "default"
    with pytest.raises(InputError, match="wrong unit"):
        read_cells(path, ReadOptions(units="px", pixel_size_um=0.01, default_radius_um=5.0))
    opts = ReadOptions(units="px", pixel_size_um=0.01, check_units=False, default_radius_um=5.0)
    assert read_cells(path, opts).n == 20


def test_labels_read_as_categories_map_like_text(tmp_path):
    """The label column of a Parquet or .h5ad file is read as categories (one code per cell): the same cell types,
    TIE2 flags and class names as the text path (CSV), missing and padded labels included, and a category no cell
    has (an AnnData subset keeps them) is not an unknown label."""
    import anndata

    labels = ["Tumor", " Macrophage: TIE2+", None, "Endothelial ", "Stroma", "Macrophage: TIE2-", "", "Tumor"]
    n = len(labels)
    df = pd.DataFrame({"x": np.arange(n) * 11.0, "y": np.zeros(n), "radius": np.full(n, 5.0), "cell_type": labels})
    df.to_csv(tmp_path / "c.csv", index=False)
    df.to_parquet(tmp_path / "c.parquet")
    cat = df.assign(cell_type=pd.Categorical(labels, categories=[*sorted({v for v in labels if v}), "Weird"]))
    cat.to_parquet(tmp_path / "cat.parquet")
    ad = anndata.AnnData(obs=cat[["radius", "cell_type"]].set_axis([f"c{i}" for i in range(n)]))
    ad.obsm["spatial"] = df[["x", "y"]].to_numpy()
    ad.write_h5ad(tmp_path / "c.h5ad")
    opts = ReadOptions(check_units=False)
    ref = read_cells(tmp_path / "c.csv", opts)
    assert ref.cell_type.tolist() == [1, 2, 0, 3, 0, 2, 0, 1] and ref.tie2.tolist()[1] and not ref.tie2[5]
    for name in ("c.parquet", "cat.parquet", "c.h5ad"):
        t = read_cells(tmp_path / name, opts)
        assert t.cell_type.tolist() == ref.cell_type.tolist() and t.tie2.tolist() == ref.tie2.tolist(), name
        names = t.meta["class_names"][t.meta["class_index"]]
        assert names.tolist() == ref.meta["class_names"][ref.meta["class_index"]].tolist(), name
