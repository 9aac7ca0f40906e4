"""Result files: atomic JSON writes, the environment a number was measured in, and the results
version that run keys carry."""
import base64
import functools
import hashlib
import json
import os
import platform
from importlib.metadata import version
import subprocess
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from .. import __version__


def write_json(path, obj):
    """Write atomically: a reader never sees half a file, and a file that exists is complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # per process: two may write one file
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    os.replace(tmp, path)


# The version of what the code computes. A run key carries it instead of the code itself, so that
# a refactor or a docstring edit keeps every finished run: bump it in the commit that changes any
# number a run produces (tests/test_golden.py pins the quick profile's numbers and says so).
RESULTS_VERSION = 3

# A validated run's convergence (RunResult.convergence; train.convergence decides it): it stopped
# on its plateau, it was stopped by its cap while still improving, or its best was its start.
CONVERGED, AT_CAP, NEVER_TRAINED = "converged", "at its cap", "never trained"

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


def _field(summary=True, csv=False, **kwargs):
    """A RunResult field: kept in its experiment's summary (02_heads' result JSON) or only in
    the run's own JSON; a column of results.csv or not."""
    return field(metadata={"summary": summary, "csv": csv}, **kwargs)


@dataclass
class RunResult:
    """One head trained on one seed: what run_head returns and writes as JSON, what an
    experiment's summary keeps of it (`summary` fields) and results.csv's columns of it (`csv`
    fields, accuracy in % as the paper prints it). The one list of what a run records."""
    head: str = _field(summary=False)
    layers: str = _field(summary=False)
    dataset: str = _field(summary=False)
    theta1: str = _field(summary=False)   # where the gradient term's θ1, θ2, ω came from
    theta2: str = _field(summary=False)
    omega: str = _field(summary=False)
    seed: int = _field(csv=True)
    accuracy: float | None = _field(csv=True)  # test accuracy (a fraction; results.csv: %)
    iterations: int = _field(csv=True)    # trained (≤ iterations_cap; fewer when stopped early)
    lr: float = _field(csv=True)          # the learning rate trained at (the grid's best on validation)
    train_seconds: float = _field(csv=True)  # training alone, validation excluded
    ms_per_step: float = _field(csv=True)
    convergence: str | None = _field(csv=True)  # CONVERGED, AT_CAP or NEVER_TRAINED; None: not validated
    best_iteration: int | None = _field(csv=True)  # where validation was best (the parameters kept)
    n_test: int = _field(csv=True)        # test images evaluated
    test_correct: str | None = _field(csv=True)  # which of them it classified right, in the test set's
    # order: pack_correct's bits (the test sample's share of an effect's interval needs them)
    trials: list = _field()                # every trial (run.trials: learning rates, alternatives),
    # with its validation record (and test score where the test chose)
    lr_chosen_on_seed: int | None = _field()  # the seed whose trials chose the one kept (several only)
    iterations_cap: int = _field()
    loss_history: list = _field()          # [iteration, training loss] every train.log_every
    validation_curve: list = _field()      # [iteration, validation accuracy] every train.eval_every
    validation_se: float | None = _field()  # the paired SE a gain at the cap was judged against
    # (train.Validation.gain_se; a fraction, as the curve), None: the run plateaued before its cap
    stopped_early: bool = _field(summary=False)
    selected: str = _field()               # 'best validation' or 'end of training'
    seconds: float = _field(summary=False)  # the whole call
    setup_seconds: float = _field()        # data, base networks, ω̄, frozen inputs
    validation_seconds: float = _field(summary=False)
    tangent: str | None = _field(summary=False)  # jvp | fast (None: actv has no gradient term)
    params: dict = _field(summary=False)    # the resolved parameters
    environment: dict = _field(summary=False)
    checkpoint: str = _field(default="")   # the trained head's weights
    path: str = _field(default="")         # this JSON
    # A multi-label test set (Tables 2 and 4) has no accuracy (None) and no test_correct: its
    # metric is mAP, the area under the interpolated precision-recall curve (experiments/metrics.py),
    # as a fraction (results.csv: %), with the VOC devkit's 11-point mAP beside it, and the
    # jackknife pseudo-values of the first over fixed groups of test images, in % (an effect's
    # interval takes them as it takes per-image correctness).
    metric: str = _field(default="accuracy", csv=True)  # accuracy | mAP: what the tables report
    mean_ap: float | None = _field(default=None, csv=True)
    mean_ap_voc07: float | None = _field(default=None, csv=True)
    test_jackknife: str | None = _field(default=None, csv=True)  # pack_values' float32s
    # The same head scored as Table 4 tests (data.test_views > 1): each test image's random views,
    # their scores averaged; {test_views, mean_ap, mean_ap_voc07, test_jackknife} as above. None:
    # no views (the fields above are then the only test; with views they are the centre crop's).
    views: dict | None = _field(default=None)
    # The schedule kept, {optimizer, lr, weight_decay} (run.trials: one of train.<head>.lr_grid's rates or of
    # train.<head>.alternatives), and where it was chosen among several: "validation", "test"
    # (alternatives without a validation split: the better on test, as the paper reports its
    # fine-tuning), or None (one trial).
    trial: dict | None = _field(default=None)
    trial_chosen_on: str | None = _field(default=None)

    @property
    def score(self):
        """The test score in the run's metric: accuracy, or mAP (a fraction either way)."""
        return self.accuracy if self.metric == "accuracy" else self.mean_ap

    def as_dict(self):
        return asdict(self)

    def summary(self):
        """What an experiment's summary keeps of this run."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.metadata["summary"]}

    @classmethod
    def from_dict(cls, record):
        """The RunResult of a run's JSON record (as_dict's): the one place a record is read back."""
        # a record written before `trials` had its name calls it lr_grid
        record = {("trials" if k == "lr_grid" else k): v for k, v in record.items()}
        return cls(**record)

    @classmethod
    def read(cls, path):
        """The RunResult of a run's JSON (run_head's)."""
        return cls.from_dict(json.loads(Path(path).read_text()))


def pack_correct(correct):
    """A boolean vector (one per test image) as text: its bits, packed, in base64 (1,668
    characters for 10,000 images)."""
    return base64.b64encode(np.packbits(np.asarray(correct, bool)).tobytes()).decode("ascii")


def unpack_correct(text, n):
    """The n booleans pack_correct wrote."""
    bits = np.unpackbits(np.frombuffer(base64.b64decode(text), np.uint8))
    if len(bits) < n or bits[n:].any():
        raise ValueError(f"test_correct holds {len(bits)} bits, not the {n} of n_test")
    return bits[:n].astype(bool)


def pack_values(values):
    """Numbers as text: float32, in base64 (268 characters for 50)."""
    return base64.b64encode(np.asarray(values, np.float32).tobytes()).decode("ascii")


def unpack_values(text):
    """The float32s pack_values wrote, as float64."""
    return np.frombuffer(base64.b64decode(text), np.float32).astype(float)


CSV_FIELDS = [f.name for f in fields(RunResult) if f.metadata["csv"]]
