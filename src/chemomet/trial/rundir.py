"""The run directory: manifest (spec identity), chunk checkpoints, and the assembled patient table.

OUT/manifest.json                 spec hash, chunk size, number of chunks
OUT/chunks/chunk-NNNNNN.parquet   one checkpoint per chunk of enrolment positions, written atomically
OUT/patients.parquet              patient-level results of the trial (replicate 0)
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from chemomet.errors import InputError
from chemomet.fileio import atomic_write
from chemomet.inputs import read_data
from chemomet.trial.chunk import chunk_path
from chemomet.trial.spec import TrialSpec

MANIFEST_FORMAT = 1
OUTPUTS = ("patients.parquet", "summary.json", "km_dmfs.png", "km_drfi.png", "forest.png", "power.png")


def prepare_run_dir(out: Path, spec: TrialSpec, chunk_size: int, n_chunks: int, resume: bool) -> None:
    """Create or check the run directory. Resuming (a manifest with the same spec hash and chunk size) keeps
    finished chunks and deletes half-written temporary files; otherwise chunk files and outputs are removed
    and a new manifest is written. A different spec or chunk size with ``resume`` raises InputError."""
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
        try:
            old = read_data(manifest, "manifest")
        except InputError as err:
            raise InputError(
                f"{err}; the run in {str(out)!r} cannot be resumed: use --fresh to start over, or another --out"
            ) from None
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
    for name in OUTPUTS:
        (out / name).unlink(missing_ok=True)
    atomic_write(manifest, lambda tmp: tmp.write_text(json.dumps(record, indent=2)))


def chunk_files(out: Path, n_chunks: int) -> list[Path]:
    """The checkpoint files of chunks ``0 .. n_chunks - 1``; raises if any is missing."""
    files = [chunk_path(out, c) for c in range(n_chunks)]
    missing = [f.name for f in files if not f.exists()]
    if missing:
        raise RuntimeError(f"{len(missing)} chunk checkpoints missing after the run (first: {missing[0]})")
    return files


def assemble_patients(files: list[Path], spec: TrialSpec, path: Path) -> int:
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


def read_columns(files: list[Path], columns: list[str], filters=None) -> pd.DataFrame:
    """Some columns of every chunk, concatenated in chunk order."""
    parts = [pq.read_table(f, columns=columns, filters=filters).to_pandas() for f in files]
    return pd.concat(parts, ignore_index=True)
