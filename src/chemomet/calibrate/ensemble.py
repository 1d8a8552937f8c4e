"""The ensemble: parameter sets that carry the calibration's uncertainty (``ensemble.npz``).

A member (one row) holds named values on the unconstrained scale: the natural-history block
(:data:`chemomet.calibrate.vector.NATURAL_HISTORY`, drawn from the fit's normal approximation) and the
treatment/microenvironment block (:data:`chemomet.calibrate.vector.TREATMENT`, drawn from the targets'
delta-method errors). Each calibration step replaces its own block and keeps the other's columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from chemomet.calibrate.vector import NATURAL_HISTORY, TREATMENT, with_natural_history, with_treatment

ENSEMBLE_SEED = 20261128
"""Seed of the natural-history draws; the treatment draws use ``ENSEMBLE_SEED + 1``."""


def draw_natural_history(theta, cov, n: int) -> np.ndarray:
    """``n`` natural-history members from ``N(θ, cov)`` (seeded by :data:`ENSEMBLE_SEED`).

    Parameters
    ----------
    theta : array_like
        Mean, order of :data:`~chemomet.calibrate.vector.NATURAL_HISTORY` (unconstrained scale).
    cov : array_like
        Covariance (unconstrained scale).
    n : int
        Members.

    Returns
    -------
    numpy.ndarray
        ``(n, len(theta))``.

    Examples
    --------
    >>> draw_natural_history(np.zeros(5), np.eye(5), 3).shape
    (3, 5)
    """
    rng = np.random.default_rng(ENSEMBLE_SEED)
    return rng.multivariate_normal(theta, cov, size=n)


def draw_treatment(theta, se, n: int, links=None) -> np.ndarray:
    """``n`` treatment members, normals around ``θ`` with standard errors ``se`` (seeded by ``ENSEMBLE_SEED + 1``);
    a linked parameter also follows another's draw.

    Parameters
    ----------
    theta, se : array_like
        Mean and standard errors, order of :data:`~chemomet.calibrate.vector.TREATMENT` (unconstrained scale).
    n : int
        Members.
    links : dict, optional
        ``{parameter: {parameter it follows: slope, ...}}``, applied in order: the member's value is moved by each
        slope times that parameter's deviation from its mean, so ``se`` is the error given the others (as
        ``p_col``, re-solved for every CTC count dispersion ``k`` and background ``b``, follows both).

    Returns
    -------
    numpy.ndarray
        ``(n, len(TREATMENT))``.

    Examples
    --------
    >>> n = len(TREATMENT)
    >>> draw_treatment(np.zeros(n), np.zeros(n), 2).tolist() == [[0.0] * n] * 2
    True
    >>> se = (np.array(TREATMENT.names) == "log_ctc_count_dispersion").astype(float)
    >>> x = draw_treatment(np.zeros(n), se, 3, {"log10_colonisation_efficiency": {"log_ctc_count_dispersion": 2.0}})
    >>> col = TREATMENT.index
    >>> bool(np.allclose(x[:, col("log10_colonisation_efficiency")], 2.0 * x[:, col("log_ctc_count_dispersion")]))
    True
    """
    rng = np.random.default_rng(ENSEMBLE_SEED + 1)
    draws = theta + rng.standard_normal((n, len(TREATMENT))) * se
    theta = np.asarray(theta, dtype=float)
    for child, parents in (links or {}).items():
        for parent, slope in parents.items():
            j = TREATMENT.index(parent)
            draws[:, TREATMENT.index(child)] += slope * (draws[:, j] - theta[j])
    return draws


def replace_block(
    old: dict | None, names: Sequence[str], values: np.ndarray, *, block_first: bool
) -> tuple[list[str], np.ndarray]:
    """An ensemble with the columns ``names`` set to ``values`` and the other columns of ``old`` kept.

    ``old``'s other columns are kept only when it has as many members as ``values``; they go after the new
    block (``block_first=True``) or before it.

    Parameters
    ----------
    old : dict or None
        The earlier ensemble (``names``, ``values``), e.g. :func:`chemomet.calibrate.storage.read_ensemble`.
    names : sequence of str
        The new block's parameter names.
    values : numpy.ndarray
        The new block, members × ``len(names)``.
    block_first : bool
        Put the new block before the kept columns.

    Returns
    -------
    tuple
        ``(names, values)`` of the whole ensemble.

    Examples
    --------
    >>> old = {"names": np.array(["a", "b"]), "values": np.ones((2, 2))}
    >>> names, values = replace_block(old, ["b"], np.zeros((2, 1)), block_first=True)
    >>> names, values.tolist()
    (['b', 'a'], [[0.0, 1.0], [0.0, 1.0]])
    """
    names = [str(k) for k in names]
    if old is None or old["values"].shape[0] != values.shape[0]:
        return names, values
    keep = [i for i, nm in enumerate(old["names"]) if str(nm) not in names]
    if not keep:
        return names, values
    kept_names = [str(old["names"][i]) for i in keep]
    if block_first:
        return names + kept_names, np.column_stack([values, old["values"][:, keep]])
    return kept_names + names, np.column_stack([old["values"][:, keep], values])


def config_from_vector(base: dict, names, row) -> dict:
    """The configuration ``base`` with the named parameters of ``row`` applied (an ensemble member).

    A block (:data:`~chemomet.calibrate.vector.NATURAL_HISTORY`, :data:`~chemomet.calibrate.vector.TREATMENT`)
    is applied when all its names are present; other names are ignored.

    Parameters
    ----------
    base : dict
        Configuration whose other values are kept (not changed).
    names : sequence of str
        Parameter names of ``row`` (``ensemble.npz``'s ``names``).
    row : array_like
        One value per name (unconstrained scale).

    Returns
    -------
    dict
        The configuration (``base`` itself when no block is complete).

    Examples
    --------
    >>> from chemomet.calibrate.vector import prior_config
    >>> cfg = config_from_vector(prior_config(), ["log_theta", *NATURAL_HISTORY], [0.0, -12.7, 0.5, 0.7, 0.0, -0.9])
    >>> round(cfg["dissemination"]["mu_sdlog"], 4)
    1.6487
    """
    values = dict(zip([str(x) for x in names], np.asarray(row, float), strict=True))
    cfg = base
    if all(k in values for k in NATURAL_HISTORY):
        cfg = with_natural_history(NATURAL_HISTORY.vector(values), cfg)
    if all(k in values for k in TREATMENT):
        cfg = with_treatment(TREATMENT.vector(values), cfg)
    return cfg
