#include "engine/switches.h"

#include <cstdio>
#include <cstdlib>

namespace wn {

namespace {
// Whether v is one of the words of a "a | b | c" list.
bool one_of(const std::string& v, const std::string& list) {
  size_t at = 0;
  while (at <= list.size()) {
    const size_t bar = list.find(" | ", at);
    const std::string word = list.substr(at, bar == std::string::npos ? std::string::npos : bar - at);
    if (v == word) return true;
    if (bar == std::string::npos) break;
    at = bar + 3;
  }
  return false;
}

// The check of one switch's value: "" when it is accepted, else what is expected.
std::string check(const Switch& s, const std::string& v) {
  if (s.name == "WNGAN_DIST_TIMEOUT") {
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    return !v.empty() && *end == '\0' && x > 0 && x < 1e9 ? "" : "expected a number of seconds > 0";
  }
  if (s.name == "WNGAN_FAIL_AT") {
    int rank = -1;
    long long it = -1;
    char extra = 0;
    return std::sscanf(v.c_str(), "%d:%lld%c", &rank, &it, &extra) == 2 && rank >= 0 && it >= 1
               ? ""
               : "expected RANK:ITERATION, e.g. 1:15";
  }
  return one_of(v, s.values) ? "" : "expected " + s.values;
}
}  // namespace

const std::vector<Switch>& switches() {
  static const std::vector<Switch> t = {
      {"WNGAN_CPU_GEMM", "auto | avx512 | avx2 | eigen",
       "the CPU's matrix products: wngan's SGEMM with the best kernel this CPU passes (auto), a kernel named, or "
       "Eigen's GEMM"},
      {"WNGAN_CPU_CONV", "auto | implicit | im2col",
       "CPU convolutions by implicit GEMM (auto) or through an unfolded matrix (the same bits)"},
      {"WNGAN_CUDNN", "0 | 1 | heuristic | benchmark | nondeterministic",
       "CUDA convolutions on wngan's kernels (0, the default) or cuDNN's, chosen by its heuristic (1), by timing, or "
       "admitting nondeterministic algorithms"},
      {"WNGAN_NCCL", "0 | 1", "under mpirun with CUDA: sum gradients with NCCL (1, the default where it loads) or "
                             "through the host over MPI (0)"},
      {"WNGAN_DIST_TIMEOUT", "SECONDS", "under mpirun: how long a collective waits for the other ranks (600)"},
      {"WNGAN_FAIL_AT", "RANK:ITERATION", "for tests: that rank fails after that iteration"},
  };
  return t;
}

void check_switches() {
  for (const Switch& s : switches()) {
    const char* e = std::getenv(s.name.c_str());
    if (!e || !*e) continue;  // empty: as if unset
    const std::string why = check(s, e);
    if (!why.empty()) throw SwitchError(s.name + "='" + e + "': " + why + " (docs/cli.md, environment switches)");
  }
}

std::vector<std::string> switches_set() {
  std::vector<std::string> out;
  for (const Switch& s : switches())
    if (const char* e = std::getenv(s.name.c_str())) out.push_back(s.name + "=" + e);
  return out;
}

}  // namespace wn
