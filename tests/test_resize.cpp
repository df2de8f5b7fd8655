// Centre crop, Pillow-exact BILINEAR resize and the authors' transform, against values worked out by hand.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "gan/resize.h"

using namespace wn::gan;

namespace {
using Bytes = std::vector<uint8_t>;

// The message of the std::invalid_argument that f throws, or "" when it throws none.
template <class F>
std::string invalid_argument_message(F f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("center_crop takes the middle, with offsets rounded half to even") {
  Bytes img(16);
  for (int i = 0; i < 16; ++i) img[i] = static_cast<uint8_t>(i);  // 4x4, value = 4 * y + x
  // (4 - 2) / 2 = 1 on both axes: rows 1..2, columns 1..2.
  CHECK(center_crop(img.data(), 4, 4, 1, 2, 2) == Bytes{5, 6, 9, 10});
  const Bytes row{0, 1, 2, 3, 4, 5, 6, 7, 8};
  CHECK(center_crop(row.data(), 1, 5, 1, 1, 2) == Bytes{2, 3});  // round(3 / 2.) = round(1.5) = 2
  CHECK(center_crop(row.data(), 1, 7, 1, 1, 2) == Bytes{2, 3});  // round(2.5) = 2, not 3 (half to even)
  CHECK(center_crop(row.data(), 1, 9, 1, 1, 2) == Bytes{4, 5});  // round(3.5) = 4
  // Three channels move together: 1x3 RGB cropped to its middle pixel.
  const Bytes rgb{1, 2, 3, 4, 5, 6, 7, 8, 9};
  CHECK(center_crop(rgb.data(), 1, 3, 3, 1, 1) == Bytes{4, 5, 6});
}

TEST_CASE("center_crop of the authors' CelebA images starts at row 29, column 9") {
  // 218 high, 178 wide, crop 160: top = round(58 / 2.) = 29, left = round(18 / 2.) = 9.
  Bytes img(218 * 178);
  for (int y = 0; y < 218; ++y)
    for (int x = 0; x < 178; ++x) img[y * 178 + x] = static_cast<uint8_t>((y * 7 + x * 3) % 256);
  const Bytes out = center_crop(img.data(), 218, 178, 1, 160, 160);
  REQUIRE(out.size() == 160u * 160u);
  CHECK(out[0] == (29 * 7 + 9 * 3) % 256);
  CHECK(out[159 * 160 + 159] == ((29 + 159) * 7 + (9 + 159) * 3) % 256);
}

TEST_CASE("pil_resize_bilinear shrinks with a widened, fixed-point triangle filter") {
  // 4 -> 2: scale 2, support 2, weights at (j + xmin - center + 0.5) / 2.
  // Output 0: center 1, taps 0..2 with 1 - |-0.25|, 1 - |0.25|, 1 - |0.75| = .75 .75 .25, sum 1.75: 3/7 3/7 1/7;
  // in 22 bits int(3/7 * 4194304 + .5) = 1797559 and int(1/7 * 4194304 + .5) = 599186.
  // (100 * 1797559 + 200 * 599186 + 2097152) >> 22 = 301690252 >> 22 = 71.
  // Output 1: center 3, taps 1..3 with weights 1/7 3/7 3/7:
  // (100 * 599186 + 200 * 1797559 + 255 * 1797559 + 2097152) >> 22 = 879905097 >> 22 = 209.
  const Bytes row{0, 100, 200, 255};
  CHECK(pil_resize_bilinear(row.data(), 1, 4, 1, 1, 2) == Bytes{71, 209});
  // The same numbers down a column: the vertical pass.
  CHECK(pil_resize_bilinear(row.data(), 4, 1, 1, 2, 1) == Bytes{71, 209});
  // 2x2 -> 1x1, each pass rounding to a byte: weights 1/2 1/2 (2097152 each); row 0 gives
  // (255 * 2097152 + 2097152) >> 22 = 128 (127.5 rounded up), row 1 gives 255; then
  // (128 * 2097152 + 255 * 2097152 + 2097152) >> 22 = 192, where the exact mean 191.25 would give 191.
  const Bytes square{0, 255, 255, 255};
  CHECK(pil_resize_bilinear(square.data(), 2, 2, 1, 1, 1) == Bytes{192});
}

TEST_CASE("pil_resize_bilinear enlarges with the plain triangle filter") {
  // 2 -> 4: scale 0.5, support 1. Centers 0.25, 0.75, 1.25, 1.75.
  // 0: taps {0} (only one, weight 1) -> 0.   1: taps {0, 1} weights .75 .25 -> (200 * 1048576 + 2097152) >> 22 = 50.
  // 2: taps {0, 1} weights .25 .75 -> 150.   3: taps {1} -> 200.
  const Bytes row{0, 200};
  CHECK(pil_resize_bilinear(row.data(), 1, 2, 1, 1, 4) == Bytes{0, 50, 150, 200});
  // A size that does not change is a copy.
  CHECK(pil_resize_bilinear(row.data(), 1, 2, 1, 1, 2) == row);
}

TEST_CASE("transform_to_chw: stretch against keep-aspect on a 2x4 image") {
  // Rows [0 100 200 255] and [10 20 30 40].
  const Bytes img{0, 100, 200, 255, 10, 20, 30, 40};
  std::vector<float> out(4);
  // Stretch: width 4 -> 2 with the weights above, the height kept (no vertical pass). Row 1:
  // (10 * 1797559 + 20 * 1797559 + 30 * 599186 + 2097152) >> 22 = 73999502 >> 22 = 17;
  // (20 * 599186 + 30 * 1797559 + 40 * 1797559 + 2097152) >> 22 = 139910002 >> 22 = 33.
  transform_to_chw(img.data(), 2, 4, 1, {.height = 2, .width = 2, .stretch = true}, out.data());
  CHECK(out == std::vector<float>{71 / 255.f, 209 / 255.f, 17 / 255.f, 33 / 255.f});
  // Keep aspect: 4 * 2 >= 2 * 2, so height 2 and width int(2 * 4 / 2) = 4: no resize; centre crop columns 1..2.
  transform_to_chw(img.data(), 2, 4, 1, {.height = 2, .width = 2}, out.data());
  CHECK(out == std::vector<float>{100 / 255.f, 200 / 255.f, 20 / 255.f, 30 / 255.f});
}

TEST_CASE("transform_to_chw writes planes, crops first and keeps an image whose short edge fits") {
  // 1x2 RGB [1 2 3 | 4 5 6] -> planes R: 1 4, G: 2 5, B: 3 6.
  const Bytes rgb{1, 2, 3, 4, 5, 6};
  std::vector<float> out(6);
  transform_to_chw(rgb.data(), 1, 2, 3, {.height = 1, .width = 2, .stretch = true}, out.data());
  CHECK(out == std::vector<float>{1 / 255.f, 4 / 255.f, 2 / 255.f, 5 / 255.f, 3 / 255.f, 6 / 255.f});
  // 3x2 (w <= h and w == 2): Scale(2) leaves it alone; CenterCrop(2) takes rows round(0.5) = 0 and 1.
  const Bytes tall{1, 2, 3, 4, 5, 6};
  std::vector<float> sq(4);
  transform_to_chw(tall.data(), 3, 2, 1, {.height = 2, .width = 2}, sq.data());
  CHECK(sq == std::vector<float>{1 / 255.f, 2 / 255.f, 3 / 255.f, 4 / 255.f});
  // Crop 1x4 -> 1x2 (offset 1: [100 200]) then stretch to 1x4 as the 2 -> 4 case: centers .25 .75 1.25 1.75,
  // 100 * .75 + 200 * .25 = 125, 100 * .25 + 200 * .75 = 175.
  const Bytes row{0, 100, 200, 255};
  std::vector<float> up(4);
  transform_to_chw(row.data(), 1, 4, 1, {.crop_h = 1, .crop_w = 2, .height = 1, .width = 4, .stretch = true},
                   up.data());
  CHECK(up == std::vector<float>{100 / 255.f, 125 / 255.f, 175 / 255.f, 200 / 255.f});
}

TEST_CASE("cover_size scales the shorter edge as torchvision's Scale") {
  // CelebA uncropped, 218x178 to 64: the width is shorter, height int(64 * 218 / 178) = int(78.38) = 78.
  CHECK(cover_size(218, 178, 64, 64) == std::pair<int64_t, int64_t>{78, 64});
  // Non-square target 32x64 on a 100x100 image: 100 * 32 < 100 * 64, so width 64 and height 64 covers 32x64.
  CHECK(cover_size(100, 100, 32, 64) == std::pair<int64_t, int64_t>{64, 64});
}

TEST_CASE("resize errors name the sizes") {
  const Bytes img(16, 0);
  std::string msg = invalid_argument_message([&] { center_crop(img.data(), 4, 4, 1, 3, 5); });
  CHECK(msg.find("3x5") != std::string::npos);
  CHECK(msg.find("4x4") != std::string::npos);
  msg = invalid_argument_message([&] { pil_resize_bilinear(img.data(), 4, 4, 1, 0, 2); });
  CHECK(msg.find("0x2") != std::string::npos);
  std::vector<float> out(16);
  msg = invalid_argument_message(
      [&] { transform_to_chw(img.data(), 4, 4, 1, {.crop_h = 5, .crop_w = 4, .height = 2, .width = 2}, out.data()); });
  CHECK(msg.find("5x4") != std::string::npos);
  msg = invalid_argument_message([&] { transform_to_chw(img.data(), 4, 4, 1, {.height = 0, .width = 2}, out.data()); });
  CHECK(msg.find("0x2") != std::string::npos);
  CHECK_THROWS_AS(center_crop(img.data(), 0, 4, 1, 1, 1), std::invalid_argument);
}

TEST_CASE("resize, crop and the authors' transform give Pillow's pixels (fixtures made with Pillow)") {
  // tests/data/resize_pillow.txt (tests/data/make_resize_fixtures.py): each line an operation on an
  // input made by the generator below, and the bytes Pillow gave.
  auto image = [](int64_t h, int64_t w, int64_t c, const std::string& kind, uint64_t param) {
    Bytes out(size_t(h * w * c), uint8_t(kind == "flat" ? param : 0));
    if (kind == "flat") return out;
    uint64_t s = param;
    for (uint8_t& b : out) {
      s = (s * 1103515245ULL + 12345ULL) % (1ULL << 31);
      const uint8_t v = uint8_t((s >> 16) & 255);
      b = kind == "noise" ? v : uint8_t(255 * (v & 1));
    }
    return out;
  };
  auto unhex = [](const std::string& s) {
    Bytes out(s.size() / 2);
    for (size_t i = 0; i < out.size(); ++i) out[i] = uint8_t(std::stoi(s.substr(2 * i, 2), nullptr, 16));
    return out;
  };
  std::ifstream f(std::string(WNGAN_SOURCE_DIR) + "/tests/data/resize_pillow.txt");
  REQUIRE(f);
  int cases = 0, refused = 0;
  for (std::string line; std::getline(f, line);) {
    if (line.empty() || line[0] == '#') continue;
    const auto colon = line.find(" : ");
    REQUIRE(colon != std::string::npos);
    std::istringstream in(line.substr(0, colon));
    const std::string want = line.substr(colon + 3);
    char op = 0;
    int64_t h = 0, w = 0, c = 0;
    std::string kind;
    uint64_t param = 0;
    in >> op >> h >> w >> c >> kind >> param;
    const Bytes img = image(h, w, c, kind, param);
    INFO(line.substr(0, colon));
    ++cases;
    if (op == 'R' || op == 'C') {
      int64_t oh = 0, ow = 0;
      in >> oh >> ow;
      auto run = [&] {
        return op == 'R' ? pil_resize_bilinear(img.data(), h, w, c, oh, ow) : center_crop(img.data(), h, w, c, oh, ow);
      };
      if (want == "error") {
        CHECK(!invalid_argument_message(run).empty());
        ++refused;
      } else {
        CHECK(run() == unhex(want));
      }
    } else {
      REQUIRE(op == 'T');
      ImageTransform t;
      int stretch = 0;
      in >> t.crop_h >> t.crop_w >> t.height >> t.width >> stretch;
      t.stretch = stretch != 0;
      std::vector<float> out(size_t(c * t.height * t.width));
      if (want == "error") {
        CHECK(!invalid_argument_message([&] { transform_to_chw(img.data(), h, w, c, t, out.data()); }).empty());
        ++refused;
        continue;
      }
      transform_to_chw(img.data(), h, w, c, t, out.data());
      const Bytes bytes = unhex(want);
      REQUIRE(bytes.size() == out.size());
      int64_t wrong = 0;
      for (size_t i = 0; i < out.size(); ++i) wrong += out[i] != float(bytes[i]) / 255.0f;  // ToTensor: byte / 255
      CHECK(wrong == 0);
    }
  }
  CHECK(cases == 56);
  CHECK(refused == 2);
}
