"""A PyTorch restatement of the GAN modules of Xiang & Li (2017), used by parity.py.

Written from a reading of the authors' public code (their DCGAN study: pytorch/model.py and
pytorch/modules/; their later ResNet code: model.py and modules/), not copied from it, and
laid out with wngan's module names (gan/dcgan.cpp, gan/resnet.cpp) so that the state dicts
line up with wngan's dumps name for name. Where wngan deliberately departs from the
authors (noted at each place), the port follows wngan's documented choice:

* DCGAN TPReLU: the slope is clipped to [0, 1] after each update (the paper, their Torch
  code) instead of clamped in the forward pass (their PyTorch code); see `clipped_slopes`.
* DCGAN D: no sigmoid; the criterion works on logits (BCE-with-logits equals their
  sigmoid + BCELoss).
* BN ResNets (the authors have none): BN after each residue conv, biased convs, PReLU.

Everything here is float32 and CPU.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


# --- weight normalization ------------------------------------------------------------------

class WNLayer(nn.Module):
    """A weight-normalized linear / conv / transposed conv.

    v (`weight`) keeps the plain layer's PyTorch layout; each output unit u uses
    v_u / ||v_u||, with ||v_u|| = sqrt(factor * sum v_u^2 + 1e-6) ("inside", the DCGAN
    code) or sqrt(factor * sum v_u^2) + 1e-8 ("outside", the ResNet code); factor is
    1 / (stride_h * stride_w) for transposed convs, 1 otherwise. Affine layers add a
    per-unit `scale` (1) and `bias` (0).

    `where` chooses how the norm is applied, as each code base of the authors does it:
    "output" divides the raw layer's output by the norms (their DCGAN code), "weight"
    divides v before the layer (their ResNet code). Both are the same function.
    """

    def __init__(self, kind, n_in, n_out, kernel=1, stride=1, padding=0, affine=False, eps="inside",
                 where="output"):
        super().__init__()
        assert kind in ("linear", "conv", "convT") and eps in ("inside", "outside") and where in ("output", "weight")
        self.kind, self.eps, self.where = kind, eps, where
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        self.stride = (stride, stride) if isinstance(stride, int) else tuple(stride)
        self.padding = (padding, padding) if isinstance(padding, int) else tuple(padding)
        if kind == "linear":
            shape = (n_out, n_in)
        elif kind == "conv":
            shape = (n_out, n_in, kh, kw)
        else:
            shape = (n_in, n_out, kh, kw)
        self.weight = nn.Parameter(torch.zeros(shape))
        self.unit_dim = 1 if kind == "convT" else 0
        self.factor = 1.0 / (self.stride[0] * self.stride[1]) if kind == "convT" else 1.0
        if affine:
            self.scale = nn.Parameter(torch.ones(n_out))
            self.bias = nn.Parameter(torch.zeros(n_out))
        else:
            self.scale = None
            self.bias = None

    def norms(self):
        """||v_u|| per output unit, shape (n_out,)."""
        dims = [d for d in range(self.weight.dim()) if d != self.unit_dim]
        ss = self.weight.pow(2).sum(dim=dims) * self.factor
        if self.eps == "inside":
            return (ss + 1e-6).sqrt()
        return ss.sqrt() + 1e-8

    def _raw(self, x, w, bias):
        if self.kind == "linear":
            return F.linear(x, w, bias)
        if self.kind == "conv":
            return F.conv2d(x, w, bias, self.stride, self.padding)
        return F.conv_transpose2d(x, w, bias, self.stride, self.padding)

    def _per_unit(self, t, ndim):
        # (n_out,) -> broadcastable over an output of rank ndim (units on dim 1)
        return t.view(1, -1, *([1] * (ndim - 2)))

    def forward(self, x):
        n = self.norms()
        if self.where == "output":
            y = self._raw(x, self.weight, None)
            y = y / self._per_unit(n, y.dim())
            if self.scale is not None:
                y = y * self._per_unit(self.scale, y.dim()) + self._per_unit(self.bias, y.dim())
            return y
        g = 1.0 / n if self.scale is None else self.scale / n
        shape = [1] * self.weight.dim()
        shape[self.unit_dim] = -1
        return self._raw(x, self.weight * g.view(shape), self.bias)


class WNAdd(nn.Module):
    """Weight-normalized sum of branches, per channel: sum_i w_i x_i / (sqrt(sum_i w_i^2) + 1e-8).

    weight (branches, C); the ResNet starts at (0, 1) = (residual, shortcut)."""

    def __init__(self, channels, init=(0.0, 1.0)):
        super().__init__()
        self.weight = nn.Parameter(torch.tensor(init, dtype=torch.float32).unsqueeze(1).repeat(1, channels))

    def forward(self, *xs):
        n = self.weight.pow(2).sum(0).sqrt() + 1e-8
        y = None
        for i, x in enumerate(xs):
            w = (self.weight[i] / n).view(1, -1, *([1] * (x.dim() - 2)))
            y = x * w if y is None else y + x * w
        return y


# --- activations and small layers -----------------------------------------------------------

class TPReLU(nn.Module):
    """Translated PReLU: prelu(x - b, a) + b per channel; a starts at 0.25, b at 0.

    clamp_forward: use clamp(a, 0, 1) in the forward pass (their ResNet code); otherwise
    the slope is clipped after each update by the training loop."""

    def __init__(self, channels, clamp_forward=False):
        super().__init__()
        self.clamp_forward = clamp_forward
        self.weight = nn.Parameter(torch.full((channels,), 0.25))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        b = self.bias.view(1, -1, *([1] * (x.dim() - 2)))
        a = self.weight.clamp(0, 1) if self.clamp_forward else self.weight
        return F.prelu(x - b, a) + b


class Affine(nn.Module):
    """y = weight * x + bias per channel (G's last block's post layer in the ResNet)."""

    def __init__(self, channels):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return x * self.weight.view(shape) + self.bias.view(shape)


class Reshape(nn.Module):
    def __init__(self, *shape):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.reshape(x.size(0), *self.shape)


class Upsample2x(nn.Module):
    """Nearest-neighbour 2x: every pixel becomes a 2x2 block."""

    def forward(self, x):
        return x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)


class Crop(nn.Module):
    def __init__(self, h, w):
        super().__init__()
        self.h, self.w = h, w

    def forward(self, x):
        return x[:, :, self.h:x.size(2) - self.h, self.w:x.size(3) - self.w]


class ZeroPad(nn.Module):
    def __init__(self, h, w):
        super().__init__()
        self.h, self.w = h, w

    def forward(self, x):
        return F.pad(x, (self.w, self.w, self.h, self.h))


class AvgPool2(nn.Module):
    def forward(self, x):
        return F.avg_pool2d(x, 2, 2)


# --- geometry -------------------------------------------------------------------------------

def extra_padding(h, w, n):
    """Per level i (0 = the image side) the extra padding (ph, pw): 1 where the map size is
    2 mod 4 (not at the last level); and the final map size. As both of the authors' codes."""
    pads = []
    for i in range(n):
        last = i == n - 1
        ph = 1 if (not last and h % 4 == 2) else 0
        pw = 1 if (not last and w % 4 == 2) else 0
        pads.append((ph, pw))
        h, w = (h + 2 * ph) // 2, (w + 2 * pw) // 2
    return pads, h, w


def dcgan_layer_count(h, w):
    s, n = max(h, w), 0
    while s >= 8:
        s = (s + 1) // 2
        n += 1
    return n


# --- the DCGAN family (their model.py) -------------------------------------------------------

class DcganD(nn.Sequential):
    """Sees the image as it is, in [0, 1]; returns (N,) logits."""

    def forward(self, x):
        return super().forward(x).reshape(x.size(0))


def dcgan(norm, channels, height, width, nf, code, nlayer=0):
    n = nlayer if nlayer > 0 else dcgan_layer_count(height, width)
    pads, fh, fw = extra_padding(height, width, n)
    wn = norm == "weight"

    def conv(transposed, n_in, n_out, k, s, p, affine):
        if wn:
            return WNLayer("convT" if transposed else "conv", n_in, n_out, k, s, p, affine=affine,
                           eps="inside", where="output")
        return (nn.ConvTranspose2d if transposed else nn.Conv2d)(n_in, n_out, k, s, p)

    def act(c):
        return TPReLU(c, clamp_forward=False) if wn else nn.PReLU(c)

    D = DcganD()
    for i in range(n):
        lvl = nn.Sequential()
        n_in = channels if i == 0 else nf << (i - 1)
        n_out = nf << i
        lvl.add_module("conv", conv(False, n_in, n_out, 4, 2, (1 + pads[i][0], 1 + pads[i][1]), False))
        if norm == "batch" and i > 0:
            lvl.add_module("bn", nn.BatchNorm2d(n_out))
        lvl.add_module("act", act(n_out))
        D.add_module("level%d" % i, lvl)
    fin = nn.Sequential()
    fin.add_module("conv", conv(False, nf << (n - 1), 1, (fh, fw), 1, 0, True))
    D.add_module("final", fin)

    G = nn.Sequential()
    top = nf << (n - 1)
    ini = nn.Sequential()
    if wn:
        ini.add_module("linear", WNLayer("linear", code, top * fh * fw, affine=False, eps="inside", where="output"))
    else:
        ini.add_module("linear", nn.Linear(code, top * fh * fw))
    ini.add_module("reshape", Reshape(top, fh, fw))
    if norm == "batch":
        ini.add_module("bn", nn.BatchNorm2d(top))
    ini.add_module("act", act(top))
    G.add_module("initial", ini)
    for L in range(n - 1, -1, -1):
        lvl = nn.Sequential()
        n_in = nf << L
        n_out = channels if L == 0 else nf << (L - 1)
        lvl.add_module("conv", conv(True, n_in, n_out, 4, 2, (1 + pads[L][0], 1 + pads[L][1]), L == 0))
        if L > 0:
            if norm == "batch":
                lvl.add_module("bn", nn.BatchNorm2d(n_out))
            lvl.add_module("act", act(n_out))
        else:
            lvl.add_module("out", nn.Sigmoid())
        G.add_module("level%d" % L, lvl)
    return G, D


# --- the ResNet (their later code: model.py, modules/ResidueBlock.py) ------------------------

class ResBlock(nn.Module):
    """D (down) or G (up) residual block; see the module docstring of gan/resnet.cpp and the
    authors' ResidueBlock / ResidueBlockTranspose."""

    def __init__(self, norm, up, n_in, n_out, stride, extra, final_affine):
        super().__init__()
        wn, bn = norm == "weight", norm == "batch"
        self.wn = wn

        def conv(transposed, a, b, k, s, p):
            if wn:
                return WNLayer("convT" if transposed else "conv", a, b, k, s, p, affine=False, eps="outside",
                               where="weight")
            return (nn.ConvTranspose2d if transposed else nn.Conv2d)(a, b, k, s, p)

        def act(c):
            return TPReLU(c, clamp_forward=True) if wn else nn.PReLU(c)

        k, pad = stride + 2, (1 + extra[0], 1 + extra[1])
        mid = n_in if up else n_out
        self.residue = nn.Sequential()
        if up:
            self.residue.add_module("conv1", conv(True, n_in, n_in, 3, 1, 1))
        else:
            self.residue.add_module("conv1", conv(False, n_in, n_out, k, stride, pad))
        if bn:
            self.residue.add_module("bn1", nn.BatchNorm2d(mid))
        self.residue.add_module("act", act(mid))
        if up:
            self.residue.add_module("conv2", conv(True, n_in, n_out, k, stride, pad))
        else:
            self.residue.add_module("conv2", conv(False, n_out, n_out, 3, 1, 1))
        if bn:
            self.residue.add_module("bn2", nn.BatchNorm2d(n_out))
        self.shortcut = nn.Sequential()
        if not up:
            if extra != (0, 0):
                self.shortcut.add_module("pad", ZeroPad(*extra))
            if stride == 2:
                self.shortcut.add_module("pool", AvgPool2())
            if n_in != n_out:
                self.shortcut.add_module("conv", conv(False, n_in, n_out, 1, 1, 0))
        else:
            if n_in != n_out:
                self.shortcut.add_module("conv", conv(True, n_in, n_out, 1, 1, 0))
            if stride == 2:
                self.shortcut.add_module("upsample", Upsample2x())
            if extra != (0, 0):
                self.shortcut.add_module("crop", Crop(*extra))
        if wn:
            self.add = WNAdd(n_out, (0.0, 1.0))
        self.post = Affine(n_out) if final_affine else act(n_out)

    def forward(self, x):
        r, s = self.residue(x), self.shortcut(x)
        y = self.add(r, s) if self.wn else r + s
        return self.post(y)


class ResD(nn.Sequential):
    """x in [0, 1] -> x * 2 - 1 (their ResNet main.py) -> levels -> final conv -> (N,) logits."""

    def forward(self, x):
        return super().forward(x * 2 - 1).reshape(x.size(0))


def resnet(norm, channels, height, width, features, blocks, code):
    f = list(features)
    n = len(f)
    pads, h, w = extra_padding(height, width, n)
    wn = norm == "weight"
    D = ResD()
    for i in range(n):
        lvl = nn.Sequential()
        n_in = channels if i == 0 else f[i - 1]
        for j in range(blocks):
            # the authors: stride-2 block first (with the level's extra padding), then
            # stride-1 blocks without any
            if j == 0:
                lvl.add_module("block0", ResBlock(norm, False, n_in, f[i], 2, pads[i], False))
            else:
                lvl.add_module("block%d" % j, ResBlock(norm, False, f[i], f[i], 1, (0, 0), False))
        D.add_module("level%d" % i, lvl)
    fin = nn.Sequential()
    if wn:
        fin.add_module("conv", WNLayer("conv", f[-1], 1, (h, w), 1, 0, affine=True, eps="outside", where="weight"))
    else:
        fin.add_module("conv", nn.Conv2d(f[-1], 1, (h, w)))
    D.add_module("final", fin)

    G = nn.Sequential()
    ini = nn.Sequential()
    if wn:
        # their ResNet G: an affine WN linear, then a plain PReLU (clipped after updates)
        ini.add_module("linear", WNLayer("linear", code, f[-1] * h * w, affine=True, eps="outside", where="output"))
    else:
        ini.add_module("linear", nn.Linear(code, f[-1] * h * w))
    ini.add_module("reshape", Reshape(f[-1], h, w))
    if norm == "batch":
        ini.add_module("bn", nn.BatchNorm2d(f[-1]))
    ini.add_module("act", nn.PReLU(f[-1]))
    G.add_module("initial", ini)
    for L in range(n - 1, -1, -1):
        lvl = nn.Sequential()
        n_out = channels if L == 0 else f[L - 1]
        for j in range(blocks - 1):
            lvl.add_module("block%d" % j, ResBlock(norm, True, f[L], f[L], 1, (0, 0), False))
        lvl.add_module("block%d" % (blocks - 1), ResBlock(norm, True, f[L], n_out, 2, pads[L], L == 0))
        if L == 0:
            lvl.add_module("out", nn.Sigmoid())
        G.add_module("level%d" % L, lvl)
    return G, D


def build(cfg):
    """(G, D) from a dump's config (arch, norm, channels, height, width, code, nf | features, blocks)."""
    if cfg["arch"] == "dcgan":
        return dcgan(cfg["norm"], cfg["channels"], cfg["height"], cfg["width"], cfg["nf"], cfg["code"],
                     cfg.get("nlayer", 0))
    if cfg["arch"] == "resnet":
        return resnet(cfg["norm"], cfg["channels"], cfg["height"], cfg["width"], cfg["features"], cfg["blocks"],
                      cfg["code"])
    raise ValueError("unknown arch " + cfg["arch"])


def clipped_slopes(net):
    """The slope parameters clipped to [0, 1] after every update: every PReLU's, and the
    TPReLUs' that do not clamp in the forward pass (the DCGAN's)."""
    out = []
    for m in net.modules():
        if isinstance(m, nn.PReLU) or (isinstance(m, TPReLU) and not m.clamp_forward):
            out.append(m.weight)
    return out
