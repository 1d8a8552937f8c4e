"""`chemomet trial --out` never deletes or overwrites files chemomet did not write (issue 15): a non-empty folder
that is not a chemomet run folder, the working directory of a project, the home folder and the root are refused
with one line before anything in them is touched; a chemomet run folder is resumed or started over, keeping any
other file in it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from chemomet.cli import main
from chemomet.errors import InputError
from chemomet.trial.rundir import OUTPUTS, RunLock, check_run_folder, is_run_folder, prepare_run_dir

SPEC = Path(__file__).parents[1] / "examples" / "trials" / "nact_vs_rebastinib_allcomers.toml"


def _user_folder(folder: Path) -> dict[str, bytes]:
    """A folder of someone's files, some with the names of chemomet's outputs; returns name -> content."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"notes.txt": b"my notes", "summary.json": b'{"mine": true}', "patients.parquet": b"not a run",
             "forest.png": b"my figure"}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    (folder / "chunks").mkdir()
    (folder / "chunks" / "chunk-000000.parquet").write_bytes(b"my data, by chance so named")
    files["chunks/chunk-000000.parquet"] = b"my data, by chance so named"
    return files


def _unchanged(folder: Path, files: dict[str, bytes]) -> None:
    found = {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert found == files, sorted(found)


def _one_line(capsys, argv) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    captured = capsys.readouterr()
    lines = [ln for ln in captured.err.splitlines() if ln.strip()]
    assert info.value.code == 2 and len(lines) == 1 and captured.out == "" and "Traceback" not in captured.err
    return lines[0]


@pytest.mark.parametrize("fresh", [False, True])
def test_a_folder_of_other_files_is_refused_and_left_alone(tmp_path, capsys, fresh):
    folder = tmp_path / "project"
    files = _user_folder(folder)
    line = _one_line(capsys, ["trial", str(SPEC), "--out", str(folder), *(["--fresh"] if fresh else [])])
    assert "project" in line and "not a chemomet run folder" in line and "'notes.txt'" in line
    assert "allowed: a new or empty folder" in line
    _unchanged(folder, files)


def test_out_dot_in_a_project_folder_is_refused(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "project"
    files = _user_folder(folder)
    monkeypatch.chdir(folder)
    line = _one_line(capsys, ["trial", str(SPEC), "--out", ".", "--fresh"])
    assert "--out = '.' is not empty and not a chemomet run folder" in line
    _unchanged(folder, files)


@pytest.mark.parametrize("empty", [False, True])
def test_the_home_folder_is_refused_whatever_it_holds(tmp_path, capsys, monkeypatch, empty):
    home = tmp_path / "home"
    home.mkdir()
    files = {} if empty else {".bashrc": b"export X=1"}
    for name, data in files.items():
        (home / name).write_bytes(data)
    monkeypatch.setenv("HOME", str(home))
    line = _one_line(capsys, ["trial", str(SPEC), "--out", str(home)])
    assert "is your home folder" in line
    _unchanged(home, files)


def test_the_root_folder_is_refused():
    with pytest.raises(InputError, match="is the root folder"):
        check_run_folder("/")


def test_the_api_refuses_too_before_the_lock_is_written(tmp_path):
    """run_trial takes the lock first: RunLock refuses a folder of other files, and writes no run.lock in it."""
    from chemomet.trial import parse_trial_spec

    folder = tmp_path / "project"
    files = _user_folder(folder)
    with pytest.raises(InputError, match="not a chemomet run folder"):
        RunLock(folder).acquire()
    spec = parse_trial_spec({"name": "g", "patients_per_arm": 20, "arms": [
        {"name": "A", "strategy": "nact"}, {"name": "B", "strategy": "nact+rebastinib"}]})
    with pytest.raises(InputError, match="not a chemomet run folder"):
        prepare_run_dir(folder, spec, 16, 3, resume=False)
    _unchanged(folder, files)


def test_a_chemomet_run_folder_is_started_over_keeping_other_files(tmp_path):
    """--fresh in a run folder removes chemomet's chunks and outputs only; a file of the user's stays."""
    from chemomet.trial import parse_trial_spec

    spec = parse_trial_spec({"name": "g", "patients_per_arm": 20, "arms": [
        {"name": "A", "strategy": "nact"}, {"name": "B", "strategy": "nact+rebastinib"}]})
    out = tmp_path / "run"
    prepare_run_dir(out, spec, 16, 3, resume=True)
    for name in OUTPUTS:
        (out / name).write_bytes(b"old output")
    (out / "chunks" / "chunk-000000.parquet").write_bytes(b"old chunk")
    (out / "my-notes.txt").write_text("about this run")
    assert is_run_folder(out)
    check_run_folder(out)
    prepare_run_dir(out, spec, 16, 3, resume=False)
    assert sorted(p.name for p in out.iterdir()) == ["chunks", "manifest.json", "my-notes.txt"]
    assert (out / "my-notes.txt").read_text() == "about this run" and not list((out / "chunks").iterdir())


def test_what_counts_as_a_run_folder(tmp_path):
    def folder(name, entries: dict[str, str | None]) -> Path:
        f = tmp_path / name
        f.mkdir()
        for rel, text in entries.items():
            p = f / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.mkdir() if text is None else p.write_text(text)
        return f

    lock = json.dumps({"pid": 2**22 + 1, "host": "h", "start": None, "program": "chemomet trial"})
    manifest = json.dumps({"format": 2, "spec_hash": "ab", "chunks": {}})
    accepted = {
        "empty": {},
        "killed before the manifest (a stale lock)": {"run.lock": lock},
        "a damaged manifest": {"manifest.json": '{"format": 1, "spec_hash": ', "chunks": None},
        "a run with a file of the user's": {"manifest.json": manifest, "notes.txt": "mine"},
        "a finished comparison": {"summary.json": json.dumps({"name": "c", "designs": []}), "power.png": "png",
                                  "design-a/manifest.json": manifest},
        "an interrupted comparison (lock released)": {"design-a/manifest.json": manifest},
        "a probe or temporary file left by a kill": {".manifest.tmp123.json": "{", ".run.lock.77": "x",
                                                     ".chemomet-probe-1-ab": ""},
    }
    refused = {
        "someone's files": {"thesis.tex": "x"},
        "only someone's summary.json": {"summary.json": '{"mine": 1}'},
        "someone's lock file": {"run.lock": "locked by my editor", "notes.txt": "x"},
        "another tool's manifest": {"manifest.json": '{"version": 3}', "data.csv": "a,b"},
        "a sub-folder that is not a run": {"design-a/notes.txt": "x"},
    }
    for i, entries in enumerate(accepted.values()):
        check_run_folder(folder(f"ok{i}", entries))
    for i, (name, entries) in enumerate(refused.items()):
        with pytest.raises(InputError, match="not a chemomet run folder"):
            check_run_folder(folder(f"no{i}", entries))
            pytest.fail(f"accepted: {name}")
    check_run_folder(tmp_path / "not-there-yet")  # created by the run


def test_a_resumed_run_folder_still_runs(tmp_path, capsys):
    """The guard lets a stale lock's folder through to the lock (taken over), as before."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.lock").write_text(json.dumps({"pid": 2**22 + 1, "host": os.uname().nodename, "start": None,
                                              "program": "chemomet trial"}))
    lock = RunLock(out).acquire()
    try:
        assert lock.taken_over is not None
    finally:
        lock.release()
    assert list(out.iterdir()) == []
