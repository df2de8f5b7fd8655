// Image data sets (docs/paper.md section 6): IDX (MNIST, Fashion-MNIST; gzip or plain),
// CIFAR-10 binary batches, a folder of PNG/JPEG images (CelebA) and LSUN as
// distributed (an LMDB of encoded images). Every image comes out as floats in [0, 1],
// (C, H, W), resized to the requested size; bad files give errors naming the file.
#pragma once
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "gan/resize.h"

namespace wn::gan {

// A data set that cannot be read.
struct DataError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// A --data value (or sizes, crop) that names no usable data set: a usage error (exit 2),
// where DataError is a file that cannot be read (exit 1).
struct DataSpecError : DataError {
  using DataError::DataError;
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  // Writes image i as C * H * W floats in [0, 1] (thread-safe).
  virtual void load(int64_t i, float* out) const = 0;
  // A one-line description ("fashion-mnist: 70000 images, 1x28x28").
  virtual std::string describe() const = 0;
  int64_t channels = 0, height = 0, width = 0;
  int64_t crop_h = 0, crop_w = 0;  // centre crop before resizing (0: none)
  bool stretch = false;            // resize ignoring the aspect ratio (else shorter edge, then centre crop)
  // How stored images become (channels, height, width) (gan/resize.h).
  ImageTransform transform() const { return {crop_h, crop_w, height, width, stretch}; }
};

// Opens "fashion-mnist" (Debian's dataset-fashion-mnist), "mnist:DIR", "cifar10:DIR",
// "folder:DIR" or "lsun:DIR" at size height x width (0: the data set's own size;
// folders and LSUN default to 64). channels 0 keeps the data set's own (folders and
// LSUN: 3). Images are centre-cropped to crop_h x crop_w first (0: no crop), then
// resized as the authors' torchvision transforms did (gan/resize.h): stretched to
// height x width, or scaled on the shorter edge and centre-cropped. Checks files up
// front (magic numbers, sizes, image headers, the transform on the first image).
std::unique_ptr<Dataset> open_dataset(const std::string& spec, int64_t height = 0, int64_t width = 0,
                                      int64_t channels = 0, int64_t crop_h = 0, int64_t crop_w = 0,
                                      bool stretch = false);
// The most pixels (width x height) an encoded image may decode to: 2^24 (4096 x 4096) by
// default, so a decompression bomb is refused from its header; --max-image-pixels raises it.
int64_t max_image_pixels();
void set_max_image_pixels(int64_t n);
// Where the default data set lives.
extern const char* const kFashionMnistDir;

}  // namespace wn::gan
