#include "engine/random.h"

#include <cmath>
#include <sstream>
#include <vector>

namespace wn {

double Generator::uniform() { return double(eng_() >> 11) * (1.0 / 9007199254740992.0); }

double Generator::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  double u1 = uniform(), u2 = uniform();
  while (u1 <= 0.0) u1 = uniform();
  const double r = std::sqrt(-2.0 * std::log(u1)), th = 2.0 * M_PI * u2;
  spare_ = r * std::sin(th);
  has_spare_ = true;
  return r * std::cos(th);
}

uint64_t Generator::below(uint64_t n) {
  // Rejection sampling keeps it unbiased.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t v;
  do v = eng_();
  while (v >= limit);
  return v % n;
}

std::string Generator::state() const {
  std::ostringstream os;
  os.precision(17);
  os << eng_ << ' ' << has_spare_ << ' ' << spare_;
  return os.str();
}

void Generator::set_state(const std::string& s) {
  std::istringstream is(s);
  is >> eng_ >> has_spare_ >> spare_;
  if (!is) throw std::invalid_argument("random generator state is malformed");
}

Tensor randn(const Shape& shape, Generator& gen, double std, DType dtype, Device device) {
  std::vector<double> v(static_cast<size_t>(shape.numel()));
  for (double& x : v) x = gen.normal() * std;
  return Tensor::from_vector(v, shape, dtype, device);
}

Tensor rand_uniform(const Shape& shape, Generator& gen, double lo, double hi, DType dtype, Device device) {
  std::vector<double> v(static_cast<size_t>(shape.numel()));
  for (double& x : v) x = lo + (hi - lo) * gen.uniform();
  return Tensor::from_vector(v, shape, dtype, device);
}

}  // namespace wn
