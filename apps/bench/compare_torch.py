#!/usr/bin/python3
"""Runs `wngan bench` and the same ops in PyTorch side by side, in one run, on the
same machine with the same thread count, and prints the speed ratio per op.

Usage: /usr/bin/python3 apps/bench/compare_torch.py [--wngan build/apps/wngan]
       [--threads 2] [--repeat 5] [--batch 32] [--out results.json]
PyTorch comes from Debian's python3-torch (hence /usr/bin/python3).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def torch_times(op, threads, repeat, batch):
    import torch
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, op["cin"], op["size"], op["size"], generator=g, requires_grad=True)
    if op["transposed"]:
        w = (0.02 * torch.randn(op["cin"], op["cout"], 4, 4, generator=g)).requires_grad_()
        f = lambda: torch.nn.functional.conv_transpose2d(x, w, b, stride=2, padding=1)
    else:
        w = (0.02 * torch.randn(op["cout"], op["cin"], 4, 4, generator=g)).requires_grad_()
        f = lambda: torch.nn.functional.conv2d(x, w, b, stride=2, padding=1)
    b = torch.zeros(op["cout"], requires_grad=True)
    dy = torch.randn(f().shape, generator=g)

    def med(fn):
        fn()
        ts = []
        for _ in range(repeat):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
        return statistics.median(ts)

    def fwd():
        with torch.no_grad():
            f()

    def total():
        x.grad = w.grad = b.grad = None
        f().backward(dy)

    return med(fwd), med(total)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wngan", default="build/apps/wngan")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--out", help="write the combined results as JSON")
    a = ap.parse_args()
    if not os.path.exists(a.wngan):
        sys.exit(f"compare_torch: {a.wngan} not found; build first (bash setup.sh)")
    import torch

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "wngan.json")
        subprocess.run([a.wngan, "bench", "--threads", str(a.threads), "--repeat", str(a.repeat),
                        "--batch", str(a.batch), "--json", path], check=True)
        with open(path) as f:
            ours = json.load(f)

    print(f"\nPyTorch {torch.__version__}, {a.threads} threads, batch {a.batch}, median of {a.repeat} runs")
    print(f"wngan SGEMM rate in this run: {ours['sgemm_gflops']:.1f} GFLOP/s\n")
    hdr = f"{'op (fwd + bwd)':<32} {'wngan ms':>9} {'torch ms':>9} {'speedup':>8} {'wngan GF/s':>11} {'torch GF/s':>11} {'wngan %SGEMM':>13}"
    print(hdr)
    print("-" * len(hdr))
    rows = []
    for op in ours["ops"]:
        tf, tt = torch_times(op, a.threads, a.repeat, a.batch)
        speed = tt / op["total_s"]
        rows.append({**op, "torch_forward_s": tf, "torch_total_s": tt, "speedup": speed})
        print(f"{op['name']:<32} {op['total_s']*1e3:>9.1f} {tt*1e3:>9.1f} {speed:>7.2f}x "
              f"{op['gflops']:>11.1f} {op['gflop']/tt:>11.1f} {100*op['gflops']/ours['sgemm_gflops']:>12.0f}%")
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"wngan": ours, "rows": rows, "torch": torch.__version__}, f, indent=2)


if __name__ == "__main__":
    main()
