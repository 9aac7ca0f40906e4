"""VOC2007 and COCO2014 readers (experiments/multilabel.py) on small fixtures written in the
archives' exact formats: real JPEG files, VOC's XML annotations and ImageSets lists, COCO's
instances JSON; and a one-line error for each way those files can be wrong."""
import json

import numpy as np
import torch
import pytest
from PIL import Image

from gradfeat_core.experiments.data import DataError
from gradfeat_core.experiments.multilabel import VOC_CLASSES, coco2014, read_jpeg, voc07

# image id → [(class, difficult)]; trainval and test as the devkit splits them
VOC = {"trainval": {"000005": [("chair", 0), ("chair", 1), ("person", 0)], "000007": [("car", 0)],
                    "000009": [("horse", 0), ("person", 1)]},
       "test": {"000001": [("dog", 0), ("person", 0)], "000002": [("train", 1)]}}


def jpeg(path, height=24, width=32, channels=3, seed=0):
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, channels), dtype=np.uint8)
    Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels).save(path, "JPEG", quality=90)


def voc_xml(image_id, objects):
    body = "".join(f"<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated>"
                   f"<difficult>{hard}</difficult><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax>"
                   f"<ymax>9</ymax></bndbox></object>" for name, hard in objects)
    return (f"<annotation><folder>VOC2007</folder><filename>{image_id}.jpg</filename>"
            f"<size><width>32</width><height>24</height><depth>3</depth></size>"
            f"<segmented>0</segmented>{body}</annotation>")


def write_voc(root):
    base = root / "VOCdevkit" / "VOC2007"
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    for split, images in VOC.items():
        (base / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{i}\n" for i in images))
        for n, (image_id, objects) in enumerate(images.items()):
            jpeg(base / "JPEGImages" / f"{image_id}.jpg", seed=n)
            (base / "Annotations" / f"{image_id}.xml").write_text(voc_xml(image_id, objects))
        write_class_lists(base, split, images)
    return base


def write_class_lists(base, split, images):
    """The devkit's own per-class lists of `images` ({id: [(class, difficult)]}): 1, -1 or 0
    (difficult only)."""
    for c in VOC_CLASSES:
        lines = []
        for image_id, objects in images.items():
            easy = any(name == c and not hard for name, hard in objects)
            hard = any(name == c and h for name, h in objects)
            lines.append(f"{image_id} {1 if easy else 0 if hard else -1:2d}\n")
        (base / "ImageSets" / "Main" / f"{c}_{split}.txt").write_text("".join(lines))


def devkit_labels(base, split):
    return np.array([[int(line.split()[1]) for line in
                      (base / "ImageSets" / "Main" / f"{c}_{split}.txt").read_text().splitlines()]
                     for c in VOC_CLASSES]).T


@pytest.mark.parametrize("split,name", [("train", "trainval"), ("test", "test")])
def test_voc_labels_are_the_devkits_per_class_lists(tmp_path, split, name):
    base = write_voc(tmp_path)
    s = voc07(tmp_path, split)
    expected = devkit_labels(base, name)
    assert s.name == f"voc07 {name}" and s.classes == VOC_CLASSES and len(s.files) == len(VOC[name])
    assert np.array_equal(s.labels, (expected == 1).astype(np.int8))
    assert np.array_equal(s.ignore, expected == 0)
    assert read_jpeg(s.files[0]).shape == (3, 24, 32)


def one_line(excinfo, *words):
    message = str(excinfo.value)
    assert "\n" not in message and all(w in message for w in words), message


def test_a_missing_voc_archive_says_where_each_file_goes(tmp_path):
    with pytest.raises(DataError) as e:
        voc07(tmp_path, "train")
    one_line(e, "VOCdevkit/VOC2007/ImageSets/Main/trainval.txt", "VOCtrainval_06-Nov-2007.tar",
             "JPEGImages", "Annotations")
    base = write_voc(tmp_path)
    (base / "JPEGImages" / "000007.jpg").unlink()
    with pytest.raises(DataError) as e:
        voc07(tmp_path, "train")
    one_line(e, "000007.jpg")


BILLION_LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
                  '<annotation><object><name>&lol2;</name></object></annotation>')
EXTERNAL = ('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            '<annotation><object><name>&x;</name><difficult>0</difficult></object></annotation>')


@pytest.mark.parametrize("text,words", [
    ("<annotation><object><name>dog</name>", ["not well-formed XML"]),
    (BILLION_LAUGHS, ["DTD or XML entities", "refused"]),
    (EXTERNAL, ["DTD or XML entities", "refused"]),
    (voc_xml("000005", [("unicorn", 0)]), ["'unicorn'", "not one of VOC's 20"]),
    (voc_xml("000005", [("dog", 2)]), ["difficult '2'"]),
])
def test_a_bad_voc_annotation_is_one_line_naming_its_file(tmp_path, text, words):
    base = write_voc(tmp_path)
    (base / "Annotations" / "000005.xml").write_text(text)
    with pytest.raises(DataError) as e:
        voc07(tmp_path, "train")
    one_line(e, "Annotations/000005.xml", *words)


@pytest.mark.parametrize("line,words", [
    ("000005  2", ["line 1", "'000005 2'", "1, 0 or -1"]),
    ("000005", ["line 1", "'<image id> <label>'"]),
    ("000005 one", ["line 1", "1, 0 or -1"]),
    ("000005  1", ["line 1", "annotation gives -1"]),  # 000005 shows no aeroplane
    ("000099 -1", ["line 1", "lists image 000005"]),
])
def test_a_bad_line_in_a_voc_class_list_is_one_line_naming_the_file_and_line(tmp_path, line, words):
    base = write_voc(tmp_path)
    path = base / "ImageSets" / "Main" / "aeroplane_trainval.txt"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([line, *lines[1:]]) + "\n")
    with pytest.raises(DataError) as e:
        voc07(tmp_path, "train")
    one_line(e, "ImageSets/Main/aeroplane_trainval.txt", *words)
    path.write_text("\n".join(lines[:-1]) + "\n")  # an image left out
    with pytest.raises(DataError) as e:
        voc07(tmp_path, "train")
    one_line(e, "aeroplane_trainval.txt", f"{len(lines) - 1} lines", f"{len(lines)} images")


def write_coco(root, folder="val2014"):
    (root / folder).mkdir(parents=True)
    (root / "annotations").mkdir(exist_ok=True)
    categories = [{"id": 1, "name": "person", "supercategory": "person"},
                  {"id": 3, "name": "car", "supercategory": "vehicle"},
                  {"id": 90, "name": "toothbrush", "supercategory": "indoor"}]
    images = [{"id": i, "file_name": f"COCO_{folder}_{i:012d}.jpg", "height": 24, "width": 32}
              for i in (42, 7, 13)]
    annotations = [{"id": 1, "image_id": 42, "category_id": 3, "bbox": [1, 1, 5, 5], "iscrowd": 0},
                   {"id": 2, "image_id": 42, "category_id": 1, "bbox": [2, 2, 5, 5], "iscrowd": 0},
                   {"id": 3, "image_id": 42, "category_id": 3, "bbox": [3, 3, 5, 5], "iscrowd": 0},
                   {"id": 4, "image_id": 7, "category_id": 90, "bbox": [1, 1, 2, 2], "iscrowd": 1}]
    for n, im in enumerate(images):
        jpeg(root / folder / im["file_name"], channels=1 if n == 1 else 3, seed=n)  # a grey one
    path = root / "annotations" / f"instances_{folder}.json"
    path.write_text(json.dumps({"info": {}, "licenses": [], "images": images,
                                "annotations": annotations, "categories": categories}))
    return path


def test_coco_labels_follow_category_ids_and_images_without_instances_are_left_out(tmp_path):
    write_coco(tmp_path)
    s = coco2014(tmp_path, "test")
    assert s.name == "coco2014 val2014" and s.classes == ("person", "car", "toothbrush")
    assert [f.rsplit("_", 1)[-1] for f in s.files] == ["000000000007.jpg", "000000000042.jpg"]  # 13: none
    assert s.labels.tolist() == [[0, 0, 1], [1, 1, 0]] and not s.ignore.any()
    assert read_jpeg(s.files[0]).shape == (3, 24, 32)   # grey, as RGB


@pytest.mark.parametrize("edit,words", [
    (lambda r: "{not json", ["not a COCO instances file"]),
    (lambda r: json.dumps({k: v for k, v in r.items() if k != "categories"}), ["not a COCO instances file", "categories"]),
    (lambda r: json.dumps(dict(r, annotations=r["annotations"] + [{"image_id": 42, "category_id": 5}])),
     ["category 5"]),
    (lambda r: json.dumps(dict(r, annotations=r["annotations"] + [{"image_id": 99, "category_id": 1}])),
     ["image 99"]),
])
def test_a_bad_coco_annotation_is_one_line_naming_its_file(tmp_path, edit, words):
    path = write_coco(tmp_path)
    path.write_text(edit(json.loads(path.read_text())))
    with pytest.raises(DataError) as e:
        coco2014(tmp_path, "test")
    one_line(e, "instances_val2014.json", *words)


def test_a_missing_coco_archive_or_image_says_where_it_goes(tmp_path):
    with pytest.raises(DataError) as e:
        coco2014(tmp_path, "train")
    one_line(e, "annotations/instances_train2014.json", "train2014.zip", "annotations_trainval2014.zip")
    write_coco(tmp_path, "train2014")
    (tmp_path / "train2014" / "COCO_train2014_000000000042.jpg").unlink()
    with pytest.raises(DataError) as e:
        coco2014(tmp_path, "train")
    one_line(e, "COCO_train2014_000000000042.jpg")


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "png"])
def test_a_truncated_or_undecodable_jpeg_is_one_line_naming_it(tmp_path, damage):
    path = tmp_path / "x.jpg"
    jpeg(path, height=64, width=64)
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"\xff\xd8" + bytes(range(256)) * 4,
                      "empty": b"", "png": b"\x89PNG\r\n\x1a\n" + bytes(64)}[damage])
    with pytest.raises(DataError) as e:
        read_jpeg(path)
    one_line(e, str(path), "not a decodable JPEG")


# --- as data sets of the heads: centre crops, ImageNet normalisation ---------------------------

def reference_view(path):
    """torchvision's classic ImageNet evaluation transform on the PIL image (another resize
    implementation than ours): the independent reference of one view."""
    from torchvision import transforms
    from gradfeat_core.experiments.data import IMAGENET_MEAN, IMAGENET_STD
    t = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
                            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    with Image.open(path) as image:
        return t(image.convert("RGB"))


def test_voc07_as_a_data_set_is_centre_crops_normalised_with_difficult_left_out(tmp_path):
    from gradfeat_core.experiments.data import data_files, load_dataset
    base = write_voc(tmp_path)
    d = load_dataset("voc07", root=tmp_path)
    assert d.x_train.shape == (3, 3, 224, 224) and d.x_test.shape == (2, 3, 224, 224)
    assert d.num_classes == 20 and d.in_channels == 3 and d.y_train.dtype == torch.int8
    devkit = devkit_labels(base, "trainval")  # 1 present, 0 difficult only, -1 absent
    assert np.array_equal(d.y_train.numpy(), np.select([devkit == 1, devkit == 0], [1, -1], 0))
    for x, image_id in zip(d.x_train, VOC["trainval"]):
        ref = reference_view(base / "JPEGImages" / f"{image_id}.jpg")
        # the same view up to the two resizes' rounding (a few levels of 255, ÷ ImageNet's std)
        assert (x - ref).abs().mean() < 0.02 and (x - ref).abs().max() < 0.2
    assert set(data_files("voc07", tmp_path)) == {"trainval.txt", "test.txt"}
    with pytest.raises(DataError) as e:
        load_dataset("voc07", root=tmp_path / "nowhere")
    one_line(e, "ImageSets/Main/trainval.txt", "VOCtrainval_06-Nov-2007.tar")


def test_coco2014_as_a_data_set_has_its_80_classes(tmp_path):
    from gradfeat_core.experiments.data import load_dataset
    for folder in ("train2014", "val2014"):
        path = write_coco(tmp_path, folder)
        record = json.loads(path.read_text())  # COCO's 80 categories, ids 1-90 with gaps
        ids = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]
        record["categories"] = [{"id": i, "name": f"class{i}", "supercategory": ""} for i in ids]
        path.write_text(json.dumps(record))
    d = load_dataset("coco2014", root=tmp_path)
    assert d.x_train.shape == (2, 3, 224, 224) and d.y_train.shape == (2, 80) and d.num_classes == 80
    # by image id: image 7 shows category 90 (the last of the 80), image 42 categories 1 and 3
    assert [row.nonzero().flatten().tolist() for row in d.y_train] == [[79], [0, 2]]


def test_a_grad_head_on_voc07_trains_and_scores_map_without_the_difficult_pairs(tmp_path):
    """A ResNet18's gradient head on the VOC fixture end to end (a random encoder: no weights can
    be fetched here): 3-channel 224 px views, its test mAP that of its logits with VOC's difficult
    pairs left out (metrics.mean_average_precision's ignore)."""
    from gradfeat_core.experiments.data import load_dataset
    from gradfeat_core.experiments.metrics import mean_average_precision
    from gradfeat_core.experiments.params import load_params
    from gradfeat_core.experiments.results import RunResult
    from gradfeat_core.experiments.run import load_trained, run_head
    from gradfeat_core.experiments.train import predict
    write_voc(tmp_path / "voc")
    params = load_params("quick", [f"out_dir={tmp_path}", "data.dataset=voc07", f"data.root={tmp_path / 'voc'}", "data.n_train=null", "data.n_test=null",
                                   "base.arch=resnet18", "base.leak=0", "base.calibrate_images=3",
                                   "model.layers=block8", "model.head=grad", "train.val_fraction=0",
                                   "train.eval_every=0", "train.grad.iterations=2", "train.batch_size=3"])
    result = run_head(params)
    assert result.metric == "mAP" and result.n_test == 2
    saved = RunResult.read(result.path)
    model, (_, test) = load_trained(saved.params, saved.checkpoint)
    labels = load_dataset("voc07", root=tmp_path / "voc").y_test.numpy()
    scores = predict(model, test).numpy()
    assert labels.min() == -1  # 000002's only train is difficult: left out, not absent
    assert result.mean_ap == pytest.approx(mean_average_precision(scores, labels == 1, ignore=labels < 0)[0])


# --- random views (data.train_views, data.test_views): Table 4's ten random crops ---------------

def coordinate_jpeg(path, height=150, width=200):
    """A JPEG whose red channel is the column (0 at the left edge, 255 at the right) and green
    the row: a view's pixels say where in the image it was cut, and whether it was flipped."""
    x = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    Image.fromarray(np.stack([x, y, np.zeros_like(x)], -1).round().astype(np.uint8)).save(path, quality=95)


def test_random_views_are_flipped_squares_of_a_tenth_to_a_half_of_the_image(tmp_path):
    """Read back from the pixels (hand-computed oracle): each view is a square (as wide as high in
    the image's pixels), of 10-50% of its area, mirrored in about half the views; the same seed
    gives the same views and leaves torch's own generator where it was."""
    from gradfeat_core.experiments.multilabel import random_views
    path = tmp_path / "coords.jpg"
    height, width = 150, 200
    coordinate_jpeg(path, height, width)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    views = random_views(path, 40, seed=7).float()
    assert torch.equal(torch.get_rng_state(), before)
    assert views.shape == (40, 3, 224, 224)
    assert torch.equal(random_views(path, 40, seed=7).float(), views)
    assert not torch.equal(random_views(path, 40, seed=8).float(), views)
    red_left, red_right = views[:, 0, :, 4].mean(1), views[:, 0, :, -5].mean(1)  # columns near each edge
    green_top, green_bottom = views[:, 1, 4, :].mean(1), views[:, 1, -5, :].mean(1)
    # image pixels spanned between the two sampled columns (rows): 215 of 224 output pixels
    wide = (red_right - red_left).abs() / 255 * (width - 1) * 224 / 215
    high = (green_bottom - green_top) / 255 * (height - 1) * 224 / 215
    area = wide * high / (height * width)
    assert ((wide - high).abs() < 3).all(), (wide, high)
    assert (area > 0.1 - 0.02).all() and (area < 0.5 + 0.02).all(), area
    assert area.max() - area.min() > 0.2  # spread over the range, not one size
    flipped = (red_right < red_left).float().mean()
    assert 0.25 < flipped < 0.75 and (green_bottom > green_top).all()  # mirrored left-right only


def test_voc07_with_views_holds_each_images_views_in_order_with_its_labels(tmp_path):
    from gradfeat_core.experiments.data import IMAGENET_MEAN, IMAGENET_STD, load_dataset
    from gradfeat_core.experiments.multilabel import random_views, view_seed
    base = write_voc(tmp_path)
    d = load_dataset("voc07", root=tmp_path, train_views=3, test_views=4, seed=5)
    assert d.x_train.shape == (9, 3, 224, 224) and d.y_train.shape == (9, 20) and d.train_views == 3
    assert d.x_test.shape == (2, 3, 224, 224) and d.x_test_views.shape == (8, 3, 224, 224)
    assert d.source["train_views"] == 3 and d.source["test_views"] == 4
    plain = load_dataset("voc07", root=tmp_path)
    assert torch.equal(d.x_test, plain.x_test) and torch.equal(d.y_test, plain.y_test)
    assert torch.equal(d.y_train, plain.y_train.repeat_interleave(3, 0))
    assert "train_views" not in plain.source and plain.x_test_views is None
    mean, std = (torch.tensor(v).view(3, 1, 1) for v in (IMAGENET_MEAN, IMAGENET_STD))
    for split, x, k, ids in (("train", d.x_train, 3, VOC["trainval"]), ("test", d.x_test_views, 4, VOC["test"])):
        for i, image_id in enumerate(ids):
            views = random_views(base / "JPEGImages" / f"{image_id}.jpg", k, view_seed(5, split, i))
            assert torch.allclose(x[i * k:(i + 1) * k], (views / 255 - mean) / std, atol=1e-5)
    sub = load_dataset("voc07", root=tmp_path, train_views=3, test_views=4, seed=5, n_train=2, n_test=1)
    assert sub.x_train.shape[0] == 6 and sub.x_test_views.shape[0] == 4
    for i in range(2):  # whole images, each with its three views, labels alike
        match = [j for j in range(3) if torch.equal(sub.x_train[3 * i], d.x_train[3 * j])]
        assert len(match) == 1 and torch.equal(sub.x_train[3 * i:3 * i + 3], d.x_train[3 * match[0]:3 * match[0] + 3])
        assert torch.equal(sub.y_train[3 * i:3 * i + 3], d.y_train[3 * match[0]:3 * match[0] + 3])
    with pytest.raises(DataError) as e:
        load_dataset("synthetic", train_views=2)
    one_line(e, "synthetic has no random views", "set both to 1")


def test_a_head_with_views_scores_the_centre_crop_and_the_mean_of_each_images_views(tmp_path):
    """Table 2's test (the centre crop) and Table 4's (each image's views, their logits averaged)
    from one trained head, each against mAP computed here from its own predictions."""
    from gradfeat_core.experiments.metrics import mean_average_precision
    from gradfeat_core.experiments.params import load_params
    from gradfeat_core.experiments.results import RunResult
    from gradfeat_core.experiments.run import (base_networks, experiment_data, experiment_inputs,
                                               load_trained, run_head)
    from gradfeat_core.experiments.train import predict
    write_voc(tmp_path / "voc")
    params = load_params("quick", [f"out_dir={tmp_path}", "data.dataset=voc07", f"data.root={tmp_path / 'voc'}",
                                   "data.n_train=null", "data.n_test=null", "data.train_views=2",
                                   "data.test_views=3", "base.arch=resnet18", "base.leak=0",
                                   "base.calibrate_images=3", "model.layers=block8", "model.head=full",
                                   "train.val_fraction=0", "train.eval_every=0", "train.full.iterations=2",
                                   "train.actv.iterations=2", "train.batch_size=3"])
    result = run_head(params)
    assert result.views["test_views"] == 3 and result.n_test == 2
    saved = RunResult.read(result.path)
    model, (_, centre) = load_trained(saved.params, saved.checkpoint)
    data = experiment_data(params, "cpu")
    nets = base_networks(params["base"], params["model"], data, tmp_path / "checkpoints")
    _, _, views = experiment_inputs(params, data, nets)
    labels = data.y_test.numpy()
    averaged = predict(model, views).reshape(2, 3, 20).mean(1).numpy()
    assert result.views["mean_ap"] == pytest.approx(mean_average_precision(averaged, labels == 1, ignore=labels < 0)[0])
    assert result.mean_ap == pytest.approx(
        mean_average_precision(predict(model, centre).numpy(), labels == 1, ignore=labels < 0)[0])
    assert not np.allclose(averaged, predict(model, centre).numpy())  # two tests, not one twice


def test_validation_holds_out_whole_images_with_all_their_views():
    from gradfeat_core.experiments.run import split_validation
    labels = torch.arange(10).repeat_interleave(4)  # 10 images × 4 views, rows image by image
    inputs = torch.arange(40.0)[:, None]
    (kept, kept_labels), validate = split_validation(inputs, labels, {"val_fraction": 0.3, "eval_batch_size": 7}, 0, views=4)
    held = set(range(40)) - set(kept.indices.tolist())
    assert validate.size == 3 and len(held) == 12
    assert {r // 4 for r in held}.isdisjoint({r // 4 for r in kept.indices.tolist()})
    assert all(sum(r // 4 == i for r in held) == 4 for i in {r // 4 for r in held})
    assert torch.equal(kept_labels, labels[kept.indices])


def test_test_views_are_decoded_from_the_files_when_read_the_same_in_any_order(tmp_path):
    """Test views are never held (multilabel.StreamedViews): each batch is decoded from the JPEG
    files when read. In order (the next batch decoded ahead), backwards, shuffled, as slices or
    index tensors, and for a subset of the test images (n_test): the same pixels as the views
    decoded and held at once (multilabel.views_of), normalised as the centre crops are."""
    from gradfeat_core.experiments.data import IMAGENET_MEAN, IMAGENET_STD, load_dataset
    from gradfeat_core.experiments.multilabel import StreamedViews, views_of
    base = write_voc(tmp_path)
    d = load_dataset("voc07", root=tmp_path, test_views=4, seed=5)
    views = d.x_test_views
    assert isinstance(views, StreamedViews) and views._ahead == {}  # nothing decoded at load
    assert views.shape == (8, 3, 224, 224) and views.dtype == torch.float32 and len(views) == 8
    assert d.images() == [d.x_train, d.x_test]  # what is held: not the views
    files = [base / "JPEGImages" / f"{image_id}.jpg" for image_id in VOC["test"]]
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (IMAGENET_MEAN, IMAGENET_STD))
    held = (torch.from_numpy(views_of(files, 4, 5, "test")) / 255 - mean) / std
    in_order = torch.cat([views[torch.arange(i, min(i + 3, 8))] for i in range(0, 8, 3)])
    assert torch.allclose(in_order, held, atol=1e-6)
    for rows in (torch.arange(7, -1, -1), torch.randperm(8, generator=torch.Generator().manual_seed(0))):
        assert torch.allclose(torch.cat([views[rows[i:i + 3]] for i in range(0, 8, 3)]), held[rows], atol=1e-6)
    assert torch.allclose(views[2:6], held[2:6], atol=1e-6) and views[torch.arange(0)].shape == (0, 3, 224, 224)
    sub = load_dataset("voc07", root=tmp_path, test_views=4, seed=5, n_test=1)
    image = next(i for i in range(2) if torch.equal(sub.x_test[0], d.x_test[i]))
    assert torch.allclose(sub.x_test_views[torch.arange(4)], held[4 * image:4 * image + 4], atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_views_on_cuda_are_the_cpus_and_a_head_scores_them_there(tmp_path):
    """On CUDA, training views held in pinned host memory as uint8 (a device budget of 1000
    bytes) and test views decoded from the files arrive on the GPU as the CPU's pixels; a head
    with views trains and scores both tests there."""
    from gradfeat_core.experiments.data import load_dataset
    from gradfeat_core.experiments.memory import HostResident
    from gradfeat_core.experiments.params import load_params
    from gradfeat_core.experiments.run import run_head
    write_voc(tmp_path / "voc")
    kw = dict(root=tmp_path / "voc", train_views=2, test_views=3, seed=5)
    cpu = load_dataset("voc07", **kw)
    gpu = load_dataset("voc07", device="cuda", device_budget=1000, log=lambda m: None, **kw)
    assert isinstance(gpu.x_train, HostResident) and gpu.x_train.host.is_pinned()
    for x, ref in ((gpu.x_train, cpu.x_train), (gpu.x_test_views, cpu.x_test_views)):
        rows = torch.arange(6, device="cuda")
        assert x[rows].is_cuda and torch.allclose(x[rows].cpu(), ref[rows.cpu()], atol=1e-5)
    params = load_params("quick", [f"out_dir={tmp_path}", "device=cuda", "data.dataset=voc07",
                                   f"data.root={tmp_path / 'voc'}", "data.n_train=null", "data.n_test=null",
                                   "data.train_views=2", "data.test_views=3", "base.arch=resnet18",
                                   "base.leak=0", "base.calibrate_images=3", "model.layers=block8",
                                   "model.head=full", "train.val_fraction=0", "train.eval_every=0",
                                   "train.full.iterations=2", "train.actv.iterations=2", "train.batch_size=3"])
    result = run_head(params)
    assert result.views["test_views"] == 3 and 0 < result.views["mean_ap"] <= 1 and 0 < result.mean_ap <= 1
