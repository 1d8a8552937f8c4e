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
    return _shot(png)["ink"]


def _shot(png: bytes) -> dict:
    """What a screenshot holds: its size (CSS pixels at scale 1), the share of non-white pixels (``ink``), the share
    of the most common colour (``flat``: 1.0 for a blank or one-colour area), the number of distinct colours, the
    share of strongly coloured pixels (``colour``: curves and bars, not grey text), the spread of its grey levels and
    the least ink in any quarter of its width (``ink_quarters``: a half-drawn or cut-off image has an empty one)."""
    import matplotlib.image as mpimg
    import numpy as np

    img = mpimg.imread(io.BytesIO(png), format="png")[..., :3]
    rgb = np.round(img * 255).astype(np.uint32).reshape(-1, 3)
    _, counts = np.unique(rgb[:, 0] << 16 | rgb[:, 1] << 8 | rgb[:, 2], return_counts=True)  # one int a colour
    ink = np.any(img < 0.9, axis=-1)
    quarters = [float(band.mean()) for band in np.array_split(ink, 4, axis=1)]
    return {"width": img.shape[1], "height": img.shape[0], "ink": float(np.mean(np.any(img < 0.9, axis=-1))),
            "flat": float(counts.max() / counts.sum()), "colours": int(len(counts)),
            "colour": float(np.mean(img.max(axis=-1) - img.min(axis=-1) > 0.25)), "spread": float(img.mean(-1).std()),
            "ink_quarters": min(quarters)}


def _element_shot(page, selector: str, min_width: int, min_height: int) -> dict:
    """An element screenshot of ``selector`` checked to be visible, at least ``min_width`` x ``min_height`` CSS
    pixels, and not blank: text or drawing on it (dark pixels, many colours, no single colour covering it)."""
    el = page.locator(selector)
    el.scroll_into_view_if_needed()
    stats = _shot(el.screenshot())
    box = el.bounding_box()
    stats["box"] = box
    assert stats["width"] >= min_width and stats["height"] >= min_height, (selector, stats)
    assert abs(stats["width"] - box["width"]) <= 2 and abs(stats["height"] - box["height"]) <= 2, (selector, stats)
    assert stats["ink"] > 0.01 and stats["flat"] < 0.97 and stats["colours"] >= 16, (selector, stats)
    assert stats["spread"] > 0.03 and stats["ink_quarters"] > 0.005, (selector, stats)
    return stats


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
    # the job page and its progress indicator are checked with a job still running in tests/web/test_security.py;
    # here the assessment (about a second) is often done before the job page could be inspected
    page.wait_for_url("**/assessments/*")  # moved on by the polling script, or redirected, when the job was done
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
    # the recommendation box, drawn first, full width, with its text; the strategy table with a line per strategy;
    # the two figures loaded and drawn (curves in colour, not a blank or broken image)
    rec_box = _element_shot(page, "#recommendation", 600, 60)
    table = _element_shot(page, "#strategy-table", 400, 20 * page.locator("#strategy-table tr").count())
    plots = {img: _element_shot(page, img, 300, 150) for img in ("#strategy-plot", "#trajectory-plot")}
    assert rec_box["box"]["width"] >= 0.75 * page.viewport_size["width"]  # the full-width box, not a sliver
    assert table["colour"] > 0.01  # the strategy table's coloured cells
    for img, stats in plots.items():  # (loaded: naturalWidth > 0, checked above)
        assert stats["colour"] > 0.002, (img, stats)  # the curves and bars are drawn in colour
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


def test_score_a_pixel_export_with_the_pixel_size_field(page, server, tmp_path):
    from tests.web.test_tissue import halo

    cells = tmp_path / "halo.csv"
    cells.write_bytes(halo("Cell Area"))  # pixel boxes, an area whose header names no unit
    page.goto(server.url + "/tissue")
    page.set_input_files("#t-cells", str(cells))
    page.select_option("#t-preset", "halo")
    page.fill("#t-pixel-size", "0.5")
    page.click("#score-button")
    page.wait_for_selector("#tissue-error")
    assert "'Cell Area' (cell area) names no unit in its header" in page.inner_text("#tissue-error")
    assert page.input_value("#t-pixel-size") == "0.5"  # the form comes back as it was sent
    page.set_input_files("#t-cells", str(cells))
    page.select_option("#t-area-units", "um2")
    page.click("#score-button")
    page.wait_for_selector("#tissue-score")
    assert page.inner_text("#tissue-score") == "1"
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
    _element_shot(page, "#results-table", 600, 20 * 5)  # a header and 4 result rows
    figs = {img: _element_shot(page, img, 300, 150) for img in ("#figure-km_dmfs", "#figure-forest")}
    for img, stats in figs.items():  # loaded (above), and drawn: curves in colour across the plot, not a blank frame
        assert stats["colour"] > 0.002, (img, stats)
    assert figs["#figure-km_dmfs"]["colours"] > 256  # Kaplan-Meier curves, confidence bands and text
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


def test_the_screenshot_checks_refuse_a_blank_a_flat_or_a_broken_element(page, server):
    """The element checks above are not vacuous: an empty box, a one-colour box, a broken image and a half-drawn
    one fail them, and a box with text passes."""
    page.goto(server.url + "/nowhere")  # a page of the app (its origin), then our own content
    page.set_content(
        '<div id="blank" style="width:700px;height:120px"></div>'
        '<div id="flat" style="width:700px;height:120px;background:#dde"></div>'
        '<img id="broken" src="/nowhere.png" alt="" style="width:400px;height:200px">'
        '<div id="half" style="width:700px;height:120px;font:16px sans-serif;color:#111">'
        '<span style="display:inline-block;width:300px">' + "text " * 200 + '</span></div>'
        '<div id="text" style="width:700px;font:16px sans-serif;color:#111;background:#f4f4ff">'
        + "Recommendation: nact, with its reasons in a few lines of text. " * 12 + "</div>")
    assert page.eval_on_selector("#broken", "el => el.naturalWidth") == 0
    for selector in ("#blank", "#flat", "#broken", "#half"):
        with pytest.raises(AssertionError):
            _element_shot(page, selector, 300, 100)
    assert _element_shot(page, "#text", 600, 60)["ink"] > 0.01
