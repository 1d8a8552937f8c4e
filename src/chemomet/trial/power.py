"""Power over replicate trials: the share of independent trials whose pre-specified test of the primary
endpoint is significant, at each size, with Wilson intervals. Part of :mod:`chemomet.trial.analysis`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from chemomet.trial.multiplicity import _arrays, _compare, _no_tmem_change, _role, _strategy_kinds, adjust_p
from chemomet.trial.spec import TrialSpec


# ------------------------------------------------------------------------------------------------------- power
def power_analysis(df: pd.DataFrame, spec: TrialSpec, max_trials: int = 1000) -> dict:
    """Power of the primary endpoint's pre-specified test at each size in ``spec.power.patients_per_arm``.

    ``df`` holds every replicate (columns replicate, arm, rank and the primary endpoint's columns). Each
    replicate holds ``m`` patients per arm; at size ``n`` it yields ``m // n`` independent trials (disjoint
    rank blocks), so smaller sizes get more trials (at most ``max_trials``). Two definitions, both reported:
    ``power_favourable``, the share of trials whose two-sided test has p < alpha with the effect favouring the
    experimental arm (fewer events, longer RMST, more pCR, lower TMEM change; under no effect about alpha / 2),
    and ``power_two_sided``, p < alpha in either direction. ``power`` (with ``power_lower``/``power_upper``) is
    the one ``spec.power.definition`` names, also given as ``definition``. With more than one experimental arm,
    ``power_adjusted`` is the same share with the p-values adjusted across the arms (``analysis.multiplicity``).
    95% Wilson intervals.

    Parameters
    ----------
    df : pandas.DataFrame
        Every replicate's rows: ``replicate``, ``arm``, ``rank`` and the primary endpoint's columns.
    spec : TrialSpec
        The trial (``power`` sizes in patients per arm, primary endpoint, alpha, pre-specified analysis).
    max_trials : int, default 1000
        Most trials used at one size.

    Returns
    -------
    dict
        ``endpoint``, ``test``, ``alpha``, ``definition``, ``patients_per_arm``, ``trials`` and ``arms``: per
        experimental arm the power at each size with its Wilson interval.

    Examples
    --------
    >>> spec = TrialSpec(name="demo", patients_per_arm=200, power={"replicates": 20, "patients_per_arm": [100, 200]},
    ...                  arms=[{"name": "NACT", "strategy": "nact"}, {"name": "+ drug", "strategy": "nact+rebastinib"}])
    >>> rng = np.random.default_rng(4)
    >>> rep, arm = np.repeat(np.arange(20), 400), np.tile(np.repeat([0, 1], 200), 20)
    >>> t = rng.exponential(np.where(arm == 1, 2000.0, 1000.0))  # days: HR 0.5
    >>> df = pd.DataFrame({"replicate": rep, "arm": arm, "rank": np.tile(np.arange(200), 40),
    ...                    "dmfs_time_days": np.minimum(t, 1500.0), "dmfs_event": t <= 1500.0})
    >>> res = power_analysis(df, spec)
    >>> res["trials"], res["arms"]["+ drug"]["power"][1] > 0.9
    ([40, 20], True)
    """
    ep, alpha = spec.endpoints.primary, spec.analysis.alpha
    sizes = list(spec.power.patients_per_arm) or [spec.patients_per_arm]
    m = spec.patients_per_replicate_arm
    reps = sorted(df["replicate"].unique())
    shown = spec.power.definition
    n_exp = spec.n_arms - 1
    result = {
        "endpoint": ep,
        "test": _role(ep, spec)["prespecified_test"],
        "alpha": alpha,
        "definition": shown,
        "replicates": len(reps),
        "patients_per_arm": sizes,
        "trials": [],
        "arms": {},
    }
    kinds = _strategy_kinds(spec)
    reasons = [None] * spec.n_arms
    if ep == "tmem_change":
        reasons = [_no_tmem_change(spec, kinds, 0) or _no_tmem_change(spec, kinds, a) for a in range(spec.n_arms)]
    groups = {}
    for r, g in df.groupby("replicate", sort=True):
        g = g.sort_values("rank", kind="stable")
        groups[r] = (g["arm"].to_numpy(), g["rank"].to_numpy(), _arrays(g, ep))
    keys = ("favourable", "two_sided", "adjusted_favourable", "adjusted_two_sided")
    counts = {k: np.zeros((len(sizes), n_exp)) for k in keys}
    for i, n in enumerate(sizes):
        per_rep = max(1, min(m // n, -(-max_trials // len(reps))))
        trials = 0
        for r in reps:
            arm, rank, cols = groups[r]
            edges = np.searchsorted(rank, np.arange(per_rep + 1) * n, side="left")
            for b in range(per_rep):
                lo, hi = edges[b], edges[b + 1]
                a_blk = arm[lo:hi]
                p, fav = [], []
                for a in range(1, spec.n_arms):
                    if reasons[a] is not None:
                        p.append(None)
                        fav.append(False)
                        continue
                    sel = (a_blk == 0) | (a_blk == a)
                    res = _compare(ep, spec, {k: v[lo:hi][sel] for k, v in cols.items()}, a_blk[sel] == a)
                    p.append(res["p"])
                    fav.append(bool(res["favourable"]))
                sig = np.array([q is not None and q < alpha for q in p])
                adj = np.array([q is not None and q <= alpha for q in adjust_p(p, spec.analysis.multiplicity)])
                counts["two_sided"][i] += sig
                counts["favourable"][i] += sig & np.array(fav)
                counts["adjusted_two_sided"][i] += adj
                counts["adjusted_favourable"][i] += adj & np.array(fav)
                trials += 1
        result["trials"].append(trials)
    tr = np.asarray(result["trials"], float)
    for j, a in enumerate(range(1, spec.n_arms)):
        if reasons[a] is not None:
            result["arms"][spec.arms[a].name] = {"power": None, "not_applicable": reasons[a]}
            continue
        res = {}
        for label, k in (("power_favourable", "favourable"), ("power_two_sided", "two_sided")):
            lo, hi = _wilson(counts[k][:, j], tr)
            res[label] = (counts[k][:, j] / tr).tolist()
            res[f"{label}_lower"], res[f"{label}_upper"] = lo.tolist(), hi.tolist()
        key = "power_favourable" if shown == "favourable" else "power_two_sided"
        res = {"power": res[key], "power_lower": res[f"{key}_lower"], "power_upper": res[f"{key}_upper"], **res}
        if n_exp > 1:
            k = "adjusted_favourable" if shown == "favourable" else "adjusted_two_sided"
            lo, hi = _wilson(counts[k][:, j], tr)
            res["power_adjusted"] = (counts[k][:, j] / tr).tolist()
            res["power_adjusted_lower"], res["power_adjusted_upper"] = lo.tolist(), hi.tolist()
        result["arms"][spec.arms[a].name] = res
    return result


def _wilson(k: np.ndarray, n, z: float = 1.959963984540054) -> tuple[np.ndarray, np.ndarray]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)
