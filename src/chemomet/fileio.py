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
    """Check an output path before any work: existing folder, allowed suffix, not a folder itself.

    Called before a long computation, so a typo in an output path fails at once rather than after the work.
    Nothing is created or written.

    Parameters
    ----------
    path : str or pathlib.Path
        The output file the user asked for.
    suffixes : tuple of str
        Allowed file suffixes, lower case with the dot, e.g. ``(".json",)``; the path's suffix is compared
        case-insensitively.
    what : str
        How the path is named in the message, e.g. the option ``"--out"``.

    Returns
    -------
    pathlib.Path
        ``path`` as a :class:`~pathlib.Path`.

    Raises
    ------
    InputError
        If the suffix is not allowed, the parent folder does not exist, or the path is an existing folder.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> check_output_path(folder / "summary.json", (".json",), "--out").name
    'summary.json'
    >>> check_output_path("results.txt", (".json", ".csv"), "--out")
    Traceback (most recent call last):
    ...
    chemomet.errors.InputError: --out = 'results.txt' is invalid; allowed: a file name ending in .json or .csv
    >>> check_output_path(folder / "missing" / "summary.json", (".json",), "--out")
    Traceback (most recent call last):
    ...
    chemomet.errors.InputError: --out = '.../missing/summary.json' is invalid;
    allowed: a path in an existing folder ('.../missing' does not exist)
    """
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
    """Call ``write(tmp)`` on a temporary sibling of ``path`` (same suffix), then rename it to ``path``.

    The temporary file ``.<stem>.tmp<pid><suffix>`` lies in the target folder, so the final rename is atomic
    (:func:`os.replace`): readers see either the old file or the complete new one. If ``write`` raises, the
    temporary file is removed, ``path`` is left as it was and the exception propagates.

    Parameters
    ----------
    path : str or pathlib.Path
        The file to write (replaced if it exists).
    write : callable
        ``write(tmp)`` writes the whole content to the :class:`~pathlib.Path` ``tmp``; its return value is ignored.

    Examples
    --------
    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "summary.json"
    >>> atomic_write(target, lambda tmp: tmp.write_text('{"n": 3}'))
    >>> target.read_text()
    '{"n": 3}'
    >>> def fails(tmp):
    ...     tmp.write_text("partial")
    ...     raise RuntimeError("disk full")
    >>> atomic_write(target, fails)
    Traceback (most recent call last):
    ...
    RuntimeError: disk full
    >>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
    ('{"n": 3}', ['summary.json'])
    """
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
