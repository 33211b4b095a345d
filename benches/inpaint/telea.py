#!/usr/bin/env python3
"""OpenCV's TELEA inpainting (Telea 2004), the reference of `cargo bench --bench inpaint`.

    python3 benches/inpaint/telea.py RADIUS RUNS IN MASK OUT [IN MASK OUT ...]

Fills each IN (PNG, RGB) where MASK (PNG, white = fill) is set, writes OUT, and prints one
line per image: the best of RUNS wall times of `cv2.inpaint` alone, in milliseconds.
"""
import sys
import time

import cv2


def main():
    radius, runs, rest = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    if len(rest) % 3:
        sys.exit("usage: telea.py RADIUS RUNS IN MASK OUT [IN MASK OUT ...]")
    cv2.setNumThreads(2)
    for i in range(0, len(rest), 3):
        src, mask_path, out = rest[i:i + 3]
        img = cv2.imread(src, cv2.IMREAD_COLOR)
        mask = cv2.imread(mask_path, cv2.IMREAD_GRAYSCALE)
        best, filled = float("inf"), None
        for _ in range(runs):
            t = time.perf_counter()
            filled = cv2.inpaint(img, (mask > 127).astype("uint8") * 255, radius,
                                 cv2.INPAINT_TELEA)
            best = min(best, (time.perf_counter() - t) * 1000.0)
        cv2.imwrite(out, filled)
        print("%.1f" % best, flush=True)


if __name__ == "__main__":
    main()
