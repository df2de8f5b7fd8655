#include "gan/presets.h"

#include <stdexcept>

#include <fmt/format.h>

namespace wn::gan {

namespace {

const char* const kPaper = "paper";
const char* const kCode = "authors' code";
const char* const kReadme = "authors' README";
const char* const kOurs = "ours";

// The paper's DCGAN protocol (docs/paper.md section 4) with the authors' code's defaults where
// the paper gives no number.
std::vector<PresetOption> dcgan_protocol() {
  return {{"arch", "dcgan", kPaper},
          {"batch", "32", kPaper},
          {"lr", "1e-4", kPaper},
          {"rms-eps", "1e-6", kCode},
          {"protocol", "alternating", kPaper},
          {"loss", "bce", kPaper},
          {"nf", "64", kCode},
          {"code", "128", kCode},
          {"iters", "100000", kCode},
          {"test-every", "1000", kPaper},
          {"test-steps", "50", kCode},
          {"sample-every", "100", kCode},
          {"final-test", "2000", kCode},
          {"final-n", "2000", kCode},
          {"final-steps", "1000", kOurs},
          {"seeds", "3", kOurs},
          {"models", "none,batch,weight", kPaper}};
}

// Replaces (or adds) options of a list.
std::vector<PresetOption> with(std::vector<PresetOption> base, const std::vector<PresetOption>& changes) {
  for (const auto& c : changes) {
    bool found = false;
    for (auto& b : base)
      if (b.option == c.option) {
        b = c;
        found = true;
      }
    if (!found) base.push_back(c);
  }
  return base;
}

// The geometry of the authors' CelebA example: centre crop 160, 160x160 images.
std::vector<PresetOption> celeba_geometry(std::vector<PresetOption> base) {
  return with(std::move(base), {{"crop", "160", kReadme}, {"image-size", "160", kReadme}});
}

std::vector<Preset> make_presets() {
  std::vector<Preset> p;
  p.push_back({"celeba-dcgan",
               "the paper's main experiment: vanilla, BN and WN DCGANs on CelebA at the geometry of the "
               "authors' CelebA example (centre crop 160, 160x160 images: five layers to 1024 features)",
               celeba_geometry(dcgan_protocol())});
  p.push_back({"celeba-dcgan-code256",
               "celeba-dcgan with the authors' later advice for their fixed code: code 256, lr 2e-5 (slower start, "
               "better samples), 200,000 iterations",
               with(celeba_geometry(dcgan_protocol()),
                    {{"code", "256", kReadme}, {"lr", "2e-5", kReadme}, {"iters", "200000", kReadme}})});
  p.push_back({"celeba-resnet",
               "the 21-layer residual GANs on CelebA (the paper's stability demonstration), trained as the authors' "
               "ResNet code does",
               with(celeba_geometry(dcgan_protocol()), {{"arch", "resnet", kPaper},
                                                        {"features", "64,128,256,384,512", kCode},
                                                        {"blocks", "2", kPaper},
                                                        {"lr", "2e-5", kCode},
                                                        {"rms-eps", "1e-8", kCode},
                                                        {"protocol", "simultaneous", kCode},
                                                        {"iters", "1000000", kCode},
                                                        {"models", "resnet-none,resnet-weight", kPaper}})});
  p.push_back({"cifar10-dcgan", "vanilla, BN and WN DCGANs on CIFAR-10 at its own 32x32 (three layers to 256 features)",
               with(dcgan_protocol(), {{"image-size", "32", kOurs}})});
  p.push_back({"lsun-bedroom-dcgan",
               "vanilla, BN and WN DCGANs on LSUN bedrooms, shorter edge scaled to 64 and centre-cropped",
               with(dcgan_protocol(), {{"image-size", "64", kOurs}})});
  p.push_back({"fashion-mnist",
               "the quick default: the WN DCGAN on Fashion-MNIST at 28x28 for 2000 iterations, a 500-image final test",
               with(dcgan_protocol(), {{"data", "fashion-mnist", kOurs},
                                       {"image-size", "28", kOurs},
                                       {"iters", "2000", kOurs},
                                       {"test-every", "200", kOurs},
                                       {"final-n", "500", kOurs},
                                       {"final-steps", "200", kOurs},
                                       {"seeds", "1", kOurs}})});
  return p;
}

}  // namespace

const std::vector<Preset>& presets() {
  static const std::vector<Preset> p = make_presets();
  return p;
}

const Preset& find_preset(const std::string& name) {
  std::string names;
  for (const auto& p : presets()) {
    if (p.name == name) return p;
    names += (names.empty() ? "" : ", ") + p.name;
  }
  std::string near;
  for (const auto& p : presets())
    if (near.empty() && !name.empty() && p.name.find(name) != std::string::npos) near = p.name;
  throw std::invalid_argument(fmt::format("unknown preset '{}'{} (expected one of: {})", name,
                                          near.empty() ? "" : fmt::format(" (did you mean '{}'?)", near), names));
}

std::vector<PresetOption> arch_defaults(Arch arch) {
  if (arch == Arch::ResNet)
    return {{"lr", "2e-5", kCode}, {"rms-eps", "1e-8", kCode}, {"protocol", "simultaneous", kCode}};
  return {};
}

std::string presets_markdown() {
  std::string s = "| preset | option | value | source |\n|---|---|---|---|\n";
  for (const auto& p : presets())
    for (const auto& o : p.options) s += fmt::format("| {} | --{} | {} | {} |\n", p.name, o.option, o.value, o.source);
  return s;
}

}  // namespace wn::gan
