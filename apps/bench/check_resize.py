#!/usr/bin/python3
"""Checks gan/resize.cpp against Pillow, bit for bit: Pillow's Image.resize(BILINEAR), and the authors'
torchvision 0.2 transforms (CenterCrop, Scale, ToTensor) on random images.

The driver is built with the project (build/apps/check_resize); run:
    /usr/bin/python3 apps/bench/check_resize.py build/apps/check_resize [--cases 400] [--seed 0]
Needs Debian's python3-pil and python3-numpy (hence /usr/bin/python3). torchvision is not needed: the few of its
transforms the authors used are reimplemented below in a few lines on top of PIL (tv_center_crop, tv_scale,
reference_transform).

Prints the number of cases and the worst difference (in uint8 steps); exits non-zero on any mismatch.
"""
import argparse
import random
import subprocess
import sys

import numpy as np
import PIL
from PIL import Image

BILINEAR = getattr(Image, "Resampling", Image).BILINEAR
MAX_PIXELS = 1_500_000  # cap on any intermediate image, so that a 1-pixel edge scaled up stays small


def to_pil(a):
    return Image.fromarray(a[:, :, 0] if a.shape[2] == 1 else a)


def to_hwc(img):
    a = np.asarray(img, dtype=np.uint8)
    return a[:, :, None] if a.ndim == 2 else a


# --- torchvision 0.2, reimplemented (Python 3 semantics: true division, round-half-to-even) ---
def tv_center_crop(img, th, tw):
    """transforms.CenterCrop((th, tw))."""
    w, h = img.size
    i = int(round((h - th) / 2.))
    j = int(round((w - tw) / 2.))
    return img.crop((j, i, j + tw, i + th))


def tv_scale(img, size):
    """transforms.Scale(size) for an int size: the shorter edge to size, keeping the aspect ratio."""
    w, h = img.size
    if (w <= h and w == size) or (h <= w and h == size):
        return img
    if w < h:
        return img.resize((size, int(size * h / w)), BILINEAR)
    return img.resize((int(size * w / h), size), BILINEAR)


def cover(h, w, height, width):
    """The keep-aspect size for a non-square target (the project's generalisation of Scale)."""
    if w * height >= h * width:
        return height, int(height * w / h)
    return int(width * h / w), width


def reference_transform(a, crop, height, width, stretch):
    """CenterCrop(crop) if any, then Scale((height, width)) when stretching, else Scale(size) + CenterCrop(size)
    (or the covering generalisation for height != width); ToTensor: (c, h, w) float32 / 255."""
    img = to_pil(a)
    if crop:
        img = tv_center_crop(img, *crop)
    if stretch:
        img = img.resize((width, height), BILINEAR)  # Scale((h, w)) resizes to size[::-1]
    elif height == width:
        img = tv_center_crop(tv_scale(img, height), height, width)
    else:
        h, w = img.size[1], img.size[0]
        nh, nw = cover(h, w, height, width)
        if (nh, nw) != (h, w):
            img = img.resize((nw, nh), BILINEAR)
        img = tv_center_crop(img, height, width)
    return np.ascontiguousarray(to_hwc(img).transpose(2, 0, 1)).astype(np.float32) / np.float32(255)


# --- cases ---
def random_image(rng, h, w, c):
    kind = rng.random()
    if kind < 0.15:  # flat or two-level images: the fixed-point rounding at its edges
        return np.full((h, w, c), rng.choice([0, 1, 127, 128, 254, 255]), np.uint8)
    if kind < 0.3:
        return (np.random.default_rng(rng.randrange(1 << 30)).integers(0, 2, (h, w, c)) * 255).astype(np.uint8)
    return np.random.default_rng(rng.randrange(1 << 30)).integers(0, 256, (h, w, c), dtype=np.uint8)


def fixed_cases(rng):
    celeba = random_image(rng, 218, 178, 3)  # the authors' CelebA: 178 wide, 218 high
    yield ("T", celeba, (160, 160, 160, 160, 0))  # --crop 160 --image_size 160
    yield ("T", celeba, (160, 160, 64, 64, 0))  # --crop 160 --image_size 64
    yield ("T", celeba, (0, 0, 64, 64, 0))
    yield ("T", celeba, (0, 0, 64, 64, 1))  # --width 64 --height 64
    yield ("R", celeba, (64, 64))
    yield ("C", celeba, (160, 160))
    yield ("R", random_image(rng, 1, 1, 3), (300, 300))
    yield ("R", random_image(rng, 300, 300, 1), (1, 1))
    yield ("R", random_image(rng, 1, 300, 1), (7, 3))
    yield ("T", random_image(rng, 4, 5, 1), (3, 3, 2, 2, 0))
    yield ("C", random_image(rng, 10, 20, 3), (11, 20))  # larger than the image: an error
    yield ("T", random_image(rng, 10, 20, 3), (10, 21, 5, 5, 0))


def random_case(rng):
    while True:
        c = rng.choice([1, 3])
        h, w = rng.randint(1, 300), rng.randint(1, 300)
        op = rng.choice("RRRTTTC")
        if op == "C":
            return "C", random_image(rng, h, w, c), (rng.randint(1, h), rng.randint(1, w))
        if op == "R":
            mode = rng.random()
            if mode < 0.4:  # shrinking
                oh, ow = rng.randint(1, h), rng.randint(1, w)
            elif mode < 0.7:  # enlarging
                oh, ow = rng.randint(h, 300), rng.randint(w, 300)
            else:  # anything, one side kept now and then (a skipped pass)
                oh = h if rng.random() < 0.2 else rng.randint(1, 300)
                ow = w if rng.random() < 0.2 else rng.randint(1, 300)
            return "R", random_image(rng, h, w, c), (oh, ow)
        crop = (rng.randint(1, h), rng.randint(1, w)) if rng.random() < 0.5 else (0, 0)
        ih, iw = crop if crop[0] else (h, w)
        size = rng.randint(1, 300)
        height, width = (size, size) if rng.random() < 0.7 else (rng.randint(1, 300), rng.randint(1, 300))
        stretch = int(rng.random() < 0.4)
        nh, nw = (height, width) if stretch else cover(ih, iw, height, width)
        if nh * nw * max(1, c) <= MAX_PIXELS:
            return "T", random_image(rng, h, w, c), crop + (height, width, stretch)


def expected(op, a, args):
    """The reference result, or None where the C++ code must refuse the case."""
    h, w = a.shape[:2]
    if op == "R":
        return to_hwc(to_pil(a).resize((args[1], args[0]), BILINEAR))
    if op == "C":
        return None if args[0] > h or args[1] > w else to_hwc(tv_center_crop(to_pil(a), *args))
    ch, cw, height, width, stretch = args
    if ch and (ch > h or cw > w):
        return None
    return reference_transform(a, (ch, cw) if ch else None, height, width, stretch)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("driver", help="the compiled apps/bench/check_resize.cpp")
    ap.add_argument("--cases", type=int, default=400, help="random cases on top of the fixed ones")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    cases = list(fixed_cases(rng)) + [random_case(rng) for _ in range(args.cases)]

    blob = bytearray()
    for op, a, extra in cases:
        h, w, c = a.shape
        blob += f"{op} {h} {w} {c} {' '.join(map(str, extra))}\n".encode() + a.tobytes()
    run = subprocess.run([args.driver], input=bytes(blob), capture_output=True)
    if run.returncode != 0:
        sys.exit(f"check_resize: driver failed ({run.returncode}): {run.stderr.decode(errors='replace')}")
    out, pos = run.stdout, 0

    worst, bad, errors = 0, 0, 0
    for n, (op, a, extra) in enumerate(cases):
        want = expected(op, a, extra)
        status = out[pos:pos + 1]
        pos += 1
        desc = f"case {n}: {op} image {a.shape} args {extra}"
        if status == b"E":
            end = out.index(b"\n", pos)
            msg = out[pos:end].decode()
            pos = end + 1
            if want is not None:
                print(f"{desc}: unexpected error: {msg}")
                bad += 1
            errors += 1
            continue
        if want is None:  # the output's length is unknown: stop reading
            print(f"{desc}: no error where the crop is larger than the image")
            bad += 1
            break
        if op == "T":
            size = want.size * 4
            got = np.frombuffer(out[pos:pos + size], np.float32).reshape(want.shape)
            diff = int(np.abs(np.rint(got * 255).astype(int) - np.rint(want * 255).astype(int)).max())
            if diff == 0 and not np.array_equal(got, want):  # same bytes but a different float: ToTensor's / 255
                print(f"{desc}: floats differ from value / 255")
                bad += 1
        else:
            size = want.size
            got = np.frombuffer(out[pos:pos + size], np.uint8).reshape(want.shape)
            diff = int(np.abs(got.astype(int) - want.astype(int)).max())
        pos += size
        worst = max(worst, diff)
        if diff:
            print(f"{desc}: max difference {diff}")
            bad += 1
    if not bad and pos != len(out):
        print(f"check_resize: {len(out) - pos} unread bytes of driver output")
        bad += 1
    print(f"Pillow {PIL.__version__}: {len(cases)} cases ({errors} refused as expected), worst difference {worst}, "
          f"{bad} mismatches")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
