"""A killed server restarted finds every completed record intact: a real ``chemomet serve`` process is SIGKILLed
while an assessment runs, then started again on the same store file."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request

from chemomet.web.store import StudyStore
from tests.web.helpers import FAST, PATIENT, free_port, start_serve, stop_serve, wait_listening


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _post_assessment(base: str, i: int) -> str:
    """POST the patient form to the real server; returns the job's address (the 303's Location)."""
    body = urllib.parse.urlencode({**PATIENT, "id": f"kill-{i}", "age": str(45 + i), "study_id": "KILL"},
                                  doseq=True).encode()
    req = urllib.request.Request(base + "/assess", data=body,
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        urllib.request.build_opener(_NoRedirect).open(req, timeout=30)
    except urllib.error.HTTPError as err:  # the 303 is not followed
        assert err.code == 303, err.read()[:300]
        return err.headers["location"]
    raise AssertionError("no redirect to the job")


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_a_killed_server_restarted_finds_every_completed_record_intact(tmp_path):
    store = tmp_path / "study.sqlite"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = [arg for key, value in FAST.items() for arg in ("--set", f"{key}={value}")]
    log = (tmp_path / "serve.log").open("w")
    proc = start_serve(port, store, "--workers", "1", *settings, stderr=log)
    try:
        assert wait_listening(proc, base + "/studies") == 200
        # one worker runs them in turn; several, because an assessment takes about a second and one poll may miss
        # the moment when a single second job is running
        jobs = [_post_assessment(base, i) for i in range(1, 7)]
        done: dict[str, dict] = {}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            states = {job: json.loads(_get(base + job + "/status")[1]) for job in jobs}
            done = {job: s for job, s in states.items() if s["state"] == "done"}
            assert not [s for s in states.values() if s["state"] in ("failed", "cancelled")], states
            if done and any(s["state"] == "running" for s in states.values()):
                break
            time.sleep(0.02)
        # some done, one running (started, not finished), the rest queued
        running = [job for job, s in states.items() if s["state"] == "running"]
        assert done and len(running) == 1, states
        # what the server gave out for the completed one, read back before the kill
        served = {s["result"]["record_id"]: _get(base + s["result"]["url"] + "/assessment.json")[1]
                  for s in done.values()}
        proc.kill()  # SIGKILL: no shutdown, no cleanup
        assert proc.wait(timeout=20) == -9
    finally:
        stop_serve(proc)
    # the store file as the killed server left it (its write-ahead log included)
    kept = StudyStore(store)
    assert kept.verify() >= len(done)
    for rid, body in served.items():
        rec = kept.get(rid)
        assert rec is not None and rec.kind == "assessment" and rec.study_id == "KILL"
        assert rec.outputs_json.encode() == body  # the outputs, byte for byte as served
        assert rec.outputs["recommendation"]["strategy"]
    # restarted on the same store (and port): serves the study list with the completed record and its page
    proc = start_serve(port, store, "--workers", "1", *settings, stderr=log)
    try:
        assert wait_listening(proc, base + "/studies") == 200
        code, page = _get(base + "/studies")
        assert code == 200
        for rid in served:
            assert f'id="record-{rid}"'.encode() in page
            assert _get(f"{base}/assessments/{rid}")[0] == 200
            assert _get(f"{base}/assessments/{rid}/assessment.json") == (200, served[rid])
        # the killed server's jobs are gone, not pretended: the one in flight is unknown
        assert _get(base + running[0] + "/status") == (404, b'{"state":"unknown"}')
    finally:
        stop_serve(proc)
        log.close()
    # nothing half-written: the completed record, and the one in flight only if it was committed whole before the kill
    records = StudyStore(store).records()
    assert StudyStore(store).verify() == len(records) and len(served) <= len(records) <= len(jobs)
    assert all(r.outputs["recommendation"]["strategy"] for r in records)
