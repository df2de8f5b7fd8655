// How a network family applies a normalization variant: which convolution, activation and
// norm layer each place gets, how G's first layer is built, how D sees its input, and the
// down-sampling geometry. dcgan.cpp and resnet.cpp both build from it, so the two families
// differ only where the authors' codes differ, and those differences are named here.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/random.h"
#include "gan/models.h"
#include "nn/layers.h"
#include "nn/weight_norm.h"

namespace wn::gan {

struct NormPolicy {
  Norm norm = Norm::Weight;
  nn::WNEps wn_eps = nn::WNEps::Inside;  // WN epsilon: inside the root (DCGAN code), outside (ResNet code)
  bool clamp_slope = false;              // TPReLU clamps its slope in the forward pass (ResNet code)
  bool initial_affine = false;           // G's first WN linear is affine even in strict models (ResNet code)
  bool initial_plain_prelu = false;      // G's first activation is a plain PReLU (ResNet code)
  bool signed_input = false;             // D reads x * 2 - 1 (ResNet code) instead of x in [0, 1]

  // The DCGAN family's policy (the paper and the authors' DCGAN code).
  static NormPolicy dcgan(Norm norm);
  // The ResNet's policy (the authors' ResNet code).
  static NormPolicy resnet(Norm norm);

  bool wn() const { return norm == Norm::Weight || norm == Norm::WeightAffine; }
  bool bn() const { return norm == Norm::Batch; }
  // A conv (or transposed conv) layer; WN layers are affine when the variant is or when
  // `affine` asks (D's final conv, G's output conv), strict otherwise.
  nn::ModulePtr conv(bool transposed, bool affine, int64_t in, int64_t out, Hw k, Hw s, Hw p,
                     Generator& gen) const;
  // The activation after a layer of c channels: TPReLU in WN models, PReLU otherwise.
  nn::ModulePtr act(int64_t c) const;
  // Adds a batch norm of c channels named `name` to seq in BN models (nothing otherwise).
  void add_norm(nn::Sequential& seq, const std::string& name, int64_t c, Generator& gen) const;
  // G's first block: linear code -> c x h x w (WN: scaled by 0.01 at first), reshape,
  // batch norm (BN models), activation.
  std::shared_ptr<nn::Sequential> initial_block(int64_t code, int64_t c, int64_t h, int64_t w, Generator& gen) const;
};

// The discriminator: (optionally x * 2 - 1) -> its layers -> (N) logits.
class Discriminator : public nn::Sequential {
 public:
  Discriminator(std::string type, bool signed_input) : type_(std::move(type)), signed_(signed_input) {}
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return type_; }

 private:
  std::string type_;
  bool signed_;
};

// The generator: its layers in order (code -> image in [0, 1]).
class GeneratorNet : public nn::Sequential {
 public:
  explicit GeneratorNet(std::string type) : type_(std::move(type)) {}
  std::string type_name() const override { return type_; }

 private:
  std::string type_;
};

// Down-sampling geometry of n stride-2 levels from H x W (D's, mirrored by G): per level the
// extra padding (1 where the size is 2 mod 4, except at the last level) and the final map
// size. Levels before the last must leave at least min_inner pixels per side.
struct DownGeometry {
  std::vector<Hw> extra;
  int64_t fh = 0, fw = 0;
};
DownGeometry down_geometry(int64_t H, int64_t W, int64_t n, int64_t min_inner, const char* family);

}  // namespace wn::gan
