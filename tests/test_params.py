"""Tests for gradfeat_core.experiments.params: resolving profiles and rejecting every bad parameter by name."""
import os
import shutil

import pytest
import yaml

from gradfeat_core.method.linear_model import HEADS  # noqa: E402
from gradfeat_core.experiments.params import PARAMS_DIR, REPORTS_DIR, ParamError, digest, load_params, parse_set  # noqa: E402

BASE = yaml.safe_load((PARAMS_DIR / "base.yaml").read_text())


def rejects(sets, key, profile="quick", params_dir=None, objective=None):
    """load_params must raise a one-line ParamError that names `key`; returns the message."""
    with pytest.raises(ParamError) as info:
        load_params(profile, sets, params_dir=params_dir, objective=objective)
    msg = str(info.value)
    assert key in msg, msg
    assert "\n" not in msg, msg
    return msg


# ---------------------------------------------------------------- resolution

def test_quick_profile_resolves():
    """Every key: the profile's value where the profile sets it, else base.yaml's default."""
    p = load_params("quick")
    quick = yaml.safe_load((PARAMS_DIR / "profiles" / "quick.yaml").read_text())

    def check(resolved, base, override, prefix=""):
        for key, default in base.items():
            if isinstance(default, dict):
                check(resolved[key], default, override.get(key, {}), f"{prefix}{key}.")
            elif key in override:
                assert resolved[key] == override[key], prefix + key
            elif not (prefix == "" and key == "out_dir"):
                assert resolved[key] == default, prefix + key

    check(p, BASE, quick)
    assert p["data"]["dataset"] == "synthetic"
    assert p["profile"] == "quick"
    assert p["out_dir"] == str(REPORTS_DIR / "quick")


def test_every_base_key_present_after_resolution():
    p = load_params("quick")

    def keys(d, prefix=""):
        out = set()
        for k, v in d.items():
            out |= keys(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k}
        return out

    assert keys(BASE) <= keys(p)  # and the ablation's depths, which are the architecture's
    assert keys(p) - keys(BASE) == {"profile"} | {f"reproduce.ablation_rows.{d}" for d in
                                                  ("conv5", "conv4-5", "conv3-5")}


def test_sets_override_and_int_accepted_for_float(tmp_path):
    p = load_params("quick", ["train.actv.lr=1", f"out_dir={tmp_path}", "model.layers=conv4-5",
                              "data.n_train=100", "train.clip_grad_norm=0"])
    assert p["train"]["actv"]["lr"] == 1.0 and isinstance(p["train"]["actv"]["lr"], float)
    assert isinstance(p["train"]["clip_grad_norm"], float)
    assert p["out_dir"] == str(tmp_path)
    assert p["model"]["layers"] == "conv4-5"
    assert p["data"]["n_train"] == 100
    assert p["train"]["grad"]["lr"] == BASE["train"]["grad"]["lr"]  # siblings untouched


def test_later_set_wins_and_loading_does_not_mutate_defaults():
    p = load_params("quick", ["seed=3", "seed=4"])
    assert p["seed"] == 4
    assert load_params("quick")["seed"] == BASE["seed"]


def test_nullable_keys_take_values_and_null(tmp_path):
    ckpt = tmp_path / "enc.pt"
    ckpt.write_bytes(b"x")  # validation only checks that the file exists
    p = load_params("quick", [f"base.checkpoint={ckpt}", f"base.random_checkpoint={ckpt}",
                              "data.num_classes=10", "data.n_test=50", "data.root=null"])
    assert p["base"]["checkpoint"] == str(ckpt) == p["base"]["random_checkpoint"]
    assert p["data"]["num_classes"] == 10 and p["data"]["n_test"] == 50 and p["data"]["root"] is None


@pytest.mark.parametrize("sets", [["model.layers=conv3-5"], ["base.pixel_range=[-1, 1]"],
                                  ["device=cpu"], ["device=cuda:1"], ["train.actv.optimizer=adam"],
                                  ["model.theta2=random", "model.omega=random"],
                                  ["model.ntk_scale=fan_in"], ["data.dataset=cifar100"]])
def test_valid_values_accepted(sets):
    load_params("quick", sets)


# ---------------------------------------------------------------- unknown keys

@pytest.mark.parametrize("assignment,key", [
    ("bogus=1", "bogus"),
    ("train.actv.lrr=0.1", "train.actv.lrr"),
    ("data.datasett=cifar10", "data.datasett"),
    ("train.nothead.lr=0.1", "train.nothead"),
    ("profile=quick", "profile"),
])
def test_unknown_key(assignment, key):
    msg = rejects([assignment], key)
    assert "unknown key" in msg


def _params_dir(tmp_path, profile_text, name="bad"):
    d = tmp_path / "params"
    (d / "profiles").mkdir(parents=True)
    shutil.copy(PARAMS_DIR / "base.yaml", d / "base.yaml")
    shutil.copytree(PARAMS_DIR / "objectives", d / "objectives")
    (d / "profiles" / f"{name}.yaml").write_text(profile_text)
    return d


def test_unknown_key_in_profile_file(tmp_path):
    d = _params_dir(tmp_path, "train:\n  actv: {iterations: 5, lrr: 0.1}\n")
    msg = rejects([], "train.actv.lrr", profile="bad", params_dir=d)
    assert "bad.yaml" in msg  # says which file


def test_unknown_top_level_key_in_profile_file(tmp_path):
    d = _params_dir(tmp_path, "epochs: 3\n")
    msg = rejects([], "epochs", profile="bad", params_dir=d)
    assert "bad.yaml" in msg


def test_wrong_type_in_profile_file(tmp_path):
    d = _params_dir(tmp_path, "train:\n  batch_size: 12.5\n")
    rejects([], "train.batch_size", profile="bad", params_dir=d)


def test_invalid_yaml_profile_is_one_line(tmp_path):
    d = _params_dir(tmp_path, "train: [unclosed\n  actv: {\n")
    msg = rejects([], "bad.yaml", profile="bad", params_dir=d)
    assert "YAML" in msg


def test_empty_profile_is_base(tmp_path):
    d = _params_dir(tmp_path, "", name="empty")
    p = load_params("empty", params_dir=d)
    assert p["train"] == BASE["train"] and p["out_dir"] == str(REPORTS_DIR / "empty")


def test_unknown_profile_lists_known_ones(tmp_path):
    msg = rejects([], "nosuchprofile", profile="nosuchprofile")
    assert "quick" in msg and "fashion-mnist" in msg
    d = _params_dir(tmp_path, "seed: 1\n", name="mine")
    msg = rejects([], "other", profile="other", params_dir=d)
    assert "mine" in msg


# ---------------------------------------------------------------- wrong types

@pytest.mark.parametrize("assignment,key", [
    ("train.actv.lr=abc", "train.actv.lr"),            # str for float
    ("train.batch_size=1.5", "train.batch_size"),      # float for int
    ("train.actv.iterations=10.0", "train.actv.iterations"),
    ("seed=true", "seed"),                             # bool for int
    ("train.batch_size=false", "train.batch_size"),
    ("train.actv.lr=true", "train.actv.lr"),           # bool for float
    ("model.cache=1", "model.cache"),                  # int for bool
    ("train.actv.lr=[1, 2]", "train.actv.lr"),         # list for a scalar
    ("model.layers=[conv5]", "model.layers"),
    ("data.n_train=[1, 2]", "data.n_train"),           # list for a nullable scalar
    ("base.checkpoint={a: 1}", "base.checkpoint"),     # mapping for a nullable scalar
    ("base.pixel_range=1", "base.pixel_range"),        # scalar for a list
    ("model.layers=null", "model.layers"),             # null for a non-nullable key
    ("device=0", "device"),
    ("train=5", "train"),                              # section replaced by a scalar
    ("train.actv=0.1", "train.actv"),
    ("data=null", "data"),
    ("data.n_train=abc", "data.n_train"),              # nullable int given a string
    ("data.n_train=true", "data.n_train"),             # ... or a bool
    ("data.num_classes=10.0", "data.num_classes"),     # ... or a float
    ("out_dir=5", "out_dir"),                          # nullable path given a number
    ("base.checkpoint=true", "base.checkpoint"),
])
def test_wrong_type(assignment, key):
    rejects([assignment], key)


def test_section_via_set_into_scalar_key():
    rejects(["seed.x=1"], "seed")


# ---------------------------------------------------------------- names, ranges, consistency

def test_unknown_dataset():
    msg = rejects(["data.dataset=imagenet"], "data.dataset")
    assert "imagenet" in msg and "cifar10" in msg


def test_unknown_head():
    msg = rejects(["model.head=linear"], "model.head")
    assert all(h in msg for h in HEADS)


@pytest.mark.parametrize("key", ["model.theta1", "model.theta2", "model.omega"])
def test_unknown_source(key):
    rejects([f"{key}=imagenet"], key)


def test_unknown_ntk_scale():
    rejects(["model.ntk_scale=magic"], "model.ntk_scale")


@pytest.mark.parametrize("layers", ["conv7", "conv2-9", "fc", "conv5-3", "conv", "", "conv0-5"])
def test_layers_that_do_not_exist(layers):
    msg = rejects([f"model.layers={layers}"] if layers else ["model.layers=''"], "model.layers")
    assert "conv5" in msg  # says what would be accepted


@pytest.mark.parametrize("n", [100, 2, 11])
def test_class_count_contradicting_dataset(n):
    msg = rejects([f"data.num_classes={n}"], "data.num_classes")
    assert "10" in msg


def test_class_count_matching_other_dataset():
    assert load_params("quick", ["data.dataset=cifar100", "data.num_classes=100"])["data"]["num_classes"] == 100
    rejects(["data.dataset=cifar100", "data.num_classes=10"], "data.num_classes")


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("key,value", [("lr", 0), ("lr", -0.1), ("iterations", 0),
                                       ("iterations", -5), ("stepsize", 0)])
def test_non_positive_schedule(head, key, value):
    rejects([f"train.{head}.{key}={value}"], f"train.{head}.{key}")


@pytest.mark.parametrize("head", HEADS)
def test_unknown_optimizer(head):
    rejects([f"train.{head}.optimizer=rmsprop"], f"train.{head}.optimizer")


@pytest.mark.parametrize("key,value", [("batch_size", 0), ("batch_size", -1),
                                       ("eval_batch_size", 0), ("eval_batch_size", -100)])
def test_non_positive_batch_size(key, value):
    rejects([f"train.{key}={value}"], f"train.{key}")


@pytest.mark.parametrize("key", ["checkpoint", "random_checkpoint"])
def test_missing_checkpoint_path(tmp_path, key):
    msg = rejects([f"base.{key}={tmp_path / 'missing.pt'}"], f"base.{key}")
    assert "does not exist" in msg
    rejects([f"base.{key}={tmp_path}"], f"base.{key}")  # a directory is not a checkpoint file


def test_malformed_set():
    for bad in ["train.actv.lr", "=5", ""]:
        with pytest.raises(ParamError) as info:
            load_params("quick", [bad])
        assert "\n" not in str(info.value) and "section.key=value" in str(info.value)
    with pytest.raises(ParamError):
        parse_set("no_equals_sign")


@pytest.mark.parametrize("device", ["gpu", "tpu", "cuda1", "CPU"])
def test_bad_device(device):
    rejects([f"device={device}"], "device")


@pytest.mark.parametrize("value", ["[0, 255]", "[-1, 0]", "[0]", "[0, 1, 2]", "[a, b]"])
def test_bad_pixel_range(value):
    rejects([f"base.pixel_range={value}"], "base.pixel_range")


@pytest.mark.parametrize("key,value", [("n_train", -1), ("n_train", 0), ("n_test", -10),
                                       ("num_classes", -10)])
def test_non_positive_data_sizes(key, value):
    rejects([f"data.{key}={value}"], f"data.{key}")


# ---------------------------------------------------------------- non-finite and out-of-range numbers

def leaves(d, prefix=""):
    for k, v in d.items():
        yield from leaves(v, f"{prefix}{k}.") if isinstance(v, dict) else [(prefix + k, v)]


FLOAT_KEYS = sorted(k for k, v in leaves(BASE) if isinstance(v, float))


def test_float_keys_cover_the_issue():
    assert {"train.actv.lr", "train.grad.weight_decay", "train.clip_grad_norm", "base.leak",
            "pretrain.lr", "pretrain.init_std", "pretrain.gp_weight"} <= set(FLOAT_KEYS)


@pytest.mark.parametrize("key", FLOAT_KEYS)
@pytest.mark.parametrize("text", ["nan", ".nan", "inf", ".inf", "-.inf", "1e400", "-1.0e+400"])
def test_non_finite_number(key, text):
    msg = rejects([f"{key}={text}"], key)
    assert "finite" in msg


@pytest.mark.parametrize("value", ["[.nan, 1]", "[0, .inf]", "[-.inf, 1.0]"])
def test_non_finite_pixel_range(value):
    rejects([f"base.pixel_range={value}"], "base.pixel_range")


def test_non_finite_number_in_profile_file(tmp_path):
    d = _params_dir(tmp_path, "train:\n  grad: {lr: .nan}\n")
    rejects([], "train.grad.lr", profile="bad", params_dir=d)


@pytest.mark.parametrize("key", ["seed", "data.seed", "base.random_seed"])
@pytest.mark.parametrize("value", [-1, 2**32, 2**40])
def test_seed_out_of_range(key, value):
    msg = rejects([f"{key}={value}"], key)
    assert "4294967295" in msg


def test_seed_range_ends_accepted():
    assert load_params("quick", ["seed=0", "base.random_seed=4294967295"])["base"]["random_seed"] == 2**32 - 1


@pytest.mark.parametrize("key", ["heads_seeds", "ablation_seeds"])
def test_reproduce_seed_out_of_range(key):
    rejects([f"reproduce.{key}=[0, 4294967296]"], f"reproduce.{key}")


@pytest.mark.parametrize("text", ["9" * 30, "-" + "9" * 30, "1" * 5000, "1:" * 3000 + "1", "0x" + "f" * 17])
def test_integer_beyond_64_bits(text):
    """Python cannot even print an integer of more than 4300 digits: refused while reading."""
    msg = rejects([f"seed={text}"], "seed")
    assert "64 bits" in msg


@pytest.mark.parametrize("key", ["pretrain.beta1", "pretrain.beta2"])
@pytest.mark.parametrize("value", [1, 1.5, -0.1])
def test_adam_beta_out_of_range(key, value):
    rejects([f"{key}={value}"], key)


def test_layer_range_too_long_to_spell_out_is_refused_at_once():
    msg = rejects(["model.layers=conv1-999999999"], "model.layers")
    assert "conv5" in msg


@pytest.mark.parametrize("key", ["out_dir", "data.root"])
def test_empty_path(key):
    rejects([f"{key}=''"], key)


# ---------------------------------------------------------------- values and files that do not parse

@pytest.mark.parametrize("text,where", [
    ("[0.1,", "line 1, column 6"), ("{a: 1", "line 1, column 6"), ("'x", "line 1, column 3"),
    ("a: b: c", "line 1, column 5"), ("@x", "line 1, column 1"), ("0.1\n---\n0.2", "line 2, column 1"),
    ("!!python/object/apply:os.system [touch x]", "line 1, column 1"), ("[" * 3000, "nested too deeply"),
    ("2020-13-45", "month"),
])
def test_set_value_that_does_not_parse(text, where):
    msg = rejects([f"train.actv.lr={text}"], "train.actv.lr")
    assert "--set" in msg and "not valid YAML" in msg and where in msg


@pytest.mark.parametrize("text,kind", [("- seed: 1\n- train: {}\n", "list"), ("5\n", "int"),
                                       ("just words\n", "str"), ("[]\n", "list")])
def test_profile_that_is_not_a_mapping(tmp_path, text, kind):
    d = _params_dir(tmp_path, text)
    msg = rejects([], "bad.yaml", profile="bad", params_dir=d)
    assert kind in msg and "mapping" in msg


def test_profile_with_bad_line_names_the_line(tmp_path):
    d = _params_dir(tmp_path, "seed: 1\ntrain:\n  actv: {lr: 0.1\n  grad: {}\n")
    msg = rejects([], "bad.yaml", profile="bad", params_dir=d)
    assert "line 4" in msg


@pytest.mark.parametrize("data", [b"seed: \xff\xfe\n", b"seed: 1\x00\n"])
def test_profile_that_is_not_text(tmp_path, data):
    d = _params_dir(tmp_path, "")
    (d / "profiles" / "bad.yaml").write_bytes(data)
    rejects([], "bad.yaml", profile="bad", params_dir=d)


@pytest.mark.parametrize("text,key", [("train: [1, 2]\n", "train"), ("train:\n  actv: 0.1\n", "train.actv"),
                                      ("seed: {a: 1}\n", "seed"), ("base:\n  leak: [0.1]\n", "base.leak")])
def test_profile_value_of_the_wrong_shape(tmp_path, text, key):
    d = _params_dir(tmp_path, text)
    msg = rejects([], key, profile="bad", params_dir=d)
    assert "bad.yaml" in msg


def test_objective_file_that_is_not_a_mapping(tmp_path):
    d = _params_dir(tmp_path, "seed: 1\n")
    (d / "objectives" / "ali.yaml").write_text("- leak: 0.2\n")
    rejects([], "ali.yaml", profile="bad", params_dir=d)


# ---------------------------------------------------------------- paths, checked before any work

def test_out_dir_that_is_a_file(tmp_path):
    f = tmp_path / "results.txt"
    f.write_text("keep me")
    msg = rejects([f"out_dir={f}"], "out_dir")
    assert "is a file" in msg
    rejects([f"out_dir={f / 'sub'}"], "out_dir")  # a file higher up the path
    assert sorted(tmp_path.iterdir()) == [f] and f.read_text() == "keep me"


def test_out_dir_created_later_is_fine(tmp_path):
    p = load_params("quick", [f"out_dir={tmp_path / 'a' / 'b'}"])
    assert p["out_dir"] == str(tmp_path / "a" / "b")
    assert list(tmp_path.iterdir()) == []  # checking creates nothing


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write to any directory")
def test_out_dir_not_writable(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        msg = rejects([f"out_dir={locked / 'out'}"], "out_dir")
    finally:
        locked.chmod(0o700)
    assert "not writable" in msg


def test_out_dir_not_writable_as_seen_by_access(tmp_path, monkeypatch):
    """The same check where the tests run as root (who may write anywhere): os.access says no."""
    import gradfeat_core.experiments.params as params
    real = os.access
    monkeypatch.setattr(params.os, "access", lambda p, mode: False if str(p) == str(tmp_path) else real(p, mode))
    msg = rejects([f"out_dir={tmp_path / 'out'}"], "out_dir")
    assert "not writable" in msg and str(tmp_path) in msg


def test_out_dir_on_a_full_disk(tmp_path, monkeypatch):
    import gradfeat_core.experiments.params as params
    monkeypatch.setattr(params, "MIN_FREE_BYTES", 2**62)  # more than any disk has free
    msg = rejects([f"out_dir={tmp_path / 'out'}"], "out_dir")
    assert "MiB free" in msg
    assert list(tmp_path.iterdir()) == []


def test_data_root_that_is_a_file(tmp_path):
    f = tmp_path / "cifar-10-python.tar.gz"
    f.write_bytes(b"x")
    msg = rejects([f"data.root={f}", "data.dataset=cifar10"], "data.root")
    assert "is a file" in msg


@pytest.mark.parametrize("key", ["out_dir", "data.root"])
def test_path_with_a_nul_character(key):
    rejects([f'{key}="a\\0b"'], key)


# ---------------------------------------------------------------- parse_set, digest

@pytest.mark.parametrize("text,value", [
    ("a=1", 1), ("a=0.5", 0.5), ("a=-3", -3), ("a=true", True), ("a=false", False),
    ("a=null", None), ("a=~", None), ("a=", None), ("a=[0, 1]", [0, 1]), ("a=[-1.0, 1.0]", [-1.0, 1.0]),
    ("a=hello", "hello"), ("a='1'", "1"), ("a=cuda:0", "cuda:0"), ("a=/x/y=z.pt", "/x/y=z.pt"),
    ("a={b: 1}", {"b": 1}),
])
def test_parse_set_values(text, value):
    out = parse_set(text)
    assert out == {"a": value}
    assert type(out["a"]) is type(value)


def test_parse_set_nests_keys():
    assert parse_set("train.actv.lr=0.1") == {"train": {"actv": {"lr": 0.1}}}
    assert parse_set("seed=7") == {"seed": 7}


def test_digest_stable_and_order_independent():
    a = {"x": 1, "y": {"p": [1, 2], "q": None}, "z": "s"}
    b = {"z": "s", "y": {"q": None, "p": [1, 2]}, "x": 1}
    assert digest(a) == digest(b)
    assert digest(a) == digest({"x": 1, "y": {"p": [1, 2], "q": None}, "z": "s"})
    assert len(digest(a)) == 10 and len(digest(a, length=16)) == 16
    assert digest(a) != digest(dict(a, x=2))
    assert digest({"y": {"p": [2, 1]}}) != digest({"y": {"p": [1, 2]}})  # lists keep their order
    # a known value: result and checkpoint file names use digests, so the hash must not depend
    # on the process (no hash randomisation, no id()s) -- sha256 of '{"a": 1}'
    assert digest({"a": 1}) == "f9d86028c6"
    assert digest(load_params("quick")) == digest(load_params("quick"))
    assert digest(load_params("quick")) != digest(load_params("quick", ["seed=1"]))


def test_objective_file_applies_between_base_and_profile(tmp_path):
    p = load_params("quick", objective="wali")
    assert p["pretrain"]["objective"] == "wali"
    assert p["base"]["leak"] == 0.2 and p["base"]["pixel_range"] == [-1.0, 1.0]
    d = _params_dir(tmp_path, "pretrain: {objective: wali, latent: 7}\n", name="mine")
    mine = load_params("mine", params_dir=d)
    assert mine["pretrain"]["latent"] == 7  # the profile wins over the objective file
    assert mine["base"]["leak"] == 0.2  # the profile's objective selects the objective file
    rejects([], "nosuch", objective="nosuch")


def test_nullable_keys_take_null_or_their_type():
    assert load_params("quick", ["pretrain.init_std=null"])["pretrain"]["init_std"] is None
    assert load_params("quick", ["pretrain.init_std=0.02"])["pretrain"]["init_std"] == 0.02
    rejects(["pretrain.init_std=-1"], "pretrain.init_std")
    rejects(["train.actv.lr=null"], "train.actv.lr")  # not nullable


@pytest.mark.parametrize("profile", sorted(p.stem for p in (PARAMS_DIR / "profiles").glob("*.yaml")))
@pytest.mark.parametrize("objective", ["ali", "wali"])
def test_every_shipped_profile_resolves(profile, objective):
    p = load_params(profile, objective=objective)
    assert p["profile"] == profile and p["pretrain"]["objective"] == objective


def test_a_parameter_added_since_stays_out_of_run_keys_at_the_value_that_ran_before_it():
    """data.train_views, data.test_views (1), data.mosaic_side (32) and train.<head>.alternatives
    ([]) (params.ADDED): at
    the value that did what every finished run did, a run key is what it was before they existed;
    at any other value it is a new key."""
    import copy
    from gradfeat_core.experiments.params import ADDED, HEADS, keyed
    from gradfeat_core.experiments.run import result_path
    params = load_params("quick", ["out_dir=/x"])
    assert {("data", "train_views"), ("data", "test_views"), ("data", "mosaic_side")} <= set(ADDED)
    assert {("train", head, "alternatives") for head in HEADS} <= set(ADDED)
    before = copy.deepcopy(params)
    for key in ("train_views", "test_views", "mosaic_side"):
        del before["data"][key]
    for head in HEADS:
        del before["train"][head]["alternatives"]
    assert keyed(params) == before and digest(keyed(params)) == digest(before)
    assert params["data"]["train_views"] == 1 and params["train"]["grad"]["alternatives"] == []  # input kept
    assert result_path(params) == result_path(before)
    for key in ("train_views", "test_views"):
        viewed = dict(params, data=dict(params["data"], **{key: 10}))
        assert keyed(viewed)["data"][key] == 10
        assert result_path(viewed) != result_path(params)
    sgd = [{"optimizer": "sgd"}]
    tried = dict(params, train=dict(params["train"], finetune=dict(params["train"]["finetune"], alternatives=sgd)))
    assert keyed(tried)["train"]["finetune"]["alternatives"] == sgd and "alternatives" not in keyed(tried)["train"]["grad"]
    assert result_path(tried) != result_path(params)


@pytest.mark.parametrize("profile,sets,message", [
    ("fashion-mosaic", ["data.mosaic_side=48"], "'data.mosaic_side' is 48; choose 32, 64, 128"),
    ("fashion-mnist", ["data.mosaic_side=64"], "'data.mosaic_side' is 64 but fashion-mnist is not the stand-in"),
])
def test_the_mosaic_side_is_one_of_three_and_only_the_stand_ins(profile, sets, message):
    with pytest.raises(ParamError) as e:
        load_params(profile, sets)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_the_mosaic_side_reaches_the_source_pre_training_and_keys_runs_only_off_its_default():
    from gradfeat_core.experiments.params import keyed
    from gradfeat_core.suite.plan import image_counts
    p = load_params("fashion-mosaic", ["data.mosaic_side=128"])
    pre = load_params("fashion-mosaic", ["data.mosaic_side=128", "data.dataset=fashion-source"])
    assert image_counts(p)[3] == 128 and image_counts(pre)[3] == 64 and keyed(p)["data"]["mosaic_side"] == 128
    assert "mosaic_side" not in keyed(load_params("fashion-mosaic", ["data.mosaic_side=32"]))["data"]
    assert image_counts(load_params("fashion-mosaic", ["data.mosaic_side=32"]))[3] == 32
    assert image_counts(load_params("fashion-mosaic"))[3] == 64  # the profile's side (docs/tables-2-and-4.md)


@pytest.mark.parametrize("sets,message", [
    (["data.train_views=0"], "'data.train_views' is 0; it must be a positive integer"),
    (["data.test_views=2.5"], "'data.test_views' in --set data.test_views=2.5 must be int"),
    (["data.test_views=-3"], "'data.test_views' is -3; it must be a positive integer"),
    (["data.train_views=10"], "'data.train_views' is 10 but fashion-mnist has no random views"),
])
def test_views_are_positive_and_only_for_the_data_sets_that_have_them(sets, message):
    with pytest.raises(ParamError) as e:
        load_params("fashion-mnist", sets)
    assert message in str(e.value) and "\n" not in str(e.value)
