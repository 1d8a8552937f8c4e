"""Global sensitivity (Sobol, SALib) of the NACT-attributable excess 10-year DM risk to the uncertain parameters.

Output ``Y``: mean 10-year DM risk under NACT minus that under the same regimen after surgery
(``ac-paclitaxel-weekly``, 24 weeks), over a fixed virtual cohort (common random numbers). Inputs: the
calibrated parameters over their ensemble's 95% range (natural history; chemosensitivity as one common log
scale; TMEM link, colonisation efficiency, microenvironment response) and the uncalibrated settings over prior
ranges (``s_met``, ``phi``, resistance, macrophage relaxation).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from chemomet.calibrate import natural_history as nh
from chemomet.calibrate import targets as tg

EXTRA = {
    "s_met": ("treatment", "metastasis_kill_ratio", 0.1, 0.6),
    "phi": ("dissemination", "phi", 0.1, 0.9),
    "resistant_kill_ratio": ("treatment", "resistant_kill_ratio", 0.1, 0.5),
    "resistant_clone_probability": ("treatment", "resistant_clone_probability", 0.2, 0.8),
    "k_macrophage_per_day": ("microenvironment", "k_macrophage_per_day", 0.01, 0.1),
}
"""Uncalibrated settings varied over prior ranges: name -> (table, key, low, high)."""


def problem(cfg: dict, ensemble: dict | None) -> dict:
    """The SALib problem: names and bounds (ensemble 2.5–97.5% ranges, or ±0.5 on the log scale without one)."""
    th_nh, th_tg = nh.theta_from_config(cfg), tg.theta_from_config(cfg)
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

    for i, k in enumerate(nh.PARAM_NAMES):
        add(k, th_nh[i])
    names.append("log_s_scale")
    bounds.append([-0.2, 0.2])
    for i, k in enumerate(tg.PARAM_NAMES):
        if k in ("log_grade3_s_factor", "log_theta", "log10_colonisation_efficiency", "log_epsilon_median"):
            add(k, th_tg[i])
    for k, (_, _, lo, hi) in EXTRA.items():
        names.append(k)
        bounds.append([lo, hi])
    return {"num_vars": len(names), "names": names, "bounds": bounds}


def config_for(cfg: dict, names, x) -> dict:
    """The configuration at one sample point ``x``."""
    v = dict(zip(names, x, strict=True))
    th_nh = np.array([v[k] for k in nh.PARAM_NAMES])
    c = nh.config_from_theta(th_nh, cfg)
    th_tg = tg.theta_from_config(c)
    for i, k in enumerate(tg.PARAM_NAMES):
        if k in v:
            th_tg[i] = v[k]
    th_tg[:4] += v["log_s_scale"]
    c = tg.config_from_theta(th_tg, c)
    for k, (table, key, _, _) in EXTRA.items():
        c[table][key] = float(v[k])
    return c


def excess_risk(cfg: dict, cohort: tg.VirtualCohort, regimen: str = "ac-paclitaxel-weekly") -> float:
    """NACT-attributable excess 10-year DM risk (NACT minus surgery first, same regimen), cohort mean."""
    a = tg._simulate(cfg, cohort, "nact", regimen, horizon_years=10.0).summary["dmfs_10y"].mean()
    b = tg._simulate(cfg, cohort, "surgery-first", regimen, horizon_years=10.0).summary["dmfs_10y"].mean()
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
    """First-order and total Sobol indices (SALib, Saltelli/Sobol sampling, no second order)."""
    from SALib.analyze import sobol as sobol_analyze
    from SALib.sample import sobol as sobol_sample

    say = progress or (lambda msg: None)
    if ensemble is None:
        try:
            from chemomet.calibrate.pipeline import _read_ensemble

            ensemble = _read_ensemble(Path(figure).parent.parent) if figure else None
        except Exception:
            ensemble = None
    prob = problem(cfg, ensemble)
    x = sobol_sample.sample(prob, n_base, calc_second_order=False, seed=seed)
    cohort = tg.VirtualCohort.draw(cfg, n_patients, seed)
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
        "output": "NACT minus surgery-first 10-year DM risk (ac-paclitaxel-weekly), cohort mean",
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
