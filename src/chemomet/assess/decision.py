"""The recommendation: explicit, configurable decision rules over the posterior summaries, with its reasons.

Rule (thresholds in ``data/assessment.toml`` ``[decision]``, all absolute 10-year distant-metastasis risks):

1. The planned course is the default: NACT before treatment starts; continuing NACT during it.
2. A switch away from it (surgery first; early surgery during NACT) becomes a candidate only when the planned
   course is predicted to raise the risk: excess ≥ ``excess_risk`` with posterior probability ≥ ``probability``.
3. An accompanying drug becomes a candidate when it lowers the risk by ≥ ``drug_benefit`` with probability
   ≥ ``probability``.
4. Among the candidates, the one with the lowest posterior mean risk is recommended.
"""

from __future__ import annotations

from chemomet.assess.settings import Decision


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
) -> dict:
    """The recommended strategy, a one-line summary and the reasons.

    risks: posterior mean 10-year DM risk per strategy name; planned: the default course; switch: the
    alternative to it (or None); harm: summary of (planned − switch) risk with ``p_positive``; drug_effects: per
    strategy name, summary of (planned − that strategy) risk with ``p_positive``; parts: the excess-risk parts;
    drivers: the drivers table (sorted, largest first); labels: display names.
    """
    harmful = harm["mean"] >= rules.excess_risk and harm["p_positive"] >= rules.probability
    helpful = {
        name: eff for name, eff in drug_effects.items()
        if eff["mean"] >= rules.drug_benefit and eff["p_positive"] >= rules.probability
    }
    candidates = [planned, *helpful] + ([switch] if harmful and switch else [])
    best = min(candidates, key=lambda name: risks[name])
    reasons = [
        f"{labels[planned]} vs {labels[switch] if switch else 'the alternative'}: excess 10-year risk "
        f"{ci_pts(harm)}, P(excess > 0) "
        f"{pct(harm['p_positive'])}; the harm threshold is {pts(rules.excess_risk)} with probability "
        f"≥ {100 * rules.probability:.0f}% — {'met' if harmful else 'not met'}."
    ]
    if parts:
        shown = ", ".join(f"{name.replace('_', ' ')} {pts(v['mean'])}" for name, v in parts.items())
        reasons.append(f"Parts of the NACT-attributable excess: {shown}.")
    for name, eff in drug_effects.items():
        verdict = "worth adding" if name in helpful else "below the benefit threshold"
        reasons.append(
            f"{labels[name]} changes the 10-year risk by {ci_pts(_negated(eff), digits=2)}, P(benefit) "
            f"{pct(eff['p_positive'])}: {verdict} (threshold: a reduction of {100 * rules.drug_benefit:.1f} points)."
        )
    for d in drivers[:2]:
        if d["change"] is not None and abs(d["change"]) >= 0.001:
            where = "without it" if d["reference"] == "not measured" else f"at {d['reference']}"
            reasons.append(
                f"Driver: {d['input']} {d['observed']} — {where} the NACT-attributable excess risk would be "
                f"{pts(d['excess_risk_if_reference'])} (a change of {pts(-d['change'])})."
            )
    if best == planned:
        summary = f"{labels[planned]}: no candidate lowers the predicted 10-year risk under the decision rules."
    elif best == switch:
        summary = f"{labels[switch]}: {labels[planned]} is predicted to raise the 10-year distant risk."
    else:
        summary = (
            f"{labels[best]}: the accompanying drug lowers the predicted 10-year risk by "
            f"{100 * helpful[best]['mean']:.1f} points."
        )
    return {"strategy": best, "label": labels[best], "summary": summary, "reasons": reasons}


def _negated(s: dict) -> dict:
    return {"mean": -s["mean"], "lo": -s["hi"], "hi": -s["lo"]}
