#!/usr/bin/env python3
"""The Python reference pipeline for ISNet background removal (what users run today:
onnxruntime + PIL + numpy), used to make the reference mattes under tests/fixtures/photos
and as the Python side of `scripts/bench-cutout`.

usage: reference_matte.py ISNET_ONNX IN.png [IN2.png ...] [--out-suffix .matte.png] [--bench N]

Steps (DESIGN.md, "Models and the ONNX runtime"): RGB → PIL bilinear resize to 1024×1024 →
float32 RGB/255 − 0.5 in NCHW → session.run(output) → [1,1,1024,1024] → min–max normalise
to 0..1 → PIL bilinear resize (mode "F") back to the source size → round(×255) → 8-bit PNG.
Made with onnxruntime 1.31.1, Pillow 12, numpy 2, CPUExecutionProvider.
"""
import sys, time
import numpy as np
import onnxruntime as ort
from PIL import Image


def matte(sess, img):
    w, h = img.size
    x = np.asarray(img.convert("RGB").resize((1024, 1024), Image.BILINEAR), dtype=np.float32)
    x = (x / 255.0 - 0.5).transpose(2, 0, 1)[None]
    t = time.perf_counter()
    y = sess.run(["output"], {"input": x})[0][0, 0]
    run = time.perf_counter() - t
    lo, hi = float(y.min()), float(y.max())
    y = (y - lo) / (hi - lo) if hi > lo else np.zeros_like(y)
    m = np.asarray(Image.fromarray(y.astype(np.float32), mode="F").resize((w, h), Image.BILINEAR))
    return np.clip(np.rint(m * 255.0), 0, 255).astype(np.uint8), run


def main():
    args = sys.argv[1:]
    bench = 0
    if "--bench" in args:
        i = args.index("--bench"); bench = int(args[i + 1]); del args[i:i + 2]
    suffix = ".matte.png"
    if "--out-suffix" in args:
        i = args.index("--out-suffix"); suffix = args[i + 1]; del args[i:i + 2]
    model, inputs = args[0], args[1:]
    opts = ort.SessionOptions()
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    for path in inputs:
        if bench:
            # end to end: decode → preprocess → run → postprocess → RGBA cutout → PNG encode
            times, runs = [], []
            for _ in range(bench):
                t = time.perf_counter()
                img = Image.open(path).convert("RGB")
                m, run = matte(sess, img)
                out = img.convert("RGBA"); out.putalpha(Image.fromarray(m))
                out.save("/tmp/reference_cutout.png")
                times.append(time.perf_counter() - t); runs.append(run)
            print(f"python {path}: end-to-end {min(times)*1000:.0f} ms, session.run {min(runs)*1000:.0f} ms (best of {bench})")
        else:
            m, _ = matte(sess, Image.open(path))
            out = path.rsplit(".", 1)[0] + suffix
            Image.fromarray(m).save(out)
            print(out)


if __name__ == "__main__":
    main()
