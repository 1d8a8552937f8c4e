"""The recommendation: explicit, configurable decision rules over the posterior summaries, with its reasons.

Rule (thresholds in ``data/assessment.toml`` ``[decision]``, all absolute 10-year distant-metastasis risks):

1. The planned course is the default and the standard of care: NACT before treatment starts; continuing NACT
   during it.
2. A switch away from it (surgery first; early surgery during NACT) is recommended only when the planned course
   is predicted to raise the risk: excess ≥ ``excess_risk`` with posterior probability ≥ ``probability``.
3. The model *decides* when that rule is met, or when the whole credible interval of the excess lies below
   ``excess_risk`` (the planned course does not raise the risk by as much as the threshold). Otherwise — the
   interval reaches past the threshold without the rule being met, e.g. it spans both signs — it *cannot decide*:
   it says so and recommends the standard course.
4. An accompanying drug passes when it lowers the risk by ≥ ``drug_benefit`` with probability ≥ ``probability``.
   A drug not approved for this use (``approved_for_this_use`` in ``data/drugs.toml``; an unknown drug counts as
   not approved) is never recommended: a drug that passes is reported as a candidate for a clinical trial of it,
   with its evidence level (``data/targets.toml``). Only an approved drug that passes joins the candidates.
5. Among the candidates, the one with the lowest posterior mean risk is recommended.

Every accompanying drug of the model acts on the doorway (TMEM) mechanism — the share of dissemination through
doorways (φ) and its rise under chemotherapy (ε), neither identified by data (docs/science.md §4.3); with
chemotherapy-primed colonisation on, its benefit also rests on that mechanism (priming amplifies the founding the
drug lowers). Whether a drug can *harm* depends on the mechanisms switched on (:mod:`chemomet.mechanisms`): through
mobilisation when its target releases cells (plerixafor, CXCR4), through ``drug_toxicity`` when it carries a
treatment-changing toxicity (pexidartinib). With neither on (the shipped model), the model has no mechanism by which
a drug can harm, so a lower bound of its benefit at 0 is a property of the model, not evidence of safety. The
summary and the reasons say which mechanism each drug's benefit rests on and whether it could harm.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources

from chemomet.assess.settings import Decision
from chemomet.mechanisms import Mechanisms, harm_routes

DOORWAY_MECHANISM = (
    "the doorway (TMEM) mechanism: the share of dissemination through doorways (φ) and its rise under "
    "chemotherapy (strength ε), neither identified by data (docs/science.md §4.3)"
)
"""The mechanism every accompanying drug's modelled benefit rests on."""

NO_HARM_NOTE = (
    "The model has no mechanism by which these drugs can harm (no toxicity, no mobilisation of tumour cells), so "
    "a lower bound of the benefit at 0 reflects the model, not evidence of safety."
)
"""Why the drugs' benefit intervals stop at 0 (the shipped model: neither harm mechanism on)."""

HARM_MECHANISMS = {
    "mobilisation": "mobilisation (its target's inhibition releases tumour cells)",
    "drug_toxicity": "its treatment-changing toxicity (delayed or shortened chemotherapy)",
}
"""The mechanisms through which a drug can raise risk, in plain words (:func:`chemomet.mechanisms.harm_routes`)."""


def harm_note(mechanisms: Mechanisms | None) -> str:
    """What the model lets the accompanying drugs do wrong under ``mechanisms``, in one or two sentences.

    Examples
    --------
    >>> harm_note(None) == NO_HARM_NOTE
    True
    >>> from chemomet.mechanisms import mechanism_settings
    >>> harm_note(mechanism_settings({"mobilisation": True}))[:60]
    'Harm mechanisms on: plerixafor can raise risk through mobili'
    """
    routes = {d: r for d, r in harm_routes(mechanisms or Mechanisms()).items() if r}
    if not routes:
        return NO_HARM_NOTE
    shown = "; ".join(f"{d} can raise risk through {_join([HARM_MECHANISMS[m] for m in r])}" for d, r in routes.items())
    safe = [d for d, r in harm_routes(mechanisms).items() if not r]
    rest = (
        f" {_join(safe)} {'has' if len(safe) == 1 else 'have'} no such mechanism in the model, so a lower bound of "
        f"{'its' if len(safe) == 1 else 'their'} benefit at 0 reflects the model, not evidence of safety."
        if safe else ""
    )
    which = "its benefit interval" if len(routes) == 1 else "their benefit intervals"
    return f"Harm mechanisms on: {shown}, so {which} can include harm.{rest}"

ACTS_ON = {
    "doorway_activity": "blocks the activity of doorways (intravasation through them)",
    "macrophage_recruitment": "blocks the chemotherapy-driven recruitment of doorway macrophages",
}
"""What an accompanying drug does in the model, by the quantity its target acts on (``data/targets.toml``)."""


@dataclass(frozen=True)
class DrugInfo:
    """What the decision needs to know about an accompanying drug.

    name: the drug; approved: approved for this use (False: investigational); evidence: evidence level of its
    target (``data/targets.toml``: clinical, preclinical, assumption; "unknown" when not found); target and
    acts_on: its target and the model quantity it inhibits (None when not found).
    """

    name: str
    approved: bool
    evidence: str
    target: str | None = None
    acts_on: str | None = None

    @property
    def status(self) -> str:
        """ "approved" or "investigational"."""
        return "approved" if self.approved else "investigational"


@cache
def _target_table() -> dict:
    text = resources.files("chemomet.data").joinpath("targets.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def drug_of(strategy: str) -> str:
    """The accompanying drug of a strategy name: ``nact+rebastinib:tamoxifen`` -> ``rebastinib``; else the name."""
    drug = strategy.partition(":")[0].partition("+")[2]
    return drug or strategy


def drug_info(strategy: str) -> DrugInfo:
    """The :class:`DrugInfo` of a strategy's accompanying drug from the shipped tables (``data/drugs.toml``,
    ``data/targets.toml``); a drug not found there counts as investigational with unknown evidence."""
    from chemomet.regimens import load_drugs

    name = drug_of(strategy)
    drug = load_drugs().get(name)
    if drug is None:
        return DrugInfo(name=name, approved=False, evidence="unknown")
    target = _target_table().get(drug.target or "", {})
    return DrugInfo(
        name=name,
        approved=drug.approved_for_this_use is True,
        evidence=str(target.get("evidence", "unknown")),
        target=drug.target,
        acts_on=drug.acts_on,
    )


def trial_phrase(info: DrugInfo) -> str:
    """``candidate for a clinical trial of <drug> (investigational; evidence: <level>)``."""
    return f"candidate for a clinical trial of {info.name} ({info.status}; evidence: {info.evidence})"


def mechanism_text(info: DrugInfo, mechanisms: Mechanisms | None = None) -> str:
    """Which model mechanism the drug's benefit rests on, and any mechanism by which it can harm, in plain words.

    Examples
    --------
    >>> from chemomet.mechanisms import mechanism_settings
    >>> info = drug_info("nact+plerixafor")
    >>> "can also raise risk" in mechanism_text(info)
    False
    >>> print(mechanism_text(info, mechanism_settings({"mobilisation": True})).split("; ")[-1])
    it can also raise risk through mobilisation (its target's inhibition releases tumour cells)
    """
    mech = mechanisms or Mechanisms()
    what = ACTS_ON.get(info.acts_on or "", "acts on the prometastatic microenvironment")
    target = f" ({info.target})" if info.target else ""
    text = f"{info.name}{target} {what}; its modelled benefit rests on {DOORWAY_MECHANISM}"
    if not mech.doorway:
        text += " (switched off here: ε = 0, so only the doorway share φ remains)"
    if mech.priming:
        text += ", amplified by chemotherapy-primed colonisation (on here; strength not identified by data)"
    routes = harm_routes(mech).get(info.name, [])
    if routes:
        text += f"; it can also raise risk through {_join([HARM_MECHANISMS[m] for m in routes])}"
    return text


def pts(x: float) -> str:
    """An absolute risk difference in percentage points, signed."""
    return f"{_num(x, 1)} points"


def pct(x: float) -> str:
    """A probability, with its relation: "= 48%", "> 99%" or "< 1%"."""
    return "< 1%" if x < 0.005 else "> 99%" if x > 0.995 else f"= {100 * x:.0f}%"


def _num(x: float, digits: int) -> str:
    value = round(100 * x, digits) + 0.0  # + 0.0 turns -0.0 into 0.0
    return f"{value:+.{digits}f}"


def ci_pts(s: dict, digits: int = 1) -> str:
    """``mean points (90% CI lo to hi)`` of a risk-difference summary (percentage points, signed)."""
    return f"{_num(s['mean'], digits)} points (90% CI {_num(s['lo'], 1)} to {_num(s['hi'], 1)})"


def _names(planned: str, switch: str | None, labels: dict[str, str]) -> tuple[str, str]:
    """Short plain names of the planned course and its alternative, for sentences."""
    if switch == "early-surgery":
        return "continuing NACT", "stopping NACT for early surgery"
    if planned == "nact" and switch == "surgery-first":
        return "NACT", "surgery first"
    return labels[planned], labels[switch] if switch else "the alternative"


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def recommend(
    risks: dict[str, float],
    planned: str,
    switch: str | None,
    harm: dict,
    drug_effects: dict[str, dict],
    parts: dict[str, dict],
    drivers: list[dict],
    labels: dict[str, str],
    rules: Decision,
    drugs: Mapping[str, DrugInfo] | None = None,
    mechanisms: Mechanisms | None = None,
) -> dict:
    """The recommended strategy, the decision in plain words, the drugs' verdicts and the reasons.

    risks: posterior mean 10-year DM risk per strategy name; planned: the default (standard) course; switch: the
    alternative to it (or None); harm: summary of (planned − switch) risk with ``p_positive``; drug_effects: per
    strategy name, summary of (planned − that strategy) risk with ``p_positive``; parts: the excess-risk parts;
    drivers: the drivers table (sorted, largest first); labels: display names; drugs: per drug strategy, its
    :class:`DrugInfo` (default: :func:`drug_info` from the shipped tables); mechanisms: the mechanisms the
    assessment ran with (default: the shipped model), which decide which mechanism each drug's benefit rests on and
    whether the drugs can harm.

    Returns the fields of :class:`~chemomet.assess.result.Recommendation`: ``strategy`` is the planned course,
    the switch or an approved drug's strategy — never an investigational drug's, which passes into
    ``trial_candidates`` instead; ``summary`` is the decision in plain words (the report's first line), ``decided``
    whether the model could decide.
    """
    info = {name: (drugs or {}).get(name) or drug_info(name) for name in drug_effects}
    mech = mechanisms or Mechanisms()
    harmful = harm["mean"] >= rules.excess_risk and harm["p_positive"] >= rules.probability
    clearly_not = harm["hi"] < rules.excess_risk
    decided = harmful or clearly_not
    passes = {
        name: eff for name, eff in drug_effects.items()
        if eff["mean"] >= rules.drug_benefit and eff["p_positive"] >= rules.probability
    }
    approved = [name for name in passes if info[name].approved]
    trial = [name for name in passes if not info[name].approved]
    candidates = [planned, *approved] + ([switch] if harmful and switch else [])
    best = min(candidates, key=lambda name: risks[name])

    planned_name, switch_name = _names(planned, switch, labels)
    threshold = f"{100 * rules.excess_risk:.1f}"
    excess = f"{_num(harm['mean'], 1)} points, 90% CI {_num(harm['lo'], 1)} to {_num(harm['hi'], 1)}"
    risk = "this patient's 10-year distant-metastasis risk"
    if harmful:
        head = (
            f"Decision: {switch_name if best == switch else labels[best]}. "
            f"{planned_name[0].upper() + planned_name[1:]} is predicted to raise {risk} "
            f"compared with {switch_name} ({excess}), past the {threshold}-point harm threshold with probability "
            f"{100 * harm['p_positive']:.0f}%."
        )
    elif clearly_not:
        head = (
            f"Decision: {planned_name}, the standard course. {planned_name[0].upper() + planned_name[1:]} is not "
            f"predicted to raise {risk} by {threshold} points or more compared with {switch_name} ({excess})."
        )
    else:
        doubt = (
            f"whether {planned_name} raises or lowers {risk} compared with {switch_name}"
            if harm["lo"] < 0 < harm["hi"]
            else f"whether {planned_name} raises {risk} by the {threshold}-point harm threshold compared with "
            f"{switch_name}"
        )
        head = (
            f"Undecided: the model cannot tell {doubt} ({excess}), so it recommends standard care: "
            f"{planned_name} as planned."
        )
    if best in approved:
        head += (
            f" Add {info[best].name} (approved for this use): it lowers the predicted 10-year risk by "
            f"{100 * passes[best]['mean']:.1f} points."
        )
    if trial:
        plural = len(trial) > 1
        kinds = {(info[n].status, info[n].evidence) for n in trial}
        if len(kinds) == 1:  # one status and evidence level for all: say it once
            (status, evidence), = kinds
            each = "each " if plural else ""
            listed = f"{_join([info[n].name for n in trial])} ({each}{status}; evidence: {evidence})"
        else:
            listed = _join([f"{info[n].name} ({info[n].status}; evidence: {info[n].evidence})" for n in trial])
        head += (
            f" Candidate for {'clinical trials' if plural else 'a clinical trial'} of {listed}, not a "
            f"recommendation to give {'them' if plural else 'it'}: the modelled benefit rests on the doorway "
            f"mechanism{' and on chemotherapy-primed colonisation' if mech.priming else ''}, whose strength is not "
            f"identified by data."
        )
    elif not approved and drug_effects:
        head += " No accompanying drug reaches the benefit threshold."

    reasons = [
        f"{labels[planned]} vs {labels[switch] if switch else 'the alternative'}: excess 10-year risk "
        f"{ci_pts(harm)}, P(excess > 0) "
        f"{pct(harm['p_positive'])}; the harm threshold is {pts(rules.excess_risk)} with probability "
        f"≥ {100 * rules.probability:.0f}% — {'met' if harmful else 'not met'}"
        + (
            "." if decided else
            "; the interval reaches past the threshold, so the model cannot decide and keeps the standard course."
        )
    ]
    if parts:
        shown = ", ".join(f"{name.replace('_', ' ')} {pts(v['mean'])}" for name, v in parts.items())
        reasons.append(
            f"Parts of the NACT-attributable excess: {shown}; the microenvironment part rests on the doorway "
            "mechanism, whose strength ε is not identified by data"
            + ("; the mechanisms part on the further mechanisms switched on, whose strengths are not identified "
               "by data either." if "mechanisms" in parts else ".")
        )
    verdicts = []
    for name, eff in drug_effects.items():
        d = info[name]
        if name not in passes:
            verdict = "below the benefit threshold"
        elif not d.approved:
            verdict = "trial candidate"
        else:
            verdict = "recommended" if name == best else "passes, not the lowest risk"
        verdicts.append({
            "strategy": name,
            "drug": d.name,
            "approved_for_this_use": d.approved,
            "evidence": d.evidence,
            "acts_on": d.acts_on,
            "mechanism": mechanism_text(d, mech),
            "passes_threshold": name in passes,
            "verdict": verdict,
        })
        if verdict == "trial candidate":
            framing = f"meets the benefit threshold: {trial_phrase(d)}, not a recommendation"
        elif name in passes:
            framing = f"meets the benefit threshold: {verdict} ({d.status}; evidence: {d.evidence})"
        else:
            framing = f"below the benefit threshold ({d.status}; evidence: {d.evidence})"
        reasons.append(
            f"{labels[name]}: 10-year risk reduction {ci_pts(eff, digits=2)}, model probability of a reduction "
            f"{100 * eff['p_positive']:.0f}% — {framing}."
        )
    if drug_effects:
        at_zero = any(eff["lo"] > -0.0005 for eff in drug_effects.values())  # an interval that stops at 0
        harm_on = any(harm_routes(mech).get(info[n].name) for n in drug_effects)
        reasons.append(
            f"Benefit threshold: a reduction of {100 * rules.drug_benefit:.1f} points with probability "
            f"≥ {100 * rules.probability:.0f}%. Every accompanying drug's modelled benefit rests on "
            f"{DOORWAY_MECHANISM}"
            + (", amplified by chemotherapy-primed colonisation (on)." if mech.priming else ".")
            + (f" {harm_note(mech)}" if (at_zero or harm_on) else "")
        )
        for name in drug_effects:
            reasons.append(f"Mechanism: {mechanism_text(info[name], mech)}.")
    for d in drivers[:2]:
        if d["change"] is not None and abs(d["change"]) >= 0.001:
            where = "without it" if d["reference"] == "not measured" else f"at {d['reference']}"
            reasons.append(
                f"Driver: {d['input']} {d['observed']} — {where} the NACT-attributable excess risk would be "
                f"{pts(d['excess_risk_if_reference'])} (a change of {pts(-d['change'])})."
            )
    return {
        "strategy": best,
        "label": labels[best],
        "summary": head,
        "decided": decided,
        "trial_candidates": trial,
        "drugs": verdicts,
        "reasons": reasons,
    }
