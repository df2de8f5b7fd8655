"""The paper's DCGAN variants (vanilla, BN, WN) in PyTorch, built exactly as wngan's
gan/dcgan.cpp builds them (strict weight normalization with the 1/(s_h s_w) factor for
transposed convs, TPReLU, affine WN last layers), and one training iteration of the
paper's protocol. Used by compare_torch.py to time PyTorch side by side with wngan.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def dcgan_layers(h, w):
    s, n = max(h, w), 0
    while s >= 8:
        s, n = (s + 1) // 2, n + 1
    return n


def geometry(h, w, n):
    extra = []
    for i in range(n):
        last = i == n - 1
        p = (1 if (not last and h % 4 == 2) else 0, 1 if (not last and w % 4 == 2) else 0)
        extra.append(p)
        h, w = (h + 2 * p[0]) // 2, (w + 2 * p[1]) // 2
    return extra, h, w


class WNConv(nn.Module):
    """Strict (v / ||v||) or affine (scale * v / ||v|| + bias) weight-normalized conv."""

    def __init__(self, cin, cout, k, stride, pad, transposed, affine):
        super().__init__()
        base = (nn.ConvTranspose2d if transposed else nn.Conv2d)(cin, cout, k, stride, pad, bias=False)
        self.weight = base.weight
        self.transposed, self.stride, self.pad = transposed, stride, pad
        self.factor = 1.0 / (stride[0] * stride[1]) if transposed else 1.0
        self.scale = nn.Parameter(torch.ones(cout)) if affine else None
        self.bias = nn.Parameter(torch.zeros(cout)) if affine else None

    def forward(self, x):
        v = self.weight
        dims = (0, 2, 3) if self.transposed else (1, 2, 3)
        w = v / torch.sqrt(v.pow(2).sum(dims, keepdim=True) * self.factor + 1e-6)
        if self.scale is not None:
            w = w * (self.scale.view(1, -1, 1, 1) if self.transposed else self.scale.view(-1, 1, 1, 1))
        f = F.conv_transpose2d if self.transposed else F.conv2d
        return f(x, w, self.bias, self.stride, self.pad)


class WNLinear(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.weight = nn.Linear(cin, cout, bias=False).weight

    def forward(self, x):
        v = self.weight
        return F.linear(x, v / torch.sqrt(v.pow(2).sum(1, keepdim=True) + 1e-6))


class TPReLU(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.weight = nn.Parameter(torch.full((c,), 0.25))
        self.bias = nn.Parameter(torch.zeros(c))

    def forward(self, x):
        b = self.bias.view(1, -1, *([1] * (x.dim() - 2)))
        return F.prelu(x - b, self.weight) + b


class View(nn.Module):
    def __init__(self, *shape):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.view(x.size(0), *self.shape)


def conv(norm, transposed, last, cin, cout, k, s, p):
    if norm == "weight":
        return WNConv(cin, cout, k, s, p, transposed, affine=last)
    return (nn.ConvTranspose2d if transposed else nn.Conv2d)(cin, cout, k, s, p)


def act(norm, c):
    return TPReLU(c) if norm == "weight" else nn.PReLU(c, 0.25)


def dcgan(norm, c, h, w, nf=64, code=128):
    n = dcgan_layers(h, w)
    extra, fh, fw = geometry(h, w, n)
    d = [nn.Sequential()]
    dl = []
    for i in range(n):
        cin, cout = (c if i == 0 else nf << (i - 1)), nf << i
        layers = [conv(norm, False, False, cin, cout, (4, 4), (2, 2), (1 + extra[i][0], 1 + extra[i][1]))]
        if norm == "batch" and i > 0:
            layers.append(nn.BatchNorm2d(cout))
        layers.append(act(norm, cout))
        dl += layers
    dl.append(conv(norm, False, True, nf << (n - 1), 1, (fh, fw), (1, 1), (0, 0)))
    D = nn.Sequential(*dl)
    top = nf << (n - 1)
    gl = [WNLinear(code, top * fh * fw) if norm == "weight" else nn.Linear(code, top * fh * fw), View(top, fh, fw)]
    if norm == "weight":
        with torch.no_grad():
            gl[0].weight.mul_(0.01)
    if norm == "batch":
        gl.append(nn.BatchNorm2d(top))
    gl.append(act(norm, top))
    for L in range(n - 1, -1, -1):
        cin, cout = nf << L, (c if L == 0 else nf << (L - 1))
        gl.append(conv(norm, True, L == 0, cin, cout, (4, 4), (2, 2), (1 + extra[L][0], 1 + extra[L][1])))
        if L > 0:
            if norm == "batch":
                gl.append(nn.BatchNorm2d(cout))
            gl.append(act(norm, cout))
    gl.append(nn.Sigmoid())
    return nn.Sequential(*gl), D


def clip_slopes(m):
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, (nn.PReLU, TPReLU)):
                mod.weight.clamp_(0, 1)


class Step:
    """One iteration of the paper's protocol, as wngan's gan_step does it."""

    def __init__(self, G, D, code, lr=1e-4, device="cpu"):
        self.G, self.D, self.code, self.device = G, D, code, device
        self.og = torch.optim.RMSprop(G.parameters(), lr=lr, alpha=0.9, eps=1e-6)
        self.od = torch.optim.RMSprop(D.parameters(), lr=lr, alpha=0.9, eps=1e-6)

    def __call__(self, real):
        G, D = self.G, self.D
        b = real.size(0)
        bce = F.binary_cross_entropy_with_logits
        self.od.zero_grad()
        with torch.no_grad():
            fake = G(torch.randn(b, self.code, device=self.device))
        ones = torch.ones(b, device=self.device)
        lr = bce(D(real * 2 - 1).view(-1), ones)
        lr.backward()
        lf = bce(D(fake * 2 - 1).view(-1), torch.zeros(b, device=self.device))
        lf.backward()
        self.od.step()
        clip_slopes(D)
        self.og.zero_grad()
        for p in D.parameters():
            p.requires_grad_(False)
        lg = bce(D(G(torch.randn(b, self.code, device=self.device)) * 2 - 1).view(-1), ones)
        lg.backward()
        for p in D.parameters():
            p.requires_grad_(True)
        self.og.step()
        clip_slopes(G)
        return lr.item(), lf.item(), lg.item()


class ReconStep:
    """One step of wngan's test-set reconstruction: G frozen in evaluation mode, the
    per-image squared error summed over the batch, RMSProp (lr 0.01, alpha 0.9,
    eps 1e-6) on the codes only."""

    def __init__(self, G, images, code, device="cpu"):
        self.G, self.x = G.eval(), images
        for p in G.parameters():
            p.requires_grad_(False)
        self.z = torch.zeros(images.size(0), code, device=device, requires_grad=True)
        self.opt = torch.optim.RMSprop([self.z], lr=0.01, alpha=0.9, eps=1e-6)

    def __call__(self):
        self.opt.zero_grad()
        loss = (self.G(self.z) - self.x).pow(2).mean(dim=(1, 2, 3)).sum()
        loss.backward()
        self.opt.step()
        return loss.item()


def count(m):
    return sum(p.numel() for p in m.parameters())
