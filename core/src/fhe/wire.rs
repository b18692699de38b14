//! Serialized keys and ciphertexts: an 8-byte magic naming the kind, then bincode with fixed-width
//! integers, as tfhe-rs serializes its own keys. Key and ciphertext words are uniformly random
//! 64-bit values, which postcard's varints stored in about 9.5 bytes each instead of 8 (the 2_2
//! server key: 35.8 MB with postcard, 30.1 MB now, by `train-host bench-fhe`). Sizes are bounded by the caller before parsing, and every error says
//! what was wrong.
use bincode::Options;
use serde::{de::DeserializeOwned, Serialize};

/// What a byte string holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    ServerKey,
    Image,
    Output,
}

impl Kind {
    fn magic(self) -> &'static [u8; 8] {
        match self {
            Kind::ServerKey => b"cifheSK2",
            Kind::Image => b"cifheCI2",
            Kind::Output => b"cifheCO2",
        }
    }
    fn name(self) -> &'static str {
        match self {
            Kind::ServerKey => "server key",
            Kind::Image => "encrypted image",
            Kind::Output => "encrypted result",
        }
    }
}

/// Errors of the TFHE evaluator and of its serialized material.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)] // the fields are named for what they hold
pub enum FheError {
    /// Longer than the limit the caller set.
    TooLarge { what: &'static str, len: usize, limit: usize },
    /// Not the expected kind of material, or not parseable.
    Malformed(String),
    /// Material made under another client key.
    ForeignKey { what: &'static str, expected: super::KeyId, actual: super::KeyId },
    /// Material for another model, rounding or parameter set.
    Mismatch(String),
    /// The model does not fit the parameters.
    Plan(super::plan::PlanError),
}

impl core::fmt::Display for FheError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FheError::TooLarge { what, len, limit } => write!(f, "{what} of {len} bytes exceeds the limit of {limit} bytes"),
            FheError::Malformed(m) => write!(f, "{m}"),
            FheError::ForeignKey { what, expected, actual } => {
                write!(f, "{what} was made under client key {actual}, not under this session's key {expected}")
            }
            FheError::Mismatch(m) => write!(f, "{m}"),
            FheError::Plan(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for FheError {}

impl From<super::plan::PlanError> for FheError {
    fn from(e: super::plan::PlanError) -> Self {
        FheError::Plan(e)
    }
}

/// Fixed-width little-endian integers; trailing bytes refused.
fn options() -> impl Options {
    bincode::DefaultOptions::new().with_fixint_encoding().with_little_endian()
}

pub(super) fn encode<T: Serialize>(kind: Kind, value: &T) -> Vec<u8> {
    let mut out = kind.magic().to_vec();
    options().serialize_into(&mut out, value).expect("in-memory serialization cannot fail");
    out
}

pub(super) fn decode<T: DeserializeOwned>(kind: Kind, bytes: &[u8], limit: usize) -> Result<T, FheError> {
    if bytes.len() > limit {
        return Err(FheError::TooLarge { what: kind.name(), len: bytes.len(), limit });
    }
    let Some(body) = bytes.strip_prefix(kind.magic().as_slice()) else {
        return Err(FheError::Malformed(format!("not a cifhe {}: wrong magic bytes", kind.name())));
    };
    // The limit also bounds every length prefix, so a forged length cannot make bincode allocate
    // more than the bytes the caller accepted.
    options().with_limit(limit as u64).deserialize(body).map_err(|e| FheError::Malformed(format!("corrupt {}: {e}", kind.name())))
}
