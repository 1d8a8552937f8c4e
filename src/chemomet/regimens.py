"""Drugs, regimens and treatment strategies, as validated data.

The shipped definitions live in ``chemomet/data/drugs.toml`` and ``chemomet/data/regimens.toml`` (a source for
every number). A :class:`Strategy` places a regimen in time around surgery and optionally adds an accompanying
drug; :meth:`Strategy.schedule` turns it into the dose events and the surgery day the model consumes.

Time is in days from diagnosis (core biopsy, ``t = 0``).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from chemomet.errors import InputError, validation_error
from chemomet.inputs import read_data
from chemomet.units import DAYS_PER_YEAR, calvert_carboplatin_dose_mg

REFERENCE_BSA_M2 = 1.8
"""Body-surface area the drug volumes refer to (m²); concentrations from mg/m² doses do not depend on it."""

REFERENCE_GFR_ML_MIN = 100.0
"""Glomerular filtration rate used for Calvert carboplatin dosing in the shared timeline (mL/min)."""

MAX_REGIMEN_DAYS = 730
"""Longest plausible regimen (days from first to last dose)."""

DEFAULT_REGIMEN = "ac-paclitaxel-weekly"
"""The regimen used when none is named: doxorubicin + cyclophosphamide, then weekly paclitaxel."""

QUANTITIES = ("doorway_activity", "macrophage_recruitment")
"""Model quantities an accompanying drug's target can act on (see ``data/targets.toml``)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DrugToxicity(_Strict):
    """A drug's treatment-changing toxicity: how often it happens, when, and what it does to the schedule.

    Drawn per patient from a random stream of its own (:mod:`chemomet.toxicity`) when a population switches the
    ``drug_toxicity`` mechanism on (``data/mechanisms.toml``); off in the shipped model. Frozen.

    Attributes
    ----------
    event : str
        What happens, e.g. ``liver injury``.
    probability : float
        Probability that a patient given the drug has the event (probability, 0 to 1).
    onset_days : float
        Days from the drug's first dose to the event (days, 0.5 to 730): the drug stops that day.
    action : {"delay", "stop"}
        What happens to the chemotherapy still to come: held for ``chemo_delay_days`` (doses and surgery move
        later), or stopped (surgery ``surgery_delay_days`` after the event, never later than planned).
    chemo_delay_days : float, default 0.0
        How long the remaining chemotherapy is held (days, 0 to 365; ``delay`` only).
    evidence : {"clinical", "preclinical", "assumption"}, default "clinical"
        Evidence level of the numbers.
    source : str
        Where they come from.

    Examples
    --------
    >>> tox = load_drugs()["pexidartinib"].toxicity
    >>> tox.event, tox.action, tox.probability
    ('liver injury', 'delay', 0.053)
    """

    event: str = Field(min_length=1)
    probability: float = Field(ge=0, le=1)
    onset_days: float = Field(ge=0.5, le=730)
    action: Literal["delay", "stop"]
    chemo_delay_days: float = Field(default=0.0, ge=0, le=365)
    evidence: Literal["clinical", "preclinical", "assumption"] = "clinical"
    source: str = Field(min_length=1)


class Drug(_Strict):
    """One drug: linear one-compartment PK plus its effect (cytotoxic kill or target inhibition).

    An accompanying drug names its ``target`` (e.g. ``TIE2``); ``acts_on``, the model quantity it inhibits, comes
    from the target table (``data/targets.toml``) when the drug table is read (:func:`parse_drugs`).

    A cytotoxic drug kills at rate ``kmax_per_day × E`` with ``E = C^hill / (EC50^hill + C^hill)`` and adds
    ``stress_weight × E`` to the chemotherapy stress that drives the microenvironment; an accompanying drug
    inhibits its quantity by ``I = imax × C / (IC50 + C)``. ``C`` is the plasma concentration (mg/L). An endocrine
    drug, given for years after surgery, removes the share ``growth_block × e`` of an ER-positive colony's growth
    drive at steady state (``e``: the patient's endocrine sensitivity; docs/science.md §2.13); its PK only sets how
    fast steady state is reached (weeks), which the model neglects next to years of therapy. An anti-HER2 antibody,
    given with chemotherapy and after it for about a year, kills HER2-positive cells at the constant rate
    ``kill_per_day × h`` while it is given (``h``: the patient's anti-HER2 sensitivity, 0 in HER2-negative disease;
    docs/science.md §2.14): with a half-life of weeks and three-weekly doses its level stays far above the
    effective range, so the model takes the steady state and the PK numbers are for reference. Frozen; unknown
    fields are refused.

    Attributes
    ----------
    name : str
        The drug's name, e.g. ``paclitaxel``.
    role : {"cytotoxic", "accompanying", "endocrine", "anti_her2"}
        Chemotherapy, a drug given with it against the prometastatic microenvironment, adjuvant endocrine
        therapy, or an anti-HER2 antibody given with (and after) chemotherapy.
    route : {"iv", "oral", "sc"}
        Route of administration (i.v. bolus, oral or subcutaneous).
    half_life_h : float
        Elimination half-life (h, 0.01 to 720).
    volume_l : float
        Volume of distribution (L, 0.1 to 100000; for an oral drug, the apparent volume V/F).
    ka_per_h : float, optional
        First-order absorption rate constant (1/h, 0.001 to 100); required for oral and s.c. drugs.
    drug_class : str, optional
        E.g. ``taxane``.
    ec50_mg_per_l : float, optional
        Concentration of half-maximal kill (mg/L, 1e-6 to 10000); required for cytotoxic drugs.
    hill : float, default 1.0
        Hill coefficient of the kill (dimensionless, 0.1 to 10).
    kmax_per_day : float, optional
        Maximal kill rate (1/day, 0 to 100); required for cytotoxic drugs.
    stress_weight : float, default 0.0
        Weight of the drug's effect in the chemotherapy stress on the microenvironment (dimensionless, 0 to 100;
        paclitaxel 1 by convention).
    target : str, optional
        The molecular target of an accompanying drug (a key of ``data/targets.toml``, e.g. ``TIE2``).
    acts_on : {"doorway_activity", "macrophage_recruitment"}, optional
        The model quantity the target acts on; set from the target table, not by the user.
    ic50_mg_per_l : float, optional
        Concentration of half-maximal inhibition (mg/L, 1e-6 to 10000); required for accompanying drugs.
    imax : float, optional
        Maximal inhibition (fraction, 0 to 1); required for accompanying drugs.
    default_dose_mg : float, optional
        Dose of an accompanying drug when a strategy gives none (mg, 0.001 to 10000).
    default_interval_h : float, optional
        Dosing interval of an accompanying drug when a strategy gives none (h, 1 to 672).
    growth_block : float, optional
        Share of an ER-positive colony's growth drive an endocrine drug removes at steady state for a patient of
        median endocrine sensitivity (dimensionless, 0 to 10; above 1 colonies regress); required for endocrine
        drugs.
    nonresponder_reach : float, optional
        For an endocrine drug: the share of the tumours that do not respond to tamoxifen (the calibration's
        reference drug) that respond to this one (fraction, 0 to 1; default 0).
    nonresponder_block : float, optional
        The share of their growth drive it removes (dimensionless, 0 to 10; default 0).
    kill_per_day : float, optional
        Kill rate of an anti-HER2 drug on HER2-positive cells at steady state for a patient of median anti-HER2
        sensitivity (ln-cells/day, 0 to 10); the rates of two anti-HER2 drugs given together add. Required for
        anti-HER2 drugs.
    toxicity : DrugToxicity, optional
        A treatment-changing toxicity of an accompanying drug (probability per patient, onset, effect on the
        schedule); used only when the ``drug_toxicity`` mechanism is on.
    approved_for_this_use : bool, optional
        Whether a regulator has approved the drug for this use (given with chemotherapy against breast cancer
        metastasis). ``False`` marks an investigational drug, which the assessment reports only as a candidate
        for a clinical trial, never as its recommendation (:mod:`chemomet.assess.decision`); None: not stated.
    sources : dict[str, str]
        Field -> where its value comes from.

    Examples
    --------
    >>> paclitaxel = load_drugs()["paclitaxel"]
    >>> paclitaxel.role, paclitaxel.route, paclitaxel.half_life_h
    ('cytotoxic', 'iv', 20.0)
    >>> round(paclitaxel.k_el_per_day, 3)  # ln 2 / 20 h, per day
    0.832
    >>> rebastinib = load_drugs()["rebastinib"]
    >>> rebastinib.target, rebastinib.acts_on, rebastinib.ka_per_day
    ('TIE2', 'doorway_activity', 24.0)
    """

    name: str
    role: Literal["cytotoxic", "accompanying", "endocrine", "anti_her2"]
    route: Literal["iv", "oral", "sc"]
    # Every bound is physical: a positive quantity has a smallest meaningful value (a half-life of 36 s, 1 µg),
    # so a typo or an underflow (1e-300, a denormal 5e-324) is refused, as is an absurd size (1e308 L).
    half_life_h: float = Field(ge=0.01, le=24 * 30)
    volume_l: float = Field(ge=0.1, le=100_000)
    ka_per_h: float | None = Field(default=None, ge=0.001, le=100)
    drug_class: str | None = None
    ec50_mg_per_l: float | None = Field(default=None, ge=1e-6, le=10_000)
    hill: float = Field(default=1.0, ge=0.1, le=10)
    kmax_per_day: float | None = Field(default=None, ge=0, le=100)
    stress_weight: float = Field(default=0.0, ge=0, le=100)
    target: str | None = None
    acts_on: Literal["doorway_activity", "macrophage_recruitment"] | None = None
    ic50_mg_per_l: float | None = Field(default=None, ge=1e-6, le=10_000)
    imax: float | None = Field(default=None, ge=0, le=1)
    default_dose_mg: float | None = Field(default=None, ge=0.001, le=10_000)
    default_interval_h: float | None = Field(default=None, ge=1, le=672)
    growth_block: float | None = Field(default=None, ge=0, le=10)
    nonresponder_reach: float | None = Field(default=None, ge=0, le=1)
    nonresponder_block: float | None = Field(default=None, ge=0, le=10)
    kill_per_day: float | None = Field(default=None, ge=0, le=10)
    toxicity: DrugToxicity | None = None
    approved_for_this_use: bool | None = None
    sources: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _complete(self) -> Drug:
        if self.route != "iv" and self.ka_per_h is None:
            raise ValueError("ka_per_h is required for oral and s.c. drugs")
        if self.role == "cytotoxic" and (self.ec50_mg_per_l is None or self.kmax_per_day is None):
            raise ValueError("cytotoxic drugs need ec50_mg_per_l and kmax_per_day")
        if self.role == "accompanying" and (
            self.target is None or self.ic50_mg_per_l is None or self.imax is None
        ):
            raise ValueError("accompanying drugs need target, ic50_mg_per_l and imax")
        if self.role == "endocrine" and self.growth_block is None:
            raise ValueError("endocrine drugs need growth_block")
        if self.role == "anti_her2" and self.kill_per_day is None:
            raise ValueError("anti-HER2 drugs need kill_per_day")
        return self

    @property
    def k_el_per_day(self) -> float:
        """First-order elimination rate constant (1/day)."""
        return math.log(2.0) / self.half_life_h * 24.0

    @property
    def ka_per_day(self) -> float | None:
        """First-order absorption rate constant (1/day), or None for i.v. bolus."""
        return None if self.ka_per_h is None else self.ka_per_h * 24.0


class DrugDose(_Strict):
    """A drug and its dose in exactly one unit.

    One entry of a :class:`Phase`; frozen, unknown fields are refused.

    Attributes
    ----------
    drug : str
        Name of a cytotoxic drug of the drug table.
    dose_mg_m2 : float, optional
        Dose per body-surface area (mg/m², 0.001 to 5000).
    dose_auc : float, optional
        Target AUC for Calvert dosing (mg·min/mL, 0.1 to 10; carboplatin only).
    dose_mg : float, optional
        Flat dose (mg, 0.001 to 10000).

    Examples
    --------
    >>> DrugDose(drug="paclitaxel", dose_mg_m2=80).dose_in_mg()  # at the reference 1.8 m2
    144.0
    >>> DrugDose(drug="paclitaxel", dose_mg_m2=80).dose_in_mg(bsa_m2=2.0)
    160.0
    >>> DrugDose(drug="carboplatin", dose_auc=6).dose_in_mg()  # Calvert, GFR 100 mL/min
    750.0
    >>> from pydantic import ValidationError
    >>> try:
    ...     DrugDose(drug="paclitaxel", dose_mg_m2=80, dose_mg=144)
    ... except ValidationError as err:
    ...     print(err.errors()[0]["msg"])
    Value error, give exactly one of dose_mg_m2, dose_auc, dose_mg
    """

    drug: str
    dose_mg_m2: float | None = Field(default=None, ge=0.001, le=5000)  # 1 µg/m2 at least: no dose is smaller
    dose_auc: float | None = Field(default=None, ge=0.1, le=10)
    dose_mg: float | None = Field(default=None, ge=0.001, le=10000)

    @model_validator(mode="after")
    def _one_unit(self) -> DrugDose:
        given = [u for u in ("dose_mg_m2", "dose_auc", "dose_mg") if getattr(self, u) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of dose_mg_m2, dose_auc, dose_mg")
        return self

    def dose_in_mg(self, bsa_m2: float = REFERENCE_BSA_M2, gfr_ml_min: float = REFERENCE_GFR_ML_MIN) -> float:
        """The dose in mg for a patient of the given body-surface area (m²) and GFR (mL/min)."""
        if self.dose_mg_m2 is not None:
            return self.dose_mg_m2 * bsa_m2
        if self.dose_auc is not None:
            return calvert_carboplatin_dose_mg(self.dose_auc, gfr_ml_min)
        return float(self.dose_mg)


class Phase(_Strict):
    """Cycles of the same drugs; all drugs of the phase are given on day 0 of each cycle.

    One entry of :attr:`Regimen.phases`; frozen, unknown fields are refused.

    Attributes
    ----------
    drugs : list of DrugDose
        The drugs of each cycle (at least one).
    cycles : int
        Number of cycles (1 to 52).
    interval_days : float
        Days from one cycle to the next (days, 0.1 to 90).
    offset_days : float, optional
        Start of the phase after the regimen's start (days, 0 to 365); default: when the previous phase ends.

    Examples
    --------
    >>> weekly = Phase(drugs=[{"drug": "paclitaxel", "dose_mg_m2": 80}], cycles=12, interval_days=7)
    >>> weekly.length_days  # 12 weekly doses: 84 days
    84.0
    >>> weekly.drugs[0].dose_in_mg()
    144.0
    """

    drugs: list[DrugDose] = Field(min_length=1)
    cycles: int = Field(ge=1, le=52)
    interval_days: float = Field(ge=0.1, le=90)  # 2.4 h at least: cycles closer than that are one dose
    offset_days: float | None = Field(default=None, ge=0, le=365)

    @property
    def length_days(self) -> float:
        """Days from the first dose of the phase to one interval after its last dose."""
        return self.cycles * self.interval_days


class AntiHer2(_Strict):
    """Anti-HER2 therapy a regimen carries: antibodies given from ``offset_days`` after the regimen's first dose
    for ``weeks`` (through surgery and after chemotherapy; about a year in the standard of care).

    Only HER2-positive disease responds (docs/science.md §2.14). The doses (trastuzumab 8 then 6 mg/kg, pertuzumab
    840 then 420 mg, every 3 weeks) keep the antibodies at steady state, which is all the model uses.

    Attributes
    ----------
    agents : tuple of str
        Anti-HER2 drugs of the drug table (role ``anti_her2``), e.g. ``("trastuzumab", "pertuzumab")``.
    offset_days : float, default 0.0
        Regimen start to the first anti-HER2 dose (days, 0 to 365).
    weeks : float, default 52.0
        Length of anti-HER2 therapy (weeks, 1 to 104).

    Examples
    --------
    >>> AntiHer2(agents=("trastuzumab",), offset_days=84).weeks
    52.0
    """

    agents: tuple[str, ...] = Field(min_length=1)
    offset_days: float = Field(default=0.0, ge=0, le=365)
    weeks: float = Field(default=52.0, ge=1, le=104)


class Regimen(_Strict):
    """A chemotherapy regimen: phases given one after another (or at ``offset_days`` from the start).

    Frozen; unknown fields are refused. The last dose must fall within :data:`MAX_REGIMEN_DAYS` (730 days) of the
    first. Shipped regimens: :func:`load_regimens`; regimens of your own: :func:`read_regimen_file`.

    Attributes
    ----------
    key : str
        Short name, e.g. ``ac-paclitaxel-weekly``.
    name : str
        Descriptive name.
    source : str
        Where the regimen comes from (trial, guideline).
    phases : list of Phase
        The phases (at least one).
    anti_her2 : AntiHer2 or None, default None
        Anti-HER2 therapy given with the chemotherapy and after it (HER2-positive disease only).

    Examples
    --------
    >>> ac_t = load_regimens()["ac-paclitaxel-weekly"]
    >>> ac_t.name, len(ac_t.phases)
    ('AC x4 q3w -> paclitaxel 80 mg/m2 weekly x12', 2)
    >>> ac_t.last_dose_day  # 4 x 21 days of AC, then 12 weekly paclitaxel doses (days)
    161.0
    >>> ac_t.dose_events()[:2]  # (day, drug, dose in mg at 1.8 m2)
    [(0.0, 'cyclophosphamide', 1080.0), (0.0, 'doxorubicin', 108.0)]
    >>> pac = Regimen(key="pac12", name="paclitaxel weekly x12", source="example",
    ...               phases=[{"drugs": [{"drug": "paclitaxel", "dose_mg_m2": 80}], "cycles": 12, "interval_days": 7}])
    >>> pac.last_dose_day
    77.0
    """

    key: str
    name: str
    source: str
    phases: list[Phase] = Field(min_length=1)
    anti_her2: AntiHer2 | None = None

    @model_validator(mode="after")
    def _plausible_length(self) -> Regimen:
        span = self.last_dose_day
        if span > MAX_REGIMEN_DAYS:
            raise ValueError(
                f"phases: the last dose falls on day {span:g}; allowed: at most {MAX_REGIMEN_DAYS} (unit: days)"
            )
        return self

    def dose_events(self, start_day: float = 0.0) -> list[tuple[float, str, float]]:
        """Dose events ``(day, drug, dose_mg)`` with the first phase starting at ``start_day`` (days)."""
        events: list[tuple[float, str, float]] = []
        end = 0.0
        for phase in self.phases:
            begin = phase.offset_days if phase.offset_days is not None else end
            for cycle in range(phase.cycles):
                for dd in phase.drugs:
                    events.append((start_day + begin + cycle * phase.interval_days, dd.drug, dd.dose_in_mg()))
            end = max(end, begin + phase.length_days)
        return sorted(events)

    @property
    def last_dose_day(self) -> float:
        """Day of the last dose relative to the regimen start (days)."""
        return max(t for t, _, _ in self.dose_events(0.0))


def _data_text(name: str) -> str:
    return resources.files("chemomet.data").joinpath(name).read_text(encoding="utf-8")


# field -> (what is allowed, unit) for regimen and drug files; used in every error message about the field.
REGIMEN_RULES: dict[str, tuple[str, str | None]] = {
    "name": ("a text", None),
    "source": ("a text naming the source of the regimen", None),
    "phases": ("a non-empty list of [[phases]] tables", None),
    "drugs": ("a non-empty list of {drug = ..., dose_...} tables", None),
    "drug": ("the name of a known cytotoxic drug", None),
    "cycles": ("an integer from 1 to 52", "cycles"),
    "interval_days": ("a number from 0.1 to 90", "days"),
    "offset_days": ("a number from 0 to 365", "days"),
    "dose_mg_m2": ("a number from 0.001 to 5000", "mg/m2"),
    "dose_auc": ("a number from 0.1 to 10 (carboplatin only)", "mg*min/mL"),
    "dose_mg": ("a number from 0.001 to 10000", "mg"),
    "half_life_h": ("a number from 0.01 to 720", "h"),
    "volume_l": ("a number from 0.1 to 100000", "L"),
    "ka_per_h": ("a number from 0.001 to 100 (required for oral and s.c. drugs)", "1/h"),
    "ec50_mg_per_l": ("a number from 1e-06 to 10000", "mg/L"),
    "ic50_mg_per_l": ("a number from 1e-06 to 10000", "mg/L"),
    "kmax_per_day": ("a number from 0 to 100", "1/day"),
    "stress_weight": ("a number from 0 to 100", None),
    "default_dose_mg": ("a number from 0.001 to 10000", "mg"),
    "default_interval_h": ("a number from 1 to 672", "h"),
    "imax": ("a number from 0 to 1", None),
    "kill_per_day": ("a number from 0 to 10 (required for anti-HER2 drugs)", "ln-cells/day"),
    "anti_her2": ("a table {agents = [...], offset_days = ..., weeks = ...}", None),
    "agents": ("a non-empty list of anti-HER2 drug names (role anti_her2)", None),
    "weeks": ("a number from 1 to 104", "weeks"),
    "hill": ("a number from 0.1 to 10", None),
    "toxicity": ("a table {event, probability, onset_days, action, chemo_delay_days, source}", None),
    "event": ("a text naming the toxicity", None),
    "probability": ("a number from 0 to 1", "probability per patient"),
    "onset_days": ("a number from 0.5 to 730", "days after the drug's first dose"),
    "action": ('"delay" or "stop"', None),
    "chemo_delay_days": ("a number from 0 to 365", "days"),
}


def parse_targets(table: dict, where: str = "targets") -> dict[str, str]:
    """Validate a ``{target: {acts_on = ..., evidence = ..., source = ...}}`` table; returns target -> quantity.

    Examples
    --------
    >>> parse_targets({"ANGPT2": {"acts_on": "doorway_activity", "source": "assumption"}})
    {'ANGPT2': 'doorway_activity'}
    """
    out = {}
    for name, spec in table.items():
        acts_on = spec.get("acts_on") if isinstance(spec, dict) else None
        if acts_on not in QUANTITIES:
            raise InputError(
                f"{where}: {name}.acts_on = {acts_on!r} is invalid; allowed: one of {list(QUANTITIES)}"
            )
        if not isinstance(spec.get("source"), str):
            raise InputError(f"{where}: {name}.source is missing; required: a text naming the evidence")
        out[name] = acts_on
    return out


@cache
def load_targets() -> dict[str, str]:
    """The shipped target table (``data/targets.toml``): target -> the model quantity it acts on.

    Examples
    --------
    >>> load_targets()["TIE2"]
    'doorway_activity'
    """
    return parse_targets(tomllib.loads(_data_text("targets.toml")), "targets.toml")


def parse_drugs(table: dict, where: str = "drugs", targets: dict[str, str] | None = None) -> dict[str, Drug]:
    """Validate a ``{name: {...}}`` table of drugs; raises :class:`InputError` naming the bad field.

    ``targets``: target -> quantity (default: the shipped :func:`load_targets`); an accompanying drug's target
    must be one of them, and sets its ``acts_on``.

    Parameters
    ----------
    table : dict
        Drug name -> table of :class:`Drug` fields (the layout of ``data/drugs.toml``), without ``name`` and
        ``acts_on``.
    where : str, default "drugs"
        Where the table came from; the prefix of any error message.
    targets : dict[str, str], optional
        Target -> the model quantity it acts on (default: :func:`load_targets`).

    Returns
    -------
    dict[str, Drug]
        Name -> validated drug.

    Raises
    ------
    InputError
        For the first invalid field, an unknown target or a given ``acts_on``.

    Examples
    --------
    >>> table = {"mytki": {"role": "accompanying", "route": "oral", "half_life_h": 12.0, "volume_l": 300.0,
    ...                    "ka_per_h": 1.0, "target": "TIE2", "ic50_mg_per_l": 0.002, "imax": 0.9}}
    >>> parse_drugs(table)["mytki"].acts_on  # from the target table
    'doorway_activity'
    >>> parse_drugs({"mytki": {**table["mytki"], "half_life_h": -1.0}})
    Traceback (most recent call last):
    ...
    chemomet.errors.InputError: drugs: drug mytki: half_life_h = -1.0 is invalid; allowed: a number from 0.01 to
    720 (unit: h)
    """
    targets = load_targets() if targets is None else targets
    drugs = {}
    for name, spec in table.items():
        if not isinstance(spec, dict):
            raise InputError(f"{where}: {name} = {spec!r} is invalid; allowed: a table of drug fields")
        if "acts_on" in spec:
            raise InputError(f"{where}: drug {name}.acts_on is set by the target table; allowed: target = \"...\"")
        target = spec.get("target")
        if target is not None and target not in targets:
            raise InputError(f"{where}: drug {name}.target = {target!r} is invalid; allowed: one of {sorted(targets)}")
        try:
            drugs[name] = Drug(name=name, **spec, acts_on=None if target is None else targets[target])
        except ValidationError as err:
            raise validation_error(err, f"{where}: drug {name}", REGIMEN_RULES, reasons=True) from None
    return drugs


@cache
def load_drugs() -> dict[str, Drug]:
    """The shipped drugs (``data/drugs.toml``), keyed by name.

    Examples
    --------
    >>> drugs = load_drugs()
    >>> drugs["rebastinib"].target, drugs["rebastinib"].acts_on
    ('TIE2', 'doorway_activity')
    """
    return parse_drugs(tomllib.loads(_data_text("drugs.toml")), "drugs.toml")


def read_drug_file(path: str | Path) -> dict[str, Drug]:
    """The shipped drugs plus those of a TOML file of your own, without editing the installed package.

    The file holds ``[drugs.<name>]`` tables (the fields of ``data/drugs.toml``) and, for a new target,
    ``[targets.<TARGET>]`` tables (``acts_on``, ``evidence``, ``source``, as in ``data/targets.toml``). A drug
    of the file replaces a shipped drug of the same name. Pass the result as ``drugs=`` to
    :func:`chemomet.simulate` or :meth:`Strategy.parse`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> text = '''
    ... [targets.ANGPT2]
    ... acts_on = "doorway_activity"
    ... source = "assumption for the example"
    ... [drugs.trebananib]
    ... role = "accompanying"
    ... target = "ANGPT2"
    ... route = "iv"
    ... half_life_h = 80.0
    ... volume_l = 5.0
    ... ic50_mg_per_l = 1.0
    ... imax = 0.8
    ... default_dose_mg = 1000.0
    ... default_interval_h = 168.0
    ... '''
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "my_drugs.toml"
    >>> _ = path.write_text(text)
    >>> read_drug_file(path)["trebananib"].acts_on
    'doorway_activity'
    """
    path = Path(path)
    table = read_data(path, "drug")
    unknown = sorted(set(table) - {"drugs", "targets"})
    if unknown or not isinstance(table.get("drugs", {}), dict) or not isinstance(table.get("targets", {}), dict):
        raise InputError(
            f"{path}: top-level tables {sorted(table)} are invalid; allowed: [drugs.<name>] and [targets.<TARGET>]"
        )
    targets = {**load_targets(), **parse_targets(table.get("targets", {}), f"{path}: targets")}
    return {**load_drugs(), **parse_drugs(table.get("drugs", {}), str(path), targets)}


def parse_regimens(
    table: dict, drugs: dict[str, Drug] | None = None, where: str = "regimens"
) -> dict[str, Regimen]:
    """Validate a ``{key: {...}}`` table of regimens against the known cytotoxic drugs.

    Parameters
    ----------
    table : dict
        Regimen key -> table with ``name``, ``source`` and ``phases`` (the layout of ``data/regimens.toml``).
    drugs : dict[str, Drug], optional
        The drug table whose cytotoxic drugs the phases may use (default: :func:`load_drugs`).
    where : str, default "regimens"
        Where the table came from; the prefix of any error message.

    Returns
    -------
    dict[str, Regimen]
        Key -> validated regimen.

    Raises
    ------
    InputError
        For the first invalid field, an unknown drug, or ``dose_auc`` for a drug other than carboplatin.

    Examples
    --------
    >>> phase = {"drugs": [{"drug": "paclitaxel", "dose_mg_m2": 80}], "cycles": 12, "interval_days": 7}
    >>> regimens = parse_regimens({"pac12": {"name": "paclitaxel weekly x12", "source": "example",
    ...                                      "phases": [phase]}})
    >>> regimens["pac12"].last_dose_day, len(regimens["pac12"].dose_events())
    (77.0, 12)
    >>> parse_regimens({"pac60": {"name": "too long", "source": "example", "phases": [{**phase, "cycles": 60}]}})
    Traceback (most recent call last):
    ...
    chemomet.errors.InputError: regimens: regimen pac60: phases.0.cycles = 60 is invalid; allowed: an integer from
    1 to 52 (unit: cycles)
    """
    drugs = load_drugs() if drugs is None else drugs
    out = {}
    for key, spec in table.items():
        if not isinstance(spec, dict):
            raise InputError(
                f"{where}: {key} = {spec!r} is invalid; allowed: a table with name, source, phases"
            )
        try:
            regimen = Regimen(key=key, **spec)
        except ValidationError as err:
            raise validation_error(err, f"{where}: regimen {key}", REGIMEN_RULES, reasons=True) from None
        for i, phase in enumerate(regimen.phases):
            for dd in phase.drugs:
                known = sorted(n for n, d in drugs.items() if d.role == "cytotoxic")
                if dd.drug not in known:
                    raise InputError(
                        f"{where}: regimen {key}.phases.{i}.drug = {dd.drug!r} is invalid; allowed: one of {known}"
                    )
                if dd.dose_auc is not None and dd.drug != "carboplatin":
                    raise InputError(
                        f"{where}: regimen {key}.phases.{i}.dose_auc given for {dd.drug!r}; "
                        "allowed: dose_auc only for carboplatin (unit: mg*min/mL)"
                    )
        if regimen.anti_her2 is not None:
            known = sorted(n for n, d in drugs.items() if d.role == "anti_her2")
            for agent in regimen.anti_her2.agents:
                if agent not in known:
                    raise InputError(
                        f"{where}: regimen {key}.anti_her2.agents = {agent!r} is invalid; allowed: one of {known}"
                    )
            if len(set(regimen.anti_her2.agents)) != len(regimen.anti_her2.agents):
                raise InputError(f"{where}: regimen {key}.anti_her2.agents lists a drug twice; allowed: each once")
        out[key] = regimen
    return out


@cache
def load_regimens() -> dict[str, Regimen]:
    """The shipped regimens (``data/regimens.toml``), keyed by short name.

    Examples
    --------
    >>> sorted(load_regimens())[:4]
    ['ac-paclitaxel-q3w', 'ac-paclitaxel-weekly', 'ac-paclitaxel-weekly-trastuzumab',
     'ac-paclitaxel-weekly-trastuzumab-pertuzumab']
    >>> load_regimens()["ac-paclitaxel-weekly-trastuzumab"].anti_her2.agents
    ('trastuzumab',)
    """
    return parse_regimens(tomllib.loads(_data_text("regimens.toml")), where="regimens.toml")


def read_regimen_file(path: str | Path) -> Regimen:
    """Read one regimen from a TOML file holding a single ``[key]`` table (or the table's fields directly).

    With the fields at top level, the regimen's key is the file name's stem. Drugs are checked against the
    shipped drug table.

    Parameters
    ----------
    path : str or pathlib.Path
        A regimen TOML file (the layout of one table of ``data/regimens.toml``).

    Returns
    -------
    Regimen
        The validated regimen.

    Raises
    ------
    InputError
        If the file is missing or not valid TOML, holds other than one regimen, or holds an invalid field.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "pac12.toml"
    >>> _ = path.write_text('''
    ... name = "paclitaxel 80 mg/m2 weekly x12"
    ... source = "example"
    ... [[phases]]
    ... drugs = [{drug = "paclitaxel", dose_mg_m2 = 80}]
    ... cycles = 12
    ... interval_days = 7
    ... ''')
    >>> regimen = read_regimen_file(path)
    >>> regimen.key, regimen.last_dose_day
    ('pac12', 77.0)
    """
    path = Path(path)
    table = read_data(path, "regimen")
    if "phases" in table:
        table = {path.stem: table}
    if len(table) != 1:
        raise InputError(f"{path}: holds {len(table)} regimens; allowed: exactly one regimen table")
    return next(iter(parse_regimens(table, where=str(path)).values()))


def get_regimen(regimen: str | Regimen) -> Regimen:
    """A regimen by shipped key, by path to a TOML file, or passed through.

    Parameters
    ----------
    regimen : str or Regimen
        A key of :func:`load_regimens`, the path of a regimen ``.toml`` file (:func:`read_regimen_file`), or a
        :class:`Regimen`, returned as it is.

    Returns
    -------
    Regimen
        The regimen.

    Raises
    ------
    InputError
        If ``regimen`` is neither a shipped key nor an existing ``.toml`` file.

    Examples
    --------
    >>> get_regimen("tc").name
    'docetaxel 75 + cyclophosphamide 600 mg/m2 q3w x4'
    >>> tc = load_regimens()["tc"]
    >>> get_regimen(tc) is tc
    True
    >>> get_regimen("folfox")
    Traceback (most recent call last):
    ...
    chemomet.errors.InputError: regimen = 'folfox' is invalid; allowed: one of ['ac-paclitaxel-q3w',
    'ac-paclitaxel-weekly', 'ac-paclitaxel-weekly-trastuzumab', 'ac-paclitaxel-weekly-trastuzumab-pertuzumab',
    'ddac-paclitaxel-q2w', 'docetaxel-trastuzumab', 'docetaxel-trastuzumab-pertuzumab', 'paclitaxel-carboplatin-ac',
    'tc'] or a regimen .toml file
    """
    if isinstance(regimen, Regimen):
        return regimen
    known = load_regimens()
    if regimen in known:
        return known[regimen]
    if str(regimen).endswith(".toml") and Path(regimen).exists():
        return read_regimen_file(regimen)
    raise InputError(
        f"regimen = {regimen!r} is invalid; allowed: one of {sorted(known)} or a regimen .toml file"
    )


def default_interim_day(regimen: Regimen) -> float:
    """Interim assessment day (after the first dose): the start of the second phase, else mid-regimen.

    The default ``interim_day`` of response-adapted NACT (``nact-adaptive``). A second phase with its own
    ``offset_days`` does not count as sequential, so mid-regimen is used then.

    Parameters
    ----------
    regimen : Regimen
        The regimen.

    Returns
    -------
    float
        Days after the first dose: the second phase's start (sequential phases), else half the day of the last
        dose, rounded to a whole day and at least 1.

    Examples
    --------
    >>> default_interim_day(load_regimens()["ac-paclitaxel-weekly"])  # after 4 x 21 days of AC
    84.0
    >>> float(default_interim_day(load_regimens()["tc"]))  # one phase, last dose on day 63
    32.0
    """
    if len(regimen.phases) > 1 and regimen.phases[1].offset_days is None:
        return regimen.phases[0].length_days
    return max(1.0, round(regimen.last_dose_day / 2.0))


TIMING_RULES: dict[str, tuple[str, str | None]] = {
    "chemo_start_day": ("a number from 0 to 365", "days"),
    "surgery_day": ("a number from 0 to 365", "days"),
    "adjuvant_delay_days": ("a number from 0 to 365", "days"),
    "surgery_delay_days": ("a number from 1 to 365", "days"),
    "accompanying_dose_mg": ("a number from 0.001 to 10000", "mg"),
    "accompanying_interval_h": ("a number from 1 to 672", "h"),
    "accompanying_start_offset_days": ("a number from 0 to 365", "days"),
    "interim_day": ("a number from 1 to 365 (days after the first dose)", "days"),
    "response_threshold": ("a number from 0 to 1 (fractional decrease of the diameter)", None),
    "early_surgery_delay_days": ("a number from 1 to 365", "days"),
    "endocrine_years": ("a number from 0.25 to 15", "years"),
}
"""Timing field -> (what is allowed, unit): the one statement of the timing ranges, used in every message."""


def _finite_number(v):
    if isinstance(v, bool) or (isinstance(v, float) and not math.isfinite(v)):
        raise ValueError("must be a finite number")
    return v


class Timing(_Strict):
    """When each step of a strategy happens, validated once for the API, trial arms and the command line.

    Days are counted from diagnosis unless a name says otherwise. ``chemo_start_day``: first NACT dose;
    ``surgery_day``: surgery of surgery-first and surgery-only; ``adjuvant_delay_days``: surgery to the first
    adjuvant dose; ``surgery_delay_days``: last NACT dose to surgery; ``accompanying_dose_mg`` /
    ``accompanying_interval_h``: the accompanying drug's dose and interval (default: the drug's own);
    ``accompanying_start_offset_days``: first chemotherapy dose to the first accompanying dose;
    ``interim_day``: response assessment of response-adapted NACT (days after the first dose; default: the
    start of the second phase); ``response_threshold``: fractional decrease of the diameter a responder reaches
    (RECIST partial response: 0.3); ``early_surgery_delay_days``: interim assessment to early surgery;
    ``endocrine_years``: length of adjuvant endocrine therapy (years; it starts ``adjuvant_delay_days`` after
    surgery, or after the last adjuvant chemotherapy dose).

    Examples
    --------
    >>> Timing(surgery_delay_days=21).surgery_delay_days
    21.0
    >>> Timing.from_text(["chemo_start_day=7"]).chemo_start_day
    7.0
    """

    chemo_start_day: float = Field(default=14.0, ge=0, le=365)
    surgery_day: float = Field(default=21.0, ge=0, le=365)
    adjuvant_delay_days: float = Field(default=28.0, ge=0, le=365)
    surgery_delay_days: float = Field(default=28.0, ge=1, le=365)
    accompanying_dose_mg: float | None = Field(default=None, ge=0.001, le=10000)
    accompanying_interval_h: float | None = Field(default=None, ge=1, le=672)
    accompanying_start_offset_days: float = Field(default=0.0, ge=0, le=365)
    interim_day: float | None = Field(default=None, ge=1, le=365)
    response_threshold: float = Field(default=0.3, ge=0, le=1)
    early_surgery_delay_days: float = Field(default=14.0, ge=1, le=365)
    endocrine_years: float = Field(default=5.0, ge=0.25, le=15)

    @field_validator(*TIMING_RULES, mode="before")
    @classmethod
    def _finite(cls, v):
        return _finite_number(v)

    @classmethod
    def of(cls, where: str = "timing", **values) -> Timing:
        """Validate keyword values into a :class:`Timing`; raises :class:`InputError` with one line."""
        try:
            return cls(**values)
        except ValidationError as err:
            raise validation_error(err, where, TIMING_RULES) from None

    @classmethod
    def from_text(cls, items: list[str], option: str = "--timing") -> Timing:
        """Parse ``KEY=VALUE`` items (the command line's ``--timing``) into a :class:`Timing`."""
        values = {}
        for item in items or []:
            key, sep, value = item.partition("=")
            key = key.strip()
            if not sep or key not in TIMING_RULES:
                raise InputError(
                    f"{option} = {item!r} is invalid; allowed: KEY=VALUE with KEY one of {list(TIMING_RULES)}"
                )
            try:
                values[key] = float(value)
            except ValueError:
                raise InputError(f"{option} {key} = {value!r} is invalid; allowed: a number") from None
        return cls.of(option, **values)


@dataclass(frozen=True)
class Accompanying:
    """An accompanying drug given with chemotherapy.

    Dosed every ``interval_h`` hours from ``start_offset_days`` after the first chemotherapy dose until the
    day before surgery (NACT) or the end of chemotherapy (adjuvant).

    Attributes
    ----------
    drug : str
        Name of an accompanying drug of the drug table, e.g. ``rebastinib``.
    dose_mg : float
        Dose per administration (mg).
    interval_h : float
        Time between doses (h).
    start_offset_days : float, default 0.0
        First chemotherapy dose to the first accompanying dose (days).

    Examples
    --------
    >>> Accompanying("rebastinib", dose_mg=50.0, interval_h=12.0)
    Accompanying(drug='rebastinib', dose_mg=50.0, interval_h=12.0, start_offset_days=0.0)
    >>> Strategy.parse("nact+rebastinib").accompanying  # the drug's default dose and interval
    Accompanying(drug='rebastinib', dose_mg=100.0, interval_h=12.0, start_offset_days=0.0)
    """

    drug: str
    dose_mg: float
    interval_h: float
    start_offset_days: float = 0.0


@dataclass(frozen=True)
class EndocrineCourse:
    """Adjuvant endocrine therapy: an endocrine drug of the drug table taken daily from ``start_day`` for
    ``years`` (days from diagnosis; years).

    Examples
    --------
    >>> course = EndocrineCourse("tamoxifen", start_day=49.0, years=5.0)
    >>> round(course.end_day, 2)  # 49 + 5 x 365.25
    1875.25
    >>> Strategy.parse("surgery-only:tamoxifen").schedule().endocrine.start_day  # surgery day 21 + 28 days
    49.0
    """

    drug: str
    start_day: float
    years: float = 5.0

    @property
    def end_day(self) -> float:
        """Last day of therapy (days from diagnosis)."""
        return self.start_day + self.years * DAYS_PER_YEAR


@dataclass(frozen=True)
class AntiHer2Course:
    """Anti-HER2 therapy in a schedule: the antibodies ``agents`` given from ``start_day`` to ``end_day``
    (days from diagnosis).

    Examples
    --------
    >>> Strategy.parse("nact", "ac-paclitaxel-weekly-trastuzumab").schedule().anti_her2  # day 14 + 84, 52 weeks
    AntiHer2Course(agents=('trastuzumab',), start_day=98.0, end_day=462.0)
    """

    agents: tuple[str, ...]
    start_day: float
    end_day: float


@dataclass(frozen=True)
class Schedule:
    """What the model needs from a strategy: dose events, surgery day and the chemotherapy window (days).

    Built by :meth:`Strategy.schedule`; the engine (:func:`chemomet.model.engine.simulate_schedule`) also takes
    one directly, e.g. for a counterfactual schedule. All days are counted from diagnosis.

    Attributes
    ----------
    dose_events : tuple of (float, str, float)
        ``(day, drug, dose_mg)`` of every dose, sorted (days, drug name, mg).
    surgery_day : float or None
        Day of surgery (days); None: no surgery.
    chemo_days : tuple of (float, float) or None
        Days of the first and the last chemotherapy dose (days); None: no chemotherapy.
    neoadjuvant : bool
        True when chemotherapy comes before surgery.
    marks : tuple of float, default ()
        Extra days the model must resolve exactly, e.g. an interim assessment (days).
    endocrine : EndocrineCourse or None, default None
        Adjuvant endocrine therapy after surgery and chemotherapy, if any.
    anti_her2 : AntiHer2Course or None, default None
        Anti-HER2 therapy with and after chemotherapy, if the regimen carries it.

    Examples
    --------
    >>> schedule = Strategy.parse("nact").schedule()
    >>> schedule.surgery_day, schedule.chemo_days, schedule.neoadjuvant  # 14 + 161 + 28 days
    (203.0, (14.0, 175.0), True)
    >>> len(schedule.dose_events), schedule.dose_events[0]
    (20, (14.0, 'cyclophosphamide', 1080.0))
    >>> Schedule(dose_events=((0.0, "paclitaxel", 144.0),), surgery_day=28.0, chemo_days=(0.0, 0.0),
    ...          neoadjuvant=True).surgery_day
    28.0
    """

    dose_events: tuple[tuple[float, str, float], ...]
    surgery_day: float | None
    chemo_days: tuple[float, float] | None
    neoadjuvant: bool
    marks: tuple[float, ...] = ()  # extra days the model must resolve exactly (e.g. an interim assessment)
    endocrine: EndocrineCourse | None = None
    anti_her2: AntiHer2Course | None = None



@dataclass(frozen=True)
class Strategy:
    """A treatment strategy with its timing (days from diagnosis).

    kind: ``natural-history`` (no treatment, no surgery), ``surgery-only`` (surgery at ``surgery_day``, no
    systemic therapy: the untreated cohorts' setting), ``surgery-first`` (surgery at ``surgery_day``,
    adjuvant chemotherapy ``adjuvant_delay_days`` later), ``nact`` (chemotherapy from ``chemo_start_day``,
    surgery ``surgery_delay_days`` after the last dose), optionally with an accompanying drug and, after surgery
    and chemotherapy, adjuvant endocrine therapy (``:tamoxifen``, ``:anastrozole``), which acts only in
    ER-positive disease.

    Response-adapted NACT: with ``interim_day`` set (days after the first dose), the tumour is measured then;
    a patient whose diameter has shrunk by less than ``response_threshold`` (RECIST partial response: 0.3)
    stops chemotherapy and goes to surgery ``early_surgery_delay_days`` later.

    Build it from a name with :meth:`parse`, which validates the timing; :meth:`schedule` gives the dose events
    and the surgery day. Frozen.

    Attributes
    ----------
    kind : {"natural-history", "surgery-only", "surgery-first", "nact"}
        The kind of strategy.
    regimen : Regimen or None
        The chemotherapy regimen (None without chemotherapy).
    accompanying : Accompanying or None
        The accompanying drug, if any.
    chemo_start_day : float, default 14.0
        First NACT dose (days from diagnosis).
    surgery_day : float, default 21.0
        Surgery of ``surgery-first`` and ``surgery-only`` (days from diagnosis).
    adjuvant_delay_days : float, default 28.0
        Surgery to the first adjuvant dose (days).
    surgery_delay_days : float, default 28.0
        Last NACT dose to surgery (days).
    interim_day : float or None
        Response assessment of response-adapted NACT (days after the first dose); None: not adaptive.
    response_threshold : float, default 0.3
        Fractional decrease of the diameter a responder reaches by ``interim_day``.
    early_surgery_delay_days : float, default 14.0
        Interim assessment to early surgery of a non-responder (days).
    label : str, default ""
        A name to show instead of the generated :attr:`name`.
    endocrine : str or None, default None
        The adjuvant endocrine drug (a drug of role ``endocrine``), if any.
    endocrine_years : float, default 5.0
        Length of endocrine therapy (years).

    Examples
    --------
    >>> st = Strategy.parse("nact+rebastinib")
    >>> st.kind, st.name, st.regimen.key
    ('nact', 'nact+rebastinib', 'ac-paclitaxel-weekly')
    >>> sch = st.schedule()
    >>> sch.surgery_day, sch.chemo_days  # chemotherapy from day 14, surgery 28 days after the last dose
    (203.0, (14.0, 175.0))
    >>> sum(drug == "rebastinib" for _, drug, _ in sch.dose_events)  # every 12 h from day 14 until surgery
    378
    >>> Strategy.parse("surgery-first").schedule().chemo_days  # surgery on day 21, adjuvant from day 49
    (49.0, 210.0)
    """

    kind: Literal["natural-history", "surgery-only", "surgery-first", "nact"]
    regimen: Regimen | None = None
    accompanying: Accompanying | None = None
    chemo_start_day: float = 14.0
    surgery_day: float = 21.0
    adjuvant_delay_days: float = 28.0
    surgery_delay_days: float = 28.0
    interim_day: float | None = None
    response_threshold: float = 0.3
    early_surgery_delay_days: float = 14.0
    label: str = field(default="", compare=False)
    endocrine: str | None = None
    endocrine_years: float = 5.0

    @property
    def name(self) -> str:
        """Short name, e.g. ``nact+rebastinib`` or ``surgery-first:tamoxifen``."""
        if self.label:
            return self.label
        base = "nact-adaptive" if self.interim_day is not None else self.kind
        base += f"+{self.accompanying.drug}" if self.accompanying else ""
        return base + (f":{self.endocrine}" if self.endocrine else "")

    @classmethod
    def parse(
        cls,
        name: str,
        regimen: str | Regimen = DEFAULT_REGIMEN,
        *,
        timing: Timing | None = None,
        drugs: dict[str, Drug] | None = None,
        **overrides: float | None,
    ) -> Strategy:
        """Build a strategy from its name: ``natural-history``, ``surgery-only``, ``surgery-first``, ``nact``,
        ``nact-adaptive`` or ``nact[-adaptive]+<drug>``, any but natural history optionally followed by
        ``:<endocrine drug>`` (adjuvant endocrine therapy for ``endocrine_years``).

        Parameters
        ----------
        name : the strategy's name.
        regimen : regimen key, regimen ``.toml`` file or :class:`Regimen` (ignored without chemotherapy).
        timing : a :class:`Timing` (default: the default timing).
        drugs : the drug table the accompanying drug is looked up in (default: :func:`load_drugs`).
        **overrides : any :class:`Timing` field (days, mg, h), e.g. ``surgery_delay_days=21``.

        Examples
        --------
        >>> st = Strategy.parse("nact+rebastinib", surgery_delay_days=21)
        >>> st.name, st.accompanying.dose_mg
        ('nact+rebastinib', 100.0)
        >>> Strategy.parse("nact-adaptive").interim_day   # the start of the paclitaxel phase
        84.0
        >>> Strategy.parse("surgery-first:anastrozole", endocrine_years=10).endocrine_years
        10.0
        """
        timing = timing or Timing()
        if overrides:
            unknown = sorted(set(overrides) - set(TIMING_RULES))
            if unknown:
                raise TypeError(f"Strategy.parse() got unknown timing keys {unknown}; allowed: {list(TIMING_RULES)}")
            timing = Timing.of("timing", **{**timing.model_dump(), **overrides})
        name, _, endocrine = name.partition(":")
        base, _, drug = name.partition("+")
        adaptive = base == "nact-adaptive"
        base = "nact" if adaptive else base
        if base not in ("natural-history", "surgery-only", "surgery-first", "nact") or (drug and base != "nact"):
            allowed = "natural-history, surgery-only, surgery-first, nact, nact-adaptive, nact[-adaptive]+<drug>"
            raise InputError(f"strategy = {name!r} is invalid; allowed: {allowed}")
        acc = None
        if drug:
            drugs = load_drugs() if drugs is None else drugs
            known = sorted(n for n, d in drugs.items() if d.role == "accompanying")
            if drug not in known:
                raise InputError(
                    f"strategy = {name!r}: accompanying drug {drug!r} is unknown; allowed: one of {known}"
                )
            d = drugs[drug]
            dose, interval = timing.accompanying_dose_mg, timing.accompanying_interval_h
            dose = d.default_dose_mg if dose is None else dose
            interval = d.default_interval_h if interval is None else interval
            if dose is None or interval is None:
                raise InputError(
                    f"strategy = {name!r}: drug {drug!r} has no default dose or interval; allowed: "
                    "accompanying_dose_mg and accompanying_interval_h given (unit: mg, h)"
                )
            acc = Accompanying(drug, float(dose), float(interval), float(timing.accompanying_start_offset_days))
        if endocrine:
            drugs = load_drugs() if drugs is None else drugs
            known = sorted(n for n, d in drugs.items() if d.role == "endocrine")
            if endocrine not in known or base == "natural-history":
                raise InputError(
                    f"strategy = {name + ':' + endocrine!r} is invalid; allowed: a strategy with surgery followed "
                    f"by :<endocrine drug>, one of {known}"
                )
        reg = None if base in ("natural-history", "surgery-only") else get_regimen(regimen)
        interim_day = timing.interim_day
        if adaptive and interim_day is None:
            interim_day = default_interim_day(reg)
        if interim_day is not None and reg is not None and not interim_day <= reg.last_dose_day:
            raise InputError(
                f"interim_day = {interim_day!r} is invalid; allowed: 1 to {reg.last_dose_day:g} "
                "(unit: days after the first dose, at or before the last dose)"
            )
        return cls(
            kind=base,
            regimen=reg,
            accompanying=acc,
            chemo_start_day=timing.chemo_start_day,
            surgery_day=timing.surgery_day,
            adjuvant_delay_days=timing.adjuvant_delay_days,
            surgery_delay_days=timing.surgery_delay_days,
            interim_day=interim_day if base == "nact" else None,
            response_threshold=timing.response_threshold,
            early_surgery_delay_days=timing.early_surgery_delay_days,
            endocrine=endocrine or None,
            endocrine_years=timing.endocrine_years,
        )

    def early_surgery_schedule(self, drugs: dict[str, Drug] | None = None) -> Schedule:
        """The schedule of a non-responder: doses before the interim assessment, then early surgery.

        ``drugs``: the drug table holding the strategy's drugs (default: :func:`load_drugs`)."""
        assert self.interim_day is not None and self.kind == "nact"
        interim = self.chemo_start_day + self.interim_day
        surgery = interim + self.early_surgery_delay_days
        full = self.schedule()
        drugs = load_drugs() if drugs is None else drugs
        events = [e for e in full.dose_events if drugs[e[1]].role == "accompanying" and e[0] < surgery]
        events += [e for e in full.dose_events if drugs[e[1]].role == "cytotoxic" and e[0] < interim]
        chemo = [t for t, n, _ in events if drugs[n].role == "cytotoxic"]
        return Schedule(
            tuple(sorted(events)), surgery, (min(chemo), max(chemo)), neoadjuvant=True,
            endocrine=self._endocrine_after(surgery), anti_her2=full.anti_her2,
        )

    def _endocrine_after(self, day: float) -> EndocrineCourse | None:
        """The endocrine course starting ``adjuvant_delay_days`` after ``day`` (surgery or the last adjuvant dose)."""
        if self.endocrine is None:
            return None
        return EndocrineCourse(self.endocrine, day + self.adjuvant_delay_days, self.endocrine_years)

    def schedule(self) -> Schedule:
        """Dose events (chemotherapy and accompanying), the surgery day and the chemotherapy window.

        Examples
        --------
        >>> Strategy.parse("surgery-only").schedule()
        Schedule(dose_events=(), surgery_day=21.0, chemo_days=None, neoadjuvant=False, marks=(), endocrine=None,
                 anti_her2=None)
        >>> Strategy.parse("nact-adaptive").schedule().marks  # interim assessment: day 14 + 84
        (98.0,)
        """
        if self.kind == "natural-history":
            return Schedule((), None, None, neoadjuvant=False)
        if self.kind == "surgery-only":
            return Schedule((), self.surgery_day, None, neoadjuvant=False,
                            endocrine=self._endocrine_after(self.surgery_day))
        assert self.regimen is not None
        if self.kind == "surgery-first":
            surgery = self.surgery_day
            start = surgery + self.adjuvant_delay_days
        else:
            start = self.chemo_start_day
            surgery = start + self.regimen.last_dose_day + self.surgery_delay_days
        events = self.regimen.dose_events(start)
        last = max(t for t, _, _ in events)
        if self.accompanying is not None:
            acc = self.accompanying
            first = start + acc.start_offset_days
            stop = surgery if self.kind == "nact" else last + 1.0
            step = acc.interval_h / 24.0
            n = int((stop - first) / step - 1e-9) + 1 if stop > first else 0
            events = events + [(first + i * step, acc.drug, acc.dose_mg) for i in range(max(n, 0))]
        marks = () if self.interim_day is None else (start + self.interim_day,)
        after = last if self.kind == "surgery-first" else surgery
        her2 = self.regimen.anti_her2
        course = None
        if her2 is not None:
            first = start + her2.offset_days
            course = AntiHer2Course(tuple(her2.agents), first, first + 7.0 * her2.weeks)
        return Schedule(
            tuple(sorted(events)), surgery, (start, last), neoadjuvant=self.kind == "nact", marks=marks,
            endocrine=self._endocrine_after(after), anti_her2=course,
        )
