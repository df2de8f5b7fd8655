// Gradient checks for anyone's ops and modules (docs/gradcheck.md has a worked example):
// central differences in float64 against the engine's backward, with the output
// projected on a random upstream gradient (never all ones), like torch.autograd.gradcheck.
//
//   GradcheckResult r = gradcheck([](const std::vector<Tensor>& in) { return my_op(in[0], in[1]); },
//                                 {x.set_requires_grad(), w.set_requires_grad()});
//   if (!r.passed) fmt::print("{}\n", r.worst);  // which element, analytic vs numeric
//
// Inputs must be float64 CPU tensors; those with requires_grad are checked, the others are
// constants. A module w.r.t. its inputs and parameters: nn::gradcheck_module (nn/gradcheck.h),
// which converts the module to float64 for the check and back. Second order:
// gradgradcheck, for ops whose backward the engine can differentiate (autograd.h).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace wn {

struct GradcheckOptions {
  double eps = 1e-6;  // finite-difference step (central differences)
  // Element-wise rule (torch's): pass when |analytic - numeric| <= atol + rtol * |numeric|
  // for every element of every checked tensor.
  double atol = 1e-5;
  double rtol = 1e-3;
  // When >= 0, the scaled rule instead: pass when max_rel_error <= tolerance (what the
  // built-in cases and `wngan gradcheck --tol` use; stricter for well-scaled gradients).
  double tolerance = -1;
  uint64_t seed = 1234;            // of the upstream gradient: randn(output shape, Generator(seed))
  bool check_accumulation = true;  // also check that a second backward adds to grad
  // Names of the checked tensors for reports, in the order given (default "input k").
  std::vector<std::string> names;
};

// One element of one checked tensor: where it is and how its two gradients differ.
struct GradcheckElement {
  int input = -1;                // position in the tensors given (-1: none was checked)
  std::string name;              // "input 0", or the name given in GradcheckOptions::names
  int64_t flat = -1;             // row-major position in that tensor
  std::vector<int64_t> index;    // the same as one index per dimension
  double analytic = 0;           // the engine's backward
  double numeric = 0;            // central differences
  double abs_error = 0;          // |analytic - numeric|
  double rel_error = 0;          // abs_error / |numeric| (inf when numeric is 0 and they differ)
  // "input 0 element 5 [1, 2]: analytic 0.25, numeric 0.5 (abs error 0.25, rel error 0.5)".
  std::string str() const;
};

struct GradcheckResult {
  // max |analytic - numeric| / max(|numeric|_inf, |analytic|_inf, 1e-6) per tensor, over
  // all checked tensors: one well-scaled figure for tables.
  double max_rel_error = 0;
  bool passed = false;
  bool accumulates = true;  // a second backward added the same gradient again
  // The worst element under the rule in force (the scaled one with tolerance >= 0,
  // otherwise the largest |a - n| / (atol + rtol |n|)); reported whether or not it passed.
  GradcheckElement worst_element;
  std::string worst;  // worst_element.str(), or what else failed (accumulation, no double backward)
  // gradgradcheck only: false when an op on the way has no double backward (then
  // unsupported_op names it and passed is false: nothing was verified).
  bool supported = true;
  std::string unsupported_op;
};

// Checks f's backward w.r.t. every input with requires_grad, on copies (the caller's
// tensors are left as they were). f maps float64 CPU inputs to one output of any shape.
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& opt = {});

// The same check for tensors that f reaches by itself (a module's parameters and its
// input): each leaf is perturbed in place and restored; their gradients are cleared.
GradcheckResult gradcheck_leaves(const std::function<Tensor()>& f, const std::vector<Tensor>& leaves,
                                 const GradcheckOptions& opt = {});

// Second order: checks the backward of f's backward, as torch.autograd.gradgradcheck.
// With u a random upstream gradient and v_k fixed random tensors, it runs gradcheck on
// S(inputs, u) = sum_k <v_k, dL/dx_k> where L = <u, f(inputs)> and the dL/dx_k come from
// grad(..., create_graph = true); so it checks both how the gradients depend on the
// inputs (second derivatives) and on u. When an op of f has no double backward the
// result says so (supported false, unsupported_op) instead of checking anything.
GradcheckResult gradgradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                              const std::vector<Tensor>& inputs, const GradcheckOptions& opt = {});

}  // namespace wn
