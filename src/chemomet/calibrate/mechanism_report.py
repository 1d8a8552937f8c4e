"""The results of the mechanism inference as a table, a figure and files (issue 12, item 2): the Must-show table
per strength (:func:`mechanism_table_rows`, as Markdown :func:`format_table`), the figure of prior and posterior
intervals and model probabilities (:func:`plot_posteriors`) and the JSON and PNG of a run (:func:`write_results`).

Strengths are in their own units (``W`` in days, the rest dimensionless); probabilities are fractions.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from chemomet.calibrate.mechanism_likelihood import DATA_COMBINATIONS
from chemomet.calibrate.mechanism_summaries import MECHANISM_SETS

__all__ = ["MIN_ESS", "MOVED_SHIFT", "MOVED_WIDTH", "format_table", "mechanism_table_rows", "plot_posteriors",
           "write_results"]

MOVED_SHIFT = 0.25
"""A datum *moved* a strength when, alone, it shifts the posterior median by more than this many prior SDs of the
log (plus twice the median's Monte Carlo error, ``2.5 / sqrt(ESS)``), or narrows the 90% interval below
:data:`MOVED_WIDTH` of the prior's (with an effective sample size of at least :data:`MIN_ESS`)."""

MOVED_WIDTH = 0.8
"""See :data:`MOVED_SHIFT`."""

MIN_ESS = 30.0
"""Below this effective sample size a posterior's interval is too noisy to call a strength identified or not
(:func:`mechanism_table_rows` then says ``None``, undetermined)."""



def mechanism_table_rows(result: dict, fit_set: str = "all") -> list[dict]:
    """The Must-show table of issue 12: per strength, prior, posterior (median, 90%), posterior probability that
    its mechanism is on, the data that moved it and whether it is identified.

    Parameters
    ----------
    result : dict
        :func:`run_inference`'s result (before or after the table is added).
    fit_set : str, default "all"
        The set whose posteriors are shown (every strength is in ``all``).

    Returns
    -------
    list of dict
        One row per strength: ``strength``, ``symbol``, ``mechanism``, ``unit``, ``prior`` (median, q05, q95),
        ``posterior`` (per data combination: median, q05, q95, width_ratio, shift_prior_sd, identified),
        ``ess`` and ``p_mechanism_on`` (per data combination), ``moved_by`` (data ids), ``identified`` (all
        data; None when its effective sample size is below :data:`MIN_ESS`) and ``identified_by_data`` (the same
        per data combination).

    Examples
    --------
    >>> mechanism_table_rows({"fits": {}, "priors": {}, "model_probabilities": {}})
    []
    """
    fits = result["fits"]
    if fit_set not in fits:
        return []
    rows = []
    probs = result["model_probabilities"]
    for name, p in result["priors"].items():
        post = {c: fits[fit_set]["posterior"][c]["strengths"].get(name) for c in DATA_COMBINATIONS}
        mech = p["mechanism"]
        on = {c: float(sum(v for s, v in probs[c]["probability"].items() if name in MECHANISM_SETS[s]))
              for c in probs}
        moved = []
        for c, keys in DATA_COMBINATIONS.items():
            ess_c = fits[fit_set]["posterior"][c].get("ess") or 0.0
            if len(keys) != 1 or post[c] is None or ess_c < 2:
                continue
            s = post[c]
            # a shift must clear the Monte Carlo error of a weighted median (about 1.25 / sqrt(ESS) prior SDs, twice);
            # a narrowing counts only with enough effective draws
            if abs(s["shift_prior_sd"]) > MOVED_SHIFT + 2.5 / math.sqrt(ess_c) or (
                ess_c >= MIN_ESS and s["width_ratio"] < MOVED_WIDTH
            ):
                moved.append(keys[0])
        ess = {c: fits[fit_set]["posterior"][c].get("ess") for c in DATA_COMBINATIONS}
        by_data = {c: None if not post[c] or (ess[c] or 0) < MIN_ESS else bool(post[c]["identified"])
                   for c in DATA_COMBINATIONS}
        rows.append({
            "strength": name, "symbol": p["symbol"], "mechanism": mech, "unit": p["unit"],
            "prior": {"median": p["median"], "q05": p["q05"], "q95": p["q95"]},
            "posterior": post, "ess": ess, "p_mechanism_on": on, "moved_by": moved,
            "identified": by_data["all data"], "identified_by_data": by_data,
        })
    return rows


def plot_posteriors(result: dict, path: str | Path) -> None:
    """Figure of prior and posterior 90% intervals of every strength, and posterior model probabilities.

    Parameters
    ----------
    result : dict
        :func:`run_inference`'s result.
    path : str or pathlib.Path
        The PNG to write (atomically).

    Examples
    --------
    >>> plot_posteriors(result, "mechanisms.png")  # doctest: +SKIP
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from chemomet.fileio import atomic_write

    rows = result["table"]
    combos = list(DATA_COMBINATIONS)
    fixed = {"all data": "C3", "EBCTCG only": "C0", "CTC fall only": "C2"}
    others = iter(f"C{i}" for i in range(4, 10))
    colours = {c: fixed[c] if c in fixed else next(others) for c in combos}
    step = 0.8 / len(combos)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    ax = axes[0]
    for i, r in enumerate(rows):
        y = len(rows) - 1 - i
        pm, lo, hi = r["prior"]["median"], r["prior"]["q05"], r["prior"]["q95"]
        ax.plot([lo / pm, hi / pm], [y + 0.3] * 2, color="0.5", lw=3)
        ax.plot([1.0], [y + 0.3], "o", color="0.5")
        for j, c in enumerate(combos):
            s = r["posterior"][c]
            if s is None:
                continue
            yy = y + 0.3 - step * (j + 1)
            ax.plot([s["q05"] / pm, s["q95"] / pm], [yy] * 2, color=colours[c], lw=2)
            ax.plot([s["median"] / pm], [yy], "o", color=colours[c])
    ax.set_xscale("log")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"{r['symbol']} ({r['mechanism']})" for r in reversed(rows)])
    ax.axvline(1.0, color="0.8", lw=0.8, zorder=0)
    ax.set_xlabel("strength / prior median (median and 90% interval)")
    handles = [plt.Line2D([], [], color="0.5", lw=3, label="prior")] + [
        plt.Line2D([], [], color=colours[c], lw=2, label=f"posterior, {c}") for c in combos]
    ax.legend(handles=handles, fontsize=8, loc="lower right")
    ax.set_title("Mechanism strengths ('all' set)")
    ax = axes[1]
    sets = list(result["model_probabilities"]["all data"]["probability"])
    x = np.arange(len(sets))
    for j, c in enumerate(combos):
        p = [result["model_probabilities"][c]["probability"][s] for s in sets]
        ax.bar(x + (j - (len(combos) - 1) / 2) * step, p, width=step, color=colours[c], label=c)
    ax.axhline(1 / len(sets), color="0.5", ls="--", lw=0.8, label="prior")
    ax.set_xticks(x)
    ax.set_xticklabels([s.replace("+", "+\n") for s in sets], fontsize=8)
    ax.set_ylabel("posterior model probability")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.set_title("Mechanism sets")
    fig.tight_layout()
    atomic_write(Path(path), lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)


def write_results(result: dict, out: str | Path) -> dict[str, str]:
    """Write ``mechanism_inference.json`` and ``mechanism_inference.png`` into the folder ``out`` (atomically).

    Parameters
    ----------
    result : dict
        :func:`run_inference`'s result.
    out : str or pathlib.Path
        An existing folder.

    Returns
    -------
    dict[str, str]
        ``json`` and ``figure`` paths.

    Examples
    --------
    >>> write_results(result, "out")  # doctest: +SKIP
    """
    from chemomet.fileio import atomic_write, json_safe

    out = Path(out)
    j, f = out / "mechanism_inference.json", out / "mechanism_inference.png"
    text = json.dumps(json_safe(result), indent=1, allow_nan=False)
    atomic_write(j, lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))
    plot_posteriors(result, f)
    return {"json": str(j), "figure": str(f)}


def format_table(result: dict) -> str:
    """The Must-show table as Markdown (the numbers of :func:`mechanism_table_rows`).

    Parameters
    ----------
    result : dict
        :func:`run_inference`'s result.

    Returns
    -------
    str

    Examples
    --------
    >>> format_table({"table": []}).startswith("| mechanism | strength |")
    True
    """
    def f(x):
        return f"{x:.3g}"

    word = {True: "yes", False: "no", None: f"undetermined (ESS < {MIN_ESS:.0f})"}

    def post(s):
        return "—" if s is None else f"{f(s['median'])} ({f(s['q05'])}–{f(s['q95'])})"

    lines = [
        "| mechanism | strength | prior median (90%) | posterior, all data | posterior, EBCTCG only | "
        "posterior, all but Bidard | P(mechanism on), all data / EBCTCG only | moved by | "
        "identified, all data / EBCTCG only / all but Bidard |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["table"]:
        pr = r["prior"]
        on = r["p_mechanism_on"]
        by_data = r.get("identified_by_data", {})
        lines.append(
            f"| {r['mechanism']} | {r['symbol']} ({r['unit']}) | {f(pr['median'])} ({f(pr['q05'])}–{f(pr['q95'])}) | "
            f"{post(r['posterior']['all data'])} | {post(r['posterior']['EBCTCG only'])} | "
            f"{post(r['posterior'].get('all but Bidard'))} | "
            f"{on.get('all data', float('nan')):.2f} / {on.get('EBCTCG only', float('nan')):.2f} | "
            f"{', '.join(r['moved_by']) or 'none'} | {word[r['identified']]} / "
            f"{word[by_data.get('EBCTCG only')]} / {word[by_data.get('all but Bidard')]} |"
        )
    return "\n".join(lines)
