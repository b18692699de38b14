//! cifhe in the browser: load a compiled model, turn a canvas image into the model's input, and
//! classify it with the FHE simulator — all on the user's machine.
//!
//! Key generation, encryption and decryption join here with the TFHE backend (see the issues);
//! they will use the same `cifhe-core` circuit, never a second implementation.
use cifhe_core::{Model, NoiseModel, RunConfig, Simulator};
use wasm_bindgen::prelude::*;

pub mod image;

/// A compiled model loaded in the page.
#[wasm_bindgen]
pub struct Classifier {
    model: Model<'static>,
    scratch: Vec<u64>,
    out: Vec<i32>,
}

#[wasm_bindgen]
impl Classifier {
    /// Validates the model bytes (a `.cifhe` file). A page loads its model once and keeps it for
    /// its lifetime, so the bytes are given that lifetime and the weights are used in place.
    #[wasm_bindgen(constructor)]
    pub fn new(bytes: Vec<u8>) -> Result<Classifier, JsError> {
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        let model = Model::from_bytes(bytes).map_err(|e| JsError::new(&e.to_string()))?;
        let scratch = vec![0u64; model.scratch_words()];
        let out = vec![0i32; model.classes()];
        Ok(Classifier { model, scratch, out })
    }

    /// Model name.
    pub fn name(&self) -> String {
        self.model.file().name.into()
    }

    /// How the model was made.
    pub fn description(&self) -> String {
        self.model.file().description.into()
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.model.classes()
    }

    /// Name of class `k` (its number if the model has no labels).
    pub fn label(&self, k: usize) -> String {
        self.model.label(k).map_or_else(|| k.to_string(), String::from)
    }

    /// Turns canvas RGBA pixels (`width × height`, any size) into the model's input image.
    pub fn prepare_rgba(&self, rgba: &[u8], width: usize, height: usize) -> Result<Vec<u8>, JsError> {
        let s = self.model.input_shape();
        image::rgba_to_planes(rgba, width, height, s.w, s.h).map_err(|e| JsError::new(&e))
    }

    /// Class probabilities (softmax of the dequantized logits) of a prepared image under the
    /// simulated FHE noise of `p_error` per PBS, at the model's own rounding.
    pub fn simulate(&mut self, image: &[u8], p_error: f64, seed: u64) -> Result<Vec<f32>, JsError> {
        let cfg = RunConfig { noise: NoiseModel::from_p_error(p_error).into(), seed, ..RunConfig::new(&self.model) };
        let sim = Simulator::new(&self.model, cfg).map_err(|e| JsError::new(&e.to_string()))?;
        sim.run(image, 0, &mut self.scratch, &mut self.out).map_err(|e| JsError::new(&e.to_string()))?;
        let out = &self.model.file().output;
        let logits: Vec<f32> = self.out.iter().enumerate().map(|(k, &a)| out.logit(k, a)).collect();
        Ok(softmax(&logits))
    }
}

fn softmax(x: &[f32]) -> Vec<f32> {
    let m = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = x.iter().map(|v| (v - m).exp()).collect();
    let s: f32 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

#[cfg(test)]
mod tests {
    use super::softmax;

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        let p = softmax(&[1.0, 3.0, 2.0, -50.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(p[1] > p[2] && p[2] > p[0] && p[0] > p[3]);
    }
}
