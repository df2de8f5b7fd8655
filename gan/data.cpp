#include "gan/data.h"

#include "gan/resize.h"

#include <lmdb.h>
#include <stb_image.h>
#include <webp/decode.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <vector>

#include <fmt/format.h>

#include "nn/checkpoint.h"

namespace wn::gan {

namespace fs = std::filesystem;
const char* const kFashionMnistDir = "/usr/share/datasets/fashion-mnist";

namespace {

// Images held in memory as 8-bit interleaved (h, w, c) arrays of one native size.
class MemoryDataset : public Dataset {
 public:
  MemoryDataset(std::string name, int64_t nc, int64_t nh, int64_t nw) : name_(std::move(name)), nc_(nc), nh_(nh), nw_(nw) {}
  int64_t size() const override { return static_cast<int64_t>(pixels_.size() / (nc_ * nh_ * nw_)); }
  void load(int64_t i, float* out) const override {
    const uint8_t* src = pixels_.data() + i * nc_ * nh_ * nw_;
    if (channels == nc_) {
      transform_to_chw(src, nh_, nw_, nc_, transform(), out);
    } else {
      // Channel conversion: grey to RGB repeats; RGB to grey averages.
      std::vector<uint8_t> conv(static_cast<size_t>(nh_ * nw_ * channels));
      for (int64_t p = 0; p < nh_ * nw_; ++p)
        for (int64_t k = 0; k < channels; ++k) {
          if (nc_ == 1) {
            conv[p * channels + k] = src[p];
          } else {
            int s = 0;
            for (int64_t q = 0; q < nc_; ++q) s += src[p * nc_ + q];
            conv[p * channels + k] = static_cast<uint8_t>(s / nc_);
          }
        }
      transform_to_chw(conv.data(), nh_, nw_, channels, transform(), out);
    }
  }
  std::string describe() const override {
    return fmt::format("{}: {} images, {}x{}x{} (stored {}x{}x{})", name_, size(), channels, height, width, nc_, nh_, nw_);
  }
  std::vector<uint8_t> pixels_;  // interleaved (h, w, c)
  std::string name_;
  int64_t nc_, nh_, nw_;
};

// Throws a DataError unless path is an existing regular file.
void require_regular(const std::string& path) {
  switch (nn::file_kind(path)) {
    case nn::FileKind::Regular:
      return;
    case nn::FileKind::Missing:
      throw DataError(fmt::format("{}: file not found", path));
    case nn::FileKind::Folder:
      throw DataError(fmt::format("{}: is a folder, not a file", path));
    case nn::FileKind::Special:
      throw DataError(fmt::format("{}: not a regular file (a pipe, device or socket)", path));
  }
}

// The most bytes a data file may decompress to (a gzip bomb stops here, not in swap).
constexpr size_t kMaxFileBytes = size_t(4) << 30;

// Reads a whole file, transparently gunzipping it.
std::string read_maybe_gz(const std::string& path) {
  require_regular(path);
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw DataError(fmt::format("{}: cannot open ({})", path, std::strerror(errno)));
  std::string out;
  std::vector<char> buf(size_t(1) << 16);
  int n;
  while ((n = gzread(f, buf.data(), unsigned(buf.size()))) > 0) {
    out.append(buf.data(), size_t(n));
    if (out.size() > kMaxFileBytes) {
      gzclose(f);
      throw DataError(fmt::format("{}: more than {} bytes once decompressed (not an image data file?)", path,
                                  kMaxFileBytes));
    }
  }
  int err = 0;
  const char* m = gzerror(f, &err);
  const std::string msg = m ? m : "?";  // gzerror's text lives in f: copy it before closing
  gzclose(f);
  if (n < 0 || (err != Z_OK && err != Z_STREAM_END))
    throw DataError(fmt::format("{}: corrupt or truncated gzip data ({})", path, msg));
  return out;
}

uint32_t be32(const std::string& s, size_t off) {
  return (uint32_t(uint8_t(s[off])) << 24) | (uint32_t(uint8_t(s[off + 1])) << 16) | (uint32_t(uint8_t(s[off + 2])) << 8) |
         uint32_t(uint8_t(s[off + 3]));
}

// Finds DIR/name or DIR/name.gz.
std::string find_file(const std::string& dir, const std::string& name) {
  for (std::string p : {dir + "/" + name, dir + "/" + name + ".gz"})
    if (fs::exists(p)) return p;
  throw DataError(fmt::format("{}/{}(.gz): file not found", dir, name));
}

void append_idx(MemoryDataset& d, const std::string& path) {
  std::string b = read_maybe_gz(path);
  if (b.size() < 16) throw DataError(fmt::format("{}: truncated IDX file ({} bytes)", path, b.size()));
  const uint32_t magic = be32(b, 0);
  if (magic != 0x00000803)
    throw DataError(fmt::format("{}: wrong magic number 0x{:08x} (an IDX image file has 0x00000803)", path, magic));
  const uint64_t n = be32(b, 4), h = be32(b, 8), w = be32(b, 12);
  if (int64_t(h) != d.nh_ || int64_t(w) != d.nw_)
    throw DataError(fmt::format("{}: images are {}x{}, expected {}x{}", path, h, w, d.nh_, d.nw_));
  if (b.size() < 16 + n * h * w)
    throw DataError(fmt::format("{}: truncated: {} images of {}x{} need {} bytes, the file has {}", path, n, h, w,
                                16 + n * h * w, b.size()));
  d.pixels_.insert(d.pixels_.end(), b.begin() + 16, b.begin() + 16 + static_cast<std::ptrdiff_t>(n * h * w));
}

std::unique_ptr<Dataset> open_idx(const std::string& name, const std::string& dir) {
  if (!fs::is_directory(dir)) throw DataError(fmt::format("{}: not a folder", dir));
  auto d = std::make_unique<MemoryDataset>(name, 1, 28, 28);
  append_idx(*d, find_file(dir, "train-images-idx3-ubyte"));
  append_idx(*d, find_file(dir, "t10k-images-idx3-ubyte"));
  return d;
}

std::unique_ptr<Dataset> open_cifar(const std::string& dir) {
  if (!fs::is_directory(dir)) throw DataError(fmt::format("{}: not a folder", dir));
  auto d = std::make_unique<MemoryDataset>("cifar10", 3, 32, 32);
  std::vector<std::string> files;
  for (int i = 1; i <= 5; ++i) files.push_back(fmt::format("data_batch_{}.bin", i));
  files.push_back("test_batch.bin");
  for (auto& f : files) {
    std::string p = dir + "/" + f;
    if (!fs::exists(p)) throw DataError(fmt::format("{}: file not found", p));
    std::string b = read_maybe_gz(p);
    if (b.empty() || b.size() % 3073)
      throw DataError(fmt::format("{}: truncated: {} bytes is not a whole number of 3073-byte records", p, b.size()));
    for (size_t r = 0; r < b.size() / 3073; ++r) {
      const char* rec = b.data() + r * 3073;
      if (uint8_t(rec[0]) > 9) throw DataError(fmt::format("{}: record {} has label {} (not CIFAR-10)", p, r, int(uint8_t(rec[0]))));
      // Stored planar (3, 32, 32): interleave.
      for (int64_t px = 0; px < 1024; ++px)
        for (int k = 0; k < 3; ++k) d->pixels_.push_back(uint8_t(rec[1 + k * 1024 + px]));
    }
  }
  return d;
}

// Refuses an image whose decoded size is over the limit, before decoding it.
void check_pixels(const std::string& where, int64_t w, int64_t h) {
  if (w < 1 || h < 1) throw DataError(fmt::format("{}: image of size {}x{}", where, w, h));
  if (w * h > max_image_pixels())
    throw DataError(fmt::format("{}: image {}x{} has {} pixels, over the limit of {} (--max-image-pixels raises it)",
                                where, w, h, w * h, max_image_pixels()));
}

// stb_image's JPEG reader (Debian's 2.27) writes past a table when a Huffman table
// declares more than 256 codes (found by tests/fuzz); refuse such a file before stb sees
// it. Walks every marker segment (across the scans of a progressive JPEG) and reads each
// DHT table's 16 counts as stb does: past the end of the file a byte reads as 0.
void check_jpeg_tables(const std::string& where, const uint8_t* d, size_t n) {
  // stb takes a JPEG to be 0xff, any number of further 0xff fill bytes, then SOI (0xd8).
  if (n < 2 || d[0] != 0xff) return;
  size_t p = 0;
  while (p < n && d[p] == 0xff) ++p;
  if (p >= n || d[p] != 0xd8) return;  // not a JPEG
  ++p;
  auto byte = [&](size_t i) -> size_t { return i < n ? d[i] : 0; };
  while (p + 1 < n) {
    if (d[p] != 0xff) {  // entropy-coded data after a scan: find the next marker
      ++p;
      continue;
    }
    const uint8_t m = d[p + 1];
    if (m == 0xff || m == 0x00 || (m >= 0xd0 && m <= 0xd7) || m == 0x01 || m == 0xd8) {
      p += m == 0xff ? 1 : 2;
      continue;
    }
    if (m == 0xd9) return;  // end of image
    const size_t len = (byte(p + 2) << 8) | byte(p + 3);
    if (m == 0xc4) {  // DHT: tables of (class/id, 16 counts, the codes), as stb reads them
      int64_t left = int64_t(len) - 2;
      size_t q = p + 4;
      while (left > 0) {
        size_t codes = 0;
        for (int i = 0; i < 16; ++i) codes += byte(q + 1 + size_t(i));
        if (codes > 256)
          throw DataError(fmt::format("{}: damaged JPEG (a Huffman table declares {} codes, at most 256)", where, codes));
        q += 17 + codes;
        left -= int64_t(17 + codes);
      }
    }
    p += 2 + len;
  }
}

// Decodes an encoded image (PNG, JPEG, WebP, ...) to interleaved RGB or grey.
std::vector<uint8_t> decode(const std::string& where, const uint8_t* data, size_t n, int want_c, int& h, int& w) {
  std::vector<uint8_t> out;
  if (n > size_t(std::numeric_limits<int>::max()))
    throw DataError(fmt::format("{}: encoded image of {} bytes is too large", where, n));
  if (n >= 12 && std::memcmp(data, "RIFF", 4) == 0 && std::memcmp(data + 8, "WEBP", 4) == 0) {
    if (!WebPGetInfo(data, n, &w, &h)) throw DataError(fmt::format("{}: undecodable WebP image", where));
    check_pixels(where, w, h);
    uint8_t* rgb = WebPDecodeRGB(data, n, &w, &h);
    if (!rgb) throw DataError(fmt::format("{}: undecodable WebP image", where));
    out.assign(rgb, rgb + size_t(w) * h * 3);
    WebPFree(rgb);
    if (want_c == 1) {
      std::vector<uint8_t> g(size_t(w) * h);
      for (size_t i = 0; i < g.size(); ++i) g[i] = uint8_t((out[3 * i] + out[3 * i + 1] + out[3 * i + 2]) / 3);
      out.swap(g);
    }
    return out;
  }
  int c = 0;
  check_jpeg_tables(where, data, n);
  if (!stbi_info_from_memory(data, static_cast<int>(n), &w, &h, &c))
    throw DataError(fmt::format("{}: undecodable image ({})", where, stbi_failure_reason()));
  check_pixels(where, w, h);
  uint8_t* px = stbi_load_from_memory(data, static_cast<int>(n), &w, &h, &c, want_c);
  if (!px) throw DataError(fmt::format("{}: undecodable image ({})", where, stbi_failure_reason()));
  out.assign(px, px + size_t(w) * h * want_c);
  stbi_image_free(px);
  return out;
}

std::string slurp(const std::string& path) {
  require_regular(path);
  std::ifstream f(path, std::ios::binary);
  if (!f) throw DataError(fmt::format("{}: cannot open ({})", path, std::strerror(errno)));
  std::string s(std::istreambuf_iterator<char>(f), {});
  if (f.bad()) throw DataError(fmt::format("{}: read error", path));
  return s;
}

// An image more than 2x smaller than the model's input (after the crop) is refused.
void check_not_tiny(const std::string& where, int64_t w, int64_t h, const Dataset& d) {
  if (d.crop_h) h = std::min(h, d.crop_h);
  if (d.crop_w) w = std::min(w, d.crop_w);
  if (h < d.height / 2 || w < d.width / 2)
    throw DataError(fmt::format("{}: image {}x{} is too small for {}x{} (at most 2x upscaling)", where, w, h, d.width,
                                d.height));
}

class FolderDataset : public Dataset {
 public:
  explicit FolderDataset(const std::string& dir) : dir_(dir) {
    if (!fs::is_directory(dir)) throw DataError(fmt::format("{}: not a folder", dir));
    for (auto& e : fs::recursive_directory_iterator(dir)) {
      if (!e.is_regular_file()) continue;
      std::string ext = e.path().extension().string();
      std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
      if (ext == ".png" || ext == ".jpg" || ext == ".jpeg") files_.push_back(e.path().string());
    }
    std::sort(files_.begin(), files_.end());
    if (files_.empty()) throw DataError(fmt::format("{}: no PNG or JPEG images in the folder", dir));
  }
  void check_headers() const {
    for (auto& f : files_) {
      // The first 256 KiB hold every header stb reads for the size.
      std::string head(size_t(1) << 18, '\0');
      {
        require_regular(f);
        std::ifstream in(f, std::ios::binary);
        in.read(head.data(), std::streamsize(head.size()));
        head.resize(size_t(in.gcount()));
      }
      const auto* hp = reinterpret_cast<const uint8_t*>(head.data());
      check_jpeg_tables(f, hp, head.size());
      int w, h, c;
      if (!stbi_info_from_memory(hp, int(head.size()), &w, &h, &c))
        throw DataError(fmt::format("{}: undecodable image ({})", f, stbi_failure_reason()));
      check_pixels(f, w, h);
      if ((crop_h && h < crop_h) || (crop_w && w < crop_w))
        throw DataError(fmt::format("{}: image {}x{} (width x height) is smaller than the crop {}x{}", f, w, h, crop_w,
                                    crop_h));
      if (crop_h) h = int(crop_h);
      if (crop_w) w = int(crop_w);
      if (h < height / 2 || w < width / 2)
        throw DataError(fmt::format("{}: image {}x{} is too small for {}x{} (at most 2x upscaling)", f, w, h, width, height));
    }
  }
  int64_t size() const override { return static_cast<int64_t>(files_.size()); }
  void load(int64_t i, float* out) const override {
    std::string b = slurp(files_[i]);
    int h, w;
    std::vector<uint8_t> px = decode(files_[i], reinterpret_cast<const uint8_t*>(b.data()), b.size(), int(channels), h, w);
    try {
      transform_to_chw(px.data(), h, w, channels, transform(), out);
    } catch (const std::invalid_argument& e) {
      throw DataError(fmt::format("{}: {}", files_[i], e.what()));
    }
  }
  std::string describe() const override {
    return fmt::format("folder {}: {} images, {}x{}x{}", dir_, size(), channels, height, width);
  }

 private:
  std::string dir_;
  std::vector<std::string> files_;
};

// What an LMDB meta page says of the main database.
struct LmdbMeta {
  uint32_t psize = 0;
  uint64_t root = ~uint64_t(0), last = 0, txnid = 0;
  uint32_t depth = 0;
};

// Little-endian integers of `n` bytes at b.
uint64_t le_at(const unsigned char* b, int n) {
  uint64_t v = 0;
  for (int k = n - 1; k >= 0; --k) v = v << 8 | b[k];
  return v;
}

// liblmdb trusts its meta pages: it divides by the page size they record before checking it
// (a 0 there is SIGFPE in mdb_env_open) and asserts, aborting the process, where a
// database's root page is 0 or 1 (both found by fuzzing). Both meta pages (at 0 and at the
// first's page size) that carry LMDB's magic must record a power of two in [512, 65536] and
// roots that are empty (~0) or pages in [2, last page]. Returns the meta liblmdb will use
// (the later transaction's), its page size 0 where the file has no meta page.
LmdbMeta check_meta_pages(const std::string& file) {
  std::ifstream f(file, std::ios::binary);
  auto meta_at = [&](uint64_t off, LmdbMeta& m) {
    // A 64-bit meta page: 16-byte page header, magic (u32) at 16, the free DB at 40 (its
    // md_pad, u32, holds the page size; its root, u64, at 80), the main DB at 88 (depth, u16,
    // at 94; root at 128), the last page (u64) at 136, the transaction (u64) at 144.
    unsigned char b[152];
    f.clear();
    f.seekg(std::streamoff(off));
    if (!f.read(reinterpret_cast<char*>(b), sizeof b)) return false;
    if (le_at(b + 16, 4) != 0xBEEFC0DEu) return false;  // not a meta page: liblmdb refuses it itself
    m.psize = uint32_t(le_at(b + 40, 4));
    if (m.psize < 512 || m.psize > 65536 || (m.psize & (m.psize - 1)))
      throw DataError(fmt::format("{}: not a valid LMDB file (page size {} in a meta page)", file, m.psize));
    m.last = le_at(b + 136, 8);
    m.root = le_at(b + 128, 8);
    m.depth = uint32_t(le_at(b + 94, 2));
    m.txnid = le_at(b + 144, 8);
    for (const uint64_t root : {le_at(b + 80, 8), m.root})
      if (root != ~uint64_t(0) && (root < 2 || root > m.last))
        throw DataError(fmt::format("{}: not a valid LMDB file (root page {} in a meta page whose last page is {})",
                                    file, root, m.last));
    return true;
  };
  LmdbMeta first, second;
  if (!meta_at(0, first)) return {};
  // liblmdb reads the metas through its map afterwards: both pages must be in the file.
  std::error_code ec;
  const uint64_t size = fs::file_size(file, ec);
  if (ec || size < 2 * uint64_t(first.psize))
    throw DataError(fmt::format("{}: truncated LMDB: {} bytes, less than its two meta pages", file, ec ? 0 : size));
  if (!meta_at(first.psize, second)) return first;
  if (second.psize != first.psize)  // liblmdb would place the metas by the later one's page size
    throw DataError(fmt::format("{}: not a valid LMDB file (meta pages of {} and {} bytes)", file, first.psize,
                                second.psize));
  return first.txnid < second.txnid ? second : first;  // as liblmdb picks
}

// liblmdb follows the page numbers in its branch and leaf pages without bounds checks: a
// corrupt page sends it past the file's end (SIGBUS in the map) or into an assertion (both
// found by fuzzing). Walks the main database's tree as the cursor and reads will, before any
// of them: every page within [2, last], visited once, a branch or a leaf as its depth says,
// at least one node, its node offsets and sizes inside the page, each value inline or in overflow
// pages within [2, last]. A plain key-value database only: no nested ones or duplicates (image sets have none).
// The file holds pages [0, last] (checked by the caller).
void check_lmdb_tree(const std::string& file, const LmdbMeta& m) {
  if (m.psize == 0 || m.root == ~uint64_t(0)) return;
  if (m.depth > 32)  // liblmdb's cursors hold at most 32 levels (CURSOR_STACK)
    throw DataError(fmt::format("{}: not a valid LMDB file (a tree {} pages deep)", file, m.depth));
  auto bad = [&](uint64_t pg, const char* what) {
    return DataError(fmt::format("{}: not a valid LMDB file (page {}: {})", file, pg, what));
  };
  std::ifstream f(file, std::ios::binary);
  std::vector<unsigned char> page(m.psize);
  std::vector<bool> seen(size_t(m.last + 1));
  std::vector<std::pair<uint64_t, uint32_t>> todo{{m.root, m.depth}};  // page, its height (leaves 1)
  while (!todo.empty()) {
    const auto [pg, height] = todo.back();
    todo.pop_back();
    if (pg < 2 || pg > m.last) throw bad(pg, "outside the file's pages");
    if (seen[pg]) throw bad(pg, "reached twice");
    seen[pg] = true;
    f.seekg(std::streamoff(pg * m.psize));
    if (!f.read(reinterpret_cast<char*>(page.data()), m.psize)) throw bad(pg, "unreadable");
    const unsigned char* b = page.data();
    const uint32_t flags = uint32_t(le_at(b + 10, 2)), lower = uint32_t(le_at(b + 12, 2)),
                   upper = uint32_t(le_at(b + 14, 2));
    const bool branch = flags == 0x01, leaf = flags == 0x02;  // P_BRANCH, P_LEAF, nothing else
    if (!(branch ? height > 1 : leaf && height == 1)) throw bad(pg, "not the branch or leaf its depth calls for");
    if (lower < 16 || lower > upper || upper > m.psize || (lower - 16) % 2) throw bad(pg, "bad free-space bounds");
    if (lower == 16) throw bad(pg, "no nodes (liblmdb keeps no empty page; an empty database has no root)");
    for (uint32_t i = 0; i < (lower - 16) / 2; ++i) {
      const uint64_t off = le_at(b + 16 + 2 * i, 2);
      if (off < upper || off + 8 > m.psize) throw bad(pg, "a node outside the page");
      const unsigned char* nd = b + off;
      const uint64_t lo = le_at(nd, 4), nflags = le_at(nd + 4, 2), ksize = le_at(nd + 6, 2);
      if (off + 8 + ksize > m.psize) throw bad(pg, "a key past the page");
      if (branch) {
        todo.push_back({lo | nflags << 32, height - 1});  // the child's page number
        continue;
      }
      if (nflags & ~uint64_t(0x01)) throw bad(pg, "a nested database or duplicates (not an image set)");
      if (!(nflags & 0x01)) {  // the value inline
        if (off + 8 + ksize + lo > m.psize) throw bad(pg, "a value past the page");
        continue;
      }
      if (off + 8 + ksize + 8 > m.psize) throw bad(pg, "a value's page number past the page");
      const uint64_t ov = le_at(nd + 8 + ksize, 8), pages = (lo + 16 + m.psize - 1) / m.psize;
      if (ov < 2 || ov > m.last || pages > m.last - ov + 1) throw bad(pg, "a value's pages outside the file");
    }
  }
}

// Close an LMDB environment and abort a read transaction on leaving scope, also where a
// constructor or a read throws half-way.
struct LmdbEnvClose {
  void operator()(MDB_env* e) const { mdb_env_close(e); }
};
struct LmdbTxnAbort {
  void operator()(MDB_txn* t) const { mdb_txn_abort(t); }
};
using LmdbTxn = std::unique_ptr<MDB_txn, LmdbTxnAbort>;
// A read-only transaction's cursor must be closed explicitly (lmdb.h), before its transaction.
struct LmdbCursorClose {
  void operator()(MDB_cursor* c) const { mdb_cursor_close(c); }
};

class LmdbDataset : public Dataset {
 public:
  explicit LmdbDataset(const std::string& dir) : dir_(dir) {
    if (!fs::exists(dir)) throw DataError(fmt::format("{}: not found", dir));
    const LmdbMeta meta = check_meta_pages(fs::is_directory(dir) ? dir + "/data.mdb" : dir);
    MDB_env* env = nullptr;
    check(mdb_env_create(&env), "create an environment");
    env_.reset(env);
    mdb_env_set_mapsize(env, size_t(1) << 40);
    const unsigned flags = MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS | (fs::is_directory(dir) ? 0 : MDB_NOSUBDIR);
    check(mdb_env_open(env, dir.c_str(), flags, 0664), "open");
    // The pages are read through a memory map: a data file shorter than the pages its
    // meta page claims would end in SIGBUS on the first read past its end. Refuse it.
    MDB_envinfo info;
    MDB_stat st;
    check(mdb_env_info(env, &info), "read the environment information");
    check(mdb_env_stat(env, &st), "read the environment statistics");
    const std::string file = fs::is_directory(dir) ? dir + "/data.mdb" : dir;
    std::error_code ec;
    const uint64_t have = fs::file_size(file, ec);
    // (Compared in pages: the bytes of a corrupt last-page number can overflow 64 bits.)
    const uint64_t pages = ec ? 0 : have / uint64_t(st.ms_psize);
    if (ec || uint64_t(info.me_last_pgno) >= pages || meta.last >= pages)
      throw DataError(fmt::format("{}: truncated LMDB: its pages run to {}, the file holds {} pages", file,
                                  std::max<uint64_t>(info.me_last_pgno, meta.last), pages));
    check_lmdb_tree(file, meta);
    const LmdbTxn txn = begin_read();
    check(mdb_dbi_open(txn.get(), nullptr, 0, &dbi_), "open the database");
    MDB_cursor* c = nullptr;
    check(mdb_cursor_open(txn.get(), dbi_, &c), "open a cursor");
    const std::unique_ptr<MDB_cursor, LmdbCursorClose> cur(c);  // declared after txn: closed first
    MDB_val k, v;
    while (mdb_cursor_get(c, &k, &v, keys_.empty() ? MDB_FIRST : MDB_NEXT) == 0)
      keys_.emplace_back(static_cast<const char*>(k.mv_data), k.mv_size);
    if (keys_.empty()) throw DataError(fmt::format("{}: the LMDB holds no images", dir));
  }
  int64_t size() const override { return static_cast<int64_t>(keys_.size()); }
  void load(int64_t i, float* out) const override {
    std::vector<uint8_t> px;
    const std::string where = fmt::format("{} key '{}'", dir_, keys_[i]);
    int h, w;
    {
      const LmdbTxn txn = begin_read();  // the value is valid until the transaction ends
      MDB_val k{keys_[i].size(), const_cast<char*>(keys_[i].data())}, v;
      const int rc = mdb_get(txn.get(), dbi_, &k, &v);
      if (rc) throw DataError(fmt::format("{}: key '{}': {}", dir_, keys_[i], mdb_strerror(rc)));
      px = decode(where, static_cast<const uint8_t*>(v.mv_data), v.mv_size, int(channels), h, w);
    }
    check_not_tiny(where, w, h, *this);
    try {
      transform_to_chw(px.data(), h, w, channels, transform(), out);
    } catch (const std::invalid_argument& e) {
      throw DataError(fmt::format("{}: {}", where, e.what()));
    }
  }
  std::string describe() const override {
    return fmt::format("lsun {}: {} images, {}x{}x{}", dir_, size(), channels, height, width);
  }

 private:
  void check(int rc, const char* what) const {
    if (rc) throw DataError(fmt::format("{}: cannot {} as an LMDB ({})", dir_, what, mdb_strerror(rc)));
  }
  // A read-only transaction on the environment, aborted when it leaves scope.
  LmdbTxn begin_read() const {
    MDB_txn* t = nullptr;
    check(mdb_txn_begin(env_.get(), nullptr, MDB_RDONLY, &t), "begin a read transaction");
    return LmdbTxn(t);
  }
  std::string dir_;
  std::unique_ptr<MDB_env, LmdbEnvClose> env_;
  MDB_dbi dbi_ = 0;
  std::vector<std::string> keys_;
};

}  // namespace

namespace {
int64_t g_max_pixels = int64_t(1) << 24;
}  // namespace

int64_t max_image_pixels() { return g_max_pixels; }
void set_max_image_pixels(int64_t n) {
  if (n < 1) throw std::invalid_argument(fmt::format("the image pixel limit must be >= 1 (got {})", n));
  g_max_pixels = n;
}

std::unique_ptr<Dataset> open_dataset(const std::string& spec, int64_t height, int64_t width, int64_t channels,
                                      int64_t crop_h, int64_t crop_w, bool stretch) {
  const auto colon = spec.find(':');
  const std::string kind = spec.substr(0, colon), dir = colon == std::string::npos ? "" : spec.substr(colon + 1);
  std::unique_ptr<Dataset> d;
  int64_t native_c = 3, native = 64;
  if (kind == "fashion-mnist") {
    d = open_idx("fashion-mnist", dir.empty() ? kFashionMnistDir : dir);
    native_c = 1, native = 28;
  } else if (kind == "mnist") {
    if (dir.empty()) throw DataSpecError("mnist needs a folder: mnist:DIR");
    d = open_idx("mnist", dir);
    native_c = 1, native = 28;
  } else if (kind == "cifar10") {
    if (dir.empty()) throw DataSpecError("cifar10 needs a folder: cifar10:DIR");
    d = open_cifar(dir);
    native = 32;
  } else if (kind == "folder") {
    if (dir.empty()) throw DataSpecError("folder needs a path: folder:DIR");
    d = std::make_unique<FolderDataset>(dir);
  } else if (kind == "lsun") {
    if (dir.empty()) throw DataSpecError("lsun needs a path: lsun:DIR");
    d = std::make_unique<LmdbDataset>(dir);
  } else {
    throw DataSpecError(fmt::format("unknown data set '{}' (expected fashion-mnist, mnist:DIR, cifar10:DIR, folder:DIR or lsun:DIR)", spec));
  }
  d->channels = channels > 0 ? channels : native_c;
  if (d->channels != 1 && d->channels != 3) throw DataSpecError("images must have 1 or 3 channels");
  d->height = height > 0 ? height : native;
  d->width = width > 0 ? width : d->height;
  if (crop_h < 0 || crop_w < 0 || (crop_h > 0) != (crop_w > 0))
    throw DataSpecError(fmt::format("crop {}x{}: give both sides, each > 0 (or none)", crop_h, crop_w));
  d->crop_h = crop_h;
  d->crop_w = crop_w;
  d->stretch = stretch;
  if (auto* f = dynamic_cast<FolderDataset*>(d.get())) f->check_headers();
  if (d->size() < 1) throw DataError(fmt::format("{}: no images", spec));
  // The transform on the first image: a crop larger than the stored images fails here.
  std::vector<float> first(static_cast<size_t>(d->channels * d->height * d->width));
  try {
    d->load(0, first.data());
  } catch (const std::invalid_argument& e) {
    throw DataError(fmt::format("{}: {}", spec, e.what()));
  }
  return d;
}

}  // namespace wn::gan
