// Helpers for the tests that train and run commands: a generated MNIST-format data set,
// a tiny training configuration and the program's command line.
#pragma once
#include <string>
#include <vector>

#include "apps/commands.h"
#include "gan/trainer.h"
#include "helpers.h"

namespace wn::test {

// Writes n_train + n_test 28x28 images (pixel(i, p)) as MNIST's two IDX files in dir;
// returns the --data value for them.
template <class F>
std::string write_mnist(const std::string& dir, uint32_t n_train, uint32_t n_test, F pixel) {
  write_idx(dir + "/train-images-idx3-ubyte", n_train, pixel);
  write_idx(dir + "/t10k-images-idx3-ubyte", n_test, pixel);
  return "mnist:" + dir;
}

// A small DCGAN run on `data` into `out`: image size and channels from the data set,
// no sample grids or running tests unless a test sets them.
inline gan::TrainConfig tiny_config(const std::string& data, const std::string& out, int64_t nf, int64_t code,
                                    int64_t batch, int64_t final_test, int64_t running_test) {
  gan::TrainConfig c;
  c.data = data;
  c.out = out;
  c.model.nf = nf;
  c.model.code = code;
  c.model.channels = c.model.height = c.model.width = 0;
  c.batch = batch;
  c.final_test = final_test;
  c.running_test = running_test;
  c.sample_every = c.test_every = 0;
  return c;
}

// Runs `wngan ARGS...` through the same command line as the program (throws what it throws).
inline void run_cli(const std::vector<std::string>& args) {
  CLI::App app;
  app.require_subcommand(1);
  app::add_gradcheck(app);
  app::add_train(app);
  app::add_eval(app);
  app::add_study(app);
  app::add_inspect(app);
  app::add_sample(app);
  app::add_split(app);
  app::add_bench(app);
  app::add_summary(app);
  app::add_presets(app);
  std::vector<const char*> argv{"wngan"};
  for (auto& a : args) argv.push_back(a.c_str());
  app.parse(static_cast<int>(argv.size()), argv.data());
}

// The same, returning the error text ("" when it succeeds).
inline std::string cli_error(const std::vector<std::string>& args) {
  try {
    run_cli(args);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace wn::test
