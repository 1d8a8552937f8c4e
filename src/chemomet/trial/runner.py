"""`run_trial`: screen, simulate in checkpointed chunks (locally or on Dask), then analyse and draw.

Run directory layout::

    OUT/run.lock             the process running in the folder (one run at a time; a stale lock is taken over)
    OUT/manifest.json        spec hash, chunk size, number of chunks (a resume with another spec is refused), and
                             the size and SHA-256 of every chunk file written
    OUT/chunks/chunk-NNNNNN.parquet   one checkpoint per chunk (all replicates), written atomically
    OUT/patients.parquet     patient-level results of the trial (replicate 0)
    OUT/summary.json         the statistics; OUT/km_<endpoint>.png, OUT/forest.png, OUT/power.png,
                             OUT/replication.png (a spec with published results: model vs published)

A resumed run verifies every chunk file against its record and skips it; a damaged chunk is recomputed on its own,
with a warning (:mod:`chemomet.trial.rundir`).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import ValidationError

from chemomet.errors import InputError, printable, validation_error
from chemomet.fileio import atomic_write, check_output_dir
from chemomet.mechanisms import describe_mechanisms
from chemomet.trial import analysis, plots, replication
from chemomet.trial.execute import dask_client, run_dask, run_local
from chemomet.trial.progress import ChunkProgress
from chemomet.trial.rundir import (
    RunLock,
    assemble_patients,
    chunk_files,
    prepare_run_dir,
    read_columns,
    save_manifest,
    verify_chunks,
)
from chemomet.trial.screening import screen
from chemomet.trial.spec import RULES, TIME_TO_EVENT, DesignComparison, Execution, TrialSpec, read_trial_spec

log = logging.getLogger("chemomet.trial")
MANIFEST_SAVE_SECONDS = 1.0
"""Least time between two saves of the manifest's chunk records while chunks finish (and once at the end)."""


@dataclass
class TrialResult:
    """What :func:`run_trial` produced: the summary (JSON-ready dict), the run directory and its files.

    Attributes
    ----------
    summary : dict
        The statistics, as written to ``summary.json``: arms, endpoints (hazard ratios, RMST differences in
        days, pCR, TMEM change), subgroups, power, screening and run information; for a design comparison,
        ``{"name": ..., "designs": [summary, ...]}``.
    out : pathlib.Path
        The run directory.
    files : dict[str, pathlib.Path]
        The files written: ``patients``, ``summary`` and the figures (``km_<endpoint>``, ``forest``, ``power``).

    Examples
    --------
    A result is normally returned by :func:`run_trial`; here one is assembled by hand:

    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp())
    >>> pd.DataFrame({"arm": [0, 1], "pcr": [True, False]}).to_parquet(out / "patients.parquet")
    >>> result = TrialResult({"name": "demo"}, out, {"patients": out / "patients.parquet"})
    >>> result.patients.shape  # read from patients.parquet
    (2, 2)
    """

    summary: dict
    out: Path
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def patients(self) -> pd.DataFrame:
        """The patient-level table of the trial (read from ``patients.parquet``)."""
        return pd.read_parquet(self.files["patients"])


@contextmanager
def _plain_text():
    """Figures draw the spec's text (trial, arm and level names) as it is: a '$...$' in a name is not parsed as
    mathtext, which could fail after the whole simulation, and a control character in a name is drawn as a missing
    glyph without a warning (whose text would carry the raw character to the terminal)."""
    import warnings

    import matplotlib

    with matplotlib.rc_context({"text.parse_math": False}), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        yield


def slug(name: str) -> str:
    """A file-name-safe version of a trial name."""
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower() or "trial"


def run_trial(
    spec: TrialSpec | DesignComparison | str | Path,
    *,
    out: str | Path | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    client=None,
    resume: bool = True,
    chunk_size: int | None = None,
    progress: bool | Callable[[int, int], None] | None = None,
    figures: bool = True,
) -> TrialResult:
    """Run a virtual trial (or a design comparison) and write its outputs to ``out``.

    Screens virtual patients against the eligibility criteria, simulates every arm (and every power replicate)
    in checkpointed chunks, then analyses the endpoints and draws the figures. Results depend on the spec and
    its seed only, not on ``workers``, ``chunk_size`` or resuming.

    Parameters
    ----------
    spec : TrialSpec, DesignComparison, str or pathlib.Path
        The trial, a design comparison, or the path of a spec TOML file (:func:`read_trial_spec`).
    out : str or pathlib.Path, optional
        Run directory (default ``./trial-<name>``); an existing run of the same spec is resumed. It is created
        and proven writable before any work, and locked for the run (``OUT/run.lock``): a second run into the
        same folder is refused; a lock left by a killed run is taken over.
    workers : int, optional
        None or 1 runs chunks in this process; K >= 2 (up to 512) starts a Dask ``LocalCluster`` of K
        single-threaded worker processes.
    scheduler : str, optional
        Address of a running Dask scheduler (the run directory must then be on a file system the workers
        share); not together with ``workers`` >= 2.
    client : dask.distributed.Client, optional
        An existing Dask client.
    resume : bool, default True
        Keep finished chunk checkpoints; False starts over.
    chunk_size : int, optional
        Patients per chunk (16 to 1000000; default: the spec's ``execution.chunk_size``); results do not
        depend on it.
    progress : bool or callable, optional
        True for a progress bar on standard error, or a callback ``progress(done, total)`` (chunks).
    figures : bool, default True
        Write the KM, forest and power figures (PNG).

    Returns
    -------
    TrialResult
        The summary dict (also in ``summary.json``) and the paths of the files written.

    Raises
    ------
    InputError
        For an invalid spec file, ``workers``, ``chunk_size``, both ``workers`` and ``scheduler``, an ``out`` that
        is a file or cannot be written, or a folder in use by another run.

    Examples
    --------
    A full trial takes minutes, so these lines are shown, not run:

    >>> from chemomet.trial import run_trial
    >>> result = run_trial("examples/trials/nact_vs_rebastinib_allcomers.toml", workers=2)  # doctest: +SKIP
    >>> sorted(result.files)  # doctest: +SKIP
    ['forest', 'km_dmfs', 'km_drfi', 'patients', 'summary']
    >>> hr = result.summary["endpoints"]["dmfs"]["comparisons"][0]  # doctest: +SKIP
    >>> hr["arm"], hr["versus"], sorted(hr)[:3]  # doctest: +SKIP
    ('NACT + rebastinib', 'NACT', ['arm', 'ci_lower', 'ci_upper'])
    """
    if isinstance(spec, str | Path):
        spec = read_trial_spec(spec)
    if workers is not None and (isinstance(workers, bool) or not 1 <= workers <= 512):
        raise InputError(f"--workers = {workers!r} is invalid; allowed: an integer from 1 to 512 (unit: processes)")
    if workers is not None and workers > 1 and scheduler is not None:
        raise InputError("--workers and --scheduler were both given; allowed: one of them")
    if chunk_size is not None:  # the option follows the rule of the spec's field (0 is refused, not ignored)
        try:
            Execution(chunk_size=chunk_size)
        except ValidationError as err:
            raise validation_error(err, "--chunk-size", RULES) from None
    out = Path(out) if out is not None else Path.cwd() / f"trial-{slug(spec.name)}"
    created = check_output_dir(out, "--out")  # the output layer: created and written to before any work
    kw = dict(resume=resume, chunk_size=chunk_size, progress=progress, figures=figures)
    use_dask = client is not None or scheduler is not None or (workers or 1) > 1
    try:
        with RunLock(out):
            if not use_dask:
                return _dispatch(spec, out, None, **kw)
            with dask_client(workers, scheduler, client) as c:  # one cluster for every design of a comparison
                return _dispatch(spec, out, c, **kw)
    except InputError:
        if created:  # bad input found late (e.g. nobody eligible): leave no folder behind
            shutil.rmtree(out, ignore_errors=True)
        raise


def _dispatch(spec: TrialSpec | DesignComparison, out: Path, client, **kw) -> TrialResult:
    if isinstance(spec, DesignComparison):
        return _run_comparison(spec, out, client, **kw)
    return _run_one(spec, out, client, **kw)


def _run_one(spec: TrialSpec, out: Path, client, *, resume, chunk_size, progress, figures) -> TrialResult:
    t0 = time.perf_counter()
    cs = int(spec.execution.chunk_size if chunk_size is None else chunk_size)
    population = spec.make_population()
    index, screened = screen(spec, population)
    n = spec.n_enrolled
    n_chunks = -(-n // cs)
    manifest = prepare_run_dir(out, spec, cs, n_chunks, resume)
    todo, damaged = verify_chunks(out, manifest)
    for name in damaged:
        where = printable(str(out / "chunks"), 240)
        log.warning(f"warning: {where}: checkpoint {printable(name, 240)} is damaged; recomputing that chunk alone")
    save_manifest(out, manifest)
    tasks = []
    for c in todo:
        lo, hi = c * cs, min((c + 1) * cs, n)
        tasks.append((c, np.arange(lo, hi, dtype=np.int64), index[lo:hi]))
    bar = ChunkProgress(n_chunks, n_chunks - len(tasks), progress)
    saved = time.monotonic()

    def record(rec: dict) -> None:  # keep each chunk's size and digest in the manifest (saved at most once a second)
        nonlocal saved
        manifest["chunks"][rec["name"]] = {"size": rec["size"], "sha256": rec["sha256"]}
        if time.monotonic() - saved >= MANIFEST_SAVE_SECONDS:
            save_manifest(out, manifest)
            saved = time.monotonic()

    t_sim = time.perf_counter()
    if client is None:
        run_local(spec, tasks, str(out), bar, record)
    else:
        run_dask(client, spec, tasks, str(out), bar, record)
    t_sim = time.perf_counter() - t_sim
    save_manifest(out, manifest)
    files = chunk_files(out, n_chunks)
    written = {"patients": out / "patients.parquet"}
    n_patients = assemble_patients(files, spec, written["patients"])
    with _plain_text():
        summary, extra = _analyse(spec, written["patients"], files, out, figures)
    written.update(extra)
    summary["screening"] = {
        "screened": screened,
        "eligible_fraction": n / screened if screened else None,
        "enrolled_all_replicates": n,
        "patients": n_patients,
    }
    summary["run"] = {
        "chunks": n_chunks,
        "chunks_computed": len(tasks),
        "chunks_recomputed": len(damaged),
        "chunk_size": cs,
        "executor": "local" if client is None else "dask",
        "simulation_seconds": round(t_sim, 3),
        "wall_seconds": round(time.perf_counter() - t0, 3),
    }
    summary["files"] = {k: str(v) for k, v in written.items()}
    written["summary"] = out / "summary.json"
    summary["files"]["summary"] = str(written["summary"])
    atomic_write(written["summary"], lambda tmp: tmp.write_text(json.dumps(summary, indent=2, allow_nan=False)))
    return TrialResult(summary, out, written)


def _analyse(spec: TrialSpec, patients: Path, files: list[Path], out: Path, figures: bool) -> tuple[dict, dict]:
    cols = [
        "arm",
        "subtype",
        "tmem_high",
        "ctc_positive",
        "grade",
        "diameter_mm",
        "age",
        "alveolar_or_trabecular",
        "pcr",
        "tmem_log_ratio",
    ]
    cols += [f"{ep}_{x}" for ep in TIME_TO_EVENT for x in ("time_days", "event")]
    df = pd.read_parquet(patients, columns=cols)  # only what the analysis needs: bounded driver memory
    names = [a.name for a in spec.arms]
    summary = {
        "name": spec.name,
        "spec_hash": spec.spec_hash(),
        "seed": spec.seed,
        "mechanisms": describe_mechanisms(spec.make_population().settings.mechanisms, spec.mechanisms),
        "arms": [
            {
                "name": a.name,
                "strategy": s.name,
                "regimen": None if s.regimen is None else s.regimen.key,
                "n": int((df["arm"] == i).sum()),
            }
            for i, (a, s) in enumerate(zip(spec.arms, spec.strategies(), strict=True))
        ],
        "horizon_days": spec.horizon_days,
        "endpoints": {},
    }
    written: dict[str, Path] = {}
    for ep in spec.endpoints.include:
        if ep in TIME_TO_EVENT:
            res = analysis.survival_endpoint(df, ep, spec)
            curves = res.pop("_curves")
            if figures:
                written[f"km_{ep}"] = plots.plot_km(
                    curves, [printable(a) for a in names], ep, out / f"km_{ep}.png",
                    f"{printable(spec.name)}: {plots.LABELS[ep]}", res["comparisons"]
                )
        elif ep == "pcr":
            res = analysis.pcr_endpoint(df, spec)
        else:
            res = analysis.tmem_endpoint(df, spec)
        summary["endpoints"][ep] = res
    if spec.published:
        summary["published"] = replication.compare_published(df, spec)
        if figures:
            title = f"{printable(spec.name)}: model vs published"
            written["replication"] = plots.plot_replication(summary["published"], out / "replication.png", title)
    tte = [e for e in (spec.endpoints.primary, *spec.endpoints.include) if e in TIME_TO_EVENT]
    if tte and spec.analysis.subgroups:
        rows = analysis.subgroups(df, tte[0], spec)
        summary["subgroups"] = rows
        if figures and any(r["hazard_ratio"] is not None for r in rows):
            title = f"{printable(spec.name)}: subgroups ({tte[0]})"
            written["forest"] = plots.plot_forest(rows, out / "forest.png", title)
    del df
    if spec.power.replicates > 0:
        summary["power"] = power(spec, files)
        if figures:
            title = f"{printable(spec.name)}: power"
            written["power"] = plots.plot_power([("", summary["power"])], out / "power.png", title)
    return summary, written


def power(spec: TrialSpec, files: list[Path]) -> dict:
    """Power of the primary endpoint over the replicate trials stored in the chunk files."""
    ep = spec.endpoints.primary
    cols = ["replicate", "arm", "rank"] + (
        [f"{ep}_time_days", f"{ep}_event"] if ep in TIME_TO_EVENT else ["pcr" if ep == "pcr" else "tmem_log_ratio"]
    )
    return analysis.power_analysis(read_columns(files, cols), spec)


def _run_comparison(comp: DesignComparison, out: Path, client, **kw) -> TrialResult:
    out.mkdir(parents=True, exist_ok=True)
    results = [_run_one(spec, out / slug(spec.name), client, **kw) for spec in comp.specs]
    curves = [(r.summary["name"], r.summary["power"]) for r in results if "power" in r.summary]
    files: dict[str, Path] = {}
    summary = {"name": comp.name, "designs": [r.summary for r in results]}
    if curves and kw.get("figures", True):
        with _plain_text():
            files["power"] = plots.plot_power(curves, out / "power.png", printable(comp.name))
        summary["files"] = {"power": str(files["power"])}
    files["summary"] = out / "summary.json"
    atomic_write(files["summary"], lambda tmp: tmp.write_text(json.dumps(summary, indent=2, allow_nan=False)))
    return TrialResult(summary, out, files)


def run_replications(
    specs, out: str | Path, *, patients_per_arm: int | None = None, workers: int | None = None, figures: bool = True
) -> list[tuple[str, list[dict]]]:
    """Run replication specs and return their model-vs-published rows.

    Parameters
    ----------
    specs : list of str, pathlib.Path or TrialSpec
        Specs with ``[[published]]`` results (e.g. ``examples/trials/replicate_*.toml``).
    out : str or pathlib.Path
        Folder; each trial runs in ``out/<spec file stem or name>`` (resumed if already there).
    patients_per_arm : int, optional
        Shrink (or grow) every trial to this many patients per arm (patients); default: the spec's size.
    workers : int, optional
        Dask workers (see :func:`~chemomet.trial.run_trial`); default: this process.
    figures : bool, default True
        Write each trial's figures (KM curves, ``replication.png``).

    Returns
    -------
    list of (str, list of dict)
        Each trial's name (with its size when shrunk) and :func:`~chemomet.trial.replication.compare_published` rows.

    Examples
    --------
    >>> run_replications(["examples/trials/replicate_nsabp_b18.toml"], "runs", patients_per_arm=100)  # doctest: +SKIP
    [('NSABP B-18 (model, 100 per arm)', [{'label': 'DFS hazard ratio', ...}, ...])]
    """
    results = []
    for item in specs:
        spec = read_trial_spec(item) if isinstance(item, str | Path) else item
        stem = Path(item).stem if isinstance(item, str | Path) else slug(spec.name)
        name = spec.name
        if patients_per_arm is not None and patients_per_arm != spec.patients_per_arm:
            spec = spec.model_copy(update={"patients_per_arm": int(patients_per_arm)})
            name = f"{name} ({patients_per_arm:,} per arm)"
        result = run_trial(spec, out=Path(out) / stem, workers=workers, figures=figures)
        results.append((name, result.summary.get("published", [])))
    return results
