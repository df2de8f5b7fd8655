// The residual GAN (SPEC section 3): 5 levels of (stride-2 block, stride-1 block) plus
// the final conv in D (21 layers), mirrored in G.
#include <stdexcept>

#include <fmt/format.h>

#include "engine/ops/elementwise.h"
#include "engine/ops/shape.h"
#include "gan/models.h"
#include "nn/layers.h"
#include "nn/weight_norm.h"

namespace wn::gan {

using namespace wn::nn;

namespace {

bool is_wn(Norm n) { return n == Norm::Weight || n == Norm::WeightAffine; }

ModulePtr conv(Norm norm, bool transposed, int64_t in, int64_t out, Hw k, Hw s, Hw p, Generator& gen) {
  if (is_wn(norm)) {
    WNMode mode = norm == Norm::WeightAffine ? WNMode::Affine : WNMode::Strict;
    if (transposed) return std::make_shared<WNConvTranspose2d>(in, out, k, s, p, mode, gen);
    return std::make_shared<WNConv2d>(in, out, k, s, p, mode, gen);
  }
  if (transposed) return std::make_shared<ConvTranspose2d>(in, out, k, s, p, gen);
  return std::make_shared<Conv2d>(in, out, k, s, p, gen);
}

ModulePtr act(Norm norm, int64_t c) {
  if (norm == Norm::Weight) return std::make_shared<TPReLU>(c);
  return std::make_shared<PReLU>(c);
}

// Residual block. Down (D): residue conv(k = stride + 2, stride, pad 1 + extra) -> act
// -> conv 3x3; shortcut pad -> 2x2 average pool (stride 2) -> 1x1 conv (channel change).
// Up (G): residue transposed conv(k = stride + 2, stride, pad 1 + extra) -> act ->
// conv 3x3; shortcut 1x1 conv -> nearest 2x upsampling -> crop. Then sum (weight-
// normalized in WN models) and a post activation (an Affine layer in G's last block).
class ResBlock : public Module {
 public:
  ResBlock(Norm norm, bool up, int64_t in, int64_t out, int64_t stride, Hw extra, bool final_affine, Generator& gen)
      : wn_(is_wn(norm)) {
    const bool bn = norm == Norm::Batch;
    residue_ = register_module("residue", std::make_shared<Sequential>());
    const Hw k(stride + 2), pad(1 + extra.h, 1 + extra.w);
    residue_->add("conv1", conv(norm, up, in, out, k, Hw(stride), stride == 2 ? pad : Hw(1), gen));
    if (bn) residue_->add("bn1", std::make_shared<BatchNorm>(out));
    residue_->add("act", act(norm, out));
    residue_->add("conv2", conv(norm, false, out, out, Hw(3), Hw(1), Hw(1), gen));
    if (bn) residue_->add("bn2", std::make_shared<BatchNorm>(out));
    shortcut_ = register_module("shortcut", std::make_shared<Sequential>());
    const bool pads = extra.h || extra.w;
    if (!up) {
      if (stride == 2 && pads) shortcut_->add("pad", std::make_shared<Pad2d>(extra.h, extra.h, extra.w, extra.w));
      if (stride == 2) shortcut_->add("pool", std::make_shared<AvgPool2x2>());
      if (in != out) shortcut_->add("conv", conv(norm, false, in, out, Hw(1), Hw(1), Hw(0), gen));
    } else {
      if (in != out) shortcut_->add("conv", conv(norm, false, in, out, Hw(1), Hw(1), Hw(0), gen));
      if (stride == 2) shortcut_->add("upsample", std::make_shared<Upsample2x>());
      if (stride == 2 && pads)
        shortcut_->add("crop", std::make_shared<Pad2d>(extra.h, extra.h, extra.w, extra.w, /*crop=*/true));
    }
    if (wn_) add_ = register_module("add", std::make_shared<WNAdd>(out, std::vector<double>{0.0, 1.0}));
    if (final_affine)
      post_ = register_module("post", std::make_shared<Affine>(out));
    else
      post_ = register_module("post", act(norm, out));
  }
  Tensor forward(const Tensor& x) override {
    Tensor r = (*residue_)(x);
    Tensor s = (*shortcut_)(x);
    Tensor y = wn_ ? add_->forward_many({r, s}) : wn::add(r, s);
    return (*post_)(y);
  }
  std::string type_name() const override { return "ResBlock"; }

 private:
  bool wn_;
  std::shared_ptr<Sequential> residue_, shortcut_;
  std::shared_ptr<WNAdd> add_;
  ModulePtr post_;
};

class ResD : public Sequential {
 public:
  Tensor forward(const Tensor& x) override {
    Tensor y = Sequential::forward(wn::add(wn::mul(x, 2.0), -1.0));
    return reshape(y, {y.dim(0)});
  }
  std::string type_name() const override { return "ResNet-D"; }
};

class ResG : public Sequential {
 public:
  std::string type_name() const override { return "ResNet-G"; }
};

}  // namespace

Gan resnet(Norm norm, int64_t C, int64_t H, int64_t W, const std::vector<int64_t>& feats_in, int64_t blocks,
           int64_t code, Generator& gen) {
  if (norm == Norm::WeightAffine) throw std::invalid_argument("the ResNet comes in none, batch and weight variants");
  std::vector<int64_t> f = feats_in.empty() ? std::vector<int64_t>{64, 128, 256, 384, 512} : feats_in;
  if (H < 2 || W < 2 || H % 2 || W % 2)
    throw std::invalid_argument(fmt::format("image size {}x{}: height and width must be even", H, W));
  if (blocks < 1) throw std::invalid_argument("the ResNet needs at least one block per level");
  const int64_t n = static_cast<int64_t>(f.size());
  // Same geometry as the DCGAN: extra padding p_i = 1 where the size is 2 mod 4.
  std::vector<Hw> extra;
  int64_t h = H, w = W;
  for (int64_t i = 0; i < n; ++i) {
    const bool last = i == n - 1;
    Hw p((!last && h % 4 == 2) ? 1 : 0, (!last && w % 4 == 2) ? 1 : 0);
    extra.push_back(p);
    h = (h + 2 * p.h) / 2;
    w = (w + 2 * p.w) / 2;
    if (h < 1 || w < 1 || (!last && (h < 2 || w < 2)))
      throw std::invalid_argument(fmt::format("image size {}x{} is too small for {} ResNet levels", H, W, n));
  }
  auto D = std::make_shared<ResD>();
  for (int64_t i = 0; i < n; ++i) {
    auto level = std::make_shared<Sequential>();
    const int64_t in = i == 0 ? C : f[i - 1];
    for (int64_t j = 0; j < blocks; ++j)
      level->add(fmt::format("block{}", j), std::make_shared<ResBlock>(norm, false, j == 0 ? in : f[i], f[i],
                                                                       j == 0 ? 2 : 1, extra[i], false, gen));
    D->add(fmt::format("level{}", i), level);
  }
  auto fin = std::make_shared<Sequential>();
  if (is_wn(norm))
    fin->add("conv", std::make_shared<WNConv2d>(f[n - 1], 1, Hw(h, w), Hw(1), Hw(0), WNMode::Affine, gen));
  else
    fin->add("conv", std::make_shared<Conv2d>(f[n - 1], 1, Hw(h, w), Hw(1), Hw(0), gen));
  D->add("final", fin);
  D->set_name("D");

  auto G = std::make_shared<ResG>();
  auto initial = std::make_shared<Sequential>();
  const int64_t units = f[n - 1] * h * w;
  if (is_wn(norm)) {
    auto lin = std::make_shared<WNLinear>(code, units, WNMode::Strict, gen);
    initial->add("linear", lin);
  } else {
    initial->add("linear", std::make_shared<Linear>(code, units, gen));
  }
  initial->add("reshape", std::make_shared<Unflatten>(f[n - 1], h, w));
  if (norm == Norm::Batch) initial->add("bn", std::make_shared<BatchNorm>(f[n - 1]));
  initial->add("act", act(norm, f[n - 1]));
  G->add("initial", initial);
  for (int64_t L = n - 1; L >= 0; --L) {
    auto level = std::make_shared<Sequential>();
    const int64_t out = L == 0 ? C : f[L - 1];
    for (int64_t j = blocks - 1; j >= 1; --j)
      level->add(fmt::format("block{}", j), std::make_shared<ResBlock>(norm, true, f[L], f[L], 1, Hw(0), false, gen));
    level->add("block0", std::make_shared<ResBlock>(norm, true, f[L], out, 2, extra[L], L == 0, gen));
    if (L == 0) level->add("out", std::make_shared<Sigmoid>());
    G->add(fmt::format("level{}", L), level);
  }
  G->set_name("G");
  ModelConfig cfg;
  cfg.arch = "resnet";
  cfg.norm = norm;
  cfg.channels = C, cfg.height = H, cfg.width = W, cfg.code = code, cfg.features = f, cfg.blocks = blocks;
  return {cfg, G, D};
}

}  // namespace wn::gan
