"""Why does NACT change a patient's risk? The NACT-attributable excess risk split into its parts (docs/science.md).

Three effects compete when the same chemotherapy is given before rather than after surgery:

1. **microenvironment**: the stress-induced rise of doorways and their activity boosts dissemination;
2. **delay**: the primary stays in place (and keeps seeding) for the months of chemotherapy;
3. **kill timing**: micrometastases meet the drugs earlier (usually a benefit, a negative part).

The parts are found by switching the effects off one after another, on the same parameter sets (common random
numbers): NACT → NACT without the microenvironment response (``ε = 0``) → and without the delay (founding stops on
the surgery-first surgery day) → surgery first. The excess risk is exactly the sum of the three parts; being a
sequential decomposition, the split depends on that stated order.

When the population carries further prometastatic mechanisms (chemotherapy-primed colonisation, mobilisation;
:mod:`chemomet.mechanisms`), they are switched off first, as a fourth part ``part_mechanisms`` (the column is
absent otherwise, so the shipped model's table is unchanged).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from chemomet.model.engine import dmfs_at
from chemomet.model.parameters import PatientParameters
from chemomet.population import Population
from chemomet.regimens import DEFAULT_REGIMEN, Drug, Schedule, Strategy, load_drugs
from chemomet.toxicity import toxicity_schedule
from chemomet.units import DAYS_PER_YEAR


def nact_excess_risk(
    params: PatientParameters,
    nact: str | Strategy = "nact",
    regimen: str = DEFAULT_REGIMEN,
    years: float = 10.0,
    population: Population | None = None,
    dm_nact: np.ndarray | None = None,
    dm_first: np.ndarray | None = None,
    drugs: dict[str, Drug] | None = None,
    dm_calm: np.ndarray | None = None,
) -> pd.DataFrame:
    """Per patient: distant-metastasis risk by ``years`` under surgery first and under ``nact``, the excess
    (NACT minus surgery first, a probability) and its three parts (see the module docstring).

    ``nact`` may carry an accompanying drug (``nact+rebastinib``): the parts then describe that strategy (its
    drug still acts when the stress response is switched off). Columns:
    ``dm_surgery_first``, ``dm_nact``, ``excess``, ``part_microenvironment``, ``part_delay``, ``part_kill_timing``.
    ``dm_nact`` / ``dm_first``: the two risks if already simulated (same parameters, years and regimen);
    ``dm_calm``: likewise the NACT risk without the stress response (``ε = 0``, priming and mobilisation off).
    ``drugs``: the drug table (default: the shipped drugs). Risks are probabilities; ``years`` in years. With
    priming or mobilisation on in ``population``, a first part ``part_mechanisms`` (NACT with minus without them)
    is added; drug toxicity is not decomposed (a ``ValueError`` for a strategy whose drug has one, with that
    mechanism on).

    Examples
    --------
    >>> from chemomet.population import Population
    >>> _, params = Population().sample(50, 0)
    >>> table = nact_excess_risk(params, "nact")
    >>> parts = table[["part_microenvironment", "part_delay", "part_kill_timing"]].sum(axis=1)
    >>> bool(np.allclose(parts, table["excess"]))
    True
    """
    population = population or Population()
    settings = population.settings
    drugs = load_drugs() if drugs is None else drugs
    strategy = Strategy.parse(nact, regimen, drugs=drugs) if isinstance(nact, str) else nact
    if strategy.kind != "nact" or strategy.interim_day is not None:
        raise ValueError("nact_excess_risk compares a (non-adaptive) NACT strategy with surgery first")
    # the comparator gets the same endocrine course, if any (it starts after its own adjuvant chemotherapy)
    first = replace(
        Strategy.parse("surgery-first", strategy.regimen),
        endocrine=strategy.endocrine,
        endocrine_years=strategy.endocrine_years,
    )
    horizon = years * DAYS_PER_YEAR
    mech = settings.mechanisms
    if mech.drug_toxicity and toxicity_schedule(strategy, drugs) is not None:
        raise ValueError("nact_excess_risk does not decompose drug toxicity; switch the drug_toxicity mechanism off")

    def risk(p: PatientParameters, schedule: Schedule, model=settings) -> np.ndarray:
        # simulate_schedule's DMFS at the horizon, without the summaries it also forms
        return 1.0 - dmfs_at(p, schedule, model, [horizon], drugs=drugs)[:, 0]

    full = strategy.schedule()
    calm = replace(params, epsilon=np.zeros(params.n))
    no_delay = Schedule(
        full.dose_events, first.surgery_day, full.chemo_days, neoadjuvant=True, marks=full.marks,
        endocrine=full.endocrine, anti_her2=full.anti_her2,
    )
    dm_nact = risk(params, full) if dm_nact is None else np.asarray(dm_nact, dtype=float)
    extra = mech.priming or mech.mobilisation
    plain = replace(settings, mechanisms=mech.without_new()) if extra else settings
    dm_plain = risk(params, full, plain) if extra else dm_nact
    dm_calm = risk(calm, full, plain) if dm_calm is None else np.asarray(dm_calm, dtype=float)
    dm_calm_early = risk(calm, no_delay, plain)
    dm_first = risk(params, first.schedule()) if dm_first is None else np.asarray(dm_first, dtype=float)
    table = {
        "dm_surgery_first": dm_first,
        "dm_nact": dm_nact,
        "excess": dm_nact - dm_first,
        "part_microenvironment": dm_plain - dm_calm,
        "part_delay": dm_calm - dm_calm_early,
        "part_kill_timing": dm_calm_early - dm_first,
    }
    if extra:
        table["part_mechanisms"] = dm_nact - dm_plain
    return pd.DataFrame(table)
