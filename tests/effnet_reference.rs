//! The shipped EfficientNet-Lite0 and -Lite2 against PyTorch: `tests/fixtures/effnet-<variant>-
//! reference.json` holds the pooled features and ImageNet top-5 that the PyTorch package
//! computed on the 224 px photos in `tests/fixtures/photos/` (made by `scripts/convert-weights.sh
//! [--variant lite2] --reference`; Lite2 runs at 224 px there and here). natview must give the
//! same embeddings (cosine ≥ 0.9999 per image) and the same top-1 class.

// Tests may unwrap and expect: a failed test is the error report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use candle_core::Device;
use natview::dataset::decode_rgb;
use natview::encoder::{Encoder, EncoderSpec, ModelKind};
use std::path::Path;

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

/// Checks the shipped `model` against its reference file at 224 px; the photos' top-1 class
/// names by file.
fn matches_pytorch(model: ModelKind) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(fixtures().join(format!("{}-reference.json", model.name())))
        .expect("reference file");
    let reference: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(reference["normalisation"], "(x-127)/128");
    let spec = EncoderSpec {
        input_size_px: 224,
        ..EncoderSpec::pretrained(model).expect("shipped weights")
    };
    assert!(spec.weights.is_some(), "{} is shipped", model.name());
    let encoder = Encoder::new(&spec, &Device::Cpu).expect("encoder");
    let classes: Vec<String> = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("models/imagenet-classes.txt"),
    )
    .expect("class names")
    .lines()
    .map(String::from)
    .collect();
    assert_eq!(classes.len(), 1000);

    let entries = reference["images"].as_array().expect("images");
    assert!(entries.len() >= 6);
    let images: Vec<_> = entries
        .iter()
        .map(|e| {
            let file = e["file"].as_str().expect("file");
            decode_rgb(&fixtures().join("photos").join(file), 224).expect("decodes")
        })
        .collect();
    let embeddings = encoder.embed(&images).expect("embeds");
    let logits = encoder
        .logits(&images)
        .expect("classifies")
        .expect("the shipped weights have the ImageNet head");
    for ((entry, ours), logits) in entries.iter().zip(&embeddings).zip(&logits) {
        let file = entry["file"].as_str().unwrap_or("?");
        let theirs: Vec<f32> = entry["embedding"]
            .as_array()
            .expect("embedding")
            .iter()
            .map(|v| v.as_f64().expect("number") as f32)
            .collect();
        assert_eq!(ours.len(), 1280);
        let c = cosine(ours, &theirs);
        assert!(c >= 0.9999, "{file}: cosine {c} with PyTorch");
        let top1 = logits
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i)
            .expect("logits");
        let expected = entry["top5"][0].as_u64().expect("top-1") as usize;
        assert_eq!(
            top1, expected,
            "{file}: top-1 {} vs PyTorch's {}",
            classes[top1], classes[expected]
        );
        for (i, want) in entry["logits_first8"]
            .as_array()
            .expect("logits")
            .iter()
            .enumerate()
        {
            let want = want.as_f64().expect("number") as f32;
            assert!(
                (logits[i] - want).abs() < 1e-3 * want.abs().max(1.0),
                "{file}: logit {i}"
            );
        }
    }
    entries
        .iter()
        .zip(&logits)
        .map(|(entry, logits)| {
            let top1 = logits
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .map_or(0, |(c, _)| c);
            (
                entry["file"].as_str().unwrap_or("?").to_string(),
                classes[top1].clone(),
            )
        })
        .collect()
}

/// The class natview's top-1 names for `file`.
fn named(top1: &[(String, String)], file: &str) -> String {
    top1.iter()
        .find(|(f, _)| f == file)
        .map(|(_, class)| class.clone())
        .expect("photo listed")
}

#[test]
fn shipped_effnet_lite0_matches_pytorch_on_real_photos() {
    let top1 = matches_pytorch(ModelKind::EffnetLite0);
    let named = |file: &str| named(&top1, file);
    // The photos are recognised, not merely reproduced: a cat, an espresso, a daisy.
    assert!(
        named("chelsea.png").contains("cat"),
        "{}",
        named("chelsea.png")
    );
    assert!(
        named("coffee.png").contains("espresso"),
        "{}",
        named("coffee.png")
    );
    assert!(
        named("flower.png").contains("daisy"),
        "{}",
        named("flower.png")
    );
}

#[test]
fn shipped_effnet_lite2_matches_pytorch_on_real_photos() {
    let top1 = matches_pytorch(ModelKind::EffnetLite2);
    // Recognised too (at 224 px, under its 260: the daisy reads as a honeycomb, as in PyTorch).
    assert!(named(&top1, "chelsea.png").contains("cat"));
    assert!(named(&top1, "coffee.png").contains("espresso"));
}
