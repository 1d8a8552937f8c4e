"""Errors that speak to the user.

Every problem with user input (a patient file, a regimen, a cell table, a trial spec) is raised as an
:class:`InputError` whose message is one line naming the field, the value, what is allowed and the unit.
The command line turns it into that one line on standard error and exit code 2, with no traceback.
"""

from __future__ import annotations

import unicodedata
from typing import Literal

ID_LIMIT = 80
"""Longest user text (an id, a value) shown in a message or a report (characters, an ellipsis included)."""

MESSAGE_LIMIT = 2000
"""Longest message of an :class:`InputError` (characters): the values in it are capped at :data:`ID_LIMIT`."""

_UNSAFE = frozenset(("Cc", "Cf", "Cs", "Zl", "Zp"))  # controls, format (bidi overrides, zero-width), surrogates


def printable(value: object, limit: int | None = ID_LIMIT) -> str:
    r"""User text made safe for a terminal, a log line or a report: every control or format character escaped,
    the length capped.

    Control characters (terminal escapes included), Unicode format characters (bidirectional overrides, zero-width
    characters), lone surrogates and line or paragraph separators are written as Python escapes (``\x1b``,
    ``\u202e``), so they can neither move the cursor, recolour the terminal, reorder the text nor break the line.
    Text longer than ``limit`` characters is cut, ending with an ellipsis.

    Parameters
    ----------
    value : object
        The text (any other object is shown with ``str``).
    limit : int or None, default :data:`ID_LIMIT`
        Most characters of the result (at least 2); None for no cap.

    Returns
    -------
    str
        The safe text: printable characters only, at most ``limit`` characters.

    Examples
    --------
    >>> printable("p-042\x1b[2J\x1b[31m")
    'p-042\\x1b[2J\\x1b[31m'
    >>> printable("x" * 100)[-3:], len(printable("x" * 100))
    ('xx…', 80)
    >>> printable("abc\u202edef\nghi", limit=None)
    'abc\\u202edef\\x0aghi'
    """
    text = value if isinstance(value, str) else str(value)
    out: list[str] = []
    size = 0
    for ch in text:
        if ch.isprintable() or unicodedata.category(ch) not in _UNSAFE:
            piece = ch  # printable, or harmless (a non-breaking space, an unassigned code point)
        else:
            code = ord(ch)
            piece = f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
        out.append(piece)
        size += len(piece)
        if limit is not None and size > limit:
            break
    shown = "".join(out)
    if limit is not None and len(shown) > limit:
        shown = shown[: max(limit - 1, 1)] + "…"
    return shown


def shown_value(value: object, limit: int = ID_LIMIT) -> str:
    """``repr(value)`` as a message shows it: escaped by :func:`printable` and at most ``limit`` characters.

    Examples
    --------
    >>> shown_value("abc")
    "'abc'"
    >>> shown_value(list(range(100)))[-6:]
    ' 21, …'
    """
    try:
        text = repr(value)
    except Exception:  # a value whose repr fails is still named
        text = f"<{type(value).__name__}>"
    return printable(text, limit)


class InputError(ValueError):
    """Bad user input; ``str(err)`` is a single line fit to show to the user.

    A :class:`ValueError`, so code that catches ``ValueError`` also catches it. Whitespace in the message (line
    breaks, repeated spaces) is collapsed to single spaces, so a message built over several source lines still
    prints as one line; any other control character (a terminal escape in a file name, say) is escaped by
    :func:`printable`, and the message is capped at :data:`MESSAGE_LIMIT` characters. The command line prints it to
    standard error and exits with code 2, without a traceback.

    Parameters
    ----------
    message : str
        What is wrong, in the project's form ``where: field = value is invalid; allowed: ... (unit: ...)``.

    Examples
    --------
    >>> err = InputError('''patient.toml: age = 12 is invalid;
    ...                     allowed: a number from 18 to 100 (unit: years)''')
    >>> print(err)
    patient.toml: age = 12 is invalid; allowed: a number from 18 to 100 (unit: years)
    >>> isinstance(err, ValueError)
    True
    """

    def __init__(self, message: str):
        super().__init__(printable(" ".join(str(message).split()), MESSAGE_LIMIT))


def field_error(
    field: str, value: object, allowed: str, unit: str | None = None, where: str | None = None
) -> InputError:
    """Build the standard one-line error: ``where: field = value is invalid; allowed: ... (unit: ...)``.

    The error is returned, not raised, so the caller writes ``raise field_error(...)``.

    Parameters
    ----------
    field : str
        Dotted name of the offending field, e.g. ``"diameter_mm"`` or ``"phases.0.cycles"``.
    value : object
        The value that was given (shown with ``repr``).
    allowed : str
        What would have been accepted, e.g. ``"a number > 0"``.
    unit : str, optional
        The unit the field is expressed in (e.g. ``"mm"``, ``"days"``), if it has one.
    where : str, optional
        The file or object the field came from; the message's prefix.

    Returns
    -------
    InputError
        The error with the one-line message (not raised).

    Examples
    --------
    >>> err = field_error("diameter_mm", -3, "a number > 0 and <= 200", unit="mm", where="patient.toml")
    >>> print(err)
    patient.toml: diameter_mm = -3 is invalid; allowed: a number > 0 and <= 200 (unit: mm)
    >>> print(field_error("grade", 4, "an integer 1, 2 or 3"))
    grade = 4 is invalid; allowed: an integer 1, 2 or 3
    """
    prefix = f"{where}: " if where else ""
    unit_txt = f" (unit: {unit})" if unit else ""
    return InputError(f"{prefix}{field} = {shown_value(value)} is invalid; allowed: {allowed}{unit_txt}")


class FieldProblem(ValueError):
    """Raised inside a validator to report a field with a message of the standard form, kept as it is.

    :func:`validation_error` recognises it in a pydantic ``ValidationError`` and shows :meth:`message` after the
    ``where:`` prefix, instead of the rule of the field being validated; this lets a validator name another field
    (e.g. ``parameters.mu`` from the ``parameters`` table). ``str(err)`` is ``allowed`` alone.

    Parameters
    ----------
    field : str
        The dotted field name to show, e.g. ``"parameters.mu"``.
    value : object
        The value given (shown with ``repr``).
    allowed : str
        What is accepted.
    unit : str, optional
        The field's unit, if any.

    Examples
    --------
    >>> problem = FieldProblem("parameters.T0", -1.0, "a number > 0 and <= 1000", "doorways per 10 HPF")
    >>> problem.message()
    'parameters.T0 = -1.0 is invalid; allowed: a number > 0 and <= 1000 (unit: doorways per 10 HPF)'
    """

    def __init__(self, field: str, value: object, allowed: str, unit: str | None = None):
        self.field, self.value, self.allowed, self.unit = field, value, allowed, unit
        super().__init__(allowed)

    def message(self) -> str:
        """``field = value is invalid; allowed: ... (unit: ...)``."""
        unit_txt = f" (unit: {self.unit})" if self.unit else ""
        return f"{self.field} = {shown_value(self.value)} is invalid; allowed: {self.allowed}{unit_txt}"


class Contradiction(ValueError):
    """Raised inside a validator for an inconsistency between fields; its text is the whole message.

    :func:`validation_error` shows the text as it is after the ``where:`` prefix, so write it in the standard
    form, naming both fields, what is allowed and the unit.

    Examples
    --------
    >>> from pydantic import BaseModel, ValidationError, model_validator
    >>> class Window(BaseModel):
    ...     start_day: float
    ...     end_day: float
    ...     @model_validator(mode="after")
    ...     def _ordered(self):
    ...         if self.start_day > self.end_day:
    ...             raise Contradiction(f"start_day = {self.start_day!r} is above end_day = {self.end_day!r}; "
    ...                                 "allowed: start_day <= end_day (unit: days)")
    ...         return self
    >>> try:
    ...     Window(start_day=30, end_day=10)
    ... except ValidationError as err:
    ...     print(validation_error(err, "window.toml", {}))
    window.toml: start_day = 30.0 is above end_day = 10.0; allowed: start_day <= end_day (unit: days)
    """


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
    err : pydantic.ValidationError
        The validation error; only its first problem is reported.
    where : str
        The file or object that was validated (the message's prefix).
    rules : dict[str, tuple[str, str | None]]
        Field -> (what is allowed, unit); looked up by the dotted path without list indices, then by the last
        field name (``dotted``), or by the top-level field (``brackets``).
    locate : {"dotted", "brackets"}, default "dotted"
        ``dotted`` shows a nested field as ``phases.0.drugs``; ``brackets`` names the top-level field, and a
        nested entry of a known field as ``nact_diameters[0].day`` (patient files).
    reasons : bool, default False
        Show a validator's own reason for a ``ValueError`` instead of the rule (the rule is the default).
    unknown : str, optional
        What to say after "is not a known field;" (default: the list of known fields).
    counted : tuple of str, default ()
        List fields whose wrong length is reported as "has N entries".

    Returns
    -------
    InputError
        With ``where: field = value is invalid; allowed: ... (unit: ...)`` or the "missing" / "not a known field"
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
        value = shown_value(first.get("input"))
        return InputError(f"{where}: {shown} = {value} is invalid; allowed: {allowed}{unit_txt}")
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
        return InputError(f"{where}: {dotted} = {shown_value(first.get('input'))} is not a known field; {hint}")
    if kind in ("too_short", "too_long") and last in counted:
        return InputError(f"{where}: {dotted} has {len(first.get('input') or [])} entries; allowed: {allowed}")
    if kind == "value_error" and reasons:
        reason = first["msg"].removeprefix("Value error, ")
        if not loc:
            return InputError(f"{where}: {reason}")
        return InputError(f"{where}: {dotted} = {shown_value(first.get('input'))} is invalid; allowed: {reason}")
    value = shown_value(first.get("input"))
    return InputError(f"{where}: {dotted} = {value} is invalid; allowed: {allowed}{unit_txt}")
