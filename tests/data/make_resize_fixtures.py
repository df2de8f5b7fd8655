#!/usr/bin/python3
"""Writes tests/data/resize_pillow.txt: small resize, crop and transform cases with the pixels Pillow gives,
so that test_resize.cpp checks gan/resize.cpp bit for bit against Pillow without Pillow installed.

    /usr/bin/python3 tests/data/make_resize_fixtures.py > tests/data/resize_pillow.txt

Needs Debian's python3-pil and python3-numpy. The references (Pillow's BILINEAR, the authors' torchvision 0.2
CenterCrop / Scale / ToTensor) are those of apps/bench/check_resize.py, which checks many more random cases
through a driver. Inputs are not stored: each is made from a small generator the test repeats (see lcg_image).

One case a line: OP H W C KIND PARAM ARGS... : the expected bytes in hex, or "error".
  R ... OH OW                               Image.resize((OW, OH), BILINEAR)
  C ... CH CW                               CenterCrop((CH, CW))
  T ... CROP_H CROP_W HEIGHT WIDTH STRETCH  the whole transform; bytes are ToTensor's floats x 255
KIND noise|binary|flat with PARAM its seed or value.
"""
import os
import random
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "apps", "bench"))
import check_resize as ref  # noqa: E402


def lcg_image(h, w, c, kind, param):
    """The input image (h, w, c) uint8: noise from a 31-bit LCG seeded by param, its low bit for binary, or flat."""
    if kind == "flat":
        return np.full((h, w, c), param, np.uint8)
    out = np.empty(h * w * c, np.uint8)
    s = param
    for i in range(out.size):
        s = (s * 1103515245 + 12345) % (1 << 31)
        v = (s >> 16) & 255
        out[i] = v if kind == "noise" else 255 * (v & 1)
    return out.reshape(h, w, c)


def cases():
    rng = random.Random(7)
    kinds = lambda: rng.choice([("noise", rng.randrange(1 << 30))] * 4 + [("binary", rng.randrange(1 << 30)),
                                                                          ("flat", rng.choice([0, 1, 127, 128, 254, 255]))])
    # The paper's sizes: Fashion-MNIST 28 to 32 and 64, CIFAR-10 32, CelebA's 178x218 cropped to 160 then 64.
    yield "T", (218, 178, 3), ("noise", 11), (160, 160, 64, 64, 0)
    yield "T", (28, 28, 1), ("noise", 12), (0, 0, 32, 32, 0)
    yield "T", (28, 28, 1), ("noise", 13), (0, 0, 64, 64, 0)
    yield "T", (32, 32, 3), ("noise", 14), (0, 0, 28, 28, 0)
    yield "T", (20, 30, 3), ("noise", 15), (0, 0, 12, 12, 0)  # shorter edge, then the centre square
    yield "T", (20, 30, 3), ("noise", 16), (0, 0, 12, 16, 1)  # stretched to HxW
    yield "T", (20, 30, 1), ("noise", 17), (0, 0, 8, 14, 0)  # keep-aspect cover, non-square
    yield "T", (9, 9, 1), ("noise", 18), (5, 5, 9, 9, 0)  # crop then enlarge
    yield "C", (10, 20, 3), ("noise", 19), (11, 20)  # larger than the image: refused
    yield "T", (10, 20, 3), ("noise", 20), (10, 21, 5, 5, 0)
    for _ in range(24):  # resizes: shrinking, enlarging, one side kept
        h, w, c = rng.randint(1, 24), rng.randint(1, 24), rng.choice([1, 3])
        oh = h if rng.random() < 0.2 else rng.randint(1, 32)
        ow = w if rng.random() < 0.2 else rng.randint(1, 32)
        yield "R", (h, w, c), kinds(), (oh, ow)
    for _ in range(6):
        h, w, c = rng.randint(1, 24), rng.randint(1, 24), rng.choice([1, 3])
        yield "C", (h, w, c), kinds(), (rng.randint(1, h), rng.randint(1, w))
    for _ in range(16):
        h, w, c = rng.randint(2, 24), rng.randint(2, 24), rng.choice([1, 3])
        crop = (rng.randint(1, h), rng.randint(1, w)) if rng.random() < 0.5 else (0, 0)
        size = rng.randint(1, 24)
        hw = (size, size) if rng.random() < 0.6 else (rng.randint(1, 24), rng.randint(1, 24))
        yield "T", (h, w, c), kinds(), crop + hw + (int(rng.random() < 0.4),)


def main():
    print("# Made by tests/data/make_resize_fixtures.py with Pillow " + ref.PIL.__version__ + "; do not edit.")
    for op, (h, w, c), (kind, param), args in cases():
        want = ref.expected(op, lcg_image(h, w, c, kind, param), args)
        if want is None:
            text = "error"
        elif op == "T":
            text = np.rint(want * 255).astype(np.uint8).tobytes().hex()
        else:
            text = want.tobytes().hex()
        print(f"{op} {h} {w} {c} {kind} {param} {' '.join(map(str, args))} : {text}")


if __name__ == "__main__":
    main()
