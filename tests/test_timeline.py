"""The timeline: the cache (same result, read-only, keyed by everything it depends on) and the refined sub-grid of
schedules with an accompanying drug (checked against quadrature and a tight ODE solver, not against itself)."""

from dataclasses import fields, replace
from decimal import Decimal, localcontext

import numpy as np
import pytest
from scipy.integrate import quad, solve_ivp

import chemomet as cm
from chemomet.mechanisms import Mechanisms
from chemomet.model import timeline as T
from chemomet.model.pk import concentration, concentration_recurrent, concentration_sorted
from chemomet.model.reference import ScheduleFunctions
from chemomet.regimens import Drug, Schedule, Strategy, load_drugs
from chemomet.toxicity import toxicity_schedule

DRUGS = load_drugs()
MOBILISE = Mechanisms(mobilisation_per_stress=0.5, mobilisation_per_inhibition=(("CXCR4", 1.0),),
                      priming_take_increase=1.0, priming_days_after_last_dose=14.0)


def arrays(tl):
    return {f.name: getattr(tl, f.name) for f in fields(tl) if isinstance(getattr(tl, f.name), np.ndarray)}


def _cytotoxic(name, half_life_h, volume_l, ec50, kmax, stress):
    return Drug(name=name, role="cytotoxic", route="iv", half_life_h=half_life_h, volume_l=volume_l,
                ec50_mg_per_l=ec50, hill=1.0, kmax_per_day=kmax, stress_weight=stress)


# A drug table and schedules written out here, so that recalibrating the shipped drugs does not move the numbers.
FIXED_DRUGS = {
    "doxorubicin": _cytotoxic("doxorubicin", 30.0, 1500.0, 0.05, 1.0, 0.5),
    "cyclophosphamide": _cytotoxic("cyclophosphamide", 7.0, 35.0, 5.0, 1.0, 0.5),
    "paclitaxel": _cytotoxic("paclitaxel", 20.0, 180.0, 0.05, 1.0, 1.0),
}


def fixed_schedule(neoadjuvant: bool) -> Schedule:
    """AC every 2 weeks x 4, then weekly paclitaxel x 12: from day 14, surgery 28 days after (NACT), or from day
    49 after surgery on day 21."""
    first = 14.0 if neoadjuvant else 49.0
    ac = [(first + 14.0 * i, d, mg) for i in range(4) for d, mg in (("cyclophosphamide", 1080.0),
                                                                   ("doxorubicin", 108.0))]
    pac = [(first + 56.0 + 7.0 * i, "paclitaxel", 144.0) for i in range(12)]
    last = pac[-1][0]
    return Schedule(dose_events=tuple(ac + pac), surgery_day=last + 28.0 if neoadjuvant else 21.0,
                    chemo_days=(first, last), neoadjuvant=neoadjuvant)


# Sums of the timeline arrays as the uniform Simpson grid built them for every schedule before the refined grid
# existed (commit 94b24d8): a schedule without an accompanying drug must give exactly those numbers still.
BEFORE = {
    (True, False): (354, {
        "kill_m0": 50.04631159320737, "kill_m1": 13.64260503434743, "kill_m2": 8.427874592027958,
        "kill_cum_mid": 8290.782447396932, "env1": 65.11432662098053, "env2": 8.300743816046479,
        "m": 84.19694721254433, "f": 45.7402256017814}),
    (False, False): (354, {
        "kill_m0": 50.04631159320737, "kill_m1": 13.64260503461381, "kill_m2": 8.42787459266258,
        "kill_cum_mid": 8290.782447397309, "env1": 65.11432662228796, "env2": 8.300743816305534,
        "m": 84.18975808282362, "f": 45.73769573816968}),
    (True, True): (354, {
        "kill_m0": 50.04631159320686, "kill_m1": 13.64257464840982, "kill_m2": 8.427802197544839,
        "kill_cum_mid": 8290.78240455625, "env1": 75.19615416045662, "env2": 9.567154545133423,
        "m": 84.2093582321294, "f": 45.74100715943178, "other0": 194.9867595788898}),
}


@pytest.mark.parametrize("case", list(BEFORE))
def test_schedules_without_an_accompanying_drug_are_unchanged(case):
    neoadjuvant, mech = case
    tl = T.build_timeline(fixed_schedule(neoadjuvant), FIXED_DRUGS, 0.03, 0.02, MOBILISE if mech else None,
                          cache=False)
    n_nodes, sums = BEFORE[case]
    assert tl.nodes.size == n_nodes
    for key, value in sums.items():
        assert getattr(tl, key).sum() == pytest.approx(value, rel=1e-12, abs=0), key


@pytest.mark.parametrize("drug", ["rebastinib", "pexidartinib", "plerixafor"])
def test_an_accompanying_drug_leaves_the_kill_untouched_to_the_bit(drug):
    plain = T.build_timeline(Strategy.parse("nact").schedule(), DRUGS, 0.03, 0.02, cache=False)
    withd = T.build_timeline(Strategy.parse(f"nact+{drug}").schedule(), DRUGS, 0.03, 0.02, cache=False)
    for key in ("nodes", "kill_cum", "kill_cum_mid", "kill_start", "kill_end", "kill_m0", "kill_m1", "kill_m2"):
        np.testing.assert_array_equal(getattr(plain, key), getattr(withd, key))


@pytest.mark.parametrize("drug", ["rebastinib", "pexidartinib", "plerixafor"])
def test_refined_grid_matches_quadrature_per_interval(drug):
    """∫A and, with mobilisation, ∫X over intervals (the first ones hold the first dose's steep onset) against
    adaptive quadrature of the exact PK (breakpoints at every dose): relative error <= 2e-7 per interval."""
    schedule = Strategy.parse(f"nact+{drug}").schedule()
    tl = T.build_timeline(schedule, DRUGS, 0.03, 0.02, MOBILISE, cache=False)
    sf = ScheduleFunctions(schedule, DRUGS)
    doses = sorted({t for t, _, _ in schedule.dose_events})
    # ∫ A X and ∫ X (env0 carries the release factor when mobilisation is on)
    def integrand(t):
        return sf.kill_stress_activity_forcing(t)[2] * sf.release(t, MOBILISE)

    for i in [0, 1, 2, 3, 6, 12, 30, 90, 200]:
        lo, hi = tl.nodes[i], tl.nodes[i + 1]
        pts = [t for t in doses if lo < t < hi] or None
        ref = quad(integrand, lo, hi, points=pts, epsabs=0, epsrel=1e-13, limit=400)[0]
        assert tl.env0[i] == pytest.approx(ref, rel=2e-7, abs=0), i
        ref_x = quad(lambda t: sf.release(t, MOBILISE), lo, hi, points=pts, epsabs=0, epsrel=1e-13, limit=400)[0]
        assert tl.other0[i] == pytest.approx(ref_x, rel=2e-7, abs=0), i


@pytest.mark.parametrize("drug", ["pexidartinib", "plerixafor"])
def test_refined_microenvironment_matches_a_tight_ode_solver_through_the_first_doses(drug):
    """m, f where an accompanying drug inhibits macrophage recruitment (the forcing swings within minutes of a
    dose) against solve_ivp at rtol 1e-11 over the first two days: relative error <= 3e-7 (the uniform grid of
    commit 94b24d8 was off by up to 1e-4 here)."""
    schedule = Strategy.parse(f"nact+{drug}").schedule()
    tl = T.build_timeline(schedule, DRUGS, 0.03, 0.02, cache=False)
    sf = ScheduleFunctions(schedule, DRUGS)
    stop = int(np.searchsorted(tl.nodes, tl.start + 2.0))
    times = tl.nodes[1 : stop + 1]
    doses = sorted({t for t, _, _ in schedule.dose_events if tl.start <= t <= times[-1]} | {times[-1]})
    y, t0, m, f = np.zeros(2), tl.start, [], []
    for t1 in doses:  # restart the solver at each dose (the forcing has a kink there)
        if t1 <= t0:
            continue
        sol = solve_ivp(lambda t, z: [0.03 * (sf.kill_stress_activity_forcing(t)[3] - z[0]), 0.02 * (z[0] - z[1])],
                        (t0, t1), y, rtol=1e-11, atol=1e-18, dense_output=True, method="DOP853")
        inside = times[(times > t0) & (times <= t1)]
        m += list(sol.sol(inside)[0])
        f += list(sol.sol(inside)[1])
        y, t0 = sol.y[:, -1], t1
    np.testing.assert_allclose(tl.m[1 : stop + 1], m, rtol=3e-7, atol=0)
    np.testing.assert_allclose(tl.f[1 : stop + 1], f, rtol=3e-7, atol=0)


@pytest.mark.parametrize("drug", ["rebastinib", "pexidartinib", "plerixafor"])
def test_refined_grid_has_converged(drug):
    """The whole window: every moment within 1e-7 (of its largest value) of the same build with sub-steps 8 times
    finer, so the error left is far below what the model's parity tests allow."""
    schedule = Strategy.parse(f"nact+{drug}").schedule()
    tl = T.build_timeline(schedule, DRUGS, 0.03, 0.02, MOBILISE, cache=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(T, "SUB_STEP", T.SUB_STEP / 8)
        fine = T.build_timeline(schedule, DRUGS, 0.03, 0.02, MOBILISE, cache=False)
    assert fine.sub_times.size > 6 * tl.sub_times.size
    for key in ("env0", "env1", "env2", "other0", "m", "f", "activity", "mobilisation"):
        ref = getattr(fine, key)
        assert np.max(np.abs(getattr(tl, key) - ref)) <= 1e-7 * np.abs(ref).max(), key


def test_recurrent_superposition_is_the_same_sum():
    rng = np.random.default_rng(3)
    for name in ("rebastinib", "plerixafor", "paclitaxel"):
        d = DRUGS[name]
        td = np.sort(rng.uniform(0, 20, 60))
        dm = rng.uniform(10, 200, 60)
        t = np.sort(np.concatenate([rng.uniform(-1, 40, 500), td]))
        ref = concentration(t, td, dm, d)
        np.testing.assert_allclose(concentration_recurrent(t, td, dm, d), ref, rtol=0, atol=1e-12 * ref.max())
        # left-limits leave out a dose given at that very time
        left = concentration(t, td, dm, d, cutoff_days=t - 1e-6)
        got = concentration_recurrent(t, td, dm, d, left_limit=np.ones(t.size, bool))
        np.testing.assert_allclose(got, left, rtol=0, atol=1e-12 * ref.max())
        # and it is the sum concentration_sorted truncates at e^-40
        first = np.searchsorted(t, td - 1e-12)
        np.testing.assert_allclose(concentration_sorted(t, first, dm, td, d), ref, rtol=0, atol=1e-12 * ref.max())
    same = DRUGS["rebastinib"].model_copy(update={"ka_per_h": np.log(2) / 12.0})  # k_a = k_el
    t = np.linspace(0, 5, 101)
    ref = concentration(t, [0.0, 1.0], [100.0, 50.0], same)
    np.testing.assert_allclose(concentration_recurrent(t, [0.0, 1.0], [100.0, 50.0], same), ref, rtol=1e-12)


def test_cache_gives_the_same_timeline_and_it_cannot_be_changed():
    T.clear_timeline_cache()
    schedule = Strategy.parse("nact+rebastinib").schedule()
    first = T.build_timeline(schedule, DRUGS, 0.03, 0.02)
    again = T.build_timeline(schedule, load_drugs(), 0.03, 0.02, Mechanisms())  # equal, not identical, inputs
    assert again is first
    assert T.timeline_cache_info()["hits"] == 1 and T.timeline_cache_info()["misses"] == 1
    fresh = T.build_timeline(schedule, DRUGS, 0.03, 0.02, cache=False)
    assert fresh is not first
    for key, value in arrays(first).items():
        np.testing.assert_array_equal(value, getattr(fresh, key))
        assert not value.flags.writeable and not getattr(fresh, key).flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        first.env0[0] = 0.0
    with pytest.raises(ValueError, match="read-only"):
        first.sub_m += 1.0


@pytest.mark.parametrize("change", ["dose", "half_life", "k_macrophage", "mechanisms", "toxicity", "marks"])
def test_every_key_component_gives_its_own_timeline(change):
    strategy = Strategy.parse("nact+pexidartinib")
    schedule, drugs, k_m, mech = strategy.schedule(), dict(DRUGS), 0.03, None
    base = T.build_timeline(schedule, drugs, k_m, 0.02, mech)
    if change == "dose":
        events = tuple((t, n, d * 0.5 if n == "pexidartinib" else d) for t, n, d in schedule.dose_events)
        schedule = replace(schedule, dose_events=events)
    elif change == "half_life":
        drugs["pexidartinib"] = drugs["pexidartinib"].model_copy(update={"half_life_h": 13.3})
    elif change == "k_macrophage":
        k_m = 0.05
    elif change == "mechanisms":
        mech = Mechanisms(mobilisation_per_stress=0.5)
    elif change == "toxicity":  # the schedule of a patient with liver injury: the drug stops, chemotherapy waits
        schedule = toxicity_schedule(strategy, DRUGS)[0]
    else:
        schedule = replace(schedule, marks=(100.5,))
    assert T.timeline_key(schedule, drugs, k_m, 0.02, mech) != T.timeline_key(strategy.schedule(), DRUGS, 0.03, 0.02)
    other = T.build_timeline(schedule, drugs, k_m, 0.02, mech)
    assert other is not base
    assert other.env1.shape != base.env1.shape or not np.array_equal(other.env1, base.env1)
    np.testing.assert_array_equal(other.env1, T.build_timeline(schedule, drugs, k_m, 0.02, mech, cache=False).env1)


def test_cache_is_bounded_and_least_recently_used(monkeypatch):
    monkeypatch.setattr(T, "CACHE_SIZE", 2)
    T.clear_timeline_cache()
    a, b, c = (Strategy.parse(s).schedule() for s in ("nact", "surgery-first", "nact+rebastinib"))
    tl_a = T.build_timeline(a, DRUGS, 0.03, 0.02)
    T.build_timeline(b, DRUGS, 0.03, 0.02)
    assert T.build_timeline(a, DRUGS, 0.03, 0.02) is tl_a  # a is now the most recently used
    T.build_timeline(c, DRUGS, 0.03, 0.02)  # evicts b
    assert T.timeline_cache_info()["size"] == 2
    assert T.build_timeline(a, DRUGS, 0.03, 0.02) is tl_a
    misses = T.timeline_cache_info()["misses"]
    T.build_timeline(b, DRUGS, 0.03, 0.02)
    assert T.timeline_cache_info()["misses"] == misses + 1
    assert T.build_timeline(Schedule((), None, None, False), DRUGS, 0.03, 0.02) is None


@pytest.mark.parametrize("strategy", ["nact+rebastinib", "nact-adaptive+plerixafor", "surgery-first"])
def test_simulation_is_identical_with_a_cold_or_a_warm_cache(strategy):
    _, cohort = cm.Population().sample(40, 5)
    grid = np.array([0.0, 100.0, 200.0, 1000.0])
    T.clear_timeline_cache()
    cold = cm.simulate(cohort, strategy, grid=grid, seed=2)
    warm = cm.simulate(cohort, strategy, grid=grid, seed=2)
    assert T.timeline_cache_info()["hits"] >= 1
    np.testing.assert_array_equal(cold.summary.drop(columns="patient").to_numpy(float),
                                  warm.summary.drop(columns="patient").to_numpy(float))
    for key, value in cold.trajectories.items():
        np.testing.assert_array_equal(value, warm.trajectories[key])


@pytest.mark.parametrize("k", [0.0, 0.03, 5.0, 500.0])
def test_quadratic_relaxation_is_exact_for_a_quadratic_forcing(k):
    """dy/dt = k (g - y) with g = 1 + 2t - 3t² on [0, 1]: y(t) = p(t) - p(0) e^{-kt} with p the polynomial solution;
    the series (small k h) and the closed forms (large k h) of the step weights are both used."""
    grid = T._segmented_grid(np.array([0.0, 0.5, 1.0]), 20.0, [])
    g = 1.0 + 2.0 * grid.times - 3.0 * grid.times**2
    y = T._relax_quadratic(k, grid, g)
    t = np.append(grid.times[~grid.is_end], 1.0)
    if k == 0.0:
        np.testing.assert_array_equal(y, 0.0)
        return
    with localcontext() as ctx:  # the closed form cancels badly for small k: evaluate it with 40 digits
        ctx.prec = 40
        kd = Decimal(k)
        c2 = Decimal(-3)
        c1 = 2 - 2 * c2 / kd
        c0 = 1 - c1 / kd
        exact = [float(c0 + c1 * Decimal(x) + c2 * Decimal(x) ** 2 - c0 * (-kd * Decimal(x)).exp()) for x in t]
    np.testing.assert_allclose(y, exact, rtol=1e-12, atol=1e-15)
