// Image preprocessing as the authors did it: optional centre crop, Pillow's BILINEAR resize (antialiased when
// shrinking) and a shorter-edge scale plus centre crop, reproduced to the bit on interleaved 8-bit images.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

namespace wn::gan {

// How a stored 8-bit image becomes the model's input (docs/paper.md section 6, the authors' torchvision transforms).
struct ImageTransform {
  int64_t crop_h = 0, crop_w = 0;  // centre crop first (0: none), as transforms.CenterCrop
  int64_t height = 0, width = 0;   // output size
  bool stretch = false;            // true: resize straight to width x height (the authors' --width/--height);
                                   // false: scale so the image covers height x width keeping its aspect ratio
                                   // (shorter edge to the size, the other int(size * long / short) as
                                   // torchvision's Scale(int)), then centre crop (the authors' --image_size)
};

// Centre crop of an interleaved (h, w, c) uint8 image to (ch, cw): offsets int(round((h - ch) / 2.)) with
// Python 3's round-half-to-even, as torchvision's CenterCrop. Throws std::invalid_argument naming both sizes
// when the crop is larger than the image.
std::vector<uint8_t> center_crop(const uint8_t* src, int64_t h, int64_t w, int64_t c, int64_t ch, int64_t cw);

// Pillow's Image.resize((ow, oh), BILINEAR) on an interleaved uint8 image: a triangle filter whose support
// grows with the scale when shrinking, coefficients in Pillow's fixed point (22 bits), the horizontal pass
// first, each pass rounding to uint8; a pass whose size does not change is skipped, as Pillow does.
// Channels are filtered independently (Pillow's L and RGB; it premultiplies alpha for LA and RGBA).
std::vector<uint8_t> pil_resize_bilinear(const uint8_t* src, int64_t h, int64_t w, int64_t c, int64_t oh,
                                         int64_t ow);

// The whole transform: crop, resize, centre crop; writes (c, height, width) floats in [0, 1] (value / 255, as
// ToTensor).
void transform_to_chw(const uint8_t* src, int64_t h, int64_t w, int64_t c, const ImageTransform& t, float* out);

// The size (height, width) the keep-aspect resize of an (h, w) image produces before the final centre crop.
std::pair<int64_t, int64_t> cover_size(int64_t h, int64_t w, int64_t height, int64_t width);

}  // namespace wn::gan
