"""The data side of the mechanism inference (issue 12, item 2): the published numbers of ``data/evidence.toml``
that the likelihood uses (:func:`mechanism_data`), the records left out and why (:data:`SKIPPED_EVIDENCE`), the
subsets of the data each posterior is reported for (:data:`DATA_COMBINATIONS`), the Gaussian log-likelihood on
the log scale (:func:`log_likelihood`) and pseudo-data for simulated-data checks (:func:`synthetic_data`).

Every datum is a dimensionless ratio; its SE is on the natural-log scale; log-likelihoods are natural logs of
densities of the log-scale summaries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

__all__ = ["DATA_COMBINATIONS", "SKIPPED_EVIDENCE", "Datum", "log_likelihood", "mechanism_data", "synthetic_data"]

SKIPPED_EVIDENCE: dict[str, str] = {
    "karagiannis2017_tmem_paired_human": "no value in the evidence file (not read from the source); the model's "
    "TMEM ratio at surgery moves strongly with eps_med, so this number would identify it",
    "ebctcg2018_dr15_nact": "absolute level: the case mix of the trials is not matched (the calibration misses it "
    "at 0.446 against 0.382, docs/science.md 4.2); the ratio to the adjuvant arm is used instead",
    "ebctcg2018_dr15_adjuvant": "as ebctcg2018_dr15_nact",
    "pathak2019_distant_metastasis": "a meta-analysis of largely the same randomised trials as EBCTCG 2018: using "
    "both would count the same patients twice",
    "yan2017_ctc_rate_after_treatment": "mixes neoadjuvant, adjuvant and metastatic treatment; agrees with the "
    "Bidard ratio used (0.68 vs 0.675)",
    "pierga2008_ctc_after_nact": "REMAGUS02 (97 patients) is among the studies of the Bidard 2018 meta-analysis",
    "riethdorf2010_ctc_after_nact": "GeparQuattro (CellSearch, 213 and 207 patients) is very likely among the 21 "
    "CellSearch studies of the Bidard 2018 meta-analysis (Riethdorf is its co-author): using both would count the "
    "same patients twice (also riethdorf2010_ctc_before_nact); its ratio, 0.49, lies between the two used",
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
    "mathiesen2012_dtc_at_surgery": "disseminated cells in bone marrow: not an output of the model, which has no "
    "marrow pool",
}
"""Records of ``data/evidence.toml`` with a value that are *not* in the likelihood, and why (record id -> reason)."""


DATA_COMBINATIONS = {
    "all data": ("ebctcg_rate_ratio", "ctc_ratio_surgery_baseline", "ctc_ratio_kasimirbauer"),
    "EBCTCG only": ("ebctcg_rate_ratio",),
    "CTC fall only": ("ctc_ratio_surgery_baseline",),
    "CTC fall, Kasimir-Bauer only": ("ctc_ratio_kasimirbauer",),
    "all but Bidard": ("ebctcg_rate_ratio", "ctc_ratio_kasimirbauer"),
}
"""The subsets of the data each posterior is reported for (the same draws reweighted): ``CTC fall only`` is the
Bidard 2018 ratio (CellSearch), ``CTC fall, Kasimir-Bauer only`` the second, independent one (AdnaTest), and
``all but Bidard`` asks what is identified without the Bidard ratio, which the model cannot reach under the
priors (docs/calibration.md)."""


@dataclass(frozen=True)
class Datum:
    """One published number in the likelihood: ``log(value)`` ~ Normal(``log(model summary)``, ``se_log``²).

    Attributes
    ----------
    key : str
        Name of the datum (its key in :func:`mechanism_data`); also the model summary it is compared with, unless
        ``summary`` names another.
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
    summary : str, default ""
        Key of the model summary (:func:`~chemomet.calibrate.mechanism_summaries.simulate_summaries`) it is
        compared with when that is not ``key`` (two studies measuring the same quantity); see :attr:`model_key`.

    Examples
    --------
    >>> d = mechanism_data()["ebctcg_rate_ratio"]
    >>> d.value, round(d.se_log, 4), d.model_key
    (1.02, 0.0547, 'ebctcg_rate_ratio')
    >>> mechanism_data()["ctc_ratio_kasimirbauer"].model_key
    'ctc_ratio_surgery_baseline'
    """

    key: str
    value: float
    se_log: float
    evidence: tuple[str, ...]
    label: str
    how: str
    summary: str = ""

    @property
    def model_key(self) -> str:
        """The model summary this datum is compared with (``summary``, or ``key`` when that is empty)."""
        return self.summary or self.key


def mechanism_data(records=None) -> dict[str, Datum]:
    """The published numbers of ``data/evidence.toml`` the likelihood uses (see the module's description).

    Parameters
    ----------
    records : list of chemomet.evidence.Evidence, optional
        The evidence records (default: the shipped file, :func:`chemomet.evidence.load_evidence`).

    Returns
    -------
    dict[str, Datum]
        ``ebctcg_rate_ratio`` (EBCTCG 2018), ``ctc_ratio_surgery_baseline`` (Bidard 2018) and
        ``ctc_ratio_kasimirbauer`` (Kasimir-Bauer 2016, compared with the same model summary as Bidard's).

    Examples
    --------
    >>> d = mechanism_data()
    >>> list(d)
    ['ebctcg_rate_ratio', 'ctc_ratio_surgery_baseline', 'ctc_ratio_kasimirbauer']
    >>> round(d["ctc_ratio_surgery_baseline"].value, 3), round(d["ctc_ratio_surgery_baseline"].se_log, 3)
    (0.675, 0.077)
    >>> round(d["ctc_ratio_kasimirbauer"].value, 3), round(d["ctc_ratio_kasimirbauer"].se_log, 3)
    (0.333, 0.33)
    """
    from chemomet.evidence import load_evidence

    by_id = {e.id: e for e in (load_evidence() if records is None else records)}
    eb = by_id["ebctcg2018_distant_recurrence"]
    level = eb.interval.level or 0.95
    z = float(norm.ppf(0.5 + level / 2))
    se_eb = (math.log(eb.interval.high) - math.log(eb.interval.low)) / (2 * z)
    before, after = by_id["bidard2018_ctc_prevalence_before_nact"], by_id["bidard2018_ctc_prevalence_before_surgery"]
    p0, n0, p1, n1 = before.value, before.population.n, after.value, after.population.n
    se_ctc = _se_log_ratio(p0, n0, p1, n1)
    kb0, kb1 = by_id["kasimirbauer2016_ctc_before_nact"], by_id["kasimirbauer2016_ctc_after_nact"]
    q0, m0, q1, m1 = kb0.value, kb0.population.n, kb1.value, kb1.population.n
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
        "ctc_ratio_kasimirbauer": Datum(
            "ctc_ratio_kasimirbauer", q1 / q0, _se_log_ratio(q0, m0, q1, m1), (kb0.id, kb1.id),
            "share CTC-positive after NACT over before NACT (Kasimir-Bauer 2016, AdnaTest: 8% / 24% of 135)",
            "SE of the log ratio of two independent binomial proportions of 135 (pairing not read: conservative "
            "if the two samples are positively correlated)",
            summary="ctc_ratio_surgery_baseline",
        ),
    }


def _se_log_ratio(p0: float, n0: int, p1: float, n1: int) -> float:
    """SE of ``ln(p1 / p0)`` for two independent binomial proportions (delta method)."""
    return math.sqrt((1 - p0) / (n0 * p0) + (1 - p1) / (n1 * p1))



def log_likelihood(summaries: dict, data: dict[str, Datum], extra_se: dict[str, float] | None, n: int) -> np.ndarray:
    """Log-likelihood of ``data`` at each of ``n`` draws: a Gaussian on the natural-log scale per datum.

    Parameters
    ----------
    summaries : dict
        Summary key -> the model's value at each draw (dimensionless; NaN where not simulated). Each datum is
        compared with its :attr:`Datum.model_key`; a summary missing here counts as not simulated.
    data : dict[str, Datum]
        The published numbers (:func:`mechanism_data`, or a subset, or pseudo-data).
    extra_se : dict[str, float] or None
        Added SE of the log per model summary (the virtual cohort's sampling SE); its variance adds to the datum's.
    n : int
        Number of draws.

    Returns
    -------
    numpy.ndarray
        Natural log of the likelihood at each draw (``-inf`` where a summary is not simulated or not positive).

    Examples
    --------
    >>> d = synthetic_data({"ebctcg_rate_ratio": 1.0}, {"ebctcg_rate_ratio": 0.1})
    >>> ll = log_likelihood({"ebctcg_rate_ratio": [1.0, float("nan")]}, d, None, 2)
    >>> round(float(ll[0]), 4), float(ll[1])
    (1.3836, -inf)
    """
    ll = np.zeros(n)
    for d in data.values():
        se = math.sqrt(d.se_log**2 + (extra_se or {}).get(d.model_key, 0.0) ** 2)
        s = np.asarray(summaries.get(d.model_key, [np.nan] * n), float)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = (np.log(d.value) - np.log(s)) / se
        ll += np.where(np.isfinite(r), -0.5 * r**2 - math.log(se * math.sqrt(2 * math.pi)), -np.inf)
    return ll

def synthetic_data(summaries: dict, se_log: dict[str, float], real: dict[str, Datum] | None = None) -> dict:
    """Pseudo-data equal to the model's summaries at a known truth, with chosen SEs (simulated-data checks).

    Parameters
    ----------
    summaries : dict
        :func:`~chemomet.calibrate.mechanism_summaries.simulate_summaries` at the truth.
    se_log : dict[str, float]
        Datum key -> SE of its log for the pseudo-datum. A key of ``real`` takes the value of that datum's model
        summary (:attr:`Datum.model_key`); any other key names a summary directly.
    real : dict[str, Datum], optional
        The real data whose labels and model summaries are reused (default :func:`mechanism_data`).

    Returns
    -------
    dict[str, Datum]

    Examples
    --------
    >>> d = synthetic_data({"ebctcg_rate_ratio": 1.1}, {"ebctcg_rate_ratio": 0.01})
    >>> d["ebctcg_rate_ratio"].value, d["ebctcg_rate_ratio"].evidence
    (1.1, ('synthetic',))
    >>> kb = synthetic_data({"ctc_ratio_surgery_baseline": 0.2}, {"ctc_ratio_kasimirbauer": 0.3})
    >>> kb["ctc_ratio_kasimirbauer"].value, kb["ctc_ratio_kasimirbauer"].model_key
    (0.2, 'ctc_ratio_surgery_baseline')
    """
    real = mechanism_data() if real is None else real
    out = {}
    for k, se in se_log.items():
        target = real[k].model_key if k in real else k
        label = f"synthetic: {real[k].label}" if k in real else k
        out[k] = Datum(k, float(summaries[target]), float(se), ("synthetic",), label, "chosen for the check",
                       summary="" if target == k else target)
    return out
