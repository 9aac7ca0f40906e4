"""Base networks and the surgery the linear model needs.

The encoder f of the BiGAN/ALI experiments (Dumoulin et al. 2016, as used by Mu et al. 2020):
five convolutions without padding, each followed by batch norm and a leaky ReLU, then average
pooling to a 512-d feature. 32×32 inputs (28×28 data is padded by the data module).

    conv1  C→32  k5 s1  32→28        conv4  128→256 k4 s2  10→4
    conv2  32→64 k4 s2  28→13        conv5  256→512 k4 s1   4→1
    conv3  64→128 k4 s1 13→10        pool   average → 512-d f(x)

θ2 is a set of top blocks (conv5, conv4-5 or conv3-5); θ1 is every block below them.

Every base network is a `BaseNetwork` that names its blocks in `LAYERS` and registers itself
(registry.architecture) under its `ARCH`, what `base.arch` names: `ali` here, `vae` (the VAE's
eight-conv encoder of Table 3's lower half) in vae.py.
"""
import copy
import math
import re
from collections import OrderedDict

import torch
from torch import nn

from .registry import ARCHITECTURES, architecture

LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5")
ALI_CONVS = ((32, 5, 1), (64, 4, 2), (128, 4, 1), (256, 4, 2), (512, 4, 1))  # (out, kernel, stride)
FEATURE_DIM = 512
# NTK scale rules: (weight scale from the weight's shape, bias scale).
NTK_RULES = {
    "authors": (lambda shape: math.sqrt(1.0 / shape[0]), math.sqrt(0.1)),  # public code
    "fan_in": (lambda shape: 1.0 / math.sqrt(math.prod(shape[1:])), 0.1),  # Jacot et al., β = 0.1
}


class BaseNetwork(nn.Sequential):
    """A base network f: named blocks `LAYERS` (bottom to top), then `pool` to FEATURE_DIM."""
    ARCH, LAYERS = None, ()
    FEATURE_DIM = FEATURE_DIM  # of f(x), what `pool` gives
    DESCRIPTION = ""  # in words, for the report
    BATCHNORM = True  # whether it can have batch norm (base.batchnorm)
    BENCH_LAYERS = ()  # the θ2 choices `make bench` times on it, the top block first
    TABLES = (3,)      # the paper's tables its runs reproduce: the heads' (3; 4 for a transfer
                       # to multi-label targets), then the ablation's (1; 2), if the paper has one

    def meta(self, dataset, pixel_range):
        """What a checkpoint of this encoder was made for; heads refuse one made for other."""
        return {"kind": "encoder", "arch": f"{self.ARCH}-encoder", **self.config, "dataset": dataset,
                "pixel_range": [float(v) for v in pixel_range], "parametrisation": "standard"}

    def flops(self, size=32):
        """{block: forward FLOPs per image of its convolutions and linear maps} on size × size
        inputs: 2 per multiply-accumulate (as torch.utils.flop_counter counts), the shapes from
        one forward pass of a copy on the meta device (no arithmetic done)."""
        net, counts = copy.deepcopy(self).to("meta").eval(), dict.fromkeys(self.LAYERS, 0)

        def counter(block):
            def count(module, inputs, output):
                per_output = (module.in_channels // module.groups * math.prod(module.kernel_size)
                              if isinstance(module, nn.Conv2d) else module.in_features)
                counts[block] += 2 * output[0].numel() * per_output
            return count
        hooks = [m.register_forward_hook(counter(name)) for name in self.LAYERS
                 for m in net._modules[name].modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        with torch.no_grad():
            net(torch.empty(1, self.config["in_channels"], size, size, device="meta"))
        for hook in hooks:
            hook.remove()
        return counts

    def map_sides(self, size=32):
        """{block: side of the feature map it outputs} on size × size inputs (one pass of a copy on
        the meta device): where a top block's 3×3 kernels have space to act (1: centre taps only)."""
        net, sides = copy.deepcopy(self).to("meta").eval(), {}
        x = torch.empty(1, self.config["in_channels"], size, size, device="meta")
        with torch.no_grad():
            for name in self.LAYERS:
                x = net._modules[name](x)
                sides[name] = x.shape[-1]
        return sides


@architecture
class Encoder(BaseNetwork):
    """f(x): blocks conv1..conv5 (conv [→ batch norm] → leaky ReLU), then `pool`."""
    ARCH, LAYERS = "ali", LAYERS
    DESCRIPTION = "the paper's five-conv encoder"
    BENCH_LAYERS = ("conv5", "conv4-5", "conv3-5")
    TABLES = (3, 1)

    def __init__(self, in_channels=1, leak=0.01, batchnorm=True):
        blocks, channels = OrderedDict(), in_channels
        for name, (out, kernel, stride) in zip(LAYERS, ALI_CONVS):
            layers = [nn.Conv2d(channels, out, kernel, stride, bias=not batchnorm)]
            layers += [nn.BatchNorm2d(out)] if batchnorm else []
            blocks[name] = nn.Sequential(*layers, nn.LeakyReLU(leak))
            channels = out
        blocks["pool"] = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        super().__init__(blocks)
        self.config = dict(in_channels=in_channels, leak=leak, batchnorm=batchnorm)

    def reset_parameters(self, generator=None):
        """ALI's initialisation: conv weights N(0, 0.01), biases 0, batch-norm scale 1."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                with torch.no_grad():
                    m.weight.copy_(torch.randn(m.weight.shape, generator=generator) * 0.01)
                    if m.bias is not None:
                        m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_parameters()
        return self


def he_init(module, leak, generator=None):
    """Every conv of `module`: weights N(0, 2 / ((1 + leak²) fan_in)) (Kaiming normal for a leaky
    ReLU of slope `leak`), biases 0. It keeps each layer's second moment near its input's where
    PyTorch's default (std 1/√(3 fan_in)) divides it by ~3 per layer: at that init the VAE
    encoder's conv8 output was 60× smaller than its input and its 512 features varied across
    images by a per-dimension std of 5e-5, too little for a linear probe to learn from."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, a=leak, nonlinearity="leaky_relu", generator=generator)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


@torch.no_grad()
def calibrate_batchnorm(net, x, batch_size=500):
    """Set batch-norm running statistics to their average over `x` (a fresh network has 0/1).

    A randomly initialised encoder is only meaningful in eval mode once its statistics describe
    the data; this is the cumulative average over batches, as in train mode with momentum=None.
    """
    bns = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    if not bns:
        return net
    saved = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
    net.train()
    for start in range(0, len(x), batch_size):
        net(x[start:start + batch_size])
    for bn, momentum in zip(bns, saved):
        bn.momentum = momentum
    return net.eval()


def calibrate_on(net, images, n, seed):
    """calibrate_batchnorm on a seeded random subset of n images."""
    pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n]
    return calibrate_batchnorm(net, images[pick.to(images.device)])


def random_encoder(in_channels, leak, batchnorm, seed, images, n_calibrate, arch="ali"):
    """The random encoder of `seed` (its architecture's init), its batch-norm statistics measured
    on images: the same network wherever a random θ is asked for."""
    net = ARCHITECTURES[arch](in_channels, leak, batchnorm)
    net.reset_parameters(torch.Generator().manual_seed(seed))
    return calibrate_on(net.to(images.device), images, n_calibrate, seed)


def conv_bn_pairs(parent):
    """The (conv, batch norm) names of `parent` whose batch norm takes that conv's output: each
    adjacent pair of an nn.Sequential, and convK/bnK in a module that names them so (torchvision's
    residual blocks, whose forward applies bnK to convK's output)."""
    names = list(parent._modules)
    if isinstance(parent, nn.Sequential):
        return list(zip(names, names[1:]))
    return [(a, "bn" + a[4:]) for a in names if re.fullmatch(r"conv\d+", a) and "bn" + a[4:] in names]


@torch.no_grad()
def fold_batchnorm(net):
    """A copy of `net` in which every Conv2d→BatchNorm2d pair (conv_bn_pairs) is one Conv2d with a
    bias.

    Exact in eval mode: bn(conv(z)) = γ (w*z + b − μ)/σ + β = (γw/σ)*z + γ(b − μ)/σ + β.
    """
    net = copy.deepcopy(net).eval()
    for parent in net.modules():
        for a, b in conv_bn_pairs(parent):
            conv, bn = parent._modules[a], parent._modules[b]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
                folded = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size,
                                   conv.stride, conv.padding, conv.dilation, conv.groups, bias=True)
                folded.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
                folded.bias.copy_((bias - bn.running_mean) * scale + bn.bias)
                parent._modules[a], parent._modules[b] = folded, nn.Identity()
    if hasattr(net, "config"):
        net.config = dict(net.config, batchnorm=False)
    return net


def parse_layers(spec, available=LAYERS):
    """'conv5' → ['conv5'];  'conv3-5' → ['conv3', 'conv4', 'conv5']; unknown names raise."""
    m = re.fullmatch(r"([a-z]+)(\d+)(?:-(\d+))?", spec or "")
    names = []
    if m:
        lo, hi = int(m[2]), int(m[3] or m[2])
        names = [f"{m[1]}{i}" for i in range(lo, hi + 1)]
    if not names or any(n not in available for n in names):
        raise ValueError(f"layers '{spec}' do not exist: choose {top_blocks(available)} "
                         f"(blocks of this network: {', '.join(available)})")
    return names


def top_blocks(available=LAYERS):
    """'conv5, conv4-5 or conv3-5': the θ2 choices of a network whose blocks are `available`."""
    m = re.fullmatch(r"([a-z]+)(\d+)", available[-1])
    top, prefix = int(m[2]), m[1]
    choices = [f"{prefix}{top}"] + [f"{prefix}{top - k}-{top}" for k in (1, 2) if top - k >= 1]
    return ", ".join(choices[:-1]) + " or " + choices[-1]


def split(net, theta2_layers):
    """(bottom, top): bottom is every block below the first θ2 block and stays frozen."""
    names = list(net._modules)
    first = min(names.index(n) for n in theta2_layers)
    bottom = nn.Sequential(OrderedDict((n, net._modules[n]) for n in names[:first]))
    top = nn.Sequential(OrderedDict((n, net._modules[n]) for n in names[first:]))
    return bottom, top


def theta2_names(top, theta2_layers):
    """Names (in `top`) of the parameters that form θ2."""
    return [n for n, _ in top.named_parameters() if n.split(".")[0] in theta2_layers]


def ntk_scales(params, rule="authors"):
    """s per θ2 tensor: an NTK layer stores w and computes with s·w."""
    weight_scale, bias_scale = NTK_RULES[rule]
    return {n: weight_scale(p.shape) if p.dim() > 1 else bias_scale for n, p in params.items()}


def to_standard(params, scales):
    """NTK → standard parametrisation: the stored w times its scale s."""
    return {n: p * scales[n] for n, p in params.items()}


def mix(sources, layers_from):
    """A network whose block `n` comes from sources[layers_from[n]] (for Table 1's ablation)."""
    net = copy.deepcopy(sources["pretrained"])
    for name, source in layers_from.items():
        net._modules[name] = copy.deepcopy(sources[source]._modules[name])
    return net
