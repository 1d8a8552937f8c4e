"""The study store: an append-only audit trail of every assessment, tissue score and trial made in the web app,
in one SQLite file.

Each record holds what went in (the validated patient, the regimen, the settings overrides; a tissue's file and
options; a trial's spec), what came out (the assessment's JSON, the tissue summary, the trial summary), the chemomet
version, the calibration date, a user-given study id and the UTC time. Records can be added and read, never changed
or deleted: the store offers no such call, and SQLite triggers refuse an ``UPDATE`` or ``DELETE`` from any other
client too. Each record also carries the SHA-256 of its content chained to the previous record's
(:meth:`StudyStore.verify` checks the chain), so an edit made behind SQLite's back (the file rewritten) is detected.
Standard library only (``sqlite3``); the file is created on first use. Exports: CSV, JSON and Parquet
(:meth:`StudyStore.export_parquet`, with pyarrow).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import sqlite3
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

SCHEMA_VERSION = 1
"""Version of the table layout, kept in the ``meta`` table."""

STUDY_ID_LIMIT = 80
"""Longest study id (characters)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    study_id TEXT NOT NULL,
    created_utc TEXT NOT NULL,
    chemomet_version TEXT NOT NULL,
    calibration_date TEXT NOT NULL,
    subject TEXT NOT NULL,
    summary TEXT NOT NULL,
    inputs_json TEXT NOT NULL,
    outputs_json TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_study ON records (study_id);
CREATE TRIGGER IF NOT EXISTS records_no_update BEFORE UPDATE ON records
BEGIN SELECT RAISE(ABORT, 'the study store is append-only: records cannot be changed'); END;
CREATE TRIGGER IF NOT EXISTS records_no_delete BEFORE DELETE ON records
BEGIN SELECT RAISE(ABORT, 'the study store is append-only: records cannot be deleted'); END;
"""

COLUMNS = ("id", "kind", "study_id", "created_utc", "chemomet_version", "calibration_date", "subject", "summary",
           "inputs_json", "outputs_json", "prev_hash", "hash")
"""The columns of a record, in the order of the exports."""

GENESIS = "0" * 64
"""The ``prev_hash`` of the first record."""


@dataclass(frozen=True)
class Record:
    """One stored record (a row of the ``records`` table).

    Attributes
    ----------
    id : int
        Sequential record number (1, 2, ...).
    kind : str
        What was recorded, e.g. ``"assessment"``.
    study_id : str
        The user-given study id ("" when none was given).
    created_utc : str
        When it was recorded (ISO 8601, UTC, e.g. ``2026-12-03T10:15:00Z``).
    chemomet_version, calibration_date : str
        The chemomet version that computed it and the date of the shipped calibration it used.
    subject : str
        The patient (or sample) id, as given.
    summary : str
        One line to list it by, e.g. the recommended strategy.
    inputs_json, outputs_json : str
        The inputs and the outputs, as JSON text.
    prev_hash, hash : str
        SHA-256 (hex) of the previous record and of this one (content and ``prev_hash``).

    Examples
    --------
    >>> store = StudyStore(":memory:")
    >>> rec = store.append("assessment", {"age": 50}, {"ok": True}, study_id="S1", subject="p1", summary="nact")
    >>> rec.id, rec.study_id, rec.inputs["age"], rec.outputs["ok"]
    (1, 'S1', 50, True)
    """

    id: int
    kind: str
    study_id: str
    created_utc: str
    chemomet_version: str
    calibration_date: str
    subject: str
    summary: str
    inputs_json: str
    outputs_json: str
    prev_hash: str
    hash: str

    @property
    def inputs(self):
        """The inputs, parsed from :attr:`inputs_json`."""
        return json.loads(self.inputs_json)

    @property
    def outputs(self):
        """The outputs, parsed from :attr:`outputs_json`."""
        return json.loads(self.outputs_json)

    def row(self) -> dict[str, object]:
        """The record as a dict of its :data:`COLUMNS` (JSON columns as text)."""
        return {c: getattr(self, c) for c in COLUMNS}


def _hash(prev_hash: str, fields: dict[str, object]) -> str:
    body = json.dumps({k: fields[k] for k in COLUMNS if k not in ("id", "hash")}, sort_keys=True,
                      ensure_ascii=False)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


@functools.cache
def beside_store(store_path: str, kind: str) -> Path:
    """A working folder for ``kind`` (e.g. ``uploads``, ``trials``) beside the store file (``<store>.<kind>``), or
    in the temporary folder for an in-memory store.

    Examples
    --------
    >>> beside_store("/data/study.sqlite", "uploads").name
    'study.sqlite.uploads'
    """
    if store_path == ":memory:":
        return Path(tempfile.gettempdir()) / f"chemomet-web-{kind}"
    p = Path(store_path)
    return p.with_name(f"{p.name}.{kind}")


def chemomet_version() -> str:
    """The installed chemomet's version (``chemomet.__version__``).

    Examples
    --------
    >>> isinstance(chemomet_version(), str)
    True
    """
    import chemomet

    return str(chemomet.__version__)


@functools.cache
def calibration_date() -> str:
    """The date of the shipped calibration: the latest ``provenance.*.date`` of ``data/calibration/report.json``
    (ISO 8601, UTC), or ``"unknown"``.

    Examples
    --------
    >>> calibration_date()[:2]
    '20'
    """
    try:  # read the file itself: importing chemomet.calibrate would take seconds
        from importlib import resources

        text = (resources.files("chemomet") / "data" / "calibration" / "report.json").read_text(encoding="utf-8")
        provenance = json.loads(text).get("provenance", {})
        dates = sorted(v["date"] for v in provenance.values() if isinstance(v, dict) and isinstance(v.get("date"), str))
        return dates[-1] if dates else "unknown"
    except Exception:  # a store still works without the calibration report
        return "unknown"


def clean_study_id(text: str | None) -> str:
    """A user-given study id made storable: surrounding whitespace removed; refused when longer than
    :data:`STUDY_ID_LIMIT` characters or holding a control character.

    Raises
    ------
    ValueError
        With a one-line reason.

    Examples
    --------
    >>> clean_study_id("  NEO-17 ")
    'NEO-17'
    >>> clean_study_id(None)
    ''
    >>> clean_study_id("x" * 81)
    Traceback (most recent call last):
    ...
    ValueError: study id: at most 80 characters
    """
    text = (text or "").strip()
    if len(text) > STUDY_ID_LIMIT:
        raise ValueError(f"study id: at most {STUDY_ID_LIMIT} characters")
    if any(not ch.isprintable() for ch in text):
        raise ValueError("study id: printable characters only")
    return text


class StudyStore:
    """The append-only study store in one SQLite file, created (with its folder's file) on first use.

    Safe to share between threads: every call opens its own connection; appends are serialised by a lock and
    committed before they return, so a record that was returned survives a crash or a killed server.

    Parameters
    ----------
    path : str or Path
        The database file (``":memory:"`` for a throw-away store kept in one connection).

    Examples
    --------
    >>> store = StudyStore(":memory:")
    >>> _ = store.append("assessment", {"age": 50}, {"recommendation": "nact"}, study_id="S1", subject="p1")
    >>> _ = store.append("assessment", {"age": 61}, {"recommendation": "nact"}, study_id="S2", subject="p2")
    >>> [r.subject for r in store.records()], [r.subject for r in store.records(study_id="S2")]
    (['p1', 'p2'], ['p2'])
    >>> store.verify()
    2
    """

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._lock = threading.Lock()
        self._memory = sqlite3.connect(":memory:", check_same_thread=False) if self.path == ":memory:" else None
        if self._memory is None:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        con = self._connect()
        try:
            with con:
                con.executescript(_SCHEMA)
                con.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                            (str(SCHEMA_VERSION),))
                con.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('created_utc', ?)", (_now(),))
        finally:
            self._close(con)

    def _connect(self) -> sqlite3.Connection:
        if self._memory is not None:
            return self._memory
        con = sqlite3.connect(self.path, timeout=30.0)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")
        return con

    def _close(self, con: sqlite3.Connection) -> None:
        if con is not self._memory:
            con.close()

    def append(self, kind: str, inputs, outputs, *, study_id: str = "", subject: str = "", summary: str = "",
               outputs_json: str | None = None) -> Record:
        """Add one record and commit it; returns it.

        Parameters
        ----------
        kind : str
            What is recorded, e.g. ``"assessment"``.
        inputs, outputs : JSON-serialisable
            What went in and what came out (``outputs_json``, already JSON text, replaces ``outputs``).
        study_id : str, default ""
            The user-given study id (:func:`clean_study_id` applies).
        subject, summary : str, default ""
            The patient id, and one line to list the record by.
        outputs_json : str, optional
            The outputs as JSON text (e.g. ``Assessment.to_json()``), stored as given.

        Examples
        --------
        >>> StudyStore(":memory:").append("assessment", {}, {}, study_id="S9").study_id
        'S9'
        """
        fields = {
            "kind": str(kind),
            "study_id": clean_study_id(study_id),
            "created_utc": _now(),
            "chemomet_version": chemomet_version(),
            "calibration_date": calibration_date(),
            "subject": str(subject),
            "summary": str(summary),
            "inputs_json": json.dumps(inputs, ensure_ascii=False, allow_nan=False),
            "outputs_json": outputs_json if outputs_json is not None else json.dumps(outputs, allow_nan=False),
        }
        with self._lock:
            con = self._connect()
            try:
                with con:  # one transaction: read the chain's end and add the record
                    last = con.execute("SELECT hash FROM records ORDER BY id DESC LIMIT 1").fetchone()
                    fields["prev_hash"] = last[0] if last else GENESIS
                    fields["hash"] = _hash(fields["prev_hash"], fields)
                    cols = [c for c in COLUMNS if c != "id"]
                    cur = con.execute(f"INSERT INTO records ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                                      [fields[c] for c in cols])
                    rid = cur.lastrowid
            finally:
                self._close(con)
        return Record(id=int(rid), **fields)

    def records(self, study_id: str | None = None) -> list[Record]:
        """Every record in the order it was added, or those of one study id.

        Examples
        --------
        >>> StudyStore(":memory:").records()
        []
        """
        con = self._connect()
        try:
            sql = f"SELECT {', '.join(COLUMNS)} FROM records"
            args: tuple = ()
            if study_id is not None:
                sql, args = sql + " WHERE study_id = ?", (study_id,)
            rows = con.execute(sql + " ORDER BY id", args).fetchall()
        finally:
            self._close(con)
        return [Record(*row) for row in rows]

    def get(self, record_id: int) -> Record | None:
        """The record with this id, or None.

        Examples
        --------
        >>> store = StudyStore(":memory:")
        >>> store.get(store.append("assessment", {}, {}).id).kind, store.get(99)
        ('assessment', None)
        """
        con = self._connect()
        try:
            row = con.execute(f"SELECT {', '.join(COLUMNS)} FROM records WHERE id = ?", (int(record_id),)).fetchone()
        finally:
            self._close(con)
        return None if row is None else Record(*row)

    def verify(self) -> int:
        """Check the hash chain of every record; returns how many there are.

        Raises
        ------
        ValueError
            Naming the first record whose content or link does not match its hash.

        Examples
        --------
        >>> StudyStore(":memory:").verify()
        0
        """
        prev = GENESIS
        records = self.records()
        for rec in records:
            row = rec.row()
            if rec.prev_hash != prev or _hash(rec.prev_hash, row) != rec.hash:
                raise ValueError(f"study store: record {rec.id} does not match its hash (changed after it was added)")
            prev = rec.hash
        return len(records)

    def export_json(self, study_id: str | None = None) -> str:
        """The records as a JSON array (inputs and outputs parsed, not as text).

        Examples
        --------
        >>> store = StudyStore(":memory:")
        >>> _ = store.append("assessment", {"age": 50}, {"x": 1}, study_id="S1")
        >>> json.loads(store.export_json())[0]["inputs"]
        {'age': 50}
        """
        out = []
        for rec in self.records(study_id):
            row = {c: v for c, v in rec.row().items() if c not in ("inputs_json", "outputs_json")}
            out.append({**row, "inputs": rec.inputs, "outputs": rec.outputs})
        return json.dumps(out, ensure_ascii=False, indent=1)

    def export_csv(self, study_id: str | None = None) -> str:
        """The records as CSV, one row each, every column of :data:`COLUMNS` (inputs and outputs as JSON text).

        A cell that a spreadsheet would read as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a
        carriage return) is prefixed with a single quote.

        Examples
        --------
        >>> store = StudyStore(":memory:")
        >>> _ = store.append("assessment", {}, {}, study_id="=HYPERLINK(1)")
        >>> store.export_csv().splitlines()[1].split(",")[2]
        "'=HYPERLINK(1)"
        """
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(COLUMNS)
        for rec in self.records(study_id):
            writer.writerow([_csv_safe(v) for v in rec.row().values()])
        return buf.getvalue()


    def export_parquet(self, study_id: str | None = None) -> bytes:
        """The records as a Parquet file (bytes): one row each, every column of :data:`COLUMNS` (``id`` as int64,
        the others as UTF-8 text, inputs and outputs as JSON text), with the store's schema version and the export
        time in the file's key-value metadata.

        Examples
        --------
        >>> import io
        >>> import pyarrow.parquet as pq
        >>> store = StudyStore(":memory:")
        >>> _ = store.append("assessment", {"age": 50}, {"x": 1}, study_id="S1", subject="p1")
        >>> table = pq.read_table(io.BytesIO(store.export_parquet()))
        >>> table.column_names == list(COLUMNS), table.column("subject").to_pylist()
        (True, ['p1'])
        >>> json.loads(table.column("inputs_json")[0].as_py())
        {'age': 50}
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        records = self.records(study_id)
        schema = pa.schema([pa.field(c, pa.int64() if c == "id" else pa.string(), nullable=False) for c in COLUMNS],
                           metadata={"chemomet.store.schema_version": str(SCHEMA_VERSION),
                                     "chemomet.store.exported_utc": _now(),
                                     "chemomet.store.study_id": "" if study_id is None else study_id})
        table = pa.table({c: [getattr(r, c) for r in records] for c in COLUMNS}, schema=schema)
        buf = io.BytesIO()
        pq.write_table(table, buf, compression="zstd")
        return buf.getvalue()


def _csv_safe(value):
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
