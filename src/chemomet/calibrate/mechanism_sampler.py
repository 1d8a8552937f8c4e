"""Adaptive importance sampling of the mechanism strengths and what follows from the weighted draws (issue 12,
item 2): one mechanism set's fit (:func:`fit_mechanism_set`, :class:`SetFit`), its posterior and evidence
(:func:`posterior_summary`), posterior-predictive summaries (:func:`posterior_predictive`) and posterior model
probabilities (:func:`model_probabilities`).

Draws live on the standardised log scale ``z`` of :class:`~chemomet.calibrate.mechanism_priors.StrengthPrior`;
strengths are reported in their own units (``W`` in days, the rest dimensionless); log-evidences are natural logs
of densities of the log-scale summaries.
"""

from __future__ import annotations

import math
import time as _time
from dataclasses import dataclass

import numpy as np

from chemomet.calibrate.cohort import VirtualCohort
from chemomet.calibrate.mechanism_likelihood import DATA_COMBINATIONS, Datum, log_likelihood
from chemomet.calibrate.mechanism_priors import StrengthPrior, strength_priors
from chemomet.calibrate.mechanism_summaries import MECHANISM_SETS, draw_config, simulate_summaries

__all__ = [
    "FIRST_ROUND_SD",
    "IDENTIFIED_WIDTH_RATIO",
    "SHRINK_DRAWS",
    "SetFit",
    "fit_mechanism_set",
    "model_probabilities",
    "posterior_predictive",
    "posterior_summary",
]

IDENTIFIED_WIDTH_RATIO = 0.5
"""A strength is *identified* when its posterior 90% interval is narrower than this share of its prior's (widths
on the log scale)."""


SHRINK_DRAWS = 3.0
"""Pseudo-draws of the prior's covariance in the adaptive proposals of :func:`fit_mechanism_set` (shrinkage)."""

FIRST_ROUND_SD = 1.5
"""SD (on the standardised log scale) of the first round's Gaussian proposal: the prior widened 1.5 times, so a
datum far in the prior's tail is reached and the weights ``prior / proposal`` stay below 1.5 per strength."""



def _weighted_quantiles(x, w, q):
    order = np.argsort(x)
    x, w = np.asarray(x)[order], np.asarray(w)[order]
    c = np.cumsum(w) - 0.5 * w
    c /= w.sum()
    return np.interp(q, c, x)


def _logmeanexp(a) -> float:
    a = np.asarray(a, float)
    m = np.max(a)
    if not np.isfinite(m):
        return -np.inf
    return float(m + np.log(np.mean(np.exp(a - m))))


def _mvn_logpdf(z, mean, cov):
    k = len(mean)
    chol = np.linalg.cholesky(cov)
    d = np.linalg.solve(chol, (z - mean).T)
    return -0.5 * np.sum(d**2, axis=0) - np.sum(np.log(np.diag(chol))) - 0.5 * k * np.log(2 * np.pi)


@dataclass
class SetFit:
    """The draws of one mechanism set's adaptive importance sampling (:func:`fit_mechanism_set`).

    Attributes
    ----------
    mechanism_set : str
        Key of :data:`MECHANISM_SETS`.
    names : tuple of str
        The strengths sampled (columns of ``z``).
    z : numpy.ndarray
        Standardised logs of the strengths, draws × strengths.
    member : numpy.ndarray
        Index of the calibration-ensemble member of each draw (-1: the point estimate).
    log_prior : numpy.ndarray
        Log prior density of each draw on the ``z`` scale (``-inf`` outside the bounds).
    log_q : numpy.ndarray
        Log density of the deterministic mixture of all rounds' proposals at each draw.
    summaries : dict[str, numpy.ndarray]
        Each summary at each draw (NaN where not simulated: outside the bounds).
    rounds : list of dict
        Per round: draws, proposal mean and SD (``z`` scale), effective sample size after it.
    seconds : float
        Wall time of the fit.

    Examples
    --------
    >>> SetFit.__name__
    'SetFit'
    """

    mechanism_set: str
    names: tuple[str, ...]
    z: np.ndarray
    member: np.ndarray
    log_prior: np.ndarray
    log_q: np.ndarray
    summaries: dict
    rounds: list
    seconds: float

    def log_likelihood(self, data: dict[str, Datum], extra_se: dict[str, float] | None = None) -> np.ndarray:
        """Log-likelihood of ``data`` at every draw (Gaussian on the log scale; ``-inf`` where not simulated).

        ``extra_se`` adds a variance per model summary (the virtual cohort's sampling SE of the log).
        """
        return log_likelihood(self.summaries, data, extra_se, len(self.log_prior))

    def log_weights(self, data, extra_se=None) -> np.ndarray:
        """Log importance weights ``log p(θ) + log L(θ) - log q(θ)`` of every draw for ``data`` (a dict of
        :class:`Datum`; empty: the prior, weights ``p / q``)."""
        with np.errstate(invalid="ignore"):
            lw = self.log_prior + self.log_likelihood(data, extra_se) - self.log_q
        return np.where(np.isfinite(lw), lw, -np.inf)



def _ess(lw) -> float:
    lw = np.asarray(lw, float)
    if not np.any(np.isfinite(lw)):
        return 0.0
    w = np.exp(lw - np.max(lw))
    return float(w.sum() ** 2 / np.sum(w**2))


def fit_mechanism_set(
    mechanism_set: str,
    base: dict,
    cohort: VirtualCohort,
    data: dict[str, Datum],
    draws: int = 300,
    rounds: int = 3,
    seed: int = 0,
    extra_se: dict[str, float] | None = None,
    ensemble: dict | None = None,
    priors: dict[str, StrengthPrior] | None = None,
    progress=None,
) -> SetFit:
    """Adaptive importance sampling of one mechanism set's strengths.

    Round 0 draws ``draws // 2`` strengths from the prior widened :data:`FIRST_ROUND_SD` times (untruncated:
    draws outside the bounds have prior density 0 and are not simulated); each later round draws an equal share
    of the rest from
    a Gaussian (``z`` scale) with the weighted mean and 1.5² × the weighted covariance of all draws so far, shrunk
    towards the prior's unit covariance with weight ``ESS / (ESS + SHRINK_DRAWS)``. All
    draws are weighted against the deterministic mixture of the rounds' proposals (the prior among them), so the
    weights stay bounded and the mean weight estimates the evidence without bias.

    Parameters
    ----------
    mechanism_set : str
        Key of :data:`MECHANISM_SETS`.
    base : dict
        Population configuration (the calibrated point estimate).
    cohort : VirtualCohort
        The fixed virtual patients (common random numbers).
    data : dict[str, Datum]
        The likelihood's data (:func:`mechanism_data`, or synthetic ones); they steer the adaptive rounds.
    draws : int, default 300
        Simulated draws in all.
    rounds : int, default 3
        Rounds (1: plain importance sampling from the prior).
    seed : int, default 0
        Seed of the draws.
    extra_se : dict[str, float], optional
        Added SE of the log per model summary (:func:`~chemomet.calibrate.mechanism_summaries.simulation_se`).
    ensemble : dict, optional
        ``names`` and ``values`` of the calibration ensemble: each draw then takes a random member's population
        (its ``log_epsilon_median`` is replaced by the draw's strength).
    priors : dict[str, StrengthPrior], optional
        Default :func:`strength_priors`.
    progress : callable, optional
        Called with one line of text per round.

    Returns
    -------
    SetFit

    Examples
    --------
    >>> from chemomet.calibrate.mechanism_likelihood import mechanism_data
    >>> from chemomet.calibrate.shipped import calibrated_config
    >>> cfg = calibrated_config()
    >>> fit = fit_mechanism_set("doorway", cfg, VirtualCohort.draw(cfg, 20, seed=1), mechanism_data(), draws=6,
    ...                         rounds=2)
    >>> fit.z.shape
    (6, 1)
    """
    from chemomet.calibrate.ensemble import config_from_vector

    say = progress or (lambda msg: None)
    priors = strength_priors() if priors is None else priors
    names = MECHANISM_SETS[mechanism_set]
    pri = [priors[k] for k in names]
    k = len(names)
    rng = np.random.default_rng([seed, 1 + list(MECHANISM_SETS).index(mechanism_set)])
    rounds = max(1, int(rounds))
    sizes = [draws // 2 if rounds > 1 else draws]
    rest = draws - sizes[0]
    for r in range(1, rounds):
        sizes.append(rest // (rounds - 1) + (1 if r <= rest % (rounds - 1) else 0))
    t0 = _time.perf_counter()
    zs, members, sums = [], [], {}
    proposals = []  # (n, mean, cov) of each Gaussian round
    log_prior = np.empty(0)
    log_q = np.empty(0)
    info = []
    ens_names = None if ensemble is None else [str(x) for x in ensemble["names"]]

    def log_prior_of(z):
        return np.sum([p.logpdf_z(z[:, j]) for j, p in enumerate(pri)], axis=0)

    for r, n_r in enumerate(sizes):
        if n_r <= 0:
            continue
        if r == 0:  # a widened prior: covers a datum in the prior's tail, weights p / q stay bounded
            z = rng.standard_normal((n_r, k)) * FIRST_ROUND_SD
        else:
            lw = log_prior + log_likelihood(sums, data, extra_se, len(log_prior)) - log_q
            lw = np.where(np.isfinite(lw), lw, -np.inf)
            w = np.exp(lw - np.max(lw))
            w /= w.sum()
            zall = np.vstack(zs)
            m = w @ zall
            c = ((zall - m).T * w) @ (zall - m) if k > 1 else np.atleast_2d(w @ (zall[:, 0] - m[0]) ** 2)
            # widened 1.5 times and shrunk towards the prior's unit covariance by the effective sample size, so
            # that a few dominant draws (ESS near 1) neither collapse the proposal onto one point nor make a
            # dimension the data do not inform look narrow
            ess_now = _ess(lw)
            share = ess_now / (ess_now + SHRINK_DRAWS)
            c = share * np.atleast_2d(c) * 1.5**2 + (1 - share + 1e-4) * np.eye(k)
            proposals.append((n_r, m, c))
            z = rng.multivariate_normal(m, c, size=n_r)
        mem = rng.integers(0, len(ensemble["values"]), n_r) if ensemble is not None else np.full(n_r, -1)
        lp = log_prior_of(z)
        for i in range(n_r):
            if not np.isfinite(lp[i]):
                s = dict.fromkeys({d.model_key for d in data.values()}, np.nan)
            else:
                values = {nm: float(p.value(z[i, j])) for j, (nm, p) in enumerate(zip(names, pri, strict=True))}
                cfg = base
                if mem[i] >= 0:
                    row = np.array(ensemble["values"][mem[i]], float).copy()
                    if "epsilon_median" in values and "log_epsilon_median" in ens_names:
                        row[ens_names.index("log_epsilon_median")] = math.log(values["epsilon_median"])
                    cfg = config_from_vector(base, ens_names, row)
                s = simulate_summaries(draw_config(cfg, values, mechanism_set), cohort)
            for key in set(sums) | set(s):
                if key == "per_patient":
                    continue
                sums.setdefault(key, []).append(s.get(key, np.nan))
        zs.append(z)
        members.append(mem)
        zall = np.vstack(zs)
        n_total = len(zall)
        # the mixture's shares change with every round: recomputed for all draws
        log_q = _log_mixture_now(zall, sizes[: r + 1], proposals, log_prior_of, n_total)
        log_prior = log_prior_of(zall)
        lw = log_prior + log_likelihood(sums, data, extra_se, n_total) - log_q
        ess = _ess(np.where(np.isfinite(lw), lw, -np.inf))
        info.append({"round": r, "draws": int(n_r),
                     "proposal_mean_z": None if r == 0 else [float(x) for x in proposals[-1][1]],
                     "proposal_sd_z": None if r == 0 else [float(x) for x in np.sqrt(np.diag(proposals[-1][2]))],
                     "ess_after": round(ess, 1)})
        say(f"{mechanism_set}: round {r + 1}/{len(sizes)}, {n_total} draws, ESS {ess:.1f} "
            f"({_time.perf_counter() - t0:.0f} s)")
    return SetFit(
        mechanism_set, names, np.vstack(zs), np.concatenate(members), log_prior, log_q,
        {k_: np.asarray(v, float) for k_, v in sums.items()}, info, _time.perf_counter() - t0,
    )


def _log_mixture_now(z, sizes, proposals, log_prior_of, n_total):
    k = z.shape[1]
    first = _mvn_logpdf(z, np.zeros(k), FIRST_ROUND_SD**2 * np.eye(k))
    parts = [np.log(sizes[0] / n_total) + first]
    for n_r, m, c in proposals:
        parts.append(np.log(n_r / n_total) + _mvn_logpdf(z, m, c))
    return np.logaddexp.reduce(np.vstack(parts), axis=0)



def posterior_summary(fit: SetFit, data: dict[str, Datum], extra_se=None, priors=None) -> dict:
    """Posterior of each strength of a fitted set, its evidence and effective sample size.

    Parameters
    ----------
    fit : SetFit
        From :func:`fit_mechanism_set`.
    data : dict[str, Datum]
        The data to condition on (any subset of the fit's: the same draws are reweighted; empty: the prior).
    extra_se : dict[str, float], optional
        Added SE of the log per model summary (:func:`~chemomet.calibrate.mechanism_summaries.simulation_se`).
    priors : dict[str, StrengthPrior], optional
        Default :func:`strength_priors`.

    Returns
    -------
    dict
        ``log_evidence`` (natural log of the marginal likelihood) and its Monte Carlo SE, ``ess`` (effective
        sample size of the weights), ``draws``, and ``strengths``: name -> ``median``, ``q05``, ``q95`` (in the
        strength's unit), ``prior_median``, ``prior_q05``, ``prior_q95``, ``width_ratio`` (posterior over prior
        90% width, log scale), ``shift_prior_sd`` (posterior minus prior median, in prior SDs of the log),
        ``identified`` (``width_ratio`` < :data:`IDENTIFIED_WIDTH_RATIO`).

    Examples
    --------
    >>> from chemomet.calibrate.mechanism_likelihood import mechanism_data
    >>> from chemomet.calibrate.shipped import calibrated_config
    >>> cfg = calibrated_config()
    >>> fit = fit_mechanism_set("doorway", cfg, VirtualCohort.draw(cfg, 20, seed=1), mechanism_data(), draws=6,
    ...                         rounds=1)
    >>> post = posterior_summary(fit, {})  # no data: the prior (weights prior / proposal)
    >>> 1.0 <= post["ess"] <= 6.0, sorted(post["strengths"])
    (True, ['epsilon_median'])
    """
    priors = strength_priors() if priors is None else priors
    lw = fit.log_weights(data, extra_se)
    n = len(lw)
    finite = np.isfinite(lw)
    out: dict = {"draws": int(n), "ess": round(_ess(lw), 1)}
    if not finite.any():
        return out | {"log_evidence": -np.inf, "log_evidence_se": np.nan, "strengths": {}}
    log_z = _logmeanexp(lw)
    w = np.exp(lw - np.max(lw))
    rel = w / w.mean()
    out["log_evidence"] = float(log_z)
    out["log_evidence_se"] = float(np.std(rel, ddof=1) / math.sqrt(n)) if n > 1 else np.nan
    strengths = {}
    for j, name in enumerate(fit.names):
        p = priors[name]
        zq = _weighted_quantiles(fit.z[:, j], w, [0.05, 0.5, 0.95])
        plo, phi = p.interval()
        prior_width = math.log(phi / plo)
        post_width = (zq[2] - zq[0]) * p.sdlog
        pz_med = float(p.z_of(p.interval(0.0)[0]))  # the truncated prior's median
        strengths[name] = {
            "median": float(p.value(zq[1])), "q05": float(p.value(zq[0])), "q95": float(p.value(zq[2])),
            "prior_median": float(p.value(pz_med)), "prior_q05": plo, "prior_q95": phi,
            "width_ratio": float(post_width / prior_width), "shift_prior_sd": float(zq[1] - pz_med),
            "identified": bool(post_width / prior_width < IDENTIFIED_WIDTH_RATIO),
        }
    out["strengths"] = strengths
    return out


def model_probabilities(log_evidence: dict[str, float], prior: dict[str, float] | None = None) -> dict[str, float]:
    """Posterior model probabilities from log evidences (equal prior probabilities by default).

    Parameters
    ----------
    log_evidence : dict[str, float]
        Set name -> natural log of its marginal likelihood.
    prior : dict[str, float], optional
        Set name -> prior probability (normalised here).

    Returns
    -------
    dict[str, float]
        Set name -> posterior probability (sums to 1).

    Examples
    --------
    >>> p = model_probabilities({"a": 0.0, "b": math.log(3.0)})
    >>> round(p["a"], 2), round(p["b"], 2)
    (0.25, 0.75)
    """
    names = list(log_evidence)
    pri = np.array([1.0 if prior is None else prior[n] for n in names], float)
    a = np.array([log_evidence[n] for n in names], float) + np.log(pri / pri.sum())
    a = a - np.max(a)
    p = np.exp(a) / np.exp(a).sum()
    return {n: float(x) for n, x in zip(names, p, strict=True)}



def posterior_predictive(fit: SetFit, data: dict[str, Datum], sim_se: dict[str, float]) -> dict:
    """Posterior-predictive summaries of a fitted set: under the prior and each data combination, the weighted
    5%, 50% and 95% quantiles of every summary of ``data`` against its observed value.

    Parameters
    ----------
    fit : SetFit
        From :func:`fit_mechanism_set`.
    data : dict[str, Datum]
        The data (each combination of :data:`~chemomet.calibrate.mechanism_likelihood.DATA_COMBINATIONS`
        conditions on its subset of them).
    sim_se : dict[str, float]
        The virtual cohort's sampling SE of each model summary's log (added to the datum's).

    Returns
    -------
    dict
        ``"prior"`` and each data combination (left out when no draw has a finite weight) -> summary key ->
        ``q05``, ``median``, ``q95`` (the summary's scale, dimensionless), ``observed`` and
        ``z_observed_vs_median`` (the log distance in SEs).

    Examples
    --------
    >>> from chemomet.calibrate.mechanism_likelihood import mechanism_data
    >>> from chemomet.calibrate.shipped import calibrated_config
    >>> cfg = calibrated_config()
    >>> fit = fit_mechanism_set("doorway", cfg, VirtualCohort.draw(cfg, 20, seed=1), mechanism_data(), draws=6,
    ...                         rounds=1)
    >>> pred = posterior_predictive(fit, mechanism_data(), {})
    >>> sorted(pred["prior"]["ebctcg_rate_ratio"])
    ['median', 'observed', 'q05', 'q95', 'z_observed_vs_median']
    """
    out = {}
    for c, keys in {"prior": (), **DATA_COMBINATIONS}.items():
        lw = fit.log_weights({k: data[k] for k in keys}, sim_se)
        if not np.isfinite(lw).any():
            continue
        w = np.exp(lw - np.max(lw))
        row = {}
        for key, d in data.items():
            s = fit.summaries[d.model_key]
            ok = np.isfinite(s) & (w > 0)
            q = _weighted_quantiles(s[ok], w[ok], [0.05, 0.5, 0.95])
            se = math.sqrt(d.se_log**2 + sim_se.get(d.model_key, 0.0) ** 2)
            row[key] = {"q05": float(q[0]), "median": float(q[1]), "q95": float(q[2]), "observed": d.value,
                        "z_observed_vs_median": float((math.log(d.value) - math.log(q[1])) / se)}
        out[c] = row
    return out

