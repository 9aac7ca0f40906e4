"""The report's tables, figures and prose, from results.csv and the experiments' summaries
(gradfeat_core.suite.results): the tables set beside the paper's, what the runs did, how they
differ from the paper's protocol."""
import json
from pathlib import Path

import pandas as pd

from ..experiments.params import merge
from ..method.registry import ARCHITECTURES
from ..method.registry import OBJECTIVES
from .evidence import converged
from .results import SOURCES

def show(fig, alt):
    """Display a matplotlib figure (or a seaborn grid) as a PNG with alt text, and close it."""
    import io
    import matplotlib.pyplot as plt
    from IPython.display import Image, display
    fig = getattr(fig, "figure", fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    display(Image(data=buffer.getvalue(), format="png", alt=alt))


def mean_std(frame, by):
    """Accuracy mean, std and number of seeds per group, with the paper's number beside it."""
    done = frame[frame.status == "done"]
    out = done.groupby(by, sort=False).agg(ours=("accuracy", "mean"), std=("accuracy", "std"),
                                           seeds=("seed", "count"),
                                           paper=("paper_accuracy", "first"),
                                           paper_dataset=("paper_dataset", "first")).reset_index()
    out["difference"] = out.ours - out.paper
    return out


def table3(frame):
    """Table 3 analogue: each head at the top layer on each base network (the pre-trained one and
    the random-encoder reference), ours (mean ± std over seeds) beside the paper's number for
    that base network (BiGAN at conv5, VAE at conv8)."""
    return mean_std(frame[frame.table == 3], ["base", "head", "layers"])


def table1(frame):
    """Table 1 analogue: rows (θ1, θ2, ω), columns (layers, head), plus its baselines."""
    t = frame[frame.table == 1]
    cells = mean_std(t[t["head"].isin(["grad", "full"])], list(SOURCES) + ["layers", "head"])
    baselines = mean_std(t[t["head"].isin(["actv", "finetune"])], ["head", "layers"])
    return cells, baselines


def table1_wide(cells, value="ours"):
    """Table 1 laid out as the paper prints it: a row per source, a column per (layers, head)."""
    wide = cells.pivot_table(index=list(SOURCES), columns=["layers", "head"], values=value,
                             sort=False)
    return wide


def step_costs(frame):
    """Milliseconds per training step per head and depth (batch size as run), and the ratio
    to fine-tuning at the same depth and batch size, measured in the same reproduction."""
    done = frame[(frame.status == "done") & (frame.theta1 == "pretrained") &
                 (frame.theta2 == "pretrained") & (frame.omega == "pretrained") &
                 (frame["base"] != "random")]
    cost = done.groupby(["table", "batch_size", "layers", "head"])["ms_per_step"].median().unstack("head")
    if "finetune" in cost:
        for head in ("grad", "full"):
            if head in cost:
                cost[f"{head} ÷ finetune"] = cost[head] / cost["finetune"]
    return cost.reset_index()


def actv_level(curves, **where):
    """The activation baseline's best validation accuracy (mean over seeds) among the curves
    matching `where` (e.g. base='random'): the reference line of every other head's panel."""
    actv = curves[curves["head"] == "actv"]
    for column, value in where.items():
        actv = actv[actv[column] == value]
    return actv.groupby("seed").accuracy.max().mean() if len(actv) else None


def with_std(table):
    """'81.23 ± 0.40' (or the mean alone for one seed) for display."""
    return [f"{m:.2f} ± {s:.2f}" if n > 1 else f"{m:.2f}"
            for m, s, n in zip(table.ours, table["std"].fillna(0), table.seeds)]


def table_params(params, table):
    """The parameters Table `table`'s runs resolve to: the profile's with its protocol
    (reproduce.table<table>) applied."""
    return merge(params, params["reproduce"][f"table{table}"], f"reproduce.table{table}")


def settings(overrides):
    """'data.n_train 16000, data.n_test 5000' for a nested mapping of parameters; 'none'."""
    def leaves(mapping, prefix=""):
        for key, value in mapping.items():
            yield from leaves(value, f"{prefix}{key}.") if isinstance(value, dict) else [(prefix + key, value)]
    return ", ".join(f"{key} {value}" for key, value in leaves(overrides)) or "none"


def protocol(params, table):
    """One sentence: the batch, data, schedule, stopping rule and seeds Table `table` ran with."""
    p = table_params(params, table)
    train, data, rep = p["train"], p["data"], p["reproduce"]
    n_train = data["n_train"] or "all"
    split = (f"{train['val_fraction']:.0%} of it held out for validation, every {train['eval_every']} "
             f"iterations, stopping after {train['patience']} evaluations without a new best"
             + (f" (not before iteration {train['min_iterations']})" if train["min_iterations"] else "")
             + " and reporting test accuracy at the best one" if train["val_fraction"] and train["patience"]
             else "no validation split, test accuracy at the end of training")
    heads = ", ".join(f"{h} {train[h]['optimizer']} lr {train[h]['lr']:g}"
                      + (f" (w1 {train[h]['w1_lr']:g})" if train[h].get("w1_lr") else "")
                      + (f" (best on validation of {train[h]['lr_grid']})" if train[h]["lr_grid"] else "")
                      + f", ≤{train[h]['iterations']} iterations halving every {train[h]['stepsize']}"
                      for h in ("actv", "grad", "full", "finetune"))
    rows = "; ".join(f"{layers} rows {rows}" for layers, rows in rep["table1_rows"].items() if rows)
    return (f"Table {table}: batch {train['batch_size']}; training images {n_train} "
            f"({split}); test images {data['n_test'] or 'all'}; {heads}; seeds "
            f"{rep[f'table{table}_seeds']}" + (f"; {rows}" if table == 1 else "") + ".")


def deviations(params, pretrain):
    """Every way this run's protocol differs from the paper's, from the resolved parameters."""
    train, p, data = params["train"], params["pretrain"], params["data"]
    return [
        f"Data set: {data['dataset']}; the paper's Tables 1 and 3 use CIFAR-10/100 and SVHN, so "
        "its numbers stand beside ours for the direction of each effect, not as targets.",
        "Schedules: the paper trains 80K iterations at batch 64 (Adam lr 1e-3, halved every 20K; "
        "for fine-tuning also SGD, reporting the better); the authors' public code uses SGD "
        "(momentum 0.9, batch 128, clip 10) for 50K–80K iterations. Here one optimiser per head "
        f"(clip {train['clip_grad_norm']:g}), per table as follows.",
        protocol(params, 3),
        protocol(params, 1),
        *([f"The full model trains w1 at lr {train['full']['w1_lr']:g} and w2 at the full model's lr "
           "(the authors: one rate for both); w1 starts at the activation baseline's optimum ω̄, "
           "and one rate high enough for w2 first knocked it off."] if train["full"]["w1_lr"] else []),
        f"NTK scale rule: {params['model']['ntk_scale']} "
        "(authors: s_w = sqrt(1/out_channels), s_b = sqrt(0.1)).",
        f"Pre-training: {p['objective']} for {pretrain['iterations'] if pretrain else '?'} updates at "
        f"batch {pretrain['params']['pretrain']['batch_size'] if pretrain else p['batch_size']}, lr "
        f"{pretrain['params']['pretrain']['lr'] if pretrain else p['lr']}, in "
        f"{pretrain['seconds'] / 60 if pretrain else float('nan'):.0f} min; ALI trains CIFAR-10 "
        "for thousands of epochs with N(0, 0.01) and lr 1e-4.",
        "Batch norm is folded into the convolutions before any head is trained; the random "
        "encoder's statistics are measured on training images.",
    ]


def scope(params, pretrain, frame, base_network=None):
    """What a reader must know before the claims, from the parameters and the runs themselves
    (base_network: reproduce's record of where the base network came from)."""
    rep, train, objective = params["reproduce"], params["train"], params["pretrain"]["objective"]
    done = converged(frame[frame.status == "done"])
    not_converged = int((done.convergence_known & ~done.converged).sum())
    unknown = int((~done.convergence_known).sum())
    base, network = OBJECTIVES[objective].label, ARCHITECTURES[params["base"]["arch"]].DESCRIPTION
    timed = done.dropna(subset=["iterations", "best_iteration"]) if {"iterations", "best_iteration"} <= \
        set(done) else done.iloc[:0]
    stops = "; ".join(f"Table {table} after a median of {g.iterations.median():.0f} iterations, its "
                      f"best validation at {g.best_iteration.median():.0f}"
                      for table, g in timed.groupby("table"))
    updates = f"{pretrain['iterations']} updates" if pretrain else "no finished pre-training"
    if (base_network or {}).get("source") == "committed":
        updates += (", once: the committed encoder, the same file in every rerun (its sha256 and "
                    "how much pre-training reruns move the features: see the base network section)")
    return [
        f"Data set: {params['data']['dataset']}. The paper's numbers are on CIFAR-10/100 and SVHN: "
        "each claim is judged on effects inside these runs (grad − actv, pre-trained − random, "
        "...), never on our accuracy against the paper's.",
        f"Base network: {network}, pre-trained by {base}, for {updates}; a "
        "random encoder of the same architecture runs beside it as a reference."
        + (f" Why this one: the base network section sets its feature-quality curve beside the "
           f"{len(params['base']['compared'])} pre-training(s) tried for this data set instead "
           "(base.compared), each against its own random encoder."
           if params["base"].get("compared") else ""),
        f"Schedules are far shorter than the paper's 50K–80K iterations (batch "
        f"{train['batch_size']}, validation split {train['val_fraction']:g}"
        + (f", every {train['eval_every']} iterations, patience {train['patience']}"
           if train["eval_every"] else "") + ", before each table's "
        f"own settings; Table 3's: {settings(rep['table3'])}; Table 1's: "
        f"{settings(rep['table1'])}). Runs stopped: {stops or 'none finished'}. "
        f"{not_converged} of {len(done)} runs were "
        f"still improving at their cap (by more than one standard error of validation "
        f"accuracy) or never beat their start and {unknown} were not validated (convergence unknown): "
        "verdicts that use them are inconclusive.",
        f"Seeds: Table 3 {rep['table3_seeds']}, Table 1 {rep['table1_seeds']}; a verdict needs "
        "≥3 seeds per cell and a 95% interval clear of its threshold.",
        f"To rerun everything: `make reproduce PROFILE={params.get('profile', 'fashion-mnist')}` "
        "from a clean clone. To rerun one cell: delete its result file, the `.json` beside the "
        "executed notebook that results.csv's `notebook` column names (`runs/<run>-<run_key>`; a "
        "Table 1 cell that repeats a Table 3 run names that run), and run the same command again: "
        "only that run is made again, then the report is rebuilt.",
    ]


def stage_of(record):
    """The stage of a run from papermill's record in its executed notebook (the notebook it ran,
    its parameters): pre-training, Table 3, Table 1 <depth>, linearisation."""
    cell = record.get("parameters", {}).get("experiment")
    if cell:
        return f"Table {cell['table']}" + (f" {cell['layers']}" if cell["table"] == 1 else "")
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
