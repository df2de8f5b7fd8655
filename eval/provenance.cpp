#include "eval/provenance.h"

#include <ctime>
#include <fstream>

#include <fmt/format.h>

#include "engine/backend/cpu/sgemm.h"
#include "engine/parallel.h"
#include "engine/switches.h"

namespace wn::eval {

namespace {
BuildInfo& info() {
  static BuildInfo i;
  return i;
}
std::string& argv_text() {
  static std::string s;
  return s;
}
// A word as the shell reads it back: bare when safe, else in single quotes.
std::string shell_word(const std::string& w) {
  if (!w.empty() && w.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=+./:,@%") ==
                        std::string::npos)
    return w;
  std::string o = "'";
  for (char c : w) o += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return o + "'";
}
}  // namespace

std::string switches_text() {
  std::string s;
  for (const auto& x : switches_set()) s += (s.empty() ? "" : " ") + x;
  return s.empty() ? "none" : s;
}

void set_build_info(const BuildInfo& i, const std::vector<std::string>& argv) {
  info() = i;
  std::string s;
  for (const auto& w : argv) s += (s.empty() ? "" : " ") + shell_word(w);
  argv_text() = s;
}

const BuildInfo& build_info() { return info(); }

std::string command_line() { return argv_text().empty() ? "unknown" : argv_text(); }

std::string build_type() {
#ifdef WNGAN_BUILD_TYPE
  return WNGAN_BUILD_TYPE;
#else
  return "unknown";
#endif
}

std::string compiler() {
#if defined(__clang__)
  return fmt::format("Clang {}.{}.{}", __clang_major__, __clang_minor__, __clang_patchlevel__);
#elif defined(__GNUC__)
  return fmt::format("GCC {}.{}.{}", __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__);
#else
  return "unknown";
#endif
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line, name = "unknown", family, model;
  auto value = [&](const std::string& l) {
    const auto c = l.find(':');
    const auto v = c == std::string::npos ? std::string::npos : l.find_first_not_of(" \t", c + 1);
    return v == std::string::npos ? std::string() : l.substr(v);
  };
  while (std::getline(f, line) && line.find_first_not_of(" \t") != std::string::npos) {  // the first processor
    if (line.rfind("model name", 0) == 0) name = value(line);
    else if (line.rfind("cpu family", 0) == 0) family = value(line);
    else if (line.rfind("model", 0) == 0 && line.rfind("model name", 0) != 0) model = value(line);
  }
  // Virtual machines often name only the maker's line ("AMD EPYC"): family and model say which.
  return family.empty() ? name : fmt::format("{} (family {}, model {})", name, family, model);
}

std::string now_utc() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

std::vector<std::pair<std::string, std::string>> provenance_rows(const std::string& device) {
  const BuildInfo& b = build_info();
  return {{"command", command_line()},
          {"wngan", fmt::format("{} (commit {})", b.version, b.commit)},
          {"build", fmt::format("{}, {}", build_type(), compiler())},
          {"device", device},
          {"CPU GEMM kernel", sgemm_kernel_name()},
          {"threads", std::to_string(num_threads())},
          {"environment switches", switches_text()},
          {"processor", cpu_model()},
          {"date", now_utc()}};
}

}  // namespace wn::eval
