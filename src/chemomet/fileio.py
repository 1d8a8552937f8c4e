"""Writing output files safely: check the path before any work, write atomically.

Every file is written to a temporary name in the target folder and renamed into place, so an interrupted or
failed run never leaves a partial output.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from chemomet.errors import InputError


def check_output_path(path: str | Path, suffixes: tuple[str, ...], what: str) -> Path:
    """Check an output path before any work: existing folder, allowed suffix, not a folder itself."""
    p = Path(path)
    if p.suffix.lower() not in suffixes:
        raise InputError(
            f"{what} = {str(p)!r} is invalid; allowed: a file name ending in {' or '.join(suffixes)}"
        )
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(
            f"{what} = {str(p)!r} is invalid; allowed: a path in an existing folder "
            f"({str(parent)!r} does not exist)"
        )
    if p.is_dir():
        raise InputError(f"{what} = {str(p)!r} is a folder; allowed: a file name")
    return p


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary sibling of ``path`` (same suffix), then rename it to ``path``."""
    p = Path(path)
    tmp = p.with_name(f".{p.stem}.tmp{os.getpid()}{p.suffix}")
    try:
        write(tmp)
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()
