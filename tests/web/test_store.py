"""The study store: append-only, verifiable, exportable, and intact after a restart or a killed process."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from chemomet.web.app import create_app
from chemomet.web.store import COLUMNS, StudyStore, calibration_date
from tests.web.helpers import client


def test_records_cannot_be_changed_or_deleted(tmp_path):
    path = tmp_path / "s.sqlite"
    store = StudyStore(path)
    store.append("assessment", {"age": 50}, {"r": 1}, study_id="S1", subject="p1", summary="nact")
    assert not hasattr(store, "delete") and not hasattr(store, "update")
    con = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        con.execute("UPDATE records SET summary = 'surgery-first' WHERE id = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        con.execute("DELETE FROM records")
    con.close()
    assert [r.summary for r in StudyStore(path).records()] == ["nact"]


def test_a_change_made_behind_the_triggers_is_detected(tmp_path):
    path = tmp_path / "s.sqlite"
    store = StudyStore(path)
    for i in range(3):
        store.append("assessment", {"age": 50 + i}, {"r": i}, study_id="S1", subject=f"p{i}")
    assert store.verify() == 3
    con = sqlite3.connect(path)
    con.execute("DROP TRIGGER records_no_update")
    con.execute("UPDATE records SET outputs_json = '{\"r\": 99}' WHERE id = 2")
    con.commit()
    con.close()
    with pytest.raises(ValueError, match="record 2"):
        StudyStore(path).verify()


def test_every_record_holds_inputs_outputs_versions_study_id_and_utc_time(web):
    _, path, _ = web
    rec = StudyStore(path).records()[0]
    assert rec.kind == "assessment" and rec.study_id == "<b>S</b>"
    assert rec.inputs["patient"]["age"] == 47 and rec.inputs["regimen"] == "ac-paclitaxel-weekly"
    assert rec.outputs["recommendation"]["strategy"] == rec.summary
    assert rec.chemomet_version == rec.outputs["chemomet_version"]
    assert rec.calibration_date == calibration_date() and rec.calibration_date.startswith("20")
    assert rec.created_utc.endswith("Z")


def test_the_store_survives_a_restart_of_the_app(tmp_path, web):
    _, path, url = web
    before = [r.row() for r in StudyStore(path).records()]
    again = create_app(path)  # a new app on the same file: what a restarted server does
    with client(again) as c:
        page = c.get("/studies")
        assert page.status_code == 200
        assert f'href="{url}"' in page.text
        assert c.get(url).status_code == 200
    assert [r.row() for r in StudyStore(path).records()] == before


def test_exports_hold_every_record(web):
    app, path, _ = web
    n = len(StudyStore(path).records())
    with client(app) as c:
        rows = list(csv.DictReader(io.StringIO(c.get("/studies/export.csv").text)))
        data = json.loads(c.get("/studies/export.json").text)
        one = json.loads(c.get("/studies/export.json?study=%3Cb%3ES%3C%2Fb%3E").text)
        assert c.get("/studies/export.xml").status_code == 404
    assert len(rows) == len(data) == n >= 1
    assert list(rows[0]) == list(COLUMNS)
    assert json.loads(rows[0]["outputs_json"]) == data[0]["outputs"]
    assert one and all(r["study_id"] == "<b>S</b>" for r in one)


def test_the_parquet_export_round_trips_every_record(tmp_path, web):
    """Parquet holds every column of every record unchanged (ids as integers, text as given, JSON as text); the
    study filter and the app's download give the same rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    store = StudyStore(tmp_path / "s.sqlite")
    store.append("assessment", {"age": 50, "note": "ünïcødé ✓"}, {"x": [1.5, None]}, study_id="S1", subject="p1")
    store.append("tissue", {"file": "c.csv"}, {"tmem_score": 3}, study_id="=S2", subject="<b>p2</b>", summary="x")
    store.append("trial", {"spec": {"name": "t"}}, {"summary": {}}, subject="t", summary="dmfs HR 0.8")
    table = pq.read_table(io.BytesIO(store.export_parquet()))
    assert table.column_names == list(COLUMNS)
    assert table.schema.field("id").type == pa.int64() and table.schema.field("inputs_json").type == pa.string()
    assert table.to_pylist() == [r.row() for r in store.records()]  # unchanged: no formula quoting in Parquet
    assert [json.loads(v)["note"] for v in table.column("inputs_json").to_pylist()[:1]] == ["ünïcødé ✓"]
    assert table.schema.metadata[b"chemomet.store.schema_version"] == b"1"
    one = pq.read_table(io.BytesIO(store.export_parquet("=S2")))
    assert one.column("subject").to_pylist() == ["<b>p2</b>"]
    assert pq.read_table(io.BytesIO(store.export_parquet("none"))).num_rows == 0
    app, path, _ = web
    with client(app) as c:
        r = c.get("/studies/export.parquet")
        assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.apache.parquet"
        assert r.headers["content-disposition"] == 'attachment; filename="chemomet-study.parquet"'
        assert 'id="export-parquet"' in c.get("/studies").text
    downloaded = pq.read_table(io.BytesIO(r.content)).to_pylist()
    assert downloaded == [rec.row() for rec in StudyStore(path).records()[:len(downloaded)]] and downloaded


def test_a_csv_export_cannot_smuggle_a_spreadsheet_formula(tmp_path):
    store = StudyStore(tmp_path / "s.sqlite")
    store.append("assessment", {}, {}, study_id="=cmd|' /C calc'!A0", subject="+1", summary="@SUM(1)")
    row = list(csv.reader(io.StringIO(store.export_csv())))[1]
    assert row[2].startswith("'=") and row[6] == "'+1" and row[7] == "'@SUM(1)"


WRITER = """
import sys
from chemomet.web.store import StudyStore
store = StudyStore(sys.argv[1])
for i in range(100000):
    rec = store.append("assessment", {"i": i}, {"ok": True}, study_id="kill", subject=f"p{i}")
    print(rec.id, flush=True)
"""


def test_a_killed_process_leaves_every_committed_record_intact(tmp_path):
    """SIGKILL while appending: every record that was reported committed is there, and the chain verifies."""
    path = tmp_path / "s.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    committed = []
    deadline = time.monotonic() + 30
    while len(committed) < 40 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.strip():
            committed.append(int(line))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    proc.stdout.close()
    assert len(committed) >= 40
    store = StudyStore(path)
    ids = [r.id for r in store.records()]
    assert set(committed) <= set(ids)
    assert ids == list(range(1, len(ids) + 1))
    assert store.verify() == len(ids)
