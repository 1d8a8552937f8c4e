"""The public entry point :func:`simulate`: patients (files, :class:`Patient` objects or a virtual cohort) under a
strategy, above the engine.

It reads patient files, resolves the population model (typical-value parameters of real patients), parses the
strategy and hands explicit parameters, schedule, settings and drug table to
:func:`chemomet.model.engine.simulate_schedule`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from chemomet.errors import InputError
from chemomet.model.engine import Outcome, simulate_schedule
from chemomet.model.parameters import PatientParameters
from chemomet.patient import Patient, check_diameters_during_chemotherapy, read_patient
from chemomet.population import Population
from chemomet.regimens import DEFAULT_REGIMEN, Drug, Regimen, Strategy, load_drugs
from chemomet.streams import BLOCK
from chemomet.toxicity import toxicity_schedule
from chemomet.units import DAYS_PER_YEAR


def _as_patients(patients) -> list[Patient] | PatientParameters:
    """A list of Patients (from a Patient, a list of them or a file path), or PatientParameters as they are."""
    if isinstance(patients, str | Path):
        patients = read_patient(patients)
    if isinstance(patients, Patient):
        return [patients]
    if isinstance(patients, PatientParameters):
        return patients
    patients = list(patients)
    if not patients or not all(isinstance(p, Patient) for p in patients):
        raise TypeError("patients must be a Patient, a list of Patients, a file path or PatientParameters")
    return patients


def simulate(
    patients,
    strategy: str | Strategy = "nact",
    horizon_days: float = 15 * DAYS_PER_YEAR,
    *,
    regimen: str | Regimen = DEFAULT_REGIMEN,
    grid: np.ndarray | None = None,
    population: Population | None = None,
    drugs: dict[str, Drug] | None = None,
    seed: int = 0,
    start_index: int = 0,
    chunk_size: int = 2 * BLOCK,
    workers: int | None = None,
    progress=None,
) -> Outcome:
    """Simulate patients under one strategy, vectorised over patients.

    Parameters
    ----------
    patients : a :class:`~chemomet.patient.Patient`, a list of them, a patient file path, or
        :class:`~chemomet.model.parameters.PatientParameters` (a virtual cohort, e.g. from
        :meth:`Population.sample <chemomet.population.Population.sample>`).
    strategy : a :class:`~chemomet.regimens.Strategy` or its name (``natural-history``, ``surgery-only``,
        ``surgery-first``, ``nact``, ``nact-adaptive``, ``nact+<drug>``) used with ``regimen``.
    horizon_days : follow-up horizon (days from diagnosis); DMFS beyond it is NaN.
    regimen : regimen key, regimen ``.toml`` file or :class:`~chemomet.regimens.Regimen` (for a strategy name).
    grid : optional output times (days, sorted, within ``[0, horizon_days]``) for trajectories.
    population : population model for patients given as files or objects: their typical-value parameters
        (random effects at 0), and the settings of every simulation, including the mechanisms it carries
        (:meth:`Population.with_mechanisms <chemomet.population.Population.with_mechanisms>`). Default:
        ``Population()``, the shipped calibration.
    drugs : the drug table (default: the shipped drugs, :func:`~chemomet.regimens.load_drugs`); pass the result
        of :func:`~chemomet.regimens.read_drug_file` to use drugs of your own.
    seed, start_index : CTC draws, and drug toxicity when that mechanism is on, use per-patient random streams
        keyed by ``start_index + i``.
    chunk_size : patients per vectorised chunk (results do not depend on it).
    workers : threads working on chunks at once (default: the number of CPUs); results do not depend on it.
    progress : optional ``progress(done, total)`` callback, called after each chunk.

    Returns
    -------
    Outcome
        Per-patient summaries (DMFS at 3/5/10/15 years, pCR, residual size, TMEM, CTCs, colonies founded) and,
        if ``grid`` is given, trajectories; units in :data:`chemomet.model.engine.SUMMARY_UNITS`.

    Examples
    --------
    >>> import chemomet as cm
    >>> out = cm.simulate(cm.example_patient(), "nact")
    >>> out.strategy
    'nact'
    >>> 0.0 < float(out.summary["dmfs_10y"].iloc[0]) < 1.0
    True
    >>> _, cohort = cm.Population().sample(100, 1)
    >>> len(cm.simulate(cohort, "surgery-first", seed=1).summary)
    100
    """
    population = population or Population()
    drugs = load_drugs() if drugs is None else drugs
    if isinstance(strategy, str):
        strategy = Strategy.parse(strategy, regimen, drugs=drugs)
    patients = _as_patients(patients)
    if isinstance(patients, PatientParameters):
        ids, params = [str(i) for i in range(patients.n)], patients
    else:
        if strategy.regimen is not None:  # measurements during NACT must fall within the regimen, as in assess
            for p in patients:
                check_diameters_during_chemotherapy(p, strategy.regimen.last_dose_day, strategy.regimen.key)
        ids, params = [p.id for p in patients], population.typical(patients)
    if not horizon_days > 0:
        raise ValueError("horizon_days must be > 0")
    if grid is not None:
        grid = np.asarray(grid, dtype=float)
        if grid.ndim != 1 or np.any(grid < 0) or np.any(grid > horizon_days) or np.any(np.diff(grid) < 0):
            raise ValueError("grid must be a sorted 1-D array of days within [0, horizon_days]")
    early = None
    if strategy.interim_day is not None:
        interim = strategy.chemo_start_day + strategy.interim_day
        early = (strategy.early_surgery_schedule(drugs), interim, strategy.response_threshold)
    toxicity = toxicity_schedule(strategy, drugs) if population.settings.mechanisms.drug_toxicity else None
    if toxicity is not None and early is not None:
        raise InputError(
            f"strategy = {strategy.name!r}: drug toxicity is not modelled with response-adapted NACT; allowed: "
            "switch the drug_toxicity mechanism off or use a non-adaptive strategy"
        )
    summary, trajectories = simulate_schedule(
        params, strategy.schedule(), population.settings, horizon_days, drugs=drugs, grid=grid, early=early,
        toxicity=toxicity, seed=seed, start_index=start_index, chunk_size=chunk_size, workers=workers,
        progress=progress,
    )
    summary.insert(0, "patient", ids)
    return Outcome(strategy.name, summary, grid, trajectories)
