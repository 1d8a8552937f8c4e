"""Two checks that miss, under the treatments the trials' patients had: Pan 2017's late recurrence by size and nodes
with and without adjuvant chemotherapy, and EBCTCG 2018's absolute 15-year distant recurrence with and without
endocrine therapy.

The check of calibration.md §2 (``chemomet.calibrate.targets.pan_by_size_and_nodes``) simulates Pan's patients as
5 years of tamoxifen after surgery and nothing else; its node-positive cells come out 1.2–1.8 times Pan's. But the
women of Pan's 88 trials who had positive nodes often had chemotherapy as well, and the node-negative ones seldom
(the shares are not in the source read). This script prints the six cells under three assumptions for everyone —
no chemotherapy, AC ×4 (the regimen of the trials' era that the model knows; the adjuvant target's regimen) and
AC → weekly paclitaxel (a modern anthracycline–taxane regimen) — so the miss can be read against what Pan's
patients had: each node-positive cell's true treatment lies between the rows, nearer the chemotherapy rows.


"""

from __future__ import annotations

import argparse

import numpy as np

from chemomet.calibrate import targets
from chemomet.calibrate.cohort import VirtualCohort, simulate_arm
from chemomet.population import Population
from chemomet.regimens import DEFAULT_REGIMEN

ARMS = {
    "no chemotherapy": ("surgery-only:tamoxifen", DEFAULT_REGIMEN),
    "AC x4": ("surgery-first:tamoxifen", targets.EBCTCG_REGIMEN),
    "AC -> weekly paclitaxel": ("surgery-first:tamoxifen", DEFAULT_REGIMEN),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4000, help="virtual patients (seed 11, as the calibration's check)")
    ap.add_argument("--n-ebctcg", type=int, default=20000, help="virtual patients of the EBCTCG arms (seed 11)")
    args = ap.parse_args()
    config = Population().config
    cohort = VirtualCohort.draw(config, args.n, 11)
    header = None
    for label, (strategy, regimen) in ARMS.items():
        rows = targets.pan_by_size_and_nodes(config, cohort, strategy=strategy, regimen=regimen)
        if header is None:
            header = [f"{r['size']}{r['nodes']}" for r in rows]
            print(f"{'':<26}" + "".join(f"{h:>9}" for h in header))
            print(f"{'Pan 2017':<26}" + "".join(f"{r['published']:>9.2f}" for r in rows))
        print(f"{label:<26}" + "".join(f"{r['model']:>9.3f}" for r in rows))
    ebctcg_arms(config, VirtualCohort.draw(config, args.n_ebctcg, 11))


def ebctcg_arms(config: dict, cohort: VirtualCohort) -> None:
    """EBCTCG 2018's two arms (AC ×4) without, with and with age-restricted tamoxifen for ER-positive women."""
    aged = cohort.covariates["age"].to_numpy(float) >= 50
    print(f"\nEBCTCG 2018, 15-year distant recurrence ({cohort.covariates.shape[0]:,} virtual patients, "
          f"{100 * cohort.covariates['er'].mean():.0f}% ER+, {100 * aged.mean():.0f}% aged 50 or more); "
          "published 0.382 (NACT) and 0.380 (adjuvant)")
    for arm in ("nact", "surgery-first"):
        none = simulate_arm(config, cohort, arm, targets.EBCTCG_REGIMEN).summary["dmfs_15y"].to_numpy()
        tam = simulate_arm(config, cohort, f"{arm}:tamoxifen", targets.EBCTCG_REGIMEN).summary["dmfs_15y"].to_numpy()
        b18 = np.where(aged, tam, none)
        print(f"  {arm:<14} no endocrine therapy {1 - none.mean():.3f}; tamoxifen for every ER+ woman "
              f"{1 - tam.mean():.3f}; for ER+ women aged 50 or more (B-18) {1 - b18.mean():.3f}")


if __name__ == "__main__":
    main()
