"""One run, one record (experiments.record): resolved once by reproduce, the notebook's one
parameter, one result file named by its key; the experiments layer imports nothing from the
suite; the report never starts a reproduction."""
import ast
import json

import nbformat
import pytest

from gradfeat_core.experiments.errors import UserError
from gradfeat_core.experiments.params import NOT_DECISIVE
from gradfeat_core.experiments.record import NOTEBOOKS, Experiment, RunRecord, record_of
from gradfeat_core.experiments.results import ROOT
from gradfeat_core.suite.reproduce import make_run, run_all
from gradfeat_core.suite.frame import load_summaries, results_frame

PACKAGE = ROOT / "gradfeat_core"


def imported(source, module=None):
    """The absolute names of the modules `source` imports (relative imports resolved against
    `module`, the dotted name of the file it is)."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = module.split(".")[:-node.level] if node.level else []
            names.append(".".join(base + ([node.module] if node.module else [])))
            names += [f"{names[-1]}.{alias.name}" for alias in node.names]
    return names


def from_suite(names):
    return [n for n in names if n == "gradfeat_core.suite" or n.startswith("gradfeat_core.suite.")]


def test_imports_are_read_relative_and_absolute():
    assert from_suite(imported("from ..suite.grid import x", "gradfeat_core.experiments.run")) != []
    assert from_suite(imported("from .. import suite", "gradfeat_core.experiments.run")) != []
    assert from_suite(imported("import gradfeat_core.suite.frame as r")) != []
    assert from_suite(imported("from .params import load_params", "gradfeat_core.experiments.run")) == []


@pytest.mark.parametrize("path", sorted((PACKAGE / "experiments").glob("*.py")) + sorted((PACKAGE / "method").glob("*.py")),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_an_experiments_or_method_module_imports_nothing_from_the_suite(path):
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    assert from_suite(imported(path.read_text(), module)) == []


@pytest.mark.parametrize("notebook", ["01_pretrain", "02_heads", "03_linearization"])
def test_an_experiments_layer_notebook_imports_nothing_from_the_suite(notebook):
    nb = nbformat.read(NOTEBOOKS / f"{notebook}.ipynb", as_version=4)
    names = [n for cell in nb.cells if cell.cell_type == "code" for n in imported(cell.source)]
    assert any(n.startswith("gradfeat_core.experiments") for n in names)  # the cells are read
    assert from_suite(names) == []


def test_a_record_travels_as_json_text_and_comes_back_the_same():
    """Papermill reads parameters as YAML, which reads 1e-05 as a string: the record travels as
    JSON text (to_json), and its parameters come back with their types."""
    run = make_run("02_heads", "t3-grad-conv5", {"profile": "quick", "objective": "ali", "overrides": {
        "train": {"grad": {"weight_decay": 1e-05}}}}, "/tmp/runs", Experiment("t3-grad-conv5", 3, "grad", "conv5"))
    back = RunRecord.from_dict(json.loads(run.record.to_json()))
    assert back == run.record and back.params["train"]["grad"]["weight_decay"] == 1e-05
    assert back.seeds == (0,) and back.table == 3 and back.experiment.head == "grad"
    assert back.result == f"/tmp/runs/t3-grad-conv5-{back.key}.json"


def test_one_list_says_which_parameters_decide_no_number():
    """A run's key ignores exactly params.NOT_DECISIVE (a head's run also the pre-training that
    made its base network); a parameter that decides its numbers moves it."""
    assert {"profile", "reproduce", "out_dir"} <= set(NOT_DECISIVE)

    def key(notebook, *sets):
        overrides = {}
        for section, name, value in sets:
            overrides.setdefault(section, {})[name] = value
        asked = {"profile": "quick", "objective": "ali", "overrides": overrides}
        return record_of(notebook, "x", asked, "/tmp/runs").key
    for notebook in ("01_pretrain", "02_heads"):
        plain = key(notebook)
        assert key(notebook, ("pretrain", "max_minutes", 3.0)) == plain
        assert key(notebook, ("reproduce", "timeout", 7)) == plain
        assert key(notebook, ("train", "actv", {"lr": 0.123})) != plain
    assert key("02_heads", ("pretrain", "iterations", 3)) == key("02_heads")
    assert key("01_pretrain", ("pretrain", "iterations", 3)) != key("01_pretrain")


def test_one_run_writes_one_result_file_named_by_its_key_and_read_by_its_content(tmp_path):
    """A 02_heads run of the quick profile (small) under papermill: the runs folder holds its one
    result JSON, <name>-<key>.json, beside its executed notebook, and no seed writes a result of
    its own (train-head/); the result says the run's
    identity and its parameters are the record's; results.csv's key comes from the content, not
    the name (a renamed file keeps it)."""
    small = {"out_dir": str(tmp_path), "data": {"n_train": 128, "n_test": 64},
             "base": {"calibrate_images": 64}, "train": {"actv": {"iterations": 5}}}
    cell = Experiment("t3-actv-conv5", 3, "actv", "conv5", seeds=(0,))
    run = make_run("02_heads", cell.name, {"profile": "quick", "objective": "ali", "overrides": small},
                   tmp_path / "runs", cell)
    log = []
    done, failed = run_all([run], 600, log.append, "test")
    assert [r.name for r in done] == [cell.name], log
    left = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert left == [f"{cell.name}-{run.key}.ipynb", f"{cell.name}-{run.key}.json"]
    assert not list(tmp_path.rglob("train-head/*.json"))  # its seeds are in that file alone
    assert [p.name for p in (tmp_path / "checkpoints").glob("actv-*.pt")]  # the trained head is kept
    summary = json.loads(run.result.read_text())
    assert summary["run"] == {"name": cell.name, "notebook": "02_heads", "key": run.key}
    assert summary["params"] == json.loads(json.dumps(run.record.params))
    renamed = run.result.rename(tmp_path / "renamed.json")
    frame = results_frame(load_summaries([renamed]))
    assert frame.run_key.tolist() == [run.key]
    assert frame.notebook.tolist() == [f"runs/{cell.name}-{run.key}.ipynb"]


def test_the_report_never_starts_a_reproduction(tmp_path, monkeypatch):
    import gradfeat_core.suite.reproduce as rep
    from gradfeat_core.suite.render import Report

    def started(*args, **kwargs):
        raise AssertionError("the report started a reproduction")
    monkeypatch.setattr(rep, "reproduce", started)
    with pytest.raises(UserError, match=r"no reproduce run to report on in .*report-inputs.json is "
                       r"missing\): `python -m gradfeat_core reproduce --profile quick --set out_dir=") as e:
        Report.load("quick", tmp_path)
    assert "\n" not in str(e.value) and not list(tmp_path.iterdir())


def test_a_run_result_written_before_trials_had_its_name_reads_back(tmp_path):
    """RunResult.trials was written as lr_grid: a result file of then reads with its trials
    under the new name, and one of now round-trips."""
    from dataclasses import fields
    from gradfeat_core.experiments.results import RunResult, write_json
    trials = [{"optimizer": "sgd", "lr": 0.1, "weight_decay": 0.0, "validation_accuracy": 0.8}]
    now = {f.name: None for f in fields(RunResult)} | {"trials": trials, "seed": 2}
    old = {("lr_grid" if k == "trials" else k): v for k, v in now.items()}
    write_json(tmp_path / "old.json", old)
    write_json(tmp_path / "now.json", now)
    assert RunResult.read(tmp_path / "old.json").trials == trials
    assert RunResult.read(tmp_path / "now.json") == RunResult.from_dict(now)
    assert RunResult.from_dict(now).as_dict() == now
