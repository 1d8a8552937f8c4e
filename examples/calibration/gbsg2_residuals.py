"""Where does the mechanistic model lose ranking on GBSG2? Residual covariate effects beside its prediction (issue 11).

The shipped model's 5-year recurrence-free prediction for each GBSG2 patient (the validation's
:func:`chemomet.calibrate.crossval.mechanistic_rfs`: no outcome of the cohort is used, apart from the PR-loss
factor profiled on it) enters a Cox model as ``ln(-ln S(5))``, and each covariate is added beside it, one at a
time. A residual coefficient near 0 means the model already weighs that covariate as the outcomes do; a negative
one that the covariate protects more than the model says, a positive one that it harms more. Printed for all
patients and for the ER-positive ones (where the PR-loss factor acts), with the model's own coefficient (the
calibration slope of the score when the covariate is beside it).

Run: ``python examples/calibration/gbsg2_residuals.py`` (about 1 minute; needs the ``data`` extra,
scikit-survival).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter

from chemomet.calibrate.crossval import mechanistic_rfs
from chemomet.datasets import load_gbsg2

COVARIATES = ("log_size_mm", "grade_1", "grade_3", "er", "pr", "age_per_decade", "log1p_nodes", "tamoxifen")


def design(cohort, survival_5y: np.ndarray) -> pd.DataFrame:
    """The model's score and the covariates of every patient, with time (days) and event."""
    cov = cohort.covariates
    return pd.DataFrame({
        "model": np.log(-np.log(np.clip(survival_5y, 1e-12, 1 - 1e-12))),
        "log_size_mm": np.log(cov["diameter_mm"].to_numpy(float)),
        "grade_1": (cov["grade"] == 1).to_numpy(float), "grade_3": (cov["grade"] == 3).to_numpy(float),
        "er": cov["er"].to_numpy(float), "pr": cov["pr"].to_numpy(float),
        "age_per_decade": cov["age"].to_numpy(float) / 10.0,
        "log1p_nodes": np.log1p(cov["nodes_positive"].to_numpy(float)),
        "tamoxifen": cov["hormone_therapy"].to_numpy(float),
        "time": cohort.time_days, "event": cohort.event.astype(int),
    })


def residual_effects(df: pd.DataFrame) -> pd.DataFrame:
    """One row per covariate: its coefficient (log hazard ratio) and SE beside the model's score, and the score's."""
    rows = []
    for name in COVARIATES:
        if df[name].nunique() < 2:
            continue
        fit = CoxPHFitter().fit(df[["model", name, "time", "event"]], "time", "event")
        rows.append({"covariate": name, "residual_coef": fit.params_[name],
                     "se": fit.standard_errors_[name], "model_coef": fit.params_["model"]})
    return pd.DataFrame(rows).set_index("covariate")


def main() -> None:
    cohort = load_gbsg2()
    pred = mechanistic_rfs(cohort.covariates.reset_index(drop=True), (5.0,), progress=print)
    df = design(cohort, pred["rfs_5y"].to_numpy(float))
    alone = CoxPHFitter().fit(df[["model", "time", "event"]], "time", "event")
    print(f"model's score alone: coefficient {alone.params_['model']:.3f} (SE {alone.standard_errors_['model']:.3f})")
    for label, rows in (("all patients", df), ("ER-positive", df[df["er"] == 1])):
        print(f"\n{label} ({len(rows)}): residual log hazard ratio beside the model's score")
        print(residual_effects(rows).round(3).to_string())


if __name__ == "__main__":
    main()
