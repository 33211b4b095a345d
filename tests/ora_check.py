#!/usr/bin/env python3
"""Independent check of an OpenRaster (.ora) file against the spec's rules.

Usage: python3 tests/ora_check.py FILE.ora
Checks: `mimetype` is the first entry, stored, without an extra field, holding exactly
"image/openraster" (so the bytes sit at offset 30); stack.xml parses, its root is <image>
with positive w/h and a <stack>; every layer src exists and is a PNG that, placed at its
layer's x/y, lies on the image;
mergedimage.png is present, a PNG of the image's size; Thumbnails/thumbnail.png, when
present, is at most 256 px on its long side; and pyora (PyPI), an OpenRaster library we did
not write, opens the file and sees the same canvas, layer names, visibility, opacity and
pixels (each layer placed on the canvas). Exits 1 and lists every failure otherwise.
"""
import io
import sys
import zipfile
import xml.etree.ElementTree as ET

from PIL import Image


def check(path):
    errors = []
    raw = open(path, "rb").read()
    if raw[30:54] != b"mimetypeimage/openraster":
        errors.append("bytes 30..54 are not 'mimetypeimage/openraster'")
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        return errors + ["not a ZIP: %s" % e]
    infos = zf.infolist()
    first = infos[0] if infos else None
    if first is None or first.filename != "mimetype":
        errors.append("mimetype is not the first entry")
    else:
        if first.compress_type != zipfile.ZIP_STORED:
            errors.append("mimetype is compressed")
        if first.extra:
            errors.append("mimetype has an extra field")
        if zf.read(first) != b"image/openraster":
            errors.append("mimetype content is %r" % zf.read(first))
    names = set(zf.namelist())

    def png(name):
        img = Image.open(io.BytesIO(zf.read(name)))
        if img.format != "PNG":
            raise ValueError("%s is %s, not PNG" % (name, img.format))
        img.load()
        return img

    try:
        root = ET.fromstring(zf.read("stack.xml"))
    except (KeyError, ET.ParseError) as e:
        return errors + ["stack.xml: %s" % e]
    if root.tag != "image":
        errors.append("root element is <%s>, not <image>" % root.tag)
    w, h = int(root.get("w", "0")), int(root.get("h", "0"))
    if w <= 0 or h <= 0:
        errors.append("image size %dx%d" % (w, h))
    if root.find("stack") is None:
        errors.append("no <stack> in <image>")
    layers = list(root.iter("layer"))
    if not layers:
        errors.append("no layers")
    for layer in layers:
        src = layer.get("src")
        if src not in names:
            errors.append("layer %r: src %r missing" % (layer.get("name"), src))
            continue
        try:
            img = png(src)
            x, y = int(layer.get("x", "0")), int(layer.get("y", "0"))
            if x < 0 or y < 0 or x + img.size[0] > w or y + img.size[1] > h:
                errors.append("%s is %s at %d,%d, off the %dx%d image"
                              % (src, img.size, x, y, w, h))
        except Exception as e:  # noqa: BLE001 - any decode failure is a finding
            errors.append("%s: %s" % (src, e))
        op = float(layer.get("opacity", "1"))
        if not 0.0 <= op <= 1.0:
            errors.append("%s: opacity %s" % (src, op))
        if layer.get("visibility", "visible") not in ("visible", "hidden"):
            errors.append("%s: visibility %r" % (src, layer.get("visibility")))
    if "mergedimage.png" not in names:
        errors.append("mergedimage.png missing")
    else:
        img = png("mergedimage.png")
        if img.size != (w, h):
            errors.append("mergedimage.png is %s, image is %dx%d" % (img.size, w, h))
    if "Thumbnails/thumbnail.png" in names:
        tw, th = png("Thumbnails/thumbnail.png").size
        if max(tw, th) > 256:
            errors.append("thumbnail is %dx%d" % (tw, th))
    print("%s: %dx%d, %d layers top first: %s" % (
        path, w, h, len(layers), [l.get("name") for l in layers]))
    return errors + check_with_pyora(path, zf, w, h, layers)


def check_with_pyora(path, zf, w, h, layers):
    """Opens the file with pyora, a third-party OpenRaster library, and checks it sees the
    same canvas and layers (names, visibility, opacity, pixels) as stack.xml declares."""
    try:
        from pyora import Project
    except ImportError:
        return ["pyora is not installed (python3 -m pip install pyora)"]
    try:
        project = Project.load(path)
    except Exception as e:  # noqa: BLE001 - a reader failing is the finding
        return ["pyora cannot open the file: %s" % e]
    errors = []
    if tuple(project.dimensions) != (w, h):
        errors.append("pyora sees %s, stack.xml says %dx%d" % (project.dimensions, w, h))
    got = list(project.iter_layers)
    want = [l.get("name") for l in layers]
    names = [l.name for l in got]
    if names == want[::-1]:
        got = got[::-1]
    elif names != want:
        return errors + ["pyora sees layers %r, stack.xml lists %r" % (names, want)]
    for layer, xml in zip(got, layers):
        if bool(layer.visible) != (xml.get("visibility", "visible") == "visible"):
            errors.append("pyora: %r visibility differs" % layer.name)
        if abs(float(layer.opacity) - float(xml.get("opacity", "1"))) > 1e-3:
            errors.append("pyora: %r opacity %s" % (layer.name, layer.opacity))
        ours = Image.new("RGBA", (w, h))
        ours.paste(Image.open(io.BytesIO(zf.read(xml.get("src")))).convert("RGBA"),
                   (int(xml.get("x", "0")), int(xml.get("y", "0"))))
        theirs = layer.get_image_data(raw=False).convert("RGBA")
        if theirs.size != ours.size or theirs.tobytes() != ours.tobytes():
            errors.append("pyora: the pixels of %r differ" % layer.name)
    if not errors:
        print("pyora reads the same %d layers" % len(got))
    return errors


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: ora_check.py FILE.ora")
    errs = check(sys.argv[1])
    for e in errs:
        print("FAIL:", e)
    print("OK" if not errs else "%d failure(s)" % len(errs))
    sys.exit(1 if errs else 0)
