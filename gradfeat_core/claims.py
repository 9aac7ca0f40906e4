"""Verdicts on the paper's claims C1–C7 (../shared/paper/PAPER_NOTES.md) from a reproduction's
results. Each verdict is holds / partly / does not hold / not run, with the rule that decided
it and the numbers it was decided on. Thresholds are in accuracy points (%)."""
import pandas as pd

from .report import SOURCES, mean_std, step_costs

HOLDS, PARTLY, FAILS, NOT_RUN = "holds", "partly", "does not hold", "not run"


def _mean(frame, table, head, layers="conv5", sources=("pretrained",) * 3):
    rows = frame[(frame.table == table) & (frame["head"] == head) & (frame.layers == layers) &
                 (frame.status == "done")]
    for key, value in zip(SOURCES, sources):
        rows = rows[rows[key] == value]
    return rows.accuracy.mean() if len(rows) else None


def _grade(value, holds, partly):
    """holds when value >= holds, partly when >= partly, else does not hold."""
    return HOLDS if value >= holds else PARTLY if value >= partly else FAILS


def c1(frame, lin):
    grad, actv = _mean(frame, 3, "grad"), _mean(frame, 3, "actv")
    rule = "grad − actv at conv5 (Table 3): ≥ 3 points holds, > 0 partly (paper: +5 to +8)"
    if grad is None or actv is None:
        return NOT_RUN, rule, "Table 3 grad or actv missing"
    gain = grad - actv
    return _grade(gain, 3, 1e-9), rule, f"grad {grad:.2f} − actv {actv:.2f} = {gain:+.2f}"


def c2(frame, lin):
    full, ft = _mean(frame, 3, "full"), _mean(frame, 3, "finetune")
    rule = "finetune − full at conv5 (Table 3): ≤ 2 points holds, ≤ 4 partly (paper: 1.3)"
    if full is None or ft is None:
        return NOT_RUN, rule, "Table 3 full or finetune missing"
    gap = ft - full
    return _grade(-gap, -2, -4), rule, f"finetune {ft:.2f} − full {full:.2f} = {gap:+.2f}"


def c3(frame, lin):
    rule = ("Table 1, every depth: grad with any random source ≥ 5 points below grad with all "
            "pre-trained, and full with random θ1 ≤ actv baseline + 1; both hold: holds, one: partly")
    t = mean_std(frame[frame.table == 1], list(SOURCES) + ["layers", "head"])
    actv = _mean(frame, 1, "actv")
    pre = (t.theta1 == "pretrained") & (t.theta2 == "pretrained") & (t.omega == "pretrained")
    if actv is None or not pre.any() or pre.all():
        return NOT_RUN, rule, "Table 1 rows or its actv baseline missing"
    grad_gap, full_excess = [], []
    for layers, group in t.groupby("layers", sort=False):
        g = group[group["head"] == "grad"]
        best = g[pre.loc[g.index]].ours
        if len(best):
            grad_gap.append(best.iloc[0] - g[~pre.loc[g.index]].ours.max())
        f = group[(group["head"] == "full") & (group.theta1 == "random")]
        if len(f):
            full_excess.append(f.ours.max() - actv)
    grads = len(grad_gap) > 0 and min(grad_gap) >= 5
    fulls = len(full_excess) > 0 and max(full_excess) <= 1
    verdict = HOLDS if grads and fulls else PARTLY if grads or fulls else FAILS
    evidence = (f"smallest gap of grad (all pre-trained) over any random mix: {min(grad_gap):.2f}; "
                f"largest full with random θ1 − actv {actv:.2f}: {max(full_excess):+.2f}")
    return verdict, rule, evidence


def c4(frame, lin):
    rule = ("grad and full with all pre-trained (Table 1): the best deeper θ2 gains ≤ 1.5 points "
            "over conv5 holds, ≤ 3 partly")
    gains = []
    for head in ("grad", "full"):
        top = _mean(frame, 1, head, "conv5")
        deeper = [_mean(frame, 1, head, layers) for layers in ("conv4-5", "conv3-5")]
        deeper = [d for d in deeper if d is not None]
        if top is not None and deeper:
            gains.append((head, max(deeper) - top))
    if not gains:
        return NOT_RUN, rule, "Table 1 needs conv5 and a deeper θ2"
    worst = max(g for _, g in gains)
    return (_grade(-worst, -1.5, -3), rule,
            "; ".join(f"{head}: best deeper − conv5 = {g:+.2f}" for head, g in gains))


def c5(frame, lin):
    grad, full = _mean(frame, 3, "grad"), _mean(frame, 3, "full")
    rule = "|full − grad| at conv5 (Table 3): ≤ 1 point holds, ≤ 2 partly (paper: 0.37)"
    if grad is None or full is None:
        return NOT_RUN, rule, "Table 3 grad or full missing"
    gap = abs(full - grad)
    return _grade(-gap, -1, -2), rule, f"full {full:.2f}, grad {grad:.2f}: |gap| {gap:.2f}"


def c6(frame, lin):
    rule = ("time per training step of grad and full ÷ fine-tuning at the same depth and batch: "
            "≤ 3 at every depth holds (the same order), ≤ 10 partly")
    cost = step_costs(frame)
    ratios = [c for c in ("grad ÷ finetune", "full ÷ finetune") if c in cost]
    if not ratios:
        return NOT_RUN, rule, "no step times of both a linear head and fine-tuning"
    worst = cost[ratios].max().max()
    evidence = "; ".join(f"{r.layers} (batch {r.batch_size}): " +
                         ", ".join(f"{c} {r[c]:.2f}" for c in ratios if pd.notna(r[c]))
                         for _, r in cost.iterrows())
    return _grade(-worst, -3, -10), rule, evidence


def c7(frame, lin):
    rule = ("JVP = reverse-mode directional derivative (relative error ≤ 1e-4) and the gap between "
            "ĝ and the network shrinks ≥ 2.5× when the step halves (a second-order remainder); "
            "plus ĝ and the fine-tuned network predict the same class on ≥ 80% of test images: "
            "all holds, the first two only partly")
    if not lin:
        return NOT_RUN, rule, "03_linearization did not run"
    gaps = {row["eps"]: row["gap"] for row in lin["taylor"]}
    quadratic = gaps[0.25] > 0 and gaps[0.5] / gaps[0.25] >= 2.5
    exact = lin["jvp_relative_error"] <= 1e-4 and quadratic
    agree = lin["agreement_full_finetune"]
    evidence = (f"JVP relative error {lin['jvp_relative_error']:.1e}; Taylor gap at ε = 0.25, 0.5, 1: "
                + ", ".join(f"{gaps[e]:.3g}" for e in sorted(gaps))
                + f"; full and fine-tuned agree on {100 * agree:.1f}% of test images")
    return (HOLDS if exact and agree >= 0.8 else PARTLY if exact else FAILS), rule, evidence


CLAIMS = {
    "C1": ("gradient features from a pre-trained network beat the activation baseline", c1),
    "C2": ("the full model comes close to fine-tuning", c2),
    "C3": ("the gain comes from pre-training (random sources in the gradient term hurt)", c3),
    "C4": ("the topmost layer suffices; lower layers add little", c4),
    "C5": ("the gradient model alone is about as good as the full model", c5),
    "C6": ("training ĝ costs the same order as fine-tuning θ2", c6),
    "C7": ("ĝ is the first-order Taylor expansion of the network", c7),
}


def verdicts(frame, linearization=None):
    """A frame: claim, statement, verdict, rule, evidence."""
    rows = []
    for claim, (statement, judge) in CLAIMS.items():
        verdict, rule, evidence = judge(frame, linearization)
        rows.append({"claim": claim, "statement": statement, "verdict": verdict, "rule": rule,
                     "evidence": evidence})
    return pd.DataFrame(rows)
