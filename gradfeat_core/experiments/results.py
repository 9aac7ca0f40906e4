"""Result files: atomic JSON writes, the environment a number was measured in, and the results
version that run keys carry."""
import functools
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


# The version of what the code computes. A run key carries it instead of the code itself, so that
# a refactor or a docstring edit keeps every finished run: bump it in the commit that changes any
# number a run produces (tests/test_golden.py pins the quick profile's numbers and says so).
RESULTS_VERSION = 1

CODE_PATHS = ("gradfeat_core", "params", "notebooks", "requirements.txt")  # what a result depends on
ROOT = Path(__file__).resolve().parents[2]  # the repository: gradfeat_core/experiments/ is two below


def file_sha256(path):
    """sha256 of a file's bytes (None for no path or no file): keys runs and caches by content.
    Remembered per (path, size, modification time) in this process: a data set's files are
    hashed once however many run keys name them."""
    if not path or not Path(path).is_file():
        return None
    stat = Path(path).stat()
    return _sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _sha256(path, size, mtime_ns):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(2**20), b""):
            h.update(block)
    return h.hexdigest()


def code_digest(root=ROOT, paths=("gradfeat_core", "params", "requirements.txt")):
    """sha256 over the content of the package, params and requirements, file by file with its
    relative path: provenance in every result's environment (which code made it), not part of
    its run key (RESULTS_VERSION is)."""
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
    code, parameters or notebooks differ from it; else the package version."""
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
            "code_digest": code_digest(), "results_version": RESULTS_VERSION,
            "gradfeat_core": __version__,
            # the most GPU memory this process's tensors have held so far (None on the CPU)
            "peak_device_gib": torch.cuda.max_memory_allocated(device) / 2**30
            if device.type == "cuda" else None}
