"""Virtual twins of one patient: her covariates, random effects drawn from the population model.

Each twin carries one member of the calibration ensemble (the population parameters' uncertainty) and one draw
of the individual random effects (doubling time, plateau, μ, chemosensitivity, ε, baseline TMEM, resistant clone).
Measured biomarkers are *not* plugged in here: they condition the twins through their likelihood
(:mod:`chemomet.assess.evidence`), and unmeasured ones are thereby integrated over their prior.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from chemomet.model.parameters import PatientParameters
from chemomet.patient import Patient
from chemomet.population import Population, ensemble_parameters
from chemomet.streams import child, draws_at, root_seed

N_UNIFORMS = 3  # resistant clone (2), ensemble member (1)

UNKNOWN_STREAM = 0x7265
"""Sub-stream of the twins' unknown covariates (PR, HER2, grade): its own key, so drawing them shifts no other
draw."""


@lru_cache(maxsize=1)
def shipped_ensemble() -> tuple[Population, ...]:
    """The calibration ensemble as populations (loaded once per process)."""
    from chemomet.calibrate.shipped import ensemble_populations

    return tuple(ensemble_populations())


@dataclass(frozen=True)
class Twins:
    """Virtual twins of one patient.

    params: model parameters (one row per twin); member: ensemble member of each twin; ctc_scale: the twin's
    expected CTC count relative to the reference population's (its member's colonisation efficiency);
    z_doubling: the twin's doubling-time random effect (standard normal; Ki67 observes it); covariates: the
    patient's covariate row (as used by :meth:`Population.parameters`); ctc_dispersion and ctc_background: the
    CTC count model of the twin's member (negative-binomial size, dimensionless; assay background, events per
    7.5 mL draw), so a measured count is scored under each member's own fitted ``k`` and ``b``.
    """

    params: PatientParameters
    member: np.ndarray
    ctc_scale: np.ndarray
    z_doubling: np.ndarray
    covariates: pd.DataFrame
    ctc_dispersion: np.ndarray
    ctc_background: np.ndarray

    def take(self, index) -> Twins:
        """The twins at ``index`` (an integer array or a slice)."""
        return Twins(self.params.take(index), self.member[index], self.ctc_scale[index], self.z_doubling[index],
                     self.covariates, self.ctc_dispersion[index], self.ctc_background[index])

    @property
    def n(self) -> int:
        """Number of twins."""
        return self.params.n


def patient_covariates(patient: Patient, reference: Population) -> pd.DataFrame:
    """The patient's covariate row with the baseline TMEM left free (it is observed, not fixed)."""
    cov = reference.covariates([patient])
    cov["tmem_10hpf"] = np.nan
    return cov


def draw_twins(
    patient: Patient,
    n: int,
    seed: int,
    reference: Population,
    ensemble: tuple[Population, ...] | None = None,
    covariates: pd.DataFrame | None = None,
    indices: np.ndarray | None = None,
) -> Twins:
    """Draw ``n`` twins of ``patient`` (twin ``i`` uses the random stream keyed by ``i``, so any subset can be
    redrawn exactly with ``indices``). ``covariates`` replaces the patient's own row (counterfactual inputs): one
    row for every twin, or one row per index (several counterfactual inputs drawn in one call: the per-member
    work is done once, and each twin is the one it would be if drawn alone with its row);
    ``ensemble`` defaults to ``(reference,)`` — pass :func:`shipped_ensemble` for parameter uncertainty.
    Parameters the patient's file fixes are fixed in every twin. An unmeasured HER2 or PR (or an unreported grade)
    is drawn per twin from the population given what is known
    (:meth:`Population.draw_unknown`), so it is integrated over, and the measurements then weigh each twin by how
    well it explains them."""
    ensemble = ensemble or (reference,)
    cov = patient_covariates(patient, reference) if covariates is None else covariates
    indices = np.arange(n) if indices is None else np.asarray(indices)
    z, u = draws_at(root_seed(seed), indices, Population.N_EFFECTS, N_UNIFORMS)
    member = np.minimum((u[:, 2] * len(ensemble)).astype(int), len(ensemble) - 1)
    same_rows = False  # every twin has the same covariate row: a member's rows are the first rows of `rows`
    if len(cov) == indices.size and len(cov) > 1:  # one covariate row per twin (several counterfactuals at once)
        rows = cov.reset_index(drop=True)
    else:
        rows = cov.loc[cov.index.repeat(indices.size)].reset_index(drop=True)
        same_rows = True
    if cov[["grade", "er", "pr", "her2"]].isna().to_numpy().any():
        _, u_unknown = draws_at(child(root_seed(seed), UNKNOWN_STREAM), indices, 0, 3)
        rows = reference.draw_unknown(rows, u_unknown)
        same_rows = False
    efficiency = np.array([pop.settings.colonisation_efficiency for pop in ensemble])
    scale = reference.settings.colonisation_efficiency / efficiency[member]
    k, b = member_ctc_count_model(ensemble, member)
    if not patient.parameters:  # every member's parameters in one vectorised pass (bit for bit as one by one)
        params = ensemble_parameters(ensemble, member, rows, z, u[:, :2])
        return Twins(params, member, scale, z[:, 0].copy(), cov, k, b)
    order = np.argsort(member, kind="stable")
    parts = []
    bounds = np.searchsorted(member[order], np.arange(len(ensemble) + 1))
    for m in range(len(ensemble)):
        sel = order[bounds[m] : bounds[m + 1]]
        if sel.size == 0:
            continue
        pop = ensemble[m]
        # identical rows: a slice (no copy) holds the same values as picking the member's rows
        member_rows = rows.iloc[: sel.size] if same_rows else rows.iloc[sel].reset_index(drop=True)
        parts.append(pop.with_fixed(pop.parameters(member_rows, z[sel], u[sel, :2]), [patient] * sel.size))
    params = PatientParameters.concat(parts).take(np.argsort(order, kind="stable"))
    return Twins(params, member, scale, z[:, 0].copy(), cov, k, b)


def member_ctc_count_model(ensemble, member: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per twin, the CTC count model of its ensemble member: negative-binomial size ``k`` (dimensionless) and
    assay background ``b`` (events per 7.5 mL draw), from ``ensemble`` (populations) and ``member`` (indices).

    Examples
    --------
    >>> k, b = member_ctc_count_model((Population(),), np.zeros(3, int))
    >>> bool(k[0] == Population().settings.ctc_count_dispersion), b.shape
    (True, (3,))
    """
    k = np.array([pop.settings.ctc_count_dispersion for pop in ensemble])
    b = np.array([pop.settings.ctc_background_per_sample for pop in ensemble])
    return k[member], b[member]


def members_with_epsilon(median: float, sdlog: float, seed: int = 0,
                         members: tuple[Population, ...] | None = None) -> tuple[Population, ...]:
    """The calibration ensemble with each member's ``ε_med`` replaced by a seeded log-normal draw (median
    ``median``, SD of the log ``sdlog``): twins, subgroups and assessments under a fitted stress response rather
    than its prior (``members``: default the shipped ensemble).

    Examples
    --------
    >>> pops = members_with_epsilon(3.0, 0.0, members=(Population(), Population()))
    >>> [p.config["microenvironment"]["epsilon_median"] for p in pops]
    [3.0, 3.0]
    """
    import copy

    members = shipped_ensemble() if members is None else tuple(members)
    out = []
    for pop, z in zip(members, np.random.default_rng(seed).standard_normal(len(members)), strict=True):
        cfg = copy.deepcopy(pop.config)
        cfg["microenvironment"]["epsilon_median"] = float(median * np.exp(sdlog * z))
        out.append(Population(cfg))
    return tuple(out)
