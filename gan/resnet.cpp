// The residual GAN (docs/paper.md section 3), as the authors' ResNet code builds it: 5 levels of
// (stride-2 block, stride-1 block) plus the final conv in D (21 layers), mirrored block
// by block in G.
#include <stdexcept>

#include <fmt/format.h>

#include "engine/ops/elementwise.h"
#include "engine/ops/shape.h"
#include "gan/models.h"
#include "gan/norm_policy.h"
#include "nn/layers.h"
#include "nn/weight_norm.h"

namespace wn::gan {

using namespace wn::nn;

namespace {

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
  ResBlock(const NormPolicy& pol, bool up, int64_t in, int64_t out, int64_t stride, Hw extra, bool final_affine,
           Generator& gen)
      : wn_(pol.wn()) {
    residue_ = register_module("residue", std::make_shared<Sequential>());
    const Hw k(stride + 2), pad(1 + extra.h, 1 + extra.w);
    const int64_t mid = up ? in : out;  // the width between the two residue convs
    if (up)
      residue_->add("conv1", pol.conv(true, false, in, in, Hw(3), Hw(1), Hw(1), gen));
    else
      residue_->add("conv1", pol.conv(false, false, in, out, k, Hw(stride), pad, gen));
    pol.add_norm(*residue_, "bn1", mid, gen);
    residue_->add("act", pol.act(mid));
    if (up)
      residue_->add("conv2", pol.conv(true, false, in, out, k, Hw(stride), pad, gen));
    else
      residue_->add("conv2", pol.conv(false, false, out, out, Hw(3), Hw(1), Hw(1), gen));
    pol.add_norm(*residue_, "bn2", out, gen);
    shortcut_ = register_module("shortcut", std::make_shared<Sequential>());
    const bool pads = extra.h || extra.w;
    if (!up) {
      if (stride == 2 && pads) shortcut_->add("pad", std::make_shared<Pad2d>(extra.h, extra.h, extra.w, extra.w));
      if (stride == 2) shortcut_->add("pool", std::make_shared<AvgPool2x2>());
      if (in != out) shortcut_->add("conv", pol.conv(false, false, in, out, Hw(1), Hw(1), Hw(0), gen));
    } else {
      if (in != out) shortcut_->add("conv", pol.conv(true, false, in, out, Hw(1), Hw(1), Hw(0), gen));
      if (stride == 2) shortcut_->add("upsample", std::make_shared<Upsample2x>());
      if (stride == 2 && pads)
        shortcut_->add("crop", std::make_shared<Pad2d>(extra.h, extra.h, extra.w, extra.w, /*crop=*/true));
    }
    if (wn_) add_ = register_module("add", std::make_shared<WNAdd>(out, std::vector<double>{0.0, 1.0}));
    if (final_affine)
      post_ = register_module("post", std::make_shared<Affine>(out));
    else
      post_ = register_module("post", pol.act(out));
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
  const DownGeometry geo = down_geometry(H, W, n, 2, "ResNet");
  const std::vector<Hw>& extra = geo.extra;
  const int64_t h = geo.fh, w = geo.fw;
  const NormPolicy pol = NormPolicy::resnet(norm);
  // D: x in [0, 1] -> x * 2 - 1 (the authors' ResNet code) -> levels -> final conv -> (N) logits.
  auto D = std::make_shared<Discriminator>("ResNet-D", pol.signed_input);
  for (int64_t i = 0; i < n; ++i) {
    auto level = std::make_shared<Sequential>();
    const int64_t in = i == 0 ? C : f[i - 1];
    for (int64_t j = 0; j < blocks; ++j)
      level->add(fmt::format("block{}", j), std::make_shared<ResBlock>(pol, false, j == 0 ? in : f[i], f[i],
                                                                       j == 0 ? 2 : 1, j == 0 ? extra[i] : Hw(0), false, gen));
    D->add(fmt::format("level{}", i), level);
  }
  auto fin = std::make_shared<Sequential>();
  fin->add("conv", pol.conv(false, true, f[n - 1], 1, Hw(h, w), Hw(1), Hw(0), gen));
  D->add("final", fin);
  D->set_name("D");

  auto G = std::make_shared<GeneratorNet>("ResNet-G");
  // The authors' ResNet G starts with an affine WN linear (weight and bias x0.01) and a
  // plain PReLU.
  G->add("initial", pol.initial_block(code, f[n - 1], h, w, gen));
  // Each G level, in forward order as the authors': stride-1 blocks at the level's width,
  // then the strided block that changes the width (block{blocks-1}).
  for (int64_t L = n - 1; L >= 0; --L) {
    auto level = std::make_shared<Sequential>();
    const int64_t out = L == 0 ? C : f[L - 1];
    for (int64_t j = 0; j + 1 < blocks; ++j)
      level->add(fmt::format("block{}", j), std::make_shared<ResBlock>(pol, true, f[L], f[L], 1, Hw(0), false, gen));
    level->add(fmt::format("block{}", blocks - 1),
               std::make_shared<ResBlock>(pol, true, f[L], out, 2, extra[L], L == 0, gen));
    if (L == 0) level->add("out", std::make_shared<Sigmoid>());
    G->add(fmt::format("level{}", L), level);
  }
  G->set_name("G");
  ModelConfig cfg = ModelConfig::of(Arch::ResNet, norm, C, H, W, code);
  cfg.features = f, cfg.blocks = blocks;
  return {cfg, G, D};
}

}  // namespace wn::gan
