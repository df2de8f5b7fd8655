// The fuzz targets' bodies, shared by the libFuzzer executables (tests/fuzz/run.sh) and the
// regression test that replays every input they ever crashed on (tests/fuzz/regressions/).
// Each feeds bytes to one reader; a clean refusal (an exception) is fine, anything else
// (a signal, a sanitizer report, an allocation failure) is a bug.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace wn::fuzz {

struct Target {
  const char* name;
  // Runs the reader on the input; returns normally whether it read or refused it.
  void (*run)(const uint8_t* data, size_t size);
};

// safetensors, idx, cifar, image, lmdb, split, config, model, trace.
const std::vector<Target>& targets();
const Target& target(const std::string& name);

}  // namespace wn::fuzz
