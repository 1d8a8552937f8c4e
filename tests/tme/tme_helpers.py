"""Shared helpers for the tissue-analysis tests (imported by the test modules of this folder)."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import chemomet.cli as top_cli
from chemomet.tme.synthetic import generate_tissue
from chemomet.tme.table import make_table

CORPUS = Path(__file__).parent / "corpus"
CODES = {"Stroma": 0, "Tumor": 1, "Macrophage": 2, "Endothelial": 3}

# Typer collapses an app with a single command into that command (no sub-command name). Record the state
# before any test calls main(), so that the helpers below pass "tmem" exactly when the real CLI expects it.
_BASE_COMMANDS = len(top_cli.app.registered_commands) + len(top_cli.app.registered_groups)
_HAS_CALLBACK = top_cli.app.registered_callback is not None


def _is_group(n_commands_after_register: int) -> bool:
    return n_commands_after_register >= 2 or _HAS_CALLBACK


@functools.cache
def tissue(n_cells: int = 10_000, seed: int = 0, **kw):
    """A cached synthetic tissue (do not mutate ``cells``; copy it)."""
    return generate_tissue(n_cells, seed=seed, **dict(kw))


def table_of(df, **kw):
    """CellTable from a generic-preset DataFrame."""
    return make_table(
        df["x"].to_numpy(),
        df["y"].to_numpy(),
        df["cell_type"].map(CODES).to_numpy(),
        df["radius"].to_numpy(),
        **kw,
    )


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    """Run ``chemomet tmem ARGS`` in-process through :func:`chemomet.cli.main`; return (code, out, err)."""
    n_after = len(top_cli.app.registered_commands) + len(top_cli.app.registered_groups) + 1
    argv = ["tmem", *map(str, args)] if _is_group(n_after) else [*map(str, args)]
    capsys.readouterr()
    try:
        top_cli.main(argv)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    out = capsys.readouterr()
    return code, out.out, out.err


def run_cli_subprocess(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``python -m chemomet.cli tmem ARGS`` in a fresh interpreter."""
    prefix = ["tmem"] if _is_group(_BASE_COMMANDS + 1) else []
    return subprocess.run(
        [sys.executable, "-m", "chemomet.cli", *prefix, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
