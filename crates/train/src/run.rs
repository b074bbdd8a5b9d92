//! The training loop: data, steps, checkpoints, evaluation before and after.

use super::checkpoint::{self, OPTIM_PREFIX};
use super::data::{heldout_set, load_images, step_listings, views};
use super::health_track::{CollapseWatch, HealthPoint, HEALTH_SAMPLE};
use super::judged::{judged_rows, JudgedBatch, JudgedPlan};
use super::momentum::{byol, moby, swav};

/// SwAV's Sinkhorn–Knopp iterations (its paper's).
const SWAV_ITERATIONS: usize = 3;
use super::target::{Target, TARGET_PREFIX};
use super::*;

/// Unit-norm trunk features (eval mode) of images, in batches.
fn embed(
    model: &SslModel,
    images: &[&RgbImage],
    size_px: u32,
    norm: Normalisation,
    device: &Device,
) -> Result<Matrix, TrainError> {
    // The evaluation form of the current weights (fused on the CPU where there is one).
    let mut trunk = model.trunk().clone();
    trunk.prepare_inference(device)?;
    let mut rows = Vec::with_capacity(images.len());
    for chunk in images.chunks(64) {
        let x = images_tensor(chunk, size_px, norm, device)?;
        for mut row in trunk.forward_eval(&x)?.to_vec2::<f32>()? {
            l2_normalise(&mut row);
            rows.push(row);
        }
    }
    Matrix::from_rows(&rows)
        .ok_or_else(|| TrainError::NotEnoughData("embeddings of unequal length".into()))
}

/// Evaluates unit-norm rows of `items` (listing retrieval, gap, AUC) as a summary.
pub fn evaluate_encoder_rows(
    items: &[Item],
    matrix: &Matrix,
    queries: Option<&ViewFilter>,
) -> Result<EvalSummary, TrainError> {
    let report = evaluate_rows_where(items, matrix, String::new(), false, queries)?;
    Ok(EvalSummary::from(&report))
}

fn initial_tensors(
    request: &TrainRequest<'_>,
    device: &Device,
) -> Result<HashMap<String, Tensor>, TrainError> {
    match &request.config.start {
        StartFrom::Scratch => Ok(HashMap::new()),
        StartFrom::Weights(path) => {
            let file_error = |e: natview_encoder::EncoderError| TrainError::File {
                path: path.clone(),
                message: e.to_string(),
            };
            let tensors = if request.config.model == natview_encoder::ModelKind::Checkpoint
                || natview_encoder::checkpoint::is_pytorch_file(path)
            {
                natview_encoder::checkpoint::open(path, None, device)
                    .map_err(file_error)?
                    .1
            } else {
                natview_encoder::load_weights(path, device)
                    .map_err(file_error)?
                    .0
            };
            // Only the trunk: heads from another run would not match this one's method.
            Ok(tensors
                .into_iter()
                .filter(|(name, _)| {
                    !name.starts_with(HEAD_PREFIX) && !name.starts_with(OPTIM_PREFIX)
                })
                .collect())
        }
    }
}

fn save_checkpoint(
    path: &Path,
    (model, target): (&SslModel, Option<&Target>),
    sgd: &Sgd,
    meta: &CheckpointMeta,
) -> Result<(), TrainError> {
    let mut tensors: Vec<(String, Tensor)> = model
        .vars()
        .iter()
        .map(|(name, var)| (name.clone(), var.as_tensor().clone()))
        .collect();
    tensors.extend(
        sgd.state()
            .iter()
            .map(|(name, t)| (format!("{OPTIM_PREFIX}{name}"), t.clone())),
    );
    if let Some(target) = target {
        tensors.extend(target.checkpoint_tensors());
    }
    checkpoint::save(path, &tensors, meta)
}

/// One optimiser step on two views of a batch (row `i` of `x1` and of `x2` are a positive
/// pair); returns the loss before the step.
pub fn train_step(
    model: &SslModel,
    sgd: &mut Sgd,
    x1: &Tensor,
    x2: &Tensor,
    config: &TrainConfig,
    lr: f64,
) -> Result<f32, TrainError> {
    train_step_judged(
        model,
        sgd,
        (x1, x2),
        config,
        lr,
        &JudgedBatch::default(),
        None,
    )
}

/// [`train_step`] with judged pairs among the rows: a `same` pair is a row's two views, a
/// `different` pair two rows of one batch (for InfoNCE each is the other's negative); both
/// objectives also get the judged terms of [`super::judged_loss`] on the trunk's features.
pub fn train_step_judged(
    model: &SslModel,
    sgd: &mut Sgd,
    (x1, x2): (&Tensor, &Tensor),
    config: &TrainConfig,
    lr: f64,
    judged: &JudgedBatch,
    target: Option<&mut Target>,
) -> Result<f32, TrainError> {
    let (h1, z1, p1) = model.forward_train_features(x1)?;
    let (h2, z2, p2) = model.forward_train_features(x2)?;
    let mut loss = match (config.method, target) {
        (Method::SimSiam, _) => simsiam(&p1, &z1, &p2, &z2)?,
        (Method::InfoNce, _) => info_nce(&z1, &z2, config.temperature)?,
        (Method::Byol, Some(target)) => {
            let (t1, t2) = (target.project(x1)?, target.project(x2)?);
            ((byol(&p1, &t2)? + byol(&p2, &t1)?)? * 0.5)?
        }
        (Method::Moby, Some(target)) => {
            let (t1, t2) = (target.project(x1)?, target.project(x2)?);
            let loss = match target.queue() {
                Some(queue) => {
                    let tau = config.temperature;
                    ((moby(&p1, &t2, queue, tau)? + moby(&p2, &t1, queue, tau)?)? * 0.5)?
                }
                None => return Err(TrainError::NotEnoughData("MoBY needs its queue".into())),
            };
            target.enqueue(&Tensor::cat(&[&t1, &t2], 0)?)?;
            loss
        }
        (Method::Swav, _) => {
            let prototypes = model
                .prototypes()
                .ok_or_else(|| TrainError::NotEnoughData("SwAV needs its prototypes".into()))?;
            let c = l2_normalise_rows(prototypes.as_tensor())?;
            let scores = |z: &Tensor| l2_normalise_rows(z)?.matmul(&c.t()?);
            swav(
                &scores(&z1)?,
                &scores(&z2)?,
                config.temperature,
                config.sinkhorn_epsilon,
                SWAV_ITERATIONS,
            )?
        }
        (Method::Byol | Method::Moby, None) => {
            return Err(TrainError::NotEnoughData(format!(
                "{} needs its target network",
                config.method.label()
            )))
        }
    };
    let margin = config
        .judgements
        .as_ref()
        .map_or(DEFAULT_MARGIN, |j| j.margin);
    if let Some(term) = super::judged_loss::judged_terms(&h1, &h2, judged, margin)? {
        loss = (loss + term)?;
    }
    let value = loss.to_scalar::<f32>()?;
    let grads = loss.backward()?;
    sgd.step(model.vars(), &grads, lr)?;
    Ok(value)
}

/// What every optimiser step ends with, after [`train_step_judged`]: the target network (if
/// any) follows the online weights after `done` of `config.steps` steps, and SwAV's prototypes
/// go back to unit rows.
pub fn finish_step(
    model: &SslModel,
    target: Option<&Target>,
    done: usize,
    config: &TrainConfig,
) -> Result<(), TrainError> {
    if let Some(target) = target {
        target.follow(model, done, config.steps, config.base_momentum)?;
    }
    model.normalise_prototypes()?;
    Ok(())
}

/// Each judged pair's cosine under the model's current weights (in `plan` order).
fn pair_cosines(
    model: &SslModel,
    plan: &JudgedPlan,
    config: &TrainConfig,
    norm: Normalisation,
    device: &Device,
) -> Result<Vec<f32>, TrainError> {
    let images: Vec<&RgbImage> = plan.pairs.iter().flat_map(|p| [&p.a, &p.b]).collect();
    let rows = embed(model, &images, config.input_size_px, norm, device)?;
    Ok((0..plan.pairs.len())
        .map(|i| natview_core::linalg::dot(rows.row(2 * i), rows.row(2 * i + 1)))
        .collect())
}

/// Runs (or resumes) a fine-tuning run.
pub fn finetune(
    request: &TrainRequest<'_>,
    observer: &dyn TrainObserver,
    cancel: &CancelFlag,
) -> Result<TrainReport, TrainError> {
    let device = natview_encoder::choose_device(request.force_cpu);
    let config = &request.config;
    // Read once: for a checkpoint model this opens the starting weights.
    let (architecture, norm) = config.network()?;
    let dataset_fingerprint = request.dataset.fingerprint();
    let names: Vec<String> = group_by_listing(&request.dataset.items)
        .into_iter()
        .map(|(name, _)| name)
        .collect();

    // Resume: the checkpoint decides the split, the step and the tensors.
    let resumed: Option<(HashMap<String, Tensor>, CheckpointMeta)> = if request.resume {
        let (tensors, meta): (HashMap<String, Tensor>, CheckpointMeta) =
            checkpoint::load(&request.checkpoint, &device)?;
        if meta.config.identity() != config.identity() {
            return Err(TrainError::Mismatch {
                path: request.checkpoint.clone(),
                message: "the checkpoint was made with other options; resume with the same ones"
                    .into(),
            });
        }
        if meta.dataset_fingerprint != dataset_fingerprint {
            return Err(TrainError::Mismatch {
                path: request.checkpoint.clone(),
                message: "the checkpoint was made on another dataset (or it changed)".into(),
            });
        }
        Some((tensors, meta))
    } else {
        None
    };
    let heldout = match &resumed {
        Some((_, meta)) => meta.heldout.clone(),
        None => split_listings(&names, config.heldout_fraction, config.seed).1,
    };
    let held: std::collections::HashSet<&String> = heldout.iter().collect();

    observer.phase("decoding images");
    let (mut images, eval_images) = load_images(request.dataset, config.input_size_px)
        .split(&held, config.holdout_view.as_ref());
    let plan = config
        .judgements
        .as_ref()
        .map(|j| super::judged::prepare(j, &mut images, &eval_images, config.seed));
    let mut train: Vec<String> = names
        .iter()
        .filter(|n| images.by_listing.contains_key(*n))
        .cloned()
        .collect();
    train.sort();
    if train.len() < 2 {
        return Err(TrainError::NotEnoughData(format!(
            "{}: only {} listing(s) left to train on",
            request.dataset.source.display(),
            train.len()
        )));
    }
    let batch = config.batch_size.min(train.len()).max(2);
    let (heldout_items, heldout_images) = heldout_set(&eval_images, &heldout);
    // The health checks' sample: held-out listings where there are enough images, else the
    // training listings; the first HEALTH_SAMPLE images, whole listings together.
    let (sample_items, sample_images) = if heldout_images.len() >= 16 {
        (heldout_items.clone(), heldout_images.clone())
    } else {
        heldout_set(&images, &train)
    };
    let sample_count = sample_images.len().min(HEALTH_SAMPLE);
    let sample_listings = natview_analysis::listing_numbers(&sample_items[..sample_count]);
    let sample_images = &sample_images[..sample_count];
    let health_check = |model: &SslModel, step: usize| -> Result<Option<HealthPoint>, TrainError> {
        if config.health_every == 0 || sample_count < 8 {
            return Ok(None);
        }
        let rows = embed(model, sample_images, config.input_size_px, norm, &device)?;
        Ok(super::health_track::measure(&rows, &sample_listings, step))
    };

    let stored_judged = resumed.as_ref().map(|(_, meta)| meta.judged_before.clone());
    let mut stored_target: Option<HashMap<String, Tensor>> = None;
    let (tensors, optimiser_state, start_step, mut loss_curve, mut train_secs, stored_before) =
        match resumed {
            Some((tensors, meta)) => {
                let (kept_target, tensors): (HashMap<_, _>, HashMap<_, _>) = tensors
                    .into_iter()
                    .partition(|(name, _)| name.starts_with(TARGET_PREFIX));
                stored_target = (!kept_target.is_empty()).then(|| {
                    kept_target
                        .into_iter()
                        .map(|(name, t)| (name[TARGET_PREFIX.len()..].to_string(), t))
                        .collect()
                });
                let (optim, model): (HashMap<_, _>, HashMap<_, _>) = tensors
                    .into_iter()
                    .partition(|(name, _)| name.starts_with(OPTIM_PREFIX));
                let optim = optim
                    .into_iter()
                    .map(|(name, t)| (name[OPTIM_PREFIX.len()..].to_string(), t))
                    .collect();
                (
                    model,
                    optim,
                    meta.step,
                    meta.loss_curve,
                    meta.train_secs,
                    Some(meta.before),
                )
            }
            None => (
                initial_tensors(request, &device)?,
                HashMap::new(),
                0,
                Vec::new(),
                0.0,
                None,
            ),
        };
    let mut model = SslModel::with_prototypes(
        &architecture,
        config.method,
        tensors,
        (config.seed, config.prototypes),
        &device,
    )
    .map_err(|e| match (&config.start, start_step) {
        (StartFrom::Weights(path), 0) => TrainError::File {
            path: path.clone(),
            message: format!("weights do not fit model `{}`: {e}", config.model.name()),
        },
        _ => TrainError::Candle(e),
    })?;
    if config.freeze >= model.stages() {
        return Err(TrainError::NotEnoughData(format!(
            "--freeze {} would fix every one of the model's {} stages",
            config.freeze,
            model.stages()
        )));
    }
    model.set_frozen(config.freeze);
    let mut target = Target::for_config(&architecture, &model, stored_target, config, &device)?;
    let mut sgd = Sgd::new(config.momentum, config.weight_decay).with_state(optimiser_state);

    observer.phase("evaluating on held-out listings");
    let evaluable = heldout_items.len() >= 4;
    let pixels = if evaluable {
        let rows: Vec<Vec<f32>> = heldout_images
            .par_iter()
            .map(|image| {
                let mut v = pixel_vector(image, 32);
                l2_normalise(&mut v);
                v
            })
            .collect();
        let matrix = Matrix::from_rows(&rows)
            .ok_or_else(|| TrainError::NotEnoughData("pixel rows of unequal length".into()))?;
        evaluate_encoder_rows(&heldout_items, &matrix, config.holdout_view.as_ref())?
    } else {
        EvalSummary::default()
    };
    let before = match stored_before {
        Some(before) => before,
        None if evaluable => evaluate_encoder_rows(
            &heldout_items,
            &embed(&model, &heldout_images, config.input_size_px, norm, &device)?,
            config.holdout_view.as_ref(),
        )?,
        None => EvalSummary::default(),
    };

    let judged_before = match (stored_judged, &plan) {
        (Some(rows), _) if !rows.is_empty() => rows,
        (_, Some(plan)) if !plan.pairs.is_empty() => {
            observer.phase("measuring the judged pairs");
            judged_rows(plan, &pair_cosines(&model, plan, config, norm, &device)?)
        }
        _ => Vec::new(),
    };
    let mut meta = CheckpointMeta {
        judged_before: judged_before.clone(),
        step: start_step,
        config: config.clone(),
        heldout: heldout.clone(),
        dataset_fingerprint: dataset_fingerprint.clone(),
        before,
        loss_curve: Vec::new(),
        train_secs,
    };
    let started = Instant::now();
    let mut block_losses: Vec<f32> = Vec::new();
    let mut outcome = Outcome::Finished;
    let mut step = start_step;
    let (mut health, mut collapse) = (Vec::new(), None);
    let mut watch = CollapseWatch::default();
    if let Some(point) = health_check(&model, step)? {
        watch.observe(&point);
        observer.health(&point);
        health.push(point);
    }
    while step < config.steps {
        if cancel.is_cancelled() {
            outcome = Outcome::Interrupted;
            break;
        }
        let listings = step_listings(&train, batch, config.seed, step);
        let (mut first, mut second) =
            views(&images, &listings, config.input_size_px, config.seed, step);
        let mut judged_rows_of_step = JudgedBatch::default();
        if let Some(plan) = plan.as_ref().filter(|p| p.trains()) {
            let (a, b, rows) =
                plan.step_rows(batch, config.input_size_px, config.seed, step, first.len());
            first.extend(a);
            second.extend(b);
            judged_rows_of_step = rows;
        }
        let x1 = images_tensor(&first, config.input_size_px, norm, &device)?;
        let x2 = images_tensor(&second, config.input_size_px, norm, &device)?;
        let lr = learning_rate(
            config.learning_rate,
            step,
            config.warmup_steps,
            config.steps,
        );
        let loss_value = train_step_judged(
            &model,
            &mut sgd,
            (&x1, &x2),
            config,
            lr,
            &judged_rows_of_step,
            target.as_mut(),
        )?;
        finish_step(&model, target.as_ref(), step + 1, config)?;
        if !loss_value.is_finite() {
            return Err(TrainError::NotEnoughData(format!(
                "the loss diverged at step {} ({loss_value}); lower --lr",
                step + 1
            )));
        }
        step += 1;
        block_losses.push(loss_value);
        if step % LOSS_BLOCK == 0 || step == config.steps {
            loss_curve.push(block_losses.iter().sum::<f32>() / block_losses.len() as f32);
            block_losses.clear();
        }
        let elapsed = started.elapsed().as_secs_f64();
        observer.step(&StepReport {
            step,
            total: config.steps,
            loss: loss_value,
            learning_rate: lr,
            steps_per_sec: (step - start_step) as f64 / elapsed.max(1e-9),
        });
        if config.health_every > 0 && step % config.health_every == 0 {
            if let Some(point) = health_check(&model, step)? {
                observer.health(&point);
                health.push(point);
                if let Some(reason) = watch.observe(&point).filter(|_| config.collapse_stop) {
                    collapse = Some(reason);
                    outcome = Outcome::Collapsed;
                    break;
                }
            }
        }
        if step % CHECKPOINT_EVERY == 0 && step < config.steps {
            meta.step = step;
            meta.loss_curve = loss_curve.clone();
            meta.train_secs = train_secs + elapsed;
            save_checkpoint(&request.checkpoint, (&model, target.as_ref()), &sgd, &meta)?;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    train_secs += elapsed;
    meta.step = step;
    meta.loss_curve = loss_curve.clone();
    meta.train_secs = train_secs;
    save_checkpoint(&request.checkpoint, (&model, target.as_ref()), &sgd, &meta)?;

    let after = if outcome == Outcome::Finished {
        let mut trunk: Vec<(String, Tensor)> = model.export_tensors().into_iter().collect();
        trunk.sort_by(|a, b| a.0.cmp(&b.0));
        let weights_meta = WeightsMeta {
            model: config.model,
            input_size_px: config.input_size_px,
            config: config.clone(),
            heldout: heldout.clone(),
            dataset_fingerprint,
            steps: step,
            train_secs,
            transformer: match &architecture {
                natview_encoder::Architecture::Vit(c) => Some(c.clone()),
                _ => None,
            },
            normalisation: Some(norm),
        };
        checkpoint::save(&request.out, &trunk, &weights_meta)?;
        if evaluable {
            observer.phase("evaluating the trained encoder");
            Some(evaluate_encoder_rows(
                &heldout_items,
                &embed(&model, &heldout_images, config.input_size_px, norm, &device)?,
                config.holdout_view.as_ref(),
            )?)
        } else {
            None
        }
    } else {
        None
    };
    let mut judged = judged_before;
    if let (Outcome::Finished, Some(plan)) = (outcome, plan.as_ref()) {
        if !plan.pairs.is_empty() {
            observer.phase("measuring the judged pairs");
            let now = judged_rows(plan, &pair_cosines(&model, plan, config, norm, &device)?);
            for row in &mut judged {
                row.after = now
                    .iter()
                    .find(|n| (n.verdict, n.trained) == (row.verdict, row.trained))
                    .map(|n| n.before);
            }
        }
    }
    Ok(TrainReport {
        judged,
        judged_missing: plan.as_ref().map_or(0, |p| p.missing),
        outcome,
        steps_done: step,
        steps_per_sec: (step - start_step) as f64 / elapsed.max(1e-9),
        train_secs,
        loss_curve,
        heldout_listings: heldout.len(),
        heldout_images: heldout_items.len(),
        before,
        after,
        pixels,
        device: natview_encoder::device_name(&device),
        holdout_view: config.holdout_view.clone(),
        health,
        collapse,
    })
}
