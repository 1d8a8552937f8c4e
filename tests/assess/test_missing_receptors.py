"""An unmeasured HER2 or PR is integrated over the population, never imputed: every twin draws it from
P(status | what is known), and is otherwise the same twin as with the status given."""

import numpy as np
import pytest
from scipy import stats

from chemomet.assess import AssessmentSettings, assess
from chemomet.assess.twins import draw_twins
from chemomet.cli import main
from chemomet.errors import InputError
from chemomet.patient import patient_from_dict
from chemomet.population import Population
from chemomet.simulation import simulate

BASE = {"id": "r", "age": 55, "diameter_mm": 24.0, "grade": 2, "er": "positive"}
N = 20_000


def _fields(params):
    return {k: getattr(params, k) for k in params.__dataclass_fields__}


@pytest.fixture(scope="module")
def reference():
    return Population()


def test_unmeasured_her2_is_drawn_per_twin_with_the_population_probability(reference):
    missing = draw_twins(patient_from_dict(BASE), N, 11, reference)
    pos = draw_twins(patient_from_dict({**BASE, "her2": "positive"}), N, 11, reference)
    neg = draw_twins(patient_from_dict({**BASE, "her2": "negative"}), N, 11, reference)
    # the HER2-positive and -negative twins differ (subtype doubling time and chemosensitivity) ...
    differs = pos.params.chemosensitivity != neg.params.chemosensitivity
    assert differs.mean() > 0.99
    # ... and each twin of the integrated run is exactly one of them
    is_pos = missing.params.chemosensitivity == pos.params.chemosensitivity
    for name, value in _fields(missing.params).items():
        np.testing.assert_array_equal(value, np.where(is_pos, getattr(pos.params, name), getattr(neg.params, name)))
    # with the population's P(HER2+ | HR+): a two-sided binomial test at 0.1%
    p = reference.her2_positive_probability(True)
    assert 0.0 < p < 0.5
    assert stats.binomtest(int(is_pos.sum()), N, p).pvalue > 1e-3
    # the twins' other draws (random effects, ensemble member) are those of the given-status runs
    np.testing.assert_array_equal(missing.member, pos.member)


def test_unmeasured_pr_is_drawn_per_twin_and_matters_through_the_pr_loss_factor(reference):
    """ER-positive, PR unknown: each twin is the PR-positive twin or the PR-negative one (which grows faster by the
    PR-loss factor), PR positive with the population's P(PR+ | ER+) = 0.8; ER-negative, PR unknown: the population
    has no ER-/PR+ tumours, so every twin is hormone-receptor negative."""
    given = {**BASE, "her2": "negative"}
    pos = draw_twins(patient_from_dict({**given, "pr": "positive"}), N, 3, reference)
    neg = draw_twins(patient_from_dict({**given, "pr": "negative"}), N, 3, reference)
    unknown = draw_twins(patient_from_dict(given), N, 3, reference)
    assert patient_from_dict(given).unknown_covariates == ("pr",)
    factor = reference.config["growth"]["pr_negative_doubling_factor"]
    assert factor < 1.0  # the shipped calibration's PR-loss factor (docs/science.md §4.1)
    np.testing.assert_allclose(pos.params.beta_per_day / neg.params.beta_per_day, factor, rtol=1e-10)
    is_pos = unknown.params.beta_per_day == pos.params.beta_per_day
    for name, value in _fields(unknown.params).items():
        np.testing.assert_array_equal(value, np.where(is_pos, getattr(pos.params, name), getattr(neg.params, name)))
    assert stats.binomtest(int(is_pos.sum()), N, Population.PR_POSITIVE_GIVEN_ER_POSITIVE).pvalue > 1e-3
    er_neg = {**BASE, "er": "negative", "her2": "negative"}
    assert patient_from_dict(er_neg).unknown_covariates == ("pr",)
    unknown = draw_twins(patient_from_dict(er_neg), 2000, 3, reference)
    negative = draw_twins(patient_from_dict({**er_neg, "pr": "negative"}), 2000, 3, reference)
    # the population model has no ER-/PR+ tumours (P = Population.PR_POSITIVE_GIVEN_ER_NEGATIVE = 0)
    assert Population.PR_POSITIVE_GIVEN_ER_NEGATIVE == 0.0
    for name, value in _fields(unknown.params).items():
        np.testing.assert_array_equal(value, getattr(negative.params, name))


def test_a_stated_subtype_states_the_receptors():
    p = patient_from_dict({**BASE, "subtype": "HR+/HER2+"})
    assert p.her2 == "positive" and p.unknown_covariates == ("pr",)  # HR+ does not say whether PR was lost
    p = patient_from_dict({**BASE, "er": "negative", "subtype": "TNBC"})
    assert (p.pr, p.her2, p.subtype) == ("negative", "negative", "TNBC")
    with pytest.raises(InputError, match="subtype = 'TNBC' is invalid"):
        patient_from_dict({**BASE, "subtype": "TNBC"})  # ER positive cannot be TNBC


def test_simulate_refuses_an_unknown_receptor_and_assess_integrates_it(tmp_path, capsys):
    patient = patient_from_dict(BASE)
    with pytest.raises(InputError, match="her2 is not given"):
        simulate(patient, "nact")
    path = tmp_path / "p.toml"
    path.write_text("\n".join(f"{k} = {v!r}".replace("'", '"') for k, v in BASE.items()), encoding="utf-8")
    with pytest.raises(SystemExit) as info:
        main(["simulate", str(path)])
    err = capsys.readouterr().err
    assert info.value.code == 2 and len(err.strip().splitlines()) == 1 and "her2" in err

    fast = AssessmentSettings.default().with_overrides(
        {"sampling.n_twins": 20000, "sampling.n_simulated": 2048, "sampling.n_trajectories": 128}
    )
    result = assess(patient, settings=fast, drivers=False, trajectories=False)
    assert any("HER2 not measured" in w for w in result.evidence.warnings)
    subtype_row = next(r for r in result.inputs if r.name == "Subtype")
    assert "not measured" in subtype_row.value and "integrated" in subtype_row.status
    assert result.patient.her2 is None
    # no biomarker measured: every twin weighs the same, whichever HER2 status it drew
    assert result.evidence.ess == pytest.approx(20000)


def test_unreported_grade_is_drawn_from_the_cohort_grade_distribution(reference):
    base = {**BASE, "pr": "positive", "her2": "negative"}
    del base["grade"]
    missing = draw_twins(patient_from_dict(base), N, 12, reference)
    by_grade = [draw_twins(patient_from_dict({**base, "grade": g}), N, 12, reference) for g in (1, 2, 3)]
    # grade changes the doubling time, hence beta: each integrated twin is exactly the twin of one grade
    beta = np.column_stack([tw.params.beta_per_day for tw in by_grade])
    assert np.all((beta[:, 0] != beta[:, 1]) & (beta[:, 1] != beta[:, 2]))  # so beta tells the grade
    drawn = np.argmax(beta == missing.params.beta_per_day[:, None], axis=1)
    assert np.all(beta[np.arange(N), drawn] == missing.params.beta_per_day)
    for name, value in _fields(missing.params).items():
        expected = np.choose(drawn, [getattr(tw.params, name) for tw in by_grade])
        np.testing.assert_array_equal(value, expected)
    # frequencies: chi-square against the cohort's grade probabilities at 0.1%
    gp = np.asarray(reference.config["cohort"]["grade_probabilities"], float)
    counts = np.bincount(drawn, minlength=3)
    assert stats.chisquare(counts, N * gp / gp.sum()).pvalue > 1e-3
    with pytest.raises(InputError, match="grade is not given"):
        simulate(patient_from_dict(base), "nact")
