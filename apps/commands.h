// The wngan subcommands: each file under apps/ registers one with the CLI.
#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <utility>

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

// Adds --max-image-pixels (the decoded-image limit of gan/data.h), applied when parsed.
void add_max_pixels_option(CLI::App* cmd);

// Adds `wngan gradcheck`.
void add_gradcheck(CLI::App& app);
// What `wngan eval` (and the study) measures.
struct EvalRequest {
  std::string run, checkpoint = "best", split, device = "cpu";
  int64_t n = 2000, steps = 1000, batch = 500;
  bool verbose = true;
};
struct EvalResult {
  double test_loss = 0, train_loss = 0, seconds = 0;
  int64_t iteration = -1, n = 0;
  std::string per_image_csv, pairs_png;
  std::string first_file;  // safetensors: "targets" and "reconstructions" of the first (up to) 16 images
};
// Reconstructs a run's final-test images (and as many training images) with a
// checkpoint; writes per-image losses, a pairs PNG and a row of RUN/eval.csv.
EvalResult evaluate_run(const EvalRequest& r);
// Adds `wngan eval`.
void add_eval(CLI::App& app);
// The running reconstruction test used by train and study (code length, RMSProp steps).
std::function<double(nn::Module&, const Tensor&)> running_test_hook(int64_t code, int64_t steps);
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
// Sets the options an architecture implies (gan::arch_defaults) that were not given.
void apply_arch_defaults(CLI::App* cmd, const std::string& arch);
// Adds `wngan presets`.
void add_presets(CLI::App& app);

}  // namespace wn::app
