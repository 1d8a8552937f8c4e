"""Two more candidates for the too-high late recurrence of node-positive disease (docs/science.md §4.1, §7.4),
tried on Pan 2017's cells (ER+, 5 years of endocrine therapy, distant recurrence in years 5-20 among patients free
at 5 years; :func:`chemomet.calibrate.targets.pan_by_size_and_nodes`) at the shipped calibration:

* **a race in the nodes**: a nodal deposit is seen only once it has grown to ``N_det`` cells, and is cleared at
  rate ``δ_s`` until then (``small_deposit_clearance_per_day``; :func:`chemomet.model.nodes.expected_positive_nodes`).
  Fast growers win the race, so node positivity would carry the growth rate, whose inverse sets when distant
  colonies surface. ``ρ`` is re-solved so that the node-positive share of the population stays as shipped; the
  natural history is not refitted. ``--fit`` also runs the joint natural-history + nodal fit (the likelihood the
  shipped calibration maximises) with ``N_det = 1e5`` and ``δ_s`` free, about 10 minutes;
* **shedding correlated with growth speed**: the random effects of ``ln μ`` and of the doubling time correlated
  (``r > 0``: fast growers shed more), so a high count would select fast growers.

Without refitting, the race bends the late gradient strongly (even reverses it) and the correlation bends it
partly; with the fit, the node counts reject the race (see docs/science.md §4.1). About 2 minutes.

Usage::

    python examples/calibration/late_hazard_candidates.py [--fit]
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np
from scipy.optimize import brentq

from chemomet.calibrate import natural_history as nh
from chemomet.calibrate import targets
from chemomet.calibrate.cohort import VirtualCohort
from chemomet.calibrate.nodes import NodeCountLikelihood, fit_jointly
from chemomet.calibrate.shipped import calibrated_config
from chemomet.calibrate.vector import natural_history_theta
from chemomet.datasets import load_gbsg2, load_transbig
from chemomet.model.nodes import expected_positive_nodes, node_count_logpmf
from chemomet.population import Population

PUBLISHED = [targets.PAN_BY_SIZE_AND_NODES[c] for c in
             [(s, n) for s in ("T1", "T2") for n in ("N0", "N1-3", "N4-9")]]


def size_bands(cfg: dict, cohort: VirtualCohort) -> dict:
    """Per size band: the cohort's parameters (ER+/PR+/HER2-, diameters clipped into the band) and each patient's
    DMFS at 5, 10 and 20 years under Pan's treatment."""
    d = cohort.covariates["diameter_mm"].to_numpy()
    out = {}
    for size, band in (("T1", (0.0, 20.0)), ("T2", (20.0, 50.0))):
        sized = cohort.with_covariates(er=True, pr=True, her2=False, diameter_mm=np.clip(d, *band))
        out[size] = (sized.parameters(cfg)[1], targets._pan_dmfs(cfg, sized, targets.PAN_STRATEGY))
    return out


def pan_cells(bands: dict, settings, k: float) -> list[float]:
    """Late recurrence in the six cells with node groups weighted under ``settings``."""
    return [value for params, dmfs in bands.values() for value in targets.late_recurrence_by_node_group(
        dmfs, expected_positive_nodes(params, settings), k).values()]


def show(label: str, cells: list[float]) -> None:
    print(f"{label:<34}" + " ".join(f"{x:.3f}" for x in cells) + f"   T1 N1-3/N0 {cells[1] / cells[0]:.2f}")


def race(cfg: dict, cohort: VirtualCohort) -> None:
    pop = Population(cfg)
    k = pop.settings.node_count_dispersion
    _, everyone = cohort.parameters(cfg)

    def positive_share(settings) -> float:
        return float(-np.expm1(node_count_logpmf(0, expected_positive_nodes(everyone, settings), k)).mean())

    share = positive_share(pop.settings)
    bands = size_bands(cfg, cohort)
    show("shipped", pan_cells(bands, pop.settings, k))
    for n_det in (1e3, 1e5, 1e7):
        for small in (0.0, 1e-3, 3e-3):
            s = replace(pop.settings, nodal_detection_cells=n_det, nodal_small_clearance_per_day=small,
                        nodal_clearance_per_day=0.0)
            log_rho = brentq(lambda x, s=s: positive_share(replace(s, nodal_seeding_ratio=np.exp(x))) - share,
                             -20.0, 40.0)
            show(f"race N_det {n_det:.0e}, δ_s {small:.0e}", pan_cells(
                bands, replace(s, nodal_seeding_ratio=np.exp(log_rho)), k))


def correlation(cfg: dict, cohort: VirtualCohort) -> None:
    for r in (0.3, 0.6, 0.85):
        z = cohort.z.copy()
        z[:, 2] = -r * cohort.z[:, 0] + np.sqrt(1.0 - r * r) * cohort.z[:, 2]  # column 0: doubling time; 2: ln μ
        rows = targets.pan_by_size_and_nodes(cfg, VirtualCohort(cohort.covariates, z, cohort.u, cohort.z_her2))
        show(f"shedding-growth correlation {r}", [row["model"] for row in rows])


def joint_fit(cfg: dict) -> None:
    base = {**cfg, "nodes": {**cfg["nodes"], "detection_cells": 1e5, "small_deposit_clearance_per_day": 3e-3,
                             "clearance_per_day": 0.0, "seeding_ratio": 1230.0}}
    transbig = load_transbig()
    model = nh.MarginalModel(transbig.covariates, transbig.time_days, transbig.event, n_nodes=256,
                             measurements=nh.published_doubling_times(), nodes=base["nodes"], reference=base)
    fit = fit_jointly(model, NodeCountLikelihood(load_gbsg2()), natural_history_theta(base), base["nodes"],
                      fit_small_clearance=True)
    print(f"joint fit with the race (N_det 1e5): log-likelihood {fit.loglik:.2f} (TRANSBIG given N0 "
          f"{fit.loglik_node_negative:.2f}, counts {fit.loglik_counts:.2f}); "
          f"δ_s {fit.small_deposit_clearance_per_day:.3g}/day, ρ {fit.seeding_ratio:.3g}, k {fit.count_dispersion:.3g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit", action="store_true", help="also run the joint fit with the race (about 10 min)")
    args = parser.parse_args()
    cfg = calibrated_config()
    cohort = VirtualCohort.draw(cfg, 4000, 11)
    show("Pan 2017 (T1 N0 N1-3 N4-9, T2 ...)", PUBLISHED)
    race(cfg, cohort)
    correlation(cfg, cohort)
    if args.fit:
        joint_fit(cfg)


if __name__ == "__main__":
    main()
