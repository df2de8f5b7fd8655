// The engine's gradient checks as a list of named cases, shared by the test suite
// and `wngan gradcheck` (which prints them as a table).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "engine/gradcheck.h"

namespace wn {

struct CaseRun;  // engine/gradcheck_backends.h

struct GradcheckCase {
  std::string family;  // op family (file name under engine/ops or nn/)
  std::string name;    // op or module, with its variant
  std::string shape;   // input shapes and settings, for the table
  // The finite-difference check with given options (options, below, holds the case's own).
  std::function<GradcheckResult(const GradcheckOptions&)> check;
  // The checked function and its float64 CPU inputs (those without requires_grad are
  // constants), so other checks (e.g. CPU / CUDA parity) can reuse the case.
  std::function<Tensor(const std::vector<Tensor>&)> fn;
  std::vector<Tensor> inputs;
  // Cases whose checked tensors are not fn's inputs (a module's parameters): forward and
  // backward with everything converted to (device, dtype), as run_case_on
  // (engine/gradcheck_backends.h) returns it; the case is left as it was.
  std::function<CaseRun(Device, DType)> run_on = nullptr;
  GradcheckOptions options = GradcheckOptions();  // the case's tolerance (the scaled rule) and step

  // The check with the case's own options.
  GradcheckResult run() const { return check(options); }
  // The second-order check (gradgradcheck) with these options: for cases given as fn and
  // inputs; a module case reports itself unsupported.
  GradcheckResult run_second_order(const GradcheckOptions& opt) const;
};

// The names of the families and of the ops (or modules) in a list of cases, sorted, once each.
std::vector<std::string> case_families(const std::vector<GradcheckCase>& cases);
std::vector<std::string> case_names(const std::vector<GradcheckCase>& cases, const std::string& family = "");
// The cases of `family` named `op` (each filter off when empty); throws std::invalid_argument
// listing the valid families, or the valid ops (of that family), when one is unknown.
std::vector<GradcheckCase> select_cases(std::vector<GradcheckCase> cases, const std::string& family,
                                        const std::string& op);

// A float64 leaf requiring a gradient with |x| in [0.1, 1.5) and random signs: keeps
// finite differences off the kink at 0 of (T)PReLU, ReLU and clamp.
Tensor off_zero_leaf(const Shape& s, uint64_t seed);

// Every engine operator at several shapes (batch 1 and > 1, odd sizes, strides 1 and
// 2, paddings 0/1/2, rectangular images and kernels).
std::vector<GradcheckCase> engine_gradcheck_cases();

}  // namespace wn
