// Pictures: a grid of images (N, C, H, W) in [0, 1] written as a PNG (atomically).
#pragma once
#include <string>

#include "engine/tensor.h"

namespace wn::gan {

// Lays images out in rows of `cols` with a `pad`-pixel border and writes a PNG.
void write_png_grid(const std::string& path, const Tensor& images, int64_t cols = 0, int64_t pad = 2);
// The same grid as a JPEG (quality 95).
void write_jpg_grid(const std::string& path, const Tensor& images, int64_t cols = 0, int64_t pad = 2);
// Stacks rows of images side by side: row r of the result holds images[r] (each a
// (N, C, H, W) tensor of equal shape); used for strips across iterations and
// target / reconstruction pairs.
void write_png_rows(const std::string& path, const std::vector<Tensor>& rows, int64_t pad = 2);
// Reads back up to k images (C, H, W) of the top row of a grid written with a `pad`-pixel
// border (the first k fixed codes of a sample grid) as (n <= k, C, H, W); an undefined
// tensor when the file is unreadable or holds no whole image.
Tensor read_grid_cells(const std::string& png, int64_t C, int64_t H, int64_t W, int64_t k, int64_t pad = 2);

}  // namespace wn::gan
