"""Published ResNet weights as encoder checkpoints (experiments/weights.py): torchvision files and
Goyal et al.'s Caffe2 pickles (Jigsaw's siamese towers, BGR conv1), checked against torchvision's
own forward; a file that would run code or is of another architecture is a one-line error."""
import os
import pickle

import numpy as np
import pytest
import torch
from torchvision.models import resnet as tv

from gradfeat_core.cli import main
from gradfeat_core.experiments.checkpoint import CheckpointError, load_into
from gradfeat_core.experiments.weights import import_weights
from gradfeat_core.method.registry import ARCHITECTURES


def reference(arch, seed=0):
    """torchvision's `arch` with random weights and batch-norm statistics, in eval mode."""
    torch.manual_seed(seed)
    net = getattr(tv, arch)()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5), m.bias.normal_(0, 0.1)
                m.running_mean.normal_(0, 0.1), m.running_var.uniform_(0.5, 1.5)
    return net.eval()


def same_features(net, checkpoint, arch):
    ours = ARCHITECTURES[arch](3)
    load_into(ours, checkpoint)
    x = torch.rand(2, 3, 64, 64)
    net.fc = torch.nn.Identity()
    with torch.no_grad():
        return torch.allclose(ours.eval()(x), net(x), atol=1e-5)


def caffe2_blobs(net, towers=1):
    """net's weights under Caffe2's names, written here from its naming (conv <name>_w; batch
    norm <name>_bn_{s,b,rm,riv}; res<stage>_<block>_branch{2a,2b,2c,1}; conv1 in BGR order), each
    in every siamese tower (_s<k>_, towers > 1: Jigsaw; the others' values garbage), with the
    momenta, lr, iteration and classifier blobs a training checkpoint has."""
    named = {"conv1": (net.conv1, net.bn1)}
    for stage, layer in enumerate((net.layer1, net.layer2, net.layer3, net.layer4), start=2):
        for i, block in enumerate(layer):
            convs = [(block.conv1, block.bn1), (block.conv2, block.bn2)]
            convs += [(block.conv3, block.bn3)] if hasattr(block, "conv3") else []
            for branch, pair in zip(("branch2a", "branch2b", "branch2c"), convs):
                named[f"res{stage}_{i}_{branch}"] = pair
            if block.downsample is not None:
                named[f"res{stage}_{i}_branch1"] = tuple(block.downsample)
    blobs = {"lr": np.float32(0.1), "model_iter": np.int64(10), "pred_w": np.zeros((9, 4), np.float32)}
    for name, (conv, bn) in named.items():
        w = conv.weight.detach().numpy().copy()
        if name == "conv1":
            w = w[:, ::-1].copy()
        stats = {"s": bn.weight, "b": bn.bias, "rm": bn.running_mean, "riv": bn.running_var}
        bn_name = "res_conv1_bn" if name == "conv1" else f"{name}_bn"
        for k in range(towers):
            tag = f"_s{k}" if towers > 1 else ""
            noise = 0 if k == 0 else 7.0
            blobs[f"{name}{tag}_w"] = w + noise
            blobs[f"{name}{tag}_w_momentum"] = w * 0
            for stat, value in stats.items():
                blobs[f"{bn_name}{tag}_{stat}"] = value.detach().numpy() + noise
        if towers > 1:
            blobs["fc1_s0_w"] = np.zeros((3, 3), np.float32)
    return {"blobs": blobs}


@pytest.mark.parametrize("arch,towers", [("resnet50", 3), ("resnet18", 1)])
def test_a_caffe2_pickle_converts_to_the_same_network(tmp_path, arch, towers):
    net = reference(arch)
    path = tmp_path / "model.pkl"
    with open(path, "wb") as fh:
        pickle.dump(caffe2_blobs(net, towers), fh, protocol=2)
    fmt = "caffe2-jigsaw" if towers > 1 else "caffe2"
    sha = import_weights(arch, tmp_path / "encoder.pt", path, fmt)
    assert len(sha) == 64 and same_features(net, tmp_path / "encoder.pt", arch)
    import_weights(arch, tmp_path / "rgb.pt", path, fmt, bgr=False)  # conv1 left as stored: BGR
    assert not same_features(net, tmp_path / "rgb.pt", arch)


def test_a_torchvision_file_converts_and_another_architecture_is_named(tmp_path, capsys):
    net = reference("resnet18", seed=1)
    torch.save(net.state_dict(), tmp_path / "r18.pth")
    assert main(["import-weights", str(tmp_path / "r18.pth"), "--arch", "resnet18",
                 "--out", str(tmp_path / "encoder.pt")]) == 0
    assert "base.checkpoint_sha256: " in capsys.readouterr().out
    assert same_features(net, tmp_path / "encoder.pt", "resnet18")
    torch.save(reference("resnet50").state_dict(), tmp_path / "r50.pth")
    with pytest.raises(CheckpointError, match="not resnet18's .a resnet50 state dict"):
        import_weights("resnet18", tmp_path / "x.pt", tmp_path / "r50.pth")


def test_a_tensor_of_another_shape_is_one_line_naming_it_and_both_shapes(tmp_path, capsys):
    state = reference("resnet18").state_dict()
    state["layer3.1.conv2.weight"] = torch.zeros(256, 256, 1, 1)  # resnet18's is 3×3
    torch.save(state, tmp_path / "bad.pth")
    assert main(["import-weights", str(tmp_path / "bad.pth"), "--arch", "resnet18",
                 "--out", str(tmp_path / "x.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and not (tmp_path / "x.pt").exists()
    assert "layer3.1.conv2.weight" in err and "(256, 256, 1, 1)" in err and "(256, 256, 3, 3)" in err


class Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_a_pickle_that_would_run_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"blobs": {"conv1_w": Exploit()}}, protocol=2))
    assert main(["import-weights", str(path), "--arch", "resnet50", "--format", "caffe2",
                 "--out", str(tmp_path / "x.pt")]) == 2
    err = capsys.readouterr()
    assert "refused posix.system" in err.err and len(err.err.strip().splitlines()) == 1
    assert "pwned" not in err.out and not (tmp_path / "x.pt").exists()
