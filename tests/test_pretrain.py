"""BiGAN pre-training on the synthetic set: updates, finiteness, resume, checkpoints, the guard."""
import pandas as pd
import pytest
import torch

from gradfeat_core.experiments.checkpoint import CheckpointError, load_checkpoint, load_into
from gradfeat_core.method.gan import build_bigan
from gradfeat_core.method.nets import Encoder
from gradfeat_core.experiments.errors import UserError
from gradfeat_core.experiments.params import ParamError, load_params
from gradfeat_core.experiments.pretrain import DivergedError, optimisers, pretrain, step
from gradfeat_core.experiments.quality import COLUMNS, load_quality, quality_curve, snapshots
from gradfeat_core.suite.quality import compared, publish, rerun_spread, wide
from gradfeat_core.experiments.results import ROOT, file_sha256
from gradfeat_core.experiments.data import load_dataset
from gradfeat_core.method.rotation import rotated
from gradfeat_core.experiments.run import run_head


def quick(tmp_path, objective="ali", *sets):
    return load_params("quick", [f"out_dir={tmp_path}", "data.n_train=64", "data.n_test=32",
                                 "base.calibrate_images=64", *sets], objective=objective)


@pytest.mark.parametrize("objective", ["ali", "wali"])
def test_one_step_changes_every_network_and_losses_are_finite(objective):
    params = quick("unused", objective)
    data = load_dataset("synthetic", pixel_range=params["base"]["pixel_range"], n_train=16)
    nets = build_bigan(objective, 1, 8, params["base"]["leak"], seed=0)
    before = {k: [p.detach().clone() for p in n.parameters()] for k, n in nets.items()}
    batches = [data.x_train[:8]] * (2 if objective == "wali" else 1)
    p = dict(params["pretrain"], latent=8)
    losses = step(nets, optimisers(nets, p), batches, p, objective)
    assert all(torch.isfinite(torch.tensor(v)) for v in losses.values())
    for name, net in nets.items():
        changed = {n: not torch.equal(a, b) for a, (n, b) in zip(before[name], net.named_parameters())}
        if objective == "wali" and name == "D":
            # The critic's output bias cancels in D(fake) − D(real) and the penalty: no gradient.
            assert not changed.pop("dxz.3.bias")
        assert all(changed.values()), f"{name}: unchanged {[n for n, c in changed.items() if not c]}"


@pytest.mark.parametrize("objective", ["ali", "wali", "rotation"])
def test_resumed_run_ends_with_the_same_weights(tmp_path, objective):
    whole = pretrain(quick(tmp_path / "whole", objective))
    assert whole["status"] == "finished"
    half = pretrain(quick(tmp_path / "split", objective), stop_after=2)
    assert half["status"] == "interrupted" and half["iterations"] == 2
    resumed = pretrain(quick(tmp_path / "split", objective))
    assert resumed["status"] == "finished" and resumed["iterations"] == 4
    a, _ = load_checkpoint(tmp_path / "whole" / "pretrain" / objective / "state.pt")
    b, _ = load_checkpoint(tmp_path / "split" / "pretrain" / objective / "state.pt")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_a_time_budget_stops_cleanly_and_the_next_call_resumes_to_the_same_weights(tmp_path):
    """pretrain.max_minutes: a call checkpoints and returns 'interrupted' once its budget is spent
    (here after every update), and calls after it end where one uninterrupted call ends."""
    whole = pretrain(quick(tmp_path / "whole"))
    budget = quick(tmp_path / "split", "ali", "pretrain.max_minutes=1e-9")
    calls = [pretrain(budget) for _ in range(4)]
    assert [c["status"] for c in calls] == ["interrupted"] * 3 + ["finished"]
    assert [c["iterations"] for c in calls] == [1, 2, 3, 4]
    a, _ = load_checkpoint(tmp_path / "whole" / "pretrain" / "ali" / "state.pt")
    b, meta = load_checkpoint(tmp_path / "split" / "pretrain" / "ali" / "state.pt")
    assert whole["status"] == "finished" and all(torch.equal(a[k], b[k]) for k in a)
    assert meta["iteration"] == 4


def test_outputs_and_encoder_checkpoints_load_into_heads(tmp_path):
    params = quick(tmp_path)
    pretrain(params)
    out = tmp_path / "pretrain" / "ali"
    for name in ("encoder.pt", "random_encoder.pt", "state.pt", "samples.png", "reconstructions.png",
                 "losses.csv", "losses.png", "pretrain.json"):
        assert (out / name).is_file(), name
    enc, rand = Encoder(1, 0.01), Encoder(1, 0.01)
    load_into(enc, out / "encoder.pt", enc.meta("synthetic", [0, 1]))
    load_into(rand, out / "random_encoder.pt", rand.meta("synthetic", [0, 1]))
    assert not torch.equal(enc.conv1[0].weight, rand.conv1[0].weight)
    # the heads take it as their base network; a wali-made encoder is refused by ali settings
    result = run_head(load_params("quick", [f"out_dir={tmp_path}", f"base.checkpoint={out / 'encoder.pt'}",
                                            f"base.random_checkpoint={out / 'random_encoder.pt'}"]))
    assert 0 <= result.accuracy <= 1
    with pytest.raises(CheckpointError, match="leak"):
        run_head(load_params("quick", [f"out_dir={tmp_path}", f"base.checkpoint={out / 'encoder.pt'}"],
                             objective="wali"))


def test_state_of_another_objective_is_refused(tmp_path):
    pretrain(quick(tmp_path))
    src = tmp_path / "pretrain" / "ali" / "state.pt"
    dst = tmp_path / "pretrain" / "wali" / "state.pt"
    dst.parent.mkdir(parents=True)
    dst.write_bytes(src.read_bytes())
    with pytest.raises(CheckpointError, match="objective"):
        pretrain(quick(tmp_path, "wali"))


def test_nan_loss_triggers_the_guard_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    params = quick(tmp_path)
    pretrain(params, stop_after=2)
    state = tmp_path / "pretrain" / "ali" / "state.pt"
    good = state.read_bytes()
    from gradfeat_core.method import gan
    real = gan.ali_losses

    def poisoned(*args):
        d_loss, eg_loss = real(*args)
        return d_loss * float("nan"), eg_loss

    monkeypatch.setattr(gan, "ali_losses", poisoned)  # what ali's update (gan.ali_update) calls
    with pytest.raises(DivergedError, match="diverged at iteration 3.*state.pt"):
        pretrain(params)
    assert state.read_bytes() == good
    import json
    result = json.loads((tmp_path / "pretrain" / "ali" / "pretrain.json").read_text())
    assert result["status"] == "diverged"


def test_objective_and_pixel_range_must_agree(tmp_path):
    with pytest.raises(ParamError, match="pixel_range"):
        pretrain(quick(tmp_path, "ali", "base.pixel_range=[-1, 1]"))


def test_a_retrained_encoder_gets_its_own_omega_bar(tmp_path):
    """ω̄ is keyed by the encoder file's content: retraining in place retrains ω̄ too."""
    from gradfeat_core.experiments.run import omega_path
    pretrain(quick(tmp_path), stop_after=2)
    p = load_params("quick", [f"base.checkpoint={tmp_path / 'pretrain/ali/encoder.pt'}"])
    data = load_dataset("synthetic", n_train=64, n_test=32)
    before = omega_path(p["seed"], data, p["base"], p["train"], tmp_path)
    pretrain(quick(tmp_path))  # continues to 4 iterations and rewrites encoder.pt
    assert omega_path(p["seed"], data, p["base"], p["train"], tmp_path) != before


def test_saved_random_encoder_is_the_one_heads_build_for_random_theta(tmp_path):
    from gradfeat_core.experiments.run import load_encoder
    params = quick(tmp_path)
    pretrain(params, stop_after=1)
    data = load_dataset("synthetic", n_train=64, n_test=32)
    seed = params["base"]["random_seed"]
    saved = load_encoder(params["base"], data, tmp_path / "pretrain/ali/random_encoder.pt", seed,
                         tmp_path)
    built = load_encoder(params["base"], data, None, seed, tmp_path)
    torch.testing.assert_close(saved(data.x_test), built(data.x_test))


def test_dropout_keeps_the_expectation_and_is_off_in_eval():
    from gradfeat_core.method.gan import Dropout
    torch.manual_seed(0)
    x = torch.ones(200_000)
    drop = Dropout(0.2)
    y = drop(x)
    assert (y == 0).float().mean().item() == pytest.approx(0.2, abs=0.005)
    assert y.mean().item() == pytest.approx(1.0, abs=0.01)
    assert set(y.unique().tolist()) == {0.0, 1.25}
    assert torch.equal(drop.eval()(x), x)


# --- rotation prediction ------------------------------------------------------------------

def test_rotated_images_and_labels_against_transpose_and_flip():
    x = torch.randn(3, 2, 5, 5)
    images, labels = rotated(x)
    assert labels.tolist() == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3
    quarter = x.transpose(2, 3).flip(2)  # 90° counter-clockwise, written independently
    assert torch.equal(images[:3], x) and torch.equal(images[3:6], quarter)
    assert torch.equal(images[6:9], x.flip(2).flip(3))
    assert torch.equal(images[9:], quarter.flip(2).flip(3))


def test_rotation_pretraining_learns_and_its_encoder_is_a_base_network(tmp_path):
    params = quick(tmp_path, "rotation", "pretrain.iterations=30", "pretrain.log_every=5",
                   "pretrain.batch_size=16")
    result = pretrain(params)
    out = tmp_path / "pretrain" / "rotation"
    history = pd.read_csv(out / "losses.csv")
    assert list(history.columns) == ["iteration", "loss", "accuracy"]
    assert history.loss.iloc[-1] < 0.8 * history.loss.iloc[0]  # chance is log 4 = 1.39
    assert result["status"] == "finished" and not (out / "samples.png").exists()
    enc = Encoder(1, 0.01)
    load_into(enc, out / "encoder.pt", enc.meta("synthetic", [0, 1]))
    sets = [f"out_dir={tmp_path}", f"base.checkpoint={out / 'encoder.pt'}",
            f"base.random_checkpoint={out / 'random_encoder.pt'}"]
    assert 0 <= run_head(load_params("quick", sets)).accuracy <= 1


def test_random_encoder_reference_runs_every_head_on_the_random_encoder(tmp_path):
    pretrain(quick(tmp_path))
    out = tmp_path / "pretrain" / "ali"
    sets = [f"out_dir={tmp_path}", f"base.checkpoint={out / 'encoder.pt'}",
            f"base.random_checkpoint={out / 'random_encoder.pt'}", "model.head=grad"]
    reference = run_head(load_params("quick", [*sets, "base.encoder=random"]))
    # the same as naming the random encoder's file as the pre-trained one (own ω̄, own cache)
    same = run_head(load_params("quick", [*sets, f"base.checkpoint={out / 'random_encoder.pt'}"]))
    pretrained = run_head(load_params("quick", sets))
    assert reference.accuracy == same.accuracy
    assert reference.loss_history == same.loss_history != pretrained.loss_history


def test_snapshots_are_the_encoder_as_it_stood_and_leave_training_unchanged(tmp_path):
    plain = pretrain(quick(tmp_path / "plain", "rotation"))
    pretrain(quick(tmp_path / "snap", "rotation", "pretrain.snapshots=[0, 2, 4]"))
    out = tmp_path / "snap" / "pretrain" / "rotation"
    assert sorted(snapshots(out)) == [0, 2, 4]
    a, _ = load_checkpoint(tmp_path / "plain" / "pretrain" / "rotation" / "encoder.pt")
    last, meta = load_checkpoint(out / "snapshots" / "encoder-0000004.pt")
    first, _ = load_checkpoint(out / "snapshots" / "encoder-0000000.pt")
    assert meta["iterations"] == 4 and plain["status"] == "finished"
    assert all(torch.equal(a[k], last[k]) for k in a)  # the last snapshot is encoder.pt itself
    assert not torch.equal(first["conv1.0.weight"], last["conv1.0.weight"])
    with pytest.raises(ParamError, match="pretrain.snapshots"):
        quick(tmp_path, "rotation", "pretrain.snapshots=[5]")


def test_feature_quality_curve_probes_every_snapshot_and_the_random_encoder(tmp_path):
    sets = [f"out_dir={tmp_path}", "data.n_train=64", "data.n_test=32", "base.calibrate_images=64",
            "pretrain.snapshots=[0, 4]", "train.val_fraction=0.25", "train.eval_every=20"]
    pretrain(load_params("quick", sets, objective="rotation"))
    frame = quality_curve("quick", sets, objective="rotation", log=lambda msg: None)
    assert list(frame.probe) == ["actv"] * 3 + ["grad"] * 3  # pretrain.quality_heads
    assert list(frame.encoder) == ["pretrained", "pretrained", "random"] * 2
    assert list(frame.iteration[:2]) == [0, 4] and frame.validation_accuracy.between(0, 1).all()
    out = tmp_path / "pretrain" / "rotation"
    assert (out / "quality.png").is_file()
    assert load_quality(out / "quality.csv").validation_accuracy.max() <= 100
    # the probe is Table 3's actv run on that encoder file: the same number run by hand
    by_hand = run_head(load_params("quick", [*sets, "model.head=actv", f"out_dir={tmp_path / 'h'}",
                                             f"base.checkpoint={out / 'snapshots' / 'encoder-0000004.pt'}"]))
    assert max(a for _, a in by_hand.validation_curve) == frame.validation_accuracy[1]
    by_hand = run_head(load_params("quick", [*sets, "model.head=grad", f"out_dir={tmp_path / 'h'}",
                                             "base.encoder=random"]))
    assert max(a for _, a in by_hand.validation_curve) == frame.validation_accuracy[5]
    # published for committing: the encoder's sha256 is what a profile pins
    digest = publish([out], tmp_path / "committed")
    assert digest == file_sha256(out / "encoder.pt") == file_sha256(tmp_path / "committed" / "encoder.pt")
    assert pd.read_csv(tmp_path / "committed" / "quality.csv").equals(pd.read_csv(out / "quality.csv"))


def test_a_committed_encoder_is_checked_by_its_sha256(tmp_path):
    pretrain(quick(tmp_path))
    encoder = tmp_path / "pretrain" / "ali" / "encoder.pt"
    digest = file_sha256(encoder)
    sets = [f"out_dir={tmp_path}", f"base.checkpoint={encoder}"]
    assert load_params("quick", [*sets, f"base.checkpoint_sha256={digest}"])["base"]["checkpoint"] == str(encoder)
    with pytest.raises(ParamError, match="base.checkpoint_sha256.*checkpoint=null"):
        load_params("quick", [*sets, f"base.checkpoint_sha256={'f' * 64}"])


def test_a_curve_reads_back_in_percent_as_one_column_per_probe_and_seed(tmp_path):
    """load_quality, wide (the report's table of the curves) and rerun_spread."""
    pd.DataFrame({"pretrain_seed": [0, 0, 0], "iteration": [0, 10, None],
                  "encoder": ["pretrained", "pretrained", "random"], "probe": ["actv"] * 3,
                  "validation_accuracy": [0.80, 0.85, 0.79], "test_accuracy": [0.8, 0.85, 0.79],
                  "converged": [True] * 3, "probe_iterations": [100] * 3}).to_csv(tmp_path / "quality.csv", index=False)
    frame = load_quality(tmp_path / "quality.csv")
    assert frame.validation_accuracy.tolist() == [80.0, 85.0, 79.0]
    assert list(wide(frame).columns) == ["actv, pre-training seed 0"]
    both = pd.concat([frame, frame.assign(probe="grad", validation_accuracy=frame.validation_accuracy + 1)])
    table = wide(both)
    assert list(table.columns) == ["actv, pre-training seed 0", "grad, pre-training seed 0"]
    assert table.loc["10 updates"].tolist() == [85.0, 86.0]
    assert rerun_spread(both) == ([85.0], 79.0)  # the activation probe's, not the gradient's


def test_every_committed_curve_is_in_the_current_layout_and_reads_as_the_report_reads_it():
    """encoders/**/quality.csv have quality.COLUMNS (no reader converts an older layout), and
    base.compared's table reads the fashion-mnist profile's base network beside every tried one."""
    encoders = ROOT / "encoders"
    committed = sorted(encoders.rglob("quality.csv"))
    assert len(committed) >= 3
    for path in committed:
        assert list(pd.read_csv(path).columns) == COLUMNS, path
    tried = sorted(p for p in (encoders / "tried").iterdir() if p.is_dir())
    table = compared(encoders / "fashion-mnist-rotation", tried)
    assert table.folder.tolist() == ["fashion-mnist-rotation", *(p.name for p in tried)]
    assert table.used.tolist() == [True] + [False] * len(tried) and (table.probe == "actv").all()


def test_a_pretraining_tried_is_published_without_its_encoder_and_compared_by_its_last_snapshot(tmp_path, tried_run):
    """base.compared: a tried pre-training's record and curve (publish-encoder --curves-only) sets
    its last snapshot's probe against its own random encoder beside the base network's."""
    run = tmp_path / "run"
    (run / "quality.csv").parent.mkdir()
    with pytest.raises(UserError, match="no quality.csv.*quality"):
        publish([run], tmp_path / "tried", encoder=False)
    tried_run(run)
    assert publish([run], tmp_path / "tried", encoder=False) is None
    assert not (tmp_path / "tried" / "encoder.pt").exists() and (tmp_path / "tried" / "quality.png").is_file()
    table = compared(None, [tmp_path / "tried"])
    assert list(table.probe) == ["actv", "grad"] and list(table.updates) == [300, 300]
    assert table["pre-trained − random"].round(6).tolist() == [-3.0, 4.0]  # seed 0's last snapshot
    assert list(table.converged) == [True, False] and table.minutes[0] == 10.0 and not table.used.any()
    assert compared(tmp_path / "tried", [])["used"].all()
    # a profile names it; a folder without the curve is refused before any work
    sets = [f"out_dir={tmp_path}"]
    assert load_params("quick", [*sets, f"base.compared=[{tmp_path / 'tried'}]"])["base"]["compared"] == [str(tmp_path / "tried")]
    with pytest.raises(ParamError, match="base.compared.*publish-encoder.*--curves-only"):
        load_params("quick", [*sets, f"base.compared=[{run.parent}]"])


TOY_OBJECTIVE = '''"""A toy objective: the encoder learns each image's mean pixel."""
import torch

from .nets import FEATURE_DIM, Encoder
from .registry import Objective, one_loss, register


class Toy(torch.nn.Module):
    def __init__(self, in_channels, leak):
        super().__init__()
        self.features, self.head = Encoder(in_channels, leak), torch.nn.Linear(FEATURE_DIM, 1)

    def forward(self, x):
        return self.head(self.features(x)).squeeze(1)


def loss(nets, x, p):
    return (((nets["E"](x) - x.mean((1, 2, 3))) ** 2).mean(),)


register(Objective("toy", "a toy objective", "ali", {"loss": "squared error"},
                   build=lambda c, p, leak, seed: {"E": Toy(c, leak)}, update=one_loss(loss)))
'''


def test_a_new_objective_is_one_module_and_one_params_file(tmp_path):
    """Dropped into a copy of the repository, gradfeat_core/method/toy.py (which registers
    itself) and params/objectives/toy.yaml are all `pretrain --objective toy` needs; and every
    shipped objective has its params file, an architecture and --objective's choice."""
    import shutil
    import subprocess
    import sys
    from gradfeat_core.cli import parser
    from gradfeat_core.experiments.results import ROOT
    from gradfeat_core.method.registry import ARCHITECTURES, OBJECTIVES
    shipped = {p.stem for p in (ROOT / "params" / "objectives").glob("*.yaml")}
    assert shipped == set(OBJECTIVES) and all(o.arch in ARCHITECTURES for o in OBJECTIVES.values())
    choices = next(a.choices for a in parser()._subparsers._group_actions[0].choices["pretrain"]._actions
                   if a.dest == "objective")
    assert sorted(choices) == sorted(OBJECTIVES)

    copy = tmp_path / "repo"
    for top in ("gradfeat_core", "params"):
        shutil.copytree(ROOT / top, copy / top, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "gradfeat_core" / "method" / "toy.py").write_text(TOY_OBJECTIVE)
    (copy / "params" / "objectives" / "toy.yaml").write_text("pretrain:\n  objective: toy\n  init_std: null\n")
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("GRADFEAT_")}
    done = subprocess.run([sys.executable, "-m", "gradfeat_core", "pretrain", "--profile", "quick",
                           "--objective", "toy", "--set", f"out_dir={tmp_path / 'out'}"], cwd=copy,
                          env=dict(env, PYTHONPATH=str(copy)), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    out = tmp_path / "out" / "pretrain" / "toy"
    assert "toy finished after 4 iterations" in done.stdout
    assert (out / "encoder.pt").is_file() and (out / "losses.csv").read_text().startswith("iteration,loss")


@pytest.mark.skipif(not __import__("os").path.isdir("/usr/share/datasets/fashion-mnist"),
                    reason="needs Debian's dataset-fashion-mnist")
@pytest.mark.parametrize("objective", ["supervised", "rotation-resnet18"])
def test_a_resnet_pretrained_on_the_source_task_transfers_to_the_mosaics(tmp_path, objective):
    """The stand-in of Tables 2 and 4: a ResNet18 pre-trained on fashion-source (with labels, or
    by rotation) learns, and its encoder is the base network of a multi-label head on
    fashion-mosaic; the same encoder is refused by a head on another single-label data set."""
    params = load_params("quick", [f"out_dir={tmp_path}", "data.dataset=fashion-source",
                                   "data.n_train=256", "data.n_test=32", "base.calibrate_images=64",
                                   "pretrain.iterations=30", "pretrain.log_every=5",
                                   "pretrain.batch_size=32"], objective=objective)
    result = pretrain(params)
    out = tmp_path / "pretrain" / objective
    history = pd.read_csv(out / "losses.csv")
    assert result["status"] == "finished" and list(history.columns) == ["iteration", "loss", "accuracy"]
    assert history.loss.iloc[-1] < 0.8 * history.loss.iloc[0]
    sets = [f"out_dir={tmp_path}", f"base.checkpoint={out / 'encoder.pt'}",
            f"base.random_checkpoint={out / 'random_encoder.pt'}", "base.arch=resnet18",
            "base.leak=0", "model.layers=block8", "data.n_train=64", "data.n_test=32",
            "base.calibrate_images=64", "model.head=grad", "train.grad.iterations=5"]
    head = run_head(load_params("quick", [*sets, "data.dataset=fashion-mosaic"]))
    assert head.metric == "mAP" and 0 < head.mean_ap <= 1
    with pytest.raises(CheckpointError, match="dataset='fashion-source'"):
        run_head(load_params("quick", [*sets, "data.dataset=fashion-mnist"]))
