#include "engine/backend/backend.h"
#include "helpers.h"

using namespace wn;

TEST_CASE("tensor factories hold the values they were given") {
  Tensor t = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(t.shape() == Shape{2, 3});
  CHECK(t.numel() == 6);
  CHECK(t.dtype() == DType::F32);
  CHECK(t.to_vector() == std::vector<double>{1, 2, 3, 4, 5, 6});
  CHECK(Tensor::full({2, 2}, 2.5, DType::F64).to_vector() == std::vector<double>{2.5, 2.5, 2.5, 2.5});
  CHECK(Tensor::scalar(3.0).item() == 3.0);
  CHECK(Tensor::scalar(3.0).rank() == 0);
  CHECK_THROWS_WITH_AS(Tensor::from_vector({1, 2}, {3}), doctest::Contains("2 values for shape (3,)"),
                       std::invalid_argument);
}

TEST_CASE("dtype conversion and typed access") {
  Tensor t = Tensor::from_vector({0.1, 0.2}, {2}, DType::F64);
  Tensor f = t.to(DType::F32);
  CHECK(f.dtype() == DType::F32);
  CHECK(f.to_vector()[0] == doctest::Approx(0.1).epsilon(1e-7));
  CHECK_THROWS_WITH_AS(t.data<float>(), doctest::Contains("typed access as F32 to a tensor of dtype F64"),
                       std::invalid_argument);
}

TEST_CASE("reshape and detach share storage; clone does not") {
  Tensor t = Tensor::from_vector({1, 2, 3, 4}, {2, 2});
  Tensor r = reshape(t, {4});
  Tensor d = t.detach();
  Tensor c = t.clone();
  t.data<float>()[0] = 9;
  CHECK(r.to_vector()[0] == 9);
  CHECK(d.to_vector()[0] == 9);
  CHECK(c.to_vector()[0] == 1);
}

TEST_CASE("the caching allocator reuses freed buffers instead of asking the system") {
  CachingAllocator& a = backend_for(kCPU).allocator();
  { Tensor warm = Tensor::empty({123, 457}); }
  const size_t before = a.stats().system_allocs;
  for (int i = 0; i < 10; ++i) {
    Tensor t = Tensor::empty({123, 457});
    t.fill_(1.0);
  }
  CHECK(a.stats().system_allocs == before);
  CHECK(CachingAllocator::round_size(100) == 128);
  CHECK(CachingAllocator::round_size(5000) >= 5000);
}

TEST_CASE("devices parse and an absent backend gives a clear error") {
  CHECK(Device::parse("cpu") == kCPU);
  CHECK(Device::parse("cuda:1").index == 1);
  CHECK_THROWS_WITH_AS(Device::parse("tpu"), doctest::Contains("unknown device 'tpu'"), std::invalid_argument);
  if (!device_available(DeviceType::CUDA))
    CHECK_THROWS_WITH(Tensor::zeros({2}, DType::F32, Device::parse("cuda")), doctest::Contains("cuda:0"));
}

TEST_CASE("shapes of rank above the maximum are refused") {
  CHECK_THROWS_WITH_AS(Shape({1, 2, 3, 4, 5}), doctest::Contains("exceeds the maximum rank"), std::invalid_argument);
  CHECK(Shape({2, 3}).str() == "(2, 3)");
}
