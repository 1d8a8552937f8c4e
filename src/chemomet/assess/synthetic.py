"""Synthetic patients with known parameters, for validating the assessment (coverage of its intervals).

Each patient's covariates come from the population's cohort model; her true parameters are one draw from the
same prior the assessment uses (a calibration-ensemble member and random effects); her biomarkers are drawn
from the observation models of :mod:`chemomet.assess.evidence`.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import nbinom

from chemomet.assess.settings import Observation
from chemomet.assess.twins import draw_twins
from chemomet.model import dissemination as dis
from chemomet.model.parameters import PatientParameters
from chemomet.patient import Patient, patient_from_dict
from chemomet.population import Population
from chemomet.streams import draws_at, root_seed


def synthetic_patients(
    n: int, seed: int, reference: Population, members, obs: Observation
) -> tuple[list[Patient], PatientParameters]:
    """``n`` patients with measured TMEM score (10 HPF), CTC count and Ki67, and their true parameters."""
    root = root_seed(seed)
    z, u = draws_at(root, np.arange(n), 4, 8)
    cov = reference.sample_covariates(z, u[:, :4])
    rng = np.random.default_rng([seed, 7])
    patients, truths = [], []
    for i, row in cov.iterrows():
        base = {
            "id": f"synthetic-{i}",
            "age": float(round(row["age"], 1)),
            "diameter_mm": float(round(row["diameter_mm"], 1)),
            "grade": int(row["grade"]),
            "er": "positive" if row["er"] else "negative",
            "pr": "positive" if row["pr"] else "negative",
            "her2": "positive" if row["her2"] else "negative",
            "morphology": ["alveolar"] if row["alveolar_or_trabecular"] else [],
        }
        twin = draw_twins(patient_from_dict(base), 1, seed + 1 + i, reference, members)
        p = twin.params
        s = reference.settings
        lam = dis.expected_ctc(p.mu * np.exp(p.gamma * p.log_cells0), s) * twin.ctc_scale
        k_ctc, b = float(twin.ctc_dispersion[0]), float(twin.ctc_background[0])  # the member's count model
        k = obs.tmem_dispersion
        ki67 = obs.ki67_median_percent * np.exp(
            -obs.ki67_growth_slope * twin.z_doubling[0] + obs.ki67_residual_sdlog * rng.standard_normal()
        )
        measured = {
            "tmem_score": int(nbinom.rvs(k, k / (k + p.T0[0]), random_state=rng)),
            "tmem_convention": "10HPF",
            "ctc_count": int(dis.ctc_counts(lam, k_ctc, rng.random(1), b, _background_u(rng, b))[0]),
            "ki67_percent": float(np.clip(round(ki67, 1), 0.5, 100.0)),
        }
        patients.append(patient_from_dict({**base, **measured}))
        truths.append(p)
    return patients, PatientParameters.concat(truths)


def _background_u(rng: np.random.Generator, background: float):
    """The uniform of the assay background's count, drawn only when there is a background."""
    return rng.random(1) if background > 0 else None
