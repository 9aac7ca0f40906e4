"""Datasets for the gradient-features reproduction, as float tensors on a device.

`load_dataset(name)` reads CIFAR-10/100 (python pickle batches), SVHN (.mat; train on
`extra`, test on `test`, as the paper does), Fashion-MNIST (IDX, padded 28->32), the Fashion-MNIST
stand-in for Tables 2 and 4 (`fashion-source`, `fashion-mosaic`: see `mosaics`) or an
in-memory synthetic set, and returns `DataSplits`. It never downloads: a missing or corrupt
file raises `DataError` with a one-line message saying what/where and how to get the data.

No data file runs code on load. CIFAR pickles go through `CifarUnpickler`, which builds only
the dicts, lists, strings and numpy arrays a genuine batch holds. SVHN's .mat files are read by
scipy.io.loadmat, which parses MATLAB's format into numpy arrays (MATLAB objects and function
handles included) and never unpickles or imports anything; IDX files are raw bytes.
"""
import functools
import gzip
import os
import pickle
from dataclasses import dataclass

import numpy as np
import torch

from .errors import DataError, UserError  # noqa: F401  (DataError: data.DataError to its users)
from .errors import one_line as _one_line
from .multilabel import HOWTO as _MULTILABEL_HOWTO
from .multilabel import StreamedViews, centre_crops, coco2014, views_of, voc07
from .memory import HostResident, device_budget, fits, gib, host_resident

DATASETS = {"cifar10": 10, "cifar100": 100, "svhn": 10, "fashion-mnist": 10, "synthetic": 10,
            "fashion-source": 7, "fashion-mosaic": 10, "voc07": 20, "coco2014": 80}
# (channels, training images, test images, image side in pixels) of each data set as load_dataset
# gives it (SVHN's training set: extra; the stand-in's: what mosaics() makes of Fashion-MNIST, at
# data.mosaic_side 32: image_side)
SIZES = {"fashion-mnist": (1, 60_000, 10_000, 32), "cifar10": (3, 50_000, 10_000, 32),
         "cifar100": (3, 50_000, 10_000, 32), "svhn": (3, 531_131, 26_032, 32),
         "fashion-source": (1, 21_044, 7_000, 16), "fashion-mosaic": (1, 10_003, 3_346, 32),
         "voc07": (3, 5_011, 4_952, 224), "coco2014": (3, 82_081, 40_137, 224)}


def image_side(data):
    """The side in pixels of the images of the data parameters `data` (the stand-in's at its
    data.mosaic_side)."""
    side = SIZES[data["dataset"]][3]
    return side * data["mosaic_side"] // 32 if data["dataset"] in STANDIN else side


FASHION = ("fashion-mnist", "fashion-source", "fashion-mosaic")  # read from Fashion-MNIST's files
STANDIN = ("fashion-source", "fashion-mosaic")  # the stand-in for Tables 2 and 4 (data.mosaic_side)
TRANSFER_TARGETS = ("fashion-mosaic", "voc07", "coco2014")  # multi-label targets of Tables 2 and 4:
# their heads take an encoder pre-trained on another data set (its source task)
# VOC07 and COCO2014 as the ImageNet ResNets see them (torchvision's evaluation transform): RGB,
# the shorter side resized to 256, the centre 224 × 224 cropped, each channel normalised by
# ImageNet's mean and standard deviation; or, to train, data.train_views fixed random views of each,
# and, to test, data.test_views random views besides the centre crop (multilabel.random_views).
IMAGENET_NORMALISED = {"voc07", "coco2014"}
VIEWED = ("voc07", "coco2014")  # the data sets that data.train_views and data.test_views apply to
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

_HOWTO = {
    "cifar10": "download cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and extract it under {root}",
    "cifar100": "download cifar-100-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and extract it under {root}",
    "svhn": "download train/test/extra_32x32.mat from http://ufldl.stanford.edu/housenumbers/ into {root}",
    "fashion-mnist": "install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist) "
                     "or pass root=... pointing at the gzip IDX files",
}
_HOWTO.update({name: _HOWTO["fashion-mnist"] for name in FASHION})
_HOWTO.update(_MULTILABEL_HOWTO)


class ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings, numbers and numpy arrays and nothing else ("Restricting
    Globals" in the pickle docs): the only callables such a file names are the ones that rebuild
    a numpy array, under numpy 1.x's module name or 2.x's, and `_codecs.encode`, which protocol 2
    uses for bytes written by Python 3. Any other global (os.system, builtins.eval, ...) is
    refused before it is looked up, so a tampered file cannot run code. WHAT names the file."""
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}
    WHAT = "this file"

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refused {module}.{name}: {self.WHAT} holds only "
                                         "arrays, lists and strings, and this could run code")
        return super().find_class(module, name)


class CifarUnpickler(ArrayUnpickler):
    """A CIFAR batch (the official files: numpy 1.x's names)."""
    WHAT = "a CIFAR batch"


@dataclass
class DataSplits:
    x_train: torch.Tensor  # float32, N x C x H x W (32 x 32; the stand-in 16 x 16 and 32 x 32), values in
    # pixel_range (or a HostResident)
    y_train: torch.Tensor  # int64, N; a multi-label set's int8, N x classes: 1 present, 0 absent
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    in_channels: int
    name: str = ""
    source: dict = None  # what they were loaded from (data set, root, subsets and their seed,
    # pixel range, views): part of the key of everything computed from them (random encoders, caches)
    train_views: int = 1  # x_train holds this many views of each image, image by image (rows
    # i·K … i·K + K − 1, y_train repeated alike): data.train_views
    x_test_views: StreamedViews = None  # test_views random views of each test image, image by
    # image (no labels of their own: y_test's), decoded from the files when read; or None.
    # x_test is the centre crops
    test_views: int = 1

    def images(self):
        """Every tensor of images held: train and test (the test views are not held)."""
        return [self.x_train, self.x_test]


def view_rows(images, views):
    """The rows of `images` (indices, numpy or torch, as given) in an array that holds `views`
    rows per image, image by image (DataSplits.train_views): each image's rows in turn."""
    arange = torch.arange if isinstance(images, torch.Tensor) else np.arange
    return (images[:, None] * views + arange(views)).reshape(-1)


def default_root(name: str) -> str | None:
    if name == "synthetic":
        return None
    return "/usr/share/datasets/fashion-mnist" if name in FASHION else f"data/{name}"


def _missing(name, fname, root):
    return DataError(f"{name} not found: looked for {fname} in {root}; {_HOWTO[name].format(root=root)} "
                     "(or set data.download=true where a network is available)")


def _corrupt(name, path, why, root=None):
    return DataError(f"{name} file {path} is corrupt: {_one_line(why)}; replace it: "
                     f"{_HOWTO[name].format(root=root or os.path.dirname(path))}")


def _cifar(name, root):
    sub, train, test, key = {
        "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "labels"),
        "cifar100": ("cifar-100-python", ["train"], ["test"], "fine_labels"),
    }[name]
    # Accept both torchvision's layout (root/<sub>/...) and root pointing at <sub> itself.
    folder = next((d for d in (os.path.join(root, sub), root) if os.path.isfile(os.path.join(d, train[0]))), None)
    if folder is None:
        raise _missing(name, f"{sub}/{train[0]}", root)

    def read(files):
        xs, ys = [], []
        for f in files:
            path = os.path.join(folder, f)
            if not os.path.isfile(path):
                raise _missing(name, f, folder)
            try:  # Read the pickles ourselves: torchvision's md5 check rejects anything but the official files.
                with open(path, "rb") as fh:
                    d = CifarUnpickler(fh, encoding="latin1").load()
                d = {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}
                x = np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
                y = np.asarray(d[key], dtype=np.int64)
            except Exception as e:
                raise _corrupt(name, path, f"not a CIFAR pickle batch ({_one_line(e)})", root) from e
            if len(x) != len(y):
                raise _corrupt(name, path, f"{len(x)} images but {len(y)} labels", root)
            xs.append(x)
            ys.append(y)
        return np.concatenate(xs), np.concatenate(ys)

    return read(train) + read(test)


def _svhn(root):
    def read(fname):
        path = os.path.join(root, fname)
        if not os.path.isfile(path):
            raise _missing("svhn", fname, root)
        try:
            import scipy.io
            m = scipy.io.loadmat(path, variable_names=["X", "y"])
            x, y = m["X"], np.asarray(m["y"]).reshape(-1).astype(np.int64)
        except Exception as e:
            raise _corrupt("svhn", path, f"cannot read as .mat ({_one_line(e)})") from e
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.shape[3] != len(y):
            raise _corrupt("svhn", path, f"X is {x.dtype} {x.shape}, y has {len(y)} labels")
        y[y == 10] = 0  # SVHN stores digit 0 as label 10
        return x.transpose(3, 2, 0, 1), y  # H x W x C x N -> N x C x H x W (a view; copied later)

    return read("extra_32x32.mat") + read("test_32x32.mat")


def _read_idx(path, ndim):
    try:
        with (gzip.open if path.endswith(".gz") else open)(path, "rb") as fh:
            buf = fh.read()
    except (OSError, EOFError) as e:  # bad gzip header, truncated gzip stream
        raise _corrupt("fashion-mnist", path, e) from e
    magic = int.from_bytes(buf[:4], "big")
    if magic != 0x0800 + ndim:  # 0x08 = unsigned byte, then the number of dimensions
        raise _corrupt("fashion-mnist", path, f"bad magic number {magic:#x}, expected {0x0800 + ndim:#x}")
    dims = tuple(int.from_bytes(buf[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    start = 4 + 4 * ndim
    if len(buf) != start + int(np.prod(dims)):
        raise _corrupt("fashion-mnist", path, f"{len(buf) - start} data bytes for shape {dims} (truncated?)")
    return np.frombuffer(buf, dtype=np.uint8, offset=start).reshape(dims)


def _fashion(root):
    def find(base):
        for d in (root, os.path.join(root, "FashionMNIST", "raw")):  # Debian layout, torchvision layout
            for f in (base + ".gz", base):
                if os.path.isfile(os.path.join(d, f)):
                    return os.path.join(d, f)
        raise _missing("fashion-mnist", base + ".gz", root)

    out = []
    for split in ("train", "t10k"):
        xpath, ypath = find(f"{split}-images-idx3-ubyte"), find(f"{split}-labels-idx1-ubyte")
        x, y = _read_idx(xpath, 3), _read_idx(ypath, 1).astype(np.int64)
        if x.shape[1:] != (28, 28) or len(x) != len(y):
            raise _corrupt("fashion-mnist", xpath, f"images {x.shape} do not match {len(y)} labels in {ypath}")
        out += [np.pad(x, ((0, 0), (2, 2), (2, 2)))[:, None], y]  # pad 28->32 with background 0
    return tuple(out)


# The stand-in for Tables 2 and 4 (ImageNet → VOC07), both from Fashion-MNIST's files: the source
# task, on which a ResNet is pre-trained with labels, is the single images of classes 0-6 from one
# half of the training images; the target is a multi-label set of 2×2 mosaics of the other half
# (its test set: of the test images), labelled with every class a tile shows, classes 7-9
# (sneaker, bag, ankle boot) included, which the source never saw. Fixed by STANDIN_SEED. A tile
# is at the source's scale, half the mosaic's side (data.mosaic_side, `tiles`): 16 px (the 2×2
# means of the padded 32 px images), 32 px (the padded images themselves) or 64 px (each pixel
# interpolated bilinearly to four: Fashion-MNIST has no more detail to give). docs/tables-2-and-4.md
# says what each side costs and shows.
SOURCE_CLASSES = 7
MOSAIC_BLANK = 0.25   # the chance that a tile is empty (a mosaic holds 1-4 images, 3 on average)
MOSAIC_SIDES = (32, 64, 128)
STANDIN_SEED = 0


def _halves(n):
    """(source, target) indices of Fashion-MNIST's n training images: a fixed random halving."""
    order = np.random.default_rng(STANDIN_SEED).permutation(n)
    return np.sort(order[:n // 2]), np.sort(order[n // 2:])


def tiles(x, side):
    """uint8 (N, C, 32, 32) Fashion-MNIST images -> (N, C, side, side) tiles: the mean of each 2×2
    block, rounded (16), the images (32), or bilinear interpolation, rounded (64)."""
    n, c, h, w = x.shape
    if side == h:
        return x
    if side == h // 2:
        return np.rint(x.reshape(n, c, h // 2, 2, w // 2, 2).mean((3, 5))).astype(np.uint8)
    if side == 2 * h:
        up = torch.nn.functional.interpolate(torch.from_numpy(x).float(), scale_factor=2, mode="bilinear")
        return up.round_().clamp_(0, 255).to(torch.uint8).numpy()
    raise DataError(f"a stand-in tile is 16, 32 or 64 px (data.mosaic_side 32, 64 or 128), not {side}")


def _fashion_tiles(root, side):
    xtr, ytr, xte, yte = _fashion(root)
    return tiles(xtr, side), ytr, tiles(xte, side), yte


def _fashion_source(root, mosaic_side=32):
    xtr, ytr, xte, yte = _fashion_tiles(root, mosaic_side // 2)
    xtr, ytr = xtr[_halves(len(xtr))[0]], ytr[_halves(len(ytr))[0]]
    seen_tr, seen_te = ytr < SOURCE_CLASSES, yte < SOURCE_CLASSES
    return xtr[seen_tr], ytr[seen_tr], xte[seen_te], yte[seen_te]


def mosaics(x, y, classes, seed):
    """2×2 mosaics of the images x (N, C, H, W) with labels y: each tile empty (0) with
    probability MOSAIC_BLANK, else the next image of a seeded order (each image used once; a
    mosaic is never empty), as many mosaics as the images fill. Returns (mosaics (M, C, 2H, 2W),
    labels (M, classes) int8: 1 where a tile shows the class)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    filled = rng.random((len(x), 4)) >= MOSAIC_BLANK
    filled[~filled.any(1), 0] = True
    m = int(np.searchsorted(np.cumsum(filled.sum(1)), len(x), side="right"))
    filled = filled[:m]
    tile = np.full(filled.shape, -1)
    tile[filled] = order[:filled.sum()]
    n, c, h, w = x.shape
    out = np.zeros((m, c, 2 * h, 2 * w), x.dtype)
    labels = np.zeros((m, classes), np.int8)
    for k, (r, q) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        rows = np.flatnonzero(filled[:, k])
        out[rows, :, r * h:(r + 1) * h, q * w:(q + 1) * w] = x[tile[rows, k]]
        labels[rows, y[tile[rows, k]]] = 1
    return out, labels


def _fashion_mosaic(root, mosaic_side=32):
    xtr, ytr, xte, yte = _fashion_tiles(root, mosaic_side // 2)
    target = _halves(len(xtr))[1]
    return (*mosaics(xtr[target], ytr[target], 10, STANDIN_SEED),
            *mosaics(xte, yte, 10, STANDIN_SEED + 1))


def _synthetic(n_train, n_test, seed):
    """10 classes, each a fixed smooth random pattern; samples add pixel noise (in [0,1] units)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(10, 1, 6, 6, generator=g)  # upsampled -> smooth, distinct per class
    patterns = torch.nn.functional.interpolate(coarse, size=(32, 32), mode="bicubic", align_corners=False)

    def sample(n):
        y = torch.randperm(n, generator=g) % 10  # balanced classes, shuffled
        x = patterns[y] + 0.25 * torch.randn(n, 1, 32, 32, generator=g)
        return x.clamp(0, 1), y

    return sample(n_train) + sample(n_test)


def _to_device(x, device, lo, hi, chunk=8192, imagenet=False):
    """uint8 numpy (N,C,H,W) -> float32 on device (`_decoded`), in chunks to bound host memory."""
    out = torch.empty(x.shape, dtype=torch.float32, device=device)
    for i in range(0, len(x), chunk):
        out[i:i + chunk] = _decoded(torch.from_numpy(np.ascontiguousarray(x[i:i + chunk])).to(device),
                                    lo, hi, imagenet)
    return out


def _decoded(x, lo, hi, imagenet=False):
    """uint8 images (a tensor) -> float32 on their device: in [lo, hi], or (imagenet) each
    channel normalised by ImageNet's mean and std."""
    out = x.to(torch.float32).div_(255.0)
    if imagenet:
        mean, std = (torch.tensor(v, device=out.device).view(1, -1, 1, 1) for v in (IMAGENET_MEAN, IMAGENET_STD))
        return out.sub_(mean).div_(std)
    return _rescale(out, lo, hi)


def _rescale(x01, lo, hi):
    return x01 if (lo, hi) == (0.0, 1.0) else x01.mul_(hi - lo).add_(lo)


def _download(name, root):
    """Opt-in only (download=True): torchvision's downloaders write the very formats read here."""
    import torchvision.datasets as tvd
    if name == "svhn":
        for split in ("extra", "test"):
            tvd.SVHN(root, split=split, download=True)
        return
    cls = {"cifar10": tvd.CIFAR10, "cifar100": tvd.CIFAR100, "fashion-mnist": tvd.FashionMNIST}[name]
    for train in (True, False):
        cls(root, train=train, download=True)


def _multilabel(read, root, views=(1, 0)):
    """VOC07 (trainval, test) or COCO2014 (train2014, val2014), as `read` (multilabel.voc07 or
    coco2014) lists them, as arrays: (training images, their labels, test centre crops, their
    labels, the test images' files); labels (N, classes) 1/0, -1 where VOC's difficult objects
    leave a class out. views: (train_views, seed): training images as each one's centre crop
    (train_views 1) or as train_views random views (multilabel.views_of), labels repeated alike
    (test views: load_dataset's StreamedViews of the files)."""
    train_views, seed = views
    train, test = read(root, "train"), read(root, "test")
    labels = [np.where(s.ignore, -1, s.labels).astype(np.int8) for s in (train, test)]
    xtr = centre_crops(train.files, train.name) if train_views == 1 else \
        views_of(train.files, train_views, seed, "train", train.name)
    return (xtr, np.repeat(labels[0], train_views, axis=0), centre_crops(test.files, test.name),
            labels[1], np.asarray(test.files))


_READERS = {"cifar10": lambda root: _cifar("cifar10", root),
            "cifar100": lambda root: _cifar("cifar100", root), "svhn": _svhn, "fashion-mnist": _fashion,
            "fashion-source": _fashion_source, "fashion-mosaic": _fashion_mosaic,
            "voc07": functools.partial(_multilabel, voc07), "coco2014": functools.partial(_multilabel, coco2014)}


# The files each reader reads, and the folders it looks in (every layout it accepts): what
# identifies a data set's content in a run key (data_files).
_FILES = {
    "cifar10": (("cifar-10-batches-py", "."), [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"], ("",)),
    "cifar100": (("cifar-100-python", "."), ["train", "test"], ("",)),
    "svhn": ((".",), ["extra_32x32.mat", "test_32x32.mat"], ("",)),
    "fashion-mnist": ((".", "FashionMNIST/raw"), [f"{s}-{k}" for s in ("train", "t10k") for k in
                                                   ("images-idx3-ubyte", "labels-idx1-ubyte")], (".gz", "")),
}
_FILES.update({name: _FILES["fashion-mnist"] for name in FASHION})
_FILES.update({  # the image lists and annotations (not every JPEG: the lists name them)
    "voc07": (("VOCdevkit/VOC2007/ImageSets/Main",), ["trainval.txt", "test.txt"], ("",)),
    "coco2014": (("annotations",), ["instances_train2014.json", "instances_val2014.json"], ("",)),
})


def data_files(name, root=None):
    """{file name: path} of the files load_dataset reads for `name` from `root` (None: its
    default root), those that exist ({} for the synthetic set, which has none)."""
    if name not in _FILES:
        return {}
    root = os.fspath(root) if root is not None else default_root(name)
    folders, names, suffixes = _FILES[name]
    found = {}
    for base in names:
        path = next((p for d in folders for suffix in suffixes
                     if os.path.isfile(p := os.path.normpath(os.path.join(root, d, base + suffix)))), None)
        if path:
            found[base] = path
    return found


def load_dataset(name, root=None, device="cpu", pixel_range=(0.0, 1.0), n_train=None, n_test=None,
                 seed=0, download=False, device_budget=None, log=None, train_views=1,
                 test_views=1, mosaic_side=32) -> DataSplits:
    """Train and test tensors of `name` on `device`. Nothing is downloaded unless download=True
    (then into root, default data/<name>, with torchvision, when the files are missing).
    Images larger than device_budget (bytes; None: no limit) stay in host memory as
    `HostResident` tensors that copy each batch to the device, and `log` says so.
    train_views, test_views: random views of each image (VOC07, COCO2014: DataSplits); n_train
    and n_test count images, each with all its views. mosaic_side: the stand-in's mosaics' side
    (fashion-source's images are its tiles, half of it)."""
    lo, hi = _checked_request(name, pixel_range, train_views, test_views, mosaic_side)
    device = torch.device(device)
    source = {"dataset": name, "root": None if root is None else os.fspath(root), "n_train": n_train,
              "n_test": n_test, "seed": seed, "pixel_range": [lo, hi]}
    source.update({k: v for k, v in (("train_views", train_views), ("test_views", test_views)) if v != 1})
    if mosaic_side != 32:
        source["mosaic_side"] = mosaic_side
    placed = functools.partial(_placed, name=name, device=device, device_budget=device_budget, log=log)
    if name == "synthetic":  # n_train / n_test are the generated sizes
        xtr, ytr, xte, yte = _synthetic(n_train or 512, n_test or 256, seed)
        xtr, xte = placed([xtr, xte], lambda x, on: _rescale(x, lo, hi).to(on))
        return DataSplits(xtr, ytr.to(device), xte, yte.to(device), DATASETS[name], 1, name, source)
    if root is None:
        root = f"data/{name}" if download else default_root(name)
    root = os.fspath(root)
    xtr, ytr, xte, yte, test_files = _read(name, root, download, seed, train_views, mosaic_side)
    g = torch.Generator().manual_seed(seed)
    # indexed before converting to float: cheap even for SVHN extra
    if n_train is not None:
        rows = view_rows(_chosen_images(name, ytr, n_train, "n_train", g, train_views), train_views)
        xtr, ytr = xtr[rows], ytr[rows]
    chosen = np.arange(len(yte))
    if n_test is not None:
        chosen = _chosen_images(name, yte, n_test, "n_test", g)
        xte, yte = xte[chosen], yte[chosen]
    channels = xtr.shape[1]
    convert = functools.partial(_to_device, lo=lo, hi=hi, imagenet=name in IMAGENET_NORMALISED)
    decode = functools.partial(_decoded, lo=lo, hi=hi, imagenet=name in IMAGENET_NORMALISED)
    xtr, xte = placed([xtr, xte], convert, decode)
    xviews = StreamedViews(test_files[chosen], test_views, seed, "test", device, decode, chosen) \
        if test_views > 1 else None  # decoded from the files batch by batch: never held
    return DataSplits(xtr, torch.from_numpy(np.ascontiguousarray(ytr)).to(device),
                      xte, torch.from_numpy(np.ascontiguousarray(yte)).to(device),
                      DATASETS[name], channels, name, source, train_views, xviews, test_views)


def _checked_request(name, pixel_range, train_views, test_views, mosaic_side):
    """(low, high) of pixel_range, once the data set, its views and its mosaic side are known."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    if name not in VIEWED and (train_views, test_views) != (1, 1):
        raise DataError(f"{name} has no random views (train_views {train_views}, test_views "
                        f"{test_views}): only {' and '.join(VIEWED)} do; set both to 1")
    if mosaic_side != 32 and (name not in STANDIN or mosaic_side not in MOSAIC_SIDES):
        raise DataError(f"mosaic_side {mosaic_side} for {name}: only {' and '.join(STANDIN)} have one, "
                        f"{', '.join(map(str, MOSAIC_SIDES))} px")
    lo, hi = (float(v) for v in pixel_range)
    if not lo < hi:
        raise DataError(f"pixel_range must be (low, high) with low < high, got {pixel_range!r}")
    return lo, hi


def _placed(xs, convert, decode=None, *, name, device, device_budget, log):
    """The image arrays `xs` on the device (convert), or, beyond device_budget, streamed from
    the host: as uint8 decoded on the device batch by batch where `decode` is given (a quarter
    of the memory), else as float32; `log` says so."""
    size = sum(len(x) for x in xs) * int(np.prod(xs[0].shape[1:])) * 4  # float32
    if fits(size, device_budget):
        return [convert(x, device) for x in xs]
    (log or print)(f"data: {name}'s images take {gib(size)} > the device budget "
                   f"{gib(device_budget)} (cache.device_gib): kept in host memory"
                   f"{' as uint8' if decode else ''}{' (pinned)' if device.type == 'cuda' else ''}, "
                   f"each batch copied to {device}{' and made float32 there' if decode else ''}")
    if decode:
        return [HostResident(torch.from_numpy(np.ascontiguousarray(x)), device, decode) for x in xs]
    return [host_resident(convert(x, "cpu"), device) for x in xs]


def _read(name, root, download, seed, train_views, mosaic_side):
    """(x_train, y_train, x_test, y_test, test files or None) of `name` as its reader gives them
    from `root` (downloaded first where allowed and missing), its labels checked: class indices,
    or multi-label 0/1/-1 (N, C)."""
    viewed = name in VIEWED
    read = functools.partial(_READERS[name], root, *([(train_views, seed)] if viewed else
                                                     [mosaic_side] if name in STANDIN else []))
    try:
        xtr, ytr, xte, yte, *views = read()
    except DataError:
        if not download:
            raise
        _download(name, root)
        xtr, ytr, xte, yte, *views = read()
    for y, split in ((ytr, "train"), (yte, "test")):
        if len(y) and not (0 <= y.min() <= y.max() < DATASETS[name] if y.ndim == 1 else
                           y.shape[1] == DATASETS[name] and np.isin(y, (-1, 0, 1)).all()):
            raise DataError(f"{name} {split} labels under {root} lie outside 0..{DATASETS[name] - 1}; "
                            f"{_HOWTO[name].format(root=root)}")
    return xtr, ytr, xte, yte, views[0] if views else None


def _chosen_images(name, y, n, what, generator, per=1):
    """Which images (of len(y) // per) n_train or n_test (`what`: n) keeps, drawn by `generator`."""
    images = len(y) // per
    if not 0 < n <= images:
        raise DataError(f"{what}={n} is out of range: {name} has {images} {what[2:]} images")
    return torch.randperm(images, generator=generator)[:n].numpy()


def load_data(data, pixel_range, device, device_gib=None, log=None):
    """The data set of the data parameters `data` with pixels in `pixel_range` (base.pixel_range)
    on `device`, within its budget (device_gib, cache.device_gib: memory.device_budget)."""
    return load_dataset(data["dataset"], data["root"], device, tuple(pixel_range), data["n_train"],
                        data["n_test"], data["seed"], data["download"],
                        device_budget(device, device_gib), log, data["train_views"], data["test_views"],
                        data["mosaic_side"])
