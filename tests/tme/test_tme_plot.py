"""``plot_map``: the slide view plus one zoomed panel per chosen field (content checked, not pixels)."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from tme_helpers import CORPUS, run_cli

from chemomet.tme import ReadOptions, make_table, plot_map, read_cells, score_tissue
from chemomet.tme.plot import PANEL_MARGIN


def _groups(centres, n_per):
    """Doorway-forming triples (tumour, macrophage, endothelial; radius 5 µm) around each centre, µm."""
    x, y, ct = [], [], []
    for (cx, cy), n in zip(centres, n_per, strict=True):
        for k in range(n):
            ox, oy = cx + 40.0 * (k % 3), cy + 40.0 * (k // 3)
            x += [ox, ox + 10.0, ox + 5.0]
            y += [oy, oy, oy + 8.0]
            ct += [1, 2, 3]
    return make_table(x, y, ct, [5.0] * len(x))


@pytest.fixture(scope="module")
def result():
    # three hot spots 2 mm apart holding 5, 3 and 1 doorways
    return score_tissue(_groups([(0.0, 0.0), (2000.0, 0.0), (0.0, 2000.0)], [5, 3, 1]))


def test_one_zoomed_panel_per_field_centred_and_titled(result):
    f = result.fields
    assert f.counts.tolist() == [5, 3, 1]
    fig = plot_map(result)
    assert len(fig.axes) == 1 + f.n_found
    slide, panels = fig.axes[0], fig.axes[1:]
    assert "TMEM score 9" in slide.get_title()
    h = PANEL_MARGIN * f.radius_um
    for k, ax in enumerate(panels):
        assert ax.get_title() == f"field {k + 1}: {f.counts[k]} doorway{'s' if f.counts[k] != 1 else ''}"
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        np.testing.assert_allclose([(x0 + x1) / 2, (y0 + y1) / 2], f.centres_um[k], atol=1e-9)
        np.testing.assert_allclose([x1 - x0, y0 - y1], [2 * h, 2 * h])  # y points down, as on the slide
        # the panel draws its field's cells at true size: 3 cells per doorway, diameters 10 µm
        ell = [c for c in ax.collections if type(c).__name__ == "EllipseCollection"][0]
        assert len(ell.get_offsets()) == 3 * f.counts[k]
        assert ax.title.get_fontsize() >= 8
    # the slide view spans every cell; the panels are much smaller than it
    sx0, sx1 = sorted(slide.get_xlim())
    assert sx0 <= result.table.x_um.min() and sx1 >= result.table.x_um.max()
    assert (sx1 - sx0) > 5 * h
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_panel_limit_and_none(result):
    import matplotlib.pyplot as plt

    for panels, n_axes in ((2, 3), (False, 1), (0, 1), (10, 4)):
        fig = plot_map(result, panels=panels)
        assert len(fig.axes) == n_axes, panels
        plt.close(fig)


def test_png_written_and_outlines_drawn(tmp_path, capsys):
    png = tmp_path / "map.png"
    code, _, err = run_cli([CORPUS / "qupath_cells.geojson", "--pixel-size", "0.5", "--map", png], capsys)
    assert code == 0, err
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    r = score_tissue(read_cells(CORPUS / "qupath_cells.geojson", ReadOptions(pixel_size_um=0.5)))
    plot_map(r, tmp_path / "slide.png", panels=False)
    w0, h0 = struct.unpack(">II", (tmp_path / "slide.png").read_bytes()[16:24])
    # 9 inches at 150 dpi; one row of 2.25-inch panels (4 a row) added below the slide view
    assert width == w0 == 9 * 150 and height - h0 == pytest.approx(9 / 4 * 1.12 * 150, abs=2)
    fig = plot_map(r)
    polys = [c for c in fig.axes[1].collections if type(c).__name__ == "PolyCollection"]
    assert polys and len(polys[0].get_paths()) >= 3  # the cells' outlines, not circles, when contact used them
    lines = [c for c in fig.axes[1].collections if type(c).__name__ == "LineCollection"]
    assert lines and len(lines[0].get_segments()) == 3 * 2  # doorway A: 2 contact triangles, 3 edges each
    import matplotlib.pyplot as plt

    plt.close(fig)
