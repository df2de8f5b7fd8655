// The DCGAN family (docs/paper.md section 3).
#include <stdexcept>

#include <fmt/format.h>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/shape.h"
#include "gan/models.h"
#include "gan/norm_policy.h"
#include "gan/run_config.h"
#include "nn/layers.h"
#include "nn/weight_norm.h"

namespace wn::gan {

using namespace wn::nn;

Norm parse_norm(const std::string& s) {
  if (s == "none" || s == "vanilla") return Norm::None;
  if (s == "batch" || s == "bn") return Norm::Batch;
  if (s == "weight" || s == "wn") return Norm::Weight;
  if (s == "weight-affine" || s == "wn-affine") return Norm::WeightAffine;
  throw std::invalid_argument(fmt::format("unknown normalization '{}' (expected none, batch, weight or weight-affine)", s));
}

std::string norm_name(Norm n) {
  switch (n) {
    case Norm::None: return "none";
    case Norm::Batch: return "batch";
    case Norm::Weight: return "weight";
    case Norm::WeightAffine: return "weight-affine";
  }
  return "?";
}

std::string norm_label(Norm n) {
  switch (n) {
    case Norm::None: return "vanilla";
    case Norm::Batch: return "BN";
    case Norm::Weight: return "WN";
    case Norm::WeightAffine: return "WN-affine";
  }
  return "?";
}

std::string ModelConfig::describe() const {
  std::string s = fmt::format("{} {} (--norm {}), {}x{}x{} images, code {}", norm_label(norm),
                              arch == Arch::DCGAN ? "DCGAN" : "ResNet", norm_name(norm), channels, height, width, code);
  if (arch == Arch::DCGAN)
    return s + fmt::format(", nf {}, {} up/down-sampling layers", nf, nlayer > 0 ? nlayer : dcgan_layers(height, width));
  std::string f;
  for (auto v : features) f += (f.empty() ? "" : ",") + std::to_string(v);
  return s + fmt::format(", features {}, {} blocks per level", f, blocks);
}

int64_t dcgan_layers(int64_t h, int64_t w) {
  int64_t s = std::max(h, w), n = 0;
  while (s >= 8) {
    s = (s + 1) / 2;
    ++n;
  }
  return n;
}

Gan dcgan(Norm norm, int64_t C, int64_t H, int64_t W, int64_t nf, int64_t code, int64_t nlayer, Generator& gen) {
  if (H < 2 || W < 2 || H % 2 || W % 2)
    throw std::invalid_argument(fmt::format("image size {}x{}: height and width must be even and >= 2", H, W));
  if (C < 1 || nf < 1 || code < 1) throw std::invalid_argument("channels, nf and code must be positive");
  const int64_t n = nlayer > 0 ? nlayer : dcgan_layers(H, W);
  if (n < 1) throw std::invalid_argument(fmt::format("image size {}x{} is too small for a DCGAN", H, W));
  const DownGeometry geo = down_geometry(H, W, n, 1, "DCGAN");
  const NormPolicy pol = NormPolicy::dcgan(norm);

  // D: x in [0, 1], as loaded (the authors' DCGAN code applies no x * 2 - 1) -> levels ->
  // final conv -> (N) logits.
  auto D = std::make_shared<Discriminator>("DCGAN-D", pol.signed_input);
  for (int64_t i = 0; i < n; ++i) {
    auto level = std::make_shared<Sequential>();
    const int64_t in = i == 0 ? C : nf << (i - 1), out = nf << i;
    const Hw pad(1 + geo.extra[i].h, 1 + geo.extra[i].w);
    level->add("conv", pol.conv(false, false, in, out, Hw(4), Hw(2), pad, gen));
    if (i > 0) pol.add_norm(*level, "bn", out, gen);
    level->add("act", pol.act(out));
    D->add(fmt::format("level{}", i), level);
  }
  auto fin = std::make_shared<Sequential>();
  fin->add("conv", pol.conv(false, true, nf << (n - 1), 1, Hw(geo.fh, geo.fw), Hw(1), Hw(0), gen));
  D->add("final", fin);
  D->set_name("D");

  auto G = std::make_shared<GeneratorNet>("DCGAN-G");
  const int64_t top = nf << (n - 1);
  G->add("initial", pol.initial_block(code, top, geo.fh, geo.fw, gen));
  for (int64_t L = n - 1; L >= 0; --L) {
    auto level = std::make_shared<Sequential>();
    const int64_t in = nf << L, out = L == 0 ? C : nf << (L - 1);
    const Hw pad(1 + geo.extra[L].h, 1 + geo.extra[L].w);
    level->add("conv", pol.conv(true, L == 0, in, out, Hw(4), Hw(2), pad, gen));
    if (L > 0) {
      pol.add_norm(*level, "bn", out, gen);
      level->add("act", pol.act(out));
    } else {
      level->add("out", std::make_shared<Sigmoid>());
    }
    G->add(fmt::format("level{}", L), level);
  }
  G->set_name("G");
  ModelConfig cfg = ModelConfig::of(Arch::DCGAN, norm, C, H, W, code);
  cfg.nf = nf, cfg.nlayer = nlayer;
  return {cfg, G, D};
}

Gan build_gan(const ModelConfig& c, Generator& gen) {
  validate_model(c);
  switch (c.arch) {
    case Arch::DCGAN: return dcgan(c.norm, c.channels, c.height, c.width, c.nf, c.code, c.nlayer, gen);
    case Arch::ResNet: return resnet(c.norm, c.channels, c.height, c.width, c.features, c.blocks, c.code, gen);
  }
  throw std::logic_error("build_gan: unknown architecture");
}

std::vector<LayerRow> summarize(Module& net, const Tensor& input) {
  std::vector<LayerRow> rows;
  // Leaf modules only: those without children.
  std::vector<Module*> leaves;
  net.apply([&](Module& m) {
    if (m.children().empty()) leaves.push_back(&m);
  });
  for (Module* m : leaves)
    m->register_forward_hook([&rows](Module& mod, const Tensor& y) {
      int64_t p = 0;
      for (auto& [n, t] : mod.named_parameters()) p += t.numel();
      rows.push_back({mod.name(), mod.type_name(), y.shape(), p});
    });
  {
    NoGradGuard ng;
    const bool was = net.is_training();
    net.eval();
    net(input);
    net.train(was);
  }
  for (Module* m : leaves) m->clear_forward_hooks();
  return rows;
}

}  // namespace wn::gan
