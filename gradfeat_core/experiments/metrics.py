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
