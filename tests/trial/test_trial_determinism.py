"""Identical patient-level results whatever the executor, the number of Dask workers and the chunk size."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from chemomet.trial import run_trial
from chemomet.trial.execute import dask_client
from chemomet.trial.streams import patient_uniforms
from tests.trial.conftest import make_spec


def all_chunks(out) -> pd.DataFrame:
    files = sorted((out / "chunks").glob("chunk-*.parquet"))
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)


def test_workers_and_chunk_sizes_give_identical_tables(local_run, dask2, tmp_path):
    # 600 patients (2 replicates x 2 arms x 150): bit-identity does not need more, and the chunkings below still
    # give 13, 5 and 2 chunks (the last one partial each time), as 1,200 patients did with 96 / 256 / 1,000
    spec = make_spec(patients_per_arm=150, power={"replicates": 2, "patients_per_arm": [50, 150]})
    runs = {
        "local-48": run_trial(spec, out=tmp_path / "a", chunk_size=48, figures=False),
        "dask2-128": run_trial(spec, out=tmp_path / "b", client=dask2, chunk_size=128, figures=False),
    }
    with dask_client(workers=1) as one:
        runs["dask1-128"] = run_trial(spec, out=tmp_path / "c", client=one, chunk_size=128, figures=False)
    runs["dask2-500"] = run_trial(spec, out=tmp_path / "d", client=dask2, chunk_size=500, figures=False)
    ref = runs.pop("local-48")
    ref_all = all_chunks(ref.out)
    assert ref_all["position"].tolist() == list(range(spec.n_enrolled))
    assert ref_all["patient_index"].is_unique
    for name, r in runs.items():
        pd.testing.assert_frame_equal(r.patients, ref.patients, check_exact=True, obj=name)
        pd.testing.assert_frame_equal(all_chunks(r.out), ref_all, check_exact=True, obj=name)
        assert r.summary["endpoints"] == ref.summary["endpoints"], name
        assert r.summary["power"] == ref.summary["power"], name
    assert runs["dask2-128"].summary["run"]["executor"] == "dask"
    # replicate 0 holds the same patients as a run without power replicates (the first 150 per arm)
    base = local_run.patients
    base = base[base["rank"] < 150].reset_index(drop=True)
    pd.testing.assert_frame_equal(
        ref.patients.drop(columns="position"), base.drop(columns="position"), check_exact=True
    )


def test_patient_streams_are_keyed_by_index():
    idx = np.array([5, 1023, 1024, 70000, 3])
    full = patient_uniforms(3, np.arange(70001))
    np.testing.assert_array_equal(patient_uniforms(3, idx), full[idx])
    assert not np.allclose(patient_uniforms(4, idx), full[idx])
