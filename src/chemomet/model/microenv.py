"""Microenvironment response to chemotherapy stress (docs/science.md §2.4).

With ``M = 1 + ε m`` and ``F = 1 + ε f`` the model's equations

    dM/dt = k_M [1 + ε D(t) (1 - I_CSF1R)(1 - I_CXCR4)] - k_M M,     dF/dt = k_F (M - F)

become ``dm/dt = k_M (g - m)``, ``df/dt = k_F (m - f)`` with ``g = D (1 - I_CSF1R)(1 - I_CXCR4)``: ``m`` and
``f`` do not depend on the patient, so they are computed once per schedule. Doorway density is
``T = T0 M F`` and doorway activity ``A = 1 - I_TIE2``.
"""

from __future__ import annotations

import numpy as np


def relax_step_factors(k_per_day: float, h: np.ndarray):
    """Exact one-step weights of ``dy/dt = k (g - y)`` for ``g`` linear over a step of length ``h`` (days).

    Returns ``(e, w0, w1)`` with ``y1 = e y0 + w0 g0 + w1 g1``.
    """
    kh = k_per_day * np.asarray(h, dtype=float)
    e = np.exp(-kh)
    one_minus = -np.expm1(-kh)
    # (1 - (1 - e)/kh), with its small-kh limit kh/2
    frac = np.where(kh > 1e-6, 1.0 - one_minus / np.where(kh > 1e-6, kh, 1.0), kh / 2.0)
    return e, one_minus - frac, frac


def relax(y0: float, k_per_day: float, times: np.ndarray, forcing_start: np.ndarray, forcing_end: np.ndarray):
    """Integrate ``dy/dt = k (g - y)`` exactly for piecewise-linear ``g`` (1-D, shared by all patients).

    ``times`` has shape ``(n,)``; the forcing on step ``i`` goes linearly from ``forcing_start[i]`` to
    ``forcing_end[i]`` (so jumps at dose times are represented). Returns ``y`` at ``times``.

    The recurrence ``y_{i+1} = e_i y_i + c_i`` is solved in closed form, ``y_i = P_i (y_0 + Σ_{j<i} c_j /
    P_{j+1})`` with ``P_i = Π_{j<i} e_j = exp(-k (t_i - t_0))``, in blocks short enough that ``1/P`` stays
    far from overflow.
    """
    times = np.asarray(times, dtype=float)
    e, w0, w1 = relax_step_factors(k_per_day, np.diff(times))
    inc = w0 * forcing_start + w1 * forcing_end
    y = np.empty(times.shape)
    y[0] = y0
    decay = k_per_day * (times - times[0])
    start = 0
    while start < e.size:
        # block: steps whose total decay from the block start stays below 300 (e^300 is safe)
        stop = int(np.searchsorted(decay, decay[start] + 300.0, side="right")) - 1
        stop = max(min(stop, e.size), start + 1)
        log_p = -(decay[start + 1 : stop + 1] - decay[start])
        scaled = np.cumsum(inc[start:stop] * np.exp(-log_p))
        y[start + 1 : stop + 1] = np.exp(log_p) * (y[start] + scaled)
        start = stop
    return y


def doorway_ratio(epsilon: np.ndarray, m: np.ndarray, f: np.ndarray) -> np.ndarray:
    """``T / T0 = (1 + ε m)(1 + ε f)``, broadcasting patients (rows) over times (columns)."""
    eps = np.asarray(epsilon, dtype=float)[:, None]
    return (1.0 + eps * m) * (1.0 + eps * f)
