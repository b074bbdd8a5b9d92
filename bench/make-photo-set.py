#!/usr/bin/env python3
"""Builds the photo set of `bench/run.sh --cases photos`: camera-like JPEGs made from real
photographs that Debian packages ship, at three sizes, reproducibly (fixed seed, fixed list).

    sudo apt-get install mate-backgrounds palapeli-data plasma-workspace-wallpapers lomiri-wallpapers
    bench/.venv/bin/python bench/make-photo-set.py data/photos [--per-photo 13]

Sources: the 40 photographs (not the renders or paintings) among the packages' wallpapers,
listed in SOURCES below with their package; each package states its images' licences in
/usr/share/doc/<package>/copyright. Nothing of them is committed.

Each source photo is one listing; each of its views is a random crop (40-90 % of the area,
4:3 or 3:4, mirrored half the time) of it, so the views of a listing are natural views of one
scene. Each view is written at three sizes, as JPEG quality 90 with 4:2:0 chroma (a phone
camera's settings), into OUT/12mp (4032 x 3024), OUT/3mp (2016 x 1512) and OUT/1mp
(1152 x 864), listing folders inside:
- the 12 MP copies are *upscaled* re-encodes (the sources are 1.2-17 MP): light Gaussian noise
  (sigma 2 grey levels, one fixed field shifted per view) is added at the target size, as a sensor's, so that the files carry
  about the entropy of camera files (1.5-3 MB) rather than compressing like smooth upscales;
- a quarter of the portrait views are stored sideways with EXIF orientation 6 (as phones store
  them), so the decoders' orientation handling is part of the job.
"""
import argparse
import multiprocessing
import os
import random
import sys

import numpy as np
from PIL import Image

# (package, path): photographs only.
SOURCES = [
    ("lomiri-wallpapers", "/usr/share/backgrounds/" + name) for name in [
        "Bridge_by_Sander_Klootwijk.jpg", "Dragonfly_by_Bolly.jpg", "Kleiber_by_Lukas_Baubkus.jpg",
        "Picture_0B_by_freespace.jpg", "Picture_1A_by_freespace.jpg", "Wine_by_Jakkub_Mede.jpg",
        "aitzgorri_by_Aitzol_Berasategi.jpg", "analogpattern_by_Peter_Nerlich.jpg",
        "free_by_Peter_Nerlich.jpg", "friends_by_Aitzol_Berasategi.jpg",
        "greentock_by_Peter_Nerlich.jpg", "life_by_Aitzol_Berasategi.jpg",
        "picosdeeuropa_by_Aitzol_Berasategi.jpg", "seeding_by_Clements_Engelhardt.jpg",
        "sunset_by_Aitzol_Berasategi.jpg"]
] + [
    ("mate-backgrounds", "/usr/share/backgrounds/mate/nature/" + name) for name in [
        "Aqua.jpg", "Blinds.jpg", "Dune.jpg", "FreshFlower.jpg", "Garden.jpg", "GreenMeadow.jpg",
        "LadyBird.jpg", "RainDrops.jpg", "Storm.jpg", "TwoWings.jpg", "Wood.jpg",
        "YellowFlower.jpg"]
] + [
    ("palapeli-data", "/usr/share/palapeli/collection/" + name) for name in [
        "castle-maintenon.jpg", "cincinnati-bridge.jpg", "citrus-fruits.jpg",
        "european-honey-bee.jpg", "panther-chameleon-female.jpg"]
] + [
    ("plasma-workspace-wallpapers", f"/usr/share/wallpapers/{name}/contents/images/2560x1600.jpg")
    for name in ["BytheWater", "ColdRipple", "DarkestHour", "EveningGlow", "FallenLeaf", "Path",
                 "summer_1am", "Grey"]
]

SIZES = {"12mp": (4032, 3024), "3mp": (2016, 1512), "1mp": (1152, 864)}


def crop_box(rng, width, height, portrait):
    """A random crop of 40-90 % of the area with the aspect 4:3 (3:4 for portrait)."""
    aspect = 3 / 4 if portrait else 4 / 3
    for _ in range(100):
        area = width * height * rng.uniform(0.4, 0.9)
        w = int(round((area * aspect) ** 0.5))
        h = int(round(w / aspect))
        if w <= width and h <= height:
            x = rng.randint(0, width - w)
            y = rng.randint(0, height - h)
            return (x, y, x + w, y + h)
    # The largest box of that aspect, centred.
    w = min(width, int(height * aspect))
    h = int(w / aspect)
    return ((width - w) // 2, (height - h) // 2, (width - w) // 2 + w, (height - h) // 2 + h)


NOISE = None


def noise_field():
    """One fixed field of sensor-like noise (sigma 2), shifted by up to 1000 pixels per view."""
    global NOISE
    if NOISE is None:
        rng = np.random.default_rng(0)
        NOISE = np.round(rng.normal(0, 2, (5032, 5032, 3))).astype(np.int8)
    return NOISE


def make_listing(job):
    """Writes every view of source `index` at every size; the views' randomness is seeded by
    the source's index, so the set does not depend on the order the sources are made in."""
    index, out, per_photo, sizes = job
    path = SOURCES[index][1]
    rng = random.Random(index)
    source = Image.open(path).convert("RGB")
    listing = f"{index:02d}-" + os.path.splitext(os.path.basename(path))[0].split("_by_")[0]
    written = 0
    for view in range(per_photo):
        portrait = rng.random() < 0.3
        box = crop_box(rng, *source.size, portrait)
        mirrored = rng.random() < 0.5
        sideways = portrait and rng.random() < 0.25
        shift = (rng.randrange(0, 1000), rng.randrange(0, 1000))
        for size_name in sizes:
            width, height = SIZES[size_name]
            if portrait:
                width, height = height, width
            image = source.resize((width, height), Image.BICUBIC, box=box)
            if mirrored:
                image = image.transpose(Image.FLIP_LEFT_RIGHT)
            if size_name == "12mp":
                noise = noise_field()[shift[1]:shift[1] + height, shift[0]:shift[0] + width]
                pixels = np.asarray(image, dtype=np.int16) + noise.astype(np.int16)
                image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
            exif = Image.Exif()
            if sideways:
                # Stored a quarter turn anticlockwise; orientation 6 turns it back.
                image = image.transpose(Image.ROTATE_90)
                exif[0x0112] = 6
            folder = os.path.join(out, size_name, listing)
            os.makedirs(folder, exist_ok=True)
            image.save(os.path.join(folder, f"view-{view:02d}.jpg"), quality=90,
                       subsampling=2, exif=exif.tobytes())
            written += 1
    return listing, written


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out")
    parser.add_argument("--per-photo", type=int, default=13, help="views per source (13: 520)")
    parser.add_argument("--sizes", default=",".join(SIZES), help="which of 12mp,3mp,1mp")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    missing = sorted({pkg for pkg, path in SOURCES if not os.path.isfile(path)})
    if missing:
        sys.exit("missing source photographs; install: sudo apt-get install " + " ".join(missing))
    sizes = [s for s in args.sizes.split(",") if s]
    jobs = [(i, args.out, args.per_photo, sizes) for i in range(len(SOURCES))]
    written = 0
    with multiprocessing.Pool(args.jobs) as pool:
        for done, (listing, n) in enumerate(pool.imap_unordered(make_listing, jobs), 1):
            written += n
            print(f"{done}/{len(SOURCES)} {listing}", file=sys.stderr)
    print(f"wrote {written} JPEGs ({len(SOURCES)} listings x {args.per_photo} views x "
          f"{len(sizes)} sizes) to {args.out}")


if __name__ == "__main__":
    main()
