"""Error rates of the trial's tests on synthetic data (exponential survival drawn with NumPy, no simulator).

Under the null every test rejects at a rate within the binomial 95% interval of alpha, and the adjusted p-values
keep the family-wise error rate (over up to 7 experimental arms and over arms x endpoints) at or below alpha;
without adjustment it is far above. The interaction test holds its level when the effect is the same in every
subgroup and finds an effect confined to one subgroup. The full versions (>= 2,000 replicates) are marked slow
(``pytest -m slow tests/trial/test_trial_type1.py``, about two minutes); the default suite runs short versions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from chemomet.trial import TrialSpec
from chemomet.trial import analysis as an

ALPHA = 0.05
N = 200  # patients per arm
TAU = 1461.0  # RMST horizon (days), below the minimum follow-up of 1826 days
MILESTONE = 1096.0  # 3 years (days)


def interval(reps: int, level: float = 0.95, alpha: float = ALPHA) -> tuple[float, float]:
    """The central binomial interval of the rejection rate of a level-alpha test over ``reps`` replicates."""
    lo, hi = stats.binom.ppf([(1 - level) / 2, (1 + level) / 2], reps, alpha)
    return lo / reps, hi / reps


def make_spec(n_arms: int) -> TrialSpec:
    arms = [{"name": "control", "strategy": "nact"}]
    arms += [{"name": f"E{a}", "strategy": "nact+rebastinib"} for a in range(1, n_arms)]
    return TrialSpec(
        name="null trials",
        patients_per_arm=N,
        arms=arms,
        accrual={"duration_days": 1096},
        follow_up={"duration_days": 1826},
        endpoints={"primary": "dmfs", "include": ["dmfs", "pcr"]},
        analysis={"rmst_days": TAU, "landmarks_years": [3], "subgroups": [], "hierarchy": ["dmfs", "pcr"]},
    )


def trial(rng, n_arms: int, hazard_ratios=None) -> pd.DataFrame:
    """One synthetic trial: exponential DMFS (mean 3000 days; uniform censoring from 1826 to 2922 days), pCR 20%."""
    hr = np.ones(n_arms) if hazard_ratios is None else np.asarray(hazard_ratios, float)
    arm = np.repeat(np.arange(n_arms), N)
    t = rng.exponential(3000.0 / hr[arm])
    c = rng.uniform(1826.0, 2922.0, arm.size)
    return pd.DataFrame(
        {
            "arm": arm,
            "dmfs_time_days": np.minimum(t, c),
            "dmfs_event": t <= c,
            "pcr": (rng.random(arm.size) < 0.2).astype(float),
        }
    )


def null_rates(reps: int, n_arms: int, seed: int) -> dict[str, float]:
    """Rejection rates under the global null: each test of arm 1 vs control, and family-wise over all arms."""
    spec = make_spec(n_arms)
    rng = np.random.default_rng(seed)
    hits = dict.fromkeys(
        ["logrank", "cox", "rmst", "milestone", "ph", "pcr", "fwer_raw", "fwer_holm", "fwer_bonferroni", "fwer_gate"],
        0,
    )
    bonf = spec.model_copy(update={"analysis": spec.analysis.model_copy(update={"multiplicity": "bonferroni"})})
    for _ in range(reps):
        df = trial(rng, n_arms)
        tests = an.multiplicity(df, spec)["tests"]
        one = df[df["arm"] <= 1]
        t, e, x = one["dmfs_time_days"].to_numpy(), one["dmfs_event"].to_numpy(), one["arm"].to_numpy() == 1
        hits["logrank"] += tests["dmfs"][0]["p"] < ALPHA
        hits["pcr"] += tests["pcr"][0]["p"] < ALPHA
        hits["cox"] += an.cox_hazard_ratio(t, e, x.astype(int))["cox_p"] < ALPHA
        hits["rmst"] += an.rmst_comparison(t, e, x, TAU)["rmst_difference_p"] < ALPHA
        hits["milestone"] += an.milestone_difference(t, e, x, MILESTONE)["p"] < ALPHA
        hits["ph"] += an.proportional_hazards_test(t, e, x)["p"] < ALPHA
        hits["fwer_raw"] += any(c["p"] < ALPHA for c in tests["dmfs"])
        hits["fwer_holm"] += any(c["p_adjusted_arms"] <= ALPHA for c in tests["dmfs"])
        hits["fwer_gate"] += any(c["p_adjusted"] <= ALPHA for ep in ("dmfs", "pcr") for c in tests[ep])
        adj = an.adjust_p([c["p"] for c in tests["dmfs"]], "bonferroni")
        hits["fwer_bonferroni"] += any(q <= ALPHA for q in adj)
    assert an.multiplicity(df, bonf)["across_arms"] == "bonferroni"
    return {k: v / reps for k, v in hits.items()}


def partial_null_fwer(reps: int, seed: int) -> float:
    """Family-wise error over the true nulls when arm E1 works on DMFS (HR 0.5) and nothing else does: the
    gatekeeping p-values over 3 experimental arms x (DMFS > pCR)."""
    spec = make_spec(4)
    rng = np.random.default_rng(seed)
    errors = 0
    for _ in range(reps):
        tests = an.multiplicity(trial(rng, 4, [1.0, 0.5, 1.0, 1.0]), spec)["tests"]
        true_nulls = tests["dmfs"][1:] + tests["pcr"]  # every hypothesis but E1 on DMFS is true
        errors += any(c["p_adjusted"] <= ALPHA for c in true_nulls)
    return errors / reps


def interaction_rates(reps: int, seed: int, effect_in_one_level: bool) -> float:
    """Share of trials whose treatment x subgroup interaction test has p < alpha. Three levels with their own
    baseline hazards; either the same HR 0.7 in every level (no heterogeneity) or HR 0.4 in level 0 only."""
    rng = np.random.default_rng(seed)
    n = 600
    hits = 0
    for _ in range(reps):
        x = rng.random(n) < 0.5
        level = rng.integers(0, 3, n)
        base = np.array([900.0, 1500.0, 2500.0])[level]
        hr = np.where(level == 0, 0.4, 1.0) if effect_in_one_level else np.full(n, 0.7)
        t = rng.exponential(base / np.where(x, hr, 1.0))
        c = rng.uniform(1000.0, 2000.0, n)
        res = an.interaction_test(np.minimum(t, c), t <= c, x, [(f"L{k}", level == k) for k in range(3)])
        hits += res["interaction_p"] < ALPHA
    return hits / reps


# ----------------------------------------------------------------------------------------------- default suite
def test_null_error_rates_short():
    """300 null trials of 4 arms (3 experimental): each test near alpha, adjustment needed and sufficient."""
    reps = 300
    rates = null_rates(reps, 4, seed=20260101)
    lo, hi = interval(reps, level=0.99)
    for test in ("logrank", "cox", "rmst", "milestone", "ph", "pcr"):
        assert lo <= rates[test] <= hi, (test, rates[test], (lo, hi))
    _, hi95 = interval(reps)
    assert rates["fwer_raw"] > hi95  # three comparisons at 0.05 each: clearly above alpha
    for family in ("fwer_holm", "fwer_bonferroni", "fwer_gate"):
        assert rates[family] <= hi95, (family, rates[family])
    assert rates["fwer_bonferroni"] <= rates["fwer_holm"] <= rates["fwer_raw"]


def test_interaction_test_short():
    """Level under homogeneous effects (200 trials); power when the treatment acts in one subgroup (40 trials)."""
    lo, hi = interval(200, level=0.99)
    assert lo <= interaction_rates(200, seed=7, effect_in_one_level=False) <= hi
    assert interaction_rates(40, seed=8, effect_in_one_level=True) >= 0.8


# --------------------------------------------------------------------------------------------- full versions
@pytest.mark.slow
def test_null_error_rates_full():
    """2,000 null trials of 4 arms, and 2,000 of 8 arms (7 experimental vs one control)."""
    reps = 2000
    lo, hi = interval(reps)
    rates = null_rates(reps, 4, seed=1)
    print("4 arms:", {k: round(v, 4) for k, v in rates.items()}, "95% interval of alpha:", (lo, hi))
    for test in ("logrank", "cox", "rmst", "milestone", "ph", "pcr"):
        assert lo <= rates[test] <= hi, (test, rates[test], (lo, hi))
    for family in ("fwer_holm", "fwer_bonferroni", "fwer_gate"):
        assert rates[family] <= hi, (family, rates[family])
    eight = null_rates(reps, 8, seed=2)
    print("8 arms:", {k: round(v, 4) for k, v in eight.items()})
    assert lo <= eight["logrank"] <= hi
    assert eight["fwer_raw"] > 0.15  # 7 comparisons: about 0.25
    for family in ("fwer_holm", "fwer_bonferroni", "fwer_gate"):
        assert eight[family] <= hi, (family, eight[family])
    partial = partial_null_fwer(reps, seed=3)
    print("partial null (E1 works on DMFS):", partial)
    assert partial <= hi


@pytest.mark.slow
def test_interaction_test_full():
    reps = 2000
    lo, hi = interval(reps)
    level = interaction_rates(reps, seed=4, effect_in_one_level=False)
    power = interaction_rates(500, seed=5, effect_in_one_level=True)
    print("interaction test: type-I error", level, "95% interval", (lo, hi), "power", power)
    assert lo <= level <= hi
    assert power >= 0.9
