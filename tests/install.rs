//! natview outside its build tree: a copy of the binary finds its shipped weights and demo only
//! where they are installed, says where it looked when they are not, and never embeds with a
//! random encoder unless asked to (`--untrained`).

// Tests may unwrap and expect: a failed test is the error report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use natview::workspace::EmbeddingStore;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A copy of the natview binary in `dir/bin`.
fn copy_binary(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let copy = bin.join("natview");
    std::fs::copy(env!("CARGO_BIN_EXE_natview"), &copy).expect("copy the binary");
    copy
}

/// Runs `binary` with a home of its own (nothing installed there) and no hint of the source
/// tree in its environment.
fn run(binary: &Path, args: &[&str], home: &Path) -> Output {
    Command::new(binary)
        .args(args)
        .args(["--quiet", "--cpu"])
        .env_remove("NATVIEW_MODELS")
        .env_remove("NATVIEW_DEMO")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("XDG_DATA_HOME")
        .env("HOME", home)
        .current_dir(home)
        .output()
        .expect("natview runs")
}

#[test]
fn a_copied_binary_without_its_models_refuses_and_names_every_place_looked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let binary = copy_binary(dir.path());
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let data = common::demo_slice(dir.path(), 3);

    let out = run(&binary, &["embed", &data.to_string_lossy()], &home);
    let stderr = common::text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("effnet-lite0.safetensors` not found"),
        "{stderr}"
    );
    for place in [
        dir.path().join("bin/models"),
        dir.path().join("bin/../share/natview/models"),
        home.join(".local/share/natview/models"),
    ] {
        assert!(stderr.contains(&place.display().to_string()), "{stderr}");
    }
    assert!(stderr.contains("scripts/install.sh") && stderr.contains("--untrained"));
    assert!(
        !stderr.contains("models/effnet"),
        "no source-tree path: {stderr}"
    );
    assert!(
        !data
            .join(".natview/embeddings.effnet-lite0.safetensors")
            .exists(),
        "nothing embedded"
    );

    // A model named explicitly is refused the same way; a random one only when asked for.
    let out = run(
        &binary,
        &["embed", &data.to_string_lossy(), "--model", "compact"],
        &home,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(common::text(&out.stderr).contains("compact-emoji.safetensors` not found"));
    let out = run(
        &binary,
        &[
            "embed",
            &data.to_string_lossy(),
            "--model",
            "compact",
            "--untrained",
        ],
        &home,
    );
    assert!(out.status.success(), "{}", common::text(&out.stderr));

    // The built-in demo is not there either: said, not a crash.
    let out = run(&binary, &["report"], &home);
    let stderr = common::text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("built-in demo `manifest.csv` not found"),
        "{stderr}"
    );
}

#[test]
fn installed_by_the_script_it_gives_the_shipped_model_s_embeddings_and_reuses_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let prefix = dir.path().join("prefix");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(&prefix)
        .env("NATVIEW_BIN", env!("CARGO_BIN_EXE_natview"))
        .output()
        .expect("install.sh runs");
    assert!(out.status.success(), "{}", common::text(&out.stderr));
    let installed = prefix.join("bin/natview");
    assert!(prefix
        .join("share/natview/models/compact-emoji.safetensors")
        .is_file());
    assert!(prefix.join("share/natview/demo/manifest.csv").is_file());

    let data = common::demo_slice(dir.path(), 4);
    let data_arg = data.to_string_lossy().into_owned();
    let tree_ws = dir.path().join("ws-tree");
    let out = common::natview(
        &[
            "embed",
            &data_arg,
            "--model",
            "compact",
            "--workspace",
            &tree_ws.to_string_lossy(),
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", common::text(&out.stderr));
    let copy_ws = dir.path().join("ws-installed");
    let out = run(
        &installed,
        &[
            "embed",
            &data_arg,
            "--model",
            "compact",
            "--workspace",
            &copy_ws.to_string_lossy(),
        ],
        &home,
    );
    assert!(out.status.success(), "{}", common::text(&out.stderr));
    let file = "embeddings.compact.safetensors";
    let (tree, tree_meta) = EmbeddingStore::load(&tree_ws.join(file)).expect("tree");
    let (copy, copy_meta) = EmbeddingStore::load(&copy_ws.join(file)).expect("installed");
    assert_eq!(
        tree, copy,
        "the installed binary embeds with the shipped weights"
    );
    let (tree_meta, copy_meta) = (tree_meta.expect("meta"), copy_meta.expect("meta"));
    assert_eq!(tree_meta.weights_fingerprint, copy_meta.weights_fingerprint);
    assert_ne!(tree_meta.encoder.weights, copy_meta.encoder.weights);

    // The weights moved, not changed: the source tree's workspace is fresh for the installed
    // binary (shipped weights are known by their bytes, not their path).
    let out = run(
        &installed,
        &[
            "embed",
            &data_arg,
            "--model",
            "compact",
            "--workspace",
            &tree_ws.to_string_lossy(),
        ],
        &home,
    );
    let stderr = common::text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("embeddings: reused"), "{stderr}");
}
