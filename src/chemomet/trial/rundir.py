"""The run directory: lock, manifest (spec identity and checkpoint records), chunk checkpoints, patient table.

OUT/run.lock                      the running process (pid, host, start): one run at a time per folder
OUT/manifest.json                 spec hash, chunk size, number of chunks, size and SHA-256 of every chunk written
OUT/chunks/chunk-NNNNNN.parquet   one checkpoint per chunk of enrolment positions, written atomically
OUT/patients.parquet              patient-level results of the trial (replicate 0)

**Whose folder.** A run goes only into a new or empty folder or a chemomet run folder (:func:`check_run_folder`):
a folder holding other files (the working directory, the home folder, a project folder) is refused with one line
before anything in it is touched, so chemomet never deletes or overwrites a file it did not write.

**Lock.** A run takes ``OUT/run.lock`` (JSON: pid, host name, process start time, start date) before it touches
the folder and removes it when it ends, however it ends short of being killed. A second run into the same folder
is refused at once with one line naming the holder (it does not wait). A lock whose process is gone (same host,
no such pid, a zombie, or a pid since reused by another process) is stale: the next run takes it over, with a
warning. A lock held on another host cannot be checked from here: the message names the host and the lock file to
delete if that run has ended. Taking and taking over happen under an exclusive ``flock`` of the folder, so two
runs starting together cannot both win.

**Checkpoint verification.** The size and SHA-256 of every chunk file are recorded in the manifest when the chunk
is written. Before a resumed run uses a chunk, its file is checked against the record; a chunk written by a run
killed before the record was saved is checked by reading it whole (row count and enrolment positions) and then
recorded. A damaged or truncated chunk is deleted and recomputed on its own (its results depend only on the spec),
with a one-line warning naming it; the other chunks are kept.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import os
import re
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from chemomet.errors import InputError, printable, shown_value
from chemomet.fileio import atomic_write, file_digest
from chemomet.inputs import read_data
from chemomet.trial.chunk import chunk_path
from chemomet.trial.spec import TrialSpec

MANIFEST_FORMAT = 2
"""Format of ``manifest.json``: 2 records the chunk files (format 1, without records, is still resumed)."""
OUTPUTS = (
    "patients.parquet", "summary.json", "km_dmfs.png", "km_drfi.png", "km_os.png", "forest.png", "power.png",
    "replication.png",
)
LOCK_NAME = "run.lock"
RUN_MARKERS = (LOCK_NAME, "manifest.json", "chunks")
"""Entries only a chemomet run folder has: with no other foreign entry, a folder holding one of them is taken for a
run folder (e.g. one with a damaged manifest, which ``--fresh`` may then replace)."""
_TEMPORARY = re.compile(r"\.(chemomet-probe-.*|run\.lock\..*|.+\.tmp\d+\.(json|parquet|png))")

log = logging.getLogger("chemomet.trial")


def _shown(path: Path) -> str:
    return shown_value(str(path), 240)


def _lock_record(folder: Path) -> bool:
    """Whether the folder's run.lock is a record written by chemomet."""
    holder = _read_lock(folder / LOCK_NAME)
    return isinstance(holder, dict) and holder.get("program") == "chemomet trial"


def _json_record(path: Path, key: str) -> bool:
    """Whether a JSON file is an object with ``key`` (read through the input layer; any problem: False)."""
    try:
        if not path.is_file():
            return False
        data = read_data(path, "manifest")
    except (InputError, OSError):
        return False
    return isinstance(data, dict) and key in data


def is_run_folder(folder: str | Path) -> bool:
    """Whether ``folder`` was made by chemomet: a trial's run folder (a chemomet ``manifest.json`` or ``run.lock``)
    or a design comparison's (a ``summary.json`` listing the designs).

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> is_run_folder(folder)
    False
    >>> _ = (folder / "manifest.json").write_text('{"format": 2, "spec_hash": "ab12"}')
    >>> is_run_folder(folder)
    True
    """
    folder = Path(folder)
    return (
        _json_record(folder / "manifest.json", "spec_hash")
        or _lock_record(folder)
        or _json_record(folder / "summary.json", "designs")
    )


def check_run_folder(out: str | Path, what: str = "--out") -> None:
    """Refuse a run folder that holds files chemomet did not write, before anything in it is touched.

    A run may go into a folder that does not exist yet, an empty one, or a chemomet run folder
    (:func:`is_run_folder`, or one holding only chemomet's own entries, among them one of :data:`RUN_MARKERS`);
    other files in a run folder are left alone. The home folder and the root of a file system are refused
    whatever they hold. So ``--out .`` in a project folder never deletes or overwrites anything there.

    Parameters
    ----------
    out : str or pathlib.Path
        The run folder asked for.
    what : str, default "--out"
        How the folder is named in the message.

    Raises
    ------
    InputError
        One line naming the folder, an entry that is not chemomet's, and what is allowed.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> check_run_folder(folder / "new")  # not there yet: created by the run
    >>> check_run_folder(folder)  # empty
    >>> _ = (folder / "thesis.tex").write_text("chapter 1")
    >>> check_run_folder(folder)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    chemomet.errors.InputError: --out = '...' is not empty and not a chemomet run folder (it holds 'thesis.tex');
    allowed: a new or empty folder, or the folder of an earlier chemomet trial run (chemomet never deletes or
    overwrites files it did not write)
    """
    p = Path(out)
    allowed = (
        "allowed: a new or empty folder, or the folder of an earlier chemomet trial run (chemomet never deletes or "
        "overwrites files it did not write)"
    )
    try:
        if not p.is_dir():
            return  # missing (created by the run) or a file (refused by the output layer)
        here = p.resolve()
        if here == Path.home().resolve() or here == Path(here.anchor):
            which = "your home folder" if here == Path.home().resolve() else "the root folder"
            raise InputError(f"{what} = {_shown(p)} is {which}; {allowed}")
        entries = sorted(p.iterdir(), key=lambda e: e.name)
    except OSError as err:
        raise InputError(f"{what} = {_shown(p)} cannot be listed ({err.strerror}); {allowed}") from None
    names = {e.name for e in entries}
    designs = {e.name for e in entries if e.is_dir() and not e.is_symlink() and is_run_folder(e)}  # of a comparison
    foreign = [
        e for e in entries
        if e.name not in (*RUN_MARKERS, *OUTPUTS, *designs) and not _TEMPORARY.fullmatch(e.name)
    ]
    leftovers = {n for n in names if _TEMPORARY.fullmatch(n)}  # probes and temporary files of a killed run
    if names <= leftovers or is_run_folder(p) or (not foreign and (names & set(RUN_MARKERS) or designs)):
        return
    shown = shown_value(foreign[0].name) if foreign else shown_value(sorted(names)[0])
    more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
    raise InputError(
        f"{what} = {_shown(p)} is not empty and not a chemomet run folder (it holds {shown}{more}); {allowed}"
    )


def _fail_resume(out: Path, what: str) -> InputError:
    return InputError(f"{what}; the run in {str(out)!r} cannot be resumed: use --fresh to start over, or another --out")


def _records(old) -> dict:
    """The well-formed chunk records of a manifest (anything else is dropped: those chunks are read in full)."""
    chunks = old.get("chunks") if isinstance(old, dict) else None
    if not isinstance(chunks, dict):
        return {}
    return {
        k: {"size": v["size"], "sha256": v["sha256"]}
        for k, v in chunks.items()
        if isinstance(k, str)
        and isinstance(v, dict)
        and isinstance(v.get("size"), int)
        and not isinstance(v.get("size"), bool)
        and isinstance(v.get("sha256"), str)
    }


def prepare_run_dir(out: Path, spec: TrialSpec, chunk_size: int, n_chunks: int, resume: bool) -> dict:
    """Create or check the run directory and return its manifest (with the chunk records kept).

    A folder holding files chemomet did not write is refused first (:func:`check_run_folder`).

    Resuming (a manifest with the same spec hash and chunk size) keeps finished chunks and their records and
    deletes half-written temporary files; otherwise chunk files and outputs are removed and a new manifest is
    written. A different spec or chunk size with ``resume``, or a damaged manifest, raises InputError offering
    ``--fresh``.

    Examples
    --------
    >>> import tempfile
    >>> from chemomet.trial import parse_trial_spec
    >>> spec = parse_trial_spec({"name": "demo", "patients_per_arm": 40,
    ...                          "arms": [{"name": "NACT", "strategy": "nact"},
    ...                                   {"name": "NACT + rebastinib", "strategy": "nact+rebastinib"}]})
    >>> out = Path(tempfile.mkdtemp())
    >>> manifest = prepare_run_dir(out, spec, 16, 5, resume=True)
    >>> manifest["n_chunks"], manifest["chunks"], sorted(p.name for p in out.iterdir())
    (5, {}, ['chunks', 'manifest.json'])
    """
    check_run_folder(out)  # nothing is removed from a folder chemomet did not make
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "manifest.json"
    chunks = out / "chunks"
    record = {
        "format": MANIFEST_FORMAT,
        "name": spec.name,
        "spec_hash": spec.spec_hash(),
        "chunk_size": chunk_size,
        "n_chunks": n_chunks,
        "n_enrolled": spec.n_enrolled,
        "spec": spec.model_dump(mode="json"),
        "chunks": {},
    }
    if manifest.exists() and resume:
        try:
            old = read_data(manifest, "manifest")
        except InputError as err:
            raise _fail_resume(out, str(err)) from None
        if not isinstance(old, dict):
            raise _fail_resume(out, f"{manifest}: not a chemomet manifest (a JSON object is expected)")
        if old.get("spec_hash") != record["spec_hash"]:
            raise InputError(
                f"--out = {str(out)!r} holds a run of a different spec ({shown_value(old.get('name'))}, spec hash "
                f"{printable(old.get('spec_hash'), 12)} vs {record['spec_hash'][:12]}); allowed: the same spec to "
                "resume it, --fresh to start over, or another --out"
            )
        if old.get("chunk_size") != chunk_size:
            raise InputError(
                f"chunk_size = {chunk_size} differs from the run in {str(out)!r} "
                f"({printable(repr(old.get('chunk_size')), 20)}); allowed: the same chunk size to resume, or --fresh "
                "(unit: patients)"
            )
        if chunks.exists() and not chunks.is_dir():
            raise _fail_resume(out, f"{chunks}: is not a folder")
        chunks.mkdir(exist_ok=True)
        for p in chunks.glob(".chunk-*.tmp*.parquet"):  # half-written by a killed run: never renamed, so not a chunk
            p.unlink(missing_ok=True)
        record["chunks"] = _records(old)
        return record
    try:
        if chunks.exists() and not chunks.is_dir():
            chunks.unlink()
        if chunks.exists():
            for p in chunks.glob("*chunk-*.parquet"):  # chunk files and temporary files of this layout only
                _remove(p)
        chunks.mkdir(exist_ok=True)
        for name in OUTPUTS:
            _remove(out / name)
    except OSError as err:
        raise InputError(
            f"--out = {str(out)!r}: an earlier run's file cannot be removed ({err.strerror}: "
            f"{printable(err.filename, 200)}); allowed: a run folder you can write to, or another --out"
        ) from None
    save_manifest(out, record)
    return record


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def save_manifest(out: Path, manifest: dict) -> None:
    """Write ``OUT/manifest.json`` atomically (chunk records sorted by name).

    Examples
    --------
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp())
    >>> save_manifest(out, {"format": 2, "chunks": {"chunk-000001.parquet": {"size": 3, "sha256": "ab"}}})
    >>> json.loads((out / "manifest.json").read_text())["chunks"]
    {'chunk-000001.parquet': {'size': 3, 'sha256': 'ab'}}
    """
    data = {**manifest, "chunks": dict(sorted(manifest.get("chunks", {}).items()))}
    text = json.dumps(data, indent=1)
    atomic_write(out / "manifest.json", lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _chunk_problem(path: Path, record: dict | None, lo: int, hi: int) -> str | None:
    """Why a chunk file cannot be used (None if it can): against its record, or read in full when unrecorded."""
    if record is not None:
        size = path.stat().st_size
        if size != record["size"]:
            return f"{size} bytes, {record['size']} recorded when it was written"
        if file_digest(path)["sha256"] != record["sha256"]:
            return "its SHA-256 differs from the one recorded when it was written"
        return None
    try:
        table = pq.read_table(path)
        positions = table.column("position").to_numpy()
    except Exception as err:  # any unreadable file is damaged, whatever pyarrow calls it
        return f"unreadable: {type(err).__name__}"
    if table.num_rows != hi - lo or not np.array_equal(positions, np.arange(lo, hi)):
        return f"{table.num_rows} rows, {hi - lo} expected"
    return None


def verify_chunks(out: Path, manifest: dict) -> tuple[list[int], list[str]]:
    """Check every chunk file before it is reused; return the chunks to compute and the damaged ones.

    A chunk with a record (size and SHA-256) must match it; a chunk without one (written by a run killed before
    its record was saved) must read in full with its rows and enrolment positions, and is then recorded in
    ``manifest["chunks"]``. A damaged chunk is deleted, so it is recomputed like a missing one.

    Parameters
    ----------
    out : pathlib.Path
        The run directory.
    manifest : dict
        Its manifest (:func:`prepare_run_dir`): ``chunk_size``, ``n_chunks``, ``n_enrolled`` and the records in
        ``chunks``, updated in place.

    Returns
    -------
    todo : list of int
        The chunk numbers to compute (missing or damaged), ascending.
    damaged : list of str
        ``"chunk-NNNNNN.parquet (why)"`` for every damaged chunk deleted.

    Examples
    --------
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp())
    >>> (out / "chunks").mkdir()
    >>> manifest = {"chunk_size": 16, "n_chunks": 2, "n_enrolled": 20, "chunks": {}}
    >>> pd.DataFrame({"position": range(16)}).to_parquet(chunk_path(out, 0))
    >>> _ = chunk_path(out, 1).write_bytes(b"PAR1 truncated")
    >>> todo, damaged = verify_chunks(out, manifest)
    >>> todo, damaged, sorted(manifest["chunks"])
    ([1], ['chunk-000001.parquet (unreadable: ArrowInvalid)'], ['chunk-000000.parquet'])
    """
    cs, n_chunks, n = int(manifest["chunk_size"]), int(manifest["n_chunks"]), int(manifest["n_enrolled"])
    records = manifest.setdefault("chunks", {})
    todo, damaged = [], []
    for c in range(n_chunks):
        path = chunk_path(out, c)
        record = records.get(path.name)
        if not path.exists() and not path.is_symlink():
            records.pop(path.name, None)
            todo.append(c)
            continue
        try:
            problem = _chunk_problem(path, record, c * cs, min((c + 1) * cs, n)) if path.is_file() else "not a file"
        except OSError as err:
            problem = f"unreadable: {err.strerror}"
        if problem is None:
            if record is None:
                records[path.name] = file_digest(path)
            continue
        damaged.append(f"{path.name} ({problem})")
        records.pop(path.name, None)
        try:
            _remove(path)
        except OSError as err:
            raise _fail_resume(out, f"{path}: damaged ({problem}) and cannot be removed ({err.strerror})") from None
        todo.append(c)
    return todo, damaged


# --------------------------------------------------------------------------------------------------------- lock


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time in clock ticks) of a process from /proc, or None where there is no /proc."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    fields = data[data.rfind(")") + 2 :].split()
    return (fields[0], fields[19]) if len(fields) > 19 else None


def _alive(holder: dict) -> bool | None:
    """Whether the process holding a lock is running: True or False on this host, None on another host."""
    if holder.get("host") != socket.gethostname():
        return None
    pid = holder.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or not 0 < pid < 2**31:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of another user
        pass
    except OSError:
        return False
    stat = _proc_stat(pid)
    if stat is None:
        return True
    state, start = stat
    if state in ("Z", "X"):  # a zombie: killed, not yet reaped
        return False
    return holder.get("start") in (None, start)  # another start time: the pid was reused


@contextlib.contextmanager
def _guard(folder: Path) -> Iterator[None]:
    """An exclusive flock of the folder while a lock is taken, taken over or released (where flock exists)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        yield
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        deadline = time.monotonic() + 10.0
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:  # never hang on a stuck peer: go on unguarded
                    break
                time.sleep(0.005)
            except OSError:  # a file system without flock
                break
        yield
    finally:
        os.close(fd)  # releases the flock


def _read_lock(path: Path) -> dict | None | bool:
    """The lock's record; None if the file is there but is not a readable record; False if it is gone."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")[:4096]
    except FileNotFoundError:
        return False
    except OSError:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _place(path: Path, text: str, replace: bool) -> bool:
    """Put ``text`` at ``path`` in one step: exclusively (False if the path exists) or replacing it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        if replace:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
        return True
    finally:
        tmp.unlink(missing_ok=True)


class RunLock:
    """The lock of a run directory (``OUT/run.lock``): taken by :meth:`acquire`, removed by :meth:`release`.

    Parameters
    ----------
    out : pathlib.Path
        The run directory (it must exist).

    Attributes
    ----------
    path : pathlib.Path
        The lock file.
    taken_over : dict or None
        The record of a stale lock this run took over, if any.

    Examples
    --------
    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp())
    >>> lock = RunLock(out).acquire()
    >>> json.loads(lock.path.read_text())["pid"] == os.getpid()
    True
    >>> RunLock(out).acquire()  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    chemomet.errors.InputError: --out = '...' is in use by another chemomet trial run (pid ... on this host, since
    ...); allowed: another --out, or wait until that run ends
    >>> lock.release()
    >>> lock.path.exists()
    False
    """

    def __init__(self, out: Path):
        self.out = Path(out)
        self.path = self.out / LOCK_NAME
        self.taken_over: dict | None = None
        self._mine: dict | None = None

    def acquire(self) -> RunLock:
        """Take the lock (taking over a stale one); raises InputError if a live run holds it, or if the folder holds
        files chemomet did not write (:func:`check_run_folder`: nothing is written there then). Returns self."""
        check_run_folder(self.out)
        stat = _proc_stat(os.getpid())
        mine = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "start": None if stat is None else stat[1],
            "since": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "program": "chemomet trial",
        }
        text = json.dumps(mine)
        try:
            with _guard(self.out):
                for _ in range(5):
                    if _place(self.path, text, replace=False):
                        break
                    holder = _read_lock(self.path)
                    if holder is False:  # released meanwhile: try again
                        continue
                    alive = _alive(holder) if holder else False
                    if alive is not False:
                        raise self._busy(holder, alive)
                    _place(self.path, text, replace=True)
                    self.taken_over = holder or {}
                    break
                else:
                    raise InputError(f"--out = {str(self.out)!r}: its lock file keeps changing; allowed: another --out")
        except OSError as err:
            raise InputError(
                f"--out = {str(self.out)!r}: the lock file {LOCK_NAME} cannot be written ({err.strerror}); "
                "allowed: a run folder you can write to"
            ) from None
        self._mine = mine
        if self.taken_over is not None:
            who = self.taken_over.get("pid", "unknown")
            log.warning(
                f"warning: {printable(str(self.path), 240)}: took over the lock of an earlier run that did not end "
                f"cleanly (pid {printable(who, 20)}, no longer running); its finished chunks are verified before use"
            )
        return self

    def _busy(self, holder: dict, alive: bool | None) -> InputError:
        pid, since = printable(holder.get("pid"), 20), printable(holder.get("since", "an unknown time"), 40)
        if alive:
            return InputError(
                f"--out = {str(self.out)!r} is in use by another chemomet trial run (pid {pid} on this host, since "
                f"{since}); allowed: another --out, or wait until that run ends"
            )
        host = shown_value(holder.get("host"))
        return InputError(
            f"--out = {str(self.out)!r} is in use by a chemomet trial run on host {host} (pid {pid}, since "
            f"{since}), which cannot be checked from here; allowed: another --out, or delete {str(self.path)!r} if "
            "that run has ended"
        )

    def release(self) -> None:
        """Remove the lock if this run still holds it (a no-op otherwise)."""
        if self._mine is None:
            return
        with contextlib.suppress(OSError), _guard(self.out):
            holder = _read_lock(self.path)
            if isinstance(holder, dict) and all(holder.get(k) == self._mine[k] for k in ("pid", "host", "start")):
                self.path.unlink()
        self._mine = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


# ------------------------------------------------------------------------------------------------------ results


def chunk_files(out: Path, n_chunks: int) -> list[Path]:
    """The checkpoint files of chunks ``0 .. n_chunks - 1``; raises if any is missing."""
    files = [chunk_path(out, c) for c in range(n_chunks)]
    missing = [f.name for f in files if not f.exists()]
    if missing:
        raise RuntimeError(f"{len(missing)} chunk checkpoints missing after the run (first: {missing[0]})")
    return files


def assemble_patients(files: list[Path], spec: TrialSpec, path: Path) -> int:
    """Stream replicate 0 (the first ``patients_per_arm`` per arm) into one Parquet file; bounded memory."""
    n = 0

    def write(tmp: Path) -> None:
        nonlocal n
        writer = None
        try:
            for f in files:
                t = pq.read_table(f)
                df = t.to_pandas()
                df = df[(df["replicate"] == 0) & (df["rank"] < spec.patients_per_arm)]
                if df.empty:
                    continue
                tab = pa.Table.from_pandas(df, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, tab.schema)
                writer.write_table(tab)
                n += len(df)
        finally:
            if writer is not None:
                writer.close()

    atomic_write(path, write)
    return n


def read_columns(files: list[Path], columns: list[str], filters=None) -> pd.DataFrame:
    """Some columns of every chunk, concatenated in chunk order."""
    parts = [pq.read_table(f, columns=columns, filters=filters).to_pandas() for f in files]
    return pd.concat(parts, ignore_index=True)
