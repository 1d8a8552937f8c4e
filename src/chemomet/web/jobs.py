"""Background work of the web app: slow tasks (an assessment) run in worker threads while the page polls their
progress. Standard library only.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

log = logging.getLogger("chemomet.web")

KEEP_JOBS = 500
"""Finished jobs remembered (oldest forgotten first); their results stay in the study store."""


@dataclass
class Job:
    """One background task and how far it got.

    Attributes
    ----------
    id : str
        Random, unguessable id (its address is ``/jobs/<id>``).
    kind : str
        What it does, e.g. ``"assessment"``.
    total_steps : int
        Steps it is expected to report (for the progress fraction).
    state : {"queued", "running", "done", "failed"}
        Where it is.
    step : str
        The step it is on (shown under the progress bar).
    steps_done : int
        Steps started so far.
    result : dict or None
        What the task returned (e.g. ``{"record_id": 3}``).
    error : str or None
        The one-line message when it failed.

    Examples
    --------
    >>> job = Job(id="abc", kind="assessment", total_steps=4)
    >>> job.state, job.fraction
    ('queued', 0.0)
    """

    id: str
    kind: str
    total_steps: int
    state: str = "queued"
    step: str = "waiting for a free worker"
    steps_done: int = 0
    result: dict | None = None
    error: str | None = None
    created: float = field(default_factory=time.monotonic)
    finished: float | None = None

    @property
    def fraction(self) -> float:
        """Progress from 0 to 1 (1 once done)."""
        if self.state == "done":
            return 1.0
        return min(self.steps_done / max(self.total_steps, 1), 0.97)

    def status(self) -> dict:
        """The JSON the page polls: state, step, fraction, result and error."""
        return {"id": self.id, "kind": self.kind, "state": self.state, "step": self.step,
                "fraction": round(self.fraction, 3), "result": self.result, "error": self.error}


class JobRunner:
    """Runs tasks in a small pool of worker threads and keeps their :class:`Job` records.

    A task is ``fn(progress)``: it calls ``progress(step)`` at the start of each step and returns a dict (the
    job's result). A :class:`ValueError` (an :class:`~chemomet.errors.InputError` among them) becomes the job's
    error message; any other exception a generic one (its text is not logged, as it may hold patient data).

    Parameters
    ----------
    workers : int, default 1
        Tasks run at the same time; the others wait their turn.

    Examples
    --------
    >>> runner = JobRunner(workers=1)
    >>> job = runner.submit("demo", lambda progress: (progress("adding"), {"sum": 1 + 1})[1], total_steps=1)
    >>> runner.wait(job.id, timeout=10).result
    {'sum': 2}
    >>> runner.shutdown()
    """

    def __init__(self, workers: int = 1):
        self.workers = max(int(workers), 1)
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="chemomet-job")
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._done: dict[str, threading.Event] = {}
        self._closed = False

    def submit(self, kind: str, fn: Callable[[Callable[[str], None]], dict], total_steps: int) -> Job:
        """Queue ``fn`` and return its job at once."""
        job = Job(id=secrets.token_urlsafe(12), kind=kind, total_steps=total_steps)
        event = threading.Event()
        with self._lock:
            self._jobs[job.id] = job
            self._done[job.id] = event
            while len(self._jobs) > KEEP_JOBS:
                old, _ = self._jobs.popitem(last=False)
                self._done.pop(old, None)

        def progress(step: str) -> None:
            job.step = str(step)
            job.steps_done += 1

        def run() -> None:
            job.state, job.step = "running", "starting"
            log.info("job %s (%s) started", job.id, kind)
            try:
                job.result = fn(progress)
                job.state = "done"
                job.step = "done"
            except ValueError as err:
                job.error, job.state = str(err), "failed"
            except Exception as err:  # noqa: BLE001 - a worker must never die silently
                job.error, job.state = f"internal error ({type(err).__name__}); nothing was recorded", "failed"
                log.error("job %s (%s) failed: %s", job.id, kind, type(err).__name__)
            finally:
                job.finished = time.monotonic()
                log.info("job %s (%s) %s in %.1f s", job.id, kind, job.state, job.finished - job.created)
                event.set()

        with self._lock:
            if self._closed:  # the app was shut down and is serving again (a restarted lifespan): new workers
                self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="chemomet-job")
                self._closed = False
            self._pool.submit(run)
        return job

    def get(self, job_id: str) -> Job | None:
        """The job with this id, or None (unknown or forgotten)."""
        with self._lock:
            return self._jobs.get(job_id)

    def wait(self, job_id: str, timeout: float | None = None) -> Job | None:
        """Wait until the job has finished (or ``timeout`` seconds passed); returns it."""
        event = self._done.get(job_id)
        if event is not None:
            event.wait(timeout)
        return self.get(job_id)

    def shutdown(self) -> None:
        """Let running tasks finish, drop queued ones and stop the workers (a later :meth:`submit` starts new ones)."""
        with self._lock:
            pool, self._closed = self._pool, True
        pool.shutdown(wait=True, cancel_futures=True)
