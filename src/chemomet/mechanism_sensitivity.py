"""Sobol sensitivity of the NACT excess risk and the drugs' benefit to every mechanism parameter (docs/science.md §5).

Inputs (:func:`inputs`), each over its prior's central 90% range: the priming take increase ``π`` and window ``W``
(days), the mobilisation release per unit chemotherapy stress ``ν_D`` and per unit CXCR4 inhibition ``ν_CXCR4``
(``data/mechanisms.toml``), the population median of the microenvironment response ``ε_med`` (×/÷ 4 around the
calibrated value, the range the calibration ensemble assumes), the doorway share at the reference TMEM ``φ``
(0.1 to 0.9, as in :mod:`chemomet.calibrate.sensitivity`) and the probability of pexidartinib's treatment-changing
toxicity (0 to 0.15 per patient; label 0.053). All mechanisms are on, at the sampled strengths.

Outputs: mean over a fixed virtual cohort (common random numbers; the shipped calibration) of the NACT-attributable
excess 10-year distant-metastasis risk (NACT − surgery first) and of each drug's benefit (NACT − NACT with the drug),
absolute probabilities. Sobol first-order and total indices come from SALib (Sobol sampling, no second order).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from scipy.stats import norm

from chemomet.mechanisms import load_mechanisms
from chemomet.model.parameters import PatientParameters, doorway_share
from chemomet.population import Population
from chemomet.regimens import DEFAULT_REGIMEN, Strategy, load_drugs
from chemomet.simulation import simulate
from chemomet.units import DAYS_PER_YEAR

Z90 = float(norm.ppf(0.95))


def _prior(mechanism: str, key: str, target: bool = False) -> tuple[float, float]:
    spec = load_mechanisms()[mechanism]
    prior = (spec.targets if target else spec.parameters)[key]
    return prior.at(-Z90), prior.at(Z90)


def inputs() -> dict[str, dict]:
    """The inputs of the analysis: name -> ``low``, ``high``, ``scale`` ("log" or "linear": how the unit interval
    maps onto the range), ``unit`` and ``source``.

    Examples
    --------
    >>> spec = inputs()
    >>> list(spec)  # doctest: +NORMALIZE_WHITESPACE
    ['priming_take_increase', 'priming_days', 'release_per_stress', 'release_per_cxcr4', 'epsilon_median', 'phi',
     'toxicity_probability']
    >>> round(spec["priming_take_increase"]["low"], 2), round(spec["priming_take_increase"]["high"], 2)
    (0.32, 3.16)
    """
    eps = float(Population().config["microenvironment"]["epsilon_median"])
    pi = _prior("priming", "take_increase")
    w = _prior("priming", "days_after_last_dose")
    nu_d = _prior("mobilisation", "per_unit_stress")
    nu_x = _prior("mobilisation", "CXCR4", target=True)
    return {
        "priming_take_increase": {"low": pi[0], "high": pi[1], "scale": "log", "unit": "dimensionless",
                                  "source": "data/mechanisms.toml priming.take_increase, 5-95% of the prior"},
        "priming_days": {"low": w[0], "high": w[1], "scale": "log", "unit": "days",
                         "source": "data/mechanisms.toml priming.days_after_last_dose, 5-95% of the prior"},
        "release_per_stress": {"low": nu_d[0], "high": nu_d[1], "scale": "log", "unit": "dimensionless",
                               "source": "data/mechanisms.toml mobilisation.per_unit_stress, 5-95% of the prior"},
        "release_per_cxcr4": {"low": nu_x[0], "high": nu_x[1], "scale": "log", "unit": "dimensionless",
                              "source": "data/mechanisms.toml mobilisation.targets.CXCR4, 5-95% of the prior"},
        "epsilon_median": {"low": eps / 4, "high": eps * 4, "scale": "log", "unit": "dimensionless",
                           "source": "calibrated epsilon_median x/÷ 4 (the ensemble's assumed range)"},
        "phi": {"low": 0.1, "high": 0.9, "scale": "linear", "unit": "fraction",
                "source": "prior range of chemomet.calibrate.sensitivity"},
        "toxicity_probability": {"low": 0.0, "high": 0.15, "scale": "linear", "unit": "probability per patient",
                                 "source": "assumption around the label's 0.053 (Turalio) and the stopped I-SPY2 arm"},
    }


def _value(spec: dict, u: float) -> float:
    lo, hi = spec["low"], spec["high"]
    if spec["scale"] == "log":
        return float(np.exp(np.log(lo) + u * (np.log(hi) - np.log(lo))))
    return float(lo + u * (hi - lo))


def mechanism_outputs(
    x: np.ndarray,
    n_patients: int = 200,
    seed: int = 0,
    drugs: tuple[str, ...] = ("rebastinib", "plerixafor", "pexidartinib"),
    regimen: str = DEFAULT_REGIMEN,
) -> pd.DataFrame:
    """The outputs at each row of ``x`` (values on the unit interval, columns in the order of :func:`inputs`).

    Parameters
    ----------
    x : numpy.ndarray
        Shape ``(k, 7)``, values in [0, 1] mapped onto each input's range.
    n_patients : int, default 200
        Virtual patients of the fixed cohort (the shipped calibration, ``seed``).
    seed : int, default 0
        Seed of the cohort and of its CTC and toxicity draws.
    drugs : tuple of str
        Accompanying drugs whose benefit is an output.
    regimen : str
        The chemotherapy regimen (no endocrine therapy).

    Returns
    -------
    pandas.DataFrame
        ``excess`` and ``benefit_<drug>`` per row: cohort means of absolute 10-year risk differences.

    Examples
    --------
    >>> out = mechanism_outputs(np.full((1, 7), 0.5), n_patients=10, drugs=("plerixafor",))
    >>> list(out.columns)
    ['excess', 'benefit_plerixafor']
    """
    spec = inputs()
    names = list(spec)
    base = Population()
    _, params = base.sample(n_patients, seed)
    n = params.n
    d = base.config["dissemination"]
    eps0 = float(base.config["microenvironment"]["epsilon_median"])
    horizon = 10 * DAYS_PER_YEAR
    table = load_drugs()

    def risk(p, name, pop, drugs_used=table):
        st = Strategy.parse(name, regimen)
        out = simulate(p, st, horizon, population=pop, drugs=drugs_used, seed=seed, workers=1).summary
        return 1.0 - out["dmfs_10y"].to_numpy(float)

    # surgery first does not depend on any input: priming and mobilisation act on the primary during NACT, and
    # epsilon and phi only on the doorway rise under chemotherapy with the primary in place (checked in the tests)
    first = risk(params, "surgery-first", base)
    values = [{n_: _value(spec[n_], float(u)) for n_, u in zip(names, row, strict=True)} for row in np.atleast_2d(x)]
    keys = ("priming_take_increase", "priming_days", "release_per_stress", "release_per_cxcr4")
    groups: dict[tuple, list[int]] = {}
    for i, v in enumerate(values):
        groups.setdefault(tuple(v[k] for k in keys), []).append(i)
    results = [dict() for _ in values]
    for key, rows_ in groups.items():
        pop = base.with_mechanisms({
            "priming": {"take_increase": key[0], "days_after_last_dose": key[1]},
            "mobilisation": {"per_unit_stress": key[2], "CXCR4": key[3]},
            "drug_toxicity": True,
        })
        # rows sharing the mechanism strengths differ only in per-patient values: simulate them stacked (the same
        # schedule quantities; each patient's numbers depend only on its own parameters)
        stacked = PatientParameters.concat([
            replace(
                params, epsilon=params.epsilon * values[r]["epsilon_median"] / eps0,
                phi=doorway_share(params.T0, values[r]["phi"], d["tmem_reference_10hpf"],
                                  d.get("phi_tmem_exponent", 0.0)),
            )
            for r in rows_
        ])
        nact = risk(stacked, "nact", pop)
        by = {g: risk(stacked, f"nact+{g}", pop) for g in drugs if table[g].toxicity is None}
        for b, r in enumerate(rows_):
            sl = slice(b * n, (b + 1) * n)
            results[r]["excess"] = float(np.mean(nact[sl] - first))
            for g in drugs:
                if g in by:
                    results[r][f"benefit_{g}"] = float(np.mean(nact[sl] - by[g][sl]))
                else:  # a drug with a toxicity: its draws are keyed by patient index, so one row at a time
                    tox = table[g].toxicity
                    drugs_now = {**table, g: table[g].model_copy(update={"toxicity": tox.model_copy(
                        update={"probability": values[r]["toxicity_probability"]})})}
                    own = risk(stacked.take(sl), f"nact+{g}", pop, drugs_now)
                    results[r][f"benefit_{g}"] = float(np.mean(nact[sl] - own))
    rows = [{"excess": res["excess"], **{f"benefit_{g}": res[f"benefit_{g}"] for g in drugs}} for res in results]
    return pd.DataFrame(rows)


def mechanism_sobol(
    n_base: int = 32,
    n_patients: int = 200,
    seed: int = 0,
    drugs: tuple[str, ...] = ("rebastinib", "plerixafor", "pexidartinib"),
    regimen: str = DEFAULT_REGIMEN,
    progress=None,
) -> pd.DataFrame:
    """First-order and total Sobol indices of the excess risk and each drug's benefit over the mechanism parameters.

    Parameters
    ----------
    n_base : int, default 32
        SALib's base sample size (a power of 2); ``n_base × 9`` model runs (rows sharing the mechanism strengths
        are simulated together).
    n_patients : int, default 200
        Patients of the fixed virtual cohort.
    seed : int, default 0
        Seed of the cohort and of the Sobol sequence (scrambled).
    drugs : tuple of str
        Drugs whose benefit is analysed.
    regimen : str
        The chemotherapy regimen.
    progress : callable, optional
        ``progress(done, total)`` after each model run.

    Returns
    -------
    pandas.DataFrame
        One row per (output, input): ``output``, ``input``, ``S1``, ``S1_conf``, ``ST``, ``ST_conf`` (95%
        bootstrap half-widths), ``output_mean`` and ``output_sd`` (absolute risk difference over the sample).

    Examples
    --------
    >>> table = mechanism_sobol(n_base=4, n_patients=8, drugs=("rebastinib",))  # doctest: +SKIP
    >>> sorted(table["output"].unique())  # doctest: +SKIP
    ['benefit_rebastinib', 'excess']
    """
    from SALib.analyze import sobol as sobol_analyze  # heavy: imported when used
    from SALib.sample import sobol as sobol_sample

    spec = inputs()
    problem = {"num_vars": len(spec), "names": list(spec), "bounds": [[0.0, 1.0]] * len(spec)}
    x = sobol_sample.sample(problem, n_base, calc_second_order=False, seed=seed)
    outs, step = [], len(spec) + 2  # one Sobol block (A, B and the AB_i) at a time: they share strengths
    for lo in range(0, x.shape[0], step):
        outs.append(mechanism_outputs(x[lo : lo + step], n_patients, seed, drugs, regimen))
        if progress is not None:
            progress(min(lo + step, x.shape[0]), x.shape[0])
    y = pd.concat(outs, ignore_index=True)
    rows = []
    for output in y.columns:
        values = y[output].to_numpy(float)
        if np.ptp(values) == 0.0:  # a constant output: no variance to apportion
            si = {k: np.zeros(len(spec)) for k in ("S1", "S1_conf", "ST", "ST_conf")}
        else:
            si = sobol_analyze.analyze(problem, values, calc_second_order=False, seed=seed)
        for j, name in enumerate(spec):
            rows.append({
                "output": output, "input": name, "S1": float(si["S1"][j]), "S1_conf": float(si["S1_conf"][j]),
                "ST": float(si["ST"][j]), "ST_conf": float(si["ST_conf"][j]),
                "output_mean": float(values.mean()), "output_sd": float(values.std()),
            })
    return pd.DataFrame(rows)


def plot_sobol(table: pd.DataFrame, path, title: str | None = None):
    """Bar chart of :func:`mechanism_sobol`: total (and first-order) index of each input, one panel per output.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> t = pd.DataFrame({"output": ["excess"] * 2, "input": ["phi", "priming_days"], "S1": [0.5, 0.1],
    ...                   "S1_conf": [0.1, 0.1], "ST": [0.6, 0.2], "ST_conf": [0.1, 0.1]})
    >>> plot_sobol(t, Path(tempfile.mkdtemp()) / "sobol.png").suffix
    '.png'
    """
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from chemomet.fileio import atomic_write

    outputs = list(table["output"].unique())
    fig, axes = plt.subplots(1, len(outputs), figsize=(3.4 * len(outputs) + 1.6, 3.6), sharey=True, squeeze=False)
    for ax, output in zip(axes[0], outputs, strict=True):
        t = table[table["output"] == output]
        y = np.arange(len(t))
        ax.barh(y + 0.18, t["ST"], 0.36, xerr=t["ST_conf"], label="total", color="tab:blue")
        ax.barh(y - 0.18, t["S1"], 0.36, xerr=t["S1_conf"], label="first order", color="tab:orange")
        ax.set_title(output.replace("_", " "), fontsize=9)
        ax.set_xlim(-0.1, 1.1)
        ax.axvline(0, color="grey", lw=0.6)
        ax.set_yticks(y)
        ax.set_yticklabels(t["input"].str.replace("_", " "), fontsize=8)
    axes[0][0].invert_yaxis()
    axes[0][-1].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return path
