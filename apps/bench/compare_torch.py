#!/usr/bin/python3
"""Runs `wngan bench` and the same ops in PyTorch side by side, in one run, on the
same machine with the same thread count, and prints the speed ratio per op.

Three parts: the DCGAN convolutions one by one (--what ops), full training iterations
of the vanilla, BN and WN DCGANs with peak memory (--what iteration), and the
reconstruction step of the evaluation (--what recon); each variant runs in its own
process for wngan and for PyTorch, so that peak RSS is per run.

Usage: /usr/bin/python3 apps/bench/compare_torch.py [--wngan build/apps/wngan]
       [--threads 2] [--repeat 5] [--batch 32] [--what ops|iteration|recon|all]
       [--image-size 64 --channels 3] [--out results.json] [--allow-reference-blas]
PyTorch comes from Debian's python3-torch (hence /usr/bin/python3).

A fair baseline: Debian's PyTorch calls whatever libblas.so.3 the alternatives system
selects. On a fresh machine that is netlib's reference BLAS, on which PyTorch's
transposed convolutions (GEMM + col2im) run at 2-6 GFLOP/s, several times slower than
any real install (pip's PyTorch bundles MKL). The script names the BLAS PyTorch runs on
and the CPU, and refuses the reference BLAS unless --allow-reference-blas is given;
`bash setup.sh bench` installs libopenblas0-pthread, which becomes libblas.so.3.
OpenBLAS and OpenMP get the same thread count as wngan.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def median_time(fn, repeat, warmup=1, sync=None):
    """Median seconds of `repeat` calls of fn after `warmup` untimed calls; sync, if
    given, runs before each timed call."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeat):
        if sync:
            sync()
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def cpu_name():
    """The CPU's model name as lscpu prints it (or /proc/cpuinfo's), for every figure."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                name = line.split(":", 1)[1].strip()
                field = lambda k: next((l.split(":", 1)[1].strip() for l in out.splitlines()
                                        if l.startswith(k + ":")), "?")
                flags = " " + field("Flags") + " "
                isa = "AVX-512" if " avx512f " in flags else "AVX2" if " avx2 " in flags else "no AVX2"
                return f"{name} (family {field('CPU family')} model {field('Model')}, {isa})"
    except OSError:
        pass
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


def blas_info():
    """Which BLAS the imported torch runs on: the BLAS libraries mapped into this process
    (libblas.so.3 resolved through the alternatives links, OpenBLAS, MKL, BLIS), and the
    build's BLAS_INFO. kind is openblas, mkl, blis, reference (netlib), bundled (none
    mapped: linked into libtorch, as pip's MKL) or unknown."""
    import torch
    config = torch.__config__.show()
    build = next((f.split("=", 1)[1] for f in config.replace(",", " ").split() if f.startswith("BLAS_INFO=")), "?")
    mapped = []
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            name = os.path.basename(path)
            if any(k in name for k in ("blas", "mkl_", "blis")) and path not in mapped:
                mapped.append(path)
    real = [os.path.realpath(p) for p in mapped]
    # What answers PyTorch's sgemm_ calls is the libblas.so.3 it links to; OpenBLAS's
    # LAPACK may be mapped beside a reference libblas, so that one decides.
    libblas = [r for r in real if os.path.basename(r).startswith("libblas.so")]
    decisive = " ".join(libblas or real)
    if "openblas" in decisive:
        kind = "openblas"
    elif "mkl" in decisive:
        kind = "mkl"
    elif "blis" in decisive:
        kind = "blis"
    elif libblas:
        kind = "reference"  # netlib's libblas3 (/usr/lib/<triplet>/blas/libblas.so.3)
    elif not real and build in ("mkl", "open", "openblas"):
        kind = "bundled"
    else:
        kind = "unknown"
    real = libblas + [r for r in real if r not in libblas]
    return {"kind": kind, "libraries": real, "build_blas_info": build,
            "mkldnn": bool(torch.backends.mkldnn.is_available())}


def peak_rss_mib():
    """This process's peak resident memory in MiB: VmHWM, which starts afresh at exec
    (ru_maxrss would carry over the parent's peak, which has imported torch)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def limit_threads(threads):
    """The same thread count for PyTorch's OpenMP pool and for OpenBLAS's own pool (it
    would otherwise start one thread per core); must run before torch is imported."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(threads)


def torch_sgemm_gflops(threads, n=2048, repeat=5):
    """PyTorch's SGEMM rate (torch.mm, n^3, float32), i.e. the BLAS it runs on."""
    import torch
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
    return 2.0 * n ** 3 / median_time(lambda: torch.mm(a, b), repeat) / 1e9


def torch_setup(threads, device):
    """Threads, plain FP32 on CUDA like wngan's backend (PyTorch's default lets cuDNN use
    TF32), and the seed; returns the torch module."""
    import torch
    torch.set_num_threads(threads)
    if device.startswith("cuda"):
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
    torch.manual_seed(1)
    return torch


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

    def fwd():
        with torch.no_grad():
            f()

    def total():
        x.grad = w.grad = b.grad = None
        f().backward(dy)

    return median_time(fwd, repeat), median_time(total, repeat)


def torch_iteration(norm, threads, repeat, batch, channels, size, nf, code, device):
    """Child process: times PyTorch's training iteration; prints JSON with peak RSS."""
    torch = torch_setup(threads, device)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import torch_dcgan
    G, D = torch_dcgan.dcgan(norm, channels, size, size, nf, code)
    G, D = G.to(device), D.to(device)
    step = torch_dcgan.Step(G, D, code, device=device)
    real = torch.rand(batch, channels, size, size, device=device)
    cuda = device.startswith("cuda")
    # The step ends with .item(): synchronised.
    seconds = median_time(lambda: step(real), repeat, warmup=3 if cuda else 1,
                          sync=torch.cuda.synchronize if cuda else None)
    rss = peak_rss_mib()
    out = {"seconds": seconds, "peak_rss_mib": rss, "G": torch_dcgan.count(G), "D": torch_dcgan.count(D)}
    if cuda:  # the caching allocator's peaks (cuDNN and cuBLAS workspaces included)
        out["gpu_peak_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
        out["gpu_peak_reserved_mib"] = torch.cuda.max_memory_reserved() / 2**20
    print(json.dumps(out))


def torch_recon(norm, threads, repeat, batch, channels, size, nf, code, device):
    """Child process: times PyTorch's reconstruction step; prints JSON."""
    torch = torch_setup(threads, device)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import torch_dcgan
    G, _ = torch_dcgan.dcgan(norm, channels, size, size, nf, code)
    step = torch_dcgan.ReconStep(G.to(device), torch.rand(batch, channels, size, size, device=device), code, device)
    print(json.dumps({"seconds": median_time(step, repeat)}))  # the step ends with .item(): synchronised


def run_pair(a, norm, what, child):
    """Runs `wngan bench --what WHAT` and the PyTorch child process for one variant, with
    the same settings; returns both JSON results."""
    common = ["--threads", str(a.threads), "--repeat", str(a.repeat), "--batch", str(a.batch), "--image-size",
              str(a.image_size), "--channels", str(a.channels), "--nf", str(a.nf), "--device", a.device]
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "out.json")
        subprocess.run([a.wngan, "bench", "--what", what, "--norms", norm, "--json", path] + common, check=True,
                       stdout=subprocess.DEVNULL)
        with open(path) as f:
            ours = json.load(f)
    out = subprocess.run([sys.executable, os.path.abspath(__file__), child, norm] + common, check=True,
                         capture_output=True, text=True).stdout
    return ours, json.loads(out.strip().splitlines()[-1])


def run_recon(a):
    rows = []
    print(f"\nreconstruction step (G forward + dL/dz + RMSProp on z) on {a.device}, "
          f"{a.channels}x{a.image_size}x{a.image_size}, "
          f"nf {a.nf}, batch {a.batch}, {a.threads} threads, median of {a.repeat}")
    hdr = f"{'variant':<8} {'wngan ms':>9} {'torch ms':>9} {'speedup':>8}"
    print(hdr)
    print("-" * len(hdr))
    for norm in a.norms.split(","):
        ours, theirs = run_pair(a, norm, "recon", "--torch-recon-child")
        ws, ts = ours["recon"][0]["seconds"], theirs["seconds"]
        rows.append({"norm": norm, "batch": a.batch, "wngan_s": ws, "torch_s": ts, "speedup": ts / ws})
        print(f"{norm:<8} {ws*1e3:>9.1f} {ts*1e3:>9.1f} {ts/ws:>7.2f}x")
    return rows


def run_iterations(a):
    rows = []
    print(f"\nfull training iteration on {a.device}, {a.channels}x{a.image_size}x{a.image_size}, nf {a.nf}, "
          f"batch {a.batch}, {a.threads} threads, median of {a.repeat}")
    hdr = (f"{'variant':<8} {'wngan ms':>9} {'torch ms':>9} {'speedup':>8} {'wngan GF/s':>11} {'%SGEMM':>7} "
           f"{'wngan RSS MiB':>14} {'torch RSS MiB':>14}")
    print("(%SGEMM: share of the best SGEMM rate of this run, wngan's own kernel, Eigen or PyTorch's BLAS)")
    print(hdr)
    print("-" * len(hdr))
    for norm in a.norms.split(","):
        ours, theirs = run_pair(a, norm, "iteration", "--torch-child")
        it = ours["iterations"][0]
        ws, ts = it["seconds"], theirs["seconds"]
        best = max(ours["sgemm_gflops"], a.torch_sgemm or 0)  # the best SGEMM rate of this run
        share = 100 * it.get("gflops", 0) / best
        rows.append({"norm": norm, "device": a.device, "batch": a.batch, "wngan_s": ws, "torch_s": ts, "speedup": ts / ws,
                     "wngan_gflops": it.get("gflops"), "sgemm_gflops": ours["sgemm_gflops"],
                     "torch_sgemm_gflops": a.torch_sgemm,
                     "rss_after_first_mib": it.get("rss_after_first_mib"),
                     "rss_after_last_mib": it.get("rss_after_last_mib"),
                     "wngan_rss_mib": ours["peak_rss_mib"], "torch_rss_mib": theirs["peak_rss_mib"],
                     "wngan_conv_library": ours.get("conv_library"),
                     "wngan_gpu_in_use_mib": ours.get("alloc_peak_in_use_mib", 0),
                     "wngan_gpu_held_mib": ours.get("alloc_held_mib", 0),
                     "torch_gpu_allocated_mib": theirs.get("gpu_peak_allocated_mib", 0),
                     "torch_gpu_reserved_mib": theirs.get("gpu_peak_reserved_mib", 0),
                     "copies": f"{it.get('copies_to_device', 0)}/{it.get('copies_to_host', 0)}"})
        print(f"{norm:<8} {ws*1e3:>9.1f} {ts*1e3:>9.1f} {ts/ws:>7.2f}x {it.get('gflops', 0):>11.1f} {share:>6.0f}% "
              f"{ours['peak_rss_mib']:>14.0f} {theirs['peak_rss_mib']:>14.0f}")
    if a.device.startswith("cuda"):
        print(f"\npeak GPU memory, MiB (wngan: its caching allocator, cuDNN workspace included, cuBLAS's own "
              f"workspace not; torch: max_memory_allocated / max_memory_reserved)")
        print(f"{'variant':<8} {'wngan in use':>13} {'wngan held':>11} {'torch alloc':>12} {'torch reserved':>15} "
              f"{'copies H2D/D2H per it':>22}")
        for r in rows:
            print(f"{r['norm']:<8} {r['wngan_gpu_in_use_mib']:>13.1f} {r['wngan_gpu_held_mib']:>11.1f} "
                  f"{r['torch_gpu_allocated_mib']:>12.1f} {r['torch_gpu_reserved_mib']:>15.1f} "
                  f"{r['copies']:>22}")
    for lib in dict.fromkeys(r["wngan_conv_library"] for r in rows):
        print(f"wngan convolutions: {lib}")
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wngan", default="build/apps/wngan")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--out", help="write the combined results as JSON")
    ap.add_argument("--what", default="all", choices=["ops", "iteration", "recon", "all"])
    ap.add_argument("--norms", default="none,batch,weight")
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--nf", type=int, default=64)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (iteration benchmark)")
    ap.add_argument("--allow-reference-blas", action="store_true",
                    help="measure even when PyTorch runs on netlib's reference BLAS (not a fair baseline)")
    ap.add_argument("--torch-child", help=argparse.SUPPRESS)
    ap.add_argument("--torch-recon-child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.threads < 1:
        sys.exit("compare_torch: --threads must be at least 1")
    limit_threads(a.threads)
    if a.torch_recon_child:
        torch_recon(a.torch_recon_child, a.threads, a.repeat, a.batch, a.channels, a.image_size, a.nf, 128, a.device)
        return
    if a.torch_child:
        torch_iteration(a.torch_child, a.threads, a.repeat, a.batch, a.channels, a.image_size, a.nf, 128, a.device)
        return
    if not os.path.exists(a.wngan):
        sys.exit(f"compare_torch: {a.wngan} not found; build first (bash setup.sh)")
    import torch
    blas = blas_info()
    cpu = cpu_name()
    if blas["kind"] == "reference" and not a.device.startswith("cuda") and not a.allow_reference_blas:
        sys.exit(f"compare_torch: PyTorch runs on netlib's reference BLAS ({', '.join(blas['libraries'])}), which "
                 "makes its transposed convolutions several times slower than any real install: not a fair "
                 "baseline. Install libopenblas0-pthread (bash setup.sh bench does; it becomes libblas.so.3), "
                 "or pass --allow-reference-blas to measure anyway.")
    sgemm = torch_sgemm_gflops(a.threads) if not a.device.startswith("cuda") else None
    a.torch_sgemm = sgemm
    print(f"CPU: {cpu}; PyTorch {torch.__version__}, {a.threads} threads, BLAS: {blas['kind']} "
          f"({', '.join(blas['libraries']) or 'none mapped; BLAS_INFO=' + blas['build_blas_info']}), "
          f"oneDNN {'on' if blas['mkldnn'] else 'off'}"
          + (f", {torch.cuda.get_device_name(0)}" if a.device.startswith("cuda") else ""))
    if sgemm:
        print(f"PyTorch SGEMM (torch.mm 2048^3 on {blas['kind']}): {sgemm:.1f} GFLOP/s")
    if blas["kind"] == "reference":
        print("WARNING: reference BLAS behind PyTorch (--allow-reference-blas): the ratios below are not fair")
    results = {"torch": torch.__version__, "threads": a.threads, "cpu": cpu, "blas": blas,
               "torch_sgemm_gflops": sgemm}
    if a.what in ("iteration", "all"):
        results["iterations"] = run_iterations(a)
    if a.what in ("recon", "all"):
        results["recon"] = run_recon(a)
    if a.what in ("iteration", "recon"):
        if a.out:
            with open(a.out, "w") as f:
                json.dump(results, f, indent=2)
        return

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "wngan.json")
        subprocess.run([a.wngan, "bench", "--what", "ops", "--threads", str(a.threads), "--repeat", str(a.repeat),
                        "--batch", str(a.batch), "--json", path], check=True, stdout=subprocess.DEVNULL)
        with open(path) as f:
            ours = json.load(f)

    print(f"\nconvolutions, batch {a.batch}, median of {a.repeat} runs")
    own = ours.get("own_sgemm_gflops")
    mine = (f"wngan's own kernel + oneTBB {own:.1f}, Eigen + oneTBB {ours['eigen_sgemm_gflops']:.1f} GFLOP/s" if own
            else f"wngan (Eigen + oneTBB) {ours['sgemm_gflops']:.1f} GFLOP/s")
    print(f"SGEMM 2048^3 in this run: {mine}, "
          f"PyTorch ({blas['kind']}) {sgemm or 0:.1f} GFLOP/s\n")
    hdr = f"{'op (fwd + bwd)':<32} {'wngan ms':>9} {'torch ms':>9} {'speedup':>8} {'wngan GF/s':>11} {'torch GF/s':>11} {'wngan %SGEMM':>13}"
    best = max(ours["sgemm_gflops"], sgemm or 0)
    print(hdr)
    print("-" * len(hdr))
    rows = []
    for op in ours["ops"]:
        tf, tt = torch_times(op, a.threads, a.repeat, a.batch)
        speed = tt / op["total_s"]
        rows.append({**op, "torch_forward_s": tf, "torch_total_s": tt, "speedup": speed,
                     "share_of_best_sgemm": op["gflops"] / best})
        print(f"{op['name']:<32} {op['total_s']*1e3:>9.1f} {tt*1e3:>9.1f} {speed:>7.2f}x "
              f"{op['gflops']:>11.1f} {op['gflop']/tt:>11.1f} {100*op['gflops']/best:>12.0f}%")
    if a.out:
        results.update({"wngan": ours, "rows": rows})
        with open(a.out, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
