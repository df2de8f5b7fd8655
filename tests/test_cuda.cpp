// CUDA backend parity: every engine operator's forward and backward on CUDA equals the
// CPU backend on the same float32 inputs (relative 1e-4 of each tensor's scale), and a
// full WN and BN training iteration give the same losses on both devices. Skipped
// when no CUDA device is present.
#include "engine/backend/backend.h"
#include "engine/gradcheck_backends.h"
#include "gan/trainer.h"
#include "helpers.h"
#include "nn/optim.h"

#ifdef WN_HAVE_CUDA
#include <dlfcn.h>

#include "engine/backend/cuda/cudnn_conv.h"
#endif

using namespace wn;

namespace {
bool no_cuda() { return !device_available(DeviceType::CUDA); }
const Device kCuda{DeviceType::CUDA, 0};

// max |a - b| / max(max |a|, 1e-6): relative to the tensor's own scale.
double rel(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 1e-6, d = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    m = std::max(m, std::fabs(a[i]));
    d = std::max(d, std::fabs(a[i] - b[i]));
  }
  return d / m;
}

using Run = CaseRun;
// Forward, then backward with the harness's fixed random upstream gradient, in float32.
Run run_case(const GradcheckCase& c, Device dev) { return run_case_on(c, dev, DType::F32); }
}  // namespace

TEST_CASE("CUDA: every engine operator matches the CPU, forward and backward" * doctest::skip(no_cuda())) {
  Backend& cuda = backend_for(kCuda);
  // Convolutions on cuDNN (where it loads) and on the backend's own kernels.
  for (bool library : {true, false}) {
    const bool was = cuda.set_conv_library(library);
    int n = 0;
    for (auto& c : engine_gradcheck_cases()) {
      Run cpu = run_case(c, kCPU), gpu = run_case(c, kCuda);
      INFO(c.family << " " << c.name << " " << c.shape << (library ? " (conv library allowed)" : " (own kernels)"));
      CHECK(rel(cpu.y, gpu.y) < 1e-4);
      REQUIRE(cpu.grads.size() == gpu.grads.size());
      for (size_t k = 0; k < cpu.grads.size(); ++k) CHECK(rel(cpu.grads[k], gpu.grads[k]) < 1e-4);
      ++n;
    }
    CHECK(n > 70);
    cuda.set_conv_library(was);
  }
  MESSAGE("CUDA convolutions: " << cuda.conv_library());
}

TEST_CASE("CUDA: DCGAN-sized convolutions and reductions match the CPU" * doctest::skip(no_cuda())) {
  Backend& cuda = backend_for(kCuda);
  for (bool library : {true, false}) {
    const bool was = cuda.set_conv_library(library);
    INFO((library ? "conv library allowed" : "own kernels"));
    Generator g(3);
    Tensor x = randn({8, 64, 16, 16}, g), w = randn({128, 64, 4, 4}, g, 0.05), b = randn({128}, g);
    Tensor y = conv2d(x, w, b, 2, 1), yc = conv2d(x.to(kCuda), w.to(kCuda), b.to(kCuda), 2, 1);
    CHECK(rel(y.to_vector(), yc.to_vector()) < 1e-5);
    Tensor t = conv_transpose2d(y, w, Tensor(), 2, 1), tc = conv_transpose2d(yc, w.to(kCuda), Tensor(), 2, 1);
    CHECK(rel(t.to_vector(), tc.to_vector()) < 1e-5);
    Tensor big = randn({32, 3, 64, 64}, g);
    CHECK(sum(big).item() == doctest::Approx(sum(big.to(kCuda)).item()).epsilon(1e-5));
    // Deterministic: the same reduction twice gives the same bits.
    CHECK(sum(big.to(kCuda)).item() == sum(big.to(kCuda)).item());
    // A small weight gradient with a long reduction (the own kernels' split path).
    Tensor xi = randn({16, 3, 64, 64}, g), wi = randn({8, 3, 4, 4}, g, 0.1);
    Tensor xc = xi.to(kCuda), wc = wi.to(kCuda);
    wi.set_requires_grad(true);
    wc.set_requires_grad(true);
    Tensor u = randn({16, 8, 32, 32}, g);
    conv2d(xi, wi, Tensor(), 2, 1).backward(u);
    conv2d(xc, wc, Tensor(), 2, 1).backward(u.to(kCuda));
    CHECK(rel(wi.grad().to_vector(), wc.grad().to_vector()) < 1e-5);
    // Deterministic weight and data gradients: the same backward twice, the same bits.
    Tensor xd = xi.to(kCuda).clone(), wd = wi.detach().to(kCuda).clone();
    xd.set_requires_grad(true);
    wd.set_requires_grad(true);
    conv2d(xd, wd, Tensor(), 2, 1).backward(u.to(kCuda));
    const std::vector<double> gw1 = wd.grad().to_vector(), gx1 = xd.grad().to_vector();
    xd.zero_grad();
    wd.zero_grad();
    conv2d(xd, wd, Tensor(), 2, 1).backward(u.to(kCuda));
    CHECK(wd.grad().to_vector() == gw1);
    CHECK(xd.grad().to_vector() == gx1);
    cuda.set_conv_library(was);
  }
}

TEST_CASE("CUDA: fused TPReLU and weight norm at DCGAN sizes match the CPU and repeat bit for bit" *
          doctest::skip(no_cuda())) {
  Generator g(11);
  auto input = [](Tensor t) {
    t = t.to(DType::F64);
    t.set_requires_grad(true);
    return t;
  };
  std::vector<GradcheckCase> cases;
  // A generator layer's TPReLU: several batch slices per channel, whole 512-thread blocks.
  cases.push_back({"activation", "tprelu", "(32, 128, 16, 16)", {}, [](const std::vector<Tensor>& in) {
                     return tprelu(in[0], in[1], in[2]);
                   },
                   {input(randn({32, 128, 16, 16}, g)), input(rand_uniform({128}, g, 0, 0.5)),
                    input(rand_uniform({128}, g, -0.1, 0.1))}});
  // The first layer's PReLU on few channels: one slice per image.
  cases.push_back({"activation", "prelu", "(16, 3, 64, 64)", {}, [](const std::vector<Tensor>& in) {
                     return prelu(in[0], in[1]);
                   },
                   {input(randn({16, 3, 64, 64}, g)), input(rand_uniform({3}, g, 0, 0.5))}});
  // Weight norm of a 512 -> 256 layer's weight, units on dim 0 (conv) and dim 1 (transposed).
  cases.push_back({"weight_norm", "weight_norm", "(512, 256, 4, 4) unit 0, scale", {}, [](const std::vector<Tensor>& in) {
                     return weight_norm(in[0], in[1], 0, 1.0, 1e-6);
                   },
                   {input(randn({512, 256, 4, 4}, g, 0.05)), input(rand_uniform({512}, g, 0.5, 2))}});
  cases.push_back({"weight_norm", "weight_norm", "(512, 256, 4, 4) unit 1, strict", {}, [](const std::vector<Tensor>& in) {
                     return weight_norm(in[0], Tensor(), 1, 0.25, 1e-6);
                   },
                   {input(randn({512, 256, 4, 4}, g, 0.05))}});
  for (const GradcheckCase& c : cases) {
    INFO(c.name << " " << c.shape);
    Run cpu = run_case(c, kCPU), gpu = run_case(c, kCuda), again = run_case(c, kCuda);
    CHECK(rel(cpu.y, gpu.y) < 1e-5);
    REQUIRE(cpu.grads.size() == gpu.grads.size());
    for (size_t k = 0; k < cpu.grads.size(); ++k) {
      CHECK(rel(cpu.grads[k], gpu.grads[k]) < 1e-4);
      CHECK(gpu.grads[k] == again.grads[k]);
    }
  }
}

#ifdef WN_HAVE_CUDA
// Runs without a GPU: the run-time loader finds every cuDNN function it names.
TEST_CASE("cuDNN loader: every function it uses resolves where libcudnn.so.9 loads") {
  const std::string s = cudnn_conv_status();
  INFO(s);
#if __has_include(<cudnn.h>)
  void* lib = dlopen("libcudnn.so.9", RTLD_NOW | RTLD_LOCAL);
  if (lib) {
    CHECK(s.rfind("cuDNN 9.", 0) == 0);
    dlclose(lib);
  } else {  // not under that name: the loader may still find libcudnn.so, or report why not
    CHECK((s.rfind("not in use: libcudnn.so.9 not loadable", 0) == 0 || s.rfind("cuDNN 9.", 0) == 0));
  }
#else
  CHECK(s == "not in use: built without cudnn.h");
#endif
}

TEST_CASE("WNGAN_CUDNN: unset or 0 keeps the own kernels, a mode asks for cuDNN, an unknown value is an error naming the variable") {
  const char* old = std::getenv("WNGAN_CUDNN");
  const std::string saved = old ? old : "";
  setenv("WNGAN_CUDNN", "0", 1);
  CHECK_FALSE(cudnn_conv_wanted());
  for (const char* on : {"1", "heuristic", "benchmark", "nondeterministic"}) {
    setenv("WNGAN_CUDNN", on, 1);
    CHECK(cudnn_conv_wanted());
  }
#if __has_include(<cudnn.h>)
  setenv("WNGAN_CUDNN", "fastest", 1);
  CHECK_THROWS_WITH_AS(cudnn_conv_wanted(), doctest::Contains("WNGAN_CUDNN='fastest'"), std::runtime_error);
#endif
  unsetenv("WNGAN_CUDNN");
  CHECK_FALSE(cudnn_conv_wanted());
  if (old) setenv("WNGAN_CUDNN", saved.c_str(), 1);
}
#endif

TEST_CASE("CUDA: one WN and one BN training iteration give the same losses as the CPU" * doctest::skip(no_cuda())) {
  for (gan::Norm norm : {gan::Norm::Weight, gan::Norm::Batch}) {
    Generator i1(5), i2(5);
    gan::Gan a = gan::dcgan(norm, 3, 64, 64, 16, 32, 0, i1), b = gan::dcgan(norm, 3, 64, 64, 16, 32, 0, i2);
    b.G->to(kCuda);
    b.D->to(kCuda);
    nn::RMSProp ag(a.G->named_parameters(), 1e-4, 0.9, 1e-6), ad(a.D->named_parameters(), 1e-4, 0.9, 1e-6);
    nn::RMSProp bg(b.G->named_parameters(), 1e-4, 0.9, 1e-6), bd(b.D->named_parameters(), 1e-4, 0.9, 1e-6);
    Generator d(6);
    Tensor real = rand_uniform({16, 3, 64, 64}, d, 0, 1);
    Generator r1(7), r2(7);
    for (int it = 0; it < 2; ++it) {
      gan::StepLosses la = gan::gan_step(a, ag, ad, real, r1), lb = gan::gan_step(b, bg, bd, real.to(kCuda), r2);
      INFO(gan::norm_name(norm) << " iteration " << it);
      CHECK(lb.d_real == doctest::Approx(la.d_real).epsilon(1e-4));
      CHECK(lb.d_fake == doctest::Approx(la.d_fake).epsilon(1e-4));
      CHECK(lb.g == doctest::Approx(la.g).epsilon(1e-4));
    }
  }
}

TEST_CASE("CUDA: small uploads through the pinned staging slots arrive intact while kernels are queued" *
          doctest::skip(no_cuda())) {
  // More uploads than staging slots, each read by a kernel queued after it, all of them
  // queued behind milliseconds of matrix products, so that every slot comes round again
  // while its earlier copies still wait: a slot reused before its copy ran changes the
  // sum. The host tensors are freed at once (the CPU allocator hands the same buffer to
  // the next round). One upload is larger than a slot (the synchronous path).
  Generator g(3);
  const int rounds = 40;
  std::vector<double> host(1000), expect(1000, 0.0);
  Tensor acc = Tensor::zeros({1000}, DType::F32, kCuda);
  Tensor big_a = randn({3072, 3072}, g).to(kCuda), big_b = randn({3072, 3072}, g).to(kCuda);
  backend_for(kCuda).synchronize();
  const TransferStats before = backend_for(kCuda).transfers();
  Tensor busy = matmul(matmul(matmul(big_a, big_b), big_b), big_b);  // ~170 GFLOP queued
  for (int r = 0; r < rounds; ++r) {
    for (size_t i = 0; i < host.size(); ++i) host[i] = double(float(0.25 * r + 0.001 * double(i) * (r % 3 ? 1 : -1)));
    for (size_t i = 0; i < host.size(); ++i) expect[i] += host[i];
    acc = acc + Tensor::from_vector(host, {1000}).to(kCuda);
  }
  const std::vector<double> got = acc.to(kCPU).to_vector();
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(expect[i]).epsilon(1e-5));
  Tensor big = randn({600, 1000}, g);  // 2.4 MB
  CHECK(big.to(kCuda).to(kCPU).to_vector() == big.to_vector());
  const TransferStats after = backend_for(kCuda).transfers();
  CHECK(after.to_device - before.to_device == rounds + 1);
  CHECK(after.to_host - before.to_host == 2);
  CHECK(std::isfinite(sum(busy).item()));
}
