"""Benchmark: time per training step of every head, side by side in one run (python -m gradfeat_core.experiments.bench).

Rows {head, layers, cached, batch, path, ms_per_step, floor_ms, ratio_to_finetune, ratio_to_floor}:
`path` is `fast` (tangent.py) or `jvp` (torch.func.jvp, the reference), both timed; the ratios are
to fine-tuning (fast) at the same depth and cache setting and to the floor (the two matrix products
a full step at conv5 needs; floor_ms, timed in turn with that depth and cache setting's steps),
all measured in this same run. Also: the frozen-part cache's size per depth and data set, seconds
to evaluate 10k images (cached and from raw images), the explicit per-sample-gradient approach at
a small size (what the JVP avoids), iterations per second of each pre-training objective, and
every registered base network's heads at its top block, beside its FLOPs per image.
Random weights and images: the cost of a step does not depend on what the numbers are.
"""
import argparse
import functools
import time
from pathlib import Path

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from ..method import tangent
from ..method.linear_model import HEADS, build_head
from ..method.nets import fold_batchnorm, parse_layers, split, theta2_names
from ..method.registry import ARCHITECTURES
from .data import SIZES
from .results import environment, write_json
from .run import cache_bytes, frozen_part
from .train import FrozenInputs, in_batches, make_optimizer, pick_device, predict, train_step

SCHEDULE = {"optimizer": "sgd", "lr": 1e-3, "weight_decay": 5e-5, "iterations": 1, "stepsize": 1}


def _once(fn, device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def timed(fn, repeats, device):
    """Median seconds of `fn()` over `repeats` runs, after one warm-up run."""
    return interleaved({"fn": fn}, repeats, device)["fn"]


def interleaved(fns, repeats, device):
    """{name: median seconds} of each of `fns`, timed in turn round after round (after one
    warm-up round), so that every one of them sees the same machine: a slow spell on a shared
    CPU falls on all of them, not on whichever happened to be timed then."""
    times = {name: [] for name in fns}
    for r in range(repeats + 1):
        for name, fn in fns.items():
            seconds = _once(fn, device)
            if r:
                times[name].append(seconds)
    return {name: sorted(t)[len(t) // 2] for name, t in times.items()}


def setting(device, n_images, classes=10, arch="ali"):
    """(base network `arch`, batch norm folded, images, labels, ω̄): random, one channel."""
    torch.manual_seed(0)
    net = ARCHITECTURES[arch](in_channels=1).reset_parameters()
    net = fold_batchnorm(net).to(device).requires_grad_(False)
    x = torch.rand(n_images, 1, 32, 32, device=device)
    y = torch.randint(0, classes, (n_images,), device=device)
    omega = nn.Linear(net.FEATURE_DIM, classes).to(device).requires_grad_(False)
    return net, x, y, omega


def head_model(head, spec, net, omega, cached, x, path="fast", primal=True):
    """The head and its frozen inputs; cached: the frozen parts computed once (False: per batch);
    primal=False: without the primal record (run.fit_cache's middle case)."""
    layers = parse_layers(spec, net.LAYERS)
    bottom, top = split(net, layers)
    model = build_head(head, omega, top, layers, path=path).to(x.device)
    nets = {"pretrained": net}
    plan = tangent.plan(top) if cached and primal and path == "fast" else None
    inputs = FrozenInputs(frozen_part(head, nets, bottom, layers=plan), x, cache=cached)
    return model, inputs


def step_fn(head, spec, net, omega, cached, x, y, idx, path="fast", primal=True):
    """One training step of `head` at `spec` on `net`, as a function to time."""
    model, inputs = head_model(head, spec, net, omega, cached, x, path, primal)
    opt, _ = make_optimizer([p for p in model.parameters() if p.requires_grad], SCHEDULE)
    return functools.partial(train_step, model, opt, inputs, y, idx)


def floor_step(device, batch):
    """The arithmetic a full-model step at conv5 cannot avoid: its two matrix products, batch ×
    4096 × 512 (the tangent, and the gradient of w2), as a function to time."""
    g = torch.Generator(device="cpu").manual_seed(0)
    z = torch.randn(batch, 4096, generator=g).to(device)
    w = torch.randn(512, 4096, generator=g).to(device)
    grad = torch.randn(batch, 512, generator=g).to(device)
    return lambda: (z @ w.T, grad.T @ z)


VARIANTS = [(h, "fast") for h in HEADS] + [("grad", "jvp"), ("full", "jvp")]


def step_times(device, batch, repeats, images=512):
    """Rows per depth × cache setting × head and path, each group timed round-robin with the
    floor; every ratio is to a time of the same group. Returns the rows and the floor's median.
    images: how many the batches are drawn from (at least 4 batches)."""
    net, x, y, omega = setting(device, max(4 * batch, images))
    idx = torch.arange(batch)
    rows, floors = [], []
    for spec in net.BENCH_LAYERS:
        for cached in (True, False):
            steps = {"floor": floor_step(device, batch)}
            for head, path in VARIANTS:
                steps[head, path] = step_fn(head, spec, net, omega, cached, x, y, idx, path)
            ms = {k: 1000 * t for k, t in interleaved(steps, repeats, device).items()}
            floor = ms.pop("floor")
            floors.append(floor)
            rows += [{"head": h, "layers": spec, "cached": cached, "batch": batch, "path": path,
                      "ms_per_step": round(t, 3), "floor_ms": round(floor, 3),
                      "ratio_to_finetune": round(t / ms["finetune", "fast"], 3),
                      "ratio_to_floor": round(t / floor, 3)} for (h, path), t in ms.items()]
    return rows, sorted(floors)[len(floors) // 2]


# (channels, training images, test images) of the paper-sized data sets, for the cache's size.
DATA_SIZES = {name: SIZES[name] for name in ("fashion-mnist", "cifar10", "svhn")}  # svhn: its extra set


def cache_sizes():
    """Bytes per image and GiB in all (train + test) of the frozen-part cache of a grad or full
    run at each depth: z, the primal record through θ̄2, f_θ̄(x) (only for Table 1's mixes)."""
    rows = []
    for name, (channels, n_train, n_test, _) in DATA_SIZES.items():
        net = ARCHITECTURES["ali"](in_channels=channels).reset_parameters()
        net = fold_batchnorm(net).requires_grad_(False)
        x = torch.rand(1, channels, 32, 32)
        for spec in net.BENCH_LAYERS:
            bottom, top = split(net, parse_layers(spec))
            parts = frozen_part("full", {"pretrained": net}, bottom, shared=False,
                                layers=tangent.plan(top))
            sizes = cache_bytes(parts, x)
            per_image = sum(sizes.values())
            rows.append({"data": name, "layers": spec, **{f"{k}_bytes": v for k, v in sizes.items()},
                         "bytes_per_image": per_image,
                         "total_gib": round(per_image * (n_train + n_test) / 2 ** 30, 2)})
    return rows


def eval_seconds(device, n_images=10_000, batch=1000):
    """Seconds of `predict` on n_images at conv5 per head: from the frozen-part cache (as runs
    evaluate) and from raw images (nothing cached)."""
    net, x, _, omega = setting(device, n_images)
    out = {}
    for cached in (True, False):
        for head in HEADS:
            model, inputs = head_model(head, "conv5", net, omega, cached, x)
            seconds = timed(lambda: predict(model, inputs, batch), 1, device)
            out[f"{head} {'cached' if cached else 'raw'}"] = round(seconds, 3)
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


FLOOR = "θ2 forward (floor)"


def architecture_times(device, batch, repeats, images=1000):
    """Every registered base network at the top of its BENCH_LAYERS, timed in turn: ms per step
    of grad, full and fine-tuning (cached), their floor (one forward pass of θ2 over the batch,
    without gradients: less than any step can do), and ms to compute the frozen part
    (everything below θ2) of `images` images, the cache a run builds once per data set. Returns
    those rows, each step's with its ratio to fine-tuning's and to the floor, and, per network,
    the forward FLOPs per image of θ2 and of the blocks below it."""
    steps, flops = {}, {}
    idx = torch.arange(batch)
    for arch in ARCHITECTURES:
        net, x, y, omega = setting(device, max(4 * batch, images), arch=arch)
        spec = net.BENCH_LAYERS[0]
        for head in ("grad", "full", "finetune"):
            steps[arch, spec, head] = step_fn(head, spec, net, omega, True, x, y, idx)
        theta2 = parse_layers(spec, net.LAYERS)
        bottom, top = split(net, theta2)
        z = bottom(x[:batch])
        steps[arch, spec, FLOOR] = torch.no_grad()(functools.partial(top, z))
        steps[arch, spec, f"frozen part, {images} images"] = functools.partial(in_batches, bottom,
                                                                             x[:images], 1000)
        per_block = net.flops()
        flops[arch] = {"layers": spec, "theta2_flops": sum(per_block[b] for b in theta2),
                       "below_flops": sum(per_block[b] for b in bottom._modules)}
    ms = interleaved(steps, repeats, device)
    rows = []
    for (arch, spec, what), t in ms.items():
        row = {"arch": arch, "layers": spec, "what": what, "ms": round(1000 * t, 2)}
        if what in ("grad", "full", "finetune"):
            row.update(ratio_to_finetune=round(t / ms[arch, spec, "finetune"], 3),
                       ratio_to_floor=round(t / ms[arch, spec, FLOOR], 3))
        rows.append(row)
    return rows, flops


def pretrain_speed(device, repeats=3, batch=None):
    """Iterations per second of each pre-training objective at its own batch size (or `batch`)."""
    from .params import load_params
    from ..method.registry import OBJECTIVES
    from .pretrain import build_networks, optimisers, random_batches, step
    out = {}
    for objective in (o for o, entry in OBJECTIVES.items() if not entry.imported):  # pre-trained here
        params = load_params("fashion-mnist", [f"pretrain.batch_size={batch}"] if batch else [],
                             objective=objective)
        p = params["pretrain"]
        nets = {k: v.to(device) for k, v in
                build_networks(objective, 1, p, params["base"]["leak"], 0).items()}
        opts = optimisers(nets, p)
        x = random_batches(objective, p, 1, device)
        seconds = timed(lambda: step(nets, opts, x, p, objective), repeats, device)
        out[objective] = {"batch": p["batch_size"], "iterations_per_s": round(1 / seconds, 3)}
    return out


def ali_update_variants(device, repeats=5, updates=3):
    """The ALI update (the paper's recipe, base.yaml's pretrain defaults) as it runs, in channels-
    last memory format, and under torch.compile, timed in turn in this run: {variant: {ms,
    ratio_to_as_is, max_loss_difference}}; the last is the largest difference of the d and e/g
    losses from the as-is networks' over `updates` updates from the same weights and batches (a
    variant that changes the numbers beyond rounding is not the same update)."""
    import copy
    from .params import load_params
    from .pretrain import build_networks, optimisers, random_batches, step
    params = load_params("fashion-mnist", objective="ali")
    p = params["pretrain"]
    start = {k: v.to(device) for k, v in build_networks("ali", 1, p, params["base"]["leak"], 0).items()}
    x = random_batches("ali", p, 1, device)

    def variant(name):
        nets = copy.deepcopy(start)
        batches = x
        if name == "channels_last":
            nets = {k: v.to(memory_format=torch.channels_last) for k, v in nets.items()}
            batches = [b.contiguous(memory_format=torch.channels_last) for b in x]
        if name == "compiled":
            nets = {k: torch.compile(v) for k, v in nets.items()}
        return nets, optimisers(nets, p), batches

    out, losses, fns = {}, {}, {}
    for name in ("as_is", "channels_last", "compiled"):
        nets, opts, batches = variant(name)
        torch.manual_seed(0)
        losses[name] = [step(nets, opts, batches, p, "ali") for _ in range(updates)]
        fns[name] = functools.partial(step, nets, opts, batches, p, "ali")  # timed on from there:
        # an update's cost does not depend on the weights, and the compiled one is not compiled twice
    times = interleaved(fns, repeats, device)
    for name, seconds in times.items():
        diff = max(abs(a[k] - b[k]) for a, b in zip(losses[name], losses["as_is"]) for k in a)
        out[name] = {"ms": round(seconds * 1e3, 1), "ratio_to_as_is": round(seconds / times["as_is"], 3),
                     "max_loss_difference": diff}
    return out


def print_table(rows, floor):
    print(f"floor (two {rows[0]['batch']}x4096x512 matrix products, timed in turn with each group; "
          f"median): {floor:.2f} ms")
    print(f"{'head':9} {'path':5} {'layers':8} {'cached':6} {'batch':>5} {'ms/step':>9} "
          f"{'÷ finetune':>10} {'÷ floor':>8}")
    for r in rows:
        print(f"{r['head']:9} {r['path']:5} {r['layers']:8} {str(r['cached']):6} {r['batch']:5d} "
              f"{r['ms_per_step']:9.2f} {r['ratio_to_finetune']:10.2f} {r['ratio_to_floor']:8.2f}")


def print_cache(rows):
    print("frozen-part cache of a grad/full run (z + primal record; + features for Table 1's mixes):")
    print(f"{'data':14} {'layers':8} {'z':>8} {'primal':>8} {'features':>8} {'B/image':>8} {'GiB':>7}")
    for r in rows:
        print(f"{r['data']:14} {r['layers']:8} {r['z_bytes']:8d} {r['primal_bytes']:8d} "
              f"{r['features_bytes']:8d} {r['bytes_per_image']:8d} {r['total_gib']:7.2f}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--out", default="reports/bench/bench.json")
    p.add_argument("--ali-update", action="store_true",
                   help="only time the ALI update as is, channels-last and compiled (issue 41's question)")
    args = p.parse_args(argv)
    device = pick_device(args.device)
    if args.ali_update:
        print(f"ALI update, batch 100, {torch.get_num_threads()} thread(s), median of {args.repeats}:")
        for name, r in ali_update_variants(device, args.repeats).items():
            print(f"  {name:14} {r['ms']:8.1f} ms  ÷ as is {r['ratio_to_as_is']:5.2f}  "
                  f"largest loss difference over its first updates {r['max_loss_difference']:.2e}")
        return
    rows, floor = step_times(device, args.batch, args.repeats)
    print_table(rows, floor)
    cache = cache_sizes()
    print_cache(cache)
    evaluation = eval_seconds(device)
    print("evaluation at conv5, seconds for 10k images:", evaluation)
    explicit = per_sample_gradients(device)
    print("per-sample gradients vs JVP:", explicit)
    pretraining = pretrain_speed(device)
    print("pre-training, iterations/s:", pretraining)
    archs, flops = architecture_times(device, args.batch, args.repeats)
    print(f"each base network at its top block, batch {args.batch}, cached (ms; ratios measured "
          "in turn in this run):")
    for r in archs:
        ratios = (f"  ÷ finetune {r['ratio_to_finetune']:5.2f}  ÷ floor {r['ratio_to_floor']:6.2f}"
                  if "ratio_to_floor" in r else "")
        print(f"  {r['arch']:8} {r['layers']:9} {r['what']:26} {r['ms']:9.2f}{ratios}")
    print("forward MFLOPs per image:")
    for arch, f in flops.items():
        print(f"  {arch:4} {f['layers']:6} θ2 {f['theta2_flops'] / 1e6:9.2f}   below θ2 "
              f"{f['below_flops'] / 1e6:9.2f}")
    write_json(Path(args.out), {"rows": rows, "floor_ms": round(floor, 3), "cache": cache,
                                "eval_seconds_10k": evaluation, "architectures": archs,
                                "flops": flops,
                                "per_sample_gradients": explicit, "pretrain": pretraining,
                                "environment": environment(device)})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
