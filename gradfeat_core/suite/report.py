"""Result handling for `reproduce` and the report: one row per (experiment, seed) in
results.csv, the tables set beside the paper's, the figures."""
import json
import re
from pathlib import Path

import pandas as pd

from ..experiments.params import merge, parse_set
from .grid import paper_value

COLUMNS = ["dataset", "base", "head", "layers", "theta1", "theta2", "omega", "seed", "accuracy",
           "paper_accuracy", "paper_dataset", "status", "table", "experiment", "iterations",
           "batch_size", "lr", "train_seconds", "ms_per_step", "converged", "best_iteration", "error",
           "run_key", "notebook"]
SOURCES = ("theta1", "theta2", "omega")


def experiment_result(experiment, table, params, seeds, results):
    """What 02_heads writes as its last act: the experiment, its parameters, one entry per seed."""
    keep = ("seed", "accuracy", "iterations", "train_seconds", "setup_seconds", "loss_history",
            "checkpoint", "path", "validation_curve", "best_iteration", "converged", "selected",
            "iterations_cap", "seconds_per_step", "lr", "lr_grid", "lr_chosen_on_seed")
    return {"experiment": experiment, "table": table, "status": "done", "seeds": seeds,
            "params": params, "runs": [{k: r.get(k) for k in keep} for r in results],
            "environment": results[0]["environment"] if results else None}


def base_name(params):
    """The base network of a run as results.csv names it: 'random' for the random-encoder
    reference, else its pre-training ('bigan-ali', 'bigan-wali', 'rotation')."""
    if params["base"].get("encoder") == "random":
        return "random"
    objective = params["pretrain"]["objective"]
    return objective if objective == "rotation" else f"bigan-{objective}"


def _rows(summary):
    """results.csv rows of one experiment (finished or failed)."""
    p = summary["params"]
    model, base = p["model"], base_name(p)
    paper, paper_dataset = paper_value(summary["table"], p["data"]["dataset"], model["head"],
                                       model["layers"], *(model[k] for k in SOURCES))
    if base == "random":  # the random-encoder reference: the paper has no such row
        paper = paper_dataset = None
    common = {"dataset": p["data"]["dataset"], "base": base, "head": model["head"],
              "layers": model["layers"], **{k: model[k] for k in SOURCES},
              "paper_accuracy": paper, "paper_dataset": paper_dataset,
              "status": summary["status"], "table": summary["table"],
              "experiment": summary["experiment"], "batch_size": p["train"]["batch_size"],
              "error": summary.get("error"), **run_files(summary.get("source"))}
    if summary["status"] != "done":
        return [dict(common, seed=s) for s in summary["seeds"]]
    return [dict(common, seed=r["seed"], accuracy=100 * r["accuracy"], iterations=r["iterations"],
                 train_seconds=r["train_seconds"],
                 ms_per_step=1000 * r["train_seconds"] / r["iterations"],
                 converged=r.get("converged"), best_iteration=r.get("best_iteration"), lr=r.get("lr"))
            for r in summary["runs"]]


def results_frame(summaries):
    """One row per (experiment, seed); accuracy in % as the paper prints it."""
    rows = [row for s in summaries for row in _rows(s)]
    return pd.DataFrame(rows, columns=COLUMNS)


def load_summaries(entries):
    """The result JSONs of experiments, each with the path it was read from ('source'). An
    entry is a path, or {'path', 'experiment', 'table'}: a run that also stands for another
    table's cell (the same parameters and seeds: grid.twins), read as that cell."""
    out = []
    for entry in entries:
        entry = entry if isinstance(entry, dict) else {"path": entry}
        as_cell = {k: v for k, v in entry.items() if k != "path"}
        out.append(dict(json.loads(Path(entry["path"]).read_text()), source=str(entry["path"]), **as_cell))
    return out


def run_files(source):
    """{'run_key', 'notebook'} of the run whose result file is `source` (<name>-<key>.json in
    runs/): the key reproduce gave it and its executed notebook, relative to the report."""
    if not source:
        return {"run_key": None, "notebook": None}
    path = Path(source)
    return {"run_key": path.stem.rsplit("-", 1)[-1], "notebook": f"runs/{path.stem}.ipynb"}


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


def loss_curves(summaries):
    """Long frame of training losses: experiment, head, layers, seed, iteration, loss."""
    rows = [{"experiment": s["experiment"], "head": s["params"]["model"]["head"],
             "layers": s["params"]["model"]["layers"], "seed": r["seed"], "iteration": it,
             "loss": loss}
            for s in summaries if s["status"] == "done" for r in s["runs"]
            for it, loss in r["loss_history"]]
    return pd.DataFrame(rows, columns=["experiment", "head", "layers", "seed", "iteration", "loss"])


def validation_curves(summaries):
    """Long frame of validation accuracy from iteration 0: experiment, table, base, head,
    layers, source (θ1θ2ω initials), seed, iteration, accuracy (%). Empty when the runs did not
    validate (train.eval_every 0)."""
    columns = ["experiment", "table", "base", "head", "layers", "source", "seed", "iteration", "accuracy"]
    rows = [{"experiment": s["experiment"], "table": s["table"], "base": base_name(s["params"]),
             "head": s["params"]["model"]["head"], "layers": s["params"]["model"]["layers"],
             "source": "".join(s["params"]["model"][k][0] for k in SOURCES),
             "seed": r["seed"], "iteration": it, "accuracy": 100 * acc}
            for s in summaries if s["status"] == "done" for r in s["runs"]
            for it, acc in (r.get("validation_curve") or [])]
    return pd.DataFrame(rows, columns=columns)


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
    """The parameters Table `table`'s runs resolve to: the profile's with its
    reproduce.table<table>_set overrides applied."""
    for assignment in params["reproduce"][f"table{table}_set"]:
        params = merge(params, parse_set(assignment), assignment)
    return params


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
    from .evidence import converged  # evidence imports this module
    rep, train, objective = params["reproduce"], params["train"], params["pretrain"]["objective"]
    done = converged(frame[frame.status == "done"])
    not_converged = int((done.convergence_known & ~done.converged).sum())
    unknown = int((~done.convergence_known).sum())
    base = {"rotation": "rotation prediction (Gidaris et al. 2018), an extension beyond the paper, "
                        "which pre-trains BiGAN and VAE encoders",
            "vae": "a VAE (the paper's Table 3, lower half)"}.get(objective, f"BiGAN ({objective})")
    vae = params["base"].get("arch") == "vae"  # runs made before base.arch existed are ALI's
    network = "the VAE's eight-conv encoder (Berthelot et al. 2019)" if vae else "the paper's five-conv encoder"
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
        f"overrides; Table 3's: {', '.join(rep['table3_set']) or 'none'}; Table 1's: "
        f"{', '.join(rep['table1_set']) or 'none'}). Runs stopped: {stops or 'none finished'}. "
        f"{not_converged} of {len(done)} runs were "
        f"still improving at their cap (by more than one standard error of validation "
        f"accuracy) or never beat their start and {unknown} were not validated (convergence unknown): "
        "verdicts that use them are inconclusive.",
        f"Seeds: Table 3 {rep['table3_seeds']}, Table 1 {rep['table1_seeds']}; a verdict needs "
        "≥3 seeds per cell and a 95% interval clear of its threshold.",
        f"To rerun everything: `make reproduce PROFILE={params.get('profile', 'fashion-mnist')}` "
        "from a clean clone. To rerun one cell: delete its result file `runs/<experiment>-<run_key>"
        ".json` (results.csv gives both, and the executed notebook beside it) and run the same "
        "command again: only that experiment runs, then the report is rebuilt.",
    ]


def stage_of(run_name):
    """'pretrain-ali' -> pre-training, 't3-grad-conv5' -> Table 3, 't1-full-conv4-5-rrp' ->
    Table 1 conv4-5; anything else is its own stage."""
    layers = re.match(r"t1-[a-z]+-(conv\d(?:-\d)?)", run_name)
    return ("pre-training" if run_name.startswith("pretrain") else "Table 3" if run_name.startswith("t3-")
            else f"Table 1 {layers.group(1)}" if layers else run_name)


def run_durations(runs_dir):
    """Minutes the executed notebooks took (papermill's own record) per stage: where the time of
    a reproduction went (kernel start and imports included; not the report itself)."""
    rows = [{"stage": stage_of(path.stem.rsplit("-", 1)[0]),
             "seconds": json.loads(path.read_text())["metadata"].get("papermill", {}).get("duration") or 0.0}
            for path in sorted(Path(runs_dir).glob("*.ipynb"))]
    frame = pd.DataFrame(rows, columns=["stage", "seconds"])
    return (frame.groupby("stage", sort=False).agg(runs=("seconds", "count"), minutes=("seconds", "sum"))
            .assign(minutes=lambda f: f.minutes / 60).reset_index())


def report_dir_for(profile, report_dir=None, log=print):
    """The out_dir of a reproduce run to report on: report_dir (relative to the repository
    root) or the profile's own (reports/<profile>). With no run there yet, `reproduce` of the
    profile runs first: what 04_report does when opened with its defaults."""
    from ..experiments.params import load_params
    from ..experiments.results import ROOT
    path = Path(report_dir) if report_dir else Path(load_params(profile)["out_dir"])
    path = path if path.is_absolute() else ROOT / path
    if not (path / "report-inputs.json").is_file():
        from .reproduce import reproduce  # reproduce imports this module
        log(f"no reproduce run in {path} yet: running `reproduce --profile {profile}` first")
        reproduce(profile, [f"out_dir={path}"] if report_dir else [])
    return path
