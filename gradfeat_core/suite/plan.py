"""`reproduce --dry-run`: what a reproduction would run and what it would cost; runs nothing.

It prints the grid (each experiment, its seeds, done when its result JSON exists) and, for the
device it detects, an estimate per stage from a few timed steps of each head at its depth and
batch size and of one pre-training update, on random weights and images (a step's cost does not
depend on the numbers):
    time   steps × ms per step, for steps from the stopping rule's least (min_iterations +
           patience × eval_every) to the cap, per seed and per trial of the first seed's
           (run.trials: lr_grid, alternatives), plus the frozen part of every image once
           per base network and depth; evaluation, kernel start-up and data loading not counted
    memory the training and test images on the device (float32) + the largest frozen-part cache,
           as far as they fit the device budget (cache.device_gib); the rest streams from host memory
           (images there as uint8: a quarter of float32's bytes)
    disk   every frozen-part cache the grid writes to cache/, once per base network and depth, as
           run.fit_cache keeps it within cache.max_gib (the primal record, then every part,
           dropped past it and recomputed per batch: the time counts a step that does so); random
           views of test images (data.test_views) are neither held nor cached: decoded from
           their files batch by batch, their frozen part computed once per run, which it counts

For a device that is not at hand (`--assume-tflops T`), every step is counted instead of timed:
its matrix-product and convolution FLOPs (torch's FlopCounterMode) divided by T TFLOP/s, plus
LAUNCH_SECONDS for every operator it dispatches (a GPU runs a small batch's kernels faster than
PyTorch can launch them). That is an estimate, never a measurement, and the output says so.
"""

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from ..experiments import bench
from ..experiments.data import DATASETS, SIZES, image_side
from ..experiments.memory import device_budget, fits
from ..experiments.params import load_params
from ..experiments.run import cache_bytes, cache_kept, frozen_part, trials
from ..experiments.train import pick_device
from ..method import tangent
from ..method.registry import ARCHITECTURES, OBJECTIVES
from ..method.nets import fold_batchnorm, parse_layers, split
from .grid import experiments, tables, twins
from .sensitivity import applied, perturbations

# (channels, training images, test images) as the loaders read them
LAUNCH_SECONDS = 10e-6  # PyTorch's eager overhead per operator on a GPU (a kernel launch and dispatch)


class _Operators(TorchDispatchMode):
    """Counts the operators dispatched inside it."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


def counted_seconds(fn, tflops):
    """Seconds one call of `fn` would take on a device of `tflops` TFLOP/s: its counted
    matrix-product and convolution FLOPs at that rate plus LAUNCH_SECONDS per operator (after one
    uncounted call, as a timed step is warmed up)."""
    fn()
    with FlopCounterMode(display=False) as flops, _Operators() as operators:
        fn()
    return flops.get_total_flops() / (tflops * 1e12) + operators.count * LAUNCH_SECONDS


def image_counts(params):
    """(channels, training images, test images, image side) of the data parameters' set, as
    load_dataset holds them: data.train_views of each training image, each test image's centre
    crop (its views: test_view_count)."""
    d = params["data"]
    if d["dataset"] == "synthetic":
        return 1, d["n_train"] or 512, d["n_test"] or 256, 32
    channels, n_train, n_test, _ = SIZES[d["dataset"]]
    return (channels, min(d["n_train"] or n_train, n_train) * d["train_views"],
            min(d["n_test"] or n_test, n_test), image_side(d))


def test_view_count(params):
    """How many random views of test images the data parameters hold (0: none)."""
    d = params["data"]
    return image_counts(params)[2] * d["test_views"] if d["test_views"] > 1 else 0


class Timer:
    """Seconds per training step of (head, layers, batch) and per image of a frozen part, on
    `device`, each timed once on random weights of the profile's architecture (tflops: counted
    for a device of that many TFLOP/s instead, `counted_seconds`)."""

    def __init__(self, params, device, tflops=None):
        self.device, self.params, self.tflops = device, params, tflops
        channels, n_train, n_test, self.side = image_counts(params)
        self.sample = min(256, n_train + n_test)  # images a frozen part is timed on: no more than a run has
        arch = ARCHITECTURES[params["base"]["arch"]]
        self.net = fold_batchnorm(arch(in_channels=channels).reset_parameters()).to(device)
        self.net.requires_grad_(False)
        self.channels, self.steps, self.frozen = channels, {}, {}

    def step(self, head, layers, batch, cached=True, primal=True):
        """cached: the frozen parts computed once (False: per batch, trunk and all); primal: the
        primal record among them (False: recomputed per batch from z), as run.fit_cache decides."""
        key = (head, layers, batch, cached, primal)
        if key not in self.steps:
            torch.manual_seed(0)
            x = torch.rand(batch, self.channels, self.side, self.side, device=self.device)
            y = torch.randint(0, 10, (batch,), device=self.device)
            omega = nn.Linear(self.net.FEATURE_DIM, 10).to(self.device).requires_grad_(False)
            fn = bench.step_fn(head, layers, self.net, omega, cached, x, y, torch.arange(batch), primal=primal)
            self.steps[key] = self.seconds(fn, 3)
        return self.steps[key]

    def seconds(self, fn, repeats):
        """The median of `repeats` timed calls of fn, or its counted seconds (self.tflops)."""
        if self.tflops:
            return counted_seconds(fn, self.tflops)
        return bench.timed(fn, repeats, self.device)

    def frozen_per_image(self, layers):
        if layers not in self.frozen:
            bottom, _ = split(self.net, parse_layers(layers, self.net.LAYERS))
            x = torch.rand(self.sample, self.channels, self.side, self.side, device=self.device)
            with torch.no_grad():
                self.frozen[layers] = self.seconds(lambda: bottom(x), 3) / self.sample
        return self.frozen[layers]

    def cached(self, head, layers, images, max_gib):
        """(bytes per image, the parts kept) of what run.fit_cache keeps of the frozen parts of
        `images` images within max_gib (cache.max_gib): all, all but the primal record, or none
        (run.cache_kept: None)."""
        bottom, top = split(self.net, parse_layers(layers, self.net.LAYERS))
        parts = frozen_part(head, {"pretrained": self.net}, bottom, shared=False,
                            layers=tangent.plan(top) if head != "actv" else None)
        x = torch.rand(1, self.channels, self.side, self.side, device=self.device)
        sizes = cache_bytes(parts, x)
        kept = cache_kept(sizes, images, max_gib)
        return (0 if kept is None else sum(sizes[name] for name in kept)), kept


def steps_range(train, head):
    """(least, most) iterations a run of `head` takes under the stopping rule."""
    cap = train[head]["iterations"]
    least = train["min_iterations"] + train["patience"] * train["eval_every"] if train["patience"] else cap
    return min(max(least, 1), cap), cap


def estimate(profile, sets=(), objective=None, runs=None, tflops=None):
    """{'device', 'stages': [{stage, runs, to_run, least_min, most_min}], 'peak_gib', 'disk_gib',
    'experiments': [{name, table, seeds, done}]} for the profile; runs: {name: done} of
    reproduce's keyed runs (None: none known); tflops: count the steps for a device of that many
    TFLOP/s instead of timing them on this one."""
    params = load_params(profile, sets, objective=objective)
    device = pick_device(params["device"])
    timer, timer_of = _timers(profile, sets, params, device, tflops)
    grid = experiments(params)
    repeats, runs = twins(grid), runs or {}
    stages, caches, peak, host = {}, {}, 0, 0
    budget = device_budget(device, params["cache"]["device_gib"])

    def add(name, e, done):
        """Count experiment e's runs (unless done) in stage `name`, its cache and its memory."""
        nonlocal peak, host
        p = e.params(params)
        head, layers, train = p["model"]["head"], p["model"]["layers"], p["train"]
        channels, n_train, n_test, side = image_counts(p)
        views = test_view_count(p)  # scored once per run, their frozen part computed per batch
        per_image, kept = timer_of(e).cached(head, layers, n_train + n_test, p["cache"]["max_gib"]) \
            if p["model"]["cache"] else (0, None)
        per_step = timer_of(e).step(head, layers, train["batch_size"], kept is not None,
                                    kept is not None and "primal" in kept)
        least, most = steps_range(train, head)
        stage = stages.setdefault(name, {"runs": 0, "to_run": 0, "least": 0.0, "most": 0.0})
        stage["runs"] += 1
        if done:
            return
        stage["to_run"] += 1
        trained = len(e.seeds) + len(trials(train[head])) - 1  # the first seed trains every trial
        seconds = len(e.seeds) * views * timer_of(e).frozen_per_image(layers)
        stage["least"] += trained * least * per_step + seconds
        stage["most"] += trained * most * per_step + seconds
        cache_key = (name, e.objective, p["base"]["encoder"], layers, n_train, head != "actv")
        if cache_key not in caches:
            caches[cache_key] = (n_train + n_test) * per_image
            seconds = (n_train + n_test) * timer_of(e).frozen_per_image(layers) if kept is not None else 0
            stage["least"] += seconds
            stage["most"] += seconds
        device_bytes, host_bytes = _memory(p, caches[cache_key], budget)
        peak, host = max(peak, device_bytes), max(host, host_bytes)

    for e in grid:
        if e.name not in repeats:
            add(f"Table {e.table}", e, runs.get(e.name))
    # the sensitivity stage: its cells are chosen after the grid, from what decides each verdict;
    # priced as the heads' table on the profile's own base network (what every claim but C3/C4 reads)
    heads_table = [e for e in grid if e.table == tables(params)[0] and e.encoder == "pretrained" and not e.objective]
    for perturbation in perturbations(params):
        for e in heads_table:
            add("sensitivity", applied(e, perturbation), runs.get(f"sensitivity/{perturbation.slug}/{e.name}"))
    pretrained_here = _pretrainings(profile, sets, objective, params)
    if pretrained_here:
        stages = {"pre-training": _pretraining_stage(pretrained_here, timer, device, runs), **stages}
    return {"device": str(device), "tflops": tflops,
            "stages": [{"stage": k, "runs": v["runs"], "to_run": v["to_run"], "least_min": v["least"] / 60,
                        "most_min": v["most"] / 60} for k, v in stages.items()],
            "peak_gib": peak / 2 ** 30, "disk_gib": sum(caches.values()) / 2 ** 30,
            "budget_gib": None if budget is None else budget / 2 ** 30, "host_gib": host / 2 ** 30,
            "experiments": _experiments_done(grid, repeats, runs)}


def _memory(p, cache, budget):
    """(device bytes, host bytes) a run of parameters `p` holds: its training and test images
    (float32; views are streamed) on the device where they fit the budget, as load_dataset places
    them, else on the host (uint8 but the synthetic set), and its frozen-part cache of `cache`
    bytes on the device where it fits beside them, as run.cache_on_host decides."""
    channels, n_train, n_test, side = image_counts(p)
    images = (n_train + n_test) * channels * side * side * 4
    on_device = images if fits(images, budget) else 0
    on_host = 0 if on_device else images // 4 if p["data"]["dataset"] != "synthetic" else images
    cache_on = fits(cache, budget, on_device)
    return on_device + cache * cache_on, on_host + cache * (not cache_on)


def _timers(profile, sets, params, device, tflops):
    """(the profile's Timer, timer_of: an experiment → the Timer of its base network and image
    side), one Timer per base network (the profile's, each of reproduce.other_bases) and image
    side (a sensitivity design may change it), made when first asked for."""
    timer = Timer(params, device, tflops)
    timers, bases = {("", timer.side): timer}, {"": params}

    def timer_of(e):
        if e.objective not in bases:
            bases[e.objective] = load_params(profile, sets, objective=e.objective)
        own = e.params(bases[e.objective])
        key = (e.objective, image_counts(own)[3])
        if key not in timers:
            timers[key] = Timer(own, device, tflops)
        return timers[key]
    return timer, timer_of


def _pretrainings(profile, sets, objective, params):
    """The parameters of each pre-training a reproduction of the profile runs: its own base
    network's (unless committed), the sensitivity stage's second one (unless committed), and
    each of reproduce.other_bases that is not imported."""
    out = [params] if params["base"]["checkpoint"] is None else []
    out += [load_params(profile, sets, objective=objective, overrides=q.pretraining)
            for q in perturbations(params) if q.pretraining is not None and not q.checkpoint]
    out += [load_params(profile, sets, objective=o) for o in params["reproduce"]["other_bases"]
            if not OBJECTIVES[o].imported]
    return out


def _pretraining_stage(pretrained_here, timer, device, runs):
    """The pre-training stage {runs, to_run, least, most}: each pre-training of
    `pretrained_here` (parameters) a timed update × its iterations, unless done (runs)."""
    from ..experiments.pretrain import build_networks, optimisers, random_batches, step
    stage = {"runs": 0, "to_run": 0, "least": 0.0, "most": 0.0}
    for own in pretrained_here:
        pp = own["pretrain"]
        nets = {k: v.to(device) for k, v in build_networks(pp["objective"], timer.channels, pp,
                                                           own["base"]["leak"], 0).items()}
        opts = optimisers(nets, pp)
        source = {**own["data"], **own["reproduce"]["pretrain"].get("data", {})}  # its data set's
        x = random_batches(pp["objective"], pp, timer.channels, device,
                           size=image_counts({"data": source})[3], classes=DATASETS[source["dataset"]])
        update = timer.seconds(lambda: step(nets, opts, x, pp, pp["objective"]), 2)
        stage["runs"] += 1
        if not runs.get(f"pretrain-{pp['objective']}", False):
            stage["to_run"] += 1
            stage["least"] += update * pp["iterations"]
            stage["most"] += update * pp["iterations"]
    return stage


def _experiments_done(grid, repeats, runs):
    """[{name, table, seeds, done, repeats}] of the grid's experiments: done as reproduce's
    keyed runs say (an experiment another repeats: as that one)."""
    return [{"name": e.name, "table": e.table, "seeds": list(e.seeds),
             "done": bool(runs.get(repeats[e.name].name if e.name in repeats else e.name)),
             "repeats": repeats[e.name].name if e.name in repeats else ""}
            for e in grid]


def print_estimate(profile, result, out=print):
    out(f"{profile}: {len(result['experiments'])} experiments")
    for e in result["experiments"]:
        state = f"= {e['repeats']}" if e["repeats"] else "done" if e["done"] else "to run"
        out(f"  {e['name']:34} seeds {e['seeds']}  {state}")
    if result.get("tflops"):
        out(f"estimate for a device of {result['tflops']:g} TFLOP/s, NOT MEASURED: each step's "
            f"FLOPs counted on {result['device']} at that rate, plus {LAUNCH_SECONDS * 1e6:g} µs "
            "per operator launched (evaluation and start-up not counted):")
    else:
        out(f"estimate on {result['device']} (a few timed steps; evaluation and start-up not counted):")
    for s in result["stages"]:
        out(f"  {s['stage']:13} {s['to_run']:3d} of {s['runs']:3d} runs to go: "
            f"{s['least_min']:8.1f} to {s['most_min']:8.1f} min")
    total = [sum(s[k] for s in result["stages"]) for k in ("least_min", "most_min")]
    out(f"  {'in all':13} {'':16}  {total[0]:8.1f} to {total[1]:8.1f} min")
    out(f"peak device memory ~{result['peak_gib']:.1f} GiB (images + the largest cache); "
        f"disk for the frozen-part caches ~{result['disk_gib']:.1f} GiB")
    if result["host_gib"]:
        out(f"past the device budget of {result['budget_gib']:.3g} GiB (cache.device_gib) "
            f"~{result['host_gib']:.1f} GiB stay in host memory and stream to the device by batch")
