"""Supervised pre-training with labels: the stand-in for the ImageNet networks of Tables 2 and 4.

The base network f (a registered architecture; resnet18 here), then one linear layer, learns
the source task's classes by softmax cross-entropy, as torchvision's ImageNet ResNets were
trained. The stand-in's source task is Fashion-MNIST's classes 0-6 (data set fashion-source,
experiments/data.py); the heads then transfer f to the multi-label mosaics (fashion-mosaic),
whose classes 7-9 the source never saw. The heads load `features` as they load any encoder.
"""
import torch
import torch.nn.functional as F
from torch import nn

from .registry import ARCHITECTURES, Objective, one_loss, register


class Classifier(nn.Module):
    """E(x): f(x), then logits over the source task's classes."""

    def __init__(self, arch, in_channels, classes, leak):
        super().__init__()
        self.features = ARCHITECTURES[arch](in_channels, leak, batchnorm=True)
        self.classify = nn.Linear(self.features.FEATURE_DIM, classes)

    def forward(self, x):
        return self.classify(self.features(x))


def classification_loss(nets, batch):
    """(cross-entropy, accuracy) of the labelled batch (images, class indices)."""
    x, y = batch
    logits = nets["E"](x)
    return F.cross_entropy(logits, y), (logits.argmax(1) == y).float().mean()


def build(arch):
    def networks(in_channels, p, leak, seed, classes):
        """{'E': the classifier}, the architecture's own initialisation from seed."""
        torch.manual_seed(seed)
        return {"E": Classifier(arch, in_channels, classes, leak)}
    return networks


register(Objective(
    "supervised", "supervised pre-training on the source task's labels (the stand-in for "
    "torchvision's ImageNet ResNet18)", "resnet18",
    {"loss": "cross-entropy", "accuracy": "training accuracy"},
    build=build("resnet18"), update=one_loss(lambda nets, batch, p: classification_loss(nets, batch)),
    ylabel="loss / accuracy", labelled=True, stands_for="imagenet-resnet18"))
