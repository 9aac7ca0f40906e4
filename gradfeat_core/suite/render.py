"""The report's sections: a Report is what a reproduce output folder holds, loaded once (results.csv,
the experiments' summaries, parameters, pre-training records, linearisation, the claims' verdicts);
each of its section methods returns what that section shows, as a list of IPython display objects
(Markdown, HTML, figures as PNG images with alt text). 04_report.ipynb calls them in order.
report.json's schema is ReportRecord."""
import dataclasses
import html
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from IPython.display import HTML, Image, Markdown

from ..experiments.results import write_json
from ..method.vae import FITTED_IMAGES
from . import figures
from .claims import PAPER_SD, rule_changes, tables, verdicts
from ..experiments.quality import load_quality
from .quality import compared, describe, wide
from .report import (PAPER_SOURCE, UNITS, ablation, actv_level, coded, conclusion, coverage, deviations,
                     effects, failed_runs, heads, heads_intervals, interval_method, left_table, metric,
                     paper_ablation, run_durations, scope, step_costs, table1_wide, verdict_table, with_std)
from .reproduce import report_dir_for
from .sensitivity import outcomes
from .frame import base_name, distinct_runs, load_summaries, loss_curves, read_results, validation_curves


def figure(fig, alt):
    """A figure as the report shows it: a PNG with its alt text."""
    return Image(data=figures.png(fig), format="png", alt=alt)


def bullets(lines):
    return Markdown("\n".join(f"- {line}" for line in lines))


def caption(text):
    return Markdown(f"*{text}*")


def _json(path):
    return json.loads(Path(path).read_text()) if path else None


@dataclass
class ReportRecord:
    """report.json: the verdicts and the tables of one report, as written beside report.html.
    heads_table/ablation_table: the paper's numbers of the two tables (3 and 1, or 4 and 2)."""
    profile: str
    claims: list
    heads_table: int
    heads: list
    ablation_table: int
    ablation: list
    ablation_baselines: list
    minutes: list
    environment: dict

    def as_json(self):
        """The mapping report.json holds: the tables under 'table<n>' and 'table<n>_baselines'."""
        return {"profile": self.profile, "claims": self.claims, f"table{self.heads_table}": self.heads,
                f"table{self.ablation_table}": self.ablation,
                f"table{self.ablation_table}_baselines": self.ablation_baselines,
                "minutes": self.minutes, "environment": self.environment}

    def write(self, path):
        write_json(path, self.as_json())


@dataclass
class Report:
    """A reproduce output folder's report (Report.load reads it once)."""
    profile: str
    report_dir: Path
    params: dict
    frame: pd.DataFrame
    summaries: list
    pretrain: dict | None
    pretrain_dir: Path | None  # the base network's pre-training folder (encoder, curves, figures)
    quality: pd.DataFrame | None  # its feature-quality curve (quality.csv), where it has one
    base: dict
    linearization: dict | None
    others: list          # the other base networks' pre-training records (Table 4's), with 'folder'
    claims: pd.DataFrame = dataclasses.field(default=None)
    sensitivity: pd.DataFrame | None = None  # sensitivity.csv: each perturbation's verdicts, where the stage ran
    outcomes: pd.DataFrame | None = None     # from it: each claim's verdict under each perturbation, and its outcome

    @classmethod
    def load(cls, profile, report_dir=None):
        """The report of reproduce's output folder `report_dir` (reports/<profile> by default);
        with no run there, a UserError names the command that makes one (report_dir_for)."""
        report_dir = report_dir_for(profile, report_dir)
        inputs = json.loads((report_dir / "report-inputs.json").read_text())
        others = [dict(_json(path), folder=Path(path).parent) for path in inputs.get("other_pretrainings", [])]
        pretrain_dir = Path(inputs["pretrain"]).parent if inputs["pretrain"] else None
        report = cls(profile, report_dir, inputs["params"], read_results(report_dir / "results.csv"),
                     load_summaries(inputs["experiments"]), _json(inputs["pretrain"]), pretrain_dir,
                     load_quality(pretrain_dir / "quality.csv") if pretrain_dir else None,
                     inputs.get("base_network") or {}, _json(inputs["linearization"]), others)
        report.claims = verdicts(report.frame, report.linearization)
        if (report_dir / "sensitivity.csv").is_file():
            report.perturbed(pd.read_csv(report_dir / "sensitivity.csv", keep_default_na=False))
        import seaborn as sns
        sns.set_theme(style="whitegrid")  # the report's figures' look
        return report

    def perturbed(self, under):
        """Takes the sensitivity stage's frame `under` (sensitivity.csv): each claim's outcome
        (sensitivity.outcomes), once, for the verdict table's column and the stage's section."""
        self.sensitivity, self.outcomes = under, outcomes(self.claims, under)
        self.claims = self.claims.assign(sensitivity=self.outcomes.outcome.to_numpy())

    # --- what every section reads -----------------------------------------------------------
    @property
    def first(self):
        """The heads' table (3, or 4 on a ResNet)."""
        return tables(self.frame)[0]

    @property
    def second(self):
        """The ablation's table (1, or 2 on a ResNet)."""
        return tables(self.frame)[1]

    @property
    def unit(self):
        return UNITS[metric(self.frame)]

    @property
    def score(self):
        return "mAP" if metric(self.frame) == "mean_ap" else "accuracy"

    @property
    def environment(self):
        return (self.summaries[0]["environment"] if self.summaries else
                self.pretrain["environment"] if self.pretrain else {})

    # --- the first screen ---------------------------------------------------------------------
    def first_screen(self):
        claims, frame = self.claims, self.frame
        return [
            Markdown(" ".join(conclusion(self.params, frame, claims))),
            Markdown("### Verdicts\n\nPer claim: our effect for the comparison that decides it (mean and 95% interval), the paper's effect for the same comparison as its printed numbers give it, and the verdict the same rule gives on the paper's numbers. *Inconclusive*: the interval straddles the rule's threshold, a cell has fewer than 3 seeds, or a head was at its cap still improving. *Under perturbation* (where the sensitivity stage ran): robust, the same verdict with the deciding runs trained again under each perturbation, or fragile, with what flips it ([The sensitivity stage](#The-sensitivity-stage)). " + interval_method(claims, frame)),
            HTML(verdict_table(claims)),
            Markdown(f"The paper prints one number per cell and no spread: to check a rule on its numbers (last column), each is taken as one run with a seed spread of {PAPER_SD} points, an assumption, not a measurement. Where a claim combines several tests, the one shown decides it: the nearest its threshold when all hold, else the clearest failure; *tests that hold* counts them. The ablation's codes (ppp, prp, rrr, ...): where the gradient term's θ1, θ2 and ω come from, p pre-trained and r random. Rules and all their comparisons: [Claims in detail](#Claims-in-detail)."),
            Markdown("### Coverage\n\nEach of the paper's tables and claims: reproduced on the paper's setting, on a stand-in (which data set and base network), or not covered (why, and what would cover it)."),
            HTML(left_table(coverage(self.params, frame, claims))),
            Markdown("""**Contents:** [Read this first](#Read-this-first) · [Claims in detail](#Claims-in-detail) · [The sensitivity stage](#The-sensitivity-stage) · [The four heads](#The-four-heads-at-the-top-layer) · [The ablation](#The-ablation) · [Training curves](#Training-curves) · [The base network](#The-base-network) · [Cost per training step](#Cost-per-training-step) · [Linearisation](#Linearisation-(C7)) · [Failed runs](#Failed-runs) · [Where the time went](#Where-the-time-went) · [Settings and deviations](#Settings-and-deviations)"""),
        ]

    def read_this_first(self):
        runs = distinct_runs(self.frame)
        done, failed = (runs.status == "done").sum(), (runs.status != "done").sum()
        return [Markdown(f"**Profile** `{self.profile}` · **data set** {self.params['data']['dataset']} · "
                         f"**base network** {base_name(self.params)} · "
                         f"**runs** {done} done, {failed} failed or not run"),
                bullets(scope(self.params, self.pretrain, self.frame, self.base))]

    # --- the claims ---------------------------------------------------------------------------
    def claims_detail(self):
        shown = [HTML(left_table(self.claims[["claim", "rule", "comparison", "seeds", "note", "evidence"]]))]
        table = effects(self.frame, self.linearization)
        if len(table):
            shown += [figure(figures.forest(table, self.score),
                             "Forest plot per claim: each comparison's mean and 95% interval coloured by its "
                             "verdict, the rule's threshold dashed, the paper's effect for the same comparison as an open diamond"),
                      caption("Every comparison a verdict rests on: green holds, red does not hold, amber inconclusive; the dashed line is the rule's threshold and the open diamond the paper's effect for the same comparison on its own data set (where ours is not one of its data sets: CIFAR-10, or VOC07 on a ResNet); one beyond the axis sits at its edge with its value written beside it, and a comparison whose cells the paper did not print is labelled so. A claim holds only when every one of its intervals clears its threshold.")]
        return shown + [
            Markdown("**Rules restated since the previous report.** C1, C3 and C4 judged margins in accuracy points with thresholds read off CIFAR-10's scale; they now judge shares (of fine-tuning's gain over the activation baseline, or of the gradient model's own gain), which mean the same on any data set. C7 asked for 80% agreement, which any two classifiers of 89% accuracy reach, and a gap ratio without a unit; it now asks for agreement beyond what the accuracies force and estimates the remainder's order over the ε sweep. The previous rules, on these same runs:"),
            HTML(left_table(rule_changes(self.frame, self.claims, self.linearization)))]

    # --- the sensitivity stage -----------------------------------------------------------------
    def sensitivity_stage(self):
        """Each claim's verdict beside its verdict under each perturbation, and the perturbed
        runs' deciding effects; or why the stage did not run."""
        if self.sensitivity is None:
            return [Markdown("The sensitivity stage did not run for this report (it runs once every run of the "
                             "grid is done; `reproduce.sensitivity` in params/base.yaml sets it up).")]
        own = self.params["reproduce"]["sensitivity"]
        return [Markdown(f"Each claim's deciding runs (the cells behind its deciding test, all their seeds) trained "
                         f"again under each perturbation, the grid's other runs kept, and judged by the same rules "
                         f"(schedule ×{own['schedule']}, pre-training seed {own['pretrain_seed']}"
                         f"{', design ' + str(own['design']) if own['design'] else ''}; 0 or null: not run; "
                         "docs/protocol.md). *Robust*: every perturbation gives the verdict again."),
                HTML(left_table(self.outcomes)),
                Markdown("Each perturbation's deciding test and its effect on the runs it retrained:"),
                HTML(left_table(self.sensitivity))]

    # --- the heads' table -------------------------------------------------------------------------
    def heads_table(self):
        first = self.first
        t3 = heads(self.frame)
        shown = t3.assign(ours=with_std(t3))[["base", "head", "layers", "ours", "seeds", "paper", "paper_dataset"]]
        return [Markdown(
            f"**Table {first}: the four heads at the top layer** ({self.unit}). Ours: mean ± std over seeds. The random encoder "
            "(`base` = random) is the reference that says whether pre-training gave the network anything; the paper has no "
            "such row. The paper's number for the base network ours is, or stands in for ("
            + ("ImageNet ResNet18 for supervised pre-training, Jigsaw ResNet50 for rotation" if first == 4 else
               "BiGAN at conv5, VAE at conv8")
            + "), stands beside ours on its own data set (`paper_dataset`): it shows the direction of each effect, not a "
            "target, so no difference is taken."), HTML(left_table(shown))]

    def heads_figure(self):
        dots = heads_intervals(self.frame)
        if not len(dots):
            return []
        return [figure(figures.heads_dots(dots, self.first, self.unit),
                       f"Dot-and-interval plot of Table {self.first}'s test {self.score} per head, on each pre-trained base "
                       "network and on the random encoder, mean and 95% interval over the seeds and the test sample"),
                caption(f"Each head's mean test {self.score} and its 95% interval (over the seeds and the test sample, as the verdicts' intervals), on each pre-trained base network and on the random encoder. The axis starts near the data, not at 0: what matters is the gaps between heads, and between the base networks.")]

    # --- the ablation -------------------------------------------------------------------------
    def ablation(self):
        second = self.second
        cells, baselines = ablation(self.frame)
        shown = [Markdown(f"**Table {second}: the ablation** ({self.unit})")]
        if not len(cells):
            ran = (self.frame.table == second).any()
            return shown + ([] if ran else [Markdown("This profile runs no ablation: the paper ablates the ALI encoder's θ2 (conv5, conv4-5, conv3-5; Table 1) and ImageNet ResNet18's last blocks (Table 2), and this base network is another (`base.arch`). C3 and C4 are not run.")])
        paper_wide, paper_baselines = paper_ablation(second)
        return shown + [
            Markdown("**Ours**"), HTML(left_table(table1_wide(cells, "ours").reset_index())),
            Markdown(f"**Paper** ({PAPER_SOURCE[second]}, every depth it printed: for the direction of each effect)"),
            HTML(left_table(paper_wide.reset_index())),
            Markdown("Its baselines: " + ", ".join(f"{r['head']} {r['layers']} {r['paper']:.2f}" for _, r in paper_baselines.iterrows()) + "."),
            Markdown("**Baselines**"), HTML(left_table(baselines.drop(columns=["difference"])))]

    def ablation_figure(self):
        second = self.second
        cells, _ = ablation(self.frame)
        if not len(cells):
            return []
        return [
            figure(figures.ablation_heatmaps(coded(table1_wide(cells, "ours")), coded(paper_ablation(second)[0]), second, PAPER_SOURCE[second]),
                   f"Heat maps of Table {second}, ours beside the paper's: test {self.score} per (θ1, θ2, ω) row "
                   "and per depth and head"),
            caption(f"Test {self.unit} of each (θ1, θ2, ω) source per depth and head, ours beside the paper's on its own data set, on one colour scale (the bar): compare the pattern down each column (how much a random θ1 or θ2 costs), not the levels.")]

    # --- training curves ------------------------------------------------------------------------
    def validation_curves(self):
        val = validation_curves(self.summaries)
        return self._curves(val, self.first) + self._curves(val, self.second)

    def _curves(self, val, table):
        curves = val[val.table == table]
        if not (self.frame.table == table).any():  # the profile does not run this table
            return []
        if not len(curves):
            return [Markdown(f"Table {table}'s runs did not validate (`train.eval_every` 0): no curve, "
                             "convergence unknown.")]
        if table == self.first:
            levels = {base: actv_level(curves, base=base) for base in dict.fromkeys(curves.base)}
            fig = figures.heads_curves(curves, table, self.unit, levels)
            what = "one panel per base network and head, one line per seed"
        else:
            fig = figures.ablation_curves(curves, table, self.unit, actv_level(curves))
            what = "one panel per depth, head and (θ1, θ2, ω) source, the mean over seeds with their range"
        return [figure(fig, f"Validation {self.score} against iterations for each head of Table {table}, {what}, "
                            "the activation baseline's best as a dashed line"),
                caption(f"Table {table}: each run's validation {self.score} from its untrained start, the dashed line the activation baseline's best (mean over seeds). A curve still rising at its last point was stopped by its cap and is flagged not converged.")]

    def loss_curves(self):
        curves = loss_curves([s for s in self.summaries if s["table"] == self.first])
        if not len(curves):
            return []
        loss = "sigmoid cross-entropy over the classes" if self.first == 4 else "cross-entropy"
        return [figure(figures.loss_curves(curves, self.first, loss),
                       f"Training loss against iterations for each head of Table {self.first}, one band per base network"),
                caption(f"Each Table {self.first} head's training loss ({loss}, the mean since the last record), one band per base network: the mean over its seeds, their range shaded.")]

    # --- the base network -------------------------------------------------------------------------
    def base_network(self):
        quality, pretrain, pretrain_dir = self.quality, self.pretrain, self.pretrain_dir
        shown = [bullets(describe(self.base, pretrain, quality))]
        if quality is not None:
            shown += [HTML(left_table(wide(quality).reset_index())),
                      figure(figures.probe_curves(pd.read_csv(pretrain_dir / "quality.csv"), pretrain["objective"] if pretrain else "the base network"),
                             "Probe validation accuracy against pre-training updates, one line per probe head and pre-training seed, "
                             "each head's random-encoder level dashed"),
                      caption("Each probe's validation accuracy on snapshots of the encoder during pre-training, against the same probe on a random encoder (dashed): pre-training helped where a line ends above its dashed level.")]
        if pretrain and (pretrain_dir / "losses.csv").is_file():
            shown += self._pretraining_losses(pretrain, pretrain_dir / "losses.csv", f"What `{pretrain['objective']}` pre-training recorded against updates, each point the mean since the last: a curve still falling at its end means the base network was stopped before its objective converged.")
        return shown + [x for other in self.others for x in self._other_base(other)] + self._tried() + self._samples()

    def _pretraining_losses(self, record, path, text):
        return [figure(figures.pretraining_losses(pd.read_csv(path).to_numpy(), record["objective"]),
                       f"The pre-training's recorded losses against updates ({record['objective']})"), caption(text)]

    def _other_base(self, other):
        """Table 4's other base networks (reproduce.other_bases), pre-trained in this reproduction."""
        shown = [Markdown(f"- Table {self.first}'s heads also ran on `{other['objective']}`: {other['iterations']} updates at batch "
                          f"{other['params']['pretrain']['batch_size']} in {other['seconds'] / 60:.1f} min, on the same source "
                          f"task ({other['params']['data']['dataset']}).")]
        losses = other["folder"] / "losses.csv"
        return shown + (self._pretraining_losses(other, losses, f"What `{other['objective']}` pre-training recorded against updates.")
                        if losses.is_file() else [])

    def _tried(self):
        """The pre-trainings tried for this data set and not used (base.compared)."""
        tried = self.params["base"].get("compared") or []
        if not tried:
            return []
        shown = [Markdown("The base network (`used`) beside the pre-trainings tried for this data set and not "
                          "used (`base.compared`, each from its committed record and curve): each probe on the "
                          "last snapshot against the same probe on that run's random encoder, validation %."),
                 HTML(left_table(compared(self.pretrain_dir if self.quality is not None else None, tried)))]
        return shown + [x for folder in map(Path, tried) for x in self._tried_one(folder)]

    def _tried_one(self, folder):
        record = json.loads((folder / "pretrain.json").read_text())
        shown = [Markdown(f"`{folder.name}`"),
                 figure(figures.probe_curves(pd.read_csv(folder / "quality.csv"), record["objective"]),
                        f"Probes of {folder.name} against pre-training updates, each against its random-encoder level"),
                 caption(f"The probes of `{folder.name}` against its updates, each against the same probe on its own random encoder (dashed).")]
        if (folder / "samples.png").is_file():
            shown += [Image(folder / "samples.png", alt=f"Samples G(z) of {folder.name}"),
                      caption(f"64 samples G(z) of `{folder.name}`'s generator after {record['iterations']} updates: "
                              "samples that look alike, or that do not look like the data, mean the generator "
                              "had not learnt the data's distribution, and its encoder's features are no better for it.")]
        return shown

    def _samples(self):
        """The base network's own samples and reconstructions, where its pre-training drew them."""
        folder = self.pretrain_dir
        if not (self.pretrain and (folder / "samples.png").is_file()):
            return []
        fitted = (folder / "samples_fitted.png").is_file()  # the VAE's
        grids = [("samples.png", "A grid of 64 generated samples G(z)",
                  "64 samples G(z)" + (" of z ~ N(0, I), the prior: where the aggregate posterior q(z) is far from it, "
                                       "they fall where no image was encoded and decode to blobs" if fitted else "")),
                 ("samples_fitted.png", "64 samples of the VAE's decoder at z ~ N(m, C)",
                  f"64 samples of z ~ N(m, C), the Gaussian with the mean and covariance of the aggregate posterior q(z) "
                  f"on up to {FITTED_IMAGES:,} training images: what the decoder learnt"),
                 ("reconstructions.png", "Test images x beside their reconstructions G(E(x))",
                  "Test images x, each beside its reconstruction G(E(x)) (the VAE: the decoder of μ(x)): what of an "
                  "image the encoder keeps")]
        return [x for name, alt, text in grids if (folder / name).is_file()
                for x in (Image(folder / name, alt=alt), caption(f"{text}."))]

    # --- the rest -----------------------------------------------------------------------------
    def step_costs(self):
        return [HTML(left_table(step_costs(self.frame)))]

    def linearisation(self):
        lin = self.linearization
        if not lin:
            return []
        return [Markdown(f"JVP vs reverse-mode autograd, relative error: {lin['jvp_relative_error']:.2e}; "
                         f"full and fine-tuned predict the same class on {100 * lin['agreement_full_finetune']:.1f}% "
                         "of test images. The gap between ĝ and the network at θ̄2 + ε·s·w2:"),
                HTML(left_table(pd.DataFrame(lin["taylor"]), decimals=4))]

    def failed_runs(self):
        errors = failed_runs(self.frame)  # the unfinished and the never trained
        return [HTML(left_table(errors)) if len(errors) else Markdown("None.")]

    @property
    def durations(self):
        return run_durations(self.report_dir / "runs")

    def where_the_time_went(self):
        return [HTML(left_table(self.durations, decimals=1))]

    def settings(self):
        items = "".join(f"<li>{html.escape(line)}</li>" for line in deviations(self.params, self.pretrain, self.frame, self.summaries))
        environment = pd.Series(self.environment, name="value").astype(str).rename_axis("key").reset_index()
        return [HTML("<details><summary>How these runs differ from the paper's protocol (each setting once)</summary>"
                     f"<ul>{items}</ul></details>"),
                HTML("<details><summary>Environment</summary>" + left_table(environment) + "</details>")]

    # --- report.json ----------------------------------------------------------------------------
    def record(self):
        cells, baselines = ablation(self.frame)
        return ReportRecord(self.profile, self.claims.to_dict("records"), self.first, heads(self.frame).to_dict("records"),
                            self.second, cells.to_dict("records"), baselines.to_dict("records"),
                            self.durations.to_dict("records"), self.environment)
