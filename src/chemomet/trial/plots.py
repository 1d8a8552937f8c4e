"""Trial figures: Kaplan–Meier curves per endpoint, a forest plot of subgroup hazard ratios, power curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter  # noqa: E402

from chemomet.fileio import atomic_write  # noqa: E402
from chemomet.units import DAYS_PER_YEAR  # noqa: E402

LABELS = {"dmfs": "Distant-metastasis-free survival", "drfi": "Distant relapse-free interval"}


def _save(fig, path: Path) -> Path:
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=120))
    plt.close(fig)
    return path


def plot_km(
    curves: dict, names: list[str], endpoint: str, path: str | Path, title: str, comparisons: list[dict]
) -> Path:
    """Kaplan–Meier curves (with confidence bands) of each arm, time in years; HR and log-rank p in the legend.

    curves: arm index -> :func:`chemomet.trial.analysis.km_curve` dict.
    """
    fig, ax = plt.subplots(figsize=(8, 5.2), constrained_layout=True)
    for a, c in curves.items():
        t = c["days"] / DAYS_PER_YEAR
        line = ax.step(t, c["survival"], where="post", lw=2, label=f"{names[a]} (n={c['n']:,})")
        ax.fill_between(t, c["lower"], c["upper"], step="post", alpha=0.2, color=line[0].get_color())
    text = [
        f"{c['arm']} vs {c['versus']}: HR {c['hazard_ratio']:.3f} ({c['ci_lower']:.3f}-{c['ci_upper']:.3f}), "
        f"log-rank p = {c['logrank_p']:.3g}"
        for c in comparisons
        if c["hazard_ratio"] is not None
    ]
    if text:
        ax.text(0.02, 0.03, "\n".join(text), transform=ax.transAxes, fontsize=8, va="bottom")
    ax.set_xlabel("Years from enrolment")
    ax.set_ylabel(LABELS.get(endpoint, endpoint))
    ax.set_ylim(max(0.0, ax.get_ylim()[0]), 1.0)
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, Path(path))


def plot_forest(rows: list[dict], path: str | Path, title: str) -> Path:
    """Forest plot: hazard ratio and CI per subgroup level (log scale), one panel per experimental arm."""
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    levels = list(dict.fromkeys((r["subgroup"], r["level"]) for r in rows))
    fig, axes = plt.subplots(
        1, len(arms), figsize=(6.5 * len(arms), 0.32 * len(levels) + 1.6), squeeze=False, constrained_layout=True
    )
    for ax, arm in zip(axes[0], arms, strict=True):
        for y, (sg, lev) in enumerate(levels):
            r = next(x for x in rows if x["arm"] == arm and x["subgroup"] == sg and x["level"] == lev)
            if r["hazard_ratio"] is None:
                continue
            color = "k" if sg == "all" else "C0"
            ax.plot([r["ci_lower"], r["ci_upper"]], [y, y], color=color, lw=1.5)
            ax.plot(r["hazard_ratio"], y, "s", color=color, ms=4 + 4 * np.sqrt(r["n"] / max(x["n"] for x in rows)))
        ax.axvline(1.0, color="grey", ls="--", lw=1)
        ax.set_xscale("log")
        lo, hi = ax.get_xlim()
        ticks = [x for x in (0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0) if lo <= x <= hi]
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_yticks(range(len(levels)), [f"{lev} (n={_n(rows, arm, sg, lev):,})" for sg, lev in levels], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(f"Hazard ratio, {arm} vs {rows[0]['versus']} ({rows[0]['endpoint']})")
        ax.grid(alpha=0.3, axis="x")
    fig.suptitle(title, fontsize=10)
    return _save(fig, Path(path))


def _n(rows, arm, sg, lev):
    return next(x["n"] for x in rows if x["arm"] == arm and x["subgroup"] == sg and x["level"] == lev)


def plot_power(curves: list[tuple[str, dict]], path: str | Path, title: str) -> Path:
    """Power vs patients per arm, one line per (design, experimental arm), with 95% Wilson bands."""
    fig, ax = plt.subplots(figsize=(7.5, 5), constrained_layout=True)
    for label, power in curves:
        n = np.asarray(power["patients_per_arm"])
        for arm, res in power["arms"].items():
            line = ax.plot(n, res["power"], "o-", label=f"{label}: {arm}" if label else arm)
            ax.fill_between(n, res["power_lower"], res["power_upper"], alpha=0.2, color=line[0].get_color())
    ax.axhline(0.8, color="grey", ls="--", lw=1)
    ax.set_xscale("log")
    ax.set_ylim(0, 1)
    ax.set_xlabel("Patients per arm")
    first = curves[0][1]
    ax.set_ylabel(f"Power ({first['endpoint']}, two-sided alpha = {first['alpha']:g}, benefit)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, Path(path))
