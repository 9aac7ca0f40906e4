"""The report's figures (suite.figures), each on a small hand-made frame: what a reader must be
able to read off it."""
import itertools

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

from gradfeat_core.suite import figures  # noqa: E402
from gradfeat_core.suite.evidence import FAILS, HOLDS, INCONCLUSIVE  # noqa: E402


def titles_overlap(fig):
    """Pairs of (left) panel titles whose drawn boxes intersect."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for ax in fig.axes
             for t in (ax.title, ax._left_title) if t.get_text()]
    return [(a, b) for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2) if box_a.overlaps(box_b)]


def close(fig):
    import matplotlib.pyplot as plt
    plt.close(fig)


# --- the forest plot ----------------------------------------------------------------------------

def effects_rows():
    """report.effects' columns: C1 with a paper effect inside the axis and one far beyond it, a
    comparison the paper printed nothing for, and C5's one effect with two thresholds."""
    row = dict(above=True, role="rule")
    return pd.DataFrame([
        dict(row, claim="C1", label="grad − actv share", mean=0.5, low=0.4, high=0.6, threshold=0.3,
             unit="share", verdict=HOLDS, paper=0.55),
        dict(row, claim="C1", label="grad − actv share, random encoder", mean=0.2, low=0.1, high=0.3,
             threshold=0.3, unit="share", verdict=FAILS, paper=160.0),   # 16,000%: beyond the axis
        dict(row, claim="C3", label="prp − ppp", mean=1.0, low=-0.5, high=2.5, threshold=0.0,
             unit="points", verdict=INCONCLUSIVE, paper=None),
        dict(row, claim="C5", label="full − finetune", mean=-0.3, low=-0.6, high=0.0, threshold=-1.0,
             unit="points", verdict=HOLDS, paper=np.nan),
        dict(row, claim="C5", label="full − finetune", mean=-0.3, low=-0.6, high=0.0, threshold=1.0,
             unit="points", verdict=HOLDS, paper=np.nan),
    ])


def test_the_forest_plot_shows_every_paper_value_and_says_where_there_is_none():
    fig = figures.forest(effects_rows(), "accuracy")
    assert fig.get_figwidth() >= 12.5  # the page's width
    diamonds = [line for ax in fig.axes for line in ax.lines if line.get_marker() == "D"]
    assert len(diamonds) == 2  # the two paper values that exist, the one beyond the axis included
    c1 = fig.axes[0]
    lo, hi = c1.get_xlim()
    assert all(lo <= x <= hi for line in diamonds for x in line.get_xdata())
    assert any("16,000" in t.get_text() for t in c1.texts)  # its value written at the edge
    labels = [t.get_text() for ax in fig.axes for t in ax.get_yticklabels()]
    assert [lab.endswith("[paper: not printed]") for lab in labels] == [False, False, True, True]
    assert [ax.get_title(loc="left") for ax in fig.axes] == ["C1, %", "C3, accuracy points",
                                                               "C5, accuracy points"]
    assert min(t.get_fontsize() for ax in fig.axes for t in ax.get_yticklabels()) >= 9
    assert not titles_overlap(fig)
    close(fig)


# --- the ablation's heat maps -------------------------------------------------------------------

def test_both_heat_maps_share_one_colour_scale_and_a_colour_bar():
    ours = pd.DataFrame([[88.0, 75.0], [80.0, 86.0]], index=["ppp", "rrr"], columns=["conv5 grad", "conv5 full"])
    paper = pd.DataFrame([[70.0, 75.0, 62.0]], index=["ppp"], columns=["conv5 grad", "conv5 full", "conv4-5 grad"])
    fig = figures.ablation_heatmaps(ours, paper, 1, "BiGAN, CIFAR-10")
    maps = [ax.collections[0] for ax in fig.axes[:2]]
    assert {(m.norm.vmin, m.norm.vmax) for m in maps} == {(62.0, 88.0)}
    assert len(fig.axes) == 3 and "one scale" in fig.axes[2].get_ylabel()  # the colour bar
    # 75 has the same colour in ours (row 0, column 1) and in the paper's (column 1)
    assert np.allclose(maps[0].get_facecolors()[1], maps[1].get_facecolors()[1])
    assert not titles_overlap(fig)
    close(fig)


# --- training curves ----------------------------------------------------------------------------

def curves(bases, heads, sources=("ppp",), layers=("conv5",), seeds=(0, 1, 2), value="score"):
    """A validation_curves-like long frame: 3 points per (base, head, layers, source, seed)."""
    rows = [{"table": 3, "base": b, "head": h, "layers": lay, "source": s, "seed": seed, "iteration": it,
             value: 50.0 + 10 * k + seed + it / 100}
            for k, b in enumerate(bases) for h in heads for lay in layers for s in sources
            for seed in seeds for it in (0, 100, 200)]
    return pd.DataFrame(rows)


HEADS = ("actv", "grad", "full", "finetune")


def test_heads_curves_have_a_panel_per_base_and_head_and_titles_that_do_not_overlap():
    frame = curves(["supervised", "rotation-resnet18", "random"], HEADS)
    fig = figures.heads_curves(frame, 4, "mAP %", {"supervised": 60.0, "rotation-resnet18": None, "random": 52.0})
    assert len(fig.axes) == 3 * 4
    assert fig.axes[5].get_title(loc="left") == "rotation-resnet18 · grad"
    assert len([line for line in fig.axes[5].lines if line.get_linestyle() == "-"]) == 3  # a line per seed
    assert not titles_overlap(fig)
    close(fig)


def test_ablation_curves_have_one_panel_per_row_of_the_ablation():
    sources = ["ppp", "ppr", "prp", "prr", "rpp", "rpr", "rrp", "rrr"]
    frame = pd.concat([curves(["ali"], ["full"], sources=sources),
                       curves(["ali"], ["grad"], sources=["ppp"], layers=["conv4-5"])])
    fig = figures.ablation_curves(frame, 1, "accuracy %", 70.0)
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert titles == [f"conv5 full · {s}" for s in sources] + ["conv4-5 grad · ppp"]
    assert all(len([line for line in ax.lines if line.get_linestyle() == "-"]) == 1 for ax in fig.axes)
    assert not titles_overlap(fig)
    close(fig)


def test_each_loss_band_is_one_encoder():
    frame = curves(["rotation", "random"], ["actv", "grad"], value="loss")
    fig = figures.loss_curves(frame, 3, "cross-entropy")
    assert len(fig.axes) == 2
    for ax, head in zip(fig.axes, ["actv", "grad"]):
        lines = ax.get_lines()
        assert [line.get_label() for line in lines] == ["rotation", "random"]
        for line in lines:  # the mean over that encoder's seeds alone
            own = frame[(frame["head"] == head) & (frame.base == line.get_label())]
            assert line.get_ydata() == pytest.approx(own.groupby("iteration").loss.mean().to_numpy())
        assert len(ax.collections) == 2  # a shaded range per encoder
    assert not titles_overlap(fig)
    close(fig)


def test_heads_dots_put_each_base_network_beside_the_others():
    dots = pd.DataFrame([{"base": b, "head": h, "layers": "conv5", "score": 80.0 + k, "low": 79.0 + k,
                          "high": 81.0 + k, "test_images": 100} for k, b in enumerate(["rotation", "random"])
                         for h in HEADS])
    fig = figures.heads_dots(dots, 3, "accuracy %")
    ax = fig.axes[0]
    assert len(ax.containers) == 2 and [t.get_text() for t in ax.get_legend().get_texts()] == ["rotation", "random"]
    xs = [list(c.lines[0].get_xdata()) for c in ax.containers]
    assert xs[0][0] < 0 < xs[1][0]  # beside each other at the first head
    assert figures.png(fig)[:4] == b"\x89PNG"
