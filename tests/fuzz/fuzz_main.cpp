// One libFuzzer executable per target: FUZZ_TARGET names it (tests/fuzz/meson.build).
#include "tests/fuzz/harness.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const wn::fuzz::Target& t = wn::fuzz::target(FUZZ_TARGET);
  t.run(data, size);
  return 0;
}
