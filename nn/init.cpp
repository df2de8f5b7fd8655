#include "nn/init.h"

#include <cmath>

namespace wn::nn {

Tensor default_uniform(const Shape& shape, int64_t fan_in, Generator& gen, double scale) {
  const double bound = fan_in > 0 ? scale / std::sqrt(double(fan_in)) : 0.0;
  return rand_uniform(shape, gen, -bound, bound);
}

int64_t fan_in_of(const Shape& s, bool transposed) {
  int64_t f = transposed ? s[0] : s.rank() > 1 ? s[1] : 1;
  for (int i = 2; i < s.rank(); ++i) f *= s[i];
  return f;
}

}  // namespace wn::nn
