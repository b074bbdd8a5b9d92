#!/usr/bin/env python3
"""Renders natview's "multiview" dataset: several camera angles of the same 3-D object.

Each of pybullet's 1,000 random meshes (pybullet_data/random_urdfs/000-999, zlib licence) is
one listing; it is given one saturated colour and photographed from 8 named camera kinds, like
the photos of a marketplace listing. The camera kind is a manifest column, so a whole kind of
view (e.g. `camera=top`) can be held out as queries.

    OUT/images/object-042/front-left.png   RGB, SIZE x SIZE, light-grey background
    OUT/manifest.csv                       path,listing,label,camera,yaw,pitch,distance
    OUT/licenses/pybullet.LICENSE

Objects whose mesh does not render (random_urdfs/168 has only NaN vertices) are left out, so
the full set has 999 listings (object-168 is missing). label is the colour name of the object
(a coarse label, 10 names, ~100 objects each). Everything is drawn from --seed, so a rerun gives
the same files. Rendering uses pybullet's CPU renderer (ER_TINY_RENDERER) in DIRECT mode; images
are drawn at 2x and box-filtered down (anti-aliasing).

Usage: render_multiview.py --out DIR [--objects 1000] [--views 8] [--size 160] [--seed 0]
"""
import argparse
import colorsys
import csv
import math
import os
import shutil
import sys
import time

import numpy as np
import pybullet as p
import pybullet_data
from PIL import Image

# Camera kinds: (name, nominal yaw in degrees, pitch range in degrees). Yaw 0 is "front".
CAMERAS = [
    ("front", 0.0, (-15.0, -40.0)),
    ("front-left", 45.0, (-15.0, -40.0)),
    ("left", 90.0, (-15.0, -40.0)),
    ("back-left", 135.0, (-15.0, -40.0)),
    ("back", 180.0, (-15.0, -40.0)),
    ("back-right", 225.0, (-15.0, -40.0)),
    ("right", 270.0, (-15.0, -40.0)),
    ("top", None, (-72.0, -78.0)),  # looks down; yaw anywhere
]

# Named colours: (label, hue in degrees). Each object gets one, with a little hue, saturation
# and value jitter; the hue centres are >= 30 degrees apart so the name stays unambiguous.
COLOURS = [
    ("red", 0.0),
    ("orange", 30.0),
    ("yellow", 55.0),
    ("lime", 90.0),
    ("green", 125.0),
    ("teal", 170.0),
    ("blue", 215.0),
    ("violet", 265.0),
    ("magenta", 300.0),
    ("pink", 335.0),
]

BACKGROUND = np.array([214, 214, 214], dtype=np.float32)  # neutral light grey
FOV = 40.0  # vertical field of view, degrees
# The bounding sphere's diameter spans FILL of the frame at the nominal distance (objects then
# span ~65 % median, 50-80 %); at the closest distance (x0.85) the sphere still fits:
# asin(r/d) < FOV/2, so nothing is clipped.
FILL = 0.78
SUPERSAMPLE = 2


def object_colour(index, seed):
    rng = np.random.default_rng([seed, 7919, index])
    name, hue = COLOURS[int(rng.integers(len(COLOURS)))]
    hue = (hue + rng.uniform(-8.0, 8.0)) % 360.0
    sat = rng.uniform(0.75, 0.95)
    val = rng.uniform(0.75, 0.95)
    r, g, b = colorsys.hsv_to_rgb(hue / 360.0, sat, val)
    return name, [r, g, b, 1.0]


def view_params(index, seed, nviews):
    """Yields (camera, yaw, pitch, distance factor, light direction) for each view of one object."""
    rng = np.random.default_rng([seed, 104729, index])
    base_yaw = rng.uniform(-20.0, 20.0)  # the object's "front" is not exactly axis aligned
    for name, yaw, (p0, p1) in CAMERAS[:nviews]:
        if yaw is None:
            yaw = rng.uniform(0.0, 360.0)
        else:
            yaw = base_yaw + yaw + rng.uniform(-12.0, 12.0)
        pitch = rng.uniform(min(p0, p1), max(p0, p1))
        dist = rng.uniform(0.85, 1.15)
        # light from above, from a direction around the camera's side (world frame)
        la = math.radians(yaw + rng.uniform(-110.0, 110.0))
        le = math.radians(rng.uniform(30.0, 75.0))
        light = [math.cos(le) * math.sin(la), -math.cos(le) * math.cos(la), math.sin(le)]
        yield name, yaw % 360.0, pitch, dist, light


def bounds(body):
    """(centre of the mesh's axis-aligned bounding box, radius of the sphere about it that holds
    every vertex); radius 0 for a broken mesh. Tighter than pybullet's getAABB, which adds the
    collision margin."""
    _, verts = p.getMeshData(body, -1)
    v = np.asarray(verts, dtype=np.float64).reshape(-1, 3)
    if len(v) < 4 or not np.isfinite(v).all() or np.abs(v).max() > 1e3:
        return [0.0, 0.0, 0.0], 0.0
    centre = (v.min(axis=0) + v.max(axis=0)) / 2.0
    return centre.tolist(), float(np.linalg.norm(v - centre, axis=1).max())


def render(body, target, radius, yaw, pitch, dist_factor, light, size):
    distance = radius / (FILL * math.tan(math.radians(FOV / 2.0))) * dist_factor
    view = p.computeViewMatrixFromYawPitchRoll(target, distance, yaw, pitch, 0.0, 2)
    near = max(distance - 1.5 * radius, 1e-3)
    proj = p.computeProjectionMatrixFOV(FOV, 1.0, near, distance + 1.5 * radius)
    big = size * SUPERSAMPLE
    _, _, rgba, _, seg = p.getCameraImage(
        big, big, view, proj,
        lightDirection=light, lightColor=[1.0, 1.0, 1.0], lightDistance=10.0,
        lightAmbientCoeff=0.45, lightDiffuseCoeff=0.6, lightSpecularCoeff=0.15,
        shadow=0, renderer=p.ER_TINY_RENDERER)
    rgb = np.asarray(rgba, dtype=np.uint8).reshape(big, big, 4)[:, :, :3].astype(np.float32)
    mask = (np.asarray(seg).reshape(big, big) == body).astype(np.float32)[:, :, None]
    img = rgb * mask + BACKGROUND * (1.0 - mask)
    img = img.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE, 3).mean(axis=(1, 3))
    out = Image.fromarray(np.clip(img + 0.5, 0, 255).astype(np.uint8), "RGB")
    return out, distance, float(mask.mean())


def save_png(img, path):
    tmp = path + ".tmp"
    img.save(tmp, format="PNG", optimize=True)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--objects", type=int, default=1000)
    ap.add_argument("--views", type=int, default=8)
    ap.add_argument("--size", type=int, default=160)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not 1 <= args.views <= len(CAMERAS):
        ap.error(f"--views must be 1..{len(CAMERAS)}")
    if not 1 <= args.objects <= 1000:
        ap.error("--objects must be 1..1000")

    data = pybullet_data.getDataPath()
    os.makedirs(os.path.join(args.out, "images"), exist_ok=True)
    os.makedirs(os.path.join(args.out, "licenses"), exist_ok=True)
    lic = pybullet_licence()
    if lic:
        shutil.copyfile(lic, os.path.join(args.out, "licenses", "pybullet.LICENSE"))
    else:
        print("warning: pybullet's LICENSE file not found in its installed distribution", file=sys.stderr)

    p.connect(p.DIRECT)
    rows = []
    skipped = []
    t0 = time.time()
    for i in range(args.objects):
        p.resetSimulation()
        urdf = os.path.join(data, "random_urdfs", f"{i:03d}", f"{i:03d}.urdf")
        body = p.loadURDF(urdf, [0, 0, 0], useFixedBase=True)
        label, rgba = object_colour(i, args.seed)
        p.changeVisualShape(body, -1, rgbaColor=rgba, specularColor=[0.3, 0.3, 0.3])
        target, radius = bounds(body)
        listing = f"object-{i:03d}"
        folder = os.path.join(args.out, "images", listing)
        views = []
        if radius > 0:
            for camera, yaw, pitch, dist_factor, light in view_params(i, args.seed, args.views):
                img, distance, covered = render(body, target, radius, yaw, pitch, dist_factor, light, args.size)
                if covered < 1e-4:  # nothing drawn (thin objects edge-on still cover ~0.5%)
                    break
                views.append((camera, yaw, pitch, distance, img))
        if len(views) < args.views:
            # a few meshes are broken (e.g. 168.obj has only NaN vertices): leave the object out
            skipped.append(listing)
            print(f"skipping {listing}: its mesh does not render (broken {os.path.basename(urdf)})", flush=True)
            shutil.rmtree(folder, ignore_errors=True)
            continue
        os.makedirs(folder, exist_ok=True)
        for camera, yaw, pitch, distance, img in views:
            save_png(img, os.path.join(folder, camera + ".png"))
            rows.append([f"images/{listing}/{camera}.png", listing, label, camera,
                         f"{yaw:.1f}", f"{pitch:.1f}", f"{distance:.4f}"])
        if (i + 1) % 25 == 0 or i + 1 == args.objects:
            el = time.time() - t0
            n = len(rows)
            print(f"{i + 1}/{args.objects} objects, {n} images, {el:.0f} s ({el / n:.3f} s/image)", flush=True)
    p.disconnect()

    tmp = os.path.join(args.out, "manifest.csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["path", "listing", "label", "camera", "yaw", "pitch", "distance"])
        w.writerows(rows)
    os.replace(tmp, os.path.join(args.out, "manifest.csv"))
    kept = args.objects - len(skipped)
    print(f"wrote {len(rows)} images of {kept} objects to {args.out}"
          + (f" (left out {len(skipped)} broken: {', '.join(skipped)})" if skipped else ""))


def pybullet_licence():
    """The zlib LICENSE file of the installed pybullet distribution (its .dist-info)."""
    from importlib.metadata import distribution
    dist = distribution("pybullet")
    for f in dist.files or []:
        if os.path.basename(str(f)).upper().startswith("LICENSE") and ".dist-info" in str(f):
            path = str(dist.locate_file(f))
            if os.path.exists(path):
                return path
    return None


if __name__ == "__main__":
    main()
