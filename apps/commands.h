// The wngan subcommands: each file under apps/ registers one with the CLI.
#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <utility>
#include <vector>

#include <functional>

#include "engine/tensor.h"
#include "gan/models.h"
#include "nn/module.h"

namespace wn::app {

// The options that choose a model, shared by the commands that build one.
struct ModelOptions {
  std::string arch = "dcgan", norm = "weight", image_size = "28", features;
  int64_t channels = 1, nf = 64, code = 128, nlayer = 0, blocks = 2;
  // The architecture these options describe; throws on malformed values.
  gan::ModelConfig config() const;
  // Options whose image size and channels are left to the data set (train, study).
  static ModelOptions sized_by_data() {
    ModelOptions m;
    m.image_size = "";
    m.channels = 0;
    return m;
  }
};
// Adds --arch, --norm, --channels, --image-size, --nf, --code, --nlayer, --features, --blocks.
void add_model_options(CLI::App* cmd, ModelOptions& m);
// "S" -> (S, S), "HxW" -> (H, W), each >= 0; errors name the option.
std::pair<int64_t, int64_t> parse_size(const std::string& s, const std::string& option);

// Value checks with short messages: in [lo, hi], >= lo, > lo (finite), a non-empty string.
CLI::Validator in_range(double lo, double hi);
CLI::Validator at_least(double lo);
CLI::Validator above(double lo, double hi);
CLI::Validator non_empty();
// A seed: a whole number from 0 to 2^63 - 1 (what a run's config.json can hold).
CLI::Validator seed_value();
// A file to write: a non-empty path that is not a folder, in a folder that exists.
CLI::Validator output_file();
// Adds an option whose default --help shows and whose values the check accepts.
template <class T>
CLI::Option* add_checked(CLI::App* cmd, const std::string& name, T& value, const std::string& help,
                         const CLI::Validator& check) {
  return cmd->add_option(name, value, help)->capture_default_str()->check(check);
}

// Refuses, before anything is written, two output options naming the same file, or an
// output file inside out_dir whose name starts with one of the prefixes of the files the
// command writes there. files: (option, path) pairs, empty paths ignored.
void check_distinct_outputs(const std::vector<std::pair<std::string, std::string>>& files, const std::string& out_dir,
                            const std::vector<std::string>& out_prefixes);

// Refuses an output path that is one of the command's inputs, a run's own file
// (config.json, split.json, metrics.csv, grad_trace.csv, eval.csv beside a config.json),
// a file among a run's checkpoints, or an existing file of the data set's folder (data_spec: --data).
void check_not_input(const std::string& option, const std::string& path, const std::vector<std::string>& inputs,
                     const std::string& data_spec);

// Puts each named option of cmd into its help group ("Data", "Model", ...), in this order.
void group_options(CLI::App* cmd, const std::vector<std::pair<std::string, std::vector<std::string>>>& groups);

// Adds --max-image-pixels (the decoded-image limit of gan/data.h), applied when parsed.
void add_max_pixels_option(CLI::App* cmd);

// Adds `wngan gradcheck`.
void add_gradcheck(CLI::App& app);
// Adds `wngan eval`.
void add_eval(CLI::App& app);
// Adds `wngan inspect`.
void add_inspect(CLI::App& app);
// Adds `wngan study`.
void add_study(CLI::App& app);
// Adds `wngan train`.
void add_train(CLI::App& app);
// Adds `wngan sample` and `wngan split`.
void add_sample(CLI::App& app);
void add_split(CLI::App& app);
// Adds `wngan summary`.
void add_summary(CLI::App& app);
// Adds `wngan bench`.
void add_bench(CLI::App& app);
// Adds `--preset NAME` to a command.
void add_preset_option(CLI::App* cmd, std::string& preset);
// Sets the options of a preset that were not given on the command line (none if empty).
void apply_preset(CLI::App* cmd, const std::string& preset);
// Sets the options an architecture ("dcgan" | "resnet") implies (gan::arch_defaults) that were not given.
void apply_arch_defaults(CLI::App* cmd, const std::string& arch);
// Adds `wngan presets`.
void add_presets(CLI::App& app);

}  // namespace wn::app
