//! HEIC/HEIF and AVIF (tests/fixtures/heif, made by scripts/make-jpeg-fixtures.py with
//! pillow-heif's x265 and Pillow's libavif from a real photograph): with the `heif` feature
//! they decode close to the lossless original (alpha over white, an embedded colour profile
//! converted to sRGB); without it a dataset lists
//! them and the embedding run skips each with a message naming the feature.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use natview::dataset::decode_rgb;
use std::path::{Path, PathBuf};

mod common;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/heif")
        .join(name)
}

#[cfg(feature = "heif")]
#[test]
fn heic_and_avif_decode_close_to_the_original() {
    let original = image::open(fixture("flower.png")).expect("png").into_rgb8();
    for name in ["flower.heic", "flower.avif"] {
        let decoded = decode_rgb(&fixture(name), 64).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(decoded.dimensions(), original.dimensions(), "{name}");
        let mean = common::mean_abs_diff(&decoded, &original);
        assert!(mean < 6.0, "{name}: {mean:.1} grey levels off");
    }
    // The transparent right half is composited over white.
    let alpha = decode_rgb(&fixture("flower-alpha.heic"), 64).expect("decodes");
    let p = alpha.get_pixel(300, 100).0;
    assert!(p.iter().all(|&c| c >= 245), "{p:?}");
}

/// A HEIC with an Adobe RGB (1998) profile decodes to sRGB — near the sRGB original, not its
/// raw values — and to its raw values when profiles are ignored.
#[cfg(feature = "heif")]
#[test]
fn a_heic_colour_profile_is_converted_to_srgb_unless_ignored() {
    use natview::dataset::{decode_rgb_covering_with, DecodeOptions};
    let jpeg_fixture = |name: &str| {
        image::open(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/jpeg")
                .join(name),
        )
        .expect("png")
        .into_rgb8()
    };
    let (original, raw) = (
        jpeg_fixture("srgb-400.png"),
        jpeg_fixture("adobergb-raw.png"),
    );
    let decode = |options| {
        decode_rgb_covering_with(&fixture("adobergb.heic"), 64, 0, options)
            .expect("decodes")
            .image
    };
    let converted = decode(DecodeOptions::APPLY_ALL);
    let to_original = common::mean_abs_diff(&converted, &original);
    let to_raw = common::mean_abs_diff(&converted, &raw);
    assert!(
        to_original < 2.5 && to_original < to_raw,
        "{to_original:.2} vs raw {to_raw:.2}"
    );
    let ignored = decode(DecodeOptions::AS_PIL);
    assert!(common::mean_abs_diff(&ignored, &raw) < common::mean_abs_diff(&ignored, &original));
}

#[cfg(not(feature = "heif"))]
#[test]
fn without_the_feature_heic_files_are_skipped_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 2);
    let listing = common::first_listing(&root);
    std::fs::copy(fixture("flower.heic"), listing.join("phone.heic")).expect("copy");
    let out = common::natview(
        &["embed", root.to_str().expect("utf-8"), "--model", "compact"],
        dir.path(),
    );
    let stderr = common::text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("phone.heic") && stderr.contains("`heif` feature"),
        "{stderr}"
    );
    let err = decode_rgb(&fixture("flower.heic"), 64).expect_err("needs the feature");
    assert!(err.to_string().contains("`heif` feature"), "{err}");
}
