// Checkpoints in the safetensors format: 8-byte little-endian header length, a JSON
// header {name: {dtype, shape, data_offsets}, "__metadata__": {string: string}}, then
// the raw little-endian data. Names are parameter names; layouts are PyTorch's, so
// the `safetensors` Python package opens them. Writes are atomic.
#pragma once
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "nn/module.h"

namespace wn::nn {

// A checkpoint file that cannot be read or does not match what it is loaded into.
struct CheckpointError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct TensorFile {
  Named tensors;                                // in file order
  std::map<std::string, std::string> metadata;  // the __metadata__ map
  // The tensor of that name; throws CheckpointError naming the file if absent.
  const Tensor& get(const std::string& name) const;
  bool has(const std::string& name) const;
  std::string path;
};

// Writes bytes to path atomically: a temporary file in the same folder, fsync, rename.
// An interrupted write leaves the previous file intact. Missing folders on the way are
// created; a path that is not a regular file (a device, a FIFO) is written in place.
void write_file_atomic(const std::string& path, const std::string& bytes);
// An exception's message for a user: a filesystem error as "cannot X: 'path': reason"
// (the library's own text puts the path last in brackets); any other as it is.
std::string error_text(const std::exception& e);

// Saves named tensors (any device; stored as F32 / F64) with string metadata.
void save_safetensors(const std::string& path, const Named& tensors,
                      const std::map<std::string, std::string>& metadata = {});
// The largest header load_safetensors reads (100 MiB, as the reference reader).
constexpr uint64_t kMaxHeaderBytes = 100u << 20;
// Reads a safetensors file onto the CPU. Everything is checked before anything is
// allocated: a truncated file, a header that is not JSON or is over kMaxHeaderBytes,
// shapes whose size overflows, offsets outside the data, overlapping or leaving gaps,
// an unsupported dtype give a CheckpointError naming the file and the tensor; so does a
// NaN or infinite value, unless allow_nonfinite (for inspecting a diverged run).
TensorFile load_safetensors(const std::string& path, bool allow_nonfinite = false);
// The same on the bytes of a file; path names it in messages.
TensorFile parse_safetensors(const std::string& bytes, const std::string& path, bool allow_nonfinite = false);
// What a path is, for the checks that a file to read is a regular file: each caller
// words its own error (a data file, a checkpoint, a split, a run's config.json).
enum class FileKind { Regular, Missing, Folder, Special };  // Special: a pipe, device or socket
// The kind of the file at path, links followed (Missing also when it cannot be looked at).
FileKind file_kind(const std::string& path);
// Throws a CheckpointError unless path is an existing regular file (what: "checkpoint", ...).
void require_regular_file(const std::string& path, const char* what);
// Copies file tensors into the destinations of the same names (optionally under a
// prefix in the file). Checks every name, shape and dtype first and reports all
// mismatches at once, naming them; nothing is copied unless all match. File tensors
// under prefix + scope that no destination takes are reported as unexpected (scope
// "G." when loading G from a file that also holds D and the optimizers).
void assign_named(const Named& dst, const TensorFile& file, const std::string& prefix = "",
                  const std::string& scope = "");

}  // namespace wn::nn
