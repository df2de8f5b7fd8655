#include "tests/fuzz/harness.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "gan/data.h"
#include "eval/study.h"
#include "gan/grad_trace.h"
#include "gan/run_config.h"
#include "gan/split.h"
#include "nn/checkpoint.h"

namespace wn::fuzz {

namespace fs = std::filesystem;

namespace {

// A folder of this process for the files a reader needs.
const std::string& scratch() {
  static const std::string d = [] {
    const fs::path p = fs::temp_directory_path() / ("wngan_fuzz_" + std::to_string(::getpid()));
    fs::create_directories(p);
    return p.string();
  }();
  return d;
}

void write(const std::string& path, const uint8_t* data, size_t size) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data), std::streamsize(size));
}

std::string be32(uint32_t v) { return {char(v >> 24), char((v >> 16) & 0xff), char((v >> 8) & 0xff), char(v & 0xff)}; }

// Any exception is a clean refusal; the reader must not crash or report.
template <class F>
void refuse_ok(F&& f) {
  try {
    f();
  } catch (const std::exception&) {
  }
}

void safetensors(const uint8_t* d, size_t n) {
  refuse_ok([&] { nn::parse_safetensors(std::string(reinterpret_cast<const char*>(d), n), "fuzz"); });
}

// The input as the training images of an IDX data set (gzip when it starts like one).
void idx(const uint8_t* d, size_t n) {
  const std::string dir = scratch() + "/idx";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const bool gz = n >= 2 && d[0] == 0x1f && d[1] == 0x8b;
  write(dir + (gz ? "/train-images-idx3-ubyte.gz" : "/train-images-idx3-ubyte"), d, n);
  const std::string t = be32(0x803) + be32(1) + be32(28) + be32(28) + std::string(784, '\7');
  write(dir + "/t10k-images-idx3-ubyte", reinterpret_cast<const uint8_t*>(t.data()), t.size());
  refuse_ok([&] {
    auto ds = gan::open_dataset("mnist:" + dir);
    std::vector<float> out(784);
    for (int64_t i = 0; i < ds->size() && i < 4; ++i) ds->load(i, out.data());
  });
}

// The input as CIFAR-10's test batch, beside five valid one-record batches.
void cifar(const uint8_t* d, size_t n) {
  const std::string dir = scratch() + "/cifar";
  if (!fs::exists(dir + "/data_batch_5.bin")) {
    fs::create_directories(dir);
    const std::string rec = std::string(1, '\3') + std::string(3072, '\x40');
    for (int i = 1; i <= 5; ++i)
      write(dir + "/data_batch_" + std::to_string(i) + ".bin", reinterpret_cast<const uint8_t*>(rec.data()), rec.size());
  }
  write(dir + "/test_batch.bin", d, n);
  refuse_ok([&] {
    auto ds = gan::open_dataset("cifar10:" + dir, 16, 16);
    std::vector<float> out(3 * 16 * 16);
    ds->load(ds->size() - 1, out.data());
  });
}

// The input as the one image of a folder, decoded and resized.
void image(const uint8_t* d, size_t n) {
  const std::string dir = scratch() + "/image";
  fs::create_directories(dir);
  write(dir + "/a.png", d, n);
  refuse_ok([&] {
    auto ds = gan::open_dataset("folder:" + dir, 16, 16, 3, 12, 12);
    std::vector<float> out(3 * 16 * 16);
    ds->load(0, out.data());
  });
}

// The input as an LMDB data file of encoded images.
void lmdb(const uint8_t* d, size_t n) {
  const std::string dir = scratch() + "/lmdb";
  fs::create_directories(dir);
  write(dir + "/data.mdb", d, n);
  refuse_ok([&] {
    auto ds = gan::open_dataset("lsun:" + dir, 8, 8);
    std::vector<float> out(3 * 64);
    for (int64_t i = 0; i < ds->size() && i < 8; ++i) refuse_ok([&] { ds->load(i, out.data()); });
  });
}

void split(const uint8_t* d, size_t n) {
  const std::string path = scratch() + "/split.json";
  write(path, d, n);
  refuse_ok([&] { gan::load_split(path, 50); });
}

void config(const uint8_t* d, size_t n) {
  const std::string dir = scratch() + "/run";
  fs::create_directories(dir);
  write(dir + "/config.json", d, n);
  refuse_ok([&] { gan::load_train_config(dir); });
}

// A run's gradient trace (grad_trace.csv): read, then trimmed as a resume does.
void trace(const uint8_t* d, size_t n) {
  const std::string path = scratch() + "/grad_trace.csv";
  write(path, d, n);
  refuse_ok([&] { gan::read_trace(path); });
  refuse_ok([&] { gan::trim_trace(path, 5); });
  refuse_ok([&] { gan::read_trace(path); });
}

// A study's study.json: read as `study --resume` reads it (paths resolved against the
// study folder), then written back and read again.
void study(const uint8_t* d, size_t n) {
  const std::string dir = scratch() + "/study";
  fs::create_directories(dir);
  write(dir + "/study.json", d, n);
  refuse_ok([&] {
    const auto runs = eval::read_study_state(dir + "/study.json");
    eval::write_study_state(dir + "/again.json", runs);
    eval::read_study_state(dir + "/again.json");
  });
}

// A checkpoint's model description, then the model built from it.
void model(const uint8_t* d, size_t n) {
  refuse_ok([&] {
    const gan::ModelConfig m = gan::model_from_json(nlohmann::json::parse(d, d + n));
    // Build only small ones (a valid description of a large model is not a reader's bug).
    bool small = m.nf <= 32 && m.code <= 64 && m.height <= 64 && m.width <= 64 && m.blocks <= 2 && m.nlayer <= 6;
    for (int64_t f : m.features) small = small && f <= 32;
    if (!small) return;
    Generator gen(1);
    gan::build_gan(m, gen);
  });
}

}  // namespace

const std::vector<Target>& targets() {
  static const std::vector<Target> t = {{"safetensors", safetensors}, {"idx", idx},     {"cifar", cifar},
                                        {"image", image},             {"lmdb", lmdb},   {"split", split},
                                        {"config", config},           {"model", model},
                                        {"trace", trace},             {"study", study}};
  return t;
}

const Target& target(const std::string& name) {
  for (const auto& t : targets())
    if (name == t.name) return t;
  throw std::invalid_argument("unknown fuzz target '" + name + "'");
}

}  // namespace wn::fuzz
