//! The TFHE evaluator (feature `fhe`): the compiled circuit on real ciphertexts, with tfhe-rs's
//! `core_crypto` layer.
//!
//! Entities before algorithms, as in tfhe-rs: [`params`] (the parameter sets, their security
//! and the noise formulas), [`plan`] (how a model is encoded on the torus under a set: scales,
//! lookup tables, the noise each lookup sees, which is what the simulator injects), [`keys`]
//! (client key, compressed and expanded server keys), [`eval`] (encrypt, evaluate, decrypt),
//! [`batch`] (the key and modulus switches of many lookups at once), [`measure`] (the lookups'
//! errors on real ciphertexts against the noise model).
//!
//! Flow: the client makes a [`ClientKey`], sends [`ClientKey::server_key`] and
//! [`ClientKey::encrypt_image`]; the server expands the key and runs an [`Evaluator`]; the client
//! [`ClientKey::decrypt`]s the accumulators, which equal the simulator's for the same noise draw.
pub mod batch;
pub mod eval;
pub mod keys;
pub mod measure;
pub mod params;
pub mod plan;
mod wire;

pub use eval::{EncryptedImage, EncryptedOutput, Evaluator, Progress, Trace};
pub use keys::{ClientKey, CompressedServerKey, KeyId, ServerKey};
pub use params::{Bootstrap, ParamSet};
pub use plan::{Plan, PlanError};
pub use wire::FheError;
