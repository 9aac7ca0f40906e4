"""One experiment from resolved parameters: base networks, ω̄, a head, training, a result JSON.

The functions that run or rebuild an experiment (run_head, run_experiment, omega_bar, which runs
the actv experiment when ω̄ is missing, load_trained, finished_run, experiment_data and
experiment_inputs) take its resolved parameters, the record a result keeps; everything they
call takes the sections it reads.
"""
import functools
import json
import sys
import time
from pathlib import Path

import torch
from torch import nn

from ..method import tangent
from ..method.linear_model import HEADS, build_head
from ..method.registry import ARCHITECTURES
from ..method.nets import fold_batchnorm, mix, parse_layers, random_encoder, \
    split
from .checkpoint import load_into, save_checkpoint
from .data import TRANSFER_TARGETS, load_data, view_rows
from .memory import HostResident, device_budget, fits, gib, nbytes
from .metrics import map_pseudo_values, mean_average_precision
from .params import deciding, digest, keyed
from .results import (RESULTS_VERSION, RunResult, environment, file_sha256, pack_correct, pack_values,
                      write_json)
from .train import (FrozenInputs, Of, Subset, Validation, frozen_values, pick_device, predict, score,
                    seed_everything, train, validation_split)


def load_encoder(base, data, checkpoint, seed, store):
    """An encoder from `checkpoint`, or the random encoder of `seed`; batch norm folded (base:
    the base parameters). A random encoder is calibrated once per data set and kept in `store`
    (out_dir/checkpoints), keyed by the data (data.source), the architecture and the seed, so
    that later runs load the same tensors."""
    net = ARCHITECTURES[base["arch"]](data.in_channels, base["leak"], base["batchnorm"])
    expect = net.meta(data.name, base["pixel_range"])  # a checkpoint of another architecture is refused
    if data.name in TRANSFER_TARGETS:  # Tables 2 and 4: the encoder's data set is its source task's
        del expect["dataset"]
    if not checkpoint:
        key = {"data": data.source, "seed": seed, "calibrate_images": base["calibrate_images"],
               **expect}
        checkpoint = Path(store) / f"random-encoder-{digest(key)}.pt"
        if not checkpoint.is_file():
            calibrated = random_encoder(data.in_channels, base["leak"], base["batchnorm"], seed,
                                        data.x_train, base["calibrate_images"], base["arch"])
            save_checkpoint(checkpoint, calibrated.state_dict(), expect)
    load_into(net, checkpoint, expect=expect)
    return fold_batchnorm(net.to(data.x_train.device)).eval().requires_grad_(False)


def base_networks(base, model, data, store):
    """{'pretrained': f_θ̄, 'random': a random encoder (only when the gradient term uses it)}.
    Without a pre-trained checkpoint a random encoder seeded by random_seed + 1 stands in.
    base.encoder = random (the random-encoder reference): the random encoder plays f_θ̄.
    store: where random encoders are kept (load_encoder)."""
    if base["encoder"] == "random":
        random = load_encoder(base, data, base["random_checkpoint"], base["random_seed"], store)
        return {"pretrained": random, "random": random}
    nets = {"pretrained": load_encoder(base, data, base["checkpoint"], base["random_seed"] + 1,
                                       store)}
    if "random" in (model["theta1"], model["theta2"]):
        nets["random"] = load_encoder(base, data, base["random_checkpoint"], base["random_seed"],
                                      store)
    return nets


def gradient_network(model, nets):
    """The network whose Jacobian the gradient term uses (Table 1: θ1, θ2 each from either);
    model: the model parameters."""
    blocks = nets["pretrained"].LAYERS
    theta2 = parse_layers(model["layers"], blocks)
    return mix(nets, {n: model["theta2"] if n in theta2 else model["theta1"] for n in blocks})


def schedules_read(train, head):
    """The train parameters a run of `head` reads: every shared one, its own schedule and
    actv's (whose run gives ω̄), not the other heads' schedules."""
    return {k: v for k, v in train.items() if k not in HEADS or k in (head, "actv")}


def omega_path(seed, data, base, train, store):
    """Where the actv run of this base network keeps ω̄ (in `store`, out_dir/checkpoints): keyed
    by everything the activation head reads (the seed, the data, the base and train parameters),
    the encoder file's content included (a retrained encoder is another key)."""
    key = {"seed": seed, "data": data.source, "base": base, "train": schedules_read(train, "actv"),
           "encoder_sha256": file_sha256(base["random_checkpoint" if base["encoder"] == "random"
                                              else "checkpoint"])}
    return Path(store) / f"omega-{digest(key)}.pt"


def omega_bar(params, data, nets, log):
    """ω̄: the classifier of a finished actv run on this base network; that run (of `params`
    with head actv) is trained first if missing."""
    path = omega_path(params["seed"], data, params["base"], params["train"], checkpoints(params))
    classifier = nn.Linear(nets["pretrained"].FEATURE_DIM, data.num_classes).to(data.x_train.device)
    if not path.is_file():
        log(f"no finished actv run for this base network ({path}): training it first")
        actv = dict(params, model=dict(params["model"], head="actv"))
        run_head(actv, data=data, nets=nets, log=log)
    load_into(classifier, path, expect={"kind": "classifier", "dataset": data.name})
    return classifier.requires_grad_(False)


def experiment_data(params, device, log=None):
    """The data of the experiment `params` (data.*, base.pixel_range, cache.device_gib)."""
    return load_data(params["data"], params["base"]["pixel_range"], device,
                     params["cache"]["device_gib"], log)


def checkpoints(params):
    """out_dir/checkpoints: random encoders, ω̄ and trained heads."""
    return Path(params["out_dir"]) / "checkpoints"


def frozen_part(head, nets, bottom, shared=True, layers=None):
    """{name: frozen network}: the inputs of the trainable part, 'features' f_θ̄(x) and/or the
    input 'z' of `top`. shared: the gradient term uses the pre-trained network itself, so the
    full model takes f_θ̄(x) from its own forward pass instead of a second one. layers: the fast
    tangent path's layers of `top` (grad, full): its primal record through θ̄2 is frozen too."""
    parts = {}
    if head == "actv" or head == "full" and not shared:
        parts["features"] = nets["pretrained"]
    if head in ("grad", "full", "finetune"):
        parts["z"] = bottom
    if head in ("grad", "full") and layers is not None:
        parts["primal"] = Of("z", functools.partial(tangent.record, layers))
    return parts


def frozen_stores(data, base, model, split_name, store):
    """{name: file} in `store` (out_dir/cache) for each frozen part of a run with these base and
    model parameters: keyed by the data (data.source), the base network's settings and files,
    and which network and blocks each part holds, so every experiment on the same part shares
    one computation."""
    key = {"data": data.source, "base": base, "split": split_name,
           "files": [file_sha256(base["checkpoint"]), file_sha256(base["random_checkpoint"])]}
    source = "pretrained" if model["head"] == "finetune" else model["theta1"]
    keys = {"features": dict(key, part="features"),
            "z": dict(key, part="z", source=source, layers=model["layers"]),
            "primal": dict(key, part="primal", format="tangent.record 1", layers=model["layers"],
                           theta1=model["theta1"], theta2=model["theta2"])}
    return {name: Path(store) / f"{name}-{split_name}-{digest(k)}.pt" for name, k in keys.items()}


def source_network(model, nets):
    """The network the trainable part starts from: f_θ̄ for fine-tuning, else the mix of θ1/θ2."""
    return nets["pretrained"] if model["head"] == "finetune" else gradient_network(model, nets)


def split_network(model, nets):
    """(bottom, top) of the network the trainable part starts from; bottom is None for actv,
    which trains on f_θ̄(x) alone."""
    if model["head"] == "actv":
        return None, None
    net = source_network(model, nets)
    return split(net, parse_layers(model["layers"], net.LAYERS))


def build_model(model, data, nets, omega, random_seed):
    """The head model["head"] to train, on the pre-trained (or mixed) network and ω̄ `omega`
    (None for actv); model.omega = random: the gradient term's ω is a random classifier seeded
    by random_seed (base.random_seed)."""
    head, layers = model["head"], parse_layers(model["layers"], nets["pretrained"].LAYERS)
    if head == "actv":
        return build_head("actv", nn.Linear(nets["pretrained"].FEATURE_DIM, data.num_classes))
    top = split_network(model, nets)[1]
    omega_grad = omega
    if model["omega"] == "random" and head != "finetune":
        torch.manual_seed(random_seed)
        omega_grad = nn.Linear(nets["pretrained"].FEATURE_DIM, data.num_classes)
    return build_head(head, omega, top, layers, omega_grad, model["ntk_scale"], model["tangent"])


def frozen_inputs(model, cache, eval_batch, data, nets, stores=None, log=None):
    """(train, test[, test views]) FrozenInputs (`splits`) of a run with these model and cache
    parameters; the same for every seed of an experiment. stores: {split: frozen_stores} where
    the cache is kept on disk (None: memory only). What is cached must fit `cache.max_gib`
    (cache_kept: the primal record is dropped first, then the whole cache). A cache that fits there but not on the device beside the images
    (cache.device_gib) stays in host memory and is copied to the device batch by batch
    (`cache_on_host`)."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    head = model["head"]
    shared = model["theta1"] == model["theta2"] == "pretrained"
    bottom, top = split_network(model, nets)
    layers = tangent.plan(top) if head in ("grad", "full") and model["tangent"] == "fast" else None
    parts = frozen_part(head, nets, bottom, shared, layers)
    sizes = cache_bytes(parts, data.x_train) if model["cache"] else {}
    cached = model["cache"] and fit_cache(parts, sizes, data, cache["max_gib"], log)
    host = cached and cache_on_host(parts, sizes, data, cache["device_gib"], log)
    return tuple(FrozenInputs(parts, x, cached and name in CACHED, eval_batch,
                              stores[name] if cached and name in CACHED and stores else None, host, log)
                 for name, x in splits(data).items())


CACHED = ("train", "test")  # the test views are scored once per run, decoded from their files
# (multilabel.StreamedViews): their frozen part is computed batch by batch then, never kept


def splits(data):
    """{split: images} of the data: train, test (centre crops for VOC07/COCO2014) and, when the
    test images have random views, test-views."""
    out = {"train": data.x_train, "test": data.x_test}
    if data.x_test_views is not None:
        out["test-views"] = data.x_test_views
    return out


def experiment_inputs(params, data, nets, log=None):
    """frozen_inputs of the experiment `params`, its cache kept under out_dir/cache."""
    store = Path(params["out_dir"]) / "cache"
    stores = {name: frozen_stores(data, params["base"], params["model"], name, store)
              for name in CACHED}
    return frozen_inputs(params["model"], params["cache"], params["train"]["eval_batch_size"],
                         data, nets, stores, log)


def cache_bytes(parts, x):
    """{part: bytes per image} of each frozen part, measured on one image."""
    return {name: nbytes(value) for name, value in frozen_values(parts, x[:1]).items()}


def cache_on_host(parts, sizes, data, device_gib, log):
    """True when the frozen parts of train and test (sizes: cache_bytes per image) do not fit
    the device's budget (memory.device_budget) beside the images that are on it: they then stay
    in host memory."""
    budget = device_budget(data.x_train.device, device_gib)
    need = sum(sizes[name] for name in parts) * (len(data.x_train) + len(data.x_test))
    on_device = sum(nbytes(x) for x in data.images() if not isinstance(x, HostResident))
    if fits(need, budget, on_device):
        return False
    log(f"cache: the frozen parts ({gib(need)}) and the images on the device ({gib(on_device)}) "
        f"exceed the device budget {gib(budget)} (cache.device_gib): the cache stays in host "
        "memory and each batch is copied to the device")
    return True


def cache_kept(sizes, images, max_gib):
    """The frozen parts (sizes: cache_bytes per image) a cache of `images` images keeps within
    max_gib (GiB, cache.max_gib): every one, or all but the primal record (the model then
    recomputes it per batch from z), or None: cache nothing."""
    for kept in (tuple(sizes), tuple(name for name in sizes if name != "primal")):
        if sum(sizes[name] for name in kept) * images <= max_gib * 2 ** 30:
            return kept
    return None


def fit_cache(parts, sizes, data, max_gib, log):
    """True when the frozen parts of train and test (sizes: cache_bytes per image) fit in
    max_gib (cache_kept); the primal record is removed from `parts` when only it does not fit,
    and False means cache nothing."""
    images = len(data.x_train) + len(data.x_test)
    kept, total = cache_kept(sizes, images, max_gib), sum(sizes.values()) * images / 2 ** 30
    if kept is None:
        parts.pop("primal", None)
        log(f"cache: the frozen parts would take {total:.1f} GiB > cache.max_gib {max_gib}: "
            "computing them per batch instead (slower; raise cache.max_gib if memory allows)")
        return False
    if "primal" in parts and "primal" not in kept:
        del parts["primal"]
        log(f"cache: the frozen parts would take {total:.1f} GiB > cache.max_gib {max_gib}: "
            "the primal record through θ̄2 is recomputed per batch instead")
    return True


TRIED = ("optimizer", "lr", "weight_decay")  # what a trial of a head's schedules sets (trials)


def trials(schedule):
    """The schedules a run of a head tries, each {optimizer, lr, weight_decay}: `schedule`'s
    (train.<head>) at each rate of its lr_grid (or at its lr), then each of its alternatives
    (those keys of it changed)."""
    own = {k: schedule[k] for k in TRIED}
    return ([dict(own, lr=lr) for lr in schedule["lr_grid"] or [schedule["lr"]]]
            + [dict(own, **alternative) for alternative in schedule["alternatives"]])


def run_head(params, data=None, nets=None, log=None, inputs=None, chosen=None, write=True):
    """Train and evaluate the head `params['model']['head']`; returns its RunResult and writes
    it (and the trained head's checkpoint) under out_dir; write=False: the checkpoint alone (a
    seed of an experiment, whose one result file holds it: run_experiment). `inputs`: the (train, test)
    FrozenInputs of an earlier seed of the same experiment. Where the head's schedule has more
    than one trial (`trials`) they are all trained and the one best on validation is kept; with
    no validation split (alternatives only), the one better on the test set, as the paper
    reports its fine-tuning (the better of Adam and SGD). chosen: (trial, seed): the trial an
    earlier seed chose; this run trains it alone."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    start = time.perf_counter()
    device = pick_device(params["device"])
    model_p, train_p, base = params["model"], params["train"], params["base"]
    data = data or experiment_data(params, device, log)
    nets = nets or base_networks(base, model_p, data, checkpoints(params))
    head = model_p["head"]
    omega = None if head == "actv" else omega_bar(params, data, nets, log)  # setup, not training
    inputs, test_inputs, *view_inputs = inputs or experiment_inputs(params, data, nets, log)
    setup_seconds = time.perf_counter() - start
    fit, validate = split_validation(inputs, data.y_train, train_p, params["data"]["seed"],
                                     data.train_views)
    every = trials(train_p[head])
    tried, several = [chosen[0]] if chosen else every, len(every) > 1
    chosen_on = None if not several else "validation" if validate else "test"  # test: alternatives
    on_test = len(tried) > 1 and chosen_on == "test"  # only, without a split (params.validate)
    records, (_, trial, model, training, train_seconds, logits) = _train_trials(
        params, tried, on_test, (data, nets, omega, device), fit, validate, test_inputs)
    if logits is None:
        logits = predict(model, test_inputs, train_p["eval_batch_size"])
    test = test_scores(logits, data.y_test)
    views = _view_scores(model, view_inputs[0], data, train_p["eval_batch_size"]) if view_inputs else None
    result = RunResult(
        head=head, layers=model_p["layers"], dataset=data.name, theta1=model_p["theta1"],
        theta2=model_p["theta2"], omega=model_p["omega"], seed=params["seed"], **test,
        iterations=training.iterations, lr=trial["lr"], train_seconds=train_seconds,
        ms_per_step=1000 * train_seconds / training.iterations, convergence=training.convergence,
        best_iteration=training.best_iteration,
        trials=records,  # every trial this run trained, or the one an earlier seed chose
        lr_chosen_on_seed=(chosen[1] if chosen else params["seed"]) if several else None,
        iterations_cap=train_p[head]["iterations"], loss_history=training.loss,
        validation_curve=training.validation, validation_se=training.validation_se,
        stopped_early=training.stopped_early,
        selected="best validation" if train_p["patience"] else "end of training",
        seconds=time.perf_counter() - start, setup_seconds=setup_seconds,
        validation_seconds=training.validation_seconds,
        tangent=None if head == "actv" else "jvp" if model.layers is None else "fast",
        params=params, environment=environment(device), views=views, trial=trial,
        trial_chosen_on=chosen_on)
    out = result_path(params)
    omega_file = omega_path(params["seed"], data, base, train_p, checkpoints(params))
    result.checkpoint = str(save_head(head, model, out.stem, data, checkpoints(params), omega_file))
    if write:
        result.path = str(out)
        write_json(out, result.as_dict())
    log(f"{head} {model_p['layers']} on {data.name}: test {result.metric} "
        f"{result.score:.4f} ({result.path or result.checkpoint})")
    return result


def _train_trials(params, tried, on_test, built, fit, validate, test_inputs):
    """(every trial's record, the kept one's (score, trial, model, training, seconds, test
    logits)): each trial of `tried` trained from the same start and batches on `fit`, kept by its
    validation score, or with `on_test` by its test score (the first on ties); built: (data,
    nets, ω̄, device) the models are made of."""
    data, nets, omega, device = built
    model_p, train_p, head = params["model"], params["train"], params["model"]["head"]
    records, best = [], None
    for trial in tried:
        seed_everything(params["seed"])  # every trial from the same start and batches
        model = build_model(model_p, data, nets, omega, params["base"]["random_seed"]).to(device)
        began = time.perf_counter()
        training = train(model, *fit, dict(train_p[head], **trial), train_p["batch_size"],
                         train_p["clip_grad_norm"], train_p["log_every"], params["seed"],
                         desc=f"{head} {model_p['layers']} {trial['optimizer']} lr {trial['lr']:g}",
                         validate=validate, eval_every=train_p["eval_every"], patience=train_p["patience"],
                         min_iterations=train_p["min_iterations"])
        seconds = time.perf_counter() - began - training.validation_seconds
        val_score = validate(model).score if validate else None
        logits = predict(model, test_inputs, train_p["eval_batch_size"]) if on_test else None
        test_score = score(logits, data.y_test) if on_test else None
        records.append({**trial, "validation_accuracy": val_score, "test_score": test_score,
                        "iterations": training.iterations,
                        "convergence": training.convergence, "train_seconds": seconds,
                        "validation_curve": training.validation})
        kept = test_score if on_test else val_score
        if best is None or (kept or 0.0) > (best[0] or 0.0):  # the first on ties; only it is kept
            best = (kept, trial, model, training, seconds, logits)
    return records, best


def _view_scores(model, view_inputs, data, batch_size):
    """Table 4's protocol: each test image's views scored, their scores averaged; the
    RunResult.views record of them."""
    logits = mean_over_views(predict(model, view_inputs, batch_size), data.test_views)
    views = dict(test_scores(logits, data.y_test), test_views=data.test_views)
    return {k: views[k] for k in ("test_views", "mean_ap", "mean_ap_voc07", "test_jackknife")}


def result_path(params):
    """Where run_head writes the RunResult of `params`: out_dir/train-head/<head>-<layers>-<digest>.json
    (the head's checkpoint takes its name)."""
    model = params["model"]
    return Path(params["out_dir"]) / "train-head" / f"{model['head']}-{model['layers']}-{digest(keyed(params))}.json"


def finished_result(params):
    """A RunResult run_head wrote under this results version for the same parameters (those
    that decide no number aside, params.deciding: a key added to reproduce since keeps it), or
    None: what lets work made of many runs (the feature-quality probes) resume."""
    model = params["model"]
    for path in sorted(result_path(params).parent.glob(f"{model['head']}-{model['layers']}-*.json")):
        record = json.loads(path.read_text())  # an earlier version's fields may not be RunResult's
        if (record["environment"].get("results_version") == RESULTS_VERSION
                and deciding(record["params"]) == deciding(params)):
            return RunResult.from_dict(record)
    return None


def test_scores(logits, labels):
    """The RunResult fields of a head's test logits: its accuracy and which images it got right,
    or, for a multi-label set (labels (N, C), -1 left out), mAP in both definitions
    (metrics.py) and the jackknife pseudo-values of the first (its test sample's error)."""
    if labels.dim() == 1:
        correct = logits.argmax(1) == labels
        return dict(accuracy=correct.float().mean().item(), n_test=len(correct),
                    test_correct=pack_correct(correct.cpu().numpy()))
    scores, labels = logits.float().cpu().numpy(), labels.cpu().numpy()
    positive, ignore = labels == 1, labels < 0
    return dict(metric="mAP", accuracy=None, n_test=len(labels), test_correct=None,
                mean_ap=mean_average_precision(scores, positive, "area", ignore)[0],
                mean_ap_voc07=mean_average_precision(scores, positive, "voc07", ignore)[0],
                test_jackknife=pack_values(100 * map_pseudo_values(scores, positive, "area", ignore)))


def mean_over_views(logits, views):
    """(images, classes) scores from (images · views, classes) logits held image by image: the
    mean of each image's views (a sum, as DeepCluster's eval_voc_classif.py takes, ranks alike)."""
    return logits.reshape(-1, views, logits.shape[-1]).mean(1) if views > 1 else logits


def split_validation(inputs, labels, train_p, data_seed, views=1):
    """((inputs, labels) to train on, validate or None): with train.val_fraction > 0 (train_p:
    the train parameters) a split of the training set seeded by data_seed (data.seed: the same
    for every head and seed) is held out, and validate (a train.Validation) gives a model's
    accuracy (mAP for a multi-label set) on it with each item's record. views: the training set
    holds this many views of each image (rows image by image): images are held out with all their
    views, and validated on the mean of their views' scores."""
    if not train_p["val_fraction"]:
        return (inputs, labels), None
    keep, held = validation_split(len(labels) // views, train_p["val_fraction"], data_seed)
    keep, held = (view_rows(idx, views).to(labels.device) for idx in (keep, held))
    val_inputs, val_labels = Subset(inputs, held), labels[held][::views]

    def logits(model):
        return mean_over_views(predict(model, val_inputs, train_p["eval_batch_size"]), views)
    return (Subset(inputs, keep), labels[keep]), Validation(logits, val_labels)


def run_experiment(params, seeds, log=None):
    """run_head for each seed, sharing the data, the base networks and the frozen inputs (the
    data subset is seeded by data.seed, so it is the same for every seed). With a learning-rate
    grid, the first seed chooses the rate on the validation split (the same split for every
    seed) and the other seeds train at that rate alone. The results are returned, not written: the
    experiment's one result file holds them (RunRecord.summary); each seed's head is kept (its
    checkpoint)."""
    device = pick_device(params["device"])
    data = experiment_data(params, device, log)
    nets = base_networks(params["base"], params["model"], data, checkpoints(params))
    inputs = experiment_inputs(params, data, nets, log)
    results = []
    for seed in seeds:
        first = results[0] if results else None
        chosen = (first.trial, first.seed) if first and first.lr_chosen_on_seed is not None else None
        results.append(run_head(dict(params, seed=seed), data, nets, log, inputs, chosen=chosen,
                                write=False))
    return results


def save_head(head, model, run_id, data, store, omega_file):
    """The trained `head`'s checkpoint in `store`; an actv run's classifier is also ω̄ (at
    omega_file, omega_path) for every later head on the same base network."""
    meta = {"kind": "head", "head": head, "dataset": data.name, "run_id": run_id,
            "parametrisation": "ntk" if head in ("grad", "full") else "standard"}
    path = Path(store) / f"{run_id}.pt"
    save_checkpoint(path, model.state_dict(), meta)
    if head == "actv":
        save_checkpoint(omega_file, model.w1.state_dict(), {"kind": "classifier", "dataset": data.name})
    return path


def load_trained(params, checkpoint, data=None, nets=None):
    """(model, (train, test) FrozenInputs) of a finished run from its parameters and its trained
    head's checkpoint (RunResult.params, RunResult.checkpoint): the same head rebuilt from its
    parameters, its trained weights loaded."""
    model_p, base = params["model"], params["base"]
    data = data or experiment_data(params, pick_device(params["device"]))
    nets = nets or base_networks(base, model_p, data, checkpoints(params))
    quiet = lambda msg: None  # noqa: E731
    omega = None if model_p["head"] == "actv" else omega_bar(params, data, nets, quiet)
    model = build_model(model_p, data, nets, omega, base["random_seed"]).to(data.x_train.device)
    load_into(model, checkpoint, expect={"kind": "head", "head": model_p["head"]})
    return model.eval(), experiment_inputs(params, data, nets, quiet)[:2]


def finished_run(params, head, result_path=""):
    """(parameters, checkpoint) of one trained `head` (load_trained's arguments): the first seed
    of a finished 02_heads experiment (its result JSON at result_path: the experiment's
    parameters with that seed, the checkpoint its summary names), or, with no path, of a run of
    `head` trained here with seed 0 at params' depth (what 03_linearization does when opened
    with its defaults)."""
    if result_path:
        summary = json.loads(Path(result_path).read_text())
        first = summary["runs"][0]
        return dict(summary["params"], seed=first["seed"]), first["checkpoint"]
    result = run_head(dict(params, seed=0, model=dict(params["model"], head=head)))
    return result.params, result.checkpoint
