"""``chemomet tmem``: outputs, and the bad-input corpus (exit code 2, one line, no file left behind)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from tme_helpers import CORPUS, run_cli, run_cli_subprocess, tissue


@pytest.fixture(scope="module")
def cells_csv(tmp_path_factory):
    st = tissue(12_000, 51, doorway_density_per_mm2=50.0)
    path = tmp_path_factory.mktemp("cli") / "cells.csv"
    st.cells.to_csv(path, index=False)
    return path, st


def test_json_toml_map_and_anndata(cells_csv, tmp_path, capsys):
    path, st = cells_csv
    png, h5 = tmp_path / "map.png", tmp_path / "out.h5ad"
    code, out, err = run_cli(
        [path, "--json", "--map", png, "--anndata-out", h5, "--convention", "20HPF", "--hpf-area", "0.24"],
        capsys,
    )
    assert code == 0, err
    s = json.loads(out)
    assert s["tmem_convention"] == "20HPF" and s["hpf_area_mm2"] == 0.24 and isinstance(s["tmem_score"], int)
    assert s["n_doorways"] == len(st.doorway_macrophages)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import anndata

    ad = anndata.read_h5ad(h5)
    assert ad.n_obs == len(st.cells)
    np.testing.assert_array_equal(
        np.flatnonzero(ad.obs["tmem_doorway_macrophage"].to_numpy()), st.doorway_macrophages
    )
    assert int(ad.uns["chemomet_tmem"]["tmem_score"]) == s["tmem_score"]
    assert (ad.obs["tmem_hpf"] > 0).sum() > 0
    np.testing.assert_allclose(ad.obsm["spatial"], st.cells[["x", "y"]].to_numpy())
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary files left
    # the TOML lines paste straight into a patient file
    code, out, _ = run_cli([path, "--toml", "--convention", "20hpf", "--hpf-area", "0.24"], capsys)
    assert code == 0
    import tomllib

    assert tomllib.loads(out) == {"tmem_score": s["tmem_score"], "tmem_convention": "20HPF"}


def test_human_output_baseline_and_h5ad_roundtrip(cells_csv, tmp_path, capsys):
    path, st = cells_csv
    pre = tmp_path / "pre.csv"
    st_pre = tissue(12_000, 52, doorway_density_per_mm2=15.0)
    st_pre.cells.to_csv(pre, index=False)
    code, out, err = run_cli([path, "--baseline", pre, "--json"], capsys)
    assert code == 0, err
    c = json.loads(out)["comparison"]
    assert c["tmem_fold_change"] > 1 and c["tmem_fold_change_ci"][0] < c["tmem_fold_change"]
    code, out, _ = run_cli([path, "--baseline", pre], capsys)
    assert code == 0 and out.startswith("TMEM score: ") and "fold change" in out
    # .h5ad written by us is read back (labels from obs) and written again in place of a copy
    h5, h5b = tmp_path / "a.h5ad", tmp_path / "b.h5ad"
    assert run_cli([path, "--anndata-out", h5], capsys)[0] == 0
    code, out, err = run_cli(
        [
            h5,
            "--label-col",
            "chemomet_cell_type",
            "--tumour-class",
            "tumour",
            "--macrophage-class",
            "macrophage",
            "--endothelial-class",
            "endothelial",
            "--radius-col",
            "radius_um",
            "--json",
            "--anndata-out",
            h5b,
        ],
        capsys,
    )
    assert code == 0, err
    assert json.loads(out)["n_doorways"] == len(st.doorway_macrophages)


BAD_FILES = [
    ("empty.csv", [], "empty"),
    ("header_only.csv", [], "0 cells"),
    ("missing_y.csv", [], "column 'y'"),
    ("nan_coord.csv", [], "NaN"),
    ("inf_coord.csv", [], "finite"),
    ("huge_coord.csv", [], "x[row 3] = 1e+308 is invalid; allowed: |value| ≤ 1e+07 µm (10 m)"),
    ("text_coord.csv", [], "'12.o'"),
    ("unknown_label.csv", [], "unknown cell labels 'Tumour cell'"),
    ("negative_radius.csv", [], "radius[row 2]"),
    ("mm_units.csv", ["--default-radius", "5"], "wrong unit"),
    ("no_size.csv", [], "no cell size"),
    ("halo_pixels.csv", ["--preset", "halo"], "--pixel-size"),
    (
        "header_um_units_px.csv",
        ["--x-col", "x_um", "--y-col", "y_um", "--units", "px", "--pixel-size", "0.5"],
        "according to its header",
    ),
    ("qupath_classification.tsv", ["--preset", "qupath"], "--label-col 'Classification'"),
    ("area_px_no_pixel_size.csv", ["--area-col", "Area px^2"], "is in pixels"),
    ("radius_too_big.csv", [], "radius (median)"),
    ("qupath_px.tsv", ["--preset", "qupath"], "--units px"),
    ("qupath_no_class.tsv", ["--preset", "qupath"], "column 'Class'"),
    ("zero_area.csv", ["--area-col", "area"], "area[row 4]"),
    ("decimal_comma.csv", [], "'5,0' is invalid; allowed: a number with a decimal point (this looks like a decimal "
     "comma"),
    ("gate_missing_cd31.csv", ["--gate", "MENA=.5", "--gate", "CD68=.5", "--gate", "CD31=.5"], "CD31"),
    ("gate_nan_marker.csv", ["--gate", "MENA=.5", "--gate", "CD68=.5", "--gate", "CD31=.5"], "CD68[row 11]"),
    ("cells.xlsx", [], "file type"),
    ("corrupt.parquet", [], "Parquet"),
    ("corrupt.h5ad", [], ".h5ad"),
    ("binary.csv", [], "UTF-8"),
    ("ragged.csv", [], "cannot parse"),
    ("all_nan_radius.csv", [], "radius[row 0]"),
    ("halo_missing_xmax.csv", ["--preset", "halo"], "'XMax'"),
    ("does_not_exist.csv", [], "not found"),
    ("qupath_bad_geometry.geojson", ["--pixel-size", "0.5"], "features[2].geometry.type = 'LineString'"),
]
BAD_OPTIONS = [
    (["--units", "inch"], "units"),
    (["--pixel-size", "0"], "pixel_size"),
    (["--units", "um", "--pixel-size", "0.5"], "pixel_size"),
    (["--convention", "15HPF"], "convention"),
    (["--hpf-area", "-0.2"], "hpf_area"),
    (["--tolerance", "-1"], "tolerance"),
    (["--counting", "vessel"], "counting"),
    (["--preset", "imaris"], "preset"),
    (["--gate", "CD68=abc"], "gate CD68"),
    (["--gate", "FOO=1"], "gate"),
    (["--gate", "CD68"], "MARKER=VALUE"),
    (["--tumour-class", "Macrophage"], "three different names"),
    (["--label-col", "class"], "column 'class'"),
    (["--map", "map.jpg"], "--map"),
    (["--anndata-out", "no_such_dir/x.h5ad"], "--anndata-out"),
    (["--default-radius", "0", "--radius-col", "nope"], "column 'nope'"),
]


def _check_failure(code, out, err, expect, outdir):
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and expect in lines[0], lines[0]
    assert "Traceback" not in err and out == ""
    assert not [p for p in outdir.iterdir() if p.name not in ("map.jpg",)], list(outdir.iterdir())


def test_corpus_is_large_enough():
    files = {p.name for p in CORPUS.iterdir()}
    assert len(files) >= 15 and {f for f, _, _ in BAD_FILES if f != "does_not_exist.csv"} <= files


@pytest.mark.parametrize("name,args,expect", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_files(name, args, expect, tmp_path, capsys):
    outdir = tmp_path / "out"
    outdir.mkdir()
    code, out, err = run_cli(
        [
            CORPUS / name,
            *args,
            "--map",
            outdir / "m.png",
            "--anndata-out",
            outdir / "a.h5ad",
            "--out",
            outdir / "s.json",
        ],
        capsys,
    )
    _check_failure(code, out, err, expect, outdir)


@pytest.mark.parametrize("args,expect", BAD_OPTIONS, ids=[" ".join(b[0]) for b in BAD_OPTIONS])
def test_bad_options(args, expect, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    outdir = tmp_path / "out"
    outdir.mkdir()
    code, out, err = run_cli([CORPUS / "good.csv", *args, "--out", outdir / "s.json"], capsys)
    _check_failure(code, out, err, expect, outdir)


def test_good_corpus_file_works(tmp_path, capsys):
    code, out, err = run_cli([CORPUS / "good.csv", "--json", "--out", tmp_path / "s.json"], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "s.json").read_text()) == json.loads(out)


@pytest.mark.parametrize("case", ["no_spatial", "spatial_3d", "nan_spatial"])
def test_bad_anndata(case, tmp_path, capsys):
    import anndata

    n = 20
    ad = anndata.AnnData(
        obs=pd.DataFrame({"cell_type": ["Tumor"] * n, "radius": 5.0}, index=[str(i) for i in range(n)])
    )
    xy = np.column_stack([np.arange(n) * 10.0, np.zeros(n)])
    if case == "spatial_3d":
        ad.obsm["spatial"] = np.column_stack([xy, np.zeros(n)])
    elif case == "nan_spatial":
        xy[3, 1] = np.nan
        ad.obsm["spatial"] = xy
    path = tmp_path / "bad.h5ad"
    ad.write_h5ad(path)
    outdir = tmp_path / "out"
    outdir.mkdir()
    code, out, err = run_cli([path, "--map", outdir / "m.png"], capsys)
    _check_failure(
        code,
        out,
        err,
        {"no_spatial": "obsm['spatial']", "spatial_3d": "(n_cells, 2)", "nan_spatial": "row 3"}[case],
        outdir,
    )


def test_subprocess_one_line_no_traceback(tmp_path):
    """The real console entry point in a fresh interpreter: exit code 2, one stderr line, no file written."""
    out_png = tmp_path / "m.png"
    p = run_cli_subprocess([CORPUS / "nan_coord.csv", "--map", out_png])
    assert p.returncode == 2, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "Traceback" not in p.stderr
    assert not out_png.exists()
    ok = run_cli_subprocess([CORPUS / "good.csv", "--toml"])
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("tmem_score = ")
