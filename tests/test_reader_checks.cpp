// Every check of the file readers, one damaged input each: for every `throw` in gan/data.cpp,
// gan/split.cpp, gan/grad_trace.cpp (parse_trace), nn/checkpoint.cpp (load_safetensors) and
// gan/run_config.cpp (config.json) that no other test reaches with its message, an input
// that breaks exactly that check, and the part of the error that names it (so that another
// check firing instead fails the case). Each table starts from a good file that is read
// without an error, then changes one thing.
//
// Checks no file can reach, left untested on purpose:
//  - gan/data.cpp read_maybe_gz and slurp "cannot open (...)", gan/split.cpp "cannot open the
//    split" after its file-kind check, gan/grad_trace.cpp "cannot open the gradient trace",
//    nn/checkpoint.cpp load_safetensors "cannot open (...)" and gan/run_config.cpp
//    load_train_config's second "cannot open": each comes after a check that the file is a
//    regular file and needs an open() of it to fail (permissions, which root, as the tests
//    run, ignores; out of descriptors).
//  - gan/data.cpp slurp "read error" and nn/checkpoint.cpp "read error": an I/O error of the
//    device.
//  - gan/data.cpp read_maybe_gz "more than 4294967296 bytes once decompressed": needs a gzip
//    stream of over 4 GiB, which the reader holds in memory before refusing (4 GiB of memory
//    and a minute of inflating: not a unit test).
//  - gan/data.cpp decode "encoded image of N bytes is too large": needs an encoded image of
//    over 2 GiB read into memory (a file of a folder or an LMDB value).
//  - gan/data.cpp check_lmdb_tree "unreadable": every page it reads is in [2, last], and the
//    constructor refused the file already unless it holds pages [0, last].
//  - gan/split.cpp the second "made for a data set of N images" and "index N outside the data
//    set": repeats of checks made before (dataset_size in the try block, each element's range
//    in index_array) that always fire first.
//  - gan/run_config.cpp validate_model's "X = N is out of range": model_from_json reads every
//    such field with the same or a narrower range first (height and width: [2, 8192] against
//    [0, 8192]; a ResNet level's features in [1, 8192] likewise).
//  - gan/run_config.cpp load_train_config "malformed run configuration (...)": every access
//    to the JSON is guarded by a type check, so no nlohmann exception can reach that catch.
#include <stb_image.h>
#include <stb_image_write.h>
#include <sys/stat.h>
#include <webp/decode.h>
#include <webp/encode.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "data_helpers.h"
#include "gan/data.h"
#include "gan/grad_trace.h"
#include "gan/models.h"
#include "gan/run_config.h"
#include "gan/split.h"
#include "nn/checkpoint.h"

using namespace wn;
using namespace wn::gan;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using KV = std::vector<std::pair<std::string, std::string>>;

std::string read_raw(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
void write_raw(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }
void write_gz(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}

// s with every "{dir}" replaced by dir.
std::string fill(std::string s, const std::string& dir) {
  for (size_t at = s.find("{dir}"); at != std::string::npos; at = s.find("{dir}", at + dir.size()))
    s.replace(at, 5, dir);
  return s;
}

// Runs read and expects an E whose message holds fragment; anything else fails the check.
template <class E>
void expect_refusal(const std::string& check, const std::function<void()>& read, const std::string& fragment) {
  INFO("check: " << check);
  try {
    read();
    FAIL_CHECK("read without an error; expected '" << fragment << "'");
  } catch (const E& e) {
    CHECK_MESSAGE(std::string(e.what()).find(fragment) != std::string::npos,
                  "expected '" << fragment << "' in: " << std::string(e.what()));
  } catch (const std::exception& e) {
    FAIL_CHECK("another exception type: " << std::string(e.what()));
  }
}

// An IDX image file of n images of h x w where every pixel of image i is i.
std::string idx_bytes(uint32_t n, uint32_t h = 28, uint32_t w = 28) {
  using wn::test::be32;
  std::string s = be32(0x803) + be32(n) + be32(h) + be32(w);
  for (uint32_t i = 0; i < n; ++i) s += std::string(size_t(h) * w, char(i));
  return s;
}

// A w x h RGB PNG of a gradient.
std::string png_bytes(int w, int h) {
  std::vector<uint8_t> px(size_t(w) * h * 3);
  for (size_t i = 0; i < px.size(); ++i) px[i] = uint8_t(i * 37);
  std::string out;
  stbi_write_png_to_func([](void* c, void* d, int n) { static_cast<std::string*>(c)->append((char*)d, n); }, &out, w, h,
                         3, px.data(), w * 3);
  return out;
}

// A w x h lossless WebP of the same gradient.
std::string webp_bytes(int w, int h) {
  std::vector<uint8_t> px(size_t(w) * h * 3);
  for (size_t i = 0; i < px.size(); ++i) px[i] = uint8_t(i * 37);
  uint8_t* out = nullptr;
  const size_t n = WebPEncodeLosslessRGB(px.data(), w, h, w * 3, &out);
  REQUIRE(n > 0);
  std::string s(reinterpret_cast<char*>(out), n);
  WebPFree(out);
  return s;
}

bool stb_reads_header(const std::string& b) {
  int w, h, c;
  return stbi_info_from_memory(reinterpret_cast<const stbi_uc*>(b.data()), int(b.size()), &w, &h, &c) == 1;
}

// Little-endian integers of n bytes in a file's bytes, as LMDB stores them.
uint64_t get_le(const std::string& b, size_t off, int n) {
  uint64_t v = 0;
  for (int k = n - 1; k >= 0; --k) v = v << 8 | uint8_t(b.at(off + size_t(k)));
  return v;
}
void put_le(std::string& b, size_t off, int n, uint64_t v) {
  for (int k = 0; k < n; ++k) b.at(off + size_t(k)) = char((v >> (8 * k)) & 0xff);
}

// The layout of a 64-bit LMDB data file (liblmdb's mdb.c, as gan/data.cpp reads it): meta
// pages 0 and 1, each a 16-byte page header then the meta (the page size at 40, the free
// DB's root at 80, the main DB's depth at 94 and root at 128, the last page at 136, the
// transaction at 144); a tree page has its flags at 10, lower and upper at 12 and 14 and its
// node offsets (u16) from 16; a node is the value size (u32; a branch's child page number
// with the flags), its flags (u16), its key size (u16), the key, then the value or, with
// F_BIGDATA, the first overflow page (u64).
struct Lmdb {
  std::string b;
  uint64_t psize() const { return get_le(b, 40, 4); }
  // The meta page liblmdb uses: the later transaction's.
  size_t meta() const { return get_le(b, 144, 8) >= get_le(b, psize() + 144, 8) ? 0 : psize(); }
  uint64_t root_pgno() const { return get_le(b, meta() + 128, 8); }
  size_t root() const { return root_pgno() * psize(); }
  // The offset of node i of the page at `page`.
  size_t node(size_t page, int i) const { return page + get_le(b, page + 16 + 2 * size_t(i), 2); }
  // The root leaf's node holding key.
  size_t node_of(const std::string& key) const {
    const size_t page = root();
    for (int i = 0; i < int(get_le(b, page + 12, 2) - 16) / 2; ++i) {
      const size_t n = node(page, i);
      if (b.substr(n + 8, get_le(b, n + 6, 2)) == key) return n;
    }
    FAIL("no node for key " << key);
    return 0;
  }
};

// An LMDB of kv in dir, written by liblmdb, then its data file changed by patch.
void patched_lmdb(const std::string& dir, const KV& kv, const std::function<void(Lmdb&)>& patch) {
  wn::test::write_lmdb(dir, kv);
  Lmdb m{read_raw(dir + "/data.mdb")};
  patch(m);
  write_raw(dir + "/data.mdb", m.b);
}

// Deletes key from the LMDB in dir (another process rewriting the database).
void delete_lmdb_key(const std::string& dir, const std::string& key) {
  MDB_env* env;
  REQUIRE(mdb_env_create(&env) == 0);
  mdb_env_set_mapsize(env, 1 << 24);
  REQUIRE(mdb_env_open(env, dir.c_str(), 0, 0664) == 0);
  MDB_txn* txn;
  MDB_dbi dbi;
  REQUIRE(mdb_txn_begin(env, nullptr, 0, &txn) == 0);
  REQUIRE(mdb_dbi_open(txn, nullptr, 0, &dbi) == 0);
  MDB_val k{key.size(), const_cast<char*>(key.data())};
  REQUIRE(mdb_del(txn, dbi, &k, nullptr) == 0);
  REQUIRE(mdb_txn_commit(txn) == 0);
  mdb_env_close(env);
}

void load_all(const Dataset& ds) {
  std::vector<float> out(size_t(ds.channels * ds.height * ds.width));
  for (int64_t i = 0; i < ds.size(); ++i) ds.load(i, out.data());
}

// One damaged data set: the check it breaks, how to make it in a fresh folder and read it,
// the part of the error naming the check ("{dir}" stands for the folder), and whether it is
// a usage error (a DataSpecError: a --data value or size, not a file).
struct DataCase {
  const char* check;
  std::function<void(const std::string& dir)> read;
  std::string fragment;
  bool usage = false;
};

void expect_data_refusals(const std::string& tag, const std::vector<DataCase>& cases) {
  for (size_t i = 0; i < cases.size(); ++i) {
    const DataCase& c = cases[i];
    const std::string dir = wn::test::temp_dir(fmt::format("{}{}", tag, i));
    expect_refusal<DataError>(
        c.check,
        [&] {
          try {
            c.read(dir);
          } catch (const DataError& e) {
            CHECK_MESSAGE((dynamic_cast<const DataSpecError*>(&e) != nullptr) == c.usage,
                          (c.usage ? "expected a DataSpecError: " : "expected a plain DataError: ")
                              << std::string(e.what()));
            throw;
          }
        },
        fill(c.fragment, dir));
    fs::remove_all(dir);
  }
}

}  // namespace

TEST_CASE("reader checks: IDX and CIFAR-10 files") {
  const std::string good = wn::test::temp_dir("rc_idx_good");
  write_raw(good + "/train-images-idx3-ubyte", idx_bytes(3));
  write_gz(good + "/t10k-images-idx3-ubyte.gz", idx_bytes(2));
  CHECK(open_dataset("mnist:" + good)->size() == 5);
  fs::remove_all(good);
  // The test file, good, beside a damaged training file.
  auto mnist = [](const std::string& d) {
    write_raw(d + "/t10k-images-idx3-ubyte", idx_bytes(2));
    return "mnist:" + d;
  };
  auto cifar_batches = [](const std::string& d, int upto) {
    for (int i = 1; i <= upto; ++i) write_raw(fmt::format("{}/data_batch_{}.bin", d, i), std::string(3073, char(3)));
  };
  const std::vector<DataCase> cases = {
      // A pipe in place of the file: refused before reading (no hang).
      {"require_regular: a special file",
       [&](const std::string& d) {
         REQUIRE(::mkfifo((d + "/train-images-idx3-ubyte").c_str(), 0600) == 0);
         open_dataset(mnist(d));
       },
       "{dir}/train-images-idx3-ubyte: not a regular file (a pipe, device or socket)"},
      // A gzip stream cut short: zlib's error, not a short IDX file.
      {"read_maybe_gz: corrupt gzip",
       [&](const std::string& d) {
         write_gz(d + "/whole.gz", idx_bytes(3));
         const std::string z = read_raw(d + "/whole.gz");
         write_raw(d + "/train-images-idx3-ubyte.gz", z.substr(0, z.size() / 2));
         open_dataset(mnist(d));
       },
       "{dir}/train-images-idx3-ubyte.gz: corrupt or truncated gzip data ("},
      // Fewer than the 16 header bytes.
      {"append_idx: shorter than the header",
       [&](const std::string& d) {
         write_raw(d + "/train-images-idx3-ubyte", idx_bytes(3).substr(0, 10));
         open_dataset(mnist(d));
       },
       "{dir}/train-images-idx3-ubyte: truncated IDX file (10 bytes)"},
      // Images of another size than MNIST's 28x28.
      {"append_idx: image size",
       [&](const std::string& d) {
         write_raw(d + "/train-images-idx3-ubyte", idx_bytes(2, 32, 32));
         open_dataset(mnist(d));
       },
       "{dir}/train-images-idx3-ubyte: images are 32x32, expected 28x28"},
      // cifar10: a folder that does not exist.
      {"open_cifar: not a folder", [](const std::string& d) { open_dataset("cifar10:" + d + "/absent"); },
       "{dir}/absent: not a folder"},
      // cifar10: the second of the six batch files missing.
      {"open_cifar: a batch file missing",
       [&](const std::string& d) {
         cifar_batches(d, 1);
         open_dataset("cifar10:" + d);
       },
       "{dir}/data_batch_2.bin: file not found"},
  };
  expect_data_refusals("rc_idx", cases);
}

TEST_CASE("reader checks: image folders") {
  const std::string good = wn::test::temp_dir("rc_folder_good");
  write_raw(good + "/a.png", png_bytes(40, 40));
  write_raw(good + "/b.png", png_bytes(40, 40));
  load_all(*open_dataset("folder:" + good, 32, 32));
  fs::remove_all(good);
  // Two good 40x40 images, a.png and b.png, opened at 32x32 cropped to 40x40.
  auto open_two = [](const std::string& d) {
    write_raw(d + "/a.png", png_bytes(40, 40));
    write_raw(d + "/b.png", png_bytes(40, 40));
    return open_dataset("folder:" + d, 32, 32, 3, 40, 40);
  };
  const std::vector<DataCase> cases = {
      // A folder that does not exist.
      {"FolderDataset: not a folder", [](const std::string& d) { open_dataset("folder:" + d + "/absent"); },
       "{dir}/absent: not a folder"},
      // A header stb reads with a height of 0 (a Radiance HDR named .png: stb goes by the bytes).
      {"check_pixels: an empty image",
       [](const std::string& d) {
         write_raw(d + "/x.png", "#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 0 +X 5\n");
         open_dataset("folder:" + d);
       },
       "{dir}/x.png: image of size 5x0"},
      // A JPEG whose Huffman table declares 16 x 17 = 272 codes (stb would write past its table).
      {"check_jpeg_tables: too many Huffman codes",
       [](const std::string& d) {
         std::string jpg("\xff\xd8\xff\xc4\x00\x13\x00", 7);
         jpg += std::string(16, '\x11') + std::string(272, '\0') + "\xff\xd9";
         write_raw(d + "/x.jpg", jpg);
         open_dataset("folder:" + d);
       },
       "{dir}/x.jpg: damaged JPEG (a Huffman table declares 272 codes, at most 256)"},
      // A PNG cut in its pixel data: the header (and so the folder's check) reads, the decode fails.
      {"decode: stb cannot decode the pixels",
       [](const std::string& d) {
         const std::string png = png_bytes(40, 40), cut = png.substr(0, png.size() / 2);
         REQUIRE(stb_reads_header(cut));
         write_raw(d + "/x.png", cut);
         open_dataset("folder:" + d, 32, 32);
       },
       "{dir}/x.png: undecodable image ("},
      // An image deleted after the folder was opened (read at its first load).
      {"require_regular: a file gone",
       [&](const std::string& d) {
         auto ds = open_two(d);
         fs::remove(d + "/b.png");
         load_all(*ds);
       },
       "{dir}/b.png: file not found"},
      // An image replaced by one smaller than the crop after the folder was opened.
      {"FolderDataset::load: the transform refuses the image",
       [&](const std::string& d) {
         auto ds = open_two(d);
         write_raw(d + "/b.png", png_bytes(20, 20));
         load_all(*ds);
       },
       "{dir}/b.png: center_crop: crop 40x40 (h x w) is larger than the image 20x20"},
  };
  expect_data_refusals("rc_folder", cases);
}

TEST_CASE("reader checks: LSUN LMDB databases") {
  // A small inline value and one that takes overflow pages; 60 values that make a tree two deep.
  const std::string png = png_bytes(8, 8);
  const KV small = {{"a", png}, {"b", png + std::string(5000, 'x')}};
  KV many;
  for (int i = 0; i < 60; ++i) many.emplace_back(fmt::format("key{:03d}", i), png + std::string(150, 'x'));
  // Both read as they are; the layout the patches below assume.
  auto layout = [](const KV& kv) {
    const std::string good = wn::test::temp_dir("rc_lmdb_good");
    wn::test::write_lmdb(good, kv);
    load_all(*open_dataset("lsun:" + good, 8, 8));
    Lmdb m{read_raw(good + "/data.mdb")};
    fs::remove_all(good);
    REQUIRE(m.psize() == 4096);
    return m;
  };
  const Lmdb small_db = layout(small), many_db = layout(many);
  REQUIRE(get_le(small_db.b, small_db.meta() + 94, 2) == 1);       // a leaf root,
  REQUIRE(small_db.root_pgno() == 2);                              // page 2,
  REQUIRE(get_le(small_db.b, small_db.node_of("b") + 4, 2) == 1);  // "b" in overflow pages,
  REQUIRE(get_le(small_db.b, small_db.meta() + 136, 8) == 4);      // pages 3 and 4
  REQUIRE(get_le(many_db.b, many_db.meta() + 94, 2) == 2);         // a branch root over leaves
  REQUIRE(get_le(many_db.b, many_db.root() + 10, 2) == 0x01);
  const uint64_t first_child = get_le(many_db.b, many_db.node(many_db.root(), 0), 4);
  // The small database with its data file patched, opened at 8x8.
  auto open_patched = [&](const std::function<void(Lmdb&)>& patch) {
    return [&, patch](const std::string& d) {
      patched_lmdb(d, small, patch);
      open_dataset("lsun:" + d, 8, 8);
    };
  };
  auto open_patched_many = [&](const std::function<void(Lmdb&)>& patch) {
    return [&, patch](const std::string& d) {
      patched_lmdb(d, many, patch);
      open_dataset("lsun:" + d, 8, 8);
    };
  };
  const std::string bad = "{dir}/data.mdb: not a valid LMDB file (";
  const std::vector<DataCase> cases = {
      // A path that does not exist.
      {"LmdbDataset: not found", [](const std::string& d) { open_dataset("lsun:" + d + "/absent"); },
       "{dir}/absent: not found"},
      // Meta page 0 records a page size that is not a power of two.
      {"check_meta_pages: page size", open_patched([](Lmdb& m) { put_le(m.b, 40, 4, 1000); }),
       bad + "page size 1000 in a meta page)"},
      // The main database's root is page 1 (a meta page; liblmdb asserts).
      {"check_meta_pages: main root page", open_patched([](Lmdb& m) { put_le(m.b, m.meta() + 128, 8, 1); }),
       bad + "root page 1 in a meta page whose last page is 4)"},
      // The free database's root past the last page.
      {"check_meta_pages: free root page", open_patched([](Lmdb& m) { put_le(m.b, m.meta() + 80, 8, 9); }),
       bad + "root page 9 in a meta page whose last page is 4)"},
      // The file ends inside the second meta page.
      {"check_meta_pages: shorter than two meta pages", open_patched([](Lmdb& m) { m.b.resize(4096 + 100); }),
       "{dir}/data.mdb: truncated LMDB: 4196 bytes, less than its two meta pages"},
      // The second meta page records another (valid) page size than the first.
      {"check_meta_pages: meta pages disagree", open_patched([](Lmdb& m) { put_le(m.b, 4096 + 40, 4, 8192); }),
       bad + "meta pages of 4096 and 8192 bytes)"},
      // The meta page claims pages the file does not hold (cut after the leaf page).
      {"LmdbDataset: pages past the file's end", open_patched([](Lmdb& m) { m.b.resize(3 * 4096); }),
       "{dir}/data.mdb: truncated LMDB: its pages run to 4, the file holds 3 pages"},
      // Not an LMDB at all: no magic in either meta page, liblmdb refuses it.
      {"LmdbDataset::check: liblmdb refuses the file",
       [](const std::string& d) {
         write_raw(d + "/data.mdb", std::string(8192, 'x'));
         open_dataset("lsun:" + d);
       },
       "{dir}: cannot open as an LMDB ("},
      // A tree deeper than liblmdb's cursors go.
      {"check_lmdb_tree: depth", open_patched([](Lmdb& m) { put_le(m.b, m.meta() + 94, 2, 33); }),
       bad + "a tree 33 pages deep)"},
      // Depth 2 recorded for a root that is a leaf.
      {"check_lmdb_tree: page kind", open_patched([](Lmdb& m) { put_le(m.b, m.meta() + 94, 2, 2); }),
       bad + "page 2: not the branch or leaf its depth calls for)"},
      // The leaf's lower bound is odd (half a node offset).
      {"check_lmdb_tree: free-space bounds", open_patched([](Lmdb& m) { put_le(m.b, m.root() + 12, 2, 17); }),
       bad + "page 2: bad free-space bounds)"},
      // The leaf's lower bound says it holds no node.
      {"check_lmdb_tree: no nodes", open_patched([](Lmdb& m) { put_le(m.b, m.root() + 12, 2, 16); }),
       bad + "page 2: no nodes"},
      // A node offset into the page's free space (below upper).
      {"check_lmdb_tree: node offset", open_patched([](Lmdb& m) { put_le(m.b, m.root() + 16, 2, 20); }),
       bad + "page 2: a node outside the page)"},
      // A key size that runs past the page.
      {"check_lmdb_tree: key size", open_patched([](Lmdb& m) { put_le(m.b, m.node_of("a") + 6, 2, 4000); }),
       bad + "page 2: a key past the page)"},
      // A node flagged F_SUBDATA (a nested database).
      {"check_lmdb_tree: node flags", open_patched([](Lmdb& m) { put_le(m.b, m.node_of("a") + 4, 2, 0x02); }),
       bad + "page 2: a nested database or duplicates (not an image set))"},
      // An inline value's size that runs past the page.
      {"check_lmdb_tree: inline value size", open_patched([](Lmdb& m) { put_le(m.b, m.node_of("a"), 4, 4000); }),
       bad + "page 2: a value past the page)"},
      // F_BIGDATA on a node whose key ends 4 bytes before the page's end: no room for the page number.
      {"check_lmdb_tree: overflow page number", open_patched([](Lmdb& m) {
         const size_t n = m.node_of("a");
         put_le(m.b, n + 4, 2, 0x01);
         put_le(m.b, n + 6, 2, m.root() + 4096 - n - 8 - 4);
       }),
       bad + "page 2: a value's page number past the page)"},
      // The overflow value's first page past the last page.
      {"check_lmdb_tree: overflow pages", open_patched([](Lmdb& m) { put_le(m.b, m.node_of("b") + 8 + 1, 8, 1000); }),
       bad + "page 2: a value's pages outside the file)"},
      // A branch node's child past the last page.
      {"check_lmdb_tree: child page outside",
       open_patched_many([](Lmdb& m) { put_le(m.b, m.node(m.root(), 1), 4, 1000); }),
       bad + "page 1000: outside the file's pages)"},
      // The second branch node's child made the first's.
      {"check_lmdb_tree: a page reached twice",
       open_patched_many([&](Lmdb& m) { put_le(m.b, m.node(m.root(), 1), 4, first_child); }),
       bad + fmt::format("page {}: reached twice)", first_child)},
      // A database without a record.
      {"LmdbDataset: no images",
       [](const std::string& d) {
         wn::test::write_lmdb(d, {});
         open_dataset("lsun:" + d);
       },
       "{dir}: the LMDB holds no images"},
      // A WebP whose headers do not parse.
      {"decode: WebP headers",
       [](const std::string& d) {
         wn::test::write_lmdb(d, {{"k", std::string("RIFF\x20\0\0\0WEBPVP8 ", 16) + "not a bitstream"}});
         open_dataset("lsun:" + d, 8, 8);
       },
       "{dir} key 'k': undecodable WebP image"},
      // A WebP cut after its headers: its size reads, its pixels do not.
      {"decode: WebP pixels",
       [](const std::string& d) {
         const std::string cut = webp_bytes(40, 40).substr(0, 30);
         int w, h;
         REQUIRE(WebPGetInfo(reinterpret_cast<const uint8_t*>(cut.data()), cut.size(), &w, &h) == 1);
         wn::test::write_lmdb(d, {{"k", cut}});
         open_dataset("lsun:" + d, 8, 8);
       },
       "{dir} key 'k': undecodable WebP image"},
      // An 8x8 image for a 32x32 model (LSUN's images are checked as they load).
      {"check_not_tiny: more than 2x upscaling",
       [&](const std::string& d) {
         wn::test::write_lmdb(d, {{"k", png}});
         open_dataset("lsun:" + d, 32, 32);
       },
       "{dir} key 'k': image 8x8 is too small for 32x32 (at most 2x upscaling)"},
      // A 30x30 image under a 40x40 crop (big enough for the model, smaller than the crop).
      {"LmdbDataset::load: the transform refuses the image",
       [](const std::string& d) {
         wn::test::write_lmdb(d, {{"k", png_bytes(30, 30)}});
         open_dataset("lsun:" + d, 32, 32, 3, 40, 40);
       },
       "{dir} key 'k': center_crop: crop 40x40 (h x w) is larger than the image 30x30"},
      // A key deleted from the database after it was opened.
      {"LmdbDataset::load: a key gone",
       [&](const std::string& d) {
         wn::test::write_lmdb(d, {{"k0", png}, {"k1", png}});
         auto ds = open_dataset("lsun:" + d, 8, 8);
         delete_lmdb_key(d, "k1");
         load_all(*ds);
       },
       "{dir}: key 'k1': MDB_NOTFOUND"},
  };
  expect_data_refusals("rc_lmdb", cases);
}

TEST_CASE("reader checks: open_dataset's spec, sizes and first image") {
  auto mnist = [](const std::string& d, uint32_t n) {
    write_raw(d + "/train-images-idx3-ubyte", idx_bytes(n));
    write_raw(d + "/t10k-images-idx3-ubyte", idx_bytes(n));
    return "mnist:" + d;
  };
  const std::vector<DataCase> cases = {
      // A kind that needs a folder, without one (for each of the four).
      {"open_dataset: mnist without a folder", [](const std::string&) { open_dataset("mnist"); },
       "mnist needs a folder: mnist:DIR", true},
      {"open_dataset: cifar10 without a folder", [](const std::string&) { open_dataset("cifar10:"); },
       "cifar10 needs a folder: cifar10:DIR", true},
      {"open_dataset: folder without a path", [](const std::string&) { open_dataset("folder"); },
       "folder needs a path: folder:DIR", true},
      {"open_dataset: lsun without a path", [](const std::string&) { open_dataset("lsun:"); },
       "lsun needs a path: lsun:DIR", true},
      // Two channels asked of a good data set.
      {"open_dataset: channels", [&](const std::string& d) { open_dataset(mnist(d, 1), 28, 28, 2); },
       "images must have 1 or 3 channels", true},
      // A crop with one side only, on a good data set.
      {"open_dataset: crop sides", [&](const std::string& d) { open_dataset(mnist(d, 1), 28, 28, 1, 4, 0); },
       "crop 4x0: give both sides, each > 0 (or none)", true},
      // Two IDX files of no images.
      {"open_dataset: no images", [&](const std::string& d) { open_dataset(mnist(d, 0)); }, "mnist:{dir}: no images"},
      // A crop larger than MNIST's 28x28 images, found on the first image.
      {"open_dataset: the transform refuses the first image",
       [&](const std::string& d) { open_dataset(mnist(d, 1), 28, 28, 1, 64, 64); },
       "mnist:{dir}: center_crop: crop 64x64 (h x w) is larger than the image 28x28"},
  };
  expect_data_refusals("rc_spec", cases);
}

TEST_CASE("reader checks: split.json") {
  const std::string d = wn::test::temp_dir("rc_split"), p = d + "/split.json";
  save_split(p, make_split(50, 10, 4, 3));
  const json good = json::parse(read_raw(p));
  REQUIRE(load_split(p, 50).train.size() == 40);
  struct Case {
    const char* check;
    std::function<std::string()> text;  // the file
    std::string fragment;               // "{dir}" stands for the folder
  };
  auto edit = [&](const std::function<void(json&)>& f) {
    return [&good, f] {
      json j = good;
      f(j);
      return j.dump();
    };
  };
  const std::vector<Case> cases = {
      // Cut inside an array.
      {"not valid JSON", [] { return std::string("{\"train\": [1,"); }, "{dir}/split.json: not valid JSON ("},
      // JSON, but an array.
      {"not an object", [] { return std::string("[1, 2]"); }, "{dir}/split.json: not a JSON object"},
      // The size written as a string.
      {"dataset_size type", edit([](json& j) { j["dataset_size"] = "50"; }),
       "{dir}/split.json: dataset_size is not a whole number"},
      // No final_test at all.
      {"index array missing", edit([](json& j) { j.erase("final_test"); }),
       "{dir}/split.json: needs an index array 'final_test'"},
      // A fraction among the indices.
      {"index not a whole number", edit([](json& j) { j["train"][0] = 1.5; }),
       "{dir}/split.json: train[0] is 1.5, not a whole number"},
      // An index one past the data set.
      {"index out of range", edit([](json& j) { j["train"][0] = 50; }),
       "{dir}/split.json: train[0] = 50 is outside the data set of 50 images"},
      // Neither final_test nor train.
      {"running_test_from value", edit([](json& j) { j["running_test_from"] = "elsewhere"; }),
       "{dir}/split.json: running_test_from is 'elsewhere' (expected final_test or train)"},
      // running_test_from not a string: nlohmann's type error, caught around the fields (its
      // prefix "needs index arrays ..." is misleading here; the fragment checks only that it
      // is this catch that fires).
      {"a field of the wrong JSON type", edit([](json& j) { j["running_test_from"] = 5; }),
       "type must be string, but is number"},
      // Every image in the final test, none left to train on.
      {"empty training set", edit([](json& j) { j["train"] = json::array(); }), "{dir}/split.json: empty training set"},
      // No final test (and so no running test drawn from it).
      {"empty final test",
       edit([](json& j) {
         j["final_test"] = json::array();
         j["running_test"] = json::array();
       }),
       "{dir}/split.json: empty final-test set"},
  };
  for (const Case& c : cases) {
    write_raw(p, c.text());
    expect_refusal<std::runtime_error>(c.check, [&] { load_split(p, 50); }, fill(c.fragment, d));
  }
  fs::remove_all(d);
}

TEST_CASE("reader checks: gradient traces") {
  const std::string d = wn::test::temp_dir("rc_trace"), p = d + "/grad_trace.csv";
  write_raw(p, std::string(kTraceHeader) + "\n1,D,D.a,q,0.5\n");
  REQUIRE(read_trace(p).size() == 1);
  // A row where the header belongs.
  write_raw(p, "1,D,D.a,q,0.5\n2,D,D.a,q,0.7\n");
  expect_refusal<std::runtime_error>("the header", [&] { read_trace(p); },
                                     p + ": not a gradient trace: its first line is '1,D,D.a,q,0.5', expected '" +
                                         kTraceHeader + "'");
  fs::remove_all(d);
}

TEST_CASE("reader checks: safetensors files") {
  const std::string d = wn::test::temp_dir("rc_st"), p = d + "/x.safetensors";
  auto handmade = [](const std::string& header, const std::string& data) {
    std::string out(8, '\0');
    put_le(out, 0, 8, header.size());
    return out + header + data;
  };
  const std::string two(8, '\0');  // two F32 zeros
  const std::string a = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  write_raw(p, handmade("{" + a + "}", two));
  REQUIRE(nn::load_safetensors(p).get("a").numel() == 2);
  struct Case {
    const char* check;
    std::string bytes;
    std::string fragment;  // after "PATH: "
    bool whole = false;    // the fragment is the rest of the message
  };
  std::string huge(8, '\0');
  put_le(huge, 0, 8, uint64_t(1) << 63);
  const std::vector<Case> cases = {
      // Three bytes: not even the header length.
      {"shorter than the length field", "abc", "truncated: 3 bytes, too short for the 8-byte header length"},
      // A header length of 2^63.
      {"header length over the limit", huge + "{}",
       fmt::format("header length 9223372036854775808 exceeds the limit of {} bytes", nn::kMaxHeaderBytes)},
      // __metadata__ an array.
      {"__metadata__ not a map", handmade(R"({"__metadata__":["k","v"],)" + a + "}", two),
       "__metadata__ is not a string map"},
      // A metadata value that is a number.
      {"metadata value not a string", handmade(R"({"__metadata__":{"k":7},)" + a + "}", two),
       "metadata 'k' is not a string"},
      // The shape a string (the message ends there: not the malformed-dimension one).
      {"shape not an array", handmade(R"({"a":{"dtype":"F32","shape":"2","data_offsets":[0,8]}})", two),
       "tensor 'a' has a malformed shape", true},
      // Five dimensions.
      {"rank", handmade(R"({"a":{"dtype":"F32","shape":[1,1,1,1,2],"data_offsets":[0,8]}})", two),
       "tensor 'a' has rank 5 (at most 4 supported)"},
      // A fractional dimension.
      {"a dimension not a size", handmade(R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", two),
       "tensor 'a' has a malformed shape [2.5]"},
      // Two dimensions each in range whose product is 2^64 elements.
      {"too many elements",
       handmade(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", two),
       "tensor 'a': shape (4294967296, 4294967296) has more than 281474976710656 elements"},
      // One offset only.
      {"data_offsets not two sizes", handmade(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", two),
       "tensor 'a' has malformed data_offsets"},
      // b inside a's bytes (each tensor's own span is right).
      {"tensors overlap", handmade("{" + a + R"(,"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", two),
       "tensor 'b' starts at byte 4 of the data, where 8 was expected (tensors overlap or leave a gap)"},
      // The data's first 4 bytes belong to no tensor.
      {"a gap before a tensor", handmade(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", two),
       "tensor 'a' starts at byte 4 of the data, where 0 was expected (tensors overlap or leave a gap)"},
      // The data's last 4 bytes belong to no tensor.
      {"data past the tensors", handmade(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", two),
       "the tensors cover 4 of the 8 data bytes"},
  };
  for (const Case& c : cases) {
    write_raw(p, c.bytes);
    expect_refusal<nn::CheckpointError>(
        c.check,
        [&] {
          try {
            nn::load_safetensors(p);
          } catch (const nn::CheckpointError& e) {
            if (c.whole) CHECK(std::string(e.what()) == p + ": " + c.fragment);
            throw;
          }
        },
        p + ": " + c.fragment);
  }
  fs::remove_all(d);
}

TEST_CASE("reader checks: config.json and its model description") {
  const std::string d = wn::test::temp_dir("rc_config"), p = d + "/config.json";
  TrainConfig tc;
  tc.model.channels = 1, tc.model.height = tc.model.width = 28;
  const json good = train_to_json(tc);
  write_raw(p, good.dump());
  REQUIRE(load_train_config(d).model.height == 28);
  struct Case {
    const char* check;
    std::function<void(json&)> edit;
    std::string fragment;  // after "PATH: "
  };
  const std::vector<Case> cases = {
      // get_int: a field without a default missing.
      {"a required field missing", [](json& j) { j.erase("batch"); }, "'batch' is missing"},
      // get_int: a fraction.
      {"an integer field not a whole number", [](json& j) { j["batch"] = 1.5; }, "'batch' is 1.5, not a whole number"},
      // get_int: a whole number past int64's range (2^64 - 1).
      {"an integer over int64", [](json& j) { j["seed"] = std::numeric_limits<uint64_t>::max(); },
       "'seed' = 18446744073709551615 is out of range [0, 9223372036854775807]"},
      // get_num: a string.
      {"a number field not a number", [](json& j) { j["lr"] = "0.1"; }, "'lr' is \"0.1\", not a number"},
      // get_num: outside (lo, hi].
      {"a number out of range", [](json& j) { j["lr"] = 0; }, "'lr' = 0 is out of range (0, "},
      // get_str: a number.
      {"a string field not a string", [](json& j) { j["data"] = 5; }, "'data' is 5, not a string"},
      // get_choice: a loss that does not exist.
      {"a choice not known", [](json& j) { j["loss"] = "hinge"; }, "'loss': unknown loss 'hinge'"},
      // One crop size.
      {"crop", [](json& j) { j["crop"] = json::array({64}); }, "'crop' is [64], not two sizes [height, width] >= 0"},
      // stretch a string.
      {"stretch", [](json& j) { j["stretch"] = "yes"; }, "'stretch' is not true or false"},
      // sync_bn a number.
      {"sync_bn", [](json& j) { j["sync_bn"] = 1; }, "'sync_bn' is not true or false"},
      // No model description.
      {"model missing", [](json& j) { j.erase("model"); }, "'model' is missing"},
      // The model description a number.
      {"model not an object", [](json& j) { j["model"] = 5; }, "model: the model description is not a JSON object"},
      // A model field without a default missing (prefixed "model: ").
      {"model field missing", [](json& j) { j["model"].erase("channels"); }, "model: 'channels' is missing"},
      // A model version this wngan does not build.
      {"model version", [](json& j) { j["model"]["version"] = kModelVersion + 1; },
       fmt::format("model: the model was made by a wngan whose networks differ (model version {}, this wngan builds "
                   "version {}",
                   kModelVersion + 1, kModelVersion)},
      // An unknown architecture.
      {"model architecture", [](json& j) { j["model"]["arch"] = "vgg"; },
       "model: architecture 'vgg' (expected dcgan or resnet)"},
      // An unknown normalization.
      {"model normalization", [](json& j) { j["model"]["norm"] = "layer"; },
       "model: unknown normalization 'layer' (expected none, batch, weight or weight-affine)"},
      // ResNet levels as a string.
      {"model features not an array", [](json& j) { j["model"]["features"] = "64,128"; },
       "model: 'features' is not an array"},
      // A level of 0 features.
      {"model features element", [](json& j) { j["model"]["features"] = json::array({64, 0}); },
       "model: 'features'[1] is 0, not a whole number in [1, 8192]"},
      // 13 levels, each valid.
      {"model features count",
       [](json& j) {
         j["model"]["arch"] = "resnet";
         j["model"]["features"] = std::vector<int>(13, 8);
       },
       "model: 13 ResNet levels (at most 12)"},
  };
  for (const Case& c : cases) {
    json j = good;
    c.edit(j);
    write_raw(p, j.dump());
    expect_refusal<ConfigError>(c.check, [&] { load_train_config(d); }, p + ": " + c.fragment);
  }
  // Not JSON (a plain runtime_error, as a missing file), then JSON that is not an object.
  write_raw(p, "{\"model\": ");
  expect_refusal<std::runtime_error>("not valid JSON", [&] { load_train_config(d); }, p + ": not valid JSON (");
  write_raw(p, "[]");
  expect_refusal<ConfigError>("not an object", [&] { load_train_config(d); }, p + ": not a JSON object");
  fs::remove_all(d);
}
