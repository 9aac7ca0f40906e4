"""Parameters as data: params/base.yaml (every key, commented), a profile of overrides, --set.

base.yaml is the schema: an override may only name keys it has, with values of the same type
(an int where a float is expected is fine); the keys in NULLABLE may also be null.
"""
import copy
import re
import hashlib
import json
import os
from pathlib import Path

import yaml

from .data import DATASETS
from .errors import UserError
from .gan import OBJECTIVES
from .linear_model import HEADS
from .nets import LAYERS, NTK_RULES, parse_layers

# Keys that may be null, and the type they take otherwise.
NULLABLE = {"out_dir": str, "data.root": str, "data.num_classes": int, "data.n_train": int,
            "data.n_test": int, "base.checkpoint": str, "base.random_checkpoint": str,
            "pretrain.init_std": float}
REPORTS_DIR = Path(__file__).resolve().parent.parent / "reports"  # the same from any working directory
PARAMS_DIR = Path(os.environ.get("GRADFEAT_PARAMS", Path(__file__).resolve().parent.parent / "params"))


class ParamError(UserError):
    """A bad parameter: the message names the key and what would be accepted."""


def _read_yaml(path):
    try:
        return yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as e:
        raise ParamError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None


def _type_ok(default, value):
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def _is_float(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


def merge(base, override, origin, prefix=""):
    """A copy of `base` with `override` applied; unknown keys and wrong types raise ParamError."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        name = prefix + str(key)
        if key not in base:
            raise ParamError(f"unknown key '{name}' in {origin}; known keys here: "
                             f"{', '.join(map(str, base))}")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ParamError(f"'{name}' in {origin} must be a section of keys, not {value!r}")
            out[key] = merge(base[key], value, origin, name + ".")
        elif base[key] is None or value is None and name in NULLABLE:
            if isinstance(value, (dict, list)):
                raise ParamError(f"'{name}' in {origin} must be a single value, not {value!r}")
            out[key] = value
        elif isinstance(base[key], float) and isinstance(value, str) and _is_float(value):
            out[key] = float(value)  # YAML 1.1 reads 1e-3 (no dot) as a string
        elif not _type_ok(base[key], value):
            raise ParamError(f"'{name}' in {origin} must be {type(base[key]).__name__} "
                             f"(like the default {base[key]!r}), not {value!r}")
        else:
            out[key] = float(value) if isinstance(base[key], float) else value
    return out


def parse_set(assignment):
    """'train.actv.lr=0.1' → {'train': {'actv': {'lr': 0.1}}} (the value is read as YAML)."""
    key, sep, text = assignment.partition("=")
    if not sep or not key:
        raise ParamError(f"--set '{assignment}' must look like section.key=value")
    value = yaml.safe_load(text) if text.strip() else None
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


def load_params(profile, sets=(), params_dir=None, objective=None):
    """Resolved, validated parameters: base.yaml, then params/objectives/<objective>.yaml (the
    pre-training objective: from the argument, else the profile, else base), then the profile,
    then the `--set` assignments."""
    params_dir = Path(params_dir or PARAMS_DIR)
    base = _read_yaml(params_dir / "base.yaml")
    path = params_dir / "profiles" / f"{profile}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (params_dir / "profiles").glob("*.yaml"))
        raise ParamError(f"unknown profile '{profile}': no {path}; profiles: {', '.join(known)}")
    overrides = _read_yaml(path)
    merge(base, overrides, str(path))  # unknown keys in the profile fail here, before anything else
    objective = (objective or (overrides.get("pretrain") or {}).get("objective")
                 or base["pretrain"]["objective"])
    objective_path = params_dir / "objectives" / f"{objective}.yaml"
    if not objective_path.is_file():
        raise ParamError(f"unknown objective '{objective}': no {objective_path}; objectives: "
                         f"{', '.join(sorted(p.stem for p in objective_path.parent.glob('*.yaml')))}")
    params = merge(base, _read_yaml(objective_path), str(objective_path))
    params = merge(params, overrides, str(path))
    params = merge(params, {"pretrain": {"objective": objective}}, "--objective")
    for assignment in sets:
        params = merge(params, parse_set(assignment), f"--set {assignment}")
    params["profile"] = profile
    if params["out_dir"] is None:
        params["out_dir"] = str(REPORTS_DIR / profile)
    validate(params)
    return params


def _get(params, key):
    for part in key.split("."):
        params = params[part]
    return params


def _choice(params, key, choices):
    value = _get(params, key)
    if value not in choices:
        raise ParamError(f"'{key}' is {value!r}; choose one of: {', '.join(map(str, choices))}")


def validate(params):
    """Checks that need more than types: names, ranges, paths, consistency."""
    data, base, model = params["data"], params["base"], params["model"]
    for key, kind in NULLABLE.items():
        value = _get(params, key)
        if value is not None and (not isinstance(value, (int, float) if kind is float else kind)
                                  or isinstance(value, bool) or kind is not str and value <= 0):
            what = {int: "a positive integer", float: "a positive number", str: "a path"}[kind]
            raise ParamError(f"'{key}' is {value!r}; it must be null or {what}")
    _choice(params, "data.dataset", list(DATASETS))
    _choice(params, "model.head", HEADS)
    for key in ("theta1", "theta2", "omega"):
        _choice(params, f"model.{key}", ("pretrained", "random"))
    _choice(params, "model.ntk_scale", list(NTK_RULES))
    _choice(params, "pretrain.objective", list(OBJECTIVES))
    try:
        theta2 = parse_layers(model["layers"], LAYERS)
    except ValueError as e:
        raise ParamError(f"'model.layers': {e}") from None
    if theta2[-1] != LAYERS[-1]:
        raise ParamError(f"'model.layers' is {model['layers']!r}: θ2 must be the top blocks, "
                         f"ending at {LAYERS[-1]} (conv5, conv4-5 or conv3-5)")
    classes = DATASETS[data["dataset"]]
    if data["num_classes"] is not None and data["num_classes"] != classes:
        raise ParamError(f"'data.num_classes' is {data['num_classes']} but {data['dataset']} "
                         f"has {classes} classes; remove the key or set it to {classes}")
    device = str(params["device"])
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device):
        raise ParamError(f"'device' is {device!r}; choose auto, cpu, cuda or cuda:N")
    if list(base["pixel_range"]) not in ([0, 1], [-1, 1]):
        raise ParamError(f"'base.pixel_range' is {base['pixel_range']}; choose [0, 1] or [-1, 1]")
    positive = ["train.batch_size", "train.eval_batch_size", "train.log_every",
                "base.calibrate_images"]
    positive += [f"pretrain.{k}" for k in ("latent", "iterations", "batch_size", "lr", "critic_steps",
                                           "log_every", "checkpoint_every")]
    positive += [f"train.{h}.{k}" for h in HEADS for k in ("lr", "iterations", "stepsize")]
    for key in positive:
        if _get(params, key) <= 0:
            raise ParamError(f"'{key}' is {_get(params, key)}; it must be positive")
    for key in ["train.clip_grad_norm", "pretrain.gp_weight"] + [f"train.{h}.weight_decay" for h in HEADS]:
        if _get(params, key) < 0:
            raise ParamError(f"'{key}' is {_get(params, key)}; it must be 0 or more")
    for head in HEADS:
        _choice(params, f"train.{head}.optimizer", ("sgd", "adam"))
    _validate_reproduce(params["reproduce"])
    for key in ("checkpoint", "random_checkpoint"):
        path = base[key]
        if path is not None and not Path(path).is_file():
            raise ParamError(f"'base.{key}' points at {path}, which does not exist; "
                             "run `python -m gradfeat_core pretrain` or fix the path")


def _validate_reproduce(rep):
    for key in ("table3_seeds", "table1_seeds"):
        seeds = rep[key]
        if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
            raise ParamError(f"'reproduce.{key}' is {seeds!r}; it must be a non-empty list of seeds "
                             "(integers >= 0), e.g. [0, 1, 2]")
    layers = rep["table1_layers"]
    if not layers or any(name not in ("conv5", "conv4-5", "conv3-5") for name in layers):
        raise ParamError(f"'reproduce.table1_layers' is {layers!r}; choose from conv5, conv4-5, conv3-5")
    rows = rep["table1_rows"]
    if not rows or any(r not in range(1, 9) or isinstance(r, bool) for r in rows):
        raise ParamError(f"'reproduce.table1_rows' is {rows!r}; choose rows 1 to 8 of Table 1")
    for assignment in rep["table3_set"] + rep["table1_set"]:
        if not isinstance(assignment, str):
            raise ParamError(f"'reproduce.table*_set' holds {assignment!r}; each entry is a "
                             "'key=value' string as for --set")
        parse_set(assignment)
    if rep["timeout"] <= 0:
        raise ParamError(f"'reproduce.timeout' is {rep['timeout']}; it must be positive")


def digest(obj, length=10):
    """A short stable hash of a JSON-able object (keys runs and caches by their parameters)."""
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]
