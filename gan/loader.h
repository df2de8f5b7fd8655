// Batches of training images in a reproducible order: each epoch shuffles the training
// indices with a generator seeded by (seed, epoch). The next batch is decoded in the
// background (oneTBB tasks, one per image) while the current one trains. The cursor
// (epoch, position) is saved in checkpoints, so a resumed run sees the same batches.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include <tbb/task_group.h>

#include "engine/tensor.h"
#include "gan/data.h"

namespace wn::gan {

class Loader {
 public:
  Loader(const Dataset& data, std::vector<int64_t> indices, int64_t batch, uint64_t seed);
  ~Loader();
  // The next batch (N, C, H, W) in [0, 1].
  Tensor next();
  // Loads the given images (in order) into one tensor, in parallel.
  static Tensor load(const Dataset& data, const std::vector<int64_t>& indices);
  // The cursor: where the batch after the last one returned by next() starts.
  int64_t epoch() const { return cursor_epoch_; }
  int64_t position() const { return cursor_pos_; }
  // Moves to a saved cursor (the batch that starts there comes next).
  void seek(int64_t epoch, int64_t position);
  // Makes next() load only rows [begin, end) of each batch (a rank's slice of a global
  // batch); the cursor still moves by the whole batch.
  void set_slice(int64_t begin, int64_t end);
  // Seconds the trainer waited for data in next() so far.
  double wait_seconds() const { return wait_s_; }

 private:
  std::vector<int64_t> batch_indices();
  void start_prefetch();
  const Dataset& data_;
  std::vector<int64_t> indices_, order_;
  int64_t batch_, epoch_ = 0, pos_ = 0, cursor_epoch_ = 0, cursor_pos_ = 0;
  int64_t slice_begin_ = 0, slice_end_ = -1;  // -1: the whole batch
  uint64_t seed_;
  tbb::task_group tasks_;
  Tensor pending_;
  bool has_pending_ = false;
  double wait_s_ = 0;
  void shuffle();
};

}  // namespace wn::gan
