// The wngan subcommands: each file under apps/ registers one with the CLI.
#pragma once
#include <CLI/CLI.hpp>

namespace wn::app {

// Adds `wngan gradcheck`.
void add_gradcheck(CLI::App& app);
// Adds `wngan bench`.
void add_bench(CLI::App& app);

}  // namespace wn::app
