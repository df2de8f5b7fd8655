// Driver for apps/bench/check_resize.py (built as build/apps/check_resize): runs gan/resize.cpp on cases read
// from stdin and writes the results to stdout, so that the script can compare them with Pillow.
//
// Input, repeated until end of file: one header line, then h * w * c bytes of an interleaved (h, w, c) image.
//   R h w c oh ow                                      pil_resize_bilinear to (oh, ow)
//   C h w c ch cw                                      center_crop to (ch, cw)
//   T h w c crop_h crop_w height width stretch         transform_to_chw (stretch 0 or 1)
// Output per case: 'K' then the result (R, C: bytes in (h, w, c) order; T: c * height * width native floats), or
// 'E' then the exception's message and a newline.
#include <cstdio>
#include <exception>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "gan/resize.h"

namespace {

void put(const void* data, size_t n) {
  if (n && std::fwrite(data, 1, n, stdout) != n) throw std::runtime_error("check_resize: short write on stdout");
}

}  // namespace

int main() {
  std::string line;
  int64_t cases = 0;
  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    std::istringstream in(line);
    char op = 0;
    int64_t h = 0, w = 0, c = 0;
    in >> op >> h >> w >> c;
    if (!in || h < 0 || w < 0 || c < 0) {
      std::fprintf(stderr, "check_resize: bad header line %lld: '%s'\n", static_cast<long long>(cases + 1),
                   line.c_str());
      return 2;
    }
    std::vector<uint8_t> img(h * w * c);
    if (!std::cin.read(reinterpret_cast<char*>(img.data()), static_cast<std::streamsize>(img.size()))) {
      std::fprintf(stderr, "check_resize: image of case %lld is truncated\n", static_cast<long long>(cases + 1));
      return 2;
    }
    ++cases;
    try {
      if (op == 'R' || op == 'C') {
        int64_t oh = 0, ow = 0;
        in >> oh >> ow;
        const auto out = op == 'R' ? wn::gan::pil_resize_bilinear(img.data(), h, w, c, oh, ow)
                                   : wn::gan::center_crop(img.data(), h, w, c, oh, ow);
        put("K", 1);
        put(out.data(), out.size());
      } else if (op == 'T') {
        wn::gan::ImageTransform t;
        int stretch = 0;
        in >> t.crop_h >> t.crop_w >> t.height >> t.width >> stretch;
        t.stretch = stretch != 0;
        std::vector<float> out(t.height > 0 && t.width > 0 ? c * t.height * t.width : 0);
        wn::gan::transform_to_chw(img.data(), h, w, c, t, out.data());
        put("K", 1);
        put(out.data(), out.size() * sizeof(float));
      } else {
        std::fprintf(stderr, "check_resize: unknown operation '%c' in case %lld\n", op, static_cast<long long>(cases));
        return 2;
      }
    } catch (const std::invalid_argument& e) {
      std::string msg = std::string("E") + e.what() + "\n";
      put(msg.data(), msg.size());
    }
  }
  std::fflush(stdout);
  return 0;
}
