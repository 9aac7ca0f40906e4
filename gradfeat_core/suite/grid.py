"""The experiment grid of `reproduce`: params/grid.yaml × the profile's `reproduce` section,
and the paper's number for each cell."""
import json

import yaml

from ..experiments.params import PARAMS_DIR, ParamError, with_protocol
from ..experiments.record import Experiment, heads_layers
from ..method.nets import parse_layers
from ..method.registry import ARCHITECTURES, OBJECTIVES
from ..method.resnet import block_names
from .paper import paper_numbers

PAPER_DATASETS = ("svhn", "cifar10", "cifar100")
PAPER_REFERENCE = "cifar10"  # the paper's column set beside data sets it did not use (Table 1's own)
# Tables 2 and 4: the paper's multi-label targets, the one set beside a stand-in's (Table 2's own),
# and its ResNets with their architectures (Table 2 is ImageNet ResNet18's)
PAPER_TRANSFER_DATASETS = ("voc07", "coco2014")
PAPER_TRANSFER_REFERENCE = "voc07"
PAPER_RESNETS = {"imagenet-resnet18": "resnet18", "jigsaw-resnet50": "resnet50"}


def head_params(profile, sets=(), objective=None):
    """(parameters, protocol section) of one head as the report's cells run it (`train-head`):
    reproduce.heads's protocol for a head at the top block, reproduce.ablation's below it."""
    return with_protocol(profile, sets, objective, lambda params: "heads" if params["model"]["layers"]
                         == heads_layers(params) else "ablation")


# The shape of each table: Table 4 (ResNets transferred to multi-label targets) is Table 3's
# heads, Table 2 Table 1's ablation; each takes grid.yaml's section and the reproduce settings
# (seeds, rows, protocol) of the table whose shape it has.
SHAPE = {1: 1, 2: 1, 3: 3, 4: 3}
# The reproduce settings each table reads, by its shape: reproduce.heads_seeds and reproduce.heads
# (its protocol) for the heads' (3, 4), ablation_seeds and ablation for the ablation's (1, 2).
PROTOCOL = {table: "heads" if shape == 3 else "ablation" for table, shape in SHAPE.items()}


def _experiment(table, head, layers, sources, rep, base="pretrained", objective=""):
    theta1, theta2, omega = sources
    shape = SHAPE[table]
    tag = "" if shape == 3 or head in ("actv", "finetune") else "-" + "".join(s[0] for s in sources)
    tag += "" if base == "pretrained" else f"-{base}-encoder"
    tag += f"-{objective}" if objective else ""
    return Experiment(f"t{table}-{head}-{layers}{tag}", table, head, layers, theta1, theta2, omega,
                      base, tuple(rep[f"{PROTOCOL[table]}_seeds"]), rep[PROTOCOL[table]], objective)


def experiments(params, grid_path=None):
    """Every experiment of the grid, in an order that trains each ω̄ (actv) before its users:
    the heads' table (3, or 4 on a ResNet; on the random encoder too unless
    reproduce.random_encoder is false; again on each of reproduce.other_bases), then the
    ablation's (1 on the ALI encoder, 2 on a ResNet; none on the VAE), as the architecture's
    TABLES say, at the depths and rows of reproduce.ablation_rows."""
    grid = yaml.safe_load(open(grid_path or PARAMS_DIR / "grid.yaml"))
    rep, pretrained = params["reproduce"], ("pretrained",) * 3
    t3, t1 = grid["heads"], grid["ablation"]
    main, *ablation = tables(params)
    bases = [b for b in t3.get("bases", ["pretrained"]) if b != "random" or rep["random_encoder"]]
    out = [_experiment(main, head, heads_layers(params, grid), pretrained, rep, base)
           for base in bases for head in t3["heads"]]
    for objective in rep["other_bases"]:  # the heads again, on each other base network's top block
        top = ARCHITECTURES[OBJECTIVES[objective].arch].LAYERS[-1]
        out += [_experiment(main, head, top, pretrained, rep, objective=objective) for head in t3["heads"]]
    if not ablation:
        return out
    table, blocks = ablation[0], ARCHITECTURES[params["base"]["arch"]].LAYERS
    for depth in rep["ablation_rows"]:
        try:
            if parse_layers(depth, blocks)[-1] != blocks[-1]:
                raise ValueError(f"θ2 must end at the top block, {blocks[-1]}")
        except ValueError as e:
            raise ParamError(f"'reproduce.ablation_rows' names {depth!r} for Table {table} on "
                             f"{params['base']['arch']}: {e}") from None
    if "actv" in t1["baselines"] and any(rep["ablation_rows"].values()):
        out.append(_experiment(table, "actv", heads_layers(params, grid), pretrained, rep))
    for layers, rows in rep["ablation_rows"].items():
        if rows and "finetune" in t1["baselines"] and layers in rep["ablation_finetune"]:
            out.append(_experiment(table, "finetune", layers, pretrained, rep))
        out += [_experiment(table, head, layers, tuple(sources), rep)
                for row, sources in enumerate(t1["sources"], start=1) if row in rows
                for head in t1["heads"]]
    return out


def tables(params):
    """The paper's tables the profile's base network reproduces: (heads' table[, ablation's])."""
    return ARCHITECTURES[params["base"]["arch"]].TABLES


def twins(grid):
    """{name of an ablation experiment (Table 1, 2): the heads' experiment (Table 3, 4) it
    repeats}: the same parameters and seeds (both tables on one protocol make the ablation's
    all-pre-trained cells at the top block and its baselines the heads' table's), so that
    reproduce runs each once."""
    def runs_as(e):
        return json.dumps([e.overrides(), e.seeds, e.objective], sort_keys=True)
    heads = {runs_as(e): e for e in grid if SHAPE[e.table] == 3}
    return {e.name: heads[runs_as(e)] for e in grid if SHAPE[e.table] == 1 and runs_as(e) in heads}


def paper_base_of(base):
    """The paper's base network that `base` (results.csv's: a pre-training objective, or one of
    the paper's ResNets) is or stands in for (Objective.paper, Objective.stands_for), or None."""
    if base in PAPER_RESNETS:
        return base
    objective = OBJECTIVES.get(base)
    return objective and (objective.paper or objective.stands_for)


def paper_value(table, dataset, head, layers, theta1="pretrained", theta2="pretrained",
                omega="pretrained", base=None):
    """(the paper's accuracy, or mAP, for this cell, the data set it was measured on) or (None,
    None). For a data set the paper did not use, the CIFAR-10 column (Tables 2 and 4: VOC07)
    stands beside ours; Table 4's row is the paper's base network `base` is or stands in for."""
    if table in (2, 4):
        column = dataset if dataset in PAPER_TRANSFER_DATASETS else PAPER_TRANSFER_REFERENCE
        paper_base = "imagenet-resnet18" if table == 2 else paper_base_of(base)
        for r in (r for r in paper_numbers() if r["table"] == table and paper_base in PAPER_RESNETS):
            named = block_names(PAPER_RESNETS[paper_base], r["layers"]) if "layers" in r else layers
            if (r.get("head") == head and named == layers
                    and r["dataset"] == column and r.get("base", paper_base) == paper_base
                    and (r["row"] == "baseline" or table == 4
                         or (r["theta1"], r["theta2"], r["omega"]) == (theta1, theta2, omega))):
                return r["value"], column
        return None, None
    column = dataset if dataset in PAPER_DATASETS else PAPER_REFERENCE
    for r in paper_numbers():
        if r["table"] != table or r.get("head") != head or r.get("layers") != layers:
            continue
        if r["row"] == "baseline" or table == 3:  # Table 3: layers tell BiGAN (conv5) from VAE (conv8)
            if r["dataset"] == column:
                return r["value"], column
        elif (r["theta1"], r["theta2"], r["omega"]) == (theta1, theta2, omega) and r["dataset"] == column:
            return r["value"], column
    return None, None
