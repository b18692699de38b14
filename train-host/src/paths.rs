//! Default locations, so the README's commands work from any directory of the checkout.
use std::path::PathBuf;

/// The workspace root (parent of this crate).
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The shipped default model.
pub fn default_model() -> PathBuf {
    workspace().join("models").join("vgg11-random-cifar10.cifhe")
}

/// The CIFAR data: `$CIFHE_DATA`, else the `shared/data` folder beside the checkout.
pub fn default_data() -> PathBuf {
    std::env::var_os("CIFHE_DATA").map(PathBuf::from).unwrap_or_else(|| workspace().join("..").join("shared").join("data"))
}
