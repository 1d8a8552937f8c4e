"""The clinician's HTML report of one patient assessment.

:func:`render_report` turns an :class:`~chemomet.assess.result.Assessment` (or its result dict, which is validated
into one) into one self-contained HTML5 page: inline CSS, figures embedded as ``data:`` PNG URIs, a tiny inline
script and nothing fetched from anywhere (a Content-Security-Policy forbids it, and allows that one script by its
SHA-256 only). Every string taken from the result is HTML-escaped, with control characters escaped and the patient
id capped (:func:`chemomet.errors.printable`); numbers that are missing or not finite show as "—".
:func:`write_report` writes the page atomically.

The page is meant to be read in two minutes: the decision under uncertainty in plain words first (what the model
decides, or that it cannot; an investigational drug only as a candidate for a clinical trial), the recommendation
and its key number, then the inputs, the strategy comparison, the accompanying drugs (benefit with its interval,
approval status, evidence and the mechanism it rests on), what drives the excess risk, the trajectories, the
uncertainty and the model's limits.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from chemomet.assess.decision import DOORWAY_MECHANISM, NO_HARM_NOTE
from chemomet.assess.figures import number_or_nan, strategy_colours, strategy_figure, trajectory_figure
from chemomet.assess.result import (
    Assessment,
    DrugVerdict,
    Evidence,
    Interval,
    RiskDifference,
    RunSettings,
    StrategyResult,
    as_assessment,
)
from chemomet.errors import printable
from chemomet.fileio import atomic_write, check_output_path

DASH = "—"
TITLE = "chemomet — assessment before neoadjuvant chemotherapy"
BANNER = "Research use only — not a medical device; not for clinical decisions"
NOT_MEASURED = "not measured"


# --------------------------------------------------------------------------------------------------- formatting


def epsilon_line(posterior: dict) -> str:
    """The sentence that says the twins' stress response came from its fitted posterior, not the prior.

    >>> epsilon_line({"median": 2.92, "sdlog": 0.424}).split(": ")[1]
    'drawn from its fitted posterior (median 2.92, SD of the log 0.424), not the prior.'
    """
    return (f"Stress response (doorway strength epsilon): drawn from its fitted posterior (median "
            f"{posterior['median']:.3g}, SD of the log {posterior['sdlog']:.3g}), not the prior.")


def _esc(x) -> str:
    """Escaped text of any value; "—" for None, NaN and empty strings."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return DASH
    if isinstance(x, bool):
        return "yes" if x else "no"
    text = str(x)
    return html.escape(printable(text, limit=None)) if text.strip() else DASH


def _patient_id(a: Assessment) -> str:
    """The patient id, escaped and capped at :data:`~chemomet.errors.ID_LIMIT` characters (or "—")."""
    pid = a.patient.id if a.patient else None
    return _esc(None if pid is None else printable(pid))


def _float(x) -> float | None:
    """A finite float, or None (for None, NaN, infinities, booleans and non-numbers)."""
    value = number_or_nan(x)
    return None if math.isnan(value) else value


def _pct(x, signed: bool = False) -> str:
    """A probability as a percentage with one decimal ("12.3%"), or "—"."""
    v = _float(x)
    if v is None:
        return DASH
    return f"{100 * v:+.1f}%" if signed else f"{100 * v:.1f}%"


def _pp(x, signed: bool = True) -> str:
    """A difference of probabilities in percentage points with one decimal ("+1.2"), or "—"."""
    v = _float(x)
    if v is None:
        return DASH
    text = f"{100 * v:+.1f}" if signed else f"{100 * v:.1f}"
    return text.replace("-", "−")


def _num(x) -> str:
    """A plain number with about three significant figures, or "—"; non-numeric strings are escaped."""
    v = _float(x)
    if v is None:
        return _esc(x) if isinstance(x, str) else DASH
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 0.1 or a == 0:
        return f"{v:.2f}"
    return f"{v:.2g}"


def _day(x) -> str:
    """A day count as a whole number, or "—"."""
    v = _float(x)
    return DASH if v is None else f"{v:.0f}"


def _interval(d: Interval | None, fmt, bound_fmt=None) -> str:
    """``mean (lo–hi)`` of an interval, ``fmt`` for the mean and ``bound_fmt`` (default ``fmt``) for the bounds;
    "lo to hi" when a bound carries a sign; "—" when the interval or its mean is absent."""
    if d is None:
        return DASH
    mean = fmt(d.mean)
    if mean == DASH:
        return DASH
    bound_fmt = bound_fmt or fmt
    lo, hi = bound_fmt(d.lo), bound_fmt(d.hi)
    if lo == DASH and hi == DASH:
        return mean
    sep = " to " if any(c in lo + hi for c in "+−-") else "–"
    return f'{mean} <span class="ci">({lo}{sep}{hi})</span>'


def _pct_interval(d) -> str:
    return _interval(d, _pct, lambda v: _pct(v).removesuffix("%"))


def _pp_interval(d) -> str:
    return _interval(d, _pp)


def _risk_10y(strategy: StrategyResult) -> Interval | None:
    """The strategy's 10-year distant-metastasis risk (``dm_risk_10y``, else derived from ``dmfs_10y``)."""
    if strategy.dm_risk_10y is not None:
        return strategy.dm_risk_10y
    dmfs = strategy.dmfs_10y
    if dmfs is None:
        return None

    def flip(x):
        return None if _float(x) is None else 1 - _float(x)

    return Interval(mean=flip(dmfs.mean), lo=flip(dmfs.hi), hi=flip(dmfs.lo))


def _level(a: Assessment) -> str:
    level = _float(a.settings.credible_level if a.settings else None)
    return f"{100 * level:.0f}%" if level is not None else "90%"


def _date(value) -> str:
    """The generation time as ``YYYY-MM-DD HH:MM UTC`` when it parses as ISO 8601, else the escaped text."""
    if not isinstance(value, str):
        return _esc(value)
    try:
        when = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return _esc(value)
    if when.tzinfo is not None:
        when = when.astimezone(_dt.UTC)
        return f"{when:%Y-%m-%d %H:%M} UTC"
    return f"{when:%Y-%m-%d %H:%M}"


def _img(png: bytes, id_: str, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img id="{id_}" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table(id_: str | None, header: Sequence[str], rows: Sequence[Sequence[str]], row_classes=None) -> str:
    """An HTML table; ``header`` and ``rows`` are already-escaped HTML fragments."""
    attr = f' id="{id_}"' if id_ else ""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = row_classes[i] if row_classes else ""
        cls_attr = f' class="{cls}"' if cls else ""
        body.append(f"<tr{cls_attr}>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>")
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _list(items) -> str:
    items = [i for i in (items or []) if i is not None]
    if not items:
        return ""
    return "<ul>" + "".join(f"<li>{_esc(i)}</li>" for i in items) + "</ul>"


# ----------------------------------------------------------------------------------------------------- sections


def _labels(a: Assessment) -> dict[str, str]:
    return {str(s.name): str(s.label or s.name) for s in a.strategies}


def _header(a: Assessment) -> str:
    return f"""<header>
<h1>{html.escape(TITLE)}</h1>
<p class="meta">Patient <strong id="patient-id">{_patient_id(a)}</strong>
 · generated {_date(a.generated)}
 · chemomet {_esc(a.chemomet_version)}</p>
<div class="banner" role="note">{html.escape(BANNER)}</div>
</header>"""


def _recommendation(a: Assessment) -> str:
    rec = a.recommendation
    name = rec.strategy if rec else None
    label = _labels(a).get(str(name))
    strategy = _esc(name)
    if label and label != str(name):
        strategy += f' <span class="sub">— {_esc(label)}</span>'
    excess = a.nact_excess_risk_10y or RiskDifference()
    level = _level(a)
    thresholds = a.settings.thresholds if a.settings else None
    threshold_txt = ""
    if thresholds is not None:  # validated: finite numbers
        threshold_txt = (f'<p class="note">Concern threshold: excess above {_pp(thresholds.excess_risk, False)} '
                         f"percentage points with probability ≥ {_pct(thresholds.probability)}.</p>")
    lo, hi = _pp(excess.lo), _pp(excess.hi)
    return f"""<section id="recommendation" class="box">
<p class="decision" id="decision">{_esc(rec.summary if rec else None)}</p>
<h2>Recommendation: <span id="recommended-strategy">{strategy}</span></h2>
{_trial_candidates(a)}
{_list(rec.reasons if rec else None)}
<div class="key" id="key-number">
<div class="key-label">NACT-attributable excess 10-year distant-metastasis risk (NACT − surgery first)</div>
<div class="key-value">{_pp(excess.mean)} <span class="unit">percentage points</span></div>
<div class="key-ci">{level} credible interval {lo} to {hi} · P(excess &gt; 0) = {_pct(excess.p_positive)}</div>
</div>
{threshold_txt}
</section>"""


def _status(v: DrugVerdict | None) -> str:
    """ "approved" or "investigational" (escaped), "—" when the result does not say."""
    if v is None or v.approved_for_this_use is None:
        return DASH
    return "approved" if v.approved_for_this_use else "investigational"


def _trial_candidates(a: Assessment) -> str:
    """The investigational drugs that pass the benefit threshold: candidates for a trial, not recommendations."""
    rec = a.recommendation
    if rec is None or not rec.trial_candidates:
        return ""
    labels = _labels(a)
    items = []
    for name in rec.trial_candidates:
        v = rec.verdict_for(name)
        drug = v.drug if v is not None and v.drug else name
        evidence = v.evidence if v is not None else None
        effect = a.drug_risk_reduction_10y.get(name) or a.drug_risk_reduction_10y.get(drug)
        acts_on = v.acts_on if v is not None else None
        acts = f", acting on {_esc(ACTS_ON.get(acts_on, acts_on))}" if acts_on else ""
        items.append(f"<li>{_esc(labels.get(name, name))}: candidate for a clinical trial of {_esc(drug)} "
                     f"({_esc(_status(v))}; evidence: {_esc(evidence)}){acts}; modelled 10-year risk reduction "
                     f"{_pp_interval(effect)} percentage points.</li>")
    note = html.escape(f"Not recommendations: the modelled benefit rests on {DOORWAY_MECHANISM}.")
    return (f'<div class="trial" id="trial-candidates"><strong>Candidates for a clinical trial, not '
            f'recommendations</strong><ul>{"".join(items)}</ul><p class="note">{note}</p></div>')


def _inputs(a: Assessment) -> str:
    rows, classes = [], []
    for item in a.inputs:
        measured = isinstance(item.status, str) and item.status.strip().lower() == "measured"
        rows.append([_esc(item.name), _esc(item.value), _esc(item.status)])
        classes.append("" if measured else "unmeasured")
    table = _table("inputs-table", ["Input", "Value", "Status"], rows, classes) if rows else "<p>No inputs.</p>"
    dynamic = a.dynamic
    extra = ""
    if dynamic is not None:
        measures = "; ".join(f"day {_day(d.day)}: {_num(d.diameter_mm)} mm" for d in dynamic.diameters) or DASH
        on = "on neoadjuvant chemotherapy" if dynamic.on_nact else "not on treatment"
        note = f" {_esc(dynamic.note)}" if dynamic.note else ""
        extra = f'<p class="note" id="dynamic">Measured response ({on}): tumour diameter {measures}.{note}</p>'
    return f"""<section id="inputs">
<h2>Patient inputs</h2>
{table}
{extra}
</section>"""


def _strategies(a: Assessment) -> str:
    level = _level(a)
    recommended = str(a.recommendation.strategy if a.recommendation else None)
    trial = set(a.recommendation.trial_candidates if a.recommendation else [])
    colours = strategy_colours(a)
    rows, classes = [], []
    for s in a.strategies:
        name = str(s.name)
        swatch = f'<span class="swatch" style="background:{colours.get(name, "#000")}"></span>'
        cell = f"{swatch}<strong>{_esc(s.name)}</strong>"
        if s.label and str(s.label) != name:
            cell += f'<br><span class="sub">{_esc(s.label)}</span>'
        if name == recommended:
            cell += ' <span class="tag">recommended</span>'
        elif name in trial:
            cell += ' <span class="tag trial-tag">trial candidate</span>'
        rows.append([
            cell,
            _pct_interval(s.dmfs_5y),
            _pct_interval(s.dmfs_10y),
            _pct_interval(_risk_10y(s)),
            _pct(s.p_pcr),
            _interval(s.tmem_at_surgery_10hpf, _num),
            _interval(s.ctc_expected_surgery, _num),
        ])
        classes.append("recommended" if name == recommended else "")
    header = ["Strategy", f"DMFS 5 y ({level} CI)", f"DMFS 10 y ({level} CI)", "10-year DM risk", "P(pCR)",
              "TMEM at surgery (per 10 HPF)", "Expected CTC at surgery (per 7.5 mL)"]
    alt = (f"Forest plot: 10-year distant-metastasis risk per strategy with {level} credible intervals "
           "(filled points), 5-year risk (open diamonds); recommended strategy shaded.")
    return f"""<section id="strategies">
<h2>Strategy comparison</h2>
<figure>{_img(strategy_figure(a), "strategy-plot", alt)}</figure>
{_table("strategy-table", header, rows, classes)}
<p class="note">DMFS: distant-metastasis-free survival; DM: distant metastasis; pCR: pathological complete response;
TMEM: tumour microenvironment of metastasis doorways; CTC: circulating tumour cells; CI: credible interval.</p>
</section>"""


VERDICTS = {"trial candidate": "candidate for a clinical trial, not a recommendation"}
ACTS_ON = {"doorway_activity": "doorway activity", "macrophage_recruitment": "macrophage recruitment to doorways"}


def _drugs(a: Assessment) -> str:
    level = _level(a)
    rec = a.recommendation
    rows = []
    for name, d in a.drug_risk_reduction_10y.items():
        v = rec.verdict_for(name) if rec is not None else None
        acts_on = v.acts_on if v is not None else None
        verdict = v.verdict if v is not None else None
        rows.append([_esc(name), _esc(_status(v)), _esc(v.evidence if v is not None else None),
                     _esc(ACTS_ON.get(acts_on, acts_on)), _pp_interval(d), _esc(VERDICTS.get(verdict, verdict))])
    if not rows:
        return '<section id="drugs"><h2>Accompanying drugs</h2><p>No accompanying drug was assessed.</p></section>'
    thresholds = a.settings.thresholds if a.settings else None
    threshold = _float(thresholds.drug_benefit if thresholds else None)
    probability = _float(thresholds.probability if thresholds else None)
    notes = []
    if threshold is not None:
        with_p = f" with probability ≥ {_pct(probability)}" if probability is not None else ""
        notes.append(f"Benefit threshold: a reduction of at least {_pp(threshold, False)} percentage points"
                     f"{with_p}. An investigational drug that passes it is a candidate for a clinical trial, "
                     "never the recommendation.")
    notes.append(f"Every drug's modelled benefit rests on {DOORWAY_MECHANISM}.")
    if a.settings and a.settings.epsilon_posterior:
        notes.append(epsilon_line(a.settings.epsilon_posterior))
    record = (a.settings.mechanisms if a.settings else None) or {}
    on = [m for m in record.get("on", []) if m != "doorway"]
    routes = {d: r for d, r in (record.get("harm_routes") or {}).items() if r}
    if on:
        notes.append(f"Mechanisms switched on besides the doorway mechanism: {', '.join(on)} (prior medians unless "
                     "given; strengths not identified by data).")
    if routes:
        notes.append("Drugs that can harm in this setting: "
                     + "; ".join(f"{d} through {', '.join(r)}" for d, r in routes.items()) + ".")
    elif any((lo := _float(d.lo)) is not None and lo > -0.0005 for d in a.drug_risk_reduction_10y.values()):
        notes.append(NO_HARM_NOTE)
    table = _table("drug-table", ["Drug (with NACT)", "Status", "Evidence (target)", "Acts on",
                                  f"10-year DM risk reduction, percentage points ({level} CI)", "Verdict"], rows)
    notes_html = "".join(f'<p class="note">{html.escape(n)}</p>' for n in notes)
    return f"""<section id="drugs">
<h2>Accompanying drugs</h2>
{table}
{notes_html}
</section>"""


PART_NAMES = {"mechanisms": "further mechanisms switched on (priming, mobilisation)",
              "microenvironment": "prometastatic microenvironment (TMEM)", "delay": "delay of surgery",
              "kill_timing": "timing of tumour-cell kill"}


def _drivers(a: Assessment) -> str:
    rows = [[_esc(d.input), _esc(d.observed), _esc(d.reference), _pp(d.excess_risk_if_reference), _pp(d.change)]
            for d in a.drivers]
    header = ["Input", "Observed", "Reference value", "Excess 10-y risk if at reference (pp)",
              "Change due to this input (pp)"]
    table = _table("drivers-table", header, rows) if rows else "<p>No driver analysis.</p>"
    parts_html = ""
    if a.excess_parts_10y is not None:
        level = _level(a)
        prow = [[_esc(PART_NAMES[k]), _pp_interval(v)] for k, v in a.excess_parts_10y  # fields in order
                if not (k == "mechanisms" and v is None)]  # that part only when they are on
        parts_html = ("<h3>Parts of the excess risk by mechanism</h3>"
                      + _table("parts-table", ["Mechanism", f"Excess 10-y risk, pp ({level} CI)"], prow))
    excess = _pp(a.nact_excess_risk_10y.mean if a.nact_excess_risk_10y else None)
    return f"""<section id="drivers">
<h2>What drives the excess risk</h2>
<p class="note">Excess 10-year risk of NACT over surgery first for this patient: {excess} percentage points (pp).
Each row recomputes it with one input set to its reference value.</p>
{table}
{parts_html}
</section>"""


def _trajectories(a: Assessment) -> str:
    level = _level(a)
    alt = (f"Predicted TMEM doorways per 10 HPF (left) and expected CTCs per 7.5 mL (right) over days from diagnosis "
           f"per strategy: median line and {level} band; dotted lines mark surgery.")
    return f"""<section id="trajectories">
<h2>Predicted trajectories</h2>
<figure>{_img(trajectory_figure(a), "trajectory-plot", alt)}</figure>
</section>"""


def _uncertainty(a: Assessment) -> str:
    evidence = a.evidence or Evidence()
    settings = a.settings or RunSettings()
    frac = evidence.ess_fraction
    frac_txt = f" ({_pct(frac)} of the twins)" if _float(frac) is not None else ""
    warnings = evidence.warnings or []
    if warnings:
        warn = f'<div class="warning" id="warnings" role="alert"><strong>Warnings</strong>{_list(warnings)}</div>'
    else:
        warn = '<p class="ok" id="no-warnings">No warnings.</p>'
    bio_html = ""
    if evidence.biomarkers:
        rows = [[_esc(k), _num(v.observed), _num(v.prior_predictive_p)] for k, v in evidence.biomarkers.items()]
        bio_html = ('<p class="note">How usual each measured biomarker is under the population prior '
                    "(a small prior-predictive p means an unusual value):</p>"
                    + _table("biomarker-table", ["Biomarker", "Observed", "Prior-predictive p"], rows))
    return f"""<section id="uncertainty">
<h2>Uncertainty</h2>
<p>Effective sample size of the weighted twin population: <strong id="ess">{_num(evidence.ess)}</strong>{frac_txt},
from {_num(settings.n_twins)} twins ({_num(settings.n_simulated)} simulated).</p>
{warn}
{bio_html}
</section>"""


def _limits(a: Assessment) -> str:
    s = a.settings or RunSettings()
    method = (f"Method: {_num(s.n_twins)} virtual twins drawn from the population prior and weighted by the "
              f"patient's measurements, {_num(s.n_simulated)} simulated; seed {_esc(s.seed)}; "
              f"regimen {_esc(s.regimen)}; horizon {_esc(s.horizon_years)} years; "
              + (f"adjuvant {_esc(s.endocrine)} for {_esc(s.endocrine_years)} years in every strategy; "
                 if s.endocrine else "")
              + f"{_level(a)} credible intervals; chemomet {_esc(a.chemomet_version)}.")
    limits = _list(a.limits) or "<p>—</p>"
    return f"""<section id="limits">
<h2>Model limits</h2>
{limits}
<p class="method" id="method">{method}</p>
</section>"""


CSS = """
:root { --ink: #1b1f24; --muted: #5b6470; --line: #d8dde3; --accent: #b8860b; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--ink); background: #fff; margin: 0 auto; max-width: 1000px; padding: 16px 20px 40px; }
h1 { font-size: 21px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 22px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 3px; }
h3 { font-size: 14px; margin: 14px 0 6px; }
.meta { color: var(--muted); margin: 0 0 8px; }
.banner { background: #b00020; color: #fff; font-weight: 700; padding: 7px 12px; border-radius: 4px; }
.box { border: 2px solid var(--accent); background: #fffaf0; border-radius: 6px; padding: 4px 16px 10px;
       margin-top: 14px; }
.box h2 { border: 0; margin-top: 10px; }
.decision { font-size: 16px; font-weight: 700; margin: 10px 0 4px; }
.trial { background: #fff; border: 1px dashed var(--accent); border-radius: 4px; padding: 6px 12px; margin: 8px 0; }
.trial ul { margin: 4px 0; }
.key { background: #fff; border: 1px solid var(--line); border-radius: 4px; padding: 8px 12px; margin: 8px 0; }
.key-label { color: var(--muted); font-size: 12.5px; }
.key-value { font-size: 24px; font-weight: 700; }
.key-value .unit { font-size: 14px; font-weight: 400; }
.sub, .ci, .note, .method { color: var(--muted); }
.sub, .ci { font-size: 12px; }
.note, .method { font-size: 12.5px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f5f7; font-weight: 600; }
tr.recommended td { background: #fff3bf; }
tr.unmeasured td { color: var(--muted); font-style: italic; }
.tag { background: var(--accent); color: #fff; font-size: 11px; padding: 1px 5px; border-radius: 3px; }
.trial-tag { background: #fff; color: var(--muted); border: 1px dashed var(--muted); }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; }
figure { margin: 6px 0; }
img { max-width: 100%; height: auto; display: block; }
.warning { background: #fff4e5; border: 1px solid #e08a00; border-left: 6px solid #e08a00; border-radius: 4px;
           padding: 6px 12px; margin: 8px 0; }
.warning ul { margin: 4px 0; }
.ok { color: #2e7d32; }
@media print { body { max-width: none; } section { break-inside: avoid; } }
"""

SCRIPT = """
window.onerror = function (message) { document.body.dataset.jserror = String(message); };
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var ok = images.every(function (im) { return im.complete && im.naturalWidth > 0; });
  document.querySelectorAll("img[id], table[id]").forEach(function (el) {
    var r = el.getBoundingClientRect();
    el.dataset.box = [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height].map(Math.round).join(",");
  });
  document.body.dataset.rendered = ok ? "ok" : "broken-image";
});
"""

SCRIPT_HASH = "sha256-" + base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode("ascii")
"""The CSP source of :data:`SCRIPT`: the page runs that one inline script and no other (no 'unsafe-inline')."""

CSP = f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src '{SCRIPT_HASH}'"
"""Nothing is fetched; images only as data: URIs; the inline CSS (and the swatch colours); only the script whose
SHA-256 is :data:`SCRIPT_HASH` runs, so text that slipped into the page could never run as a script."""


def render_report(result: Assessment | Mapping) -> str:
    """One self-contained HTML5 page for an assessment.

    Sections: header with the research-use banner, the decision under uncertainty (``#decision``, the first line)
    with the recommendation, any clinical-trial candidates and the key number, patient inputs, strategy
    comparison (figure ``#strategy-plot`` and table ``#strategy-table``), accompanying drugs, drivers of the excess
    risk, trajectories (``#trajectory-plot``), uncertainty with warnings, model limits and the method line.
    Missing parts of the result render as "—" or a short note rather than raising.

    ``result`` is an :class:`~chemomet.assess.result.Assessment` or its result dict (``to_dict()`` or parsed
    JSON), validated into one: a dict that does not fit the schema raises :class:`pydantic.ValidationError`,
    anything else :class:`TypeError`.
    """
    a = as_assessment(result, "render_report")
    patient_id = _patient_id(a)
    body = "\n".join([
        _header(a),
        "<main>",
        _recommendation(a),
        _inputs(a),
        _strategies(a),
        _drugs(a),
        _drivers(a),
        _trajectories(a),
        _uncertainty(a),
        _limits(a),
        "</main>",
    ])
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>chemomet assessment — patient {patient_id}</title>
<style>{CSS}</style>
</head>
<body>
{body}
<script>{SCRIPT}</script>
</body>
</html>
"""


def write_report(result: Assessment | Mapping, path: str | Path) -> Path:
    """Write :func:`render_report` of ``result`` to ``path`` (``.html`` or ``.htm``) atomically; returns the path.

    The path is checked before any work (existing folder, allowed suffix); a failure leaves no partial file.
    """
    p = check_output_path(path, (".html", ".htm"), "report")
    page = render_report(result)
    atomic_write(p, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return p
