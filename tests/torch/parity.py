#!/usr/bin/python3
"""Parity of wngan's GAN models and one training iteration with a PyTorch port of the
authors' modules (tests/torch/authors_modules.py).

For 11 configurations (DCGAN none / batch / weight, alternating, BCE; ResNet none / batch /
weight, simultaneous, BCE; DCGAN weight with the least-squares loss; DCGAN batch with the
simultaneous protocol; all at 32x32; and DCGAN weight, ResNet batch and weight at 30x22,
where the extra paddings and crops come in) it runs wngan's `dump_step` (tests/torch/dump_step.cpp), builds the
port, loads the dump's initial weights into it and compares, as relative errors
max|a - b| / max|b| per tensor (float32 on both sides):

  * G(z) and D(real) in training mode             <= 1e-5
  * every gradient of the iteration's two updates  <= 1e-4
  * every parameter and BN buffer after the update <= 1e-4
  * the three losses (D real, D fake, G)           <= 1e-5

and that the port has exactly the dump's tensor names (parameters, BN buffers, gradients),
so that a structural difference cannot pass silently. It prints a table and exits non-zero
on any failure.

How the iteration is compared, stage by stage (each stage on the same inputs as wngan's):
  * gradients: the port's own iteration. A gradient that is exactly zero in exact
    arithmetic (the bias of a conv right before a training-mode BN: BN removes it) is
    float32 rounding noise on both sides, ~1e-8 against ~1e-1 elsewhere, and max|b| is no
    scale for it; for those (found with a float64 run of the port) the difference is
    measured against the network's largest gradient instead.
  * after-step parameters: the port's update (RMSprop, then slope clipping) of the dumped
    initial weights with wngan's gradients, which the gradient check has covered.
  * after-step BN buffers and the G loss of the alternating protocol: the port's own
    iteration, whose G step runs through wngan's updated D.
  Why not end to end: the first RMSprop step moves a weight by lr g / (sqrt(0.1) |g| + eps),
  about lr * 3.16 * sign(g) whatever |g| is, so an element whose gradient is near eps or at
  the rounding floor (the biases above) moves by an amount float32 rounding decides. The
  table shows the end-to-end comparison anyway ("e2e after", not checked) next to the port's
  own float32 iteration against its float64 one ("f32/f64", not checked): PyTorch fails a
  1e-4 end-to-end check against itself by as much as wngan does.

Usage:
  build dump_step:  ninja -C build-dev tests/torch/dump_step
                    (or, after `bash setup.sh`, ninja -C build tests/torch/dump_step)
  run:              /usr/bin/python3 tests/torch/parity.py --dump build-dev/tests/torch/dump_step
                    [--out /tmp/parity] [--only dcgan-weight-alternating-bce ...] [--verbose]
Needs PyTorch for Debian's python3 (python3-torch; `bash setup.sh bench` installs it). CI
does not run this script (CI has no PyTorch).
"""
import argparse
import json
import os
import struct
import subprocess
import sys

import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import authors_modules as am  # noqa: E402

TOL_OUT, TOL_GRAD, TOL_AFTER, TOL_LOSS = 1e-5, 1e-4, 1e-4, 1e-5

CASES = [
    ("dcgan", "none", "alternating", "bce"),
    ("dcgan", "batch", "alternating", "bce"),
    ("dcgan", "weight", "alternating", "bce"),
    ("resnet", "none", "simultaneous", "bce"),
    ("resnet", "batch", "simultaneous", "bce"),
    ("resnet", "weight", "simultaneous", "bce"),
    ("dcgan", "weight", "alternating", "ls"),
    ("dcgan", "batch", "simultaneous", "bce"),
    # A rectangular size whose maps are 2 mod 4 on the way down, so every extra padding and crop is used.
    ("dcgan", "weight", "alternating", "bce", "30x22"),
    ("resnet", "batch", "simultaneous", "bce", "30x22"),
    ("resnet", "weight", "simultaneous", "bce", "30x22"),
]

DTYPES = {"F32": torch.float32, "F64": torch.float64}


def read_safetensors(path):
    """{name: tensor}, {metadata}: an 8-byte little-endian header length, the JSON header,
    then the raw little-endian data."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, e in header.items():
        dt = DTYPES[e["dtype"]]
        b, end = e["data_offsets"]
        raw = bytearray(blob[base + b:base + end])  # a writable copy
        t = torch.frombuffer(raw, dtype=dt) if len(raw) else torch.empty(0, dtype=dt)
        out[name] = t.reshape(e["shape"]).clone()
    return out, meta


def rel_err(a, b):
    a = a.detach().to(torch.float64)
    b = b.detach().to(torch.float64)
    if a.shape != b.shape:
        return float("inf")
    d = (a - b).abs().max().item() if a.numel() else 0.0
    m = b.abs().max().item() if b.numel() else 0.0
    if m == 0.0:
        return 0.0 if d == 0.0 else float("inf")
    return d / m


def state_of(G, D):
    """Parameters and buffers of both nets, named as wngan's dumps (num_batches_tracked left out)."""
    s = {}
    for prefix, net in (("G.", G), ("D.", D)):
        for k, v in net.state_dict(keep_vars=True).items():
            if k.endswith("num_batches_tracked"):
                continue
            s[prefix + k] = v
    return s


def params_of(G, D):
    return {**{"G." + k: p for k, p in G.named_parameters()}, **{"D." + k: p for k, p in D.named_parameters()}}


def load_init(G, D, dump):
    st = state_of(G, D)
    want = {k[len("init."):] for k in dump if k.startswith("init.")}
    have = set(st)
    problems = []
    if want - have:
        problems.append("in the dump, not in the port: " + ", ".join(sorted(want - have)))
    if have - want:
        problems.append("in the port, not in the dump: " + ", ".join(sorted(have - want)))
    with torch.no_grad():
        for k in sorted(want & have):
            src = dump["init." + k]
            if tuple(src.shape) != tuple(st[k].shape):
                problems.append("%s: shape %s in the dump, %s in the port" % (k, tuple(src.shape), tuple(st[k].shape)))
                continue
            st[k].copy_(src)
    return problems


def criterion(loss):
    if loss == "bce":
        return lambda logits, target: F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))
    return lambda logits, target: F.mse_loss(torch.sigmoid(logits), torch.full_like(logits, target))


def optimizers(G, D, cfg):
    """RMSprop (alpha 0.9) for G and D, and a step that clips the clipped slopes after it."""
    opt_g = torch.optim.RMSprop(G.parameters(), lr=cfg["lr"], alpha=0.9, eps=cfg["rms_eps"], foreach=False)
    opt_d = torch.optim.RMSprop(D.parameters(), lr=cfg["lr"], alpha=0.9, eps=cfg["rms_eps"], foreach=False)
    clip_g, clip_d = am.clipped_slopes(G), am.clipped_slopes(D)

    def step(opt):
        opt.step()
        with torch.no_grad():
            for a in (clip_g if opt is opt_g else clip_d):
                a.clamp_(0, 1)
    return opt_g, opt_d, step


def iteration(G, D, inputs, cfg, d_after=None):
    """One training iteration as the authors' main.py of each protocol; returns the losses
    and {name: gradient} of the two optimizer steps.

    d_after: {name: tensor} of D's parameters after its update (wngan's). Alternating only:
    the G step then runs through those instead of the port's own updated D, so that the G
    step (its gradients, its losses, the BN statistics of that forward) is checked on the
    same inputs as wngan's; the D update itself is checked separately (replay_update)."""
    opt_g, opt_d, step = optimizers(G, D, cfg)

    def grads(prefix, net):
        return {prefix + k: p.grad.detach().clone() for k, p in net.named_parameters() if p.grad is not None}

    crit = criterion(cfg["loss"])
    real = inputs["input.real"]
    G.train()
    D.train()
    if cfg["protocol"] == "alternating":
        # D: the real batch, then a separately generated batch (no gradient into G)
        opt_d.zero_grad(set_to_none=True)
        l_real = crit(D(real), 1.0)
        l_real.backward()
        with torch.no_grad():
            fake = G(inputs["input.z1"])
        l_fake = crit(D(fake), 0.0)
        l_fake.backward()
        step(opt_d)
        gd = grads("D.", D)
        if d_after is not None:
            with torch.no_grad():
                for k, p in D.named_parameters():
                    p.copy_(d_after["D." + k])
        # G: fresh codes through the updated D, D frozen
        for p in D.parameters():
            p.requires_grad_(False)
        opt_g.zero_grad(set_to_none=True)
        l_g = crit(D(G(inputs["input.z2"])), 1.0)
        l_g.backward()
        for p in D.parameters():
            p.requires_grad_(True)
        step(opt_g)
        gg = grads("G.", G)
    else:
        # one generated batch; G's loss through D's current weights, reaching G via the images
        opt_g.zero_grad(set_to_none=True)
        fake = G(inputs["input.z1"])
        image = fake.detach().requires_grad_(True)
        out = D(image)
        l_g = crit(out, 1.0)
        (d_image,) = torch.autograd.grad(l_g, image, retain_graph=True)
        fake.backward(d_image)
        step(opt_g)
        gg = grads("G.", G)
        # D: the fake loss on that same output, then the real loss; one D update
        opt_d.zero_grad(set_to_none=True)
        l_fake = crit(out, 0.0)
        l_fake.backward()
        l_real = crit(D(real), 1.0)
        l_real.backward()
        step(opt_d)
        gd = grads("D.", D)
    losses = {"d_real": l_real.item(), "d_fake": l_fake.item(), "g_loss": l_g.item()}
    return losses, {**gg, **gd}


def replay_update(cfg, dump):
    """The port's update (RMSprop + slope clipping) from the dumped initial weights with
    wngan's dumped gradients; returns the resulting state."""
    G, D = am.build(cfg)
    load_init(G, D, dump)
    for k, p in params_of(G, D).items():
        p.grad = dump["grad." + k].clone() if "grad." + k in dump else None
    opt_g, opt_d, step = optimizers(G, D, cfg)
    step(opt_g)
    step(opt_d)
    return state_of(G, D)


class Worst:
    def __init__(self, tol):
        self.tol, self.err, self.name, self.n, self.failed = tol, 0.0, "-", 0, []

    def add(self, name, err):
        if err != err:  # NaN: the worst possible
            err = float("inf")
        self.n += 1
        if err > self.err or self.name == "-":
            self.err, self.name = err, name
        if self.tol is not None and not err <= self.tol:
            self.failed.append((name, err))

    def ok(self):
        # a checked quantity must have been seen at least once
        return not self.failed and (self.n > 0 or self.tol is None)


def check(path, verbose):
    dump, meta = read_safetensors(path)
    cfg = json.loads(meta["config"])
    structure = []
    res = {k: Worst(t) for k, t in (("out", TOL_OUT), ("grad", TOL_GRAD), ("after", TOL_AFTER), ("loss", TOL_LOSS),
                                     ("e2e", None), ("e2e64", None), ("zero", None))}

    # forward at the initial weights, training mode
    G, D = am.build(cfg)
    structure += load_init(G, D, dump)
    G.train()
    D.train()
    with torch.no_grad():
        res["out"].add("out.G", rel_err(G(dump["input.z"]), dump["out.G"]))
        res["out"].add("out.D", rel_err(D(dump["input.real"]), dump["out.D"]))

    # one iteration from the initial state (fresh nets: BN's running stats as dumped),
    # the G step of the alternating protocol through wngan's updated D
    G, D = am.build(cfg)
    load_init(G, D, dump)
    losses, grads = iteration(G, D, dump, cfg, {k[len("after."):]: v for k, v in dump.items()
                                                 if k.startswith("after.D.")})
    st = state_of(G, D)
    # the same, end to end (the port's own updated D), for information
    G, D = am.build(cfg)
    load_init(G, D, dump)
    iteration(G, D, dump, cfg)
    st_free = state_of(G, D)
    # the same iteration in float64: the referee for what is exactly zero and for what
    # float32 rounding alone does to the after-step state
    G64, D64 = am.build(cfg)
    load_init(G64, D64, dump)
    G64.double()
    D64.double()
    _, grads64 = iteration(G64, D64, {k: v.double() for k, v in dump.items() if k.startswith("input.")}, cfg)
    st64 = state_of(G64, D64)

    for k in ("d_real", "d_fake", "g_loss"):
        res["loss"].add(k, abs(losses[k] - cfg[k]) / max(abs(cfg[k]), 1e-30))

    dumped = {k[len("grad."):] for k in dump if k.startswith("grad.")}
    if dumped != set(grads):
        structure.append("gradients: dump only %s, port only %s" % (sorted(dumped - set(grads)),
                                                                      sorted(set(grads) - dumped)))
    scale = {}
    for k in dumped:
        scale[k[0]] = max(scale.get(k[0], 0.0), dump["grad." + k].abs().max().item())
    for k in sorted(dumped & set(grads)):
        e = rel_err(grads[k], dump["grad." + k])
        exact = grads64[k].abs().max().item()
        if exact <= 1e-12 * scale[k[0]]:
            # exactly zero in exact arithmetic (a conv bias right before a training-mode BN):
            # both float32 results are rounding noise, max|b| is no scale; measure the
            # difference against the network's largest gradient instead
            e = (grads[k].double() - dump["grad." + k].double()).abs().max().item() / scale[k[0]]
            res["zero"].add(k, e)
        res["grad"].add(k, e)

    after = {k[len("after."):] for k in dump if k.startswith("after.")}
    if after != set(st):
        structure.append("after-step state: dump only %s, port only %s" % (sorted(after - set(st)),
                                                                            sorted(set(st) - after)))
    params = set(params_of(G, D))
    replay = replay_update(cfg, dump)
    for k in sorted(after & set(st)):
        # parameters: the port's update of wngan's gradients (which the grad check covers);
        # BN buffers: the port's own iteration
        res["after"].add(k, rel_err(replay[k] if k in params else st[k], dump["after." + k]))
        # end to end (the port's own gradients, updated), for information: the first RMSprop
        # step, lr g / (sqrt(0.1) |g| + eps), turns float32 rounding of gradients near eps
        # into differences far above 1e-4; e2e64 shows PyTorch float32 against PyTorch float64
        res["e2e"].add(k, rel_err(st_free[k], dump["after." + k]))
        res["e2e64"].add(k, rel_err(st_free[k], st64[k]))
    if verbose:
        print("  %s: losses port %s, wngan %s" % (os.path.basename(path), losses,
                                                  {k: cfg[k] for k in ("d_real", "d_fake", "g_loss")}))
    n_params = sum(p.numel() for p in params_of(G, D).values())
    return cfg, res, structure, n_params


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dump", required=True, help="the dump_step executable")
    ap.add_argument("--out", default="/tmp/parity", help="folder for the dumps (default /tmp/parity)")
    ap.add_argument("--only", nargs="*", default=None, help="case names (arch-norm-protocol-loss) to run")
    ap.add_argument("--reuse", action="store_true", help="use dumps already in --out instead of writing them")
    ap.add_argument("--verbose", action="store_true", help="print every failing tensor and the losses")
    a = ap.parse_args()
    torch.set_num_threads(1)
    os.makedirs(a.out, exist_ok=True)

    rows, bad = [], False
    for case in CASES:
        name = "-".join(case)
        if a.only and name not in a.only:
            continue
        path = os.path.join(a.out, name + ".safetensors")
        if not (a.reuse and os.path.exists(path)):
            r = subprocess.run([a.dump, *case[:4], path, *case[4:]], capture_output=True, text=True)
            if r.returncode != 0:
                print("%s: dump_step failed (%d): %s" % (name, r.returncode, r.stderr.strip()))
                bad = True
                continue
        cfg, res, structure, n_params = check(path, a.verbose)
        ok = not structure and all(w.ok() for w in res.values())
        bad |= not ok
        rows.append((name, res, structure, ok, n_params))

    cols = (("out", "outputs"), ("grad", "gradients"), ("after", "after step"), ("loss", "losses"),
            ("e2e", "e2e after*"), ("e2e64", "f32/f64 *"))
    hdr = "%-30s %7s" % ("case", "params") + "".join("  %-10s" % c for _, c in cols) + "  result"
    print(hdr)
    print("-" * len(hdr))
    for name, res, structure, ok, n_params in rows:
        print("%-30s %7d" % (name, n_params) + "".join("  %-10s" % ("%.2e" % res[k].err) for k, _ in cols)
              + "  " + ("ok" if ok else "FAIL"))
    print("worst tensors:")
    for name, res, structure, ok, n_params in rows:
        print("  %-30s gradients: %s; after step: %s; e2e: %s" % (name, res["grad"].name, res["after"].name,
                                                                  res["e2e"].name))
        if res["zero"].n:
            print("  %-30s (%d gradients exactly zero in exact arithmetic, against the network's largest "
                  "gradient: worst %.2e %s)" % ("", res["zero"].n, res["zero"].err, res["zero"].name))
    print("errors: max|port - wngan| / max|wngan| per tensor, the worst; tolerances: outputs %.0e, gradients %.0e, "
          "after step %.0e, losses %.0e" % (TOL_OUT, TOL_GRAD, TOL_AFTER, TOL_LOSS))
    print("after step: the port's RMSprop + clipping applied to wngan's (checked) gradients; BN buffers from the "
          "port's own iteration")
    print("* not checked: e2e after = the port's own iteration end to end against wngan; f32/f64 = the port's float32 "
          "iteration against its float64 one (float32 rounding of gradients near the RMSprop eps alone)")
    for name, res, structure, ok, _ in rows:
        for s in structure:
            print("%s: STRUCTURE: %s" % (name, s))
        for k, w in res.items():
            for t, e in (w.failed if a.verbose else w.failed[:5]):
                print("%s: FAIL %s %s: %.3e > %.0e" % (name, k, t, e, w.tol))
            if not a.verbose and len(w.failed) > 5:
                print("%s: ... %d more %s failures (--verbose lists them)" % (name, len(w.failed) - 5, k))
    print("torch %s, %d thread(s)" % (torch.__version__, torch.get_num_threads()))
    print("FAILED" if bad else "all checks passed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
