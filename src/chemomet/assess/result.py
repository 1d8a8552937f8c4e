"""The result of :func:`~chemomet.assess.assess` as a validated model that documents its own schema.

:class:`Assessment` holds everything the HTML report, the terminal summary and ``chemomet assess --json`` show.
:meth:`Assessment.to_dict` (``model_dump(mode="json")``) gives the JSON-ready dict, :meth:`Assessment.to_json` the
text that ``--json`` prints, and :meth:`Assessment.json_schema` the JSON schema (every field's meaning and unit).

Conventions: probabilities are in [0, 1]; risks and risk differences are absolute (0.024 = 2.4 percentage points);
a "10-year risk" is the probability of a distant metastasis within 10 years of diagnosis; days count from
diagnosis unless a field says otherwise. Intervals are posterior means with central credible intervals at
``settings.credible_level`` over the virtual twins.

Every field has a default (``None`` or empty), so a partial result, such as an older file or a hand-written
example, still validates and the report shows what is missing as "—". :func:`~chemomet.assess.assess` always
fills every field, and its output always carries every key (the serialization schema marks them all required).
Unknown keys are refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chemomet.assess.settings import Decision
from chemomet.fileio import json_safe
from chemomet.patient import DiameterMeasurement, Morphology, Status

__all__ = [
    "Accuracy",
    "AccuracyStage",
    "Assessment",
    "Band",
    "BiomarkerEvidence",
    "Driver",
    "DrugVerdict",
    "DynamicUpdate",
    "Evidence",
    "ExcessParts",
    "InputRow",
    "Interval",
    "PatientRecord",
    "Recommendation",
    "RiskDifference",
    "RunSettings",
    "StrategyResult",
    "StrategyTrajectories",
    "Trajectories",
    "as_assessment",
]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_serialization_defaults_required=True)


class Interval(_Part):
    """Posterior mean and central credible interval of a per-twin quantity, in the quantity's unit.

    All three are ``None`` when no simulated twin gives a finite value.
    """

    mean: float | None = Field(None, description="Posterior mean (importance-weighted over the simulated twins).")
    lo: float | None = Field(None, description="Lower bound of the central credible interval.")
    hi: float | None = Field(None, description="Upper bound of the central credible interval.")


class RiskDifference(Interval):
    """A difference of absolute 10-year distant-metastasis risks (probability; 0.01 = 1 percentage point) with the
    posterior probability that it is positive."""

    p_positive: float | None = Field(None, description="Posterior probability that the difference is > 0.")


class PatientRecord(_Part):
    """The patient as assessed: the fields of :class:`chemomet.patient.Patient`, in its order and units."""

    id: str | None = Field(None, description="The patient's label.")
    age: float | None = Field(None, description="Age at diagnosis (years).")
    diameter_mm: float | None = Field(None, description="Largest tumour diameter at diagnosis (mm).")
    grade: Literal[1, 2, 3] | None = Field(None, description="Histological grade.")
    er: Status | None = Field(None, description="Oestrogen receptor status.")
    pr: Status | None = Field(None, description="Progesterone receptor status.")
    her2: Status | None = Field(None, description="HER2 status.")
    ki67_percent: float | None = Field(None, description="Ki67 (% positive tumour cells); null: not measured.")
    nodes_positive: int | None = Field(None, description="Positive lymph nodes (count).")
    tmem_score: float | None = Field(
        None, description="TMEM doorway score (doorways per 10 or 20 HPF, see tmem_convention); null: not measured."
    )
    tmem_convention: Literal["10HPF", "20HPF"] | None = Field(
        None, description="Number of high-power fields the TMEM score counts over."
    )
    ctc_count: int | None = Field(None, description="Circulating tumour cells (cells per 7.5 mL); null: not measured.")
    morphology: list[Morphology] = Field([], description="Reported growth patterns.")
    bsa_m2: float | None = Field(None, description="Body surface area (m²).")
    subtype: Literal["HR+/HER2-", "HR+/HER2+", "HR-/HER2+", "TNBC"] | None = Field(
        None, description="Receptor subtype."
    )
    tmem_score_after_nact: float | None = Field(
        None, description="TMEM score of the post-NACT surgical specimen (same convention); null: not measured."
    )
    nact_diameters: list[DiameterMeasurement] = Field(
        [], description="Tumour diameters measured during NACT: day after the first dose, diameter (mm; 0: not "
        "measurable)."
    )
    parameters: dict[str, float] = Field({}, description="Model parameters the patient file fixes (their units).")


class InputRow(_Part):
    """One row of the report's inputs table (display text)."""

    name: str | None = Field(None, description="The input, e.g. 'TMEM score'.")
    value: str | None = Field(None, description="Its value with unit, e.g. '32 per 10HPF'; '—' when not measured.")
    status: str | None = Field(
        None,
        description="'given' (a covariate), 'measured' (a biomarker) or 'not measured — integrated over the "
        "population prior'.",
    )


class RunSettings(_Part):
    """How the assessment was computed: sample sizes, seed, regimen, horizon and the decision thresholds."""

    n_twins: int | None = Field(None, description="Virtual twins drawn and weighted by the measurements (count).")
    n_simulated: int | None = Field(None, description="Resampled twins simulated under every strategy (draws).")
    n_simulated_distinct: int | None = Field(None, description="Distinct twins among the resampled ones (count).")
    seed: int | None = Field(None, description="Seed of every random stream of the assessment.")
    regimen: str | None = Field(None, description="Chemotherapy regimen key (data/regimens.toml).")
    horizon_years: float | None = Field(None, description="Simulated follow-up (years from diagnosis).")
    credible_level: float | None = Field(None, description="Probability mass of every credible interval.")
    ensemble_members: int | None = Field(
        None, description="Calibration-ensemble members the twins' population parameters are drawn from (count)."
    )
    thresholds: Decision | None = Field(None, description="Decision thresholds of the recommendation.")
    endocrine: str | None = Field(
        None, description="Adjuvant endocrine drug every strategy carries after surgery (None: none, e.g. ER-)."
    )
    endocrine_years: float | None = Field(None, description="Length of that endocrine therapy (years).")
    mechanisms: dict[str, Any] | None = Field(
        None,
        description="The prometastatic mechanisms the assessment ran with (chemomet.mechanisms.describe_mechanisms): "
        "'on' (names), 'strengths' (priming take increase and mobilisation release, dimensionless; priming window, "
        "days), 'harm_routes' (per drug, the mechanisms by which it can raise risk) and the 'table' given; null: "
        "not recorded (the shipped model).",
    )
    epsilon_posterior: dict[str, float] | None = Field(
        None,
        description="The doorway stress response the twins were drawn under: 'median' (dimensionless) and 'sdlog' "
        "(SD of its log) of the fitted posterior each ensemble member's epsilon median was drawn from; null: the "
        "calibration's prior.",
    )


class BiomarkerEvidence(_Part):
    """One measured biomarker and how usual it is under the population prior."""

    observed: str | None = Field(None, description="The measured value with its unit, e.g. '1 per 7.5 mL'.")
    prior_predictive_p: float | None = Field(
        None,
        description="Prior-predictive probability of a value at least as extreme (the smaller tail); null where "
        "not computed (diameters during NACT).",
    )


class Evidence(_Part):
    """What the measurements say: effective sample sizes, warnings and each biomarker's prior-predictive tail."""

    ess: float | None = Field(None, description="Kish effective sample size of the weighted twins (twins).")
    ess_fraction: float | None = Field(None, description="ess / n_twins (fraction).")
    ess_simulated: float | None = Field(
        None, description="Effective sample size of the simulated twins' importance weights (twins)."
    )
    warnings: list[str] | None = Field(
        [], description="Where the model or the population barely supports the patient, one sentence each."
    )
    biomarkers: dict[str, BiomarkerEvidence] = Field({}, description="Per measured biomarker (by display name).")


class AccuracyStage(_Part):
    """One stage of the adaptive resample."""

    draws: int | None = Field(None, description="Draws of the stage's systematic resample (count).")
    distinct: int | None = Field(None, description="Distinct twins among them, each simulated once (count).")
    max_se_dmfs_10y: float | None = Field(
        None, description="Largest Monte Carlo standard error of DMFS10 over the strategies (probability)."
    )


class Accuracy(_Part):
    """The Monte Carlo accuracy reached: how far the posterior means of DMFS10 may lie from the estimate that
    simulates all ``n_twins`` weighted twins (the direct estimator), and from the exact posterior given the model."""

    target_se: float | None = Field(
        None,
        description="Standard error of DMFS10 (probability) at which the adaptive resample stops growing; 0: "
        "the resample always has settings.n_simulated draws.",
    )
    target_met: bool | None = Field(
        None, description="True: every strategy's se_resample_dmfs_10y is at most target_se."
    )
    stages: list[AccuracyStage] = Field([], description="The resample's stages, smallest first, as simulated.")
    se_resample_dmfs_10y: dict[str, float] = Field(
        {},
        description="Per strategy: Monte Carlo standard error of the posterior mean DMFS10 against the direct "
        "estimator (probability; systematic-resampling variance, Horvitz-Thompson estimate).",
    )
    posterior_sd_dmfs_10y: dict[str, float] = Field(
        {}, description="Per strategy: posterior standard deviation of the twins' DMFS10 (probability)."
    )
    se_total_dmfs_10y: dict[str, float] = Field(
        {},
        description="Per strategy: Monte Carlo standard error of the posterior mean DMFS10 against the exact "
        "posterior given the model (probability): the resample's and the n_twins twins' (posterior SD / sqrt(ESS)) "
        "in quadrature.",
    )


class StrategyResult(_Part):
    """One strategy's predicted outcomes."""

    name: str | None = Field(None, description="Short name, e.g. 'nact+rebastinib'.")
    label: str | None = Field(None, description="Display name.")
    surgery_day: float | None = Field(None, description="Posterior mean day of surgery (days from diagnosis).")
    dmfs_5y: Interval | None = Field(None, description="Distant-metastasis-free survival at 5 years (probability).")
    dmfs_10y: Interval | None = Field(
        None, description="Distant-metastasis-free survival at 10 years (probability)."
    )
    dm_risk_10y: Interval | None = Field(
        None, description="Distant-metastasis risk at 10 years: 1 − DMFS (probability)."
    )
    p_pcr: float | None = Field(
        None, description="Posterior probability of a pathological complete response; null for surgery first."
    )
    tmem_at_surgery_10hpf: Interval | None = Field(None, description="TMEM doorways at surgery (per 10 HPF).")
    ctc_expected_surgery: Interval | None = Field(
        None, description="Expected circulating tumour cells at surgery (cells per 7.5 mL)."
    )


class ExcessParts(_Part):
    """The NACT-attributable excess 10-year risk split by mechanism (absolute risks; the parts sum to the excess;
    a sequential decomposition, see :func:`chemomet.nact_excess_risk`)."""

    mechanisms: Interval | None = Field(
        None, description="Chemotherapy-primed colonisation and mobilisation, when switched on (switched off first); "
        "null when they are off."
    )

    microenvironment: Interval | None = Field(
        None, description="The stress-induced rise of doorways and their activity (TMEM)."
    )
    delay: Interval | None = Field(None, description="The primary left in place (and seeding) during chemotherapy.")
    kill_timing: Interval | None = Field(
        None, description="Micrometastases meeting the drugs earlier (usually a benefit, negative)."
    )


class Band(_Part):
    """Median and 90% band (5th-95th percentile) of a quantity on ``Trajectories.times_days``; null after surgery."""

    median: list[float | None] = Field([], description="Median at each time.")
    lo: list[float | None] = Field([], description="5th percentile at each time.")
    hi: list[float | None] = Field([], description="95th percentile at each time.")


class StrategyTrajectories(_Part):
    """One strategy's predicted trajectories."""

    tmem_10hpf: Band | None = Field(None, description="TMEM doorways (per 10 HPF).")
    ctc_expected: Band | None = Field(None, description="Expected circulating tumour cells (cells per 7.5 mL).")
    diameter_mm: Band | None = Field(None, description="Tumour diameter (mm).")


class Trajectories(_Part):
    """Predicted TMEM density, expected CTC count and tumour diameter over time, per strategy."""

    times_days: list[float] = Field([], description="Times (days from diagnosis).")
    by_strategy: dict[str, StrategyTrajectories] = Field({}, description="Per strategy name.")


class DrugVerdict(_Part):
    """One accompanying drug under the decision rules: its approval status, evidence, mechanism and verdict."""

    strategy: str | None = Field(None, description="The strategy that adds it, e.g. 'nact+rebastinib'.")
    drug: str | None = Field(None, description="The drug, e.g. 'rebastinib'.")
    approved_for_this_use: bool | None = Field(
        None, description="Approved for this use (data/drugs.toml); false: investigational."
    )
    evidence: str | None = Field(
        None, description="Evidence level of its target (data/targets.toml): clinical, preclinical or assumption."
    )
    acts_on: str | None = Field(None, description="The model quantity it inhibits, e.g. 'doorway_activity'.")
    mechanism: str | None = Field(None, description="The model mechanism its benefit rests on, in plain words.")
    passes_threshold: bool | None = Field(
        None, description="Its risk reduction meets the benefit threshold with the required probability."
    )
    verdict: Literal[
        "recommended", "passes, not the lowest risk", "trial candidate", "below the benefit threshold"
    ] | None = Field(
        None,
        description="'trial candidate': passes but is investigational, so it is a candidate for a clinical trial, "
        "never the recommendation; 'recommended' and 'passes, not the lowest risk' only for an approved drug.",
    )


class Recommendation(_Part):
    """The recommended strategy under the decision rules, the decision in plain words and the reasons.

    ``strategy`` is standard care (the planned course or its alternative) or an approved drug's strategy, never
    an investigational drug's: such a drug that passes the benefit threshold is listed in ``trial_candidates``.
    """

    strategy: str | None = Field(
        None, description="Name of the recommended strategy (never an investigational drug's)."
    )
    label: str | None = Field(None, description="Its display name.")
    summary: str | None = Field(
        None,
        description="The decision under uncertainty in plain words, including when the model cannot decide, and "
        "any trial candidates (the report's and the terminal summary's first line).",
    )
    decided: bool | None = Field(
        None,
        description="True: the harm rule is met, or the excess risk's credible interval lies below the harm "
        "threshold; false: the model cannot decide and recommends the standard course.",
    )
    trial_candidates: list[str] = Field(
        [], description="Strategies of investigational drugs that pass the benefit threshold: candidates for a "
        "clinical trial of the drug, not recommendations."
    )
    drugs: list[DrugVerdict] = Field([], description="Per accompanying-drug strategy: status, mechanism, verdict.")
    reasons: list[str] = Field([], description="The decision rules' findings, one sentence each.")

    def verdict_for(self, name: str) -> DrugVerdict | None:
        """The drug verdict whose strategy (or, failing that, drug) is ``name``; None when there is none.

        Examples
        --------
        >>> rec = Recommendation(drugs=[{"strategy": "nact+rebastinib", "drug": "rebastinib"}])
        >>> rec.verdict_for("nact+rebastinib").drug, rec.verdict_for("rebastinib").strategy
        ('rebastinib', 'nact+rebastinib')
        >>> rec.verdict_for("nact") is None
        True
        """
        by_strategy = next((v for v in self.drugs if v.strategy == name), None)
        return by_strategy or next((v for v in self.drugs if v.drug == name), None)


class Driver(_Part):
    """One input moved to its population reference, and what that does to the excess 10-year risk."""

    input: str | None = Field(None, description="The input, e.g. 'TMEM score'.")
    observed: str | None = Field(None, description="The patient's value with its unit.")
    reference: str | None = Field(None, description="The reference value ('not measured' for a dropped biomarker).")
    excess_risk_if_reference: float | None = Field(
        None, description="Posterior mean NACT-attributable excess 10-year risk with the input at its reference."
    )
    change: float | None = Field(
        None, description="Excess 10-year risk minus excess_risk_if_reference: what this input adds (absolute)."
    )


class DynamicUpdate(_Part):
    """A re-assessment during NACT (tumour diameters measured since the first dose)."""

    on_nact: bool | None = Field(None, description="True: the patient is on NACT.")
    diameters: list[DiameterMeasurement] = Field(
        [], description="The diameters measured: day after the first dose, diameter (mm; 0: not measurable)."
    )
    note: str | None = Field(None, description="How to read the re-assessment.")


class Assessment(_Part):
    """The result of :func:`~chemomet.assess.assess`: risks per strategy, the NACT-attributable excess risk and its
    parts, the accompanying drugs' risk reductions, trajectories, the drivers, a recommendation and warnings.

    A validated, immutable pydantic model; each field documents its meaning and unit (see
    :meth:`json_schema`). Probabilities are in [0, 1] and risk differences are absolute (0.024 = 2.4 percentage
    points). Every field has a default so that partial results validate; :func:`~chemomet.assess.assess` fills
    them all.

    Attributes
    ----------
    chemomet_version : str, optional
        Version of chemomet that computed it.
    generated : str, optional
        Start of the computation, ISO 8601 UTC (``YYYY-MM-DDTHH:MM:SSZ``).
    patient : PatientRecord, optional
        The patient as assessed.
    inputs : list of InputRow
        The inputs table: each covariate and biomarker, measured or integrated over.
    settings : RunSettings, optional
        Sample sizes, seed, regimen, horizon (years), credible level and decision thresholds.
    evidence : Evidence, optional
        Effective sample sizes (twins), warnings and each biomarker's prior-predictive tail probability.
    accuracy : Accuracy, optional
        The Monte Carlo accuracy reached: standard errors of DMFS10 per strategy (probabilities) against the
        direct estimator and against the exact posterior, the adaptive resample's stages (draws, twins).
    strategies : list of StrategyResult
        Per strategy: DMFS at 5 and 10 years, 10-year risk (probabilities), P(pCR), surgery day (days), TMEM at
        surgery (per 10 HPF), expected CTCs at surgery (per 7.5 mL).
    nact_excess_risk_10y : RiskDifference, optional
        10-year risk under NACT minus under surgery first (absolute).
    excess_parts_10y : ExcessParts, optional
        The excess split by mechanism (absolute).
    drug_risk_reduction_10y : dict of str to RiskDifference
        Per accompanying-drug strategy: 10-year risk under NACT minus under NACT with the drug (absolute).
    trajectories : Trajectories, optional
        Median and 90% band over time (days) of TMEM, expected CTCs and diameter (mm); None when not computed.
    recommendation : Recommendation, optional
        The recommended (standard-care) strategy, the decision in plain words, the drugs' verdicts (trial
        candidates) and the reasons.
    drivers : list of Driver
        Inputs moved to their population reference, largest change of the excess risk first.
    checks : dict of str to bool
        Internal consistency checks, e.g. ``nact+rebastinib_never_raises_doorway_founding``.
    limits : list of str
        The model's limits, one sentence each.
    dynamic : DynamicUpdate, optional
        Set when the patient is re-assessed during NACT.
    elapsed_s : float, optional
        Wall time of the computation (seconds).

    Examples
    --------
    >>> from chemomet.assess import Assessment
    >>> a = Assessment.model_validate(
    ...     {"strategies": [{"name": "nact", "dmfs_10y": {"mean": 0.72, "lo": 0.55, "hi": 0.86}}]}
    ... )
    >>> a.strategies[0].dmfs_10y.hi
    0.86
    >>> a.to_dict()["strategies"][0]["p_pcr"] is None
    True
    >>> Assessment.json_schema()["properties"]["elapsed_s"]["description"]
    'Wall time of the computation (seconds).'

    The result of a real assessment (about 20 s):

    >>> import chemomet as cm
    >>> result = cm.assess(cm.example_patient())  # doctest: +SKIP
    >>> result.recommendation.strategy  # doctest: +SKIP
    'nact'
    """

    chemomet_version: str | None = Field(None, description="Version of chemomet that computed it.")
    generated: str | None = Field(
        None, description="Start of the computation, ISO 8601 UTC to the second (YYYY-MM-DDTHH:MM:SSZ)."
    )
    patient: PatientRecord | None = Field(None, description="The patient as assessed.")
    inputs: list[InputRow] = Field([], description="The inputs table: each covariate and biomarker.")
    settings: RunSettings | None = Field(None, description="How the assessment was computed.")
    evidence: Evidence | None = Field(None, description="What the measurements say about the twins.")
    accuracy: Accuracy | None = Field(
        None, description="The Monte Carlo accuracy reached (standard errors of DMFS10, probabilities)."
    )
    strategies: list[StrategyResult] = Field([], description="Predicted outcomes per strategy.")
    nact_excess_risk_10y: RiskDifference | None = Field(
        None, description="NACT-attributable excess 10-year risk: risk under NACT minus under surgery first."
    )
    excess_parts_10y: ExcessParts | None = Field(None, description="The excess risk split by mechanism.")
    drug_risk_reduction_10y: dict[str, RiskDifference] = Field(
        {}, description="Per accompanying-drug strategy: 10-year risk under NACT minus under NACT with the drug."
    )
    trajectories: Trajectories | None = Field(None, description="Predicted trajectories; null when not computed.")
    recommendation: Recommendation | None = Field(None, description="The recommendation.")
    drivers: list[Driver] = Field([], description="What drives the excess risk, largest change first.")
    checks: dict[str, bool] = Field({}, description="Internal consistency checks (true: passed).")
    limits: list[str] = Field([], description="The model's limits, one sentence each.")
    dynamic: DynamicUpdate | None = Field(None, description="Set when re-assessed during NACT; else null.")
    elapsed_s: float | None = Field(None, description="Wall time of the computation (seconds).")

    def to_dict(self) -> dict[str, Any]:
        """The result as a JSON-ready dict (``model_dump(mode="json")``); a fresh copy on every call.

        Returns
        -------
        dict
            Keys in the order of the fields; floats may be NaN where a quantity is undefined
            (:meth:`to_json` writes them as null).

        Examples
        --------
        >>> from chemomet.assess import Assessment
        >>> Assessment(elapsed_s=1.5).to_dict()["elapsed_s"]
        1.5
        """
        return self.model_dump(mode="json")

    def to_json(self, indent: int | None = 1) -> str:
        """Strict JSON text of :meth:`to_dict` (NaN and infinities as null), as ``chemomet assess --json`` prints.

        Parameters
        ----------
        indent : int or None, default 1
            Indentation (spaces); None for one line.

        Returns
        -------
        str

        Examples
        --------
        >>> from chemomet.assess import Assessment
        >>> Assessment(elapsed_s=float("nan")).to_json(indent=None).endswith('"elapsed_s": null}')
        True
        """
        return json.dumps(json_safe(self.to_dict()), indent=indent, allow_nan=False)

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The JSON schema of :meth:`to_dict` (serialization mode: every key is always present).

        Returns
        -------
        dict
            A JSON schema (draft 2020-12) with each field's description and unit.

        Examples
        --------
        >>> from chemomet.assess import Assessment
        >>> schema = Assessment.json_schema()
        >>> schema["required"][:3]
        ['chemomet_version', 'generated', 'patient']
        """
        return cls.model_json_schema(mode="serialization")


def as_assessment(result: Assessment | Mapping, who: str = "this function") -> Assessment:
    """``result`` itself, or the :class:`Assessment` validated from a result dict (``to_dict()`` or parsed JSON).

    Raises :class:`TypeError` for anything else and :class:`pydantic.ValidationError` for a dict that does not fit
    the schema.
    """
    if isinstance(result, Assessment):
        return result
    if isinstance(result, Mapping):
        return Assessment.model_validate(dict(result))
    raise TypeError(f"{who} needs an Assessment or the assessment result dict, got {type(result).__name__}")
