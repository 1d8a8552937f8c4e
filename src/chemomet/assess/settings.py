"""Settings of a patient assessment: sampling sizes, biomarker observation models and decision thresholds.

Defaults ship in ``data/assessment.toml`` (a source or an "assumption" note for every value). Override any value
with :meth:`AssessmentSettings.with_overrides` (the command line's ``--set section.key=value``).
"""

from __future__ import annotations

import tomllib
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chemomet.errors import InputError, validation_error


class Sampling(BaseModel):
    """How many virtual twins, and how they are used (counts), the seed, the horizon (years) and the credible level."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    n_twins: int = Field(ge=1000, le=10_000_000, description="Virtual twins weighted by the measurements (count).")
    n_simulated: int = Field(ge=256, le=1_000_000, description="Twins resampled and simulated per strategy (draws).")
    n_trajectories: int = Field(ge=64, le=100_000, description="Twins per strategy for the trajectories (draws).")
    n_drivers: int = Field(ge=0, le=1_000_000, description="Twins re-simulated per covariate driver (draws; 0: none).")
    seed: int = Field(ge=0, description="Seed of every random stream of the assessment.")
    horizon_years: float = Field(ge=10.0, le=30.0, description="Simulated follow-up (years from diagnosis).")
    credible_level: float = Field(gt=0.5, lt=1.0, description="Probability mass of every credible interval.")
    target_se: float = Field(
        ge=0.0,
        le=0.1,
        description="Monte Carlo standard error of DMFS10 (probability, against the estimate from all n_twins "
        "twins) at which the adaptive resample stops growing, under every strategy; 0: always n_simulated.",
    )
    n_simulated_min: int = Field(
        ge=64,
        le=1_000_000,
        description="First (smallest) adaptive resample (draws); the resample doubles from it up to n_simulated.",
    )


class Observation(BaseModel):
    """Observation models of the biomarkers (see ``data/assessment.toml`` for units and sources)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    tmem_dispersion: float = Field(gt=0, description="Negative binomial size k of the TMEM score: var = m + m²/k.")
    ki67_median_percent: float = Field(gt=0, le=100, description="Population median Ki67 (%).")
    ki67_growth_slope: float = Field(
        ge=0, description="Change of ln Ki67 per SD of the doubling-time random effect (faster growth: higher)."
    )
    ki67_residual_sdlog: float = Field(gt=0, description="Residual SD of ln Ki67.")
    diameter_sdlog: float = Field(gt=0, description="Imaging error of a diameter during NACT (SD, log scale).")
    diameter_detection_limit_mm: float = Field(
        gt=0, description="Smallest measurable diameter (mm); a diameter of 0 means below it."
    )


class Decision(BaseModel):
    """Decision thresholds of the recommendation: absolute 10-year risks, probabilities, ESS and a tail mass."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    excess_risk: float = Field(
        ge=0, le=1, description="Excess 10-year risk of NACT over surgery first that counts as harm (absolute)."
    )
    probability: float = Field(
        ge=0.5, le=1, description="Posterior probability needed to call harm or a drug benefit."
    )
    drug_benefit: float = Field(
        ge=0, le=1, description="10-year risk reduction that makes an accompanying drug worth adding (absolute)."
    )
    min_ess: float = Field(ge=1, description="Effective sample size (twins) below which a warning is given.")
    tail_probability: float = Field(
        gt=0, lt=0.5, description="Prior-predictive tail probability below which a biomarker is flagged."
    )


class Treatment(BaseModel):
    """The standard of care every strategy carries (see ``data/assessment.toml`` for sources)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    endocrine_years: float = Field(
        ge=0, le=15, description="Adjuvant endocrine therapy of ER-positive patients (years; 0: none)."
    )
    aromatase_inhibitor_from_age: float = Field(
        ge=0, le=120, description="Age from which an aromatase inhibitor replaces tamoxifen (years)."
    )
    her2_regimen: str = Field(
        min_length=1,
        description="Regimen key of a HER2-positive patient when none is chosen (chemotherapy with anti-HER2 therapy).",
    )


class AssessmentSettings(BaseModel):
    """All settings of :func:`chemomet.assess.assess`: sampling, observation models and decision thresholds.

    Immutable; the shipped defaults (``data/assessment.toml``, with a source or an "assumption" note for every
    value) come from :meth:`default`, changed values from :meth:`with_overrides`.

    Attributes
    ----------
    sampling : Sampling
        ``n_twins`` (virtual twins weighted by the measurements), ``n_simulated`` (resampled twins simulated per
        strategy), ``n_trajectories`` (twins per strategy for the trajectories), ``n_drivers`` (twins re-simulated
        per covariate driver; 0: none), all counts; ``seed``; ``horizon_years`` (years, 10-30);
        ``credible_level`` (probability mass of the credible intervals, 0.5-1); ``target_se`` (Monte Carlo
        standard error of DMFS10, a probability, at which the adaptive resample stops: it starts at
        ``n_simulated_min`` draws and doubles up to ``n_simulated``; 0: always ``n_simulated``).
    observation : Observation
        Observation models of the biomarkers: ``tmem_dispersion`` (negative binomial size k of the TMEM score),
        ``ki67_median_percent`` (%), ``ki67_growth_slope`` (change of ln Ki67 per SD of the doubling-time random
        effect), ``ki67_residual_sdlog``, ``diameter_sdlog`` (imaging
        error, log scale), ``diameter_detection_limit_mm`` (mm).
    decision : Decision
        Thresholds of the recommendation: ``excess_risk`` and ``drug_benefit`` (absolute 10-year risks),
        ``probability`` (posterior probability), ``min_ess`` (effective sample size, twins),
        ``tail_probability`` (prior-predictive tail mass that flags a biomarker).
    treatment : Treatment
        The standard of care in every strategy: ``endocrine_years`` of adjuvant endocrine therapy for an
        ER-positive patient (years; 0: none), anastrozole from ``aromatase_inhibitor_from_age`` (years; menopause
        is not recorded, so age stands in for it), tamoxifen below it; ``her2_regimen``, the regimen (with
        anti-HER2 therapy) of a HER2-positive patient when none is chosen.

    Examples
    --------
    >>> from chemomet.assess import AssessmentSettings
    >>> s = AssessmentSettings.default()
    >>> s.sampling.n_twins, s.decision.excess_risk
    (100000, 0.02)
    >>> s.with_overrides({"decision.excess_risk": 0.03}).decision.excess_risk
    0.03
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    sampling: Sampling
    observation: Observation
    decision: Decision
    treatment: Treatment

    @classmethod
    def default(cls) -> AssessmentSettings:
        """The shipped defaults (``data/assessment.toml``).

        Returns
        -------
        AssessmentSettings

        Examples
        --------
        >>> from chemomet.assess import AssessmentSettings
        >>> AssessmentSettings.default().sampling.horizon_years  # years
        10.0
        """
        text = resources.files("chemomet.data").joinpath("assessment.toml").read_text(encoding="utf-8")
        data = tomllib.loads(text)
        return cls(**{k: {n: v for n, v in d.items() if n != "sources"} for k, d in data.items()})

    def with_overrides(self, overrides: dict[str, float] | None = None) -> AssessmentSettings:
        """A copy with some values replaced (the command line's ``--set section.key=value``).

        Parameters
        ----------
        overrides : dict of str to number, optional
            ``{"section.key": value}`` in the units of ``data/assessment.toml``.

        Returns
        -------
        AssessmentSettings
            A validated copy.

        Raises
        ------
        chemomet.errors.InputError
            For an unknown key or a value out of its range (one line naming the setting).

        Examples
        --------
        >>> from chemomet.assess import AssessmentSettings
        >>> fast = AssessmentSettings.default().with_overrides({"sampling.n_twins": 20000})
        >>> fast.sampling.n_twins
        20000
        >>> AssessmentSettings.default().with_overrides({"decision.excess_risk": 2})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        chemomet.errors.InputError: setting: decision.excess_risk = 2 is invalid; allowed: a number >= 0 and <= 1
        """
        data = self.model_dump()
        for dotted, value in (overrides or {}).items():
            section, _, key = dotted.partition(".")
            if section not in data or key not in data[section]:
                known = sorted(f"{s}.{k}" for s, d in data.items() for k in d)
                raise InputError(f"setting {dotted!r} is unknown; allowed: one of {known}")
            data[section][key] = value
        try:
            return AssessmentSettings(**data)
        except ValidationError as err:
            raise validation_error(err, "setting", setting_rules()) from None


def _number(v) -> str:
    return str(v) if isinstance(v, int) else f"{v:g}"


def _allowed(info) -> str:
    """What a numeric settings field accepts, from its pydantic constraints, e.g. ``an integer >= 1000``."""
    bounds = [
        f"{word} {_number(getattr(m, attr))}"
        for m in info.metadata
        for attr, word in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))
        if getattr(m, attr, None) is not None
    ]
    kind = "an integer" if info.annotation is int else "a number"
    return " and ".join([f"{kind} {bounds[0]}", *bounds[1:]]) if bounds else kind


def setting_rules() -> dict[str, tuple[str, str | None]]:
    """``section.key`` -> (what is allowed, unit) for every setting, read off the models' constraints.

    Examples
    --------
    >>> setting_rules()["sampling.n_twins"][0]
    'an integer >= 1000 and <= 10000000'
    """
    sections = AssessmentSettings.model_fields
    return {
        f"{name}.{key}": (_allowed(info), None)
        for name, section in sections.items()
        for key, info in section.annotation.model_fields.items()
    }
