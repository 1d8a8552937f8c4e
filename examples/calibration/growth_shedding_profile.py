"""Does shedding follow the growth rate? The joint natural-history and nodal fit at each pair of growth exponents
``(β, β_n)`` (distant founding ``μ ∝ (DT_ref/DT)^β``, nodal seeding ``∝ (DT_ref/DT)^β_n``; docs/science.md §2.5,
§4.1), the other values of the shipped calibration held, then what no fit sees: GBSG2's treated outcomes given
their node counts, TRANSBIG's in-sample C and how its risk ranks with grade and ER, and Pan 2017's late
recurrence by size and nodes. About 3 minutes per pair.

Usage::

    python examples/calibration/growth_shedding_profile.py [--pairs 0,0 0.5,0 1,1 ...]
"""

from __future__ import annotations

import argparse

import numpy as np
from lifelines.utils import concordance_index
from scipy.stats import spearmanr

from chemomet.calibrate import natural_history as nh
from chemomet.calibrate import targets
from chemomet.calibrate.cohort import VirtualCohort
from chemomet.calibrate.nodes import NodeCountLikelihood, profile_held_value
from chemomet.calibrate.shipped import calibrated_config
from chemomet.calibrate.treated_likelihood import outcome_score
from chemomet.calibrate.vector import natural_history_theta
from chemomet.datasets import load_gbsg2, load_transbig
from chemomet.population import Population

PAIRS = ("0,0", "0.5,0", "1,0", "0.5,0.5", "1,1", "1.5,1.5", "0,1", "0.5,1")


def transbig_ranking(config: dict, theta, transbig) -> tuple[float, float, float]:
    """In-sample C of the 10-year risk on TRANSBIG (given N0) and its rank correlations with grade and ER."""
    cov = transbig.covariates.reset_index(drop=True)
    model = nh.MarginalModel(cov, transbig.time_days, transbig.event, n_nodes=256, seed=7, reference=config,
                             nodes=config["nodes"])
    risk = model.risk(theta, 10.0)
    c = concordance_index(transbig.time_days, -risk, transbig.event)
    return c, spearmanr(risk, cov["grade"]).statistic, spearmanr(risk, cov["er"].astype(float)).statistic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", nargs="+", default=list(PAIRS), help="beta,beta_n pairs")
    args = parser.parse_args()
    shipped = calibrated_config()
    transbig, gbsg2 = load_transbig(), load_gbsg2()
    counts = NodeCountLikelihood(gbsg2)
    for pair in args.pairs:
        beta, beta_n = (float(x) for x in pair.split(","))
        cfg = {**shipped, "nodes": {**shipped["nodes"], "growth_exponent": beta_n}}
        model = nh.MarginalModel(transbig.covariates, transbig.time_days, transbig.event, n_nodes=256,
                                 measurements=nh.published_doubling_times(), nodes=cfg["nodes"], reference=cfg)
        row = profile_held_value(model, counts, natural_history_theta(cfg), "dissemination", "mu_growth_exponent",
                                 [beta]).iloc[0]
        score = outcome_score(gbsg2, population=Population(row.config))["total"]
        c, grade, er = transbig_ranking(row.config, row.theta, transbig)
        pan = [x["model"] for x in targets.pan_by_size_and_nodes(row.config, VirtualCohort.draw(row.config, 4000, 11))]
        print(f"beta {beta:g}, beta_n {beta_n:g}: joint {row.loglik:.1f} (TRANSBIG {row.loglik_node_negative:.1f}, "
              f"counts {row.loglik_counts:.1f}; rho {row.seeding_ratio:.3g}, k {row.count_dispersion:.3g}); "
              f"GBSG2 outcome score {score:.1f}; TRANSBIG C {c:.3f}, rank correlation with grade {grade:+.2f}, "
              f"ER {er:+.2f}; Pan T1 N0/N1-3/N4-9, T2 ... {np.round(pan, 3).tolist()}", flush=True)


if __name__ == "__main__":
    main()
