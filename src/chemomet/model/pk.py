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
