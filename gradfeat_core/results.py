"""Result files: atomic JSON writes and the environment a number was measured in."""
import json
import os
import platform
from importlib.metadata import version
import subprocess
from pathlib import Path

import numpy as np
import torch

from . import __version__


def write_json(path, obj):
    """Write atomically: a reader never sees half a file, and a file that exists is complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    os.replace(tmp, path)


CODE_PATHS = ("gradfeat_core", "params", "notebooks", "requirements.txt")  # what decides a result


def _git(*args, cwd):
    out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
    return out.stdout.strip() if out.returncode == 0 else None


def code_version():
    """The git commit of this checkout, with -dirty when the code, parameters or notebooks
    differ from it (not the reports: a finished report must not make its own runs stale);
    else the package version."""
    here = Path(__file__).resolve().parent
    try:
        commit = _git("rev-parse", "--short=12", "HEAD", cwd=here)
        if commit:
            changed = _git("status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS,
                           cwd=here.parent)
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
            "gradfeat_core": __version__}
