"""Pre-training of the base network on a data set's training images without labels: a BiGAN/ALI
(Jensen-Shannon), a Wasserstein BiGAN, the VAE of Table 3's lower half (gradfeat_core/method/vae.py), or
rotation prediction (an extension beyond the paper, gradfeat_core/method/rotation.py). Resumable: the
whole state (networks, optimisers, random-number generators, loss history) is checkpointed every
`checkpoint_every` iterations (and when `max_minutes` stops a call) and a run started again
continues from there. A non-finite loss stops the run and marks it diverged;
the last good checkpoint is kept.

Outputs in <out_dir>/pretrain/<objective>/: encoder.pt (the encoder the heads load),
random_encoder.pt (same architecture, its own seed: the "random θ" of Table 1), gan.pt (the full
state), losses.csv, losses.png, pretrain.json, and for the generative objectives (BiGANs, VAE)
samples.png and reconstructions.png.
"""
import copy
import csv
import sys
import time
from pathlib import Path

import torch
from torchvision.utils import save_image

from ..method.gan import OBJECTIVES, ali_losses, build_bigan, wali_critic_loss, wali_eg_loss
from ..method.nets import calibrate_on, random_encoder
from ..method.rotation import build_rotnet, rotation_loss
from ..method.vae import VAE, aggregate_posterior, build_vae, vae_losses
from .checkpoint import load_checkpoint, save_checkpoint
from .data import load_data
from .params import ParamError
from .progress import tqdm
from .results import environment, write_json
from .train import batch_order, pick_device, seed_everything


# What each objective records every log_every iterations (the columns of losses.csv).
RECORDS = {"ali": ("d_loss", "eg_loss"), "wali": ("d_loss", "eg_loss"),
           "rotation": ("loss", "accuracy"), "vae": ("loss", "reconstruction", "kl")}
# Objectives of one network and one loss: nets, x → (loss, the rest of RECORDS[objective]).
# The objectives with one network and one loss: (nets, x, pretrain parameters) -> records.
SINGLE_LOSS = {"rotation": lambda nets, x, p: rotation_loss(nets, x),
               "vae": lambda nets, x, p: vae_losses(nets, x, p["likelihood_std"])}
# The pixels each objective's data must be in (its generator's output range).
PIXEL_RANGES = {**{k: v["pixel_range"] for k, v in OBJECTIVES.items()}, "vae": [-1.0, 1.0]}
FITTED_IMAGES = 5000  # training images whose posteriors give the VAE's N(m, C) (C: 256² numbers)
ARCH = {"vae": "vae"}  # the base network each objective trains (base.arch); the others: ali


class DivergedError(RuntimeError):
    """A loss became NaN or infinite; the message says where the last good checkpoint is."""


def build_networks(objective, in_channels, p, leak, seed):
    """{'E', 'G', 'D'} of a BiGAN, or {'E'}: the rotation network or the VAE; p: the pretrain
    parameters."""
    if objective == "rotation":
        return build_rotnet(in_channels, leak, seed)
    if objective == "vae":
        return build_vae(in_channels, p["latent"], leak, seed)
    return build_bigan(objective, in_channels, p["latent"], leak, seed, p["init_std"])


def optimisers(nets, p):
    betas = (p["beta1"], p["beta2"])
    if "D" not in nets:
        return {"E": torch.optim.Adam(nets["E"].parameters(), lr=p["lr"], betas=betas)}
    eg = [*nets["E"].parameters(), *nets["G"].parameters()]
    return {"D": torch.optim.Adam(nets["D"].parameters(), lr=p["lr"], betas=betas),
            "EG": torch.optim.Adam(eg, lr=p["lr"], betas=betas)}


def step(nets, opts, x_batches, p, objective, latent):
    """One encoder/generator update (after one critic update per batch for wali), or one
    update of the rotation network. Returns RECORDS[objective] as floats; raises DivergedError
    before applying a non-finite loss."""
    def z():
        return torch.randn(len(x_batches[-1]), latent, 1, 1, device=x_batches[-1].device)

    def check(**losses):
        for name, loss in losses.items():
            if not torch.isfinite(loss):
                raise DivergedError(f"{name} is {loss.item()}")

    if objective in SINGLE_LOSS:
        records = SINGLE_LOSS[objective](nets, x_batches[-1], p)
        check(loss=records[0])
        opts["E"].zero_grad(set_to_none=True)
        records[0].backward()
        opts["E"].step()
        return {k: v.item() for k, v in zip(RECORDS[objective], records)}
    if objective == "ali":
        # One forward pass, two gradients: D's from d_loss, E's and G's from eg_loss.
        d_loss, eg_loss = ali_losses(nets, x_batches[-1], z())
        check(d_loss=d_loss, eg_loss=eg_loss)
        for opt in opts.values():
            opt.zero_grad(set_to_none=True)
        d_params = list(nets["D"].parameters())
        d_grads = torch.autograd.grad(d_loss, d_params, retain_graph=True)
        eg_loss.backward(inputs=[*nets["E"].parameters(), *nets["G"].parameters()])
        for q, g in zip(d_params, d_grads):
            q.grad = g
        opts["D"].step()
        opts["EG"].step()
        return {"d_loss": d_loss.item(), "eg_loss": eg_loss.item()}
    for x in x_batches:
        d_loss = wali_critic_loss(nets, x, z(), p["gp_weight"])
        check(d_loss=d_loss)
        opts["D"].zero_grad(set_to_none=True)
        d_loss.backward()
        opts["D"].step()
    eg_loss = wali_eg_loss(nets, x_batches[-1], z())
    check(eg_loss=eg_loss)
    opts["EG"].zero_grad(set_to_none=True)
    eg_loss.backward(inputs=[*nets["E"].parameters(), *nets["G"].parameters()])
    opts["EG"].step()
    return {"d_loss": d_loss.item(), "eg_loss": eg_loss.item()}


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


def state_meta(params, in_channels):
    p = params["pretrain"]
    return {"kind": "bigan-state", "objective": p["objective"], "dataset": params["data"]["dataset"],
            "in_channels": in_channels, "latent": p["latent"], "leak": params["base"]["leak"]}


def pretrain(params, stop_after=None, log=None):
    """Train (or resume) the base network of `params`; returns the result dict written to
    pretrain.json. stop_after: return after this many iterations of this call (as if killed after
    a checkpoint). pretrain.max_minutes > 0: this call checkpoints and returns, status
    'interrupted', once it has trained that long (a notebook's or a cluster job's time limit),
    and the next call resumes there."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    start_time = time.perf_counter()
    p, objective = params["pretrain"], params["pretrain"]["objective"]
    if objective in PIXEL_RANGES and [float(v) for v in params["base"]["pixel_range"]] != PIXEL_RANGES[objective]:
        raise ParamError(f"'base.pixel_range' is {params['base']['pixel_range']} but {objective} "
                         f"generates pixels in {PIXEL_RANGES[objective]}; use "
                         f"--objective {objective} (params/objectives/{objective}.yaml)")
    if params["base"]["arch"] != ARCH.get(objective, "ali"):
        raise ParamError(f"'base.arch' is {params['base']['arch']} but {objective} trains the "
                         f"{ARCH.get(objective, 'ali')} encoder; use --objective {objective} "
                         f"(params/objectives/{objective}.yaml sets it)")
    device = pick_device(params["device"])
    seed_everything(params["seed"])
    data = load_data(params, device, log)
    out = Path(params["out_dir"]) / "pretrain" / objective
    nets = build_networks(objective, data.in_channels, p, params["base"]["leak"], params["seed"])
    nets = {k: v.to(device) for k, v in nets.items()}
    opts = optimisers(nets, p)
    meta = state_meta(params, data.in_channels)
    state_path, start, history, seconds = out / "gan.pt", 0, [], 0.0
    if p["resume"] and state_path.is_file():
        start, history, seconds = load_state(state_path, nets, opts, meta)
        log(f"resuming {objective} from iteration {start} ({state_path})")

    def elapsed():  # seconds of this run, earlier sessions of it included
        return seconds + time.perf_counter() - start_time

    per_step = p["critic_steps"] if objective == "wali" else 1
    order = batch_order(len(data.x_train), p["batch_size"], p["iterations"] * per_step,
                        torch.Generator().manual_seed(params["seed"]))
    for _ in range(start * per_step):  # the batches the checkpointed iterations already used
        next(order)
    end = p["iterations"] if stop_after is None else min(p["iterations"], start + stop_after)
    if start == 0 and 0 in p["snapshots"]:
        save_snapshot(out, nets, params, data, 0)
    for net in nets.values():
        net.train()
    bar = tqdm(range(start + 1, end + 1), initial=start, total=p["iterations"], desc=objective,
               mininterval=2.0)
    running = []  # losses since the last record: the curve shows their mean, not one noisy batch
    deadline = start_time + 60 * p["max_minutes"] if p["max_minutes"] else None
    for it in bar:
        x_batches = [data.x_train[next(order).to(device)] for _ in range(per_step)]
        try:
            running.append(step(nets, opts, x_batches, p, objective, p["latent"]))
        except DivergedError as e:
            write_result(params, out, nets, data, history, elapsed(), "diverged", device)
            raise DivergedError(f"{objective} diverged at iteration {it}: {e}; the last good "
                                f"checkpoint is kept in {state_path}; lower pretrain.lr or "
                                "change the seed") from None
        out_of_time = deadline is not None and time.perf_counter() >= deadline and it < end
        if it % p["log_every"] == 0 or it == end or out_of_time:  # the curve ends where a run stops
            means = {k: sum(r[k] for r in running) / len(running) for k in RECORDS[objective]}
            history.append([it, *means.values()])
            bar.set_postfix({k: f"{v:.3f}" for k, v in means.items()})
            running = []
        if it in p["snapshots"]:
            save_snapshot(out, nets, params, data, it)
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


def encoders_for_heads(nets, params, data):
    """(pre-trained, random) five-conv encoders with batch-norm statistics measured on training
    images under their final weights (exact in eval mode, unlike the running average)."""
    base = params["base"]
    images, n, seed = data.x_train, base["calibrate_images"], base["random_seed"]
    pretrained = calibrate_on(copy.deepcopy(nets["E"].features), images, n, seed)
    random = random_encoder(data.in_channels, base["leak"], base["batchnorm"], seed, images, n,
                            base["arch"])
    return pretrained, random


def snapshot_path(out, iteration):
    return Path(out) / "snapshots" / f"encoder-{iteration:07d}.pt"


def save_snapshot(out, nets, params, data, iteration):
    """The encoder as the heads would load it had pre-training stopped here (batch norm
    calibrated the same way): the points of the feature-quality curve (gradfeat_core.suite.quality)."""
    base = params["base"]
    encoder = calibrate_on(copy.deepcopy(nets["E"].features), data.x_train, base["calibrate_images"],
                           base["random_seed"])
    meta = encoder.meta(data.name, base["pixel_range"])
    save_checkpoint(snapshot_path(out, iteration), encoder.state_dict(),
                    dict(meta, objective=params["pretrain"]["objective"], iterations=iteration))


@torch.no_grad()
def save_figures(out, nets, data, history, pixel_range, latent, seed, objective):
    for net in nets.values():
        net.eval()
    g, device = torch.Generator().manual_seed(seed), data.x_test.device
    grids = {}  # file name → images
    if "G" in nets:  # a BiGAN: G(z), and x beside G(E(x))
        grids["samples.png"] = nets["G"](torch.randn(64, latent, 1, 1, generator=g).to(device))
        reconstruct = lambda x: nets["G"](nets["E"](x))  # noqa: E731
    elif isinstance(nets["E"], VAE):  # decoder(z ~ N(0, I)) and of z ~ N(m, C), x beside decoder(μ(x))
        vae, reconstruct = nets["E"], nets["E"].reconstruct
        grids["samples.png"] = vae.decode(vae.sample_latent(64, g, device))
        moments = aggregate_posterior(vae, data.x_train[:FITTED_IMAGES])
        grids["samples_fitted.png"] = vae.decode(vae.sample_latent(64, g, device, moments))
    if grids:
        x = data.x_test[:32]
        grids["reconstructions.png"] = torch.stack([x, reconstruct(x)], 1).flatten(0, 1)  # side by side
        for name, images in grids.items():  # value_range → [0, 1], clamped
            save_image(images, out / name, nrow=16 if name == "reconstructions.png" else 8,
                       normalize=True, value_range=tuple(pixel_range))
    names = RECORDS[objective]
    with open(out / "losses.csv", "w", newline="") as f:
        csv.writer(f).writerows([["iteration", *names], *history])
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.5))
    labels = {"d_loss": "discriminator / critic", "eg_loss": "encoder + generator",
              "loss": "negative ELBO" if objective == "vae" else "rotation cross-entropy",
              "accuracy": "rotation accuracy", "reconstruction": "reconstruction ‖x − x̂‖²/2",
              "kl": "KL(q(z|x) ‖ N(0, I))"}
    if history:
        its, *columns = zip(*history)
        for name, values in zip(names, columns):
            ax.plot(its, values, label=labels[name])
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss / accuracy" if objective == "rotation" else "loss")
    ax.set_yscale("log" if objective == "vae" else "linear")  # the ELBO falls by orders at first
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "losses.png", dpi=100)
    plt.close(fig)


def write_result(params, out, nets, data, history, seconds, status, device):
    """pretrain.json always; encoders and figures only from weights that did not diverge."""
    p = params["pretrain"]
    if status != "diverged":
        pretrained, random = encoders_for_heads(nets, params, data)
        meta = pretrained.meta(data.name, params["base"]["pixel_range"])
        save_checkpoint(out / "encoder.pt", pretrained.state_dict(),
                        dict(meta, objective=p["objective"], iterations=history[-1][0] if history else 0))
        save_checkpoint(out / "random_encoder.pt", random.state_dict(),
                        dict(meta, objective="random", seed=params["base"]["random_seed"]))
        save_figures(out, nets, data, history, params["base"]["pixel_range"], p["latent"],
                     params["seed"], p["objective"])
    result = {"objective": p["objective"], "dataset": data.name, "status": status,
              "iterations": history[-1][0] if history else 0, "seconds": seconds,
              "final_losses": history[-1][1:] if history else None, "out_dir": str(out),
              "params": params, "environment": environment(device)}
    write_json(out / "pretrain.json", result)
    return result
