#!/usr/bin/env python3
"""Where a GPU training iteration spends its time, wngan beside PyTorch.

  gpu_profile.py ncu CSV ITERS      kernels of `ncu --csv --metrics gpu__time_duration.sum`
                                    over ITERS iterations of `wngan bench --no-sgemm` (repeat + 3):
                                    GPU time and launches per iteration, the top kernels
  gpu_profile.py torch NORM BATCH   the same for PyTorch's iteration (torch.profiler,
                                    FP32, TF32 off, cuDNN benchmark mode)

The GPU-busy time per iteration, set beside the wall time of the benchmark, says whether
an iteration is bound by the GPU's work or by launching it.
"""
import collections
import csv
import os
import re
import sys


def short(name):
    """A kernel's name without namespaces and parameter list (template arguments kept)."""
    name = name.replace("(anonymous namespace)", "")
    depth = 0
    for i, ch in enumerate(name):  # cut at the parameter list: the first '(' outside <...>
        depth += (ch == "<") - (ch == ">")
        if ch == "(" and depth == 0:
            name = name[:i]
            break
    name = re.sub(r"\b[A-Za-z_]\w*::", "", name.replace("void ", "")).replace("::", "")
    return name.strip()[:60]


def table(times, calls, iters, title):
    total = sum(times.values())
    n = sum(calls.values())
    print(f"{title}: {total / iters * 1e3:.3f} ms of kernels per iteration, {n / iters:.0f} launches per iteration")
    print(f"  {'kernel':<60} {'ms/it':>8} {'calls/it':>9} {'share':>6}")
    for k, t in sorted(times.items(), key=lambda kv: -kv[1])[:22]:
        print(f"  {k:<60} {t / iters * 1e3:>8.3f} {calls[k] / iters:>9.1f} {100 * t / total:>5.1f}%")


def from_ncu(path, iters):
    times, calls = collections.Counter(), collections.Counter()
    with open(path) as f:
        lines = [l for l in f if l.startswith('"')]
    for row in csv.DictReader(lines):
        if row.get("Metric Name") != "gpu__time_duration.sum":
            continue
        unit = row.get("Metric Unit", "nsecond")
        scale = {"nsecond": 1e-9, "ns": 1e-9, "usecond": 1e-6, "us": 1e-6, "msecond": 1e-3, "ms": 1e-3}.get(unit, 1e-9)
        k = short(row["Kernel Name"])
        times[k] += float(row["Metric Value"].replace(",", "")) * scale
        calls[k] += 1
    table(times, calls, iters, "wngan")


def from_torch(norm, batch):
    import torch
    from torch.profiler import ProfilerActivity, profile
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import torch_dcgan
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    torch.manual_seed(1)
    G, D = torch_dcgan.dcgan(norm, 3, 64, 64, 64, 128)
    step = torch_dcgan.Step(G.cuda(), D.cuda(), 128, device="cuda")
    real = torch.rand(batch, 3, 64, 64, device="cuda")
    for _ in range(5):
        step(real)
    iters = 5
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(iters):
            step(real)
        torch.cuda.synchronize()
    times, calls = collections.Counter(), collections.Counter()
    for e in prof.events():
        if e.device_type == torch.autograd.DeviceType.CUDA:
            k = short(e.name)
            times[k] += e.time_range.elapsed_us() * 1e-6
            calls[k] += 1
    table(times, calls, iters, f"torch {norm} batch {batch}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "ncu":
        from_ncu(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) == 4 and sys.argv[1] == "torch":
        from_torch(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(__doc__)
