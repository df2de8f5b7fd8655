// The element-wise formulas, each written once for both backends: the unary maps with
// their derivatives, the binary operators, the optimizer updates and the pieces of the
// binary cross-entropy on logits. Each is a small functor whose functions are host and
// device code under nvcc; the CPU loops (cpu/elementwise.cpp, cpu/optim.cpp, cpu/loss.cpp)
// and the CUDA kernels (cuda/cuda_backend.cu) instantiate the same functors, so the two
// backends cannot drift apart. The expressions are the CPU's own, in its operation order
// and types (the CPU results are the reference and must not change by a bit).
//
// Adding an element-wise unary op touches four files: here, one line at the end of
// WN_UNARY_OPS, its functor (forward and derivative) and the count in the static_assert;
// the public function in engine/ops/activation.{h,cpp} (or elementwise.{h,cpp}) calling
// unary_op; a case in engine/gradcheck_suite.cpp. Both backends pick it up from the table.
#pragma once
#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#define WN_HD __host__ __device__
#else
#define WN_HD
#endif

// X(Enumerator, "name"): the unary maps y = f(x; a, b). The functor ew::Enumerator has
// fwd(x, a, b) and bwd(x, y, dy, a, b) = dy * f'(x) given y = f(x).
#define WN_UNARY_OPS(X)     \
  X(Neg, "neg")             \
  X(Square, "square")       \
  X(Sqrt, "sqrt")           \
  X(Exp, "exp")             \
  X(Log, "log")             \
  X(Sigmoid, "sigmoid")     \
  X(Relu, "relu")           \
  X(Clamp, "clamp")         \
  X(Scale, "scale")         \
  X(AddScalar, "add_scalar")

// X(Enumerator, "name"): the binary operators out = f(u, v), functor ew::Enumerator with
// fwd(u, v). Their gradients are composed from these ops (engine/ops/elementwise.cpp).
#define WN_BINARY_OPS(X) \
  X(Add, "add")          \
  X(Sub, "sub")          \
  X(Mul, "mul")          \
  X(Div, "div")

// Counts the entries of an op list: WN_OP_COUNT(WN_UNARY_OPS).
#define WN_OP_COUNT_ONE(op, name) +1
#define WN_OP_COUNT(LIST) (0 LIST(WN_OP_COUNT_ONE))

namespace wn::ew {

// Math functions for host and device: the C++ library on the host, CUDA's C functions on
// the device (named explicitly: an unqualified call could find the Tensor ops wn::exp...).
#ifdef __CUDA_ARCH__
__device__ inline float m_sqrt(float v) { return sqrtf(v); }
__device__ inline double m_sqrt(double v) { return ::sqrt(v); }
__device__ inline float m_exp(float v) { return expf(v); }
__device__ inline double m_exp(double v) { return ::exp(v); }
__device__ inline float m_log(float v) { return logf(v); }
__device__ inline double m_log(double v) { return ::log(v); }
__device__ inline double m_log1p(double v) { return ::log1p(v); }
__device__ inline double m_fabs(double v) { return ::fabs(v); }
#else
template <class T>
inline T m_sqrt(T v) { return std::sqrt(v); }
template <class T>
inline T m_exp(T v) { return std::exp(v); }
template <class T>
inline T m_log(T v) { return std::log(v); }
template <class T>
inline T m_log1p(T v) { return std::log1p(v); }
template <class T>
inline T m_fabs(T v) { return std::fabs(v); }
#endif
// std::max and std::min exactly as the standard defines them (NaN handling included).
template <class T>
WN_HD inline T m_max(T a, T b) { return (a < b) ? b : a; }
template <class T>
WN_HD inline T m_min(T a, T b) { return (b < a) ? b : a; }

// ---- unary maps: forward and derivative side by side ----

struct Neg {
  template <class T> static WN_HD T fwd(T x, T, T) { return -x; }
  template <class T> static WN_HD T bwd(T, T, T d, T, T) { return -d; }
};
struct Square {
  template <class T> static WN_HD T fwd(T x, T, T) { return x * x; }
  template <class T> static WN_HD T bwd(T x, T, T d, T, T) { return T(2) * x * d; }
};
struct Sqrt {
  template <class T> static WN_HD T fwd(T x, T, T) { return m_sqrt(x); }
  template <class T> static WN_HD T bwd(T, T y, T d, T, T) { return d * T(0.5) / y; }
};
struct Exp {
  template <class T> static WN_HD T fwd(T x, T, T) { return m_exp(x); }
  template <class T> static WN_HD T bwd(T, T y, T d, T, T) { return d * y; }
};
struct Log {
  template <class T> static WN_HD T fwd(T x, T, T) { return m_log(x); }
  template <class T> static WN_HD T bwd(T x, T, T d, T, T) { return d / x; }
};
// 1 / (1 + e^-x), without overflow for either sign of x.
struct Sigmoid {
  template <class T> static WN_HD T fwd(T x, T, T) {
    if (x >= 0) return T(1) / (T(1) + m_exp(-x));
    T e = m_exp(x);
    return e / (T(1) + e);
  }
  template <class T> static WN_HD T bwd(T, T y, T d, T, T) { return d * y * (T(1) - y); }
};
struct Relu {
  template <class T> static WN_HD T fwd(T x, T, T) { return x > T(0) ? x : T(0); }
  template <class T> static WN_HD T bwd(T x, T, T d, T, T) { return x > T(0) ? d : T(0); }
};
// Clamp to [lo, hi] = [a, b].
struct Clamp {
  template <class T> static WN_HD T fwd(T x, T lo, T hi) { return m_min(m_max(x, lo), hi); }
  template <class T> static WN_HD T bwd(T x, T, T d, T lo, T hi) { return (x >= lo && x <= hi) ? d : T(0); }
};
// a * x.
struct Scale {
  template <class T> static WN_HD T fwd(T x, T a, T) { return a * x; }
  template <class T> static WN_HD T bwd(T, T, T d, T a, T) { return a * d; }
};
// x + a.
struct AddScalar {
  template <class T> static WN_HD T fwd(T x, T a, T) { return x + a; }
  template <class T> static WN_HD T bwd(T, T, T d, T, T) { return d; }
};
static_assert(WN_OP_COUNT(WN_UNARY_OPS) == 10, "every unary op needs its functor above");

// ---- binary operators ----

struct Add {
  template <class T> static WN_HD T fwd(T u, T v) { return u + v; }
};
struct Sub {
  template <class T> static WN_HD T fwd(T u, T v) { return u - v; }
};
struct Mul {
  template <class T> static WN_HD T fwd(T u, T v) { return u * v; }
};
struct Div {
  template <class T> static WN_HD T fwd(T u, T v) { return u / v; }
};
static_assert(WN_OP_COUNT(WN_BINARY_OPS) == 4, "every binary op needs its functor above");

// ---- optimizer updates: one element of the parameter p and its state ----

// RMSProp (PyTorch): s = alpha s + (1 - alpha) g^2; p -= lr g / (sqrt(s) + eps).
// The coefficients are rounded to T once, 1 - alpha computed in double.
template <class T>
struct RmsPropStep {
  T a, b, lr, eps;
  RmsPropStep(double lr_, double alpha, double eps_) : a(T(alpha)), b(T(1 - alpha)), lr(T(lr_)), eps(T(eps_)) {}
  WN_HD void operator()(T& p, T g, T& s) const {
    s = a * s + b * g * g;
    p -= lr * g / (m_sqrt(s) + eps);
  }
};

// Adam (PyTorch, bias-corrected; step counts from 1): the step size lr / (1 - beta1^step)
// and sqrt(1 - beta2^step) are computed in double, then rounded to T.
template <class T>
struct AdamStep {
  T b1, b2, step_size, sq, eps;
  AdamStep(double lr, double beta1, double beta2, double eps_, int64_t step)
      : b1(T(beta1)),
        b2(T(beta2)),
        step_size(T(lr / (1 - std::pow(beta1, double(step))))),
        sq(T(std::sqrt(1 - std::pow(beta2, double(step))))),
        eps(T(eps_)) {}
  WN_HD void operator()(T& p, T g, T& m, T& v) const {
    m = b1 * m + (T(1) - b1) * g;
    v = b2 * v + (T(1) - b2) * g * g;
    p -= step_size * m / (m_sqrt(v) / sq + eps);
  }
};

// SGD with momentum (PyTorch): b = momentum b + g (b = g on the first step); p -= lr b.
// buf null: plain SGD.
template <class T>
struct SgdStep {
  T momentum, lr;
  bool first;
  SgdStep(double lr_, double momentum_, bool first_) : momentum(T(momentum_)), lr(T(lr_)), first(first_) {}
  WN_HD void operator()(T& p, T g, T* buf) const {
    T d = g;
    if (buf) {
      *buf = first ? d : momentum * *buf + d;
      d = *buf;
    }
    p -= lr * d;
  }
};

// ---- binary cross-entropy on a logit x with target t, in double ----

// The loss of one element: max(x, 0) - x t + log(1 + e^-|x|), stable for any |x|.
WN_HD inline double bce_logits_term(double x, double t) { return m_max(x, 0.0) - x * t + m_log1p(m_exp(-m_fabs(x))); }
// Its derivative in x: sigmoid(x) - t.
WN_HD inline double bce_logits_grad(double x, double t) { return Sigmoid::fwd(x, 0.0, 0.0) - t; }

}  // namespace wn::ew
