"""The fused engine (compiled per-patient kernels, the engine of record) against the NumPy reference engine.

Every summary column and every trajectory must agree within ``RTOL`` / ``ATOL`` on a few hundred calibrated
patients, for every kind of schedule the engine handles: surgery first (adjuvant window, no founding in it), NACT
with and without an accompanying drug, response-adapted NACT, anti-HER2 and endocrine courses, dormancy, the
optional mechanisms (priming, mobilisation, drug toxicity), with and without output grids (few output times: the
direct ramp sums; many: the sorted piecewise-linear CDF).

Why ``RTOL = 1e-9``, ``ATOL = 1e-12``: the two engines evaluate the same formulas, operation by operation, except
that the fused one sums node by node where NumPy sums pairwise, takes ``e^{β(t_i - c)}`` by recurrence over the
grid (a few ulp per node, < 1e-13 relative over ~370 nodes) and ``ln(S/N)`` as ``-ln(1 + e^z)`` instead of
``ln(1 - R/N)``. Those are rounding differences: measured at most 2e-13 relative in every column and 5e-14 absolute
in DMFS; the tolerance leaves three to four orders of magnitude for other machines and libm versions, while any
difference in the model itself (a missed term, a wrong interval) moves results by 1e-6 or more. NaN must match NaN.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import chemomet as cm
from chemomet.model import engine
from chemomet.model.engine import simulate_schedule
from chemomet.model.fused import fused_window, fused_windows
from chemomet.model.timeline import build_timeline
from chemomet.regimens import Strategy, load_drugs

RTOL = 1e-9
ATOL = 1e-12
N = 300
GRID = np.linspace(0.0, 15 * 365.25, 24)


@pytest.fixture(scope="module")
def cohort():
    return cm.Population().sample(N, 7)[1]


def _both(monkeypatch, *args, **kwargs):
    """``cm.simulate`` with the NumPy engine, then with the fused one."""
    out = {}
    for name in ("numpy", "fused"):
        monkeypatch.setattr(engine, "DEFAULT_ENGINE", name)
        out[name] = cm.simulate(*args, **kwargs)
    return out["numpy"], out["fused"]


def _assert_same(ref, fused):
    assert list(ref.summary.columns) == list(fused.summary.columns)
    for col in ref.summary.columns:
        a, b = ref.summary[col].to_numpy(), fused.summary[col].to_numpy()
        if a.dtype == object:
            assert (a == b).all(), col
            continue
        np.testing.assert_allclose(b, a, rtol=RTOL, atol=ATOL, equal_nan=True, err_msg=col)
    assert ref.trajectories.keys() == fused.trajectories.keys()
    for key, a in ref.trajectories.items():
        np.testing.assert_allclose(fused.trajectories[key], a, rtol=RTOL, atol=ATOL, equal_nan=True, err_msg=key)


@pytest.mark.parametrize("strategy", ["surgery-first", "nact", "nact+rebastinib", "nact-adaptive", "natural-history"])
@pytest.mark.parametrize("grid", [None, GRID], ids=["summary", "grid"])
def test_fused_engine_matches_numpy_engine(monkeypatch, cohort, strategy, grid):
    ref, fused = _both(monkeypatch, cohort, strategy, grid=grid, seed=3)
    _assert_same(ref, fused)


def test_fused_engine_matches_with_anti_her2_and_endocrine_courses(monkeypatch, cohort):
    # anti-HER2 kill inside the window and after it, endocrine therapy after it: courses in Q(t)
    p = dataclasses.replace(cohort, her2_sensitivity=np.where(np.arange(N) % 2 == 0, 1.0, 0.0),
                            endocrine_sensitivity=np.where(np.arange(N) % 3 == 0, 1.2, 0.0))
    st = Strategy.parse("nact:tamoxifen", "ac-paclitaxel-weekly-trastuzumab-pertuzumab")
    for grid in (None, GRID):
        _assert_same(*_both(monkeypatch, p, st, grid=grid))


@pytest.mark.parametrize("strategy", ["surgery-first", "nact+rebastinib"])
def test_fused_engine_matches_with_dormancy(monkeypatch, cohort, strategy):
    q = np.where(np.arange(N) % 2 == 0, 0.4, 0.0)
    p = dataclasses.replace(cohort, dormant_fraction=q, wake_rate_per_day=np.full(N, 1 / 1500))
    for grid in (None, GRID):
        _assert_same(*_both(monkeypatch, p, strategy, grid=grid))


def test_fused_engine_matches_with_mechanisms(monkeypatch, cohort):
    pop = cm.Population().with_mechanisms({"priming": True, "mobilisation": True, "drug_toxicity": True})
    for strategy in ("nact", "nact+plerixafor"):
        _assert_same(*_both(monkeypatch, cohort, strategy, population=pop, grid=GRID))


def test_fused_engine_results_do_not_depend_on_chunks_or_threads(cohort):
    sch = Strategy.parse("nact+rebastinib").schedule()
    s = cm.Population().settings

    def run(**kw):
        return simulate_schedule(cohort, sch, s, 15 * 365.25, drugs=load_drugs(), engine="fused", **kw)[0]

    whole = run(workers=1, chunk_size=N)
    pieces = run(workers=2, chunk_size=37)
    assert whole.equals(pieces)  # bit for bit


def test_unknown_engine_is_refused(cohort):
    with pytest.raises(ValueError, match="engine"):
        simulate_schedule(cohort.take([0]), Strategy.parse("nact").schedule(), cm.Population().settings, 100.0,
                          drugs=load_drugs(), engine="fortran")


@pytest.mark.parametrize("dormant", [False, True], ids=["plain", "dormancy"])
@pytest.mark.parametrize("mechanisms", [{}, {"priming": True, "mobilisation": True}], ids=["shipped", "mechanisms"])
def test_schedule_variants_in_one_pass_are_each_variant_alone(cohort, dormant, mechanisms):
    """``fused_windows``: NACT and NACT + each accompanying drug in one kernel pass per patient (the primary and the
    colonies' curves once, the founding per variant) give bit for bit what each gives alone."""
    p = cohort
    if dormant:
        q = np.where(np.arange(N) % 2 == 0, 0.4, 0.0)
        p = dataclasses.replace(cohort, dormant_fraction=q, wake_rate_per_day=np.full(N, 1 / 1500))
    s = cm.Population().with_mechanisms(mechanisms).settings if mechanisms else cm.Population().settings
    drugs = load_drugs()
    schedules = [Strategy.parse(name).schedule() for name in
                 ("nact", "nact+rebastinib", "nact+pexidartinib", "nact+plerixafor")]
    tls = [build_timeline(sch, drugs, s.k_macrophage_per_day, s.k_mena_per_day, s.mechanisms) for sch in schedules]
    rates = engine.therapy_rates(schedules[0], drugs)
    courses = engine.courses_after_window(p, schedules[0], tls[0], rates)
    times = np.concatenate([[0.0], np.array([3.0, 5.0, 10.0, 15.0]) * 365.25, GRID])
    nodes = np.arange(tls[0].nodes.size)
    args = (rates, courses, float(np.log(s.visible_cells)), schedules[0].surgery_day, times, nodes)
    lams, log_n, founded, shedding = fused_windows(p, schedules[0], tls, *args)
    for v, (sch, tl) in enumerate(zip(schedules, tls, strict=True)):
        lam, log_n1, founded1, shedding1 = fused_window(p, sch, tl, *args)
        np.testing.assert_array_equal(lams[v], lam)
        np.testing.assert_array_equal(log_n, log_n1)
        np.testing.assert_array_equal(founded[v], founded1)
        np.testing.assert_array_equal(shedding[v], shedding1)
    first = Strategy.parse("surgery-first").schedule()
    other = build_timeline(first, drugs, s.k_macrophage_per_day, s.k_mena_per_day, s.mechanisms)
    with pytest.raises(ValueError, match="share the grid"):
        fused_windows(p, schedules[0], [tls[0], other], *args)
