//! Errors: every way a model file or a run can be refused, with a message a user can act on.
use core::fmt;

/// Why a model file was refused. Loading never panics: each malformed input maps to one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelError {
    /// The file is shorter than the fixed header.
    TooShort {
        /// Bytes present.
        len: usize,
    },
    /// The first bytes are not the cifhe magic: this is not a cifhe model file.
    BadMagic,
    /// The file was written by a format version this build does not read.
    UnsupportedVersion {
        /// Version found in the file.
        found: u16,
        /// Newest version this build reads.
        supported: u16,
    },
    /// The payload length in the header does not match the bytes present (truncated or padded file).
    LengthMismatch {
        /// Payload length announced by the header.
        header: usize,
        /// Payload bytes present.
        actual: usize,
    },
    /// The payload's CRC-32 does not match the header: the file is corrupt.
    ChecksumMismatch {
        /// Checksum stored in the header.
        stored: u32,
        /// Checksum of the payload present.
        computed: u32,
    },
    /// The payload is not a valid postcard encoding of a model.
    Decode,
    /// The buffer given to the encoder is too small.
    BufferTooSmall,
    /// The model decodes but is not a valid circuit; `stage` is the 0-based stage index.
    Invalid {
        /// Stage index, or `usize::MAX` for the model as a whole.
        stage: usize,
        /// What is wrong.
        reason: &'static str,
    },
}

impl ModelError {
    pub(crate) fn invalid(stage: usize, reason: &'static str) -> Self {
        ModelError::Invalid { stage, reason }
    }
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelError::TooShort { len } => write!(f, "not a cifhe model: only {len} bytes, shorter than the header"),
            ModelError::BadMagic => write!(f, "not a cifhe model: the file does not start with the cifhe magic bytes"),
            ModelError::UnsupportedVersion { found, supported } => {
                write!(f, "model format version {found} is not supported (this build reads versions {} to {supported})", crate::format::OLDEST_VERSION)
            }
            ModelError::LengthMismatch { header, actual } => {
                write!(f, "model file is truncated or padded: header announces {header} payload bytes, {actual} present")
            }
            ModelError::ChecksumMismatch { stored, computed } => {
                write!(f, "model file is corrupt: payload CRC-32 is {computed:#010x}, header says {stored:#010x}")
            }
            ModelError::Decode => write!(f, "model payload could not be decoded (corrupt or written by another tool)"),
            ModelError::BufferTooSmall => write!(f, "output buffer too small for the encoded model"),
            ModelError::Invalid { stage, reason } if *stage == usize::MAX => write!(f, "invalid model: {reason}"),
            ModelError::Invalid { stage, reason } => write!(f, "invalid model, stage {stage}: {reason}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ModelError {}

/// Why a simulator run was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunError {
    /// The image does not have the model's input size (channels × height × width bytes).
    ImageSize {
        /// Bytes expected.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// The scratch arena is smaller than [`crate::Model::scratch_words`].
    ScratchTooSmall {
        /// Words needed.
        needed: usize,
        /// Words given.
        actual: usize,
    },
    /// The output slice is shorter than the number of classes.
    OutputTooSmall {
        /// Classes of the model.
        needed: usize,
        /// Length given.
        actual: usize,
    },
    /// The requested rounding keeps more bits than a lookup stage's accumulator has, or zero bits.
    BadRounding {
        /// Bits requested.
        bits: u8,
    },
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::ImageSize { expected, actual } => {
                write!(f, "image has {actual} bytes, the model expects {expected} (channel planes of height × width u8 pixels)")
            }
            RunError::ScratchTooSmall { needed, actual } => {
                write!(f, "scratch arena has {actual} words, the model needs {needed}")
            }
            RunError::OutputTooSmall { needed, actual } => {
                write!(f, "output slice has {actual} entries, the model has {needed} classes")
            }
            RunError::BadRounding { bits } => write!(f, "rounding to {bits} bits is not possible (must be 1 to 24)"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for RunError {}
