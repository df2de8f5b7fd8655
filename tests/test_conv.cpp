#include "engine/backend/cpu/cpu_backend.h"
#include "engine/backend/cpu/sgemm.h"
#include "helpers.h"

using namespace wn;
using wn::test::max_abs_diff;
using wn::test::rnd;

TEST_CASE("convolution gradients match central differences") { wn::test::check_gradcheck_family("conv"); }

namespace {
// Direct convolution in double, straight from the definition.
std::vector<double> naive_conv(const Tensor& xt, const Tensor& wt, Hw s, Hw p) {
  auto x = xt.to_vector(), w = wt.to_vector();
  int64_t N = xt.dim(0), C = xt.dim(1), H = xt.dim(2), W = xt.dim(3), O = wt.dim(0), KH = wt.dim(2), KW = wt.dim(3);
  int64_t OH = (H + 2 * p.h - KH) / s.h + 1, OW = (W + 2 * p.w - KW) / s.w + 1;
  std::vector<double> y(N * O * OH * OW, 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t i = 0; i < OH; ++i)
        for (int64_t j = 0; j < OW; ++j) {
          double acc = 0;
          for (int64_t c = 0; c < C; ++c)
            for (int64_t a = 0; a < KH; ++a)
              for (int64_t b = 0; b < KW; ++b) {
                int64_t yy = i * s.h - p.h + a, xx = j * s.w - p.w + b;
                if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
                acc += x[((n * C + c) * H + yy) * W + xx] * w[((o * C + c) * KH + a) * KW + b];
              }
          y[((n * O + o) * OH + i) * OW + j] = acc;
        }
  return y;
}

double dot(const Tensor& a, const Tensor& b) {
  auto u = a.to_vector(), v = b.to_vector();
  double s = 0;
  for (size_t i = 0; i < u.size(); ++i) s += u[i] * v[i];
  return s;
}
}  // namespace

TEST_CASE("conv2d value, computed by hand") {
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  Tensor w = Tensor::ones({1, 1, 2, 2});
  CHECK(conv2d(x, w).to_vector() == std::vector<double>{12, 16, 24, 28});
  CHECK(conv2d(x, w, Tensor::from_vector({1}, {1}), 2, 1).to_vector() == std::vector<double>{2, 6, 12, 29});
}

TEST_CASE("conv2d agrees with a direct convolution (batched, per-image and fully connected paths, float32)") {
  struct C {
    Shape x, w;
    Hw s, p;
  };
  for (const C& c : {C{{3, 3, 64, 64}, {8, 3, 4, 4}, 2, 1}, C{{2, 16, 8, 8}, {32, 16, 4, 4}, 2, 1},
                     C{{2, 5, 17, 18}, {6, 5, 3, 3}, 1, 1}, C{{1, 4, 9, 11}, {3, 4, 5, 3}, Hw(2, 1), Hw(2, 0)},
                     C{{2, 3, 10, 11}, {4, 3, 3, 3}, 3, 1}, C{{3, 64, 4, 4}, {2, 64, 4, 4}, 1, 0}}) {
    Tensor x = rnd(c.x, 1, -1, 1, DType::F32), w = rnd(c.w, 2, -1, 1, DType::F32);
    std::vector<double> ref = naive_conv(x, w, c.s, c.p);
    CHECK(max_abs_diff(conv2d(x, w, Tensor(), c.s, c.p).to_vector(), ref) < 1e-4);
  }
}

TEST_CASE("conv_transpose2d is the adjoint of conv2d: <conv(x), y> = <x, convT(y)>") {
  struct C {
    Shape x, w;
    Hw s, p;
  };
  for (const C& c : {C{{2, 3, 8, 8}, {4, 3, 4, 4}, 2, 1}, C{{1, 2, 32, 32}, {3, 2, 4, 4}, 2, 1},
                     C{{2, 2, 10, 6}, {2, 2, 4, 4}, 2, 2}, C{{1, 3, 7, 9}, {2, 3, 3, 3}, 1, 0}}) {
    Tensor x = rnd(c.x, 3), w = rnd(c.w, 4);
    Tensor cx = conv2d(x, w, Tensor(), c.s, c.p);
    Tensor y = rnd(cx.shape(), 5);
    Tensor ty = conv_transpose2d(y, w, Tensor(), c.s, c.p);
    REQUIRE(ty.shape() == x.shape());
    CHECK(dot(cx, y) == doctest::Approx(dot(x, ty)).epsilon(1e-12));
  }
}

TEST_CASE("float32 and float64 convolutions agree at a DCGAN shape") {
  Tensor x = rnd({4, 64, 16, 16}, 6), w = rnd({128, 64, 4, 4}, 7, -0.05, 0.05);
  Tensor y64 = conv2d(x, w, Tensor(), 2, 1), y32 = conv2d(x.to(DType::F32), w.to(DType::F32), Tensor(), 2, 1);
  CHECK(max_abs_diff(y64, y32) < 1e-4);
  Tensor t64 = conv_transpose2d(y64, w, Tensor(), 2, 1), t32 = conv_transpose2d(y32, w.to(DType::F32), Tensor(), 2, 1);
  CHECK(t64.shape() == Shape{4, 64, 16, 16});
  CHECK(max_abs_diff(t64, t32) < 1e-4);
}

TEST_CASE("conv argument errors name the op and the shapes") {
  CHECK_THROWS_WITH(conv2d(Tensor::zeros({1, 3, 8, 8}), Tensor::zeros({4, 2, 3, 3})),
                    doctest::Contains("conv2d: input channels differ from weight dim 1 (got f32(1, 3, 8, 8) on cpu and "
                                      "f32(4, 2, 3, 3) on cpu)"));
  CHECK_THROWS_WITH(conv2d(Tensor::zeros({1, 3, 2, 2}), Tensor::zeros({4, 3, 3, 3})),
                    doctest::Contains("kernel larger than the padded input"));
  CHECK_THROWS_WITH(conv_transpose2d(Tensor::zeros({1, 3, 4, 4}), Tensor::zeros({4, 2, 4, 4})),
                    doctest::Contains("conv_transpose2d: input channels differ from weight dim 0"));
  CHECK_THROWS_WITH(conv2d(Tensor::zeros({1, 3, 8, 8}), Tensor::zeros({4, 3, 3, 3}), Tensor(), 0),
                    doctest::Contains("must be >= 1"));
  CHECK_THROWS_WITH(conv2d(Tensor::zeros({3, 8, 8}), Tensor::zeros({4, 3, 3, 3})),
                    doctest::Contains("input must be (N, C, H, W)"));
}

namespace {
// Gradients of the direct convolution in double: dx and dw given dy.
void naive_conv_grads(const Tensor& xt, const Tensor& wt, const Tensor& dyt, Hw s, Hw p, std::vector<double>& dx,
                      std::vector<double>& dw) {
  auto x = xt.to_vector(), w = wt.to_vector(), dy = dyt.to_vector();
  int64_t N = xt.dim(0), C = xt.dim(1), H = xt.dim(2), W = xt.dim(3), O = wt.dim(0), KH = wt.dim(2), KW = wt.dim(3);
  int64_t OH = dyt.dim(2), OW = dyt.dim(3);
  dx.assign(x.size(), 0.0);
  dw.assign(w.size(), 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t i = 0; i < OH; ++i)
        for (int64_t j = 0; j < OW; ++j) {
          const double g = dy[((n * O + o) * OH + i) * OW + j];
          for (int64_t c = 0; c < C; ++c)
            for (int64_t a = 0; a < KH; ++a)
              for (int64_t b = 0; b < KW; ++b) {
                int64_t yy = i * s.h - p.h + a, xx = j * s.w - p.w + b;
                if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
                const int64_t xi = ((n * C + c) * H + yy) * W + xx, wi = ((o * C + c) * KH + a) * KW + b;
                dx[xi] += g * w[wi];
                dw[wi] += g * x[xi];
              }
        }
}

struct ConvRun {
  std::vector<double> y, dx, dw, db;
};
ConvRun run_conv(const Tensor& x0, const Tensor& w0, const Tensor& b0, const Tensor& dy, Hw s, Hw p) {
  Tensor x = x0.clone().set_requires_grad(), w = w0.clone().set_requires_grad(), b = b0.clone().set_requires_grad();
  Tensor y = conv2d(x, w, b, s, p);
  y.backward(dy);
  return {y.to_vector(), x.grad().to_vector(), w.grad().to_vector(), b.grad().to_vector()};
}
}  // namespace

TEST_CASE("conv2d data and weight gradients over many chunks equal the direct convolution's") {
  // 37 images of 6x6 outputs: chunks of 4 images (the last one short) for the forward and
  // data gradient, of 15 for the weight gradient (3 chunks: one channel group, its chunks in
  // 3 ranges summed as partials); 30 one-channel images of 28x28: 10 chunks of 3 in 5
  // ranges of 2; 17 channels of 4x4 taps: 6 groups of 3 channels, 2 ranges each.
  struct C {
    Shape x, w;
    Hw s, p;
  };
  for (const C& c : {C{{37, 5, 6, 6}, {4, 5, 3, 3}, 1, 1}, C{{19, 3, 8, 8}, {6, 3, 4, 4}, 2, 1},
                     C{{3, 17, 40, 40}, {2, 17, 4, 4}, 2, 1}, C{{30, 1, 28, 28}, {5, 1, 4, 4}, 2, 1}}) {
    Tensor x = rnd(c.x, 11), w = rnd(c.w, 12), b = rnd({c.w[0]}, 13);
    Tensor y = conv2d(x, w, b, c.s, c.p);
    Tensor dy = rnd(y.shape(), 14);
    ConvRun r = run_conv(x, w, b, dy, c.s, c.p);
    std::vector<double> dx, dw;
    naive_conv_grads(x, w, dy, c.s, c.p, dx, dw);
    CHECK(max_abs_diff(r.dx, dx) < 1e-10);
    CHECK(max_abs_diff(r.dw, dw) < 1e-10);
  }
}

TEST_CASE("convolutions give the same bits with 1 and 2 threads") {
  Tensor x = rnd({33, 16, 12, 12}, 21, -1, 1, DType::F32), w = rnd({24, 16, 4, 4}, 22, -0.1, 0.1, DType::F32);
  Tensor b = rnd({24}, 23, -1, 1, DType::F32);
  Tensor dy = rnd({33, 24, 6, 6}, 24, -1, 1, DType::F32);
  const int before = num_threads();
  set_num_threads(1);
  ConvRun one = run_conv(x, w, b, dy, 2, 1);
  set_num_threads(2);
  ConvRun two = run_conv(x, w, b, dy, 2, 1);
  set_num_threads(before);
  CHECK(one.y == two.y);
  CHECK(one.dx == two.dx);
  CHECK(one.dw == two.dw);
  CHECK(one.db == two.db);
}

TEST_CASE("implicit GEMM convolutions: the same bits as im2col, and the direct convolution's values") {
  if (!own_sgemm_supported()) {
    MESSAGE("no AVX2 + FMA on this CPU: the convolutions run by im2col only");
    return;
  }
  // Output rows of 32 (runs of 16 at stride 2), 7, 6 (runs crossing images and panels), 17, 18
  // and 10; strides 1, 2, 3 and (2, 1); K above one 256-row block; Cout of 520 (the row
  // split); 4096-pixel planes (the column split); one-channel 28x28 (the weight gradient's
  // partial sums); a 92x92 plane with 16 outputs (the weight gradient's k split, which stays
  // on im2col); a 1x1 kernel at stride 2 and a 3x2 kernel at stride (3, 2).
  struct C {
    Shape x, w;
    Hw s, p;
  };
  const bool was = set_own_sgemm(true), implicit_was = cpu_implicit_conv_enabled();
  struct Restore {  // the switches as they were, also when a REQUIRE below fails
    bool own, implicit;
    ~Restore() {
      set_cpu_implicit_conv(implicit);
      set_own_sgemm(own);
    }
  } restore{was, implicit_was};
  int checked = 0;
  for (const C& c : {C{{3, 3, 64, 64}, {8, 3, 4, 4}, 2, 1}, C{{37, 5, 6, 6}, {4, 5, 3, 3}, 1, 1},
                     C{{5, 16, 14, 14}, {24, 16, 4, 4}, 2, 1}, C{{2, 5, 17, 18}, {6, 5, 3, 3}, 1, 1},
                     C{{1, 4, 9, 11}, {3, 4, 5, 3}, Hw(2, 1), Hw(2, 0)}, C{{2, 3, 10, 11}, {4, 3, 3, 3}, 3, 1},
                     C{{4, 2, 20, 20}, {3, 2, 2, 2}, 2, 0}, C{{6, 8, 16, 16}, {16, 8, 4, 4}, 1, 2},
                     C{{3, 32, 8, 8}, {20, 32, 4, 4}, 2, 1}, C{{2, 8, 8, 8}, {520, 8, 3, 3}, 1, 1},
                     C{{2, 4, 64, 64}, {8, 4, 3, 3}, 1, 1}, C{{30, 1, 28, 28}, {5, 1, 4, 4}, 2, 1},
                     C{{1, 1, 92, 92}, {16, 1, 3, 3}, 1, 1}, C{{2, 3, 9, 9}, {4, 3, 1, 1}, 2, 0},
                     C{{2, 2, 11, 7}, {3, 2, 3, 2}, Hw(3, 2), Hw(2, 1)}}) {
    CAPTURE(c.x);
    CAPTURE(c.w);
    Tensor x = rnd(c.x, 31, -1, 1, DType::F32), w = rnd(c.w, 32, -1, 1, DType::F32);
    Tensor b = rnd({c.w[0]}, 33, -1, 1, DType::F32);
    Tensor dy = rnd(conv2d(x, w, b, c.s, c.p).shape(), 34, -1, 1, DType::F32);
    set_cpu_implicit_conv(false);
    ConvRun im2col = run_conv(x, w, b, dy, c.s, c.p);
    set_cpu_implicit_conv(true);
    REQUIRE(cpu_implicit_conv_enabled());
    ConvRun implicit = run_conv(x, w, b, dy, c.s, c.p);
    CHECK(implicit.y == im2col.y);
    CHECK(implicit.dx == im2col.dx);
    CHECK(implicit.dw == im2col.dw);
    std::vector<double> y = naive_conv(x, w, c.s, c.p), dx, dw;
    naive_conv_grads(x, w, dy, c.s, c.p, dx, dw);
    std::vector<double> ynb = implicit.y;  // the bias added per output channel, here and below
    const int64_t P = int64_t(y.size()) / (c.x[0] * c.w[0]);
    const std::vector<double> bv = b.to_vector();
    for (size_t i = 0; i < y.size(); ++i) ynb[i] -= bv[(int64_t(i) / P) % c.w[0]];
    const double scale = double(c.w[1] * c.w[2] * c.w[3]);
    CHECK(max_abs_diff(ynb, y) < 1e-5 * scale);
    CHECK(max_abs_diff(implicit.dx, dx) < 1e-5 * c.w[0] * c.w[2] * c.w[3]);
    CHECK(max_abs_diff(implicit.dw, dw) < 1e-5 * double(dy.numel() / c.w[0]));
    ++checked;
  }
  CHECK(checked == 15);
}

TEST_CASE("implicit GEMM convolutions: the 12x32 kernels give the 6x16 kernel's bits in every direction") {
  // The AVX-512 kernel where the CPU has it, and its tiling on AVX2 register pairs always:
  // the products behind the implicit packing, the packed weights and the weight gradient.
  if (!own_sgemm_supported()) {
    MESSAGE("no AVX2 + FMA on this CPU: the own SGEMM is not used here");
    return;
  }
  const bool was = set_own_sgemm(true);
  const SgemmKernel kernel_was = sgemm_kernel();
  struct Restore {
    bool own;
    SgemmKernel kernel;
    ~Restore() {
      set_sgemm_kernel(kernel);
      set_own_sgemm(own);
    }
  } restore{was, kernel_was};
  struct C {
    Shape x, w;
    int64_t s, p;
  };
  for (const C& c : {C{{4, 3, 32, 32}, {32, 3, 4, 4}, 2, 1}, C{{3, 40, 9, 9}, {50, 40, 3, 3}, 1, 1},
                     C{{30, 8, 7, 7}, {13, 8, 4, 4}, 2, 1}}) {
    CAPTURE(c.x);
    CAPTURE(c.w);
    Tensor x = rnd(c.x, 51, -1, 1, DType::F32), w = rnd(c.w, 52, -1, 1, DType::F32);
    Tensor b = rnd({c.w[0]}, 53, -1, 1, DType::F32);
    Tensor dy = rnd(conv2d(x, w, b, c.s, c.p).shape(), 54, -1, 1, DType::F32);
    set_sgemm_kernel(SgemmKernel::Avx2);
    const ConvRun narrow = run_conv(x, w, b, dy, c.s, c.p);
    for (const SgemmKernel k : {SgemmKernel::WideOnAvx2, SgemmKernel::Avx512}) {
      if (!sgemm_kernel_supported(k)) {
        MESSAGE("no AVX-512F on this CPU: the 12x32 tiling is checked on AVX2 register pairs only");
        continue;
      }
      set_sgemm_kernel(k);
      const ConvRun wide = run_conv(x, w, b, dy, c.s, c.p);
      CAPTURE(int(k));
      CHECK(wide.y == narrow.y);
      CHECK(wide.dx == narrow.dx);
      CHECK(wide.dw == narrow.dw);
    }
  }
}

TEST_CASE("float convolutions: the same bits as this test's own unfold, threaded cpu_gemm and fold") {
  // The forward output is W times the unfolded images, the data gradient the fold of W^T dy:
  // built here with plain loops around cpu_gemm (whose product the own SGEMM splits over
  // columns for these shapes) and compared bit for bit. So the implicit packing, the chunks'
  // products run as one block (8 and 9 chunks here) and the vectorised stride-2 fold all
  // keep the sums of the plain composition, in its order.
  if (!own_sgemm_supported()) {
    MESSAGE("no AVX2 + FMA on this CPU: the own SGEMM is not used here");
    return;
  }
  struct C {
    Shape x, w;
    int64_t s, p;
  };
  const bool was = set_own_sgemm(true);
  // The last two: 7x7 outputs, 32 images in 8 chunks of 4 (images_per_output_chunk), rows of
  // 7 packed and folded by masked loads; and an odd kernel width (3) in that fold.
  for (const C& c : {C{{8, 4, 64, 64}, {8, 4, 3, 3}, 1, 1}, C{{9, 16, 32, 32}, {24, 16, 4, 4}, 2, 1},
                     C{{3, 5, 17, 23}, {7, 5, 4, 4}, 2, 1}, C{{32, 6, 14, 14}, {20, 6, 4, 4}, 2, 1},
                     C{{2, 3, 13, 13}, {5, 3, 3, 3}, 2, 1}}) {
    CAPTURE(c.x);
    const int64_t N = c.x[0], Ci = c.x[1], H = c.x[2], W = c.x[3], Co = c.w[0], KH = c.w[2], KW = c.w[3];
    const int64_t OH = (H + 2 * c.p - KH) / c.s + 1, OW = (W + 2 * c.p - KW) / c.s + 1, P = OH * OW;
    const int64_t K = Ci * KH * KW, PH = H + 2 * c.p, PW = W + 2 * c.p;
    Tensor x = rnd(c.x, 41, -1, 1, DType::F32).set_requires_grad(), w = rnd(c.w, 42, -1, 1, DType::F32);
    Tensor y = conv2d(x, w, Tensor(), c.s, c.p);
    Tensor dy = rnd(y.shape(), 43, -1, 1, DType::F32);
    y.backward(dy);
    const float *px = x.data<float>(), *pw = w.data<float>(), *pdy = dy.data<float>();
    std::vector<float> col(size_t(K * P)), yref(size_t(Co * P)), pad(size_t(PH * PW)), dxref(size_t(Ci * H * W));
    std::vector<float> yall, dxall;
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t ci = 0; ci < Ci; ++ci)  // unfold image n
        for (int64_t ki = 0; ki < KH; ++ki)
          for (int64_t kj = 0; kj < KW; ++kj)
            for (int64_t oy = 0; oy < OH; ++oy)
              for (int64_t ox = 0; ox < OW; ++ox) {
                const int64_t iy = oy * c.s - c.p + ki, ix = ox * c.s - c.p + kj;
                const bool in = iy >= 0 && iy < H && ix >= 0 && ix < W;
                col[size_t(((ci * KH + ki) * KW + kj) * P + oy * OW + ox)] =
                    in ? px[((n * Ci + ci) * H + iy) * W + ix] : 0.0f;
              }
      cpu_gemm<float>(false, false, Co, P, K, 1.0f, pw, K, col.data(), P, 0.0f, yref.data(), P);
      yall.insert(yall.end(), yref.begin(), yref.end());
      // col = W^T dy_n, folded tap by tap in (ki, kj, oy, ox) order into a zero-padded plane.
      cpu_gemm<float>(true, false, K, P, Co, 1.0f, pw, K, pdy + n * Co * P, P, 0.0f, col.data(), P);
      for (int64_t ci = 0; ci < Ci; ++ci) {
        std::fill(pad.begin(), pad.end(), 0.0f);
        for (int64_t ki = 0; ki < KH; ++ki)
          for (int64_t kj = 0; kj < KW; ++kj)
            for (int64_t oy = 0; oy < OH; ++oy)
              for (int64_t ox = 0; ox < OW; ++ox)
                pad[size_t((oy * c.s + ki) * PW + ox * c.s + kj)] +=
                    col[size_t(((ci * KH + ki) * KW + kj) * P + oy * OW + ox)];
        for (int64_t iy = 0; iy < H; ++iy)
          for (int64_t ix = 0; ix < W; ++ix)
            dxref[size_t((ci * H + iy) * W + ix)] = pad[size_t((iy + c.p) * PW + ix + c.p)];
      }
      dxall.insert(dxall.end(), dxref.begin(), dxref.end());
    }
    const float *py = y.data<float>(), *pdx = x.grad().data<float>();
    CHECK(std::equal(yall.begin(), yall.end(), py));
    CHECK(std::equal(dxall.begin(), dxall.end(), pdx));
  }
  set_own_sgemm(was);
}
