"""ResNet base networks (He et al. 2016) for Tables 2 and 4: torchvision's architectures by name,
each a BaseNetwork whose blocks are the stem and every residual block in order.

    stem     conv1 7×7 s2 → batch norm → ReLU → max-pool 3×3 s2     (torchvision's conv1, bn1, maxpool)
    block1…  torchvision's BasicBlock (resnet18/34) or Bottleneck (resnet50/101/152), in order:
             resnet18's block1-2 are layer1.0-1, …, block7 = layer4.0, block8 = layer4.1
    pool     global average → f(x): 512-d (BasicBlock) or 2048-d (Bottleneck)

θ2 is a set of top residual blocks: Table 2's "layer4 block 2" is resnet18's block8 and "layer4
blocks 1–2" block7-8; Table 4's "the last residual block" is the top block (resnet50's block16).
The blocks are torchvision's own modules, so that torchvision's weights load by renaming keys
(`from_torchvision`) and its blocks' forward is the reference the linear model differentiates
(torch.func.jvp), and the fast tangent path (method/tangent.py) runs each BasicBlock and
Bottleneck with its batch norm folded, checked against that JVP.
"""
import re
from collections import OrderedDict

import torch
from torch import nn
from torchvision.models import resnet as tv

from .nets import BaseNetwork
from .registry import ARCHITECTURES, architecture


class ResNet(BaseNetwork):
    """f(x) of a torchvision ResNet without its classifier (BLOCK, DEPTHS: which one)."""
    BLOCK, DEPTHS = None, ()
    BATCHNORM = True
    TABLES = (4, 2)  # the paper transfers ResNets to VOC07/COCO2014 (Table 4) and ablates them (Table 2)

    def __init__(self, in_channels=3, leak=0.0, batchnorm=True):
        if not batchnorm:
            raise ValueError(f"{self.ARCH} has batch norm in every block: set base.batchnorm to true")
        if leak:
            raise ValueError(f"{self.ARCH} uses ReLU: set base.leak to 0")
        net = tv.ResNet(self.BLOCK, list(self.DEPTHS))
        if in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        blocks = OrderedDict(stem=nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool))
        for block in (b for layer in (net.layer1, net.layer2, net.layer3, net.layer4) for b in layer):
            blocks[f"block{len(blocks)}"] = block
        blocks["pool"] = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        super().__init__(blocks)
        self.config = dict(in_channels=in_channels, leak=0.0, batchnorm=True)

    def reset_parameters(self, generator=None):
        """torchvision's initialisation: convs Kaiming normal (fan out, ReLU), batch norm 1 and 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=generator)
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_parameters()
        return self


TORCHVISION_KEY = re.compile(r"layer(\d)\.(\d+)\.(.*)")


def from_torchvision(state_dict, arch):
    """torchvision's state dict of `arch` (resnet18, resnet50, ...) in this module's names:
    conv1/bn1 → stem.0/stem.1, layer<i>.<j> → block<k> (k counting blocks from 1), fc dropped.
    A state dict of another architecture is a one-line ValueError that says which one it is; one
    of its own with a tensor of another shape names the tensor and both shapes."""
    net = ARCHITECTURES[arch]
    offsets = [sum(net.DEPTHS[:i]) for i in range(4)]
    out, names = {}, {}  # names: ours → the file's (torchvision's) name of each tensor
    for key, value in state_dict.items():
        if key.startswith("fc."):
            continue
        m = TORCHVISION_KEY.fullmatch(key)
        if m:
            layer, index, rest = int(m[1]), int(m[2]), m[3]
            ours = f"block{offsets[layer - 1] + index + 1}.{rest}"
        else:
            ours = re.sub(r"^conv1\.", "stem.0.", re.sub(r"^bn1\.", "stem.1.", key))
        out[ours], names[ours] = value, key
    expected = {k: v.shape for k, v in net(_channels(state_dict)).state_dict().items()}
    if set(out) != set(expected):
        raise ValueError(f"the weights are not {arch}'s ({architecture_of(state_dict)}): name the "
                         "file's own architecture in base.arch")
    wrong = [k for k in expected if out[k].shape != expected[k]]
    if wrong:  # the right tensors, one of another shape: a damaged or edited file
        raise ValueError(f"tensor {names[wrong[0]]} has shape {tuple(out[wrong[0]].shape)} but {arch}'s is "
                         f"{tuple(expected[wrong[0]])}"
                         + (f" ({len(wrong) - 1} more tensors differ)" if len(wrong) > 1 else "")
                         + "; the file is damaged or of another network")
    return out


def block_names(arch, layers):
    """Blocks of `arch` in this module's names for torchvision's (as the paper names θ2):
    'layer4.1' → 'block8', 'layer4.0-1' → 'block7-8' on resnet18."""
    net = ARCHITECTURES[arch]
    m = re.fullmatch(r"layer(\d)\.(\d+)(?:-(\d+))?", layers)
    if not m:
        raise ValueError(f"{layers!r} is not a torchvision block ('layer4.1') or range ('layer4.0-1')")
    offset = sum(net.DEPTHS[:int(m[1]) - 1]) + 1
    first, last = offset + int(m[2]), offset + int(m[3] or m[2])
    return f"block{first}" if first == last else f"block{first}-{last}"


# Caffe2's ResNet blob names (Goyal et al. 2019's fair_self_supervision_benchmark, Detectron) in
# torchvision's: the stem, then res<stage>_<block>_branch{2a,2b,2c: the main convs; 1: the
# shortcut}, each conv's batch norm <name>_bn_{s scale, b bias, rm running mean, riv running var}.
CAFFE2_CONV = {"branch2a": "conv1", "branch2b": "conv2", "branch2c": "conv3", "branch1": "downsample.0"}
CAFFE2_BN = {"branch2a": "bn1", "branch2b": "bn2", "branch2c": "bn3", "branch1": "downsample.1"}
CAFFE2_STAT = {"s": "weight", "b": "bias", "rm": "running_mean", "riv": "running_var"}
CAFFE2_BLOB = re.compile(r"res(\d)_(\d+)_(branch2a|branch2b|branch2c|branch1)(_bn)?_(w|s|b|rm|riv)")
CAFFE2_TOWER = re.compile(r"_s(\d)_")  # a Jigsaw network's siamese towers: _s0_ … _s8_


def from_caffe2(blobs, jigsaw=False, bgr=True):
    """A torchvision ResNet state dict from a Caffe2 ResNet's blobs {name: numpy array}: the
    trunk only (the classifier, optimiser momenta, lr and iteration blobs left out). jigsaw: the
    blobs of a Jigsaw network's siamese towers, whose first (_s0_) holds the shared weights and
    its own batch norm: it is kept, the other towers left out. bgr: conv1 was trained on BGR
    images (Caffe2 decodes with OpenCV): its input channels are reversed for RGB ones. A blob of
    the trunk that no rule names is a one-line ValueError."""
    out = {}
    for name, value in blobs.items():
        if jigsaw:
            tower = CAFFE2_TOWER.search(name)
            if tower and tower[1] != "0":
                continue
            name = CAFFE2_TOWER.sub("_", name, count=1)
        if name.endswith("_momentum") or not (name.startswith("res") or name.startswith("conv1")):
            continue  # the classifier (pred, fc), lr, model_iter
        tensor = torch.as_tensor(value.copy() if hasattr(value, "copy") else value)
        if name == "conv1_w":
            out["conv1.weight"] = tensor.flip(1) if bgr and tensor.shape[1] == 3 else tensor
        elif name.startswith("res_conv1_bn_") and name[13:] in CAFFE2_STAT:
            out[f"bn1.{CAFFE2_STAT[name[13:]]}"] = tensor
        elif m := CAFFE2_BLOB.fullmatch(name):
            stage, block, branch, bn, kind = m.groups()
            prefix = f"layer{int(stage) - 1}.{block}."
            if bn:
                out[prefix + f"{CAFFE2_BN[branch]}.{CAFFE2_STAT[kind]}"] = tensor
            elif kind == "w":
                out[prefix + f"{CAFFE2_CONV[branch]}.weight"] = tensor
            else:
                raise ValueError(f"Caffe2 blob {name!r}: a convolution has no {kind!r} here")
        else:
            raise ValueError(f"Caffe2 blob {name!r} is not one of a ResNet trunk's")
    for key in [k for k in out if k.endswith("running_var")]:  # what torchvision's state dict has too
        out[key[:-len("running_var")] + "num_batches_tracked"] = torch.tensor(0)
    return out


def _channels(state_dict):
    weight = state_dict.get("conv1.weight")
    return weight.shape[1] if weight is not None and weight.dim() == 4 else 3


def architecture_of(state_dict):
    """Which registered ResNet a torchvision state dict is, in words."""
    blocks = {}
    for key in state_dict:
        m = TORCHVISION_KEY.fullmatch(key)
        if m:
            blocks.setdefault(int(m[1]), set()).add(int(m[2]))
    depths = tuple(len(blocks.get(i, ())) for i in range(1, 5))
    bottleneck = any(k.endswith("conv3.weight") for k in state_dict)
    match = [name for name, cls in ARCHITECTURES.items() if issubclass(cls, ResNet)
             and cls.DEPTHS == depths and (cls.BLOCK is tv.Bottleneck) == bottleneck]
    return (f"a {match[0]} state dict" if match else
            f"a state dict with {sum(depths)} residual blocks {depths}, "
            f"{'Bottleneck' if bottleneck else 'BasicBlock'}, no registered ResNet")


# The paper's two; another of torchvision's family is one more line here (resnet34: BasicBlock,
# (3, 4, 6, 3); resnet101: Bottleneck, (3, 4, 23, 3)), and every test and the bench then cover it.
for _name, _block, _depths in (("resnet18", tv.BasicBlock, (2, 2, 2, 2)),
                               ("resnet50", tv.Bottleneck, (3, 4, 6, 3))):
    _blocks = sum(_depths)
    architecture(type(_name, (ResNet,), {
        "ARCH": _name, "BLOCK": _block, "DEPTHS": _depths,
        "LAYERS": ("stem", *(f"block{i}" for i in range(1, _blocks + 1))),
        "FEATURE_DIM": 512 * _block.expansion,
        "DESCRIPTION": f"torchvision's {_name} (He et al. 2016)",
        "BENCH_LAYERS": (f"block{_blocks}", f"block{_blocks - 1}-{_blocks}"),
        "__doc__": f"{_name}: {_block.__name__} × {_depths}, f(x) {512 * _block.expansion}-d.",
    }))
