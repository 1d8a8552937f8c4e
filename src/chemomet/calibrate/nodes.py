"""Nodal spread: fit the node-seeding ratio ``ρ`` and the count dispersion ``k`` (docs/science.md §2.11).

Two sources, with the natural history held at the population's values:

* GBSG2 (686 node-positive patients, with their covariates): the reported positive-node count, a negative
  binomial around :func:`chemomet.model.nodes.expected_positive_nodes`, truncated at 1 (the trial took
  node-positive patients only), marginal over the random effects (fixed quasi-Monte Carlo nodes);
* the share of node-positive tumours by diameter band in a population series (:data:`NODE_POSITIVE_BY_SIZE`),
  as binomial terms over virtual patients of the population, given the same total weight as the cohort.

Then, without fitting to it, the node-count gradient of risk: GBSG2 patients' twins weighted by their node
count give the model's 5-year distant risk per node group, compared with the hazard ratios of the cohort
(:func:`node_gradient`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import logsumexp

from chemomet.calibrate.natural_history import quadrature_normals
from chemomet.datasets import Cohort
from chemomet.model.engine import simulate_schedule
from chemomet.model.nodes import expected_positive_nodes, node_count_logpmf
from chemomet.population import Population
from chemomet.regimens import Strategy, load_drugs
from chemomet.units import DAYS_PER_YEAR

NODE_POSITIVE_BY_SIZE = (
    # (diameter from mm, to mm, share node-positive)
    (0.0, 10.0, 0.206),
    (10.0, 20.0, 0.332),
    (20.0, 30.0, 0.451),
    (30.0, 40.0, 0.526),
    (40.0, 50.0, 0.596),
    (50.0, 200.0, 0.701),
)
"""Share of tumours with positive axillary nodes by diameter band (SEER, 24,740 cases with known node status
and size: Carter 1989, Cancer 63:181, its table of node status by size; read as approximate values)."""

GBSG2_NODE_GROUP_HR = {"4-9": (2.09, 1.61, 2.72), "10+": (3.97, 2.95, 5.34)}
"""Cox hazard ratios (95% CI) of recurrence or death for 4-9 and >= 10 positive nodes vs 1-3 in GBSG2
(computed on the 686 patients with lifelines; the cohort's endpoint also counts local recurrence and death)."""


@dataclass(frozen=True)
class NodalFit:
    """Result of :func:`fit_nodal_spread`.

    Attributes
    ----------
    seeding_ratio : float
        ``ρ``: node seedings per distant colony.
    count_dispersion : float
        ``k``: negative-binomial size of the reported count (dimensionless).
    clearance_per_day : float
        ``δ``: clearance rate of nodal deposits (1/day).
    loglik : float
        The maximised objective at ``δ`` (log-likelihood units).
    node_positive_by_size : pandas.DataFrame
        Model vs target node-positive share per diameter band (``diameter_mm``, ``target``, ``model``).
    profile : pandas.DataFrame
        The maximised objective at each ``δ`` of the grid (``clearance_per_day``, ``seeding_ratio``,
        ``count_dispersion``, ``loglik``).

    Examples
    --------
    >>> fit = NodalFit(16.1, 2.9, 0.05, -2186.0, pd.DataFrame(), pd.DataFrame())
    >>> round(fit.seeding_ratio / fit.clearance_per_day)  # what the counts identify when clearance is fast (days)
    322
    """

    seeding_ratio: float
    count_dispersion: float
    clearance_per_day: float
    loglik: float
    node_positive_by_size: pd.DataFrame
    profile: pd.DataFrame


CLEARANCE_GRID = (0.0, 0.001, 0.003, 0.01, 0.05)
"""Nodal clearance rates ``δ`` (1/day) of the profile likelihood."""

PROFILE_DROP = 1.92
"""Half the 95% quantile of chi-square with 1 degree of freedom: the profile-likelihood interval of ``δ``."""


def cohort_twins(pop: Population, cohort: Cohort, n_nodes: int, seed: int):
    """Every patient's twins: her covariates, the random effects on ``n_nodes`` fixed quasi-Monte Carlo nodes
    (``seed``), no resistant clone; :class:`~chemomet.model.parameters.PatientParameters` of ``cohort.n × n_nodes``
    rows, patient by patient.

    Examples
    --------
    >>> import pandas as pd, numpy as np
    >>> from chemomet.datasets import Cohort
    >>> cov = pd.DataFrame({"age": [50.0] * 2, "diameter_mm": [20.0, 30.0], "grade": [2] * 2, "er": [True] * 2,
    ...     "pr": [True] * 2, "her2": [False] * 2, "alveolar_or_trabecular": [False] * 2,
    ...     "tmem_10hpf": [np.nan] * 2, "nodes_positive": [1, 3]})
    >>> cohort_twins(Population(), Cohort("toy", cov, np.ones(2), np.zeros(2, bool), "none"), 8, 3).n
    16
    """
    z = quadrature_normals(n_nodes, seed)
    cov = cohort.covariates
    rows = cov.loc[cov.index.repeat(n_nodes)].reset_index(drop=True)
    return pop.parameters(rows, np.tile(z, (len(cov), 1)), np.ones((len(rows), 2)))


def fit_nodal_spread(
    pop: Population,
    cohort: Cohort,
    n_nodes: int = 256,
    n_virtual: int = 20000,
    seed: int = 3,
    clearance_grid: tuple[float, ...] = CLEARANCE_GRID,
) -> NodalFit:
    """Maximum likelihood of ``ρ`` and ``k`` on a node-positive cohort's counts and the node-positive share by
    size, profiled over the clearance ``δ``.

    For each ``δ`` of ``clearance_grid`` the objective is maximised over ``ρ`` and ``k``. The profile rises from
    ``δ = 0`` and flattens at large ``δ`` (there only ``ρ/δ`` is identified: the count measures the recent
    shedding), so the counts bound ``δ`` from below only; the estimate is the largest grid value inside the 95%
    profile interval (within :data:`PROFILE_DROP` of the maximum), the present-shedding limit.

    Parameters
    ----------
    pop : Population
        The population whose natural history is held fixed (its ``[nodes]`` values are the starting point).
    cohort : chemomet.datasets.Cohort
        A node-positive cohort with a ``nodes_positive`` covariate (GBSG2).
    n_nodes : int
        Quasi-Monte Carlo nodes per patient for the random effects.
    n_virtual : int
        Virtual patients for the node-positive share by size.
    seed : int
        Seed of the quadrature nodes and of the virtual patients.

    Returns
    -------
    NodalFit

    Examples
    --------
    >>> import pandas as pd, numpy as np
    >>> from chemomet.datasets import Cohort
    >>> cov = pd.DataFrame({"age": [50.0] * 3, "diameter_mm": [20.0, 30.0, 40.0], "grade": [2] * 3,
    ...     "er": [True] * 3, "pr": [True] * 3, "her2": [False] * 3, "alveolar_or_trabecular": [False] * 3,
    ...     "tmem_10hpf": [np.nan] * 3, "nodes_positive": [1, 3, 8]})
    >>> toy = Cohort("toy", cov, np.ones(3), np.zeros(3, bool), "none")
    >>> fit = fit_nodal_spread(Population(), toy, n_nodes=32, n_virtual=2000, clearance_grid=(0.0, 0.01))
    >>> fit.seeding_ratio > 0 and fit.count_dispersion > 0, fit.profile.shape
    (True, (2, 4))
    """
    counts = cohort.covariates["nodes_positive"].to_numpy(float)[:, None]
    if np.any(counts < 1):
        raise ValueError("the cohort must be node-positive (every nodes_positive >= 1)")
    params = cohort_twins(pop, cohort, n_nodes, seed)
    vcov, vparams = pop.sample(n_virtual, seed)
    d = vcov["diameter_mm"].to_numpy()
    bands = [(d >= lo) & (d < hi) for lo, hi, _ in NODE_POSITIVE_BY_SIZE]
    target = np.array([share for *_, share in NODE_POSITIVE_BY_SIZE])
    weight = cohort.n / len(bands)  # the size series weighs as much as the cohort

    def means(rho, delta):
        s = replace(pop.settings, nodal_seeding_ratio=rho, nodal_clearance_per_day=delta)
        return (
            expected_positive_nodes(params, s).reshape(cohort.n, n_nodes),
            expected_positive_nodes(vparams, s),
        )

    def shares(m_virtual, k):
        pos = -np.expm1(k * np.log(k / (k + m_virtual)))
        return np.array([pos[b].mean() for b in bands])

    def objective(x, delta):
        rho, k = np.exp(x)
        m, mv = means(rho, delta)
        lp = node_count_logpmf(counts, m, k)
        log_pos = np.log(-np.expm1(k * np.log(k / (k + m))))
        ll = np.sum(logsumexp(lp, axis=1) - logsumexp(log_pos, axis=1))
        q = np.clip(shares(mv, k), 1e-9, 1 - 1e-9)
        ll += weight * np.sum(target * np.log(q) + (1 - target) * np.log1p(-q))
        return -ll

    s0 = pop.settings
    start = np.log([s0.nodal_seeding_ratio, s0.node_count_dispersion])
    rows = []
    for delta in sorted(clearance_grid):
        res = optimize.minimize(
            objective, start, args=(delta,), method="Nelder-Mead", options={"xatol": 1e-3, "fatol": 1e-3}
        )
        rho, k = (float(v) for v in np.exp(res.x))
        rows.append({"clearance_per_day": delta, "seeding_ratio": rho, "count_dispersion": k, "loglik": -res.fun})
        start = res.x
    profile = pd.DataFrame(rows)
    inside = profile[profile["loglik"] >= profile["loglik"].max() - PROFILE_DROP]
    best = inside.iloc[-1]
    table = pd.DataFrame(
        {
            "diameter_mm": [f"{lo:g}-{hi:g}" for lo, hi, _ in NODE_POSITIVE_BY_SIZE],
            "target": target,
            "model": shares(means(best.seeding_ratio, best.clearance_per_day)[1], best.count_dispersion),
        }
    )
    return NodalFit(
        float(best.seeding_ratio), float(best.count_dispersion), float(best.clearance_per_day), float(best.loglik),
        table, profile,
    )


def node_gradient(pop: Population, cohort: Cohort, n_nodes: int = 256, seed: int = 3) -> pd.DataFrame:
    """The model's 5-year distant risk by node group (1-3, 4-9, >= 10) for a node-positive cohort.

    Each patient's twins (her covariates, random effects on fixed quasi-Monte Carlo nodes) are weighted by the
    probability of her reported node count and simulated without systemic therapy (surgery at day 21); the group
    risk is the mean over its patients. The ratio of cumulative hazards ``ln(1 - r)`` to the 1-3 group is
    comparable with the cohort's hazard ratios (:data:`GBSG2_NODE_GROUP_HR`).

    Returns
    -------
    pandas.DataFrame
        Columns ``group``, ``patients``, ``risk_5y`` (probability), ``hazard_ratio_vs_1_3``.

    Examples
    --------
    >>> import pandas as pd, numpy as np
    >>> from chemomet.datasets import Cohort
    >>> cov = pd.DataFrame({"age": [50.0] * 3, "diameter_mm": [25.0] * 3, "grade": [2] * 3,
    ...     "er": [True] * 3, "pr": [True] * 3, "her2": [False] * 3, "alveolar_or_trabecular": [False] * 3,
    ...     "tmem_10hpf": [np.nan] * 3, "nodes_positive": [2, 6, 15]})
    >>> g = node_gradient(Population(), Cohort("toy", cov, np.ones(3), np.zeros(3, bool), "none"), n_nodes=64)
    >>> bool(g["risk_5y"].is_monotonic_increasing)
    True
    """
    counts = cohort.covariates["nodes_positive"].to_numpy(float)
    params = cohort_twins(pop, cohort, n_nodes, seed)
    s = pop.settings
    summary, _ = simulate_schedule(
        params, Strategy.parse("surgery-only").schedule(), s, 5 * DAYS_PER_YEAR + 1, drugs=load_drugs()
    )
    risk = 1.0 - summary["dmfs_5y"].to_numpy().reshape(cohort.n, n_nodes)
    lp = node_count_logpmf(counts[:, None], expected_positive_nodes(params, s).reshape(cohort.n, n_nodes),
                           s.node_count_dispersion)
    w = np.exp(lp - lp.max(axis=1, keepdims=True))
    per_patient = (w * risk).sum(axis=1) / w.sum(axis=1)
    groups = np.select([counts <= 3, counts <= 9], ["1-3", "4-9"], "10+")
    rows = []
    for g in ("1-3", "4-9", "10+"):
        sel = groups == g
        rows.append({"group": g, "patients": int(sel.sum()), "risk_5y": float(per_patient[sel].mean())})
    out = pd.DataFrame(rows)
    h = -np.log1p(-out["risk_5y"])
    out["hazard_ratio_vs_1_3"] = h / h.iloc[0]
    return out
