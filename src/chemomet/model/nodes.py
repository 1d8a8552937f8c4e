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

from dataclasses import replace

import numpy as np
from scipy.stats import nbinom

from chemomet.model.dissemination import nb_logpmf, untreated_cumulative_founding
from chemomet.model.dormancy import untreated_pool
from chemomet.model.parameters import LN2, ModelSettings, PatientParameters

MAX_REPORTED_NODES = 60
"""The largest count a node report holds (lymph nodes); draws are capped here."""


def expected_positive_nodes(params: PatientParameters, settings: ModelSettings) -> np.ndarray:
    """Expected positive axillary nodes at diagnosis, ``M (1 - exp(-D / M))`` (lymph nodes, one per patient).

    ``D`` is the number of nodal deposits a pathologist can see at diagnosis. Deposits are seeded at ``ρ`` times the
    distant founding rate, ``ρ μ N_p(s)^γ`` (with ``μ`` times ``(DT/DT_ref)^(β−β_n)`` where the nodal seeding follows
    the growth rate less than the founding does: :attr:`~ModelSettings.nodal_growth_exponent_offset`, ``DT`` the
    doubling time at diagnosis). A deposit grows from one cell by the patient's own Gompertz law (the
    law of her distant colonies) and is seen once it has ``N_det`` cells
    (:attr:`~ModelSettings.nodal_detection_cells`), which takes ``τ_det = -ln(1 - ln N_det / a) / β`` days
    (:func:`detection_lag_days`). Until then it is cleared at rate ``δ_s``
    (:attr:`~ModelSettings.nodal_small_clearance_per_day`: a race between growth and elimination, which fast
    growers win), afterwards at rate ``δ`` (:attr:`~ModelSettings.nodal_clearance_per_day`):

    ``D = ρ e^{-δ_s τ_det} ∫_{-∞}^{-τ_det} μ N_p(s)^γ e^{δ (s + τ_det)} ds``.

    With ``N_det = 1`` (the default; ``τ_det = 0``) and ``δ > 0`` the integral is taken as
    ``ρ μ N_0^γ / (δ + γ g)`` (``g = β (ln K - ln N_0)``, the primary's specific growth rate at diagnosis; exact when
    ``ln N_p`` is linear over the last ``1/(δ + γ g)`` days, within 2% of quadrature). Otherwise it is the closed form
    of the untreated founding (:func:`~chemomet.model.dissemination.untreated_cumulative_founding`, ``δ = 0``) or of
    the untreated pool with loss rate ``δ`` (:func:`~chemomet.model.dormancy.untreated_pool`) at ``-τ_det``.

    Parameters
    ----------
    params : PatientParameters
        The patients.
    settings : ModelSettings
        Gives ``ρ`` (:attr:`~ModelSettings.nodal_seeding_ratio`, node seedings per distant colony), ``δ``
        (:attr:`~ModelSettings.nodal_clearance_per_day`, 1/day), ``N_det`` (cells) and ``M``
        (:attr:`~ModelSettings.axillary_nodes`).

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

    More shedding, more nodes; a larger detection size, fewer:

    >>> from dataclasses import replace
    >>> more = expected_positive_nodes(replace(params, mu=params.mu * 10), pop.settings)
    >>> bool(np.all(more >= m))
    True
    >>> fewer = expected_positive_nodes(params, replace(pop.settings, nodal_detection_cells=1e6))
    >>> bool(np.all(fewer <= m))
    True
    """
    m = settings.axillary_nodes
    return m * -np.expm1(-nodal_deposits(params, settings) / m)


def detection_lag_days(params: PatientParameters, detection_cells: float) -> np.ndarray:
    """``τ_det = -ln(1 - ln N_det / a) / β``: days for a deposit to grow from one cell to ``detection_cells`` by
    the patient's Gompertz law (0 for one cell; one per patient).

    Examples
    --------
    >>> from chemomet.population import Population
    >>> _, p = Population().sample(3, rng=1)
    >>> detection_lag_days(p, 1.0).tolist()
    [0.0, 0.0, 0.0]
    >>> bool(np.all(detection_lag_days(p, 1e6) > detection_lag_days(p, 1e4)))
    True
    """
    return -np.log1p(-np.log(detection_cells) / params.log_plateau) / params.beta_per_day


def nodal_deposits(params: PatientParameters, settings: ModelSettings) -> np.ndarray:
    """``D``: nodal deposits large enough to be seen at diagnosis (deposits, one per patient); see
    :func:`expected_positive_nodes` for the integral and its closed forms.

    Parameters
    ----------
    params : PatientParameters
        The patients.
    settings : ModelSettings
        Nodal settings (seeding ratio, clearances, detection size).

    Returns
    -------
    numpy.ndarray
        Deposits, shape ``(n,)``.

    Examples
    --------
    Without saturation the expected count is the deposits themselves:

    >>> from dataclasses import replace
    >>> from chemomet.population import Population
    >>> pop = Population()
    >>> _, p = pop.sample(3, rng=2)
    >>> wide = replace(pop.settings, axillary_nodes=1e15)
    >>> bool(np.allclose(nodal_deposits(p, wide), expected_positive_nodes(p, wide), rtol=1e-6))
    True
    """
    rho, delta = settings.nodal_seeding_ratio, settings.nodal_clearance_per_day
    growth = params.beta_per_day * (params.log_plateau - params.log_cells0)  # specific growth rate (1/day)
    if settings.nodal_growth_exponent_offset != 0.0:  # nodal seeding follows growth as β_n, not as μ's β
        doubling_days = LN2 / growth
        offset = (doubling_days / settings.mu_growth_reference_days) ** settings.nodal_growth_exponent_offset
        params = replace(params, mu=params.mu * offset)
    if settings.nodal_detection_cells <= 1.0 and delta > 0.0:
        rate = params.mu * np.exp(params.gamma * params.log_cells0)
        return rho * rate / (delta + params.gamma * growth)
    lag = detection_lag_days(params, max(settings.nodal_detection_cells, 1.0))  # 0 days for one cell
    race = np.exp(-settings.nodal_small_clearance_per_day * lag)
    if delta == 0.0:
        return rho * race * untreated_cumulative_founding(params, -lag[:, None])[:, 0]
    lossy = replace(params, wake_rate_per_day=np.full(params.n, delta))
    return rho * race * untreated_pool(lossy, -lag[:, None])[:, 0]


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
    return nb_logpmf(count, mean, dispersion)


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
