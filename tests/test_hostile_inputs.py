"""Hostile files at the file-system and number edges: each ends with exit code 2 and one line naming the path,
never a traceback, a hang or a read of unbounded size (the input layer, chemomet.inputs)."""

import json
import os
import shutil
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


# ------------------------------------------------------------------------------------------------ the output layer

SPEC = Path(__file__).parents[1] / "examples" / "trials" / "nact_vs_rebastinib_allcomers.toml"
EXAMPLE = Path(__file__).parents[1] / "src" / "chemomet" / "data" / "examples" / "patient.toml"
CELLS = Path(__file__).parent / "tme" / "corpus" / "good.csv"
UNWRITABLE = [p for p in ("/proc/self", "/sys") if Path(p).is_dir()]


def _unwritable_cases(tmp_path) -> dict[str, tuple[list[str], str]]:
    """name -> (argv, the path the one line must name)."""
    long_name = "x" * 300 + ".csv"
    a_file = tmp_path / "a-file.txt"
    a_file.write_text("not a folder")
    cases = {
        "trial --out /proc/x": (["trial", str(SPEC), "--out", "/proc/x"], "/proc/x"),
        "trial --out below a file": (["trial", str(SPEC), "--out", str(a_file / "run")], "a-file.txt/run"),
        "trial --out a name too long": (["trial", str(SPEC), "--out", str(tmp_path / ("r" * 300))], "rrrr"),
        "cohort --out /proc/self/x.csv": (["cohort", "--n", "10", "--out", "/proc/self/x.csv"], "/proc/self/x.csv"),
        "cohort --out a name too long": (["cohort", "--n", "10", "--out", str(tmp_path / long_name)], "xxxx"),
        "cohort --out below a file": (["cohort", "--n", "10", "--out", str(a_file / "x.csv")], "a-file.txt"),
        "simulate --plot /proc/self/x.png": (["simulate", str(EXAMPLE), "--plot", "/proc/self/x.png"], "/proc/self"),
        "assess --report /proc/self/r.html": (["assess", str(EXAMPLE), "--report", "/proc/self/r.html"], "/proc/self"),
        "tmem --out /proc/self/s.json": (["tmem", str(CELLS), "--out", "/proc/self/s.json"], "/proc/self/s.json"),
        "tmem --map /proc/self/m.png": (["tmem", str(CELLS), "--map", "/proc/self/m.png"], "/proc/self/m.png"),
        "calibrate natural-history --out /proc/x": (["calibrate", "natural-history", "--out", "/proc/x"], "/proc/x"),
        "calibrate targets --out /proc/x": (["calibrate", "targets", "--out", "/proc/x"], "/proc/x"),
    }
    if Path("/sys").is_dir():
        cases["cohort --out /sys/x.csv (read-only for root too)"] = (
            ["cohort", "--n", "10", "--out", "/sys/x.csv"], "/sys/x.csv")
    return cases


def test_every_output_path_is_proven_writable_before_any_work(tmp_path, capsys):
    if not UNWRITABLE:
        pytest.skip("no /proc or /sys")
    for name, (argv, expected) in _unwritable_cases(tmp_path).items():
        code, lines, out = _one_line(capsys, argv)
        assert code == 2 and len(lines) == 1 and out.out == "", (name, out.err)
        assert expected in lines[0] and ("allowed" in lines[0] or "required" in lines[0]), (name, lines[0])
        assert "Traceback" not in out.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file.txt"]  # nothing created, no probe left


def test_a_folder_without_write_permission(tmp_path):
    """Run in a fresh process; as root, without the capability that lets root write anywhere (setpriv)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    prefix = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("root writes into read-only folders, and there is no setpriv to drop that")
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all", "--"]
    try:
        for argv, shown in ((["cohort", "--n", "10", "--out", str(folder / "x.csv")], "x.csv"),
                            (["trial", str(SPEC), "--out", str(folder)], "read-only"),
                            (["trial", str(SPEC), "--out", str(folder / "run")], "run")):
            done = subprocess.run([*prefix, sys.executable, "-m", "chemomet.cli", *argv], capture_output=True,
                                  text=True, timeout=120, check=False)
            lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
            assert done.returncode == 2 and len(lines) == 1 and done.stdout == "", done.stderr
            assert "Permission denied" in lines[0] and shown in lines[0] and "you can write to" in lines[0], lines
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


def test_a_probe_leaves_nothing_and_a_good_path_passes(tmp_path):
    from chemomet.fileio import check_output_dir, check_output_path

    assert check_output_path(tmp_path / "x.csv", (".csv",), "--out") == tmp_path / "x.csv"
    assert check_output_dir(tmp_path / "a" / "b", "--out") is True
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == ["a", "a/b"]


def test_a_trial_refused_late_leaves_no_folder(tmp_path, capsys):
    """The run folder is created up front (to prove it writable); bad input found later removes it again."""
    spec = Path(__file__).parent / "trial" / "corpus" / "nobody_eligible.toml"
    out = tmp_path / "runs" / "run"
    code, lines, _ = _one_line(capsys, ["trial", str(spec), "--out", str(out)])
    assert code == 2 and len(lines) == 1 and "eligib" in lines[0]
    assert not out.exists()


def test_atomic_write_takes_a_name_of_255_bytes(tmp_path):
    from chemomet.fileio import atomic_write

    target = tmp_path / ("y" * 251 + ".csv")
    atomic_write(target, lambda tmp: tmp.write_text("a,b\n"))
    assert target.read_text() == "a,b\n" and [p.name for p in tmp_path.iterdir()] == [target.name]


# ------------------------------------------------------------------------------------------ text that is echoed


def test_escapes_in_a_file_name_are_escaped_in_the_line(tmp_path, capsys):
    path = tmp_path / "p\x1b[2J\x1b[31m\u202e.json"
    path.write_text(json.dumps({**BASE, "age": 12}), encoding="utf-8")
    code, lines, _ = _one_line(capsys, ["simulate", str(path)])
    assert code == 2 and len(lines) == 1
    assert "\x1b" not in lines[0] and "\u202e" not in lines[0]
    assert "\\x1b[2J" in lines[0] and "\\u202e" in lines[0] and "age = 12" in lines[0]


def test_long_values_and_names_are_capped(tmp_path, capsys):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({**BASE, "er": "x" * 100_000, "y" * 50_000: 1}), encoding="utf-8")
    code, lines, _ = _one_line(capsys, ["simulate", str(path)])
    assert code == 2 and len(lines) == 1 and len(lines[0]) < 400, len(lines[0])
    assert "…" in lines[0]


def test_a_lone_surrogate_in_an_id_reaches_no_terminal_raw(tmp_path, capsys):
    from chemomet.errors import printable

    assert printable("p\ud800") == "p\\ud800"
    path = tmp_path / "p.json"
    path.write_text('{"id": "\\ud800\\u001b[31m", "age": 52, "diameter_mm": 24, "er": "positive", '
                    '"nact_diameters": [{"day": 42, "diameter_mm": 20}, {"day": 200, "diameter_mm": 12}]}',
                    encoding="utf-8")
    code, lines, _ = _one_line(capsys, ["simulate", str(path)])  # the message names the patient by its id
    assert code == 2 and len(lines) == 1 and "patient \\ud800\\x1b[31m: nact_diameters" in lines[0], lines
    lines[0].encode("utf-8")  # strict: no lone surrogate


def test_the_report_escapes_and_caps_the_patient_id_and_hashes_its_script():
    import base64
    import hashlib
    import re

    from chemomet.assess import Assessment
    from chemomet.assess.report import CSP, SCRIPT, render_report

    data = json.loads((Path(__file__).parent / "assess" / "data" / "assessment_example.json").read_text())
    data["patient"]["id"] = "\x1b[31m<b>" + "z" * 500
    page = render_report(Assessment.model_validate(data))
    assert "\x1b" not in page and "<b>" not in page.split("<main>")[0]
    shown = re.search(r'<strong id="patient-id">(.*?)</strong>', page).group(1)
    assert shown.startswith("\\x1b[31m&lt;b&gt;") and shown.endswith("…") and shown.count("z") < 80
    script = re.search(r"<script>(.*?)</script>", page, re.S).group(1)
    assert script == SCRIPT
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    policy = dict(part.strip().split(" ", 1) for part in CSP.split(";"))
    assert policy["script-src"] == f"'sha256-{digest}'" and "unsafe-inline" not in policy["script-src"]
    assert policy["default-src"] == "'none'" and f'content="{CSP}"' in page


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["cohort", "--n", "abc"], "'--n'"),
        (["cohort", "--n", "5", "--bogus"], "--bogus"),
        (["simulate"], "patient"),
        (["simulate", str(EXAMPLE), "--horizon-days", "1e999x"], "--horizon-days"),
        (["no-such-command"], "no-such-command"),
        (["trial"], "spec"),
    ],
)
def test_a_bad_option_or_argument_is_one_line_too(capsys, argv, expected):
    """click's usage errors (a box over several lines) become one line with a pointer to --help."""
    code, lines, out = _one_line(capsys, argv)
    assert code == 2 and len(lines) == 1 and out.out == "", out.err
    assert lines[0].startswith("error: ") and expected in lines[0] and "--help" in lines[0]


def test_no_arguments_still_shows_the_help(capsys):
    code, lines, out = _one_line(capsys, [])
    assert code == 2 and lines == [] and "Usage" in out.out and "trial" in out.out
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0 and "Usage" in capsys.readouterr().out


@pytest.mark.parametrize("pid", ["$\\frac$", "\ud800", "cost $5 vs $10 \x1b[31m"])
def test_a_patient_id_drawn_in_a_figure_title(tmp_path, capsys, pid):
    """A '$...$' pair (mathtext) or a lone surrogate in the id made the plot fail after the simulation."""
    path = tmp_path / "p.json"
    path.write_text(json.dumps({**BASE, "id": pid}), encoding="utf-8")
    plot = tmp_path / "plot.png"
    with pytest.raises(SystemExit) as info:
        main(["simulate", str(path), "--plot", str(plot), "--horizon-days", "3650"])
    captured = capsys.readouterr()
    assert info.value.code == 0 and plot.read_bytes()[:4] == b"\x89PNG", captured.err
    assert "\x1b" not in captured.err


def test_trial_and_arm_names_drawn_in_figures(tmp_path, recwarn):
    """'$...$' in a trial or arm name is drawn as it is (no mathtext), control characters without a warning."""
    from chemomet.trial import parse_trial_spec, run_trial

    spec = parse_trial_spec({
        "name": "cost $5 vs $10 \x1b[31m", "seed": 3, "patients_per_arm": 32,
        "arms": [{"name": "NACT $a$", "strategy": "nact"}, {"name": "NACT + $\\frac$", "strategy": "nact+rebastinib"}],
        "analysis": {"subgroups": ["tmem_high"]}, "execution": {"chunk_size": 16},
    })
    result = run_trial(spec, out=tmp_path / "run")
    assert {"km_dmfs", "km_drfi", "summary"} <= set(result.files)
    assert result.files["km_dmfs"].read_bytes()[:4] == b"\x89PNG"
    assert result.summary["name"] == "cost $5 vs $10 \x1b[31m"  # the summary keeps the name as given
    assert not [w for w in recwarn if "\x1b" in str(w.message)]
