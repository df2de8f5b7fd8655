#!/usr/bin/env bash
# Prepares .dev/ (ignored by git) for a GPU machine that has no Debian packages: a CUDA
# build without -march=native, the non-system libraries it links, Fashion-MNIST, a small
# checkpoint for the safetensors check, and the check script itself as .dev/run.sh.
# Then, with the device tool: run `bash .dev/run.sh` carrying `.dev` (about 40 MiB).
set -euo pipefail
cd "$(dirname "$0")/../.."
# Its own build folder without MPI: the GPU machine has no Open MPI (libmpi.so would be
# missing there), so multi-rank runs cannot be checked on it anyway.
b=build-device
[ -f $b/build.ninja ] || meson setup $b -Dcuda=enabled -Dnative=false -Dmpi=disabled
# Meson gives nvcc no depfile, so a changed header does not rebuild the .cu objects that
# include it: rebuild them every time (a minute or two) rather than ship mixed layouts.
find $b -name '*.cu.o' -delete
ninja -C $b -j"$(nproc)"
if ldd $b/apps/wngan | grep -q libmpi; then echo "$b links MPI: reconfigure it with -Dmpi=disabled" >&2; exit 1; fi
rm -rf .dev && mkdir -p .dev/lib .dev/data
cp $b/apps/wngan $b/tests/wngan_tests .dev/
for l in libtbb.so.12 libfmt.so.9 liblmdb.so.0 libwebp.so.7 libz.so.1; do cp -L "/lib/x86_64-linux-gnu/$l" .dev/lib/; done
cp /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz .dev/data/
rm -rf /tmp/wngan_tiny_run
.dev/wngan train --nf 8 --code 16 --iters 5 --test-every 5 --no-final-test --out /tmp/wngan_tiny_run >/dev/null 2>&1
cp /tmp/wngan_tiny_run/checkpoints/last.safetensors .dev/ckpt.safetensors
cp apps/bench/device_check.sh .dev/run.sh
du -sh .dev
