//! The training loop: data, steps, checkpoints, evaluation before and after.

use super::checkpoint::{self, OPTIM_PREFIX};
use super::*;

/// Images kept in memory for training: the shorter side at most this many times the input size.
const KEEP_SCALE: u32 = 2;

/// Decoded training data: the images of each listing.
struct Images {
    /// Listing name → its items' images (in dataset order), undecodable items left out.
    by_listing: HashMap<String, Vec<(Item, RgbImage)>>,
}

impl Images {
    /// Splits into the training images (listings not in `heldout`, without the views that
    /// `holdout_view` picks) and the evaluation images (every view of the `heldout` listings).
    fn split(
        self,
        heldout: &std::collections::HashSet<&String>,
        holdout_view: Option<&ViewFilter>,
    ) -> (Images, Images) {
        let (mut train, mut eval) = (HashMap::new(), HashMap::new());
        for (name, list) in self.by_listing {
            if heldout.contains(&name) {
                eval.insert(name, list);
                continue;
            }
            let kept: Vec<_> = list
                .into_iter()
                .filter(|(item, _)| holdout_view.is_none_or(|f| !f.matches(item)))
                .collect();
            if !kept.is_empty() {
                train.insert(name, kept);
            }
        }
        (Images { by_listing: train }, Images { by_listing: eval })
    }
}

fn load_images(dataset: &Dataset, size_px: u32) -> Images {
    let keep = size_px * KEEP_SCALE;
    let decoded: Vec<Option<(Item, RgbImage)>> = dataset
        .items
        .par_iter()
        .map(|item| {
            let image = decode_rgb(&dataset.item_path(item), keep).ok()?;
            let (w, h) = image.dimensions();
            let short = w.min(h);
            let image = if short > keep {
                let scale = f64::from(keep) / f64::from(short);
                image::imageops::resize(
                    &image,
                    ((f64::from(w) * scale).round() as u32).max(1),
                    ((f64::from(h) * scale).round() as u32).max(1),
                    image::imageops::FilterType::Triangle,
                )
            } else {
                image
            };
            Some((item.clone(), image))
        })
        .collect();
    let mut by_listing: HashMap<String, Vec<(Item, RgbImage)>> = HashMap::new();
    for (item, image) in decoded.into_iter().flatten() {
        by_listing
            .entry(item.listing.clone())
            .or_default()
            .push((item, image));
    }
    Images { by_listing }
}

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

/// The held-out items and images, in a stable order.
fn heldout_set<'a>(images: &'a Images, heldout: &[String]) -> (Vec<Item>, Vec<&'a RgbImage>) {
    let mut items = Vec::new();
    let mut refs = Vec::new();
    for name in heldout {
        if let Some(list) = images.by_listing.get(name) {
            for (item, image) in list {
                let mut item = item.clone();
                item.id = items.len();
                items.push(item);
                refs.push(image);
            }
        }
    }
    (items, refs)
}

fn initial_tensors(
    request: &TrainRequest<'_>,
    device: &Device,
) -> Result<HashMap<String, Tensor>, TrainError> {
    match &request.config.start {
        StartFrom::Scratch => Ok(HashMap::new()),
        StartFrom::Weights(path) => {
            let (tensors, _) =
                crate::encoder::load_weights(path, device).map_err(|e| TrainError::File {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
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

/// Two views of each listing in `batch`: two different natural views when there are, else two
/// augmentations of the one image.
fn views(
    images: &Images,
    batch: &[&String],
    size_px: u32,
    seed: u64,
    step: usize,
) -> (Vec<RgbImage>, Vec<RgbImage>) {
    let pairs: Vec<(RgbImage, RgbImage)> = batch
        .par_iter()
        .enumerate()
        .map(|(i, name)| {
            let mut rng = SplitMix64::new(
                seed ^ (step as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (i as u64) << 40,
            );
            let list = &images.by_listing[*name];
            if list.len() >= 2 {
                let a = rng.below(list.len());
                let mut b = rng.below(list.len() - 1);
                if b >= a {
                    b += 1;
                }
                let params = AugmentParams::natural_views();
                (
                    augment(&list[a].1, size_px, &params, &mut rng),
                    augment(&list[b].1, size_px, &params, &mut rng),
                )
            } else {
                let params = AugmentParams::single_view();
                (
                    augment(&list[0].1, size_px, &params, &mut rng),
                    augment(&list[0].1, size_px, &params, &mut rng),
                )
            }
        })
        .collect();
    pairs.into_iter().unzip()
}

/// The listings of step `step`: consecutive slices of a per-epoch seeded permutation.
fn step_listings(train: &[String], batch: usize, seed: u64, step: usize) -> Vec<&String> {
    let per_epoch = (train.len() / batch).max(1);
    let epoch = step / per_epoch;
    let slot = step % per_epoch;
    let mut order: Vec<usize> = (0..train.len()).collect();
    SplitMix64::new(seed ^ (epoch as u64).wrapping_mul(0xd1b5_4a32_d192_ed03)).shuffle(&mut order);
    order[slot * batch..((slot + 1) * batch).min(order.len())]
        .iter()
        .map(|&i| &train[i])
        .collect()
}

fn save_checkpoint(
    path: &Path,
    model: &SslModel,
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
    let (z1, p1) = model.forward_train(x1)?;
    let (z2, p2) = model.forward_train(x2)?;
    let loss = match config.method {
        Method::SimSiam => simsiam(&p1, &z1, &p2, &z2)?,
        Method::InfoNce => info_nce(&z1, &z2, config.temperature)?,
    };
    let value = loss.to_scalar::<f32>()?;
    let grads = loss.backward()?;
    sgd.step(model.vars(), &grads, lr)?;
    Ok(value)
}

/// Runs (or resumes) a fine-tuning run.
pub fn finetune(
    request: &TrainRequest<'_>,
    observer: &dyn TrainObserver,
    cancel: &CancelFlag,
) -> Result<TrainReport, TrainError> {
    let device = crate::encoder::choose_device(request.force_cpu);
    let config = &request.config;
    let Some(architecture) = config.model.architecture() else {
        return Err(TrainError::NotEnoughData(
            "the pixel baseline has nothing to train".into(),
        ));
    };
    let dataset_fingerprint = request.dataset.fingerprint();
    let names: Vec<String> = group_by_listing(&request.dataset.items)
        .into_iter()
        .map(|(name, _)| name)
        .collect();

    // Resume: the checkpoint decides the split, the step and the tensors.
    let resumed: Option<(HashMap<String, Tensor>, CheckpointMeta)> = if request.resume {
        let (tensors, meta): (HashMap<String, Tensor>, CheckpointMeta) =
            checkpoint::load(&request.checkpoint, &device)?;
        if meta.config != *config {
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
    let (images, eval_images) = load_images(request.dataset, config.input_size_px)
        .split(&held, config.holdout_view.as_ref());
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

    let (tensors, optimiser_state, start_step, mut loss_curve, mut train_secs, stored_before) =
        match resumed {
            Some((tensors, meta)) => {
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
    let mut model = SslModel::new(&architecture, config.method, tensors, config.seed, &device)
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
            &embed(
                &model,
                &heldout_images,
                config.input_size_px,
                config.model.normalisation(),
                &device,
            )?,
            config.holdout_view.as_ref(),
        )?,
        None => EvalSummary::default(),
    };

    let mut meta = CheckpointMeta {
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
    while step < config.steps {
        if cancel.is_cancelled() {
            outcome = Outcome::Interrupted;
            break;
        }
        let listings = step_listings(&train, batch, config.seed, step);
        let (first, second) = views(&images, &listings, config.input_size_px, config.seed, step);
        let norm = config.model.normalisation();
        let x1 = images_tensor(&first, config.input_size_px, norm, &device)?;
        let x2 = images_tensor(&second, config.input_size_px, norm, &device)?;
        let lr = learning_rate(
            config.learning_rate,
            step,
            config.warmup_steps,
            config.steps,
        );
        let loss_value = train_step(&model, &mut sgd, &x1, &x2, config, lr)?;
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
        if step % CHECKPOINT_EVERY == 0 && step < config.steps {
            meta.step = step;
            meta.loss_curve = loss_curve.clone();
            meta.train_secs = train_secs + elapsed;
            save_checkpoint(&request.checkpoint, &model, &sgd, &meta)?;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    train_secs += elapsed;
    meta.step = step;
    meta.loss_curve = loss_curve.clone();
    meta.train_secs = train_secs;
    save_checkpoint(&request.checkpoint, &model, &sgd, &meta)?;

    let after = if outcome == Outcome::Finished {
        let mut trunk: Vec<(String, Tensor)> = model.trunk_tensors().into_iter().collect();
        trunk.sort_by(|a, b| a.0.cmp(&b.0));
        let weights_meta = WeightsMeta {
            model: config.model,
            input_size_px: config.input_size_px,
            config: config.clone(),
            heldout: heldout.clone(),
            dataset_fingerprint,
            steps: step,
            train_secs,
        };
        checkpoint::save(&request.out, &trunk, &weights_meta)?;
        if evaluable {
            observer.phase("evaluating the trained encoder");
            Some(evaluate_encoder_rows(
                &heldout_items,
                &embed(
                    &model,
                    &heldout_images,
                    config.input_size_px,
                    config.model.normalisation(),
                    &device,
                )?,
                config.holdout_view.as_ref(),
            )?)
        } else {
            None
        }
    } else {
        None
    };
    Ok(TrainReport {
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
        device: crate::encoder::device_name(&device),
        holdout_view: config.holdout_view.clone(),
    })
}
