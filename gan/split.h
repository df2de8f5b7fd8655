// The reproducible split of a data set (docs/paper.md section 4): final_test (default 2000
// images), running_test = its first 200, train = the rest. Stored as JSON index arrays.
// The running test picks the 'best' checkpoint, so with the paper's protocol the final
// test is not untouched by model selection; a split may instead draw the running test
// from the training images (running_from_train), leaving the final test unseen.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace wn::gan {

struct Split {
  std::vector<int64_t> final_test, running_test, train;
  int64_t dataset_size = 0;
  uint64_t seed = 0;
  bool running_from_train = false;  // running_test = the first images of train, not of final_test
};

// A fingerprint of the split's images (FNV-1a over its index lists): recorded in each
// checkpoint, so that a checkpoint is known to belong to the run whose split it trained on.
std::string split_fingerprint(const Split& s);

// A seeded random split of n images.
Split make_split(int64_t n, int64_t n_final_test, int64_t n_running_test, uint64_t seed,
                 bool running_from_train = false);
// Writes split.json atomically.
void save_split(const std::string& path, const Split& s);
// Reads a split and checks it against a data set of n images (indices in range,
// running_test a prefix of final_test (or of train), train disjoint from the final test).
Split load_split(const std::string& path, int64_t n);

}  // namespace wn::gan
