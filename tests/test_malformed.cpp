// Malformed input, generated: every reader either reads a file or refuses it with an
// error naming the file, for many damaged versions of a good file (truncated at every
// length, bytes changed, fields replaced by wrong types and absurd values). Under the
// sanitizer build (tests/fuzz/sanitize.sh) these also prove the absence of memory errors.
#include <stb_image_write.h>
#include <sys/stat.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <random>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "gan/data.h"
#include "gan/run_config.h"
#include "gan/split.h"
#include "data_helpers.h"
#include "nn/checkpoint.h"
#include "tests/fuzz/harness.h"

using namespace wn;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string read_bytes(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
void write_bytes(const std::string& p, const std::string& b) { std::ofstream(p, std::ios::binary) << b; }

// A small valid safetensors file: two F32 tensors and metadata.
std::string good_safetensors(const std::string& dir) {
  const std::string p = dir + "/good.safetensors";
  nn::save_safetensors(p, {{"a", Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3})}, {"b", Tensor::from_vector({7}, {1})}},
                       {{"k", "v"}});
  return p;
}

// The file with its JSON header replaced (the data kept).
std::string with_header(const std::string& bytes, const std::string& header) {
  uint64_t old = 0;
  for (int i = 0; i < 8; ++i) old |= uint64_t(uint8_t(bytes[i])) << (8 * i);
  std::string out(8, '\0');
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = char((n >> (8 * i)) & 0xff);
  return out + header + bytes.substr(8 + old);
}

// Expects either a clean load or a CheckpointError naming the file; counts refusals.
int load_or_refuse(const std::string& path) {
  try {
    nn::load_safetensors(path);
    return 0;
  } catch (const nn::CheckpointError& e) {
    CHECK_MESSAGE(std::string(e.what()).find(path) != std::string::npos, e.what());
    return 1;
  }
}

}  // namespace

TEST_CASE("safetensors: every truncation, every single-byte change and 40 bad headers are refused or read, never a crash") {
  const std::string d = wn::test::temp_dir("st_fuzz");
  const std::string good = read_bytes(good_safetensors(d)), p = d + "/bad.safetensors";
  int refused = 0, cases = 0;
  for (size_t n = 0; n < good.size(); ++n, ++cases) {
    write_bytes(p, good.substr(0, n));
    refused += load_or_refuse(p);
  }
  CHECK(refused == cases);  // a truncated file is never read
  std::mt19937 rng(5);
  for (size_t i = 0; i < good.size(); ++i, ++cases) {
    std::string b = good;
    b[i] = char(b[i] ^ (1 + rng() % 255));
    write_bytes(p, b);
    refused += load_or_refuse(p);
  }
  const std::string bytes = good;
  const std::vector<std::string> headers = {
      R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"F32","shape":[1],"data_offsets":[20,24]}})",
      R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[4,28]},"b":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}})",
      R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
      R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})",
      R"({"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,24]},"b":{"dtype":"F32","shape":[1],"data_offsets":[24,28]}})",
      R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,24]},"b":{"dtype":"F32","shape":[1],"data_offsets":[24,28]}})",
      R"({"a":{"dtype":"F32","shape":[-2,3],"data_offsets":[0,24]},"b":{"dtype":"F32","shape":[1],"data_offsets":[24,28]}})",
      R"({"a":{"dtype":"F32","shape":[2.5,3],"data_offsets":[0,24]},"b":{"dtype":"F32","shape":[1],"data_offsets":[24,28]}})",
      R"({"a":{"dtype":"F32","shape":"23","data_offsets":[0,24]},"b":{"dtype":"F32","shape":[1],"data_offsets":[24,28]}})",
      R"({"a":{"dtype":"F32","shape":[1,1,1,1,1],"data_offsets":[0,4]}})",
      R"({"a":{"dtype":"I64","shape":[3],"data_offsets":[0,24]},"b":{"dtype":"F32","shape":[1],"data_offsets":[24,28]}})",
      R"({"a":{"dtype":7,"shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"F32","shape":[1],"data_offsets":[24,28]}})",
      R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[24,0]},"b":{"dtype":"F32","shape":[1],"data_offsets":[24,28]}})",
      R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,18446744073709551615]}})",
      R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0]},"b":{"dtype":"F32","shape":[1],"data_offsets":[24,28]}})",
      R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[-4,20]},"b":{"dtype":"F32","shape":[1],"data_offsets":[24,28]}})",
      R"({"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"F32","shape":[1],"data_offsets":[28,32]}})",
      R"({"a":{"dtype":"F32","shape":[2,3]},"b":{"dtype":"F32","shape":[1],"data_offsets":[24,28]}})",
      R"({"a":[],"b":{"dtype":"F32","shape":[1],"data_offsets":[24,28]}})",
      R"({"__metadata__":{"k":7},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"F32","shape":[1],"data_offsets":[24,28]}})",
      R"({"__metadata__":[1,2],"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}})",
      R"([1,2,3])", R"("text")", R"({"a":)", R"()", R"(null)", R"({)", "\xff\xfe\x00",
  };
  for (const auto& h : headers) {
    write_bytes(p, with_header(bytes, h));
    CHECK_MESSAGE(load_or_refuse(p) == 1, h);
    ++cases;
  }
  // A header length of 2^63, of 100 MiB + 1, of 0.
  for (uint64_t n : {uint64_t(1) << 63, uint64_t(nn::kMaxHeaderBytes) + 1, uint64_t(0)}) {
    std::string b = good;
    for (int i = 0; i < 8; ++i) b[i] = char((n >> (8 * i)) & 0xff);
    write_bytes(p, b);
    CHECK(load_or_refuse(p) == 1);
    ++cases;
  }
  MESSAGE(cases << " damaged safetensors files, " << refused << " of the byte changes refused");
  CHECK(cases > 300);
  fs::remove_all(d);
}

TEST_CASE("safetensors: NaN and infinite weights are refused naming the tensor, unless asked; folders and pipes too") {
  const std::string d = wn::test::temp_dir("st_nan");
  for (double bad : {std::nan(""), double(INFINITY), -double(INFINITY)}) {
    const std::string p = d + "/nan.safetensors";
    nn::save_safetensors(p, {{"fine", Tensor::ones({3})}, {"G.level0.conv.weight", Tensor::from_vector({1, bad, 3}, {3})}});
    CHECK_THROWS_WITH_AS(nn::load_safetensors(p), doctest::Contains("'G.level0.conv.weight' holds NaN or infinite"),
                         nn::CheckpointError);
    CHECK(nn::load_safetensors(p, /*allow_nonfinite=*/true).tensors.size() == 2);
  }
  CHECK_THROWS_WITH_AS(nn::load_safetensors(d), doctest::Contains("is a folder"), nn::CheckpointError);
  const std::string fifo = d + "/pipe";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THROWS_WITH_AS(nn::load_safetensors(fifo), doctest::Contains("not a regular file"), nn::CheckpointError);
  CHECK_THROWS_WITH_AS(nn::load_safetensors(d + "/absent"), doctest::Contains("no such file"), nn::CheckpointError);
  fs::remove_all(d);
}

TEST_CASE("split.json: wrong types, fractions, out-of-range and repeated indices are refused naming the file") {
  const std::string d = wn::test::temp_dir("split_fuzz");
  const std::string p = d + "/split.json";
  gan::save_split(p, gan::make_split(50, 10, 4, 3));
  const json good = json::parse(read_bytes(p));
  std::vector<json> bad;
  for (const char* key : {"final_test", "running_test", "train"})
    for (const json& v : {json(1.5), json("3"), json(-1), json(50), json(int64_t(1) << 40), json(nullptr),
                          json::array({1}), json(true)}) {
      json j = good;
      j[key][0] = v;
      bad.push_back(j);
    }
  for (const char* key : {"final_test", "running_test", "train", "dataset_size"}) {
    json j = good;
    j[key] = "everything";
    bad.push_back(j);
  }
  for (const char* key : {"final_test", "train"}) {
    json j = good;
    j.erase(key);
    bad.push_back(j);
  }
  json dup = good;
  dup["train"][0] = dup["final_test"][0];
  bad.push_back(dup);
  json size = good;
  size["dataset_size"] = 49;
  bad.push_back(size);
  json from = good;
  from["running_test_from"] = "elsewhere";
  bad.push_back(from);
  json empty = good;
  empty["final_test"] = json::array();
  empty["running_test"] = json::array();
  bad.push_back(empty);
  bad.push_back(json::array());
  bad.push_back(json(3));
  for (const json& j : bad) {
    write_bytes(p, j.dump());
    CHECK_THROWS_WITH_MESSAGE(gan::load_split(p, 50), doctest::Contains(p.c_str()), j.dump());
  }
  for (const std::string& text : {std::string("{"), std::string(""), std::string("\x00\x01", 2)}) {
    write_bytes(p, text);
    CHECK_THROWS_WITH(gan::load_split(p, 50), doctest::Contains(p.c_str()));
  }
  CHECK_THROWS_WITH(gan::load_split(d, 50), doctest::Contains("not a regular file"));
  MESSAGE((bad.size() + 3) << " damaged split files");
  fs::remove_all(d);
}

TEST_CASE("config.json and model descriptions: every field with a wrong type or an absurd value is refused by name") {
  const std::string d = wn::test::temp_dir("cfg_fuzz");
  gan::TrainConfig c;
  c.model.channels = 1, c.model.height = c.model.width = 28;
  const json good = gan::train_to_json(c);
  int cases = 0;
  for (auto it = good.begin(); it != good.end(); ++it) {
    if (it.key() == "model" || it.key() == "data" || it.key() == "loss" || it.key() == "protocol" ||
        it.key() == "select_on")
      continue;
    for (const json& v : {json("x"), json(-5), json(1.5e300), json(nullptr), json::array({1, 2, 3})}) {
      json j = good;
      j[it.key()] = v;
      write_bytes(d + "/config.json", j.dump());
      bool refused = false;
      try {
        gan::load_train_config(d);
      } catch (const std::exception& e) {
        refused = true;
        CHECK_MESSAGE(std::string(e.what()).find(it.key()) != std::string::npos, e.what());
      }
      // A float for an integer, a string, null, an array, a negative or absurd value: all refused.
      CHECK_MESSAGE(refused, it.key() << " = " << v.dump());
      ++cases;
    }
  }
  for (const char* key : {"channels", "height", "width", "nf", "code", "nlayer", "blocks", "version"})
    for (const json& v : {json(100000000), json(-1), json(2.5), json("8")}) {
      json j = good;
      j["model"][key] = v;
      write_bytes(d + "/config.json", j.dump());
      CHECK_THROWS_WITH_MESSAGE(gan::load_train_config(d), doctest::Contains(key), key << " = " << v.dump());
      ++cases;
    }
  // A model that would not fit: every size in range, the product absurd.
  json huge = good;
  huge["model"]["nf"] = 8192;
  huge["model"]["height"] = huge["model"]["width"] = 8192;
  write_bytes(d + "/config.json", huge.dump());
  CHECK_THROWS_WITH(gan::load_train_config(d), doctest::Contains("parameters"));
  json iter = good;
  iter["iters"] = -5;
  write_bytes(d + "/config.json", iter.dump());
  CHECK_THROWS_WITH(gan::load_train_config(d), doctest::Contains("'iters' = -5 is out of range"));
  CHECK_THROWS_WITH(gan::parse_int("-5", "metadata 'iteration'", 0, 100), doctest::Contains("out of range"));
  CHECK_THROWS_WITH(gan::parse_int("1.5", "metadata 'iteration'", 0, 100), doctest::Contains("not a whole number"));
  CHECK_THROWS_WITH(gan::parse_int("", "x", 0, 100), doctest::Contains("not a whole number"));
  CHECK(gan::parse_int("42", "x", 0, 100) == 42);
  MESSAGE(cases << " damaged configurations");
  fs::remove_all(d);
}

TEST_CASE("IDX and CIFAR-10 files: every truncation, gzip damage, folders in place of files are refused") {
  const std::string d = wn::test::temp_dir("idx_fuzz");
  std::string idx = wn::test::be32(0x803) + wn::test::be32(3) + wn::test::be32(28) + wn::test::be32(28);
  idx += std::string(3 * 784, char(9));
  auto gz = [](const std::string& b) {
    std::string out(compressBound(b.size()) + 64, '\0');
    z_stream z{};
    deflateInit2(&z, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
    z.next_in = (Bytef*)b.data();
    z.avail_in = uInt(b.size());
    z.next_out = (Bytef*)out.data();
    z.avail_out = uInt(out.size());
    deflate(&z, Z_FINISH);
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
  };
  write_bytes(d + "/t10k-images-idx3-ubyte", idx);
  const std::string z = gz(idx);
  int cases = 0;
  for (size_t n = 0; n < z.size(); n += 3, ++cases) {
    write_bytes(d + "/train-images-idx3-ubyte.gz", z.substr(0, n));
    CHECK_THROWS_AS(gan::open_dataset("mnist:" + d), gan::DataError);
  }
  for (size_t n = 0; n < idx.size(); n += 97, ++cases) {
    fs::remove(d + "/train-images-idx3-ubyte.gz");
    write_bytes(d + "/train-images-idx3-ubyte", idx.substr(0, n));
    CHECK_THROWS_AS(gan::open_dataset("mnist:" + d), gan::DataError);
  }
  fs::remove(d + "/train-images-idx3-ubyte");
  fs::create_directories(d + "/train-images-idx3-ubyte");
  CHECK_THROWS_WITH_AS(gan::open_dataset("mnist:" + d), doctest::Contains("is a folder"), gan::DataError);
  const std::string c = wn::test::temp_dir("cifar_fuzz");
  for (int i = 1; i <= 5; ++i) write_bytes(fmt::format("{}/data_batch_{}.bin", c, i), std::string(3073, char(3)));
  for (size_t n : {size_t(0), size_t(1), size_t(3072), size_t(3074), size_t(6145)}) {
    write_bytes(c + "/test_batch.bin", std::string(n, char(3)));
    CHECK_THROWS_WITH_AS(gan::open_dataset("cifar10:" + c), doctest::Contains("test_batch.bin"), gan::DataError);
    ++cases;
  }
  write_bytes(c + "/test_batch.bin", std::string(1, char(12)) + std::string(3072, char(3)));
  CHECK_THROWS_WITH_AS(gan::open_dataset("cifar10:" + c), doctest::Contains("label 12"), gan::DataError);
  MESSAGE(cases << " damaged IDX / CIFAR files");
  fs::remove_all(d);
  fs::remove_all(c);
}

TEST_CASE("images: a decompression bomb is refused from its header; a truncated LMDB is an error, not SIGBUS") {
  const std::string d = wn::test::temp_dir("img_fuzz");
  // A PNG whose header claims 10000 x 10000 (stb_image does not check the CRC).
  std::string png;
  std::vector<uint8_t> px(8 * 8 * 3, 100);
  stbi_write_png_to_func([](void* c, void* data, int n) { static_cast<std::string*>(c)->append((char*)data, n); },
                         &png, 8, 8, 3, px.data(), 8 * 3);
  std::string bomb = png;
  for (int k = 0; k < 2; ++k) {
    const uint32_t v = 10000;
    for (int i = 0; i < 4; ++i) bomb[16 + 4 * k + i] = char((v >> (24 - 8 * i)) & 0xff);
  }
  fs::create_directories(d + "/imgs");
  write_bytes(d + "/imgs/bomb.png", bomb);
  CHECK_THROWS_WITH_AS(gan::open_dataset("folder:" + d + "/imgs", 8, 8), doctest::Contains("over the limit"),
                       gan::DataError);
  CHECK_THROWS_WITH(gan::set_max_image_pixels(0), doctest::Contains("must be >= 1"));
  CHECK(gan::max_image_pixels() == int64_t(1) << 24);
  // An LMDB of a few images, then its data file cut at many lengths.
  const std::string l = d + "/lmdb";
  fs::create_directories(l);
  std::vector<std::pair<std::string, std::string>> kv;
  for (int i = 0; i < 40; ++i) kv.emplace_back(fmt::format("key{:03d}", i), png + std::string(size_t(i) * 300, 'x'));
  wn::test::write_lmdb(l, kv);
  const std::string full = read_bytes(l + "/data.mdb");
  int refused = 0, cases = 0;
  for (size_t n = 0; n < full.size(); n += 1531, ++cases) {
    write_bytes(l + "/data.mdb", full.substr(0, n));
    try {
      auto ds = gan::open_dataset("lsun:" + l, 8, 8);
      std::vector<float> out(3 * 64);
      for (int64_t i = 0; i < ds->size(); ++i) ds->load(i, out.data());
    } catch (const gan::DataError& e) {
      ++refused;
      CHECK_MESSAGE(std::string(e.what()).find(l) != std::string::npos, e.what());
    }
  }
  CHECK(refused == cases);
  MESSAGE(cases << " truncated LMDB files, all refused");
  fs::remove_all(d);
}

TEST_CASE("fuzzing: every seed input and every input a fuzz target ever crashed on is read or refused cleanly") {
  int n = 0;
  for (const char* kind : {"corpus", "regressions"})
    for (const auto& t : wn::fuzz::targets()) {
      const fs::path dir = fs::path(WNGAN_SOURCE_DIR) / "tests/fuzz" / kind / t.name;
      if (!fs::is_directory(dir)) continue;
      for (const auto& e : fs::directory_iterator(dir)) {
        const std::string b = read_bytes(e.path().string());
        INFO(t.name << ": " << e.path().string());
        t.run(reinterpret_cast<const uint8_t*>(b.data()), b.size());
        ++n;
      }
    }
  MESSAGE(n << " fuzz inputs replayed");
  CHECK(n >= 8);
}

TEST_CASE("image folders: every truncation and 300 byte changes of a PNG and a JPEG are decoded or refused by name") {
  const std::string d = wn::test::temp_dir("img_bytes");
  std::vector<uint8_t> px(12 * 10 * 3);
  for (size_t i = 0; i < px.size(); ++i) px[i] = uint8_t(i * 37);
  auto sink = [](void* c, void* data, int n) { static_cast<std::string*>(c)->append((char*)data, n); };
  std::string png, jpg;
  stbi_write_png_to_func(sink, &png, 12, 10, 3, px.data(), 12 * 3);
  stbi_write_jpg_to_func(sink, &jpg, 12, 10, 3, px.data(), 90);
  std::mt19937 rng(11);
  int cases = 0, refused = 0;
  for (const std::string& good : {png, jpg}) {
    std::vector<std::string> bad;
    for (size_t n = 0; n < good.size(); n += 7) bad.push_back(good.substr(0, n));
    for (int k = 0; k < 150; ++k) {
      std::string b = good;
      b[rng() % b.size()] = char(rng());
      bad.push_back(b);
    }
    for (const std::string& b : bad) {
      const std::string dir = d + "/" + std::to_string(cases);
      fs::create_directories(dir);
      write_bytes(dir + "/x.png", b);
      ++cases;
      try {
        auto ds = gan::open_dataset("folder:" + dir, 12, 12, 3);
        std::vector<float> out(3 * 12 * 12);
        ds->load(0, out.data());
      } catch (const gan::DataError& e) {
        ++refused;
        CHECK_MESSAGE(std::string(e.what()).find(dir) != std::string::npos, e.what());
      }
    }
  }
  MESSAGE(cases << " damaged images, " << refused << " refused");
  CHECK(refused > cases / 3);
  fs::remove_all(d);
}
