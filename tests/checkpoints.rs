//! Checkpoints as the libraries and frameworks write them (tests/fixtures/checkpoints, made by
//! scripts/make-checkpoint-fixtures.py with torch, torchvision, timm, Lightning, lightly and
//! classy-vision): each opens with `--weights` alone and gives its library's embeddings of the
//! same preprocessed inputs (cosine ≥ 0.9999), and natview says what it found.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use candle_core::{Device, Tensor};
use natview::encoder::{checkpoint, Encoder, EncoderSpec};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/checkpoints")
}

struct Case {
    file: String,
    family: String,
    prefix: String,
    dim: usize,
    outputs: String,
}

fn cases() -> (Tensor, Vec<Case>) {
    let text = std::fs::read_to_string(fixtures().join("cases.json")).expect("cases.json");
    let json: serde_json::Value = serde_json::from_str(&text).expect("json");
    let inputs = natview_core_npy(&fixtures().join(json["inputs"].as_str().expect("inputs")));
    let inputs = Tensor::from_vec(inputs.data, inputs.shape, &Device::Cpu).expect("tensor");
    let cases = json["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| Case {
            file: c["file"].as_str().expect("file").into(),
            family: c["family"].as_str().expect("family").into(),
            prefix: c["prefix"].as_str().expect("prefix").into(),
            dim: c["dim"].as_u64().expect("dim") as usize,
            outputs: c["outputs"].as_str().expect("outputs").into(),
        })
        .collect();
    (inputs, cases)
}

fn natview_core_npy(path: &Path) -> natview::npy::Array {
    natview::npy::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

#[test]
fn every_framework_checkpoint_opens_and_matches_its_library() {
    let (inputs, cases) = cases();
    assert!(cases.len() >= 7, "{} cases", cases.len());
    for case in &cases {
        let path = fixtures().join(&case.file);
        let info = checkpoint::inspect(&path, None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(info.prefix, case.prefix, "{}: {}", case.file, info.summary);
        assert!(
            info.summary.starts_with(&case.family),
            "{}: {}",
            case.file,
            info.summary
        );
        let spec = EncoderSpec::checkpoint(&path, None, Some(64)).expect("spec");
        let encoder = Encoder::new(&spec, &Device::Cpu).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(encoder.dim(), case.dim, "{}", case.file);
        let ours = encoder.embed_input(&inputs).expect("embeds");
        let reference = natview_core_npy(&fixtures().join(&case.outputs));
        for (i, row) in ours.iter().enumerate() {
            let theirs = &reference.data[i * case.dim..(i + 1) * case.dim];
            let cos = cosine(row, theirs);
            assert!(cos >= 0.9999, "{} input {i}: cosine {cos}", case.file);
        }
        println!("{}: {}", case.file, encoder.summary());
    }
}
