"""How much ranking do TRANSBIG's and GBSG2's covariates carry? Out-of-fold Harrell C of flexible learners (issue 11).

Issue 11 asks for a Harrell C of at least 0.68 on each cohort. The mechanistic model reaches 0.627 on TRANSBIG and
0.666 on GBSG2 (docs/calibration.md, "Cross-validation"). This script asks whether any model of the same
covariates does better, on the folds the validation uses (``fold_matrix(n, 5, 5, seed=7)``: 5-fold, 5 repeats, C
of the pooled out-of-fold scores, mean over repeats):

* Cox, linear (the validation's comparator);
* Cox with natural splines of size and age and every pairwise interaction (ridge-penalised, lifelines);
* a random survival forest and gradient-boosted Cox trees (scikit-survival), each over a small grid of settings,
  the best of which is reported as well — a choice made on the outer folds, so an *optimistic* bound;
* the same learners with what the model does not take: TRANSBIG's 76 gene-expression probes (penalised Cox),
  GBSG2's receptor levels (fmol/mg, log scale) and menopausal status.

Run: ``python examples/calibration/discrimination_ceiling.py [--repeats 5] [--out ceiling.json]`` (about 10 minutes
on two cores; needs the ``data`` extra, scikit-survival).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter
from sksurv.datasets import load_breast_cancer, load_gbsg2
from sksurv.ensemble import GradientBoostingSurvivalAnalysis, RandomSurvivalForest
from sksurv.util import Surv

from chemomet.calibrate.folds import fold_matrix
from chemomet.calibrate.survival_metrics import harrell_c


def transbig() -> tuple[dict[str, pd.DataFrame], np.ndarray, np.ndarray]:
    """Designs (clinical; clinical + genes), time (days) and event of TRANSBIG, as the validation codes them."""
    x, y = load_breast_cancer()
    grade = x["grade"].astype(str).map({"well differentiated": 1, "intermediate": 2,
                                        "poorly differentiated": 3}).fillna(2).astype(float)
    clinical = pd.DataFrame({"size": x["size"].astype(float), "grade": grade,
                             "er": (x["er"].astype(str) == "positive").astype(float), "age": x["age"].astype(float)})
    genes = x.filter(like="X").astype(float)
    genes = (genes - genes.mean()) / genes.std()
    return {"clinical": clinical, "clinical + 76 genes": pd.concat([clinical, genes], axis=1)}, \
        np.asarray(y["t.tdm"], float), np.asarray(y["e.tdm"], bool)


def gbsg2() -> tuple[dict[str, pd.DataFrame], np.ndarray, np.ndarray]:
    """Designs (the validation's covariates; + receptor levels and menopause), time (days) and event of GBSG2."""
    x, y = load_gbsg2()
    clinical = pd.DataFrame({
        "size": x["tsize"].astype(float) / 10.0,
        "grade": x["tgrade"].astype(str).map({"I": 1, "II": 2, "III": 3}).astype(float),
        "er": (x["estrec"] >= 10).astype(float), "pr": (x["progrec"] >= 10).astype(float),
        "age": x["age"].astype(float), "log_nodes": np.log1p(x["pnodes"].astype(float)),
        "tamoxifen": (x["horTh"].astype(str) == "yes").astype(float),
    })
    richer = clinical.assign(log_er_level=np.log1p(x["estrec"].astype(float)),
                             log_pr_level=np.log1p(x["progrec"].astype(float)),
                             postmenopausal=(x["menostat"].astype(str) == "Post").astype(float))
    return {"clinical": clinical, "clinical + receptor levels, menopause": richer}, \
        np.asarray(y["time"], float), np.asarray(y["cens"], bool)


def spline_design(d: pd.DataFrame) -> pd.DataFrame:
    """Natural-spline-like terms (x, and squared hinges at the terciles) of size and age, plus pairwise products
    of the linear terms: a flexible, still additive-plus-interactions Cox design."""
    out = d.copy()
    for col in ("size", "age"):
        if col in d:
            for q in (1 / 3, 2 / 3):
                knot = float(d[col].quantile(q))
                out[f"{col}_h{q:.2f}"] = np.maximum(d[col] - knot, 0.0) ** 2
    cols = [c for c in d.columns if d[c].nunique() > 1]
    for i, a in enumerate(cols):
        for b in cols[i + 1 :]:
            out[f"{a}*{b}"] = d[a] * d[b]
    return (out - out.mean()) / out.std().replace(0.0, 1.0)


HORIZON_DAYS = 10 * 365.25
"""The validation scores the predicted 10-year risk (days)."""


def cox_scores(penalizer: float, transform=None):
    """A fold learner: lifelines Cox (ridge ``penalizer``) on the (transformed) design; returns the held-out
    patients' risk by :data:`HORIZON_DAYS` (the baseline is flat after the last training event)."""
    def fit_predict(x: pd.DataFrame, t, e, train, test):
        d = transform(x) if transform else x
        df = d.iloc[train].assign(_t=t[train], _e=e[train].astype(int))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cph = CoxPHFitter(penalizer=penalizer).fit(df, "_t", "_e")
        return 1.0 - cph.predict_survival_function(d.iloc[test], times=[HORIZON_DAYS]).to_numpy()[0]
    return fit_predict


def sksurv_scores(make):
    """A fold learner from a scikit-survival estimator factory; the held-out risk by :data:`HORIZON_DAYS` (or by
    the last training time where follow-up is shorter)."""
    def fit_predict(x: pd.DataFrame, t, e, train, test):
        model = make().fit(x.iloc[train].to_numpy(), Surv.from_arrays(e[train], t[train]))
        fns = model.predict_survival_function(x.iloc[test].to_numpy())
        return np.array([1.0 - fn(min(HORIZON_DAYS, fn.x[-1])) for fn in fns])
    return fit_predict


def out_of_fold_c(learner, x, t, e, labels) -> float:
    """Harrell's C of the pooled out-of-fold 10-year risks, mean over the repeats (rows of ``labels``), as the
    validation scores its models."""
    cs = []
    for row in labels:
        score = np.empty(len(t))
        for k in np.unique(row):
            test, train = np.flatnonzero(row == k), np.flatnonzero(row != k)
            score[test] = learner(x, t, e, train, test)
        cs.append(harrell_c(t, e, score))
    return float(np.mean(cs))


LEARNERS = {
    "Cox, linear": cox_scores(0.0),
    "Cox, splines + interactions (ridge 0.5)": cox_scores(0.5, spline_design),
    "Cox, splines + interactions (ridge 5)": cox_scores(5.0, spline_design),
    **{f"random survival forest (leaf {leaf})": sksurv_scores(
        lambda leaf=leaf: RandomSurvivalForest(n_estimators=300, min_samples_leaf=leaf, max_features="sqrt",
                                               random_state=0, n_jobs=2)) for leaf in (5, 15, 30)},
    **{f"boosted Cox trees (depth {depth})": sksurv_scores(
        lambda depth=depth: GradientBoostingSurvivalAnalysis(n_estimators=150, learning_rate=0.05, max_depth=depth,
                                                             subsample=0.8, random_state=0)) for depth in (1, 2)},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=None, help="write the table as JSON here")
    args = ap.parse_args()
    results = []
    for cohort, (designs, t, e) in (("TRANSBIG", transbig()), ("GBSG2", gbsg2())):
        labels = fold_matrix(len(t), 5, args.repeats, seed=7)
        for design, x in designs.items():
            for name, learner in LEARNERS.items():
                if design != "clinical" and name.startswith("Cox, splines"):
                    continue
                if design == "clinical + 76 genes" and name == "Cox, linear":  # 80 columns, 198 patients
                    for ridge in (0.1, 1.0):
                        c = out_of_fold_c(cox_scores(ridge), x, t, e, labels)
                        results.append({"cohort": cohort, "covariates": design, "model": f"Cox, ridge {ridge:g}",
                                        "c": round(c, 3)})
                        print(f"{cohort:8s} | {design:38s} | {'Cox, ridge ' + format(ridge, 'g'):42s} | C {c:.3f}")
                    continue
                t0 = time.perf_counter()
                c = out_of_fold_c(learner, x, t, e, labels)
                results.append({"cohort": cohort, "covariates": design, "model": name, "c": round(c, 3)})
                print(f"{cohort:8s} | {design:38s} | {name:42s} | C {c:.3f} ({time.perf_counter() - t0:.0f} s)",
                      flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
