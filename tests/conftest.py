"""Hypothesis settings for the property-based tests (tests/test_params_fuzz.py), one thread per
pytest-xdist worker, and the `tried_run` fixture (a made-up pre-training folder).

`ci`, the default: a fixed number of examples drawn from a seed derived from each test, so every
run (CI's included) tries the same inputs and takes a few seconds; nothing is written to a
.hypothesis database. `explore`: many more, freshly random examples, for a hunt by hand:

    .venv/bin/python -m pytest tests/test_params_fuzz.py --hypothesis-profile=explore
"""
import os
from pathlib import Path

import pytest
from hypothesis import settings

# `make test` runs two workers: each (and each notebook kernel it starts) computes on one thread,
# so that they do not fight over the cores (two 2-thread workers on 2 cores ran torch's tests up
# to 5x slower than one).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
    import torch
    torch.set_num_threads(1)

settings.register_profile("ci", max_examples=100, derandomize=True, database=None, deadline=None,
                          print_blob=True)
settings.register_profile("explore", max_examples=5000, database=None, deadline=None, print_blob=True)
settings.load_profile("ci")


def pytest_collection_modifyitems(items):
    """The end-to-end file first: under --dist loadgroup one worker starts the longest group at
    once while the other takes the other tests."""
    items.sort(key=lambda item: item.path.name != "test_end_to_end.py")


@pytest.fixture(scope="session")
def written_archives(tmp_path_factory):
    """The paper-sized data sets' archives and imported weights (tests/archives.py), written
    once per test worker, and a copy of params/ whose imported objectives name those weights."""
    import shutil
    from archives import import_random_resnets, write_archives
    from gradfeat_core.experiments import params as params_module
    root = tmp_path_factory.mktemp("smoke")
    roots = write_archives(root / "data")
    params_dir = Path(shutil.copytree(params_module.PARAMS_DIR, root / "params"))
    import_random_resnets(root / "weights", params_dir)
    return roots, params_dir


@pytest.fixture
def archives(written_archives, monkeypatch):
    """{data set: its data.root} of written_archives, with their params/ in force here and in
    every notebook kernel (GRADFEAT_PARAMS)."""
    from gradfeat_core.experiments import params as params_module
    roots, params_dir = written_archives
    monkeypatch.setattr(params_module, "PARAMS_DIR", params_dir)
    monkeypatch.setenv("GRADFEAT_PARAMS", str(params_dir))
    return roots


@pytest.fixture
def tried_run():
    """A function that writes a pre-training folder as `pretrain` and `quality` leave it, small
    and made up (an ALI run of 300 updates, seed 0 and a rerun with seed 1), and returns it: what
    publish-encoder --curves-only copies and base.compared reads. Its actv probe ends 3 points
    under its random encoder, grad 4 above."""
    import pandas as pd

    def write(folder):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "pretrain.json").write_text('{"objective": "ali", "seconds": 600.0, '
                                              '"environment": {"device_name": "a CPU"}}')
        for name in ("losses.csv", "losses.png"):
            (folder / name).write_text("")
        pd.DataFrame({"pretrain_seed": [0, 0, 0, 0, 0, 0, 1], "iteration": [0, 300, None, 0, 300, None, 300],
                      "encoder": ["pretrained", "pretrained", "random"] * 2 + ["pretrained"],
                      "probe": ["actv"] * 3 + ["grad"] * 3 + ["actv"],
                      "validation_accuracy": [0.80, 0.78, 0.81, 0.83, 0.86, 0.82, 0.5],
                      "test_accuracy": [0.8] * 7, "converged": [True, True, True, True, False, True, True],
                      "probe_iterations": [100] * 7}).to_csv(folder / "quality.csv", index=False)
        return folder

    return write


def _explicit_gradient_term(top, theta2, omega, direction, z):
    """ω̄ᵀ J w2 built the slow way: the per-sample gradient of every class output w.r.t. θ2
    (torch.autograd, one backward pass per sample and class), dotted with the direction."""
    import torch  # here: torch's threads are set above first
    from torch.func import functional_call
    rows = []
    for i in range(len(z)):
        params = {k: v.detach().clone().requires_grad_(True) for k, v in theta2.items()}
        out = functional_call(top, params, (z[i:i + 1],)) @ omega.T  # 1 × c
        row = []
        for c in range(out.shape[1]):
            grads = torch.autograd.grad(out[0, c], list(params.values()), retain_graph=True)
            row.append(sum((g * direction[k]).sum() for g, k in zip(grads, params)))
        rows.append(torch.stack(row))
    return torch.stack(rows)


@pytest.fixture
def explicit_gradient_term():
    """ω̄ᵀ J w2 the slow way (per-sample autograd): the independent reference of the gradient term."""
    return _explicit_gradient_term
