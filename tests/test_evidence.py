"""The evidence file (chemomet/data/evidence.toml) and its loader, table and mechanism filter (chemomet.evidence)."""

import doctest
import inspect
import math
import re
from pathlib import Path

import pandas as pd
import pytest

import chemomet.evidence as ev
from chemomet.calibrate.published import published_targets
from chemomet.errors import InputError

ROOT = Path(__file__).parents[1]
SHIPPED = ROOT / "src" / "chemomet" / "data" / "evidence.toml"
RECORDS = ev.load_evidence()

GOOD = """
[[evidence]]
id = "a"
mechanisms = ["doorway_intravasation"]
population = { n = 10, subtype = "ER+", setting = "cohort" }
measure = "hazard_ratio"
value = 2.0
interval = { low = 1.5, high = 3.0, level = 0.95 }
time_window = "5 years"
endpoint = "distant metastasis"
comparison = "high vs low"
location = "Table 2"
read_from = "abstract"
quality = "retrospective"
source = { authors = "A B", year = 2020, title = "T", journal = "J" }
"""


def _write(tmp_path, text, name="evidence.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------ the shipped file


def test_shipped_file_validates_and_is_large():
    assert len(RECORDS) >= 50
    assert len({r.id for r in RECORDS}) == len(RECORDS)
    assert ev.load_evidence(SHIPPED) == RECORDS  # the same file by path


def test_every_record_has_a_source_and_a_place_in_it():
    for r in RECORDS:
        c = r.source
        assert c.authors.strip() and c.title.strip() and c.journal.strip(), r.id
        assert 1900 <= c.year <= 2100, r.id
        assert r.location.strip() and r.read_from.strip(), r.id
        assert c.text().startswith(c.authors), r.id


def test_intervals_contain_values_and_ratios_are_positive():
    with_interval = [r for r in RECORDS if r.interval is not None]
    assert len(with_interval) >= 15
    for r in with_interval:
        assert r.value is not None, r.id
        assert r.interval.low <= r.value <= r.interval.high, r.id
        if r.interval.level is not None:
            assert 0.5 <= r.interval.level < 1, r.id
    for r in RECORDS:
        if r.measure in ev.RATIOS and r.value is not None:
            assert r.value > 0, r.id
        if r.measure == "proportion" and r.value is not None:
            assert 0 <= r.value <= 1, r.id


def test_missing_values_are_marked_not_invented():
    missing = [r for r in RECORDS if not r.has_value]
    assert missing, "some numbers could not be read; they must be listed, not dropped"
    for r in missing:
        assert ev.MISSING_NOTE in r.note, r.id
        assert r.interval is None and r.se is None, r.id


def test_the_file_names_no_web_address():
    text = SHIPPED.read_text(encoding="utf-8")
    assert not re.search(r"https?://|www\.", text)


@pytest.mark.parametrize(
    "prefix",
    [
        "ebctcg2018_",
        "karagiannis2017_",
        "sparano2017_",
        "rohan2014_",
        "forse2015_",
        "agarwal2012_",
        "bidard2018_",
        "pierga2008_",
        "gerashchenko2017_",
        "zavyalova",
        "keklikoglou2019_",
        "liles2003_",
        "fortress_",
        "ispy2_pexidartinib",
        "enliven_",
        "anampa2024_",
        "pan2017_",
        "demicheli",
    ],
)
def test_each_study_asked_for_is_recorded(prefix):
    assert any(r.id.startswith(prefix) for r in RECORDS), prefix


def test_every_mechanism_has_evidence_and_preclinical_work_is_marked():
    for m in ev.MECHANISMS:
        assert ev.by_mechanism(m), m
    marked = {r.id for r in RECORDS if r.preclinical}
    assert {"keklikoglou2019_ev_lung_metastasis", "karagiannis2017_mouse_ctc_rebastinib"} <= marked
    assert not any(r.preclinical for r in RECORDS if r.id.startswith(("ebctcg", "pan2017", "bidard2018")))


@pytest.mark.parametrize(
    ("record", "target"),
    [
        ("rohan2014_tmem_odds_ratio", "tmem_odds_ratio"),
        ("ebctcg2018_distant_recurrence", "ebctcg_rate_ratio"),
        ("bidard2018_ctc_prevalence_before_nact", "ctc_prevalence"),
        ("bidard2018_hr_1_ctc", "ctc_hazard_ratio_1"),
        ("bidard2018_hr_2_ctc", "ctc_hazard_ratio_2"),
        ("bidard2018_hr_3_4_ctc", "ctc_hazard_ratio_3_4"),
        ("bidard2018_hr_5plus_ctc", "ctc_hazard_ratio_5plus"),
        ("pan2017_late_dr_t1n0", "late_recurrence_er_pos_t1n0"),
        ("ebctcg2018_dr15_nact", "ebctcg_dr15_nact"),
    ],
)
def test_numbers_agree_with_the_calibration_targets(record, target):
    r = {x.id: x for x in RECORDS}[record]
    t = published_targets()[target]
    assert math.isclose(r.value, float(t.target))
    if r.interval is not None and t.interval is not None:
        assert (r.interval.low, r.interval.high) == pytest.approx(t.bounds)


# ------------------------------------------------------------------ table and filter


def test_evidence_table_has_one_row_per_record():
    t = ev.evidence_table()
    assert isinstance(t, pd.DataFrame)
    assert list(t.index) == [r.id for r in RECORDS]
    assert {"mechanisms", "measure", "value", "low", "high", "level", "citation", "quality"} <= set(t.columns)
    assert str(t["n"].dtype) == "Int64"
    assert t.loc["rohan2014_tmem_odds_ratio", "value"] == pytest.approx(2.70)
    assert t["value"].isna().sum() == sum(not r.has_value for r in RECORDS)
    assert (t["citation"].str.len() > 10).all()


def test_table_and_filter_by_mechanism_agree():
    for m in ev.MECHANISMS:
        ids = [r.id for r in ev.by_mechanism(m)]
        t = ev.evidence_table(mechanism=m)
        assert list(t.index) == ids
        assert t["mechanisms"].str.contains(m).all()
    some = RECORDS[:3]
    assert len(ev.evidence_table(some)) == 3
    assert ev.by_mechanism("dormancy_exit", []) == []


def test_unknown_mechanism_is_refused_in_one_line():
    with pytest.raises(InputError) as err:
        ev.by_mechanism("teleportation")
    assert "\n" not in str(err.value) and "teleportation" in str(err.value)
    with pytest.raises(InputError):
        ev.evidence_table(mechanism="teleportation")


# ------------------------------------------------------------------ malformed files


def test_a_good_small_file_loads(tmp_path):
    records = ev.load_evidence(_write(tmp_path, GOOD))
    assert [r.id for r in records] == ["a"] and records[0].interval.level == 0.95


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: s.replace("value = 2.0", "value = 4.0"), "outside interval"),
        (lambda s: s.replace('"doorway_intravasation"', '"telepathy"'), "mechanisms"),
        (
            lambda s: s.replace("value = 2.0\n", "").replace(
                "interval = { low = 1.5, high = 3.0, level = 0.95 }\n", ""
            ),
            "not verified here",
        ),
        (lambda s: s.replace("value = 2.0\n", ""), "without a value"),
        (lambda s: s.replace("value = 2.0", "value = -2.0").replace("low = 1.5", "low = -3.0"), "must be > 0"),
        (lambda s: s.replace('measure = "hazard_ratio"', 'measure = "proportion"'), "must lie in"),
        (lambda s: s.replace("level = 0.95", "level = 95"), "level"),
        (lambda s: s.replace("low = 1.5, high = 3.0", "low = 3.0, high = 1.5"), "low"),
        (lambda s: s.replace('source = { authors = "A B", ', "source = { "), "authors is missing"),
        (lambda s: s.replace('location = "Table 2"\n', ""), "location is missing"),
        (lambda s: s + 'colour = "red"\n', "not a known field"),
        (lambda s: s + s, "repeat"),
        (lambda s: s.replace("n = 10", "n = 0"), "population.n"),
        (lambda s: s.replace("year = 2020", "year = 20"), "year"),
        (lambda s: s.replace('id = "a"', 'id = "Bad Id"'), "id"),
        (lambda s: s.replace("value = 2.0", 'value = "two"'), "value"),
        (lambda s: s.replace("value = 2.0", "value = nan"), "value"),
        (lambda s: s.replace("[[evidence]]", "[[evidence]"), "not valid TOML"),
        (lambda s: "", "evidence is missing"),
    ],
)
def test_a_malformed_file_is_refused_in_one_line(tmp_path, change, expected):
    path = _write(tmp_path, change(GOOD))
    with pytest.raises(InputError) as err:
        ev.load_evidence(path)
    message = str(err.value)
    assert "\n" not in message
    assert str(path) in message
    assert expected in message, message


def test_a_missing_folder_or_binary_file_is_refused(tmp_path):
    for path in (tmp_path / "nope.toml", tmp_path):
        with pytest.raises(InputError) as err:
            ev.load_evidence(path)
        assert "\n" not in str(err.value)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00id")
    with pytest.raises(InputError, match="UTF-8"):
        ev.load_evidence(binary)


# ------------------------------------------------------------------ documentation


def test_docs_page_lists_every_record():
    page = (ROOT / "docs" / "evidence.md").read_text(encoding="utf-8")
    missing = [r.id for r in RECORDS if f"`{r.id}`" not in page]
    assert not missing, missing
    assert not re.search(r"\]\(https?://|<https?://", page), "no links out of the repository"
    with_value = sum(r.has_value for r in RECORDS)
    counts = f"Of the {len(RECORDS)} records, {with_value} carry a value and {len(RECORDS) - with_value} do not."
    assert counts in " ".join(page.split()), "update the counts in docs/evidence.md"


def test_public_api_has_numpydoc_docstrings_and_examples_run():
    public = [
        obj
        for name, obj in vars(ev).items()
        if not name.startswith("_")
        and (inspect.isfunction(obj) or inspect.isclass(obj))
        and obj.__module__ == ev.__name__
    ]
    assert len(public) >= 8
    for obj in public:
        doc = inspect.getdoc(obj) or ""
        assert "Examples\n--------" in doc, obj.__name__
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    failures, tried = doctest.testmod(ev, optionflags=flags, verbose=False)
    assert tried >= 15 and failures == 0
