#include <stb_image_write.h>
#include <unistd.h>
#include <webp/encode.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <algorithm>
#include <cmath>

#include "gan/data.h"
#include "gan/loader.h"
#include "gan/split.h"
#include "data_helpers.h"

using namespace wn;
using namespace wn::gan;
namespace fs = std::filesystem;

namespace {
using wn::test::be32;
using wn::test::temp_dir;
// An IDX image file of n images of 28x28 where image i has every pixel = i.
std::string idx_bytes(uint32_t n, uint32_t magic = 0x803) {
  std::string s = be32(magic) + be32(n) + be32(28) + be32(28);
  for (uint32_t i = 0; i < n; ++i) s += std::string(784, char(i));
  return s;
}
void write_gz(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}
void write_raw(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }
std::vector<uint8_t> gradient_rgb(int w, int h) {
  std::vector<uint8_t> px(size_t(w) * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      px[(y * w + x) * 3] = uint8_t(x * 255 / (w - 1));
      px[(y * w + x) * 3 + 1] = uint8_t(y * 255 / (h - 1));
      px[(y * w + x) * 3 + 2] = 128;
    }
  return px;
}
std::string png_bytes(int w, int h) {
  std::string out;
  auto px = gradient_rgb(w, h);
  stbi_write_png_to_func([](void* c, void* d, int n) { static_cast<std::string*>(c)->append((char*)d, n); }, &out, w,
                         h, 3, px.data(), w * 3);
  return out;
}
}  // namespace

TEST_CASE("IDX reader: gzip or plain, train then test, values in [0, 1]") {
  std::string d = temp_dir("idx");
  write_gz(d + "/train-images-idx3-ubyte.gz", idx_bytes(5));
  write_raw(d + "/t10k-images-idx3-ubyte", idx_bytes(3));
  auto ds = open_dataset("mnist:" + d);
  CHECK(ds->size() == 8);
  CHECK(ds->channels == 1);
  CHECK(ds->height == 28);
  std::vector<float> img(784);
  ds->load(4, img.data());
  CHECK(img[100] == doctest::Approx(4 / 255.0));
  ds->load(6, img.data());  // the test file's second image
  CHECK(img[0] == doctest::Approx(1 / 255.0));
  // Resized to 32x32 and to 3 channels on request.
  auto big = open_dataset("mnist:" + d, 32, 32, 3);
  std::vector<float> b(3 * 32 * 32);
  big->load(2, b.data());
  CHECK(b[3 * 32 * 32 - 1] == doctest::Approx(2 / 255.0).epsilon(1e-4));
  fs::remove_all(d);
}

TEST_CASE("IDX errors name the file and the problem") {
  std::string d = temp_dir("idxbad");
  write_raw(d + "/train-images-idx3-ubyte", idx_bytes(2, 0x801));
  write_raw(d + "/t10k-images-idx3-ubyte", idx_bytes(1));
  CHECK_THROWS_WITH_AS(open_dataset("mnist:" + d), doctest::Contains("wrong magic number 0x00000801"), DataError);
  write_raw(d + "/train-images-idx3-ubyte", idx_bytes(4).substr(0, 16 + 784 * 3));
  CHECK_THROWS_WITH_AS(open_dataset("mnist:" + d), doctest::Contains("truncated: 4 images of 28x28"), DataError);
  fs::remove(d + "/t10k-images-idx3-ubyte");
  write_raw(d + "/train-images-idx3-ubyte", idx_bytes(1));
  CHECK_THROWS_WITH_AS(open_dataset("mnist:" + d), doctest::Contains("t10k-images-idx3-ubyte(.gz): file not found"),
                       DataError);
  write_raw(d + "/t10k-images-idx3-ubyte.gz", "this is not gzip but also not IDX");
  CHECK_THROWS_AS(open_dataset("mnist:" + d), DataError);
  CHECK_THROWS_WITH_AS(open_dataset("mnist:" + d + "/nope"), doctest::Contains("not a folder"), DataError);
  CHECK_THROWS_WITH_AS(open_dataset("imagenet"), doctest::Contains("unknown data set 'imagenet'"), DataError);
  fs::remove_all(d);
}

TEST_CASE("CIFAR-10 reader: planar records become (3, 32, 32) images") {
  std::string d = temp_dir("cifar");
  for (const char* f : {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                        "data_batch_5.bin", "test_batch.bin"}) {
    std::string rec(1, char(3));
    rec += std::string(1024, char(10)) + std::string(1024, char(20)) + std::string(1024, char(30));
    write_raw(d + "/" + f, rec + rec);
  }
  auto ds = open_dataset("cifar10:" + d);
  CHECK(ds->size() == 12);
  std::vector<float> img(3 * 32 * 32);
  ds->load(11, img.data());
  CHECK(img[0] == doctest::Approx(10 / 255.0));
  CHECK(img[1024] == doctest::Approx(20 / 255.0));
  CHECK(img[2048 + 5] == doctest::Approx(30 / 255.0));
  write_raw(d + "/test_batch.bin", std::string(3000, '\0'));
  CHECK_THROWS_WITH_AS(open_dataset("cifar10:" + d), doctest::Contains("test_batch.bin: truncated"), DataError);
  fs::remove_all(d);
}

TEST_CASE("image folder: PNG and JPEG, centre crop and resize; bad images are named") {
  std::string d = temp_dir("folder");
  fs::create_directories(d + "/sub");
  auto px = gradient_rgb(80, 100);
  stbi_write_png((d + "/a.png").c_str(), 80, 100, 3, px.data(), 80 * 3);
  stbi_write_jpg((d + "/sub/b.jpg").c_str(), 80, 100, 3, px.data(), 95);
  auto ds = open_dataset("folder:" + d, 32, 32);
  CHECK(ds->size() == 2);
  CHECK(ds->channels == 3);
  std::vector<float> img(3 * 32 * 32), jpg(3 * 32 * 32);
  ds->load(0, img.data());
  ds->load(1, jpg.data());
  // Red grows left to right across the crop, green is centred (the crop is the middle 80x80).
  CHECK(img[31] > img[0]);
  CHECK(img[1024 + 16 * 32] == doctest::Approx(0.5).epsilon(0.05));
  CHECK(wn::test::max_abs_diff(std::vector<double>(img.begin(), img.end()), std::vector<double>(jpg.begin(), jpg.end())) < 0.1);
  write_raw(d + "/broken.png", "not an image at all");
  CHECK_THROWS_WITH_AS(open_dataset("folder:" + d, 32, 32), doctest::Contains("broken.png: undecodable image"), DataError);
  fs::remove(d + "/broken.png");
  auto tiny = gradient_rgb(8, 8);
  stbi_write_png((d + "/tiny.png").c_str(), 8, 8, 3, tiny.data(), 8 * 3);
  CHECK_THROWS_WITH_AS(open_dataset("folder:" + d, 32, 32), doctest::Contains("tiny.png: image 8x8 is too small"), DataError);
  std::string e = temp_dir("empty");
  CHECK_THROWS_WITH_AS(open_dataset("folder:" + e), doctest::Contains("no PNG or JPEG images"), DataError);
  fs::remove_all(d);
  fs::remove_all(e);
}

TEST_CASE("LSUN reader: an LMDB of encoded images (PNG and WebP)") {
  std::string d = temp_dir("lsun");
  std::string png = png_bytes(40, 40);
  auto px = gradient_rgb(40, 40);
  uint8_t* webp = nullptr;
  size_t webp_n = WebPEncodeLosslessRGB(px.data(), 40, 40, 40 * 3, &webp);
  REQUIRE(webp_n > 0);
  std::string wv(reinterpret_cast<char*>(webp), webp_n);
  WebPFree(webp);
  wn::test::write_lmdb(d, {{"key0", png}, {"key1", wv}, {"key2", "garbage"}});
  auto ds = open_dataset("lsun:" + d, 32, 32);
  CHECK(ds->size() == 3);
  std::vector<float> a(3 * 32 * 32), b(3 * 32 * 32);
  ds->load(0, a.data());
  ds->load(1, b.data());
  CHECK(wn::test::max_abs_diff(std::vector<double>(a.begin(), a.end()), std::vector<double>(b.begin(), b.end())) < 1e-6);
  CHECK_THROWS_WITH_AS(ds->load(2, a.data()), doctest::Contains("key 'key2': undecodable image"), DataError);
  fs::remove_all(d);
}

TEST_CASE("the split is reproducible, disjoint, saved and checked on load") {
  Split a = make_split(1000, 100, 20, 7), b = make_split(1000, 100, 20, 7), c = make_split(1000, 100, 20, 8);
  CHECK(a.final_test == b.final_test);
  CHECK(a.final_test != c.final_test);
  CHECK(a.train.size() == 900);
  CHECK(std::equal(a.running_test.begin(), a.running_test.end(), a.final_test.begin()));
  std::vector<int64_t> all = a.final_test;
  all.insert(all.end(), a.train.begin(), a.train.end());
  std::sort(all.begin(), all.end());
  for (int64_t i = 0; i < 1000; ++i) CHECK(all[i] == i);
  std::string d = temp_dir("split");
  save_split(d + "/s.json", a);
  Split l = load_split(d + "/s.json", 1000);
  CHECK(l.train == a.train);
  CHECK_THROWS_WITH(load_split(d + "/s.json", 999), doctest::Contains("made for a data set of 1000 images"));
  write_raw(d + "/bad.json", R"({"final_test":[1,2],"running_test":[2],"train":[3,4],"dataset_size":5})");
  CHECK_THROWS_WITH(load_split(d + "/bad.json", 5), doctest::Contains("running_test must be the first images"));
  write_raw(d + "/dup.json", R"({"final_test":[1,2],"running_test":[1],"train":[2,3],"dataset_size":5})");
  CHECK_THROWS_WITH(load_split(d + "/dup.json", 5), doctest::Contains("index 2 appears twice"));
  fs::remove_all(d);
}

TEST_CASE("the loader's batches are reproducible and resumable from a cursor") {
  std::string d = temp_dir("loader");
  write_raw(d + "/train-images-idx3-ubyte", idx_bytes(40));
  write_raw(d + "/t10k-images-idx3-ubyte", idx_bytes(2));
  auto ds = open_dataset("mnist:" + d);
  std::vector<int64_t> idx(30);
  for (int i = 0; i < 30; ++i) idx[i] = i;
  Loader a(*ds, idx, 8, 3), b(*ds, idx, 8, 3);
  std::vector<std::vector<double>> seq;
  for (int i = 0; i < 7; ++i) seq.push_back(a.next().to_vector());  // crosses two epoch ends (3 batches each)
  for (int i = 0; i < 4; ++i) b.next();
  Loader c(*ds, idx, 8, 3);
  c.seek(b.epoch(), b.position());
  for (int i = 4; i < 7; ++i) CHECK(c.next().to_vector() == seq[i]);
  CHECK(seq[0] != seq[3]);  // a new shuffle each epoch
  fs::remove_all(d);
}

TEST_CASE("the loader's shuffle: every epoch holds each image once, and every order is equally likely") {
  std::string d = temp_dir("shuffle");
  write_raw(d + "/train-images-idx3-ubyte", idx_bytes(10));
  write_raw(d + "/t10k-images-idx3-ubyte", idx_bytes(2));
  auto ds = open_dataset("mnist:" + d);
  // Image i has every pixel i / 255: the first pixel of each image of a batch names it.
  auto names = [](const Tensor& batch) {
    const std::vector<double> v = batch.to_vector();
    std::vector<int> out;
    for (size_t k = 0; k < v.size(); k += 784) out.push_back(int(std::lround(v[k] * 255)));
    return out;
  };
  {
    Loader l(*ds, {2, 3, 5, 7, 8}, 5, 11);
    for (int epoch = 0; epoch < 4; ++epoch) {
      std::vector<int> got = names(l.next());
      std::sort(got.begin(), got.end());
      CHECK(got == std::vector<int>{2, 3, 5, 7, 8});
    }
  }
  // Three images have 6 orders; over 1,200 seeds each should come about 200 times (sd 12.9).
  std::map<std::vector<int>, int> count;
  for (uint64_t seed = 0; seed < 1200; ++seed) {
    Loader l(*ds, {0, 1, 2}, 3, seed);
    ++count[names(l.next())];
  }
  CHECK(count.size() == 6);
  for (const auto& [order, n] : count) CHECK_MESSAGE((n > 140 && n < 260), order[0], order[1], order[2], " came ", n);
  fs::remove_all(d);
}

TEST_CASE("--crop: the centre crop comes before resizing, with the authors' offsets") {
  std::string d = temp_dir("crop");
  // A 6-wide, 4-high grey image with pixel (y, x) = 10 y + x.
  std::vector<uint8_t> px(24);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 6; ++x) px[y * 6 + x] = uint8_t(10 * y + x);
  stbi_write_png((d + "/a.png").c_str(), 6, 4, 1, px.data(), 6);
  // Crop 2x2: offsets round((4 - 2) / 2) = 1 down, round((6 - 2) / 2) = 2 across; no resize after.
  auto ds = open_dataset("folder:" + d, 2, 2, 1, 2, 2);
  std::vector<float> img(4);
  ds->load(0, img.data());
  CHECK(img[0] == doctest::Approx(12 / 255.0));
  CHECK(img[1] == doctest::Approx(13 / 255.0));
  CHECK(img[2] == doctest::Approx(22 / 255.0));
  CHECK(img[3] == doctest::Approx(23 / 255.0));
  // Crop 3 wide: (6 - 3) / 2 = 1.5 rounds to 2 (half to even, as Python 3).
  auto odd = open_dataset("folder:" + d, 2, 3, 1, 2, 3);
  std::vector<float> o(6);
  odd->load(0, o.data());
  CHECK(o[0] == doctest::Approx(12 / 255.0));
  CHECK(o[5] == doctest::Approx(24 / 255.0));
  CHECK_THROWS_WITH_AS(open_dataset("folder:" + d, 2, 2, 1, 8, 8), doctest::Contains("smaller than the crop 8x8"),
                       DataError);
  CHECK_THROWS_WITH_AS(open_dataset("mnist:/nonexistent", 2, 2, 1, 2, 0), doctest::Contains("not a folder"), DataError);
  fs::remove_all(d);
}
