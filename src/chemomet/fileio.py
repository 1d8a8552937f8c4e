"""The output layer: check every output path before any work, write atomically.

Every output path a command takes (``--out``, ``--plot``, ``--report``, ``--map``, ...) goes through
:func:`check_output_path` (a file) or :func:`check_output_dir` (a folder) before any work. Both prove the path
writable by creating a temporary file where the output will go and removing it again, so a read-only folder, a
path inside ``/proc``, a name too long for the file system or a full disk fails at once, as one line naming the
path (:class:`~chemomet.errors.InputError`), not after minutes of work or as a traceback.

Every file is then written by :func:`atomic_write`: to a temporary name in the target folder, renamed into place,
so an interrupted or failed run never leaves a partial output.
"""

from __future__ import annotations

import hashlib
import math
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from chemomet.errors import InputError, shown_value

NAME_MAX = 255
"""Longest file name (bytes) accepted: the limit of common Linux, macOS and Windows file systems."""


def _shown(p: Path) -> str:
    return shown_value(str(p), 240)


def _name_fits(name: str) -> bool:
    return len(os.fsencode(name)) <= NAME_MAX


def _probe(folder: Path, what: str, target: Path, allowed: str = "a path in a folder you can write to") -> None:
    """Create, write and remove a temporary file in ``folder``; an OSError becomes an InputError naming ``target``."""
    probe = folder / f".chemomet-probe-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"chemomet")
        finally:
            os.close(fd)
        os.unlink(probe)
    except OSError as err:
        try:
            probe.unlink(missing_ok=True)
        except OSError:
            pass
        reason = err.strerror or type(err).__name__
        raise InputError(
            f"{what} = {_shown(target)} cannot be written ({reason} in {_shown(folder)}); allowed: {allowed}"
        ) from None


def check_output_path(path: str | Path, suffixes: tuple[str, ...], what: str) -> Path:
    """Check an output file path before any work: allowed suffix, an existing folder that can be written to, a
    file name the file system takes, not a folder itself.

    Called before a long computation, so a typo in an output path fails at once rather than after the work.
    Writability is proven by creating and removing a temporary file in the folder; the output itself is neither
    created nor touched.

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
        If the suffix is not allowed, the parent folder does not exist (or is not a folder), the path is an
        existing folder, the name is longer than :data:`NAME_MAX` bytes, or a file cannot be created in the folder
        (read-only, no permission, ``/proc``, a full disk).

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> check_output_path(folder / "summary.json", (".json",), "--out").name
    'summary.json'
    >>> sorted(folder.iterdir())  # nothing left behind
    []
    >>> check_output_path("results.txt", (".json", ".csv"), "--out")
    Traceback (most recent call last):
    ...
    chemomet.errors.InputError: --out = 'results.txt' is invalid; allowed: a file name ending in .json or .csv
    >>> check_output_path(folder / "missing" / "summary.json", (".json",), "--out")
    Traceback (most recent call last):
    ...
    chemomet.errors.InputError: --out = '.../missing/summary.json' is invalid;
    allowed: a path in an existing folder ('.../missing' does not exist)
    >>> check_output_path("/proc/self/cohort.csv", (".csv",), "--out")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    chemomet.errors.InputError: --out = '/proc/self/cohort.csv' cannot be written (... in '/proc/self');
    allowed: a path in a folder you can write to
    """
    p = Path(path)
    if p.suffix.lower() not in suffixes:
        raise InputError(f"{what} = {_shown(p)} is invalid; allowed: a file name ending in {' or '.join(suffixes)}")
    parent = p.parent if str(p.parent) else Path(".")
    try:
        parent_is_dir, parent_exists = parent.is_dir(), parent.exists()
        is_dir = p.is_dir()
    except OSError as err:  # a name too long, a link loop
        raise InputError(
            f"{what} = {_shown(p)} is invalid ({err.strerror}); allowed: a path in a folder you can write to"
        ) from None
    if not parent_is_dir:
        state = "is not a folder" if parent_exists else "does not exist"
        raise InputError(
            f"{what} = {_shown(p)} is invalid; allowed: a path in an existing folder ({_shown(parent)} {state})"
        )
    if is_dir:
        raise InputError(f"{what} = {_shown(p)} is a folder; allowed: a file name")
    if not _name_fits(p.name):
        raise InputError(
            f"{what} = {_shown(p)} is invalid; allowed: a file name of at most {NAME_MAX} bytes "
            f"(this one has {len(os.fsencode(p.name))})"
        )
    _probe(parent, what, p)
    return p


def check_output_dir(path: str | Path, what: str, *, parents: bool = True) -> bool:
    """Check an output folder before any work by creating it (if missing) and a temporary file in it.

    Parameters
    ----------
    path : str or pathlib.Path
        The folder the user asked for (e.g. a trial's run directory).
    what : str
        How the path is named in the message, e.g. ``"--out"``.
    parents : bool, default True
        Create missing parent folders too; False requires the parent to exist.

    Returns
    -------
    bool
        True if the folder was created by this call (the caller may remove it again if the run then fails on bad
        input), False if it existed already.

    Raises
    ------
    InputError
        If the path is an existing file, cannot be created (``/proc``, no permission, a name too long), or no file
        can be written in it; folders created by this call are removed again.

    Examples
    --------
    >>> import tempfile
    >>> run = Path(tempfile.mkdtemp()) / "runs" / "trial-a"
    >>> check_output_dir(run, "--out"), sorted(run.iterdir())
    (True, [])
    >>> check_output_dir(run, "--out")
    False
    >>> check_output_dir("/proc/trial-a", "--out")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    chemomet.errors.InputError: --out = '/proc/trial-a' cannot be created (...); allowed: a folder you can write to
    """
    p = Path(path)
    try:
        exists, is_dir = p.exists(), p.is_dir()
    except OSError as err:
        raise InputError(
            f"{what} = {_shown(p)} is invalid ({err.strerror}); allowed: a folder you can write to"
        ) from None
    if exists and not is_dir:
        raise InputError(f"{what} = {_shown(p)} is a file; allowed: a folder (created if missing)")
    if is_dir:
        _probe(p, what, p, "a folder you can write to")
        return False
    parent = p.parent if str(p.parent) else Path(".")
    if not parents and not parent.is_dir():
        raise InputError(f"{what} = {_shown(p)} is invalid; allowed: a folder whose parent exists")
    missing = [p]  # the folders this call creates, deepest first
    for up in p.parents:
        if up.exists() or up == up.parent:
            break
        missing.append(up)
    try:
        p.mkdir(parents=parents, exist_ok=True)
    except OSError as err:
        _remove_empty(missing)
        reason = err.strerror or type(err).__name__
        raise InputError(
            f"{what} = {_shown(p)} cannot be created ({reason}); allowed: a folder you can write to"
        ) from None
    try:
        _probe(p, what, p, "a folder you can write to")
    except InputError:
        _remove_empty(missing)
        raise
    return True


def _remove_empty(folders: list[Path]) -> None:
    for f in folders:  # deepest first; only folders this call created, and only while empty
        try:
            f.rmdir()
        except OSError:
            pass


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary sibling of ``path`` (same suffix), then rename it to ``path``.

    The temporary file ``.<stem>.tmp<pid><suffix>`` (the stem shortened so the name fits :data:`NAME_MAX`) lies
    in the target folder, so the final rename is atomic
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
    stem, tail = p.stem, f".tmp{os.getpid()}{p.suffix}"
    while stem and not _name_fits(f".{stem}{tail}"):
        stem = stem[:-1]
    tmp = p.with_name(f".{stem}{tail}")
    try:
        write(tmp)
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()


def file_digest(path: str | Path) -> dict:
    """Size and SHA-256 of a file, the record a checkpoint is verified against before it is used again.

    Parameters
    ----------
    path : str or pathlib.Path
        The file (read in blocks of 1 MiB: memory stays small whatever its size).

    Returns
    -------
    dict
        ``{"size": bytes, "sha256": hex digest}``.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "chunk.bin"
    >>> _ = path.write_bytes(b"abc")
    >>> file_digest(path)  # doctest: +NORMALIZE_WHITESPACE
    {'size': 3, 'sha256': 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'}
    """
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
            size += len(block)
    return {"size": size, "sha256": h.hexdigest()}


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
