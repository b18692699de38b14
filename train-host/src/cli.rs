//! The command line's definition: every command, its options with their defaults and help, and
//! the parsers that refuse bad values before any work starts. `main.rs` carries the commands out.
use cifhe_core::fhe::ParamSet;
use cifhe_core::Model;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use train_host::backend::Backend;
use train_host::cifar::{self, Kind};
use train_host::schedule::Schedule;
use train_host::widths::Widths;
use train_host::{model_file, paths, train};

#[derive(Parser)]
#[command(name = "train-host", version, about = "cifhe: encrypted CIFAR classification — host tool")]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Mode {
    /// Low bits removed exactly before the PBS.
    Exact,
    /// Low bits removed by the PBS's modulus switch (can be off by one).
    Approximate,
}

/// Default per-lookup error probability target of the TFHE commands (parameter set and per-stage
/// bootstrap choice): what `fhe`, `fhe-noise`, `bench-fhe` and `eval --fhe-params` use unless told.
pub(crate) const FHE_P_ERROR: f64 = cifhe_core::fhe::plan::DEFAULT_P_ERROR_TARGET;

/// Options of a simulator run.
#[derive(clap::Args)]
pub(crate) struct SimArgs {
    /// Bits kept before each lookup: a number, or `none` for no rounding [default: the model's].
    #[arg(long, value_parser = parse_rounding)]
    pub(crate) rounding_bits: Option<Rounding>,
    /// Per-PBS error probability, e.g. 1e-3 or 2^-40 [default: 2^-40; with --fhe-params, the
    /// target of the per-stage bootstrap choice, 0.05 as for `fhe`].
    #[arg(long, value_parser = parse_p_error)]
    pub(crate) p_error: Option<f64>,
    /// How the low bits are removed.
    #[arg(long, value_enum, default_value = "exact")]
    pub(crate) mode: Mode,
    /// Seed of the simulated noise.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Simulate TFHE under this parameter set (1_1 … 4_4): each lookup gets the noise the set's
    /// formulas give it, with approximate rounding (overrides --mode; --p-error then says where
    /// the fine bootstrap is used, as `fhe --params … --p-error …` chooses it).
    #[arg(long, value_parser = parse_params)]
    pub(crate) fhe_params: Option<ParamSet>,
}

#[derive(Clone, Copy)]
pub(crate) struct Rounding(pub(crate) Option<u8>);

/// The model and the test images of a TFHE command.
#[derive(clap::Args)]
pub(crate) struct TestImages {
    /// Compiled model [default: the shipped demo model, models/tiny-w2.5-cifar10.cifhe].
    #[arg(long)]
    pub(crate) model: Option<PathBuf>,
    /// CIFAR data: folder or archive [default: $CIFHE_DATA or ../shared/data].
    #[arg(long)]
    pub(crate) data: Option<PathBuf>,
    /// Test-set indices of the images, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0")]
    pub(crate) image: Vec<usize>,
}

/// `train`'s options.
#[derive(clap::Args)]
pub(crate) struct TrainArgs {
    /// Architecture: vgg11, small, or the demo networks tiny and mini.
    #[arg(long, default_value_t = recipe().arch)]
    pub(crate) arch: String,
    /// Channel width multiplier.
    #[arg(long, default_value_t = recipe().width, value_parser = positive::<f32>)]
    pub(crate) width: f32,
    /// Dataset.
    #[arg(long, value_enum, default_value = "cifar10")]
    pub(crate) dataset: Kind,
    /// CIFAR data: folder or archive.
    #[arg(long)]
    pub(crate) data: PathBuf,
    /// Run folder: checkpoint, log, compiled model (keep it outside the work tree).
    #[arg(long)]
    pub(crate) run_dir: PathBuf,
    /// Float epochs.
    #[arg(long, default_value_t = recipe().float_epochs)]
    pub(crate) float_epochs: usize,
    /// Quantization-aware epochs.
    #[arg(long, default_value_t = recipe().qat_epochs)]
    pub(crate) qat_epochs: usize,
    /// The first float epochs train only the classifier, then all layers train (the
    /// reference's two stages for a network adapted from ImageNet; each stage has its own
    /// warm-up and cosine schedule at --lr).
    #[arg(long, default_value_t = recipe().head_epochs)]
    pub(crate) head_epochs: usize,
    /// Augment training images with random rotations of up to this many degrees (besides
    /// random crops and flips; 0: none).
    #[arg(long, default_value_t = recipe().rotation_degrees, value_parser = parse_degrees)]
    pub(crate) rotate: f32,
    /// Batch size.
    #[arg(long, value_parser = at_least_one, default_value_t = recipe().batch)]
    pub(crate) batch: usize,
    /// Peak learning rate of the float epochs (Adam; its course over each phase: --schedule).
    /// The default is the VGG11's; the small CNN is far better at 8e-2 with one-cycle
    /// (BENCHMARKS.md, "Peak learning rate").
    #[arg(long, default_value_t = recipe().lr, value_parser = positive::<f64>)]
    pub(crate) lr: f64,
    /// Peak learning rate of the QAT epochs. Above the default, pass --remeasure-every too
    /// (the small CNN: 73.86% at 6-bit rounding with --qat-lr 5e-3 --remeasure-every 50
    /// against 72.70% at the default; BENCHMARKS.md, "QAT rate").
    #[arg(long, default_value_t = recipe().qat_lr, value_parser = positive::<f64>)]
    pub(crate) qat_lr: f64,
    /// How each phase's learning rate moves: cosine (5% linear warm-up, then cosine decay) or
    /// one-cycle (30% cosine rise from a 25th of the peak, then cosine fall, as PyTorch's
    /// OneCycleLR). Cosine beat one-cycle on every seed at the default --lr, one-cycle beat
    /// cosine from 1e-2 up (BENCHMARKS.md, "Learning-rate schedule", "Peak learning rate").
    #[arg(long, value_enum, default_value_t = recipe().schedule)]
    pub(crate) schedule: Schedule,
    /// Label smoothing of the training targets, in [0, 1) (0.1 beat none on every seed
    /// measured: BENCHMARKS.md, "Label smoothing").
    #[arg(long, default_value_t = recipe().smoothing, value_parser = parse_smoothing)]
    pub(crate) smoothing: f32,
    /// Batch normalisation after each convolution in float training (folded before QAT).
    #[arg(long)]
    pub(crate) batch_norm: bool,
    /// Start from torchvision's ImageNet VGG11 weights (`.pth` or `.safetensors`; --arch vgg11).
    #[arg(long)]
    pub(crate) imagenet_weights: Option<PathBuf>,
    /// Seed of weights, shuffling and augmentation.
    #[arg(long, default_value_t = recipe().seed)]
    pub(crate) seed: u64,
    /// Train on the first N training images only.
    #[arg(long, value_parser = at_least_one)]
    pub(crate) limit: Option<usize>,
    /// Test images whose accuracy is logged each epoch and reported at the end.
    #[arg(long, value_parser = at_least_one, default_value_t = 10_000)]
    pub(crate) eval_images: usize,
    /// Continue the run in --run-dir where it stopped, as if it never had: same weights,
    /// optimizer state and batches.
    #[arg(long)]
    pub(crate) resume: bool,
    /// Train the QAT phase of the run in --run-dir again, from its float weights (e.g. with
    /// other quantization settings); the previous attempt's checkpoint, log and model are
    /// kept as `*.qat-attempt-K.*`. Implies --resume.
    #[arg(long)]
    pub(crate) restart_qat: bool,
    /// Also copy the compiled model here.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Default rounding bits written into the model.
    #[arg(long, default_value = "6", value_parser = parse_rounding)]
    pub(crate) rounding_bits: Rounding,
    /// Bits the lookups keep during QAT (rounding-aware training; `none`: unrounded) [default:
    /// --rounding-bits]. May differ from the float run being resumed before QAT starts.
    #[arg(long, value_parser = parse_rounding)]
    pub(crate) qat_rounding_bits: Option<Rounding>,
    /// QAT measures the accumulator widths it rounds to at each epoch's start and, if not 0,
    /// again every N batches: a site whose range crosses a power of two within an epoch loses
    /// a bit more in the circuit than QAT trained it for, as at a higher --qat-lr (the
    /// shipped default models were trained with 50).
    #[arg(long, value_name = "N", default_value_t = recipe().remeasure_every)]
    pub(crate) remeasure_every: usize,
    /// Declare each lookup's accumulator about the centre of its range, in QAT's rounding
    /// and in the model: a bit finer rounding where a range is one-sided (the pools' sums),
    /// at no cost in TFHE (the shipped default models have it). A QAT setting. The small
    /// CNN: 74.28% against 73.86% at 6-bit rounding, 70.16% against 66.73% at 5
    /// (BENCHMARKS.md, "Centred accumulators").
    #[arg(long)]
    pub(crate) centre_accumulators: bool,
    /// Gaussian noise, in rounded steps, that QAT adds to every rounded lookup input of its
    /// training batches, rounding as TFHE's modulus switch does: the off-by-one inputs TFHE's
    /// lookups read, learned. TFHE's 2_2 set gives every lookup of the shipped models σ ≈ 0.15
    /// at 6-bit rounding (`inspect` shows each lookup's σ). A QAT setting; 0: none.
    #[arg(long, value_name = "SIGMA", default_value_t = recipe().qat_noise, value_parser = parse_noise)]
    pub(crate) qat_noise: f32,
    /// Bits of the signed weight codes (2–8): one width, or one per layer with weights
    /// (`8,5,5,5,5,5,5,5,8` for the VGG11's eight convolutions and its linear layer). Like
    /// every quantization setting, it may differ from the float run being resumed before QAT
    /// starts.
    #[arg(long, default_value_t = recipe().weight_bits)]
    pub(crate) weight_bits: Widths,
    /// Bits of the activation codes (2–8): one width, or one for the input and then one per
    /// lookup (after each convolution and each pool); a wrong count names the positions.
    #[arg(long, default_value_t = recipe().act_bits)]
    pub(crate) act_bits: Widths,
    /// One weight scale per output channel instead of per tensor (free in the circuit: the
    /// scales fold into the per-channel lookup tables).
    #[arg(long)]
    pub(crate) per_channel_weights: bool,
    /// Float-phase convolutions in bfloat16, like PyTorch's autocast (faster where the CPU has
    /// AVX-512 BF16 or AMX, or on a GPU; QAT stays in f32). May change on resume.
    #[arg(long)]
    pub(crate) bf16: bool,
    /// Where burn runs the network (libtorch needs a build with `--features libtorch`).
    #[arg(long, value_enum, default_value = "flex")]
    pub(crate) backend: Backend,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Classify CIFAR test images with the FHE simulator: predictions, accuracy, speed; or, given
    /// files, your own pictures.
    Classify {
        /// Your own pictures to classify instead of test images (PNG, JPEG, BMP, WebP; any size,
        /// area-averaged to the model's 32×32 as the web page does): the likeliest classes.
        files: Vec<PathBuf>,
        /// Classes shown per picture.
        #[arg(long, value_parser = at_least_one, default_value_t = 3, requires = "files")]
        top: usize,
        /// With pictures: print one JSON array (file, size, classes with probabilities).
        #[arg(long, requires = "files")]
        json: bool,
        /// Compiled model [default: the shipped model].
        #[arg(long)]
        model: Option<PathBuf>,
        /// CIFAR data: folder or archive [default: $CIFHE_DATA or ../shared/data].
        #[arg(long)]
        data: Option<PathBuf>,
        /// Test images to classify.
        #[arg(long, value_parser = at_least_one, default_value_t = 1000)]
        images: usize,
        /// Predictions to print.
        #[arg(long, default_value_t = 10)]
        show: usize,
        #[command(flatten)]
        sim: SimArgs,
    },
    /// Classify test images (or your own pictures) under real TFHE: keygen, encrypt, evaluate,
    /// decrypt; timings and sizes.
    Fhe {
        /// Your own pictures to classify instead of test images (PNG, JPEG, BMP, WebP; any size,
        /// area-averaged to the model's size as `classify FILE…` and the web page do).
        #[arg(conflicts_with = "image")]
        files: Vec<PathBuf>,
        #[command(flatten)]
        images: TestImages,
        /// tfhe-rs parameter set (1_1, 2_2, 3_3, 4_4) [default: the cheapest meeting --p-error].
        #[arg(long, value_parser = parse_params)]
        params: Option<ParamSet>,
        /// Bits kept before each lookup: a number, or `none` [default: the model's].
        #[arg(long, value_parser = parse_rounding)]
        rounding_bits: Option<Rounding>,
        /// Largest per-lookup error probability when choosing the parameter set and where the
        /// fine bootstrap is used.
        #[arg(long, default_value_t = FHE_P_ERROR, value_parser = parse_p_error)]
        p_error: f64,
        /// Simulator runs per image under the plan's noise, which show the classes TFHE's own
        /// noise can give a borderline image (0: none).
        #[arg(long, default_value_t = 200)]
        noise_draws: u64,
        /// Print one JSON object instead of the text report.
        #[arg(long)]
        json: bool,
    },
    /// The error every lookup reads under real TFHE, measured on real ciphertexts beside the noise
    /// model the simulator injects, for a model's first lookup stages on a centre crop of images.
    FheNoise {
        #[command(flatten)]
        images: TestImages,
        /// tfhe-rs parameter set (1_1, 2_2, 3_3, 4_4).
        #[arg(long, default_value = "2_2", value_parser = parse_params)]
        params: ParamSet,
        /// Bits kept before each lookup: a number, or `none` [default: the model's].
        #[arg(long, value_parser = parse_rounding)]
        rounding_bits: Option<Rounding>,
        /// Lookup stages to run, from the first.
        #[arg(long, value_parser = at_least_one, default_value_t = 2)]
        stages: usize,
        /// Per-lookup error probability above which a lookup's inputs come from the fine bootstrap
        /// (as `fhe` chooses them).
        #[arg(long, default_value_t = FHE_P_ERROR, value_parser = parse_p_error)]
        p_error: f64,
        /// Side of the centre crop of each image [default: the whole image].
        #[arg(long, value_parser = at_least_one)]
        crop: Option<usize>,
        /// Markdown file to update (its fhe-noise section).
        #[arg(long)]
        write: Option<PathBuf>,
    },
    /// The web demo: serves web/ and the encrypted-classification API (see the README).
    Serve {
        /// Compiled model [default: the shipped demo model, models/tiny-w2.5-cifar10.cifhe].
        #[arg(long)]
        model: Option<PathBuf>,
        /// CIFAR data for the page's sample images [default: $CIFHE_DATA or ../shared/data].
        #[arg(long)]
        data: Option<PathBuf>,
        /// Address to listen on (loopback by default: the demo is not hardened for the internet).
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
        /// Folder of the page [default: web/ of this checkout].
        #[arg(long)]
        web: Option<PathBuf>,
        /// tfhe-rs parameter set the page uses.
        #[arg(long, default_value = "2_2", value_parser = parse_params)]
        params: ParamSet,
        /// Sessions held at once (each expanded 2_2 server key takes about 120 MB).
        #[arg(long, value_parser = at_least_one, default_value_t = 4)]
        max_sessions: usize,
        /// Seconds after which an idle session's server key is dropped.
        #[arg(long, default_value_t = 600)]
        idle_timeout: u64,
        /// Largest server key accepted, in MB.
        #[arg(long, value_parser = at_least_one, default_value_t = 64)]
        key_limit_mb: usize,
        /// Sample test images offered by the page.
        #[arg(long, default_value_t = 12)]
        samples: usize,
        /// A further model whose accuracy the page can measure with its simulator (repeatable)
        /// [default: the shipped default model, models/vgg11-cifar10.cifhe].
        #[arg(long)]
        accuracy_model: Vec<PathBuf>,
    },
    /// Accuracy on the full test set: per class, confusion matrix, images per second.
    Eval {
        /// Compiled model.
        #[arg(long)]
        model: PathBuf,
        /// CIFAR data: folder or archive.
        #[arg(long)]
        data: PathBuf,
        /// Evaluate only the first N test images.
        #[arg(long, value_parser = at_least_one)]
        limit: Option<usize>,
        /// Print one JSON object instead of the text report.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        sim: SimArgs,
    },
    /// Compile an untrained (random-weight) network, calibrated on training images: the real
    /// shapes and costs of an architecture, for benchmarks, before any training.
    Init {
        /// Architecture: vgg11, small, or the demo networks tiny and mini.
        #[arg(long, default_value = "vgg11")]
        arch: String,
        /// Channel width multiplier.
        #[arg(long, default_value_t = 1.0, value_parser = positive::<f32>)]
        width: f32,
        /// Dataset (sets classes, normalisation, calibration images).
        #[arg(long, value_enum, default_value = "cifar10")]
        dataset: Kind,
        /// CIFAR data: folder or archive.
        #[arg(long)]
        data: PathBuf,
        /// Output model file.
        #[arg(long)]
        out: PathBuf,
        /// Weight seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Training images used for calibration.
        #[arg(long, value_parser = at_least_one, default_value_t = 256)]
        calibration: usize,
        /// Default rounding bits written into the model (`none` for no rounding).
        #[arg(long, default_value = "6", value_parser = parse_rounding)]
        rounding_bits: Rounding,
    },
    /// Train a network (float, then quantization-aware), checkpointing every epoch, and compile it.
    Train(TrainArgs),
    /// Compile a finished training run again (from its checkpoint), e.g. with another rounding.
    Compile {
        /// The run folder `train` wrote.
        #[arg(long)]
        run_dir: PathBuf,
        /// CIFAR data: folder or archive (calibration images and the test set).
        #[arg(long)]
        data: PathBuf,
        /// The --limit the run was trained with (its first images are the calibration images;
        /// runs saved since 2026-12-01 know it).
        #[arg(long, value_parser = at_least_one)]
        limit: Option<usize>,
        /// Test images the report measures.
        #[arg(long, value_parser = at_least_one, default_value_t = 10_000)]
        eval_images: usize,
        /// Default rounding bits written into the model [default: the run's QAT rounding, else 6].
        #[arg(long, value_parser = parse_rounding)]
        rounding_bits: Option<Rounding>,
        /// Also copy the compiled model here.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Where burn runs the network (libtorch needs a build with `--features libtorch`).
        #[arg(long, value_enum, default_value = "flex")]
        backend: Backend,
        /// Compile the run's latest weights without QAT (post-training quantization: each
        /// lookup's scale from its calibration values), finished or not, into
        /// `post-training.cifhe`: what QAT starts from.
        #[arg(long)]
        post_training: bool,
        /// With --post-training: one weight scale per output channel, whatever the run's setting.
        #[arg(long, requires = "post_training")]
        per_channel_weights: bool,
        /// With --post-training: bits of the weight codes, as for `train` [default: the run's].
        #[arg(long, requires = "post_training")]
        weight_bits: Option<Widths>,
        /// With --post-training: bits of the activation codes, as for `train` [default: the run's].
        #[arg(long, requires = "post_training")]
        act_bits: Option<Widths>,
    },
    /// The accuracy table (float, QAT, circuit, FHE simulation at 8…3 rounding bits) with per-stage
    /// accumulator widths and PBS counts, as markdown and an SVG plot.
    Report {
        /// Compiled model.
        #[arg(long)]
        model: PathBuf,
        /// CIFAR data: folder or archive.
        #[arg(long)]
        data: PathBuf,
        /// The training run folder (its log.tsv gives the float and QAT rows).
        #[arg(long)]
        run_dir: Option<PathBuf>,
        /// Markdown file to write (the SVG plot is written beside it).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check a torchvision ImageNet VGG11 weights file and show how it maps onto our VGG11.
    Adapt {
        /// `.pth` (torch.save of the state dict) or `.safetensors`.
        #[arg(long)]
        weights: PathBuf,
        /// Classes of the new classifier.
        #[arg(long, value_parser = at_least_one, default_value_t = 10)]
        classes: usize,
    },
    /// Where a training run stands: epochs done and in progress, hours spent and left, its last
    /// epochs, and the command that resumes it.
    Status {
        /// Run folder.
        #[arg(long)]
        run_dir: PathBuf,
    },
    /// Show a model's stages, accumulator widths, multiply-accumulates and PBS counts.
    Inspect {
        /// Compiled model.
        #[arg(long)]
        model: PathBuf,
    },
    /// Declare a compiled model's lookup accumulators about the centres of their calibrated
    /// ranges (no data needed): a bit finer rounding where a range is one-sided, such as the
    /// pools' sums. A model trained without `--centre-accumulators` was rounded about zero in
    /// QAT, so measure the result with `report`.
    Centre {
        /// Compiled model.
        #[arg(long)]
        model: PathBuf,
        /// Where to write the centred model.
        #[arg(long)]
        out: PathBuf,
    },
    /// Float training speed (images/s) of an architecture, beside PyTorch's on the same network
    /// in the same run with `--torch`.
    BenchTrain {
        /// Architecture: vgg11, small, or the demo networks tiny and mini.
        #[arg(long, default_value = "vgg11")]
        arch: String,
        /// Channel width multiplier.
        #[arg(long, default_value_t = 1.0, value_parser = positive::<f32>)]
        width: f32,
        /// Batch size.
        #[arg(long, value_parser = at_least_one, default_value_t = 128)]
        batch: usize,
        /// Timed steps (after one warm-up step).
        #[arg(long, value_parser = at_least_one, default_value_t = 3)]
        steps: usize,
        /// Batch normalisation after each convolution.
        #[arg(long)]
        batch_norm: bool,
        /// A Python with torch installed: also time PyTorch on the same network.
        #[arg(long)]
        torch: Option<PathBuf>,
        /// Also time each backend with bfloat16 convolutions (`train --bf16`).
        #[arg(long)]
        bf16: bool,
        /// burn backends to time [default: every backend this build has].
        #[arg(long, value_enum, value_delimiter = ',')]
        backend: Vec<Backend>,
        /// CIFAR data [default: $CIFHE_DATA or ../shared/data].
        #[arg(long)]
        data: Option<PathBuf>,
        /// Markdown file to update (its training section).
        #[arg(long)]
        write: Option<PathBuf>,
    },
    /// Measure simulator throughput and write it into BENCHMARKS.md.
    Bench {
        /// Compiled model [default: the shipped VGG11-shaped model].
        #[arg(long)]
        model: Option<PathBuf>,
        /// CIFAR data [default: $CIFHE_DATA or ../shared/data].
        #[arg(long)]
        data: Option<PathBuf>,
        /// Test images per configuration.
        #[arg(long, value_parser = at_least_one, default_value_t = 10_000)]
        images: usize,
        /// Markdown file to update (its simulator section).
        #[arg(long)]
        write: Option<PathBuf>,
    },
    /// TFHE costs: per parameter set, keygen, key sizes and lookups per second on real ciphertexts;
    /// per model, the bootstraps per image and the time they take under the chosen set.
    BenchFhe {
        /// Compiled models to cost.
        #[arg(long, value_delimiter = ',')]
        models: Vec<PathBuf>,
        /// Parameter sets to measure.
        #[arg(long, value_delimiter = ',', default_value = "1_1,2_2,3_3", value_parser = parse_params)]
        sets: Vec<ParamSet>,
        /// Bootstraps timed per set.
        #[arg(long, value_parser = at_least_one, default_value_t = 64)]
        lookups: usize,
        /// Largest per-lookup error probability when choosing a model's set.
        #[arg(long, default_value_t = FHE_P_ERROR, value_parser = parse_p_error)]
        p_error: f64,
        /// Markdown file to update (its fhe-costs section).
        #[arg(long)]
        write: Option<PathBuf>,
    },
}

/// The default training recipe, which `train`'s options default to.
fn recipe() -> train::TrainConfig {
    train::TrainConfig::recipe(Kind::Cifar10)
}

/// For counts where zero means nothing to do (a batch of no images, no test images): refused
/// when parsing, not met later as an empty report or a division by zero.
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>().map_err(|e| e.to_string())? {
        0 => Err("must be at least 1".into()),
        n => Ok(n),
    }
}

/// For rates and multipliers: a finite number above zero (a NaN learning rate trained to NaN
/// weights, a zero width made one-channel layers).
fn positive<T: std::str::FromStr + Into<f64> + Copy>(s: &str) -> Result<T, String> {
    match s.parse::<T>() {
        Ok(x) if x.into().is_finite() && x.into() > 0.0 => Ok(x),
        _ => Err("must be a number above 0".into()),
    }
}

fn parse_smoothing(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(x) if (0.0..1.0).contains(&x) => Ok(x),
        _ => Err("label smoothing must be at least 0 and below 1".into()),
    }
}

fn parse_degrees(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(d) if (0.0..=45.0).contains(&d) => Ok(d),
        _ => Err(format!("'{s}' is not a rotation: give degrees from 0 to 45")),
    }
}

fn parse_rounding(s: &str) -> Result<Rounding, String> {
    if s.eq_ignore_ascii_case("none") {
        return Ok(Rounding(None));
    }
    match s.parse::<u8>() {
        Ok(b) if (1..=24).contains(&b) => Ok(Rounding(Some(b))),
        _ => Err(format!("'{s}' is not a rounding: give bits from 1 to 24, or 'none'")),
    }
}

fn parse_noise(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if (0.0..=4.0).contains(&v) => Ok(v),
        _ => Err(format!("the noise is a standard deviation in rounded steps, from 0 to 4: got {s}")),
    }
}

fn parse_p_error(s: &str) -> Result<f64, String> {
    let v = match s.strip_prefix("2^") {
        Some(e) => e.parse::<i32>().map(|e| 2f64.powi(e)).map_err(|_| format!("'{s}' is not a power of two like 2^-40")),
        None => s.parse::<f64>().map_err(|_| format!("'{s}' is not a probability")),
    }?;
    if (0.0..1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("p_error must be in [0, 1), got {v}"))
    }
}

fn parse_params(s: &str) -> Result<ParamSet, String> {
    ParamSet::by_name(s).ok_or_else(|| format!("unknown parameter set '{s}': expected 1_1, 2_2, 3_3 or 4_4"))
}

impl TestImages {
    /// The model file's path and bytes.
    pub(crate) fn read_model(&self) -> Result<(PathBuf, Vec<u8>), String> {
        let path = self.model.clone().unwrap_or_else(paths::demo_model);
        let bytes = model_file::read(&path)?;
        Ok((path, bytes))
    }

    /// The test set of `m`'s dataset, checking that every index in `--image` is in it.
    pub(crate) fn test_set(&self, m: &Model<'_>) -> Result<cifar::Dataset, String> {
        let ds = cifar::test_set_for(m, &self.data.clone().unwrap_or_else(paths::default_data), None)?;
        match self.image.iter().find(|&&i| i >= ds.len()) {
            Some(bad) => Err(format!("--image {bad}: the test set has {} images", ds.len())),
            None => Ok(ds),
        }
    }
}
