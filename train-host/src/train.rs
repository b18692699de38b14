//! Training: float epochs, then quantization-aware epochs, checkpointed after every epoch into
//! the run folder ([`crate::run_folder`]) so a run survives interruption (`--resume`).
use crate::arch::{Arch, FloatNet};
use crate::augment::Transform;
use crate::backend::Backend;
use crate::cifar::{Dataset, Kind, IMAGE_LEN};
use crate::compile::{input_scale, QuantConfig};
use crate::net::{self, Net, Probe, Quant, Rounding};
use crate::run_folder::{
    append_log, float_net, keep_float_weights, newest, remove_partial, resumable, resumed_on, save, save_partial, Checkpoint, EpochLog, EpochPosition, Trained,
    TrainerState,
};
use crate::schedule::Schedule;
use crate::widths::{act_codes, Widths};
use burn::module::Module;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Bytes, Device, Int, Tensor, TensorData};
use cifhe_core::analysis::declared_width;
use cifhe_core::rng::Rng;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What to train and how.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrainConfig {
    /// Architecture name.
    pub arch: String,
    /// Width multiplier.
    pub width: f32,
    /// Classes.
    pub classes: usize,
    /// Float epochs.
    pub float_epochs: usize,
    /// Quantization-aware epochs.
    pub qat_epochs: usize,
    /// Batch size.
    pub batch: usize,
    /// Peak learning rate of the float phase.
    pub lr: f64,
    /// Peak learning rate of the QAT phase.
    pub qat_lr: f64,
    /// Label smoothing.
    pub smoothing: f32,
    /// How each phase's learning rate moves from its peak (`lr`, `qat_lr`). Stored like
    /// `per_channel_weights`.
    #[serde(skip)]
    pub schedule: Schedule,
    /// Bits of the weight codes, per layer with weights. Checkpoints hold the first width in
    /// place and the list after the checkpoint proper (see [`crate::run_folder`]).
    #[serde(with = "crate::widths::as_first")]
    pub weight_bits: Widths,
    /// Bits of the activation codes: the input's, then each lookup site's. Stored like
    /// `weight_bits`.
    #[serde(with = "crate::widths::as_first")]
    pub act_bits: Widths,
    /// One weight scale per output channel instead of one per tensor. Written after the
    /// checkpoint proper (see [`crate::run_folder`]), like every setting added since the first runs.
    #[serde(skip)]
    pub per_channel_weights: bool,
    /// The first float epochs train only the classifier (the reference's first stage, for a
    /// network adapted from ImageNet: the new head learns before it disturbs the features).
    /// Each stage has its own learning-rate schedule. Stored like `per_channel_weights`.
    #[serde(skip)]
    pub head_epochs: usize,
    /// The run trains on the first this many training images only (`--limit`; `None`: all).
    /// The caller hands `train` the images; kept so that a resume and `compile` take the same ones.
    /// Stored like `per_channel_weights`.
    #[serde(skip)]
    pub limit: Option<usize>,
    /// Largest angle, in degrees, of the random rotations that augment training images (0: none).
    /// Stored like `per_channel_weights`.
    #[serde(skip)]
    pub rotation_degrees: f32,
    /// The float phase's convolutions in bfloat16 (see [`Net::with_conv_dtype`]). A speed
    /// setting, like the backend: not stored, and a run may resume with or without it (its log
    /// records which epochs had it: [`EpochLog::ran_on`]).
    #[serde(skip)]
    pub bf16: bool,
    /// Where burn trains the network. A speed setting, like `bf16`.
    #[serde(skip)]
    pub backend: Backend,
    /// Bits the lookups keep of their accumulators during QAT (rounding-aware training), `None`
    /// for unrounded accumulators.
    pub qat_rounding_bits: Option<u32>,
    /// QAT measures the accumulator widths it rounds to (as the compiler will) at each epoch's
    /// start and, if this is not 0, again every this many batches: the weights move within an
    /// epoch, and a site whose range crosses a power of two loses a bit more in the circuit than
    /// QAT trained it for. Stored after the checkpoint's other additions (see
    /// [`crate::run_folder`]); older runs measured once per epoch (0).
    #[serde(skip)]
    pub remeasure_every: usize,
    /// Each lookup's accumulator declared about the centre of its range
    /// ([`cifhe_core::analysis::centring`]), in QAT's rounding and in the compiled model: a bit
    /// finer rounding at one-sided ranges (a pool's sums), for nothing in TFHE. Stored after the
    /// checkpoint's other additions; older runs did not centre (false).
    #[serde(skip)]
    pub centre_accumulators: bool,
    /// Noise, in rounded steps, that QAT adds to every rounded lookup input during its training
    /// batches (0: none; [`Rounding::noise`]): the error TFHE's lookups read, learned as
    /// dropout-like noise. The epochs' evaluations round exactly, as the circuit. Stored after
    /// the checkpoint's other additions; older runs had none.
    #[serde(skip)]
    pub qat_noise: f32,
    /// Batch normalisation after each convolution during float training (folded before QAT).
    pub batch_norm: bool,
    /// torchvision ImageNet VGG11 weights to start from (`.pth` or `.safetensors`), else random.
    pub init: Option<String>,
    /// Seed of initialisation, shuffling and augmentation.
    pub seed: u64,
    /// Normalisation mean.
    pub mean: [f32; 3],
    /// Normalisation standard deviation.
    pub std: [f32; 3],
}

impl TrainConfig {
    /// The default recipe for `dataset`: what `train` builds when given no options (its
    /// options' defaults are read from here). The shipped models' commands override parts of it;
    /// their logs say which.
    pub fn recipe(dataset: Kind) -> TrainConfig {
        let (mean, std) = dataset.normalization();
        TrainConfig {
            arch: "small".into(),
            width: 1.0,
            classes: dataset.classes(),
            float_epochs: 10,
            qat_epochs: 2,
            batch: 128,
            lr: 2e-3,
            qat_lr: 2e-4,
            smoothing: 0.1,
            schedule: Schedule::Cosine,
            weight_bits: Widths::uniform(5),
            act_bits: Widths::uniform(5),
            per_channel_weights: false,
            qat_rounding_bits: Some(6),
            remeasure_every: 0,
            centre_accumulators: false,
            qat_noise: 0.0,
            batch_norm: false,
            init: None,
            seed: 0,
            mean,
            std,
            head_epochs: 0,
            rotation_degrees: 0.0,
            limit: None,
            bf16: false,
            backend: Backend::Flex,
        }
    }

    /// The `train` options that make this configuration, as a resume must pass them again (and
    /// as a model's description records them). The data's location and the speed settings
    /// (`--backend`, `--bf16`) are not part of a configuration. Settings that every run has are
    /// written even at their defaults, so that a record stays true if a default changes (models
    /// made before `--schedule` existed ran the cosine schedule).
    pub fn options(&self) -> String {
        let mut options = format!(
            "--arch {} --width {}{} --float-epochs {} --qat-epochs {} --batch {} --lr {} --qat-lr {} --schedule {} --smoothing {} --weight-bits {} --act-bits {} \
             --qat-rounding-bits {} --remeasure-every {} --seed {}",
            self.arch,
            self.width,
            Kind::for_classes(self.classes).map_or(String::new(), |k| format!(" --dataset {}", k.arg())),
            self.float_epochs,
            self.qat_epochs,
            self.batch,
            self.lr,
            self.qat_lr,
            crate::value_name(&self.schedule),
            self.smoothing,
            self.weight_bits,
            self.act_bits,
            self.qat_rounding_bits.map_or("none".into(), |b| b.to_string()),
            self.remeasure_every,
            self.seed,
        );
        let flags =
            [(self.batch_norm, "--batch-norm"), (self.per_channel_weights, "--per-channel-weights"), (self.centre_accumulators, "--centre-accumulators")];
        for (on, flag) in flags {
            if on {
                options += &format!(" {flag}");
            }
        }
        if self.qat_noise > 0.0 {
            options += &format!(" --qat-noise {}", self.qat_noise);
        }
        if self.head_epochs > 0 {
            options += &format!(" --head-epochs {}", self.head_epochs);
        }
        if self.rotation_degrees > 0.0 {
            options += &format!(" --rotate {}", self.rotation_degrees);
        }
        if let Some(path) = &self.init {
            options += &format!(" --imagenet-weights {path}");
        }
        if let Some(n) = self.limit {
            options += &format!(" --limit {n}");
        }
        options
    }

    /// The run's epochs: float, then QAT.
    pub fn total_epochs(&self) -> usize {
        self.float_epochs + self.qat_epochs
    }

    /// The phase of the run's epoch `done` (counted from 0 over the whole run) as the log names
    /// it (`head`: classifier only, `float`, `qat`), that epoch's index within its phase (from 0)
    /// and the phase's number of epochs.
    pub fn phase_of(&self, done: usize) -> (&'static str, usize, usize) {
        if done >= self.float_epochs {
            ("qat", done - self.float_epochs, self.qat_epochs)
        } else if done < self.head_epochs {
            ("head", done, self.head_epochs)
        } else {
            ("float", done - self.head_epochs, self.float_epochs - self.head_epochs)
        }
    }

    /// What an epoch of `phase` runs on, as the log records it ([`EpochLog::ran_on`]): the
    /// backend's `--backend` name, and `bf16` when its convolutions are (QAT's never are).
    pub fn ran_on(&self, phase: &str) -> String {
        let bf16 = if self.bf16 && phase != "qat" { " bf16" } else { "" };
        format!("{}{bf16}", crate::value_name(&self.backend))
    }

    /// The `--backend` and `--bf16` flags that train as an epoch labelled `ran_on` (by
    /// [`Self::ran_on`], or resumed: [`crate::run_folder::resumed_on`]) ran last; `None` for an
    /// epoch logged before labels were recorded.
    pub fn speed_flags(ran_on: &str) -> Option<String> {
        let mut words = crate::run_folder::last_ran_on(ran_on).split_whitespace();
        let backend = words.next()?;
        let bf16 = if words.next() == Some("bf16") { " --bf16" } else { "" };
        Some(format!("--backend {backend}{bf16}"))
    }

    /// The float phase's convolution precision.
    pub fn conv_dtype(&self) -> burn::tensor::FloatDType {
        if self.bf16 {
            burn::tensor::FloatDType::BF16
        } else {
            burn::tensor::FloatDType::F32
        }
    }

    /// The quantization QAT trains with (exact accumulators).
    pub fn quant(&self) -> Quant {
        Quant {
            weight_bits: self.weight_bits.clone(),
            per_channel_weights: self.per_channel_weights,
            act_bits: self.act_bits.clone(),
            input_scale: input_scale(self.mean, self.std, self.act_bits.at(0)) as f32,
            rounding: None,
        }
    }

    /// The quantization the compiler applies to a network trained so, with `rounding_bits` as the
    /// model's default rounding.
    pub fn compile_quant(&self, rounding_bits: Option<u8>) -> QuantConfig {
        QuantConfig {
            weight_bits: self.weight_bits.clone(),
            per_channel_weights: self.per_channel_weights,
            act_bits: self.act_bits.clone(),
            rounding_bits,
            centre: self.centre_accumulators,
            ..QuantConfig::default()
        }
    }
}

/// Normalised (and, with `rng`, augmented: see [`Transform`]) batch of images `idx` of `ds`, as
/// `[n, 3, 32, 32]`, and their labels.
fn batch(ds: &Dataset, idx: &[usize], cfg: &TrainConfig, mut rng: Option<&mut Rng>, device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
    let mut x = vec![0f32; idx.len() * IMAGE_LEN];
    for (out, &i) in x.chunks_mut(IMAGE_LEN).zip(idx) {
        let t = rng.as_deref_mut().map_or(Transform::IDENTITY, |r| Transform::draw(r, cfg.rotation_degrees));
        t.apply(ds.image(i), cfg.mean, cfg.std, out);
    }
    let labels: Vec<i64> = idx.iter().map(|&i| ds.labels[i] as i64).collect();
    (Tensor::from_data(TensorData::new(x, [idx.len(), 3, 32, 32]), device), Tensor::from_data(TensorData::new(labels, [idx.len()]), device))
}

/// Accuracy of the network on `ds` (no augmentation, no gradients).
pub fn accuracy(net: &Net, arch: &Arch, ds: &Dataset, cfg: &TrainConfig, quant: Option<&Quant>) -> (f64, Vec<u16>) {
    let model = net.valid();
    let device = model.device();
    let mut preds = Vec::with_capacity(ds.len());
    let idx: Vec<usize> = (0..ds.len()).collect();
    for chunk in idx.chunks(256) {
        let (x, _) = batch(ds, chunk, cfg, None, &device);
        let logits = model.forward(x, arch, quant, None);
        let p: Vec<i64> = logits.argmax(1).into_data().convert::<i64>().try_to_vec::<i64>().expect("int tensor");
        preds.extend(p.into_iter().map(|v| v as u16));
    }
    let correct = preds.iter().zip(&ds.labels).filter(|(p, l)| p == l).count();
    (correct as f64 / ds.len().max(1) as f64, preds)
}

/// Images the compiler calibrates on: the first of the training set, unaugmented.
pub const CALIBRATION_IMAGES: usize = 512;

/// The pixels of `ds`'s calibration images (its first [`CALIBRATION_IMAGES`]), as `compile` takes them.
pub fn calibration_images(ds: &Dataset) -> &[u8] {
    &ds.images[..ds.images.len().min(CALIBRATION_IMAGES * IMAGE_LEN)]
}

/// The rounding to `bits` bits of the circuit that `compile` will make of `net`: each site's
/// accumulator width (and centre, if centred) measured as the compiler measures it (unrounded
/// accumulators of the calibration images), so that the rounding-aware forward drops the bits the
/// circuit drops.
pub fn circuit_rounding(net: &Net, arch: &Arch, ds: &Dataset, cfg: &TrainConfig, quant: &Quant, bits: u32) -> Rounding {
    let model = net.valid();
    let device = model.device();
    let exact = quant.clone().with_rounding(None);
    let idx: Vec<usize> = (0..ds.len().min(CALIBRATION_IMAGES)).collect();
    let mut ranges: Vec<(i64, i64)> = Vec::new();
    for chunk in idx.chunks(128) {
        let (x, _) = batch(ds, chunk, cfg, None, &device);
        let mut probe = Probe::default();
        model.forward(x, arch, Some(&exact), Some(&mut probe));
        ranges.resize(probe.acc_ranges.len(), (i64::MAX, i64::MIN));
        for (r, (lo, hi)) in ranges.iter_mut().zip(probe.acc_ranges) {
            *r = (r.0.min(lo), r.1.max(hi));
        }
    }
    let (centres, acc_bits) = ranges.into_iter().map(|(lo, hi)| declared_width(lo, hi, cfg.centre_accumulators)).unzip();
    Rounding { bits, acc_bits, centres, noise: 0.0 }
}

/// Initial scales of the lookup sites: a high percentile of each site's float values on a few batches.
fn calibrate_scales(net: &Net, arch: &Arch, ds: &Dataset, cfg: &TrainConfig) -> Vec<f32> {
    let model = net.valid();
    let device = model.device();
    let n = ds.len().min(512);
    let mut values: Vec<Vec<f32>> = Vec::new();
    let idx: Vec<usize> = (0..n).collect();
    for chunk in idx.chunks(128) {
        let (x, _) = batch(ds, chunk, cfg, None, &device);
        let mut probe = Probe::default();
        model.forward(x, arch, None, Some(&mut probe));
        values.resize(probe.values.len(), Vec::new());
        for (v, t) in values.iter_mut().zip(probe.values) {
            let all = net::to_vec(t);
            let step = (all.len() / 100_000).max(1);
            v.extend(all.iter().step_by(step).map(|x| x.abs()));
        }
    }
    values
        .into_iter()
        .zip(net::sites(arch))
        .enumerate()
        .map(|(i, (mut v, site))| {
            let top = act_codes(cfg.act_bits.at(i + 1), site.nonneg).1 as f32;
            let k = ((v.len() - 1) as f64 * 0.9999) as usize;
            let t = *v.select_nth_unstable_by(k, f32::total_cmp).1;
            if t > 0.0 {
                t / top
            } else {
                1.0
            }
        })
        .collect()
}

/// How often an epoch in progress is saved (`partial.bin`), so that a run killed mid-epoch (a VGG11
/// epoch takes half an hour to an hour here) loses minutes, not the epoch.
pub const PARTIAL_EVERY: Duration = Duration::from_secs(600);

/// Trains (or resumes) the run in `run` on `cfg.backend`; `eval` holds the images whose accuracy
/// is logged. The checkpoints do not depend on the device, so a run may resume on another backend
/// (the log says which epochs ran where).
/// A resumed run goes on as if never stopped: the checkpoints hold Adam's state, the scales as
/// learned and a QAT epoch's rounding widths (older checkpoints lack them: their resume restarts
/// Adam's moments and measures the widths again). The epoch in progress is saved every
/// [`PARTIAL_EVERY`].
pub fn train(cfg: &TrainConfig, train: &Dataset, eval: &Dataset, run: &Path, resume: bool) -> Result<Trained, String> {
    train_until(cfg, train, eval, run, resume, &AtomicBool::new(false), PARTIAL_EVERY)
}

/// [`train`], stopping at the end of the batch when `stop` is set (by Ctrl-C or SIGTERM:
/// [`crate::stop::on_signals`]) and saving the epoch in progress, which is also saved every
/// `partial_every`.
#[allow(clippy::too_many_arguments)]
pub fn train_until(
    cfg: &TrainConfig,
    train: &Dataset,
    eval: &Dataset,
    run: &Path,
    resume: bool,
    stop: &AtomicBool,
    partial_every: Duration,
) -> Result<Trained, String> {
    if cfg.head_epochs > cfg.float_epochs {
        return Err(format!("{} classifier-only epochs do not fit in {} float epochs", cfg.head_epochs, cfg.float_epochs));
    }
    std::fs::create_dir_all(run).map_err(|e| format!("creating {}: {e}", run.display()))?;
    let arch = Arch::by_name(&cfg.arch, cfg.classes, cfg.width)?;
    crate::widths::fit(&arch, &cfg.weight_bits, &cfg.act_bits)?;
    let device = cfg.backend.device()?.autodiff();
    let exact = cfg.quant();
    // QAT's quantization: with rounding, re-measured before every epoch (and every
    // `remeasure_every` batches) and before evaluating (the accumulator widths follow the weights).
    let quant_of = |model: &Net| {
        let rounding = cfg.qat_rounding_bits.map(|bits| circuit_rounding(model, &arch, train, cfg, &exact, bits));
        exact.clone().with_rounding(rounding)
    };
    // What QAT's training batches see: that, with the lookup noise (the evaluations round exactly).
    let noisy_quant_of = |model: &Net| quant_of(model).with_noise(cfg.qat_noise);
    let steps = train.len().div_ceil(cfg.batch);
    let Start { model, mut done, mut log, mut scales, mut position, trainer: resumed } = start(cfg, &arch, run, resume, steps, &device)?;
    let mut model = model.with_conv_dtype(cfg.conv_dtype());
    let loss_fn = CrossEntropyLossConfig::new().with_smoothing(Some(cfg.smoothing)).init(&device);
    let total = cfg.total_epochs();
    let mut optim = AdamConfig::new().init();
    let mut phase_of_optim = None;
    // What a resumed run saved of its optimizer (for its phase) and of its epoch's rounding.
    let TrainerState { phase: saved_phase, optimizer: saved_optimizer, acc_bits, centres, ran_on: mut saved_ran_on, .. } = resumed;
    let mut saved_widths = (acc_bits, centres);
    let mut saved_optimizer = (!saved_optimizer.is_empty()).then_some((saved_phase, saved_optimizer));
    while done < total {
        let (phase, epoch, epochs) = cfg.phase_of(done);
        let (qat, head_only) = (phase == "qat", phase == "head");
        if qat && scales.is_empty() {
            model = model.fold_norms(&arch, &device);
            scales = calibrate_scales(&model, &arch, train, cfg);
            model = model.set_scales(&scales, &device);
        }
        let peak = if qat { cfg.qat_lr } else { cfg.lr };
        if phase_of_optim != Some(phase) {
            // A fresh optimizer per phase, or, resuming within a phase, the one saved in it.
            model = model.numbered();
            optim = AdamConfig::new().init();
            if let Some((_, bytes)) = saved_optimizer.take().filter(|(saved, _)| saved == phase) {
                optim = optim.from_bytes(Bytes::from_bytes_vec(bytes)).map_err(|e| format!("{}: optimizer state: {e}", run.display()))?;
            }
            phase_of_optim = Some(phase);
        }
        let (order, mut rng) = epoch_order(cfg.seed, done, train.len());
        // Where the epoch starts: at its beginning, or where an interrupted run stopped (the
        // batch order is drawn again; the augmentation stream continues from its saved state).
        let at = position.take().unwrap_or(EpochPosition { batches: 0, loss_sum: 0.0, correct: 0, seen: 0, seconds: 0.0, rng: rng.clone() });
        rng = at.rng;
        let ran_on = resumed_on(&std::mem::take(&mut saved_ran_on), cfg.ran_on(phase));
        let bar = epoch_bar(phase, epoch, epochs, steps);
        // The epoch's rounding: measured at its start, or as last measured if it is resumed.
        let mut quant = qat.then(|| match (cfg.qat_rounding_bits, std::mem::take(&mut saved_widths)) {
            (Some(bits), (acc_bits, centres)) if !acc_bits.is_empty() => {
                exact.clone().with_rounding(Some(Rounding { bits, acc_bits, centres, noise: cfg.qat_noise }))
            }
            _ => noisy_quant_of(&model),
        });
        let start = Instant::now();
        let (mut loss_sum, mut correct, mut seen) = (at.loss_sum, at.correct, at.seen);
        let mut last_saved = Instant::now();
        bar.set_position(at.batches as u64);
        // A resumed epoch's first batches were not run now: record them, then forget their rate,
        // or the ETA would count them as done in no time.
        bar.tick();
        bar.reset_eta();
        for (s, idx) in order.chunks(cfg.batch).enumerate().skip(at.batches) {
            if qat && cfg.qat_rounding_bits.is_some() && cfg.remeasure_every > 0 && s > 0 && s % cfg.remeasure_every == 0 {
                quant = Some(noisy_quant_of(&model));
            }
            let lr = cfg.schedule.rate(peak, epoch * steps + s, epochs * steps);
            let (x, y) = batch(train, idx, cfg, Some(&mut rng), &device);
            // The batch's lookup noise, drawn by the backend from a seed of the batch's own (streams
            // from 2^40 on, clear of the epochs' orders), so that a resumed run draws what the
            // uninterrupted one did (the backend's generator is global: nothing else draws from it).
            if qat && cfg.qat_noise > 0.0 {
                device.seed(Rng::new(cfg.seed, (1 << 40) + (done * steps + s) as u64).next_u64());
            }
            let (l, c);
            (model, l, c) = step(model, &mut optim, &loss_fn, lr, x, y, &arch, quant.as_ref(), head_only);
            correct += c;
            loss_sum += l * idx.len() as f64;
            seen += idx.len();
            bar.inc(1);
            bar.set_message(format!("loss {:.3}, acc {:.1}%", loss_sum / seen as f64, 100.0 * correct as f64 / seen as f64));
            // Without a terminal (a run in the background, its stderr in a file) the bar is
            // hidden: say where the epoch stands every tenth of it instead.
            if bar.is_hidden() && (s + 1) % steps.div_ceil(10) == 0 && s + 1 < steps {
                let eta = start.elapsed().as_secs_f64() * (steps - s - 1) as f64 / (s + 1 - at.batches) as f64;
                eprintln!("{phase} epoch {}/{epochs}: {}/{steps} batches, {}, ETA {:.0} s", epoch + 1, s + 1, bar.message(), eta);
            }
            let interrupted = stop.load(Ordering::Relaxed);
            if s + 1 < steps && (interrupted || last_saved.elapsed() >= partial_every) {
                let seconds = at.seconds + start.elapsed().as_secs_f64();
                let position = EpochPosition { batches: s + 1, loss_sum, correct, seen, seconds, rng: rng.clone() };
                let scales = if qat { model.scales() } else { scales.clone() };
                let rounding = quant.as_ref().and_then(|q| q.rounding.as_ref());
                let trainer = TrainerState { ran_on: ran_on.clone(), ..trainer_state(&model, Some(&optim), phase, rounding)? };
                save_partial(run, &position, &checkpoint(&model, &arch, cfg, done, scales, &log, trainer))?;
                last_saved = Instant::now();
                if interrupted {
                    bar.abandon();
                    return Err(format!(
                        "interrupted in {phase} epoch {} at batch {} of {steps}; saved in {}: resume with --resume",
                        epoch + 1,
                        s + 1,
                        run.display()
                    ));
                }
            }
        }
        bar.finish_and_clear();
        let seconds = at.seconds + start.elapsed().as_secs_f64();
        if qat {
            scales = model.scales();
        }
        let (eval_accuracy, _) = accuracy(&model, &arch, eval, cfg, qat.then(|| quant_of(&model)).as_ref());
        let entry = EpochLog {
            phase: phase.into(),
            epoch: epoch + 1,
            loss: loss_sum / seen.max(1) as f64,
            train_accuracy: correct as f64 / seen.max(1) as f64,
            eval_accuracy,
            seconds,
            images_per_second: seen as f64 / seconds,
            ran_on,
        };
        eprintln!(
            "{phase} epoch {}/{epochs}: loss {:.4}, train {:.2}%, eval {:.2}%, {:.0} s ({:.1} images/s)",
            entry.epoch,
            entry.loss,
            100.0 * entry.train_accuracy,
            100.0 * entry.eval_accuracy,
            seconds,
            entry.images_per_second
        );
        append_log(run, &entry)?;
        log.push(entry);
        done += 1;
        // The optimizer state serves only a resume within its phase: none is kept once the phase
        // has ended (for the VGG11, Adam's two moments are 74 MB, twice the weights).
        let phase_goes_on = done < total && cfg.phase_of(done).0 == phase;
        let trainer = trainer_state(&model, phase_goes_on.then_some(&optim), phase, None)?;
        save(run, &checkpoint(&model, &arch, cfg, done, scales.clone(), &log, trainer))?;
        remove_partial(run)?;
        if done == cfg.float_epochs {
            keep_float_weights(run)?;
        }
    }
    if scales.is_empty() {
        return Err("no quantization-aware epoch was run (--qat-epochs 0): nothing to compile".into());
    }
    let seconds = log.iter().map(|e| e.seconds).sum();
    let model = model.fold_norms(&arch, &device);
    Ok(Trained { net: model.to_float(&arch, (3, 32, 32)), scales, log, seconds })
}

/// Where a run begins: a fresh network, or (`resume`) the newest save in `run`, with the epoch
/// in progress if it was interrupted and what its trainer saved.
struct Start {
    model: Net,
    /// Epochs done.
    done: usize,
    log: Vec<EpochLog>,
    /// The lookup sites' scales (empty until QAT starts).
    scales: Vec<f32>,
    /// Where the interrupted epoch stopped, if one was.
    position: Option<EpochPosition>,
    /// The optimizer, rounding widths and what its epoch ran on, as a resumed run saved them
    /// (empty when fresh).
    trainer: TrainerState,
}

/// The network `cfg` starts from in `run` (of `steps` batches an epoch): a fresh one (from
/// `cfg.init`'s ImageNet weights or random), or, with `resume`, the run's newest save, which
/// must have been made with settings `cfg` can continue. An interrupted epoch is newer than the
/// checkpoint and resumes where it stopped.
fn start(cfg: &TrainConfig, arch: &Arch, run: &Path, resume: bool, steps: usize, device: &Device) -> Result<Start, String> {
    match (resume, newest(run)?) {
        (true, Some((ck, position))) => {
            if !resumable(&ck.config, cfg, ck.done) {
                let hint = if resumable(&ck.config, cfg, ck.config.float_epochs) {
                    "its QAT has started: pass --restart-qat to train QAT again from the float weights with these settings"
                } else {
                    "use another --run-dir or the same settings"
                };
                return Err(format!("the run in {} was made with other settings ({:?}); {hint}", run.display(), ck.config));
            }
            let total = cfg.total_epochs();
            match &position {
                Some(p) => eprintln!("resuming epoch {} of {total} at batch {} of {steps}", ck.done + 1, p.batches + 1),
                None => eprintln!("resuming after epoch {} of {total}", ck.done),
            }
            let m = Net::from_float(&float_net(arch.clone(), ck.params), device);
            let mut m = match ck.trainer.log_scales.is_empty() {
                true => m.set_scales(&ck.scales, device),
                false => m.set_log_scales(ck.trainer.log_scales.clone(), device),
            };
            if !ck.norms.is_empty() {
                m = m.with_norms(Some(&ck.norms), device);
            }
            Ok(Start { model: m, done: ck.done, log: ck.log, scales: ck.scales, position, trainer: ck.trainer })
        }
        (false, Some(_)) => Err(format!("{} already holds a run: pass --resume to continue it", run.display())),
        _ => {
            let float = match &cfg.init {
                Some(path) => crate::adapt::adapt(Path::new(path), cfg.classes, cfg.seed)?,
                None => FloatNet::random(arch.clone(), (3, 32, 32), cfg.seed),
            };
            let m = Net::from_float(&float, device);
            let model = if cfg.batch_norm { m.with_norms(None, device) } else { m };
            Ok(Start { model, done: 0, log: Vec::new(), scales: Vec::new(), position: None, trainer: TrainerState::default() })
        }
    }
}

/// The batch order of the epoch after `done` of `n` images: a Fisher–Yates shuffle drawn from
/// the run's seed and the epoch's number (so that a resumed epoch draws the same order again),
/// and the random stream the shuffle leaves, which the epoch's augmentation continues.
fn epoch_order(seed: u64, done: usize, n: usize) -> (Vec<usize>, Rng) {
    let mut rng = Rng::new(seed, 1000 + done as u64);
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        order.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
    }
    (order, rng)
}

/// The progress bar of a `phase` epoch (`epoch` counted from 0, of `epochs`) of `steps` batches.
fn epoch_bar(phase: &str, epoch: usize, epochs: usize, steps: usize) -> ProgressBar {
    let bar = ProgressBar::new(steps as u64);
    bar.set_style(
        ProgressStyle::with_template(&format!("{phase} epoch {}/{epochs} [{{bar:30}}] {{pos}}/{{len}} batches, ETA {{eta}} {{msg}}", epoch + 1))
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

/// The checkpoint of `model` after `done` epochs of `cfg`.
fn checkpoint(model: &Net, arch: &Arch, cfg: &TrainConfig, done: usize, scales: Vec<f32>, log: &[EpochLog], trainer: TrainerState) -> Checkpoint {
    let float = model.to_float(arch, (3, 32, 32));
    let params = float.params.into_iter().map(|p| p.map(|p| (p.weight, p.bias))).collect();
    Checkpoint { config: cfg.clone(), done, params, scales, norms: model.norm_states(), log: log.to_vec(), trainer }
}

/// What resuming `model` in `phase` needs beyond its weights: `optim`'s state (if the phase goes
/// on), the scales as learned, and the `rounding` (widths and centres) of an epoch in progress.
fn trainer_state(model: &Net, optim: Option<&ModuleOptimizer>, phase: &str, rounding: Option<&Rounding>) -> Result<TrainerState, String> {
    let (phase, optimizer) = match optim {
        Some(optim) => (phase.into(), optim.into_bytes().map_err(|e| format!("saving the optimizer state: {e}"))?.to_vec()),
        None => (String::new(), Vec::new()),
    };
    let (acc_bits, centres) = rounding.map_or_else(Default::default, |r| (r.acc_bits.clone(), r.centres.clone()));
    Ok(TrainerState { phase, optimizer, log_scales: model.log_scales(), acc_bits, centres, ran_on: String::new() })
}

/// One optimisation step on a batch (of the classifier's parameters only if `head_only`): the
/// updated model, the batch's mean loss and how many of its images the model (before the step)
/// classified right.
#[allow(clippy::too_many_arguments)]
fn step(
    model: Net,
    optim: &mut ModuleOptimizer,
    loss_fn: &CrossEntropyLoss,
    lr: f64,
    x: Tensor<4>,
    y: Tensor<1, Int>,
    arch: &Arch,
    quant: Option<&Quant>,
    head_only: bool,
) -> (Net, f64, usize) {
    let logits = model.forward(x, arch, quant, None);
    let n = y.dims()[0];
    let correct = logits.clone().argmax(1).reshape([n]).equal(y.clone()).int().sum().into_scalar::<i64>() as usize;
    let loss = loss_fn.forward(logits, y);
    let l = loss.clone().into_scalar::<f32>() as f64;
    let mut grads = loss.backward();
    let grads = if head_only { GradientsParams::from_params(&mut grads, &model, &model.head_params()) } else { GradientsParams::from_grads(grads, &model) };
    (optim.step(lr, model, grads), l, correct)
}

/// Training speed of `cfg`'s network in float on `cfg.backend` (images per second over `steps`
/// batches of real training images, after one warm-up batch): what `bench-train` sets beside
/// PyTorch's.
pub fn images_per_second(cfg: &TrainConfig, ds: &Dataset, steps: usize) -> Result<f64, String> {
    let arch = Arch::by_name(&cfg.arch, cfg.classes, cfg.width)?;
    crate::widths::fit(&arch, &cfg.weight_bits, &cfg.act_bits)?;
    let device = cfg.backend.device()?.autodiff();
    let float = FloatNet::random(arch.clone(), (3, 32, 32), cfg.seed);
    let mut model = Net::from_float(&float, &device).with_conv_dtype(cfg.conv_dtype());
    if cfg.batch_norm {
        model = model.with_norms(None, &device);
    }
    let loss_fn = CrossEntropyLossConfig::new().with_smoothing(Some(cfg.smoothing)).init(&device);
    let mut optim = AdamConfig::new().init();
    let mut rng = Rng::new(cfg.seed, 1);
    let idx: Vec<usize> = (0..cfg.batch).map(|i| i % ds.len()).collect();
    let mut start = Instant::now();
    for s in 0..=steps {
        if s == 1 {
            start = Instant::now();
        }
        let (x, y) = batch(ds, &idx, cfg, Some(&mut rng), &device);
        model = step(model, &mut optim, &loss_fn, cfg.lr, x, y, &arch, None, false).0;
    }
    Ok((steps * cfg.batch) as f64 / start.elapsed().as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run_folder::{checkpoint_path, load, read_checkpoint, restart_qat};

    fn config() -> TrainConfig {
        TrainConfig { float_epochs: 4, qat_epochs: 0, qat_rounding_bits: None, ..TrainConfig::recipe(Kind::Cifar10) }
    }

    /// `n` images of random pixels, labelled round-robin: enough for training to run.
    fn noise_images(n: usize, seed: u64) -> Dataset {
        let mut rng = Rng::new(seed, 0);
        let images = (0..n * IMAGE_LEN).map(|_| rng.next_u64() as u8).collect();
        let labels = (0..n).map(|i| (i % 10) as u16).collect();
        Dataset { kind: crate::cifar::Kind::Cifar10, images, labels, names: vec![] }
    }

    #[test]
    fn speed_flags_read_back_what_an_epoch_ran_on() {
        assert_eq!(TrainConfig::speed_flags("libtorch bf16").as_deref(), Some("--backend libtorch --bf16"));
        assert_eq!(TrainConfig::speed_flags("flex bf16, then libtorch-cuda").as_deref(), Some("--backend libtorch-cuda"));
        assert_eq!(TrainConfig::speed_flags(""), None);
        for backend in [Backend::Flex, Backend::Libtorch, Backend::LibtorchCuda, Backend::Wgpu] {
            let cfg = TrainConfig { backend, bf16: true, ..config() };
            let name = crate::value_name(&backend);
            assert_eq!(TrainConfig::speed_flags(&cfg.ran_on("float")), Some(format!("--backend {name} --bf16")));
            assert_eq!(TrainConfig::speed_flags(&cfg.ran_on("qat")), Some(format!("--backend {name}")));
        }
    }

    #[test]
    fn qat_restarts_from_the_float_weights_and_keeps_the_first_attempt() {
        let ds = noise_images(64, 5);
        let run = std::env::temp_dir().join(format!("cifhe-restart-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&run);
        let cfg = TrainConfig { arch: "tiny".into(), float_epochs: 1, qat_epochs: 1, batch: 32, ..config() };
        assert!(restart_qat(&run, &cfg).unwrap_err().contains("no float.bin"));
        let first = train(&cfg, &ds, &ds, &run, false).unwrap();
        std::fs::write(run.join("model.cifhe"), b"first model").unwrap();
        // Other QAT settings once QAT has run: refused, with the way out named.
        let other = TrainConfig { act_bits: Widths::uniform(4), qat_lr: 1e-3, ..cfg.clone() };
        assert!(train(&other, &ds, &ds, &run, true).unwrap_err().contains("--restart-qat"));
        assert!(restart_qat(&run, &TrainConfig { seed: 9, ..other.clone() }).unwrap_err().contains("other float settings"));
        assert_eq!(restart_qat(&run, &other).unwrap(), 1);
        let lines = |f: &str| std::fs::read_to_string(run.join(f)).unwrap().lines().count();
        assert_eq!((lines("log.tsv"), lines("log.qat-attempt-1.tsv")), (2, 3), "the float epoch stays, the QAT epoch is kept aside");
        assert_eq!(std::fs::read(run.join("model.qat-attempt-1.cifhe")).unwrap(), b"first model");
        let second = train(&other, &ds, &ds, &run, true).unwrap();
        assert_eq!(second.log[0], first.log[0], "the float epoch is not trained again");
        assert_ne!(second.scales, first.scales, "the QAT is");
        assert_eq!(load(&run).unwrap().unwrap().config, other);
        std::fs::remove_dir_all(&run).unwrap();
    }

    #[test]
    fn an_interrupted_epoch_resumes_where_it_stopped() {
        let ds = noise_images(64, 4);
        let cfg = TrainConfig { arch: "tiny".into(), float_epochs: 1, qat_epochs: 1, batch: 16, ..config() };
        let run = std::env::temp_dir().join(format!("cifhe-interrupt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&run);
        let stop = AtomicBool::new(true);
        let resume_as = |cfg: &TrainConfig, fresh: bool| train_until(cfg, &ds, &ds, &run, !fresh, &stop, Duration::MAX);
        let resume = |fresh: bool| resume_as(&cfg, fresh);
        // Stopped after the first of 4 batches: the epoch is saved where it stands.
        let err = resume(true).unwrap_err();
        assert!(err.contains("float epoch 1 at batch 1 of 4") && err.contains("--resume"), "{err}");
        let partial = |run: &Path| match newest(run).unwrap() {
            Some((ck, Some(position))) => (position, ck),
            _ => panic!("no partial epoch in {}", run.display()),
        };
        let (position, ck) = partial(&run);
        assert_eq!((position.batches, position.seen, ck.done), (1, 16, 0));
        assert!(!checkpoint_path(&run).exists() && ck.log.is_empty());
        assert!(resume(true).unwrap_err().contains("--resume"), "no fresh start over a partial epoch");
        // Resumed (with bf16 convolutions) and stopped again: one batch further, its sums carried
        // on (a restart would stand at batch 1 again).
        resume_as(&TrainConfig { bf16: true, ..cfg.clone() }, false).unwrap_err();
        let (position, ck) = partial(&run);
        assert_eq!((position.batches, position.seen), (2, 32));
        assert_eq!(ck.trainer.ran_on, "flex, then flex bf16");
        let float_partial = std::fs::read(run.join("partial.bin")).unwrap();
        // Stopping is never at an epoch's last batch: the float epoch ends, then QAT stops after
        // its first batch, saved with its learned scales.
        resume(false).unwrap_err();
        resume(false).unwrap_err();
        let (position, ck) = partial(&run);
        assert_eq!((position.batches, ck.done, ck.log.len()), (1, 1, 1));
        assert!(!ck.scales.is_empty());
        stop.store(false, Ordering::Relaxed);
        let trained = resume(false).expect("the run finishes");
        assert_eq!(trained.log.iter().map(|e| e.phase.as_str()).collect::<Vec<_>>(), ["float", "qat"]);
        assert_eq!(trained.log.iter().map(|e| e.ran_on.as_str()).collect::<Vec<_>>(), ["flex, then flex bf16, then flex", "flex"]);
        let logged: Vec<String> = std::fs::read_to_string(run.join("log.tsv")).unwrap().lines().map(|l| l.rsplit('\t').next().unwrap().into()).collect();
        assert_eq!(logged, ["ran_on", "flex, then flex bf16, then flex", "flex"]);
        assert!(!run.join("partial.bin").exists(), "an ended epoch's partial file is removed");
        // A partial file older than the checkpoint (left by an interruption between the two
        // writes at an epoch's end) is ignored.
        std::fs::write(run.join("partial.bin"), float_partial).unwrap();
        assert!(matches!(newest(&run).unwrap(), Some((ck, None)) if ck.done == 2));
        std::fs::remove_dir_all(&run).unwrap();
    }

    #[test]
    fn qat_can_measure_its_rounding_again_within_an_epoch() {
        let ds = noise_images(64, 7);
        let cfg = TrainConfig { arch: "tiny".into(), float_epochs: 1, qat_epochs: 1, batch: 16, qat_rounding_bits: Some(5), qat_lr: 0.05, ..config() };
        let run = std::env::temp_dir().join(format!("cifhe-remeasure-{}", std::process::id()));
        let weights = |remeasure_every| {
            let _ = std::fs::remove_dir_all(&run);
            train(&TrainConfig { remeasure_every, ..cfg.clone() }, &ds, &ds, &run, false).unwrap().net.params
        };
        // The weights move fast enough here that some site's accumulator width changes within
        // the QAT epoch of 4 batches: measured again before each batch, the rounding follows it
        // and trains another network than the rounding measured at the epoch's start.
        assert!(weights(0) != weights(1));
        std::fs::remove_dir_all(&run).unwrap();
    }

    #[test]
    fn noisy_qat_draws_its_noise_again_from_the_seed() {
        let _draws = net::RANDOM_DRAWS.lock().unwrap_or_else(|e| e.into_inner());
        let ds = noise_images(64, 8);
        let cfg = TrainConfig { arch: "tiny".into(), float_epochs: 1, qat_epochs: 1, batch: 16, qat_rounding_bits: Some(5), qat_lr: 0.05, ..config() };
        let run = std::env::temp_dir().join(format!("cifhe-noise-{}", std::process::id()));
        let weights = |qat_noise, seed| {
            let _ = std::fs::remove_dir_all(&run);
            train(&TrainConfig { qat_noise, seed, ..cfg.clone() }, &ds, &ds, &run, false).unwrap().net.params
        };
        let noisy = weights(0.5, 0);
        assert!(noisy == weights(0.5, 0), "the same seed, the same noise");
        assert!(noisy != weights(0.0, 0), "the noise moves some lookup input, and so the weights");
        std::fs::remove_dir_all(&run).unwrap();
    }

    #[test]
    fn a_run_stopped_after_every_batch_ends_as_an_uninterrupted_one() {
        let _draws = net::RANDOM_DRAWS.lock().unwrap_or_else(|e| e.into_inner());
        let ds = noise_images(64, 6);
        let cfg = TrainConfig {
            arch: "tiny".into(),
            float_epochs: 2,
            qat_epochs: 2,
            batch: 16,
            batch_norm: true,
            qat_rounding_bits: Some(5),
            qat_lr: 0.05,
            // Re-measured within each QAT epoch, so that a resume also stops right after one.
            remeasure_every: 2,
            // And noisy: a resumed batch draws the noise the uninterrupted one did.
            qat_noise: 0.3,
            ..config()
        };
        let dir = |name: &str| std::env::temp_dir().join(format!("cifhe-exact-{name}-{}", std::process::id()));
        let (whole, stopped) = (dir("whole"), dir("stopped"));
        for run in [&whole, &stopped] {
            let _ = std::fs::remove_dir_all(run);
        }
        let uninterrupted = train(&cfg, &ds, &ds, &whole, false).unwrap();
        // Stopped after every batch but an epoch's last, and resumed. In the second epoch of each
        // phase, the first stop's partial file is also thrown away once, so that the run resumes
        // from the checkpoint of the epoch before, optimizer state and all.
        let stop = AtomicBool::new(true);
        let (mut stops, mut dropped) = (0, Vec::new());
        let resumed = loop {
            match train_until(&cfg, &ds, &ds, &stopped, stops > 0, &stop, Duration::MAX) {
                Ok(trained) => break trained,
                Err(e) => assert!(e.contains("--resume"), "{e}"),
            }
            stops += 1;
            let Some((ck, Some(position))) = newest(&stopped).unwrap() else { panic!("no partial epoch") };
            if [1, 3].contains(&ck.done) && position.batches == 1 && !dropped.contains(&ck.done) {
                dropped.push(ck.done);
                remove_partial(&stopped).unwrap();
            }
        };
        assert_eq!((stops, dropped), (4 * 3 + 2, vec![1, 3]), "3 stops in each epoch of 4 batches, 2 of them again");
        let figures = |t: &Trained| t.log.iter().map(|e| (e.loss, e.train_accuracy, e.eval_accuracy)).collect::<Vec<_>>();
        assert_eq!(figures(&resumed), figures(&uninterrupted));
        assert_eq!(resumed.scales, uninterrupted.scales);
        assert!(resumed.net.params == uninterrupted.net.params, "the same weights to the bit");
        // A phase's optimizer state is kept while the phase goes on, and not after.
        let optimizer_kept = |file: &str| !read_checkpoint(&whole.join(file)).unwrap().trainer.optimizer.is_empty();
        assert_eq!([optimizer_kept("float.bin"), optimizer_kept("checkpoint.bin")], [false, false]);
        for run in [&whole, &stopped] {
            std::fs::remove_dir_all(run).unwrap();
        }
    }

    #[test]
    fn classifier_only_epochs_leave_the_convolutions_untouched() {
        let ds = noise_images(64, 3);
        let cfg = TrainConfig { arch: "tiny".into(), float_epochs: 2, head_epochs: 1, batch: 32, ..config() };
        let run = std::env::temp_dir().join(format!("cifhe-head-{}", std::process::id()));
        assert!(train(&TrainConfig { head_epochs: 3, ..cfg.clone() }, &ds, &ds, &run, false).unwrap_err().contains("do not fit"));
        // No QAT epoch: training stops with an error after checkpointing the float epochs.
        let start = FloatNet::random(Arch::by_name("tiny", 10, 1.0).unwrap(), (3, 32, 32), cfg.seed).params;
        let changed = |cfg: &TrainConfig| -> (Vec<bool>, Vec<String>) {
            let _ = std::fs::remove_dir_all(&run);
            assert!(train(cfg, &ds, &ds, &run, false).unwrap_err().contains("no quantization-aware epoch"));
            let ck = load(&run).unwrap().unwrap();
            assert_eq!(ck.config.head_epochs, 1);
            let changed = ck.params.iter().zip(&start).filter_map(|(p, s)| Some(p.as_ref()?.0 != s.as_ref()?.weight)).collect();
            (changed, ck.log.into_iter().map(|e| e.phase).collect())
        };
        let head_only = changed(&TrainConfig { float_epochs: 1, ..cfg.clone() });
        assert_eq!(head_only, (vec![false, false, true], vec!["head".to_string()]), "only the classifier learns in the first stage");
        assert_eq!(changed(&cfg), (vec![true, true, true], vec!["head".to_string(), "float".to_string()]), "then every layer does");
        std::fs::remove_dir_all(&run).unwrap();
    }
}
