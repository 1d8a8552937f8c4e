"""Subgroup harm, quantified: NACT vs surgery first and each drug vs NACT by baseline TMEM tertile, morphology,
CTC status and subtype, under each mechanism setting (docs/science.md §5), and the value of measuring a biomarker.

:func:`subgroup_effects` draws a virtual cohort whose patients carry the members of the calibration ensemble
(contiguous blocks of patient indices, one member each, as the assessment's twins carry one), simulates surgery
first, NACT and NACT with each accompanying drug under every mechanism setting asked for
(:data:`chemomet.mechanisms.STANDARD_SETTINGS`: off, each further mechanism on at its prior medians, all on), and
summarises each contrast in each subgroup:

* ``mean``: the subgroup's mean effect (absolute 10-year distant-metastasis risk difference; NACT − surgery first:
  positive = harm; NACT − NACT with the drug: positive = benefit);
* ``lo``, ``hi``: a central interval (default 90%) of that mean over the calibration ensemble and the virtual
  patients: a cluster bootstrap that resamples ensemble members with their patients, so parameter uncertainty and
  the finite cohort both count, and the interval crosses zero when the sign is not settled;
* ``patients_lo``, ``patients_hi``: the same quantiles over the individual patients' effects, and
  ``share_positive``, the share of patients with an effect above 0.

Rows with ``contrast == "hazard_ratio"`` give the NACT-vs-surgery-first ratio of 10-year cumulative hazards of
distant metastasis, ``ln S_NACT(10 y) / ln S_first(10 y)`` of the subgroup's mean DMFS curves (a
proportional-hazards-free summary; no competing deaths), with the same bootstrap interval. No target is set on any
of these numbers and none was tuned.

:func:`value_of_information` asks, for one patient, how much the 90% interval of her NACT-attributable excess would
narrow if a biomarker were measured: the expected interval width over the biomarker's predictive distribution,
using the assessment's twin reweighting (:mod:`chemomet.assess.evidence`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from chemomet.assess.twins import members_with_epsilon
from chemomet.calibrate.mechanism_priors import Z90
from chemomet.mechanisms import STANDARD_SETTINGS, describe_mechanisms
from chemomet.model.parameters import PatientParameters
from chemomet.patient import SUBTYPES, Patient
from chemomet.population import Population
from chemomet.regimens import DEFAULT_REGIMEN, Strategy, load_drugs
from chemomet.simulation import simulate
from chemomet.units import DAYS_PER_YEAR

DIMENSIONS = ("all", "tmem_tertile", "morphology", "ctc_status", "subtype")
"""Subgroup dimensions: everyone, baseline TMEM tertile (of the cohort's drawn ``T0``), morphology (alveolar or
trabecular structures present or not), baseline CTC status (0 vs >= 1 per 7.5 mL) and receptor subtype."""

GROUP_ORDER = ("all", "bottom", "middle", "top", "neither", "alveolar/trabecular", "CTC 0", "CTC >= 1", *SUBTYPES)
"""The order groups are reported in."""

MORPHOLOGY_PROBABILITY = 0.3085375387259869
"""P(alveolar or trabecular structures) in the population: its cohort draws them where a standard normal exceeds
0.5 (:meth:`chemomet.population.Population.sample_covariates`), ``1 − Φ(0.5)``."""


def epsilon_posterior(path: str | Path) -> tuple[float, float]:
    """The fitted stress response of a mechanism-inference result: ``ε_med``'s posterior in the doorway-only set
    with all data, as a log-normal through its median and 90% interval.

    Parameters
    ----------
    path : str or Path
        The JSON that ``chemomet calibrate mechanisms`` writes (``mechanism_inference.json``).

    Returns
    -------
    tuple of float
        ``(median, sdlog)``: the posterior median (dimensionless) and the SD of its log,
        ``ln(q95 / q05) / (2 × 1.645)``.

    Raises
    ------
    chemomet.errors.InputError
        When the file is missing or is not such a result.

    Examples
    --------
    >>> import json, tempfile
    >>> eps = {"median": 3.0, "q05": 1.5, "q95": 6.0}
    >>> fit = {"fits": {"doorway": {"posterior": {"all data": {"strengths": {"epsilon_median": eps}}}}}}
    >>> path = Path(tempfile.mkdtemp()) / "mechanism_inference.json"
    >>> _ = path.write_text(json.dumps(fit), encoding="utf-8")
    >>> median, sdlog = epsilon_posterior(path)
    >>> median, round(sdlog, 3)  # ln(6 / 1.5) / 3.29
    (3.0, 0.421)
    """
    import json

    from chemomet.errors import InputError

    where = f"--epsilon-posterior = {str(path)!r}"
    try:
        result = json.loads(Path(path).read_text(encoding="utf-8"))
        eps = result["fits"]["doorway"]["posterior"]["all data"]["strengths"]["epsilon_median"]
        median, lo, hi = float(eps["median"]), float(eps["q05"]), float(eps["q95"])
    except FileNotFoundError:
        raise InputError(f"{where}: no such file") from None
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(
            f"{where} is invalid ({type(err).__name__}: {err}); allowed: the JSON of chemomet calibrate mechanisms"
        ) from None
    if not 0 < lo <= median <= hi:
        raise InputError(f"{where}: epsilon_median's posterior {lo}, {median}, {hi} is not a positive interval")
    return median, float(np.log(hi / lo) / (2 * Z90))


SUBGROUP_KEYS = ("setting", "dimension", "group", "contrast")
"""The columns that name one row of :func:`subgroup_effects`."""


def with_epsilon_range(table: pd.DataFrame, median: float, sdlog: float, n: int, seed: int = 0,
                       members: tuple[Population, ...] | None = None, **options) -> pd.DataFrame:
    """``table`` (of :func:`subgroup_effects` under a fitted ``ε_med``, median ``median``, SD of the log ``sdlog``)
    with two more columns: each row's mean with every ensemble member at the log-normal's 5th percentile of
    ``ε_med`` (``mean_epsilon_q05``) and at its 95th (``mean_epsilon_q95``), same patients and seed.

    The bootstrap interval of :func:`subgroup_effects` is over the virtual patients and the ensemble with each
    member's ``ε_med`` drawn once; it does not show how far the effect moves across the posterior of ``ε_med``.
    The excess grows with ``ε_med`` (the doorway route's stress response), so the effect at the two percentiles
    bounds the effect over the central 90% of that posterior: the range a clinician should read.
    ``options`` go to :func:`subgroup_effects` (``settings``, ``regimen``, ...), as for ``table``.

    Examples
    --------
    >>> pop = Population()
    >>> kw = dict(settings={"off": {}}, drugs=("plerixafor",), n_boot=20)
    >>> t = subgroup_effects(60, members=members_with_epsilon(2.0, 0.4, members=(pop, pop)), **kw)
    >>> r = with_epsilon_range(t, 2.0, 0.4, 60, members=(pop, pop), **kw)
    >>> row = r[(r["dimension"] == "all") & (r["contrast"] == "hazard_ratio")].iloc[0]
    >>> bool(row["mean_epsilon_q05"] < row["mean_epsilon_q95"])
    True
    """
    ends = []
    for label, z in (("mean_epsilon_q05", -Z90), ("mean_epsilon_q95", Z90)):
        at = members_with_epsilon(median * float(np.exp(z * sdlog)), 0.0, seed=seed, members=members)
        end = subgroup_effects(n, seed, members=at, **options)
        ends.append(end.set_index(list(SUBGROUP_KEYS))["mean"].rename(label))
    return table.join(pd.concat(ends, axis=1), on=list(SUBGROUP_KEYS))


def _members(members) -> tuple[Population, ...]:
    if members is not None:
        return tuple(members)
    from chemomet.assess.twins import shipped_ensemble

    return shipped_ensemble()


def ensemble_cohort(
    n: int, seed: int = 0, members: tuple[Population, ...] | None = None
) -> tuple[pd.DataFrame, PatientParameters, np.ndarray]:
    """A virtual cohort whose patients carry the calibration ensemble's members.

    Patient ``i`` is drawn from member ``⌊i M / n⌋`` (contiguous, balanced blocks; ``M`` members) with the streams
    of :meth:`Population.sample <chemomet.population.Population.sample>` keyed by ``i``, so the cohort depends only
    on ``n``, the seed and the members.

    Parameters
    ----------
    n : int
        Patients (>= 1).
    seed : int, default 0
        The seed.
    members : tuple of Population, optional
        The ensemble (default: the shipped calibration ensemble, 200 members).

    Returns
    -------
    covariates : pandas.DataFrame
        As :meth:`Population.sample` returns them, plus ``member`` (index of the ensemble member) and ``subtype``.
    parameters : PatientParameters
        One row per patient.
    member : numpy.ndarray
        The member index of each patient (ints).

    Examples
    --------
    >>> cov, params, member = ensemble_cohort(6, 0, members=(Population(), Population()))
    >>> member.tolist(), params.n, bool(cov["subtype"].isin(SUBTYPES).all())
    ([0, 0, 0, 1, 1, 1], 6, True)
    """
    members = _members(members)
    if n < 1:
        raise ValueError("n must be >= 1")
    m = len(members)
    member = (np.arange(n) * m) // n
    covs, parts = [], []
    for k in range(m):
        rows = np.flatnonzero(member == k)
        if rows.size == 0:
            continue
        cov, params = members[k].sample(rows.size, seed, start=int(rows[0]))
        covs.append(cov)
        parts.append(params)
    cov = pd.concat(covs, ignore_index=True)
    cov["member"] = member
    hr = cov["er"].to_numpy(bool) | cov["pr"].to_numpy(bool)
    her2 = cov["her2"].to_numpy(bool)
    cov["subtype"] = np.select([hr & ~her2, hr & her2, ~hr & her2], list(SUBTYPES[:3]), default=SUBTYPES[3])
    return cov, PatientParameters.concat(parts), member


def _groups(cov: pd.DataFrame, t0: np.ndarray, ctc: np.ndarray) -> dict[str, pd.Series]:
    """Per dimension, each patient's group label."""
    cuts = np.quantile(t0, [1 / 3, 2 / 3])
    tertile = np.where(t0 <= cuts[0], "bottom", np.where(t0 <= cuts[1], "middle", "top"))
    return {
        "all": pd.Series(["all"] * len(cov)),
        "tmem_tertile": pd.Series(tertile),
        "morphology": pd.Series(np.where(cov["alveolar_or_trabecular"].to_numpy(bool),
                                         "alveolar/trabecular", "neither")),
        "ctc_status": pd.Series(np.where(np.asarray(ctc) >= 1, "CTC >= 1", "CTC 0")),
        "subtype": cov["subtype"].reset_index(drop=True),
    }


def _bootstrap_counts(n_members: int, n_boot: int, seed: int) -> np.ndarray:
    """``(n_boot, n_members)`` multinomial counts: members resampled with replacement."""
    rng = np.random.default_rng([seed, 0x5B])
    return rng.multinomial(n_members, np.full(n_members, 1.0 / n_members), size=n_boot).astype(float)


def _summaries(values: dict[str, np.ndarray], labels: np.ndarray, member: np.ndarray, counts: np.ndarray,
               level: float, dm_nact: np.ndarray, dm_first: np.ndarray) -> list[dict]:
    """Rows for one grouping: each contrast's mean, bootstrap interval and patient quantiles, and the hazard ratio."""
    q = [(1 - level) / 2, (1 + level) / 2]
    n_members = counts.shape[1]
    rows = []
    order = {g: i for i, g in enumerate(GROUP_ORDER)}
    for group in sorted(pd.unique(labels), key=lambda g: (order.get(g, len(order)), str(g))):
        sel = labels == group
        c = np.bincount(member[sel], minlength=n_members).astype(float)
        boot_n = counts @ c
        ok = boot_n > 0
        for name, v in values.items():
            x = v[sel]
            s = np.bincount(member[sel], weights=x, minlength=n_members)
            boot = (counts @ s)[ok] / boot_n[ok]
            lo, hi = np.quantile(boot, q)
            plo, phi = np.quantile(x, q)
            rows.append({
                "group": group, "contrast": name, "patients": int(sel.sum()), "mean": float(x.mean()),
                "lo": float(lo), "hi": float(hi), "p_positive": float(np.mean(boot > 0)),
                "patients_lo": float(plo), "patients_hi": float(phi), "share_positive": float(np.mean(x > 0)),
            })
        s_nact = np.bincount(member[sel], weights=1.0 - dm_nact[sel], minlength=n_members)
        s_first = np.bincount(member[sel], weights=1.0 - dm_first[sel], minlength=n_members)
        with np.errstate(divide="ignore", invalid="ignore"):
            boot_hr = np.log((counts @ s_nact)[ok] / boot_n[ok]) / np.log((counts @ s_first)[ok] / boot_n[ok])
            point = np.log(1.0 - dm_nact[sel].mean()) / np.log(1.0 - dm_first[sel].mean())
        boot_hr = boot_hr[np.isfinite(boot_hr)]
        lo, hi = np.quantile(boot_hr, q) if boot_hr.size else (np.nan, np.nan)
        rows.append({
            "group": group, "contrast": "hazard_ratio", "patients": int(sel.sum()), "mean": float(point),
            "lo": float(lo), "hi": float(hi), "p_positive": float(np.mean(boot_hr > 1)) if boot_hr.size else np.nan,
            "patients_lo": np.nan, "patients_hi": np.nan, "share_positive": np.nan,
        })
    return rows


def subgroup_effects(
    n: int = 4000,
    seed: int = 0,
    settings: dict[str, dict] | None = None,
    drugs: tuple[str, ...] | None = None,
    regimen: str = DEFAULT_REGIMEN,
    years: float = 10.0,
    level: float = 0.9,
    n_boot: int = 1000,
    members: tuple[Population, ...] | None = None,
    progress=None,
) -> pd.DataFrame:
    """NACT vs surgery first and each drug vs NACT by subgroup, under each mechanism setting, with intervals.

    Parameters
    ----------
    n : int, default 4000
        Virtual patients (the same patients under every setting and strategy; >= 10).
    seed : int, default 0
        Seed of the cohort, its CTC and toxicity draws, and the bootstrap.
    settings : dict[str, dict], optional
        Setting name -> ``[mechanisms]`` table (:func:`chemomet.mechanisms.mechanism_settings`); default
        :data:`chemomet.mechanisms.STANDARD_SETTINGS` (off, priming, mobilisation, drug_toxicity, all).
    drugs : tuple of str, optional
        Accompanying drugs (default: every accompanying drug of ``data/drugs.toml``).
    regimen : str, default "ac-paclitaxel-weekly"
        The chemotherapy regimen (no endocrine therapy, as in ``chemomet excess-risk``).
    years : float, default 10.0
        Horizon of the risks (years): 3, 5, 10 or 15.
    level : float, default 0.9
        Mass of the central intervals.
    n_boot : int, default 1000
        Bootstrap resamples of the ensemble members.
    members : tuple of Population, optional
        The calibration ensemble (default: the shipped one); the mechanisms of each setting are applied to the
        reference population (the shipped calibration), whose settings every simulation uses.
    progress : callable, optional
        ``progress(text)`` before each simulation.

    Returns
    -------
    pandas.DataFrame
        One row per (setting, dimension, group, contrast): ``setting``, ``dimension`` (:data:`DIMENSIONS`),
        ``group``, ``contrast`` (``nact_vs_surgery_first``: risk difference, positive = harm; ``<drug>_vs_nact``:
        risk reduction, positive = benefit; ``hazard_ratio``: NACT vs surgery first, ratio of 10-year cumulative
        hazards), ``patients``, ``mean``, ``lo``, ``hi`` (bootstrap interval of the mean), ``p_positive``
        (bootstrap probability that the mean is > 0, for the hazard ratio > 1), ``patients_lo``,
        ``patients_hi`` (quantiles over patients), ``share_positive`` (share of patients > 0), ``mechanisms``
        (the mechanisms on). Risks are absolute probabilities.

    Examples
    --------
    >>> pop = Population()
    >>> table = subgroup_effects(60, settings={"off": {}}, drugs=("plerixafor",), members=(pop, pop), n_boot=50)
    >>> sorted(table["contrast"].unique())
    ['hazard_ratio', 'nact_vs_surgery_first', 'plerixafor_vs_nact']
    >>> row = table.query("dimension == 'all' and contrast == 'nact_vs_surgery_first'").iloc[0]
    >>> bool(row["lo"] <= row["mean"] <= row["hi"]), int(row["patients"])
    (True, 60)
    """
    if n < 10:
        raise ValueError("n must be >= 10")
    if years not in (3.0, 5.0, 10.0, 15.0):
        raise ValueError("years must be 3, 5, 10 or 15 (the horizons the simulation summarises)")
    settings = dict(STANDARD_SETTINGS) if settings is None else settings
    table = load_drugs()
    drugs = tuple(d for d, x in table.items() if x.role == "accompanying") if drugs is None else tuple(drugs)
    members = _members(members)
    cov, params, member = ensemble_cohort(n, seed, members)
    horizon = years * DAYS_PER_YEAR
    names = ["surgery-first", "nact", *[f"nact+{d}" for d in drugs]]
    strategies = [Strategy.parse(s, regimen) for s in names]
    counts = _bootstrap_counts(len(members), n_boot, seed)
    say = progress or (lambda text: None)
    rows = []
    for setting, mech_table in settings.items():
        pop = Population().with_mechanisms(mech_table) if mech_table else Population()
        risk, ctc = {}, None
        for st in strategies:
            say(f"{setting}: {st.name}")
            out = simulate(params, st, horizon, population=pop, seed=seed).summary
            risk[st.name] = 1.0 - out[f"dmfs_{years:g}y"].to_numpy(float)
            if st.name == "surgery-first":
                ctc = out["ctc_count_baseline"].to_numpy(float)
        values = {"nact_vs_surgery_first": risk["nact"] - risk["surgery-first"]}
        values.update({f"{d}_vs_nact": risk["nact"] - risk[f"nact+{d}"] for d in drugs})
        on = ",".join(describe_mechanisms(pop.settings.mechanisms)["on"])
        for dim, labels in _groups(cov, params.T0, ctc).items():
            for r in _summaries(values, labels.to_numpy(), member, counts, level, risk["nact"],
                                risk["surgery-first"]):
                rows.append({"setting": setting, "dimension": dim, **r, "mechanisms": on})
    return pd.DataFrame(rows)


def _contrast_label(contrast: str) -> str:
    return contrast.replace("_vs_", " vs ").replace("_", " ").replace("nact", "NACT")


def subgroup_text(table: pd.DataFrame, level: float = 0.9) -> str:
    """The table of :func:`subgroup_effects` as plain text, one block per setting (percentage points).

    Examples
    --------
    >>> pop = Population()
    >>> t = subgroup_effects(60, settings={"off": {}}, drugs=("plerixafor",), members=(pop, pop), n_boot=50)
    >>> print(subgroup_text(t).splitlines()[0])
    mechanism setting: off (on: doorway)
    """
    contrasts = [c for c in table["contrast"].unique() if c != "hazard_ratio"]
    pct = f"{100 * level:.0f}%"
    lines = []
    for setting, block in table.groupby("setting", sort=False):
        lines.append(f"mechanism setting: {setting} (on: {block['mechanisms'].iloc[0]})")
        head = f"  {'subgroup':<34}{'n':>6}" + "".join(f"{_contrast_label(c)[:26]:>28}" for c in contrasts)
        lines += [head, f"  {'':<40}" + "".join(f"{'points (' + pct + ' interval)':>28}" for _ in contrasts)]
        for (dim, group), g in block.groupby(["dimension", "group"], sort=False):
            cells = []
            for c in contrasts:
                r = g[g["contrast"] == c].iloc[0]
                cells.append(f"{100 * r['mean']:+.2f} ({100 * r['lo']:+.2f} to {100 * r['hi']:+.2f})")
            label = "everyone" if dim == "all" else f"{dim}: {group}"
            lines.append(f"  {label:<34}{int(g['patients'].iloc[0]):>6}" + "".join(f"{c:>28}" for c in cells))
        hr = block[(block["contrast"] == "hazard_ratio") & block["dimension"].isin(["all", "tmem_tertile"])]
        lines.append(f"  distant-recurrence hazard ratio, NACT vs surgery first ({pct} interval): " + "; ".join(
            f"{'everyone' if r['dimension'] == 'all' else 'TMEM ' + r['group']} {r['mean']:.3f} "
            f"({r['lo']:.3f} to {r['hi']:.3f})" for _, r in hr.iterrows()))
        if "mean_epsilon_q95" in block:
            lines.append("  the same across the stress response's posterior (epsilon median at its 5th to 95th "
                         "percentile): " + "; ".join(
                             f"{'everyone' if r['dimension'] == 'all' else 'TMEM ' + r['group']} "
                             f"{r['mean_epsilon_q05']:.3f} to {r['mean_epsilon_q95']:.3f}" for _, r in hr.iterrows()))
        lines.append("")
    lines.append("NACT vs surgery first: positive = NACT raises the 10-year risk; drug vs NACT: positive = the drug "
                 "lowers it. Intervals over the calibration ensemble and the virtual patients (cluster bootstrap).")
    return "\n".join(lines)


def plot_subgroups(table: pd.DataFrame, path: str | Path, title: str | None = None) -> Path:
    """A forest plot of :func:`subgroup_effects`: one panel per contrast, one row per subgroup, one marker with its
    interval per mechanism setting (percentage points). With the columns of :func:`with_epsilon_range`, a faint
    wider bar behind each marker spans the means at the stress response's 5th and 95th posterior percentiles.

    Examples
    --------
    >>> import tempfile
    >>> pop = Population()
    >>> t = subgroup_effects(60, settings={"off": {}}, drugs=("plerixafor",), members=(pop, pop), n_boot=50)
    >>> plot_subgroups(t, Path(tempfile.mkdtemp()) / "forest.png").read_bytes()[:4]
    b'\\x89PNG'
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from chemomet.fileio import atomic_write

    data = table[table["contrast"] != "hazard_ratio"]
    contrasts = list(data["contrast"].unique())
    settings = list(data["setting"].unique())
    keys = list(dict.fromkeys(zip(data["dimension"], data["group"], strict=True)))
    fig, axes = plt.subplots(1, len(contrasts), figsize=(3.6 * len(contrasts) + 2.2, 0.42 * len(keys) + 1.6),
                             sharey=True, squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, contrast in zip(axes[0], contrasts, strict=True):
        for j, setting in enumerate(settings):
            sub = data[(data["contrast"] == contrast) & (data["setting"] == setting)].set_index(["dimension", "group"])
            y = np.arange(len(keys)) + (j - (len(settings) - 1) / 2) * 0.8 / max(len(settings), 1)
            r = sub.loc[keys]
            if "mean_epsilon_q95" in r:  # how far the effect moves across the posterior of the stress response
                ax.hlines(y, 100 * r["mean_epsilon_q05"], 100 * r["mean_epsilon_q95"], lw=4, alpha=0.25,
                          color=colours[j % len(colours)])
            ax.errorbar(100 * r["mean"], y, xerr=[100 * (r["mean"] - r["lo"]), 100 * (r["hi"] - r["mean"])],
                        fmt="o", ms=3, lw=1, color=colours[j % len(colours)], label=setting)
        ax.axvline(0.0, color="grey", lw=0.8)
        ax.set_title(_contrast_label(contrast), fontsize=9)
        ax.set_xlabel("10-year DM risk difference (points)", fontsize=8)
    axes[0][0].set_yticks(np.arange(len(keys)))
    axes[0][0].set_yticklabels(["everyone" if d == "all" else f"{d.replace('_', ' ')}: {g}" for d, g in keys],
                               fontsize=8)
    axes[0][0].invert_yaxis()
    handles, names = axes[0][0].get_legend_handles_labels()
    ranges = "mean_epsilon_q95" in data
    fig.legend(handles, names, title="mechanisms on", fontsize=7, title_fontsize=7, loc="lower center",
               ncol=len(settings), frameon=False, bbox_to_anchor=(0.5, 0.035 if ranges else 0.0))
    if ranges:
        fig.text(0.5, 0.005, "markers and thin bars: mean and its 90% Monte Carlo interval; faint wide bars: the mean "
                 "with the stress response at its posterior's 5th and 95th percentiles", ha="center", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.11 if ranges else 0.07, 1, 1))
    path = Path(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return path


def _width(values: np.ndarray, weights: np.ndarray, level: float) -> float:
    from chemomet.assess.forecast import weighted_quantiles

    ok = weights > 0
    lo, hi = weighted_quantiles(values[ok], weights[ok], [(1 - level) / 2, (1 + level) / 2])
    return float(hi - lo)


def value_of_information(
    patient: Patient,
    n_twins: int = 8000,
    seed: int = 0,
    regimen: str | None = None,
    mechanisms: dict | None = None,
    n_draws: int = 200,
    level: float = 0.9,
    members: tuple[Population, ...] | None = None,
) -> pd.DataFrame:
    """How much the interval of a patient's NACT-attributable excess risk would narrow if a biomarker were measured.

    Twins are drawn as in :func:`chemomet.assess` (covariates fixed, ensemble member and random effects drawn), in
    two sets, with and without alveolar/trabecular structures, mixed with the population's probability
    (:data:`MORPHOLOGY_PROBABILITY`) when morphology counts as unmeasured. Every twin is simulated under surgery
    first and NACT (with the patient's standard endocrine therapy), and the measurements weigh them through the
    assessment's likelihoods (:func:`chemomet.assess.evidence.terms`). For each biomarker (TMEM score, CTC count,
    morphology): the width of the central interval of the excess with that biomarker unmeasured (the others as the
    patient has them), the *expected* width once measured — the mean over ``n_draws`` values drawn from its
    predictive distribution (a twin drawn from the current posterior, then a value from the observation model), each
    reweighting the twins — and the width at the patient's own value when she has one. A simple preposterior
    analysis on a finite twin set: widths carry Monte Carlo error of a few tenths of a point.

    Parameters
    ----------
    patient : Patient
        The patient.
    n_twins : int, default 8000
        Twins per morphology set (each simulated twice).
    seed : int, default 0
        Seed of the twins and the predictive draws.
    regimen : str, optional
        Regimen (default: the patient's standard, :func:`chemomet.assess.assessment.standard_regimen`).
    mechanisms : dict, optional
        A ``[mechanisms]`` table (default: the shipped model).
    n_draws : int, default 200
        Values drawn from each count biomarker's predictive distribution.
    level : float, default 0.9
        Mass of the interval.
    members : tuple of Population, optional
        The calibration ensemble (default: the shipped one).

    Returns
    -------
    pandas.DataFrame
        One row per biomarker: ``biomarker``, ``observed`` (her value or "not measured"),
        ``width_unmeasured``, ``expected_width_measured``, ``narrowing`` (their difference) and
        ``width_at_observed`` (NaN when not measured), all widths of the excess 10-year risk's interval
        (absolute risk; 0.01 = 1 point); ``probability_measured_value`` for morphology (the predictive probability
        of alveolar/trabecular structures).

    Examples
    --------
    >>> from chemomet.patient import example_patient
    >>> voi = value_of_information(example_patient(), n_twins=300, n_draws=20, members=(Population(),))
    >>> voi["biomarker"].tolist()
    ['TMEM score', 'CTC count', 'morphology']
    >>> bool((voi["expected_width_measured"] > 0).all())
    True
    """
    from scipy.stats import nbinom

    from chemomet.assess import evidence
    from chemomet.assess.assessment import default_strategies, standard_regimen
    from chemomet.assess.forecast import simulate_twins
    from chemomet.assess.settings import AssessmentSettings
    from chemomet.assess.twins import draw_twins, patient_covariates

    settings = AssessmentSettings.default()
    regimen = standard_regimen(patient, settings.treatment) if regimen is None else regimen
    reference = Population().with_mechanisms(mechanisms) if mechanisms else Population()
    members = _members(members)
    pair = default_strategies(patient, regimen, settings.treatment)[:2]  # surgery first, NACT
    cov0 = patient_covariates(patient, reference)
    own = bool(cov0["alveolar_or_trabecular"].iloc[0])
    sets = []
    for flag in (True, False):
        cov = cov0.copy()
        cov["alveolar_or_trabecular"] = flag
        tw = draw_twins(patient, n_twins, seed, reference, members, covariates=cov)
        o = simulate_twins(tw, np.arange(tw.n), pair, reference, 10.0)
        excess = o["surgery-first"]["dmfs_10y"] - o["nact"]["dmfs_10y"]
        sets.append((flag, tw, excess))
    flags = np.concatenate([np.full(tw.n, f) for f, tw, _ in sets])
    excess = np.concatenate([e for *_, e in sets])
    log_prior = np.where(flags, np.log(MORPHOLOGY_PROBABILITY), np.log(1 - MORPHOLOGY_PROBABILITY))

    def loglik(p: Patient) -> dict[str, np.ndarray]:
        out: dict[str, list] = {}
        for _, tw, _ in sets:
            for t in evidence.terms(p, tw, reference, settings.observation, regimen):
                out.setdefault(t.name, []).append(t.loglik)
        return {k: np.concatenate(v) for k, v in out.items()}

    base = loglik(patient)
    rng = np.random.default_rng([seed, 0x701])

    def weights(log_w: np.ndarray) -> np.ndarray:
        return evidence.normalised(log_w)

    own_set = np.where(flags == own, 0.0, -np.inf)
    rows = []
    obs = settings.observation
    for name, field in (("TMEM score", "tmem_score"), ("CTC count", "ctc_count")):
        others = sum((v for k, v in base.items() if k != name), np.zeros(excess.size))
        w0 = weights(log_prior + own_set + others)
        measured = getattr(patient, field) is not None
        at_obs = _width(excess, weights(log_prior + own_set + others + base[name]), level) if measured else np.nan
        twins_drawn = rng.choice(excess.size, size=n_draws, p=w0)
        if name == "TMEM score":
            tw_params = [tw.params.T0 for _, tw, _ in sets]
            f = evidence.tmem_factor(patient, reference) if patient.tmem_convention else 1.0
            mean = np.concatenate(tw_params)[twins_drawn] * f
            k, background = obs.tmem_dispersion, 0.0
        else:
            from chemomet.model import dissemination as dis

            lam = [dis.expected_ctc(tw.params.mu * np.exp(tw.params.gamma * tw.params.log_cells0),
                                    reference.settings) * tw.ctc_scale for _, tw, _ in sets]
            mean = np.concatenate(lam)[twins_drawn]
            # each drawn twin's count under its ensemble member's own dispersion and background
            k = np.concatenate([tw.ctc_dispersion for _, tw, _ in sets])[twins_drawn]
            background = np.concatenate([tw.ctc_background for _, tw, _ in sets])[twins_drawn]
        values = nbinom.rvs(k, k / (k + np.maximum(mean, 1e-12)), random_state=rng)
        if np.any(background > 0):  # the assay's false-positive events
            values = values + rng.poisson(background, size=values.shape)
        widths, cache = [], {}
        for x in values.tolist():
            if x not in cache:
                update = {field: x} if name == "CTC count" else {field: float(x),
                                                                 "tmem_convention": patient.tmem_convention or "10HPF"}
                term = loglik(patient.model_copy(update=update))[name]
                cache[x] = _width(excess, weights(log_prior + own_set + others + term), level)
            widths.append(cache[x])
        w_unmeasured = _width(excess, w0, level)
        rows.append({
            "biomarker": name,
            "observed": str(getattr(patient, field)) if measured else "not measured",
            "width_unmeasured": w_unmeasured, "expected_width_measured": float(np.mean(widths)),
            "narrowing": w_unmeasured - float(np.mean(widths)), "width_at_observed": at_obs,
            "probability_measured_value": np.nan,
        })
    everything = sum(base.values(), np.zeros(excess.size))
    w_mix = weights(log_prior + everything)
    p_true = float(w_mix[flags].sum())
    w_t = weights(log_prior + everything + np.where(flags, 0.0, -np.inf))
    w_f = weights(log_prior + everything + np.where(flags, -np.inf, 0.0))
    expected = p_true * _width(excess, w_t, level) + (1 - p_true) * _width(excess, w_f, level)
    w_unmeasured = _width(excess, w_mix, level)
    rows.append({
        "biomarker": "morphology",
        "observed": ", ".join(patient.morphology) or "not reported",
        "width_unmeasured": w_unmeasured, "expected_width_measured": expected,
        "narrowing": w_unmeasured - expected,
        "width_at_observed": _width(excess, w_t if own else w_f, level),
        "probability_measured_value": p_true,
    })
    return pd.DataFrame(rows)
