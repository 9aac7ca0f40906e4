"""Feature quality against pre-training length: did pre-training give the network anything,
and how long is it worth training?

A probe is a head of Table 3 at the top layer under the profile's own protocol (its validation
split, schedule, early stopping, `reproduce.table3`), one seed, trained on each encoder
snapshot a pre-training run saved (`pretrain.snapshots`) and on the random encoder of the same
architecture, whose level is the line a pre-trained encoder has to clear. The heads probed are
`pretrain.quality_heads`: the activation head, and the gradient head (what the paper's method
gets from the same network). Each one's validation accuracy (the split held out of the training
set) is a curve; test accuracy is recorded too.

    python -m gradfeat_core quality --profile fashion-mnist [--set out_dir=...]

writes quality.csv and quality.png beside the run's pretrain.json.
"""
import json
import re
from pathlib import Path

import pandas as pd

from ..experiments.errors import UserError
from ..experiments.params import load_params, merge
from ..experiments.results import CONVERGED, ROOT, file_sha256
from ..method.registry import OBJECTIVES
from .grid import Experiment, table3_layers

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
    from ..experiments.run import finished_result, run_head
    key = "random_checkpoint" if encoder == "random" else "checkpoint"
    cell = Experiment("probe", 3, head, table3_layers(params), encoder=encoder,
                      protocol=params["reproduce"]["table3"])
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


def publish(pretrain_dirs, dest, encoder=True):
    """Copy the encoder of the first pre-training run in `pretrain_dirs` to `dest` for
    committing (encoder.pt, pretrain.json, losses.csv/png and its objective's figure_files: a
    generative objective's samples and reconstructions), with the quality curves of all of them (quality.csv/png:
    the other runs are reruns of the same recipe with other seeds); returns the encoder's sha256,
    for base.checkpoint_sha256. encoder=False: the record and curves only, of a pre-training
    tried and not used (base.compared), and returns None."""
    import shutil
    first, dest = Path(pretrain_dirs[0]), Path(dest)
    if not encoder and not (first / "quality.csv").is_file():
        raise UserError(f"{first} has no quality.csv, and a pre-training published without its "
                        "encoder is only its curve: run `python -m gradfeat_core quality` first")
    dest.mkdir(parents=True, exist_ok=True)
    for name in (["encoder.pt"] if encoder else []) + ["pretrain.json", "losses.csv", "losses.png"]:
        shutil.copyfile(first / name, dest / name)
    objective = json.loads((first / "pretrain.json").read_text())["objective"]
    for name in OBJECTIVES[objective].figure_files:
        if (first / name).is_file():
            shutil.copyfile(first / name, dest / name)
    curves = [pd.read_csv(Path(d) / "quality.csv") for d in pretrain_dirs if (Path(d) / "quality.csv").is_file()]
    if curves:
        frame = pd.concat(curves, ignore_index=True).astype({"iteration": "Int64"})
        frame.to_csv(dest / "quality.csv", index=False)
        plot(frame, dest / "quality.png", objective)
    return file_sha256(dest / "encoder.pt") if encoder else None


def compared(used, tried):
    """One row per probe of each pre-training: `used` (the base network's own folder, or None)
    and `tried` (base.compared), folders holding pretrain.json and quality.csv: its objective
    and length, its cost, and the probe's validation accuracy (%) on the last snapshot beside
    the same probe on that run's random encoder, with the difference."""
    rows = []
    for folder, is_used in ([(used, True)] if used else []) + [(folder, False) for folder in tried]:
        folder = Path(folder)
        run = json.loads((folder / "pretrain.json").read_text())
        quality = load_quality(folder / "quality.csv")
        quality = quality[quality.pretrain_seed == quality.pretrain_seed.min()]
        for head, probes in quality.groupby("probe", sort=False):
            pretrained = probes[probes.encoder == "pretrained"]
            last = pretrained.loc[pretrained.iteration.idxmax()]
            random = probes[probes.encoder == "random"].validation_accuracy.mean()
            rows.append({"pre-training": run["objective"], "updates": int(last.iteration),
                         "minutes": round(run["seconds"] / 60, 1),
                         "machine": run["environment"]["device_name"], "probe": head,
                         "pre-trained %": last.validation_accuracy, "random %": random,
                         "pre-trained − random": last.validation_accuracy - random,
                         "converged": bool(last.converged), "folder": folder.name, "used": is_used})
    return pd.DataFrame(rows)


def wide(quality):
    """The curves as a table: a row per snapshot (and the random encoder), a column per probe
    head and pre-training seed, the probe's validation accuracy (%)."""
    when = ["random encoder" if e == "random" else f"{int(i)} updates"
            for e, i in zip(quality.encoder, quality.iteration)]
    table = quality.assign(snapshot=when).pivot_table(
        index="snapshot", columns=["probe", "pretrain_seed"], values="validation_accuracy", sort=False)
    table.columns = [f"{head}, pre-training seed {seed}" for head, seed in table.columns]
    return table


def rerun_spread(quality):
    """(final validation accuracies of the probe, one per pre-training seed; the random
    encoder's mean) of the activation probe, from a quality frame in %: how much a pre-training
    rerun moves the probe."""
    quality = quality[quality.probe == "actv"]
    pretrained = quality[quality.encoder == "pretrained"]
    last = pretrained.loc[pretrained.groupby("pretrain_seed").iteration.idxmax()]
    return list(last.validation_accuracy), quality[quality.encoder == "random"].validation_accuracy.mean()


def describe(base, pretrain, quality=None):
    """Markdown lines for the report: where the base network came from (its sha256 and the
    run that made it) and, with a quality frame, what pre-training reruns did to the probe."""
    if base.get("source") == "imported":
        return [f"The paper's own network, imported (`python -m gradfeat_core import-weights`), not "
                f"pre-trained here: `{base['path']}`, sha256 `{base.get('sha256')}`."]
    if not pretrain:
        return ["No finished pre-training: the heads ran on no pre-trained base network."]
    made = (f"{pretrain['objective']}, seed {pretrain['params']['seed']}, {pretrain['iterations']} "
            f"updates in {pretrain['seconds'] / 60:.1f} min on {pretrain['environment']['device_name']}, "
            f"code {pretrain['environment']['code_version']}")
    if base.get("source") == "committed":
        path = Path(base["path"])
        lines = [f"The committed encoder `{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}` "
                 f"(sha256 `{base['sha256']}`, checked before any run), pre-trained once by the "
                 f"suite's own `pretrain` ({made}). `python -m gradfeat_core reproduce --set "
                 "base.checkpoint=null` pre-trains one from scratch instead."]
    else:
        lines = [f"Pre-trained in this run ({made}); sha256 `{base.get('sha256')}`."]
    if quality is not None and len(quality):
        finals, random = rerun_spread(quality)
        if len(finals) > 1:
            lines.append(
                f"Pre-training reruns ({len(finals)} seeds of the same recipe) give activation "
                f"probes of {', '.join(f'{v:.2f}' for v in finals)}% on the validation split "
                f"(spread {max(finals) - min(finals):.2f} points; the random encoder: "
                f"{random:.2f}%). The heads' intervals cover their own seeds on this one base "
                "network, not this spread.")
    return lines
