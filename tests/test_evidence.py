"""Intervals that cover the seeds and the test sample (suite/evidence.py): the packed per-image
record round-trips; the widened interval matches a bootstrap over test images and covers the
population effect about 95% of the time in a simulation where seeds alone would not."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from gradfeat_core.experiments.results import pack_correct, unpack_correct
from gradfeat_core.suite.evidence import Cell, contrast, converged, share

ACTV, GRAD, FT = Cell(3, "actv"), Cell(3, "grad"), Cell(3, "finetune")


@pytest.mark.parametrize("n", [1, 7, 8, 9, 10_000])
def test_the_per_image_record_round_trips(n):
    correct = np.random.default_rng(n).random(n) < 0.8
    text = pack_correct(correct)
    assert isinstance(text, str) and np.array_equal(unpack_correct(text, n), correct)
    with pytest.raises(ValueError, match="n_test"):
        unpack_correct(text, n + 8)


def frame(correct):
    """A results frame from {Cell: (seeds × images) booleans}."""
    rows = [{"table": c.table, "head": c.head, "layers": c.layers, "theta1": "pretrained",
             "theta2": "pretrained", "omega": "pretrained", "status": "done", "seed": s,
             "accuracy": 100 * m[s].mean(), "n_test": m.shape[1], "test_correct": pack_correct(m[s])}
            for c, m in correct.items() for s in range(len(m))]
    return converged(pd.DataFrame(rows))


THRESHOLDS = {ACTV: -1.4, GRAD: -1.6, FT: -1.7}   # ~85%, ~88%, ~90% right
SD = {"image": 1.0, "head": 0.5, "seed": 0.15}


def simulate(rng, n_images, seeds=3):
    """A head of one seed gets image i right when u_i + v_ci + w_csi clears the head's threshold:
    u, the image's ease (shared by every head), v, the head's own take on it, w, the seed's, so
    that the runs of one seed and the seeds of one head mostly agree on which images they miss,
    as trained networks do. The population's effect in closed form: normal tails."""
    u = rng.normal(0, SD["image"], n_images)
    correct = {}
    for c, t in THRESHOLDS.items():
        v = rng.normal(0, SD["head"], n_images)
        correct[c] = np.array([u + v + rng.normal(0, SD["seed"], n_images) > t for _ in range(seeds)])
    return correct


def population(cell):
    return 100 * stats.norm.sf(THRESHOLDS[cell] / np.sqrt(sum(s ** 2 for s in SD.values())))


def test_the_interval_adds_the_test_samples_variance_as_a_bootstrap_over_images_gives_it():
    rng = np.random.default_rng(0)
    correct = simulate(rng, 4000)
    f = frame(correct)
    e = contrast(f, "d", {GRAD: 1, ACTV: -1})
    d = 100 * (correct[GRAD].mean(0) - correct[ACTV].mean(0))   # per image, over the seeds
    per_seed = 100 * (correct[GRAD].mean(1) - correct[ACTV].mean(1))
    boot = [d[rng.integers(0, len(d), len(d))].mean() for _ in range(2000)]
    se_boot = np.sqrt(np.var(boot) + per_seed.var(ddof=1) / 3)
    assert e.test_images == 4000 and e.mean == pytest.approx(per_seed.mean())
    assert (e.high - e.low) / 2 / stats.t.ppf(0.975, e.df) == pytest.approx(se_boot, rel=0.08)
    without = contrast(f.drop(columns=["test_correct"]), "d", {GRAD: 1, ACTV: -1})
    assert without.test_images is None and (without.high - without.low) < (e.high - e.low) / 2

    s = share(f, "s", {GRAD: 1, ACTV: -1}, {FT: 1, ACTV: -1})
    num = correct[GRAD].mean(0) - correct[ACTV].mean(0)
    den = correct[FT].mean(0) - correct[ACTV].mean(0)
    idx = [rng.integers(0, len(num), len(num)) for _ in range(2000)]
    ratios = [num[i].mean() / den[i].mean() for i in idx]
    per_seed = (correct[GRAD].mean(1) - correct[ACTV].mean(1)) / (correct[FT].mean(1) - correct[ACTV].mean(1))
    se_boot = np.sqrt(np.var(ratios) + per_seed.var(ddof=1) / 3)
    assert s.test_images == 4000
    assert (s.high - s.low) / 2 / stats.t.ppf(0.975, s.df) == pytest.approx(se_boot, rel=0.08)


@pytest.mark.parametrize("seed_sd,head_sd,n_images,seeds_only_below", [
    (0.15, 0.5, 1000, 0.85),   # the test sample dominates: seeds alone miss it
    (0.6, 0.2, 2000, 1.01),    # the seeds dominate: both cover, the widened one no less
])
def test_the_widened_interval_covers_the_population_effect_where_seeds_alone_may_not(
        monkeypatch, seed_sd, head_sd, n_images, seeds_only_below):
    """The test images are a sample of a population: the effect a claim is about is the
    population's, not this sample's. Where the seeds dominate, the widened interval can be
    narrower than the seeds' own (its degrees of freedom rise above S − 1, the test term being
    estimated from many images) and still covers at least as often."""
    monkeypatch.setitem(SD, "seed", seed_sd)
    monkeypatch.setitem(SD, "head", head_sd)
    rng = np.random.default_rng(1)
    truth = population(GRAD) - population(ACTV)
    hits, seeds_only = [], []
    for _ in range(150):
        f = frame(simulate(rng, n_images))
        e = contrast(f, "d", {GRAD: 1, ACTV: -1})
        o = contrast(f.drop(columns=["test_correct"]), "d", {GRAD: 1, ACTV: -1})
        hits.append(e.low <= truth <= e.high)
        seeds_only.append(o.low <= truth <= o.high)
    assert 0.93 <= np.mean(hits) and np.mean(hits) >= np.mean(seeds_only)
    assert np.mean(seeds_only) < seeds_only_below


def test_the_report_says_what_its_intervals_cover():
    from gradfeat_core.suite.claims import verdicts
    from gradfeat_core.suite.report import interval_method
    correct = simulate(np.random.default_rng(2), 500)
    correct[Cell(3, "full")] = correct.pop(FT) | correct[ACTV]  # any fourth head
    correct[FT] = correct[Cell(3, "full")]
    with_images = verdicts(frame(correct))
    c1 = with_images.set_index("claim").loc["C1"]
    assert c1.test_images == 500 and c1.seeds == 3
    assert "covers the seeds and the test sample" in interval_method(with_images)
    assert "N = 500 images" in interval_method(with_images)
    seeds_alone = verdicts(frame(correct).drop(columns=["test_correct"]))
    assert seeds_alone.test_images.isna().all()
    assert "over the seeds alone" in interval_method(seeds_alone)


def test_a_ratio_is_the_geometric_mean_with_the_interval_of_its_logs():
    """Step-time ratios (C6): on the log scale, so that the interval stays positive however
    noisy the seeds, by hand."""
    from gradfeat_core.suite.evidence import ratio
    ms = {GRAD: [1.0, 0.5, 4.0], FT: [4.0, 4.0, 4.0]}
    rows = [{"table": 3, "head": c.head, "layers": "conv5", "theta1": "pretrained", "theta2": "pretrained",
             "omega": "pretrained", "status": "done", "seed": s, "ms_per_step": t}
            for c, times in ms.items() for s, t in enumerate(times)]
    e = ratio(pd.DataFrame(rows), "r", GRAD, FT)
    logs = np.log([0.25, 0.125, 1.0])
    half = stats.t.ppf(0.975, 2) * logs.std(ddof=1) / np.sqrt(3)
    assert (e.mean, e.low, e.high) == pytest.approx(tuple(np.exp([logs.mean(), logs.mean() - half, logs.mean() + half])))
    assert e.low > 0 and e.unit == "×" and e.seeds == 3


def test_a_map_effect_is_widened_by_the_jackknife_groups_at_the_welch_satterthwaite_df():
    """Tables 2 and 4 report mAP: an effect reads mean_ap and, for the test sample, the runs'
    jackknife pseudo-values per group of images (paired by group); the interval is the one of
    the module docstring with G groups in place of N images, by hand, and the degrees of freedom
    count the groups' G − 1."""
    from gradfeat_core.experiments.results import pack_values
    rng = np.random.default_rng(0)
    G, S = 50, 3
    psi = {c: 60 + 5 * k + rng.normal(0, 8, (S, G)) for k, c in enumerate((Cell(4, "actv", "block8"),
                                                                           Cell(4, "grad", "block8")))}
    rows = [{"table": 4, "head": c.head, "layers": c.layers, "theta1": "pretrained",
             "theta2": "pretrained", "omega": "pretrained", "status": "done", "seed": s,
             "mean_ap": p[s].mean() + rng.normal(0, 0.3), "n_test": 3346,
             "test_jackknife": pack_values(p[s]), "accuracy": None}
            for c, p in psi.items() for s in range(S)]
    f = converged(pd.DataFrame(rows))
    actv, grad = psi
    effect = contrast(f, "grad − actv", {grad: 1, actv: -1})
    per_seed = f[f["head"] == "grad"].mean_ap.to_numpy() - f[f["head"] == "actv"].mean_ap.to_numpy()
    d = (psi[grad] - psi[actv]).astype(np.float32).astype(float).mean(0)
    seeds_var, test_var = per_seed.var(ddof=1) / S, d.var(ddof=1) / G
    df = (seeds_var + test_var) ** 2 / (seeds_var ** 2 / (S - 1) + test_var ** 2 / (G - 1))
    half = stats.t.ppf(0.975, df) * np.sqrt(seeds_var + test_var)
    assert effect.mean == pytest.approx(per_seed.mean())
    assert (effect.low, effect.high) == pytest.approx((per_seed.mean() - half, per_seed.mean() + half))
    assert effect.df == pytest.approx(df) and effect.test_images == 3346
    with pytest.raises(ValueError, match="different metrics"):
        contrast(f, "mixed", {grad: 1, ACTV: -1})
