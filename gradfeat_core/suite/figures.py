"""Every figure the report shows, one function each: frames in, a matplotlib Figure out (nothing
read from files, nothing displayed). The report's notebook shows them through suite.render.

All of them are drawn at the page's width (PAGE_WIDTH inches at the report's dpi) with
constrained layout, so that titles, tick labels and colour bars never overlap."""
import io

import numpy as np
import pandas as pd

from .evidence import FAILS, HOLDS, INCONCLUSIVE
from ..experiments.pretrain import loss_figure as pretraining_losses  # noqa: F401  (the base network's)
from ..experiments.quality import figure as probe_curves  # noqa: F401  (the base network's feature-quality curve)

PAGE_WIDTH = 13.0   # inches: the report's page at DPI
DPI = 90
VERDICT_COLOURS = {HOLDS: "#2e7d32", FAILS: "#c62828", INCONCLUSIVE: "#b8860b"}


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def png(fig):
    """A Figure (or a seaborn grid) as PNG bytes at the report's dpi; the figure is closed."""
    plt = _plt()
    fig = getattr(fig, "figure", fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


# --- claims -------------------------------------------------------------------------------------

FOREST_UNITS = {"share": "%", "points": "{score} points", "×": "ratio of step times"}


def forest(table, score="accuracy"):
    """A forest plot per claim and unit of report.effects rows: each comparison's mean and 95%
    interval coloured by its verdict, the rule's threshold dashed, the paper's effect for the same
    comparison as an open diamond. A paper effect beyond the axis is drawn at the axis's edge with
    its value written beside it; a comparison the paper printed no cells for says so in its label."""
    plt = _plt()
    panels = list(dict.fromkeys(zip(table.claim, table.unit)))
    sizes = [table[(table.claim == c) & (table.unit == u)].label.nunique() for c, u in panels]
    heights = [0.42 * n + 0.8 for n in sizes]
    fig, axes = plt.subplots(len(panels), 1, figsize=(PAGE_WIDTH, sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights}, layout="constrained")
    for ax, (claim, unit) in zip(axes[:, 0], panels):
        group = table[(table.claim == claim) & (table.unit == unit)]
        _forest_panel(ax, group, 100 if unit == "share" else 1)
        ax.set_title(f"{claim}, {FOREST_UNITS[unit].format(score=score)}", loc="left", fontsize=11)
    return fig


def _forest_panel(ax, group, scale):
    """One claim's comparisons (C5: one effect, two thresholds: one row, two dashes)."""
    rows = group.drop_duplicates("label").reset_index(drop=True)
    for y, r in rows.iterrows():
        ax.errorbar(r["mean"] * scale, y, fmt="o", color=VERDICT_COLOURS.get(r.verdict, "grey"), capsize=3,
                    xerr=[[(r["mean"] - r.low) * scale], [(r.high - r["mean"]) * scale]])
        for threshold in group[group.label == r.label].threshold:
            ax.plot([threshold * scale] * 2, [y - 0.4, y + 0.4], ls="--", c="black", lw=1)
    lo, hi = ax.get_xlim()  # our intervals set the axis; a paper share of a tiny gain can be 16,000%
    for y, r in rows.iterrows():
        if not has_paper(r.paper):
            continue
        value = r.paper * scale
        shown = min(max(value, lo), hi)
        ax.plot(shown, y, marker="D", mfc="none", mec="black", ls="none", ms=8)
        if shown != value:  # beyond the axis: at its edge, the value written beside it
            number = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}"
            ax.annotate(f"paper {number} {'→' if value > hi else '←'}", (shown, y), fontsize=9,
                        xytext=(-8 if value > hi else 8, 8), textcoords="offset points",
                        ha="right" if value > hi else "left")
    ax.set_xlim(lo, hi)
    ax.set_yticks(range(len(rows)), [r.label + (" (precondition)" if r.role == "precondition" else "")
                                     + ("" if has_paper(r.paper) else "  [paper: not printed]")
                                     for _, r in rows.iterrows()], fontsize=10)
    ax.tick_params(axis="x", labelsize=10)
    ax.set_ylim(len(rows) - 0.5, -0.5)


def has_paper(value):
    """Whether a paper effect exists (printed cells give it): not None, not NaN."""
    return value is not None and not pd.isna(value)


# --- the heads' table ---------------------------------------------------------------------------

def heads_dots(dots, table, unit):
    """Dot-and-interval plot of report.heads_intervals rows: each head's mean test score and its
    95% interval, one colour per base network, beside each other at each head."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 3.8), layout="constrained")
    names = list(dict.fromkeys(dots["head"]))
    bases = dots.groupby("base", sort=False)
    for k, (encoder, rows) in enumerate(bases):
        x = [names.index(h) + 0.15 * (k - (len(bases) - 1) / 2) for h in rows["head"]]
        ax.errorbar(x, rows.score, yerr=[rows.score - rows.low, rows.high - rows.score],
                    fmt="o", capsize=3, label=encoder)
    ax.set_xticks(range(len(names)), names)
    ax.set(xlabel="head (top layer)", ylabel=f"test {unit}")
    ax.set_title(f"Table {table}: mean and 95% interval (seeds and test sample)", loc="left")
    ax.legend(title="base network", loc="upper left", bbox_to_anchor=(1.02, 1))
    return fig


# --- the ablation -------------------------------------------------------------------------------

def ablation_heatmaps(ours, paper, table, paper_source):
    """Heat maps of the ablation (report.coded frames: a row per θ1θ2ω code, a column per depth
    and head), ours beside the paper's, on ONE colour scale with its colour bar: a colour means
    the same score in both."""
    import seaborn as sns
    from matplotlib.colors import Normalize
    plt = _plt()
    values = np.concatenate([ours.to_numpy(float).ravel(), paper.to_numpy(float).ravel()])
    norm = Normalize(np.nanmin(values), np.nanmax(values))
    fig, axes = plt.subplots(1, 2, figsize=(PAGE_WIDTH, 4.6), layout="constrained",
                             gridspec_kw={"width_ratios": [ours.shape[1], paper.shape[1]]})
    for ax, shown, title in ((axes[0], ours, "ours (mean over seeds)"), (axes[1], paper, f"the paper ({paper_source})")):
        sns.heatmap(shown, annot=True, fmt=".1f", cmap="viridis", ax=ax, cbar=False, vmin=norm.vmin, vmax=norm.vmax)
        ax.grid(False)
        ax.set(xlabel="θ2 depth and head", ylabel="θ1 θ2 ω")
        ax.tick_params(axis="y", rotation=0)
        ax.tick_params(axis="x", rotation=30)
        ax.set_title(f"Table {table}: {title}", loc="left")
    fig.colorbar(axes[0].collections[0], ax=list(axes), label="test score (one scale for both)")
    return fig


# --- training curves ----------------------------------------------------------------------------

def _grid(n_rows, n_cols, width=PAGE_WIDTH, height=2.3):
    plt = _plt()
    return plt.subplots(n_rows, n_cols, figsize=(width, height * n_rows), squeeze=False, layout="constrained")


def heads_curves(curves, table, unit, levels):
    """Validation curves of the heads' table (report.validation_curves rows of it): a panel per
    (base network, head), one line per seed, the activation baseline's best (`levels`: base →
    level or None) dashed."""
    bases, heads = list(dict.fromkeys(curves.base)), list(dict.fromkeys(curves["head"]))
    fig, axes = _grid(len(bases), len(heads))
    for (i, base), (j, head) in ((b, h) for b in enumerate(bases) for h in enumerate(heads)):
        ax, panel = axes[i, j], curves[(curves.base == base) & (curves["head"] == head)]
        for seed, runs in panel.groupby("seed"):
            ax.plot(runs.iteration, runs.score, label=f"seed {seed}", lw=1)
        if levels.get(base) is not None:
            ax.axhline(levels[base], ls="--", c="grey")
        ax.set_title(f"{base} · {head}", loc="left", fontsize=10)
        ax.set(xlabel="iteration", ylabel=f"validation {unit}" if j == 0 else "")
    axes[0, -1].legend(loc="lower right", fontsize=8)
    fig.suptitle(f"Table {table}: validation score from iteration 0, a panel per base network and head")
    return fig


def ablation_curves(curves, table, unit, level):
    """Validation curves of the ablation: a row of panels per depth and head, a panel per
    (θ1, θ2, ω) source in it (its mean over seeds, the seeds' range shaded); the activation
    baseline's best (`level`, or None) dashed. Panels without runs are left out."""
    rows = list(dict.fromkeys(curves.layers + " " + curves["head"]))
    sources = list(dict.fromkeys(curves.source))
    fig, axes = _grid(len(rows), len(sources), height=2.0)
    for i, row in enumerate(rows):
        in_row = curves[curves.layers + " " + curves["head"] == row]
        present = [s for s in sources if (in_row.source == s).any()]  # packed from the left
        for j, ax in enumerate(axes[i]):
            if j >= len(present):
                ax.remove()
                continue
            _band(ax, in_row[in_row.source == present[j]], "score")
            if level is not None:
                ax.axhline(level, ls="--", c="grey")
            ax.set_title(f"{row} · {present[j]}", loc="left", fontsize=10)
            ax.set(xlabel="iteration", ylabel=f"validation {unit}" if j == 0 else "")
    fig.suptitle(f"Table {table}: validation score, a panel per depth, head and (θ1, θ2, ω) source "
                 "(mean over seeds, their range shaded)")
    return fig


def _band(ax, runs, value, **style):
    """The mean over seeds of `value` against iteration, the seeds' range shaded; its line."""
    style = {"color": "C0", **style}
    by = runs.groupby("iteration")[value]
    mean = by.mean()
    ax.fill_between(mean.index, by.min(), by.max(), alpha=0.25, color=style["color"])
    return ax.plot(mean.index, mean.to_numpy(), **style)[0]


def loss_curves(curves, table, loss):
    """The heads' training loss (results.loss_curves rows with their base network): a panel per
    head, one band per base network (its mean over seeds, the seeds' range shaded): each band
    one encoder."""
    heads = list(dict.fromkeys(curves["head"]))
    fig, axes = _grid(1, len(heads), height=2.8)
    for ax, head in zip(axes[0], heads):
        for k, (base, runs) in enumerate(curves[curves["head"] == head].groupby("base", sort=False)):
            _band(ax, runs, "loss", color=f"C{k}", label=base)
        ax.set_title(head, loc="left", fontsize=10)
        ax.set(xlabel="iteration", ylabel=f"training loss ({loss})" if ax is axes[0, 0] else "")
    axes[0, -1].legend(title="base network", fontsize=8)
    fig.suptitle(f"Table {table}: training loss, one band per base network (mean over seeds, range shaded)")
    return fig
