// Element types, devices and shapes: the small value types every tensor carries.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace wn {

enum class DType { F32, F64 };
enum class DeviceType { CPU, CUDA };

// Bytes per element of a dtype.
inline size_t dtype_size(DType t) { return t == DType::F32 ? 4 : 8; }
// Name of a dtype as the safetensors format spells it.
inline const char* dtype_name(DType t) { return t == DType::F32 ? "F32" : "F64"; }

// A device: its type and, for accelerators, its index.
struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  // "cpu" or "cuda:0".
  std::string str() const;
  // Parses "cpu", "cuda" or "cuda:N"; throws on anything else.
  static Device parse(const std::string& s);
};

inline const Device kCPU{DeviceType::CPU, 0};

// A contiguous tensor shape of rank 0..kMaxRank (row-major, NCHW for images).
class Shape {
 public:
  static constexpr int kMaxRank = 4;
  // The most elements a shape may have (2^48): byte sizes of any dtype then fit in 64 bits,
  // and a corrupt size is refused when the shape is made, before anything is allocated.
  static constexpr int64_t kMaxNumel = int64_t(1) << 48;
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);
  explicit Shape(const std::vector<int64_t>& dims);
  int rank() const { return rank_; }
  int64_t operator[](int i) const { return d_[i]; }
  int64_t& operator[](int i) { return d_[i]; }
  // Product of the dimensions (1 for rank 0).
  int64_t numel() const;
  std::vector<int64_t> vec() const { return {d_.begin(), d_.begin() + rank_}; }
  bool operator==(const Shape& o) const;
  bool operator!=(const Shape& o) const { return !(*this == o); }
  // "(2, 3, 4)".
  std::string str() const;

 private:
  std::array<int64_t, kMaxRank> d_{};
  int rank_ = 0;
};

}  // namespace wn
