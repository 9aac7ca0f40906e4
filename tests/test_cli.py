"""Tests for the command line: `python -m gradfeat_core train-head` on the quick profile (the
in-memory synthetic set, seconds per run), one-line errors for bad input, ω̄ trained once."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
from gradfeat_core.cli import main  # noqa: E402

RESULT_KEYS = {"accuracy", "iterations", "seconds", "params", "environment"}
# One intra-op thread: these runs are tiny, and on a small shared machine two threads that each
# spin-wait for the other make a quick run several times slower.
ONE_THREAD = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def results(out_dir, head="*"):
    return sorted((Path(out_dir) / "train-head").glob(f"{head}-*.json"))


def check_result(path, head, out_dir, iterations):
    result = json.loads(Path(path).read_text())
    assert RESULT_KEYS <= set(result), sorted(result)
    assert 0.0 <= result["accuracy"] <= 1.0
    assert result["iterations"] == iterations
    assert result["seconds"] > 0
    assert result["head"] == head and result["layers"] == "conv5" and result["dataset"] == "synthetic"
    params = result["params"]
    assert params["profile"] == "quick" and params["model"]["head"] == head
    assert params["out_dir"] == str(out_dir)
    env = result["environment"]
    assert env["torch"] == torch.__version__
    assert env["device"] in ("cpu", "cuda") or env["device"].startswith("cuda:")
    assert isinstance(env["code_version"], str) and env["code_version"]
    on_gpu = env["device"].startswith("cuda")
    assert (env["peak_device_gib"] > 0) if on_gpu else env["peak_device_gib"] is None
    return result


# Smaller synthetic splits than the quick profile's 512/256 (the schedules stay the profile's).
SMALL = ["--set", "data.n_train=128", "--set", "data.n_test=64", "--set", "base.calibrate_images=64"]


def train_head(*args, out_dir):
    return main(["train-head", "--profile", "quick", *SMALL, *args, "--set", f"out_dir={out_dir}"])


# ---------------------------------------------------------------- successful runs

def test_train_head_actv_in_process(tmp_path, capsys):
    assert train_head("--head", "actv", out_dir=tmp_path) == 0
    out, err = capsys.readouterr()
    [path] = results(tmp_path, "actv")
    result = check_result(path, "actv", tmp_path, iterations=60)  # quick.yaml: actv 60 iterations
    assert str(path) in out and "test accuracy" in out
    assert "training it first" not in err
    assert result["accuracy"] > 0.5  # ten well-separated synthetic classes; chance is 0.1
    checkpoints = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert any(n.startswith("actv-conv5-") for n in checkpoints)
    assert any(n.startswith("omega-") for n in checkpoints)
    assert not any(n.endswith(".tmp") for n in checkpoints)
    assert not list((tmp_path / "train-head").glob("*.tmp"))


def test_module_entry_point(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "gradfeat_core", "train-head", "--profile", "quick",
                           "--head", "actv", *SMALL, "--set", f"out_dir={tmp_path}"],
                          cwd=ROOT, env=ONE_THREAD, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    [path] = results(tmp_path, "actv")
    check_result(path, "actv", tmp_path, iterations=60)
    assert str(path) in proc.stdout


def test_grad_trains_omega_first_then_full_reuses_it(tmp_path, capsys):
    fast = ["--set", "train.grad.iterations=5", "--set", "train.full.iterations=5"]
    assert train_head("--head", "grad", *fast, out_dir=tmp_path) == 0
    _, err = capsys.readouterr()
    assert "training it first" in err
    [actv] = results(tmp_path, "actv")
    [grad] = results(tmp_path, "grad")
    check_result(actv, "actv", tmp_path, iterations=60)
    check_result(grad, "grad", tmp_path, iterations=5)
    omegas = sorted((tmp_path / "checkpoints").glob("omega-*.pt"))
    assert len(omegas) == 1
    stamp = omegas[0].stat().st_mtime_ns

    assert train_head("--head", "full", *fast, out_dir=tmp_path) == 0
    _, err = capsys.readouterr()
    assert "training it first" not in err
    assert len(results(tmp_path, "actv")) == 1  # no second actv run
    [full] = results(tmp_path, "full")
    check_result(full, "full", tmp_path, iterations=5)
    assert sorted((tmp_path / "checkpoints").glob("omega-*.pt")) == omegas
    assert omegas[0].stat().st_mtime_ns == stamp  # ω̄ not rewritten


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("args,key", [
    (["--set", "bogus=1"], "bogus"),
    (["--set", "train.actv.lrr=0.1"], "train.actv.lrr"),
    (["--layers", "conv7"], "model.layers"),
    (["--head", "grad", "--layers", "fc"], "model.layers"),
    (["--set", "train.full.lr=0"], "train.full.lr"),
    (["--set", "train.actv.iterations=-1"], "train.actv.iterations"),
    (["--set", "base.checkpoint=/does/not/exist.pt"], "base.checkpoint"),
    (["--set", "base.random_checkpoint=/does/not/exist.pt"], "base.random_checkpoint"),
    (["--set", "data.dataset=imagenet"], "data.dataset"),
    (["--set", "data.num_classes=100"], "data.num_classes"),
    (["--set", "train.batch_size=0"], "train.batch_size"),
    (["--set", "train.actv.lr=abc"], "train.actv.lr"),
    (["--set", "device=gpu"], "device"),
    (["--set", "train.actv.lr"], "train.actv.lr"),                # no '='
    (["--profile", "nosuchprofile"], "nosuchprofile"),
])
def test_bad_input_is_one_error_line(tmp_path, capsys, args, key):
    argv = ["train-head", "--profile", "quick", *args, "--set", f"out_dir={tmp_path}"]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert err.startswith("error:"), err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert key in err, err
    assert out == ""
    assert list(tmp_path.iterdir()) == []  # nothing written


SUBCOMMANDS = ["train-head", "pretrain", "reproduce"]
# (what the user passes, what the one line must name); "{file}" is an existing file in tmp_path
ISSUE_CASES = [
    (["--set", "train.actv.lr=nan"], "train.actv.lr"),
    (["--set", "train.actv.lr=inf"], "train.actv.lr"),
    (["--set", "pretrain.lr=-.inf"], "pretrain.lr"),
    (["--set", "train.actv.lr=[0.1,"], "train.actv.lr"),
    (["--set", "seed=" + "9" * 5000], "seed"),
    (["--set", "bo\ngus=1"], "bo\\ngus"),  # a line break in what the message quotes
    (["--profile", "listy"], "listy.yaml"),
    (["--set", "out_dir={file}"], "out_dir"),
    (["--set", "out_dir={file}/sub"], "out_dir"),
    (["--set", "data.root={file}"], "data.root"),
]


@pytest.fixture
def params_dir(tmp_path, monkeypatch):
    """The shipped params/ plus profiles/listy.yaml, whose top level is a list."""
    import shutil
    from gradfeat_core.experiments import params
    d = tmp_path / "params"
    shutil.copytree(params.PARAMS_DIR, d)
    (d / "profiles" / "listy.yaml").write_text("- train: {batch_size: 64}\n- seed: 1\n")
    monkeypatch.setattr(params, "PARAMS_DIR", d)
    monkeypatch.delenv("PYTHONPATH", raising=False)  # reproduce prepends the repository to it
    return d


@pytest.mark.parametrize("args,key", ISSUE_CASES)
@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_turns_bad_input_into_one_line(tmp_path, capsys, params_dir, command, args, key):
    work = tmp_path / "work"
    work.mkdir()
    (work / "file").write_text("keep")
    args = [a.replace("{file}", str(work / "file")) for a in args]
    argv = [command, "--profile", "quick", "--set", f"out_dir={work / 'out'}", *args]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert err.startswith("error:") and err.count("\n") == 1 and err.endswith("\n"), err
    assert key in err, err
    assert out == ""
    assert sorted(p.name for p in work.iterdir()) == ["file"] and (work / "file").read_text() == "keep"


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_as_a_process_prints_no_traceback(tmp_path, command):
    proc = subprocess.run([sys.executable, "-m", "gradfeat_core", command, "--profile", "quick",
                           "--set", "train.actv.lr=[0.1,", "--set", f"out_dir={tmp_path / 'out'}"],
                          cwd=ROOT, env=ONE_THREAD, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.startswith("error:") and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "train.actv.lr" in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command,module,function", [("train-head", "gradfeat_core.experiments.run", "run_head"),
                                                     ("pretrain", "gradfeat_core.experiments.pretrain", "pretrain"),
                                                     ("reproduce", "gradfeat_core.suite.reproduce", "reproduce")])
def test_every_subcommand_lets_a_bug_through_with_its_traceback(tmp_path, monkeypatch, command, module, function):
    """Only the package's own errors become one line; anything else is a bug and must stay visible."""
    import importlib

    def bug(*args, **kwargs):
        return {}["no such key"]  # a KeyError: a ValueError or RuntimeError would prove less

    monkeypatch.setattr(importlib.import_module(module), function, bug)
    with pytest.raises(KeyError, match="no such key"):
        main([command, "--profile", "quick", "--set", f"out_dir={tmp_path}"])


def test_bad_checkpoint_file_is_one_error_line(tmp_path, capsys):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(os.urandom(256))
    out_dir = tmp_path / "out"
    assert main(["train-head", "--profile", "quick", "--set", f"base.checkpoint={garbage}",
                 "--set", f"out_dir={out_dir}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1 and str(garbage) in err, err


def test_checkpoint_for_another_dataset_is_one_error_line(tmp_path, capsys):
    from gradfeat_core.experiments.checkpoint import save_checkpoint
    from gradfeat_core.method.nets import Encoder
    path = tmp_path / "enc.pt"
    save_checkpoint(path, Encoder().state_dict(),
                    {"kind": "encoder", "arch": "ali-encoder", "dataset": "cifar10", "in_channels": 1,
                     "leak": 0.01, "batchnorm": True, "parametrisation": "standard"})
    assert main(["train-head", "--profile", "quick", "--set", f"base.checkpoint={path}",
                 "--set", f"out_dir={tmp_path / 'out'}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1, err
    assert "dataset" in err and "cifar10" in err


def test_argparse_rejects_unknown_head_and_command(capsys):
    for argv in (["train-head", "--head", "linear"], ["no-such-command"], []):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
    assert "linear" in capsys.readouterr().err


def test_help_exits_zero(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train-head", "--help"])
    assert info.value.code == 0
    assert "--set" in capsys.readouterr().out


def test_code_version_ignores_reports_but_not_code(tmp_path):
    import shutil
    import subprocess
    import sys
    from gradfeat_core.suite.reproduce import ROOT
    shutil.copytree(ROOT / "gradfeat_core", tmp_path / "gradfeat_core",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "results.csv").write_text("a\n")

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    def version():
        out = subprocess.run([sys.executable, "-c", "from gradfeat_core.experiments.results import code_version; "
                              "print(code_version())"], cwd=tmp_path, capture_output=True, text=True,
                             env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
        return out.stdout.strip()

    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
    clean = version()
    assert clean and not clean.endswith("-dirty")
    (tmp_path / "reports" / "results.csv").write_text("b\n")  # a finished report
    assert version() == clean
    with open(tmp_path / "gradfeat_core" / "experiments" / "run.py", "a") as f:
        f.write("# changed\n")
    assert version() == clean + "-dirty"


@pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "python").exists(), reason="needs the .venv make creates")
def test_make_data_installs_nothing_for_a_profile_without_fashion_mnist(tmp_path):
    """`make data PROFILE=cifar10` (what `make reproduce PROFILE=cifar10` runs first) needs no
    root: it never calls apt-get or sudo (stand-ins here that record being called)."""
    bin_dir, called = tmp_path / "bin", tmp_path / "called"
    bin_dir.mkdir()
    for tool in ("apt-get", "sudo"):
        (bin_dir / tool).write_text(f"#!/bin/sh\necho {tool} >> {called}\nexit 1\n")
        (bin_dir / tool).chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    done = subprocess.run(["make", "--no-print-directory", "-o", ".venv/.installed", "data",
                           "PROFILE=cifar10"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not called.exists(), called.read_text()


def test_dry_run_estimates_the_default_and_a_paper_sized_profile(tmp_path, capsys, monkeypatch):
    """reproduce --dry-run: the grid, what is done, time per stage (pre-training included where
    the profile trains its own base network), peak memory and cache disk; it writes nothing.
    cifar10 is timed for real; for the default profile a step is taken to cost 10 ms (the grid
    and the shared cells are what is checked there)."""
    from gradfeat_core.suite import plan
    real_step = plan.Timer.step
    for profile, stages in (("fashion-mnist", ["Table 3", "Table 1"]),
                            ("cifar10", ["pre-training", "Table 3", "Table 1"])):
        fake = profile == "fashion-mnist"
        monkeypatch.setattr(plan.Timer, "step", (lambda self, *a: 0.01) if fake else real_step)
        out = tmp_path / profile
        assert main(["reproduce", "--profile", profile, "--dry-run", "--set", f"out_dir={out}"]) == 0
        printed = capsys.readouterr().out
        assert not out.exists()
        for stage in stages:
            assert f"  {stage} " in printed, printed
        assert re.search(r"t1-grad-conv5-ppp +seeds \[0, 1, 2\]  = t3-grad-conv5", printed) or not fake
        assert "peak device memory" in printed and "in all" in printed
        assert "stay in host memory" not in printed  # the CPU has no device budget of its own
    # a device budget smaller than the images: they and the caches stream from host memory
    assert main(["reproduce", "--profile", "fashion-mnist", "--dry-run", "--set", f"out_dir={out}",
                 "--set", "cache.device_gib=0.01"]) == 0
    printed = capsys.readouterr().out
    assert "peak device memory ~0.0 GiB" in printed
    streamed = re.search(r"budget of 0\.01 GiB \(cache.device_gib\) ~(\d+\.\d) GiB stay in host memory", printed)
    assert streamed and float(streamed[1]) > 0, printed


def test_a_counted_step_is_its_flops_at_the_rate_plus_a_launch_per_operator():
    """The reference: a matrix product's 2abc FLOPs and a convolution's 2·B·Cout·H'W'·Cin·k²."""
    from gradfeat_core.suite.plan import LAUNCH_SECONDS, counted_seconds
    a, b = torch.randn(64, 300), torch.randn(300, 20)
    assert counted_seconds(lambda: torch.mm(a, b), 2.0) == pytest.approx(2 * 64 * 300 * 20 / 2e12 + LAUNCH_SECONDS)
    x, w = torch.randn(8, 3, 32, 32), torch.randn(16, 3, 5, 5)
    expected = 2 * 8 * 16 * 28 * 28 * 3 * 5 * 5 / 1e12
    assert counted_seconds(lambda: torch.nn.functional.conv2d(x, w), 1.0) == pytest.approx(expected + LAUNCH_SECONDS)
    # a backward pass is counted too: a product's gradients are two more products
    a.requires_grad_(True)
    two_more = counted_seconds(lambda: torch.mm(a, b).sum().backward(), 2.0) - counted_seconds(lambda: torch.mm(a, b).sum(), 2.0)
    assert two_more > 2 * (2 * 64 * 300 * 20 / 2e12)


def test_dry_run_for_a_device_not_at_hand_says_it_is_counted_not_measured(capsys):
    assert main(["reproduce", "--profile", "cifar10", "--dry-run", "--assume-tflops", "10"]) == 0
    printed = capsys.readouterr().out
    assert "estimate for a device of 10 TFLOP/s, NOT MEASURED" in printed
    assert float(re.search(r"in all +([\d.]+) to", printed)[1]) > 0
    assert main(["reproduce", "--profile", "cifar10", "--assume-tflops", "10"]) == 2
    assert "needs --dry-run" in capsys.readouterr().err


def import_graph():
    """{module: modules of the package it imports, anywhere in it (inside functions too)}."""
    import ast
    package = ROOT / "gradfeat_core"
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
               for p in package.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = here[:len(here) - node.level + 1] if node.level else []
                target = ".".join(base + (node.module.split(".") if node.module else []))
                for alias in node.names:  # `from . import cluster` names a module
                    found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def cycles(graph):
    """Every import cycle of `graph`, each as a list of modules (Tarjan's strongly connected
    components of more than one module)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_cycles_are_found_at_any_depth():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_the_package_has_no_import_cycle_and_its_layers_import_downwards_only():
    """method/ imports neither experiments/ nor suite/; experiments/ does not import suite/;
    nothing imports the cli; and no module reaches itself through imports at any depth."""
    graph = import_graph()
    assert "gradfeat_core.suite.frame" in graph["gradfeat_core.suite.report"]  # the graph sees imports
    assert cycles(graph) == []
    rank = {"gradfeat_core": -1,  # the package itself: its version
            "method": 0, "experiments": 1, "suite": 2, "cli": 3, "__main__": 3}
    def layer(module):
        return rank[module.split(".")[1] if "." in module else module]
    upward = [(m, t) for m, targets in graph.items() for t in targets if layer(t) > layer(m)]
    assert upward == [], upward


def test_the_cache_keeps_every_part_then_all_but_the_primal_record_then_nothing():
    """run.cache_kept, which run.fit_cache and the dry run's cache disk both follow: hand cases."""
    from gradfeat_core.experiments.run import cache_kept
    sizes = {"z": 2 ** 20, "primal": 3 * 2 ** 20}  # MiB per image
    assert cache_kept(sizes, 256, 1.0) == ("z", "primal")   # 1 GiB exactly: kept
    assert cache_kept(sizes, 257, 1.0) == ("z",)             # 257 MiB + 771: the record goes
    assert cache_kept(sizes, 1024, 1.0) == ("z",)
    assert cache_kept(sizes, 1025, 1.0) is None               # not even z
    assert cache_kept({"features": 2 ** 20}, 2048, 1.0) is None
    assert cache_kept({}, 10 ** 9, 0.0) == ()                  # nothing to cache always fits


def test_the_dry_run_counts_each_training_view_as_an_image_and_test_views_apart():
    from gradfeat_core.experiments.params import load_params
    from gradfeat_core.suite.plan import image_counts, test_view_count
    voc = load_params("voc07-resnet18")
    assert image_counts(voc) == (3, 5011 * 10, 4952, 224) and test_view_count(voc) == 4952 * 10
    few = load_params("voc07-resnet18", ["data.n_train=100", "data.n_test=7", "data.test_views=1"])
    assert image_counts(few) == (3, 1000, 7, 224) and test_view_count(few) == 0
    assert test_view_count(load_params("coco2014-resnet18")) == 40137 * 10
    assert test_view_count(load_params("coco2014-resnet18", ["data.test_views=1"])) == 0


def test_the_dry_run_times_each_step_with_the_cache_that_fits(monkeypatch):
    """A step is timed as run.fit_cache will make it: every frozen part cached when they fit
    cache.max_gib, the primal record recomputed per batch when only it does not, and the whole
    frozen part (trunk and all) recomputed per batch when nothing fits."""
    from gradfeat_core.suite import plan
    seen = {}
    monkeypatch.setattr(plan.Timer, "step", lambda self, head, layers, batch, cached=True, primal=True:
                        seen.setdefault((head, layers), (cached, primal)) and 0.01)
    parts = {"grad": {"z": 1, "primal": 2}, "full": {"z": 1, "primal": 2}, "actv": {"z": 1}, "finetune": {"z": 1}}
    monkeypatch.setattr(plan.Timer, "cached", lambda self, head, layers, images, max_gib:
                        (0, plan.cache_kept(parts[head], images, max_gib)))
    images = sum(plan.image_counts(plan.load_params("quick-resnet"))[1:3])
    for max_gib, grad, actv in ((3 * images / 2 ** 30, (True, True), (True, False)),
                                (images / 2 ** 30, (True, False), (True, False)),
                                (0.5 * images / 2 ** 30, (False, False), (False, False))):
        seen.clear()
        plan.estimate("quick-resnet", [f"cache.max_gib={max_gib}"], tflops=1)
        assert {v for (h, _), v in seen.items() if h in ("grad", "full")} == {grad}, (max_gib, seen)
        assert {v for (h, _), v in seen.items() if h in ("actv", "finetune")} == {actv}, (max_gib, seen)


def test_the_dry_run_counts_every_trial_the_first_seed_trains(monkeypatch):
    """A head with alternatives (run.trials) trains each on its first seed: the dry run adds one
    run of that head's steps per alternative and experiment, and nothing elsewhere."""
    from gradfeat_core.suite import plan
    monkeypatch.setattr(plan.Timer, "step", lambda self, *args, **kwargs: 0.01)
    monkeypatch.setattr(plan.Timer, "frozen_per_image", lambda self, layers, n=256: 0.0)
    monkeypatch.setattr(plan.Timer, "cached", lambda self, head, layers, images, max_gib: (0, ("z",)))

    def minutes(*sets):
        off = ["reproduce.sensitivity.schedule=0", "reproduce.sensitivity.pretrain_seed=null"]
        return {s["stage"]: s["most_min"] for s in plan.estimate("quick-resnet", off + list(sets), tflops=1)["stages"]}
    alternatives = "train.finetune.alternatives=[{optimizer: sgd}, {lr: 0.5}]"
    before, after = minutes("train.finetune.alternatives=[]"), minutes(alternatives)
    params = plan.load_params("quick-resnet", [alternatives])
    grid, repeats = plan.experiments(params), plan.twins(plan.experiments(params))
    for stage in before:
        finetunes = [e for e in grid if f"Table {e.table}" == stage and e.head == "finetune" and e.name not in repeats]
        extra = sum(2 * e.params(params)["train"]["finetune"]["iterations"] * 0.01 / 60 for e in finetunes)
        assert after[stage] - before[stage] == pytest.approx(extra), stage
    assert any(after[s] > before[s] for s in before)


def test_the_dry_run_prices_the_sensitivity_stage_as_the_heads_table_under_each_perturbation(monkeypatch):
    """Each perturbation retrains the heads' table on the profile's own base network (its seeds,
    its steps: ×k under the schedule perturbation) and a pre-training of its own where it needs one."""
    from gradfeat_core.suite import plan
    monkeypatch.setattr(plan.Timer, "step", lambda self, *args, **kwargs: 0.01)
    monkeypatch.setattr(plan.Timer, "frozen_per_image", lambda self, layers, n=256: 0.0)
    monkeypatch.setattr(plan.Timer, "cached", lambda self, head, layers, images, max_gib: (0, ("z",)))
    sets = ["reproduce.sensitivity.schedule=3", "reproduce.sensitivity.pretrain_seed=null"]
    stages = {s["stage"]: s for s in plan.estimate("quick", sets, tflops=1)["stages"]}
    params = plan.load_params("quick", sets)
    heads = [e for e in plan.experiments(params) if e.table == 3 and e.encoder == "pretrained"]
    expected = sum(3 * len(e.seeds) * e.params(params)["train"][e.head]["iterations"] * 0.01 / 60 for e in heads)
    assert stages["sensitivity"]["runs"] == len(heads)
    assert stages["sensitivity"]["most_min"] == pytest.approx(expected)
    with_seed = plan.estimate("quick", ["reproduce.sensitivity.schedule=0"], tflops=1)["stages"]
    assert [s["runs"] for s in with_seed if s["stage"] == "pre-training"] == [2]  # the profile's and seed 1's
