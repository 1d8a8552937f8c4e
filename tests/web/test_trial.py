"""The trial page: a small trial from a shipped example or a pasted/uploaded spec, run in the background with
progress, cancelled and resumed, its results (hazard ratios, p-values, KM and forest figures) and its study record;
input errors shown beside their field in one line."""

from __future__ import annotations

import json
import re
import time

import pytest

from chemomet.web.app import create_app
from chemomet.web.store import StudyStore, beside_store
from chemomet.web.trials import MAX_PATIENTS_PER_ARM
from tests.web.helpers import MARKUP, client, wait_job

SPEC = """
name = "web test: NACT vs NACT + rebastinib"
seed = 7
patients_per_arm = 100000          # replaced by the form's patients_per_arm
[[arms]]
name = "NACT"
strategy = "nact"
[[arms]]
name = "NACT + rebastinib"
strategy = "nact+rebastinib"
[endpoints]
primary = "dmfs"
include = ["dmfs", "pcr"]
[analysis]
subgroups = ["subtype"]
"""
"""A small pasted spec (two endpoints, one subgroup variable): seconds to run."""


def _inline(html: str, row: str, field: str) -> str:
    """The one inline message of ``field``, which must sit in the form's row ``row``."""
    m = re.search(rf'<tr[^>]*id="{row}".*?</tr>', html, re.S)
    assert m, f"no row {row}"
    e = re.findall(rf'id="error-{field}"[^>]*>([^<]*)<', m.group(0))
    assert len(e) == 1, f"no single inline error for {field} in row {row}"
    return e[0]


@pytest.fixture(scope="module")
def trial_app(tmp_path_factory):
    """An app on a fresh store: ``(app, store_path)``."""
    store = tmp_path_factory.mktemp("trial") / "study.sqlite"
    return create_app(store), store


@pytest.fixture(scope="module")
def finished(trial_app):
    """One small trial of a shipped example, run through the page: ``(record, result page html)``."""
    app, store = trial_app
    with client(app) as c:
        form = c.get("/trial")
        assert form.status_code == 200 and 'value="nact_vs_rebastinib_allcomers"' in form.text
        r = c.post("/trial", data={"example": "nact_vs_rebastinib_allcomers", "patients_per_arm": "60",
                                   "study_id": "TRIAL-1"}, follow_redirects=False)
        assert r.status_code == 303, r.text
        location = r.headers["location"]
        running = c.get(location)
        assert 'id="job-progress"' in running.text  # the progress page (or the result, if already done)
        status = wait_job(c, location, timeout=120)
        assert status["state"] == "done", status
        page = c.get(status["result"]["url"])
        assert page.status_code == 200
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert "<script>" not in page.text  # the only script is static/app.js (in base.html, with src)
    return StudyStore(store).get(status["result"]["record_id"]), page.text


def test_a_small_trial_from_an_example_shows_its_results_and_is_recorded(trial_app, finished):
    app, store = trial_app
    rec, html = finished
    assert rec.kind == "trial" and rec.study_id == "TRIAL-1"
    assert rec.subject == "NACT vs NACT + rebastinib, all-comers"
    assert rec.inputs["source"] == "example:nact_vs_rebastinib_allcomers" and rec.inputs["patients_per_arm"] == 60
    assert rec.inputs["spec"]["patients_per_arm"] == 60 and len(rec.inputs["spec_sha256"]) == 64
    summary = rec.outputs["summary"]
    assert [a["n"] for a in summary["arms"]] == [60, 60]
    dmfs = summary["endpoints"]["dmfs"]["comparisons"][0]
    assert rec.summary.startswith(f"dmfs NACT + rebastinib: HR {dmfs['hazard_ratio']:.2f}")
    # the summary table: one row per endpoint and experimental arm, with the hazard ratio and the p-values
    rows = re.findall(r'<tr class="result-row" data-endpoint="([^"]+)">(.*?)</tr>', html, re.S)
    assert [ep for ep, _ in rows] == ["dmfs", "drfi", "pcr", "tmem_change"]
    assert f"HR {dmfs['hazard_ratio']:.3f}" in rows[0][1] and f"{dmfs['p']:.3g}" in rows[0][1]
    # the KM figures and the forest plot the runner wrote, served after their SHA-256 is checked
    figures = re.findall(r'<img id="figure-([a-z_]+)" src="([^"]+)"', html)
    assert [name for name, _ in figures] == ["km_dmfs", "km_drfi", "forest"]
    with client(app) as c:
        for _, src in figures:
            r = c.get(src)
            assert r.status_code == 200 and r.headers["content-type"] == "image/png"
            assert r.content.startswith(b"\x89PNG")
        assert c.get(f"/trials/{rec.id}/figures/patients.png").status_code == 404
        assert c.get(f"/trials/{rec.id}/figures/..%2F..%2Fstudy.png").status_code == 404
        data = c.get(f"/trials/{rec.id}/summary.json")
        assert data.headers["content-disposition"].startswith("attachment")
        assert json.loads(data.text)["endpoints"]["dmfs"]["comparisons"][0] == dmfs
        # the study list links it; it re-opens from the store
        studies = c.get("/studies").text
        assert f'href="/trials/{rec.id}"' in studies and "TRIAL-1" in studies
        assert c.get(f"/trials/{rec.id}").text == html
        assert c.get("/trials/999").status_code == 404


def test_a_changed_figure_file_is_not_served(trial_app, finished, tmp_path):
    app, _ = trial_app
    rec, _ = finished
    from pathlib import Path

    forest = Path(rec.inputs["run_dir"]) / "forest.png"
    original = forest.read_bytes()
    try:
        forest.write_bytes(original + b"changed")
        with client(app) as c:
            assert c.get(f"/trials/{rec.id}/figures/forest.png").status_code == 404
            page = c.get(f"/trials/{rec.id}").text
            assert 'id="figure-forest"' not in page and 'id="figures-missing"' in page
    finally:
        forest.write_bytes(original)


@pytest.mark.parametrize("data,files,row,field,start", [
    ({"example": "nact_vs_rebastinib_allcomers", "patients_per_arm": str(MAX_PATIENTS_PER_ARM + 1)}, None,
     "row-patients_per_arm", "patients_per_arm", f"patients_per_arm = {MAX_PATIENTS_PER_ARM + 1} is invalid"),
    ({"example": "nact_vs_rebastinib_allcomers", "patients_per_arm": "ten"}, None,
     "row-patients_per_arm", "patients_per_arm", "patients_per_arm = 'ten' is invalid"),
    ({"spec_text": SPEC, "patients_per_arm": ""}, None,  # the spec's own size is beyond the web's cap
     "row-patients_per_arm", "patients_per_arm", "pasted spec: patients_per_arm = 100000 is invalid"),
    ({"spec_text": "name = = 'x'", "patients_per_arm": "50"}, None, "row-spec", "spec", "pasted spec: not valid TOML"),
    ({"spec_text": "colour = 'blue'\n" + SPEC, "patients_per_arm": "50"}, None, "row-spec", "spec",
     "pasted spec: colour = 'blue' is not a known field"),
    ({"spec_text": SPEC.replace('strategy = "nact"', 'strategy = "nact+aspirin"'), "patients_per_arm": "50"}, None,
     "row-spec", "spec", "pasted spec: arms.0 (NACT)"),
    ({"spec_text": 'population = "/etc/population.toml"\n' + SPEC, "patients_per_arm": "50"}, None, "row-spec",
     "spec", "pasted spec: population = '/etc/population.toml' is invalid in the web app"),
    ({"spec_text": 'regimen = "../regimens/ac-x4.toml"\n' + SPEC, "patients_per_arm": "50"}, None, "row-spec",
     "spec", "pasted spec: regimen = '../regimens/ac-x4.toml' is invalid in the web app"),
    ({"spec_text": 'name = "p"\ndesigns = ["a.toml"]\n', "patients_per_arm": "50"}, None, "row-spec", "spec",
     "pasted spec: designs (a design comparison) is not run in the web app"),
    ({"example": "power_allcomers_vs_tmem_high", "patients_per_arm": "50"}, None, "row-spec", "spec",
     "example = 'power_allcomers_vs_tmem_high' is invalid"),
    ({"patients_per_arm": "50"}, {"spec_file": ("../../spec.exe", b"MZ", "application/octet-stream")}, "row-spec",
     "spec", "trial spec 'spec.exe': suffix '.exe' is invalid; allowed: a .toml file"),
    ({"patients_per_arm": "50"}, {"spec_file": ("spec.toml", b"\xff\xfe\x00", "application/toml")}, "row-spec",
     "spec", "trial spec: not UTF-8 text"),
    ({"example": "", "patients_per_arm": "50"}, None, "row-spec", "spec", "trial spec: nothing given"),
    ({"example": "nact_vs_rebastinib_allcomers", "patients_per_arm": "50", "study_id": "x" * 81}, None,
     "row-study_id", "study_id", "study id: at most 80 characters"),
])
def test_input_errors_show_inline_in_one_line_and_start_nothing(trial_app, data, files, row, field, start):
    app, store = trial_app
    before = len(StudyStore(store).records())
    with client(app) as c:
        r = c.post("/trial", data=data, files=files, follow_redirects=False)
    assert r.status_code == 422 and "location" not in r.headers
    message = _inline(r.text, row, field)
    assert "\n" not in message and message.startswith(start.replace("'", "&#39;")), message
    assert f'aria-describedby="error-{field}"' in r.text and 'id="error-summary"' in r.text
    if data.get("spec_text"):  # what was typed stays in the form
        assert "web test: NACT vs NACT + rebastinib" in r.text or "designs" in r.text or "name = = " in r.text
    assert len(StudyStore(store).records()) == before


def test_an_uploaded_spec_runs_with_markup_in_its_name_escaped(trial_app):
    app, store = trial_app
    spec = SPEC.replace('name = "web test: NACT vs NACT + rebastinib"', f"name = '{MARKUP}'")
    with client(app) as c:
        r = c.post("/trial", data={"patients_per_arm": "30", "study_id": "<b>T</b>"},
                   files={"spec_file": ("my spec.toml", spec.encode(), "application/toml")}, follow_redirects=False)
        assert r.status_code == 303, r.text
        status = wait_job(c, r.headers["location"], timeout=120)
        assert status["state"] == "done", status
        rec = StudyStore(store).get(status["result"]["record_id"])
        assert rec.subject == MARKUP and rec.inputs["source"] == "upload:my_spec.toml"
        assert set(rec.outputs["summary"]["endpoints"]) == {"dmfs", "pcr"}
        for page in (c.get(status["result"]["url"]), c.get("/studies")):
            assert "<script>alert" not in page.text and "<img src=x" not in page.text and "<b>T</b>" not in page.text
            assert "&lt;script&gt;" in page.text and "&lt;b&gt;T&lt;/b&gt;" in page.text


def test_a_running_trial_can_be_cancelled_and_resumed_with_the_same_result(trial_app):
    """Cancel stops it after the chunk in progress (no record, the chunks kept); resume skips the chunks done, and
    the result is that of an uninterrupted run."""
    from chemomet.trial import run_trial
    from chemomet.web.trials import load_spec

    app, store = trial_app
    before = len(StudyStore(store).records())
    with client(app) as c:
        r = c.post("/trial", data={"spec_text": SPEC, "patients_per_arm": "640"}, follow_redirects=False)
        assert r.status_code == 303, r.text
        location = r.headers["location"]
        job = app.app.state.trial_jobs.get(location.rsplit("/", 1)[1])
        assert 'id="cancel-button"' in c.get(location).text or job.steps_done > 1
        deadline = time.monotonic() + 60  # wait until a chunk is done ("... (chunk 1 of 5)"), then cancel
        while not re.search(r"chunk [1-9]", job.step) and job.state != "done" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert job.state == "running", job.status()
        r = c.post(location + "/cancel", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == location
        status = wait_job_ended(c, location)
        assert status["state"] == "cancelled", status
        assert len(StudyStore(store).records()) == before  # nothing recorded
        run_dir = next(p for p in beside_store(str(store), "trials").iterdir() if not (p / "summary.json").exists())
        kept = sorted((run_dir / "chunks").glob("chunk-*.parquet"))
        assert 1 <= len(kept) < 5  # 1,280 patients in 5 chunks of 256
        page = c.get(location).text
        assert 'id="resume-button"' in page and 'id="cancel-button"' not in page
        assert c.post(location + "/cancel", follow_redirects=False).status_code == 303  # a no-op once ended
        r = c.post(location + "/resume", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] != location
        status = wait_job(c, r.headers["location"], timeout=120)
        assert status["state"] == "done", status
        assert c.post(location + "/resume").status_code == 409  # resumed once only
    rec = StudyStore(store).get(status["result"]["record_id"])
    assert rec.inputs["attempts"] == ["start", "resume"] and rec.inputs["run_dir"] == str(run_dir)
    run = rec.outputs["summary"]["run"]
    assert run["chunks"] == 5 and run["chunks_computed"] == 5 - len(kept)
    spec, _, _ = load_spec(text=SPEC, patients_per_arm=640)
    direct = run_trial(spec, out=run_dir.parent / "direct", figures=False).summary  # one chunk, no stop
    assert rec.outputs["summary"]["endpoints"] == direct["endpoints"]


def wait_job_ended(c, location: str, timeout: float = 60.0) -> dict:
    """Poll a job's status until it has ended (done, failed or cancelled)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = c.get(location + "/status").json()
        if status["state"] in ("done", "failed", "cancelled"):
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {location} did not end within {timeout} s")


def test_an_assessment_cannot_be_cancelled_and_unknown_jobs_are_404(web):
    app, _, _ = web
    with client(app) as c:
        assert c.post("/jobs/nope/cancel").status_code == 404
        assert c.post("/jobs/nope/resume").status_code == 409
        job = app.app.state.jobs.submit("assessment", lambda progress: {}, total_steps=1)
        app.app.state.jobs.wait(job.id, timeout=10)
        assert c.post(f"/jobs/{job.id}/cancel").status_code == 404  # not a trial job
