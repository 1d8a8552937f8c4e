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
        beta = d.get("mu_growth_exponent", 0.0)  # the growth link of μ; the nodes share it unless they set their own
        return ModelSettings(
            k_macrophage_per_day=m["k_macrophage_per_day"],
            k_mena_per_day=m["k_mena_per_day"],
            colonisation_efficiency=d["colonisation_efficiency"],
            ctc_clearance_per_day=LN2 / d["ctc_half_life_h"] * 24.0,
            ctc_detection_efficiency=d["ctc_detection_efficiency"],
            ctc_count_dispersion=d["ctc_count_dispersion"],
            ctc_background_per_sample=d.get("ctc_background_per_sample", 0.0),
            visible_cells=o["visible_metastasis_cells"],
            pcr_threshold_cells=self.config["treatment"]["pcr_threshold_cells"],
            cells_per_mm3=o["cells_per_mm3"],
            nodal_seeding_ratio=self.config["nodes"]["seeding_ratio"],
            node_count_dispersion=self.config["nodes"]["count_dispersion"],
            axillary_nodes=self.config["nodes"]["axillary_nodes"],
            nodal_clearance_per_day=self.config["nodes"]["clearance_per_day"],
            nodal_detection_cells=self.config["nodes"].get("detection_cells", 1.0),
            nodal_small_clearance_per_day=self.config["nodes"].get("small_deposit_clearance_per_day", 0.0),
            nodal_growth_exponent_offset=beta - self.config["nodes"].get("growth_exponent", beta),
            mu_growth_reference_days=d.get("mu_growth_reference_days", 250.0),
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
        return _covariate_parameters(_MemberConstants([_parameter_constants(self)]), cov, z, u_resistant, z_her2)

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
        """The covariate table of real patients (one row each); an unmeasured HER2 or PR or an unreported grade is
        NaN, for :meth:`draw_unknown` to integrate over."""
        return pd.DataFrame(
            {
                "id": [p.id for p in patients],
                "age": [p.age for p in patients],
                "diameter_mm": [p.diameter_mm for p in patients],
                "grade": [np.nan if p.grade is None else p.grade for p in patients],
                "er": [p.er == "positive" for p in patients],
                # unknown (NaN) where not given: HER2, and PR (HR status of an ER-negative tumour, PR-loss factor)
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

    PR_POSITIVE_GIVEN_ER_POSITIVE = 0.8
    """P(PR+ | ER+) in the population (its cohort draws PR positive in 80% of hormone-receptor-positive tumours);
    an ER-positive tumour of unknown PR draws it with this probability, which matters through the PR-loss growth
    factor (``growth.pr_negative_doubling_factor``)."""

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

        PR from :data:`PR_POSITIVE_GIVEN_ER_POSITIVE` or :data:`PR_POSITIVE_GIVEN_ER_NEGATIVE`; HER2 from
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
        p_pr = np.where(
            out["er"].to_numpy(bool), self.PR_POSITIVE_GIVEN_ER_POSITIVE, self.PR_POSITIVE_GIVEN_ER_NEGATIVE
        )
        pr = np.where(np.isnan(pr_known), u[:, 0] < p_pr, pr_known > 0.5)
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
        return self.with_fixed(params, patients)

    def with_fixed(self, params: PatientParameters, patients: list[Patient]) -> PatientParameters:
        """:func:`apply_fixed_parameters` under this population's links (TMEM and growth links of ``mu``, doorway
        share): the values each patient's ``[parameters]`` table fixes, the linked ones moved with them.

        Examples
        --------
        >>> from chemomet.patient import example_patient
        >>> pop = Population()
        >>> p = example_patient()
        >>> float(pop.with_fixed(pop.typical(p), [p.model_copy(update={"parameters": {"T0": 0.5}})]).T0[0])
        0.5
        """
        d = self.config["dissemination"]
        return apply_fixed_parameters(params, patients, theta=d["theta"], phi_link=self.phi_link,
                                      growth_exponent=d.get("mu_growth_exponent", 0.0))

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
                "pr": hr & (u[:, 2] < self.PR_POSITIVE_GIVEN_ER_POSITIVE),
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


def _parameter_constants(pop: Population) -> dict[str, Any]:
    """The population-level values :meth:`Population.parameters` uses, read from ``pop.config`` (each call: the
    configuration may have been changed since the last), scalars as Python or NumPy floats and the per-subtype and
    per-grade tables as arrays; derived constants are formed here exactly as the formulas form them."""
    g, d, t, me = (pop.config[k] for k in ("growth", "dissemination", "treatment", "microenvironment"))
    dorm = pop.config.get("dormancy", {})
    dormant = float(dorm.get("dormant_fraction", 0.0))
    return {
        "dt_med": np.array([g["doubling_time_median_days"][s] for s in SUBTYPES]),
        "grade_doubling": np.asarray(g["grade_doubling_factor"]),
        "age_doubling": g["age_under_50_doubling_factor"],
        "pr_negative_doubling": g.get("pr_negative_doubling_factor", 1.0),
        "dt_sdlog": g["doubling_time_sdlog"],
        "cells_per_mm3": pop.settings.cells_per_mm3,
        "k_median": g["plateau_log10_cells_median"],
        "k_sd": g["plateau_log10_cells_sd"],
        "log_k_floor": np.log(pop.settings.visible_cells) + np.log(10.0),
        "tmem_median": me["tmem_median_10hpf"],
        "tmem_sdlog": me["tmem_sdlog"],
        "mu_median": d["mu_median_per_cell_day"],
        "mu_sdlog": d["mu_sdlog"],
        "tmem_ref": d["tmem_reference_10hpf"],
        "theta": d["theta"],
        "s_med": np.array([t["chemosensitivity_median"][s] for s in SUBTYPES]),
        "grade3_s": t["grade3_chemosensitivity_factor"],
        "s_sdlog": t["chemosensitivity_sdlog"],
        "p_resistant": t["resistant_clone_probability"],
        "r_lo": t["resistant_fraction_log10_min"],
        "r_hi": t["resistant_fraction_log10_max"],
        "eps_median": me["epsilon_median"],
        "eps_morph": max(me["morphology_epsilon_factor"].values()),
        "eps_sdlog": me["epsilon_sdlog"],
        "gamma": d["gamma"],
        "mu_growth": d.get("mu_growth_exponent", 0.0),
        "mu_growth_ref": d.get("mu_growth_reference_days", 250.0),
        "resistant_kill_ratio": t["resistant_kill_ratio"],
        "s_met": t["metastasis_kill_ratio"],
        "dormant_fraction": dormant,
        # as a single population: a wake rate only where someone is dormant
        "wake": 1.0 / float(dorm.get("mean_dormancy_days", 1.0)) if dormant != 0.0 else 0.0,
        "r_endo": t.get("endocrine_resistance_probability", 0.0),
        "endo_sdlog": t.get("endocrine_sensitivity_sdlog", 0.0),
        "endo_median": t.get("endocrine_sensitivity_median", 1.0),
        "r_her2": t.get("anti_her2_resistance_probability", 0.0),
        "her2_sdlog": t.get("anti_her2_sensitivity_sdlog", 0.0),
        "her2_median": t.get("anti_her2_sensitivity_median", 1.0),
        "phi": d["phi"],
        "phi_exponent": d.get("phi_tmem_exponent", 0.0),
    }


class _MemberConstants:
    """The constants of :func:`_parameter_constants` for rows that each belong to one of several populations
    (``member``: the population of each row; None: every row the single population's).

    ``c[key]`` is the plain value where every population has the same one (so the formulas run exactly as for one
    population), else one value per row; :meth:`table` picks a subtype or grade table's entry per row;
    :meth:`groups` gives the rows of each population with its constants, for the operations that must see one
    population's scalar (powers: ``x ** scalar`` and ``x ** array`` may be computed differently)."""

    def __init__(self, constants: list[dict], member: np.ndarray | None = None):
        self.constants = constants
        self.member = member
        self._same: dict[str, bool] = {}

    def _uniform(self, key: str) -> bool:
        if key not in self._same:
            first = self.constants[0][key]
            if np.ndim(first) == 0:  # plain numbers: Python's comparison (NaN never equal: per-row values)
                self._same[key] = all(c[key] == first for c in self.constants[1:])
            else:
                self._same[key] = all(np.array_equal(c[key], first) for c in self.constants[1:])
        return self._same[key]

    def __getitem__(self, key: str):
        if self.member is None or self._uniform(key):
            return self.constants[0][key]
        return np.array([c[key] for c in self.constants])[self.member]

    def table(self, key: str, index: np.ndarray) -> np.ndarray:
        """Per row, entry ``index`` of the table ``key`` of the row's population."""
        if self.member is None or self._uniform(key):
            return self.constants[0][key][index]
        return np.stack([c[key] for c in self.constants])[self.member, index]

    def power(self, base: np.ndarray, key: str) -> np.ndarray:
        """``base ** c[key]`` with each population's exponent as the scalar it is."""
        if self.member is None or self._uniform(key):
            return base ** self.constants[0][key]
        out = np.empty_like(base)
        for rows, c in self.groups():
            out[rows] = base[rows] ** c[key]
        return out

    def doorway_share(self, t0: np.ndarray) -> np.ndarray:
        """:func:`doorway_share` of ``t0`` with each row's population link."""
        keys = ("phi", "tmem_ref", "phi_exponent")
        if self.member is None or all(self._uniform(k) for k in keys):
            return doorway_share(t0, *(self.constants[0][k] for k in keys))
        out = np.empty_like(t0)
        for rows, c in self.groups():
            out[rows] = doorway_share(t0[rows], *(c[k] for k in keys))
        return out

    def groups(self):
        """``(rows, constants)`` of each population that has rows."""
        order = np.argsort(self.member, kind="stable")
        bounds = np.searchsorted(self.member[order], np.arange(len(self.constants) + 1))
        for m, c in enumerate(self.constants):
            if bounds[m + 1] > bounds[m]:
                yield order[bounds[m] : bounds[m + 1]], c


def _covariate_parameters(c: _MemberConstants, cov, z, u_resistant, z_her2=None) -> PatientParameters:
    """:meth:`Population.parameters` with the population constants ``c`` (one population's, or one per row)."""
    unknown = [k for k in ("grade", "er", "pr", "her2") if pd.isna(cov[k]).any()]
    if unknown:
        raise ValueError(f"covariates {unknown} unknown: draw them first (Population.draw_unknown)")
    col = {k: np.asarray(cov[k]) for k in ("age", "diameter_mm", "grade", "er", "pr", "her2",
                                            "alveolar_or_trabecular", "tmem_10hpf")}
    sub = _subtype_index(col["er"], col["pr"], col["her2"])
    grade = col["grade"].astype(int)
    dt = c.table("dt_med", sub) * c.table("grade_doubling", grade - 1)
    dt = dt * np.where(col["age"].astype(float) < 50, c["age_doubling"], 1.0)
    # an ER-positive tumour that has lost PR grows faster (docs/science.md §2.1); 1: no effect
    er_pr_neg = col["er"].astype(bool) & ~col["pr"].astype(bool)
    dt = dt * np.where(er_pr_neg, c["pr_negative_doubling"], 1.0)
    dt = dt * np.exp(c["dt_sdlog"] * z[:, 0])
    log_n0 = np.log(diameter_mm_to_cells(col["diameter_mm"].astype(float), c["cells_per_mm3"]))
    log_k = np.log(10.0) * (c["k_median"] + c["k_sd"] * z[:, 1])
    # the plateau must lie above the tumour at diagnosis and above metastasis visibility
    log_k = np.maximum(log_k, np.maximum(log_n0 + np.log(2.0), c["log_k_floor"]))
    beta = LN2 / (dt * (log_k - log_n0))
    alpha = beta * log_k

    tmem = col["tmem_10hpf"].astype(float)
    t0 = np.where(np.isnan(tmem), c["tmem_median"] * np.exp(c["tmem_sdlog"] * z[:, 5]), tmem)
    t0 = np.maximum(t0, 0.5)  # a score of 0 still means some doorways exist below detection
    mu = c["mu_median"] * np.exp(c["mu_sdlog"] * z[:, 2]) * c.power(t0 / c["tmem_ref"], "theta")
    # faster-growing tumours shed more per cell (docs/science.md §2.5): mu ∝ (DT_ref / DT)^β, β = 0 off
    mu = mu * c.power(c["mu_growth_ref"] / dt, "mu_growth")

    s = (
        c.table("s_med", sub)
        * np.where(grade == 3, c["grade3_s"], 1.0)
        * np.exp(c["s_sdlog"] * z[:, 3])
    )
    has_r = u_resistant[:, 0] < c["p_resistant"]
    lo, hi = c["r_lo"], c["r_hi"]
    f_r = np.where(has_r, 10.0 ** (lo + (hi - lo) * u_resistant[:, 1]), 0.0)

    morph = col["alveolar_or_trabecular"].astype(bool)
    eps = c["eps_median"] * np.where(morph, c["eps_morph"], 1.0)
    eps = eps * np.exp(c["eps_sdlog"] * z[:, 4])
    n = len(tmem)

    def full(key):
        value = c[key]
        return np.full(n, value) if np.ndim(value) == 0 else value

    er = col["er"].astype(bool)
    r_endo = c["r_endo"]
    endocrine = receptor_sensitivity(er, z[:, 6], r_endo, c["endo_sdlog"], c["endo_median"])
    rescue_rank = nonresponder_rank(er, z[:, 6], r_endo)
    her2 = receptor_sensitivity(
        col["her2"].astype(bool), np.zeros(n) if z_her2 is None else z_her2, c["r_her2"], c["her2_sdlog"],
        c["her2_median"],
    )
    return PatientParameters(
        alpha_per_day=alpha,
        beta_per_day=beta,
        log_cells0=log_n0,
        mu=mu,
        gamma=full("gamma"),
        chemosensitivity=s,
        resistant_fraction=f_r,
        resistant_kill_ratio=full("resistant_kill_ratio"),
        s_met=full("s_met"),
        epsilon=eps,
        T0=t0,
        phi=c.doorway_share(t0),
        dormant_fraction=full("dormant_fraction"),
        wake_rate_per_day=full("wake"),
        endocrine_sensitivity=endocrine,
        her2_sensitivity=her2,
        endocrine_rescue_rank=rescue_rank,
    )


def ensemble_parameters(
    populations, member: np.ndarray, cov, z: np.ndarray, u_resistant: np.ndarray, z_her2: np.ndarray | None = None
) -> PatientParameters:
    """Model parameters of rows that each come from one of several populations (e.g. the members of a calibration
    ensemble), in one vectorised pass: row ``i`` gets exactly (bit for bit) what
    ``populations[member[i]].parameters`` gives it alone.

    Parameters
    ----------
    populations : sequence of Population
        The populations (e.g. :func:`chemomet.assess.twins.shipped_ensemble`).
    member : numpy.ndarray
        ``(n,)`` integer index into ``populations`` of each row.
    cov : pandas.DataFrame or mapping of str to numpy.ndarray
        The covariate columns of :meth:`Population.parameters` (years, mm, doorways per 10 HPF), ``n`` rows.
    z, u_resistant, z_her2 : numpy.ndarray
        As in :meth:`Population.parameters`: standard normals ``(n, 7)``, uniforms ``(n, 2)``, optional normals
        ``(n,)``.

    Returns
    -------
    PatientParameters
        One row per row of ``cov``, in its order.

    Examples
    --------
    >>> pops = [Population(), Population().with_mechanisms({})]
    >>> cov, _ = Population().sample(4, rng=3)
    >>> z, u = np.random.default_rng(0).standard_normal((4, 7)), np.full((4, 2), 0.5)
    >>> both = ensemble_parameters(pops, np.array([0, 1, 0, 1]), cov, z, u)
    >>> bool(np.array_equal(both.mu[1::2], pops[1].parameters(cov.iloc[1::2], z[1::2], u[1::2]).mu))
    True
    """
    member = np.asarray(member, dtype=np.int64)
    constants = _MemberConstants([_parameter_constants(p) for p in populations], member)
    return _covariate_parameters(constants, cov, z, u_resistant, z_her2)


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
    positive, z, resistance_probability: float | np.ndarray, sdlog: float | np.ndarray,
    median: float | np.ndarray = 1.0,
) -> np.ndarray:
    """Sensitivity to a receptor-targeted therapy from one standard normal per patient (dimensionless): endocrine
    sensitivity ``e`` (receptor ER) or anti-HER2 sensitivity ``h`` (receptor HER2).

    The therapy acts through its receptor, so the sensitivity is 0 in receptor-negative disease. Among positive
    tumours a share ``resistance_probability`` does not respond (de novo resistance, and in trial data also
    non-adherence and weakly positive disease): 0 where ``Φ(z) < r``. The rest have a log-normal sensitivity
    (``median``, SD of log ``sdlog``) drawn from the remaining quantile ``(Φ(z) - r) / (1 - r)``, so one normal
    gives both. ``resistance_probability`` (probability), ``sdlog`` and ``median`` (dimensionless) may be one
    value or one per patient (:func:`ensemble_parameters`).

    Examples
    --------
    >>> receptor_sensitivity(np.array([True, True, False]), np.array([-1.0, 0.5, 0.5]), 0.3, 0.5).round(3)
    array([0.   , 1.077, 0.   ])
    """
    from scipy.special import ndtr, ndtri  # norm.cdf and norm.ppf of the standard normal, without their overhead

    pz = ndtr(np.asarray(z, dtype=float))
    r = np.asarray(resistance_probability, dtype=float)
    respond = np.asarray(positive, bool) & (pz >= r)
    out = np.zeros(np.broadcast(respond, r, sdlog, median).shape)
    if respond.any():  # the quantile only where someone responds (each value as computed for all)
        pick = np.broadcast_to(respond, out.shape)

        def at(x):
            x = np.asarray(x, dtype=float)
            return x if x.ndim == 0 else np.broadcast_to(x, out.shape)[pick]

        q = np.clip((at(pz) - at(r)) / np.maximum(1.0 - at(r), 1e-12), 1e-12, 1.0 - 1e-12)
        out[pick] = at(median) * np.exp(at(sdlog) * ndtri(q))
    return out


def nonresponder_rank(positive, z, resistance_probability: float | np.ndarray) -> np.ndarray:
    """Rank of each non-responding receptor-positive tumour among the non-responders (fraction in (0, 1); 0 for
    every other patient), used by drugs that reach part of them
    (:func:`chemomet.model.parameters.endocrine_sensitivity_for`).

    Non-responders are the positive tumours with ``Φ(z) < r`` (:func:`receptor_sensitivity`, the same normal), so
    ``Φ(z)/r`` ranks them uniformly; the ones nearest the responders rank highest. ``resistance_probability``
    (probability) may be one value or one per patient.

    Examples
    --------
    >>> nonresponder_rank(np.array([True, True, False]), np.array([-1.0, 0.5, -1.0]), 0.3).round(3).tolist()
    [0.529, 0.0, 0.0]
    """
    from scipy.special import ndtr

    pz = ndtr(np.asarray(z, dtype=float))
    r = np.asarray(resistance_probability, dtype=float)
    non = np.asarray(positive, bool) & (pz < r)
    return np.where(non, np.maximum(pz / np.maximum(r, 1e-12), 1e-12), 0.0)


FIXABLE_AS_IS = (
    "mu", "gamma", "chemosensitivity", "s_met", "resistant_fraction", "resistant_kill_ratio", "epsilon", "T0", "phi",
    "dormant_fraction",
)
"""Parameters a patient file may fix that are used exactly as given (growth is converted first)."""


def apply_fixed_parameters(
    params: PatientParameters, patients: list[Patient], theta: float = 0.0, phi_link: tuple | None = None,
    growth_exponent: float = 0.0,
) -> PatientParameters:
    """Replace population values by those fixed in each patient's ``[parameters]`` table.

    A fixed ``T0`` without a fixed ``mu`` moves ``mu`` with it through the population link
    ``mu ∝ (T0 / T_ref)^theta``, so the two stay consistent; likewise the doorway share ``phi`` (see
    :func:`doorway_share`, given ``phi_link = (phi_ref, T_ref, exponent)``), and a fixed doubling time moves
    ``mu`` through the growth link ``mu ∝ DT^-growth_exponent``.

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
    growth_exponent : float, default 0.0
        Exponent ``β`` of the link ``mu ∝ DT^-β`` (dimensionless; the population's ``mu_growth_exponent``;
        0: ``mu`` does not move with a fixed doubling time).

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
            dt_population = LN2 / (values["alpha_per_day"][i] - values["beta_per_day"][i] * values["log_cells0"][i])
            dt = fixed.get("doubling_time_days", dt_population)
            if "mu" not in fixed:
                values["mu"][i] *= (dt_population / dt) ** growth_exponent
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
