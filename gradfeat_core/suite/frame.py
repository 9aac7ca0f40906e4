"""The results frame, at the bottom of the suite: the experiments' summaries (what 02_heads writes
as its last act: RunRecord.summary) read into results.csv (one row per experiment and seed) and
the long frames of training curves, all from RunResult's one field list. The result files
themselves (writing, RunResult, environment) are the experiments layer's:
gradfeat_core.experiments.results."""
import json
from pathlib import Path

import pandas as pd

from ..experiments.results import CSV_FIELDS
from .grid import paper_value

SOURCES = ("theta1", "theta2", "omega")
# results.csv: the experiment's columns, then each run's (RunResult's csv fields). paper_score is
# the paper's number in the row's metric (accuracy, or mAP on Tables 2 and 4); accuracy is the
# run's accuracy alone (none on a multi-label set, whose score is mean_ap)
EXPERIMENT_COLUMNS = ["dataset", "base", "head", "layers", *SOURCES, "paper_score", "paper_dataset",
                      "status", "table", "experiment", "batch_size", "error", "run_key", "notebook"]
COLUMNS = EXPERIMENT_COLUMNS + CSV_FIELDS + ["test_views"]
PERCENT = ("accuracy", "mean_ap", "mean_ap_voc07")  # fractions in a run's JSON, % in results.csv
VIEWED_TABLES = (4,)  # Table 4 averages ten random crops at test; Table 2 predicts from the centre
# crop: a Table 4 row reads the run's views (RunResult.views) where it scored some


def measured(run, table):
    """A run's test measurement as `table` reports it (RunResult fields), with test_views: how
    many views of each test image were averaged (1: the centre crop; None: not a mAP run)."""
    views = run.get("views") if table in VIEWED_TABLES else None
    if views:
        return {**run, **views}
    return dict(run, test_views=1 if run.get("metric") == "mAP" else None)


def base_name(params):
    """The base network of a run as results.csv names it: 'random' for the random-encoder
    reference, else its pre-training objective ('ali', 'wali', 'vae', 'rotation')."""
    return "random" if params["base"].get("encoder") == "random" else params["pretrain"]["objective"]


def _rows(summary):
    """results.csv rows of one experiment (finished or failed)."""
    p = summary["params"]
    model, base = p["model"], base_name(p)
    paper, paper_dataset = paper_value(summary["table"], p["data"]["dataset"], model["head"],
                                       model["layers"], *(model[k] for k in SOURCES), base=base)
    if base == "random":  # the random-encoder reference: the paper has no such row
        paper = paper_dataset = None
    common = {"dataset": p["data"]["dataset"], "base": base, "head": model["head"],
              "layers": model["layers"], **{k: model[k] for k in SOURCES},
              "paper_score": paper, "paper_dataset": paper_dataset,
              "status": summary["status"], "table": summary["table"],
              "experiment": summary["experiment"], "batch_size": p["train"]["batch_size"],
              "error": summary.get("error"), **run_files(summary)}
    if summary["status"] != "done":
        return [dict(common, seed=s) for s in summary["seeds"]]
    runs = [measured(r, summary["table"]) for r in summary["runs"]]
    return [{**common, **{k: r.get(k) for k in CSV_FIELDS}, "metric": r.get("metric", "accuracy"),
             **{k: None if r.get(k) is None else 100 * r[k] for k in PERCENT}, "test_views": r["test_views"]}
            for r in runs]


def results_frame(summaries):
    """One row per (experiment, seed); accuracy and mAP in % as the paper prints them."""
    rows = [row for s in summaries for row in _rows(s)]
    return pd.DataFrame(rows, columns=COLUMNS)


def load_summaries(entries):
    """The summaries of experiments, each with the path it was read from ('source'). An entry is
    a path, or {'path', 'experiment', 'table'}: a run that also stands for another table's cell
    (the same parameters and seeds: grid.twins), read as that cell."""
    out = []
    for entry in entries:
        entry = entry if isinstance(entry, dict) else {"path": entry}
        as_cell = {k: v for k, v in entry.items() if k != "path"}
        out.append(dict(json.loads(Path(entry["path"]).read_text()), source=str(entry["path"]), **as_cell))
    return out


def run_files(summary):
    """{'run_key', 'notebook'} of the run that wrote `summary`: its key and its executed notebook
    (runs/<name>-<key>.ipynb, beside its result), relative to the report, from the run's
    identity the summary holds (RunRecord.identity). A summary written before runs had records
    holds none: its key is then read from its file's name (<name>-<key>.json), as reproduce
    named it."""
    run = summary.get("run")
    if run and run["key"]:  # a run of reproduce (a notebook opened by hand is not keyed)
        return {"run_key": run["key"], "notebook": f"runs/{run['name']}-{run['key']}.ipynb"}
    if not summary.get("source"):
        return {"run_key": None, "notebook": None}
    stem = Path(summary["source"]).stem
    return {"run_key": stem.rsplit("-", 1)[-1], "notebook": f"runs/{stem}.ipynb"}


# results.csv's columns under the names they had when it was written: a committed report's file
# keeps them (read_results renames them)
OLD_COLUMNS = {"paper_accuracy": "paper_score"}


def read_results(path):
    """results.csv at `path` as a frame: the one reader, which renames a file's OLD_COLUMNS."""
    return pd.read_csv(path).rename(columns=OLD_COLUMNS)


def loss_curves(summaries):
    """Long frame of training losses: experiment, base, head, layers, seed, iteration, loss."""
    rows = [{"experiment": s["experiment"], "head": s["params"]["model"]["head"],
             "layers": s["params"]["model"]["layers"], "seed": r["seed"], "iteration": it,
             "base": base_name(s["params"]), "loss": loss}
            for s in summaries if s["status"] == "done" for r in s["runs"]
            for it, loss in r["loss_history"]]
    return pd.DataFrame(rows, columns=["experiment", "base", "head", "layers", "seed", "iteration", "loss"])


def validation_curves(summaries):
    """Long frame of validation scores from iteration 0: experiment, table, base, head, layers,
    source (θ1θ2ω initials), seed, iteration, score (accuracy, or mAP on a multi-label set; %).
    Empty when the runs did not validate (train.eval_every 0)."""
    columns = ["experiment", "table", "base", "head", "layers", "source", "seed", "iteration", "score"]
    rows = [{"experiment": s["experiment"], "table": s["table"], "base": base_name(s["params"]),
             "head": s["params"]["model"]["head"], "layers": s["params"]["model"]["layers"],
             "source": "".join(s["params"]["model"][k][0] for k in SOURCES),
             "seed": r["seed"], "iteration": it, "score": 100 * score}
            for s in summaries if s["status"] == "done" for r in s["runs"]
            for it, score in (r.get("validation_curve") or [])]
    return pd.DataFrame(rows, columns=columns)


def distinct_runs(frame):
    """The frame with each run once: a Table 1 cell that repeats a Table 3 run (one protocol)
    has a row of its own that names the same result file (`notebook`) and seed; the first row
    (Table 3's) is kept."""
    key = ["notebook", "seed"] if "notebook" in frame else list(frame.columns)
    return frame.drop_duplicates(key)
