"""The grid, results.csv, the claims' verdicts, papermill runs (the quick profile end to end:
test_end_to_end.py)."""
import ast
import json
import re
from pathlib import Path

import nbformat
import pytest

from gradfeat_core.suite.claims import HOLDS, NOT_RUN, verdicts
from gradfeat_core.suite.grid import Experiment, experiments, paper_value, twins
from gradfeat_core.experiments.params import ParamError, load_params
from gradfeat_core.suite.frame import COLUMNS, load_summaries, results_frame
from gradfeat_core.suite.reproduce import NOTEBOOKS, Run, check_parameters, make_run, run_all, run_params
from gradfeat_core.method.linear_model import HEADS

REQUIRED = ["dataset", "base", "head", "layers", "theta1", "theta2", "omega", "seed", "accuracy",
            "paper_score", "status"]


# --- the notebooks as committed ------------------------------------------------------------

@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_notebooks_are_thin_and_clean(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged 'parameters'"
    for stmt in ast.parse(params[0].source).body:  # literals only: papermill overrides them
        assert isinstance(stmt, ast.Assign), ast.dump(stmt)
        ast.literal_eval(stmt.value)
    for cell in code:
        assert not cell.outputs and cell.execution_count is None, "committed with outputs"
        assert not re.search(r"^\s*(def|class)\s", cell.source, re.M), "logic belongs in the package"
    assert re.search(r"write(_json)?\(result_path", code[-1].source), "the result JSON is the last act"


def test_undeclared_parameter_is_an_error():
    with pytest.raises(ParamError, match="declares no parameter seedz"):
        check_parameters(NOTEBOOKS / "02_heads.ipynb", {"profile": "quick", "seedz": [0]})
    check_parameters(NOTEBOOKS / "02_heads.ipynb", {"profile": "quick", "experiment": {}})


# --- the grid -----------------------------------------------------------------------------

def test_grid_covers_both_tables_and_trains_omega_first():
    p = load_params("quick", [f"reproduce.ablation_rows.{layers}=[1, 2, 3, 4, 5, 6, 7, 8]"
                              for layers in ("conv5", "conv4-5", "conv3-5")]
                    + ["reproduce.ablation_finetune=[conv5, conv4-5, conv3-5]"])
    grid = experiments(p)
    t3 = [e for e in grid if e.table == 3]
    t1 = [e for e in grid if e.table == 1]
    assert [e.head for e in t3] == ["actv", "grad", "full", "finetune"] * 2
    assert [e.encoder for e in t3] == ["pretrained"] * 4 + ["random"] * 4
    assert len(t1) == 1 + 3 * (1 + 8 * 2)  # actv, then per depth finetune and 8 rows x 2 heads
    assert len({e.name for e in grid}) == len(grid)
    assert grid.index(t1[0]) < min(grid.index(e) for e in t1[1:]) and t1[0].head == "actv"
    assert all(list(e.seeds) == p["reproduce"]["heads_seeds"] for e in t3)
    for e in t1:  # every cell has the paper's number beside it
        assert paper_value(1, "fashion-mnist", e.head, e.layers, *e.sources)[0] is not None, e.name
    assert all(Experiment.from_dict(json.loads(json.dumps(e.as_dict()))) == e for e in grid)


def test_grid_applies_each_tables_overrides_and_rows():
    p = load_params("quick", ["reproduce.ablation.train.grad.iterations=7",
                              "reproduce.ablation_rows={conv5: [], conv4-5: [], conv3-5: [2]}"])
    grid = experiments(p)
    cells = [e for e in grid if e.table == 1 and e.head in ("grad", "full")]
    assert [e.name for e in cells] == ["t1-grad-conv3-5-rrp", "t1-full-conv3-5-rrp"]
    resolved = cells[0].params(p)
    assert resolved["train"]["grad"]["iterations"] == 7 and resolved["model"]["omega"] == "pretrained"
    assert resolved["model"]["theta1"] == "random" and resolved["model"]["layers"] == "conv3-5"
    assert all(e.params(p)["train"]["grad"]["iterations"] != 7 for e in grid if e.table == 3)
    assert twins(grid) == {}  # the tables' protocols differ: every cell runs


def test_one_protocol_runs_table1s_all_pretrained_cells_once():
    """The default profile runs both tables on one protocol: Table 1's actv, its conv5
    fine-tuning and its all-pre-trained conv5 rows are Table 3's runs, read as Table 1's cells;
    no finetune at conv4-5 (reproduce.ablation_finetune)."""
    grid = experiments(load_params("fashion-mnist"))
    repeats = twins(grid)
    assert {k: v.name for k, v in repeats.items()} == {
        "t1-actv-conv5": "t3-actv-conv5", "t1-finetune-conv5": "t3-finetune-conv5",
        "t1-grad-conv5-ppp": "t3-grad-conv5", "t1-full-conv5-ppp": "t3-full-conv5"}
    assert "t1-finetune-conv4-5" not in {e.name for e in grid}
    assert {"t1-grad-conv4-5-ppp", "t1-full-conv4-5-ppp"} <= {e.name for e in grid}


def test_a_run_read_as_another_tables_cell(tmp_path):
    summary = {"experiment": "t3-grad-conv5", "table": 3, "status": "done", "seeds": [0],
               "params": load_params("quick", ["model.head=grad"]),
               "runs": [{"seed": 0, "accuracy": 0.5, "iterations": 10, "train_seconds": 1.0}]}
    path = tmp_path / "t3-grad-conv5-abc.json"
    path.write_text(json.dumps(summary))
    both = load_summaries([path, {"path": str(path), "experiment": "t1-grad-conv5-ppp", "table": 1}])
    frame = results_frame(both)
    assert list(frame.table) == [3, 1] and list(frame.experiment) == ["t3-grad-conv5", "t1-grad-conv5-ppp"]
    assert frame.accuracy.tolist() == [50.0, 50.0] and frame.run_key.tolist() == ["abc", "abc"]
    assert frame.test_views.isna().all()  # an accuracy run has no views


def test_a_run_with_views_is_table_4s_by_its_views_and_table_2s_by_its_centre_crop(tmp_path):
    """One multi-label run (data.test_views 10) gives both tables' cells: Table 4 averages ten
    random views of each test image, Table 2 tests the centre crop (results.VIEWED_TABLES)."""
    run = {"seed": 0, "metric": "mAP", "accuracy": None, "mean_ap": 0.6, "mean_ap_voc07": 0.58,
           "test_jackknife": "centre", "iterations": 10, "train_seconds": 1.0,
           "views": {"test_views": 10, "mean_ap": 0.7, "mean_ap_voc07": 0.68, "test_jackknife": "views"}}
    summary = {"experiment": "t4-full-block8", "table": 4, "status": "done", "seeds": [0],
               "params": load_params("quick", ["model.head=full"]), "runs": [run]}
    path = tmp_path / "t4-full-block8-abc.json"
    path.write_text(json.dumps(summary))
    frame = results_frame(load_summaries([path, {"path": str(path), "experiment": "t2-full-block8-ppp", "table": 2}]))
    assert frame.table.tolist() == [4, 2] and frame.test_views.tolist() == [10, 1]
    assert frame.mean_ap.tolist() == pytest.approx([70.0, 60.0])
    assert frame.mean_ap_voc07.tolist() == pytest.approx([68.0, 58.0])
    assert frame.test_jackknife.tolist() == ["views", "centre"]
    no_views = dict(summary, runs=[{k: v for k, v in run.items() if k != "views"}])
    path.write_text(json.dumps(no_views))  # a run without views: both tables read the centre crop
    frame = results_frame(load_summaries([path]))
    assert frame.test_views.tolist() == [1] and frame.mean_ap.tolist() == pytest.approx([60.0])


@pytest.mark.parametrize("key,value", [("ablation_rows.conv5", "[0]"), ("ablation_rows.conv4-5", "[9]"),
                                       ("ablation_rows.conv4-5", "8"), ("ablation_rows", "[8]"),
                                       ("heads_seeds", "[]"),
                                       ("ablation", "[nokey]"), ("ablation", "{nokey: 1}"),
                                       ("heads.model.head", "grad"), ("heads.train.batch_size", "0"),
                                       ("timeout", "0")])
def test_bad_reproduce_settings_are_named(key, value):
    with pytest.raises(ParamError, match="reproduce.(heads|ablation)|reproduce.timeout|--set"):
        load_params("quick", [f"reproduce.{key}={value}"])


def test_the_ablations_depths_are_the_base_networks_and_named_when_not():
    with pytest.raises(ParamError, match="ablation_rows.*'conv3-4'.*Table 1 on ali.*top block"):
        experiments(load_params("quick", ["reproduce.ablation_rows.conv3-4=[8]"]))
    with pytest.raises(ParamError, match="ablation_rows.*'conv5'.*Table 2 on resnet18.*block8"):
        experiments(load_params("fashion-mosaic", ["reproduce.ablation_rows.conv5=[8]"]))
    assert load_params("fashion-mnist-vae")["reproduce"]["ablation_rows"] == {}  # no ablation


def test_a_resnet_runs_tables_4_and_2_on_their_shapes():
    """On a ResNet the heads' table is Table 4 and the ablation Table 2 (ResNet.TABLES), with
    Table 3's and Table 1's sections of grid.yaml and settings; the all-pre-trained block8 cells
    and the baselines are Table 4's runs; the pre-training runs on the source task."""
    from gradfeat_core.suite.reproduce import pretraining_run
    p = load_params("fashion-mosaic")
    grid = experiments(p)
    assert [e.name for e in grid if e.table == 4][:4] == [f"t4-{h}-block8" for h in HEADS]
    t2 = [e for e in grid if e.table == 2]
    assert len(t2) == 2 + 8 * 2 + 2 and {e.layers for e in t2} == {"block8", "block7-8"}
    assert {k: v.name for k, v in twins(grid).items()} == {
        "t2-actv-block8": "t4-actv-block8", "t2-finetune-block8": "t4-finetune-block8",
        "t2-grad-block8-ppp": "t4-grad-block8", "t2-full-block8-ppp": "t4-full-block8"}
    assert all(list(e.seeds) == p["reproduce"]["ablation_seeds"] for e in t2)
    run = pretraining_run(p, dict(profile="fashion-mosaic", objective="supervised"), {}, "local",
                          Path("runs"))
    assert run.parameters["overrides"]["data"] == {"dataset": "fashion-source"}
    assert run_params(run.parameters)["data"]["dataset"] == "fashion-source"
    assert grid[0].params(p)["data"]["dataset"] == "fashion-mosaic"


def test_paper_value():
    assert paper_value(3, "svhn", "grad", "conv5") == (89.91, "svhn")
    assert paper_value(3, "fashion-mnist", "grad", "conv5") == (70.14, "cifar10")
    assert paper_value(1, "cifar10", "full", "conv4-5", "random", "pretrained", "random") == (63.10, "cifar10")
    assert paper_value(1, "cifar10", "finetune", "conv3-5") == (74.30, "cifar10")
    assert paper_value(3, "cifar10", "grad", "conv4-5") == (None, None)
    # Tables 2 and 4: VOC07's column beside a stand-in; Table 4's row is the paper's base network
    # that ours stands in for; Table 2's blocks in our names (layer4.0-1 → block7-8)
    assert paper_value(4, "fashion-mosaic", "full", "block8", base="supervised") == (84.95, "voc07")
    assert paper_value(4, "coco2014", "full", "block8", base="rotation-resnet18") == (45.62, "coco2014")
    assert paper_value(4, "fashion-mosaic", "full", "block8", base="random") == (None, None)
    assert paper_value(2, "fashion-mosaic", "grad", "block8", "random", "random", "random") == (15.63, "voc07")
    assert paper_value(2, "fashion-mosaic", "full", "block7-8") == (83.40, "voc07")
    assert paper_value(2, "fashion-mosaic", "finetune", "block7-8") == (82.50, "voc07")


# --- results and verdicts -----------------------------------------------------------------

def summary(table, head, layers="conv5", sources=("pretrained",) * 3, accuracies=(0.8,), status="done",
            ms=10.0, batch=128):
    p = load_params("quick", [f"model.head={head}", f"model.layers={layers}",
                              *(f"model.{k}={v}" for k, v in zip(("theta1", "theta2", "omega"), sources)),
                              f"train.batch_size={batch}"])
    runs = [{"seed": s, "accuracy": a, "iterations": 100, "train_seconds": ms / 10, "ms_per_step": ms,
             "loss_history": [[50, 1.0], [100, 0.5]], "convergence": "converged"} for s, a in enumerate(accuracies)]
    out = {"experiment": f"t{table}-{head}-{layers}", "table": table, "status": status,
           "seeds": list(range(len(accuracies))), "params": p}
    return dict(out, runs=runs) if status == "done" else dict(out, error="boom")


def test_results_frame_rows_per_seed_with_paper_numbers_and_failures():
    frame = results_frame([summary(3, "grad", accuracies=(0.8, 0.82)),
                           summary(1, "grad", "conv4-5", ("random", "random", "random"), status="failed")])
    assert list(frame.columns) == COLUMNS and set(REQUIRED) <= set(frame.columns)
    assert frame.accuracy.iloc[:2].tolist() == pytest.approx([80.0, 82.0])
    assert frame.paper_score.tolist() == [70.14, 70.14, 26.30]
    assert frame.status.tolist() == ["done", "done", "failed"] and frame.error.iloc[2] == "boom"
    assert frame.ms_per_step.iloc[0] == pytest.approx(10.0)


def test_verdicts_read_the_results_frame():  # the rules themselves: tests/test_claims.py
    frame = results_frame([summary(3, "actv", accuracies=(0.700, 0.702, 0.699)),
                           summary(3, "grad", accuracies=(0.780, 0.781, 0.778)),
                           summary(3, "finetune", accuracies=(0.795, 0.796, 0.792))])
    v = verdicts(frame).set_index("claim")
    assert v.loc["C1", "verdict"] == HOLDS and v.loc["C2", "verdict"] == NOT_RUN


# --- papermill runs: failures recorded, others finish, done runs skipped --------------------

def write_notebook(path, source):
    """A notebook whose one parameter is a RunRecord (reproduce's), `source` after its result_path."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('record = ""')
    params.metadata["tags"] = ["parameters"]
    run = nbformat.v4.new_code_cell("import json\nresult_path = json.loads(record)['result']")
    nb.cells = [params, run, nbformat.v4.new_code_cell(source)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_failed_runs_are_recorded_and_the_others_finish(tmp_path, monkeypatch):
    import gradfeat_core.suite.reproduce as rep
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    write = "from gradfeat_core.experiments.results import write_json\nwrite_json(result_path, {'ok': True})"
    write_notebook(nbs / "raises.ipynb", "raise RuntimeError('the cell broke')")
    write_notebook(nbs / "exits.ipynb", "import sys\nsys.exit(0)\n" + write)
    write_notebook(nbs / "good.ipynb", write)
    monkeypatch.setattr(rep, "NOTEBOOKS", nbs)
    monkeypatch.setenv("PYTHONPATH", str(rep.ROOT))
    params = {"profile": "quick", "objective": "ali", "overrides": {}}
    runs = [make_run(name, name, params, tmp_path / "runs") for name in ("raises", "exits", "good")]
    log = []
    done, failed = run_all(runs, 120, log.append, "test")
    assert [r.name for r in done] == ["good"] and [r.name for r in failed] == ["raises", "exits"]
    errors = {r.name: json.loads(r.failed.read_text())["error"] for r in failed}
    assert "the cell broke" in errors["raises"]
    assert "without writing its result" in errors["exits"] or "SystemExit" in errors["exits"]
    assert not (runs[2].failed).exists() and runs[2].output.exists()
    log.clear()
    run_all(runs, 120, log.append, "test")  # a rerun retries the failed ones only
    assert log[0] == "test: 1 of 3 done already, 2 to run"


def test_a_job_array_records_failures_as_the_local_loop_does(tmp_path, monkeypatch):
    """--executor debug: submitit's submission path in this process. A failing notebook and a
    task that dies outside its notebook both leave <name>-<key>.failed.json; a rerun submits
    only the runs that are not done, and each job's log lies in runs/jobs/."""
    import gradfeat_core.suite.reproduce as rep
    from gradfeat_core.suite import cluster
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    write = "from gradfeat_core.experiments.results import write_json\nwrite_json(result_path, {'ok': True})"
    write_notebook(nbs / "raises.ipynb", "raise RuntimeError('the cell broke')")
    write_notebook(nbs / "good.ipynb", write)
    monkeypatch.setattr(rep, "NOTEBOOKS", nbs)
    monkeypatch.setenv("PYTHONPATH", str(rep.ROOT))
    params = {"profile": "quick", "objective": "ali", "overrides": {}}
    runs = [make_run(name, name, params, tmp_path / "runs") for name in ("raises", "good")]
    resources = dict(load_params("quick")["reproduce"]["slurm"]["heads"], array_parallelism=4)
    ex = cluster.executor("debug", tmp_path / "runs" / "jobs", resources, "test")
    log = []
    done, failed = run_all(runs, 120, log.append, "test", ex)
    assert [r.name for r in done] == ["good"] and [r.name for r in failed] == ["raises"]
    assert "the cell broke" in json.loads(runs[0].failed.read_text())["error"]
    assert any("submitted 2 task(s)" in line for line in log)
    log.clear()
    run_all(runs, 120, log.append, "test", ex)
    assert log[0] == "test: 1 of 2 done already, 1 to run" and any("submitted 1 task(s)" in line for line in log)

    def dies(run, timeout):
        raise MemoryError("killed by the out-of-memory handler")
    monkeypatch.setattr("pdb.post_mortem", lambda *a: None)  # the debug executor's, on an error
    runs[0].failed.unlink()
    outcomes = cluster.run_array(ex, dies, runs[:1], 120, log.append, rep.record_failure)
    assert outcomes == [False] and "died" in json.loads(runs[0].failed.read_text())["error"]


def test_sbatch_options_become_submitit_parameters():
    from gradfeat_core.suite.cluster import sbatch_options
    assert sbatch_options(["--qos=high", "--account=lab", "--exclusive"]) == {
        "qos": "high", "account": "lab", "exclusive": True}


def test_runs_are_keyed_by_resolved_parameters(tmp_path):
    a = make_run("02_heads", "x", {"profile": "quick", "objective": "ali", "overrides": {}}, tmp_path)
    b = make_run("02_heads", "x", {"profile": "quick", "objective": "ali",
                                   "overrides": {"train": {"actv": {"lr": 0.5}}}}, tmp_path)
    c = make_run("02_heads", "x", {"profile": "quick", "objective": "ali", "overrides": {}}, tmp_path)
    assert a.key != b.key and a.key == c.key and isinstance(a, Run)


def test_ctrl_c_stops_the_whole_reproduction_and_keeps_finished_runs(tmp_path):
    """Ctrl-C as soon as reproduce logs its first finished run ("  <run name>: done (N s)"),
    read from its stderr line by line: the reading is the wait."""
    import os
    import queue
    import signal
    import subprocess
    import sys
    import threading
    from gradfeat_core.suite.reproduce import ROOT
    proc = subprocess.Popen([sys.executable, "-m", "gradfeat_core", "reproduce", "--profile", "quick",
                             "--set", f"out_dir={tmp_path}"], cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            # as in a terminal: a job started with & by a script ignores SIGINT
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines = queue.Queue()

    def read():  # stderr's lines (text mode splits tqdm's \r updates too), then None at its end
        for text in proc.stderr:
            lines.put(text)
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    seen = []
    try:
        # the timeout only guards against a hang: each line is waited for, not polled
        while (line := lines.get(timeout=240)) is not None and not re.search(r": done \(\d+ s\)$", line):
            seen.append(line)
        assert line is not None, "reproduce ended before any run finished:\n" + "".join(seen)[-2000:]
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends: the whole foreground process group
        proc.wait(timeout=120)
        reader.join(timeout=120)
        assert not reader.is_alive(), "reproduce's stderr still open 120 s after it ended"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    stderr = "".join(seen + [line] + [rest for rest in iter(lines.get_nowait, None)])
    finished = sorted(p for p in (tmp_path / "runs").glob("*.json") if not p.name.endswith(".failed.json"))
    assert proc.returncode == 130, stderr[-2000:]
    assert "interrupted: finished runs are kept" in stderr
    assert 1 <= len(finished) < len(experiments(load_params("quick")))
    assert not (tmp_path / "report.html").exists()


def _keys_in(copy, *sets):
    """run_keys of the quick profile computed by the package in `copy` (a copy of the repository)."""
    import os
    import subprocess
    import sys
    code = ("import json, sys, gradfeat_core; from gradfeat_core.suite.reproduce import run_keys; "
            "print(json.dumps([gradfeat_core.__file__, run_keys('quick', sys.argv[1:])]))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADFEAT_")}
    done = subprocess.run([sys.executable, "-c", code, *sets], cwd=copy, capture_output=True, text=True,
                          env=dict(env, PYTHONPATH=str(copy)), check=True)
    package, keys = json.loads(done.stdout.splitlines()[-1])
    assert package.startswith(str(copy)), package
    return keys


def test_a_docstring_edit_anywhere_keeps_every_finished_run_and_a_number_change_does_not(tmp_path):
    """Run keys are what decides a run's numbers, not the package: two clones at different
    paths, one with every module's docstring edited, key every run of the quick profile alike.
    A parameter that moves numbers changes the keys of the runs it decides; RESULTS_VERSION
    changes them all; a notebook's content, its own runs'."""
    import re
    import shutil
    from gradfeat_core.experiments.results import CODE_PATHS, RESULTS_VERSION, ROOT
    for name in ("a", "b"):
        for top in CODE_PATHS:
            copy = shutil.copytree if (ROOT / top).is_dir() else shutil.copy
            copy(ROOT / top, tmp_path / name / top, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                                       if (ROOT / top).is_dir() else {}))
    a, b = tmp_path / "a", tmp_path / "b"
    for name, data in (("enc.pt", b"pre-trained"), ("random.pt", b"random")):
        (tmp_path / name).write_bytes(data)
    sets = (f"base.checkpoint={tmp_path / 'enc.pt'}", f"base.random_checkpoint={tmp_path / 'random.pt'}")
    modules = sorted((b / "gradfeat_core").rglob("*.py"))
    for module in modules:
        text = module.read_text()
        module.write_text(re.sub(r'^"""', '"""Edited. ', text, count=1, flags=re.M) if '"""' in text
                          else '"""Edited."""\n' + text)
    before = _keys_in(a, *sets)
    assert len(before) == len(set(before.values())) > 5
    assert _keys_in(b, *sets) == before, "a docstring edit changed run keys"

    quick = b / "params" / "profiles" / "quick.yaml"
    quick.write_text(quick.read_text().replace("grad: {iterations: 40", "grad: {iterations: 41"))
    results = b / "gradfeat_core" / "experiments" / "results.py"
    now, bumped = f"RESULTS_VERSION = {RESULTS_VERSION}", f"RESULTS_VERSION = {RESULTS_VERSION + 1}"
    assert now in results.read_text()
    results.write_text(results.read_text().replace(now, bumped))
    notebook = b / "notebooks" / "03_linearization.ipynb"
    notebook.write_text(notebook.read_text() + "\n")
    after = _keys_in(b, *sets)
    assert after.keys() == before.keys()
    assert all(after[k] != before[k] for k in before)  # RESULTS_VERSION: every run
    results.write_text(results.read_text().replace(bumped, now))
    after = _keys_in(b, *sets)
    changed = {k for k in before if after[k] != before[k]}
    # grad's schedule decides the grad runs alone (not the full runs, which share ω̄ but not
    # grad's schedule); the edited notebook, its own run
    assert changed == {k for k in before if "-grad-" in k} | {"linearization"}, changed


def test_another_base_network_runs_the_heads_again_on_its_own_pretraining(tmp_path):
    """reproduce.other_bases (Table 4's distant ResNet beside the close one): its four heads run
    as its own objective on its own encoders, pre-trained here on the same source task; the
    ablation's twins still point at the profile's own base network."""
    from gradfeat_core.suite.reproduce import experiment_runs, other_pretrainings
    sets = [f"out_dir={tmp_path}", "reproduce.other_bases=[rotation-resnet18]"]
    p = load_params("fashion-mosaic", sets)
    grid = experiments(p)
    other = [e for e in grid if e.objective]
    assert [e.name for e in other] == [f"t4-{h}-block8-rotation-resnet18" for h in HEADS]
    assert twins(grid)["t2-actv-block8"].name == "t4-actv-block8"
    common = dict(profile="fashion-mosaic", objective="supervised")
    pre, = other_pretrainings(p, common, {}, "local", tmp_path / "runs", sets)
    assert pre.name == "pretrain-rotation-resnet18"
    assert run_params(pre.parameters)["data"]["dataset"] == "fashion-source"
    encoder = tmp_path / "pretrain" / "rotation-resnet18" / "encoder.pt"
    encoder.parent.mkdir(parents=True)
    for name in ("encoder.pt", "random_encoder.pt"):
        (encoder.parent / name).write_bytes(b"stand-in")  # keyed by content; not loaded here
    _, _, runs = experiment_runs(p, common, {}, tmp_path / "runs")
    run = next(r for r in runs if r.name == "t4-full-block8-rotation-resnet18")
    assert run.parameters["objective"] == "rotation-resnet18"
    assert run.parameters["overrides"]["base"]["checkpoint"] == str(encoder)
    with pytest.raises(ParamError, match="other_bases"):
        load_params("fashion-mosaic", ["reproduce.other_bases=[nosuch]"])


# --- the paper-sized ResNet profiles: imported base networks ----------------------------------

@pytest.mark.parametrize("profile,own,tables", [
    ("voc07-resnet18", "imagenet-resnet18", {4, 2}), ("coco2014-resnet18", "imagenet-resnet18", {4}),
    ("voc07-jigsaw-r50", "jigsaw-resnet50", {4}), ("coco2014-jigsaw-r50", "jigsaw-resnet50", {4})])
def test_the_paper_sized_resnet_profiles_run_on_imported_weights(tmp_path, profile, own, tables):
    """The paper's ResNets are imported (import-weights), never pre-trained: the profiles load
    without the weights (a dry run needs none), pre-train nothing, name each base network's own
    file (Jigsaw's heads beside ImageNet ResNet18's: C8), and a run without the file, or
    pre-training such a network, is one line naming the command that writes it."""
    from gradfeat_core.experiments.pretrain import pretrain
    from gradfeat_core.suite.reproduce import base_network, experiment_runs, other_pretrainings, reproduce
    sets = [f"out_dir={tmp_path}"]
    p = load_params(profile, sets)
    assert p["pretrain"]["objective"] == own and base_network(p)["source"] == "imported"
    grid = experiments(p)
    assert {e.table for e in grid} == tables and all(e.seeds == (0, 1, 2) for e in grid)
    common = dict(profile=profile, objective=own)
    assert other_pretrainings(p, common, {}, "local", tmp_path / "runs", sets) == []
    _, _, runs = experiment_runs(p, common, {}, tmp_path / "runs")
    for r in runs:
        objective = r.experiment.objective or own
        assert run_params(r.parameters)["base"]["checkpoint"].endswith(f"encoders/{objective}/encoder.pt")
    if own == "imagenet-resnet18":
        assert {r.experiment.objective for r in runs} == {"", "jigsaw-resnet50"}
    with pytest.raises(ParamError, match=f"import-weights .* --out encoders/{own}/encoder.pt") as e:
        reproduce(profile, sets, log=lambda msg: None)
    assert "\n" not in str(e.value)
    with pytest.raises(ParamError, match=f"{own}'s weights are imported, not pre-trained here"):
        pretrain(p)


def test_the_report_says_which_views_each_table_trained_and_tested_on():
    from gradfeat_core.suite.report import protocol
    voc = load_params("voc07-resnet18")
    assert voc["data"]["train_views"] == voc["data"]["test_views"] == 10
    assert "training images all (each as 10 fixed random views, " in protocol(voc, 2)
    assert "test images all (each one's centre crop)" in protocol(voc, 2)
    assert "test images all (10 random views of each averaged)" in protocol(voc, 4)
    coco = load_params("coco2014-resnet18")
    assert "(each as its centre crop, " in protocol(coco, 4) and "(10 random views of each averaged)" in protocol(coco, 4)
    assert "views" not in protocol(load_params("fashion-mosaic"), 4) + protocol(load_params("fashion-mnist"), 1)
