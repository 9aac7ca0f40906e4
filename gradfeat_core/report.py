"""Result handling for `reproduce` and the report: one row per (experiment, seed) in
results.csv, the tables set beside the paper's, the figures."""
import json
import re
from pathlib import Path

import pandas as pd

from .grid import paper_value

COLUMNS = ["dataset", "base", "head", "layers", "theta1", "theta2", "omega", "seed", "accuracy",
           "paper_accuracy", "paper_dataset", "status", "table", "experiment", "iterations",
           "batch_size", "train_seconds", "ms_per_step", "converged", "best_iteration", "error"]
SOURCES = ("theta1", "theta2", "omega")


def experiment_result(experiment, table, params, seeds, results):
    """What 02_heads writes as its last act: the experiment, its parameters, one entry per seed."""
    keep = ("seed", "accuracy", "iterations", "train_seconds", "setup_seconds", "loss_history",
            "checkpoint", "path", "validation_curve", "best_iteration", "converged", "selected",
            "iterations_cap", "seconds_per_step")
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
              "error": summary.get("error")}
    if summary["status"] != "done":
        return [dict(common, seed=s) for s in summary["seeds"]]
    return [dict(common, seed=r["seed"], accuracy=100 * r["accuracy"], iterations=r["iterations"],
                 train_seconds=r["train_seconds"],
                 ms_per_step=1000 * r["train_seconds"] / r["iterations"],
                 converged=r.get("converged"), best_iteration=r.get("best_iteration"))
            for r in summary["runs"]]


def results_frame(summaries):
    """One row per (experiment, seed); accuracy in % as the paper prints it."""
    rows = [row for s in summaries for row in _rows(s)]
    return pd.DataFrame(rows, columns=COLUMNS)


def load_summaries(paths):
    return [json.loads(Path(p).read_text()) for p in paths]


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
    """Table 3 analogue: each head at conv5 on each base network (the pre-trained one and the
    random-encoder reference), ours (mean ± std over seeds) beside the paper's BiGAN number."""
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
    """Long frame of validation accuracy from iteration 0: experiment, base, head, layers, seed,
    iteration, accuracy (%). Empty when the runs did not validate (train.eval_every 0)."""
    columns = ["experiment", "base", "head", "layers", "seed", "iteration", "accuracy"]
    rows = [{"experiment": s["experiment"], "base": base_name(s["params"]),
             "head": s["params"]["model"]["head"], "layers": s["params"]["model"]["layers"],
             "seed": r["seed"], "iteration": it, "accuracy": 100 * acc}
            for s in summaries if s["status"] == "done" for r in s["runs"]
            for it, acc in (r.get("validation_curve") or [])]
    return pd.DataFrame(rows, columns=columns)


def with_std(table):
    """'81.23 ± 0.40' (or the mean alone for one seed) for display."""
    return [f"{m:.2f} ± {s:.2f}" if n > 1 else f"{m:.2f}"
            for m, s, n in zip(table.ours, table["std"].fillna(0), table.seeds)]


def deviations(params, pretrain):
    """Every way this run's protocol differs from the paper's, from the resolved parameters."""
    train, rep, p = params["train"], params["reproduce"], params["pretrain"]
    data = params["data"]

    def schedule(sets, table):
        heads = ", ".join(f"{h} {train[h]['iterations']}" for h in ("actv", "grad", "full", "finetune"))
        return (f"Table {table}: iterations {heads} before these overrides: "
                f"{', '.join(sets) if sets else 'none'}")
    lines = [
        f"Data set: {data['dataset']} (n_train {data['n_train'] or 'all'}, n_test {data['n_test'] or 'all'}); "
        "the paper's Tables 1 and 3 use CIFAR-10/100 and SVHN, so its numbers stand beside ours "
        "for the direction of each effect, not as targets.",
        f"Schedules (batch {train['batch_size']}, the authors' public SGD code, clip "
        f"{train['clip_grad_norm']}): the paper trains 80K iterations (Adam) and the public code "
        f"50K–80K; here {schedule(rep['table3_set'], 3)}; {schedule(rep['table1_set'], 1)}.",
        f"Optimisers: actv {train['actv']['optimizer']} lr {train['actv']['lr']}, grad/full "
        f"{train['grad']['optimizer']} lr {train['grad']['lr']}, finetune "
        f"{train['finetune']['optimizer']} lr {train['finetune']['lr']}; the paper reports the "
        "better of Adam and SGD for fine-tuning, here one optimiser is run." + "".join(
            f" {h}: the learning rate best on validation of {train[h]['lr_grid']}."
            for h in ("actv", "grad", "full", "finetune") if train[h].get("lr_grid")),
        f"NTK scale rule: {params['model']['ntk_scale']} "
        "(authors: s_w = sqrt(1/out_channels), s_b = sqrt(0.1)).",
        f"Pre-training: {p['objective']} for {pretrain['iterations'] if pretrain else '?'} updates at "
        f"batch {p['batch_size']}, lr {p['lr']}, init "
        f"{'N(0, %s)' % p['init_std'] if p['init_std'] else 'PyTorch default (fan-in)'}, in "
        f"{pretrain['seconds'] / 60 if pretrain else float('nan'):.0f} min; ALI trains CIFAR-10 "
        "for thousands of epochs with N(0, 0.01) and lr 1e-4.",
        f"Seeds: Table 3 {rep['table3_seeds']}, Table 1 {rep['table1_seeds']} "
        f"at depths {', '.join(rep['table1_layers'])}.",
        "Batch norm is folded into the convolutions before any head is trained; the random "
        "encoder's statistics are measured on training images.",
    ]
    return lines


def scope(params, pretrain, frame):
    """What a reader must know before the claims, from the parameters and the runs themselves."""
    from .evidence import converged  # evidence imports this module
    rep, train, objective = params["reproduce"], params["train"], params["pretrain"]["objective"]
    done = converged(frame[frame.status == "done"])
    not_converged = int((done.convergence_known & ~done.converged).sum())
    unknown = int((~done.convergence_known).sum())
    base = ("rotation prediction (Gidaris et al. 2018), an extension beyond the paper, which "
            "pre-trains BiGAN and VAE encoders" if objective == "rotation" else f"BiGAN ({objective})")
    updates = f"{pretrain['iterations']} updates" if pretrain else "no finished pre-training"
    return [
        f"Data set: {params['data']['dataset']}. The paper's numbers are on CIFAR-10/100 and SVHN: "
        "each claim is judged on effects inside these runs (grad − actv, pre-trained − random, "
        "...), never on our accuracy against the paper's.",
        f"Base network: the paper's five-conv encoder, pre-trained by {base}, for {updates}; a "
        "random encoder of the same architecture runs beside it as a reference.",
        f"Schedules are far shorter than the paper's 50K–80K iterations (batch "
        f"{train['batch_size']}, validation split {train['val_fraction']:g}, every "
        f"{train['eval_every']} iterations, patience {train['patience']}, before each table's "
        f"overrides; Table 3's: {', '.join(rep['table3_set']) or 'none'}; Table 1's: "
        f"{', '.join(rep['table1_set']) or 'none'}). {not_converged} of {len(done)} runs were "
        f"still improving at their cap and {unknown} were not validated (convergence unknown): "
        "verdicts that use them are inconclusive.",
        f"Seeds: Table 3 {rep['table3_seeds']}, Table 1 {rep['table1_seeds']}; a verdict needs "
        "≥3 seeds per cell and a 95% interval clear of its threshold.",
        f"To rerun: `make reproduce PROFILE={params.get('profile', 'fashion-mnist')}` from a clean "
        "clone; every run's notebook and result JSON are under the report's runs/ folder.",
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
