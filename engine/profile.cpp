#include "engine/profile.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <tuple>

namespace wn::profile {

std::atomic<bool> g_enabled{false};

namespace {
std::mutex g_mu;
std::map<std::tuple<std::string, std::string, std::string>, Entry> g_entries;
thread_local const char* t_phase = "forward";
thread_local Scope* t_top = nullptr;

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

void set_enabled(bool on) { g_enabled.store(on, std::memory_order_relaxed); }

void reset() {
  std::lock_guard<std::mutex> lock(g_mu);
  g_entries.clear();
}

std::vector<Entry> entries() {
  std::vector<Entry> out;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    for (auto& [k, e] : g_entries) out.push_back(e);
  }
  std::stable_sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) { return a.seconds > b.seconds; });
  return out;
}

Phase::Phase(const char* name) : prev_(t_phase) { t_phase = name; }
Phase::~Phase() { t_phase = prev_; }

Scope::Scope(const char* kernel, std::string detail, double flops)
    : active_(true), kernel_(kernel), detail_(std::move(detail)), flops_(flops), parent_(t_top) {
  t_top = this;
  start_ = now();
}

Scope::~Scope() {
  if (!active_) return;
  const double total = now() - start_;
  if (parent_) parent_->child_ += total;
  t_top = parent_;
  std::lock_guard<std::mutex> lock(g_mu);
  Entry& e = g_entries[{t_phase, kernel_, detail_}];
  if (e.calls == 0) {
    e.phase = t_phase;
    e.kernel = kernel_;
    e.detail = detail_;
  }
  ++e.calls;
  e.seconds += total - child_;
  e.flops += flops_;
}

}  // namespace wn::profile
