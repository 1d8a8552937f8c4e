"""One patient before (or during) NACT: :func:`assess` — posterior risks per strategy, the NACT-attributable
excess risk, accompanying drugs' effects, the drivers, a recommendation and warnings.

Steps: draw ``n_twins`` virtual twins (covariates fixed, random effects and calibration-ensemble member drawn);
weight them by the likelihood of what was measured (:mod:`~chemomet.assess.evidence`); resample ``n_simulated``
of them from a mixture of the posteriors needed and simulate every strategy (:mod:`~chemomet.assess.forecast`);
summarise with importance weights; decide (:mod:`~chemomet.assess.decision`). The result is an
:class:`~chemomet.assess.result.Assessment`.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import pandas as pd

from chemomet.assess import decision, evidence, forecast
from chemomet.assess.result import Assessment
from chemomet.assess.settings import AssessmentSettings, Treatment
from chemomet.assess.twins import Twins, draw_twins, members_with_epsilon, patient_covariates, shipped_ensemble
from chemomet.errors import InputError
from chemomet.mechanisms import describe_mechanisms
from chemomet.patient import Patient, read_patient
from chemomet.population import Population
from chemomet.regimens import DEFAULT_REGIMEN, Strategy, get_regimen, load_drugs

LIMITS = (
    "Research use only: not a medical device and not for clinical decisions.",
    "The model is calibrated on untreated node-negative patients (TRANSBIG, 198 patients, 51 events) and on "
    "published summary targets; the microenvironment sensitivity ε is not identified by them and carries an "
    "assumed ×/÷4 range.",
    "Predicted CTC hazard gradients are steeper than observed (Bidard 2018), and late (dormant) relapses are not "
    "yet in the fit: risks beyond 5 years in ER+ disease are the least certain.",
    "Accompanying drugs act through assumed pharmacodynamics (TIE2, CSF1R, CXCR4 inhibition); no trial has shown "
    "their effect on distant metastasis.",
    "Credible intervals carry parameter and individual uncertainty given the model; they do not cover model error.",
)

COVARIATE_REFERENCE = {"diameter_mm": 25.0, "grade": 2, "age": 56.0}


def _chemomet_version() -> str:
    """The installed chemomet's version (package metadata), as ``chemomet.__version__`` reports it."""
    try:
        return version("chemomet")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def _label(st: Strategy, on_nact_from: float | None = None) -> str:
    text = _label_without_endocrine(st, on_nact_from)
    her2 = None if st.regimen is None else st.regimen.anti_her2
    if her2 is not None:
        text += f"; with {' and '.join(her2.agents)} for {her2.weeks:g} weeks"
    return text if st.endocrine is None else f"{text}; then {st.endocrine} for {st.endocrine_years:g} years"


def _label_without_endocrine(st: Strategy, on_nact_from: float | None = None) -> str:
    if st.label == "early-surgery":
        return f"Stop NACT now (day {on_nact_from:g}), surgery {st.early_surgery_delay_days:g} days later"
    if st.kind == "surgery-first":
        return "Surgery first, adjuvant chemotherapy"
    base = "Continue NACT" if on_nact_from is not None else "NACT"
    if st.interim_day is not None:
        base = (
            f"Response-adapted NACT (surgery if shrunk < {100 * st.response_threshold:g}% "
            f"on day {st.interim_day:g})"
        )
    if st.accompanying is None:
        return base
    drug = load_drugs()[st.accompanying.drug]
    when = f" from day {on_nact_from:g}" if on_nact_from is not None else ""
    return f"{base} + {st.accompanying.drug} ({drug.target} inhibitor){when}"


def standard_endocrine(patient: Patient, treatment: Treatment | None = None) -> str | None:
    """The adjuvant endocrine drug a clinician would give this patient after surgery, or None.

    ER-negative: none; ER-positive: anastrozole from ``treatment.aromatase_inhibitor_from_age`` (menopause not
    recorded; age stands in for it), tamoxifen below it; none when ``treatment.endocrine_years`` is 0.

    Examples
    --------
    >>> from chemomet.patient import example_patient
    >>> example_patient().er, standard_endocrine(example_patient())  # 47 years old
    ('positive', 'tamoxifen')
    """
    treatment = treatment or AssessmentSettings.default().treatment
    if patient.er != "positive" or treatment.endocrine_years <= 0:
        return None
    return "anastrozole" if patient.age >= treatment.aromatase_inhibitor_from_age else "tamoxifen"


def standard_regimen(patient: Patient, treatment: Treatment | None = None) -> str:
    """The regimen a clinician would give this patient when none is chosen: ``treatment.her2_regimen`` (with
    anti-HER2 therapy) for a HER2-positive patient, :data:`~chemomet.regimens.DEFAULT_REGIMEN` otherwise
    (an untested HER2 status gets the chemotherapy alone).

    Examples
    --------
    >>> from chemomet.patient import example_patient
    >>> standard_regimen(example_patient())  # HER2-negative
    'ac-paclitaxel-weekly'
    >>> standard_regimen(example_patient().model_copy(update={"her2": "positive"}))
    'ac-paclitaxel-weekly-trastuzumab-pertuzumab'
    """
    treatment = treatment or AssessmentSettings.default().treatment
    return treatment.her2_regimen if patient.her2 == "positive" else DEFAULT_REGIMEN


def _with_standard_of_care(st: Strategy, patient: Patient, treatment: Treatment | None) -> Strategy:
    """``st`` with the patient's adjuvant endocrine therapy added (its name kept), unless it names its own."""
    drug = standard_endocrine(patient, treatment)
    if drug is None or st.endocrine is not None:
        return st
    years = (treatment or AssessmentSettings.default().treatment).endocrine_years
    return replace(st, endocrine=drug, endocrine_years=years, label=st.name)


def default_strategies(patient: Patient, regimen: str, treatment: Treatment | None = None) -> list[Strategy]:
    """The strategies :func:`assess` compares by default, each with the patient's standard adjuvant endocrine
    therapy (:func:`standard_endocrine`; ``treatment``: default the shipped settings).

    Surgery first, NACT and NACT + each accompanying drug (``data/drugs.toml``, role "accompanying"). During
    NACT (the patient has ``nact_diameters``) also ``early-surgery``, stopping NACT on the day of the last
    measurement, and the drugs start on that day (days after the first dose) instead of with the first dose.

    Parameters
    ----------
    patient : Patient
        The patient; only her ``nact_diameters`` (days after the first dose, mm) matter here.
    regimen : str
        The chemotherapy regimen key (``data/regimens.toml``), e.g. :data:`chemomet.regimens.DEFAULT_REGIMEN`.

    Returns
    -------
    list of Strategy
        In the order the assessment shows them.

    Examples
    --------
    >>> from chemomet.assess import default_strategies
    >>> from chemomet.patient import example_patient
    >>> from chemomet.regimens import DEFAULT_REGIMEN
    >>> [s.name for s in default_strategies(example_patient(), DEFAULT_REGIMEN)]
    ['surgery-first', 'nact', 'nact+rebastinib', 'nact+pexidartinib', 'nact+plerixafor']

    During NACT, with a diameter measured on day 42:

    >>> from chemomet.patient import patient_from_dict
    >>> data = example_patient().model_dump(exclude={"subtype"})
    >>> on_nact = patient_from_dict({**data, "nact_diameters": [{"day": 42, "diameter_mm": 20.0}]})
    >>> plan = default_strategies(on_nact, DEFAULT_REGIMEN)
    >>> [s.name for s in plan][:3], plan[3].accompanying.start_offset_days
    (['surgery-first', 'nact', 'early-surgery'], 42.0)
    """
    drugs = [name for name, d in load_drugs().items() if d.role == "accompanying"]
    now = patient.nact_diameters[-1].day if patient.nact_diameters else None
    out = [Strategy.parse("surgery-first", regimen), Strategy.parse("nact", regimen)]
    if now is not None:
        stop = Strategy.parse("nact", regimen, interim_day=now, response_threshold=1.0)
        out.append(replace(stop, label="early-surgery"))
    out += [
        Strategy.parse(f"nact+{d}", regimen, accompanying_start_offset_days=now or 0.0) for d in drugs
    ]
    return [_with_standard_of_care(st, patient, treatment) for st in out]


def _parse_strategies(names, patient: Patient, regimen: str, treatment: Treatment | None = None) -> list[Strategy]:
    defaults = default_strategies(patient, regimen, treatment)
    if names is None:
        return defaults
    by_name = {s.name: s for s in defaults}
    out = [s for s in defaults if s.name in ("surgery-first", "nact", "early-surgery")]
    for name in names:
        st = name if isinstance(name, Strategy) else by_name.get(name) or Strategy.parse(name, regimen)
        if st.kind not in ("surgery-first", "nact"):
            raise InputError(
                f"strategy = {st.name!r} is invalid; allowed: surgery-first, nact, nact+<drug> or nact-adaptive"
            )
        st = _with_standard_of_care(st, patient, treatment)
        if st.name not in [s.name for s in out]:
            out.append(st)
    return out


def assess(
    patient: Patient | str | Path,
    strategies: list[str | Strategy] | None = None,
    *,
    regimen: str | None = None,
    settings: AssessmentSettings | None = None,
    population: Population | None = None,
    ensemble: bool = True,
    drivers: bool = True,
    trajectories: bool = True,
    mechanisms: dict | None = None,
    epsilon: tuple[float, float] | None = None,
    progress=None,
) -> Assessment:
    """Assess one patient before (or during) NACT.

    Draws ``n_twins`` virtual twins of the patient (her covariates fixed, random effects and calibration-ensemble
    member drawn), weights them by the likelihood of what was measured, simulates a resample of them under every
    strategy and summarises: the risk under each strategy with credible intervals, the NACT-attributable excess
    10-year risk and its parts, each accompanying drug's risk reduction, what drives the excess risk and a
    recommendation under the decision rules of ``settings.decision``. The method is in docs/assessment.md.

    Parameters
    ----------
    patient : Patient, str or Path
        A :class:`~chemomet.patient.Patient` or a patient file (``.toml`` or ``.json``). Measured biomarkers (TMEM
        score per 10 or 20 HPF, CTC count per 7.5 mL, Ki67 in %, tumour diameters in mm during NACT, post-NACT
        TMEM score) condition the twins; missing ones are integrated over their population prior.
    strategies : list of str or Strategy, optional
        Strategies to compare besides surgery first and NACT (and, during NACT, early surgery). Default: NACT +
        each accompanying drug (:func:`default_strategies`).
    regimen : str, optional
        The chemotherapy regimen key (``data/regimens.toml``); default: :func:`standard_regimen`, the default
        regimen, with trastuzumab and pertuzumab for a HER2-positive patient.
    settings : AssessmentSettings, optional
        Sampling sizes, observation models and decision thresholds (default: ``data/assessment.toml``).
    population : Population, optional
        The reference population (default: the shipped calibration).
    ensemble : bool, default True
        Draw each twin's population parameters from the calibration ensemble (only with the default
        population); False uses the point estimate.
    drivers : bool, default True
        Compute the drivers analysis (each input moved to its population reference).
    trajectories : bool, default True
        Compute the TMEM (per 10 HPF), expected CTC (per 7.5 mL) and diameter (mm) trajectories.
    mechanisms : dict, optional
        Prometastatic mechanisms to switch on or off (a ``[mechanisms]`` table, e.g. ``{"mobilisation": True}``;
        see :func:`chemomet.mechanisms.mechanism_settings`), applied to the reference population; the calibration
        ensemble is kept. Default: the shipped model (doorway mechanism only). The result records them
        (``settings.mechanisms``), the decision says which mechanism each drug's benefit rests on and whether a
        drug can harm, and the excess risk gains a ``mechanisms`` part when priming or mobilisation is on.
    epsilon : tuple of float, optional
        ``(median, sdlog)``: the doorway stress response's fitted posterior (a log-normal, e.g.
        :func:`chemomet.subgroups.epsilon_posterior` of ``chemomet calibrate mechanisms``' output); each ensemble
        member's ``ε_med`` is drawn from it (:func:`chemomet.subgroups.members_with_epsilon`, seeded by the
        assessment's seed). Default: the calibration's prior. Recorded in ``settings.epsilon_posterior``.
    progress : callable, optional
        ``progress(step: str)``, called at the start of each step.

    Returns
    -------
    Assessment
        The validated result: probabilities in [0, 1], absolute risk differences, days from diagnosis; every
        field documents its unit. ``.to_dict()`` gives the JSON-ready dict.

    Raises
    ------
    chemomet.errors.InputError
        For an invalid patient file, regimen, strategy or measurement, or measurements that no twin can produce.

    Examples
    --------
    About 1.3 CPU-seconds with the default 100,000 twins (the example patient, report included; 2-core Xeon):

    >>> import chemomet as cm
    >>> result = cm.assess(cm.example_patient())  # doctest: +SKIP
    >>> result.recommendation.strategy  # doctest: +SKIP
    'nact'

    The excess 10-year risk (NACT minus surgery first, absolute), P(excess > 0) and 10-year DMFS per strategy:

    >>> excess = result.nact_excess_risk_10y  # doctest: +SKIP
    >>> round(excess.mean, 3), round(excess.p_positive, 2)  # doctest: +SKIP
    (0.024, 0.48)
    >>> [(s.name, round(s.dmfs_10y.mean, 3)) for s in result.strategies][:2]  # doctest: +SKIP
    [('surgery-first', 0.323), ('nact', 0.3)]
    """
    t_start = datetime.now(UTC)
    if isinstance(patient, str | Path):
        patient = read_patient(patient)
    settings = settings or AssessmentSettings.default()
    regimen = standard_regimen(patient, settings.treatment) if regimen is None else regimen
    get_regimen(regimen)
    evidence.check_measurements(patient, regimen)
    sm, rules = settings.sampling, settings.decision
    say = progress or (lambda step: None)
    default_population = population is None
    reference = population or Population()
    if mechanisms:
        reference = reference.with_mechanisms(mechanisms)
    mech = reference.settings.mechanisms
    members = shipped_ensemble() if (ensemble and default_population) else (reference,)
    if epsilon is not None:
        members = members_with_epsilon(*_checked_epsilon(epsilon), seed=sm.seed, members=members)
    plan = _parse_strategies(strategies, patient, regimen, settings.treatment)
    on_nact_from = patient.nact_diameters[-1].day if patient.nact_diameters else None
    labels = {st.name: _label(st, on_nact_from) for st in plan}

    say(f"drawing {sm.n_twins:,} virtual twins")
    twins = draw_twins(patient, sm.n_twins, sm.seed, reference, members)
    say("weighting the twins by the measured biomarkers")
    terms = evidence.terms(patient, twins, reference, settings.observation, regimen)
    total = sum((t.loglik for t in terms), np.zeros(twins.n))
    w_main = evidence.normalised(total)
    counterfactual = {
        t.name: evidence.normalised(total - t.loglik + (0.0 if t.loglik_reference is None else t.loglik_reference))
        for t in terms
    }
    q = w_main if not counterfactual else 0.5 * w_main + 0.5 * np.mean(list(counterfactual.values()), axis=0)
    index, count, draws, outcomes, accuracy = _adaptive_forecast(twins, q, w_main, plan, reference, sm, say)
    nact = next(s for s in plan if s.name == "nact")
    parts = forecast.excess_parts(twins, index, outcomes, nact, reference)
    outcomes.pop("nact" + forecast.CALM, None)  # NACT without the stress response: only the parts need it
    sim = forecast.SimulatedTwins(index, count, q, parts)
    weights = sim.weights(w_main)
    level = sm.credible_level

    def summ(values, positive=False, w=weights):
        return forecast.summarise(values, w, level, positive)

    risk = {name: 1.0 - o["dmfs_10y"] for name, o in outcomes.items()}
    rows = []
    for st in plan:
        o = outcomes[st.name]
        rows.append(
            {
                "name": st.name,
                "label": labels[st.name],
                "surgery_day": summ(o["surgery_day"])["mean"],
                "dmfs_5y": summ(o["dmfs_5y"]),
                "dmfs_10y": summ(o["dmfs_10y"]),
                "dm_risk_10y": summ(risk[st.name]),
                "p_pcr": None if st.kind == "surgery-first" else float(np.sum(weights * o["p_pcr"])),
                "tmem_at_surgery_10hpf": summ(o["tmem_at_surgery_10hpf"]),
                "ctc_expected_surgery": summ(o["ctc_expected_surgery"]),
            }
        )
    excess = summ(parts["excess"], positive=True)
    part_summaries = {k: summ(parts[k]) for k in ("mechanisms", "microenvironment", "delay", "kill_timing")
                      if k in parts}
    drug_names = [st.name for st in plan if st.accompanying is not None and st.interim_day is None]
    reductions = {name: summ(risk["nact"] - risk[name], positive=True) for name in drug_names}
    # drugs that inhibit doorway activity (the TIE2 inhibitor rebastinib) must never raise doorway-mediated founding
    doorway = [
        st.name for st in plan
        if st.accompanying and load_drugs()[st.accompanying.drug].acts_on == "doorway_activity"
    ]
    checks = {
        f"{name}_never_raises_doorway_founding": bool(
            np.all(
                outcomes[name]["colonies_founded_during_chemo"]
                <= outcomes["nact"]["colonies_founded_during_chemo"] * (1 + 1e-12)
            )
        )
        for name in doorway
        if on_nact_from is None
    }

    driver_rows = []
    if drivers:
        say("drivers: moving each input to its population reference")
        driver_rows = _observation_drivers(terms, counterfactual, sim, parts["excess"], excess["mean"])
        driver_rows += _covariate_drivers(
            patient, twins, sim, weights, terms, reference, members, settings, regimen, plan, excess["mean"]
        )
        driver_rows = [d for d in driver_rows if np.isfinite(d["change"])]
        driver_rows.sort(key=lambda d: -abs(d["change"]))

    if on_nact_from is None:
        planned, switch = "nact", "surgery-first"
        harm = excess
    else:
        planned, switch = "nact", "early-surgery"
        harm = summ(risk["nact"] - risk["early-surgery"], positive=True)
    rec = decision.recommend(
        {k: float(np.sum(weights * v)) for k, v in risk.items()},
        planned, switch, harm, reductions, part_summaries if on_nact_from is None else {}, driver_rows, labels,
        rules, mechanisms=mech,
    )

    traj = None
    if trajectories:
        say("trajectories")
        traj = forecast.trajectories(twins, w_main, plan, reference, sm.n_trajectories, sm.seed)

    ess = evidence.effective_sample_size(w_main)
    accuracy = _with_total_se(accuracy, outcomes, weights, ess, sm.target_se)
    # the sub-results are plain dicts (decision.recommend reads them so); Assessment validates them into its models
    return Assessment(
        chemomet_version=_chemomet_version(),
        generated=t_start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        patient=patient.model_dump(mode="json"),
        inputs=_inputs_table(patient),
        settings={
            "n_twins": sm.n_twins,
            "n_simulated": int(draws),
            "n_simulated_distinct": int(index.size),
            "seed": sm.seed,
            "regimen": regimen,
            "horizon_years": sm.horizon_years,
            "credible_level": level,
            "ensemble_members": len(members),
            "thresholds": rules,
            "endocrine": standard_endocrine(patient, settings.treatment),
            "endocrine_years": settings.treatment.endocrine_years,
            "mechanisms": describe_mechanisms(mech, mechanisms),
            "epsilon_posterior": None if epsilon is None else {"median": float(epsilon[0]),
                                                               "sdlog": float(epsilon[1])},
        },
        accuracy=accuracy,
        evidence={
            "ess": ess,
            "ess_fraction": ess / twins.n,
            "ess_simulated": evidence.effective_sample_size(weights),
            "warnings": _warnings(patient, terms, ess, rules),
            "biomarkers": {
                t.name: {"observed": t.observed, "prior_predictive_p": None if math.isnan(t.tail_p) else t.tail_p}
                for t in terms
            },
        },
        strategies=rows,
        nact_excess_risk_10y=excess,
        excess_parts_10y=part_summaries,
        drug_risk_reduction_10y=reductions,
        trajectories=traj,
        recommendation=rec,
        drivers=driver_rows,
        checks=checks,
        limits=list(LIMITS),
        dynamic=None
        if on_nact_from is None
        else {
            "on_nact": True,
            "diameters": list(patient.nact_diameters),
            "note": f"Re-assessed on day {on_nact_from:g} of NACT; surgery first is shown as the counterfactual.",
        },
        elapsed_s=(datetime.now(UTC) - t_start).total_seconds(),
    )


def _checked_epsilon(epsilon) -> tuple[float, float]:
    """``(median, sdlog)`` of the stress response's posterior, or a one-line error."""
    try:
        median, sdlog = (float(v) for v in epsilon)
    except (TypeError, ValueError):
        median, sdlog = float("nan"), float("nan")
    if not (np.isfinite(median) and median > 0 and np.isfinite(sdlog) and sdlog >= 0):
        raise InputError(f"epsilon = {epsilon!r} is invalid; allowed: (median > 0, SD of the log >= 0) of the "
                         "stress response's posterior (dimensionless)")
    return median, sdlog


def _adaptive_forecast(twins: Twins, q, target, plan, reference, sm, say):
    """Simulate a growing nested resample of the twins (drawn from ``q``) under every strategy until the Monte
    Carlo standard error of DMFS10 under the posterior ``target``, against the estimate from all twins, is at
    most ``sm.target_se`` under every strategy, or the resample has ``sm.n_simulated`` draws.

    Stages double from ``sm.n_simulated_min`` draws (:func:`forecast.nested_resample_stages`; the last is the
    fixed-size resample of ``sm.n_simulated`` draws), and a twin already simulated is not simulated again.

    Returns
    -------
    tuple
        ``(index, count, draws, outcomes, accuracy)``: the final stage's distinct twins, counts and draws, per
        strategy the outcomes of those twins (:func:`forecast.simulate_twins`; under
        :func:`forecast.calm_shortcut` also ``"nact" + forecast.CALM``, NACT without the stress response, for
        :func:`forecast.excess_parts`), and the accuracy record (standard errors per strategy, probabilities;
        stages; whether the target was met).
    """
    rng = np.random.default_rng([sm.seed, 1])
    m_min = sm.n_simulated if sm.target_se <= 0 else min(sm.n_simulated_min, sm.n_simulated)
    # NACT without the stress response, for the excess risk's parts: one more variant of the NACT group
    calm = "nact" if forecast.calm_shortcut(reference, sm.horizon_years) else None
    stages = forecast.nested_resample_stages(q, sm.n_simulated, m_min, rng)
    done = np.empty(0, dtype=np.int64)
    store: dict[str, dict[str, np.ndarray]] = {}
    history = []
    for k, (index, count, draws) in enumerate(stages):
        new = np.setdiff1d(index, done, assume_unique=True)
        say(f"simulating {new.size:,} distinct twins under {len(plan)} strategies ({draws:,} draws)")
        fresh = forecast.simulate_twins(twins, new, plan, reference, sm.horizon_years, calm) if new.size else {}
        merged = np.concatenate([done, new])
        order = np.argsort(merged, kind="stable")
        for name, values in fresh.items():
            old = store.get(name, {})
            store[name] = {
                key: np.concatenate([old[key], v])[order] if old else v[order] for key, v in values.items()
            }
        done = merged[order]
        at = np.searchsorted(done, index)
        outcomes = {name: {key: v[at] for key, v in values.items()} for name, values in store.items()}
        se = {
            name: forecast.resample_se(index, count, draws, q, target, o["dmfs_10y"])
            for name, o in outcomes.items()
            if not name.endswith(forecast.CALM)
        }
        worst = max((v for v in se.values() if np.isfinite(v)), default=0.0)
        history.append({"draws": draws, "distinct": int(index.size), "max_se_dmfs_10y": worst})
        if k == len(stages) - 1 or worst <= sm.target_se:
            break
    accuracy = {
        "target_se": sm.target_se,
        "target_met": bool(worst <= sm.target_se),
        "stages": history,
        "se_resample_dmfs_10y": se,
    }
    return index, count, draws, outcomes, accuracy


def _with_total_se(accuracy: dict, outcomes: dict, weights: np.ndarray, ess: float, target_se: float) -> dict:
    """The accuracy record with, per strategy, the posterior SD of the twins' DMFS10 and the total Monte Carlo
    standard error against the exact posterior given the model: the resample's error and that of ``n_twins``
    weighted twins (posterior SD / √ESS), combined in quadrature."""
    sd, total = {}, {}
    for name, o in outcomes.items():
        v = o["dmfs_10y"]
        ok = np.isfinite(v)
        w = weights[ok] / weights[ok].sum() if ok.any() else weights
        mean = float(np.sum(w * v[ok]))
        sd[name] = float(np.sqrt(np.sum(w * (v[ok] - mean) ** 2)))
        total[name] = float(np.hypot(accuracy["se_resample_dmfs_10y"][name], sd[name] / np.sqrt(ess)))
    return {**accuracy, "posterior_sd_dmfs_10y": sd, "se_total_dmfs_10y": total}


def _inputs_table(p: Patient) -> list[dict]:
    missing = "not measured — integrated over the population prior"
    conv = p.tmem_convention or ""

    def row(name, value, measured=True):
        return {"name": name, "value": value if measured else "—", "status": "measured" if measured else missing}

    rows = [
        {"name": "Age", "value": f"{p.age:g} years", "status": "given"},
        {"name": "Tumour diameter", "value": f"{p.diameter_mm:g} mm", "status": "given"},
        {"name": "Grade", "value": "not reported" if p.grade is None else str(p.grade),
         "status": "given" if p.grade is not None else missing},
        {
            "name": "Subtype",
            "value": f"{p.subtype_label} (ER {p.er}, PR {p.pr or 'not measured'}, HER2 {p.her2 or 'not measured'})",
            "status": "given" if not {"pr", "her2"} & set(p.unknown_covariates) else missing,
        },
        row("Positive nodes", str(p.nodes_positive), p.nodes_positive is not None),
        {"name": "Morphology", "value": ", ".join(p.morphology) or "not reported", "status": "given"},
        row("TMEM score", f"{p.tmem_score:g} per {conv}" if p.tmem_score is not None else "", p.tmem_score is not None),
        row("CTC count", f"{p.ctc_count} per 7.5 mL" if p.ctc_count is not None else "", p.ctc_count is not None),
        row("Ki67", f"{p.ki67_percent:g}%" if p.ki67_percent is not None else "", p.ki67_percent is not None),
    ]
    if p.nact_diameters:
        shown = ", ".join(f"{m.diameter_mm:g} mm on day {m.day:g}" for m in p.nact_diameters)
        rows.append(row("Diameters during NACT", shown))
    if p.tmem_score_after_nact is not None:
        rows.append(row("TMEM score after NACT", f"{p.tmem_score_after_nact:g} per {conv}"))
    if p.parameters:
        rows.append({"name": "Fixed model parameters", "value": ", ".join(p.parameters), "status": "given"})
    return rows


def _warnings(p: Patient, terms, ess: float, rules) -> list[str]:
    out = []
    if ess < rules.min_ess:
        out.append(
            f"Few virtual twins match the measurements (effective sample size {ess:.0f} < {rules.min_ess:g}): "
            "the patient lies at the edge of what the calibrated population supports; treat the numbers with care."
        )
    for t in terms:
        if not math.isnan(t.tail_p) and t.tail_p < rules.tail_probability:
            out.append(
                f"{t.name} {t.observed} is beyond {100 * (1 - rules.tail_probability):.1f}% of the values predicted "
                "for patients like her: check the measurement; the population barely supports it."
            )
    if p.nodes_positive is not None and p.nodes_positive > 0:
        out.append(
            f"{p.nodes_positive} positive node(s): the count weighs the virtual twins through the nodal-spread "
            "model, fitted on node-positive counts (GBSG2) with the growth and shedding of node-negative untreated "
            "patients (TRANSBIG); it meets node-positive recurrence at 5 years but may overestimate it after year 5 "
            "(1.04 to 1.8 times the published late recurrence, depending on the chemotherapy assumed), and nodal "
            "surgery and radiotherapy are not modelled."
        )
    if not 5.0 <= p.diameter_mm <= 120.0:
        out.append(f"Tumour diameter {p.diameter_mm:g} mm is outside the 5-120 mm range of the population model.")
    if not 25.0 <= p.age <= 90.0:
        out.append(f"Age {p.age:g} is outside the 25-90 year range of the population model.")
    if p.her2 == "positive":
        out.append("HER2+: chemosensitivity assumes trastuzumab-based therapy; anti-HER2 drugs are not modelled.")
    receptors = [r.upper() for r in p.unknown_covariates if r != "grade"]
    if receptors:
        out.append(
            f"{' and '.join(receptors)} not measured: integrated over the population given the other receptors "
            "(HER2-positive twins get no anti-HER2 therapy in the model); measure it for a sharper assessment."
        )
    if p.grade is None:
        out.append("Grade not reported: integrated over the population's grade distribution.")
    return out


def _driver(name: str, observed: str, reference: str, at_reference: float, excess_mean: float) -> dict:
    """One row of the drivers table: the excess risk with the input at its reference, and the change."""
    return {
        "input": name,
        "observed": observed,
        "reference": reference,
        "excess_risk_if_reference": at_reference,
        "change": excess_mean - at_reference,
    }


def _observation_drivers(terms, counterfactual, sim, excess_values, excess_mean) -> list[dict]:
    return [
        _driver(t.name, t.observed, t.reference, float(np.sum(sim.weights(counterfactual[t.name]) * excess_values)),
                excess_mean)
        for t in terms
    ]


def _covariate_drivers(
    patient, twins: Twins, sim, weights, terms, reference, members, settings, regimen, plan, excess_mean
) -> list[dict]:
    """Excess risk if one covariate were at its population reference: the same random effects of a posterior
    resample, re-drawn with the changed covariate and re-weighted by the likelihood ratio of the measurements."""
    n = settings.sampling.n_drivers
    if n == 0:
        return []
    cov0 = patient_covariates(patient, reference)
    changes = []
    if abs(patient.diameter_mm - COVARIATE_REFERENCE["diameter_mm"]) > 1e-9:
        changes.append(("Tumour diameter", f"{patient.diameter_mm:g} mm", "25 mm (population median)",
                        "diameter_mm", COVARIATE_REFERENCE["diameter_mm"]))
    if patient.grade is not None and patient.grade != COVARIATE_REFERENCE["grade"]:
        changes.append(("Grade", str(patient.grade), "grade 2", "grade", COVARIATE_REFERENCE["grade"]))
    if bool(cov0["alveolar_or_trabecular"].iloc[0]):
        changes.append(("Morphology", ", ".join(patient.morphology), "no alveolar/trabecular structures",
                        "alveolar_or_trabecular", False))
    if (patient.age < 50) != (COVARIATE_REFERENCE["age"] < 50):
        changes.append(("Age", f"{patient.age:g} years", "56 years (population mean)", "age",
                        COVARIATE_REFERENCE["age"]))
    if not changes:
        return []
    rng = np.random.default_rng([settings.sampling.seed, 3])
    pick, count = forecast.systematic_resample(weights, n, rng)
    rows = sim.index[pick]
    base_excess = float(np.sum(count * sim.parts["excess"][pick]) / count.sum())
    old_ll = sum((t.loglik[rows] for t in terms), np.zeros(rows.size))
    pair = [s for s in plan if s.name in ("surgery-first", "nact")]
    # every change drawn and simulated in one batch: the same twins as drawn one change at a time
    covs = []
    for _, _, _, column, value in changes:
        cov = cov0.copy()
        cov[column] = value
        covs.append(cov.loc[cov.index.repeat(rows.size)])
    batch = pd.concat(covs, ignore_index=True)
    indices = np.tile(rows, len(changes))
    tw = draw_twins(patient, twins.n, settings.sampling.seed, reference, members, covariates=batch, indices=indices)
    new_terms = evidence.terms(patient, tw, reference, settings.observation, regimen, tails=False)
    new_ll_all = sum((t.loglik for t in new_terms), np.zeros(indices.size))
    o = forecast.simulate_twins(tw, np.arange(indices.size), pair, reference, settings.sampling.horizon_years)
    ex_all = o["surgery-first"]["dmfs_10y"] - o["nact"]["dmfs_10y"]
    out = []
    for k, (name, observed, ref_text, _, _) in enumerate(changes):
        part = slice(k * rows.size, (k + 1) * rows.size)
        new_ll, ex = new_ll_all[part], ex_all[part]
        w = count * np.exp(new_ll - old_ll - np.max(new_ll - old_ll))
        at_ref = excess_mean + float(np.sum(w * ex) / w.sum()) - base_excess
        if not np.isfinite(at_ref):  # e.g. a fixed plateau below the cells of the reference tumour
            continue
        out.append(_driver(name, observed, ref_text, at_ref, excess_mean))
    return out
