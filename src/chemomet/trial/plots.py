"""Trial figures: Kaplan–Meier curves with hazard ratios by year per endpoint, a forest plot of subgroup hazard
ratios with heterogeneity p-values, power curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter  # noqa: E402

from chemomet.fileio import atomic_write  # noqa: E402
from chemomet.units import DAYS_PER_YEAR  # noqa: E402

LABELS = {
    "dmfs": "Distant-metastasis-free survival",
    "drfi": "Distant relapse-free interval",
    "os": "Overall survival",
    "dfs": "Disease-free survival",
}
HR_TICKS = (0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0)


def _save(fig, path: Path) -> Path:
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120))
    plt.close(fig)
    return path


def plot_km(
    curves: dict, names: list[str], endpoint: str, path: str | Path, title: str, comparisons: list[dict]
) -> Path:
    """Kaplan–Meier curves (with confidence bands) of each arm, time in years, above the hazard ratio by year.

    Top: the curves, and per comparison the Cox HR, the log-rank p, the pre-specified test's p-value
    (unadjusted and adjusted for multiplicity) and the RMST difference. Bottom (when the comparisons carry
    ``hazard_ratio_by_year``, see :func:`chemomet.trial.analysis.hazard_ratio_by_interval`): the piecewise hazard
    ratio of each year with its CI (log scale), the overall Cox HR (dashed) and the proportional-hazards test's p
    in the legend; a trend across years means the single HR is an average over a changing effect.

    curves: arm index -> :func:`chemomet.trial.analysis.km_curve` dict.
    """
    by_year = any(c.get("hazard_ratio_by_year") for c in comparisons)
    fig, axes = plt.subplots(
        2 if by_year else 1,
        1,
        figsize=(8, 8.4 if by_year else 5.2),
        squeeze=False,
        constrained_layout=True,
        gridspec_kw={"height_ratios": [5.2, 3.2] if by_year else [1]},
    )
    ax = axes[0, 0]
    colors = {}
    for a, c in curves.items():
        t = c["days"] / DAYS_PER_YEAR
        line = ax.step(t, c["survival"], where="post", lw=2, label=f"{names[a]} (n={c['n']:,})")
        colors[a] = line[0].get_color()
        ax.fill_between(t, c["lower"], c["upper"], step="post", alpha=0.2, color=colors[a])
    text = [_comparison_text(c) for c in comparisons if c["hazard_ratio"] is not None]
    if text:
        ax.text(
            0.02,
            0.03,
            "\n".join(text),
            transform=ax.transAxes,
            fontsize=7,
            va="bottom",
            bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"},
        )
    ax.set_xlabel("Years from enrolment")
    ax.set_ylabel(LABELS.get(endpoint, endpoint))
    ax.set_ylim(max(0.0, ax.get_ylim()[0]), 1.0)
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)
    if by_year:
        _plot_hr_by_year(axes[1, 0], comparisons, names, colors)
    return _save(fig, Path(path))


def _comparison_text(c: dict) -> str:
    text = (
        f"{c['arm']} vs {c['versus']}: HR {c['hazard_ratio']:.3f} ({c['ci_lower']:.3f}-{c['ci_upper']:.3f}), "
        f"log-rank p = {c['logrank_p']:.3g}"
    )
    more = []
    if c.get("p") is not None:
        adj = c.get("p_adjusted")
        more.append(f"pre-specified test p = {c['p']:.3g}" + (f" (adjusted {adj:.3g})" if adj is not None else ""))
    if c.get("rmst_difference_days") is not None:
        more.append(f"RMST difference {c['rmst_difference_days']:+.1f} days")
    return text + ("\n    " + "; ".join(more) if more else "")


def _plot_hr_by_year(ax, comparisons: list[dict], names: list[str], colors: dict) -> None:
    """Hazard ratio by year with CIs, one series per experimental arm (shifted a little to stay apart)."""
    k = max(len(comparisons), 1)
    for i, c in enumerate(comparisons):
        a = names.index(c["arm"]) if c["arm"] in names else i + 1
        color = colors.get(a, f"C{a}")
        rows = [r for r in c.get("hazard_ratio_by_year") or [] if r["hazard_ratio"] is not None]
        if not rows:
            continue
        mid = np.array([(r["from_years"] + r["to_years"]) / 2 for r in rows]) + 0.08 * (i - (k - 1) / 2)
        hr = np.array([r["hazard_ratio"] for r in rows])
        lo = np.array([r["ci_lower"] for r in rows])
        hi = np.array([r["ci_upper"] for r in rows])
        ph = c.get("proportional_hazards") or {}
        label = c["arm"]
        if ph.get("p") is not None:
            label += f" (PH test p = {ph['p']:.2g})"
        ax.errorbar(mid, hr, yerr=[hr - lo, hi - hr], fmt="o", color=color, ms=4, capsize=2, label=label)
        if c["hazard_ratio"] is not None:
            ax.axhline(c["hazard_ratio"], color=color, ls="--", lw=1)
    ax.axhline(1.0, color="grey", lw=1)
    ax.set_yscale("log")
    lo, hi = ax.get_ylim()
    ax.yaxis.set_major_locator(FixedLocator([y for y in HR_TICKS if lo <= y <= hi]))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("Years from enrolment (intervals of one year)")
    ax.set_ylabel("Hazard ratio in the year")
    ax.set_title("Hazard ratio by year, with CIs (dashed: overall Cox HR)", fontsize=9)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="best")


def plot_forest(rows: list[dict], path: str | Path, title: str) -> Path:
    """Forest plot: hazard ratio and CI per subgroup level (log scale), one panel per experimental arm, with the
    heterogeneity (treatment × subgroup interaction) p-value of each subgroup variable beside its first level.
    Subgroup analyses are exploratory: the figure says so."""
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    levels = list(dict.fromkeys((r["subgroup"], r["level"]) for r in rows))
    fig, axes = plt.subplots(
        1, len(arms), figsize=(7.2 * len(arms), 0.32 * len(levels) + 2.0), squeeze=False, constrained_layout=True
    )
    for ax, arm in zip(axes[0], arms, strict=True):
        labels = []
        shown = set()
        for y, (sg, lev) in enumerate(levels):
            r = next(x for x in rows if x["arm"] == arm and x["subgroup"] == sg and x["level"] == lev)
            label = f"{lev} (n={r['n']:,})"
            if sg != "all" and sg not in shown:
                shown.add(sg)
                p = r.get("interaction_p")
                label = f"{sg}: p-het {'n/a' if p is None else f'{p:.2g}'} | {label}"
            labels.append(label)
            if r["hazard_ratio"] is None:
                continue
            color = "k" if sg == "all" else "C0"
            ax.plot([r["ci_lower"], r["ci_upper"]], [y, y], color=color, lw=1.5)
            ax.plot(r["hazard_ratio"], y, "s", color=color, ms=4 + 4 * np.sqrt(r["n"] / max(x["n"] for x in rows)))
        ax.axvline(1.0, color="grey", ls="--", lw=1)
        ax.set_xscale("log")
        lo, hi = ax.get_xlim()
        ticks = [x for x in HR_TICKS if lo <= x <= hi]
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_yticks(range(len(levels)), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(f"Hazard ratio, {arm} vs {rows[0]['versus']} ({rows[0]['endpoint']})")
        ax.grid(alpha=0.3, axis="x")
    fig.suptitle(
        f"{title}\nExploratory: p-het = treatment x subgroup interaction (likelihood ratio, Cox stratified by "
        "level); per-level CIs are not adjusted for multiplicity",
        fontsize=9,
    )
    return _save(fig, Path(path))


def plot_power(curves: list[tuple[str, dict]], path: str | Path, title: str) -> Path:
    """Power vs patients per arm, one line per (design, experimental arm), with 95% Wilson bands. The y label
    says which definition is drawn (``definition`` of :func:`chemomet.trial.analysis.power_analysis`:
    favourable direction or two-sided); arms where the endpoint does not apply are left out."""
    fig, ax = plt.subplots(figsize=(7.5, 5), constrained_layout=True)
    for label, power in curves:
        n = np.asarray(power["patients_per_arm"])
        for arm, res in power["arms"].items():
            if res.get("power") is None:
                continue
            line = ax.plot(n, res["power"], "o-", label=f"{label}: {arm}" if label else arm)
            ax.fill_between(n, res["power_lower"], res["power_upper"], alpha=0.2, color=line[0].get_color())
    ax.axhline(0.8, color="grey", ls="--", lw=1)
    ax.set_xscale("log")
    ax.set_ylim(0, 1)
    ax.set_xlabel("Patients per arm")
    first = curves[0][1]
    how = (
        "p < alpha in either direction"
        if first.get("definition") == "two-sided"
        else "p < alpha favouring the experimental arm"
    )
    ax.set_ylabel(f"Power ({first['endpoint']}, two-sided alpha = {first['alpha']:g}:\n{how})", fontsize=9)
    ax.set_title(title, fontsize=10)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, Path(path))


def plot_replication(rows: list[dict], path: str | Path, title: str) -> Path:
    """Model vs published, side by side: each published result (black square, its 95% CI) above the model's
    estimate from the simulated trial (blue circle, its 95% CI). Left: hazard ratios (log scale); right:
    survival, event probabilities and pCR rates (percent).

    rows: :func:`chemomet.trial.replication.compare_published` rows.
    """
    groups = [
        [r for r in rows if r["measure"] == "hazard_ratio"],
        [r for r in rows if r["measure"] != "hazard_ratio"],
    ]
    groups = [g for g in groups if g]
    height = 1.2 + 0.55 * max((len(g) for g in groups), default=1)
    fig, axes = plt.subplots(
        1, max(len(groups), 1), figsize=(6.5 * max(len(groups), 1), height), squeeze=False, constrained_layout=True
    )
    for ax, group in zip(axes[0], groups, strict=False):
        hr = group[0]["measure"] == "hazard_ratio"
        scale = 1.0 if hr else 100.0
        labels = []
        for i, r in enumerate(group):
            y = len(group) - 1 - i
            for dy, key, style in ((0.15, "published", "s"), (-0.15, "model", "o")):
                d = r[key]
                if d.get("value") is None:
                    continue
                v = d["value"] * scale
                lo = (d["lower"] if d.get("lower") is not None else d["value"]) * scale
                hi = (d["upper"] if d.get("upper") is not None else d["value"]) * scale
                ax.errorbar(
                    [v],
                    [y + dy],
                    xerr=[[v - lo], [hi - v]],
                    fmt=style,
                    color="k" if key == "published" else "C0",
                    ms=5,
                    capsize=3,
                    label=key if i == 0 else None,
                )
            when = f" at {r['years']:g} y" if r["years"] is not None else ""
            labels.append(f"{r['label']}{when}\n{r['arm']}" + (f" vs {r['versus']}" if r.get("versus") else ""))
        ax.set_yticks(range(len(group)))
        ax.set_yticklabels(labels[::-1], fontsize=7)
        if hr:
            ax.axvline(1.0, color="grey", lw=1)
            ax.set_xscale("log")
            lo, hi = ax.get_xlim()
            ax.xaxis.set_major_locator(FixedLocator([x for x in HR_TICKS if lo <= x <= hi]))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel("Hazard ratio (experimental vs control), 95% CI")
        else:
            ax.set_xlabel("Percent, 95% CI")
        ax.grid(alpha=0.3, axis="x")
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(title, fontsize=10)
    return _save(fig, Path(path))
