"""The clinician's HTML report of one patient assessment.

:func:`render_report` turns the assessment result dict (``Assessment.to_dict()``) into one self-contained HTML5 page:
inline CSS, figures embedded as ``data:`` PNG URIs, a tiny inline script and nothing fetched from anywhere (a
Content-Security-Policy forbids it). Every string taken from the result is HTML-escaped; numbers that are missing
or not finite show as "—". :func:`write_report` writes the page atomically.

The page is meant to be read in two minutes: the recommendation and its key number first, then the inputs, the
strategy comparison, the accompanying drugs, what drives the excess risk, the trajectories, the uncertainty and
the model's limits.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from chemomet.assess.figures import number_or_nan, strategy_colours, strategy_figure, trajectory_figure
from chemomet.fileio import atomic_write, check_output_path

DASH = "—"
TITLE = "chemomet — assessment before neoadjuvant chemotherapy"
BANNER = "Research use only — not a medical device; not for clinical decisions"
NOT_MEASURED = "not measured"


# --------------------------------------------------------------------------------------------------- formatting


def _esc(x) -> str:
    """Escaped text of any value; "—" for None, NaN and empty strings."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return DASH
    if isinstance(x, bool):
        return "yes" if x else "no"
    text = str(x)
    return html.escape(text) if text.strip() else DASH


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


def _get(d, key):
    return d.get(key) if isinstance(d, Mapping) else None


def _interval(d, fmt, bound_fmt=None) -> str:
    """``mean (lo–hi)`` of a ``{"mean", "lo", "hi"}`` dict, ``fmt`` for the mean and ``bound_fmt`` (default
    ``fmt``) for the bounds; "lo to hi" when a bound carries a sign; "—" when the mean is absent."""
    if not isinstance(d, Mapping):
        return fmt(d)
    mean = fmt(d.get("mean"))
    if mean == DASH:
        return DASH
    bound_fmt = bound_fmt or fmt
    lo, hi = bound_fmt(d.get("lo")), bound_fmt(d.get("hi"))
    if lo == DASH and hi == DASH:
        return mean
    sep = " to " if any(c in lo + hi for c in "+−-") else "–"
    return f'{mean} <span class="ci">({lo}{sep}{hi})</span>'


def _pct_interval(d) -> str:
    return _interval(d, _pct, lambda v: _pct(v).removesuffix("%"))


def _pp_interval(d) -> str:
    return _interval(d, _pp)


def _risk_10y(strategy: Mapping):
    """The strategy's 10-year distant-metastasis risk dict (``dm_risk_10y``, else derived from ``dmfs_10y``)."""
    risk = _get(strategy, "dm_risk_10y")
    if isinstance(risk, Mapping):
        return risk
    dmfs = _get(strategy, "dmfs_10y")
    if not isinstance(dmfs, Mapping):
        return None
    flip = {k: (None if _float(dmfs.get(k2)) is None else 1 - _float(dmfs.get(k2)))
            for k, k2 in (("mean", "mean"), ("lo", "hi"), ("hi", "lo"))}
    return flip


def _level(result: Mapping) -> str:
    level = _float(_get(result.get("settings"), "credible_level"))
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


def _labels(result: Mapping) -> dict[str, str]:
    return {str(s.get("name")): str(s.get("label") or s.get("name")) for s in result.get("strategies") or []
            if isinstance(s, Mapping)}


def _header(result: Mapping) -> str:
    patient = result.get("patient") or {}
    return f"""<header>
<h1>{html.escape(TITLE)}</h1>
<p class="meta">Patient <strong id="patient-id">{_esc(_get(patient, "id"))}</strong>
 · generated {_date(result.get("generated"))}
 · chemomet {_esc(result.get("chemomet_version"))}</p>
<div class="banner" role="note">{html.escape(BANNER)}</div>
</header>"""


def _recommendation(result: Mapping) -> str:
    rec = result.get("recommendation") or {}
    name = _get(rec, "strategy")
    label = _labels(result).get(str(name))
    strategy = _esc(name)
    if label and label != str(name):
        strategy += f' <span class="sub">— {_esc(label)}</span>'
    excess = result.get("nact_excess_risk_10y") or {}
    level = _level(result)
    thresholds = _get(result.get("settings"), "thresholds") or {}
    threshold_txt = ""
    if _float(_get(thresholds, "excess_risk")) is not None and _float(_get(thresholds, "probability")) is not None:
        threshold_txt = (f'<p class="note">Concern threshold: excess above {_pp(thresholds["excess_risk"], False)} '
                         f"percentage points with probability ≥ {_pct(thresholds['probability'])}.</p>")
    lo, hi = _pp(_get(excess, "lo")), _pp(_get(excess, "hi"))
    return f"""<section id="recommendation" class="box">
<h2>Recommendation: <span id="recommended-strategy">{strategy}</span></h2>
<p class="summary">{_esc(_get(rec, "summary"))}</p>
{_list(_get(rec, "reasons"))}
<div class="key" id="key-number">
<div class="key-label">NACT-attributable excess 10-year distant-metastasis risk (NACT − surgery first)</div>
<div class="key-value">{_pp(_get(excess, "mean"))} <span class="unit">percentage points</span></div>
<div class="key-ci">{level} credible interval {lo} to {hi} · P(excess &gt; 0) = {_pct(_get(excess, "p_positive"))}</div>
</div>
{threshold_txt}
</section>"""


def _inputs(result: Mapping) -> str:
    rows, classes = [], []
    for item in result.get("inputs") or []:
        status = _get(item, "status")
        measured = isinstance(status, str) and status.strip().lower() == "measured"
        rows.append([_esc(_get(item, "name")), _esc(_get(item, "value")), _esc(status)])
        classes.append("" if measured else "unmeasured")
    table = _table("inputs-table", ["Input", "Value", "Status"], rows, classes) if rows else "<p>No inputs.</p>"
    dynamic = result.get("dynamic")
    extra = ""
    if isinstance(dynamic, Mapping):
        measures = "; ".join(f"day {_day(_get(d, 'day'))}: {_num(_get(d, 'diameter_mm'))} mm"
                             for d in dynamic.get("diameters") or []) or DASH
        on = "on neoadjuvant chemotherapy" if dynamic.get("on_nact") else "not on treatment"
        note = f" {_esc(dynamic['note'])}" if dynamic.get("note") else ""
        extra = f'<p class="note" id="dynamic">Measured response ({on}): tumour diameter {measures}.{note}</p>'
    return f"""<section id="inputs">
<h2>Patient inputs</h2>
{table}
{extra}
</section>"""


def _strategies(result: Mapping) -> str:
    level = _level(result)
    recommended = str(_get(result.get("recommendation"), "strategy"))
    colours = strategy_colours(result)
    rows, classes = [], []
    for s in result.get("strategies") or []:
        if not isinstance(s, Mapping):
            continue
        name = str(s.get("name"))
        swatch = f'<span class="swatch" style="background:{colours.get(name, "#000")}"></span>'
        cell = f'{swatch}<strong>{_esc(s.get("name"))}</strong>'
        if s.get("label") and str(s.get("label")) != name:
            cell += f'<br><span class="sub">{_esc(s.get("label"))}</span>'
        if name == recommended:
            cell += ' <span class="tag">recommended</span>'
        rows.append([
            cell,
            _pct_interval(s.get("dmfs_5y")),
            _pct_interval(s.get("dmfs_10y")),
            _pct_interval(_risk_10y(s)),
            _pct_interval(s.get("p_pcr")) if isinstance(s.get("p_pcr"), Mapping) else _pct(s.get("p_pcr")),
            _interval(s.get("tmem_at_surgery_10hpf"), _num),
            _interval(s.get("ctc_expected_surgery"), _num),
        ])
        classes.append("recommended" if name == recommended else "")
    header = ["Strategy", f"DMFS 5 y ({level} CI)", f"DMFS 10 y ({level} CI)", "10-year DM risk", "P(pCR)",
              "TMEM at surgery (per 10 HPF)", "Expected CTC at surgery (per 7.5 mL)"]
    alt = (f"Forest plot: 10-year distant-metastasis risk per strategy with {level} credible intervals "
           "(filled points), 5-year risk (open diamonds); recommended strategy shaded.")
    return f"""<section id="strategies">
<h2>Strategy comparison</h2>
<figure>{_img(strategy_figure(result), "strategy-plot", alt)}</figure>
{_table("strategy-table", header, rows, classes)}
<p class="note">DMFS: distant-metastasis-free survival; DM: distant metastasis; pCR: pathological complete response;
TMEM: tumour microenvironment of metastasis doorways; CTC: circulating tumour cells; CI: credible interval.</p>
</section>"""


def _drugs(result: Mapping) -> str:
    drugs = result.get("drug_risk_reduction_10y") or {}
    level = _level(result)
    rows = [[_esc(name), _pp_interval(d), _pct(_get(d, "p_positive"))] for name, d in drugs.items()]
    if not rows:
        return '<section id="drugs"><h2>Accompanying drugs</h2><p>No accompanying drug was assessed.</p></section>'
    threshold = _float(_get(_get(result.get("settings"), "thresholds"), "drug_benefit"))
    note = (f'<p class="note">Benefit threshold: a reduction of at least {_pp(threshold, False)} percentage points.</p>'
            if threshold is not None else "")
    table = _table("drug-table", ["Drug (with NACT)", f"10-year DM risk reduction, percentage points ({level} CI)",
                                  "P(reduction &gt; 0)"], rows)
    return f"""<section id="drugs">
<h2>Accompanying drugs</h2>
{table}
{note}
</section>"""


PART_NAMES = {"microenvironment": "prometastatic microenvironment (TMEM)", "delay": "delay of surgery",
              "kill_timing": "timing of tumour-cell kill"}


def _drivers(result: Mapping) -> str:
    rows = [[_esc(_get(d, "input")), _esc(_get(d, "observed")), _esc(_get(d, "reference")),
             _pp(_get(d, "excess_risk_if_reference")), _pp(_get(d, "change"))]
            for d in result.get("drivers") or []]
    header = ["Input", "Observed", "Reference value", "Excess 10-y risk if at reference (pp)",
              "Change due to this input (pp)"]
    table = _table("drivers-table", header, rows) if rows else "<p>No driver analysis.</p>"
    parts = result.get("excess_parts_10y") or {}
    parts_html = ""
    if parts:
        level = _level(result)
        prow = [[_esc(PART_NAMES.get(str(k), k)), _pp_interval(v)] for k, v in parts.items()]
        parts_html = ("<h3>Parts of the excess risk by mechanism</h3>"
                      + _table("parts-table", ["Mechanism", f"Excess 10-y risk, pp ({level} CI)"], prow))
    excess = _pp(_get(result.get("nact_excess_risk_10y"), "mean"))
    return f"""<section id="drivers">
<h2>What drives the excess risk</h2>
<p class="note">Excess 10-year risk of NACT over surgery first for this patient: {excess} percentage points (pp).
Each row recomputes it with one input set to its reference value.</p>
{table}
{parts_html}
</section>"""


def _trajectories(result: Mapping) -> str:
    level = _level(result)
    alt = (f"Predicted TMEM doorways per 10 HPF (left) and expected CTCs per 7.5 mL (right) over days from diagnosis "
           f"per strategy: median line and {level} band; dotted lines mark surgery.")
    return f"""<section id="trajectories">
<h2>Predicted trajectories</h2>
<figure>{_img(trajectory_figure(result), "trajectory-plot", alt)}</figure>
</section>"""


def _uncertainty(result: Mapping) -> str:
    evidence = result.get("evidence") or {}
    settings = result.get("settings") or {}
    ess, frac = _get(evidence, "ess"), _get(evidence, "ess_fraction")
    n_twins = _get(settings, "n_twins")
    frac_txt = f" ({_pct(frac)} of the twins)" if _float(frac) is not None else ""
    warnings = [w for w in (_get(evidence, "warnings") or []) if w is not None]
    if warnings:
        warn = f'<div class="warning" id="warnings" role="alert"><strong>Warnings</strong>{_list(warnings)}</div>'
    else:
        warn = '<p class="ok" id="no-warnings">No warnings.</p>'
    bio = _get(evidence, "biomarkers") or {}
    bio_html = ""
    if isinstance(bio, Mapping) and bio:
        rows = [[_esc(k), _num(_get(v, "observed")), _num(_get(v, "prior_predictive_p"))] for k, v in bio.items()]
        bio_html = ('<p class="note">How usual each measured biomarker is under the population prior '
                    "(a small prior-predictive p means an unusual value):</p>"
                    + _table("biomarker-table", ["Biomarker", "Observed", "Prior-predictive p"], rows))
    return f"""<section id="uncertainty">
<h2>Uncertainty</h2>
<p>Effective sample size of the weighted twin population: <strong id="ess">{_num(ess)}</strong>{frac_txt},
from {_num(n_twins)} twins ({_num(_get(settings, "n_simulated"))} simulated).</p>
{warn}
{bio_html}
</section>"""


def _limits(result: Mapping) -> str:
    s = result.get("settings") or {}
    method = (f"Method: {_num(_get(s, 'n_twins'))} virtual twins drawn from the population prior and weighted by the "
              f"patient's measurements, {_num(_get(s, 'n_simulated'))} simulated; seed {_esc(_get(s, 'seed'))}; "
              f"regimen {_esc(_get(s, 'regimen'))}; horizon {_esc(_get(s, 'horizon_years'))} years; "
              f"{_level(result)} credible intervals; chemomet {_esc(result.get('chemomet_version'))}.")
    limits = _list(result.get("limits")) or "<p>—</p>"
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
.summary { font-size: 15px; font-weight: 600; margin: 4px 0; }
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

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"


def render_report(result: Mapping) -> str:
    """One self-contained HTML5 page for the assessment result dict (see ``Assessment.to_dict``).

    Sections: header with the research-use banner, recommendation with the key number, patient inputs, strategy
    comparison (figure ``#strategy-plot`` and table ``#strategy-table``), accompanying drugs, drivers of the excess
    risk, trajectories (``#trajectory-plot``), uncertainty with warnings, model limits and the method line.
    Missing parts of the result render as "—" or a short note rather than raising.
    """
    if not isinstance(result, Mapping):
        raise TypeError(f"render_report needs the assessment result dict, got {type(result).__name__}")
    patient_id = _esc(_get(result.get("patient"), "id"))
    body = "\n".join([
        _header(result),
        "<main>",
        _recommendation(result),
        _inputs(result),
        _strategies(result),
        _drugs(result),
        _drivers(result),
        _trajectories(result),
        _uncertainty(result),
        _limits(result),
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


def write_report(result: Mapping, path: str | Path) -> Path:
    """Write :func:`render_report` of ``result`` to ``path`` (``.html`` or ``.htm``) atomically; returns the path.

    The path is checked before any work (existing folder, allowed suffix); a failure leaves no partial file.
    """
    p = check_output_path(path, (".html", ".htm"), "report")
    page = render_report(result)
    atomic_write(p, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return p
