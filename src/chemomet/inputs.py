"""Reading user files safely: one layer for every TOML or JSON file chemomet reads.

A file must be a regular file (not a folder, a device, a pipe or a link loop), no larger than the cap of its kind
(stated in the error), UTF-8 text (a leading byte-order mark, as some editors write, is accepted and removed),
nested no deeper than :data:`MAX_DEPTH`, and hold no number longer than :data:`MAX_DIGITS` digits. Every problem,
file-system errors included, becomes a one-line :class:`~chemomet.errors.InputError` naming the path, before any
value is converted.
"""

from __future__ import annotations

import json
import os
import stat
import tomllib
from pathlib import Path

from chemomet.errors import InputError

MiB = 1024 * 1024

SIZE_CAPS = {
    "patient": 1 * MiB,
    "regimen": 1 * MiB,
    "drug": 1 * MiB,
    "trial spec": 1 * MiB,
    "mechanisms": 1 * MiB,
    "population": 4 * MiB,
    "presets": 1 * MiB,
    "manifest": 16 * MiB,
    "report": 64 * MiB,
}
"""Largest file of each kind (bytes): far above any real file, small enough to refuse a wrong one at once."""

MAX_DEPTH = 32
"""Deepest nesting of tables and lists accepted."""

MAX_DIGITS = 30
"""Longest integer accepted (digits): any quantity of the model fits in far fewer."""

BOM = "\ufeff"
"""The UTF-8 byte-order mark: accepted at the start of every file read (removed before parsing)."""


def _human(n: int) -> str:
    return f"{n / MiB:.3g} MiB" if n >= MiB else f"{n} bytes"


def read_capped_bytes(path: str | Path, cap: int, allowed: str, too_big: str | None = None) -> bytes:
    """The bytes of a user file after checking that it is a regular file of at most ``cap`` bytes; never more than
    the cap is read, whatever size the file reports.

    ``allowed`` names the file in messages (e.g. ``"a patient file"``); ``too_big`` replaces the "allowed: ..."
    part of the message for a file over the cap. Raises :class:`~chemomet.errors.InputError` with one line naming
    the path and what is allowed.

    Examples
    --------
    >>> import tempfile
    >>> read_capped_bytes(tempfile.mkdtemp(), 10, "a cell table")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    chemomet.errors.InputError: ...: is a folder; allowed: a cell table
    """
    path = Path(path)
    readable = "a readable " + allowed.removeprefix("a ")
    too_big = too_big or f"allowed: {allowed} of at most {_human(cap)}"
    try:
        info = path.stat()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found; allowed: {readable}") from None
    except OSError as err:  # a link loop, a name too long, no permission
        raise InputError(f"{path}: cannot be read ({err.strerror}); allowed: {readable}") from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError(f"{path}: is a folder; allowed: {allowed}")
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"{path}: is not a regular file (a device, pipe or socket); allowed: {allowed}")
    if info.st_size > cap:
        raise InputError(f"{path}: is {_human(info.st_size)}; {too_big}")
    try:
        with open(path, "rb") as fh:
            data = fh.read(cap + 1)  # the size a file reports may be wrong; never read more than the cap
    except OSError as err:
        raise InputError(f"{path}: cannot be read ({err.strerror}); allowed: {readable}") from None
    if len(data) > cap:
        raise InputError(f"{path}: is larger than {_human(cap)}; {too_big}")
    return data


def read_text(path: str | Path, kind: str) -> str:
    """The text of a user file of the given kind (a key of :data:`SIZE_CAPS`), after checking that it is a regular
    file within the size cap and UTF-8; a leading UTF-8 byte-order mark (:data:`BOM`) is removed.

    Parameters
    ----------
    path : str or Path
        The file (a link is followed; a link loop is refused).
    kind : str
        What the file holds, e.g. ``"patient"``; sets the size cap and names the file in messages.

    Returns
    -------
    str

    Raises
    ------
    chemomet.errors.InputError
        One line naming the path and what is allowed.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> read_text(folder, "patient")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    chemomet.errors.InputError: ...: is a folder; allowed: a patient file
    """
    data = read_capped_bytes(path, SIZE_CAPS[kind], f"a {kind} file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text; allowed: a {kind} file in UTF-8") from None
    return text.removeprefix(BOM)  # a byte-order mark, as some editors write: accepted, not part of the text


def _check_int(literal: str, where: str) -> int:
    digits = len(literal.lstrip("+-").replace("_", ""))
    if digits > MAX_DIGITS:
        raise InputError(f"{where}: a number with {digits} digits is invalid; allowed: at most {MAX_DIGITS} digits")
    return int(literal)


def check_structure(data, where: str) -> None:
    """Refuse nesting deeper than :data:`MAX_DEPTH` and integers longer than :data:`MAX_DIGITS` digits in parsed
    data (one line naming ``where``).

    Examples
    --------
    >>> check_structure({"a": [1, 2, {"b": 3}]}, "x.toml")
    >>> check_structure({"age": 10**40}, "x.toml")
    Traceback (most recent call last):
    ...
    chemomet.errors.InputError: x.toml: a number with 41 digits is invalid; allowed: at most 30 digits
    """
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise InputError(f"{where}: nested more than {MAX_DEPTH} levels deep; allowed: at most {MAX_DEPTH}")
            items = value.values() if isinstance(value, dict) else value
            stack.extend((v, depth + 1) for v in items)
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**MAX_DIGITS:
            _check_int(str(value), where)


def parse_text(text: str, suffix: str, where: str, what: str | None = None):
    """Parse TOML (``.toml``) or JSON (``.json``) text with the checks of :func:`check_structure`; ``what`` says
    what is allowed in the message for a syntax error (default: valid TOML or JSON).

    Examples
    --------
    >>> parse_text('{"age": 50}', ".json", "p.json")
    {'age': 50}
    >>> parse_text("[" * 5000 + "]" * 5000, ".json", "deep.json")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    chemomet.errors.InputError: deep.json: nested too deeply; allowed: at most 32 levels
    """
    try:
        if suffix == ".json":
            data = json.loads(text, parse_int=lambda s: _check_int(s, where))
        else:
            data = tomllib.loads(text)
    except RecursionError:
        raise InputError(f"{where}: nested too deeply; allowed: at most {MAX_DEPTH} levels") from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as err:
        syntax = "JSON" if suffix == ".json" else "TOML"
        raise InputError(f"{where}: not valid {syntax} ({err}); allowed: {what or 'valid ' + syntax}") from None
    except InputError:  # a number too long, found while parsing
        raise
    except ValueError as err:  # e.g. an integer beyond Python's conversion limit in TOML
        raise InputError(f"{where}: {err}; allowed: numbers of at most {MAX_DIGITS} digits") from None
    check_structure(data, where)
    return data


def read_data(path: str | Path, kind: str, where: str | None = None):
    """Read and parse a user TOML or JSON file (by its suffix) through :func:`read_text` and :func:`parse_text`.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "p.toml"
    >>> _ = path.write_text("age = 50")
    >>> read_data(path, "patient")
    {'age': 50}
    """
    path = Path(path)
    syntax = "JSON" if path.suffix.lower() == ".json" else "TOML"
    return parse_text(read_text(path, kind), path.suffix.lower(), where or str(path), f"a {kind} file in {syntax}")


def is_regular_file(path: str | Path) -> bool:
    """True for an existing regular file (a link to one counts); False for anything else, link loops included.

    Examples
    --------
    >>> is_regular_file("/")
    False
    """
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False
