"""Screening: the baseline features of virtual patients, eligibility, and who enrols.

Patients are screened in index order (index = the population stream's patient index); the eligible ones
enrol in that order. Enrolment position ``g`` (over all replicates) belongs to replicate
``g // (arms * n)``, and within it position ``k`` goes to arm ``k % arms`` with rank ``k // arms`` (1:1
allocation; patients are exchangeable draws, so this equals randomisation).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from chemomet.errors import InputError
from chemomet.model.dissemination import ctc_counts, expected_ctc
from chemomet.model.parameters import PatientParameters
from chemomet.population import Population
from chemomet.streams import BLOCK
from chemomet.trial.spec import Eligibility, TrialSpec
from chemomet.trial.streams import UNIFORMS, background_uniforms, patient_uniforms

SCREEN_BLOCK = 64 * BLOCK
"""Patients screened per step (a multiple of the population's block)."""
MIN_ELIGIBLE_FRACTION = 0.002
"""Screening stops with an error when fewer than this share of screened patients are eligible."""
SUBTYPE_NAMES = np.array(["HR+/HER2-", "HR+/HER2+", "HR-/HER2+", "TNBC"])


def baseline_ctc_expected(params: PatientParameters, population: Population) -> np.ndarray:
    """Expected CTCs in a 7.5 mL draw at diagnosis (cells), as the model computes it (baseline environment)."""
    return expected_ctc(params.mu * np.exp(params.gamma * params.log_cells0), population.settings)


def features(cov: pd.DataFrame, params: PatientParameters, spec: TrialSpec, population: Population) -> pd.DataFrame:
    """Baseline features of screened patients: covariates, subtype, TMEM (doorways per 10 HPF), TMEM-high,
    expected and drawn baseline CTCs (cells per 7.5 mL; negative-binomial draw plus the assay background, keyed by
    patient index), CTC-positive."""
    idx = cov["patient_index"].to_numpy(np.int64)
    hr = cov["er"].to_numpy(bool) | cov["pr"].to_numpy(bool)
    her2 = cov["her2"].to_numpy(bool)
    sub = np.select([hr & ~her2, hr & her2, ~hr & her2], [0, 1, 2], default=3)
    lam = baseline_ctc_expected(params, population)
    u = patient_uniforms(spec.seed, idx)[:, UNIFORMS.index("ctc")]
    s = population.settings
    b = s.ctc_background_per_sample
    count = ctc_counts(lam, s.ctc_count_dispersion, u, b, background_uniforms(spec.seed, idx) if b > 0 else None)
    out = pd.DataFrame(
        {
            "patient_index": idx,
            "age": cov["age"].to_numpy(float),
            "diameter_mm": cov["diameter_mm"].to_numpy(float),
            "grade": cov["grade"].to_numpy(np.int64),
            "er": cov["er"].to_numpy(bool),
            "pr": cov["pr"].to_numpy(bool),
            "her2": her2,
            "subtype": SUBTYPE_NAMES[sub],
            "ki67_percent": cov["ki67_percent"].to_numpy(float),
            "nodes_positive": cov["nodes_positive"].to_numpy(np.int64),
            "alveolar_or_trabecular": cov["alveolar_or_trabecular"].to_numpy(bool),
            "tmem_baseline_10hpf": params.T0,
            "tmem_high": params.T0 >= spec.biomarkers.tmem_high_min_10hpf,
            "ctc_expected_baseline": lam,
            "ctc_count_baseline": count,
            "ctc_positive": count >= 1,
        }
    )
    return out


def eligible_mask(f: pd.DataFrame, e: Eligibility) -> np.ndarray:
    """Boolean mask of the rows of a :func:`features` table that meet the eligibility criteria."""
    m = f["subtype"].isin(list(e.subtypes)).to_numpy()
    m &= f["grade"].isin(list(e.grades)).to_numpy()
    m &= f["age"].between(e.age_min_years, e.age_max_years).to_numpy()
    m &= f["diameter_mm"].between(e.diameter_min_mm, e.diameter_max_mm).to_numpy()
    m &= f["nodes_positive"].between(e.nodes_positive_min, e.nodes_positive_max).to_numpy()
    m &= f["tmem_baseline_10hpf"].between(e.tmem_min_10hpf, e.tmem_max_10hpf).to_numpy()
    for key in ("tmem_high", "ctc_positive", "alveolar_or_trabecular"):
        want = getattr(e, key)
        if want is not None:
            m &= f[key].to_numpy(bool) == want
    return m


def sample_patients(
    spec: TrialSpec, population: Population, index: np.ndarray
) -> tuple[pd.DataFrame, PatientParameters]:
    """Features and model parameters of the patients with these screening indices (sorted or not)."""
    index = np.asarray(index, np.int64)
    lo, hi = int(index.min()), int(index.max()) + 1
    cov, params = population.sample(hi - lo, spec.seed, start=lo)
    rel = index - lo
    cov = cov.iloc[rel].reset_index(drop=True)
    params = params.take(rel)
    return features(cov, params, spec, population), params


def screen(spec: TrialSpec, population: Population, n_needed: int | None = None) -> tuple[np.ndarray, int]:
    """Screening indices of the first ``n_needed`` eligible patients (default: all the trial enrols), and
    the number of patients screened to find them. Raises InputError if eligibility admits (almost) nobody."""
    n_needed = spec.n_enrolled if n_needed is None else n_needed
    found: list[np.ndarray] = []
    n_found = 0
    start = 0
    while n_found < n_needed:
        cov, params = population.sample(SCREEN_BLOCK, spec.seed, start=start)
        f = features(cov, params, spec, population)
        hit = f["patient_index"].to_numpy(np.int64)[eligible_mask(f, spec.eligibility)]
        found.append(hit)
        n_found += hit.size
        start += SCREEN_BLOCK
        if n_found < n_needed and n_found < MIN_ELIGIBLE_FRACTION * start:
            raise InputError(
                f"eligibility = {_describe(spec.eligibility)} admits {n_found} of {start} screened patients; "
                f"allowed: criteria that at least {MIN_ELIGIBLE_FRACTION:.1%} of the population meets"
            )
    index = np.concatenate(found)[:n_needed]
    screened = int(index[-1]) + 1 if index.size else 0
    return index, screened


def _describe(e: Eligibility) -> str:
    default = Eligibility()
    return "{" + ", ".join(f"{k}={v!r}" for k, v in e.model_dump().items() if v != getattr(default, k)) + "}"
