"""The tangent J_θ̄2(z)·(s·w2) without torch.func: a second implementation of `linearize`.

`linear_model.linearize` (one `torch.func.jvp` through `top`) is the reference. Each step it
re-runs the primal pass through θ̄2, which never changes, and convolves the first θ2 layer's
input tangent, which is zero. For the layer types of our base networks this module does neither:

- `record(layers, z)`: the primal pass through θ̄2, once per data set (kept with the frozen-part
  cache): the output of every (leaky) ReLU — the input of the conv above it, and positive exactly
  where its pre-activation is —, and the pooled output f_θ̄(x);
- `linearize(layers, record, z, w2, scales)`: only the tangent, layer by layer:
      conv / linear   t ← conv(t, θ̄) + conv(h, s_w·w2_w) + s_b·w2_b   (first θ2 layer: t = 0)
      leaky ReLU      t ← t ⊙ (1 where the output > 0, else the leak)
      average pool    t ← mean of t over space;  flatten: t ← t.flatten()
- a residual block (torchvision's BasicBlock and Bottleneck, batch norm folded), y = ReLU(main(x)
  + shortcut(x)) with shortcut the identity or the 1×1 strided downsample conv:
      t ← (main's tangent + shortcut's tangent (t itself for the identity)) ⊙ (1 where y > 0, else 0)
  each branch by the rules above, from the block input x kept in the record as the output below;
- a conv whose kernel covers its whole unpadded input (conv5 of the ALI encoder, 4×4 on 4×4) has a
  1×1 output and is one matrix product; that is read off the shapes at run time, never a name.

`forward(layers, z)` is the primal pass itself with the same matrix products (fine-tuning runs on
it). `plan(top)` returns None for a network with any other layer type: callers then use the JVP.
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

AFFINE = (nn.Conv2d, nn.Linear)
ACTIVATIONS = (nn.LeakyReLU, nn.ReLU)
UNRECORDED = object()  # a primal value no record entry holds (the output of a conv or a pool)


@dataclass
class Residual:
    """A residual block as the fast path runs it: ReLU(main(x) + shortcut(x)), each branch a
    [(name, leaf layer)] list in the block's own order; shortcut [] is the identity."""
    main: list
    shortcut: list


def _supported(layer):
    if isinstance(layer, nn.Conv2d):
        return layer.padding_mode == "zeros"
    if isinstance(layer, nn.AdaptiveAvgPool2d):
        return layer.output_size in (1, (1, 1))
    if isinstance(layer, nn.LeakyReLU):  # a negative slope would flip the output's sign
        return layer.negative_slope >= 0
    return isinstance(layer, (nn.Linear, *ACTIVATIONS, nn.Identity, nn.Flatten))


def plan(top, prefix=""):
    """[(name, layer)] of `top` in the order it runs them: leaf layers, and a Residual for each
    residual block; None where the fast path does not know a layer (a container other than
    nn.Sequential or a known residual block runs in an unknown order)."""
    out = []
    for name, m in top.named_children():
        full = prefix + name
        if isinstance(m, nn.Sequential):
            inner = plan(m, full + ".")
        elif isinstance(m, (BasicBlock, Bottleneck)):
            inner = _residual(full, m)
        else:
            inner = None if m._modules or not _supported(m) else [(full, m)]
        if inner is None:
            return None
        out += inner
    return out


def _residual(name, block):
    """[(name, Residual)] of a torchvision block (its forward: conv1, bn1, relu, conv2, bn2[, relu,
    conv3, bn3], + the identity or downsample(x), relu), or None where a layer is unknown (batch
    norm not folded)."""
    main = [(f"{name}.conv1", block.conv1), (f"{name}.bn1", block.bn1), (f"{name}.relu1", block.relu),
            (f"{name}.conv2", block.conv2), (f"{name}.bn2", block.bn2)]
    if isinstance(block, Bottleneck):
        main += [(f"{name}.relu2", block.relu), (f"{name}.conv3", block.conv3), (f"{name}.bn3", block.bn3)]
    shortcut = [] if block.downsample is None else plan(block.downsample, f"{name}.downsample.")
    if shortcut is None or not all(_supported(m) for _, m in main) or not isinstance(block.relu, nn.ReLU):
        return None
    return [(name, Residual(main, shortcut))]


def unsupported(top):
    """The first layer type of `top` the fast path does not know (for the log line)."""
    for m in top.modules():
        if isinstance(m, (BasicBlock, Bottleneck)):
            continue
        if m._modules and not isinstance(m, nn.Sequential) or not m._modules and not _supported(m):
            return type(m).__name__
    return None


def covers_input(layer, h):
    """A conv whose kernel covers its whole unpadded input: its output is 1×1."""
    return (isinstance(layer, nn.Conv2d) and tuple(h.shape[-2:]) == tuple(layer.kernel_size)
            and layer.padding in ((0, 0), "valid") and layer.dilation == (1, 1)
            and layer.groups == 1)


def affine(layer, h, weight, bias=None, scale=1.0):
    """The conv or linear `layer` applied to h: bias + scale · (h ⊛ weight) (bias None: none).
    scale multiplies the smaller of the weight and the layer's input, forward and backward.
    A 1×1 map is kept as a (batch, channels) matrix: a conv that covers its input returns one."""
    if isinstance(layer, nn.Conv2d) and h.dim() == 2:
        h = h[:, :, None, None]
    if scale != 1.0 and weight.numel() <= h.numel():
        weight, scale = scale * weight, 1.0
    fuse = bias if scale == 1.0 else None  # the bias goes into the product's own kernel
    if isinstance(layer, nn.Linear):
        out = F.linear(h, weight, fuse)
    elif covers_input(layer, h):  # a matrix product (F.linear: w's gradient comes out contiguous)
        out = F.linear(h.flatten(1), weight.flatten(1), fuse)
    else:
        out = F.conv2d(h, weight, fuse, layer.stride, layer.padding, layer.dilation, layer.groups)
    if scale == 1.0:
        return out
    return out * scale if bias is None else torch.add(bias.view(-1, *[1] * (out.dim() - 2)), out,
                                                      alpha=scale)


def _pool(layer, h):
    if h.dim() == 2:  # a 1×1 map kept as a matrix: pooling and flattening leave it as it is
        return h
    if isinstance(layer, nn.Flatten):
        return h.flatten(layer.start_dim, layer.end_dim)
    if isinstance(layer, nn.AdaptiveAvgPool2d) and h.shape[-2:] != (1, 1):
        return h.mean((-2, -1), keepdim=True)
    return h


def _slope(layer):
    return layer.negative_slope if isinstance(layer, nn.LeakyReLU) else 0.0


def _add(a, b):
    """a + b where either may be a 1×1 map kept as a matrix (see affine)."""
    if a.dim() != b.dim():
        a, b = (x[:, :, None, None] if x.dim() == 2 else x for x in (a, b))
    return a + b


def forward(layers, z):
    """top(z) with its own parameters (trainable or not), 1×1-output convs as matrix products."""
    h = z
    for _, layer in layers:
        if isinstance(layer, Residual):
            h = F.relu(_add(forward(layer.main, h), forward(layer.shortcut, h) if layer.shortcut else h))
        elif isinstance(layer, AFFINE):
            h = affine(layer, h, layer.weight, layer.bias)
        elif isinstance(layer, ACTIVATIONS):
            h = F.leaky_relu(h, _slope(layer))
        else:
            h = _pool(layer, h)
    return h


def input_keys(layers, z_key=None, keys=None):
    """({conv/linear name: where the record keeps its primal input}, where it keeps the output,
    UNRECORDED when nowhere):
    None for z (nothing but identities below), the output of the (leaky) ReLU or residual block
    just below, else the layer's own '<name>.input' entry. From the plan alone, so that record
    and linearize agree."""
    keys = {} if keys is None else keys
    h_key = z_key
    for name, layer in layers:
        if isinstance(layer, Residual):
            input_keys(layer.main, h_key, keys)
            input_keys(layer.shortcut, h_key, keys)
            h_key = f"{name}.output"
        elif isinstance(layer, AFFINE):
            keys[name] = f"{name}.input" if h_key is UNRECORDED else h_key
            h_key = UNRECORDED
        elif isinstance(layer, ACTIVATIONS):
            h_key = f"{name}.output"
        elif not isinstance(layer, nn.Identity):
            h_key = UNRECORDED
    return keys, h_key


def _record(layers, h, keys, out):
    for name, layer in layers:
        if isinstance(layer, Residual):
            main = _record(layer.main, h, keys, out)
            h = out[f"{name}.output"] = F.relu(_add(main, _record(layer.shortcut, h, keys, out)
                                                    if layer.shortcut else h))
        elif isinstance(layer, AFFINE):
            if keys[name] == f"{name}.input":
                out[keys[name]] = h
            h = affine(layer, h, layer.weight, layer.bias)
        elif isinstance(layer, ACTIVATIONS):
            h = out[f"{name}.output"] = F.leaky_relu(h, _slope(layer))
        else:
            h = _pool(layer, h)
    return h


@torch.no_grad()
def record(layers, z):
    """What the tangent rules need from the primal pass through θ̄2 (fixed: computed once per
    data set): {'<relu>.output': y} for every (leaky) ReLU and residual block — its sign is the
    pre-activation's, and it is the input of what comes above —, {'<layer>.input': h} for a
    conv/linear whose input is neither z nor such an output, and 'out' = top(z) = f_θ̄(x) unless
    that is the last output itself (see `features`)."""
    out = {}
    h = _record(layers, z, input_keys(layers)[0], out)
    if not any(h is v for v in out.values()):  # else f_θ̄(x) is the last ReLU's output itself
        out["out"] = h
    return out


def features(layers, primal):
    """f_θ̄(x) from a record: its 'out', or the last ReLU's (or block's) output where that is f
    (pooling a 1×1 map kept as a matrix leaves it as it is)."""
    if "out" in primal:
        return primal["out"]
    last = [n for n, m in layers if isinstance(m, (Residual, *ACTIVATIONS))][-1]
    return primal[f"{last}.output"]


def _tangent(layers, t, primal, z, keys, w2, scales):
    """The tangent through `layers` from the tangent t of their input (None: zero)."""
    for name, layer in layers:
        if isinstance(layer, Residual):
            main = _tangent(layer.main, t, primal, z, keys, w2, scales)
            short = _tangent(layer.shortcut, t, primal, z, keys, w2, scales) if layer.shortcut else t
            both = [v for v in (main, short) if v is not None]
            t = None if not both else both[0] if len(both) == 1 else _add(*both)
            if t is not None:  # ReLU: y > 0 exactly where the sum is
                y = primal[f"{name}.output"]
                t = torch.ops.aten.threshold_backward(t.view_as(y) if t.dim() != y.dim() else t, y, 0.0)
        elif isinstance(layer, AFFINE):
            h = z if keys[name] is None else primal[keys[name]]
            w, b = f"{name}.weight", f"{name}.bias"
            bias = scales[b] * w2[b] if b in w2 else None
            if w in w2:
                direct = affine(layer, h, w2[w], bias, scales[w])
            else:  # a bias without its weight: a constant tangent
                direct = None if bias is None else bias.view(-1, *[1] * (h.dim() - 2))
            if t is not None:
                t = affine(layer, t, layer.weight)
                t = t if direct is None else t + direct
            else:
                t = direct
        elif t is not None and isinstance(layer, ACTIVATIONS):
            # t ⊙ (1 where the output y > 0, else the slope), in one kernel: ATen's own leaky-ReLU
            # backward with y as "self is the result" (y > 0 exactly where the pre-activation is).
            t = torch.ops.aten.leaky_relu_backward(t, primal[f"{name}.output"], _slope(layer), True)
        elif t is not None:
            t = _pool(layer, t)
    return t


def linearize(layers, primal, z, w2, scales):
    """(f_θ̄(x), J_θ̄2(z)·(s·w2)) from the primal record: the same pair as `linear_model.linearize`
    with direction s·w2. w2, scales: {θ2 name: tensor}, {θ2 name: s}; every other parameter of
    `top` is frozen (no tangent)."""
    t = _tangent(layers, None, primal, z, input_keys(layers)[0], w2, scales)
    f = features(layers, primal)
    return f, torch.zeros_like(f) if t is None else t
