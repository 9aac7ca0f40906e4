"""Small archives of the paper-sized profiles' data sets in their exact on-disk formats, and their
imported base networks, written at test time: what a researcher puts in place before a long run,
shrunk. CIFAR-10/100 pickle batches and SVHN .mat files (tests/test_data.py's writers), VOC2007's
VOCdevkit (JPEG files, XML annotations, ImageSets lists, the devkit's per-class lists), COCO2014's
folders with an instances JSON of its 80 category ids and their gaps; torchvision ResNet18 and
ResNet50 state dicts and a Caffe2 Jigsaw pickle (tests/test_weights.py's writer) with random
weights, put through `import-weights` into the files a copy of params/objectives names."""
import json
import pickle
import re
from pathlib import Path

import numpy as np
import torch
from torchvision.models import resnet as tv

from test_data import write_cifar, write_svhn
from test_multilabel import jpeg, voc_xml, write_class_lists
from test_weights import caffe2_blobs

from gradfeat_core.cli import main
from gradfeat_core.experiments.multilabel import VOC_CLASSES

# COCO's 80 category ids: 1 to 90 with the gaps of instances_*2014.json
COCO_IDS = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]
SPLITS = {"train": 16, "test": 12}  # a few more than --smoke takes (data.n_train 12, n_test 8)


def objects(rng, classes, difficult=True):
    """One to three (class, difficult) pairs, a difficult one now and then."""
    chosen = rng.choice(len(classes), rng.integers(1, 4), replace=False)
    return [(classes[c], int(difficult and rng.random() < 0.2)) for c in chosen]


def write_voc(root, seed=0):
    """VOCdevkit/VOC2007 with SPLITS' images in trainval and test, their per-class lists as the
    devkit writes them."""
    rng = np.random.default_rng(seed)
    base = Path(root) / "VOCdevkit" / "VOC2007"
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    number = 1
    for split, n in (("trainval", SPLITS["train"]), ("test", SPLITS["test"])):
        images = {}
        for _ in range(n):
            image_id = f"{number:06d}"
            images[image_id] = objects(rng, VOC_CLASSES)
            jpeg(base / "JPEGImages" / f"{image_id}.jpg", height=30, width=40, seed=number)
            (base / "Annotations" / f"{image_id}.xml").write_text(voc_xml(image_id, images[image_id]))
            number += 1
        (base / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{i}\n" for i in images))
        write_class_lists(base, split, images)
    return Path(root)


def write_coco(root, seed=0):
    """train2014/, val2014/ and annotations/instances_{train,val}2014.json: SPLITS' images, each
    with one to three instances (one grey image), and one image without any (left out)."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    categories = [{"id": i, "name": f"category{i}", "supercategory": "thing"} for i in COCO_IDS]
    number = 1
    for folder, n in (("train2014", SPLITS["train"]), ("val2014", SPLITS["test"])):
        (root / folder).mkdir(exist_ok=True)
        images, annotations = [], []
        for k in range(n + 1):
            name = f"COCO_{folder}_{number:012d}.jpg"
            images.append({"id": number, "file_name": name, "height": 30, "width": 40})
            jpeg(root / folder / name, height=30, width=40, channels=1 if k == 1 else 3, seed=number)
            if k < n:  # the last image has no instance
                for c in rng.choice(COCO_IDS, rng.integers(1, 4), replace=False):
                    annotations.append({"id": len(annotations) + 1, "image_id": number,
                                        "category_id": int(c), "bbox": [1, 1, 5, 5], "iscrowd": 0})
            number += 1
        (root / "annotations" / f"instances_{folder}.json").write_text(json.dumps(
            {"info": {}, "licenses": [], "images": images, "annotations": annotations,
             "categories": categories}))
    return root


def write_archives(root):
    """Every paper-sized data set under root/<name>: {name: its data.root}."""
    root = Path(root)
    write_cifar(root / "cifar10", "cifar10", n_per_file=18)    # 90 training images, 18 test
    write_cifar(root / "cifar100", "cifar100", n_per_file=30)  # one file each: 30 and 30
    write_svhn(root / "svhn", n_extra=30, n_test=20, n_train=3)
    write_voc(root / "voc07")
    write_coco(root / "coco2014")
    return {name: str(root / name) for name in ("cifar10", "cifar100", "svhn", "voc07", "coco2014")}


def import_random_resnets(folder, params_dir):
    """Random-weight ResNet18 (a torchvision state dict) and Jigsaw ResNet50 (a Caffe2 pickle of
    three siamese towers), each imported by `import-weights` into the file its objective in
    params_dir names, which is rewritten to point into `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.save(tv.resnet18().state_dict(), folder / "resnet18.pth")
    torch.manual_seed(1)
    with open(folder / "resnet50_jigsaw.pkl", "wb") as fh:
        pickle.dump(caffe2_blobs(tv.resnet50().eval(), towers=3), fh, protocol=2)
    for objective, source, arch, fmt in (("imagenet-resnet18", "resnet18.pth", "resnet18", "torchvision"),
                                         ("jigsaw-resnet50", "resnet50_jigsaw.pkl", "resnet50", "caffe2-jigsaw")):
        out = folder / f"{objective}.pt"
        assert main(["import-weights", str(folder / source), "--arch", arch, "--format", fmt,
                     "--out", str(out)]) == 0
        path = Path(params_dir) / "objectives" / f"{objective}.yaml"
        text = re.sub(r"(?m)^  checkpoint: .*$", f"  checkpoint: {out}", path.read_text())
        assert str(out) in text
        path.write_text(text)
