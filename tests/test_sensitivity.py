"""The sensitivity stage: which runs it retrains, under what, and what it concludes."""
import pandas as pd
import pytest

from gradfeat_core.experiments.params import ParamError, load_params
from gradfeat_core.suite import sensitivity
from gradfeat_core.suite.evidence import Cell
from gradfeat_core.suite.grid import experiments
from gradfeat_core.suite.frame import read_results

PRP = ("pretrained", "random", "pretrained")


def test_the_schedule_perturbation_makes_every_heads_schedule_k_times_as_long():
    params = load_params("fashion-mnist", ["reproduce.sensitivity.schedule=3"])
    schedule, *_ = sensitivity.perturbations(params)
    train = schedule.heads["train"]
    for head in ("actv", "grad", "full", "finetune"):
        assert train[head]["iterations"] == 3 * params["train"][head]["iterations"]
        assert train[head]["stepsize"] == 3 * params["train"][head]["stepsize"]
    assert (train["min_iterations"], train["patience"]) == (3 * params["train"]["min_iterations"],
                                                            3 * params["train"]["patience"])
    assert schedule.pretraining is None and schedule.label == "schedule ×3"


def test_a_pretraining_seed_reaches_the_pretraining_only_and_a_design_change_both_where_it_concerns_the_data():
    params = load_params("fashion-mnist", ["reproduce.sensitivity.schedule=0",
                                           "reproduce.sensitivity.design={data: {n_train: 500}}"])
    seed, design = sensitivity.perturbations(params)
    assert (seed.heads, seed.pretraining) == ({}, {"seed": 1})
    assert design.heads == design.pretraining == {"data": {"n_train": 500}}
    assert design.label == "data.n_train 500"
    params = load_params("fashion-mnist", ["reproduce.sensitivity.pretrain_seed=null",
                                           "reproduce.sensitivity.design={train: {batch_size: 32}}"])
    _, heads_only = sensitivity.perturbations(params)
    assert heads_only.pretraining is None
    off = load_params("fashion-mnist", ["reproduce.sensitivity.schedule=0", "reproduce.sensitivity.pretrain_seed=null"])
    assert sensitivity.perturbations(off) == []


@pytest.mark.parametrize("assignment, words", [
    ("reproduce.sensitivity.schedule=1", "whole factor of 2"),
    ("reproduce.sensitivity.design={model: {head: grad}}", "sets model"),
    ("reproduce.sensitivity.checkpoint=encoders/nowhere.pt", "does not exist"),
    ("reproduce.sensitivity.checkpoint_sha256=abc", "sha256"),
])
def test_bad_sensitivity_settings_are_named(assignment, words):
    sets = [assignment]
    if "sha256" in assignment:
        sets.insert(0, "reproduce.sensitivity.checkpoint=encoders/fashion-mnist-rotation/encoder.pt")
    with pytest.raises(ParamError, match=words):
        load_params("fashion-mnist", sets)


def test_the_stage_trains_the_deciding_cells_and_the_actv_that_gives_their_omega():
    params = load_params("fashion-mnist")
    grid = experiments(params)
    cells = {Cell(3, "grad"), Cell(1, "full", "conv5", PRP)}
    chosen = sensitivity.stage_experiments(grid, cells, params["pretrain"]["objective"])
    assert [e.name for e in chosen] == ["t3-actv-conv5", "t3-grad-conv5", "t1-actv-conv5", "t1-full-conv5-prp"]
    random = sensitivity.stage_experiments(grid, {Cell(3, "grad", encoder="random")}, "rotation")
    assert [e.name for e in random] == ["t3-actv-conv5-random-encoder", "t3-grad-conv5-random-encoder"]
    named = sensitivity.stage_experiments(grid, {Cell(3, "full", encoder="rotation")}, "rotation")
    assert [e.name for e in named] == ["t3-actv-conv5", "t3-full-conv5"]


def test_a_perturbation_goes_over_each_experiments_own_protocol():
    params = load_params("fashion-mnist")
    schedule = sensitivity.perturbations(params)[0]
    e = next(e for e in experiments(params) if e.name == "t3-grad-conv5")
    perturbed = sensitivity.applied(e, schedule).params(params)
    assert perturbed["train"]["grad"]["iterations"] == 2 * params["train"]["grad"]["iterations"]
    assert perturbed["data"]["n_train"] == 16000  # the table's protocol kept


def _rows(head, accuracy, base="rotation", table=3):
    return [{"table": table, "head": head, "layers": "conv5", "theta1": "pretrained", "theta2": "pretrained",
             "omega": "pretrained", "base": base, "seed": s, "accuracy": accuracy + s} for s in range(3)]


def test_substituted_replaces_exactly_the_perturbed_cells():
    frame = pd.DataFrame(_rows("actv", 80) + _rows("grad", 85) + _rows("grad", 70, base="random"))
    perturbed = pd.DataFrame(_rows("grad", 90))
    out = sensitivity.substituted(frame, perturbed)
    assert sorted(out[out.base == "rotation"].query("head == 'grad'").accuracy) == [90, 91, 92]
    assert sorted(out.query("head == 'actv'").accuracy) == [80, 81, 82]
    assert sorted(out[out.base == "random"].accuracy) == [70, 71, 72]
    assert len(out) == len(frame)


def test_outcomes_say_robust_fragile_or_not_perturbed():
    claims = pd.DataFrame({"claim": ["C1", "C2", "C7"], "verdict": ["holds", "holds", "holds"]})
    under = pd.DataFrame({"claim": ["C1", "C2", "C1", "C2"], "verdict": ["holds", "inconclusive", "holds", "holds"],
                          "perturbation": ["schedule ×2", "schedule ×2", "pre-training seed 1", "pre-training seed 1"]})
    out = sensitivity.outcomes(claims, under).set_index("claim")
    assert out.loc["C1", "outcome"] == "robust"
    assert out.loc["C2", "outcome"] == "fragile: schedule ×2 → inconclusive"
    assert out.loc["C7", "outcome"] == "not perturbed"
    assert out.loc["C2", "pre-training seed 1"] == "holds"


def test_deciding_cells_are_the_runs_behind_each_deciding_comparison():
    claims = pd.DataFrame({"claim": ["C1", "C7"], "verdict": ["holds", "holds"],
                           "decided_by_runs": [[(Cell(3, "grad"), 0), (Cell(3, "grad"), 1), (Cell(3, "actv"), 0)], []]})
    assert sensitivity.deciding_cells(claims) == {"C1": {Cell(3, "grad"), Cell(3, "actv")}}


def test_an_imported_base_network_is_not_pretrained_again():
    params = load_params("voc07-resnet18", ["reproduce.sensitivity.design={data: {test_views: 2}}"])
    labels = [(q.name, q.pretraining) for q in sensitivity.perturbations(params)]
    assert labels == [("schedule", None), ("design", None)]


def test_the_stage_retrains_each_claims_deciding_cells_and_judges_the_substituted_frame(monkeypatch, tmp_path):
    """On the committed default report's runs: the stage asks each perturbation for the
    experiments behind the deciding comparisons (and their actv), and a perturbation that costs
    grad 10 points flips C1, which the outcome names; one that changes nothing leaves it robust."""
    from gradfeat_core.suite import reproduce
    from gradfeat_core.suite.claims import verdicts
    from gradfeat_core.experiments.results import ROOT
    frame = read_results(ROOT / "reports" / "fashion-mnist" / "results.csv")
    params = load_params("fashion-mnist", [f"out_dir={tmp_path}"])  # its seed-1 encoder committed: no pre-training
    asked = {}

    def perturbed_runs(params, common, overrides, chosen, perturbation, executor, log):
        asked[perturbation.label] = [e.name for e in chosen]
        rows = frame[frame.experiment.isin([e.name for e in chosen])].copy()
        if perturbation.name == "schedule":
            rows.loc[rows["head"] == "grad", "accuracy"] -= 10
            rows["test_correct"] = None  # seeds alone: the per-image record no longer matches
        return rows
    monkeypatch.setattr(reproduce, "perturbed_runs", perturbed_runs)
    under = reproduce.sensitivity_stage(params, {}, {}, experiments(params), frame, None, "local", print)
    assert set(asked) == {"schedule ×2", "pre-training seed 1"}
    assert {"t3-actv-conv5", "t3-grad-conv5", "t3-finetune-conv5"} <= set(asked["schedule ×2"])
    claims = verdicts(frame)
    out = sensitivity.outcomes(claims, under).set_index("claim")
    assert claims.set_index("claim").loc["C1", "verdict"] == "holds"
    assert out.loc["C1", "outcome"].startswith("fragile: schedule ×2 → ")
    assert out.loc["C1", "pre-training seed 1"] == "holds"
    assert out.loc["C7", "outcome"] == "not perturbed"
