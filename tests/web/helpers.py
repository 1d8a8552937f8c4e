"""Helpers of the web app's tests: a quick assessment setting, an in-process client, a real server."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

FAST = {"sampling.n_twins": 1000, "sampling.n_simulated": 256, "sampling.n_trajectories": 64, "sampling.n_drivers": 0}
"""Test-only assessment settings: about 2 s instead of tens of seconds (less precise, same code path)."""

PATIENT = {"id": "web-p1", "age": "47", "diameter_mm": "28", "grade": "3", "er": "positive", "pr": "positive",
           "her2": "negative", "ki67_percent": "35", "tmem_score": "32", "tmem_convention": "10HPF",
           "ctc_count": "1", "morphology": ["alveolar", "solid"]}
"""A valid patient form (the example patient's values)."""

CELLS = "x,y,radius,cell_type\n0,0,5,Tumor\n10,0,5,Macrophage\n5,8,5,Endothelial\n40,40,5,Tumor\n"
"""A tiny cell table in the generic preset's layout (µm): one doorway."""


MARKUP = '<script>alert("x")</script><img src=x onerror=alert(1)>'
"""Text that would run as a script if a page did not escape it."""


def client(app):
    """A test client that talks to the app as a loopback browser would."""
    from starlette.testclient import TestClient

    return TestClient(app, base_url="http://127.0.0.1")


def wait_job(c, location: str, timeout: float = 60.0) -> dict:
    """Poll a job's status until it is done or failed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = c.get(location + "/status").json()
        if status["state"] in ("done", "failed"):
            return status
        time.sleep(0.2)
    raise AssertionError(f"job {location} did not finish within {timeout} s")


def free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThreadServer:
    """A real uvicorn server in a thread (for the browser tests)."""

    def __init__(self, app, port: int):
        import uvicorn

        self.port = port
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                                    access_log=False, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=20)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_serve(port: int, store, *args: str, env: dict | None = None, stderr=subprocess.PIPE) -> subprocess.Popen:
    """A real ``chemomet serve --port PORT --store STORE ARGS...`` in its own process (the installed command line, as
    a user starts it); stderr is a text pipe unless given. Stop it with :func:`stop_serve`."""
    env = {k: v for k, v in os.environ.items() if k != "CHEMOMET_TOKEN"} if env is None else env
    return subprocess.Popen(
        [sys.executable, "-c", "from chemomet.cli import main; main()", "serve", "--port", str(port), "--store",
         str(store), *args], stderr=stderr, stdout=subprocess.DEVNULL, text=True, env=env)


def wait_listening(proc: subprocess.Popen, url: str, timeout: float = 30.0) -> int:
    """Poll ``url`` until the server answers; returns the HTTP status of the first answer (an error status too)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited with status {proc.returncode} before it answered")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.status
        except urllib.error.HTTPError as err:
            return err.code
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"the server did not answer {url} within {timeout} s")


def stop_serve(proc: subprocess.Popen) -> None:
    """Stop a server of :func:`start_serve` (SIGTERM, then SIGKILL) and close its pipe; it may already be gone."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)
    if proc.stderr is not None:
        proc.stderr.close()
