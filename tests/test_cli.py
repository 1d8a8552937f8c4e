"""The command line: demo, simulate and cohort produce what they promise."""

import json
from pathlib import Path

import pytest

from chemomet.cli import main

EXAMPLE = Path(__file__).parents[1] / "src" / "chemomet" / "data" / "examples" / "patient.toml"


def run(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    out = capsys.readouterr()
    assert info.value.code in (0, None), out.err
    return out.out


def test_demo_assesses_the_example_patient_and_writes_the_report(tmp_path, capsys, monkeypatch):
    # The demo's own code path (patient, strategies, drivers, trajectories, report) at 20,000 twins and 2,048
    # simulated instead of the shipped 100,000 / 12,288: what is asserted here (labels, report) does not depend on
    # the sample size, and it takes a third of the time; the shipped sizes are timed by benchmarks/bench_assess.py.
    from chemomet.assess.settings import AssessmentSettings

    shipped = AssessmentSettings.default
    smaller = {"sampling.n_twins": 20000, "sampling.n_simulated": 2048, "sampling.n_drivers": 512}
    monkeypatch.setattr(AssessmentSettings, "default", classmethod(lambda cls: shipped().with_overrides(smaller)))
    report = tmp_path / "demo.html"
    out = run(["demo", "--report", str(report)], capsys)
    for label in ("Surgery first", "NACT + rebastinib", "NACT + pexidartinib", "NACT + plerixafor", "Recommendation:"):
        assert label in out
    assert "NACT-attributable excess 10-year DM risk" in out and "Research use only" in out
    html = report.read_text(encoding="utf-8")
    assert 'id="strategy-table"' in html and "data:image/png;base64," in html


def test_simulate_json_is_one_object_with_units(tmp_path, capsys):
    fig = tmp_path / "p.png"
    out = run(
        ["simulate", str(EXAMPLE), "-s", "nact", "-s", "surgery-first", "--json", "--plot", str(fig)], capsys
    )
    data = json.loads(out)
    assert set(data["strategies"]) == {"nact", "surgery-first"}
    nact = data["strategies"]["nact"]
    assert 0 <= nact["dmfs_10y"] <= 1 and nact["tmem_ratio_surgery_baseline"] > 1
    assert data["units"]["dmfs_10y"] == "probability" and fig.exists()


def test_cohort_json_and_parquet(tmp_path, capsys):
    import pandas as pd

    dest = tmp_path / "cohort.parquet"
    data = json.loads(
        run(
            [
                "cohort",
                "--n",
                "300",
                "--strategy",
                "nact+pexidartinib",
                "--seed",
                "4",
                "--json",
                "--out",
                str(dest),
            ],
            capsys,
        )
    )
    assert data["n"] == 300 and 0 < data["mean"]["dmfs_10y"] < 1
    table = pd.read_parquet(dest)
    assert len(table) == 300 and "dmfs_10y" in table and "diameter_mm" in table
    again = json.loads(
        run(["cohort", "--n", "300", "--strategy", "nact+pexidartinib", "--seed", "4", "--json"], capsys)
    )
    assert again["mean"] == data["mean"]


def test_excess_risk_json_and_figure(tmp_path, capsys):
    fig = tmp_path / "excess.png"
    data = json.loads(run(["excess-risk", "--n", "2000", "--seed", "3", "--json", "--plot", str(fig)], capsys))
    mean = data["mean"]
    parts = mean["part_microenvironment"] + mean["part_delay"] + mean["part_kill_timing"]
    assert parts == pytest.approx(mean["excess"], abs=1e-12)
    assert mean["dm_nact"] - mean["dm_surgery_first"] == pytest.approx(mean["excess"], abs=1e-12)
    assert 0 < data["harmed_share"] < 1
    assert data["profile_harmed"]["patients"] + data["profile_others"]["patients"] == 2000
    assert fig.read_bytes()[:4] == b"\x89PNG"
