// `wngan gradcheck`: runs the built-in gradient checks (all, a family or one op) and prints
// a table, the worst element of each failure, and optionally the second-order checks and
// a JSON report; exits non-zero on any failure.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "engine/gradcheck_suite.h"
#include "engine/parallel.h"
#include "nn/checkpoint.h"
#include "nn/gradcheck_suite.h"

namespace wn::app {

namespace {

using nlohmann::ordered_json;

// A number for JSON: null when infinite or NaN (JSON has neither).
ordered_json number(double v) { return std::isfinite(v) ? ordered_json(v) : ordered_json(nullptr); }

ordered_json element_json(const GradcheckElement& e) {
  if (e.input < 0) return nullptr;
  return {{"input", e.input},         {"name", e.name},           {"flat_index", e.flat},
          {"index", e.index},         {"analytic", number(e.analytic)}, {"numeric", number(e.numeric)},
          {"abs_error", number(e.abs_error)}, {"rel_error", number(e.rel_error)}};
}

ordered_json result_json(const GradcheckResult& r) {
  ordered_json j{{"passed", r.passed},
                 {"max_rel_error", number(r.max_rel_error)},
                 {"accumulates", r.accumulates},
                 {"worst", element_json(r.worst_element)},
                 {"worst_text", r.worst}};
  if (!r.supported) {
    j["supported"] = false;
    j["unsupported_op"] = r.unsupported_op;
  }
  return j;
}

}  // namespace

void add_gradcheck(CLI::App& app) {
  struct Opts {
    std::string family, op, json;
    double tol = 0;
    bool second_order = false;
    int threads = 0;
  };
  auto o = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("gradcheck", "Check every op's and module's backward against central differences (float64)");
  cmd->add_option("--family", o->family, "Only this family (elementwise, conv, batch_norm, ..., nn; an unknown one lists them)");
  cmd->add_option("--op", o->op, "Only the cases of this op or module (conv2d, sigmoid, Linear, ...; an unknown one lists them)");
  cmd->add_option("--tol", o->tol, "Tolerance on the max relative error, instead of each case's own (1e-6)")
      ->check(above(0, 1));
  cmd->add_flag("--second-order", o->second_order,
                "Also check the backward of the backward (gradgradcheck) where the ops have a double backward");
  cmd->add_option("--json", o->json, "Also write every case's result as JSON to this file")->check(output_file());
  cmd->add_option("--threads", o->threads, "Worker threads (default: all cores)");
  cmd->callback([o]() {
    if (o->threads > 0) set_num_threads(o->threads);
    std::vector<GradcheckCase> all = engine_gradcheck_cases();
    for (auto& c : nn::nn_gradcheck_cases()) all.push_back(std::move(c));
    const std::vector<GradcheckCase> cases = select_cases(std::move(all), o->family, o->op);
    int pass = 0, fail = 0, pass2 = 0, fail2 = 0, na2 = 0;
    const int width = o->second_order ? 118 : 108;
    fmt::print("{:<12} {:<20} {:<52} {:>14}  {:<6}{}\n", "family", "op", "shape", "max rel err", "result",
               o->second_order ? "  2nd order" : "");
    fmt::print("{}\n", std::string(width, '-'));
    ordered_json report = ordered_json::array();
    for (const GradcheckCase& c : cases) {
      GradcheckOptions opt = c.options;
      if (o->tol > 0) opt.tolerance = o->tol;
      const GradcheckResult r = c.check(opt);
      ordered_json j{{"family", c.family}, {"name", c.name}, {"shape", c.shape}, {"tolerance", opt.tolerance}};
      j.update(result_json(r));
      std::string second;
      GradcheckResult r2;
      if (o->second_order) {
        r2 = c.run_second_order(opt);
        second = !r2.supported ? "n/a" : r2.passed ? "pass" : "FAIL";
        (!r2.supported ? na2 : r2.passed ? pass2 : fail2)++;
        j["second_order"] = result_json(r2);
      }
      fmt::print("{:<12} {:<20} {:<52} {:>14.3e}  {}{}\n", c.family, c.name, c.shape, r.max_rel_error,
                 r.passed ? "pass" : "FAIL", second.empty() ? "" : "    " + second);
      if (!r.passed) fmt::print("    worst: {}\n", r.worst);
      if (o->second_order && r2.supported && !r2.passed) fmt::print("    2nd order worst: {}\n", r2.worst);
      (r.passed ? pass : fail)++;
      report.push_back(std::move(j));
    }
    fmt::print("{}\n{} passed, {} failed\n", std::string(width, '-'), pass, fail);
    if (o->second_order)
      fmt::print("second order: {} passed, {} failed, {} not supported (an op without a double backward)\n", pass2,
                 fail2, na2);
    if (!o->json.empty()) {
      ordered_json doc{{"passed", pass}, {"failed", fail}};
      if (o->second_order)
        doc["second_order"] = {{"passed", pass2}, {"failed", fail2}, {"not_supported", na2}};
      doc["cases"] = std::move(report);
      nn::write_file_atomic(o->json, doc.dump(1) + "\n");
      fmt::print("wrote {}\n", o->json);
    }
    if (fail || fail2)
      throw std::runtime_error(fmt::format("{} gradient check(s) failed", fail + fail2));
  });
}

}  // namespace wn::app
