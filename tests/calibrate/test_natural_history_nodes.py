"""The natural-history likelihood conditioned on each patient's node count (a node-negative cohort is selected
on its count): the weighting against a rejection-sampling reference, its direction, and its neutral cases."""

import numpy as np
import pytest

from chemomet.calibrate import natural_history as nh
from chemomet.model.nodes import draw_node_counts, expected_positive_nodes
from tests.calibrate.test_natural_history import TRUTH, transbig_like

NODES = {"seeding_ratio": 20.0, "count_dispersion": 3.0, "clearance_per_day": 0.05, "axillary_nodes": 30.0}


def with_counts(cov, counts):
    return cov.assign(nodes_positive=np.asarray(counts, int))


def test_conditioned_survival_matches_rejection_sampling():
    """``E_z[P(0|z) e^{-Λ(t)}] / E_z[P(0|z) e^{-Λ(0)}]`` is the metastasis-free probability of the patients who
    were node-negative and metastasis-free at diagnosis: draw twins, draw their node counts and whether they had
    a metastasis at diagnosis, keep the node-negative M0 ones and average their survival to ``t``."""
    cov = with_counts(transbig_like(1, 5), [0])
    t = 3000.0
    model = nh.MarginalModel(cov, [t], [False], n_nodes=4096, seed=4, nodes=NODES)
    conditioned = model.dmfs(TRUTH, [t])[0, 0]

    pop = model.population(TRUTH)
    rng = np.random.default_rng(8)
    n = 200_000
    z = np.zeros((n, pop.N_EFFECTS))
    z[:, list(nh.RANDOM_EFFECT_COLUMNS)] = rng.standard_normal((n, len(nh.RANDOM_EFFECT_COLUMNS)))
    rows = cov.loc[cov.index.repeat(n)].reset_index(drop=True)
    p = pop.parameters(rows, z, np.ones((n, 2)))
    counts = draw_node_counts(expected_positive_nodes(p, pop.settings), pop.settings.node_count_dispersion,
                              rng.random(n))
    _, lam_t, lam_0 = nh.log_hazard_and_cumulative(p, np.full(n, t), pop.settings, model.surgery_day)
    kept = (counts == 0) & (rng.random(n) < np.exp(-lam_0))
    survival = np.exp(-(lam_t - lam_0))[kept]
    reference = survival.mean()
    se = survival.std() / np.sqrt(kept.sum())
    assert 0.2 < kept.mean() < 0.95  # the selection bites, and enough twins are kept
    assert abs(conditioned - reference) < 4 * se + 2e-3, (conditioned, reference, se)
    # and it differs from the unconditioned probability by more than that error
    plain = nh.MarginalModel(cov.drop(columns="nodes_positive"), [t], [False], n_nodes=4096, seed=4)
    assert plain.dmfs(TRUTH, [t])[0, 0] < conditioned - 10 * se


def test_node_count_moves_risk_in_its_direction():
    cov = transbig_like(6, 7)
    time, event = np.full(6, 3000.0), np.zeros(6, bool)
    plain = nh.MarginalModel(cov, time, event, n_nodes=256).risk(TRUTH)
    negative = nh.MarginalModel(with_counts(cov, [0] * 6), time, event, n_nodes=256, nodes=NODES).risk(TRUTH)
    positive = nh.MarginalModel(with_counts(cov, [10] * 6), time, event, n_nodes=256, nodes=NODES).risk(TRUTH)
    assert np.all(negative < plain) and np.all(plain < positive)


def test_uninformative_counts_leave_the_likelihood_unchanged():
    """Without nodal seeding every twin expects 0 nodes: P(0 | z) = 1 for all, and the conditioned likelihood is
    the plain one, events included."""
    cov = transbig_like(10, 9)
    time, event = np.linspace(500.0, 4000.0, 10), np.arange(10) % 3 == 0
    plain = nh.MarginalModel(cov, time, event, n_nodes=64)
    zero = nh.MarginalModel(with_counts(cov, [0] * 10), time, event, n_nodes=64,
                            nodes={**NODES, "seeding_ratio": 0.0})
    np.testing.assert_allclose(zero.loglik_terms(TRUTH), plain.loglik_terms(TRUTH), rtol=0, atol=1e-12)


def test_conditioning_needs_the_counts_and_reaches_folds():
    cov = transbig_like(8, 1)
    time, event = np.full(8, 3000.0), np.arange(8) % 4 == 0
    with pytest.raises(ValueError, match="nodes_positive"):
        nh.MarginalModel(cov, time, event, n_nodes=16, nodes=NODES)
    full = nh.MarginalModel(with_counts(cov, [0] * 8), time, event, n_nodes=16, nodes=NODES)
    fold = nh.MarginalModel.of_rows(with_counts(cov, [0] * 8), time, event, [1, 3, 3], n_nodes=16, nodes=NODES)
    np.testing.assert_allclose(fold.loglik_terms(TRUTH), full.loglik_terms(TRUTH)[[1, 3, 3]], rtol=1e-12)


def test_event_terms_carry_the_count_weight():
    """The event term's truncated doubling-time nodes are weighted by the count at their own parameters: against
    brute force on many plain nodes, as the unconditioned estimator is checked."""
    from scipy.special import logsumexp

    cov = with_counts(transbig_like(8, 0), [0] * 8)
    time = np.linspace(400.0, 4000.0, 8)
    event = np.ones(8, bool)
    small = nh.MarginalModel(cov, time, event, n_nodes=512, seed=1, nodes=NODES)._event_terms(TRUTH)
    big = nh.MarginalModel(cov, time, event, n_nodes=16384, seed=2, nodes=NODES)
    log_h, lam_t, _, log_w = big._node_terms(TRUTH, time)
    brute = logsumexp(log_w - lam_t + log_h, axis=1) - np.log(big.n_nodes)
    assert abs(np.mean(small - brute)) < 0.05
    np.testing.assert_allclose(small, brute, atol=0.25)
