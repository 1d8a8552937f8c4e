"""Fuzzed units × column sets: every export scores like the µm reference or is refused in one line (issue 14).

One synthetic slide (3,000 cells, 37 doorways, TMEM score 36) is written as the exports a user meets: the generic
layout, QuPath's detection measurements and HALO's object data; coordinates in µm, mm or image pixels (0.25, 0.5
or 0.65 µm/px); a radius or an area column in µm, µm², px or px², named with or without its unit, or no size column
at all; CSV, TSV or Parquet; with or without distractor columns. The options are drawn as a user would pass them:
the pixel size or not, the coordinate and size units stated (truthfully) or not, the column names or the preset's,
the label column, a default radius.

The property, for every drawn input:

- *declared* inputs (every column's unit named by its header, stated, or the one the preset says): the score and
  the doorways equal the µm reference, with no implausibility warning — or a one-line :class:`InputError`;
- *undeclared* inputs (a header-less column in another unit than the preset says, nothing stated): possibly a
  wrong score (the table contradicts its preset), but never a silent 0: zero doorways come with an implausible-
  contacts warning, or the input is refused in one line;
- no size column found (none, or not under the preset's name): refused in one line, or scored with the default
  radius asked for and the summary saying so;
- an area column whose header names no unit, none stated, beside pixel coordinates or in a HALO export (whose
  headers name the unit of an area): refused in one line (µm² or px² cannot be told apart).

:func:`test_canonical_exports_score` checks that the fuzz is not vacuous: the canonical use of every layout scores.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from tme_helpers import table_of, tissue

from chemomet.errors import InputError
from chemomet.tme import ReadOptions, read_cells, score_tissue

SLIDE = dict(n_cells=3000, seed=5, doorway_density_per_mm2=100.0)
PIXEL_SIZES = (0.25, 0.5, 0.65)
UNIT_WORD = {"um": "µm", "px": "px", "mm": "mm", "um2": "µm²", "px2": "px²"}


@pytest.fixture(scope="module")
def slide():
    cells = tissue(**SLIDE).cells[["x", "y", "radius", "cell_type"]].copy()
    ref = score_tissue(table_of(cells))
    assert ref.doorways.n == 37 and ref.tmem_score == 36  # a slide with doorways, the score below their number
    return cells, (ref.tmem_score, ref.doorways.n)


def _per_um(unit: str, p: float) -> float:
    """Values of ``unit`` (a length) per µm."""
    return {"um": 1.0, "mm": 1e-3, "px": 1.0 / p}[unit.removesuffix("2")]


@st.composite
def exports(draw):
    style = draw(st.sampled_from(["generic", "qupath", "halo"]))
    c = {"style": style, "p": draw(st.sampled_from(PIXEL_SIZES))}
    c["fmt"] = draw(st.sampled_from([".csv", ".tsv", ".parquet"]))
    if style == "generic":
        c["coord_unit"] = draw(st.sampled_from(["um", "px", "mm"]))
        c["coord_header"] = draw(st.booleans())
        c["size"] = draw(st.sampled_from(["radius", "area", "none"]))
        c["size_header"] = draw(st.booleans())
    elif style == "qupath":
        c["coord_unit"] = draw(st.sampled_from(["um", "px"]))
        c["coord_header"] = True  # QuPath names the unit of every measurement
        c["size"] = draw(st.sampled_from(["area", "area", "none"]))
        c["size_header"] = True
        c["label"] = draw(st.sampled_from(["Class", "Classification"]))
    else:
        c["coord_unit"], c["coord_header"] = "px", False  # HALO's bounding boxes: image pixels, no unit in the header
        c["size"] = draw(st.sampled_from(["area", "area", "none"]))
        c["size_header"] = draw(st.booleans())
    if c["size"] == "radius":
        c["size_unit"] = draw(st.sampled_from(["um", "px"]))
    elif c["size"] == "area":
        c["size_unit"] = draw(st.sampled_from(["um2", "um2", "px2"] if style == "halo" else ["um2", "px2"]))
    in_px = c["coord_unit"] == "px" or c.get("size_unit", "").startswith("px")
    c["pixel_size"] = draw(st.sampled_from([True, True, False] if in_px else [False, False, True]))  # mostly apt
    c["state_units"] = draw(st.sampled_from([False, False, True]))
    c["state_size_units"] = draw(st.sampled_from([False, False, True]))
    c["name_columns"] = draw(st.sampled_from([True, True, False]))
    c["default_radius"] = draw(st.sampled_from([None, None, 5.5]))
    c["extras"] = draw(st.booleans())
    return c


def render(cells: pd.DataFrame, c: dict) -> tuple[pd.DataFrame, dict, bool, bool]:
    """The export of ``cells`` described by ``c``, the options a user passes with it, whether every column's unit
    is declared (its header, a statement or the preset say the truth), and whether an area's unit is ambiguous
    (no unit in its header, none stated, and pixel coordinates or a HALO export, which names the unit of its areas:
    such an input must be refused)."""
    p, cu, style = c["p"], c["coord_unit"], c["style"]
    k = _per_um(cu, p)
    x, y, r = cells["x"].to_numpy(), cells["y"].to_numpy(), cells["radius"].to_numpy()
    frame: dict = {}
    opts: dict = {"preset": style}
    if style == "generic":
        xn, yn = (f"x_{cu}", f"y_{cu}") if c["coord_header"] else ("x", "y")
        frame[xn], frame[yn] = x * k, y * k
        label = "cell_type"
    elif style == "qupath":
        word = "µm" if cu == "um" else "px"
        xn, yn = f"Centroid X {word}", f"Centroid Y {word}"
        frame[xn], frame[yn] = x * k, y * k
        label = c["label"]
    else:
        frame.update(XMin=(x - r) * k, XMax=(x + r) * k, YMin=(y - r) * k, YMax=(y + r) * k)
        label = "Phenotype"
    frame[label] = cells["cell_type"].to_numpy()
    if c["name_columns"]:
        opts["label_col"] = label
        if style != "halo":  # HALO's centroid is a pair of bounding-box columns: the preset's
            opts.update(x_col=xn, y_col=yn)
    su = c.get("size_unit")
    if c["size"] == "radius":
        name = f"radius_{su}" if c["size_header"] else "radius"
        frame[name] = r * _per_um(su, p)
    elif c["size"] == "area":
        if style == "generic":
            name = f"area_{su}" if c["size_header"] else "area"
        elif style == "qupath":
            name = "Cell: Area µm^2" if su == "um2" else "Cell: Area px^2"
        else:
            name = f"Cell Area ({UNIT_WORD[su]})" if c["size_header"] else "Cell Area"
        frame[name] = np.pi * (r * _per_um(su, p)) ** 2
    if c["size"] != "none" and c["name_columns"]:
        opts["radius_col" if c["size"] == "radius" else "area_col"] = name
    if c["extras"]:  # distractors a real export carries: ids, nucleus areas, marker means
        frame["Object ID"] = [f"cell-{i}" for i in range(len(x))]
        frame["Nucleus: Area µm^2"] = np.pi * (0.5 * r) ** 2
        frame["Cell: CD68: Mean"] = np.linspace(0, 1, len(x))
    if c["pixel_size"]:
        opts["pixel_size_um"] = p
    if c["state_units"]:
        opts["units"] = UNIT_WORD[cu]
    if c["state_size_units"] and su is not None:
        opts["radius_units" if c["size"] == "radius" else "area_units"] = UNIT_WORD[su]
    if c["default_radius"] is not None:
        opts["default_radius_um"] = c["default_radius"]
    # what the reader assumes for each column (header, else stated, else preset, else pixel size, else µm)
    preset_coord = "px" if style == "halo" else None
    coord = cu if c["coord_header"] else (
        cu if c["state_units"] else preset_coord or ("px" if c["pixel_size"] else "um")
    )
    declared = coord == cu
    ambiguous = False
    if su is not None and not (c["size_header"] or c["state_size_units"]):
        assumed = coord + "2" if c["size"] == "area" else coord
        declared = declared and assumed == su
        ambiguous = c["size"] == "area" and (coord == "px" or style == "halo")
    return pd.DataFrame(frame), opts, declared, ambiguous


def _write(frame: pd.DataFrame, path) -> None:
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_csv(path, sep="\t" if path.suffix == ".tsv" else ",", index=False)


def outcome(slide, c: dict, folder) -> str:
    """Read and score the export; check the property; say what happened (``"error"``, ``"scored"``, ...)."""
    cells, ref = slide
    frame, opts, declared, ambiguous = render(cells, c)
    path = folder / f"export{c['fmt']}"
    _write(frame, path)
    try:
        result = score_tissue(read_cells(path, ReadOptions(**opts)))
    except InputError as err:
        msg = str(err)
        assert msg.strip() and "\n" not in msg, msg
        return "error"
    assert not ambiguous, ("an area of ambiguous unit was read", opts)
    got = (result.tmem_score, result.doorways.n)
    warnings = result.warnings
    implausible = [w for w in warnings if "implausible" in w]
    if result.table.radius_source == "default":  # only when asked for, and said in the summary
        assert c["default_radius"] is not None, (opts, got)
        assert any("default radius" in w for w in warnings), warnings
        return "default radius"
    assert c["size"] != "none"
    if declared:
        assert got == ref and not implausible, (opts, got, ref, warnings)
        return "scored"
    assert result.doorways.n > 0 or implausible, ("silent 0", opts, got, warnings)
    return "scored" if got == ref else "undeclared, not silent"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(c=exports())
def test_no_silent_zero_over_units_and_column_sets(slide, tmp_path, c):
    event(outcome(slide, c, tmp_path))  # pytest --hypothesis-show-statistics: how many scored, how many refused


CANONICAL = [
    # generic: µm, header-less (the preset's unit); pixels with the pixel size; mm stated; units in the headers
    dict(style="generic", coord_unit="um", coord_header=False, size="radius", size_unit="um", size_header=False),
    dict(style="generic", coord_unit="px", coord_header=False, size="radius", size_unit="px", size_header=False,
         pixel_size=True),
    dict(style="generic", coord_unit="px", coord_header=False, size="area", size_unit="um2", size_header=False,
         pixel_size=True, state_size_units=True),
    dict(style="generic", coord_unit="mm", coord_header=False, size="area", size_unit="um2", size_header=True,
         state_units=True, name_columns=True),
    dict(style="generic", coord_unit="px", coord_header=True, size="area", size_unit="px2", size_header=True,
         pixel_size=True, name_columns=True),
    # QuPath calibrated and uncalibrated; HALO pixels with areas in µm² (with and without a unit in the header)
    dict(style="qupath", coord_unit="um", size="area", size_unit="um2", label="Class"),
    dict(style="qupath", coord_unit="px", size="area", size_unit="px2", label="Class", pixel_size=True),
    # a mixed QuPath export, pixel centroids and the area in µm² (the preset's µm column, its unit from its header)
    dict(style="qupath", coord_unit="px", size="area", size_unit="um2", label="Class", pixel_size=True),
    dict(style="qupath", coord_unit="px", size="area", size_unit="px2", label="Classification", pixel_size=True,
         name_columns=True, extras=True),
    dict(style="halo", coord_unit="px", size="area", size_unit="um2", size_header=True, pixel_size=True),
    dict(style="halo", coord_unit="px", size="area", size_unit="um2", size_header=False, pixel_size=True,
         name_columns=True, state_size_units=True),
    dict(style="halo", coord_unit="px", size="area", size_unit="px2", size_header=False, pixel_size=True,
         state_size_units=True),
    dict(style="halo", coord_unit="px", size="area", size_unit="px2", size_header=True, pixel_size=True),
]


BASE = dict(p=0.5, fmt=".csv", coord_header=True, size_header=True, pixel_size=False, state_units=False,
            state_size_units=False, name_columns=False, default_radius=None, extras=False, label="Class")


@pytest.mark.parametrize("fmt", [".csv", ".parquet"])
@pytest.mark.parametrize("case", CANONICAL, ids=lambda c: f"{c['style']}-{c['coord_unit']}-{c['size_unit']}")
def test_canonical_exports_score(slide, tmp_path, case, fmt):
    c = BASE | {"fmt": fmt, "coord_header": case["style"] != "halo"} | case
    assert outcome(slide, c, tmp_path) == "scored"


@pytest.mark.parametrize("style", ["generic", "qupath", "halo"])
def test_no_size_column_is_refused_or_said(slide, tmp_path, style):
    c = BASE | dict(style=style, coord_unit="px" if style == "halo" else "um", coord_header=style == "qupath",
                    size="none", size_header=False, pixel_size=style == "halo")
    assert outcome(slide, c, tmp_path) == "error"
    assert outcome(slide, c | {"default_radius": 5.5}, tmp_path) == "default radius"


def test_a_size_column_under_another_name_is_pointed_out(slide, tmp_path):
    """A size column the preset does not know ('radius_um' for 'radius'): the refusal and, with a default radius,
    the warning name it."""
    c = BASE | dict(style="generic", coord_unit="um", coord_header=False, size="radius", size_unit="um")
    frame, opts, _, _ = render(slide[0], c)
    path = tmp_path / "named.csv"
    _write(frame, path)
    with pytest.raises(InputError, match="did you mean 'radius_um'"):
        read_cells(path, ReadOptions(**opts))
    w = score_tissue(read_cells(path, ReadOptions(**opts, default_radius_um=5.5))).warnings
    assert any("'radius_um', named like a size column but not read as one" in x for x in w), w
