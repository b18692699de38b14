//! A user's own picture (PNG, JPEG, BMP or WebP, any size) as a model's input image: decoded here,
//! then area-averaged to the model's size by the same [`cifhe_core::image::rgba_to_planes`] the
//! browser client uses, so that `classify photo.jpg` and the web page feed the circuit the same
//! bytes.
use cifhe_core::{Model, RunConfig, Simulator};
use serde::Serialize;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// A picture prepared for a model.
pub struct Picture {
    /// The model's input image (R, G and B planes).
    pub planes: Vec<u8>,
    /// Width and height of the picture as decoded.
    pub size: (u32, u32),
}

/// Reads, decodes and resamples the picture at `path` for `model`.
pub fn load(path: &Path, model: &Model<'_>) -> Result<Picture, String> {
    let reader = image::ImageReader::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let reader = reader.with_guessed_format().map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let decoded = reader.decode().map_err(|e| format!("{} is not a picture this tool reads (PNG, JPEG, BMP, WebP): {e}", path.display()))?.into_rgba8();
    let (w, h) = decoded.dimensions();
    let shape = model.input_shape();
    let mut planes = vec![0; model.image_len()];
    cifhe_core::image::rgba_to_planes(decoded.as_raw(), w as usize, h as usize, shape.w, shape.h, &mut planes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Picture { planes, size: (w, h) })
}

/// One picture's classes.
#[derive(Debug, Serialize)]
pub struct PictureResult {
    /// The file.
    pub file: String,
    /// Its width and height as decoded.
    pub width: u32,
    /// See `width`.
    pub height: u32,
    /// The likeliest classes, most probable first.
    pub classes: Vec<ClassProbability>,
}

/// A class and the probability the model gives it.
#[derive(Debug, Serialize)]
pub struct ClassProbability {
    /// The class's number.
    pub class: usize,
    /// Its name.
    pub name: String,
    /// Softmax of the dequantized scores.
    pub probability: f32,
}

/// Classifies the pictures at `paths` with the simulator under `cfg` (picture `i` reads noise
/// stream `i`), keeping the `top` most probable classes of each.
pub fn classify(model: &Model<'_>, cfg: RunConfig, paths: &[PathBuf], top: usize) -> Result<Vec<PictureResult>, String> {
    let sim = Simulator::new(model, cfg).map_err(|e| e.to_string())?;
    let (mut scratch, mut out, mut probs) = (vec![0u64; model.scratch_words()], vec![0i32; model.classes()], vec![0f32; model.classes()]);
    let mut results = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let picture = load(path, model)?;
        sim.run(&picture.planes, i as u64, &mut scratch, &mut out).map_err(|e| e.to_string())?;
        model.file().output.probabilities(&out, &mut probs);
        let mut order: Vec<usize> = (0..probs.len()).collect();
        order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
        let classes = order.iter().take(top).map(|&k| ClassProbability { class: k, name: model.class_name(k), probability: probs[k] }).collect();
        let (width, height) = picture.size;
        results.push(PictureResult { file: path.display().to_string(), width, height, classes });
    }
    Ok(results)
}

/// One line a picture: the file, its size and its likeliest classes.
pub fn text(results: &[PictureResult]) -> String {
    let mut text = String::new();
    for r in results {
        let classes: Vec<String> = r.classes.iter().map(|c| format!("{} {:.1}%", c.name, 100.0 * c.probability)).collect();
        let _ = writeln!(text, "{} ({}×{}): {}", r.file, r.width, r.height, classes.join(", "));
    }
    text
}
