"""Training loop, heads and the frozen-part cache on the synthetic set (CPU, seconds)."""
import os

import pytest
import torch

from gradfeat_core.experiments.params import load_params
from gradfeat_core.method import tangent
from gradfeat_core.experiments.run import (base_networks, load_encoder, cache_bytes, frozen_inputs, frozen_part,
                               gradient_network, run_experiment, run_head, split_network)
from gradfeat_core.experiments.data import load_dataset
from gradfeat_core.method.linear_model import build_head
from gradfeat_core.method.nets import FEATURE_DIM, fold_batchnorm, parse_layers, random_encoder, split
from gradfeat_core.experiments.train import (DeviceError, Evaluation, FrozenInputs, Validation, batch_order, cuda_problem, pick_device,
                                 predict, train, validation_split)


def quick(tmp_path, *sets):
    return load_params("quick", [f"out_dir={tmp_path}", *sets])


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    params = load_params("quick")
    data = load_dataset("synthetic", n_train=128, n_test=64)
    store = tmp_path_factory.mktemp("checkpoints")
    return params, data, base_networks(params["base"], params["model"], data, store)


@pytest.mark.parametrize("head", ["actv", "grad", "full", "finetune"])
@pytest.mark.parametrize("spec", ["conv5", "conv3-5"])
def test_cached_and_uncached_logits_agree(setting, head, spec):
    params, data, nets = setting
    layers = parse_layers(spec)
    torch.manual_seed(0)
    omega = torch.nn.Linear(FEATURE_DIM, data.num_classes)
    source = nets["pretrained"] if head == "finetune" else gradient_network(params["model"], nets)
    bottom, top = split(source, layers)
    model = build_head(head, omega, top, layers)
    with torch.no_grad():  # a non-zero w2, so that the gradient term contributes
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    frozen = frozen_part(head, nets, bottom)
    cached = predict(model, FrozenInputs(frozen, data.x_test, cache=True, batch_size=50), 16)
    uncached = predict(model, FrozenInputs(frozen, data.x_test, cache=False), 16)
    torch.testing.assert_close(cached, uncached, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("head", ["actv", "grad", "full", "finetune"])
@pytest.mark.parametrize("spec", ["conv5", "conv4-5", "conv3-5"])
def test_each_head_lowers_its_loss(tmp_path, head, spec):
    if head == "actv" and spec != "conv5":
        pytest.skip("the activation head does not depend on θ2")
    result = run_head(quick(tmp_path, f"model.head={head}", f"model.layers={spec}"))
    losses = [loss for _, loss in result.loss_history]
    assert losses[-1] < 0.7 * losses[0], losses
    assert result.accuracy > 0.5  # ten classes: chance is 0.1


def test_same_seed_gives_identical_metrics(tmp_path):
    runs = [run_head(quick(tmp_path / str(i), "model.head=full")) for i in range(2)]
    assert runs[0].loss_history == runs[1].loss_history
    assert runs[0].accuracy == runs[1].accuracy
    other = run_head(quick(tmp_path / "other", "model.head=full", "seed=1"))
    assert other.loss_history != runs[0].loss_history


def test_cached_and_uncached_training_agree(tmp_path):
    a = run_head(quick(tmp_path / "a", "model.head=full", "model.cache=true"))
    b = run_head(quick(tmp_path / "b", "model.head=full", "model.cache=false"))
    assert [l for _, l in a.loss_history] == pytest.approx([l for _, l in b.loss_history],
                                                              rel=1e-4)


def test_table1_ablation_networks_differ(tmp_path):
    """Random θ in the gradient term changes the features; the activation term does not."""
    base = run_head(quick(tmp_path, "model.head=grad"))
    rand = run_head(quick(tmp_path, "model.head=grad", "model.theta1=random",
                          "model.theta2=random", "model.omega=random"))
    assert base.loss_history != rand.loss_history


def test_batch_order_covers_each_epoch_once():
    g = torch.Generator().manual_seed(0)
    batches = list(batch_order(10, 4, 5, g))  # 20 indices: two full epochs
    assert all(len(b) == 4 for b in batches)
    seen = torch.cat(batches)
    assert sorted(seen[:10].tolist()) == list(range(10))
    assert sorted(seen[10:].tolist()) == list(range(10))


def test_full_model_shares_the_forward_pass_exactly(setting):
    """When the gradient term uses the pre-trained network, f_θ̄(x) from the JVP's own primal
    equals the separately computed features."""
    params, data, nets = setting
    layers = parse_layers("conv4-5")
    bottom, top = split(nets["pretrained"], layers)
    torch.manual_seed(0)
    model = build_head("full", torch.nn.Linear(FEATURE_DIM, data.num_classes), top, layers)
    logits = [predict(model, FrozenInputs(frozen_part("full", nets, bottom, shared), data.x_test))
              for shared in (True, False)]
    torch.testing.assert_close(logits[0], logits[1])


def test_cache_budget_drops_the_primal_record_then_everything(tmp_path, setting):
    """Over cache.max_gib the primal record is recomputed per batch, then every frozen part; each
    time one line says so, and the logits stay the same."""
    _, data, nets = setting
    params = quick(tmp_path, "model.head=full", "model.layers=conv4-5")
    images = len(data.x_train) + len(data.x_test)
    bottom, top = split_network(params["model"], nets)
    sizes = cache_bytes(frozen_part("full", nets, bottom, layers=tangent.plan(top)), data.x_train)
    gib = {name: size * images / 2 ** 30 for name, size in sizes.items()}
    torch.manual_seed(0)
    model = build_head("full", torch.nn.Linear(FEATURE_DIM, data.num_classes), top,
                       parse_layers("conv4-5"))
    with torch.no_grad():
        for p in model.w2:
            p.add_(0.01 * torch.randn_like(p))
    budgets = {"all": 1.01 * (gib["z"] + gib["primal"]), "z only": 1.01 * gib["z"],
               "none": 0.5 * gib["z"]}
    logits, cached_parts = {}, {}
    for name, budget in budgets.items():
        lines = []
        cache = dict(params["cache"], max_gib=budget)
        train, test = frozen_inputs(params["model"], cache, 1000, data, nets, log=lines.append)
        cached_parts[name] = None if test.cache is None else sorted(test.cache)
        assert len(lines) == (0 if name == "all" else 1), lines
        logits[name] = predict(model, test, 16)
    assert cached_parts == {"all": ["primal", "z"], "z only": ["z"], "none": None}
    torch.testing.assert_close(logits["z only"], logits["all"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(logits["none"], logits["all"], rtol=1e-5, atol=1e-6)


def test_a_random_encoder_is_calibrated_once_and_loaded_as_it_was(tmp_path):
    """The random encoder of a seed is kept under out_dir/checkpoints after its first
    calibration; later runs load exactly the network a fresh calibration gives, and another
    seed or data subset is another file."""
    base = quick(tmp_path)["base"]
    data = load_dataset("synthetic", n_train=128, n_test=64)
    fresh = load_encoder(base, data, None, 7, tmp_path)
    files = list(tmp_path.glob("random-encoder-*.pt"))
    assert len(files) == 1
    again = load_encoder(base, data, None, 7, tmp_path)
    reference = fold_batchnorm(random_encoder(data.in_channels, base["leak"], base["batchnorm"], 7,
                                              data.x_train, base["calibrate_images"]))
    for a, b, c in zip(fresh.state_dict().values(), again.state_dict().values(),
                       reference.state_dict().values()):
        assert torch.equal(a, b) and torch.equal(a, c)
    load_encoder(base, data, None, 8, tmp_path)
    load_encoder(base, load_dataset("synthetic", n_train=64, n_test=64), None, 7, tmp_path)
    assert len(list(tmp_path.glob("random-encoder-*.pt"))) == 3


def test_validation_split_is_seeded_disjoint_and_the_same_for_every_run():
    a_train, a_val = validation_split(1000, 0.1, seed=0)
    b_train, b_val = validation_split(1000, 0.1, seed=0)
    assert len(a_val) == 100 and len(a_train) == 900
    assert torch.equal(a_val, b_val) and torch.equal(a_train, b_train)
    assert not set(a_val.tolist()) & set(a_train.tolist())
    assert not torch.equal(validation_split(1000, 0.1, seed=1)[1], a_val)


def test_validation_curve_starts_at_the_activation_baseline_and_flags_convergence(tmp_path):
    """The full model starts at w1 = ω̄, w2 = 0, so its validation accuracy at iteration 0 is
    the activation head's; patience stops training on a plateau and keeps the best parameters;
    a run stopped by its cap before it could plateau is not converged."""
    sets = ["train.val_fraction=0.25", "train.eval_every=5", "train.patience=3"]
    actv = run_head(quick(tmp_path, "model.head=actv", *sets))
    full = run_head(quick(tmp_path, "model.head=full", *sets, "train.full.iterations=400"))
    curve = full.validation_curve
    assert curve[0][0] == 0
    actv_curve = actv.validation_curve
    best_actv = max(acc for _, acc in actv_curve)
    assert curve[0][1] == pytest.approx(best_actv)  # ω̄ is actv's best-validation classifier
    assert full.convergence == "converged" and full.stopped_early and full.iterations < 400
    assert full.validation_se is None  # it plateaued: no gain at the cap to judge
    assert full.best_iteration == max(curve, key=lambda c: c[1])[0]
    # One evaluation only, at the cap, after the start: the run cannot have plateaued.
    capped = run_head(quick(tmp_path, "model.head=full", "train.val_fraction=0.25",
                            "train.eval_every=1000", "train.patience=3", "train.full.iterations=5"))
    assert capped.iterations == 5 and capped.convergence == (
        "never trained" if capped.best_iteration == 0 else "at its cap")


class Scripted(Validation):
    """A Validation of n items whose evaluations are scripted, in order: a score s (the first
    round(s · n) items right) or (lo, hi) (items lo..hi−1 right), scored as their share right."""

    def __init__(self, curve, n=100):
        super().__init__(None, torch.zeros(n, dtype=torch.long))
        self.script = iter(curve)

    def __call__(self, model):
        item, step = torch.arange(self.size), next(self.script)
        right = (item >= step[0]) & (item < step[1]) if isinstance(step, tuple) else item < round(step * self.size)
        return Evaluation(right.float().mean().item(), right)


def scripted_training(curve, stepsize=1000, n=100, **stopping):
    """train() on a small linear problem whose validation accuracies are `curve`, in order."""
    torch.manual_seed(0)
    model, x = torch.nn.Linear(4, 2), torch.randn(64, 4)
    schedule = {"optimizer": "sgd", "lr": 0.1, "weight_decay": 0.0, "iterations": len(curve) - 1,
                "stepsize": stepsize}
    return train(model, x, (x[:, 0] > 0).long(), schedule, 16, validate=Scripted(curve, n),
                 eval_every=1, **stopping)


def test_no_early_stop_before_min_iterations_and_a_best_at_the_start_never_trained():
    """The full model's dip: below its start for longer than the patience, then above it. Without
    a floor the run stops with its best at iteration 0, never trained; with the floor it trains
    through the dip and stops on its real plateau."""
    dip = [0.80, 0.70, 0.70, 0.70, 0.75, 0.82, 0.85, 0.85, 0.85, 0.85, 0.85, 0.85]
    early = scripted_training(dip, patience=3)
    assert early.stopped_early and early.iterations == 3
    assert early.best_iteration == 0 and early.convergence == "never trained"
    floored = scripted_training(dip, patience=3, min_iterations=6)
    assert floored.best_iteration == 6 and floored.iterations == 9
    assert floored.stopped_early and floored.convergence == "converged"


def test_a_best_at_the_start_kept_through_two_halvings_is_converged():
    """Nothing to gain, not a dip: a run never above its start is converged only when it stopped
    after its learning rate had halved twice (to a quarter of its start); before, never trained."""
    flat = [0.80, 0.79, 0.78, 0.79, 0.78, 0.79, 0.78, 0.79, 0.78, 0.79, 0.78]
    slow = scripted_training(flat, stepsize=3, patience=3, min_iterations=5)  # halved at 3, 6
    assert slow.best_iteration == 0 and slow.iterations == 5 and slow.convergence == "never trained"
    decayed = scripted_training(flat, stepsize=3, patience=3, min_iterations=6)
    assert decayed.best_iteration == 0 and decayed.iterations == 6 and decayed.convergence == "converged"


def test_patience_needs_a_validation_split():
    from gradfeat_core.experiments.params import ParamError
    with pytest.raises(ParamError, match="train.val_fraction"):
        load_params("quick", ["train.patience=3"])


def test_learning_rate_grid_keeps_the_best_on_validation_and_records_every_score(tmp_path):
    """Each learning rate of the grid trains from the same start; the one best on validation is
    kept, and it is exactly the run that learning rate alone gives."""
    sets = ["train.val_fraction=0.25", "train.eval_every=10", "train.patience=2"]
    run_head(quick(tmp_path, "model.head=actv", *sets))
    grid = run_head(quick(tmp_path, "model.head=grad", *sets, "train.grad.lr_grid=[1.0e-4, 0.1]"))
    scores = {g["lr"]: g["validation_accuracy"] for g in grid.trials}
    assert list(scores) == [1e-4, 0.1] and all(0 <= v <= 1 for v in scores.values())
    assert grid.lr == max(scores, key=scores.get)
    alone = run_head(quick(tmp_path, "model.head=grad", *sets, f"train.grad.lr={grid.lr}"))
    assert alone.accuracy == grid.accuracy and alone.loss_history == grid.loss_history
    assert len(alone.trials) == 1 and alone.lr == grid.lr


def test_the_first_seed_chooses_the_learning_rate_for_the_others(tmp_path):
    """run_experiment: the grid is searched once, on the first seed (the validation split is the
    same for every seed); later seeds train at the chosen rate alone, and say where it came from."""
    sets = ["train.val_fraction=0.25", "train.eval_every=10", "train.patience=2",
            "train.grad.lr_grid=[1.0e-4, 0.1]"]
    first, second = run_experiment(quick(tmp_path, "model.head=grad", *sets), [0, 1])
    assert [g["lr"] for g in first.trials] == [1e-4, 0.1] and first.lr_chosen_on_seed == 0
    assert [g["lr"] for g in second.trials] == [first.lr] and second.lr_chosen_on_seed == 0
    alone = run_head(quick(tmp_path, "model.head=grad", *sets[:3], f"train.grad.lr={first.lr}", "seed=1"))
    assert alone.loss_history == second.loss_history


def test_alternatives_without_a_split_keep_the_better_on_test_as_the_paper_reports_fine_tuning(tmp_path):
    """train.finetune.alternatives with no validation split (the paper's VOC07/COCO2014
    fine-tuning: Adam and SGD, the better reported): every schedule trains from the same start,
    each records its test score, the better is kept (and is exactly that schedule's run alone),
    the first seed chooses and the second trains the choice alone."""
    sets = ["model.head=finetune", "train.val_fraction=0", "train.finetune.iterations=30",
            "train.finetune.optimizer=adam", "train.finetune.lr=1.0",  # far too high: the worse
            "train.finetune.alternatives=[{optimizer: sgd, lr: 1.0e-5, weight_decay: 5.0e-5}]"]
    run_head(quick(tmp_path, "model.head=actv", "train.val_fraction=0"))
    first, second = run_experiment(quick(tmp_path, *sets), [0, 1])
    tried = [(g["optimizer"], g["lr"], g["weight_decay"]) for g in first.trials]
    assert tried == [("adam", 1.0, load_params("quick")["train"]["finetune"]["weight_decay"]), ("sgd", 1e-5, 5e-5)]
    scores = [g["test_score"] for g in first.trials]
    assert 0 <= scores[0] < scores[1] <= 1  # the second is kept, not merely the first
    kept = first.trials[1]
    assert first.trial == {k: kept[k] for k in ("optimizer", "lr", "weight_decay")}
    assert first.accuracy == max(scores) and first.trial_chosen_on == "test" and first.lr_chosen_on_seed == 0
    assert [g["optimizer"] for g in second.trials] == [first.trial["optimizer"]]
    assert second.trial == first.trial and second.trial_chosen_on == "test" and second.lr_chosen_on_seed == 0
    assert second.trials[0]["test_score"] is None  # one trial: nothing chosen on test
    alone = run_head(quick(tmp_path, *sets[:3], *(f"train.finetune.{k}={v}" for k, v in first.trial.items()),
                           "train.finetune.alternatives=[]"))
    assert alone.accuracy == first.accuracy and alone.loss_history == first.loss_history
    assert alone.trial_chosen_on is None and alone.lr_chosen_on_seed is None


def test_alternatives_with_a_split_are_chosen_on_validation(tmp_path):
    sets = ["train.val_fraction=0.25", "train.eval_every=10", "train.patience=2"]
    run_head(quick(tmp_path, "model.head=actv", *sets))
    result = run_head(quick(tmp_path, "model.head=grad", *sets,
                            "train.grad.alternatives=[{lr: 1.0e-4}, {optimizer: adam, lr: 1.0e-3}]"))
    scores = [g["validation_accuracy"] for g in result.trials]
    assert len(scores) == 3 and all(g["test_score"] is None for g in result.trials)
    assert result.trials[scores.index(max(scores))]["lr"] == result.lr and result.trial_chosen_on == "validation"


@pytest.mark.parametrize("value", ["[{optimizer: rmsprop}]", "[{lr: -1}]", "[{lr: true}]", "[{momentum: 0.5}]",
                                   "[{}]", "[{weight_decay: -1.0e-5}]"])
def test_a_bad_alternative_is_named(value):
    from gradfeat_core.experiments.params import ParamError
    with pytest.raises(ParamError, match="train.finetune.alternatives.*optimizer \\(sgd \\| adam\\)") as e:
        load_params("quick", [f"train.finetune.alternatives={value}"])
    assert "\n" not in str(e.value)


def test_alternatives_stay_out_of_run_keys_while_empty():
    from gradfeat_core.experiments.params import keyed
    p = load_params("quick")
    k = keyed(p)
    assert all("alternatives" not in k["train"][h] for h in ("actv", "grad", "full", "finetune"))
    assert all("alternatives" in p["train"][h] for h in ("actv", "grad", "full", "finetune"))  # untouched
    assert "alternatives" in keyed(load_params("quick", ["train.full.alternatives=[{lr: 0.5}]"]))["train"]["full"]


@pytest.mark.parametrize("value,match", [("[0.1, -1]", "positive"), ("[0.1, true]", "positive"),
                                         ("[0.01, 0.1]", "val_fraction")])
def test_a_bad_learning_rate_grid_is_named(value, match):
    from gradfeat_core.experiments.params import ParamError
    with pytest.raises(ParamError, match=f"train.full.lr_grid.*{match}"):
        load_params("quick", [f"train.full.lr_grid={value}"])


def test_learning_rates_written_as_exponents_are_numbers():
    p = load_params("quick", ["train.val_fraction=0.1", "train.actv.lr_grid=[1e-3, 1.0e-2]"])
    assert p["train"]["actv"]["lr_grid"] == [0.001, 0.01]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine where CUDA cannot be used")
def test_cuda_without_a_usable_gpu_is_a_one_line_error():
    with pytest.raises(DeviceError, match=r"device is cuda but CUDA cannot be used: .*set device: cpu") as e:
        pick_device("cuda")
    assert "\n" not in str(e.value)
    assert pick_device("auto").type == "cpu"


def test_a_pytorch_build_without_cuda_is_named(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)
    assert "has no CUDA support" in cuda_problem()
    with pytest.raises(DeviceError, match="no CUDA support"):
        pick_device("cuda:0")


def test_the_full_models_w1_trains_at_its_own_rate():
    """train.full.w1_lr: w1 in a group of its own at that rate, w2 at lr, each trained tensor in
    exactly one group; 0 (the default) keeps one group, as does every other head. One SGD step
    from zero momentum moves w1 by w1_lr times its gradient."""
    from gradfeat_core.experiments.train import param_groups, make_optimizer
    torch.manual_seed(0)
    from gradfeat_core.method.nets import Encoder
    net = fold_batchnorm(Encoder(in_channels=1).reset_parameters())
    layers = parse_layers("conv5", net.LAYERS)
    _, top = split(net, layers)
    omega = torch.nn.Linear(FEATURE_DIM, 10)
    model = build_head("full", omega, top, layers)
    schedule = {"optimizer": "sgd", "lr": 1.0, "w1_lr": 0.01, "weight_decay": 0.0, "stepsize": 10}
    groups = param_groups(model, schedule)
    trained = {id(p) for p in model.parameters() if p.requires_grad}
    assert sorted(id(p) for g in groups for p in g["params"]) == sorted(trained)
    assert [g.get("lr") for g in groups] == [None, 0.01]
    assert len(param_groups(model, dict(schedule, w1_lr=0.0))) == 1
    assert len(param_groups(build_head("grad", omega, top, layers), schedule)) == 1
    opt, _ = make_optimizer(groups, schedule)
    before = model.w1.weight.detach().clone()
    model.w1.weight.grad = torch.ones_like(before)
    for p in model.w2:
        p.grad = torch.zeros_like(p)
    model.w1.bias.grad = torch.zeros_like(model.w1.bias)
    opt.step()
    assert torch.allclose(before - model.w1.weight.detach(), torch.full_like(before, 0.01))


def test_a_gain_at_the_cap_within_its_paired_standard_error_is_converged():
    """At its cap a run whose last `patience` evaluations beat the best before them by no more
    than the standard error of that gain, paired on the validation items, has plateaued; a
    larger gain is 'at its cap'. By hand, on 100 items, against the best before (items 0-85):
    - items 2-88 right (+0.01): d is −1 on 2 items, +1 on 3, so Σd = 1, Σd² = 5,
      sd² = (5 − 100 · 0.01²) / 99, SE = sd / 10 = 0.02245 ≥ 0.01: converged;
    - items 0-89 right (+0.04): Σd = Σd² = 4, sd² = (4 − 100 · 0.04²) / 99, SE = 0.01969 < 0.04."""
    at_cap = dict(patience=3, min_iterations=100)
    before = [0.80, 0.85, 0.86, 0.86]  # the best before the window: 0.86 (items 0-85)
    creep = scripted_training(before + [0.86, 0.86, (2, 89)], **at_cap)
    assert creep.convergence == "converged"
    assert creep.validation_se == pytest.approx(((5 - 100 * 0.01 ** 2) / 99) ** 0.5 / 10)
    climb = scripted_training(before + [0.86, 0.86, (0, 90)], **at_cap)
    assert climb.convergence == "at its cap"
    assert climb.validation_se == pytest.approx(((4 - 100 * 0.04 ** 2) / 99) ** 0.5 / 10)
    assert round(climb.validation_se, 5) == 0.01969
    # the best before the window, not its last evaluation: 0.86 (iteration 1), not 0.84
    late = scripted_training([0.80, 0.86, 0.84, 0.84, 0.85, 0.85, (0, 90)], **at_cap)
    assert late.convergence == "at its cap" and late.validation_se == climb.validation_se
    # too short to tell (no evaluation before the window): at its cap, no SE
    short = scripted_training([0.5, 0.6], **at_cap)
    assert short.convergence == "at its cap" and short.validation_se is None
    # a plateau within the patience before the cap is converged whatever the gain before it
    assert scripted_training(before + [0.90, 0.89, 0.89, 0.89], **at_cap).convergence == "converged"


def test_the_paired_standard_error_of_an_accuracy_gain_by_hand():
    """Validation.gain_se for accuracy: sd of the per-item differences of correctness / √n.
    a = 1101, b = 1000: d = 0101, mean 1/2, sd √(1/3), SE √(1/3) / 2."""
    labels = torch.tensor([0, 1, 0, 1])
    validation = Validation(lambda model: model, labels)
    a = validation(torch.tensor([[1.0, 0], [0, 1], [0, 1], [0, 1]]))  # right, right, wrong, right
    b = validation(torch.tensor([[1.0, 0], [1, 0], [0, 1], [1, 0]]))  # right, wrong, wrong, wrong
    assert (a.score, b.score) == (0.75, 0.25)
    assert validation.gain_se(a.items, b.items) == pytest.approx((1 / 3) ** 0.5 / 2)
    assert validation.gain_se(a.items, a.items) == 0.0


def test_the_jackknife_standard_error_of_a_map_gain_leaves_out_one_group_at_a_time():
    """Validation.gain_se for mAP against a direct delete-a-group jackknife of the difference
    of two score matrices' mAPs, each by metrics.mean_average_precision on what is left:
    var = (G − 1)/G · Σ_g (δ_(−g) − mean δ_(−))², over metrics.jackknife_groups' groups."""
    import numpy as np
    from sklearn.metrics import average_precision_score
    from gradfeat_core.experiments.metrics import jackknife_groups, mean_average_precision
    rng = np.random.default_rng(0)
    n, classes, groups = 60, 3, 6
    labels = (rng.random((n, classes)) < 0.4).astype(np.int64)
    labels[:3] = 1  # every class has a positive in every leave-one-group-out subset
    a, b = rng.normal(size=(n, classes)) + labels, rng.normal(size=(n, classes)) + 0.5 * labels
    validation = Validation(lambda model: model, torch.tensor(labels), groups)
    ea, eb = validation(torch.tensor(a)), validation(torch.tensor(b))
    sk_map = np.mean([average_precision_score(labels[:, c], a[:, c]) for c in range(classes)])
    assert ea.score == pytest.approx(mean_average_precision(a, labels == 1)[0])
    assert abs(ea.score - sk_map) < 0.05  # the interpolated AP is near scikit-learn's stepwise one
    group = jackknife_groups(n, groups)
    left_out = np.array([mean_average_precision(a[group != g], labels[group != g] == 1)[0]
                         - mean_average_precision(b[group != g], labels[group != g] == 1)[0]
                         for g in range(groups)])
    direct = np.sqrt((groups - 1) / groups * np.sum((left_out - left_out.mean()) ** 2))
    assert validation.gain_se(ea.items, eb.items) == pytest.approx(direct, rel=1e-9)
    assert direct > 0.01  # a case where the SE is not nothing


def test_a_device_budget_streams_images_and_cache_from_host_memory_with_the_same_result(tmp_path):
    """cache.device_gib smaller than the images and the frozen cache: both stay in host memory,
    each batch is copied over, the log says so, and the head trains to the very same numbers."""
    from gradfeat_core.experiments.memory import HostResident
    from gradfeat_core.experiments.run import run_experiment
    sets = ["model.head=grad", "train.val_fraction=0.25", "train.eval_every=10", "train.patience=2"]
    plain = run_experiment(quick(tmp_path / "a", *sets), [0], log=lambda m: None)[0]
    log = []
    params = quick(tmp_path / "b", *sets, "cache.device_gib=0.000001")
    streamed = run_experiment(params, [0], log=log.append)[0]
    assert any("kept in host memory" in m for m in log)
    assert any("the cache stays in host memory" in m for m in log)
    assert streamed.accuracy == plain.accuracy
    assert streamed.validation_curve == plain.validation_curve
    data = load_dataset("synthetic", n_train=64, n_test=32, device_budget=1, log=lambda m: None)
    assert isinstance(data.x_train, HostResident)


def test_a_cache_the_disk_has_no_room_for_stays_in_memory(tmp_path, monkeypatch):
    import shutil
    from gradfeat_core.experiments.train import stored
    x = torch.randn(10, 3)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(100, 99, 1))
    log = []
    out = stored(lambda b: 2 * b, x, 4, tmp_path / "z.pt", log=log.append)
    assert torch.equal(out, 2 * x) and not (tmp_path / "z.pt").exists()
    assert "kept in memory only" in log[0]
    monkeypatch.undo()
    stored(lambda b: 2 * b, x, 4, tmp_path / "z.pt", log=log.append)
    assert (tmp_path / "z.pt").is_file() and len(log) == 1


# ---------------------------------------------------------------- multi-label heads (Tables 2, 4)

def test_multilabel_loss_is_the_mean_binary_cross_entropy_of_the_pairs_kept():
    from gradfeat_core.experiments.train import task_loss
    logits = torch.randn(5, 4, dtype=torch.float64)
    labels = torch.tensor([[1, 0, -1, 0], [0, 0, 1, 1], [1, 1, 1, 0], [0, -1, 0, 0], [1, 0, 0, 1]],
                          dtype=torch.int8)
    by_hand = [-(torch.log(torch.sigmoid(z)) if y == 1 else torch.log(1 - torch.sigmoid(z)))
               for z, y in zip(logits.flatten(), labels.flatten()) if y >= 0]
    assert task_loss(logits, labels).item() == pytest.approx(torch.stack(by_hand).mean().item())
    classes = torch.tensor([2, 0, 1])  # single-label: softmax cross-entropy as before
    z = torch.randn(3, 4)
    assert task_loss(z, classes) == torch.nn.functional.cross_entropy(z, classes)


@pytest.mark.skipif(not os.path.isdir("/usr/share/datasets/fashion-mnist"),
                    reason="needs Debian's dataset-fashion-mnist")
@pytest.mark.parametrize("head", ["actv", "full"])
def test_a_multilabel_head_trains_and_reports_map(tmp_path, head):
    """A ResNet18 head on the Fashion-MNIST mosaics: its validation curve and its test result are
    mAP, recomputed here from the trained head's logits, and so are the jackknife pseudo-values of
    the same logits' (tests/test_metrics.py checks them)."""
    from gradfeat_core.experiments.metrics import map_pseudo_values, mean_average_precision
    from gradfeat_core.experiments.results import RunResult, unpack_values
    from gradfeat_core.experiments.run import load_trained
    params = quick(tmp_path, "data.dataset=fashion-mosaic", "data.n_train=96", "data.n_test=64",
                   "base.arch=resnet18", "base.leak=0", "base.calibrate_images=64",
                   "model.layers=block8", f"model.head={head}", "train.val_fraction=0.25",
                   "train.eval_every=5", f"train.{head}.iterations=10", "train.batch_size=16")
    result = run_head(params)
    assert result.metric == "mAP" and result.accuracy is None and result.test_correct is None
    saved = RunResult.read(result.path)
    model, (_, test) = load_trained(saved.params, saved.checkpoint)
    labels = load_dataset("fashion-mosaic", n_train=96, n_test=64).y_test.numpy()
    scores = predict(model, test).numpy()
    assert result.mean_ap == pytest.approx(mean_average_precision(scores, labels)[0])
    assert result.mean_ap_voc07 == pytest.approx(mean_average_precision(scores, labels, "voc07")[0])
    assert unpack_values(result.test_jackknife) == pytest.approx(100 * map_pseudo_values(scores, labels),
                                                                 abs=1e-4)
    assert all(0 <= v <= 1 for _, v in result.validation_curve)


def test_a_finished_run_is_found_again_by_its_parameters_and_results_version(tmp_path):
    """What lets the feature-quality probes resume (run.finished_result): the result run_head
    wrote for the same parameters is read back; a parameter that decides a number, or another
    results version, is another run; how reproduce schedules it (reproduce.*) is not."""
    import json
    from gradfeat_core.experiments.run import finished_result
    params = quick(tmp_path, "model.head=actv", "train.actv.iterations=5")
    result = run_head(params)
    assert finished_result(params).path == result.path
    assert finished_result(quick(tmp_path, "model.head=actv", "train.actv.iterations=5",
                                 "reproduce.timeout=7")).accuracy == result.accuracy
    assert finished_result(quick(tmp_path, "model.head=actv", "train.actv.iterations=6")) is None
    record = json.loads(open(result.path).read())
    record["environment"]["results_version"] -= 1
    record["converged"] = record.pop("convergence") == "converged"  # version 2's field: not read
    open(result.path, "w").write(json.dumps(record))
    assert finished_result(params) is None


def test_a_multi_label_run_at_its_cap_is_judged_by_the_jackknife_of_its_map_gain():
    """train() on a small multi-label problem, validated on mAP, reaching its cap while still
    improving: validation_se is the direct delete-a-group jackknife SE of the mAP difference
    between the best evaluation of the window and the best before it (every evaluation's scores
    recorded here by the test, not by train)."""
    import numpy as np
    from gradfeat_core.experiments.metrics import jackknife_groups, mean_average_precision
    torch.manual_seed(0)
    x, w = torch.randn(400, 8), torch.randn(8, 4)
    labels = (x @ w + 0.5 * torch.randn(400, 4) > 0.5).long()
    model, groups = torch.nn.Linear(8, 4), 10
    seen = []

    class Recorded(Validation):
        def __call__(self, model):
            evaluation = super().__call__(model)
            seen.append(evaluation)
            return evaluation
    validation = Recorded(lambda m: predict(m, x[300:]), labels[300:], groups)
    schedule = {"optimizer": "sgd", "lr": 0.05, "weight_decay": 0.0, "iterations": 12, "stepsize": 1000}
    run = train(model, x[:300], labels[:300], schedule, 16, validate=validation, eval_every=2,
                patience=2, min_iterations=100)
    scores = [e.score for e in seen]
    assert run.convergence == "at its cap" and scores[-1] > max(scores[:-2])  # still rising
    before = max(range(len(scores) - 2), key=lambda k: scores[k])
    best = max(range(len(scores) - 2, len(scores)), key=lambda k: scores[k])
    a, b, y = seen[best].items.numpy(), seen[before].items.numpy(), labels[300:].numpy()
    group = jackknife_groups(len(y), groups)
    left_out = np.array([mean_average_precision(a[group != g], y[group != g] == 1)[0]
                         - mean_average_precision(b[group != g], y[group != g] == 1)[0] for g in range(groups)])
    direct = np.sqrt((groups - 1) / groups * np.sum((left_out - left_out.mean()) ** 2))
    assert run.validation_se == pytest.approx(direct, rel=1e-9)
    assert scores[best] - scores[before] > direct
