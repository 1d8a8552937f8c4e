"""``chemomet calibrate treatment``: every calibration that follows the natural history, in dependency order.

The natural history (``chemomet calibrate natural-history``) fixes growth and shedding; everything else is solved
given it, one block at a time, each on common random numbers:

1. **endocrine** — the tamoxifen non-responding share and median sensitivity on EBCTCG 2011
   (:func:`chemomet.calibrate.endocrine.fit_endocrine`); before the targets, because Pan 2017 is simulated
   with tamoxifen;
2. **targets** — chemosensitivity, grade factor, TMEM link, colonisation efficiency and the kill on
   micrometastases (:func:`chemomet.calibrate.pipeline.run_targets`);
3. **nodes** — the nodal seeding ratio, count dispersion and clearance on GBSG2's node counts and the SEER size
   series (:func:`chemomet.calibrate.nodes.fit_nodal_spread`); after the targets, because the TMEM link ``θ``
   they set scales every patient's shedding, which the node counts measure;
4. **anti-HER2** — trastuzumab's settings and pertuzumab's kill (:func:`chemomet.calibrate.anti_her2.fit_anti_her2`),
   given the chemosensitivity;
5. **docetaxel** — its maximal kill on NeoSphere arm A (:func:`chemomet.calibrate.anti_her2.fit_docetaxel`), given
   trastuzumab;
6. **aromatase inhibitor** — anastrozole's reach into tamoxifen's non-responders on EBCTCG 2015
   (:func:`chemomet.calibrate.endocrine.fit_aromatase_inhibitor`), given the endocrine settings.

Population values go to the folder's ``population.toml`` after each step (an interrupted run keeps the steps
done); drug values (docetaxel, pertuzumab, anastrozole) are drug properties and live in the package's
``data/drugs.toml``, so they are reported in ``report.json`` (``treatment``) beside the shipped values, not written.
"""

from __future__ import annotations

import copy
import datetime as _dt
import time as _time
from pathlib import Path

from chemomet.calibrate import storage
from chemomet.calibrate.anti_her2 import fit_anti_her2, fit_docetaxel
from chemomet.calibrate.cohort import VirtualCohort, with_sensitivity
from chemomet.calibrate.endocrine import fit_aromatase_inhibitor, fit_endocrine
from chemomet.calibrate.nodes import fit_nodal_spread
from chemomet.calibrate.pipeline import POPULATION_HEADER, read_config, run_targets, software
from chemomet.population import Population
from chemomet.regimens import load_drugs

__all__ = ["ENDOCRINE_SEED", "HER2_SEED", "STEPS", "run_treatment"]

STEPS = ("endocrine", "targets", "nodes", "anti-her2", "docetaxel", "aromatase-inhibitor")
"""The steps of :func:`run_treatment`, in the order they run."""

ENDOCRINE_SEED = 21
"""Seed of the virtual cohort of the endocrine and aromatase-inhibitor fits."""

HER2_SEED = 31
"""Seed of the virtual cohort of the anti-HER2 and docetaxel fits."""


def _shipped_drug_values() -> dict[str, float]:
    drugs = load_drugs()
    return {
        "docetaxel.kmax_per_day": float(drugs["docetaxel"].kmax_per_day),
        "pertuzumab.kill_per_day": float(drugs["pertuzumab"].kill_per_day),
        "anastrozole.nonresponder_reach": float(drugs["anastrozole"].nonresponder_reach),
        "anastrozole.nonresponder_block": float(drugs["anastrozole"].nonresponder_block),
    }


def _relative_change(new: float, old: float) -> float:
    return float("inf") if old == 0 and new != 0 else (0.0 if old == new else abs(new - old) / abs(old))


def run_treatment(
    out_dir: Path,
    n: int = 4000,
    n_her2: int = 12000,
    sobol_n: int = 0,
    steps: tuple[str, ...] = STEPS,
    progress=None,
) -> dict:
    """Run the calibrations after the natural history (module docstring) on the folder ``out_dir``.

    Parameters
    ----------
    out_dir : pathlib.Path
        A calibration folder whose ``population.toml`` holds the natural history to build on (the priors if none).
    n : int
        Virtual patients of the endocrine, target and aromatase-inhibitor fits (common random numbers).
    n_her2 : int
        Virtual patients of the anti-HER2 and docetaxel fits (only the HER2-positive ones are used).
    sobol_n : int
        Sobol base sample of the targets step (0: no sensitivity analysis).
    steps : tuple of str
        The steps to run (a subset of :data:`STEPS`; they always run in the order of :data:`STEPS`).
    progress : callable, optional
        Called with one line of text per step.

    Returns
    -------
    dict
        Per step its fitted values and what they reach; ``drugs``: the fitted drug values beside the shipped ones
        (relative change); wall times (seconds). Also stored under ``treatment`` in ``report.json``, merged with
        the record of steps an earlier run did and this one did not.

    Raises
    ------
    ValueError
        If a step is not one of :data:`STEPS`.

    Examples
    --------
    >>> summary = run_treatment(Path("cal"))  # doctest: +SKIP
    >>> summary["drugs"]["docetaxel.kmax_per_day"]  # doctest: +SKIP
    """
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        raise ValueError(f"steps {unknown} are invalid; allowed: {list(STEPS)}")
    say = progress or (lambda msg: None)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = read_config(out_dir)
    summary: dict = {"virtual_patients": {"default": n, "her2": n_her2}, "steps": {}, "wall_time_s": {}}
    fitted_drugs: dict[str, float] = {}
    stamp = "chemomet calibrate treatment"

    def save(config: dict) -> None:
        storage.write_toml(out_dir / "population.toml", config, POPULATION_HEADER)

    def timed(name: str, fn):
        t0 = _time.perf_counter()
        say(f"{name}: fitting")
        out = fn()
        summary["wall_time_s"][name] = round(_time.perf_counter() - t0, 1)
        summary["steps"][name] = out
        return out

    if "endocrine" in steps:
        endo = timed("endocrine", lambda: fit_endocrine(cfg, VirtualCohort.draw(cfg, n, seed=ENDOCRINE_SEED)))
        cfg = with_sensitivity(
            cfg, "endocrine", endo["endocrine_resistance_probability"], endo["endocrine_sensitivity_median"]
        )
        rr = endo["rate_ratios"]
        cfg["treatment"].setdefault("sources", {}).update(
            endocrine_resistance_probability=f"{stamp} (endocrine; chemomet.calibrate.endocrine, {n:,} virtual "
            f"patients, seed {ENDOCRINE_SEED}) to EBCTCG 2011: ~5 years of tamoxifen vs none in ER-positive "
            f"disease, recurrence rate ratio 0.53 (SE 0.03) in years 0-4, reached {rr['years_0_4']:.3f}; a "
            "composite of de novo resistance, non-adherence and weakly ER-positive disease",
            endocrine_sensitivity_median=f"{stamp} (endocrine), with the resistance share, to EBCTCG 2011's rate "
            f"ratio 0.68 (SE 0.06) in years 5-9, reached {rr['years_5_9']:.3f}; years 10-14 reached "
            f"{rr['years_10_14']:.2f} vs published 0.97 (SE 0.10), a check",
        )
        say(f"endocrine: rate ratios {', '.join(f'{k} {v:.3f}' for k, v in endo['rate_ratios'].items())}")
        save(cfg)
    if "targets" in steps:
        tg = timed("targets", lambda: run_targets(out_dir, n=n, sobol_n=sobol_n, progress=say))
        say(f"targets: {tg['passed']} of {tg['total']} inside their intervals")
        cfg = read_config(out_dir)
    if "nodes" in steps:
        from chemomet.datasets import load_gbsg2

        node_negative, theta = _node_negative_term(out_dir, cfg)
        fit = timed("nodes", lambda: _nodes_summary(fit_nodal_spread(
            Population(cfg), load_gbsg2(), node_negative=node_negative, theta=theta)))
        cfg = copy.deepcopy(cfg)
        cfg["nodes"]["seeding_ratio"] = fit["seeding_ratio"]
        cfg["nodes"]["count_dispersion"] = fit["count_dispersion"]
        cfg["nodes"]["clearance_per_day"] = fit["clearance_per_day"]
        profile = ", ".join(f"{r['loglik']:.1f} at {r['clearance_per_day']:g}" for r in fit["profile"])
        cfg["nodes"].setdefault("sources", {}).update(
            seeding_ratio=f"{stamp} (nodes): maximum likelihood on GBSG2 positive-node counts (686 node-positive "
            "patients, truncated at 1) and the node-positive share by diameter (Carter 1989 Cancer 63:181, SEER), "
            "natural history held at this folder's values"
            + ("; with TRANSBIG's outcomes given its node counts (all 0), as the natural-history fit conditions them"
               if node_negative is not None else "")
            + "; nodes as a marker of the tumour's shedding (Carter 1989; "
            "NSABP B-04, Fisher 2002 NEJM 347:567: removing the nodes does not change survival)",
            count_dispersion=f"{stamp} (nodes), see seeding_ratio",
            clearance_per_day=f"{stamp} (nodes): profile log-likelihood over the clearance (per day): {profile}; "
            "it rises and flattens, so the counts measure the present shedding rate more than the tumour's age",
        )
        say(f"nodes: seeding ratio {fit['seeding_ratio']:.3g}, dispersion {fit['count_dispersion']:.3g}")
        save(cfg)
    if "anti-her2" in steps:
        her2_cohort = VirtualCohort.draw(cfg, n_her2, seed=HER2_SEED)
        ah = timed("anti-her2", lambda: fit_anti_her2(cfg, her2_cohort, progress=say))
        cfg = with_sensitivity(
            cfg, "anti_her2", ah["anti_her2_resistance_probability"], ah["anti_her2_sensitivity_median"]
        )
        pcr = ah["pcr_with_trastuzumab"]
        cfg["treatment"].setdefault("sources", {}).update(
            anti_her2_sensitivity_median=f"{stamp} (anti-her2; chemomet.calibrate.anti_her2, {n_her2:,} virtual "
            f"patients, seed {HER2_SEED}): pooled HER2-positive pCR with trastuzumab after AC -> weekly paclitaxel "
            f"{ah['pcr_target_pooled']:.3f} (Cortazar 2014: 30.9% HR+/HER2+, 50.3% HR-/HER2+), reached "
            f"{pcr['HR+/HER2+']:.3f} and {pcr['HR-/HER2+']:.3f}",
            anti_her2_resistance_probability=f"{stamp} (anti-her2), with the median, to EBCTCG 2021 (chemotherapy + "
            "a year of trastuzumab vs chemotherapy alone, recurrence rate ratio 0.66, 0.62-0.71): log-rank ratio "
            f"reached {ah['rate_ratio']:.3f} (distant recurrence, years 0-10); where no share reaches the target, "
            "the boundary 0 (every HER2-positive tumour responding, log-normal spread only)",
        )
        fitted_drugs["pertuzumab.kill_per_day"] = ah["pertuzumab_kill_per_day"]
        say(f"anti-HER2: rate ratio {ah['rate_ratio']:.3f}, pertuzumab kill {ah['pertuzumab_kill_per_day']:.4g}/day")
        save(cfg)
    if "docetaxel" in steps:
        her2_cohort = VirtualCohort.draw(cfg, n_her2, seed=HER2_SEED)
        dt = timed("docetaxel", lambda: fit_docetaxel(cfg, her2_cohort))
        fitted_drugs["docetaxel.kmax_per_day"] = dt["docetaxel_kmax_per_day"]
        say(f"docetaxel: kmax {dt['docetaxel_kmax_per_day']:.4g}/day")
    if "aromatase-inhibitor" in steps:
        ai = timed(
            "aromatase-inhibitor",
            lambda: fit_aromatase_inhibitor(cfg, VirtualCohort.draw(cfg, n, seed=ENDOCRINE_SEED)),
        )
        fitted_drugs["anastrozole.nonresponder_reach"] = ai["nonresponder_reach"]
        fitted_drugs["anastrozole.nonresponder_block"] = ai["nonresponder_block"]
        say(f"aromatase inhibitor: reach {ai['nonresponder_reach']:.3f}, block {ai['nonresponder_block']:.3f}")

    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    shipped = _shipped_drug_values()
    summary["drugs"] = {
        k: {"fitted": v, "shipped": shipped[k], "relative_change": _relative_change(v, shipped[k])}
        for k, v in fitted_drugs.items()
    }
    cfg = copy.deepcopy(cfg)
    cfg.setdefault("provenance", {})["treatment"] = {
        "method": f"{stamp}: steps {', '.join(s for s in STEPS if s in steps)}, in that order, each given the "
        f"previous ones; {n} virtual patients (her2 fits {n_her2}), seeds {ENDOCRINE_SEED} and {HER2_SEED}",
        "software": " ".join(f"{a}={b}" for a, b in software().items()),
        "date": now,
    }
    save(cfg)
    summary["date"] = now
    report = storage.read_json(out_dir / "report.json")
    earlier = report.get("treatment", {})
    for key in ("steps", "wall_time_s", "drugs"):  # a partial run (--step) keeps the other steps' records
        summary[key] = {**earlier.get(key, {}), **summary[key]}
    report["treatment"] = summary
    report["provenance"] = cfg["provenance"]
    storage.write_json(out_dir / "report.json", report)
    return summary


def _node_negative_term(out_dir: Path, cfg: dict):
    """TRANSBIG's likelihood given its node counts, at the folder's natural history, when that was fitted so
    (``report.json`` ``natural_history.conditioned_on_nodes``; a folder without the record counts as conditioned,
    the default of ``chemomet calibrate natural-history``): ``(model, θ)``, or ``(None, None)``."""
    nh_report = storage.read_json(out_dir / "report.json").get("natural_history", {})
    if "conditioned_on_nodes" in nh_report and nh_report["conditioned_on_nodes"] is None:
        return None, None
    from chemomet.calibrate.natural_history import MarginalModel
    from chemomet.calibrate.vector import natural_history_theta
    from chemomet.datasets import load_transbig

    cohort = load_transbig()
    model = MarginalModel(cohort.covariates, cohort.time_days, cohort.event,
                          n_nodes=int(nh_report.get("quadrature_nodes", 512)), nodes=cfg["nodes"], reference=cfg)
    return model, natural_history_theta(cfg)


def _nodes_summary(fit) -> dict:
    return {
        "seeding_ratio": fit.seeding_ratio,
        "count_dispersion": fit.count_dispersion,
        "clearance_per_day": fit.clearance_per_day,
        "loglik": fit.loglik,
        "node_positive_by_size": fit.node_positive_by_size.to_dict(orient="records"),
        "profile": fit.profile.to_dict(orient="records"),
    }
