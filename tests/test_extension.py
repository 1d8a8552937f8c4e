"""Extending chemomet with data alone: a drug with a new target, and a new tissue-export preset, each added from a
TOML file of the user's, without editing the installed package."""

import numpy as np
import pytest

import chemomet as cm
from chemomet.errors import InputError
from chemomet.model.parameters import PatientParameters
from chemomet.model.reference import reference_dmfs
from chemomet.regimens import Strategy, load_drugs, read_drug_file

# A hypothetical ANGPT2 blocker: a new target acting on doorway activity, with made-up PK. The numbers only
# exercise the machinery; they describe no real drug.
NEW_DRUG = """
[targets.ANGPT2]
acts_on = "doorway_activity"
evidence = "assumption"
source = "test: a hypothetical target that closes doorways"

[drugs.angptumab]
role = "accompanying"
target = "ANGPT2"
route = "iv"
half_life_h = 96.0
volume_l = 5.0
ic50_mg_per_l = 0.5
imax = 0.8
default_dose_mg = 600.0
default_interval_h = 168.0
[drugs.angptumab.sources]
half_life_h = "test value"
"""


def one_patient() -> PatientParameters:
    base = dict(
        alpha_per_day=0.03, beta_per_day=0.03 / np.log(10**12.5), log_cells0=np.log(4e9), mu=3e-13, gamma=1.0,
        chemosensitivity=0.4, resistant_fraction=0.0, resistant_kill_ratio=0.3, s_met=0.3, epsilon=2.0, T0=15.0,
        phi=0.5,
    )
    return PatientParameters(**{k: np.array([v], float) for k, v in base.items()})


@pytest.fixture()
def drugs(tmp_path):
    path = tmp_path / "my_drugs.toml"
    path.write_text(NEW_DRUG, encoding="utf-8")
    return read_drug_file(path)


def test_a_drug_with_a_new_target_is_a_data_file(drugs, population):
    assert "angptumab" not in load_drugs()  # the shipped table is untouched
    assert drugs["angptumab"].acts_on == "doorway_activity"
    strategy = Strategy.parse("nact+angptumab", drugs=drugs)
    assert strategy.accompanying.dose_mg == 600.0 and strategy.accompanying.interval_h == 168.0

    _, cohort = population.sample(300, 4)
    plain = cm.simulate(cohort, "nact", 10 * 365.25, seed=4)
    blocked = cm.simulate(cohort, strategy, 10 * 365.25, seed=4, drugs=drugs)
    # closing doorways can only lower founding during NACT, and never raise a patient's risk
    during = blocked.summary["colonies_founded_during_chemo"].to_numpy()
    assert np.all(during <= plain.summary["colonies_founded_during_chemo"].to_numpy() + 1e-15)
    assert np.mean(during) < 0.99 * plain.summary["colonies_founded_during_chemo"].mean()
    assert np.all(blocked.summary["dmfs_10y"].to_numpy() >= plain.summary["dmfs_10y"].to_numpy() - 1e-12)


def test_the_new_target_reaches_the_reference_solver_too(drugs, population):
    """Engine and solve_ivp reference read the same target table: they agree on the new drug (|ΔDMFS| <= 1e-3)."""
    strategy = Strategy.parse("nact+angptumab", drugs=drugs)
    p = one_patient()
    times = np.array([0.0, 1, 3, 5, 10]) * 365.25
    fast = cm.simulate(p, strategy, 10 * 365.25, grid=times, drugs=drugs).trajectories["dmfs"][0]
    ref = reference_dmfs(p, strategy.schedule(), drugs, population.settings, times, n_pre_cohorts=2000)
    assert np.max(np.abs(fast - ref)) <= 1e-3
    plain = cm.simulate(p, "nact", 10 * 365.25, grid=times).trajectories["dmfs"][0]
    assert fast[-1] > plain[-1]  # the drug acts


def test_a_drug_naming_an_unknown_target_is_refused(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(NEW_DRUG.replace('target = "ANGPT2"', 'target = "ANG2"'), encoding="utf-8")
    with pytest.raises(InputError, match="target = 'ANG2' is invalid; allowed: one of"):
        read_drug_file(path)
    path.write_text(NEW_DRUG.replace('acts_on = "doorway_activity"', 'acts_on = "vessels"'), encoding="utf-8")
    with pytest.raises(InputError, match="acts_on = 'vessels' is invalid"):
        read_drug_file(path)


def test_a_drug_and_a_tissue_preset_from_data_files_alone(drugs, tmp_path):
    """Both extension points in one session, from temporary TOML files: nothing in the package is edited."""
    from chemomet.tme import ReadOptions, read_cells, read_presets, score_tissue
    from chemomet.tme.synthetic import generate_tissue

    presets = tmp_path / "lab_presets.toml"
    presets.write_text(
        '[lab]\ndescription = "a lab export"\nx = "X um"\ny = "Y um"\nlabel = "Kind"\nradius = "R um"\n',
        encoding="utf-8",
    )
    cells = generate_tissue(3000, seed=5).cells
    cells.to_csv(tmp_path / "generic.csv", index=False)
    cells.rename(columns={"x": "X um", "y": "Y um", "cell_type": "Kind", "radius": "R um"}).to_csv(
        tmp_path / "lab.csv", index=False
    )
    assert "lab" in read_presets(presets)
    lab = score_tissue(read_cells(tmp_path / "lab.csv", ReadOptions(preset="lab", presets_file=presets)))
    generic = score_tissue(read_cells(tmp_path / "generic.csv"))
    assert lab.summary()["tmem_score"] == generic.summary()["tmem_score"] > 0

    score = lab.summary()["tmem_score"]
    patient = cm.Patient(age=50, diameter_mm=25, grade=3, er="positive", pr="positive", her2="negative",
                         tmem_score=score, tmem_convention="10HPF")
    out = cm.simulate(patient, "nact+angptumab", drugs=drugs)
    assert 0.0 < float(out.summary["dmfs_10y"].iloc[0]) < 1.0
