"""Batch prediction (chemomet.assess.predict): agreement with the single-patient assessment, bad rows, CSV and
Parquet, the command line.

Agreement tolerance. Both estimates are Monte Carlo: the batch's from its shared pools (effective sample size
``ess``, the ``ess`` column), the assessment's from its simulated resample (``evidence.ess_simulated``). The
standard error of a posterior mean is ``sd / sqrt(ESS)``, with ``sd`` the posterior SD of the twins' DMFS, taken
from the assessment's 90% interval (``(hi - lo) / 3.29``, conservative for these skewed distributions). Each
patient's difference must lie within 4 combined standard errors plus 0.003 (the diameter kernel's smoothing,
``O(h^2)``, below 0.001 at ``h = 0.1``, and the interval-based SD), and the mean difference over all patients
(a systematic error would show there) within 4 standard errors of the mean. With 20 patients x 2 strategies the
chance of a false alarm at 4 SE is below 0.3%.
"""

import json

import numpy as np
import pandas as pd
import pytest

from chemomet.assess.assessment import assess
from chemomet.assess.predict import COLUMNS, _nb_add, _nb_parts, _patients, _unknown_mixture, predict, read_cohort
from chemomet.assess.settings import AssessmentSettings
from chemomet.cli import main
from chemomet.model.nodes import node_count_logpmf
from chemomet.patient import patient_from_dict
from chemomet.population import Population

FAST = AssessmentSettings.default().with_overrides({"sampling.n_twins": 20000, "sampling.n_simulated": 2048})
BATCH = {"min_twins_per_cell": 4096, "settings": FAST}


def _cohort() -> pd.DataFrame:
    """20 patients in a few cells (HR+/HER2- grade 2 and 3 over and under 50, TNBC, HER2+, unknown grade and HER2),
    diameters 12-60 mm, with and without TMEM, CTC, Ki67 and nodes."""
    rng = np.random.default_rng(3)
    rows = []
    base = [
        {"er": "positive", "pr": "positive", "her2": "negative", "grade": 2, "age": 58},
        {"er": "positive", "pr": "positive", "her2": "negative", "grade": 3, "age": 44, "morphology": "alveolar"},
        {"er": "negative", "pr": "negative", "her2": "negative", "grade": 3, "age": 52},
        {"er": "positive", "pr": "negative", "her2": "positive", "grade": 3, "age": 61},
        {"er": "positive", "pr": "positive", "age": 55},  # grade and HER2 unknown: a mixture of cells
    ]
    for i in range(20):
        row = dict(base[i % len(base)])
        row.update(id=f"p{i:02d}", diameter_mm=float(np.round(np.exp(rng.uniform(np.log(12), np.log(60))))))
        if i % 2 == 0:
            row.update(tmem_score=float(rng.integers(5, 60)), tmem_convention="10HPF" if i % 4 else "20HPF")
        if i % 3 == 0:
            row["ctc_count"] = int(rng.integers(0, 4))
        if i % 4 != 3:
            row["ki67_percent"] = float(rng.integers(5, 60))
        if i % 5 != 4:
            row["nodes_positive"] = int(rng.integers(0, 5))
        rows.append(row)
    return pd.DataFrame(rows)


@pytest.mark.slow  # about 40 s: 20 single-patient assessments
def test_risks_agree_with_single_patient_assessment_within_monte_carlo_error():
    cohort = _cohort()
    risks = predict(cohort, ["surgery-first", "nact"], [5, 10], **BATCH)
    assert (risks["status"] == "ok").all(), risks["error"].dropna().tolist()
    diffs, ses, lines = [], [], []
    for i, patient in enumerate(_patients(cohort, "error")):  # the rows as predict reads them
        a = assess(patient, [], settings=FAST, drivers=False, trajectories=False)
        row = risks.iloc[i]
        for st in a.strategies:
            sd = max((st.dmfs_10y.hi - st.dmfs_10y.lo) / 3.29, 0.01)
            se = sd * np.sqrt(1.0 / row["ess"] + 1.0 / a.evidence.ess_simulated)
            d = row[f"{st.name}_dmfs_10y"] - st.dmfs_10y.mean
            diffs.append(d)
            ses.append(se)
            lines.append(f"{patient.id} {st.name}: batch {row[f'{st.name}_dmfs_10y']:.4f} assess "
                         f"{st.dmfs_10y.mean:.4f} diff {d:+.4f} se {se:.4f} ess {row['ess']:.0f}")
            assert abs(d) <= 4 * se + 0.003, "\n".join(lines)
            # the interval holds weighted quantiles of the twins' DMFS, the estimate their weighted mean: with a
            # left tail of a few high-risk twins the mean can fall below the 5th percentile, never above the 95th
            assert row[f"{st.name}_dmfs_10y_lo"] <= row[f"{st.name}_dmfs_10y_hi"]
            assert row[f"{st.name}_dmfs_10y"] <= row[f"{st.name}_dmfs_10y_hi"]
    diffs, ses = np.array(diffs), np.array(ses)
    print("\n".join(lines))
    z = np.abs(diffs / ses).max()
    print(f"max |diff| {np.abs(diffs).max():.4f}, mean diff {diffs.mean():+.4f}, max |z| {z:.2f}")
    assert abs(diffs.mean()) <= 4 * np.sqrt(np.sum(ses**2)) / diffs.size


def test_bad_rows_are_reported_by_number_and_the_others_scored():
    cohort = pd.DataFrame(
        {
            "age": [47, 300, 62, 55],
            "diameter_mm": [28, 20, 25, 30],
            "grade": [3, 2, 2, 2],
            "er": ["positive", "positive", "negative", "positive"],
            "pr": ["positive", "positive", "negative", None],
            "her2": ["negative", "negative", "negative", "negative"],
            "ctc_count": [1, None, None, None],
            "nact_diameters": [None, None, None, '[{"day": 300, "diameter_mm": 10}]'],
        }
    )
    risks = predict(cohort, ["nact"], [10], min_twins_per_cell=512)
    assert risks["status"].tolist() == ["ok", "error", "ok", "error"]
    assert risks.loc[1, "error"] == "row 2: age = 300 is invalid; allowed: a number from 18 to 100 (unit: years)"
    assert risks.loc[3, "error"].startswith("row 4: ") and "nact_diameters day = 300" in risks.loc[3, "error"]
    assert risks.loc[[0, 2], "nact_dmfs_10y"].between(0, 1).all() and risks.loc[[1, 3], "nact_dmfs_10y"].isna().all()
    assert risks["row"].tolist() == [1, 2, 3, 4] and "\n" not in "".join(risks["error"].dropna())


def test_csv_and_parquet_inputs_give_the_same_risks(tmp_path):
    cohort = _cohort().head(6)
    csv, parquet = tmp_path / "c.csv", tmp_path / "c.parquet"
    cohort.to_csv(csv, index=False)
    cohort.to_parquet(parquet)
    a = predict(csv, ["nact"], [10], min_twins_per_cell=512)
    b = predict(read_cohort(parquet), ["nact"], [10], min_twins_per_cell=512)
    assert (a["status"] == "ok").all()
    pd.testing.assert_frame_equal(a, b)


def test_cli_writes_parquet_and_reports_bad_rows(tmp_path, capsys):
    cohort = _cohort().head(4)
    cohort.loc[2, "grade"] = 7
    path, out = tmp_path / "c.csv", tmp_path / "risks.parquet"
    cohort.to_csv(path, index=False)
    with pytest.raises(SystemExit) as info:
        main(["predict", str(path), "--out", str(out), "--strategy", "nact", "--horizons", "10", "--json",
              "--twins-per-patient", "64"])
    captured = capsys.readouterr()
    assert info.value.code == 0, captured.err
    summary = json.loads(captured.out)
    assert summary["scored"] == 3 and summary["errors"][0]["row"] == 3
    assert captured.err.strip().splitlines() == [f"error: {summary['errors'][0]['error']}"]
    risks = pd.read_parquet(out)
    assert list(risks.columns[:5]) == ["row", "id", "status", "error", "ess"] and len(risks) == 4
    assert [p.name for p in tmp_path.iterdir()] != [] and not list(tmp_path.glob("*.tmp*"))


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "file not found"),
        ("age,diameter_mm\n50,20\n", "column 'er' is missing"),
        ("age,diameter_mm,er,colour\n50,20,positive,red\n", "'colour' unknown"),
        ("age,diameter_mm,er\n", "holds no rows"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
    ],
)
def test_cli_bad_file_exits_2_with_one_line(tmp_path, capsys, content, message):
    path, out = tmp_path / "c.csv", tmp_path / "risks.parquet"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(SystemExit) as info:
        main(["predict", str(path), "--out", str(out)])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert len(err.strip().splitlines()) == 1 and message in err and "Traceback" not in err
    assert not out.exists()


def test_options_are_checked_before_any_work():
    cohort = _cohort().head(1)
    for kwargs, text in (
        ({"strategies": ["natural-history"]}, "strategy = 'natural-history' is invalid"),
        ({"horizons_years": [0]}, "horizons_years"),
        ({"diameter_bandwidth": 5.0}, "diameter_bandwidth"),
    ):
        with pytest.raises(Exception, match=text):
            predict(cohort, **kwargs)


def test_separable_negative_binomial_matches_the_model():
    mean = np.array([0.0, 0.3, 2.0, 40.0])
    x = np.array([0.0, 1.0, np.nan, 7.0])
    lw = np.zeros((4, 4))
    _nb_add(lw, x, *_nb_parts(mean, 1.7), 1.7)
    expected = np.where(np.isnan(x)[:, None], 0.0, node_count_logpmf(np.nan_to_num(x)[:, None], mean[None, :], 1.7))
    np.testing.assert_allclose(lw, expected)


def test_cells_rely_on_what_the_population_model_uses():
    """Twins' parameters depend on age only through age < 50 (the cells assume it), and on PR also when ER is
    positive (the PR-loss growth factor), so the cells keep an ER-positive patient's PR; if the population model
    changes this, predict's cells must change too."""
    pop = Population()
    z = np.random.default_rng(0).standard_normal((4, Population.N_EFFECTS))
    u = np.full((4, 2), 0.5)

    def params(**kw):
        row = {"age": 60.0, "diameter_mm": 20.0, "grade": 2, "er": True, "pr": True, "her2": False,
               "alveolar_or_trabecular": False, "tmem_10hpf": np.nan, **kw}
        return pop.parameters(pd.DataFrame([row] * 4), z, u)

    for a, b in ((params(age=51.0), params(age=90.0)), (params(age=25.0), params(age=49.0))):
        for name in a.__dataclass_fields__:
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert not np.array_equal(params(pr=True).beta_per_day, params(pr=False).beta_per_day)
    er_pos_pr_neg = patient_from_dict({"age": 60, "diameter_mm": 20.0, "grade": 2, "er": "positive",
                                       "pr": "negative", "her2": "negative"})
    assert [c["pr"] for c, _ in _unknown_mixture(er_pos_pr_neg, pop)] == [False]
    assert "parameters" not in COLUMNS and "nodes_positive" in COLUMNS
