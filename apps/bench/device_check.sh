#!/usr/bin/env bash
# One prepared device check, most important first: the CUDA tests, the full
# training-iteration benchmark against PyTorch (same architecture, CUDA, cuDNN) and in
# each convolution mode, per-op convolution times, end-to-end training on the GPU, and
# safetensors interoperability. About 5 minutes; everything it prints goes to
# $OUT/log.txt as it goes, so a run cut short still reports what it reached.
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root (this script runs as .dev/run.sh)
export LD_LIBRARY_PATH="$PWD/.dev/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
for d in $(python3 -c "import nvidia, os; print(' '.join(os.path.join(p, sub, 'lib') for p in nvidia.__path__ for sub in ('cublas','cuda_runtime','cudnn','cu13') ))" 2>/dev/null); do
  [ -d "$d" ] && export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$d"
done
W=.dev/wngan
{
echo "== machine"; nvidia-smi -L; nproc; python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"
echo "== missing libraries:"; ldd $W | grep "not found"
echo "== tests (CUDA parity included)"
timeout 240 .dev/wngan_tests 2>&1 | tail -25
echo "== benchmark: full training iteration, 64x64x3, nf 64, FP32, wngan vs PyTorch"
for b in 32 64; do
  timeout 150 python3 apps/bench/compare_torch.py --wngan $W --what iteration --device cuda --batch $b --repeat 20 --threads 8 --out $OUT/iter_b$b.json 2>&1 | tail -9
done
echo "== the same iteration, batch 64, wngan only: cuDNN algorithms measured (benchmark), non-deterministic ones admitted, own kernels"
for mode in benchmark nondeterministic 0; do
  echo "-- WNGAN_CUDNN=$mode"
  WNGAN_CUDNN=$mode timeout 90 $W bench --device cuda --what iteration --batch 64 --repeat 20 2>&1 | grep -E -A4 "variant|^convolutions"
done
echo "== per-op convolution times, batch 64: cuDNN, then own kernels"
timeout 60 $W bench --device cuda --what ops --batch 64 --repeat 10 2>&1 | tail -14
WNGAN_CUDNN=0 timeout 60 $W bench --device cuda --what ops --batch 64 --repeat 10 2>&1 | tail -14
echo "== training on the GPU: WN DCGAN, Fashion-MNIST, 300 iterations"
timeout 120 $W train --device cuda --data fashion-mnist:.dev/data --iters 300 --test-every 300 --sample-every 300 --log-every 100 --out /tmp/gpu_run 2>&1 | tail -6
timeout 60 $W eval /tmp/gpu_run --device cuda --n 200 --steps 100 2>&1 | grep -v reconstructing | head -3
echo "== safetensors: a wngan checkpoint opened by the safetensors package"
python3 -c "
from safetensors.torch import load_file
from safetensors import safe_open
d = load_file('.dev/ckpt.safetensors')
with safe_open('.dev/ckpt.safetensors', 'pt') as f: meta = f.metadata()
print(len(d), 'tensors; G.level1.conv.weight', tuple(d['G.level1.conv.weight'].shape), d['G.level1.conv.weight'].dtype, '; metadata iteration', meta['iteration'])
"
} 2>&1 | tee $OUT/log.txt
