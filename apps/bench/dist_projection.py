#!/usr/bin/env python3
"""On-paper projections for docs/cluster.md (issue 17): data-parallel iteration time and
efficiency at N ranks from a measured one-process compute time per iteration and the
measured bytes of gradients all-reduced per iteration (`wngan bench --what dist --json F`),
and the wall time of a study whose runs each take a GPU of their own.

Model (no overlap of communication with compute, as wngan does it: the all-reduce starts
after the backward):
  iteration(N) = compute(1) / N + allreduce(N)            (strong scaling: global batch fixed)
  allreduce(N) = 2 (N-1)/N * bytes / bandwidth + k * 2 (N-1) * latency
with k = 2 all-reduces per iteration (D's step, G's step) and `latency` the cost of one step
of the ring. efficiency(N) = (compute(1) / N) / iteration(N).
These are projections, not measurements.

  python3 apps/bench/dist_projection.py --json dist.json            # compute and bytes from the bench
  python3 apps/bench/dist_projection.py --compute-ms 8.1 --bytes 25369632
"""
import argparse
import json

# (name, bandwidth in bytes/s per direction, latency of one ring step in s): assumptions.
NETWORKS = [
    ("25 Gb/s Ethernet (3.125 GB/s, 20 us per ring step)", 25e9 / 8, 20e-6),
    ("NVLink 4 (450 GB/s per direction per GPU, H100/H200; 3 us per ring step)", 450e9, 3e-6),
]


def allreduce_s(n, nbytes, bw, lat, per_iter=2):
    if n == 1:
        return 0.0
    return 2 * (n - 1) / n * nbytes / bw + per_iter * 2 * (n - 1) * lat


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", help="wngan bench --what dist --json output (1 rank: its compute time)")
    ap.add_argument("--compute-ms", type=float, help="one process's compute per iteration, ms")
    ap.add_argument("--bytes", type=int, help="gradient bytes all-reduced per iteration")
    ap.add_argument("--ranks", default="2,8,32")
    ap.add_argument("--study-ms", default="8.1,9.7,8.3", help="per-iteration GPU ms of each model of a study")
    ap.add_argument("--study-iters", default="100000,463000")
    ap.add_argument("--seeds", type=int, default=3)
    a = ap.parse_args()
    compute, nbytes = a.compute_ms, a.bytes
    if a.json:
        with open(a.json) as f:
            d = json.load(f)["dist"]
        compute = compute or d["compute_seconds"] * 1e3
        nbytes = nbytes or d["reduced_bytes_per_iteration"]
    if compute is None or nbytes is None:
        ap.error("give --json, or --compute-ms and --bytes")
    ranks = [int(x) for x in a.ranks.split(",")]
    print(f"compute {compute:.1f} ms per iteration on one process, {nbytes / 1e6:.1f} MB reduced per iteration\n")
    print("| network | ranks | compute ms | all-reduce ms | iteration ms | efficiency |")
    print("|---|---|---|---|---|---|")
    for name, bw, lat in NETWORKS:
        for n in ranks:
            c = compute / n
            r = allreduce_s(n, nbytes, bw, lat) * 1e3
            print(f"| {name} | {n} | {c:.2f} | {r:.2f} | {c + r:.2f} | {100 * c / (c + r):.0f}% |")
    ms = [float(x) for x in a.study_ms.split(",")]
    print(f"\nstudy: {len(ms)} models x {a.seeds} seeds = {len(ms) * a.seeds} runs, "
          f"per-iteration GPU ms {', '.join(f'{m:g}' for m in ms)} (training only)\n")
    print("| iterations per run | one run per GPU (9 GPUs): wall | one GPU, runs in turn |")
    print("|---|---|---|")
    for it in (int(x) for x in a.study_iters.split(",")):
        wall = max(ms) * it / 1e3
        serial = sum(ms) * a.seeds * it / 1e3
        print(f"| {it:,} | {wall / 60:.1f} min (the slowest model) | {serial / 3600:.2f} h |")


if __name__ == "__main__":
    main()
