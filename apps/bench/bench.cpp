// `wngan bench`: times the engine's heavy ops at the paper's DCGAN shapes (64x64x3
// images, 64 first-layer features doubling, batch 32) and the machine's SGEMM rate
// measured in the same run. apps/bench/compare_torch.py runs the same ops in PyTorch
// side by side and prints the ratios.
#include <algorithm>
#include <chrono>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <sys/resource.h>

#include "apps/commands.h"
#include "engine/backend/backend.h"
#include "engine/engine.h"
#include "gan/trainer.h"
#include "nn/optim.h"

namespace wn::app {

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Median seconds of `repeat` runs of f, after one warm-up run.
template <class F>
double time_median(int repeat, F&& f) {
  f();
  std::vector<double> t;
  for (int i = 0; i < repeat; ++i) {
    double s = now();
    f();
    t.push_back(now() - s);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Peak resident memory of this process so far, in MiB.
double peak_rss_mib() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}

struct ConvCase {
  std::string name;
  bool transposed;
  int64_t cin, cout, size;  // input channels, output channels, input spatial size
};

// The four discriminator convs and the four generator transposed convs.
std::vector<ConvCase> dcgan_convs(int64_t batch) {
  (void)batch;
  return {{"D.level0 conv 3->64 64->32", false, 3, 64, 64},
          {"D.level1 conv 64->128 32->16", false, 64, 128, 32},
          {"D.level2 conv 128->256 16->8", false, 128, 256, 16},
          {"D.level3 conv 256->512 8->4", false, 256, 512, 8},
          {"G.level3 convT 512->256 4->8", true, 512, 256, 4},
          {"G.level2 convT 256->128 8->16", true, 256, 128, 8},
          {"G.level1 convT 128->64 16->32", true, 128, 64, 16},
          {"G.level0 convT 64->3 32->64", true, 64, 3, 32}};
}

}  // namespace

void add_bench(CLI::App& app) {
  struct Opts {
    int threads = 0, repeat = 5, batch = 32;
    std::string json, what = "all", norms = "none,batch,weight", image_size = "64", device = "cpu";
    int64_t channels = 3, nf = 64, code = 128;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("bench", "Time the heavy ops at the paper's DCGAN shapes (GFLOP/s)");
  cmd->add_option("--threads", o->threads, "Worker threads (default: all cores)");
  cmd->add_option("--repeat", o->repeat, "Timed runs per measurement (median reported)")->check(CLI::PositiveNumber);
  cmd->add_option("--batch", o->batch, "Batch size")->check(CLI::PositiveNumber);
  cmd->add_option("--json", o->json, "Also write the results to this JSON file");
  cmd->add_option("--what", o->what, "ops (the DCGAN convolutions), iteration (full training iterations) or all")
      ->capture_default_str()
      ->check(CLI::IsMember({"ops", "iteration", "all"}));
  cmd->add_option("--norms", o->norms, "Variants timed by --what iteration")->capture_default_str();
  cmd->add_option("--image-size", o->image_size, "Image size of the iteration benchmark")->capture_default_str();
  cmd->add_option("--channels", o->channels, "Image channels of the iteration benchmark")->capture_default_str();
  cmd->add_option("--nf", o->nf, "First-layer features of the iteration benchmark")->capture_default_str();
  cmd->add_option("--code", o->code, "Code length of the iteration benchmark")->capture_default_str();
  cmd->add_option("--device", o->device, "cpu | cuda | cuda:N")->capture_default_str();
  cmd->callback([o]() {
    if (o->threads > 0) set_num_threads(o->threads);
    const Device dev = Device::parse(o->device);
    Backend& be = backend_for(dev);
    Generator gen(1);
    nlohmann::json out;
    out["threads"] = num_threads();
    out["device"] = dev.str();
    out["batch"] = o->batch;
    fmt::print("wngan bench on {}: {} threads, batch {}, median of {} runs\n\n", dev.str(), num_threads(), o->batch,
               o->repeat);

    const bool ops_on = o->what != "iteration", iter_on = o->what != "ops";
    // SGEMM rate of the machine through the same GEMM path the convolutions use.
    const int64_t n = 2048;
    Tensor a = randn({n, n}, gen).to(dev), b = randn({n, n}, gen).to(dev), c = Tensor::empty({n, n}, DType::F32, dev);
    double t = time_median(o->repeat, [&] {
      be.gemm(false, false, 1.0, a, b, 0.0, c);
      be.synchronize();
    });
    const double sgemm = 2.0 * n * n * n / t / 1e9;
    fmt::print("SGEMM {}x{}x{}: {:.1f} GFLOP/s\n\n", n, n, n, sgemm);
    out["sgemm_gflops"] = sgemm;

    nlohmann::json ops = nlohmann::json::array();
    if (ops_on)
      fmt::print("{:<32} {:>9} {:>9} {:>9} {:>9} {:>10} {:>8}\n", "op (fwd + bwd data + bwd weight)", "fwd ms",
                 "bwd ms", "total ms", "GFLOP", "GFLOP/s", "%SGEMM");
    for (const ConvCase& cc : ops_on ? dcgan_convs(o->batch) : std::vector<ConvCase>{}) {
      const int64_t B = o->batch;
      Tensor x = randn({B, cc.cin, cc.size, cc.size}, gen).to(dev);
      Tensor w = (cc.transposed ? randn({cc.cin, cc.cout, 4, 4}, gen, 0.02) : randn({cc.cout, cc.cin, 4, 4}, gen, 0.02))
                     .to(dev);
      Tensor bias = Tensor::zeros({cc.cout}, DType::F32, dev);
      x.set_requires_grad(true);
      w.set_requires_grad(true);
      bias.set_requires_grad(true);
      auto fwd = [&] { return cc.transposed ? conv_transpose2d(x, w, bias, 2, 1) : conv2d(x, w, bias, 2, 1); };
      Tensor y = fwd();
      Tensor dy = randn(y.shape(), gen).to(dev);
      const int64_t osz = y.dim(2);
      // Multiply-adds of one direction: output pixels x Cout x Cin x 16 (conv), or
      // input pixels x Cin x Cout x 16 (transposed).
      const double macs = cc.transposed ? double(B) * cc.size * cc.size * cc.cin * cc.cout * 16
                                        : double(B) * osz * osz * cc.cout * cc.cin * 16;
      const double flop = 3 * 2 * macs;
      double tf = time_median(o->repeat, [&] {
        NoGradGuard ng;
        fwd();
        be.synchronize();
      });
      double tt = time_median(o->repeat, [&] {
        x.zero_grad();
        w.zero_grad();
        bias.zero_grad();
        fwd().backward(dy);
        be.synchronize();
      });
      const double gflops = flop / tt / 1e9;
      fmt::print("{:<32} {:>9.2f} {:>9.2f} {:>9.2f} {:>9.3f} {:>10.1f} {:>7.0f}%\n", cc.name, tf * 1e3,
                 (tt - tf) * 1e3, tt * 1e3, flop / 1e9, gflops, 100 * gflops / sgemm);
      ops.push_back({{"name", cc.name},
                     {"transposed", cc.transposed},
                     {"cin", cc.cin},
                     {"cout", cc.cout},
                     {"size", cc.size},
                     {"forward_s", tf},
                     {"total_s", tt},
                     {"gflop", flop / 1e9},
                     {"gflops", gflops}});
    }
    out["ops"] = ops;
    nlohmann::json iters = nlohmann::json::array();
    if (iter_on) {
      fmt::print("\nfull training iteration (D on real + fake, then G), batch {}, {} x {}, nf {}, code {}\n", o->batch,
                 o->channels, o->image_size, o->nf, o->code);
      std::stringstream ss(o->norms);
      std::string norm;
      while (std::getline(ss, norm, ',')) {
        ModelOptions mo;
        mo.norm = norm;
        mo.channels = o->channels;
        mo.image_size = o->image_size;
        mo.nf = o->nf;
        mo.code = o->code;
        gan::ModelConfig mc = mo.config();
        Generator init(1), rng(2);
        gan::Gan g = gan::build_gan(mc, init);
        g.G->to(dev);
        g.D->to(dev);
        nn::RMSProp og(g.G->named_parameters(), 1e-4, 0.9, 1e-6), od(g.D->named_parameters(), 1e-4, 0.9, 1e-6);
        Tensor real = rand_uniform({o->batch, mc.channels, mc.height, mc.width}, gen, 0, 1).to(dev);
        const double t = time_median(o->repeat, [&] { gan::gan_step(g, og, od, real, rng); });
        fmt::print("  {:<14} {:>9.1f} ms/iteration  {:>7.2f} it/s\n", norm, t * 1e3, 1 / t);
        iters.push_back({{"norm", norm}, {"seconds", t}, {"image_size", o->image_size}, {"channels", mc.channels}});
      }
    }
    out["iterations"] = iters;
    out["peak_rss_mib"] = peak_rss_mib();
    auto st = be.allocator().stats();
    fmt::print("\nallocator: {} system allocations, {} cache hits, peak {:.1f} MiB in use; peak RSS {:.0f} MiB\n",
               st.system_allocs, st.cache_hits, st.peak_in_use / 1048576.0, peak_rss_mib());
    if (!o->json.empty()) {
      std::ofstream f(o->json);
      f << out.dump(2) << "\n";
      if (!f) throw std::runtime_error("cannot write " + o->json);
    }
  });
}

}  // namespace wn::app
