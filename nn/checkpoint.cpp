#include "nn/checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace wn::nn {

namespace fs = std::filesystem;

const Tensor& TensorFile::get(const std::string& name) const {
  for (auto& [n, t] : tensors)
    if (n == name) return t;
  throw CheckpointError(fmt::format("{}: no tensor named '{}'", path, name));
}

bool TensorFile::has(const std::string& name) const {
  for (auto& [n, t] : tensors)
    if (n == name) return true;
  return false;
}

namespace {
// Writes all of bytes to fd (EINTR retried); false with errno set on failure.
bool write_all(int fd, const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}
}  // namespace

void write_file_atomic(const std::string& given, const std::string& bytes) {
  // A symbolic link is followed: the file it names is written (renaming over the link
  // would replace the link itself and leave its target stale).
  std::string path = given;
  for (int depth = 0; depth < 16; ++depth) {
    std::error_code ec;
    if (!fs::is_symlink(fs::symlink_status(path, ec))) break;
    const fs::path target = fs::read_symlink(path, ec);
    if (ec) break;
    path = (target.is_absolute() ? target : fs::path(path).parent_path() / target).string();
  }
  fs::path p(path);
  fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  // Something that is not a regular file (a device such as /dev/null, a FIFO, a terminal)
  // is written in place: renaming over it would replace it with a file.
  if (file_kind(path) == FileKind::Special) {
    // Opened without blocking: a pipe that nothing reads is refused at once (a plain open
    // would wait for a reader forever); then written as usual, blocking.
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 && errno == ENXIO)
      throw std::runtime_error(fmt::format("cannot write {}: a pipe that no process is reading", path));
    if (fd < 0) throw std::runtime_error(fmt::format("cannot write {}: {}", path, std::strerror(errno)));
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    const bool ok = write_all(fd, bytes);
    const int e = errno;
    ::close(fd);
    if (!ok) throw std::runtime_error(fmt::format("cannot write {}: {}", path, std::strerror(e)));
    return;
  }
  // Missing folders on the way are created (every output option behaves so).
  if (std::error_code ec; !fs::is_directory(dir, ec)) {
    fs::create_directories(dir, ec);
    if (ec) throw std::runtime_error(fmt::format("cannot create the folder {}: {}", dir.string(), ec.message()));
  }
  std::string tmpl = (dir / ("." + p.filename().string() + ".tmp.XXXXXX")).string();
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  int fd = ::mkstemp(name.data());
  if (fd < 0) throw std::runtime_error(fmt::format("cannot create a file in {}: {}", dir.string(), std::strerror(errno)));
  // mkstemp makes the file private (0600); give it the usual permissions (0666 less umask).
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::fchmod(fd, 0666 & ~mask);
  if (!write_all(fd, bytes)) {
    const int e = errno;
    ::close(fd);
    ::unlink(name.data());
    throw std::runtime_error(fmt::format("cannot write {}: {}", path, std::strerror(e)));
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int e = errno;
    ::unlink(name.data());
    throw std::runtime_error(fmt::format("cannot write {}: {}", path, std::strerror(e)));
  }
  if (::rename(name.data(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(name.data());
    throw std::runtime_error(fmt::format("cannot rename into {}: {}", path, std::strerror(e)));
  }
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void save_safetensors(const std::string& path, const Named& tensors, const std::map<std::string, std::string>& meta) {
  nlohmann::ordered_json header;
  if (!meta.empty()) header["__metadata__"] = meta;
  std::string data;
  for (auto& [name, t] : tensors) {
    if (name == "__metadata__") throw std::invalid_argument("a tensor may not be named __metadata__");
    Tensor host = t.to(kCPU);
    const size_t begin = data.size();
    data.append(static_cast<const char*>(host.raw()), host.nbytes());
    header[name] = {{"dtype", dtype_name(t.dtype())}, {"shape", t.shape().vec()}, {"data_offsets", {begin, data.size()}}};
  }
  std::string h = header.dump();
  while (h.size() % 8) h.push_back(' ');  // keeps the data 8-byte aligned, as the reference writer does
  std::string out(8, '\0');
  uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  out += h;
  out += data;
  write_file_atomic(path, out);
}

std::string error_text(const std::exception& e) {
  const auto* fe = dynamic_cast<const fs::filesystem_error*>(&e);
  if (fe == nullptr) return e.what();
  std::string op = fe->what();
  const std::string reason = fe->code().message();
  if (op.rfind("filesystem error: ", 0) == 0) op = op.substr(18);
  if (const auto at = op.find(": " + reason); at != std::string::npos) op = op.substr(0, at);
  if (fe->path2().empty()) return fmt::format("{}: '{}': {}", op, fe->path1().string(), reason);
  return fmt::format("{}: '{}' -> '{}': {}", op, fe->path1().string(), fe->path2().string(), reason);
}

FileKind file_kind(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || st.type() == fs::file_type::not_found) return FileKind::Missing;
  if (st.type() == fs::file_type::directory) return FileKind::Folder;
  return st.type() == fs::file_type::regular ? FileKind::Regular : FileKind::Special;
}

void require_regular_file(const std::string& path, const char* what) {
  switch (file_kind(path)) {
    case FileKind::Regular:
      return;
    case FileKind::Missing:
      throw CheckpointError(fmt::format("{}: cannot open the {} (no such file)", path, what));
    case FileKind::Folder:
      throw CheckpointError(fmt::format("{}: is a folder, not a {}", path, what));
    case FileKind::Special:
      throw CheckpointError(fmt::format("{}: not a regular file (a pipe, device or socket), not a {}", path, what));
  }
}

namespace {
// The first non-finite element of a float tensor, or -1.
int64_t first_nonfinite(const Tensor& t) {
  const int64_t n = t.numel();
  if (t.dtype() == DType::F32) {
    const float* p = t.data<float>();
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(p[i])) return i;
  } else {
    const double* p = t.data<double>();
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(p[i])) return i;
  }
  return -1;
}
}  // namespace

TensorFile load_safetensors(const std::string& path, bool allow_nonfinite) {
  require_regular_file(path, "safetensors file");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw CheckpointError(fmt::format("{}: cannot open ({})", path, std::strerror(errno)));
  std::stringstream ss;
  ss << f.rdbuf();
  if (f.bad()) throw CheckpointError(fmt::format("{}: read error", path));
  return parse_safetensors(ss.str(), path, allow_nonfinite);
}

TensorFile parse_safetensors(const std::string& bytes, const std::string& path, bool allow_nonfinite) {
  if (bytes.size() < 8)
    throw CheckpointError(fmt::format("{}: truncated: {} bytes, too short for the 8-byte header length", path,
                                      bytes.size()));
  uint64_t hlen = 0;
  for (int i = 0; i < 8; ++i) hlen |= uint64_t(static_cast<unsigned char>(bytes[i])) << (8 * i);
  if (hlen > kMaxHeaderBytes)
    throw CheckpointError(fmt::format("{}: header length {} exceeds the limit of {} bytes (not a safetensors file?)",
                                      path, hlen, kMaxHeaderBytes));
  if (hlen > bytes.size() - 8)
    throw CheckpointError(fmt::format("{}: truncated: header length {} exceeds the {} bytes that follow", path, hlen,
                                      bytes.size() - 8));
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(hlen));
  } catch (const nlohmann::json::exception& e) {
    throw CheckpointError(fmt::format("{}: header is not valid JSON ({})", path, e.what()));
  }
  if (!header.is_object()) throw CheckpointError(fmt::format("{}: header is not a JSON object", path));
  const uint64_t data_start = 8 + hlen, data_len = bytes.size() - data_start;
  TensorFile out;
  out.path = path;
  // Every entry checked first: dtype, shape (its size without overflow), offsets.
  struct Entry {
    uint64_t begin, end;
    std::string name;
    DType dtype;
    Shape shape;
  };
  std::vector<Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    if (name == "__metadata__") {
      if (!it->is_object()) throw CheckpointError(fmt::format("{}: __metadata__ is not a string map", path));
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) throw CheckpointError(fmt::format("{}: metadata '{}' is not a string", path, m.key()));
        out.metadata[m.key()] = m->get<std::string>();
      }
      continue;
    }
    const auto& e = *it;
    if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") || !e.contains("data_offsets"))
      throw CheckpointError(fmt::format("{}: tensor '{}' lacks dtype, shape or data_offsets", path, name));
    const std::string dt = e["dtype"].is_string() ? e["dtype"].get<std::string>() : "?";
    DType dtype;
    if (dt == "F32")
      dtype = DType::F32;
    else if (dt == "F64")
      dtype = DType::F64;
    else
      throw CheckpointError(fmt::format("{}: tensor '{}' has unsupported dtype '{}' (wngan reads F32 and F64)", path,
                                        name, dt));
    if (!e["shape"].is_array()) throw CheckpointError(fmt::format("{}: tensor '{}' has a malformed shape", path, name));
    if (e["shape"].size() > static_cast<size_t>(Shape::kMaxRank))
      throw CheckpointError(fmt::format("{}: tensor '{}' has rank {} (at most {} supported)", path, name,
                                        e["shape"].size(), Shape::kMaxRank));
    std::vector<int64_t> dims;
    for (auto& d : e["shape"]) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > uint64_t(Shape::kMaxNumel))
        throw CheckpointError(fmt::format("{}: tensor '{}' has a malformed shape {}", path, name, e["shape"].dump()));
      dims.push_back(d.get<int64_t>());
    }
    Shape shape;
    try {
      shape = Shape(dims);
    } catch (const std::invalid_argument& ex) {
      throw CheckpointError(fmt::format("{}: tensor '{}': {}", path, name, ex.what()));
    }
    const auto& off = e["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      throw CheckpointError(fmt::format("{}: tensor '{}' has malformed data_offsets", path, name));
    const uint64_t b = off[0].get<uint64_t>(), en = off[1].get<uint64_t>();
    if (b > en || en > data_len)
      throw CheckpointError(fmt::format("{}: tensor '{}' has offsets [{}, {}) outside the {} data bytes", path, name, b,
                                        en, data_len));
    const uint64_t need = static_cast<uint64_t>(shape.numel()) * dtype_size(dtype);  // < 2^51: no overflow
    if (en - b != need)
      throw CheckpointError(fmt::format("{}: tensor '{}' spans {} bytes, but shape {} of {} needs {}", path, name,
                                        en - b, shape.str(), dt, need));
    entries.push_back({b, en, name, dtype, shape});
  }
  // The data must be the tensors back to back, in some order, with no gap and no overlap.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t cursor = 0;
  for (const Entry& e : entries) {
    if (e.begin != cursor)
      throw CheckpointError(fmt::format("{}: tensor '{}' starts at byte {} of the data, where {} was expected "
                                        "(tensors overlap or leave a gap)",
                                        path, e.name, e.begin, cursor));
    cursor = e.end;
  }
  if (cursor != data_len)
    throw CheckpointError(fmt::format("{}: the tensors cover {} of the {} data bytes", path, cursor, data_len));
  for (const Entry& e : entries) {
    Tensor t = Tensor::empty(e.shape, e.dtype);
    std::memcpy(t.raw(), bytes.data() + data_start + e.begin, e.end - e.begin);
    if (!allow_nonfinite) {
      const int64_t bad = first_nonfinite(t);
      if (bad >= 0)
        throw CheckpointError(fmt::format("{}: tensor '{}' holds NaN or infinite values (element {} is {})", path,
                                          e.name, bad, t.to_vector()[size_t(bad)]));
    }
    out.tensors.emplace_back(e.name, t);
  }
  return out;
}

void assign_named(const Named& dst, const TensorFile& file, const std::string& prefix, const std::string& scope) {
  std::vector<std::string> problems;
  std::map<std::string, const Tensor*> by_name;
  for (auto& [n, t] : file.tensors)
    if (n.rfind(prefix, 0) == 0) by_name[n.substr(prefix.size())] = &t;
  std::map<std::string, bool> wanted;
  for (auto& [name, t] : dst) {
    wanted[name] = true;
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      problems.push_back(fmt::format("missing '{}{}'", prefix, name));
      continue;
    }
    const Tensor& s = *it->second;
    if (s.shape() != t.shape())
      problems.push_back(fmt::format("'{}{}' has shape {} in the file, {} expected", prefix, name, s.shape().str(),
                                     t.shape().str()));
    else if (s.dtype() != t.dtype())
      problems.push_back(fmt::format("'{}{}' has dtype {} in the file, {} expected", prefix, name, dtype_name(s.dtype()),
                                     dtype_name(t.dtype())));
  }
  for (auto& [name, t] : by_name)
    if (!wanted.count(name) && name.rfind(scope, 0) == 0) problems.push_back(fmt::format("unexpected '{}{}'", prefix, name));
  if (!problems.empty()) {
    std::string msg = fmt::format("{}: {} mismatch(es):", file.path, problems.size());
    for (auto& p : problems) msg += "\n  " + p;
    throw CheckpointError(msg);
  }
  for (auto& [name, t] : dst) Tensor(t).copy_from(*by_name[name]);
}

}  // namespace wn::nn
