// One harness that runs every gradient-check case (engine ops and nn modules) on every
// backend this build and machine have: each case's forward and backward in float32 on
// each backend, against the float64 CPU run of the same case (the one the finite
// differences verify). On a CPU-only machine that is CPU float32 against CPU float64.
#pragma once
#include <string>
#include <vector>

#include "engine/gradcheck_suite.h"

namespace wn {

// The output and every checked gradient of one forward and backward, as doubles.
struct CaseRun {
  std::vector<double> y;
  std::vector<std::vector<double>> grads;
};

// A backend and the element type a case runs in there.
struct CheckTarget {
  Device device = kCPU;
  DType dtype = DType::F32;
  std::string str() const;
};

// The upstream gradient every run of a case uses: seeded float64 normals, converted.
Tensor case_upstream(const Shape& shape, DType dtype, Device device);

// Runs a case with its inputs converted to (device, dtype): its own run_on when it has
// one (modules), otherwise its fn on converted copies of its inputs.
CaseRun run_case_on(const GradcheckCase& c, Device device, DType dtype);

// CPU float32, and float32 on every CUDA device present.
std::vector<CheckTarget> check_targets();

// How far a run is from the reference: max over tensors of max |a - b| / max(max |ref|,
// floor), and which tensor was worst ("y" or "grad k").
struct CaseDiff {
  double rel = 0;
  std::string worst;
};
CaseDiff compare_runs(const CaseRun& ref, const CaseRun& run, double floor = 1e-6);

}  // namespace wn
