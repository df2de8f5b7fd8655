#!/usr/bin/env bash
# The malformed-input and run-safety tests under AddressSanitizer and UBSan (the build of
# tests/fuzz/run.sh: clang, build-fuzz/): any report fails the run. Not part of CI (a full
# sanitizer build doubles its time on 2 cores); run it before closing reliability work.
#   bash tests/fuzz/sanitize.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v clang++ >/dev/null 2>&1 || ! dpkg -s libclang-rt-14-dev >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang libclang-rt-14-dev >/dev/null
fi
if [ ! -f build-fuzz/build.ninja ]; then
  CC=clang CXX=clang++ meson setup build-fuzz -Dfuzz=true -Dcuda=disabled -Db_sanitize=address,undefined \
    -Db_lundef=false -Dbuildtype=debugoptimized >/dev/null
fi
ninja -C build-fuzz tests/wngan_tests apps/wngan
export ASAN_OPTIONS=detect_leaks=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
build-fuzz/tests/wngan_tests -sf='*malformed*,*run_safety*,*test_resize*,*test_data*,*test_checkpoint*,*test_presets*' \
  2>&1 | tee build-fuzz/sanitize.log | tail -4
! grep -qE 'runtime error:|ERROR: AddressSanitizer' build-fuzz/sanitize.log
