#!/usr/bin/env bash
# Fuzzes every file reader (or the targets named) with libFuzzer for SECONDS each (default
# 60), two at a time:
#   bash tests/fuzz/run.sh 600            # all targets
#   bash tests/fuzz/run.sh 600 image lmdb # these two
# Builds build-fuzz/ with clang, AddressSanitizer and UndefinedBehaviorSanitizer (installs
# clang and libFuzzer when missing; needs root), starts each target from the checked-in seed
# corpus (tests/fuzz/corpus/TARGET, copied so the seeds stay as they are), and reports per
# target the executions, the coverage and whether it found anything. An input that crashes
# a target lands in tests/fuzz/regressions/TARGET/, which the normal test suite replays
# (test_malformed.cpp): fix the reader, then commit the input as a regression case.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs="${1:-60}"
targets=(safetensors idx cifar image lmdb split config model trace study)
[ $# -gt 1 ] && targets=("${@:2}")
if ! command -v clang++ >/dev/null 2>&1 || ! dpkg -s libclang-rt-14-dev >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang libclang-rt-14-dev >/dev/null
fi
if [ ! -f build-fuzz/build.ninja ]; then
  CC=clang CXX=clang++ meson setup build-fuzz -Dfuzz=true -Dcuda=disabled -Db_sanitize=address,undefined \
    -Db_lundef=false -Dbuildtype=debugoptimized >/dev/null
fi
ninja -C build-fuzz $(printf 'tests/fuzz/fuzz_%s ' "${targets[@]}")
export ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
run_one() {
  local t=$1 corpus=build-fuzz/corpus/$1 log=build-fuzz/fuzz_$1.log
  mkdir -p "$corpus" "tests/fuzz/regressions/$t"
  cp -n tests/fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null || true
  build-fuzz/tests/fuzz/fuzz_"$t" "$corpus" -max_total_time="$secs" -rss_limit_mb=2560 -malloc_limit_mb=2048 \
    -timeout=30 -max_len=65536 -print_final_stats=1 -artifact_prefix="tests/fuzz/regressions/$t/" >"$log" 2>&1 || true
  local execs cov found
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo '?')
  found=$(grep -cE 'ERROR: (AddressSanitizer|libFuzzer)|runtime error:|SUMMARY: ' "$log" || true)
  printf '%-12s %10s execs  %6s coverage edges  %s\n' "$t" "$execs" "$cov" \
    "$([ "$found" = 0 ] && echo clean || echo "FOUND SOMETHING: see $log")"
}
echo "fuzzing ${#targets[@]} targets for ${secs} s each, two at a time ($(lscpu | sed -n 's/^Model name: *//p'))"
for ((i = 0; i < ${#targets[@]}; i += 2)); do
  run_one "${targets[i]}" &
  [ $((i + 1)) -lt ${#targets[@]} ] && run_one "${targets[i + 1]}" &
  wait
done
