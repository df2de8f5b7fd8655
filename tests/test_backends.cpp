// The one harness over backends: every gradient-check case, engine ops and nn modules,
// run forward and backward in float32 on every backend present, against the float64 CPU
// run that the finite differences verify. On a CPU-only machine: CPU float32 against CPU
// float64, so the float32 kernels the GPU is compared with are themselves checked.
#include "engine/backend/backend.h"
#include "engine/gradcheck_backends.h"
#include "helpers.h"
#include "nn/gradcheck_suite.h"

using namespace wn;

namespace {

std::vector<GradcheckCase> all_cases() {
  std::vector<GradcheckCase> cases = engine_gradcheck_cases();
  for (auto& c : nn::nn_gradcheck_cases()) cases.push_back(std::move(c));
  return cases;
}

}  // namespace

TEST_CASE("every gradcheck case gives the float64 CPU results on every backend in float32") {
  const std::vector<CheckTarget> targets = check_targets();
  REQUIRE(!targets.empty());
  CHECK(targets[0].device == kCPU);
  int n = 0;
  for (const GradcheckCase& c : all_cases()) {
    const CaseRun ref = run_case_on(c, kCPU, DType::F64);
    for (const CheckTarget& t : targets) {
      const CaseDiff d = compare_runs(ref, run_case_on(c, t.device, t.dtype));
      INFO(c.family << " " << c.name << " " << c.shape << " on " << t.str() << ": worst " << d.worst);
      CHECK(d.rel < 1e-4);
      ++n;
    }
  }
  CHECK(n >= 100);
}

TEST_CASE("a module case run on another dtype leaves the module's float64 state as it was") {
  for (const GradcheckCase& c : nn::nn_gradcheck_cases()) {
    if (c.name != "BatchNorm") continue;  // its training forward also moves the running statistics
    const CaseRun a = run_case_on(c, kCPU, DType::F64);
    run_case_on(c, kCPU, DType::F32);
    const CaseRun b = run_case_on(c, kCPU, DType::F64);
    CHECK(a.y == b.y);
    CHECK(a.grads == b.grads);
    GradcheckResult r = c.run();
    CHECK(r.passed);
  }
}

TEST_CASE("compare_runs names the worst tensor and catches NaN and shape mismatches") {
  CaseRun ref{{1.0, -2.0}, {{0.5, 0.5}, {4.0}}};
  CaseRun run{{1.0, -2.0}, {{0.5, 0.5}, {4.2}}};
  CaseDiff d = compare_runs(ref, run);
  CHECK(d.worst == "grad 1");
  CHECK(d.rel == doctest::Approx(0.2 / 4.0));
  run.y[0] = NAN;
  CHECK(std::isinf(compare_runs(ref, run).rel));
  run = ref;
  run.grads.pop_back();
  CHECK(std::isinf(compare_runs(ref, run).rel));
}
