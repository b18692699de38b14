//! Evaluation of a compiled model on a CIFAR test set with the FHE simulator.
use crate::cifar::{Dataset, IMAGE_LEN};
use cifhe_core::batch;
use cifhe_core::{Model, RunConfig, RunStats, Simulator};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::time::Instant;

/// Accuracy of one class.
#[derive(Debug, Clone, Serialize)]
pub struct ClassAccuracy {
    /// Class name.
    pub name: String,
    /// Images of this class.
    pub images: usize,
    /// Of which predicted correctly.
    pub correct: usize,
    /// `correct / images`.
    pub accuracy: f64,
}

/// What `eval` measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Model name.
    pub model: String,
    /// Images evaluated.
    pub images: usize,
    /// Correct predictions.
    pub correct: usize,
    /// Top-1 accuracy.
    pub accuracy: f64,
    /// Wall-clock seconds of the simulation (loading excluded).
    pub seconds: f64,
    /// Images per second.
    pub images_per_second: f64,
    /// Bits kept before each lookup (`null`: no rounding).
    pub rounding_bits: Option<u8>,
    /// Rounding mode.
    pub rounding_mode: String,
    /// Per-PBS error probability simulated.
    pub p_error: f64,
    /// Noise seed.
    pub seed: u64,
    /// Worker threads.
    pub threads: usize,
    /// Lookups (PBS) per image.
    pub pbs_per_image: u64,
    /// Lookup inputs moved by the simulated noise, over all images.
    pub noise_events: u64,
    /// Accumulators outside their declared width, over all images.
    pub overflows: u64,
    /// Per class.
    pub per_class: Vec<ClassAccuracy>,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<u32>>,
    /// Predicted class of each image.
    #[serde(skip)]
    pub predictions: Vec<u16>,
}

/// Classifies every image of `data` with `model` under `cfg`, with a progress bar.
pub fn evaluate(model: &Model<'_>, data: &Dataset, cfg: RunConfig, show_progress: bool) -> Result<Report, String> {
    if model.image_len() != IMAGE_LEN {
        return Err(format!("the model expects {}-byte images, CIFAR images have {IMAGE_LEN}", model.image_len()));
    }
    let classes = model.classes();
    if classes != data.kind.classes() {
        return Err(format!("the model has {classes} classes but the data is {:?} with {}", data.kind, data.kind.classes()));
    }
    let sim = Simulator::new(model, cfg).map_err(|e| e.to_string())?;
    let bar = if show_progress { ProgressBar::new(data.len() as u64) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{spinner} simulating [{bar:40}] {pos}/{len} images, {per_sec}, ETA {eta}").expect("valid template").progress_chars("=> "),
    );
    let start = Instant::now();
    let result = batch::classify_all(&sim, &data.images, 0, |n| bar.inc(n as u64)).map_err(|e| e.to_string())?;
    let seconds = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    Ok(report(model, data, &cfg, result.predictions, result.stats, seconds))
}

fn report(model: &Model<'_>, data: &Dataset, cfg: &RunConfig, predictions: Vec<u16>, stats: RunStats, seconds: f64) -> Report {
    let classes = model.classes();
    let mut confusion = vec![vec![0u32; classes]; classes];
    for (&t, &p) in data.labels.iter().zip(&predictions) {
        confusion[t as usize][p as usize] += 1;
    }
    let per_class: Vec<ClassAccuracy> = (0..classes)
        .map(|k| {
            let images = confusion[k].iter().sum::<u32>() as usize;
            let correct = confusion[k][k] as usize;
            ClassAccuracy { name: data.names[k].clone(), images, correct, accuracy: correct as f64 / images.max(1) as f64 }
        })
        .collect();
    let correct = per_class.iter().map(|c| c.correct).sum();
    let images = data.len();
    Report {
        model: model.file().name.to_string(),
        images,
        correct,
        accuracy: correct as f64 / images.max(1) as f64,
        seconds,
        images_per_second: images as f64 / seconds.max(1e-9),
        rounding_bits: cfg.rounding_bits,
        rounding_mode: format!("{:?}", cfg.mode).to_lowercase(),
        p_error: cfg.noise.max_p_error(),
        seed: cfg.seed,
        threads: rayon::current_num_threads(),
        pbs_per_image: stats.lookups / images.max(1) as u64,
        noise_events: stats.noise_events,
        overflows: stats.overflows,
        per_class,
        confusion,
        predictions,
    }
}

impl Report {
    /// The human-readable report.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let r = self.rounding_bits.map_or("none".into(), |b| format!("{b} bits ({})", self.rounding_mode));
        let _ = writeln!(s, "model {}: {} images, rounding {r}, p_error {:.3e}", self.model, self.images, self.p_error);
        let _ = writeln!(s, "top-1 accuracy  {:.2}% ({}/{})", 100.0 * self.accuracy, self.correct, self.images);
        let _ = writeln!(s, "speed           {:.1} images/s ({:.2} s on {} threads)", self.images_per_second, self.seconds, self.threads);
        let _ = writeln!(s, "lookups (PBS)   {} per image; {} moved by noise, {} accumulator overflows", self.pbs_per_image, self.noise_events, self.overflows);
        if self.per_class.len() <= 20 {
            let _ = writeln!(s, "\nper class:");
            for c in &self.per_class {
                let _ = writeln!(s, "  {:<12} {:>6.2}% ({}/{})", c.name, 100.0 * c.accuracy, c.correct, c.images);
            }
            let _ = writeln!(s, "\nconfusion matrix (rows: true class, columns: predicted):");
            let _ = write!(s, "{:>12}", "");
            for k in 0..self.confusion.len() {
                let _ = write!(s, "{k:>6}");
            }
            let _ = writeln!(s);
            for (k, row) in self.confusion.iter().enumerate() {
                let _ = write!(s, "{:>9} {k:>2}", truncate(&self.per_class[k].name, 9));
                for v in row {
                    let _ = write!(s, "{v:>6}");
                }
                let _ = writeln!(s);
            }
        } else {
            let mut worst: Vec<&ClassAccuracy> = self.per_class.iter().collect();
            worst.sort_by(|a, b| a.accuracy.total_cmp(&b.accuracy));
            let _ = writeln!(s, "\nweakest classes:");
            for c in worst.iter().take(10) {
                let _ = writeln!(s, "  {:<16} {:>6.2}% ({}/{})", c.name, 100.0 * c.accuracy, c.correct, c.images);
            }
        }
        s
    }
}

fn truncate(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i])
}
