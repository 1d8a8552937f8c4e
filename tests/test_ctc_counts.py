"""The CTC count model of the assay (model/dissemination.py): a negative binomial around the tumour's expected count
plus a Poisson background of false-positive events. Checked against direct sums of SciPy's distributions, against
draws, and the background-free case against the negative binomial itself."""

import numpy as np
import pytest
from scipy.stats import nbinom, poisson

from chemomet.model import dissemination as dis


def _convolution_pmf(x: int, lam: float, k: float, b: float) -> float:
    """P(NB(lam, k) + Poisson(b) = x) by the direct sum over the background count (reference)."""
    return sum(poisson.pmf(j, b) * nbinom.pmf(x - j, k, k / (k + lam)) for j in range(x + 1))


@pytest.mark.parametrize(("lam", "k", "b"), [(0.0, 0.3, 0.1), (0.4, 0.26, 0.095), (3.0, 0.5, 0.5), (50.0, 1.0, 0.05)])
def test_logpmf_is_the_convolution(lam, k, b):
    xs = np.arange(0, 30)
    ours = np.exp(dis.ctc_count_logpmf(xs, lam, k, b))
    ref = np.array([_convolution_pmf(int(x), lam, k, b) for x in xs])
    # the sum stops at BACKGROUND_TERMS background events: below 1e-25 in absolute terms for these b
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-25)
    np.testing.assert_allclose(dis.ctc_count_cdf(xs, lam, k, b), np.cumsum(ref), rtol=1e-10)


def test_without_background_it_is_the_negative_binomial():
    xs, lam = np.arange(0, 20), np.array([0.0, 0.2, 7.0])[:, None]
    np.testing.assert_array_equal(dis.ctc_count_logpmf(xs, lam, 0.4), dis.nb_logpmf(xs, lam, 0.4))
    np.testing.assert_allclose(dis.ctc_count_logpmf(xs, lam, 0.4), nbinom.logpmf(xs, 0.4, 0.4 / (0.4 + lam)))
    u = np.linspace(0.01, 0.99, 50)
    lam2 = np.full(50, 2.0)
    np.testing.assert_array_equal(dis.ctc_counts(lam2, 0.4, u), dis.ctc_counts(lam2, 0.4, u, 0.0))


def test_probability_of_no_ctc_includes_the_background():
    lam = np.array([0.0, 0.5, 4.0])
    np.testing.assert_allclose(dis.probability_of_no_ctc(lam, 0.3, 0.2), np.exp(dis.ctc_count_logpmf(0, lam, 0.3, 0.2)))
    assert dis.probability_of_no_ctc(np.array(0.0), 0.3, 0.2) == pytest.approx(np.exp(-0.2))


def test_draws_follow_the_distribution():
    """200,000 draws: the frequency of each count 0..5 within 5 binomial standard errors of the pmf."""
    rng = np.random.default_rng(4)
    n, lam, k, b = 200_000, 0.6, 0.3, 0.15
    counts = dis.ctc_counts(np.full(n, lam), k, rng.random(n), b, rng.random(n))
    for x in range(6):
        p = _convolution_pmf(x, lam, k, b)
        assert abs(np.mean(counts == x) - p) < 5 * np.sqrt(p * (1 - p) / n)
    assert abs(counts.mean() - (lam + b)) < 0.02


def test_a_count_without_cancer_is_background_only():
    """No tumour (λ = 0): counts are Poisson(b), so ≥ 2 in a share 1 - e^-b (1 + b) (Allard 2004's measure)."""
    from chemomet.calibrate.targets import background_share_two_or_more

    for b in (0.01, 0.1, 0.5):
        assert background_share_two_or_more(b) == pytest.approx(poisson.sf(1, b), rel=1e-12)
        assert 1 - dis.ctc_count_cdf(1, 0.0, 0.3, b) == pytest.approx(poisson.sf(1, b), rel=1e-9)


def test_one_count_model_per_twin_is_each_twins_convolution():
    """``k`` and ``b`` given per twin (each ensemble member's fitted count model): every twin's probability is the
    direct convolution sum with its own values; a twin with ``b = 0`` among them is the negative binomial alone."""
    lam = np.array([0.0, 0.4, 3.0, 1.2])
    k = np.array([0.18, 0.26, 0.36, 0.5])
    b = np.array([0.055, 0.093, 0.144, 0.0])
    for x in (0, 1, 2, 5):
        ref = [_convolution_pmf(x, lam_j, k_j, b_j) for lam_j, k_j, b_j in zip(lam, k, b, strict=True)]
        np.testing.assert_allclose(np.exp(dis.ctc_count_logpmf(x, lam, k, b)), ref, rtol=1e-10, atol=1e-25)
        np.testing.assert_allclose(dis.ctc_count_cdf(x, lam, k, b),
                                   [sum(_convolution_pmf(y, lam_j, k_j, b_j) for y in range(x + 1))
                                    for lam_j, k_j, b_j in zip(lam, k, b, strict=True)], rtol=1e-10)
