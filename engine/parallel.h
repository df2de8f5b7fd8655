// Thread control and a deterministic parallel loop over oneTBB. The split of a range
// depends only on its size and grain, never on the thread count, so kernels that give
// each output to one task produce the same bits with any number of threads.
#pragma once
#include <cstdint>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>

namespace wn {

// Limits the engine to n worker threads (0 restores the default: all cores).
void set_num_threads(int n);
// The number of threads the engine currently uses.
int num_threads();

// Calls f(begin, end) on chunks of [0, n) of at most `grain` items, in parallel.
template <class F>
void parallel_for(int64_t n, int64_t grain, F&& f) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  if (n <= grain) {
    f(int64_t(0), n);
    return;
  }
  tbb::parallel_for(
      tbb::blocked_range<int64_t>(0, n, grain),
      [&](const tbb::blocked_range<int64_t>& r) { f(r.begin(), r.end()); }, tbb::simple_partitioner());
}

}  // namespace wn
