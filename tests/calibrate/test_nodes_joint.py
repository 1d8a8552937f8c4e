"""The natural history and nodal spread fitted together (chemomet.calibrate.nodes.fit_jointly): the objective is
the sum of its two parts, the optimiser improves it, and the nodal step given the natural history lands where the
joint fit did (the block of a joint maximum), on small synthetic cohorts."""

import numpy as np
import pytest

from chemomet.calibrate import natural_history as nh
from chemomet.calibrate.nodes import (
    REFERENCE_TUMOUR_CELLS,
    NodeCountLikelihood,
    fit_jointly,
    fit_nodal_spread,
    profile_shedding_exponent,
)
from chemomet.datasets import Cohort
from chemomet.population import Population
from tests.calibrate.test_natural_history import TRUTH, transbig_like

NODES = {"seeding_ratio": 20.0, "count_dispersion": 3.0, "clearance_per_day": 0.05, "axillary_nodes": 30.0}


def node_positive_cohort(n=40, seed=2):
    rng = np.random.default_rng(seed)
    cov = transbig_like(n, seed).assign(nodes_positive=rng.integers(1, 12, n))
    return Cohort("toy node-positive", cov, np.full(n, 1000.0), np.zeros(n, bool), "none")


def node_negative_model(n=30, seed=4):
    cov = transbig_like(n, seed).assign(nodes_positive=0)
    time = np.linspace(500.0, 5000.0, n)
    return nh.MarginalModel(cov, time, np.arange(n) % 4 == 0, n_nodes=32, nodes=NODES)


def test_node_count_likelihood_rejects_node_negative_patients():
    cohort = node_positive_cohort()
    cov = cohort.covariates.assign(nodes_positive=0)
    with pytest.raises(ValueError, match="node-positive"):
        NodeCountLikelihood(Cohort("bad", cov, cohort.time_days, cohort.event, "none"))


def test_joint_fit_improves_its_objective_and_reports_its_parts():
    model, counts = node_negative_model(), NodeCountLikelihood(node_positive_cohort(), n_nodes=32, n_virtual=2000)
    start = model.loglik(TRUTH) + counts.loglik(model.population(TRUTH), 20.0, 3.0, 0.05)
    fit = fit_jointly(model, counts, TRUTH, NODES, max_evaluations=150)
    assert fit.loglik > start + 1.0
    assert fit.loglik == pytest.approx(fit.loglik_node_negative + fit.loglik_counts)
    again = model.with_nodes({"seeding_ratio": fit.seeding_ratio, "count_dispersion": fit.count_dispersion})
    assert again.loglik(fit.theta) == pytest.approx(fit.loglik_node_negative)
    assert fit.clearance_per_day == 0.05 and fit.cov.shape == (len(TRUTH) + 2, len(TRUTH) + 2)


def test_nodal_step_with_the_node_negative_term_answers_to_its_outcomes():
    """Given the natural history, adding the node-negative cohort's likelihood moves the nodal values (its
    outcomes say how much shedding a count of 0 excludes), and the joint objective at the result is at least the
    one without it."""
    model, cohort = node_negative_model(), node_positive_cohort()
    counts = NodeCountLikelihood(cohort, n_nodes=32, n_virtual=2000)
    pop = model.population(TRUTH)
    alone = fit_nodal_spread(pop, cohort, n_nodes=32, n_virtual=2000, clearance_grid=(0.05,))
    joint = fit_nodal_spread(pop, cohort, n_nodes=32, n_virtual=2000, clearance_grid=(0.05,),
                             node_negative=model, theta=TRUTH)

    def total(fit):
        nodes = {"seeding_ratio": fit.seeding_ratio, "count_dispersion": fit.count_dispersion}
        return model.with_nodes(nodes).loglik(TRUTH) + counts.loglik(pop, fit.seeding_ratio,
                                                                      fit.count_dispersion, 0.05)

    assert joint.loglik == pytest.approx(total(joint), abs=1e-6)
    assert total(joint) >= total(alone) - 1e-3
    assert not np.isclose(joint.seeding_ratio, alone.seeding_ratio, rtol=1e-3)
    with pytest.raises(ValueError, match="theta"):
        fit_nodal_spread(pop, cohort, n_nodes=8, n_virtual=500, clearance_grid=(0.05,), node_negative=model)


def test_the_shedding_exponent_profile_refits_at_each_exponent():
    """At the reference's own exponent the profile is the joint fit itself; at another it starts from the μ that
    keeps a 2 cm tumour's founding rate and moves μ by orders of magnitude (μ N^γ is what the data see), and the
    fitted values are held only for that row (the model passed in keeps its own exponent)."""
    model, counts = node_negative_model(), NodeCountLikelihood(node_positive_cohort(), n_nodes=32, n_virtual=2000)
    gamma0 = model.reference["dissemination"]["gamma"]
    profile = profile_shedding_exponent(model, counts, TRUTH, grid=(gamma0, 0.6), max_evaluations=150)
    direct = fit_jointly(model, counts, TRUTH, model.reference["nodes"], max_evaluations=150)
    assert profile.loglik.iloc[0] == pytest.approx(direct.loglik)
    assert np.all(np.isfinite(profile.loglik))
    shift = profile.theta.iloc[1][0] - profile.theta.iloc[0][0]  # log10 μ
    expected = (gamma0 - 0.6) * np.log10(REFERENCE_TUMOUR_CELLS)
    assert abs(shift - expected) < 1.5, (shift, expected)
    assert model.reference["dissemination"]["gamma"] == gamma0
    # each row carries its whole fitted configuration, which gives back the row's log-likelihood
    row = profile.iloc[1]
    assert row.config["dissemination"]["gamma"] == 0.6
    refit = model.with_nodes({"seeding_ratio": row.seeding_ratio, "count_dispersion": row.count_dispersion})
    refit.reference = row.config
    pop = Population(row.config)
    again = refit.loglik(row.theta) + counts.loglik(pop, row.seeding_ratio, row.count_dispersion,
                                                    row.config["nodes"]["clearance_per_day"])
    assert again == pytest.approx(row.loglik, abs=1e-6)


def test_a_treated_cohorts_outcomes_join_the_objective():
    """An outcome term (here a stand-in that pulls ln ρ towards 1 with weight 50 nats) is added to the joint
    objective: the fit reports it as its own part, the total is the sum of the parts, and ρ moves towards e."""
    model, counts = node_negative_model(), NodeCountLikelihood(node_positive_cohort(), n_nodes=32, n_virtual=2000)

    def pull(pop):
        return -50.0 * (np.log(pop.config["nodes"]["seeding_ratio"]) - 1.0) ** 2

    plain = fit_jointly(model, counts, TRUTH, model.reference["nodes"], max_evaluations=150, information=False)
    pulled = fit_jointly(model, counts, TRUTH, model.reference["nodes"], max_evaluations=150, outcomes=pull,
                         information=False)
    assert plain.loglik_outcomes == 0.0 and np.all(np.isnan(plain.cov))
    assert pulled.loglik_outcomes == pytest.approx(-50.0 * (np.log(pulled.seeding_ratio) - 1.0) ** 2)
    assert pulled.loglik == pytest.approx(pulled.loglik_node_negative + pulled.loglik_counts + pulled.loglik_outcomes)
    assert abs(np.log(pulled.seeding_ratio) - 1.0) < abs(np.log(plain.seeding_ratio) - 1.0)
