// `wngan summary`: each layer of G and D with its output shape and parameter count.
#include <memory>
#include <string>
#include <tuple>

#include <fmt/format.h>

#include "apps/commands.h"
#include "engine/random.h"
#include "gan/models.h"
#include "gan/run_config.h"

namespace wn::app {

namespace {
// "64,128,256" -> {64, 128, 256}; anything else is an error naming --features.
std::vector<int64_t> parse_list(const std::string& s) {
  std::vector<int64_t> v;
  for (const std::string& item : gan::split_list(s)) {
    size_t used = 0;
    int64_t x = 0;
    try {
      x = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || x < 1 || x > 8192)
      throw std::invalid_argument(
          fmt::format("--features '{}': expected whole numbers from 1 to 8192 separated by commas", s));
    v.push_back(x);
  }
  return v;
}

void print_net(const std::string& title, nn::Module& net, const Tensor& input) {
  fmt::print("{}  (input {})\n", title, input.shape().str());
  fmt::print("  {:<36} {:<26} {:<20} {:>12}\n", "layer", "type", "output", "parameters");
  for (auto& r : gan::summarize(net, input))
    fmt::print("  {:<36} {:<26} {:<20} {:>12}\n", r.name, r.type, r.out.str(), r.params);
}
}  // namespace

void add_model_options(CLI::App* cmd, ModelOptions& m) {
  cmd->add_option("--arch", m.arch, "dcgan | resnet")->check(CLI::IsMember({"dcgan", "resnet"}));
  const bool by_data = m.channels == 0;  // train, study: sizes from the data set
  cmd->add_option("--norm", m.norm,
                  "none (vanilla) | batch (BN) | weight (WN) | weight-affine (WN-affine); vanilla, bn, wn and "
                  "wn-affine are accepted too");
  cmd->add_option("--channels", m.channels, by_data ? "Image channels (0: the data set's own)" : "Image channels")
      ->check(in_range(by_data ? 0 : 1, 4));
  cmd->add_option("--image-size", m.image_size,
                  by_data ? "Image size: S (shorter edge scaled to S, centre square) or HxW (resized); even; empty: "
                            "the data set's own size"
                          : "Image size: S or HxW (even)");
  cmd->add_option("--nf", m.nf, "DCGAN first-layer features")
      ->check(in_range(1, 8192));
  cmd->add_option("--code", m.code, "Latent code length")
      ->check(in_range(1, 65536));
  cmd->add_option("--nlayer", m.nlayer, "DCGAN layer count (0: from the image size)")
      ->check(in_range(0, 16));
  cmd->add_option("--features", m.features, "ResNet features per level, comma-separated");
  cmd->add_option("--blocks", m.blocks, "ResNet blocks per level")
      ->check(in_range(1, 64));
}

std::pair<int64_t, int64_t> parse_size(const std::string& s, const std::string& option) {
  constexpr int64_t kMaxImageSide = 8192;
  const auto x = s.find('x');
  auto num = [&](const std::string& part) {
    size_t used = 0;
    int64_t v = -1;
    try {
      v = std::stoll(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != part.size() || part.empty() || v < 0)
      throw std::invalid_argument(fmt::format("{} '{}': expected S or HxW with whole numbers", option, s));
    // Far above the paper's 28 to 64 pixels; a model for larger images would not fit in memory.
    if (v > kMaxImageSide)
      throw std::invalid_argument(fmt::format("{} '{}': {} pixels is more than the {} a side may have", option, s, v,
                                              kMaxImageSide));
    return v;
  };
  if (x == std::string::npos) {
    const int64_t v = num(s);
    return {v, v};
  }
  const int64_t h = num(s.substr(0, x)), w = num(s.substr(x + 1));
  if (h < 1 || w < 1) throw std::invalid_argument(fmt::format("{} '{}': both sides of HxW must be >= 1", option, s));
  return {h, w};
}

gan::ModelConfig ModelOptions::config() const {
  gan::ModelConfig c;
  c.arch = gan::parse_arch(arch);
  c.norm = gan::parse_norm(norm);
  c.channels = channels;
  std::tie(c.height, c.width) = parse_size(image_size, "--image-size");  // 0: the data set's own size
  c.nf = nf;
  c.code = code;
  c.nlayer = nlayer;
  c.features = parse_list(features);
  if (c.arch == gan::Arch::ResNet && c.features.empty()) c.features = {64, 128, 256, 384, 512};  // the authors' ResNet
  c.blocks = blocks;
  return c;
}

void add_summary(CLI::App& app) {
  auto m = std::make_shared<ModelOptions>();
  // The defaults describe what `wngan train` trains with no options: the WN DCGAN for
  // Fashion-MNIST's 1x28x28 images.
  m->channels = 1;
  m->image_size = "28";
  CLI::App* cmd = app.add_subcommand(
      "summary", "Print each layer of G and D with its output shape and parameters (default: train's default model)");
  add_model_options(cmd, *m);
  cmd->callback([m]() {
    gan::ModelConfig c = m->config();
    Generator gen(0);
    gan::Gan g = gan::build_gan(c, gen);
    fmt::print("{}\n\n", g.config.describe());
    print_net("G", *g.G, Tensor::zeros({2, c.code}));
    fmt::print("\n");
    print_net("D", *g.D, Tensor::zeros({2, c.channels, c.height, c.width}));
    fmt::print("\nG parameters: {}\nD parameters: {}\n", g.G->num_parameters(), g.D->num_parameters());
  });
}

}  // namespace wn::app
