"""Profile likelihood of the shedding exponent ``γ`` (distant founding and nodal seeding ``∝ μ N^γ``;
docs/science.md §2.5, §4.1): the joint natural-history and nodal fit (TRANSBIG given N0 with Ryu's doubling times,
GBSG2's node counts, the SEER node-positive share by size) at each exponent, the other values of the shipped
calibration held; for each, the node-positive share by size against SEER and the GBSG2 outcome score (the
log-likelihood of its treated outcomes given node counts, not fitted). About 10 minutes.

Usage::

    python examples/calibration/shedding_exponent_profile.py
"""

from __future__ import annotations

import numpy as np

from chemomet.calibrate import natural_history as nh
from chemomet.calibrate.nodes import NODE_POSITIVE_BY_SIZE, NodeCountLikelihood, profile_shedding_exponent
from chemomet.calibrate.shipped import calibrated_config
from chemomet.calibrate.treated_likelihood import outcome_score
from chemomet.calibrate.vector import natural_history_theta
from chemomet.datasets import load_gbsg2, load_transbig
from chemomet.population import Population


def main() -> None:
    cfg = calibrated_config()
    transbig, gbsg2 = load_transbig(), load_gbsg2()
    model = nh.MarginalModel(transbig.covariates, transbig.time_days, transbig.event, n_nodes=256,
                             measurements=nh.published_doubling_times(), nodes=cfg["nodes"], reference=cfg)
    counts = NodeCountLikelihood(gbsg2)
    profile = profile_shedding_exponent(model, counts, natural_history_theta(cfg), progress=print)
    print("SEER node-positive share by size:", [share for *_, share in NODE_POSITIVE_BY_SIZE])
    for row in profile.itertuples():
        pop = Population(row.config)  # the row's fitted configuration
        twins = counts.twins(pop)
        mean = counts.means(pop, twins, row.seeding_ratio, row.config["nodes"]["clearance_per_day"])[1]
        shares = np.round(counts.shares(mean, row.count_dispersion, twins[2]), 3).tolist()
        score = outcome_score(gbsg2, population=pop)["total"]
        print(f"gamma {row.gamma:g}: log-likelihood {row.loglik:.1f} (TRANSBIG {row.loglik_node_negative:.1f}, "
              f"counts {row.loglik_counts:.1f}); shares {shares}; GBSG2 outcome score {score:.1f}")


if __name__ == "__main__":
    main()
