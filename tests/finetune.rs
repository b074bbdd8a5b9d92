//! Fine-tuning on a tiny real set cut from the demo: it learns, its checkpoints reload exactly,
//! an interrupted run resumes, and bad weights files are refused with their name.

// Tests may unwrap and expect: a failed test is the error report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use natview::dataset::load_dataset;
use natview::encoder::{Encoder, EncoderSpec, ModelKind, Precision};
use natview::jobs::CancelFlag;
use natview::train::{
    checkpoint, evaluate_encoder_rows, finetune, CheckpointMeta, Method, Outcome, SslModel,
    StartFrom, StepReport, TrainConfig, TrainObserver, TrainRequest,
};
use std::cell::RefCell;
use std::path::{Path, PathBuf};

const SIZE_PX: u32 = 32;

fn config(steps: usize, heldout: f64, start: StartFrom) -> TrainConfig {
    TrainConfig {
        input_size_px: SIZE_PX,
        steps,
        batch_size: 8,
        learning_rate: 0.1,
        warmup_steps: 2,
        seed: 3,
        heldout_fraction: heldout,
        ..TrainConfig::new(Method::InfoNce, ModelKind::Compact, start)
    }
}

/// Records the steps; cancels after `stop_after` steps if set.
struct Recorder {
    steps: RefCell<Vec<StepReport>>,
    health: RefCell<Vec<natview::train::HealthPoint>>,
    stop_after: Option<(usize, CancelFlag)>,
}

impl Recorder {
    fn new(stop_after: Option<(usize, CancelFlag)>) -> Self {
        Self {
            steps: RefCell::new(Vec::new()),
            health: RefCell::new(Vec::new()),
            stop_after,
        }
    }
}

impl TrainObserver for Recorder {
    fn phase(&self, _name: &str) {}

    fn health(&self, point: &natview::train::HealthPoint) {
        self.health.borrow_mut().push(*point);
    }

    fn step(&self, report: &StepReport) {
        self.steps.borrow_mut().push(*report);
        if let Some((n, flag)) = &self.stop_after {
            if report.step == *n {
                flag.cancel();
            }
        }
    }
}

/// Embeds every image of `root` with `spec` and returns (items, rows).
fn embed_all(
    root: &Path,
    spec: &EncoderSpec,
) -> (Vec<natview::dataset::Item>, natview::linalg::Matrix) {
    let dataset = load_dataset(root).expect("dataset");
    let encoder = Encoder::new(spec, &candle_core::Device::Cpu).expect("encoder");
    let images: Vec<_> = dataset
        .items
        .iter()
        .map(|i| natview::dataset::decode_rgb(&dataset.item_path(i), 64).expect("decode"))
        .collect();
    let rows = encoder.embed(&images).expect("embed");
    (
        dataset.items.clone(),
        natview::linalg::Matrix::from_rows(&rows).expect("rows"),
    )
}

#[test]
fn a_short_run_lowers_the_loss_and_raises_the_gap_on_its_training_listings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 12);
    let dataset = load_dataset(&root).expect("dataset");
    let out = dir.path().join("trained.safetensors");
    let request = TrainRequest {
        config: config(60, 0.0, StartFrom::Scratch),
        dataset: &dataset,
        checkpoint: dir.path().join("run.ckpt"),
        out: out.clone(),
        resume: false,
        force_cpu: true,
    };
    let recorder = Recorder::new(None);
    let report = finetune(&request, &recorder, &CancelFlag::new()).expect("trains");
    assert_eq!(report.outcome, Outcome::Finished);
    assert_eq!(report.steps_done, 60);
    assert_eq!(recorder.steps.borrow().len(), 60);
    // Health checked at the start and every 25 steps and reported as it went; no collapse.
    let steps: Vec<usize> = report.health.iter().map(|p| p.step).collect();
    assert_eq!(steps, vec![0, 25, 50]);
    assert_eq!(*recorder.health.borrow(), report.health);
    assert!(report.collapse.is_none());
    assert!(report
        .health
        .iter()
        .all(|p| p.effective_rank >= 1.0 && p.uniformity < 0.0));
    let curve = &report.loss_curve;
    assert_eq!(curve.len(), 6);
    assert!(curve[5] < curve[0] * 0.8, "the loss should fall: {curve:?}");

    // Intra/inter gap of the training listings, untrained (same seed) vs trained.
    let untrained = EncoderSpec {
        model: ModelKind::Compact,
        input_size_px: SIZE_PX,
        weights: None,
        seed: 3,
        weights_key: None,
        pool: None,
        precision: Precision::F32,
    };
    let trained = EncoderSpec {
        weights: Some(out),
        ..untrained.clone()
    };
    let (items, before) = embed_all(&root, &untrained);
    let (_, after) = embed_all(&root, &trained);
    let before = evaluate_encoder_rows(&items, &before, None).expect("eval");
    let after = evaluate_encoder_rows(&items, &after, None).expect("eval");
    assert!(
        after.gap > before.gap + 0.05,
        "gap before {:.3}, after {:.3}",
        before.gap,
        after.gap
    );
}

#[test]
fn a_checkpoint_reloads_into_bit_identical_embeddings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 8);
    let dataset = load_dataset(&root).expect("dataset");
    let ckpt = dir.path().join("run.ckpt");
    let out = dir.path().join("trained.safetensors");
    let request = TrainRequest {
        config: config(4, 0.0, StartFrom::Scratch),
        dataset: &dataset,
        checkpoint: ckpt.clone(),
        out: out.clone(),
        resume: false,
        force_cpu: true,
    };
    finetune(&request, &Recorder::new(None), &CancelFlag::new()).expect("trains");

    // The whole checkpoint back into a model; its trunk features against the encoder that
    // loads the exported weights: the same bits.
    let device = candle_core::Device::Cpu;
    let (tensors, meta): (_, CheckpointMeta) = checkpoint::load(&ckpt, &device).expect("load");
    assert_eq!(meta.step, 4);
    let resnet = ModelKind::Compact.architecture().expect("cnn");
    let model = SslModel::new(&resnet, Method::InfoNce, tensors, 99, &device).expect("model");
    let spec = EncoderSpec {
        model: ModelKind::Compact,
        input_size_px: SIZE_PX,
        weights: Some(out),
        seed: 0,
        weights_key: None,
        pool: None,
        precision: Precision::F32,
    };
    let encoder = Encoder::new(&spec, &device).expect("encoder");
    let images: Vec<_> = dataset
        .items
        .iter()
        .take(10)
        .map(|i| natview::dataset::decode_rgb(&dataset.item_path(i), 64).expect("decode"))
        .collect();
    let from_encoder = encoder.embed(&images).expect("embed");
    let x = encoder.input_tensor(&images).expect("tensor");
    let mut from_checkpoint = model
        .features(&x, false)
        .and_then(|t| t.to_vec2::<f32>())
        .expect("rows");
    for row in &mut from_checkpoint {
        natview::linalg::l2_normalise(row);
    }
    assert_eq!(
        from_checkpoint, from_encoder,
        "the exported weights embed exactly like the checkpoint"
    );
}

#[test]
fn an_interrupted_run_leaves_a_loadable_checkpoint_and_resumes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 10);
    let dataset = load_dataset(&root).expect("dataset");
    let ckpt = dir.path().join("run.ckpt");
    let out = dir.path().join("trained.safetensors");
    let mut request = TrainRequest {
        config: config(12, 0.3, StartFrom::Scratch),
        dataset: &dataset,
        checkpoint: ckpt.clone(),
        out: out.clone(),
        resume: false,
        force_cpu: true,
    };
    let cancel = CancelFlag::new();
    let recorder = Recorder::new(Some((5, cancel.clone())));
    let report = finetune(&request, &recorder, &cancel).expect("runs");
    assert_eq!(report.outcome, Outcome::Interrupted);
    assert_eq!(report.steps_done, 5);
    assert!(
        !out.exists(),
        "no weights are exported from an unfinished run"
    );
    let meta: CheckpointMeta = checkpoint::read_meta(&ckpt).expect("checkpoint readable");
    assert_eq!(meta.step, 5);
    assert_eq!(meta.heldout.len(), 3);

    request.resume = true;
    let recorder = Recorder::new(None);
    let report = finetune(&request, &recorder, &CancelFlag::new()).expect("resumes");
    assert_eq!(report.outcome, Outcome::Finished);
    let steps: Vec<usize> = recorder.steps.borrow().iter().map(|s| s.step).collect();
    assert_eq!(steps, (6..=12).collect::<Vec<_>>());
    assert!(out.is_file());
    assert!(report.after.is_some());
    let meta: CheckpointMeta = checkpoint::read_meta(&ckpt).expect("checkpoint readable");
    assert_eq!(meta.step, 12);

    // Resuming with other options is refused, naming the checkpoint.
    request.config.learning_rate = 0.5;
    let error = finetune(&request, &Recorder::new(None), &CancelFlag::new())
        .expect_err("refused")
        .to_string();
    assert!(
        error.contains("run.ckpt") && error.contains("other options"),
        "{error}"
    );
}

#[test]
fn misshaped_or_truncated_weights_are_refused_naming_the_tensor_or_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 6);
    let dataset = load_dataset(&root).expect("dataset");
    let run = |weights: &Path| {
        let request = TrainRequest {
            config: config(2, 0.0, StartFrom::Weights(weights.to_path_buf())),
            dataset: &dataset,
            checkpoint: dir.path().join("run.ckpt"),
            out: dir.path().join("out.safetensors"),
            resume: false,
            force_cpu: true,
        };
        finetune(&request, &Recorder::new(None), &CancelFlag::new())
            .expect_err("refused")
            .to_string()
    };

    // A file with the stem convolution in the wrong shape.
    let device = candle_core::Device::Cpu;
    let wrong = candle_core::Tensor::zeros((32, 3, 5, 5), candle_core::DType::F32, &device)
        .expect("tensor");
    let misshaped = dir.path().join("misshaped.safetensors");
    checkpoint::save(&misshaped, &[("conv1.weight".to_string(), wrong)], &"test").expect("save");
    let error = run(&misshaped);
    assert!(error.contains("conv1.weight"), "{error}");

    // A truncated copy of a real weights file.
    let good = dir.path().join("good.safetensors");
    let first = TrainRequest {
        config: config(1, 0.0, StartFrom::Scratch),
        dataset: &dataset,
        checkpoint: dir.path().join("first.ckpt"),
        out: good.clone(),
        resume: false,
        force_cpu: true,
    };
    finetune(&first, &Recorder::new(None), &CancelFlag::new()).expect("trains");
    let bytes = std::fs::read(&good).expect("read");
    let truncated = dir.path().join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write");
    let error = run(&truncated);
    assert!(error.contains("truncated.safetensors"), "{error}");
}

#[test]
fn eval_heldout_repeats_the_training_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 10);
    let dataset = load_dataset(&root).expect("dataset");
    let out = dir.path().join("trained.safetensors");
    let request = TrainRequest {
        config: config(3, 0.4, StartFrom::Scratch),
        dataset: &dataset,
        checkpoint: dir.path().join("run.ckpt"),
        out: out.clone(),
        resume: false,
        force_cpu: true,
    };
    let report = finetune(&request, &Recorder::new(None), &CancelFlag::new()).expect("trains");
    let after = report.after.expect("evaluated");
    let eval = |extra: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_natview"))
            .args([
                "eval",
                root.to_str().expect("utf-8"),
                "--json",
                "--quiet",
                "--cpu",
            ])
            .args(["--size", "32"])
            .args(extra)
            .output()
            .expect("runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let reports: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
        reports[0].clone()
    };
    let weights = out.to_str().expect("utf-8");
    let trained = eval(&["--weights", weights, "--heldout"]);
    assert_eq!(trained["images"], report.heldout_images);
    let recall = trained["retrieval"]["recall_at_1"]
        .as_f64()
        .expect("recall");
    assert!(
        (recall - after.recall_at_1).abs() < 1e-9,
        "{recall} vs {} ({})",
        after.recall_at_1,
        trained["model"]
    );
    // The "before" column: the same seed's untrained encoder on the same listings.
    let untrained = eval(&["--untrained", "--seed", "3", "--heldout", weights]);
    let auc = untrained["pairs"]["auc"].as_f64().expect("auc");
    assert!(
        (auc - report.before.auc).abs() < 1e-9,
        "{auc} vs {}",
        report.before.auc
    );
}

#[test]
fn judged_pairs_move_the_way_their_verdicts_say_compared_with_a_run_without_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 12);
    let dataset = load_dataset(&root).expect("dataset");
    let listings = natview::dataset::group_by_listing(&dataset.items);
    let key = |id: usize| dataset.items[id].path.to_string_lossy().into_owned();
    let start = StartFrom::Weights(ModelKind::Compact.shipped_weights().expect("shipped"));
    let start_spec = EncoderSpec {
        model: ModelKind::Compact,
        input_size_px: SIZE_PX,
        weights: ModelKind::Compact.shipped_weights(),
        seed: 0,
        weights_key: None,
        pool: None,
        precision: Precision::F32,
    };
    // "Different": each of ten listings' first view with the most similar image of another
    // listing (the hard pairs an analyst would be shown). "Same": second views of listings
    // six apart (other listings, judged to show one item).
    let (items, rows) = embed_all(&root, &start_spec);
    let different: Vec<(String, String)> = (0..10)
        .map(|i| {
            let a = listings[i].1[0];
            let row_a = items
                .iter()
                .position(|it| it.path == dataset.items[a].path)
                .expect("a");
            let b = (0..items.len())
                .filter(|&j| items[j].listing != items[row_a].listing)
                .max_by(|&x, &y| {
                    let sx = natview::linalg::dot(rows.row(row_a), rows.row(x));
                    let sy = natview::linalg::dot(rows.row(row_a), rows.row(y));
                    sx.total_cmp(&sy)
                })
                .expect("another listing");
            (key(a), items[b].path.to_string_lossy().into_owned())
        })
        .collect();
    let same: Vec<(String, String)> = (0..6)
        .map(|i| (key(listings[i].1[1]), key(listings[i + 6].1[1])))
        .collect();
    let judgements = natview::train::Judgements {
        same: same.clone(),
        different: different.clone(),
        margin: 0.1,
        ..Default::default()
    };
    let run = |judged: Option<natview::train::Judgements>, name: &str| {
        let mut config = config(30, 0.0, start.clone());
        config.method = Method::SimSiam;
        config.learning_rate = 0.05;
        config.judgements = judged;
        let out = dir.path().join(format!("{name}.safetensors"));
        let request = TrainRequest {
            config,
            dataset: &dataset,
            checkpoint: dir.path().join(format!("{name}.ckpt")),
            out: out.clone(),
            resume: false,
            force_cpu: true,
        };
        let report = finetune(&request, &Recorder::new(None), &CancelFlag::new()).expect("trains");
        (report, out)
    };
    let (labelled, labelled_out) = run(Some(judgements), "labelled");
    let (_, plain_out) = run(None, "plain");

    // The report measures every judged pair before and after, trained on or kept out.
    assert!(!labelled.judged.is_empty());
    assert_eq!(labelled.judged_missing, 0);
    let pairs: usize = labelled.judged.iter().map(|r| r.pairs).sum();
    assert_eq!(pairs, 16);
    assert!(labelled.judged.iter().all(|r| r.after.is_some()));

    // Against the same run without labels, measured the same way: different pairs end
    // further apart and same pairs closer.
    let mean_cosine = |weights: &Path, list: &[(String, String)]| {
        let spec = EncoderSpec {
            model: ModelKind::Compact,
            input_size_px: SIZE_PX,
            weights: Some(weights.to_path_buf()),
            seed: 0,
            weights_key: None,
            pool: None,
            precision: Precision::F32,
        };
        let (items, rows) = embed_all(&root, &spec);
        let row = |p: &str| {
            items
                .iter()
                .position(|i| i.path.to_string_lossy() == p)
                .expect("item")
        };
        list.iter()
            .map(|(a, b)| natview::linalg::dot(rows.row(row(a)), rows.row(row(b))) as f64)
            .sum::<f64>()
            / list.len() as f64
    };
    let (d_labelled, d_plain) = (
        mean_cosine(&labelled_out, &different),
        mean_cosine(&plain_out, &different),
    );
    let (s_labelled, s_plain) = (
        mean_cosine(&labelled_out, &same),
        mean_cosine(&plain_out, &same),
    );
    eprintln!(
        "different pairs {d_labelled:.3} with labels, {d_plain:.3} without; same pairs {s_labelled:.3}, {s_plain:.3}"
    );
    assert!(
        d_labelled < d_plain - 0.02,
        "different pairs: {d_labelled:.3} with labels, {d_plain:.3} without"
    );
    assert!(
        s_labelled > s_plain + 0.02,
        "same pairs: {s_labelled:.3} with labels, {s_plain:.3} without"
    );
}

#[test]
fn byol_moby_and_swav_learn_and_resume_to_the_same_weights() {
    for method in [Method::Byol, Method::Moby, Method::Swav] {
        momentum_run_learns_and_resumes_exactly(method);
    }
}

fn momentum_run_learns_and_resumes_exactly(method: Method) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 12);
    let dataset = load_dataset(&root).expect("dataset");
    let request = |name: &str, steps: usize, resume: bool| {
        // MoBY from the shipped weights: from scratch its keys are all alike and 30 steps
        // stay near the chance level ln(queue + 1).
        let start = match method {
            Method::Moby | Method::Swav => {
                StartFrom::Weights(ModelKind::Compact.shipped_weights().expect("shipped"))
            }
            _ => StartFrom::Scratch,
        };
        let mut config = config(steps, 0.0, start);
        config.method = method;
        config.queue = 256;
        TrainRequest {
            config,
            dataset: &dataset,
            checkpoint: dir.path().join(format!("{name}.ckpt")),
            out: dir.path().join(format!("{name}.safetensors")),
            resume,
            force_cpu: true,
        }
    };
    // Straight through the loss falls block after block (BYOL: 2 − 2·cos, about 2 for an
    // untrained network; MoBY: the cross-entropy of the key among the queue).
    let straight = finetune(
        &request("straight", 30, false),
        &Recorder::new(None),
        &CancelFlag::new(),
    )
    .expect("trains");
    let curve = &straight.loss_curve;
    assert!(
        curve[2] < curve[1] && curve[2] < curve[0] - 0.03,
        "{method:?}: the loss should fall: {curve:?}"
    );
    // Interrupted after 12 steps and resumed: the target network comes back from the
    // checkpoint, so the run ends on the same weights as the one that was not interrupted.
    let cancel = CancelFlag::new();
    let stopped = finetune(
        &request("resumed", 30, false),
        &Recorder::new(Some((12, cancel.clone()))),
        &cancel,
    )
    .expect("runs");
    assert_eq!(stopped.outcome, Outcome::Interrupted);
    let names: Vec<String> = checkpoint::load::<CheckpointMeta>(
        &dir.path().join("resumed.ckpt"),
        &candle_core::Device::Cpu,
    )
    .expect("checkpoint")
    .0
    .into_keys()
    .collect();
    assert_eq!(
        names.iter().any(|n| n.starts_with("target.")),
        method.uses_target(),
        "{names:?}"
    );
    assert_eq!(
        names.iter().any(|n| n == "head.prototypes"),
        method == Method::Swav,
        "{names:?}"
    );
    assert_eq!(
        names.iter().any(|n| n == "target.queue"),
        method == Method::Moby,
        "{names:?}"
    );
    finetune(
        &request("resumed", 30, true),
        &Recorder::new(None),
        &CancelFlag::new(),
    )
    .expect("resumes");
    let weights = |name: &str| {
        let (tensors, _) = natview::encoder::load_weights(
            &dir.path().join(format!("{name}.safetensors")),
            &candle_core::Device::Cpu,
        )
        .expect("weights");
        let mut flat: Vec<(String, Vec<f32>)> = tensors
            .into_iter()
            .map(|(n, t)| {
                (
                    n,
                    t.flatten_all().and_then(|t| t.to_vec1()).expect("values"),
                )
            })
            .collect();
        flat.sort_by(|a, b| a.0.cmp(&b.0));
        flat
    };
    assert_eq!(weights("straight"), weights("resumed"), "{method:?}");
    swav_weights_assign_clusters(method, &dir.path().join("straight.safetensors"), &root);
}

/// SwAV's exported weights carry its projector and prototypes: the encoder built from them
/// assigns every image to one of the prototypes (the rows unchanged), and the pipeline keeps
/// those clusters beside the embeddings; other methods' weights have none.
fn swav_weights_assign_clusters(method: Method, weights: &Path, root: &Path) {
    let spec = EncoderSpec {
        model: ModelKind::Compact,
        input_size_px: SIZE_PX,
        weights: Some(weights.to_path_buf()),
        seed: 0,
        weights_key: None,
        pool: None,
        precision: Precision::F32,
    };
    let encoder = Encoder::new(&spec, &candle_core::Device::Cpu).expect("encoder");
    if method != Method::Swav {
        assert_eq!(encoder.clusters(), None, "{method:?}");
        return;
    }
    assert_eq!(encoder.clusters(), Some(natview::train::SWAV_PROTOTYPES));
    let dataset = load_dataset(root).expect("dataset");
    let images: Vec<_> = dataset
        .items
        .iter()
        .map(|i| natview::dataset::decode_rgb(&dataset.item_path(i), 64).expect("decode"))
        .collect();
    let (rows, clusters) = encoder.embed_clustered(&images).expect("embed");
    assert_eq!(rows, encoder.embed(&images).expect("embed"));
    let clusters = clusters.expect("clusters");
    assert_eq!(clusters.len(), images.len());
    assert!(clusters
        .iter()
        .all(|&k| (k as usize) < natview::train::SWAV_PROTOTYPES));
    let workspace = natview::workspace::Workspace::for_dataset(&dataset, None);
    let request = natview::pipeline::EmbedRequest {
        spec,
        batch_size: Some(8),
        force_cpu: true,
        checkpoint_images: None,
        decode: None,
    };
    let (set, _) = natview::pipeline::embed_dataset(
        &dataset,
        &workspace,
        &request,
        &natview::jobs::NoProgress,
        &CancelFlag::new(),
    )
    .expect("embedded");
    assert_eq!(set.clusters.as_deref(), Some(&clusters[..]));
}

/// A two-step fine-tune of the checkpoint `start` with `method` on `dataset` (4 listings a
/// step, a quarter held out, a small queue and few prototypes), its files `dir/name.*`.
fn two_step_run<'a>(
    dataset: &'a natview::dataset::Dataset,
    dir: &Path,
    name: &str,
    method: Method,
    start: &Path,
) -> TrainRequest<'a> {
    TrainRequest {
        config: TrainConfig {
            input_size_px: SIZE_PX,
            steps: 2,
            batch_size: 4,
            warmup_steps: 1,
            heldout_fraction: 0.25,
            queue: 16,
            prototypes: 8,
            ..TrainConfig::new(
                method,
                ModelKind::Checkpoint,
                StartFrom::Weights(start.to_path_buf()),
            )
        },
        dataset,
        checkpoint: dir.join(format!("{name}.ckpt")),
        out: dir.join(format!("{name}.safetensors")),
        resume: false,
        force_cpu: true,
    }
}

/// The five methods, each fine-tuning `start` (a file or folder) for two steps on `dataset`
/// into `dir`: the trained weights of each, after checking the run finished with finite losses.
fn finetune_with_every_method(
    dataset: &natview::dataset::Dataset,
    dir: &Path,
    start: &Path,
) -> Vec<PathBuf> {
    let name = start
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    [
        Method::SimSiam,
        Method::InfoNce,
        Method::Byol,
        Method::Moby,
        Method::Swav,
    ]
    .into_iter()
    .map(|method| {
        let request = two_step_run(
            dataset,
            dir,
            &format!("{name}.{}", method.name()),
            method,
            start,
        );
        let out = request.out.clone();
        let report = finetune(&request, &Recorder::new(None), &CancelFlag::new())
            .unwrap_or_else(|e| panic!("{name} {}: {e}", method.name()));
        assert_eq!(
            report.outcome,
            Outcome::Finished,
            "{name} {}",
            method.name()
        );
        assert!(report.loss_curve.iter().all(|l| l.is_finite()));
        out
    })
    .collect()
}

/// Every method fine-tunes the analyst's own checkpoints: a MoCo ResNet-50 `.pth` and a
/// torchvision RegNetY under DDP (tests/fixtures/checkpoints), opened as they are; the trained
/// weights then open again with `--weights` alone (their model is recorded as `checkpoint`)
/// and give the same embeddings as the encoder the run saved.
#[test]
fn all_five_methods_fine_tune_a_moco_resnet50_and_a_regnety_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 8);
    let dataset = load_dataset(&root).expect("dataset");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/checkpoints");
    for file in ["moco_resnet50.pth", "torchvision_regnety_ddp.pth"] {
        for out in finetune_with_every_method(&dataset, dir.path(), &fixtures.join(file)) {
            let spec = EncoderSpec::checkpoint(&out, None, Some(SIZE_PX)).expect("reopens");
            let encoder = Encoder::new(&spec, &candle_core::Device::Cpu).expect("builds");
            assert!(
                encoder.summary().contains("torchvision"),
                "{}",
                encoder.summary()
            );
        }
    }
}

/// Every method fine-tunes vision transformers as their libraries save them (a timm ViT and a
/// Hugging Face DINOv2 folder whose attention heads only its config.json gives); the trained
/// weights reopen with `--weights` alone as the same network (heads, activation, resampling
/// and normalisation recorded by the fine-tune).
#[test]
fn all_five_methods_fine_tune_vision_transformers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 8);
    let dataset = load_dataset(&root).expect("dataset");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vit");
    for file in ["timm_vit.pth", "hf-dinov2"] {
        let start = fixtures.join(file);
        let before = natview::encoder::checkpoint::inspect(&start, None).expect("opens");
        for out in finetune_with_every_method(&dataset, dir.path(), &start) {
            let after = natview::encoder::checkpoint::inspect(&out, None).expect("reopens");
            assert_eq!(after.architecture, before.architecture, "{}", out.display());
            assert_eq!(after.normalisation, before.normalisation, "{file}");
            let spec = EncoderSpec::checkpoint(&out, None, Some(SIZE_PX)).expect("reopens");
            Encoder::new(&spec, &candle_core::Device::Cpu).expect("builds");
        }
    }
}

/// `--pool` is trained: a DINOv2 folder fine-tuned with the class token and patch mean
/// concatenated records that pooling, so its weights reopen as a twice-as-wide encoder; a
/// CNN is refused with the file named.
#[test]
fn a_chosen_pooling_is_trained_and_recorded_and_refused_for_a_cnn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = common::demo_slice(dir.path(), 8);
    let dataset = load_dataset(&root).expect("dataset");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let run = |start: PathBuf, name: &str| {
        let mut request = two_step_run(&dataset, dir.path(), name, Method::SimSiam, &start);
        request.config.pool = Some(natview::encoder::VitPool::ClassAndMean);
        finetune(&request, &Recorder::new(None), &CancelFlag::new()).map(|_| request.out.clone())
    };
    let dinov2 = fixtures.join("vit/hf-dinov2");
    let out = run(dinov2.clone(), "dinov2").expect("trains");
    let plain = Encoder::new(
        &EncoderSpec::checkpoint(&dinov2, None, Some(SIZE_PX)).expect("spec"),
        &candle_core::Device::Cpu,
    )
    .expect("builds");
    let trained = Encoder::new(
        &EncoderSpec::checkpoint(&out, None, Some(SIZE_PX)).expect("spec"),
        &candle_core::Device::Cpu,
    )
    .expect("builds");
    assert_eq!(trained.dim(), 2 * plain.dim(), "{}", trained.summary());
    // The CLI: a folder given to --from is the weights (not a model name), --pool is trained.
    let cli_out = dir.path().join("cli.safetensors");
    let args = [
        "finetune",
        root.to_str().expect("utf-8"),
        "--from",
        dinov2.to_str().expect("utf-8"),
        "--pool",
        "both",
        "--steps",
        "1",
        "--batch",
        "4",
        "--size",
        "28",
        "--out",
        cli_out.to_str().expect("utf-8"),
    ];
    let output = common::natview(&args, dir.path());
    let stderr = common::text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("finetune: simsiam, checkpoint @28px"),
        "{stderr}"
    );
    let reopened = natview::encoder::checkpoint::inspect(&cli_out, None).expect("reopens");
    assert_eq!(reopened.architecture.feature_dim(), 2 * plain.dim());
    let cnn = fixtures.join("checkpoints/moco_resnet50.pth");
    let err = run(cnn, "cnn").expect_err("refused").to_string();
    assert!(
        err.contains("moco_resnet50.pth") && err.contains("vision transformers"),
        "{err}"
    );
}

/// SimSiam from scratch at a learning rate far too high collapses within a few steps: the
/// health checks see the effective rank fall under a quarter of the start's and stop the run,
/// keeping its checkpoint; with the stop turned off the same run trains to the end.
#[test]
fn a_collapsing_run_stops_and_keeps_its_checkpoint_unless_told_not_to() {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/demo");
    let dataset = load_dataset(&demo).expect("dataset");
    let run = |collapse_stop: bool, name: &str| {
        let request = TrainRequest {
            config: TrainConfig {
                input_size_px: 64,
                steps: 30,
                batch_size: 32,
                learning_rate: 20.0,
                health_every: 5,
                collapse_stop,
                ..TrainConfig::new(Method::SimSiam, ModelKind::Compact, StartFrom::Scratch)
            },
            dataset: &dataset,
            checkpoint: dir.path().join(format!("{name}.ckpt")),
            out: dir.path().join(format!("{name}.safetensors")),
            resume: false,
            force_cpu: true,
        };
        let report = finetune(&request, &Recorder::new(None), &CancelFlag::new()).expect("runs");
        (report, request.checkpoint)
    };
    let (stopped, checkpoint) = run(true, "stopped");
    assert_eq!(stopped.outcome, Outcome::Collapsed);
    assert!(stopped.steps_done < 30, "{}", stopped.steps_done);
    let reason = stopped.collapse.expect("a reason");
    assert!(reason.contains("collapsed"), "{reason}");
    let start = stopped.health[0].effective_rank;
    let last = stopped.health.last().expect("checks").effective_rank;
    assert!(last < 0.25 * start, "{last} vs {start}");
    assert!(checkpoint.is_file(), "the checkpoint is kept");
    let (trained_on, _) = run(false, "on");
    assert_eq!(trained_on.outcome, Outcome::Finished);
    assert_eq!(trained_on.steps_done, 30);
    assert!(trained_on.collapse.is_none());
}
