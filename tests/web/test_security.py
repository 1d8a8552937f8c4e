"""Security of the web app: the token off loopback, upload limits, file names, the CSP and escaping."""

from __future__ import annotations

import re
import threading
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest

from chemomet.web.app import create_app
from chemomet.web.security import CSP
from tests.web.helpers import CELLS, MARKUP, PATIENT, client, free_port, start_serve, stop_serve, wait_listening

TOKEN = "t0ken-for-the-tests-0123456789"


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text inside script elements."""

    def __init__(self, text):
        super().__init__()
        self.tags, self.scripts, self._in_script = [], [], False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"
        if tag == "script":
            self.scripts.append(dict(attrs))

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script and data.strip():
            raise AssertionError(f"inline script found: {data[:80]!r}")


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------------------------- the token


def test_with_a_token_every_request_without_it_gets_401(tmp_path):
    app = create_app(tmp_path / "s.sqlite", token=TOKEN)
    with client(app) as c:
        for path in ("/patient", "/studies", "/studies/export.csv", "/studies/export.parquet", "/tissue", "/trial",
                     "/trials/1", "/trials/1/figures/km_dmfs.png", "/static/app.js", "/assessments/1"):
            r = c.get(path)
            assert r.status_code == 401, path
            assert "web-p1" not in r.text
        assert c.post("/assess", data=PATIENT).status_code == 401
        trial = {"example": "nact_vs_rebastinib_allcomers", "patients_per_arm": "10"}
        assert c.post("/trial", data=trial).status_code == 401
        assert not app.app.state.trial_jobs.get("x") and not list(tmp_path.glob("*.trials"))
        assert c.get("/patient", headers={"Authorization": "Bearer wrong-token-wrong-token"}).status_code == 401
        assert c.get("/patient", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        # ?token= sets an HttpOnly cookie and redirects to the address without the token
        r = c.get(f"/studies?token={TOKEN}", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/studies"
        assert "HttpOnly" in r.headers["set-cookie"] and "SameSite=Strict" in r.headers["set-cookie"]
        assert c.get("/studies").status_code == 200  # the cookie now carries it
    assert not list(tmp_path.glob("*.uploads"))


def test_serve_on_a_non_loopback_host_makes_a_token_and_refuses_requests_without_it(tmp_path):
    """The real command: `chemomet serve --host 0.0.0.0` prints a token once and answers 401 without it."""
    port = free_port()
    proc = start_serve(port, tmp_path / "s.sqlite", "--host", "0.0.0.0")
    try:
        token = None
        deadline = time.monotonic() + 30
        while token is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                break
            m = re.search(r"\?token=(\S+)", line)
            token = m.group(1) if m else None
        assert token, "no token printed"
        base = f"http://127.0.0.1:{port}"
        assert wait_listening(proc, base + "/patient") == 401
        req = urllib.request.Request(base + "/patient", headers={"Authorization": f"Bearer {token}"})
        assert urllib.request.urlopen(req, timeout=5).status == 200
    finally:
        stop_serve(proc)


def test_loopback_without_token_refuses_other_host_names_and_cross_site_posts(tmp_path):
    app = create_app(tmp_path / "s.sqlite")
    with client(app) as c:
        assert c.get("/patient").status_code == 200
        assert c.get("/patient", headers={"host": "localhost:8765"}).status_code == 200
        assert c.get("/patient", headers={"host": "evil.example:8765"}).status_code == 421  # DNS rebinding
        r = c.post("/assess", data=PATIENT, headers={"origin": "http://evil.example"}, follow_redirects=False)
        assert r.status_code == 403
        r = c.post("/trial", data={"example": "nact_vs_rebastinib_allcomers", "patients_per_arm": "10"},
                   headers={"origin": "http://evil.example"}, follow_redirects=False)
        assert r.status_code == 403
        assert c.post("/jobs/x/cancel", headers={"origin": "http://evil.example"}).status_code == 403
    assert not StudyStoreRecords(tmp_path / "s.sqlite")


def StudyStoreRecords(path):
    from chemomet.web.store import StudyStore

    return StudyStore(path).records()


# ------------------------------------------------------------------------------------------------- uploads


def test_an_upload_over_the_limit_gets_413_and_leaves_nothing_on_disk(tmp_path):
    store = tmp_path / "store" / "s.sqlite"
    app = create_app(store, max_upload_bytes=10_000)
    big = b"x,y,radius,cell_type\n" + b"1,1,5,Tumor\n" * 5000  # 60 kB
    with client(app) as c:
        before = set(_files(tmp_path))
        r = c.post("/tissue", files={"cells": ("big.csv", big, "text/csv")})
        assert r.status_code == 413
        # streamed without a Content-Length (chunked): refused while it comes in

        def chunks():
            yield b"--B\r\nContent-Disposition: form-data; name=\"cells\"; filename=\"big.csv\"\r\n\r\n"
            for _ in range(20):
                yield big[:4000]
            yield b"\r\n--B--\r\n"

        r = c.post("/tissue", content=chunks(), headers={"content-type": "multipart/form-data; boundary=B"})
        assert r.status_code == 413
        assert set(_files(tmp_path)) == before  # the store only, no upload
        assert not any(p.is_file() for p in (store.parent / "s.sqlite.uploads").rglob("*"))
        # the patient file upload has its own (form) limit
        r = c.post("/patient/load", files={"patient_file": ("p.toml", b"#" * 3_000_000, "text/plain")})
        assert r.status_code == 413
        # and the trial form its own, below the form parser's spooling threshold: a spec never reaches the disk
        r = c.post("/trial", files={"spec_file": ("s.toml", b"#" * 600_000, "application/toml")},
                   data={"patients_per_arm": "10"})
        assert r.status_code == 413
        assert not app.app.state.trial_jobs.get("x") and not (store.parent / "s.sqlite.trials").exists()


def test_a_path_traversal_file_name_is_neutralised(tmp_path):
    store = tmp_path / "a" / "b" / "s.sqlite"
    app = create_app(store)
    with client(app) as c:
        r = c.post("/tissue", files={"cells": ("../../../../evil.csv", CELLS.encode(), "text/csv")},
                   data={"preset": "generic", "convention": "10HPF"})
    assert r.status_code == 200, r.text
    assert 'id="tissue-file">evil.csv<' in r.text
    assert 'id="tissue-score">1<' in r.text
    assert not list(tmp_path.rglob("evil.csv"))
    assert not (tmp_path.parent / "evil.csv").exists()
    assert not any(p.is_file() for p in (store.parent / "s.sqlite.uploads").rglob("*"))  # deleted once scored


@pytest.mark.parametrize("name,content", [("cells.exe", b"MZ\x90\x00"), ("cells.csv", b"\x00\x01\x02binary"),
                                          ("cells.parquet", b"x,y\n1,2\n")])
def test_an_upload_of_the_wrong_type_is_refused(tmp_path, name, content):
    with client(create_app(tmp_path / "s.sqlite")) as c:
        r = c.post("/tissue", files={"cells": (name, content, "application/octet-stream")})
    assert r.status_code == 422
    assert 'id="tissue-error"' in r.text
    assert not any(p.is_file() for p in (tmp_path / "s.sqlite.uploads").rglob("*"))


# ------------------------------------------------------------------------------------------ CSP and escaping


def test_every_page_carries_a_csp_without_inline_scripts(web):
    app, _, url = web
    assert "'unsafe-inline'" not in re.search(r"script-src[^;]*", CSP).group(0)
    assert "'unsafe-eval'" not in CSP
    release = threading.Event()
    job = app.app.state.jobs.submit("test", lambda progress: (release.wait(10), {})[1], total_steps=1)
    with client(app) as c:
        pages = [c.get(f"/jobs/{job.id}")]  # the progress page of a running job
        assert 'id="job-progress"' in pages[0].text
        release.set()
        pages += [c.get(p) for p in ("/patient", "/patient?example=1", "/studies", "/tissue", "/trial", url,
                                     "/nowhere")]
        pages.append(c.post("/trial", data={"spec_text": "name = = 1", "patients_per_arm": "10"}))
        pages.append(c.post("/assess", data={**PATIENT, "age": "12"}))
        pages.append(c.post("/tissue", files={"cells": ("c.csv", CELLS.encode(), "text/csv")}))
        for r in pages:
            csp = r.headers["content-security-policy"]
            script_src = re.search(r"script-src([^;]*)", csp).group(1)
            assert "'unsafe-inline'" not in script_src and "'self'" in script_src, r.url
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["x-frame-options"] == "DENY"
            if r.headers.get("content-type", "").startswith("text/html"):
                tags = Tags(r.text)
                assert all("src" in s for s in tags.scripts), r.url
                assert not any(k.startswith("on") for _, attrs in tags.tags for k in attrs), r.url  # no onclick=
        # the downloaded report keeps its own CSP (its one script allowed by hash) and is an attachment
        report = c.get(url + "/report.html")
        assert report.headers["content-disposition"].startswith("attachment")
        assert "'unsafe-inline'" not in re.search(r"script-src([^;]*)", report.headers["content-security-policy"])[1]


def test_markup_in_form_fields_is_escaped(web):
    app, _, url = web  # its patient id and study id hold markup
    with client(app) as c:
        # rejected values are shown back escaped, in the input and in the inline message
        r = c.post("/assess", data={**PATIENT, "age": MARKUP, "ki67_percent": MARKUP, "study_id": MARKUP[:70]})
        assert r.status_code == 422
        assert "<script>alert" not in r.text and "<img src=x" not in r.text
        assert "&lt;script&gt;" in r.text
        # an accepted patient id and study id with markup: escaped on the assessment page and the study list
        for page in (c.get(url), c.get("/studies"), c.get("/studies?study=%3Cb%3ES%3C%2Fb%3E")):
            assert page.status_code == 200
            assert "<script>alert" not in page.text and "<img src=x" not in page.text and "<b>S</b>" not in page.text
            assert "&lt;b&gt;S&lt;/b&gt;" in page.text
        # and a pasted patient file with markup
        text = 'age = 50\ndiameter_mm = 20\ner = "positive"\nid = "<script>alert(1)</script>"'
        r = c.post("/patient/load", data={"patient_text": text})
        assert r.status_code == 200, r.text
        assert "<script>alert" not in r.text and "&lt;script&gt;alert(1)" in r.text
