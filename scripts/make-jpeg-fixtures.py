#!/usr/bin/env python3
"""Writes tests/fixtures/jpeg/: small JPEG files of each kind natview's decoder must handle,
made by Pillow from the two real photographs that ship inside scikit-learn's wheel
(sklearn/datasets/images/china.jpg and flower.jpg, BSD-3-Clause), reproducibly.

    bench/.venv/bin/pip install pillow scikit-learn numpy
    bench/.venv/bin/python scripts/make-jpeg-fixtures.py

Files (tests/jpeg_decode.rs reads them):
- photo.jpg: china.jpg upscaled to 1600 x 1067 (bicubic) with light noise, quality 90, 4:2:0:
  big enough that a 224-px input decodes at 1/4 and a 64-px thumbnail at 1/8;
- orientation-N.jpg (N = 1..8): flower.jpg at 96 x 64, stored transformed as EXIF orientation N
  says a camera stores it, with the tag; orientation-upright.png is what each must decode to;
- cmyk.jpg: eight flat colour blocks (white, black, red, green, blue, cyan, magenta, yellow)
  as Pillow writes CMYK (Adobe marker, inverted inks); cmyk-expected.png the RGB blocks;
- ycck.jpg: the same blocks as YCCK with Adobe's marker (Photoshop's CMYK JPEGs), written by
  scripts/make-ycck-fixture.c through libjpeg (Pillow cannot write YCCK);
- grey.jpg (one component), progressive.jpg (the photo, progressive);
- icc.jpg: the photo with an sRGB ICC profile embedded (converting sRGB to sRGB must leave it
  as photo.jpg decodes);
- adobergb.jpg, adobergb.png: the photo at 400 x 267 converted by LittleCMS (Pillow's
  ImageCms) from sRGB into Adobe RGB (1998) with that real profile embedded
  (`compatibleWithAdobeRGB1998.icc` from Debian's `icc-profiles-free`, zlib licence);
  srgb-400.png is the sRGB original they must decode back to, adobergb-raw.png their pixel
  values taken as they are (what ignoring the profile gives);
- truncated.jpg: the first 60 % of photo.jpg's bytes;
- huge-header.jpg: an 8 x 8 JPEG whose frame header claims 65,000 x 65,000 pixels.

And tests/fixtures/heif/ (tests/heif_decode.rs; needs `pillow-heif` too): flower.jpg at
320 x 213 as HEIC (pillow-heif's x265, quality 90), as AVIF (Pillow's libavif, quality 90)
and as the lossless PNG both must decode close to; photo-alpha.heic with a transparent half;
adobergb.heic, the Adobe RGB (1998) photo of the JPEG fixtures as HEIC with its profile.
"""
import io
import os

import numpy as np
from PIL import Image, ImageCms, ImageOps

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "jpeg")


def sklearn_image(name):
    import sklearn.datasets

    return Image.open(os.path.join(os.path.dirname(sklearn.datasets.__file__), "images", name))


def save(image, name, **options):
    image.save(os.path.join(OUT, name), **options)


# What a camera stores for each orientation, given the upright picture: the inverse of the
# transform the tag asks a viewer to apply (PIL's exif_transpose applies the tag's).
STORED = {
    1: None,
    2: Image.FLIP_LEFT_RIGHT,
    3: Image.ROTATE_180,
    4: Image.FLIP_TOP_BOTTOM,
    5: Image.TRANSPOSE,
    6: Image.ROTATE_90,
    7: Image.TRANSVERSE,
    8: Image.ROTATE_270,
}


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(0)
    china = sklearn_image("china.jpg").convert("RGB")
    photo = china.resize((1600, 1067), Image.BICUBIC)
    pixels = np.asarray(photo, dtype=np.float32) + rng.normal(0, 2, (1067, 1600, 3))
    photo = Image.fromarray(np.clip(pixels + 0.5, 0, 255).astype(np.uint8))
    save(photo, "photo.jpg", quality=90, subsampling=2)
    save(photo, "progressive.jpg", quality=90, subsampling=2, progressive=True)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    save(photo, "icc.jpg", quality=90, subsampling=2, icc_profile=srgb)
    save(photo.convert("L"), "grey.jpg", quality=90)
    adobe_path = "/usr/share/color/icc/compatibleWithAdobeRGB1998.icc"
    small = photo.resize((400, 267), Image.BICUBIC)
    save(small, "srgb-400.png")
    adobe = ImageCms.ImageCmsProfile(adobe_path)
    converted = ImageCms.profileToProfile(small, ImageCms.createProfile("sRGB"), adobe,
                                          renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)
    with open(adobe_path, "rb") as f:
        adobe_bytes = f.read()
    save(converted, "adobergb.jpg", quality=97, subsampling=0, icc_profile=adobe_bytes)
    save(converted, "adobergb.png", icc_profile=adobe_bytes)
    save(converted, "adobergb-raw.png", icc_profile=None)
    with open(os.path.join(OUT, "photo.jpg"), "rb") as f:
        data = f.read()
    with open(os.path.join(OUT, "truncated.jpg"), "wb") as f:
        f.write(data[: len(data) * 6 // 10])

    upright = sklearn_image("flower.jpg").convert("RGB").resize((96, 64), Image.BICUBIC)
    save(upright, "orientation-upright.png")
    for tag, transform in STORED.items():
        stored = upright if transform is None else upright.transpose(transform)
        exif = Image.Exif()
        exif[0x0112] = tag
        save(stored, f"orientation-{tag}.jpg", quality=95, subsampling=0, exif=exif.tobytes())
        # The reference library agrees that the tag undoes the storage.
        check = ImageOps.exif_transpose(Image.open(os.path.join(OUT, f"orientation-{tag}.jpg")))
        assert check.size == upright.size, (tag, check.size)

    colours = [(255, 255, 255), (0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 0, 255), (0, 255, 255),
               (255, 0, 255), (255, 255, 0)]
    blocks = Image.new("RGB", (8 * 16, 16))
    for i, colour in enumerate(colours):
        blocks.paste(colour, (16 * i, 0, 16 * i + 16, 16))
    save(blocks, "cmyk-expected.png")
    save(blocks.convert("CMYK"), "cmyk.jpg", quality=95)
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        program = os.path.join(tmp, "make-ycck-fixture")
        source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "make-ycck-fixture.c")
        subprocess.run(["gcc", "-O2", source, "-o", program, "-ljpeg"], check=True)
        subprocess.run([program, os.path.join(OUT, "ycck.jpg")], check=True)

    tiny = io.BytesIO()
    Image.new("RGB", (8, 8), (90, 90, 90)).save(tiny, "JPEG", quality=90)
    huge = bytearray(tiny.getvalue())
    sof = huge.index(b"\xff\xc0")
    # SOF0: marker, length (2), precision (1), height (2), width (2).
    huge[sof + 5: sof + 9] = (65000).to_bytes(2, "big") + (65000).to_bytes(2, "big")
    with open(os.path.join(OUT, "huge-header.jpg"), "wb") as f:
        f.write(huge)
    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total / 1e3:.0f} kB, to {OUT}")
    heif_fixtures()


def heif_fixtures():
    import pillow_heif

    out = os.path.join(os.path.dirname(OUT), "heif")
    os.makedirs(out, exist_ok=True)
    flower = sklearn_image("flower.jpg").convert("RGB").resize((320, 213), Image.BICUBIC)
    flower.save(os.path.join(out, "flower.png"))
    pillow_heif.from_pillow(flower).save(os.path.join(out, "flower.heic"), quality=90)
    flower.save(os.path.join(out, "flower.avif"), quality=90)
    rgba = flower.convert("RGBA")
    alpha = Image.new("L", flower.size, 255)
    alpha.paste(0, (160, 0, 320, 213))
    rgba.putalpha(alpha)
    pillow_heif.from_pillow(rgba).save(os.path.join(out, "flower-alpha.heic"), quality=90)
    heif_icc_fixture(out)
    print(f"wrote {len(os.listdir(out))} files to {out}")


def heif_icc_fixture(out):
    """adobergb.heic: jpeg/adobergb-raw.png (the photo converted into Adobe RGB (1998)) as HEIC
    with that profile embedded; it must decode back near jpeg/srgb-400.png."""
    import pillow_heif

    with open("/usr/share/color/icc/compatibleWithAdobeRGB1998.icc", "rb") as f:
        adobe_bytes = f.read()
    converted = Image.open(os.path.join(OUT, "adobergb-raw.png")).convert("RGB")
    converted.info["icc_profile"] = adobe_bytes
    heif = pillow_heif.from_pillow(converted)
    heif.save(os.path.join(out, "adobergb.heic"), quality=95, chroma=444)
    check = pillow_heif.open_heif(os.path.join(out, "adobergb.heic"))
    assert check.info.get("icc_profile") == adobe_bytes, "the profile is embedded"


if __name__ == "__main__":
    main()
