"""Record the JSON outputs of the main commands, and compare two recordings.

A restructuring must not change a single number. This script runs ``chemomet demo --json``, ``simulate --json`` on
the example patient and the patient corpus, ``cohort --n 1000 --seed 1 --json``, ``excess-risk --n 2000 --json``,
``tmem --json`` on every file of the tissue corpus and ``calibrate report --json``, and stores each command's exit
code, standard output and standard error. Fields that describe the run rather than the result (wall time, the time
stamp) are masked before comparing.

Usage::

    python benchmarks/output_snapshot.py record before/      # on the old commit
    python benchmarks/output_snapshot.py record after/       # on the new one
    python benchmarks/output_snapshot.py compare before/ after/
    python benchmarks/output_snapshot.py record after/ tmem_   # only the snapshots whose name contains "tmem_"

``compare`` exits with 1 and lists the commands whose outputs differ.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VOLATILE = {"elapsed_s", "created_utc", "created", "generated"}
"""Keys whose values describe the run (time, duration), masked before comparing."""


def commands() -> dict[str, list[str]]:
    """Snapshot name -> ``chemomet`` arguments."""
    example = str(ROOT / "src" / "chemomet" / "data" / "examples" / "patient.toml")
    cmds = {
        "demo": ["demo", "--json"],
        "simulate_example": ["simulate", example, "-s", "nact", "-s", "surgery-first", "-s", "nact+rebastinib",
                             "-s", "nact-adaptive", "--json"],
        "simulate_example_tc": ["simulate", example, "-r", "tc", "-s", "natural-history", "-s", "surgery-only",
                                "--horizon-days", "3650", "--json"],
        "cohort": ["cohort", "--n", "1000", "--seed", "1", "--json"],
        "cohort_rebastinib": ["cohort", "--n", "1000", "--seed", "2", "-s", "nact+rebastinib", "--json"],
        "excess_risk": ["excess-risk", "--n", "2000", "--seed", "3", "--json"],
        "calibrate_report": ["calibrate", "report", "--json"],
    }
    for path in sorted((ROOT / "tests" / "corpus" / "patients").iterdir()):
        cmds[f"simulate_corpus_{path.name}"] = ["simulate", str(path), "--json"]
    for path in sorted((ROOT / "tests" / "tme" / "corpus").iterdir()):
        cmds[f"tmem_{path.name}"] = ["tmem", str(path), "--json"]
    return cmds


def record(folder: Path, only: str = "") -> None:
    """Run every command (whose name contains ``only``) and write ``<name>.json`` (exit code, stdout, stderr) into
    ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        for name, args in commands().items():
            if only not in name:
                continue
            done = subprocess.run(
                [sys.executable, "-m", "chemomet.cli", *args], cwd=work, capture_output=True, text=True,
                check=False,
            )
            stderr = done.stderr.replace(str(ROOT), "<root>")
            stdout = done.stdout.replace(str(ROOT), "<root>")
            (folder / f"{name}.json").write_text(
                json.dumps({"args": args, "rc": done.returncode, "stdout": stdout, "stderr": stderr}, indent=1)
            )
            print(f"{name}: exit {done.returncode}, {len(stdout)} characters", flush=True)


def _masked(value):
    if isinstance(value, dict):
        return {k: ("<masked>" if k in VOLATILE else _masked(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def _payload(path: Path) -> dict:
    """The record with a JSON stdout masked and written back in its original key order and number forms (``1`` and
    ``1.0`` differ), so the comparison is byte for byte apart from the masked values."""
    rec = json.loads(path.read_text())
    try:
        rec["stdout"] = json.dumps(_masked(json.loads(rec["stdout"])), ensure_ascii=False)
    except json.JSONDecodeError:
        pass
    return rec


def compare(a: Path, b: Path) -> int:
    """Compare the snapshots two recordings share; print those that differ (and the number recorded on one side
    only, e.g. commands added since) and return the number of differences."""
    names_a = {p.name for p in a.glob("*.json")}
    names_b = {p.name for p in b.glob("*.json")}
    common = sorted(names_a & names_b)
    bad = [name for name in common if _payload(a / name) != _payload(b / name)]
    for name in bad:
        print(f"differs: {name}")
    print(f"{len(common) - len(bad)} identical, {len(bad)} different; {len(names_a ^ names_b)} on one side only")
    return len(bad)


if __name__ == "__main__":
    if len(sys.argv) in (3, 4) and sys.argv[1] == "record":
        record(Path(sys.argv[2]), *sys.argv[3:])
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(1 if compare(Path(sys.argv[2]), Path(sys.argv[3])) else 0)
    else:
        sys.exit(__doc__)
