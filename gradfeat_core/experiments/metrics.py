"""Multi-label evaluation: average precision per class and its mean (mAP), as VOC07 and COCO
classification report it (Tables 2 and 4).

Two definitions are in use, and the paper does not say which it reports:
- `voc07`: the VOC2007 devkit's 11-point AP, the mean over recall levels t = 0, 0.1, ..., 1 of
  the highest precision at a recall ≥ t (0 where none);
- `area`: the area under the interpolated precision-recall curve (precision at each recall made
  the highest precision at that recall or beyond), the VOC2010+ devkit's, which Goyal et al.'s
  (2019) benchmark and VISSL use for VOC07 classification.

Labels are per image and class, 1 present and 0 absent; `ignore` marks the (image, class) pairs
left out, VOC's "difficult" ones (ImageSets/Main/<class>_<split>.txt says 1 present, -1 absent,
0 difficult): they count neither as positives nor as negatives. Scores that tie are taken
together, as one threshold (as scikit-learn does), so that AP does not depend on the order of
tied images.
"""
import numpy as np

DEFINITIONS = ("voc07", "area")


def precision_recall(scores, positive):
    """(precision, recall) at each distinct score threshold, highest score first."""
    scores, positive = np.asarray(scores, float), np.asarray(positive, bool)
    order = np.argsort(-scores, kind="stable")
    scores, positive = scores[order], positive[order]
    last = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]  # the last index of each tie
    tp = np.cumsum(positive)[last]
    fp = (last + 1) - tp
    return tp / (tp + fp), tp / max(positive.sum(), 1)


def average_precision(scores, positive, definition="area", ignore=None):
    """AP of one class: scores (N,), positive (N,) booleans, ignore (N,) booleans or None
    (VOC's difficult pairs, left out). NaN when the class has no positive to find."""
    if definition not in DEFINITIONS:
        raise ValueError(f"AP definition {definition!r} is not one of {', '.join(DEFINITIONS)}")
    scores, positive = np.asarray(scores, float), np.asarray(positive, bool)
    if ignore is not None:
        keep = ~np.asarray(ignore, bool)
        scores, positive = scores[keep], positive[keep]
    if not positive.any():
        return float("nan")
    precision, recall = precision_recall(scores, positive)
    if definition == "voc07":
        return float(np.mean([precision[recall >= t].max() if (recall >= t).any() else 0.0
                              for t in np.linspace(0, 1, 11)]))
    best_beyond = np.maximum.accumulate(precision[::-1])[::-1]  # the interpolated precision
    steps = np.diff(np.r_[0.0, recall])
    return float(np.sum(steps * best_beyond))


def mean_average_precision(scores, labels, definition="area", ignore=None):
    """(mAP, AP per class): scores and labels (N, C), labels 1 present / 0 absent, ignore (N, C)
    booleans or None. A class without a positive is left out of the mean (its AP is NaN)."""
    scores, labels = np.asarray(scores, float), np.asarray(labels)
    if scores.shape != labels.shape or scores.ndim != 2:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} must both be (images, classes)")
    ignore = np.zeros(labels.shape, bool) if ignore is None else np.asarray(ignore, bool)
    per_class = np.array([average_precision(scores[:, c], labels[:, c] == 1, definition, ignore[:, c])
                          for c in range(labels.shape[1])])
    return float(np.nanmean(per_class)) if np.isfinite(per_class).any() else float("nan"), per_class


def paired_se(differences):
    """Standard error of the mean of per-unit differences between two evaluations on the same
    units, sd(d, ddof=1) / √n: per item (a difference of correctness) or per jackknife group (a
    difference of pseudo-values, whose mean has the jackknife's variance). 0 for fewer than 2."""
    d = np.asarray(differences, float)
    return float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else 0.0


JACKKNIFE_GROUPS = 50  # groups of test images a multi-label run's mAP pseudo-values are over


def jackknife_groups(n, groups=JACKKNIFE_GROUPS, seed=0):
    """The group of each of n test images (an (n,) int array): a seeded random partition into
    `groups` groups of equal size (±1), the same for every run on the same test set, so that
    two runs' pseudo-values pair group by group."""
    groups = min(groups, n)
    order = np.random.default_rng(seed).permutation(n)
    group = np.empty(n, int)
    group[order] = np.arange(n) % groups
    return group


def pseudo_values(statistic, group):
    """Delete-a-group jackknife pseudo-values of statistic(indices) → float over the images
    0..n-1 partitioned by `group`: ψ_g = G·θ − (G − 1)·θ_(−g), θ_(−g) the statistic without group
    g. Their mean estimates θ (bias-corrected) and var(ψ, ddof=1)/G is the jackknife variance of
    θ: the same form as a mean over images, so an interval built for per-image correctness takes
    them unchanged (for a mean of equal groups ψ_g is the mean of group g exactly)."""
    group = np.asarray(group)
    everything = np.arange(len(group))
    labels = np.unique(group)
    whole = statistic(everything)
    return np.array([len(labels) * whole - (len(labels) - 1) * statistic(everything[group != g])
                     for g in labels])


def map_pseudo_values(scores, labels, definition="area", ignore=None, groups=JACKKNIFE_GROUPS, seed=0):
    """Jackknife pseudo-values of mAP (mean_average_precision's first value) over `groups`
    groups of test images (jackknife_groups): what a multi-label run records of its test sample
    for the interval of an effect (suite/evidence.py)."""
    scores, labels = np.asarray(scores, float), np.asarray(labels)
    ignore = None if ignore is None else np.asarray(ignore, bool)
    group = jackknife_groups(len(labels), groups, seed)

    def mean_ap(idx):
        return mean_average_precision(scores[idx], labels[idx], definition,
                                      None if ignore is None else ignore[idx])[0]
    return pseudo_values(mean_ap, group)
