"""Where chunks run: in this process, or on Dask (a LocalCluster, or an existing scheduler) — same function.

Each chunk is one task that writes its own checkpoint; tasks return only the chunk's record (rows, size, SHA-256),
so memory on the driver does not grow with the trial. Inside a task the engine runs single-threaded (one task per worker
thread), which avoids oversubscription.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import contextmanager

import numpy as np

from chemomet.errors import InputError
from chemomet.trial.chunk import run_chunk
from chemomet.trial.spec import TrialSpec

Task = tuple[int, np.ndarray, np.ndarray]
"""(chunk number, enrolment positions, screening indices)."""


@contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None, client=None):
    """A Dask client: the one given, one connected to ``scheduler`` (an address such as
    ``tcp://host:8786``), or a new ``LocalCluster`` of ``workers`` single-threaded processes (closed on exit)."""
    if client is not None:
        yield client
        return
    from dask.distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            c = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError, ValueError) as err:
            raise InputError(
                f"--scheduler = {scheduler!r} is invalid ({type(err).__name__}); allowed: the address of a "
                "running Dask scheduler, e.g. tcp://host:8786"
            ) from None
        try:
            yield c
        finally:
            c.close()
        return
    import dask

    # Dask's default MALLOC_TRIM_THRESHOLD_ for workers turns off glibc's adaptive mmap threshold, so every
    # large NumPy temporary is mmapped and unmapped again: the engine runs ~3x slower. Workers we start go
    # without it (see docs/trials.md for clusters started elsewhere).
    environ = {
        k: v for k, v in dask.config.get("distributed.nanny.pre-spawn-environ").items() if k != "MALLOC_TRIM_THRESHOLD_"
    }
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
        cluster = LocalCluster(
            n_workers=int(workers or 1),
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        )
        c = Client(cluster)
        try:
            yield c
        finally:
            c.close()
            cluster.close()


def run_local(
    spec: TrialSpec,
    tasks: Sequence[Task],
    run_dir: str,
    progress: Callable[[int], None],
    on_chunk: Callable[[dict], None] | None = None,
) -> None:
    """Run the chunks one after another in this process; ``on_chunk(record)`` after each (see ``run_chunk``)."""
    for chunk, pos, idx in tasks:
        record = run_chunk(spec, chunk, pos, idx, run_dir)
        if on_chunk is not None:
            on_chunk(record)
        progress(1)


def run_dask(
    client,
    spec: TrialSpec,
    tasks: Sequence[Task],
    run_dir: str,
    progress: Callable[[int], None],
    on_chunk: Callable[[dict], None] | None = None,
) -> None:
    """Run the chunks as Dask tasks (one per chunk) and wait for all; a failed chunk raises its error.
    ``on_chunk(record)`` is called on the driver as each chunk finishes."""
    from dask.distributed import as_completed

    if not tasks:
        return
    spec_f = client.scatter(spec, broadcast=True)
    futures = [
        client.submit(run_chunk, spec_f, chunk, pos, idx, run_dir, pure=False, retries=1) for chunk, pos, idx in tasks
    ]
    try:
        for fut in as_completed(futures):
            record = fut.result()
            if on_chunk is not None:
                on_chunk(record)
            progress(1)
    finally:
        client.cancel(futures)
