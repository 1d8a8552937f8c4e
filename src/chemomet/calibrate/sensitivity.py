"""Global sensitivity (Sobol, SALib) of the NACT-attributable excess 10-year DM risk to the uncertain parameters.

Output ``Y``: mean 10-year DM risk under NACT minus that under the same regimen after surgery
(``ac-paclitaxel-weekly``, 24 weeks), over a fixed virtual cohort (common random numbers). Inputs: the
calibrated parameters over their ensemble's 95% range (natural history; chemosensitivity as one common log
scale; TMEM link, colonisation efficiency, microenvironment response, kill on colonies ``s_met``) and the
uncalibrated settings over prior ranges (``phi``, resistance, macrophage relaxation).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from chemomet.calibrate.cohort import VirtualCohort, simulate_arm
from chemomet.calibrate.storage import read_ensemble
from chemomet.calibrate.vector import (
    NATURAL_HISTORY,
    SUBTYPE_PARAM,
    TREATMENT,
    natural_history_theta,
    treatment_theta,
    with_natural_history,
    with_treatment,
)
from chemomet.regimens import DEFAULT_REGIMEN

EXTRA = {
    "phi": ("dissemination", "phi", 0.1, 0.9),
    "resistant_kill_ratio": ("treatment", "resistant_kill_ratio", 0.1, 0.5),
    "resistant_clone_probability": ("treatment", "resistant_clone_probability", 0.2, 0.8),
    "k_macrophage_per_day": ("microenvironment", "k_macrophage_per_day", 0.01, 0.1),
}
"""Uncalibrated settings varied over prior ranges: name -> (table, key, low, high)."""


CALIBRATED_TREATMENT = (
    "log_grade3_s_factor", "log_theta", "log10_colonisation_efficiency", "log_epsilon_median", "log_s_met",
)
"""Calibrated treatment/microenvironment parameters varied one by one (the subtype chemosensitivities vary
together, as one common log scale ``log_s_scale``)."""

S_SCALE_BOUNDS = (-0.2, 0.2)
"""Range of the common log scale added to the four subtype chemosensitivity medians."""


def problem(cfg: dict, ensemble: dict | None) -> dict:
    """The SALib problem: input names and bounds.

    Calibrated parameters vary over their ensemble's 2.5–97.5% range (or ±0.5 around ``cfg``'s value on the
    unconstrained scale without an ensemble), the chemosensitivity scale over :data:`S_SCALE_BOUNDS` and the
    uncalibrated settings over :data:`EXTRA`.

    Parameters
    ----------
    cfg : dict
        The calibrated configuration (``population.toml`` layout).
    ensemble : dict or None
        ``names`` and ``values`` as :func:`chemomet.calibrate.shipped.load_ensemble` returns.

    Returns
    -------
    dict
        ``num_vars``, ``names``, ``bounds`` (SALib's problem layout).

    Examples
    --------
    >>> from chemomet.calibrate.shipped import calibrated_config, load_ensemble
    >>> problem(calibrated_config(), load_ensemble())["num_vars"]
    15
    """
    th_nh = NATURAL_HISTORY.values(natural_history_theta(cfg))
    th_tg = TREATMENT.values(treatment_theta(cfg))
    names, bounds = [], []
    ens = {}
    if ensemble is not None:
        ens = {str(n): ensemble["values"][:, i] for i, n in enumerate(ensemble["names"])}

    def add(name, centre):
        if name in ens:
            lo, hi = np.percentile(ens[name], [2.5, 97.5])
        else:
            lo, hi = centre - 0.5, centre + 0.5
        names.append(name)
        bounds.append([float(lo), float(hi)])

    for k in NATURAL_HISTORY:
        add(k, th_nh[k])
    names.append("log_s_scale")
    bounds.append(list(S_SCALE_BOUNDS))
    for k in TREATMENT:
        if k in CALIBRATED_TREATMENT:
            add(k, th_tg[k])
    for k, (_, _, lo, hi) in EXTRA.items():
        names.append(k)
        bounds.append([lo, hi])
    return {"num_vars": len(names), "names": names, "bounds": bounds}


def config_for(cfg: dict, names, x) -> dict:
    """The configuration at one sample point.

    Parameters
    ----------
    cfg : dict
        The calibrated configuration; values not among ``names`` are kept.
    names : sequence of str
        Input names (:func:`problem`'s ``names``).
    x : array_like
        One value per name (unconstrained scale for calibrated parameters, natural units for :data:`EXTRA`).

    Returns
    -------
    dict
        A new configuration.

    Examples
    --------
    >>> from chemomet.calibrate.shipped import calibrated_config
    >>> cfg = calibrated_config()
    >>> prob = problem(cfg, None)
    >>> x = [sum(b) / 2 for b in prob["bounds"]]
    >>> config_for(cfg, prob["names"], x)["dissemination"]["phi"]
    0.5
    """
    v = dict(zip(names, x, strict=True))
    c = with_natural_history(NATURAL_HISTORY.vector(v), cfg)
    th_tg = TREATMENT.values(treatment_theta(c))
    for k in TREATMENT:
        if k in v:
            th_tg[k] = v[k]
    for k in SUBTYPE_PARAM.values():
        th_tg[k] += v["log_s_scale"]
    c = with_treatment(TREATMENT.vector(th_tg), c)
    for k, (table, key, _, _) in EXTRA.items():
        c[table][key] = float(v[k])
    return c


def excess_risk(cfg: dict, cohort: VirtualCohort, regimen: str = DEFAULT_REGIMEN) -> float:
    """NACT-attributable excess 10-year DM risk (NACT minus surgery first, same regimen), cohort mean.

    Returns
    -------
    float
        Difference of probabilities (positive: NACT raises the risk).

    Examples
    --------
    >>> from chemomet.calibrate.shipped import calibrated_config
    >>> cfg = calibrated_config()
    >>> abs(excess_risk(cfg, VirtualCohort.draw(cfg, 50, seed=5))) < 0.5
    True
    """
    a = simulate_arm(cfg, cohort, "nact", regimen, horizon_years=10.0).summary["dmfs_10y"].mean()
    b = simulate_arm(cfg, cohort, "surgery-first", regimen, horizon_years=10.0).summary["dmfs_10y"].mean()
    return float(b - a)


def run_sobol(
    cfg: dict,
    figure: Path | None,
    n_base: int = 64,
    n_patients: int = 500,
    seed: int = 5,
    ensemble: dict | None = None,
    progress=None,
) -> dict:
    """First-order and total Sobol indices (SALib, Saltelli/Sobol sampling, no second order).

    Parameters
    ----------
    cfg : dict
        The calibrated configuration.
    figure : pathlib.Path or None
        PNG of the indices; ``None`` for no figure. Without ``ensemble``, the ensemble is read from the
        calibration folder two levels above it (``<folder>/figures/<name>.png``), when there is one.
    n_base : int
        Sobol base sample size ``N`` (``N (k + 2)`` model runs for ``k`` inputs).
    n_patients : int
        Virtual patients per model run (common random numbers).
    seed : int
        Seed of the sample and of the cohort.
    ensemble : dict, optional
        ``names``/``values`` giving the ranges of the calibrated parameters.
    progress : callable, optional
        Called with a line of text every 100 model runs.

    Returns
    -------
    dict
        ``output``, ``n_base``, ``model_runs``, ``virtual_patients``, ``y_mean``, ``y_sd``, ``y_range``
        (probabilities) and ``indices`` (one row per input, sorted by total index).

    Examples
    --------
    >>> from chemomet.calibrate.shipped import calibrated_config
    >>> out = run_sobol(calibrated_config(), None, n_base=64)  # doctest: +SKIP
    """
    from SALib.analyze import sobol as sobol_analyze  # heavy: imported when used
    from SALib.sample import sobol as sobol_sample

    say = progress or (lambda msg: None)
    if ensemble is None:
        try:
            ensemble = read_ensemble(Path(figure).parent.parent) if figure else None
        except Exception:
            ensemble = None
    prob = problem(cfg, ensemble)
    x = sobol_sample.sample(prob, n_base, calc_second_order=False, seed=seed)
    cohort = VirtualCohort.draw(cfg, n_patients, seed)
    y = np.empty(len(x))
    for i, row in enumerate(x):
        y[i] = excess_risk(config_for(cfg, prob["names"], row), cohort)
        if progress and (i + 1) % 100 == 0:
            say(f"Sobol: {i + 1}/{len(x)} model runs")
    si = sobol_analyze.analyze(prob, y, calc_second_order=False, seed=seed)
    rows = sorted(
        (
            {"parameter": n, "S1": float(s1), "S1_conf": float(s1c), "ST": float(st), "ST_conf": float(stc), "range": b}
            for n, s1, s1c, st, stc, b in zip(
                prob["names"], si["S1"], si["S1_conf"], si["ST"], si["ST_conf"], prob["bounds"], strict=True
            )
        ),
        key=lambda r: -r["ST"],
    )
    if figure is not None:
        _plot(rows, figure)
    return {
        "output": f"NACT minus surgery-first 10-year DM risk ({DEFAULT_REGIMEN}), cohort mean",
        "n_base": n_base,
        "model_runs": int(len(x)),
        "virtual_patients": n_patients,
        "y_mean": float(y.mean()),
        "y_sd": float(y.std()),
        "y_range": [float(y.min()), float(y.max())],
        "indices": rows,
    }


def _plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["parameter"] for r in rows][::-1]
    fig, ax = plt.subplots(figsize=(6.4, 0.32 * len(rows) + 1.2))
    yy = np.arange(len(names))
    st = [r["ST"] for r in rows][::-1]
    s1 = [r["S1"] for r in rows][::-1]
    ax.barh(yy + 0.2, st, 0.4, xerr=[r["ST_conf"] for r in rows][::-1], label="total (ST)", color="tab:red")
    ax.barh(yy - 0.2, s1, 0.4, xerr=[r["S1_conf"] for r in rows][::-1], label="first order (S1)", color="tab:blue")
    ax.set_yticks(yy, names, fontsize=8)
    ax.set_xlabel("Sobol index")
    ax.set_title("NACT-attributable excess 10-year DM risk", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
