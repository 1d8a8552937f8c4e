"""Natural history: maximum marginal likelihood of growth and dissemination on an untreated cohort.

Setting: surgery at ``surgery_day`` (21 days) after diagnosis, no systemic therapy (TRANSBIG). For one
parameter set the model is closed form. With ``a = ln K``, ``L = ln N_vis`` and ``τ_v = -ln(1 - L/a)/β`` (the time a
colony needs from one cell to visibility), a colony founded at ``σ`` is visible at ``σ + τ_v``, so

    Λ(t) = C(min(t - τ_v, t_s)),      h(t) = dΛ/dt = μ N_p(t - τ_v)^γ  for  t - τ_v < t_s (else 0),

where ``C(σ)`` is the expected number of colonies founded from the first tumour cell until ``σ`` (E1 closed form,
:func:`cumulative_founding`). Patients are metastasis-free at diagnosis, so the likelihood of patient ``i``
with follow-up ``t_i`` and event indicator ``δ_i`` is conditional on ``M0`` and marginal over the random
effects ``z`` (doubling time, plateau, μ, TMEM):

    L_i = E_z[ e^{-Λ(t_i)} h(t_i)^{δ_i} ] / E_z[ e^{-Λ(0)} ],

computed with a fixed set of randomised quasi-Monte Carlo nodes (common random numbers), so the
log-likelihood is a deterministic function of the parameters.

The fitted vector ``θ`` (unconstrained) maps onto the population configuration (``population.toml`` layout):

* ``log10_mu``: ``dissemination.mu_median_per_cell_day = 10^θ`` (colonies per cell per day);
* ``log_mu_sdlog``: ``dissemination.mu_sdlog = e^θ``;
* ``log_dt_scale``: every ``growth.doubling_time_median_days`` multiplied by ``e^θ`` (prior ratios kept);
* ``log_dt_sdlog``: ``growth.doubling_time_sdlog = e^θ``;
* ``grade_log_dt_slope``: ``growth.grade_doubling_factor = [e^{-θ}, 1, e^{θ}]`` for grades 1, 2, 3.
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import exp1, logsumexp
from scipy.stats import norm, qmc

from chemomet.model.parameters import LN2, PatientParameters
from chemomet.population import Population
from chemomet.units import DAYS_PER_YEAR

PARAM_NAMES = ("log10_mu", "log_mu_sdlog", "log_dt_scale", "log_dt_sdlog", "grade_log_dt_slope")
"""Names of the fitted natural-history parameters (unconstrained scale), in order."""

RANDOM_EFFECT_COLUMNS = (0, 1, 2, 5)
"""Columns of the population's random effects integrated over: doubling time, plateau, μ, TMEM (T0)."""

SURGERY_DAY = 21.0


def base_config() -> dict:
    """The prior configuration (``data/population.toml``, read from the file, not from ``Population()``'s
    default, so it stays the prior whatever the default population is), a fresh copy."""
    return copy.deepcopy(_prior_config())


@lru_cache(maxsize=1)
def _prior_config() -> dict:
    return tomllib.loads(resources.files("chemomet.data").joinpath("population.toml").read_text(encoding="utf-8"))


def theta_from_config(config: dict) -> np.ndarray:
    """The natural-history vector ``θ`` of a configuration (doubling times relative to the priors)."""
    g, d = config["growth"], config["dissemination"]
    ref_dt = base_config()["growth"]["doubling_time_median_days"]["HR+/HER2-"]
    gf = g["grade_doubling_factor"]
    return np.array(
        [
            np.log10(d["mu_median_per_cell_day"]),
            np.log(d["mu_sdlog"]),
            np.log(g["doubling_time_median_days"]["HR+/HER2-"] / ref_dt),
            np.log(g["doubling_time_sdlog"]),
            0.5 * (np.log(gf[2]) - np.log(gf[0])),
        ]
    )


def config_from_theta(theta, reference: dict | None = None) -> dict:
    """A population configuration with the natural-history parameters set from ``θ`` (see module docstring);
    all other values from ``reference`` (default: the priors). Doubling times are the priors' times ``× e^{θ}``."""
    prior_dt = base_config()["growth"]["doubling_time_median_days"]
    cfg = copy.deepcopy(reference or base_config())
    th = np.asarray(theta, float)
    g, d = cfg["growth"], cfg["dissemination"]
    d["mu_median_per_cell_day"] = float(10.0 ** th[0])
    d["mu_sdlog"] = float(np.exp(th[1]))
    g["doubling_time_median_days"] = {k: float(v * np.exp(th[2])) for k, v in prior_dt.items()}
    g["doubling_time_sdlog"] = float(np.exp(th[3]))
    g["grade_doubling_factor"] = [float(np.exp(-th[4])), 1.0, float(np.exp(th[4]))]
    return cfg


def quadrature_normals(n_nodes: int, seed: int) -> np.ndarray:
    """Fixed standard-normal nodes ``(n_nodes, 7)``: scrambled Sobol points in the integrated columns, 0 elsewhere."""
    sob = qmc.Sobol(d=len(RANDOM_EFFECT_COLUMNS), scramble=True, seed=seed)
    u = sob.random(n_nodes)
    z = np.zeros((n_nodes, Population.N_EFFECTS))
    z[:, list(RANDOM_EFFECT_COLUMNS)] = norm.ppf(np.clip(u, 1e-12, 1 - 1e-12))
    return z


def visibility_lag_days(p: PatientParameters, visible_cells: float) -> np.ndarray:
    """``τ_v = -ln(1 - L/a)/β``: days for an untreated colony to grow from one cell to ``visible_cells``."""
    return -np.log1p(-np.log(visible_cells) / p.log_plateau) / p.beta_per_day


def cumulative_founding(p: PatientParameters, sigma_days: np.ndarray) -> np.ndarray:
    """Expected colonies founded by the untreated primary from its first cell until ``sigma_days`` (one per row).

    ``μ/β [N(σ)^γ e^{x} E1(x) - e^{γa} E1(γa)]`` with ``x = γ a e^{-β(σ + T_age)}``; 0 before the first cell.
    """
    a, b, gam = p.log_plateau, p.beta_per_day, p.gamma
    t_age = -np.log1p(-p.log_cells0 / a) / b
    tau = np.maximum(np.asarray(sigma_days, float) + t_age, 0.0)
    x = gam * a * np.exp(-b * tau)
    ga = gam * a
    with np.errstate(over="ignore", invalid="ignore"):
        ex = np.exp(x) * exp1(x)
        eb = np.exp(ga) * exp1(ga)
        ex = np.where(np.isfinite(ex), ex, 1.0 / x)
        eb = np.where(np.isfinite(eb), eb, 1.0 / ga)
    return p.mu / b * (np.exp(ga - x) * ex - eb)


def log_hazard_and_cumulative(p: PatientParameters, t_days: np.ndarray, visible_cells: float, surgery_day: float):
    """``(ln h(t), Λ(t), Λ(0))`` per row for untreated patients operated at ``surgery_day`` (see module docstring).

    ``ln h`` is ``-inf`` where no colony can become visible at ``t`` (founded after surgery or before the
    primary's first cell).
    """
    tv = visibility_lag_days(p, visible_cells)
    t = np.asarray(t_days, float)
    sigma = t - tv
    lam_t = cumulative_founding(p, np.minimum(sigma, surgery_day))
    lam_0 = cumulative_founding(p, np.minimum(-tv, surgery_day))
    a, b = p.log_plateau, p.beta_per_day
    t_age = -np.log1p(-p.log_cells0 / a) / b
    u_sigma = a + (p.log_cells0 - a) * np.exp(-b * sigma)
    ok = (sigma < surgery_day) & (sigma > -t_age)
    with np.errstate(invalid="ignore"):
        log_h = np.where(ok, np.log(p.mu) + p.gamma * u_sigma, -np.inf)
    return log_h, lam_t, lam_0


@dataclass
class MarginalModel:
    """The marginal likelihood of a cohort, vectorised over patients × quadrature nodes.

    covariates: covariate table (layout of :meth:`Population.parameters`); time_days, event: follow-up (days)
    and event indicator; n_nodes: quasi-Monte Carlo nodes per patient; seed: their scramble seed (common random
    numbers); reference: the configuration whose other values are kept (default: the shipped priors).
    """

    covariates: pd.DataFrame
    time_days: np.ndarray
    event: np.ndarray
    n_nodes: int = 512
    seed: int = 2026
    reference: dict | None = None
    surgery_day: float = SURGERY_DAY

    def __post_init__(self):
        self.reference = self.reference or base_config()
        self.time_days = np.asarray(self.time_days, float)
        self.event = np.asarray(self.event, bool)
        n = len(self.covariates)
        z = quadrature_normals(self.n_nodes, self.seed)
        self._z = np.tile(z, (n, 1))
        self._u_dt = np.tile(norm.cdf(z[:, 0]), n)  # the doubling-time node as a uniform
        self._u = np.ones((n * self.n_nodes, 2))  # no resistant clone (irrelevant without treatment)
        self._cov = self.covariates.loc[self.covariates.index.repeat(self.n_nodes)].reset_index(drop=True)
        self._rows = n
        ev = np.flatnonzero(self.event)
        self._ev = ev
        self._ev_rows = (ev[:, None] * self.n_nodes + np.arange(self.n_nodes)[None, :]).ravel()
        self._cov_ev = self._cov.iloc[self._ev_rows].reset_index(drop=True)

    def population(self, theta) -> Population:
        """The population model at ``θ``."""
        return Population(config_from_theta(theta, self.reference))

    def _node_terms(self, theta, times: np.ndarray):
        pop = self.population(theta)
        p = pop.parameters(self._cov, self._z, self._u)
        t = np.repeat(times, self.n_nodes)
        log_h, lam_t, lam_0 = log_hazard_and_cumulative(p, t, pop.settings.visible_cells, self.surgery_day)
        shape = (self._rows, self.n_nodes)
        return log_h.reshape(shape), lam_t.reshape(shape), lam_0.reshape(shape)

    def _event_terms(self, theta):
        """``ln E_z[e^{-Λ(t_i)} h(t_i)]`` for the patients with an event, integrating the doubling time exactly
        over the region where a colony can become visible at ``t_i``.

        ``h(t_i) > 0`` needs ``τ_v > t_i - t_s``, and ``τ_v`` is proportional to the doubling time
        (``τ_v = τ_v^0 e^{σ_DT z_DT}``), so the region is ``z_DT > z* = ln((t_i - t_s)/τ_v^0)/σ_DT``. The
        doubling-time node is drawn from the normal truncated to it (inverse CDF of the fixed uniform) and
        weighted by ``P(z_DT > z*)``: the integrand becomes smooth in ``θ`` (no node jumps in or out).
        """
        pop = self.population(theta)
        vis = pop.settings.visible_cells
        z = self._z[self._ev_rows].copy()
        z[:, 0] = 0.0
        p0 = pop.parameters(self._cov_ev, z, self._u[: z.shape[0]])
        tv0 = visibility_lag_days(p0, vis)
        t = np.repeat(self.time_days[self._ev], self.n_nodes)
        sd = pop.config["growth"]["doubling_time_sdlog"]
        with np.errstate(divide="ignore"):
            z_star = np.where(
                t > self.surgery_day, np.log(np.maximum(t - self.surgery_day, 1e-300) / tv0) / sd, -np.inf
            )
        sf = norm.sf(z_star)
        z[:, 0] = norm.isf(sf * (1.0 - self._u_dt[self._ev_rows]))
        p = pop.parameters(self._cov_ev, z, self._u[: z.shape[0]])
        log_h, lam_t, _ = log_hazard_and_cumulative(p, t, vis, self.surgery_day)
        with np.errstate(divide="ignore"):
            terms = (norm.logsf(z_star) - lam_t + log_h).reshape(self._ev.size, self.n_nodes)
        return logsumexp(terms, axis=1) - np.log(self.n_nodes)

    def loglik_terms(self, theta) -> np.ndarray:
        """Per-patient conditional marginal log-likelihood ``ln L_i`` (nats)."""
        _, lam_t, lam_0 = self._node_terms(theta, self.time_days)
        num = logsumexp(-lam_t, axis=1) - np.log(self.n_nodes)
        if self._ev.size:
            num[self._ev] = self._event_terms(theta)
        den = logsumexp(-lam_0, axis=1) - np.log(self.n_nodes)
        return np.maximum(num - den, -700.0)

    def loglik(self, theta) -> float:
        """Total log-likelihood (nats)."""
        return float(np.sum(self.loglik_terms(theta)))

    def dmfs(self, theta, times_days) -> np.ndarray:
        """Predicted DM-free probability ``E_z[e^{-Λ(t)}]/E_z[e^{-Λ(0)}]`` at ``times_days``, ``(n, len(times))``."""
        out = []
        for t in np.atleast_1d(np.asarray(times_days, float)):
            _, lam_t, lam_0 = self._node_terms(theta, np.full(self._rows, t))
            out.append(np.exp(logsumexp(-lam_t, axis=1) - logsumexp(-lam_0, axis=1)))
        return np.column_stack(out)

    def risk(self, theta, years: float = 10.0) -> np.ndarray:
        """Predicted probability of distant metastasis by ``years`` (given none at diagnosis)."""
        return 1.0 - self.dmfs(theta, [years * DAYS_PER_YEAR])[:, 0]


def prior_theta() -> np.ndarray:
    """``θ`` of the shipped priors (the optimiser's start)."""
    return theta_from_config(base_config())


@dataclass
class FitResult:
    """A natural-history fit: ``theta`` (MLE), ``cov`` (inverse observed information), ``loglik`` (nats),
    ``n_evaluations``, ``converged``, ``names``."""

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
    """Nelder–Mead on ``-loglik`` from ``start`` (default: the priors). Returns ``(theta, loglik, nfev, ok)``."""
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
    """Observed information ``-∇² loglik`` by central differences (step on the unconstrained scale)."""
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
    """Maximum marginal likelihood with Laplace (inverse observed information) uncertainty."""
    theta, ll, nfev, ok = maximise(model, start, max_evaluations)
    info = observed_information(model, theta)
    info = 0.5 * (info + info.T)
    w, v = np.linalg.eigh(info)
    w = np.maximum(w, 1e-6)  # a flat direction gets a very wide (not negative) variance
    cov = (v / w) @ v.T
    return FitResult(theta, cov, ll, nfev, ok)


def natural_quantities(theta) -> dict[str, float]:
    """The fitted parameters on their natural scales (units in the names)."""
    th = np.asarray(theta, float)
    ref = base_config()["growth"]["doubling_time_median_days"]
    return {
        "mu_median_per_cell_day": float(10 ** th[0]),
        "mu_sdlog": float(np.exp(th[1])),
        "doubling_time_median_days_hr_pos": float(ref["HR+/HER2-"] * np.exp(th[2])),
        "doubling_time_median_days_tnbc": float(ref["TNBC"] * np.exp(th[2])),
        "doubling_time_sdlog": float(np.exp(th[3])),
        "grade3_vs_grade2_doubling_factor": float(np.exp(th[4])),
    }


def simulate_cohort(config: dict, covariates: pd.DataFrame, censor_days: np.ndarray, seed: int):
    """Event times from the engine for a cohort with known parameters (for identifiability checks).

    Each patient draws random effects until metastasis-free at diagnosis (accepted with probability
    ``e^{-Λ(0)}``), then a DM time by inverting ``S(t | M0)`` evaluated by :func:`chemomet.simulate`
    (``surgery-only``) on a weekly grid; times beyond the last visible colony are never events.
    Returns ``(time_days, event)``.
    """
    from chemomet.model.dissemination import untreated_cumulative_founding
    from chemomet.simulation import simulate

    rng = np.random.default_rng(seed)
    pop = Population(config)
    n = len(covariates)
    z = np.zeros((n, Population.N_EFFECTS))
    todo = np.arange(n)
    while todo.size:
        zz = rng.standard_normal((todo.size, Population.N_EFFECTS))
        z[todo] = zz
        p = pop.parameters(covariates.iloc[todo].reset_index(drop=True), zz, np.ones((todo.size, 2)))
        tv = visibility_lag_days(p, pop.settings.visible_cells)
        lam0 = np.array([untreated_cumulative_founding(p.take([i]), np.array([-tv[i]]))[0, 0] for i in range(p.n)])
        keep = rng.random(todo.size) < np.exp(-lam0)
        todo = todo[~keep]
    p = pop.parameters(covariates.reset_index(drop=True), z, np.ones((n, 2)))
    horizon = float(np.max(censor_days)) + 1.0
    grid = np.linspace(0.0, horizon, int(horizon // 7) + 2)
    out = simulate(p, "surgery-only", horizon_days=horizon, grid=grid, population=pop, seed=seed)
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
    """Cohort-mean predicted DMFS at ``years`` (a convenience for tables)."""
    return model.dmfs(theta, np.asarray(years, float) * DAYS_PER_YEAR).mean(axis=0)


__all__ = [
    "PARAM_NAMES",
    "MarginalModel",
    "FitResult",
    "fit",
    "maximise",
    "observed_information",
    "config_from_theta",
    "theta_from_config",
    "natural_quantities",
    "simulate_cohort",
    "LN2",
]
