// The DCGAN family (SPEC section 3).
#include <stdexcept>

#include <fmt/format.h>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/shape.h"
#include "gan/models.h"
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

std::string ModelConfig::describe() const {
  std::string s = fmt::format("{} {} {}x{}x{} code {}", arch, norm_name(norm), channels, height, width, code);
  if (arch == "dcgan") return s + fmt::format(" nf {} layers {}", nf, nlayer > 0 ? nlayer : dcgan_layers(height, width));
  std::string f;
  for (auto v : features) f += (f.empty() ? "" : ",") + std::to_string(v);
  return s + fmt::format(" features {} blocks {}", f, blocks);
}

int64_t dcgan_layers(int64_t h, int64_t w) {
  int64_t s = std::max(h, w), n = 0;
  while (s >= 8) {
    s = (s + 1) / 2;
    ++n;
  }
  return n;
}

namespace {

// The discriminator's (and mirrored generator's) geometry: per layer the extra
// padding p_i in each direction, and the final map size.
struct Geometry {
  std::vector<Hw> extra;
  int64_t fh, fw;
};

Geometry geometry(int64_t h, int64_t w, int64_t n) {
  Geometry g;
  for (int64_t i = 0; i < n; ++i) {
    const bool last = i == n - 1;
    Hw p((!last && h % 4 == 2) ? 1 : 0, (!last && w % 4 == 2) ? 1 : 0);
    g.extra.push_back(p);
    h = (h + 2 * p.h) / 2;
    w = (w + 2 * p.w) / 2;
    if (h < 1 || w < 1) throw std::invalid_argument("image too small for that many layers");
  }
  g.fh = h;
  g.fw = w;
  return g;
}

// A conv (or transposed conv) of the given norm, registered as "conv" (or "linear").
ModulePtr make_conv(Norm norm, bool transposed, bool last, int64_t in, int64_t out, Hw k, Hw s, Hw p, Generator& gen) {
  const bool wn = norm == Norm::Weight || norm == Norm::WeightAffine;
  if (wn) {
    WNMode mode = (norm == Norm::WeightAffine || last) ? WNMode::Affine : WNMode::Strict;
    if (transposed) return std::make_shared<WNConvTranspose2d>(in, out, k, s, p, mode, gen);
    return std::make_shared<WNConv2d>(in, out, k, s, p, mode, gen);
  }
  if (transposed) return std::make_shared<ConvTranspose2d>(in, out, k, s, p, gen);
  return std::make_shared<Conv2d>(in, out, k, s, p, gen);
}

ModulePtr make_act(Norm norm, int64_t c) {
  if (norm == Norm::Weight) return std::make_shared<TPReLU>(c);
  return std::make_shared<PReLU>(c);
}

// D: x in [0, 1], as loaded (the authors' DCGAN code applies no x * 2 - 1) -> levels ->
// final conv -> (N) logits.
class DcganD : public Sequential {
 public:
  Tensor forward(const Tensor& x) override {
    Tensor y = Sequential::forward(x);
    return reshape(y, {y.dim(0)});
  }
  std::string type_name() const override { return "DCGAN-D"; }
};

class DcganG : public Sequential {
 public:
  std::string type_name() const override { return "DCGAN-G"; }
};

}  // namespace

Gan dcgan(Norm norm, int64_t C, int64_t H, int64_t W, int64_t nf, int64_t code, int64_t nlayer, Generator& gen) {
  if (H < 2 || W < 2 || H % 2 || W % 2)
    throw std::invalid_argument(fmt::format("image size {}x{}: height and width must be even and >= 2", H, W));
  if (C < 1 || nf < 1 || code < 1) throw std::invalid_argument("channels, nf and code must be positive");
  const int64_t n = nlayer > 0 ? nlayer : dcgan_layers(H, W);
  if (n < 1) throw std::invalid_argument(fmt::format("image size {}x{} is too small for a DCGAN", H, W));
  const Geometry geo = geometry(H, W, n);
  const bool bn = norm == Norm::Batch;

  auto D = std::make_shared<DcganD>();
  for (int64_t i = 0; i < n; ++i) {
    auto level = std::make_shared<Sequential>();
    const int64_t in = i == 0 ? C : nf << (i - 1), out = nf << i;
    const Hw pad(1 + geo.extra[i].h, 1 + geo.extra[i].w);
    level->add("conv", make_conv(norm, false, false, in, out, Hw(4), Hw(2), pad, gen));
    if (bn && i > 0) level->add("bn", std::make_shared<BatchNorm>(out, gen));
    level->add("act", make_act(norm, out));
    D->add(fmt::format("level{}", i), level);
  }
  auto fin = std::make_shared<Sequential>();
  fin->add("conv", make_conv(norm, false, true, nf << (n - 1), 1, Hw(geo.fh, geo.fw), Hw(1), Hw(0), gen));
  D->add("final", fin);
  D->set_name("D");

  auto G = std::make_shared<DcganG>();
  const int64_t top = nf << (n - 1);
  auto initial = std::make_shared<Sequential>();
  const int64_t units = top * geo.fh * geo.fw;
  if (norm == Norm::Weight || norm == Norm::WeightAffine) {
    // SPEC: the WN models' first G layer starts scaled by 0.01 (in affine mode its bias too).
    initial->add("linear", std::make_shared<WNLinear>(code, units, norm == Norm::Weight ? WNMode::Strict : WNMode::Affine,
                                                      gen, WNEps::Inside, 0.01));
  } else {
    initial->add("linear", std::make_shared<Linear>(code, units, gen));
  }
  initial->add("reshape", std::make_shared<Unflatten>(top, geo.fh, geo.fw));
  if (bn) initial->add("bn", std::make_shared<BatchNorm>(top, gen));
  initial->add("act", make_act(norm, top));
  G->add("initial", initial);
  for (int64_t L = n - 1; L >= 0; --L) {
    auto level = std::make_shared<Sequential>();
    const int64_t in = nf << L, out = L == 0 ? C : nf << (L - 1);
    const Hw pad(1 + geo.extra[L].h, 1 + geo.extra[L].w);
    level->add("conv", make_conv(norm, true, L == 0, in, out, Hw(4), Hw(2), pad, gen));
    if (L > 0) {
      if (bn) level->add("bn", std::make_shared<BatchNorm>(out, gen));
      level->add("act", make_act(norm, out));
    } else {
      level->add("out", std::make_shared<Sigmoid>());
    }
    G->add(fmt::format("level{}", L), level);
  }
  G->set_name("G");
  ModelConfig cfg;
  cfg.arch = "dcgan";
  cfg.norm = norm;
  cfg.channels = C, cfg.height = H, cfg.width = W, cfg.nf = nf, cfg.code = code, cfg.nlayer = nlayer;
  return {cfg, G, D};
}

Gan build_gan(const ModelConfig& c, Generator& gen) {
  validate_model(c);
  if (c.arch == "dcgan") return dcgan(c.norm, c.channels, c.height, c.width, c.nf, c.code, c.nlayer, gen);
  if (c.arch == "resnet") return resnet(c.norm, c.channels, c.height, c.width, c.features, c.blocks, c.code, gen);
  throw std::invalid_argument(fmt::format("unknown architecture '{}' (expected dcgan or resnet)", c.arch));
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
