// The paper's experiments as named configurations (`--preset NAME` on train and study):
// data-independent options with where each value comes from, and the options an
// architecture implies when they are not given (the authors' ResNet code trains
// differently from their DCGAN code).
#pragma once
#include <string>
#include <vector>

#include "gan/models.h"

namespace wn::gan {

// One option of a preset: the command-line name without "--", its value, and its source
// ("paper", "authors' code", "authors' README" or "ours") with a short note.
struct PresetOption {
  std::string option, value, source;
};

struct Preset {
  std::string name, description;
  std::vector<PresetOption> options;
};

// Every preset, in the order the README lists them.
const std::vector<Preset>& presets();
// The preset of that name; an unknown name is an error listing the valid ones.
const Preset& find_preset(const std::string& name);
// Options an architecture implies when neither the user nor a preset set them:
// "resnet" -> lr 2e-5, rms-eps 1e-8, protocol simultaneous (the authors' ResNet code);
// "dcgan" -> none (the defaults are the paper's DCGAN protocol).
std::vector<PresetOption> arch_defaults(Arch arch);
// The presets as a Markdown table (preset, option, value, source), for the README and
// `wngan presets`.
std::string presets_markdown();

}  // namespace wn::gan
