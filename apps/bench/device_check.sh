#!/usr/bin/env bash
# One prepared device check, most important first: the CUDA tests, the training
# iteration and the reconstruction step against PyTorch + cuDNN (same architecture, FP32,
# TF32 off) with peak GPU memory, a kernel profile of both sides (ncu for wngan,
# torch.profiler for PyTorch), each cuDNN mode, per-op convolution times, end-to-end
# training on the GPU and safetensors interoperability. About 4 minutes; everything it
# prints goes to $OUT/log.txt as it goes, so a run cut short still reports what it reached.
set -uo pipefail
cd "$(dirname "$0")/.."  # the repository root (this script runs as .dev/run.sh)
export LD_LIBRARY_PATH="$PWD/.dev/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
for d in $(python3 -c "import nvidia, os; print(' '.join(os.path.join(p, sub, 'lib') for p in nvidia.__path__ for sub in ('cublas','cuda_runtime','cudnn','cu13') ))" 2>/dev/null); do
  [ -d "$d" ] && export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$d"
done
export PYTHONUNBUFFERED=1
W=.dev/wngan
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
{
echo "== machine"; nvidia-smi -L; nproc; python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0), 'cuDNN', torch.backends.cudnn.version())"
echo "== missing libraries:"; ldd $W | grep "not found"
echo "== CUDA tests $(date +%T)"
timeout 150 .dev/wngan_tests -tc='CUDA*,cuDNN*,WNGAN_CUDNN*,*tensor*' 2>&1 | tail -12
for b in 32 64; do
  echo "== training iteration, 64x64x3, nf 64, batch $b, FP32: wngan vs PyTorch $(date +%T)"
  timeout 100 python3 apps/bench/compare_torch.py --wngan $W --what iteration --device cuda --batch $b --repeat 20 --threads 8 --out $OUT/iter_b$b.json 2>&1 | tail -14
done
for b in 32 64; do
  echo "== reconstruction step, batch $b: wngan vs PyTorch $(date +%T)"
  timeout 60 python3 apps/bench/compare_torch.py --wngan $W --what recon --device cuda --batch $b --repeat 20 --threads 8 --out $OUT/recon_b$b.json 2>&1 | tail -5
done
echo "== kernel profiles, batch 64 (GPU time and launches per iteration) $(date +%T)"
for n in weight; do
  if [ -n "$NCU" ]; then
    timeout 90 $NCU --clock-control none --metrics gpu__time_duration.sum --csv --log-file /tmp/ncu_$n.csv \
      $W bench --device cuda --what iteration --norms $n --batch 64 --repeat 3 --no-sgemm >/dev/null 2>&1
    python3 apps/bench/gpu_profile.py ncu /tmp/ncu_$n.csv 6 2>&1 | head -26
  else echo "ncu not found"; fi
  timeout 60 python3 apps/bench/gpu_profile.py torch $n 64 2>&1 | grep -v -i warn | head -26
done
echo "== iteration, batch 64, wngan only, each cuDNN mode (the default, own kernels, is above) $(date +%T)"
for mode in heuristic benchmark nondeterministic; do
  WNGAN_CUDNN=$mode timeout 60 $W bench --device cuda --what iteration --batch 64 --repeat 10 2>&1 | grep -E "^  (variant|none|batch|weight) |^convolutions" | sed "s/^/$mode: /"
done
echo "== per-op convolution times, batch 64: own kernels (the default), then cuDNN's heuristic choice $(date +%T)"
timeout 40 $W bench --device cuda --what ops --batch 64 --repeat 10 2>&1 | tail -12
WNGAN_CUDNN=heuristic timeout 40 $W bench --device cuda --what ops --batch 64 --repeat 10 2>&1 | tail -12
echo "== training on the GPU: WN DCGAN, Fashion-MNIST, 300 iterations $(date +%T)"
timeout 90 $W train --device cuda --data fashion-mnist:.dev/data --iters 300 --test-every 300 --sample-every 300 --log-every 100 --out /tmp/gpu_run 2>&1 | grep -v "^\s*$" | tail -9
timeout 40 $W eval /tmp/gpu_run --device cuda --n 200 --steps 100 2>&1 | grep -v reconstructing | head -3
echo "== safetensors: a wngan checkpoint opened by the safetensors package $(date +%T)"
python3 -c "
from safetensors.torch import load_file
from safetensors import safe_open
d = load_file('.dev/ckpt.safetensors')
with safe_open('.dev/ckpt.safetensors', 'pt') as f: meta = f.metadata()
print(len(d), 'tensors; G.level1.conv.weight', tuple(d['G.level1.conv.weight'].shape), d['G.level1.conv.weight'].dtype, '; metadata iteration', meta['iteration'])
"
} 2>&1 | tee $OUT/log.txt
cp /tmp/ncu_*.csv $OUT/ 2>/dev/null
