//! JPEG decoding (tests/fixtures/jpeg, made by scripts/make-jpeg-fixtures.py from the real
//! photographs in scikit-learn's wheel): scaled decoding covers what is asked and stays close
//! to full decoding (pixels and embeddings), EXIF orientations 1–8 come out upright, CMYK, YCCK
//! and grey files become RGB, progressive files decode as the plain one, embedded ICC profiles are
//! converted to sRGB (both can be turned off, as PIL reads files), and a truncated file or a
//! hostile header is refused with a message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use common::mean_abs_diff;
use natview::dataset::{decode_rgb, decode_rgb_covering, decode_rgb_covering_with, DecodeOptions};
use natview::encoder::{Encoder, EncoderSpec, ModelKind};
use std::path::{Path, PathBuf};

mod common;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jpeg")
        .join(name)
}

#[test]
fn scaled_decoding_covers_the_need_and_stays_close_to_full_decoding() {
    let photo = fixture("photo.jpg");
    let full = decode_rgb(&photo, 64).expect("decodes");
    assert_eq!(full.dimensions(), (1600, 1067));
    // Decoded at the smallest scale at least twice the target side.
    let for_input = decode_rgb_covering(&photo, 64, 224).expect("decodes").image;
    assert_eq!(for_input.dimensions(), (800, 534), "1/2 covers 2 × 224");
    let for_thumbnail = decode_rgb_covering(&photo, 64, 64).expect("decodes").image;
    assert_eq!(for_thumbnail.dimensions(), (200, 134), "1/8 covers 2 × 64");

    // The model's input made from each: close in pixels and in the embedding.
    let spec = EncoderSpec::pretrained(ModelKind::EffnetLite0).expect("shipped weights");
    let encoder = Encoder::new(&spec, &candle_core::Device::Cpu).expect("encoder");
    let from_full = encoder.prepare(&full);
    let from_scaled = encoder.prepare(&for_input);
    let diff = mean_abs_diff(&from_full, &from_scaled);
    assert!(diff < 2.0, "mean difference {diff:.2} grey levels");
    let (rows, _) = encoder
        .embed_clustered_prepared(&[from_full, from_scaled])
        .expect("embeds");
    let cos = common::cosine(&rows[0], &rows[1]);
    assert!(cos >= 0.997, "cosine {cos}");
    println!("1/2-scale vs full decode: {diff:.2} grey levels, embedding cosine {cos:.5}");
}

#[test]
fn every_exif_orientation_comes_out_upright() {
    let upright = image::open(fixture("orientation-upright.png"))
        .expect("reference")
        .into_rgb8();
    for tag in 1..=8 {
        let decoded = decode_rgb(&fixture(&format!("orientation-{tag}.jpg")), 64).expect("decodes");
        assert_eq!(
            decoded.dimensions(),
            upright.dimensions(),
            "orientation {tag}"
        );
        let diff = mean_abs_diff(&decoded, &upright);
        assert!(diff < 6.0, "orientation {tag}: {diff:.1} grey levels off");
        // Scaled decoding turns it upright too.
        let small = decode_rgb_covering(&fixture(&format!("orientation-{tag}.jpg")), 64, 16)
            .expect("decodes")
            .image;
        assert_eq!(small.dimensions(), (48, 32), "orientation {tag} at 1/2");
    }
}

#[test]
fn cmyk_and_grey_files_become_rgb() {
    let expected = image::open(fixture("cmyk-expected.png"))
        .expect("reference")
        .into_rgb8();
    // Pillow's CMYK (Adobe marker, inverted inks) and Photoshop-style YCCK.
    for name in ["cmyk.jpg", "ycck.jpg"] {
        let decoded = decode_rgb(&fixture(name), 64).expect("decodes");
        assert_eq!(decoded.dimensions(), expected.dimensions());
        for block in 0..8 {
            let (x, y) = (16 * block + 8, 8);
            let (got, want) = (decoded.get_pixel(x, y).0, expected.get_pixel(x, y).0);
            for c in 0..3 {
                assert!(
                    got[c].abs_diff(want[c]) <= 8,
                    "{name} block {block}: {got:?} ≠ {want:?}"
                );
            }
        }
    }
    let grey = decode_rgb(&fixture("grey.jpg"), 64).expect("decodes");
    assert_eq!(grey.dimensions(), (1600, 1067));
    assert!(grey.pixels().all(|p| p[0] == p[1] && p[1] == p[2]));
}

#[test]
fn progressive_and_icc_tagged_files_decode_as_the_plain_one() {
    let plain = decode_rgb(&fixture("photo.jpg"), 64).expect("decodes");
    let progressive = decode_rgb(&fixture("progressive.jpg"), 64).expect("decodes");
    assert!(mean_abs_diff(&plain, &progressive) < 0.5);
    let scaled = decode_rgb_covering(&fixture("progressive.jpg"), 64, 32).expect("decodes");
    assert_eq!(scaled.image.dimensions(), (200, 134));
    // An sRGB profile converted to sRGB leaves the picture as it is.
    let tagged = decode_rgb(&fixture("icc.jpg"), 64).expect("decodes");
    assert!(mean_abs_diff(&plain, &tagged) < 0.5);
}

/// A wide-gamut file (Adobe RGB (1998), a real profile embedded, as cameras write them) is
/// converted to sRGB: it decodes back to the sRGB original, not to its raw values.
#[test]
fn icc_profiles_are_converted_to_srgb() {
    let original = image::open(fixture("srgb-400.png"))
        .expect("png")
        .into_rgb8();
    let raw = image::open(fixture("adobergb-raw.png"))
        .expect("png")
        .into_rgb8();
    let raw_off = mean_abs_diff(&raw, &original);
    assert!(raw_off > 2.0, "the profile must matter: {raw_off:.2}");
    // The JPEG (quality 97) adds its own compression error to the PNG's conversion error.
    for (name, tolerance) in [("adobergb.png", 1.0), ("adobergb.jpg", 2.0)] {
        let decoded = decode_rgb(&fixture(name), 64).expect("decodes");
        let off = mean_abs_diff(&decoded, &original);
        assert!(
            off < tolerance,
            "{name}: {off:.2} grey levels from the sRGB original"
        );
        let from_raw = mean_abs_diff(&decoded, &raw);
        assert!(
            off < from_raw,
            "{name}: nearer its raw values ({from_raw:.2}) than the original"
        );
        println!("{name}: {off:.2} from the original (its raw values: {raw_off:.2})");
    }
    // Scaled decoding converts too.
    let scaled = decode_rgb_covering(&fixture("adobergb.jpg"), 64, 64).expect("decodes");
    assert_eq!(scaled.image.dimensions(), (200, 134));
}

/// `DecodeOptions::AS_PIL` reads the stored pixels as PIL does by default: a sideways-stored
/// portrait stays sideways, an Adobe RGB file keeps its raw values; each option alone turns off
/// only its own step.
#[test]
fn orientation_and_profiles_can_be_ignored_as_pil_does() {
    let decode = |name: &str, options| {
        decode_rgb_covering_with(&fixture(name), 64, 0, options)
            .expect("decodes")
            .image
    };
    let upright = decode("orientation-6.jpg", DecodeOptions::APPLY_ALL);
    let stored = decode("orientation-6.jpg", DecodeOptions::AS_PIL);
    assert_eq!(
        stored.dimensions(),
        (upright.height(), upright.width()),
        "stored sideways"
    );
    let pil = image::open(fixture("orientation-6.jpg"))
        .expect("image crate")
        .into_rgb8();
    assert_eq!(stored.dimensions(), pil.dimensions());
    assert!(mean_abs_diff(&stored, &pil) < 2.0);

    let raw = image::open(fixture("adobergb-raw.png"))
        .expect("png")
        .into_rgb8();
    let original = image::open(fixture("srgb-400.png"))
        .expect("png")
        .into_rgb8();
    for name in ["adobergb.png", "adobergb.jpg"] {
        let ignored = decode(name, DecodeOptions::AS_PIL);
        let converted = decode(name, DecodeOptions::APPLY_ALL);
        assert!(
            mean_abs_diff(&ignored, &raw) < mean_abs_diff(&ignored, &original),
            "{name}: without its profile the raw values"
        );
        assert!(mean_abs_diff(&converted, &original) < mean_abs_diff(&converted, &raw));
    }
    let only_orientation_off = DecodeOptions {
        orientation: false,
        colour_profile: true,
    };
    assert_eq!(
        decode("orientation-6.jpg", only_orientation_off).dimensions(),
        stored.dimensions()
    );
    let converted = decode("adobergb.jpg", only_orientation_off);
    assert!(
        mean_abs_diff(&converted, &original) < 2.0,
        "profile still applied"
    );
}

#[test]
fn truncated_files_and_hostile_headers_are_refused_with_a_message() {
    let err = decode_rgb(&fixture("truncated.jpg"), 64).expect_err("truncated");
    let text = err.to_string();
    assert!(
        text.contains("JPEG") && text.contains("Premature end"),
        "{text}"
    );
    let started = std::time::Instant::now();
    let err = decode_rgb_covering(&fixture("huge-header.jpg"), 64, 64).expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains("65000 × 65000") && text.contains("limit"),
        "{text}"
    );
    assert!(started.elapsed().as_secs() < 2, "refused before decoding");
}
