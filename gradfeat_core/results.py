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


def code_version():
    """The git commit of this checkout (with -dirty when it has changes), else the package version."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=12"], cwd=here,
                             capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
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
