"""Feature quality against pre-training length: did pre-training give the network anything,
and how long is it worth training?

A probe is a head of Table 3 at the top layer under the profile's own protocol (its validation
split, schedule, early stopping, `reproduce.heads`), one seed, trained on each encoder
snapshot a pre-training run saved (`pretrain.snapshots`) and on the random encoder of the same
architecture, whose level is the line a pre-trained encoder has to clear. The heads probed are
`pretrain.quality_heads`: the activation head, and the gradient head (what the paper's method
gets from the same network). Each one's validation accuracy (the split held out of the training
set) is a curve; test accuracy is recorded too.

    python -m gradfeat_core quality --profile fashion-mnist [--set out_dir=...]

writes quality.csv and quality.png beside the run's pretrain.json.
"""
import re
from pathlib import Path

import pandas as pd

from ..method.registry import OBJECTIVES
from .errors import UserError
from .params import load_params, merge
from .record import Experiment, heads_layers
from .results import CONVERGED

COLUMNS = ["pretrain_seed", "iteration", "encoder", "probe", "validation_accuracy",
           "test_accuracy", "converged", "probe_iterations"]


def snapshots(pretrain_dir):
    """{iteration: path} of the encoder snapshots a pre-training run saved."""
    found = {}
    for path in sorted((Path(pretrain_dir) / "snapshots").glob("encoder-*.pt")):
        found[int(re.fullmatch(r"encoder-(\d+)\.pt", path.name).group(1))] = path
    return found


def probe(params, checkpoint, out_dir, encoder="pretrained", head="actv"):
    """The RunResult of Table 3's `head` at the top layer, under Table 3's protocol, on
    `checkpoint` (encoder = random: on the random encoder, `checkpoint` then names its file or
    is None for base.random_seed's): the one a previous call wrote for the same parameters, or
    trained now."""
    from .run import finished_result, run_head
    key = "random_checkpoint" if encoder == "random" else "checkpoint"
    cell = Experiment("probe", 3, head, heads_layers(params), encoder=encoder,
                      protocol=params["reproduce"]["heads"])
    where = {"base": {key: str(checkpoint) if checkpoint else None, "checkpoint_sha256": None},
             "out_dir": str(out_dir)}
    probe_params = merge(cell.params(params), where, "probe")
    return finished_result(probe_params) or run_head(probe_params, log=lambda msg: None)


def quality_curve(profile, sets=(), objective=None, log=print, overrides=None):
    """Probe every snapshot of the pre-training run of `profile` (and the random encoder) with
    each head of pretrain.quality_heads; returns the frame written to <pretrain dir>/quality.csv.
    A probe already trained with the same parameters (an interrupted call's) is read back, the
    others trained (60-150 s each on Fashion-MNIST here at conv5; minutes at the VAE's conv8).
    sets: --set strings; overrides: a nested mapping (a notebook's)."""
    params = load_params(profile, sets, objective=objective, overrides=overrides)
    objective = params["pretrain"]["objective"]
    if OBJECTIVES[objective].imported:
        raise UserError(f"{objective}'s weights are imported, not pre-trained here: it has no "
                        "snapshots to probe; the curve is for a base network this suite pre-trains "
                        "(e.g. --profile fashion-mnist)")
    pretrain_dir = Path(params["out_dir"]) / "pretrain" / objective
    found = snapshots(pretrain_dir)
    if not found:
        raise UserError(f"no encoder snapshots in {pretrain_dir / 'snapshots'}: pre-train with "
                        "pretrain.snapshots set, e.g. --set 'pretrain.snapshots=[0, 100, 300]'")
    random_file = pretrain_dir / "random_encoder.pt"
    todo = [(it, "pretrained", path) for it, path in found.items()]
    todo.append((None, "random", random_file if random_file.is_file() else None))
    rows = []
    for head in params["pretrain"]["quality_heads"]:
        for iteration, encoder, path in todo:
            result = probe(params, path, pretrain_dir / "quality", encoder, head)
            curve = result.validation_curve
            best = max(acc for _, acc in curve) if curve else None
            rows.append({"pretrain_seed": params["seed"], "iteration": iteration,
                         "encoder": encoder, "probe": head, "validation_accuracy": best,
                         "test_accuracy": result.score, "converged": result.convergence and result.convergence == CONVERGED,
                         "probe_iterations": result.iterations})
            log(f"probe {head} on {encoder} {'' if iteration is None else iteration}: "
                f"validation {best}, test {result.metric} {result.score:.4f}")
    frame = pd.DataFrame(rows, columns=COLUMNS).astype({"iteration": "Int64"})
    frame.to_csv(pretrain_dir / "quality.csv", index=False)
    plot(frame, pretrain_dir / "quality.png", objective)
    return frame


def figure(frame, objective):
    """Validation accuracy of each probe against pre-training updates, one line per head and
    pre-training seed, each head's random-encoder level as a dashed line of its colour; the
    legend beside the axes, clear of the data (frame: quality.csv, accuracies as fractions)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8.5, 3.5))
    for colour, (head, rows) in enumerate(frame.groupby("probe", sort=False)):
        pretrained = rows[rows.encoder == "pretrained"]
        for mark, (seed, runs) in zip("osd^v", pretrained.groupby("pretrain_seed")):
            runs = runs.sort_values("iteration")
            ax.plot(runs.iteration, 100 * runs.validation_accuracy, marker=mark, c=f"C{colour}",
                    label=f"{head} on {objective}, pre-training seed {seed}")
        random = rows[rows.encoder == "random"].validation_accuracy
        if len(random):
            ax.axhline(100 * random.mean(), ls="--", c=f"C{colour}", label=f"{head} on a random encoder")
    ax.set(xlabel="pre-training updates", ylabel="probe validation accuracy %")
    ax.set_title(f"Probes against pre-training length ({objective})", loc="left")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8)
    fig.tight_layout()
    return fig


def plot(frame, path, objective):
    """figure() saved as a PNG at `path`."""
    import matplotlib.pyplot as plt
    fig = figure(frame, objective)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def load_quality(path):
    """The quality.csv at `path` as a frame (accuracies in %), or None when there is none."""
    path = Path(path)
    if not path.is_file():
        return None
    frame = pd.read_csv(path)
    for column in ("validation_accuracy", "test_accuracy"):
        frame[column] = 100 * frame[column]
    return frame
