"""The quick profile end to end: reproduce under papermill (then reruns, in this process and
through submitit's debug executor), each notebook as Jupyter runs it (on the reports the first
test left). One xdist_group, so that under `make test`'s two workers (pytest-xdist, --dist
loadgroup) they run in one, in order."""
import json
import re
from urllib.parse import unquote

import nbformat
import pandas as pd
import pytest

from gradfeat_core.suite.grid import experiments, twins
from gradfeat_core.suite.quality import publish
from gradfeat_core.experiments.params import load_params
from gradfeat_core.suite.reproduce import NOTEBOOKS, base_network, reproduce

pytestmark = pytest.mark.xdist_group("end_to_end")

REQUIRED = ["dataset", "base", "head", "layers", "theta1", "theta2", "omega", "seed", "accuracy",
            "paper_score", "status"]


# --- the quick profile end to end under papermill -----------------------------------------

@pytest.fixture(scope="module")
def quick_reports(tmp_path_factory):
    """A reports folder whose quick/ the end-to-end test fills (GRADFEAT_REPORTS for Jupyter)."""
    return tmp_path_factory.mktemp("reports")


def test_quick_profile_end_to_end(quick_reports, monkeypatch, tried_run):
    """The whole grid under papermill; pre-training under a time budget that one update spends,
    so that it stops, is shown in progress, resumes, and the grid runs after its last update.
    Then reruns: one skips every done run and redoes only a lost one, in this process and
    through submitit's debug executor (their reports are not rendered again: the first is
    checked here)."""
    import gradfeat_core.suite.reproduce as rep_module
    tmp_path = quick_reports / "quick"
    tried = quick_reports / "tried" / "quick-ali-300"  # base.compared's folder, as committed
    publish([tried_run(quick_reports / "ali-300")], tried, encoder=False)
    sets = [f"out_dir={tmp_path}", "pretrain.max_minutes=1e-9", "pretrain.iterations=2",
            f"base.compared=[{tried}]"]
    log = []
    frame = reproduce("quick", sets, log=log.append)
    assert "pre-training: in progress (1 of 2 updates): starting it again, it resumes" in log
    assert json.loads((tmp_path / "pretrain" / "ali" / "pretrain.json").read_text())["iterations"] == 2
    csv = pd.read_csv(tmp_path / "results.csv")
    assert set(REQUIRED) <= set(csv.columns) and (csv.status == "done").all()
    p = load_params("quick")
    rep = p["reproduce"]
    n_t1 = 1 + sum((layers in rep["ablation_finetune"]) + 2 * len(rows)
                   for layers, rows in rep["ablation_rows"].items() if rows)
    assert len(csv) == 2 * 4 * len(rep["heads_seeds"]) + n_t1 * len(rep["ablation_seeds"]) == len(frame)
    assert twins(experiments(p))  # one protocol: Table 1's all-pre-trained cells read from Table 3's runs
    t1_ppp = csv[(csv.table == 1) & (csv.experiment == "t1-grad-conv5-ppp")]
    t3_grad = csv[(csv.table == 3) & (csv.experiment == "t3-grad-conv5")]
    assert t1_ppp.accuracy.tolist() == t3_grad.accuracy.tolist() and t1_ppp.run_key.tolist() == t3_grad.run_key.tolist()
    reference = csv["base"] == "random"  # the random-encoder reference has no paper number
    assert csv.accuracy.between(0, 100).all() and csv.paper_score[~reference].notna().all()
    assert reference.sum() == 4 * len(p["reproduce"]["heads_seeds"]) and csv.paper_score[reference].isna().all()
    html = (tmp_path / "report.html").read_text()
    assert json.loads((tmp_path / "report.json").read_text())["claims"][6]["claim"] == "C7"
    images = re.findall(r"<img [^>]*>", html)  # every figure has its alt text
    assert images and all('alt="' in img and 'alt="figure"' not in img for img in images)
    assert 'alt="Dot-and-interval plot of Table 3' in html and 'alt="Forest plot per claim' in html
    for text in ["Read this first", "random encoder", "Table 3: the four heads", "Table 1: the ablation",
                 "Settings and deviations", "Environment", "Where the time went", "Coverage",
                 "<title>Gradients as Features (Mu, Liang &amp; Li, ICLR 2020): a reproduction on synthetic",
                 *(f"Table {t}:" for t in (1, 2, 3, 4)), *(f"C{i}" for i in range(1, 9))]:
        assert text in html, text
    contents = html.split("Contents:")[1].split("</p>")[0]  # every link of the contents has its heading
    ids = {unquote(i) for i in re.findall(r'id="([^"]+)"', html)}
    assert len(re.findall(r'href="#', contents)) == 12
    assert [h for h in re.findall(r'href="#([^"]+)"', contents) if unquote(h) not in ids] == []
    tables = re.findall(r"<table.*?</table>", html, flags=re.S)
    cells = [re.sub(r"<[^>]+>", "", c).strip() for t in tables for c in re.findall(r"<td[^>]*>.*?</td>", t, flags=re.S)]
    assert cells and not [c for c in cells if c in ("nan", "NaN", "<NA>", "&lt;NA&gt;", "None")], \
        [t[:300] for t in tables if re.search(r">\s*(nan|NaN|None|&lt;NA&gt;)\s*<", t)]
    verdicts_table = tables[0]  # the first table is the verdict table: the paper's numbers as printed
    assert "same rule on the paper's numbers" in verdicts_table and "cifar10: +" in verdicts_table
    assert not re.search(r"cifar10: [+−-]?\d+\.\d+ \[", verdicts_table)  # no interval the paper did not print
    assert html.count("data:image/png;base64") >= 6  # bars, heat map, curves, GAN figures, tried
    assert "pre-trainings tried" in html and "quick-ali-300" in html  # base.compared beside the base network
    assert "Why this one" in html  # and "Read this first" points at it
    assert "Ours − paper" not in html  # no differences across data sets
    assert "<script src=\"http" not in html and "cdnjs" not in html  # readable offline
    assert "def " not in html and "import " not in html  # no code cells
    verdict_cells = re.findall(r"<td[^>]*>(holds|holds in part|does not hold|inconclusive|not run)</td>", verdicts_table)
    assert len(verdict_cells) == 8  # C1-C8 (C8: not run, Table 4 is fashion-mosaic's)
    # a rerun skips every done run (ω̄ included); a lost result is the only thing redone, and
    # redone the same, in this process and through submitit's debug executor (the slurm path)
    monkeypatch.setattr(rep_module, "report", lambda out, profile, log: None)
    grid = experiments(p)
    unique = [e for e in grid if e.name not in twins(grid)]
    n_actv = sum(e.head == "actv" for e in unique)
    n = len(unique) - n_actv
    victim = sorted((tmp_path / "runs").glob("t1-grad-conv5-*.json"))[0]
    def accuracies():
        return [r["accuracy"] for r in json.loads(victim.read_text())["runs"]]
    first = accuracies()
    for executor in ("local", "debug"):
        victim.unlink()
        log.clear()
        again = reproduce("quick", sets, log=log.append, executor=executor)
        assert f"experiments (ω̄): {n_actv} of {n_actv} done already, 0 to run" in log
        assert f"experiments (heads): {n - 1} of {n} done already, 1 to run" in log and victim.exists()
        assert accuracies() == first
        assert again.accuracy.tolist() == frame.accuracy.tolist()
    assert any("submitted 1 task(s) as job" in line for line in log)


def test_a_committed_encoder_replaces_pre_training(tmp_path):
    encoder = tmp_path / "encoders" / "encoder.pt"
    encoder.parent.mkdir()
    encoder.write_bytes(b"weights")
    committed = base_network(load_params("quick", [f"base.checkpoint={encoder}"]))
    assert committed == {"source": "committed", "path": str(encoder),
                         "pretrain_json": str(encoder.parent / "pretrain.json")}
    assert base_network(load_params("quick"))["source"] == "pre-trained in this run"


def test_each_notebook_runs_as_jupyter_runs_it(quick_reports, monkeypatch):
    """Opened in JupyterLab (make lab): the notebook's folder as working directory, no injected
    parameters (the defaults, the quick profile), the package from the editable install (no
    PYTHONPATH), reports under GRADFEAT_REPORTS (here the end-to-end test's, so that 04_report
    has a run to report on; with no run there it stops on a line naming the command that makes
    one). Progress bars are widgets here and text in the notebooks reproduce executes."""
    from nbclient import NotebookClient
    monkeypatch.setenv("GRADFEAT_REPORTS", str(quick_reports))
    monkeypatch.delenv("PYTHONPATH", raising=False)
    monkeypatch.delenv("GRADFEAT_PROGRESS", raising=False)
    outputs = {}
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        NotebookClient(nb, timeout=900, kernel_name="python3",
                       resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
        outputs[path.stem] = json.dumps([c.get("outputs", []) for c in nb.cells])
    assert (quick_reports / "quick" / "runs" / "03_linearization-manual.json").is_file()
    assert "application/vnd.jupyter.widget-view+json" in outputs["02_heads"]
    batch = sorted((quick_reports / "quick" / "runs").glob("t3-grad-conv5-*.ipynb"))[0].read_text()
    assert "widget-view" not in batch and "it/s]" in batch


def test_pretraining_stops_itself_before_the_notebooks_or_the_jobs_time_limit():
    from gradfeat_core.suite.reproduce import pretrain_budget
    p = load_params("cifar10", ["reproduce.timeout=3600", "reproduce.slurm.pretrain.time_min=30"])
    assert pretrain_budget(p, "local") == 54.0    # 90% of the notebook cell's hour
    assert pretrain_budget(p, "slurm") == 27.0    # 90% of the job's 30 minutes
    assert pretrain_budget(load_params("cifar10", ["pretrain.max_minutes=5"]), "slurm") == 5.0
