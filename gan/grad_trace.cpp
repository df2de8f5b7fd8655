#include "gan/grad_trace.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include <fmt/format.h>

#include "gan/inspect.h"
#include "nn/checkpoint.h"

namespace wn::gan {

namespace fs = std::filesystem;

const char* const kTraceHeader = "iteration,step,layer,quantity,value";

namespace {

std::optional<TraceRow> parse_row(const std::string& line) {
  std::stringstream ss(line);
  std::string f[5];
  for (auto& s : f)
    if (!std::getline(ss, s, ',')) return std::nullopt;
  try {
    size_t a = 0, b = 0;
    TraceRow r{std::stoll(f[0], &a), f[1], f[2], f[3], std::stod(f[4], &b)};
    if (a != f[0].size() || b != f[4].size()) return std::nullopt;
    return r;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

namespace {
// The rows of a trace file, every line checked: the header first, then rows that parse
// (CRLF line ends accepted, as spreadsheets write them). Only a last line without its
// newline (a row cut off by a crash) may fail to parse; it is dropped. The raw lines of
// the rows are returned beside them (trim_trace writes them back as they were).
std::vector<TraceRow> parse_trace(const std::string& path, std::vector<std::string>* lines) {
  switch (nn::file_kind(path)) {
    case nn::FileKind::Missing: return {};
    case nn::FileKind::Folder: throw std::runtime_error(fmt::format("{} is a folder, not a gradient trace", path));
    case nn::FileKind::Special:
      throw std::runtime_error(fmt::format("{} is not a regular file (a pipe or device), not a gradient trace", path));
    case nn::FileKind::Regular: break;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("{}: cannot open the gradient trace", path));
  const std::string text((std::istreambuf_iterator<char>(in)), {});
  if (text.empty()) throw std::runtime_error(fmt::format("{}: an empty file, not a gradient trace (no header)", path));
  std::vector<TraceRow> out;
  size_t at = 0;
  int64_t number = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    const bool terminated = end != std::string::npos;
    if (!terminated) end = text.size();
    std::string line = text.substr(at, end - at);
    at = end + 1;
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (number == 1) {
      if (line != kTraceHeader)
        throw std::runtime_error(fmt::format("{}: not a gradient trace: its first line is '{}', expected '{}'", path,
                                             line.substr(0, 80), kTraceHeader));
      continue;
    }
    if (line.empty() && !terminated) break;
    if (auto r = parse_row(line)) {
      out.push_back(*r);
      if (lines) lines->push_back(line);
    } else if (terminated) {
      throw std::runtime_error(fmt::format("{}: line {} is not a row 'iteration,step,layer,quantity,value': '{}'", path,
                                           number, line.substr(0, 80)));
    }
  }
  return out;
}
}  // namespace

void trim_trace(const std::string& path, int64_t last_iteration) {
  if (nn::file_kind(path) == nn::FileKind::Missing) return;
  std::vector<std::string> lines;
  const std::vector<TraceRow> rows = parse_trace(path, &lines);  // refuses a file it cannot read whole
  std::string kept = std::string(kTraceHeader) + "\n";
  for (size_t i = 0; i < rows.size(); ++i)
    if (rows[i].iteration <= last_iteration) kept += lines[i] + "\n";
  nn::write_file_atomic(path, kept);
}

std::vector<TraceRow> read_trace(const std::string& path) { return parse_trace(path, nullptr); }

struct GradTrace::Impl {
  std::string path;
  StepInspector inspector;
  int64_t it = 0;
  Impl(std::string p, Gan& g) : path(std::move(p)), inspector(g) {}
};

GradTrace::GradTrace(std::string path, Gan& gan) : impl_(std::make_unique<Impl>(std::move(path), gan)) {
  if (!fs::exists(impl_->path)) nn::write_file_atomic(impl_->path, std::string(kTraceHeader) + "\n");
}

GradTrace::~GradTrace() = default;

const StepHooks& GradTrace::begin(int64_t it, bool simultaneous) {
  impl_->it = it;
  return impl_->inspector.begin(simultaneous ? Protocol::Simultaneous : Protocol::Alternating);
}

bool GradTrace::end() {
  Impl& s = *impl_;
  s.inspector.end();
  std::string text;
  for (const StepRow& r : s.inspector.rows())
    text += fmt::format("{},{},{},{},{:.9g}\n", s.it, r.step, r.layer, r.quantity, r.value);
  std::ofstream f(s.path, std::ios::app);
  f << text;
  return static_cast<bool>(f.flush());
}

}  // namespace wn::gan
