"""``chemomet serve``: run the web app locally with uvicorn.

This module imports only the standard library and typer at import time, so ``chemomet --help`` works without the
``web`` extra; the extra (starlette, jinja2, uvicorn, python-multipart) is needed when the command runs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from chemomet.errors import InputError


def access_token(host: str, environ: dict | None = None) -> tuple[str | None, bool]:
    """The token the app will require: ``CHEMOMET_TOKEN`` when set (on any host); otherwise a fresh one beyond
    loopback and none on loopback. Returns ``(token, made_here)``; a token made here is printed once at start.

    Examples
    --------
    >>> access_token("127.0.0.1", {})
    (None, False)
    >>> access_token("0.0.0.0", {"CHEMOMET_TOKEN": "s3cret-token-123"})
    ('s3cret-token-123', False)
    >>> token, made = access_token("0.0.0.0", {})
    >>> made and len(token) >= 32
    True
    """
    from chemomet.web.security import TOKEN_ENV, is_loopback, new_token

    env = os.environ if environ is None else environ
    given = (env.get(TOKEN_ENV) or "").strip()
    if given:
        if len(given) < 16:
            raise InputError(f"{TOKEN_ENV}: a token of {len(given)} characters is invalid; allowed: at least 16")
        return given, False
    if is_loopback(host):
        return None, False
    return new_token(), True


def serve_command(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; beyond loopback a token is required."),
    port: int = typer.Option(8765, "--port", help="Port to listen on."),
    store: Path = typer.Option(Path("chemomet-study.sqlite"), "--store", help="The study store (SQLite file)."),
    workers: int = typer.Option(1, "--workers", help="Assessments run at the same time (1 to 16)."),
    settings: list[str] = typer.Option(
        [], "--set", help="Override an assessment setting for every assessment, e.g. --set sampling.n_twins=20000."
    ),
) -> None:
    """Start the local web app: patient form and assessment, tissue scoring, small virtual trials, the study records.

    Listens on ``--host`` (loopback by default; any other address needs the token of :func:`access_token`) and
    keeps the study store in ``--store`` (SQLite, created on first start). No access log is written.

    Examples
    --------
    From the shell (the address is printed; open it in a browser):

    >>> from chemomet.cli import main
    >>> main(["serve", "--port", "8765", "--store", "study.sqlite"])  # doctest: +SKIP
    """
    try:
        import uvicorn

        from chemomet.web.app import create_app
    except ImportError as err:
        raise InputError(
            f"chemomet serve needs the web extra ({err.name} is missing); allowed: pip install 'chemomet[web]'"
        ) from None
    from chemomet.assess.cli import parse_overrides
    from chemomet.assess.settings import AssessmentSettings
    from chemomet.web.security import LOOPBACK_NAMES, is_loopback

    if not 1 <= port <= 65535:
        raise InputError(f"--port = {port!r} is invalid; allowed: an integer from 1 to 65535")
    if not 1 <= workers <= 16:
        raise InputError(f"--workers = {workers!r} is invalid; allowed: an integer from 1 to 16")
    overrides = parse_overrides(settings)
    AssessmentSettings.default().with_overrides(overrides)  # refuse a bad --set before starting
    token, made = access_token(host)
    app = create_app(store, token=token, settings_overrides=overrides, workers=workers,
                     allowed_hosts=None if is_loopback(host) else (*LOOPBACK_NAMES, host))
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/"
    typer.echo(f"chemomet web app on {url} (study store: {store}); stop with Ctrl+C", err=True)
    if made:
        typer.echo(f"access token (shown once; or set CHEMOMET_TOKEN): open {url}?token={token}", err=True)
    elif token:
        typer.echo("access token: from CHEMOMET_TOKEN (open the address with ?token=...)", err=True)
    sys.stderr.flush()
    # no access log: request lines would be the only place a query string could leak; errors still print
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, server_header=False)
