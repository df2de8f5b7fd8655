// CUDA backend parity: every engine operator's forward and backward on CUDA equals the
// CPU backend on the same float32 inputs (relative 1e-4 of each tensor's scale), and a
// full WN and BN training iteration give the same losses on both devices. Skipped
// when no CUDA device is present.
#include "engine/backend/backend.h"
#include "gan/trainer.h"
#include "helpers.h"
#include "nn/optim.h"

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

struct Run {
  std::vector<double> y;
  std::vector<std::vector<double>> grads;
};

// Forward, then backward with a fixed random upstream gradient, on one device.
Run run_case(const GradcheckCase& c, Device dev) {
  std::vector<Tensor> in;
  for (const Tensor& t : c.inputs) {
    Tensor x = t.to(DType::F32).to(dev).clone();
    if (t.requires_grad()) x.set_requires_grad(true);
    in.push_back(x);
  }
  Tensor y = c.fn(in);
  Generator g(99);
  Tensor u = randn(y.shape(), g).to(dev);
  y.backward(u);
  Run r{y.to_vector(), {}};
  for (const Tensor& x : in)
    if (x.requires_grad()) r.grads.push_back(x.grad().to_vector());
  return r;
}
}  // namespace

TEST_CASE("CUDA: every engine operator matches the CPU, forward and backward" * doctest::skip(no_cuda())) {
  int n = 0;
  for (auto& c : engine_gradcheck_cases()) {
    Run cpu = run_case(c, kCPU), gpu = run_case(c, kCuda);
    INFO(c.family << " " << c.name << " " << c.shape);
    CHECK(rel(cpu.y, gpu.y) < 1e-4);
    REQUIRE(cpu.grads.size() == gpu.grads.size());
    for (size_t k = 0; k < cpu.grads.size(); ++k) CHECK(rel(cpu.grads[k], gpu.grads[k]) < 1e-4);
    ++n;
  }
  CHECK(n > 70);
}

TEST_CASE("CUDA: DCGAN-sized convolutions and reductions match the CPU" * doctest::skip(no_cuda())) {
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
  // A small weight gradient with a long reduction takes the split (batched) path.
  Tensor xi = randn({16, 3, 64, 64}, g), wi = randn({8, 3, 4, 4}, g, 0.1);
  Tensor xc = xi.to(kCuda), wc = wi.to(kCuda);
  wi.set_requires_grad(true);
  wc.set_requires_grad(true);
  Tensor u = randn({16, 8, 32, 32}, g);
  conv2d(xi, wi, Tensor(), 2, 1).backward(u);
  conv2d(xc, wc, Tensor(), 2, 1).backward(u.to(kCuda));
  CHECK(rel(wi.grad().to_vector(), wc.grad().to_vector()) < 1e-5);
  Tensor m = matmul(randn({300, 200}, g), randn({200, 100}, g));
  (void)m;
}

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
