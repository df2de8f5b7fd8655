// The paper's networks (docs/paper.md section 3): the DCGAN family (vanilla, BN, WN, WN-affine)
// for any even image size, and the residual GAN (21 layers by default). Parameter
// names follow the authors' modules: G.initial.linear, G.level{L}.conv|bn|act,
// D.level{i}.conv|bn|act, D.final.conv; ResNet blocks D.level{i}.block{j}....
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/random.h"
#include "nn/module.h"

namespace wn::gan {

enum class Norm { None, Batch, Weight, WeightAffine };
// The two architectures (stored by name, "dcgan" and "resnet").
enum class Arch { DCGAN, ResNet };

// Version of the networks' definition, stored with every model description; a
// checkpoint of another version is refused. 2: the authors' initialisation (fan-in of
// transposed convs, BN gamma ~ U(0, 1)), the DCGAN D fed [0, 1], the authors' ResNet
// block order and weight normalization.
constexpr int64_t kModelVersion = 2;

// "none" | "batch" | "weight" | "weight-affine" (also "vanilla", "bn", "wn").
Norm parse_norm(const std::string& s);
std::string norm_name(Norm n);
// The model's name in reports, banners and CSV files: "vanilla" | "BN" | "WN" | "WN-affine".
std::string norm_label(Norm n);
// "dcgan" | "resnet"; anything else is an error naming both (defined with the checked
// readers of gan/run_config.cpp).
Arch parse_arch(const std::string& s);
const char* arch_name(Arch arch);

// Everything that determines a model's architecture (stored in checkpoints).
struct ModelConfig {
  Arch arch = Arch::DCGAN;
  Norm norm = Norm::Weight;
  int64_t channels = 1, height = 28, width = 28;
  int64_t nf = 64, code = 128;
  int64_t nlayer = 0;                 // DCGAN: 0 = docs/paper.md's rule (section 3)
  std::vector<int64_t> features;      // ResNet: features per level (default 64,128,256,384,512)
  int64_t blocks = 2;                 // ResNet: blocks per level (first one strided)
  // A one-line description, e.g. "dcgan weight 1x28x28 nf 64 code 128".
  std::string describe() const;
  // The fields every architecture has; the others keep their defaults.
  static ModelConfig of(Arch arch, Norm norm, int64_t channels, int64_t height, int64_t width, int64_t code) {
    ModelConfig c;
    c.arch = arch, c.norm = norm, c.channels = channels, c.height = height, c.width = width, c.code = code;
    return c;
  }
};

// A generator (code -> image in [0, 1]) and a discriminator (image in [0, 1] -> logit).
struct Gan {
  ModelConfig config;
  std::shared_ptr<nn::Module> G, D;
};

// Number of DCGAN down/up layers for an image: how often s = ceil(s / 2) runs from
// s = max(H, W) while s >= 8 (64 -> 4, 32 -> 3, 28 -> 2, 128 -> 5).
int64_t dcgan_layers(int64_t height, int64_t width);
// Builds the networks of a configuration, initialised from gen.
Gan build_gan(const ModelConfig& cfg, Generator& gen);
Gan dcgan(Norm norm, int64_t channels, int64_t height, int64_t width, int64_t nf, int64_t code, int64_t nlayer,
          Generator& gen);
Gan resnet(Norm norm, int64_t channels, int64_t height, int64_t width, const std::vector<int64_t>& features,
           int64_t blocks, int64_t code, Generator& gen);

// One line per layer: name, type, output shape, parameter count (from a dummy forward).
struct LayerRow {
  std::string name, type;
  Shape out;
  int64_t params = 0;
};
std::vector<LayerRow> summarize(nn::Module& net, const Tensor& input);

}  // namespace wn::gan
