"""The clinician's HTML report: self-contained, escaped, robust to missing numbers, and rendered by a real browser.

The report is drawn from ``data/assessment_example.json``, a hand-made assessment with round numbers. It cannot
drift from the result model: :func:`test_fixture_is_exactly_the_models_own_serialization` requires it to validate
against :class:`chemomet.assess.Assessment` (unknown keys and wrong types are refused) and to be, byte for byte, the
model's own serialization of it (every field present, in the model's order, with the model's types). After a
change of the model, rewrite it with ``python tests/assess/test_report.py --regenerate`` (new fields get their
defaults, removed ones must be deleted by hand) and review the diff.

The browser tests run headless Chromium on the written report twice (``--dump-dom`` and ``--screenshot``). They
are skipped when no Chromium binary is found, unless ``CHEMOMET_REQUIRE_BROWSER=1`` (set by CI), which makes a
missing browser an error.
"""

from __future__ import annotations

import base64
import copy
import io
import json
import math
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from chemomet.assess import Assessment
from chemomet.assess.figures import strategy_figure, trajectory_figure
from chemomet.assess.report import BANNER, render_report, write_report
from chemomet.assess.result import PatientRecord
from chemomet.errors import InputError
from chemomet.patient import Patient

DATA = Path(__file__).parent / "data" / "assessment_example.json"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
WINDOW = (1200, 2400)


class Page(HTMLParser):
    """Start tags with their attributes, visible text, and the text of every table cell by table id."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._skip = 0
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag in ("script", "style"):
            self._skip += 1
        elif tag == "table":
            self._table = attrs.get("id", "")
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1
        elif tag == "table":
            self._table = None
        elif tag in ("td", "th") and self._cell is not None:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._skip:
            return
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def by_id(self, id_: str) -> tuple[str, dict] | None:
        return next(((t, a) for t, a in self.tags if a.get("id") == id_), None)

    def visible(self) -> str:
        return " ".join(" ".join(self.text).split())


def fixture_text(assessment: Assessment) -> str:
    """The fixture file's text for ``assessment``: its strict JSON (``to_json``), indented by 1, UTF-8 kept."""
    return json.dumps(json.loads(assessment.to_json()), indent=1, ensure_ascii=False) + "\n"


@pytest.fixture(scope="module")
def result() -> dict:
    return json.loads(DATA.read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------------------- the model


def test_fixture_is_exactly_the_models_own_serialization():
    """The example cannot drift from the result model (see the module docstring to regenerate it)."""
    text = DATA.read_text(encoding="utf-8")
    model = Assessment.model_validate_json(text)  # raises on unknown keys and wrong types
    assert text == fixture_text(model), "regenerate: python tests/assess/test_report.py --regenerate"


def test_patient_record_mirrors_the_patient_model():
    """The result's patient carries every field of :class:`Patient`, in its order (the JSON echoes the input)."""
    assert list(PatientRecord.model_fields) == list(Patient.model_fields)


def test_the_report_of_the_model_and_of_its_dict_are_the_same(result):
    model = Assessment.model_validate(result)
    assert render_report(model) == render_report(result) == render_report(model.to_dict())


@pytest.fixture(scope="module")
def page(result) -> str:
    return render_report(result)


@pytest.fixture()
def fresh(result) -> dict:
    return copy.deepcopy(result)


# ------------------------------------------------------------------------------------------------ self-contained


def test_page_is_self_contained(page):
    assert page.startswith("<!DOCTYPE html>")
    lowered = page.lower()
    for bad in ('src="http', "src='http", 'href="http', "href='http", "<link", "@import", "url("):
        assert bad not in lowered, bad
    assert re.search(r"<script[^>]*\bsrc\s*=", lowered) is None
    parsed = Page(page)
    sources = [a["src"] for t, a in parsed.tags if "src" in a]
    assert len(sources) == 2 and all(t == "img" for t, a in parsed.tags if "src" in a)
    for src in sources:
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)
        assert base64.b64decode(src[len(prefix):], validate=True).startswith(PNG_MAGIC)
    # a Content-Security-Policy forbids any fetch: only data: images, inline style and inline script
    csp = next(a["content"] for t, a in parsed.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in csp and "img-src data:" in csp


def test_sections_in_order_with_banner_and_recommendation(page, result):
    parsed = Page(page)
    text = parsed.visible()
    assert "chemomet — assessment before neoadjuvant chemotherapy" in text
    assert BANNER in text and 'class="banner"' in page
    assert parsed.by_id("patient-id") is not None and "Patient example" in text
    assert "2026-11-28" in text
    order = ["recommendation", "inputs", "strategies", "drugs", "drivers", "trajectories", "uncertainty", "limits"]
    positions = [page.index(f'<section id="{s}"') for s in order]
    assert positions == sorted(positions)
    assert page.index('class="banner"') < positions[0]
    rec = result["recommendation"]
    assert "Recommendation: nact" in text and "Recommendation: nact+" not in text
    assert rec["summary"] in text
    # the decision under uncertainty in plain words is the recommendation box's first line
    box = page[positions[0]:page.index("</section>", positions[0])]
    first = box.split("\n")[1]
    assert first.startswith('<p class="decision" id="decision">Undecided: the model cannot tell whether NACT')
    trial = Page(box).visible()
    assert "Candidates for a clinical trial, not recommendations" in trial
    assert "candidate for a clinical trial of rebastinib (investigational; evidence: preclinical)" in trial
    assert "not a recommendation to give them" in trial and "rests on the doorway (TMEM) mechanism" in trial
    for reason in rec["reasons"]:
        assert reason in text
    # the key number: excess risk in percentage points, its 90% interval and P(excess > 0)
    assert "+1.6 percentage points" in text
    assert "90% credible interval −1.2 to +6.1" in text
    assert "P(excess > 0) = 78.0%" in text
    for id_ in ("strategy-plot", "trajectory-plot"):
        tag, attrs = parsed.by_id(id_)
        assert tag == "img" and len(attrs["alt"]) > 20


def test_inputs_table_shows_status(page, result):
    rows = Page(page).tables["inputs-table"]
    assert rows[0] == ["Input", "Value", "Status"]
    assert len(rows) == 1 + len(result["inputs"])
    assert ["TMEM score", "32 per 10 HPF", "measured"] in rows
    assert ["Ki67", "—", "not measured — integrated over the population prior"] in rows
    assert page.count('<tr class="unmeasured">') == 2


def test_strategy_table(page, result):
    rows = Page(page).tables["strategy-table"]
    assert rows[0] == ["Strategy", "DMFS 5 y (90% CI)", "DMFS 10 y (90% CI)", "10-year DM risk", "P(pCR)",
                       "TMEM at surgery (per 10 HPF)", "Expected CTC at surgery (per 7.5 mL)"]
    body = rows[1:]
    assert len(body) == len(result["strategies"]) == 5
    surgery = body[0]
    assert surgery[0].startswith("surgery-first")
    assert surgery[1] == "90.5% (78.2–97.5)"
    assert surgery[2] == "84.2% (68.1–95.1)"
    assert surgery[3] == "15.8% (4.9–31.9)"
    assert surgery[4] == "—"  # no pCR without neoadjuvant treatment
    assert surgery[5] == "33.1 (22.4–46.8)"
    assert surgery[6] == "0.88 (0.17–3.30)"
    assert body[1][4] == "31.2%"
    # percentages carry one decimal
    for row in body:
        for cell in row[1:5]:
            for number in re.findall(r"(\d+(?:\.\d+)?)%", cell):
                assert re.fullmatch(r"\d+\.\d", number), cell
    recommended = [row for row in body if "recommended" in row[0]]
    assert len(recommended) == 1 and recommended[0][0].startswith("nactNeoadjuvant")
    assert page.count('<tr class="recommended">') == 1
    assert [row[0].split("NACT")[0] for row in body if "trial candidate" in row[0]] == [
        "nact+rebastinib", "nact+pexidartinib", "nact+plerixafor"
    ]


def test_drugs_and_drivers(page, result):
    parsed = Page(page)
    drugs = parsed.tables["drug-table"]
    assert drugs[0] == ["Drug (with NACT)", "Status", "Evidence (target)", "Acts on",
                        "10-year DM risk reduction, percentage points (90% CI)", "Verdict"]
    trial = "candidate for a clinical trial, not a recommendation"
    assert drugs[1] == ["rebastinib", "investigational", "preclinical", "doorway activity", "+2.5 (+0.4 to +5.5)",
                        trial]
    assert drugs[2] == ["pexidartinib", "investigational", "preclinical", "macrophage recruitment to doorways",
                        "+1.2 (−0.4 to +3.4)", trial]
    # benefit with its interval, no certainty claimed; the mechanism it rests on; why a bound stops at 0
    text = parsed.visible()
    section = page[page.index('<section id="drugs"'):]
    section = section[:section.index("</section>")]
    assert "P(" not in Page(section).visible() and "99%" not in text
    assert "rests on the doorway (TMEM) mechanism" in text and "neither identified by data" in text
    assert "a lower bound of the benefit at 0 reflects the model, not evidence of safety" in text
    drivers = parsed.tables["drivers-table"]
    assert len(drivers) == 1 + len(result["drivers"])
    assert drivers[1] == ["TMEM score", "32 per 10 HPF", "15 per 10 HPF (population median)", "+0.4", "+1.2"]
    assert drivers[4][-2:] == ["—", "—"]  # an unmeasured input has no driver value
    parts = parsed.tables["parts-table"]
    assert parts[1] == ["prometastatic microenvironment (TMEM)", "+1.1 (+0.0 to +3.6)"]


def test_uncertainty_and_method(page):
    text = Page(page).visible()
    assert "Effective sample size of the weighted twin population: 5,321 (5.3% of the twins)" in text
    assert "from 100,000 twins (16,384 simulated)" in text
    assert "seed 0" in text and "regimen ac-paclitaxel-weekly" in text and "chemomet 0.1.0" in text
    assert "Research use only: not a medical device" in text  # the limits list


# ---------------------------------------------------------------------------------------------------- escaping


def test_strings_from_the_result_are_escaped(fresh):
    fresh["patient"]["id"] = "<b>x</b> & co"
    fresh["recommendation"]["summary"] = "<script>alert(1)</script>"
    fresh["recommendation"]["reasons"].append('reason with "quotes" & <i>tags</i>')
    fresh["inputs"][0]["value"] = "<img src=x onerror=alert(1)>"
    fresh["strategies"][1]["label"] = "<u>NACT</u>"
    fresh["drivers"][0]["reference"] = "<em>15</em>"
    fresh["evidence"]["warnings"] = ["<marquee>low ESS</marquee>"]
    fresh["limits"] = ["<h1>limit</h1>"]
    fresh["settings"]["regimen"] = "<s>ac</s>"
    fresh["drug_risk_reduction_10y"]["<b>drug</b>"] = {"mean": 0.01, "lo": 0.0, "hi": 0.02, "p_positive": 0.9}
    page = render_report(fresh)
    for raw in ("<b>x</b>", "<script>alert", "<i>tags</i>", "<img src=x", "<u>NACT", "<em>15", "<marquee>",
                "<h1>limit", "<s>ac", "<b>drug"):
        assert raw not in page, raw
    assert "&lt;b&gt;x&lt;/b&gt; &amp; co" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&quot;quotes&quot;" in page
    parsed = Page(page)
    assert parsed.visible().count("<b>x</b> & co") >= 2  # title and header, shown as text
    assert [t for t, _ in parsed.tags].count("script") == 1
    assert [t for t, _ in parsed.tags].count("img") == 2


# ---------------------------------------------------------------------------------------- missing numbers, warnings


def test_none_and_nan_render_as_dash(fresh):
    nan = float("nan")
    surgery = fresh["strategies"][0]
    surgery["dmfs_10y"] = {"mean": nan, "lo": nan, "hi": nan}
    surgery["dm_risk_10y"] = None
    surgery["tmem_at_surgery_10hpf"] = {"mean": None, "lo": None, "hi": None}
    surgery["ctc_expected_surgery"] = None
    fresh["strategies"][1]["dmfs_5y"] = {"mean": 0.9, "lo": None, "hi": nan}
    fresh["strategies"][1]["p_pcr"] = nan
    fresh["nact_excess_risk_10y"] = {"mean": nan, "lo": None, "hi": nan, "p_positive": None}
    fresh["drug_risk_reduction_10y"]["rebastinib"] = {"mean": None, "lo": nan, "hi": None, "p_positive": nan}
    fresh["evidence"]["ess"] = nan
    fresh["evidence"]["ess_fraction"] = None
    fresh["settings"]["n_twins"] = None
    fresh["inputs"][0]["value"] = None
    fresh["patient"]["id"] = None
    traj = fresh["trajectories"]["by_strategy"]["nact"]
    traj["tmem_10hpf"] = {"median": [None] * 40, "lo": [nan] * 40, "hi": [None] * 40}
    traj["ctc_expected"] = {"median": [nan] * 10}  # short and without a band
    page = render_report(fresh)
    parsed = Page(page)
    text = parsed.visible()
    assert re.search(r"\bnan\b", text, re.IGNORECASE) is None
    assert re.search(r"\bNone\b", text) is None
    rows = parsed.tables["strategy-table"]
    assert rows[1][2:4] == ["—", "—"] and rows[1][5:7] == ["—", "—"]
    assert rows[2][1] == "90.0%" and rows[2][4] == "—"
    assert parsed.tables["drug-table"][1] == ["rebastinib", "investigational", "preclinical", "doorway activity", "—",
                                              "candidate for a clinical trial, not a recommendation"]
    assert parsed.tables["inputs-table"][1][1] == "—"
    assert "— percentage points" in text and "P(excess > 0) = —" in text
    assert "population: —" in text and "from — twins" in text
    assert "Patient —" in text


def test_figures_cope_with_missing_values(fresh):
    fresh["strategies"][0]["dm_risk_10y"] = None
    fresh["strategies"][0]["dmfs_10y"] = None
    fresh["strategies"][0]["dmfs_5y"] = {"mean": float("nan")}
    fresh["trajectories"]["by_strategy"]["nact"] = {"tmem_10hpf": None, "ctc_expected": {"median": [0.0, None]}}
    for png in (strategy_figure(fresh), trajectory_figure(fresh), strategy_figure({}), trajectory_figure({})):
        assert png.startswith(PNG_MAGIC)


def test_minimal_result_still_renders():
    parsed = Page(render_report({}))
    text = parsed.visible()
    assert BANNER in text
    assert parsed.by_id("strategy-table") is not None and parsed.by_id("strategy-plot") is not None
    assert "No warnings." in text


def test_warning_box_only_when_there_are_warnings(fresh):
    with_warnings = render_report(fresh)
    assert with_warnings.count('class="warning"') == 1
    assert "upper tail of the population prior" in Page(with_warnings).visible()
    fresh["evidence"]["warnings"] = []
    without = render_report(fresh)
    assert 'class="warning"' not in without and 'id="warnings"' not in without
    assert "No warnings." in Page(without).visible()
    fresh["evidence"]["warnings"] = None
    assert 'class="warning"' not in render_report(fresh)


def test_dynamic_measurements_shown(fresh):
    assert 'id="dynamic"' not in render_report(fresh)
    fresh["dynamic"] = {"on_nact": True, "diameters": [{"day": 42, "diameter_mm": 21.0}],
                        "note": "Response <faster> than the population median."}
    parsed = Page(render_report(fresh))
    assert parsed.by_id("dynamic") is not None
    assert "day 42: 21.0 mm" in parsed.visible() and "Response <faster> than" in parsed.visible()


# ------------------------------------------------------------------------------------------- figures, file output


@pytest.mark.parametrize("draw", [strategy_figure, trajectory_figure])
def test_figures_are_small_pngs(result, draw):
    png = draw(result)
    assert png.startswith(PNG_MAGIC) and len(png) < 250_000
    image = mpimg.imread(io.BytesIO(png), format="png")
    assert image.shape[:2] == (352, 880)  # 8 × 3.2 in at 110 dpi
    assert len(np.unique((image[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 20


def test_write_report_atomically(tmp_path, result, monkeypatch):
    path = write_report(result, tmp_path / "report.html")
    assert path == tmp_path / "report.html"
    assert path.read_text(encoding="utf-8") == render_report(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]  # no temporary file left behind
    with pytest.raises(InputError, match="report"):
        write_report(result, tmp_path / "report.pdf")
    with pytest.raises(InputError, match="does not exist"):
        write_report(result, tmp_path / "missing" / "report.html")
    with pytest.raises(TypeError, match="result dict"):
        render_report([])

    def half_then_fail(self, text, *args, **kwargs):
        with open(self, "w", encoding="utf-8") as fh:
            fh.write(text[: len(text) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_text", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        write_report(result, tmp_path / "broken.html")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]  # no partial file, no temporary file


# ------------------------------------------------------------------------------------------- real browser (Chromium)


def _chromium() -> str | None:
    for candidate in (os.environ.get("CHEMOMET_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser"),
                      "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def _run_chromium(exe: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--virtual-time-budget=5000",
             "--force-device-scale-factor=1", "--hide-scrollbars", f"--window-size={WINDOW[0]},{WINDOW[1]}"]
    try:
        res = subprocess.run([exe, *flags, *args], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired as err:
        pytest.fail(f"chromium did not finish within 60 s: {err}")
    assert res.returncode == 0, f"chromium exited with {res.returncode}:\n{res.stderr[-3000:]}"
    return res


@pytest.fixture(scope="module")
def browser_run(result, tmp_path_factory):
    """Write the report and let headless Chromium dump its DOM after load and take a screenshot."""
    exe = _chromium()
    if exe is None:
        if os.environ.get("CHEMOMET_REQUIRE_BROWSER") == "1":
            pytest.fail("CHEMOMET_REQUIRE_BROWSER=1 but no Chromium binary was found (chromium on PATH, "
                        "/usr/bin/chromium or $CHEMOMET_CHROMIUM)")
        pytest.skip("no Chromium binary found (chromium on PATH, /usr/bin/chromium or $CHEMOMET_CHROMIUM); "
                    "set CHEMOMET_REQUIRE_BROWSER=1 to make this a failure")
    tmp = tmp_path_factory.mktemp("browser")
    report = write_report(result, tmp / "report.html")
    dom = _run_chromium(exe, tmp / "profile-dom", "--dump-dom", report.as_uri()).stdout
    shot = tmp / "shot.png"
    _run_chromium(exe, tmp / "profile-shot", f"--screenshot={shot}", report.as_uri())
    return dom, shot


def _box(parsed: Page, id_: str) -> tuple[int, int, int, int]:
    tag, attrs = parsed.by_id(id_)
    x, y, w, h = (int(v) for v in attrs["data-box"].split(","))
    return x, y, w, h


def test_browser_loads_page_without_errors(browser_run):
    dom, _ = browser_run
    parsed = Page(dom)
    body = next(a for t, a in parsed.tags if t == "body")
    assert "data-jserror" not in body, body.get("data-jserror")
    assert body.get("data-rendered") == "ok"  # every <img> decoded (complete, naturalWidth > 0)
    assert parsed.by_id("strategy-table")[0] == "table"
    assert parsed.by_id("strategy-plot")[0] == "img"
    assert parsed.by_id("trajectory-plot")[0] == "img"
    x, y, w, h = _box(parsed, "strategy-plot")
    assert w > 600 and h > 200  # laid out at (nearly) its natural 880 × 352 px


def test_browser_screenshot_shows_page_plot_and_table(browser_run):
    dom, shot = browser_run
    assert shot.is_file() and shot.read_bytes().startswith(PNG_MAGIC)
    image = mpimg.imread(shot)
    assert image.shape[:2] == (WINDOW[1], WINDOW[0])
    rgb = image[..., :3].astype(float)
    if rgb.max() > 1.0:
        rgb = rgb / 255.0

    def non_white(region):
        return float(np.mean(np.any(region < 0.94, axis=-1)))

    def colourful(region):  # saturated pixels: the plot's strategy colours
        return int(np.sum(region.max(axis=-1) - region.min(axis=-1) > 0.3))

    assert non_white(rgb) > 0.05
    distinct = np.unique((rgb * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(distinct) > 50
    # the red research-use banner near the top
    banner = np.all(np.abs(rgb[:300] - np.array([0xB0, 0x00, 0x20]) / 255) < 0.08, axis=-1)
    assert banner.sum() > 5000
    parsed = Page(dom)
    for id_, min_ink in (("strategy-plot", 0.03), ("strategy-table", 0.03)):
        x, y, w, h = _box(parsed, id_)
        assert 0 <= y and y + h <= WINDOW[1], f"{id_} lies outside the screenshot: {(x, y, w, h)}"
        region = rgb[y:y + h, x:x + w]
        assert non_white(region) > min_ink, id_
    x, y, w, h = _box(parsed, "strategy-plot")
    assert colourful(rgb[y:y + h, x:x + w]) > 500
    assert math.isclose(w / h, 880 / 352, rel_tol=0.02)


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["--regenerate"]:
        sys.exit("usage: python tests/assess/test_report.py --regenerate")
    DATA.write_text(fixture_text(Assessment.model_validate_json(DATA.read_text(encoding="utf-8"))), encoding="utf-8")
    print(f"rewrote {DATA}; review the diff")
