// The normalization policy shared by the DCGAN and ResNet builders.
#include "gan/norm_policy.h"

#include <stdexcept>

#include <fmt/format.h>

#include "engine/ops/elementwise.h"
#include "engine/ops/shape.h"

namespace wn::gan {

using namespace wn::nn;

NormPolicy NormPolicy::dcgan(Norm norm) {
  NormPolicy p;
  p.norm = norm;
  return p;
}

NormPolicy NormPolicy::resnet(Norm norm) {
  NormPolicy p;
  p.norm = norm;
  p.wn_eps = WNEps::Outside;
  p.clamp_slope = true;
  p.initial_affine = true;
  p.initial_plain_prelu = true;
  p.signed_input = true;
  return p;
}

ModulePtr NormPolicy::conv(bool transposed, bool affine, int64_t in, int64_t out, Hw k, Hw s, Hw p,
                           Generator& gen) const {
  if (wn()) {
    const WNMode mode = (norm == Norm::WeightAffine || affine) ? WNMode::Affine : WNMode::Strict;
    if (transposed) return std::make_shared<WNConvTranspose2d>(in, out, k, s, p, mode, gen, wn_eps);
    return std::make_shared<WNConv2d>(in, out, k, s, p, mode, gen, wn_eps);
  }
  if (transposed) return std::make_shared<ConvTranspose2d>(in, out, k, s, p, gen);
  return std::make_shared<Conv2d>(in, out, k, s, p, gen);
}

ModulePtr NormPolicy::act(int64_t c) const {
  // PReLU slopes are clipped after each update (the paper); a clamping TPReLU clamps in
  // its forward pass instead.
  if (norm == Norm::Weight) return std::make_shared<TPReLU>(c, 0.25, clamp_slope);
  return std::make_shared<PReLU>(c);
}

void NormPolicy::add_norm(Sequential& seq, const std::string& name, int64_t c, Generator& gen) const {
  if (bn()) seq.add(name, std::make_shared<BatchNorm>(c, gen));
}

std::shared_ptr<Sequential> NormPolicy::initial_block(int64_t code, int64_t c, int64_t h, int64_t w,
                                                      Generator& gen) const {
  auto initial = std::make_shared<Sequential>();
  const int64_t units = c * h * w;
  if (wn()) {
    // docs/paper.md section 6: the WN models' first G layer starts scaled by 0.01 (in affine mode its bias too).
    const WNMode mode = (initial_affine || norm == Norm::WeightAffine) ? WNMode::Affine : WNMode::Strict;
    initial->add("linear", std::make_shared<WNLinear>(code, units, mode, gen, wn_eps, 0.01));
  } else {
    initial->add("linear", std::make_shared<Linear>(code, units, gen));
  }
  initial->add("reshape", std::make_shared<Unflatten>(c, h, w));
  add_norm(*initial, "bn", c, gen);
  initial->add("act", initial_plain_prelu ? std::make_shared<PReLU>(c) : act(c));
  return initial;
}

Tensor Discriminator::forward(const Tensor& x) {
  Tensor y = Sequential::forward(signed_ ? wn::add(wn::mul(x, 2.0), -1.0) : x);
  return reshape(y, {y.dim(0)});
}

DownGeometry down_geometry(int64_t H, int64_t W, int64_t n, int64_t min_inner, const char* family) {
  DownGeometry g;
  int64_t h = H, w = W;
  for (int64_t i = 0; i < n; ++i) {
    const bool last = i == n - 1;
    Hw p((!last && h % 4 == 2) ? 1 : 0, (!last && w % 4 == 2) ? 1 : 0);
    g.extra.push_back(p);
    h = (h + 2 * p.h) / 2;
    w = (w + 2 * p.w) / 2;
    if (h < 1 || w < 1 || (!last && (h < min_inner || w < min_inner)))
      throw std::invalid_argument(fmt::format("image size {}x{} is too small for {} {} levels", H, W, n, family));
  }
  g.fh = h;
  g.fw = w;
  return g;
}

}  // namespace wn::gan
