// Test helpers: run a family's gradient checks, and compare tensors with references.
#pragma once
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
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

// A fresh empty folder under the system's temporary folder, unique to this process.
inline std::string temp_dir(const std::string& tag) {
  std::filesystem::path d =
      std::filesystem::temp_directory_path() / ("wngan_test_" + tag + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d.string();
}

// A 32-bit big-endian integer, as IDX files store them.
inline std::string be32(uint32_t v) {
  return std::string{char(v >> 24), char((v >> 16) & 0xff), char((v >> 8) & 0xff), char(v & 0xff)};
}

// Writes an IDX image file of n 28x28 images, pixel (i, p) = pixel(i, p).
template <class F>
void write_idx(const std::string& path, uint32_t n, F pixel, uint32_t magic = 0x803) {
  std::string s = be32(magic) + be32(n) + be32(28) + be32(28);
  for (uint32_t i = 0; i < n; ++i)
    for (int p = 0; p < 784; ++p) s += char(pixel(i, p));
  std::ofstream(path, std::ios::binary) << s;
}

}  // namespace wn::test
