"""Figures of simulated patients: tumour size, TMEM, CTCs and distant-metastasis-free probability over time."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from chemomet.fileio import atomic_write  # noqa: E402
from chemomet.model.engine import Outcome  # noqa: E402
from chemomet.units import DAYS_PER_YEAR  # noqa: E402


def _save(fig, path: str | Path, title: str | None) -> Path:
    """Title the figure, write it atomically as PNG and close it."""
    if title:
        fig.suptitle(title)
    path = Path(path)
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return path


PANELS = (
    ("diameter_mm", "Primary tumour diameter (mm)", "linear"),
    ("tmem_10hpf", "TMEM doorways (per 10 HPF)", "linear"),
    ("ctc_expected", "Expected CTCs per 7.5 mL", "log"),
    ("dmfs", "Distant-metastasis-free probability", "linear"),
)


def plot_strategies(
    outcomes: list[Outcome], path: str | Path, patient: int = 0, title: str | None = None
) -> Path:
    """Write a 2×2 PNG comparing strategies for one patient (row ``patient`` of each outcome).

    Panels: tumour diameter (mm), TMEM density (doorways per 10 HPF), expected CTCs per 7.5 mL draw (log
    scale) over the first treatment year, and DMFS over the whole horizon (years).
    """
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), constrained_layout=True)
    for out in outcomes:
        if out.times_days is None:
            raise ValueError("plot_strategies needs outcomes simulated with a grid")
        for ax, (key, label, scale) in zip(axes.ravel(), PANELS, strict=True):
            y = out.trajectories[key][patient]
            if key == "dmfs":
                ax.plot(out.times_days / DAYS_PER_YEAR, y, label=out.strategy, lw=2)
                ax.set_xlabel("years from diagnosis")
                ax.set_ylim(max(0.0, float(np.nanmin(y)) - 0.05) if np.isfinite(np.nanmin(y)) else 0, 1.01)
            else:
                early = out.times_days <= 365.0
                yy = np.where(np.isfinite(y[early]), y[early], np.nan)
                if scale == "log":
                    yy = np.where(yy > 0, yy, np.nan)
                ax.plot(out.times_days[early], yy, label=out.strategy, lw=2)
                ax.set_xlabel("days from diagnosis")
            ax.set_yscale(scale)
            ax.set_title(label)
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    return _save(fig, path, title)


PART_COLOURS = {"part_microenvironment": "tab:red", "part_delay": "tab:orange", "part_kill_timing": "tab:blue"}


def plot_excess_risk(table, path: str | Path, title: str | None = None) -> Path:
    """PNG of the NACT-attributable excess risk in a cohort: its distribution (left) and its parts by decile
    of excess (right). ``table`` has the columns of :func:`chemomet.nact_excess_risk` (probabilities)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8), constrained_layout=True)
    excess = 100 * table["excess"].to_numpy()
    left.hist(excess, bins=60, color="0.4")
    left.axvline(0, color="k", lw=1)
    left.set_yscale("log")
    left.set_xlabel("excess 10-year distant-metastasis risk, NACT − surgery first (percentage points)")
    left.set_ylabel("patients")
    decile = np.minimum((np.argsort(np.argsort(excess)) * 10) // len(excess), 9)
    x = np.arange(10)
    for key, colour in PART_COLOURS.items():
        means = [100 * table[key].to_numpy()[decile == k].mean() for k in x]
        offset = {"part_microenvironment": -0.27, "part_delay": 0.0, "part_kill_timing": 0.27}[key]
        right.bar(x + offset, means, width=0.27, color=colour, label=key.removeprefix("part_").replace("_", " "))
    right.plot(x, [excess[decile == k].mean() for k in x], "k.-", label="excess (sum)")
    right.axhline(0, color="k", lw=0.8)
    right.set_xticks(x, [f"D{k + 1}" for k in x])
    right.set_xlabel("decile of excess risk")
    right.set_ylabel("mean (percentage points)")
    right.legend(fontsize=8)
    return _save(fig, path, title)
