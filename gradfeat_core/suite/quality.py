"""Feature quality in the report and in encoders/: a pre-training's probes (experiments/quality.py
makes them) published beside a committed encoder, compared with the tries under encoders/tried/,
and described in the report's base-network section."""
import json
import re
from pathlib import Path

import pandas as pd

from ..experiments.errors import UserError
from ..experiments.params import load_params
from ..experiments.quality import COLUMNS, load_quality, plot
from ..experiments.results import ROOT, file_sha256
from ..method.registry import OBJECTIVES

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
