"""Linear pharmacokinetics by superposition, and the drugs' effects (docs/science.md §2.2).

One-compartment model per drug: an i.v. dose ``D`` (mg) gives ``C(τ) = D/V · exp(-k_el τ)``; an oral or
s.c. dose gives ``C(τ) = D k_a / (V (k_a - k_el)) · (exp(-k_el τ) - exp(-k_a τ))`` (mg/L, ``τ`` in days since
the dose). Concentrations of many doses add up (exact for linear PK). Effects act on the summed
concentration, never dose by dose.
"""

from __future__ import annotations

import numpy as np

from chemomet.regimens import Drug


def unit_dose_response(tau_days: np.ndarray, drug: Drug) -> np.ndarray:
    """Concentration (mg/L) per mg dosed, ``tau_days`` after the dose (0 before it)."""
    tau = np.asarray(tau_days, dtype=float)
    ke = drug.k_el_per_day
    pos = tau >= 0
    t = np.where(pos, tau, 0.0)
    if drug.route == "iv":
        c = np.exp(-ke * t) / drug.volume_l
    else:
        ka = drug.ka_per_day
        if abs(ka - ke) < 1e-9 * ka:
            c = ke * t * np.exp(-ke * t) / drug.volume_l
        else:
            c = ka / (drug.volume_l * (ka - ke)) * (np.exp(-ke * t) - np.exp(-ka * t))
    return np.where(pos, c, 0.0)


def concentration(
    times_days: np.ndarray, dose_days: np.ndarray, doses_mg: np.ndarray, drug: Drug, cutoff_days=None
) -> np.ndarray:
    """Plasma concentration (mg/L) at ``times_days`` from all doses by superposition.

    A dose counts once ``dose_day <= cutoff`` (default: the evaluation time itself). Passing the start of
    an integration interval as the cutoff gives left-limits at the interval's end, so a bolus given exactly
    at a node is not smeared into the interval before it.
    """
    t = np.asarray(times_days, dtype=float)
    cut = t if cutoff_days is None else np.broadcast_to(np.asarray(cutoff_days, dtype=float), t.shape)
    out = np.zeros(t.shape)
    dose_days = np.asarray(dose_days, dtype=float)
    doses_mg = np.asarray(doses_mg, dtype=float)
    # Process doses in blocks so memory stays O(len(t) * block).
    for lo in range(0, dose_days.size, 64):
        td = dose_days[lo : lo + 64]
        dm = doses_mg[lo : lo + 64]
        tau = t[..., None] - td
        given = cut[..., None] >= td - 1e-12
        out += np.sum(np.where(given, dm * unit_dose_response(tau, drug), 0.0), axis=-1)
    return out


def emax_effect(conc: np.ndarray, drug: Drug) -> np.ndarray:
    """Fractional cytotoxic effect ``E = C^h / (EC50^h + C^h)`` (dimensionless, in [0, 1))."""
    x = (np.maximum(conc, 0.0) / drug.ec50_mg_per_l) ** drug.hill
    return x / (1.0 + x)


def inhibition(conc: np.ndarray, drug: Drug) -> np.ndarray:
    """Target inhibition ``I = I_max C / (IC50 + C)`` of an accompanying drug (dimensionless)."""
    c = np.maximum(conc, 0.0)
    return drug.imax * c / (drug.ic50_mg_per_l + c)


def concentration_sorted(
    times_days: np.ndarray,
    first_index: np.ndarray,
    doses_mg: np.ndarray,
    dose_days: np.ndarray,
    drug: Drug,
    negligible: float = 40.0,
) -> np.ndarray:
    """Superposition on a sorted 1-D time array, each dose added only where it matters.

    Dose ``k`` contributes from index ``first_index[k]`` (so the caller decides left/right limits at a bolus)
    until ``negligible / k_slowest`` days after it, where its remaining contribution is below
    ``e^-negligible`` of its peak. Cost grows with the doses' effective windows, not with all dose-time pairs.
    """
    t = np.asarray(times_days, dtype=float)
    out = np.zeros(t.shape)
    rates = [drug.k_el_per_day] + ([drug.ka_per_day] if drug.ka_per_day else [])
    tail = negligible / min(rates)
    ends = np.searchsorted(t, np.asarray(dose_days) + tail, side="right")
    for k in range(len(doses_mg)):  # a loop over doses of one schedule (once per simulation)
        lo, hi = int(first_index[k]), int(ends[k])
        if hi > lo:
            out[lo:hi] += doses_mg[k] * unit_dose_response(t[lo:hi] - dose_days[k], drug)
    return out


def concentration_recurrent(
    times_days: np.ndarray,
    dose_days: np.ndarray,
    doses_mg: np.ndarray,
    drug: Drug,
    left_limit: np.ndarray | None = None,
    tol_days: float = 1e-9,
) -> np.ndarray:
    """Superposition of every dose in ``O(times + doses)``: the same sum as :func:`concentration`, by recurrence.

    Each exponential mode ``r`` of the unit response (``k_el`` for an i.v. dose; ``k_el`` and ``k_a`` for an oral
    or s.c. one) is summed over the doses by ``Q_j = Q_{j-1} e^{-r (t_j - t_{j-1})} + D_j`` (every exponent is
    negative, so nothing overflows), and a time ``t`` after its latest dose ``j`` gets ``Q_j e^{-r (t - t_j)}``.
    No dose is truncated, so it agrees with :func:`concentration` to rounding (about 1e-15 of the peak). Cost:
    two exponentials per time and per mode, whatever the number of doses; for the many doses of an accompanying
    drug it replaces :func:`concentration_sorted`.

    Parameters
    ----------
    times_days : numpy.ndarray
        Evaluation times (days), any order and shape.
    dose_days : numpy.ndarray
        Dose times (days), sorted ascending.
    doses_mg : numpy.ndarray
        Doses (mg), one per dose time.
    drug : Drug
        The drug (route, ``k_el``, ``k_a``, volume).
    left_limit : numpy.ndarray of bool, optional
        Same shape as ``times_days``: True where the value is a left-limit, i.e. a dose given at that very time
        (within ``tol_days``) is not counted yet; elsewhere it is (right-limits). Default: all right-limits.
    tol_days : float
        Tolerance (days) within which a time counts as the time of a dose.

    Returns
    -------
    numpy.ndarray
        Plasma concentration (mg/L), same shape as ``times_days``.

    Examples
    --------
    >>> from chemomet.regimens import load_drugs
    >>> d = load_drugs()["rebastinib"]
    >>> t, td = np.linspace(0.0, 3.0, 7), np.arange(0.0, 3.0, 0.5)
    >>> fast = concentration_recurrent(t, td, np.full(td.size, 100.0), d)
    >>> bool(np.allclose(fast, concentration(t, td, np.full(td.size, 100.0), d), rtol=1e-12, atol=0))
    True
    """
    t = np.asarray(times_days, dtype=float)
    td = np.asarray(dose_days, dtype=float)
    dm = np.asarray(doses_mg, dtype=float)
    out = np.zeros(t.shape)
    if td.size == 0:
        return out
    # the latest dose counted at each time: doses at or before t (right-limit) or strictly before it (left-limit)
    j = np.searchsorted(td, t + tol_days, side="right") - 1
    if left_limit is not None:
        j = np.where(left_limit, np.searchsorted(td, t - tol_days, side="left") - 1, j)
    given = j >= 0
    jg = j[given]
    tau = np.maximum(t[given] - td[jg], 0.0)
    gaps = np.diff(td)
    ke = drug.k_el_per_day

    def summed(rate):  # Q_j for one exponential mode: a loop over the doses of one schedule
        decay = np.exp(-rate * gaps)
        q = np.empty(td.size)
        acc = 0.0
        for k in range(td.size):
            acc = (acc * decay[k - 1] if k else 0.0) + dm[k]
            q[k] = acc
        return q

    if drug.route == "iv":
        out[given] = summed(ke)[jg] * np.exp(-ke * tau) / drug.volume_l
        return out
    ka = drug.ka_per_day
    q_e = summed(ke)
    if abs(ka - ke) < 1e-9 * ka:  # the limit ka -> ke of the Bateman function: k τ e^{-k τ} per dose
        decay = np.exp(-ke * gaps)
        q1 = np.zeros(td.size)  # Σ D_i (t_j - t_i) e^{-k (t_j - t_i)}
        for k in range(1, td.size):
            q1[k] = decay[k - 1] * (q1[k - 1] + gaps[k - 1] * q_e[k - 1])
        out[given] = ke * np.exp(-ke * tau) * (q1[jg] + tau * q_e[jg]) / drug.volume_l
        return out
    scale = ka / (drug.volume_l * (ka - ke))
    out[given] = scale * (q_e[jg] * np.exp(-ke * tau) - summed(ka)[jg] * np.exp(-ka * tau))
    return out
