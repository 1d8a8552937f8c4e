"""Reading and writing a calibration folder: the population TOML (``data/population.toml`` layout), the
ensemble (``ensemble.npz``) and the report (``report.json``).

Every file is written atomically (temporary name, then rename). A folder may be incomplete: the readers return
``None`` (or ``{}`` for the report) for a file that is not there yet.
"""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

import numpy as np

from chemomet.fileio import atomic_write


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        v = float(v)
        if not math.isfinite(v):
            return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _is_subtable(key: str, v) -> bool:
    return isinstance(v, dict) and (key in ("sources", "provenance") or any(isinstance(x, dict) for x in v.values()))


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def toml_text(config: dict, header: str = "") -> str:
    """TOML text of a two-level configuration (tables of scalars, lists, inline tables and sub-tables).

    Examples
    --------
    >>> print(toml_text({"growth": {"doubling_time_sdlog": 0.5, "sources": {"doubling_time_sdlog": "TRANSBIG"}}}))
    [growth]
    doubling_time_sdlog = 0.5
    <BLANKLINE>
    [growth.sources]
    doubling_time_sdlog = "TRANSBIG"
    <BLANKLINE>
    """
    lines = [f"# {line}" for line in header.splitlines()] if header else []

    def table(prefix: str, d: dict):
        lines.append("")
        lines.append(f"[{prefix}]")
        subs = []
        for k, v in d.items():
            if _is_subtable(k, v):
                subs.append((k, v))
            else:
                lines.append(f"{_key(k)} = {_value(v)}")
        for k, v in subs:
            table(f"{prefix}.{_key(k)}", v)

    for k, v in config.items():
        if isinstance(v, dict):
            table(_key(k), v)
        else:
            lines.insert(len(lines), f"{_key(k)} = {_value(v)}")
    return "\n".join(lines).lstrip("\n") + "\n"


def write_toml(path: Path, config: dict, header: str = "") -> None:
    """Write ``config`` as TOML (atomic).

    Parameters
    ----------
    path : pathlib.Path
        The file.
    config : dict
        A two-level configuration (see :func:`toml_text`).
    header : str
        Comment lines at the top.

    Examples
    --------
    >>> write_toml(folder / "population.toml", cfg, "Calibrated population")  # doctest: +SKIP
    """
    text = toml_text(config, header)
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: Path, obj: dict) -> None:
    """Write ``obj`` as indented JSON (atomic); NumPy arrays and scalars become lists and numbers.

    Examples
    --------
    >>> write_json(folder / "report.json", {"natural_history": summary})  # doctest: +SKIP
    """
    text = json.dumps(obj, indent=1, default=_json_default)
    atomic_write(path, lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))


def _json_default(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(type(o).__name__)


def write_ensemble(path: Path, names: list[str], values: np.ndarray, **extra) -> None:
    """Write the ensemble (``names``: parameter names, ``values``: sets × parameters) as ``.npz`` (atomic).

    Examples
    --------
    >>> write_ensemble(folder / "ensemble.npz", ["log10_mu"], draws[:, :1])  # doctest: +SKIP
    """

    def w(tmp: Path):
        with open(tmp, "wb") as fh:
            np.savez(fh, names=np.array(names), values=np.asarray(values, float), **extra)

    atomic_write(path, w)


def read_json(path: Path) -> dict:
    """Read a JSON file, or ``{}`` if it does not exist.

    Examples
    --------
    >>> read_json(Path("no-such-folder") / "report.json")
    {}
    """
    p = Path(path)
    return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else {}


def read_config(folder: Path) -> dict | None:
    """The configuration in ``folder/population.toml``, or ``None`` if there is none yet.

    Examples
    --------
    >>> read_config(Path("no-such-folder")) is None
    True
    """
    p = Path(folder) / "population.toml"
    return tomllib.loads(p.read_text(encoding="utf-8")) if p.is_file() else None


def read_ensemble(folder: Path) -> dict[str, np.ndarray] | None:
    """The ensemble in ``folder/ensemble.npz`` (``names``, ``values``: sets × parameters), or ``None``.

    Examples
    --------
    >>> read_ensemble(Path("no-such-folder")) is None
    True
    """
    p = Path(folder) / "ensemble.npz"
    if not p.is_file():
        return None
    with np.load(p, allow_pickle=False) as d:
        return {k: d[k] for k in d.files}
