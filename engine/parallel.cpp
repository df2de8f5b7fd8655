#include "engine/parallel.h"

#include <memory>
#include <mutex>

#include <tbb/global_control.h>
#include <tbb/info.h>

namespace wn {

namespace {
std::mutex g_mu;
std::unique_ptr<tbb::global_control> g_control;
int g_threads = 0;
}  // namespace

void set_num_threads(int n) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_control.reset();
  g_threads = n;
  if (n > 0) g_control = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism, n);
}

int num_threads() {
  std::lock_guard<std::mutex> lock(g_mu);
  return g_threads > 0 ? g_threads : tbb::info::default_concurrency();
}

}  // namespace wn
