"""Hostile files at the file-system and number edges: each ends with exit code 2 and one line naming the path,
never a traceback, a hang or a read of unbounded size (the input layer, chemomet.inputs)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chemomet.cli import main

BASE = {"age": 50, "diameter_mm": 20, "grade": 2, "er": "positive", "pr": "positive", "her2": "negative"}


def _patient_json(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def hostile_patients(tmp_path) -> dict[str, tuple[Path, str]]:
    """name -> (patient path, text the one line must contain)."""
    cases = {
        "5000-digit nodes": (
            _patient_json(tmp_path, "nodes.json", json.dumps(BASE)[:-1] + ', "nodes_positive": ' + "9" * 5000 + "}"),
            "5000 digits",
        ),
        "400-digit age": (_patient_json(tmp_path, "age.json", json.dumps({**BASE, "age": 1}).replace(
            '"age": 1', '"age": ' + "7" * 400)), "400 digits"),
        "400-digit age in TOML": (_patient_json(tmp_path, "age.toml", "age = " + "7" * 400 + "\n"), "digits"),
        "nested 4*10^5 deep": (_patient_json(tmp_path, "deep.json", "[" * 400_000 + "]" * 400_000), "nested"),
        "nested 10^6 deep": (_patient_json(tmp_path, "deeper.json", "[" * 10**6 + "]" * 10**6), "at most 1 MiB"),
        "nested 40 deep": (_patient_json(tmp_path, "deep40.json", '{"a": ' * 40 + "1" + "}" * 40), "nested"),
    }
    folder = tmp_path / "x.toml"
    folder.mkdir()
    cases["a folder named x.toml"] = (folder, "is a folder")
    loop = tmp_path / "loop.toml"
    os.symlink(loop, loop)
    cases["a symlink loop"] = (loop, "cannot be read")
    for device in ("/dev/zero", "/dev/urandom"):
        if Path(device).exists():
            link = tmp_path / f"{Path(device).name}.toml"
            os.symlink(device, link)
            cases[f"{device} through a link"] = (link, "not a regular file")
    big = tmp_path / "big.toml"
    with open(big, "wb") as fh:
        fh.truncate(2 * 1024 * 1024)  # a sparse 2 MiB file
    cases["a 2 MiB patient file"] = (big, "at most 1 MiB")
    return cases


def _one_line(capsys, argv):
    with pytest.raises(SystemExit) as info:
        main(argv)
    out = capsys.readouterr()
    lines = [ln for ln in out.err.splitlines() if ln.strip()]
    return info.value.code, lines, out


def test_hostile_patient_files_give_one_line(tmp_path, capsys):
    cases = hostile_patients(tmp_path)
    assert len(cases) >= 9
    for name, (path, expected) in cases.items():
        code, lines, out = _one_line(capsys, ["simulate", str(path), "--json"])
        assert code == 2 and len(lines) == 1 and out.out == "", name
        assert str(path.name) in lines[0] and expected in lines[0], (name, lines[0])
        assert "Traceback" not in out.err


@pytest.mark.parametrize("command", ["trial", "regimen"])
def test_devices_and_folders_as_other_inputs(tmp_path, capsys, command):
    folder = tmp_path / "spec.toml"
    folder.mkdir()
    argv = ["trial", str(folder)] if command == "trial" else ["simulate", "-", "--regimen", str(folder)]
    if command == "regimen":
        patient = tmp_path / "p.json"
        patient.write_text(json.dumps(BASE), encoding="utf-8")
        argv[1] = str(patient)
    code, lines, out = _one_line(capsys, argv)
    assert code == 2 and len(lines) == 1 and "Traceback" not in out.err, lines


def test_a_corrupt_manifest_is_named_and_fresh_is_offered(tmp_path, capsys):
    good = Path(__file__).parents[1] / "examples" / "trials" / "nact_vs_rebastinib_allcomers.toml"
    out = tmp_path / "run"
    out.mkdir()
    (out / "manifest.json").write_text('{"format": 1, "spec_hash": ', encoding="utf-8")
    code, lines, captured = _one_line(capsys, ["trial", str(good), "--out", str(out)])
    assert code == 2 and len(lines) == 1, captured.err
    assert "manifest.json" in lines[0] and "--fresh" in lines[0]


def test_a_device_never_blocks_a_fresh_process(tmp_path):
    """The same promise in a fresh interpreter, with a deadline: /dev/urandom must be refused, not read."""
    if not Path("/dev/urandom").exists():
        pytest.skip("no /dev/urandom")
    link = tmp_path / "random.json"
    os.symlink("/dev/urandom", link)
    done = subprocess.run(
        [sys.executable, "-m", "chemomet.cli", "simulate", str(link)], capture_output=True, text=True, timeout=60,
        check=False,
    )
    assert done.returncode == 2 and "not a regular file" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("value", ["0", "-5", "15"])
def test_chunk_size_follows_the_spec_rule(tmp_path, capsys, value):
    spec = Path(__file__).parents[1] / "examples" / "trials" / "nact_vs_rebastinib_allcomers.toml"
    out = tmp_path / "run"
    code, lines, _ = _one_line(capsys, ["trial", str(spec), "--chunk-size", value, "--out", str(out)])
    assert code == 2 and len(lines) == 1 and "--chunk-size" in lines[0] and "16 to 1000000" in lines[0]
    assert not out.exists()
