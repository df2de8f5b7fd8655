// Centre crop and Pillow-exact BILINEAR resizing of interleaved 8-bit images (see resize.h).
#include "gan/resize.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace wn::gan {

namespace {

// Fixed-point precision of the coefficients, as Pillow's resampling: 32 bits less 8 for the value and 2 spare.
constexpr int kPrecisionBits = 32 - 8 - 2;

std::string dims(int64_t h, int64_t w) { return std::to_string(h) + "x" + std::to_string(w); }

// Throws when any of an image's sizes is not positive; `what` names the caller.
void check_image(const char* what, int64_t h, int64_t w, int64_t c) {
  if (h <= 0 || w <= 0 || c <= 0)
    throw std::invalid_argument(std::string(what) + ": image size " + dims(h, w) + " with " + std::to_string(c) +
                                " channels must be positive");
}

// int(round(d / 2.)) for d >= 0 with round-half-to-even: an odd d gives k + 0.5, which goes to the even one.
int64_t half_offset(int64_t d) {
  const int64_t k = d / 2;
  return (d % 2 == 0 || k % 2 == 0) ? k : k + 1;
}

// The triangle kernel of BILINEAR resampling (support 1).
double triangle(double x) {
  x = std::abs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

// The taps of one resampling pass from `in` to `out` samples: output i reads `count[i]` inputs from `first[i]`
// with fixed-point weights k[i * ksize + j].
struct Taps {
  int64_t ksize = 0;
  std::vector<int64_t> first, count;
  std::vector<int32_t> k;
};

Taps bilinear_taps(int64_t in, int64_t out) {
  Taps t;
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  const double filterscale = std::max(scale, 1.0);  // the filter widens when shrinking (antialiasing)
  const double support = 1.0 * filterscale;
  const double ss = 1.0 / filterscale;
  t.ksize = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  t.first.resize(out);
  t.count.resize(out);
  t.k.assign(out * t.ksize, 0);
  std::vector<double> w(t.ksize);
  for (int64_t i = 0; i < out; ++i) {
    // Rounded to a double before use: a fused multiply-add (-march=native, -ffp-contract=fast) in the bounds below
    // could move a bound that lands on an integer, and Pillow's resampling rounds the product.
    const volatile double rounded_center = (static_cast<double>(i) + 0.5) * scale;
    const double center = rounded_center;
    // Bounds rounded by truncation toward zero (a C cast), then clamped to the input.
    const int64_t lo = std::max<int64_t>(static_cast<int>(center - support + 0.5), 0);
    const int64_t n = std::min<int64_t>(static_cast<int>(center + support + 0.5), in) - lo;
    double sum = 0.0;
    for (int64_t j = 0; j < n; ++j) {
      w[j] = triangle((static_cast<double>(j + lo) - center + 0.5) * ss);
      sum += w[j];
    }
    for (int64_t j = 0; j < n; ++j) {
      const double kj = sum != 0.0 ? w[j] / sum : w[j];
      const double scaled = kj * static_cast<double>(1 << kPrecisionBits);
      t.k[i * t.ksize + j] = static_cast<int32_t>(kj < 0 ? scaled - 0.5 : scaled + 0.5);
    }
    t.first[i] = lo;
    t.count[i] = std::max<int64_t>(n, 0);
  }
  return t;
}

// Rounds a fixed-point accumulator (which started at one half) to a byte, clipping to [0, 255].
uint8_t clip8(int32_t acc) { return static_cast<uint8_t>(std::clamp(acc >> kPrecisionBits, 0, 255)); }

// Horizontal pass over rows [y0, y1) of an (h, w, c) image into a (y1 - y0, ow, c) one.
std::vector<uint8_t> horizontal(const uint8_t* src, int64_t w, int64_t c, int64_t y0, int64_t y1, const Taps& t,
                                int64_t ow) {
  std::vector<uint8_t> dst((y1 - y0) * ow * c);
  for (int64_t y = y0; y < y1; ++y) {
    const uint8_t* row = src + y * w * c;
    uint8_t* out = dst.data() + (y - y0) * ow * c;
    for (int64_t x = 0; x < ow; ++x) {
      const int32_t* k = t.k.data() + x * t.ksize;
      const uint8_t* in = row + t.first[x] * c;
      for (int64_t ch = 0; ch < c; ++ch) {
        int32_t acc = 1 << (kPrecisionBits - 1);
        for (int64_t j = 0; j < t.count[x]; ++j) acc += static_cast<int32_t>(in[j * c + ch]) * k[j];
        out[x * c + ch] = clip8(acc);
      }
    }
  }
  return dst;
}

// Vertical pass of an (any, w, c) image whose row 0 is source row `y_shift` into an (oh, w, c) one.
std::vector<uint8_t> vertical(const uint8_t* src, int64_t w, int64_t c, int64_t y_shift, const Taps& t,
                              int64_t oh) {
  std::vector<uint8_t> dst(oh * w * c);
  const int64_t stride = w * c;
  for (int64_t y = 0; y < oh; ++y) {
    const int32_t* k = t.k.data() + y * t.ksize;
    const uint8_t* in = src + (t.first[y] - y_shift) * stride;
    uint8_t* out = dst.data() + y * stride;
    for (int64_t i = 0; i < stride; ++i) {
      int32_t acc = 1 << (kPrecisionBits - 1);
      for (int64_t j = 0; j < t.count[y]; ++j) acc += static_cast<int32_t>(in[j * stride + i]) * k[j];
      out[i] = clip8(acc);
    }
  }
  return dst;
}

}  // namespace

std::vector<uint8_t> center_crop(const uint8_t* src, int64_t h, int64_t w, int64_t c, int64_t ch, int64_t cw) {
  check_image("center_crop", h, w, c);
  if (ch <= 0 || cw <= 0) throw std::invalid_argument("center_crop: crop size " + dims(ch, cw) + " must be positive");
  if (ch > h || cw > w)
    throw std::invalid_argument("center_crop: crop " + dims(ch, cw) + " (h x w) is larger than the image " +
                                dims(h, w));
  const int64_t top = half_offset(h - ch), left = half_offset(w - cw);
  std::vector<uint8_t> dst(ch * cw * c);
  for (int64_t y = 0; y < ch; ++y)
    std::copy_n(src + ((top + y) * w + left) * c, cw * c, dst.data() + y * cw * c);
  return dst;
}

std::vector<uint8_t> pil_resize_bilinear(const uint8_t* src, int64_t h, int64_t w, int64_t c, int64_t oh,
                                         int64_t ow) {
  check_image("pil_resize_bilinear", h, w, c);
  if (oh <= 0 || ow <= 0)
    throw std::invalid_argument("pil_resize_bilinear: output size " + dims(oh, ow) + " (from " + dims(h, w) +
                                ") must be positive");
  // The accumulator is a 32-bit int and the bounds C ints, as in Pillow; keep sizes where both are exact.
  if (std::max({h, w, oh, ow}) > (int64_t{1} << 24))
    throw std::invalid_argument("pil_resize_bilinear: sizes " + dims(h, w) + " -> " + dims(oh, ow) + " are too large");
  const bool need_h = ow != w, need_v = oh != h;
  if (!need_h && !need_v) return std::vector<uint8_t>(src, src + h * w * c);
  const Taps tv = need_v ? bilinear_taps(h, oh) : Taps{};
  if (!need_h) return vertical(src, w, c, 0, tv, oh);
  // Only the rows the vertical pass reads go through the horizontal pass.
  const int64_t y0 = need_v ? tv.first.front() : 0;
  const int64_t y1 = need_v ? tv.first.back() + tv.count.back() : h;
  std::vector<uint8_t> tmp = horizontal(src, w, c, y0, y1, bilinear_taps(w, ow), ow);
  if (!need_v) return tmp;
  return vertical(tmp.data(), ow, c, y0, tv, oh);
}

std::pair<int64_t, int64_t> cover_size(int64_t h, int64_t w, int64_t height, int64_t width) {
  if (h <= 0 || w <= 0 || height <= 0 || width <= 0)
    throw std::invalid_argument("cover_size: image " + dims(h, w) + " and target " + dims(height, width) +
                                " must be positive");
  // Integer division is Python's int(a * b / c) for these positive sizes: a non-integer quotient is at least
  // 1 / c away from an integer, far more than a double's rounding error.
  if (w * height >= h * width) return {height, height * w / h};
  return {width * h / w, width};
}

void transform_to_chw(const uint8_t* src, int64_t h, int64_t w, int64_t c, const ImageTransform& t, float* out) {
  check_image("transform_to_chw", h, w, c);
  if (t.height <= 0 || t.width <= 0)
    throw std::invalid_argument("transform_to_chw: output size " + dims(t.height, t.width) + " must be positive");
  std::vector<uint8_t> buf;
  const uint8_t* cur = src;
  if (t.crop_h != 0 || t.crop_w != 0) {
    if (t.crop_h <= 0 || t.crop_w <= 0)
      throw std::invalid_argument("transform_to_chw: crop " + dims(t.crop_h, t.crop_w) +
                                  " must be positive in both sizes (or 0x0 for none)");
    buf = center_crop(cur, h, w, c, t.crop_h, t.crop_w);
    cur = buf.data();
    h = t.crop_h;
    w = t.crop_w;
  }
  const auto [rh, rw] = t.stretch ? std::pair{t.height, t.width} : cover_size(h, w, t.height, t.width);
  if (rh != h || rw != w) {
    buf = pil_resize_bilinear(cur, h, w, c, rh, rw);
    cur = buf.data();
    h = rh;
    w = rw;
  }
  if (h != t.height || w != t.width) {
    buf = center_crop(cur, h, w, c, t.height, t.width);
    cur = buf.data();
  }
  const int64_t plane = t.height * t.width;
  for (int64_t i = 0; i < plane; ++i)
    for (int64_t ch = 0; ch < c; ++ch) out[ch * plane + i] = static_cast<float>(cur[i * c + ch]) / 255.0f;
}

}  // namespace wn::gan
