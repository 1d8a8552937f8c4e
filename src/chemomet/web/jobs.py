"""Background work of the web app: slow tasks (an assessment, a trial) run in worker threads while the page polls
their progress; a cancellable task (a trial) can be stopped between its steps. Standard library only.
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

FINISHED = ("done", "failed", "cancelled")
"""The states a job ends in."""


class JobCancelled(Exception):
    """Raised inside a task (by its progress callback) when its job was cancelled; the job ends as ``cancelled``.

    Not a :class:`ValueError`, so code that turns bad input into messages does not swallow it.

    Examples
    --------
    >>> issubclass(JobCancelled, ValueError)
    False
    """


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
    state : {"queued", "running", "done", "failed", "cancelled"}
        Where it is.
    step : str
        The step it is on (shown under the progress bar).
    steps_done : int
        Steps started so far.
    result : dict or None
        What the task returned (e.g. ``{"record_id": 3}``).
    error : str or None
        The one-line message when it failed.
    cancellable : bool
        Whether :meth:`JobRunner.cancel` may stop it (a trial; not an assessment).
    cancel_requested : bool
        Set by :meth:`JobRunner.cancel`; the task stops at its next progress report.

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
    cancellable: bool = False
    cancel_requested: bool = False
    created: float = field(default_factory=time.monotonic)
    finished: float | None = None

    @property
    def fraction(self) -> float:
        """Progress from 0 to 1 (1 once done)."""
        if self.state == "done":
            return 1.0
        return min(self.steps_done / max(self.total_steps, 1), 0.97)

    @property
    def finished_state(self) -> bool:
        """Whether the job has ended (done, failed or cancelled)."""
        return self.state in FINISHED

    def status(self) -> dict:
        """The JSON the page polls: state, step, fraction, result, error and whether it can still be cancelled."""
        return {"id": self.id, "kind": self.kind, "state": self.state, "step": self.step,
                "fraction": round(self.fraction, 3), "result": self.result, "error": self.error,
                "cancellable": self.cancellable and not self.finished_state}


class Progress:
    """The progress callback a task gets: ``progress(step)`` starts a step; :meth:`set` reports a fraction of a
    long step (e.g. chunks of a trial). Both raise :class:`JobCancelled` once the job was cancelled.

    Parameters
    ----------
    job : Job
        The job it reports on.

    Examples
    --------
    >>> job = Job(id="abc", kind="trial", total_steps=10)
    >>> progress = Progress(job)
    >>> progress("reading the spec")
    >>> progress.set(5, 10, "chunk 5 of 10")
    >>> job.steps_done, job.step
    (5, 'chunk 5 of 10')
    >>> job.cancel_requested = True
    >>> progress.check()
    Traceback (most recent call last):
    ...
    chemomet.web.jobs.JobCancelled: cancelled
    """

    def __init__(self, job: Job):
        self.job = job

    def __call__(self, step: str) -> None:
        self.check()
        self.job.step = str(step)
        self.job.steps_done += 1

    def set(self, done: int, total: int, step: str) -> None:
        """Report ``done`` of ``total`` steps, with the text shown under the bar."""
        self.check()
        self.job.total_steps = max(int(total), 1)
        self.job.steps_done = int(done)
        self.job.step = str(step)

    def check(self) -> None:
        """Raise :class:`JobCancelled` when the job was cancelled."""
        if self.job.cancel_requested:
            raise JobCancelled("cancelled")


class JobRunner:
    """Runs tasks in a small pool of worker threads and keeps their :class:`Job` records.

    A task is ``fn(progress)``: it calls ``progress(step)`` at the start of each step (a :class:`Progress`) and
    returns a dict (the job's result). A :class:`ValueError` (an :class:`~chemomet.errors.InputError` among them)
    becomes the job's error message; any other exception a generic one (its text is not logged, as it may hold
    patient data). A cancellable job stops at its task's next progress report after :meth:`cancel`.

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

    def submit(self, kind: str, fn: Callable[[Progress], dict], total_steps: int, cancellable: bool = False) -> Job:
        """Queue ``fn`` and return its job at once (``cancellable``: :meth:`cancel` may stop it)."""
        job = Job(id=secrets.token_urlsafe(12), kind=kind, total_steps=total_steps, cancellable=cancellable)
        event = threading.Event()
        with self._lock:
            self._jobs[job.id] = job
            self._done[job.id] = event
            while len(self._jobs) > KEEP_JOBS:
                old, _ = self._jobs.popitem(last=False)
                self._done.pop(old, None)

        progress = Progress(job)

        def run() -> None:
            if job.cancel_requested:  # cancelled while it waited for a worker
                job.state, job.step, job.finished = "cancelled", "cancelled before it started", time.monotonic()
                event.set()
                return
            job.state, job.step = "running", "starting"
            log.info("job %s (%s) started", job.id, kind)
            try:
                job.result = fn(progress)
                job.state = "done"
                job.step = "done"
            except JobCancelled:
                job.state, job.step = "cancelled", f"cancelled at: {job.step}"
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

    def cancel(self, job_id: str) -> Job | None:
        """Ask a cancellable job to stop: a queued one never starts, a running one stops at its next progress
        report; a finished or non-cancellable job is left as it is. Returns the job (None when unknown).

        Examples
        --------
        >>> import threading
        >>> runner, release = JobRunner(workers=1), threading.Event()
        >>> def task(progress):
        ...     release.wait(10)
        ...     progress("second step")
        ...     return {}
        >>> job = runner.submit("demo", task, total_steps=2, cancellable=True)
        >>> _ = runner.cancel(job.id); release.set()
        >>> runner.wait(job.id, timeout=10).state
        'cancelled'
        >>> runner.shutdown()
        """
        job = self.get(job_id)
        if job is not None and job.cancellable and not job.finished_state:
            job.cancel_requested = True
            log.info("job %s (%s) cancel requested", job.id, job.kind)
        return job

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
