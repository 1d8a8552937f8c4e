"""Treatment-changing drug toxicity acting through the schedule (docs/science.md §2.16).

An accompanying drug may carry a toxicity (``[<drug>.toxicity]`` in ``data/drugs.toml``: probability per
patient, onset in days after the drug's first dose, and what happens to the chemotherapy still to come). When a
population switches the ``drug_toxicity`` mechanism on, each patient given the drug has the event with that
probability, drawn from a random stream of its own keyed by patient index (:func:`toxicity_uniforms`), so that
no other draw moves and results do not depend on chunking. A patient with the event follows
:func:`toxicity_schedule`: the drug stops on the onset day, and her remaining chemotherapy is held (``delay``) or
dropped (``stop``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from chemomet.regimens import AntiHer2Course, Drug, Schedule, Strategy, load_drugs
from chemomet.streams import child, draws_at, root_seed

TOXICITY_STREAM = 2**40 + 0x746F78
"""Sub-stream key of the toxicity uniforms ("tox"; far above any block index, so no block shares it)."""


def toxicity_uniforms(seed, indices) -> np.ndarray:
    """One uniform per patient index from the toxicity stream of the run's seed (a patient has the event when it
    is below the drug's probability).

    Parameters
    ----------
    seed : int, numpy.random.Generator or numpy.random.SeedSequence
        The run's seed (as given to :func:`chemomet.simulate`).
    indices : array_like of int
        Patient indices.

    Returns
    -------
    numpy.ndarray
        Uniforms in [0, 1), shape ``(len(indices),)``.

    Examples
    --------
    >>> u = toxicity_uniforms(3, np.arange(2000))
    >>> bool(np.array_equal(u[1500:], toxicity_uniforms(3, np.arange(1500, 2000))))
    True
    """
    _, u = draws_at(child(root_seed(seed), TOXICITY_STREAM), np.asarray(indices, np.int64), 0, 1)
    return u[:, 0]


def toxicity_schedule(strategy: Strategy, drugs: dict[str, Drug] | None = None) -> tuple[Schedule, float] | None:
    """The schedule of a patient who has her accompanying drug's toxicity, and its probability per patient.

    The drug stops on the onset day (``onset_days`` after its first dose). With ``delay`` every later
    chemotherapy dose, the surgery, the endocrine course and an anti-HER2 course not yet begun move
    ``chemo_delay_days`` later; with ``stop`` later chemotherapy doses are dropped and surgery follows
    ``surgery_delay_days`` after the event (never later than planned).

    Parameters
    ----------
    strategy : Strategy
        A NACT strategy (other kinds, and strategies without an accompanying drug, have none).
    drugs : dict[str, Drug], optional
        The drug table (default: :func:`chemomet.regimens.load_drugs`).

    Returns
    -------
    (Schedule, float) or None
        The changed schedule (days from diagnosis) and the probability; None when the drug has no toxicity, its
        probability is 0, or the event would come after surgery.

    Examples
    --------
    >>> st = Strategy.parse("nact+pexidartinib")
    >>> planned = st.schedule()
    >>> changed, p = toxicity_schedule(st)
    >>> p, planned.surgery_day, changed.surgery_day  # liver injury on day 14 + 35: chemotherapy held 28 days
    (0.053, 203.0, 231.0)
    >>> max(t for t, d, _ in changed.dose_events if d == "pexidartinib") < 49.0
    True
    >>> toxicity_schedule(Strategy.parse("nact+rebastinib")) is None
    True
    """
    drugs = load_drugs() if drugs is None else drugs
    acc = strategy.accompanying
    if acc is None or strategy.kind != "nact":
        return None
    tox = drugs[acc.drug].toxicity
    if tox is None or tox.probability <= 0:
        return None
    full = strategy.schedule()
    event = strategy.chemo_start_day + acc.start_offset_days + tox.onset_days
    if event >= full.surgery_day:
        return None
    kept = [e for e in full.dose_events if drugs[e[1]].role != "cytotoxic" and e[0] < event]
    chemo = [e for e in full.dose_events if drugs[e[1]].role == "cytotoxic"]
    if tox.action == "delay":
        shift = tox.chemo_delay_days
        chemo = [(t + shift if t >= event else t, name, dose) for t, name, dose in chemo]
        surgery = full.surgery_day + shift
        marks = tuple(m + shift if m >= event else m for m in full.marks)
        her2 = full.anti_her2
        if her2 is not None and her2.start_day >= event:
            her2 = AntiHer2Course(her2.agents, her2.start_day + shift, her2.end_day + shift)
    else:
        chemo = [e for e in chemo if e[0] < event]
        surgery = min(full.surgery_day, event + strategy.surgery_delay_days)
        marks = tuple(m for m in full.marks if m < surgery)
        her2 = full.anti_her2
    days = [t for t, _, _ in chemo]
    endocrine = full.endocrine
    if endocrine is not None:
        endocrine = replace(endocrine, start_day=surgery + strategy.adjuvant_delay_days)
    changed = Schedule(
        tuple(sorted(kept + chemo)), surgery, (min(days), max(days)), neoadjuvant=True, marks=marks,
        endocrine=endocrine, anti_her2=her2,
    )
    return changed, tox.probability
