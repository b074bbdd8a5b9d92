//! What the GUI test files share: the app opened on a dataset by the real worker job, and
//! stepping it until its jobs are done.

#![allow(dead_code)]

use egui_kittest::Harness;
use natview::app::NatviewApp;
use natview::encoder::{EncoderSpec, ModelKind};

/// The shipped compact model: the views under test need embeddings, not the 224-px default
/// (which `effnet_reference` and the CLI tests cover), and CI has two cores.
pub fn test_spec() -> EncoderSpec {
    EncoderSpec::pretrained(ModelKind::Compact).expect("the shipped compact model")
}

/// An app harness with `root` opened and the opening job finished.
pub fn opened_app(root: &std::path::Path) -> Harness<'static, NatviewApp> {
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        // Workers (thumbnails, the projection's raster, selections) wake the window a few
        // times after anything they were asked for: let `run` settle through those.
        .with_max_steps(64)
        .build_ui_state(
            |ui, app: &mut NatviewApp| app.show(ui),
            NatviewApp::empty(test_spec()),
        );
    let ctx = harness.ctx.clone();
    harness.state_mut().open(&ctx, root.to_path_buf());
    wait_idle(&mut harness);
    assert!(
        harness.state().session().is_some(),
        "dataset did not open: {:?}",
        harness.state().error()
    );
    harness.run();
    harness
}

/// Steps the app until no job runs (at most a minute).
pub fn wait_idle(harness: &mut Harness<'static, NatviewApp>) {
    // A click is turned into a command while a frame is drawn and applied at the next one.
    harness.step();
    for _ in 0..2400 {
        harness.step();
        if !harness.state().is_busy() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert!(
        !harness.state().is_busy(),
        "jobs still running after a minute"
    );
    harness.run();
}

/// Steps the app until `done` holds (at most two minutes).
pub fn step_until(
    harness: &mut Harness<'static, NatviewApp>,
    what: &str,
    done: impl Fn(&NatviewApp) -> bool,
) {
    for _ in 0..4800 {
        harness.step();
        if done(harness.state()) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("{what}: not reached after two minutes");
}

/// A file (or folder) dropped on the window, as the windowing integration hands it to egui.
#[derive(Debug)]
pub struct DroppedPath(pub std::path::PathBuf);

impl egui::DroppedFile for DroppedPath {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}
