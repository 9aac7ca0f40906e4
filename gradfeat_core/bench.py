"""Benchmark: time per training step of every head, side by side in one run (python -m gradfeat_core.bench).

Rows {head, layers, cached, batch, ms_per_step, ratio_to_finetune}: the ratio is against fine-tuning
at the same depth and cache setting, measured in this same run. Also: evaluation throughput on
10k images, the explicit per-sample-gradient approach at a small size (what the JVP avoids), and
iterations per second of each pre-training objective.
Random weights and images: the cost of a step does not depend on what the numbers are.
"""
import argparse
import time
from pathlib import Path

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from .gan import build_bigan
from .linear_model import HEADS, build_head
from .nets import FEATURE_DIM, Encoder, fold_batchnorm, parse_layers, split, theta2_names
from .results import environment, write_json
from .run import frozen_part
from .train import FrozenInputs, make_optimizer, pick_device, predict, train_step

SCHEDULE = {"optimizer": "sgd", "lr": 1e-3, "weight_decay": 5e-5, "iterations": 1, "stepsize": 1}


def timed(fn, repeats, device):
    """Median seconds of `fn()` over `repeats` runs, after one warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def setting(device, n_images, classes=10):
    torch.manual_seed(0)
    net = fold_batchnorm(Encoder(in_channels=1).reset_parameters()).to(device).requires_grad_(False)
    x = torch.rand(n_images, 1, 32, 32, device=device)
    y = torch.randint(0, classes, (n_images,), device=device)
    omega = nn.Linear(FEATURE_DIM, classes).to(device).requires_grad_(False)
    return net, x, y, omega


def head_model(head, spec, net, omega, cached, x):
    layers = parse_layers(spec)
    bottom, top = split(net, layers)
    model = build_head(head, omega, top, layers).to(x.device)
    nets = {"pretrained": net}
    inputs = FrozenInputs(frozen_part(head, nets, bottom), x, cache=cached)
    return model, inputs


def step_times(device, batch, repeats):
    net, x, y, omega = setting(device, max(4 * batch, 512))
    rows = []
    for spec in ("conv5", "conv4-5", "conv3-5"):
        for cached in (True, False):
            ms = {}
            for head in HEADS:
                model, inputs = head_model(head, spec, net, omega, cached, x)
                opt, _ = make_optimizer([p for p in model.parameters() if p.requires_grad], SCHEDULE)
                idx = torch.arange(batch)
                ms[head] = 1000 * timed(lambda: train_step(model, opt, inputs, y, idx), repeats, device)
            rows += [{"head": h, "layers": spec, "cached": cached, "batch": batch,
                      "ms_per_step": round(ms[h], 3),
                      "ratio_to_finetune": round(ms[h] / ms["finetune"], 3)} for h in HEADS]
    return rows


def eval_throughput(device, n_images=10_000, batch=1000):
    """Images per second of `predict` at conv5, from raw images (nothing cached)."""
    net, x, _, omega = setting(device, n_images)
    out = {}
    for head in HEADS:
        model, inputs = head_model(head, "conv5", net, omega, False, x)
        out[head] = round(n_images / timed(lambda: predict(model, inputs, batch), 1, device), 1)
    return out


def per_sample_gradients(device, n=8, spec="conv5"):
    """ω̄ᵀ J materialised per sample with vmap(jacrev) then multiplied by w2, against one JVP."""
    net, x, _, omega = setting(device, n)
    layers = parse_layers(spec)
    bottom, top = split(net, layers)
    z = bottom(x[:n])
    theta2 = {k: v for k, v in top.named_parameters() if k in theta2_names(top, layers)}

    def logits(params, zi):
        return omega.weight @ functional_call(top, params, (zi[None],))[0]

    def explicit():
        grads = vmap(jacrev(logits), in_dims=(None, 0))(theta2, z)  # n × c × |θ2|, per tensor
        return sum((g * w[None, None]).flatten(2).sum(2) for g, w in
                   zip(grads.values(), theta2.values())), grads

    _, grads = explicit()
    bytes_per_sample = sum(g[0].numel() * g.element_size() for g in grads.values())
    del grads
    model, inputs = head_model("grad", spec, net, omega, True, x[:n])
    explicit_s = timed(explicit, 2, device)
    jvp_s = timed(lambda: model(inputs[torch.arange(n)]), 5, device)
    return {"layers": spec, "samples": n, "explicit_ms_per_sample": round(1000 * explicit_s / n, 3),
            "jvp_ms_per_sample": round(1000 * jvp_s / n, 3),
            "explicit_bytes_per_sample": bytes_per_sample,
            "w2_bytes_shared_by_all_samples": 4 * sum(p.numel() for p in theta2.values())}


def pretrain_speed(device, repeats=3):
    """Iterations per second of each pre-training objective at its own batch size."""
    from .params import load_params
    from .pretrain import optimisers, step
    out = {}
    for objective in ("ali", "wali"):
        p = load_params("fashion-mnist", objective=objective)["pretrain"]
        nets = {k: v.to(device) for k, v in build_bigan(objective, 1, p["latent"], 0.2, 0).items()}
        opts = optimisers(nets, p)
        per_step = p["critic_steps"] if objective == "wali" else 1
        x = [torch.rand(p["batch_size"], 1, 32, 32, device=device)] * per_step
        seconds = timed(lambda: step(nets, opts, x, p, objective, p["latent"]), repeats, device)
        out[objective] = {"batch": p["batch_size"], "iterations_per_s": round(1 / seconds, 3)}
    return out


def print_table(rows):
    print(f"{'head':9} {'layers':8} {'cached':6} {'batch':>5} {'ms/step':>9} {'÷ finetune':>10}")
    for r in rows:
        print(f"{r['head']:9} {r['layers']:8} {str(r['cached']):6} {r['batch']:5d} "
              f"{r['ms_per_step']:9.2f} {r['ratio_to_finetune']:10.2f}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--out", default="reports/bench/bench.json")
    args = p.parse_args(argv)
    device = pick_device(args.device)
    rows = step_times(device, args.batch, args.repeats)
    print_table(rows)
    evaluation = eval_throughput(device)
    print("evaluation, images/s at conv5 from raw images (10k):", evaluation)
    explicit = per_sample_gradients(device)
    print("per-sample gradients vs JVP:", explicit)
    pretraining = pretrain_speed(device)
    print("pre-training, iterations/s:", pretraining)
    write_json(Path(args.out), {"rows": rows, "eval_images_per_s": evaluation,
                                "per_sample_gradients": explicit, "pretrain": pretraining,
                                "environment": environment(device)})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
