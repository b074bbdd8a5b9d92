//! `natview report --html`: one self-contained HTML file, checked as a file (every section, every
//! image inline, nothing to fetch) and opened in a real headless browser (Chromium, named by
//! `NATVIEW_TEST_BROWSER`; `.ci/run` installs Debian's and sets it): every image decodes, and a
//! screenshot of the page is a picture, not a blank or error page.

// Tests may unwrap and expect: a failed test is the error report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{natview, required_env, text};
use std::path::Path;
use std::process::Command;

/// Every value of `attribute="…"` in `html`.
fn attribute_values<'a>(html: &'a str, attribute: &str) -> Vec<&'a str> {
    let needle = format!(" {attribute}=\"");
    html.match_indices(&needle)
        .map(|(at, _)| {
            let rest = &html[at + needle.len()..];
            &rest[..rest.find('"').expect("closing quote")]
        })
        .collect()
}

/// Runs the browser headless, offline, on `page` with `args`; returns its standard output.
fn browser(browser: &str, profile: &Path, page: &Path, args: &[&str]) -> String {
    let output = Command::new("timeout")
        .arg("120")
        .arg(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--no-proxy-server",
            "--host-resolver-rules=MAP * ~NOTFOUND",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("the browser runs");
    assert!(
        output.status.success(),
        "{browser} failed: {}",
        text(&output.stderr)
    );
    text(&output.stdout)
}

#[test]
fn the_html_report_is_one_self_contained_file_that_a_browser_shows() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 12);
    let root_str = root.to_str().expect("utf-8");
    let out = natview(
        &[
            "report",
            root_str,
            "--html",
            "report.html",
            "--from",
            "pixels",
            "--listings",
            "8",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let page = dir.path().join("report.html");
    let html = std::fs::read_to_string(&page).expect("the report");
    assert!(html.starts_with("<!DOCTYPE html>"));
    for section in [
        "Listing retrieval",
        "raw-pixel baseline",
        "Representation health",
        "Quadrant chart",
        "Projection",
        "Sample neighbours",
        "What changed: pixels →",
        "Most improved listings",
    ] {
        assert!(html.contains(section), "no `{section}` in the report");
    }
    // Self-contained: every image inline, no stylesheet, script or frame to fetch.
    let sources = attribute_values(&html, "src");
    assert!(sources.len() > 40, "only {} images", sources.len());
    for source in &sources {
        assert!(
            source.starts_with("data:image/png;base64,")
                || source.starts_with("data:image/jpeg;base64,"),
            "an image that is not inline: {}",
            &source[..source.len().min(80)]
        );
    }
    assert!(attribute_values(&html, "href").is_empty());
    for tag in ["<link", "<script", "<iframe", "url("] {
        assert!(!html.contains(tag), "the report has {tag}");
    }

    let Some(chromium) = required_env("NATVIEW_TEST_BROWSER", "the HTML report in a browser")
    else {
        return;
    };
    let profile = dir.path().join("profile");
    // Every image decodes: a copy of the page counts them once loaded and puts the count in
    // its title, which the browser's DOM dump shows.
    let checked = dir.path().join("checked.html");
    let probe = "<script>addEventListener('load',()=>{const all=[...document.images];\
        const broken=all.filter(i=>!(i.complete&&i.naturalWidth>0)).length;\
        document.title='images='+all.length+' broken='+broken;});</script></body>";
    std::fs::write(&checked, html.replace("</body>", probe)).expect("copy");
    let dom = browser(
        &chromium,
        &profile,
        &checked,
        &["--virtual-time-budget=5000", "--dump-dom"],
    );
    let expected = format!("<title>images={} broken=0</title>", sources.len());
    assert!(
        dom.contains(&expected),
        "expected {expected}; the browser shows {}",
        dom.lines()
            .find(|l| l.contains("<title>"))
            .unwrap_or("no title")
    );
    // A screenshot of the page itself: a picture of many colours (charts and photos), not a
    // blank page.
    let shot = dir.path().join("shot.png");
    browser(
        &chromium,
        &profile,
        &page,
        &[
            "--window-size=1280,2400",
            "--hide-scrollbars",
            &format!("--screenshot={}", shot.display()),
        ],
    );
    let image = image::open(&shot).expect("a screenshot").into_rgb8();
    assert_eq!(image.dimensions(), (1280, 2400));
    let mut colours: Vec<[u8; 3]> = image.pixels().step_by(97).map(|p| p.0).collect();
    colours.sort_unstable();
    colours.dedup();
    assert!(
        colours.len() > 200,
        "{} colours: a blank page?",
        colours.len()
    );
    if let Ok(keep) = std::env::var("NATVIEW_KEEP_REPORT") {
        std::fs::copy(&page, Path::new(&keep).join("report.html")).expect("keep");
        std::fs::copy(&shot, Path::new(&keep).join("report-shot.png")).expect("keep");
    }
}
