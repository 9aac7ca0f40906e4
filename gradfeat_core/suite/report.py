"""The report's tables, figures and prose, from results.csv and the experiments' summaries
(gradfeat_core.suite.frame): the tables set beside the paper's, what the runs did, how they
differ from the paper's protocol."""
import dataclasses
import html
import json
import math
from pathlib import Path

import pandas as pd

from ..experiments.data import SIZES, VIEWED, image_side
from ..experiments.metrics import JACKKNIFE_GROUPS
from ..experiments.params import merge
from ..method.registry import ARCHITECTURES, OBJECTIVES
from ..method.resnet import block_names
from .claims import (NEEDS, PRETRAINING_MIN_GAIN, assess, own_base, paper_assessment, paper_base,
                     pretraining_gain, rules_line, tables)
from ..experiments.results import AT_CAP, NEVER_TRAINED
from .evidence import FAILS, HOLDS, HOLDS_IN_PART, INCONCLUSIVE, NOT_RUN, Cell, contrast, converged, ratio, trained
from .grid import (PAPER_DATASETS, PAPER_REFERENCE, PAPER_RESNETS, PAPER_TRANSFER_DATASETS,
                   PAPER_TRANSFER_REFERENCE, PROTOCOL, SHAPE, experiments)
from .grid import tables as architecture_tables  # the architecture's; claims.tables: a frame's
from .paper import paper_numbers
from .frame import SOURCES, VIEWED_TABLES, distinct_runs

# What each of the paper's tables reports, and on what its numbers stand: a frame's heads' table and
# ablation are 3 and 1 (ALI/VAE encoders, accuracy), or 4 and 2 (ResNets, mAP): claims.tables
UNITS = {"accuracy": "accuracy %", "mean_ap": "mAP %"}
PAPER_SOURCE = {1: "BiGAN, CIFAR-10", 2: "ImageNet ResNet-18 → VOC07"}


def metric(frame):
    """The column the frame's tables report: accuracy, or mean_ap on Tables 4 and 2 (Cell.metric)."""
    return Cell(tables(frame)[0], "actv").metric


NEVER_TRAINED_REASON = ("never trained: its best validation was its start (iteration 0) and its "
                        "learning rate had not decayed; left out of every mean and effect")


def failed_runs(frame):
    """The report's Failed runs: experiment, seed and error of every run that did not finish,
    and of every finished run that never trained (NEVER_TRAINED_REASON)."""
    failed = frame[frame.status != "done"][["experiment", "seed", "error"]]
    done = converged(distinct_runs(frame[frame.status == "done"]))
    never = done[done.convergence == NEVER_TRAINED][["experiment", "seed"]].assign(error=NEVER_TRAINED_REASON)
    return pd.concat([failed, never], ignore_index=True)


def mean_std(frame, by, value="accuracy"):
    """`value`'s (accuracy's, or mAP's) mean, std and number of seeds per group, with the paper's
    number beside it. A run that never trained is a failed run: in no mean."""
    done = trained(frame)
    out = done.groupby(by, sort=False).agg(ours=(value, "mean"), std=(value, "std"),
                                           seeds=("seed", "count"),
                                           paper=("paper_score", "first"),
                                           paper_dataset=("paper_dataset", "first")).reset_index()
    out["difference"] = out.ours - out.paper
    return out


def heads(frame):
    """Table 3 analogue (Table 4 on a ResNet): each head at the top layer on each base network
    (the pre-trained ones and the random-encoder reference), ours (mean ± std over seeds) beside
    the paper's number for the base network it is or stands in for (BiGAN at conv5, VAE at conv8;
    ImageNet and Jigsaw ResNets on VOC07)."""
    return mean_std(frame[frame.table == tables(frame)[0]], ["base", "head", "layers"], metric(frame))


def heads_intervals(frame):
    """Each head's test score (`score`: accuracy, or mAP on Table 4) on each base network, at
    the top layer: its mean over seeds and the 95% interval of the effects (evidence.contrast of
    the one cell: over the seeds and the test sample), for the dot-and-interval plot. A cell with
    too few seeds for an interval has its mean alone (low and high NaN)."""
    rows = []
    value = metric(frame)
    t3 = converged(frame[(frame.table == tables(frame)[0]) & (frame.status == "done")])
    for (base, head, layers), runs in t3.groupby(["base", "head", "layers"], sort=False):
        cell = Cell(tables(frame)[0], head, layers, encoder=base)
        e = contrast(t3, head, {cell: 1})
        measured = e is not None and not math.isnan(e.mean)
        rows.append({"base": base, "head": head, "layers": layers,
                     "score": e.mean if measured else trained(runs)[value].mean(),
                     "low": e.low if measured else math.nan, "high": e.high if measured else math.nan,
                     "test_images": e.test_images if measured else None})
    return pd.DataFrame(rows, columns=["base", "head", "layers", "score", "low", "high", "test_images"])


def ablation(frame):
    """Table 1 analogue (Table 2 on a ResNet): rows (θ1, θ2, ω), columns (layers, head), plus
    its baselines."""
    t, value = frame[frame.table == tables(frame)[1]], metric(frame)
    cells = mean_std(t[t["head"].isin(["grad", "full"])], list(SOURCES) + ["layers", "head"], value)
    baselines = mean_std(t[t["head"].isin(["actv", "finetune"])], ["head", "layers"], value)
    return cells, baselines


def table1_wide(cells, value="ours"):
    """Table 1 laid out as the paper prints it: a row per source, a column per (layers, head)."""
    wide = cells.pivot_table(index=list(SOURCES), columns=["layers", "head"], values=value,
                             sort=False)
    return wide


def paper_ablation(table=1):
    """The paper's Table 1 (BiGAN, CIFAR-10) or Table 2 (ImageNet ResNet18 → VOC07, its blocks in
    our names: layer4.1 → block8) as it prints it: a row per (θ1, θ2, ω), a column per (layers,
    head), every depth; and its baselines (head, layers, paper)."""
    rows = pd.DataFrame([r for r in paper_numbers() if r["table"] == table])
    if table == 2:
        rows["layers"] = [block_names("resnet18", layers) for layers in rows.layers]
    cells = rows[rows["head"].isin(["grad", "full"])]
    wide = cells.pivot_table(index=list(SOURCES), columns=["layers", "head"], values="value", sort=False)
    baselines = rows[rows["head"].isin(["actv", "finetune"])][["head", "layers", "value"]]
    return wide, baselines.rename(columns={"value": "paper"}).reset_index(drop=True)


def step_costs(frame):
    """Per table, batch size, depth and head (all pre-trained): milliseconds per training step
    (mean over seeds) and the ratio to fine-tuning at the same table, depth and batch size, the
    one C6 judges: the geometric mean of per-seed ratios with its 95% interval (evidence.ratio)."""
    done = converged(own_base(frame[(frame.status == "done") & (frame.theta1 == "pretrained") &
                                    (frame.theta2 == "pretrained") & (frame.omega == "pretrained")]))
    done = done[done["base"] != "random"]  # the profile's own base network (Table 4's others: C8's)
    done = distinct_runs(done)
    rows = []
    for (table, batch, layers), runs in done.groupby(["table", "batch_size", "layers"], sort=False):
        finetune = Cell(table, "finetune", layers)
        for head in ("actv", "grad", "full", "finetune"):
            cell = runs[runs["head"] == head]
            if not len(cell):
                continue
            r = ratio(runs, "", Cell(table, head, layers), finetune) if head != "finetune" else None
            rows.append({"table": table, "batch": int(batch), "layers": layers, "head": head,
                         "ms per step": cell.ms_per_step.mean(), "seeds": cell.seed.nunique(),
                         "÷ finetune [95% interval]": "1" if head == "finetune" else
                         r.text() if r else "no fine-tuning at this depth"})
    return pd.DataFrame(rows)


def actv_level(curves, **where):
    """The activation baseline's best validation score (mean over seeds) among the curves
    matching `where` (e.g. base='random'): the reference line of every other head's panel."""
    actv = curves[curves["head"] == "actv"]
    for column, value in where.items():
        actv = actv[actv[column] == value]
    return actv.groupby("seed").score.max().mean() if len(actv) else None


def with_std(table):
    """'81.23 ± 0.40' (or the mean alone for one seed) for display."""
    return [f"{m:.2f} ± {s:.2f}" if n > 1 else f"{m:.2f}"
            for m, s, n in zip(table.ours, table["std"].fillna(0), table.seeds)]


def tables_run(params):
    """The paper's tables this profile's grid runs, e.g. [3, 1] (a base network other than the
    ALI encoder has no Table 1: grid.experiments)."""
    return list(dict.fromkeys(e.table for e in experiments(params)))


def table_params(params, table):
    """The parameters Table `table`'s runs resolve to: the profile's with its protocol
    (reproduce.heads or reproduce.ablation, that of the table whose shape it has: grid.PROTOCOL)
    applied."""
    section = PROTOCOL[table]
    return merge(params, params["reproduce"][section], f"reproduce.{section}")


def settings(overrides):
    """'data.n_train 16000, data.n_test 5000' for a nested mapping of parameters; 'none'."""
    def leaves(mapping, prefix=""):
        for key, value in mapping.items():
            yield from leaves(value, f"{prefix}{key}.") if isinstance(value, dict) else [(prefix + key, value)]
    return ", ".join(f"{key} {value}" for key, value in leaves(overrides)) or "none"


def ran_schedule(params, table, head, ran=None):
    """train.<head> as Table `table`'s runs of `head` resolved it: from `ran` (the experiments'
    summaries, each with its table and resolved parameters), the first of that table and head on
    the profile's own base network; else from the profile (table_params)."""
    for summary in ran or []:
        p = summary["params"]
        if summary["table"] == table and p["model"]["head"] == head and p["base"].get("encoder") != "random":
            return p["train"][head]
    return table_params(params, table)["train"][head]


def grid_edge(lr, grid):
    """' at the grid's lower edge', '… upper edge' or '': where a chosen rate sits in its grid."""
    if len(grid) < 2 or lr is None:
        return ""
    return (" at the grid's lower edge" if math.isclose(lr, min(grid)) else
            " at the grid's upper edge" if math.isclose(lr, max(grid)) else "")


def chosen_rates(runs):
    """(the rates the profile's own base network's runs trained at, their text, the other base
    networks' where they differ: ['random encoder: 1']), from results.csv's lr."""
    done = runs[runs.status == "done"].dropna(subset=["lr"]) if "lr" in runs else runs.iloc[:0]
    by_base = {base: sorted(set(rows.lr)) for base, rows in done.groupby("base", sort=False)}
    own_base = next((base for base in by_base if base != "random"), None)
    own = by_base.get(own_base)
    text = lambda rates: " or ".join(f"{lr:g}" for lr in rates)  # noqa: E731
    others = [f"{'random encoder' if base == 'random' else base}: {text(rates)}"
              for base, rates in by_base.items() if base != own_base and rates != own]
    return own, (text(own) if own else None), others


def head_settings(params, table, head, frame=None, ran=None):
    """A head's optimizer, learning rate, grid, alternatives and cap as Table `table` ran it: the
    rate from results.csv (frame: what each run trained at), marked where it sits at an edge of
    the grid it was chosen from; the rest from the runs' resolved parameters (ran_schedule)."""
    schedule = ran_schedule(params, table, head, ran)
    runs = frame[(frame.table == table) & (frame["head"] == head)] if frame is not None else None
    own, rates, others = chosen_rates(runs) if runs is not None and len(runs) else (None, None, [])
    grid, validated = schedule["lr_grid"], table_params(params, table)["train"]["val_fraction"]
    edges = sorted({grid_edge(lr, grid) for lr in own or []} - {""})
    lr = (f"lr {rates}" + (f" ({'; '.join(others)})" if others else "") if rates
          else f"lr {schedule['lr']:g}" + (" (not run)" if runs is not None else ""))
    return (f"{head} {schedule['optimizer']} {lr}"
            + (f" (w1 {schedule['w1_lr']:g})" if schedule.get("w1_lr") else "")
            + (f" (best on validation of {grid}{';'.join(edges)})" if grid else "")
            + "".join(f" or {', '.join(f'{k} {v:g}' if k != 'optimizer' else v for k, v in a.items())}"
                      for a in schedule["alternatives"])
            + (f" (the better on {'validation' if validated else 'test'}, chosen on the first seed)"
               if schedule["alternatives"] else "")
            + f", ≤{schedule['iterations']} iterations halving every {schedule['stepsize']}")


def protocol(params, table, frame=None, ran=None):
    """One sentence: the batch, data, schedule, stopping rule and seeds Table `table` ran with;
    each head's schedule as its runs had it (head_settings: frame is results.csv, ran the runs'
    resolved parameters; without them, the profile's)."""
    p = table_params(params, table)
    train, data, rep = p["train"], p["data"], p["reproduce"]
    n_train = data["n_train"] or "all"
    split = (f"{train['val_fraction']:.0%} of it held out for validation, every {train['eval_every']} "
             f"iterations, stopping after {train['patience']} evaluations without a new best"
             + (f" (not before iteration {train['min_iterations']})" if train["min_iterations"] else "")
             + " and reporting test accuracy at the best one" if train["val_fraction"] and train["patience"]
             else "no validation split, test accuracy at the end of training")
    heads = ", ".join(head_settings(params, table, h, frame, ran) for h in ("actv", "grad", "full", "finetune"))
    rows = "; ".join(f"{layers} rows {rows}" for layers, rows in rep["ablation_rows"].items() if rows)
    views = ""  # VOC07 and COCO2014: which views of each image were trained on and tested
    if data["dataset"] in VIEWED:
        views = (f"each as {data['train_views']} fixed random views, " if data["train_views"] > 1
                 else "each as its centre crop, ")
        tested = (f"{data['test_views']} random views of each averaged" if table in VIEWED_TABLES
                  and data["test_views"] > 1 else "each one's centre crop")
    return (f"Table {table}: batch {train['batch_size']}; training images {n_train} "
            f"({views}{split}); test images {data['n_test'] or 'all'}"
            + (f" ({tested})" if views else "") + f"; {heads}; seeds "
            f"{rep[f'{PROTOCOL[table]}_seeds']}" + (f"; {rows}" if SHAPE[table] == 1 else "") + ".")


def on_resnets(params):
    """True when the profile's base network is a ResNet (Tables 4 and 2, mAP): its architecture's
    tables (grid.tables), without building the grid."""
    return architecture_tables(params)[0] == 4


def family(params):
    """The pair of the paper's tables the profile's base network belongs to: (1, 3), or (2, 4) on
    a ResNet (OTHER_PROFILE's keys)."""
    return (2, 4) if on_resnets(params) else (1, 3)


def deviations(params, pretrain, frame=None, ran=None):
    """Every way this run's protocol differs from the paper's, from the resolved parameters and,
    for each head's schedule, from what its runs used (protocol: frame is results.csv, ran the
    experiments' summaries)."""
    train, p, data = params["train"], params["pretrain"], params["data"]
    resnets = on_resnets(params)
    return [
        f"Data set: {data['dataset']}; the paper's "
        + ("Tables 2 and 4 transfer ImageNet and Jigsaw ResNets to VOC07 and COCO2014"
           if resnets else "Tables 1 and 3 use CIFAR-10/100 and SVHN")
        + ", so its numbers stand beside ours for the direction of each effect, not as targets.",
        ("Schedules: the paper trains Tables 2 and 4 for 50 epochs at batch 64 (Adam lr 1e-3, halved "
         "every 20 epochs, β 0.5/0.999, weight decay 1e-6; fine-tuning also with SGD, reporting the "
         "better) and tests on a centre crop (Table 2) or ten random crops averaged (Table 4)."
         if resnets else
         "Schedules: the paper trains 80K iterations at batch 64 (Adam lr 1e-3, halved every 20K; "
         "for fine-tuning also SGD, reporting the better); the authors' public code uses SGD "
         "(momentum 0.9, batch 128, clip 10) for 50K–80K iterations.")
        + f" Here one optimiser per head (clip {train['clip_grad_norm']:g}), per table as follows.",
        *(protocol(params, table, frame, ran) for table in tables_run(params)),
        *([f"The full model trains w1 at lr {train['full']['w1_lr']:g} and w2 at the full model's lr "
           "(the authors: one rate for both); w1 starts at the activation baseline's optimum ω̄, "
           "and one rate high enough for w2 first knocked it off."] if train["full"]["w1_lr"] else []),
        f"NTK scale rule: {params['model']['ntk_scale']} "
        "(authors: s_w = sqrt(1/out_channels), s_b = sqrt(0.1)).",
        f"Pre-training: {p['objective']} for {pretrain['iterations'] if pretrain else '?'} updates at "
        f"batch {pretrain['params']['pretrain']['batch_size'] if pretrain else p['batch_size']}, lr "
        f"{pretrain['params']['pretrain']['lr'] if pretrain else p['lr']}, in "
        f"{pretrain['seconds'] / 60 if pretrain else float('nan'):.0f} min; "
        + ("the paper's ResNets pre-train on ImageNet's 1.28M images (with labels, or Jigsaw puzzles) "
           "for tens of epochs." if resnets else
           "ALI trains CIFAR-10 for thousands of epochs with N(0, 0.01) and lr 1e-4."),
        "Batch norm is folded into the convolutions before any head is trained; the random "
        "encoder's statistics are measured on training images.",
    ]


def scope(params, pretrain, frame, base_network=None):
    """What a reader must know before the claims, from the parameters and the runs themselves
    (base_network: reproduce's record of where the base network came from)."""
    rep, train, objective = params["reproduce"], params["train"], params["pretrain"]["objective"]
    tables = tables_run(params)
    done = converged(distinct_runs(frame[frame.status == "done"]))
    at_cap, failed = int((done.convergence == AT_CAP).sum()), int((done.convergence == NEVER_TRAINED).sum())
    unknown = int(done.convergence.isna().sum())
    base, network = OBJECTIVES[objective].label, ARCHITECTURES[params["base"]["arch"]].DESCRIPTION
    timed = done.dropna(subset=["iterations", "best_iteration"]) if {"iterations", "best_iteration"} <= \
        set(done) else done.iloc[:0]
    stops = "; ".join(f"Table {table} after a median of {g.iterations.median():.0f} iterations, its "
                      f"best validation at {g.best_iteration.median():.0f}"
                      for table, g in timed.groupby("table"))
    imported = (base_network or {}).get("source") == "imported"
    updates = (f"{pretrain['iterations']} updates" if pretrain else
               "its imported weights (not pre-trained here)" if imported else "no finished pre-training")
    if (base_network or {}).get("source") == "committed":
        updates += (", once: the committed encoder, the same file in every rerun (its sha256 and "
                    "how much pre-training reruns move the features: see the base network section)")
    others = [OBJECTIVES[o].label for o in rep["other_bases"]]
    return [
        f"Data set: {params['data']['dataset']}. The paper's numbers are on "
        + ("VOC07 and COCO2014 (mAP)" if on_resnets(params) else "CIFAR-10/100 and SVHN")
        + ": each claim is judged on effects inside these runs (grad − actv, pre-trained − random, "
        "...), never on our " + ("mAP" if on_resnets(params) else "accuracy") + " against the paper's.",
        (f"Base network: {base}, {updates}; a " if imported else
         f"Base network: {network}, pre-trained by {base}, for {updates}; a ")
        + "random encoder of the same architecture runs beside it as a reference."
        + (f" Table {tables[0]}'s heads also run on {'; '.join(others)} (C8's distant base network"
           + ("" if imported else ", pre-trained in the same reproduction on the same source task")
           + ")." if others else "")
        + (f" Why this one: the base network section sets its feature-quality curve beside the "
           f"{len(params['base']['compared'])} pre-training(s) tried for this data set instead "
           "(base.compared), each against its own random encoder."
           if params["base"].get("compared") else ""),
        f"Schedules: the paper's are {'50 epochs' if on_resnets(params) else '50K–80K iterations'}; here batch "
        f"{train['batch_size']}, validation split {train['val_fraction']:g}"
        + (f", every {train['eval_every']} iterations, patience {train['patience']}"
           if train["eval_every"] else "") + ", before each table's own settings ("
        + "; ".join(f"Table {t}'s: {settings(rep[PROTOCOL[t]])}" for t in tables)
        + f"). Runs stopped: {stops or 'none finished'}. "
        f"{at_cap} of {len(done)} runs were at their cap, still improving (their last evaluations beat "
        "the best before them by more than the standard error of that gain on the validation items), "
        f"{failed} never trained (failed runs, in no mean) and {unknown} were not validated "
        "(convergence unknown): verdicts that use them are inconclusive.",
        "Seeds: " + ", ".join(f"Table {t} {rep[f'{PROTOCOL[t]}_seeds']}" for t in tables)
        + "; a verdict needs ≥3 seeds per cell and a 95% interval clear of its threshold.",
        f"To rerun everything: `make reproduce PROFILE={params.get('profile', 'fashion-mnist')}` "
        "from a clean clone. To rerun one cell: delete its result file, the `.json` beside the "
        "executed notebook that results.csv's `notebook` column names (`runs/<run>-<run_key>`; a "
        f"Table {tables[-1]} cell that repeats a Table {tables[0]} run names that run), and run the same command again: "
        "only that run is made again, then the report is rebuilt.",
    ]


def stage_of(record):
    """The stage of a run from papermill's record in its executed notebook (the notebook it ran,
    its parameters): pre-training, Table 3, Table 1 <depth>, linearisation."""
    cell = record.get("parameters", {}).get("experiment")
    if cell:
        return f"Table {cell['table']}" + (f" {cell['layers']}" if SHAPE[cell["table"]] == 1 else "")
    notebook = Path(record.get("input_path") or "").stem
    return {"01_pretrain": "pre-training", "03_linearization": "linearisation"}.get(notebook, notebook)


def run_durations(runs_dir):
    """Minutes the executed notebooks took (papermill's own record) per stage: where the time of
    a reproduction went (kernel start and imports included; not the report itself)."""
    record = [json.loads(path.read_text())["metadata"].get("papermill", {})
              for path in sorted(Path(runs_dir).glob("*.ipynb"))]
    rows = [{"stage": stage_of(r), "seconds": r.get("duration") or 0.0}
            for r in record]
    frame = pd.DataFrame(rows, columns=["stage", "seconds"])
    return (frame.groupby("stage", sort=False).agg(runs=("seconds", "count"), minutes=("seconds", "sum"))
            .assign(minutes=lambda f: f.minutes / 60).reset_index())


# --- the first screen: what was reproduced, on what, and what it found -------------------------

LEFT_HEADERS = [{"selector": "th", "props": "text-align: left"}]
PAPER_SETTING, STAND_IN, NOT_COVERED = "reproduced on the paper's setting", "on a stand-in", "not covered"
VERDICT_COLOURS = {HOLDS: "#d8f0d8", HOLDS_IN_PART: "#e8efc8", FAILS: "#f6d5d5", INCONCLUSIVE: "#fbeec8",
                   NOT_RUN: "#e6e6e6"}
PAPER_TABLES = {  # the paper's tables: what they are, and the data sets its claims come from
    1: "Table 1: ablation of θ1, θ2, ω (BiGAN on CIFAR-10)",
    2: "Table 2: ablation, ImageNet ResNet-18 → VOC07 (mAP)",
    3: "Table 3: the four heads on BiGAN and VAE base networks (SVHN, CIFAR-10, CIFAR-100)",
    4: "Table 4: Jigsaw, colourisation and ImageNet ResNets → VOC07 and COCO2014 (mAP)",
}
# The tables each claim reads, in the shape of Table 3 (heads) or 1 (ablation): grid.SHAPE maps a
# ResNet's Tables 4 and 2 onto them. C8 is Table 4's alone.
CLAIM_SHAPES = {"C1": (3,), "C2": (3,), "C3": (1,), "C4": (1,), "C5": (3,), "C6": (1, 3),
                "C7": (3,), "C8": (4,)}
OTHER_PROFILE = {  # how to cover a table this profile does not run: (on a stand-in here, on the paper's)
    (1, 3): ("make reproduce PROFILE=fashion-mnist (a stand-in: under an hour on a CPU)",
             "make reproduce PROFILE=cifar10 (CIFAR-10 and a GPU)"),
    (2, 4): ("make reproduce PROFILE=fashion-mosaic (a stand-in at 64 px: a GPU's run, docs/tables-2-and-4.md)",
             "the ImageNet/Jigsaw ResNet weights (import-weights), the VOC07/COCO2014 archives and a GPU "
             "(docs/tables-2-and-4.md)"),
}


def claim_tables(claim, ran):
    """The paper's tables a claim reads on this profile's tables (`ran`: [3, 1] or [4, 2])."""
    if claim == "C8":
        return (4,)
    return tuple(t for shape in CLAIM_SHAPES[claim] for t in ran if SHAPE[t] == shape) or CLAIM_SHAPES[claim]


def stand_in(params):
    """(True when the data set and base network are the paper's, 'fashion-mnist, rotation
    prediction (…)'): what the profile's tables ran on."""
    dataset, objective = params["data"]["dataset"], OBJECTIVES[params["pretrain"]["objective"]]
    paper = (dataset in PAPER_DATASETS and objective.paper is not None
             or dataset in PAPER_TRANSFER_DATASETS and objective.stands_for is None and on_resnets(params))
    name = objective.label.split(" (")[0].split(",")[0]  # its name, without what it stands for
    return paper, f"{dataset}, {name}"


def coverage(params, frame, claims):
    """One row per table of the paper (1–4) and per claim (C1–C8): covered (reproduced on the
    paper's setting, on a stand-in, or not covered), on what, and why not or what would cover
    it on the paper's setting. claims: the verdict frame (claims.verdicts)."""
    paper, what = stand_in(params)
    done = frame[frame.status == "done"] if "status" in frame else frame
    status = PAPER_SETTING if paper else STAND_IN
    profile_tables = tables_run(params)
    own = family(params)
    to_paper = "" if paper else f"the paper's data and base network: {OTHER_PROFILE[own][1]}"
    rows = []
    for table, title in PAPER_TABLES.items():
        ran = done[done.table == table]
        if not len(ran):
            why = "not run by this profile"
            other = next(f for f in OTHER_PROFILE if table in f)
            if other != own:
                stand, real = OTHER_PROFILE[other]
                why += f"; to cover it: {stand}, or on the paper's setting {real}"
            rows.append({"item": title, "covered": NOT_COVERED, "on": "", "notes": why})
            continue
        depths = list(dict.fromkeys(ran.layers))
        missing = [d for d in params["reproduce"]["ablation_rows"] if d not in depths] if table == 1 else []
        notes = f"θ2 at {', '.join(depths)}" + (f"; {', '.join(missing)} not run "
                                                 "(reproduce.ablation_rows)" if missing else "")
        rows.append({"item": title, "covered": status, "on": what,
                     "notes": notes + (f"; to cover it: {to_paper}" if to_paper else "")})
    by_claim = claims.set_index("claim")
    for claim in by_claim.index:
        statement, verdict = by_claim.loc[claim, "statement"], by_claim.loc[claim, "verdict"]
        tables = " and ".join(f"Table {t}" for t in claim_tables(claim, profile_tables))
        if verdict == NOT_RUN:
            why = by_claim.loc[claim, "reason"] or "not run"
            rows.append({"item": f"{claim}: {statement}", "covered": NOT_COVERED, "on": "",
                         "notes": f"{tables}; {why}"})
        else:
            rows.append({"item": f"{claim}: {statement}", "covered": status, "on": what,
                         "notes": f"{tables}: {verdict}"})
    return pd.DataFrame(rows)


VERDICT_WORDS = {HOLDS: ("holds", "hold"), HOLDS_IN_PART: ("holds in part", "hold in part"),
                 FAILS: ("does not hold", "do not hold"),
                 INCONCLUSIVE: ("is inconclusive", "are inconclusive"), NOT_RUN: ("was not run", "were not run")}


PAPER_TOP_MAP = 7  # the side of the map the paper's ResNets' top block works on (224 px ImageNet images)


def top_map_line(params):
    """On a ResNet, the side of the map its top block (θ2) works on here, against the paper's: on
    a 1×1 map its 3×3 convolutions act through their centre taps only (the other 8 see zero
    padding), so the gradient term the paper studies is a fraction of itself there."""
    if not on_resnets(params):
        return []
    arch = ARCHITECTURES[params["base"]["arch"]]
    channels = SIZES[params["data"]["dataset"]][0]
    top, side = arch.LAYERS[-1], image_side(params["data"])
    map_side = arch(in_channels=channels).map_sides(side)[top]
    line = (f"On these {side} px images the top block ({top}, θ2) works on a {map_side}×{map_side} map; "
            f"the paper's ResNets' on {PAPER_TOP_MAP}×{PAPER_TOP_MAP}")
    if map_side == 1:
        line += (": its 3×3 convolutions act through their centre taps only (8 of 9 taps see zero padding), "
                 "so the gradient term is a fraction of the paper's, and the verdicts on it (C1, C3, C5) speak "
                 "for this stand-in, not for the method (docs/tables-2-and-4.md; data.mosaic_side)")
    return [line + "."]


def sensitivity_line(claims):
    """The sensitivity stage's outcome in a sentence, where it ran: which verdicts are robust and
    which fragile, and what flips them (the verdict table's column)."""
    if "sensitivity" not in claims:
        return []
    robust = [c for c, o in zip(claims.claim, claims.sensitivity) if o == "robust"]
    fragile = [f"{c} ({o.split(': ', 1)[1]})" for c, o in zip(claims.claim, claims.sensitivity)
               if o.startswith("fragile")]
    said = ([f"{', '.join(robust)} robust"] if robust else []) + ([f"{'; '.join(fragile)} fragile"] if fragile else [])
    return [f"With each claim's deciding runs trained again under the sensitivity stage's perturbations: "
            f"{'; '.join(said) or 'no verdict perturbed'}."]


def conclusion(params, frame, claims):
    """A few sentences: what was run, on what, what held (under which rules version, and which
    verdicts the previous rules gave otherwise), what the base network is worth against a random
    encoder (C3's and C4's precondition, on the profile's own base network: the number their detail
    shows), where the random encoder's effect is as large as the pre-trained one's (controls), what
    the sensitivity stage found, how many runs did not converge, what is not covered. Every number is the claims' (claims.verdicts)."""
    runs = distinct_runs(frame[frame.status == "done"])
    numbers = sorted(set(frame[frame.status == "done"].table), reverse=True)
    lines = [_what_ran(params, runs, numbers), _what_held(params, claims), rules_line(claims)]
    lines += _pretraining_line(frame)
    lines += controlled(claims) + top_map_line(params)
    lines += sensitivity_line(claims)
    lines += _convergence_lines(runs)
    lines += _not_covered_line(params, numbers, claims)
    return lines


def _what_ran(params, runs, numbers):
    """The conclusion's first sentence: how many runs of which tables, on what, with how many
    seeds (runs: each finished run once; numbers: the tables they ran, highest first)."""
    paper, _ = stand_in(params)
    tables = ("Tables " if len(numbers) > 1 else "Table ") + " and ".join(str(t) for t in numbers)
    first = tables_run(params)[0]
    seeds = len(set(runs[runs.table == first].seed)) if (runs.table == first).any() else len(set(runs.seed))
    dataset = params["data"]["dataset"]
    made = " and by ".join(OBJECTIVES[o].label.split(" (")[0] for o in
                           [params["pretrain"]["objective"], *params["reproduce"]["other_bases"]])
    where = ("the paper's setting" if paper else
             f"{dataset} with base networks pre-trained by {made}, stand-ins for the paper's ImageNet and "
             "Jigsaw ResNets on VOC07 and COCO2014" if on_resnets(params) else
             f"{dataset} with a base network pre-trained by {made}, a stand-in for the paper's BiGAN and "
             "VAE on CIFAR and SVHN")
    return (f"{len(runs)} runs of the paper's {tables} on {where}; {seeds} seeds per Table {first} "
            "cell, each claim judged on effects inside these runs.")


def _what_held(params, claims):
    """Which claims hold, fail, ... (VERDICT_WORDS), and what each claim not run needs."""
    parts = []
    for v, (one, many) in VERDICT_WORDS.items():
        codes = [c for c, verdict in zip(claims.claim, claims.verdict) if verdict == v]
        if codes:
            parts.append(f"{', '.join(codes)} {one if len(codes) == 1 else many}")
    not_run = [c for c, v in zip(claims.claim, claims.verdict)  # C8 off a ResNet: the last line says why
               if v == NOT_RUN and (c != "C8" or on_resnets(params))]
    return (f"Of the claims C1–C{len(claims)}: " + "; ".join(parts) + "."
            + "".join(f" {c} needs {NEEDS[c]}, which these runs do not include." for c in not_run))


def _pretraining_line(frame):
    """[what the base network's features gain over a random encoder's (C3's and C4's
    precondition), and what that says when it is barely above random]; [] without the reference."""
    gain = pretraining_gain(frame)
    if not gain:
        return []
    e = gain.effect
    return [f"The base network's features beat a random encoder's by "
            f"{dataclasses.replace(e, problem=None).text()} points (the activation "
            "baseline, pre-trained − random, on the profile's own base network: C3's and C4's "
            "precondition" + (f"; {e.problem}" if e.problem else "") + ")"
            + (f": barely above random (under the {PRETRAINING_MIN_GAIN:g} points asked of "
               "a base network before judging what pre-training contributes), so the heads' "
               "effects here owe little to pre-training." if e.low < PRETRAINING_MIN_GAIN
               else ".")]


def _convergence_lines(runs):
    """A sentence on the runs still improving at their cap and one on those that never trained,
    where there are any."""
    flags = converged(runs).convergence
    at_cap, failed = int((flags == AT_CAP).sum()), int((flags == NEVER_TRAINED).sum())
    lines = []
    if at_cap:
        lines.append(f"{at_cap} of {len(runs)} runs were still improving at their cap: the "
                     "verdicts that use them are inconclusive.")
    if failed:
        lines.append(f"{failed} of {len(runs)} runs never trained (best validation at their start): "
                     "failed runs, left out of every mean (Failed runs).")
    return lines


def _not_covered_line(params, numbers, claims):
    """[the paper's tables (and C8) this profile does not run, and the profile that runs them]."""
    other = next(f for f in OTHER_PROFILE if f != family(params))
    missing = [t for t in other if t not in numbers]
    c8 = "C8" in set(claims.claim[claims.verdict == NOT_RUN])
    if not missing:
        return []
    return [f"Tables {' and '.join(map(str, missing))} ("
            + ("BiGAN and VAE encoders on CIFAR and SVHN" if on_resnets(params) else
               "ImageNet ResNets → VOC07/COCO2014 mAP")
            + ")" + (" and claim C8 are" if c8 else " are") + " not covered by this profile: "
            f"{OTHER_PROFILE[other][0]} runs them."]


def controlled(claims):
    """A sentence per control (claims' `controls`) where the random encoder's effect is as large
    as the pre-trained one's, naming the claims about pre-training it bears on; [] where none is."""
    said = {}
    for claim, text in zip(claims.claim, claims.controls):
        for part in (p for p in text.split("; ") if p.endswith(" (as large)")):
            said.setdefault(part.removesuffix(" (as large)"), []).append(claim)
    return [f"Control ({', '.join(codes)}): on the {part.replace(': ', ' ', 1)}: as large, so the "
            f"pre-trained encoder's effect need not come from pre-training." for part, codes in said.items()]


def interval_method(claims, frame=None):
    """One sentence: what the verdict table's intervals cover (the seeds, and the test sample
    where the runs recorded which test images they got right, or mAP's jackknife pseudo-values
    over groups of test images: the frame's metric)."""
    measured = claims[claims.seeds.notna()]
    images = sorted(set(measured.test_images.dropna().astype(int)))
    seeds_alone = list(measured.claim[measured.test_images.isna()])
    if not images:
        return ("Each interval is a Student-t interval over the seeds alone: these runs did not "
                "record which test images they got right, so the test sample's own error is left out.")
    count = " or ".join(f"{n:,}" for n in images)
    if frame is not None and metric(frame) == "mean_ap":
        return (f"Each interval covers the seeds and the test sample ({count} images): mAP is no mean "
                f"over images, so each run records its delete-a-group jackknife pseudo-values over "
                f"{JACKKNIFE_GROUPS} fixed groups of test images, and SE² = s²/S + Var_g(d_g)/G, s being "
                "the spread of the S per-seed effects and d_g group g's pseudo-value of the effect "
                "averaged over the seeds (paired by seed and by group), at the Welch–Satterthwaite "
                "degrees of freedom" + (f"; {', '.join(seeds_alone)} over the seeds alone" if seeds_alone else "")
                + " (docs/tables-2-and-4.md).")
    return (f"Each interval covers the seeds and the test sample: its standard error is "
            f"SE² = s²/S + Var_i(d_i)/N, s being the spread of the S per-seed effects and d_i test "
            f"image i's effect averaged over the seeds (N = {count} images"
            + (", the same for every run" if len(images) == 1 else "")
            + ": paired by seed and by image), at the Welch–Satterthwaite degrees of freedom"
            + (f"; {', '.join(seeds_alone)} over the seeds alone" if seeds_alone else "")
            + " (docs/protocol.md).")


def verdict_table(claims):
    """The verdict table as HTML: per claim its verdict (coloured); for a claim of several tests,
    how many hold and which do not; the test that decided it and our effect for it with its
    interval; the runs behind the verdict; the random encoder's effect beside it (controls, C1, C3
    and C4); the paper's effect as its printed numbers give it, and the same rule's verdict on
    them; the rules version; where the sensitivity stage ran, the verdict's outcome under it
    (robust or fragile). Every number is the claims' detail's (claims.verdicts)."""
    perturbed = ["sensitivity"] if "sensitivity" in claims else []  # where the sensitivity stage ran
    shown = claims[["claim", "statement", "verdict", *perturbed, "tally", "decided_by", "effect", "runs", "controls",
                    "paper_effect", "paper_verdict", "rules_version"]].copy()
    partly = claims.verdict.isin([HOLDS_IN_PART, INCONCLUSIVE]) & (claims.tally != "")
    shown.loc[partly, "tally"] += [" (" + r.split("; ", 1)[1] + ")" if "; " in r else ""
                                   for r in claims.reason[partly]]
    shown = shown.rename(columns={
                        "sensitivity": "under perturbation", "tally": "tests that hold", "decided_by": "deciding test", "effect": "ours (95% interval)",
                        "runs": "runs behind it", "controls": "random encoder (control)",
                        "paper_effect": "paper (as printed)",
                        "paper_verdict": "same rule on the paper's numbers", "rules_version": "rules"})
    shown["rules"] = [f"v{v}" for v in shown["rules"]]
    for column in ("paper (as printed)", "same rule on the paper's numbers"):
        shown[column] = shown[column].replace("", "not reported")
    for column in shown.columns.difference(["runs behind it"]):  # "full − grad < 1.5": text, not markup
        shown[column] = shown[column].map(lambda v: html.escape(v) if isinstance(v, str) else v)
    return (styled(shown)
            .map(lambda v: f"background-color: {VERDICT_COLOURS.get(v, 'white')}", subset=["verdict"])
            .to_html())


def styled(frame, decimals=2):
    """A frame's Styler: text left, numbers right at fixed decimals, headers left, no index,
    empty cells for missing values."""
    numbers = frame.select_dtypes("number").columns
    return (frame.style.hide(axis="index").format(precision=decimals, na_rep="", subset=list(numbers))
            .format(na_rep="", subset=[c for c in frame.columns if c not in numbers])
            .set_properties(**{"text-align": "left"})
            .set_properties(subset=list(numbers), **{"text-align": "right"})
            .set_table_styles(LEFT_HEADERS))


def left_table(frame, decimals=2):
    """A frame as HTML (styled)."""
    return styled(frame, decimals).to_html()


def coded(wide):
    """A table1_wide frame with its rows as codes (ppp, prr: θ1, θ2, ω, p pre-trained and r
    random) and its columns as 'conv5 grad', for a figure's tick labels."""
    wide = wide.copy()
    wide.index = ["".join(s[0] for s in row) for row in wide.index]
    wide.columns = [f"{layers} {head}" for layers, head in wide.columns]
    return wide


def effects(frame, linearization=None):
    """One row per comparison a verdict rests on (rules and preconditions; C7's single numbers
    left out): claim, label, mean, low, high, threshold, unit, role, verdict, and the paper's
    effect for the same comparison (its numbers for the paper's data set matching ours, else
    CIFAR-10; VOC07 on a ResNet), where it printed the cells."""
    dataset = frame.dataset.iloc[0] if "dataset" in frame and len(frame) else None
    base = paper_base(frame)
    sets, reference = ((PAPER_TRANSFER_DATASETS, PAPER_TRANSFER_REFERENCE) if base in PAPER_RESNETS
                       else (PAPER_DATASETS, PAPER_REFERENCE))
    paper = paper_assessment(dataset if dataset in sets else reference, base)
    printed = {c.effect.label: c.effect.mean for _, _, _, cs in paper.values() for c in cs}
    rows = []
    for claim, (_, _, _, comparisons) in assess(frame, linearization).items():
        for c in comparisons:
            e = c.effect
            if c.role not in ("rule", "precondition") or e.unit not in ("points", "share", "×"):
                continue
            rows.append({"claim": claim, "label": e.label, "mean": e.mean, "low": e.low, "high": e.high,
                         "threshold": c.threshold, "above": c.above, "unit": e.unit, "role": c.role,
                         "verdict": c.verdict, "paper": printed.get(e.label)})
    return pd.DataFrame(rows)
