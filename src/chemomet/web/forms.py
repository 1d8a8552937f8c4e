"""The patient form of the web app: one input per patient field, read back into the values of a patient file and
validated by the same model (:class:`chemomet.patient.Patient`) with the same one-line messages, one per field.

No web framework is needed here: a submitted form is a mapping of field name to the list of submitted strings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from chemomet.errors import FieldProblem, InputError, validation_error
from chemomet.patient import FIELD_RULES, PARAMETER_RULES, Patient

NACT_ROWS = 6
"""How many rows of diameters measured during NACT the form offers."""

FORM_ERROR = "_form"
"""The key of an error that belongs to no single field."""


@dataclass(frozen=True)
class FieldSpec:
    """One input of the patient form.

    Attributes
    ----------
    name : str
        The patient field (and the form input's name).
    label : str
        What the form calls it.
    kind : {"text", "number", "integer", "select", "checkboxes"}
        The input.
    unit : str or None
        The unit shown beside the input.
    allowed : str
        What is allowed (``chemomet.patient.FIELD_RULES``), shown beside the input.
    choices : tuple of (value, label)
        The options of a select or the boxes of ``checkboxes``.
    required : bool
        Whether a patient file must give it.

    Examples
    --------
    >>> spec = next(f for f in PATIENT_FIELDS if f.name == "diameter_mm")
    >>> spec.unit, spec.allowed == FIELD_RULES["diameter_mm"][0], spec.required
    ('mm', True, True)
    """

    name: str
    label: str
    kind: str
    unit: str | None
    allowed: str
    choices: tuple[tuple[str, str], ...] = ()
    required: bool = False


def _spec(name: str, label: str, kind: str, choices=(), required=False) -> FieldSpec:
    allowed, unit = FIELD_RULES[name]
    return FieldSpec(name, label, kind, unit, allowed, tuple(choices), required)


_STATUS = (("positive", "positive"), ("negative", "negative"))
PATIENT_FIELDS: tuple[FieldSpec, ...] = (
    _spec("id", "Patient id", "text"),
    _spec("age", "Age", "number", required=True),
    _spec("diameter_mm", "Tumour diameter", "number", required=True),
    _spec("grade", "Grade", "select", (("", "not reported"), ("1", "1"), ("2", "2"), ("3", "3"))),
    _spec("er", "ER", "select", (("", "choose"), *_STATUS), required=True),
    _spec("pr", "PR", "select", (("", "not measured"), *_STATUS)),
    _spec("her2", "HER2", "select", (("", "not measured"), *_STATUS)),
    _spec("subtype", "Subtype", "select",
          (("", "derive from ER/PR/HER2"), *((s, s) for s in ("HR+/HER2-", "HR+/HER2+", "HR-/HER2+", "TNBC")))),
    _spec("ki67_percent", "Ki-67", "number"),
    _spec("nodes_positive", "Positive lymph nodes", "integer"),
    _spec("tmem_score", "TMEM score (biopsy)", "number"),
    _spec("tmem_score_after_nact", "TMEM score after NACT", "number"),
    _spec("tmem_convention", "TMEM convention", "select", (("", "no TMEM score"), ("10HPF", "10HPF"),
                                                           ("20HPF", "20HPF"))),
    _spec("ctc_count", "CTC count", "integer"),
    _spec("morphology", "Morphology", "checkboxes",
          tuple((m, m) for m in ("alveolar", "trabecular", "solid", "tubular", "discrete groups"))),
    _spec("bsa_m2", "Body-surface area", "number"),
)
"""The scalar and list fields of the form, in the order shown (``nact_diameters`` and ``parameters`` have their
own rows: :data:`NACT_ROWS` day/diameter pairs, one input per entry of :data:`chemomet.patient.PARAMETER_RULES`)."""

_BY_NAME = {f.name: f for f in PATIENT_FIELDS}


def _first(form: Mapping[str, list[str]], name: str) -> str:
    values = form.get(name) or [""]
    value = values[0] if isinstance(values, list | tuple) else values
    return str(value).strip()


def _number(text: str, integer: bool = False):
    """The number typed, or the text itself when it is not one (the model then refuses it with its rule)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    if integer and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


def form_to_data(form: Mapping[str, list[str]]) -> dict:
    """The values of a patient file from a submitted form (field name -> submitted strings).

    An empty input is left out (not measured, not reported); numbers are converted, and text that is not a number
    is passed on as it is, so the model names it in its message.

    Examples
    --------
    >>> form_to_data({"age": ["52"], "diameter_mm": ["2.5e1"], "er": ["positive"], "pr": [""],
    ...               "morphology": ["solid", "alveolar"], "nact_day_0": ["42"], "nact_diameter_mm_0": ["18"],
    ...               "param_T0": ["30"], "ki67_percent": ["abc"]})
    ... # doctest: +NORMALIZE_WHITESPACE
    {'age': 52, 'diameter_mm': 25.0, 'er': 'positive', 'ki67_percent': 'abc', 'morphology': ['solid', 'alveolar'],
     'nact_diameters': [{'day': 42, 'diameter_mm': 18}], 'parameters': {'T0': 30}}
    """
    data: dict = {}
    for spec in PATIENT_FIELDS:
        if spec.kind == "checkboxes":
            chosen = [str(v) for v in (form.get(spec.name) or []) if str(v).strip()]
            if chosen:
                data[spec.name] = chosen
            continue
        text = _first(form, spec.name)
        if not text:
            continue
        if spec.kind in ("number", "integer") or spec.name == "grade":
            data[spec.name] = _number(text, integer=spec.kind == "integer" or spec.name == "grade")
        else:
            data[spec.name] = text
    rows = []
    for i in range(NACT_ROWS):
        day, diameter = _first(form, f"nact_day_{i}"), _first(form, f"nact_diameter_mm_{i}")
        if day or diameter:
            rows.append({"day": _number(day) if day else None, "diameter_mm": _number(diameter) if diameter else None})
    if rows:
        data["nact_diameters"] = rows
    params = {name: _number(_first(form, f"param_{name}")) for name in PARAMETER_RULES if _first(form, f"param_{name}")}
    if params:
        data["parameters"] = params
    return data


def _shown(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


def data_to_form(data: Mapping) -> dict[str, object]:
    """The form's values (strings; a list for ``morphology``) from the values of a patient file.

    Fields the form does not know are left out (:func:`validate_patient` reports them).

    Examples
    --------
    >>> values = data_to_form({"age": 52.0, "er": "positive", "morphology": "solid",
    ...                        "nact_diameters": [{"day": 42, "diameter_mm": 18.5}], "parameters": {"T0": 30}})
    >>> values["age"], values["morphology"], values["nact_day_0"], values["nact_diameter_mm_0"], values["param_T0"]
    ('52', ['solid'], '42', '18.5', '30')
    """
    values: dict[str, object] = {}
    for spec in PATIENT_FIELDS:
        value = data.get(spec.name)
        if spec.kind == "checkboxes":
            values[spec.name] = [value] if isinstance(value, str) else [str(v) for v in (value or [])]
        else:
            values[spec.name] = _shown(value)
    diameters = data.get("nact_diameters") or []
    for i, row in enumerate(diameters[:NACT_ROWS] if isinstance(diameters, list | tuple) else []):
        if isinstance(row, Mapping):
            values[f"nact_day_{i}"] = _shown(row.get("day"))
            values[f"nact_diameter_mm_{i}"] = _shown(row.get("diameter_mm"))
    params = data.get("parameters") or {}
    if isinstance(params, Mapping):
        for name in PARAMETER_RULES:
            values[f"param_{name}"] = _shown(params.get(name))
    return values


def _error_key(line: dict, problem) -> str:
    if isinstance(problem, FieldProblem):
        field = problem.field
    else:
        loc = [str(x) for x in line.get("loc", ())]
        if not loc:
            return FORM_ERROR
        field = ".".join(loc[:3]) if loc[0] == "nact_diameters" else loc[0]
    if field.startswith("parameters.") or field.startswith("nact_diameters.") or field in _BY_NAME:
        return field
    if field in ("nact_diameters", "parameters"):
        return field
    return FORM_ERROR


def validate_patient(data: Mapping) -> tuple[Patient | None, dict[str, str]]:
    """Validate the values of a patient file with :class:`~chemomet.patient.Patient`: the patient, or every
    problem found, each as the one-line message a patient file would get, keyed by the form input it belongs to
    (``age``, ``parameters.mu``, ``nact_diameters.0.day``; :data:`FORM_ERROR` for the rest).

    Examples
    --------
    >>> patient, errors = validate_patient({"age": 12, "diameter_mm": 250, "er": "positive"})
    >>> patient is None, sorted(errors)
    (True, ['age', 'diameter_mm'])
    >>> errors["age"]
    'age = 12 is invalid; allowed: a number from 18 to 100 (unit: years)'
    >>> validate_patient({"age": 50, "diameter_mm": 20, "er": "positive"})[0].age
    50.0
    """
    data = dict(data)
    if isinstance(data.get("morphology"), str):
        data["morphology"] = [data["morphology"]]
    for key in ("morphology", "nact_diameters"):
        if isinstance(data.get(key), list):
            data[key] = tuple(data[key])
    try:
        return Patient(**data), {}
    except ValidationError as err:
        errors: dict[str, str] = {}
        for line in err.errors(include_url=False):
            detail = {"type": line["type"], "loc": line["loc"], "input": line.get("input")}
            if line.get("ctx"):
                detail["ctx"] = line["ctx"]
            try:
                one = ValidationError.from_exception_data(err.title, [detail])
                message = str(validation_error(one, "patient", FIELD_RULES, locate="brackets",
                                               unknown=f"allowed fields: {sorted(FIELD_RULES)}"))
            except Exception:  # pragma: no cover - a line pydantic cannot rebuild: the whole first message
                message = str(validation_error(err, "patient", FIELD_RULES, locate="brackets"))
            message = message.removeprefix("patient: ")
            key = _error_key(line, (line.get("ctx") or {}).get("error"))
            errors.setdefault(key, message)
        return None, errors
    except (InputError, ValueError, TypeError) as err:  # pragma: no cover - defensive: one line for the form
        return None, {FORM_ERROR: str(err)}

