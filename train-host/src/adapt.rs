//! Adapting torchvision's ImageNet VGG11 to CIFAR: its eight convolutions
//! (`features.{0,3,6,8,11,13,16,18}`) become ours, its classifier is dropped and a new
//! `Linear(512, classes)` is added. Weights come from a file the user supplies (`.pth` as written
//! by `torch.save`, or `.safetensors`); nothing is downloaded.
use crate::arch::{Arch, FloatNet, Layer};
use std::collections::HashMap;
use std::path::Path;

/// torchvision's indices of VGG11's convolutions in `features`.
pub const TORCHVISION_CONVS: [usize; 8] = [0, 3, 6, 8, 11, 13, 16, 18];

/// A named float tensor read from a weights file.
struct Named {
    shape: Vec<usize>,
    values: Vec<f32>,
}

fn read_safetensors(path: &Path) -> Result<HashMap<String, Named>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| format!("{}: not a safetensors file: {e}", path.display()))?;
    st.iter()
        .filter(|(name, _)| name.starts_with("features."))
        .map(|(name, view)| {
            if view.dtype() != safetensors::Dtype::F32 {
                return Err(format!("{name}: expected f32 weights, found {:?}", view.dtype()));
            }
            let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            Ok((name.to_string(), Named { shape: view.shape().to_vec(), values }))
        })
        .collect()
}

fn read_pth(path: &Path) -> Result<HashMap<String, Named>, String> {
    let reader = pytorch_reader::PytorchReader::new(path).map_err(|e| format!("{}: not a PyTorch weights file: {e}", path.display()))?;
    reader
        .into_tensors()
        .into_iter()
        .filter(|(name, _)| name.starts_with("features."))
        .map(|(name, t)| {
            if t.dtype() != pytorch_reader::DType::F32 {
                return Err(format!("{name}: expected f32 weights, found {:?}", t.dtype()));
            }
            let shape = t.shape().to_vec();
            let bytes = t.read().map_err(|e| format!("{name}: {e}"))?;
            let values = bytes.chunks_exact(4).map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]])).collect();
            Ok((name, Named { shape, values }))
        })
        .collect()
}

/// Reads torchvision VGG11 weights and returns our VGG11 (`width` 1) for `classes` classes, with
/// the ImageNet convolutions and a fresh He-initialised classifier (from `seed`).
pub fn adapt(path: &Path, classes: usize, seed: u64) -> Result<FloatNet, String> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let mut tensors = match ext {
        "safetensors" => read_safetensors(path)?,
        "pth" | "pt" | "bin" => read_pth(path)?,
        _ => return Err(format!("{}: expected a .pth or .safetensors file", path.display())),
    };
    let mut net = FloatNet::random(Arch::by_name("vgg11", classes, 1.0)?, (3, 32, 32), seed);
    let mut shape_in = 3;
    let convs = net.arch.layers.iter().zip(net.params.iter_mut()).filter(|(l, _)| matches!(l, Layer::Conv { .. }));
    for ((layer, params), index) in convs.zip(TORCHVISION_CONVS) {
        let Layer::Conv { out, k, .. } = *layer else { unreachable!("filtered to convolutions") };
        let p = params.as_mut().expect("convolutions have parameters");
        for (suffix, want, dst) in [("weight", vec![out, shape_in, k, k], &mut p.weight), ("bias", vec![out], &mut p.bias)] {
            let name = format!("features.{index}.{suffix}");
            let t = tensors.remove(&name).ok_or_else(|| format!("{}: no tensor {name} (is this torchvision's VGG11?)", path.display()))?;
            if t.shape != want {
                return Err(format!("{name} has shape {:?}, VGG11 needs {want:?}", t.shape));
            }
            *dst = t.values;
        }
        shape_in = out;
    }
    Ok(net)
}
