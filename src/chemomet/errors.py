"""Errors that speak to the user.

Every problem with user input (a patient file, a regimen, a cell table, a trial spec) is raised as an
:class:`InputError` whose message is one line naming the field, the value, what is allowed and the unit.
The command line turns it into that one line on standard error and exit code 2, with no traceback.
"""

from __future__ import annotations


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
