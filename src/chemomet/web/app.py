"""The web app (Starlette, server-rendered Jinja2 templates): patient form, background assessment with progress,
the assessment page with its downloads, the study list with exports, the tissue page, and the trial page (a small
virtual trial run in the background, cancellable and resumable, with its results).

:func:`create_app` builds the ASGI app; ``chemomet serve`` (:mod:`chemomet.web.server`) runs it with uvicorn.
Pages carry a Content-Security-Policy without inline scripts (:mod:`chemomet.web.security`); the little
JavaScript there is (progress polling) is the static file ``static/app.js``. Every value shown is escaped by Jinja2
or by the report's own renderer. Nothing is fetched from or sent to anywhere else.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from chemomet.errors import InputError
from chemomet.patient import PARAMETER_RULES
from chemomet.regimens import DEFAULT_REGIMEN
from chemomet.web import tissue as tissue_page
from chemomet.web import trials as trial_page
from chemomet.web.forms import FORM_ERROR, NACT_ROWS, PATIENT_FIELDS, data_to_form, form_to_data, validate_patient
from chemomet.web.jobs import KEEP_JOBS, JobRunner
from chemomet.web.security import Guard
from chemomet.web.store import StudyStore, beside_store, calibration_date, chemomet_version, clean_study_id

log = logging.getLogger("chemomet.web")

HERE = Path(str(resources.files("chemomet.web")))
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

DEFAULT_STORE = Path("chemomet-study.sqlite")
"""The study store's file when none is given (in the folder the server starts in)."""

MAX_FORM_BYTES = 2 * 1024 * 1024
"""Largest request body of a form post or a patient file upload (bytes)."""

ASSESS_STEPS = 6
"""Steps an assessment reports: twins, weights, simulation, drivers, trajectories, recording."""


STANDARD_REGIMEN_CHOICE = "standard"
"""The form's default regimen choice: the standard for the patient's subtype (see ``assess.standard_regimen``)."""


def _regimens() -> dict[str, str]:
    from chemomet.regimens import load_regimens

    standard = "standard of care for the subtype (AC -> weekly paclitaxel; with trastuzumab and pertuzumab if HER2+)"
    return {STANDARD_REGIMEN_CHOICE: standard, **{key: reg.name for key, reg in load_regimens().items()}}


def _form_lists(form) -> dict[str, list[str]]:
    return {key: [v for v in form.getlist(key) if isinstance(v, str)] for key in set(form.keys())}


def _main_of(page: str) -> str:
    """The ``<main>`` content of the report page (the report's sections, already escaped by its renderer)."""
    start, end = page.find("<main>"), page.rfind("</main>")
    return page[start + len("<main>"):end] if start >= 0 and end > start else ""


class _Cache:
    """A small thread-safe LRU of rendered reports (record id -> HTML)."""

    def __init__(self, size: int = 16):
        self.size, self._items, self._lock = size, OrderedDict(), threading.Lock()

    def get(self, key):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def put(self, key, value):
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)


def create_app(
    store: str | Path = DEFAULT_STORE,
    *,
    token: str | None = None,
    settings_overrides: dict[str, float] | None = None,
    workers: int = 1,
    max_upload_bytes: int = tissue_page.MAX_UPLOAD_BYTES,
    allowed_hosts: tuple[str, ...] | None = None,
) -> Guard:
    """The chemomet web app, as an ASGI application wrapped in its :class:`~chemomet.web.security.Guard`.

    Parameters
    ----------
    store : str or Path, default ``chemomet-study.sqlite``
        The study store's SQLite file, created on first start (:class:`~chemomet.web.store.StudyStore`).
    token : str, optional
        The access token every request must carry (required when serving beyond loopback).
    settings_overrides : dict, optional
        Assessment settings changed for every assessment, as ``chemomet assess --set`` takes them, e.g.
        ``{"sampling.n_twins": 2000, "sampling.n_simulated": 512}`` for a quick (less precise) assessment.
    workers : int, default 1
        Assessments run at the same time (in background threads); the others queue.
    max_upload_bytes : int, default :data:`chemomet.web.tissue.MAX_UPLOAD_BYTES`
        Largest tissue cell table accepted (bytes); a larger upload gets 413 and leaves nothing on disk.
    allowed_hosts : tuple of str, optional
        Host names served without a token (default: the loopback names).

    Trials run one at a time in their own worker thread (``state.trial_jobs``), so a trial never holds up an
    assessment; their size is capped (:mod:`chemomet.web.trials`).

    Returns
    -------
    Guard
        The app; its ``.app`` is the Starlette app, whose ``state`` holds ``store``, ``jobs`` and ``trial_jobs``.

    Examples
    --------
    >>> from starlette.testclient import TestClient
    >>> app = create_app(":memory:")
    >>> with TestClient(app, base_url="http://127.0.0.1") as client:
    ...     page = client.get("/patient")
    >>> page.status_code, "diameter_mm" in page.text
    (200, True)
    """
    from chemomet.assess.settings import AssessmentSettings

    study = StudyStore(store)
    settings = AssessmentSettings.default().with_overrides(dict(settings_overrides or {}))
    jobs = JobRunner(workers=workers)
    trial_jobs = JobRunner(workers=1)
    trial_runs: OrderedDict[str, trial_page.TrialRun] = OrderedDict()  # job id -> run (to resume it)
    runs_lock = threading.Lock()
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.globals.update(version=chemomet_version(), calibration=calibration_date(), banner=(
        "Research use only — not a medical device; not for clinical decisions"))
    reports = _Cache()
    regimens = _regimens()
    quick = bool(settings_overrides)

    def page(name: str, status: int = 200, **context) -> HTMLResponse:
        return HTMLResponse(env.get_template(name).render(**context), status_code=status)

    def patient_form(values=None, errors=None, status=200, study_id="", regimen=STANDARD_REGIMEN_CHOICE, note=None):
        return page("patient.html", status, fields=PATIENT_FIELDS, parameters=PARAMETER_RULES,
                    nact_rows=range(NACT_ROWS), values=values or {}, errors=errors or {}, form_error=FORM_ERROR,
                    study_id=study_id, regimen=regimen, regimens=regimens, settings=settings.sampling, quick=quick,
                    note=note, param_open=any(k.startswith("parameters") for k in (errors or {})))

    # ------------------------------------------------------------------------------------------------ pages

    async def home(request: Request):
        return RedirectResponse("/patient", status_code=303)

    async def patient_get(request: Request):
        values, note = {}, None
        if request.query_params.get("example"):
            from chemomet.patient import example_patient

            values = data_to_form(example_patient().model_dump(mode="json", exclude={"subtype"}))
            note = "The built-in example patient: change any value and assess."
        source = request.query_params.get("from")
        if source and source.isdigit():
            rec = await run_in_threadpool(study.get, int(source))
            if rec is not None and rec.kind == "assessment":
                inputs = rec.inputs
                values = data_to_form(inputs.get("patient_form") or inputs.get("patient") or {})
                note = f"The inputs of record {rec.id}: change any value and assess again."
                return patient_form(values, study_id=rec.study_id, regimen=inputs.get("regimen", DEFAULT_REGIMEN),
                                    note=note)
        return patient_form(values, note=note)

    async def patient_prefill(request: Request):
        """The form with values posted by another page (the tissue page's "use this score")."""
        form = await request.form(max_files=0, max_fields=50)
        values = {k: v for k, v in ((k, form.get(k)) for k in ("tmem_score", "tmem_convention")) if isinstance(v, str)}
        return patient_form(values, note="TMEM score taken from the tissue page: fill in the other fields.")

    async def patient_load(request: Request):
        form = await request.form(max_files=1, max_fields=50, max_part_size=MAX_FORM_BYTES)
        upload = form.get("patient_file")
        text = form.get("patient_text") or ""
        suffix = ".toml"
        try:
            if upload is not None and not isinstance(upload, str) and upload.filename:
                suffix = Path(upload.filename).suffix.lower()
                if suffix not in (".toml", ".json"):
                    raise InputError(f"patient file: suffix {suffix!r} is invalid; allowed: .toml or .json")
                raw = await upload.read(MAX_FORM_BYTES + 1)
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise InputError("patient file: not UTF-8 text; allowed: a UTF-8 .toml or .json file") from None
            elif isinstance(text, str) and text.lstrip().startswith(("{", "[")):
                suffix = ".json"
            if not isinstance(text, str) or not text.strip():
                raise InputError("patient file: nothing given; allowed: a .toml or .json file, or its text pasted")
            from chemomet.inputs import parse_text

            data = parse_text(text, suffix, "patient file")
            if not isinstance(data, dict):
                raise InputError("patient file: top level is not a table; allowed: a table of patient fields")
        except InputError as err:
            return patient_form(errors={FORM_ERROR: str(err)}, status=422)
        finally:
            if upload is not None and not isinstance(upload, str):
                await upload.close()
        _, errors = validate_patient(data)
        return patient_form(data_to_form(data), errors, status=422 if errors else 200,
                            note=None if errors else "Patient file loaded: review the values and assess.")

    async def assess_post(request: Request):
        form = await request.form(max_files=0, max_fields=200, max_part_size=MAX_FORM_BYTES)
        lists = _form_lists(form)
        data = form_to_data(lists)
        patient, errors = validate_patient(data)
        raw_values = {k: (v if k == "morphology" else (v[0] if v else "")) for k, v in lists.items()}
        study_id = (lists.get("study_id") or [""])[0]
        regimen = (lists.get("regimen") or [STANDARD_REGIMEN_CHOICE])[0]
        try:
            study_id = clean_study_id(study_id)
        except ValueError as err:
            errors["study_id"] = str(err)
        if regimen not in regimens:
            errors["regimen"] = f"regimen = {regimen[:80]!r} is invalid; allowed: one of {', '.join(regimens)}"
        if patient is not None and not errors:
            from chemomet.assess.assessment import standard_regimen
            from chemomet.assess.evidence import check_measurements

            if regimen == STANDARD_REGIMEN_CHOICE:
                regimen = standard_regimen(patient, settings.treatment)
            try:
                check_measurements(patient, regimen)
            except InputError as err:
                errors["nact_diameters"] = str(err)
        if errors or patient is None:
            return patient_form(raw_values, errors, status=422, study_id=study_id, regimen=regimen)
        job = jobs.submit("assessment", _assessment_task(patient, data, regimen, study_id), ASSESS_STEPS)
        return RedirectResponse(f"/jobs/{job.id}", status_code=303)

    def _assessment_task(patient, data, regimen, study_id):
        def task(progress):
            from chemomet.assess import assess

            result = assess(patient, regimen=regimen, settings=settings, progress=progress)
            progress("recording the assessment in the study store")
            rec = study.append(
                "assessment",
                {"patient": patient.model_dump(mode="json"), "patient_form": data, "regimen": regimen,
                 "settings_overrides": dict(settings_overrides or {})},
                None,
                outputs_json=result.to_json(indent=None),
                study_id=study_id,
                subject=patient.id,
                summary=str(result.recommendation.strategy if result.recommendation else ""),
            )
            return {"record_id": rec.id, "url": f"/assessments/{rec.id}"}

        return task

    def find_job(job_id: str):
        return jobs.get(job_id) or trial_jobs.get(job_id)

    async def job_page(request: Request):
        job = find_job(request.path_params["job_id"])
        if job is None:
            return page("message.html", 404, title="No such job",
                        message="This job is unknown (the server may have restarted); see the study list.")
        if job.state == "done" and job.result and job.result.get("url"):
            return RedirectResponse(job.result["url"], status_code=303)
        with runs_lock:
            resumable = job.kind == "trial" and job.state in ("cancelled", "failed") and job.id in trial_runs
        return page("job.html", job=job, resumable=resumable, active="trial" if job.kind == "trial" else "patient")

    async def job_status(request: Request):
        job = find_job(request.path_params["job_id"])
        if job is None:
            return JSONResponse({"state": "unknown"}, status_code=404)
        return JSONResponse(job.status())

    async def job_cancel(request: Request):
        job = trial_jobs.cancel(request.path_params["job_id"])
        if job is None:
            return page("message.html", 404, title="No such job", message="This job is unknown; nothing to cancel.")
        return RedirectResponse(f"/jobs/{job.id}", status_code=303)

    async def job_resume(request: Request):
        job = trial_jobs.get(request.path_params["job_id"])
        with runs_lock:  # a run is resumed once: the cancelled job gives it to the new one
            run = trial_runs.pop(job.id, None) if job is not None and job.state in ("cancelled", "failed") else None
        if run is None:
            return page("message.html", 409, title="Nothing to resume",
                        message="Only a cancelled or failed trial started since the server started can be resumed.")
        return RedirectResponse(f"/jobs/{submit_trial(run, resume=True).id}", status_code=303)

    def submit_trial(run: trial_page.TrialRun, resume: bool = False):
        task = trial_page.trial_task(run, study, tissue_page.PLOT_LOCK, resume=resume)
        job = trial_jobs.submit("trial", task, total_steps=trial_page.TARGET_CHUNKS + 2, cancellable=True)
        with runs_lock:
            trial_runs[job.id] = run
            while len(trial_runs) > KEEP_JOBS:
                trial_runs.popitem(last=False)
        return job

    # ------------------------------------------------------------------------------------------------ trials

    def trial_form(values=None, errors=None, status=200):
        return page("trial.html", status, examples=trial_page.example_specs(), values=values or {},
                    errors=errors or {}, max_per_arm=trial_page.MAX_PATIENTS_PER_ARM,
                    max_in_all=trial_page.MAX_PATIENTS_IN_ALL)

    async def trial_get(request: Request):
        example = request.query_params.get("example", "")
        examples = trial_page.example_specs()
        default = trial_page.DEFAULT_EXAMPLE if trial_page.DEFAULT_EXAMPLE in examples else next(iter(examples), "")
        values = {"example": example if example in examples else default,
                  "patients_per_arm": str(trial_page.DEFAULT_PATIENTS_PER_ARM)}
        return trial_form(values)

    async def trial_post(request: Request):
        from starlette.formparsers import MultiPartException

        values, errors, upload = {}, {}, None
        try:
            form = await request.form(max_files=1, max_fields=20, max_part_size=trial_page.SPEC_LIMIT + 1024)
        except MultiPartException as err:
            return trial_form(errors={"spec": f"trial form: {err.message}"}, status=422)
        try:
            upload = form.get("spec_file")
            values = {k: str(form.get(k) or "") for k in ("example", "spec_text", "patients_per_arm", "study_id")}
            try:
                values["study_id"] = clean_study_id(values["study_id"])
            except ValueError as err:
                errors["study_id"] = str(err)
            try:
                per_arm = trial_page.parse_patients_per_arm(values["patients_per_arm"])
            except InputError as err:
                errors["patients_per_arm"] = str(err)
                per_arm = None
            if not errors:
                kw = {"patients_per_arm": per_arm}
                if upload is not None and not isinstance(upload, str) and upload.filename:
                    raw = await upload.read(trial_page.SPEC_LIMIT + 1)
                    try:
                        kw.update(text=raw.decode("utf-8"), filename=upload.filename)
                    except UnicodeDecodeError:
                        kw.update(text="", filename=upload.filename)
                        errors["spec"] = "trial spec: not UTF-8 text; allowed: a UTF-8 .toml file"
                elif values["spec_text"].strip():
                    kw.update(text=values["spec_text"])
                else:
                    kw.update(example=values["example"] or None)
                if not errors:
                    try:
                        spec, source, digest = await run_in_threadpool(lambda: trial_page.load_spec(**kw))
                    except InputError as err:
                        field = "patients_per_arm" if str(err).split(": ", 1)[-1].startswith(
                            "patients_per_arm") else "spec"
                        errors[field] = str(err)
        finally:
            if upload is not None and not isinstance(upload, str):
                await upload.close()
        if errors:
            return trial_form(values, errors, status=422)
        run = trial_page.TrialRun.new(spec, source, digest, beside_store(study.path, "trials"), values["study_id"])
        return RedirectResponse(f"/jobs/{submit_trial(run).id}", status_code=303)

    def _trial_record(request: Request):
        rec = study.get(request.path_params["record_id"])
        return rec if rec is not None and rec.kind == "trial" else None

    async def trial_result(request: Request):
        rec = await run_in_threadpool(_trial_record, request)
        if rec is None:
            return page("message.html", 404, title="No such trial", message="There is no trial here.")
        inputs, outputs = rec.inputs, rec.outputs
        summary = outputs.get("summary", {})
        shown = await run_in_threadpool(lambda: [
            name for name in trial_page.FIGURES if trial_page.figure_path(inputs, outputs, name) is not None])
        missing = [name for name in (outputs.get("figures") or {}) if name not in shown]
        return page("trial_result.html", record=rec, summary=summary, inputs=inputs,
                    rows=trial_page.result_rows(summary), figures=shown, missing=missing, active="trial")

    async def trial_figure(request: Request):
        rec = await run_in_threadpool(_trial_record, request)
        name = request.path_params["name"]
        path = None if rec is None else await run_in_threadpool(trial_page.figure_path, rec.inputs, rec.outputs,
                                                                name)
        if path is None:
            return Response("not found\n", 404, media_type="text/plain")
        body = await run_in_threadpool(path.read_bytes)
        return Response(body, media_type="image/png")

    async def trial_summary_json(request: Request):
        rec = await run_in_threadpool(_trial_record, request)
        if rec is None:
            return Response("not found\n", 404, media_type="text/plain")
        body = json.dumps(rec.outputs.get("summary", {}), indent=1, allow_nan=False)
        return Response(body, media_type="application/json", headers={
            "content-disposition": f'attachment; filename="chemomet-trial-{rec.id}.json"'})

    def _record(request: Request):
        rid = request.path_params["record_id"]
        rec = study.get(rid)
        return rec if rec is not None and rec.kind == "assessment" else None

    def _rendered(rec) -> str:
        cached = reports.get(rec.id)
        if cached is None:
            from chemomet.assess.report import render_report

            cached = render_report(json.loads(rec.outputs_json))
            reports.put(rec.id, cached)
        return cached

    async def assessment_page(request: Request):
        rec = await run_in_threadpool(_record, request)
        if rec is None:
            return page("message.html", 404, title="No such assessment", message="There is no assessment here.")
        report = await run_in_threadpool(_rendered, rec)
        return page("assessment.html", record=rec, main=Markup(_main_of(report)))

    async def assessment_report(request: Request):
        rec = await run_in_threadpool(_record, request)
        if rec is None:
            return Response("not found\n", 404, media_type="text/plain")
        from chemomet.assess.report import CSP as REPORT_CSP

        report = await run_in_threadpool(_rendered, rec)
        return Response(report, media_type="text/html; charset=utf-8", headers={
            "content-disposition": f'attachment; filename="chemomet-assessment-{rec.id}.html"',
            "content-security-policy": REPORT_CSP})

    async def assessment_json(request: Request):
        rec = await run_in_threadpool(_record, request)
        if rec is None:
            return Response("not found\n", 404, media_type="text/plain")
        return Response(rec.outputs_json, media_type="application/json", headers={
            "content-disposition": f'attachment; filename="chemomet-assessment-{rec.id}.json"'})

    async def studies(request: Request):
        study_id = request.query_params.get("study")
        records = await run_in_threadpool(study.records, study_id or None)
        return page("studies.html", records=list(reversed(records)), study=study_id or "", store=str(study.path))

    async def export(request: Request):
        fmt = request.path_params["fmt"]
        formats = {"csv": (study.export_csv, "text/csv; charset=utf-8"),
                   "json": (study.export_json, "application/json"),
                   "parquet": (study.export_parquet, "application/vnd.apache.parquet")}
        if fmt not in formats:
            return Response("not found\n", 404, media_type="text/plain")
        study_id = request.query_params.get("study") or None
        name = f"chemomet-study.{fmt}"
        export_fn, media = formats[fmt]
        body = await run_in_threadpool(export_fn, study_id)
        return Response(body, media_type=media, headers={"content-disposition": f'attachment; filename="{name}"'})

    async def report_css(request: Request):
        from chemomet.assess.report import CSS

        return Response(CSS, media_type="text/css")

    async def tissue_get(request: Request):
        return page("tissue.html", **tissue_page.context())

    async def tissue_post(request: Request):
        outcome = await tissue_page.handle_upload(request, upload_dir=beside_store(study.path, "uploads"),
                                                  limit=max_upload_bytes, store=study)
        ctx = tissue_page.context(**outcome)
        return page("tissue.html", 422 if outcome.get("error") else 200, **ctx)

    routes = [
        Route("/", home),
        Route("/patient", patient_get, methods=["GET"]),
        Route("/patient/load", patient_load, methods=["POST"]),
        Route("/patient/prefill", patient_prefill, methods=["POST"]),
        Route("/assess", assess_post, methods=["POST"]),
        Route("/jobs/{job_id}", job_page),
        Route("/jobs/{job_id}/status", job_status),
        Route("/jobs/{job_id}/cancel", job_cancel, methods=["POST"]),
        Route("/jobs/{job_id}/resume", job_resume, methods=["POST"]),
        Route("/trial", trial_get, methods=["GET"]),
        Route("/trial", trial_post, methods=["POST"]),
        Route("/trials/{record_id:int}", trial_result),
        Route("/trials/{record_id:int}/figures/{name:str}.png", trial_figure),
        Route("/trials/{record_id:int}/summary.json", trial_summary_json),
        Route("/assessments/{record_id:int}", assessment_page),
        Route("/assessments/{record_id:int}/report.html", assessment_report),
        Route("/assessments/{record_id:int}/assessment.json", assessment_json),
        Route("/studies", studies),
        Route("/studies/export.{fmt:str}", export),
        Route("/tissue", tissue_get, methods=["GET"]),
        Route("/tissue", tissue_post, methods=["POST"]),
        Route("/report.css", report_css),
        Route("/favicon.ico", lambda request: Response(status_code=204)),
        Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
    ]

    @asynccontextmanager
    async def lifespan(app):
        yield
        with runs_lock:
            running = list(trial_runs)
        for job_id in running:  # a running trial stops after its chunk in progress (its folder kept)
            trial_jobs.cancel(job_id)
        jobs.shutdown()
        trial_jobs.shutdown()

    inner = Starlette(routes=routes, lifespan=lifespan)
    inner.state.store = study
    inner.state.jobs = jobs
    inner.state.trial_jobs = trial_jobs
    inner.state.settings = settings
    limits = {"/tissue": max_upload_bytes, "/trial": trial_page.MAX_FORM_BYTES}
    return Guard(inner, token=token, max_body=MAX_FORM_BYTES, upload_paths=limits,
                 allowed_hosts=allowed_hosts)

