"""The published calibration targets (docs/science.md §3) as data: ``chemomet/data/calibration/targets.toml``.

Each target carries its published value, the interval a reached value must lie in, its source and, for a
calibrated target, the parameter (:data:`chemomet.calibrate.vector.TREATMENT`) it is matched with. The file is
read and validated once (:func:`published_targets`); :meth:`Target.row` makes the row of the target table that
``chemomet calibrate targets`` writes and ``chemomet calibrate report`` prints.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from chemomet.calibrate.vector import TREATMENT
from chemomet.errors import Contradiction, validation_error

PACKAGE = "chemomet.data.calibration"
FILE = "targets.toml"

RULES = {
    "key": ("a unique identifier (letters, digits, _)", None),
    "name": ("a non-empty label", None),
    "kind": ("calibrated, check or direction", None),
    "target": ("a number, or a word for a direction", None),
    "interval": ("[low, high] with low <= high (inf for an open end)", None),
    "half_width": ("a number > 0 (same unit as target)", None),
    "factor": ("a number > 1", None),
    "binomial_n": ("an integer >= 1", "patients"),
    "scale": ("linear or log", None),
    "source": ("a non-empty text naming the study", None),
    "parameter": (f"one of {list(TREATMENT)}", None),
    "subgroup": ("a text naming the patients", None),
    "note": ("a text; {name} fields are filled by the calibration", None),
}
"""What each field of a ``[[target]]`` table allows (for the one-line error messages)."""

_INTERVAL_FIELDS = ("interval", "half_width", "factor", "binomial_n")


class Target(BaseModel):
    """One published target (one ``[[target]]`` table of ``targets.toml``).

    key: identifier; name: the table row's label; kind: ``calibrated`` (a parameter is matched to it),
    ``check`` or ``direction``; target: the published value (same unit as the model quantity), or a word for a
    direction; source: the study; parameter: the :data:`~chemomet.calibrate.vector.TREATMENT` parameter a
    calibrated target is matched with; subgroup: the patients the value refers to; scale: ``log`` when
    matched on the log scale; note: text for the table (``{field}`` placeholders filled by
    :meth:`row`). Exactly one of ``interval`` (``[low, high]``), ``half_width`` (target ± h), ``factor``
    (target ÷ f to × f) or ``binomial_n`` (95% Wald interval of a proportion on n patients) gives
    :attr:`bounds`.

    Examples
    --------
    >>> t = Target(key="x", name="x", kind="check", target=241.0, factor=1.5, source="Ryu 2014")
    >>> t.bounds
    (160.66666666666666, 361.5)
    >>> t.row(300.0)["pass"]
    True
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=r"^[a-z0-9_]+$")
    name: str = Field(min_length=1)
    kind: Literal["calibrated", "check", "direction"]
    target: float | str
    interval: tuple[float, float] | None = None
    half_width: float | None = Field(default=None, gt=0)
    factor: float | None = Field(default=None, gt=1)
    binomial_n: int | None = Field(default=None, ge=1)
    scale: Literal["linear", "log"] = "linear"
    source: str = Field(min_length=1)
    parameter: str | None = None
    subgroup: str | None = None
    note: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Target:
        given = [f for f in _INTERVAL_FIELDS if getattr(self, f) is not None]
        if len(given) != 1:
            raise Contradiction(f"target {self.key!r}: give exactly one of {list(_INTERVAL_FIELDS)}; got {given}")
        if isinstance(self.target, str) and given != ["interval"]:
            raise Contradiction(f"target {self.key!r}: a word target ({self.target!r}) needs an explicit interval")
        if self.parameter is not None and self.parameter not in TREATMENT:
            raise Contradiction(
                f"target {self.key!r}: parameter = {self.parameter!r} is invalid; allowed: one of {list(TREATMENT)}"
            )
        if (self.kind == "calibrated") != (self.parameter is not None):
            raise Contradiction(f"target {self.key!r}: a parameter is given for, and only for, a calibrated target")
        lo, hi = self.bounds
        if not lo <= hi:
            raise Contradiction(f"target {self.key!r}: interval {[lo, hi]} is invalid; allowed: low <= high")
        if self.scale == "log" and not (given == ["interval"] and 0 < lo and math.isfinite(hi)):
            raise Contradiction(f"target {self.key!r}: scale = 'log' needs a finite positive interval")
        return self

    @property
    def bounds(self) -> tuple[float, float]:
        """``(low, high)`` a reached value must lie in (``±inf`` for an open end), same unit as :attr:`target`."""
        if self.interval is not None:
            return self.interval
        v = float(self.target)
        if self.factor is not None:
            return (v / self.factor, v * self.factor)
        half = self._linear_half()
        return (v - half, v + half)

    def _linear_half(self) -> float:
        """The half-width of a symmetric interval (``half_width`` or the binomial one)."""
        if self.half_width is not None:
            return self.half_width
        v = float(self.target)
        return 1.96 * np.sqrt(v * (1 - v) / self.binomial_n)

    @property
    def half(self) -> float:
        """Half-width of the interval on the scale the target is matched on (:attr:`scale`): the target's
        uncertainty a calibrated parameter inherits by the delta method."""
        if self.scale == "log":
            lo, hi = self.bounds
            return (np.log(hi) - np.log(lo)) / 2
        if self.half_width is not None or self.binomial_n is not None:
            return self._linear_half()
        lo, hi = self.bounds
        return (hi - lo) / 2

    def row(self, value: float | None, **note_values) -> dict:
        """The target-table row of a reached ``value``.

        Parameters
        ----------
        value : float or None
            The value the model reached (same unit as :attr:`target`); ``None`` when not computed.
        **note_values
            Values for the ``{field}`` placeholders of :attr:`note`.

        Returns
        -------
        dict
            ``name``, ``value``, ``target``, ``interval`` (an open end as ``None``, JSON ``null``), ``pass``
            (the value lies in the interval), ``kind``, ``source``, ``note``.

        Examples
        --------
        >>> published_targets()["pcr_tnbc"].row(0.33)["interval"]
        [0.30600000000000005, 0.366]
        """
        lo, hi = (float(x) if np.isfinite(x) else None for x in self.bounds)
        ok = value is not None and np.isfinite(value) and (lo is None or lo <= value) and (hi is None or value <= hi)
        return {
            "name": self.name,
            "value": None if value is None else float(value),
            "target": self.target,
            "interval": [lo, hi],
            "pass": bool(ok),
            "kind": self.kind,
            "source": self.source,
            "note": self.note.format(**note_values),
        }


class TargetTable(BaseModel):
    """The whole file: ``[[target]]`` tables with unique keys.

    Examples
    --------
    >>> row = {"key": "a", "name": "A", "kind": "check", "target": 1.0, "interval": [0.5, 2.0], "source": "S"}
    >>> len(TargetTable.model_validate({"target": [row]}).target)
    1
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: list[Target] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> TargetTable:
        keys = [t.key for t in self.target]
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise Contradiction(f"target keys repeat: {repeated}; allowed: each key once")
        return self


def parse_targets(table: dict, where: str = FILE) -> dict[str, Target]:
    """Validate a target table (the parsed ``targets.toml`` layout).

    Parameters
    ----------
    table : dict
        ``{"target": [ {key, name, kind, target, ...}, ... ]}``.
    where : str
        Name of the source, for error messages.

    Returns
    -------
    dict
        key -> :class:`Target`, in the order of the table.

    Raises
    ------
    chemomet.errors.InputError
        With one line naming the first problem.

    Examples
    --------
    >>> t = parse_targets({"target": [{"key": "a", "name": "A", "kind": "check", "target": 1.0,
    ...                                "interval": [0.5, 2.0], "source": "S"}]})
    >>> t["a"].bounds
    (0.5, 2.0)
    """
    try:
        parsed = TargetTable.model_validate(table)
    except ValidationError as err:
        raise validation_error(err, where, RULES) from None
    return {t.key: t for t in parsed.target}


@lru_cache(maxsize=1)
def _shipped() -> dict[str, Target]:
    text = resources.files(PACKAGE).joinpath(FILE).read_text(encoding="utf-8")
    return parse_targets(tomllib.loads(text), f"data/calibration/{FILE}")


def published_targets() -> dict[str, Target]:
    """The published targets of docs/science.md §3 (``data/calibration/targets.toml``), validated.

    Returns
    -------
    dict
        key -> :class:`Target` (immutable), in the file's order.

    Examples
    --------
    >>> t = published_targets()["tmem_odds_ratio"]
    >>> t.target, t.bounds, t.source, t.parameter
    (2.7, (1.39, 5.26), 'Rohan 2014', 'log_theta')
    """
    return dict(_shipped())


def target_table(reached: Mapping[str, float | None], notes: Mapping[str, dict] | None = None) -> list[dict]:
    """The target table: one row (:meth:`Target.row`) per published target, in the order of ``targets.toml``.

    Parameters
    ----------
    reached : mapping
        Target key -> the value the model reached (every key of :func:`published_targets`).
    notes : mapping, optional
        Target key -> values for the ``{field}`` placeholders of its note.

    Returns
    -------
    list of dict
        The rows, as ``report.json`` stores them under ``targets.table``.

    Examples
    --------
    >>> rows = target_table(dict.fromkeys(published_targets(), None), {
    ...     "ebctcg_rate_ratio": {"epsilon_low": 0.01, "epsilon_high": 50},
    ...     "tie2_reverses_shedding": {"nact_alone": 1.5},
    ...     "late_recurrence_er_pos_t1n0": {"share_by_year_10": 0.5}})
    >>> len(rows), rows[0]["name"], rows[0]["pass"]
    (18, 'pCR HR+/HER2- grade 1-2', False)
    """
    notes = notes or {}
    return [t.row(reached[k], **notes.get(k, {})) for k, t in published_targets().items()]
