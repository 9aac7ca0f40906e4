"""Checkpoints: a state dict of tensors plus plain JSON-able metadata, in one torch file that
loads with `weights_only=True` (no pickled code runs on load)."""
import json
import os
from pathlib import Path

import torch

from .errors import UserError


class CheckpointError(UserError):
    """A checkpoint that is missing, unreadable, or made for something else."""


def save_atomic(obj, path):
    """torch.save `obj` at `path` atomically (a run killed mid-write leaves the previous file
    intact) and byte for byte the same for the same tensors, so that a file's sha256 (which keys
    the runs that read it) says whether its content changed: torch.save names the records of its
    archive after a path it is given, here a temporary one holding the process id, so it writes
    through a file object instead."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # per process: two may write one file
    with open(tmp, "wb") as fh:
        torch.save(obj, fh)
    os.replace(tmp, path)


def save_checkpoint(path, state_dict, meta, extra=None):
    """Write atomically (save_atomic). extra: nested dicts/lists of tensors and plain values
    (optimiser states), loaded as saved."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu() for k, v in state_dict.items()}
    meta = json.loads(json.dumps(meta))  # plain values only, or it would not load back
    save_atomic({"state_dict": tensors, "meta": dict(meta), "extra": extra}, path)


def load_checkpoint(path, expect=None, with_extra=False):
    """(state_dict, meta[, extra]); raises CheckpointError when meta disagrees with `expect`."""
    if not Path(path).is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
        state, meta, extra = obj["state_dict"], obj["meta"], obj.get("extra")
    except Exception as e:  # any unreadable file gets the same one-line answer
        raise CheckpointError(f"checkpoint {path} is not readable ({type(e).__name__}); "
                              "it must be a file written by gradfeat_core") from None
    for key, wanted in (expect or {}).items():
        if meta.get(key) != wanted:
            raise CheckpointError(f"checkpoint {path} was made for {key}={meta.get(key)!r}, "
                                  f"not {wanted!r}; use a checkpoint made for this setting")
    return (state, meta, extra) if with_extra else (state, meta)


def load_into(module, path, expect=None):
    """Load a checkpoint into `module`, all keys or nothing (checked before anything is copied)."""
    state, meta = load_checkpoint(path, expect)
    own = module.state_dict()
    wrong = sorted(set(own) ^ set(state)) or [k for k in own if own[k].shape != state[k].shape]
    if wrong:
        raise CheckpointError(f"checkpoint {path} does not fit this network (first mismatch: "
                              f"{wrong[0]}); it was made for another architecture")
    module.load_state_dict(state, strict=True)
    return meta
