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

import copy
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import logsumexp

from chemomet.calibrate.natural_history import observed_information, quadrature_normals
from chemomet.calibrate.vector import with_natural_history
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


@dataclass
class NodeCountLikelihood:
    """The node-count evidence as a function of the population and the nodal values: a node-positive cohort's
    counts (negative binomial around :func:`~chemomet.model.nodes.expected_positive_nodes`, truncated at 1,
    marginal over the random effects on ``n_nodes`` fixed quasi-Monte Carlo nodes) plus the node-positive share
    by diameter (:data:`NODE_POSITIVE_BY_SIZE`) as binomial terms over ``n_virtual`` virtual patients, given the
    same total weight as the cohort (log-likelihood units).

    Examples
    --------
    >>> import pandas as pd, numpy as np
    >>> from chemomet.datasets import Cohort
    >>> cov = pd.DataFrame({"age": [50.0] * 3, "diameter_mm": [20.0, 30.0, 40.0], "grade": [2] * 3,
    ...     "er": [True] * 3, "pr": [True] * 3, "her2": [False] * 3, "alveolar_or_trabecular": [False] * 3,
    ...     "tmem_10hpf": [np.nan] * 3, "nodes_positive": [1, 3, 8]})
    >>> counts = NodeCountLikelihood(Cohort("toy", cov, np.ones(3), np.zeros(3, bool), "none"), 32, 2000)
    >>> bool(counts.loglik(Population(), 20.0, 3.0, 0.05) < 0)
    True
    """

    cohort: Cohort
    n_nodes: int = 256
    n_virtual: int = 20000
    seed: int = 3

    def __post_init__(self):
        self.counts = self.cohort.covariates["nodes_positive"].to_numpy(float)[:, None]
        if np.any(self.counts < 1):
            raise ValueError("the cohort must be node-positive (every nodes_positive >= 1)")
        self.target = np.array([share for *_, share in NODE_POSITIVE_BY_SIZE])
        self.weight = self.cohort.n / len(NODE_POSITIVE_BY_SIZE)  # the size series weighs as much as the cohort

    def twins(self, pop: Population) -> tuple:
        """The cohort's twins, the virtual patients and their diameter bands under ``pop`` (reuse them while only
        the nodal values change)."""
        params = cohort_twins(pop, self.cohort, self.n_nodes, self.seed)
        vcov, vparams = pop.sample(self.n_virtual, self.seed)
        d = vcov["diameter_mm"].to_numpy()
        bands = [(d >= lo) & (d < hi) for lo, hi, _ in NODE_POSITIVE_BY_SIZE]
        return params, vparams, bands

    def means(self, pop: Population, twins: tuple, rho: float, delta: float) -> tuple:
        """Expected positive nodes of the cohort's twins ``(patients, nodes)`` and of the virtual patients."""
        params, vparams, _ = twins
        s = replace(pop.settings, nodal_seeding_ratio=rho, nodal_clearance_per_day=delta)
        return (
            expected_positive_nodes(params, s).reshape(self.cohort.n, self.n_nodes),
            expected_positive_nodes(vparams, s),
        )

    @staticmethod
    def shares(m_virtual: np.ndarray, k: float, bands) -> np.ndarray:
        """Node-positive share of the virtual patients per diameter band."""
        pos = -np.expm1(node_count_logpmf(0, m_virtual, k))
        return np.array([pos[b].mean() for b in bands])

    def loglik(self, pop: Population, rho: float, k: float, delta: float, twins: tuple | None = None) -> float:
        """The objective at seeding ratio ``rho``, dispersion ``k`` and clearance ``delta`` (1/day)."""
        twins = twins or self.twins(pop)
        m, mv = self.means(pop, twins, rho, delta)
        lp = node_count_logpmf(self.counts, m, k)
        with np.errstate(divide="ignore"):  # a twin that cannot show a node has log P(positive) = -inf
            log_pos = np.log(-np.expm1(node_count_logpmf(0, m, k)))
        ll = np.sum(logsumexp(lp, axis=1) - logsumexp(log_pos, axis=1))
        q = np.clip(self.shares(mv, k, twins[2]), 1e-9, 1 - 1e-9)
        return float(ll + self.weight * np.sum(self.target * np.log(q) + (1 - self.target) * np.log1p(-q)))


def _nodes_table(rho: float, k: float, delta: float) -> dict:
    return {"seeding_ratio": rho, "count_dispersion": k, "clearance_per_day": delta}


def fit_nodal_spread(
    pop: Population,
    cohort: Cohort,
    n_nodes: int = 256,
    n_virtual: int = 20000,
    seed: int = 3,
    clearance_grid: tuple[float, ...] = CLEARANCE_GRID,
    node_negative=None,
    theta=None,
) -> NodalFit:
    """Maximum likelihood of ``ρ`` and ``k`` on a node-positive cohort's counts and the node-positive share by
    size (:class:`NodeCountLikelihood`), profiled over the clearance ``δ``, optionally with a node-negative
    cohort's outcomes given its counts.

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
    node_negative : chemomet.calibrate.natural_history.MarginalModel, optional
        A node-negative cohort's likelihood conditioned on its counts (TRANSBIG): its log-likelihood at ``theta``
        under each ``(ρ, k, δ)`` joins the objective, so the nodal values answer to the outcomes the counts
        condition (the natural history's own objective, :func:`fit_jointly`).
    theta : array_like, optional
        The natural-history vector of ``node_negative`` (needed with it).

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
    if node_negative is not None and theta is None:
        raise ValueError("node_negative needs the natural-history vector theta")
    counts = NodeCountLikelihood(cohort, n_nodes, n_virtual, seed)
    twins = counts.twins(pop)

    def objective(x, delta):
        rho, k = np.exp(x)
        ll = counts.loglik(pop, rho, k, delta, twins)
        if node_negative is not None:
            ll += node_negative.with_nodes(_nodes_table(rho, k, delta)).loglik(theta)
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
            "target": counts.target,
            "model": counts.shares(
                counts.means(pop, twins, best.seeding_ratio, best.clearance_per_day)[1], best.count_dispersion,
                twins[2],
            ),
        }
    )
    return NodalFit(
        float(best.seeding_ratio), float(best.count_dispersion), float(best.clearance_per_day), float(best.loglik),
        table, profile,
    )


@dataclass(frozen=True)
class JointFit:
    """Result of :func:`fit_jointly`.

    Attributes
    ----------
    theta : numpy.ndarray
        Natural-history vector (unconstrained scale, :data:`~chemomet.calibrate.natural_history.PARAM_NAMES`).
    seeding_ratio, count_dispersion, clearance_per_day : float
        Nodal values (``δ`` held at the value given).
    cov : numpy.ndarray
        Inverse observed information of ``θ`` followed by ``ln ρ``, ``ln k`` (and ``ln δ_s`` when fitted).
    loglik : float
        The joint maximum (nats); ``loglik_node_negative`` and ``loglik_counts`` its parts.
    n_evaluations : int
    converged : bool
    small_deposit_clearance_per_day : float
        ``δ_s`` (1/day), fitted or held.
    loglik_outcomes : float
        The part of ``loglik`` from a treated cohort's outcomes (nats; 0 when they were not in the objective).

    Examples
    --------
    >>> JointFit(np.zeros(5), 20.0, 3.0, 0.05, np.eye(7), -2700.0, -530.0, -2170.0, 500, True).seeding_ratio
    20.0
    """

    theta: np.ndarray
    seeding_ratio: float
    count_dispersion: float
    clearance_per_day: float
    cov: np.ndarray
    loglik: float
    loglik_node_negative: float
    loglik_counts: float
    n_evaluations: int
    converged: bool
    small_deposit_clearance_per_day: float = 0.0
    loglik_outcomes: float = 0.0


def fit_jointly(
    node_negative, counts: NodeCountLikelihood, theta_start, nodes: dict, max_evaluations: int = 3000,
    fit_small_clearance: bool = False, outcomes=None, information: bool = True,
) -> JointFit:
    """The natural history and the nodal spread fitted together: maximum of the node-negative cohort's
    likelihood given its counts (``node_negative``, a conditioned
    :class:`~chemomet.calibrate.natural_history.MarginalModel`, with its published measurements) plus the
    node-count evidence (``counts``) over ``θ``, ``ln ρ`` and ``ln k``, with the clearance ``δ`` held at
    ``nodes["clearance_per_day"]``.

    Why together: a node-negative cohort was selected on its count, so its outcomes say how much low-shedding
    patients relapse only once ``ρ`` says how much shedding a count of 0 excludes; and ``ρ`` read from the node
    counts depends on how much the population sheds (``μ``). Fitted one after the other the two chase each other
    along the ridge ``ρ μ ≈`` constant.

    Parameters
    ----------
    node_negative : chemomet.calibrate.natural_history.MarginalModel
        Conditioned on node counts (``nodes`` not None).
    counts : NodeCountLikelihood
        The node-positive cohort's counts and the size series.
    theta_start : array_like
        Starting natural-history vector.
    nodes : dict
        Starting ``seeding_ratio`` and ``count_dispersion``; ``clearance_per_day`` and ``detection_cells`` are held
        (and ``small_deposit_clearance_per_day`` unless it is fitted).
    max_evaluations : int
        Most objective evaluations of Nelder–Mead.
    fit_small_clearance : bool
        Also fit ``ln δ_s``, the clearance of deposits too small to be seen (the race of
        :func:`~chemomet.model.nodes.expected_positive_nodes`; needs ``detection_cells > 1``), starting from
        ``nodes["small_deposit_clearance_per_day"]`` (default 0.001/day).
    outcomes : callable, optional
        ``outcomes(population) -> float``: a treated cohort's outcome log-likelihood given its node counts (nats),
        added to the objective, e.g. ``lambda pop: outcome_score(gbsg2, population=pop)["total"]``
        (:func:`chemomet.calibrate.treated_likelihood.outcome_score`); seconds per call, so a fit takes hours.
    information : bool, default True
        Compute the observed information (about 100 more evaluations); ``False`` leaves ``cov`` NaN.

    Returns
    -------
    JointFit

    Examples
    --------
    >>> counts = NodeCountLikelihood(load_gbsg2())  # doctest: +SKIP
    >>> fit = fit_jointly(transbig_model, counts, theta, pop.config["nodes"])  # doctest: +SKIP
    """
    delta = float(nodes["clearance_per_day"])
    n_theta = len(theta_start)
    if fit_small_clearance and float(nodes.get("detection_cells", 1.0)) <= 1.0:
        raise ValueError("the clearance of small deposits needs a detection size above one cell (detection_cells)")

    held_small = float(nodes.get("small_deposit_clearance_per_day", 0.0))

    def table(x):
        rho, k, *small = np.exp(x[n_theta:])
        return _nodes_table(rho, k, delta) | ({"small_deposit_clearance_per_day": small[0]} if small else {})

    def parts(x):
        theta, values = x[:n_theta], table(x)
        model = node_negative.with_nodes(values)
        pop = model.population(theta)
        ll_counts = counts.loglik(pop, values["seeding_ratio"], values["count_dispersion"], delta)
        return model.loglik(theta), ll_counts, (0.0 if outcomes is None else float(outcomes(pop)))

    def nll(x):
        val = -sum(parts(x))
        return val if np.isfinite(val) else 1e12

    start_nodes = [float(nodes["seeding_ratio"]), float(nodes["count_dispersion"])]
    if fit_small_clearance:
        start_nodes.append(held_small or 1e-3)
    x0 = np.concatenate([np.asarray(theta_start, float), np.log(start_nodes)])
    simplex = np.vstack([x0, x0 + np.diag(np.full(x0.size, 0.3))])
    res = optimize.minimize(nll, x0, method="Nelder-Mead", options={
        "maxfev": max_evaluations, "xatol": 1e-3, "fatol": 1e-3, "adaptive": True, "initial_simplex": simplex})
    if information:
        info = observed_information(_Objective(lambda x: sum(parts(x))), res.x)
        w, v = np.linalg.eigh(0.5 * (info + info.T))
        cov = (v / np.maximum(w, 1e-6)) @ v.T
    else:
        cov = np.full((x0.size, x0.size), np.nan)
    ll_nn, ll_counts, ll_outcomes = parts(res.x)
    values = {key: float(v) for key, v in table(res.x).items()}
    return JointFit(res.x[:n_theta].copy(), values["seeding_ratio"], values["count_dispersion"], delta, cov,
                    ll_nn + ll_counts + ll_outcomes, ll_nn, ll_counts, int(res.nfev), bool(res.success),
                    values.get("small_deposit_clearance_per_day", held_small), ll_outcomes)


@dataclass(frozen=True)
class _Objective:
    """Adapter: an objective with the ``loglik(x)`` method that
    :func:`~chemomet.calibrate.natural_history.observed_information` calls."""

    loglik: object


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


SHEDDING_EXPONENT_GRID = (1.0, 0.8, 0.67, 0.5, 0.4, 0.3)
"""Shedding exponents ``γ`` (founding rate ``μ N^γ``; dimensionless) of :func:`profile_shedding_exponent`."""

REFERENCE_TUMOUR_CELLS = 4.2e9
"""A 2 cm tumour (cells at 1e6 per mm³): each ``γ`` of the profile starts from the ``μ`` that keeps its founding
rate, ``μ N^γ``, as it was."""


def profile_held_value(
    node_negative, counts: NodeCountLikelihood, theta_start, section: str, key: str, grid, start=None,
    progress=None, max_evaluations: int = 3000,
) -> pd.DataFrame:
    """Profile log-likelihood of one held population value (``config[section][key]``): the joint fit
    (:func:`fit_jointly`) at each value of ``grid``, the other values of ``node_negative``'s reference held.

    Parameters
    ----------
    node_negative : chemomet.calibrate.natural_history.MarginalModel
        Conditioned on node counts; its ``reference`` gives everything held.
    counts : NodeCountLikelihood
        The node-positive cohort's counts and the size series.
    theta_start : array_like
        Natural-history vector at the reference's value.
    section, key : str
        The value profiled, e.g. ``"dissemination"``, ``"gamma"``.
    grid : sequence of float
        Values profiled (the value's units).
    start : callable, optional
        ``start(value)``: the starting vector at a value (default ``theta_start`` at every value).
    progress : callable, optional
        Called with one line per value.
    max_evaluations : int
        Most objective evaluations of each fit.

    Returns
    -------
    pandas.DataFrame
        One row per value (column ``key``): ``loglik`` and its parts ``loglik_node_negative`` and ``loglik_counts``
        (nats), ``seeding_ratio``, ``count_dispersion``, ``converged``, the fitted vector ``theta`` and the whole
        fitted configuration ``config``.

    Examples
    --------
    >>> counts = NodeCountLikelihood(load_gbsg2())  # doctest: +SKIP
    >>> grid = [0.5, 1.0]
    >>> profile = profile_held_value(transbig_model, counts, theta, "dissemination", "gamma", grid)  # doctest: +SKIP
    """
    say = progress or (lambda msg: None)
    reference = node_negative.reference
    rows = []
    for value in grid:
        ref = {**reference, section: {**reference[section], key: float(value)}}
        model = copy.copy(node_negative)  # the patients' tables are shared; only the held values change
        model.reference = ref
        first = np.array(theta_start if start is None else start(float(value)), float)
        fit = fit_jointly(model, counts, first, ref["nodes"], max_evaluations=max_evaluations)
        fitted = with_natural_history(fit.theta, ref)
        fitted["nodes"] = {**fitted["nodes"], "seeding_ratio": fit.seeding_ratio,
                           "count_dispersion": fit.count_dispersion}
        rows.append({key: float(value), "loglik": fit.loglik, "loglik_node_negative": fit.loglik_node_negative,
                     "loglik_counts": fit.loglik_counts, "seeding_ratio": fit.seeding_ratio,
                     "count_dispersion": fit.count_dispersion, "converged": fit.converged, "theta": fit.theta,
                     "config": fitted})
        say(f"{key} {value:g}: log-likelihood {fit.loglik:.2f}")
    return pd.DataFrame(rows)


def profile_shedding_exponent(
    node_negative, counts: NodeCountLikelihood, theta_start, grid=SHEDDING_EXPONENT_GRID, progress=None,
    max_evaluations: int = 3000,
) -> pd.DataFrame:
    """Profile log-likelihood of the shedding exponent ``γ`` (the founding rate is ``μ N^γ``):
    :func:`profile_held_value` of ``dissemination.gamma``.

    ``γ`` moves the scale of ``μ`` by orders of magnitude, so each fit starts from ``theta_start`` with
    ``log10 μ`` shifted to keep the founding rate of a 2 cm tumour (:data:`REFERENCE_TUMOUR_CELLS`).

    Parameters
    ----------
    node_negative : chemomet.calibrate.natural_history.MarginalModel
        Conditioned on node counts; its ``reference`` gives ``γ``'s starting value and everything held.
    counts : NodeCountLikelihood
        The node-positive cohort's counts and the size series.
    theta_start : array_like
        Natural-history vector at the reference's ``γ``.
    grid : tuple of float
        Exponents (dimensionless).
    progress : callable, optional
        Called with one line per exponent.
    max_evaluations : int
        Most objective evaluations of each fit.

    Returns
    -------
    pandas.DataFrame
        :func:`profile_held_value`'s table, one row per ``γ`` (column ``gamma``).

    Examples
    --------
    >>> counts = NodeCountLikelihood(load_gbsg2())  # doctest: +SKIP
    >>> profile = profile_shedding_exponent(transbig_model, counts, theta)  # doctest: +SKIP
    >>> profile.loc[profile.loglik.idxmax(), "gamma"]  # doctest: +SKIP
    """
    gamma0 = float(node_negative.reference["dissemination"]["gamma"])

    def start(gamma):
        first = np.array(theta_start, float)
        first[0] += (gamma0 - gamma) * np.log10(REFERENCE_TUMOUR_CELLS)
        return first

    return profile_held_value(node_negative, counts, theta_start, "dissemination", "gamma", grid, start,
                              progress, max_evaluations)
