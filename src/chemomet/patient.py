"""The validated patient: covariates, measured biomarkers and optional fixed model parameters.

Read from TOML or JSON with :func:`read_patient`. Every invalid value raises :class:`chemomet.errors.InputError`
with one line naming the field, the value, what is allowed and the unit.
"""

from __future__ import annotations

import math
import tomllib
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from chemomet.errors import FieldProblem, InputError, printable, validation_error
from chemomet.inputs import read_data
from chemomet.units import diameter_mm_to_cells

Status = Literal["positive", "negative"]
Morphology = Literal["alveolar", "trabecular", "solid", "tubular", "discrete groups"]
SUBTYPES = ("HR+/HER2-", "HR+/HER2+", "HR-/HER2+", "TNBC")
MIN_DIAMETER_MM = 0.1
"""Smallest tumour diameter accepted (mm): about 500 cells, far below what imaging or pathology can measure; a
smaller positive number (1e-300, a denormal 5e-324) is a typo or an underflow, not a tumour."""

# field -> (what is allowed, unit); used for every error message about that field.
FIELD_RULES: dict[str, tuple[str, str | None]] = {
    "id": ("a text label", None),
    "age": ("a number from 18 to 100", "years"),
    "diameter_mm": (f"a number from {MIN_DIAMETER_MM:g} to 200", "mm"),
    "grade": ("an integer 1, 2 or 3 (leave it out when not reported)", None),
    "er": ('"positive" or "negative"', None),
    "pr": ('"positive" or "negative" (leave it out when not measured)', None),
    "her2": ('"positive" or "negative" (leave it out when not measured)', None),
    "ki67_percent": ("a number from 0 to 100", "%"),
    "nodes_positive": ("an integer from 0 to 60", "lymph nodes"),
    "tmem_score": ("a number >= 0 and <= 1000, with tmem_convention", "doorways per 10 or 20 HPF"),
    "tmem_convention": ('"10HPF" or "20HPF"', None),
    "ctc_count": ("an integer from 0 to 100000", "cells per 7.5 mL"),
    "morphology": ("a list of: alveolar, trabecular, solid, tubular, discrete groups", None),
    "bsa_m2": ("a number from 1.0 to 3.0", "m2"),
    "subtype": (f"one of {', '.join(SUBTYPES)}, consistent with er/pr/her2", None),
    "tmem_score_after_nact": (
        "a number >= 0 and <= 1000 (post-NACT surgical specimen, same tmem_convention)",
        "doorways per 10 or 20 HPF",
    ),
    "nact_diameters": (
        "a list of tables {day, diameter_mm}: day after the first chemotherapy dose (1-365, increasing), "
        f"diameter_mm 0 (not measurable) or {MIN_DIAMETER_MM:g}-200",
        "days, mm",
    ),
    "parameters": ("a table of model parameters", None),
}

# Fixed model parameters a patient file may give: name -> (low, high, unit). The low bound is open (> low), except
# for the names in _ZERO_ALLOWED (>= low); a positive low bound of a rate or a threshold is the smallest physically
# meaningful value (alpha: a doubling time of about 2000 years; T0: a hundredth of a doorway), so a tiny number
# such as 1e-300 or a denormal 5e-324 is refused rather than taken for a value.
PARAMETER_RULES: dict[str, tuple[float, float, str]] = {
    "alpha_per_day": (1e-6, 1.0, "1/day"),
    "beta_per_day": (1e-8, 0.5, "1/day"),
    "doubling_time_days": (1.0, 5000.0, "days"),
    "plateau_cells": (1e9, 1e15, "cells"),
    "mu": (0.0, 1e-6, "colonies per cell^gamma per day"),
    "gamma": (0.3, 1.5, "dimensionless"),
    "chemosensitivity": (1e-4, 100.0, "dimensionless"),
    "s_met": (0.0, 1.0, "dimensionless"),
    "resistant_fraction": (0.0, 0.5, "fraction of tumour cells"),
    "resistant_kill_ratio": (0.0, 1.0, "dimensionless"),
    "epsilon": (0.0, 100.0, "dimensionless"),
    "T0": (0.01, 1000.0, "doorways per 10 HPF"),
    "phi": (0.0, 1.0, "fraction"),
    "dormant_fraction": (0.0, 1.0, "fraction of colonies"),
    "dormancy_mean_days": (10.0, 36500.0, "days"),
}
_ZERO_ALLOWED = {"resistant_fraction", "epsilon", "phi", "mu", "s_met", "resistant_kill_ratio", "dormant_fraction"}


class DiameterMeasurement(BaseModel):
    """A tumour diameter measured during NACT (imaging), ``day`` days after the first chemotherapy dose.

    An entry of :attr:`Patient.nact_diameters`; in a patient file, a table ``{day = ..., diameter_mm = ...}``.
    Frozen; unknown fields are refused.

    Attributes
    ----------
    day : float
        Day of the measurement after the first chemotherapy dose (days, 1 to 365).
    diameter_mm : float
        Largest tumour diameter measured (mm, 0.1 to 200, or 0: not measurable).

    Examples
    --------
    >>> DiameterMeasurement(day=42, diameter_mm=18.5)
    DiameterMeasurement(day=42.0, diameter_mm=18.5)
    >>> p = patient_from_dict({"age": 50, "diameter_mm": 25, "grade": 2, "er": "positive", "pr": "positive",
    ...                        "her2": "negative", "nact_diameters": [{"day": 0, "diameter_mm": 20}]})
    Traceback (most recent call last):
    ...
    chemomet.errors.InputError: patient: nact_diameters[0].day = 0 is invalid; allowed: a list of tables
    {day, diameter_mm}: day after the first chemotherapy dose (1-365, increasing), diameter_mm 0
    (not measurable) or 0.1-200 (unit: days, mm)
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    day: float = Field(ge=1, le=365)
    diameter_mm: float = Field(ge=0, le=200)

    @field_validator("day", "diameter_mm", mode="before")
    @classmethod
    def _finite_number(cls, v):
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v

    @field_validator("diameter_mm")
    @classmethod
    def _measurable_or_zero(cls, v):
        if 0 < v < MIN_DIAMETER_MM:  # 0 is "not measurable"; a smaller positive size is no measurement
            raise ValueError(f"0 or from {MIN_DIAMETER_MM:g} to 200")
        return v


class Patient(BaseModel):
    """One patient before treatment (units in the field names; biomarkers optional).

    Frozen; unknown fields are refused. Build it with :func:`patient_from_dict` or :func:`read_patient`, which
    turn a validation problem into a one-line :class:`~chemomet.errors.InputError`; calling ``Patient(...)``
    directly raises pydantic's ``ValidationError`` instead.

    Attributes
    ----------
    id : str
        A label (default ``"patient"``; :func:`read_patient` uses the file name's stem).
    age : float
        Age at diagnosis (years, 18 to 100).
    diameter_mm : float
        Largest diameter of the primary tumour at diagnosis (mm, 0.1 to 200: :data:`MIN_DIAMETER_MM`).
    grade : {1, 2, 3} or None
        Histological grade (an integer); None (left out) when not reported: integrated over by
        :func:`chemomet.assess`, refused by :func:`chemomet.simulate`.
    er : {"positive", "negative"}
        Oestrogen receptor status.
    pr, her2 : {"positive", "negative"} or None
        Progesterone receptor and HER2 status; None (left out of the file) when not measured. A given ``subtype``
        states what it implies (HER2, and PR of an ER-negative tumour). What is still unknown (PR of an ER-positive
        tumour too: it sets the PR-loss growth factor) is integrated over
        the population by :func:`chemomet.assess` and refused by :func:`chemomet.simulate` (typical values need
        every covariate).
    ki67_percent : float, optional
        Ki-67 index (%, 0 to 100).
    nodes_positive : int, optional
        Positive axillary lymph nodes (lymph nodes, 0 to 60); None (left out) when not known: the assessment
        then integrates over the nodes the model expects. :func:`chemomet.assess` weighs its virtual twins by it;
        :func:`chemomet.simulate` (typical values) does not use it.
    tmem_score : float, optional
        TMEM doorway score of the core biopsy (doorways per 10 or 20 HPF, 0 to 1000); needs ``tmem_convention``.
    tmem_convention : {"10HPF", "20HPF"}, optional
        Whether the TMEM scores count doorways in 10 or in 20 high-power fields; given exactly when a score is.
    ctc_count : int, optional
        Circulating tumour cells at baseline (cells per 7.5 mL, 0 to 100000).
    morphology : tuple of str
        Any of ``alveolar``, ``trabecular``, ``solid``, ``tubular``, ``discrete groups``.
    bsa_m2 : float, optional
        Body-surface area (m², 1.0 to 3.0).
    subtype : {"HR+/HER2-", "HR+/HER2+", "HR-/HER2+", "TNBC"}
        Receptor subtype; derived from ER, PR and HER2 when left out, and must agree with them when given.
    tmem_score_after_nact : float, optional
        TMEM score of the post-NACT surgical specimen (doorways per 10 or 20 HPF, same ``tmem_convention``).
    nact_diameters : tuple of DiameterMeasurement
        Diameters measured during NACT, days strictly increasing (days after the first dose, mm).
    parameters : dict[str, float]
        Model parameters fixed for this patient (names and ranges in :data:`PARAMETER_RULES`, e.g.
        ``T0`` in doorways per 10 HPF); applied by :func:`chemomet.population.apply_fixed_parameters`.

    Examples
    --------
    >>> p = Patient(age=50, diameter_mm=20, grade=2, er="positive", pr="negative", her2="negative")
    >>> p.subtype, p.hormone_receptor_positive
    ('HR+/HER2-', True)
    >>> p.nodes_positive, p.tmem_score  # defaults: nodes not known, TMEM not measured
    (None, None)
    >>> p.model_copy(update={"id": "p2"}).id
    'p2'
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = "patient"
    age: float = Field(ge=18, le=100)
    diameter_mm: float = Field(ge=MIN_DIAMETER_MM, le=200)
    grade: Literal[1, 2, 3] | None = None
    er: Status
    pr: Status | None = None
    her2: Status | None = None
    ki67_percent: float | None = Field(default=None, ge=0, le=100)
    nodes_positive: int | None = Field(default=None, ge=0, le=60)
    tmem_score: float | None = Field(default=None, ge=0, le=1000)
    tmem_convention: Literal["10HPF", "20HPF"] | None = None
    ctc_count: int | None = Field(default=None, ge=0, le=100000)
    morphology: tuple[Morphology, ...] = ()
    bsa_m2: float | None = Field(default=None, ge=1.0, le=3.0)
    subtype: Literal["HR+/HER2-", "HR+/HER2+", "HR-/HER2+", "TNBC"] | None = None
    tmem_score_after_nact: float | None = Field(default=None, ge=0, le=1000)
    nact_diameters: tuple[DiameterMeasurement, ...] = ()
    parameters: dict[str, float] = Field(default_factory=dict)

    @field_validator("grade", mode="before")
    @classmethod
    def _grade_is_integer(cls, v):
        if v is None:
            return v
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError("grade must be an integer")
        return v

    @field_validator(
        "age", "diameter_mm", "ki67_percent", "tmem_score", "bsa_m2", "tmem_score_after_nact", mode="before"
    )
    @classmethod
    def _finite_number(cls, v):
        if v is None:
            return v
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v

    @field_validator("parameters", mode="before")
    @classmethod
    def _check_parameters(cls, v):
        if not isinstance(v, dict):
            raise ValueError("must be a table")
        for name, value in v.items():
            if name not in PARAMETER_RULES:
                raise FieldProblem(f"parameters.{name}", value, f"one of {sorted(PARAMETER_RULES)}")
            lo, hi, unit = PARAMETER_RULES[name]
            ok_type = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            low_ok = ok_type and (value >= lo if name in _ZERO_ALLOWED else value > lo)
            if not (ok_type and low_ok and value <= hi):
                bound = ">=" if name in _ZERO_ALLOWED else ">"
                raise FieldProblem(f"parameters.{name}", value, f"a number {bound} {lo:g} and <= {hi:g}", unit)
        return {k: float(x) for k, x in v.items()}

    @model_validator(mode="after")
    def _consistent(self) -> Patient:
        scored = self.tmem_score is not None or self.tmem_score_after_nact is not None
        if scored != (self.tmem_convention is not None):
            raise FieldProblem(
                "tmem_convention", self.tmem_convention, "given together with tmem_score or tmem_score_after_nact"
            )
        if self.subtype is not None:  # a stated subtype states HER2 and, for an ER-negative tumour, PR
            if self.her2 is None:
                object.__setattr__(self, "her2", "positive" if "HER2+" in self.subtype else "negative")
            if self.pr is None and self.er == "negative":
                object.__setattr__(self, "pr", "negative" if self.subtype in ("TNBC", "HR-/HER2+") else "positive")
            if self.subtype != self.receptor_subtype:
                raise FieldProblem(
                    "subtype",
                    self.subtype,
                    f"the subtype of er={self.er}, pr={self.pr}, her2={self.her2} ({self.receptor_subtype}), "
                    "or leave subtype out",
                )
        else:  # available as p.subtype (None while HER2, or PR of an ER-negative tumour, is unknown)
            object.__setattr__(self, "subtype", self.receptor_subtype)
        days = [m.day for m in self.nact_diameters]
        if any(b <= a for a, b in zip(days, days[1:], strict=False)):
            raise FieldProblem("nact_diameters", days, "measurement days strictly increasing (days after first dose)")
        p = self.parameters
        growth_ab = {"alpha_per_day", "beta_per_day"} & p.keys()
        growth_dk = {"doubling_time_days", "plateau_cells"} & p.keys()
        if growth_ab and growth_dk:
            raise FieldProblem(
                f"parameters.{sorted(growth_ab)[0]}",
                p[sorted(growth_ab)[0]],
                "either alpha_per_day/beta_per_day or doubling_time_days/plateau_cells, not both",
            )
        if len(growth_ab) == 1:
            missing = ({"alpha_per_day", "beta_per_day"} - growth_ab).pop()
            raise FieldProblem(f"parameters.{missing}", None, "alpha_per_day and beta_per_day given together", "1/day")
        if growth_ab:
            ln_k = p["alpha_per_day"] / p["beta_per_day"]
            ln_k_max = math.log(PARAMETER_RULES["plateau_cells"][1])  # the largest plateau accepted, 1e15 cells
            if (
                ln_k <= math.log(float(diameter_mm_to_cells(self.diameter_mm)))
                or ln_k <= math.log(1e8)
                or ln_k > ln_k_max
            ):
                raise FieldProblem(
                    "parameters.alpha_per_day",
                    p["alpha_per_day"],
                    "alpha/beta = ln(plateau) above ln(cells at diagnosis) and ln(1e8), and at most ln(1e15) "
                    f"(here alpha/beta = {ln_k:.4g})",
                    "1/day",
                )
        if "plateau_cells" in p:
            if p["plateau_cells"] <= 1.05 * float(diameter_mm_to_cells(self.diameter_mm)):
                raise FieldProblem(
                    "parameters.plateau_cells",
                    p["plateau_cells"],
                    "more than the cells at diagnosis (pi d^3/6 x 1e6)",
                    "cells",
                )
        return self

    @property
    def hormone_receptor_positive(self) -> bool | None:
        """True when ER or PR is positive, False when both are negative, None when ER is negative and PR unknown."""
        if self.er == "positive" or self.pr == "positive":
            return True
        return None if self.pr is None else False

    @property
    def receptor_subtype(self) -> str | None:
        """One of ``HR+/HER2-``, ``HR+/HER2+``, ``HR-/HER2+``, ``TNBC``, from ER, PR and HER2 (None if unknown)."""
        if self.hormone_receptor_positive is None or self.her2 is None:
            return None
        hr = "HR+" if self.hormone_receptor_positive else "HR-"
        her2 = "HER2+" if self.her2 == "positive" else "HER2-"
        return "TNBC" if (hr, her2) == ("HR-", "HER2-") else f"{hr}/{her2}"

    @property
    def unknown_covariates(self) -> tuple[str, ...]:
        """The covariates that matter to the model and were not given: ``grade``, ``her2`` and ``pr`` (of an
        ER-negative tumour PR decides the hormone-receptor status; of an ER-positive one it sets the PR-loss growth
        factor, ``growth.pr_negative_doubling_factor``)."""
        return tuple(
            name
            for name, unknown in (
                ("grade", self.grade is None),
                ("pr", self.pr is None),
                ("her2", self.her2 is None),
            )
            if unknown
        )

    @property
    def subtype_label(self) -> str:
        """The subtype for display, e.g. ``HR+/HER2-`` or ``HR+/HER2 not measured``."""
        if self.subtype is not None:
            return self.subtype
        hr = {True: "HR+", False: "HR-", None: "HR not known"}[self.hormone_receptor_positive]
        return f"{hr}/HER2 {'not measured' if self.her2 is None else self.her2}"


def check_diameters_during_chemotherapy(patient: Patient, last_dose_day: float, regimen: str) -> None:
    """Refuse diameters measured after the last chemotherapy dose (``last_dose_day``, days after the first dose of
    ``regimen``): they describe NACT as it is given, so they must fall within it.

    Raises
    ------
    InputError
        naming the patient, the day, the allowed range and the unit.

    Examples
    --------
    >>> p = patient_from_dict({"age": 50, "diameter_mm": 20, "grade": 2, "er": "positive", "pr": "positive",
    ...                        "her2": "negative", "nact_diameters": [{"day": 200, "diameter_mm": 10}]})
    >>> check_diameters_during_chemotherapy(p, 161, "ac-paclitaxel-weekly")
    Traceback (most recent call last):
    ...
    chemomet.errors.InputError: patient patient: nact_diameters day = 200 is invalid; allowed: during chemotherapy, \
i.e. <= 161 days after the first dose of ac-paclitaxel-weekly (unit: days)
    """
    if not patient.nact_diameters:
        return
    last = patient.nact_diameters[-1].day
    if last > last_dose_day:
        raise InputError(
            f"patient {printable(patient.id)}: nact_diameters day = {last:g} is invalid; allowed: during "
            f"chemotherapy, i.e. <= {last_dose_day:g} days after the first dose of {regimen} (unit: days)"
        )


def patient_from_dict(data: dict, where: str = "patient") -> Patient:
    """Validate a mapping into a :class:`Patient`; raises :class:`InputError` with one line.

    A single ``morphology`` string is accepted for a one-entry list. Fields, units and ranges: :class:`Patient`.

    Parameters
    ----------
    data : dict
        Patient fields, as in a patient TOML or JSON file (e.g. ``{"age": 50, "diameter_mm": 20, ...}``).
    where : str, default "patient"
        Where the data came from; the prefix of any error message.

    Returns
    -------
    Patient
        The validated patient.

    Raises
    ------
    InputError
        For the first invalid, missing or unknown field, naming the field, the value, what is allowed and the unit.

    Examples
    --------
    >>> p = patient_from_dict({"id": "p1", "age": 62, "diameter_mm": 35, "grade": 3, "er": "negative",
    ...                        "pr": "negative", "her2": "negative", "tmem_score": 40, "tmem_convention": "20HPF",
    ...                        "morphology": "solid"})
    >>> p.subtype, p.tmem_score, p.morphology
    ('TNBC', 40.0, ('solid',))
    >>> patient_from_dict({"age": 50, "diameter_mm": 250, "grade": 2, "er": "positive", "pr": "positive",
    ...                    "her2": "negative"}, where="p1.toml")
    Traceback (most recent call last):
    ...
    chemomet.errors.InputError: p1.toml: diameter_mm = 250 is invalid; allowed: a number from 0.1 to 200 (unit: mm)
    """
    if not isinstance(data, dict):
        raise InputError(
            f"{where}: top level is a {type(data).__name__}; allowed: a table of patient fields (age, diameter_mm, ...)"
        )
    data = dict(data)
    if isinstance(data.get("morphology"), str):
        data["morphology"] = [data["morphology"]]
    if isinstance(data.get("morphology"), list):
        data["morphology"] = tuple(data["morphology"])
    if isinstance(data.get("nact_diameters"), list):
        data["nact_diameters"] = tuple(data["nact_diameters"])
    try:
        return Patient(**data)
    except ValidationError as err:
        raise validation_error(
            err, where, FIELD_RULES, locate="brackets", unknown=f"allowed fields: {sorted(FIELD_RULES)}"
        ) from None


def read_patient(path: str | Path) -> Patient:
    """Read a patient from a ``.toml`` or ``.json`` file.

    The file holds the fields of :class:`Patient` at top level; without an ``id``, the file name's stem is used.

    Parameters
    ----------
    path : str or pathlib.Path
        A ``.toml`` or ``.json`` file (UTF-8).

    Returns
    -------
    Patient
        The validated patient.

    Raises
    ------
    InputError
        If the file is missing, not UTF-8, cannot be parsed, or holds an invalid field (the message names the file).

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "p042.toml"
    >>> _ = path.write_text('age = 58\\ndiameter_mm = 22.5\\ngrade = 2\\ner = "positive"\\npr = "positive"\\n'
    ...                     'her2 = "positive"\\nnodes_positive = 2\\n')
    >>> p = read_patient(path)
    >>> p.id, p.diameter_mm, p.subtype
    ('p042', 22.5, 'HR+/HER2+')
    >>> read_patient(path.with_suffix(".txt"))
    Traceback (most recent call last):
    ...
    chemomet.errors.InputError: .../p042.txt: file type '.txt' is invalid; allowed: .toml or .json
    """
    path = Path(path)
    if path.suffix.lower() not in (".toml", ".json"):
        raise InputError(f"{path}: file type {path.suffix!r} is invalid; allowed: .toml or .json")
    data = read_data(path, "patient")
    if isinstance(data, dict) and "id" not in data:
        data["id"] = path.stem
    return patient_from_dict(data, where=str(path))


def example_patient() -> Patient:
    """The built-in example patient (``data/examples/patient.toml``): HR+/HER2- grade 3, 28 mm, high TMEM.

    The patient of ``chemomet demo``: age 47 years, 1 positive node, Ki-67 35 %, TMEM 32 doorways per 10 HPF,
    1 CTC per 7.5 mL, alveolar and solid morphology.

    Returns
    -------
    Patient
        The validated example patient (id ``"example"``).

    Examples
    --------
    >>> p = example_patient()
    >>> p.id, p.subtype, p.grade, p.diameter_mm
    ('example', 'HR+/HER2-', 3, 28.0)
    >>> p.tmem_score, p.tmem_convention, p.ctc_count
    (32.0, '10HPF', 1)
    """
    text = resources.files("chemomet.data").joinpath("examples/patient.toml").read_text(encoding="utf-8")
    return patient_from_dict(tomllib.loads(text), where="example patient")
