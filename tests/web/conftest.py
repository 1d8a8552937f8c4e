"""Fixtures of the web app's tests: one quick app (and one finished assessment) shared by the session."""

from __future__ import annotations

import pytest

pytest.importorskip("starlette", reason="the web tests need the web extra (pip install -e '.[test]')")

from tests.web.helpers import FAST, MARKUP, PATIENT, client, wait_job  # noqa: E402


@pytest.fixture(scope="session")
def web(tmp_path_factory):
    """A quick app on a fresh store with one finished assessment (patient id and study id holding markup):
    ``(app, store_path, record_url)``."""
    from chemomet.web.app import create_app

    store = tmp_path_factory.mktemp("web") / "study.sqlite"
    app = create_app(store, settings_overrides=FAST, workers=2)
    with client(app) as c:
        r = c.post("/assess", data={**PATIENT, "id": MARKUP, "study_id": "<b>S</b>"}, follow_redirects=False)
        assert r.status_code == 303, r.text
        status = wait_job(c, r.headers["location"])
        assert status["state"] == "done", status
    return app, store, status["result"]["url"]
