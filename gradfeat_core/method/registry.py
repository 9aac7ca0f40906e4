"""One registry of pre-training objectives (as timm's of models): each objective is one module
(gan: ali and wali, rotation, vae, supervised; imported: the paper's ResNets) that registers an Objective here when method/ is imported;
pre-training, parameter validation, the command line, the bench and the report read it. A new
objective is its module (method/__init__.py imports every module) and params/objectives/<name>.yaml.

The base networks' architectures are registered the same way (`architecture`, base.arch): the
five-conv encoder in nets, the VAE's in vae. Each is a nets.BaseNetwork class: its blocks
(LAYERS), its initialisation, the checkpoint metadata it accepts, the depths the bench times
(BENCH_LAYERS) and its FLOPs per block (flops); a new one is one module with a decorated class.
"""
from dataclasses import dataclass
from typing import Callable

import torch

OBJECTIVES = {}     # name → Objective
ARCHITECTURES = {}  # base.arch → the base network's class (nets.BaseNetwork)


def architecture(cls):
    """Register a base network class under its ARCH (a class decorator)."""
    ARCHITECTURES[cls.ARCH] = cls
    return cls


class DivergedError(RuntimeError):
    """A loss became NaN or infinite; the message says where the last good checkpoint is."""


def check(**losses):
    """Raise DivergedError before a non-finite loss is applied."""
    for name, loss in losses.items():
        if not torch.isfinite(loss):
            raise DivergedError(f"{name} is {loss.item()}")


@dataclass(frozen=True)
class Objective:
    """A pre-training objective: the networks it builds, one update, what it records."""
    name: str
    label: str          # the base network it makes, as the report names it
    arch: str           # the encoder it trains (base.arch: ARCHITECTURES)
    records: dict       # what an update records (losses.csv's columns, the loss first) → plot label
    build: Callable     # (in_channels, pretrain parameters, leak, seed[, classes]) → {'E'[, 'G', 'D']}
    update: Callable    # (nets, optimisers, batches, pretrain parameters) → records, as floats
    pixel_range: tuple | None = None  # the pixels its data must lie in (its generator's); None: any
    figures: Callable | None = None   # (nets, data, pretrain parameters, generator) → {file: images}
    figure_files: tuple = ()          # the files `figures` gives, in order (what publish copies)
    critic_batches: bool = False      # one batch per critic step (pretrain.critic_steps) an update
    ylabel: str = "loss"
    paper: str | None = None          # the paper's base network it makes (bigan, vae); None: not one
    stands_for: str | None = None     # the paper's base network whose role it plays on a stand-in
                                      # (imagenet-resnet18, jigsaw-resnet50: Table 4)
    log_scale: bool = False           # its loss curve on a log axis
    labelled: bool = False            # trains on labels: each batch is (images, class indices) and
                                      # build takes the data set's number of classes
    imported: bool = False            # a published network whose weights are imported (imported.py),
                                      # never pre-trained here: base.checkpoint names the file

    def batches(self, p):
        """Batches of images one update takes."""
        return p["critic_steps"] if self.critic_batches else 1


def register(objective):
    OBJECTIVES[objective.name] = objective
    return objective


def one_loss(losses):
    """The update of an objective with one network and one loss: losses(nets, batch, p) →
    (loss, the other records), on the last batch (images, or (images, labels): labelled)."""
    def update(nets, opts, x_batches, p):
        records = losses(nets, x_batches[-1], p)
        check(loss=records[0])
        opts["E"].zero_grad(set_to_none=True)
        records[0].backward()
        opts["E"].step()
        return tuple(r.item() for r in records)
    return update
