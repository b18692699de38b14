//! Compiling a training run into the integer circuit, and the accuracy report printed with it:
//! float, QAT and circuit accuracy side by side, and how often the circuit's class is the QAT
//! network's (the check that compiling kept what training learned).
use crate::arch::{Arch, FloatNet};
use crate::report::rounding_words;
use crate::{cifar, compile, eval, model_file, run_folder, train};
use burn::tensor::Device;
use cifhe_core::{Model, NoiseModel, RunConfig};
use std::fmt::Write;
use std::path::Path;

/// Compiles a trained network with `rounding_bits` as the model's default (calibrating on the
/// first training images), writes `model.cifhe` into the run folder (and `out`), and prints the
/// training report. The model's description says how the run was made (the command, and what
/// its epochs ran on: the speed settings are not part of the command).
#[allow(clippy::too_many_arguments)]
pub fn finished(
    cfg: &train::TrainConfig,
    t: &run_folder::Trained,
    train_set: &cifar::Dataset,
    test: &cifar::Dataset,
    rounding_bits: Option<u8>,
    run_dir: &Path,
    out: Option<&Path>,
    device: &Device,
) -> Result<(), String> {
    let ds_name = train_set.kind.arg();
    let name = format!("{}-{ds_name}", cfg.arch);
    let desc = format!(
        "{} (width {}) trained on {} {ds_name} training images: {} float + {} QAT epochs, {} weights (one scale per {}), {} activations, \
         {} ({}); by `train-host train {} --rounding-bits {}`.",
        cfg.arch,
        cfg.width,
        train_set.len(),
        cfg.float_epochs,
        cfg.qat_epochs,
        cfg.weight_bits.describe(),
        scale_granularity(cfg.per_channel_weights),
        cfg.act_bits.describe(),
        compute_hours(t.seconds, cfg.backend.cpu_threads()),
        run_folder::ran_on_words(&t.log),
        cfg.options(),
        rounding_bits.map_or("none".into(), |b| b.to_string()),
    );
    let qcfg = cfg.compile_quant(rounding_bits);
    let calib = train::calibration_images(train_set);
    let bytes = compile::compile(&t.net, cfg.mean, cfg.std, qcfg, calib, Some(&t.scales), &name, &desc, &train_set.names, &|s| eprintln!("{s}"))?;
    let path = run_dir.join("model.cifhe");
    std::fs::write(&path, &bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    if let Some(o) = out {
        std::fs::write(o, &bytes).map_err(|e| format!("cannot write {}: {e}", o.display()))?;
    }
    let m = model_file::open(&path, &bytes)?;
    print!("{}", train_report(&m, t, cfg, test, device)?);
    println!("wrote {}", out.unwrap_or(&path).display());
    Ok(())
}

/// What a run of `seconds` cost: CPU-hours (wall-clock hours × the threads it trained on), or
/// hours on a GPU backend.
fn compute_hours(seconds: f64, cpu_threads: Option<usize>) -> String {
    let (hours, unit) = match cpu_threads {
        Some(n) => (seconds * n as f64 / 3600.0, "CPU-hours"),
        None => (seconds / 3600.0, "hours"),
    };
    format!("{hours:.2} {unit} {}", crate::backend::runs_on(cpu_threads))
}

/// Compiles `net`, the latest weights of the run in `run_dir` (trained as `log` says), without
/// QAT into `out`, and prints the circuit's accuracy exact, rounded, and in FHE simulation beside
/// the network's last logged accuracy.
#[allow(clippy::too_many_arguments)]
pub fn post_training(
    cfg: &train::TrainConfig,
    net: &FloatNet,
    log: &[run_folder::EpochLog],
    train_set: &cifar::Dataset,
    test: &cifar::Dataset,
    rounding_bits: Option<u8>,
    run_dir: &Path,
    out: &Path,
) -> Result<(), String> {
    let ds_name = train_set.kind.arg();
    let weights =
        format!("{} --weight-bits {} --act-bits {}", if cfg.per_channel_weights { " --per-channel-weights" } else { "" }, cfg.weight_bits, cfg.act_bits);
    let desc = format!(
        "{} (width {}) after {} epochs of training, quantized after training (no QAT): {} weights, {} \
         activations; by `train-host compile --post-training{weights} --run-dir {} --rounding-bits {}`.",
        cfg.arch,
        cfg.width,
        log.len(),
        cfg.weight_bits.describe(),
        cfg.act_bits.describe(),
        run_dir.display(),
        rounding_bits.map_or("none".into(), |b| b.to_string()),
    );
    let calib = train::calibration_images(train_set);
    let name = format!("{}-{ds_name}-post-training", cfg.arch);
    let qcfg = cfg.compile_quant(rounding_bits);
    let bytes = compile::compile(net, cfg.mean, cfg.std, qcfg, calib, None, &name, &desc, &train_set.names, &|s| eprintln!("{s}"))?;
    std::fs::write(out, &bytes).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    let m = model_file::open(out, &bytes)?;
    let circuit = CircuitAccuracy::measure(&m, test)?;
    println!(
        "\npost-training quantization, {} weights with one scale per {}, {} activations, on {} test images:",
        cfg.weight_bits.describe(),
        scale_granularity(cfg.per_channel_weights),
        cfg.act_bits.describe(),
        test.len()
    );
    if let Some(e) = log.last() {
        print!("{}", report_line(&format!("network after {} epoch {} (log)", e.phase, e.epoch), e.eval_accuracy));
    }
    print!("{}", circuit.lines(m.rounding_bits()));
    println!("wrote {}", out.display());
    Ok(())
}

/// What one weight scale covers, in words.
fn scale_granularity(per_channel_weights: bool) -> &'static str {
    if per_channel_weights {
        "output channel"
    } else {
        "tensor"
    }
}

/// A compiled model's accuracy on the test set: exact, rounded to its default bits without
/// noise, and in FHE simulation (rounded, PBS noise at the default p_error).
struct CircuitAccuracy {
    exact: eval::Report,
    rounded: eval::Report,
    simulated: eval::Report,
}

impl CircuitAccuracy {
    fn measure(m: &Model<'_>, test: &cifar::Dataset) -> Result<CircuitAccuracy, String> {
        let rounded = RunConfig { noise: NoiseModel::NONE.into(), ..RunConfig::new(m) };
        Ok(CircuitAccuracy {
            exact: eval::evaluate(m, test, RunConfig { rounding_bits: None, ..rounded }, false)?,
            rounded: eval::evaluate(m, test, rounded, false)?,
            simulated: eval::evaluate(m, test, RunConfig::new(m), false)?,
        })
    }

    /// The three report lines, the rounding being `bits`.
    fn lines(&self, bits: Option<u8>) -> String {
        let r = rounding_words(bits);
        report_line("integer circuit, no rounding", self.exact.accuracy)
            + &report_line(&format!("integer circuit, {r}"), self.rounded.accuracy)
            + &report_line(&format!("FHE simulation, {r}, p_error 2^-40"), self.simulated.accuracy)
    }
}

/// One line of an accuracy report: what was measured, then the accuracy in a column.
fn report_line(what: &str, accuracy: f64) -> String {
    format!("  {what:<50}{:>7.2}%\n", 100.0 * accuracy)
}

/// Float, QAT and integer-circuit accuracy of a finished run, and how often the circuit's class
/// equals the QAT network's: with exact arithmetic (no rounding, no noise), and with both rounding
/// to the model's bits (the network told the circuit's accumulator widths).
fn train_report(m: &Model<'_>, t: &run_folder::Trained, cfg: &train::TrainConfig, test: &cifar::Dataset, device: &Device) -> Result<String, String> {
    let arch = Arch::by_name(&cfg.arch, cfg.classes, cfg.width)?;
    let net = crate::net::Net::from_float(&t.net, device).set_scales(&t.scales, device);
    let quant = cfg.quant();
    let bits = m.rounding_bits();
    let agreement = |a: &[u16], b: &[u16]| {
        let agree = a.iter().zip(b).filter(|(a, b)| a == b).count();
        format!("{:.2}% of images ({agree}/{})", 100.0 * agree as f64 / test.len().max(1) as f64, test.len())
    };
    let (qat_acc, qat_pred) = train::accuracy(&net, &arch, test, cfg, Some(&quant));
    let rounding = bits.map(|bits| crate::net::Rounding::of_model(m, bits.into()));
    let (qat_rounded_acc, qat_rounded_pred) = train::accuracy(&net, &arch, test, cfg, Some(&quant.with_rounding(rounding)));
    let circuit = CircuitAccuracy::measure(m, test)?;
    let float_acc = t.log.iter().rfind(|e| e.phase == "float").map_or(f64::NAN, |e| e.eval_accuracy);
    let mut s = String::new();
    let _ = writeln!(s, "\naccuracy on {} test images:", test.len());
    s += &report_line("float (last float epoch)", float_acc);
    s += &report_line("QAT, fake-quant", qat_acc);
    s += &report_line(&format!("QAT, fake-quant, {}", rounding_words(bits)), qat_rounded_acc);
    s += &circuit.lines(bits);
    let _ = writeln!(s, "  circuit = QAT argmax, no rounding: {}", agreement(&circuit.exact.predictions, &qat_pred));
    let _ = writeln!(s, "  circuit = QAT argmax, {}: {}", rounding_words(bits), agreement(&circuit.rounded.predictions, &qat_rounded_pred));
    let _ = writeln!(s, "  training: {:.2} hours wall-clock", t.seconds / 3600.0);
    let _ = writeln!(s, "  {}", crate::inspect::tfhe_summary(m));
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::compute_hours;

    #[test]
    fn cpu_hours_count_the_threads_and_gpu_hours_do_not() {
        assert_eq!(compute_hours(5400.0, Some(2)), "3.00 CPU-hours on 2 threads");
        assert_eq!(compute_hours(5400.0, Some(1)), "1.50 CPU-hours on 1 thread");
        assert_eq!(compute_hours(5400.0, None), "1.50 hours on the GPU");
    }
}
