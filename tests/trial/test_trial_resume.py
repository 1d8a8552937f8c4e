"""Kill-and-resume: a trial killed mid-run (SIGKILL) and resumed equals an uninterrupted run; the run folder's lock
and the verification of checkpoints before use (chemomet.trial.rundir)."""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time

import pandas as pd
import pyarrow.parquet as pq
import pytest

from chemomet.errors import InputError
from chemomet.fileio import file_digest
from chemomet.trial import run_trial
from chemomet.trial.chunk import chunk_path
from chemomet.trial.rundir import LOCK_NAME, RunLock, _alive, _proc_stat
from tests.trial.conftest import BASE, make_spec, write_toml

TABLE = {**BASE, "patients_per_arm": 1000, "execution": {"chunk_size": 100}, "analysis": {"subgroups": ["tmem_high"]}}
"""20 chunks of 100 patients (was 20 of 200: the same number of chunks to kill between, half the simulation)."""

SMALL = {**BASE, "name": "resume test", "seed": 7, "patients_per_arm": 96, "execution": {"chunk_size": 16},
         "analysis": {"subgroups": ["tmem_high"], "event_grid_days": 14}}
"""12 chunks of 16 patients: a few seconds in all, so random kills land in every phase of a run."""

MEDIUM = {**SMALL, "patients_per_arm": 384}
"""48 chunks: enough for 20 kills to land all along the simulation."""

COMPARED = ("name", "spec_hash", "seed", "arms", "endpoints", "subgroups", "screening")


@pytest.mark.parametrize("executor", ["local", pytest.param("dask", marks=pytest.mark.slow)])  # dask: 25 s
def test_kill_and_resume(tmp_path, executor, request):
    spec_file = tmp_path / "spec.toml"
    write_toml(spec_file, TABLE)
    spec = make_spec(**{k: TABLE[k] for k in ("patients_per_arm", "execution", "analysis")})
    n_chunks = -(-spec.n_enrolled // TABLE["execution"]["chunk_size"])
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "chemomet.cli", "trial", str(spec_file), "--out", str(out), "--no-progress"]
    if executor == "dask":
        cmd += ["--workers", "2"]  # the worker processes die with the killed driver
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    done = 0
    try:
        while time.time() < deadline and proc.poll() is None:
            done = len(list((out / "chunks").glob("chunk-*.parquet"))) if (out / "chunks").exists() else 0
            if done >= 2:
                break
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    before = sorted(p.name for p in (out / "chunks").glob("chunk-*.parquet"))
    assert 1 <= len(before) < n_chunks, (len(before), n_chunks, proc.stderr.read())
    assert not (out / "patients.parquet").exists()
    assert (out / LOCK_NAME).exists()  # the killed run could not remove its lock: the resume takes it over
    mtimes = {name: (out / "chunks" / name).stat().st_mtime_ns for name in before}

    client = request.getfixturevalue("dask2") if executor == "dask" else None
    resumed = run_trial(spec_file, out=out, client=client)  # resume: same spec, same run directory
    assert resumed.summary["run"]["chunks_computed"] == n_chunks - len(before)
    assert resumed.summary["run"]["chunks_recomputed"] == 0
    for name, t in mtimes.items():  # finished chunks were not recomputed
        assert (out / "chunks" / name).stat().st_mtime_ns == t
    assert [chunk_path(out, c).exists() for c in range(n_chunks)] == [True] * n_chunks
    assert [p.name for p in (out / "chunks").iterdir() if not p.name.startswith("chunk-")] == []  # no temp files
    assert not (out / LOCK_NAME).exists()

    fresh = run_trial(spec_file, out=tmp_path / "fresh")  # uninterrupted, in process
    a, b = resumed.patients, fresh.patients
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert a["patient_index"].is_unique and len(a) == 2 * TABLE["patients_per_arm"]
    assert sorted(a["position"]) == list(range(spec.n_enrolled))
    rows = sum(pq.ParquetFile(chunk_path(out, c)).metadata.num_rows for c in range(n_chunks))
    assert rows == spec.n_enrolled
    assert resumed.summary["endpoints"] == fresh.summary["endpoints"]


# ------------------------------------------------------------------------------------------ random kills, resumed


def _reference(folder, table):
    spec_file = folder / "spec.toml"
    write_toml(spec_file, table)
    t0 = time.perf_counter()
    reference = run_trial(spec_file, out=folder / "reference", figures=False)
    return spec_file, reference, time.perf_counter() - t0


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """The small spec file and its uninterrupted run (in process), with the seconds it took."""
    return _reference(tmp_path_factory.mktemp("small"), SMALL)


def _assert_records_match(out):
    manifest = json.loads((out / "manifest.json").read_text())
    files = sorted(p.name for p in (out / "chunks").glob("chunk-*.parquet"))
    assert sorted(manifest["chunks"]) == files == [chunk_path(out, c).name for c in range(manifest["n_chunks"])]
    for name in files:
        assert manifest["chunks"][name] == file_digest(out / "chunks" / name), name


def kill_and_resume(tmp_path, small, kills: int, seed: int) -> dict:
    """Start the CLI, SIGKILL it at a random moment, ``kills`` times in a row; then let it finish. Returns what
    happened (the last run's summary, how many killed runs had finished anyway, the chunk files after each).

    The moment is uniform from the start to a horizon: interpreter start and imports (about 2.5 s), the time the
    run spends outside the simulation (screening, assembling, analysing), and the time of at most six of the chunks
    still to write; so the kills land in every phase of the run, many of them in the middle of the simulation.
    """
    spec_file, reference, seconds = small
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "chemomet.cli", "trial", str(spec_file), "--out", str(out), "--no-progress",
           "--json"]
    rng = random.Random(seed)
    n_chunks, simulation = reference.summary["run"]["chunks"], reference.summary["run"]["simulation_seconds"]
    finished, chunks_seen = 0, []
    for _ in range(kills):
        left = n_chunks - (len(list((out / "chunks").glob("chunk-*.parquet"))) if (out / "chunks").exists() else 0)
        span = 2.5 + (seconds - simulation) + simulation * min(left, 6) / n_chunks
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            proc.wait(timeout=rng.uniform(0.2, span))
            finished += 1  # it ended before its moment came
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        err = proc.stderr.read().decode()
        assert proc.returncode in (0, -signal.SIGKILL), err
        assert "Traceback" not in err, err
        chunks_seen.append(len(list((out / "chunks").glob("chunk-*.parquet"))) if (out / "chunks").exists() else 0)
        if (out / "patients.parquet").exists():  # written atomically: complete whenever it is there
            pq.read_table(out / "patients.parquet")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "damaged" not in done.stderr  # atomic writes: a kill never leaves a damaged chunk
    summary = json.loads(done.stdout)
    assert summary["run"]["chunks_recomputed"] == 0
    pd.testing.assert_frame_equal(
        pd.read_parquet(out / "patients.parquet"), reference.patients, check_exact=True
    )
    assert {k: summary.get(k) for k in COMPARED} == {k: reference.summary.get(k) for k in COMPARED}
    _assert_records_match(out)
    assert not (out / LOCK_NAME).exists()
    assert [p.name for p in (out / "chunks").iterdir() if not p.name.startswith("chunk-")] == []
    return {"finished": finished, "chunks_seen": chunks_seen, "summary": summary}


def test_three_random_kills_then_resume(tmp_path, small):
    result = kill_and_resume(tmp_path, small, kills=3, seed=3)
    assert len(result["chunks_seen"]) == 3


@pytest.mark.slow
def test_twenty_random_kills_then_resume(tmp_path_factory, tmp_path):
    medium = _reference(tmp_path_factory.mktemp("medium"), MEDIUM)
    result = kill_and_resume(tmp_path, medium, kills=20, seed=20)
    print(f"\n20 kills: {result['finished']} runs ended before their kill; chunk files after each: "
          f"{result['chunks_seen']}")
    assert len(result["chunks_seen"]) == 20


# ------------------------------------------------------------------------------------------ checkpoint verification


def _copy_run(small, tmp_path):
    _, reference, _ = small
    out = tmp_path / "run"
    shutil.copytree(reference.out, out)
    return out, reference


@pytest.mark.parametrize("damage", ["truncate", "flip a byte", "empty", "folder", "unrecorded and truncated"])
def test_a_damaged_chunk_is_recomputed_alone(tmp_path, small, caplog, damage):
    out, reference = _copy_run(small, tmp_path)
    spec_file = small[0]
    bad = chunk_path(out, 5)
    data = bad.read_bytes()
    mtimes = {c: chunk_path(out, c).stat().st_mtime_ns for c in range(12)}
    if damage == "truncate":
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "flip a byte":  # same size: only the digest finds it
        bad.write_bytes(data[:100] + bytes([data[100] ^ 0xFF]) + data[101:])
    elif damage == "empty":
        bad.write_bytes(b"")
    elif damage == "folder":
        bad.unlink()
        bad.mkdir()
    else:  # killed before its record was saved, and damaged since: read in full, refused
        manifest = json.loads((out / "manifest.json").read_text())
        del manifest["chunks"][bad.name]
        (out / "manifest.json").write_text(json.dumps(manifest))
        bad.write_bytes(data[:-10])
    with caplog.at_level(logging.WARNING, logger="chemomet.trial"):
        result = run_trial(spec_file, out=out, figures=False)
    assert result.summary["run"]["chunks_recomputed"] == 1 and result.summary["run"]["chunks_computed"] == 1
    warnings = [r.getMessage() for r in caplog.records if "damaged" in r.getMessage()]
    assert len(warnings) == 1 and bad.name in warnings[0] and "\n" not in warnings[0]
    assert bad.read_bytes() == data  # recomputed: the same bytes as before
    for c, t in mtimes.items():
        if c != 5:
            assert chunk_path(out, c).stat().st_mtime_ns == t  # the others were kept
    pd.testing.assert_frame_equal(result.patients, reference.patients, check_exact=True)
    _assert_records_match(out)


def test_an_unrecorded_intact_chunk_is_kept_and_recorded(tmp_path, small):
    """A run killed between a chunk's rename and the manifest's save: the chunk is read in full, then recorded."""
    out, reference = _copy_run(small, tmp_path)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["chunks"] = {k: v for k, v in manifest["chunks"].items() if k != chunk_path(out, 3).name}
    manifest["chunks"]["chunk-000004.parquet"] = "not a record"  # a malformed record counts as none
    (out / "manifest.json").write_text(json.dumps(manifest))
    t = chunk_path(out, 3).stat().st_mtime_ns
    result = run_trial(small[0], out=out, figures=False)
    assert result.summary["run"]["chunks_computed"] == 0 and result.summary["run"]["chunks_recomputed"] == 0
    assert chunk_path(out, 3).stat().st_mtime_ns == t
    _assert_records_match(out)


def test_the_cli_names_a_truncated_chunk_in_one_warning_and_succeeds(tmp_path, small):
    out, _ = _copy_run(small, tmp_path)
    bad = chunk_path(out, 0)
    bad.write_bytes(bad.read_bytes()[:200])
    done = subprocess.run(
        [sys.executable, "-m", "chemomet.cli", "trial", str(small[0]), "--out", str(out), "--no-progress", "--json"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("warning:") and bad.name in lines[0], done.stderr
    assert "ArrowInvalid" not in done.stderr and "Traceback" not in done.stderr
    assert json.loads(done.stdout)["run"]["chunks_recomputed"] == 1


# ---------------------------------------------------------------------------------------------------------- lock


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _write_lock(out, **fields):
    out.mkdir(parents=True, exist_ok=True)
    (out / LOCK_NAME).write_text(json.dumps({"since": "2026-01-01T00:00:00+00:00", **fields}))


def test_liveness_of_a_lock_holder():
    host = socket.gethostname()
    me = _proc_stat(os.getpid())
    assert _alive({"pid": os.getpid(), "host": host, "start": me[1] if me else None}) is True
    assert _alive({"pid": _dead_pid(), "host": host}) is False
    assert _alive({"pid": os.getpid(), "host": host, "start": "-1"}) is (me is None)  # the pid reused by another
    assert _alive({"pid": "12", "host": host}) is False and _alive({"pid": 2**40, "host": host}) is False
    assert _alive({"pid": 1, "host": host + "-elsewhere"}) is None
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        for _ in range(200):  # until it has exited, not yet reaped
            stat = _proc_stat(zombie.pid)
            if stat is None or stat[0] == "Z":
                break
            time.sleep(0.01)
        if stat is not None:
            assert _alive({"pid": zombie.pid, "host": host, "start": stat[1]}) is False
    finally:
        zombie.wait()


def test_a_live_lock_refuses_a_second_run(tmp_path, small):
    out = tmp_path / "run"
    out.mkdir()
    with RunLock(out):
        with pytest.raises(InputError) as info:
            run_trial(small[0], out=out, figures=False)
    message = str(info.value)
    assert "is in use by another chemomet trial run" in message and f"pid {os.getpid()}" in message
    assert "\n" not in message
    assert not (out / LOCK_NAME).exists()  # released by its holder, not by the refused run
    assert run_trial(small[0], out=out, figures=False).summary["run"]["chunks_computed"] == 12


@pytest.mark.parametrize("holder", ["dead pid", "reused pid", "unreadable"])
def test_a_stale_lock_is_taken_over(tmp_path, small, caplog, holder):
    out, reference = _copy_run(small, tmp_path)
    if holder == "dead pid":
        _write_lock(out, pid=_dead_pid(), host=socket.gethostname(), start="1")
    elif holder == "reused pid":
        _write_lock(out, pid=os.getpid(), host=socket.gethostname(), start="-1")
    else:
        (out / LOCK_NAME).write_bytes(b"\x00\xff{truncated")
    if holder == "reused pid" and _proc_stat(os.getpid()) is None:
        pytest.skip("no /proc: a reused pid cannot be told from the original")
    with caplog.at_level(logging.WARNING, logger="chemomet.trial"):
        result = run_trial(small[0], out=out, figures=False)
    assert any("took over the lock" in r.getMessage() for r in caplog.records)
    assert not (out / LOCK_NAME).exists()
    pd.testing.assert_frame_equal(result.patients, reference.patients, check_exact=True)


def test_a_lock_of_another_host_is_named(tmp_path, small):
    out = tmp_path / "run"
    _write_lock(out, pid=4242, host="node-17\x1b[31m", start="5")
    with pytest.raises(InputError) as info:
        run_trial(small[0], out=out, figures=False)
    message = str(info.value)
    assert "host 'node-17\\x1b[31m'" in message and "pid 4242" in message and LOCK_NAME in message
    assert "\x1b" not in message
    assert (out / LOCK_NAME).exists()  # not ours to remove


def test_two_concurrent_cli_runs(tmp_path, small):
    """The second run into a busy folder is refused at once with one line; the first one is unaffected."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "chemomet.cli", "trial", str(small[0]), "--out", str(out), "--no-progress", "--json"]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (out / LOCK_NAME).exists() and time.time() < deadline and first.poll() is None:
            time.sleep(0.02)
        second = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        stdout, stderr = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    lines = [ln for ln in second.stderr.splitlines() if ln.strip()]
    if first.returncode == 0 and second.returncode == 0:
        pytest.skip("the first run ended before the second started")  # a very fast machine
    assert second.returncode == 2 and len(lines) == 1 and "is in use by another chemomet trial run" in lines[0]
    assert f"pid {first.pid}" in lines[0] and second.stdout == ""
    assert first.returncode == 0, stderr
    assert json.loads(stdout)["run"]["chunks_computed"] == 12
