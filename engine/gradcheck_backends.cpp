#include "engine/gradcheck_backends.h"

#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "engine/backend/backend.h"
#include "engine/random.h"

namespace wn {

std::string CheckTarget::str() const { return fmt::format("{} {}", device.str(), dtype_name(dtype)); }

Tensor case_upstream(const Shape& shape, DType dtype, Device device) {
  Generator g(99);
  return randn(shape, g, 1.0, DType::F64).to(dtype).to(device);
}

CaseRun run_case_on(const GradcheckCase& c, Device device, DType dtype) {
  if (c.run_on) return c.run_on(device, dtype);
  if (!c.fn) throw std::invalid_argument("gradcheck case " + c.name + " has neither run_on nor fn");
  std::vector<Tensor> in;
  for (const Tensor& t : c.inputs) {
    if (!t.defined()) {
      in.push_back(t);
      continue;
    }
    Tensor x = t.to(dtype).to(device).clone();
    if (t.requires_grad()) x.set_requires_grad(true);
    in.push_back(x);
  }
  Tensor y = c.fn(in);
  y.backward(case_upstream(y.shape(), dtype, device));
  CaseRun r{y.to_vector(), {}};
  for (const Tensor& x : in)
    if (x.defined() && x.requires_grad())
      r.grads.push_back(x.grad().defined() ? x.grad().to_vector() : std::vector<double>(size_t(x.numel()), 0.0));
  return r;
}

std::vector<CheckTarget> check_targets() {
  std::vector<CheckTarget> t{{kCPU, DType::F32}};
  if (device_available(DeviceType::CUDA)) t.push_back({Device{DeviceType::CUDA, 0}, DType::F32});
  return t;
}

CaseDiff compare_runs(const CaseRun& ref, const CaseRun& run, double floor) {
  auto rel = [floor](const std::vector<double>& a, const std::vector<double>& b) {
    if (a.size() != b.size()) return double(INFINITY);
    double m = floor, d = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      m = std::max(m, std::fabs(a[i]));
      const double e = std::fabs(a[i] - b[i]);
      d = std::isnan(e) ? double(INFINITY) : std::max(d, e);
    }
    return d / m;
  };
  CaseDiff out{rel(ref.y, run.y), "y"};
  if (ref.grads.size() != run.grads.size()) return {INFINITY, "number of gradients"};
  for (size_t k = 0; k < ref.grads.size(); ++k) {
    const double e = rel(ref.grads[k], run.grads[k]);
    if (e > out.rel) out = {e, fmt::format("grad {}", k)};
  }
  return out;
}

}  // namespace wn
