"""Quantitative human results that bear on the mechanisms chemomet models, as validated data.

The results (and a few preclinical ones, marked) live in ``chemomet/data/evidence.toml``, one ``[[evidence]]``
table per number: what it measures, in whom, over what time, against what, where in the source it stands, the
full citation and a note on its quality. A number that could not be read from a copy of its source is kept as a
record without a value and with the note ``"not verified here"`` (:data:`MISSING_NOTE`), so the gap is visible
rather than filled.

:func:`load_evidence` reads and validates a file (the shipped one by default) into :class:`Evidence` records;
:func:`evidence_table` turns records into a :class:`pandas.DataFrame`; :func:`by_mechanism` keeps the records that
bear on one mechanism (:data:`MECHANISMS`). docs/evidence.md presents the records by mechanism and says what each
group of numbers can and cannot identify.

Units: every ``value`` is on the scale its ``measure`` names. Ratios (hazard, odds, rate, relative risk, ratio of
means) are dimensionless and positive; a proportion, an AUC or a difference of proportions is a fraction (0.13,
not 13%); a ``time`` is in the unit its ``unit`` field gives (months for the recurrence-hazard peaks); a
``count`` is in its ``unit`` (patients, or mg for a dose). Intervals are on the same scale as the value.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from chemomet.errors import Contradiction, InputError, field_error, validation_error
from chemomet.inputs import BOM, parse_text, read_capped_bytes

PACKAGE = "chemomet.data"
FILE = "evidence.toml"
SIZE_CAP = 4 * 1024 * 1024
"""Largest evidence file read (bytes)."""

Mechanism = Literal[
    "doorway_intravasation", "chemo_primed_colonisation", "dormancy_exit", "mobilisation", "none_specific"
]
MECHANISMS: tuple[str, ...] = Mechanism.__args__
"""The mechanisms a result can bear on: intravasation at TMEM doorways (macrophages, MENA, shedding of tumour
cells), chemotherapy-primed colonisation of distant organs, exit from dormancy (late recurrence), mobilisation of
cells from niches (CXCR4), and ``none_specific`` (the net effect of NACT, or a drug's safety)."""

Measure = Literal[
    "hazard_ratio",
    "odds_ratio",
    "rate_ratio",
    "relative_risk",
    "ratio_of_means",
    "proportion",
    "difference",
    "time",
    "correlation",
    "auc",
    "count",
]
MEASURES: tuple[str, ...] = Measure.__args__
"""The kinds of number a record can hold."""

RATIOS = frozenset({"hazard_ratio", "odds_ratio", "rate_ratio", "relative_risk", "ratio_of_means"})
"""Measures that are ratios: the value and both interval limits must be > 0."""

_BOUNDED = {"proportion": (0.0, 1.0), "auc": (0.0, 1.0), "correlation": (-1.0, 1.0), "difference": (-1.0, 1.0)}

MISSING_NOTE = "not verified here"
"""The words the note of a record without a value must contain."""

RULES = {
    "evidence": ("a list of [[evidence]] tables (at least one)", None),
    "id": ("a unique identifier (lower-case letters, digits, _)", None),
    "mechanisms": (f"a non-empty list of {list(MECHANISMS)}", None),
    "population": ("a table {n, subtype, setting}", None),
    "n": ("an integer >= 1", "patients"),
    "subtype": ("a non-empty text", None),
    "setting": ("a non-empty text", None),
    "measure": (f"one of {list(MEASURES)}", None),
    "value": ("a finite number on the measure's scale, or absent when not read", None),
    "unit": ("a text (empty for a dimensionless measure)", None),
    "interval": ("a table {low, high, level} with low <= value <= high", None),
    "low": ("a finite number", None),
    "high": ("a finite number", None),
    "level": ("a number between 0 and 1 (0.95 for a 95% interval)", None),
    "se": ("a number > 0", None),
    "p_value": ("a number from 0 to 1", None),
    "time_window": ("a non-empty text", None),
    "endpoint": ("a non-empty text", None),
    "comparison": ("a non-empty text", None),
    "location": ("a non-empty text naming the place in the source", None),
    "read_from": ("a non-empty text saying what was read", None),
    "quality": ("a non-empty text", None),
    "preclinical": ("true or false", None),
    "note": ("a text", None),
    "source": ("a table {authors, year, title, journal, volume, pages, doi, pmid}", None),
    "authors": ("a non-empty text", None),
    "year": ("an integer from 1900 to 2100", "year"),
    "title": ("a non-empty text", None),
    "journal": ("a non-empty text", None),
    "volume": ("a text", None),
    "pages": ("a text", None),
    "doi": ("a DOI such as 10.1000/xyz", None),
    "pmid": ("digits only", None),
}
"""What each field of an ``[[evidence]]`` table allows (for the one-line error messages)."""

_TEXT = Field(min_length=1, max_length=2000)


_COLUMNS = (
    "id",
    "mechanisms",
    "n",
    "subtype",
    "setting",
    "measure",
    "value",
    "unit",
    "low",
    "high",
    "level",
    "se",
    "p_value",
    "time_window",
    "endpoint",
    "comparison",
    "location",
    "read_from",
    "quality",
    "preclinical",
    "note",
    "year",
    "citation",
)
"""The columns of :func:`evidence_table` (``id`` becomes the index)."""


class Population(BaseModel):
    """Who a result is about: ``n`` patients (None when not read), their ``subtype`` and the ``setting``.

    Examples
    --------
    >>> Population(n=4756, subtype="all", setting="10 randomised trials").n
    4756
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    n: int | None = Field(default=None, ge=1, le=100_000_000)
    subtype: str = _TEXT
    setting: str = _TEXT


class Interval(BaseModel):
    """An interval ``[low, high]`` on the value's scale; ``level`` is its coverage (0.95 for a 95% interval),
    None when the source does not state it.

    Examples
    --------
    >>> Interval(low=0.92, high=1.14, level=0.95).high
    1.14
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    low: float = Field(allow_inf_nan=False)
    high: float = Field(allow_inf_nan=False)
    level: float | None = Field(default=None, gt=0, lt=1)

    @model_validator(mode="after")
    def _ordered(self) -> Interval:
        if not self.low <= self.high:
            raise Contradiction(
                f"interval.low = {self.low!r} is above interval.high = {self.high!r}; allowed: low <= high"
            )
        return self


class Citation(BaseModel):
    """A bibliographic citation: ``authors``, ``year``, ``title``, ``journal`` and, where known, ``volume``,
    ``pages``, ``doi`` and ``pmid``.

    Examples
    --------
    >>> c = Citation(authors="Pan H, et al.", year=2017, title="20-year risks", journal="N Engl J Med",
    ...              volume="377", pages="1836-1846", doi="10.1056/NEJMoa1701830")
    >>> c.text()
    'Pan H, et al. 2017. 20-year risks. N Engl J Med 377:1836-1846. doi:10.1056/NEJMoa1701830'
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    authors: str = _TEXT
    year: int = Field(ge=1900, le=2100)
    title: str = _TEXT
    journal: str = _TEXT
    volume: str | None = Field(default=None, min_length=1, max_length=100)
    pages: str | None = Field(default=None, min_length=1, max_length=100)
    doi: str | None = Field(default=None, pattern=r"^10\.\d{4,9}/\S+$", max_length=200)
    pmid: str | None = Field(default=None, pattern=r"^\d{1,10}$")

    def text(self) -> str:
        """The citation as one line: authors, year, title, journal volume:pages, doi and PMID where known.

        Returns
        -------
        str

        Examples
        --------
        >>> Citation(authors="A B", year=2000, title="T", journal="J").text()
        'A B 2000. T. J'
        """
        where = self.journal
        if self.volume:
            where += f" {self.volume}"
        if self.pages:
            where += f":{self.pages}" if self.volume else f" {self.pages}"
        parts = [f"{self.authors} {self.year}", self.title, where]
        if self.doi:
            parts.append(f"doi:{self.doi}")
        if self.pmid:
            parts.append(f"PMID {self.pmid}")
        return ". ".join(parts)


class Evidence(BaseModel):
    """One quantitative result (one ``[[evidence]]`` table of ``evidence.toml``).

    ``value`` is the number as read from the source, on the scale of ``measure`` (see the module's units); it is
    None when the number could not be read, and then the note says :data:`MISSING_NOTE` and no interval or SE is
    given. ``interval`` (or ``se``) is the source's uncertainty; ``p_value`` as reported. ``time_window``,
    ``endpoint`` and ``comparison`` say what the number refers to; ``location`` where in the source it stands;
    ``read_from`` what was actually read (an abstract, a press release, a secondary table); ``quality`` its
    caveats; ``preclinical`` marks animal work; ``source`` is the citation.

    Examples
    --------
    >>> e = load_evidence()[0]
    >>> e.id, e.measure, e.value, (e.interval.low, e.interval.high)
    ('ebctcg2018_distant_recurrence', 'rate_ratio', 1.02, (0.92, 1.14))
    >>> e.has_value, e.source.year
    (True, 2018)
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9_]+$", max_length=80)
    mechanisms: tuple[Mechanism, ...] = Field(min_length=1)
    population: Population
    measure: Measure
    value: float | None = Field(default=None, allow_inf_nan=False)
    unit: str = Field(default="", max_length=200)
    interval: Interval | None = None
    se: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    p_value: float | None = Field(default=None, ge=0, le=1)
    time_window: str = _TEXT
    endpoint: str = _TEXT
    comparison: str = _TEXT
    location: str = _TEXT
    read_from: str = _TEXT
    quality: str = _TEXT
    preclinical: bool = False
    note: str = Field(default="", max_length=2000)
    source: Citation

    @model_validator(mode="after")
    def _consistent(self) -> Evidence:
        who = f"evidence {self.id!r}"
        if len(set(self.mechanisms)) != len(self.mechanisms):
            raise Contradiction(f"{who}: mechanisms = {list(self.mechanisms)} repeat; allowed: each mechanism once")
        if self.value is None:
            if self.interval is not None or self.se is not None:
                raise Contradiction(f"{who}: an interval or se is given without a value; allowed: both absent")
            if MISSING_NOTE not in self.note:
                raise Contradiction(f"{who}: value is missing; allowed: a note that says '{MISSING_NOTE}'")
            return self
        if self.interval is not None and not self.interval.low <= self.value <= self.interval.high:
            raise Contradiction(
                f"{who}: value = {self.value!r} is outside interval [{self.interval.low!r}, {self.interval.high!r}];"
                " allowed: low <= value <= high"
            )
        limits = [self.value] + ([self.interval.low, self.interval.high] if self.interval else [])
        if self.measure in RATIOS and min(limits) <= 0:
            raise Contradiction(f"{who}: a {self.measure} must be > 0 (value and interval); got {limits}")
        if self.measure in _BOUNDED:
            lo, hi = _BOUNDED[self.measure]
            if not all(lo <= x <= hi for x in limits):
                raise Contradiction(
                    f"{who}: a {self.measure} must lie in [{lo}, {hi}] (value and interval); got {limits}"
                )
        if self.measure in ("time", "count") and (self.value < 0 or not self.unit):
            raise Contradiction(
                f"{who}: a {self.measure} needs a value >= 0 and a unit; got {self.value!r}, {self.unit!r}"
            )
        return self

    @property
    def has_value(self) -> bool:
        """True when the number was read from the source (``value`` is not None)."""
        return self.value is not None

    def row(self) -> dict:
        """The record as one flat row (the columns of :func:`evidence_table`).

        Returns
        -------
        dict
            ``id``, ``mechanisms`` (joined by ``"; "``), ``n``, ``subtype``, ``setting``, ``measure``, ``value``,
            ``unit``, ``low``, ``high``, ``level``, ``se``, ``p_value``, ``time_window``, ``endpoint``,
            ``comparison``, ``location``, ``read_from``, ``quality``, ``preclinical``, ``note``, ``year``,
            ``citation`` (:meth:`Citation.text`); absent numbers are NaN.

        Examples
        --------
        >>> row = load_evidence()[0].row()
        >>> row["value"], row["low"], row["high"], row["level"]
        (1.02, 0.92, 1.14, 0.95)
        """
        nan = math.nan
        iv = self.interval
        return {
            "id": self.id,
            "mechanisms": "; ".join(self.mechanisms),
            "n": self.population.n if self.population.n is not None else pd.NA,
            "subtype": self.population.subtype,
            "setting": self.population.setting,
            "measure": self.measure,
            "value": self.value if self.value is not None else nan,
            "unit": self.unit,
            "low": iv.low if iv else nan,
            "high": iv.high if iv else nan,
            "level": iv.level if iv and iv.level is not None else nan,
            "se": self.se if self.se is not None else nan,
            "p_value": self.p_value if self.p_value is not None else nan,
            "time_window": self.time_window,
            "endpoint": self.endpoint,
            "comparison": self.comparison,
            "location": self.location,
            "read_from": self.read_from,
            "quality": self.quality,
            "preclinical": self.preclinical,
            "note": self.note,
            "year": self.source.year,
            "citation": self.source.text(),
        }


class EvidenceFile(BaseModel):
    """The whole file: ``[[evidence]]`` tables with unique ids.

    Examples
    --------
    >>> table = {"evidence": [{"id": "x", "mechanisms": ["dormancy_exit"], "measure": "proportion",
    ...     "value": 0.13, "population": {"subtype": "ER+", "setting": "trials"}, "time_window": "years 5-20",
    ...     "endpoint": "distant recurrence", "comparison": "none", "location": "abstract",
    ...     "read_from": "abstract", "quality": "meta-analysis",
    ...     "source": {"authors": "Pan H", "year": 2017, "title": "T", "journal": "J"}}]}
    >>> len(EvidenceFile.model_validate(table).evidence)
    1
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    evidence: tuple[Evidence, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> EvidenceFile:
        ids = [e.id for e in self.evidence]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise Contradiction(f"evidence ids repeat: {repeated}; allowed: each id once")
        return self


def parse_evidence(table: dict, where: str = FILE) -> list[Evidence]:
    """Validate parsed evidence data (the ``evidence.toml`` layout).

    Parameters
    ----------
    table : dict
        ``{"evidence": [ {id, mechanisms, population, measure, value, ...}, ... ]}``.
    where : str
        Name of the source, for error messages.

    Returns
    -------
    list of Evidence
        In the order of the table.

    Raises
    ------
    chemomet.errors.InputError
        With one line naming the first problem.

    Examples
    --------
    >>> parse_evidence({"evidence": []}, "e.toml")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    chemomet.errors.InputError: e.toml: evidence = [] is invalid; allowed: a list of [[evidence]] tables ...
    """
    try:
        parsed = EvidenceFile.model_validate(table)
    except ValidationError as err:
        raise validation_error(err, where, RULES) from None
    return list(parsed.evidence)


@lru_cache(maxsize=1)
def _shipped() -> tuple[Evidence, ...]:
    text = resources.files(PACKAGE).joinpath(FILE).read_text(encoding="utf-8")
    return tuple(parse_evidence(tomllib.loads(text), f"data/{FILE}"))


def load_evidence(path: str | Path | None = None) -> list[Evidence]:
    """Read and validate an evidence file: the shipped ``chemomet/data/evidence.toml`` by default.

    Parameters
    ----------
    path : str or Path, optional
        A TOML file in the ``evidence.toml`` layout; None for the shipped file.

    Returns
    -------
    list of Evidence
        Immutable records, in the file's order.

    Raises
    ------
    chemomet.errors.InputError
        One line naming the file and the first problem (not a regular file, not TOML, a bad field, a value outside
        its interval, a repeated id).

    Examples
    --------
    >>> records = load_evidence()
    >>> len(records) >= 50, all(r.source.title for r in records)
    (True, True)
    >>> import tempfile
    >>> bad = Path(tempfile.mkdtemp()) / "bad.toml"
    >>> _ = bad.write_text("[[evidence]]\\nid = 'x'\\n")
    >>> load_evidence(bad)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    chemomet.errors.InputError: ...bad.toml: evidence.0.mechanisms is missing; required: a non-empty list of ...
    """
    if path is None:
        return list(_shipped())
    path = Path(path)
    data = read_capped_bytes(path, SIZE_CAP, "an evidence file in TOML")
    try:
        text = data.decode("utf-8").removeprefix(BOM)
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text; allowed: an evidence file in UTF-8 TOML") from None
    table = parse_text(text, ".toml", str(path), "an evidence file in TOML")
    return parse_evidence(table, str(path))


def by_mechanism(mechanism: str, records: Iterable[Evidence] | None = None) -> list[Evidence]:
    """The records that bear on one mechanism.

    Parameters
    ----------
    mechanism : str
        One of :data:`MECHANISMS`.
    records : iterable of Evidence, optional
        Records to filter; the shipped file by default.

    Returns
    -------
    list of Evidence
        In their original order.

    Raises
    ------
    chemomet.errors.InputError
        For an unknown mechanism.

    Examples
    --------
    >>> [r.id for r in by_mechanism("dormancy_exit")][:2]
    ['sparano2017_metasite_after_year_5', 'remagus02_70_months_time_dependence']
    >>> by_mechanism("magic")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    chemomet.errors.InputError: mechanism = 'magic' is invalid; allowed: one of [...]
    """
    if mechanism not in MECHANISMS:
        raise field_error("mechanism", mechanism, f"one of {list(MECHANISMS)}")
    pool = load_evidence() if records is None else records
    return [r for r in pool if mechanism in r.mechanisms]


def evidence_table(records: Iterable[Evidence] | None = None, mechanism: str | None = None) -> pd.DataFrame:
    """The records as a table, one row per record (:meth:`Evidence.row`).

    Parameters
    ----------
    records : iterable of Evidence, optional
        The records; the shipped file by default.
    mechanism : str, optional
        Keep only the records bearing on this mechanism (:func:`by_mechanism`).

    Returns
    -------
    pandas.DataFrame
        Columns as :meth:`Evidence.row`, indexed by ``id``. ``value``, ``low``, ``high``, ``level``, ``se`` and
        ``p_value`` are floats (NaN when absent) on the scale of ``measure``; ``n`` is patients (nullable integer).

    Examples
    --------
    >>> t = evidence_table(mechanism="mobilisation")
    >>> row = t.loc["liles2003_plerixafor_cd34_240"]
    >>> row["measure"], float(row["value"]), row["unit"]
    ('ratio_of_means', 15.5, 'circulating CD34+ cells at 9 h / baseline')
    >>> bool(evidence_table()["value"].isna().any())
    True
    """
    pool = load_evidence() if records is None else list(records)
    if mechanism is not None:
        pool = by_mechanism(mechanism, pool)
    frame = pd.DataFrame([r.row() for r in pool], columns=list(_COLUMNS))
    frame["n"] = frame["n"].astype("Int64")
    return frame.set_index("id")
