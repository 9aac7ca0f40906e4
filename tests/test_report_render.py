"""The report notebook is a short sequence of calls; its sections (suite.render.Report) run on a
small hand-made frame, and report.json's schema is ReportRecord."""
import json
from pathlib import Path

import matplotlib
import nbformat
import pandas as pd
import pytest

matplotlib.use("Agg")

from gradfeat_core.experiments.params import load_params  # noqa: E402
from gradfeat_core.suite.claims import Cell  # noqa: E402
from gradfeat_core.suite.render import Report, ReportRecord  # noqa: E402
from gradfeat_core.suite.frame import SOURCES  # noqa: E402

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "04_report.ipynb"


def code_lines():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    return [line for cell in notebook.cells if cell.cell_type == "code"
            for line in cell.source.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_the_report_notebook_is_a_short_sequence_of_calls():
    lines = code_lines()
    assert len(lines) < 40, f"04_report has {len(lines)} lines of code: move logic into suite.render"
    branching = [line for line in lines if line.lstrip().startswith(("if ", "for ", "elif ", "while "))]
    assert not branching, branching


def test_the_report_notebook_keeps_its_parameters_and_headings():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    parameters = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(parameters) == 1 and "report_dir = None" in parameters[0].source
    headings = [c.source.splitlines()[0] for c in notebook.cells if c.cell_type == "markdown"]
    assert "## Settings and deviations" in headings and "## Failed runs" in headings
    nbformat.validate(notebook)


PRE = ("pretrained",) * 3
SCORES = {"actv": [70.0, 70.2, 69.9], "grad": [78.0, 78.1, 77.8], "full": [78.3, 78.2, 78.0],
          "finetune": [79.5, 79.6, 79.2]}


def frame():
    """results.csv of Table 3 on the rotation encoder and a random one, and a failed Table 1 cell."""
    rows = []
    for base, offset in (("rotation", 0.0), ("random", -20.0)):
        for head, scores in SCORES.items():
            for seed, score in enumerate(scores):
                rows.append({"dataset": "fashion-mnist", "base": base, "table": 3, "head": head, "layers": "conv5",
                             **dict(zip(SOURCES, PRE)), "seed": seed, "accuracy": score + offset, "status": "done",
                             "batch_size": 128, "ms_per_step": 10.0, "converged": True, "lr": 0.1,
                             "experiment": f"t3-{head}-conv5" + ("-random-encoder" if base == "random" else ""),
                             "notebook": f"runs/{base}-{head}.ipynb", "paper_score": 60.0 if base != "random" else None,
                             "paper_dataset": "cifar10" if base != "random" else None})
    rows.append({"dataset": "fashion-mnist", "base": "rotation", "table": 1, "head": "grad", "layers": "conv5",
                 "theta1": "random", "theta2": "pretrained", "omega": "pretrained", "seed": 0, "status": "failed",
                 "experiment": "t1-grad-conv5-rpp", "error": "out of memory", "notebook": "runs/t1.ipynb"})
    return pd.DataFrame(rows)


@pytest.fixture
def report(tmp_path):
    params = dict(load_params("fashion-mnist"), profile="fashion-mnist")
    (tmp_path / "runs").mkdir()
    return Report("fashion-mnist", tmp_path, params, frame(), [], None, None, None, {}, None, [])


def text(shown):
    return " ".join(getattr(x, "data", "") if isinstance(getattr(x, "data", ""), str) else "" for x in shown)


def test_each_section_renders_from_the_frame(report):
    from gradfeat_core.suite.claims import verdicts
    report.claims = verdicts(report.frame)
    assert (report.first, report.second, report.unit) == (3, 1, "accuracy %")
    assert "### Verdicts" in text(report.first_screen())
    assert "Table 3: the four heads at the top layer" in text(report.heads_table())
    dots = report.heads_figure()
    assert dots[0].data[:4] == b"\x89PNG" and dots[0].alt.startswith("Dot-and-interval plot of Table 3")
    assert "out of memory" in text(report.failed_runs())
    assert report.ablation_figure() == [] and report.loss_curves() == []  # no ablation cell done, no summaries
    assert text(report.validation_curves()).count("did not validate") == 2  # Tables 3 and 1 ran
    assert "How these runs differ" in text(report.settings())
    forest = [x for x in report.claims_detail() if hasattr(x, "alt")]
    assert len(forest) == 1 and forest[0].alt.startswith("Forest plot per claim")


def test_the_sensitivity_stage_shows_in_the_verdict_table_and_its_own_section(report):
    from gradfeat_core.suite.claims import verdicts
    claims = verdicts(report.frame)
    assert "not run for this report" in text(report.sensitivity_stage())
    c2 = claims.set_index("claim").loc["C2", "verdict"]
    flipped = "inconclusive" if c2 != "inconclusive" else "holds"
    report.claims = claims
    report.perturbed(pd.DataFrame({"claim": ["C1", "C2"], "perturbation": "schedule ×2",
                                   "verdict": [claims.verdict[0], flipped], "comparison": "", "effect": ""}))
    first = text(report.first_screen())
    assert "under perturbation" in first and f"fragile: schedule ×2 → {flipped}" in first
    assert "robust" in first and "not perturbed" in first
    assert f"C2 (schedule ×2 → {flipped}) fragile" in first  # the conclusion says it too
    assert f"fragile: schedule ×2 → {flipped}" in text(report.sensitivity_stage())


def test_report_json_keeps_its_keys_and_reads_back(report, tmp_path):
    from gradfeat_core.suite.claims import verdicts
    report.claims = verdicts(report.frame)
    record = report.record()
    assert isinstance(record, ReportRecord) and record.heads_table == 3 and record.ablation_table == 1
    record.write(tmp_path / "report.json")
    written = json.loads((tmp_path / "report.json").read_text())
    assert set(written) == {"profile", "claims", "table3", "table1", "table1_baselines", "minutes", "environment"}
    assert [c["claim"] for c in written["claims"]] == [f"C{i}" for i in range(1, 9)]
    assert len(written["table3"]) == 8  # 4 heads × 2 base networks


# --- Settings: what ran, not what the profile says ------------------------------------------------

def vae_frame(lrs):
    """Table 3 of the VAE profile: per head, the lr its three seeds trained at (results.csv's)."""
    rows = [{"table": 3, "base": base, "head": head, "layers": "conv8", "seed": seed, "status": "done",
             "lr": lr if base == "vae" else 1.0}
            for base in ("vae", "random") for head, lr in lrs.items() for seed in range(3)]
    return pd.DataFrame(rows)


def test_settings_print_the_rates_the_runs_used_and_mark_a_grid_edge():
    from gradfeat_core.suite.report import head_settings, protocol
    params = load_params("fashion-mnist-vae")
    grids = {h: params["train"][h]["lr_grid"] for h in ("actv", "grad", "full", "finetune")}
    assert all(len(g) >= 3 for g in grids.values()) and params["train"]["actv"]["lr"] not in grids["actv"]
    ran = {"actv": max(grids["actv"]), "grad": grids["grad"][1], "full": min(grids["full"]),
           "finetune": min(grids["finetune"])}
    frame = vae_frame(ran)
    actv = head_settings(params, 3, "actv", frame)
    assert actv.startswith(f"actv sgd lr {ran['actv']:g} (random encoder: 1) (best on validation of "
                           f"{grids['actv']} at the grid's upper edge)"), actv
    grad = head_settings(params, 3, "grad", frame)
    assert "at the grid's" not in grad and f"lr {ran['grad']:g} (" in grad  # inside its grid
    assert f"lr {ran['full']:g} (random encoder: 1) (best on validation of {grids['full']} at the grid's " \
        "lower edge)" in head_settings(params, 3, "full", frame)
    sentence = protocol(params, 3, frame)
    assert f"lr {ran['finetune']:g} (random encoder: 1)" in sentence
    assert f"actv sgd lr {params['train']['actv']['lr']:g} (" not in sentence
    assert f"actv sgd lr {params['train']['actv']['lr']:g} (" in protocol(params, 3)  # without runs: the profile's


def test_settings_take_the_grid_from_the_runs_parameters():
    from gradfeat_core.suite.report import head_settings
    params = load_params("fashion-mnist-vae")
    ran = json.loads(json.dumps(params))  # the run resolved a wider grid than the profile now has
    ran["train"]["actv"]["lr_grid"] = [0.3, 1.0, 3.0, 10.0, 30.0]
    summaries = [{"table": 3, "params": dict(ran, model=dict(ran["model"], head="actv"))}]
    text = head_settings(params, 3, "actv", vae_frame({"actv": 3.0}), summaries)
    assert "of [0.3, 1.0, 3.0, 10.0, 30.0])" in text and "edge" not in text


def test_the_conclusion_says_the_side_of_the_map_the_resnets_top_block_works_on():
    """From the architecture itself (BaseNetwork.map_sides), not a table: 1×1 at 32 px (centre
    taps only), 2×2 at 64 px; nothing for the five-conv encoder."""
    from gradfeat_core.suite.report import top_map_line
    line, = top_map_line(load_params("fashion-mosaic", ["data.mosaic_side=32"]))
    assert "1×1 map" in line and "centre taps only" in line
    line, = top_map_line(load_params("fashion-mosaic", ["data.mosaic_side=64"]))
    assert "2×2 map" in line and "centre taps" not in line
    assert top_map_line(load_params("fashion-mnist")) == []
