"""The population model: covariates -> per-patient model parameters, and virtual patients.

``Population()`` uses the shipped calibration (``data/calibration/population.toml``), ``Population.priors()`` the
uncalibrated priors (``data/population.toml``, each value with its source). Random effects are log-normal. A
patient's draws come from the streams of :mod:`chemomet.streams`, keyed by patient index, so they never depend on
how a cohort is chunked. Values fixed in a patient file's ``[parameters]`` table are applied here
(:func:`apply_fixed_parameters`), above the engine.
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import fields, replace
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chemomet.errors import InputError, printable
from chemomet.mechanisms import mechanism_settings
from chemomet.model.nodes import draw_node_counts, expected_positive_nodes
from chemomet.model.parameters import LN2, ModelSettings, PatientParameters, doorway_share
from chemomet.patient import SUBTYPES, Patient
from chemomet.streams import child, draws_at, root_seed
from chemomet.units import diameter_mm_to_cells


@lru_cache(maxsize=8)
def _parsed_toml(path: str, mtime_ns: int, size: int) -> dict:
    """A data file as parsed TOML, once per version of the file (the key holds its modification time and size)."""
    return tomllib.loads(Path(path).read_text(encoding="utf-8"))


def _read_toml(resource) -> dict:
    """A fresh (deep-copied, so the caller may change it) parse of a data file: ``Population()`` is made often, and
    parsing its TOML was most of the cost (about 2 ms, a deep copy 0.1 ms)."""
    if isinstance(resource, Path):
        st = resource.stat()
        return copy.deepcopy(_parsed_toml(str(resource), st.st_mtime_ns, st.st_size))
    return tomllib.loads(resource.read_text(encoding="utf-8"))  # not a plain file (a zip): parsed each time


def _load_population_toml() -> dict:
    """The uncalibrated priors, ``data/population.toml``."""
    return _read_toml(resources.files("chemomet.data").joinpath("population.toml"))


def _load_default_config() -> dict:
    """The shipped calibration (``data/calibration/population.toml``) when present, else the priors."""
    calibrated = resources.files("chemomet.data").joinpath("calibration", "population.toml")
    if calibrated.is_file():
        return _read_toml(calibrated)
    return _load_population_toml()


def _subtype_index(er_pos, pr_pos, her2_pos) -> np.ndarray:
    hr = np.asarray(er_pos, bool) | np.asarray(pr_pos, bool)
    her2 = np.asarray(her2_pos, bool)
    return np.select([hr & ~her2, hr & her2, ~hr & her2], [0, 1, 2], default=3)


class Population:
    """Covariate and random-effect model of breast cancer patients.

    ``Population()`` uses the shipped calibration (``data/calibration/population.toml``: TRANSBIG natural history
    and the published targets, see docs/calibration.md); :meth:`priors` the uncalibrated priors
    (``data/population.toml``); pass a dict with the same layout to override.

    It maps covariates (age in years, diameter in mm, grade, receptor status, morphology, TMEM in doorways per
    10 HPF) to :class:`~chemomet.model.parameters.PatientParameters`, with log-normal random effects: for real
    patients at their typical values (:meth:`typical`), for virtual patients drawn at random (:meth:`sample`).

    Parameters
    ----------
    config : dict, optional
        A population configuration with the layout of ``data/population.toml`` (tables ``cohort``, ``growth``,
        ``dissemination``, ``treatment``, ``microenvironment``, ``observation``); default: the shipped
        calibration, else the priors.

    Attributes
    ----------
    config : dict
        The configuration in use.

    Examples
    --------
    Sample five virtual patients; a patient's draws depend only on the seed and its index:

    >>> import numpy as np
    >>> pop = Population()
    >>> cov, params = pop.sample(5, rng=42)
    >>> cov.shape, params.n
    ((5, 11), 5)
    >>> list(cov.columns[:4])
    ['patient_index', 'age', 'diameter_mm', 'grade']
    >>> _, later = pop.sample(2, rng=42, start=3)  # patients 3 and 4 again
    >>> bool(np.array_equal(later.T0, params.T0[3:]))
    True

    Typical-value parameters of a real patient use the measured TMEM score (doorways per 10 HPF):

    >>> from chemomet.patient import example_patient
    >>> float(pop.typical(example_patient()).T0[0])
    32.0
    >>> Population.priors().settings.cells_per_mm3
    1000000.0
    """

    N_EFFECTS = 7  # standard-normal random effects per patient: DT, K, mu, s, eps, T0, endocrine sensitivity

    def __init__(self, config: dict[str, Any] | None = None):
        self.config = _load_default_config() if config is None else config

    @classmethod
    def priors(cls) -> Population:
        """The uncalibrated priors of ``data/population.toml`` (each value with its source)."""
        return cls(_load_population_toml())

    @cached_property
    def settings(self) -> ModelSettings:
        """The population-level :class:`ModelSettings`."""
        d, m, o = self.config["dissemination"], self.config["microenvironment"], self.config["observation"]
        return ModelSettings(
            k_macrophage_per_day=m["k_macrophage_per_day"],
            k_mena_per_day=m["k_mena_per_day"],
            colonisation_efficiency=d["colonisation_efficiency"],
            ctc_clearance_per_day=LN2 / d["ctc_half_life_h"] * 24.0,
            ctc_detection_efficiency=d["ctc_detection_efficiency"],
            ctc_count_dispersion=d["ctc_count_dispersion"],
            visible_cells=o["visible_metastasis_cells"],
            pcr_threshold_cells=self.config["treatment"]["pcr_threshold_cells"],
            cells_per_mm3=o["cells_per_mm3"],
            nodal_seeding_ratio=self.config["nodes"]["seeding_ratio"],
            node_count_dispersion=self.config["nodes"]["count_dispersion"],
            axillary_nodes=self.config["nodes"]["axillary_nodes"],
            nodal_clearance_per_day=self.config["nodes"]["clearance_per_day"],
            nodal_detection_cells=self.config["nodes"].get("detection_cells", 1.0),
            nodal_small_clearance_per_day=self.config["nodes"].get("small_deposit_clearance_per_day", 0.0),
            mechanisms=mechanism_settings(self.config.get("mechanisms")),
        )

    def with_mechanisms(self, mechanisms: dict[str, Any]) -> Population:
        """This population with the mechanisms of ``data/mechanisms.toml`` switched as ``mechanisms`` says.

        Parameters
        ----------
        mechanisms : dict
            Mechanism name -> ``True`` (on at its prior medians), ``False`` (off) or a table of parameter values
            (on); see :func:`chemomet.mechanisms.mechanism_settings`. Names not given keep their default.

        Returns
        -------
        Population
            A new population; its configuration carries the table as ``mechanisms``.

        Examples
        --------
        >>> pop = Population().with_mechanisms({"priming": True, "mobilisation": {"CXCR4": 2.0}})
        >>> pop.settings.mechanisms.priming_take_increase, pop.settings.mechanisms.release_per_inhibition("CXCR4")
        (1.0, 2.0)
        >>> Population().settings.mechanisms.is_default  # the shipped model
        True
        """
        return type(self)({**self.config, "mechanisms": dict(mechanisms)})

    # ------------------------------------------------------------------ covariates -> parameters
    def parameters(
        self, cov: pd.DataFrame, z: np.ndarray, u_resistant: np.ndarray, z_her2: np.ndarray | None = None
    ) -> PatientParameters:
        """Model parameters from covariates and random effects.

        Parameters
        ----------
        cov : pandas.DataFrame
            Columns ``age`` (years), ``diameter_mm`` (mm), ``grade``, ``er``, ``pr``, ``her2`` (bool positive),
            ``alveolar_or_trabecular`` (bool), ``tmem_10hpf`` (doorways per 10 HPF; NaN when not measured).
        z : numpy.ndarray
            Standard-normal effects, shape ``(n, 7)``.
        u_resistant : numpy.ndarray
            Uniforms, shape ``(n, 2)``: whether a resistant clone is present, and its fraction.
        z_her2 : numpy.ndarray, optional
            Standard normals, shape ``(n,)``, for the anti-HER2 sensitivity (:data:`ANTI_HER2_STREAM`); default 0
            (every HER2-positive patient a responder of median sensitivity, unless none responds).

        Returns
        -------
        PatientParameters
            One row per row of ``cov``.
        """
        g, d, t, me = (self.config[k] for k in ("growth", "dissemination", "treatment", "microenvironment"))
        unknown = [k for k in ("grade", "er", "pr", "her2") if pd.isna(cov[k]).any()]
        if unknown:
            raise ValueError(f"covariates {unknown} unknown: draw them first (Population.draw_unknown)")
        sub = _subtype_index(cov["er"], cov["pr"], cov["her2"])
        grade = cov["grade"].to_numpy(int)
        dt_med = np.array([g["doubling_time_median_days"][s] for s in SUBTYPES])[sub]
        dt = dt_med * np.asarray(g["grade_doubling_factor"])[grade - 1]
        dt = dt * np.where(cov["age"].to_numpy(float) < 50, g["age_under_50_doubling_factor"], 1.0)
        dt = dt * np.exp(g["doubling_time_sdlog"] * z[:, 0])
        log_n0 = np.log(diameter_mm_to_cells(cov["diameter_mm"].to_numpy(float), self.settings.cells_per_mm3))
        log_k = np.log(10.0) * (g["plateau_log10_cells_median"] + g["plateau_log10_cells_sd"] * z[:, 1])
        # the plateau must lie above the tumour at diagnosis and above metastasis visibility
        log_k = np.maximum(
            log_k, np.maximum(log_n0 + np.log(2.0), np.log(self.settings.visible_cells) + np.log(10.0))
        )
        beta = LN2 / (dt * (log_k - log_n0))
        alpha = beta * log_k

        tmem = cov["tmem_10hpf"].to_numpy(float)
        t0 = np.where(np.isnan(tmem), me["tmem_median_10hpf"] * np.exp(me["tmem_sdlog"] * z[:, 5]), tmem)
        t0 = np.maximum(t0, 0.5)  # a score of 0 still means some doorways exist below detection
        mu = (
            d["mu_median_per_cell_day"]
            * np.exp(d["mu_sdlog"] * z[:, 2])
            * (t0 / d["tmem_reference_10hpf"]) ** d["theta"]
        )

        s_med = np.array([t["chemosensitivity_median"][s] for s in SUBTYPES])[sub]
        s = (
            s_med
            * np.where(grade == 3, t["grade3_chemosensitivity_factor"], 1.0)
            * np.exp(t["chemosensitivity_sdlog"] * z[:, 3])
        )
        has_r = u_resistant[:, 0] < t["resistant_clone_probability"]
        lo, hi = t["resistant_fraction_log10_min"], t["resistant_fraction_log10_max"]
        f_r = np.where(has_r, 10.0 ** (lo + (hi - lo) * u_resistant[:, 1]), 0.0)

        morph = cov["alveolar_or_trabecular"].to_numpy(bool)
        eps = me["epsilon_median"] * np.where(morph, max(me["morphology_epsilon_factor"].values()), 1.0)
        eps = eps * np.exp(me["epsilon_sdlog"] * z[:, 4])
        n = len(cov)
        dorm = self.config.get("dormancy", {})
        q = np.full(n, float(dorm.get("dormant_fraction", 0.0)))
        wake = np.full(n, 1.0 / float(dorm.get("mean_dormancy_days", 1.0)) if q.any() else 0.0)
        er = cov["er"].to_numpy(bool)
        r_endo = t.get("endocrine_resistance_probability", 0.0)
        endocrine = receptor_sensitivity(
            er, z[:, 6], r_endo, t.get("endocrine_sensitivity_sdlog", 0.0), t.get("endocrine_sensitivity_median", 1.0)
        )
        rescue_rank = nonresponder_rank(er, z[:, 6], r_endo)
        her2 = receptor_sensitivity(
            cov["her2"].to_numpy(bool), np.zeros(n) if z_her2 is None else z_her2,
            t.get("anti_her2_resistance_probability", 0.0), t.get("anti_her2_sensitivity_sdlog", 0.0),
            t.get("anti_her2_sensitivity_median", 1.0),
        )
        return PatientParameters(
            alpha_per_day=alpha,
            beta_per_day=beta,
            log_cells0=log_n0,
            mu=mu,
            gamma=np.full(n, d["gamma"]),
            chemosensitivity=s,
            resistant_fraction=f_r,
            resistant_kill_ratio=np.full(n, t["resistant_kill_ratio"]),
            s_met=np.full(n, t["metastasis_kill_ratio"]),
            epsilon=eps,
            T0=t0,
            phi=doorway_share(t0, d["phi"], d["tmem_reference_10hpf"], d.get("phi_tmem_exponent", 0.0)),
            dormant_fraction=q,
            wake_rate_per_day=wake,
            endocrine_sensitivity=endocrine,
            her2_sensitivity=her2,
            endocrine_rescue_rank=rescue_rank,
        )

    # ------------------------------------------------------------------ one patient from a file
    def tmem_10hpf(self, patient: Patient) -> float:
        """The patient's TMEM score on the 10-HPF scale (NaN when not measured)."""
        if patient.tmem_score is None:
            return float("nan")
        factor = (
            1.0
            if patient.tmem_convention == "10HPF"
            else self.config["microenvironment"]["tmem_20hpf_per_10hpf"]
        )
        return patient.tmem_score / factor

    def covariates(self, patients: list[Patient]) -> pd.DataFrame:
        """The covariate table of real patients (one row each); an unmeasured HER2 (or PR of an ER-negative
        tumour) or an unreported grade is NaN, for :meth:`draw_unknown` to integrate over."""
        return pd.DataFrame(
            {
                "id": [p.id for p in patients],
                "age": [p.age for p in patients],
                "diameter_mm": [p.diameter_mm for p in patients],
                "grade": [np.nan if p.grade is None else p.grade for p in patients],
                "er": [p.er == "positive" for p in patients],
                # unknown (NaN) only where it matters: HER2, and PR of an ER-negative tumour
                "pr": [np.nan if "pr" in p.unknown_covariates else p.pr == "positive" for p in patients],
                "her2": [np.nan if p.her2 is None else p.her2 == "positive" for p in patients],
                "alveolar_or_trabecular": [
                    bool({"alveolar", "trabecular"} & set(p.morphology)) for p in patients
                ],
                "tmem_10hpf": [self.tmem_10hpf(p) for p in patients],
            }
        )

    def her2_positive_probability(self, hormone_receptor_positive: bool) -> float:
        """P(HER2+ | HR status) in the population: from the cohort's subtype probabilities (probability).

        Examples
        --------
        >>> pop = Population()
        >>> c = pop.config["cohort"]["subtype_probabilities"]
        >>> p = pop.her2_positive_probability(True)
        >>> bool(abs(p - c["HR+/HER2+"] / (c["HR+/HER2+"] + c["HR+/HER2-"])) < 1e-12)
        True
        """
        c = self.config["cohort"]["subtype_probabilities"]
        pos, neg = ("HR+/HER2+", "HR+/HER2-") if hormone_receptor_positive else ("HR-/HER2+", "TNBC")
        return c[pos] / (c[pos] + c[neg])

    PR_POSITIVE_GIVEN_ER_NEGATIVE = 0.0
    """P(PR+ | ER-) in the population: its cohort draws ER = HR status (no ER-/PR+ tumours), so an ER-negative
    tumour of unknown PR is hormone-receptor negative. Real series report a few percent ER-/PR+; the model's
    population has none."""

    def grade_from_uniform(self, u: np.ndarray) -> np.ndarray:
        """Grades 1-3 from uniforms by the cohort's grade probabilities (inverse CDF).

        Examples
        --------
        >>> Population().grade_from_uniform(np.array([0.0, 0.999])).tolist()
        [1, 3]
        """
        gp = np.asarray(self.config["cohort"]["grade_probabilities"], float)
        return 1 + np.searchsorted(np.cumsum(gp / gp.sum()), u, side="right").clip(0, 2)

    def draw_unknown(self, cov: pd.DataFrame, u: np.ndarray) -> pd.DataFrame:
        """Resolve unknown (NaN) ``pr``, ``her2`` and ``grade`` entries of a covariate table by drawing them from
        the population given what is known, with uniforms ``u`` of shape ``(len(cov), 3)`` (PR, HER2, grade).

        PR of an ER-negative tumour from :data:`PR_POSITIVE_GIVEN_ER_NEGATIVE`; HER2 from
        :meth:`her2_positive_probability` given the hormone-receptor status; grade from the cohort's grade
        probabilities (drawn independently of the subtype, as the cohort draws it).

        Returns
        -------
        pandas.DataFrame
            A copy with boolean ``er``, ``pr`` and ``her2`` and integer ``grade`` columns; known entries are kept.

        Examples
        --------
        >>> pop = Population()
        >>> cov = pd.DataFrame({"grade": [2, np.nan], "er": [True, True], "pr": [True, True], "her2": [np.nan] * 2})
        >>> out = pop.draw_unknown(cov, np.array([[0.5, 0.01, 0.5], [0.5, 0.99, 0.999]]))
        >>> out["her2"].tolist(), out["grade"].tolist()
        ([True, False], [2, 3])
        """
        out = cov.copy()
        pr_known = pd.to_numeric(out["pr"], errors="coerce").to_numpy(float)  # 1, 0 or NaN
        pr = np.where(np.isnan(pr_known), u[:, 0] < self.PR_POSITIVE_GIVEN_ER_NEGATIVE, pr_known > 0.5)
        hr = out["er"].to_numpy(bool) | pr
        her2_known = pd.to_numeric(out["her2"], errors="coerce").to_numpy(float)
        p_her2 = np.where(hr, self.her2_positive_probability(True), self.her2_positive_probability(False))
        her2 = np.where(np.isnan(her2_known), u[:, 1] < p_her2, her2_known > 0.5)
        grade_known = pd.to_numeric(out["grade"], errors="coerce").to_numpy(float)
        grade = np.where(np.isnan(grade_known), self.grade_from_uniform(u[:, 2]), np.nan_to_num(grade_known))
        out["er"], out["pr"], out["her2"] = out["er"].to_numpy(bool), pr, her2
        out["grade"] = grade.astype(int)
        return out

    def typical(self, patients: Patient | list[Patient]) -> PatientParameters:
        """Typical-value parameters of real patients: random effects at 0 (population medians given the
        covariates and measured biomarkers), then any value fixed in the patient's ``[parameters]`` table.
        A resistant clone is assumed present at the geometric mean of its prior range. Typical values need every
        covariate: an unknown one (:attr:`Patient.unknown_covariates`) raises :class:`InputError`
        (:func:`chemomet.assess` integrates over it instead)."""
        patients = [patients] if isinstance(patients, Patient) else list(patients)
        for p in patients:
            if p.unknown_covariates:
                name = p.unknown_covariates[-1]
                allowed = "1, 2 or 3" if name == "grade" else '"positive" or "negative"'
                raise InputError(
                    f"patient {printable(p.id)}: {name} is not given; allowed: {allowed} for simulate, which "
                    "predicts with typical values of known covariates (chemomet assess integrates over an unknown one)"
                )
        n = len(patients)
        t = self.config["treatment"]
        u = (
            np.column_stack([np.zeros(n), np.full(n, 0.5)])
            if t["resistant_clone_probability"] > 0
            else np.ones((n, 2))
        )
        params = self.parameters(self.covariates(patients), np.zeros((n, self.N_EFFECTS)), u)
        theta = self.config["dissemination"]["theta"]
        return apply_fixed_parameters(params, patients, theta=theta, phi_link=self.phi_link)

    @property
    def phi_link(self) -> tuple[float, float, float]:
        """``(phi_ref, T_ref, exponent)`` of :func:`doorway_share`."""
        d = self.config["dissemination"]
        return d["phi"], d["tmem_reference_10hpf"], d.get("phi_tmem_exponent", 0.0)

    # ------------------------------------------------------------------ virtual patients
    def sample_covariates(self, z: np.ndarray, u: np.ndarray) -> pd.DataFrame:
        """Covariates of virtual patients from standard normals ``z`` (n, 4) and uniforms ``u`` (n, 3); positive
        nodes are left at 0 here: :meth:`sample` draws them from the patient's parameters."""
        c = self.config["cohort"]
        n = z.shape[0]
        probs = np.array([c["subtype_probabilities"][s] for s in SUBTYPES], float)
        sub = np.searchsorted(np.cumsum(probs / probs.sum()), u[:, 0], side="right").clip(0, 3)
        grade = self.grade_from_uniform(u[:, 1])
        hr = sub <= 1
        return pd.DataFrame(
            {
                "age": np.clip(c["age_mean_years"] + c["age_sd_years"] * z[:, 0], 25, 90),
                "diameter_mm": np.clip(
                    c["diameter_median_mm"] * np.exp(c["diameter_sdlog"] * z[:, 1]), 5, 120
                ),
                "grade": grade,
                "er": hr,
                "pr": hr & (u[:, 2] < 0.8),
                "her2": (sub == 1) | (sub == 2),
                "ki67_percent": np.clip(c["ki67_median_percent"] * np.exp(c["ki67_sdlog"] * z[:, 2]), 1, 95),
                "nodes_positive": np.zeros(n, np.int64),  # drawn from the model in sample()
                "alveolar_or_trabecular": z[:, 3] > 0.5,
                "tmem_10hpf": np.full(n, np.nan),
            }
        )

    def sample(self, n: int, rng: int | np.random.Generator | np.random.SeedSequence = 0, start: int = 0):
        """Draw virtual patients ``start .. start + n - 1``.

        A patient's draws depend only on the seed and its index (blocks of :data:`chemomet.streams.BLOCK`), never
        on ``n`` or chunking.

        Parameters
        ----------
        n : int
            Number of patients (>= 0).
        rng : int, numpy.random.Generator or numpy.random.SeedSequence, default 0
            The seed.
        start : int, default 0
            Index of the first patient (>= 0).

        Returns
        -------
        covariates : pandas.DataFrame
            ``patient_index``, ``age`` (years), ``diameter_mm`` (mm), ``grade``, ``er``, ``pr``, ``her2`` (bool
            positive), ``ki67_percent`` (%), ``nodes_positive`` (lymph nodes), ``alveolar_or_trabecular`` (bool),
            ``tmem_10hpf`` (NaN: not measured; the drawn value is the parameter ``T0``).
        parameters : PatientParameters
            The patients' model parameters.

        Raises
        ------
        ValueError
            If ``n`` or ``start`` is negative.

        Examples
        --------
        >>> cov, params = Population().sample(3, rng=7, start=100)
        >>> cov["patient_index"].tolist(), params.n
        ([100, 101, 102], 3)
        """
        if n < 0 or start < 0:
            raise ValueError("n and start must be >= 0")
        root = root_seed(rng)
        index = np.arange(start, start + n)
        z, u = draws_at(root, index, self.N_EFFECTS + 4, 6)
        cov = self.sample_covariates(z[:, self.N_EFFECTS :], u[:, 2:])
        params = self.parameters(cov, z[:, : self.N_EFFECTS], u[:, :2], anti_her2_normals(root, index))
        # nodes follow the tumour's own history (docs/science.md §2.11), not an independent prior
        s = self.settings
        cov["nodes_positive"] = draw_node_counts(expected_positive_nodes(params, s), s.node_count_dispersion, u[:, 5])
        cov.insert(0, "patient_index", np.arange(start, start + n))
        return cov, params


ANTI_HER2_STREAM = 2**40 + 0x4845
"""Sub-stream key of the anti-HER2 sensitivity normals (far above any block index, so no block shares it)."""


def anti_her2_normals(root, index) -> np.ndarray:
    """One standard normal per patient index for the anti-HER2 sensitivity, from its own sub-stream of ``root``
    (so adding it moved none of the earlier draws).

    Examples
    --------
    >>> from chemomet.streams import root_seed
    >>> a = anti_her2_normals(root_seed(1), np.arange(5))
    >>> bool(np.array_equal(a[2:], anti_her2_normals(root_seed(1), np.arange(2, 5))))
    True
    """
    z, _ = draws_at(child(root, ANTI_HER2_STREAM), np.asarray(index, np.int64), 1, 0)
    return z[:, 0]


def receptor_sensitivity(
    positive, z, resistance_probability: float, sdlog: float, median: float = 1.0
) -> np.ndarray:
    """Sensitivity to a receptor-targeted therapy from one standard normal per patient (dimensionless): endocrine
    sensitivity ``e`` (receptor ER) or anti-HER2 sensitivity ``h`` (receptor HER2).

    The therapy acts through its receptor, so the sensitivity is 0 in receptor-negative disease. Among positive
    tumours a share ``resistance_probability`` does not respond (de novo resistance, and in trial data also
    non-adherence and weakly positive disease): 0 where ``Φ(z) < r``. The rest have a log-normal sensitivity
    (``median``, SD of log ``sdlog``) drawn from the remaining quantile ``(Φ(z) - r) / (1 - r)``, so one normal
    gives both.

    Examples
    --------
    >>> receptor_sensitivity(np.array([True, True, False]), np.array([-1.0, 0.5, 0.5]), 0.3, 0.5).round(3)
    array([0.   , 1.077, 0.   ])
    """
    from scipy.stats import norm

    pz = norm.cdf(np.asarray(z, dtype=float))
    r = float(resistance_probability)
    q = np.clip((pz - r) / max(1.0 - r, 1e-12), 1e-12, 1.0 - 1e-12)
    return np.where(np.asarray(positive, bool) & (pz >= r), median * np.exp(sdlog * norm.ppf(q)), 0.0)


def nonresponder_rank(positive, z, resistance_probability: float) -> np.ndarray:
    """Rank of each non-responding receptor-positive tumour among the non-responders (fraction in (0, 1); 0 for
    every other patient), used by drugs that reach part of them
    (:func:`chemomet.model.parameters.endocrine_sensitivity_for`).

    Non-responders are the positive tumours with ``Φ(z) < r`` (:func:`receptor_sensitivity`, the same normal), so
    ``Φ(z)/r`` ranks them uniformly; the ones nearest the responders rank highest.

    Examples
    --------
    >>> nonresponder_rank(np.array([True, True, False]), np.array([-1.0, 0.5, -1.0]), 0.3).round(3).tolist()
    [0.529, 0.0, 0.0]
    """
    from scipy.stats import norm

    pz = norm.cdf(np.asarray(z, dtype=float))
    r = float(resistance_probability)
    non = np.asarray(positive, bool) & (pz < r)
    return np.where(non, np.maximum(pz / max(r, 1e-12), 1e-12), 0.0)


FIXABLE_AS_IS = (
    "mu", "gamma", "chemosensitivity", "s_met", "resistant_fraction", "resistant_kill_ratio", "epsilon", "T0", "phi",
    "dormant_fraction",
)
"""Parameters a patient file may fix that are used exactly as given (growth is converted first)."""


def apply_fixed_parameters(
    params: PatientParameters, patients: list[Patient], theta: float = 0.0, phi_link: tuple | None = None
) -> PatientParameters:
    """Replace population values by those fixed in each patient's ``[parameters]`` table.

    A fixed ``T0`` without a fixed ``mu`` moves ``mu`` with it through the population link
    ``mu ∝ (T0 / T_ref)^theta``, so the two stay consistent; likewise the doorway share ``phi`` (see
    :func:`doorway_share`, given ``phi_link = (phi_ref, T_ref, exponent)``).

    Growth given as ``doubling_time_days`` (days) and/or ``plateau_cells`` (cells) is converted to
    ``alpha_per_day`` and ``beta_per_day`` (1/day) at the patient's size at diagnosis; ``dormancy_mean_days``
    (days) becomes ``wake_rate_per_day = 1 / dormancy_mean_days`` (1/day); the parameters of
    :data:`FIXABLE_AS_IS` are used as given. :meth:`Population.typical` calls it for real patients.

    Parameters
    ----------
    params : PatientParameters
        The population values, one row per patient of ``patients`` (in the same order).
    patients : list of Patient
        The patients whose :attr:`~chemomet.patient.Patient.parameters` are applied.
    theta : float, default 0.0
        Exponent of the link ``mu ∝ (T0 / T_ref)^theta`` (dimensionless; 0: ``mu`` does not move with ``T0``).
    phi_link : tuple of float, optional
        ``(phi_ref, T_ref, exponent)`` of :func:`doorway_share` (fraction, doorways per 10 HPF, dimensionless);
        None leaves ``phi`` as it is.

    Returns
    -------
    PatientParameters
        A new parameter set; ``params`` is not changed.

    Examples
    --------
    >>> import numpy as np
    >>> from chemomet.patient import example_patient, patient_from_dict
    >>> pop = Population()
    >>> patient = example_patient()
    >>> fixed = patient_from_dict({**patient.model_dump(), "parameters": {"T0": 64.0, "chemosensitivity": 2.0}})
    >>> base = pop.typical(patient)  # measured T0 = 32 doorways per 10 HPF
    >>> theta = pop.config["dissemination"]["theta"]
    >>> new = apply_fixed_parameters(base, [fixed], theta=theta, phi_link=pop.phi_link)
    >>> float(new.T0[0]), float(new.chemosensitivity[0])
    (64.0, 2.0)
    >>> bool(np.isclose(new.mu[0] / base.mu[0], 2.0**theta))  # mu follows T0 (doubled)
    True
    >>> bool(np.isclose(new.phi[0], doorway_share(64.0, *pop.phi_link)))
    True
    """
    values = {f.name: getattr(params, f.name).copy() for f in fields(params)}
    for i, p in enumerate(patients):
        fixed = p.parameters
        if "alpha_per_day" in fixed:
            values["alpha_per_day"][i], values["beta_per_day"][i] = (
                fixed["alpha_per_day"],
                fixed["beta_per_day"],
            )
        if "doubling_time_days" in fixed or "plateau_cells" in fixed:
            log_k = (
                np.log(fixed["plateau_cells"])
                if "plateau_cells" in fixed
                else values["alpha_per_day"][i] / values["beta_per_day"][i]
            )
            if "doubling_time_days" in fixed:
                dt = fixed["doubling_time_days"]
            else:
                dt = LN2 / (values["alpha_per_day"][i] - values["beta_per_day"][i] * values["log_cells0"][i])
            beta = LN2 / (dt * (log_k - values["log_cells0"][i]))
            values["beta_per_day"][i], values["alpha_per_day"][i] = beta, beta * log_k
        if "T0" in fixed and "mu" not in fixed:
            values["mu"][i] *= (max(fixed["T0"], 0.5) / values["T0"][i]) ** theta
        if "T0" in fixed and "phi" not in fixed and phi_link is not None:
            values["phi"][i] = doorway_share(max(fixed["T0"], 0.5), *phi_link)
        for name in FIXABLE_AS_IS:
            if name in fixed:
                values[name][i] = fixed[name]
        if "dormancy_mean_days" in fixed:
            values["wake_rate_per_day"][i] = 1.0 / fixed["dormancy_mean_days"]
    return replace(params, **values)
