#!/usr/bin/env python3
"""Independent check of an image-layered PSD export with psd-tools.

Usage: psd_check.py FILE.psd EXPECT.json

EXPECT.json: {"width", "height", "layers": [{"name", "visible", "opacity" (0..255),
optional "bbox" [left, top, right, bottom] and "rgba" rows of [r, g, b, a]}, ...] bottom first,
"merged": rows of [r, g, b]}. Prints each check and exits 1 on any mismatch.
"""
import json
import sys

import numpy as np
from psd_tools import PSDImage


def main() -> int:
    psd = PSDImage.open(sys.argv[1])
    with open(sys.argv[2], encoding="utf-8") as f:
        exp = json.load(f)
    failures = []

    def check(what, got, want):
        ok = got == want
        print(f"{'ok  ' if ok else 'FAIL'} {what}: got {got!r}, want {want!r}")
        if not ok:
            failures.append(what)

    check("size", (psd.width, psd.height), (exp["width"], exp["height"]))
    check("channels/depth/mode", (psd.channels, psd.depth, int(psd.color_mode)), (3, 8, 3))
    layers = list(psd)  # bottom first
    check("layer count", len(layers), len(exp["layers"]))
    for i, (layer, want) in enumerate(zip(layers, exp["layers"])):
        check(f"layer {i} name", layer.name, want["name"])
        check(f"layer {i} visible", layer.visible, want["visible"])
        check(f"layer {i} opacity", layer.opacity, want["opacity"])
        if "bbox" in want:
            check(f"layer {i} bbox", tuple(layer.bbox), tuple(want["bbox"]))
        if "rgba" in want:
            img = layer.topil()
            got = np.asarray(img.convert("RGBA"), dtype=np.uint8)
            ref = np.asarray(want["rgba"], dtype=np.uint8)
            same = got.shape == ref.shape and np.array_equal(got, ref)
            print(f"{'ok  ' if same else 'FAIL'} layer {i} pixels (topil, {img.mode}, "
                  f"{got.shape}) equal ours")
            if not same:
                print("  got", got.tolist(), "\n  want", ref.tolist())
                failures.append(f"layer {i} pixels")
    ref = np.asarray(exp["merged"], dtype=np.uint8)
    merged = np.asarray(psd.topil().convert("RGB"), dtype=np.uint8)
    same = np.array_equal(merged, ref)
    print(f"{'ok  ' if same else 'FAIL'} merged image (psd.topil) equals ours exactly")
    if not same:
        failures.append("merged")
    comp = np.asarray(psd.composite(force=True).convert("RGB"), dtype=np.int16)
    diff = int(np.abs(comp - ref.astype(np.int16)).max())
    ok = diff <= 2
    print(f"{'ok  ' if ok else 'FAIL'} psd-tools re-composite from layers vs ours: "
          f"max diff {diff} (allowed 2)")
    if not ok:
        failures.append("composite")
    print("ALL OK" if not failures else f"{len(failures)} FAILED: {failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
