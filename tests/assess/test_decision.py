"""The honest decision (issue 12, Deliver 4): the recommendation is standard care or an approved drug, never an
investigational one, which passes only as a candidate for a clinical trial; the first line of the report and of
the terminal summary states the decision under uncertainty, including when the model cannot decide; the drug
benefit shows its interval, the mechanism it rests on, and no claim of certainty."""

import json
from pathlib import Path

import pytest

from chemomet.assess import Assessment, AssessmentSettings
from chemomet.assess.cli import summary_text
from chemomet.assess.decision import DOORWAY_MECHANISM, DrugInfo, drug_info, drug_of, recommend, trial_phrase
from chemomet.assess.report import render_report
from chemomet.assess.result import Recommendation
from chemomet.regimens import load_drugs

RULES = AssessmentSettings.default().decision  # harm 2 points, benefit 1 point, probability 80%
LABELS = {
    "surgery-first": "Surgery first",
    "nact": "NACT",
    "nact+rebastinib": "NACT + rebastinib",
    "nact+pexidartinib": "NACT + pexidartinib",
    "nact+plerixafor": "NACT + plerixafor",
    "nact+approvedumab": "NACT + approvedumab",
}
SHIPPED = ("nact+rebastinib", "nact+pexidartinib", "nact+plerixafor")
EXAMPLE = Path(__file__).parent / "data" / "assessment_example.json"


def s(mean, lo, hi, p):
    return {"mean": mean, "lo": lo, "hi": hi, "p_positive": p}


UNDECIDED = s(0.007, -0.070, 0.139, 0.20)  # the example patient today: spans both signs and the threshold
HARM = s(0.05, 0.01, 0.10, 0.95)
NO_HARM = s(0.003, -0.010, 0.015, 0.60)  # upper bound below the 2-point threshold
BENEFIT = s(0.03, 0.0, 0.08, 0.97)
SMALL = s(0.004, 0.0, 0.02, 0.72)


def decide(harm, drugs=None, risks=None, switch="surgery-first", drug_table=None):
    drugs = {name: BENEFIT for name in SHIPPED} if drugs is None else drugs
    base = {"surgery-first": 0.25, "nact": 0.26, **{name: 0.23 for name in drugs}, **(risks or {})}
    return recommend(base, "nact", switch, harm, drugs, {}, [], {**LABELS, "early-surgery": "Early surgery"},
                     RULES, drugs=drug_table)


# ------------------------------------------------------------------------------------------------------- data


def test_the_accompanying_drugs_are_investigational_as_data_with_a_source():
    drugs = load_drugs()
    for name in ("rebastinib", "pexidartinib", "plerixafor"):
        assert drugs[name].approved_for_this_use is False
        assert "investigational" in drugs[name].sources["approved_for_this_use"]
        info = drug_info(f"nact+{name}")
        assert (info.approved, info.status, info.evidence) == (False, "investigational", "preclinical")
    assert drugs["paclitaxel"].approved_for_this_use is None  # not stated for chemotherapy: no claim made


def test_drug_of_a_strategy_name_and_an_unknown_drug_counts_as_investigational():
    assert drug_of("nact+rebastinib:tamoxifen") == drug_of("nact-adaptive+rebastinib") == "rebastinib"
    info = drug_info("nact+madeupinib")
    assert (info.name, info.approved, info.evidence) == ("madeupinib", False, "unknown")
    assert trial_phrase(drug_info("nact+rebastinib")) == (
        "candidate for a clinical trial of rebastinib (investigational; evidence: preclinical)"
    )


# --------------------------------------------------------------------------------------------- decision logic


@pytest.mark.parametrize("harm", [UNDECIDED, HARM, NO_HARM])
@pytest.mark.parametrize("benefit", [BENEFIT, s(0.2, 0.1, 0.3, 1.0), SMALL])
def test_an_investigational_drug_is_never_the_headline(harm, benefit):
    """Whatever the excess and however large and certain the modelled benefit."""
    rec = decide(harm, {name: benefit for name in SHIPPED}, {name: 0.01 for name in SHIPPED})
    assert rec["strategy"] in ("nact", "surgery-first")
    decision = rec["summary"].split(" Candidate for")[0]  # the decision, before any trial candidates
    assert not any(name in decision for name in ("rebastinib", "pexidartinib", "plerixafor"))
    passes = benefit["mean"] >= RULES.drug_benefit
    assert rec["trial_candidates"] == (list(SHIPPED) if passes else [])
    for v in rec["drugs"]:
        assert v["verdict"] == ("trial candidate" if passes else "below the benefit threshold")
        assert v["approved_for_this_use"] is False and v["evidence"] == "preclinical"
        assert DOORWAY_MECHANISM in v["mechanism"]
    Recommendation.model_validate(rec)  # the typed result takes it as it is


def test_undecided_says_so_first_recommends_standard_care_and_frames_drugs_as_trial_candidates():
    rec = decide(UNDECIDED)
    assert rec["decided"] is False and rec["strategy"] == "nact"
    first = rec["summary"]
    assert first.startswith("Undecided: the model cannot tell whether NACT raises or lowers this patient's 10-year")
    assert "(+0.7 points, 90% CI -7.0 to +13.9)" in first
    assert "it recommends standard care: NACT as planned." in first
    assert ("Candidate for clinical trials of rebastinib, pexidartinib and plerixafor (each investigational; "
            "evidence: preclinical), not a recommendation to give them") in first
    assert "rests on the doorway mechanism, whose strength is not identified by data" in first
    assert "99%" not in " ".join([first, *rec["reasons"]])
    assert any("cannot decide and keeps the standard course" in r for r in rec["reasons"])


def test_an_interval_on_one_side_of_zero_that_reaches_past_the_threshold_is_undecided_too():
    rec = decide(s(0.015, 0.005, 0.03, 0.97))  # surely positive, mean below the threshold, bound above it
    assert rec["decided"] is False and rec["strategy"] == "nact"
    assert "cannot tell whether NACT raises this patient's 10-year distant-metastasis risk by the 2.0-point" in (
        rec["summary"]
    )


def test_decided_no_harm_keeps_the_standard_course():
    rec = decide(NO_HARM, {"nact+rebastinib": SMALL})
    assert rec["decided"] is True and rec["strategy"] == "nact" and rec["trial_candidates"] == []
    assert rec["summary"].startswith("Decision: NACT, the standard course. NACT is not predicted to raise")
    assert rec["summary"].endswith("No accompanying drug reaches the benefit threshold.")


def test_decided_harm_switches_to_surgery_first_and_keeps_the_drugs_as_trial_candidates():
    rec = decide(HARM, {"nact+rebastinib": BENEFIT}, {"nact+rebastinib": 0.10})  # lowest risk of all
    assert rec["decided"] is True and rec["strategy"] == "surgery-first"
    assert rec["summary"].startswith("Decision: surgery first. NACT is predicted to raise")
    assert "probability 95%" in rec["summary"]
    assert rec["trial_candidates"] == ["nact+rebastinib"]
    assert "Candidate for a clinical trial of rebastinib (investigational; evidence: preclinical)" in rec["summary"]


def test_during_nact_the_sentences_name_continuing_and_early_surgery():
    rec = decide(HARM, {}, switch="early-surgery", risks={"early-surgery": 0.2})
    assert rec["strategy"] == "early-surgery"
    assert rec["summary"].startswith("Decision: stopping NACT for early surgery. Continuing NACT is predicted")


def test_an_approved_drug_that_passes_can_be_recommended():
    """The old rule still holds for a drug approved for this use (none is today)."""
    table = {"nact+approvedumab": DrugInfo("approvedumab", approved=True, evidence="clinical")}
    rec = decide(NO_HARM, {"nact+approvedumab": BENEFIT}, drug_table=table)
    assert rec["strategy"] == "nact+approvedumab" and rec["trial_candidates"] == []
    assert rec["drugs"][0]["verdict"] == "recommended"
    assert "Add approvedumab (approved for this use)" in rec["summary"]


def test_the_no_harm_note_goes_with_a_bound_at_zero():
    at_zero = decide(NO_HARM, {"nact+rebastinib": BENEFIT})
    below = decide(NO_HARM, {"nact+rebastinib": s(0.03, -0.01, 0.08, 0.9)})
    note = "reflects the model, not evidence of safety"
    assert any(note in r for r in at_zero["reasons"])
    assert not any(note in r for r in below["reasons"])
    assert all(DOORWAY_MECHANISM in " ".join(r["reasons"]) for r in (at_zero, below))


# ------------------------------------------------------------------------------------- report and summary line


def _result(harm, reductions):
    """The report fixture with its excess, drug effects and recommendation replaced (strategy-keyed drugs)."""
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["nact_excess_risk_10y"] = harm
    data["drug_risk_reduction_10y"] = reductions
    risks = {r["name"]: r["dm_risk_10y"]["mean"] for r in data["strategies"]}
    labels = {r["name"]: r["label"] for r in data["strategies"]}
    data["recommendation"] = recommend(risks, "nact", "surgery-first", harm, reductions, {}, [], labels, RULES)
    return Assessment.model_validate(data)


@pytest.mark.parametrize(
    "harm, start",
    [
        (UNDECIDED, "Undecided: the model cannot tell whether NACT raises or lowers"),
        (NO_HARM, "Decision: NACT, the standard course."),
        (HARM, "Decision: surgery first."),
    ],
)
def test_the_first_line_of_report_and_summary_is_the_decision(harm, start):
    a = _result(harm, {name: BENEFIT for name in SHIPPED})
    first = summary_text(a).splitlines()[0]
    assert first == a.recommendation.summary and first.startswith(start)
    page = render_report(a)
    main = page[page.index("<main>"):]
    assert main.split("\n")[2].startswith(f'<p class="decision" id="decision">{start}')
    assert a.recommendation.strategy in ("nact", "surgery-first")
    assert "candidate for a clinical trial of rebastinib (investigational; evidence: preclinical)" in page


def test_the_summary_shows_benefit_intervals_status_and_no_certainty():
    a = _result(UNDECIDED, {name: BENEFIT for name in SHIPPED})
    text = summary_text(a)
    assert "  nact+rebastinib: +3.0 (+0.0 to +8.0) [investigational; evidence: preclinical] trial candidate" in text
    assert "no mechanism by which these drugs can harm: a lower bound at 0 reflects the model" in text
    assert "Recommendation: Neoadjuvant chemotherapy" in text
    assert "Candidate for a clinical trial of rebastinib (investigational; evidence: preclinical)" in text
    assert "99%" not in text and "P(> 0)" not in text and "P(benefit)" not in text


def test_a_result_without_a_recommendation_still_summarises():
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["recommendation"] = None
    assert summary_text(data).splitlines()[0].startswith("Decision: —")
