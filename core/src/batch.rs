//! Batch evaluation on all cores (`std`): one scratch arena per worker, images in parallel.
use crate::error::RunError;
use crate::sim::{RunStats, Simulator};
use rayon::prelude::*;

/// Predictions of a batch.
#[derive(Debug, Clone, Default)]
pub struct BatchResult {
    /// Predicted class per image.
    pub predictions: Vec<u16>,
    /// Summed statistics.
    pub stats: RunStats,
}

/// Classifies `images` (concatenated, `model.image_len()` bytes each); image `k` uses noise
/// stream `first_index + k`, so results do not depend on the number of threads. `progress` is
/// called with the number of images finished since its last call.
pub fn classify_all(sim: &Simulator<'_, '_>, images: &[u8], first_index: u64, progress: impl Fn(usize) + Sync) -> Result<BatchResult, RunError> {
    let len = sim.model().image_len();
    if !images.len().is_multiple_of(len) {
        return Err(RunError::ImageSize { expected: len, actual: images.len() % len });
    }
    let words = sim.model().scratch_words();
    let classes = sim.model().classes();
    let results: Result<Vec<(u16, RunStats)>, RunError> = images
        .par_chunks(len)
        .enumerate()
        .map_init(
            || (vec![0u64; words], vec![0i32; classes]),
            |(scratch, out), (k, image)| {
                let r = sim.classify(image, first_index + k as u64, scratch, out);
                progress(1);
                r.map(|(class, stats)| (class as u16, stats))
            },
        )
        .collect();
    let mut batch = BatchResult::default();
    for (p, s) in results? {
        batch.predictions.push(p);
        batch.stats += s;
    }
    Ok(batch)
}
