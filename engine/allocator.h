// A caching allocator: freed buffers are kept by size and handed out again, so a
// training step that repeats the same shapes never returns to the system allocator
// (and takes no fresh page faults) after its first iteration.
#pragma once
#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <vector>

namespace wn {

// Counters of one caching allocator.
struct AllocatorStats {
  size_t bytes_in_use = 0;     // handed out and not yet released
  size_t bytes_cached = 0;     // released and kept for reuse
  size_t peak_in_use = 0;      // high-water mark of bytes_in_use
  size_t system_allocs = 0;    // calls that went to the underlying allocator
  size_t cache_hits = 0;       // requests served from the cache
};

class CachingAllocator {
 public:
  using RawAlloc = std::function<void*(size_t)>;
  using RawFree = std::function<void(void*)>;
  CachingAllocator(RawAlloc alloc, RawFree free) : raw_alloc_(std::move(alloc)), raw_free_(std::move(free)) {}
  ~CachingAllocator();
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // Rounds a request up to the size class it is cached under.
  static size_t round_size(size_t bytes);
  // Returns a buffer of at least `bytes` (rounded with round_size).
  void* allocate(size_t bytes);
  // Gives back a buffer obtained with allocate(bytes) for later reuse.
  void release(void* p, size_t bytes);
  // Returns every cached (unused) buffer to the underlying allocator.
  void empty_cache();
  // Starts the high-water mark afresh from the bytes in use now.
  void reset_peak();
  AllocatorStats stats() const;

 private:
  RawAlloc raw_alloc_;
  RawFree raw_free_;
  mutable std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;  // size class -> cached buffers
  AllocatorStats stats_;
};

}  // namespace wn
