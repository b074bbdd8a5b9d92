#!/usr/bin/env python3
"""Builds tests/fixtures/photos/: real photographs from the scikit-image and scikit-learn wheels
plus two Noto emoji from assets/demo, each centre-cropped to a square, resized to 224 x 224 with
PIL's LANCZOS filter and saved as RGB PNG (no alpha). Run by `scripts/convert-weights.sh
--fixtures`, which downloads the two wheels; the sources and licences are listed in
tests/fixtures/photos/README.md.

usage: make-photo-fixtures.py SKIMAGE_WHEEL SKLEARN_WHEEL OUT_DIR [--demo assets/demo]
"""
import argparse
import io
import os
import zipfile

from PIL import Image

SIZE = 224

# (output name, which wheel, path inside the wheel)
PHOTOS = [
    ("astronaut.png", "skimage", "skimage/data/astronaut.png"),
    ("chelsea.png", "skimage", "skimage/data/chelsea.png"),
    ("coffee.png", "skimage", "skimage/data/coffee.png"),
    ("rocket.png", "skimage", "skimage/data/rocket.jpg"),
    ("china.png", "sklearn", "sklearn/datasets/images/china.jpg"),
    ("flower.png", "sklearn", "sklearn/datasets/images/flower.jpg"),
]
# (output name, listing in assets/demo/images)
EMOJI = [
    ("emoji-banana.png", "banana"),
    ("emoji-automobile.png", "automobile"),
]


def square_resize(im):
    """Centre square crop (the odd pixel goes to the right/bottom), then LANCZOS to SIZE."""
    w, h = im.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return im.resize((SIZE, SIZE), Image.LANCZOS, box=(left, top, left + s, top + s))


def save(im, path):
    assert im.mode == "RGB" and im.size == (SIZE, SIZE)
    # Without the source's ICC profile: the fixtures are the network's input pixels, and the
    # PyTorch references read them as they are (natview would convert a profile to sRGB).
    im.save(path, format="PNG", optimize=True, icc_profile=None)
    print(f"{path}: {os.path.getsize(path)} bytes")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("skimage_wheel")
    ap.add_argument("sklearn_wheel")
    ap.add_argument("out_dir")
    ap.add_argument("--demo", default="assets/demo")
    a = ap.parse_args()
    os.makedirs(a.out_dir, exist_ok=True)
    wheels = {"skimage": zipfile.ZipFile(a.skimage_wheel), "sklearn": zipfile.ZipFile(a.sklearn_wheel)}
    for name, wheel, member in PHOTOS:
        im = Image.open(io.BytesIO(wheels[wheel].read(member)))
        im.load()
        save(square_resize(im.convert("RGB")), os.path.join(a.out_dir, name))
    for name, listing in EMOJI:
        im = Image.open(os.path.join(a.demo, "images", listing, "noto.png")).convert("RGBA")
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        rgb = Image.alpha_composite(white, im).convert("RGB")
        save(square_resize(rgb), os.path.join(a.out_dir, name))


if __name__ == "__main__":
    main()
