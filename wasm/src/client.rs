//! The TFHE client: the secret key is made here and never leaves; the page sends only the
//! compressed server key and encrypted images, and decrypts what comes back.
use crate::{js, probabilities, Classifier};
use cifhe_core::fhe::{ClientKey, EncryptedOutput, Plan};
use wasm_bindgen::prelude::*;

/// Largest encrypted result accepted for decryption (one ciphertext per class: kilobytes each).
const RESULT_LIMIT: usize = 64 << 20;

/// A client key for one model and parameter set.
#[wasm_bindgen]
pub struct FheClient {
    key: ClientKey,
    plan: Plan,
}

#[wasm_bindgen]
impl FheClient {
    /// Generates a fresh client key (browser entropy) for `classifier`'s model under `params`.
    #[wasm_bindgen(constructor)]
    pub fn new(classifier: &Classifier, params: &str) -> Result<FheClient, JsError> {
        let plan = classifier.plan(params)?;
        Ok(FheClient { key: ClientKey::generate(plan.params), plan })
    }

    /// Id of the key (hex): the server's session and every ciphertext carry it.
    pub fn key_id(&self) -> String {
        self.key.id().to_string()
    }

    /// The parameter set's name.
    pub fn params(&self) -> String {
        self.plan.params.name().into()
    }

    /// The compressed server key (key switching and bootstrapping keys): the public evaluation
    /// key the server needs. The slow step of key generation.
    pub fn server_key(&self) -> Vec<u8> {
        self.key.server_key(&self.plan).expect("the plan is this key's").to_bytes()
    }

    /// Quantizes and encrypts a prepared image (see [`Classifier::prepare_rgba`]).
    pub fn encrypt(&self, classifier: &Classifier, image: &[u8]) -> Result<Vec<u8>, JsError> {
        Ok(self.key.encrypt_image(&classifier.model, &self.plan, image).map_err(js)?.to_bytes())
    }

    /// Decrypts the server's encrypted result into class probabilities. A result made under
    /// another key, model or parameter set is refused.
    pub fn decrypt(&self, classifier: &Classifier, result: &[u8]) -> Result<Vec<f32>, JsError> {
        let out = EncryptedOutput::from_bytes(result, RESULT_LIMIT).map_err(js)?;
        let accumulators = self.key.decrypt(&self.plan, &out).map_err(js)?;
        Ok(probabilities(&classifier.model, &accumulators))
    }
}
