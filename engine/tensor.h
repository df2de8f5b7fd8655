// Tensor: a shape, a dtype, a device and shared storage, plus the autograd fields
// (requires_grad, grad, the node that made it). Tensors are contiguous (row-major,
// NCHW for images); reshape and detach share storage, nothing else is a view.
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/dtype.h"

namespace wn {

class Backend;
struct Node;
class Tensor;

// A buffer on one device, returned to its backend's caching allocator when the
// last tensor sharing it goes away.
struct Storage {
  Storage(Device device, size_t bytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data = nullptr;
  size_t bytes = 0;
  Device device;
  Backend* backend = nullptr;
};

// A gradient hook: sees the gradient arriving at a tensor; may return a replacement.
using GradHook = std::function<std::optional<Tensor>(const Tensor& grad)>;

struct TensorImpl {
  Shape shape;
  DType dtype = DType::F32;
  std::shared_ptr<Storage> storage;
  // Autograd.
  bool requires_grad = false;
  bool retains_grad = false;
  std::shared_ptr<TensorImpl> grad;
  std::shared_ptr<Node> grad_fn;  // null for leaves
  std::vector<GradHook> hooks;
  std::string label;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // Uninitialised tensor of the given shape.
  static Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = kCPU);
  // Tensor filled with zeros / ones / a value.
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device device = kCPU);
  static Tensor ones(const Shape& shape, DType dtype = DType::F32, Device device = kCPU);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::F32, Device device = kCPU);
  // Tensor holding the given values (converted to dtype), on the given device.
  static Tensor from_vector(const std::vector<double>& values, const Shape& shape, DType dtype = DType::F32,
                            Device device = kCPU);
  // A zero-dimensional tensor holding one value.
  static Tensor scalar(double value, DType dtype = DType::F32, Device device = kCPU);

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  int64_t dim(int i) const { return impl().shape[i < 0 ? i + impl().shape.rank() : i]; }
  int rank() const { return impl().shape.rank(); }
  int64_t numel() const { return impl().shape.numel(); }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device; }
  Backend& backend() const { return *impl().storage->backend; }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }

  // Raw pointer to the elements (device memory for accelerator tensors).
  void* raw() const { return impl().storage->data; }
  // Typed pointer; throws if T does not match the dtype.
  template <class T>
  T* data() const;

  // Host copy of all elements as doubles.
  std::vector<double> to_vector() const;
  // The single element of a one-element tensor.
  double item() const;
  // Copy on another device / in another dtype (no gradient flows through it).
  Tensor to(Device device) const;
  Tensor to(DType dtype) const;
  // Deep copy on the same device (no gradient flows through it).
  Tensor clone() const;
  // Same storage, cut from the graph.
  Tensor detach() const;
  // Overwrites this tensor's elements with src's (same shape and dtype; any device).
  void copy_from(const Tensor& src);
  // Sets every element to a value.
  void fill_(double value);

  // Autograd.
  bool requires_grad() const { return impl().requires_grad; }
  // Marks a leaf as wanting a gradient; returns *this.
  Tensor& set_requires_grad(bool on = true);
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  // The accumulated gradient (undefined until a backward reaches this tensor).
  Tensor grad() const;
  void set_grad(const Tensor& g);
  // Drops the accumulated gradient.
  void zero_grad();
  // Makes a non-leaf keep its gradient in grad() during backward.
  void retain_grad();
  // Adds a hook called with the gradient arriving at this tensor during backward.
  void register_hook(GradHook hook);
  // Node label used by graph dumps and error messages.
  Tensor& set_label(const std::string& label);
  const std::string& label() const { return impl().label; }
  Node* grad_fn() const { return impl().grad_fn.get(); }
  // Runs reverse mode from this tensor: a scalar needs no gradient; otherwise pass it.
  void backward(const Tensor& grad = Tensor(), bool retain_graph = false) const;

  TensorImpl& impl() const;
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  // "f32(2, 3) on cpu" for messages.
  std::string describe() const;

 private:
  std::shared_ptr<TensorImpl> impl_;
};

template <class T>
struct DTypeOf;
template <>
struct DTypeOf<float> {
  static constexpr DType value = DType::F32;
};
template <>
struct DTypeOf<double> {
  static constexpr DType value = DType::F64;
};

// Throws unless the dtype matches T (the one check that guards every typed access).
void check_dtype_access(const Tensor& t, DType want);

template <class T>
T* Tensor::data() const {
  check_dtype_access(*this, DTypeOf<T>::value);
  return static_cast<T*>(raw());
}

}  // namespace wn
