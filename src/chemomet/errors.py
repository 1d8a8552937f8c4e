"""Errors that speak to the user.

Every problem with user input (a patient file, a regimen, a cell table, a trial spec) is raised as an
:class:`InputError` whose message is one line naming the field, the value, what is allowed and the unit.
The command line turns it into that one line on standard error and exit code 2, with no traceback.
"""

from __future__ import annotations

from typing import Literal


class InputError(ValueError):
    """Bad user input; ``str(err)`` is a single line fit to show to the user."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


def field_error(
    field: str, value: object, allowed: str, unit: str | None = None, where: str | None = None
) -> InputError:
    """Build the standard one-line message: ``where: field = value: allowed (unit)``.

    Parameters
    ----------
    field : dotted name of the offending field, e.g. ``"diameter_mm"``.
    value : the value that was given (shown with ``repr``).
    allowed : what would have been accepted, e.g. ``"a number > 0"``.
    unit : the unit the field is expressed in, if it has one.
    where : the file or object the field came from.
    """
    prefix = f"{where}: " if where else ""
    unit_txt = f" (unit: {unit})" if unit else ""
    return InputError(f"{prefix}{field} = {value!r} is invalid; allowed: {allowed}{unit_txt}")


class FieldProblem(ValueError):
    """Raised inside a validator to report a field with a message of the standard form, kept as it is.

    ``field``: the dotted field name to show; ``value``: the value given; ``allowed``: what is accepted;
    ``unit``: its unit, if any.
    """

    def __init__(self, field: str, value: object, allowed: str, unit: str | None = None):
        self.field, self.value, self.allowed, self.unit = field, value, allowed, unit
        super().__init__(allowed)

    def message(self) -> str:
        """``field = value is invalid; allowed: ... (unit: ...)``."""
        unit_txt = f" (unit: {self.unit})" if self.unit else ""
        return f"{self.field} = {self.value!r} is invalid; allowed: {self.allowed}{unit_txt}"


class Contradiction(ValueError):
    """Raised inside a validator for an inconsistency between fields; its text is the whole message."""


def validation_error(
    err,
    where: str,
    rules: dict[str, tuple[str, str | None]],
    *,
    locate: Literal["dotted", "brackets"] = "dotted",
    reasons: bool = False,
    unknown: str | None = None,
    counted: tuple[str, ...] = (),
) -> InputError:
    """The project's one-line message for the first problem of a pydantic ``ValidationError``.

    Parameters
    ----------
    err : the :class:`pydantic.ValidationError`.
    where : the file or object that was validated (the message's prefix).
    rules : field -> (what is allowed, unit); looked up by the dotted path without list indices, then by the last
        field name (``dotted``), or by the top-level field (``brackets``).
    locate : ``dotted`` shows a nested field as ``phases.0.drugs``; ``brackets`` names the top-level field, and a
        nested entry of a known field as ``nact_diameters[0].day`` (patient files).
    reasons : show a validator's own reason for a ``ValueError`` instead of the rule (the rule is the default).
    unknown : what to say after "is not a known field;" (default: the list of known fields).
    counted : list fields whose wrong length is reported as "has N entries".

    Returns
    -------
    InputError
        with ``where: field = value is invalid; allowed: ... (unit: ...)`` or the "missing" / "not a known field"
        variant; a :class:`FieldProblem` or :class:`Contradiction` raised by a validator is shown as it is.

    Examples
    --------
    >>> from pydantic import BaseModel, Field, ValidationError
    >>> class Dose(BaseModel):
    ...     dose_mg: float = Field(gt=0)
    >>> try:
    ...     Dose(dose_mg=-1)
    ... except ValidationError as err:
    ...     print(validation_error(err, "dose.toml", {"dose_mg": ("a number > 0", "mg")}))
    dose.toml: dose_mg = -1 is invalid; allowed: a number > 0 (unit: mg)
    """
    first = err.errors()[0]
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, FieldProblem):
        return InputError(f"{where}: {cause.message()}")
    if isinstance(cause, Contradiction):
        return InputError(f"{where}: {cause}")
    loc = [str(p) for p in first["loc"]]
    kind = first["type"]
    if locate == "brackets" and len(loc) > 1 and loc[0] in rules:  # a nested entry of a known field
        allowed, unit = rules[loc[0]]
        unit_txt = f" (unit: {unit})" if unit else ""
        shown = loc[0] + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in loc[1:])
        if kind == "missing":
            return InputError(f"{where}: {shown} is missing; required: {allowed}{unit_txt}")
        return InputError(f"{where}: {shown} = {first.get('input')!r} is invalid; allowed: {allowed}{unit_txt}")
    names = [p for p in loc if not p.isdigit()]
    if locate == "brackets":  # the top-level field names the problem
        dotted = last = loc[0] if loc else "(top level)"
        allowed, unit = rules.get(last, ("a value" if kind == "missing" else first["msg"], None))
    else:
        dotted = ".".join(loc) or "(top level)"
        last = names[-1] if names else dotted
        allowed, unit = rules.get(".".join(names), rules.get(last, (first["msg"], None)))
    unit_txt = f" (unit: {unit})" if unit else ""
    if kind == "missing":
        return InputError(f"{where}: {dotted} is missing; required: {allowed}{unit_txt}")
    if kind == "extra_forbidden":
        hint = unknown or f"allowed: {sorted(rules)}"
        return InputError(f"{where}: {dotted} = {first.get('input')!r} is not a known field; {hint}")
    if kind in ("too_short", "too_long") and last in counted:
        return InputError(f"{where}: {dotted} has {len(first.get('input') or [])} entries; allowed: {allowed}")
    if kind == "value_error" and reasons:
        reason = first["msg"].removeprefix("Value error, ")
        if not loc:
            return InputError(f"{where}: {reason}")
        return InputError(f"{where}: {dotted} = {first.get('input')!r} is invalid; allowed: {reason}")
    return InputError(f"{where}: {dotted} = {first.get('input')!r} is invalid; allowed: {allowed}{unit_txt}")
