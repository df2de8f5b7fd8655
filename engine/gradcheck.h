// A reusable gradient check: central differences in float64 against the engine's
// backward, with the output projected on a random upstream gradient (never all ones).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace wn {

struct GradcheckResult {
  double max_rel_error = 0;  // max |analytic - numeric| / max(|numeric|_inf, floor), over all inputs
  bool passed = false;
  std::string worst;         // which input and element was worst
};

struct GradcheckOptions {
  double eps = 1e-6;        // finite-difference step
  double tolerance = 1e-6;  // pass when max_rel_error <= tolerance
  uint64_t seed = 1234;     // for the upstream gradient
  bool check_accumulation = true;  // also check that a second backward adds to grad
};

// f maps float64 inputs to one output. Every input with requires_grad is checked
// (on copies: the caller's tensors are left as they were).
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& opt = {});

// The same check for tensors that f reaches by itself (a module's parameters and its
// input): each leaf is perturbed in place and restored; their gradients are cleared.
GradcheckResult gradcheck_leaves(const std::function<Tensor()>& f, const std::vector<Tensor>& leaves,
                                 const GradcheckOptions& opt = {});

}  // namespace wn
