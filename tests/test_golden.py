"""The quick profile's numbers, pinned (tests/golden/quick.json): the other half of run keys.

Run keys (reproduce.run_key) hash what decides a run's numbers but not the code, so that a
refactor keeps every finished run; the code enters them as RESULTS_VERSION. This test is what
makes forgetting to bump it impossible: it recomputes a small set of numbers of the quick profile
(pre-training losses of each objective, each head's test accuracy, iterations, best iteration
and training losses, Table 1's random mixes) and compares them with the golden file. A change
that moves any of them fails here, with the message to bump RESULTS_VERSION and rewrite the file:

    .venv/bin/python tests/test_golden.py --write

The instruction set is pinned: the numbers are measured in a subprocess whose PyTorch and oneDNN
kernels are AVX2's (PINNED), whatever the CPU offers beyond it. Unpinned, an AVX-512 machine
moved the heads' losses by up to 6e-3 (relative) and two accuracies by one image from an AVX2
machine's; pinned, the same machine matches the AVX2 machine's golden file to 1e-5 on the heads
and 1.2e-3 on the pre-trainings (the VAE's KL). A CPU without AVX2 skips these tests.

Tolerance: float32 reductions reorder with the thread count too, and the rounding differences
they make grow over training steps. Measured on this profile, 2 threads against 1
(`python tests/test_golden.py --spread`, which prints the largest relative difference of each
group): the heads' losses differed by up to 2.4e-5 (fine-tuning, whose convolutions
backpropagate), the pre-trainings' by up to 7.8e-4 (rotation's fourth update). The tolerances
(REL) are about 40x and 8x the largest of these; a behaviour change moves more (the last test
delays one learning-rate halving by one iteration and is seen). Test accuracies are counts of
images: they may differ by one image (ACCURACY_IMAGES).
"""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).with_name("golden") / "quick.json"
REL = {"pretrain": 1e-2, "heads": 1e-3}  # relative tolerance on losses, by group (see above)
ACCURACY_IMAGES = 1    # test images an accuracy may differ by
HEADS = [("actv", "conv5", "ppp"), ("grad", "conv5", "ppp"), ("full", "conv5", "ppp"),
         ("finetune", "conv5", "ppp"), ("grad", "conv4-5", "ppp"), ("grad", "conv5", "rrp"),
         ("full", "conv5", "prr")]
OBJECTIVES = ("ali", "wali", "rotation", "vae")
SOURCE = {"p": "pretrained", "r": "random"}
PINNED = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}  # kernels, whatever the CPU


def measure(out_dir):
    """{name: numbers} of the quick profile: each objective's pre-training losses, then each
    head of HEADS on the ALI encoder (seed 0), as run_head computes them."""
    from gradfeat_core.experiments.params import load_params
    from gradfeat_core.experiments.pretrain import pretrain
    from gradfeat_core.experiments.run import run_head
    quiet = lambda msg: None  # noqa: E731
    out = {}
    for objective in OBJECTIVES:
        params = load_params("quick", [f"out_dir={out_dir}"], objective=objective)
        result = pretrain(params, log=quiet)
        out[f"pretrain {objective}"] = {"final_losses": result["final_losses"]}
    encoders = Path(out_dir) / "pretrain" / "ali"
    sets = [f"out_dir={out_dir}", f"base.checkpoint={encoders / 'encoder.pt'}",
            f"base.random_checkpoint={encoders / 'random_encoder.pt'}"]
    for head, layers, sources in HEADS:
        model = [f"model.head={head}", f"model.layers={layers}",
                 *(f"model.{k}={SOURCE[s]}" for k, s in zip(("theta1", "theta2", "omega"), sources))]
        r = run_head(load_params("quick", sets + model, objective="ali"), log=quiet)
        out[f"{head} {layers} {sources}"] = {
            "correct": round(r.accuracy * r.n_test),
            "iterations": r.iterations, "best_iteration": r.best_iteration,
            "losses": [loss for _, loss in r.loss_history]}
    return out


def _flat(numbers, prefix=""):
    for key, value in numbers.items():
        if isinstance(value, dict):
            yield from _flat(value, f"{prefix}{key}.")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                yield f"{prefix}{key}[{i}]", v
        else:
            yield prefix + key, value


def _group(name):
    return "pretrain" if name.startswith("pretrain") else "heads"


def differences(measured, golden):
    """'name: measured vs golden' for each number outside its tolerance (or missing)."""
    a, b = dict(_flat(measured)), dict(_flat(golden))
    out = [f"{k}: only in {'the run' if k in a else 'the golden file'}" for k in sorted(set(a) ^ set(b))]
    for k in sorted(set(a) & set(b)):
        x, y = a[k], b[k]
        if k.endswith(".correct"):
            bad = abs(x - y) > ACCURACY_IMAGES
        elif isinstance(x, float) or isinstance(y, float):
            rel = REL[_group(k)]
            bad = x is None or y is None or not math.isclose(x, y, rel_tol=rel, abs_tol=rel * 1e-3)
        else:
            bad = x != y
        if bad:
            out.append(f"{k}: {x!r} vs golden {y!r}")
    return out


def verdict(measured, golden):
    """None when the run matches the golden file of this RESULTS_VERSION, else what to do."""
    from gradfeat_core.experiments.results import RESULTS_VERSION
    fix = "rewrite tests/golden/quick.json with `.venv/bin/python tests/test_golden.py --write`"
    if golden["results_version"] != RESULTS_VERSION:
        return (f"RESULTS_VERSION is {RESULTS_VERSION} but tests/golden/quick.json holds version "
                f"{golden['results_version']}'s numbers: {fix} and commit it with the bump")
    moved = differences(measured, golden["numbers"])
    if moved:
        return (f"the quick profile's numbers moved ({len(moved)} of them, e.g. {'; '.join(moved[:3])}): "
                "if this change is meant to move numbers, bump RESULTS_VERSION in "
                "gradfeat_core/experiments/results.py (every finished run then reruns) and "
                f"{fix}; if it is not, it is a bug")
    return None


def pinned(out_dir, *flags):
    """measure(out_dir) in a subprocess whose kernels are PINNED (`--measure`); flags:
    --later-halving (a behaviour change: every learning-rate halving one iteration later, on
    ALI's pre-training and grad conv5 only)."""
    import torch
    if torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"):
        pytest.skip("the golden numbers are of AVX2 kernels; this CPU has none")
    out = Path(out_dir) / "measured.json"
    subprocess.run([sys.executable, __file__, "--measure", str(out), *flags], check=True,
                   env=dict(os.environ, **PINNED), capture_output=True)
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    return pinned(tmp_path_factory.mktemp("golden"))


def test_the_quick_profiles_numbers_are_the_golden_ones(measured):
    problem = verdict(measured, json.loads(GOLDEN.read_text()))
    assert problem is None, problem


def test_a_number_that_moves_asks_for_a_results_version_bump(measured, monkeypatch):
    """The other direction: numbers moved by a behaviour change (one loss, one count) fail, with
    the message; so does a bumped version whose golden file was not rewritten."""
    from gradfeat_core.experiments import results
    golden = json.loads(GOLDEN.read_text())
    moved = json.loads(json.dumps(measured))
    moved["grad conv5 ppp"]["losses"][-1] *= 1 + 2 * REL["heads"]
    problem = verdict(moved, golden)
    assert problem and "bump RESULTS_VERSION" in problem and "grad conv5 ppp.losses" in problem
    moved = json.loads(json.dumps(measured))
    moved["actv conv5 ppp"]["correct"] += ACCURACY_IMAGES + 1
    assert "actv conv5 ppp.correct" in verdict(moved, golden)
    monkeypatch.setattr(results, "RESULTS_VERSION", golden["results_version"] + 1)
    assert "rewrite tests/golden/quick.json" in verdict(measured, golden)


def test_a_behaviour_change_in_the_code_moves_the_golden_numbers(tmp_path):
    """A real change of behaviour (the learning rate halving one iteration later) is seen."""
    golden = json.loads(GOLDEN.read_text())["numbers"]
    moved = differences(pinned(tmp_path, "--later-halving"),
                        {k: golden[k] for k in ("pretrain ali", "grad conv5 ppp")})
    assert any(k.startswith("grad conv5 ppp.losses") for k in moved), moved


def later_halving():
    """Every head's learning rate halves one iteration later than its schedule says."""
    from gradfeat_core.experiments import run
    original = run.train

    def later(model, inputs, labels, p, *args, **kwargs):
        return original(model, inputs, labels, dict(p, stepsize=p["stepsize"] + 1), *args, **kwargs)
    run.train = later


if __name__ == "__main__":
    import tempfile
    if any(os.environ.get(k) != v for k, v in PINNED.items()):  # again, with the kernels pinned
        os.execve(sys.executable, [sys.executable, *sys.argv], dict(os.environ, **PINNED))
    import torch
    from gradfeat_core.experiments.results import RESULTS_VERSION
    with tempfile.TemporaryDirectory() as tmp:
        if "--measure" in sys.argv:  # pinned(): the numbers into the file named after it
            if "--later-halving" in sys.argv:
                later_halving()
                OBJECTIVES, HEADS = ("ali",), [("grad", "conv5", "ppp")]
            numbers = measure(tmp)
            Path(sys.argv[sys.argv.index("--measure") + 1]).write_text(json.dumps(numbers))
        elif "--spread" in sys.argv:  # the largest relative difference between 2 threads and 1
            torch.set_num_threads(2)
            a = dict(_flat(measure(Path(tmp) / "a")))
            torch.set_num_threads(1)
            b = dict(_flat(measure(Path(tmp) / "b")))
            for group in REL:
                rel = [abs(a[k] - b[k]) / max(abs(b[k]), 1e-12) for k in a
                       if isinstance(a[k], float) and _group(k) == group]
                print(f"{group}: largest relative difference of {len(rel)} losses {max(rel):.3g}")
            print(f"counts that differ: {[k for k in a if not isinstance(a[k], float) and a[k] != b[k]]}")
        elif "--write" in sys.argv:
            GOLDEN.parent.mkdir(exist_ok=True)
            GOLDEN.write_text(json.dumps({"results_version": RESULTS_VERSION,
                                          "numbers": measure(Path(tmp))}, indent=1) + "\n")
            print(f"wrote {GOLDEN} for RESULTS_VERSION {RESULTS_VERSION}")
        else:
            sys.exit("usage: tests/test_golden.py --write | --spread")
