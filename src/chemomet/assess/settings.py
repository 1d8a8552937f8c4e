"""Settings of a patient assessment: sampling sizes, biomarker observation models and decision thresholds.

Defaults ship in ``data/assessment.toml`` (a source or an "assumption" note for every value). Override any value
with :meth:`AssessmentSettings.with_overrides` (the command line's ``--set section.key=value``).
"""

from __future__ import annotations

import tomllib
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chemomet.errors import InputError


class Sampling(BaseModel):
    """How many virtual twins, and how they are used (counts), the seed, the horizon (years) and the credible level."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    n_twins: int = Field(ge=1000, le=10_000_000)
    n_simulated: int = Field(ge=256, le=1_000_000)
    n_trajectories: int = Field(ge=64, le=100_000)
    n_drivers: int = Field(ge=0, le=1_000_000)
    seed: int = Field(ge=0)
    horizon_years: float = Field(ge=10.0, le=30.0)
    credible_level: float = Field(gt=0.5, lt=1.0)


class Observation(BaseModel):
    """Observation models of the biomarkers (see ``data/assessment.toml`` for units and sources)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    tmem_dispersion: float = Field(gt=0)
    ki67_median_percent: float = Field(gt=0, le=100)
    ki67_growth_slope: float = Field(ge=0)
    ki67_residual_sdlog: float = Field(gt=0)
    diameter_sdlog: float = Field(gt=0)
    diameter_detection_limit_mm: float = Field(gt=0)


class Decision(BaseModel):
    """Decision thresholds of the recommendation: absolute 10-year risks, probabilities, ESS and a tail mass."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    excess_risk: float = Field(ge=0, le=1)
    probability: float = Field(ge=0.5, le=1)
    drug_benefit: float = Field(ge=0, le=1)
    min_ess: float = Field(ge=1)
    tail_probability: float = Field(gt=0, lt=0.5)


class AssessmentSettings(BaseModel):
    """All settings of :func:`chemomet.assess.assess`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    sampling: Sampling
    observation: Observation
    decision: Decision

    @classmethod
    def default(cls) -> AssessmentSettings:
        """The shipped defaults (``data/assessment.toml``)."""
        text = resources.files("chemomet.data").joinpath("assessment.toml").read_text(encoding="utf-8")
        data = tomllib.loads(text)
        return cls(**{k: {n: v for n, v in d.items() if n != "sources"} for k, d in data.items()})

    def with_overrides(self, overrides: dict[str, float] | None = None) -> AssessmentSettings:
        """A copy with ``{"section.key": value}`` replaced; bad keys or values raise :class:`InputError`."""
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
            first = err.errors()[0]
            name = ".".join(str(p) for p in first["loc"])
            raise InputError(
                f"setting {name} = {first.get('input')!r} is invalid; allowed: {first['msg'].lower()}"
            ) from None
