"""End to end in a real browser: Playwright drives the system Chromium (no browser download) against a real server.

Skipped when Playwright or a Chromium binary is missing, unless ``CHEMOMET_REQUIRE_BROWSER=1`` (set by ``.ci/run``),
which makes that a failure. Chromium is found as in tests/assess/test_report.py: ``$CHEMOMET_CHROMIUM``,
``chromium`` or ``chromium-browser`` on PATH, ``/usr/bin/chromium``.
"""

from __future__ import annotations

import io
import os
import shutil

import pytest

from chemomet.patient import FIELD_RULES
from chemomet.web.store import StudyStore
from tests.web.helpers import CELLS, ThreadServer, free_port

REQUIRED = os.environ.get("CHEMOMET_REQUIRE_BROWSER") == "1"


def _chromium() -> str | None:
    for candidate in (os.environ.get("CHEMOMET_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser"),
                      "/usr/bin/chromium"):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _missing(what: str):
    if REQUIRED:
        pytest.fail(f"CHEMOMET_REQUIRE_BROWSER=1 but {what}")
    pytest.skip(f"{what}; set CHEMOMET_REQUIRE_BROWSER=1 to make this a failure")


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright is not installed (pip install -e '.[test]')")
    exe = _chromium()
    if exe is None:
        _missing("no Chromium binary was found (chromium on PATH, /usr/bin/chromium or $CHEMOMET_CHROMIUM)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(web):
    app, _, _ = web
    with ThreadServer(app, free_port()) as s:
        yield s


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    pg.problems = []  # console errors (a CSP violation among them) and uncaught script errors
    expected = "the server responded with a status of 422"  # a form sent back with its errors: by design

    def console(m):
        if m.type == "error" and expected not in m.text:
            pg.problems.append(m.text)

    pg.on("console", console)
    pg.on("pageerror", lambda e: pg.problems.append(str(e)))
    yield pg
    context.close()


def _content_of(png: bytes) -> float:
    """Share of pixels that are not the background (white): a blank or broken page is near 0."""
    import matplotlib.image as mpimg
    import numpy as np

    img = mpimg.imread(io.BytesIO(png), format="png")[..., :3]
    return float(np.mean(np.any(img < 0.9, axis=-1)))


def test_fill_the_patient_form_and_get_the_assessment(page, server, web):
    _, store, _ = web
    page.goto(server.url + "/patient")
    page.fill("#f-study_id", "E2E-1")
    page.fill("#f-id", "browser-patient")
    page.fill("#f-age", "47")
    page.fill("#f-diameter_mm", "28")
    page.select_option("#f-grade", "3")
    page.select_option("#f-er", "positive")
    page.select_option("#f-pr", "positive")
    page.select_option("#f-her2", "negative")
    page.fill("#f-ki67_percent", "35")
    page.check("input[name=morphology][value=solid]")
    page.click("#assess-button")
    page.wait_for_url("**/jobs/**")
    assert page.locator("#job-progress").count() == 1  # the progress indicator, updated by static/app.js
    page.wait_for_url("**/assessments/*")  # moved on by the polling script when the job was done
    rid = int(page.url.rsplit("/", 1)[1])
    # recommendation first, then the strategies (figure and table), drugs, drivers, trajectories, uncertainty
    ids = page.eval_on_selector_all("#assessment section[id]", "els => els.map(e => e.id)")
    assert ids[0] == "recommendation" and {"strategies", "drugs", "drivers", "uncertainty"} <= set(ids)
    assert page.inner_text("#recommended-strategy").strip()
    assert page.locator("#strategy-table tbody tr").count() >= 5
    for img in ("#strategy-plot", "#trajectory-plot"):
        assert page.eval_on_selector(img, "el => el.complete && el.naturalWidth > 0")
    assert page.get_attribute("#download-report", "href") == f"/assessments/{rid}/report.html"
    assert page.get_attribute("#download-json", "href") == f"/assessments/{rid}/assessment.json"
    shot = page.screenshot(full_page=True)
    assert _content_of(shot) > 0.05  # the page drew text, tables and figures
    assert not page.problems, page.problems
    rec = StudyStore(store).get(rid)
    assert rec.study_id == "E2E-1" and rec.subject == "browser-patient"
    # reload: the assessment is in the study list, and opens again
    page.goto(server.url + "/studies")
    page.reload()
    row = page.locator(f"#record-{rid}")
    assert "E2E-1" in row.inner_text() and "browser-patient" in row.inner_text()
    row.locator("a").click()
    page.wait_for_url(f"**/assessments/{rid}")
    assert page.inner_text("#record-study") == "E2E-1"


def test_a_bad_value_shows_its_inline_error_and_no_assessment(page, server, web):
    _, store, _ = web
    before = len(StudyStore(store).records())
    page.goto(server.url + "/patient?example=1")
    assert page.input_value("#f-age") == "47"
    page.fill("#f-age", "12")
    page.click("#assess-button")
    page.wait_for_selector("#error-age")
    assert page.url.endswith("/assess")  # the form again, no job, no assessment
    assert page.inner_text("#error-age") == f"age = 12 is invalid; allowed: {FIELD_RULES['age'][0]} (unit: years)"
    assert page.get_attribute("#f-age", "aria-invalid") == "true"
    assert page.input_value("#f-age") == "12" and page.input_value("#f-diameter_mm") == "28"
    assert page.locator("#recommendation").count() == 0
    assert len(StudyStore(store).records()) == before
    assert not page.problems, page.problems


def test_upload_a_tissue_and_use_its_score(page, server, tmp_path):
    cells = tmp_path / "cells.csv"
    cells.write_text(CELLS)
    page.goto(server.url + "/tissue")
    page.set_input_files("#t-cells", str(cells))
    page.click("#score-button")
    page.wait_for_selector("#tissue-score")
    assert page.inner_text("#tissue-score") == "1"
    assert page.eval_on_selector("#tissue-map", "el => el.complete && el.naturalWidth > 0")
    page.click("#use-score")
    page.wait_for_url("**/patient/prefill")
    assert page.input_value("#f-tmem_score") == "1"
    assert page.input_value("#f-tmem_convention") == "10HPF"
    assert not page.problems, page.problems


def test_start_a_small_trial_and_see_its_results(page, server, web):
    _, store, _ = web
    page.goto(server.url + "/trial")
    page.select_option("#t-example", "nact_vs_rebastinib_allcomers")
    page.fill("#t-n", "40")
    page.fill("#t-study", "E2E-TRIAL")
    page.click("#run-trial")
    page.wait_for_url("**/jobs/**")
    assert page.locator("#job-progress").count() == 1  # progress, updated by static/app.js
    page.wait_for_url("**/trials/*", timeout=120_000)  # moved on by the polling script when the trial was done
    rid = int(page.url.rsplit("/", 1)[1])
    assert page.inner_text("#trial-name") == "NACT vs NACT + rebastinib, all-comers"
    rows = page.locator("#results-table tbody tr")
    assert rows.count() == 4
    first = rows.nth(0).inner_text()
    assert "dmfs" in first and "HR " in first and "log-rank" in first
    for img in ("#figure-km_dmfs", "#figure-km_drfi", "#figure-forest"):
        assert page.eval_on_selector(img, "el => el.complete && el.naturalWidth > 0"), img
    shot = page.screenshot(full_page=True)
    assert _content_of(shot) > 0.05  # the page drew its tables and figures
    assert not page.problems, page.problems
    rec = StudyStore(store).get(rid)
    assert rec.kind == "trial" and rec.study_id == "E2E-TRIAL" and rec.inputs["patients_per_arm"] == 40
    # the study list links it, and it opens again
    page.goto(server.url + "/studies")
    row = page.locator(f"#record-{rid}")
    assert "E2E-TRIAL" in row.inner_text() and "trial" in row.inner_text()
    row.locator("a").click()
    page.wait_for_url(f"**/trials/{rid}")
    assert page.inner_text("#record-study") == "E2E-TRIAL"


def test_a_bad_trial_size_shows_its_inline_error(page, server):
    page.goto(server.url + "/trial")
    page.fill("#t-n", "999999")
    page.click("#run-trial")
    page.wait_for_selector("#error-patients_per_arm")
    assert page.url.endswith("/trial")  # the form again, no job
    message = page.inner_text("#error-patients_per_arm")
    assert message.startswith("patients_per_arm = 999999 is invalid; allowed: an integer from 1 to 5000")
    assert "\n" not in message and page.get_attribute("#t-n", "aria-invalid") == "true"
    assert not page.problems, page.problems
