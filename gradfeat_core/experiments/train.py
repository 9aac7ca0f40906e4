"""Training by iterations (as the paper), evaluation in large batches, the frozen-part cache."""
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from .checkpoint import save_atomic
from .errors import UserError
from .memory import gib, host_resident, nbytes
from .metrics import JACKKNIFE_GROUPS, map_pseudo_values, mean_average_precision, paired_se
from .results import AT_CAP, CONVERGED, NEVER_TRAINED
from .progress import tqdm


class DeviceError(UserError):
    """The device asked for cannot be used; the message says why and what to do."""


def cuda_problem():
    """None when CUDA is usable, else one line saying why not (no CUDA in this build, no
    driver, a driver older than the build, no visible device)."""
    if torch.version.cuda is None:
        return f"this PyTorch build ({torch.__version__}) has no CUDA support"
    try:
        torch.cuda.init()
    except Exception as e:  # torch raises RuntimeError or AssertionError, with several lines
        return " ".join(str(e).split())
    if torch.cuda.device_count() == 0:
        return "no CUDA device is visible (check CUDA_VISIBLE_DEVICES)"
    return None


def pick_device(name="auto"):
    """torch.device for `device` (auto | cpu | cuda | cuda:N). cuda that cannot be used is a
    DeviceError; auto falls back to the CPU, and says so on stderr when a GPU seems present."""
    if name == "auto":
        problem = cuda_problem()
        if problem and (os.path.exists("/dev/nvidia0") or shutil.which("nvidia-smi")):
            print(f"warning: device auto runs on the CPU although this machine has an NVIDIA GPU: "
                  f"{problem}", file=sys.stderr)
        return torch.device("cpu" if problem else "cuda")
    device = torch.device(name)
    if device.type == "cuda":
        problem = cuda_problem()
        if problem:
            raise DeviceError(f"device is {name} but CUDA cannot be used: {problem}; install the "
                              "PyTorch build that matches the driver (nvidia-smi shows the CUDA "
                              "version it supports) or set device: cpu")
        if (device.index or 0) >= torch.cuda.device_count():
            raise DeviceError(f"device is {name} but this machine has {torch.cuda.device_count()} "
                              "CUDA device(s); choose cuda:0 or another index that exists")
    return device


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@torch.no_grad()
def in_batches(fn, x, batch_size, host=False):
    """fn(x) in chunks, concatenated along the batch (fn may return a tensor or {name: tensor});
    host: each chunk is moved to host memory first, so the whole never sits on the device."""
    chunks = [_cpu(fn(x[i:i + batch_size])) if host else fn(x[i:i + batch_size])
              for i in range(0, len(x), batch_size)]
    if isinstance(chunks[0], dict):
        return {k: torch.cat([c[k] for c in chunks]) for k in chunks[0]}
    return torch.cat(chunks)


def _take(value, idx):
    return {k: v[idx] for k, v in value.items()} if isinstance(value, dict) else value[idx]


def _cpu(value):
    return {k: v.cpu() for k, v in value.items()} if isinstance(value, dict) else value.cpu()


def stored(fn, x, batch_size, path=None, host=False, log=print):
    """fn over x, kept in `path` (when given) so that later runs on the same frozen part and the
    same images load it instead of recomputing it; written atomically, and not at all (said in
    the log) when the disk has not room for it. host: kept in host memory as a HostResident
    that copies each batch to x's device."""
    if path is not None and Path(path).is_file():
        out = torch.load(path, map_location="cpu" if host else x.device, weights_only=True)
    else:
        out = in_batches(fn, x, batch_size, host)
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            free = shutil.disk_usage(Path(path).parent).free
            if free < nbytes(out) + MIN_FREE_DISK:
                log(f"cache: {Path(path).name} ({gib(nbytes(out))}) would leave less than "
                    f"{gib(MIN_FREE_DISK)} free on {Path(path).parent}: kept in memory only, "
                    "computed again by the next run")
            else:
                save_atomic(_cpu(out), path)
    return host_resident(out, x.device) if host else out


class Of(NamedTuple):
    """A frozen part computed from another part's output (source) instead of from the images."""
    source: str
    fn: Callable


@torch.no_grad()
def frozen_values(parts, x):
    """{name: part(x)} for images x, each `Of` part from its source's value."""
    out = {}
    for name, part in parts.items():
        out[name] = part.fn(out[part.source]) if isinstance(part, Of) else part(x)
    return out


class FrozenInputs:
    """What the trainable part sees for a set of images: {name: part(x)} for the frozen parts
    (a part gives a tensor, or a {name: tensor} dict; an `Of` part takes another's output),
    cached or computed per batch.

    The frozen part (every layer below the first trainable one) never changes during training,
    so computing it once per data set gives the same logits at a fraction of the cost.
    stores: {name: file} where a cached part is kept across runs (see `stored`).
    host: the cache stays in host memory and each batch is copied to the device (memory.py).
    """

    def __init__(self, parts, x, cache=True, batch_size=1000, stores=None, host=False, log=print):
        self.parts, self.x = parts, x
        stores = stores or {}
        self.cache = None
        if cache:
            self.cache = {}
            for name, part in parts.items():
                fn, source = (part.fn, self.cache[part.source]) if isinstance(part, Of) else (part, x)
                self.cache[name] = stored(fn, source, batch_size, stores.get(name), host, log)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, idx):
        if self.cache is not None:
            return {k: _take(v, idx) for k, v in self.cache.items()}
        return frozen_values(self.parts, self.x[idx])


def param_groups(model, schedule):
    """The trained tensors as optimiser groups: one at schedule['lr'], except the full model's w1
    at schedule['w1_lr'] when that is set (w1 starts at the activation baseline's optimum and w2
    at 0: one rate high enough for w2 first knocks w1 off it)."""
    trained = [p for p in model.parameters() if p.requires_grad]
    w1 = getattr(model, "w1", None) if getattr(model, "head", None) == "full" else None
    if not schedule.get("w1_lr") or w1 is None:
        return [{"params": trained}]
    own = {id(p) for p in w1.parameters()}
    return [{"params": [p for p in trained if id(p) not in own]},
            {"params": list(w1.parameters()), "lr": schedule["w1_lr"]}]


def make_optimizer(params, schedule):
    """SGD (momentum 0.9) or Adam, fused (one kernel over all tensors: 3x faster on a 2M-entry
    θ2 than the per-op default) for every head alike. params: tensors or param_groups()."""
    if schedule["optimizer"] == "adam":
        opt = torch.optim.Adam(params, lr=schedule["lr"], betas=(0.5, 0.999),
                               weight_decay=schedule["weight_decay"], fused=True)
    else:
        opt = torch.optim.SGD(params, lr=schedule["lr"], momentum=0.9,
                              weight_decay=schedule["weight_decay"], fused=True)
    # lr halved every `stepsize` iterations (stepped once per iteration).
    return opt, torch.optim.lr_scheduler.StepLR(opt, schedule["stepsize"], gamma=0.5)


def batch_order(n, batch_size, iterations, generator):
    """Indices of each iteration's batch: a fresh permutation per epoch, the last batch of an
    epoch completed from the next permutation so that every batch has `batch_size` items."""
    batch_size = min(batch_size, n)
    needed, order = iterations * batch_size, []
    while needed > 0:
        order.append(torch.randperm(n, generator=generator))
        needed -= n
    order = torch.cat(order)
    for it in range(iterations):
        yield order[it * batch_size:(it + 1) * batch_size]


def task_loss(logits, labels):
    """The loss a head minimises: softmax cross-entropy over classes (labels: (N,) class
    indices), or for a multi-label set (labels: (N, C), 1 present, 0 absent, -1 left out, as
    VOC's difficult pairs) the mean binary cross-entropy of a sigmoid per class over the pairs
    not left out."""
    if labels.dim() == 1:
        return F.cross_entropy(logits, labels)
    keep = labels >= 0
    return F.binary_cross_entropy_with_logits(logits[keep], labels[keep].to(logits.dtype))


def train_step(model, opt, inputs, labels, idx, clip_grad_norm=0.0):
    """One SGD/Adam step on the batch `idx`; returns the (detached) loss."""
    idx = idx.to(labels.device)
    loss = task_loss(model(inputs[idx]), labels[idx])
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if clip_grad_norm > 0:
        torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]],
                                       clip_grad_norm)
    opt.step()
    return loss.detach()


class Subset:
    """Frozen inputs restricted to `indices` (a validation split, or what remains to train on)."""

    def __init__(self, inputs, indices):
        self.inputs, self.indices = inputs, indices

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, idx):
        return self.inputs[self.indices[idx.to(self.indices.device)]]


def validation_split(n, fraction, seed):
    """(train indices, validation indices) of n training items: a seeded random `fraction` held
    out, the same for every head and seed of a data set (fraction 0: no validation split)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = round(n * fraction)
    return order[n_val:].sort().values, order[:n_val].sort().values


MIN_FREE_DISK = 1 * 2**30  # a frozen cache is written to disk only if it leaves this much free
LEARNT_NOTHING_LR = 0.25  # a best at the start is 'converged', not 'never trained', once the
# learning rate is this far down when the run stops: it had nothing to gain


class Evaluation(NamedTuple):
    """One validation: the score (accuracy, or mAP for a multi-label set) and what of each item a
    paired standard error needs: (n,) correctness, or (n, C) scores."""
    score: float
    items: torch.Tensor


class Validation:
    """A held-out split. predict(model) gives its items' logits ((n, C), rows in the order of
    labels); labels are (n,) classes or (n, C) multi-label (1 present, 0 absent, -1 left out).
    Calling it with a model gives an Evaluation; gain_se(a, b) the standard error of a's score
    minus b's, paired on the same items (for mAP over `groups` jackknife groups of them)."""

    def __init__(self, predict, labels, groups=JACKKNIFE_GROUPS):
        self.predict, self.labels, self.groups = predict, labels, groups
        self.size = len(labels)

    def __call__(self, model):
        logits = self.predict(model)
        if self.labels.dim() == 1:
            correct = (logits.argmax(1) == self.labels).cpu()
            return Evaluation(correct.float().mean().item(), correct)
        return Evaluation(score(logits, self.labels), logits.float().cpu())

    def gain_se(self, a, b):
        """SE of score(a) − score(b) for two Evaluations' items: for accuracy the standard error
        of the mean of the per-item differences of correctness, sd(d_i) / √n; for mAP the
        jackknife's over the fixed groups of metrics.jackknife_groups (the same as the test
        set's), from the pseudo-values of the difference."""
        if self.labels.dim() == 1:
            return paired_se(a.numpy().astype(float) - b.numpy().astype(float))
        labels = self.labels.cpu().numpy()
        a, b = (map_pseudo_values(x.numpy(), labels == 1, "area", labels < 0, self.groups) for x in (a, b))
        return paired_se(a - b)


@dataclass
class Training:
    """What `train` did: the training loss and validation score against iterations (the
    validation curve starts at iteration 0), where validation peaked, whether it stopped on its
    plateau, and its convergence (`convergence`): 'converged', 'at its cap' or 'never trained'."""
    loss: list
    validation: list = field(default_factory=list)
    best_iteration: int = None
    stopped_early: bool = False
    convergence: str = None  # None: no validation split or patience to tell
    validation_se: float = None  # the paired SE the gain at the cap was judged against (None: not judged)
    iterations: int = 0
    validation_seconds: float = 0.0  # spent evaluating, not training


class Window:
    """What a run at its cap is judged on, and no more of its history: the Evaluations of its
    last `patience` evaluations and the best one before them (the first of ties)."""

    def __init__(self, patience):
        self.recent, self.patience, self.best_before = [], patience, None

    def add(self, evaluation):
        self.recent.append(evaluation)
        if len(self.recent) > self.patience:
            left = self.recent.pop(0)
            if self.best_before is None or left.score > self.best_before.score:
                self.best_before = left

    def gain(self, gain_se):
        """(gain, its SE): the best in the window over the best before it, the SE from
        gain_se(window's best items, before's best items); None when nothing came before."""
        if self.best_before is None:
            return None
        best = max(self.recent, key=lambda e: e.score)
        return best.score - self.best_before.score, gain_se(best.items, self.best_before.items)


def convergence(best_iteration, plateaued, decayed):
    """A validated run's convergence. 'never trained': its best validation is its start
    (iteration 0), the parameters it keeps are the ones it started from, and its learning rate
    had not decayed to LEARNT_NOTHING_LR of its start when it stopped (a run in the full model's
    dip recovers once the rate halves; one still at its start after that had nothing to gain,
    as the full model on random gradient features, Table 1: 'converged'). 'at its cap': it did
    not plateau (stopped by its cap while still improving). Else 'converged'."""
    if best_iteration == 0 and not decayed:
        return NEVER_TRAINED
    return CONVERGED if plateaued else AT_CAP


def train(model, inputs, labels, schedule, batch_size, clip_grad_norm=0.0, log_every=100,
          seed=0, desc="train", validate=None, eval_every=0, patience=0, min_iterations=0):
    """Minimise task_loss (softmax or per-class sigmoid cross-entropy) for
    schedule['iterations'] at most.

    validate: a Validation (model -> Evaluation: accuracy, or mAP for a multi-label set), measured
    at iteration 0 and every `eval_every` iterations. With patience > 0, training stops once
    `patience` evaluations in a row have not beaten the best (never before `min_iterations`: the
    full model first falls below its start at a high learning rate and recovers only after it has
    decayed), and the parameters of the best evaluation are restored. A run that reaches its cap
    without that plateau is 'at its cap' when its last `patience` evaluations beat the best before
    them by more than the standard error of that gain, paired on the validation items
    (Validation.gain_se, recorded as validation_se); 'never trained' when its best is its start
    (`convergence`)."""
    trained = [p for p in model.parameters() if p.requires_grad]
    opt, lr_schedule = make_optimizer(param_groups(model, schedule), schedule)
    generator = torch.Generator().manual_seed(seed)
    out, running, window = Training(loss=[]), [], Window(patience)
    best_score, best_state, since_best = -1.0, None, 0

    def evaluate(it):
        nonlocal best_score, best_state, since_best
        start = time.perf_counter()
        evaluation = validate(model)
        out.validation_seconds += time.perf_counter() - start
        model.train()
        out.validation.append((it, evaluation.score))
        if patience:
            window.add(evaluation)
        if evaluation.score > best_score:
            best_score, out.best_iteration, since_best = evaluation.score, it, 0
            if patience:  # only what training changes: the frozen θ̄2 and ω̄ stay as they are
                best_state = [p.detach().clone() for p in trained]
        else:
            since_best += 1
        return patience and since_best >= patience and it >= min_iterations

    model.train()
    if validate is not None:
        evaluate(0)
    total = schedule["iterations"]
    batches = batch_order(len(labels), batch_size, total, generator)
    for it, idx in enumerate(tqdm(batches, total=total, desc=desc, mininterval=2.0), start=1):
        running.append(train_step(model, opt, inputs, labels, idx, clip_grad_norm))
        lr_schedule.step()
        out.iterations = it
        if it % log_every == 0 or it == total:
            out.loss.append((it, torch.stack(running).mean().item()))
            running = []
        if validate is not None and eval_every and (it % eval_every == 0 or it == total):
            if evaluate(it):
                out.stopped_early = it < total
                break
    if running:
        out.loss.append((out.iterations, torch.stack(running).mean().item()))
    if validate is not None and patience:
        decayed = opt.param_groups[0]["lr"] <= LEARNT_NOTHING_LR * schedule["lr"]
        _judge(out, window, validate, out.stopped_early or since_best >= patience, decayed)
        _restore(trained, best_state)
    model.eval()
    return out


def _judge(out, window, validate, plateaued, decayed):
    """A validated run's convergence (Training.convergence): a run that did not plateau is
    judged by its last evaluations' gain against its standard error (Window.gain; recorded as
    validation_se)."""
    if not plateaued and (gain := window.gain(validate.gain_se)) is not None:
        plateaued, out.validation_se = gain[0] <= gain[1], gain[1]
    out.convergence = convergence(out.best_iteration, plateaued, decayed)


@torch.no_grad()
def _restore(trained, best_state):
    """The best evaluation's parameters back in place of `trained`."""
    for p, best in zip(trained, best_state):
        p.copy_(best)


@torch.no_grad()
def predict(model, inputs, batch_size=1000):
    """Logits for every item of `inputs`, in large batches."""
    model.eval()
    n = len(inputs)
    return torch.cat([model(inputs[torch.arange(i, min(i + batch_size, n))])
                      for i in range(0, n, batch_size)])


def accuracy(logits, labels):
    return (logits.argmax(1) == labels).float().mean().item()


def score(logits, labels):
    """What validation maximises: accuracy, or for multi-label labels (N, C) the mAP (area under
    the interpolated precision-recall curve; -1 labels left out), as a fraction."""
    if labels.dim() == 1:
        return accuracy(logits, labels)
    labels = labels.cpu().numpy()
    return mean_average_precision(logits.float().cpu().numpy(), labels == 1, "area", labels < 0)[0]
