"""Natural history: maximum marginal likelihood of growth and dissemination on an untreated cohort.

Setting: the untreated cohorts' strategy (``surgery-only``: surgery at the default timing's ``surgery_day``,
21 days after diagnosis, no systemic therapy; TRANSBIG). For one parameter set the model is closed form. With
``a = ln K``, ``L = ln N_vis`` (``ModelSettings.visible_cells``) and ``τ_v = -ln(1 - L/a)/β`` (the time a colony
needs from one cell to visibility), a colony founded at ``σ`` is visible at ``σ + τ_v``, so

    Λ(t) = C(min(t - τ_v, t_s)),      h(t) = dΛ/dt = μ N_p(t - τ_v)^γ  for  t - τ_v < t_s (else 0),

where ``C(σ)`` is the expected number of colonies founded from the first tumour cell until ``σ``, the engine's
closed form :func:`chemomet.model.dissemination.untreated_cumulative_founding`. Patients are metastasis-free at
diagnosis, so the likelihood of patient ``i`` with follow-up ``t_i`` and event indicator ``δ_i`` is conditional
on ``M0`` and marginal over the random effects ``z`` (doubling time, plateau, μ, TMEM):

    L_i = E_z[ e^{-Λ(t_i)} h(t_i)^{δ_i} ] / E_z[ e^{-Λ(0)} ],

computed with a fixed set of randomised quasi-Monte Carlo nodes (common random numbers), so the
log-likelihood is a deterministic function of the parameters.

The fitted vector ``θ`` is :data:`chemomet.calibrate.vector.NATURAL_HISTORY` (unconstrained scale); its mapping
onto the population configuration is :func:`chemomet.calibrate.vector.with_natural_history`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import logsumexp
from scipy.stats import norm, qmc

from chemomet.calibrate.published import published_targets
from chemomet.calibrate.vector import (
    NATURAL_HISTORY,
    natural_history_layout,
    natural_history_theta,
    prior_config,
    with_natural_history,
)
from chemomet.model.dissemination import untreated_cumulative_founding
from chemomet.model.dormancy import untreated_pool
from chemomet.model.nodes import expected_positive_nodes, node_count_logpmf
from chemomet.model.parameters import LN2, ModelSettings, PatientParameters
from chemomet.model.primary import age_days, untreated_log_cells
from chemomet.population import Population
from chemomet.regimens import Strategy, Timing
from chemomet.simulation import simulate
from chemomet.units import DAYS_PER_YEAR

PARAM_NAMES = NATURAL_HISTORY.names
"""Names of the fitted natural-history parameters (unconstrained scale), in order."""

INTEGRATED_EFFECTS = {"doubling_time": 0, "plateau": 1, "mu": 2, "tmem": 5}
"""The random effects integrated over, by name: their columns in ``z`` of :meth:`Population.parameters`
(the population's order: doubling time, plateau, μ, chemosensitivity, ε, TMEM T0, resistant fraction)."""

RANDOM_EFFECT_COLUMNS = tuple(INTEGRATED_EFFECTS.values())
"""Columns of the population's random effects integrated over, in the order of :data:`INTEGRATED_EFFECTS`."""

_DT = INTEGRATED_EFFECTS["doubling_time"]

UNTREATED_STRATEGY = "surgery-only"
"""The strategy of the untreated cohorts: surgery, no systemic therapy."""


def untreated_surgery_day(timing: Timing | None = None) -> float:
    """Surgery day of the untreated cohorts' strategy (:data:`UNTREATED_STRATEGY`) under ``timing``.

    Parameters
    ----------
    timing : chemomet.regimens.Timing, optional
        Default: the default timing.

    Returns
    -------
    float
        Days from diagnosis.

    Examples
    --------
    >>> untreated_surgery_day()
    21.0
    >>> untreated_surgery_day(Timing(surgery_day=28))
    28.0
    """
    return Strategy.parse(UNTREATED_STRATEGY, timing=timing).schedule().surgery_day


def quadrature_normals(n_nodes: int, seed: int) -> np.ndarray:
    """Fixed standard-normal nodes ``(n_nodes, 7)``: scrambled Sobol points in the integrated columns, 0 elsewhere.

    Examples
    --------
    >>> z = quadrature_normals(8, seed=1)
    >>> z.shape, bool(np.all(z[:, INTEGRATED_EFFECTS["mu"]] != 0)), bool(np.all(z[:, 3] == 0))
    ((8, 7), True, True)
    """
    sob = qmc.Sobol(d=len(RANDOM_EFFECT_COLUMNS), scramble=True, seed=seed)
    u = sob.random(n_nodes)
    z = np.zeros((n_nodes, Population.N_EFFECTS))
    z[:, list(RANDOM_EFFECT_COLUMNS)] = norm.ppf(np.clip(u, 1e-12, 1 - 1e-12))
    return z


def visibility_lag_days(p: PatientParameters, settings: ModelSettings) -> np.ndarray:
    """``τ_v = -ln(1 - L/a)/β``: days for an untreated colony to grow from one cell to visibility.

    Parameters
    ----------
    p : PatientParameters
        The patients (one row each).
    settings : ModelSettings
        Gives ``L = ln visible_cells`` (cells).

    Returns
    -------
    numpy.ndarray
        Days, one per patient.

    Examples
    --------
    >>> import chemomet as cm
    >>> pop = cm.Population()
    >>> bool(visibility_lag_days(pop.sample(3, rng=1)[1], pop.settings).min() > 0)
    True
    """
    return -np.log1p(-np.log(settings.visible_cells) / p.log_plateau) / p.beta_per_day


def _founding_until(p: PatientParameters, sigma_days: np.ndarray) -> np.ndarray:
    """The engine's closed form (:func:`untreated_cumulative_founding`) at one time per patient."""
    return untreated_cumulative_founding(p, np.asarray(sigma_days, float)[:, None])[:, 0]


def _dormant_pool_after(p: PatientParameters, y: np.ndarray, surgery_day: float) -> np.ndarray:
    """Colonies still dormant at ``y`` (days): the untreated pool at ``min(y, t_s)``, emptying after surgery."""
    founding_end = np.minimum(y, surgery_day)
    pool = untreated_pool(p, founding_end[:, None])[:, 0]
    return pool * np.exp(-p.wake_rate_per_day * (y - founding_end))


def log_hazard_and_cumulative(p: PatientParameters, t_days: np.ndarray, settings: ModelSettings, surgery_day: float):
    """``(ln h(t), Λ(t), Λ(0))`` per row for untreated patients operated at ``surgery_day``.

    See the module docstring. ``ln h`` is ``-inf`` where no colony can become visible at ``t`` (founded after
    surgery or before the primary's first cell). With dormancy (``q = dormant_fraction > 0``, wake rate ``λ``),
    a share ``q`` of colonies waits before growing and ``y = t - τ_v``:

        Λ(t) = C(min(y, t_s)) - q P(y),      h(t) = (1 - q) μ N_p(y)^γ 1[y < t_s] + q λ P(y),

    where ``P(y)`` is the dormant pool (:func:`chemomet.model.dormancy.untreated_pool` up to surgery, emptying at
    rate ``λ`` after it) — the engine's dormancy (docs/science.md §2.7) for an untreated patient.

    Parameters
    ----------
    p : PatientParameters
        The patients (one row each).
    t_days : numpy.ndarray
        One time per patient (days from diagnosis).
    settings : ModelSettings
        Gives the visibility threshold (``visible_cells``, cells).
    surgery_day : float
        Removal of the primary (days from diagnosis), e.g. :func:`untreated_surgery_day`.

    Returns
    -------
    tuple of numpy.ndarray
        ``ln h(t)`` (ln of visible colonies per day), ``Λ(t)`` and ``Λ(0)`` (expected visible colonies).

    Examples
    --------
    >>> import chemomet as cm
    >>> pop = cm.Population()
    >>> _, p = pop.sample(3, rng=1)
    >>> log_h, lam_t, lam_0 = log_hazard_and_cumulative(p, np.full(3, 1000.0), pop.settings, untreated_surgery_day())
    >>> bool(np.all(lam_t >= lam_0))
    True
    """
    log_direct, log_dormant, lam_t, lam_0 = hazard_parts(p, t_days, settings, surgery_day)
    return np.logaddexp(log_direct, log_dormant), lam_t, lam_0


def hazard_parts(p: PatientParameters, t_days: np.ndarray, settings: ModelSettings, surgery_day: float):
    """``(ln h_direct, ln h_dormant, Λ(t), Λ(0))``: :func:`log_hazard_and_cumulative` with the hazard split into
    colonies that grew at once (``(1 - q) μ N_p(y)^γ``) and colonies that woke from dormancy (``q λ P(y)``);
    ``-inf`` where a part is zero. Same parameters as :func:`log_hazard_and_cumulative`.

    Examples
    --------
    >>> import chemomet as cm
    >>> pop = cm.Population()
    >>> _, p = pop.sample(2, rng=1)  # no dormancy: the dormant part is zero
    >>> bool(np.all(hazard_parts(p, np.full(2, 900.0), pop.settings, 21.0)[1] == -np.inf))
    True
    """
    tv = visibility_lag_days(p, settings)
    t = np.asarray(t_days, float)
    sigma = t - tv
    lam_t = _founding_until(p, np.minimum(sigma, surgery_day))
    lam_0 = _founding_until(p, np.minimum(-tv, surgery_day))
    u_sigma = untreated_log_cells(p, sigma[:, None])[:, 0]
    ok = (sigma < surgery_day) & (sigma > -age_days(p))
    q = p.dormant_fraction
    with np.errstate(invalid="ignore", divide="ignore"):
        log_direct = np.where(ok, np.log(p.mu) + p.gamma * u_sigma + np.log1p(-q), -np.inf)
    log_dormant = np.full(t.shape, -np.inf)
    if np.any(q > 0):
        pool_t = _dormant_pool_after(p, sigma, surgery_day)
        lam_t = lam_t - q * pool_t
        lam_0 = lam_0 - q * _dormant_pool_after(p, -tv, surgery_day)
        with np.errstate(divide="ignore"):
            log_dormant = np.log(q * p.wake_rate_per_day * pool_t)
    return log_direct, log_dormant, lam_t, lam_0


@dataclass(frozen=True)
class DoublingTimeMeasurement:
    """A published median doubling time used as a likelihood term beside a cohort's survival.

    ``ln`` of the model's median doubling time of ``subtype`` is taken as normal around ``ln median_days`` with
    standard deviation ``se_log`` (from the target's interval: ``ln(factor)/1.96``).

    Examples
    --------
    >>> m = DoublingTimeMeasurement("HR+/HER2-", 241.0, 0.2, "Ryu 2014")
    >>> cfg = prior_config()  # the priors' median is 241 days
    >>> m.loglik(cfg) == 0.0
    True
    """

    subtype: str
    median_days: float
    se_log: float
    source: str

    def loglik(self, config: dict) -> float:
        """The term ``-½ ((ln DT - ln median)/se)²`` (nats, without the constant) at ``config``."""
        dt = config["growth"]["doubling_time_median_days"][self.subtype]
        return float(-0.5 * ((np.log(dt) - np.log(self.median_days)) / self.se_log) ** 2)


def published_doubling_times() -> tuple[DoublingTimeMeasurement, ...]:
    """The measured median doubling times of the target table (Ryu 2014: HR+ and triple-negative tumours).

    Examples
    --------
    >>> [(m.subtype, m.median_days) for m in published_doubling_times()]
    [('HR+/HER2-', 241.0), ('TNBC', 103.0)]
    """
    targets = published_targets()
    out = []
    for key, subtype in (("doubling_time_hr_pos", "HR+/HER2-"), ("doubling_time_tnbc", "TNBC")):
        t = targets[key]
        lo, hi = t.bounds
        out.append(DoublingTimeMeasurement(subtype, float(t.target), float(np.log(hi / lo) / (2 * 1.96)), t.source))
    return tuple(out)


def _with_nodes_table(config: dict, nodes: dict) -> dict:
    """``config`` with the numeric values of ``nodes`` over its ``[nodes]`` table (a new top-level dict)."""
    values = {key: float(value) for key, value in nodes.items() if key != "sources"}
    return {**config, "nodes": {**config.get("nodes", {}), **values}}


@dataclass
class MarginalModel:
    """The marginal likelihood of a cohort, vectorised over patients × quadrature nodes.

    covariates: covariate table (layout of :meth:`Population.parameters`); time_days, event: follow-up (days)
    and event indicator; n_nodes: quasi-Monte Carlo nodes per patient; seed: their scramble seed (common random
    numbers); reference: the configuration whose other values are kept (default: the shipped priors);
    surgery_day: removal of the primary (days from diagnosis; default: :func:`untreated_surgery_day`);
    measurements: published doubling times added to the log-likelihood (default none;
    :func:`published_doubling_times`); nodes: the ``[nodes]`` table (seeding ratio, count dispersion, clearance,
    axillary nodes) under which every patient is conditioned on her reported positive-node count (covariate
    ``nodes_positive``, required then): each twin ``z`` is weighted by ``P(c_i | z)`` in the numerator and the
    denominator, ``L_i = E_z[P(c_i|z) e^{-Λ(t_i)} h^{δ_i}] / E_z[P(c_i|z) e^{-Λ(0)}]`` — a node-negative cohort
    was selected on its count, and its twins are the population's twins given that count (default ``None``: not
    conditioned). ``θ`` may be :data:`NATURAL_HISTORY` or, to fit dormancy,
    :data:`~chemomet.calibrate.vector.NATURAL_HISTORY_DORMANT`. The visibility threshold is the population's
    (``ModelSettings.visible_cells``).

    Examples
    --------
    >>> from chemomet.calibrate.vector import prior_config
    >>> from chemomet.calibrate.cohort import VirtualCohort
    >>> cov = VirtualCohort.draw(prior_config(), 5, seed=1).covariates
    >>> m = MarginalModel(cov, np.full(5, 3000.0), np.zeros(5, bool), n_nodes=16)
    >>> bool(m.loglik(prior_theta()) < 0)
    True
    """

    covariates: pd.DataFrame
    time_days: np.ndarray
    event: np.ndarray
    n_nodes: int = 512
    seed: int = 2026
    reference: dict | None = None
    surgery_day: float = field(default_factory=untreated_surgery_day)
    measurements: tuple = ()
    nodes: dict | None = None

    def __post_init__(self):
        self.reference = self.reference or prior_config()
        if self.nodes is not None:
            if "nodes_positive" not in self.covariates:
                raise ValueError("conditioning on node counts needs a 'nodes_positive' covariate")
            self.reference = _with_nodes_table(self.reference, self.nodes)
            self._counts = np.repeat(self.covariates["nodes_positive"].to_numpy(float), self.n_nodes)
        self.time_days = np.asarray(self.time_days, float)
        self.event = np.asarray(self.event, bool)
        n = len(self.covariates)
        z = quadrature_normals(self.n_nodes, self.seed)
        self._z = np.tile(z, (n, 1))
        self._u_dt = np.tile(norm.cdf(z[:, _DT]), n)  # the doubling-time node as a uniform
        self._u = np.ones((n * self.n_nodes, 2))  # no resistant clone (irrelevant without treatment)
        self._cov = self.covariates.loc[self.covariates.index.repeat(self.n_nodes)].reset_index(drop=True)
        self._rows = n
        ev = np.flatnonzero(self.event)
        self._ev = ev
        self._ev_rows = (ev[:, None] * self.n_nodes + np.arange(self.n_nodes)[None, :]).ravel()
        self._cov_ev = self._cov.iloc[self._ev_rows].reset_index(drop=True)

    @classmethod
    def of_rows(
        cls, covariates: pd.DataFrame, time_days, event, rows, n_nodes: int = 512, seed: int = 2026,
        measurements: tuple = (), nodes: dict | None = None, reference: dict | None = None,
    ):
        """The model of the patients ``rows`` (positions) of a cohort: a training fold, a test fold or a bootstrap
        resample (rows may repeat), with the published ``measurements`` added whole to its likelihood (they are
        not resampled: they come from other patients), conditioned on the node counts under ``nodes`` if given,
        with the other values of ``reference`` (default: the priors).

        Examples
        --------
        >>> from chemomet.calibrate.cohort import VirtualCohort
        >>> cov = VirtualCohort.draw(prior_config(), 6, seed=1).covariates
        >>> MarginalModel.of_rows(cov, np.full(6, 3000.0), np.zeros(6, bool), [0, 2, 2], n_nodes=8).time_days.size
        3
        """
        rows = np.asarray(rows)
        return cls(covariates.iloc[rows].reset_index(drop=True), np.asarray(time_days, float)[rows],
                   np.asarray(event, bool)[rows], n_nodes, seed, reference=reference, measurements=tuple(measurements),
                   nodes=nodes)

    def with_nodes(self, nodes: dict) -> MarginalModel:
        """The same model conditioned under other ``[nodes]`` values (a shallow copy; the patients' tables are
        shared, so this is cheap inside an optimiser).

        Examples
        --------
        >>> from chemomet.calibrate.cohort import VirtualCohort
        >>> cov = VirtualCohort.draw(prior_config(), 4, seed=1).covariates.assign(nodes_positive=0)
        >>> m = MarginalModel(cov, np.full(4, 3000.0), np.zeros(4, bool), n_nodes=8, nodes={"seeding_ratio": 5.0})
        >>> m.with_nodes({"seeding_ratio": 2.0}).reference["nodes"]["seeding_ratio"], m.nodes["seeding_ratio"]
        (2.0, 5.0)
        """
        if self.nodes is None:
            raise ValueError("this model is not conditioned on node counts (nodes=None)")
        other = copy.copy(self)
        other.nodes = {**self.nodes, **nodes}
        other.reference = _with_nodes_table(self.reference, nodes)
        return other

    def population(self, theta) -> Population:
        """The population model at ``θ``."""
        return Population(with_natural_history(theta, self.reference))

    def _log_count_weight(self, pop: Population, p: PatientParameters, rows) -> np.ndarray | float:
        """``ln P(c_i | z)`` of the twins ``p`` (flat rows ``rows`` of patients × nodes); 0 when not conditioned."""
        if self.nodes is None:
            return 0.0
        mean = expected_positive_nodes(p, pop.settings)
        return node_count_logpmf(self._counts[rows], mean, pop.settings.node_count_dispersion)

    def _node_terms(self, theta, times: np.ndarray):
        """``ln h``, ``Λ(t)``, ``Λ(0)`` and the node-count log-weight of every twin, each ``(patients, nodes)``."""
        pop = self.population(theta)
        p = pop.parameters(self._cov, self._z, self._u)
        t = np.repeat(times, self.n_nodes)
        log_h, lam_t, lam_0 = log_hazard_and_cumulative(p, t, pop.settings, self.surgery_day)
        shape = (self._rows, self.n_nodes)
        log_w = np.broadcast_to(self._log_count_weight(pop, p, slice(None)), t.shape)
        return log_h.reshape(shape), lam_t.reshape(shape), lam_0.reshape(shape), log_w.reshape(shape)

    def _event_terms(self, theta):
        """``ln E_z[e^{-Λ(t_i)} h(t_i)]`` for the patients with an event, integrating the doubling time exactly
        over the region where a colony that grew at once can become visible at ``t_i``.

        That part of the hazard is ``> 0`` only for ``τ_v > t_i - t_s``, and ``τ_v`` is proportional to the
        doubling time (``τ_v = τ_v^0 e^{σ_DT z_DT}``), so the region is ``z_DT > z* = ln((t_i - t_s)/τ_v^0)/σ_DT``.
        The doubling-time node is drawn from the normal truncated to it (inverse CDF of the fixed uniform) and
        weighted by ``P(z_DT > z*)``: the integrand becomes smooth in ``θ`` (no node jumps in or out). Colonies
        waking from dormancy can become visible at any time, so their part uses the plain nodes.
        """
        pop = self.population(theta)
        z = self._z[self._ev_rows].copy()
        u = self._u[: z.shape[0]]
        t = np.repeat(self.time_days[self._ev], self.n_nodes)
        shape = (self._ev.size, self.n_nodes)
        dormant = float(pop.config.get("dormancy", {}).get("dormant_fraction", 0.0)) > 0.0
        p_plain = pop.parameters(self._cov_ev, z, u) if dormant else None
        z[:, _DT] = 0.0
        tv0 = visibility_lag_days(pop.parameters(self._cov_ev, z, u), pop.settings)
        sd = pop.config["growth"]["doubling_time_sdlog"]
        with np.errstate(divide="ignore"):
            z_star = np.where(
                t > self.surgery_day, np.log(np.maximum(t - self.surgery_day, 1e-300) / tv0) / sd, -np.inf
            )
        sf = norm.sf(z_star)
        z[:, _DT] = norm.isf(sf * (1.0 - self._u_dt[self._ev_rows]))
        p = pop.parameters(self._cov_ev, z, u)
        log_direct, _, lam_t, _ = hazard_parts(p, t, pop.settings, self.surgery_day)
        log_w = self._log_count_weight(pop, p, self._ev_rows)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = (log_w + norm.logsf(z_star) - lam_t + log_direct).reshape(shape)
        out = logsumexp(terms, axis=1)
        if dormant:
            _, log_dormant, lam_plain, _ = hazard_parts(p_plain, t, pop.settings, self.surgery_day)
            log_w_plain = self._log_count_weight(pop, p_plain, self._ev_rows)
            out = np.logaddexp(out, logsumexp((log_w_plain + log_dormant - lam_plain).reshape(shape), axis=1))
        return out - np.log(self.n_nodes)

    def loglik_terms(self, theta) -> np.ndarray:
        """Per-patient conditional marginal log-likelihood ``ln L_i`` (nats)."""
        _, lam_t, lam_0, log_w = self._node_terms(theta, self.time_days)
        num = logsumexp(log_w - lam_t, axis=1) - np.log(self.n_nodes)
        if self._ev.size:
            num[self._ev] = self._event_terms(theta)
        den = logsumexp(log_w - lam_0, axis=1) - np.log(self.n_nodes)
        return np.maximum(num - den, -700.0)

    def loglik(self, theta) -> float:
        """Total log-likelihood (nats): the cohort's terms plus the measurements'."""
        total = float(np.sum(self.loglik_terms(theta)))
        if self.measurements:
            cfg = with_natural_history(theta, self.reference)
            total += sum(m.loglik(cfg) for m in self.measurements)
        return total

    def dmfs(self, theta, times_days) -> np.ndarray:
        """Predicted DM-free probability ``E_z[e^{-Λ(t)}]/E_z[e^{-Λ(0)}]`` at ``times_days``, ``(n, len(times))``."""
        out = []
        for t in np.atleast_1d(np.asarray(times_days, float)):
            _, lam_t, lam_0, log_w = self._node_terms(theta, np.full(self._rows, t))
            out.append(np.exp(logsumexp(log_w - lam_t, axis=1) - logsumexp(log_w - lam_0, axis=1)))
        return np.column_stack(out)

    def risk(self, theta, years: float = 10.0) -> np.ndarray:
        """Predicted probability of distant metastasis by ``years`` (given none at diagnosis)."""
        return 1.0 - self.dmfs(theta, [years * DAYS_PER_YEAR])[:, 0]


def prior_theta(dormancy: bool = False) -> np.ndarray:
    """``θ`` of the shipped priors (the optimiser's start), order of :data:`PARAM_NAMES`.

    With ``dormancy``, the :data:`~chemomet.calibrate.vector.NATURAL_HISTORY_DORMANT` vector, starting the dormancy at
    :data:`~chemomet.calibrate.vector.DORMANCY_START` (the priors have none).

    Examples
    --------
    >>> float(prior_theta()[NATURAL_HISTORY.index("log_dt_scale")])
    0.0
    >>> from chemomet.calibrate.vector import NATURAL_HISTORY_DORMANT
    >>> len(prior_theta(dormancy=True)) == len(NATURAL_HISTORY_DORMANT)
    True
    """
    return natural_history_theta(prior_config(), dormancy=dormancy)


@dataclass
class FitResult:
    """A natural-history fit: ``theta`` (MLE), ``cov`` (inverse observed information), ``loglik`` (nats),
    ``n_evaluations``, ``converged``, ``names``.

    Examples
    --------
    >>> res = FitResult(np.zeros(5), np.eye(5) * 0.04, -521.1, 234, True)
    >>> res.se.tolist()
    [0.2, 0.2, 0.2, 0.2, 0.2]
    """

    theta: np.ndarray
    cov: np.ndarray
    loglik: float
    n_evaluations: int
    converged: bool
    names: tuple = PARAM_NAMES

    @property
    def se(self) -> np.ndarray:
        """Standard errors on the unconstrained scale."""
        return np.sqrt(np.diag(self.cov))


def maximise(
    model: MarginalModel, start=None, max_evaluations: int = 2000, xatol: float = 1e-3, initial_step: float = 0.3
):
    """Nelder–Mead on ``-loglik`` from ``start`` (default: the priors).

    Parameters
    ----------
    model : MarginalModel
        The likelihood.
    start : array_like, optional
        Starting ``θ`` (order of :data:`PARAM_NAMES`); default :func:`prior_theta`.
    max_evaluations : int
        Most likelihood evaluations.
    xatol : float
        Simplex size at convergence (unconstrained scale).
    initial_step : float
        Edge of the initial simplex along each parameter.

    Returns
    -------
    tuple
        ``(theta, loglik, n_evaluations, converged)``; ``loglik`` in nats.

    Examples
    --------
    >>> theta, ll, nfev, ok = maximise(model)  # doctest: +SKIP
    """
    start = prior_theta() if start is None else np.asarray(start, float)

    def nll(th):
        val = -model.loglik(th)
        return val if np.isfinite(val) else 1e12

    simplex = np.vstack([start, start + np.diag(np.full(start.size, initial_step))])
    res = optimize.minimize(
        nll,
        start,
        method="Nelder-Mead",
        options={
            "maxfev": max_evaluations,
            "xatol": xatol,
            "fatol": 1e-3,
            "adaptive": True,
            "initial_simplex": simplex,
        },
    )
    return res.x, -float(res.fun), int(res.nfev), bool(res.success)


def observed_information(model: MarginalModel, theta, step: float = 0.05) -> np.ndarray:
    """Observed information ``-∇² loglik`` by central differences (step on the unconstrained scale).

    Examples
    --------
    >>> info = observed_information(model, theta)  # doctest: +SKIP
    """
    th = np.asarray(theta, float)
    k = th.size
    f0 = model.loglik(th)
    hess = np.zeros((k, k))
    e = np.eye(k) * step
    fp = np.array([model.loglik(th + e[i]) for i in range(k)])
    fm = np.array([model.loglik(th - e[i]) for i in range(k)])
    for i in range(k):
        hess[i, i] = (fp[i] - 2 * f0 + fm[i]) / step**2
        for j in range(i + 1, k):
            fpp = model.loglik(th + e[i] + e[j])
            fmm = model.loglik(th - e[i] - e[j])
            hess[i, j] = hess[j, i] = (fpp - fp[i] - fp[j] + 2 * f0 - fm[i] - fm[j] + fmm) / (2 * step**2)
    return -hess


def fit(model: MarginalModel, start=None, max_evaluations: int = 2000) -> FitResult:
    """Maximum marginal likelihood with Laplace (inverse observed information) uncertainty.

    Parameters
    ----------
    model : MarginalModel
        The likelihood of a cohort.
    start : array_like, optional
        Starting ``θ`` (default: the priors; ``prior_theta(dormancy=True)`` fits the dormancy too).
    max_evaluations : int
        Most likelihood evaluations of the optimiser.

    Returns
    -------
    FitResult
        MLE, covariance (unconstrained scale), log-likelihood (nats).

    Examples
    --------
    >>> from chemomet.datasets import load_transbig
    >>> c = load_transbig()  # doctest: +SKIP
    >>> res = fit(MarginalModel(c.covariates, c.time_days, c.event))  # doctest: +SKIP
    """
    theta, ll, nfev, ok = maximise(model, start, max_evaluations)
    info = observed_information(model, theta)
    info = 0.5 * (info + info.T)
    w, v = np.linalg.eigh(info)
    w = np.maximum(w, 1e-6)  # a flat direction gets a very wide (not negative) variance
    cov = (v / w) @ v.T
    return FitResult(theta, cov, ll, nfev, ok, natural_history_layout(theta).names)


def simulate_cohort(config: dict, covariates: pd.DataFrame, censor_days: np.ndarray, seed: int):
    """Event times from the engine for a cohort with known parameters (for identifiability checks).

    Each patient draws random effects until metastasis-free at diagnosis (accepted with probability
    ``e^{-Λ(0)}``), then a DM time by inverting ``S(t | M0)`` evaluated by :func:`chemomet.simulate`
    (:data:`UNTREATED_STRATEGY`) on a weekly grid; times beyond the last visible colony are never events.

    Parameters
    ----------
    config : dict
        Population configuration with the known parameters.
    covariates : pandas.DataFrame
        The cohort (layout of :meth:`Population.parameters`).
    censor_days : numpy.ndarray
        Censoring time of each patient (days from diagnosis).
    seed : int
        Seed of the draws.

    Returns
    -------
    tuple of numpy.ndarray
        ``(time_days, event)``.

    Examples
    --------
    >>> time, event = simulate_cohort(with_natural_history(prior_theta()), cov, censor, seed=5)  # doctest: +SKIP
    """
    rng = np.random.default_rng(seed)
    pop = Population(config)
    n = len(covariates)
    z = np.zeros((n, Population.N_EFFECTS))
    todo = np.arange(n)
    while todo.size:
        zz = rng.standard_normal((todo.size, Population.N_EFFECTS))
        z[todo] = zz
        p = pop.parameters(covariates.iloc[todo].reset_index(drop=True), zz, np.ones((todo.size, 2)))
        _, lam0, _ = log_hazard_and_cumulative(p, np.zeros(p.n), pop.settings, untreated_surgery_day())
        keep = rng.random(todo.size) < np.exp(-lam0)
        todo = todo[~keep]
    p = pop.parameters(covariates.reset_index(drop=True), z, np.ones((n, 2)))
    horizon = float(np.max(censor_days)) + 1.0
    grid = np.linspace(0.0, horizon, int(horizon // 7) + 2)
    strategy = Strategy.parse(UNTREATED_STRATEGY)
    out = simulate(p, strategy, horizon_days=horizon, grid=grid, population=pop, seed=seed)
    s = out.trajectories["dmfs"]
    u = rng.random(n)
    time = np.empty(n)
    for i in range(n):  # inverse-transform on each patient's monotone curve (small test cohorts only)
        below = np.flatnonzero(s[i] <= u[i])
        if below.size == 0 or below[0] == 0:
            time[i] = np.inf
        else:
            j = below[0]
            time[i] = np.interp(u[i], [s[i, j], s[i, j - 1]], [grid[j], grid[j - 1]])
    event = time <= censor_days
    return np.where(event, time, censor_days), event


def natural_surv_prob(model: MarginalModel, theta, years) -> np.ndarray:
    """Cohort-mean predicted DMFS (probability) at ``years`` after diagnosis (a convenience for tables).

    Examples
    --------
    >>> natural_surv_prob(model, theta, [5.0, 10.0])  # doctest: +SKIP
    """
    return model.dmfs(theta, np.asarray(years, float) * DAYS_PER_YEAR).mean(axis=0)


__all__ = [
    "PARAM_NAMES",
    "MarginalModel",
    "FitResult",
    "DoublingTimeMeasurement",
    "published_doubling_times",
    "hazard_parts",
    "fit",
    "maximise",
    "observed_information",
    "simulate_cohort",
    "untreated_surgery_day",
    "LN2",
]
