// `--preset NAME` for train and study, and `wngan presets`: the paper's experiments as
// named configurations (gan/presets.h).
#include <fmt/format.h>

#include "apps/commands.h"
#include "gan/presets.h"

namespace wn::app {

namespace {
// Sets an option of cmd to value as if it had been given, unless it was given; options
// the command does not have are skipped (e.g. --seeds on train).
void set_unless_given(CLI::App* cmd, const gan::PresetOption& o) {
  CLI::Option* opt = cmd->get_option_no_throw("--" + o.option);
  if (!opt || opt->count() > 0) return;
  opt->add_result(o.value);
  opt->run_callback();
}
}  // namespace

void add_preset_option(CLI::App* cmd, std::string& preset) {
  std::string names;
  for (const auto& p : gan::presets()) names += (names.empty() ? "" : ", ") + p.name;
  cmd->add_option("--preset", preset,
                  fmt::format("One of the paper's experiments ({}); explicit options override it; `wngan presets` "
                              "lists what each sets",
                              names));
}

void apply_preset(CLI::App* cmd, const std::string& preset) {
  if (preset.empty()) return;
  for (const auto& o : gan::find_preset(preset).options) set_unless_given(cmd, o);
}

void apply_arch_defaults(CLI::App* cmd, const std::string& arch) {
  for (const auto& o : gan::arch_defaults(gan::parse_arch(arch))) set_unless_given(cmd, o);
}

void add_presets(CLI::App& app) {
  auto* cmd = app.add_subcommand("presets", "List the presets of the paper's experiments and what each option is set to");
  cmd->callback([]() {
    for (const auto& p : gan::presets()) fmt::print("{}: {}\n", p.name, p.description);
    fmt::print("\n{}", gan::presets_markdown());
    fmt::print("\nWithout a preset, --arch resnet implies:");
    for (const auto& o : gan::arch_defaults(gan::Arch::ResNet)) fmt::print(" --{} {}", o.option, o.value);
    fmt::print(" (the authors' ResNet code)\n");
  });
}

}  // namespace wn::app
