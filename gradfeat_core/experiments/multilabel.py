"""The multi-label targets of Tables 2 and 4, read from their archives as distributed: VOC2007
(train on trainval, test on test) and COCO2014 (train on train2014, test on val2014).

    <root>/VOCdevkit/VOC2007/JPEGImages/<id>.jpg
    <root>/VOCdevkit/VOC2007/Annotations/<id>.xml
    <root>/VOCdevkit/VOC2007/ImageSets/Main/{trainval,test}.txt          (the image ids)
    <root>/train2014/COCO_train2014_<id>.jpg, <root>/val2014/...
    <root>/annotations/instances_{train,val}2014.json

VOC's labels come from each image's annotation, as the devkit makes its
ImageSets/Main/<class>_<split>.txt (where the archive has those lists, each is checked against
the annotations, line by line): a class is present (1) when a non-difficult object of it is
annotated, ignored (the devkit's 0, "difficult") when only difficult ones are, absent (-1)
otherwise; ignored pairs count neither way in AP (metrics.py). COCO's: a class is present when
an instance of it is annotated; the 80 classes in category-id order; images with no instance
are left out (as the usual COCO multi-label protocol does: 82,081 training and 40,137 test images
of the 82,783 and 40,504).

Nothing in an annotation runs or reads anything: XML goes through defusedxml, which refuses
entity declarations (an annotation cannot expand itself to exhaust memory or pull in another
file), JSON through the json module. A missing file, malformed annotation, class outside the
label set or undecodable JPEG is a DataError of one line naming the file.
"""
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from .errors import DataError
from .errors import one_line as _one_line
from .progress import tqdm

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
               "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep",
               "sofa", "train", "tvmonitor")
VOC_SPLITS = {"train": "trainval", "test": "test"}
COCO_SPLITS = {"train": "train2014", "test": "val2014"}
RESIZE, CROP = 256, 224  # torchvision's evaluation transform for ImageNet ResNets
HOWTO = {
    "voc07": "extract VOCtrainval_06-Nov-2007.tar and VOCtest_06-Nov-2007.tar (host.robots.ox.ac.uk/"
             "pascal/VOC/voc2007) under {root}, which then holds VOCdevkit/VOC2007/{{JPEGImages, "
             "Annotations, ImageSets/Main}}",
    "coco2014": "extract train2014.zip, val2014.zip and annotations_trainval2014.zip (cocodataset.org)"
                " under {root}, which then holds train2014/, val2014/ and annotations/instances_"
                "{{train,val}}2014.json",
}


@dataclass
class MultiLabelSet:
    """One split of a multi-label data set: its images' files and their labels."""
    files: list            # JPEG paths, one per image
    labels: np.ndarray     # (images, classes) int8: 1 present, 0 absent
    ignore: np.ndarray     # (images, classes) bool: left out of AP (VOC's difficult); all False for COCO
    classes: tuple
    name: str              # 'voc07 trainval', ...


def _missing(name, path, root):
    return DataError(f"{name} not found: no {path}; {HOWTO[name].format(root=root)}")


def voc07(root, split):
    """The VOC2007 `split` ('train': trainval, 'test': test) under root (see the module)."""
    root = Path(root)
    base = root / "VOCdevkit" / "VOC2007"
    ids_file = base / "ImageSets" / "Main" / f"{VOC_SPLITS[split]}.txt"
    if not ids_file.is_file():
        raise _missing("voc07", ids_file, root)
    ids = [line.split()[0] for line in ids_file.read_text().splitlines() if line.strip()]
    labels = np.zeros((len(ids), len(VOC_CLASSES)), np.int8)
    ignore = np.zeros(labels.shape, bool)
    index = {c: i for i, c in enumerate(VOC_CLASSES)}
    files = []
    for row, image_id in enumerate(ids):
        xml, jpeg = base / "Annotations" / f"{image_id}.xml", base / "JPEGImages" / f"{image_id}.jpg"
        for path in (xml, jpeg):
            if not path.is_file():
                raise _missing("voc07", path, root)
        present, difficult = set(), set()
        for name, hard in voc_objects(xml):
            if name not in index:
                raise DataError(f"voc07 annotation {xml} names class {name!r}, not one of VOC's 20 "
                                f"({', '.join(VOC_CLASSES)}); fix or replace the file")
            (difficult if hard else present).add(index[name])
        labels[row, sorted(present)] = 1
        ignore[row, sorted(difficult - present)] = True
        files.append(str(jpeg))
    devkit = np.where(labels == 1, 1, np.where(ignore, 0, -1))
    for c, name in enumerate(VOC_CLASSES):
        check_class_list(base / "ImageSets" / "Main" / f"{name}_{VOC_SPLITS[split]}.txt", ids, devkit[:, c])
    return MultiLabelSet(files, labels, ignore, VOC_CLASSES, f"voc07 {VOC_SPLITS[split]}")


def check_class_list(path, ids, expected):
    """The devkit's per-class list at `path`, where the archive has one: each line '<id> <label>'
    with the label 1, 0 or -1, for the split's images in order, agreeing with what the
    annotations give (`expected`); anything else is a DataError naming the file and line."""
    if not path.is_file():
        return
    lines = [(n, line.split()) for n, line in enumerate(path.read_text().splitlines(), 1) if line.strip()]
    for (n, words), image_id, want in zip(lines, ids, expected):
        where = f"voc07 class list {path}, line {n}"
        if len(words) != 2 or words[1] not in ("1", "0", "-1"):
            raise DataError(f"{where}: {' '.join(words)!r} is not '<image id> <label>' with the label "
                            "1, 0 or -1; restore the file from the archive")
        if words[0] != image_id or int(words[1]) != want:
            raise DataError(f"{where}: {' '.join(words)!r}, but the split lists image {image_id} and "
                            f"its annotation gives {want}; restore the file from the archive")
    if len(lines) != len(ids):
        raise DataError(f"voc07 class list {path} has {len(lines)} lines for the split's {len(ids)} "
                        "images; restore the file from the archive")


def voc_objects(path):
    """[(class name, difficult)] of one VOC annotation file."""
    try:
        tree = ElementTree.parse(path, forbid_dtd=True)
    except DefusedXmlException as e:
        raise DataError(f"voc07 annotation {path} declares a DTD or XML entities ({type(e).__name__}), "
                        "which a VOC annotation never does: refused; replace the file") from e
    except ElementTree.ParseError as e:
        raise DataError(f"voc07 annotation {path} is not well-formed XML ({_one_line(e)}); "
                        "replace the file") from e
    out = []
    for obj in tree.getroot().iter("object"):
        name = (obj.findtext("name") or "").strip()
        hard = (obj.findtext("difficult") or "0").strip()
        if not name or hard not in ("0", "1"):
            raise DataError(f"voc07 annotation {path} has an object without a name or with difficult "
                            f"{hard!r} (not 0 or 1); replace the file")
        out.append((name, hard == "1"))
    return out


def coco2014(root, split):
    """The COCO2014 `split` ('train': train2014, 'test': val2014) under root (see the module)."""
    root = Path(root)
    folder = COCO_SPLITS[split]
    path = root / "annotations" / f"instances_{folder}.json"
    if not path.is_file():
        raise _missing("coco2014", path, root)
    try:
        record = json.loads(path.read_text())
        categories = sorted((c["id"], c["name"]) for c in record["categories"])
        images = {im["id"]: im["file_name"] for im in record["images"]}
        pairs = [(a["image_id"], a["category_id"]) for a in record["annotations"]]
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(f"coco2014 annotation {path} is not a COCO instances file "
                        f"({type(e).__name__}: {_one_line(e)}); replace it") from e
    column = {cid: i for i, (cid, _) in enumerate(categories)}
    rows = {}
    for image_id, category in pairs:
        if category not in column:
            raise DataError(f"coco2014 annotation {path} labels image {image_id} with category "
                            f"{category}, which its categories do not list; replace the file")
        if image_id not in images:
            raise DataError(f"coco2014 annotation {path} annotates image {image_id}, which its "
                            "images do not list; replace the file")
        rows.setdefault(image_id, set()).add(column[category])
    ids = sorted(rows)
    labels = np.zeros((len(ids), len(categories)), np.int8)
    for r, image_id in enumerate(ids):
        labels[r, sorted(rows[image_id])] = 1
    files = [str(root / folder / images[i]) for i in ids]
    missing = next((f for f in files if not Path(f).is_file()), None)
    if missing:
        raise _missing("coco2014", missing, root)
    return MultiLabelSet(files, labels, np.zeros(labels.shape, bool),
                         tuple(name for _, name in categories), f"coco2014 {folder}")


def read_jpeg(path):
    """uint8 (3, H, W) RGB of one JPEG file (grey ones as three equal channels), decoded by
    Pillow, which refuses a truncated file; one that is truncated or undecodable is a one-line
    DataError naming it."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as image:
            if image.format != "JPEG":
                raise ValueError(f"it is {image.format or 'an unknown format'}, not JPEG")
            rgb = np.asarray(image.convert("RGB"))
    except (OSError, ValueError, UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise DataError(f"image {path} is not a decodable JPEG ({_one_line(e)}); replace the file") from e
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1)


def centre_crop(path, resize=RESIZE, crop=CROP):
    """uint8 (3, crop, crop) of one JPEG: its shorter side resized to `resize` (bilinear, with
    antialiasing), its centre `crop` × `crop` cut out (torchvision's Resize and CenterCrop)."""
    from torchvision.transforms import v2
    image = read_jpeg(path)
    return v2.functional.center_crop(v2.functional.resize(image, resize, antialias=True), crop)


# A random view (data.train_views, data.test_views): the image flipped left-right with chance ½ and
# a square of VIEW_SCALE of its area, at a random place, resized to CROP × CROP: the VOC07
# classification protocol of Krähenbühl et al. 2016 that Table 4's "ten random crops" come from
# (DeepCluster's eval_voc_classif.py: RandomResizedCrop(224, scale=(0.1, 0.5), ratio=(1, 1))).
VIEW_SCALE = (0.1, 0.5)
_RNG = threading.Lock()  # torchvision draws a crop's box from torch's global generator


def view_seed(seed, split, index):
    """The seed of one image's views: from data.seed, the split and the image's place in it."""
    return int(np.random.SeedSequence([seed, {"train": 0, "test": 1}[split], index]).generate_state(1)[0])


def random_views(path, k, seed):
    """uint8 (k, 3, CROP, CROP): k random views of one JPEG (see VIEW_SCALE), the boxes drawn by
    torchvision's RandomResizedCrop.get_params from `seed` alone (the caller's generator is left
    as it was), each cut from the decoded image and resized with antialiasing."""
    from torchvision.transforms import RandomResizedCrop, v2
    image = read_jpeg(path)
    with _RNG, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        boxes = [RandomResizedCrop.get_params(image, list(VIEW_SCALE), [1.0, 1.0]) for _ in range(k)]
        flips = (torch.rand(k) < 0.5).tolist()
    views = [v2.functional.resized_crop(image, *box, [CROP, CROP], antialias=True) for box in boxes]
    return torch.stack([v2.functional.horizontal_flip(v) if flip else v for v, flip in zip(views, flips)])


def image_views(path, k, seed, split, index):
    """random_views of the file at place `index` of `split`, seeded by view_seed(seed, split, index)."""
    return random_views(path, k, view_seed(seed, split, index))


def centre_crops(files, what="images", workers=None):
    """uint8 (N, 3, CROP, CROP) numpy of the files' centre crops (decoded as `decoded` does)."""
    return decoded(files, lambda i, path: centre_crop(path)[None], 1, what, workers)


def views_of(files, k, seed, split, what="images", workers=None):
    """uint8 (N·k, 3, CROP, CROP) numpy: k random views of each file (image_views(…, i) of file
    i), image by image (rows i·k … i·k + k − 1 are file i's)."""
    return decoded(files, lambda i, path: image_views(path, k, seed, split, i), k,
                   f"{what} ({k} views each)", workers)


class StreamedViews:
    """k random views of each of `files` (file i's by image_views(…, index[i])), never held:
    decoded from the JPEG files when a batch of rows is indexed, rows image by image (row r is
    view r % k of image r // k), and `decode` applied to the batch on `device` (data._decoded). It stands in for an image tensor wherever images are read by batch
    (len, shape, dtype, device, indexing), like memory.HostResident, and holds none of them: the
    test views of Table 4 (ten views of COCO2014's test set would take 265 GiB as float32, 66 as
    uint8). Read in order (as train.predict reads them), the next batch's images are decoded by a
    pool of threads while this one is used."""

    def __init__(self, files, k, seed, split, device, decode, index=None, workers=None):
        self.files, self.k, self.seed, self.split = list(files), k, seed, split
        self.index = np.arange(len(self.files)) if index is None else np.asarray(index)
        self.device, self.decode, self.workers = torch.device(device), decode, workers
        self.shape, self.dtype = (len(self.files) * k, 3, CROP, CROP), torch.float32
        self._pool, self._ahead = None, {}  # {image: future of its views}

    def __len__(self):
        return self.shape[0]

    def _views(self, image):
        return image_views(self.files[image], self.k, self.seed, self.split, int(self.index[image]))

    def _submit(self, images):
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor
            self._pool = ThreadPoolExecutor(self.workers or min(16, os.cpu_count() or 1))
        for i in images:
            if i not in self._ahead:
                self._ahead[i] = self._pool.submit(self._views, i)

    def __getitem__(self, idx):
        rows = np.arange(len(self))[idx] if isinstance(idx, slice) else \
            np.asarray(idx.cpu() if isinstance(idx, torch.Tensor) else idx).reshape(-1)
        images = np.unique(rows // self.k).tolist()
        self._submit(images)
        views = {i: self._ahead.pop(i).result() for i in images}
        after = images[-1] + 1 if images else 0  # the next as many images, decoded meanwhile
        ahead = range(after, min(after + len(images), len(self.files)))
        for i in set(self._ahead) - set(ahead):  # read out of order: nothing else is kept
            self._ahead.pop(i).cancel()
        self._submit(ahead)
        batch = torch.stack([views[r // self.k][r % self.k] for r in rows.tolist()]) if len(rows) else \
            torch.empty((0, 3, CROP, CROP), dtype=torch.uint8)
        return self.decode(batch.to(self.device))


def decoded(files, fn, per_image, what, workers=None):
    """uint8 (N·per_image, 3, CROP, CROP) numpy of fn(i, files[i]) for every file, by a pool of
    threads (Pillow and the resize release the GIL), with a progress bar."""
    from concurrent.futures import ThreadPoolExecutor
    out = np.empty((len(files) * per_image, 3, CROP, CROP), np.uint8)
    with ThreadPoolExecutor(workers or min(16, os.cpu_count() or 1)) as pool:
        done = pool.map(fn, range(len(files)), files)
        for i, crops in enumerate(tqdm(done, total=len(files), desc=what, unit="image")):
            out[i * per_image:(i + 1) * per_image] = crops.numpy()
    return out
