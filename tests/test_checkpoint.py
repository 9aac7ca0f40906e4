"""Tests for gradfeat_core.experiments.checkpoint: round trips, refusals, nothing half-loaded, atomic writes."""
import functools
import os

import pytest
import torch
from torch import nn

from gradfeat_core.experiments.checkpoint import CheckpointError, load_checkpoint, load_into, save_checkpoint  # noqa: E402
from gradfeat_core.method.nets import Encoder  # noqa: E402

META = {"kind": "encoder", "arch": "ali-encoder", "dataset": "synthetic", "in_channels": 1,
        "leak": 0.01, "batchnorm": True, "parametrisation": "standard"}


@functools.lru_cache(maxsize=None)
def _encoder_state(seed, in_channels, batchnorm):
    net = Encoder(in_channels=in_channels, batchnorm=batchnorm)
    g = torch.Generator().manual_seed(seed)
    net.reset_parameters(g)
    for m in net.modules():  # non-default batch-norm buffers, so a round trip checks them too
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(generator=g)
            m.running_var.uniform_(0.5, 2.0, generator=g)
            m.num_batches_tracked.fill_(seed + 3)
    return net.state_dict()


def encoder(seed=0, in_channels=1, batchnorm=True):
    """A fresh Encoder with seeded, distinct weights (built once per setting, then copied)."""
    net = Encoder(in_channels=in_channels, batchnorm=batchnorm)
    net.load_state_dict(_encoder_state(seed, in_channels, batchnorm))
    return net


def snapshot(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def refuses(fn, *words):
    with pytest.raises(CheckpointError) as info:
        fn()
    msg = str(info.value)
    assert "\n" not in msg, msg
    for w in words:
        assert w in msg, msg
    return msg


# ---------------------------------------------------------------- round trip

def test_round_trip(tmp_path):
    net = encoder(seed=1)
    path = tmp_path / "sub" / "dir" / "enc.pt"  # parents are created
    save_checkpoint(path, net.state_dict(), META)
    state, meta = load_checkpoint(path, expect=META)
    assert meta == META
    assert same(state, net.state_dict())
    assert all(v.device.type == "cpu" for v in state.values())

    other = encoder(seed=2)
    assert not same(snapshot(other), net.state_dict())
    assert load_into(other, path, expect={"dataset": "synthetic"}) == META
    assert same(other.state_dict(), net.state_dict())
    x = torch.rand(4, 1, 32, 32)
    assert torch.equal(other.eval()(x), net.eval()(x))


def test_plain_torch_load_weights_only(tmp_path):
    net = encoder()
    path = tmp_path / "enc.pt"
    save_checkpoint(path, net.state_dict(), META)
    obj = torch.load(path, weights_only=True)
    assert set(obj) == {"state_dict", "meta", "extra"}
    assert obj["meta"] == META
    assert same(obj["state_dict"], net.state_dict())


def test_saved_tensors_are_detached_copies_on_cpu(tmp_path):
    lin = nn.Linear(3, 2)
    path = tmp_path / "lin.pt"
    save_checkpoint(path, dict(lin.named_parameters()), {"kind": "classifier"})  # requires_grad tensors
    state, _ = load_checkpoint(path)
    assert not any(v.requires_grad for v in state.values())
    assert torch.equal(state["weight"], lin.weight.detach())


def test_str_path_and_meta_copied(tmp_path):
    meta = dict(META)
    save_checkpoint(str(tmp_path / "a.pt"), encoder().state_dict(), meta)
    meta["dataset"] = "changed after saving"
    assert load_checkpoint(str(tmp_path / "a.pt"))[1]["dataset"] == "synthetic"


def test_atomic_save_leaves_no_tmp_and_overwrites(tmp_path):
    path = tmp_path / "enc.pt"
    save_checkpoint(path, encoder(seed=1).state_dict(), META)
    save_checkpoint(path, encoder(seed=2).state_dict(), dict(META, dataset="cifar10"))
    assert sorted(os.listdir(tmp_path)) == ["enc.pt"]
    state, meta = load_checkpoint(path)
    assert meta["dataset"] == "cifar10"
    assert same(state, encoder(seed=2).state_dict())


# ---------------------------------------------------------------- made for something else

@pytest.mark.parametrize("key,wanted", [("dataset", "cifar10"), ("arch", "resnet"),
                                        ("parametrisation", "ntk"), ("in_channels", 3),
                                        ("kind", "classifier"), ("batchnorm", False)])
def test_expect_mismatch(tmp_path, key, wanted):
    path = tmp_path / "enc.pt"
    save_checkpoint(path, encoder().state_dict(), META)
    msg = refuses(lambda: load_checkpoint(path, expect={key: wanted}), key, repr(wanted), str(path))
    assert repr(META[key]) in msg
    # load_into checks the same before touching the module
    target = encoder(seed=5)
    before = snapshot(target)
    refuses(lambda: load_into(target, path, expect=dict(META, **{key: wanted})), key)
    assert same(target.state_dict(), before)


def test_expect_key_missing_from_meta(tmp_path):
    path = tmp_path / "enc.pt"
    save_checkpoint(path, encoder().state_dict(), {"kind": "encoder"})
    refuses(lambda: load_checkpoint(path, expect={"dataset": "synthetic"}), "dataset", "None")


def test_expect_none_or_empty_accepts_anything(tmp_path):
    path = tmp_path / "enc.pt"
    save_checkpoint(path, encoder().state_dict(), {})
    assert load_checkpoint(path)[1] == {}
    assert load_checkpoint(path, expect={})[1] == {}


# ---------------------------------------------------------------- another architecture

@pytest.mark.parametrize("saved_kw,target_kw,first", [
    ({"in_channels": 3}, {"in_channels": 1}, "conv1.0.weight"),   # same keys, another shape
    ({"in_channels": 1}, {"in_channels": 3}, "conv1.0.weight"),
    ({"batchnorm": False}, {"batchnorm": True}, None),            # other keys
    ({"batchnorm": True}, {"batchnorm": False}, None),
])
def test_load_into_refuses_other_architecture(tmp_path, saved_kw, target_kw, first):
    path = tmp_path / "enc.pt"
    save_checkpoint(path, encoder(seed=1, **saved_kw).state_dict(), META)
    target = encoder(seed=2, **target_kw)
    before = snapshot(target)
    msg = refuses(lambda: load_into(target, path), "another architecture", str(path))
    if first:
        assert first in msg
    assert same(target.state_dict(), before)  # nothing half-loaded


def test_load_into_refuses_missing_and_extra_keys(tmp_path):
    net = encoder(seed=1)
    state = net.state_dict()
    target = encoder(seed=2)
    before = snapshot(target)
    missing = {k: v for k, v in state.items() if k != "conv5.0.weight"}
    save_checkpoint(tmp_path / "missing.pt", missing, META)
    refuses(lambda: load_into(target, tmp_path / "missing.pt"), "conv5.0.weight")
    extra = dict(state, **{"conv6.0.weight": torch.zeros(1)})
    save_checkpoint(tmp_path / "extra.pt", extra, META)
    refuses(lambda: load_into(target, tmp_path / "extra.pt"), "conv6.0.weight")
    assert same(target.state_dict(), before)


def test_load_into_refuses_classifier_of_other_size(tmp_path):
    save_checkpoint(tmp_path / "w.pt", nn.Linear(512, 100).state_dict(), {"kind": "classifier"})
    target = nn.Linear(512, 10)
    before = snapshot(target)
    refuses(lambda: load_into(target, tmp_path / "w.pt"), "weight")
    assert same(target.state_dict(), before)


# ---------------------------------------------------------------- missing or unreadable files

def test_missing_file(tmp_path):
    path = tmp_path / "nope.pt"
    refuses(lambda: load_checkpoint(path), str(path), "does not exist")
    refuses(lambda: load_into(nn.Linear(2, 2), path), "does not exist")
    refuses(lambda: load_checkpoint(tmp_path), "does not exist")  # a directory is not a file


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("content", [os.urandom(4096), b"", b"PK\x03\x04 not really a zip",
                                     b"\x80\x04K\x01."])  # last: a valid pickle of the int 1
def test_garbage_file(tmp_path, content):
    path = tmp_path / "garbage.pt"
    path.write_bytes(content)
    refuses(lambda: load_checkpoint(path), str(path), "not readable")
    target = nn.Linear(2, 2)
    before = snapshot(target)
    refuses(lambda: load_into(target, path), "not readable")
    assert same(target.state_dict(), before)


@pytest.mark.parametrize("obj", [{"weights": torch.zeros(2)}, [torch.zeros(2)], (torch.zeros(2), {}),
                                 {"state_dict": {}}])
def test_torch_file_of_another_layout(tmp_path, obj):
    path = tmp_path / "other.pt"
    torch.save(obj, path)
    refuses(lambda: load_checkpoint(path), "not readable")


class Evil(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2)


def test_pickled_module_is_refused(tmp_path):
    path = tmp_path / "module.pt"
    torch.save(Evil(), path)
    refuses(lambda: load_checkpoint(path), str(path), "not readable")
    path2 = tmp_path / "wrapped.pt"  # a module hidden inside the expected layout
    torch.save({"state_dict": {}, "meta": {"net": nn.Linear(2, 2)}}, path2)
    refuses(lambda: load_checkpoint(path2), "not readable")


def test_the_same_tensors_make_the_same_bytes_whatever_the_file_is_called(tmp_path):
    """A file's sha256 keys the runs that read it (reproduce.decisive): saving the same weights
    again, under another name or by another process, must give the same bytes. (torch.save
    named its archive's records after the temporary file, which held the process id, so every
    pre-training made a file of new bytes, and every run on it a new key.)"""
    import hashlib
    from gradfeat_core.experiments.checkpoint import load_checkpoint, save_checkpoint
    state = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.zeros(3)}
    digests = set()
    for name in ("a/encoder.pt", "b/other-name.pt"):
        save_checkpoint(tmp_path / name, state, {"kind": "encoder"})
        digests.add(hashlib.sha256((tmp_path / name).read_bytes()).hexdigest())
        loaded, meta = load_checkpoint(tmp_path / name)
        assert torch.equal(loaded["w"], state["w"]) and meta == {"kind": "encoder"}
    assert len(digests) == 1
    assert not list(tmp_path.rglob("*.tmp"))  # nothing left behind
