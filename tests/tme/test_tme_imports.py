"""``chemomet tmem`` imports only what it needs: not the simulation side of chemomet (regimens, mechanisms and their
pydantic models, data files), not the pydantic model of user preset files, not matplotlib without ``--map``, not
anndata without ``--anndata-out``, not ``scipy.stats`` (each tens of milliseconds or more of every run, in a fresh
process). pydantic itself is imported by typer (≥ 0.2x), which builds a ``TypeAdapter`` per option it parses."""

from __future__ import annotations

import json
import subprocess
import sys

from tme_helpers import tissue

NOT_NEEDED = ("chemomet.regimens", "chemomet.mechanisms", "matplotlib", "anndata", "scipy.stats")

SCRIPT = """
import json, sys
from chemomet.cli import main
try:
    main(["tmem", sys.argv[1], "--out", sys.argv[2]])
except SystemExit as err:
    assert err.code in (0, None), err.code
from chemomet.tme.presets import _preset_file_model
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("matplotlib", "anndata", "scipy", "chemomet"))
print(json.dumps(loaded + ["preset-model-built"] * _preset_file_model.cache_info().currsize))
"""


def test_the_command_does_not_import_the_other_commands_modules(tmp_path):
    cells = tmp_path / "cells.parquet"
    tissue(2000, seed=3).cells.to_parquet(cells)
    out = tmp_path / "summary.json"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(cells), str(out)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert json.loads(out.read_text())["n_cells"] == 2000
    assert not [m for m in loaded if m.split(".")[0] in NOT_NEEDED or m.startswith(NOT_NEEDED)]
    assert "preset-model-built" not in loaded
    assert "chemomet.tme.plot" not in loaded and "chemomet.tme.synthetic" not in loaded


def test_the_package_loads_its_modules_on_first_use():
    code = (
        "import sys, chemomet.tme as t; before = sorted(m for m in sys.modules if m.startswith('chemomet.tme.')); "
        "t.score_tissue; print(before, 'chemomet.tme.scores' in sys.modules, sorted(dir(t)) == sorted(set(dir(t))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]", "True", "True"]
