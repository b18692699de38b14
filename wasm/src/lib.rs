//! cifhe in the browser: load a compiled model, turn a canvas image into the model's input,
//! classify it with the FHE simulator, and be the TFHE client of an encrypted classification —
//! key generation, encryption and decryption — all on the user's machine.
//!
//! Everything runs `cifhe-core`: the simulator and the TFHE client are the native ones compiled
//! to WebAssembly, never a second implementation. The client key lives in a [`FheClient`] and has
//! no export: only the compressed server key and ciphertexts leave the page.
use cifhe_core::fhe::{ParamSet, Plan};
use cifhe_core::{Model, RunConfig, Simulator};
use wasm_bindgen::prelude::*;

mod client;

pub use client::FheClient;

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
        let model = Model::from_bytes(bytes).map_err(js)?;
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

    /// Bytes of one prepared image (RGB planes).
    pub fn image_len(&self) -> usize {
        self.model.image_len()
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.model.classes()
    }

    /// Name of class `k` (its number if the model has no labels).
    pub fn label(&self, k: usize) -> String {
        self.model.class_name(k)
    }

    /// Bootstraps (PBS) one encrypted classification costs the server.
    pub fn bootstraps(&self, params: &str) -> Result<u64, JsError> {
        Ok(self.plan(params)?.bootstraps(&self.model))
    }

    /// Turns canvas RGBA pixels (`width × height`, any size) into the model's input image.
    pub fn prepare_rgba(&self, rgba: &[u8], width: usize, height: usize) -> Result<Vec<u8>, JsError> {
        let s = self.model.input_shape();
        let mut planes = vec![0; self.model.image_len()];
        cifhe_core::image::rgba_to_planes(rgba, width, height, s.w, s.h, &mut planes).map_err(js)?;
        Ok(planes)
    }

    /// Class probabilities of a prepared image as TFHE under `params` (e.g. `2_2`) would compute
    /// them: the model's rounding, removed by the modulus switch, with each lookup's noise drawn
    /// from that set's noise model (seeded).
    pub fn simulate(&mut self, image: &[u8], params: &str, seed: u64) -> Result<Vec<f32>, JsError> {
        let cfg = self.plan(params)?.simulation(RunConfig { seed, ..RunConfig::new(&self.model) });
        let sim = Simulator::new(&self.model, cfg).map_err(js)?;
        sim.run(image, 0, &mut self.scratch, &mut self.out).map_err(js)?;
        Ok(probabilities(&self.model, &self.out))
    }

    /// Classes of prepared images (concatenated) as TFHE under `params` would find them, like
    /// [`Classifier::simulate`]: image `k` draws its noise from stream `first_index + k` of
    /// `seed`, as the native `train-host eval --fhe-params` does, so both give the same classes.
    /// For measuring accuracy on a test set in chunks.
    pub fn classify_batch(&mut self, images: &[u8], first_index: u64, params: &str, seed: u64) -> Result<Vec<u16>, JsError> {
        let len = self.model.image_len();
        if !images.len().is_multiple_of(len) {
            return Err(JsError::new(&format!("{} bytes are not a whole number of {len}-byte images", images.len())));
        }
        let cfg = self.plan(params)?.simulation(RunConfig { seed, ..RunConfig::new(&self.model) });
        let sim = Simulator::new(&self.model, cfg).map_err(js)?;
        let mut classes = Vec::with_capacity(images.len() / len);
        for (k, image) in images.chunks_exact(len).enumerate() {
            let (class, _) = sim.classify(image, first_index + k as u64, &mut self.scratch, &mut self.out).map_err(js)?;
            classes.push(class as u16);
        }
        Ok(classes)
    }
}

impl Classifier {
    /// The TFHE layout of this model under `params`, at the model's own rounding: the same on
    /// the client and on the server, which checks it through the ciphertexts' scales.
    fn plan(&self, params: &str) -> Result<Plan, JsError> {
        let set = ParamSet::by_name(params).ok_or_else(|| JsError::new(&format!("unknown parameter set {params:?} (1_1, 2_2, 3_3, 4_4)")))?;
        Plan::for_model(&self.model, set).map_err(js)
    }
}

/// Softmax of the dequantized final accumulators.
fn probabilities(model: &Model<'_>, accumulators: &[i32]) -> Vec<f32> {
    let mut probs = vec![0.0; accumulators.len()];
    model.file().output.probabilities(accumulators, &mut probs);
    probs
}

/// Any error, as a JavaScript `Error` carrying its message.
fn js(e: impl core::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}
