// The wngan subcommands: each file under apps/ registers one with the CLI.
#pragma once
#include <CLI/CLI.hpp>
#include <string>

#include "gan/models.h"

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

// Adds `wngan gradcheck`.
void add_gradcheck(CLI::App& app);
// Adds `wngan train`.
void add_train(CLI::App& app);
// Adds `wngan sample` and `wngan split`.
void add_sample(CLI::App& app);
void add_split(CLI::App& app);
// Adds `wngan summary`.
void add_summary(CLI::App& app);
// Adds `wngan bench`.
void add_bench(CLI::App& app);

}  // namespace wn::app
