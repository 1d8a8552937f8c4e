"""The ``chemomet`` command line: thin sub-commands over the public API.

Bad input never produces a traceback: :class:`chemomet.errors.InputError` becomes one line on standard error
and exit code 2.
"""

from __future__ import annotations

import sys

import typer

from chemomet.errors import InputError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="chemomet: NACT, the microenvironment and metastasis.")


def _register_tmem() -> None:
    from chemomet.tme.cli import tmem

    app.command("tmem")(tmem)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``chemomet`` console script."""
    _register_tmem()
    try:
        app(args=argv, standalone_mode=True)
    except InputError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
