"""Writing output files safely: check the path before any work, write atomically.

Every file is written to a temporary name in the target folder and renamed into place, so an interrupted or
failed run never leaves a partial output.
"""

from __future__ import annotations

import math
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


def json_safe(obj):
    """A copy of ``obj`` that strict JSON accepts: NumPy scalars become Python numbers, NaN and ±inf become None,
    tuples become lists (dicts and lists are copied recursively).

    Examples
    --------
    >>> import numpy as np
    >>> json_safe({"a": np.float64("nan"), "b": (np.int64(2), 0.5)})
    {'a': None, 'b': [2, 0.5]}
    """
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", None) == 0:  # a NumPy scalar
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return obj
