"""Does age act on outcome beyond the model's under-50 growth factor? Cox models on TRANSBIG and GBSG2 (science §4.1).

For each cohort, Cox regressions of its endpoint on log size, grade 3, ER and (GBSG2) log(1 + positive nodes), with
an under-50 indicator, age per decade, or both; prints the hazard ratios with 95% intervals and the
log-likelihoods.

Run: ``python examples/calibration/age_effect.py`` (seconds; needs the ``data`` extra, scikit-survival).
"""

from __future__ import annotations

import numpy as np
from lifelines import CoxPHFitter

from chemomet.datasets import load_gbsg2, load_transbig


def main() -> None:
    for cohort in (load_transbig(), load_gbsg2()):
        c = cohort.covariates.copy()
        c["time"], c["event"] = cohort.time_days, cohort.event.astype(int)
        c["log_size"] = np.log(c["diameter_mm"])
        c["grade_3"] = (c["grade"] == 3).astype(float)
        c["er_positive"] = c["er"].astype(float)
        c["under_50"] = (c["age"] < 50).astype(float)
        c["age_per_decade"] = c["age"] / 10.0
        base = ["log_size", "grade_3", "er_positive"]
        if c["nodes_positive"].max() > 0:
            c["log_nodes"] = np.log1p(c["nodes_positive"])
            base.append("log_nodes")
        print(f"{cohort.name}: {cohort.n} patients aged {c['age'].min():g}-{c['age'].max():g}, {cohort.endpoint}")
        for extra in (["under_50"], ["age_per_decade"], ["under_50", "age_per_decade"]):
            fit = CoxPHFitter().fit(c[[*base, *extra, "time", "event"]], "time", "event")
            terms = ", ".join(
                f"{name} HR {row['exp(coef)']:.2f} ({row['exp(coef) lower 95%']:.2f}-{row['exp(coef) upper 95%']:.2f})"
                for name, row in fit.summary.loc[extra].iterrows()
            )
            print(f"  {terms}; log-likelihood {fit.log_likelihood_:.2f}")


if __name__ == "__main__":
    main()
