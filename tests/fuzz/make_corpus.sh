#!/usr/bin/env bash
# Writes the seed corpus of the fuzz targets (tests/fuzz/corpus/TARGET/): one or a few small
# valid inputs per reader, from which libFuzzer mutates. Run once; the output is checked in.
# Needs Debian's python3 with python3-pil and lmdb-utils (mdb_load).
set -euo pipefail
cd "$(dirname "$0")"
rm -rf corpus
mkdir -p corpus/{safetensors,idx,cifar,image,lmdb,split,config,model,trace,study}
/usr/bin/python3 - <<'PY'
import gzip, io, json, struct
from PIL import Image

def safetensors(tensors, meta=None):
    header, data = {}, b""
    for name, shape, values in tensors:
        raw = struct.pack("<%df" % len(values), *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if meta:
        header["__metadata__"] = meta
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data

open("corpus/safetensors/two", "wb").write(safetensors([("a", [2, 3], [1, 2, 3, 4, 5, 6]), ("b", [1], [7])], {"k": "v"}))
open("corpus/safetensors/empty", "wb").write(safetensors([("z", [0, 4], [])]))
idx = struct.pack(">IIII", 0x803, 2, 28, 28) + bytes(range(256)) * 6 + bytes(1568 - 1536)
open("corpus/idx/plain", "wb").write(idx)
open("corpus/idx/gzip", "wb").write(gzip.compress(idx))
open("corpus/cifar/one", "wb").write(bytes([3]) + bytes(range(256)) * 12)
png = io.BytesIO(); Image.new("RGB", (8, 8), (200, 30, 90)).save(png, "PNG")
open("corpus/image/rgb.png", "wb").write(png.getvalue())
grey = io.BytesIO(); Image.new("L", (20, 14), 77).save(grey, "PNG")
open("corpus/image/grey.png", "wb").write(grey.getvalue())
jpg = io.BytesIO(); Image.new("RGB", (16, 16), (10, 200, 40)).save(jpg, "JPEG", quality=80)
open("corpus/image/rgb.jpg", "wb").write(jpg.getvalue())
# An mdb_load dump of three PNG values.
with open("lmdb.dump", "w") as f:
    f.write("VERSION=3\nformat=bytevalue\ntype=btree\nmapsize=1048576\nHEADER=END\n")
    for i in range(3):
        f.write(" %s\n %s\n" % (("key%d" % i).encode().hex(), png.getvalue().hex()))
    f.write("DATA=END\n")
split = {"dataset_size": 50, "seed": 1, "running_test_from": "final_test", "final_test": list(range(10)),
         "running_test": [0, 1, 2], "train": list(range(10, 50))}
open("corpus/split/split.json", "w").write(json.dumps(split))
model = {"arch": "dcgan", "norm": "weight", "channels": 1, "height": 28, "width": 28, "nf": 8, "code": 16,
         "nlayer": 0, "features": [], "blocks": 2, "version": 2}
open("corpus/model/dcgan.json", "w").write(json.dumps(model))
resnet = dict(model, arch="resnet", features=[4, 8], blocks=1)
open("corpus/model/resnet.json", "w").write(json.dumps(resnet))
config = {"model": model, "data": "fashion-mnist", "batch": 32, "crop": [0, 0], "stretch": False, "lr": 1e-4,
          "iters": 2000, "loss": "bce", "protocol": "alternating", "rms_eps": 1e-6, "seed": 1, "sample_every": 100,
          "test_every": 1000, "save_every": 0, "log_every": 100, "final_test": 2000, "running_test": 200,
          "samples": 64, "select_on": "test", "test_steps": 50}
open("corpus/config/config.json", "w").write(json.dumps(config))
open("corpus/config/config_dist.json", "w").write(json.dumps(dict(config, sync_bn=True, trace_grads=100)))
trace = "iteration,step,layer,quantity,value\n" + "".join(
    f"{it},{s},{s}.level0.conv,{q},{v}\n" for it in (1, 5, 10) for s in "DG"
    for q, v in (("grad_norm:weight", 0.52), ("cos_grad:weight", -1.2e-7), ("update_ratio:weight", 0.0043)))
open("corpus/trace/grad_trace.csv", "w").write(trace)
PY
rm -rf lmdb.tmp && mkdir lmdb.tmp
mdb_load -f lmdb.dump lmdb.tmp
cp lmdb.tmp/data.mdb corpus/lmdb/three
rm -rf lmdb.tmp lmdb.dump
mkdir -p regressions
find corpus -type f | sort
