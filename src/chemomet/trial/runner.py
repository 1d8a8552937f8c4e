"""`run_trial`: screen, simulate in checkpointed chunks (locally or on Dask), then analyse and draw.

Run directory layout::

    OUT/manifest.json        spec hash, chunk size, number of chunks (a resume with another spec is refused)
    OUT/chunks/chunk-NNNNNN.parquet   one checkpoint per chunk (all replicates), written atomically
    OUT/patients.parquet     patient-level results of the trial (replicate 0)
    OUT/summary.json         the statistics; OUT/km_<endpoint>.png, OUT/forest.png, OUT/power.png

A resumed run skips every chunk whose checkpoint exists; a chunk is either complete or absent.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from chemomet.errors import InputError
from chemomet.fileio import atomic_write
from chemomet.trial import analysis, plots
from chemomet.trial.chunk import chunk_path
from chemomet.trial.execute import dask_client, run_dask, run_local
from chemomet.trial.screening import screen
from chemomet.trial.spec import TIME_TO_EVENT, DesignComparison, TrialSpec, read_trial_spec

MANIFEST_FORMAT = 1


@dataclass
class TrialResult:
    """What :func:`run_trial` produced: the summary (JSON-ready dict), the run directory and its files."""

    summary: dict
    out: Path
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def patients(self) -> pd.DataFrame:
        """The patient-level table of the trial (read from ``patients.parquet``)."""
        return pd.read_parquet(self.files["patients"])


def slug(name: str) -> str:
    """A file-name-safe version of a trial name."""
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower() or "trial"


class _Progress:
    """A one-line progress bar on standard error (or a callback ``progress(done, total)``)."""

    def __init__(self, total: int, done: int, mode):
        self.total, self.done, self.mode, self.t0 = total, done, mode, time.perf_counter()
        self.start = done
        self._show()

    def __call__(self, k: int) -> None:
        self.done += k
        self._show()

    def _show(self) -> None:
        if callable(self.mode):
            self.mode(self.done, self.total)
            return
        if not self.mode or self.total == 0:
            return
        frac = self.done / self.total
        run = self.done - self.start
        dt = time.perf_counter() - self.t0
        eta = dt / run * (self.total - self.done) if run else float("nan")
        bar = "#" * int(30 * frac)
        sys.stderr.write(f"\r  [{bar:<30}] {self.done}/{self.total} chunks, {dt:5.0f} s, ETA {eta:4.0f} s")
        if self.done == self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _prepare_run_dir(out: Path, spec: TrialSpec, chunk_size: int, n_chunks: int, resume: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / "manifest.json"
    chunks = out / "chunks"
    record = {
        "format": MANIFEST_FORMAT,
        "name": spec.name,
        "spec_hash": spec.spec_hash(),
        "chunk_size": chunk_size,
        "n_chunks": n_chunks,
        "n_enrolled": spec.n_enrolled,
        "spec": spec.model_dump(mode="json"),
    }
    if manifest.exists() and resume:
        old = json.loads(manifest.read_text())
        if old.get("spec_hash") != record["spec_hash"]:
            raise InputError(
                f"--out = {str(out)!r} holds a run of a different spec ({old.get('name')!r}, spec hash "
                f"{str(old.get('spec_hash'))[:12]} vs {record['spec_hash'][:12]}); allowed: the same spec to resume "
                "it, --fresh to start over, or another --out"
            )
        if old.get("chunk_size") != chunk_size:
            raise InputError(
                f"chunk_size = {chunk_size} differs from the run in {str(out)!r} ({old.get('chunk_size')}); "
                "allowed: the same chunk size to resume, or --fresh (unit: patients)"
            )
        chunks.mkdir(exist_ok=True)
        for p in chunks.glob(".chunk-*.tmp*.parquet"):  # half-written by a killed run: never renamed, so not a chunk
            p.unlink()
        return
    if chunks.exists():
        for p in chunks.glob("*chunk-*.parquet"):  # chunk files and temporary files of this layout only
            p.unlink()
    chunks.mkdir(exist_ok=True)
    for name in ("patients.parquet", "summary.json"):
        (out / name).unlink(missing_ok=True)
    atomic_write(manifest, lambda tmp: tmp.write_text(json.dumps(record, indent=2)))


def _chunk_files(out: Path, n_chunks: int) -> list[Path]:
    files = [chunk_path(out, c) for c in range(n_chunks)]
    missing = [f.name for f in files if not f.exists()]
    if missing:
        raise RuntimeError(f"{len(missing)} chunk checkpoints missing after the run (first: {missing[0]})")
    return files


def _assemble_patients(files: list[Path], spec: TrialSpec, path: Path) -> int:
    """Stream replicate 0 (the first ``patients_per_arm`` per arm) into one Parquet file; bounded memory."""
    n = 0

    def write(tmp: Path) -> None:
        nonlocal n
        writer = None
        try:
            for f in files:
                t = pq.read_table(f)
                df = t.to_pandas()
                df = df[(df["replicate"] == 0) & (df["rank"] < spec.patients_per_arm)]
                if df.empty:
                    continue
                tab = pa.Table.from_pandas(df, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, tab.schema)
                writer.write_table(tab)
                n += len(df)
        finally:
            if writer is not None:
                writer.close()

    atomic_write(path, write)
    return n


def _read_columns(files: list[Path], columns: list[str], filters=None) -> pd.DataFrame:
    parts = [pq.read_table(f, columns=columns, filters=filters).to_pandas() for f in files]
    return pd.concat(parts, ignore_index=True)


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

    Parameters
    ----------
    spec : a :class:`TrialSpec`, a :class:`DesignComparison` or the path of a spec TOML file.
    out : run directory (default ``./trial-<name>``); an existing run of the same spec is resumed.
    workers : None or 1 runs chunks in this process; K >= 2 starts a Dask ``LocalCluster`` of K
        single-threaded worker processes. scheduler : address of a running Dask scheduler (the run
        directory must then be on a file system the workers share). client : an existing Dask client.
    resume : keep finished chunk checkpoints (default); False starts over.
    chunk_size : patients per chunk (default: the spec's ``execution.chunk_size``); results do not depend on it.
    progress : True for a progress bar on standard error, or a callback ``progress(done, total)`` (chunks).
    figures : write the KM, forest and power figures.

    Returns
    -------
    TrialResult with the summary dict (also in ``summary.json``) and the paths of the files written.
    """
    if isinstance(spec, str | Path):
        spec = read_trial_spec(spec)
    if workers is not None and (isinstance(workers, bool) or not 1 <= workers <= 512):
        raise InputError(f"--workers = {workers!r} is invalid; allowed: an integer from 1 to 512 (unit: processes)")
    if workers is not None and workers > 1 and scheduler is not None:
        raise InputError("--workers and --scheduler were both given; allowed: one of them")
    out = Path(out) if out is not None else Path.cwd() / f"trial-{slug(spec.name)}"
    if out.exists() and not out.is_dir():
        raise InputError(f"--out = {str(out)!r} is a file; allowed: a folder for the run")
    kw = dict(resume=resume, chunk_size=chunk_size, progress=progress, figures=figures)
    use_dask = client is not None or scheduler is not None or (workers or 1) > 1
    if not use_dask:
        return _dispatch(spec, out, None, **kw)
    with dask_client(workers, scheduler, client) as c:  # one cluster for every design of a comparison
        return _dispatch(spec, out, c, **kw)


def _dispatch(spec: TrialSpec | DesignComparison, out: Path, client, **kw) -> TrialResult:
    if isinstance(spec, DesignComparison):
        return _run_comparison(spec, out, client, **kw)
    return _run_one(spec, out, client, **kw)


def _run_one(spec: TrialSpec, out: Path, client, *, resume, chunk_size, progress, figures) -> TrialResult:
    t0 = time.perf_counter()
    cs = int(chunk_size or spec.execution.chunk_size)
    if not 16 <= cs <= 1_000_000:
        raise InputError(f"chunk_size = {cs!r} is invalid; allowed: an integer from 16 to 1000000 (unit: patients)")
    population = spec.make_population()
    index, screened = screen(spec, population)
    n = spec.n_enrolled
    n_chunks = -(-n // cs)
    _prepare_run_dir(out, spec, cs, n_chunks, resume)
    tasks = []
    for c in range(n_chunks):
        if chunk_path(out, c).exists():
            continue
        lo, hi = c * cs, min((c + 1) * cs, n)
        tasks.append((c, np.arange(lo, hi, dtype=np.int64), index[lo:hi]))
    bar = _Progress(n_chunks, n_chunks - len(tasks), progress)
    t_sim = time.perf_counter()
    if client is None:
        run_local(spec, tasks, str(out), bar)
    else:
        run_dask(client, spec, tasks, str(out), bar)
    t_sim = time.perf_counter() - t_sim
    files = _chunk_files(out, n_chunks)
    written = {"patients": out / "patients.parquet"}
    n_patients = _assemble_patients(files, spec, written["patients"])
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
            fits = res.pop("_fits")
            if figures:
                written[f"km_{ep}"] = plots.plot_km(
                    fits, names, ep, out / f"km_{ep}.png", f"{spec.name}: {plots.LABELS[ep]}", res["comparisons"]
                )
        elif ep == "pcr":
            res = analysis.pcr_endpoint(df, spec)
        else:
            res = analysis.tmem_endpoint(df, spec)
        summary["endpoints"][ep] = res
    tte = [e for e in (spec.endpoints.primary, *spec.endpoints.include) if e in TIME_TO_EVENT]
    if tte and spec.analysis.subgroups:
        rows = analysis.subgroups(df, tte[0], spec)
        summary["subgroups"] = rows
        if figures and any(r["hazard_ratio"] is not None for r in rows):
            written["forest"] = plots.plot_forest(rows, out / "forest.png", f"{spec.name}: subgroups ({tte[0]})")
    del df
    if spec.power.replicates > 0:
        summary["power"] = power(spec, files)
        if figures:
            written["power"] = plots.plot_power([("", summary["power"])], out / "power.png", f"{spec.name}: power")
    return summary, written


def power(spec: TrialSpec, files: list[Path]) -> dict:
    """Power of the primary endpoint over the replicate trials stored in the chunk files."""
    ep = spec.endpoints.primary
    cols = ["replicate", "arm", "rank"] + (
        [f"{ep}_time_days", f"{ep}_event"] if ep in TIME_TO_EVENT else ["pcr" if ep == "pcr" else "tmem_log_ratio"]
    )
    return analysis.power_analysis(_read_columns(files, cols), spec)


def _run_comparison(comp: DesignComparison, out: Path, client, **kw) -> TrialResult:
    out.mkdir(parents=True, exist_ok=True)
    results = [_run_one(spec, out / slug(spec.name), client, **kw) for spec in comp.specs]
    curves = [(r.summary["name"], r.summary["power"]) for r in results if "power" in r.summary]
    files: dict[str, Path] = {}
    summary = {"name": comp.name, "designs": [r.summary for r in results]}
    if curves and kw.get("figures", True):
        files["power"] = plots.plot_power(curves, out / "power.png", comp.name)
        summary["files"] = {"power": str(files["power"])}
    files["summary"] = out / "summary.json"
    atomic_write(files["summary"], lambda tmp: tmp.write_text(json.dumps(summary, indent=2, allow_nan=False)))
    return TrialResult(summary, out, files)
