"""Published base networks as encoder checkpoints (`python -m gradfeat_core import-weights`):
torchvision's ResNet weights, from a local file or, when asked, downloaded by torchvision on a
machine with a network, and the Caffe2 pickles of Goyal et al. 2019 (fair_self_supervision_benchmark:
Jigsaw and supervised ResNet-50s), the base networks of the paper's Tables 2 and 4.

Nothing here runs code from a file: torchvision files load with weights_only=True, Caffe2
pickles through data.ArrayUnpickler (arrays, dicts, strings only). The checkpoint written is
the encoder's state dict in this package's block names (method/resnet.py) with plain metadata:
the architecture, the data set it was trained on, where it came from. These networks were
trained on ImageNet-normalised RGB images (per-channel mean and standard deviation): feeding them
other pixels is the data pipeline's concern, not the checkpoint's (its pixel_range says [0, 1]).
"""

import torch

from ..method.registry import ARCHITECTURES
from ..method.resnet import ResNet, from_caffe2, from_torchvision
from .checkpoint import CheckpointError, save_checkpoint
from .data import ArrayUnpickler, _one_line
from .results import file_sha256

FORMATS = ("torchvision", "caffe2", "caffe2-jigsaw")


class Caffe2Unpickler(ArrayUnpickler):
    """Arrays and numpy scalars (a checkpoint's lr and iteration), nothing that runs code."""
    ALLOWED = ArrayUnpickler.ALLOWED | {("numpy.core.multiarray", "scalar"),
                                        ("numpy._core.multiarray", "scalar")}
    WHAT = "a Caffe2 weights pickle"


def read_blobs(path):
    """{blob name: numpy array} of a Caffe2 weights pickle ({'blobs': {...}} or the blobs alone)."""
    try:
        with open(path, "rb") as fh:
            data = Caffe2Unpickler(fh, encoding="latin1").load()
        blobs = data.get("blobs", data)
        assert isinstance(blobs, dict)
    except Exception as e:
        raise CheckpointError(f"{path} is not a Caffe2 weights pickle ({_one_line(e)})") from None
    return blobs


def torchvision_weights(arch, source=None):
    """torchvision's state dict of `arch`: from the file `source`, or, with source None,
    torchvision's own ImageNet weights, downloaded (only here, when asked: never at run time)."""
    if source is not None:
        try:
            state = torch.load(source, map_location="cpu", weights_only=True)
        except Exception as e:
            raise CheckpointError(f"{source} is not a torchvision state dict ({_one_line(e)})") from None
        return state.get("state_dict", state) if isinstance(state, dict) else state
    from torchvision.models import get_model_weights
    return get_model_weights(arch).DEFAULT.get_state_dict(progress=True)


def import_weights(arch, out, source=None, fmt="torchvision", dataset="imagenet", bgr=True):
    """Write `arch`'s encoder checkpoint to `out` from `source` in `fmt` (FORMATS; torchvision
    with no source: its ImageNet weights, downloaded); returns the file's sha256 (what
    base.checkpoint_sha256 pins). A file of another architecture is a one-line error."""
    if arch not in ARCHITECTURES or not issubclass(ARCHITECTURES[arch], ResNet):
        raise CheckpointError(f"--arch {arch}: choose a ResNet ({', '.join(a for a, c in ARCHITECTURES.items() if issubclass(c, ResNet))})")
    if fmt not in FORMATS:
        raise CheckpointError(f"--format {fmt}: choose one of {', '.join(FORMATS)}")
    if fmt != "torchvision" and source is None:
        raise CheckpointError(f"--format {fmt} needs the weights file")
    state = (torchvision_weights(arch, source) if fmt == "torchvision" else
             from_caffe2(read_blobs(source), jigsaw=fmt == "caffe2-jigsaw", bgr=bgr))
    try:
        ours = from_torchvision(state, arch)
    except (ValueError, KeyError) as e:
        raise CheckpointError(f"{source or 'the download'}: {_one_line(e)}") from None
    net = ARCHITECTURES[arch](3)
    net.load_state_dict(ours)
    meta = dict(net.meta(dataset, [0.0, 1.0]), objective=f"imported ({fmt})",
                source=str(source) if source else f"torchvision {arch} DEFAULT weights",
                source_sha256=file_sha256(source) if source else None)
    save_checkpoint(out, net.state_dict(), meta)
    return file_sha256(out)
