//! Checkpoints as the libraries and frameworks write them (tests/fixtures/checkpoints, made by
//! scripts/make-checkpoint-fixtures.py with torch, torchvision, timm, Lightning, lightly and
//! classy-vision): each opens with `--weights` alone and gives its library's embeddings of the
//! same preprocessed inputs (cosine ≥ 0.9999), and natview says what it found.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use candle_core::{Device, Tensor};
use natview::encoder::{checkpoint, Encoder, EncoderSpec};
use std::path::{Path, PathBuf};

mod common;

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
            let cos = common::cosine(row, theirs);
            assert!(cos >= 0.9999, "{} input {i}: cosine {cos}", case.file);
        }
        println!("{}: {}", case.file, encoder.summary());
    }
}

/// `natview embed DATASET --weights FILE` opens the framework's file as it is, says what it
/// found, and embeds; the neighbours command reuses those embeddings.
#[test]
fn embed_takes_a_moco_checkpoint_and_a_vissl_regnet_as_they_are() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = common::demo_slice(dir.path(), 6);
    for (file, expected) in [
        ("moco_resnet50.pth", "ResNet-50 (width 8) (torchvision/timm layout) from `state_dict.module.encoder_q.` of a MoCo + DDP checkpoint"),
        ("vissl_regnety.torch", "RegNetY (widths 16-32-64-128, depths 1-1-3-3, group width 8) (VISSL layout)"),
        ("lightning_byol.ckpt", "of a Lightning + momentum-encoder (BYOL/MoCo-style) checkpoint"),
    ] {
        let weights = fixtures().join(file);
        let out = common::natview(
            &["embed", data.to_str().expect("utf-8"), "--weights", weights.to_str().expect("utf-8")],
            dir.path(),
        );
        let stderr = common::text(&out.stderr);
        assert!(out.status.success(), "{file}: {stderr}");
        assert!(stderr.contains(expected), "{file}: {stderr}");
        assert!(stderr.contains("embeddings: "), "{stderr}");
    }
}

/// A legacy or damaged file is an error naming it, never a panic; --weights-key picks the other
/// network of a pair, and a key with no network under it is an error.
#[test]
fn weights_key_chooses_and_legacy_or_damaged_files_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = common::demo_slice(dir.path(), 3);
    let data = data.to_str().expect("utf-8");

    // Legacy (torch < 1.6) format: refused with how to re-save it.
    let legacy = dir.path().join("old.pth");
    std::fs::write(&legacy, b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19.").expect("write");
    let out = common::natview(
        &["embed", data, "--weights", legacy.to_str().expect("utf-8")],
        dir.path(),
    );
    let stderr = common::text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("old.pth")
            && stderr.contains("legacy format")
            && stderr.contains("torch.save"),
        "{stderr}"
    );

    // Every truncation of a real checkpoint is an error naming the file, never a panic.
    let real = std::fs::read(fixtures().join("torchvision_regnetx.pth")).expect("read");
    let cut = dir.path().join("cut.pth");
    for keep in [10, 100, real.len() / 3, real.len() / 2, real.len() - 30] {
        std::fs::write(&cut, &real[..keep]).expect("write");
        let err = checkpoint::inspect(&cut, None)
            .and_then(|_| {
                Encoder::new(
                    &EncoderSpec::checkpoint(&cut, None, Some(64))?,
                    &Device::Cpu,
                )
                .map(|_| ())
            })
            .expect_err("a cut file is refused");
        assert!(err.to_string().contains("cut.pth"), "{err}");
    }
    // Flipped bytes inside the pickle and the tensors: an error or (where only values
    // changed) an encoder, never a panic.
    let mut rng = 7u64;
    for _ in 0..40 {
        let mut bytes = real.clone();
        for _ in 0..8 {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let i = (rng >> 33) as usize % bytes.len();
            bytes[i] ^= (rng >> 17) as u8 | 1;
        }
        std::fs::write(&cut, &bytes).expect("write");
        if let Ok(spec) = EncoderSpec::checkpoint(&cut, None, Some(64)) {
            let _ = Encoder::new(&spec, &Device::Cpu);
        }
    }

    // --weights-key on a DINO file takes the student instead of the teacher.
    let dino = fixtures().join("dino_resnet_fp16.pth");
    let student = checkpoint::inspect(&dino, Some("student.module.backbone")).expect("student");
    assert_eq!(student.prefix, "student.module.backbone.");
    let err = checkpoint::inspect(&dino, Some("nothing.here")).expect_err("no such prefix");
    assert!(
        err.to_string()
            .contains("no known trunk under --weights-key"),
        "{err}"
    );
}

/// timm's pretrained config beside the weights (config.json as the Hugging Face hub keeps timm
/// models) sets the input size and normalisation, and the summary says where they came from;
/// without it the family's standard applies. The torchvision and timm ConvNeXts give the same
/// network from their two layouts.
#[test]
fn preprocessing_comes_from_timms_config_when_there_is_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let weights = dir.path().join("model.pth");
    std::fs::copy(fixtures().join("timm_convnext.pth"), &weights).expect("copy");
    let plain = checkpoint::inspect(&weights, None).expect("opens");
    assert_eq!(plain.input_size_px, 224);
    assert!(
        plain.preprocessing.contains("family's standard"),
        "{}",
        plain.preprocessing
    );
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"architecture": "convnext_tiny", "pretrained_cfg": {"input_size": [3, 288, 288],
            "mean": [0.481, 0.458, 0.408], "std": [0.269, 0.261, 0.276]}}"#,
    )
    .expect("config");
    let configured = checkpoint::inspect(&weights, None).expect("opens");
    assert_eq!(configured.input_size_px, 288);
    assert_eq!(
        configured.normalisation,
        natview::encoder::Normalisation::MeanStd {
            mean: [0.481, 0.458, 0.408],
            std: [0.269, 0.261, 0.276]
        }
    );
    assert!(
        configured.preprocessing.contains("config.json"),
        "{}",
        configured.preprocessing
    );
    let tv = checkpoint::inspect(&fixtures().join("torchvision_convnext.pth"), None).expect("tv");
    assert_eq!(tv.architecture, plain.architecture);
}
