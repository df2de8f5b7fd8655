#include "gan/image_grid.h"

#include <stb_image.h>
#include <stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "nn/checkpoint.h"

namespace wn::gan {

namespace {
void write_image(const std::string& path, const std::vector<uint8_t>& px, int64_t w, int64_t h, int64_t c, bool jpeg) {
  std::string out;
  auto sink = [](void* ctx, void* data, int size) { static_cast<std::string*>(ctx)->append(static_cast<char*>(data), size); };
  const bool ok = jpeg ? stbi_write_jpg_to_func(sink, &out, int(w), int(h), int(c), px.data(), 95)
                       : stbi_write_png_to_func(sink, &out, int(w), int(h), int(c), px.data(), int(w * c));
  if (!ok) throw std::runtime_error(fmt::format("{}: {} encoding failed", path, jpeg ? "JPEG" : "PNG"));
  nn::write_file_atomic(path, out);
}

}  // namespace

static void write_rows(const std::string& path, const std::vector<Tensor>& rows, int64_t pad, bool jpeg);
static std::vector<Tensor> grid_rows(const Tensor& images, int64_t cols);

void write_png_rows(const std::string& path, const std::vector<Tensor>& rows, int64_t pad) {
  write_rows(path, rows, pad, false);
}

// Stacks the rows into one picture and writes it as PNG or JPEG (atomically).
static void write_rows(const std::string& path, const std::vector<Tensor>& rows, int64_t pad, bool jpeg) {
  if (rows.empty() || rows[0].rank() != 4) throw std::invalid_argument("write_png_rows: needs (N, C, H, W) rows");
  const int64_t n = rows[0].dim(0), c = rows[0].dim(1), h = rows[0].dim(2), w = rows[0].dim(3);
  const int64_t oc = c == 1 ? 1 : 3;
  const int64_t W = n * (w + pad) + pad, H = static_cast<int64_t>(rows.size()) * (h + pad) + pad;
  std::vector<uint8_t> px(static_cast<size_t>(W * H * oc), 255);
  for (size_t r = 0; r < rows.size(); ++r) {
    if (rows[r].shape() != rows[0].shape()) throw std::invalid_argument("write_png_rows: rows differ in shape");
    std::vector<double> v = rows[r].to_vector();
    for (int64_t i = 0; i < n; ++i)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x)
          for (int64_t k = 0; k < oc; ++k) {
            double val = v[((i * c + std::min(k, c - 1)) * h + y) * w + x];
            if (!std::isfinite(val)) val = 0;
            const int64_t X = pad + i * (w + pad) + x, Y = pad + int64_t(r) * (h + pad) + y;
            px[(Y * W + X) * oc + k] = static_cast<uint8_t>(std::lround(std::clamp(val, 0.0, 1.0) * 255));
          }
  }
  write_image(path, px, W, H, oc, jpeg);
}

void write_jpg_grid(const std::string& path, const Tensor& images, int64_t cols, int64_t pad) {
  write_rows(path, grid_rows(images, cols), pad, true);
}

void write_png_grid(const std::string& path, const Tensor& images, int64_t cols, int64_t pad) {
  write_rows(path, grid_rows(images, cols), pad, false);
}

// The images in rows of `cols` (blank cells white).
static std::vector<Tensor> grid_rows(const Tensor& images, int64_t cols) {
  if (images.rank() != 4) throw std::invalid_argument("an image grid needs (N, C, H, W)");
  const int64_t n = images.dim(0);
  if (cols <= 0) cols = static_cast<int64_t>(std::ceil(std::sqrt(double(n))));
  const int64_t rows = (n + cols - 1) / cols;
  const int64_t per = images.numel() / std::max<int64_t>(n, 1);
  std::vector<double> v = images.to_vector();
  std::vector<Tensor> out;
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<double> row(static_cast<size_t>(cols * per), 1.0);
    for (int64_t j = 0; j < cols && r * cols + j < n; ++j)
      std::copy(v.begin() + (r * cols + j) * per, v.begin() + (r * cols + j + 1) * per, row.begin() + j * per);
    out.push_back(Tensor::from_vector(row, {cols, images.dim(1), images.dim(2), images.dim(3)}));
  }
  return out;
}

Tensor read_grid_cells(const std::string& png, int64_t C, int64_t H, int64_t W, int64_t k, int64_t pad) {
  int w = 0, h = 0, n = 0;
  uint8_t* px = stbi_load(png.c_str(), &w, &h, &n, int(C));
  if (!px) return Tensor();
  const int64_t cells = std::min<int64_t>(k, (w - pad) / (W + pad));
  if (cells < 1 || h < H + pad) {
    stbi_image_free(px);
    return Tensor();
  }
  std::vector<double> v(static_cast<size_t>(cells * C * H * W));
  for (int64_t i = 0; i < cells; ++i)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x)
          v[((i * C + c) * H + y) * W + x] = px[((pad + y) * w + pad + i * (W + pad) + x) * C + c] / 255.0;
  stbi_image_free(px);
  return Tensor::from_vector(v, {cells, C, H, W});
}

}  // namespace wn::gan
