"""Average precision and mAP (experiments/metrics.py) against hand-computed cases and against
scikit-learn: its precision-recall curve, interpolated here independently, and its
average_precision_score where the definitions coincide."""
import numpy as np
import pytest
from sklearn.metrics import average_precision_score, precision_recall_curve

from gradfeat_core.experiments.metrics import average_precision, mean_average_precision


def test_hand_computed_cases():
    # P = 1, 1/2, 2/3, 2/4, 2/5 at R = .5, .5, 1, 1, 1
    scores, positive = [0.9, 0.8, 0.7, 0.6, 0.5], [1, 0, 1, 0, 0]
    assert average_precision(scores, positive, "area") == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert average_precision(scores, positive, "voc07") == pytest.approx((6 + 5 * 2 / 3) / 11)
    # a negative first: the interpolated precision at R = .5 is 2/3, not 1/2
    scores, positive = [0.9, 0.8, 0.7], [0, 1, 1]
    assert average_precision(scores, positive, "area") == pytest.approx(2 / 3)
    assert average_precision_score(positive, scores) == pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)
    assert average_precision(scores, positive, "voc07") == pytest.approx(2 / 3)
    # ties count as one threshold: a tied positive and negative on top give P = 1/2 at R = 1
    assert average_precision([0.5, 0.5], [1, 0], "area") == pytest.approx(0.5)
    assert average_precision([0.5, 0.5], [0, 1], "area") == pytest.approx(0.5)
    assert np.isnan(average_precision([0.3, 0.2], [0, 0]))


def reference(scores, positive, definition):
    """The same definitions from scikit-learn's precision-recall points."""
    precision, recall, _ = precision_recall_curve(positive, scores)  # recall decreasing, (1, 0) last
    precision, recall = precision[:-1][::-1], recall[:-1][::-1]      # highest threshold first
    if definition == "voc07":
        return np.mean([precision[recall >= t].max() if (recall >= t).any() else 0 for t in np.arange(11) / 10])
    envelope = [precision[i:].max() for i in range(len(precision))]
    return float(np.sum(np.diff(np.r_[0, recall]) * envelope))


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("definition", ["area", "voc07"])
def test_against_scikit_learns_precision_recall_curve(seed, definition):
    rng = np.random.default_rng(seed)
    n = rng.integers(5, 300)
    positive = rng.random(n) < rng.uniform(0.05, 0.6)
    positive[0] = True
    scores = np.round(rng.normal(positive * rng.uniform(0, 2), 1), 1)  # rounded: ties happen
    assert average_precision(scores, positive, definition) == pytest.approx(reference(scores, positive, definition))
    if definition == "area":   # interpolation never lowers a precision
        assert average_precision(scores, positive, "area") >= average_precision_score(positive, scores) - 1e-12


def test_where_the_curve_never_rises_interpolation_changes_nothing_and_scikit_learn_agrees():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = rng.integers(10, 100)
        positive = np.sort(rng.random(n) < 0.3)[::-1]   # every positive above every negative
        scores = np.linspace(1, 0, n)
        assert average_precision(scores, positive) == pytest.approx(average_precision_score(positive, scores)) == 1.0
        # a single positive somewhere: P = 1/rank there, the same under every definition of the area
        one = np.zeros(n, bool)
        one[rng.integers(n)] = True
        assert average_precision(scores, one) == pytest.approx(average_precision_score(one, scores))


def test_ignored_pairs_count_neither_way_and_the_mean_leaves_out_classes_without_positives():
    rng = np.random.default_rng(1)
    scores = rng.random((50, 3))
    labels = (rng.random((50, 3)) < 0.4).astype(int)
    labels[:, 2] = 0
    ignore = rng.random((50, 3)) < 0.2
    m, per_class = mean_average_precision(scores, labels, "area", ignore)
    keep = ~ignore[:, 0]
    assert per_class[0] == pytest.approx(average_precision(scores[keep, 0], labels[keep, 0]))
    assert np.isnan(per_class[2]) and m == pytest.approx(per_class[:2].mean())
    with pytest.raises(ValueError, match=r"must both be \(images, classes\)"):
        mean_average_precision(scores, labels[:, :2])
    with pytest.raises(ValueError, match="not one of voc07, area"):
        average_precision(scores[:, 0], labels[:, 0], "voc12")


def test_jackknife_of_a_mean_is_the_group_means():
    """For a mean over images and equal groups ψ_g = G·θ − (G − 1)·θ_(−g) is group g's mean, by
    hand: so pseudo-values take the place of per-image values in an interval exactly."""
    from gradfeat_core.experiments.metrics import jackknife_groups, pseudo_values
    x = np.random.default_rng(0).normal(size=120)
    group = jackknife_groups(120, 12, seed=3)
    assert np.bincount(group).tolist() == [10] * 12
    psi = pseudo_values(lambda idx: x[idx].mean(), group)
    assert psi == pytest.approx([x[group == g].mean() for g in range(12)])
    assert (jackknife_groups(120, 12, seed=3) == group).all()  # the same partition for every run


def test_map_pseudo_values_against_leaving_each_group_out_and_a_bootstrap():
    from gradfeat_core.experiments.metrics import jackknife_groups, map_pseudo_values
    rng = np.random.default_rng(1)
    n, c = 600, 5
    labels = (rng.random((n, c)) < 0.3).astype(int)
    scores = labels * rng.normal(1.0, 1.0, (n, c)) + rng.normal(0, 1.0, (n, c))
    psi = map_pseudo_values(scores, labels, "area", groups=20, seed=0)
    group = jackknife_groups(n, 20, 0)
    whole = np.mean([reference(scores[:, k], labels[:, k], "area") for k in range(c)])
    for g in (0, 7, 19):  # the definition, with scikit-learn's curve as the AP
        keep = group != g
        left = np.mean([reference(scores[keep, k], labels[keep, k], "area") for k in range(c)])
        assert psi[g] == pytest.approx(20 * whole - 19 * left)
    jackknife_se = psi.std(ddof=1) / np.sqrt(len(psi))
    boot = [mean_average_precision(scores[i], labels[i])[0]
            for i in (rng.integers(0, n, n) for _ in range(300))]
    assert jackknife_se == pytest.approx(np.std(boot), rel=0.3)
    assert psi.mean() == pytest.approx(whole, abs=0.01)
