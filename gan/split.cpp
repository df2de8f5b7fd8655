#include "gan/split.h"

#include <fstream>
#include <numeric>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "engine/random.h"
#include "nn/checkpoint.h"

namespace wn::gan {

Split make_split(int64_t n, int64_t n_final, int64_t n_running, uint64_t seed, bool running_from_train) {
  if (n_final < 1 || n_running < 0 || (!running_from_train && n_running > n_final) || n_final >= n ||
      (running_from_train && n_running > n - n_final))
    throw std::invalid_argument(fmt::format(
        "cannot split {} images into a final test of {} (running test {}) and a training set", n, n_final, n_running));
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  Generator g(seed ^ 0x5eed5911ULL);
  for (int64_t i = n - 1; i > 0; --i) std::swap(idx[i], idx[g.below(uint64_t(i) + 1)]);
  Split s;
  s.dataset_size = n;
  s.seed = seed;
  s.final_test.assign(idx.begin(), idx.begin() + n_final);
  s.train.assign(idx.begin() + n_final, idx.end());
  s.running_from_train = running_from_train;
  if (running_from_train)
    s.running_test.assign(s.train.begin(), s.train.begin() + n_running);
  else
    s.running_test.assign(idx.begin(), idx.begin() + n_running);
  return s;
}

void save_split(const std::string& path, const Split& s) {
  nlohmann::ordered_json j;
  j["dataset_size"] = s.dataset_size;
  j["seed"] = s.seed;
  j["running_test_from"] = s.running_from_train ? "train" : "final_test";
  j["final_test"] = s.final_test;
  j["running_test"] = s.running_test;
  j["train"] = s.train;
  nn::write_file_atomic(path, j.dump() + "\n");
}

namespace {
// An array of whole numbers, each in [0, n): a float, a string or an out-of-range value
// is an error naming the file, the key and the element.
std::vector<int64_t> index_array(const nlohmann::json& j, const std::string& key, int64_t n, const std::string& path) {
  if (!j.contains(key) || !j.at(key).is_array())
    throw std::runtime_error(fmt::format("{}: needs an index array '{}'", path, key));
  std::vector<int64_t> v;
  const auto& a = j.at(key);
  v.reserve(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    const auto& x = a[i];
    if (!x.is_number_integer())
      throw std::runtime_error(fmt::format("{}: {}[{}] is {}, not a whole number", path, key, i, x.dump()));
    const int64_t k = x.get<int64_t>();
    if (k < 0 || k >= n)
      throw std::runtime_error(fmt::format("{}: {}[{}] = {} is outside the data set of {} images", path, key, i, k, n));
    v.push_back(k);
  }
  return v;
}
}  // namespace

Split load_split(const std::string& path, int64_t n) {
  if (const nn::FileKind kind = nn::file_kind(path); kind != nn::FileKind::Regular)
    throw std::runtime_error(fmt::format("{}: cannot open the split ({})", path,
                                         kind == nn::FileKind::Missing ? "no such file" : "not a regular file"));
  std::ifstream f(path);
  if (!f) throw std::runtime_error(fmt::format("{}: cannot open the split", path));
  nlohmann::json j;
  try {
    f >> j;
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(fmt::format("{}: not valid JSON ({})", path, e.what()));
  }
  Split s;
  if (!j.is_object()) throw std::runtime_error(fmt::format("{}: not a JSON object", path));
  try {
    if (j.contains("dataset_size") && !j.at("dataset_size").is_number_integer())
      throw std::runtime_error(fmt::format("{}: dataset_size is not a whole number", path));
    s.dataset_size = j.value("dataset_size", n);
    if (s.dataset_size != n)
      throw std::runtime_error(
          fmt::format("{}: made for a data set of {} images, this one has {}", path, s.dataset_size, n));
    s.final_test = index_array(j, "final_test", n, path);
    s.running_test = index_array(j, "running_test", n, path);
    s.train = index_array(j, "train", n, path);
    s.seed = j.contains("seed") && j.at("seed").is_number_unsigned() ? j.at("seed").get<uint64_t>() : 0;
    const std::string from = j.value("running_test_from", std::string("final_test"));
    if (from != "final_test" && from != "train")
      throw std::runtime_error(fmt::format("{}: running_test_from is '{}' (expected final_test or train)", path, from));
    s.running_from_train = from == "train";
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(fmt::format("{}: needs index arrays final_test, running_test and train ({})", path, e.what()));
  }
  if (s.dataset_size != n)
    throw std::runtime_error(fmt::format("{}: made for a data set of {} images, this one has {}", path, s.dataset_size, n));
  std::vector<char> seen(static_cast<size_t>(n), 0);
  for (const auto* v : {&s.final_test, &s.train})
    for (int64_t i : *v) {
      if (i < 0 || i >= n) throw std::runtime_error(fmt::format("{}: index {} outside the data set of {} images", path, i, n));
      if (seen[i]++) throw std::runtime_error(fmt::format("{}: index {} appears twice", path, i));
    }
  const auto& pool = s.running_from_train ? s.train : s.final_test;
  if (s.running_test.size() > pool.size() || !std::equal(s.running_test.begin(), s.running_test.end(), pool.begin()))
    throw std::runtime_error(fmt::format("{}: running_test must be the first images of {}", path,
                                         s.running_from_train ? "train" : "final_test"));
  if (s.train.empty()) throw std::runtime_error(fmt::format("{}: empty training set", path));
  if (s.final_test.empty()) throw std::runtime_error(fmt::format("{}: empty final-test set", path));
  return s;
}

std::string split_fingerprint(const Split& s) {
  uint64_t h = 1469598103934665603ULL;
  auto mix = [&](int64_t v) {
    for (int b = 0; b < 8; ++b) h = (h ^ ((uint64_t(v) >> (8 * b)) & 0xff)) * 1099511628211ULL;
  };
  for (const auto* list : {&s.final_test, &s.running_test, &s.train}) {
    mix(int64_t(list->size()));
    for (int64_t i : *list) mix(i);
  }
  return fmt::format("{:016x}", h);
}

}  // namespace wn::gan
