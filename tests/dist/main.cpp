// The collectives' tests, run by `meson test` under `mpirun -np 2` (tests/meson.build):
// MPI starts first; rank 0 reports in full, the other ranks only their failures; the exit
// status is a failure when any rank failed.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <vector>

#include "engine/dist/comm.h"

int main(int argc, char** argv) {
  wn::dist::init(&argc, &argv);
  doctest::Context ctx(argc, argv);
  ctx.setOption("no-colors", true);  // mpirun hands ranks a terminal; setup.sh reads the plain summary
  if (wn::dist::world().rank() != 0) ctx.setOption("minimal", true);
  const int res = ctx.run();
  std::vector<double> failed = {res != 0 ? 1.0 : 0.0};
  wn::dist::world().all_reduce_sum(failed);
  wn::dist::finalize();
  return res != 0 ? res : (failed[0] > 0 ? 1 : 0);
}
