"""Replication specs: published results in a spec, the model's counterparts with intervals, the table that
docs/trials.md shows (examples/trials/replicate.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter, KaplanMeierFitter

from chemomet.errors import InputError
from chemomet.trial import parse_trial_spec, read_trial_spec
from chemomet.trial.replication import compare_published, markdown_table, period_data
from chemomet.trial.runner import run_replications
from tests.trial.conftest import BASE

ROOT = Path(__file__).resolve().parents[2]
SPECS = [ROOT / "examples/trials/replicate_nsabp_b18.toml", ROOT / "examples/trials/replicate_ebctcg_2018.toml"]
ARMS = [{"name": "adjuvant", "strategy": "surgery-first"}, {"name": "NACT", "strategy": "nact"}]
HR = {
    "label": "HR",
    "endpoint": "drfi",
    "measure": "hazard_ratio",
    "arm": "NACT",
    "value": 1.02,
    "lower": 0.92,
    "upper": 1.14,
    "source": "EBCTCG 2018",
}


def _spec(published):
    return parse_trial_spec({**BASE, "arms": ARMS, "published": published})


@pytest.mark.parametrize(
    ("entry", "text"),
    [
        ({**HR, "arm": "nobody"}, "published.0.arm = 'nobody'"),
        ({**HR, "arm": "adjuvant"}, "published.0.arm = 'adjuvant'"),
        ({**HR, "measure": "survival"}, "published.0.years"),
        ({**HR, "measure": "pcr_rate"}, "published.0.endpoint = 'drfi'"),
        ({**HR, "lower": 1.5}, "published.0.lower/upper"),
        ({**HR, "measure": "event_probability", "years": 15, "value": 38.2}, "published.0.value = 38.2"),
        ({**HR, "measure": "odds_ratio"}, "published.0.measure"),
        ({k: v for k, v in HR.items() if k != "source"}, "published.0.source"),
    ],
)
def test_bad_published_entries_are_refused(entry, text):
    with pytest.raises(InputError) as err:
        _spec([entry])
    assert text in str(err.value), str(err.value)


def test_published_results_do_not_change_the_spec_hash():
    assert _spec([HR]).spec_hash() == _spec([]).spec_hash()
    assert _spec([HR]).spec_hash() != parse_trial_spec({**BASE, "arms": ARMS, "seed": 12}).spec_hash()


def test_model_estimates_equal_lifelines_and_wilson():
    """Each model estimate recomputed independently: Cox HR and CI (lifelines), KM survival and its CI at the
    landmark (lifelines), one minus it, and the pCR rate with its Wilson interval (by hand)."""
    rng = np.random.default_rng(5)
    n = 600
    arm = np.repeat([0, 1], n)
    t = rng.exponential(np.where(arm == 1, 4000.0, 3000.0))
    c = rng.uniform(2000, 6000, 2 * n)
    pcr = np.where(arm == 1, (rng.random(2 * n) < 0.15).astype(float), np.nan)
    df = pd.DataFrame({"arm": arm, "drfi_time_days": np.minimum(t, c), "drfi_event": t <= c, "pcr": pcr})
    pubs = [
        HR,
        {**HR, "label": "DR", "measure": "event_probability", "years": 5, "value": 0.4, "lower": None, "upper": None},
        {
            **HR,
            "label": "DRFS",
            "measure": "survival",
            "arm": "adjuvant",
            "years": 5,
            "value": 0.6,
            "lower": 0.55,
            "upper": 0.65,
        },
        {**HR, "label": "pCR", "endpoint": "pcr", "measure": "pcr_rate", "value": 0.13, "lower": 0.1, "upper": 0.16},
    ]
    rows = compare_published(df, _spec(pubs))
    cph = CoxPHFitter().fit(
        pd.DataFrame({"T": df["drfi_time_days"], "E": df["drfi_event"], "x": arm}),
        "T",
        "E",
        fit_options={"precision": 1e-14, "step_size": 0.5},
    )
    assert rows[0]["model"]["value"] == pytest.approx(cph.hazard_ratios_["x"], rel=1e-7)
    assert rows[0]["model"]["lower"] == pytest.approx(np.exp(cph.confidence_intervals_.iloc[0, 0]), rel=1e-7)
    day = 5 * 365.25
    for row, a in ((rows[1], 1), (rows[2], 0)):
        sel = arm == a
        kmf = KaplanMeierFitter().fit(df["drfi_time_days"][sel], df["drfi_event"][sel])
        s = float(kmf.predict(day))
        ci = kmf.confidence_interval_survival_function_.loc[:day].iloc[-1]
        if row["measure"] == "survival":
            assert (row["model"]["value"], row["model"]["lower"]) == pytest.approx((s, ci.iloc[0]), abs=1e-12)
        else:
            assert (row["model"]["value"], row["model"]["upper"]) == pytest.approx((1 - s, 1 - ci.iloc[0]), abs=1e-12)
    k, m = int(np.nansum(pcr[arm == 1])), n
    p, z = k / m, 1.959963984540054
    centre = (p + z * z / (2 * m)) / (1 + z * z / m)
    half = z * np.sqrt(p * (1 - p) / m + z * z / (4 * m * m)) / (1 + z * z / m)
    assert (rows[3]["model"]["lower"], rows[3]["model"]["upper"]) == pytest.approx((centre - half, centre + half))
    for r in rows:
        v, lo, hi = r["model"]["value"], r["model"]["lower"], r["model"]["upper"]
        assert lo <= v <= hi
        assert r["published_in_model_ci"] == (lo <= r["published"]["value"] <= hi)
    assert rows[1]["intervals_overlap"] is None  # no published interval: only "inside the model's CI or not"
    table = markdown_table([("demo", rows)])
    assert len(table.splitlines()) == 2 + len(pubs)
    assert "| demo | HR, NACT vs adjuvant | drfi | 1.02 (0.92–1.14) |" in table


def test_shipped_specs_read_and_name_their_sources():
    for path in SPECS:
        spec = read_trial_spec(path)
        assert len(spec.published) >= 3 and all(p.source for p in spec.published)
        assert Path(spec.regimen).is_file()  # the regimen file next to the spec, found from any folder
        assert any(p.measure == "hazard_ratio" for p in spec.published)
    b18 = read_trial_spec(SPECS[0])
    assert b18.patients_per_arm * 2 == 1500 and [a.strategy for a in b18.arms] == ["surgery-first", "nact"]
    ebctcg = read_trial_spec(SPECS[1])
    hr = next(p for p in ebctcg.published if p.measure == "hazard_ratio")
    assert (hr.value, hr.lower, hr.upper) == (1.02, 0.92, 1.14)  # EBCTCG, Lancet Oncol 2018;19:27-39


def _replicate_script():
    spec = importlib.util.spec_from_file_location("replicate", ROOT / "examples/trials/replicate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shrunken_replications_run_and_fill_the_table(tmp_path):
    """Both shipped replications at 40 patients per arm: every published result gets a model estimate (or the
    reason it has none), and the script writes the table between the markers of a copy of docs/trials.md."""
    results = run_replications(SPECS, tmp_path / "runs", patients_per_arm=40, figures=False)
    assert [name for name, _ in results] == [
        "NSABP B-18 (model) (40 per arm)",
        "EBCTCG 2018 NACT vs adjuvant (model) (40 per arm)",
    ]
    for (_, rows), path in zip(results, SPECS, strict=True):
        assert len(rows) == len(read_trial_spec(path).published)
        for r in rows:
            m = r["model"]
            assert m["value"] is not None or m.get("not_applicable")
            if m["value"] is not None:
                assert m["lower"] <= m["value"] <= m["upper"]
    table = markdown_table(results)
    docs = tmp_path / "trials.md"
    script = _replicate_script()
    docs.write_text(f"before\n{script.START}\nold\n{script.END}\nafter\n", encoding="utf-8")
    script.write_docs(table, docs)
    text = docs.read_text(encoding="utf-8")
    assert "old" not in text and table in text and text.startswith("before") and text.endswith("after\n")


@pytest.mark.slow
def test_full_replications(tmp_path):
    """The full-size replications (1,500 and 4,756 women; minutes): the hazard ratios the trials found
    neutral — B-18 OS 0.99 (0.85–1.16) and EBCTCG distant recurrence 1.02 (0.92–1.14) — have model intervals
    that overlap the published ones. Absolute levels are reported, not asserted (docs/trials.md says where the
    model misses them)."""
    results = run_replications(SPECS, tmp_path / "runs", workers=None, figures=False)
    rows = {(name, r["label"]): r for name, rr in results for r in rr}
    print(markdown_table(results))
    assert rows[("NSABP B-18 (model)", "OS hazard ratio")]["intervals_overlap"]
    assert rows[("EBCTCG 2018 NACT vs adjuvant (model)", "distant recurrence rate ratio")]["intervals_overlap"]


STANDARD_OF_CARE = [
    ROOT / "examples/trials/replicate_ebctcg_2012_chemotherapy.toml",
    ROOT / "examples/trials/replicate_ebctcg_2011_tamoxifen.toml",
    ROOT / "examples/trials/replicate_ebctcg_2021_trastuzumab.toml",
    ROOT / "examples/trials/replicate_ebctcg_2015_aromatase.toml",
]


def test_a_period_hazard_ratio_counts_only_women_at_risk_in_the_period():
    """Events before the period drop the woman; events after it are censored at its end (years 5-10)."""
    spec = read_trial_spec(STANDARD_OF_CARE[1])
    period = next(p for p in spec.published if p.period_years == (5.0, 10.0))
    assert (period.value, period.lower, period.upper) == (0.68, 0.56, 0.80)  # EBCTCG, Lancet 2011;378:771-84
    year = 365.25
    t = np.array([1.0, 6.0, 7.0, 12.0, 3.0, 8.0, 9.0, 11.0]) * year
    e = np.array([True, True, True, True, True, True, False, True])
    g = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    tt, ee, gg = period_data(t, e, g, 5, 10)
    assert gg.tolist() == [0, 0, 0, 1, 1, 1]
    assert (tt / year).round(6).tolist() == [1.0, 2.0, 5.0, 3.0, 4.0, 5.0]
    assert ee.tolist() == [True, True, False, True, False, False]


@pytest.mark.slow
def test_standard_of_care_trials_reproduce_the_ebctcg_proportional_reductions(tmp_path):
    """Adjuvant AC x4 vs none (EBCTCG 2012: 0.78, 0.60-0.96) and about 5 years of tamoxifen vs none in ER+
    disease (EBCTCG 2011: 0.53, 0.47-0.59 in years 0-4; 0.68, 0.56-0.80 in years 5-9) through `chemomet trial`:
    each model hazard ratio inside the published 95% interval. A year of trastuzumab with chemotherapy vs the
    same chemotherapy in HER2-positive disease (EBCTCG 2021: 0.66, 0.62-0.71): the trial's 95% interval overlaps
    the published one. 5 years of anastrozole vs 5 years of tamoxifen (EBCTCG 2015: 0.64, 0.52-0.78 in years 0-1;
    0.80, 0.68-0.93 in years 2-4): each inside (about 2.5 minutes)."""
    results = run_replications(STANDARD_OF_CARE, tmp_path / "runs", workers=None, figures=False)
    rows = {r["label"]: r for _, rr in results for r in rr}
    print(markdown_table(results))
    for label in ("rate ratio, AC x4 vs none", "recurrence rate ratio, years 0-4", "recurrence rate ratio, years 5-9",
                  "recurrence rate ratio, years 0-1", "recurrence rate ratio, years 2-4"):
        r = rows[label]
        assert r["published"]["lower"] <= r["model"]["value"] <= r["published"]["upper"], (label, r["model"])
    assert rows["recurrence rate ratio, trastuzumab"]["intervals_overlap"], rows["recurrence rate ratio, trastuzumab"]
