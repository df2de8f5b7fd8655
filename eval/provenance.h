// Where a result came from: the command line, wngan's version and commit, the build, the
// backend and GEMM kernel, threads, the processor, the date. Reports print it beside
// their numbers so that a figure can be traced to what produced it.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace wn::eval {

// What the wngan executable knows about itself (set once by apps/main.cpp).
struct BuildInfo {
  std::string version = "unknown", commit = "unknown";  // commit: git's short hash, "-dirty" when so
};
// Records the executable's build information and command line (apps/main.cpp).
void set_build_info(const BuildInfo& info, const std::vector<std::string>& argv);
// The build information set above (or "unknown" fields).
const BuildInfo& build_info();
// The command line as a shell would take it back (words quoted where needed).
std::string command_line();
// "release", "debug", ... and "GCC 12.2.0": how this binary was compiled.
std::string build_type();
std::string compiler();
// The CPU's model name (/proc/cpuinfo), or "unknown".
std::string cpu_model();
// The environment switches set ("WNGAN_CPU_CONV=im2col ..."), or "none".
std::string switches_text();
// The local date and time now, "2026-12-04 20:15:03 UTC".
std::string now_utc();
// Label / value rows for a report: command, version, commit, build, backend, GEMM kernel,
// threads, processor, date. device: the run's device ("cpu", "cuda:0").
std::vector<std::pair<std::string, std::string>> provenance_rows(const std::string& device);

}  // namespace wn::eval
