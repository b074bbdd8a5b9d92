//! The crate graph of the workspace is the one `docs/architecture.md` draws: every dependency
//! between natview's crates (from `cargo metadata`) is an edge the document allows, every crate
//! is in the document, and only `natview-app` depends on egui, eframe or rfd.

// Tests may unwrap and expect: a failed test is the error report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

/// The GUI toolkit crates: only the app crate may depend on them.
const GUI_CRATES: &[&str] = &[
    "egui",
    "eframe",
    "egui_plot",
    "rfd",
    "egui_kittest",
    "egui_glow",
    "egui-winit",
];

/// The crate allowed to use them.
const APP_CRATE: &str = "natview-app";

/// Packages whose tests drive the window (GUI crates allowed as dev-dependencies only).
const GUI_TEST_PACKAGES: &[&str] = &["natview"];

/// The graph the architecture document allows: `crate: dependency, dependency` lines inside
/// its ```crate-graph block.
fn documented_graph() -> BTreeMap<String, BTreeSet<String>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/architecture.md");
    let text = std::fs::read_to_string(&path).expect("docs/architecture.md is readable");
    let block = text
        .split("```crate-graph")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/architecture.md has a ```crate-graph block");
    let mut graph = BTreeMap::new();
    for line in block.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (name, deps) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("crate-graph line without ':': {line}"));
        let deps = deps
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(String::from)
            .collect();
        graph.insert(name.trim().to_string(), deps);
    }
    graph
}

/// `cargo metadata` of the workspace (its own packages only).
fn metadata() -> Value {
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON")
}

/// One declared dependency: its name and whether it is a dev-dependency.
fn dependencies(package: &Value) -> Vec<(String, bool)> {
    package["dependencies"]
        .as_array()
        .expect("dependencies")
        .iter()
        .map(|d| {
            let name = d["name"].as_str().expect("dependency name").to_string();
            (name, d["kind"].as_str() == Some("dev"))
        })
        .collect()
}

#[test]
fn crate_dependencies_follow_the_documented_graph() {
    let graph = documented_graph();
    let metadata = metadata();
    let packages = metadata["packages"].as_array().expect("packages");
    let members: BTreeSet<String> = packages
        .iter()
        .map(|p| p["name"].as_str().expect("package name").to_string())
        .collect();
    let mut problems = Vec::new();
    for name in &members {
        if !graph.contains_key(name) {
            problems.push(format!(
                "{name} is not in docs/architecture.md's crate graph"
            ));
        }
    }
    for name in graph.keys() {
        if !members.contains(name) {
            problems.push(format!(
                "docs/architecture.md lists {name}, which is no workspace crate"
            ));
        }
    }
    for package in packages {
        let name = package["name"].as_str().expect("package name");
        let allowed = graph.get(name).cloned().unwrap_or_default();
        for (dependency, dev) in dependencies(package) {
            if members.contains(&dependency) && !dev && !allowed.contains(&dependency) {
                problems.push(format!("{name} → {dependency} is not an edge of the graph"));
            }
            let gui = GUI_CRATES.contains(&dependency.as_str());
            let gui_allowed = name == APP_CRATE || (dev && GUI_TEST_PACKAGES.contains(&name));
            if gui && !gui_allowed {
                problems.push(format!(
                    "{name} depends on {dependency}; only {APP_CRATE} may"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_documented_graph_has_no_cycle() {
    let graph = documented_graph();
    // Kahn's algorithm: every crate must be reachable in an order where its dependencies come first.
    let mut done: BTreeSet<&str> = BTreeSet::new();
    while done.len() < graph.len() {
        let ready: Vec<&str> = graph
            .iter()
            .filter(|(name, deps)| {
                !done.contains(name.as_str()) && deps.iter().all(|d| done.contains(d.as_str()))
            })
            .map(|(name, _)| name.as_str())
            .collect();
        assert!(
            !ready.is_empty(),
            "the crate graph has a cycle (or an unknown crate) among: {:?}",
            graph
                .keys()
                .filter(|n| !done.contains(n.as_str()))
                .collect::<Vec<_>>()
        );
        done.extend(ready);
    }
}
