"""Rotation prediction (Gidaris et al. 2018): a self-supervised pre-training of the same encoder.

An extension beyond the paper, in the spirit of its Table 4 (self-supervised base networks): the
five-conv `Encoder` f (or a ResNet18: `rotation-resnet18`), then one linear layer, learns to
tell which of 0°, 90°, 180°, 270° an image was rotated by. Every batch of B images becomes 4B: each image under each rotation.
The heads load `features` exactly as they load a BiGAN's encoder.
"""
import torch
import torch.nn.functional as F
from torch import nn

from .registry import ARCHITECTURES, Objective, one_loss, register

ROTATIONS = 4  # multiples of 90°


class RotationNet(nn.Module):
    """E(x): f(x), then logits over the four rotations (f: the five-conv encoder, or another
    registered architecture)."""

    def __init__(self, in_channels, leak, arch="ali"):
        super().__init__()
        self.features = ARCHITECTURES[arch](in_channels, leak, batchnorm=True)
        self.classify = nn.Linear(self.features.FEATURE_DIM, ROTATIONS)

    def forward(self, x):
        return self.classify(self.features(x))


def rotated(x):
    """(images, labels): every image of x (B, C, H, W; H = W) under every rotation, label k for
    k·90° counter-clockwise."""
    images = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(ROTATIONS)])
    labels = torch.arange(ROTATIONS, device=x.device).repeat_interleave(len(x))
    return images, labels


def build_rotnet(in_channels, leak, seed, arch="ali"):
    """{'E': the rotation network}, the architecture's own initialisation (PyTorch's default,
    fan-in scaled, for the five-conv encoder) from seed."""
    torch.manual_seed(seed)
    return {"E": RotationNet(in_channels, leak, arch)}


def rotation_loss(nets, x):
    """(cross-entropy, accuracy) of predicting the rotations of the batch x."""
    images, labels = rotated(x)
    logits = nets["E"](images)
    return F.cross_entropy(logits, labels), (logits.argmax(1) == labels).float().mean()


register(Objective(
    "rotation", "rotation prediction (Gidaris et al. 2018), an extension beyond the paper, which "
    "pre-trains BiGAN and VAE encoders", "ali",
    {"loss": "rotation cross-entropy", "accuracy": "rotation accuracy"},
    build=lambda c, p, leak, seed: build_rotnet(c, leak, seed),
    update=one_loss(lambda nets, x, p: rotation_loss(nets, x)), ylabel="loss / accuracy"))

# The same on a ResNet18: the stand-in for Table 4's self-supervised (Jigsaw) ResNet, a pretext task
# far from the target's labels.
register(Objective(
    "rotation-resnet18", "rotation prediction on a ResNet18 (the stand-in for Goyal et al.'s "
    "self-supervised Jigsaw ResNet50)", "resnet18",
    {"loss": "rotation cross-entropy", "accuracy": "rotation accuracy"},
    build=lambda c, p, leak, seed: build_rotnet(c, leak, seed, "resnet18"),
    update=one_loss(lambda nets, x, p: rotation_loss(nets, x)), ylabel="loss / accuracy",
    stands_for="jigsaw-resnet50"))
