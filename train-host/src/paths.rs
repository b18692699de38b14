//! Default locations, so the README's commands work from any directory of the checkout.
use std::path::PathBuf;

/// The workspace root (parent of this crate).
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The shipped default model: the reference's VGG11 trained on CIFAR-10.
pub fn default_model() -> PathBuf {
    workspace().join("models").join("vgg11-cifar10.cifhe")
}

/// The CIFAR data: `$CIFHE_DATA`, else the `shared/data` folder beside the checkout.
pub fn default_data() -> PathBuf {
    std::env::var_os("CIFHE_DATA").map(PathBuf::from).unwrap_or_else(|| workspace().join("..").join("shared").join("data"))
}

/// The shipped demo model for real TFHE (small enough for seconds per image).
pub fn demo_model() -> PathBuf {
    workspace().join("models").join("tiny-w2.5-cifar10.cifhe")
}

/// The static web page (`web/`, with the wasm client in `web/pkg`).
pub fn web_root() -> PathBuf {
    workspace().join("web")
}
