"""Bad trial specs: exit code 2, one line on standard error naming the field, and no run directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from chemomet.cli import main

CORPUS = Path(__file__).parent / "corpus"

# file -> text the one-line message must contain (the field, and the unit where there is one)
BAD = {
    "unknown_drug.toml": ["arms.1", "imatinib", "rebastinib"],
    "unknown_regimen.toml": ["regimen", "folfox"],
    "empty_arm.toml": ["arms.1 is empty"],
    "no_arms.toml": ["arms has 0 entries"],
    "one_arm.toml": ["arms has 1 entries", "at least 2"],
    "arm_without_strategy.toml": ["arms.1.strategy is missing"],
    "duplicate_arm_names.toml": ["arms.name", "distinct"],
    "natural_history_arm.toml": ["arms.0.strategy", "natural-history"],
    "accompanying_interval_minutes.toml": ["accompanying_interval_h", "unit: h"],
    "zero_patients.toml": ["patients_per_arm = 0", "unit: patients"],
    "patients_as_text.toml": ["patients_per_arm = 'many'"],
    "patients_fraction.toml": ["patients_per_arm = 250.5"],
    "negative_follow_up.toml": ["follow_up.duration_days = -365", "unit: days"],
    "negative_accrual.toml": ["accrual.duration_days = -10", "unit: days"],
    "loss_rate_percent.toml": ["follow_up.loss_rate_per_year = 5", "unit: 1/year"],
    "age_min_above_max.toml": ["eligibility.age_min_years", "age_max_years", "unit: years"],
    "diameter_min_above_max.toml": ["eligibility.diameter_min_mm", "unit: mm"],
    "tmem_high_below_cutoff.toml": ["eligibility.tmem_high", "tmem_max_10hpf", "doorways per 10 HPF"],
    "unknown_subtype.toml": ["eligibility.subtypes", "luminal A"],
    "empty_subtypes.toml": ["eligibility.subtypes has 0 entries"],
    "nobody_eligible.toml": ["eligibility", "diameter_min_mm", "admits 0"],
    "unknown_endpoint.toml": ["endpoints.include", "overall_survival"],
    "primary_not_included.toml": ["endpoints.primary = 'pcr'"],
    "alpha_too_big.toml": ["analysis.alpha = 0.9"],
    "rmst_beyond_follow_up.toml": ["analysis.rmst_days", "unit: days"],
    "unknown_field.toml": ["follow_up.duration_years", "not a known field"],
    "broken_syntax.toml": ["broken_syntax.toml", "not valid TOML"],
    "power_sizes_negative.toml": ["power.patients_per_arm", "from 2", "unit: patients"],
    "chunk_size_zero.toml": ["execution.chunk_size = 0", "unit: patients"],
    "missing_name.toml": ["name is missing"],
    "unknown_population.toml": ["population = 'calibrated-2024.toml'", "priors"],
    "wrong_suffix.json": ["wrong_suffix.json", ".toml"],
}


def test_corpus_is_complete():
    assert len(BAD) >= 15
    assert {p.name for p in CORPUS.iterdir()} == set(BAD)


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_spec_exits_2_with_one_line(name, tmp_path, capsys):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as info:
        main(["trial", str(CORPUS / name), "--out", str(out), "--no-progress"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ")
    assert "Traceback" not in err
    for text in BAD[name]:
        assert text in err, (text, err)
    assert not out.exists() or not any(out.rglob("*.parquet"))


def test_resume_with_another_spec_is_refused(tmp_path, capsys):
    from tests.trial.conftest import BASE, write_toml

    small = {
        **BASE,
        "patients_per_arm": 40,
        "endpoints": {"include": ["pcr"], "primary": "pcr"},
        "analysis": {"subgroups": []},
    }
    spec = tmp_path / "a.toml"
    write_toml(spec, small)
    main_args = ["trial", str(spec), "--out", str(tmp_path / "run"), "--no-progress"]
    with pytest.raises(SystemExit) as info:
        main(main_args)
    assert info.value.code in (0, None)
    write_toml(spec, {**small, "seed": 12})
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(main_args)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "different spec" in err and "--fresh" in err
    with pytest.raises(SystemExit) as info:
        main([*main_args, "--fresh"])
    assert info.value.code in (0, None)


def test_workers_and_scheduler_together_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["trial", str(CORPUS / "one_arm.toml"), "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"])
    assert info.value.code == 2
    assert "--workers and --scheduler" in capsys.readouterr().err
