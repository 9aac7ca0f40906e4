"""Parameters as data: params/base.yaml (every key, commented), a profile of overrides, --set.

base.yaml is the schema: an override may only name keys it has, with values of the same type
(an int where a float is expected is fine); the keys in NULLABLE may also be null. Every number
must be finite and every integer fit in 64 bits; out_dir must be a writable directory (or one that
can be made) on a disk with MIN_FREE_BYTES free. Whatever is wrong is a one-line ParamError naming
the key, or the file and line, found before any work starts.
"""
import copy
import hashlib
import json
import math
import os
import re
import shutil
from pathlib import Path

import yaml

from ..method.linear_model import HEADS
from ..method.nets import NTK_RULES, parse_layers, top_blocks
from ..method.registry import ARCHITECTURES, OBJECTIVES
from .data import DATASETS, MOSAIC_SIDES, STANDIN, VIEWED
from .errors import UserError
from .results import ROOT, file_sha256

# Keys that may be null, and the type they take otherwise.
NULLABLE = {"out_dir": str, "data.root": str, "data.num_classes": int, "data.n_train": int,
            "data.n_test": int, "base.checkpoint": str, "base.random_checkpoint": str,
            "base.checkpoint_sha256": str, "pretrain.init_std": float,
            "reproduce.sensitivity.pretrain_seed": int, "reproduce.sensitivity.checkpoint": str,
            "reproduce.sensitivity.checkpoint_sha256": str,
            "cache.device_gib": float}
# the same from any working directory (GRADFEAT_REPORTS: elsewhere, e.g. for the tests)
REPORTS_DIR = Path(os.environ.get("GRADFEAT_REPORTS", ROOT / "reports"))
PARAMS_DIR = Path(os.environ.get("GRADFEAT_PARAMS", ROOT / "params"))
SEEDS = range(2**32)  # numpy's legacy seeding (seed_everything) takes these
INT64_MAX = 2**63 - 1
MIN_FREE_BYTES = 100 * 2**20  # out_dir's disk needs room for result files, checkpoints, caches


class ParamError(UserError):
    """A bad parameter: the message names the key and what would be accepted."""


class _Loader(yaml.SafeLoader):
    """yaml.safe_load's loader, refusing integers beyond 64 bits: no parameter takes one (torch
    and numpy hold counts and seeds in 64 bits), and Python cannot even print an integer of more
    than 4300 digits in an error message."""

    def construct_yaml_int(self, node):
        try:
            value = super().construct_yaml_int(node)
        except ValueError:  # more than 4300 digits
            value = None
        if value is None or abs(value) > INT64_MAX:
            raise yaml.constructor.ConstructorError(None, None, "an integer beyond 64 bits", node.start_mark)
        return value


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)


def _parse_yaml(source, what, fix):
    """yaml.safe_load(source), but with _Loader; whatever stops it is a one-line ParamError
    '<what> is not valid YAML (line L, column C: <problem>); <fix>'."""
    try:
        return yaml.load(source, Loader=_Loader)
    except (yaml.YAMLError, ValueError, RecursionError) as e:  # ValueError: a date like 2020-13-45
        mark = getattr(e, "problem_mark", None)
        problem = ("nested too deeply" if isinstance(e, RecursionError) else getattr(e, "problem", None)
                   or getattr(e, "reason", None) or str(e).splitlines()[0])
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ParamError(f"{what} is not valid YAML ({where}{problem}); {fix}") from None


def _read_yaml(path):
    """The mapping at the top of a YAML file; an empty file is {}."""
    try:
        with open(path, "rb") as fh:  # bytes: PyYAML reports a bad encoding as a YAMLError
            doc = _parse_yaml(fh, path, "fix the file there")
    except OSError as e:
        raise ParamError(f"cannot read {path}: {e.strerror}") from None
    if doc is not None and not isinstance(doc, dict):
        raise ParamError(f"{path} holds a {type(doc).__name__} at its top level; it must be a mapping "
                         "of keys, e.g. 'train: {batch_size: 64}'")
    return doc or {}


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


def leaves(params, prefix=""):
    """(dotted key, value) of every non-section value."""
    for key, value in params.items():
        if isinstance(value, dict):
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield prefix + str(key), value


# Sections that hold overrides of the parameters themselves (one table's protocol, the
# pre-training's): any keys, merged key by key over what a profile or --set gave before,
# validated when validate() merges them into the parameters.
OVERRIDES = ("reproduce.heads", "reproduce.ablation", "reproduce.pretrain", "reproduce.sensitivity.design")
# Mappings whose keys depend on the base network (the ablation's depths: grid.experiments checks
# them against its blocks): any keys, merged key by key.
ANY_KEYS = ("reproduce.ablation_rows",)


def combine(base, override):
    """`override` laid over `base`, section by section (plain mappings, nothing validated: what
    merge() then applies to the parameters)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        out[key] = combine(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) \
            else copy.deepcopy(value)
    return out


def merge(base, override, origin, prefix=""):
    """A copy of `base` with `override` applied; unknown keys and wrong types raise ParamError."""
    out = copy.deepcopy(base)
    if not isinstance(override, dict):
        raise ParamError(f"{prefix.rstrip('.') or 'the parameters'} in {origin} must be a section of "
                         f"keys, not {override!r}")
    for key, value in override.items():
        name = prefix + str(key)
        if name in OVERRIDES or name in ANY_KEYS:
            if not isinstance(value, dict):
                example = "{train: {batch_size: 64}}" if name in OVERRIDES else "{conv5: [1, 8]}"
                raise ParamError(f"'{name}' in {origin} must be a mapping, e.g. {example}, "
                                 f"not {value!r}")
            out[key] = combine(base[key], value)
            continue
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


def assignments(sets):
    """The `--set` strings of a command line as one mapping of overrides (later ones win)."""
    out = {}
    for assignment in sets:
        out = combine(out, parse_set(assignment))
    return out


def parse_set(assignment):
    """'train.actv.lr=0.1' → {'train': {'actv': {'lr': 0.1}}} (the value is read as YAML)."""
    key, sep, text = assignment.partition("=")
    if not sep or not key:
        raise ParamError(f"--set '{assignment}' must look like section.key=value")
    value = _parse_yaml(text, f"--set '{assignment}': the value of '{key}'",
                        f"quote it ({key}='...') or close its brackets") if text.strip() else None
    for part in reversed(key.split(".")):
        value = {part: value}
    return value


def load_params(profile, sets=(), params_dir=None, objective=None, overrides=None):
    """Resolved, validated parameters: base.yaml, then params/objectives/<objective>.yaml (the
    pre-training objective: from the argument, else the profile, else base), then the profile,
    then the `--set` assignments of a command line, then `overrides` (a nested mapping, e.g.
    {'out_dir': ..., 'base': {'checkpoint': ...}}: what reproduce hands each notebook)."""
    params_dir = Path(params_dir or PARAMS_DIR)
    base = _read_yaml(params_dir / "base.yaml")
    path = params_dir / "profiles" / f"{profile}.yaml"
    if not os.path.isfile(path):
        known = sorted(p.stem for p in (params_dir / "profiles").glob("*.yaml"))
        raise ParamError(f"unknown profile '{profile}': no {path}; profiles: {', '.join(known)}")
    profile_params = _read_yaml(path)
    merge(base, profile_params, str(path))  # unknown keys in the profile fail here, before anything else
    objective = (objective or (profile_params.get("pretrain") or {}).get("objective")
                 or base["pretrain"]["objective"])
    objective_path = params_dir / "objectives" / f"{objective}.yaml"
    if not os.path.isfile(objective_path):
        raise ParamError(f"unknown objective '{objective}': no {objective_path}; objectives: "
                         f"{', '.join(sorted(p.stem for p in (params_dir / 'objectives').glob('*.yaml')))}")
    params = merge(base, _read_yaml(objective_path), str(objective_path))
    params = merge(params, profile_params, str(path))
    params = merge(params, {"pretrain": {"objective": objective}}, "--objective")
    for assignment in sets:
        params = merge(params, parse_set(assignment), f"--set {assignment}")
    params = merge(params, overrides or {}, "overrides")
    params["profile"] = profile
    if params["out_dir"] is None:
        params["out_dir"] = str(REPORTS_DIR / profile)
    for key in ("checkpoint", "random_checkpoint"):  # a committed encoder is named from the repository
        params["base"][key] = _from_root(params["base"][key], Path.is_file)
    params["base"]["compared"] = [_from_root(p, Path.is_dir) for p in params["base"]["compared"]]
    sensitivity = params["reproduce"]["sensitivity"]
    sensitivity["checkpoint"] = _from_root(sensitivity["checkpoint"], Path.is_file)
    validate(params)
    return params


def _from_root(path, found):
    """`path`, or the repository root's `path` where it is relative, not there from the working
    directory, and found(ROOT / path) (Path.is_file, Path.is_dir): what encoders/ holds."""
    if isinstance(path, str) and path and not os.path.isabs(path) and not os.path.exists(path) \
            and found(ROOT / path):
        return str(ROOT / path)
    return path


def _get(params, key):
    for part in key.split("."):
        params = params[part]
    return params


def _choice(params, key, choices):
    value = _get(params, key)
    if value not in choices:
        raise ParamError(f"'{key}' is {value!r}; choose one of: {', '.join(map(str, choices))}")


def validate(params, tables=True):
    """Checks that need more than types: names, ranges, paths, consistency; with `tables`, of
    the parameters each table's protocol (reproduce.heads, reproduce.ablation) makes too. In
    this order, so that a run's first error is always the same one."""
    _check_values(params)
    _check_model(params)
    _check_data(params)
    _check_numbers(params)
    _check_schedules(params)
    _check_pretrain(params["pretrain"])
    _validate_reproduce(params["reproduce"])
    _check_protocols(params, tables)
    _check_files(params)
    _check_dirs(params)


def _check_values(params):
    """Every number finite, every seed a seed, every nullable key null or of its kind, every
    name one of its choices."""
    for key, value in leaves(params):
        for number in value if isinstance(value, list) else [value]:
            if isinstance(number, float) and not math.isfinite(number):
                raise ParamError(f"'{key}' is {value}; it must be a finite number")
    for key in ("seed", "data.seed", "base.random_seed"):
        if _get(params, key) not in SEEDS:
            raise ParamError(f"'{key}' is {_get(params, key)}; a seed is an integer from 0 to {SEEDS[-1]}")
    for key, kind in NULLABLE.items():
        value = _get(params, key)
        if value is not None and (not isinstance(value, (int, float) if kind is float else kind)
                                  or isinstance(value, bool) or (value <= 0 if kind is not str else not value)):
            what = {int: "a positive integer", float: "a positive number", str: "a path"}[kind]
            raise ParamError(f"'{key}' is {value!r}; it must be null or {what}")
    _choice(params, "data.dataset", list(DATASETS))
    _choice(params, "model.head", HEADS)
    for key in ("theta1", "theta2", "omega"):
        _choice(params, f"model.{key}", ("pretrained", "random"))
    _choice(params, "model.ntk_scale", list(NTK_RULES))
    _choice(params, "base.encoder", ("pretrained", "random"))
    _choice(params, "model.tangent", ("fast", "jvp"))
    _choice(params, "pretrain.objective", list(OBJECTIVES))
    _choice(params, "base.arch", list(ARCHITECTURES))


def _check_model(params):
    """The base network's batch norm and the head's θ2 blocks fit the architecture."""
    base, model = params["base"], params["model"]
    layers = ARCHITECTURES[base["arch"]].LAYERS
    if base["batchnorm"] and not ARCHITECTURES[base["arch"]].BATCHNORM:
        raise ParamError(f"'base.batchnorm' is true but the {base['arch']} encoder (base.arch) has no "
                         f"batch norm; set it to false (params/objectives/{params['pretrain']['objective']}.yaml "
                         "sets what its objective trains)")
    # parse_layers spells out every block of a range: conv1-999999999 would take minutes
    if any(len(n) > 2 for n in re.findall(r"\d+", model["layers"])):
        raise ParamError(f"'model.layers' is {model['layers']!r}; choose {top_blocks(layers)}")
    try:
        theta2 = parse_layers(model["layers"], layers)
    except ValueError as e:
        raise ParamError(f"'model.layers' ({base['arch']} encoder): {e}") from None
    if theta2[-1] != layers[-1]:
        raise ParamError(f"'model.layers' is {model['layers']!r}: θ2 must be the top blocks, "
                         f"ending at {layers[-1]} ({top_blocks(layers)})")


def _check_data(params):
    """The data set's classes, random views and mosaic side."""
    data = params["data"]
    classes = DATASETS[data["dataset"]]
    if data["num_classes"] is not None and data["num_classes"] != classes:
        raise ParamError(f"'data.num_classes' is {data['num_classes']} but {data['dataset']} "
                         f"has {classes} classes; remove the key or set it to {classes}")
    for key in ("train_views", "test_views"):
        if not isinstance(data[key], int) or data[key] < 1:
            raise ParamError(f"'data.{key}' is {data[key]!r}; it must be a positive integer")
        if data[key] != 1 and data["dataset"] not in VIEWED:
            raise ParamError(f"'data.{key}' is {data[key]} but {data['dataset']} has no random views "
                             f"(only {' and '.join(VIEWED)}); remove the key or set it to 1")
    if data["mosaic_side"] != 32 and (data["dataset"] not in STANDIN or data["mosaic_side"] not in MOSAIC_SIDES):
        raise ParamError(f"'data.mosaic_side' is {data['mosaic_side']!r}" + (
            f"; choose {', '.join(map(str, MOSAIC_SIDES))}" if data["dataset"] in STANDIN else
            f" but {data['dataset']} is not the stand-in ({' and '.join(STANDIN)}); remove the key"))


def _check_numbers(params):
    """The device, the pixel range, and the ranges of sizes, rates, betas and the validation
    split."""
    base = params["base"]
    device = str(params["device"])
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device):
        raise ParamError(f"'device' is {device!r}; choose auto, cpu, cuda or cuda:N")
    if list(base["pixel_range"]) not in ([0, 1], [-1, 1]):
        raise ParamError(f"'base.pixel_range' is {base['pixel_range']}; choose [0, 1] or [-1, 1]")
    positive = ["train.batch_size", "train.eval_batch_size", "train.log_every",
                "base.calibrate_images", "cache.max_gib"]
    positive += [f"pretrain.{k}" for k in ("latent", "iterations", "batch_size", "lr", "critic_steps",
                                           "log_every", "checkpoint_every", "likelihood_std")]
    positive += [f"train.{h}.{k}" for h in HEADS for k in ("lr", "iterations", "stepsize")]
    for key in positive:
        if _get(params, key) <= 0:
            raise ParamError(f"'{key}' is {_get(params, key)}; it must be positive")
    for key in (["train.clip_grad_norm", "pretrain.gp_weight", "train.eval_every", "train.patience",
                  "train.min_iterations", "pretrain.max_minutes"]
                + [f"train.{h}.weight_decay" for h in HEADS] + ["train.full.w1_lr"]):
        if _get(params, key) < 0:
            raise ParamError(f"'{key}' is {_get(params, key)}; it must be 0 or more")
    train = params["train"]
    if not 0 <= train["val_fraction"] <= 0.5:
        raise ParamError(f"'train.val_fraction' is {train['val_fraction']}; hold out between 0 "
                         "(no validation split) and 0.5 of the training set, e.g. 0.1")
    if train["patience"] and not (train["val_fraction"] and train["eval_every"]):
        raise ParamError("'train.patience' needs a validation split and evaluations to watch: "
                         "set train.val_fraction (e.g. 0.1) and train.eval_every (e.g. 500)")
    for key in ("pretrain.beta1", "pretrain.beta2"):
        if not 0 <= _get(params, key) < 1:
            raise ParamError(f"'{key}' is {_get(params, key)}; Adam's betas lie in [0, 1), e.g. 0.5 or 0.999")


def _check_schedules(params):
    """Each head's optimizer, learning-rate grid and alternatives (made numbers: YAML reads
    1e-3 as text)."""
    train = params["train"]
    for head in HEADS:
        _choice(params, f"train.{head}.optimizer", ("sgd", "adam"))
        grid = train[head]["lr_grid"] = [float(lr) if isinstance(lr, str) and _is_float(lr) else lr
                                         for lr in train[head]["lr_grid"]]  # YAML reads 1e-3 as text
        if not all(isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr > 0 for lr in grid):
            raise ParamError(f"'train.{head}.lr_grid' is {grid!r}; it must be a list of positive "
                             f"learning rates, e.g. [0.01, 0.1], or [] for train.{head}.lr alone")
        if len(grid) > 1 and not train["val_fraction"]:
            raise ParamError(f"'train.{head}.lr_grid' has {len(grid)} learning rates but nothing "
                             "to choose on: set train.val_fraction (e.g. 0.1)")
        alternatives = train[head]["alternatives"]

        def number(value, least):  # YAML reads 5e-5 as text
            return not isinstance(value, bool) and _is_float(value) and float(value) >= least
        if not isinstance(alternatives, list) or not all(
                isinstance(a, dict) and a and set(a) <= {"optimizer", "lr", "weight_decay"}
                and a.get("optimizer", "sgd") in ("sgd", "adam") and number(a.get("lr", 1), 1e-300)
                and number(a.get("weight_decay", 0), 0) for a in alternatives):
            raise ParamError(f"'train.{head}.alternatives' is {alternatives!r}; it must list schedules, "
                             "each changing some of optimizer (sgd | adam), lr (> 0) and weight_decay "
                             "(>= 0), e.g. [{optimizer: sgd, weight_decay: 5.0e-5}], or []")
        train[head]["alternatives"] = [{k: v if k == "optimizer" else float(v) for k, v in a.items()}
                                       for a in alternatives]


def _check_pretrain(pretrain):
    """The feature-quality curve's snapshots and probes."""
    snapshots, its = pretrain["snapshots"], pretrain["iterations"]
    if not all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i <= its for i in snapshots):
        raise ParamError(f"'pretrain.snapshots' is {snapshots!r}; it must list iterations from 0 "
                         f"to pretrain.iterations ({its}), e.g. [0, 100, 300]")
    probes = pretrain["quality_heads"]
    if not probes or any(h not in ("actv", "grad") for h in probes) or len(set(probes)) < len(probes):
        raise ParamError(f"'pretrain.quality_heads' is {probes!r}; list the probes of the "
                         "feature-quality curve, each once, from actv and grad, e.g. [actv, grad]")


def _check_protocols(params, tables):
    """Each table's protocol and the pre-training's are valid parameters (with `tables`, once
    applied), and leave the grid alone."""
    rep = params["reproduce"]
    protocols = {"heads": rep["heads"], "ablation": rep["ablation"], "pretrain": rep["pretrain"],
                 "sensitivity.design": rep["sensitivity"]["design"]}
    for section, protocol in protocols.items():
        grid = {"reproduce", "model", "profile", "out_dir"}
        if grid & set(protocol):
            raise ParamError(f"'reproduce.{section}' sets {', '.join(sorted(grid & set(protocol)))}; it "
                             "sets data, base, train, cache or pretrain parameters only")
        if tables:
            try:
                validate(merge(params, protocol, f"reproduce.{section}"), tables=False)
            except ParamError as e:
                raise ParamError(f"with reproduce.{section}'s parameters applied: {e}") from None


def _check_files(params):
    """The base network's files exist (an imported one may come later), the compared
    encoders' folders hold their records, committed files have their sha256."""
    base = params["base"]
    for key in ("checkpoint", "random_checkpoint"):
        path = base[key]
        if path is not None and not os.path.isfile(path):
            if key == "checkpoint" and OBJECTIVES[params["pretrain"]["objective"]].imported:
                continue  # the paper's weights, imported later: a dry run needs none, a run says how
            raise ParamError(f"'base.{key}' points at {path}, which does not exist; "
                             "run `python -m gradfeat_core pretrain` or fix the path")
    for folder in base["compared"]:
        if not (isinstance(folder, str) and all(os.path.isfile(os.path.join(folder, name))
                                                for name in ("pretrain.json", "quality.csv"))):
            raise ParamError(f"'base.compared' names {folder!r}, which holds no pretrain.json and "
                             "quality.csv; make it with `python -m gradfeat_core publish-encoder "
                             "<pretrain dir> --to <folder> --curves-only` or drop it from the list")
    _check_sha256("base.checkpoint", base["checkpoint"], base["checkpoint_sha256"],
                  "re-create the encoder from scratch with --set base.checkpoint=null")
    sensitivity = params["reproduce"]["sensitivity"]
    if sensitivity["checkpoint"] and not os.path.isfile(sensitivity["checkpoint"]):
        raise ParamError(f"'reproduce.sensitivity.checkpoint' points at {sensitivity['checkpoint']}, which "
                         "does not exist; fix the path or set it to null to pre-train it in the run")
    _check_sha256("reproduce.sensitivity.checkpoint", sensitivity["checkpoint"],
                  sensitivity["checkpoint_sha256"], "set it to null to pre-train it in the run")


def _check_sha256(key, path, expected, alternative):
    """A committed file that must have the sha256 its profile records."""
    if expected and path and file_sha256(path) != expected:
        raise ParamError(f"'{key}' {path} has sha256 {file_sha256(path)[:12]}..., not the "
                         f"{expected[:12]}... of {key}_sha256: restore the file (git checkout -- "
                         f"<it>) or {alternative}")


def _check_dirs(params):
    """out_dir: a directory, or a path that can be made one, writable, on a disk with room;
    data.root: not a file. Read-only: nothing is created here."""
    for key in ("out_dir", "data.root"):
        if "\0" in (_get(params, key) or ""):
            raise ParamError(f"'{key}' is {_get(params, key)!r}; a path cannot hold a NUL character")
    root = params["data"]["root"]
    if root is not None and os.path.lexists(root) and not os.path.isdir(root):
        raise ParamError(f"'data.root' is {root}, which is a file; point it at the directory "
                         "that holds the data set's files")
    out_dir = params["out_dir"]
    if os.path.lexists(out_dir) and not os.path.isdir(out_dir):
        raise ParamError(f"'out_dir' is {out_dir}, which is a file; point it at a directory "
                         "(a missing one is created)")
    existing = os.path.abspath(out_dir)
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ParamError(f"'out_dir' is {out_dir}, but {existing} is a file, not a directory; "
                         "choose another out_dir")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ParamError(f"'out_dir' is {out_dir}, but {existing} is not writable; "
                         "choose a directory you can write to")
    free = shutil.disk_usage(existing).free
    if free < MIN_FREE_BYTES:
        raise ParamError(f"'out_dir' is {out_dir}, on a disk with {free // 2**20} MiB free; results, "
                         f"checkpoints and caches need at least {MIN_FREE_BYTES // 2**20} MiB: "
                         "free some space or choose another out_dir")


def _validate_reproduce(rep):
    for key in ("heads_seeds", "ablation_seeds"):
        seeds = rep[key]
        if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s in SEEDS for s in seeds):
            raise ParamError(f"'reproduce.{key}' is {seeds!r}; it must be a non-empty list of seeds "
                             f"(integers from 0 to {SEEDS[-1]}), e.g. [0, 1, 2]")
    for layers, rows in rep["ablation_rows"].items():
        if not isinstance(rows, list) or any(r not in range(1, 9) or isinstance(r, bool) for r in rows):
            raise ParamError(f"'reproduce.ablation_rows.{layers}' is {rows!r}; choose rows 1 to 8 "
                             "of Table 1, e.g. [1, 8], or [] to skip the depth")
    unknown = [d for d in rep["ablation_finetune"] if d not in rep["ablation_rows"]]
    if unknown:
        raise ParamError(f"'reproduce.ablation_finetune' names {unknown}; choose depths of "
                         f"reproduce.ablation_rows ({', '.join(rep['ablation_rows'])})")
    unknown = [o for o in rep["other_bases"] if o not in OBJECTIVES]
    if unknown:
        raise ParamError(f"'reproduce.other_bases' names {unknown}; choose objectives from "
                         f"{', '.join(OBJECTIVES)}")
    slurm = rep["slurm"]
    for stage in ("pretrain", "heads", "linearization"):
        for key in ("cpus", "mem_gb", "time_min"):
            if slurm[stage][key] <= 0:
                raise ParamError(f"'reproduce.slurm.{stage}.{key}' is {slurm[stage][key]}; it must be positive")
        bad = [o for o in slurm[stage]["sbatch"] if not (isinstance(o, str) and o.startswith("--"))]
        if bad:
            raise ParamError(f"'reproduce.slurm.{stage}.sbatch' holds {bad}; give sbatch options "
                             "as strings, e.g. [\"--qos=normal\", \"--account=lab\"]")
    if rep["timeout"] <= 0:
        raise ParamError(f"'reproduce.timeout' is {rep['timeout']}; it must be positive")
    schedule = rep["sensitivity"]["schedule"]
    if isinstance(schedule, bool) or not isinstance(schedule, int) or schedule < 0 or schedule == 1:
        raise ParamError(f"'reproduce.sensitivity.schedule' is {schedule!r}; give a whole factor of 2 "
                         "or more (the schedule twice as long: 2), or 0 to skip that perturbation")


def with_protocol(profile, sets, objective, section):
    """(parameters, section) of one stage run on its own as `reproduce` runs it: the profile's with
    its reproduce.<section> laid over them (a table's protocol, e.g. the report's training
    subset, or the pre-training's, e.g. its source data set), the command line's `sets` over
    both. section(parameters without it) names the section."""
    params = load_params(profile, sets, objective=objective)
    name = section(params)
    overrides = combine(params["reproduce"][name], assignments(sets))
    return load_params(profile, sets, objective=objective, overrides=overrides), name


def smoke(profile, sets=(), objective=None, params_dir=None):
    """`--smoke`: the --set assignments that shrink `profile` to a run of minutes (laid before
    the command line's `sets`, which win): params/smoke.yaml, also over any of the profile's
    protocols (reproduce.heads, ablation, pretrain) that set one of its keys; no row of the
    ablation at any of the profile's depths; random views at most 2; out_dir
    reports/<profile>-smoke unless `sets` name one."""
    params_dir = Path(params_dir or PARAMS_DIR)
    params = load_params(profile, sets, params_dir, objective)
    own, rep = _read_yaml(params_dir / "smoke.yaml"), params["reproduce"]
    mine = dict(leaves(own))
    for section in ("heads", "ablation", "pretrain"):
        for key, _ in leaves(rep[section]):
            if key in mine:
                own = combine(own, parse_set(f"reproduce.{section}.{key}={json.dumps(mine[key])}"))
    own = combine(own, {"reproduce": {"ablation_rows": {d: [] for d in rep["ablation_rows"]}},
                        "data": {k: min(params["data"][k], 2) for k in ("train_views", "test_views")}})
    if "out_dir" not in assignments(sets):
        own["out_dir"] = str(REPORTS_DIR / f"{profile}-smoke")
    return [f"{key}={json.dumps(value)}" for key, value in leaves(own)]


# Parameters added after results were committed, at the value that does what ran before them: a
# run key leaves such a parameter out while it has that value (`keyed`), so the finished runs
# stay finished.
ADDED = {("data", "train_views"): 1, ("data", "test_views"): 1, ("data", "mosaic_side"): 32,
         **{("train", head, "alternatives"): [] for head in HEADS}}


def _without(tree, path, old):
    """`tree` without the key at `path` where that holds `old` (copied along the path only)."""
    name, *rest = path
    if not isinstance(tree, dict) or name not in tree:
        return tree
    if not rest:
        return {k: v for k, v in tree.items() if k != name} if tree[name] == old else tree
    return dict(tree, **{name: _without(tree[name], rest, old)})


def keyed(params):
    """Resolved parameters as a run's key takes them: each ADDED one left out at its old value."""
    out = dict(params)
    for path, old in ADDED.items():
        out = _without(out, path, old)
    return out


# Resolved parameters that decide no number of a run (a section, or section.key): what names it or
# schedules it (profile, reproduce), where its files go, what the report sets beside it, a check
# of a file that is hashed anyway, the time budget of one pre-training call (the next resumes it).
# The one list: run keys (record.run_key) and a finished run's match (run.finished_result) read it.
NOT_DECISIVE = ("profile", "reproduce", "out_dir", "base.compared", "base.checkpoint_sha256",
                "pretrain.max_minutes")


def deciding(params, leave_out=()):
    """keyed(params) without the NOT_DECISIVE parameters nor those of `leave_out` (sections or
    section.key, e.g. a head's run leaves out the pre-training that made its base network)."""
    drop = (*NOT_DECISIVE, *leave_out)
    out = {}
    for section, value in keyed(params).items():
        if section in drop:
            continue
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if f"{section}.{k}" not in drop}
        out[section] = value
    return out


def digest(obj, length=10):
    """A short stable hash of a JSON-able object (keys runs and caches by their parameters)."""
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]
