// wngan: batch and weight normalization in GANs, the command line.
#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>

#include "apps/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"wngan: the effects of batch and weight normalization in GANs"};
  app.require_subcommand(1);
  wn::app::add_gradcheck(app);
  wn::app::add_train(app);
  wn::app::add_eval(app);
  wn::app::add_study(app);
  wn::app::add_inspect(app);
  wn::app::add_sample(app);
  wn::app::add_split(app);
  wn::app::add_summary(app);
  wn::app::add_bench(app);
  wn::app::add_presets(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "wngan: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
