"""Regional lymph nodes: lymphatic spread as a second outlet of the same shedding (docs/science.md §2.11).

The primary seeds the axillary nodes through lymphatics at a rate proportional to the rate at which it founds
distant colonies, ``ρ μ N_p(t)^γ`` (node seedings per day; before diagnosis the microenvironment factor is 1);
a deposit is cleared at rate ``δ``. The deposits present at diagnosis, ``D``, land on ``M`` available nodes: the
expected number of distinct positive nodes is ``M (1 - e^{-D/M})``, and the count a pathologist reports is
negative binomial around it (size ``k``: anatomy, how many nodes were removed and examined).

Nodes are thus a *marker* of how much the tumour has shed, not a relay on the way to distant organs: an
observed count tells how far the tumour's history has gone (size, age, shedding rate), and so moves every
patient-level quantity, while removing the nodes does not change distant spread.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln, xlogy
from scipy.stats import nbinom

from chemomet.model.parameters import ModelSettings, PatientParameters

MAX_REPORTED_NODES = 60
"""The largest count a node report holds (lymph nodes); draws are capped here."""


def expected_positive_nodes(params: PatientParameters, settings: ModelSettings) -> np.ndarray:
    """Expected positive axillary nodes at diagnosis, ``M (1 - exp(-D / M))`` (lymph nodes, one per patient).

    ``D = ρ ∫ μ N_p(s)^γ e^{δ s} ds`` over the tumour's history before diagnosis (``s ≤ 0``) is the number of
    nodal deposits still present: seeding at ``ρ`` times the distant founding rate, each deposit cleared at rate
    ``δ``. With the primary's log-size close to linear over the last ``1/(δ + γ g)`` days (``g = β (ln K - ln
    N_0)``, its specific growth rate at diagnosis), ``D = ρ μ N_0^γ / (δ + γ g)``: with ``δ = 0`` nearly every
    seeding since the first cell counts (so the count also measures the tumour's age); with ``δ ≫ γ g`` only the
    recent ones, and the count measures the present shedding rate.

    Parameters
    ----------
    params : PatientParameters
        The patients.
    settings : ModelSettings
        Gives ``ρ`` (:attr:`~ModelSettings.nodal_seeding_ratio`, node seedings per distant colony), ``δ``
        (:attr:`~ModelSettings.nodal_clearance_per_day`, 1/day) and ``M`` (:attr:`~ModelSettings.axillary_nodes`).

    Returns
    -------
    numpy.ndarray
        Lymph nodes, shape ``(n,)``.

    Examples
    --------
    >>> from chemomet.population import Population
    >>> pop = Population()
    >>> _, params = pop.sample(2000, rng=1)
    >>> m = expected_positive_nodes(params, pop.settings)
    >>> bool(np.all((m >= 0) & (m <= pop.settings.axillary_nodes)))
    True

    More shedding, more nodes:

    >>> from dataclasses import replace
    >>> more = expected_positive_nodes(replace(params, mu=params.mu * 10), pop.settings)
    >>> bool(np.all(more >= m))
    True
    """
    growth = params.beta_per_day * (params.log_plateau - params.log_cells0)
    rate = params.mu * np.exp(params.gamma * params.log_cells0)
    deposits = settings.nodal_seeding_ratio * rate / (settings.nodal_clearance_per_day + params.gamma * growth)
    m = settings.axillary_nodes
    return m * -np.expm1(-deposits / m)


def node_count_logpmf(count, mean, dispersion: float) -> np.ndarray:
    """Log-probability of a reported positive-node count: negative binomial (mean ``mean``, size ``dispersion``).

    Parameters
    ----------
    count : int or array_like
        Reported positive nodes (lymph nodes).
    mean : array_like
        Expected positive nodes (:func:`expected_positive_nodes`).
    dispersion : float
        Negative-binomial size ``k`` (dimensionless; variance ``mean + mean²/k``).

    Returns
    -------
    numpy.ndarray
        Natural-log probabilities, broadcast over ``count`` and ``mean``.

    Examples
    --------
    Against SciPy's negative binomial (``n = k``, ``p = k / (k + mean)``):

    >>> bool(np.isclose(node_count_logpmf(3, 2.0, 1.5), nbinom.logpmf(3, 1.5, 1.5 / 3.5)))
    True
    >>> node_count_logpmf([0, 1], 0.0, 1.5).tolist()  # nothing expected: only 0 is possible
    [0.0, -inf]
    """
    m = np.asarray(mean, dtype=float)
    x = np.asarray(count, dtype=float)
    k = float(dispersion)
    # xlogy: a zero mean gives probability 1 to a count of 0 and 0 (log: -inf) to any other count
    return gammaln(x + k) - gammaln(k) - gammaln(x + 1.0) + k * np.log(k / (k + m)) + xlogy(x, m / (k + m))


def draw_node_counts(mean, dispersion: float, u) -> np.ndarray:
    """Positive-node counts from uniforms ``u`` by the negative binomial's inverse CDF, capped at
    :data:`MAX_REPORTED_NODES` (lymph nodes, integers).

    Examples
    --------
    Size 1 is the geometric law: with mean 2, ``P(X <= x) = 1 - (2/3)^(x+1)`` first reaches 0.99 at ``x = 11``:

    >>> draw_node_counts([0.0, 2.0, 2.0], 1.0, [0.9, 0.01, 0.99]).tolist()
    [0, 0, 11]
    """
    m = np.maximum(np.asarray(mean, dtype=float), 1e-12)
    k = float(dispersion)
    counts = nbinom.ppf(np.clip(u, 0.0, 1.0 - 1e-12), k, k / (k + m))
    return np.minimum(np.nan_to_num(counts, nan=0.0), MAX_REPORTED_NODES).astype(np.int64)
