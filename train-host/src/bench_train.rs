//! `train-host bench-train`: float training speed of an architecture on burn's backends, and
//! PyTorch's on the same network in the same run (`--torch PYTHON`), as the ratio the training
//! issue asks for. The PyTorch side is `bench/torch_train.py`, fed the layer list as JSON so both
//! build one network from one description.
use crate::arch::Arch;
use crate::backend::Backend;
use crate::cifar::Dataset;
use crate::train::{images_per_second, TrainConfig};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

const TORCH_SCRIPT: &str = include_str!("../bench/torch_train.py");

/// What one framework measured.
#[derive(Debug, Clone)]
pub struct Speed {
    /// Framework and version.
    pub framework: String,
    /// Training images per second.
    pub images_per_second: f64,
}

/// burn's speed on each of `backends` (also with bfloat16 convolutions if `bf16`), then
/// PyTorch's (float32 and bf16 autocast) when `python` is given.
pub fn measure(cfg: &TrainConfig, ds: &Dataset, steps: usize, backends: &[Backend], bf16: bool, python: Option<&Path>) -> Result<Vec<Speed>, String> {
    let mut v = Vec::new();
    for &b in backends {
        let precisions: &[bool] = if bf16 { &[false, true] } else { &[false] };
        for &half in precisions {
            let cfg = TrainConfig { bf16: half, backend: b, ..cfg.clone() };
            let images_per_second = images_per_second(&cfg, ds, steps)?;
            let precision = if half { ", bf16 convolutions" } else { "" };
            v.push(Speed { framework: format!("cifhe ({}{precision}, {})", b.describe(), b.runs_on()), images_per_second });
        }
    }
    if let Some(python) = python {
        v.push(torch(cfg, steps, python, false)?);
        v.push(torch(cfg, steps, python, true)?);
    }
    Ok(v)
}

/// PyTorch's speed in float32, or with its forward under bfloat16 autocast (`bf16`): what
/// reduced precision would buy on this CPU. It runs on rayon's thread count (the logical cores,
/// or `RAYON_NUM_THREADS`), which its row names, as each burn row names its backend's pool.
fn torch(cfg: &TrainConfig, steps: usize, python: &Path, bf16: bool) -> Result<Speed, String> {
    let arch = Arch::by_name(&cfg.arch, cfg.classes, cfg.width)?;
    let layers = serde_json::to_string(&arch.layers).map_err(|e| e.to_string())?;
    let threads = rayon::current_num_threads().to_string();
    let (batch, steps, smoothing) = (cfg.batch.to_string(), steps.to_string(), cfg.smoothing.to_string());
    let mut args = vec!["-", "--layers", &layers, "--batch", &batch, "--steps", &steps, "--threads", &threads, "--smoothing", &smoothing];
    if cfg.batch_norm {
        args.push("--batch-norm");
    }
    if bf16 {
        args.push("--bf16");
    }
    let mut child =
        Command::new(python).args(&args).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    child.stdin.take().expect("piped stdin").write_all(TORCH_SCRIPT.as_bytes()).map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("{} failed on the PyTorch benchmark (is torch installed for it?)", python.display()));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("the PyTorch benchmark printed no result: {e}"))?;
    let ips = v["images_per_second"].as_f64().ok_or("the PyTorch benchmark printed no images_per_second")?;
    let precision = if bf16 { ", bf16 autocast" } else { "" };
    Ok(Speed { framework: format!("PyTorch {}{precision} ({} threads)", v["torch"].as_str().unwrap_or("?"), v["threads"]), images_per_second: ips })
}

/// The markdown table, with each framework's speed relative to the first.
pub fn markdown(cfg: &TrainConfig, steps: usize, speeds: &[Speed], command: &str) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Float training of `{}` at width {} (batch {}, Adam, {} timed steps after a warm-up step{}) on {}, by `{command}`; each row names the threads it ran on.\n",
        cfg.arch,
        cfg.width,
        cfg.batch,
        steps,
        if cfg.batch_norm { ", batch norm" } else { "" },
        crate::bench::cpu_name(),
    );
    let _ = writeln!(s, "| framework | training images/s | relative to the first row |\n|---|---|---|");
    for sp in speeds {
        let _ = writeln!(s, "| {} | {:.2} | {:.2}× |", sp.framework, sp.images_per_second, sp.images_per_second / speeds[0].images_per_second);
    }
    s
}
