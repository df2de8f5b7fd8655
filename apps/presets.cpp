// `--preset NAME` for train and study, and `wngan presets`: the paper's experiments as
// named configurations (gan/presets.h).
#include <algorithm>
#include <memory>

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
  const gan::Preset& p = gan::find_preset(preset);
  // A preset's protocol and rates belong to its architecture: another --arch would mix them.
  for (const auto& o : p.options)
    if (o.option == "arch")
      if (CLI::Option* arch = cmd->get_option_no_throw("--arch"); arch && arch->count() > 0 && arch->as<std::string>() != o.value)
        throw std::invalid_argument(fmt::format("--preset {} is for --arch {} (its rates and protocol are that "
                                                "architecture's); --arch {} cannot go with it",
                                                preset, o.value, arch->as<std::string>()));
  for (const auto& o : p.options) set_unless_given(cmd, o);
}

void apply_arch_defaults(CLI::App* cmd, const std::string& arch) {
  for (const auto& o : gan::arch_defaults(gan::parse_arch(arch))) set_unless_given(cmd, o);
}

void add_presets(CLI::App& app) {
  auto* cmd = app.add_subcommand("presets", "List the paper's experiments as presets; `wngan presets NAME` shows one");
  auto name = std::make_shared<std::string>();
  cmd->add_option("name", *name, "A preset to show with every option it sets and where each value comes from");
  cmd->callback([name]() {
    if (name->empty()) {
      size_t w = 0;
      for (const auto& p : gan::presets()) w = std::max(w, p.name.size());
      for (const auto& p : gan::presets()) {
        std::string d = p.description;
        if (const auto cut = d.find(" ("); cut != std::string::npos && cut > 20) d = d.substr(0, cut);
        fmt::print("  {:<{}}  {}\n", p.name, w, d);
      }
      fmt::print("\n`wngan presets NAME` shows a preset's options; use one with `wngan train|study --preset NAME`.\n");
      return;
    }
    const gan::Preset& p = gan::find_preset(*name);  // an unknown name lists the valid ones
    fmt::print("{}: {}\n\n  {:<14} {:<24} {}\n", p.name, p.description, "option", "value", "source");
    for (const auto& o : p.options) fmt::print("  --{:<12} {:<24} {}\n", o.option, o.value, o.source);
    fmt::print("\nSources: paper = the paper's text; authors' code / README = their repository; ours = wngan's choice "
               "where neither gives one.\nOptions given on the command line override the preset's.\n");
    if (p.options.end() == std::find_if(p.options.begin(), p.options.end(),
                                        [](const gan::PresetOption& o) { return o.option == "data"; }))
      fmt::print("The data set is yours to give: --data KIND:DIR (docs/cli.md).\n");
  });
}

}  // namespace wn::app
