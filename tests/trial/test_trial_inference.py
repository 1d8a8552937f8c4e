"""The inference added for a trial statistician: PH test, hazard ratio by year, RMST and milestones, interaction
tests, multiplicity (Holm / Bonferroni, gatekeeping), "not applicable", the spec rules that go with them, power
definitions. Checked against lifelines on the same data and against hand-written references; synthetic data
(NumPy), no simulator, except where the local run of the shared fixture is used."""

from __future__ import annotations

import doctest
import itertools

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter, CoxTimeVaryingFitter, KaplanMeierFitter
from lifelines.statistics import logrank_test, proportional_hazard_test
from lifelines.utils import restricted_mean_survival_time

from chemomet.errors import InputError
from chemomet.trial import TrialSpec, parse_trial_spec
from chemomet.trial import analysis as an
from chemomet.units import DAYS_PER_YEAR
from tests.trial.conftest import make_spec

TIGHT = {"precision": 1e-14, "step_size": 0.5}
ARMS3 = [
    {"name": "control", "strategy": "nact"},
    {"name": "A", "strategy": "nact+rebastinib"},
    {"name": "B", "strategy": "nact+plerixafor"},
]


def two_arms(n=2000, hr=0.7, seed=0, tie=None):
    rng = np.random.default_rng(seed)
    x = rng.random(n) < 0.5
    t = rng.exponential(1000.0 / np.where(x, hr, 1.0))
    c = rng.uniform(300, 2000, n)
    time, event = np.minimum(t, c), t <= c
    if tie:
        time = np.ceil(time / tie) * tie
    return time, event, x


def early_effect(n=3000, seed=0):
    """Treatment quarters the hazard in year 1 only (strongly non-proportional); follow-up under 3 years."""
    rng = np.random.default_rng(seed)
    x = rng.random(n) < 0.5
    first = rng.exponential(np.where(x, 1200.0, 300.0))
    t = np.where(first < DAYS_PER_YEAR, first, DAYS_PER_YEAR + rng.exponential(300.0, n))
    c = rng.uniform(800, 3 * DAYS_PER_YEAR - 1, n)
    return np.minimum(t, c), t <= c, x


# ------------------------------------------------------------------------------------- tests vs lifelines
@pytest.mark.parametrize("tie", [None, 30.0])
def test_logrank_equals_lifelines(tie):
    t, e, x = two_arms(tie=tie)
    res = an.logrank(t, e, x)
    lr = logrank_test(t[~x], t[x], e[~x], e[x])
    assert res["statistic"] == pytest.approx(lr.test_statistic, rel=1e-10)
    assert res["p"] == pytest.approx(lr.p_value, rel=1e-9)
    if tie is None:
        assert res["observed_minus_expected"] == pytest.approx(an.observed_minus_expected(t, e, x), rel=1e-10)
    assert an.logrank(t, np.zeros_like(e), x)["p"] is None


def test_ph_test_equals_lifelines_and_detects_non_proportional_hazards():
    for t, e, x, expect_small in (two_arms(1500, 0.6, seed=3) + (False,), early_effect(1500, seed=4) + (True,)):
        df = pd.DataFrame({"T": t, "E": e, "x": x.astype(int)})
        cph = CoxPHFitter().fit(df, "T", "E", fit_options=TIGHT)
        ref = proportional_hazard_test(cph, df, time_transform="rank")
        res = an.proportional_hazards_test(t, e, x)
        assert res["statistic"] == pytest.approx(float(np.asarray(ref.test_statistic)[0]), rel=1e-6)
        assert res["p"] == pytest.approx(float(np.asarray(ref.p_value)[0]), rel=1e-5, abs=1e-300)
        assert (res["p"] < 1e-4) is expect_small


def test_hazard_ratio_by_year_equals_a_cox_model_with_one_effect_per_year():
    t, e, x = early_effect(1200, seed=5)
    rows = an.hazard_ratio_by_interval(t, e, x)
    assert [r["from_years"] for r in rows] == [0.0, 1.0, 2.0]
    # long format, one episode per year, covariate x * [year k]: lifelines' time-varying Cox
    long = []
    for i, (ti, ei, xi) in enumerate(zip(t, e, x, strict=True)):
        for k, r in enumerate(rows):
            lo, hi = r["from_days"], r["to_days"]
            if ti <= lo:
                break
            stop = min(ti, hi)
            long.append(
                {"id": i, "start": lo, "stop": stop, "E": bool(ei and ti <= hi)}
                | {f"x{j}": float(xi and j == k) for j in range(len(rows))}
            )
    ctv = CoxTimeVaryingFitter().fit(
        pd.DataFrame(long), id_col="id", start_col="start", stop_col="stop", event_col="E", fit_options=TIGHT
    )
    for k, r in enumerate(rows):
        assert r["hazard_ratio"] == pytest.approx(np.exp(ctv.params_[f"x{k}"]), rel=1e-5)
        lo, hi = np.exp(ctv.confidence_intervals_.loc[f"x{k}"].to_numpy())
        assert r["ci_lower"] == pytest.approx(lo, rel=1e-4) and r["ci_upper"] == pytest.approx(hi, rel=1e-4)
    assert rows[0]["hazard_ratio"] < 0.4 and rows[1]["ci_lower"] < 1 < rows[1]["ci_upper"]
    assert sum(r["events_control"] + r["events_experimental"] for r in rows) == int(e.sum())


def test_no_finite_hazard_ratio_gives_none_not_nan():
    """Every treated event happens after the last control left the risk set: the likelihood has no maximum."""
    t = np.array([1.0, 2, 3, 10, 11, 12])
    e = np.array([1, 1, 0, 1, 1, 0], bool)
    x = np.array([0, 0, 0, 1, 1, 1])
    assert an.cox_hazard_ratio(t, e, x)["hazard_ratio"] is None
    assert an.proportional_hazards_test(t, e, x)["p"] is None
    rows = an.hazard_ratio_by_interval(t, e, x, width_days=4.0)
    assert all(r["hazard_ratio"] is None and "not estimable" in r["not_applicable"] for r in rows)


def test_rmst_and_milestones_equal_lifelines():
    t, e, x = two_arms(3000, 0.7, seed=6)
    tau = 1200.0
    res = an.rmst_comparison(t, e, x, tau)
    k0, k1 = KaplanMeierFitter().fit(t[~x], e[~x]), KaplanMeierFitter().fit(t[x], e[x])
    r0, r1 = restricted_mean_survival_time(k0, t=tau), restricted_mean_survival_time(k1, t=tau)
    assert res["rmst_control_days"] == pytest.approx(r0, rel=1e-10)
    assert res["rmst_experimental_days"] == pytest.approx(r1, rel=1e-10)
    se = np.hypot(an.rmst_standard_error(k0, tau), an.rmst_standard_error(k1, tau))
    assert res["rmst_difference_upper_days"] - res["rmst_difference_days"] == pytest.approx(1.959964 * se, rel=1e-6)
    assert res["rmst_ratio"] == pytest.approx(r1 / r0)
    assert res["rmst_ratio_lower"] < r1 / r0 < res["rmst_ratio_upper"]
    assert res["rmst_difference_p"] < 1e-4
    m = an.milestone_difference(t, e, x, 3 * DAYS_PER_YEAR / 3)
    s0, s1 = float(k0.predict(m["day"])), float(k1.predict(m["day"]))
    assert (m["control"], m["experimental"]) == (pytest.approx(s0, abs=1e-12), pytest.approx(s1, abs=1e-12))
    greenwood = (
        s0**2 * k0._cumulative_sq_.loc[: m["day"]].iloc[-1] + s1**2 * k1._cumulative_sq_.loc[: m["day"]].iloc[-1]
    )
    assert m["upper"] - m["difference"] == pytest.approx(1.959964 * np.sqrt(greenwood), rel=1e-6)
    assert an.milestone_difference(t, e, x, 5000.0)["difference"] is None


def test_interaction_test_equals_lifelines_stratified_cox():
    rng = np.random.default_rng(8)
    n = 1600
    x = rng.random(n) < 0.5
    level = rng.integers(0, 3, n)
    base = np.array([800.0, 1200.0, 2000.0])[level]  # own baseline hazard per level
    hr = np.where(level == 0, 0.5, 1.0)
    t = rng.exponential(base / np.where(x, hr, 1.0))
    c = rng.uniform(500, 2500, n)
    time, event = np.minimum(t, c), t <= c
    res = an.interaction_test(time, event, x, [(f"L{k}", level == k) for k in range(3)])
    df = pd.DataFrame({"T": time, "E": event, "level": level, "x": x.astype(float)})
    for k in range(3):
        df[f"x{k}"] = df["x"] * (df["level"] == k)
    common = CoxPHFitter().fit(df[["T", "E", "level", "x"]], "T", "E", strata=["level"], fit_options=TIGHT)
    inter = CoxPHFitter().fit(df.drop(columns="x"), "T", "E", strata=["level"], fit_options=TIGHT)
    lr = 2 * (inter.log_likelihood_ - common.log_likelihood_)
    assert res["interaction_statistic"] == pytest.approx(lr, rel=1e-6)
    assert res["interaction_df"] == 2 and res["interaction_p"] < 0.01
    # a level too small is left out (as from the forest plot)
    tiny = an.interaction_test(time, event, x, [("L0", level == 0), ("few", np.arange(n) < 5), ("rest", level > 0)])
    assert tiny["interaction_levels"] == ["L0", "rest"] and tiny["interaction_df"] == 1
    assert an.interaction_test(time, event, x, [("all", np.ones(n, bool))])["interaction_p"] is None


# --------------------------------------------------------------------------------------------- multiplicity
def test_holm_and_bonferroni_by_hand():
    p = [0.01, 0.04, 0.03, 0.2]
    assert an.adjust_p(p, "bonferroni") == pytest.approx([0.04, 0.16, 0.12, 0.8])
    assert an.adjust_p(p, "holm") == pytest.approx([0.04, 0.09, 0.09, 0.2])  # 4*.01, max(3*.03, 2*.04), 1*.2
    assert an.adjust_p([0.5, None], "holm") == [1.0, None]
    with pytest.raises(ValueError):
        an.adjust_p(p, "hochberg")


def _sequentially_rejective(p, alpha, method):
    """Bretz et al. (2009) Algorithm 1 at level alpha, written out hypothesis by hypothesis."""
    n_arms, n_ep = p.shape
    hyp = [(a, k) for a in range(n_arms) for k in range(n_ep)]
    w = {h: (1.0 / n_arms if h[1] == 0 else 0.0) for h in hyp}
    g = {(h, j): 0.0 for h in hyp for j in hyp}
    for a, k in hyp:
        if k + 1 < n_ep:
            g[(a, k), (a, k + 1)] = 1.0
        elif method == "holm" and n_arms > 1:
            for b in range(n_arms):
                if b != a:
                    g[(a, k), (b, 0)] = 1.0 / (n_arms - 1)
    left, rejected = set(hyp), set()
    while True:
        hit = [h for h in sorted(left) if w[h] > 0 and p[h] <= w[h] * alpha]
        if not hit:
            return rejected
        j = hit[0]
        left.discard(j)
        rejected.add(j)
        for lh in left:
            w[lh] += w[j] * g[j, lh]
        new = {}
        for lh, kh in itertools.product(left, left):
            den = 1 - g[lh, j] * g[j, lh]
            new[lh, kh] = 0.0 if lh == kh or den <= 0 else (g[lh, kh] + g[lh, j] * g[j, kh]) / den
        g.update(new)
        w[j] = 0.0


@pytest.mark.parametrize("method", ["holm", "bonferroni"])
def test_gatekeeping_matches_the_sequentially_rejective_graph(method):
    rng = np.random.default_rng(9)
    for _ in range(200):
        n_arms, n_ep = rng.integers(1, 4), rng.integers(1, 4)
        p = np.where(rng.random((n_arms, n_ep)) < 0.5, rng.uniform(0, 0.06, (n_arms, n_ep)), rng.random((n_arms, n_ep)))
        adj = an.gatekeeping_p(p, method)
        assert np.all(adj >= p - 1e-15)
        for alpha in (0.01, 0.025, 0.05):
            by_hand = _sequentially_rejective(p, alpha, method)
            assert {(a, k) for a in range(n_arms) for k in range(n_ep) if adj[a, k] <= alpha} == by_hand
    # one endpoint: Holm / Bonferroni across arms; an arm's later endpoints never below its earlier ones
    p = rng.random((4, 1)) * 0.1
    assert an.gatekeeping_p(p, method).ravel() == pytest.approx(an.adjust_p(p.ravel(), method))
    p = rng.random((3, 3))
    adj = an.gatekeeping_p(p, method)
    assert np.all(np.diff(adj, axis=1) >= 0)
    assert np.isnan(an.gatekeeping_p(np.array([[0.001, np.nan, 0.001]]), method)[0, 1])
    assert an.gatekeeping_p(np.array([[0.001, np.nan, 0.001]]), method)[0, 2] == 1.0  # the gate stays shut


def synthetic_trial(n=300, hazard_ratios=(1.0, 1.0), pcr=(0.2, 0.2, 0.2), seed=0, kinds=None):
    """Arm 0 control and one arm per hazard ratio: exponential DMFS (= DRFI), pCR, TMEM change, covariates."""
    rng = np.random.default_rng(seed)
    arms = len(hazard_ratios) + 1
    arm = np.repeat(np.arange(arms), n)
    hr = np.concatenate([[1.0], hazard_ratios])[arm]
    t = rng.exponential(3000.0 / hr)
    c = rng.uniform(1826, 2922, arm.size)
    df = pd.DataFrame({"arm": arm, "dmfs_time_days": np.minimum(t, c), "dmfs_event": t <= c})
    df["drfi_time_days"], df["drfi_event"] = df["dmfs_time_days"], df["dmfs_event"]
    df["pcr"] = (rng.random(arm.size) < np.asarray(pcr)[arm]).astype(float)
    df["tmem_log_ratio"] = rng.normal(0.7, 0.5, arm.size)
    if kinds is not None:
        for a, k in enumerate(kinds):
            if k != "nact":
                df.loc[df["arm"] == a, "pcr"] = np.nan
                df.loc[df["arm"] == a, "tmem_log_ratio"] = 0.0
    return df


def spec_for(arms=ARMS3, **analysis):
    return TrialSpec(
        name="synthetic",
        patients_per_arm=300,
        arms=arms,
        accrual={"duration_days": 1096},
        follow_up={"duration_days": 1826},
        analysis={"subgroups": [], **analysis},
    )


def test_every_comparison_reports_p_adjusted_and_role():
    spec = spec_for()
    df = synthetic_trial(hazard_ratios=(0.6, 1.0), seed=1)
    res = an.survival_endpoint(df, "dmfs", spec)
    assert (res["role"], res["hierarchy_position"], res["prespecified_test"]) == ("primary", 1, "log-rank")
    a, b = res["comparisons"]
    assert a["p"] == pytest.approx(a["logrank_p"]) and a["favourable"] is True and a["significant"] is True
    assert b["significant"] is False and b["p_adjusted"] >= b["p_adjusted_arms"] >= b["p"]
    assert a["p_adjusted_arms"] == pytest.approx(min(1, 2 * a["p"]) if a["p"] < b["p"] else max(a["p"], 2 * b["p"]))
    # milestones are the difference of the arms' KM landmarks
    ctrl, exp = res["arms"]["control"]["km"], res["arms"]["A"]["km"]
    for label, m in a["milestones"].items():
        assert m["difference"] == pytest.approx(exp[label]["estimate"] - ctrl[label]["estimate"], abs=1e-12)
    assert a["rmst_difference_days"] == pytest.approx(
        res["arms"]["A"]["rmst_days"] - res["arms"]["control"]["rmst_days"]
    )
    assert a["proportional_hazards"]["p"] > 0.001 and len(a["hazard_ratio_by_year"]) == 8
    drfi = an.survival_endpoint(df, "drfi", spec)
    assert (drfi["role"], drfi["hierarchy_position"]) == ("secondary", 2)
    for c, d in zip(res["comparisons"], drfi["comparisons"], strict=True):
        assert d["p_adjusted"] >= c["p_adjusted"]  # fixed sequence: never below the primary's
    explo = spec_for(hierarchy=["dmfs", "pcr"])
    assert an.survival_endpoint(df, "drfi", explo)["comparisons"][0]["p_adjusted"] is None
    assert an.survival_endpoint(df, "drfi", explo)["role"] == "exploratory"


@pytest.mark.parametrize("how", ["cox", "rmst"])
def test_the_prespecified_analysis_gives_p(how):
    spec = spec_for(primary_analysis=how, rmst_days=1461)
    df = synthetic_trial(hazard_ratios=(0.6, 1.0), seed=2)
    res = an.survival_endpoint(df, "dmfs", spec)
    c = res["comparisons"][0]
    assert c["p"] == pytest.approx(c["cox_p"] if how == "cox" else c["rmst_difference_p"], rel=1e-9)
    assert res["prespecified_test"] == ("Cox Wald" if how == "cox" else "RMST difference to 1461 days (z test)")
    assert res["rmst_tau_days"] == 1461


def test_not_applicable_endpoints_say_why():
    arms = [{"name": "surgery first", "strategy": "surgery-first"}, {"name": "NACT", "strategy": "nact"}]
    spec = spec_for(arms=arms)
    df = synthetic_trial(hazard_ratios=(1.0,), kinds=["surgery-first", "nact"])
    tm = an.tmem_endpoint(df, spec)
    assert tm["arms"]["surgery first"]["mean_log_ratio"] is None
    assert "no chemotherapy before surgery" in tm["arms"]["surgery first"]["not_applicable"]
    c = tm["comparisons"][0]
    assert c["difference"] is None and c["lower"] is None and c["ratio"] is None and c["p"] is None
    assert "no chemotherapy before surgery" in c["not_applicable"] and c["p_adjusted"] is None
    assert tm["arms"]["NACT"]["mean_log_ratio"] is not None
    pcr = an.pcr_endpoint(df, spec)
    assert pcr["comparisons"][0]["p"] is None and "neoadjuvant" in pcr["comparisons"][0]["not_applicable"]
    # the hierarchy's gate closes at a comparison that does not apply
    spec = spec_for(arms=arms, hierarchy=["dmfs", "pcr", "drfi"])
    assert an.multiplicity(df, spec)["tests"]["drfi"][0]["p_adjusted"] == 1.0


def test_spec_rules_of_the_analysis():
    base = {"name": "x", "patients_per_arm": 10, "arms": ARMS3[:2]}
    with pytest.raises(InputError) as err:
        parse_trial_spec({**base, "follow_up": {"duration_days": 365}, "analysis": {"rmst_days": 1461}})
    msg = str(err.value)
    assert "analysis.rmst_days = 1461" in msg and "to follow_up.duration_days = 365" in msg and "(unit: days)" in msg
    assert len(msg.splitlines()) == 1
    assert (
        parse_trial_spec({**base, "follow_up": {"duration_days": 365}, "analysis": {"rmst_days": 365}}).rmst_days == 365
    )
    bad = [
        ({"follow_up": {"duration_days": 0}, "analysis": {"primary_analysis": "rmst"}}, "analysis.primary_analysis"),
        ({"analysis": {"hierarchy": ["drfi", "dmfs"]}}, "analysis.hierarchy = ['drfi', 'dmfs']"),
        ({"analysis": {"hierarchy": ["dmfs", "dmfs"]}}, "analysis.hierarchy"),
        ({"endpoints": {"include": ["dmfs"]}, "analysis": {"hierarchy": ["dmfs", "pcr"]}}, "endpoints.include"),
        ({"analysis": {"multiplicity": "hochberg"}}, "analysis.multiplicity = 'hochberg'"),
        ({"analysis": {"primary_analysis": "wilcoxon"}}, "analysis.primary_analysis = 'wilcoxon'"),
        ({"power": {"definition": "one-sided"}}, "power.definition = 'one-sided'"),
    ]
    for change, text in bad:
        with pytest.raises(InputError, match=None) as err:
            parse_trial_spec({**base, **change})
        assert text in str(err.value), (text, str(err.value))
    spec = parse_trial_spec(base)
    assert spec.hierarchy == ("dmfs", "drfi", "pcr", "tmem_change", "os", "dfs")
    assert parse_trial_spec({**base, "endpoints": {"primary": "pcr"}}).hierarchy == (
        "pcr",
        "dmfs",
        "drfi",
        "tmem_change",
        "os",
        "dfs",
    )


def test_power_definitions_and_adjustment_across_arms():
    from tests.trial.test_trial_power import synthetic

    spec = make_spec(patients_per_arm=50, power={"replicates": 10, "patients_per_arm": [50, 200]})
    df = synthetic(spec, 1.6, seed=2)  # harmful effect
    fav = an.power_analysis(df, spec, max_trials=200)
    arm = fav["arms"]["NACT + rebastinib"]
    assert fav["definition"] == "favourable" and arm["power"] == arm["power_favourable"]
    assert arm["power_favourable"][1] == 0.0 and arm["power_two_sided"][1] > 0.8
    two = an.power_analysis(
        df,
        make_spec(
            patients_per_arm=50, power={"replicates": 10, "patients_per_arm": [50, 200], "definition": "two-sided"}
        ),
        max_trials=200,
    )
    assert two["definition"] == "two-sided" and two["arms"]["NACT + rebastinib"]["power"] == arm["power_two_sided"]
    assert "power_adjusted" not in arm  # one experimental arm: nothing to adjust
    # three arms: adjusted power below the unadjusted one
    spec3 = make_spec(
        patients_per_arm=100,
        arms=ARMS3,
        power={"replicates": 40, "patients_per_arm": [100]},
        endpoints={"include": ["dmfs"]},
    )
    rng = np.random.default_rng(3)
    rows = []
    for r in range(40):
        for a, hr in enumerate((1.0, 0.75, 1.0)):
            t = rng.exponential(1000.0 / hr, 100)
            c = rng.uniform(0, 1500, 100)
            rows.append(
                pd.DataFrame(
                    {
                        "replicate": r,
                        "arm": a,
                        "rank": np.arange(100),
                        "dmfs_time_days": np.minimum(t, c),
                        "dmfs_event": t <= c,
                    }
                )
            )
    res = an.power_analysis(pd.concat(rows, ignore_index=True), spec3)
    a = res["arms"]["A"]
    assert res["trials"] == [40] and a["power_adjusted"][0] <= a["power"][0]
    assert 0.2 < a["power"][0] and res["arms"]["B"]["power"][0] < 0.2


def test_report_lines_name_the_design(local_run):
    from chemomet.trial.cli import _line

    text = "\n".join(_line(local_run.summary))
    assert "dmfs (primary, hierarchy position 1; pre-specified test: log-rank)" in text
    assert "pre-specified test p = " in text and "over arms and the hierarchy" in text
    assert "(exploratory; treatment x subgroup interaction p)" in text
    rows = local_run.summary["subgroups"]
    assert all(r["interaction_p"] is None for r in rows if r["subgroup"] == "all")
    assert all(0 <= r["interaction_p"] <= 1 for r in rows if r["subgroup"] != "all")


def test_new_public_functions_have_running_examples():
    names = [
        "logrank",
        "rmst_comparison",
        "milestone_difference",
        "proportional_hazards_test",
        "hazard_ratio_by_interval",
        "interaction_test",
        "adjust_p",
        "gatekeeping_p",
        "multiplicity",
    ]
    finder = doctest.DocTestFinder(recurse=False)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for name in names:
        obj = getattr(an, name)
        assert "Examples\n--------" in (obj.__doc__ and __import__("inspect").getdoc(obj))
        for test in finder.find(obj, name, module=an, globs=dict(vars(an))):
            runner.run(test)
    assert runner.failures == 0
