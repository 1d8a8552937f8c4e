"""Subgroup effects of NACT and of each drug under each mechanism setting, with the forest plot (docs/science.md §5).

Run: ``python examples/subgroups.py [--n 4000] [--out docs/figures/subgroups.png]`` (about 10 s per 1,000 patients:
five settings x five strategies). Prints the table (as ``chemomet excess-risk --subgroups`` does), writes the figure
and a CSV beside it, and the value of information per biomarker for the example patient.

``--epsilon MEDIAN SDLOG`` replaces every ensemble member's ``epsilon_median`` by a seeded log-normal draw (e.g. the
posterior of ``chemomet calibrate mechanisms``, docs/calibration.md), to see the subgroups under a fitted stress
response rather than the prior one, and also runs every member at the log-normal's 5th and 95th percentiles
(:func:`chemomet.subgroups.with_epsilon_range`: two more CSV columns, faint bars in the figure); with it only the
table is written (``--out`` names its CSV and figure).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from chemomet.calibrate.shipped import ensemble_populations
from chemomet.patient import example_patient
from chemomet.subgroups import (
    members_with_epsilon,
    plot_subgroups,
    subgroup_effects,
    subgroup_text,
    value_of_information,
    with_epsilon_range,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("docs/figures/subgroups.png"))
    ap.add_argument("--epsilon", type=float, nargs=2, metavar=("MEDIAN", "SDLOG"), default=None)
    args = ap.parse_args()
    t0 = time.perf_counter()
    members = None
    if args.epsilon is not None:
        members = members_with_epsilon(*args.epsilon, seed=args.seed, members=tuple(ensemble_populations()))
    table = subgroup_effects(args.n, args.seed, members=members)
    if args.epsilon is not None:  # each effect also at the posterior's 5th and 95th percentiles of epsilon
        table = with_epsilon_range(table, *args.epsilon, args.n, args.seed, members=tuple(ensemble_populations()))
    table.to_csv(args.out.with_suffix(".csv"), index=False, float_format="%.5g")
    plot_subgroups(table, args.out, title=f"AC -> weekly paclitaxel, {args.n:,} virtual patients per setting")
    print(subgroup_text(table))
    if members is not None:
        print(f"{time.perf_counter() - t0:.0f} s; figure {args.out}")
        return
    voi = value_of_information(example_patient(), seed=args.seed)
    print("\nValue of information, example patient (width of the 90% interval of the excess, points):")
    for _, r in voi.iterrows():
        print(f"  {r['biomarker']:<12} unmeasured {100 * r['width_unmeasured']:.2f}, expected once measured "
              f"{100 * r['expected_width_measured']:.2f} (narrowing {100 * r['narrowing']:.2f}); at her value "
              f"({r['observed']}) {100 * r['width_at_observed']:.2f}")
    print(f"{time.perf_counter() - t0:.0f} s; figure {args.out}")


if __name__ == "__main__":
    main()
