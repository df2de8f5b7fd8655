#include <cmath>
#include <limits>

#include "engine/backend/backend.h"
#include "helpers.h"

using namespace wn;
using wn::test::max_abs_diff;
using wn::test::rnd;

TEST_CASE("activation gradients match central differences") { wn::test::check_gradcheck_family("activation"); }

TEST_CASE("activation values, computed by hand") {
  Tensor x = Tensor::from_vector({-2, -0.5, 0.5, 2, -4, 3}, {1, 2, 3}, DType::F64);
  Tensor a = Tensor::from_vector({0.25, 0.5}, {2}, DType::F64);
  CHECK(prelu(x, a).to_vector() == std::vector<double>{-0.5, -0.125, 0.5, 2, -2, 3});
  CHECK(relu(x).to_vector() == std::vector<double>{0, 0, 0.5, 2, 0, 3});
  CHECK(clamp(x, -1, 1).to_vector() == std::vector<double>{-1, -0.5, 0.5, 1, -1, 1});
  std::vector<double> s = sigmoid(Tensor::from_vector({-1000, 0, 1000}, {3})).to_vector();
  CHECK(s == std::vector<double>{0, 0.5, 1});
}

TEST_CASE("translated PReLU, computed by hand: prelu(x - t) + t") {
  Tensor x = Tensor::from_vector({-2, 0.5, 1, 3}, {1, 2, 2}, DType::F64);
  Tensor a = Tensor::from_vector({0.25, 0.5}, {2}, DType::F64), t = Tensor::from_vector({1, 2}, {2}, DType::F64);
  // channel 0 (t = 1, a = 0.25): -2 -> 1 + 0.25 * -3 = 0.25; 0.5 -> 1 - 0.125 = 0.875
  // channel 1 (t = 2, a = 0.5): 1 -> 2 - 0.5 = 1.5; 3 -> 3
  CHECK(tprelu(x, a, t).to_vector() == std::vector<double>{0.25, 0.875, 1.5, 3});
}

TEST_CASE("the fused CPU translated PReLU equals the backend's composed reference") {
  Backend& be = backend_for(kCPU);
  for (Shape s : {Shape{5, 4, 6, 7}, Shape{9, 3}}) {
    for (DType dt : {DType::F64, DType::F32}) {
      const int64_t c = s[1];
      Tensor x = rnd(s, 1, -1, 1, dt), a = rnd({c}, 2, 0, 1, dt), t = rnd({c}, 3, -0.3, 0.3, dt), dy = rnd(s, 4, -1, 1, dt);
      Tensor y1 = Tensor::empty(s, dt), y2 = Tensor::empty(s, dt);
      be.tprelu_forward(x, a, t, y1);
      be.Backend::tprelu_forward(x, a, t, y2);
      const double tol = dt == DType::F64 ? 1e-12 : 1e-5;
      CHECK(max_abs_diff(y1, y2) < tol);  // the same operations, up to a fused multiply-add
      Tensor dx1 = Tensor::empty(s, dt), dx2 = Tensor::empty(s, dt);
      Tensor da1 = Tensor::empty({c}, dt), da2 = Tensor::empty({c}, dt), dt1 = Tensor::empty({c}, dt),
             dt2 = Tensor::empty({c}, dt);
      be.tprelu_backward(x, a, t, dy, dx1, da1, dt1);
      be.Backend::tprelu_backward(x, a, t, dy, dx2, da2, dt2);
      CHECK(dx1.to_vector() == dx2.to_vector());
      CHECK(max_abs_diff(da1, da2) < tol);
      CHECK(max_abs_diff(dt1, dt2) < tol);
      CHECK(std::sqrt(sum_squares(dt1)) > 0.1);  // the shift's gradient is not trivially zero
    }
  }
}

TEST_CASE("the fused float32 translated PReLU's slope and shift gradients over long rows match float64") {
  // Rows of 64 x 64 pixels (the sums run in float lanes per row, in double across rows),
  // against the same inputs in float64; and a NaN input reaches the slope's gradient.
  Backend& be = backend_for(kCPU);
  const Shape s{3, 2, 64, 64};
  Tensor x = rnd(s, 5, -1, 1, DType::F32), a = rnd({2}, 6, 0, 1, DType::F32), t = rnd({2}, 7, -0.3, 0.3, DType::F32);
  Tensor dy = rnd(s, 8, -1, 1, DType::F32);
  Tensor dx = Tensor::empty(s), da = Tensor::empty({2}), dt = Tensor::empty({2});
  be.tprelu_backward(x, a, t, dy, dx, da, dt);
  Tensor dx64 = Tensor::empty(s, DType::F64), da64 = Tensor::empty({2}, DType::F64), dt64 = Tensor::empty({2}, DType::F64);
  be.Backend::tprelu_backward(x.to(DType::F64), a.to(DType::F64), t.to(DType::F64),
                              dy.to(DType::F64), dx64, da64, dt64);
  const auto ga = da.to_vector(), ga64 = da64.to_vector(), gt = dt.to_vector(), gt64 = dt64.to_vector();
  for (size_t c = 0; c < 2; ++c) {
    CHECK(std::fabs(ga[c] - ga64[c]) <= 1e-5 * std::max(1.0, std::fabs(ga64[c])));
    CHECK(std::fabs(gt[c] - gt64[c]) <= 1e-5 * std::max(1.0, std::fabs(gt64[c])));
  }
  x.data<float>()[5] = std::numeric_limits<float>::quiet_NaN();  // channel 0 of image 0
  be.tprelu_backward(x, a, t, dy, dx, da, dt);
  CHECK(std::isnan(da.to_vector()[0]));
  CHECK(!std::isnan(da.to_vector()[1]));
}

TEST_CASE("the fused float32 TPReLU backward over ranges of channels and ragged rows matches float64") {
  // 9x9 rows (ten vectors of 8 and one value) and 2-3 channels a task; rows of 3 (a tail
  // alone); dx exactly as computed in float64 (one rounding of s * dy either way), the sums
  // against float64, with values on both sides of the shift, exactly at it, infinite and NaN;
  // then without dx and with one sum wanted at a time. (dx against the composed reference
  // too, which reaches this kernel again through prelu_backward.)
  Backend& be = backend_for(kCPU);
  for (const Shape s : {Shape{64, 40, 9, 9}, Shape{7, 5, 1, 3}}) {
    const int64_t c = s[1];
    Tensor x = rnd(s, 9, -1, 1, DType::F32), a = rnd({c}, 10, 0, 1, DType::F32), t = rnd({c}, 11, -0.3, 0.3, DType::F32);
    Tensor dy = rnd(s, 12, -1, 1, DType::F32);
    x.data<float>()[1] = t.data<float>()[0];  // u = 0: the slope's side
    x.data<float>()[2] = std::numeric_limits<float>::infinity();
    x.data<float>()[int(s[2] * s[3]) + 1] = -std::numeric_limits<float>::infinity();  // channel 1
    x.data<float>()[int(3 * s[2] * s[3]) + 2] = std::numeric_limits<float>::quiet_NaN();  // channel 3
    Tensor dx = Tensor::empty(s), da = Tensor::empty({c}), dt = Tensor::empty({c});
    Tensor dx2 = Tensor::empty(s), da2 = Tensor::empty({c}), dt2 = Tensor::empty({c});
    be.tprelu_backward(x, a, t, dy, dx, da, dt);
    be.Backend::tprelu_backward(x, a, t, dy, dx2, da2, dt2);
    CHECK(dx.to_vector() == dx2.to_vector());
    Tensor dx64 = Tensor::empty(s, DType::F64), da64 = Tensor::empty({c}, DType::F64),
           dt64 = Tensor::empty({c}, DType::F64);
    // The CPU's float64 kernel: the plain loops (the vector rows serve float only), with the
    // fused kernels' reading of a NaN input (dx on the slope's side, in neither sum's count
    // but the slope's NaN), which the composed reference does not share for the shift.
    be.tprelu_backward(x.to(DType::F64), a.to(DType::F64), t.to(DType::F64), dy.to(DType::F64), dx64, da64, dt64);
    CHECK(dx.to_vector() == dx64.to(DType::F32).to_vector());
    const auto ga = da.to_vector(), ga64 = da64.to_vector(), gt = dt.to_vector(), gt64 = dt64.to_vector();
    CHECK(std::isinf(ga[1]));  // dy times -inf on the slope's side
    CHECK(std::isinf(ga64[1]));
    CHECK(std::isnan(ga[3]));  // NaN stays NaN in the slope's gradient
    CHECK(std::isnan(ga64[3]));
    for (size_t k = 0; k < size_t(c); ++k) {
      CAPTURE(k);
      if (k != 1 && k != 3) CHECK(std::fabs(ga[k] - ga64[k]) <= 1e-5 * std::max(1.0, std::fabs(ga64[k])));
      CHECK(std::fabs(gt[k] - gt64[k]) <= 1e-5 * std::max(1.0, std::fabs(gt64[k])));
    }
    // Without dx (an input that needs no gradient), and one sum at a time: the same values.
    Tensor none, da_only = Tensor::empty({c}), dt_only = Tensor::empty({c}), dx_only = Tensor::empty(s);
    be.tprelu_backward(x, a, t, dy, none, da_only, none);
    be.tprelu_backward(x, a, t, dy, dx_only, none, dt_only);
    CHECK(dx_only.to_vector() == dx.to_vector());
    for (size_t k = 0; k < size_t(c); ++k) {
      CAPTURE(k);
      CHECK((std::isnan(ga[k]) ? std::isnan(da_only.to_vector()[k]) : da_only.to_vector()[k] == ga[k]));
      CHECK(dt_only.to_vector()[k] == gt[k]);
    }
  }
}

TEST_CASE("prelu argument errors") {
  CHECK_THROWS_WITH(prelu(Tensor::zeros({2, 3, 4, 4}), Tensor::zeros({4})),
                    doctest::Contains("prelu: slope must have shape (C) or (1)"));
  CHECK_THROWS_WITH(clamp(Tensor::zeros({2}), 1, 0), doctest::Contains("clamp: lower bound 1 exceeds upper bound 0"));
  CHECK_THROWS_WITH(tprelu(Tensor::zeros({2, 3}), Tensor::zeros({3}), Tensor::zeros({2})),
                    doctest::Contains("tprelu: slope and shift must have shape (C)"));
}
