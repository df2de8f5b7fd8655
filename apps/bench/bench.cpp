// `wngan bench`: times the engine's heavy ops at the paper's DCGAN shapes (64x64x3
// images, 64 first-layer features doubling, batch 32), full training iterations, the
// reconstruction step, and how they scale, with the machine's SGEMM rate measured in
// the same run. --profile adds the per-kernel profile of an iteration. --what dist splits a
// data-parallel iteration (mpirun -np N) into compute and gradient all-reduce.
// apps/bench/compare_torch.py runs the same work in PyTorch side by side.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include "apps/commands.h"
#include "engine/backend/backend.h"
#include "engine/dist/comm.h"
#include "engine/backend/cpu/cpu_backend.h"
#include "engine/backend/cpu/sgemm.h"
#include "engine/engine.h"
#include "engine/profile.h"
#include "eval/reconstruct.h"
#include "gan/run_config.h"
#include "gan/trainer.h"
#include "nn/checkpoint.h"
#include "nn/optim.h"

namespace wn::app {

namespace {

using nlohmann::json;

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> t) {
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Seconds one call of f takes.
template <class F>
double time_once(F&& f) {
  const double s = now();
  f();
  return now() - s;
}

// Median seconds of `repeat` runs of f, after one warm-up run.
template <class F>
double time_median(int repeat, F&& f) {
  f();
  std::vector<double> t;
  for (int i = 0; i < repeat; ++i) t.push_back(time_once(f));
  return median(t);
}

// Median seconds of f with 1 thread and with `full` threads, the two alternating (after
// one warm-up each) so that both see the same state of a shared machine.
template <class F>
std::pair<double, double> time_1_vs_full(int repeat, int full, F&& f) {
  std::vector<double> t1, tn;
  for (int r = 0; r <= repeat; ++r)
    for (int th : {1, full}) {
      set_num_threads(th);
      const double t = time_once(f);
      if (r > 0) (th == 1 ? t1 : tn).push_back(t);
    }
  set_num_threads(full);
  return {median(t1), median(tn)};
}

// v formatted with f where the kernels counted FLOPs (flop > 0), "-" elsewhere (CUDA).
std::string if_counted(double flop, double v, const char* f) {
  return flop > 0 ? fmt::format(fmt::runtime(f), v) : std::string("-");
}

// Peak resident memory of this process so far, in MiB: VmHWM from /proc/self/status,
// which starts afresh at exec (getrusage's ru_maxrss carries the parent's peak across
// fork + exec, so a benchmark started from a big process would report the parent's).
double peak_rss_mib() {
  if (std::FILE* f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    long kib = -1;
    while (std::fgets(line, sizeof line, f))
      if (std::sscanf(line, "VmHWM: %ld kB", &kib) == 1) break;
    std::fclose(f);
    if (kib >= 0) return kib / 1024.0;
  }
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}

// Resident memory now, in MiB (from /proc/self/statm).
double rss_now_mib() {
  std::ifstream f("/proc/self/statm");
  long pages = 0, resident = 0;
  f >> pages >> resident;
  return resident * double(sysconf(_SC_PAGESIZE)) / 1048576.0;
}

struct Opts {
  int threads = 0, repeat = 5, batch = 32;
  std::string json, what = "all", norms = "none,batch,weight", image_size = "64", device = "cpu";
  int64_t channels = 3, nf = 64, code = 128, recon_steps = 20;
  bool profile = false, sgemm = true, conv_paths = false, sgemm_kernels = false;
};

struct ConvCase {
  std::string name;
  bool transposed;
  int64_t cin, cout, size;  // input channels, output channels, input spatial size
};

// The four discriminator convs and the four generator transposed convs.
std::vector<ConvCase> dcgan_convs() {
  return {{"D.level0 conv 3->64 64->32", false, 3, 64, 64},
          {"D.level1 conv 64->128 32->16", false, 64, 128, 32},
          {"D.level2 conv 128->256 16->8", false, 128, 256, 16},
          {"D.level3 conv 256->512 8->4", false, 256, 512, 8},
          {"G.level3 convT 512->256 4->8", true, 512, 256, 4},
          {"G.level2 convT 256->128 8->16", true, 256, 128, 8},
          {"G.level1 convT 128->64 16->32", true, 128, 64, 16},
          {"G.level0 convT 64->3 32->64", true, 64, 3, 32}};
}

// SGEMM rate (GFLOP/s) through the same GEMM path the convolutions use.
double measure_sgemm(Backend& be, Device dev, int repeat, Generator& gen) {
  const int64_t n = 2048;
  Tensor a = randn({n, n}, gen).to(dev), b = randn({n, n}, gen).to(dev), c = Tensor::empty({n, n}, DType::F32, dev);
  double t = time_median(repeat, [&] {
    be.gemm(false, false, 1.0, a, b, 0.0, c);
    be.synchronize();
  });
  return 2.0 * n * n * n / t / 1e9;
}

// One DCGAN convolution's operands on the device (input, weight and a zero bias, all
// requiring gradients) and its forward pass.
struct ConvOperands {
  Tensor x, w, bias;
  bool transposed = false;
  Tensor forward() const { return transposed ? conv_transpose2d(x, w, bias, 2, 1) : conv2d(x, w, bias, 2, 1); }
  void zero_grad() {
    x.zero_grad();
    w.zero_grad();
    bias.zero_grad();
  }
};

ConvOperands conv_operands(const ConvCase& cc, int64_t batch, Device dev, Generator& gen) {
  ConvOperands op;
  op.x = randn({batch, cc.cin, cc.size, cc.size}, gen).to(dev).set_requires_grad();
  op.w = (cc.transposed ? randn({cc.cin, cc.cout, 4, 4}, gen, 0.02) : randn({cc.cout, cc.cin, 4, 4}, gen, 0.02))
             .to(dev)
             .set_requires_grad();
  op.bias = Tensor::zeros({cc.cout}, DType::F32, dev).set_requires_grad();
  op.transposed = cc.transposed;
  return op;
}

// Runs f `runs` times with the profiler on; returns the rows averaged per run (and in
// *wall the mean wall time of those runs, where given).
template <class F>
std::vector<profile::Entry> profile_runs(int runs, F&& f, double* wall = nullptr) {
  profile::reset();
  profile::set_enabled(true);
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < runs; ++i) f();
  if (wall) *wall = runs > 0 ? std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / runs : 0;
  profile::set_enabled(false);
  std::vector<profile::Entry> rows = profile::entries();
  for (auto& e : rows) {
    e.seconds /= runs;
    e.flops /= runs;
    e.calls /= runs;
  }
  profile::reset();
  return rows;
}

json bench_ops(const Opts& o, Backend& be, Device dev, double sgemm, Generator& gen) {
  json ops = json::array();
  fmt::print("{:<32} {:>9} {:>9} {:>9} {:>9} {:>10} {:>8}\n", "op (fwd + bwd data + bwd weight)", "fwd ms", "bwd ms",
             "total ms", "GFLOP", "GFLOP/s", "%SGEMM");
  for (const ConvCase& cc : dcgan_convs()) {
    const int64_t B = o.batch;
    ConvOperands op = conv_operands(cc, B, dev, gen);
    auto fwd = [&] { return op.forward(); };
    Tensor y = fwd();
    Tensor dy = randn(y.shape(), gen).to(dev);
    const int64_t osz = y.dim(2);
    // Multiply-adds of one direction: output pixels x Cout x Cin x 16 (conv), or
    // input pixels x Cin x Cout x 16 (transposed).
    const double macs = cc.transposed ? double(B) * cc.size * cc.size * cc.cin * cc.cout * 16
                                      : double(B) * osz * osz * cc.cout * cc.cin * 16;
    const double flop = 3 * 2 * macs;
    double tf = time_median(o.repeat, [&] {
      NoGradGuard ng;
      fwd();
      be.synchronize();
    });
    double tt = time_median(o.repeat, [&] {
      op.zero_grad();
      fwd().backward(dy);
      be.synchronize();
    });
    const double gflops = flop / tt / 1e9;
    fmt::print("{:<32} {:>9.2f} {:>9.2f} {:>9.2f} {:>9.3f} {:>10.1f} {:>8}\n", cc.name, tf * 1e3, (tt - tf) * 1e3,
               tt * 1e3, flop / 1e9, gflops, if_counted(sgemm, 100 * gflops / sgemm, "{:.0f}%"));
    ops.push_back({{"name", cc.name}, {"transposed", cc.transposed}, {"cin", cc.cin},     {"cout", cc.cout},
                   {"size", cc.size}, {"forward_s", tf},              {"total_s", tt},   {"gflop", flop / 1e9},
                   {"gflops", gflops}});
  }
  return ops;
}

// Each DCGAN convolution kernel under two settings a and b of the CPU convolutions (set(0),
// set(1)), alternated in this process for `repeat` rounds: per op and kernel the fastest
// round of each (the kernels' own times from the profiler). Rows carry "<a>_s" and "<b>_s".
json alternate_convs(const Opts& o, Device dev, Generator& gen, const std::string& a, const std::string& b,
                     const std::function<void(int)>& set) {
  json out = json::array();
  fmt::print("{:<32} {:<24} {:>10} {:>12} {:>8}\n", "op, fastest of " + std::to_string(o.repeat) + " alternated rounds",
             "kernel", a + " ms", b + " ms", "ratio");
  const char* kernels[] = {"conv2d_forward", "conv2d_backward_data", "conv2d_backward_weight"};
  for (const ConvCase& cc : dcgan_convs()) {
    ConvOperands op = conv_operands(cc, o.batch, dev, gen);
    Tensor dy = randn(op.forward().shape(), gen).to(dev);
    std::map<std::string, double> best[2];
    for (int r = 0; r < o.repeat + 1; ++r)  // round 0 warms both up
      for (int side = 0; side < 2; ++side) {
        set(side);
        std::map<std::string, double> t;
        for (const auto& e : profile_runs(1, [&] {
               op.zero_grad();
               op.forward().backward(dy);
             }))
          t[e.kernel] += e.seconds;
        if (r == 0) continue;
        for (const char* k : kernels)
          if (t.count(k)) best[side][k] = best[side].count(k) ? std::min(best[side][k], t[k]) : t[k];
      }
    for (const char* k : kernels) {
      if (!best[0].count(k)) continue;
      const double ta = best[0][k], tb = best[1][k];
      fmt::print("{:<32} {:<24} {:>10.2f} {:>12.2f} {:>7.2f}x\n", cc.name, k, ta * 1e3, tb * 1e3, ta / tb);
      out.push_back({{"name", cc.name}, {"kernel", k}, {a + "_s", ta}, {b + "_s", tb}});
    }
  }
  return out;
}

// The DCGAN convolutions on the CPU's two paths, im2col and implicit GEMM, alternated. The
// results are the same bits on both paths (tested).
json bench_conv_paths(const Opts& o, Device dev, Generator& gen) {
  if (dev.type != DeviceType::CPU || !own_sgemm_enabled()) {
    fmt::print("conv paths: the implicit GEMM runs on the own SGEMM only (CPU with AVX2 + FMA); skipped\n");
    return json::array();
  }
  const bool was = cpu_implicit_conv_enabled();
  json out = alternate_convs(o, dev, gen, "im2col", "implicit", [](int side) { set_cpu_implicit_conv(side == 1); });
  set_cpu_implicit_conv(was);
  return out;
}

// The DCGAN convolutions on the own SGEMM's two kernels, AVX2 6x16 and AVX-512 12x32,
// alternated. The results are the same bits on both kernels (tested).
json bench_sgemm_kernels(const Opts& o, Device dev, Generator& gen) {
  if (dev.type != DeviceType::CPU || !own_sgemm_enabled() || !sgemm_kernel_supported(SgemmKernel::Avx512)) {
    fmt::print("SGEMM kernels: the AVX-512 kernel needs a CPU with AVX-512F and the own SGEMM; skipped\n");
    return json::array();
  }
  const SgemmKernel was = sgemm_kernel();
  json out = alternate_convs(o, dev, gen, "avx2", "avx512",
                             [](int side) { set_sgemm_kernel(side == 1 ? SgemmKernel::Avx512 : SgemmKernel::Avx2); });
  set_sgemm_kernel(was);
  return out;
}

double total_flops(const std::vector<profile::Entry>& rows) {
  double f = 0;
  for (auto& e : rows) f += e.flops;
  return f;
}

// Prints the profile of one unit of work that took `seconds` (the profiled runs' mean):
// a summary per kernel, then the `top` longest rows with their shapes.
json print_profile(const std::vector<profile::Entry>& rows, double seconds, int top) {
  std::map<std::string, profile::Entry> by_kernel;
  double kernels = 0;
  for (auto& e : rows) {
    auto& k = by_kernel[e.kernel];
    k.kernel = e.kernel;
    k.calls += e.calls;
    k.seconds += e.seconds;
    k.flops += e.flops;
    kernels += e.seconds;
  }
  std::vector<profile::Entry> ks;
  for (auto& [n, e] : by_kernel) ks.push_back(e);
  std::sort(ks.begin(), ks.end(), [](auto& a, auto& b) { return a.seconds > b.seconds; });
  fmt::print("    {:<26} {:>7} {:>9} {:>7} {:>9}\n", "kernel", "calls", "ms", "%", "GFLOP/s");
  for (auto& e : ks)
    fmt::print("    {:<26} {:>7} {:>9.2f} {:>6.1f}% {:>9}\n", e.kernel, e.calls, e.seconds * 1e3,
               100 * e.seconds / seconds, e.flops > 0 ? fmt::format("{:.1f}", e.flops / e.seconds / 1e9) : "");
  const double other = std::max(0.0, seconds - kernels);
  fmt::print("    {:<26} {:>7} {:>9.2f} {:>6.1f}%\n", "(outside kernels)", "", other * 1e3, 100 * other / seconds);
  fmt::print("\n    {:<9} {:<24} {:<44} {:>5} {:>8} {:>6} {:>8}\n", "phase", "kernel", "shapes", "calls", "ms", "%",
             "GFLOP/s");
  json j = json::array();
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& e = rows[i];
    if (int(i) < top)
      fmt::print("    {:<9} {:<24} {:<44} {:>5} {:>8.2f} {:>5.1f}% {:>8}\n", e.phase, e.kernel, e.detail, e.calls,
                 e.seconds * 1e3, 100 * e.seconds / seconds,
                 e.flops > 0 ? fmt::format("{:.1f}", e.flops / e.seconds / 1e9) : "");
    j.push_back({{"phase", e.phase},
                 {"kernel", e.kernel},
                 {"detail", e.detail},
                 {"calls", e.calls},
                 {"seconds", e.seconds},
                 {"flops", e.flops}});
  }
  fmt::print("\n");
  return j;
}

// A freshly initialised GAN of the benchmark's architecture on dev.
gan::Gan make_gan(const Opts& o, const std::string& norm, const std::string& image_size, int64_t channels,
                  Device dev) {
  ModelOptions mo;
  mo.norm = norm;
  mo.channels = channels;
  mo.image_size = image_size;
  mo.nf = o.nf;
  mo.code = o.code;
  Generator init(1);
  gan::Gan g = gan::build_gan(mo.config(), init);
  g.G->to(dev);
  g.D->to(dev);
  return g;
}

// A GAN with its RMSProp optimizers and one real batch: the training iteration to time.
struct TrainRig {
  gan::Gan g;
  Generator rng{2};
  nn::RMSProp og, od;
  Tensor real;
  Backend& be;
  TrainRig(const Opts& o, const std::string& norm, const std::string& size, int64_t batch, Device dev, Generator& gen)
      : g(make_gan(o, norm, size, o.channels, dev)),
        og(g.G->named_parameters(), 1e-4, nn::kPaperRMSPropAlpha, nn::kPaperRMSPropEps),
        od(g.D->named_parameters(), 1e-4, nn::kPaperRMSPropAlpha, nn::kPaperRMSPropEps),
        real(rand_uniform({batch, g.config.channels, g.config.height, g.config.width}, gen, 0, 1).to(dev)),
        be(backend_for(dev)) {}
  // One iteration, finished on the device.
  void step() {
    gan::gan_step(g, og, od, real, rng);
    be.synchronize();
  }
};

json bench_iterations(const Opts& o, Device dev, double sgemm, Generator& gen) {
  fmt::print("full training iteration (D on real + fake, then G), batch {}, {} x {}, nf {}, code {}\n", o.batch,
             o.channels, o.image_size, o.nf, o.code);
  fmt::print("  {:<8} {:>9} {:>7} {:>11} {:>9} {:>8} {:>13} {:>13}\n", "variant", "ms", "it/s", "GFLOP/iter",
             "GFLOP/s", "%SGEMM", "RSS@1 MiB", "RSS@end MiB");
  json iters = json::array();
  for (const std::string& norm : gan::split_list(o.norms)) {
    TrainRig rig(o, norm, o.image_size, o.batch, dev, gen);
    auto step = [&] { rig.step(); };
    step();
    const double rss1 = rss_now_mib();
    const double t = time_median(o.repeat, step);
    const double rss_end = rss_now_mib();
    // Host <-> device copies of one more iteration (each read from the device waits).
    const TransferStats tr0 = rig.be.transfers();
    step();
    const TransferStats tr1 = rig.be.transfers();
    double profiled = 0;  // mean wall time of the profiled runs: the profile's 100%
    const int profiled_runs = dev.type == DeviceType::CPU ? std::max(1, o.profile ? o.repeat : 1) : 0;
    auto rows = profile_runs(profiled_runs, step, &profiled);
    const double flop = total_flops(rows), gflops = flop / t / 1e9;
    fmt::print("  {:<8} {:>9.1f} {:>7.2f} {:>11} {:>9} {:>8} {:>13.0f} {:>13.0f}\n", norm, t * 1e3, 1 / t,
               if_counted(flop, flop / 1e9, "{:.2f}"), if_counted(flop, gflops, "{:.1f}"),
               if_counted(flop * sgemm, 100 * gflops / sgemm, "{:.0f}%"), rss1, rss_end);
    json row = {{"norm", norm},          {"seconds", t},           {"image_size", o.image_size},
                {"channels", rig.g.config.channels}, {"gflop", flop / 1e9},   {"gflops", gflops},
                {"rss_after_first_mib", rss1},  {"rss_after_last_mib", rss_end},
                {"copies_to_device", tr1.to_device - tr0.to_device}, {"copies_to_host", tr1.to_host - tr0.to_host}};
    if (dev.type != DeviceType::CPU)
      fmt::print("  {:<8} per iteration: {} copies to the device ({} B), {} to the host ({} B)\n", "", 
                 tr1.to_device - tr0.to_device, tr1.to_device_bytes - tr0.to_device_bytes, tr1.to_host - tr0.to_host,
                 tr1.to_host_bytes - tr0.to_host_bytes);
    if (o.profile && !rows.empty()) {
      fmt::print("\n  profile of the {} iteration ({} profiled runs, per iteration: {:.1f} ms):\n", norm,
                 profiled_runs, profiled * 1e3);
      row["profile"] = print_profile(rows, profiled, 40);
      row["profiled_seconds"] = profiled;  // the profile's 100%
    }
    iters.push_back(row);
  }
  return iters;
}

// The reconstruction step of the evaluation: G (eval mode, frozen) forward, dL/dz, RMSProp on z.
json bench_recon(const Opts& o, Backend& be, Device dev, double sgemm, Generator& gen) {
  fmt::print("reconstruction step (G forward + dL/dz + RMSProp on z), batch {}, {} x {}, nf {}, code {}\n", o.batch,
             o.channels, o.image_size, o.nf, o.code);
  fmt::print("  {:<8} {:>9} {:>11} {:>9} {:>8}\n", "variant", "ms/step", "GFLOP/step", "GFLOP/s", "%SGEMM");
  json out = json::array();
  for (const std::string& norm : gan::split_list(o.norms)) {
    gan::Gan g = make_gan(o, norm, o.image_size, o.channels, dev);
    Tensor images = rand_uniform({o.batch, g.config.channels, g.config.height, g.config.width}, gen, 0, 1).to(dev);
    auto run = [&](int64_t steps) {
      eval::ReconstructOptions ro;
      ro.steps = steps;
      ro.batch = o.batch;
      eval::reconstruct(*g.G, o.code, images, ro);
      be.synchronize();
    };
    const int64_t S = o.recon_steps;
    const double t0 = time_median(o.repeat, [&] { run(0); });
    const double t = std::max(0.0, time_median(o.repeat, [&] { run(S); }) - t0) / double(S);
    auto rows = profile_runs(1, [&] { run(S); });
    auto rows0 = profile_runs(1, [&] { run(0); });
    const double flop = (total_flops(rows) - total_flops(rows0)) / double(S), gflops = flop / t / 1e9;
    fmt::print("  {:<8} {:>9.2f} {:>11} {:>9} {:>8}\n", norm, t * 1e3, if_counted(flop, flop / 1e9, "{:.3f}"),
               if_counted(flop, gflops, "{:.1f}"), if_counted(flop * sgemm, 100 * gflops / sgemm, "{:.0f}%"));
    out.push_back({{"norm", norm}, {"seconds", t}, {"gflop", flop / 1e9}, {"gflops", gflops}});
  }
  return out;
}

// Iteration time against batch size, image size and thread count (first variant of
// --norms). The 1-thread and all-thread iterations alternate, so both medians see the
// same state of a shared machine.
json bench_scaling(const Opts& o, Backend& be, Device dev, Generator& gen) {
  const std::string norm = gan::split_list(o.norms).front();
  const int full = num_threads();
  json out = json::array();
  auto row = [&](int64_t batch, const std::string& size) {
    TrainRig rig(o, norm, size, batch, dev, gen);
    const auto [a, b] = time_1_vs_full(o.repeat, full, [&] { rig.step(); });
    fmt::print("  {:>6} {:>6} {:>12.1f} {:>12.1f} {:>10.2f}x {:>12.2f}\n", batch, size, a * 1e3, b * 1e3, a / b,
               1e3 * b / double(batch));
    out.push_back({{"batch", batch}, {"image_size", size}, {"threads", full}, {"seconds_1_thread", a}, {"seconds", b}});
  };
  {  // The ceiling: the same alternation on the SGEMM the convolutions are built on.
    const int64_t n = 2048;
    Tensor a = randn({n, n}, gen).to(dev), b = randn({n, n}, gen).to(dev), c = Tensor::empty({n, n}, DType::F32, dev);
    const auto [r1, rn] = time_1_vs_full(o.repeat, full, [&] {
      be.gemm(false, false, 1.0, a, b, 0.0, c);
      be.synchronize();
    });
    fmt::print("SGEMM 2048^3, 1 thread against {} (alternating): {:.1f} and {:.1f} GFLOP/s, {:.2f}x\n\n", full,
               2.0 * n * n * n / r1 / 1e9, 2.0 * n * n * n / rn / 1e9, r1 / rn);
    out.push_back({{"sgemm_seconds_1_thread", r1}, {"sgemm_seconds", rn}});
  }
  fmt::print("scaling of the {} iteration ({} x image, nf {}), 1 thread against {} (alternating):\n", norm, o.channels,
             o.nf, full);
  fmt::print("  {:>6} {:>6} {:>12} {:>12} {:>11} {:>12}\n", "batch", "image", "1 thread ms",
             fmt::format("{} threads ms", full), "speed-up", "ms/image");
  for (int64_t b : {8, 16, 32, 64, 128}) row(b, o.image_size);
  for (const char* s : {"32", "128"}) row(o.batch, s);
  return out;
}

// The processor's name (/proc/cpuinfo's "model name"), or "unknown".
std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos) {
      std::string v = line.substr(line.find(':') + 1);
      v.erase(0, v.find_first_not_of(' '));
      return v;
    }
  return "unknown";
}

// Data-parallel training iterations (first variant of --norms) over the ranks of this
// job (mpirun), --batch the global batch: per iteration the time, the part of it spent in
// the gradient all-reduces (waiting for the slower rank included), the rest (compute),
// and the bytes reduced; then the all-reduce of that many bytes alone, the ranks lined up
// by a barrier first. One rank (no mpirun): the compute time and the bytes N ranks would
// reduce.
json bench_dist(const Opts& o, Device dev, Generator& gen) {
  dist::Comm& world = dist::world();
  const int ranks = world.size();
  const bool root = world.is_root();
  const std::string norm = gan::split_list(o.norms).front();
  gan::DataParallel dp(world, o.batch);
  TrainRig rig(o, norm, o.image_size, o.batch / ranks, dev, gen);
  world.barrier();
  auto step = [&] {
    gan::gan_step(rig.g, rig.og, rig.od, rig.real, rig.rng, false, false, nullptr, &dp);
    rig.be.synchronize();
  };
  step();  // warm-up (and every gradient defined)
  // G's and D's parameter gradients, each reduced once per iteration (D's step, G's step).
  const int64_t bytes = gan::DataParallel::gradient_bytes(rig.og) + gan::DataParallel::gradient_bytes(rig.od);
  int64_t params = 0;
  for (const nn::Named& named : {rig.g.G->named_parameters(), rig.g.D->named_parameters()})
    for (const auto& [n, p] : named) params += p.numel();
  std::vector<double> total, reduce, compute;
  for (int r = 0; r < o.repeat; ++r) {
    world.barrier();
    const double r0 = dp.reduce_seconds();
    const double t = time_once(step);
    total.push_back(t);
    reduce.push_back(dp.reduce_seconds() - r0);
    compute.push_back(t - reduce.back());
  }
  // The same bytes all-reduced alone, after a barrier: the transfer without the wait.
  double alone = 0;
  if (ranks > 1) {
    Tensor buf = Tensor::zeros({bytes / 4}, DType::F32, dev);
    std::vector<double> ta;
    for (int r = 0; r <= o.repeat; ++r) {
      world.barrier();
      const double t = time_once([&] { world.all_reduce_sum({buf}); });
      if (r > 0) ta.push_back(t);
    }
    alone = median(ta);
  }
  const double t = median(total), tr = median(reduce), tc = median(compute);
  const std::string cpu = cpu_model();
  if (root) {
    fmt::print("data-parallel {} DCGAN iteration, {} x {}, nf {}, code {}: global batch {}, {} rank(s) x {} thread(s), "
               "{} images per rank; CPU: {}\n",
               norm, o.channels, o.image_size, o.nf, o.code, o.batch, ranks, num_threads(), o.batch / ranks, cpu);
    fmt::print("  G + D parameters: {} ({:.1f} MB of float32 gradients per iteration, which {} ranks all-reduce in 2 "
               "all-reduces: D's step, G's step)\n",
               params, bytes / 1e6, ranks > 1 ? fmt::format("the {}", ranks) : std::string("N > 1"));
    if (ranks == 1) {
      fmt::print("  1 rank (not started by mpirun): no all-reduce; `mpirun -np N wngan bench --what dist` splits the "
                 "batch over N ranks\n");
      fmt::print("  {:>10} {:>12}\n", "ms/iter", "compute ms");
      fmt::print("  {:>10.1f} {:>12.1f}\n", t * 1e3, tc * 1e3);
    } else {
      fmt::print("  gradients summed by {}\n", world.reduce_path(dev));
      fmt::print("  {:>10} {:>12} {:>14} {:>16} {:>22}\n", "ms/iter", "compute ms", "all-reduce ms", "all-reduce share",
                 "all-reduce alone ms");
      fmt::print("  {:>10.1f} {:>12.1f} {:>14.1f} {:>15.1f}% {:>22.1f}\n", t * 1e3, tc * 1e3, tr * 1e3,
                 100 * tr / t, alone * 1e3);
      fmt::print("  (medians of {} iterations on rank 0, each column's own; the all-reduce time includes waiting for "
                 "the slower rank; "
                 "alone: {:.1f} MB summed over the ranks after a barrier, {:.2f} GB/s of gradient)\n",
                 o.repeat, bytes / 1e6, alone > 0 ? bytes / alone / 1e9 : 0.0);
    }
  }
  return {{"norm", norm},
          {"cpu", cpu},
          {"ranks", ranks},
          {"threads_per_rank", num_threads()},
          {"global_batch", o.batch},
          {"batch_per_rank", o.batch / ranks},
          {"image_size", o.image_size},
          {"nf", o.nf},
          {"code", o.code},
          {"parameters", params},
          {"reduced_bytes_per_iteration", bytes},
          {"all_reduces_per_iteration", 2},
          {"iteration_seconds", t},
          {"compute_seconds", tc},
          {"all_reduce_seconds", ranks > 1 ? json(tr) : json(nullptr)},
          {"all_reduce_share", ranks > 1 ? json(tr / t) : json(nullptr)},
          {"reduce_path", world.reduce_path(dev)},
          {"all_reduce_alone_seconds", ranks > 1 ? json(alone) : json(nullptr)},
          {"repeat", o.repeat}};
}

}  // namespace

void add_bench(CLI::App& app) {
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("bench", "Time the heavy ops, training iterations and reconstruction steps");
  cmd->add_option("--threads", o->threads, "Worker threads (default: all cores)");
  cmd->add_option("--repeat", o->repeat, "Timed runs per measurement (median reported)")->check(CLI::PositiveNumber);
  cmd->add_option("--batch", o->batch, "Batch size")->check(CLI::PositiveNumber);
  cmd->add_option("--json", o->json, "Also write the results to this JSON file")->check(output_file());
  cmd->add_option("--what", o->what,
                  "ops (the DCGAN convolutions), iteration (full training iterations), recon (reconstruction "
                  "steps), scaling (batch, image size and threads), dist (data-parallel iterations split into compute "
                  "and gradient all-reduce; under mpirun -np N), all (ops, iteration and recon)")
      ->capture_default_str()
      ->check(CLI::IsMember({"ops", "iteration", "recon", "scaling", "dist", "all"}));
  cmd->add_option("--norms", o->norms, "Variants timed by iteration and recon (scaling: the first)")
      ->capture_default_str();
  cmd->add_option("--image-size", o->image_size, "Image size of the iteration benchmark")->capture_default_str();
  cmd->add_option("--channels", o->channels, "Image channels of the iteration benchmark")->capture_default_str();
  cmd->add_option("--nf", o->nf, "First-layer features of the iteration benchmark")->capture_default_str();
  cmd->add_option("--code", o->code, "Code length of the iteration benchmark")->capture_default_str();
  cmd->add_option("--recon-steps", o->recon_steps, "RMSProp steps per timed reconstruction")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--device", o->device, "cpu | cuda | cuda:N")->capture_default_str();
  cmd->add_flag("!--no-sgemm", o->sgemm, "Skip the SGEMM rate measurement (for an outside profiler)");
  cmd->add_flag("--profile", o->profile, "Print the per-kernel profile of each iteration (CPU)");
  cmd->add_flag("--conv-paths", o->conv_paths,
                "Also time each DCGAN convolution kernel on both CPU paths, im2col and implicit GEMM, alternated");
  cmd->add_flag("--sgemm-kernels", o->sgemm_kernels,
                "Also time each DCGAN convolution kernel on the own SGEMM's AVX2 and AVX-512 kernels, alternated "
                "(CPUs with AVX-512F)");
  cmd->callback([o]() {
    if (o->threads > 0) set_num_threads(o->threads);
    const Device dev = Device::parse(o->device);
    Backend& be = backend_for(dev);
    if (gan::split_list(o->norms).empty()) throw CLI::ValidationError("--norms", "no variant given");
    Generator gen(1);
    const std::string& w = o->what;
    dist::Comm& world = dist::world();
    if (world.size() > 1 && w != "dist")
      throw std::invalid_argument(fmt::format("under mpirun ({} ranks) bench times --what dist only", world.size()));
    if (w == "dist" && o->batch % world.size() != 0)
      throw std::invalid_argument(fmt::format("--batch {} is not divisible by the {} ranks (mpirun -np {})", o->batch,
                                              world.size(), world.size()));
    json out;
    out["threads"] = num_threads();
    out["device"] = dev.str();
    out["batch"] = o->batch;
    if (world.is_root())
      fmt::print("wngan bench on {}: {} threads, batch {}, median of {} runs\n\n", dev.str(), num_threads(), o->batch,
                 o->repeat);
    if (w == "dist") {
      out["dist"] = bench_dist(*o, dev, gen);
      if (world.is_root() && !o->json.empty()) nn::write_file_atomic(o->json, out.dump(2) + "\n");
      return;
    }
    // Not measured (--no-sgemm, for an outside profiler that should see the model's kernels
    // only): the %SGEMM columns print '-'.
    double sgemm = o->sgemm ? measure_sgemm(be, dev, o->repeat, gen) : 0.0;
    if (o->sgemm && dev.type == DeviceType::CPU && own_sgemm_enabled()) {
      // The products run on the own kernel: Eigen's rate beside it (and the AVX2 kernel's
      // beside the AVX-512 one), and the best of them is what the %SGEMM columns divide by.
      const bool was = set_own_sgemm(false);
      const double eigen = measure_sgemm(be, dev, o->repeat, gen);
      set_own_sgemm(was);
      std::string avx2;  // beside the AVX-512 kernel, the AVX2 one
      double best = std::max(sgemm, eigen);
      if (sgemm_kernel() != SgemmKernel::Avx2) {
        const SgemmKernel k = set_sgemm_kernel(SgemmKernel::Avx2);
        const double r = measure_sgemm(be, dev, o->repeat, gen);
        set_sgemm_kernel(k);
        avx2 = fmt::format(", own AVX2 6x16 {:.1f} GFLOP/s", r);
        out["avx2_sgemm_gflops"] = r;
        best = std::max(best, r);
      }
      fmt::print("SGEMM 2048x2048x2048: {:.1f} GFLOP/s ({}){}, Eigen {:.1f} GFLOP/s\n\n", sgemm, sgemm_kernel_name(),
                 avx2, eigen);
      out["own_sgemm_gflops"] = sgemm;
      out["eigen_sgemm_gflops"] = eigen;
      sgemm = best;
    } else if (o->sgemm) {
      fmt::print("SGEMM 2048x2048x2048: {:.1f} GFLOP/s{}\n\n", sgemm,
                 dev.type == DeviceType::CPU ? " (" + sgemm_kernel_name() + ")" : std::string());
    }
    // The memory figures below are the model's: the SGEMM's buffers are given back.
    be.synchronize();
    be.allocator().empty_cache();
    be.allocator().reset_peak();
    out["sgemm_gflops"] = sgemm;
    if (w == "ops" || w == "all") {
      out["ops"] = bench_ops(*o, be, dev, sgemm, gen);
      fmt::print("\n");
    }
    if (o->conv_paths) {
      out["conv_paths"] = bench_conv_paths(*o, dev, gen);
      fmt::print("\n");
    }
    if (o->sgemm_kernels) {
      out["sgemm_kernels"] = bench_sgemm_kernels(*o, dev, gen);
      fmt::print("\n");
    }
    if (w == "iteration" || w == "all") {
      out["iterations"] = bench_iterations(*o, dev, sgemm, gen);
      fmt::print("\n");
    }
    if (w == "recon" || w == "all") {
      out["recon"] = bench_recon(*o, be, dev, sgemm, gen);
      fmt::print("\n");
    }
    if (w == "scaling") {
      out["scaling"] = bench_scaling(*o, be, dev, gen);
      fmt::print("\n");
    }
    out["peak_rss_mib"] = peak_rss_mib();
    out["conv_library"] = be.conv_library();
    fmt::print("convolutions: {}\n", be.conv_library());
    auto st = be.allocator().stats();
    fmt::print("allocator: {} system allocations, {} cache hits, peak {:.1f} MiB in use, {:.1f} MiB held; peak RSS {:.0f} MiB\n",
               st.system_allocs, st.cache_hits, st.peak_in_use / 1048576.0,
               (st.bytes_in_use + st.bytes_cached) / 1048576.0, peak_rss_mib());
    out["alloc_peak_in_use_mib"] = st.peak_in_use / 1048576.0;
    out["alloc_held_mib"] = (st.bytes_in_use + st.bytes_cached) / 1048576.0;
    if (!o->json.empty()) nn::write_file_atomic(o->json, out.dump(2) + "\n");
  });
}

}  // namespace wn::app
