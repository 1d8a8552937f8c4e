"""Dissemination: the metastasis-founding rate and circulating tumour cells (docs/science.md §2.5).

``d(t) = μ N_p(t)^γ [(1 - φ) + φ (T(t)/T0) A(t)]`` colonies per day while the primary is in place. Cells shed
into the blood are ``d / p_col``; CTCs clear within hours, so blood CTCs are quasi-steady,
``d / (p_col k_clear)``, and a 7.5 mL draw is expected to count ``λ = CTC_blood · 7.5/5000 · efficiency``. The count
itself is negative binomial around ``λ`` (size ``k``, :attr:`ModelSettings.ctc_count_dispersion`): shedding comes
in bursts and one draw samples a few cells of it. The assay adds a background of false-positive events, Poisson
with mean ``b`` per draw (:attr:`ModelSettings.ctc_background_per_sample`; CellSearch finds an occasional
CTC-like cell in people without cancer), so a measured count is ``NB(λ, k) + Poisson(b)``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import exp1, gammaln, logsumexp, xlogy
from scipy.stats import nbinom, poisson

from chemomet.model.microenv import doorway_ratio
from chemomet.model.parameters import ModelSettings, PatientParameters
from chemomet.model.primary import age_days
from chemomet.model.timeline import Timeline

CTC_BACKGROUND_STREAM = 2**40 + 0x637462
"""Sub-stream key (:func:`chemomet.streams.child`) of the uniforms of the background CTC counts."""

BACKGROUND_TERMS = 16
"""Background counts summed over in the count's distribution (for ``b <= 1`` the rest is below 1e-13)."""


def environment_factor(params: PatientParameters, m, f, activity) -> np.ndarray:
    """``(1 - φ) + φ (T/T0) A`` for patients (rows) at times (columns) with shared ``m``, ``f``, ``A``."""
    phi = params.phi[:, None]
    return (1.0 - phi) + phi * doorway_ratio(params.epsilon, m, f) * np.asarray(activity)[None, :]


def founding_rate(params: PatientParameters, log_cells: np.ndarray, env: np.ndarray) -> np.ndarray:
    """Colonies founded per day, ``μ e^{γ ln N} · env`` (rows: patients)."""
    return params.mu[:, None] * np.exp(params.gamma[:, None] * log_cells) * env


def window_founding_mass(params: PatientParameters, tl: Timeline, log_cells: np.ndarray, share: np.ndarray):
    """Expected colonies founded in each node interval while the primary is in place, ``(n, n_founding)``.

    ``share`` weights the founding by clone (``S/N`` or ``R/N`` at the nodes). The patient-specific size
    factor ``N^γ · share`` is averaged over the interval as if log-linear in time (logarithmic mean: exact
    for exponential growth or decay); the microenvironment factor is integrated on the shared sub-grid, with
    mobilisation's release factor when that mechanism is on, and priming multiplies each primed interval's
    founding by its take (:class:`~chemomet.model.timeline.Timeline`).
    """
    k = tl.n_founding
    with np.errstate(divide="ignore"):
        log_g = params.gamma[:, None] * log_cells[:, : k + 1] + np.log(share[:, : k + 1])
    size = log_mean_exp(log_g[:, :-1], log_g[:, 1:])
    phi, eps = params.phi[:, None], params.epsilon[:, None]
    h = np.diff(tl.nodes)[:k]
    other = h if tl.other0 is None else tl.other0[:k]  # the non-doorway routes (with mobilisation: ∫ X)
    env_integral = (1.0 - phi) * other + phi * (tl.env0[:k] + eps * tl.env1[:k] + eps * eps * tl.env2[:k])
    mass = params.mu[:, None] * size * env_integral
    return mass if tl.take is None else mass * tl.take[:k]


def log_mean_exp(x0: np.ndarray, x1: np.ndarray) -> np.ndarray:
    """Mean of ``exp(x)`` over an interval on which ``x`` is linear: ``(e^{x1} - e^{x0}) / (x1 - x0)``."""
    with np.errstate(invalid="ignore", over="ignore"):
        dx = x1 - x0
        small = np.abs(dx) < 1e-6
        exact = np.exp(x0) * np.expm1(dx) / np.where(small, 1.0, dx)
        approx = np.exp(0.5 * (x0 + x1)) * (1.0 + dx * dx / 24.0)
    out = np.where(small, approx, exact)
    return np.where(np.isneginf(x0) | np.isneginf(x1), 0.5 * (np.exp(x0) + np.exp(x1)), out)


def untreated_cumulative_founding(params: PatientParameters, sigma_days: np.ndarray) -> np.ndarray:
    """Expected colonies founded by the untreated primary from its first cell until ``sigma_days``.

    Closed form (baseline microenvironment): with ``τ = σ + T_age`` and ``x = γ a e^{-β τ}``,
    ``μ/β [N(σ)^γ e^{x} E1(x) - e^{γa} E1(γa)]``, written with ``e^{x} E1(x)`` to stay finite.
    """
    a = params.log_plateau[:, None]
    b = params.beta_per_day[:, None]
    gam = params.gamma[:, None]
    sigma = np.asarray(sigma_days, dtype=float)
    tau = np.maximum(sigma + age_days(params)[:, None], 0.0)
    x = gam * a * np.exp(-b * tau)
    ga = gam * a
    log_n_gamma = gam * a - x  # γ u(σ)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        ex = np.exp(x) * exp1(x)
        e_birth = np.exp(ga) * exp1(ga)
        # e^{x} E1(x) -> 1/x where e^{x} overflows (x > 700; not reached for plausible plateaus)
        ex = np.where(np.isfinite(ex), ex, 1.0 / x)
        e_birth = np.where(np.isfinite(e_birth), e_birth, 1.0 / ga)
    return params.mu[:, None] / b * (np.exp(log_n_gamma) * ex - e_birth)


def expected_ctc(founding: np.ndarray, settings: ModelSettings) -> np.ndarray:
    """Expected CTC count in one 7.5 mL draw for the given founding rate (colonies/day)."""
    return founding * settings.ctc_per_sample_per_founding


def ctc_counts(
    expected: np.ndarray, dispersion: float, u: np.ndarray, background: float = 0.0, u_background=None
) -> np.ndarray:
    """CTC counts in a 7.5 mL draw from uniforms ``u``: the negative binomial's inverse CDF around ``expected``
    (size ``dispersion``), plus the background's Poisson inverse CDF (mean ``background`` per draw) at
    ``u_background`` when ``background > 0``; NaN where ``expected`` is not finite (no draw at that time point).

    Examples
    --------
    >>> ctc_counts(np.array([0.0, 2.0, np.nan]), 0.5, np.array([0.9, 0.4, 0.5])).tolist()  # P(0 | λ=2) = 0.447
    [0.0, 0.0, nan]
    >>> ctc_counts(np.array([0.0, 0.0]), 0.5, np.array([0.9, 0.9]), 0.1, np.array([0.5, 0.99])).tolist()
    [0.0, 1.0]
    """
    lam = np.asarray(expected, dtype=float)
    safe = np.maximum(np.nan_to_num(lam), 0.0)
    count = nbinom.ppf(np.clip(u, 0.0, 1.0 - 1e-12), dispersion, dispersion / (dispersion + safe))
    if background > 0.0:
        count = count + poisson.ppf(np.clip(u_background, 0.0, 1.0 - 1e-12), background)
    return np.where(np.isfinite(lam), count, np.nan)


def probability_of_no_ctc(expected: np.ndarray, dispersion: float, background: float = 0.0) -> np.ndarray:
    """Probability that a 7.5 mL draw counts no CTC, ``(k / (k + λ))^k e^{-b}`` (probability).

    Examples
    --------
    >>> float(probability_of_no_ctc(np.array(1.0), 1.0))  # size 1: geometric, P(0) = 1 / (1 + λ)
    0.5
    """
    lam = np.maximum(np.asarray(expected, dtype=float), 0.0)
    return np.exp(dispersion * np.log(dispersion / (dispersion + lam)) - background)


def nb_logpmf(count, mean, dispersion) -> np.ndarray:
    """Log-probability of a count under the negative binomial with mean ``mean`` and size ``dispersion``
    (all three broadcast; a zero mean gives a count of 0 probability 1).

    Examples
    --------
    >>> bool(np.isclose(nb_logpmf(3, 2.0, 1.5), nbinom.logpmf(3, 1.5, 1.5 / 3.5)))
    True
    """
    m = np.asarray(mean, dtype=float)
    x = np.asarray(count, dtype=float)
    k = np.asarray(dispersion, dtype=float)
    # xlogy: a zero mean gives probability 1 to a count of 0 and 0 (log: -inf) to any other count
    return gammaln(x + k) - gammaln(k) - gammaln(x + 1.0) + k * np.log(k / (k + m)) + xlogy(x, m / (k + m))


def _background_terms(count: np.ndarray) -> range:
    """The background counts ``j`` that can be part of counts up to ``count``."""
    top = int(np.nanmax(count)) if np.size(count) else 0
    return range(min(BACKGROUND_TERMS, max(top, 0) + 1))


def ctc_count_logpmf(count, expected, dispersion, background=0.0) -> np.ndarray:
    """Log-probability of a measured CTC count: ``NB(λ, k) + Poisson(b)``, ``log Σ_j Pois(j; b) NB(x - j; λ, k)``.

    Parameters
    ----------
    count : int or array_like
        Measured CTCs (cells per 7.5 mL).
    expected : array_like
        ``λ``, the expected tumour-derived count (cells per 7.5 mL), broadcast against ``count``.
    dispersion : float or array_like
        Negative-binomial size ``k`` (dimensionless; an array broadcasts, e.g. one value per virtual twin).
    background : float or array_like
        ``b``, mean false-positive events per draw (0: the negative binomial alone; broadcasts like ``k``).

    Returns
    -------
    numpy.ndarray
        Natural-log probabilities.

    Examples
    --------
    Against a direct sum of the convolution (SciPy's distributions):

    >>> direct = sum(poisson.pmf(j, 0.2) * nbinom.pmf(2 - j, 0.3, 0.3 / 1.3) for j in range(3))
    >>> bool(np.isclose(ctc_count_logpmf(2, 1.0, 0.3, 0.2), np.log(direct)))
    True
    """
    x = np.asarray(count, dtype=float)
    lam = np.maximum(np.asarray(expected, dtype=float), 0.0)
    b = np.asarray(background, dtype=float)
    if not np.any(b > 0.0):
        return nb_logpmf(x, lam, dispersion)
    terms = []
    for j in _background_terms(x):
        with np.errstate(invalid="ignore"):
            nb = nb_logpmf(np.maximum(x - j, 0.0), lam, dispersion)
        terms.append(np.where(x >= j, poisson.logpmf(j, b) + nb, -np.inf))
    return logsumexp(np.broadcast_arrays(*terms), axis=0)


def ctc_count_cdf(count, expected, dispersion, background=0.0) -> np.ndarray:
    """``P(X <= count)`` of a measured CTC count (``NB(λ, k) + Poisson(b)``; arguments as :func:`ctc_count_logpmf`).

    Examples
    --------
    >>> bool(np.isclose(ctc_count_cdf(0, 1.0, 0.5, 0.1), probability_of_no_ctc(1.0, 0.5, 0.1)))
    True
    """
    x = np.floor(np.asarray(count, dtype=float))
    lam = np.maximum(np.asarray(expected, dtype=float), 0.0)
    k, b = np.asarray(dispersion, dtype=float), np.asarray(background, dtype=float)
    p = k / (k + lam)
    if not np.any(b > 0.0):
        return nbinom.cdf(x, k, p)
    return sum(poisson.pmf(j, b) * nbinom.cdf(x - j, k, p) for j in _background_terms(x))
