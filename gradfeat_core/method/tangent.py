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
- a conv whose kernel covers its whole unpadded input (conv5 of the ALI encoder, 4×4 on 4×4) has a
  1×1 output and is one matrix product; that is read off the shapes at run time, never a name.

`forward(layers, z)` is the primal pass itself with the same matrix products (fine-tuning runs on
it). `plan(top)` returns None for a network with any other layer type: callers then use the JVP.
"""
import torch
import torch.nn.functional as F
from torch import nn

AFFINE = (nn.Conv2d, nn.Linear)
ACTIVATIONS = (nn.LeakyReLU, nn.ReLU)


def _supported(layer):
    if isinstance(layer, nn.Conv2d):
        return layer.padding_mode == "zeros"
    if isinstance(layer, nn.AdaptiveAvgPool2d):
        return layer.output_size in (1, (1, 1))
    if isinstance(layer, nn.LeakyReLU):  # a negative slope would flip the output's sign
        return layer.negative_slope >= 0
    return isinstance(layer, (nn.Linear, *ACTIVATIONS, nn.Identity, nn.Flatten))


def plan(top):
    """[(name, layer)] of `top`'s leaf layers in the order it runs them, or None where the fast
    path does not know a layer (a container other than nn.Sequential runs in an unknown order)."""
    if any(m._modules and not isinstance(m, nn.Sequential) for m in top.modules()):
        return None
    layers = [(n, m) for n, m in top.named_modules() if not m._modules]
    return layers if all(_supported(m) for _, m in layers) else None


def unsupported(top):
    """The first layer type of `top` the fast path does not know (for the log line)."""
    return next((type(m).__name__ for m in top.modules()
                 if (m._modules and not isinstance(m, nn.Sequential))
                 or (not m._modules and not _supported(m))), None)


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


def forward(layers, z):
    """top(z) with its own parameters (trainable or not), 1×1-output convs as matrix products."""
    h = z
    for _, layer in layers:
        if isinstance(layer, AFFINE):
            h = affine(layer, h, layer.weight, layer.bias)
        elif isinstance(layer, ACTIVATIONS):
            h = F.leaky_relu(h, _slope(layer))
        else:
            h = _pool(layer, h)
    return h


def input_key(layers, i):
    """Where the record keeps the primal input of conv/linear layer i: None for z (nothing but
    identities below it), the output of the (leaky) ReLU just below it, else its own entry."""
    below = [(n, m) for n, m in layers[:i] if not isinstance(m, nn.Identity)]
    if not below:
        return None
    name, layer = below[-1]
    return f"{name}.output" if isinstance(layer, ACTIVATIONS) else f"{layers[i][0]}.input"


@torch.no_grad()
def record(layers, z):
    """What the tangent rules need from the primal pass through θ̄2 (fixed: computed once per
    data set): {'<relu>.output': y} for every (leaky) ReLU — its sign is the pre-activation's,
    and it is the input of the conv above —, {'<layer>.input': h} for a conv/linear whose input
    is neither z nor such an output, and 'out' = top(z) = f_θ̄(x) unless that is the last ReLU's
    output itself (see `features`)."""
    out, h = {}, z
    for i, (name, layer) in enumerate(layers):
        if isinstance(layer, AFFINE):
            key = input_key(layers, i)
            if key is not None and key not in out:
                out[key] = h
            h = affine(layer, h, layer.weight, layer.bias)
        elif isinstance(layer, ACTIVATIONS):
            h = out[f"{name}.output"] = F.leaky_relu(h, _slope(layer))
        else:
            h = _pool(layer, h)
    if not any(h is v for v in out.values()):  # else f_θ̄(x) is the last ReLU's output itself
        out["out"] = h
    return out


def features(layers, primal):
    """f_θ̄(x) from a record: its 'out', or the last (leaky) ReLU's output where that is f."""
    if "out" in primal:
        return primal["out"]
    last = [n for n, m in layers if isinstance(m, ACTIVATIONS)][-1]
    return primal[f"{last}.output"]


def linearize(layers, primal, z, w2, scales):
    """(f_θ̄(x), J_θ̄2(z)·(s·w2)) from the primal record: the same pair as `linear_model.linearize`
    with direction s·w2. w2, scales: {θ2 name: tensor}, {θ2 name: s}; every other parameter of
    `top` is frozen (no tangent)."""
    t = None
    for i, (name, layer) in enumerate(layers):
        if isinstance(layer, AFFINE):
            key = input_key(layers, i)
            h = z if key is None else primal[key]
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
    f = features(layers, primal)
    return f, torch.zeros_like(f) if t is None else t
