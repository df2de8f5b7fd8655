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

void trim_trace(const std::string& path, int64_t last_iteration) {
  if (!fs::exists(path)) return;
  std::ifstream in(path);
  std::string line, kept = std::string(kTraceHeader) + "\n";
  std::getline(in, line);
  while (std::getline(in, line))
    if (auto r = parse_row(line); r && r->iteration <= last_iteration) kept += line + "\n";
  nn::write_file_atomic(path, kept);
}

std::vector<TraceRow> read_trace(const std::string& path) {
  std::vector<TraceRow> out;
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line))
    if (auto r = parse_row(line)) out.push_back(*r);
  return out;
}

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
