// The residual GAN (SPEC section 3), as the authors' ResNet code builds it: 5 levels of
// (stride-2 block, stride-1 block) plus the final conv in D (21 layers), mirrored block
// by block in G.
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

// The ResNet's WN layers follow the authors' ResNet code: strict, epsilon outside the root.
ModulePtr conv(Norm norm, bool transposed, int64_t in, int64_t out, Hw k, Hw s, Hw p, Generator& gen) {
  if (is_wn(norm)) {
    if (transposed) return std::make_shared<WNConvTranspose2d>(in, out, k, s, p, WNMode::Strict, gen, WNEps::Outside);
    return std::make_shared<WNConv2d>(in, out, k, s, p, WNMode::Strict, gen, WNEps::Outside);
  }
  if (transposed) return std::make_shared<ConvTranspose2d>(in, out, k, s, p, gen);
  return std::make_shared<Conv2d>(in, out, k, s, p, gen);
}

// WN: TPReLU with the slope clamped in the forward pass (the authors' ResNet code);
// otherwise PReLU, clipped after each update (the paper).
ModulePtr act(Norm norm, int64_t c) {
  if (is_wn(norm)) return std::make_shared<TPReLU>(c, 0.25, /*clamp_in_forward=*/true);
  return std::make_shared<PReLU>(c);
}

// Residual block, as the authors' ResidueBlock / ResidueBlockTranspose.
// Down (D): residue conv1 (k = stride + 2, stride, pad 1 + extra) in -> out, act, conv2
// 3x3 out -> out; shortcut pad -> 2x2 average pool (stride 2) -> 1x1 conv (in != out).
// Up (G): residue conv1 3x3 stride-1 transposed in -> in, act at the input width, conv2
// transposed (k = stride + 2, stride, pad 1 + extra) in -> out; shortcut 1x1 transposed
// conv (in != out) -> nearest 2x upsampling -> crop. BN models: BN after each residue
// conv. Then the sum (weight-normalized in WN models, weights (0, 1) at first) and a
// post activation (an Affine layer in G's last block).
class ResBlock : public Module {
 public:
  ResBlock(Norm norm, bool up, int64_t in, int64_t out, int64_t stride, Hw extra, bool final_affine, Generator& gen)
      : wn_(is_wn(norm)) {
    const bool bn = norm == Norm::Batch;
    residue_ = register_module("residue", std::make_shared<Sequential>());
    const Hw k(stride + 2), pad(1 + extra.h, 1 + extra.w);
    const int64_t mid = up ? in : out;  // the width between the two residue convs
    if (up)
      residue_->add("conv1", conv(norm, true, in, in, Hw(3), Hw(1), Hw(1), gen));
    else
      residue_->add("conv1", conv(norm, false, in, out, k, Hw(stride), pad, gen));
    if (bn) residue_->add("bn1", std::make_shared<BatchNorm>(mid, gen));
    residue_->add("act", act(norm, mid));
    if (up)
      residue_->add("conv2", conv(norm, true, in, out, k, Hw(stride), pad, gen));
    else
      residue_->add("conv2", conv(norm, false, out, out, Hw(3), Hw(1), Hw(1), gen));
    if (bn) residue_->add("bn2", std::make_shared<BatchNorm>(out, gen));
    shortcut_ = register_module("shortcut", std::make_shared<Sequential>());
    const bool pads = extra.h || extra.w;
    if (!up) {
      if (stride == 2 && pads) shortcut_->add("pad", std::make_shared<Pad2d>(extra.h, extra.h, extra.w, extra.w));
      if (stride == 2) shortcut_->add("pool", std::make_shared<AvgPool2x2>());
      if (in != out) shortcut_->add("conv", conv(norm, false, in, out, Hw(1), Hw(1), Hw(0), gen));
    } else {
      if (in != out) shortcut_->add("conv", conv(norm, true, in, out, Hw(1), Hw(1), Hw(0), gen));
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

// D: x in [0, 1] -> x * 2 - 1 (the authors' ResNet code) -> levels -> final conv -> (N) logits.
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
                                                                       j == 0 ? 2 : 1, j == 0 ? extra[i] : Hw(0), false, gen));
    D->add(fmt::format("level{}", i), level);
  }
  auto fin = std::make_shared<Sequential>();
  if (is_wn(norm))
    fin->add("conv",
             std::make_shared<WNConv2d>(f[n - 1], 1, Hw(h, w), Hw(1), Hw(0), WNMode::Affine, gen, WNEps::Outside));
  else
    fin->add("conv", std::make_shared<Conv2d>(f[n - 1], 1, Hw(h, w), Hw(1), Hw(0), gen));
  D->add("final", fin);
  D->set_name("D");

  auto G = std::make_shared<ResG>();
  auto initial = std::make_shared<Sequential>();
  const int64_t units = f[n - 1] * h * w;
  // The authors' ResNet G starts with an affine WN linear (weight and bias x0.01) and a
  // plain PReLU.
  if (is_wn(norm))
    initial->add("linear", std::make_shared<WNLinear>(code, units, WNMode::Affine, gen, WNEps::Outside, 0.01));
  else
    initial->add("linear", std::make_shared<Linear>(code, units, gen));
  initial->add("reshape", std::make_shared<Unflatten>(f[n - 1], h, w));
  if (norm == Norm::Batch) initial->add("bn", std::make_shared<BatchNorm>(f[n - 1], gen));
  initial->add("act", std::make_shared<PReLU>(f[n - 1]));
  G->add("initial", initial);
  // Each G level, in forward order as the authors': stride-1 blocks at the level's width,
  // then the strided block that changes the width (block{blocks-1}).
  for (int64_t L = n - 1; L >= 0; --L) {
    auto level = std::make_shared<Sequential>();
    const int64_t out = L == 0 ? C : f[L - 1];
    for (int64_t j = 0; j + 1 < blocks; ++j)
      level->add(fmt::format("block{}", j), std::make_shared<ResBlock>(norm, true, f[L], f[L], 1, Hw(0), false, gen));
    level->add(fmt::format("block{}", blocks - 1),
               std::make_shared<ResBlock>(norm, true, f[L], out, 2, extra[L], L == 0, gen));
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
