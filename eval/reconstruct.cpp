#include "eval/reconstruct.h"

#include "gan/signals.h"

#include <stdexcept>

#include <fmt/format.h>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "engine/ops/shape.h"
#include "nn/optim.h"

namespace wn::eval {

namespace {
// Restores G's mode and the parameters' requires_grad flags on scope exit.
struct FrozenG {
  nn::Module& g;
  bool was_training;
  std::vector<std::pair<Tensor, bool>> flags;
  explicit FrozenG(nn::Module& m) : g(m), was_training(m.is_training()) {
    for (auto& [n, p] : g.named_parameters()) {
      flags.emplace_back(p, p.requires_grad());
      p.set_requires_grad(false);
    }
    g.eval();
  }
  ~FrozenG() {
    for (auto& [p, f] : flags) Tensor(p).set_requires_grad(f);
    g.train(was_training);
  }
};
}  // namespace

Reconstruction reconstruct(nn::Module& G, int64_t code, const Tensor& images, const ReconstructOptions& opt,
                           const std::function<void(int64_t)>& progress) {
  if (images.rank() != 4) throw std::invalid_argument("reconstruct: images must be (N, C, H, W)");
  if (opt.steps < 0 || opt.batch < 1) throw std::invalid_argument("reconstruct: steps must be >= 0 and batch >= 1");
  FrozenG frozen(G);
  const int64_t n = images.dim(0), per = images.numel() / n;
  Reconstruction r;
  r.losses.resize(static_cast<size_t>(n));
  std::vector<double> zs, outs;
  const Tensor all = images.dtype() == DType::F32 ? images : images.to(DType::F32);
  for (int64_t b0 = 0; b0 < n; b0 += opt.batch) {
    const int64_t nb = std::min(opt.batch, n - b0);
    Tensor x = slice(all, b0, b0 + nb);
    Tensor z = Tensor::zeros({nb, code}, DType::F32, images.device());
    z.set_requires_grad(true);
    // RMSProp keeps its state per element, so each image's result is independent of its batch.
    nn::RMSProp rmsprop({{"z", z}}, opt.lr, opt.alpha, opt.eps);
    Tensor y;
    for (int64_t step = 0; step <= opt.steps; ++step) {
      gan::throw_if_stopped();  // a signal ends a long reconstruction between steps
      rmsprop.zero_grad();
      y = G(z);
      if (y.shape() != x.shape())
        throw std::invalid_argument(fmt::format("reconstruct: G makes images {}, the test images are {}",
                                                y.shape().str(), x.shape().str()));
      if (step == opt.steps) break;
      // Sum of the per-image losses: each z_i receives exactly its own image's gradient.
      Tensor loss = sum(mul(square(sub(y, x)), 1.0 / double(per)));
      loss.backward();
      rmsprop.step();
    }
    NoGradGuard ng;
    std::vector<double> e = sum(square(sub(y, x)), {1, 2, 3}).to_vector();
    for (int64_t i = 0; i < nb; ++i) r.losses[b0 + i] = e[i] / double(per);
    std::vector<double> zv = z.to_vector(), yv = y.to_vector();
    zs.insert(zs.end(), zv.begin(), zv.end());
    outs.insert(outs.end(), yv.begin(), yv.end());
    if (progress) progress(b0 + nb);
  }
  double s = 0;
  for (double l : r.losses) s += l;
  r.mean_loss = n ? s / double(n) : 0.0;
  r.z = Tensor::from_vector(zs, {n, code});
  r.images = Tensor::from_vector(outs, images.shape());
  return r;
}

}  // namespace wn::eval
