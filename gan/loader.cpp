#include "gan/loader.h"

#include <chrono>
#include <stdexcept>

#include <fmt/format.h>

#include "engine/parallel.h"
#include "engine/random.h"

namespace wn::gan {

Loader::Loader(const Dataset& data, std::vector<int64_t> indices, int64_t batch, uint64_t seed)
    : data_(data), indices_(std::move(indices)), batch_(batch), seed_(seed) {
  if (batch_ < 1) throw std::invalid_argument("batch size must be at least 1");
  if (static_cast<int64_t>(indices_.size()) < batch_)
    throw std::invalid_argument(fmt::format("the training set has {} images, fewer than one batch of {}", indices_.size(), batch_));
  shuffle();
}

Loader::~Loader() { tasks_.wait(); }

void Loader::shuffle() {
  order_ = indices_;
  Generator g(seed_ * 1000003ULL + uint64_t(epoch_) + 17);
  for (int64_t i = static_cast<int64_t>(order_.size()) - 1; i > 0; --i) std::swap(order_[i], order_[g.below(uint64_t(i) + 1)]);
}

void Loader::seek(int64_t epoch, int64_t position) {
  tasks_.wait();
  has_pending_ = false;
  epoch_ = epoch;
  shuffle();
  if (position < 0 || position > static_cast<int64_t>(order_.size()))
    throw std::invalid_argument(fmt::format("data cursor {} outside an epoch of {} images", position, order_.size()));
  pos_ = cursor_pos_ = position;
  cursor_epoch_ = epoch;
}

std::vector<int64_t> Loader::batch_indices() {
  // Drop the last incomplete batch of an epoch.
  if (pos_ + batch_ > static_cast<int64_t>(order_.size())) {
    ++epoch_;
    pos_ = 0;
    shuffle();
  }
  std::vector<int64_t> b(order_.begin() + pos_, order_.begin() + pos_ + batch_);
  pos_ += batch_;
  return b;
}

Tensor Loader::load(const Dataset& data, const std::vector<int64_t>& idx) {
  const int64_t per = data.channels * data.height * data.width;
  Tensor t = Tensor::empty({static_cast<int64_t>(idx.size()), data.channels, data.height, data.width});
  float* p = t.data<float>();
  parallel_for(static_cast<int64_t>(idx.size()), 1, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) data.load(idx[i], p + i * per);
  });
  return t;
}

void Loader::set_slice(int64_t begin, int64_t end) {
  if (begin < 0 || end <= begin || end > batch_)
    throw std::invalid_argument(fmt::format("batch slice [{}, {}) outside a batch of {}", begin, end, batch_));
  tasks_.wait();
  if (has_pending_) seek(cursor_epoch_, cursor_pos_);  // reload the batch to come with the slice
  slice_begin_ = begin;
  slice_end_ = end;
}

void Loader::start_prefetch() {
  // The cursor already points past this batch; the loading runs in the background.
  std::vector<int64_t> idx = batch_indices();
  if (slice_end_ >= 0) idx = std::vector<int64_t>(idx.begin() + slice_begin_, idx.begin() + slice_end_);
  has_pending_ = true;
  tasks_.run([this, idx]() { pending_ = load(data_, idx); });
}

Tensor Loader::next() {
  if (!has_pending_) start_prefetch();
  auto t0 = std::chrono::steady_clock::now();
  tasks_.wait();
  wait_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  Tensor out = pending_;
  pending_ = Tensor();
  has_pending_ = false;
  // Saved cursors refer to the batch after `out`; prefetching that one moves the
  // cursor, so remember where it stood.
  const int64_t e = epoch_, p = pos_;
  start_prefetch();
  cursor_epoch_ = e;
  cursor_pos_ = p;
  return out;
}

}  // namespace wn::gan
