"""The paper's own ResNets of Tables 2 and 4, whose weights are imported, never pre-trained here:
torchvision's ImageNet-supervised ResNet18 and Goyal et al.'s (2019) Jigsaw ResNet50.
`python -m gradfeat_core import-weights` writes them as encoder checkpoints
(experiments/weights.py); params/objectives/<name>.yaml points base.checkpoint at the file it
writes. Registered as objectives so that a run on them is named, labelled and matched to the
paper's numbers like any base network (results.csv's `base`, grid.paper_value, claims.c8)."""
from .registry import Objective, register

IMPORT = {"imagenet-resnet18": "python -m gradfeat_core import-weights resnet18-f37072fd.pth --arch resnet18 "
                               "--out encoders/imagenet-resnet18/encoder.pt",
          "jigsaw-resnet50": "python -m gradfeat_core import-weights resnet50_jigsaw_in1k.pkl --arch resnet50 "
                             "--format caffe2-jigsaw --out encoders/jigsaw-resnet50/encoder.pt"}


def _not_here(name):
    def build(*args, **kwargs):  # pretrain() refuses an imported objective before it gets here
        raise NotImplementedError(f"{name} is imported, not pre-trained: {IMPORT[name]}")
    return build


for _name, _label, _arch in (
        ("imagenet-resnet18", "torchvision's ImageNet-supervised ResNet18 (imported)", "resnet18"),
        ("jigsaw-resnet50", "Goyal et al.'s Jigsaw ResNet50 (self-supervised on ImageNet; imported)", "resnet50")):
    register(Objective(_name, _label, _arch, {}, build=_not_here(_name), update=_not_here(_name),
                       paper=_name, imported=True))
