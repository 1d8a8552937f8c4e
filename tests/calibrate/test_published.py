"""The published targets as data (data/calibration/targets.toml): the shipped target table is rebuilt from the file
and the shipped values exactly, every calibrated parameter is informed by its targets (one each, Bidard's four
hazard ratios for the CTC count dispersion), and a bad table is refused with one line."""

import pytest

from chemomet.calibrate.published import parse_targets, published_targets, target_table
from chemomet.calibrate.shipped import load_report
from chemomet.calibrate.targets import CTC_HAZARD_RATIOS, PCR_ORDER, PCR_TARGETS
from chemomet.calibrate.vector import TREATMENT
from chemomet.errors import InputError


def test_shipped_table_is_rebuilt_from_the_file():
    """Names, targets, intervals, kinds, sources, notes and pass flags of report.json come out of targets.toml."""
    rep = load_report()["targets"]
    shipped = rep["table"]
    keys = list(published_targets())
    assert len(keys) == len(shipped)
    reached = {k: row["value"] for k, row in zip(keys, shipped, strict=True)}
    checks = rep["checks"]
    lo, hi = checks["epsilon_median_range_ebctcg"]
    notes = {
        "ebctcg_rate_ratio": {"epsilon_low": lo, "epsilon_high": hi},
        "tie2_reverses_shedding": {"nact_alone": checks["karagiannis"]["shedding_per_cell_ratio_nact"]},
        "late_recurrence_er_pos_t1n0": {k: checks["pan2017"][k] for k in ("share_by_year_10", "dr_5_20_untreated")},
        "adjuvant_rate_ratio": {k: checks["adjuvant"][k] for k in ("er_pos", "er_neg")},
    }
    assert target_table(reached, notes) == shipped


def test_every_calibrated_parameter_has_its_targets():
    informed = [t.parameter for t in published_targets().values() if t.kind == "calibrated"]
    assert sorted(set(informed)) == sorted(TREATMENT)
    # one target per parameter, except the count dispersion: one value for Bidard's four hazard ratios
    several = {p for p in informed if informed.count(p) > 1}
    assert several == {"log_ctc_count_dispersion"}
    assert informed.count("log_ctc_count_dispersion") == len(CTC_HAZARD_RATIOS)
    assert set(PCR_ORDER) | set(CTC_HAZARD_RATIOS.values()) <= set(published_targets())
    assert PCR_TARGETS["TNBC"] == published_targets()["pcr_tnbc"].target


GOOD = {"key": "a", "name": "A", "kind": "check", "target": 1.0, "interval": [0.5, 2.0], "source": "S"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"half_width": 0.1}, "exactly one of"),
        ({"interval": None}, "exactly one of"),
        ({"interval": [2.0, 0.5]}, "low <= high"),
        ({"kind": "calibrated"}, "only for, a calibrated target"),
        ({"kind": "calibrated", "parameter": "log_nothing"}, "log_nothing"),
        ({"kind": "fitted"}, "kind"),
        ({"target": "up", "interval": None, "factor": 2.0}, "explicit interval"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_targets_are_refused_with_one_line(change, message):
    with pytest.raises(InputError) as err:
        parse_targets({"target": [{k: v for k, v in {**GOOD, **change}.items() if v is not None}]}, "t.toml")
    text = str(err.value)
    assert message in text and "\n" not in text and text.startswith("t.toml: ")


def test_repeated_keys_are_refused():
    with pytest.raises(InputError, match="repeat"):
        parse_targets({"target": [GOOD, GOOD]})
