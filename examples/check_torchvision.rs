//! Checks that natview's ResNets reproduce torchvision: loads a torchvision `state_dict` saved as
//! safetensors, runs the input tensor saved by `bench/torchvision_reference.py`, and reports the
//! per-image cosine similarity and the largest absolute difference to PyTorch's pooled features.
//!
//! cargo run --release --example check_torchvision -- resnet18 weights.safetensors io.safetensors

use anyhow::{bail, Context};
use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use natview::encoder::{load_weights, ResNet, ResNetConfig};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, weights, io] = args.as_slice() else {
        bail!("usage: check_torchvision resnet18|resnet50 WEIGHTS.safetensors IO.safetensors");
    };
    let config = match model.as_str() {
        "resnet18" => ResNetConfig::resnet18(),
        "resnet50" => ResNetConfig::resnet50(),
        other => bail!("unknown model {other}"),
    };
    let device = Device::Cpu;
    let (tensors, _) = load_weights(weights.as_ref(), &device)?;
    let net = ResNet::new(
        &config,
        VarBuilder::from_tensors(tensors, DType::F32, &device),
    )?;
    let io =
        candle_core::safetensors::load(io, &device).context("reading the reference tensors")?;
    let input = io.get("input").context("no `input` tensor")?;
    let expected = io
        .get("expected")
        .context("no `expected` tensor")?
        .to_vec2::<f32>()?;
    let got = net.forward_t(input, false)?.to_vec2::<f32>()?;
    let mut min_cosine = f32::INFINITY;
    let mut max_abs = 0f32;
    for (a, b) in got.iter().zip(&expected) {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
        min_cosine = min_cosine.min(dot / (na * nb));
        for (x, y) in a.iter().zip(b) {
            max_abs = max_abs.max((x - y).abs());
        }
    }
    println!(
        "{model}: {} images, min cosine to PyTorch {min_cosine:.7}, max |diff| {max_abs:.2e}",
        got.len()
    );
    Ok(())
}
