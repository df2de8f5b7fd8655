// `wngan gradcheck`: runs every gradient check and prints a table; exits non-zero on
// any failure.
#include <cstdio>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "apps/commands.h"
#include "engine/gradcheck_suite.h"
#include "engine/parallel.h"
#include "nn/gradcheck_suite.h"

namespace wn::app {

void add_gradcheck(CLI::App& app) {
  struct Opts {
    std::string family;
    int threads = 0;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("gradcheck", "Check every op's and module's backward against central differences (float64)");
  cmd->add_option("--family", o->family, "Only this family (elementwise, conv, batch_norm, ..., nn)");
  cmd->add_option("--threads", o->threads, "Worker threads (default: all cores)");
  cmd->callback([o]() {
    if (o->threads > 0) set_num_threads(o->threads);
    int pass = 0, fail = 0;
    fmt::print("{:<12} {:<20} {:<52} {:>14}  {}\n", "family", "op", "shape", "max rel err", "result");
    fmt::print("{}\n", std::string(108, '-'));
    std::vector<GradcheckCase> cases = engine_gradcheck_cases();
    for (auto& c : nn::nn_gradcheck_cases()) cases.push_back(std::move(c));
    for (auto& c : cases) {
      if (!o->family.empty() && c.family != o->family) continue;
      GradcheckResult r = c.run();
      fmt::print("{:<12} {:<20} {:<52} {:>14.3e}  {}\n", c.family, c.name, c.shape, r.max_rel_error,
                 r.passed ? "pass" : "FAIL");
      if (!r.passed) fmt::print("    worst: {}\n", r.worst);
      (r.passed ? pass : fail)++;
    }
    fmt::print("{}\n{} passed, {} failed\n", std::string(108, '-'), pass, fail);
    if (pass + fail == 0) throw std::runtime_error("no gradient check matches --family " + o->family);
    if (fail) throw std::runtime_error(fmt::format("{} gradient check(s) failed", fail));
  });
}

}  // namespace wn::app
