//! Vision transformers as their libraries save them (tests/fixtures/vit, made by
//! scripts/make-vit-fixtures.py with transformers, timm and open_clip): Hugging Face folders
//! (DINOv2 with and without registers, sharded, bf16; ViT as a hub cache repository; CLIP;
//! SigLIP), timm state dicts and an open_clip training checkpoint open with `--weights` alone
//! and give their library's embeddings of the same preprocessed inputs (cosine ≥ 0.9999), at
//! the size their positions were trained for and at another, where the library resamples them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use candle_core::{Device, Tensor};
use natview::encoder::{checkpoint, Encoder, EncoderSpec};
use std::path::{Path, PathBuf};

mod common;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vit")
}

fn npy(name: &str) -> natview::npy::Array {
    let path = fixtures().join(name);
    natview::npy::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn cases() -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(fixtures().join("cases.json")).expect("cases.json");
    let json: serde_json::Value = serde_json::from_str(&text).expect("json");
    json["cases"].as_array().expect("cases").clone()
}

#[test]
fn every_transformer_opens_and_matches_its_library_at_two_sizes() {
    let cases = cases();
    assert!(cases.len() >= 8, "{} cases", cases.len());
    for case in &cases {
        let name = case["name"].as_str().expect("name");
        let path = fixtures().join(case["path"].as_str().expect("path"));
        let info = checkpoint::inspect(&path, None).unwrap_or_else(|e| panic!("{name}: {e}"));
        let family = case["family"].as_str().expect("family");
        assert!(
            info.summary.starts_with(family),
            "{name}: `{}` is not `{family}`",
            info.summary
        );
        if let Some(size) = case["input_size"].as_u64() {
            assert_eq!(
                u64::from(info.input_size_px),
                size,
                "{name}: {}",
                info.preprocessing
            );
        }
        let spec = EncoderSpec::checkpoint(&path, None, None).expect("spec");
        let encoder = Encoder::new(&spec, &Device::Cpu).unwrap_or_else(|e| panic!("{name}: {e}"));
        let dim = case["dim"].as_u64().expect("dim") as usize;
        assert_eq!(encoder.dim(), dim, "{name}");
        for run in case["runs"].as_array().expect("runs") {
            let inputs = npy(run["inputs"].as_str().expect("inputs"));
            let inputs = Tensor::from_vec(inputs.data, inputs.shape, &Device::Cpu).expect("tensor");
            let ours = encoder.embed_input(&inputs).expect("embeds");
            let theirs = npy(run["outputs"].as_str().expect("outputs"));
            for (i, row) in ours.iter().enumerate() {
                let cos = common::cosine(row, &theirs.data[i * dim..(i + 1) * dim]);
                assert!(
                    cos >= 0.9999,
                    "{name} at {} px, input {i}: cosine {cos}",
                    run["size"]
                );
            }
        }
        println!("{name}: {}; {}", info.summary, info.preprocessing);
    }
}

/// `natview embed DATASET --weights FOLDER` takes a Hugging Face folder, and a hub cache
/// repository folder, as they are.
#[test]
fn embed_takes_hugging_face_folders() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = common::demo_slice(dir.path(), 4);
    for (folder, expected) in [
        (
            "hf-clip",
            "CLIP ViT-2×64/8 image tower (Hugging Face layout)",
        ),
        (
            "hf-cache/models--natview--tiny-vit",
            "ViT-2×64/8 (Hugging Face layout)",
        ),
    ] {
        let weights = fixtures().join(folder);
        let out = common::natview(
            &[
                "embed",
                data.to_str().expect("utf-8"),
                "--weights",
                weights.to_str().expect("utf-8"),
            ],
            dir.path(),
        );
        let stderr = common::text(&out.stderr);
        assert!(out.status.success(), "{folder}: {stderr}");
        assert!(stderr.contains(expected), "{folder}: {stderr}");
        assert!(
            stderr.contains("preprocessor_config.json") || folder.contains("cache"),
            "{stderr}"
        );
        assert!(stderr.contains("embeddings: "), "{stderr}");
    }
}

/// `--pool both` gives DINOv2's linear-probe feature (the class token beside the patch mean,
/// twice as wide, the class token as the library's); a pooling the network cannot do is refused.
#[test]
fn pooling_can_be_chosen_where_the_network_allows_it() {
    let case = cases()
        .into_iter()
        .find(|c| c["name"] == "hf-dinov2")
        .expect("hf-dinov2");
    let path = fixtures().join("hf-dinov2");
    let spec = EncoderSpec {
        pool: Some(natview::encoder::VitPool::ClassAndMean),
        ..EncoderSpec::checkpoint(&path, None, None).expect("spec")
    };
    assert!(
        spec.workspace_key().ends_with("-pool-cls-mean"),
        "{}",
        spec.workspace_key()
    );
    let encoder = Encoder::new(&spec, &Device::Cpu).expect("builds");
    assert_eq!(encoder.dim(), 128);
    let run = &case["runs"][0];
    let inputs = npy(run["inputs"].as_str().expect("inputs"));
    let inputs = Tensor::from_vec(inputs.data, inputs.shape, &Device::Cpu).expect("tensor");
    let theirs = npy(run["outputs"].as_str().expect("outputs"));
    for (i, row) in encoder
        .embed_input(&inputs)
        .expect("embeds")
        .iter()
        .enumerate()
    {
        let cos = common::cosine(&row[..64], &theirs.data[i * 64..(i + 1) * 64]);
        assert!(cos >= 0.9999, "input {i}: class token cosine {cos}");
    }
    let siglip = EncoderSpec {
        pool: Some(natview::encoder::VitPool::Mean),
        ..EncoderSpec::checkpoint(&fixtures().join("hf-siglip"), None, None).expect("spec")
    };
    let err = Encoder::new(&siglip, &Device::Cpu).err().expect("refused");
    assert!(err.to_string().contains("attention head"), "{err}");
    let dir = tempfile::tempdir().expect("tempdir");
    let data = common::demo_slice(dir.path(), 2);
    let cnn =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/checkpoints/timm_convnext.pth");
    let out = common::natview(
        &[
            "embed",
            data.to_str().expect("utf-8"),
            "--weights",
            cnn.to_str().expect("utf-8"),
            "--pool",
            "mean",
        ],
        dir.path(),
    );
    let stderr = common::text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("--pool applies to vision transformers"),
        "{stderr}"
    );
}

/// A folder whose processor resizes then crops (DINOv2's `shortest_edge` 256, `crop_size` 224)
/// is prepared the same way: of a 256-px image with a 16-px red border around a blue centre,
/// only the blue centre reaches the network (the largest square would take the border in), and
/// the encoder line says so.
#[test]
fn a_folders_resize_then_crop_is_applied() {
    let spec = EncoderSpec::checkpoint(&fixtures().join("hf-dinov2"), None, None).expect("spec");
    let encoder = Encoder::new(&spec, &Device::Cpu).expect("builds");
    assert_eq!(spec.input_size_px, 224);
    assert!(
        encoder
            .summary()
            .contains("centre 87.5 % of the short side"),
        "{}",
        encoder.summary()
    );
    let image = image::RgbImage::from_fn(256, 256, |x, y| {
        if (16..240).contains(&x) && (16..240).contains(&y) {
            image::Rgb([0, 0, 255])
        } else {
            image::Rgb([255, 0, 0])
        }
    });
    let prepared = encoder.prepare(&image);
    assert_eq!(prepared.dimensions(), (224, 224));
    assert!(
        prepared.pixels().all(|p| p.0[0] < 8 && p.0[2] > 247),
        "the red border reached the input"
    );
    assert!(encoder.input_side_needed() >= 256);
}
