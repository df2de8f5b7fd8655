// Test helpers: run a family's gradient checks, and compare tensors with references.
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/gradcheck_suite.h"

namespace wn::test {

// Runs every gradient check of one op family and checks each passes.
inline int check_gradcheck_family(const std::string& family) {
  int n = 0;
  for (auto& c : engine_gradcheck_cases()) {
    if (c.family != family) continue;
    GradcheckResult r = c.run();
    INFO(c.name << " " << c.shape << ": " << r.worst);
    CHECK_MESSAGE(r.passed, c.name << " " << c.shape << " max rel error " << r.max_rel_error);
    ++n;
  }
  CHECK(n > 0);
  return n;
}

// Max |a - b| over all elements (shapes must match).
inline double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}
inline double max_abs_diff(const Tensor& a, const Tensor& b) { return max_abs_diff(a.to_vector(), b.to_vector()); }

// A float64 tensor with values uniform in [lo, hi).
inline Tensor rnd(const Shape& s, uint64_t seed, double lo = -1, double hi = 1, DType dt = DType::F64) {
  Generator g(seed);
  return rand_uniform(s, g, lo, hi, dt);
}

}  // namespace wn::test
