"""One chunk of a trial: simulate its patients and write their rows to one Parquet checkpoint.

A chunk is a contiguous range of enrolment positions. Every number in a row depends only on the seed and the
patient's screening index (and the arm), so the table is the same whatever the chunk size or worker count.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from chemomet.fileio import atomic_write, file_digest
from chemomet.local_recurrence import local_recurrence_days
from chemomet.simulation import simulate
from chemomet.trial.events import (
    endpoints,
    event_grid,
    exponential_times,
    metastatic_death_times,
    other_cause_death_times,
    sample_event_times,
)
from chemomet.trial.screening import sample_patients
from chemomet.trial.spec import TrialSpec
from chemomet.trial.streams import MORTALITY_UNIFORMS, UNIFORMS, local_uniforms, mortality_uniforms, patient_uniforms

MODEL_COLUMNS = {
    "p_pcr": "pcr",
    "surgery_day": "surgery_day",
    "tmem_at_surgery_10hpf": "tmem_at_surgery_10hpf",
    "tmem_ratio_surgery_baseline": "tmem_ratio_surgery_baseline",
    "residual_diameter_mm_at_surgery": "residual_diameter_mm_at_surgery",
    "ctc_expected_surgery": "ctc_expected_surgery",
    "colonies_founded_during_chemo": "colonies_founded_during_chemo",
    "dmfs_5y": "model_dmfs_5y",
    "dmfs_10y": "model_dmfs_10y",
}
"""Per-patient model outputs kept in the patient-level table (simulate's name -> table name)."""


def chunk_path(run_dir: str | Path, chunk: int) -> Path:
    """The checkpoint file of chunk number ``chunk``."""
    return Path(run_dir) / "chunks" / f"chunk-{chunk:06d}.parquet"


def positions_to_design(spec: TrialSpec, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(replicate, arm, rank within arm) of enrolment positions."""
    per_rep = spec.n_arms * spec.patients_per_replicate_arm
    rep, k = np.divmod(positions, per_rep)
    rank, arm = np.divmod(k, spec.n_arms)
    return rep, arm, rank


def other_cause_deaths(spec: TrialSpec, age_years: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Times (days from enrolment) of death from other causes of patients aged ``age_years`` (years) at
    enrolment, from their uniforms ``u``: the age-based life-table hazard times
    ``mortality.other_cause_hazard_ratio`` (:func:`~chemomet.trial.events.other_cause_death_times`), or, when the
    spec gives ``follow_up.other_cause_death_rate_per_year`` (1/year), exponential times at that rate."""
    rate = spec.follow_up.other_cause_death_rate_per_year
    if rate is not None:
        return exponential_times(u, rate)
    return other_cause_death_times(age_years, u, spec.mortality.other_cause_hazard_ratio)


def simulate_patients(spec: TrialSpec, positions: np.ndarray, index: np.ndarray) -> pd.DataFrame:
    """Patient-level rows (one per enrolment position) for the patients with these screening indices.

    positions: enrolment positions (ints); index: their screening indices. Returns a DataFrame with the
    design (replicate, arm, rank), baseline features, model outputs, sampled times (days from enrolment) and
    the endpoints (``<endpoint>_time_days``, ``<endpoint>_event``, ``pcr``, ``tmem_log_ratio``).
    """
    population = spec.make_population()
    positions = np.asarray(positions, np.int64)
    feats, params = sample_patients(spec, population, index)
    rep, arm, rank = positions_to_design(spec, positions)
    horizon = spec.horizon_days
    sim_horizon = max(horizon, 1.0)
    grid = event_grid(sim_horizon, spec.analysis.event_grid_days)
    n = positions.size
    model = {name: np.full(n, np.nan) for name in MODEL_COLUMNS.values()}
    dm = np.full(n, np.inf)
    u = patient_uniforms(spec.seed, index)
    strategies = spec.strategies()
    for a, strategy in enumerate(strategies):
        rows = np.flatnonzero(arm == a)
        if rows.size == 0:
            continue
        out = simulate(params.take(rows), strategy, sim_horizon, grid=grid, seed=spec.seed, workers=1,
                       population=population)  # its settings, and the mechanisms they carry
        for src, dst in MODEL_COLUMNS.items():
            model[dst][rows] = out.summary[src].to_numpy(float)
        if strategy.kind != "nact":  # pCR is a response to neoadjuvant therapy: not defined otherwise
            model["pcr"][rows] = np.nan
        dm[rows] = sample_event_times(grid, out.trajectories["dmfs"], u[rows, UNIFORMS.index("event")])
    accrual = u[:, UNIFORMS.index("accrual")] * spec.accrual.duration_days
    fu = spec.follow_up
    death = other_cause_deaths(spec, feats["age"].to_numpy(float), u[:, UNIFORMS.index("death")])
    mort = spec.mortality
    if mort.breast_cancer_deaths:
        um = mortality_uniforms(spec.seed, index)[:, MORTALITY_UNIFORMS.index("metastatic_death")]
        cancer_death = metastatic_death_times(
            dm, um, mort.metastatic_median_survival_months, mort.metastatic_survival_shape
        )
    else:
        cancer_death = np.full(n, np.inf)
    loss = exponential_times(u[:, UNIFORMS.index("loss")], fu.loss_rate_per_year)
    admin = horizon - accrual
    neoadjuvant = np.array([s.kind == "nact" for s in strategies])[arm]
    local = local_recurrence_days(model["surgery_day"], neoadjuvant, local_uniforms(spec.seed, index))
    ends = endpoints(dm, death, loss, admin, cancer_death, local)
    names = [a.name for a in spec.arms]
    table = pd.DataFrame(
        {
            "replicate": rep,
            "arm": arm,
            "arm_name": np.asarray(names, dtype=object)[arm],
            "rank": rank,
            "position": positions,
        }
    )
    table = pd.concat([table, feats.reset_index(drop=True)], axis=1)
    for k, v in model.items():
        table[k] = v
    table["tmem_log_ratio"] = np.log(model["tmem_ratio_surgery_baseline"])
    table["accrual_day"] = accrual
    table["dm_days"] = dm
    table["death_days"] = death  # death from other causes
    table["cancer_death_days"] = cancer_death
    table["local_days"] = local  # loco-regional recurrence
    table["loss_days"] = loss
    table["admin_censor_days"] = admin
    for k, v in ends.items():
        table[k] = v
    return table


def run_chunk(spec: TrialSpec, chunk: int, positions: np.ndarray, index: np.ndarray, run_dir: str) -> dict:
    """Simulate one chunk and write it atomically to its checkpoint file; returns its record.

    The record (``chunk``, ``name``, ``rows``, ``size`` in bytes, ``sha256``) is what the driver keeps in the
    manifest to verify the file before a resumed run uses it. The digest is taken from the temporary file before
    the rename, so a record always describes a complete chunk. If the checkpoint already exists (a resumed or
    repeated task) the work is skipped and the record is taken from the file.
    """
    path = chunk_path(run_dir, chunk)
    if path.exists():
        return {"chunk": chunk, "name": path.name, "rows": pq.ParquetFile(path).metadata.num_rows, **file_digest(path)}
    table = simulate_patients(spec, positions, index)
    record = {"chunk": chunk, "name": path.name, "rows": len(table)}

    def write(tmp: Path) -> None:
        table.to_parquet(tmp, index=False)
        record.update(file_digest(tmp))

    atomic_write(path, write)
    return record
