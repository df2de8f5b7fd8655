#!/usr/bin/env bash
# wngan set-up: installs the Debian packages wngan needs (when missing; needs root),
# configures the build in build/ and compiles it. Then, by mode:
#   bash setup.sh                 set up and build only
#   bash setup.sh run ARGS...     ... then run `wngan ARGS...`
#   bash setup.sh test            ... then run the test suite; ends with "N passed, M failed"
#   bash setup.sh bench ARGS...   ... then install PyTorch (python3-torch) and compare speeds
# Extra meson options can be given in WNGAN_MESON_ARGS (e.g. "-Dnative=false -Dcuda=disabled").
set -euo pipefail
cd "$(dirname "$0")"
mode="${1:-build}"
[ $# -gt 0 ] && shift

packages=(g++ meson ninja-build pkg-config cmake libeigen3-dev libtbb-dev libfmt-dev doctest-dev libstb-dev
          liblmdb-dev libwebp-dev dataset-fashion-mnist gnuplot-nox graphviz
          zlib1g-dev nlohmann-json3-dev libcli11-dev
          libopenmpi-dev openmpi-bin)  # MPI: mpirun -np N wngan train|study (docs/cluster.md)
# PyTorch on OpenBLAS: Debian's python3-torch calls whatever libblas.so.3 is selected, and
# netlib's reference BLAS (the default) is no fair baseline; OpenBLAS takes over when installed.
[ "$mode" = bench ] && packages+=(python3-torch libopenblas0-pthread)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: missing packages: ${missing[*]}; run as root (or install them) first" >&2
    exit 1
  fi
  echo "setup.sh: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -f build/build.ninja ]; then
  # shellcheck disable=SC2086
  meson setup build ${WNGAN_MESON_ARGS:-}
fi
jobs=$(nproc)
ninja -C build -j"$jobs"

case "$mode" in
  build) ;;
  run)
    exec build/apps/wngan "$@"
    ;;
  test)
    status=0
    meson test -C build --print-errorlogs --num-processes 1 "$@" || status=$?
    log=build/meson-logs/testlog.txt
    # Sum doctest's per-executable counts and the documented commands' (tests/docs_commands.py);
    # a test program that died without its summary counts as one failure.
    read -r passed failed skipped < <(awk '
      /\[doctest\] test cases:/ { for (i = 1; i <= NF; i++) { if ($i == "passed") p += $(i-1); if ($i == "failed") f += $(i-1); if ($i == "skipped") s += $(i-1) } }
      /^docs commands: [0-9]+ passed/ { gsub(",", ""); p += $3; f += $5; s += $7 }
      END { print p + 0, f + 0, s + 0 }' "$log")
    if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
    echo "$passed passed, $failed failed, $skipped skipped"
    exit "$status"
    ;;
  bench)
    exec /usr/bin/python3 apps/bench/compare_torch.py --wngan build/apps/wngan "$@"
    ;;
  *)
    echo "setup.sh: unknown mode '$mode' (expected run, test or bench)" >&2
    exit 2
    ;;
esac
