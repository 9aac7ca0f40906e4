"""Pre-training of the base network on a data set's training images without labels: a BiGAN/ALI
(Jensen-Shannon), a Wasserstein BiGAN, the VAE of Table 3's lower half (gradfeat_core/method/vae.py), or
rotation prediction (an extension beyond the paper, gradfeat_core/method/rotation.py); or with
labels, the stand-in for Tables 2 and 4's ImageNet networks (gradfeat_core/method/supervised.py). Resumable: the
whole state (networks, optimisers, random-number generators, loss history) is checkpointed every
`checkpoint_every` iterations (and when `max_minutes` stops a call) and a run started again
continues from there. A non-finite loss stops the run and marks it diverged;
the last good checkpoint is kept.

Outputs in <out_dir>/pretrain/<objective>/: encoder.pt (the encoder the heads load),
random_encoder.pt (same architecture, its own seed: the "random θ" of Table 1), state.pt (the
whole training state), losses.csv, losses.png, pretrain.json, and for the generative objectives (BiGANs, VAE)
samples.png and reconstructions.png.
"""
import copy
import csv
import sys
import time
from pathlib import Path

import torch
from torchvision.utils import save_image

from ..method.imported import IMPORT
from ..method.nets import calibrate_on, random_encoder
from ..method.registry import OBJECTIVES, DivergedError
from .checkpoint import load_checkpoint, save_checkpoint
from .params import ParamError
from .progress import tqdm
from .results import environment, write_json
from .run import experiment_data
from .train import batch_order, pick_device, seed_everything


def build_networks(objective, in_channels, p, leak, seed, classes=10):
    """The networks `objective` trains ({'E', 'G', 'D'} of a BiGAN, {'E'} of the rotation
    network, the VAE or a supervised classifier of `classes`); p: the pretrain parameters."""
    entry = OBJECTIVES[objective]
    extra = {"classes": classes} if entry.labelled else {}
    return entry.build(in_channels, p, leak, seed, **extra)


def batch(data, idx, objective):
    """The batch of images idx of the training set, with their labels for a labelled objective."""
    return (data.x_train[idx], data.y_train[idx]) if OBJECTIVES[objective].labelled else data.x_train[idx]


def random_batches(objective, p, channels, device, size=32, classes=10):
    """One update's batches of random images (and labels) at the objective's batch size: what
    timing an update needs (a step's cost does not depend on the numbers)."""
    x = torch.rand(p["batch_size"], channels, size, size, device=device)
    y = torch.randint(0, classes, (p["batch_size"],), device=device)
    return [(x, y) if OBJECTIVES[objective].labelled else x] * OBJECTIVES[objective].batches(p)


def optimisers(nets, p):
    betas = (p["beta1"], p["beta2"])
    if "D" not in nets:
        return {"E": torch.optim.Adam(nets["E"].parameters(), lr=p["lr"], betas=betas)}
    eg = [*nets["E"].parameters(), *nets["G"].parameters()]
    return {"D": torch.optim.Adam(nets["D"].parameters(), lr=p["lr"], betas=betas),
            "EG": torch.optim.Adam(eg, lr=p["lr"], betas=betas)}


def step(nets, opts, batches, p, objective):
    """One update of `objective` (its registry entry's) on `batches` (`batch`'s): its records as
    {name: float}; raises DivergedError before applying a non-finite loss."""
    entry = OBJECTIVES[objective]
    return dict(zip(entry.records, entry.update(nets, opts, batches, p)))


def save_state(path, nets, opts, meta):
    """Everything a resumed run needs to continue exactly where this one stood."""
    state = {f"{k}.{n}": v for k, net in nets.items() for n, v in net.state_dict().items()}
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state()
    save_checkpoint(path, state, meta, extra={"optimisers": {k: o.state_dict() for k, o in opts.items()}, "rng": rng})


def load_state(path, nets, opts, expect):
    """(iteration, history, seconds) of a saved state, loaded into nets and opts; a state made
    for another objective, data set or architecture is refused before anything is loaded."""
    state, meta, extra = load_checkpoint(path, expect, with_extra=True)
    for k, net in nets.items():
        net.load_state_dict({n[len(k) + 1:]: v for n, v in state.items() if n.startswith(k + ".")})
    for k, opt in opts.items():
        opt.load_state_dict(extra["optimisers"][k])
    torch.set_rng_state(extra["rng"]["cpu"])
    if "cuda" in extra["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state(extra["rng"]["cuda"])
    return meta["iteration"], meta["history"], meta["seconds"]


def state_meta(p, data, leak):
    """What a saved state was made for (p: the pretrain parameters): a resumed run refuses another."""
    return {"kind": "pretrain-state", "objective": p["objective"], "dataset": data.name,
            "in_channels": data.in_channels, "latent": p["latent"], "leak": leak}


def _trainable(objective, base):
    """The Objective of `objective`, once it is one pre-trained here on the base network's
    architecture and pixel range (base: the base parameters)."""
    entry = OBJECTIVES[objective]
    if entry.imported:
        raise ParamError(f"{objective}'s weights are imported, not pre-trained here: {IMPORT[objective]} "
                         "(docs/tables-2-and-4.md) writes the file its params/objectives file names "
                         "(base.checkpoint)")
    if entry.pixel_range and tuple(float(v) for v in base["pixel_range"]) != entry.pixel_range:
        raise ParamError(f"'base.pixel_range' is {base['pixel_range']} but {objective} "
                         f"generates pixels in {list(entry.pixel_range)}; use "
                         f"--objective {objective} (params/objectives/{objective}.yaml)")
    if base["arch"] != entry.arch:
        raise ParamError(f"'base.arch' is {base['arch']} but {objective} trains the "
                         f"{entry.arch} encoder; use --objective {objective} "
                         f"(params/objectives/{objective}.yaml sets it)")
    return entry


def _networks(params, data, device, state_path, log):
    """(networks, optimisers, the state's meta, (iteration, loss history, seconds)) of the
    pre-training of `params` on `data`: new, or resumed from the state at state_path where
    pretrain.resume allows (one made for other settings is refused: state_meta)."""
    p, base = params["pretrain"], params["base"]
    nets = build_networks(p["objective"], data.in_channels, p, base["leak"], params["seed"],
                          data.num_classes)
    nets = {k: v.to(device) for k, v in nets.items()}
    opts = optimisers(nets, p)
    meta = state_meta(p, data, base["leak"])
    done = 0, [], 0.0
    if p["resume"] and state_path.is_file():
        done = load_state(state_path, nets, opts, meta)
        log(f"resuming {p['objective']} from iteration {done[0]} ({state_path})")
    return nets, opts, meta, done


def _batches_after(n, p, per_step, start, seed):
    """The pre-training's batch order over n images (p: the pretrain parameters, per_step
    batches an update), past the batches of the `start` updates a checkpoint already made."""
    order = batch_order(n, p["batch_size"], p["iterations"] * per_step, torch.Generator().manual_seed(seed))
    for _ in range(start * per_step):
        next(order)
    return order


def pretrain(params, stop_after=None, log=None):
    """Train (or resume) the base network of `params`; returns the result dict written to
    pretrain.json. stop_after: return after this many iterations of this call (as if killed after
    a checkpoint). pretrain.max_minutes > 0: this call checkpoints and returns, status
    'interrupted', once it has trained that long (a notebook's or a cluster job's time limit),
    and the next call resumes there."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    start_time = time.perf_counter()
    p, base, objective = params["pretrain"], params["base"], params["pretrain"]["objective"]
    entry = _trainable(objective, base)
    device = pick_device(params["device"])
    seed_everything(params["seed"])
    data = experiment_data(params, device, log)
    out = Path(params["out_dir"]) / "pretrain" / objective
    state_path = out / "state.pt"
    nets, opts, meta, (start, history, seconds) = _networks(params, data, device, state_path, log)

    def elapsed():  # seconds of this run, earlier sessions of it included
        return seconds + time.perf_counter() - start_time

    per_step = entry.batches(p)
    order = _batches_after(len(data.x_train), p, per_step, start, params["seed"])
    end = p["iterations"] if stop_after is None else min(p["iterations"], start + stop_after)
    if start == 0 and 0 in p["snapshots"]:
        save_snapshot(out, nets, base, objective, data, 0)
    for net in nets.values():
        net.train()
    bar = tqdm(range(start + 1, end + 1), initial=start, total=p["iterations"], desc=objective,
               mininterval=2.0)
    running = []  # losses since the last record: the curve shows their mean, not one noisy batch
    deadline = start_time + 60 * p["max_minutes"] if p["max_minutes"] else None
    for it in bar:
        batches = [batch(data, next(order).to(device), objective) for _ in range(per_step)]
        try:
            running.append(step(nets, opts, batches, p, objective))
        except DivergedError as e:
            write_result(params, out, nets, data, history, elapsed(), "diverged", device)
            raise DivergedError(f"{objective} diverged at iteration {it}: {e}; the last good "
                                f"checkpoint is kept in {state_path}; lower pretrain.lr or "
                                "change the seed") from None
        out_of_time = deadline is not None and time.perf_counter() >= deadline and it < end
        if it % p["log_every"] == 0 or it == end or out_of_time:  # the curve ends where a run stops
            means = {k: sum(r[k] for r in running) / len(running) for k in entry.records}
            history.append([it, *means.values()])
            bar.set_postfix({k: f"{v:.3f}" for k, v in means.items()})
            running = []
        if it in p["snapshots"]:
            save_snapshot(out, nets, base, objective, data, it)
            nets["E"].train()
        if it % p["checkpoint_every"] == 0 or it == end or out_of_time:
            save_state(state_path, nets, opts, dict(meta, iteration=it, history=history,
                                                    seconds=elapsed()))
        if out_of_time:
            log(f"{objective}: pretrain.max_minutes ({p['max_minutes']:g}) reached at iteration {it} "
                f"of {p['iterations']}; checkpointed in {state_path}, the next call resumes there")
            end = it
            break
    bar.close()
    status = "finished" if end == p["iterations"] else "interrupted"
    return write_result(params, out, nets, data, history, elapsed(), status, device)


def encoders_for_heads(nets, base, data):
    """(pre-trained, random) encoders with batch-norm statistics measured on training images
    under their final weights (exact in eval mode, unlike the running average); base: the base
    parameters."""
    images, n, seed = data.x_train, base["calibrate_images"], base["random_seed"]
    pretrained = calibrate_on(copy.deepcopy(nets["E"].features), images, n, seed)
    random = random_encoder(data.in_channels, base["leak"], base["batchnorm"], seed, images, n,
                            base["arch"])
    return pretrained, random


def snapshot_path(out, iteration):
    return Path(out) / "snapshots" / f"encoder-{iteration:07d}.pt"


def save_snapshot(out, nets, base, objective, data, iteration):
    """The encoder as the heads would load it had pre-training stopped here (batch norm
    calibrated the same way): the points of the feature-quality curve (experiments/quality.py)."""
    encoder = calibrate_on(copy.deepcopy(nets["E"].features), data.x_train, base["calibrate_images"],
                           base["random_seed"])
    meta = encoder.meta(data.name, base["pixel_range"])
    save_checkpoint(snapshot_path(out, iteration), encoder.state_dict(),
                    dict(meta, objective=objective, iterations=iteration))


@torch.no_grad()
def save_figures(out, nets, data, history, p, pixel_range, seed, objective):
    """The objective's figures (samples, reconstructions: its registry entry's), losses.csv and
    the loss curve."""
    for net in nets.values():
        net.eval()
    entry = OBJECTIVES[objective]
    grids = entry.figures(nets, data, p, torch.Generator().manual_seed(seed)) if entry.figures else {}
    assert tuple(grids) == entry.figure_files, f"{objective}'s figures are not its figure_files"
    for name, images in grids.items():  # value_range → [0, 1], clamped
        save_image(images, out / name, nrow=16 if name == "reconstructions.png" else 8,
                   normalize=True, value_range=tuple(pixel_range))
    with open(out / "losses.csv", "w", newline="") as f:
        csv.writer(f).writerows([["iteration", *entry.records], *history])
    import matplotlib.pyplot as plt
    fig = loss_figure(history, objective)
    fig.savefig(out / "losses.png", dpi=100, bbox_inches="tight")
    plt.close(fig)


def loss_figure(history, objective):
    """The pre-training's recorded losses against updates ([iteration, *records] rows, as
    losses.csv holds them), titled: losses.png, and the report's figure of its base network."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    entry = OBJECTIVES[objective]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    if len(history):
        its, *columns = zip(*history)
        for label, values in zip(entry.records.values(), columns):
            ax.plot(its, values, label=label)
    ax.set(xlabel="pre-training updates", ylabel=entry.ylabel,
           yscale="log" if entry.log_scale else "linear")
    ax.set_title(f"Pre-training: {entry.label.split(',')[0]}", loc="left")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8)
    fig.tight_layout()
    return fig


def write_result(params, out, nets, data, history, seconds, status, device):
    """pretrain.json (recording `params`) always; encoders and figures only from weights that did
    not diverge."""
    p, base = params["pretrain"], params["base"]
    if status != "diverged":
        pretrained, random = encoders_for_heads(nets, base, data)
        meta = pretrained.meta(data.name, base["pixel_range"])
        save_checkpoint(out / "encoder.pt", pretrained.state_dict(),
                        dict(meta, objective=p["objective"], iterations=history[-1][0] if history else 0))
        save_checkpoint(out / "random_encoder.pt", random.state_dict(),
                        dict(meta, objective="random", seed=base["random_seed"]))
        save_figures(out, nets, data, history, p, base["pixel_range"], params["seed"],
                     p["objective"])
    result = {"objective": p["objective"], "dataset": data.name, "status": status,
              "iterations": history[-1][0] if history else 0, "seconds": seconds,
              "final_losses": history[-1][1:] if history else None, "out_dir": str(out),
              "params": params, "environment": environment(device)}
    write_json(out / "pretrain.json", result)
    return result
