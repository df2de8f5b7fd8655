#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "helpers.h"
#include "nn/checkpoint.h"
#include "nn/layers.h"

using namespace wn;
using namespace wn::nn;
namespace fs = std::filesystem;

namespace {
using wn::test::temp_dir;
void write_bytes(const std::string& path, const std::string& b) {
  std::ofstream f(path, std::ios::binary);
  f << b;
}
std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
// A file laid out by hand: header length, JSON header, data.
std::string handmade(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}
std::string floats(std::vector<float> v) { return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4); }
}  // namespace

TEST_CASE("safetensors round trip is bit-exact, with metadata") {
  std::string dir = temp_dir("roundtrip");
  Generator gen(1);
  Named t = {{"G.level1.conv.weight", randn({3, 2, 4, 4}, gen)},
             {"D.final.conv.bias", randn({1}, gen)},
             {"optim.D.step", Tensor::scalar(17, DType::F64)},
             {"x64", randn({2, 5}, gen, 1.0, DType::F64)}};
  save_safetensors(dir + "/a.safetensors", t, {{"iteration", "17"}, {"arch", "dcgan"}});
  TensorFile f = load_safetensors(dir + "/a.safetensors");
  REQUIRE(f.tensors.size() == t.size());
  for (auto& [name, tensor] : t) {
    const Tensor& back = f.get(name);
    CHECK(back.shape() == tensor.shape());
    CHECK(back.dtype() == tensor.dtype());
    CHECK(std::memcmp(back.raw(), tensor.raw(), tensor.nbytes()) == 0);
  }
  CHECK(f.metadata.at("iteration") == "17");
  CHECK(f.metadata.at("arch") == "dcgan");
  // The layout: 8-byte little-endian length, then the JSON header padded to 8 bytes.
  std::string bytes = read_bytes(dir + "/a.safetensors");
  uint64_t hlen = 0;
  for (int i = 0; i < 8; ++i) hlen |= uint64_t(static_cast<unsigned char>(bytes[i])) << (8 * i);
  CHECK(hlen % 8 == 0);
  CHECK(bytes[8] == '{');
  CHECK(bytes.find("\"data_offsets\"") < 8 + hlen);
  fs::remove_all(dir);
}

TEST_CASE("a file written by hand in the format loads with the right values") {
  std::string dir = temp_dir("handmade");
  std::string header =
      R"({"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]},)"
      R"("a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}})";
  write_bytes(dir + "/h.safetensors", handmade(header, floats({1, 2, 3, 4.5f, -1})));
  TensorFile f = load_safetensors(dir + "/h.safetensors");
  CHECK(f.get("a").to_vector() == std::vector<double>{1, 2, 3});
  CHECK(f.get("b").to_vector() == std::vector<double>{4.5, -1});
  CHECK(f.metadata.at("format") == "pt");
  fs::remove_all(dir);
}

TEST_CASE("corrupt files give clear errors, never a crash") {
  std::string dir = temp_dir("corrupt");
  const std::string ok_entry = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  struct Bad {
    std::string bytes, expect;
  };
  std::string good = handmade("{" + ok_entry + "}", floats({1, 2}));
  std::vector<Bad> cases = {
      {"abc", "truncated"},
      {good.substr(0, 20), "truncated: header length"},
      {handmade("{not json", ""), "header is not valid JSON"},
      {handmade(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,80]}})", floats({1, 2})), "outside the 8 data bytes"},
      {handmade(R"({"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}})", floats({1})), "unsupported dtype 'BF16'"},
      {handmade(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", floats({1, 2})), "needs 12"},
      {handmade(R"({"a":{"dtype":"F32","shape":[2]}})", floats({1, 2})), "lacks dtype, shape or data_offsets"},
      {handmade(R"([1,2])", ""), "not a JSON object"},
  };
  for (auto& c : cases) {
    write_bytes(dir + "/bad.safetensors", c.bytes);
    CHECK_THROWS_WITH_AS(load_safetensors(dir + "/bad.safetensors"), doctest::Contains(c.expect.c_str()), CheckpointError);
  }
  CHECK_THROWS_WITH_AS(load_safetensors(dir + "/missing.safetensors"), doctest::Contains("cannot open"),
                       CheckpointError);
  fs::remove_all(dir);
}

TEST_CASE("loading into a module checks every name, shape and dtype and reports all mismatches at once") {
  std::string dir = temp_dir("assign");
  Generator gen(2);
  Linear a(3, 2, gen), b(3, 2, gen);
  a.set_name("L");
  b.set_name("L");
  save_safetensors(dir + "/l.safetensors", a.state());
  assign_named(b.state(), load_safetensors(dir + "/l.safetensors"));
  CHECK(wn::test::max_abs_diff(a.weight, b.weight) == 0);
  // A different layer: wrong shape for weight, missing bias, an unexpected tensor, a wrong dtype.
  Named other = {{"L.weight", Tensor::zeros({4, 3})}, {"L.extra", Tensor::zeros({1})}};
  save_safetensors(dir + "/o.safetensors", other);
  Tensor before = b.weight.clone();
  try {
    assign_named(b.state(), load_safetensors(dir + "/o.safetensors"));
    FAIL("expected a CheckpointError");
  } catch (const CheckpointError& e) {
    std::string m = e.what();
    CHECK(m.find("3 mismatch(es)") != std::string::npos);
    CHECK(m.find("'L.weight' has shape (4, 3) in the file, (2, 3) expected") != std::string::npos);
    CHECK(m.find("missing 'L.bias'") != std::string::npos);
    CHECK(m.find("unexpected 'L.extra'") != std::string::npos);
  }
  CHECK(wn::test::max_abs_diff(b.weight, before) == 0);  // nothing copied
  save_safetensors(dir + "/d.safetensors", {{"L.weight", Tensor::zeros({2, 3}, DType::F64)}, {"L.bias", Tensor::zeros({2})}});
  CHECK_THROWS_WITH(assign_named(b.state(), load_safetensors(dir + "/d.safetensors")),
                    doctest::Contains("'L.weight' has dtype F64 in the file, F32 expected"));
  fs::remove_all(dir);
}

TEST_CASE("a failed write leaves the previous checkpoint intact and no temporary file behind") {
  std::string dir = temp_dir("atomic");
  std::string path = dir + "/c.safetensors";
  save_safetensors(path, {{"w", Tensor::ones({4})}});
  std::string before = read_bytes(path);
  CHECK_THROWS(save_safetensors(path, {{"w", Tensor::zeros({4})}, {"__metadata__", Tensor::zeros({1})}}));
  CHECK(read_bytes(path) == before);
  // A folder that cannot be made (a file stands on the way) fails cleanly too.
  CHECK_THROWS_WITH(save_safetensors(path + "/sub/c.safetensors", {{"w", Tensor::ones({1})}}),
                    doctest::Contains("cannot create the folder"));
  int files = 0;
  for (auto& e : fs::directory_iterator(dir)) files += e.is_regular_file();
  CHECK(files == 1);
  // Missing folders on the way are created.
  save_safetensors(dir + "/new/sub/c.safetensors", {{"w", Tensor::ones({1})}});
  CHECK(load_safetensors(dir + "/new/sub/c.safetensors").get("w").to_vector() == std::vector<double>{1});
  fs::remove_all(dir);
}

TEST_CASE("a write to a device node goes into the device; the node is not replaced by a file") {
  const std::string dir = temp_dir("atomic_node"), node = dir + "/null";
  // A null device of our own (as root; elsewhere mknod is refused and the case skipped).
  if (::mknod(node.c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0) {
    MESSAGE("mknod refused (not root): not checked");
    fs::remove_all(dir);
    return;
  }
  write_file_atomic(node, "written into the device\n");
  CHECK(fs::is_character_file(node));
  CHECK(file_kind(node) == FileKind::Special);
  int entries = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(dir)) ++entries;
  CHECK(entries == 1);  // no temporary file left beside it
  fs::remove_all(dir);
}
