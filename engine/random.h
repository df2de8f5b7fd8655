// Reproducible random numbers: a seeded generator whose state can be saved and
// restored, and random tensors drawn from it on the host.
#pragma once
#include <cstdint>
#include <random>
#include <string>

#include "engine/tensor.h"

namespace wn {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : eng_(seed) {}
  // Uniform in [0, 1).
  double uniform();
  // Standard normal (Box-Muller, so the stream is the same on every platform).
  double normal();
  // Uniform integer in [0, n).
  uint64_t below(uint64_t n);
  // The full state as text, and back.
  std::string state() const;
  void set_state(const std::string& s);

 private:
  std::mt19937_64 eng_;
  bool has_spare_ = false;
  double spare_ = 0;
};

// Tensor of standard normal values times std.
Tensor randn(const Shape& shape, Generator& gen, double std = 1.0, DType dtype = DType::F32, Device device = kCPU);
// Tensor of values uniform in [lo, hi).
Tensor rand_uniform(const Shape& shape, Generator& gen, double lo, double hi, DType dtype = DType::F32,
                    Device device = kCPU);

}  // namespace wn
