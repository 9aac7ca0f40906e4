"""Effects with 95% intervals, and how an interval against a threshold becomes a verdict.

An *effect* is a comparison made inside one set of runs (grad − actv, full ÷ finetune, ...). Runs
are paired by seed (the same seed is the same data order and the same ω̄), so the effect is
computed seed by seed: what all heads of one seed share cancels. Every seed tests on the same
images, so the seeds' spread leaves out the test sample's own error; where the runs recorded
which test images they got right (RunResult.test_correct) the interval adds it, paired by image:
SE² = s²/S + Var_i(d_i)/N, with s the per-seed effects' standard deviation over S seeds and d_i
image i's effect averaged over the seeds (N images; a ratio's by the delta method), and its
Student-t quantile at the Welch–Satterthwaite degrees of freedom, (S − 1)·SE⁴/(s²/S)². Counting
image i's seed-to-seed noise in both terms makes it slightly conservative. The paper's tables
are single numbers; a frame built from them carries an
`accuracy_sd` column (an assumed spread per printed number, see claims.paper_frame), and then
the interval is the normal one for a linear combination of independent numbers of that spread.

A *share* (part ÷ whole: the share of fine-tuning's gain over actv that grad recovers) means
what its claim says only where its parts have the signs the claim presumes: a whole clearly
above 0 and a part not clearly below it. Where the part is clearly negative the share's rule is
judged on the part itself (its sign decides: Effect.basis says so); where the whole is not
clearly positive there is no share (inconclusive, with the reason).

A *comparison* is an effect against a threshold: it holds when the whole interval lies on the
holding side, does not hold when the whole interval lies on the other side, and is inconclusive
otherwise (or when the effect could not be measured: too few seeds; or a run is at its cap or
never trained, which the effect names). A claim of several comparisons holds when all hold, does
not hold when none holds and one fails, holds in part when some hold and some fail, and is
inconclusive otherwise (combine).
"""
import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..experiments.results import AT_CAP, CONVERGED, NEVER_TRAINED, unpack_correct, unpack_values
from .frame import SOURCES

HOLDS, FAILS, INCONCLUSIVE, NOT_RUN = "holds", "does not hold", "inconclusive", "not run"
HOLDS_IN_PART = "holds in part"  # a claim of several comparisons: some hold, some do not
LEVEL = 0.95      # of every interval
MIN_SEEDS = 3     # seeds every cell a verdict uses must have
PRETRAINED = ("pretrained",) * len(SOURCES)


@dataclass(frozen=True)
class Cell:
    """One cell of a table of runs: Table 1 or 3, head, θ2 depth, where θ1, θ2 and ω come from,
    and the base network (the pre-trained one, the random-encoder reference, or one by its name
    in the frame's `base` column)."""
    table: int
    head: str
    layers: str = "conv5"
    sources: tuple = PRETRAINED
    encoder: str = "pretrained"

    @property
    def metric(self):
        """The frame's column of what its table reports: accuracy, or mAP (Tables 2 and 4)."""
        return "mean_ap" if self.table in (2, 4) else "accuracy"

    def __str__(self):
        """'grad conv4-5' or, for an ablation's mix, 'grad conv4-5 rrp' (θ1, θ2, ω: random/pre-trained)."""
        mix = "" if self.table not in (1, 2) or self.head in ("actv", "finetune") else \
            " " + "".join(s[0] for s in self.sources)
        tag = "" if self.encoder == "pretrained" else f" ({self.encoder} encoder)"
        return f"{self.head} {self.layers}{mix}{tag}"

    def rows(self, frame):
        """The frame's rows of this cell, whatever their status."""
        mask = (frame.table == self.table) & (frame["head"] == self.head) & (frame.layers == self.layers)
        for key, source in zip(SOURCES, self.sources):
            mask &= frame[key] == source
        if self.encoder not in ("pretrained", "random"):  # a base network by name (C8: two of them)
            return frame[mask & (frame["base"] == self.encoder)]
        is_random = frame["base"] == "random" if "base" in frame else False
        mask &= is_random if self.encoder == "random" else ~is_random
        return frame[mask]


@dataclass
class Effect:
    """One comparison's effect: mean and 95% interval, or the problem that left it unmeasured."""
    label: str
    mean: float = math.nan
    low: float = math.nan
    high: float = math.nan
    seeds: int | None = None       # None: single numbers with an assumed spread (the paper)
    problem: str | None = None     # 'needs ≥3 seeds: ...', 'at its cap: ...'
    unit: str = "points"           # 'points' (accuracy %), '×' (a ratio), 'share' (a fraction,
    # shown as %) or '' (anything else)
    test_images: int | None = None  # the test sample in the interval: its images (None: seeds only)
    df: float | None = None        # the t quantile's degrees of freedom (None: a normal interval)
    runs: tuple = ()               # the (Cell, seed) runs it used
    basis: str | None = None       # why a share's rule reads this absolute effect instead
    parts: tuple = ()              # a share's (part, whole) Effects

    @property
    def _fmt(self):
        return {"points": "{:+.2f}", "×": "{:.2f}", "share": "{:.0%}"}.get(self.unit, "{:.3g}")

    def value(self):
        """The mean alone, '+7.27' (points), '1.85×' (ratio), '82%' (share), '3e-07'."""
        return self._fmt.format(self.mean) + ("×" if self.unit == "×" else "")

    def text(self):
        """'+7.27 [+6.58, +7.96]' (points), '1.85× [1.80, 1.90]' (ratio), '3e-07' or the problem."""
        if self.problem and math.isnan(self.mean):
            return self.problem
        fmt, mean = self._fmt, self.value()
        text = mean if self.low == self.high else f"{mean} [{fmt.format(self.low)}, {fmt.format(self.high)}]"
        return f"{text} ({self.problem})" if self.problem else text


LEGACY_CONVERGED = {"true": CONVERGED, "1": CONVERGED, "1.0": CONVERGED,
                    "false": AT_CAP, "0": AT_CAP, "0.0": AT_CAP}  # results version 2's bool


def converged(frame):
    """The frame with a `convergence` column: each run's CONVERGED, AT_CAP, NEVER_TRAINED or None
    (not validated: unknown; results.csv leaves it empty). The one place that reads a results.csv
    written before the words (results version 2), whose boolean `converged` column maps True to
    converged, False to at its cap and empty to None (a row of a frame with both columns takes
    the word where it has one). A frame with neither column (made by hand) counts as converged."""
    if "convergence" not in frame and "converged" not in frame:
        return frame.assign(convergence=CONVERGED)
    words = pd.Series(None, index=frame.index, dtype=object)
    if "converged" in frame:
        words = frame.converged.astype(str).str.strip().str.lower().map(LEGACY_CONVERGED).astype(object)
    if "convergence" in frame:
        said = frame.convergence.notna() & (frame.convergence.astype(str).str.strip() != "")
        words = frame.convergence.astype(object).where(said, words)
    return frame.assign(convergence=words.where(words.notna(), None))


def trained(frame):
    """The frame's finished runs that trained: status done, and not NEVER_TRAINED (a failed run:
    its best validation was its start; excluded from every mean and effect)."""
    frame = converged(frame)
    return frame[(frame.status == "done") & (frame.convergence != NEVER_TRAINED)]


def _seeds(runs):
    return f"seed {', '.join(str(s) for s in runs.seed)}"


def paired(frame, cells, value, min_seeds=MIN_SEEDS, need_converged=True):
    """(seed × cell table of `value` over the seeds every cell has, problem or None), or (None,
    why not). (None, None) when a cell is absent from the frame: the comparison was not part of
    the run. Every cell needs `min_seeds` finished seeds. Where need_converged (scores; not step
    times) a run that never trained is a failed run, dropped (the problem names it), and every
    run must be validated and converged: one at its cap, or not validated, is kept and named in
    the problem (the effect is shown, its verdict inconclusive)."""
    frame = converged(frame)
    rows = [cell.rows(frame) for cell in cells]
    if any(r.empty for r in rows):
        return None, None
    columns, problems = {}, {"never trained (dropped)": [], "at its cap": [],
                             "convergence unknown (not validated)": []}
    for cell, r in zip(cells, rows):
        done = r[(r.status == "done") & r[value].notna()]
        if done.empty:
            return None, f"no finished run of {cell}"
        if need_converged:
            failed = done[done.convergence == NEVER_TRAINED]
            done = done[done.convergence != NEVER_TRAINED]
            for kind, runs in (("never trained (dropped)", failed),
                               ("at its cap", done[done.convergence == AT_CAP]),
                               ("convergence unknown (not validated)", done[done.convergence.isna()])):
                if len(runs):
                    problems[kind].append(f"{cell} ({_seeds(runs)})")
            if done.seed.nunique() < min_seeds and len(failed):
                return None, (f"needs ≥{min_seeds} seeds: {cell} has {done.seed.nunique()} "
                              f"(never trained, dropped: {_seeds(failed)})")
        if done.seed.nunique() < min_seeds:
            return None, f"needs ≥{min_seeds} seeds: {cell} has {done.seed.nunique()}"
        columns[cell] = done.groupby("seed")[value].mean()
    table = pd.DataFrame(columns).dropna()
    if len(table) < min_seeds:
        return None, f"needs ≥{min_seeds} seeds run in every cell: {len(table)} in common"
    problem = "; ".join(f"{kind}: {', '.join(cells)}" for kind, cells in problems.items() if cells)
    return table, problem or None


def t_interval(label, samples, unit="points", test_var=0.0, test_images=None, test_units=None):
    """The Effect of per-seed samples: their mean and Student-t interval at LEVEL, widened by
    the test sample's variance of the mean (test_var, from paired_units over test_units images or
    jackknife groups; 0: seeds alone) at the Welch–Satterthwaite degrees of freedom,
    SE⁴ / ((s²/S)²/(S − 1) + test_var²/(units − 1))."""
    samples = np.asarray(samples, float)
    n, mean = len(samples), samples.mean()
    seeds_var = samples.var(ddof=1) / n
    se2 = seeds_var + test_var
    spread = seeds_var ** 2 / (n - 1) + (test_var ** 2 / (test_units - 1) if test_var else 0.0)
    df = se2 ** 2 / spread if spread > 0 else math.inf
    half = stats.t.ppf((1 + LEVEL) / 2, df) * math.sqrt(se2)
    return Effect(label, mean, mean - half, mean + half, seeds=n, unit=unit, df=df,
                  test_images=test_images)


def _widened(label, per_seed, per_image_effect, unit, problem, images=None):
    """t_interval of the per-seed effects with the test sample's term: the variance of the mean
    of per_image_effect, the effect (linearised) image by image or jackknife group by group
    (None: the seeds alone); images: the test images they stand for (default: one each)."""
    if per_image_effect is None:
        return dataclasses.replace(t_interval(label, per_seed, unit), problem=problem)
    n = len(per_image_effect)
    return dataclasses.replace(t_interval(label, per_seed, unit, per_image_effect.var(ddof=1) / n,
                                          images or n, n), problem=problem)


def paired_units(frame, cells, seeds):
    """((cells × units) array, test images) of each cell's test sample, averaged over `seeds`,
    paired: per image its correctness in % (RunResult.test_correct) or, for mAP (Tables 2 and 4),
    per fixed group of images its jackknife pseudo-value in % (RunResult.test_jackknife, whose
    mean over groups has the variance of the mAP: experiments/metrics.py). (None, None) when a run
    did not record it (a frame without the column: made by hand or by results version 1) or the
    cells tested on different numbers of images."""
    column = "test_jackknife" if cells[0].metric == "mean_ap" else "test_correct"
    if column not in frame:
        return None, None
    out = []
    for cell in cells:
        rows = cell.rows(frame)
        rows = rows[(rows.status == "done") & rows.seed.isin(seeds)].drop_duplicates("seed")
        if len(rows) != len(seeds) or rows[column].isna().any() or rows.n_test.nunique() != 1:
            return None, None
        n = int(rows.n_test.iloc[0])
        out.append(np.mean([unpack_values(t) for t in rows[column]], axis=0) if column == "test_jackknife"
                   else 100 * np.mean([unpack_correct(t, n) for t in rows[column]], axis=0))
    if len({len(o) for o in out}) != 1 or len({c.rows(frame).n_test.iloc[0] for c in cells}) != 1:
        return None, None
    return np.array(out), n


def _value(frame, cells):
    """The column the cells' table reports (Cell.metric), one for all of them."""
    metrics = {c.metric for c in cells}
    if len(metrics) != 1:
        raise ValueError(f"cells of tables that report different metrics: {', '.join(map(str, cells))}")
    return metrics.pop()


def contrast(frame, label, terms):
    """Σ weight · accuracy over `terms` {Cell: weight}, paired by seed; for a frame of single
    numbers with an assumed spread (`accuracy_sd`), the normal interval of the same sum.
    None when a cell is absent."""
    cells = list(terms)
    weights = np.array([terms[c] for c in cells], float)
    assumed = "accuracy_sd" in frame
    table, problem = paired(frame, cells, _value(frame, cells), 1 if assumed else MIN_SEEDS)
    if table is None:
        return problem and Effect(label, problem=problem)
    runs = used(cells, table)
    if not assumed:  # a run not converged still shows its effect, flagged by the problem
        units, images = paired_units(frame, cells, table.index)
        return dataclasses.replace(_widened(label, table.to_numpy() @ weights,
                                            None if units is None else weights @ units, "points",
                                            problem, images), runs=runs)
    sd = np.array([c.rows(frame).accuracy_sd.iloc[0] for c in cells], float)
    mean = float(table.iloc[0].to_numpy() @ weights)
    half = stats.norm.ppf((1 + LEVEL) / 2) * math.sqrt(float(np.sum((weights * sd) ** 2)))
    return Effect(label, mean, mean - half, mean + half, runs=runs)


def used(cells, table):
    """The (Cell, seed) runs a paired table (paired()) stands on."""
    return tuple((cell, seed) for cell in cells for seed in table.index)


def share(frame, label, part, whole, names=("the part", "the whole")):
    """(Σ part weights · accuracy) ÷ (Σ whole weights · accuracy), {Cell: weight} each: a
    scale-free effect such as the share of fine-tuning's gain over actv that grad recovers. Seed
    by seed with its t interval; for single numbers with an assumed spread (`accuracy_sd`), the
    delta method's normal interval, var(N/D) ≈ Σ (a_i − r b_i)² σ_i² / D². None when a cell is
    absent. names: the part's and the whole's labels.

    Only where its parts have the signs a share presumes (contrast of each): a part clearly below
    0 gives that part's own Effect (unit points, `basis` saying why: a share's rule reads its
    sign); a whole not clearly above 0 gives no share (an Effect whose problem says why)."""
    cells = list(dict.fromkeys([*part, *whole]))
    a = np.array([part.get(c, 0.0) for c in cells], float)
    b = np.array([whole.get(c, 0.0) for c in cells], float)
    assumed = "accuracy_sd" in frame
    table, problem = paired(frame, cells, _value(frame, cells), 1 if assumed else MIN_SEEDS)
    if table is None:
        return problem and Effect(label, problem=problem, unit="share")
    values, runs = table[cells].to_numpy(), used(cells, table)
    if not assumed and (zero := table.index[values @ b == 0]).size:
        return Effect(label, problem=f"undefined: the denominator is 0 on seed {', '.join(map(str, zero))}",
                      unit="share", seeds=len(table), runs=runs)
    parts = (contrast(frame, names[0], part), contrast(frame, names[1], whole))
    if parts[0].high < 0:
        return dataclasses.replace(parts[0], basis=f"{names[0]} is negative: judged on the absolute effect")
    if not parts[1].low > 0:
        return Effect(label, problem=f"no share: {names[1]} is not clearly positive ({parts[1].text()})",
                      unit="share", seeds=len(table), runs=runs, parts=parts)
    if not assumed:
        units, images = paired_units(frame, cells, table.index)
        linearised = None
        if units is not None:  # the delta method over images (groups): N/D ≈ r + (N − r D)/D
            num, den = a @ units, b @ units
            linearised = (num - num.mean() / den.mean() * den) / den.mean()
        return dataclasses.replace(_widened(label, (values @ a) / (values @ b), linearised, "share",
                                            problem, images), runs=runs, parts=parts)
    sd = np.array([c.rows(frame).accuracy_sd.iloc[0] for c in cells], float)
    whole_value = float(values[0] @ b)
    r = float(values[0] @ a) / whole_value
    half = stats.norm.ppf((1 + LEVEL) / 2) * math.sqrt(float(np.sum(((a - r * b) * sd) ** 2))) / abs(whole_value)
    return Effect(label, r, r - half, r + half, unit="share", runs=runs, parts=parts)


def ratio(frame, label, numerator, denominator, value="ms_per_step"):
    """numerator ÷ denominator of `value` seed by seed: their geometric mean with the t interval
    of the log ratios, exponentiated (a ratio's interval stays positive and is as far below 1 for
    a ratio as above it for its inverse); None when absent."""
    table, problem = paired(frame, [numerator, denominator], value, need_converged=False)
    if table is None:
        return problem and Effect(label, problem=problem, unit="×")
    logs = t_interval(label, np.log(table[numerator] / table[denominator]), unit="×")
    return dataclasses.replace(logs, mean=math.exp(logs.mean), low=math.exp(logs.low),
                               high=math.exp(logs.high), problem=problem,
                               runs=used([numerator, denominator], table))


@dataclass
class Comparison:
    """An effect against a threshold. role: 'rule' decides the verdict; 'precondition' must hold
    for the rule to say anything (else inconclusive); 'note', 'context' and 'control' (the same
    effect on the random encoder) are reported beside it only. An absolute effect standing in for
    a share (Effect.basis) is judged by its sign: its threshold is 0."""
    effect: Effect
    threshold: float
    above: bool               # holds when the effect is above the threshold (else below)
    role: str = "rule"

    def __post_init__(self):
        if self.effect.basis:
            self.threshold = 0.0

    @property
    def margin(self):
        """How far the interval's far end clears the threshold on the holding side (> 0: holds)."""
        e = self.effect
        return e.low - self.threshold if self.above else self.threshold - e.high

    @property
    def miss(self):
        """How far the interval clears the threshold on the other side (> 0: does not hold)."""
        e = self.effect
        return self.threshold - e.high if self.above else e.low - self.threshold

    def scaled(self, distance):
        """A margin or miss comparable across units: in units of the threshold's size, or of the
        interval's width where the threshold is 0 (1 where both are 0)."""
        return distance / (abs(self.threshold) or (self.effect.high - self.effect.low) or 1.0)

    @property
    def verdict(self):
        if self.effect.problem:
            return INCONCLUSIVE
        return HOLDS if self.margin > 0 else FAILS if self.miss > 0 else INCONCLUSIVE

    def test(self):
        """'grad − actv > 3' and, where an absolute effect stands in for a share, why."""
        side = ">" if self.above else "<"
        why = f" ({self.effect.basis})" if self.effect.basis else ""
        return f"{self.effect.label} {side} {self.threshold_text()}{why}"

    def sentence(self):
        """'grad − actv: +7.27 [+6.58, +7.96] > 3 → holds' and, when inconclusive, why."""
        side = ">" if self.above else "<"
        out = f"{self.effect.label}: {self.effect.text()}"
        if not self.effect.problem:
            out += f" {side} {self.threshold_text()}"
        why = f" ({self.effect.basis})" if self.effect.basis else ""
        return f"{out} → {self.verdict}{why}"

    def reason(self):
        """What would settle an inconclusive comparison ('' otherwise)."""
        if self.effect.problem:
            return self.effect.problem
        if self.verdict != INCONCLUSIVE:
            return ""
        e = self.effect
        more = "more seeds: " if e.seeds else ""
        low, high = ((f"{e.low:.0%}", f"{e.high:.0%}") if e.unit == "share" else
                     (f"{e.low:.2f}", f"{e.high:.2f}"))
        return f"{more}{e.label} interval [{low}, {high}] straddles the threshold {self.threshold_text()}"

    def threshold_text(self):
        """The threshold in the effect's unit: '3', '50%'."""
        return f"{self.threshold:.0%}" if self.effect.unit == "share" else f"{self.threshold:g}"


JUDGED = ("rule", "precondition")  # the roles a verdict rests on


def tests_of(comparisons):
    """{effect label: its rule comparisons}: one test per effect (an equivalence's two bounds,
    C5's, are one test), in order."""
    out = {}
    for c in comparisons:
        if c.role == "rule":
            out.setdefault(c.effect.label, []).append(c)
    return out


def verdict_of(bounds):
    """The verdict of one test of one or more bounds on the same effect: holds when every bound
    holds, does not hold when one fails, else inconclusive."""
    verdicts = {c.verdict for c in bounds}
    return FAILS if FAILS in verdicts else HOLDS if verdicts == {HOLDS} else INCONCLUSIVE


def tally(comparisons):
    """'12 of 15 hold' over a claim's tests ('' for a claim of one test or none)."""
    judged = [verdict_of(b) for b in tests_of(comparisons).values()]
    return f"{judged.count(HOLDS)} of {len(judged)} hold" if len(judged) > 1 else ""


def runs_behind(comparisons):
    """How many (cell, seed) runs the comparisons a verdict rests on used, each counted once."""
    return len({run for c in comparisons if c.role in JUDGED for run in c.effect.runs})


def claim_verdict(comparisons):
    """(verdict, deciding comparison, reason) of a claim from its comparisons.

    A precondition that does not hold (clearly or within its interval) leaves the claim
    inconclusive: the rules say nothing then. Otherwise each test (one effect against its
    threshold, or both bounds of an equivalence: tests_of) has its verdict, and the claim holds when
    every test holds (decided by the one closest to its threshold), does not hold when none holds
    and one fails (decided by the clearest failure), holds in part when some hold and some fail
    (decided by the clearest failure; the reason names the tests that do not hold), and is
    inconclusive otherwise. Each interval is at 95% on its own: no correction is made for the
    number of tests, so with many tests a spurious failure is likelier than 5%; the thresholds
    sit far from what the paper reports."""
    by_effect = tests_of(comparisons)
    if not by_effect:
        return NOT_RUN, None, ""
    unmet = [c for c in comparisons if c.role == "precondition" and c.verdict != HOLDS]
    if unmet:
        return INCONCLUSIVE, unmet[0], _listed(["precondition not met: " + c.sentence()
                                                if not c.effect.problem else c.reason() for c in unmet])
    judged = {label: verdict_of(bounds) for label, bounds in by_effect.items()}
    rules = [c for bounds in by_effect.values() for c in bounds]
    failing = [c for c in rules if c.verdict == FAILS]
    if not failing and all(v == HOLDS for v in judged.values()):
        return HOLDS, min(rules, key=lambda c: c.scaled(c.margin)), ""
    counted = f"{tally(comparisons)}; " if tally(comparisons) else ""
    if not failing:
        open_ = [c for c in rules if c.verdict == INCONCLUSIVE]
        return INCONCLUSIVE, open_[0], counted + _listed([c.reason() for c in open_])
    worst = max(failing, key=lambda c: c.scaled(c.miss))
    if HOLDS not in judged.values():
        return FAILS, worst, counted + worst.sentence()
    others = [f"{label} ({verdict})" for label, verdict in judged.items() if verdict != HOLDS]
    return HOLDS_IN_PART, worst, f"{counted}not: " + _listed(others, most=len(others))


def _listed(reasons, most=3):
    """The distinct reasons joined, the first `most` of them, and how many more."""
    reasons = list(dict.fromkeys(reasons))
    more = f" (and {len(reasons) - most} more)" if len(reasons) > most else ""
    return "; ".join(reasons[:most]) + more
