"""One experiment from resolved parameters: base networks, ω̄, a head, training, a result JSON."""
import hashlib
import sys
import time
from pathlib import Path

import torch
from torch import nn

from .checkpoint import load_into, save_checkpoint
from .data import load_dataset
from .linear_model import build_head
from .nets import FEATURE_DIM, LAYERS, Encoder, fold_batchnorm, mix, parse_layers, \
    random_encoder, split
from .params import digest
from .results import environment, write_json
from .train import FrozenInputs, accuracy, pick_device, predict, seed_everything, train


def load_encoder(params, data, checkpoint, seed):
    """An encoder from `checkpoint`, or the random encoder of `seed`; batch norm folded."""
    base = params["base"]
    if checkpoint:
        net = Encoder(data.in_channels, base["leak"], base["batchnorm"])
        load_into(net, checkpoint, expect=net.meta(data.name, base["pixel_range"]))
        net = net.to(data.x_train.device)
    else:
        net = random_encoder(data.in_channels, base["leak"], base["batchnorm"], seed, data.x_train,
                             base["calibrate_images"])
    return fold_batchnorm(net).eval().requires_grad_(False)


def base_networks(params, data):
    """{'pretrained': f_θ̄, 'random': a random encoder (only when the gradient term uses it)}.
    Without a pre-trained checkpoint a random encoder seeded by random_seed + 1 stands in."""
    base, model = params["base"], params["model"]
    nets = {"pretrained": load_encoder(params, data, base["checkpoint"], base["random_seed"] + 1)}
    if "random" in (model["theta1"], model["theta2"]):
        nets["random"] = load_encoder(params, data, base["random_checkpoint"], base["random_seed"])
    return nets


def gradient_network(params, nets):
    """The network whose Jacobian the gradient term uses (Table 1: θ1, θ2 each from either)."""
    model = params["model"]
    theta2 = parse_layers(model["layers"])
    return mix(nets, {n: model["theta2"] if n in theta2 else model["theta1"] for n in LAYERS})


def omega_path(params):
    """Where the actv run of this base network keeps ω̄: keyed by everything the activation
    head depends on, the encoder file's content included (a retrained encoder is another key)."""
    key = {k: params[k] for k in ("seed", "data", "base")}
    key["train"] = {k: v for k, v in params["train"].items() if k not in ("grad", "full", "finetune")}
    checkpoint = params["base"]["checkpoint"]
    key["encoder_sha256"] = checkpoint and hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest()
    return Path(params["out_dir"]) / "checkpoints" / f"omega-{digest(key)}.pt"


def omega_bar(params, data, nets, log):
    """ω̄: the classifier of a finished actv run on this base network; trained first if missing."""
    path = omega_path(params)
    classifier = nn.Linear(FEATURE_DIM, data.num_classes).to(data.x_train.device)
    if not path.is_file():
        log(f"no finished actv run for this base network ({path}): training it first")
        actv = dict(params, model=dict(params["model"], head="actv"))
        run_head(actv, data=data, nets=nets, log=log)
    load_into(classifier, path, expect={"kind": "classifier", "dataset": data.name})
    return classifier.requires_grad_(False)


def frozen_part(head, nets, bottom, shared=True):
    """x → the inputs of the trainable part: pooled features and/or the input z of `top`.
    shared: the gradient term uses the pre-trained network itself, so the full model takes
    f_θ̄(x) from its own forward pass instead of a second one."""
    def frozen(x):
        out = {}
        if head == "actv" or head == "full" and not shared:
            out["features"] = nets["pretrained"](x)
        if head in ("grad", "full", "finetune"):
            out["z"] = bottom(x)
        return out
    return frozen


def run_head(params, data=None, nets=None, log=None):
    """Train and evaluate the head `params['model']['head']`; returns the result dict and writes
    it (and the trained head's checkpoint) under out_dir."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    start = time.perf_counter()
    device = pick_device(params["device"])
    seed_everything(params["seed"])
    d = params["data"]
    data = data or load_dataset(d["dataset"], d["root"], device, tuple(params["base"]["pixel_range"]),
                                d["n_train"], d["n_test"], params["seed"], d["download"])
    nets = nets or base_networks(params, data)
    model_p, train_p = params["model"], params["train"]
    head, layers = model_p["head"], parse_layers(model_p["layers"])
    if head == "actv":
        torch.manual_seed(params["seed"])
        model, bottom = build_head("actv", nn.Linear(FEATURE_DIM, data.num_classes)), None
    else:
        omega = omega_bar(params, data, nets, log)
        source = nets["pretrained"] if head == "finetune" else gradient_network(params, nets)
        bottom, top = split(source, layers)
        omega_grad = omega
        if model_p["omega"] == "random" and head != "finetune":
            torch.manual_seed(params["base"]["random_seed"])
            omega_grad = nn.Linear(FEATURE_DIM, data.num_classes)
        model = build_head(head, omega, top, layers, omega_grad, model_p["ntk_scale"])
    model = model.to(device)
    shared = model_p["theta1"] == model_p["theta2"] == "pretrained"
    frozen = frozen_part(head, nets, bottom, shared)
    batch = train_p["eval_batch_size"]
    inputs = FrozenInputs(frozen, data.x_train, model_p["cache"], batch)
    test_inputs = FrozenInputs(frozen, data.x_test, model_p["cache"], batch)
    setup_seconds = time.perf_counter() - start
    history = train(model, inputs, data.y_train, train_p[head], train_p["batch_size"],
                    train_p["clip_grad_norm"], train_p["log_every"], params["seed"],
                    desc=f"{head} {model_p['layers']}")
    train_seconds = time.perf_counter() - start - setup_seconds
    test_acc = accuracy(predict(model, test_inputs, batch), data.y_test)
    result = {"head": head, "layers": model_p["layers"], "dataset": data.name,
              "theta1": model_p["theta1"], "theta2": model_p["theta2"], "omega": model_p["omega"],
              "seed": params["seed"], "accuracy": test_acc,
              "iterations": train_p[head]["iterations"], "loss_history": history,
              "seconds": time.perf_counter() - start, "setup_seconds": setup_seconds,
              "train_seconds": train_seconds, "params": params, "environment": environment(device)}
    run_id = f"{head}-{model_p['layers']}-{digest(params)}"
    save_head(params, model, run_id, data)
    out = Path(params["out_dir"]) / "train-head" / f"{run_id}.json"
    write_json(out, result)
    result["path"] = str(out)
    log(f"{head} {model_p['layers']} on {data.name}: test accuracy {test_acc:.4f} ({out})")
    return result


def save_head(params, model, run_id, data):
    head = params["model"]["head"]
    meta = {"kind": "head", "head": head, "dataset": data.name, "run_id": run_id,
            "parametrisation": "ntk" if head in ("grad", "full") else "standard"}
    save_checkpoint(Path(params["out_dir"]) / "checkpoints" / f"{run_id}.pt", model.state_dict(), meta)
    if head == "actv":  # this run's classifier is ω̄ for every later head on the same base network
        save_checkpoint(omega_path(params), model.w1.state_dict(),
                        {"kind": "classifier", "dataset": data.name})
