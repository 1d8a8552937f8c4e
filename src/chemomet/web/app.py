"""The web app (Starlette, server-rendered Jinja2 templates): patient form, background assessment with progress,
the assessment page with its downloads, the study list with exports, and the tissue page.

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
from chemomet.web.forms import FORM_ERROR, NACT_ROWS, PATIENT_FIELDS, data_to_form, form_to_data, validate_patient
from chemomet.web.jobs import JobRunner
from chemomet.web.security import Guard
from chemomet.web.store import StudyStore, calibration_date, chemomet_version, clean_study_id

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


def _regimens() -> dict[str, str]:
    from chemomet.regimens import load_regimens

    return {key: reg.name for key, reg in load_regimens().items()}


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

    Returns
    -------
    Guard
        The app; its ``.app`` is the Starlette app, whose ``state`` holds ``store`` and ``jobs``.

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
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.globals.update(version=chemomet_version(), calibration=calibration_date(), banner=(
        "Research use only — not a medical device; not for clinical decisions"))
    reports = _Cache()
    regimens = _regimens()
    quick = bool(settings_overrides)

    def page(name: str, status: int = 200, **context) -> HTMLResponse:
        return HTMLResponse(env.get_template(name).render(**context), status_code=status)

    def patient_form(values=None, errors=None, status=200, study_id="", regimen=DEFAULT_REGIMEN, note=None):
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
        regimen = (lists.get("regimen") or [DEFAULT_REGIMEN])[0]
        try:
            study_id = clean_study_id(study_id)
        except ValueError as err:
            errors["study_id"] = str(err)
        if regimen not in regimens:
            errors["regimen"] = f"regimen = {regimen[:80]!r} is invalid; allowed: one of {', '.join(regimens)}"
        if patient is not None and not errors:
            from chemomet.assess.evidence import check_measurements

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

    async def job_page(request: Request):
        job = jobs.get(request.path_params["job_id"])
        if job is None:
            return page("message.html", 404, title="No such job",
                        message="This job is unknown (the server may have restarted); see the study list.")
        if job.state == "done" and job.result and job.result.get("url"):
            return RedirectResponse(job.result["url"], status_code=303)
        return page("job.html", job=job)

    async def job_status(request: Request):
        job = jobs.get(request.path_params["job_id"])
        if job is None:
            return JSONResponse({"state": "unknown"}, status_code=404)
        return JSONResponse(job.status())

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
        if fmt not in ("csv", "json"):
            return Response("not found\n", 404, media_type="text/plain")
        study_id = request.query_params.get("study") or None
        name = "chemomet-study" + (".csv" if fmt == "csv" else ".json")
        if fmt == "csv":
            body = await run_in_threadpool(study.export_csv, study_id)
            media = "text/csv; charset=utf-8"
        else:
            body = await run_in_threadpool(study.export_json, study_id)
            media = "application/json"
        return Response(body, media_type=media, headers={"content-disposition": f'attachment; filename="{name}"'})

    async def report_css(request: Request):
        from chemomet.assess.report import CSS

        return Response(CSS, media_type="text/css")

    async def tissue_get(request: Request):
        return page("tissue.html", **tissue_page.context())

    async def tissue_post(request: Request):
        outcome = await tissue_page.handle_upload(request, upload_dir=tissue_page.upload_dir(study.path),
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
        jobs.shutdown()

    inner = Starlette(routes=routes, lifespan=lifespan)
    inner.state.store = study
    inner.state.jobs = jobs
    inner.state.settings = settings
    return Guard(inner, token=token, max_body=MAX_FORM_BYTES, upload_paths={"/tissue": max_upload_bytes},
                 allowed_hosts=allowed_hosts)

