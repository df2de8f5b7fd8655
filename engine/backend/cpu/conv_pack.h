// Implicit GEMM for the CPU convolutions: the SGEMM's panels of an unfolded matrix (im2col's)
// packed straight from a zero-padded copy of the planes, so the unfolded matrix is never
// stored. The panels hold exactly the values the SGEMM's packing of the stored matrix would,
// so a product gives the same bits on either path.
#pragma once
#include <cstdint>

#include "engine/backend/cpu/sgemm.h"

namespace wn {

// Channels [c0, c1) of images [b0, b0 + m) of a (N, C, H, W) tensor, each plane with a zero
// border: image b, channel c at data + b * image + (c - c0) * plane, rows of `row` floats.
struct PaddedPlanes {
  const float* data = nullptr;
  int64_t row = 0, plane = 0, image = 0;
};

// Floats pad_planes writes for m images of `channels` planes of h x w with a border of ph
// rows and pw columns on each side (and a zeroed tail that the vector loads of stride-2 runs
// may read past the last plane).
int64_t padded_planes_size(int64_t m, int64_t channels, int64_t h, int64_t w, int64_t ph, int64_t pw);
// Copies channels [c0, c1) of images [b0, b0 + m) of x (N, C, h, w) into dst with a zero
// border of ph rows and pw columns on each side (split over tasks).
PaddedPlanes pad_planes(const float* x, int64_t c, int64_t h, int64_t w, int64_t b0, int64_t m, int64_t c0,
                        int64_t c1, int64_t ph, int64_t pw, float* dst);

// An unfolded matrix U(p, j) = data[tap[p] + column(j)], never stored: p a row (a tap: a
// channel and a kernel offset), j = (b, y, x) a column (an output pixel of image b, y < rows
// of `width` columns each, `per_image` columns per image), column(j) = b * image +
// y * row + x * stride.
struct Unfolded {
  const float* data = nullptr;
  const int64_t* tap = nullptr;
  int64_t image = 0, row = 0, stride = 1, width = 1, per_image = 1;
};

// B = U (the forward product W U, and the data gradient's phases).
SgemmBPacker unfolded_packer(const Unfolded& u);
// B = U^T (the weight gradient dy U^T).
SgemmBPacker unfolded_t_packer(const Unfolded& u);

}  // namespace wn
