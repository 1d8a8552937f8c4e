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

The other records are left out, each for a stated reason (:data:`SKIPPED_EVIDENCE`): the paired TMEM ratio of
Karagiannis 2017 has no value in the file, and the rest either do not depend on the mechanisms (outcomes
without chemotherapy, CTCs before it) or are not outputs of the model (metastatic-disease trials, marrow cells).

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
"""

from __future__ import annotations

import copy
import json
import math
import time as _time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import norm

from chemomet.calibrate.cohort import VirtualCohort, simulate_arm
from chemomet.calibrate.targets import EBCTCG_REGIMEN, EPSILON_PRIOR_FACTOR, PCR_REGIMEN
from chemomet.model.dissemination import probability_of_no_ctc

Z90 = float(norm.ppf(0.95))
"""Standard-normal quantile of a central 90% interval."""

IDENTIFIED_WIDTH_RATIO = 0.5
"""A strength is *identified* when its posterior 90% interval is narrower than this share of its prior's (widths
on the log scale)."""

MOVED_SHIFT = 0.25
"""A datum *moved* a strength when, alone, it shifts the posterior median by more than this many prior SDs of the
log (plus twice the median's Monte Carlo error, ``2.5 / sqrt(ESS)``), or narrows the 90% interval below
:data:`MOVED_WIDTH` of the prior's (with an effective sample size of at least :data:`MIN_ESS`)."""

MOVED_WIDTH = 0.8
"""See :data:`MOVED_SHIFT`."""

MIN_ESS = 30.0
"""Below this effective sample size a posterior's interval is too noisy to call a strength identified or not
(:func:`mechanism_table_rows` then says ``None``, undetermined)."""

SHRINK_DRAWS = 3.0
"""Pseudo-draws of the prior's covariance in the adaptive proposals of :func:`fit_mechanism_set` (shrinkage)."""

FIRST_ROUND_SD = 1.5
"""SD (on the standardised log scale) of the first round's Gaussian proposal: the prior widened 1.5 times, so a
datum far in the prior's tail is reached and the weights ``prior / proposal`` stay below 1.5 per strength."""

EPSILON_BOUNDS = (0.01, 50.0)
"""Bounds of ``ε_med`` (dimensionless): the range the calibration searched (docs/science.md §4.3)."""

MECHANISM_SETS: dict[str, tuple[str, ...]] = {
    "doorway": ("epsilon_median",),
    "doorway+priming": ("epsilon_median", "priming_take_increase", "priming_days"),
    "doorway+mobilisation": ("epsilon_median", "release_per_stress", "release_per_cxcr4"),
    "all": ("epsilon_median", "priming_take_increase", "priming_days", "release_per_stress", "release_per_cxcr4"),
}
"""The mechanism sets compared, each with the strengths it carries (``all`` also switches drug toxicity on; no
arm of the data has an accompanying drug, so it changes nothing here)."""

MECHANISM_OF = {
    "epsilon_median": "doorway",
    "priming_take_increase": "priming",
    "priming_days": "priming",
    "release_per_stress": "mobilisation",
    "release_per_cxcr4": "mobilisation",
}
"""Strength -> the mechanism it belongs to."""

SKIPPED_EVIDENCE: dict[str, str] = {
    "karagiannis2017_tmem_paired_human": "no value in the evidence file (not read from the source); the model's "
    "TMEM ratio at surgery moves strongly with eps_med, so this number would identify it",
    "ebctcg2018_dr15_nact": "absolute level: the case mix of the trials is not matched (the calibration misses it "
    "at 0.291 against 0.382, docs/science.md 4.2); the ratio to the adjuvant arm is used instead",
    "ebctcg2018_dr15_adjuvant": "as ebctcg2018_dr15_nact",
    "pathak2019_distant_metastasis": "a meta-analysis of largely the same randomised trials as EBCTCG 2018: using "
    "both would count the same patients twice",
    "yan2017_ctc_rate_after_treatment": "mixes neoadjuvant, adjuvant and metastatic treatment; agrees with the "
    "Bidard ratio used (0.68 vs 0.675)",
    "pierga2008_ctc_after_nact": "REMAGUS02 (97 patients) is among the studies of the Bidard 2018 meta-analysis",
    "rohan2014_tmem_odds_ratio": "no chemotherapy: the mechanisms act only from the first dose (already a "
    "calibration target for theta)",
    "bidard2018_hr_1_ctc": "baseline CTCs, before any chemotherapy: unchanged by the mechanisms (also _2, _3_4, "
    "_5plus; janni2016_ctc_ddfs likewise)",
    "fortress_pfs_overall": "metastatic disease with eribulin: not an output of the model (also the other "
    "FORTRESS records)",
    "liles2003_plerixafor_cd34_240": "marrow CD34+ cells of healthy volunteers: not tumour cells, not a model "
    "output (used for the prior of nu_CXCR4; also liles2003_plerixafor_cd34_80 and the donor records)",
    "enliven_severe_liver_injury": "the toxicity probabilities set the drug toxicity's schedule changes (data/"
    "drugs.toml); no arm of the data gives a drug, so they are not part of this likelihood",
    "pan2017_late_dr_t1n0": "dormancy exit is not a switchable mechanism of the engine yet",
}
"""Records of ``data/evidence.toml`` with a value that are *not* in the likelihood, and why (record id -> reason)."""


# ---------------------------------------------------------------------------------------------- priors
@dataclass(frozen=True)
class StrengthPrior:
    """Prior of one mechanism strength: log-normal with ``median`` and ``sdlog``, truncated to ``[lower, upper]``.

    Sampling and densities work on the standardised log ``z = ln(value / median) / sdlog`` (a standard normal
    truncated to ``[z(lower), z(upper)]``).

    Attributes
    ----------
    name : str
        Key of the strength (e.g. ``"priming_take_increase"``).
    mechanism : str
        The mechanism of ``data/mechanisms.toml`` it belongs to.
    symbol : str
        Its symbol in docs/science.md (``"π"``).
    median, sdlog : float
        Prior median (in ``unit``) and SD of the natural log.
    lower, upper : float
        Bounds (in ``unit``; ``lower`` may be 0).
    unit : str
        Unit of the value.
    source : str
        Where the prior comes from.

    Examples
    --------
    >>> p = strength_priors()["priming_take_increase"]
    >>> float(p.value(0.0)), [round(v, 2) for v in p.interval()]
    (1.0, [0.32, 3.16])
    """

    name: str
    mechanism: str
    symbol: str
    median: float
    sdlog: float
    lower: float
    upper: float
    unit: str
    source: str

    @property
    def z_bounds(self) -> tuple[float, float]:
        """The bounds on the standardised log scale (``-inf`` for a lower bound of 0)."""
        lo = -np.inf if self.lower <= 0 else math.log(self.lower / self.median) / self.sdlog
        hi = np.inf if not np.isfinite(self.upper) else math.log(self.upper / self.median) / self.sdlog
        return lo, hi

    @property
    def log_mass(self) -> float:
        """Natural log of the standard-normal mass inside the bounds (the truncation's normalisation)."""
        lo, hi = self.z_bounds
        return float(np.log(norm.cdf(hi) - norm.cdf(lo)))

    def value(self, z):
        """The value(s) at standardised log ``z`` (in ``unit``)."""
        return self.median * np.exp(self.sdlog * np.asarray(z, float))

    def z_of(self, value):
        """The standardised log of ``value`` (in ``unit``, > 0)."""
        return np.log(np.asarray(value, float) / self.median) / self.sdlog

    def logpdf_z(self, z) -> np.ndarray:
        """Log density of the truncated prior on the standardised log scale (``-inf`` outside the bounds)."""
        z = np.asarray(z, float)
        lo, hi = self.z_bounds
        inside = (z >= lo) & (z <= hi)
        return np.where(inside, norm.logpdf(z) - self.log_mass, -np.inf)

    def sample_z(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` draws of the standardised log from the truncated prior (inverse CDF)."""
        lo, hi = self.z_bounds
        u = rng.random(n)
        return norm.ppf(norm.cdf(lo) + u * (norm.cdf(hi) - norm.cdf(lo)))

    def interval(self, level: float = 0.90) -> tuple[float, float]:
        """Central ``level`` interval of the prior (in ``unit``), truncation included."""
        lo, hi = self.z_bounds
        a, b = norm.cdf(lo), norm.cdf(hi)
        q = np.array([(1 - level) / 2, (1 + level) / 2])
        z = norm.ppf(a + q * (b - a))
        return float(self.value(z[0])), float(self.value(z[1]))


def strength_priors() -> dict[str, StrengthPrior]:
    """The priors of the mechanism strengths fitted here, from ``data/mechanisms.toml`` and the calibrated
    population (``ε_med``: its calibrated value, ×/÷ :data:`~chemomet.calibrate.targets.EPSILON_PRIOR_FACTOR` at
    95%, within :data:`EPSILON_BOUNDS`).

    Returns
    -------
    dict[str, StrengthPrior]
        ``epsilon_median``, ``priming_take_increase``, ``priming_days`` (days), ``release_per_stress``,
        ``release_per_cxcr4``.

    Examples
    --------
    >>> p = strength_priors()
    >>> list(p)
    ['epsilon_median', 'priming_take_increase', 'priming_days', 'release_per_stress', 'release_per_cxcr4']
    >>> round(p["epsilon_median"].sdlog, 3), p["priming_days"].unit
    (0.707, 'days')
    """
    from chemomet.calibrate.shipped import calibrated_config
    from chemomet.mechanisms import load_mechanisms

    specs = load_mechanisms()
    eps = float(calibrated_config()["microenvironment"]["epsilon_median"])

    def of(name, mechanism, symbol, prior, unit):
        return StrengthPrior(name, mechanism, symbol, prior.median, prior.sdlog, prior.lower, prior.upper, unit,
                             prior.source)

    out = {
        "epsilon_median": StrengthPrior(
            "epsilon_median", "doorway", "ε_med", eps, math.log(EPSILON_PRIOR_FACTOR) / 1.96, EPSILON_BOUNDS[0],
            EPSILON_BOUNDS[1], "dimensionless",
            "calibrated epsilon_median (not identified by the targets) x/÷ 4 at 95%, the calibration ensemble's "
            "range; bounds: the calibration's search range",
        ),
        "priming_take_increase": of("priming_take_increase", "priming", "π",
                                    specs["priming"].parameters["take_increase"], "dimensionless"),
        "priming_days": of("priming_days", "priming", "W", specs["priming"].parameters["days_after_last_dose"],
                           "days"),
        "release_per_stress": of("release_per_stress", "mobilisation", "ν_D",
                                 specs["mobilisation"].parameters["per_unit_stress"], "dimensionless"),
        "release_per_cxcr4": of("release_per_cxcr4", "mobilisation", "ν_CXCR4", specs["mobilisation"].targets["CXCR4"],
                                "dimensionless"),
    }
    return out


# ---------------------------------------------------------------------------------------------- data
@dataclass(frozen=True)
class Datum:
    """One published number in the likelihood: ``log(value)`` ~ Normal(``log(model summary)``, ``se_log``²).

    Attributes
    ----------
    key : str
        Name of the model summary it is compared with (:func:`simulate_summaries`).
    value : float
        The published number (dimensionless ratio).
    se_log : float
        Its standard error on the natural-log scale.
    evidence : tuple of str
        Ids of the ``data/evidence.toml`` records it comes from.
    label : str
        What it is, in words.
    how : str
        How the SE was obtained.

    Examples
    --------
    >>> d = mechanism_data()["ebctcg_rate_ratio"]
    >>> d.value, round(d.se_log, 4)
    (1.02, 0.0547)
    """

    key: str
    value: float
    se_log: float
    evidence: tuple[str, ...]
    label: str
    how: str


def mechanism_data(records=None) -> dict[str, Datum]:
    """The published numbers of ``data/evidence.toml`` the likelihood uses (see the module's description).

    Parameters
    ----------
    records : list of chemomet.evidence.Evidence, optional
        The evidence records (default: the shipped file, :func:`chemomet.evidence.load_evidence`).

    Returns
    -------
    dict[str, Datum]
        ``ebctcg_rate_ratio`` (EBCTCG 2018) and ``ctc_ratio_surgery_baseline`` (Bidard 2018).

    Examples
    --------
    >>> d = mechanism_data()
    >>> list(d)
    ['ebctcg_rate_ratio', 'ctc_ratio_surgery_baseline']
    >>> round(d["ctc_ratio_surgery_baseline"].value, 3), round(d["ctc_ratio_surgery_baseline"].se_log, 3)
    (0.675, 0.077)
    """
    from chemomet.evidence import load_evidence

    by_id = {e.id: e for e in (load_evidence() if records is None else records)}
    eb = by_id["ebctcg2018_distant_recurrence"]
    level = eb.interval.level or 0.95
    z = float(norm.ppf(0.5 + level / 2))
    se_eb = (math.log(eb.interval.high) - math.log(eb.interval.low)) / (2 * z)
    before, after = by_id["bidard2018_ctc_prevalence_before_nact"], by_id["bidard2018_ctc_prevalence_before_surgery"]
    p0, n0, p1, n1 = before.value, before.population.n, after.value, after.population.n
    se_ctc = math.sqrt((1 - p0) / (n0 * p0) + (1 - p1) / (n1 * p1))
    return {
        "ebctcg_rate_ratio": Datum(
            "ebctcg_rate_ratio", float(eb.value), se_eb, (eb.id,),
            "NACT vs adjuvant, distant-recurrence rate ratio (EBCTCG 2018)",
            f"SE of the log from the {level:.0%} interval {eb.interval.low}-{eb.interval.high}",
        ),
        "ctc_ratio_surgery_baseline": Datum(
            "ctc_ratio_surgery_baseline", p1 / p0, se_ctc, (before.id, after.id),
            "share with >= 1 CTC before surgery over before NACT (Bidard 2018: 17% of 1,200 / 25.2% of 1,574)",
            "SE of the log ratio of two independent binomial proportions (the patients are not paired here)",
        ),
    }


# ---------------------------------------------------------------------------------------------- the model
def mechanisms_table(values: dict[str, float], mechanism_set: str) -> dict:
    """The population's ``[mechanisms]`` table for strengths ``values`` under a set of :data:`MECHANISM_SETS`.

    Parameters
    ----------
    values : dict[str, float]
        Strengths by name (units of :func:`strength_priors`); those the set does not carry are ignored.
    mechanism_set : str
        A key of :data:`MECHANISM_SETS`.

    Returns
    -------
    dict
        The table for :func:`chemomet.mechanisms.mechanism_settings` (``ε_med`` is not in it: it is a
        population value, set by :func:`draw_config`).

    Examples
    --------
    >>> mechanisms_table({"priming_take_increase": 2.0, "priming_days": 10.0}, "doorway+priming")
    {'priming': {'take_increase': 2.0, 'days_after_last_dose': 10.0}}
    >>> mechanisms_table({}, "doorway")
    {}
    """
    names = MECHANISM_SETS[mechanism_set]
    table: dict = {}
    if "priming_take_increase" in names:
        table["priming"] = {"take_increase": float(values["priming_take_increase"]),
                            "days_after_last_dose": float(values["priming_days"])}
    if "release_per_stress" in names:
        table["mobilisation"] = {"per_unit_stress": float(values["release_per_stress"]),
                                 "CXCR4": float(values["release_per_cxcr4"])}
    if mechanism_set == "all":
        table["drug_toxicity"] = True
    return table


def draw_config(base: dict, values: dict[str, float], mechanism_set: str) -> dict:
    """A copy of the population configuration ``base`` with the strengths ``values`` of ``mechanism_set``.

    Parameters
    ----------
    base : dict
        Population configuration (``population.toml`` layout); not changed.
    values : dict[str, float]
        Strengths by name (``epsilon_median`` dimensionless; see :func:`strength_priors`).
    mechanism_set : str
        A key of :data:`MECHANISM_SETS`.

    Returns
    -------
    dict

    Examples
    --------
    >>> from chemomet.calibrate.shipped import calibrated_config
    >>> cfg = draw_config(calibrated_config(), {"epsilon_median": 3.0}, "doorway")
    >>> cfg["microenvironment"]["epsilon_median"], cfg["mechanisms"]
    (3.0, {})
    """
    cfg = copy.deepcopy(base)
    if "epsilon_median" in values:
        cfg["microenvironment"]["epsilon_median"] = float(values["epsilon_median"])
    cfg["mechanisms"] = mechanisms_table(values, mechanism_set)
    return cfg


def simulate_summaries(config: dict, cohort: VirtualCohort, detail: bool = False) -> dict:
    """The model's values of the published summaries on a fixed cohort (common random numbers).

    Three arms: NACT and adjuvant with :data:`~chemomet.calibrate.targets.EBCTCG_REGIMEN` (AC ×4, 15 years), and
    NACT with :data:`~chemomet.calibrate.targets.PCR_REGIMEN` over one year for the CTCs.

    Parameters
    ----------
    config : dict
        Population configuration, with its ``mechanisms`` table.
    cohort : VirtualCohort
        The patients.
    detail : bool, default False
        Also return the per-patient arrays the summaries are means of (for :func:`simulation_se`).

    Returns
    -------
    dict
        ``ebctcg_rate_ratio`` (``ln S_NACT(15) / ln S_adj(15)``), ``ctc_ratio_surgery_baseline`` (share with
        ≥ 1 CTC at surgery over at diagnosis), ``ctc_prevalence_baseline``, ``ctc_prevalence_surgery``,
        ``dr15_nact``, ``dr15_adjuvant`` (probabilities), ``tmem_ratio_surgery_baseline`` (mean ratio; no datum)
        and, with ``detail``, ``per_patient`` (arrays ``s_nact``, ``s_adjuvant``, ``ctc0``, ``ctc1``).

    Examples
    --------
    >>> from chemomet.calibrate.shipped import calibrated_config
    >>> cfg = calibrated_config()
    >>> s = simulate_summaries(cfg, VirtualCohort.draw(cfg, 30, seed=1))
    >>> 0 < s["ctc_ratio_surgery_baseline"] < 1, 0.5 < s["ebctcg_rate_ratio"] < 1.5
    (True, True)
    """
    from chemomet.population import Population

    s_n = simulate_arm(config, cohort, "nact", EBCTCG_REGIMEN).summary["dmfs_15y"].to_numpy()
    s_a = simulate_arm(config, cohort, "surgery-first", EBCTCG_REGIMEN).summary["dmfs_15y"].to_numpy()
    nact = simulate_arm(config, cohort, "nact", PCR_REGIMEN, horizon_years=1.0).summary
    k = Population(config).settings.ctc_count_dispersion
    c0 = 1.0 - probability_of_no_ctc(nact["ctc_expected_baseline"].to_numpy(), k)
    c1 = 1.0 - probability_of_no_ctc(nact["ctc_expected_surgery"].to_numpy(), k)
    out = _summaries_of(s_n, s_a, c0, c1)
    out["tmem_ratio_surgery_baseline"] = float(nact["tmem_ratio_surgery_baseline"].mean())
    if detail:
        out["per_patient"] = {"s_nact": s_n, "s_adjuvant": s_a, "ctc0": c0, "ctc1": c1}
    return out


def _summaries_of(s_n, s_a, c0, c1) -> dict:
    mn, ma, p0, p1 = float(np.mean(s_n)), float(np.mean(s_a)), float(np.mean(c0)), float(np.mean(c1))
    return {
        "ebctcg_rate_ratio": float(np.log(mn) / np.log(ma)),
        "ctc_ratio_surgery_baseline": p1 / p0 if p0 > 0 else float("nan"),
        "ctc_prevalence_baseline": p0,
        "ctc_prevalence_surgery": p1,
        "dr15_nact": 1 - mn,
        "dr15_adjuvant": 1 - ma,
    }


def simulation_se(config: dict, cohort: VirtualCohort, n_boot: int = 200, seed: int = 0) -> dict[str, float]:
    """Sampling SE of each summary's log that comes from the finite virtual cohort (bootstrap over its patients).

    Parameters
    ----------
    config : dict
        Population configuration at which it is measured (the prior medians in :func:`run_inference`).
    cohort : VirtualCohort
        The patients.
    n_boot : int, default 200
        Bootstrap resamples.
    seed : int, default 0
        Seed of the resampling.

    Returns
    -------
    dict[str, float]
        Summary key (of :func:`mechanism_data`) -> SE of its natural log.

    Examples
    --------
    >>> from chemomet.calibrate.shipped import calibrated_config
    >>> cfg = calibrated_config()
    >>> se = simulation_se(cfg, VirtualCohort.draw(cfg, 30, seed=1), n_boot=20)
    >>> sorted(se), all(v > 0 for v in se.values())
    (['ctc_ratio_surgery_baseline', 'ebctcg_rate_ratio'], True)
    """
    pp = simulate_summaries(config, cohort, detail=True)["per_patient"]
    rng = np.random.default_rng(seed)
    n = len(pp["s_nact"])
    logs = {"ebctcg_rate_ratio": [], "ctc_ratio_surgery_baseline": []}
    for _ in range(n_boot):
        i = rng.integers(0, n, n)
        s = _summaries_of(pp["s_nact"][i], pp["s_adjuvant"][i], pp["ctc0"][i], pp["ctc1"][i])
        for key in logs:
            if s[key] > 0 and np.isfinite(s[key]):
                logs[key].append(math.log(s[key]))
    return {k: float(np.std(v, ddof=1)) for k, v in logs.items()}


# ---------------------------------------------------------------------------------------------- inference
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

        ``extra_se`` adds a variance per datum (the virtual cohort's sampling SE of the log).
        """
        ll = np.zeros(len(self.log_prior))
        for key, d in data.items():
            se = math.sqrt(d.se_log**2 + (extra_se or {}).get(key, 0.0) ** 2)
            s = np.asarray(self.summaries[key], float)
            with np.errstate(invalid="ignore", divide="ignore"):
                r = (np.log(d.value) - np.log(s)) / se
            ll += np.where(np.isfinite(r), -0.5 * r**2 - math.log(se * math.sqrt(2 * math.pi)), -np.inf)
        return ll

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
        Added SE of the log per datum (:func:`simulation_se`).
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
            lw = log_prior + _loglik_so_far(sums, data, extra_se, len(log_prior)) - log_q
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
                s = dict.fromkeys(data, np.nan)
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
        lw = log_prior + _loglik_so_far(sums, data, extra_se, n_total) - log_q
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


def _loglik_so_far(sums, data, extra_se, n):
    ll = np.zeros(n)
    for key, d in data.items():
        se = math.sqrt(d.se_log**2 + (extra_se or {}).get(key, 0.0) ** 2)
        s = np.asarray(sums.get(key, [np.nan] * n), float)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = (np.log(d.value) - np.log(s)) / se
        ll += np.where(np.isfinite(r), -0.5 * r**2 - math.log(se * math.sqrt(2 * math.pi)), -np.inf)
    return ll


def posterior_summary(fit: SetFit, data: dict[str, Datum], extra_se=None, priors=None) -> dict:
    """Posterior of each strength of a fitted set, its evidence and effective sample size.

    Parameters
    ----------
    fit : SetFit
        From :func:`fit_mechanism_set`.
    data : dict[str, Datum]
        The data to condition on (any subset of the fit's: the same draws are reweighted; empty: the prior).
    extra_se : dict[str, float], optional
        Added SE of the log per datum (:func:`simulation_se`).
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


def synthetic_data(summaries: dict, se_log: dict[str, float], real: dict[str, Datum] | None = None) -> dict:
    """Pseudo-data equal to the model's summaries at a known truth, with chosen SEs (simulated-data checks).

    Parameters
    ----------
    summaries : dict
        :func:`simulate_summaries` at the truth.
    se_log : dict[str, float]
        Summary key -> SE of its log for the pseudo-datum.
    real : dict[str, Datum], optional
        The real data whose labels are reused (default :func:`mechanism_data`).

    Returns
    -------
    dict[str, Datum]

    Examples
    --------
    >>> d = synthetic_data({"ebctcg_rate_ratio": 1.1}, {"ebctcg_rate_ratio": 0.01})
    >>> d["ebctcg_rate_ratio"].value, d["ebctcg_rate_ratio"].evidence
    (1.1, ('synthetic',))
    """
    real = mechanism_data() if real is None else real
    return {
        k: Datum(k, float(summaries[k]), float(se), ("synthetic",), f"synthetic: {real[k].label}" if k in real else k,
                 "chosen for the check")
        for k, se in se_log.items()
    }


# ---------------------------------------------------------------------------------------------- the run
DATA_COMBINATIONS = {
    "all data": ("ebctcg_rate_ratio", "ctc_ratio_surgery_baseline"),
    "EBCTCG only": ("ebctcg_rate_ratio",),
    "CTC fall only": ("ctc_ratio_surgery_baseline",),
}
"""The subsets of the data each posterior is reported for (the same draws reweighted)."""

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
    predictive = {n: _predictive(fits[n], data, sim_se) for n in sets}
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


def _predictive(fit: SetFit, data, sim_se) -> dict:
    out = {}
    for c, keys in {"prior": (), **DATA_COMBINATIONS}.items():
        lw = fit.log_weights({k: data[k] for k in keys}, sim_se)
        if not np.isfinite(lw).any():
            continue
        w = np.exp(lw - np.max(lw))
        row = {}
        for key, d in data.items():
            s = fit.summaries[key]
            ok = np.isfinite(s) & (w > 0)
            q = _weighted_quantiles(s[ok], w[ok], [0.05, 0.5, 0.95])
            se = math.sqrt(d.se_log**2 + sim_se.get(key, 0.0) ** 2)
            row[key] = {"q05": float(q[0]), "median": float(q[1]), "q95": float(q[2]), "observed": d.value,
                        "z_observed_vs_median": float((math.log(d.value) - math.log(q[1])) / se)}
        out[c] = row
    return out


def mechanism_table_rows(result: dict, fit_set: str = "all") -> list[dict]:
    """The Must-show table of issue 12: per strength, prior, posterior (median, 90%), posterior probability that
    its mechanism is on, the data that moved it and whether it is identified.

    Parameters
    ----------
    result : dict
        :func:`run_inference`'s result (before or after the table is added).
    fit_set : str, default "all"
        The set whose posteriors are shown (every strength is in ``all``).

    Returns
    -------
    list of dict
        One row per strength: ``strength``, ``symbol``, ``mechanism``, ``unit``, ``prior`` (median, q05, q95),
        ``posterior`` (per data combination: median, q05, q95, width_ratio, shift_prior_sd, identified),
        ``ess`` and ``p_mechanism_on`` (per data combination), ``moved_by`` (data ids), ``identified`` (all
        data; None when its effective sample size is below :data:`MIN_ESS`) and ``identified_by_data`` (the same
        per data combination).

    Examples
    --------
    >>> mechanism_table_rows({"fits": {}, "priors": {}, "model_probabilities": {}})
    []
    """
    fits = result["fits"]
    if fit_set not in fits:
        return []
    rows = []
    probs = result["model_probabilities"]
    for name, p in result["priors"].items():
        post = {c: fits[fit_set]["posterior"][c]["strengths"].get(name) for c in DATA_COMBINATIONS}
        mech = p["mechanism"]
        on = {c: float(sum(v for s, v in probs[c]["probability"].items() if name in MECHANISM_SETS[s]))
              for c in probs}
        moved = []
        for c, keys in DATA_COMBINATIONS.items():
            ess_c = fits[fit_set]["posterior"][c].get("ess") or 0.0
            if len(keys) != 1 or post[c] is None or ess_c < 2:
                continue
            s = post[c]
            # a shift must clear the Monte Carlo error of a weighted median (about 1.25 / sqrt(ESS) prior SDs, twice);
            # a narrowing counts only with enough effective draws
            if abs(s["shift_prior_sd"]) > MOVED_SHIFT + 2.5 / math.sqrt(ess_c) or (
                ess_c >= MIN_ESS and s["width_ratio"] < MOVED_WIDTH
            ):
                moved.append(keys[0])
        ess = {c: fits[fit_set]["posterior"][c].get("ess") for c in DATA_COMBINATIONS}
        by_data = {c: None if not post[c] or (ess[c] or 0) < MIN_ESS else bool(post[c]["identified"])
                   for c in DATA_COMBINATIONS}
        rows.append({
            "strength": name, "symbol": p["symbol"], "mechanism": mech, "unit": p["unit"],
            "prior": {"median": p["median"], "q05": p["q05"], "q95": p["q95"]},
            "posterior": post, "ess": ess, "p_mechanism_on": on, "moved_by": moved,
            "identified": by_data["all data"], "identified_by_data": by_data,
        })
    return rows


def plot_posteriors(result: dict, path: str | Path) -> None:
    """Figure of prior and posterior 90% intervals of every strength, and posterior model probabilities.

    Parameters
    ----------
    result : dict
        :func:`run_inference`'s result.
    path : str or pathlib.Path
        The PNG to write (atomically).

    Examples
    --------
    >>> plot_posteriors(result, "mechanisms.png")  # doctest: +SKIP
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from chemomet.fileio import atomic_write

    rows = result["table"]
    combos = list(DATA_COMBINATIONS)
    colours = {"all data": "C3", "EBCTCG only": "C0", "CTC fall only": "C2"}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    ax = axes[0]
    for i, r in enumerate(rows):
        y = len(rows) - 1 - i
        pm, lo, hi = r["prior"]["median"], r["prior"]["q05"], r["prior"]["q95"]
        ax.plot([lo / pm, hi / pm], [y + 0.3] * 2, color="0.5", lw=3)
        ax.plot([1.0], [y + 0.3], "o", color="0.5")
        for j, c in enumerate(combos):
            s = r["posterior"][c]
            if s is None:
                continue
            yy = y + 0.1 - 0.2 * j
            ax.plot([s["q05"] / pm, s["q95"] / pm], [yy] * 2, color=colours[c], lw=2)
            ax.plot([s["median"] / pm], [yy], "o", color=colours[c])
    ax.set_xscale("log")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"{r['symbol']} ({r['mechanism']})" for r in reversed(rows)])
    ax.axvline(1.0, color="0.8", lw=0.8, zorder=0)
    ax.set_xlabel("strength / prior median (median and 90% interval)")
    handles = [plt.Line2D([], [], color="0.5", lw=3, label="prior")] + [
        plt.Line2D([], [], color=colours[c], lw=2, label=f"posterior, {c}") for c in combos]
    ax.legend(handles=handles, fontsize=8, loc="lower right")
    ax.set_title("Mechanism strengths ('all' set)")
    ax = axes[1]
    sets = list(result["model_probabilities"]["all data"]["probability"])
    x = np.arange(len(sets))
    for j, c in enumerate(combos):
        p = [result["model_probabilities"][c]["probability"][s] for s in sets]
        ax.bar(x + (j - 1) * 0.25, p, width=0.25, color=colours[c], label=c)
    ax.axhline(1 / len(sets), color="0.5", ls="--", lw=0.8, label="prior")
    ax.set_xticks(x)
    ax.set_xticklabels([s.replace("+", "+\n") for s in sets], fontsize=8)
    ax.set_ylabel("posterior model probability")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.set_title("Mechanism sets")
    fig.tight_layout()
    atomic_write(Path(path), lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)


def write_results(result: dict, out: str | Path) -> dict[str, str]:
    """Write ``mechanism_inference.json`` and ``mechanism_inference.png`` into the folder ``out`` (atomically).

    Parameters
    ----------
    result : dict
        :func:`run_inference`'s result.
    out : str or pathlib.Path
        An existing folder.

    Returns
    -------
    dict[str, str]
        ``json`` and ``figure`` paths.

    Examples
    --------
    >>> write_results(result, "out")  # doctest: +SKIP
    """
    from chemomet.fileio import atomic_write, json_safe

    out = Path(out)
    j, f = out / "mechanism_inference.json", out / "mechanism_inference.png"
    text = json.dumps(json_safe(result), indent=1, allow_nan=False)
    atomic_write(j, lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))
    plot_posteriors(result, f)
    return {"json": str(j), "figure": str(f)}


def format_table(result: dict) -> str:
    """The Must-show table as Markdown (the numbers of :func:`mechanism_table_rows`).

    Parameters
    ----------
    result : dict
        :func:`run_inference`'s result.

    Returns
    -------
    str

    Examples
    --------
    >>> format_table({"table": []}).startswith("| mechanism | strength |")
    True
    """
    def f(x):
        return f"{x:.3g}"

    word = {True: "yes", False: "no", None: f"undetermined (ESS < {MIN_ESS:.0f})"}

    lines = [
        "| mechanism | strength | prior median (90%) | posterior, all data | posterior, EBCTCG only | "
        "P(mechanism on), all data / EBCTCG only | moved by | identified, all data / EBCTCG only |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["table"]:
        pr = r["prior"]
        a, e = r["posterior"]["all data"], r["posterior"]["EBCTCG only"]
        on = r["p_mechanism_on"]
        lines.append(
            f"| {r['mechanism']} | {r['symbol']} ({r['unit']}) | {f(pr['median'])} ({f(pr['q05'])}–{f(pr['q95'])}) | "
            f"{f(a['median'])} ({f(a['q05'])}–{f(a['q95'])}) | {f(e['median'])} ({f(e['q05'])}–{f(e['q95'])}) | "
            f"{on.get('all data', float('nan')):.2f} / {on.get('EBCTCG only', float('nan')):.2f} | "
            f"{', '.join(r['moved_by']) or 'none'} | {word[r['identified']]} / "
            f"{word[r.get('identified_by_data', {}).get('EBCTCG only')]} |"
        )
    return "\n".join(lines)
