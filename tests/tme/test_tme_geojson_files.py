"""The GeoJSON reader checks the file like the rest of the input layer: a regular file within a size cap, one line.

As :func:`chemomet.inputs.read_text` does for TOML and JSON inputs: a folder, a device, a pipe or a link loop is
refused before anything is opened (a pipe would block the reader for ever), a file above
:data:`chemomet.tme.geojson.MAX_GEOJSON_BYTES` before it is parsed (parsing holds about 7 times the file), and
never more than the cap is read. Cell tables (CSV/Parquet) get the same regular-file check.
"""

from __future__ import annotations

import json
import os

import pytest
from tme_helpers import CORPUS, run_cli, run_cli_subprocess

from chemomet.errors import InputError
from chemomet.tme import ReadOptions, read_cells, read_geojson_cells
from chemomet.tme import geojson as gj

FIXTURE = CORPUS / "qupath_cells.geojson"


def _one_line(err) -> str:
    msg = str(err.value)
    assert msg.strip() and "\n" not in msg, msg
    return msg


def test_a_folder_is_refused(tmp_path):
    folder = tmp_path / "cells.geojson"
    folder.mkdir()
    with pytest.raises(InputError, match="is a folder; allowed: a GeoJSON file") as err:
        read_geojson_cells(folder)
    _one_line(err)
    with pytest.raises(InputError, match="is a directory") as err:
        read_cells(folder, ReadOptions(pixel_size_um=0.5))
    _one_line(err)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
@pytest.mark.parametrize("name", ["cells.geojson", "cells.csv"])
def test_a_pipe_is_refused_without_blocking(tmp_path, name):
    """Opening a named pipe blocks until a writer comes: the check must come first (a fresh process, bounded)."""
    pipe = tmp_path / name
    os.mkfifo(pipe)
    res = run_cli_subprocess([pipe, "--pixel-size", "0.5"], timeout=60)
    assert res.returncode == 2, res.stderr
    assert "is not a regular file (a device, pipe or socket)" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr
    if name.endswith(".geojson"):
        with pytest.raises(InputError, match="not a regular file") as err:
            read_geojson_cells(pipe)
        _one_line(err)


def test_a_device_and_a_link_loop_are_refused(tmp_path):
    dev = tmp_path / "null.geojson"
    dev.symlink_to(os.devnull)
    with pytest.raises(InputError, match="not a regular file") as err:
        read_geojson_cells(dev)
    _one_line(err)
    with pytest.raises(InputError, match="not a regular file"):
        read_cells(dev, ReadOptions(pixel_size_um=0.5))
    loop = tmp_path / "loop.geojson"
    loop.symlink_to(loop)
    with pytest.raises(InputError, match="cannot be read") as err:
        read_geojson_cells(loop)
    _one_line(err)
    with pytest.raises(InputError, match="not found"):  # the table reader sees no file behind the loop
        read_cells(loop)
    link = tmp_path / "link.geojson"  # a link to a regular file is followed
    link.symlink_to(FIXTURE)
    assert read_geojson_cells(link).n == 14


def test_a_file_above_the_cap_is_refused_before_parsing(tmp_path, monkeypatch, capsys):
    size = FIXTURE.stat().st_size
    monkeypatch.setattr(gj, "MAX_GEOJSON_BYTES", size - 1)
    expected = rf"is {size} bytes; allowed: a GeoJSON file of at most {size - 1} bytes"
    with pytest.raises(InputError, match=expected) as err:
        read_geojson_cells(FIXTURE)
    assert "export the measurements as a table" in _one_line(err)
    code, out, err_text = run_cli([FIXTURE, "--pixel-size", "0.5"], capsys)
    assert code == 2 and "of at most" in err_text and len(err_text.strip().splitlines()) == 1
    monkeypatch.setattr(gj, "MAX_GEOJSON_BYTES", size)  # exactly at the cap: read
    assert read_geojson_cells(FIXTURE).n == 14


def test_never_more_than_the_cap_is_read(tmp_path, monkeypatch):
    """A file that reports a small size but holds more (it grew, or a special file system) is cut at the cap."""
    path = tmp_path / "grows.geojson"
    path.write_bytes(FIXTURE.read_bytes())
    real_stat = type(path).stat

    def small_stat(self, *a, **k):
        st = real_stat(self, *a, **k)
        if self.name != "grows.geojson":
            return st
        return os.stat_result((st.st_mode, st.st_ino, st.st_dev, st.st_nlink, st.st_uid, st.st_gid, 10,
                               st.st_atime, st.st_mtime, st.st_ctime))

    monkeypatch.setattr(type(path), "stat", small_stat)
    monkeypatch.setattr(gj, "MAX_GEOJSON_BYTES", 1000)
    with pytest.raises(InputError, match="is larger than 1000 bytes") as err:
        read_geojson_cells(path)
    _one_line(err)


def test_absurd_json_numbers_and_nesting_give_one_line(tmp_path):
    doc = '{"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": {"type": "Point", ' \
          '"coordinates": [1' + "0" * 5000 + ', 2]}, "properties": {"objectType": "cell"}}]}'
    path = tmp_path / "digits.geojson"
    path.write_text(doc, encoding="utf-8")
    with pytest.raises(InputError, match="not a usable JSON number") as err:
        read_geojson_cells(path)
    _one_line(err)
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(InputError, match="nested too deeply") as err:
        read_geojson_cells(path)
    _one_line(err)
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(json.loads(FIXTURE.read_text(encoding="utf-8"))).encode())
    assert read_geojson_cells(path).n == 14  # a byte-order mark is accepted
