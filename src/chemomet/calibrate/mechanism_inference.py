"""The strengths of the prometastatic mechanisms from human data, and which mechanism sets the data prefer
(issue 12, item 2; docs/calibration.md, "Mechanism strengths from human data").

**Data.** Every record of ``data/evidence.toml`` with a value that maps onto a model output the mechanisms move
(:func:`mechanism_data`):

* EBCTCG 2018, NACT vs the same chemotherapy after surgery, distant-recurrence rate ratio 1.02 (0.92–1.14): a
  Gaussian on the log scale, SE from the 95% interval (0.055); model: :func:`chemomet.calibrate.targets.ebctcg`
  (AC ×4, ``ln S_NACT(15) / ln S_adjuvant(15)`` of the cohort-mean DMFS).
* Bidard 2018, share of patients with ≥ 1 CTC per 7.5 mL before surgery after NACT (17% of 1,200) over before
  NACT (25.2% of 1,574): the ratio 0.675, a Gaussian on the log scale with the SE of two independent binomial
  proportions (0.077); model: the same ratio of expected prevalences (negative-binomial count) at surgery and at
  diagnosis, NACT with the default regimen (AC → weekly paclitaxel).
* Kasimir-Bauer 2016, share CTC-positive after NACT (8%) over before (24%) by AdnaTest in 135 patients: the ratio
  0.333, SE of the log 0.33 (two binomials of 135); a second measurement, independent of Bidard's CellSearch
  studies, of the same model summary (:attr:`Datum.model_key`), so the two CTC data share the model's value.

The other records are left out, each for a stated reason (:data:`SKIPPED_EVIDENCE`): the paired TMEM ratio of
Karagiannis 2017 has no value in the file, GeparQuattro's CTC fall (Riethdorf 2010) is very likely inside Bidard's
meta-analysis, and the rest either do not depend on the mechanisms (outcomes without chemotherapy, CTCs before it)
or are not outputs of the model (metastatic-disease trials, marrow cells). Posteriors are reported for each subset
of :data:`DATA_COMBINATIONS`, among them all data but Bidard's ratio.

**Likelihood.** On a fixed virtual cohort with common random numbers
(:class:`~chemomet.calibrate.cohort.VirtualCohort`) each summary is a deterministic, smooth function of the
strengths, so the likelihood of the published numbers is a product of Gaussians on the log scale: that *is* the
likelihood, not an approximation chosen for convenience. Its variance is the published SE squared plus the
sampling variance of the finite virtual cohort (bootstrap over its patients at the prior medians,
:func:`simulation_se`).

**Parameters** (:func:`strength_priors`, on the scale of ``data/mechanisms.toml`` and ``data/population.toml``):
the population median of the microenvironment response ``ε_med`` (doorway mechanism; the calibration's ×/÷ 4
range at 95%), the priming take increase ``π`` and window ``W`` (days), the release per unit chemotherapy stress
``ν_D`` and per unit CXCR4 inhibition ``ν_CXCR4``. Each prior is log-normal, truncated to its bounds. Mechanism
sets (:data:`MECHANISM_SETS`): doorway only, doorway + priming, doorway + mobilisation, all (with drug toxicity,
which none of the trials' arms can show).

**Inference.** No simulation-based-inference library is installed in the project's environment (pyabc, elfi and
sbi are absent; sbi needs torch), so the posterior is computed by adaptive importance sampling from the priors
(:func:`fit_mechanism_set`): a first round from the prior widened 1.5 times, then rounds from Gaussians fitted to
the weighted draws, all rounds weighted by the deterministic mixture of their proposals (so the weights stay
bounded by the likelihood times a constant). The evidence (marginal likelihood) of a set is the mean of the
weights; posterior model probabilities follow with equal prior probabilities (:func:`model_probabilities`).
Optionally every draw takes a random member of the calibration ensemble (``population="ensemble"``), so the
strengths are fitted jointly with the calibrated population's uncertainty, which they marginalise.

Units: ``ε_med``, ``π``, ``ν_D`` and ``ν_CXCR4`` are dimensionless, ``W`` is in days; summaries are ratios
(dimensionless); log-likelihoods and log-evidences are natural logs of densities of the log-scale summaries.

**Modules**, each with one job (imports point down this list):

* :mod:`chemomet.calibrate.mechanism_inference` (this one): the whole run, :func:`run_inference`, behind
  ``chemomet calibrate mechanisms``; it re-exports the public names of the others;
* :mod:`chemomet.calibrate.mechanism_report`: the Must-show table, its Markdown, the figure and the files;
* :mod:`chemomet.calibrate.mechanism_sampler`: adaptive importance sampling, posteriors, evidences, model
  probabilities, posterior-predictive summaries;
* :mod:`chemomet.calibrate.mechanism_likelihood`: the published data, the records left out, the log-likelihood;
* :mod:`chemomet.calibrate.mechanism_summaries`: the mechanism sets and the model's simulated summaries;
* :mod:`chemomet.calibrate.mechanism_priors`: the priors of the strengths.
"""

from __future__ import annotations

import time as _time

from chemomet.calibrate.cohort import VirtualCohort
from chemomet.calibrate.mechanism_likelihood import (
    DATA_COMBINATIONS,
    SKIPPED_EVIDENCE,
    Datum,
    log_likelihood,
    mechanism_data,
    synthetic_data,
)
from chemomet.calibrate.mechanism_priors import EPSILON_BOUNDS, Z90, StrengthPrior, strength_priors
from chemomet.calibrate.mechanism_report import (
    MIN_ESS,
    MOVED_SHIFT,
    MOVED_WIDTH,
    format_table,
    mechanism_table_rows,
    plot_posteriors,
    write_results,
)
from chemomet.calibrate.mechanism_sampler import (
    FIRST_ROUND_SD,
    IDENTIFIED_WIDTH_RATIO,
    SHRINK_DRAWS,
    SetFit,
    fit_mechanism_set,
    model_probabilities,
    posterior_predictive,
    posterior_summary,
)
from chemomet.calibrate.mechanism_summaries import (
    MECHANISM_OF,
    MECHANISM_SETS,
    draw_config,
    mechanisms_table,
    simulate_summaries,
    simulation_se,
)

__all__ = [
    "DATA_COMBINATIONS",
    "EPSILON_BOUNDS",
    "FIRST_ROUND_SD",
    "IDENTIFIED_WIDTH_RATIO",
    "MECHANISM_OF",
    "MECHANISM_SETS",
    "MIN_ESS",
    "MOVED_SHIFT",
    "MOVED_WIDTH",
    "RECOVERY_TRUTH",
    "SHRINK_DRAWS",
    "SKIPPED_EVIDENCE",
    "Z90",
    "Datum",
    "SetFit",
    "StrengthPrior",
    "draw_config",
    "fit_mechanism_set",
    "format_table",
    "log_likelihood",
    "mechanism_data",
    "mechanism_table_rows",
    "mechanisms_table",
    "model_probabilities",
    "plot_posteriors",
    "posterior_predictive",
    "posterior_summary",
    "run_inference",
    "simulate_summaries",
    "simulation_se",
    "strength_priors",
    "synthetic_data",
    "write_results",
]

RECOVERY_TRUTH = {
    "epsilon_median": 4.0,
    "priming_take_increase": 2.0,
    "priming_days": 14.0,
    "release_per_stress": 0.2,
    "release_per_cxcr4": 1.0,
}
"""The known strengths of the simulated-data check of :func:`run_inference` (a doorway response 4 times the
calibrated median, priming at twice its prior median; the rest at their prior medians)."""


def run_inference(
    base: dict | None = None,
    patients: int = 1000,
    draws: int = 240,
    seed: int = 11,
    rounds: int = 4,
    population: str = "ensemble",
    sets: tuple[str, ...] = tuple(MECHANISM_SETS),
    recovery: bool = True,
    progress=None,
) -> dict:
    """Fit every mechanism set to the data, compare the sets and check recovery on simulated data.

    Parameters
    ----------
    base : dict, optional
        Population configuration (default: the shipped calibration).
    patients : int, default 1000
        Virtual patients of the fixed cohort.
    draws : int, default 240
        Simulated draws per mechanism set (and for the recovery check).
    seed : int, default 11
        Seed of the cohort and of the draws.
    rounds : int, default 4
        Adaptive rounds per set.
    population : {"ensemble", "point"}, default "ensemble"
        ``ensemble``: each draw takes a random member of the calibration ensemble (fitted jointly with the
        population's uncertainty); ``point``: the calibrated point estimate.
    sets : tuple of str
        Mechanism sets to fit (keys of :data:`MECHANISM_SETS`).
    recovery : bool, default True
        Also fit the ``all`` set to pseudo-data simulated at :data:`RECOVERY_TRUTH` with the real data's SEs.
    progress : callable, optional
        Called with one line of text per step.

    Returns
    -------
    dict
        ``data`` (the likelihood's numbers and SEs), ``skipped_evidence``, ``simulation_se``, ``priors``,
        ``fits`` (per set and data combination: :func:`posterior_summary`, plus rounds and seconds),
        ``model_probabilities`` (per data combination), ``table`` (:func:`mechanism_table_rows`),
        ``predictive`` (posterior-predictive summaries), ``recovery``, ``settings`` and ``seconds``.

    Examples
    --------
    >>> res = run_inference(patients=40, draws=8, population="point", recovery=False)  # doctest: +SKIP
    """
    from chemomet.calibrate.shipped import calibrated_config, load_ensemble

    say = progress or (lambda msg: None)
    t0 = _time.perf_counter()
    base = calibrated_config() if base is None else base
    priors = strength_priors()
    data = mechanism_data()
    cohort = VirtualCohort.draw(base, patients, seed)
    ensemble = load_ensemble() if population == "ensemble" else None
    medians = {k: p.median for k, p in priors.items()}
    say(f"{patients} virtual patients (seed {seed}); {draws} draws per set in {rounds} rounds; population {population}")
    sim_se = simulation_se(draw_config(base, medians, "all"), cohort, seed=seed)
    say("virtual-cohort sampling SE of the logs: " + ", ".join(f"{k} {v:.4f}" for k, v in sim_se.items()))
    fits, out_fits = {}, {}
    for name in sets:
        fit = fit_mechanism_set(name, base, cohort, data, draws, rounds, seed, sim_se, ensemble, priors, say)
        fits[name] = fit
        out_fits[name] = {
            "seconds": round(fit.seconds, 1), "rounds": fit.rounds,
            "posterior": {c: posterior_summary(fit, {k: data[k] for k in keys}, sim_se, priors)
                          for c, keys in DATA_COMBINATIONS.items()},
            "prior_check": posterior_summary(fit, {}, sim_se, priors),
        }
    probs = {}
    for c in DATA_COMBINATIONS:
        le = {n: out_fits[n]["posterior"][c]["log_evidence"] for n in sets}
        probs[c] = {"log_evidence": le, "probability": model_probabilities(le)}
    predictive = {n: posterior_predictive(fits[n], data, sim_se) for n in sets}
    rec = None
    if recovery and "all" in sets:
        truth_summ = simulate_summaries(draw_config(base, RECOVERY_TRUTH, "all"), cohort)
        pseudo = synthetic_data(truth_summ, {k: d.se_log for k, d in data.items()})
        say("recovery check: the 'all' set fitted to pseudo-data at " +
            ", ".join(f"{k} {v:g}" for k, v in RECOVERY_TRUTH.items()))
        fit = fit_mechanism_set("all", base, cohort, pseudo, draws, rounds, seed + 1, None, None, priors, say)
        post = posterior_summary(fit, pseudo, None, priors)
        rec = {
            "truth": RECOVERY_TRUTH, "pseudo_data": {k: d.value for k, d in pseudo.items()},
            "se_log": {k: d.se_log for k, d in pseudo.items()}, "population": "point",
            "posterior": post,
            "covered": {k: bool(s["q05"] <= RECOVERY_TRUTH[k] <= s["q95"]) for k, s in post["strengths"].items()},
            "seconds": round(fit.seconds, 1),
        }
    result = {
        "data": {k: {"value": d.value, "se_log": d.se_log, "evidence": list(d.evidence), "label": d.label,
                     "how": d.how} for k, d in data.items()},
        "skipped_evidence": SKIPPED_EVIDENCE,
        "simulation_se": sim_se,
        "priors": {k: {"symbol": p.symbol, "mechanism": p.mechanism, "median": p.median, "sdlog": p.sdlog,
                       "lower": p.lower, "upper": p.upper, "unit": p.unit, "q05": p.interval()[0],
                       "q95": p.interval()[1], "source": p.source} for k, p in priors.items()},
        "fits": out_fits,
        "model_probabilities": probs,
        "predictive": predictive,
        "recovery": rec,
        "settings": {"patients": patients, "draws_per_set": draws, "rounds": rounds, "seed": seed,
                     "population": population, "sets": list(sets),
                     "identified_rule": f"posterior 90% width < {IDENTIFIED_WIDTH_RATIO:.0%} of the prior's (log)",
                     "moved_rule": f"alone, the datum shifts the median > {MOVED_SHIFT} prior SD of the log or "
                                   f"narrows the 90% interval below {MOVED_WIDTH:.0%} of the prior's"},
    }
    result["table"] = mechanism_table_rows(result)
    result["seconds"] = round(_time.perf_counter() - t0, 1)
    say(f"done in {result['seconds']:.0f} s")
    return result

