"""Result files: atomic JSON writes and the environment a number was measured in."""
import hashlib
import json
import os
import platform
from importlib.metadata import version
import subprocess
from pathlib import Path

import numpy as np
import torch

from .. import __version__


def write_json(path, obj):
    """Write atomically: a reader never sees half a file, and a file that exists is complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    os.replace(tmp, path)


CODE_PATHS = ("gradfeat_core", "params", "notebooks", "requirements.txt")  # what decides a result
ROOT = Path(__file__).resolve().parents[2]  # the repository: gradfeat_core/experiments/ is two below


def file_sha256(path):
    """sha256 of a file's bytes (None for no path or no file): keys runs and caches by content."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest() if path and Path(path).is_file() else None


def code_digest(root=ROOT, paths=("gradfeat_core", "params", "requirements.txt")):
    """sha256 over the content of the code every result depends on (the package, params,
    requirements; a run key adds its own notebook's sha256), file by file with its relative
    path: the same for two checkouts with the same code whatever their commits, so a commit
    that touches only the README, a report or another notebook keeps every finished run."""
    h = hashlib.sha256()
    for top in paths:
        base = root / top
        files = [base] if base.is_file() else sorted(
            f for f in base.rglob("*") if f.is_file() and "__pycache__" not in f.parts
            and ".ipynb_checkpoints" not in f.parts and f.suffix != ".pyc")
        for f in files:
            h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _git(*args, cwd):
    out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    return out.stdout.strip() if out.returncode == 0 else None


def code_version():
    """The git commit of this checkout (provenance, for result files), with -dirty when the
    code, parameters or notebooks differ from it; else the package version. Run keys use
    `code_digest` instead."""
    here = Path(__file__).resolve().parent
    try:
        commit = _git("rev-parse", "--short=12", "HEAD", cwd=here)
        if commit:
            changed = _git("status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS,
                           cwd=ROOT)
            return commit + ("-dirty" if changed else "")
    except (OSError, subprocess.TimeoutExpired):
        pass
    return __version__


def environment(device):
    device = torch.device(device)
    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads")
    return {"python": platform.python_version(), "torch": torch.__version__,
            "torchvision": version("torchvision"), "numpy": np.__version__,
            "device": str(device), "device_name": name, "code_version": code_version(),
            "gradfeat_core": __version__,
            # the most GPU memory this process's tensors have held so far (None on the CPU)
            "peak_device_gib": torch.cuda.max_memory_allocated(device) / 2**30
            if device.type == "cuda" else None}
