"""Figures of one patient's assessment, drawn from an :class:`~chemomet.assess.result.Assessment` (or its result
dict) and returned as PNG bytes.

Both figures are small (about 8 × 3.2 inches at 110 dpi) so that the HTML report embedding them stays light.
They use :class:`matplotlib.figure.Figure` with the Agg canvas directly, never pyplot, so drawing them touches no
global matplotlib state and works without a display. Their margins are set from the measured width of the tick
labels (:func:`_layout`), the place matplotlib's constrained layout finds for them, without the two extra passes
over every tick it makes to find it.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

import matplotlib as mpl
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from chemomet.assess.result import Assessment, Band, Interval, StrategyTrajectories, as_assessment

DPI = 110
WIDTH_IN = 8.0
HEIGHT_IN = 3.2
RECOMMENDED_BG = "#fff3bf"
PALETTE = ("#4d4d4d", "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def _name(name: str | None, i: int) -> str:
    """A strategy's name for the figures ("strategy 2" for the second when it has none)."""
    return f"strategy {i + 1}" if name is None else str(name)


def strategy_colours(result: Assessment | Mapping) -> dict[str, str]:
    """One colour per strategy name, in the result's order (the same in every figure of the report)."""
    names = [_name(s.name, i) for i, s in enumerate(as_assessment(result, "strategy_colours").strategies)]
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def number_or_nan(x) -> float:
    """A float, or NaN for None, NaN, non-numbers and booleans."""
    if isinstance(x, bool) or x is None:
        return math.nan
    try:
        value = float(x)
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan


def _interval(d: Interval | None) -> tuple[float, float, float]:
    """(mean, lo, hi) of an interval, NaN where missing."""
    if d is None:
        return (math.nan, math.nan, math.nan)
    return (number_or_nan(d.mean), number_or_nan(d.lo), number_or_nan(d.hi))


def _risk(risk: Interval | None, dmfs: Interval | None) -> tuple[float, float, float]:
    """Distant-metastasis risk (probability): ``risk`` if given, else 1 − ``dmfs``."""
    if risk is not None:
        return _interval(risk)
    mean, lo, hi = _interval(dmfs)
    return (1.0 - mean, 1.0 - hi, 1.0 - lo)


def _array(values, n: int) -> np.ndarray:
    """Float array of length ``n`` with None/non-numbers as NaN (shorter inputs padded with NaN)."""
    out = np.full(n, np.nan)
    if isinstance(values, Sequence) and not isinstance(values, str):
        for i, v in enumerate(values[:n]):
            out[i] = number_or_nan(v)
    return out


PAD_IN = 3.0 / 72.0
"""Space around the figure's edge and between panels (inches; constrained layout's ``w_pad``)."""
TOP_PX = 25.0
"""Height above the axes for a panel title (pixels at :data:`DPI`)."""
BOTTOM_PX = 82.0
"""Height below the axes for the x tick labels, the x label and a one-row legend (pixels at :data:`DPI`)."""
LEGEND_ROW_PX = 17.5
"""Height of each further row of the legend (pixels at :data:`DPI`; its font of 7.5 points, line spacing)."""


def _text_width_px(texts, weight: str = "normal") -> float:
    """Width of the widest of ``texts`` as a tick label (``ytick.labelsize``, ``weight``), in pixels at :data:`DPI`
    (0 for none)."""
    prop = FontProperties(size=mpl.rcParams["ytick.labelsize"], weight=weight)
    renderer = RendererAgg(8, 8, DPI)
    return max((renderer.get_text_width_height_descent(str(t), prop, ismath=False)[0] for t in texts), default=0.0)


def _ytick_labels(ax) -> list[str]:
    """The y tick labels the axes will draw (within its limits), formatted without drawing anything."""
    lo, hi = sorted(ax.get_ylim())
    locs = [v for v in ax.yaxis.get_majorticklocs() if lo <= v <= hi]
    return [s for s in ax.yaxis.get_major_formatter().format_ticks(locs) if s]


def _ytick_space_px(ax, labels=None, weight: str = "normal", ticks: bool = True) -> float:
    """Pixels left of an axes for its y tick labels (default: those it will draw): their width, the tick marks
    (``ticks``: shown at the default length) and the label pad."""
    length = mpl.rcParams["ytick.major.size"] if ticks else 0.0
    width = _text_width_px(_ytick_labels(ax) if labels is None else labels, weight)
    return width + (length + mpl.rcParams["ytick.major.pad"]) * DPI / 72.0


def _layout(fig: Figure, axes, left_px: list[float], right_px: float = 0.0, legend_rows: int = 1) -> None:
    """Place ``axes`` side by side: ``left_px[k]`` pixels for the y tick labels of panel ``k``, :data:`PAD_IN` at
    the edges and between panels, ``right_px`` more at the right edge, :data:`TOP_PX` above and
    :data:`BOTTOM_PX` below (with :data:`LEGEND_ROW_PX` for each legend row past the first; pixels at :data:`DPI`)."""
    w, h = fig.get_size_inches() * DPI
    pad = PAD_IN * DPI
    bottom = BOTTOM_PX + LEGEND_ROW_PX * max(legend_rows - 1, 0)
    usable = w - pad * (len(axes) + 1) - sum(left_px) - right_px
    panel = usable / len(axes)
    x = pad
    for ax, left in zip(axes, left_px, strict=True):
        x += left
        ax.set_position([x / w, bottom / h, panel / w, (h - bottom - TOP_PX) / h])
        x += panel + pad


def _overhang_px(fig: Figure, ax, left_px: float, labels: list[tuple[float, str]], offset_pt: float,
                 size_pt: float) -> float:
    """Pixels the axes must leave at the figure's right edge so that ``labels`` (data x, text), written
    ``offset_pt`` right of their x at ``size_pt``, stay inside it, the axes spanning from ``left_px`` to the
    right edge otherwise (0 where they fit)."""
    lo, hi = ax.get_xlim()
    span = (fig.get_size_inches()[0] - 2 * PAD_IN) * DPI - left_px  # the axes' width without extra room
    prop = FontProperties(size=size_pt)
    renderer = RendererAgg(8, 8, DPI)
    need = 0.0
    for x, text in labels:
        f = (x - lo) / (hi - lo) if hi > lo else 1.0
        if not 0.0 < f <= 1.0:
            continue
        width = renderer.get_text_width_height_descent(text, prop, ismath=False)[0] + offset_pt * DPI / 72.0
        need = max(need, (width - (1.0 - f) * span) / f)
    return need


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _message_figure(text: str) -> bytes:
    fig = Figure(figsize=(WIDTH_IN, 1.2), dpi=DPI)
    fig.text(0.5, 0.5, text, ha="center", va="center", fontsize=10, color="0.35")
    return _png(fig)


def strategy_figure(result: Assessment | Mapping) -> bytes:
    """Forest plot of the distant-metastasis risk per strategy (PNG bytes).

    One row per strategy: the 10-year risk (1 − DMFS10, %) as a filled point with its credible interval bar, the
    5-year risk as an open diamond with a thinner bar; the recommended strategy is shaded and its label bold. A
    dashed line marks the 10-year risk of surgery first, when that strategy is in the result.
    """
    a = as_assessment(result, "strategy_figure")
    strategies = a.strategies
    if not strategies:
        return _message_figure("No strategy was assessed.")
    level = number_or_nan(a.settings.credible_level if a.settings else None)
    level_txt = f"{100 * level:.0f}%" if math.isfinite(level) else "90%"
    recommended = str(a.recommendation.strategy) if a.recommendation else ""
    colours = strategy_colours(a)

    n = len(strategies)
    fig = Figure(figsize=(WIDTH_IN, max(HEIGHT_IN, 1.0 + 0.42 * n)), dpi=DPI)
    ax = fig.add_subplot()
    y = np.arange(n)[::-1].astype(float)  # first strategy on top
    names, notes = [], []
    for i, (yi, s) in enumerate(zip(y, strategies, strict=True)):
        name = _name(s.name, i)
        names.append(name)
        colour = colours.get(name, "k")
        if name == recommended:
            ax.axhspan(yi - 0.45, yi + 0.45, color=RECOMMENDED_BG, zorder=0)
        m10, lo10, hi10 = (100 * v for v in _risk(s.dm_risk_10y, s.dmfs_10y))
        m5, lo5, hi5 = (100 * v for v in _risk(None, s.dmfs_5y))
        if math.isfinite(lo5) and math.isfinite(hi5):
            ax.plot([lo5, hi5], [yi - 0.18] * 2, color=colour, lw=1.2, alpha=0.6, zorder=2)
        if math.isfinite(m5):
            ax.plot(m5, yi - 0.18, "D", ms=5.5, mfc="white", mec=colour, mew=1.4, zorder=3)
        if math.isfinite(lo10) and math.isfinite(hi10):
            ax.plot([lo10, hi10], [yi + 0.1] * 2, color=colour, lw=2.4, zorder=2)
            for end in (lo10, hi10):
                ax.plot([end, end], [yi + 0.02, yi + 0.18], color=colour, lw=1.6, zorder=2)
        if math.isfinite(m10):
            ax.plot(m10, yi + 0.1, "o", ms=8, color=colour, zorder=4)
            right = hi10 if math.isfinite(hi10) else m10
            ax.annotate(f"{m10:.1f}%", (right, yi + 0.1), xytext=(5, 0), textcoords="offset points",
                        ha="left", va="center", fontsize=7.5, color=colour)
            notes.append((right, f"{m10:.1f}%"))
        if name == "surgery-first" and math.isfinite(m10):
            ax.axvline(m10, color="0.45", lw=0.9, ls="--", zorder=1)

    ax.set_yticks(y, names)
    for label in ax.get_yticklabels():
        if label.get_text() == recommended:
            label.set_fontweight("bold")
    ax.set_ylim(-0.6, n - 0.4)
    ax.set_xlim(left=0)
    ax.margins(x=0.08)
    ax.set_xlabel(f"distant-metastasis risk (%), {level_txt} credible interval")
    ax.grid(axis="x", alpha=0.3)
    ax.tick_params(axis="y", length=0)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    handles = [
        Line2D([], [], marker="o", color="0.2", lw=2.4, ms=7, label="10 years"),
        Line2D([], [], marker="D", color="0.2", mfc="white", lw=1.2, ms=5, label="5 years"),
    ]
    if recommended in names:
        handles.append(Line2D([], [], marker="s", ls="none", ms=10, color=RECOMMENDED_BG, label="recommended"))
    if "surgery-first" in names:
        handles.append(Line2D([], [], color="0.45", lw=0.9, ls="--", label="surgery first, 10 y"))
    ax.set_title("Distant-metastasis risk by strategy", fontsize=10, y=1.0)  # y given: placed without a search
    plain = [name for name in names if name != recommended]
    left = max(_ytick_space_px(ax, plain, ticks=False), _ytick_space_px(ax, [recommended], "bold", ticks=False))
    _layout(fig, [ax], [left], _overhang_px(fig, ax, left, notes, 5.0, 7.5))
    _legend(fig, handles, len(handles))
    return _png(fig)


TRAJECTORY_PANELS = ("TMEM doorways (per 10 HPF)", "expected CTCs (cells per 7.5 mL blood)")
"""Titles of the trajectory figure's panels: :func:`_panels` of each strategy, in this order."""


def _panels(series: StrategyTrajectories | None) -> tuple[Band, Band]:
    """The bands drawn in the panels of :data:`TRAJECTORY_PANELS` (empty where missing)."""
    if series is None:
        return (Band(), Band())
    return (series.tmem_10hpf or Band(), series.ctc_expected or Band())


def trajectory_figure(result: Assessment | Mapping) -> bytes:
    """Predicted TMEM density and expected CTC count over time per strategy (PNG bytes).

    Two panels side by side, days from diagnosis on the x-axis: the median as a line, the credible band shaded,
    surgery marked by a dotted vertical line in the strategy's colour. The CTC panel uses a log scale when its
    values span more than 1.5 decades. Null values (after surgery) leave gaps.
    """
    a = as_assessment(result, "trajectory_figure")
    traj = a.trajectories
    times = _array(traj.times_days, len(traj.times_days)) if traj else np.empty(0)
    by_strategy = traj.by_strategy if traj else {}
    if times.size == 0 or not by_strategy:
        return _message_figure("No trajectories in this assessment.")
    colours = strategy_colours(a)
    surgery = {str(s.name): number_or_nan(s.surgery_day) for s in a.strategies}

    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    axes = fig.subplots(1, 2)
    handles = []
    for k, (name, series) in enumerate(by_strategy.items()):
        colour = colours.get(str(name), PALETTE[k % len(PALETTE)])
        for ax, band in zip(axes, _panels(series), strict=True):
            med = _array(band.median, times.size)
            lo = _array(band.lo, times.size)
            hi = _array(band.hi, times.size)
            ok = np.isfinite(lo) & np.isfinite(hi)
            if ok.any():
                ax.fill_between(times, lo, hi, where=ok, color=colour, alpha=0.15, lw=0)
            ax.plot(times, med, color=colour, lw=1.6)
            day = surgery.get(str(name), math.nan)
            if math.isfinite(day):
                ax.axvline(day, color=colour, lw=1.0, ls=":")
        handles.append(Line2D([], [], color=colour, lw=1.6, label=str(name)))

    ctc_bands = [_panels(series)[1] for series in by_strategy.values()]
    for ax, label in zip(axes, TRAJECTORY_PANELS, strict=True):
        ax.set_title(label, fontsize=9.5, y=1.0)  # y given: no search for decorations above the axes
        ax.set_xlabel("days from diagnosis")
        ax.grid(alpha=0.3)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    tmem_ax, ctc_ax = axes
    tmem_ax.set_ylim(bottom=0)
    values = np.concatenate(
        [_array(part, times.size) for band in ctc_bands for part in (band.median, band.lo, band.hi)]
    )
    positive = values[np.isfinite(values) & (values > 0)]
    if positive.size and positive.max() / positive.min() > 10**1.5:
        ctc_ax.set_yscale("log")
        ctc_ax.yaxis.set_major_locator(LogLocator(base=10, numticks=6))
        # below 1e-3 CTCs per draw nothing is ever seen: do not spend the axis on it
        ctc_ax.set_ylim(bottom=max(positive.min(), 1e-3 * positive.max(), 1e-4))
        ctc_ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ctc_ax.yaxis.set_minor_formatter(NullFormatter())
    else:
        ctc_ax.set_ylim(bottom=0)
    handles.append(Line2D([], [], color="0.3", lw=1.0, ls=":", label="surgery"))
    ncol = min(len(handles), 6)
    _layout(fig, list(axes), [_ytick_space_px(ax) for ax in axes], legend_rows=math.ceil(len(handles) / ncol))
    _legend(fig, handles, ncol)
    return _png(fig)


def _legend(fig: Figure, handles, ncol: int) -> None:
    """The figure's legend, one row centred below the axes (at the bottom of :data:`BOTTOM_PX`)."""
    h = fig.get_size_inches()[1] * DPI
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, PAD_IN * DPI / h), ncol=ncol,
               fontsize=7.5, frameon=False, borderaxespad=0.0)
