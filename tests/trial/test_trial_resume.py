"""Kill-and-resume: a trial killed mid-run (SIGKILL) and resumed equals an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pyarrow.parquet as pq
import pytest

from chemomet.trial import run_trial
from chemomet.trial.chunk import chunk_path
from tests.trial.conftest import BASE, make_spec, write_toml

TABLE = {**BASE, "patients_per_arm": 2000, "execution": {"chunk_size": 200}, "analysis": {"subgroups": ["tmem_high"]}}


@pytest.mark.parametrize("executor", ["local", "dask"])
def test_kill_and_resume(tmp_path, executor, request):
    spec_file = tmp_path / "spec.toml"
    write_toml(spec_file, TABLE)
    spec = make_spec(**{k: TABLE[k] for k in ("patients_per_arm", "execution", "analysis")})
    n_chunks = -(-spec.n_enrolled // 200)
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
    mtimes = {name: (out / "chunks" / name).stat().st_mtime_ns for name in before}

    client = request.getfixturevalue("dask2") if executor == "dask" else None
    resumed = run_trial(spec_file, out=out, client=client)  # resume: same spec, same run directory
    assert resumed.summary["run"]["chunks_computed"] == n_chunks - len(before)
    for name, t in mtimes.items():  # finished chunks were not recomputed
        assert (out / "chunks" / name).stat().st_mtime_ns == t
    assert [chunk_path(out, c).exists() for c in range(n_chunks)] == [True] * n_chunks
    assert [p.name for p in (out / "chunks").iterdir() if not p.name.startswith("chunk-")] == []  # no temp files

    fresh = run_trial(spec_file, out=tmp_path / "fresh")  # uninterrupted, in process
    a, b = resumed.patients, fresh.patients
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert a["patient_index"].is_unique and len(a) == 2 * 2000
    assert sorted(a["position"]) == list(range(spec.n_enrolled))
    rows = sum(pq.ParquetFile(chunk_path(out, c)).metadata.num_rows for c in range(n_chunks))
    assert rows == spec.n_enrolled
    assert resumed.summary["endpoints"] == fresh.summary["endpoints"]
