#include "engine/dtype.h"

#include <stdexcept>

#include <fmt/format.h>

namespace wn {

std::string Device::str() const {
  return type == DeviceType::CPU ? std::string("cpu") : fmt::format("cuda:{}", index);
}

Device Device::parse(const std::string& s) {
  if (s == "cpu") return kCPU;
  if (s == "cuda") return {DeviceType::CUDA, 0};
  if (s.rfind("cuda:", 0) == 0) {
    try {
      size_t used = 0;
      int idx = std::stoi(s.substr(5), &used);
      if (used == s.size() - 5 && idx >= 0) return {DeviceType::CUDA, idx};
    } catch (const std::exception&) {
    }
  }
  throw std::invalid_argument(fmt::format("unknown device '{}' (expected cpu, cuda or cuda:N)", s));
}

Shape::Shape(std::initializer_list<int64_t> dims) : Shape(std::vector<int64_t>(dims)) {}

Shape::Shape(const std::vector<int64_t>& dims) {
  if (dims.size() > static_cast<size_t>(kMaxRank))
    throw std::invalid_argument(fmt::format("shape of rank {} exceeds the maximum rank {}", dims.size(), kMaxRank));
  rank_ = static_cast<int>(dims.size());
  int64_t n = 1;
  for (int i = 0; i < rank_; ++i) {
    if (dims[i] < 0) throw std::invalid_argument(fmt::format("negative dimension {} in a shape", dims[i]));
    d_[i] = dims[i];
    if (n != 0 && (__builtin_mul_overflow(n, dims[i], &n) || n > kMaxNumel)) {
      std::string s;
      for (int64_t d : dims) s += (s.empty() ? "" : ", ") + std::to_string(d);
      throw std::invalid_argument(fmt::format("shape ({}) has more than {} elements", s, kMaxNumel));
    }
  }
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int i = 0; i < rank_; ++i) n *= d_[i];
  return n;
}

bool Shape::operator==(const Shape& o) const {
  if (rank_ != o.rank_) return false;
  for (int i = 0; i < rank_; ++i)
    if (d_[i] != o.d_[i]) return false;
  return true;
}

std::string Shape::str() const {
  std::string s = "(";
  for (int i = 0; i < rank_; ++i) s += fmt::format("{}{}", i ? ", " : "", d_[i]);
  if (rank_ == 1) s += ",";
  return s + ")";
}

}  // namespace wn
