"""The trial specification: a validated, immutable description of one virtual trial (or a design comparison).

Read from TOML with :func:`read_trial_spec`. Every problem raises :class:`chemomet.errors.InputError` with one
line naming the field, the value, what is allowed and the unit. Time is in days unless a name says otherwise.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from chemomet.errors import Contradiction, FieldProblem, InputError, shown_value, validation_error
from chemomet.inputs import is_regular_file, read_data
from chemomet.patient import MIN_DIAMETER_MM, SUBTYPES
from chemomet.population import Population
from chemomet.regimens import DEFAULT_REGIMEN, TIMING_RULES, Strategy, Timing

ENDPOINTS = ("dmfs", "drfi", "pcr", "tmem_change", "os", "dfs")
"""dmfs: distant metastasis or death from any cause; drfi: distant relapse (deaths without it censored);
pcr: pathological complete response (binary); tmem_change: TMEM at surgery / baseline (log ratio); os: overall
survival (death from any cause: other causes by age, or breast cancer after distant metastasis); dfs: disease-free
survival (loco-regional recurrence, distant metastasis or death from any cause; :mod:`chemomet.local_recurrence`)."""
TIME_TO_EVENT = ("dmfs", "drfi", "os", "dfs")
_Endpoint = Literal["dmfs", "drfi", "pcr", "tmem_change", "os", "dfs"]
METASTATIC_MEDIAN_SURVIVAL_MONTHS = 28.0
"""Median time from distant metastasis to breast-cancer death (months): 28 (95% CI 25–31) months of
breast-cancer-specific survival from the first distant-metastasis record in the 1,432 women with a distant
metastasis among 6,338 diagnosed with non-metastatic breast cancer in New South Wales in 2001–2002 (Lord SJ et al.,
Med J Aust 2022;217(8):402–409, doi:10.5694/mja2.51687; their median overall survival after it: 23 months)."""
METASTATIC_SURVIVAL_SHAPE = 0.65
"""Weibull shape of the time from distant metastasis to breast-cancer death (dimensionless). Lord et al. 2022
report a hazard of breast-cancer death falling from 0.36 per year (95% CI 0.33–0.40) in the first year after the
metastasis to 0.14 (0.11–0.18) in the fourth; with the median of 28 months, shape 0.65 gives 0.40 and 0.17 per year
(shape 1, an exponential, would give 0.30 in every year)."""
SUBGROUPS = ("subtype", "tmem_high", "ctc_positive", "grade", "size", "age", "morphology")
MAX_HORIZON_DAYS = 40 * 365.25
PRIMARY_ANALYSES = ("logrank", "cox", "rmst")
"""Pre-specified test of a time-to-event endpoint: log-rank, Cox Wald, or the RMST difference (z test)."""
MULTIPLICITY = ("holm", "bonferroni")
"""Adjustment across the experimental arms (each compared with the control)."""
POWER_DEFINITIONS = ("favourable", "two-sided")
"""What power counts: p < alpha with the effect favouring the experimental arm, or p < alpha either way."""
PUBLISHED_MEASURES = ("hazard_ratio", "survival", "event_probability", "pcr_rate")
"""What a ``[[published]]`` entry reports: the hazard ratio of an arm vs the control (a time-to-event endpoint),
an arm's survival or event probability (``1 -`` survival) at ``years``, or an arm's pCR rate."""
TMEM_HIGH_DEFAULT_10HPF = 20.0
"""Default TMEM-high threshold: about the upper tertile of the population prior (median 15, sdlog 0.7)."""

# field -> (what is allowed, unit); used in every error message about that field.
RULES: dict[str, tuple[str, str | None]] = {
    "name": ("a text", None),
    "seed": ("an integer from 0 to 2**63 - 1", None),
    "patients_per_arm": ("an integer from 1 to 10000000", "patients"),
    "regimen": ("a shipped regimen key or a regimen .toml file", None),
    "population": (
        '"default", "priors", "calibrated" or a population .toml file (layout of data/population.toml)',
        None,
    ),
    "arms": ("a list of at least 2 [[arms]] tables, each with name and strategy", None),
    "strategy": ("surgery-only, surgery-first, nact or nact+<accompanying drug>", None),
    **TIMING_RULES,
    "subtypes": (f"a non-empty list of {list(SUBTYPES)}", None),
    "grades": ("a non-empty list of 1, 2, 3", None),
    "age_min_years": ("a number from 18 to 100, <= age_max_years", "years"),
    "age_max_years": ("a number from 18 to 100, >= age_min_years", "years"),
    "diameter_min_mm": ("a number from 0 to 200, <= diameter_max_mm", "mm"),
    "diameter_max_mm": (f"a number from {MIN_DIAMETER_MM:g} to 200, >= diameter_min_mm", "mm"),
    "nodes_positive_min": ("an integer from 0 to 60, <= nodes_positive_max", "lymph nodes"),
    "nodes_positive_max": ("an integer from 0 to 60, >= nodes_positive_min", "lymph nodes"),
    "tmem_min_10hpf": ("a number from 0 to 1000, <= tmem_max_10hpf", "doorways per 10 HPF"),
    "tmem_max_10hpf": ("a number from 0 to 1000, >= tmem_min_10hpf", "doorways per 10 HPF"),
    "tmem_high": ("true or false (TMEM >= biomarkers.tmem_high_min_10hpf)", None),
    "ctc_positive": ("true or false (>= 1 CTC per 7.5 mL at baseline)", None),
    "alveolar_or_trabecular": ("true or false", None),
    "tmem_high_min_10hpf": ("a number from 0.1 to 1000", "doorways per 10 HPF"),
    "duration_days": ("a number >= 0", "days"),
    "accrual.duration_days": ("a number from 0 to 7305 (20 years)", "days"),
    "follow_up.duration_days": ("0, or a number from 1 to 10957.5 (30 years)", "days"),
    "loss_rate_per_year": ("a number from 0 to 1", "1/year"),
    "other_cause_death_rate_per_year": ("a number from 0 to 1", "1/year"),
    "other_cause_hazard_ratio": ("a number from 0 to 20 (multiplier of the life-table hazard)", None),
    "breast_cancer_deaths": ("true or false", None),
    "metastatic_median_survival_months": ("a number > 0 and <= 600", "months"),
    "metastatic_survival_shape": ("a number from 0.2 to 5 (Weibull shape; 1 = exponential)", None),
    "primary": (f"one of {list(ENDPOINTS)}", None),
    "include": (f"a non-empty list of {list(ENDPOINTS)}", None),
    "alpha": ("a number >= 1e-06 and < 0.5", None),
    "rmst_days": ("a number from 1 to follow_up.duration_days (the minimum follow-up)", "days"),
    "primary_analysis": (f"one of {list(PRIMARY_ANALYSES)}", None),
    "multiplicity": (f"one of {list(MULTIPLICITY)}", None),
    "hierarchy": (
        f"a list of distinct endpoints of endpoints.include ({list(ENDPOINTS)}), the first being endpoints.primary",
        None,
    ),
    "definition": (f"one of {list(POWER_DEFINITIONS)}", None),
    "landmarks_years": ("a list of numbers from 0.01 to 40", "years"),
    "subgroups": (f"a list of {list(SUBGROUPS)}", None),
    "event_grid_days": ("a number from 1 to 60", "days"),
    "replicates": ("an integer from 0 to 100000 (0: no power analysis)", "trials"),
    "chunk_size": ("an integer from 16 to 1000000", "patients"),
    "designs": ("a list of at least 1 trial spec .toml files", None),
    "published": ("a list of [[published]] tables (label, endpoint, measure, value, source, ...)", None),
    "label": ("a text", None),
    "measure": (f"one of {list(PUBLISHED_MEASURES)}", None),
    "arm": ("the name of an arm of the trial", None),
    "years": ("a number > 0 and <= 40", "years"),
    "value": ("a finite number", None),
    "lower": ("a finite number <= value", None),
    "upper": ("a finite number >= value", None),
    "source": ("a text (where the number was published)", None),
    "power.patients_per_arm": ("a list of integers from 2 to 10000000", "patients"),
    "mechanisms": (
        "a table [mechanisms] of mechanism names (doorway, priming, mobilisation, drug_toxicity), each true, false "
        "or a table of parameter values",
        None,
    ),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Arm(Timing):
    """One arm: a strategy with its regimen and its :class:`~chemomet.regimens.Timing` (the timing fields sit
    directly in the arm's table). Days from diagnosis."""

    name: str = Field(min_length=1)
    strategy: str = Field(min_length=1)
    regimen: str | None = None

    def to_strategy(self, default_regimen: str) -> Strategy:
        """The :class:`~chemomet.regimens.Strategy` of this arm (raises InputError on unknown drugs)."""
        timing = Timing(**{k: getattr(self, k) for k in Timing.model_fields})
        return Strategy.parse(self.strategy, self.regimen or default_regimen, timing=timing)


class Eligibility(_Strict):
    """Who may enrol. Omitted criteria admit everyone; bounds are inclusive."""

    subtypes: tuple[Literal["HR+/HER2-", "HR+/HER2+", "HR-/HER2+", "TNBC"], ...] = Field(default=SUBTYPES, min_length=1)
    grades: tuple[Literal[1, 2, 3], ...] = Field(default=(1, 2, 3), min_length=1)
    age_min_years: float = Field(default=18.0, ge=18, le=100)
    age_max_years: float = Field(default=100.0, ge=18, le=100)
    diameter_min_mm: float = Field(default=0.0, ge=0, le=200)
    diameter_max_mm: float = Field(default=200.0, ge=MIN_DIAMETER_MM, le=200)
    nodes_positive_min: int = Field(default=0, ge=0, le=60)
    nodes_positive_max: int = Field(default=60, ge=0, le=60)
    tmem_min_10hpf: float = Field(default=0.0, ge=0, le=1000)
    tmem_max_10hpf: float = Field(default=1000.0, ge=0, le=1000)
    tmem_high: bool | None = None
    ctc_positive: bool | None = None
    alveolar_or_trabecular: bool | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Eligibility:
        for lo, hi, unit in (
            ("age_min_years", "age_max_years", "years"),
            ("diameter_min_mm", "diameter_max_mm", "mm"),
            ("nodes_positive_min", "nodes_positive_max", "lymph nodes"),
            ("tmem_min_10hpf", "tmem_max_10hpf", "doorways per 10 HPF"),
        ):
            if getattr(self, lo) > getattr(self, hi):
                raise Contradiction(
                    f"eligibility.{lo} = {getattr(self, lo)!r} is above eligibility.{hi} = {getattr(self, hi)!r}; "
                    f"allowed: {lo} <= {hi} (unit: {unit})"
                )
        if len(set(self.subtypes)) != len(self.subtypes) or len(set(self.grades)) != len(self.grades):
            raise Contradiction("eligibility.subtypes/grades list a value twice; allowed: each value once")
        return self


class Biomarkers(_Strict):
    """Biomarker definitions shared by eligibility and subgroups. TMEM-high: ``T0 >= tmem_high_min_10hpf``;
    CTC-positive: at least one CTC in the 7.5 mL baseline draw (Bidard 2018)."""

    tmem_high_min_10hpf: float = Field(default=TMEM_HIGH_DEFAULT_10HPF, ge=0.1, le=1000)


class Accrual(_Strict):
    """Uniform accrual over ``duration_days`` (calendar days from the first enrolment)."""

    duration_days: float = Field(default=730.0, ge=0, le=20 * 365.25)


class FollowUp(_Strict):
    """Analysis at ``duration_days`` after the last enrolment (minimum follow-up); exponential loss to
    follow-up (rate per year). ``other_cause_death_rate_per_year``: omitted (the default), each patient's death
    from other causes is drawn from her age with the life-table hazard (:class:`Mortality`); a number (per year,
    0 = none) keeps the earlier constant-rate model, for specs written before the life table."""

    duration_days: float = Field(default=5 * 365.25, ge=0, le=30 * 365.25)

    @field_validator("duration_days")
    @classmethod
    def _none_or_a_day(cls, v):
        if 0 < v < 1:  # a follow-up shorter than a day is an underflow or a unit slip, not a design
            raise ValueError("0, or from 1 day")
        return v
    loss_rate_per_year: float = Field(default=0.0, ge=0, le=1)
    other_cause_death_rate_per_year: float | None = Field(default=None, ge=0, le=1)


class Mortality(_Strict):
    """Deaths: from other causes by age, and from breast cancer after distant metastasis.

    ``other_cause_hazard_ratio``: multiplier of the age-based Gompertz–Makeham hazard of
    :mod:`chemomet.mortality` (fitted to the shipped US female life table; dimensionless, default 1; e.g. below 1
    for trial participants healthier than the population); not used when ``follow_up.other_cause_death_rate_per_year``
    is given. ``breast_cancer_deaths``: whether women die of breast cancer after a distant metastasis.
    ``metastatic_median_survival_months`` and ``metastatic_survival_shape``: the Weibull time from distant
    metastasis to breast-cancer death (months; shape dimensionless); defaults 28 months
    (:data:`METASTATIC_MEDIAN_SURVIVAL_MONTHS`, Lord et al., Med J Aust 2022: median breast-cancer-specific
    survival after a first distant metastasis, population-based, New South Wales 2001–2002) and 0.65
    (:data:`METASTATIC_SURVIVAL_SHAPE`: the falling hazard they report).
    """

    other_cause_hazard_ratio: float = Field(default=1.0, ge=0, le=20)
    breast_cancer_deaths: bool = True
    metastatic_median_survival_months: float = Field(default=METASTATIC_MEDIAN_SURVIVAL_MONTHS, gt=0, le=600)
    metastatic_survival_shape: float = Field(default=METASTATIC_SURVIVAL_SHAPE, ge=0.2, le=5)


class Endpoints(_Strict):
    """The primary endpoint (for power) and all endpoints analysed."""

    primary: _Endpoint = "dmfs"
    include: tuple[_Endpoint, ...] = Field(default=ENDPOINTS, min_length=1)

    @model_validator(mode="after")
    def _primary_included(self) -> Endpoints:
        if self.primary not in self.include:
            raise Contradiction(
                f"endpoints.primary = {self.primary!r} is not in endpoints.include = {list(self.include)}; "
                "allowed: a primary endpoint that is analysed"
            )
        return self


class Analysis(_Strict):
    """Statistical settings.

    ``alpha``: two-sided significance level. ``primary_analysis``: the pre-specified test of the time-to-event
    endpoints (``logrank``; ``cox``, the Wald test of the Cox hazard ratio; ``rmst``, the z test of the RMST
    difference to ``rmst_days``). ``rmst_days``: RMST horizon (days; default and maximum: the minimum follow-up).
    ``multiplicity``: adjustment across the experimental arms (``holm`` or ``bonferroni``). ``hierarchy``: the
    order in which endpoints are tested (fixed sequence: an arm's endpoint is tested only after its predecessor
    was rejected; default: the primary endpoint, then the other included endpoints in ``endpoints.include``
    order); included endpoints left out of it are exploratory. ``landmarks_years``: KM estimates and milestone
    differences (years). ``subgroups``: the forest plot and its interaction tests. ``event_grid_days``: spacing
    of the S(t) grid event times are sampled from (days).
    """

    alpha: float = Field(default=0.05, ge=1e-6, lt=0.5)  # below 1e-6 the normal quantile is no longer exact
    primary_analysis: Literal["logrank", "cox", "rmst"] = "logrank"
    rmst_days: float | None = Field(default=None, ge=1)
    multiplicity: Literal["holm", "bonferroni"] = "holm"
    hierarchy: tuple[_Endpoint, ...] | None = Field(default=None, min_length=1)
    landmarks_years: tuple[float, ...] = Field(default=(3.0, 5.0))
    subgroups: tuple[Literal["subtype", "tmem_high", "ctc_positive", "grade", "size", "age", "morphology"], ...] = (
        SUBGROUPS
    )
    event_grid_days: float = Field(default=14.0, ge=1, le=60)

    @field_validator("landmarks_years")
    @classmethod
    def _positive(cls, v):
        if any(not (0.01 <= x <= 40) for x in v):  # nan and inf too; 40 years: the longest horizon
            raise ValueError("landmarks must be from 0.01 to 40 years")
        return v


class Power(_Strict):
    """Replicate trials for power. ``replicates`` independent replicates are simulated, each with the largest
    size in ``patients_per_arm`` (or the spec's ``patients_per_arm``); at a size ``n`` every replicate is cut into
    disjoint blocks of ``n`` consecutive ranks per arm, each block an independent trial (no patient is in two
    trials of one size). ``definition``: what ``power`` reports, ``favourable`` (the two-sided test has
    p < alpha and the effect favours the experimental arm; about alpha / 2 when there is no effect) or
    ``two-sided`` (p < alpha in either direction); both are always computed."""

    replicates: int = Field(default=0, ge=0, le=100000)
    patients_per_arm: tuple[int, ...] = ()
    definition: Literal["favourable", "two-sided"] = "favourable"

    @field_validator("patients_per_arm")
    @classmethod
    def _sizes(cls, v):
        if any(isinstance(x, bool) or x < 2 or x > 10_000_000 for x in v):
            raise ValueError("sizes must be integers from 2 to 10000000")
        return tuple(sorted(set(v)))


class Published(_Strict):
    """A published result of the real trial a spec replicates, compared with the model's (``[[published]]``).

    ``measure``: ``hazard_ratio`` (arm ``arm`` vs the control, arm 0, on a time-to-event ``endpoint``),
    ``survival`` or ``event_probability`` (arm ``arm``'s Kaplan–Meier survival, or one minus it, at ``years``),
    ``pcr_rate`` (arm ``arm``'s pCR rate). A hazard ratio may be restricted to a period since entry,
    ``period_years = [a, b]`` (years; women still event-free at ``a``, followed to ``b``), as overviews report
    rate ratios by period. ``value`` with its 95% interval ``lower``–``upper`` when reported
    (proportions as fractions, e.g. 0.382), ``source`` where it was published, ``note`` how the model's endpoint
    differs from the trial's (e.g. DFS counts local recurrences, the model's DMFS does not). Not part of
    :meth:`TrialSpec.spec_hash`: adding a published number does not invalidate a run.
    """

    label: str = Field(min_length=1)
    endpoint: _Endpoint
    measure: Literal["hazard_ratio", "survival", "event_probability", "pcr_rate"]
    arm: str | None = None
    years: float | None = Field(default=None, gt=0, le=40)
    period_years: tuple[float, float] | None = None
    value: float = Field(allow_inf_nan=False)
    lower: float | None = Field(default=None, allow_inf_nan=False)
    upper: float | None = Field(default=None, allow_inf_nan=False)
    source: str = Field(min_length=1)
    note: str | None = None


class Execution(_Strict):
    """Patients per chunk (one task and one checkpoint file per chunk; results do not depend on it)."""

    chunk_size: int = Field(default=2048, ge=16, le=1_000_000)


class TrialSpec(_Strict):
    """A validated virtual trial. Arm 0 is the control; every other arm is compared with it.

    Read it from TOML with :func:`read_trial_spec` or from a dict with :func:`parse_trial_spec`, which also check
    strategies, regimens, drugs and the population, and give one-line :class:`~chemomet.errors.InputError`
    messages; field by field in docs/trials.md. Frozen; unknown fields are refused. Time is in days unless a
    name says otherwise.

    Attributes
    ----------
    name : str
        The trial's name (also names the default run directory).
    seed : int, default 0
        Seed of every random draw (0 to 2**63 - 1).
    patients_per_arm : int
        Patients enrolled per arm (patients, 1 to 10000000).
    regimen : str, default "ac-paclitaxel-weekly"
        Regimen of the arms that do not name their own (shipped key or regimen ``.toml`` file).
    population : str, default "default"
        ``"default"``, ``"priors"``, ``"calibrated"`` or a population ``.toml`` file.
    population_config : dict or None
        The population configuration, resolved from ``population`` when the spec is read (part of the hash);
        None for a spec built directly, resolved by :meth:`make_population`.
    arms : tuple of Arm
        2 to 8 arms, each a strategy with its timing (days), e.g. ``{"name": "NACT", "strategy": "nact"}``.
    eligibility : Eligibility
        Who is enrolled: subtypes, grades, age (years), diameter (mm), nodes, TMEM (doorways per 10 HPF),
        CTC-positive, morphology.
    biomarkers : Biomarkers
        TMEM-high threshold (doorways per 10 HPF).
    accrual : Accrual
        Uniform accrual over ``duration_days`` (days).
    follow_up : FollowUp
        Minimum follow-up (days), loss to follow-up (1/year) and, in specs written before the life table, a
        constant rate of death from other causes (1/year).
    mortality : Mortality
        Death from other causes by age (life table; hazard multiplier) and from breast cancer after distant
        metastasis (Weibull median in months, shape).
    endpoints : Endpoints
        Primary endpoint and endpoints analysed (``dmfs``, ``drfi``, ``pcr``, ``tmem_change``, ``os``).
    analysis : Analysis
        ``alpha``, the pre-specified analysis of time-to-event endpoints (log-rank, Cox or RMST), RMST horizon
        (days), multiplicity across arms (Holm or Bonferroni), the hierarchy of endpoints, landmarks (years),
        subgroups, event grid (days).
    power : Power
        Replicate trials, sizes (patients per arm) for power curves, and the definition of power shown.
    published : tuple of Published
        Published results of the real trial the spec replicates (hazard ratios, survival or event probabilities
        at a number of years, pCR rates, with 95% intervals and sources), compared with the model's in the
        summary (``published``) and in ``replication.png``; not part of :meth:`spec_hash`.
    execution : Execution
        Patients per chunk (not part of the science, nor of :meth:`spec_hash`).
    mechanisms : dict or None
        Prometastatic mechanisms switched on or off for every arm (a ``[mechanisms]`` table, e.g.
        ``mobilisation = true`` or ``[mechanisms.priming]`` ``take_increase = 2.0``; validated by
        :func:`chemomet.mechanisms.mechanism_settings`); None: the population's own (the shipped model). Part of
        :meth:`spec_hash` when given; recorded in the summary (``mechanisms``).

    Examples
    --------
    >>> spec = TrialSpec(name="demo", patients_per_arm=100,
    ...                  arms=[{"name": "NACT", "strategy": "nact"},
    ...                        {"name": "NACT + rebastinib 50 mg", "strategy": "nact+rebastinib",
    ...                         "accompanying_dose_mg": 50}])
    >>> [s.name for s in spec.strategies()], spec.strategies()[1].accompanying.dose_mg
    (['nact', 'nact+rebastinib'], 50.0)
    >>> spec.horizon_days  # default accrual 730 days + follow-up 5 years (days)
    2556.25
    >>> spec.n_enrolled  # 2 arms x 100 patients, one replicate
    200
    >>> len(spec.spec_hash())  # SHA-256, hex
    64
    >>> spec.hierarchy, spec.analysis.primary_analysis, spec.analysis.multiplicity  # the confirmatory design
    (('dmfs', 'drfi', 'pcr', 'tmem_change', 'os', 'dfs'), 'logrank', 'holm')
    """

    name: str = Field(min_length=1)
    seed: int = Field(default=0, ge=0, le=2**63 - 1)
    patients_per_arm: int = Field(ge=1, le=10_000_000)
    regimen: str = DEFAULT_REGIMEN
    population: str = "default"
    population_config: dict | None = None  # resolved from ``population`` when the spec is read; part of the hash
    arms: tuple[Arm, ...] = Field(min_length=2, max_length=8)
    eligibility: Eligibility = Eligibility()
    biomarkers: Biomarkers = Biomarkers()
    accrual: Accrual = Accrual()
    follow_up: FollowUp = FollowUp()
    mortality: Mortality = Mortality()
    endpoints: Endpoints = Endpoints()
    analysis: Analysis = Analysis()
    power: Power = Power()
    published: tuple[Published, ...] = ()
    execution: Execution = Execution()
    mechanisms: dict[str, Any] | None = None

    @field_validator("seed", "patients_per_arm", mode="before")
    @classmethod
    def _integer(cls, v):
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError("must be an integer")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> TrialSpec:
        names = [a.name for a in self.arms]
        if len(set(names)) != len(names):
            raise Contradiction(f"arms.name = {names!r} repeats a name; allowed: distinct arm names")
        if self.horizon_days > MAX_HORIZON_DAYS:
            raise Contradiction(
                f"accrual.duration_days + follow_up.duration_days = {self.horizon_days:g} is invalid; "
                f"allowed: > 0 and <= {MAX_HORIZON_DAYS:g} (unit: days)"
            )
        if self.horizon_days < 1 and set(self.endpoints.include) & set(TIME_TO_EVENT):
            raise Contradiction(
                f"accrual.duration_days + follow_up.duration_days = {self.horizon_days:g} is invalid; allowed: "
                ">= 1 for time-to-event endpoints (unit: days)"
            )
        fu = self.follow_up.duration_days
        if self.analysis.rmst_days is not None and self.analysis.rmst_days > fu:
            raise FieldProblem(
                "analysis.rmst_days",
                self.analysis.rmst_days,
                f"a number from 1 to follow_up.duration_days = {fu:g} (the minimum follow-up)",
                "days",
            )
        if self.analysis.primary_analysis == "rmst" and fu <= 0:
            raise FieldProblem(
                "analysis.primary_analysis",
                "rmst",
                "'logrank' or 'cox' when follow_up.duration_days = 0 (the RMST horizon must be > 0 and <= the "
                "minimum follow-up)",
            )
        h = self.analysis.hierarchy
        if h is not None and (
            h[0] != self.endpoints.primary or len(set(h)) != len(h) or set(h) - set(self.endpoints.include)
        ):
            raise FieldProblem(
                "analysis.hierarchy",
                list(h),
                f"distinct endpoints of endpoints.include = {list(self.endpoints.include)}, the first being "
                f"endpoints.primary = {self.endpoints.primary!r}",
            )
        for i, pub in enumerate(self.published):
            self._check_published(i, pub, names)
        e, cut = self.eligibility, self.biomarkers.tmem_high_min_10hpf
        if e.tmem_high is True and e.tmem_max_10hpf < cut:
            raise Contradiction(
                f"eligibility.tmem_high = true contradicts eligibility.tmem_max_10hpf = {e.tmem_max_10hpf!r} below "
                f"biomarkers.tmem_high_min_10hpf = {cut!r}; allowed: tmem_max_10hpf >= {cut!r} "
                "(unit: doorways per 10 HPF)"
            )
        if e.tmem_high is False and e.tmem_min_10hpf >= cut:
            raise Contradiction(
                f"eligibility.tmem_high = false contradicts eligibility.tmem_min_10hpf = {e.tmem_min_10hpf!r} at or "
                f"above biomarkers.tmem_high_min_10hpf = {cut!r}; allowed: tmem_min_10hpf < {cut!r} "
                "(unit: doorways per 10 HPF)"
            )
        return self

    def _check_published(self, i: int, pub: Published, names: list[str]) -> None:
        where = f"published.{i}"
        tte = pub.endpoint in TIME_TO_EVENT
        if pub.measure == "pcr_rate" and pub.endpoint != "pcr":
            raise FieldProblem(f"{where}.endpoint", pub.endpoint, "'pcr' for measure = 'pcr_rate'")
        if pub.measure != "pcr_rate" and not tte:
            raise FieldProblem(f"{where}.endpoint", pub.endpoint, f"one of {list(TIME_TO_EVENT)} for {pub.measure}")
        if pub.arm is not None and pub.arm not in names:
            raise FieldProblem(f"{where}.arm", pub.arm, f"one of the arms' names {names}")
        if pub.measure == "hazard_ratio" and pub.arm == names[0]:
            raise FieldProblem(f"{where}.arm", pub.arm, f"an experimental arm (not the control {names[0]!r})")
        if pub.measure != "hazard_ratio" and pub.arm is None:
            raise FieldProblem(f"{where}.arm", None, f"one of the arms' names {names} for {pub.measure}")
        if pub.measure in ("survival", "event_probability") and pub.years is None:
            raise FieldProblem(f"{where}.years", None, f"a number > 0 and <= 40 for {pub.measure}", "years")
        if pub.measure == "hazard_ratio" and not pub.value > 0:
            raise FieldProblem(f"{where}.value", pub.value, "a number > 0 for a hazard ratio")
        if pub.measure != "hazard_ratio" and not 0 <= pub.value <= 1:
            raise FieldProblem(f"{where}.value", pub.value, "a fraction from 0 to 1 (e.g. 0.382 for 38.2%)")
        if (pub.lower is not None and pub.lower > pub.value) or (pub.upper is not None and pub.upper < pub.value):
            raise FieldProblem(
                f"{where}.lower/upper", [pub.lower, pub.upper], f"lower <= value = {pub.value!r} <= upper"
            )

    # ------------------------------------------------------------------ derived quantities
    @property
    def horizon_days(self) -> float:
        """Longest possible observation (days from a patient's enrolment): accrual + minimum follow-up."""
        return self.accrual.duration_days + self.follow_up.duration_days

    @property
    def rmst_days(self) -> float:
        """RMST horizon (days): as given, else the minimum follow-up (with no follow-up, the accrual period:
        then the RMST is descriptive and cannot be the primary analysis)."""
        if self.analysis.rmst_days is not None:
            return self.analysis.rmst_days
        return self.follow_up.duration_days if self.follow_up.duration_days > 0 else self.horizon_days

    @property
    def hierarchy(self) -> tuple[str, ...]:
        """Endpoints tested in fixed sequence (confirmatory): ``analysis.hierarchy``, by default the primary
        endpoint then the other included endpoints in ``endpoints.include`` order."""
        if self.analysis.hierarchy is not None:
            return self.analysis.hierarchy
        return (self.endpoints.primary, *[e for e in self.endpoints.include if e != self.endpoints.primary])

    @property
    def n_arms(self) -> int:
        """Number of arms."""
        return len(self.arms)

    @property
    def patients_per_replicate_arm(self) -> int:
        """Patients simulated per arm of each replicate: the trial's size or the largest power size."""
        return max([self.patients_per_arm, *self.power.patients_per_arm])

    @property
    def n_replicates(self) -> int:
        """Independent trials simulated (replicate 0 is the trial itself)."""
        return max(1, self.power.replicates)

    @property
    def n_enrolled(self) -> int:
        """Patients simulated in all (all replicates and arms)."""
        return self.n_replicates * self.n_arms * self.patients_per_replicate_arm

    def make_population(self) -> Population:
        """The population model virtual patients are drawn from (the configuration resolved when the spec was
        read, so every worker uses the same one), with the spec's ``[mechanisms]`` applied."""
        pop = Population(
            _population_config(self.population, None, "trial spec")
            if self.population_config is None else self.population_config
        )
        return pop.with_mechanisms(self.mechanisms) if self.mechanisms is not None else pop

    def strategies(self) -> list[Strategy]:
        """One :class:`~chemomet.regimens.Strategy` per arm."""
        return [a.to_strategy(self.regimen) for a in self.arms]

    def spec_hash(self) -> str:
        """SHA-256 of the scientific content (everything except ``execution`` and ``published``): a run
        directory's identity."""
        leave_out = {"execution", "published"} | ({"mechanisms"} if self.mechanisms is None else set())
        data = self.model_dump(mode="json", exclude=leave_out)  # no mechanisms table: the hash of older specs
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


class DesignComparison(_Strict):
    """Several trial designs whose power curves are drawn together (``designs``: spec files, relative to the
    comparison file). ``power`` overrides each design's replicates and sizes.

    Read from a TOML file with ``designs = [...]`` by :func:`read_trial_spec`, which fills ``specs``; run with
    :func:`~chemomet.trial.run_trial`. Frozen; unknown fields are refused.

    Attributes
    ----------
    name : str
        The comparison's name.
    designs : tuple of str
        1 to 8 trial spec ``.toml`` files, relative to the comparison file.
    power : Power or None
        Replicate trials and sizes (patients per arm) that replace each design's own.
    specs : tuple of TrialSpec
        The designs, read and validated (filled by :func:`read_trial_spec`).

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "allcomers.toml").write_text('''
    ... name = "all-comers"
    ... patients_per_arm = 500
    ... [[arms]]
    ... name = "NACT"
    ... strategy = "nact"
    ... [[arms]]
    ... name = "NACT + rebastinib"
    ... strategy = "nact+rebastinib"
    ... ''')
    >>> _ = (folder / "power.toml").write_text('''
    ... name = "power of the all-comers design"
    ... designs = ["allcomers.toml"]
    ... [power]
    ... replicates = 4
    ... patients_per_arm = [250, 500]
    ... ''')
    >>> comparison = read_trial_spec(folder / "power.toml")
    >>> type(comparison).__name__, [s.name for s in comparison.specs]
    ('DesignComparison', ['all-comers'])
    >>> comparison.specs[0].power.replicates, comparison.specs[0].power.patients_per_arm
    (4, (250, 500))
    """

    name: str = Field(min_length=1)
    designs: tuple[str, ...] = Field(min_length=1, max_length=8)
    power: Power | None = None
    specs: tuple[TrialSpec, ...] = ()


_TOML_TYPES = {
    bool: "a boolean (true or false)", int: "an integer", float: "a number", str: "a text", list: "a list",
    dict: "a table",
}


def _section_problem(err: ValidationError, where: str) -> InputError | None:
    """A top-level section given as the wrong TOML type (``eligibility = 3``, ``[arms]`` for ``[[arms]]``): one line
    naming the section, what was given and the type expected; None for any other problem."""
    first = err.errors()[0]
    loc, kind, given = first["loc"], first["type"], first.get("input")
    if len(loc) != 1 or not isinstance(loc[0], str):
        return None
    name, what = loc[0], _TOML_TYPES.get(type(given), type(given).__name__)
    if kind in ("model_type", "model_attributes_type", "dict_type"):  # a section of fields ([eligibility], ...)
        return InputError(
            f"{where}: {name} = {shown_value(given)} is {what}; allowed: a table [{name}] of its fields "
            "(see docs/trials.md)"
        )
    if kind in ("tuple_type", "list_type") and isinstance(given, dict):  # [arms] written for [[arms]]
        allowed = RULES.get(name, ("a list", None))[0]
        return InputError(
            f"{where}: {name} is a single table [{name}]; allowed: {allowed} (a list: write [[{name}]] with double "
            "brackets for each entry)"
        )
    return None


def _pretty(err: ValidationError, where: str) -> InputError:
    section = _section_problem(err, where)
    if section is not None:
        return section
    return validation_error(
        err, where, RULES, unknown="see docs/trials.md", counted=("arms", "subtypes", "grades", "include", "designs")
    )


def _load_toml(path: Path) -> dict:
    if path.suffix.lower() != ".toml":
        raise InputError(f"trial spec = {str(path)!r} is invalid; allowed: a .toml file")
    if not path.exists() and not path.is_symlink():
        raise InputError(f"trial spec = {str(path)!r}: file not found; allowed: a readable trial .toml file")
    return read_data(path, "trial spec", where=path.name)


def _population_config(name: str, base: Path | None, where: str) -> dict:
    """The population configuration a spec names: ``default`` (what ``Population()`` uses: the shipped
    calibration when present, else the priors), ``priors``, ``calibrated`` (the shipped calibration) or a file."""
    if name == "default":
        return Population().config
    if name == "priors":
        return Population.priors().config if hasattr(Population, "priors") else Population().config
    if name == "calibrated":
        from chemomet.calibrate.shipped import calibrated_config

        return calibrated_config()
    path = Path(name) if base is None or Path(name).is_absolute() else base / name
    if path.suffix.lower() != ".toml" or not is_regular_file(path):
        allowed, _ = RULES["population"]
        raise InputError(f"{where}: population = {name!r} is invalid; allowed: {allowed}")
    config = read_data(path, "population", where=f"{where}: population = {name!r}")
    try:
        Population(config).sample(8, 0)
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(
            f"{where}: population = {name!r} is invalid ({type(err).__name__}: {err}); allowed: the layout of "
            "data/population.toml"
        ) from None
    return config


def _regimen_path(name, base: Path | None):
    """A regimen ``.toml`` file named relative to the spec's folder, as an absolute path (else as given)."""
    if base is None or not isinstance(name, str) or not name.lower().endswith(".toml") or Path(name).is_absolute():
        return name
    candidate = base / name
    return str(candidate.resolve()) if is_regular_file(candidate) else name


def _regimens_next_to_spec(table: dict, base: Path | None) -> dict:
    """The table with regimen files (of the spec and of each arm) looked up next to the spec first."""
    if base is None:
        return table
    out = dict(table)
    if "regimen" in out:
        out["regimen"] = _regimen_path(out["regimen"], base)
    if isinstance(out.get("arms"), list):
        out["arms"] = [
            {**a, "regimen": _regimen_path(a["regimen"], base)} if isinstance(a, dict) and "regimen" in a else a
            for a in out["arms"]
        ]
    return out


def parse_trial_spec(table: dict, where: str = "trial spec", base: Path | None = None) -> TrialSpec:
    """Validate a trial spec given as a dict (the TOML layout); strategies, regimens, drugs and the population
    are checked. ``base``: the folder relative paths (population file) refer to.

    Parameters
    ----------
    table : dict
        The fields of :class:`TrialSpec`, as in a trial spec TOML file (docs/trials.md).
    where : str, default "trial spec"
        Where the table came from; the prefix of any error message.
    base : pathlib.Path, optional
        The folder a relative ``population`` file is looked up in (default: the working directory).

    Returns
    -------
    TrialSpec
        The validated spec, with ``population_config`` resolved.

    Raises
    ------
    InputError
        For the first invalid, missing or unknown field, an inconsistency between fields, an unknown strategy
        or drug, or an invalid population.

    Examples
    --------
    >>> spec = parse_trial_spec({"name": "demo", "patients_per_arm": 100,
    ...                          "arms": [{"name": "NACT", "strategy": "nact"},
    ...                                   {"name": "NACT + rebastinib", "strategy": "nact+rebastinib"}],
    ...                          "follow_up": {"duration_days": 1096}})
    >>> spec.n_arms, spec.horizon_days, spec.population_config is not None  # 730 + 1096 days
    (2, 1826.0, True)
    >>> parse_trial_spec({"name": "demo", "patients_per_arm": 100, "arms": [{"name": "NACT", "strategy": "nact"}]})
    Traceback (most recent call last):
    ...
    chemomet.errors.InputError: trial spec: arms has 1 entries; allowed: a list of at least 2 [[arms]] tables,
    each with name and strategy
    """
    if not isinstance(table, dict):
        raise InputError(f"{where}: {table!r} is invalid; allowed: a table of trial fields")
    if "population_config" in table:
        raise InputError(f'{where}: population_config is not a known field; allowed: population = "..."')
    arms = table.get("arms")
    if isinstance(arms, list):
        for i, arm in enumerate(arms):
            if isinstance(arm, dict) and not arm:
                raise InputError(f"{where}: arms.{i} is empty; required: a table with name and strategy")
    table = _regimens_next_to_spec(table, base)
    try:
        spec = TrialSpec(**table)
    except ValidationError as err:
        raise _pretty(err, where) from None
    except Contradiction as err:  # pragma: no cover - pydantic wraps these
        raise InputError(f"{where}: {err}") from None
    for i, arm in enumerate(spec.arms):
        if arm.strategy == "natural-history":
            raise InputError(
                f"{where}: arms.{i}.strategy = 'natural-history' is invalid; allowed: {RULES['strategy'][0]}"
            )
        try:
            arm.to_strategy(spec.regimen)
        except InputError as err:
            raise InputError(f"{where}: arms.{i} ({arm.name}): {err}") from None
    if spec.mechanisms is not None:
        from chemomet.mechanisms import mechanism_settings

        try:
            mechanism_settings(spec.mechanisms)
        except InputError as err:
            raise InputError(f"{where}: {err}") from None
    return spec.model_copy(update={"population_config": _population_config(spec.population, base, where)})


def read_trial_spec(path: str | Path) -> TrialSpec | DesignComparison:
    """Read a trial spec (or a design comparison, a file with ``designs = [...]``) from TOML.

    Raises :class:`~chemomet.errors.InputError` with one line on any problem.

    Parameters
    ----------
    path : str or pathlib.Path
        A trial spec ``.toml`` file (layout in docs/trials.md and ``examples/trials/``); a relative
        ``population`` file or design file is looked up next to it.

    Returns
    -------
    TrialSpec or DesignComparison
        The validated spec; a :class:`DesignComparison` (with its designs read) for a file with ``designs``.

    Raises
    ------
    InputError
        If the file is not a readable ``.toml`` file or holds an invalid spec (the message names the file).

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "tmem_high.toml"
    >>> _ = path.write_text('''
    ... name = "NACT vs NACT + rebastinib, TMEM-high"
    ... patients_per_arm = 500
    ... [[arms]]
    ... name = "NACT"
    ... strategy = "nact"
    ... [[arms]]
    ... name = "NACT + rebastinib"
    ... strategy = "nact+rebastinib"
    ... [eligibility]
    ... tmem_high = true
    ... ''')
    >>> spec = read_trial_spec(path)
    >>> spec.eligibility.tmem_high, spec.biomarkers.tmem_high_min_10hpf  # doorways per 10 HPF
    (True, 20.0)
    >>> read_trial_spec(path.with_suffix(".json"))
    Traceback (most recent call last):
    ...
    chemomet.errors.InputError: trial spec = '.../tmem_high.json' is invalid; allowed: a .toml file
    """
    path = Path(path)
    table = _load_toml(path)
    where = path.name
    if "designs" not in table:
        return parse_trial_spec(table, where, path.parent)
    try:
        comp = DesignComparison(**table)
    except ValidationError as err:
        raise _pretty(err, where) from None
    specs = []
    for d in comp.designs:
        sub = (path.parent / d).resolve()
        if sub == path.resolve():
            raise InputError(f"{where}: designs = {d!r} names the comparison itself; allowed: trial spec files")
        spec = parse_trial_spec(_load_toml(sub), f"{where} -> {Path(d).name}", sub.parent)
        if comp.power is not None:
            spec = spec.model_copy(update={"power": comp.power})
        specs.append(spec)
    return comp.model_copy(update={"specs": tuple(specs)})
