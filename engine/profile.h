// A per-kernel timer for finding where the time goes (`wngan bench --profile`).
// Backend kernels open a Scope named after themselves with a detail string (shapes)
// and the FLOPs they do; the autograd engine and the optimizers set the phase
// (forward, backward, update) of the kernels run below them. Off by default: a
// disabled Scope costs one load and branch, and its detail string is never built.
// Times are exclusive (a nested scope's time is not counted in its parent's) and
// wall-clock on the calling thread; kernels run their own parallel loops inside.
#pragma once
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace wn::profile {

extern std::atomic<bool> g_enabled;

// Whether kernels are being timed.
inline bool enabled() { return g_enabled.load(std::memory_order_relaxed); }
// Starts or stops timing (entries collected so far are kept).
void set_enabled(bool on);
// Drops every entry collected so far.
void reset();

// One row of the profile: a kernel with one detail string in one phase.
struct Entry {
  std::string phase, kernel, detail;
  int64_t calls = 0;
  double seconds = 0;  // exclusive wall time
  double flops = 0;    // floating-point operations counted by the kernel (0: not counted)
};
// The rows collected so far, longest first.
std::vector<Entry> entries();

// Sets the phase that scopes opened on this thread report under, for its lifetime.
class Phase {
 public:
  explicit Phase(const char* name);
  ~Phase();
  Phase(const Phase&) = delete;
  Phase& operator=(const Phase&) = delete;

 private:
  const char* prev_;
};

// Times its lifetime as one call of `kernel` (inactive when default-constructed).
class Scope {
 public:
  Scope() = default;
  Scope(const char* kernel, std::string detail, double flops);
  ~Scope();
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  bool active_ = false;
  const char* kernel_ = nullptr;
  std::string detail_;
  double flops_ = 0, start_ = 0, child_ = 0;
  Scope* parent_ = nullptr;
};

}  // namespace wn::profile

// Opens a profile scope for the rest of the block; detail and flops are evaluated
// only while profiling is on.
#define WN_PROFILE(kernel, detail, flops)                                                                        \
  ::wn::profile::Scope wn_profile_scope_ =                                                                       \
      ::wn::profile::enabled() ? ::wn::profile::Scope(kernel, detail, static_cast<double>(flops))                 \
                               : ::wn::profile::Scope()
