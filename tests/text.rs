//! Text towers (tests/fixtures/vit, made by scripts/make-vit-fixtures.py): a Hugging Face CLIP
//! folder with its tokenizer.json, an open_clip training checkpoint with the CLIP tokenizer
//! natview ships, and a Hugging Face SigLIP folder with its sentencepiece model (no
//! tokenizer.json) tokenise their texts to the library's ids and embed them as the library does
//! (cosine ≥ 0.9999); an encoder without a text tower says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use candle_core::Device;
use natview::encoder::TextEncoder;
use std::path::{Path, PathBuf};

mod common;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vit")
}

#[test]
fn clip_text_towers_tokenise_and_embed_as_their_libraries_do() {
    let text = std::fs::read_to_string(fixtures().join("cases.json")).expect("cases.json");
    let json: serde_json::Value = serde_json::from_str(&text).expect("json");
    let mut checked = 0;
    for case in json["cases"].as_array().expect("cases") {
        let Some(outputs) = case["text_outputs"].as_str() else {
            continue;
        };
        let name = case["name"].as_str().expect("name");
        let path = fixtures().join(case["path"].as_str().expect("path"));
        let encoder =
            TextEncoder::open(&path, None, &Device::Cpu).unwrap_or_else(|e| panic!("{name}: {e}"));
        let texts: Vec<&str> = case["texts"]
            .as_array()
            .expect("texts")
            .iter()
            .map(|t| t.as_str().expect("text"))
            .collect();
        let reference = natview::npy::read(&fixtures().join(outputs)).expect("outputs");
        let dim = encoder.dim();
        assert_eq!(reference.data.len(), texts.len() * dim, "{name}");
        let rows = encoder.embed(&texts).expect("embeds");
        for (i, text) in texts.iter().enumerate() {
            let ids: Vec<u32> = case["token_ids"][i]
                .as_array()
                .expect("ids")
                .iter()
                .map(|id| id.as_u64().expect("id") as u32)
                .collect();
            assert_eq!(
                encoder.tokenize(text).expect("tokens"),
                ids,
                "{name}: {text:?}"
            );
            let cos = common::cosine(&rows[i], &reference.data[i * dim..(i + 1) * dim]);
            assert!(cos >= 0.9999, "{name}: {text:?}: cosine {cos}");
        }
        println!("{name}: {}", encoder.summary());
        checked += 1;
    }
    assert_eq!(checked, 3, "hf-clip, open_clip and hf-siglip");
    let err = TextEncoder::open(&fixtures().join("hf-dinov2"), None, &Device::Cpu)
        .err()
        .expect("no text tower");
    assert!(err.to_string().contains("no text search"), "{err}");
}

/// `natview search DATASET --text …` ranks the dataset by the text through the index (the same
/// order as exact ranking), and an encoder without a text tower is refused with the reason.
#[test]
fn search_ranks_a_dataset_by_text_and_refuses_encoders_without_a_text_tower() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = common::demo_slice(dir.path(), 12);
    let data = data.to_str().expect("utf-8");
    let clip = fixtures().join("hf-clip");
    let run = |extra: &[&str]| {
        let mut args = vec!["search", data, "--weights", clip.to_str().expect("utf-8")];
        args.extend_from_slice(&["--text", "a red heart", "-k", "5", "--json"]);
        args.extend_from_slice(extra);
        let out = common::natview(&args, dir.path());
        assert!(out.status.success(), "{}", common::text(&out.stderr));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json on stdout");
        json["matches"]
            .as_array()
            .expect("matches")
            .iter()
            .map(|m| {
                (
                    m["id"].as_u64().expect("id"),
                    m["similarity"].as_f64().expect("similarity"),
                )
            })
            .collect::<Vec<_>>()
    };
    let hnsw = run(&[]);
    let exact = run(&["--exact"]);
    assert_eq!(hnsw.len(), 5);
    assert!(hnsw.windows(2).all(|w| w[0].1 >= w[1].1), "{hnsw:?}");
    assert_eq!(
        hnsw.iter().map(|m| m.0).collect::<Vec<_>>(),
        exact.iter().map(|m| m.0).collect::<Vec<_>>()
    );
    let dinov2 = fixtures().join("hf-dinov2");
    let out = common::natview(
        &[
            "search",
            data,
            "--weights",
            dinov2.to_str().expect("utf-8"),
            "--text",
            "a red heart",
        ],
        dir.path(),
    );
    let stderr = common::text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("no text search") && stderr.contains("DINOv2"),
        "{stderr}"
    );
}
