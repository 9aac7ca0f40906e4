"""Tests for gradfeat_core.experiments.data on tiny fixtures written in the real on-disk formats."""
import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from gradfeat_core.experiments.data import DATASETS, DataError, DataSplits, default_root, load_dataset  # noqa: E402

REAL_FMNIST = "/usr/share/datasets/fashion-mnist"


# ---------------------------------------------------------------- fixture writers (real formats)

def _rng(seed=0):
    return np.random.default_rng(seed)


def write_cifar(root, name="cifar10", n_per_file=4, bytes_keys=False):
    """CIFAR python pickles; returns (x_train, y_train, x_test, y_test) as uint8 N×3×32×32 / int64."""
    rng = _rng(1)
    sub, train, test, key, k = {
        "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "labels", 10),
        "cifar100": ("cifar-100-python", ["train"], ["test"], "fine_labels", 100),
    }[name]
    folder = Path(root) / sub
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for files in (train, test):
        xs, ys = [], []
        for f in files:
            data = rng.integers(0, 256, (n_per_file, 3072), dtype=np.uint8)
            labels = [int(v) for v in rng.integers(0, k, n_per_file)]
            d = {"data": data, key: labels, "filenames": [f"img{i}.png" for i in range(n_per_file)]}
            if name == "cifar100":
                d["coarse_labels"] = [99 + v for v in labels]  # out of range: catches reading the wrong key
            if bytes_keys:
                d = {k_.encode(): v for k_, v in d.items()}
            with open(folder / f, "wb") as fh:
                pickle.dump(d, fh, protocol=2)
            xs.append(data.reshape(-1, 3, 32, 32))
            ys.append(np.array(labels, dtype=np.int64))
        out += [np.concatenate(xs), np.concatenate(ys)]
    return tuple(out)


def write_svhn(root, n_extra=7, n_test=5, n_train=3):
    """SVHN .mat files, X is H×W×C×N uint8, y is N×1 with 10 meaning digit 0. Returns N×C×H×W arrays."""
    rng = _rng(2)
    Path(root).mkdir(parents=True, exist_ok=True)
    out = []
    for fname, n in (("extra_32x32.mat", n_extra), ("test_32x32.mat", n_test), ("train_32x32.mat", n_train)):
        X = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        y = rng.integers(1, 11, (n, 1)).astype(np.uint8)
        y[0, 0] = 10
        scipy.io.savemat(os.path.join(root, fname), {"X": X, "y": y})
        out += [X.transpose(3, 2, 0, 1), y[:, 0].astype(np.int64)]
    return tuple(out[:4])  # extra (train) and test


def idx_bytes(arr, magic=None):
    arr = np.asarray(arr, dtype=np.uint8)
    magic = 0x0800 + arr.ndim if magic is None else magic
    head = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return head + arr.tobytes()


def write_fashion(root, n_train=6, n_test=4, gz=True):
    rng = _rng(3)
    Path(root).mkdir(parents=True, exist_ok=True)
    out = []
    for split, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(1, 256, (n, 28, 28), dtype=np.uint8)  # no zeros: padding is then unambiguous
        y = rng.integers(0, 10, n).astype(np.uint8)
        for base, arr in ((f"{split}-images-idx3-ubyte", x), (f"{split}-labels-idx1-ubyte", y)):
            path = os.path.join(root, base + (".gz" if gz else ""))
            with (gzip.open if gz else open)(path, "wb") as fh:
                fh.write(idx_bytes(arr))
        out += [x, y.astype(np.int64)]
    return tuple(out)


def _as01(x_uint8):
    return torch.from_numpy(np.ascontiguousarray(x_uint8)).float() / 255.0


def _check_common(s, n_train, n_test, channels, classes):
    assert isinstance(s, DataSplits)
    assert s.x_train.shape == (n_train, channels, 32, 32) and s.x_test.shape == (n_test, channels, 32, 32)
    assert s.x_train.dtype == s.x_test.dtype == torch.float32
    assert s.y_train.dtype == s.y_test.dtype == torch.int64
    assert s.y_train.shape == (n_train,) and s.y_test.shape == (n_test,)
    assert s.num_classes == classes and s.in_channels == channels


def _error(match_all, **kw):
    with pytest.raises(DataError) as ei:
        load_dataset(**kw)
    msg = str(ei.value)
    assert "\n" not in msg, msg
    for m in match_all:
        assert m in msg, (m, msg)
    return msg


# ---------------------------------------------------------------- basics

def test_registry_and_default_roots():
    assert DATASETS == {"cifar10": 10, "cifar100": 100, "svhn": 10, "fashion-mnist": 10, "synthetic": 10,
                        "fashion-source": 7, "fashion-mosaic": 10, "voc07": 20, "coco2014": 80}
    assert default_root("voc07") == "data/voc07"
    assert default_root("fashion-mnist") == default_root("fashion-mosaic") == REAL_FMNIST
    assert default_root("cifar10") == "data/cifar10" and default_root("svhn") == "data/svhn"
    assert default_root("synthetic") is None
    assert issubclass(DataError, ValueError)


# ---------------------------------------------------------------- CIFAR

def test_cifar10_round_trip(tmp_path):
    xtr, ytr, xte, yte = write_cifar(tmp_path)
    s = load_dataset("cifar10", root=tmp_path)
    _check_common(s, 20, 4, 3, 10)
    assert torch.equal(s.x_train, _as01(xtr)) and torch.equal(s.x_test, _as01(xte))
    assert s.y_train.tolist() == ytr.tolist() and s.y_test.tolist() == yte.tolist()
    # row-major CHW layout: byte 1024 of a row is channel 1 (green), pixel (0, 0)
    assert s.x_train[0, 1, 0, 0].item() == pytest.approx(xtr.reshape(20, 3072)[0, 1024] / 255.0)


def test_cifar10_root_at_batches_dir_and_bytes_keys(tmp_path):
    xtr, ytr, _, _ = write_cifar(tmp_path, bytes_keys=True)
    s = load_dataset("cifar10", root=str(tmp_path / "cifar-10-batches-py"))
    assert torch.equal(s.x_train, _as01(xtr)) and s.y_train.tolist() == ytr.tolist()


def test_cifar100_fine_labels_and_minus1_1(tmp_path):
    xtr, ytr, xte, yte = write_cifar(tmp_path, "cifar100", n_per_file=6)
    s = load_dataset("cifar100", root=tmp_path, pixel_range=(-1, 1))
    _check_common(s, 6, 6, 3, 100)
    assert s.y_train.tolist() == ytr.tolist() and s.y_test.tolist() == yte.tolist()
    assert torch.allclose(s.x_test, _as01(xte) * 2 - 1, atol=1e-6)
    assert s.x_train.min() >= -1 and s.x_train.max() <= 1


def test_cifar_missing_dir_and_corrupt_pickle(tmp_path):
    missing = tmp_path / "nope"
    _error([str(missing), "cifar-10-batches-py/data_batch_1", "https://www.cs.toronto.edu/~kriz/cifar.html",
            "cifar-10-python.tar.gz"], name="cifar10", root=missing)
    _error([str(missing), "cifar-100-python/train", "cifar-100-python.tar.gz"], name="cifar100", root=missing)
    write_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    _error(["test_batch", "not found"], name="cifar10", root=tmp_path)
    bad = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    bad.write_bytes(bad.read_bytes()[:500])  # truncated pickle
    _error([str(bad), "corrupt", "kriz/cifar.html"], name="cifar10", root=tmp_path)


def _globals(path):
    """The (module, name) pairs a pickle file looks up."""
    import pickletools
    ops = list(pickletools.genops(Path(path).read_bytes()))
    return {tuple(arg.split(" ")) for op, arg, _ in ops if op.name == "GLOBAL"}


def test_cifar_restricted_unpickler_reads_both_numpy_spellings(tmp_path):
    """The fixtures are protocol 2 as the official files: written by numpy 2 they name
    numpy._core.multiarray (and _codecs.encode for bytes); the official files, written by
    numpy 1.x, name numpy.core.multiarray. Both load through the restricted unpickler."""
    xtr, ytr, xte, yte = write_cifar(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    assert _globals(folder / "test_batch") == {("numpy._core.multiarray", "_reconstruct"), ("numpy", "ndarray"),
                                               ("numpy", "dtype"), ("_codecs", "encode")}
    for f in folder.iterdir():  # as numpy 1.x writes them
        f.write_bytes(f.read_bytes().replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n"))
    assert ("numpy.core.multiarray", "_reconstruct") in _globals(folder / "test_batch")
    s = load_dataset("cifar10", root=tmp_path)
    assert torch.equal(s.x_train, _as01(xtr)) and torch.equal(s.x_test, _as01(xte))
    assert s.y_train.tolist() == ytr.tolist() and s.y_test.tolist() == yte.tolist()


class _Payload:
    """Pickles as a call of `fn(*args)`: what a tampered data file would hold."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


@pytest.mark.parametrize("payload", ["exec", "system"])
@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_pickle_that_would_run_code_is_refused(tmp_path, payload, name):
    write_cifar(tmp_path, name)
    marker = tmp_path / "marker"
    evil = (_Payload(exec, f"open({str(marker)!r}, 'w').write('ran')") if payload == "exec"
            else _Payload(os.system, f"touch {marker}"))
    batch = tmp_path / {"cifar10": "cifar-10-batches-py/data_batch_2", "cifar100": "cifar-100-python/test"}[name]
    with open(batch, "rb") as fh:
        d = pickle.load(fh)
    d["labels" if name == "cifar10" else "fine_labels"] = evil  # everything else as genuine
    batch.write_bytes(pickle.dumps(d, protocol=2))
    pickle.loads(batch.read_bytes())  # the payload is live: a plain pickle.load runs it
    assert marker.exists()
    marker.unlink()
    msg = _error([str(batch), "refused", "exec" if payload == "exec" else "system"], name=name, root=tmp_path)
    assert not marker.exists(), msg


# ---------------------------------------------------------------- SVHN

def test_svhn_extra_is_train_and_label_10_is_zero(tmp_path):
    xtr, ytr, xte, yte = write_svhn(tmp_path)
    s = load_dataset("svhn", root=tmp_path)
    _check_common(s, 7, 5, 3, 10)
    assert torch.equal(s.x_train, _as01(xtr)) and torch.equal(s.x_test, _as01(xte))
    assert s.y_train[0].item() == 0 and s.y_test[0].item() == 0  # fixture sets label 10 at index 0
    assert s.y_train.tolist() == [v % 10 for v in ytr.tolist()] and s.y_test.tolist() == [v % 10 for v in yte.tolist()]
    assert 10 not in s.y_train.tolist() and s.y_train.max() <= 9


def test_svhn_pixel_position(tmp_path):
    X = np.zeros((32, 32, 3, 2), dtype=np.uint8)
    X[1, 2, 0, 1] = 77  # row 1, column 2, red, image 1
    y = np.array([[10], [3]], dtype=np.uint8)
    for f in ("extra_32x32.mat", "test_32x32.mat"):
        scipy.io.savemat(tmp_path / f, {"X": X, "y": y})
    s = load_dataset("svhn", root=tmp_path, pixel_range=(-1, 1))
    assert s.x_train[1, 0, 1, 2].item() == pytest.approx(77 / 255 * 2 - 1)
    assert (s.x_train == -1).sum().item() == 2 * 3 * 32 * 32 - 1
    assert s.y_train.tolist() == [0, 3]


def test_svhn_missing_and_corrupt(tmp_path):
    _error([str(tmp_path), "extra_32x32.mat", "http://ufldl.stanford.edu/housenumbers/"], name="svhn", root=tmp_path)
    write_svhn(tmp_path)
    bad = tmp_path / "test_32x32.mat"
    bad.write_bytes(b"this is not a mat file at all" * 10)
    _error([str(bad), "corrupt", "ufldl.stanford.edu"], name="svhn", root=tmp_path)


# ---------------------------------------------------------------- Fashion-MNIST

@pytest.mark.parametrize("pixel_range", [(0.0, 1.0), (-1.0, 1.0)])
def test_fashion_padding_and_range(tmp_path, pixel_range):
    xtr, ytr, xte, yte = write_fashion(tmp_path)
    lo, hi = pixel_range
    s = load_dataset("fashion-mnist", root=tmp_path, pixel_range=pixel_range)
    _check_common(s, 6, 4, 1, 10)
    assert s.y_train.tolist() == ytr.tolist() and s.y_test.tolist() == yte.tolist()
    for x, raw in ((s.x_train, xtr), (s.x_test, xte)):
        inner = x[:, 0, 2:30, 2:30]
        assert torch.allclose(inner, _as01(raw) * (hi - lo) + lo, atol=1e-6)
        border = x.clone()
        border[:, :, 2:30, 2:30] = lo
        assert torch.all(border == lo)  # the 2-pixel frame is exactly the background value
        assert x.min() >= lo and x.max() <= hi
    assert s.x_train[0, 0, 2, 2].item() == pytest.approx(xtr[0, 0, 0] / 255 * (hi - lo) + lo)


def test_fashion_uncompressed_and_torchvision_layout(tmp_path):
    xtr, ytr, _, _ = write_fashion(tmp_path / "plain", gz=False)
    a = load_dataset("fashion-mnist", root=tmp_path / "plain")
    write_fashion(tmp_path / "tv" / "FashionMNIST" / "raw", gz=False)
    b = load_dataset("fashion-mnist", root=tmp_path / "tv")
    for s in (a, b):
        assert torch.equal(s.x_train[:, 0, 2:30, 2:30], _as01(xtr)) and s.y_train.tolist() == ytr.tolist()


def test_fashion_missing_dir(tmp_path):
    missing = tmp_path / "x" / "y"
    msg = _error(["fashion-mnist not found", "train-images-idx3-ubyte.gz", str(missing),
                  "apt-get install dataset-fashion-mnist", "root="], name="fashion-mnist", root=missing)
    assert msg.startswith("fashion-mnist not found: looked for train-images-idx3-ubyte.gz in ")


def test_fashion_bad_magic(tmp_path):
    write_fashion(tmp_path)
    bad = tmp_path / "t10k-labels-idx1-ubyte.gz"
    with gzip.open(bad, "wb") as fh:
        fh.write(idx_bytes(np.zeros(4, np.uint8), magic=0x0803))  # image magic on a label file
    _error([str(bad), "corrupt", "magic"], name="fashion-mnist", root=tmp_path)


def test_fashion_truncated(tmp_path):
    write_fashion(tmp_path / "gz")
    bad = tmp_path / "gz" / "train-images-idx3-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:-40])  # truncated gzip stream
    _error([str(bad), "corrupt"], name="fashion-mnist", root=tmp_path / "gz")
    write_fashion(tmp_path / "raw", gz=False)
    bad = tmp_path / "raw" / "train-images-idx3-ubyte"
    bad.write_bytes(bad.read_bytes()[:-100])  # header intact, pixels missing
    _error([str(bad), "corrupt", "truncated"], name="fashion-mnist", root=tmp_path / "raw")


@pytest.mark.skipif(not os.path.isdir(REAL_FMNIST), reason="Debian dataset-fashion-mnist not installed")
def test_real_fashion_mnist():
    s = load_dataset("fashion-mnist")
    _check_common(s, 60000, 10000, 1, 10)
    assert torch.bincount(s.y_train).tolist() == [6000] * 10
    assert torch.bincount(s.y_test).tolist() == [1000] * 10
    assert s.x_train.min() == 0 and s.x_train.max() == 1
    assert s.x_train[:, :, :2].abs().max() == 0 and s.x_test[:, :, :, 30:].abs().max() == 0


# ---------------------------------------------------------------- subsetting, synthetic, misc errors

def test_subset_is_deterministic_and_consistent(tmp_path):
    write_fashion(tmp_path, n_train=50, n_test=30)
    full = load_dataset("fashion-mnist", root=tmp_path)
    a = load_dataset("fashion-mnist", root=tmp_path, n_train=10, n_test=5, seed=3)
    b = load_dataset("fashion-mnist", root=tmp_path, n_train=10, n_test=5, seed=3)
    c = load_dataset("fashion-mnist", root=tmp_path, n_train=10, n_test=5, seed=4)
    _check_common(a, 10, 5, 1, 10)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.x_train, c.x_train)
    # every subset image is a full-set image carrying the same label, without repeats
    flat = full.x_train.flatten(1)
    rows = [int((flat == r).all(1).nonzero()[0]) for r in a.x_train.flatten(1)]
    assert len(set(rows)) == 10 and a.y_train.tolist() == full.y_train[rows].tolist()
    _error(["n_train=51", "50"], name="fashion-mnist", root=tmp_path, n_train=51)


def test_synthetic_learnable_and_deterministic():
    s = load_dataset("synthetic")
    _check_common(s, 512, 256, 1, 10)
    assert torch.equal(s.x_train, load_dataset("synthetic").x_train)
    assert not torch.equal(s.x_train, load_dataset("synthetic", seed=1).x_train)
    assert torch.bincount(s.y_train).tolist() == [52] * 2 + [51] * 8
    assert s.x_train.min() >= 0 and s.x_train.max() <= 1
    # nearest class mean on raw pixels generalises: classes are separable, not memorised noise
    means = torch.stack([s.x_train[s.y_train == k].mean(0).flatten() for k in range(10)])
    acc = (torch.cdist(s.x_test.flatten(1), means).argmin(1) == s.y_test).float().mean().item()
    assert acc > 0.9
    m = load_dataset("synthetic", pixel_range=(-1, 1), n_train=20, n_test=10)
    _check_common(m, 20, 10, 1, 10)
    assert m.x_train.min() >= -1 and m.x_train.max() <= 1 and m.x_train.min() < 0


def test_unknown_name_and_bad_range():
    msg = _error(["imagenet"] + list(DATASETS), name="imagenet")
    assert "unknown" in msg
    _error(["pixel_range"], name="synthetic", pixel_range=(1, 0))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_device(tmp_path):
    write_fashion(tmp_path)
    s = load_dataset("fashion-mnist", root=tmp_path, device="cuda")
    assert s.x_train.is_cuda and s.y_train.is_cuda
    assert torch.equal(s.x_train.cpu(), load_dataset("fashion-mnist", root=tmp_path).x_train)


def test_download_is_opt_in_and_reads_what_torchvision_writes(tmp_path, monkeypatch):
    """download=False never calls torchvision; download=True does, then reads the same formats."""
    import torchvision.datasets as tvd
    calls = []

    class FakeFashionMNIST:  # stands in for the network: writes the files the real one would
        def __init__(self, root, train, download):
            calls.append((root, train, download))
            write_fashion(Path(root) / "FashionMNIST" / "raw", n_train=6, n_test=4)

    monkeypatch.setattr(tvd, "FashionMNIST", FakeFashionMNIST)
    with pytest.raises(DataError, match="data.download=true"):
        load_dataset("fashion-mnist", root=tmp_path / "none")
    assert calls == []
    splits = load_dataset("fashion-mnist", root=tmp_path / "dl", download=True)
    assert len(splits.x_train) == 6 and calls and all(c[2] for c in calls)


def test_images_past_the_device_budget_stay_in_host_memory_and_batches_match(tmp_path):
    """A budget smaller than the images keeps them in host memory (HostResident); every batch
    indexed or sliced from it equals the same batch of the plain tensor, and the log says why."""
    from gradfeat_core.experiments.memory import HostResident
    write_fashion(tmp_path)
    plain = load_dataset("fashion-mnist", root=tmp_path)
    log = []
    streamed = load_dataset("fashion-mnist", root=tmp_path, device_budget=1000, log=log.append)
    assert isinstance(streamed.x_train, HostResident) and isinstance(streamed.x_test, HostResident)
    assert len(streamed.x_train) == len(plain.x_train) and streamed.x_train.shape == plain.x_train.shape
    idx = torch.tensor([3, 0, 5, 3])
    assert torch.equal(streamed.x_train[idx], plain.x_train[idx])
    assert torch.equal(streamed.x_test[1:3], plain.x_test[1:3])
    assert torch.equal(streamed.y_train, plain.y_train)
    assert len(log) == 1 and "device budget" in log[0] and "kept in host memory as uint8" in log[0]
    # held as the files' bytes (a quarter of float32's memory), each batch made float32 as the
    # plain tensor was, in any pixel range
    assert streamed.x_train.host.dtype == torch.uint8 and streamed.x_train.dtype == torch.float32
    wide = load_dataset("fashion-mnist", root=tmp_path, pixel_range=(-1, 1), device_budget=1000, log=log.append)
    assert torch.equal(wide.x_train[idx], load_dataset("fashion-mnist", root=tmp_path, pixel_range=(-1, 1)).x_train[idx])
    roomy = load_dataset("fashion-mnist", root=tmp_path, device_budget=2**30, log=log.append)
    assert isinstance(roomy.x_train, torch.Tensor) and len(log) == 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_streamed_images_are_pinned_and_batches_land_on_the_gpu(tmp_path):
    write_fashion(tmp_path)
    s = load_dataset("fashion-mnist", root=tmp_path, device="cuda", device_budget=1000, log=lambda m: None)
    assert s.x_train.host.is_pinned() and s.x_train.device.type == "cuda"
    idx = torch.tensor([1, 2], device="cuda")
    assert s.x_train[idx].is_cuda
    assert torch.equal(s.x_train[idx].cpu(), load_dataset("fashion-mnist", root=tmp_path).x_train[idx.cpu()])


# ---------------------------------------------------------------- the Tables 2 and 4 stand-in

def test_mosaics_tile_every_image_once_and_label_what_they_show():
    from gradfeat_core.experiments.data import mosaics
    rng = _rng(5)
    x = rng.integers(1, 256, (50, 1, 4, 4), dtype=np.uint8)  # no zeros: an empty tile is all 0
    y = rng.integers(0, 10, 50)
    out, labels = mosaics(x, y, 10, seed=0)
    assert out.shape[1:] == (1, 8, 8) and labels.shape == (len(out), 10) and labels.dtype == np.int8
    seen = []
    for m, lab in zip(out, labels):
        tiles = [m[:, r:r + 4, q:q + 4] for r in (0, 4) for q in (0, 4)]
        shown = [next(i for i in range(50) if (x[i] == t).all()) for t in tiles if t.any()]
        assert shown and (np.flatnonzero(lab) == np.unique(y[shown])).all()
        seen += shown
    assert len(seen) == len(set(seen)) and 50 - 4 < len(seen) <= 50  # as many as the images fill
    again, _ = mosaics(x, y, 10, seed=0)
    assert (again == out).all()


def test_fashion_standin_source_and_mosaic_from_the_idx_files(tmp_path):
    xtr, ytr, xte, yte = write_fashion(tmp_path, n_train=40, n_test=12)
    src = load_dataset("fashion-source", root=tmp_path)
    assert src.num_classes == 7 and src.x_train.shape[1:] == (1, 16, 16)
    full = load_dataset("fashion-mnist", root=tmp_path)  # each source image: a 2×2 mean of one of its
    halved = torch.nn.functional.avg_pool2d(full.x_train, 2)
    assert all((halved - im).abs().amax((1, 2, 3)).min() <= 0.5 / 255 + 1e-6 for im in src.x_train)
    assert src.y_train.max() < 7 and src.y_test.max() < 7 and len(src.x_train) <= 20
    assert len(src.y_test) == int((yte < 7).sum())
    mos = load_dataset("fashion-mosaic", root=tmp_path)
    assert mos.x_train.shape[1:] == (1, 32, 32) and mos.y_train.shape[1] == 10 and mos.num_classes == 10
    assert mos.y_train.dim() == 2 and set(mos.y_test.unique().tolist()) <= {0, 1}
    # the source's training images and the mosaics' are the two halves of the training set
    src_images = {bytes(im) for im in (src.x_train * 255).round().byte().numpy()}
    tiles = {bytes(t) for m in (mos.x_train * 255).round().byte().numpy()
             for t in (m[:, r:r + 16, q:q + 16] for r in (0, 16) for q in (0, 16)) if t.any()}
    assert tiles and not tiles & src_images


def test_stand_in_tiles_at_each_side_hand_computed():
    """tiles(): 2×2 means, rounded (16 px), the images (32), bilinear ×2 with align_corners false
    (64): an inner output pixel is 3/4 of its nearer input and 1/4 of the next, per axis."""
    from gradfeat_core.experiments.data import tiles
    x = np.array([[0, 4], [8, 12]], np.uint8)[None, None]
    assert tiles(x, 2) is x and tiles(x, 1).tolist() == [[[[6]]]]
    assert tiles(np.array([[1, 2], [2, 2]], np.uint8)[None, None], 1).tolist() == [[[[2]]]]  # 1.75 rounds up
    assert tiles(x, 4)[0, 0].tolist() == [[0, 1, 3, 4], [2, 3, 5, 6], [6, 7, 9, 10], [8, 9, 11, 12]]
    with pytest.raises(DataError, match="16, 32 or 64 px"):
        tiles(x, 3)


@pytest.mark.parametrize("side", [64, 128])
def test_the_stand_in_at_a_larger_side_is_the_same_mosaics_at_another_scale(tmp_path, side):
    """data.mosaic_side: the same tiles in the same mosaics with the same labels, each tile side/2
    px; the source's images are tiles at the same scale; every other data set refuses one."""
    from gradfeat_core.experiments.data import tiles
    write_fashion(tmp_path, n_train=40, n_test=12)
    small, big = (load_dataset("fashion-mosaic", root=tmp_path, mosaic_side=s) for s in (32, side))
    assert big.x_train.shape[1:] == (1, side, side) and torch.equal(big.y_train, small.y_train)
    assert torch.equal(big.y_test, small.y_test) and big.source["mosaic_side"] == side
    assert "mosaic_side" not in small.source  # the default stays out of what keys caches
    full = (load_dataset("fashion-mnist", root=tmp_path).x_train * 255).round().byte().numpy()
    expect = {bytes(t) for t in tiles(full, side // 2)}
    h = side // 2
    shown = [bytes(t) for m in (big.x_train * 255).round().byte().numpy()
             for t in (m[:, r:r + h, q:q + h] for r in (0, h) for q in (0, h)) if t.any()]
    assert shown and set(shown) <= expect
    src = load_dataset("fashion-source", root=tmp_path, mosaic_side=side)
    assert src.x_train.shape[1:] == (1, h, h) and {bytes(im) for im in (src.x_train * 255).round().byte().numpy()} <= expect
    with pytest.raises(DataError, match="only fashion-source and fashion-mosaic have one"):
        load_dataset("fashion-mnist", root=tmp_path, mosaic_side=side)


@pytest.mark.skipif(not os.path.isdir(REAL_FMNIST), reason="needs Debian's dataset-fashion-mnist")
def test_real_fashion_standin_sizes():
    src = load_dataset("fashion-source")
    assert len(src.x_test) == 7000 and 20_000 < len(src.x_train) < 22_000
    mos = load_dataset("fashion-mosaic", n_test=100)
    assert mos.x_train.shape[0] > 9000 and mos.y_train.sum(1).min() >= 1
