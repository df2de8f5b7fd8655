#include "engine/tensor.h"

#include <stdexcept>

#include <fmt/format.h>

#include "engine/autograd.h"
#include "engine/backend/backend.h"

namespace wn {

Storage::Storage(Device dev, size_t nbytes) : bytes(nbytes), device(dev) {
  backend = &backend_for(dev);
  data = backend->allocator().allocate(nbytes);
}

Storage::~Storage() { backend->allocator().release(data, bytes); }

void check_dtype_access(const Tensor& t, DType want) {
  if (t.dtype() != want)
    throw std::invalid_argument(
        fmt::format("typed access as {} to a tensor of dtype {}", dtype_name(want), dtype_name(t.dtype())));
}

TensorImpl& Tensor::impl() const {
  if (!impl_) throw std::logic_error("use of an undefined tensor");
  return *impl_;
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->dtype = dtype;
  impl->storage = std::make_shared<Storage>(device, static_cast<size_t>(shape.numel()) * dtype_size(dtype));
  return Tensor(std::move(impl));
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(value);
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }
Tensor Tensor::scalar(double value, DType dtype, Device device) { return full(Shape{}, value, dtype, device); }

Tensor Tensor::from_vector(const std::vector<double>& values, const Shape& shape, DType dtype, Device device) {
  if (static_cast<int64_t>(values.size()) != shape.numel())
    throw std::invalid_argument(
        fmt::format("from_vector: {} values for shape {} ({} elements)", values.size(), shape.str(), shape.numel()));
  Tensor host = empty(shape, dtype, kCPU);
  if (dtype == DType::F32) {
    float* p = host.data<float>();
    for (size_t i = 0; i < values.size(); ++i) p[i] = static_cast<float>(values[i]);
  } else {
    double* p = host.data<double>();
    for (size_t i = 0; i < values.size(); ++i) p[i] = values[i];
  }
  return device == kCPU ? host : host.to(device);
}

std::vector<double> Tensor::to_vector() const {
  Tensor host = device() == kCPU ? *this : to(kCPU);
  std::vector<double> out(static_cast<size_t>(numel()));
  if (dtype() == DType::F32) {
    const float* p = host.data<float>();
    for (size_t i = 0; i < out.size(); ++i) out[i] = p[i];
  } else {
    const double* p = host.data<double>();
    for (size_t i = 0; i < out.size(); ++i) out[i] = p[i];
  }
  return out;
}

double Tensor::item() const {
  if (numel() != 1) throw std::invalid_argument(fmt::format("item() on {}: needs exactly one element", describe()));
  return to_vector()[0];
}

Tensor Tensor::to(Device dev) const {
  if (dev == device()) return detach();
  Tensor out = empty(shape(), dtype(), dev);
  out.copy_from(*this);
  return out;
}

Tensor Tensor::to(DType dt) const {
  if (dt == dtype()) return detach();
  Tensor out = empty(shape(), dt, device());
  backend().cast(*this, out);
  return out;
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype(), device());
  out.copy_from(*this);
  return out;
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape();
  impl->dtype = dtype();
  impl->storage = impl_->storage;
  return Tensor(std::move(impl));
}

void Tensor::copy_from(const Tensor& src) {
  if (src.shape() != shape() || src.dtype() != dtype())
    throw std::invalid_argument(fmt::format("copy_from: source {} does not match destination {}", src.describe(),
                                            describe()));
  if (src.raw() == raw()) return;
  if (src.device() == device())
    backend().device_to_device(raw(), src.raw(), nbytes());
  else if (src.device() == kCPU)
    backend().host_to_device(raw(), src.raw(), nbytes());
  else if (device() == kCPU)
    src.backend().device_to_host(raw(), src.raw(), nbytes());
  else
    copy_from(src.to(kCPU));
}

void Tensor::fill_(double value) { backend().fill(*this, value); }

Tensor& Tensor::set_requires_grad(bool on) {
  if (!is_leaf()) throw std::logic_error("set_requires_grad on a non-leaf tensor: use detach() first");
  impl().requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const { return impl().grad ? Tensor(impl().grad) : Tensor(); }

void Tensor::set_grad(const Tensor& g) {
  if (g.defined() && (g.shape() != shape() || g.dtype() != dtype()))
    throw std::invalid_argument(fmt::format("set_grad: gradient {} for tensor {}", g.describe(), describe()));
  impl().grad = g.defined() ? g.impl_ptr() : nullptr;
}

void Tensor::zero_grad() { impl().grad.reset(); }
void Tensor::retain_grad() { impl().retains_grad = true; }
void Tensor::register_hook(GradHook hook) { impl().hooks.push_back(std::move(hook)); }

Tensor& Tensor::set_label(const std::string& l) {
  impl().label = l;
  if (impl().grad_fn) impl().grad_fn->label = l;
  return *this;
}

void Tensor::backward(const Tensor& grad, bool retain_graph) const { wn::backward(*this, grad, retain_graph); }

std::string Tensor::describe() const {
  if (!impl_) return "undefined";
  return fmt::format("{}{} on {}", dtype() == DType::F32 ? "f32" : "f64", shape().str(), device().str());
}

}  // namespace wn
